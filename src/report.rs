//! What the library tells its user without being asked a question:
//! - always, one line per `LIBAIO_RS_*` mistake (a value outside its list, a
//!   name the library does not read), at load;
//! - with `LIBAIO_RS_DEBUG`, the banner at load: version, program and pid,
//!   where the library was loaded from, what new contexts will get and why;
//! - when the shared object itself is run (`/usr/lib/.../libaio.so.1`, as
//!   glibc's `libc.so.6` can be), the doctor: the version, the engines this
//!   machine offers (and why not), what `auto` picks here, and the settings
//!   in force, on stdout.
//!
//! Everything here runs once per process, at load or as the doctor, never on
//! a call's path; each writer keeps `errno` as it was.

use crate::config::{self, EngineMode, VARS};
use crate::diag::Line;
use crate::engine::{reapers, uring};
use crate::sys::KeepErrno;
use crate::{procfs, sys};
use core::ffi::{c_char, CStr};

/// The project's version (libaio's own stays 0.3.113: soname, symbols, ABI).
pub(crate) const VERSION: &str = env!("CARGO_PKG_VERSION");

extern "C" {
    /// glibc's (and musl's) short name of the running program.
    static program_invocation_short_name: *const c_char;
}

/// The running program's short name.
fn program() -> &'static [u8] {
    // SAFETY: set by libc before any constructor runs; a NUL-terminated
    // string that lives as long as the process.
    let p = unsafe { program_invocation_short_name };
    if p.is_null() {
        return b"?";
    }
    // SAFETY: as above.
    unsafe { CStr::from_ptr(p) }.to_bytes()
}

/// What the constructor says: the warnings, then (debugging on) the banner.
#[cold]
pub(crate) fn loaded() {
    let _keep = KeepErrno::new();
    warnings(2, true);
    if config::debug() {
        banner();
    }
}

/// One line per malformed variable and per misspelled `LIBAIO_RS_` name, to
/// `fd`; prefixed as the library's stderr lines are when `prefixed`.
fn warnings(fd: i32, prefixed: bool) {
    let start = |line: &mut Line| {
        if prefixed {
            line.str("libaio: ");
        }
    };
    for (i, var) in VARS.iter().enumerate() {
        if !config::malformed(i) {
            continue;
        }
        let mut line = Line::new();
        start(&mut line);
        line.bytes(var.name.to_bytes())
            .str("=")
            .bytes(config::env(var.name).unwrap_or_default())
            .str(": not a value of this variable (it takes ")
            .str(var.accepted)
            .str("); going on as if it were ")
            .str(var.otherwise);
        if let Some(meant) = config::env(var.name).and_then(meant_engine).filter(|_| i == 0) {
            line.str(" (did you mean ").str(meant).str("?)");
        }
        line.send_to(fd);
    }
    if config::unknown_names() {
        config::each_set(|entry| {
            let Some(meant) = config::misspelled(entry) else {
                return;
            };
            let name = entry.split(|&b| b == b'=').next().unwrap_or(entry);
            let mut line = Line::new();
            start(&mut line);
            line.bytes(name)
                .str(": not a variable of this library, ignored (did you mean ")
                .bytes(meant.to_bytes())
                .str("?)")
                .send_to(fd);
        });
    }
}

/// The engine a near miss of `LIBAIO_RS_ENGINE` most likely meant.
fn meant_engine(v: &[u8]) -> Option<&'static str> {
    let mut low = [0u8; 16];
    let v = v.get(..v.len().min(low.len()))?;
    for (d, s) in low.iter_mut().zip(v) {
        *d = s.to_ascii_lowercase();
    }
    Some(match &low[..v.len()] {
        b"uring" | b"io-uring" | b"iouring" | b"io_uring" | b"ring" => "io_uring",
        b"thread" | b"threads" | b"pool" => "threads",
        b"kernel" | b"aio" | b"kaio" | b"native" | b"libaio" => "kernel",
        b"auto" | b"default" => "auto",
        _ => return None,
    })
}

/// The debug banner: who loaded the library, and what new contexts get.
fn banner() {
    let mut info = core::mem::MaybeUninit::<libc::Dl_info>::zeroed();
    // SAFETY: dladdr fills `info` for an address inside this library (this
    // function); the struct is plain data, valid all-zero.
    let found = unsafe { libc::dladdr(banner as *const libc::c_void, info.as_mut_ptr()) } != 0;
    // SAFETY: zero-initialised above and possibly filled by dladdr.
    let info = unsafe { info.assume_init() };
    let path: &[u8] = if found && !info.dli_fname.is_null() {
        // SAFETY: dladdr gives the loader's NUL-terminated name of the object.
        unsafe { CStr::from_ptr(info.dli_fname) }.to_bytes()
    } else {
        b"?"
    };
    let pid = sys::thread::pid();
    let mut line = Line::say();
    line.str("libaio-rs ")
        .str(VERSION)
        .str(" in ")
        .bytes(program())
        .str("[")
        .uint(pid as u64)
        .str("], loaded from ")
        .bytes(if path.is_empty() {
            b"the program itself"
        } else {
            path
        })
        .str(": new contexts: ");
    new_contexts(&mut line, Some(reapers::through_library()));
    line.str("; kernel AIO completions ");
    match config::reap_off() {
        None => line.str("reaped from the ring in user space when ready"),
        Some(why) => line.str("reaped through the kernel (").str(why).str(")"),
    };
    line.send();
}

