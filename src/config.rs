//! Run-time switches and what the library found out about this process, all
//! settled once, when the library is loaded (a later `setenv` changes nothing).
//!
//! - `LIBAIO_RS_REAP=0` (or `off`, `no`) turns off reaping completions from
//!   the ring in user space, so every `io_getevents` that can wait enters the
//!   kernel (as libaio does; useful under `strace` or with tools that count
//!   syscalls); `1`, `on`, `yes` or unset leave it on.
//! - `LIBAIO_RS_DEBUG=1` (or `on`, `yes`) makes the library say at load what
//!   it found (version, program, where it was loaded from, what new contexts
//!   get and why) and makes failing calls and failed completions explain
//!   themselves on stderr (see `diag`); `0`, `off`, `no`, empty or unset:
//!   nothing is written but the warnings below.
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
//!   `io_uring` or `threads` (that engine for every context). The Rust
//!   API's `Engine::Auto` means the same: whatever this variable says.
//! - `LIBAIO_RS_FALLBACK_EAGAIN=1` (or `on`, `yes`) makes `auto` fall back
//!   on `EAGAIN` too.
//!
//! A value outside those lists, or a `LIBAIO_RS_` name that misspells one of
//! these, is a mistake the user must hear about: the library says so on stderr at
//! load, always, in one line naming the variable, the value and the accepted
//! values, and goes on as the list below says (`Var::otherwise`).
//!
//! The variables are documented for users in libaio(7).

use crate::sys::KeepErrno;
use crate::{procfs, registry};
use core::ffi::{c_char, CStr};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

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
/// `VARS[i]` has a value outside its list: bit `MALFORMED << i`.
const MALFORMED: usize = 1 << 10;
/// Some `LIBAIO_RS_` variable misspells one of `VARS`.
const UNKNOWN_NAME: usize = 1 << 15;

/// The flags above, 0 until settled (a settled value has LOADED set).
static FLAGS: AtomicUsize = AtomicUsize::new(0);

/// One of the library's environment variables.
pub(crate) struct Var {
    pub(crate) name: &'static CStr,
    /// The values it takes, as the warning lists them.
    pub(crate) accepted: &'static str,
    /// What any other value means.
    pub(crate) otherwise: &'static str,
}

const ON: &[&[u8]] = &[b"1", b"on", b"yes"];
const OFF: &[&[u8]] = &[b"0", b"off", b"no"];

/// Every variable the library reads, in the order the doctor lists them.
pub(crate) const VARS: [Var; 4] = [
    Var {
        name: c"LIBAIO_RS_ENGINE",
        accepted: "auto, kernel, io_uring, threads",
        otherwise: "auto",
    },
    Var {
        name: c"LIBAIO_RS_DEBUG",
        accepted: "1, on, yes; 0, off, no or empty",
        otherwise: "on",
    },
    Var {
        name: c"LIBAIO_RS_REAP",
        accepted: "1, on, yes; 0, off, no",
        otherwise: "on",
    },
    Var {
        name: c"LIBAIO_RS_FALLBACK_EAGAIN",
        accepted: "1, on, yes; 0, off, no or empty",
        otherwise: "off",
    },
];
const V_ENGINE: usize = 0;
const V_DEBUG: usize = 1;
const V_REAP: usize = 2;
const V_EAGAIN: usize = 3;

/// The value of an environment variable, if set.
pub(crate) fn env(name: &CStr) -> Option<&'static [u8]> {
    // SAFETY: getenv reads the environment; `name` is NUL-terminated.
    let v = unsafe { libc::getenv(name.as_ptr()) };
    if v.is_null() {
        return None;
    }
    // SAFETY: getenv returned a NUL-terminated string, valid until the
    // environment changes. Callers use it at once, at load or in the
    // doctor; a `setenv` racing in another thread is undefined behaviour
    // for getenv itself (POSIX), not only here.
    Some(unsafe { CStr::from_ptr(v) }.to_bytes())
}

