//! io_uring's system calls: setup, enter, register, and the ring mappings.

use super::{syscall6, Errno};
use core::ffi::c_long;
use linux_raw_sys::io_uring::{
    io_uring_params, io_uring_register_op, io_uring_rsrc_update, IORING_ENTER_REGISTERED_RING,
};

fn check(r: c_long) -> Result<u32, Errno> {
    if r < 0 {
        Err(Errno(-r as i32))
    } else {
        Ok(r as u32)
    }
}

/// `io_uring_setup`: the new ring's descriptor.
pub(crate) fn setup(entries: u32, p: &mut io_uring_params) -> Result<i32, Errno> {
    // SAFETY: the kernel reads and fills our params.
    let r = unsafe {
        syscall6(
            libc::SYS_io_uring_setup,
            [entries as usize, p as *mut io_uring_params as usize, 0, 0, 0, 0],
        )
    };
    check(r).map(|fd| fd as i32)
}

/// How a thread names the ring to `io_uring_enter`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum RingRef {
    /// A descriptor of this thread's table.
    Fd(i32),
    /// An index into this thread's registered rings
    /// (`IORING_REGISTER_RING_FDS`, Linux 5.18): the ring stays reachable
    /// whatever happens to descriptors.
    Registered(u32),
}

/// `io_uring_enter` with an optional extended argument (`arg`, `argsz`
/// bytes, or null): how many entries were submitted.
///
/// # Safety
/// `arg` is null or points at `argsz` readable bytes of the kind `flags`
/// says, whose own pointers (timeout, signal mask) are readable.
pub(crate) unsafe fn enter(
    ring: RingRef,
    submit: u32,
    min: u32,
    flags: u32,
    arg: *const u8,
    argsz: usize,
) -> Result<u32, Errno> {
    let (fd, flags) = match ring {
        RingRef::Fd(fd) => (fd as usize, flags),
        RingRef::Registered(i) => (i as usize, flags | IORING_ENTER_REGISTERED_RING),
    };
    let a = [
        fd,
        submit as usize,
        min as usize,
        flags as usize,
        arg as usize,
        argsz,
    ];
    // SAFETY: the caller's promise about `arg`; the rest are plain values.
    check(unsafe { syscall6(libc::SYS_io_uring_enter, a) })
}

/// Registers the ring `fd` in this thread's table of registered rings: its index.
pub(crate) fn register_ring(fd: i32) -> Result<u32, Errno> {
    let mut up = io_uring_rsrc_update {
        offset: u32::MAX, // any free slot
        resv: 0,
        data: fd as u64,
    };
    let op = io_uring_register_op::IORING_REGISTER_RING_FDS as usize;
    // SAFETY: the kernel reads and updates our one entry.
    let r = unsafe {
        syscall6(
            libc::SYS_io_uring_register,
            [fd as usize, op, &raw mut up as usize, 1, 0, 0],
        )
    };
    match check(r)? {
        1 => Ok(up.offset),
        _ => Err(Errno(libc::EINVAL)),
    }
}

/// Maps `len` bytes of the ring's file at `off`, kept out of forked children.
pub(crate) fn map_ring(fd: i32, len: usize, off: u64) -> Result<usize, Errno> {
    let _keep = super::KeepErrno::new();
    // SAFETY: a new shared mapping of the ring's file; nothing of ours is replaced.
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_POPULATE,
            fd,
            off as libc::off_t,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(Errno(super::errno()));
    }
    // SAFETY: our fresh mapping: a child must not take the parent's
    // completions, so it does not inherit the ring at all.
    unsafe { libc::madvise(p, len, libc::MADV_DONTFORK) };
    Ok(p as usize)
}

/// Unmaps what [`map_ring`] mapped.
///
/// # Safety
/// Nothing refers to the mapping any more.
pub(crate) unsafe fn unmap_ring(p: usize, len: usize) {
    let _keep = super::KeepErrno::new();
    // SAFETY: the caller's promise.
    unsafe { libc::munmap(p as *mut libc::c_void, len) };
}
