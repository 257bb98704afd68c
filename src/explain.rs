//! Failures explained from what the request asked (`LIBAIO_RS_DEBUG` only):
//! completions that carry `-EINVAL` or `-EFAULT`, `io_setup`'s `-EINVAL`
//! and `io_submit`'s `-EBADF`.
//!
//! A completion's `res` says only the errno; the words come from the iocb
//! it names, as it reads at reaping time (the kernel copied it at
//! submission; a program may have reused it since, and the line may then
//! be wrong, never harmful). The iocb, the buffers and the event array are read through
//! the kernel's checked copy (`sys::read_user`), never dereferenced, so a
//! bad pointer gives a shorter line, not a fault. The descriptor is looked
//! at (`fcntl`, `statx`) as it is now: it may have been closed or reused
//! since the request, and the line says so. Each cause is said once per
//! process, so a loop of failing reads writes a handful of lines.
//!
//! Without debugging, none of this runs: the entry points test one flag
//! settled at load. Under a seccomp filter found at load none of it runs
//! either (the calls above could be refused or fatal): one line says so.

use crate::abi::io_event;
use crate::diag::{self, Line};
use crate::engine::process;
use crate::engine::user::iocb::cmd::{PREAD, PREADV, PWRITE, PWRITEV};
use crate::engine::user::iocb::Iocb;
use crate::sys::{self, fd};
use crate::{config, procfs};
use core::mem::size_of;
use core::sync::atomic::{AtomicU32, Ordering};

/// Causes already explained (one bit each).
static SAID: AtomicU32 = AtomicU32::new(0);
const MISALIGNED_BUF: u32 = 1;
const MISALIGNED_LEN: u32 = 1 << 1;
const MISALIGNED_OFF: u32 = 1 << 2;
const EINVAL_OTHER: u32 = 1 << 3;
const EFAULT_BUF: u32 = 1 << 4;
const EFAULT_IOV: u32 = 1 << 5;
const EFAULT_OTHER: u32 = 1 << 6;
const FILTERED: u32 = 1 << 7;

/// True the first time `cause` is given.
fn first(cause: u32) -> bool {
    SAID.fetch_or(cause, Ordering::Relaxed) & cause == 0
}

/// At most this many vector entries are looked at.
const IOV_MAX_SEEN: usize = 64;

/// Reads `dst.len()` bytes of the program's memory at `at`; false if any
/// could not be read.
fn read(at: u64, dst: &mut [u8]) -> bool {
    let Some(pid) = process::pid() else {
        return false;
    };
    usize::try_from(at).is_ok_and(|at| sys::read_user(pid, at, dst) == dst.len())
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_ne_bytes(w)
}

/// A request's pieces of memory: `(address, length)`, one for a plain read
/// or write, one per vector entry (up to `IOV_MAX_SEEN`) for a vectored
/// one; None when the vector itself cannot be read.
fn pieces(cb: &Iocb, out: &mut [(u64, u64); IOV_MAX_SEEN]) -> Option<usize> {
    if matches!(cb.opcode, PREAD | PWRITE) {
        out[0] = (cb.buf, cb.nbytes);
        return Some(1);
    }
    let n = usize::try_from(cb.nbytes).unwrap_or(usize::MAX).min(IOV_MAX_SEEN);
    let entry = size_of::<libc::iovec>();
    let mut raw = [0u8; 16];
    for (i, piece) in out.iter_mut().enumerate().take(n) {
        if !read(cb.buf.wrapping_add((i * entry) as u64), &mut raw[..entry]) {
            return None;
        }
        *piece = if entry == 16 {
            (u64_at(&raw, 0), u64_at(&raw, 8))
        } else {
            let w = |at: usize| {
                u64::from(u32::from_ne_bytes([
                    raw[at],
                    raw[at + 1],
                    raw[at + 2],
                    raw[at + 3],
                ]))
            };
            (w(0), w(4))
        };
    }
    Some(n)
}

