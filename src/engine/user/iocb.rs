//! An iocb as the kernel reads it, and the checks `io_submit` makes on it,
//! in the kernel's order and with its errors (`fs/aio.c`: `io_submit_one`,
//! `__io_submit_one`, `aio_prep_rw`, `aio_setup_rw`, `rw_verify_area`,
//! `aio_poll`, `aio_fsync`).
//!
//! [`check`] is a function of the decoded iocb and of what an [`Env`] says
//! about descriptors and memory, so it is tested without system calls. Its
//! answer is a [`Plan`]: what the request does and where it runs.

use super::Op;
use crate::sys::Errno;
use core::mem::size_of;

/// The kernel's `struct iocb`, decoded from its 64 bytes.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Iocb {
    pub(crate) data: u64,
    pub(crate) rw_flags: u32,
    pub(crate) opcode: u16,
    pub(crate) reqprio: u16,
    pub(crate) fd: i32,
    pub(crate) buf: u64,
    pub(crate) nbytes: u64,
    pub(crate) offset: i64,
    pub(crate) reserved2: u64,
    pub(crate) flags: u32,
    pub(crate) resfd: u32,
}

/// Where each field sits in the kernel's iocb, taken from libaio's layout
/// (`abi::iocb`): the kernel reads 64-bit slots where libaio pads a pointer
/// or a `long` to 64 bits, so those fields are read at their slot (the
/// offset rounded down to 8; on 32-bit big-endian targets the value sits in
/// the slot's second half, which the 64-bit read of the slot takes in).
mod at {
    use crate::abi::{io_iocb_common, iocb};
    use core::mem::offset_of;

    const U: usize = offset_of!(iocb, u);
    pub(super) const DATA: usize = offset_of!(iocb, data) & !7;
    pub(super) const KEY: usize = offset_of!(iocb, key);
    pub(super) const RW_FLAGS: usize = offset_of!(iocb, aio_rw_flags);
    pub(super) const OPCODE: usize = offset_of!(iocb, aio_lio_opcode);
    pub(super) const REQPRIO: usize = offset_of!(iocb, aio_reqprio);
    pub(super) const FILDES: usize = offset_of!(iocb, aio_fildes);
    pub(super) const BUF: usize = (U + offset_of!(io_iocb_common, buf)) & !7;
    pub(super) const NBYTES: usize = (U + offset_of!(io_iocb_common, nbytes)) & !7;
    pub(super) const OFFSET: usize = U + offset_of!(io_iocb_common, offset);
    pub(super) const RESERVED2: usize = U + offset_of!(io_iocb_common, __pad3);
    pub(super) const FLAGS: usize = U + offset_of!(io_iocb_common, flags);
    pub(super) const RESFD: usize = U + offset_of!(io_iocb_common, resfd);

    // The kernel's `struct iocb` (linux/aio_abi.h), the same on every
    // architecture: libaio's layout must land on it.
    const _: () = assert!(DATA == 0 && OPCODE == 16 && REQPRIO == 18 && FILDES == 20);
    const _: () = assert!(BUF == 24 && NBYTES == 32 && OFFSET == 40 && RESERVED2 == 48);
    const _: () = assert!(FLAGS == 56 && RESFD == 60);
    const _: () = assert!(
        (KEY == 8 && RW_FLAGS == 12 && cfg!(target_endian = "little"))
            || (KEY == 12 && RW_FLAGS == 8 && cfg!(target_endian = "big"))
    );
}

/// Where `aio_key` sits in the kernel's iocb (after `aio_data`, on the
/// endian side of the `aio_rw_flags` pair).
pub(crate) const KEY_OFFSET: usize = at::KEY;

/// The kernel's opcodes (`IOCB_CMD_*`, libaio's `IO_CMD_*`).
pub(crate) mod cmd {
    use crate::abi::io_iocb_cmd::*;
    pub(crate) const PREAD: u16 = IO_CMD_PREAD as u16;
    pub(crate) const PWRITE: u16 = IO_CMD_PWRITE as u16;
    pub(crate) const FSYNC: u16 = IO_CMD_FSYNC as u16;
    pub(crate) const FDSYNC: u16 = IO_CMD_FDSYNC as u16;
    pub(crate) const POLL: u16 = IO_CMD_POLL as u16;
    pub(crate) const PREADV: u16 = IO_CMD_PREADV as u16;
    pub(crate) const PWRITEV: u16 = IO_CMD_PWRITEV as u16;
}

