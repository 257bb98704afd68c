//! Waiting for another thread of this process.
//!
//! Every wait in the library is for another thread to finish something short
//! (a copy of at most `nr` events, a peek at two indices, a registration) or
//! for a destroy to end. A waiter spins briefly, then sleeps in `futex(2)`,
//! the one system call beyond libaio's that the library may make after it is
//! loaded: every threaded program's seccomp filter allows it (pthreads need
//! it), and a single-threaded program never waits.
//!
//! A word that may be slept on keeps bit [`WAITERS`] for this: a sleeper sets
//! it before sleeping, and whoever changes the word in a way that may let a
//! sleeper go on calls [`wake`] with the value the word had before the change,
//! which costs a system call only when somebody sleeps.

use crate::sys;
use core::sync::atomic::{AtomicU32, Ordering};

/// Somebody sleeps on this word (or did, and will look again).
pub(crate) const WAITERS: u32 = 1 << 29;

/// Busy-wait rounds before sleeping: long enough for a copy of a few events
/// on another core, short enough not to burn a time slice when the other
/// thread was preempted.
const SPINS: u32 = 100;

/// Returns the first value of `word` for which `blocked` is false, sleeping
/// while it is true. Loads are sequentially consistent: callers use them as
/// the second half of a store-then-load handshake.
pub(crate) fn wait_while(word: &AtomicU32, blocked: impl Fn(u32) -> bool) -> u32 {
    let mut spins = 0;
    loop {
        let v = word.load(Ordering::SeqCst);
        if !blocked(v) {
            return v;
        }
        if spins < SPINS {
            spins += 1;
            core::hint::spin_loop();
            continue;
        }
        if v & WAITERS == 0
            && word
                .compare_exchange_weak(v, v | WAITERS, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            continue;
        }
        // Sleeps only while the word is still exactly what was judged blocked.
        sys::futex_wait(word, v | WAITERS);
    }
}

/// Wakes the sleepers of `word` after a change that may unblock them; `prev`
/// is the value the change replaced.
pub(crate) fn wake(word: &AtomicU32, prev: u32) {
    if prev & WAITERS != 0 {
        // Cleared first: a sleeper that is still blocked sets it again before
        // it sleeps, so no later change misses it.
        word.fetch_and(!WAITERS, Ordering::Relaxed);
        sys::futex_wake_all(word);
    }
}

/// A lock for rare, short critical sections (registering a context).
pub(crate) struct Lock(AtomicU32);

const LOCKED: u32 = 1;

impl Lock {
    pub(crate) const fn new() -> Lock {
        Lock(AtomicU32::new(0))
    }

    /// Runs `f` with the lock held.
    pub(crate) fn with<R>(&self, f: impl FnOnce() -> R) -> R {
        loop {
            let v = self.0.load(Ordering::Relaxed);
            if v & LOCKED == 0 {
                if self
                    .0
                    .compare_exchange_weak(v, v | LOCKED, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    break;
                }
                continue;
            }
            wait_while(&self.0, |v| v & LOCKED != 0);
        }
        let r = f();
        let prev = self.0.fetch_and(!LOCKED, Ordering::Release);
        wake(&self.0, prev);
        r
    }
}

/// A value behind a [`Lock`].
pub(crate) struct Mutex<T> {
    lock: Lock,
    value: core::cell::UnsafeCell<T>,
}

// SAFETY: the value is only reached through `with`, which holds the lock, so
// one thread at a time has it; T moves between threads, hence T: Send.
unsafe impl<T: Send> Sync for Mutex<T> {}

impl<T> Mutex<T> {
    pub(crate) const fn new(value: T) -> Mutex<T> {
        Mutex {
            lock: Lock::new(),
            value: core::cell::UnsafeCell::new(value),
        }
    }

    /// Runs `f` on the value with the lock held.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        self.lock.with(|| {
            // SAFETY: the lock is held, so no other reference to the value exists.
            f(unsafe { &mut *self.value.get() })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::vec::Vec;

    #[test]
    fn a_sleeper_is_woken_by_the_change_it_waits_for() {
        let word = Arc::new(AtomicU32::new(1));
        let w = word.clone();
        let t = std::thread::spawn(move || wait_while(&w, |v| v & 1 != 0));
        // Long enough for the waiter to go past its spins and sleep.
        while word.load(Ordering::SeqCst) & WAITERS == 0 {
            std::thread::yield_now();
        }
        let prev = word.fetch_and(!1, Ordering::SeqCst);
        wake(&word, prev);
        assert_eq!(t.join().expect("waiter") & 1, 0);
        assert_eq!(word.load(Ordering::SeqCst), 0, "WAITERS cleared by the waker");
    }

    #[test]
    fn the_lock_excludes() {
        static LOCK: Lock = Lock::new();
        static mut COUNTER: u64 = 0;
        // Under Miri, whose scheduler preempts at random, a few hundred
        // rounds explore the interleavings that 10,000 do natively.
        const ROUNDS: u64 = if cfg!(miri) { 300 } else { 10_000 };
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| {
                    for _ in 0..ROUNDS {
                        LOCK.with(|| {
                            // SAFETY: only ever touched with LOCK held.
                            unsafe { COUNTER += 1 };
                        });
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        // SAFETY: every writer has been joined.
        assert_eq!(LOCK.with(|| unsafe { COUNTER }), 4 * ROUNDS);
    }
}
