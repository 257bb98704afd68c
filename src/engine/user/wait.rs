//! `io_getevents` on a user-space context, and waiting for its events.
//!
//! # The wait
//! A sleeper reads the context's `seq` *before* it looks at the ring, then
//! sleeps only while `seq` is unchanged: every post bumps `seq` after its
//! event is in the ring, so an event posted after the look ends the sleep.
//! Posters wake sleepers only when `sleepers` says there are some; both
//! sides write their word, then read the other's (sequentially consistent),
//! so either the poster sees the sleeper or the sleeper sees the new `seq`.
//!
//! Nothing but a completion, the deadline, a signal handler or `io_destroy`
//! ends a wait: no timer stands in for a wake-up. On io_uring the sleeper
//! may instead be the one thread asleep in the io_uring itself, woken by the
//! kernel's completion directly (`uring`).
//!
//! With a signal mask (`io_pgetevents`) the thread's mask is swapped for the
//! wait and put back after: a signal that arrives in the instant between the
//! swap and the sleep runs its handler but does not end the wait (the
//! io_uring sleeper installs the mask atomically, as the kernel does).

use super::{control, Control};
use crate::engine::process;
use crate::registry::EmuPin;
use crate::ring;
use crate::sys::Errno;
use crate::sys::{self, Slept};
use crate::uaccess;
use core::ffi::c_long;
use core::mem::size_of;
use core::ptr;
use core::sync::atomic::{AtomicU32, Ordering};

/// How a wait ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Wait {
    Woken,
    TimedOut,
    Interrupted,
}

/// `io_getevents`/`io_pgetevents` on a user-space context. `sigmask` is the
/// caller's mask for the wait (NULL: none).
///
/// # Safety
/// `timeout` is NULL or readable (read in user space for the zero-timeout
/// answer, as libaio reads it).
#[inline(never)] // off the kernel path: one copy, not one per entry point
pub(crate) unsafe fn getevents(
    pin: &EmuPin,
    min_nr: c_long,
    nr: c_long,
    events: *mut crate::abi::io_event,
    timeout: *mut libc::timespec,
    sigmask: *const libc::sigset_t,
) -> i32 {
    let ctl = control(pin);
    if !ctl.driven.load(Ordering::Relaxed) {
        ctl.driven.store(true, Ordering::Relaxed);
    }
    // libaio's own answer, before any check: empty ring, zero timeout. It
    // reads the timeout in user space when the ring's magic is right, and
    // so do we (once: the kernel would read it again, through its checked
    // copy, only where libaio did not).
    // SAFETY: a pinned context's ring is mapped.
    let magic_ok = unsafe { ring::has_magic(ctl.ring_addr()) };
    let direct = (!timeout.is_null() && magic_ok).then(|| {
        // SAFETY: the caller's promise; libaio reads it the same way.
        unsafe { ptr::read_unaligned(timeout) }
    });
    let zero = direct.is_some_and(|t| t.tv_sec == 0 && t.tv_nsec == 0);
    // SAFETY: a pinned context's ring is mapped.
    if zero && unsafe { ring::looks_empty(ctl.ring_addr()) } {
        return 0;
    }
    let Some(pid) = process::pid() else {
        return -libc::EINVAL;
    };
    // io_pgetevents reads the mask first of all.
    if !sigmask.is_null() {
        let mut m = [0u8; 8];
        if sys::read_user(pid, sigmask as usize, &mut m) != m.len() {
            return -libc::EFAULT;
        }
    }
    if min_nr < 0 || min_nr > nr {
        return -libc::EINVAL;
    }
    let deadline = if timeout.is_null() {
        None
    } else if let Some(t) = direct {
        Some(process::deadline(&t))
    } else {
        let mut raw = [0u8; size_of::<libc::timespec>()];
        if sys::read_user(pid, timeout as usize, &mut raw) != raw.len() {
            return -libc::EFAULT;
        }
        // SAFETY: a timespec's bytes, any value of which is valid.
        let t: libc::timespec = unsafe { core::mem::transmute(raw) };
        Some(process::deadline(&t))
    };
    let mut got: c_long = 0;
    loop {
        // Both read before the ring, `seq` first: a request stops being due
        // before its post moves `seq` (`Control::post_req`), so either this
        // `due` counts it no more and its event is in the ring, or the post
        // moves `seq` after this look and wakes us.
        let seq = ctl.seq.load(Ordering::SeqCst);
        let due = ctl.due.load(Ordering::Acquire);
        match reap(ctl, pid, events.wrapping_add(got as usize), nr - got) {
            Ok(n) => got += n as c_long,
            Err(e) => return if got > 0 { got as i32 } else { e.neg() },
        }
        if pin.dead() {
            return if got > 0 { got as i32 } else { -libc::EINVAL };
        }
        // min_nr 0 asks for what has completed, which on kernel AIO includes
        // every buffered request submitted: wait for those still due.
        let owed = min_nr == 0 && due > 0 && got < nr && !zero;
        if (got >= min_nr && !owed) || zero {
            if !sigmask.is_null() {
                // The kernel installs the mask for the call even when events
                // are ready: a pending signal it lets in is delivered now.
                sys::thread::let_signals_in(sigmask);
            }
            return got as i32;
        }
        let woke = wait_for_post(ctl, seq, pin, deadline, sigmask);
        match woke {
            Wait::Woken => {}
            Wait::TimedOut => {
                // Events that came with the deadline are still taken.
                if let Ok(n) = reap(ctl, pid, events.wrapping_add(got as usize), nr - got) {
                    got += n as c_long;
                }
                return got as i32;
            }
            Wait::Interrupted => return if got > 0 { got as i32 } else { -libc::EINTR },
        }
    }
}

