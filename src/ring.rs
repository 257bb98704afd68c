//! The kernel's completion ring, and reaping it from user space.
//!
//! `io_setup` hands out the address where the kernel mapped `struct aio_ring`
//! followed by `nr` `io_event` slots. The kernel appends at `tail`; a reader
//! takes events from `head` and moves `head` on. The kernel's own
//! `io_getevents` is such a reader, and it takes no lock that user space can
//! see, so a user-space reader and a kernel reader running at once on one
//! context can both take the same events, or lose some.
//!
//! # The protocol
//!
//! Each context this process set up through us has a [`Slot`] whose state
//! word says who may touch the ring's head:
//! - `LIVE`: the slot holds a context the kernel still has;
//! - `USER`: one thread is reaping in user space. It is taken only when the
//!   state is exactly `LIVE` (nobody in the kernel, nobody peeking, no
//!   destroy), and while it is held nobody else changes the state, so it is
//!   let go with a plain store;
//! - the low bits count the threads inside the kernel's `io_getevents` on this
//!   context. A thread enters the kernel only as a counted reader of a `LIVE`
//!   slot (it waits while `USER` is held), so the kernel's reader and ours
//!   never run at once: every event is delivered exactly once;
//! - `PEEK` units count threads that only read the indices (the zero-timeout,
//!   empty-ring answer while others are in the kernel);
//! - `DEAD`: `io_destroy` is under way. No new reap or peek may start (the
//!   kernel is about to unmap the ring); counted readers still may, and are
//!   woken by the kernel. Once the kernel has destroyed the context `LIVE` is
//!   cleared, and whoever sees the slot empty last (the destroyer or the last
//!   reader leaving the kernel) frees it, so `io_destroy` never waits for a
//!   reader. A second `io_destroy` of the same context waits for the first's
//!   outcome, then asks the kernel (which answers `-EINVAL`).
//!
//! With `LIBAIO_RS_REAP=0` nobody in the process reaps in user space, and
//! kernel readers go uncounted: the calls cost what libaio's cost.
//!
//! Contexts we did not set up (a raw `io_setup` syscall, a garbage value) have
//! no slot and always go to the kernel: their memory is never read. The slots
//! live in a page the kernel wipes in a forked child (`MADV_WIPEONFORK`),
//! whichever way the child was made: the child's kernel has no contexts, but
//! the parent's rings stay mapped (shared) there, and reaping them would steal
//! the parent's completions. Where the page cannot be so marked, nothing is
//! registered and every call goes to the kernel.
//!
//! A thread must not call `io_getevents` or `io_destroy` from a signal handler
//! that interrupted the same context's user-space reap on that thread (a copy
//! of at most `nr` events): it would wait for itself. `LIBAIO_RS_REAP=0` turns
//! user-space reaping off for such programs.

use crate::abi::{aio_ring, io_context_t, io_event, AIO_RING_MAGIC};
use crate::{config, sys};
use core::ffi::c_long;
use core::mem::{offset_of, size_of};
use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize, Ordering};

/// The slot holds a context that the kernel still has.
const LIVE: u32 = 1 << 31;
/// A thread is copying events out of the ring in user space (exclusive).
const USER: u32 = 1 << 30;
/// `io_destroy` is under way: no new user-space reap or peek.
const DEAD: u32 = 1 << 29;
/// One thread only looking at the ring's indices (shared; holds `io_destroy` off).
const PEEK: u32 = 1 << 16;
/// Bits 16..29: threads peeking at the ring.
const PEEKERS: u32 = DEAD - PEEK;
/// Bits 0..16: threads inside the kernel's `io_getevents`/`io_pgetevents`.
const READERS: u32 = PEEK - 1;

/// Slots in the registry (one cache line each, after the lock's line: 16 KiB).
const NSLOTS: usize = 255;
/// How many slots from its home a context may sit: bounds the search for an
/// unknown context. More contexts than fit still work, through the kernel
/// (see the README: only libaio's empty-ring shortcut is lost for them).
const PROBE: usize = 16;

/// One registered context. All zero is a free slot.
#[repr(C, align(64))]
struct Slot {
    /// The context (ring address), 0 when free.
    ctx: AtomicUsize,
    /// `LIVE | USER | DEAD | peekers | readers`.
    state: AtomicU32,
    /// The ring's size as the kernel wrote it at setup: every index is checked
    /// against it, whatever the (user-writable) header says later.
    nr: AtomicU32,
}

/// The registry: four pages, zero-filled in a forked child.
#[repr(C, align(64))]
struct Table {
    /// Serialises registration (io_setup, rare); 0 is unlocked.
    lock: AtomicU32,
    slots: [Slot; NSLOTS],
}

const TABLE_BYTES: usize = size_of::<Table>();
const _: () = assert!(TABLE_BYTES == 16384);

/// The registry page, mapped by the first `io_setup` and never unmapped.
static TABLE: AtomicPtr<Table> = AtomicPtr::new(ptr::null_mut());

fn table() -> Option<&'static Table> {
    let t = TABLE.load(Ordering::Acquire);
    // SAFETY: a non-null TABLE points to a zero-initialised, page-aligned
    // mapping of TABLE_BYTES that is never unmapped; Table is atomics only, for
    // which all-zero is a valid value.
    unsafe { t.as_ref() }
}

