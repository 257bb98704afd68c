//! The thread engine's executor: a bounded pool of worker threads for the
//! requests the kernel would carry out asynchronously (`O_DIRECT` reads and
//! writes, syncs), and one poller thread for polls that must wait.
//!
//! - At most [`MAX_WORKERS`] workers, however many requests are queued; a
//!   worker idle for [`IDLE_NS`] exits, so the threads never keep a process
//!   alive whose main thread has left with `pthread_exit`, and they are
//!   started again on demand.
//! - One poller waits in `poll(2)` on every pending poll request at once, so
//!   a poll that never becomes ready holds no worker; it exits when none is
//!   left.
//! - Every thread blocks all signals: the program's handlers run on its own
//!   threads, as with kernel AIO.
//! - The executor's state lives in a page the kernel gives a forked child
//!   zero-filled (`MADV_WIPEONFORK`): the child has none of the parent's
//!   threads, and starts afresh.

use super::emu::{self, Control, Req, CMD_FDSYNC, CMD_FSYNC, CMD_POLL, CMD_PREAD, CMD_PREADV};
use crate::sync::Mutex;
use crate::sys;
use core::ffi::c_void;
use core::mem::size_of;
use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicU32, Ordering};

/// Workers at most, per process.
pub(crate) const MAX_WORKERS: u32 = 8;
/// A worker with nothing to do for this long exits.
const IDLE_NS: u64 = 2_000_000_000;
/// Stack of each of our threads: they only make system calls.
const STACK: usize = 128 * 1024;
/// Idle eventfds kept for sleepers in `io_getevents`.
const POOL: usize = 32;

struct Queue {
    head: *mut Req,
    tail: *mut Req,
}

struct Polls {
    head: *mut Req,
    running: bool,
    /// Wakes the poller when the list changes.
    wake: i32,
}

struct Pool {
    fds: [i32; POOL],
    n: usize,
}

// SAFETY: the raw pointers are request records handed between threads under
// the mutexes that hold these lists; nothing in them is tied to a thread.
unsafe impl Send for Queue {}
// SAFETY: as for Queue.
unsafe impl Send for Polls {}

/// The executor's state, in a page wiped in a forked child: a word that says
/// whether the rest is set up, then the rest, written only by the thread that
/// moved the word from 0 to 1.
#[repr(C)]
struct Global {
    /// 0 in a fresh process (or a child), 1 while set up, 2 ready.
    init: AtomicU32,
    rest: Rest,
}

pub(crate) struct Rest {
    pid: i32,
    queue: Mutex<Queue>,
    /// Bumped after each push: what idle workers sleep on.
    work: AtomicU32,
    workers: AtomicU32,
    idle: AtomicU32,
    polls: Mutex<Polls>,
    pool: Mutex<Pool>,
    /// The io_uring engine's state, in the same page for the same reason.
    pub(crate) uring: super::uring::State,
}

static PAGE: AtomicPtr<Global> = AtomicPtr::new(ptr::null_mut());

