//! The service thread: what a user-space engine must do when no program
//! thread is there to do it.
//!
//! - **Polls** that must wait (both engines): a poll's files reach the
//!   service as `SCM_RIGHTS` inside `io_submit` (`channel`), and it waits on
//!   all of them at once in `ppoll`; a poll that never becomes ready holds
//!   no worker.
//! - **io_uring**: it watches the io_uring when completions must be posted
//!   with no library call (contexts read directly, eventfds, threads waiting
//!   without the drainer's token), and signals the eventfds of io_uring
//!   requests, which it holds (`RingHooks`).
//!
//! # Invariants
//! - The service runs while it has work: listed polls, eventfds to signal,
//!   or a ring to watch. Work is added under `shared`'s lock, which also
//!   says whether a service runs; the service decides to leave under the
//!   same lock, after finding no work. So either it sees the work, or the
//!   one adding it sees that none runs and starts one.
//! - Starting is done by one thread (`STARTING`); others that add work
//!   meanwhile wait for the outcome, and take their work back if the
//!   service could not start.
//! - A poll is completed only by the service that holds its files (a
//!   cancellation marks it, the service posts its event, res 0), so its
//!   files are always closed in the table that holds them.
//! - A service reads one channel. If the program breaks it (closes our
//!   descriptors), a new channel and service take over; the old service
//!   finishes what it holds (each request is tagged with the service that
//!   holds its files), looking every [`LOST_TICK_NS`] since no message can
//!   wake it any more, then leaves. Only the current service looks after
//!   the ring.

use super::channel::{self, Slot};
use super::process::ForkLocal;
use super::user::{self, iocb, Control, Req};
use crate::sync::{Mutex, WAITERS};
use crate::sys::fd::{self, FileId};
use crate::sys::{self, thread::now_ns, Errno};
use core::mem::size_of;
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// The service leaves after this long with nothing to do.
const IDLE_NS: u64 = 2_000_000_000;
/// How often a service whose channel is gone looks at its work.
const LOST_TICK_NS: u64 = 10_000_000;

/// `Req::poll_state`: these bits, and in the upper 16 the tag of the
/// service that holds the request's files (the low bits of its channel's
/// generation; never 0).
const LISTED: u32 = 1;
const ARMED: u32 = 2;
const CANCELLED: u32 = 4;

fn tag_of(gen: u32) -> u32 {
    (gen & 0xffff).max(1) << 16
}

fn holder(state: u32) -> u32 {
    state & 0xffff_0000
}

/// Message kinds.
const POLL: u32 = 1;
const RESFD: u32 = 2;
const RING: u32 = 3;
const WAKE: u32 = 4;

/// What the io_uring engine asks of the service; set when its ring is made.
#[derive(Clone, Copy)]
pub(crate) struct RingHooks {
    /// Whether the ring must be watched now.
    pub(crate) watch: fn() -> bool,
    /// How long until the ring must be looked at even without a wake-up
    /// (None: no need).
    pub(crate) tick: fn() -> Option<u64>,
    /// Drain the ring; the argument is the service's own descriptor for it.
    pub(crate) drain: fn(i32),
    /// The service thread reaches the ring through its own descriptor for
    /// it (its table is its own): told once it has one, before it posts
    /// anything (a post may have to wake a thread asleep in the ring).
    pub(crate) adopt: fn(i32),
}

/// The service's run state (with `WAITERS`).
const STOPPED: u32 = 0;
const STARTING: u32 = 1;
const RUNNING: u32 = 2;

struct Shared {
    /// Listed polls, linked through `Req::next`.
    polls: *mut Req,
    /// io_uring requests posted by another thread, whose eventfds the
    /// service signals (it holds them), linked through `Req::next`.
    signals: *mut Req,
    ring: Option<(i32, FileId, RingHooks)>,
}

// SAFETY: the raw pointers are request records handed between threads under
// the mutex that holds these lists; nothing in them is tied to a thread.
unsafe impl Send for Shared {}

