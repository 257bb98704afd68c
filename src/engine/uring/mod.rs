//! The io_uring engine: the requests of a user-space context (`user`)
//! carried out by the process's io_uring, so that a buffered read that
//! misses the page cache does not block `io_submit` as kernel AIO would.
//!
//! # Submission
//! A request goes in as an SQE with the program's descriptor, entered by
//! the submitting thread inside `io_submit` (io_uring takes its reference to
//! the file there, as kernel AIO does), one `io_uring_enter` per batch. Only
//! requests of bounded length come here: reads and writes of files and block
//! devices (polls go to the service, stream I/O is done inside `io_submit`).
//! Syncs are done inside `io_submit` too: io_uring always hands them to a
//! worker of its own, which looks the descriptor up only then. A request's
//! eventfd goes to the service, which signals it.
//!
//! Each thread enters the ring through its own registration of it
//! (`IORING_REGISTER_RING_FDS`), made once, after checking that the
//! descriptor is still the ring's: a program that then closes or reuses the
//! number affects nothing of ours. A thread that cannot reach the ring
//! (where registration is missing and the number no longer names the ring)
//! has its requests done inside `io_submit` instead.
//!
//! # Draining: the token
//! CQEs become events in their contexts' rings. Only the holder of the
//! *token* moves the CQ's head, so a holder asleep in the ring cannot miss
//! the CQE it waits for. Invariants:
//! 1. A thread waiting for a context takes the token if it is free and
//!    sleeps in the ring (`io_uring_enter`, min 1): the kernel's completion
//!    wakes it directly, and it drains every CQE, whoever's, before it looks
//!    at its own condition again.
//! 2. A waiter that finds the token held counts itself in `need`, then looks
//!    at the token again (sequentially consistent, as the holder's release
//!    and its read of `need`): either it sees the token free and takes it,
//!    or the holder, leaving, sees `need` and hands the ring to the service.
//! 3. The service watches the ring (`ppoll` on its own descriptor for it)
//!    while `need` says somebody depends on it and no waiter holds the
//!    token: requests of contexts the program reads directly or with an
//!    eventfd count in `need` until they are drained.
//! 4. An event posted for a context by any other way while its waiter
//!    sleeps in the ring (a poll by the service, a request done inside
//!    another thread's `io_submit`, destroy) wakes it with a `NOP`.
//!    So no waiter depends on a timer; the service's tick is only a safety
//!    net for a program that reads its ring without ever waiting.
//!
//! # Locks, in order
//! 1. The submission lock (`sq`): entries are written and entered under it,
//!    by the thread that enters them.
//! 2. The drain token: taken under `sq` only with `try` (never waited for
//!    there), so a thread holding `sq` never waits for the token's holder.
//! 3. A context's lock (`user::Control`'s state), taken to post a drained
//!    completion, with or without `sq` held; never held while taking `sq`.
//!
//! A post that must wake the thread asleep in the ring (`nudge`) takes `sq`.
//! It does so only for a sleeper, which holds the token: never from a drain
//! under `sq` (a drainer holds the token itself), so 1 is never taken
//! inside 3's drain.
//!
//! # Threads that exit
//! io_uring cancels a thread's requests still queued in the kernel when the
//! thread exits. So each thread that submits has a record (`thread`) counting
//! its requests in the kernel; when it exits, its destructor waits, draining,
//! until they are done (they are of bounded length: see Submission). No
//! request is ever submitted again, so no descriptor is looked up twice.
//!
//! # Fork
//! The state is [`ForkLocal`]: a child sets up a ring of its own; the
//! parent's ring is not even mapped there (`MADV_DONTFORK`).

#[cfg(test)]
mod model;
mod ring;
mod thread;

