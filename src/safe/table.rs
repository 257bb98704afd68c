//! The in-flight table: where a context keeps each submitted request (its
//! buffers, its file, its iovec array and its iocb) until the completion that
//! names it is reaped. No system call here, so Miri runs all of it.
//!
//! A request's `iocb.data` is its token: slot index in the low
//! [`INDEX_BITS`] bits, the slot's generation above them. A completion is accepted only when
//! the index is in range, the slot is in flight with that generation, and
//! the event's `obj` is that slot's iocb: nothing read back from the ring is
//! ever used as a pointer.

use super::request::{Op, Request};
use super::IoBuf;
use crate::abi::iocb;
use core::cell::UnsafeCell;
use core::ffi::c_int;
use std::boxed::Box;
use std::vec::Vec;

/// The most iovecs one vectored request may have (the kernel's `UIO_MAXIOV`).
pub(crate) const MAX_IOVECS: usize = 1024;

/// Bits of a token that hold the slot index (`iocb.data` is pointer-sized
/// in the C layout, so a token is a `usize`).
const INDEX_BITS: u32 = if usize::BITS == 64 { 32 } else { 20 };

/// The most slots a table may have.
pub(crate) const MAX_DEPTH: usize = (1 << INDEX_BITS) - 1;

fn token(index: u32, generation: u32) -> usize {
    ((generation as usize) << INDEX_BITS) | index as usize
}

fn untoken(token: usize) -> (u32, u32) {
    let index = (token & MAX_DEPTH) as u32;
    let generation = (token >> INDEX_BITS) as u32;
    (index, generation)
}

struct Slot<B> {
    generation: u32,
    req: Option<Request<B>>,
    /// The iovec array of a vectored request, kept until its completion
    /// (engines may read it after `io_submit` returns); reused afterwards.
    iov: Vec<libc::iovec>,
}

pub(crate) struct Table<B> {
    /// One iocb per slot, never moved or reallocated while the table lives.
    /// In cells: the engine writes `aio_key` into it during `io_submit`.
    iocbs: Box<[UnsafeCell<iocb>]>,
    slots: Box<[Slot<B>]>,
    free: Vec<u32>,
    /// The eventfd every request signals, or -1.
    resfd: c_int,
}

// SAFETY: the raw pointers inside (iocbs, iovecs) point into memory the
// table itself owns (its iocbs, the requests' buffers), which goes wherever
// the table goes; the owned values are Send (B: Send, Request's file is
// Send + Sync). The context uses the table only under its mutex.
unsafe impl<B: Send> Send for Table<B> {}

/// What the engine is told about one request.
#[inline(always)]
fn fill<B: IoBuf>(
    cb: &mut iocb,
    iov: &mut Vec<libc::iovec>,
    req: &mut Request<B>,
    data: usize,
    resfd: c_int,
) {
    let fd = req.fd();
    let offset = req.offset as i64;
    let flags = req.flags.bits() as c_int;
    match &mut req.op {
        Op::Read(b) => {
            let len = b.len();
            cb.prep_pread(fd, b.io_ptr().cast(), len, offset);
            cb.aio_rw_flags = flags as u32;
        }
        Op::Write(b) => {
            let len = b.len();
            cb.prep_pwrite(fd, b.io_ptr().cast(), len, offset);
            cb.aio_rw_flags = flags as u32;
        }
        Op::ReadV(bufs) | Op::WriteV(bufs) => {
            iov.clear();
            iov.extend(bufs.iter_mut().map(|b| libc::iovec {
                iov_len: b.len(),
                iov_base: b.io_ptr().cast(),
            }));
            // At most MAX_IOVECS (checked by `valid` before), so it fits.
            let n = iov.len() as c_int;
            if matches!(req.op, Op::ReadV(_)) {
                cb.prep_preadv2(fd, iov.as_ptr(), n, offset, flags);
            } else {
                cb.prep_pwritev2(fd, iov.as_ptr(), n, offset, flags);
            }
        }
        Op::Fsync => cb.prep_fsync(fd),
        Op::Fdsync => cb.prep_fdsync(fd),
        Op::Poll(ev) => cb.prep_poll(fd, c_int::from(*ev as u16)),
    }
    if resfd >= 0 {
        cb.set_eventfd(resfd);
    }
    // An integer carried through the engine, never dereferenced by anyone.
    cb.data = data as *mut core::ffi::c_void;
}

impl<B: IoBuf> Table<B> {
    /// A table of `depth` (at most [`MAX_DEPTH`]) slots, all free, whose
    /// requests signal `resfd`.
    pub(crate) fn new(depth: u32, resfd: c_int) -> Self {
        let depth = depth.min(MAX_DEPTH as u32);
        let iocbs = (0..depth).map(|_| UnsafeCell::new(iocb::zeroed())).collect();
        let slots = (0..depth)
            .map(|_| Slot {
                generation: 0,
                req: None,
                iov: Vec::new(),
            })
            .collect();
        // Popped from the end: slot 0 first.
        let free = (0..depth).rev().collect();
        Self {
            iocbs,
            slots,
            free,
            resfd,
        }
    }

