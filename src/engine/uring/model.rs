//! A model of the drain protocol (this module's invariants 1-3), checked
//! over every interleaving: two threads each wait for their own context's
//! completion, the service watches the ring, and the kernel posts the two
//! CQEs at any moment. In every state where no actor can move (only a timer
//! could end it), both waiters must be done; and each CQE is posted once.
//!
//! Each step is one atomic action of the code it names (`wait`, `hold`,
//! `release`, `need_more`/`kick`, `service_drain`, the service's `ppoll`);
//! sleeping actors move only when what wakes them has happened. The variant
//! without the hand-off in `release` (the token's holder leaving without
//! telling the service, as the engine did before) is found to stall.

use std::collections::HashSet;
use std::vec::Vec;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum W {
    /// About to look at its context (the `moved` check), then the token.
    Start,
    /// `need` counted; about to look at the token again.
    Counted,
    /// Holds the token: drains, then looks.
    Draining,
    /// Holds the token, asleep in the ring (woken by any CQE).
    InRing,
    /// About to let the token go (`release`): first the token ...
    Releasing,
    /// ... then `need` is read, and the service kicked if it is not 0.
    Handing,
    /// Asleep on its context's `seq` (standby), counted in `need`.
    Standby,
    Done,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum S {
    /// Looking at `need` and the token: whether to watch the ring.
    Deciding,
    /// In `ppoll`, watching the ring or not.
    Asleep { watching: bool },
    /// Woken: drains if the token is free, else waits for the holder.
    Draining,
    /// Holds the token while draining.
    Holding,
    /// Waits on `epoch` for the holder (`service_drain`).
    WaitingHolder { epoch: u8 },
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Holder {
    Free,
    Waiter(usize),
    Service,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
struct State {
    w: [W; 2],
    s: S,
    token: Holder,
    need: u8,
    /// CQEs in the CQ, not yet drained, per waiter.
    cq: [bool; 2],
    /// CQEs the kernel has produced.
    produced: [bool; 2],
    /// Events posted to each waiter's context.
    posted: [u8; 2],
    /// A wake-up message sent to the service.
    kicked: bool,
    epoch: u8,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// `release` hands the ring to the service when `need` says so.
    HandOff,
    /// `release` just lets the token go.
    NoHandOff,
}

fn drain(s: &mut State) {
    for i in 0..2 {
        if s.cq[i] {
            s.cq[i] = false;
            s.posted[i] += 1;
        }
    }
    s.epoch = s.epoch.wrapping_add(1) % 4;
}

/// Every state one step away.
fn next(s: &State, v: Variant) -> Vec<State> {
    let mut out = Vec::new();
    // The kernel posts a CQE, once each.
    for i in 0..2 {
        if !s.produced[i] {
            let mut n = *s;
            n.produced[i] = true;
            n.cq[i] = true;
            out.push(n);
        }
    }
    for i in 0..2 {
        let mut n = *s;
        match s.w[i] {
            W::Start => {
                if s.posted[i] > 0 {
                    n.w[i] = W::Done;
                } else if s.token == Holder::Free {
                    n.token = Holder::Waiter(i);
                    n.w[i] = W::Draining;
                } else {
                    n.need += 1;
                    n.w[i] = W::Counted;
                }
            }
            W::Counted => {
                if s.token == Holder::Free {
                    n.need -= 1;
                    n.token = Holder::Waiter(i);
                    n.w[i] = W::Draining;
                } else {
                    // kick() (the holder or the service drains for us)
                    n.kicked = true;
                    n.w[i] = W::Standby;
                }
            }
            W::Draining => {
                drain(&mut n);
                n.w[i] = if n.posted[i] > 0 { W::Releasing } else { W::InRing };
            }
            W::InRing => {
                if !(s.cq[0] || s.cq[1]) {
                    continue; // asleep until a CQE
                }
                n.w[i] = W::Draining;
            }
            W::Releasing => {
                n.token = Holder::Free;
                n.epoch = n.epoch.wrapping_add(1) % 4;
                n.w[i] = W::Handing;
            }
            W::Handing => {
                if v == Variant::HandOff && s.need > 0 {
                    n.kicked = true;
                }
                n.w[i] = W::Done;
            }
            W::Standby => {
                if s.posted[i] == 0 {
                    continue; // asleep on seq until its event is posted
                }
                n.need -= 1;
                n.w[i] = W::Done;
            }
            W::Done => continue,
        }
        out.push(n);
    }
    let mut n = *s;
    match s.s {
        S::Deciding => {
            let watching = s.need > 0 && s.token == Holder::Free;
            n.s = S::Asleep { watching };
            n.kicked = false;
            out.push(n);
        }
        S::Asleep { watching } => {
            if s.kicked || (watching && (s.cq[0] || s.cq[1])) {
                n.s = if s.kicked { S::Deciding } else { S::Draining };
                n.kicked = false;
                out.push(n);
            }
        }
        S::Draining => {
            if s.token == Holder::Free {
                n.token = Holder::Service;
                n.s = S::Holding;
            } else {
                n.s = S::WaitingHolder { epoch: s.epoch };
            }
            out.push(n);
        }
        S::Holding => {
            drain(&mut n);
            n.token = Holder::Free;
            n.epoch = n.epoch.wrapping_add(1) % 4;
            n.s = S::Deciding;
            out.push(n);
        }
        S::WaitingHolder { epoch } => {
            if s.epoch != epoch || s.token == Holder::Free || !(s.cq[0] || s.cq[1]) {
                n.s = S::Deciding;
                out.push(n);
            }
        }
    }
    out
}

/// Explores every interleaving: the first stuck state, if any.
fn stuck_state(v: Variant) -> Option<State> {
    let start = State {
        w: [W::Start; 2],
        s: S::Deciding,
        token: Holder::Free,
        need: 0,
        cq: [false; 2],
        produced: [false; 2],
        posted: [0; 2],
        kicked: false,
        epoch: 0,
    };
    let mut seen = HashSet::new();
    let mut todo = std::vec![start];
    while let Some(s) = todo.pop() {
        if !seen.insert(s) {
            continue;
        }
        assert!(s.posted.iter().all(|&p| p <= 1), "a CQE posted twice: {s:?}");
        let n = next(&s, v);
        if n.is_empty() || (n.len() == 1 && n[0] == s) {
            if s.w.iter().any(|&w| w != W::Done) {
                return Some(s);
            }
            continue;
        }
        todo.extend(n);
    }
    None
}

// A search of a state space in plain safe Rust: nothing for Miri to check,
// and slow under it.
#[test]
#[cfg_attr(miri, ignore)]
fn every_waiter_is_woken_by_its_completion() {
    assert_eq!(stuck_state(Variant::HandOff), None);
}

#[test]
#[cfg_attr(miri, ignore)]
fn without_the_hand_off_a_waiter_stalls() {
    let s = stuck_state(Variant::NoHandOff).expect("the old protocol's stall is found");
    // One waiter done, the other asleep on standby with its CQE undrained:
    // only a timer could end it.
    assert!(s.w.contains(&W::Standby) && (s.cq[0] || s.cq[1]), "{s:?}");
}
