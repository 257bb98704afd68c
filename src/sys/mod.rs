//! The system-call layer: every call the library makes goes through here.
//!
//! - this file: the raw system call, [`Errno`], errno kept as it was;
//! - [`aio`]: the kernel AIO calls (libaio's own);
//! - [`futex`]: waiting for another thread of the process;
//! - [`vm`]: the kernel's checked copies of user memory;
//! - [`mem`]: the library's own mappings;
//! - [`process`]: what the library asks of this process and machine
//!   (/proc files, limits, CPUs, the signal mask);
//! - [`fd`]: descriptors, channels between descriptor tables, polling, I/O;
//! - [`uring`]: io_uring's setup, enter and register;
//! - [`thread`]: starting the library's own threads, and per-thread data.
//!
//! The kernel AIO wrappers keep libaio's convention (`-errno` as an `int`,
//! handed to C unchanged); everything else returns `Result<_, Errno>`.
//!
//! Each wrapper returns the kernel's answer as it is: a non-negative result or
//! `-errno`. `errno` is never written: on x86_64 and aarch64 the `syscall`
//! instruction is issued directly (no libc, no errno), elsewhere libc's
//! `syscall(2)` is used and `errno` is put back as it was.
//!
//! Every argument is passed to the kernel untouched; pointers from the caller
//! are never read here, so a bad one gets the kernel's `EFAULT`/`EINVAL`.

pub(crate) mod aio;
pub(crate) mod fd;
pub(crate) mod futex;
pub(crate) mod mem;
pub(crate) mod process;
pub(crate) mod thread;
pub(crate) mod uring;
pub(crate) mod vm;

// The calls by concern (`sys::aio::io_submit`, ...) are also reachable as
// `sys::io_submit`: the entry points read as the system calls they make.
pub(crate) use aio::{io_cancel, io_destroy, io_getevents, io_pgetevents, io_setup, io_submit};
pub(crate) use futex::{futex_sleep, futex_wait, futex_wake_addr, futex_wake_all, Slept};
pub(crate) use mem::{map_anonymous, unmap, wipe_on_fork};
pub(crate) use vm::{read_user, write_user};

use core::ffi::c_long;

/// The kernel's error for a failed call (a positive errno value): the one
/// error type inside the library. The C entry points hand it on as
/// `-errno` (libaio's convention), through [`Errno::neg`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Errno(pub(crate) i32);

impl Errno {
    /// The C entry points' form: `-errno`.
    pub(crate) const fn neg(self) -> i32 {
        -self.0
    }
}

/// One system call with up to six arguments, returning the raw kernel result.
///
/// # Safety
/// The kernel may read or write memory through the arguments as the call's
/// contract says; the caller vouches for nothing more than libc's `syscall(2)`
/// would ask.
#[cfg(all(target_arch = "x86_64", not(miri)))]
#[inline(always)]
unsafe fn syscall6(nr: c_long, a: [usize; 6]) -> c_long {
    let ret: c_long;
    // SAFETY: the x86_64 Linux system-call convention: number in rax, arguments
    // in rdi, rsi, rdx, r10, r8, r9; the kernel clobbers rcx and r11 and
    // leaves the stack alone. Memory effects are the kernel's, hence no
    // `nomem`/`readonly`.
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") nr => ret,
            in("rdi") a[0], in("rsi") a[1], in("rdx") a[2],
            in("r10") a[3], in("r8") a[4], in("r9") a[5],
            lateout("rcx") _, lateout("r11") _,
            options(nostack, preserves_flags)
        );
    }
    ret
}

#[cfg(all(target_arch = "aarch64", not(miri)))]
#[inline(always)]
unsafe fn syscall6(nr: c_long, a: [usize; 6]) -> c_long {
    let ret: c_long;
    // SAFETY: the aarch64 Linux convention: number in x8, arguments in x0-x5,
    // result in x0; `svc 0` clobbers nothing else.
    unsafe {
        core::arch::asm!(
            "svc 0",
            in("x8") nr,
            inlateout("x0") a[0] => ret,
            in("x1") a[1], in("x2") a[2], in("x3") a[3], in("x4") a[4], in("x5") a[5],
            options(nostack, preserves_flags)
        );
    }
    ret
}

// Also under Miri, which interprets libc's syscall(2) (futex) but not inline assembly.
#[cfg(any(miri, not(any(target_arch = "x86_64", target_arch = "aarch64"))))]
#[inline(always)]
unsafe fn syscall6(nr: c_long, a: [usize; 6]) -> c_long {
    // SAFETY: libc's errno location is valid for the calling thread.
    let errno = unsafe { libc::__errno_location() };
    // SAFETY: libc's errno location is valid for the calling thread; reading our own thread's
    // errno.
    let saved = unsafe { *errno };
    // SAFETY: the caller passes the kernel's arguments for `nr`.
    let ret = unsafe { libc::syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]) };
    if ret < 0 {
        // SAFETY: libc's errno location is valid for the calling thread: the
        // kernel's error is read, and the caller's errno put back.
        unsafe {
            let e = *errno;
            *errno = saved;
            return -(e as c_long);
        }
    }
    ret
}

/// This thread's errno.
pub(crate) fn errno() -> i32 {
    // SAFETY: libc keeps this thread's errno location valid.
    let e = unsafe { libc::__errno_location() };
    // SAFETY: libc keeps this thread's errno location valid; reading it.
    unsafe { *e }
}

/// Puts `errno` back as it was when dropped: libc calls made on the caller's
/// behalf (reading /proc, mmap, writing a diagnostic) must not change what it sees.
pub(crate) struct KeepErrno(i32);

impl KeepErrno {
    pub(crate) fn new() -> Self {
        // SAFETY: reading this thread's errno, whose location libc keeps valid.
        let errno = unsafe { libc::__errno_location() };
        // SAFETY: reading this thread's errno, whose location libc keeps valid.
        KeepErrno(unsafe { *errno })
    }
}

impl Drop for KeepErrno {
    fn drop(&mut self) {
        // SAFETY: this thread's errno, whose location libc keeps valid.
        let errno = unsafe { libc::__errno_location() };
        // SAFETY: this thread's errno, whose location libc keeps valid; writing it back.
        unsafe { *errno = self.0 };
    }
}
/// The kernel's `uname`: machine, release and the rest; None if it failed.
pub(crate) fn uname() -> Option<libc::utsname> {
    let mut u = core::mem::MaybeUninit::<libc::utsname>::zeroed();
    // SAFETY: uname writes into our buffer.
    if unsafe { libc::uname(u.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: zero-initialised, filled by uname.
    Some(unsafe { u.assume_init() })
}

/// Ends the process at once with `code` (no atexit handlers: the doctor
/// runs before any program would have registered one).
#[cfg_attr(any(test, not(doctor_entry)), allow(dead_code))] // the doctor's only
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: _exit takes an integer and does not return.
    unsafe { libc::_exit(code) }
}
