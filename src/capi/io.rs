//! The system-call entry points: `io_setup`, `io_destroy`, `io_submit`,
//! `io_cancel`, `io_getevents` and `io_pgetevents`.

use crate::abi::{io_context_t, io_event, io_sigset, iocb, KERNEL_SIGSET_BYTES};
use crate::engine::kernel::reap::{self, Request};
use crate::engine::{self, user};
use crate::registry;
use crate::sys::KeepErrno;
use crate::{config, diag, explain, sys};
use core::ffi::{c_int, c_long, c_ulong};

/// Creates a context able to hold `maxevents` requests in flight and stores
/// its handle (the ring's address) in `*ctxp`, which must be 0 on entry.
///
/// # Safety
/// `ctxp` is passed to the kernel as it is; the kernel answers `-EFAULT` for a bad one.
#[no_mangle]
pub unsafe extern "C" fn io_setup(maxevents: c_int, ctxp: *mut io_context_t) -> c_int {
    let _keep = KeepErrno::new(); // a user-space engine calls libc
                                  // SAFETY: `ctxp` goes to the kernel, or through its checked copies.
    let ret = unsafe { engine::setup(maxevents, ctxp) };
    if ret < 0 {
        explain::setup_failed(ret, maxevents, ctxp as usize);
    }
    ret
}

/// Destroys a context: waits for its requests, then unmaps its ring.
///
/// # Safety
/// None beyond the kernel's; any value of `ctx` is answered.
#[no_mangle]
pub unsafe extern "C" fn io_destroy(ctx: io_context_t) -> c_int {
    let ret = if let Some(pin) = registry::pin_emu(ctx as usize) {
        let _keep = KeepErrno::new();
        user::destroy(pin)
    } else {
        // SAFETY: the kernel validates the context.
        engine::unknown_context(reap::destroy(ctx, || unsafe { sys::io_destroy(ctx) }))
    };
    diag::failed("io_destroy", ret);
    ret
}

/// Submits `nr` requests; returns how many the kernel accepted, or `-errno`
/// if it accepted none.
///
/// # Safety
/// None beyond the kernel's: `ios` and the iocbs are read by the kernel only.
#[no_mangle]
pub unsafe extern "C" fn io_submit(ctx: io_context_t, nr: c_long, ios: *mut *mut iocb) -> c_int {
    let ret = if let Some(pin) = registry::pin_emu(ctx as usize) {
        let _keep = KeepErrno::new();
        user::submit::submit(&pin, nr, ios as usize)
    } else {
        // SAFETY: the kernel validates all three.
        engine::unknown_context(unsafe { sys::io_submit(ctx, nr, ios) })
    };
    if ret as c_long != nr {
        explain::submit_failed(ret, ios as usize);
        diag::partial(nr, ret);
    }
    ret
}

/// Tries to cancel a request; on success its completion is stored in `*evt`.
///
/// # Safety
/// None beyond the kernel's.
// Versioned name in the shared object (see compat.rs); cbindgen and Rust see `no_mangle`.
#[no_mangle]
#[cfg_attr(
    feature = "symver",
    export_name = "io_cancel@@LIBAIO_0.4",
    allow(unused_attributes)
)]
pub unsafe extern "C" fn io_cancel(ctx: io_context_t, iocb: *mut iocb, evt: *mut io_event) -> c_int {
    let ret = if let Some(pin) = registry::pin_emu(ctx as usize) {
        let _keep = KeepErrno::new();
        user::cancel(&pin, iocb as usize)
    } else {
        // SAFETY: the kernel validates all three.
        engine::unknown_context_cancel(unsafe { sys::io_cancel(ctx, iocb, evt) }, iocb as usize)
    };
    diag::failed("io_cancel", ret);
    ret
}

