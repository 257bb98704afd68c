//! What comes back from a context: a finished request with its result, or
//! a request the engine refused, with the reason.

use super::request::Request;
use std::fmt;
use std::io;

/// A finished request: its result and the request itself, buffers and all.
///
/// ```
/// use libaio::{Context, Request};
/// use std::{sync::Arc, time::Duration};
/// let ctx: Context<Vec<u8>> = Context::new(4)?;
/// let file = Arc::new(std::fs::File::open("/dev/zero")?);
/// ctx.submit(Request::read(&file, vec![1u8; 16], 0).with_user_data(3))?;
/// let done = ctx.wait(1, 4, Some(Duration::from_secs(5)))?;
/// let c = &done[0];
/// assert_eq!((c.user_data, c.result.as_ref().ok()), (3, Some(&16)));
/// assert_eq!(c.request.buf().unwrap(), &vec![0u8; 16]);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Completion<B> {
    /// The request's [`user_data`](Request::user_data).
    pub user_data: u64,
    /// Bytes transferred (a poll: the events that fired; a sync: 0), or the
    /// error the engine answered, carrying its errno.
    pub result: io::Result<usize>,
    /// The request, given back with its buffers (filled, for a read) and
    /// its file, to be used or sent again.
    pub request: Request<B>,
}

impl<B> fmt::Debug for Completion<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Completion")
            .field("user_data", &self.user_data)
            .field("result", &self.result)
            .field("request", &self.request)
            .finish()
    }
}

/// A request the context did not take, given back with the reason.
///
/// ```
/// use libaio::{Context, Request};
/// use std::sync::Arc;
/// let ctx: Context<Vec<u8>> = Context::new(1)?;
/// let (r, w) = std::os::unix::net::UnixStream::pair()?;
/// let (r, w) = (Arc::new(r), Arc::new(w));
/// ctx.submit(Request::poll(&r, libc::POLLIN))?; // never ready: stays in flight
/// let e = ctx.submit(Request::write(&w, vec![1], 0)).unwrap_err();
/// assert_eq!(e.error().raw_os_error(), Some(libc::EAGAIN)); // the queue is full
/// let again: Request<Vec<u8>> = e.into_request(); // nothing was lost
/// assert_eq!(again.kind(), "write");
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct SubmitError<B> {
    pub(super) error: io::Error,
    pub(super) request: Request<B>,
}

impl<B> SubmitError<B> {
    /// Why the request was refused (its errno in `raw_os_error`).
    pub fn error(&self) -> &io::Error {
        &self.error
    }
    /// The request, buffers included.
    pub fn into_request(self) -> Request<B> {
        self.request
    }
    /// Both.
    pub fn into_parts(self) -> (io::Error, Request<B>) {
        (self.error, self.request)
    }
}

impl<B> fmt::Debug for SubmitError<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubmitError")
            .field("error", &self.error)
            .field("request", &self.request)
            .finish()
    }
}

impl<B> fmt::Display for SubmitError<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} not submitted: {}", self.request.kind(), self.error)
    }
}

impl<B> std::error::Error for SubmitError<B> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl<B> From<SubmitError<B>> for io::Error {
    fn from(e: SubmitError<B>) -> io::Error {
        e.error
    }
}

/// An `io::Error` from an errno value.
pub(super) fn errno(e: i32) -> io::Error {
    io::Error::from_raw_os_error(e)
}
