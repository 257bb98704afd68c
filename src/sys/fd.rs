//! Descriptor calls of the user-space engines: identity, the channels that
//! carry files between descriptor tables (`SCM_RIGHTS`), private tables,
//! polling and the I/O itself.
//!
//! Each returns `Err(Errno)` with the kernel's error. They go through libc,
//! which writes `errno`: the entry points that reach them keep the caller's
//! `errno` (`KeepErrno`), and the engines' own threads have no caller.

use super::{errno, Errno};
use core::mem::{size_of, MaybeUninit};
use core::ptr;

fn check(r: i64) -> Result<i64, Errno> {
    if r < 0 {
        Err(Errno(errno()))
    } else {
        Ok(r)
    }
}

/// Which file a descriptor names, as far as `fstat` can tell: device and
/// inode. Unique for pipes, sockets and files; shared by every eventfd
/// (one anonymous inode), which is why the engines never identify those.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub(crate) struct FileId {
    pub(crate) dev: u64,
    pub(crate) ino: u64,
}

/// What `fstat` says of a descriptor.
#[derive(Clone, Copy)]
pub(crate) struct Stat {
    pub(crate) id: FileId,
    /// The type bits (`S_IFMT`); 0 for an anonymous inode (eventfd, ...).
    pub(crate) kind: u32,
    pub(crate) size: i64,
    pub(crate) blocks: i64,
}

pub(crate) fn fstat(fd: i32) -> Result<Stat, Errno> {
    // fstat64: on 32-bit targets plain fstat fails with EOVERFLOW for a
    // file of 2 GiB or more (and then every request on it looked past its
    // end); on 64-bit targets the two are the same call.
    let mut st = MaybeUninit::<libc::stat64>::zeroed();
    // SAFETY: fstat64 writes into our buffer.
    check(i64::from(unsafe { libc::fstat64(fd, st.as_mut_ptr()) }))?;
    // SAFETY: zero-initialised, then filled by fstat.
    let st = unsafe { st.assume_init() };
    #[allow(clippy::useless_conversion, clippy::unnecessary_cast)] // widths differ per target
    Ok(Stat {
        id: FileId {
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
        },
        kind: st.st_mode & libc::S_IFMT,
        size: st.st_size as i64,
        blocks: st.st_blocks as i64,
    })
}

/// `F_GETFL`.
pub(crate) fn flags(fd: i32) -> Result<i32, Errno> {
    // SAFETY: F_GETFL has no memory argument.
    check(i64::from(unsafe { libc::fcntl(fd, libc::F_GETFL) })).map(|f| f as i32)
}

/// `fstatfs`'s file-system type.
pub(crate) fn fs_type(fd: i32) -> Result<i64, Errno> {
    let mut st = MaybeUninit::<libc::statfs64>::zeroed();
    // SAFETY: fstatfs64 writes into our buffer (64-bit counts on 32-bit targets).
    check(i64::from(unsafe { libc::fstatfs64(fd, st.as_mut_ptr()) }))?;
    // SAFETY: zero-initialised, then filled by fstatfs.
    let st = unsafe { st.assume_init() };
    #[allow(clippy::unnecessary_cast)] // f_type is i64 here, narrower elsewhere
    Ok(st.f_type as i64)
}

/// Closes one of the library's own descriptors (never a program's: see the
/// engines' rules).
pub(crate) fn close(fd: i32) {
    // SAFETY: no memory argument; the caller owns `fd`. The raw call: not
    // a cancellation point (see `rw`).
    unsafe { libc::syscall(libc::SYS_close, fd) };
}

/// `write` of our buffer.
pub(crate) fn write(fd: i32, buf: &[u8]) -> Result<usize, Errno> {
    // SAFETY: the kernel reads buf.len() bytes of ours.
    check(unsafe { libc::syscall(libc::SYS_write, fd, buf.as_ptr(), buf.len()) } as i64).map(|n| n as usize)
}

/// Adds one to an eventfd (the kernel's `eventfd_signal`).
pub(crate) fn eventfd_signal(fd: i32) -> Result<(), Errno> {
    write(fd, &1u64.to_ne_bytes()).map(drop)
}

/// A connected pair of `SOCK_SEQPACKET` Unix sockets, close-on-exec: message
/// boundaries are kept and each message may carry descriptors.
pub(crate) fn seqpacket_pair() -> Result<(i32, i32), Errno> {
    let mut fds = [-1i32; 2];
    // SAFETY: socketpair writes two ints into our array.
    check(i64::from(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    }))?;
    Ok((fds[0], fds[1]))
}