/// Reaps between `min_nr` and `nr` completions into `events`, waiting up to
/// `*timeout` (for ever when `timeout` is NULL).
///
/// # Safety
/// `timeout`, when not NULL, is read in user space for a context set up
/// through this library (as libaio reads it); all else goes to the kernel.
// Versioned name in the shared object (see compat.rs); cbindgen and Rust see `no_mangle`.
#[no_mangle]
#[cfg_attr(
    feature = "symver",
    export_name = "io_getevents@@LIBAIO_0.4",
    allow(unused_attributes)
)]
pub unsafe extern "C" fn io_getevents(
    ctx: io_context_t,
    min_nr: c_long,
    nr: c_long,
    events: *mut io_event,
    timeout: *mut libc::timespec,
) -> c_int {
    if let Some(pin) = registry::pin_emu(ctx as usize) {
        let _keep = KeepErrno::new();
        // SAFETY: the caller's arguments; `timeout` is read as libaio reads it.
        let ret = unsafe { user::wait::getevents(&pin, min_nr, nr, events, timeout, core::ptr::null()) };
        reaped("io_getevents", ret, events);
        return ret;
    }
    let req = Request {
        ctx,
        min_nr,
        nr,
        events,
        timeout,
    };
    // SAFETY: the caller's arguments, unchanged, for the kernel to check.
    let call = || unsafe { sys::io_getevents(ctx, min_nr, nr, events, timeout) };
    // SAFETY: the arguments are the caller's, unchanged; `call` makes the syscall.
    let ret = unsafe { reap::getevents(&req, config::user_reap(), call) };
    let ret = engine::unknown_context_getevents(ret, timeout as usize, 0);
    reaped("io_getevents", ret, events);
    ret
}

/// `io_getevents` with the signal mask `*sigmask` in force while waiting
/// (NULL keeps the thread's mask).
///
/// # Safety
/// As for [`io_getevents`]; `sigmask` goes to the kernel untouched.
#[no_mangle]
pub unsafe extern "C" fn io_pgetevents(
    ctx: io_context_t,
    min_nr: c_long,
    nr: c_long,
    events: *mut io_event,
    timeout: *mut libc::timespec,
    sigmask: *mut libc::sigset_t,
) -> c_int {
    if let Some(pin) = registry::pin_emu(ctx as usize) {
        let _keep = KeepErrno::new();
        // SAFETY: the caller's arguments; `timeout` is read as libaio reads
        // it, `sigmask` by the kernel while waiting.
        let ret = unsafe { user::wait::getevents(&pin, min_nr, nr, events, timeout, sigmask) };
        reaped("io_pgetevents", ret, events);
        return ret;
    }
    let req = Request {
        ctx,
        min_nr,
        nr,
        events,
        timeout,
    };
    let call = || {
        let ss = io_sigset {
            ss: sigmask as c_ulong,
            ss_len: KERNEL_SIGSET_BYTES,
        };
        // SAFETY: `ss` lives across the call; the rest is the caller's, unchanged.
        let ret = unsafe { sys::io_pgetevents(ctx, min_nr, nr, events, timeout, (&raw const ss).cast()) };
        #[cfg(target_pointer_width = "32")]
        if ret == -libc::EINVAL {
            // Some 64-bit kernels read a 32-bit process's pair with a 64-bit pointer.
            let ss = crate::abi::io_sigset_compat {
                ss: sigmask as c_ulong,
                ss_len: KERNEL_SIGSET_BYTES,
                ..Default::default()
            };
            // SAFETY: `ss` lives across the call; the rest is the caller's, unchanged.
            return unsafe { sys::io_pgetevents(ctx, min_nr, nr, events, timeout, (&raw const ss).cast()) };
        }
        ret
    };
    // A signal mask must be installed by the kernel even when events are
    // ready (a pending signal it lets in is delivered by this call), so only
    // a NULL mask may be answered from the ring; libaio's "empty ring, zero
    // timeout" answer still comes first.
    let may_reap = config::user_reap() && sigmask.is_null();
    // SAFETY: the arguments are the caller's, unchanged.
    let ret = unsafe { reap::getevents(&req, may_reap, call) };
    let ret = engine::unknown_context_getevents(ret, timeout as usize, sigmask as usize);
    reaped("io_pgetevents", ret, events);
    ret
}

/// After a reap: a failure explained, or (debugging on) the failed
/// completions among the events; one flag test otherwise.
#[inline(always)]
fn reaped(call: &str, ret: c_int, events: *const io_event) {
    if ret < 0 {
        diag::failed(call, ret);
    } else if ret > 0 && config::debug() {
        explain::completions(call, events, ret);
    }
}