struct Service {
    chan: Slot,
    shared: Mutex<Shared>,
    /// STOPPED, STARTING or RUNNING (and `WAITERS`).
    run: AtomicU32,
    /// The channel generation the running service reads.
    gen: AtomicU32,
    /// The current service holds a descriptor for the ring (the program
    /// may have closed the one in its table before the service started).
    ring_ok: AtomicBool,
    /// Files the services hold or are being sent, and how many their tables
    /// can take (`RLIMIT_NOFILE`, less a few of their own): a request that
    /// would need more is refused (`-EAGAIN`) rather than lost.
    held: AtomicU32,
    room: AtomicU32,
    /// A wake-up message is on its way, unread (see [`Service::wake`]).
    wake_sent: AtomicBool,
}

static SERVICE: ForkLocal<Service> = ForkLocal::new();

fn service() -> Option<&'static Service> {
    SERVICE.get(|| Service {
        chan: Slot::new(None),
        shared: Mutex::new(Shared {
            polls: ptr::null_mut(),
            signals: ptr::null_mut(),
            ring: None,
        }),
        run: AtomicU32::new(STOPPED),
        gen: AtomicU32::new(0),
        ring_ok: AtomicBool::new(false),
        held: AtomicU32::new(0),
        room: AtomicU32::new(0),
        wake_sent: AtomicBool::new(false),
    })
}

impl Service {
    /// Makes sure a service runs and reads the current channel: false when
    /// none can (no channel, no thread, no table of its own). One that reads
    /// a channel the program broke is left to finish what it holds, and a
    /// new one started.
    fn ensure(&'static self) -> bool {
        loop {
            let v = self.run.load(Ordering::SeqCst);
            match v & !WAITERS {
                RUNNING => {
                    let Ok((_, now)) = self.chan.get() else {
                        return false;
                    };
                    if now == self.gen.load(Ordering::SeqCst) {
                        return true;
                    }
                    // Its channel is gone: it is no longer the current one.
                    let _ = self
                        .run
                        .compare_exchange(v, STOPPED, Ordering::SeqCst, Ordering::SeqCst);
                }
                STARTING => {
                    crate::sync::wait_while(&self.run, |now| now & !WAITERS == STARTING);
                }
                _ => {
                    if self
                        .run
                        .compare_exchange(v, STARTING, Ordering::SeqCst, Ordering::SeqCst)
                        .is_err()
                    {
                        continue;
                    }
                    let ok = self.start();
                    let prev = self
                        .run
                        .swap(if ok { RUNNING } else { STOPPED }, Ordering::SeqCst);
                    crate::sync::wake(&self.run, prev);
                    return ok;
                }
            }
        }
    }

    fn start(&'static self) -> bool {
        let Ok(((rx, rx_id), gen)) = self.chan.receiver() else {
            return false;
        };
        self.room.store(table_room(), Ordering::SeqCst);
        self.gen.store(gen, Ordering::SeqCst);
        // The ring, if the program's descriptor for it is still the ring's
        // (one made after this look is sent to us: see `set_ring`).
        self.ring_ok.store(false, Ordering::SeqCst);
        let ring = self
            .shared
            .with(|s| s.ring.map(|(fd, id, _)| (fd, id)))
            .filter(|&(fd, id)| fd::fstat(fd).is_ok_and(|s| s.id == id));
        if ring.is_some() {
            self.ring_ok.store(true, Ordering::SeqCst);
        }
        let mut bring = [(rx, rx_id), (-1, FileId::default())];
        let n = match ring {
            Some(r) => {
                bring[1] = r;
                2
            }
            None => 1,
        };
        channel::spawn_private(&bring[..n], main, gen as usize).is_ok()
    }

    /// Sends a message to the current service, starting one if need be
    /// (and again if the program broke the channel on the way); `wait`: for
    /// room in the channel, a moment (see `channel`).
    fn send(&'static self, payload: &[u8], fds: &[i32], wait: bool) -> Result<(), Errno> {
        for _ in 0..2 {
            if !self.ensure() {
                return Err(Errno(libc::EAGAIN));
            }
            match self
                .chan
                .send_on(self.gen.load(Ordering::SeqCst), payload, fds, wait)
            {
                Err(Errno(libc::EBADF)) => continue,
                r => return r,
            }
        }
        Err(Errno(libc::EBADF))
    }