/// Most descriptors one message carries (the kernel's `SCM_MAX_FD` is 253).
pub(crate) const MAX_FDS: usize = 128;

/// Room for a control message of [`MAX_FDS`] descriptors, 8-aligned.
#[repr(C, align(8))]
struct Control([u8; 16 + 4 * MAX_FDS]);

/// Sends one message (`payload`, and `fds` as `SCM_RIGHTS`): the kernel
/// takes a reference to each file now, whatever the numbers name
/// afterwards. `wait`: wait for room up to the socket's send timeout (a
/// signal restarts the wait once, so at most twice that); else
/// `Err(EAGAIN)` when there is none.
pub(crate) fn send_with_fds(sock: i32, payload: &[u8], fds: &[i32], wait: bool) -> Result<(), Errno> {
    if fds.len() > MAX_FDS {
        return Err(Errno(libc::EINVAL));
    }
    let mut iov = libc::iovec {
        iov_base: payload.as_ptr() as *mut _,
        iov_len: payload.len(),
    };
    let mut control = Control([0; 16 + 4 * MAX_FDS]);
    // SAFETY: msghdr is plain data, valid all-zero.
    let mut msg: libc::msghdr = unsafe { core::mem::zeroed() };
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    if !fds.is_empty() {
        let bytes = core::mem::size_of_val(fds);
        // SAFETY: CMSG_SPACE only computes a size.
        let space = unsafe { libc::CMSG_SPACE(bytes as u32) } as usize;
        msg.msg_control = control.0.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        // SAFETY: msg_control points at our buffer, which holds `space` bytes.
        let c = unsafe { libc::CMSG_FIRSTHDR(&raw const msg) };
        // SAFETY: `c` is the first header of our buffer (not null: space > 0).
        let h = unsafe { &mut *c };
        h.cmsg_level = libc::SOL_SOCKET;
        h.cmsg_type = libc::SCM_RIGHTS;
        // SAFETY: CMSG_LEN only computes a size.
        h.cmsg_len = unsafe { libc::CMSG_LEN(bytes as u32) } as _;
        // SAFETY: the data part of our header has room for `bytes` bytes.
        let data = unsafe { libc::CMSG_DATA(c) };
        // SAFETY: copies our descriptor numbers into that room.
        unsafe { ptr::copy_nonoverlapping(fds.as_ptr().cast::<u8>(), data, bytes) };
    }
    let flags = libc::MSG_NOSIGNAL | if wait { 0 } else { libc::MSG_DONTWAIT };
    // A signal restarts the wait with the whole timeout again: one more try
    // at most, so that the wait stays bounded however often signals come.
    let mut tries = 0;
    let n = loop {
        // SAFETY: every pointer in `msg` is to our buffers, alive for the call.
        // (The raw call: not a cancellation point, see `rw`.)
        let r = unsafe { libc::syscall(libc::SYS_sendmsg, sock, &raw const msg, flags) };
        match check(r as i64) {
            Err(Errno(libc::EINTR)) if tries == 0 => tries += 1,
            Err(Errno(libc::EINTR)) => return Err(Errno(libc::EAGAIN)),
            r => break r?,
        }
    };
    if n as usize != payload.len() {
        return Err(Errno(libc::EIO)); // a seqpacket message goes whole or not at all
    }
    Ok(())
}

/// One message of a batch for [`send_batch`]: a small payload and up to two
/// descriptors.
#[derive(Clone, Copy)]
pub(crate) struct Small {
    pub(crate) payload: [u8; 16],
    pub(crate) fds: [i32; 2],
    pub(crate) nfds: usize,
}

/// Room for a control message of two descriptors, 8-aligned.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
struct Control2([u8; 24]);