/// The executor's state, set up on first use (again in a forked child).
pub(crate) fn global_state() -> Option<&'static Rest> {
    let mut page = PAGE.load(Ordering::Acquire);
    if page.is_null() {
        let p = sys::map_anonymous(4096)?;
        // SAFETY: our fresh page: a child must not inherit its contents.
        if !unsafe { sys::wipe_on_fork(p, 4096) } {
            // SAFETY: our own page, never published.
            unsafe { sys::unmap(p, 4096) };
            return None;
        }
        // The registry must forget user-space contexts in a child as well.
        if !crate::registry::wipe_on_fork_now() {
            // SAFETY: our own page, never published.
            unsafe { sys::unmap(p, 4096) };
            return None;
        }
        match PAGE.compare_exchange(ptr::null_mut(), p.cast(), Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => page = p.cast(),
            Err(other) => {
                // SAFETY: our own page, never published.
                unsafe { sys::unmap(p, 4096) };
                page = other;
            }
        }
    }
    const _: () = assert!(size_of::<Global>() <= 4096);
    // SAFETY: a page of ours, never unmapped; `init` (its first word, repr(C))
    // is an atomic, valid at zero.
    let init = unsafe { &(*page).init };
    loop {
        match init.compare_exchange(0, 1, Ordering::Acquire, Ordering::Acquire) {
            Ok(_) => {
                let rest = Rest {
                    // SAFETY: getpid has no arguments.
                    pid: unsafe { libc::getpid() },
                    queue: Mutex::new(Queue {
                        head: ptr::null_mut(),
                        tail: ptr::null_mut(),
                    }),
                    work: AtomicU32::new(0),
                    workers: AtomicU32::new(0),
                    idle: AtomicU32::new(0),
                    polls: Mutex::new(Polls {
                        head: ptr::null_mut(),
                        running: false,
                        wake: -1,
                    }),
                    pool: Mutex::new(Pool {
                        fds: [-1; POOL],
                        n: 0,
                    }),
                    uring: super::uring::State::new(),
                };
                // SAFETY: the rest of our page, which only this thread (that
                // moved init from 0 to 1) writes, and nobody reads before
                // init is 2.
                let at = page
                    .wrapping_byte_add(core::mem::offset_of!(Global, rest))
                    .cast::<Rest>();
                // SAFETY: as above: `at` is the `rest` field of our page.
                unsafe { at.write(rest) };
                init.store(2, Ordering::Release);
                break;
            }
            Err(2) => break,
            Err(_) => core::hint::spin_loop(),
        }
    }
    // SAFETY: initialised above (or by another thread, published by init = 2).
    Some(unsafe { &(*page).rest })
}

/// This process's id (for the kernel's checked copies), or None when the
/// executor cannot be set up here.
pub(crate) fn pid() -> Option<i32> {
    global_state().map(|g| g.pid)
}

/// Hands a request to the executor: a poll to the poller, the rest to a worker.
pub(crate) fn enqueue(req: *mut Req) {
    let Some(g) = global_state() else { return };
    // SAFETY: the submitter's record, now handed over.
    if unsafe { (*req).op } == CMD_POLL {
        let start = g.polls.with(|p| {
            // SAFETY: the submitter's record, now handed over; linked in under the list's lock.
            unsafe { (*req).next = p.head };
            p.head = req;
            if p.wake < 0 {
                // SAFETY: eventfd has no memory arguments.
                p.wake = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
            }
            let start = !p.running;
            p.running = true;
            if !start {
                emu::signal(p.wake);
            }
            start
        });
        if start && !spawn(poller) {
            g.polls.with(|p| p.running = false);
        }
        return;
    }
    g.queue.with(|q| {
        // SAFETY: the submitter's record, now handed over to the queue.
        unsafe { (*req).next = ptr::null_mut() };
        if q.tail.is_null() {
            q.head = req;
        } else {
            // SAFETY: the last queued record, linked under the queue's lock.
            unsafe { (*q.tail).next = req };
        }
        q.tail = req;
    });
}

/// After a submission queued `n` requests: wakes idle workers, or starts more.
pub(crate) fn kick(n: usize) {
    let Some(g) = global_state() else { return };
    g.work.fetch_add(1, Ordering::Release);
    let idle = g.idle.load(Ordering::Acquire) as usize;
    if idle > 0 {
        sys::futex_wake(&g.work, n.min(idle) as i32);
    }
    let mut missing = n.saturating_sub(idle);
    while missing > 0 && claim_worker(g) {
        if !spawn(worker) {
            g.workers.fetch_sub(1, Ordering::AcqRel);
            break;
        }
        missing -= 1;
    }
}

/// Counts one more worker, if there is room.
fn claim_worker(g: &Rest) -> bool {
    let mut w = g.workers.load(Ordering::Relaxed);
    while w < MAX_WORKERS {
        match g
            .workers
            .compare_exchange(w, w + 1, Ordering::AcqRel, Ordering::Relaxed)
        {
            Ok(_) => return true,
            Err(now) => w = now,
        }
    }
    false
}

