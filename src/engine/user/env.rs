//! The real world for `io_submit`'s checks (`iocb::Env`): descriptors asked
//! of the kernel once per call (`Files`), the program's memory through the
//! kernel's checked copies. The checks themselves (`iocb`) are pure, and
//! their unit tests run over a world of their own.

use super::files::Files;
use super::iocb::{self, Env, FileFacts};
use crate::sys::Errno;
use crate::sys::{self, fd};
use crate::uaccess;
use core::ptr;

/// The real world for the checks: descriptors asked of the kernel (once
/// per call: `Files`), the program's memory through checked copies.
pub(super) struct RealEnv {
    pid: i32,
    files: Files,
    /// The vector request's iovec copy, until its record takes it.
    iov: *mut libc::iovec,
}

impl RealEnv {
    pub(super) fn new(pid: i32) -> RealEnv {
        RealEnv {
            pid,
            files: Files::new(),
            iov: ptr::null_mut(),
        }
    }

    /// The iovec copy of the request just checked (null for none): the
    /// caller's to keep or free.
    pub(super) fn take_iovecs(&mut self) -> *mut libc::iovec {
        core::mem::replace(&mut self.iov, ptr::null_mut())
    }
}

impl Drop for RealEnv {
    fn drop(&mut self) {
        // SAFETY: our copy, dropped with us.
        unsafe { free_iovecs(self.iov) };
    }
}

impl Env for RealEnv {
    fn stat(&mut self, fd: i32) -> FileFacts {
        let s = self.files.stat(fd);
        FileFacts {
            open: s.open,
            kind: s.kind,
            size: s.size,
            sparse: s.sparse,
        }
    }

    fn flags(&mut self, fd: i32) -> Result<i32, Errno> {
        self.files.flags(fd)
    }

    fn is_eventfd(&mut self, fd: i32) -> bool {
        self.files.is_eventfd(fd)
    }

    fn in_memory(&mut self, fd: i32) -> bool {
        self.files.in_memory(fd)
    }

    fn poll_now(&mut self, fd: i32, events: i16) -> i16 {
        let mut p = [libc::pollfd {
            fd,
            events,
            revents: 0,
        }];
        match fd::ppoll(&mut p, Some(0), ptr::null()) {
            Ok(n) if n > 0 => p[0].revents & events,
            _ => 0,
        }
    }

    fn can_poll(&mut self, fd: i32, kind: u32) -> bool {
        match kind {
            libc::S_IFREG | libc::S_IFDIR | libc::S_IFBLK => false,
            libc::S_IFIFO | libc::S_IFSOCK => true,
            // epoll takes only files with a poll method (EPERM otherwise).
            _ => fd::has_poll_method(fd),
        }
    }

    fn write_key(&mut self, at: usize) -> bool {
        let key = super::KIOCB_KEY;
        if uaccess::writable(at as *mut u8, 4) {
            // SAFETY: 4 bytes the kernel has written before (see copy_in).
            unsafe { (at as *mut u32).write_unaligned(key) };
            return true;
        }
        if !sys::write_user(self.pid, at, &key.to_ne_bytes()) {
            return false;
        }
        // Writable now: so is the page under the whole iocb (64 bytes, which
        // may cross into the next page: remembered only when it does not).
        let iocb = at - iocb::KEY_OFFSET;
        if iocb / 4096 == (iocb + 63) / 4096 {
            uaccess::remember(iocb as *mut u8, 64);
        }
        true
    }

    fn copy_iovecs(&mut self, at: usize, n: usize) -> Result<&[libc::iovec], Errno> {
        // SAFETY: the copy taken from us, which no record holds.
        unsafe { free_iovecs(self.take_iovecs()) };
        let bytes = n * size_of::<libc::iovec>();
        let p = sys::thread::alloc(bytes).cast::<libc::iovec>();
        if p.is_null() {
            return Err(Errno(libc::ENOMEM));
        }
        self.iov = p;
        // SAFETY: our fresh allocation of `bytes` bytes.
        let dst = unsafe { core::slice::from_raw_parts_mut(p.cast::<u8>(), bytes) };
        if sys::read_user(self.pid, at, dst) != bytes {
            return Err(Errno(libc::EFAULT));
        }
        // SAFETY: the copy holds n initialised iovecs.
        Ok(unsafe { core::slice::from_raw_parts(p, n) })
    }

    fn privileged(&mut self) -> bool {
        sys::process::privileged()
    }
}

/// Frees an iovec copy taken from the environment (`take_iovecs`).
///
/// # Safety
/// `p` is such a copy (or null), and nothing uses it after.
pub(super) unsafe fn free_iovecs(p: *mut libc::iovec) {
    // SAFETY: the caller's promise: our malloc'd copy, not used after.
    unsafe { sys::thread::free(p.cast()) };
}
