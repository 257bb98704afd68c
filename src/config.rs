//! Run-time switches and what the library found out about this process, all
//! settled once, when the library is loaded (a later `setenv` changes nothing).
//!
//! - `LIBAIO_RS_REAP=0` (or `off`, `no`) turns off reaping completions from
//!   the ring in user space, so every `io_getevents` that can wait enters the
//!   kernel (as libaio does; useful under `strace` or with tools that count
//!   syscalls). Any other value, or none, leaves it on.
//! - `LIBAIO_RS_DEBUG` set to anything but the empty string, `0`, `off` or
//!   `no` makes the library say at load what it found (version, where it was
//!   loaded from, whether it reaps in user space and why not) and makes
//!   failing calls explain themselves on stderr (see `diag`). Unset, nothing
//!   is ever written.
//!
//! User-space reaping is also off under valgrind (its preload library is in
//! `LD_PRELOAD`): valgrind cannot see the kernel fill the ring (it takes the
//! ring for the size asked of `io_setup`, not the kernel's larger one), so it
//! would report the library's own reads of it.
//!
//! # System calls
//! Everything the library does beyond libaio's system calls happens here, at
//! load: it reads `/proc/self/status` (openat, read, close, which the dynamic
//! loader has just made to load the library) to learn whether a seccomp
//! filter is installed, maps its registry (mmap, likewise) and, with no
//! filter, asks for it to be wiped in a forked child (madvise). Under a filter
//! found then, or when /proc cannot be read, it reaps nothing in user space.
//! After that a call makes only the system calls libaio makes in that call,
//! or fewer, plus `futex` when a thread waits for another of the same
//! process, whatever filter is installed later. (With `LIBAIO_RS_DEBUG` on,
//! explanations are written with `write` and may read /proc.)
//!
//! - `LIBAIO_RS_ENGINE` picks the engine of each new context: `auto` (or
//!   unset: kernel AIO; when `io_setup` is answered `ENOSYS` or `EPERM`,
//!   the io_uring engine, or the thread engine where io_uring is refused
//!   too, for a program that reaps through the library: see
//!   `engine::reapers`), `kernel` (kernel AIO only, exactly libaio),
//!   `io_uring` or `threads` (that engine for every context).
//!   `LIBAIO_RS_FALLBACK_EAGAIN=1` makes `auto` fall back on `EAGAIN` too.
//!
//! The variables are documented for users in libaio(7).

use crate::sys::KeepErrno;
use crate::{procfs, registry};
use core::ffi::CStr;
use core::sync::atomic::{AtomicUsize, Ordering};

const LOADED: usize = 1;
const DEBUG: usize = 1 << 1;
/// Why user-space reaping is off (none of these: it is on).
const OFF_BY_ENV: usize = 1 << 2;
const OFF_VALGRIND: usize = 1 << 3;
const OFF_SECCOMP: usize = 1 << 4;
const OFF_NO_WIPE: usize = 1 << 5;
const REAP_OFF: usize = OFF_BY_ENV | OFF_VALGRIND | OFF_SECCOMP | OFF_NO_WIPE;
/// `LIBAIO_RS_ENGINE=kernel` / `=threads` / `=io_uring` (none: auto).
const ENGINE_KERNEL: usize = 1 << 6;
const ENGINE_THREADS: usize = 1 << 7;
const ENGINE_URING: usize = 1 << 9;
/// `LIBAIO_RS_FALLBACK_EAGAIN=1`: auto also falls back when io_setup gets
/// -EAGAIN (fs.aio-nr reached fs.aio-max-nr).
const FALLBACK_EAGAIN: usize = 1 << 8;

/// The flags above, 0 until settled (a settled value has LOADED set).
static FLAGS: AtomicUsize = AtomicUsize::new(0);

/// The value of an environment variable, if set.
fn env(name: &CStr) -> Option<&'static [u8]> {
    // SAFETY: getenv reads the environment; `name` is NUL-terminated.
    let v = unsafe { libc::getenv(name.as_ptr()) };
    if v.is_null() {
        return None;
    }
    // SAFETY: getenv returned a NUL-terminated string, which stays while the
    // environment is not changed (we read it once, at load).
    Some(unsafe { CStr::from_ptr(v) }.to_bytes())
}

fn env_is(name: &CStr, values: &[&[u8]]) -> Option<bool> {
    env(name).map(|v| values.contains(&v))
}

/// Whether valgrind runs this process: it preloads its `vgpreload_*` objects.
fn under_valgrind() -> bool {
    env(c"LD_PRELOAD").is_some_and(|v| v.windows(b"vgpreload_".len()).any(|w| w == b"vgpreload_"))
}