/// Starts a detached thread with every signal blocked.
pub(crate) fn spawn(main: extern "C" fn(*mut c_void) -> *mut c_void) -> bool {
    let _keep = sys::KeepErrno::new();
    let mut all = core::mem::MaybeUninit::<libc::sigset_t>::zeroed();
    let mut old = core::mem::MaybeUninit::<libc::sigset_t>::zeroed();
    let mut attr = core::mem::MaybeUninit::<libc::pthread_attr_t>::zeroed();
    let mut tid = core::mem::MaybeUninit::<libc::pthread_t>::zeroed();
    // SAFETY: fills our own set.
    unsafe { libc::sigfillset(all.as_mut_ptr()) };
    // SAFETY: our own attribute object, initialised before use.
    unsafe { libc::pthread_attr_init(attr.as_mut_ptr()) };
    // SAFETY: our attribute object, initialised by pthread_attr_init above.
    unsafe { libc::pthread_attr_setdetachstate(attr.as_mut_ptr(), libc::PTHREAD_CREATE_DETACHED) };
    // SAFETY: our attribute object, initialised by pthread_attr_init above.
    unsafe { libc::pthread_attr_setstacksize(attr.as_mut_ptr(), STACK) };
    // The new thread inherits the creator's mask: block everything around it.
    // SAFETY: our own sets.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, all.as_ptr(), old.as_mut_ptr()) };
    // SAFETY: a function of ours that takes no argument, with our attributes.
    let r = unsafe { libc::pthread_create(tid.as_mut_ptr(), attr.as_ptr(), main, ptr::null_mut()) };
    // SAFETY: restores the caller's mask saved above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, old.as_ptr(), ptr::null_mut()) };
    // SAFETY: our attribute object, no longer needed.
    unsafe { libc::pthread_attr_destroy(attr.as_mut_ptr()) };
    r == 0
}

/// Takes the first queued request, or null.
fn pop(g: &Rest) -> *mut Req {
    g.queue.with(|q| {
        let r = q.head;
        if !r.is_null() {
            // SAFETY: the first queued record, unlinked under the lock.
            q.head = unsafe { rec(r) }.next;
            if q.head.is_null() {
                q.tail = ptr::null_mut();
            }
        }
        r
    })
}

/// A thread about to sleep in `io_getevents` carries out a queued request
/// itself, if one is waiting for a worker: at low queue depth this saves two
/// thread switches (to the worker and back) per request. False when none was.
pub(crate) fn help() -> bool {
    let Some(g) = global_state() else { return false };
    let req = pop(g);
    if req.is_null() {
        return false;
    }
    execute(req);
    true
}

extern "C" fn worker(_: *mut c_void) -> *mut c_void {
    let Some(g) = global_state() else {
        return ptr::null_mut();
    };
    loop {
        let seq = g.work.load(Ordering::Acquire);
        let req = pop(g);
        if !req.is_null() {
            execute(req);
            continue;
        }
        g.idle.fetch_add(1, Ordering::AcqRel);
        let timed_out = sys::futex_wait_for(&g.work, seq, IDLE_NS);
        g.idle.fetch_sub(1, Ordering::AcqRel);
        if timed_out && g.queue.with(|q| q.head.is_null()) {
            g.workers.fetch_sub(1, Ordering::AcqRel);
            // A request queued between the look and the count may have
            // found every worker counted and started none: take it on.
            if g.queue.with(|q| q.head.is_null()) || !claim_worker(g) {
                return ptr::null_mut();
            }
        }
    }
}

/// Carries out a queued request and posts its completion.
fn execute(req: *mut Req) {
    // SAFETY: a record taken off the queue: this worker's alone.
    let r = unsafe { &*req };
    let res = match r.op {
        CMD_FSYNC | CMD_FDSYNC => {
            let ret = if r.op == CMD_FSYNC {
                // SAFETY: fsync on our duplicate of the descriptor.
                unsafe { libc::fsync(r.fd) }
            } else {
                // SAFETY: fdatasync on our duplicate of the descriptor.
                unsafe { libc::fdatasync(r.fd) }
            };
            if ret < 0 {
                -i64::from(sys::errno())
            } else {
                0
            }
        }
        op => rw(
            r.fd,
            !(op == CMD_PREAD || op == CMD_PREADV),
            r.iov,
            r.iovcnt,
            r.offset,
            r.rw_flags,
        ),
    };
    emu::complete(req, res);
}