fn table_or_map() -> Option<&'static Table> {
    if let Some(t) = table() {
        return Some(t);
    }
    let page = sys::map_anonymous(TABLE_BYTES)?;
    if !sys::wipe_on_fork(page, TABLE_BYTES) {
        // SAFETY: our own fresh mapping, never published.
        unsafe { sys::unmap(page, TABLE_BYTES) };
        return None;
    }
    match TABLE.compare_exchange(ptr::null_mut(), page.cast(), Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => table(),
        Err(_) => {
            // Another thread mapped one first.
            // SAFETY: our own fresh mapping, never published.
            unsafe { sys::unmap(page, TABLE_BYTES) };
            table()
        }
    }
}

/// Spins a little, then gives the CPU away (the other party may be preempted).
fn backoff(spins: &mut u32) {
    if *spins < 64 {
        *spins += 1;
        core::hint::spin_loop();
    } else {
        sys::sched_yield();
    }
}

/// Where the search for `ctx` starts. Rings are page-aligned and the kernel
/// maps them next to each other, so the page numbers are scattered with a
/// multiplicative (Fibonacci) hash: consecutive pages in consecutive slots
/// would pile into one run that the bounded probe cannot get past.
fn home(ctx: usize) -> usize {
    let page = (ctx >> 12) as u64;
    (page.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize % NSLOTS
}

impl Table {
    fn probe(&self, ctx: usize) -> impl Iterator<Item = &Slot> {
        let h = home(ctx);
        (0..PROBE).map(move |i| &self.slots[(h + i) % NSLOTS])
    }

    fn find(&self, ctx: usize) -> Option<&Slot> {
        if ctx == 0 {
            return None;
        }
        self.probe(ctx).find(|s| s.ctx.load(Ordering::Acquire) == ctx)
    }

    fn lock(&self) {
        let mut spins = 0;
        while self
            .lock
            .compare_exchange_weak(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            backoff(&mut spins);
        }
    }

    fn unlock(&self) {
        self.lock.store(0, Ordering::Release);
    }
}

fn find(ctx: usize) -> Option<&'static Slot> {
    table()?.find(ctx)
}

impl Slot {
    /// Makes the slot free again. Called once, by whoever saw it empty last.
    fn free(&self) {
        self.ctx.store(0, Ordering::Relaxed);
        self.nr.store(0, Ordering::Relaxed);
        self.state.store(0, Ordering::Release);
    }

    /// Takes a counted kernel reader off; frees the slot if it was the last
    /// one of a destroyed context.
    fn leave_kernel(&self) {
        let prev = self.state.fetch_sub(1, Ordering::AcqRel);
        if prev & READERS == 1 && prev & LIVE == 0 {
            self.free();
        }
    }

    /// Runs `syscall` as a counted kernel reader (the caller has counted itself in).
    fn in_kernel(&self, syscall: impl FnOnce() -> i32) -> i32 {
        let ret = syscall();
        self.leave_kernel();
        ret
    }
}

/// The ring size from a header that is the layout we know, else None.
///
/// # Safety
/// `ctx` is a live context's ring (mapped).
unsafe fn known_layout(ctx: usize) -> Option<u32> {
    let hdr = ctx as *const aio_ring;
    // SAFETY: the caller guarantees the header is mapped; the kernel wrote
    // these words at setup and never changes them.
    let (magic, incompat, hlen, nr) = unsafe {
        (
            ptr::read_volatile(&raw const (*hdr).magic),
            ptr::read_volatile(&raw const (*hdr).incompat_features),
            ptr::read_volatile(&raw const (*hdr).header_length),
            ptr::read_volatile(&raw const (*hdr).nr),
        )
    };
    let known = magic == AIO_RING_MAGIC && incompat == 0 && hlen as usize == size_of::<aio_ring>();
    (known && nr > 0).then_some(nr)
}

/// Records a context that `io_setup` just created, when its ring is the
/// layout we know and there is room.
pub fn register(ctx: io_context_t) {
    let ctx = ctx as usize;
    if ctx == 0 {
        return;
    }
    if !config::own_syscalls() {
        return; // under seccomp: libaio's system calls only, so no registry
    }
    // SAFETY: the kernel has just mapped this ring for us.
    let Some(nr) = (unsafe { known_layout(ctx) }) else {
        return;
    };
    let Some(table) = table_or_map() else {
        return;
    };
    table.lock();
    if let Some(old) = table.find(ctx) {
        // A slot for this address outlived its context (destroyed behind our
        // back, by a raw syscall). Same size: it describes the new ring as well.
        // Otherwise no ring matches its size any more: kernel only, for ever.
        if old.nr.load(Ordering::Relaxed) != nr {
            old.nr.store(0, Ordering::Relaxed);
        }
    } else if let Some(s) = table.probe(ctx).find(|s| s.state.load(Ordering::Acquire) == 0) {
        s.ctx.store(ctx, Ordering::Relaxed);
        s.nr.store(nr, Ordering::Relaxed);
        // Publishes ctx and nr with the state that lets them be used.
        s.state.store(LIVE, Ordering::Release);
    }
    table.unlock();
}

