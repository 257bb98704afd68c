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

/// Longest line written; longer explanations are cut.
const LINE_MAX: usize = 1024;

/// A line being built for stderr, piece by piece (no `core::fmt`: its
/// machinery alone would be a tenth of the library).
pub(crate) struct Line {
    buf: [u8; LINE_MAX],
    len: usize,
}

impl Line {
    pub(crate) fn new() -> Self {
        Line {
            buf: [0; LINE_MAX],
            len: 0,
        }
    }

    /// A line that starts with the library's prefix.
    pub(crate) fn say() -> Self {
        let mut line = Line::new();
        line.str("libaio: ");
        line
    }

    /// Appends what fits of `bytes` (one copy of this code for every piece).
    #[inline(never)]
    pub(crate) fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        let n = bytes.len().min(LINE_MAX - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
        self.len += n;
        self
    }

    pub(crate) fn str(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }

    /// Appends `n` in decimal, most significant digit first (a loop the
    /// compiler cannot unroll twenty times).
    #[inline(never)]
    pub(crate) fn uint(&mut self, n: u64) -> &mut Self {
        let mut unit = 1;
        while n / unit >= 10 {
            unit *= 10;
        }
        loop {
            self.bytes(&[b'0' + (n / unit % 10) as u8]);
            if unit == 1 {
                return self;
            }
            unit /= 10;
        }
    }

    /// Appends `n` in hexadecimal (no prefix).
    pub(crate) fn hex(&mut self, n: u64) -> &mut Self {
        let digits = (64 - n.leading_zeros()).div_ceil(4).max(1);
        for i in (0..digits).rev() {
            self.bytes(&[b"0123456789abcdef"[(n >> (i * 4) & 15) as usize]]);
        }
        self
    }

    /// Appends `n` in decimal, with its sign.
    pub(crate) fn int(&mut self, n: i64) -> &mut Self {
        if n < 0 {
            self.str("-");
        }
        self.uint(n.unsigned_abs())
    }

    /// Appends a number that may not have been read, as "?" then.
    pub(crate) fn num(&mut self, n: Option<u64>) -> &mut Self {
        match n {
            Some(n) => self.uint(n),
            None => self.str("?"),
        }
    }

    /// Appends an errno value by its symbolic name, or as a number when unknown.
    pub(crate) fn errno(&mut self, err: i32) -> &mut Self {
        match errno_name(err) {
            Some(name) => self.str(name),
            None => self.str("errno ").int(err.into()),
        }
    }

    /// Ends the line with a newline (replacing the last byte when full).
    pub(crate) fn finish(&mut self) -> &[u8] {
        if self.len == self.buf.len() {
            self.len -= 1;
        }
        self.buf[self.len] = b'\n';
        self.len += 1;
        &self.buf[..self.len]
    }

    /// Writes the line to stderr with one write(2), so lines from several
    /// threads do not interleave.
    #[inline(never)] // one copy for every line written
    pub(crate) fn send(&mut self) {
        self.send_to(2);
    }

    /// Writes the line to `fd` (the doctor's lines go to stdout).
    #[inline(never)]
    pub(crate) fn send_to(&mut self, fd: i32) {
        let bytes = self.finish();
        let _ = crate::sys::fd::write(fd, bytes);
    }
}