    /// Wakes the running service (starting one if need be). One wake-up
    /// message unread covers any number: the service reads every message,
    /// then clears `wake_sent`, then looks at all its work. A channel full
    /// of unread messages wakes it as well as one more would.
    fn wake(&'static self) -> Result<(), Errno> {
        if !self.ensure() {
            return Err(Errno(libc::EAGAIN));
        }
        if self.wake_sent.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        match self.send(&message(ptr::null_mut(), 0, WAKE), &[], false) {
            Ok(()) | Err(Errno(libc::EAGAIN)) => Ok(()),
            Err(e) => {
                self.wake_sent.store(false, Ordering::SeqCst);
                Err(e)
            }
        }
    }
}

/// How many files a service's table can take: `RLIMIT_NOFILE`, less its
/// own few (channel, ring, a pidfd while it starts, room to spare).
fn table_room() -> u32 {
    let mut r = core::mem::MaybeUninit::<libc::rlimit>::zeroed();
    // SAFETY: getrlimit writes our struct.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, r.as_mut_ptr()) } == 0;
    let cur = if ok {
        // SAFETY: zero-initialised, filled by getrlimit.
        unsafe { r.assume_init() }.rlim_cur
    } else {
        1024
    };
    (cur.min(u64::from(u32::MAX) as libc::rlim_t) as u32)
        .saturating_sub(8)
        .max(8)
}

impl Service {
    /// Room for `n` more files in the service's table, taken; false when
    /// there is none.
    fn take_room(&self, n: u32) -> bool {
        let held = self.held.fetch_add(n, Ordering::SeqCst) + n;
        if held > self.room.load(Ordering::SeqCst) {
            self.held.fetch_sub(n, Ordering::SeqCst);
            return false;
        }
        true
    }
}

/// `n` files the service held are closed.
fn give_room(n: u32) {
    if let Some(svc) = service() {
        svc.held.fetch_sub(n, Ordering::SeqCst);
    }
}

/// The record generation a message names.
fn gen_of(payload: &[u8; 16]) -> u32 {
    u32::from_ne_bytes(payload[8..12].try_into().unwrap_or([0; 4]))
}

fn message(req: *mut Req, gen: u32, kind: u32) -> [u8; 16] {
    let mut p = [0u8; 16];
    p[..8].copy_from_slice(&(req as u64).to_ne_bytes());
    p[8..12].copy_from_slice(&gen.to_ne_bytes());
    p[12..16].copy_from_slice(&kind.to_ne_bytes());
    p
}

/// Hands a poll that must wait to the service, with its files (sent now,
/// inside `io_submit`), room for them reserved ([`reserve_poll`]).
/// `Err(EAGAIN)` when the service cannot be reached (the room goes back).
///
/// # Safety
/// `req` is a filled poll record in flight, handed over.
pub(crate) unsafe fn start_poll(req: *mut Req) -> Result<(), i32> {
    let svc = service().ok_or(libc::EAGAIN)?;
    // SAFETY: the caller's record.
    let r = unsafe { &*req };
    svc.shared.with(|s| {
        // SAFETY: the caller's record, linked in under the list's lock.
        unsafe { (*req).next = s.polls };
        s.polls = req;
        r.poll_state.store(LISTED, Ordering::Release);
    });
    let fds = [r.fd, r.resfd];
    let n = if r.resfd >= 0 { 2 } else { 1 };
    r.handed.fetch_add(1, Ordering::Release);
    if svc.send(&message(req, r.gen, POLL), &fds[..n], true).is_err() {
        give_room(n as u32);
        svc.shared.with(|s| unlink(&mut s.polls, |p| p == req));
        return Err(libc::EAGAIN);
    }
    Ok(())
}

/// Room in a running service for a poll's `nfds` files, taken (then
/// [`start_poll`] or [`release_poll`]): false when no service can take it.
pub(crate) fn reserve_poll(nfds: u32) -> bool {
    service().is_some_and(|svc| svc.ensure() && svc.take_room(nfds))
}