/// `IOCB_FLAG_RESFD`: signal `aio_resfd` on completion.
pub(crate) const FLAG_RESFD: u32 = crate::abi::IOCB_FLAG_RESFD;
/// `IOCB_FLAG_IOPRIO`: `aio_reqprio` is the request's I/O priority.
const FLAG_IOPRIO: u32 = 2;
/// `RWF_*` flags Linux knows (HIPRI, DSYNC, SYNC, NOWAIT, APPEND, NOAPPEND,
/// ATOMIC, DONTCACHE, NOSIGNAL); whether the file supports one is answered
/// when the request runs.
const RWF_KNOWN: u32 = 0x1ff;
/// `RWF_NOWAIT`: fail rather than block.
pub(crate) const RWF_NOWAIT: u32 = 0x8;
/// The kernel's limit on iovec entries (`UIO_MAXIOV`).
const UIO_MAXIOV: u64 = 1024;
/// The most one read or write transfers (`MAX_RW_COUNT`).
const MAX_RW_COUNT: u64 = 0x7fff_f000;

impl Iocb {
    pub(crate) fn decode(b: &[u8; 64]) -> Iocb {
        let u64_at = |o: usize| u64::from_ne_bytes(b[o..o + 8].try_into().unwrap_or([0; 8]));
        let u32_at = |o: usize| u32::from_ne_bytes(b[o..o + 4].try_into().unwrap_or([0; 4]));
        let u16_at = |o: usize| u16::from_ne_bytes(b[o..o + 2].try_into().unwrap_or([0; 2]));
        Iocb {
            data: u64_at(at::DATA),
            rw_flags: u32_at(at::RW_FLAGS),
            opcode: u16_at(at::OPCODE),
            reqprio: u16_at(at::REQPRIO),
            fd: u32_at(at::FILDES) as i32,
            buf: u64_at(at::BUF),
            nbytes: u64_at(at::NBYTES),
            offset: u64_at(at::OFFSET) as i64,
            reserved2: u64_at(at::RESERVED2),
            flags: u32_at(at::FLAGS),
            resfd: u32_at(at::RESFD),
        }
    }

    /// The eventfd to signal, or -1.
    pub(crate) fn resfd(&self) -> i32 {
        if self.flags & FLAG_RESFD != 0 {
            self.resfd as i32
        } else {
            -1
        }
    }
}

/// The checks before a request slot is taken (`io_submit_one`): the
/// reserved field, and the overflow checks. On a native 32-bit kernel a
/// buffer address or length wider than a pointer is refused; a 64-bit
/// kernel running a 32-bit program checks with 64-bit types.
pub(crate) fn precheck(cb: &Iocb, kernel_is_32_bit: bool) -> Result<(), Errno> {
    if cb.reserved2 != 0 {
        return Err(Errno(libc::EINVAL));
    }
    let overflow = if kernel_is_32_bit {
        cb.buf > u64::from(u32::MAX) || cb.nbytes > u64::from(u32::MAX) || (cb.nbytes as u32 as i32) < 0
    } else {
        (cb.nbytes as i64) < 0
    };
    if overflow {
        return Err(Errno(libc::EINVAL));
    }
    Ok(())
}

/// What a descriptor's file is, as `fstat` says.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct FileFacts {
    /// Whether the descriptor is open.
    pub(crate) open: bool,
    /// `S_IFMT` bits; 0 for an anonymous inode.
    pub(crate) kind: u32,
    pub(crate) size: i64,
    /// No block allocated (all hole).
    pub(crate) sparse: bool,
}

/// What the checks ask of the world: descriptors (cached per `io_submit`
/// call by the real one) and the program's memory (through the kernel's
/// checked copies).
pub(crate) trait Env {
    fn stat(&mut self, fd: i32) -> FileFacts;
    /// `F_GETFL`, or `Err(EBADF)`.
    fn flags(&mut self, fd: i32) -> Result<i32, Errno>;
    fn is_eventfd(&mut self, fd: i32) -> bool;
    /// Whether the file lives in memory (tmpfs), where O_DIRECT is a copy.
    fn in_memory(&mut self, fd: i32) -> bool;
    /// The ready mask of `fd` for `events` now (0: not ready).
    fn poll_now(&mut self, fd: i32, events: i16) -> i16;
    /// Whether the file has a poll method (regular files, directories and
    /// block devices do not; some character devices do not either).
    fn can_poll(&mut self, fd: i32, kind: u32) -> bool;
    /// Writes `aio_key` into the program's iocb: false when it cannot be written.
    fn write_key(&mut self, at: usize) -> bool;
    /// Copies `n` iovecs of the program's memory at `at` into a buffer the
    /// env keeps (the request's own copy, as the kernel copies them):
    /// `ENOMEM` without memory, `EFAULT` when they cannot be read.
    fn copy_iovecs(&mut self, at: usize, n: usize) -> Result<&[libc::iovec], Errno>;
    /// Whether the caller may use the real-time I/O class.
    fn privileged(&mut self) -> bool;
}

