//! The library's own mappings: anonymous pages, wiped in a forked child
//! where asked, and unmapped.

use super::{syscall6, KeepErrno};

/// A private anonymous read-write mapping of `len` bytes, or None.
pub(crate) fn map_anonymous(len: usize) -> Option<*mut u8> {
    // libc's mmap, not a raw syscall: the raw call differs per architecture
    // (old_mmap on i386 and s390, mmap2 on 32-bit arm). errno is put back.
    let _keep = KeepErrno::new();
    // SAFETY: a fresh anonymous mapping at an address of the kernel's choice
    // touches no existing memory.
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    (p != libc::MAP_FAILED).then_some(p.cast())
}

/// Asks the kernel to give a forked child zero-filled pages for the private
/// anonymous mapping at `p` (`MADV_WIPEONFORK`, Linux 4.14); false if it cannot.
///
/// # Safety
/// `p..p + len` is a mapping of the caller's that no forked child may need
/// the contents of (the child sees zeroes there).
pub(crate) unsafe fn wipe_on_fork(p: *mut u8, len: usize) -> bool {
    // Miri cannot fork, so there is no child to protect, and no madvise to ask.
    if cfg!(miri) {
        return true;
    }
    // SAFETY: only changes what fork(2) does with the caller's mapping, which
    // the caller says a child may see zeroed.
    let ret = unsafe {
        syscall6(
            libc::SYS_madvise,
            [p as usize, len, libc::MADV_WIPEONFORK as usize, 0, 0, 0],
        )
    };
    ret == 0
}

/// Unmaps a mapping made by [`map_anonymous`].
///
/// # Safety
/// Nothing refers to the mapping any more.
pub(crate) unsafe fn unmap(p: *mut u8, len: usize) {
    let _keep = KeepErrno::new();
    // SAFETY: the caller guarantees the mapping is unused.
    unsafe { libc::munmap(p.cast(), len) };
}
