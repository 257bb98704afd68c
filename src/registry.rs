//! The contexts this process set up through the library, and the gates that
//! keep the kernel's reader and ours off one ring at the same time.
//!
//! A context's ring may be read in user space only while the library knows
//! it is mapped: a context of ours, set up here and not yet destroyed. Each
//! has a [`Slot`] (its address, its size as the kernel wrote it, and a state
//! word), found by the address's hash among [`PROBE`] neighbouring slots.
//! Contexts we did not set up (a raw `io_setup` system call, a garbage value)
//! have no slot and always go to the kernel: their memory is never read.
//!
//! # The gates
//! Each slot also carries the *gate* word of the addresses whose home it is:
//! the exclusion between the kernel's reader and ours, kept by
//! `engine::kernel::gate`, whose module states its protocol.
//!
//! # Slot states
//! - `LIVE`: the slot holds a context the kernel still has;
//! - `DEAD`: `io_destroy` is under way: no new copy or peek may start;
//! - the low bits count *peekers*, threads reading only the two indices (the
//!   empty-ring answer to a zero timeout, which libaio gives without a system
//!   call). `io_destroy` waits for them before the kernel unmaps the ring.
//!
//! `io_destroy` sets `DEAD`, waits for the peekers and for the gate of the
//! context's home to have no `USER`, asks the kernel, then frees the slot. A
//! copier takes the gate's `USER` first and then checks the slot: `LIVE`, not `DEAD`,
//! still this address. Both the setting and the checking sides are a
//! sequentially consistent read-modify-write followed by a sequentially
//! consistent load of the other word, so at least one side sees the other:
//! either the copier sees `DEAD` and gives up, or the destroyer sees `USER`
//! and waits for the copy to end.
//!
//! # User-space contexts
//! A context of a user-space engine (`engine::user`) has a slot too, marked
//! `EMU` instead of `LIVE`: its calls are counted in the peeker bits while
//! they run, and its destroy (`DEAD`) waits for them.
//!
//! # Counters cannot overflow
//! Peekers are a 28-bit count, readers a 29-bit one. A thread that finds its count full
//! waits until it is not (it is never let in uncounted); each counted thread
//! holds one unit while it runs one call, so the count could only be full with
//! half a billion threads, far past the kernel's limit on threads (4 million).
//!
//! # Fork
//! The table lives in a mapping the kernel gives a forked child zero-filled
//! (`MADV_WIPEONFORK`), whichever way the child was made: the child's kernel
//! has none of the parent's contexts, but the rings stay mapped there, and
//! reaping them would steal the parent's completions.

use crate::sync::{self, Lock, WAITERS};
use crate::{ring, sys};
use core::mem::size_of;
use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize, Ordering};

/// Slot state: the slot holds a context that the kernel still has.
pub(crate) const LIVE: u32 = 1 << 31;
/// Slot state: `io_destroy` is under way.
pub(crate) const DEAD: u32 = 1 << 30;
/// Slot state: the slot holds a user-space context (`engine::user`), never
/// `LIVE`, so the kernel paths leave it alone.
pub(crate) const EMU: u32 = 1 << 28;
/// Slot state, bits 0..28: threads peeking at a kernel ring's indices, or
/// calls inside a user-space context.
pub(crate) const PEEKERS: u32 = EMU - 1;

/// Slots in the registry (one cache line each, after the lock's line: 16 KiB).
const NSLOTS: usize = 255;
/// How many slots from its home a context may sit: bounds the search for an
/// unknown context. More contexts than fit still work, through the kernel
/// (see the README: only libaio's empty-ring shortcut is lost for them).
const PROBE: usize = 16;

/// One registered context, and the gate of the addresses whose home this is.
/// All zero is a free slot with an open gate.
#[repr(C, align(64))]
pub(crate) struct Slot {
    /// The context (ring address), 0 when free.
    ctx: AtomicUsize,
    /// `LIVE | DEAD | WAITERS | peekers`.
    pub(crate) state: AtomicU32,
    /// The ring's size as the kernel wrote it at setup: every index is checked
    /// against it, whatever the (user-writable) header says later.
    nr: AtomicU32,
    /// `USER | WAITERS | readers` for every address whose home this slot is
    /// (not only the context the slot holds).
    pub(crate) gate: AtomicU32,
    /// For a user-space context: its control block (`engine::emu`).
    ctl: AtomicUsize,
}