/// The part of `io_destroy` around the syscall: stop user-space reaping before
/// the kernel unmaps the ring, and forget the context once it is gone.
pub fn destroy(ctx: io_context_t, syscall: impl FnOnce() -> i32) -> i32 {
    let ctx = ctx as usize;
    let mut spins = 0;
    let slot = 'found: loop {
        let Some(slot) = find(ctx) else {
            return syscall();
        };
        loop {
            let s = slot.state.load(Ordering::Relaxed);
            if s & LIVE == 0 {
                // Gone: the kernel answers -EINVAL.
                return syscall();
            }
            if s & (USER | DEAD) != 0 {
                // A copy of at most nr events (USER must not be disturbed), or
                // another thread's destroy, whose outcome decides ours.
                backoff(&mut spins);
                continue;
            }
            if slot
                .state
                .compare_exchange_weak(s, s | DEAD, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                break;
            }
        }
        // LIVE and DEAD: nobody frees the slot now, so its ctx is stable.
        if slot.ctx.load(Ordering::Relaxed) == ctx {
            break 'found slot;
        }
        // The slot was freed and reused between find and here: look again.
        slot.state.fetch_and(!DEAD, Ordering::Release);
    };
    // No new peeker can start; let the running ones finish reading the ring.
    while slot.state.load(Ordering::Acquire) & PEEKERS != 0 {
        backoff(&mut spins);
    }
    let ret = syscall();
    if ret < 0 && ret != -libc::EINVAL {
        // Refused (a seccomp filter, say): the context lives on.
        slot.state.fetch_and(!DEAD, Ordering::Release);
        return ret;
    }
    // Destroyed, or unknown to the kernel (destroyed behind our back): either
    // way no ring is left to read. Readers still in the kernel were woken and
    // leave by themselves; the last one out frees the slot.
    let prev = slot.state.fetch_and(!LIVE, Ordering::AcqRel);
    if prev & READERS == 0 {
        slot.free();
    }
    ret
}

/// The ring of a registered context, while `USER` or `PEEK` is held on its slot.
struct Ring {
    base: *mut u8,
    nr: u32,
}

impl Ring {
    /// # Safety
    /// The caller holds `USER` or `PEEK` on a slot holding `ctx`, whose ring
    /// has `nr` slots; so the ring is mapped.
    #[inline(always)]
    unsafe fn open(ctx: usize, nr: u32) -> Option<Ring> {
        let hdr = ctx as *const aio_ring;
        // SAFETY: the caller guarantees the header is mapped. The layout was
        // checked whole at registration and the kernel never rewrites it;
        // magic (libaio's own test) and size are checked again because the
        // program can write this memory: a size that is not the one the kernel
        // mapped is never used to index the ring.
        let (magic, now) = unsafe {
            (
                ptr::read_volatile(&raw const (*hdr).magic),
                ptr::read_volatile(&raw const (*hdr).nr),
            )
        };
        (magic == AIO_RING_MAGIC && now == nr && nr > 0).then_some(Ring {
            base: ctx as *mut u8,
            nr,
        })
    }

    fn word(&self, field: usize) -> &AtomicU32 {
        // SAFETY: `field` is the offset of a 4-byte-aligned u32 inside the
        // mapped header (see the callers); the kernel writes it with plain
        // stores of the whole word, which an atomic load observes whole.
        unsafe { AtomicU32::from_ptr(self.base.add(field).cast::<u32>()) }
    }

    fn head(&self) -> &AtomicU32 {
        self.word(offset_of!(aio_ring, head))
    }

    fn tail(&self) -> &AtomicU32 {
        self.word(offset_of!(aio_ring, tail))
    }

    /// `(head, number of events ready)`, or None if the indices are out of range.
    #[inline(always)]
    fn pending(&self) -> Option<(u32, u32)> {
        // Relaxed: only the holder of USER (or a counted kernel reader, which
        // cannot run now) writes the head, and taking USER or PEEK acquired it.
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
    /// The caller holds `USER` on the slot, `n` events are ready from `head`,
    /// and `out` is writable for `n` events (any alignment).
    #[inline(always)]
    unsafe fn take(&self, head: u32, n: u32, out: *mut io_event) {
        let first = n.min(self.nr - head);
        // SAFETY: slots head..head+first and 0..n-first lie inside the mapped
        // ring (nr slots after the header); the kernel does not rewrite them
        // until the head passes them; `out` is valid for n events.
        unsafe {
            let events = self.base.add(size_of::<aio_ring>()).cast::<io_event>();
            copy_events(events.add(head as usize), out, first);
            copy_events(events, out.add(first as usize), n - first);
        }
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
        // SAFETY: i < n, as the caller guarantees; the ring is 8-byte aligned
        // (page-aligned header of 32 bytes), the caller's array may not be.
        unsafe { to.add(i).write_unaligned(from.add(i).read()) };
    }
}

/// What `io_getevents`/`io_pgetevents` were asked for.
pub struct Request {
    /// The context.
    pub ctx: io_context_t,
    /// Fewest events wanted.
    pub min_nr: c_long,
    /// Most events wanted.
    pub nr: c_long,
    /// Where to put them.
    pub events: *mut io_event,
    /// The caller's timeout (NULL waits for ever).
    pub timeout: *mut libc::timespec,
}

impl Request {
    fn zero_timeout(&self) -> bool {
        if self.timeout.is_null() {
            return false;
        }
        // SAFETY: libaio reads the timeout of a live context in user space
        // too, so a bad pointer here fails exactly where libaio's does.
        let t = unsafe { ptr::read_unaligned(self.timeout) };
        t.tv_sec == 0 && t.tv_nsec == 0
    }

