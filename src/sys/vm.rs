//! The kernel's checked copies of this process's own memory
//! (`process_vm_readv`/`writev` on ourselves): a bad user pointer is
//! answered, never faulted on.

use super::syscall6;
use core::ffi::{c_long, c_void};

/// Copies `dst.len()` bytes of this process's memory at address `src` into
/// `dst`, through the kernel (`process_vm_readv` on ourselves), so a bad
/// address is answered, not faulted on. Returns how many bytes were copied:
/// fewer than asked where the memory stops being readable.
pub(crate) fn read_user(pid: i32, src: usize, dst: &mut [u8]) -> usize {
    // SAFETY: `dst` is ours, writable for its length.
    let ret = unsafe {
        vm_copy(
            libc::SYS_process_vm_readv,
            pid,
            dst.as_mut_ptr().cast(),
            src,
            dst.len(),
        )
    };
    usize::try_from(ret).unwrap_or(0)
}

/// Copies `src` to this process's memory at address `dst` through the
/// kernel (`process_vm_writev`): false, and possibly a partial copy, where
/// that memory is not writable.
pub(crate) fn write_user(pid: i32, dst: usize, src: &[u8]) -> bool {
    // SAFETY: `src` is ours, readable for its length (the kernel only reads it).
    let ret = unsafe {
        vm_copy(
            libc::SYS_process_vm_writev,
            pid,
            src.as_ptr() as *mut c_void,
            dst,
            src.len(),
        )
    };
    ret == src.len() as c_long
}

/// `process_vm_readv`/`writev` (`nr`) of `len` bytes between our buffer
/// `local` and the address `remote`, which the kernel accesses through its
/// own checked copy (EFAULT, never a fault of ours).
///
/// # Safety
/// `local` is valid for `len` bytes: writable for `process_vm_readv`,
/// readable for `process_vm_writev`.
unsafe fn vm_copy(nr: c_long, pid: i32, local: *mut c_void, remote: usize, len: usize) -> c_long {
    let local = libc::iovec {
        iov_base: local,
        iov_len: len,
    };
    let remote = libc::iovec {
        iov_base: remote as *mut c_void,
        iov_len: len,
    };
    let (l, r) = (&raw const local as usize, &raw const remote as usize);
    // SAFETY: `local` is valid for `len` bytes as `nr` uses it (the caller's
    // promise); the other side goes through the kernel's checked access.
    unsafe { syscall6(nr, [pid as usize, l, 1, r, 1, 0]) }
}