/// Where a request is carried out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Where {
    /// Inside `io_submit`, as the kernel does it there.
    Here,
    /// By the executor, after `io_submit` returns.
    Executor,
    /// A buffered read on io_uring: tried here without blocking
    /// (`RWF_NOWAIT`); one that would block goes to io_uring (see `submit`).
    HereIfCached,
}

/// What a checked request does.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Plan {
    Rw {
        write: bool,
        /// Vectored: `iovcnt` iovecs copied by [`Env::copy_iovecs`]; else
        /// the one buffer.
        vectored: bool,
        one: libc::iovec,
        iovcnt: usize,
        /// The offset, or -1 for a file without one (pipes, sockets).
        offset: i64,
        rw_flags: u32,
        prio: u16,
        /// Not O_DIRECT.
        buffered: bool,
        at: Where,
        /// The open mode was checked (not for a file in memory: the I/O
        /// answers EBADF, which `io_submit` must then give).
        mode_checked: bool,
    },
    Sync {
        data_only: bool,
    },
    Poll {
        events: i16,
        kind: u32,
        /// The mask ready now (the kernel completes the request inside
        /// `io_submit`), or 0: it waits.
        ready: i16,
    },
}

impl Plan {
    pub(crate) fn op(&self) -> Op {
        match *self {
            Plan::Rw { write: true, .. } => Op::Write,
            Plan::Rw { write: false, .. } => Op::Read,
            Plan::Sync { data_only: false } => Op::Fsync,
            Plan::Sync { data_only: true } => Op::Fdsync,
            Plan::Poll { .. } => Op::Poll,
        }
    }
}

/// The engine's view of the machine, for the checks.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// The highest user address plus one (`access_ok`).
    pub(crate) task_size: u64,
    /// A native 32-bit kernel (its overflow checks are 32-bit).
    pub(crate) kernel_32: bool,
    /// io_uring runs buffered I/O that would block (else it runs here, as
    /// kernel AIO runs it).
    pub(crate) async_buffered: bool,
}

fn is_seekable(kind: u32) -> bool {
    kind == libc::S_IFREG || kind == libc::S_IFBLK
}

/// The kernel's `__io_submit_one` after the request slot is taken: the
/// checks, in the kernel's order, and the plan.
pub(crate) fn check(cb: &Iocb, user_iocb: usize, env: &mut impl Env, lim: Limits) -> Result<Plan, Errno> {
    // The file (fget: EBADF, also for an O_PATH descriptor). Its open flags
    // cost a system call, which a read or write of a file in memory does
    // without: done here and now whatever the engine, the I/O itself answers
    // EBADF; only if another check fails first are the flags asked, to put
    // EBADF first as the kernel does.
    let st = env.stat(cb.fd);
    if !st.open {
        return Err(Errno(libc::EBADF));
    }
    let rw = matches!(cb.opcode, cmd::PREAD | cmd::PWRITE | cmd::PREADV | cmd::PWRITEV);
    let in_memory = rw && st.kind == libc::S_IFREG && env.in_memory(cb.fd);
    if !in_memory {
        opened(env, cb.fd)?;
    }
    match check_rest(cb, user_iocb, env, lim, st, in_memory) {
        Err(e) if in_memory && e != Errno(libc::EBADF) => opened(env, cb.fd).and(Err(e)),
        r => r,
    }
}

/// The descriptor's open flags; EBADF for an O_PATH one, which the kernel's
/// `fget` does not take.
fn opened(env: &mut impl Env, fd: i32) -> Result<i32, Errno> {
    let flags = env.flags(fd)?;
    if flags & libc::O_PATH != 0 {
        return Err(Errno(libc::EBADF));
    }
    Ok(flags)
}

