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

mod run;

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
        channel::spawn_private(&bring[..n], run::main, gen as usize).is_ok()
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
    let cur = crate::sys::process::nofile_limit().unwrap_or(1024);
    (cur.min(u64::from(u32::MAX)) as u32).saturating_sub(8).max(8)
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
pub(crate) unsafe fn start_poll(req: *mut Req) -> Result<(), Errno> {
    let svc = service().ok_or(Errno(libc::EAGAIN))?;
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
        // SAFETY: the list under its lock.
        svc.shared.with(|s| unsafe { unlink(&mut s.polls, |p| p == req) });
        return Err(Errno(libc::EAGAIN));
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
pub(crate) unsafe fn hold_eventfd(req: *mut Req) -> Result<(), Errno> {
    let svc = service().ok_or(Errno(libc::EAGAIN))?;
    // SAFETY: the caller's record.
    let r = unsafe { &*req };
    if !(svc.ensure() && svc.take_room(1)) {
        return Err(Errno(libc::EAGAIN));
    }
    r.handed.fetch_add(1, Ordering::Release);
    svc.send(&message(req, r.gen, RESFD), &[r.resfd], true)
        .map_err(|_| {
            give_room(1);
            Errno(libc::EAGAIN)
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
///
/// # Safety
/// The list's records are valid and linked through `next`, and the list's
/// lock (`shared`) is held.
unsafe fn unlink(head: &mut *mut Req, pick: impl Fn(*mut Req) -> bool) -> *mut Req {
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
