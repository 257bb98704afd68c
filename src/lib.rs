//! A Rust drop-in replacement for libaio 0.3.113, the C library through which
//! Linux programs use kernel asynchronous I/O.
//!
//! The C face (`capi`) is a thin layer over a small safe core:
//! - [`abi`]: the `#[repr(C)]` types, the single source of layout truth from
//!   which cbindgen writes `include/libaio.h`;
//! - `sys`: the raw system calls, returning the kernel's answer untouched;
//! - `ring`: the format of the kernel's completion ring;
//! - `registry`: the contexts set up here (which rings may be read at all);
//! - `engine`: who carries out a context's requests: `engine::kernel` (the
//!   gate that keeps the kernel's reader and ours apart, and reaping in user
//!   space on it), `engine::user` with its executors `threads` and `uring`;
//! - `uaccess`: which event arrays the kernel has proved writable;
//! - `sync`: waiting for another thread (futex only);
//! - `prep`: filling in requests;
//! - `config`, `procfs`, `diag`, `explain` and `report`: what is settled at
//!   load, what /proc tells, failures explained, and what the library says
//!   unasked (warnings, the debug banner, the doctor).
//!
//! Only `abi` and `capi` are public: everything else is the library's own.
//!
//! # Safety
//! The exported functions follow libaio's C contract: every result is a count
//! or `-errno`, `errno` is never changed, and pointers from the caller are
//! handed to the kernel as they are, so bad ones get the kernel's `EFAULT` or
//! `EINVAL`. Three things are read in user space, as libaio reads them: the
//! `timeout` of `io_getevents` on a context set up here, `*ctxp` of
//! `io_queue_init`, and the iocbs given to the `io_prep_*` helpers.
//!
//! The crate is `no_std` and allocation-free; the shared object is linked from
//! the `cshim` staticlib, which supplies the panic handler (abort).
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

// Unit tests run with std (threads, mmap helpers), and so does the safe API
// (feature `std`); the C library never does.
#[cfg(any(test, feature = "std"))]
extern crate std;

pub mod abi;
pub mod capi;
pub(crate) mod config;
pub(crate) mod diag;
pub(crate) mod engine;
pub(crate) mod explain;
pub(crate) mod prep;
pub(crate) mod procfs;
pub(crate) mod registry;
pub(crate) mod report;
pub(crate) mod ring;
pub(crate) mod sync;
pub(crate) mod sys;
pub(crate) mod uaccess;

/// The safe Rust API; nothing of it belongs in libaio.h.
///
/// cbindgen:ignore
#[cfg(feature = "std")]
pub mod safe;
#[cfg(feature = "std")]
pub use safe::{AlignedBuf, Completion, Context, Engine, IoBuf, Request, RwFlags, SubmitError};
