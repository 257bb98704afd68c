//! User-space contexts: the `io_context_t` is the address of a ring of ours,
//! laid out exactly as the kernel's `struct aio_ring`, so a program that
//! reads completions straight from it (QEMU, fio's `userspace_reap`) works
//! as on kernel AIO. Requests are checked as the kernel checks them
//! (`iocb`), done inside `io_submit` where the kernel does them there, and
//! otherwise carried out by an executor ([`Executor`]).
//!
//! # The ring and its readers
//! A completion is posted the kernel's way: event written, `tail` moved
//! (release), then sleepers woken, then the request's eventfd signalled, so
//! a reader woken by any of these finds the event. `head` is moved only by
//! readers (ours, under `reap`, or the program's) and always re-read.
//!
//! # Records
//! Everything a context needs lives in one private anonymous mapping: the
//! ring's pages, then its [`Control`] and one [`Req`] record per slot of the
//! ring, so nothing is allocated per request (only a copy of a vector
//! request's iovec array, as the kernel copies it). A record belongs to one
//! party at a time: the free list (under `state`), the submitter, the
//! executor (its channel, queue, ring or poll list), and back.
//!
//! # Waiting
//! Sleepers in `io_getevents` wait on `seq`, a futex word bumped by every
//! post: no descriptor, no limit on their number. On io_uring one of them
//! may sleep in the io_uring itself instead (`wait`); an event posted for
//! its context by any other way wakes it there with a `NOP`.
//!
//! # Destroy
//! `io_destroy` marks the context dead (no call gets in), wakes sleepers,
//! cancels pending polls, waits for every record to come back (`inflight`
//! 0), then unmaps. A record's last touch of the mapping is that count.

pub(crate) mod avail;
mod env;
pub(crate) mod files;
pub(crate) mod iocb;
mod setup;
pub(crate) mod submit;
pub(crate) mod wait;

pub(crate) use setup::{cancel, control, destroy, setup, KIOCB_KEY};

use super::process;
use crate::abi::{aio_ring, io_context_t, io_event};
use crate::registry::{self, EmuPin};
use crate::sync::{self, Lock, Mutex};
use crate::sys::Errno;
use crate::{diag, sys};
use avail::Avail;
use core::mem::{offset_of, size_of};
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering};

const PAGE: usize = 4096;
/// No request record.
pub(crate) const NONE: u32 = u32::MAX;

/// Who carries out a context's requests beyond what `io_submit` does
/// itself: the one interface through which this module reaches an engine
/// (the engines depend on this module, never the reverse).
pub(crate) trait Executor: Sync {
    /// Its name, as the diagnostics say it.
    fn name(&self) -> &'static str;
    /// Whether a buffered read that would block is worth handing over
    /// (io_uring), or is done inside `io_submit` as kernel AIO does it.
    fn async_buffered(&self) -> bool;
    /// Takes checked requests (reads, writes, syncs), holding their files
    /// before it returns; those it cannot take it runs here, inside
    /// `io_submit` (`submit::run_here`).
    ///
    /// # Safety
    /// Each record of `reqs` belongs to `ctl`, was filled by the calling
    /// `io_submit` and is handed to no one else.
    unsafe fn start(&self, ctl: &Control, reqs: &[*mut Req]);
    /// Room for a poll that must wait, with `nfds` files: taken, or false.
    fn reserve_poll(&self, nfds: u32) -> bool;
    /// Gives back the room of a poll done otherwise.
    fn release_poll(&self, nfds: u32);
    /// Takes a poll that must wait (room reserved); `Err(errno)` when it
    /// cannot after all (the room goes back).
    ///
    /// # Safety
    /// `req` is a filled poll record in flight, handed over.
    unsafe fn start_poll(&self, req: *mut Req) -> Result<(), Errno>;
    /// Cancels `ctl`'s pending polls submitted from the iocb at `obj`
    /// (None: all of them); their events (res 0) come through the ring.
    /// Whether one was.
    fn cancel_polls(&self, ctl: &Control, obj: Option<u64>) -> bool;
    /// Sleeps until `done()`, the deadline or a signal handler, seeing to
    /// it that the completions it waits for are posted: `standby` is how
    /// the caller sleeps when nothing else is needed of it. `ctl`: the
    /// context waited for, if any.
    fn wait(
        &self,
        ctl: Option<&Control>,
        done: &dyn Fn() -> bool,
        standby: &dyn Fn(Option<u64>) -> wait::Wait,
        deadline: Option<u64>,
        sigmask: *const libc::sigset_t,
    ) -> wait::Wait;
    /// An event was posted by some other way for a context whose sleeper
    /// waits inside the executor (io_uring's ring): wake it.
    fn nudge(&self);
    /// A record came back by some other way than the executor's own
    /// completions (a poll, a request done inside `io_submit`): a thread
    /// waiting inside the executor for records to come back is woken. No
    /// context may be touched here: it may be gone.
    fn returned(&self);
}