/// Copies up to `max` events from the ring into the caller's array and moves
/// the head on: how many, or EFAULT (nothing taken) for a bad array.
fn reap(ctl: &Control, pid: i32, out: *mut crate::abi::io_event, max: c_long) -> Result<u32, Errno> {
    ctl.reap.with(|| {
        // The kernel's reader (aio_read_events_ring): equal indices, nothing;
        // else both taken modulo the ring's size, and the head written back
        // so, even when no event is taken (the program may have written
        // them out of range).
        let (raw_head, raw_tail) = (
            ctl.head().load(Ordering::Acquire),
            ctl.tail().load(Ordering::Acquire),
        );
        if raw_head == raw_tail {
            return Ok(0);
        }
        let (head, tail) = (raw_head % ctl.nr, raw_tail % ctl.nr);
        let ready = if tail >= head {
            tail - head
        } else {
            tail + ctl.nr - head
        };
        let n = (ready as c_long).min(max.max(0)) as u32;
        if n == 0 {
            ctl.head().store(head, Ordering::Release);
            return Ok(0);
        }
        let ev = size_of::<crate::abi::io_event>();
        let len = n as usize * ev;
        if !uaccess::writable(out.cast(), len) {
            // Through the kernel first: a bad array is EFAULT, not a fault;
            // a good one is remembered, and written directly from then on.
            let first = n.min(ctl.nr - head);
            // SAFETY: `first` (then n - first) events of our mapped ring.
            let a = unsafe { core::slice::from_raw_parts(ctl.slot(head).cast::<u8>(), first as usize * ev) };
            // SAFETY: as above, from slot 0.
            let b =
                unsafe { core::slice::from_raw_parts(ctl.slot(0).cast::<u8>(), (n - first) as usize * ev) };
            if !sys::write_user(pid, out as usize, a) || !sys::write_user(pid, out as usize + a.len(), b) {
                return Err(Errno(libc::EFAULT));
            }
            uaccess::remember(out.cast(), len);
            ctl.head().store((head + n) % ctl.nr, Ordering::Release);
            return Ok(n);
        }
        // SAFETY: our mapped ring of nr slots (its magic is the program's
        // to write, and is not looked at).
        let r = unsafe { ring::Ring::ours(ctl.ring_addr(), ctl.nr) };
        // SAFETY: we hold the context's reaper lock (no other reader of
        // ours), n events are ready from head, and `out` is known writable
        // for n events.
        unsafe { r.take(head, n, out) };
        Ok(n)
    })
}