/// Gives back room reserved for a poll that was done otherwise.
pub(crate) fn release_poll(nfds: u32) {
    give_room(nfds);
}

/// Cancels `ctl`'s listed polls submitted from the iocb at `obj` (None: all
/// of them): the service posts their events, res 0. Whether one was.
pub(crate) fn cancel_polls(ctl: &Control, obj: Option<u64>) -> bool {
    let Some(svc) = service() else { return false };
    let me = ctl as *const Control;
    let any = svc.shared.with(|s| {
        let mut any = false;
        let mut p = s.polls;
        while !p.is_null() {
            // SAFETY: a listed record, read under the list's lock.
            let r = unsafe { &*p };
            if r.ctl == me
                && obj.is_none_or(|o| r.obj == o)
                && r.poll_state.load(Ordering::Acquire) & CANCELLED == 0
            {
                r.poll_state.fetch_or(CANCELLED, Ordering::AcqRel);
                any = true;
                if obj.is_some() {
                    break;
                }
            }
            p = r.next;
        }
        any
    });
    if any {
        let _ = svc.wake();
    }
    any
}

/// Sends the eventfd of an io_uring request to the service, which will
/// signal it (`signal_later`); inside `io_submit`.
///
/// # Safety
/// `req` is a filled record in flight with an eventfd.
pub(crate) unsafe fn hold_eventfd(req: *mut Req) -> Result<(), i32> {
    let svc = service().ok_or(libc::EAGAIN)?;
    // SAFETY: the caller's record.
    let r = unsafe { &*req };
    if !(svc.ensure() && svc.take_room(1)) {
        return Err(libc::EAGAIN);
    }
    r.handed.fetch_add(1, Ordering::Release);
    svc.send(&message(req, r.gen, RESFD), &[r.resfd], true)
        .map_err(|_| {
            give_room(1);
            libc::EAGAIN
        })
}

/// An io_uring request posted by whichever thread drained it: the service
/// that holds its eventfd signals it and gives the record back.
///
/// # Safety
/// `req` is a posted record whose eventfd went to the service; the caller
/// gives it up.
pub(crate) unsafe fn signal_later(req: *mut Req) {
    let Some(svc) = service() else { return };
    svc.shared.with(|s| {
        // SAFETY: the caller's record, linked in under the list's lock.
        unsafe { (*req).next = s.signals };
        s.signals = req;
    });
    // The service itself looks at its list before it sleeps again.
    if !channel::in_own_table() {
        let _ = svc.wake();
    }
}

/// The io_uring engine's ring and hooks, once made; a service running or
/// starting gets its own descriptor for the ring (one that started before
/// the ring was stored did not see it; one that saw it gets it twice).
pub(crate) fn set_ring(fd: i32, id: FileId, hooks: RingHooks) {
    let Some(svc) = service() else { return };
    svc.shared.with(|s| s.ring = Some((fd, id, hooks)));
    if svc.run.load(Ordering::SeqCst) & !WAITERS != STOPPED
        && svc
            .chan
            .send_on(
                svc.gen.load(Ordering::SeqCst),
                &message(ptr::null_mut(), 0, RING),
                &[fd],
                true,
            )
            .is_ok()
    {
        svc.ring_ok.store(true, Ordering::SeqCst);
    }
}

/// The io_uring engine needs the service (to watch its ring): started if
/// none runs, woken if one does. False when none can run, or the one that
/// runs has no descriptor for the ring (the program closed ours before it
/// started): then what needs it is done inside `io_submit`.
pub(crate) fn kick() -> bool {
    if channel::in_own_table() {
        return true; // the service itself: it looks again before it sleeps
    }
    let Some(svc) = service() else { return false };
    svc.wake().is_ok() && svc.ring_ok.load(Ordering::SeqCst)
}

/// Whether a service runs (started if need be) that can watch the ring.
pub(crate) fn can_watch_ring() -> bool {
    service().is_some_and(|svc| svc.ensure() && svc.ring_ok.load(Ordering::SeqCst))
}