/// The registry: four pages, zero-filled in a forked child.
#[repr(C, align(64))]
pub(crate) struct Table {
    /// Serialises registration (io_setup, rare).
    lock: Lock,
    slots: [Slot; NSLOTS],
}

const TABLE_BYTES: usize = size_of::<Table>();
const _: () = assert!(TABLE_BYTES == 16384);

/// The registry, mapped when the library is loaded and never unmapped.
static TABLE: AtomicPtr<Table> = AtomicPtr::new(ptr::null_mut());

/// The registry, if it has been mapped.
pub(crate) fn table() -> Option<&'static Table> {
    let t = TABLE.load(Ordering::Acquire);
    // SAFETY: a non-null TABLE points to a zero-initialised, page-aligned
    // mapping of TABLE_BYTES that is never unmapped; Table is atomics only, for
    // which all-zero is a valid value.
    unsafe { t.as_ref() }
}

/// Maps the registry (once). `wipe` asks for it to be zero-filled in a forked
/// child; returns whether that holds, so whether user-space reaping is safe.
/// Called at load time (see `config`), when every system call it makes is
/// one the dynamic loader has just made too, or `madvise` when no seccomp
/// filter is installed.
pub(crate) fn map(wipe: bool) -> bool {
    if table().is_some() {
        return true;
    }
    let Some(page) = sys::map_anonymous(TABLE_BYTES) else {
        return false;
    };
    // SAFETY: our fresh mapping, which a child must see empty.
    let wiped = wipe && unsafe { sys::wipe_on_fork(page, TABLE_BYTES) };
    if TABLE
        .compare_exchange(ptr::null_mut(), page.cast(), Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        // Another thread mapped one first.
        // SAFETY: our own fresh mapping, never published.
        unsafe { sys::unmap(page, TABLE_BYTES) };
    }
    wiped
}

/// User-space contexts registered now: while there are none, the entry points
/// skip looking for one (one relaxed load on the kernel path).
static EMU_CONTEXTS: AtomicUsize = AtomicUsize::new(0);

/// Asks for the registry to be wiped in a forked child now, when that was not
/// done at load (a seccomp filter was found then): a user-space engine is
/// about to be used, which makes system calls of its own anyway.
pub(crate) fn wipe_on_fork_now() -> bool {
    let t = TABLE.load(Ordering::Acquire);
    // SAFETY: the registry's own mapping, which a child must see empty.
    !t.is_null() && unsafe { sys::wipe_on_fork(t.cast(), TABLE_BYTES) }
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

    /// The slot naming `ctx`, if any (it may be changing: callers check again
    /// once they hold something that keeps it).
    pub(crate) fn find(&self, ctx: usize) -> Option<&Slot> {
        if ctx == 0 {
            return None;
        }
        self.probe(ctx).find(|s| s.ctx.load(Ordering::Acquire) == ctx)
    }

    /// The gate of `ctx`'s home.
    pub(crate) fn gate(&self, ctx: usize) -> &AtomicU32 {
        &self.slots[home(ctx)].gate
    }
}

/// Records a context that `io_setup` just created, when its ring is the
/// layout we know and there is room. Makes no system call.
///
/// # Safety
/// `ctx` is 0 or the handle the kernel has just returned from `io_setup`
/// (its ring is mapped).
pub(crate) unsafe fn register(ctx: usize) {
    if ctx == 0 {
        return;
    }
    let Some(table) = table() else {
        return;
    };
    // SAFETY: the caller guarantees the kernel has just mapped this ring.
    let Some(nr) = (unsafe { ring::known_layout(ctx) }) else {
        return;
    };
    table.lock.with(|| {
        if let Some(old) = table.find(ctx) {
            // A slot for this address outlived its context (destroyed behind
            // our back by a raw syscall, or a destroy still finishing). Same
            // size: it describes the new ring as well. Otherwise no ring
            // matches its size any more: kernel only, for ever.
            if old.nr.load(Ordering::Relaxed) != nr {
                old.nr.store(0, Ordering::Relaxed);
            }
        } else if let Some(s) = table
            .probe(ctx)
            .find(|s| s.ctx.load(Ordering::Relaxed) == 0 && s.state.load(Ordering::Acquire) & !WAITERS == 0)
        {
            // Free slots are written only here, under the lock.
            s.ctx.store(ctx, Ordering::Relaxed);
            s.nr.store(nr, Ordering::Relaxed);
            // Publishes ctx and nr with the state that lets them be used.
            s.state.fetch_or(LIVE, Ordering::Release);
        }
    });
}

