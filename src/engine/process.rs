//! Process-wide state of the user-space engines that a forked child must not
//! inherit.
//!
//! A child has none of its parent's threads, and must neither take its
//! parent's completions nor wait for its parent's requests. Each piece of
//! such state is a [`ForkLocal`]: a page the kernel gives a forked child
//! zero-filled (`MADV_WIPEONFORK`), set up again on first use there.
//!
//! Invariant: a `ForkLocal` value is written once, by the thread that moved
//! its word from 0 to 1, and read only after the word is 2; a child sees 0.

use crate::sys;
use core::cell::UnsafeCell;
use core::mem::{align_of, size_of, MaybeUninit};
use core::sync::atomic::{AtomicPtr, AtomicU32, Ordering};

const PAGE: usize = 4096;

#[repr(C)]
struct Cell<T> {
    /// 0 in a fresh process (or a child), 1 while set up, 2 ready.
    init: AtomicU32,
    value: UnsafeCell<MaybeUninit<T>>,
}

/// A value set up on first use, wiped in a forked child.
pub(crate) struct ForkLocal<T: 'static> {
    page: AtomicPtr<Cell<T>>,
}

// SAFETY: the value is written once before `init` is 2 (release) and only
// shared-read after (acquire); T is Sync, so shared reads from any thread
// are sound.
unsafe impl<T: Sync> Sync for ForkLocal<T> {}

impl<T: Sync> ForkLocal<T> {
    pub(crate) const fn new() -> Self {
        ForkLocal {
            page: AtomicPtr::new(core::ptr::null_mut()),
        }
    }

    /// The value, set up with `make` on first use in this process (and again
    /// in a forked child); None when no page can be had.
    pub(crate) fn get(&'static self, make: impl FnOnce() -> T) -> Option<&'static T> {
        const { assert!(size_of::<Cell<T>>() <= PAGE && align_of::<Cell<T>>() <= PAGE) };
        let mut page = self.page.load(Ordering::Acquire);
        if page.is_null() {
            page = self.map()?;
        }
        // SAFETY: a page of ours, never unmapped; `init` (its first field,
        // repr(C)) is an atomic, valid at zero.
        let init = unsafe { &(*page).init };
        loop {
            match init.compare_exchange(0, 1, Ordering::Acquire, Ordering::Acquire) {
                Ok(_) => {
                    let v = make();
                    // SAFETY: our page; its `value` field.
                    let cell = unsafe { &(*page).value };
                    // SAFETY: only this thread (which moved init from 0 to
                    // 1) writes the value, and nobody reads it before init is 2.
                    unsafe { (*cell.get()).write(v) };
                    init.store(2, Ordering::Release);
                    break;
                }
                Err(2) => break,
                Err(_) => core::hint::spin_loop(),
            }
        }
        // SAFETY: our page; its `value` field.
        let cell = unsafe { &(*page).value };
        // SAFETY: the cell's own pointer to its value.
        let value = unsafe { &*cell.get() };
        // SAFETY: initialised above, or by another thread and published by
        // init = 2 (acquired); never written again in this process.
        Some(unsafe { value.assume_init_ref() })
    }

    #[cold]
    fn map(&'static self) -> Option<*mut Cell<T>> {
        let p = sys::map_anonymous(PAGE)?;
        // SAFETY: our fresh page: a child must not inherit its contents.
        // The registry forgets user-space contexts in a child as well.
        let wiped = unsafe { sys::wipe_on_fork(p, PAGE) } && crate::registry::wipe_on_fork_now();
        if !wiped {
            // SAFETY: our own page, never published.
            unsafe { sys::unmap(p, PAGE) };
            return None;
        }
        match self.page.compare_exchange(
            core::ptr::null_mut(),
            p.cast(),
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => Some(p.cast()),
            Err(other) => {
                // SAFETY: our own page, never published.
                unsafe { sys::unmap(p, PAGE) };
                Some(other)
            }
        }
    }
}

/// What every user-space engine needs of the process: its id (for the
/// kernel's checked copies), settled again in a child.
pub(crate) struct Process {
    pub(crate) pid: i32,
}

static PROCESS: ForkLocal<Process> = ForkLocal::new();

/// This process's id, or None when the engines cannot be set up here.
pub(crate) fn pid() -> Option<i32> {
    PROCESS
        .get(|| Process {
            pid: sys::thread::pid(),
        })
        .map(|p| p.pid)
}

/// The absolute deadline (monotonic ns) of a relative timeout, as the
/// kernel reads it (a negative one has passed already).
pub(crate) fn deadline(t: &libc::timespec) -> u64 {
    if t.tv_sec < 0 || (t.tv_sec == 0 && t.tv_nsec <= 0) {
        return 0;
    }
    let rel = (t.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(t.tv_nsec.max(0) as u64);
    sys::thread::now_ns().saturating_add(rel)
}

/// Nanoseconds left until `deadline` (None: no deadline); Some(0) once passed.
pub(crate) fn left(deadline: Option<u64>) -> Option<u64> {
    deadline.map(|d| d.saturating_sub(sys::thread::now_ns()))
}
