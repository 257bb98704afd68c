//! The thread engine's executor: a bounded pool of worker threads for the
//! requests the kernel carries out asynchronously (`O_DIRECT` reads and
//! writes of files and block devices, syncs). Polls go to the service
//! (`service`); everything else is done inside `io_submit` (`user::submit`).
//!
//! # The hand-off
//! Each request travels to the workers as one message on the pool's
//! channel (`channel`): its record's address and generation, and its files
//! (descriptor and eventfd) as `SCM_RIGHTS`, sent inside `io_submit`, so the
//! request holds its files from then on as kernel AIO does. A worker waits
//! in `recvmsg` (the kernel wakes one waiter per message), does the I/O on
//! its own descriptor, closes it, posts the event and signals the eventfd
//! through its own descriptor for it. A batch is one `sendmmsg`.
//!
//! # Workers come and go
//! At most [`MAX_WORKERS`]; a worker idle for [`IDLE_NS`] leaves, so the
//! threads never keep alive a process whose main thread has left with
//! `pthread_exit`. Invariants:
//! - `queued` counts messages sent and not yet received; a submitter adds
//!   to it *before* it reads the worker count, and a leaving worker takes
//!   itself off the count *before* it reads `queued`: either the submitter
//!   sees no worker and starts one, or the worker sees the message and
//!   stays (each side a sequentially consistent write, then read).
//! - A worker counts itself in once it runs in its table (until then its
//!   start counts in `starting`, which bounds the pool with the workers);
//!   a start that fails is never counted, so nothing is sent for it.
//! - A submitter that finds no worker starts one before sending; if none
//!   can start (`pthread_create` fails: `RLIMIT_NPROC`, a pids cgroup, no
//!   memory; or no table of its own can be had), it does the requests
//!   itself, inside `io_submit`, and tries again at the next call.
//! - Counts belong to one channel (`gen`): a channel the program broke is
//!   given up, its workers see the end of the stream and leave, and the
//!   counts start again at zero for the new one.

use super::channel::{self, Slot};
use super::process::ForkLocal;
use super::service;
use super::user::submit::run_all_here;
use super::user::wait::Wait;
use super::user::{self, Control, Executor, Op, Req};
use crate::sys::fd::{self, Small};
use crate::sys::Errno;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Workers at most, per process.
pub(crate) const MAX_WORKERS: u32 = 8;
/// A worker with nothing to do for this long leaves.
const IDLE_NS: u64 = 2_000_000_000;

struct Pool {
    chan: Slot,
    /// The channel generation they count for, workers, idle workers:
    /// `gen << 32 | workers << 16 | idle`.
    counts: AtomicU64,
    /// Messages sent and not yet received.
    queued: AtomicU32,
    /// Workers being started.
    starting: AtomicU32,
}

static POOL: ForkLocal<Pool> = ForkLocal::new();

fn pool() -> Option<&'static Pool> {
    POOL.get(|| Pool {
        chan: Slot::new(Some(IDLE_NS)),
        counts: AtomicU64::new(0),
        queued: AtomicU32::new(0),
        starting: AtomicU32::new(0),
    })
}

#[derive(Clone, Copy)]
struct Counts {
    gen: u32,
    workers: u32,
    idle: u32,
}

fn unpack(v: u64) -> Counts {
    Counts {
        gen: (v >> 32) as u32,
        workers: ((v >> 16) & 0xffff) as u32,
        idle: (v & 0xffff) as u32,
    }
}

fn pack(c: Counts) -> u64 {
    (u64::from(c.gen) << 32) | (u64::from(c.workers) << 16) | u64::from(c.idle)
}

impl Pool {
    /// The counts for channel `gen` (starting again at zero for a new one).
    fn counts(&self, gen: u32) -> Counts {
        let c = unpack(self.counts.load(Ordering::SeqCst));
        if c.gen == gen {
            c
        } else {
            Counts {
                gen,
                workers: 0,
                idle: 0,
            }
        }
    }

    /// Applies `f` to the counts of channel `gen`; false (nothing changed)
    /// when the counts belong to a newer channel, or `f` declines.
    fn update(&self, gen: u32, f: impl Fn(Counts) -> Option<Counts>) -> bool {
        let mut v = self.counts.load(Ordering::SeqCst);
        loop {
            let mut c = unpack(v);
            if c.gen != gen {
                if c.gen.wrapping_sub(gen) as i32 > 0 {
                    return false; // ours is an old channel
                }
                c = Counts {
                    gen,
                    workers: 0,
                    idle: 0,
                };
            }
            let Some(n) = f(c) else { return false };
            match self
                .counts
                .compare_exchange_weak(v, pack(n), Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return true,
                Err(now) => v = now,
            }
        }
    }
}