/// Sends each of `msgs` as a message of its own (one `sendmmsg`), without
/// blocking: how many went (the first ones), or the error when none did.
pub(crate) fn send_batch(sock: i32, msgs: &[Small]) -> Result<usize, Errno> {
    const MAX: usize = 64;
    let n = msgs.len().min(MAX);
    // SAFETY: iovec and mmsghdr are plain data, valid all-zero.
    let mut iov: [libc::iovec; MAX] = unsafe { core::mem::zeroed() };
    let mut ctl = [Control2([0; 24]); MAX];
    // SAFETY: as above.
    let mut hdrs: [libc::mmsghdr; MAX] = unsafe { core::mem::zeroed() };
    for i in 0..n {
        let m = &msgs[i];
        iov[i] = libc::iovec {
            iov_base: m.payload.as_ptr() as *mut _,
            iov_len: m.payload.len(),
        };
        let h = &mut hdrs[i].msg_hdr;
        h.msg_iov = &raw mut iov[i];
        h.msg_iovlen = 1;
        if m.nfds > 0 {
            let bytes = m.nfds.min(2) * size_of::<i32>();
            // SAFETY: CMSG_SPACE only computes a size.
            let space = unsafe { libc::CMSG_SPACE(bytes as u32) } as usize;
            h.msg_control = ctl[i].0.as_mut_ptr().cast();
            h.msg_controllen = space as _;
            // SAFETY: msg_control points at our buffer of `space` bytes.
            let c = unsafe { libc::CMSG_FIRSTHDR(h) };
            // SAFETY: the first header of our buffer (not null: space > 0).
            let ch = unsafe { &mut *c };
            ch.cmsg_level = libc::SOL_SOCKET;
            ch.cmsg_type = libc::SCM_RIGHTS;
            // SAFETY: CMSG_LEN only computes a size.
            ch.cmsg_len = unsafe { libc::CMSG_LEN(bytes as u32) } as _;
            // SAFETY: the data part of our header has room for `bytes` bytes.
            let data = unsafe { libc::CMSG_DATA(c) };
            // SAFETY: copies our descriptor numbers into that room.
            unsafe { ptr::copy_nonoverlapping(m.fds.as_ptr().cast::<u8>(), data, bytes) };
        }
    }
    // SAFETY: every pointer in `hdrs` is to our buffers, alive for the call.
    // The raw call, not libc's sendmmsg: that one is a cancellation point,
    // and a thread cancelled in io_submit must leave no request half handed
    // over (nothing of the library's may unwind: see thread_exit.c).
    let r = unsafe {
        libc::syscall(
            libc::SYS_sendmmsg,
            sock,
            hdrs.as_mut_ptr(),
            n as libc::c_uint,
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    #[allow(clippy::unnecessary_cast)] // c_long is i32 on 32-bit targets
    check(r as i64).map(|k| k as usize)
}

/// One received message: its payload length, and the descriptors it
/// carried (now in this thread's table).
pub(crate) struct Received {
    pub(crate) len: usize,
    pub(crate) fds: [i32; MAX_FDS],
    pub(crate) nfds: usize,
}

/// Receives one message into `payload`; `wait`: block until one comes (or
/// the socket's receive timeout). `Err(EAGAIN)` when none; `Ok(len 0)` at
/// the end of the stream (every sender gone).
pub(crate) fn recv_with_fds(sock: i32, payload: &mut [u8], wait: bool) -> Result<Received, Errno> {
    let mut iov = libc::iovec {
        iov_base: payload.as_mut_ptr().cast(),
        iov_len: payload.len(),
    };
    let mut control = Control([0; 16 + 4 * MAX_FDS]);
    // SAFETY: msghdr is plain data, valid all-zero.
    let mut msg: libc::msghdr = unsafe { core::mem::zeroed() };
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.0.as_mut_ptr().cast();
    msg.msg_controllen = control.0.len() as _;
    let flags = libc::MSG_CMSG_CLOEXEC | if wait { 0 } else { libc::MSG_DONTWAIT };
    // SAFETY: every pointer in `msg` is to our buffers, alive for the call.
    // The raw call: the descriptors it brings in belong to this thread's
    // own table, which tools that model one table per process (TSan's
    // interceptors) must not mistake for the program's.
    let r = unsafe { libc::syscall(libc::SYS_recvmsg, sock, &raw mut msg, flags) };
    #[allow(clippy::unnecessary_cast)] // c_long is i32 on 32-bit targets
    let n = check(r as i64)?;
    let mut out = Received {
        len: n as usize,
        fds: [-1; MAX_FDS],
        nfds: 0,
    };
    // SAFETY: msg describes our control buffer, as the kernel filled it.
    let mut c = unsafe { libc::CMSG_FIRSTHDR(&raw const msg) };
    while !c.is_null() {
        // SAFETY: a header inside our control buffer (CMSG_FIRSTHDR/NXTHDR check bounds).
        let h = unsafe { &*c };
        if h.cmsg_level == libc::SOL_SOCKET && h.cmsg_type == libc::SCM_RIGHTS {
            // SAFETY: CMSG_LEN only computes a size.
            let head = unsafe { libc::CMSG_LEN(0) } as usize;
            let k = (h.cmsg_len as usize).saturating_sub(head) / size_of::<i32>();
            // SAFETY: the data part of a header the kernel wrote.
            let data = unsafe { libc::CMSG_DATA(c) };
            for i in 0..k {
                // SAFETY: descriptor i of the `k` the kernel put there (unaligned read).
                let fd = unsafe { data.wrapping_add(i * 4).cast::<i32>().read_unaligned() };
                if out.nfds < MAX_FDS {
                    out.fds[out.nfds] = fd;
                    out.nfds += 1;
                } else {
                    close(fd);
                }
            }
        }
        // SAFETY: the next header of our buffer, or null.
        c = unsafe { libc::CMSG_NXTHDR(&raw const msg, c) };
    }
    Ok(out)
}

/// The socket's receive (`SO_RCVTIMEO`) or send (`SO_SNDTIMEO`) timeout,
/// shared by every descriptor of it.
pub(crate) fn set_timeout(sock: i32, send: bool, ns: u64) -> Result<(), Errno> {
    let t = libc::timeval {
        tv_sec: (ns / 1_000_000_000) as _,
        tv_usec: ((ns % 1_000_000_000) / 1000) as _,
    };
    // SAFETY: the kernel reads our timeval.
    let r = unsafe {
        libc::setsockopt(
            sock,
            libc::SOL_SOCKET,
            if send {
                libc::SO_SNDTIMEO
            } else {
                libc::SO_RCVTIMEO
            },
            (&raw const t).cast(),
            size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    check(i64::from(r)).map(drop)
}

/// This thread leaves the process's descriptor table for an empty one of
/// its own (`close_range(0, ~0, CLOSE_RANGE_UNSHARE)`, Linux 5.9): nothing
/// of the program's is copied, referenced or closed.
pub(crate) fn unshare_empty_table() -> Result<(), Errno> {
    const CLOSE_RANGE_UNSHARE: u32 = 1 << 1;
    // SAFETY: no memory argument; only this thread's table changes.
    let r = unsafe { libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, CLOSE_RANGE_UNSHARE) };
    check(r as i64).map(drop)
}

/// This thread takes a copy of the process's descriptor table
/// (`unshare(CLONE_FILES)`).
pub(crate) fn unshare_table_copy() -> Result<(), Errno> {
    // SAFETY: no memory argument; only this thread's table changes.
    check(i64::from(unsafe { libc::unshare(libc::CLONE_FILES) })).map(drop)
}

/// Closes `first..=last` in this thread's table (`close_range`).
pub(crate) fn close_range(first: u32, last: u32) -> Result<(), Errno> {
    // SAFETY: no memory argument.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) };
    check(r as i64).map(drop)
}

/// A pidfd for this process (`pidfd_open`, Linux 5.3).
pub(crate) fn pidfd_self() -> Result<i32, Errno> {
    // SAFETY: getpid has no arguments.
    let pid = unsafe { libc::getpid() };
    // SAFETY: no memory argument.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0u32) };
    check(r as i64).map(|fd| fd as i32)
}

/// A descriptor, in this thread's table, for the file that `fd` names in
/// the table of the process `pidfd` refers to (`pidfd_getfd`, Linux 5.6).
pub(crate) fn pidfd_getfd(pidfd: i32, fd: i32) -> Result<i32, Errno> {
    // SAFETY: no memory argument.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd, fd, 0u32) };
    check(r as i64).map(|fd| fd as i32)
}

/// Whether the file `fd` names has a poll method: epoll takes only such
/// files (`EPERM` otherwise). A scratch epoll instance of ours, closed at once.
pub(crate) fn has_poll_method(fd: i32) -> bool {
    // SAFETY: no memory argument.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if ep < 0 {
        return true; // cannot tell: as if it had one
    }
    let mut ev = libc::epoll_event { events: 0, u64: 0 };
    // SAFETY: our epoll instance and event.
    let r = unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev) };
    let refused = r < 0 && errno() == libc::EPERM;
    close(ep);
    !refused
}