/// The symbolic name of the errno values the io_* calls return.
fn errno_name(err: i32) -> Option<&'static str> {
    Some(match err {
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
pub(crate) fn why(call: &str, err: i32) -> &'static str {
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

/// Says which engine a new context got, and why (debugging on only).
#[cold]
pub(crate) fn engine(name: &str, why: Option<&str>) {
    if !config::debug() {
        return;
    }
    let _keep = KeepErrno::new();
    let mut line = Line::say();
    line.str("io_setup: engine ").str(name);
    if let Some(why) = why {
        line.str(": ").str(why);
    }
    line.send();
}

/// Says why `auto` gives the kernel's refusal instead of falling back: the
/// program imports no reaping entry point (debugging on only).
#[cold]
pub(crate) fn no_fallback(why: &str) {
    if !config::debug() {
        return;
    }
    let _keep = KeepErrno::new();
    let mut line = Line::say();
    line.str("io_setup: ")
        .str(why)
        .str("; no fallback: this program imports no io_getevents, io_pgetevents, io_queue_run or io_queue_wait, so it reaps on its own (reading the ring, or with the io_getevents system call, which no user-space engine can answer): it gets the kernel's answer, as with libaio (LIBAIO_RS_ENGINE=io_uring or threads gives a ring reader an engine)");
    line.send();
}

/// Says, always, that a forced user-space engine serves a program that
/// imports no reaping entry point.
#[cold]
pub(crate) fn reaps_on_its_own(engine: &str) {
    let _keep = KeepErrno::new();
    let mut line = Line::say();
    line.str("LIBAIO_RS_ENGINE=")
        .str(engine)
        .str(": this program imports no io_getevents: if it reads the completion ring itself it works; if it calls the io_getevents system call itself it cannot (the kernel does not know a user-space context: -EINVAL)");
    line.send();
}

/// Says that engine `name` cannot work in this process, and why (debugging on only).
#[cold]
pub(crate) fn engine_refused(name: &str, why: &str) {
    if !config::debug() {
        return;
    }
    let _keep = KeepErrno::new();
    let mut line = Line::say();
    line.str("io_setup: ").str(name).str(" unavailable: ").str(why);
    line.send();
}

/// Explains a failed call (ret < 0) when debugging is on.
#[cold]
pub(crate) fn failed(call: &str, ret: i32) {
    if ret >= 0 || !config::debug() {
        return;
    }
    let _keep = KeepErrno::new();
    explain(call, ret.saturating_neg()).send();
}

/// The line that explains `call` failing with `-err`.
fn explain(call: &str, err: i32) -> Line {
    let mut line = Line::say();
    match (call, err) {
        ("io_setup", libc::EAGAIN) => {
            let nr = procfs::number(c"/proc/sys/fs/aio-nr");
            let max = procfs::number(c"/proc/sys/fs/aio-max-nr");
            line.str("io_setup: -EAGAIN: not enough AIO events left under the system-wide limit: /proc/sys/fs/aio-nr = ")
                .num(nr)
                .str(" (held by existing contexts), /proc/sys/fs/aio-max-nr = ")
                .num(max)
                .str(" (the limit), and aio-nr + maxevents may not exceed the limit; raise it (sysctl fs.aio-max-nr=N: one limit for the whole host, so in a container it is the host's), destroy unused contexts, or set LIBAIO_RS_FALLBACK_EAGAIN=1 to have auto fall back to io_uring or the thread engine")
        }
        ("io_setup", libc::ENOSYS | libc::EPERM) if config::engine_mode() == config::EngineMode::IoUring => line
            .str("io_setup: -")
            .errno(err)
            .str(": the io_uring engine (LIBAIO_RS_ENGINE=io_uring) cannot be used here, for the reason above: allow io_uring_setup, io_uring_enter and io_uring_register (or set kernel.io_uring_disabled=0), or choose another engine"),
        (_, libc::ENOSYS) => line.str(call).str(": -ENOSYS: ").str(refused_cause(err)),
        ("io_setup" | "io_getevents" | "io_pgetevents" | "io_destroy" | "io_cancel", libc::EPERM) => {
            line.str(call).str(": -EPERM: ").str(refused_cause(err))
        }
        _ => line.str(call).str(": -").errno(err).str(": ").str(why(call, err)),
    };
    line
}

/// Notes a partial submission (the kernel stopped at the first iocb it refused).
#[cold]
pub(crate) fn partial(nr: core::ffi::c_long, done: i32) {
    if done >= 0 && core::ffi::c_long::from(done) < nr && config::debug() {
        let _keep = KeepErrno::new();
        Line::say()
            .str("io_submit: submitted ")
            .int(done.into())
            .str(" of ")
            .uint(u64::try_from(nr).unwrap_or(0)) // nr > done >= 0
            .str(" iocbs; the kernel stopped at index ")
            .int(done.into())
            .str(" (that iocb was refused, or no request slot was left): submit the rest again to get its error")
            .send();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::String;

    fn text(line: &Line) -> &str {
        core::str::from_utf8(&line.buf[..line.len]).expect("ASCII")
    }

    #[test]
    fn errno_shows_name_or_number() {
        assert_eq!(text(Line::new().errno(libc::EAGAIN)), "EAGAIN");
        assert_eq!(text(Line::new().errno(4242)), "errno 4242");
        assert_eq!(text(Line::new().errno(-7)), "errno -7");
    }

    #[test]
    fn numbers_in_decimal() {
        assert_eq!(text(Line::new().uint(0)), "0");
        assert_eq!(text(Line::new().uint(u64::MAX)), "18446744073709551615");
        assert_eq!(text(Line::new().int(i64::MIN)), "-9223372036854775808");
        assert_eq!(text(Line::new().int(-1).str(" ").int(1200)), "-1 1200");
        assert_eq!(text(Line::new().num(None).num(Some(10))), "?10");
    }

    #[test]
    fn failures_read_as_before() {
        assert_eq!(
            text(&explain("io_cancel", libc::EFAULT)),
            "libaio: io_cancel: -EFAULT: iocb does not point to readable memory"
        );
        assert_eq!(
            text(&explain("io_submit", 4242)),
            "libaio: io_submit: -errno 4242: see the man page of this call"
        );
        let eagain = explain("io_setup", libc::EAGAIN);
        let eagain = text(&eagain);
        assert!(eagain.starts_with("libaio: io_setup: -EAGAIN: not enough AIO events left under the system-wide limit: /proc/sys/fs/aio-nr = "), "{eagain}");
        let max = std::fs::read_to_string("/proc/sys/fs/aio-max-nr").expect("aio-max-nr");
        let want = std::format!(", /proc/sys/fs/aio-max-nr = {} (the limit), ", max.trim());
        assert!(eagain.contains(&want), "{eagain}");
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
        l.str(&long).uint(12345);
        let out = l.finish();
        assert_eq!(out.len(), LINE_MAX);
        assert_eq!(out.last(), Some(&b'\n'));
        assert!(out[..LINE_MAX - 1].iter().all(|&b| b == b'x'));
    }
}
