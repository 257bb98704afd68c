//! The gate: who may touch a kernel ring's head.
//!
//! The kernel's `io_getevents` moves the head under a lock user space cannot
//! see, so the kernel's reader and a user-space reader must never run on one
//! ring at once, or an event may be delivered twice or lost. The exclusion is
//! a *gate* word per hash bucket ("home"), shared by every address that hashes
//! there, whether or not it is registered:
//! - [`USER`]: one thread is copying events from a ring of this home. Taken
//!   only when no reader is counted, so it never overlaps a kernel reader;
//! - the low bits count threads inside the kernel's `io_getevents` or
//!   `io_pgetevents` for any address of this home. A thread is counted before
//!   it looks the context up and stays counted until the kernel has answered,
//!   so whatever happens to the context meanwhile (destroyed, set up again at
//!   the same address, registered, reaped) no user-space copy of that address
//!   runs while it is in the kernel.
//!
//! Because the count is kept by address and not by slot, destroying a
//! context never waits for its readers, and a late caller can never be in the
//! kernel uncounted.
//!
//!
//! The gate words live in the registry's slots (`registry::Table::gate`);
//! the steps on them are here, and `reap` takes them in this order: a copy
//! holds `USER` from before it checks the slot until it has moved the head;
//! a reader is counted from before the system call until the kernel has
//! answered; `user_to_reader` turns one into the other without a gap.

use crate::sync::{self, WAITERS};
use core::sync::atomic::{AtomicU32, Ordering};

/// Gate: a thread is copying events out of a ring of this home.
pub(crate) const USER: u32 = 1 << 31;
/// Gate, bits 0..29: threads inside the kernel for an address of this home.
pub(crate) const READERS: u32 = WAITERS - 1;

/// Why [`try_user`] could not take the gate.
pub(crate) enum Busy {
    /// Another thread is copying from a ring of this home.
    User,
    /// Threads are in the kernel for an address of this home.
    Readers,
}

/// Takes `USER` on a gate (sequentially consistent: see the module docs).
pub(crate) fn try_user(gate: &AtomicU32) -> Result<(), Busy> {
    loop {
        let g = gate.load(Ordering::Relaxed);
        if g & USER != 0 {
            return Err(Busy::User);
        }
        if g & READERS != 0 {
            return Err(Busy::Readers);
        }
        if gate
            .compare_exchange_weak(g, g | USER, Ordering::SeqCst, Ordering::Relaxed)
            .is_ok()
        {
            return Ok(());
        }
    }
}

/// Lets `USER` go.
pub(crate) fn release_user(gate: &AtomicU32) {
    let prev = gate.fetch_and(!USER, Ordering::Release);
    sync::wake(gate, prev);
}

/// Turns the holder of `USER` into a counted kernel reader in one step.
pub(crate) fn user_to_reader(gate: &AtomicU32) {
    // While USER is held no reader is counted, so this leaves exactly one.
    let prev = gate.fetch_sub(USER - 1, Ordering::AcqRel);
    sync::wake(gate, prev);
}

/// Waits until nobody copies from a ring of this home.
pub(crate) fn wait_no_user(gate: &AtomicU32) {
    sync::wait_while(gate, |g| g & USER != 0);
}

/// Counts the caller in as a kernel reader; waits while a copy runs or the
/// count is full.
pub(crate) fn enter_kernel(gate: &AtomicU32) {
    let blocked = |g: u32| g & USER != 0 || g & READERS == READERS;
    loop {
        let g = gate.load(Ordering::Relaxed);
        if blocked(g) {
            sync::wait_while(gate, blocked);
            continue;
        }
        if gate
            .compare_exchange_weak(g, g + 1, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return;
        }
    }
}

/// Counts a kernel reader out.
pub(crate) fn leave_kernel(gate: &AtomicU32) {
    let prev = gate.fetch_sub(1, Ordering::Release);
    sync::wake(gate, prev);
}
