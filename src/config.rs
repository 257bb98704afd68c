//! Run-time switches read from the environment once, the first time the
//! library needs one (a later `setenv` in the process changes nothing).
//!
//! - `LIBAIO_RS_REAP=0` (or `off`, `no`) turns off reaping completions from
//!   the ring in user space, so every `io_getevents` that can wait enters the
//!   kernel (as libaio does; useful under `strace` or with tools that count
//!   syscalls). Any other value, or none, leaves it on.
//! - `LIBAIO_RS_DEBUG` set to anything but the empty string, `0`, `off` or
//!   `no` makes failing calls explain themselves on stderr (see `diag`).
//!   Unset, nothing is ever written.
//!
//! Under valgrind (its preload library is in `LD_PRELOAD`) reaping in user
//! space is off too: valgrind cannot see the kernel fill the ring (it takes
//! the ring for the size asked of `io_setup`, not the kernel's larger one), so
//! it would report the library's own reads of it.
//!
//! Under a seccomp filter (`Seccomp: 2` in /proc/self/status) the library
//! makes no system call that libaio would not make: no user-space reaping
//! (its array check uses `process_vm_writev`) and no registry (`madvise`), so
//! a sandbox that kills on unlisted calls sees exactly libaio's calls.
//!
//! Both variables are documented for users in libaio(7).

use core::ffi::CStr;
use core::num::NonZeroUsize;
use once_cell::race::OnceNonZeroUsize;

const LOADED: usize = 1;
const NO_REAP: usize = 2;
const DEBUG: usize = 4;
const SANDBOXED: usize = 8;

static FLAGS: OnceNonZeroUsize = OnceNonZeroUsize::new();

fn env_is(name: &CStr, on_values: &[&[u8]]) -> Option<bool> {
    // SAFETY: getenv reads the environment; `name` is NUL-terminated.
    let v = unsafe { libc::getenv(name.as_ptr()) };
    if v.is_null() {
        return None;
    }
    // SAFETY: getenv returned a NUL-terminated string.
    let v = unsafe { CStr::from_ptr(v) }.to_bytes();
    Some(on_values.contains(&v))
}

/// Whether valgrind runs this process: it preloads its `vgpreload_*` objects.
fn under_valgrind() -> bool {
    // SAFETY: getenv reads the environment; the name is NUL-terminated.
    let v = unsafe { libc::getenv(c"LD_PRELOAD".as_ptr()) };
    if v.is_null() {
        return false;
    }
    // SAFETY: getenv returned a NUL-terminated string.
    let v = unsafe { CStr::from_ptr(v) }.to_bytes();
    v.windows(b"vgpreload_".len()).any(|w| w == b"vgpreload_")
}

fn flags() -> usize {
    FLAGS
        .get_or_init(|| {
            let _keep = crate::diag::KeepErrno::new(); // reading /proc may set errno
            let mut f = LOADED;
            if env_is(c"LIBAIO_RS_REAP", &[b"0", b"off", b"no"]) == Some(true) || under_valgrind() {
                f |= NO_REAP;
            }
            if crate::diag::seccomp_mode_of_self().is_some_and(|m| m != 0) {
                f |= NO_REAP | SANDBOXED;
            }
            if env_is(c"LIBAIO_RS_DEBUG", &[b"", b"0", b"off", b"no"]) == Some(false) {
                f |= DEBUG;
            }
            NonZeroUsize::new(f).unwrap_or(NonZeroUsize::MIN)
        })
        .get()
}

/// Whether `io_getevents` may take completions from the ring without a syscall.
pub fn user_reap() -> bool {
    flags() & NO_REAP == 0
}

/// Whether the library may make system calls of its own beyond libaio's
/// (the registry's `mmap`/`madvise`): not under a seccomp filter.
pub fn own_syscalls() -> bool {
    flags() & SANDBOXED == 0
}

/// Whether failures are explained on stderr.
pub fn debug() -> bool {
    flags() & DEBUG != 0
}
