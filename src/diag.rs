//! Failures explained in words on stderr, when `LIBAIO_RS_DEBUG` is set.
//!
//! Off by default, and then a failing call costs one test of a flag settled
//! at load (see `config`): nothing is written, no file is read. When on, the
//! library says at load what it found, and each failing call writes one line,
//! `libaio: CALL: -ENAME: why`, formatted into a stack buffer (no allocation)
//! and written with one `write(2)`, so lines from several threads do not
//! interleave; explaining `-EAGAIN`, `-ENOSYS` or `-EPERM` reads /proc.
//! `errno` is the same afterwards as before, either way.
//!
//! The explanations follow what the kernel really answers (checked on Linux
//! 6.x): for example `io_setup`'s `-EAGAIN` comes with the numbers in
//! `/proc/sys/fs/aio-nr` and `aio-max-nr`, and `-ENOSYS` says whether the
//! kernel lacks AIO or a seccomp filter refuses it.

use crate::sys::KeepErrno;
use crate::{config, procfs};
use core::ffi::CStr;
use core::fmt::{self, Write};

/// Longest line written; longer explanations are cut.
const LINE_MAX: usize = 512;

/// A line being built for stderr.
struct Line {
    buf: [u8; LINE_MAX],
    len: usize,
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.buf.len() - self.len;
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

impl Line {
    fn new() -> Self {
        Line {
            buf: [0; LINE_MAX],
            len: 0,
        }
    }

    /// Ends the line with a newline (replacing the last byte when full).
    fn finish(&mut self) -> &[u8] {
        if self.len == self.buf.len() {
            self.len -= 1;
        }
        self.buf[self.len] = b'\n';
        self.len += 1;
        &self.buf[..self.len]
    }
}

fn emit(args: fmt::Arguments<'_>) {
    let mut line = Line::new();
    let _ = line.write_str("libaio: ");
    let _ = line.write_fmt(args);
    let bytes = line.finish();
    // SAFETY: writes our own buffer to fd 2.
    unsafe { libc::write(2, bytes.as_ptr().cast(), bytes.len()) };
}

/// An errno value shown by its symbolic name, or as a number when unknown.
struct Errno(i32);

impl Errno {
    fn name(&self) -> Option<&'static str> {
        Some(match self.0 {
            libc::EPERM => "EPERM",
            libc::ENOENT => "ENOENT",
            libc::EINTR => "EINTR",
            libc::EIO => "EIO",
            libc::EBADF => "EBADF",
            libc::EAGAIN => "EAGAIN",
            libc::ENOMEM => "ENOMEM",
            libc::EFAULT => "EFAULT",
            libc::EINVAL => "EINVAL",
            libc::ENOSPC => "ENOSPC",
            libc::ENOSYS => "ENOSYS",
            libc::EOPNOTSUPP => "EOPNOTSUPP",
            libc::EINPROGRESS => "EINPROGRESS",
            libc::ECANCELED => "ECANCELED",
            _ => return None,
        })
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "errno {}", self.0),
        }
    }
}

/// Why the kernel said ENOSYS or EPERM to an io_* call: no AIO in the
/// kernel, or a seccomp filter (a container's profile, a systemd unit's
/// SystemCallFilter) refusing it.
fn refused_cause(err: i32) -> &'static str {
    if err == libc::ENOSYS && procfs::kernel_has_aio() == Some(false) {
        return "kernel AIO is not available here: this kernel has no AIO support (built without CONFIG_AIO: /proc/sys/fs/aio-max-nr does not exist)";
    }
    let filtered = procfs::seccomp_mode_of_self() == Some(2);
    match (err, filtered) {
        (libc::ENOSYS, true) => {
            "kernel AIO is not available here: the kernel has it, but this process runs under a seccomp filter (Seccomp: 2 in /proc/self/status) that refuses the io_* system calls, as some container runtimes and sandboxes do; allow io_setup, io_destroy, io_submit, io_cancel, io_getevents and io_pgetevents in its profile"
        }
        (libc::ENOSYS, false) => {
            "kernel AIO is not available here (a kernel built without CONFIG_AIO, or a seccomp filter such as a container's refuses the io_* system calls)"
        }
        (_, true) => {
            "refused by the seccomp filter this process runs under (Seccomp: 2 in /proc/self/status): a container runtime's profile or a systemd unit's SystemCallFilter answers EPERM for the io_* system calls; allow io_setup, io_destroy, io_submit, io_cancel, io_getevents and io_pgetevents there"
        }
        _ => {
            "operation not permitted: a seccomp filter of a container runtime or sandbox that answers EPERM for the io_* system calls (none is installed now, so it may have been lifted), or, for io_submit, an I/O priority (IOCB_FLAG_IOPRIO) that needs a privilege this process lacks"
        }
    }
}