/// One read or write: `preadv2`/`pwritev2` at `offset` (-1: the file's own
/// position, for pipes and sockets), with the request's `RWF_*` flags.
/// Returns the count or `-errno`, as the kernel puts it in `res`.
pub(crate) fn rw(fd: i32, write: bool, iov: *const libc::iovec, cnt: i32, offset: i64, flags: i32) -> i64 {
    let _keep = sys::KeepErrno::new();
    let ret = if write {
        // SAFETY: the iovecs are the program's buffers (or our copy of its
        // array), checked as the kernel checks them; the kernel answers
        // EFAULT for bad buffers.
        unsafe { libc::pwritev2(fd, iov, cnt, offset, flags) }
    } else {
        // SAFETY: the iovecs are the program's buffers (or our copy of its array), checked as
        // the kernel checks them; the kernel answers EFAULT for bad buffers.
        unsafe { libc::preadv2(fd, iov, cnt, offset, flags) }
    };
    if ret < 0 {
        -i64::from(sys::errno())
    } else {
        ret as i64
    }
}

/// The ready mask of `fd` for `events` now (0: not ready).
pub(crate) fn poll_now(fd: i32, events: i16) -> i16 {
    let _keep = sys::KeepErrno::new();
    let mut p = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    // SAFETY: one pollfd of ours, no waiting.
    let r = unsafe { libc::poll(&mut p, 1, 0) };
    if r > 0 {
        p.revents & events
    } else {
        0
    }
}

