//! The safe Rust API (feature `std`): Linux AIO without `unsafe`, on every
//! engine of this library (kernel AIO, the thread engine, io_uring).
//!
//! ```
//! use libaio::{AlignedBuf, Context, Request};
//! use std::sync::Arc;
//! let file = Arc::new(std::fs::File::open("/dev/zero")?);
//! let ctx: Context = Context::new(32)?;
//! ctx.submit(Request::read(&file, AlignedBuf::new(4096)?, 0))?;
//! let done = ctx.wait(1, 32, None)?;
//! assert_eq!(done[0].result.as_ref().ok(), Some(&4096));
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Soundness: ownership transfer
//! A [`Request`] owns its buffers ([`AlignedBuf`] or `Vec<u8>`, whose bytes
//! do not move when the value does) and an `Arc` of its file. Submitting it
//! moves it into its [`Context`], which keeps it, with its iocb and iovec
//! array, in a table slot until the completion naming that slot is reaped;
//! the [`Completion`] then gives the request back. So while the kernel may
//! touch a buffer, no one else can reach it, and the file stays open.
//!
//! What could end that early:
//! - dropping the context: `io_destroy` returns only once every request in
//!   flight has completed (kernel AIO since Linux 3.19; the thread engine;
//!   io_uring's destroy is held to the same rule), and only then are the
//!   buffers freed; if it fails, they are leaked instead;
//! - `mem::forget` of the context, or a panic between submit and wait: the
//!   first leaks the context and its requests (memory the kernel may still
//!   write stays allocated for ever), the second drops it as above;
//! - a refused submission gives the request back in [`SubmitError`], and a
//!   partially accepted batch leaves the rest in the caller's vector.
//!
//! A completion is matched to its slot by the token in `iocb.data` (index
//! and generation), checked against the table and the slot's iocb address:
//! nothing from the ring is used as a pointer.
//!
//! The borrow checker refuses a buffer used after it was handed over:
//! ```compile_fail,E0382
//! use libaio::{AlignedBuf, Context, Request};
//! use std::sync::Arc;
//! fn use_after_submit(ctx: &Context, file: &Arc<std::fs::File>) {
//!     let buf = AlignedBuf::new(4096).unwrap();
//!     ctx.submit(Request::read(file, buf, 0)).unwrap();
//!     drop(buf); // error[E0382]: use of moved value: `buf`
//! }
//! ```
//! and one buffer given to two requests in flight:
//! ```compile_fail,E0382
//! use libaio::{AlignedBuf, Context, Request};
//! use std::sync::Arc;
//! fn shared(ctx: &Context, file: &Arc<std::fs::File>) {
//!     let buf = AlignedBuf::new(4096).unwrap();
//!     ctx.submit(Request::read(file, buf, 0)).unwrap();
//!     ctx.submit(Request::write(file, buf, 0)).unwrap(); // error[E0382]
//! }
//! ```
//! Nor can a borrowed buffer, whose owner could free it, be given:
//! ```compile_fail,E0308
//! use libaio::{Context, Request};
//! use std::sync::Arc;
//! fn borrowed(ctx: &Context<Vec<u8>>, file: &Arc<std::fs::File>) {
//!     let mut v = vec![0u8; 512];
//!     ctx.submit(Request::read(file, &mut v, 0)).unwrap(); // error[E0308]
//! }
//! ```
//! Nor a file the request does not keep open:
//! ```compile_fail,E0308
//! use libaio::{AlignedBuf, Context, Request};
//! fn file_not_kept(ctx: &Context, file: &std::fs::File) {
//!     ctx.submit(Request::read(file, AlignedBuf::new(512).unwrap(), 0)).unwrap(); // error[E0308]
//! }
//! ```
//! (The same snippets with the mistake removed compile: see the examples of
//! [`Context`] and [`Request`].)
//!
//! # Completions and readiness
//! [`Context::wait`] blocks for `min`..=`max` completions with a timeout;
//! results are `io::Result<usize>` carrying the engine's errno. Every
//! request signals the context's eventfd (`IOCB_FLAG_RESFD`), exposed by
//! [`AsFd`](std::os::fd::AsFd): register it with epoll, mio or tokio's
//! `AsyncFd`, and on readiness call [`Context::clear_ready`] then
//! [`Context::try_wait`].
//!
//! # Miri
//! The buffer type and the in-flight table (tokens, generations, iocb
//! filling) make no system call, and their unit tests run under Miri
//! (`cargo +nightly miri test --features std --lib safe::`). `Context` itself
//! cannot: every method is a system call (`io_setup`, `eventfd`,
//! `io_submit`, ...) that Miri does not model.

mod buffer;
mod completion;
mod context;
mod engine;
mod request;
mod table;

pub use buffer::{AlignedBuf, IoBuf, DEFAULT_ALIGN, DIRECT_BLOCK};
pub use completion::{Completion, SubmitError};
pub use context::Context;
pub use engine::Engine;
pub use request::{Request, RwFlags};