/// Explains the failed completions among the `n` events at `events` that
/// `call` just returned (debugging on only).
#[cold]
pub(crate) fn completions(call: &str, events: *const io_event, n: i32) {
    if !config::debug() || n <= 0 {
        return;
    }
    let _keep = sys::KeepErrno::new();
    if config::filtered() {
        // Explaining needs process_vm_readv, statx and more, which a filter
        // installed before load may kill: say so once, with `write` only,
        // when an event failed. The events were written by this very call
        // (by the kernel or the library), so they are read in place.
        let failed = (0..n as usize).any(|i| {
            let ev = events.wrapping_add(i);
            // SAFETY: `events[i]`, i < n, was written by the call that
            // returned n, an instant ago: mapped, writable, aligned.
            let ev = unsafe { core::ptr::read_volatile(ev) };
            #[allow(clippy::unnecessary_cast)] // res is a long: i32 on 32-bit targets
            let res = ev.res as i64;
            res == -i64::from(libc::EINVAL) || res == -i64::from(libc::EFAULT)
        });
        if failed && first(FILTERED) {
            Line::say()
                .str(call)
                .str(": failed completions are not explained in this process: a seccomp filter was installed before the library was loaded, and explaining them takes system calls libaio does not make")
                .send();
        }
        return;
    }
    for i in 0..n as usize {
        let mut ev = [0u8; size_of::<io_event>()];
        if !read(events.wrapping_add(i) as u64, &mut ev) {
            return;
        }
        // io_event: data, obj, res, res2, each in a 64-bit slot on every
        // target (abi.rs pads the 32-bit ones).
        let obj = u64_at(&ev, core::mem::offset_of!(io_event, obj) & !7);
        let res = u64_at(&ev, core::mem::offset_of!(io_event, res) & !7) as i64;
        if res == -i64::from(libc::EINVAL) || res == -i64::from(libc::EFAULT) {
            explain_completion(call, obj, res as i32);
        }
    }
}

fn explain_completion(call: &str, obj: u64, res: i32) {
    let mut raw = [0u8; 64];
    if !read(obj, &mut raw) {
        return;
    }
    let cb = Iocb::decode(&raw);
    let rw = matches!(cb.opcode, PREAD | PWRITE | PREADV | PWRITEV);
    let op = match cb.opcode {
        PREAD => "read",
        PWRITE => "write",
        PREADV => "vectored read",
        PWRITEV => "vectored write",
        _ => "request",
    };
    let start = |line: &mut Line| {
        line.str(call)
            .str(": a completed ")
            .str(op)
            .str(" (iocb 0x")
            .hex(obj)
            .str(" as it reads now, fd ")
            .int(cb.fd.into())
            .str(") has res -");
    };
    let mut pieces_at = [(0u64, 0u64); IOV_MAX_SEEN];
    if res == -libc::EFAULT {
        let mut line = Line::say();
        start(&mut line);
        line.str("EFAULT: ");
        let Some(n) = rw.then(|| pieces(&cb, &mut pieces_at)).flatten() else {
            if rw && first(EFAULT_IOV) {
                line.str("the iovec array at aio_buf 0x")
                    .hex(cb.buf)
                    .str(" (")
                    .uint(cb.nbytes)
                    .str(" entries) is not readable memory")
                    .send();
            } else if !rw && first(EFAULT_OTHER) {
                line.str("a pointer of the request is not memory the kernel can use")
                    .send();
            }
            return;
        };
        let mut byte = [0u8; 1];
        for (i, &(at, len)) in pieces_at[..n].iter().enumerate() {
            let end = at.wrapping_add(len.saturating_sub(1));
            if len > 0 && !(read(at, &mut byte) && read(end, &mut byte)) {
                if first(EFAULT_BUF) {
                    if n > 1 || matches!(cb.opcode, PREADV | PWRITEV) {
                        line.str("iovec ").uint(i as u64).str("'s ");
                    }
                    line.str("buffer 0x")
                        .hex(at)
                        .str(" (")
                        .uint(len)
                        .str(" bytes) is not all mapped memory of this process")
                        .send();
                }
                return;
            }
        }
        if first(EFAULT_OTHER) {
            line.str("every buffer is mapped now: it was unmapped or protected while the request ran")
                .send();
        }
        return;
    }
    // -EINVAL.
    let direct = rw && fd::flags(cb.fd).is_ok_and(|f| f & libc::O_DIRECT != 0);
    let align = direct.then(|| dio_align(cb.fd)).flatten();
    let (Some((mem, off, source)), Some(n)) = (align, rw.then(|| pieces(&cb, &mut pieces_at)).flatten())
    else {
        if first(EINVAL_OTHER) {
            let mut line = Line::say();
            start(&mut line);
            line.str("EINVAL: ");
            if rw && !direct {
                line.str("fd ").int(cb.fd.into()).str(" is not open with O_DIRECT now (or no longer open): the file or the RWF_* flags in aio_rw_flags refused the request");
            } else {
                line.str(diag::why("io_submit", libc::EINVAL));
            }
            line.send();
        }
        return;
    };
    let needs = |line: &mut Line| {
        line.str(": O_DIRECT on fd ")
            .int(cb.fd.into())
            .str(" needs buffers aligned to ")
            .uint(mem.into())
            .str(" bytes in memory, and offsets and lengths to multiples of ")
            .uint(off.into())
            .str(" (")
            .str(source)
            .str(")");
    };
    let say = |cause: u32, what: &str, value: u64, unit: u32| {
        if first(cause) {
            let mut line = Line::say();
            start(&mut line);
            line.str("EINVAL: the ").str(what).str(" ");
            if cause == MISALIGNED_BUF {
                line.str("0x").hex(value);
            } else {
                line.uint(value);
            }
            line.str(" is not a multiple of ")
                .uint(unit.into())
                .str(" (")
                .uint(value % u64::from(unit))
                .str(" over)");
            needs(&mut line);
            line.send();
        }
    };
    // A size of 0 from a confused file system counts as no requirement.
    let (mem, off) = (mem.max(1), off.max(1));
    let mut found = false;
    if cb.offset as u64 % u64::from(off) != 0 {
        say(MISALIGNED_OFF, "offset", cb.offset as u64, off);
        found = true;
    }
    for &(at, len) in &pieces_at[..n] {
        if mem > 1 && at % u64::from(mem) != 0 {
            say(MISALIGNED_BUF, "buffer address", at, mem);
            found = true;
        }
        if len % u64::from(off) != 0 {
            say(MISALIGNED_LEN, "length", len, off);
            found = true;
        }
    }
    if !found && first(EINVAL_OTHER) {
        let mut line = Line::say();
        start(&mut line);
        line.str("EINVAL: buffer, length and offset are aligned");
        needs(&mut line);
        line.str("; the file system or the RWF_* flags refused the request")
            .send();
    }
}

