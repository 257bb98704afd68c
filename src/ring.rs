//! The kernel's completion ring, and reaping it from user space.
//!
//! `io_setup` hands out the address where the kernel mapped `struct aio_ring`
//! followed by `nr` `io_event` slots. The kernel appends at `tail`; a reader
//! takes events from `head` and moves `head` on. The kernel's own
//! `io_getevents` is such a reader, and it takes no lock that user space can
//! see, so a user-space reader and a kernel reader running at once on one
//! context can both take the same events, or lose some.
//!
//! The protocol here keeps them apart. Each context this process set up through
//! us has a [`Slot`] whose state word counts the threads inside a kernel
//! `io_getevents` and has one bit for "a thread is reaping in user space":
//! - a user-space reap starts only when the state is exactly 0 (no kernel
//!   reader, nobody else reaping, not being destroyed) and makes it `USER`;
//! - a thread about to enter the kernel waits while `USER` is set, then adds
//!   one to the count, and takes it off when the kernel returns;
//! - `io_destroy` sets `DEAD` once no user-space reap is running (the kernel
//!   unmaps the ring), and frees the slot when the count has drained.
//!
//! Contexts we did not set up (a raw `io_setup` syscall, a context inherited
//! through `fork`, a garbage value) have no slot and always go to the kernel:
//! their memory is never read.

use crate::abi::{aio_ring, io_context_t, io_event, AIO_RING_MAGIC};
use crate::sys;
use core::ffi::c_long;
use core::mem::size_of;
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};

/// How many contexts get a slot; more still work, through the kernel only.
const NSLOTS: usize = 64;
/// A thread is copying events out of the ring in user space (exclusive).
const USER: u32 = 1 << 31;
/// `io_destroy` is under way: nothing new may read the ring.
const DEAD: u32 = 1 << 30;
/// The slot holds no context.
const FREE: u32 = 1 << 29;
/// One thread only looking at the ring's indices (shared; blocks `io_destroy`).
const PEEK: u32 = 1 << 14;
/// Bits 14..29: threads peeking at the ring.
const PEEKERS: u32 = FREE - PEEK;
/// Bits 0..14: threads inside the kernel's `io_getevents`/`io_pgetevents`.
const READERS: u32 = PEEK - 1;

/// One registered context.
struct Slot {
    ctx: AtomicUsize,
    state: AtomicU32,
}

impl Slot {
    const fn new() -> Self {
        Slot {
            ctx: AtomicUsize::new(0),
            state: AtomicU32::new(FREE),
        }
    }
}

static SLOTS: [Slot; NSLOTS] = [const { Slot::new() }; NSLOTS];
/// Serialises registration and freeing (io_setup/io_destroy, both rare).
static REGISTRY_LOCK: AtomicBool = AtomicBool::new(false);
/// Whether the fork handler that forgets every slot in a child is installed.
static ATFORK: AtomicBool = AtomicBool::new(false);

fn lock_registry() {
    while REGISTRY_LOCK
        .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        sys::sched_yield();
    }
}

fn unlock_registry() {
    REGISTRY_LOCK.store(false, Ordering::Release);
}

/// Where the search for `ctx` starts: rings are page-aligned, so drop those bits.
fn home(ctx: usize) -> usize {
    (ctx >> 12) % NSLOTS
}

fn find(ctx: usize) -> Option<&'static Slot> {
    if ctx == 0 {
        return None;
    }
    let h = home(ctx);
    (0..NSLOTS)
        .map(|i| &SLOTS[(h + i) % NSLOTS])
        .find(|s| s.ctx.load(Ordering::Acquire) == ctx)
}

/// In a forked child the kernel has no contexts, but the rings are still
/// mapped (shared with the parent): forget them all so nothing reads them.
extern "C" fn forget_all_in_child() {
    for s in &SLOTS {
        s.state.store(FREE, Ordering::Relaxed);
        s.ctx.store(0, Ordering::Relaxed);
    }
    REGISTRY_LOCK.store(false, Ordering::Release);
}

/// Records a context that `io_setup` just created.
pub fn register(ctx: io_context_t) {
    let ctx = ctx as usize;
    if ctx == 0 {
        return;
    }
    if !ATFORK.swap(true, Ordering::AcqRel) {
        // SAFETY: registers a plain function with no captured state; glibc
        // keeps the handler until this library is unloaded.
        unsafe { libc::pthread_atfork(None, None, Some(forget_all_in_child)) };
    }
    lock_registry();
    let h = home(ctx);
    if let Some(s) = (0..NSLOTS)
        .map(|i| &SLOTS[(h + i) % NSLOTS])
        .find(|s| s.state.load(Ordering::Relaxed) == FREE)
    {
        s.ctx.store(ctx, Ordering::Relaxed);
        // Publishes `ctx` before any reaper can move the state off FREE.
        s.state.store(0, Ordering::Release);
    }
    unlock_registry();
}