fn drain(fd: i32) {
    let mut v: u64 = 0;
    // SAFETY: reads 8 bytes into ours from our non-blocking eventfd.
    unsafe { libc::read(fd, (&raw mut v).cast(), 8) };
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

/// The record behind a pointer the caller holds (the executor's lists, or
/// taken off them).
///
/// # Safety
/// `req` is a live record that the caller may read (it holds it, or the lock
/// of the list it is on).
unsafe fn rec<'a>(req: *mut Req) -> &'a Req {
    // SAFETY: the caller's promise.
    unsafe { &*req }
}

extern "C" fn poller(_: *mut c_void) -> *mut c_void {
    let Some(g) = global_state() else {
        return ptr::null_mut();
    };
    let mut fds = MallocBuf::<libc::pollfd>::new();
    let mut reqs = MallocBuf::<(*mut Req, u32)>::new();
    loop {
        // A snapshot of the pending polls (the list may change meanwhile:
        // each ready one is taken only if still listed).
        let n = g.polls.with(|p| {
            let mut n = 0;
            let mut r = p.head;
            while !r.is_null() {
                n += 1;
                // SAFETY: a listed record, read under the list's lock.
                r = unsafe { rec(r) }.next;
            }
            if n == 0 {
                p.running = false;
                return None;
            }
            let (Some(f), Some(q)) = (fds.get(n + 1), reqs.get(n + 1)) else {
                return Some(0);
            };
            f[0] = libc::pollfd {
                fd: p.wake,
                events: libc::POLLIN,
                revents: 0,
            };
            let mut r = p.head;
            for i in 1..=n {
                // SAFETY: a listed record, read under the list's lock.
                let rr = unsafe { rec(r) };
                f[i] = libc::pollfd {
                    fd: rr.fd,
                    events: rr.events,
                    revents: 0,
                };
                q[i] = (r, rr.gen);
                r = rr.next;
            }
            Some(n)
        });
        let Some(n) = n else { break };
        if n == 0 {
            // Out of memory for the arrays: try again a little later.
            sleep_ns(1_000_000);
            continue;
        }
        let (Some(f), Some(q)) = (fds.get(n + 1), reqs.get(n + 1)) else {
            continue;
        };
        // SAFETY: n + 1 initialised entries of our array.
        let r = unsafe { libc::poll(f.as_mut_ptr(), (n + 1) as libc::nfds_t, -1) };
        if r <= 0 {
            continue;
        }
        if f[0].revents != 0 {
            drain(f[0].fd);
        }
        for i in 1..=n {
            let (rev, (req, gen)) = (f[i].revents, q[i]);
            // The same record in the same use (a cancelled poll's record may
            // already serve another); POLLNVAL: its descriptor was closed by
            // io_cancel meanwhile.
            if rev == 0
                || rev & libc::POLLNVAL != 0
                || unlink_poll(g, |r, rr| r == req && rr.gen == gen).is_null()
            {
                continue;
            }
            // SAFETY: unlinked just now: ours.
            let rr = unsafe { rec(req) };
            emu::complete(req, i64::from(wake_mask(rr.kind, rev, rr.events)));
        }
    }
    ptr::null_mut()
}

/// The mask a poll that became ready later reports. The kernel completes it
/// from the wake-up, with the mask the file's waker passes, unfiltered (a
/// pipe's reader is woken with IN|RDNORM, a socket's with IN|PRI|RDNORM|
/// RDBAND, an eventfd's with IN); a hang-up or error wakes without one, and
/// then the file's poll mask filtered by the request is reported.
pub(crate) fn wake_mask(kind: u32, revents: i16, events: i16) -> i16 {
    use libc::{
        POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, POLLPRI, POLLRDBAND, POLLRDHUP, POLLRDNORM, POLLWRBAND,
        POLLWRNORM,
    };
    if revents & (POLLHUP | POLLERR | POLLNVAL | POLLRDHUP) != 0 {
        return revents & events;
    }
    let mut key = 0;
    if revents & (POLLIN | POLLRDNORM | POLLPRI | POLLRDBAND) != 0 {
        key |= match kind {
            libc::S_IFIFO => POLLIN | POLLRDNORM,
            libc::S_IFSOCK => POLLIN | POLLPRI | POLLRDNORM | POLLRDBAND,
            _ => POLLIN,
        };
    }
    if revents & (POLLOUT | POLLWRNORM | POLLWRBAND) != 0 {
        key |= match kind {
            libc::S_IFIFO => POLLOUT | POLLWRNORM,
            libc::S_IFSOCK => POLLOUT | POLLWRNORM | POLLWRBAND,
            _ => POLLOUT,
        };
    }
    key
}

/// Unlinks the first pending poll matching `pick`; null when none does.
fn unlink_poll(g: &Rest, pick: impl Fn(*mut Req, &Req) -> bool) -> *mut Req {
    g.polls.with(|p| {
        let mut prev: *mut Req = ptr::null_mut();
        let mut r = p.head;
        while !r.is_null() {
            // SAFETY: a listed record, reached under the list's lock.
            let rr = unsafe { rec_mut(r) };
            if pick(r, rr) {
                if prev.is_null() {
                    p.head = rr.next;
                } else {
                    // SAFETY: the record before it on the list: another one.
                    unsafe { rec_mut(prev) }.next = rr.next;
                }
                rr.next = ptr::null_mut();
                if p.wake >= 0 {
                    emu::signal(p.wake);
                }
                return r;
            }
            prev = r;
            r = rr.next;
        }
        ptr::null_mut()
    })
}

/// [`rec`], for changing the record.
///
/// # Safety
/// As for [`rec`], and no other reference to the record is alive.
unsafe fn rec_mut<'a>(req: *mut Req) -> &'a mut Req {
    // SAFETY: the caller's promise.
    unsafe { &mut *req }
}

/// Cancels the pending poll of `ctl` submitted from the iocb at `obj`: its
/// event (res 0) is posted. False when there is none.
pub(crate) fn cancel_poll(ctl: &Control, obj: u64) -> bool {
    let Some(g) = global_state() else { return false };
    let me = ctl as *const Control;
    // SAFETY: listed records are live; reading their owner and iocb address.
    let req = unlink_poll(g, |_, r| r.ctl == me && r.obj == obj);
    if req.is_null() {
        return false;
    }
    emu::complete(req, 0);
    true
}

/// Cancels every pending poll of `ctl` (its destroy).
pub(crate) fn cancel_all(ctl: &Control) {
    let Some(g) = global_state() else { return };
    let me = ctl as *const Control;
    loop {
        // SAFETY: as in cancel_poll.
        let req = unlink_poll(g, |_, r| r.ctl == me);
        if req.is_null() {
            break;
        }
        emu::complete(req, 0);
    }
}

/// CLOCK_MONOTONIC in nanoseconds.
pub(crate) fn now_ns() -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes our timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    (t.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(t.tv_nsec as u64)
}

pub(crate) fn sleep_ns(ns: u64) {
    let t = libc::timespec {
        tv_sec: (ns / 1_000_000_000) as _,
        tv_nsec: (ns % 1_000_000_000) as _,
    };
    // SAFETY: our timespec; the remainder is not wanted.
    unsafe { libc::nanosleep(&t, ptr::null_mut()) };
}

/// The absolute deadline of a relative timeout, as the kernel reads it (a
/// negative one has passed already).
pub(crate) fn deadline(t: &libc::timespec) -> u64 {
    if t.tv_sec < 0 || (t.tv_sec == 0 && t.tv_nsec <= 0) {
        return 0;
    }
    let rel = (t.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(t.tv_nsec.max(0) as u64);
    now_ns().saturating_add(rel)
}

/// An eventfd for a thread about to sleep in `io_getevents` (-1 if none can be had).
pub(crate) fn waiter_fd() -> i32 {
    let Some(g) = global_state() else { return -1 };
    let _keep = sys::KeepErrno::new();
    let fd = g.pool.with(|p| {
        if p.n == 0 {
            return -1;
        }
        p.n -= 1;
        p.fds[p.n]
    });
    if fd >= 0 {
        return fd;
    }
    // SAFETY: eventfd has no memory arguments.
    unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) }
}