    /// Whether `events` can take `n` events from user space (else the kernel
    /// handles the call and answers EFAULT for a bad array, as for libaio).
    fn events_writable(&self, n: u32, ring_nr: u32) -> bool {
        let ev = size_of::<io_event>();
        let whole = (self.nr.max(0) as usize).min(ring_nr as usize);
        crate::uaccess::writable(self.events.cast(), n as usize * ev, whole * ev)
    }
}

/// What a user-space reap decided.
enum Reap {
    /// The call's answer: a count or -errno.
    Done(i32),
    /// The kernel must answer (wait, or report EFAULT).
    Kernel,
}

/// `io_getevents` for every caller: answered from the ring when it can be,
/// by `syscall` otherwise. `reap` says whether this call may take events from
/// the ring (libaio's empty-ring, zero-timeout answer is given either way).
///
/// # Safety
/// `req` holds the caller's arguments unchanged; `syscall` makes the kernel call.
pub unsafe fn getevents(req: &Request, reap: bool, syscall: impl FnOnce() -> i32) -> i32 {
    let ctx = req.ctx as usize;
    let Some(mut slot) = find(ctx) else {
        return syscall();
    };
    // Read once, for a context of ours only (libaio reads it only for a ring it can read).
    let zero = req.zero_timeout();
    // Kernel readers must be counted unless no call in this process ever
    // reaps in user space (a call that may not reap itself, such as one with a
    // signal mask, still runs beside others that do).
    let counted = config::user_reap();
    let mut peeked = false;
    let mut spins = 0;
    loop {
        let s = slot.state.load(Ordering::Relaxed);
        if s & LIVE == 0 {
            // Destroyed: while the slot still names it, no other slot can
            // (register reuses a slot that names its address), so nobody reaps
            // it in user space and the kernel answers (-EINVAL). While readers
            // are still leaving, join them counted: the slot then cannot be
            // freed and given to a new ring at this address while this call is
            // in the kernel. A slot freed or reused since it was found says
            // nothing: look again.
            if s & READERS != 0 {
                if slot
                    .state
                    .compare_exchange(s, s + 1, Ordering::Acquire, Ordering::Relaxed)
                    .is_err()
                {
                    continue;
                }
                if slot.ctx.load(Ordering::Relaxed) == ctx {
                    return slot.in_kernel(syscall);
                }
                slot.leave_kernel();
            } else if slot.ctx.load(Ordering::Relaxed) == ctx {
                return syscall();
            }
            let Some(again) = find(ctx) else {
                return syscall();
            };
            slot = again;
            continue;
        }
        if s & USER != 0 {
            backoff(&mut spins);
            continue;
        }
        if s == LIVE && reap {
            if slot
                .state
                .compare_exchange(LIVE, LIVE | USER, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                continue;
            }
            // USER held: the slot cannot be freed, so its ctx is stable.
            if slot.ctx.load(Ordering::Relaxed) != ctx {
                // Reused for another context since it was found: look again.
                slot.state.store(LIVE, Ordering::Release);
                let Some(again) = find(ctx) else {
                    return syscall();
                };
                slot = again;
                continue;
            }
            // SAFETY: USER is held on this context's slot.
            match unsafe { reap_locked(slot, req, zero) } {
                Reap::Done(n) => {
                    slot.state.store(LIVE, Ordering::Release);
                    return n;
                }
                Reap::Kernel => {
                    // From reaper to counted kernel reader in one step: nobody
                    // else changes the state while USER is held.
                    slot.state.store(LIVE + 1, Ordering::Release);
                    return slot.in_kernel(syscall);
                }
            }
        }
        if zero && !peeked && s & DEAD == 0 {
            // libaio's "empty ring, zero timeout" answer needs no syscall and
            // only reads the indices, which others in the kernel do not stop.
            if slot
                .state
                .compare_exchange(s, s + PEEK, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                continue;
            }
            // SAFETY: PEEK holds io_destroy (and so the unmap) off.
            let empty = unsafe { peek_empty(slot, ctx) };
            slot.state.fetch_sub(PEEK, Ordering::Release);
            if empty {
                return 0;
            }
            peeked = true;
            continue; // events are there: reap them here if the readers left, else the kernel
        }
        if !counted {
            return syscall();
        }
        // Enter the kernel as a counted reader.
        if slot
            .state
            .compare_exchange(s, s + 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            continue;
        }
        // Counted: the slot cannot be freed, so its ctx is stable.
        if slot.ctx.load(Ordering::Relaxed) != ctx {
            slot.leave_kernel();
            let Some(again) = find(ctx) else {
                return syscall();
            };
            slot = again;
            continue;
        }
        return slot.in_kernel(syscall);
    }
}

/// # Safety
/// The caller holds PEEK on `slot`.
unsafe fn peek_empty(slot: &Slot, ctx: usize) -> bool {
    if slot.ctx.load(Ordering::Relaxed) != ctx {
        return false;
    }
    // SAFETY: registered and not being destroyed, so mapped.
    let ring = unsafe { Ring::open(ctx, slot.nr.load(Ordering::Relaxed)) };
    matches!(ring.and_then(|r| r.pending()), Some((_, 0)))
}

/// # Safety
/// The caller holds USER on `slot`, which holds `req.ctx`.
#[inline(always)]
unsafe fn reap_locked(slot: &Slot, req: &Request, zero: bool) -> Reap {
    // SAFETY: the slot is this context's and is not being destroyed.
    let Some(ring) = (unsafe { Ring::open(req.ctx as usize, slot.nr.load(Ordering::Relaxed)) }) else {
        return Reap::Kernel;
    };
    let Some((head, ready)) = ring.pending() else {
        return Reap::Kernel;
    };
    // libaio's own shortcut, taken before any argument check, as libaio does.
    if ready == 0 && zero {
        return Reap::Done(0);
    }
    // The kernel's checks, in its order (a negative nr fails min_nr > nr).
    if req.min_nr < 0 || req.min_nr > req.nr {
        return Reap::Done(-libc::EINVAL);
    }
    if (ready as c_long) < req.min_nr && !zero {
        return Reap::Kernel; // must wait: the kernel's job
    }
    let n = (ready as c_long).min(req.nr) as u32;
    if n == 0 {
        return Reap::Done(0);
    }
    if !req.events_writable(n, ring.nr) {
        return Reap::Kernel; // let the kernel answer EFAULT
    }
    // SAFETY: USER held, n <= ready, and `events` is writable for n events.
    unsafe { ring.take(head, n, req.events) };
    Reap::Done(n as i32)
}

/// Whether `ctx` is a context this process set up through us (for tests and diagnostics).
pub fn is_registered(ctx: io_context_t) -> bool {
    find(ctx as usize).is_some_and(|s| s.state.load(Ordering::Acquire) & LIVE != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    use std::time::Duration;
    use std::vec::Vec;

    /// A fake ring in its own mapping: a header the kernel's way and `nr` slots.
    struct Fake {
        base: *mut u8,
        len: usize,
        nr: u32,
    }

    // SAFETY: the mapping is plain memory, used through atomics and raw copies.
    unsafe impl Send for Fake {}
    // SAFETY: as above.
    unsafe impl Sync for Fake {}

    impl Fake {
        fn new(nr: u32) -> Fake {
            let len = (size_of::<aio_ring>() + nr as usize * size_of::<io_event>()).next_multiple_of(4096);
            let base = sys::map_anonymous(len).expect("mmap");
            let f = Fake { base, len, nr };
            // SAFETY: the header lies in our fresh mapping.
            unsafe {
                let h = base.cast::<aio_ring>();
                (*h).nr = nr;
                (*h).magic = AIO_RING_MAGIC;
                (*h).compat_features = 1;
                (*h).header_length = size_of::<aio_ring>() as u32;
            }
            f
        }
        fn ctx(&self) -> io_context_t {
            self.base.cast()
        }
        fn ring(&self) -> Ring {
            Ring {
                base: self.base,
                nr: self.nr,
            }
        }
        fn header(&self) -> *mut aio_ring {
            self.base.cast()
        }
        /// Appends completions tagged `tags` at the tail, as the kernel does.
        fn complete(&self, tags: impl IntoIterator<Item = usize>) {
            let r = self.ring();
            let mut tail = r.tail().load(Ordering::Relaxed);
            for t in tags {
                let mut ev = io_event::zeroed();
                ev.data = t as *mut _;
                ev.res = 1;
                // SAFETY: tail < nr: a slot of our mapping.
                unsafe {
                    let slot = self
                        .base
                        .add(size_of::<aio_ring>())
                        .cast::<io_event>()
                        .add(tail as usize);
                    slot.write(ev);
                }
                tail = if tail + 1 == self.nr { 0 } else { tail + 1 };
            }
            r.tail().store(tail, Ordering::Release);
        }
        fn set_head(&self, i: u32) {
            self.ring().head().store(i, Ordering::Relaxed);
            self.ring().tail().store(i, Ordering::Relaxed);
        }
    }

    impl Drop for Fake {
        fn drop(&mut self) {
            // Forget it first, as io_destroy would, then unmap.
            assert_eq!(destroy(self.ctx(), || 0), 0);
            // SAFETY: our own mapping, no longer registered.
            unsafe { sys::unmap(self.base, self.len) };
        }
    }

    fn req(
        ctx: io_context_t,
        min_nr: c_long,
        nr: c_long,
        events: &mut [io_event],
        timeout: Option<&mut libc::timespec>,
    ) -> Request {
        Request {
            ctx,
            min_nr,
            nr,
            events: events.as_mut_ptr(),
            timeout: timeout.map_or(ptr::null_mut(), |t| t as *mut _),
        }
    }

    fn no_syscall() -> i32 {
        panic!("the kernel was asked")
    }

    fn zero() -> libc::timespec {
        libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        }
    }

    fn state(ctx: io_context_t) -> u32 {
        find(ctx as usize)
            .expect("registered")
            .state
            .load(Ordering::SeqCst)
    }

    #[test]
    fn reaps_a_registered_ring_in_user_space_with_wrap_around() {
        let f = Fake::new(8);
        register(f.ctx());
        assert!(is_registered(f.ctx()));
        f.set_head(6);
        f.complete([10, 11, 12, 13]); // slots 6, 7, 0, 1
        let mut ev = [io_event::zeroed(); 8];
        // SAFETY: a live fake ring and our own array.
        let n = unsafe { getevents(&req(f.ctx(), 1, 3, &mut ev, None), true, no_syscall) };
        assert_eq!(n, 3);
        assert_eq!(
            ev[..3].iter().map(|e| e.data as usize).collect::<Vec<_>>(),
            [10, 11, 12]
        );
        assert_eq!(f.ring().head().load(Ordering::Relaxed), 1);
        let mut z = zero();
        // SAFETY: as above.
        let n = unsafe { getevents(&req(f.ctx(), 0, 8, &mut ev, Some(&mut z)), true, no_syscall) };
        assert_eq!((n, ev[0].data as usize), (1, 13));
        // Empty ring, zero timeout: libaio's answer, whatever the arguments.
        // SAFETY: as above.
        let n = unsafe { getevents(&req(f.ctx(), 5, 1, &mut ev, Some(&mut z)), true, no_syscall) };
        assert_eq!(n, 0);
        assert_eq!(state(f.ctx()), LIVE);
    }

    #[test]
    fn bad_arguments_get_the_kernels_answer_without_a_syscall() {
        let f = Fake::new(8);
        register(f.ctx());
        f.complete([1, 2]);
        let mut ev = [io_event::zeroed(); 4];
        let mut z = zero();
        for (min_nr, nr) in [(2, 1), (-1, 4), (0, -1), (1, 0)] {
            // SAFETY: a live fake ring and our own array.
            let n = unsafe { getevents(&req(f.ctx(), min_nr, nr, &mut ev, Some(&mut z)), true, no_syscall) };
            assert_eq!(n, -libc::EINVAL, "min_nr {min_nr} nr {nr}");
        }
        // SAFETY: as above.
        let n = unsafe { getevents(&req(f.ctx(), 0, 0, &mut ev, None), true, no_syscall) };
        assert_eq!(n, 0);
        assert_eq!(f.ring().head().load(Ordering::Relaxed), 0, "nothing taken");
        // A bad array goes to the kernel (which answers EFAULT).
        let mut bad = req(f.ctx(), 1, 2, &mut ev, None);
        bad.events = 16 as *mut io_event;
        // SAFETY: the array is never written by us.
        let n = unsafe { getevents(&bad, true, || -libc::EFAULT) };
        assert_eq!(n, -libc::EFAULT);
        assert_eq!(state(f.ctx()), LIVE, "the kernel reader has left");
    }

    #[test]
    fn waiting_and_non_reaping_calls_go_to_the_kernel_as_counted_readers() {
        let f = Fake::new(8);
        register(f.ctx());
        f.complete([1]);
        let mut ev = [io_event::zeroed(); 4];
        let ctx = f.ctx();
        // Fewer ready than min_nr: the kernel waits, counted.
        // SAFETY: a live fake ring and our own array.
        let n = unsafe {
            getevents(&req(ctx, 2, 4, &mut ev, None), true, || {
                assert_eq!(state(ctx), LIVE + 1);
                7
            })
        };
        assert_eq!(n, 7);
        // A call that may not reap (a signal mask): the kernel answers, still
        // counted, since other calls reap in user space.
        // SAFETY: as above.
        let n = unsafe {
            getevents(&req(ctx, 0, 4, &mut ev, None), false, || {
                assert_eq!(state(ctx), LIVE + 1);
                8
            })
        };
        assert_eq!(n, 8);
        assert_eq!(f.ring().head().load(Ordering::Relaxed), 0, "nothing taken");
        // ... but the empty-ring shortcut stays, as in libaio.
        f.set_head(3);
        let mut z = zero();
        // SAFETY: as above.
        let n = unsafe { getevents(&req(ctx, 1, 4, &mut ev, Some(&mut z)), false, no_syscall) };
        assert_eq!(n, 0);
        assert_eq!(state(ctx), LIVE);
    }

    #[test]
    fn unknown_contexts_and_unknown_layouts_go_to_the_kernel() {
        let mut ev = [io_event::zeroed(); 1];
        for ctx in [0usize, 0x1000, 0xdead_0000] {
            // SAFETY: the ring of an unknown context is never read.
            let n = unsafe {
                getevents(&req(ctx as io_context_t, 0, 1, &mut ev, None), true, || {
                    -libc::EINVAL
                })
            };
            assert_eq!(n, -libc::EINVAL);
        }
        for spoil in 0..4 {
            let f = Fake::new(8);
            // SAFETY: our fake header.
            unsafe {
                let h = f.header();
                match spoil {
                    0 => (*h).magic = 0,
                    1 => (*h).incompat_features = 1,
                    2 => (*h).header_length = 64,
                    _ => (*h).nr = 0,
                }
            }
            register(f.ctx());
            assert!(!is_registered(f.ctx()), "layout spoiled at {spoil}");
        }
        // A header rewritten after registration: the fast path refuses it.
        let f = Fake::new(8);
        register(f.ctx());
        f.complete([1]);
        // SAFETY: our fake header.
        unsafe { (*f.header()).nr = 4096 };
        // SAFETY: a registered fake ring.
        let n = unsafe { getevents(&req(f.ctx(), 1, 1, &mut ev, None), true, || 42) };
        assert_eq!(n, 42);
        // SAFETY: as above.
        unsafe { (*f.header()).nr = 8 };
        // Indices out of range, likewise.
        f.ring().head().store(9, Ordering::Relaxed);
        // SAFETY: as above.
        let n = unsafe { getevents(&req(f.ctx(), 1, 1, &mut ev, None), true, || 43) };
        assert_eq!(n, 43);
        f.ring().head().store(0, Ordering::Relaxed);
    }

    #[test]
    fn a_reader_waits_for_a_user_space_reap_and_destroy_does_too() {
        let f = Arc::new(Fake::new(8));
        register(f.ctx());
        let slot = find(f.ctx() as usize).expect("registered");
        // Pretend a user-space reap is under way.
        slot.state.store(LIVE | USER, Ordering::SeqCst);
        let entered = Arc::new(AtomicBool::new(false));
        let (f2, e2) = (f.clone(), entered.clone());
        let reader = std::thread::spawn(move || {
            let mut ev = [io_event::zeroed(); 1];
            // SAFETY: a registered fake ring.
            unsafe {
                getevents(&req(f2.ctx(), 1, 1, &mut ev, None), true, || {
                    e2.store(true, Ordering::SeqCst);
                    0
                })
            }
        });
        let f3 = f.clone();
        let destroyed = Arc::new(AtomicBool::new(false));
        let d3 = destroyed.clone();
        let destroyer = std::thread::spawn(move || {
            let r = destroy(f3.ctx(), || -libc::EPERM); // refused: the context lives on
            d3.store(true, Ordering::SeqCst);
            r
        });
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            !entered.load(Ordering::SeqCst),
            "entered the kernel during a user-space reap"
        );
        assert!(
            !destroyed.load(Ordering::SeqCst),
            "destroyed during a user-space reap"
        );
        slot.state.store(LIVE, Ordering::SeqCst);
        assert_eq!(reader.join().expect("reader"), 0);
        assert_eq!(destroyer.join().expect("destroyer"), -libc::EPERM);
        assert!(entered.load(Ordering::SeqCst));
        assert_eq!(
            slot.state.load(Ordering::SeqCst),
            LIVE,
            "a refused destroy changes nothing"
        );
    }