/// What a request does.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Op {
    Read,
    Write,
    Fsync,
    Fdsync,
    Poll,
}

/// A context's state that changes under its lock.
struct State {
    avail: Avail,
    /// Our own copy of the tail (the ring's copy is the program's to read).
    tail: u32,
    /// First free request record.
    free: u32,
}

/// A user-space context's control block, in its mapping after the ring.
pub(crate) struct Control {
    pub(crate) exec: &'static dyn Executor,
    ring: usize,
    pub(crate) nr: u32,
    map_len: usize,
    state: Mutex<State>,
    /// Serialises our readers of the ring.
    reap: Lock,
    /// Bumped by every post (and by destroy): what sleepers wait on.
    pub(crate) seq: AtomicU32,
    /// Threads asleep on `seq` (see `wait`).
    pub(crate) sleepers: AtomicU32,
    /// io_uring: threads asleep in the io_uring waiting for this context
    /// (an event posted another way must wake them with a `NOP`).
    pub(crate) ring_sleepers: AtomicU32,
    /// Records with an executor, not yet given back (destroy waits for 0).
    pub(crate) inflight: AtomicU32,
    /// Of those, buffered reads and writes that io_uring runs: kernel AIO
    /// would have finished them inside `io_submit`, so `io_getevents` with
    /// `min_nr` 0 waits for them (see `wait`).
    pub(crate) due: AtomicU32,
    /// `io_getevents` has been called on it: its program reaps through the
    /// library (io_uring: its completions need no prompt drainer).
    pub(crate) driven: AtomicBool,
    reqs: *mut Req,
}

/// A request handed to an executor.
pub(crate) struct Req {
    next_free: u32,
    pub(crate) ctl: *const Control,
    pub(crate) obj: u64,
    pub(crate) data: u64,
    pub(crate) op: Op,
    /// The program's descriptor: used only inside the `io_submit` that took
    /// the request (after it, the number may name another file).
    pub(crate) fd: i32,
    /// The program's eventfd (`IOCB_FLAG_RESFD`), or -1; as `fd`.
    pub(crate) resfd: i32,
    /// The executor's own descriptors for those files, in its thread's
    /// table (`channel`), once received; -1 until then and after.
    pub(crate) held_fd: AtomicI32,
    pub(crate) held_resfd: AtomicI32,
    /// The buffer (one entry) or a copy of the iovec array.
    pub(crate) iov: *mut libc::iovec,
    pub(crate) iovcnt: i32,
    pub(crate) one: libc::iovec,
    /// The file offset, or -1 for a file without one (pipes, sockets).
    pub(crate) offset: i64,
    pub(crate) rw_flags: i32,
    pub(crate) events: i16,
    /// The file's type (`S_IFMT` bits), for the mask a poll reports.
    pub(crate) kind: u32,
    /// `IOCB_FLAG_IOPRIO`'s priority, or 0 (the submitter's own).
    pub(crate) prio: u16,
    /// Counted in its context's `due`.
    pub(crate) due: bool,
    /// io_uring: its completion must reach the ring (and its eventfd) with
    /// no library call: a context read directly, or an eventfd to signal.
    pub(crate) prompt: bool,
    /// io_uring: the submitting thread's record (`uring::thread`), counted
    /// there until the request is back.
    pub(crate) owner: usize,
    /// Bumped (release) when the record is handed to the kernel or another
    /// thread, read (acquire) by whoever takes it back: the kernel or the
    /// channel orders the two already; this makes the order one that
    /// ThreadSanitizer sees too.
    pub(crate) handed: AtomicU32,
    /// Link in an executor's list.
    pub(crate) next: *mut Req,
    /// Bumped at each use of the record, so a stale reference (a message,
    /// a poll set) never mistakes a reused record for the one it meant.
    pub(crate) gen: u32,
    /// Polls: where the request stands (`service`).
    pub(crate) poll_state: AtomicU32,
}

