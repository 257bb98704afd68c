//! The `io_prep_*`, `io_set_*`, `io_poll`, `io_fsync` and `io_fdsync` helpers
//! as real symbols, for callers that cannot use libaio.h's `static inline`
//! versions (Python ctypes, Go, Java, Rust). They are exported under this
//! library's own version node, so C programs, which use the inline versions,
//! never depend on them and keep running on Debian's libaio.

use super::io::io_submit;
use crate::abi::{io_callback_t, io_context_t, iocb};
use core::ffi::{c_int, c_void};

/// Runs `f` on the caller's iocb.
///
/// # Safety
/// `p` points to a writable `struct iocb` (the inline helpers write it too).
unsafe fn with<R>(p: *mut iocb, f: impl FnOnce(&mut iocb) -> R) -> R {
    // SAFETY: the caller's promise.
    f(unsafe { &mut *p })
}

/// Stores `cb` in `iocb->data`.
///
/// # Safety
/// `iocb` points to a writable `struct iocb`.
#[no_mangle]
pub unsafe extern "C" fn io_set_callback(iocb: *mut iocb, cb: io_callback_t) {
    // SAFETY: the caller's promise.
    unsafe { with(iocb, |i| i.set_callback(cb)) }
}

/// Prepares a read.
///
/// # Safety
/// `iocb` points to a writable `struct iocb`.
#[no_mangle]
pub unsafe extern "C" fn io_prep_pread(
    iocb: *mut iocb,
    fd: c_int,
    buf: *mut c_void,
    count: usize,
    offset: i64,
) {
    // SAFETY: the caller's promise.
    unsafe { with(iocb, |i| i.prep_pread(fd, buf, count, offset)) }
}

/// Prepares a write.
///
/// # Safety
/// `iocb` points to a writable `struct iocb`.
#[no_mangle]
pub unsafe extern "C" fn io_prep_pwrite(
    iocb: *mut iocb,
    fd: c_int,
    buf: *mut c_void,
    count: usize,
    offset: i64,
) {
    // SAFETY: the caller's promise.
    unsafe { with(iocb, |i| i.prep_pwrite(fd, buf, count, offset)) }
}

/// Prepares a vector read.
///
/// # Safety
/// `iocb` points to a writable `struct iocb`.
#[no_mangle]
pub unsafe extern "C" fn io_prep_preadv(
    iocb: *mut iocb,
    fd: c_int,
    iov: *const libc::iovec,
    iovcnt: c_int,
    offset: i64,
) {
    // SAFETY: the caller's promise.
    unsafe { with(iocb, |i| i.prep_preadv2(fd, iov, iovcnt, offset, 0)) }
}

/// Prepares a vector write.
///
/// # Safety
/// `iocb` points to a writable `struct iocb`.
#[no_mangle]
pub unsafe extern "C" fn io_prep_pwritev(
    iocb: *mut iocb,
    fd: c_int,
    iov: *const libc::iovec,
    iovcnt: c_int,
    offset: i64,
) {
    // SAFETY: the caller's promise.
    unsafe { with(iocb, |i| i.prep_pwritev2(fd, iov, iovcnt, offset, 0)) }
}

/// Prepares a vector read with `RWF_*` flags.
///
/// # Safety
/// `iocb` points to a writable `struct iocb`.
#[no_mangle]
pub unsafe extern "C" fn io_prep_preadv2(
    iocb: *mut iocb,
    fd: c_int,
    iov: *const libc::iovec,
    iovcnt: c_int,
    offset: i64,
    flags: c_int,
) {
    // SAFETY: the caller's promise.
    unsafe { with(iocb, |i| i.prep_preadv2(fd, iov, iovcnt, offset, flags)) }
}

