//! Requests: what to do, on which file, with which buffers, all owned.

use super::buffer::IoBuf;
use std::fmt;
use std::ops::{BitOr, BitOrAssign};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::sync::Arc;
use std::vec::Vec;

/// `RWF_*` flags of a read or write (`preadv2(2)`): given to the engine with
/// the request, and checked by it (`EOPNOTSUPP` for flags it does not know).
///
/// ```
/// use libaio::RwFlags;
/// let f = RwFlags::DSYNC | RwFlags::HIPRI;
/// assert_eq!(f.bits(), (libc::RWF_DSYNC | libc::RWF_HIPRI) as u32);
/// assert!(f.contains(RwFlags::DSYNC));
/// assert_eq!(RwFlags::default(), RwFlags::NONE);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RwFlags(u32);

impl RwFlags {
    /// No flag.
    pub const NONE: Self = Self(0);
    /// `RWF_HIPRI`: high-priority request, polled where the device can.
    pub const HIPRI: Self = Self(libc::RWF_HIPRI as u32);
    /// `RWF_DSYNC`: per-request `O_DSYNC`.
    pub const DSYNC: Self = Self(libc::RWF_DSYNC as u32);
    /// `RWF_SYNC`: per-request `O_SYNC`.
    pub const SYNC: Self = Self(libc::RWF_SYNC as u32);
    /// `RWF_NOWAIT`: fail with `EAGAIN` rather than block.
    pub const NOWAIT: Self = Self(libc::RWF_NOWAIT as u32);
    /// `RWF_APPEND`: per-request `O_APPEND`.
    pub const APPEND: Self = Self(libc::RWF_APPEND as u32);

    /// Flags from their raw value, unchecked here (the engine checks them).
    pub const fn from_bits(bits: u32) -> Self {
        Self(bits)
    }
    /// The raw value.
    pub const fn bits(self) -> u32 {
        self.0
    }
    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for RwFlags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl BitOrAssign for RwFlags {
    fn bitor_assign(&mut self, rhs: Self) {
        self.0 |= rhs.0;
    }
}

impl fmt::Debug for RwFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RwFlags({:#x})", self.0)
    }
}

/// What a request does, with the buffers it owns.
pub(crate) enum Op<B> {
    Read(B),
    Write(B),
    ReadV(Vec<B>),
    WriteV(Vec<B>),
    Fsync,
    Fdsync,
    Poll(i16),
}

/// The file a request works on, kept open until the request has completed.
pub(crate) type SharedFd = Arc<dyn AsFd + Send + Sync>;

/// One I/O request. It owns its buffers and a reference to its file: handed
/// to [`Context::submit`](crate::Context::submit), it belongs to the context
/// until its completion gives it back, buffers included, in
/// [`Completion::request`](crate::Completion::request).
///
/// ```
/// use libaio::{AlignedBuf, Request, RwFlags};
/// use std::sync::Arc;
/// let file = Arc::new(std::fs::File::open("/dev/zero")?);
/// let mut req = Request::read(&file, AlignedBuf::new(4096)?, 0)
///     .with_flags(RwFlags::NOWAIT)
///     .with_user_data(7);
/// assert_eq!(req.user_data(), 7);
/// req.set_offset(8192);
/// let buf: AlignedBuf = req.into_buf().unwrap();
/// assert_eq!(buf.len(), 4096);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Request<B> {
    pub(crate) fd: SharedFd,
    pub(crate) op: Op<B>,
    pub(crate) offset: u64,
    pub(crate) flags: RwFlags,
    pub(crate) user_data: u64,
}

