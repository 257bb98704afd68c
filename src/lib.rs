//! A Rust drop-in replacement for libaio 0.3.113, the C library through which
//! Linux programs use kernel asynchronous I/O.
//!
//! The C face (`capi`) is a thin layer over a small safe core:
//! - [`abi`]: the `#[repr(C)]` types, the single source of layout truth from
//!   which cbindgen writes `include/libaio.h`;
//! - [`sys`]: the raw system calls, returning the kernel's answer untouched;
//! - [`ring`]: the completion ring, reaped in user space when that is safe;
//! - [`prep`]: filling in requests;
//! - [`config`] and [`diag`]: environment switches and failure explanations.
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

// Unit tests run with std (threads, mmap helpers); the library never does.
#[cfg(test)]
extern crate std;

pub mod abi;
pub mod capi;
pub mod config;
pub mod diag;
pub mod prep;
pub mod ring;
pub mod sys;
pub mod uaccess;
