//! The legacy `io_queue_*` helpers, defined over the system-call entry points
//! exactly as libaio 0.3.113 defines them.

use super::io::{io_destroy, io_getevents, io_setup};
use crate::abi::{io_callback_t, io_context_t, io_event};
use core::ffi::c_int;
use core::ptr;

/// `io_setup` for `maxevents > 0` (with `*ctxp` cleared first); `-EINVAL` otherwise.
///
/// # Safety
/// `ctxp` must be writable when `maxevents > 0` (libaio writes it too).
#[no_mangle]
pub unsafe extern "C" fn io_queue_init(maxevents: c_int, ctxp: *mut io_context_t) -> c_int {
    if maxevents <= 0 {
        crate::diag::failed("io_queue_init", -libc::EINVAL);
        return -libc::EINVAL;
    }
    // SAFETY: the caller's promise; libaio stores through it the same way.
    unsafe { *ctxp = ptr::null_mut() };
    // SAFETY: forwarded unchanged.
    unsafe { io_setup(maxevents, ctxp) }
}

/// `io_destroy`.
///
/// # Safety
/// As for `io_destroy`.
#[no_mangle]
pub unsafe extern "C" fn io_queue_release(ctx: io_context_t) -> c_int {
    // SAFETY: forwarded unchanged.
    unsafe { io_destroy(ctx) }
}

/// Reaps every completion that is ready, one at a time, calling the callback
/// that `io_set_callback` stored in each one's `data`. Returns 0 once none is
/// left, or the `-errno` of the reap that failed.
///
/// # Safety
/// Every completed request's `data` must hold an `io_callback_t` (or NULL,
/// which is skipped where libaio would jump to address 0).
#[no_mangle]
pub unsafe extern "C" fn io_queue_run(ctx: io_context_t) -> c_int {
    let mut zero = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    loop {
        let mut ev = io_event::zeroed();
        // SAFETY: one event into our own `ev`, zero timeout of our own.
        let ret = unsafe { io_getevents(ctx, 0, 1, &mut ev, &mut zero) };
        if ret != 1 {
            return ret;
        }
        // SAFETY: the caller stored an io_callback_t (an optional fn pointer,
        // same size and representation as `data`) with io_set_callback.
        let cb: io_callback_t =
            unsafe { core::mem::transmute::<*mut core::ffi::c_void, io_callback_t>(ev.data) };
        if let Some(cb) = cb {
            // SAFETY: calling the caller's own callback with the completion.
            unsafe { cb(ctx, ev.obj, ev.res as _, ev.res2 as _) };
        }
    }
}

/// Waits for completions without reaping any: `io_getevents(ctx, 0, 0, NULL, timeout)`,
/// which is what libaio 0.3.113 does (it returns at once).
///
/// # Safety
/// As for `io_getevents`.
// Versioned name in the shared object (see compat.rs); cbindgen and Rust see `no_mangle`.
#[no_mangle]
#[cfg_attr(
    feature = "symver",
    export_name = "io_queue_wait@@LIBAIO_0.4",
    allow(unused_attributes)
)]
pub unsafe extern "C" fn io_queue_wait(ctx: io_context_t, timeout: *mut libc::timespec) -> c_int {
    // SAFETY: forwarded unchanged.
    unsafe { io_getevents(ctx, 0, 0, ptr::null_mut(), timeout) }
}