/// A yes/no variable: `Some(true)` on, `Some(false)` off, None for a value
/// in neither list (the empty string is off where `empty_off`).
fn switch(v: &[u8], empty_off: bool) -> Option<bool> {
    if ON.contains(&v) {
        Some(true)
    } else if OFF.contains(&v) || (empty_off && v.is_empty()) {
        Some(false)
    } else {
        None
    }
}

extern "C" {
    /// The process's environment (POSIX).
    static environ: *const *const c_char;
}

/// The `LIBAIO_RS_` variables set in the environment, as `NAME=value`.
pub(crate) fn each_set(mut f: impl FnMut(&'static [u8])) {
    // SAFETY: `environ` is libc's array of NUL-terminated strings, ended by
    // a null pointer. Read at load or in the doctor (each entry used at once,
    // see `env`): the library itself never changes the environment.
    let mut p = unsafe { environ };
    if p.is_null() {
        return;
    }
    loop {
        // SAFETY: within the array (it ends with a null entry, checked below).
        let s = unsafe { *p };
        if s.is_null() {
            return;
        }
        // SAFETY: an entry of environ: a NUL-terminated string that stays.
        let entry = unsafe { CStr::from_ptr(s) }.to_bytes();
        if entry.starts_with(b"LIBAIO_RS_") {
            f(entry);
        }
        // SAFETY: the entry was not the terminating null, so the next exists.
        p = unsafe { p.add(1) };
    }
}

/// Whether `NAME=value` is one of `VARS`.
pub(crate) fn known(entry: &[u8]) -> bool {
    VARS.iter().any(|v| {
        let n = v.name.to_bytes();
        entry.len() > n.len() && entry.starts_with(n) && entry[n.len()] == b'='
    })
}

/// The variable of `VARS` that the name of `NAME=value` misspells (at most
/// two letters added, dropped or changed), if any. Other `LIBAIO_RS_` names
/// are left alone: this project's build and test scripts have their own
/// (`LIBAIO_RS_ROOT`, `LIBAIO_RS_REFERENCE`, ...).
pub(crate) fn misspelled(entry: &[u8]) -> Option<&'static CStr> {
    if known(entry) {
        return None;
    }
    let name = entry.split(|&b| b == b'=').next().unwrap_or(entry);
    VARS.iter()
        .map(|v| v.name)
        .find(|v| distance(name, v.to_bytes()) <= 2)
}

/// Edit distance (letters added, dropped or changed) between two short
/// names; anything over 40 letters counts as far.
fn distance(a: &[u8], b: &[u8]) -> usize {
    const MAX: usize = 40;
    if a.len() > MAX || b.len() > MAX {
        return usize::MAX;
    }
    let mut row = [0usize; MAX + 1];
    for (j, r) in row.iter_mut().enumerate().take(b.len() + 1) {
        *r = j;
    }
    for (i, &ca) in a.iter().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let up = row[j + 1];
            row[j + 1] = (diag + usize::from(ca != cb)).min(up + 1).min(row[j] + 1);
            diag = up;
        }
    }
    row[b.len()]
}

/// Whether valgrind runs this process: it preloads its `vgpreload_*` objects.
fn under_valgrind() -> bool {
    env(c"LD_PRELOAD").is_some_and(|v| v.windows(b"vgpreload_".len()).any(|w| w == b"vgpreload_"))
}

/// The flags the environment's variables give.
fn from_env() -> usize {
    let mut f = 0;
    let bad = |i: usize| MALFORMED << i;
    match env(VARS[V_ENGINE].name) {
        None | Some(b"auto") => {}
        Some(b"kernel") => f |= ENGINE_KERNEL,
        Some(b"threads") => f |= ENGINE_THREADS,
        Some(b"io_uring") => f |= ENGINE_URING,
        Some(_) => f |= bad(V_ENGINE),
    }
    match env(VARS[V_DEBUG].name).map(|v| switch(v, true)) {
        None | Some(Some(false)) => {}
        Some(Some(true)) => f |= DEBUG,
        Some(None) => f |= DEBUG | bad(V_DEBUG),
    }
    match env(VARS[V_REAP].name).map(|v| switch(v, false)) {
        None | Some(Some(true)) => {}
        Some(Some(false)) => f |= OFF_BY_ENV,
        Some(None) => f |= bad(V_REAP),
    }
    match env(VARS[V_EAGAIN].name).map(|v| switch(v, true)) {
        None | Some(Some(false)) => {}
        Some(Some(true)) => f |= FALLBACK_EAGAIN,
        Some(None) => f |= bad(V_EAGAIN),
    }
    let mut unknown = false;
    each_set(|e| unknown |= misspelled(e).is_some());
    if unknown {
        f |= UNKNOWN_NAME;
    }
    f
}