/// Unlinks the first record of `head`'s list that `pick` chooses; null when none.
fn unlink(head: &mut *mut Req, pick: impl Fn(*mut Req) -> bool) -> *mut Req {
    let mut at: *mut *mut Req = head;
    loop {
        // SAFETY: `at` is the list head or the `next` of a listed record,
        // under the list's lock.
        let p = unsafe { *at };
        if p.is_null() || pick(p) {
            if !p.is_null() {
                // SAFETY: `p` is listed, read under the list's lock.
                let next = unsafe { (*p).next };
                // SAFETY: as above: `at` is the head or a listed `next`.
                unsafe { *at = next };
            }
            return p;
        }
        // SAFETY: `p` is listed.
        at = unsafe { &raw mut (*p).next };
    }
}

/// A growable array in malloc'd memory (the library has no allocator of its
/// own), for plain-data elements that are valid all-zero.
struct MallocBuf<T: Copy> {
    ptr: *mut T,
    cap: usize,
}

impl<T: Copy> MallocBuf<T> {
    const fn new() -> Self {
        MallocBuf {
            ptr: ptr::null_mut(),
            cap: 0,
        }
    }

    /// The first `n` elements (zeroed when new), or None without memory.
    fn get(&mut self, n: usize) -> Option<&mut [T]> {
        if n > self.cap {
            let want = n.next_power_of_two();
            // SAFETY: growing our own allocation (realloc of null allocates).
            let p = unsafe { libc::realloc(self.ptr.cast(), want * size_of::<T>()) }.cast::<T>();
            if p.is_null() {
                return None;
            }
            // SAFETY: the new tail of our allocation, zeroed so that every
            // element is initialised (T is valid all-zero).
            unsafe { p.wrapping_add(self.cap).write_bytes(0, want - self.cap) };
            self.ptr = p;
            self.cap = want;
        }
        // SAFETY: n <= cap initialised elements of our allocation, borrowed
        // mutably through `self`.
        Some(unsafe { core::slice::from_raw_parts_mut(self.ptr, n) })
    }
}

impl<T: Copy> Drop for MallocBuf<T> {
    fn drop(&mut self) {
        // SAFETY: our allocation (free of null does nothing).
        unsafe { libc::free(self.ptr.cast()) };
    }
}

