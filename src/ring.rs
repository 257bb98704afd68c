//! The kernel's completion ring: `struct aio_ring` followed by `nr`
//! `io_event` slots, at the address `io_setup` hands out as the context.
//!
//! The kernel appends at `tail`; a reader takes events from `head` and moves
//! `head` on. Who may read it, and when, is the registry's business
//! (`registry`, `engine::kernel`); this module only knows the format and how to copy events
//! out of it.

use crate::abi::{aio_ring, io_event, AIO_RING_MAGIC};
use core::mem::{offset_of, size_of};
use core::sync::atomic::{AtomicU32, Ordering};

/// The header of a new, empty ring of `nr` slots, as the kernel writes it.
pub(crate) fn new_header(nr: u32) -> aio_ring {
    aio_ring {
        id: 0,
        nr,
        head: 0,
        tail: 0,
        magic: AIO_RING_MAGIC,
        compat_features: 1,
        incompat_features: 0,
        header_length: size_of::<aio_ring>() as u32,
    }
}

/// The ring size from a header that is the layout we know, else None.
///
/// # Safety
/// `ctx` is a live context's ring (mapped).
pub(crate) unsafe fn known_layout(ctx: usize) -> Option<u32> {
    // SAFETY: the caller guarantees the header is mapped; the kernel wrote
    // these words at setup and never changes them.
    let word = |field| unsafe { header_word(ctx, field) };
    let known = word(offset_of!(aio_ring, magic)) == AIO_RING_MAGIC
        && word(offset_of!(aio_ring, incompat_features)) == 0
        && word(offset_of!(aio_ring, header_length)) as usize == size_of::<aio_ring>();
    let nr = word(offset_of!(aio_ring, nr));
    (known && nr > 0).then_some(nr)
}

/// Whether the header at `ctx` carries the ring's magic (libaio's only test
/// before it reads a timeout in user space).
///
/// # Safety
/// The header at `ctx` is mapped.
pub(crate) unsafe fn has_magic(ctx: usize) -> bool {
    // SAFETY: the caller guarantees the header is mapped.
    unsafe { header_word(ctx, offset_of!(aio_ring, magic)) == AIO_RING_MAGIC }
}

/// libaio's own test for its "empty ring, zero timeout" answer: the magic is
/// right and the raw `head` and `tail` words are equal, whatever `nr` and the
/// indices say (the program may have written them).
///
/// # Safety
/// The header at `ctx` is mapped.
pub(crate) unsafe fn looks_empty(ctx: usize) -> bool {
    // SAFETY: the caller guarantees the header is mapped.
    let word = |field| unsafe { header_word(ctx, field) };
    word(offset_of!(aio_ring, magic)) == AIO_RING_MAGIC
        && word(offset_of!(aio_ring, head)) == word(offset_of!(aio_ring, tail))
}

/// One 32-bit word of the header of the ring at `ctx`, read atomically (the
/// program and the kernel may write the header while we read it).
///
/// # Safety
/// The header at `ctx` is mapped.
unsafe fn header_word(ctx: usize, field: usize) -> u32 {
    let p = (ctx + field) as *mut u32;
    // SAFETY: the caller guarantees the header is mapped; `field` is the
    // offset of a u32 in it (offset_of!), so aligned on a page-aligned ring.
    unsafe { AtomicU32::from_ptr(p) }.load(Ordering::Relaxed)
}

/// The ring of a registered context, while its slot keeps it mapped (a
/// copier holding `USER`, or a peeker).
pub(crate) struct Ring {
    base: *mut u8,
    nr: u32,
}

impl Ring {
    /// # Safety
    /// The ring at `ctx` is mapped, with `nr` slots as the kernel made it,
    /// for as long as the `Ring` is used.
    #[inline(always)]
    pub(crate) unsafe fn open(ctx: usize, nr: u32) -> Option<Ring> {
        // SAFETY: the caller guarantees the header is mapped. The layout was
        // checked whole at registration and the kernel never rewrites it;
        // magic (libaio's own test) and size are checked again because the
        // program can write this memory: a size that is not the one the kernel
        // mapped is never used to index the ring.
        let word = |field| unsafe { header_word(ctx, field) };
        let (magic, now) = (word(offset_of!(aio_ring, magic)), word(offset_of!(aio_ring, nr)));
        (magic == AIO_RING_MAGIC && now == nr && nr > 0).then_some(Ring {
            base: ctx as *mut u8,
            nr,
        })
    }

