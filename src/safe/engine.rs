//! Which engine a context is set up on, as the Rust API names it.

use crate::config::EngineMode;
use std::fmt;

/// Which engine carries out a context's requests.
///
/// ```
/// use libaio::{AlignedBuf, Context, Engine};
/// let ctx: Context = Context::with_engine(8, Engine::Threads)?;
/// assert_eq!(ctx.depth(), 8);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Engine {
    /// What `LIBAIO_RS_ENGINE` says, exactly as for `io_setup` from C: unset
    /// or `auto`, kernel AIO, and where it is refused (`ENOSYS`, `EPERM`),
    /// io_uring, or the thread engine where io_uring is refused too.
    #[default]
    Auto,
    /// Kernel AIO only (whatever `LIBAIO_RS_ENGINE` says).
    Kernel,
    /// The user-space thread engine (whatever `LIBAIO_RS_ENGINE` says).
    Threads,
    /// The io_uring engine: buffered I/O truly asynchronous. Refused with
    /// io_uring's own error where io_uring cannot be used (a seccomp filter,
    /// `kernel.io_uring_disabled`: `EPERM`; too old a kernel: `ENOSYS`).
    IoUring,
}

impl Engine {
    /// The engine a new context is set up on: `Auto` defers to the
    /// environment, the one rule the C entry points follow too.
    pub(super) fn mode(self) -> EngineMode {
        match self {
            Engine::Auto => crate::config::engine_mode(),
            Engine::Kernel => EngineMode::Kernel,
            Engine::Threads => EngineMode::Threads,
            Engine::IoUring => EngineMode::IoUring,
        }
    }

    /// The engine's name as `LIBAIO_RS_ENGINE` and `io_context_engine`
    /// spell it.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Auto => "auto",
            Engine::Kernel => "kernel",
            Engine::Threads => "threads",
            Engine::IoUring => "io_uring",
        }
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