impl Req {
    /// Whether the request writes (`Write`) into its file.
    pub(crate) fn writes(&self) -> bool {
        self.op == Op::Write
    }
}

impl Control {
    fn word(&self, field: usize) -> &AtomicU32 {
        let p = (self.ring + field) as *mut u32;
        // SAFETY: a u32 of the ring's header, mapped while the control block
        // is (they share one mapping), accessed atomically by us; the
        // program's plain accesses are whole-word.
        unsafe { AtomicU32::from_ptr(p) }
    }

    pub(crate) fn head(&self) -> &AtomicU32 {
        self.word(offset_of!(aio_ring, head))
    }

    pub(crate) fn tail(&self) -> &AtomicU32 {
        self.word(offset_of!(aio_ring, tail))
    }

    pub(crate) fn ring_addr(&self) -> usize {
        self.ring
    }

    fn slot(&self, i: u32) -> *mut io_event {
        (self.ring + size_of::<aio_ring>() + (i % self.nr) as usize * size_of::<io_event>()) as *mut io_event
    }

    fn req(&self, i: u32) -> *mut Req {
        self.reqs.wrapping_add(i as usize)
    }

    /// Posts a completion: event, then tail (release), then sleepers; the
    /// kernel's order. The caller signals the request's eventfd after.
    pub(crate) fn post(&self, obj: u64, data: u64, res: i64) {
        self.post_inner(obj, data, res, false);
    }

    /// Posts the completion of a record's request (see [`Control::post`]).
    /// A request that kernel AIO would have done inside `io_submit` stops
    /// being `due` here, after its event and before the sleepers are woken:
    /// a reader that reads `seq`, then `due`, then the ring either sees it
    /// no longer due with its event in the ring, or is woken after.
    ///
    /// # Safety
    /// `req` is a record of this context in flight, held by the caller.
    pub(crate) unsafe fn post_req(&self, req: *mut Req, res: i64) {
        // SAFETY: the caller's promise: the record is ours alone.
        let r = unsafe { &mut *req };
        let due = core::mem::replace(&mut r.due, false);
        self.post_inner(r.obj, r.data, res, due);
    }

    fn post_inner(&self, obj: u64, data: u64, res: i64, due: bool) {
        self.state.with(|st| {
            // Built field by field: 32-bit targets add padding fields.
            let mut ev = io_event::zeroed();
            ev.data = data as usize as *mut _;
            ev.obj = obj as usize as *mut _;
            ev.res = res as _;
            // SAFETY: a slot of our ring (index taken mod nr), written only
            // here, under the context's lock.
            unsafe { self.slot(st.tail).write(ev) };
            st.tail = (st.tail + 1) % self.nr;
            self.tail().store(st.tail, Ordering::Release);
            st.avail.completed += 1;
            if st.avail.completed > 1 {
                st.avail
                    .refill(self.head().load(Ordering::Acquire), st.tail, self.nr);
            }
        });
        if due {
            // After the event: a reader that sees the count drop sees it.
            self.due.fetch_sub(1, Ordering::Release);
        }
        self.wake();
    }