    /// A ring of ours (a user-space context), whatever its header says now:
    /// the program may write the magic, as the kernel never reads it.
    ///
    /// # Safety
    /// The ring at `ctx` is mapped with `nr` slots for as long as the
    /// `Ring` is used.
    #[inline(always)]
    pub(crate) unsafe fn ours(ctx: usize, nr: u32) -> Ring {
        Ring {
            base: ctx as *mut u8,
            nr,
        }
    }

    fn word(&self, field: usize) -> &AtomicU32 {
        let p = (self.base as usize + field) as *mut u32;
        // SAFETY: `field` is the offset of a 4-byte-aligned u32 inside the
        // header, mapped for as long as `self` (see `open`); we access it only
        // atomically, the kernel with whole-word stores.
        unsafe { AtomicU32::from_ptr(p) }
    }

    pub(crate) fn head(&self) -> &AtomicU32 {
        self.word(offset_of!(aio_ring, head))
    }

    pub(crate) fn tail(&self) -> &AtomicU32 {
        self.word(offset_of!(aio_ring, tail))
    }

    /// `(head, number of events ready)`, or None if the indices are out of range.
    #[inline(always)]
    pub(crate) fn pending(&self) -> Option<(u32, u32)> {
        // Relaxed: the head is written by the holder of the gate's USER or a
        // counted kernel reader, both ordered before this caller by the gate;
        // a peeker only needs some recent value.
        let head = self.head().load(Ordering::Relaxed);
        // Acquire: the kernel writes the event before it moves the tail.
        let tail = self.tail().load(Ordering::Acquire);
        if head >= self.nr || tail >= self.nr {
            return None;
        }
        // (tail - head) mod nr, without a division.
        let ready = if tail >= head {
            tail - head
        } else {
            tail + self.nr - head
        };
        Some((head, ready))
    }

    /// Copies `n` events from `head` (wrapping) into `out`, then moves the head on.
    ///
    /// # Safety
    /// The caller holds `USER` on the ring's gate, `n` events are ready from `head`,
    /// and `out` is writable for `n` events (any alignment).
    #[inline(always)]
    pub(crate) unsafe fn take(&self, head: u32, n: u32, out: *mut io_event) {
        let first = n.min(self.nr - head);
        // The slots follow the header inside the mapped ring.
        let events = self.base.wrapping_add(size_of::<aio_ring>()).cast::<io_event>();
        // SAFETY: slots head..head+first lie inside the ring (head < nr and
        // first <= nr - head); the kernel does not rewrite them until the
        // head passes them; `out` is valid for n >= first events.
        unsafe { copy_events(events.wrapping_add(head as usize), out, first) };
        // SAFETY: slots 0..n-first lie inside the ring (n <= nr), and `out`
        // has room for the n - first events after the first `first`.
        unsafe { copy_events(events, out.wrapping_add(first as usize), n - first) };
        let next = head + n;
        let next = if next >= self.nr { next - self.nr } else { next };
        // Release: our reads of those slots happen before the kernel may reuse them.
        self.head().store(next, Ordering::Release);
    }
}