    /// Free slots.
    #[inline(always)]
    pub(crate) fn available(&self) -> usize {
        self.free.len()
    }

    /// Requests in flight.
    pub(crate) fn in_flight(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Whether the engine could be given `req` as it is: a vectored request
    /// has at most [`MAX_IOVECS`] buffers (the kernel answers `EINVAL` past
    /// that; the check is ours so that a count never exceeds the array).
    pub(crate) fn valid(req: &Request<B>) -> bool {
        match &req.op {
            Op::ReadV(v) | Op::WriteV(v) => v.len() <= MAX_IOVECS,
            _ => true,
        }
    }

    /// Moves `req` into a free slot and fills that slot's iocb; returns the
    /// slot, or gives `req` back when none is free or it is not [`valid`](Self::valid).
    #[inline(always)]
    pub(crate) fn insert(&mut self, req: Request<B>) -> Result<u32, Request<B>> {
        if !Self::valid(&req) {
            return Err(req);
        }
        let Some(idx) = self.free.pop() else {
            return Err(req);
        };
        let i = idx as usize;
        let Some(slot) = self.slots.get_mut(i) else {
            return Err(req); // unreachable: free indices are in range
        };
        // Wraps within the bits a token has for it.
        slot.generation = untoken(token(0, slot.generation.wrapping_add(1))).1;
        let data = token(idx, slot.generation);
        // Moved in first and filled in place: one copy of the request.
        let req = slot.req.insert(req);
        if let Some(cb) = self.iocbs.get_mut(i) {
            fill(cb.get_mut(), &mut slot.iov, req, data, self.resfd);
        }
        Ok(idx)
    }

    /// The iocb of slot `idx`, for `io_submit` and `io_cancel`.
    #[inline(always)]
    pub(crate) fn iocb_ptr(&self, idx: u32) -> *mut iocb {
        self.iocbs
            .get(idx as usize)
            .map_or(core::ptr::null_mut(), UnsafeCell::get)
    }

    /// Takes back the request of slot `idx`, which the engine did not accept.
    #[inline(always)]
    pub(crate) fn remove(&mut self, idx: u32) -> Option<Request<B>> {
        let req = self.slots.get_mut(idx as usize)?.req.take()?;
        self.free.push(idx);
        Some(req)
    }

    /// The request a completion names (its `data` and `obj`), taken out of
    /// the table; None for an event that names no request in flight.
    #[inline(always)]
    pub(crate) fn complete(&mut self, data: usize, obj: usize) -> Option<Request<B>> {
        let (idx, generation) = untoken(data);
        let i = idx as usize;
        let slot = self.slots.get_mut(i)?;
        if slot.generation != generation || self.iocbs.get(i)?.get() as usize != obj {
            return None;
        }
        let req = slot.req.take()?;
        self.free.push(idx);
        Some(req)
    }

    /// The slot whose iocb is at `p`, if any.
    pub(crate) fn index_of(&self, p: *mut iocb) -> Option<u32> {
        let base = self.iocbs.as_ptr() as usize;
        let off = (p as usize).checked_sub(base)?;
        let i = off / core::mem::size_of::<iocb>();
        (off % core::mem::size_of::<iocb>() == 0 && i < self.iocbs.len()).then_some(i as u32)
    }

    /// The slots in flight whose request carries `user_data`.
    pub(crate) fn find(&self, user_data: u64) -> impl Iterator<Item = u32> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(move |(_, s)| s.req.as_ref().is_some_and(|r| r.user_data == user_data))
            .map(|(i, _)| i as u32)
    }

    /// Forgets every request in flight, buffers and files included, and the
    /// iocbs: for when the engine may still use them (a destroy that failed).
    pub(crate) fn leak(&mut self) {
        for slot in self.slots.iter_mut() {
            if let Some(req) = slot.req.take() {
                core::mem::forget(req);
                core::mem::forget(core::mem::take(&mut slot.iov));
            }
        }
        core::mem::forget(core::mem::take(&mut self.iocbs));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::io_iocb_cmd;
    use crate::safe::{AlignedBuf, RwFlags};
    use std::sync::Arc;
    use std::vec;

    /// A file whose descriptor is only written into iocbs, never used (no
    /// system call is made here).
    struct Fake;
    impl std::os::fd::AsFd for Fake {
        fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
            // SAFETY: fd 0 is open for the whole test process, and nothing
            // here does I/O on it or closes it.
            unsafe { std::os::fd::BorrowedFd::borrow_raw(0) }
        }
    }

    fn file() -> Arc<Fake> {
        Arc::new(Fake)
    }

    fn token_of<B: IoBuf>(t: &Table<B>, idx: u32) -> (usize, usize) {
        let p = t.iocb_ptr(idx);
        // SAFETY: the test holds the table; no engine shares the iocb.
        let data = unsafe { (*p).data } as usize;
        (data, p as usize)
    }