fn check_rest(
    cb: &Iocb,
    user_iocb: usize,
    env: &mut impl Env,
    lim: Limits,
    st: FileFacts,
    in_memory: bool,
) -> Result<Plan, Errno> {
    if cb.flags & FLAG_RESFD != 0 {
        opened(env, cb.resfd as i32)?;
        if !env.is_eventfd(cb.resfd as i32) {
            return Err(Errno(libc::EINVAL));
        }
    }
    if !env.write_key(user_iocb + KEY_OFFSET) {
        return Err(Errno(libc::EFAULT));
    }
    let ftype = st.kind;
    let seekable = is_seekable(ftype);
    let (write, vectored) = match cb.opcode {
        cmd::PREAD => (false, false),
        cmd::PWRITE => (true, false),
        cmd::PREADV => (false, true),
        cmd::PWRITEV => (true, true),
        cmd::FSYNC | cmd::FDSYNC => {
            if cb.buf != 0 || cb.offset != 0 || cb.nbytes != 0 || cb.rw_flags != 0 {
                return Err(Errno(libc::EINVAL));
            }
            if !matches!(ftype, libc::S_IFREG | libc::S_IFDIR | libc::S_IFBLK) {
                return Err(Errno(libc::EINVAL)); // no fsync for pipes, sockets, devices, eventfds
            }
            return Ok(Plan::Sync {
                data_only: cb.opcode == cmd::FDSYNC,
            });
        }
        cmd::POLL => {
            if u64::from(cb.buf as u16) != cb.buf {
                return Err(Errno(libc::EINVAL));
            }
            if cb.offset != 0 || cb.nbytes != 0 || cb.rw_flags != 0 {
                return Err(Errno(libc::EINVAL));
            }
            let events = cb.buf as i16 | libc::POLLERR | libc::POLLHUP;
            let ready = env.poll_now(cb.fd, events);
            if ready == 0 && !env.can_poll(cb.fd, ftype) {
                // No poll method: never becomes ready for what it is not now.
                return Err(Errno(libc::EINVAL));
            }
            return Ok(Plan::Poll {
                events,
                kind: ftype,
                ready,
            });
        }
        _ => return Err(Errno(libc::EINVAL)),
    };
    // aio_prep_rw: priority, then the RWF flags.
    let mut prio = 0;
    if cb.flags & FLAG_IOPRIO != 0 {
        ioprio_check(cb.reqprio, env)?;
        prio = cb.reqprio;
    }
    if cb.rw_flags & !RWF_KNOWN != 0 {
        return Err(Errno(libc::EOPNOTSUPP));
    }
    // RWF_NOWAIT on a file that cannot promise it (no FMODE_NOWAIT): of the
    // files a program can name, directories.
    if cb.rw_flags & RWF_NOWAIT != 0 && ftype == libc::S_IFDIR {
        return Err(Errno(libc::EOPNOTSUPP));
    }
    // The open mode: EBADF (for a file in memory, asked only if a later
    // check fails: see `check`).
    let mode = |env: &mut _| -> Result<i32, Errno> {
        let flags = opened(env, cb.fd)?;
        let acc = flags & libc::O_ACCMODE;
        if (write && acc == libc::O_RDONLY) || (!write && acc == libc::O_WRONLY) {
            return Err(Errno(libc::EBADF));
        }
        Ok(flags)
    };
    let flags = if in_memory { None } else { Some(mode(env)?) };
    let refuse = |env: &mut _, e: i32| -> Errno {
        match (flags, mode(env)) {
            (None, Err(bad)) => bad,
            _ => Errno(e),
        }
    };
    if ftype == libc::S_IFDIR || (write && ftype == 0 && env.is_eventfd(cb.fd)) {
        return Err(Errno(libc::EINVAL)); // no read_iter/write_iter
    }
    // The buffers (aio_setup_rw), then the offset (rw_verify_area).
    let one = libc::iovec {
        iov_base: cb.buf as usize as *mut _,
        iov_len: cb.nbytes as usize,
    };
    let (count, iovcnt) = if vectored {
        if cb.nbytes > UIO_MAXIOV {
            return Err(refuse(env, libc::EINVAL));
        }
        let n = cb.nbytes as usize;
        let mut total: u64 = 0;
        if n > 0 {
            let bad = match env.copy_iovecs(cb.buf as usize, n) {
                Err(e) => Some(e.0),
                Ok(v) => v.iter().find_map(|e| {
                    if (e.iov_len as isize) < 0 {
                        return Some(libc::EINVAL);
                    }
                    total = total.saturating_add(e.iov_len as u64);
                    if total > isize::MAX as u64 {
                        return Some(libc::EINVAL);
                    }
                    ((e.iov_base as u64).saturating_add(e.iov_len as u64) > lim.task_size)
                        .then_some(libc::EFAULT)
                }),
            };
            if let Some(e) = bad {
                return Err(refuse(env, e));
            }
        }
        (total, n)
    } else {
        if cb.buf.saturating_add(cb.nbytes) > lim.task_size {
            return Err(refuse(env, libc::EFAULT));
        }
        (cb.nbytes, 1)
    };
    // rw_verify_area: the offset, and the end of the transfer, not negative.
    if seekable && (cb.offset < 0 || cb.offset.checked_add(count.min(MAX_RW_COUNT) as i64).is_none()) {
        return Err(refuse(env, libc::EINVAL));
    }
    // A stream (pipe, socket) has no position; every other file, character
    // devices included, is given the request's offset.
    let offset = if matches!(ftype, libc::S_IFIFO | libc::S_IFSOCK) || ftype == 0 {
        -1
    } else {
        cb.offset
    };
    let buffered = flags.unwrap_or(0) & libc::O_DIRECT == 0;
    // The kernel also finishes inside io_submit an O_DIRECT read that needs
    // no device I/O: past the end of the file, or of a file with no block
    // allocated (all hole).
    let past_end = !write && ftype == libc::S_IFREG && (offset >= st.size || st.sparse);
    let at = if !seekable || in_memory || past_end || cb.rw_flags & RWF_NOWAIT != 0 {
        // Kernel AIO runs these inside io_submit: files that are not
        // seekable (pipes, sockets, character devices: their I/O may wait
        // for ever, which io_submit then does too), copies in memory, reads
        // past the end, and requests that must not block.
        Where::Here
    } else if !buffered {
        Where::Executor
    } else if lim.async_buffered && !write {
        // A buffered write goes to the page cache, here, as kernel AIO
        // does it (io_uring would hand most to a worker thread of its own).
        Where::HereIfCached
    } else {
        Where::Here
    };
    Ok(Plan::Rw {
        write,
        vectored,
        one,
        iovcnt,
        offset,
        rw_flags: cb.rw_flags,
        prio,
        buffered,
        at,
        mode_checked: flags.is_some(),
    })
}