/// Prepares a vector write with `RWF_*` flags.
///
/// # Safety
/// `iocb` points to a writable `struct iocb`.
#[no_mangle]
pub unsafe extern "C" fn io_prep_pwritev2(
    iocb: *mut iocb,
    fd: c_int,
    iov: *const libc::iovec,
    iovcnt: c_int,
    offset: i64,
    flags: c_int,
) {
    // SAFETY: the caller's promise.
    unsafe { with(iocb, |i| i.prep_pwritev2(fd, iov, iovcnt, offset, flags)) }
}

/// Prepares a poll.
///
/// # Safety
/// `iocb` points to a writable `struct iocb`.
#[no_mangle]
pub unsafe extern "C" fn io_prep_poll(iocb: *mut iocb, fd: c_int, events: c_int) {
    // SAFETY: the caller's promise.
    unsafe { with(iocb, |i| i.prep_poll(fd, events)) }
}

/// Prepares an fsync.
///
/// # Safety
/// `iocb` points to a writable `struct iocb`.
#[no_mangle]
pub unsafe extern "C" fn io_prep_fsync(iocb: *mut iocb, fd: c_int) {
    // SAFETY: the caller's promise.
    unsafe { with(iocb, |i| i.prep_fsync(fd)) }
}

/// Prepares an fdatasync.
///
/// # Safety
/// `iocb` points to a writable `struct iocb`.
#[no_mangle]
pub unsafe extern "C" fn io_prep_fdsync(iocb: *mut iocb, fd: c_int) {
    // SAFETY: the caller's promise.
    unsafe { with(iocb, |i| i.prep_fdsync(fd)) }
}

/// Sets the eventfd signalled on completion.
///
/// # Safety
/// `iocb` points to a writable `struct iocb`.
#[no_mangle]
pub unsafe extern "C" fn io_set_eventfd(iocb: *mut iocb, eventfd: c_int) {
    // SAFETY: the caller's promise.
    unsafe { with(iocb, |i| i.set_eventfd(eventfd)) }
}

/// Prepares `iocb` with `prep`, stores `cb`, and submits it alone.
///
/// # Safety
/// `iocb` points to a writable `struct iocb` that lives until it completes.
unsafe fn submit_one(
    ctx: io_context_t,
    mut iocb: *mut iocb,
    cb: io_callback_t,
    prep: impl FnOnce(&mut iocb),
) -> c_int {
    // SAFETY: the caller's promise: a writable iocb.
    unsafe {
        with(iocb, |i| {
            prep(i);
            i.set_callback(cb);
        })
    };
    // SAFETY: one pointer to the caller's iocb, for the kernel to read.
    unsafe { io_submit(ctx, 1, &mut iocb) }
}

/// Prepares and submits a poll with a callback.
///
/// # Safety
/// `iocb` points to a writable `struct iocb` that lives until it completes.
#[no_mangle]
pub unsafe extern "C" fn io_poll(
    ctx: io_context_t,
    iocb: *mut iocb,
    cb: io_callback_t,
    fd: c_int,
    events: c_int,
) -> c_int {
    // SAFETY: the caller's promise.
    unsafe { submit_one(ctx, iocb, cb, |i| i.prep_poll(fd, events)) }
}

/// Prepares and submits an fsync with a callback.
///
/// # Safety
/// `iocb` points to a writable `struct iocb` that lives until it completes.
#[no_mangle]
pub unsafe extern "C" fn io_fsync(ctx: io_context_t, iocb: *mut iocb, cb: io_callback_t, fd: c_int) -> c_int {
    // SAFETY: the caller's promise.
    unsafe { submit_one(ctx, iocb, cb, |i| i.prep_fsync(fd)) }
}

/// Prepares and submits an fdatasync with a callback.
///
/// # Safety
/// `iocb` points to a writable `struct iocb` that lives until it completes.
#[no_mangle]
pub unsafe extern "C" fn io_fdsync(
    ctx: io_context_t,
    iocb: *mut iocb,
    cb: io_callback_t,
    fd: c_int,
) -> c_int {
    // SAFETY: the caller's promise.
    unsafe { submit_one(ctx, iocb, cb, |i| i.prep_fdsync(fd)) }
}