/// What new contexts get under the `LIBAIO_RS_ENGINE` in force, and why;
/// `reaps`: whether the program reaps through the library, if known.
fn new_contexts(line: &mut Line, reaps: Option<bool>) {
    let setting: &str = if config::malformed(0) {
        "LIBAIO_RS_ENGINE malformed: auto"
    } else if config::env(c"LIBAIO_RS_ENGINE").is_some() {
        match config::engine_mode() {
            EngineMode::Auto => "LIBAIO_RS_ENGINE=auto",
            EngineMode::Kernel => "LIBAIO_RS_ENGINE=kernel",
            EngineMode::Threads => "LIBAIO_RS_ENGINE=threads",
            EngineMode::IoUring => "LIBAIO_RS_ENGINE=io_uring",
        }
    } else {
        "LIBAIO_RS_ENGINE unset: auto"
    };
    match config::engine_mode() {
        EngineMode::Kernel => line
            .str("kernel AIO only, with libaio's answers and no fallback (")
            .str(setting)
            .str(")"),
        EngineMode::Threads => line.str("the thread engine (").str(setting).str(")"),
        EngineMode::IoUring => line
            .str("the io_uring engine (")
            .str(setting)
            .str("); where io_uring is refused, io_setup fails with io_uring's error"),
        EngineMode::Auto => {
            line.str("kernel AIO (")
                .str(setting)
                .str("); where io_setup is refused with ENOSYS or EPERM");
            if config::fallback_on_eagain() {
                line.str(", or EAGAIN (LIBAIO_RS_FALLBACK_EAGAIN=1)");
            }
            match reaps {
                Some(false) => line.str(", the kernel's refusal, as with libaio: this program imports no io_getevents, io_pgetevents, io_queue_run or io_queue_wait, so no user-space engine could answer its reaping"),
                Some(true) => line.str(", the io_uring engine, or the thread engine where io_uring is refused too (this program reaps through the library)"),
                None => line.str(", the io_uring engine, or the thread engine where io_uring is refused too, for a program that reaps through io_getevents, io_pgetevents or io_queue_*; a program that imports none of them gets the kernel's refusal, as with libaio"),
            }
        }
    };
}

/// `io_setup` of kernel AIO, tried: 0 or its `-errno`.
fn try_kernel_aio() -> i32 {
    let mut ctx: crate::abi::io_context_t = core::ptr::null_mut();
    // SAFETY: our own handle, zero on entry.
    let ret = unsafe { sys::io_setup(1, &mut ctx) };
    if ret == 0 {
        // SAFETY: the context just set up.
        unsafe { sys::io_destroy(ctx) };
    }
    ret
}

/// The doctor: run as a program, the library describes itself and this
/// machine on stdout, then exits 0.
#[cfg_attr(any(test, not(doctor_entry)), allow(dead_code))] // called by the entry point only
pub(crate) fn doctor() -> ! {
    // The loader runs no constructor of the program it starts (that is
    // libc's start code, which the doctor has not got): settle here.
    config::init();
    examine(1);
    sys::exit_now(0)
}