    #[test]
    fn insert_fills_and_complete_validates() {
        let f = file();
        let mut t: Table<Vec<u8>> = Table::new(2, 9);
        let mut buf = vec![0u8; 100];
        let p = buf.io_ptr();
        let req = Request::read(&f, buf, 4096)
            .with_user_data(5)
            .with_flags(RwFlags::NOWAIT);
        let i = t.insert(req).unwrap();
        let cb = t.iocbs[i as usize].get_mut();
        assert_eq!(cb.aio_lio_opcode, io_iocb_cmd::IO_CMD_PREAD as i16);
        assert_eq!(cb.aio_fildes, 0);
        assert_eq!(cb.aio_rw_flags, RwFlags::NOWAIT.bits());
        // SAFETY: a read's arguments are in `c`.
        let c = unsafe { cb.u.c };
        assert_eq!((c.buf as *mut u8, c.nbytes, c.offset), (p, 100, 4096));
        assert_eq!((c.flags, c.resfd), (crate::abi::IOCB_FLAG_RESFD, 9));
        assert_eq!(t.in_flight(), 1);

        let (data, obj) = token_of(&t, i);
        assert!(
            t.complete(data ^ (1 << INDEX_BITS), obj).is_none(),
            "stale generation"
        );
        assert!(t.complete(data, obj + 64).is_none(), "another iocb");
        assert!(t.complete(data | 0xffff, obj).is_none(), "index out of range");
        let back = t.complete(data, obj).unwrap();
        assert_eq!(back.user_data(), 5);
        assert!(t.complete(data, obj).is_none(), "delivered once");
        let v = back.into_buf().unwrap();
        assert_eq!(v.as_ptr(), p as *const u8);
        assert_eq!(t.available(), 2);
    }

    #[test]
    fn full_and_reuse_bump_the_generation() {
        let f = file();
        let mut t: Table<Vec<u8>> = Table::new(1, -1);
        let a = t.insert(Request::fsync(&f)).unwrap();
        let (d1, o1) = token_of(&t, a);
        let r = t.insert(Request::fdsync(&f)).unwrap_err();
        assert_eq!(r.kind(), "fdsync");
        t.remove(a).unwrap();
        let b = t.insert(Request::poll(&f, libc::POLLIN)).unwrap();
        assert_eq!(a, b);
        let (d2, o2) = token_of(&t, b);
        assert_eq!(o1, o2);
        assert_ne!(d1, d2);
        assert!(t.complete(d1, o1).is_none(), "the old request's event is refused");
        assert_eq!(t.find(0).count(), 1);
        assert_eq!(t.index_of(t.iocb_ptr(b)), Some(b));
        assert_eq!(t.index_of((o2 + 8) as *mut iocb), None, "not an iocb's start");
        assert_eq!(t.index_of((o2 + 64) as *mut iocb), None, "past the table");
        assert!(t.complete(d2, o2).is_some());
        assert_eq!(t.find(0).count(), 0);
    }

    #[test]
    fn vectored_keeps_its_iovecs() {
        let f = file();
        let mut t: Table<AlignedBuf> = Table::new(4, -1);
        let bufs = vec![AlignedBuf::new(512).unwrap(), AlignedBuf::new(1024).unwrap()];
        let ptrs: std::vec::Vec<_> = bufs.iter().map(|b| b.as_ptr()).collect();
        let i = t.insert(Request::writev(&f, bufs, 0)).unwrap();
        let slot = &t.slots[i as usize];
        assert_eq!(slot.iov.len(), 2);
        assert_eq!(slot.iov[1].iov_len, 1024);
        assert_eq!(slot.iov[0].iov_base as *const u8, ptrs[0]);
        // SAFETY: vectored arguments are in `v`.
        let v = unsafe { t.iocbs[i as usize].get_mut().u.v };
        assert_eq!((v.vec, v.nr), (slot.iov.as_ptr(), 2));
        let too_many = (0..=MAX_IOVECS).map(|_| AlignedBuf::new(0).unwrap()).collect();
        assert!(t.insert(Request::readv(&f, too_many, 0)).is_err());
        let back = t.remove(i).unwrap().into_bufs();
        assert_eq!(back[1].as_ptr(), ptrs[1]);
    }

    // Leaks on purpose, which Miri's leak check would report.
    #[test]
    #[cfg_attr(miri, ignore)]
    fn leak_forgets_everything() {
        let f = file();
        let mut t: Table<Vec<u8>> = Table::new(2, -1);
        t.insert(Request::write(&f, vec![1; 8], 0)).unwrap();
        t.leak();
        assert_eq!(t.iocb_ptr(0), core::ptr::null_mut());
        // The request's buffer and file reference are leaked, not freed.
        assert_eq!(Arc::strong_count(&f), 2);
    }
}
