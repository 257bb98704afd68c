//! The kernel AIO system calls, libaio's own: each returns the kernel's
//! answer as libaio does, a count or `-errno` as an `int` (the C entry
//! points hand it on unchanged, so it keeps the C convention here).

use super::syscall6;
use crate::abi::{io_context_t, io_event, iocb};
use core::ffi::{c_long, c_void};

/// `io_pgetevents` (Linux 4.18) has no number in the libc crate; these are the
/// kernel's, per architecture. Where none is known the call answers `-ENOSYS`,
/// as libaio built without `__NR_io_pgetevents` does.
const SYS_IO_PGETEVENTS: Option<c_long> = if cfg!(all(target_arch = "x86_64", target_pointer_width = "64")) {
    Some(333)
} else if cfg!(target_arch = "x86_64") {
    Some(0x4000_0000 + 333) // x32: __X32_SYSCALL_BIT
} else if cfg!(any(
    target_arch = "aarch64",
    target_arch = "riscv64",
    target_arch = "riscv32",
    target_arch = "loongarch64"
)) {
    Some(292)
} else if cfg!(target_arch = "x86") {
    Some(385)
} else if cfg!(target_arch = "arm") {
    Some(399)
} else if cfg!(any(target_arch = "powerpc", target_arch = "powerpc64")) {
    Some(388)
} else if cfg!(target_arch = "s390x") {
    Some(382)
} else {
    None
};

/// Narrows the kernel's `long` result to libaio's `int` return type, as libaio does.
#[inline(always)]
fn int(ret: c_long) -> i32 {
    ret as i32
}

/// `io_setup(2)`.
///
/// # Safety
/// None beyond the kernel's: `ctxp` is handed to the kernel as it is.
#[inline]
pub(crate) unsafe fn io_setup(maxevents: i32, ctxp: *mut io_context_t) -> i32 {
    // SAFETY: the kernel validates both arguments.
    int(unsafe {
        syscall6(
            libc::SYS_io_setup,
            [maxevents as usize, ctxp as usize, 0, 0, 0, 0],
        )
    })
}

/// `io_destroy(2)`.
///
/// # Safety
/// None beyond the kernel's.
#[inline]
pub(crate) unsafe fn io_destroy(ctx: io_context_t) -> i32 {
    // SAFETY: the kernel validates the context.
    int(unsafe { syscall6(libc::SYS_io_destroy, [ctx as usize, 0, 0, 0, 0, 0]) })
}

/// `io_submit(2)`.
///
/// # Safety
/// None beyond the kernel's: `ios` and every iocb are read by the kernel only.
#[inline(always)]
pub(crate) unsafe fn io_submit(ctx: io_context_t, nr: c_long, ios: *mut *mut iocb) -> i32 {
    // SAFETY: the kernel validates all three.
    int(unsafe {
        syscall6(
            libc::SYS_io_submit,
            [ctx as usize, nr as usize, ios as usize, 0, 0, 0],
        )
    })
}

/// `io_cancel(2)`.
///
/// # Safety
/// None beyond the kernel's.
#[inline]
pub(crate) unsafe fn io_cancel(ctx: io_context_t, iocb: *mut iocb, evt: *mut io_event) -> i32 {
    // SAFETY: the kernel validates all three.
    int(unsafe {
        syscall6(
            libc::SYS_io_cancel,
            [ctx as usize, iocb as usize, evt as usize, 0, 0, 0],
        )
    })
}

/// `io_getevents(2)`.
///
/// # Safety
/// None beyond the kernel's.
#[inline]
pub(crate) unsafe fn io_getevents(
    ctx: io_context_t,
    min_nr: c_long,
    nr: c_long,
    events: *mut io_event,
    timeout: *mut libc::timespec,
) -> i32 {
    let a = [
        ctx as usize,
        min_nr as usize,
        nr as usize,
        events as usize,
        timeout as usize,
        0,
    ];
    // SAFETY: the kernel validates every argument.
    int(unsafe { syscall6(libc::SYS_io_getevents, a) })
}

/// `io_pgetevents(2)`; `sigset` is the kernel's `{pointer, size}` pair.
///
/// # Safety
/// None beyond the kernel's.
#[inline]
pub(crate) unsafe fn io_pgetevents(
    ctx: io_context_t,
    min_nr: c_long,
    nr: c_long,
    events: *mut io_event,
    timeout: *mut libc::timespec,
    sigset: *const c_void,
) -> i32 {
    let Some(nr_pgetevents) = SYS_IO_PGETEVENTS else {
        return -libc::ENOSYS;
    };
    let a = [
        ctx as usize,
        min_nr as usize,
        nr as usize,
        events as usize,
        timeout as usize,
        sigset as usize,
    ];
    // SAFETY: the kernel validates every argument.
    int(unsafe { syscall6(nr_pgetevents, a) })
}