use super::process::{self, ForkLocal};
use super::service;
use super::user::submit::{run_all_here, run_here};
use super::user::wait::Wait;
use super::user::{Control, Executor, Op, Req};
use crate::sync::{self, Mutex};
use crate::sys;
use crate::sys::uring::RingRef;
use crate::sys::Errno;
use core::cell::UnsafeCell;
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use linux_raw_sys::io_uring::{
    io_uring_getevents_arg, IORING_ENTER_EXT_ARG, IORING_ENTER_GETEVENTS, IORING_SQ_CQ_OVERFLOW,
};
pub(crate) use ring::Refused;
use ring::{Ring, Sqe};

/// The token's bit: held by a drainer.
const HELD: u32 = 1;
/// The kernel's signal-set size, for the wait's mask.
const SIGSET_BYTES: u32 = 8;
/// The service's safety net: while requests are in the kernel and nobody
/// is known to drain them, it looks this often.
const TICK_NS: u64 = 10_000_000;

/// The engine's process state.
struct Uring {
    /// 0: no ring; 1: being set up; 2: ready.
    ready: AtomicU32,
    ring: UnsafeCell<Option<Ring>>,
    /// Serialises writers of SQEs; holds our tail (written, not published).
    sq: Mutex<u32>,
    /// The drainer's token: [`HELD`] (and `sync::WAITERS`).
    token: AtomicU32,
    /// Bumped after each drain pass by a holder and when the token is let
    /// go: what the service waits on when it finds the token held.
    epoch: AtomicU32,
    /// Requests in the kernel, not yet drained.
    pending: AtomicU32,
    /// Reasons the service must watch the ring: requests that must be
    /// posted with no library call, and waiters without the token.
    need: AtomicU32,
    /// The CQ head the service saw at its last tick.
    seen: AtomicU32,
    /// Threads asleep in the ring (0 or 1: the token's holder).
    in_ring: AtomicU32,
    /// The service counts on looking at the ring each tick (it saw
    /// requests in the kernel); else the first new one kicks it.
    ticking: AtomicBool,
}

// SAFETY: `ring` is written once, before `ready` is 2 (release), and read
// only after (acquire); everything else is atomic or behind a lock.
unsafe impl Sync for Uring {}

static URING: ForkLocal<Uring> = ForkLocal::new();

fn state() -> Option<&'static Uring> {
    URING.get(|| Uring {
        ready: AtomicU32::new(0),
        ring: UnsafeCell::new(None),
        sq: Mutex::new(0),
        token: AtomicU32::new(0),
        epoch: AtomicU32::new(0),
        pending: AtomicU32::new(0),
        need: AtomicU32::new(0),
        seen: AtomicU32::new(0),
        in_ring: AtomicU32::new(0),
        ticking: AtomicBool::new(false),
    })
}

impl Uring {
    fn ring(&self) -> Option<&Ring> {
        if self.ready.load(Ordering::Acquire) != 2 {
            return None;
        }
        // SAFETY: written once before `ready` became 2 (acquired above),
        // never again.
        unsafe { (*self.ring.get()).as_ref() }
    }
}

/// The engine: the one instance contexts point at.
pub(crate) struct UringExec;

/// The io_uring engine, for new contexts.
pub(crate) static ENGINE: UringExec = UringExec;

/// Sets up the process's ring if it has none yet.
pub(crate) fn ensure() -> Result<(), Refused> {
    let Some(st) = state() else {
        return Err(Refused {
            errno: Errno(libc::ENOMEM),
            why: "no memory for the engine's state",
        });
    };
    loop {
        match st
            .ready
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Acquire)
        {
            Ok(_) => {
                let made = ring::create();
                if let Ok(r) = made {
                    super::channel::own(r.fd, r.id);
                    // SAFETY: only this thread (which moved `ready` from 0 to
                    // 1) writes it, and nobody reads it before `ready` is 2.
                    unsafe { *st.ring.get() = Some(r) };
                    st.ready.store(2, Ordering::Release);
                    service::set_ring(
                        r.fd,
                        r.id,
                        service::RingHooks {
                            watch: service_watch,
                            tick: service_tick,
                            drain: service_drain,
                            adopt: service_adopt,
                        },
                    );
                    return Ok(());
                }
                st.ready.store(0, Ordering::Release);
                return made.map(drop);
            }
            Err(2) => return Ok(()),
            Err(_) => core::hint::spin_loop(),
        }
    }
}