/// How [`Slot::mark_dead`] went.
pub(crate) enum Mark {
    /// `DEAD` is set on this context's slot: the caller destroys it.
    Marked,
    /// The slot holds no live context: the kernel answers.
    NotLive,
    /// The slot was given to another context since it was found: look again.
    Moved,
}

/// How [`Slot::peek_empty`] went.
pub(crate) enum Peek {
    /// No event is ready.
    Empty,
    /// Events are ready (or the indices could not be trusted).
    Events,
    /// The slot holds no live context, or one being destroyed.
    Gone,
    /// The slot was given to another context since it was found.
    Moved,
}

impl Slot {
    /// The address the slot holds.
    pub(crate) fn ctx(&self) -> usize {
        self.ctx.load(Ordering::Acquire)
    }

    /// The ring size recorded at registration.
    pub(crate) fn nr(&self) -> u32 {
        self.nr.load(Ordering::Acquire)
    }

    /// Starts `io_destroy` of `ctx` on this slot: waits for another destroy
    /// of it to end first.
    pub(crate) fn mark_dead(&self, ctx: usize) -> Mark {
        loop {
            let s = self.state.load(Ordering::Relaxed);
            if s & LIVE == 0 {
                return Mark::NotLive;
            }
            if s & DEAD != 0 {
                // Another thread's destroy, whose outcome decides ours.
                sync::wait_while(&self.state, |v| v & (LIVE | DEAD) == LIVE | DEAD);
                continue;
            }
            if self
                .state
                .compare_exchange_weak(s, s | DEAD, Ordering::SeqCst, Ordering::Relaxed)
                .is_ok()
            {
                break;
            }
        }
        // LIVE and DEAD: only we free the slot now, so its ctx is stable.
        if self.ctx.load(Ordering::Relaxed) == ctx {
            return Mark::Marked;
        }
        self.unmark_dead();
        Mark::Moved
    }

    /// Undoes [`Slot::mark_dead`]: the kernel refused the destroy.
    pub(crate) fn unmark_dead(&self) {
        let prev = self.state.fetch_and(!DEAD, Ordering::Release);
        sync::wake(&self.state, prev);
    }

    /// Waits until no thread peeks at the ring (no new one can start: `DEAD`).
    pub(crate) fn wait_for_peekers(&self) {
        sync::wait_while(&self.state, |v| v & PEEKERS != 0);
    }

    /// Frees the slot of a context the kernel no longer has (the caller set `DEAD`).
    pub(crate) fn free(&self) {
        self.ctx.store(0, Ordering::Relaxed);
        self.nr.store(0, Ordering::Relaxed);
        let prev = self.state.swap(0, Ordering::Release);
        sync::wake(&self.state, prev);
    }

    /// Whether the ring of `ctx`, held by this slot, has no event ready:
    /// libaio's answer to a zero timeout, read without a system call.
    pub(crate) fn peek_empty(&self, ctx: usize) -> Peek {
        loop {
            let s = self.state.load(Ordering::Relaxed);
            if s & (LIVE | DEAD) != LIVE {
                return Peek::Gone;
            }
            if s & PEEKERS == PEEKERS {
                sync::wait_while(&self.state, |v| v & PEEKERS == PEEKERS);
                continue;
            }
            if self
                .state
                .compare_exchange_weak(s, s + 1, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                break;
            }
        }
        // Counted as a peeker of a LIVE slot: it cannot be freed, so ctx is stable.
        let answer = if self.ctx.load(Ordering::Relaxed) != ctx {
            Peek::Moved
        } else {
            // SAFETY: a registered context not being destroyed: its ring is
            // mapped until our count is gone.
            if unsafe { ring::looks_empty(ctx) } {
                Peek::Empty
            } else {
                Peek::Events
            }
        };
        let prev = self.state.fetch_sub(1, Ordering::Release);
        sync::wake(&self.state, prev);
        answer
    }
}

