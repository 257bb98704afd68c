//! The context: set-up, submission, completions, cancellation, destruction.

use super::buffer::{AlignedBuf, IoBuf};
use super::completion::{errno, Completion, SubmitError};
use super::engine::Engine;
use super::request::Request;
use super::table::{Table, MAX_DEPTH};
use crate::abi::{io_context_t, io_event, iocb};
use crate::capi::io as c;
use core::mem::MaybeUninit;
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use std::vec::Vec;

/// Events taken from the engine per `io_getevents` call (on the stack).
const CHUNK: usize = 64;

/// An AIO context: a queue of at most `depth` requests in flight, each
/// owning its buffers and file until its completion is reaped.
///
/// `B` is the buffer type of its requests ([`AlignedBuf`] unless said
/// otherwise). Every request signals the context's eventfd on completion,
/// which [`AsFd`] exposes for epoll, mio or tokio's `AsyncFd`. Dropping the
/// context destroys it, which waits for the requests still in flight; only
/// then are their buffers freed.
///
/// ```
/// use libaio::{AlignedBuf, Context, Request};
/// use std::{io::Write, os::unix::fs::OpenOptionsExt, sync::Arc};
///
/// let path = std::env::temp_dir().join(format!("libaio-doc-{}", std::process::id()));
/// let file = Arc::new(std::fs::OpenOptions::new().read(true).write(true).create(true).open(&path)?);
/// let ctx: Context = Context::new(32)?;
///
/// let mut buf = AlignedBuf::new(4096)?;
/// buf.fill(b'x');
/// ctx.submit(Request::write(&file, buf, 0).with_user_data(1))?;
/// ctx.submit(Request::fsync(&file).with_user_data(2))?; // no ordering promised
/// let mut done = Vec::new();
/// while done.len() < 2 {
///     ctx.wait_into(1, 2, None, &mut done)?;
/// }
/// for c in &done {
///     assert_eq!(*c.result.as_ref().unwrap(), if c.user_data == 1 { 4096 } else { 0 });
/// }
/// let buf = done.into_iter().find_map(|c| c.request.into_buf()).unwrap();
/// ctx.submit(Request::read(&file, buf, 0))?; // the buffer, sent again
/// let c = ctx.wait(1, 1, None)?.pop().unwrap();
/// assert_eq!(c.result?, 4096);
/// assert!(c.request.buf().unwrap().iter().all(|&b| b == b'x'));
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Context<B: IoBuf = AlignedBuf> {
    ctx: usize,
    depth: usize,
    table: Mutex<Table<B>>,
    /// Signalled by every completion (IOCB_FLAG_RESFD).
    eventfd: File,
}

