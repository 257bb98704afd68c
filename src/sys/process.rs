//! What the library asks the kernel about this process and machine: files
//! of /proc and /sys read whole, a link read, the descriptor limit, the
//! CPUs, the effective user, the signal mask and pending signals. Each
//! keeps `errno` as it was.

use super::KeepErrno;
use core::ffi::CStr;
use core::mem::MaybeUninit;

/// Reads up to `buf.len()` bytes of the file at `path` (a /proc or /sys
/// file: one read gives it whole); None if it cannot be read.
pub(crate) fn read_file<'a>(path: &CStr, buf: &'a mut [u8]) -> Option<&'a [u8]> {
    let _keep = KeepErrno::new();
    // SAFETY: `path` is NUL-terminated; the flags create nothing.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return None;
    }
    // SAFETY: reads at most buf.len() bytes into our own buffer.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    // SAFETY: closes the descriptor opened above, used by nobody else
    // (libc's close: under Miri too, which has no raw system calls).
    unsafe { libc::close(fd) };
    buf.get(..usize::try_from(n).ok()?)
}

/// Whether `path` exists.
pub(crate) fn exists(path: &CStr) -> bool {
    let _keep = KeepErrno::new();
    // SAFETY: access(2) on a NUL-terminated path.
    unsafe { libc::access(path.as_ptr(), libc::F_OK) == 0 }
}

/// The target of the symbolic link at `path` (a /proc link), in `buf`.
pub(crate) fn read_link<'a>(path: &CStr, buf: &'a mut [u8]) -> Option<&'a [u8]> {
    let _keep = KeepErrno::new();
    // SAFETY: a NUL-terminated path and a buffer of ours.
    let n = unsafe { libc::readlink(path.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    buf.get(..usize::try_from(n).ok()?)
}

/// `RLIMIT_NOFILE`'s soft limit, or None.
pub(crate) fn nofile_limit() -> Option<u64> {
    let _keep = KeepErrno::new();
    let mut r = MaybeUninit::<libc::rlimit>::zeroed();
    // SAFETY: getrlimit writes our struct.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, r.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: zero-initialised, filled by getrlimit.
    let r = unsafe { r.assume_init() };
    #[allow(clippy::useless_conversion)] // rlim_t is u32 on some targets
    Some(u64::from(r.rlim_cur))
}

/// The CPUs the machine may have (at least 1).
pub(crate) fn possible_cpus() -> u32 {
    let _keep = KeepErrno::new();
    // SAFETY: sysconf has no memory arguments.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_CONF) };
    u32::try_from(n).unwrap_or(1).max(1)
}

/// Whether the process runs as root (effective user 0).
pub(crate) fn privileged() -> bool {
    // SAFETY: geteuid has no arguments and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Installs `mask` as this thread's signal mask; the old one comes back.
///
/// # Safety
/// `mask` points to a readable `sigset_t`.
pub(crate) unsafe fn set_signal_mask(mask: *const libc::sigset_t) -> libc::sigset_t {
    let mut old = MaybeUninit::<libc::sigset_t>::zeroed();
    // SAFETY: the caller's readable mask, and our set for the old one.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, mask, old.as_mut_ptr()) };
    // SAFETY: zero-initialised, filled by pthread_sigmask.
    unsafe { old.assume_init() }
}

/// Whether a signal pending now would be let in by `mask`.
///
/// # Safety
/// `mask` points to a readable `sigset_t`.
pub(crate) unsafe fn pending_let_in(mask: *const libc::sigset_t) -> bool {
    let mut pending = MaybeUninit::<libc::sigset_t>::zeroed();
    // SAFETY: writes our set.
    if unsafe { libc::sigpending(pending.as_mut_ptr()) } != 0 {
        return false;
    }
    (1..65).any(|sig| {
        // SAFETY: our set, filled by sigpending.
        let p = unsafe { libc::sigismember(pending.as_ptr(), sig) } == 1;
        // SAFETY: the caller's readable mask.
        p && unsafe { libc::sigismember(mask, sig) } == 0
    })
}
