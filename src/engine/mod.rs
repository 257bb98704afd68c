//! Engines: who carries out the requests of a context.
//!
//! - kernel AIO (`reap.rs` and the raw system calls): exactly libaio's path;
//! - user-space contexts (`emu`): the context is a ring of ours, laid out as
//!   the kernel's `struct aio_ring`, so programs that read it directly (QEMU,
//!   fio's `userspace_reap`) work unchanged; requests are checked as the
//!   kernel checks them and carried out by an executor:
//!   - `threads`: a bounded pool of worker threads and one poller thread.
//!
//! `LIBAIO_RS_ENGINE` picks the engine of each new context (see `config`);
//! in `auto` mode a context falls back to the thread engine when kernel AIO
//! answers `io_setup` with `ENOSYS` or `EPERM` (no kernel AIO, or a seccomp
//! filter refusing it), and on `EAGAIN` with `LIBAIO_RS_FALLBACK_EAGAIN=1`.
//! The entry points find a user-space context by its address in the registry;
//! every other value goes to the kernel, as before.

pub(crate) mod emu;
pub(crate) mod threads;

use crate::abi::io_context_t;
use crate::config::{self, EngineMode};
use crate::{diag, registry, sys};
use core::sync::atomic::{AtomicBool, Ordering};

/// Set once a context fell back because kernel AIO was refused: calls on
/// contexts that are not ours then get the kernel's answer for an unknown
/// context (`-EINVAL`), not the refusal.
static KERNEL_REFUSED: AtomicBool = AtomicBool::new(false);

/// `io_setup` on the engine `LIBAIO_RS_ENGINE` chooses.
///
/// # Safety
/// `ctxp` is the caller's pointer, handed to the kernel or read and written
/// through the kernel's checked copies (never dereferenced here).
pub(crate) unsafe fn setup(maxevents: i32, ctxp: *mut io_context_t) -> i32 {
    let mode = config::engine_mode();
    if mode == EngineMode::Threads {
        return emu::setup(maxevents, ctxp, "LIBAIO_RS_ENGINE=threads");
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
            if ret != -libc::EAGAIN {
                KERNEL_REFUSED.store(true, Ordering::Relaxed);
            }
            return emu::setup(maxevents, ctxp, why);
        }
    }
    ret
}

/// The answer of a kernel call on a context that is not ours: where kernel
/// AIO is refused and the program runs on a user-space engine, an unknown
/// context is `-EINVAL`, as the kernel would say.
pub(crate) fn unknown_context(ret: i32) -> i32 {
    if (ret == -libc::ENOSYS || ret == -libc::EPERM) && KERNEL_REFUSED.load(Ordering::Relaxed) {
        -libc::EINVAL
    } else {
        ret
    }
}