impl<B: IoBuf> Context<B> {
    /// A context for up to `depth` requests in flight, on [`Engine::Auto`]:
    /// the engine `LIBAIO_RS_ENGINE` names, kernel AIO when it is unset.
    ///
    /// ```
    /// let ctx: libaio::Context = libaio::Context::new(128)?;
    /// assert_eq!(ctx.in_flight(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new(depth: usize) -> io::Result<Self> {
        Self::with_engine(depth, Engine::Auto)
    }

    /// A context for up to `depth` requests in flight, on `engine`. Errors
    /// are `io_setup`'s and eventfd's: `EINVAL` for a depth of 0 or one too
    /// large, `EAGAIN` when `fs.aio-max-nr` is reached, `ENOSYS` or `EPERM`
    /// for an engine that is not available here.
    pub fn with_engine(depth: usize, engine: Engine) -> io::Result<Self> {
        if depth == 0 || depth > MAX_DEPTH || i32::try_from(depth).is_err() {
            return Err(errno(libc::EINVAL));
        }
        // SAFETY: eventfd takes two integers and returns a new descriptor or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just opened and is owned by nobody else.
        let eventfd = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        let mut raw: io_context_t = core::ptr::null_mut();
        // SAFETY: `raw` is a valid, writable, zeroed handle for the engine to fill.
        let ret = unsafe { crate::engine::setup_with(engine.mode(), depth as i32, &mut raw) };
        if ret < 0 {
            return Err(errno(-ret));
        }
        Ok(Self {
            ctx: raw as usize,
            depth,
            table: Mutex::new(Table::new(depth as u32, eventfd.as_raw_fd())),
            eventfd,
        })
    }

    fn raw(&self) -> io_context_t {
        self.ctx as io_context_t
    }

    // A panic elsewhere cannot leave the table half-changed (nothing in it
    // panics), so a poisoned lock is used as it is.
    fn lock(&self) -> MutexGuard<'_, Table<B>> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The engine that carries out this context's requests: never `Auto`,
    /// but what `Auto` chose here.
    ///
    /// ```
    /// use libaio::{Context, Engine};
    /// let ctx: Context = Context::with_engine(4, Engine::Threads)?;
    /// assert_eq!(ctx.engine(), Engine::Threads);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn engine(&self) -> Engine {
        // SAFETY: any value is answered; ours is a live context.
        let name = unsafe { crate::capi::info::io_context_engine(self.raw()) };
        if name.is_null() {
            return Engine::Kernel; // unreachable: the context lives while `self` does
        }
        // SAFETY: a static NUL-terminated string of the library's.
        match unsafe { core::ffi::CStr::from_ptr(name) }.to_bytes() {
            b"threads" => Engine::Threads,
            b"io_uring" => Engine::IoUring,
            _ => Engine::Kernel,
        }
    }

    /// The most requests in flight at once.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// Requests submitted whose completions have not been reaped yet.
    pub fn in_flight(&self) -> usize {
        self.lock().in_flight()
    }

    /// Submits one request. On failure the request comes back in the error,
    /// with the engine's errno (`EAGAIN`: the queue is full; `EBADF`: the
    /// file is not open for that; `EINVAL`, ...).
    pub fn submit(&self, req: Request<B>) -> Result<(), SubmitError<B>> {
        let mut t = self.lock();
        let idx = match t.insert(req) {
            Ok(idx) => idx,
            Err(request) => {
                let e = if Table::valid(&request) {
                    libc::EAGAIN
                } else {
                    libc::EINVAL
                };
                return Err(SubmitError {
                    error: errno(e),
                    request,
                });
            }
        };
        let mut p = t.iocb_ptr(idx);
        // SAFETY: `p` is the iocb of a slot holding the request, whose
        // buffers, iovecs and file live in the table until the completion
        // naming this slot is reaped (or the context is destroyed); the lock
        // keeps the iocb unchanged while the engine reads it.
        let ret = unsafe { c::io_submit(self.raw(), 1, &mut p) };
        if ret == 1 {
            return Ok(());
        }
        let e = if ret < 0 { -ret } else { libc::EAGAIN };
        match t.remove(idx) {
            Some(request) => Err(SubmitError {
                error: errno(e),
                request,
            }),
            // Unreachable: the slot was filled under this lock.
            None => Ok(()),
        }
    }

    /// Submits the requests of `reqs`, in order, in as few system calls as
    /// it can. Those taken are removed from the front of `reqs`; returns how
    /// many: fewer than `reqs.len()` when the engine took only part of them
    /// (the rest stay in `reqs`, untouched), or the error when it took none.
    ///
    /// ```
    /// use libaio::{Context, Request};
    /// use std::sync::Arc;
    /// let ctx: Context<Vec<u8>> = Context::new(2)?;
    /// let zero = Arc::new(std::fs::File::open("/dev/zero")?);
    /// let mut reqs: Vec<_> = (0..3).map(|i| Request::read(&zero, vec![1; 8], 0).with_user_data(i)).collect();
    /// assert_eq!(ctx.submit_batch(&mut reqs)?, 2); // depth 2: partial, and said so
    /// assert_eq!(reqs[0].user_data(), 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn submit_batch(&self, reqs: &mut Vec<Request<B>>) -> io::Result<usize> {
        let mut total = 0;
        while !reqs.is_empty() {
            // Arrays on the stack sized to the batch: small batches do not
            // pay for clearing room for 64.
            let step = match reqs.len() {
                0..=4 => self.submit_chunk::<4>(reqs),
                5..=16 => self.submit_chunk::<16>(reqs),
                _ => self.submit_chunk::<CHUNK>(reqs),
            };
            match step {
                Ok((taken, whole)) => {
                    total += taken;
                    if !whole {
                        return Ok(total);
                    }
                }
                Err(e) if total == 0 => return Err(e),
                Err(_) => return Ok(total),
            }
        }
        Ok(total)
    }

    /// One `io_submit` of up to `N` requests from the front of `reqs`:
    /// how many were taken, and whether all that were tried.
    fn submit_chunk<const N: usize>(&self, reqs: &mut Vec<Request<B>>) -> io::Result<(usize, bool)> {
        let mut ptrs = [core::ptr::null_mut::<iocb>(); N];
        let n = {
            let mut t = self.lock();
            let room = reqs.len().min(N).min(t.available());
            let n = reqs.iter().take(room).take_while(|r| Table::valid(r)).count();
            if n == 0 {
                return Err(errno(if room == 0 { libc::EAGAIN } else { libc::EINVAL }));
            }
            for (k, req) in reqs.drain(..n).enumerate() {
                // Cannot fail: `room` slots are free and the request is valid.
                if let Ok(idx) = t.insert(req) {
                    ptrs[k] = t.iocb_ptr(idx);
                }
            }
            n
        };
        // Without the lock, so that reapers need not wait for the system
        // call: a slot filled above is in flight, so no other thread changes
        // or frees it until its completion is reaped, which needs the engine
        // to have read its iocb first.
        // SAFETY: each pointer is the iocb of a slot that holds its request
        // (buffers, iovecs, file) until that completion is reaped or the
        // context destroyed.
        let ret = unsafe { c::io_submit(self.raw(), n as i64, ptrs.as_mut_ptr()) };
        let taken = usize::try_from(ret).unwrap_or(0).min(n);
        if taken < n {
            // Never submitted, so never reaped: still ours to take back, to
            // the front of `reqs`, in their order.
            let mut t = self.lock();
            let back: Vec<_> = ptrs[taken..n]
                .iter()
                .filter_map(|&p| {
                    let i = t.index_of(p)?;
                    t.remove(i)
                })
                .collect();
            reqs.splice(0..0, back);
            if taken == 0 {
                return Err(errno(if ret < 0 { -ret } else { libc::EAGAIN }));
            }
            return Ok((taken, false));
        }
        Ok((n, true))
    }

    /// Waits for at least `min` and takes at most `max` completions, waiting
    /// no longer than `timeout` (`None`: for as long as it takes). Returns
    /// them, maybe fewer than `min` when the timeout expired.
    pub fn wait(&self, min: usize, max: usize, timeout: Option<Duration>) -> io::Result<Vec<Completion<B>>> {
        let mut out = Vec::with_capacity(max.min(self.depth));
        self.wait_into(min, max, timeout, &mut out)?;
        Ok(out)
    }

    /// [`wait`](Self::wait) appending to `out`, which can be kept from call
    /// to call (no allocation once it has room); returns how many were added.
    /// `EINVAL` when `min > max`; `EINTR` when a signal handler ran first.
    /// As with `io_getevents`, a `min` above the requests in flight waits
    /// for the whole timeout (for ever with `None`).
    pub fn wait_into(
        &self,
        min: usize,
        max: usize,
        timeout: Option<Duration>,
        out: &mut Vec<Completion<B>>,
    ) -> io::Result<usize> {
        if min > max {
            return Err(errno(libc::EINVAL));
        }
        let deadline = match timeout {
            Some(d) if max > CHUNK => Instant::now().checked_add(d),
            _ => None,
        };
        let mut got = 0;
        while got < max {
            let n = (max - got).min(CHUNK);
            let want = min.saturating_sub(got).min(n);
            let ts = if got == 0 {
                timeout
            } else if want > 0 {
                deadline.map(|d| d.saturating_duration_since(Instant::now()))
            } else {
                Some(Duration::ZERO)
            };
            let r = match self.reap(want, n, ts, out) {
                Ok(r) => r,
                Err(e) if got == 0 => return Err(e),
                Err(_) => break,
            };
            got += r;
            if r < n {
                break;
            }
        }
        Ok(got)
    }

    /// Completions ready now, without waiting (at most `max`).
    ///
    /// ```
    /// let ctx: libaio::Context = libaio::Context::new(4)?;
    /// assert!(ctx.try_wait(4)?.is_empty());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_wait(&self, max: usize) -> io::Result<Vec<Completion<B>>> {
        self.wait(0, max, Some(Duration::ZERO))
    }

    /// One `io_getevents` call of `min`..=`n` (at most CHUNK) events.
    fn reap(
        &self,
        min: usize,
        n: usize,
        timeout: Option<Duration>,
        out: &mut Vec<Completion<B>>,
    ) -> io::Result<usize> {
        let mut evs = [MaybeUninit::<io_event>::uninit(); CHUNK];
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        let tsp = match timeout {
            Some(d) => {
                ts.tv_sec = libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX);
                ts.tv_nsec = d.subsec_nanos().into();
                &raw mut ts
            }
            None => core::ptr::null_mut(),
        };
        let n = n.min(CHUNK);
        // SAFETY: `evs` has room for `n` events and `tsp` is null or points
        // to `ts`; both outlive the call.
        let r = unsafe { c::io_getevents(self.raw(), min as i64, n as i64, evs.as_mut_ptr().cast(), tsp) };
        if r < 0 {
            return Err(errno(-r));
        }
        let r = (r as usize).min(n);
        if r == 0 {
            return Ok(0);
        }
        let mut t = self.lock();
        out.reserve(r);
        for ev in &evs[..r] {
            // SAFETY: io_getevents wrote its first `r` entries.
            let ev = unsafe { ev.assume_init_read() };
            // Only an event naming a request in flight here is accepted.
            if let Some(request) = t.complete(ev.data as usize, ev.obj as usize) {
                let res = ev.res as i64;
                let result = if res < 0 {
                    Err(errno(-res as i32))
                } else {
                    Ok(res as usize)
                };
                out.push(Completion {
                    user_data: request.user_data,
                    result,
                    request,
                });
            }
        }
        Ok(r)
    }

    /// Asks the engine to cancel the requests in flight that carry
    /// `user_data`; returns how many it agreed to cancel. A cancelled request
    /// still completes (a poll with result 0, or `ECANCELED`), through
    /// [`wait`](Self::wait) as any other. Kernel AIO and the thread engine
    /// cancel polls only; reads and writes run to completion.
    ///
    /// ```
    /// use libaio::{Context, Request};
    /// use std::{sync::Arc, time::Duration};
    /// let ctx: Context<Vec<u8>> = Context::new(4)?;
    /// let (r, _w) = std::os::unix::net::UnixStream::pair()?;
    /// ctx.submit(Request::poll(&Arc::new(r), libc::POLLIN).with_user_data(9))?;
    /// assert_eq!(ctx.cancel(9)?, 1);
    /// let c = ctx.wait(1, 1, Some(Duration::from_secs(5)))?.pop().unwrap();
    /// assert_eq!(c.user_data, 9);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn cancel(&self, user_data: u64) -> io::Result<usize> {
        let t = self.lock();
        let mut cancelled = 0;
        let mut last = None;
        for idx in t.find(user_data) {
            let mut ev = io_event::zeroed();
            // SAFETY: the iocb of a slot in flight, kept alive by the lock
            // held; `ev` outlives the call.
            let r = unsafe { c::io_cancel(self.raw(), t.iocb_ptr(idx), &mut ev) };
            // Since Linux 3.11 the event always comes through the ring, and
            // success is -EINPROGRESS (0 on no kernel this runs on).
            if r == -libc::EINPROGRESS || r == 0 {
                cancelled += 1;
            } else {
                last = Some(-r);
            }
        }
        match (cancelled, last) {
            (0, Some(e)) => Err(errno(e)),
            _ => Ok(cancelled),
        }
    }

    /// Resets the eventfd's count after it was found readable; returns the
    /// count (completions signalled since the last reset), 0 if none.
    /// Completions themselves are taken with [`wait`](Self::wait) or
    /// [`try_wait`](Self::try_wait).
    ///
    /// ```
    /// use libaio::{Context, Request};
    /// use std::{os::fd::AsFd, sync::Arc};
    /// let ctx: Context<Vec<u8>> = Context::new(4)?;
    /// let zero = Arc::new(std::fs::File::open("/dev/zero")?);
    /// ctx.submit(Request::read(&zero, vec![1; 8], 0))?;
    /// // epoll, mio or tokio's AsyncFd would wait for this descriptor.
    /// let mut pfd = libc::pollfd { fd: std::os::fd::AsRawFd::as_raw_fd(&ctx.as_fd()), events: libc::POLLIN, revents: 0 };
    /// assert_eq!(unsafe { libc::poll(&mut pfd, 1, 5000) }, 1);
    /// assert_eq!(ctx.clear_ready()?, 1);
    /// assert_eq!(ctx.try_wait(4)?.len(), 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn clear_ready(&self) -> io::Result<u64> {
        let mut v = [0u8; 8];
        match (&self.eventfd).read(&mut v) {
            Ok(_) => Ok(u64::from_ne_bytes(v)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
            Err(e) => Err(e),
        }
    }
}