/// The service thread, in a table of its own holding its channel's
/// receiving end (`fds[0]`) and maybe the ring (`fds[1]`).
fn main(fds: [i32; channel::MAX_BRING], gen: usize) {
    let Some(svc) = service() else {
        return;
    };
    let gen = gen as u32;
    let me = tag_of(gen);
    // Whether this is the service of the current channel (not one left to
    // finish its work after the program broke its channel).
    let current =
        || svc.gen.load(Ordering::SeqCst) == gen && svc.run.load(Ordering::SeqCst) & !WAITERS == RUNNING;
    let (rx, mut ring) = (fds[0], fds[1]);
    if ring >= 0 {
        if let Some(h) = svc.shared.with(|s| s.ring.map(|(_, _, h)| h)) {
            (h.adopt)(ring);
        }
    }
    let mut set = MallocBuf::<libc::pollfd>::new();
    let mut recs = MallocBuf::<*mut Req>::new();
    let mut lost = false;
    let mut idle_since = now_ns();
    let mut payload = [0u8; 16];
    // Eventfds of io_uring requests this service holds: it stays until it
    // has signalled each (no other table has them).
    let mut holding: u32 = 0;
    loop {
        // 1. Messages: polls' and eventfds' files, the ring, wake-ups.
        while !lost {
            match fd::recv_with_fds(rx, &mut payload, false) {
                Ok(m) if m.len == payload.len() => {
                    let kind = u32::from_ne_bytes(payload[12..16].try_into().unwrap_or([0; 4]));
                    let req =
                        u64::from_ne_bytes(payload[..8].try_into().unwrap_or([0; 8])) as usize as *mut Req;
                    let held = |i: usize| if i < m.nfds { m.fds[i] } else { -1 };
                    // The submitter's writes to the record, made before it
                    // sent the message (its `handed` release), are ours now.
                    let stale = (kind == POLL || kind == RESFD) && !req.is_null() && {
                        // SAFETY: a record in flight that the message names.
                        let r = unsafe { &*req };
                        r.handed.load(Ordering::Acquire);
                        r.gen != gen_of(&payload)
                    };
                    match kind {
                        POLL | RESFD if stale => {
                            // Not the use of the record the message was for
                            // (cannot happen): drop what it carried, and
                            // the room it was given.
                            for &f in &m.fds[..m.nfds] {
                                fd::close(f);
                            }
                            give_room(if kind == POLL { 2 } else { 1 }.min(m.nfds.max(1)) as u32);
                        }
                        POLL => {
                            // SAFETY: a listed poll record handed over to us.
                            let r = unsafe { &*req };
                            r.handed.load(Ordering::Acquire);
                            r.held_fd.store(held(0), Ordering::Release);
                            r.held_resfd.store(held(1), Ordering::Release);
                            r.poll_state.fetch_or(ARMED | me, Ordering::AcqRel);
                            if held(0) < 0
                                && !svc.shared.with(|s| unlink(&mut s.polls, |p| p == req)).is_null()
                            {
                                // Its file did not fit in our table (the
                                // limit was lowered): it fails, never hangs.
                                // SAFETY: unlinked: ours.
                                unsafe { finish_poll(req, -i64::from(libc::EMFILE)) };
                            }
                        }
                        RESFD => {
                            // SAFETY: a record in flight whose eventfd is ours to hold.
                            let r = unsafe { &*req };
                            r.held_resfd.store(held(0), Ordering::Release);
                            r.poll_state.fetch_or(me, Ordering::AcqRel);
                            holding += 1;
                        }
                        RING => {
                            if ring >= 0 {
                                fd::close(ring);
                            }
                            ring = held(0);
                            if let Some(h) = svc.shared.with(|s| s.ring.map(|(_, _, h)| h)) {
                                (h.adopt)(ring);
                            }
                        }
                        _ => {
                            for i in 0..m.nfds {
                                fd::close(m.fds[i]);
                            }
                        }
                    }
                }
                Ok(m) if m.len == 0 => lost = true,
                Ok(m) => {
                    for i in 0..m.nfds {
                        fd::close(m.fds[i]);
                    }
                }
                Err(e) if e.0 == libc::EAGAIN => break,
                Err(e) if e.0 == libc::EINTR => {}
                Err(_) => lost = true,
            }
        }
        // Every message sent before this store has been read: a waker
        // that finds the flag set after it sent one that is still unread,
        // and its work is looked at below in any case.
        svc.wake_sent.store(false, Ordering::SeqCst);
        // 2. Eventfds of io_uring requests that were posted, those this
        // service holds (another's are numbers of another table; one whose
        // message is still on its way waits for it).
        let mut signals: *mut Req = ptr::null_mut();
        svc.shared.with(|s| loop {
            let p = unlink(&mut s.signals, |p| {
                // SAFETY: a listed record, under the list's lock.
                holder(unsafe { (*p).poll_state.load(Ordering::Acquire) }) == me
            });
            if p.is_null() {
                break;
            }
            // SAFETY: unlinked just now: ours.
            unsafe { (*p).next = signals };
            signals = p;
        });
        while !signals.is_null() {
            // SAFETY: a posted record given to us.
            let next = unsafe { (*signals).next };
            // SAFETY: as above.
            unsafe { finish_signalled(signals) };
            holding = holding.saturating_sub(1);
            signals = next;
        }
        // 3. The poll set: cancelled polls completed, the rest listed.
        // The current service looks after the ring; while it has none (the
        // program closed our descriptor for it before it started), the one
        // left to finish does, for the requests still in the kernel.
        let hooks = svc
            .shared
            .with(|s| s.ring.map(|(_, _, h)| h))
            .filter(|_| ring >= 0 && (current() || !svc.ring_ok.load(Ordering::SeqCst)));
        let watch = ring >= 0 && hooks.is_some_and(|h| (h.watch)());
        let mut cancelled: *mut Req = ptr::null_mut();
        let n = svc.shared.with(|s| {
            let mut n = 0;
            let mut at: *mut *mut Req = &mut s.polls;
            loop {
                // SAFETY: the list head or a listed record's `next`, under the lock.
                let p = unsafe { *at };
                if p.is_null() {
                    break;
                }
                // SAFETY: a listed record.
                let r = unsafe { &*p };
                let st = r.poll_state.load(Ordering::Acquire);
                let mine = st & ARMED != 0 && holder(st) == me;
                if mine && st & CANCELLED != 0 {
                    // SAFETY: unlinked under the lock: ours.
                    unsafe { *at = r.next };
                    // SAFETY: as above.
                    unsafe { (*p).next = cancelled };
                    cancelled = p;
                    continue;
                }
                if mine {
                    n += 1;
                }
                // SAFETY: a listed record.
                at = unsafe { &raw mut (*p).next };
            }
            n
        });
        while !cancelled.is_null() {
            // SAFETY: records we unlinked.
            let next = unsafe { (*cancelled).next };
            // SAFETY: as above.
            unsafe { finish_poll(cancelled, 0) };
            cancelled = next;
        }
        let extra = 1 + usize::from(watch);
        let (Some(f), Some(q)) = (set.get(n + extra), recs.get(n + extra)) else {
            sys::thread::sleep_ns(1_000_000); // out of memory for the poll set
            continue;
        };
        f[0] = libc::pollfd {
            fd: if lost { -1 } else { rx },
            events: libc::POLLIN,
            revents: 0,
        };
        if watch {
            f[1] = libc::pollfd {
                fd: ring,
                events: libc::POLLIN,
                revents: 0,
            };
        }
        let listed = svc.shared.with(|s| {
            let mut k = extra;
            let mut p = s.polls;
            while !p.is_null() && k < n + extra {
                // SAFETY: a listed record, under the lock.
                let r = unsafe { &*p };
                let st = r.poll_state.load(Ordering::Acquire);
                if st & ARMED != 0 && holder(st) == me && st & CANCELLED == 0 {
                    f[k] = libc::pollfd {
                        fd: r.held_fd.load(Ordering::Acquire),
                        events: r.events,
                        revents: 0,
                    };
                    q[k] = p;
                    k += 1;
                }
                p = r.next;
            }
            k
        });
        // 4. Leave when there is nothing to do, under the lock that adds work.
        let tick = hooks.and_then(|h| (h.tick)());
        let busy = listed > extra || watch || tick.is_some() || holding > 0;
        if busy {
            idle_since = now_ns();
        } else if now_ns().saturating_sub(idle_since) >= IDLE_NS || lost {
            // Under the lock that adds work: either it sees the work, or the
            // one adding it sees the service stopped and starts another.
            let leave = svc.shared.with(|s| {
                let mine = |list: *mut Req, unclaimed: bool| {
                    let mut p = list;
                    while !p.is_null() {
                        // SAFETY: a listed record, under the lock.
                        let r = unsafe { &*p };
                        let h = holder(r.poll_state.load(Ordering::Acquire));
                        if h == me || (unclaimed && h == 0) {
                            return true;
                        }
                        p = r.next;
                    }
                    false
                };
                let ring_work = |s: &Shared| {
                    ring >= 0
                        && s.ring
                            .is_some_and(|(_, _, h)| (h.watch)() || (h.tick)().is_some())
                };
                if !current() {
                    // Left to finish: what it holds, and the ring while the
                    // current service has none (asked only then: the hooks
                    // keep the current service's tick).
                    let ring_duty = !svc.ring_ok.load(Ordering::SeqCst) && ring_work(s);
                    return if mine(s.polls, false) || mine(s.signals, false) || ring_duty {
                        Leave::Stay
                    } else {
                        Leave::Go
                    };
                }
                if mine(s.polls, true) || mine(s.signals, true) {
                    return Leave::Stay;
                }
                // Stopped first, then the ring's needs looked at again: one
                // who counted a need before our store saw us running and
                // relies on us (each side writes, then reads the other's).
                svc.run.store(STOPPED, Ordering::SeqCst);
                if ring_work(s) {
                    // Taken back, unless another service is starting; then
                    // everything is looked at again (the tick changed).
                    return match svc.run.compare_exchange(
                        STOPPED,
                        RUNNING,
                        Ordering::SeqCst,
                        Ordering::SeqCst,
                    ) {
                        Ok(_) => Leave::Again,
                        Err(_) => Leave::Go,
                    };
                }
                Leave::Go
            });
            match leave {
                Leave::Go => break,
                Leave::Again => continue,
                Leave::Stay => {}
            }
        }
        let mut timeout = if busy { None } else { Some(IDLE_NS) };
        if let Some(t) = tick {
            timeout = Some(timeout.map_or(t, |x| x.min(t)));
        }
        // A service that cannot be woken (its channel is gone), or whose
        // eventfds' requests another service may drain (it has no ring: a
        // service left to finish drains it, and cannot wake us), looks
        // every tick.
        if lost || (holding > 0 && ring < 0) {
            timeout = Some(timeout.map_or(LOST_TICK_NS, |x| x.min(LOST_TICK_NS)));
        }
        let r = fd::ppoll(&mut f[..listed], timeout, ptr::null());
        if matches!(r, Err(e) if e.0 != libc::EINTR) {
            // Cannot happen within `room`: never spin on it.
            sys::thread::sleep_ns(1_000_000);
        }
        // 5. Polls that fired.
        if matches!(r, Ok(k) if k > 0) {
            for i in extra..listed {
                let (rev, req) = (f[i].revents, q[i]);
                if rev == 0 {
                    continue;
                }
                let claimed = svc.shared.with(|s| !unlink(&mut s.polls, |p| p == req).is_null());
                if !claimed {
                    continue;
                }
                // SAFETY: unlinked just now: ours.
                let rr = unsafe { &*req };
                let cancelled = rr.poll_state.load(Ordering::Acquire) & CANCELLED != 0;
                let mask = if cancelled {
                    0
                } else {
                    i64::from(iocb::wake_mask(rr.kind, rev, rr.events))
                };
                // SAFETY: as above.
                unsafe { finish_poll(req, mask) };
            }
        }
        // 6. The ring.
        if let Some(h) = hooks {
            if ring >= 0 && (watch || tick.is_some()) {
                (h.drain)(ring);
            }
        }
    }
    fd::close(rx);
    if ring >= 0 {
        fd::close(ring);
    }
}

