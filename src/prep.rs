//! Filling in requests: the safe core behind the `io_prep_*` and `io_set_*` helpers.
//!
//! Each `prep_*` starts from an all-zero `iocb`, exactly as libaio.h's inline
//! helpers do, so stale fields (flags, resfd, rw_flags) never leak into a new
//! request.

use crate::abi::{io_callback_t, io_iocb_cmd, iocb, IOCB_FLAG_RESFD};
use core::ffi::{c_int, c_uint, c_ulong, c_void};

impl iocb {
    fn prep(&mut self, fd: c_int, op: io_iocb_cmd) {
        *self = iocb::zeroed();
        self.aio_fildes = fd;
        self.aio_lio_opcode = op as i16;
    }

    fn prep_rw(&mut self, fd: c_int, op: io_iocb_cmd, buf: *mut c_void, count: c_ulong, offset: i64) {
        self.prep(fd, op);
        self.u.c.buf = buf;
        self.u.c.nbytes = count;
        self.u.c.offset = offset;
    }

    /// A read of `count` bytes at `offset` into `buf`.
    pub fn prep_pread(&mut self, fd: c_int, buf: *mut c_void, count: usize, offset: i64) {
        self.prep_rw(fd, io_iocb_cmd::IO_CMD_PREAD, buf, count as c_ulong, offset);
    }

    /// A write of `count` bytes at `offset` from `buf`.
    pub fn prep_pwrite(&mut self, fd: c_int, buf: *mut c_void, count: usize, offset: i64) {
        self.prep_rw(fd, io_iocb_cmd::IO_CMD_PWRITE, buf, count as c_ulong, offset);
    }

    /// A vector read (`preadv`) of `iovcnt` iovecs at `offset`, with `RWF_*` `flags`.
    pub fn prep_preadv2(
        &mut self,
        fd: c_int,
        iov: *const libc::iovec,
        iovcnt: c_int,
        offset: i64,
        flags: c_int,
    ) {
        // libaio stores the count through `int` → `unsigned long`, sign-extending.
        self.prep_rw(
            fd,
            io_iocb_cmd::IO_CMD_PREADV,
            iov.cast_mut().cast(),
            iovcnt as c_ulong,
            offset,
        );
        self.aio_rw_flags = flags as c_uint;
    }

    /// A vector write (`pwritev`) of `iovcnt` iovecs at `offset`, with `RWF_*` `flags`.
    pub fn prep_pwritev2(
        &mut self,
        fd: c_int,
        iov: *const libc::iovec,
        iovcnt: c_int,
        offset: i64,
        flags: c_int,
    ) {
        self.prep_rw(
            fd,
            io_iocb_cmd::IO_CMD_PWRITEV,
            iov.cast_mut().cast(),
            iovcnt as c_ulong,
            offset,
        );
        self.aio_rw_flags = flags as c_uint;
    }

    /// A poll for `events` on `fd`.
    pub fn prep_poll(&mut self, fd: c_int, events: c_int) {
        self.prep(fd, io_iocb_cmd::IO_CMD_POLL);
        self.u.poll.events = events;
    }

    /// An `fsync`.
    pub fn prep_fsync(&mut self, fd: c_int) {
        self.prep(fd, io_iocb_cmd::IO_CMD_FSYNC);
    }

    /// An `fdatasync`.
    pub fn prep_fdsync(&mut self, fd: c_int) {
        self.prep(fd, io_iocb_cmd::IO_CMD_FDSYNC);
    }

    /// Stores the completion callback in `data`, where `io_queue_run` finds it.
    pub fn set_callback(&mut self, cb: io_callback_t) {
        self.data = cb.map_or(core::ptr::null_mut(), |f| f as *mut c_void);
    }

    /// Asks the kernel to signal `eventfd` when this request completes.
    pub fn set_eventfd(&mut self, eventfd: c_int) {
        // SAFETY: `c` is the union member every command shares for these
        // fields; all its fields are plain integers and pointers, valid for
        // any bits.
        let c = unsafe { &mut self.u.c };
        c.flags |= IOCB_FLAG_RESFD;
        c.resfd = eventfd as c_uint;
    }
}