impl<B: IoBuf> Request<B> {
    fn new<F: AsFd + Send + Sync + 'static>(file: &Arc<F>, op: Op<B>, offset: u64) -> Self {
        let fd: SharedFd = file.clone();
        Self {
            fd,
            op,
            offset,
            flags: RwFlags::NONE,
            user_data: 0,
        }
    }

    /// Reads `buf.len()` bytes at `offset` into `buf` (`IOCB_CMD_PREAD`).
    pub fn read<F: AsFd + Send + Sync + 'static>(file: &Arc<F>, buf: B, offset: u64) -> Self {
        Self::new(file, Op::Read(buf), offset)
    }

    /// Writes `buf` at `offset` (`IOCB_CMD_PWRITE`).
    pub fn write<F: AsFd + Send + Sync + 'static>(file: &Arc<F>, buf: B, offset: u64) -> Self {
        Self::new(file, Op::Write(buf), offset)
    }

    /// Reads at `offset` into `bufs`, one after the other (`IOCB_CMD_PREADV`).
    pub fn readv<F: AsFd + Send + Sync + 'static>(file: &Arc<F>, bufs: Vec<B>, offset: u64) -> Self {
        Self::new(file, Op::ReadV(bufs), offset)
    }

    /// Writes `bufs`, one after the other, at `offset` (`IOCB_CMD_PWRITEV`).
    pub fn writev<F: AsFd + Send + Sync + 'static>(file: &Arc<F>, bufs: Vec<B>, offset: u64) -> Self {
        Self::new(file, Op::WriteV(bufs), offset)
    }

    /// `fsync(2)` of the file (`IOCB_CMD_FSYNC`).
    pub fn fsync<F: AsFd + Send + Sync + 'static>(file: &Arc<F>) -> Self {
        Self::new(file, Op::Fsync, 0)
    }

    /// `fdatasync(2)` of the file (`IOCB_CMD_FDSYNC`).
    pub fn fdsync<F: AsFd + Send + Sync + 'static>(file: &Arc<F>) -> Self {
        Self::new(file, Op::Fdsync, 0)
    }

    /// Waits until the file is ready for `events` (`libc::POLLIN`, ...); the
    /// completion's result is the mask of the events that fired
    /// (`IOCB_CMD_POLL`).
    pub fn poll<F: AsFd + Send + Sync + 'static>(file: &Arc<F>, events: i16) -> Self {
        Self::new(file, Op::Poll(events), 0)
    }
}

impl<B> Request<B> {
    /// Sets the `RWF_*` flags (reads and writes; ignored by other requests).
    pub fn with_flags(mut self, flags: RwFlags) -> Self {
        self.flags = flags;
        self
    }

    /// Sets the value the completion carries back.
    pub fn with_user_data(mut self, user_data: u64) -> Self {
        self.user_data = user_data;
        self
    }

    /// The value the completion carries back.
    pub fn user_data(&self) -> u64 {
        self.user_data
    }

    /// Changes the value the completion carries back.
    pub fn set_user_data(&mut self, user_data: u64) {
        self.user_data = user_data;
    }

    /// The file offset of a read or write.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Changes the file offset (to send the request again elsewhere).
    pub fn set_offset(&mut self, offset: u64) {
        self.offset = offset;
    }

    /// The `RWF_*` flags.
    pub fn flags(&self) -> RwFlags {
        self.flags
    }

    /// The file descriptor the request works on.
    pub fn fd(&self) -> RawFd {
        self.fd.as_fd().as_raw_fd()
    }

    /// The buffer of a plain read or write.
    pub fn buf(&self) -> Option<&B> {
        match &self.op {
            Op::Read(b) | Op::Write(b) => Some(b),
            _ => None,
        }
    }

    /// The buffer of a plain read or write, to fill or change before it is
    /// sent again.
    pub fn buf_mut(&mut self) -> Option<&mut B> {
        match &mut self.op {
            Op::Read(b) | Op::Write(b) => Some(b),
            _ => None,
        }
    }

    /// The buffers of a vectored read or write.
    pub fn bufs(&self) -> &[B] {
        match &self.op {
            Op::ReadV(v) | Op::WriteV(v) => v,
            _ => &[],
        }
    }

    /// Gives the buffer of a plain read or write back (None for others).
    pub fn into_buf(self) -> Option<B> {
        match self.op {
            Op::Read(b) | Op::Write(b) => Some(b),
            _ => None,
        }
    }

    /// Gives the buffers of a vectored read or write back (empty for others).
    pub fn into_bufs(self) -> Vec<B> {
        match self.op {
            Op::ReadV(v) | Op::WriteV(v) => v,
            _ => Vec::new(),
        }
    }

    /// The name of the operation, for messages.
    pub fn kind(&self) -> &'static str {
        match self.op {
            Op::Read(_) => "read",
            Op::Write(_) => "write",
            Op::ReadV(_) => "readv",
            Op::WriteV(_) => "writev",
            Op::Fsync => "fsync",
            Op::Fdsync => "fdsync",
            Op::Poll(_) => "poll",
        }
    }
}

impl<B> fmt::Debug for Request<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("kind", &self.kind())
            .field("fd", &self.fd())
            .field("offset", &self.offset)
            .field("flags", &self.flags)
            .field("user_data", &self.user_data)
            .finish()
    }
}
