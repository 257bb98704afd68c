//! The `@LIBAIO_0.1` entry points: the signatures of libaio before 0.4, still
//! bound by programs linked against it.
//!
//! Three names carry two versions. A version script cannot say that, so these
//! symbols carry their version in their names, the way `.symver` writes them:
//! `io_getevents@LIBAIO_0.1` here (old, non-default) and
//! `io_getevents@@LIBAIO_0.4` on the current definitions in `io.rs` and
//! `queue.rs` (default). The linker reads the suffix as the version. The names
//! are given only with the `symver` feature, which the shared-object build
//! (`cshim`) turns on; Rust users and tests see plain functions.

use super::io::{io_cancel, io_getevents};
use crate::abi::{io_context_t, io_event, iocb};
use core::ffi::{c_int, c_long};
use core::ptr;

/// Copies the caller's timeout, as libaio 0.1 did (the old API took a const pointer).
///
/// # Safety
/// `t` is NULL or readable.
unsafe fn copy_timeout(t: *const libc::timespec, store: &mut libc::timespec) -> *mut libc::timespec {
    if t.is_null() {
        return ptr::null_mut();
    }
    // SAFETY: the caller's promise; libaio 0.1 copies it the same way.
    *store = unsafe { ptr::read_unaligned(t) };
    store
}

/// Old `io_cancel(ctx, iocb)`: cancels and drops the completion.
///
/// # Safety
/// As for `io_cancel`.
#[cfg_attr(feature = "symver", export_name = "io_cancel@LIBAIO_0.1")]
pub unsafe extern "C" fn io_cancel_0_1(ctx: io_context_t, iocb: *mut iocb) -> c_int {
    let mut ev = io_event::zeroed();
    // SAFETY: forwarded, with our own event buffer.
    unsafe { io_cancel(ctx, iocb, &mut ev) }
}

/// Old `io_queue_wait(ctx, const timeout)`.
///
/// # Safety
/// `when` is NULL or readable.
#[cfg_attr(feature = "symver", export_name = "io_queue_wait@LIBAIO_0.1")]
pub unsafe extern "C" fn io_queue_wait_0_1(ctx: io_context_t, when: *const libc::timespec) -> c_int {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: the caller's promise on `when`.
    let timeout = unsafe { copy_timeout(when, &mut t) };
    // SAFETY: forwarded.
    unsafe { io_getevents(ctx, 0, 0, ptr::null_mut(), timeout) }
}

/// Old `io_getevents(ctx, nr, events, const timeout)`: waits for at least one event.
///
/// # Safety
/// `timeout` is NULL or readable; the rest as for `io_getevents`.
#[cfg_attr(feature = "symver", export_name = "io_getevents@LIBAIO_0.1")]
pub unsafe extern "C" fn io_getevents_0_1(
    ctx: io_context_t,
    nr: c_long,
    events: *mut io_event,
    timeout: *const libc::timespec,
) -> c_int {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: the caller's promise on `timeout`.
    let timeout = unsafe { copy_timeout(timeout, &mut t) };
    // SAFETY: forwarded.
    unsafe { io_getevents(ctx, 1, nr, events, timeout) }
}