/// Why a call failed, in words, for the errors the kernel really returns.
fn why(call: &str, err: i32) -> &'static str {
    use libc::*;
    let getevents = call == "io_getevents" || call == "io_pgetevents";
    match (call, err) {
        ("io_setup", EINVAL) => {
            "maxevents must be between 1 and about 4 million, and *ctxp must be 0 on entry (a context handle still stored there is refused)"
        }
        ("io_setup", EFAULT) => "ctxp does not point to writable memory",
        ("io_queue_init", EINVAL) => "maxevents must be positive (io_queue_init refuses 0 and negative sizes itself)",
        ("io_setup", ENOMEM) => {
            "the kernel could not allocate or map the completion ring (memory or address-space limits)"
        }
        ("io_destroy", EINVAL) => {
            "ctx is not a live context of this process: already destroyed, never set up, or inherited through fork (a child has none of its parent's contexts)"
        }
        ("io_submit", EINVAL) => {
            "ctx is not a live context of this process, or nr < 0, or the first iocb was refused: its aio_lio_opcode is not one the kernel implements (IO_CMD_NOOP is not), a reserved field is not zero, the offset is negative, an fsync/fdsync iocb has a buffer, length or offset, IOCB_FLAG_RESFD names a file that is not an eventfd, or the file does not support this command"
        }
        ("io_submit", EAGAIN) => {
            "no request slot is free: the context already has as many requests in flight as it can hold; reap completions with io_getevents first, or set up a larger context"
        }
        ("io_submit", EBADF) => {
            "the first iocb's aio_fildes is not an open file descriptor, or not open for reading (reads) or writing (writes), or IOCB_FLAG_RESFD is set and u.c.resfd is not open"
        }
        ("io_submit", EFAULT) => {
            "ios, or the first iocb it points to, is not readable memory, or the buffer address is outside user space"
        }
        ("io_submit", EOPNOTSUPP) => {
            "aio_rw_flags holds an RWF_* flag that this kernel or this file does not support"
        }
        ("io_submit", EPERM) => {
            "the I/O priority in aio_reqprio (IOCB_FLAG_IOPRIO) needs a privilege this process lacks"
        }
        ("io_cancel", EINPROGRESS) => {
            "not a failure: cancellation has started; the request completes through io_getevents like any other (a cancelled poll with res 0), and *evt is not written"
        }
        ("io_cancel", EINVAL) => {
            "the request is not one the kernel can cancel: only IO_CMD_POLL requests (and USB gadget I/O) can be, never reads, writes or syncs on files; or it already completed, was never submitted to this ctx, or ctx is not a live context"
        }
        ("io_cancel", EFAULT) => "iocb does not point to readable memory",
        (_, EINVAL) if getevents => {
            "ctx is not a live context of this process (destroyed, never set up, or inherited through fork), or min_nr < 0, nr < 0 or min_nr > nr"
        }
        (_, EFAULT) if getevents => {
            "events (nr slots) is not writable memory, or timeout or sigmask is not readable"
        }
        (_, EINTR) if getevents => {
            "a signal handler ran before any event arrived; the kernel does not restart this call, even with SA_RESTART: call it again"
        }
        (_, EFAULT) => "a pointer argument does not point to memory the kernel can use",
        (_, ENOMEM) => "the kernel is out of memory",
        _ => "see the man page of this call",
    }
}