    #[test]
    fn destroy_does_not_wait_for_readers_and_the_last_one_out_frees_the_slot() {
        let f = Arc::new(Fake::new(8));
        register(f.ctx());
        let ctx = f.ctx() as usize;
        let slot = find(ctx).expect("registered");
        let (in_kernel, release) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (f, i, r) = (f.clone(), in_kernel.clone(), release.clone());
                std::thread::spawn(move || {
                    let mut ev = [io_event::zeroed(); 1];
                    // SAFETY: a registered fake ring.
                    unsafe {
                        getevents(&req(f.ctx(), 1, 1, &mut ev, None), true, || {
                            i.store(true, Ordering::SeqCst);
                            while !r.load(Ordering::SeqCst) {
                                std::thread::yield_now();
                            }
                            -libc::EINVAL
                        })
                    }
                })
            })
            .collect();
        while slot.state.load(Ordering::SeqCst) & READERS != 2 {
            std::thread::yield_now();
        }
        // The kernel destroys it; io_destroy returns at once.
        assert_eq!(destroy(ctx as io_context_t, || 0), 0);
        assert_eq!(slot.state.load(Ordering::SeqCst), DEAD | 2);
        assert!(!is_registered(ctx as io_context_t));
        // A late caller goes straight to the kernel, uncounted.
        let mut ev = [io_event::zeroed(); 1];
        // SAFETY: the ring is not read (the slot is no longer LIVE).
        let n = unsafe {
            getevents(&req(ctx as io_context_t, 0, 1, &mut ev, None), true, || {
                -libc::EINVAL
            })
        };
        assert_eq!(n, -libc::EINVAL);
        release.store(true, Ordering::SeqCst);
        for r in readers {
            assert_eq!(r.join().expect("reader"), -libc::EINVAL);
        }
        assert_eq!(slot.state.load(Ordering::SeqCst), 0, "freed by the last reader");
        assert_eq!(slot.ctx.load(Ordering::SeqCst), 0);
        // Registered again (a new ring at the same address), then Fake's drop destroys it.
        register(ctx as io_context_t);
        assert!(is_registered(ctx as io_context_t));
    }

    #[test]
    fn a_destroy_the_kernel_refuses_with_einval_forgets_the_context() {
        let f = Fake::new(8);
        register(f.ctx());
        assert_eq!(destroy(f.ctx(), || -libc::EINVAL), -libc::EINVAL);
        assert!(!is_registered(f.ctx()));
        register(f.ctx()); // for Fake's drop
    }

    #[test]
    fn a_forked_child_forgets_every_context() {
        let f = Fake::new(8);
        register(f.ctx());
        assert!(is_registered(f.ctx()));
        for raw in [false, true] {
            // SAFETY: the child only reads memory and exits with _exit.
            let pid = unsafe {
                if raw {
                    libc::syscall(libc::SYS_fork) as libc::pid_t
                } else {
                    libc::fork()
                }
            };
            assert!(pid >= 0);
            if pid == 0 {
                let gone = !is_registered(f.ctx());
                // SAFETY: ends the child without running the parent's destructors.
                unsafe { libc::_exit(if gone { 0 } else { 1 }) };
            }
            let mut status = 0;
            // SAFETY: waits for our own child.
            assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
            assert!(
                libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
                "raw={raw}: the child still knew the context"
            );
            assert!(is_registered(f.ctx()), "the parent keeps it");
        }
    }

    /// The real kernel: user-space reaps, kernel reaps and destroys racing
    /// callers that are still entering (which libaio itself would not survive),
    /// with every completion counted.
    #[test]
    fn exactly_once_against_the_kernel_with_destroy_racing_callers() {
        use crate::abi::iocb;
        use crate::capi::io::{io_destroy, io_getevents, io_setup, io_submit};
        use std::sync::atomic::{AtomicI64, AtomicU8, AtomicUsize};

        const TAGS: usize = 4000;
        // SAFETY: creating an eventfd that is always readable.
        let efd = unsafe { libc::eventfd(1, libc::EFD_NONBLOCK) };
        assert!(efd >= 0);
        for round in 0..4 {
            let mut ctx: io_context_t = ptr::null_mut();
            // SAFETY: ctx is ours and zero.
            assert_eq!(unsafe { io_setup(64, &mut ctx) }, 0);
            assert!(is_registered(ctx));
            let seen: Arc<Vec<AtomicU8>> = Arc::new((0..TAGS).map(|_| AtomicU8::new(0)).collect());
            let delivered = Arc::new(AtomicUsize::new(0));
            let stop = Arc::new(AtomicBool::new(false));
            let einval = Arc::new(AtomicI64::new(0));
            let ctxu = ctx as usize;
            let reapers: Vec<_> = (0..4)
                .map(|id| {
                    let (seen, delivered, stop, einval) =
                        (seen.clone(), delivered.clone(), stop.clone(), einval.clone());
                    std::thread::spawn(move || {
                        let mut ev = [io_event::zeroed(); 8];
                        let mut i = id;
                        while !stop.load(Ordering::SeqCst) {
                            let mut z = zero();
                            let mut short = libc::timespec {
                                tv_sec: 0,
                                tv_nsec: 100_000,
                            };
                            let (min_nr, t): (c_long, *mut libc::timespec) = match i % 3 {
                                0 => (0, &mut z),
                                1 => (1, &mut short),
                                _ => (2, &mut short),
                            };
                            i += 1;
                            // SAFETY: our array; the context may be destroyed under us.
                            let n =
                                unsafe { io_getevents(ctxu as io_context_t, min_nr, 8, ev.as_mut_ptr(), t) };
                            if n < 0 {
                                assert_eq!(n, -libc::EINVAL);
                                einval.fetch_add(1, Ordering::SeqCst);
                                continue;
                            }
                            for e in &ev[..n as usize] {
                                seen[e.data as usize].fetch_add(1, Ordering::SeqCst);
                            }
                            delivered.fetch_add(n as usize, Ordering::SeqCst);
                        }
                    })
                })
                .collect();
            let mut cbs: Vec<iocb> = (0..TAGS)
                .map(|t| {
                    let mut cb = iocb::zeroed();
                    cb.aio_lio_opcode = crate::abi::io_iocb_cmd::IO_CMD_POLL as i16;
                    cb.aio_fildes = efd;
                    cb.u.poll.events = libc::POLLIN as i32;
                    cb.data = t as *mut _;
                    cb
                })
                .collect();
            let mut next = 0;
            while next < TAGS {
                let n = 8.min(TAGS - next);
                while next - delivered.load(Ordering::SeqCst) + n > 48 {
                    std::thread::yield_now();
                }
                let mut ptrs: Vec<*mut iocb> =
                    cbs[next..next + n].iter_mut().map(|c| c as *mut iocb).collect();
                // SAFETY: our iocbs, alive until reaped.
                let r = unsafe { io_submit(ctx, n as c_long, ptrs.as_mut_ptr()) };
                assert!(r > 0, "io_submit = {r}");
                next += r as usize;
            }
            while delivered.load(Ordering::SeqCst) < TAGS {
                std::thread::yield_now();
            }
            // Destroy while the reapers keep calling (some inside, some entering).
            if round % 2 == 1 {
                std::thread::sleep(Duration::from_millis(1));
            }
            // SAFETY: our context.
            assert_eq!(unsafe { io_destroy(ctx) }, 0);
            assert!(!is_registered(ctx));
            while einval.load(Ordering::SeqCst) < 8 {
                std::thread::yield_now();
            }
            stop.store(true, Ordering::SeqCst);
            for r in reapers {
                r.join().expect("reaper");
            }
            let dups: usize = seen
                .iter()
                .map(|s| s.load(Ordering::SeqCst).saturating_sub(1) as usize)
                .sum();
            let lost = seen.iter().filter(|s| s.load(Ordering::SeqCst) == 0).count();
            assert_eq!(
                (delivered.load(Ordering::SeqCst), dups, lost),
                (TAGS, 0, 0),
                "round {round}"
            );
        }
        // SAFETY: our descriptor.
        unsafe { libc::close(efd) };
    }
}