/// The kernel's `ioprio_check_cap`: a valid class and level; the real-time
/// class needs privilege.
fn ioprio_check(prio: u16, env: &mut impl Env) -> Result<(), Errno> {
    let class = prio >> 13;
    let level = prio & 0x1fff;
    match class {
        0 => Ok(()),
        1 => {
            if !env.privileged() {
                return Err(Errno(libc::EPERM));
            }
            if level >= 8 {
                Err(Errno(libc::EINVAL))
            } else {
                Ok(())
            }
        }
        2 if level < 8 => Ok(()),
        3 => Ok(()),
        _ => Err(Errno(libc::EINVAL)),
    }
}

/// The highest user address plus one that the kernel's `access_ok` lets a
/// buffer reach, for this architecture (`u64::MAX` where it checks none at
/// submission, or where we do not know it: the I/O itself then answers
/// `EFAULT`). `kernel_64`: a 32-bit program on a 64-bit kernel.
pub(crate) fn task_size(kernel_64: bool) -> u64 {
    if cfg!(target_pointer_width = "32") {
        // A 64-bit kernel checks a 32-bit process's buffers at submission
        // against its own 64-bit limit (`access_ok` is not the compat task
        // size), which no 32-bit address and length can pass: such a buffer
        // past the process's 4 GiB fails in the completion (-EFAULT), as on
        // i386 under x86_64 (tests/sh/i386.sh, ctests/errors.c). Native
        // 32-bit kernels (the usual 3G/1G split): 3 GiB.
        if kernel_64 {
            u64::MAX
        } else {
            0xc000_0000
        }
    } else if cfg!(target_arch = "x86_64") {
        0x7fff_ffff_f000 // 47-bit addresses (4-level page tables)
    } else if cfg!(target_arch = "aarch64") {
        1 << 48 // VA_BITS = 48, Debian's arm64 kernels
    } else if cfg!(target_arch = "powerpc64") {
        1 << 52 // TASK_SIZE_USER64: 4 PiB
    } else {
        u64::MAX // s390x (no check at submission), riscv64 and others
    }
}

