//! What `io_submit` must know of a request's descriptors (open mode, file
//! type, size, whether it is an eventfd, whether its file system keeps it in
//! memory), asked of the kernel once per descriptor per `io_submit` call: a
//! batch of 32 reads of one file costs two system calls of checks, not 64.
//!
//! Within one call the answers stand (another thread that closes or replaces
//! a descriptor meanwhile races with the kernel's own look-up just the same).
//! Whether a file system keeps its files in memory is kept for the life of
//! the process, by device number: a wrong guess would only make a request
//! run inside `io_submit` or outside it, never change its result.

use crate::sys::fd;
use crate::sys::Errno;
use core::sync::atomic::{AtomicU64, Ordering};

/// A descriptor's file, as `fstat` saw it.
#[derive(Clone, Copy)]
pub(crate) struct Stat {
    /// Whether `fstat` answered (not: the descriptor is not open).
    pub(crate) open: bool,
    /// The type bits (`S_IFMT`); 0 for an anonymous inode (eventfd, ...).
    pub(crate) kind: u32,
    pub(crate) size: i64,
    /// No block allocated: a file made by `ftruncate`, all hole.
    pub(crate) sparse: bool,
    pub(crate) dev: u64,
}

#[derive(Clone, Copy)]
struct Entry {
    fd: i32,
    flags: Option<Result<i32, Errno>>,
    stat: Option<Stat>,
    eventfd: Option<bool>,
}

const EMPTY: Entry = Entry {
    fd: -1,
    flags: None,
    stat: None,
    eventfd: None,
};

/// The answers of one `io_submit` call (a request's descriptor and its
/// eventfd fit together).
pub(crate) struct Files {
    entries: [Entry; 4],
    next: usize,
}

impl Files {
    pub(crate) const fn new() -> Files {
        Files {
            entries: [EMPTY; 4],
            next: 0,
        }
    }

    fn entry(&mut self, fd: i32) -> &mut Entry {
        let i = match self.entries.iter().position(|e| e.fd == fd && fd >= 0) {
            Some(i) => i,
            None => {
                let i = self.next;
                self.next = (self.next + 1) % self.entries.len();
                self.entries[i] = Entry { fd, ..EMPTY };
                i
            }
        };
        &mut self.entries[i]
    }

    /// The descriptor's open flags (`F_GETFL`), or EBADF.
    pub(crate) fn flags(&mut self, fd: i32) -> Result<i32, Errno> {
        let e = self.entry(fd);
        *e.flags.get_or_insert_with(|| fd_flags(fd))
    }

    pub(crate) fn stat(&mut self, fd: i32) -> Stat {
        let e = self.entry(fd);
        *e.stat.get_or_insert_with(|| fd_stat(fd))
    }

    pub(crate) fn is_eventfd(&mut self, fd: i32) -> bool {
        let e = self.entry(fd);
        *e.eventfd.get_or_insert_with(|| is_eventfd(fd))
    }

    /// Whether `fd`'s file lives in memory (tmpfs, ramfs): there its O_DIRECT
    /// I/O is a copy, which the kernel finishes inside `io_submit`.
    pub(crate) fn in_memory(&mut self, fd: i32) -> bool {
        let st = self.stat(fd);
        known_in_memory(st.dev).unwrap_or_else(|| {
            let m = in_memory_fs(fd);
            remember_in_memory(st.dev, m);
            m
        })
    }
}

/// Device numbers seen, each as (dev << 1 | in memory) + 1; 0 is free.
static DEVICES: [AtomicU64; 8] = [const { AtomicU64::new(0) }; 8];

fn known_in_memory(dev: u64) -> Option<bool> {
    if dev >> 62 != 0 {
        return None;
    }
    DEVICES.iter().find_map(|d| {
        let v = d.load(Ordering::Relaxed);
        (v != 0 && (v - 1) >> 1 == dev).then(|| (v - 1) & 1 != 0)
    })
}

fn remember_in_memory(dev: u64, memory: bool) {
    if dev >> 62 != 0 {
        return;
    }
    let v = ((dev << 1) | u64::from(memory)) + 1;
    let slot = &DEVICES[(dev as usize).wrapping_mul(0x9e37_79b9) >> 29 & 7];
    slot.store(v, Ordering::Relaxed);
}
/// The descriptor's open flags (`F_GETFL`), or EBADF.
fn fd_flags(fd: i32) -> Result<i32, Errno> {
    fd::flags(fd).map_err(|_| Errno(libc::EBADF))
}

/// What `fstat` says of `fd`.
pub(crate) fn fd_stat(fd: i32) -> Stat {
    match fd::fstat(fd) {
        Ok(st) => Stat {
            open: true,
            kind: st.kind,
            size: st.size,
            sparse: st.blocks == 0,
            dev: st.id.dev,
        },
        Err(_) => Stat {
            open: false,
            kind: 0,
            size: 0,
            sparse: false,
            dev: 0,
        },
    }
}

/// `fstatfs`: whether `fd`'s file system is tmpfs or ramfs.
fn in_memory_fs(fd: i32) -> bool {
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    const RAMFS_MAGIC: i64 = 0x8584_58f6;
    fd::fs_type(fd).is_ok_and(|t| t == TMPFS_MAGIC || t == RAMFS_MAGIC)
}

/// Whether `fd` is an eventfd, as the kernel's `eventfd_ctx_fdget` asks:
/// its /proc link says so; where /proc is missing (a chroot, a minimal
/// container), a file of the anonymous-inode file system that takes an
/// 8-byte write of 0: of those only an eventfd has a write method that
/// accepts it, and adding 0 changes nothing.
fn is_eventfd(fd: i32) -> bool {
    match proc_link_says_eventfd(fd) {
        Some(answer) => answer,
        None => {
            const ANON_INODE_FS_MAGIC: i64 = 0x0904_1934;
            fd::fs_type(fd).is_ok_and(|t| t == ANON_INODE_FS_MAGIC)
                && fd::write(fd, &0u64.to_ne_bytes()) == Ok(8)
        }
    }
}

/// What `/proc/self/fd/N` says: None when it cannot be read.
fn proc_link_says_eventfd(fd: i32) -> Option<bool> {
    let mut path = [0u8; 32];
    let prefix = b"/proc/self/fd/";
    path[..prefix.len()].copy_from_slice(prefix);
    let mut digits = [0u8; 10];
    let d = crate::procfs::decimal(fd.unsigned_abs(), &mut digits);
    path[prefix.len()..prefix.len() + d.len()].copy_from_slice(d);
    let mut link = [0u8; 32];
    let path = core::ffi::CStr::from_bytes_until_nul(&path).ok()?;
    let Some(target) = crate::sys::process::read_link(path, &mut link) else {
        // Not there: no /proc, or the descriptor is not open (then the
        // other checks answer EBADF before this one matters).
        return if fd::flags(fd).is_ok() { None } else { Some(false) };
    };
    Some(target == b"anon_inode:[eventfd]")
}
