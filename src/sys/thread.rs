//! The library's own threads, and data kept per thread of the program.

use super::{Errno, KeepErrno};
use core::ffi::c_void;
use core::mem::MaybeUninit;
use core::ptr;

/// Stack of each of our threads: they make system calls and little else.
const STACK: usize = 128 * 1024;

/// Starts a detached thread running `main(arg)` with every signal blocked
/// (the program's handlers run on its own threads, as with kernel AIO).
/// `Err(EAGAIN)` and the like when the process cannot have another thread
/// (`RLIMIT_NPROC`, a pids cgroup, memory): callers survive it.
pub(crate) fn spawn(main: extern "C" fn(*mut c_void) -> *mut c_void, arg: *mut c_void) -> Result<(), Errno> {
    let _keep = KeepErrno::new();
    let mut all = MaybeUninit::<libc::sigset_t>::zeroed();
    let mut old = MaybeUninit::<libc::sigset_t>::zeroed();
    let mut attr = MaybeUninit::<libc::pthread_attr_t>::zeroed();
    let mut tid = MaybeUninit::<libc::pthread_t>::zeroed();
    // SAFETY: fills our own set.
    unsafe { libc::sigfillset(all.as_mut_ptr()) };
    // SAFETY: our own attribute object, initialised before use.
    unsafe { libc::pthread_attr_init(attr.as_mut_ptr()) };
    // SAFETY: our attribute object, initialised by pthread_attr_init above.
    unsafe { libc::pthread_attr_setdetachstate(attr.as_mut_ptr(), libc::PTHREAD_CREATE_DETACHED) };
    // SAFETY: our attribute object, initialised by pthread_attr_init above.
    unsafe { libc::pthread_attr_setstacksize(attr.as_mut_ptr(), STACK) };
    // The new thread inherits the creator's mask: block everything around it.
    // SAFETY: our own sets.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, all.as_ptr(), old.as_mut_ptr()) };
    // SAFETY: a function of ours and its argument, with our attributes.
    let r = unsafe { libc::pthread_create(tid.as_mut_ptr(), attr.as_ptr(), main, arg) };
    // SAFETY: restores the caller's mask saved above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, old.as_ptr(), ptr::null_mut()) };
    // SAFETY: our attribute object, no longer needed.
    unsafe { libc::pthread_attr_destroy(attr.as_mut_ptr()) };
    if r == 0 {
        Ok(())
    } else {
        Err(Errno(r))
    }
}

/// A key for one pointer per thread, with a destructor run when a thread
/// that set it exits (`pthread_key_create`).
pub(crate) fn key_create(
    dtor: Option<unsafe extern "C" fn(*mut c_void)>,
) -> Result<libc::pthread_key_t, Errno> {
    let mut key: libc::pthread_key_t = 0;
    // SAFETY: writes our key; the destructor is a function of ours, which
    // stays loaded (the shared object is linked -z nodelete).
    let r = unsafe { libc::pthread_key_create(&raw mut key, dtor) };
    if r == 0 {
        Ok(key)
    } else {
        Err(Errno(r))
    }
}

/// This thread's value for `key` (null when unset).
pub(crate) fn key_get(key: libc::pthread_key_t) -> *mut c_void {
    // SAFETY: a key of ours; no memory argument.
    unsafe { libc::pthread_getspecific(key) }
}

/// Sets this thread's value for `key`.
pub(crate) fn key_set(key: libc::pthread_key_t, value: *mut c_void) -> Result<(), Errno> {
    // SAFETY: a key of ours; the value is only stored.
    let r = unsafe { libc::pthread_setspecific(key, value) };
    if r == 0 {
        Ok(())
    } else {
        Err(Errno(r))
    }
}

/// This process's id.
pub(crate) fn pid() -> i32 {
    // SAFETY: getpid has no arguments.
    unsafe { libc::getpid() }
}

/// CLOCK_MONOTONIC in nanoseconds.
pub(crate) fn now_ns() -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes our timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    (t.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(t.tv_nsec as u64)
}

/// Sleeps `ns` nanoseconds (a back-off, never a wait for an event).
pub(crate) fn sleep_ns(ns: u64) {
    let t = libc::timespec {
        tv_sec: (ns / 1_000_000_000) as _,
        tv_nsec: (ns % 1_000_000_000) as _,
    };
    // SAFETY: our timespec; the remainder is not wanted. The raw call:
    // libc's nanosleep is a cancellation point, and io_submit backs off
    // with it (io_uring's full submission queue).
    unsafe { libc::syscall(libc::SYS_nanosleep, &t, ptr::null_mut::<libc::timespec>()) };
}

/// Runs the handlers of pending signals that `sigmask` lets in, as the
/// kernel's `io_pgetevents` does on its way out (a zero-timeout `ppoll` with
/// the mask installs it for an instant).
pub(crate) fn let_signals_in(sigmask: *const libc::sigset_t) {
    let _ = super::fd::ppoll(&mut [], Some(0), sigmask);
}

/// Allocates `size` bytes (libc's malloc: the library has no allocator).
pub(crate) fn alloc(size: usize) -> *mut u8 {
    // SAFETY: malloc of any size; null when out of memory.
    unsafe { libc::malloc(size) }.cast()
}

/// Frees what [`alloc`] gave.
///
/// # Safety
/// `p` came from [`alloc`] (or is null) and is not used after.
pub(crate) unsafe fn free(p: *mut u8) {
    // SAFETY: the caller's promise.
    unsafe { libc::free(p.cast()) };
}