impl<B: IoBuf> AsFd for Context<B> {
    /// The eventfd that every completion signals: readable when
    /// completions are ready (then [`clear_ready`](Context::clear_ready) and
    /// [`try_wait`](Context::try_wait)).
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.eventfd.as_fd()
    }
}

impl<B: IoBuf> AsRawFd for Context<B> {
    fn as_raw_fd(&self) -> RawFd {
        self.eventfd.as_raw_fd()
    }
}

impl<B: IoBuf> fmt::Debug for Context<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("ctx", &(self.ctx as *const ()))
            .field("depth", &self.depth)
            .field("eventfd", &self.eventfd.as_raw_fd())
            .finish()
    }
}

impl<B: IoBuf> Drop for Context<B> {
    fn drop(&mut self) {
        // SAFETY: the context is ours and nobody else is using it (`&mut self`).
        let ret = unsafe { c::io_destroy(self.raw()) };
        let table = self.table.get_mut().unwrap_or_else(PoisonError::into_inner);
        if ret != 0 {
            // The engine did not confirm that its requests are over: their
            // memory must outlive us. Leaking is safe; freeing might not be.
            table.leak();
        }
        // Otherwise io_destroy returned after every request completed (kernel
        // AIO since Linux 3.19, and every engine of this library), so the
        // table's buffers and files are dropped with it now.
    }
}