/// Sleeps until `ctl`'s `seq` moves past `seq` (an event was posted, or
/// destroy began), the deadline, or a signal handler.
fn wait_for_post(
    ctl: &Control,
    seq: u32,
    pin: &EmuPin,
    deadline: Option<u64>,
    sigmask: *const libc::sigset_t,
) -> Wait {
    let standby = |deadline| sleep(&ctl.seq, seq, &ctl.sleepers, deadline, sigmask);
    let moved = || ctl.seq.load(Ordering::SeqCst) != seq || pin.dead();
    ctl.exec.wait(Some(ctl), &moved, &standby, deadline, sigmask)
}

/// Waits until every record of `ctl` has come back (its destroy).
pub(crate) fn until_idle(ctl: &Control) {
    use crate::sync::WAITERS;
    let idle = || ctl.inflight.load(Ordering::SeqCst) & !WAITERS == 0;
    // Asleep on the count itself: the last record's `finish` wakes it by
    // address, its last touch of the mapping.
    let standby = |_| {
        let v = ctl.inflight.load(Ordering::SeqCst);
        if v & !WAITERS != 0
            && (v & WAITERS != 0
                || ctl
                    .inflight
                    .compare_exchange(v, v | WAITERS, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok())
        {
            sys::futex_wait(&ctl.inflight, v | WAITERS);
        }
        Wait::Woken
    };
    while !idle() {
        ctl.exec.wait(Some(ctl), &idle, &standby, None, ptr::null());
    }
}

/// Sleeps on the futex `word` while it holds `seen` (the value read before
/// the caller last looked), counted in `sleepers` so that changers wake it;
/// until `deadline`, with `sigmask` in force meanwhile.
pub(crate) fn sleep(
    word: &AtomicU32,
    seen: u32,
    sleepers: &AtomicU32,
    deadline: Option<u64>,
    sigmask: *const libc::sigset_t,
) -> Wait {
    let left = match process::left(deadline) {
        Some(0) => return Wait::TimedOut,
        Some(ns) => ns,
        // No deadline: a day at a time (the sleep must have a timeout for a
        // signal handler to end it with EINTR, as io_getevents is never
        // restarted).
        None => 86_400_000_000_000,
    };
    if !sigmask.is_null() && lets_pending_in(sigmask) {
        // The kernel would install the mask, see the signal pending and
        // answer -EINTR, its handler running on the way out.
        sys::thread::let_signals_in(sigmask);
        return Wait::Interrupted;
    }
    sleepers.fetch_add(1, Ordering::SeqCst);
    // SAFETY: the caller's mask, checked readable.
    let old = (!sigmask.is_null()).then(|| unsafe { sys::process::set_signal_mask(sigmask) });
    let r = if word.load(Ordering::SeqCst) == seen {
        sys::futex_sleep(word, seen, left)
    } else {
        Slept::Woken
    };
    if let Some(old) = old {
        // SAFETY: restores the mask saved above, ours.
        unsafe { sys::process::set_signal_mask(&old) };
    }
    sleepers.fetch_sub(1, Ordering::SeqCst);
    match r {
        Slept::Woken => Wait::Woken,
        Slept::Interrupted => Wait::Interrupted,
        Slept::TimedOut if deadline.is_some() && process::left(deadline) == Some(0) => Wait::TimedOut,
        Slept::TimedOut => Wait::Woken,
    }
}

/// Whether a signal pending now would be let in by `sigmask` (so the
/// kernel's wait with that mask would end at once).
fn lets_pending_in(sigmask: *const libc::sigset_t) -> bool {
    // SAFETY: the caller's mask, checked readable.
    unsafe { sys::process::pending_let_in(sigmask) }
}

/// Wakes the sleepers of `word` after a change to it (see [`sleep`]).
pub(crate) fn wake(word: &AtomicU32, sleepers: &AtomicU32) {
    if sleepers.load(Ordering::SeqCst) != 0 {
        sys::futex_wake_all(word);
    }
}