impl Executor for UringExec {
    fn name(&self) -> &'static str {
        "io_uring"
    }

    fn async_buffered(&self) -> bool {
        true
    }

    unsafe fn start(&self, _ctl: &Control, reqs: &[*mut Req]) {
        let (Some(st), Some(me)) = (state(), thread::current()) else {
            // SAFETY: the caller's promise (Executor::start).
            return unsafe { run_all_here(reqs) };
        };
        let Some(ring) = st.ring() else {
            // SAFETY: the caller's promise (Executor::start).
            return unsafe { run_all_here(reqs) };
        };
        let Some(rref) = me.ring_ref(ring) else {
            // SAFETY: the caller's promise (Executor::start).
            return unsafe { run_all_here(reqs) };
        };
        // The service is the safety net for every request in the ring (a
        // program may read its ring at any time), and posts those that must
        // be posted with no library call: without it (no thread can start),
        // requests are done here, as kernel AIO would do them.
        if !service::can_watch_ring() {
            // SAFETY: the caller's promise (Executor::start).
            return unsafe { run_all_here(reqs) };
        }
        let mut taken = [ptr::null_mut::<Req>(); 64];
        let mut n = 0;
        let mut syncs = [ptr::null_mut::<Req>(); 64];
        let mut nsyncs = 0;
        for &req in reqs {
            // SAFETY: the submitter's filled record, about to be handed over.
            let r = unsafe { &mut *req };
            if matches!(r.op, Op::Fsync | Op::Fdsync) {
                // io_uring takes a sync's file only when its worker runs it
                // (the op is always punted), after io_submit has returned:
                // by then the number may name another file or none. Done
                // here, with the file the program named, once the rest of
                // the batch is on its way.
                syncs[nsyncs] = req;
                nsyncs += 1;
                continue;
            }
            // SAFETY: as above; its eventfd goes to the service, which holds it.
            if r.resfd >= 0 && unsafe { service::hold_eventfd(req) }.is_err() {
                // SAFETY: a record of this io_submit, not handed over.
                unsafe { run_here(req) };
                continue;
            }
            r.owner = me as *const thread::Thread as usize;
            me.inflight.fetch_add(1, Ordering::SeqCst);
            if r.prompt {
                need_more(st);
            }
            taken[n] = req;
            n += 1;
        }
        if n > 0 {
            // SAFETY: the caller's records (Executor::start), each taken once.
            unsafe { enter_batch(st, ring, rref, &taken[..n]) };
        }
        // SAFETY: records of this io_submit, not handed over.
        syncs[..nsyncs].iter().for_each(|&req| unsafe { run_here(req) });
    }

    fn reserve_poll(&self, nfds: u32) -> bool {
        service::reserve_poll(nfds)
    }

    fn release_poll(&self, nfds: u32) {
        service::release_poll(nfds);
    }

    unsafe fn start_poll(&self, req: *mut Req) -> Result<(), Errno> {
        // SAFETY: the caller's promise, passed on.
        unsafe { service::start_poll(req) }
    }

    fn cancel_polls(&self, ctl: &Control, obj: Option<u64>) -> bool {
        service::cancel_polls(ctl, obj)
    }

    fn wait(
        &self,
        ctl: Option<&Control>,
        done: &dyn Fn() -> bool,
        standby: &dyn Fn(Option<u64>) -> Wait,
        deadline: Option<u64>,
        sigmask: *const libc::sigset_t,
    ) -> Wait {
        wait(ctl, done, standby, deadline, sigmask)
    }

    fn nudge(&self) {
        nudge();
    }

    fn returned(&self) {
        if state().is_some_and(|st| st.in_ring.load(Ordering::SeqCst) > 0) {
            nudge();
        }
    }
}