/// The doctor's lines, written to `fd`.
fn examine(fd: i32) {
    let out = |line: &mut Line| line.send_to(fd);
    out(Line::new()
        .str("libaio-rs ")
        .str(VERSION)
        .str(": a drop-in for libaio 0.3.113 (same soname, symbols and layouts) with three engines: kernel AIO, io_uring and threads."));
    out(Line::new().str("Engines on this machine:"));

    let kernel = try_kernel_aio();
    let nr = procfs::number(c"/proc/sys/fs/aio-nr");
    let max = procfs::number(c"/proc/sys/fs/aio-max-nr");
    let mut line = Line::new();
    line.str("  kernel AIO: ");
    match kernel {
        0 => line.str("available"),
        err => line.str("refused, io_setup answers -").errno(-err),
    };
    if max.is_some() {
        line.str("; fs.aio-nr ")
            .num(nr)
            .str(" of fs.aio-max-nr ")
            .num(max)
            .str(" events in use");
        if let (Some(nr), Some(max)) = (nr, max) {
            line.str(" (").uint(max.saturating_sub(nr)).str(" left)");
        }
    } else {
        line.str("; this kernel has no AIO (no /proc/sys/fs/aio-max-nr)");
    }
    out(&mut line);
    if kernel == -libc::EAGAIN || matches!((nr, max), (Some(n), Some(m)) if m.saturating_sub(n) < 4096) {
        out(Line::new().str("    fs.aio-max-nr is one limit for the whole host (every container shares it): when io_setup gets EAGAIN, raise it (sysctl fs.aio-max-nr=N) or set LIBAIO_RS_FALLBACK_EAGAIN=1 to have auto fall back to io_uring or threads"));
    }
    if kernel == -libc::ENOSYS || kernel == -libc::EPERM {
        let filtered = procfs::seccomp_mode_of_self() == Some(2);
        out(Line::new().str("    ").str(if filtered {
            "a seccomp filter is installed (Seccomp: 2 in /proc/self/status): it refuses the io_* system calls"
        } else if max.is_none() {
            "the kernel was built without CONFIG_AIO"
        } else {
            "refused, though no seccomp filter is installed now"
        }));
    }

    let mut line = Line::new();
    line.str("  io_uring:   ");
    let uring = uring::ensure();
    match &uring {
        Ok(()) => {
            line.str("available");
        }
        Err(refused) => {
            line.str("refused (-")
                .errno(refused.errno.0)
                .str("): ")
                .str(refused.why);
            if let Some(d) = procfs::number(c"/proc/sys/kernel/io_uring_disabled") {
                line.str("; kernel.io_uring_disabled = ").uint(d);
            }
            if procfs::seccomp_mode_of_self() == Some(2) {
                line.str("; a seccomp filter is installed");
            }
            line.str("; kernel ");
            with_release(|r| {
                line.bytes(r);
            });
        }
    }
    out(&mut line);
    out(Line::new().str("  threads:    available (worker threads; needs nothing of the kernel but threads)"));

    let mut line = Line::new();
    line.str("auto picks here: ");
    match kernel {
        0 => line.str("kernel AIO"),
        e if e == -libc::ENOSYS || e == -libc::EPERM || (e == -libc::EAGAIN && config::fallback_on_eagain()) => {
            line.str(if uring.is_ok() { "io_uring" } else { "threads" })
                .str(" for a program that reaps through io_getevents, io_pgetevents or io_queue_*; for one that reaps on its own, kernel AIO's refusal, as with libaio")
        }
        e => line.str("kernel AIO, which answers -").errno(-e).str(" now"),
    };
    out(&mut line);
    let mut line = Line::new();
    line.str("new contexts get: ");
    new_contexts(&mut line, None);
    out(&mut line);

    out(Line::new().str("Settings (LIBAIO_RS_*, read once when the library is loaded):"));
    let mut any = false;
    config::each_set(|entry| {
        // The library's own variables and misspellings of them; other
        // LIBAIO_RS_ names (this project's build and test scripts') are not
        // settings of the library.
        if config::known(entry) || config::misspelled(entry).is_some() {
            any = true;
            out(Line::new().str("  ").bytes(entry));
        }
    });
    if !any {
        out(Line::new()
            .str("  none set: engine auto, user-space reaping on, no debug output, no fallback on EAGAIN"));
    }
    warnings(fd, false);
    match config::reap_off() {
        None => {
            out(Line::new().str("kernel AIO completions are reaped from the ring in user space when ready"))
        }
        Some(why) => out(Line::new()
            .str("kernel AIO completions are reaped through the kernel: ")
            .str(why)),
    }
    out(Line::new().str("Documentation: man 7 libaio; LIBAIO_RS_DEBUG=1 explains every failure on stderr."));
}

/// The running kernel's release (`uname -r`), for `f` to read.
fn with_release(f: impl FnOnce(&[u8])) {
    let u = sys::uname();
    #[allow(clippy::unnecessary_cast)] // c_char is i8 or u8, by target
    let r: [u8; 65] = core::array::from_fn(|i| u.map_or(0, |u| u.release[i] as u8));
    let n = r.iter().position(|&b| b == 0).unwrap_or(r.len());
    f(&r[..n]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::fd::{AsRawFd, FromRawFd};

    #[test]
    fn near_misses_name_the_engine_meant() {
        for (typed, meant) in [
            (&b"uring"[..], Some("io_uring")),
            (b"io-uring", Some("io_uring")),
            (b"IOURING", Some("io_uring")),
            (b"THREADS", Some("threads")),
            (b"thread", Some("threads")),
            (b"Kernel", Some("kernel")),
            (b"bogus", None),
            (b"", None),
            (b"a-value-longer-than-sixteen-bytes", None),
        ] {
            assert_eq!(meant_engine(typed), meant, "{typed:?}");
        }
    }

    #[test]
    #[cfg_attr(miri, ignore)] // real io_setup and io_uring_setup
    fn the_doctor_names_every_engine_and_a_choice() {
        let mut fds = [0i32; 2];
        // SAFETY: pipe writes two descriptors into our array.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: just opened, and owned here only.
        let mut r = unsafe { std::fs::File::from_raw_fd(fds[0]) };
        // SAFETY: as above.
        let w = unsafe { std::fs::File::from_raw_fd(fds[1]) };
        examine(w.as_raw_fd());
        drop(w);
        let mut text = std::string::String::new();
        r.read_to_string(&mut text).expect("utf-8");
        for want in [
            "libaio-rs ",
            "  kernel AIO: ",
            "  io_uring:   ",
            "  threads:    ",
            "auto picks here: ",
            "new contexts get: ",
            "Settings (LIBAIO_RS_*",
        ] {
            assert!(
                text.lines().any(|l| l.starts_with(want)),
                "no line starting {want:?} in:\n{text}"
            );
        }
    }
}