/// What a service that found nothing to do decides.
enum Leave {
    Go,
    Stay,
    /// Taken back after it had stopped: look at everything again.
    Again,
}

/// Posts a poll the service held, closing its files first.
///
/// # Safety
/// `req` is an unlinked poll record this service armed.
unsafe fn finish_poll(req: *mut Req, res: i64) {
    // SAFETY: the caller's promise.
    let r = unsafe { &*req };
    let file = r.held_fd.swap(-1, Ordering::AcqRel);
    if file >= 0 {
        fd::close(file);
    }
    let efd = r.held_resfd.swap(-1, Ordering::AcqRel);
    give_room(if r.resfd >= 0 { 2 } else { 1 });
    r.poll_state.store(0, Ordering::Release);
    // SAFETY: the caller's promise; `efd` is ours.
    unsafe { user::complete(req, res, efd) };
    if efd >= 0 {
        fd::close(efd);
    }
}

/// Signals the eventfd of a request another thread posted, and gives the
/// record back.
///
/// # Safety
/// `req` is a posted record given to the service.
unsafe fn finish_signalled(req: *mut Req) {
    // SAFETY: the caller's promise.
    let r = unsafe { &*req };
    let efd = r.held_resfd.swap(-1, Ordering::AcqRel);
    if efd >= 0 {
        let _ = fd::eventfd_signal(efd);
        fd::close(efd);
    }
    give_room(1);
    // SAFETY: a record's control block outlives it.
    let ctl = unsafe { &*r.ctl };
    // SAFETY: the caller's promise.
    unsafe { ctl.finish(req) };
}