/// Before writing the SQE at `tail`: if the SQ is full, enters what is
/// written (the kernel takes every entry of a batch before it returns).
fn make_room(st: &Uring, ring: &Ring, me: RingRef, tail: &mut u32) {
    while tail.wrapping_sub(ring.sq_head()) >= ring.sq_entries {
        ring.publish(*tail);
        enter_until(st, ring, me, *tail);
    }
}

/// Enters `taken` (reads and writes, counted in) into the ring, under the
/// submission lock, then drains what completed meanwhile.
///
/// # Safety
/// Each record of `taken` was filled by the calling `io_submit` and is
/// handed to no one else: the kernel takes it here.
unsafe fn enter_batch(st: &Uring, ring: &Ring, rref: RingRef, taken: &[*mut Req]) {
    let n = taken.len();
    // The service's safety net covers every request in the kernel: the
    // first one after a quiet spell tells it (each side writes its
    // word, then reads the other's; see `service_tick`).
    if st.pending.fetch_add(n as u32, Ordering::SeqCst) == 0 && !st.ticking.load(Ordering::SeqCst) {
        service::kick();
    }
    st.sq.with(|tail| {
        for &req in taken {
            // SAFETY: our filled record.
            let r = unsafe { &*req };
            let sqe = Sqe::Rw {
                write: r.writes(),
                fd: r.fd,
                iov: r.iov as u64,
                iovcnt: r.iovcnt as u32,
                offset: r.offset,
                rw_flags: r.rw_flags as u32,
                prio: r.prio,
            };
            make_room(st, ring, rref, tail);
            sqe.encode(ring.entry(*tail), req as u64);
            *tail = tail.wrapping_add(1);
            r.handed.fetch_add(1, Ordering::Release);
        }
        ring.publish(*tail);
        enter_until(st, ring, rref, *tail);
    });
    // Whatever completed meanwhile, while the token is free.
    try_drain(st, ring);
}

/// Enters the ring until the kernel has consumed every entry before `last`;
/// called with the submission lock held, so the entries are this thread's
/// own (io_uring ties a request to the thread that enters it: cancelled when
/// that thread exits, completed through it).
///
/// A full CQ (`EBUSY`) is drained here if the token is free: draining under
/// the submission lock is safe because a post takes that lock (`nudge`)
/// only to wake a thread asleep in the ring, and such a thread holds the
/// token, which we then do not.
fn enter_until(st: &Uring, ring: &Ring, me: RingRef, last: u32) {
    let mut spins = 0u32;
    loop {
        let waiting = last.wrapping_sub(ring.sq_head());
        if waiting == 0 || waiting > ring.sq_entries {
            return; // consumed (the head passed `last`)
        }
        // SAFETY: no extended argument.
        match unsafe { sys::uring::enter(me, waiting, 0, 0, ptr::null(), 0) } {
            Ok(_) | Err(sys::Errno(libc::EINTR)) => {}
            Err(_) => {
                // EBUSY, EAGAIN: completions must be taken first (the CQ is
                // full), or memory must come back.
                if !try_drain(st, ring) {
                    spins += 1;
                    sys::thread::sleep_ns(if spins < 10 { 10_000 } else { 1_000_000 });
                }
            }
        }
    }
}

/// One more reason for the service to watch the ring.
fn need_more(st: &Uring) {
    if st.need.fetch_add(1, Ordering::SeqCst) == 0 && st.token.load(Ordering::SeqCst) & HELD == 0 {
        service::kick();
    }
}

fn need_less(st: &Uring) {
    st.need.fetch_sub(1, Ordering::SeqCst);
}