fn detect() -> usize {
    let _keep = KeepErrno::new();
    let mut f = LOADED;
    if env_is(c"LIBAIO_RS_REAP", &[b"0", b"off", b"no"]) == Some(true) {
        f |= OFF_BY_ENV;
    }
    if under_valgrind() {
        f |= OFF_VALGRIND;
    }
    // Unknown (no /proc) counts as filtered: madvise might be refused or fatal.
    let filtered = procfs::seccomp_mode_of_self() != Some(0);
    if filtered {
        f |= OFF_SECCOMP;
    }
    // The registry serves libaio's empty-ring answer even when nobody reaps.
    if !registry::map(!filtered) && !filtered {
        f |= OFF_NO_WIPE;
    }
    if env_is(c"LIBAIO_RS_DEBUG", &[b"", b"0", b"off", b"no"]) == Some(false) {
        f |= DEBUG;
    }
    match env(c"LIBAIO_RS_ENGINE") {
        Some(b"kernel") => f |= ENGINE_KERNEL,
        Some(b"threads") => f |= ENGINE_THREADS,
        Some(b"io_uring") => f |= ENGINE_URING,
        _ => {}
    }
    if env_is(c"LIBAIO_RS_FALLBACK_EAGAIN", &[b"1", b"on", b"yes"]) == Some(true) {
        f |= FALLBACK_EAGAIN;
    }
    f
}

#[inline]
fn flags() -> usize {
    match FLAGS.load(Ordering::Acquire) {
        0 => settle().1,
        f => f,
    }
}

/// Detects and stores the flags; true with them when this call stored them.
/// Threads that race here detect the same values, and the first store wins.
#[cold]
#[inline(never)]
fn settle() -> (bool, usize) {
    let f = detect();
    match FLAGS.compare_exchange(0, f, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => (true, f),
        Err(settled) => (false, settled),
    }
}

/// Settles everything at load time (the library's constructor calls it);
/// every other entry point would do it on first use.
pub(crate) fn init() {
    if FLAGS.load(Ordering::Acquire) != 0 {
        return;
    }
    // Only the thread whose flags were stored says so.
    let (first, f) = settle();
    if first && f & DEBUG != 0 {
        crate::diag::loaded(reap_off_reason(f));
    }
}

/// Why user-space reaping is off, or None when it is on.
fn reap_off_reason(f: usize) -> Option<&'static str> {
    Some(if f & OFF_BY_ENV != 0 {
        "LIBAIO_RS_REAP=0"
    } else if f & OFF_VALGRIND != 0 {
        "valgrind runs this process"
    } else if f & OFF_SECCOMP != 0 {
        "a seccomp filter was installed before the library was loaded (or /proc/self/status could not be read): only libaio's system calls are made"
    } else if f & OFF_NO_WIPE != 0 {
        "this kernel cannot wipe the registry in a forked child (MADV_WIPEONFORK, Linux 4.14)"
    } else {
        return None;
    })
}

/// Whether `io_getevents` may take completions from the ring without a syscall.
pub(crate) fn user_reap() -> bool {
    flags() & REAP_OFF == 0
}

/// Which engine new contexts get (`LIBAIO_RS_ENGINE`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum EngineMode {
    /// Kernel AIO, and the user-space engine where kernel AIO is refused.
    Auto,
    /// Kernel AIO only, errors as libaio returns them.
    Kernel,
    /// The user-space thread engine for every new context.
    Threads,
    /// The io_uring engine for every new context.
    IoUring,
}

/// The engine choice for new contexts.
pub(crate) fn engine_mode() -> EngineMode {
    let f = flags();
    if f & ENGINE_THREADS != 0 {
        EngineMode::Threads
    } else if f & ENGINE_URING != 0 {
        EngineMode::IoUring
    } else if f & ENGINE_KERNEL != 0 {
        EngineMode::Kernel
    } else {
        EngineMode::Auto
    }
}

/// Whether `auto` also falls back when `io_setup` gets `-EAGAIN`.
pub(crate) fn fallback_on_eagain() -> bool {
    flags() & FALLBACK_EAGAIN != 0
}

/// Whether failures are explained on stderr.
pub(crate) fn debug() -> bool {
    flags() & DEBUG != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_is_named_and_on_has_none() {
        assert_eq!(reap_off_reason(LOADED), None);
        for bit in [OFF_BY_ENV, OFF_VALGRIND, OFF_SECCOMP, OFF_NO_WIPE] {
            assert!(reap_off_reason(LOADED | bit).is_some());
        }
    }
}