/// The part of `io_destroy` around the syscall: stop user-space reaping before
/// the kernel unmaps the ring, and forget the context once it is gone.
pub fn destroy(ctx: io_context_t, syscall: impl FnOnce() -> i32) -> i32 {
    let Some(slot) = find(ctx as usize) else {
        return syscall();
    };
    let mut s = slot.state.load(Ordering::Acquire);
    loop {
        if s & (DEAD | FREE) != 0 || slot.ctx.load(Ordering::Relaxed) != ctx as usize {
            // Another thread is destroying it, or the slot moved on.
            return syscall();
        }
        if s & (USER | PEEKERS) != 0 {
            core::hint::spin_loop();
            s = slot.state.load(Ordering::Acquire);
            continue;
        }
        match slot
            .state
            .compare_exchange_weak(s, s | DEAD, Ordering::Acquire, Ordering::Acquire)
        {
            Ok(_) => break,
            Err(now) => s = now,
        }
    }
    let ret = syscall();
    if ret < 0 {
        slot.state.fetch_and(!DEAD, Ordering::Release);
        return ret;
    }
    // Readers blocked in the kernel were woken by the destroy and return at once.
    while slot.state.load(Ordering::Acquire) & READERS != 0 {
        sys::sched_yield();
    }
    lock_registry();
    slot.ctx.store(0, Ordering::Relaxed);
    slot.state.store(FREE, Ordering::Release);
    unlock_registry();
    ret
}

/// The ring of a registered context, when its header is the layout we know.
struct Ring {
    base: *mut u8,
    nr: u32,
}