/// What O_DIRECT needs of `fd`: memory and offset alignment, and whence.
fn dio_align(fd: i32) -> Option<(u32, u32, &'static str)> {
    let d = fd::dio(fd)?;
    if let Some((mem, off)) = d.align {
        return Some((mem.max(1), off, "statx STATX_DIOALIGN"));
    }
    let size = procfs::logical_block_size(d.dev.0, d.dev.1).and_then(|s| u32::try_from(s).ok())?;
    Some((size, size, "the device's logical block size, from sysfs"))
}

/// Explains `io_setup`'s failure `ret`, telling `-EINVAL`'s two causes apart.
#[cold]
pub(crate) fn setup_failed(ret: i32, maxevents: i32, ctxp: usize) {
    if ret != -libc::EINVAL || !config::debug() || config::filtered() {
        return diag::failed("io_setup", ret);
    }
    let _keep = sys::KeepErrno::new();
    let mut old = [0u8; size_of::<usize>()];
    let mut line = Line::say();
    line.str("io_setup: -EINVAL: ");
    if read(ctxp as u64, &mut old) && usize::from_ne_bytes(old) != 0 {
        line.str("*ctxp must be 0 on entry, and holds 0x")
            .hex(usize::from_ne_bytes(old) as u64)
            .str(" (a context handle not cleared, or an uninitialised variable)");
    } else {
        line.str("maxevents ")
            .int(maxevents.into())
            .str(" is out of range: it must be between 1 and about 4 million (the largest ring the kernel maps; above fs.aio-max-nr = ")
            .num(procfs::number(c"/proc/sys/fs/aio-max-nr"))
            .str(" the answer is -EAGAIN instead)");
    }
    line.send();
}

/// Explains `io_submit`'s failure `ret`, naming the descriptor for `-EBADF`.
#[cold]
pub(crate) fn submit_failed(ret: i32, ios: usize) {
    if ret != -libc::EBADF || !config::debug() || config::filtered() {
        return diag::failed("io_submit", ret);
    }
    let _keep = sys::KeepErrno::new();
    let mut p = [0u8; size_of::<usize>()];
    let mut raw = [0u8; 64];
    if !(read(ios as u64, &mut p) && read(usize::from_ne_bytes(p) as u64, &mut raw)) {
        return diag::failed("io_submit", ret);
    }
    let cb = Iocb::decode(&raw);
    let mut line = Line::say();
    line.str("io_submit: -EBADF: ");
    let resfd_bad = cb.flags & crate::abi::IOCB_FLAG_RESFD != 0 && fd::flags(cb.resfd as i32).is_err();
    match fd::flags(cb.fd) {
        Err(_) => line
            .str("aio_fildes ")
            .int(cb.fd.into())
            .str(" is not an open file descriptor"),
        Ok(f) if resfd_bad => line
            .str("IOCB_FLAG_RESFD is set and u.c.resfd ")
            .uint(cb.resfd.into())
            .str(" is not an open descriptor (aio_fildes ")
            .int(cb.fd.into())
            .str(" is open, access mode ")
            .int((f & libc::O_ACCMODE).into())
            .str(")"),
        Ok(f) => {
            let mode = match f & libc::O_ACCMODE {
                libc::O_RDONLY => "read-only",
                libc::O_WRONLY => "write-only",
                _ => "read-write",
            };
            line.str("aio_fildes ")
                .int(cb.fd.into())
                .str(" is open ")
                .str(mode)
                .str(", which this request's command (aio_lio_opcode ")
                .uint(cb.opcode.into())
                .str(") cannot use")
        }
    };
    line.send();
}
