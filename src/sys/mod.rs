//! The system-call layer: every call the library makes goes through here.
//!
//! - this file: the raw kernel AIO calls (libaio's own), futex, the checked
//!   copies of user memory (`process_vm_readv`/`writev`) and mappings;
//! - [`fd`]: descriptors, channels between descriptor tables, polling, I/O;
//! - [`uring`]: io_uring's setup, enter and register;
//! - [`thread`]: starting the library's own threads, and per-thread data.
//!
//! The kernel AIO wrappers below keep libaio's convention (`-errno` as an
//! `int`); everything else returns `Result<_, Errno>`.
//!
//! Each wrapper returns the kernel's answer as it is: a non-negative result or
//! `-errno`. `errno` is never written: on x86_64 and aarch64 the `syscall`
//! instruction is issued directly (no libc, no errno), elsewhere libc's
//! `syscall(2)` is used and `errno` is put back as it was.
//!
//! Every argument is passed to the kernel untouched; pointers from the caller
//! are never read here, so a bad one gets the kernel's `EFAULT`/`EINVAL`.

pub(crate) mod fd;
pub(crate) mod thread;
pub(crate) mod uring;

use crate::abi::{io_context_t, io_event, iocb};
use core::ffi::{c_long, c_void};
use core::sync::atomic::AtomicU32;

/// The kernel's error for a failed call (a positive errno value).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Errno(pub(crate) i32);

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

/// Sleeps while the word at `word` holds `expected` (`FUTEX_WAIT`, private to
/// this process). Returns on a wake-up, a signal, or at once when the word
/// already differs: the caller always re-reads the word.
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32) {
    let op = libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG;
    #[cfg(not(miri))]
    // SAFETY: the kernel only reads the aligned word, which the reference
    // keeps alive for the call; no timeout pointer is passed.
    unsafe {
        syscall6(
            libc::SYS_futex,
            [word.as_ptr() as usize, op as usize, expected as usize, 0, 0, 0],
        )
    };
    // Miri models futex through libc's syscall(2), with the C argument types.
    #[cfg(miri)]
    // SAFETY: the kernel only reads the aligned word, which the reference keeps alive for the
    // call; no timeout pointer is passed.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            op,
            expected,
            core::ptr::null::<libc::timespec>(),
        )
    };
}

/// Wakes every thread sleeping in [`futex_wait`] on `word`.
pub(crate) fn futex_wake_all(word: &AtomicU32) {
    let op = libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG;
    #[cfg(not(miri))]
    // SAFETY: FUTEX_WAKE only uses the address as a key; nothing is accessed.
    unsafe {
        syscall6(
            libc::SYS_futex,
            [word.as_ptr() as usize, op as usize, i32::MAX as usize, 0, 0, 0],
        )
    };
    #[cfg(miri)]
    // SAFETY: FUTEX_WAKE only uses the address as a key; nothing is accessed.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), op, i32::MAX)
    };
}

/// Wakes every thread sleeping on the futex at address `addr`, which may no
/// longer be mapped: a private futex is a key, the kernel reads nothing.
pub(crate) fn futex_wake_addr(addr: usize) {
    let op = libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG;
    // SAFETY: FUTEX_WAKE only uses the address as a key; nothing is accessed.
    unsafe { syscall6(libc::SYS_futex, [addr, op as usize, i32::MAX as usize, 0, 0, 0]) };
}

/// How a bounded futex sleep ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Slept {
    /// Woken, or the word had changed already: look again.
    Woken,
    TimedOut,
    /// A signal handler ran. With a timeout the kernel never restarts the
    /// wait after a handler, `SA_RESTART` or not, as `io_getevents` is never
    /// restarted: the caller answers `-EINTR`.
    Interrupted,
}

/// Sleeps while `word` holds `expected`, at most `ns` nanoseconds.
pub(crate) fn futex_sleep(word: &AtomicU32, expected: u32, ns: u64) -> Slept {
    let op = libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG;
    let t = libc::timespec {
        tv_sec: (ns / 1_000_000_000).min(i32::MAX as u64) as _,
        tv_nsec: (ns % 1_000_000_000) as _,
    };
    let tp = &raw const t as usize;
    // SAFETY: the kernel reads the aligned word and our relative timeout.
    let ret = unsafe {
        syscall6(
            libc::SYS_futex,
            [word.as_ptr() as usize, op as usize, expected as usize, tp, 0, 0],
        )
    };
    match -ret as i32 {
        libc::ETIMEDOUT => Slept::TimedOut,
        libc::EINTR => Slept::Interrupted,
        _ => Slept::Woken,
    }
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

/// Copies `dst.len()` bytes of this process's memory at address `src` into
/// `dst`, through the kernel (`process_vm_readv` on ourselves), so a bad
/// address is answered, not faulted on. Returns how many bytes were copied:
/// fewer than asked where the memory stops being readable.
pub(crate) fn read_user(pid: i32, src: usize, dst: &mut [u8]) -> usize {
    // SAFETY: `dst` is ours, writable for its length.
    let ret = unsafe {
        vm_copy(
            libc::SYS_process_vm_readv,
            pid,
            dst.as_mut_ptr().cast(),
            src,
            dst.len(),
        )
    };
    usize::try_from(ret).unwrap_or(0)
}

/// Copies `src` to this process's memory at address `dst` through the
/// kernel (`process_vm_writev`): false, and possibly a partial copy, where
/// that memory is not writable.
pub(crate) fn write_user(pid: i32, dst: usize, src: &[u8]) -> bool {
    // SAFETY: `src` is ours, readable for its length (the kernel only reads it).
    let ret = unsafe {
        vm_copy(
            libc::SYS_process_vm_writev,
            pid,
            src.as_ptr() as *mut c_void,
            dst,
            src.len(),
        )
    };
    ret == src.len() as c_long
}

/// `process_vm_readv`/`writev` (`nr`) of `len` bytes between our buffer
/// `local` and the address `remote`, which the kernel accesses through its
/// own checked copy (EFAULT, never a fault of ours).
///
/// # Safety
/// `local` is valid for `len` bytes: writable for `process_vm_readv`,
/// readable for `process_vm_writev`.
unsafe fn vm_copy(nr: c_long, pid: i32, local: *mut c_void, remote: usize, len: usize) -> c_long {
    let local = libc::iovec {
        iov_base: local,
        iov_len: len,
    };
    let remote = libc::iovec {
        iov_base: remote as *mut c_void,
        iov_len: len,
    };
    let (l, r) = (&raw const local as usize, &raw const remote as usize);
    // SAFETY: `local` is valid for `len` bytes as `nr` uses it (the caller's
    // promise); the other side goes through the kernel's checked access.
    unsafe { syscall6(nr, [pid as usize, l, 1, r, 1, 0]) }
}

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