fn try_token(st: &Uring) -> bool {
    st.token.fetch_or(HELD, Ordering::SeqCst) & HELD == 0
}

/// Lets the token go; if somebody depends on the ring meanwhile, the
/// service watches it (invariant 2).
fn release(st: &Uring) {
    let prev = st.token.fetch_and(!HELD, Ordering::SeqCst);
    sync::wake(&st.token, prev);
    // The service may wait for the holder to be done (`service_drain`).
    bump_epoch(st);
    if st.need.load(Ordering::SeqCst) > 0 {
        service::kick();
    }
}

/// A drain pass ended, or the token went: wakes who waits for either.
fn bump_epoch(st: &Uring) {
    let prev = st.epoch.fetch_add(1, Ordering::SeqCst);
    sync::wake(&st.epoch, prev);
}

/// Drains the CQ if the token is free: whether anything was drained.
fn try_drain(st: &Uring, ring: &Ring) -> bool {
    let (head, tail) = ring.cq();
    if head == tail && ring.sq_flags() & IORING_SQ_CQ_OVERFLOW == 0 {
        return false;
    }
    if !try_token(st) {
        return false;
    }
    let any = drain_held(st, ring);
    release(st);
    any
}

/// Drains the CQ (the caller holds the token): each CQE becomes its
/// request's event. Whether any was drained.
fn drain_held(st: &Uring, ring: &Ring) -> bool {
    let mut any = false;
    let mut entered = false;
    loop {
        let (mut head, tail) = ring.cq();
        if head == tail {
            // Completions the CQ had no room for come in on an enter.
            if !entered && ring.sq_flags() & IORING_SQ_CQ_OVERFLOW != 0 {
                entered = true;
                if let Some(me) = thread::current().and_then(|t| t.ring_ref(ring)) {
                    // SAFETY: no extended argument.
                    let _ = unsafe { sys::uring::enter(me, 0, 0, IORING_ENTER_GETEVENTS, ptr::null(), 0) };
                }
                continue;
            }
            break;
        }
        while head != tail {
            let (user_data, res) = ring.cqe(head);
            head = head.wrapping_add(1);
            // Given back before the event is posted: the slot is copied out.
            ring.set_cq_head(head);
            any = true;
            if user_data != 0 {
                // SAFETY: `user_data` of our SQEs: a record in flight, held
                // by the kernel until now, whose context cannot go (destroy
                // waits for it).
                unsafe { complete(st, user_data as usize as *mut Req, res) };
            }
        }
    }
    bump_epoch(st);
    any
}

/// One CQE's request: posted, and given back (or to the service, which
/// signals its eventfd first).
///
/// # Safety
/// `req` is a record in flight whose CQE this is.
unsafe fn complete(st: &Uring, req: *mut Req, res: i32) {
    // SAFETY: the caller's promise.
    let r = unsafe { &*req };
    r.handed.load(Ordering::Acquire);
    // SAFETY: a record's control block outlives it.
    let ctl = unsafe { &*r.ctl };
    let (prompt, owner, wants_signal) = (r.prompt, r.owner, r.resfd >= 0);
    // -ECANCELED: its thread exited without its destructor running (io_uring
    // cancels what such a thread left in the kernel): the request ends with
    // that answer; it is never submitted again.
    // SAFETY: the caller's promise: the record is ours until given back.
    unsafe { ctl.post_req(req, i64::from(res)) };
    st.pending.fetch_sub(1, Ordering::SeqCst);
    if prompt {
        need_less(st);
    }
    if wants_signal {
        // The service that holds the eventfd signals it, in its own
        // table, then gives the record back (whichever thread drained).
        // SAFETY: the caller's promise: the service takes the record.
        unsafe { service::signal_later(req) };
    } else {
        // SAFETY: as above: ours to give back.
        unsafe { ctl.finish(req) };
    }
    // The submitting thread's count, last: its record may go once it is 0.
    thread::done(owner);
}

