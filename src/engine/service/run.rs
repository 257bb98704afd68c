//! The service thread's own loop: what it waits on (`ppoll` over its
//! channel, the polls' files and maybe the ring), what each message does,
//! and when it leaves. The invariants it keeps are stated in the parent
//! module (`service`), whose state it reads.

use super::*;

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
pub(super) fn main(fds: [i32; channel::MAX_BRING], gen: usize) {
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
                                // SAFETY: the list under its lock.
                                && !svc.shared.with(|s| unsafe { unlink(&mut s.polls, |p| p == req) }).is_null()
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
            let mine = |p: *mut Req| {
                // SAFETY: a listed record, under the list's lock.
                holder(unsafe { (*p).poll_state.load(Ordering::Acquire) }) == me
            };
            // SAFETY: the list under its lock.
            let p = unsafe { unlink(&mut s.signals, mine) };
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
                // SAFETY: the list under its lock.
                let claimed = svc
                    .shared
                    .with(|s| !unsafe { unlink(&mut s.polls, |p| p == req) }.is_null());
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