fn detect() -> usize {
    let _keep = KeepErrno::new();
    let mut f = LOADED | from_env();
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
/// every other entry point would do it on first use. True for the first
/// call of this function: that call says what was found (`report`).
pub(crate) fn init() -> bool {
    flags();
    !REPORTED.swap(true, Ordering::AcqRel)
}

/// Whether what was found at load has been said (`init`). Apart from the
/// flags: a program's own constructor may settle them first, through a
/// call into `libaio.a`, before the library's constructor runs.
static REPORTED: AtomicBool = AtomicBool::new(false);

/// Whether a seccomp filter was found at load (or /proc could not be read):
/// then the library makes no system call libaio would not make, debugging
/// or not, beyond writing its lines.
pub(crate) fn filtered() -> bool {
    flags() & OFF_SECCOMP != 0
}

/// Whether `VARS[i]` has a value outside its list.
pub(crate) fn malformed(i: usize) -> bool {
    flags() & (MALFORMED << i) != 0
}

/// Whether some `LIBAIO_RS_` variable misspells one of `VARS`.
pub(crate) fn unknown_names() -> bool {
    flags() & UNKNOWN_NAME != 0
}

/// Why user-space reaping of kernel AIO completions is off, or None when on.
pub(crate) fn reap_off() -> Option<&'static str> {
    reap_off_reason(flags())
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

    #[test]
    fn switches_take_their_lists_only() {
        for v in [&b"1"[..], b"on", b"yes"] {
            assert_eq!(switch(v, true), Some(true));
        }
        for v in [&b"0"[..], b"off", b"no"] {
            assert_eq!(switch(v, false), Some(false));
        }
        assert_eq!(switch(b"", true), Some(false));
        assert_eq!(switch(b"", false), None);
        for v in [&b"2"[..], b"ON", b"true", b" 1"] {
            assert_eq!(switch(v, true), None, "{v:?}");
        }
    }

    #[test]
    fn misspellings_are_told_apart_from_other_names() {
        let meant = |e: &[u8]| misspelled(e).map(|n| n.to_bytes());
        assert_eq!(meant(b"LIBAIO_RS_ENGNIE=threads"), Some(&b"LIBAIO_RS_ENGINE"[..]));
        assert_eq!(meant(b"LIBAIO_RS_DEBUGG=1"), Some(&b"LIBAIO_RS_DEBUG"[..]));
        assert_eq!(
            meant(b"LIBAIO_RS_FALLBACK_EAGIAN=1"),
            Some(&b"LIBAIO_RS_FALLBACK_EAGAIN"[..])
        );
        assert_eq!(meant(b"LIBAIO_RS_ENGINE=threads"), None);
        for other in [
            &b"LIBAIO_RS_ROOT=/x"[..],
            b"LIBAIO_RS_BUILD_DIR=b",
            b"LIBAIO_RS_REFERENCE=r",
            b"LIBAIO_RS_SEEDS=s",
            b"LIBAIO_RS_CACHE=c",
            b"LIBAIO_RS_ENGINE_SUITES=fio",
        ] {
            assert_eq!(meant(other), None, "{other:?}");
        }
    }

    #[test]
    fn known_names_need_their_equals_sign() {
        assert!(known(b"LIBAIO_RS_ENGINE=threads"));
        assert!(known(b"LIBAIO_RS_DEBUG="));
        assert!(!known(b"LIBAIO_RS_ENGINEX=threads"));
        assert!(!known(b"LIBAIO_RS_ENGNIE=threads"));
        assert!(!known(b"LIBAIO_RS_ENGINE"));
    }
}
