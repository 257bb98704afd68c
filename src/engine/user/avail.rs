//! The kernel's per-CPU request accounting (`reqs_available`), for one CPU:
//! where `io_submit` says `-EAGAIN`, and when slots come back, follow the
//! kernel's rules (`fs/aio.c`: `get_reqs_available`, `put_reqs_available`,
//! `refill_reqs_available`), so a program sees the same counts.
//!
//! A slot is taken per request and comes back when its event has been
//! *reaped* (the head has passed it), not when it completes: a full ring of
//! unreaped events refuses new requests.

/// The counts of one context (under its lock).
#[derive(Debug)]
pub(crate) struct Avail {
    global: u32,
    local: u32,
    batch: u32,
    /// Events posted but not yet credited back.
    pub(crate) completed: u32,
}

impl Avail {
    /// A context of `nr` ring slots on a machine of `cpus` possible CPUs.
    pub(crate) fn new(nr: u32, cpus: u32) -> Avail {
        Avail {
            global: nr - 1,
            local: 0,
            batch: ((nr - 1) / (cpus * 4)).max(1),
            completed: 0,
        }
    }

    /// Takes one slot: false when none is left.
    pub(crate) fn take(&mut self) -> bool {
        if self.local == 0 {
            if self.global < self.batch {
                return false;
            }
            self.global -= self.batch;
            self.local += self.batch;
        }
        self.local -= 1;
        true
    }

    /// Gives `n` slots back.
    pub(crate) fn put(&mut self, n: u32) {
        self.local += n;
        while self.local >= 2 * self.batch {
            self.local -= self.batch;
            self.global += self.batch;
        }
    }

    /// Credits back the posted events that readers have taken from the ring
    /// (`head`, `tail`: the ring's indices, `nr`: its size).
    pub(crate) fn refill(&mut self, head: u32, tail: u32, nr: u32) {
        if self.completed == 0 {
            return;
        }
        let head = head % nr;
        let in_ring = if tail >= head {
            tail - head
        } else {
            tail + nr - head
        };
        if in_ring < self.completed {
            let n = self.completed - in_ring;
            self.completed -= n;
            self.put(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_ring_refuses_until_events_are_reaped() {
        // A ring of 127 slots on 2 CPUs: 126 requests, in batches of 15.
        let mut a = Avail::new(127, 2);
        let mut taken = 0;
        while a.take() {
            taken += 1;
        }
        assert_eq!(taken, 120, "the last partial batch stays with the other CPUs");
        // All posted, none reaped: nothing comes back.
        a.completed = taken;
        a.refill(0, taken, 127);
        assert!(!a.take());
        // Half reaped: their slots come back.
        a.refill(60, taken, 127);
        assert!(a.take());
    }

    #[test]
    fn slots_given_back_return_to_the_pool_in_batches() {
        let mut a = Avail::new(127, 2);
        assert!(a.take());
        a.put(1);
        assert_eq!((a.global, a.local), (111, 15));
        for _ in 0..15 {
            a.put(1);
        }
        assert_eq!(
            (a.global, a.local),
            (126, 15),
            "a second full batch goes back to global"
        );
    }
}