/// `ppoll` on our array, for at most `ns` (None: no limit), with `sigmask`
/// (null: the thread's own) in force meanwhile: how many are ready.
pub(crate) fn ppoll(
    fds: &mut [libc::pollfd],
    ns: Option<u64>,
    sigmask: *const libc::sigset_t,
) -> Result<usize, Errno> {
    let ts = ns.map(|ns| libc::timespec {
        tv_sec: (ns / 1_000_000_000) as _,
        tv_nsec: (ns % 1_000_000_000) as _,
    });
    let tsp = ts.as_ref().map_or(ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: our pollfd array and timespec; the mask is null or the
    // caller's, checked readable (as the kernel's io_pgetevents reads it),
    // of the kernel's 8 bytes. The raw call: libc's ppoll is a cancellation
    // point, and io_submit polls with it (a zero-timeout look).
    let r = unsafe {
        libc::syscall(
            libc::SYS_ppoll,
            fds.as_mut_ptr(),
            fds.len() as libc::nfds_t,
            tsp,
            sigmask,
            8usize,
        )
    };
    #[allow(clippy::unnecessary_cast)] // c_long is i32 on 32-bit targets
    check(r as i64).map(|n| n as usize)
}

/// `preadv2`/`pwritev2` at `offset` (-1: the file's own position) with
/// `RWF_*` flags: the count or `-errno`, as the kernel puts it in `res`.
///
/// # Safety
/// `iov` points at `cnt` iovecs, ours or the program's as checked the
/// kernel's way; the buffers they name are the program's, which the kernel
/// accesses through its checked copies (`EFAULT`).
pub(crate) unsafe fn rw(
    fd: i32,
    write: bool,
    iov: *const libc::iovec,
    cnt: i32,
    offset: i64,
    flags: i32,
) -> i64 {
    // Raw system calls, not libc's wrappers: those are pthread cancellation
    // points, and a program's thread cancelled inside io_submit (which is
    // none with kernel AIO) would leave the request half handed over. The
    // offset goes as the kernel's low and high halves (`pos_from_hilo`).
    let nr = if write {
        libc::SYS_pwritev2
    } else {
        libc::SYS_preadv2
    };
    let (lo, hi) = (offset as libc::c_long, ((offset as u64) >> 32) as libc::c_long);
    // SAFETY: the caller's promise for `iov`; the rest are numbers.
    let ret = unsafe { libc::syscall(nr, fd, iov, cnt, lo, hi, flags) };
    if ret < 0 {
        -i64::from(errno())
    } else {
        ret as i64
    }
}

/// `fsync` or `fdatasync`: 0 or `-errno`.
pub(crate) fn sync(fd: i32, data_only: bool) -> i64 {
    // The raw calls: not cancellation points (see `rw`).
    let nr = if data_only {
        libc::SYS_fdatasync
    } else {
        libc::SYS_fsync
    };
    // SAFETY: no memory argument.
    let r = unsafe { libc::syscall(nr, fd) };
    if r < 0 {
        -i64::from(errno())
    } else {
        0
    }
}

/// What `statx` tells of O_DIRECT on a file.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Dio {
    /// `STATX_DIOALIGN` (Linux 6.1): the buffer's alignment in memory and
    /// that of offsets and lengths; None where the kernel does not say.
    pub(crate) align: Option<(u32, u32)>,
    /// The device under the file (the device itself for a block device),
    /// as major and minor numbers.
    pub(crate) dev: (u32, u32),
}

