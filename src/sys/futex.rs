//! Waiting for another thread of this process: `FUTEX_WAIT`/`FUTEX_WAKE`
//! on a private word (the only system call a call may add to libaio's).

use super::syscall6;
use core::sync::atomic::AtomicU32;

/// Sleeps while the word at `word` holds `expected` (`FUTEX_WAIT`, private to
/// this process). Returns on a wake-up, a signal, or at once when the word
/// already differs: the caller always re-reads the word.
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32) {
    let op = libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG;
    #[cfg(not(miri))]
    // SAFETY: the kernel only reads the aligned word, which the reference
    // keeps alive for the call; no timeout pointer is passed.
    unsafe {
        syscall6(
            libc::SYS_futex,
            [word.as_ptr() as usize, op as usize, expected as usize, 0, 0, 0],
        )
    };
    // Miri models futex through libc's syscall(2), with the C argument types.
    #[cfg(miri)]
    // SAFETY: the kernel only reads the aligned word, which the reference keeps alive for the
    // call; no timeout pointer is passed.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            op,
            expected,
            core::ptr::null::<libc::timespec>(),
        )
    };
}

/// Wakes every thread sleeping in [`futex_wait`] on `word`.
pub(crate) fn futex_wake_all(word: &AtomicU32) {
    let op = libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG;
    #[cfg(not(miri))]
    // SAFETY: FUTEX_WAKE only uses the address as a key; nothing is accessed.
    unsafe {
        syscall6(
            libc::SYS_futex,
            [word.as_ptr() as usize, op as usize, i32::MAX as usize, 0, 0, 0],
        )
    };
    #[cfg(miri)]
    // SAFETY: FUTEX_WAKE only uses the address as a key; nothing is accessed.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), op, i32::MAX)
    };
}

/// Wakes every thread sleeping on the futex at address `addr`, which may no
/// longer be mapped: a private futex is a key, the kernel reads nothing.
pub(crate) fn futex_wake_addr(addr: usize) {
    let op = libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG;
    // SAFETY: FUTEX_WAKE only uses the address as a key; nothing is accessed.
    unsafe { syscall6(libc::SYS_futex, [addr, op as usize, i32::MAX as usize, 0, 0, 0]) };
}

/// How a bounded futex sleep ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Slept {
    /// Woken, or the word had changed already: look again.
    Woken,
    TimedOut,
    /// A signal handler ran. With a timeout the kernel never restarts the
    /// wait after a handler, `SA_RESTART` or not, as `io_getevents` is never
    /// restarted: the caller answers `-EINTR`.
    Interrupted,
}

/// Sleeps while `word` holds `expected`, at most `ns` nanoseconds.
pub(crate) fn futex_sleep(word: &AtomicU32, expected: u32, ns: u64) -> Slept {
    let op = libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG;
    let t = libc::timespec {
        tv_sec: (ns / 1_000_000_000).min(i32::MAX as u64) as _,
        tv_nsec: (ns % 1_000_000_000) as _,
    };
    let tp = &raw const t as usize;
    // SAFETY: the kernel reads the aligned word and our relative timeout.
    let ret = unsafe {
        syscall6(
            libc::SYS_futex,
            [word.as_ptr() as usize, op as usize, expected as usize, tp, 0, 0],
        )
    };
    match -ret as i32 {
        libc::ETIMEDOUT => Slept::TimedOut,
        libc::EINTR => Slept::Interrupted,
        _ => Slept::Woken,
    }
}
