//! Engines: who carries out the requests of a context.
//!
//! - kernel AIO (`kernel`: the gate and the reaping protocol, over the raw
//!   system calls): exactly libaio's path;
//! - user-space contexts (`user`): the context is a ring of ours, laid out
//!   as the kernel's `struct aio_ring`, so programs that read it directly
//!   (QEMU, fio) work unchanged; requests are checked as the kernel checks
//!   them and carried out by an executor (`user::Executor`):
//!   - `threads`: a bounded pool of worker threads;
//!   - `uring`: the process's io_uring;
//!   - and for both, `service`: the thread that waits for polls and does
//!     what no program thread is there to do.
//!
//! Files reach the engines' threads through `channel`, in descriptor tables
//! of their own; what must not leak into a forked child lives in `process`.
//!
//! `LIBAIO_RS_ENGINE` picks the engine of each new context (see `config`);
//! in `auto` mode a context falls back when kernel AIO answers `io_setup`
//! with `ENOSYS` or `EPERM` (no kernel AIO, or a seccomp filter refusing it),
//! and on `EAGAIN` with `LIBAIO_RS_FALLBACK_EAGAIN=1`: to io_uring, or to the
//! thread engine where io_uring is refused too; but only for a program that
//! reaps through the library (`reapers`).
//! The entry points find a user-space context by its address in the registry;
//! every other value goes to the kernel, as before.

pub(crate) mod channel;
pub(crate) mod kernel;
pub(crate) mod process;
pub(crate) mod reapers;
pub(crate) mod service;
pub(crate) mod threads;
pub(crate) mod uring;
pub(crate) mod user;

use crate::abi::io_context_t;
use crate::config::{self, EngineMode};
use crate::{diag, registry, sys};
use core::mem::size_of;
use core::sync::atomic::{AtomicBool, Ordering};

/// Set once a context fell back because kernel AIO was refused: calls on
/// contexts that are not ours then get the kernel's answer for an unknown
/// context (`-EINVAL`), not the refusal.
static KERNEL_REFUSED: AtomicBool = AtomicBool::new(false);

/// `io_setup` on the engine `LIBAIO_RS_ENGINE` chooses.
///
/// # Safety
/// As [`setup_with`].
pub(crate) unsafe fn setup(maxevents: i32, ctxp: *mut io_context_t) -> i32 {
    // SAFETY: the caller's promise, passed on.
    unsafe { setup_with(config::engine_mode(), maxevents, ctxp) }
}

/// `io_setup` on the engine `mode` names.
///
/// # Safety
/// `ctxp` is the caller's pointer, handed to the kernel or read and written
/// through the kernel's checked copies (never dereferenced here).
pub(crate) unsafe fn setup_with(mode: EngineMode, maxevents: i32, ctxp: *mut io_context_t) -> i32 {
    match mode {
        EngineMode::Threads => {
            warn_unless_reaping("threads");
            return user::setup(maxevents, ctxp, "LIBAIO_RS_ENGINE=threads", &threads::ENGINE);
        }
        EngineMode::IoUring => {
            return match uring::ensure() {
                Ok(()) => {
                    warn_unless_reaping("io_uring");
                    user::setup(maxevents, ctxp, "LIBAIO_RS_ENGINE=io_uring", &uring::ENGINE)
                }
                Err(refused) => {
                    diag::engine_refused("io_uring", refused.why);
                    refused.errno.neg()
                }
            };
        }
        EngineMode::Auto | EngineMode::Kernel => {}
    }
    // SAFETY: the kernel validates both arguments.
    let ret = unsafe { sys::io_setup(maxevents, ctxp) };
    if ret == 0 {
        // SAFETY: the kernel has just written the handle through `ctxp`.
        let ctx = unsafe { *ctxp } as usize;
        // SAFETY: the kernel has just mapped the ring `ctx` names.
        unsafe { registry::register(ctx) };
        diag::engine("kernel", None);
        return 0;
    }
    if mode == EngineMode::Auto {
        let why = match -ret {
            libc::ENOSYS => Some("kernel AIO answered -ENOSYS"),
            libc::EPERM => Some("kernel AIO answered -EPERM"),
            libc::EAGAIN if config::fallback_on_eagain() => {
                Some("kernel AIO answered -EAGAIN (fs.aio-max-nr reached; LIBAIO_RS_FALLBACK_EAGAIN=1)")
            }
            _ => None,
        };
        if let Some(why) = why {
            if !reapers::through_library() {
                diag::no_fallback(why);
                return ret;
            }
            if ret != -libc::EAGAIN {
                KERNEL_REFUSED.store(true, Ordering::Relaxed);
            }
            return match uring::ensure() {
                Ok(()) => user::setup(maxevents, ctxp, why, &uring::ENGINE),
                Err(refused) => {
                    diag::engine_refused("io_uring", refused.why);
                    user::setup(maxevents, ctxp, why, &threads::ENGINE)
                }
            };
        }
    }
    ret
}

/// A user-space engine asked for a program that imports no reaping entry
/// point: it works if the program reads the ring, not if it calls the
/// kernel's `io_getevents` itself. Said once, on stderr, always.
fn warn_unless_reaping(engine: &str) {
    static SAID: AtomicBool = AtomicBool::new(false);
    if !SAID.load(Ordering::Relaxed) && !reapers::through_library() && !SAID.swap(true, Ordering::Relaxed) {
        diag::reaps_on_its_own(engine);
    }
}

/// Whether the kernel's answer `ret` to a call on a context that is not ours
/// is a refusal of kernel AIO itself (no kernel AIO, or a filter), in a
/// process that runs on a user-space engine.
fn refused(ret: i32) -> bool {
    (ret == -libc::ENOSYS || ret == -libc::EPERM)
        && (KERNEL_REFUSED.load(Ordering::Relaxed)
            || matches!(config::engine_mode(), EngineMode::Threads | EngineMode::IoUring))
}

/// The answer of a kernel call on a context that is not ours: where kernel
/// AIO is refused and the program runs on a user-space engine, an unknown
/// context is `-EINVAL`, as the kernel would say.
pub(crate) fn unknown_context(ret: i32) -> i32 {
    if refused(ret) {
        -libc::EINVAL
    } else {
        ret
    }
}

/// Whether `len` bytes at `p` can be read (through the kernel's checked copy).
fn readable(p: usize, len: usize) -> bool {
    let mut buf = [0u8; 16];
    process::pid().is_some_and(|pid| sys::read_user(pid, p, &mut buf[..len]) == len)
}

/// [`unknown_context`] for `io_getevents`/`io_pgetevents`, which the kernel
/// answers in this order: the timeout and the signal-mask pair are read
/// (`-EFAULT`) before the context is looked up (`-EINVAL`).
pub(crate) fn unknown_context_getevents(ret: i32, timeout: usize, sigmask: usize) -> i32 {
    if !refused(ret) {
        return ret;
    }
    if timeout != 0 && !readable(timeout, size_of::<libc::timespec>()) {
        return -libc::EFAULT;
    }
    if sigmask != 0 && !readable(sigmask, 8) {
        return -libc::EFAULT;
    }
    -libc::EINVAL
}

/// [`unknown_context`] for `io_cancel`: the kernel reads the iocb's key
/// (`-EFAULT`) before it looks the context up.
pub(crate) fn unknown_context_cancel(ret: i32, iocb: usize) -> i32 {
    if !refused(ret) {
        return ret;
    }
    if !readable(iocb + user::iocb::KEY_OFFSET, 4) {
        return -libc::EFAULT;
    }
    -libc::EINVAL
}