/// `statx` of `fd` for its O_DIRECT alignment.
pub(crate) fn dio(fd: i32) -> Option<Dio> {
    let mut st = MaybeUninit::<libc::statx>::zeroed();
    // SAFETY: statx writes into our buffer; the empty path with
    // AT_EMPTY_PATH names `fd` itself.
    let r = unsafe {
        libc::statx(
            fd,
            c"".as_ptr(),
            // DONT_SYNC: what the client knows, no round trip to a
            // network or FUSE server (which may be this very process).
            libc::AT_EMPTY_PATH | libc::AT_STATX_DONT_SYNC,
            libc::STATX_TYPE | libc::STATX_DIOALIGN,
            st.as_mut_ptr(),
        )
    };
    if r != 0 {
        return None;
    }
    // SAFETY: zero-initialised, then filled by statx.
    let st = unsafe { st.assume_init() };
    let align = (st.stx_mask & libc::STATX_DIOALIGN != 0 && st.stx_dio_offset_align != 0)
        .then_some((st.stx_dio_mem_align, st.stx_dio_offset_align));
    let dev = if u32::from(st.stx_mode) & libc::S_IFMT == libc::S_IFBLK {
        (st.stx_rdev_major, st.stx_rdev_minor)
    } else {
        (st.stx_dev_major, st.stx_dev_minor)
    };
    Some(Dio { align, dev })
}