/// Sleeps until `done()`, the deadline or a signal handler, in the ring
/// with the token if it is free (invariant 1), else on `standby`.
fn wait(
    ctl: Option<&Control>,
    done: &dyn Fn() -> bool,
    standby: &dyn Fn(Option<u64>) -> Wait,
    deadline: Option<u64>,
    sigmask: *const libc::sigset_t,
) -> Wait {
    let (Some(st), Some(me)) = (state(), thread::current()) else {
        return standby(deadline);
    };
    let Some(ring) = st.ring() else {
        return standby(deadline);
    };
    let Some(rref) = me.ring_ref(ring) else {
        return standby(deadline);
    };
    let mut took = try_token(st);
    if !took {
        // Invariant 2: counted, then the token looked at again.
        st.need.fetch_add(1, Ordering::SeqCst);
        took = try_token(st);
        if took {
            need_less(st);
        }
    }
    if took {
        let w = hold(st, ring, rref, ctl, done, deadline, sigmask);
        release(st);
        return w;
    }
    let w = if service::kick() || st.token.load(Ordering::SeqCst) & HELD != 0 {
        // The holder or the service drains for us.
        standby(deadline)
    } else {
        // Nobody can drain for us (no service could start): a short sleep,
        // then the token is tried again by our caller.
        standby(Some(
            process::left(deadline).map_or(1_000_000, |l| l.min(1_000_000)) + sys::thread::now_ns(),
        ))
    };
    need_less(st);
    if w == Wait::TimedOut && process::left(deadline) != Some(0) {
        return Wait::Woken; // the short sleep, not the caller's deadline
    }
    w
}

/// The holder's loop: drain, look, sleep in the ring.
fn hold(
    st: &Uring,
    ring: &Ring,
    me: RingRef,
    ctl: Option<&Control>,
    done: &dyn Fn() -> bool,
    deadline: Option<u64>,
    sigmask: *const libc::sigset_t,
) -> Wait {
    loop {
        drain_held(st, ring);
        if done() {
            return Wait::Woken;
        }
        if let Some(c) = ctl {
            c.ring_sleepers.fetch_add(1, Ordering::SeqCst);
        }
        st.in_ring.fetch_add(1, Ordering::SeqCst);
        // Looked at again once counted: an event posted, or a record given
        // back, before would not have nudged us (invariant 4).
        let r = if done() {
            Some(Wait::Woken)
        } else {
            sleep_in_ring(me, deadline, sigmask)
        };
        st.in_ring.fetch_sub(1, Ordering::SeqCst);
        if let Some(c) = ctl {
            c.ring_sleepers.fetch_sub(1, Ordering::SeqCst);
        }
        match r {
            None => {}
            Some(w) => {
                drain_held(st, ring);
                return w;
            }
        }
    }
}

/// Sleeps in `io_uring_enter` until a CQE (None: look again), the deadline
/// or a signal handler, with `sigmask` in force meanwhile.
fn sleep_in_ring(me: RingRef, deadline: Option<u64>, sigmask: *const libc::sigset_t) -> Option<Wait> {
    let mut ts = linux_raw_sys::general::__kernel_timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    if let Some(left) = process::left(deadline) {
        if left == 0 {
            return Some(Wait::TimedOut);
        }
        ts.tv_sec = (left / 1_000_000_000) as _;
        ts.tv_nsec = (left % 1_000_000_000) as _;
    }
    let arg = io_uring_getevents_arg {
        sigmask: sigmask as u64,
        sigmask_sz: SIGSET_BYTES,
        min_wait_usec: 0,
        ts: if deadline.is_some() {
            &raw const ts as u64
        } else {
            0
        },
    };
    // SAFETY: our getevents argument, its timespec, and the caller's mask
    // (checked readable), alive for the call.
    let r = unsafe {
        sys::uring::enter(
            me,
            0,
            1,
            IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG,
            (&raw const arg).cast(),
            core::mem::size_of::<io_uring_getevents_arg>(),
        )
    };
    match r {
        Err(sys::Errno(libc::EINTR)) => Some(Wait::Interrupted),
        Err(sys::Errno(libc::ETIME)) if process::left(deadline) == Some(0) => Some(Wait::TimedOut),
        Err(sys::Errno(e)) if e != libc::ETIME && e != libc::EAGAIN && e != libc::EBUSY => {
            // The ring cannot be waited on: the caller waits otherwise.
            Some(Wait::Woken)
        }
        _ => None,
    }
}