    /// Wakes every sleeper of this context (a post, or destroy).
    pub(crate) fn wake(&self) {
        self.seq.fetch_add(1, Ordering::SeqCst);
        wait::wake(&self.seq, &self.sleepers);
        if self.ring_sleepers.load(Ordering::SeqCst) != 0 {
            self.exec.nudge();
        }
    }

    /// Takes a request slot and a record (the kernel's `reqs_available`):
    /// None when the ring is full (`-EAGAIN`).
    pub(crate) fn take_slot(&self) -> Option<u32> {
        self.state.with(|st| {
            if !st.avail.take() {
                // The head as it is now, under the lock posts take (the
                // kernel reads it under its completion lock).
                st.avail
                    .refill(self.head().load(Ordering::Acquire), st.tail, self.nr);
                if !st.avail.take() {
                    return None;
                }
            }
            let i = st.free;
            if i != NONE {
                // SAFETY: a free record of ours, under the lock that guards the list.
                st.free = unsafe { (*self.req(i)).next_free };
            }
            Some(i)
        })
    }

    /// Gives back a slot taken for a request that was refused.
    pub(crate) fn give_back_slot(&self, slot: u32) {
        self.state.with(|st| {
            st.avail.put(1);
            self.push_free(st, slot);
        });
    }

    /// Gives back the record of a request done inside `io_submit` (its slot
    /// stays taken until the event is reaped, as in the kernel).
    pub(crate) fn give_back_record(&self, slot: u32) {
        self.state.with(|st| self.push_free(st, slot));
    }

    fn push_free(&self, st: &mut State, slot: u32) {
        if slot != NONE {
            // SAFETY: the record we took, returned under the list's lock.
            unsafe { (*self.req(slot)).next_free = st.free };
            st.free = slot;
        }
    }

    /// The record of slot `i`, for the submitter that took it.
    pub(crate) fn record(&self, i: u32) -> *mut Req {
        self.req(i)
    }

    /// Gives a record back once its request is posted: the executor's last
    /// touch of the context.
    ///
    /// # Safety
    /// `req` is a record of this context that the caller holds and has
    /// posted; nothing refers to it after.
    pub(crate) unsafe fn finish(&self, req: *mut Req) {
        // SAFETY: the caller's promise: ours alone now.
        let r = unsafe { &mut *req };
        if r.iov != &raw mut r.one && !r.iov.is_null() {
            // SAFETY: our own malloc'd copy of the iovec array.
            unsafe { sys::thread::free(r.iov.cast()) };
        }
        r.iov = ptr::null_mut();
        if r.due {
            // Never posted (posting clears it): no event to wait for.
            self.due.fetch_sub(1, Ordering::Release);
            r.due = false;
        }
        let i = (req as usize - self.reqs as usize) / size_of::<Req>();
        self.state.with(|st| self.push_free(st, i as u32));
        let exec = self.exec;
        let word = self.inflight.as_ptr() as usize;
        // The last touch of the mapping: once the count is 0, io_destroy may
        // unmap it, so a sleeper is woken by address only (a private futex
        // is a key, nothing is read).
        let prev = self.inflight.fetch_sub(1, Ordering::SeqCst);
        if prev & sync::WAITERS != 0 {
            sys::futex_wake_addr(word);
        }
        exec.returned();
    }
}

/// Posts a request's result, signals its eventfd with `efd` (a descriptor
/// of the calling thread's table for it, or -1) and gives the record back.
///
/// # Safety
/// As [`Control::finish`]: the caller holds `req`, a record in flight.
pub(crate) unsafe fn complete(req: *mut Req, res: i64, efd: i32) {
    // SAFETY: the caller's promise.
    let r = unsafe { &*req };
    // SAFETY: a record's control block outlives it (destroy waits for it).
    let ctl = unsafe { &*r.ctl };
    // SAFETY: the caller's promise, passed on.
    unsafe { ctl.post_req(req, res) };
    if efd >= 0 {
        let _ = sys::fd::eventfd_signal(efd);
    }
    // SAFETY: the caller's promise, passed on.
    unsafe { ctl.finish(req) };
}