const _: () = assert!(size_of::<libc::iovec>() == 2 * size_of::<usize>());

/// The mask a poll that became ready later reports. The kernel completes it
/// from the wake-up, with the mask the file's waker passes, unfiltered (a
/// pipe's reader is woken with IN|RDNORM, a socket's with IN|PRI|RDNORM|
/// RDBAND, an eventfd's with IN); a hang-up or error wakes without one, and
/// then the file's poll mask filtered by the request is reported.
pub(crate) fn wake_mask(kind: u32, revents: i16, events: i16) -> i16 {
    use libc::{
        POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, POLLPRI, POLLRDBAND, POLLRDHUP, POLLRDNORM, POLLWRBAND,
        POLLWRNORM,
    };
    if revents & (POLLHUP | POLLERR | POLLNVAL | POLLRDHUP) != 0 {
        return revents & events;
    }
    let mut key = 0;
    if revents & (POLLIN | POLLRDNORM | POLLPRI | POLLRDBAND) != 0 {
        key |= match kind {
            libc::S_IFIFO => POLLIN | POLLRDNORM,
            libc::S_IFSOCK => POLLIN | POLLPRI | POLLRDNORM | POLLRDBAND,
            _ => POLLIN,
        };
    }
    if revents & (POLLOUT | POLLWRNORM | POLLWRBAND) != 0 {
        key |= match kind {
            libc::S_IFIFO => POLLOUT | POLLWRNORM,
            libc::S_IFSOCK => POLLOUT | POLLWRNORM | POLLWRBAND,
            _ => POLLOUT,
        };
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    /// A world of descriptors for the checks: 3 a regular file opened
    /// O_RDWR, 4 one opened O_RDONLY|O_DIRECT, 5 a pipe, 6 an eventfd, 7 an
    /// O_PATH descriptor, 8 /dev/null (no poll method), 9 a file in memory,
    /// 10 a directory opened O_RDONLY; everything else closed. Memory at 0x1000.. is readable.
    #[derive(Default)]
    struct Fake {
        asked_flags: Vec<i32>,
        iov: Vec<libc::iovec>,
        key_written: bool,
        root: bool,
    }

    impl Env for Fake {
        fn stat(&mut self, fd: i32) -> FileFacts {
            let kind = match fd {
                3 | 4 | 7 | 9 => libc::S_IFREG,
                5 => libc::S_IFIFO,
                6 => 0,
                8 => libc::S_IFCHR,
                10 => libc::S_IFDIR,
                _ => return FileFacts::default(),
            };
            FileFacts {
                open: true,
                kind,
                size: 65536,
                sparse: false,
            }
        }
        fn flags(&mut self, fd: i32) -> Result<i32, Errno> {
            self.asked_flags.push(fd);
            match fd {
                3 | 5 | 6 | 8 | 9 => Ok(libc::O_RDWR),
                4 => Ok(libc::O_RDONLY | libc::O_DIRECT),
                7 => Ok(libc::O_PATH),
                10 => Ok(libc::O_RDONLY | libc::O_DIRECTORY),
                _ => Err(Errno(libc::EBADF)),
            }
        }
        fn is_eventfd(&mut self, fd: i32) -> bool {
            fd == 6
        }
        fn in_memory(&mut self, fd: i32) -> bool {
            fd == 9
        }
        fn poll_now(&mut self, fd: i32, events: i16) -> i16 {
            if fd == 8 {
                events & (libc::POLLIN | libc::POLLOUT)
            } else {
                0
            }
        }
        fn can_poll(&mut self, fd: i32, _kind: u32) -> bool {
            fd == 5 || fd == 6
        }
        fn write_key(&mut self, at: usize) -> bool {
            self.key_written = at >= 0x1000;
            self.key_written
        }
        fn copy_iovecs(&mut self, at: usize, n: usize) -> Result<&[libc::iovec], Errno> {
            if at < 0x1000 {
                return Err(Errno(libc::EFAULT));
            }
            self.iov = (0..n)
                .map(|i| libc::iovec {
                    iov_base: (0x10000 + i * 4096) as *mut _,
                    iov_len: if at == 0x2000 { usize::MAX } else { 512 },
                })
                .collect();
            Ok(&self.iov)
        }
        fn privileged(&mut self) -> bool {
            self.root
        }
    }

    const LIM: Limits = Limits {
        task_size: 0x7fff_ffff_f000,
        kernel_32: false,
        async_buffered: false,
    };

    fn read(fd: i32, buf: u64, n: u64, off: i64) -> Iocb {
        Iocb {
            opcode: cmd::PREAD,
            fd,
            buf,
            nbytes: n,
            offset: off,
            ..Iocb::default()
        }
    }

    fn err(cb: &Iocb) -> i32 {
        check(cb, 0x1000, &mut Fake::default(), LIM)
            .err()
            .map_or(0, |e| e.0)
    }

    #[test]
    fn the_descriptor_comes_first() {
        let mut cb = read(42, 0x1_0000, 512, 0);
        cb.flags = FLAG_RESFD;
        cb.resfd = 99; // a bad eventfd too: EBADF of the file wins
        assert_eq!(err(&cb), libc::EBADF);
        assert_eq!(
            err(&read(7, 0x1_0000, 512, 0)),
            libc::EBADF,
            "O_PATH is not a file fget takes"
        );
    }

    #[test]
    fn then_the_eventfd_then_the_key() {
        let mut cb = read(3, 0x1_0000, 512, 0);
        cb.flags = FLAG_RESFD;
        cb.resfd = 5; // a pipe: not an eventfd
        assert_eq!(err(&cb), libc::EINVAL);
        cb.resfd = 6;
        let mut env = Fake::default();
        assert!(check(&cb, 0x1000, &mut env, LIM).is_ok());
        assert!(env.key_written);
        assert_eq!(
            check(&cb, 0x10, &mut Fake::default(), LIM).err(),
            Some(Errno(libc::EFAULT)),
            "aio_key not writable"
        );
    }

    #[test]
    fn reads_and_writes_follow_aio_prep_rw() {
        // Unknown opcode, unknown RWF flag, priority classes.
        let mut cb = read(3, 0x1_0000, 512, 0);
        cb.opcode = 6;
        assert_eq!(err(&cb), libc::EINVAL);
        let mut cb = read(3, 0x1_0000, 512, 0);
        cb.rw_flags = 0x8000_0000;
        assert_eq!(err(&cb), libc::EOPNOTSUPP);
        cb.rw_flags = 0;
        cb.flags = FLAG_IOPRIO;
        cb.reqprio = 1 << 13; // real time
        assert_eq!(err(&cb), libc::EPERM);
        let mut root = Fake {
            root: true,
            ..Fake::default()
        };
        assert!(check(&cb, 0x1000, &mut root, LIM).is_ok());
        cb.reqprio = (2 << 13) | 8; // best effort, level out of range
        assert_eq!(err(&cb), libc::EINVAL);
        // The open mode.
        let mut w = read(4, 0x1_0000, 512, 0);
        w.opcode = cmd::PWRITE;
        assert_eq!(err(&w), libc::EBADF, "a write on an O_RDONLY descriptor");
        // A directory: RWF_NOWAIT refused before the open mode, then no
        // read_iter.
        let mut d = read(10, 0x1_0000, 512, 0);
        assert_eq!(err(&d), libc::EINVAL);
        d.rw_flags = RWF_NOWAIT;
        assert_eq!(err(&d), libc::EOPNOTSUPP);
        d.opcode = cmd::PWRITE;
        assert_eq!(err(&d), libc::EOPNOTSUPP, "before the EBADF of the mode");
        d.rw_flags = 0;
        assert_eq!(err(&d), libc::EBADF);
    }

    #[test]
    fn buffers_reach_no_further_than_user_space() {
        assert_eq!(err(&read(3, 0x7fff_ffff_e000, 0x2000, 0)), libc::EFAULT);
        assert_eq!(err(&read(3, 0x7fff_ffff_e000, 0x1000, 0)), 0);
        // Vectors: count, readable array, lengths.
        let mut v = read(3, 0x1000, 1025, 0);
        v.opcode = cmd::PREADV;
        assert_eq!(err(&v), libc::EINVAL, "more than UIO_MAXIOV");
        v.nbytes = 2;
        v.buf = 0x10;
        assert_eq!(err(&v), libc::EFAULT, "an unreadable iovec array");
        v.buf = 0x2000;
        assert_eq!(err(&v), libc::EINVAL, "a negative length");
    }

    #[test]
    fn the_offset_is_checked_for_seekable_files_only() {
        assert_eq!(err(&read(3, 0x1_0000, 512, -1)), libc::EINVAL);
        assert_eq!(err(&read(3, 0x1_0000, 512, i64::MAX)), libc::EINVAL);
        let plan = check(&read(5, 0x1_0000, 512, -7), 0x1000, &mut Fake::default(), LIM);
        assert!(
            matches!(
                plan,
                Ok(Plan::Rw {
                    offset: -1,
                    at: Where::Here,
                    ..
                })
            ),
            "{plan:?}"
        );
    }

    #[test]
    fn where_a_request_runs() {
        let at = |fd, lim| match check(&read(fd, 0x1_0000, 512, 0), 0x1000, &mut Fake::default(), lim) {
            Ok(Plan::Rw { at, .. }) => at,
            other => panic!("{other:?}"),
        };
        let uring = Limits {
            async_buffered: true,
            ..LIM
        };
        assert_eq!(at(4, LIM), Where::Executor, "O_DIRECT");
        assert_eq!(at(3, LIM), Where::Here, "buffered, thread engine: as kernel AIO");
        assert_eq!(at(3, uring), Where::HereIfCached, "buffered, io_uring");
        assert_eq!(at(9, uring), Where::Here, "a file in memory");
        assert_eq!(at(5, uring), Where::Here, "a pipe");
    }

    #[test]
    fn a_file_in_memory_answers_ebadf_before_other_errors() {
        // Its flags are asked only when another check fails, and then its
        // EBADF (none here: O_RDWR) or the other error comes out.
        let mut env = Fake::default();
        assert!(check(&read(9, 0x1_0000, 512, 0), 0x1000, &mut env, LIM).is_ok());
        assert!(env.asked_flags.is_empty(), "no F_GETFL for a file in memory");
        assert_eq!(err(&read(9, 0x1_0000, 512, -1)), libc::EINVAL);
    }

    #[test]
    fn polls_and_syncs() {
        let poll = |fd, events: u64| Iocb {
            opcode: cmd::POLL,
            fd,
            buf: events,
            ..Iocb::default()
        };
        assert_eq!(err(&poll(5, 0x1_0000)), libc::EINVAL, "events wider than 16 bits");
        assert!(matches!(
            check(&poll(8, 1), 0x1000, &mut Fake::default(), LIM),
            Ok(Plan::Poll { ready: 1, .. })
        ));
        assert_eq!(err(&poll(8, 2)), libc::EINVAL, "no poll method, not ready");
        assert!(matches!(
            check(&poll(5, 1), 0x1000, &mut Fake::default(), LIM),
            Ok(Plan::Poll { ready: 0, .. })
        ));
        let sync = |fd| Iocb {
            opcode: cmd::FDSYNC,
            fd,
            ..Iocb::default()
        };
        assert!(matches!(
            check(&sync(3), 0x1000, &mut Fake::default(), LIM),
            Ok(Plan::Sync { data_only: true })
        ));
        assert_eq!(err(&sync(5)), libc::EINVAL, "no fsync for a pipe");
    }

    #[test]
    fn overflow_checks_follow_the_kernel_width() {
        let mut cb = read(3, 0x1_0000, 1 << 31, 0);
        assert_eq!(precheck(&cb, false), Ok(()));
        assert_eq!(
            precheck(&cb, true),
            Err(Errno(libc::EINVAL)),
            "negative as a 32-bit ssize_t"
        );
        cb.nbytes = 1 << 63;
        assert_eq!(precheck(&cb, false), Err(Errno(libc::EINVAL)));
        cb.nbytes = 1;
        cb.buf = 1 << 32;
        assert_eq!(
            precheck(&cb, true),
            Err(Errno(libc::EINVAL)),
            "a buffer wider than a 32-bit pointer"
        );
        cb.buf = 0;
        cb.reserved2 = 1;
        assert_eq!(precheck(&cb, false), Err(Errno(libc::EINVAL)));
    }

    #[test]
    fn a_poll_reports_the_wakers_mask() {
        let (i, o) = (libc::POLLIN, libc::POLLOUT);
        assert_eq!(wake_mask(libc::S_IFIFO, i, i | o), i | libc::POLLRDNORM);
        assert_eq!(wake_mask(0, i, i), i, "an eventfd wakes with IN only");
        assert_eq!(
            wake_mask(libc::S_IFSOCK, libc::POLLHUP | i, i),
            i,
            "a hang-up: the mask filtered"
        );
    }
}