/// The engine: the one instance contexts point at.
pub(crate) struct ThreadsExec;

/// The thread engine, for new contexts.
pub(crate) static ENGINE: ThreadsExec = ThreadsExec;

impl Executor for ThreadsExec {
    fn name(&self) -> &'static str {
        "threads"
    }

    fn async_buffered(&self) -> bool {
        false
    }

    unsafe fn start(&self, _ctl: &Control, reqs: &[*mut Req]) {
        // SAFETY: the caller's promise, passed on.
        unsafe { start(reqs) };
    }

    fn reserve_poll(&self, nfds: u32) -> bool {
        service::reserve_poll(nfds)
    }

    fn release_poll(&self, nfds: u32) {
        service::release_poll(nfds);
    }

    unsafe fn start_poll(&self, req: *mut Req) -> Result<(), Errno> {
        // SAFETY: the caller's promise, passed on.
        unsafe { service::start_poll(req) }
    }

    fn cancel_polls(&self, ctl: &Control, obj: Option<u64>) -> bool {
        service::cancel_polls(ctl, obj)
    }

    fn wait(
        &self,
        _ctl: Option<&Control>,
        _done: &dyn Fn() -> bool,
        standby: &dyn Fn(Option<u64>) -> Wait,
        deadline: Option<u64>,
        _sigmask: *const libc::sigset_t,
    ) -> Wait {
        // Workers and the service post by themselves: nothing to drain.
        standby(deadline)
    }

    fn nudge(&self) {}

    fn returned(&self) {}
}

/// Hands requests (reads, writes, syncs) to the workers; those that cannot
/// go are done here, inside `io_submit`.
///
/// # Safety
/// As `Executor::start`.
unsafe fn start(reqs: &[*mut Req]) {
    let Some(p) = pool().filter(|_| channel::possible()) else {
        // SAFETY: the caller's promise.
        return unsafe { run_all_here(reqs) };
    };
    let n = reqs.len().min(64);
    // Counted before the workers are: see the module's invariants.
    p.queued.fetch_add(n as u32, Ordering::SeqCst);
    let Some(gen) = ready_channel(p) else {
        p.queued.fetch_sub(n as u32, Ordering::SeqCst);
        // SAFETY: the caller's promise.
        return unsafe { run_all_here(reqs) };
    };
    let mut msgs = [Small {
        payload: [0; 16],
        fds: [-1; 2],
        nfds: 0,
    }; 64];
    for (m, &req) in msgs.iter_mut().zip(&reqs[..n]) {
        // SAFETY: the submitter's filled record, about to be handed over.
        let r = unsafe { &*req };
        m.payload[..8].copy_from_slice(&(req as u64).to_ne_bytes());
        m.payload[8..12].copy_from_slice(&r.gen.to_ne_bytes());
        m.fds[0] = r.fd;
        m.fds[1] = r.resfd;
        m.nfds = if r.resfd >= 0 { 2 } else { 1 };
        r.handed.fetch_add(1, Ordering::Release);
    }
    let sent = p.chan.send_batch_on(gen, &msgs[..n]).unwrap_or(0);
    if sent < n {
        p.queued.fetch_sub((n - sent) as u32, Ordering::SeqCst);
        // SAFETY: the caller's records, those no worker took.
        unsafe { run_all_here(&reqs[sent..n]) };
    }
    // More hands for a batch, while there is room.
    let c = p.counts(gen);
    let mut missing = (sent as u32)
        .saturating_sub(c.idle)
        .min(MAX_WORKERS.saturating_sub(c.workers));
    while missing > 0 && add_worker(p, gen) {
        missing -= 1;
    }
}

/// The generation of a channel that has a worker (one is started if it has
/// none); None when no worker can be had.
fn ready_channel(p: &'static Pool) -> Option<u32> {
    for _ in 0..2 {
        let (_, gen) = p.chan.get().ok()?;
        if p.counts(gen).workers > 0 || add_worker(p, gen) {
            return Some(gen);
        }
        if p.chan.generation() == gen {
            return None; // the channel is fine: no thread could start
        }
    }
    None
}