/// Says what the library found at load: which library this is, from where,
/// and whether it reaps completions in user space (`off` gives the reason).
pub(crate) fn loaded(off: Option<&str>) {
    let _keep = KeepErrno::new();
    let mut info = core::mem::MaybeUninit::<libc::Dl_info>::zeroed();
    // SAFETY: dladdr fills `info` for an address inside this library (this
    // function); the struct is plain data, valid all-zero.
    let found = unsafe { libc::dladdr(loaded as *const libc::c_void, info.as_mut_ptr()) } != 0;
    // SAFETY: zero-initialised above and possibly filled by dladdr.
    let info = unsafe { info.assume_init() };
    let path = if found && !info.dli_fname.is_null() {
        // SAFETY: dladdr gives the loader's NUL-terminated name of the object.
        unsafe { CStr::from_ptr(info.dli_fname) }.to_str().unwrap_or("?")
    } else {
        "?"
    };
    let version = env!("CARGO_PKG_VERSION");
    match off {
        None => emit(format_args!(
            "libaio-rs {version} loaded from {path}: kernel AIO, completions reaped from the ring in user space when ready"
        )),
        Some(why) => emit(format_args!(
            "libaio-rs {version} loaded from {path}: kernel AIO, every reap through the kernel: {why}"
        )),
    }
}

/// Says which engine a new context got, and why (debugging on only).
pub(crate) fn engine(name: &str, why: Option<&str>) {
    if !config::debug() {
        return;
    }
    let _keep = KeepErrno::new();
    match why {
        None => emit(format_args!("io_setup: engine {name}")),
        Some(why) => emit(format_args!("io_setup: engine {name}: {why}")),
    }
}

/// Explains a failed call (ret < 0) when debugging is on.
pub(crate) fn failed(call: &str, ret: i32) {
    if ret >= 0 || !config::debug() {
        return;
    }
    let _keep = KeepErrno::new();
    let err = ret.saturating_neg();
    match (call, err) {
        ("io_setup", libc::EAGAIN) => {
            let nr = procfs::number(c"/proc/sys/fs/aio-nr");
            let max = procfs::number(c"/proc/sys/fs/aio-max-nr");
            emit(format_args!(
                "io_setup: -EAGAIN: not enough AIO events left under the system-wide limit: /proc/sys/fs/aio-nr = {} (held by existing contexts), /proc/sys/fs/aio-max-nr = {} (the limit), and aio-nr + maxevents may not exceed the limit; raise it (sysctl fs.aio-max-nr=N) or destroy unused contexts",
                Num(nr),
                Num(max)
            ));
        }
        (_, libc::ENOSYS) => emit(format_args!("{call}: -ENOSYS: {}", refused_cause(err))),
        ("io_setup" | "io_getevents" | "io_pgetevents" | "io_destroy" | "io_cancel", libc::EPERM) => {
            emit(format_args!("{call}: -EPERM: {}", refused_cause(err)))
        }
        _ => emit(format_args!("{call}: -{}: {}", Errno(err), why(call, err))),
    }
}

/// Notes a partial submission (the kernel stopped at the first iocb it refused).
pub(crate) fn partial(nr: core::ffi::c_long, done: i32) {
    if done >= 0 && core::ffi::c_long::from(done) < nr && config::debug() {
        let _keep = KeepErrno::new();
        emit(format_args!(
            "io_submit: submitted {done} of {nr} iocbs; the kernel stopped at index {done} (that iocb was refused, or no request slot was left): submit the rest again to get its error"
        ));
    }
}

/// An optional number, shown as "?" when it could not be read.
struct Num(Option<u64>);

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(n) => write!(f, "{n}"),
            None => f.write_str("?"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::String;

    #[test]
    fn errno_shows_name_or_number() {
        assert_eq!(std::format!("{}", Errno(libc::EAGAIN)), "EAGAIN");
        assert_eq!(std::format!("{}", Errno(4242)), "errno 4242");
    }

    #[test]
    fn every_kernel_error_has_words() {
        for (call, err) in [
            ("io_setup", libc::EINVAL),
            ("io_setup", libc::EFAULT),
            ("io_destroy", libc::EINVAL),
            ("io_submit", libc::EAGAIN),
            ("io_submit", libc::EBADF),
            ("io_submit", libc::EINVAL),
            ("io_submit", libc::EOPNOTSUPP),
            ("io_cancel", libc::EINVAL),
            ("io_cancel", libc::EINPROGRESS),
            ("io_getevents", libc::EINTR),
            ("io_pgetevents", libc::EINVAL),
        ] {
            assert_ne!(why(call, err), why("io_nothing", 0), "{call} {err}");
        }
    }

    #[test]
    fn long_lines_are_cut_and_end_in_newline() {
        let mut l = Line::new();
        let long: String = "x".repeat(LINE_MAX * 2);
        let _ = l.write_str(&long);
        let out = l.finish();
        assert_eq!(out.len(), LINE_MAX);
        assert_eq!(out.last(), Some(&b'\n'));
    }
}