/// Wakes the thread asleep in the ring (an event reached the context it
/// waits for some other way than through a CQE): a `NOP`.
pub(crate) fn nudge() {
    let (Some(st), Some(me)) = (state(), thread::current()) else {
        return;
    };
    let Some(ring) = st.ring() else { return };
    let Some(rref) = me.ring_ref(ring) else { return };
    st.sq.with(|tail| {
        make_room(st, ring, rref, tail);
        Sqe::Nop.encode(ring.entry(*tail), 0);
        *tail = tail.wrapping_add(1);
        ring.publish(*tail);
        enter_until(st, ring, rref, *tail);
    });
}

/// Whether the service must watch the ring now (invariant 3).
fn service_watch() -> bool {
    state()
        .is_some_and(|st| st.need.load(Ordering::SeqCst) > 0 && st.token.load(Ordering::SeqCst) & HELD == 0)
}

/// The service's safety net: while requests are in the kernel, it looks
/// every tick for completions nobody took.
fn service_tick() -> Option<u64> {
    let st = state()?;
    st.ticking.store(false, Ordering::SeqCst);
    let busy = st.pending.load(Ordering::SeqCst) > 0;
    if busy {
        st.ticking.store(true, Ordering::SeqCst);
    }
    busy.then_some(TICK_NS)
}

/// The service thread enters the ring through its own descriptor for it.
fn service_adopt(ring_fd: i32) {
    if let Some(ring) = state().and_then(|st| st.ring()) {
        thread::adopt(ring_fd, ring);
    }
}

/// The service drains (it has adopted its descriptor for the ring).
fn service_drain(_ring_fd: i32) {
    let Some(st) = state() else { return };
    let Some(ring) = st.ring() else { return };
    let (head, tail) = ring.cq();
    if head == tail {
        return;
    }
    if !service_watch() {
        // A tick: only completions that have waited a whole tick.
        let seen = st.seen.swap(tail, Ordering::Relaxed);
        if seen.wrapping_sub(head) as i32 <= 0 {
            return;
        }
    }
    if try_drain(st, ring) {
        return;
    }
    // A waiter holds the token and was woken by the same completion: let
    // it drain, then look again.
    let e = st.epoch.load(Ordering::SeqCst);
    sync::wait_while(&st.epoch, |v| {
        v & !sync::WAITERS == e & !sync::WAITERS && st.token.load(Ordering::SeqCst) & HELD != 0 && {
            let (h, t) = ring.cq();
            h != t
        }
    });
}

/// For the thread-exit destructor: waits until a thread's requests are out
/// of the kernel, draining (see `thread`).
fn wait_for_thread(count: &AtomicU32) {
    use crate::sync::WAITERS;
    let done = || count.load(Ordering::SeqCst) & !WAITERS == 0;
    let standby = |deadline: Option<u64>| {
        let v = count.load(Ordering::SeqCst);
        if v & !WAITERS != 0
            && (v & WAITERS != 0
                || count
                    .compare_exchange(v, v | WAITERS, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok())
        {
            let left = process::left(deadline).unwrap_or(86_400_000_000_000);
            sys::futex_sleep(count, v | WAITERS, left);
        }
        Wait::Woken
    };
    while !done() {
        wait(None, &done, &standby, None, ptr::null());
    }
}