/// Starts one more worker for channel `gen`: false when none can be had
/// (too many already, the channel broken, no thread, no table of its own).
fn add_worker(p: &'static Pool, gen: u32) -> bool {
    let Ok(((rx, id), g)) = p.chan.receiver() else {
        return false;
    };
    if g != gen {
        return false;
    }
    // Bounded with the starts under way. A start that succeeds is handed
    // on: the worker counts itself in, then takes itself off `starting`
    // (so it is always counted one way or the other); a start that fails
    // is never counted.
    let starting = p.starting.fetch_add(1, Ordering::SeqCst);
    if p.counts(gen).workers + starting >= MAX_WORKERS
        || channel::spawn_private(&[(rx, id)], worker, gen as usize).is_err()
    {
        p.starting.fetch_sub(1, Ordering::SeqCst);
        return false;
    }
    true
}

/// A worker, in a table of its own holding the channel's receiving end
/// (`fds[0]`), counted for channel `gen`.
fn worker(fds: [i32; channel::MAX_BRING], gen: usize) {
    let rx = fds[0];
    let gen = gen as u32;
    let Some(p) = pool() else {
        fd::close(rx);
        return;
    };
    // Counted in (see add_worker): false for a channel already given up.
    let counted_in = p.update(gen, |c| {
        Some(Counts {
            workers: c.workers + 1,
            ..c
        })
    });
    p.starting.fetch_sub(1, Ordering::SeqCst);
    if !counted_in {
        fd::close(rx);
        return;
    }
    let mut payload = [0u8; 16];
    loop {
        let counted = p.update(gen, |c| {
            Some(Counts {
                idle: c.idle + 1,
                ..c
            })
        });
        let got = fd::recv_with_fds(rx, &mut payload, true);
        if counted {
            p.update(gen, |c| {
                Some(Counts {
                    idle: c.idle.saturating_sub(1),
                    ..c
                })
            });
        }
        match got {
            Ok(m) if m.len == payload.len() => {
                p.queued.fetch_sub(1, Ordering::SeqCst);
                let req = u64::from_ne_bytes(payload[..8].try_into().unwrap_or([0; 8])) as usize as *mut Req;
                let file = if m.nfds >= 1 { m.fds[0] } else { -1 };
                let resfd = if m.nfds >= 2 { m.fds[1] } else { -1 };
                // SAFETY: a record handed over by its submitter, ours now.
                unsafe { execute(req, file, resfd) };
            }
            Ok(m) if m.len == 0 => break, // the channel was given up
            Ok(m) => {
                // Not a message of ours (cannot happen): drop what it carried.
                for &f in &m.fds[..m.nfds] {
                    fd::close(f);
                }
            }
            Err(e) if e.0 == libc::EINTR => {}
            Err(e) if e.0 == libc::EAGAIN => {
                // Idle for IDLE_NS: leave, unless a message came meanwhile.
                let left = p.update(gen, |c| {
                    Some(Counts {
                        workers: c.workers.saturating_sub(1),
                        ..c
                    })
                });
                if !left {
                    break; // an old channel's worker
                }
                let stay = p.queued.load(Ordering::SeqCst) > 0
                    && p.update(gen, |c| {
                        (c.workers < MAX_WORKERS).then_some(Counts {
                            workers: c.workers + 1,
                            ..c
                        })
                    });
                if !stay {
                    fd::close(rx);
                    return;
                }
            }
            Err(_) => break,
        }
    }
    p.update(gen, |c| {
        Some(Counts {
            workers: c.workers.saturating_sub(1),
            ..c
        })
    });
    fd::close(rx);
}

/// Carries out a request with the worker's own descriptors for its files,
/// then posts it; the descriptors are closed in the worker's table.
///
/// # Safety
/// `req` is a record in flight handed to this worker.
unsafe fn execute(req: *mut Req, file: i32, efd: i32) {
    // SAFETY: the caller's promise.
    let r = unsafe { &*req };
    r.handed.load(Ordering::Acquire);
    let res = match r.op {
        // The files did not come with the message: this table is full.
        _ if file < 0 => -i64::from(libc::EMFILE),
        Op::Fsync => fd::sync(file, false),
        Op::Fdsync => fd::sync(file, true),
        // SAFETY: the record's iovecs, checked the kernel's way; the kernel
        // checks the program's buffers.
        Op::Read | Op::Write => unsafe { fd::rw(file, r.writes(), r.iov, r.iovcnt, r.offset, r.rw_flags) },
        Op::Poll => 0, // polls go to the service
    };
    // The file is let go before the event is seen, as the kernel's is.
    if file >= 0 {
        fd::close(file);
    }
    // SAFETY: the caller's promise; `efd` is this worker's own descriptor.
    unsafe { user::complete(req, res, efd) };
    if efd >= 0 {
        fd::close(efd);
    }
}