/// Copies `n` events; a loop of 32-byte moves, cheaper than a call to
/// `memcpy` for the few events a call usually takes.
///
/// # Safety
/// `from` is readable and `to` writable for `n` events, and they do not overlap.
#[inline(always)]
unsafe fn copy_events(from: *const io_event, to: *mut io_event, n: u32) {
    for i in 0..n as usize {
        // SAFETY: i < n: readable, as the caller guarantees; the ring is
        // 8-byte aligned (page-aligned header of 32 bytes).
        let ev = unsafe { from.wrapping_add(i).read() };
        // SAFETY: i < n: writable, as the caller guarantees; the caller's
        // array may not be aligned.
        unsafe { to.wrapping_add(i).write_unaligned(ev) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    /// A ring in plain memory: the header `new_header` writes, then `nr` slots.
    struct Fake {
        mem: Vec<u64>,
    }

    impl Fake {
        fn new(nr: u32) -> Fake {
            let words = (size_of::<aio_ring>() + nr as usize * size_of::<io_event>()) / 8;
            let mut f = Fake {
                mem: std::vec![0u64; words],
            };
            // SAFETY: our buffer holds the header; u64 alignment is enough.
            unsafe { f.mem.as_mut_ptr().cast::<aio_ring>().write(new_header(nr)) };
            f
        }

        fn ctx(&mut self) -> usize {
            self.mem.as_mut_ptr() as usize
        }

        /// Writes event `tag` into slot `i` (as the kernel would).
        fn post(&mut self, i: u32, tag: u64) {
            let mut ev = io_event::zeroed();
            ev.data = tag as usize as *mut _;
            ev.res = i as _;
            let at = self.ctx() + size_of::<aio_ring>() + i as usize * size_of::<io_event>();
            // SAFETY: slot i < nr of our buffer.
            unsafe { (at as *mut io_event).write(ev) };
        }
    }

    #[test]
    fn open_checks_magic_and_size() {
        let mut f = Fake::new(8);
        let ctx = f.ctx();
        // SAFETY: our fake ring, alive for the test.
        let known = unsafe { known_layout(ctx) };
        assert!(known.is_some());
        // SAFETY: as above.
        let right = unsafe { Ring::open(ctx, 8) };
        assert!(right.is_some());
        // SAFETY: as above.
        let wrong = unsafe { Ring::open(ctx, 16) };
        assert!(wrong.is_none(), "a size other than the kernel's");
        // SAFETY: as above.
        let empty = unsafe { looks_empty(ctx) };
        assert!(empty);
        // The program scribbles the magic: no longer ours to read.
        f.mem[2] = 0;
        // SAFETY: as above.
        assert!(unsafe { Ring::open(ctx, 8) }.is_none());
    }

    #[test]
    fn pending_counts_modulo_the_size_and_refuses_wild_indices() {
        let mut f = Fake::new(8);
        let ctx = f.ctx();
        // SAFETY: our fake ring.
        let r = unsafe { Ring::open(ctx, 8) }.expect("open");
        assert_eq!(r.pending(), Some((0, 0)));
        r.head().store(6, Ordering::Relaxed);
        r.tail().store(2, Ordering::Relaxed);
        assert_eq!(r.pending(), Some((6, 4)), "wrapped: 6, 7, 0, 1");
        r.tail().store(8, Ordering::Relaxed);
        assert_eq!(r.pending(), None, "a tail past the ring is never used");
    }

    #[test]
    fn take_copies_across_the_end_and_moves_the_head() {
        let mut f = Fake::new(8);
        for i in 0..8 {
            f.post(i, 100 + u64::from(i));
        }
        let ctx = f.ctx();
        // SAFETY: our fake ring.
        let r = unsafe { Ring::open(ctx, 8) }.expect("open");
        r.head().store(6, Ordering::Relaxed);
        r.tail().store(2, Ordering::Relaxed);
        // An unaligned array, as a caller's may be.
        let mut out = std::vec![0u8; 4 * size_of::<io_event>() + 1];
        let dst = out.as_mut_ptr().wrapping_add(1).cast::<io_event>();
        // SAFETY: 4 events ready from 6; `dst` has room for 4.
        unsafe { r.take(6, 4, dst) };
        let tags: Vec<u64> = (0..4)
            // SAFETY: the 4 events just written, read unaligned.
            .map(|i| unsafe { dst.wrapping_add(i).read_unaligned() }.data as usize as u64)
            .collect();
        assert_eq!(tags, [106, 107, 100, 101]);
        assert_eq!(r.head().load(Ordering::Relaxed), 2);
        assert_eq!(r.pending(), Some((2, 0)));
    }
}