/// Gives a sleeper's eventfd back, drained.
pub(crate) fn waiter_fd_done(fd: i32) {
    if fd < 0 {
        return;
    }
    let _keep = sys::KeepErrno::new();
    drain(fd);
    let kept = global_state().is_some_and(|g| {
        g.pool.with(|p| {
            if p.n == POOL {
                return false;
            }
            p.fds[p.n] = fd;
            p.n += 1;
            true
        })
    });
    if !kept {
        // SAFETY: our own eventfd, listed nowhere.
        unsafe { libc::close(fd) };
    }
}

/// Sleeps on `efd` (readable once a completion is posted) until `deadline`
/// (None: for ever), with `sigmask` in force meanwhile; as the kernel's
/// `io_getevents`, a signal handler that runs ends the wait (-EINTR), never
/// restarted. Without an eventfd (-1) it sleeps a millisecond at most.
pub(crate) fn sleep_on(efd: i32, deadline: Option<u64>, sigmask: *const libc::sigset_t) -> emu::Wait {
    let _keep = sys::KeepErrno::new();
    let mut cap = if efd < 0 { Some(1_000_000u64) } else { None };
    if let Some(d) = deadline {
        let now = now_ns();
        if now >= d {
            return emu::Wait::TimedOut;
        }
        cap = Some(cap.map_or(d - now, |c| c.min(d - now)));
    }
    let ts = cap.map(|ns| libc::timespec {
        tv_sec: (ns / 1_000_000_000) as _,
        tv_nsec: (ns % 1_000_000_000) as _,
    });
    let mut p = libc::pollfd {
        fd: efd,
        events: libc::POLLIN,
        revents: 0,
    };
    let tsp = ts.as_ref().map_or(ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: one pollfd and a timespec of ours; the mask is the caller's
    // (NULL or readable, as the kernel's io_pgetevents reads it).
    let r = unsafe { libc::ppoll(&mut p, 1, tsp, sigmask) };
    if r < 0 && sys::errno() == libc::EINTR {
        return emu::Wait::Interrupted;
    }
    if r == 0 && deadline.is_some_and(|d| now_ns() >= d) {
        return emu::Wait::TimedOut;
    }
    emu::Wait::Woken
}

/// Runs the handlers of pending signals that `sigmask` lets in, as the
/// kernel's `io_pgetevents` does on its way out (a zero-timeout `ppoll` with
/// the mask installs it for an instant).
pub(crate) fn let_signals_in(sigmask: *const libc::sigset_t) {
    let _keep = sys::KeepErrno::new();
    let zero = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: no descriptors, our timespec, the caller's mask (checked readable).
    unsafe { libc::ppoll(ptr::null_mut(), 0, &zero, sigmask) };
}