/// Records a user-space context; false when no slot near its home is free
/// (the caller then fails `io_setup` with `-ENOMEM`, as the kernel does when
/// it runs out of memory for contexts).
pub(crate) fn register_emu(ctx: usize, nr: u32, ctl: usize) -> bool {
    let Some(table) = table() else {
        return false;
    };
    table.lock.with(|| {
        let Some(s) = table
            .probe(ctx)
            .find(|s| s.ctx.load(Ordering::Relaxed) == 0 && s.state.load(Ordering::Acquire) & !WAITERS == 0)
        else {
            return false;
        };
        s.ctx.store(ctx, Ordering::Relaxed);
        s.nr.store(nr, Ordering::Relaxed);
        s.ctl.store(ctl, Ordering::Relaxed);
        EMU_CONTEXTS.fetch_add(1, Ordering::Relaxed);
        s.state.fetch_or(EMU, Ordering::Release);
        true
    })
}

/// A call inside a user-space context: while it lives, the context is not
/// torn down.
pub(crate) struct EmuPin {
    slot: &'static Slot,
    ctl: usize,
}

/// Pins the user-space context `ctx`, if it is one that is not being
/// destroyed. While there is none, one relaxed load.
#[inline(always)]
pub(crate) fn pin_emu(ctx: usize) -> Option<EmuPin> {
    if EMU_CONTEXTS.load(Ordering::Relaxed) == 0 {
        return None;
    }
    pin_emu_slow(ctx)
}

#[cold]
#[inline(never)]
fn pin_emu_slow(ctx: usize) -> Option<EmuPin> {
    let slot = table()?
        .probe(ctx)
        .find(|s| s.ctx.load(Ordering::Acquire) == ctx && s.state.load(Ordering::Acquire) & EMU != 0)?;
    loop {
        let s = slot.state.load(Ordering::Relaxed);
        if s & (EMU | DEAD) != EMU {
            return None;
        }
        if s & PEEKERS == PEEKERS {
            sync::wait_while(&slot.state, |v| v & PEEKERS == PEEKERS);
            continue;
        }
        if slot
            .state
            .compare_exchange_weak(s, s + 1, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            break;
        }
    }
    // Counted in: the slot cannot be freed, so ctx and ctl are stable.
    let pin = EmuPin {
        slot,
        ctl: slot.ctl.load(Ordering::Relaxed),
    };
    (slot.ctx.load(Ordering::Relaxed) == ctx).then_some(pin)
}

impl EmuPin {
    /// The context's control block.
    pub(crate) fn ctl(&self) -> usize {
        self.ctl
    }

    /// Whether `io_destroy` has begun.
    pub(crate) fn dead(&self) -> bool {
        self.slot.state.load(Ordering::Acquire) & DEAD != 0
    }

    /// Starts `io_destroy`: false when another thread's already has.
    pub(crate) fn mark_dead(&self) -> bool {
        self.slot.state.fetch_or(DEAD, Ordering::AcqRel) & DEAD == 0
    }

    /// Waits until this pin is the only call inside (with `DEAD` set, no
    /// other can start).
    pub(crate) fn wait_alone(&self) {
        sync::wait_while(&self.slot.state, |v| v & PEEKERS > 1);
    }

    /// Waits until this pin is the only call inside, then frees the slot.
    pub(crate) fn unregister(self) {
        self.wait_alone();
        self.slot.ctl.store(0, Ordering::Relaxed);
        EMU_CONTEXTS.fetch_sub(1, Ordering::Relaxed);
        self.slot.free();
        core::mem::forget(self); // its count went with the slot
    }
}

impl Drop for EmuPin {
    fn drop(&mut self) {
        let prev = self.slot.state.fetch_sub(1, Ordering::Release);
        sync::wake(&self.slot.state, prev);
    }
}

/// Whether `ctx` is a live context of this process's registry.
#[cfg(test)]
pub(crate) fn is_registered(ctx: usize) -> bool {
    table()
        .and_then(|t| t.find(ctx))
        .is_some_and(|s| s.state.load(Ordering::Acquire) & LIVE != 0)
}