impl Ring {
    /// # Safety
    /// `ctx` is a registered, live context (its ring is mapped).
    unsafe fn open(ctx: io_context_t) -> Option<Ring> {
        let hdr = ctx as *const aio_ring;
        // SAFETY: the caller guarantees the ring is mapped; these header words
        // are written once by the kernel at setup.
        let (magic, incompat, hlen, nr) = unsafe {
            (
                ptr::read_volatile(&(*hdr).magic),
                ptr::read_volatile(&(*hdr).incompat_features),
                ptr::read_volatile(&(*hdr).header_length),
                ptr::read_volatile(&(*hdr).nr),
            )
        };
        let known =
            magic == AIO_RING_MAGIC && incompat == 0 && hlen as usize == size_of::<aio_ring>() && nr > 0;
        known.then_some(Ring {
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
        self.word(core::mem::offset_of!(aio_ring, head))
    }

    fn tail(&self) -> &AtomicU32 {
        self.word(core::mem::offset_of!(aio_ring, tail))
    }

    /// `(head, number of events ready)`, or None if the indices are out of range.
    fn pending(&self) -> Option<(u32, u32)> {
        let head = self.head().load(Ordering::Relaxed);
        // Acquire: the kernel writes the event before it moves the tail.
        let tail = self.tail().load(Ordering::Acquire);
        if head >= self.nr || tail >= self.nr {
            return None;
        }
        Some((head, (tail + self.nr - head) % self.nr))
    }

    /// Copies `n` events from `head` (wrapping) into `out`, then moves the head on.
    ///
    /// # Safety
    /// The caller holds `USER` on the slot, `n` events are ready, and `out` is
    /// writable for `n` events (any alignment).
    unsafe fn take(&self, head: u32, n: u32, out: *mut io_event) {
        let ev = size_of::<io_event>();
        let first = n.min(self.nr - head) as usize;
        // SAFETY: slots head..head+first and 0..n-first lie inside the mapped
        // ring (nr slots after the header); the kernel does not rewrite them
        // until the head passes them; `out` is valid for n events.
        unsafe {
            let events = self.base.add(size_of::<aio_ring>());
            ptr::copy_nonoverlapping(events.add(head as usize * ev), out.cast::<u8>(), first * ev);
            ptr::copy_nonoverlapping(
                events,
                out.cast::<u8>().add(first * ev),
                (n as usize - first) * ev,
            );
        }
        // Release: our reads of those slots happen before the kernel may reuse them.
        self.head().store((head + n) % self.nr, Ordering::Release);
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
        let t = unsafe { ptr::read(self.timeout) };
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

/// `io_getevents` for every caller: answered from the ring when it can be,
/// by `syscall` otherwise.
///
/// # Safety
/// `req` holds the caller's arguments unchanged; `syscall` makes the kernel call.
pub unsafe fn getevents(req: &Request, reap: bool, syscall: impl FnOnce() -> i32) -> i32 {
    let Some(slot) = find(req.ctx as usize) else {
        return syscall();
    };
    // The user-space path owns the ring while the state is USER; it needs the
    // state to be exactly 0 (nobody in the kernel, nobody else in the ring).
    let s = slot.state.load(Ordering::Relaxed);
    if s == 0
        && slot
            .state
            .compare_exchange(0, USER, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    {
        // SAFETY: while USER is held the slot cannot be destroyed, and
        // reap_locked checks it is still this context's slot.
        let answer = unsafe { reap_locked(slot, req, reap) };
        slot.state.fetch_and(!USER, Ordering::Release);
        if let Some(n) = answer {
            return n;
        }
    } else if s & (USER | DEAD | FREE) == 0 && req.zero_timeout() {
        // Others are in the kernel: libaio's "empty ring, zero timeout" answer
        // still needs no syscall, and only reads the indices.
        if slot
            .state
            .compare_exchange(s, s + PEEK, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            // SAFETY: PEEK keeps io_destroy (and so the unmap) away.
            let empty = unsafe { peek_empty(slot, req.ctx) };
            slot.state.fetch_sub(PEEK, Ordering::Release);
            if empty {
                return 0;
            }
        }
    }
    enter_kernel(slot, syscall)
}

/// # Safety
/// The caller holds PEEK or USER on `slot`.
unsafe fn peek_empty(slot: &Slot, ctx: io_context_t) -> bool {
    if slot.ctx.load(Ordering::Relaxed) != ctx as usize {
        return false;
    }
    // SAFETY: registered and not being destroyed, so mapped.
    let ring = unsafe { Ring::open(ctx) };
    matches!(ring.and_then(|r| r.pending()), Some((_, 0)))
}

/// # Safety
/// The caller holds USER on `slot`.
unsafe fn reap_locked(slot: &Slot, req: &Request, reap: bool) -> Option<i32> {
    if slot.ctx.load(Ordering::Relaxed) != req.ctx as usize {
        return None;
    }
    // SAFETY: the slot is this context's and is not being destroyed.
    let ring = unsafe { Ring::open(req.ctx) }?;
    let (head, ready) = ring.pending()?;
    let zero = req.zero_timeout();
    // libaio's own shortcut, taken before any argument check, as libaio does.
    if ready == 0 && zero {
        return Some(0);
    }
    if !reap {
        return None;
    }
    if req.min_nr < 0 || req.nr < 0 || req.min_nr > req.nr {
        return Some(-libc::EINVAL);
    }
    if (ready as c_long) < req.min_nr && !zero {
        return None; // must wait: the kernel's job
    }
    let n = (ready as c_long).min(req.nr) as u32;
    if n == 0 {
        return Some(0);
    }
    if !req.events_writable(n, ring.nr) {
        return None; // let the kernel answer EFAULT
    }
    // SAFETY: USER held, n <= ready, and `events` is the caller's array of nr >= n.
    unsafe { ring.take(head, n, req.events) };
    Some(n as i32)
}

/// Runs `syscall` as a counted kernel reader of `slot`.
fn enter_kernel(slot: &Slot, syscall: impl FnOnce() -> i32) -> i32 {
    let mut s = slot.state.load(Ordering::Relaxed);
    loop {
        if s & (DEAD | FREE) != 0 {
            // Being destroyed or gone: the kernel alone answers, uncounted.
            return syscall();
        }
        if s & USER != 0 {
            core::hint::spin_loop();
            s = slot.state.load(Ordering::Relaxed);
            continue;
        }
        match slot
            .state
            .compare_exchange_weak(s, s + 1, Ordering::Acquire, Ordering::Relaxed)
        {
            Ok(_) => break,
            Err(now) => s = now,
        }
    }
    let ret = syscall();
    slot.state.fetch_sub(1, Ordering::Release);
    ret
}

/// Whether `ctx` is a context this process set up through us (for tests and diagnostics).
pub fn is_registered(ctx: io_context_t) -> bool {
    find(ctx as usize).is_some()
}
