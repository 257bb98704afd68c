//! The kernel AIO engine: libaio's own path, plus reaping in user space.
//!
//! - [`gate`]: the exclusion between the kernel's reader of a ring and ours;
//! - [`reap`]: `io_getevents`/`io_destroy` on that protocol, taking ready
//!   completions from the ring without a system call when it is safe.
//!
//! The contexts themselves (which rings may be read at all) are the
//! registry's (`crate::registry`); the system calls are `sys::aio`'s.

pub(crate) mod gate;
pub(crate) mod reap;
