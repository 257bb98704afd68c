//! Failures explained in words on stderr, when `LIBAIO_RS_DEBUG` is set.
//!
//! Off by default, and then nothing here runs but one flag test on the error
//! path. Messages are formatted into a stack buffer (no allocation) and written
//! with one `write(2)` so lines from several threads do not interleave.

use crate::config;
use core::fmt::{self, Write};

/// A line being built for stderr.
struct Line {
    buf: [u8; 512],
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

fn emit(args: fmt::Arguments<'_>) {
    let mut line = Line {
        buf: [0; 512],
        len: 0,
    };
    let _ = line.write_str("libaio: ");
    let _ = line.write_fmt(args);
    if line.len == line.buf.len() {
        line.len -= 1;
    }
    line.buf[line.len] = b'\n';
    line.len += 1;
    // SAFETY: writes our own buffer to fd 2.
    unsafe { libc::write(2, line.buf.as_ptr().cast(), line.len) };
}

/// Puts `errno` back as it was when dropped: explaining a failure must not
/// change what the caller sees.
struct KeepErrno(i32);

impl KeepErrno {
    fn new() -> Self {
        // SAFETY: reading this thread's errno.
        KeepErrno(unsafe { *libc::__errno_location() })
    }
}

impl Drop for KeepErrno {
    fn drop(&mut self) {
        // SAFETY: writing this thread's errno.
        unsafe { *libc::__errno_location() = self.0 };
    }
}

/// The symbolic name of an errno value.
fn errno_name(e: i32) -> &'static str {
    match e {
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
        _ => "E?",
    }
}

/// Reads a small decimal number from a /proc file.
fn read_proc_number(path: &core::ffi::CStr) -> Option<u64> {
    let mut buf = [0u8; 32];
    // SAFETY: open/read/close into our own buffer (errno is kept by `failed`).
    let n = unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return None;
        }
        let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
        libc::close(fd);
        n
    };
    let digits = buf.get(..usize::try_from(n).ok()?)?;
    core::str::from_utf8(digits).ok()?.trim().parse().ok()
}

/// Why a call failed, in words, for the errors the kernel really returns.
fn why(call: &str, err: i32) -> &'static str {
    match (call, err) {
        (_, libc::ENOSYS) => {
            "kernel AIO is not available here (a kernel built without CONFIG_AIO, or a seccomp filter such as a container's blocks the io_* system calls)"
        }
        ("io_setup", libc::EINVAL) => "*ctxp must be 0 on entry and maxevents must be positive and not absurdly large",
        ("io_setup", libc::ENOMEM) => "the kernel could not allocate the completion ring",
        ("io_submit", libc::EAGAIN) => "no room: the context already has as many requests in flight as io_setup allowed; reap completions first",
        ("io_submit", libc::EBADF) => "the first iocb's aio_fildes is not an open file descriptor (or not open for that direction)",
        ("io_submit", libc::EINVAL) => {
            "bad context, nr < 0, an unknown aio_lio_opcode, reserved fields not zero, or a file that does not support this command"
        }
        ("io_cancel", libc::EINVAL) => "this request cannot be cancelled (the kernel cancels poll requests and little else) or the context is bad",
        ("io_cancel", libc::EAGAIN) => "the request is not in flight (never submitted, or already completed)",
        (_, libc::EINVAL) => "ctx is not a live context of this process (destroyed, never set up, or inherited through fork), or min_nr/nr are out of range",
        (_, libc::EINTR) => "a signal arrived while waiting",
        (_, libc::EFAULT) => "a pointer argument does not point to memory the kernel can use",
        _ => "see the man page of this call",
    }
}

/// Explains a failed call (ret < 0) when debugging is on.
pub fn failed(call: &str, ret: i32) {
    if ret >= 0 || !config::debug() {
        return;
    }
    let _keep = KeepErrno::new();
    let err = -ret;
    if call == "io_setup" && err == libc::EAGAIN {
        let nr = read_proc_number(c"/proc/sys/fs/aio-nr");
        let max = read_proc_number(c"/proc/sys/fs/aio-max-nr");
        emit(format_args!(
            "io_setup: -EAGAIN: the system-wide limit on AIO events is reached, or maxevents asks for more than it: /proc/sys/fs/aio-nr = {}, /proc/sys/fs/aio-max-nr = {} (raise fs.aio-max-nr, or destroy unused contexts)",
            Num(nr),
            Num(max)
        ));
        return;
    }
    emit(format_args!("{call}: -{}: {}", errno_name(err), why(call, err)));
}

/// Notes a partial submission (the kernel stopped at the first iocb it refused).
pub fn partial(nr: core::ffi::c_long, done: i32) {
    if done >= 0 && core::ffi::c_long::from(done) < nr && config::debug() {
        let _keep = KeepErrno::new();
        emit(format_args!(
            "io_submit: submitted {done} of {nr} iocbs; the one at index {done} was refused (submit it alone to see why)"
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
