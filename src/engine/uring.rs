//! The io_uring engine's executor: the requests of a user-space context (the
//! ring and checks of `emu`) carried out by io_uring, so buffered I/O is
//! truly asynchronous instead of being done inside `io_submit` as kernel AIO
//! does it.
//!
//! - Two io_urings per process (*lanes*), shared by its io_uring contexts:
//!   requests go in as SQEs (`READV`/`WRITEV` with the RWF flags and
//!   priority, `FSYNC`, one-shot `POLL_ADD`), one `io_uring_enter` per
//!   `io_submit` batch, and the CQE's `user_data` names the request record.
//!   The REAPED lane (COOP_TASKRUN) takes the requests of contexts whose
//!   program reaps through `io_getevents`: a completion is finished when the
//!   submitting thread next enters the kernel, which it does to wait for it,
//!   with no interrupt per completion. The PROMPT lane takes the requests
//!   that must reach the ring or their eventfd with no library call (contexts
//!   read directly: QEMU, fio's `userspace_reap`; `IOCB_FLAG_RESFD`): its
//!   completions interrupt the submitting thread, so they land at once even
//!   while it spins in user space.
//! - CQEs become events in the context's ring (the kernel's layout) by one
//!   *drainer* per lane at a time, the holder of its token: a thread waiting
//!   in `io_getevents` sleeps in the REAPED ring holding its token, so at
//!   low queue depth the waiting thread itself is woken by the completion
//!   (one wake-up, as with kernel AIO); `io_submit` and `io_getevents` drain
//!   what has completed (the CQ is shared memory: no system call). Only the
//!   holder moves a CQ's head, so a holder asleep in the kernel cannot miss
//!   the CQE it waits for; an event posted any other way while it sleeps (the
//!   other lane's, an inline completion, `io_destroy`) wakes it with a `NOP`.
//! - One *completer* thread per process, while somebody needs it (PROMPT
//!   requests in flight, threads waiting for a context while another holds
//!   the token, `io_destroy`), sleeps in the PROMPT ring and drains. Otherwise
//!   it sleeps on a futex, looking each millisecond while requests are in
//!   flight for REAPED completions nobody took (a program that stopped
//!   calling `io_getevents`: its contexts then go to the PROMPT lane), and
//!   interrupting threads that hold completions while busy in user space
//!   (membarrier). It leaves after [`IDLE_NS`] with nothing in flight.
//! - io_uring cancels a thread's queued requests when that thread exits
//!   (`-ECANCELED`): where a program submits from a thread that then ends,
//!   the drainer submits such a request again, from its own thread, if its
//!   descriptor still names the same file.
//! - The state lives in the executor's page, which a forked child gets
//!   zero-filled: the child sets up rings of its own and never sees the
//!   parent's completions; the parent's ring mappings are not even inherited
//!   (`MADV_DONTFORK`), and their descriptors are close-on-exec.

use super::emu::{self, Control, Req, CMD_FDSYNC, CMD_FSYNC, CMD_POLL, CMD_PREAD, CMD_PREADV};
use super::threads;
use crate::sync::{self, Mutex};
use crate::sys;
use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::mem::size_of;
use core::ptr;
use core::sync::atomic::{AtomicU32, Ordering};
use linux_raw_sys::general::membarrier_cmd::{
    self, MEMBARRIER_CMD_PRIVATE_EXPEDITED, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED,
};
use linux_raw_sys::io_uring::{
    io_uring_cqe, io_uring_getevents_arg, io_uring_op, io_uring_params, io_uring_sqe,
    io_uring_sqe__bindgen_ty_1, io_uring_sqe__bindgen_ty_2, io_uring_sqe__bindgen_ty_3, IORING_ENTER_EXT_ARG,
    IORING_ENTER_GETEVENTS, IORING_FEAT_EXT_ARG, IORING_FEAT_NODROP, IORING_FEAT_SINGLE_MMAP,
    IORING_FSYNC_DATASYNC, IORING_OFF_SQES, IORING_OFF_SQ_RING, IORING_SETUP_CLAMP,
    IORING_SETUP_COOP_TASKRUN, IORING_SETUP_CQSIZE, IORING_SETUP_SUBMIT_ALL, IORING_SETUP_TASKRUN_FLAG,
    IORING_SQ_CQ_OVERFLOW, IORING_SQ_TASKRUN,
};

/// Submission entries: a batch larger than this is entered in several calls.
const SQ_ENTRIES: u32 = 128;
/// Completion entries: enough for every request of a few large contexts; the
/// kernel keeps any more (`IORING_FEAT_NODROP`) until there is room.
const CQ_ENTRIES: u32 = 4096;
/// How often the completer looks for completions nobody took, while
/// requests are in flight that their program reaps itself.
const TICK_NS: u64 = 1_000_000;
/// The completer leaves after this long unneeded.
const IDLE_NS: u64 = 2_000_000_000;
/// The token's bit: held by a drainer.
const HELD: u32 = 1;
/// `RWF_HIPRI`: poll for completion (a hint to kernel AIO).
const RWF_HIPRI: u32 = 1;
/// The kernel's signal-set size, for the wait's mask.
const SIGSET_BYTES: u32 = 8;

/// The process's ring, as `io_uring_setup` laid it out; fixed once set up.
#[derive(Clone, Copy)]
struct Ring {
    fd: i32,
    sq_head: usize,
    sq_tail: usize,
    sq_mask: u32,
    sq_entries: u32,
    sq_flags: usize,
    sq_array: usize,
    sqes: usize,
    cq_head: usize,
    cq_tail: usize,
    cq_mask: u32,
    cqes: usize,
    /// Set up with COOP_TASKRUN (see [`create`]).
    coop: bool,
    /// Which lane of [`State`] it is.
    lane: usize,
}

impl Ring {
    fn word(at: usize) -> &'static AtomicU32 {
        // SAFETY: `at` is a 4-byte-aligned word of the ring's shared mapping,
        // which stays mapped for the life of the process; the kernel accesses
        // it atomically too.
        unsafe { AtomicU32::from_ptr(at as *mut u32) }
    }
}

/// What is guarded by the submission lock.
struct Sq {
    /// Our tail: entries written, not yet published.
    tail: u32,
}

/// One io_uring and what guards it.
struct Lane {
    ring: UnsafeCell<Ring>,
    sq: Mutex<Sq>,
    /// The drainer's token: [`HELD`], and `sync::WAITERS` when the completer
    /// sleeps until it is free.
    token: AtomicU32,
}

/// The lane of requests whose program reaps through `io_getevents`: set up
/// with COOP_TASKRUN, a completion is finished when the submitting thread
/// next enters the kernel (where it waits for it), without interrupting it.
const REAPED: usize = 0;
/// The lane of requests that must reach the ring or their eventfd without a
/// library call (see [`Req::needs_drainer`]): its completions interrupt the
/// submitting thread, as kernel AIO's complete without it.
const PROMPT: usize = 1;

/// The engine's process state, in the executor's page (zero in a child).
pub(crate) struct State {
    /// 0: no rings; 1: being set up; 2: ready.
    ready: AtomicU32,
    lanes: [Lane; 2],
    /// Whether the completer thread runs (it clears it, under this lock, only
    /// when it finds itself unneeded).
    completer: Mutex<bool>,
    /// Why the completer must run: requests in flight that need it, and
    /// threads that rely on it (`sync::WAITERS`: it sleeps on this word).
    need: AtomicU32,
    /// Requests in the kernel, not yet drained.
    pending: AtomicU32,
    /// Pending polls, linked through `Req::next`: a poll no longer listed
    /// when its CQE comes was cancelled (its event says 0).
    polls: Mutex<*mut Req>,
}

// SAFETY: the poll list's pointers are request records handed between
// threads under the mutex; nothing in them is tied to a thread.
unsafe impl Send for State {}

impl State {
    pub(crate) const fn new() -> State {
        State {
            ready: AtomicU32::new(0),
            lanes: [Lane::new(), Lane::new()],
            completer: Mutex::new(false),
            need: AtomicU32::new(0),
            pending: AtomicU32::new(0),
            polls: Mutex::new(ptr::null_mut()),
        }
    }

    /// Lane `i` and its ring, once set up.
    fn lane(&self, i: usize) -> Option<(&Lane, Ring)> {
        if self.ready.load(Ordering::Acquire) != 2 {
            return None;
        }
        let lane = &self.lanes[i];
        // SAFETY: written once, before `ready` became 2 (acquired above), and
        // never again.
        Some((lane, unsafe { *lane.ring.get() }))
    }
}

impl Lane {
    const fn new() -> Lane {
        Lane {
            ring: UnsafeCell::new(Ring {
                fd: -1,
                sq_head: 0,
                sq_tail: 0,
                sq_mask: 0,
                sq_entries: 0,
                sq_flags: 0,
                sq_array: 0,
                sqes: 0,
                cq_head: 0,
                cq_tail: 0,
                cq_mask: 0,
                cqes: 0,
                coop: false,
                lane: 0,
            }),
            sq: Mutex::new(Sq { tail: 0 }),
            token: AtomicU32::new(0),
        }
    }
}

fn state() -> Option<&'static State> {
    threads::global_state().map(|g| &g.uring)
}

/// Why the process cannot have a ring: the errno `io_setup` answers, and the
/// explanation `LIBAIO_RS_DEBUG` prints.
pub(crate) struct Refused {
    pub(crate) errno: i32,
    pub(crate) why: &'static str,
}

/// Sets up the process's ring if it has none yet.
pub(crate) fn ensure() -> Result<(), Refused> {
    let Some(st) = state() else {
        return Err(Refused {
            errno: libc::ENOMEM,
            why: "no memory for the engine's state",
        });
    };
    loop {
        match st
            .ready
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Acquire)
        {
            Ok(_) => {
                let made = create(REAPED).and_then(|a| match create(PROMPT) {
                    Ok(b) => Ok((a, b)),
                    Err(e) => {
                        // SAFETY: our own ring descriptor, not published
                        // (its mappings stay: a few pages, once).
                        unsafe { libc::close(a.fd) };
                        Err(e)
                    }
                });
                if let Ok((a, b)) = made {
                    for (lane, ring) in st.lanes.iter().zip([a, b]) {
                        // SAFETY: only this thread (which moved `ready` from
                        // 0 to 1) writes them, and nobody reads them before
                        // `ready` is 2.
                        unsafe { *lane.ring.get() = ring };
                    }
                    st.ready.store(2, Ordering::Release);
                    return Ok(());
                }
                st.ready.store(0, Ordering::Release);
                return made.map(|_| ());
            }
            Err(2) => return Ok(()),
            Err(_) => core::hint::spin_loop(),
        }
    }
}

fn enter(fd: i32, submit: u32, min: u32, flags: u32, arg: *const c_void, argsz: usize) -> i32 {
    // SAFETY: io_uring_enter reads `arg` (ours, `argsz` bytes, or null).
    let r = unsafe { libc::syscall(libc::SYS_io_uring_enter, fd, submit, min, flags, arg, argsz) };
    if r < 0 {
        -sys::errno()
    } else {
        r as i32
    }
}

fn setup_call(entries: u32, p: &mut io_uring_params) -> i32 {
    // SAFETY: the kernel reads and fills our params.
    let r = unsafe { libc::syscall(libc::SYS_io_uring_setup, entries, p as *mut io_uring_params) };
    if r < 0 {
        -sys::errno()
    } else {
        r as i32
    }
}

fn membarrier(cmd: membarrier_cmd) -> i32 {
    let _keep = sys::KeepErrno::new();
    // SAFETY: membarrier has no memory arguments.
    unsafe { libc::syscall(libc::SYS_membarrier, cmd as i32, 0, 0) as i32 }
}

/// Makes the threads of the process that run in user space enter the
/// kernel (an interrupt on their CPUs), where they finish the completions
/// waiting for them (COOP_TASKRUN), when some are waiting and none has
/// reached the CQ: a thread spinning on the ring would otherwise hold them
/// until its next scheduler tick.
fn interrupt_busy_threads(ring: &Ring) {
    let flags = Ring::word(ring.sq_flags).load(Ordering::Acquire);
    let empty =
        Ring::word(ring.cq_head).load(Ordering::Acquire) == Ring::word(ring.cq_tail).load(Ordering::Acquire);
    if ring.coop && flags & IORING_SQ_TASKRUN != 0 && empty {
        membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED);
    }
}

/// Maps `len` bytes of the ring's file at `off`, kept out of forked children.
fn map_ring(fd: i32, len: usize, off: u32) -> Option<usize> {
    // SAFETY: a new shared mapping of the ring's file; nothing of ours is replaced.
    let p = unsafe {
        libc::mmap(
            ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_POPULATE,
            fd,
            off as libc::off_t,
        )
    };
    if p == libc::MAP_FAILED {
        return None;
    }
    // SAFETY: our fresh mapping: a child must not take the parent's
    // completions, so it does not inherit the ring at all.
    unsafe { libc::madvise(p, len, libc::MADV_DONTFORK) };
    Some(p as usize)
}

/// Sets up the ring of `lane`.
fn create(lane: usize) -> Result<Ring, Refused> {
    let _keep = sys::KeepErrno::new();
    // COOP_TASKRUN (the REAPED lane): a completion is finished on the
    // submitting thread when it next enters the kernel (or sleeps, or at the
    // next tick), not by interrupting it: an interrupt per completion halves
    // the throughput of a virtual machine at queue depth 32. TASKRUN_FLAG
    // says when a drainer should enter to finish its own. Should a program
    // stop reaping and spin on the ring meanwhile, the completer interrupts
    // it with membarrier (`interrupt_busy_threads`); without membarrier, no
    // COOP_TASKRUN.
    let coop = lane == REAPED && membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0;
    let mut flags = IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP | IORING_SETUP_SUBMIT_ALL;
    if coop {
        flags |= IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
    }
    let (fd, p) = loop {
        // SAFETY: io_uring_params is plain data, valid all-zero.
        let mut p: io_uring_params = unsafe { core::mem::zeroed() };
        p.flags = flags;
        p.cq_entries = CQ_ENTRIES;
        let fd = setup_call(SQ_ENTRIES, &mut p);
        // SUBMIT_ALL and COOP_TASKRUN are 5.18's and 5.19's: older kernels
        // refuse the flags, not the ring.
        if fd == -libc::EINVAL && flags & IORING_SETUP_SUBMIT_ALL != 0 {
            flags &= !(IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG);
            continue;
        }
        break (fd, p);
    };
    if fd < 0 {
        return Err(Refused {
            errno: -fd,
            why: match -fd {
                libc::ENOSYS => {
                    "io_uring_setup answered -ENOSYS (no io_uring in this kernel, or a seccomp filter)"
                }
                libc::EPERM => {
                    "io_uring_setup answered -EPERM (kernel.io_uring_disabled, or a seccomp filter)"
                }
                libc::EMFILE | libc::ENFILE => "io_uring_setup answered -EMFILE (no descriptor left)",
                _ => "io_uring_setup failed",
            },
        });
    }
    let refuse = |errno, why| {
        // SAFETY: our own ring descriptor, not published.
        unsafe { libc::close(fd) };
        Err(Refused { errno, why })
    };
    let need = IORING_FEAT_NODROP | IORING_FEAT_EXT_ARG | IORING_FEAT_SINGLE_MMAP;
    if p.features & need != need {
        return refuse(
            libc::ENOSYS,
            "io_uring is too old here (Linux 5.11 or later: waits with a timeout and a signal mask)",
        );
    }
    let sq_len = p.sq_off.array as usize + p.sq_entries as usize * 4;
    let cq_len = p.cq_off.cqes as usize + p.cq_entries as usize * size_of::<io_uring_cqe>();
    // One mapping holds both rings (IORING_FEAT_SINGLE_MMAP).
    let Some(rings) = map_ring(fd, sq_len.max(cq_len), IORING_OFF_SQ_RING) else {
        return refuse(libc::ENOMEM, "cannot map the io_uring rings");
    };
    let Some(sqes) = map_ring(
        fd,
        p.sq_entries as usize * size_of::<io_uring_sqe>(),
        IORING_OFF_SQES,
    ) else {
        // SAFETY: our own mapping, not published.
        unsafe { libc::munmap(rings as *mut c_void, sq_len.max(cq_len)) };
        return refuse(libc::ENOMEM, "cannot map the io_uring submission entries");
    };
    let at = |off: u32| rings + off as usize;
    // SAFETY: the masks are words of the fresh mapping, set by the kernel.
    let sq_mask = unsafe { *(at(p.sq_off.ring_mask) as *const u32) };
    // SAFETY: as above.
    let cq_mask = unsafe { *(at(p.cq_off.ring_mask) as *const u32) };
    let ring = Ring {
        fd,
        sq_head: at(p.sq_off.head),
        sq_tail: at(p.sq_off.tail),
        sq_mask,
        sq_entries: p.sq_entries,
        sq_flags: at(p.sq_off.flags),
        sq_array: at(p.sq_off.array),
        sqes,
        cq_head: at(p.cq_off.head),
        cq_tail: at(p.cq_off.tail),
        cq_mask,
        cqes: at(p.cq_off.cqes),
        coop: p.flags & IORING_SETUP_COOP_TASKRUN != 0,
        lane,
    };
    // The array maps each SQ slot to the entry of the same index, for good.
    for i in 0..p.sq_entries {
        // SAFETY: entry i of the array, in the mapping.
        unsafe { (ring.sq_array as *mut u32).wrapping_add(i as usize).write(i) };
    }
    Ok(ring)
}

/// An entry to fill: the zeroed SQE at the submission tail. Publishes nothing.
fn next_sqe(ring: &Ring, sq: &mut Sq) -> &'static mut io_uring_sqe {
    while sq
        .tail
        .wrapping_sub(Ring::word(ring.sq_head).load(Ordering::Acquire))
        >= ring.sq_entries
    {
        // Full: what is written goes in now (the kernel takes every entry
        // of a batch before it returns, so this frees the ring).
        flush_locked(ring, sq);
    }
    let sqe = (ring.sqes as *mut io_uring_sqe).wrapping_add((sq.tail & ring.sq_mask) as usize);
    sq.tail = sq.tail.wrapping_add(1);
    // SAFETY: an entry of the SQE mapping that the kernel has consumed (the
    // head passed it) and that only the holder of the submission lock writes.
    unsafe { sqe.write_bytes(0, 1) };
    // SAFETY: as above; zeroed, a valid io_uring_sqe.
    unsafe { &mut *sqe }
}

/// Publishes the written entries and enters them.
fn flush_locked(ring: &Ring, sq: &mut Sq) {
    let tail = Ring::word(ring.sq_tail);
    tail.store(sq.tail, Ordering::Release);
    let mut spins = 0u32;
    loop {
        let waiting = sq
            .tail
            .wrapping_sub(Ring::word(ring.sq_head).load(Ordering::Acquire));
        if waiting == 0 {
            return;
        }
        let r = enter(ring.fd, waiting, 0, 0, ptr::null(), 0);
        if r >= 0 || r == -libc::EINTR {
            continue;
        }
        // EBUSY/EAGAIN: completions must be taken first, or memory comes back.
        if try_drain_lane(ring.lane, false).is_none() {
            spins += 1;
            threads::sleep_ns(if spins < 10 { 10_000 } else { 1_000_000 });
        }
    }
}

fn fill(sqe: &mut io_uring_sqe, r: &Req) {
    sqe.fd = r.fd;
    sqe.user_data = r as *const Req as u64;
    sqe.ioprio = r.prio;
    match r.op {
        CMD_FSYNC | CMD_FDSYNC => {
            sqe.opcode = io_uring_op::IORING_OP_FSYNC as u8;
            sqe.__bindgen_anon_3 = io_uring_sqe__bindgen_ty_3 {
                fsync_flags: if r.op == CMD_FDSYNC {
                    IORING_FSYNC_DATASYNC
                } else {
                    0
                },
            };
        }
        CMD_POLL => {
            sqe.opcode = io_uring_op::IORING_OP_POLL_ADD as u8;
            sqe.__bindgen_anon_3 = io_uring_sqe__bindgen_ty_3 {
                poll32_events: u32::from(r.events as u16),
            };
        }
        op => {
            sqe.opcode = if op == CMD_PREAD || op == CMD_PREADV {
                io_uring_op::IORING_OP_READV
            } else {
                io_uring_op::IORING_OP_WRITEV
            } as u8;
            sqe.__bindgen_anon_2 = io_uring_sqe__bindgen_ty_2 { addr: r.iov as u64 };
            sqe.len = r.iovcnt as u32;
            // -1 (no offset: pipes, sockets) is io_uring's "the file's position".
            sqe.__bindgen_anon_1 = io_uring_sqe__bindgen_ty_1 { off: r.offset as u64 };
            // RWF_HIPRI asks io_uring for a polled ring, which this is not;
            // kernel AIO takes it as a hint. The rest mean the same.
            sqe.__bindgen_anon_3 = io_uring_sqe__bindgen_ty_3 {
                rw_flags: r.rw_flags as u32 & !RWF_HIPRI,
            };
        }
    }
}

/// Writes a request's SQE (entered by the next [`kick`]); `r.needs_drainer`
/// says whether the completer must see to its completion.
pub(crate) fn enqueue(req: *mut Req) {
    let Some(st) = state() else { return };
    // SAFETY: the submitter's record, handed to us.
    let lane = if unsafe { (*req).needs_drainer } {
        PROMPT
    } else {
        REAPED
    };
    // SAFETY: as above; its lane is ours to set until it is entered.
    unsafe { (*req).lane = lane as u8 };
    let Some((lane, ring)) = st.lane(lane) else { return };
    // SAFETY: as above.
    let r = unsafe { &*req };
    if r.op == CMD_POLL {
        st.polls.with(|head| {
            // SAFETY: the submitter's record, linked in under the list's lock.
            unsafe { (*req).next = *head };
            *head = req;
        });
    }
    st.pending.fetch_add(1, Ordering::AcqRel);
    if r.needs_drainer {
        need_more(st);
    } else {
        ensure_completer(st);
    }
    lane.sq.with(|sq| fill(next_sqe(&ring, sq), r));
    r.handed.fetch_add(1, Ordering::Release);
}

/// One more reason for the completer to run: started or woken if need be.
fn need_more(st: &State) {
    let prev = st.need.fetch_add(1, Ordering::AcqRel);
    sync::wake(&st.need, prev);
    if prev & !sync::WAITERS == 0 {
        ensure_completer(st);
    }
}

/// Starts the completer if it is not running.
fn ensure_completer(st: &State) {
    if st.completer.with(|running| !core::mem::replace(running, true)) && !threads::spawn(completer) {
        st.completer.with(|running| *running = false);
    }
}

fn need_less(st: &State) {
    st.need.fetch_sub(1, Ordering::AcqRel);
}

/// Runs `f` with the completer draining meanwhile (a thread that waits on
/// an eventfd, or for requests to come back, while it cannot drain itself).
pub(crate) fn with_drainer<R>(f: impl FnOnce() -> R) -> R {
    let st = state();
    if let Some(st) = st {
        need_more(st);
    }
    let r = f();
    if let Some(st) = st {
        need_less(st);
    }
    r
}

/// After a submission: enters the written SQEs and takes what completed
/// inside the call.
pub(crate) fn kick() {
    let Some(st) = state() else { return };
    for i in [REAPED, PROMPT] {
        if let Some((lane, ring)) = st.lane(i) {
            lane.sq.with(|sq| flush_locked(&ring, sq));
        }
    }
    help();
}

/// Wakes the thread sleeping in the ring with the token (an event reached a
/// context it waits on some other way than through a CQE).
pub(crate) fn nudge() {
    let Some(st) = state() else { return };
    let Some((lane, ring)) = st.lane(REAPED) else {
        return;
    };
    lane.sq.with(|sq| {
        next_sqe(&ring, sq).opcode = io_uring_op::IORING_OP_NOP as u8;
        flush_locked(&ring, sq);
    });
}

/// Drains each lane whose token is free: whether anything was posted.
pub(crate) fn help() -> bool {
    let a = try_drain_lane(REAPED, false);
    let b = try_drain_lane(PROMPT, false);
    a == Some(true) || b == Some(true)
}

/// Takes lane `i`'s token if it is free: Some(whether anything was posted).
/// `lazy`: by the completer's tick, for requests nobody else took in time.
fn try_drain_lane(i: usize, lazy: bool) -> Option<bool> {
    let st = state()?;
    let (lane, ring) = st.lane(i)?;
    if lane.token.fetch_or(HELD, Ordering::Acquire) & HELD != 0 {
        return None;
    }
    let posted = drain_held(st, &ring, lazy);
    release(lane);
    Some(posted)
}

fn release(lane: &Lane) {
    let prev = lane.token.fetch_and(!HELD, Ordering::Release);
    sync::wake(&lane.token, prev);
}

/// Drains the CQ (the caller holds the token): each CQE becomes its
/// request's event. True when any event was posted.
fn drain_held(st: &State, ring: &Ring, lazy: bool) -> bool {
    let head_w = Ring::word(ring.cq_head);
    let mut posted = false;
    let mut entered = false;
    loop {
        let mut head = head_w.load(Ordering::Relaxed);
        let tail = Ring::word(ring.cq_tail).load(Ordering::Acquire);
        if head == tail {
            // Completions the CQ had no room for, and completions this thread
            // has to finish (COOP_TASKRUN), come in on an enter; once per
            // drain, as the flag may be another thread's.
            let flags = Ring::word(ring.sq_flags).load(Ordering::Acquire);
            if !entered && flags & (IORING_SQ_CQ_OVERFLOW | IORING_SQ_TASKRUN) != 0 {
                entered = true;
                enter(ring.fd, 0, 0, IORING_ENTER_GETEVENTS, ptr::null(), 0);
                continue;
            }
            return posted;
        }
        while head != tail {
            let c = (ring.cqes as *const io_uring_cqe).wrapping_add((head & ring.cq_mask) as usize);
            // SAFETY: a CQE the kernel published (before the tail, acquired),
            // in the mapping; read whole, then its slot is given back.
            let cqe = unsafe { &*c };
            let (user_data, res) = (cqe.user_data, cqe.res);
            head = head.wrapping_add(1);
            // Given back before the event is posted: the slot is copied out.
            head_w.store(head, Ordering::Release);
            posted |= complete(st, user_data as *mut Req, res, lazy);
        }
    }
}

/// One CQE's request: posted, or submitted again. True when posted.
fn complete(st: &State, req: *mut Req, res: i32, lazy: bool) -> bool {
    if req.is_null() {
        return false; // a NOP or a cancellation's own CQE
    }
    // SAFETY: `user_data` of our SQEs: a record in flight, whose context
    // cannot go (io_destroy waits for it), held by the kernel until now.
    let r = unsafe { &*req };
    r.handed.load(Ordering::Acquire);
    let mut res = i64::from(res);
    if r.op == CMD_POLL {
        // Submitted again only while still listed, under the list's lock, so
        // that a cancellation either finds it listed (and removes what is
        // submitted) or never sees it again.
        let again = res == -i64::from(libc::ECANCELED)
            && same_file(r)
            && st.polls.with(|head| {
                let listed = !listed_in(*head, req).is_null();
                if listed {
                    resubmit(req);
                }
                listed
            });
        if again {
            return false;
        }
        if st.polls.with(|head| unlink(head, |p| p == req)).is_null() {
            res = 0; // cancelled by io_cancel or io_destroy
        } else if res > 0 {
            // io_uring reports the mask filtered by the request; kernel AIO
            // reports the waker's, as the thread engine reconstructs it.
            res = i64::from(threads::wake_mask(r.kind, res as i16, r.events));
        }
    } else if res == -i64::from(libc::ECANCELED) && same_file(r) {
        // Its submitter thread has exited: io_uring dropped the request.
        resubmit(req);
        return false;
    }
    if r.needs_drainer {
        need_less(st);
    }
    st.pending.fetch_sub(1, Ordering::AcqRel);
    if lazy {
        // Left in the CQ a whole tick: its program does not (or no longer)
        // reap through io_getevents; the completer sees to its next ones.
        // SAFETY: a record's control block outlives it.
        unsafe { &*r.ctl }.not_driven();
    }
    emu::complete(req, res);
    true
}

/// Whether the request's descriptor still names the file it was submitted
/// for: if the program has closed it since, the request cannot be submitted
/// again, and ends with io_uring's -ECANCELED.
fn same_file(r: &Req) -> bool {
    let st = super::files::fd_stat(r.fd);
    st.open && (st.dev, st.ino) == (r.dev, r.ino)
}

fn resubmit(req: *mut Req) {
    let Some(st) = state() else { return };
    // SAFETY: a record in flight, ours again since its CQE.
    let r = unsafe { &*req };
    let Some((lane, ring)) = st.lane(r.lane as usize) else {
        return;
    };
    lane.sq.with(|sq| {
        fill(next_sqe(&ring, sq), r);
        flush_locked(&ring, sq);
    });
    r.handed.fetch_add(1, Ordering::Release);
}

fn listed_in(head: *mut Req, req: *mut Req) -> *mut Req {
    let mut p = head;
    while !p.is_null() && p != req {
        // SAFETY: a listed record, read under the list's lock.
        p = unsafe { (*p).next };
    }
    p
}

/// Unlinks the first listed poll that `pick` chooses; null when none.
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

/// Cancels `ctl`'s pending polls that `obj` picks (None: all of them): each
/// one's event, res 0, comes with its CQE. True when one was.
pub(crate) fn cancel_polls(ctl: &Control, obj: Option<u64>) -> bool {
    let Some(st) = state() else { return false };
    let me = ctl as *const Control;
    let mut any = false;
    loop {
        let req = st.polls.with(|head| {
            unlink(head, |p| {
                // SAFETY: a listed record, read under the list's lock.
                let r = unsafe { &*p };
                r.ctl == me && obj.is_none_or(|o| r.obj == o)
            })
        });
        if req.is_null() {
            return any;
        }
        any = true;
        // SAFETY: a record in flight, whose lane was set before it was
        // entered and never changes.
        let Some((lane, ring)) = st.lane(unsafe { (*req).lane } as usize) else {
            return any;
        };
        lane.sq.with(|sq| {
            let sqe = next_sqe(&ring, sq);
            sqe.opcode = io_uring_op::IORING_OP_POLL_REMOVE as u8;
            sqe.__bindgen_anon_2 = io_uring_sqe__bindgen_ty_2 { addr: req as u64 };
            flush_locked(&ring, sq);
        });
        if obj.is_some() {
            return true;
        }
    }
}

/// The REAPED lane's token, held by a thread that sleeps in its ring for its
/// events (completions of the PROMPT lane reach it through the completer, and
/// a nudge).
pub(crate) struct Hold {
    st: &'static State,
    ring: Ring,
}

/// Takes the REAPED lane's token, when free, to wait in its ring.
pub(crate) fn hold() -> Option<Hold> {
    let st = state()?;
    let (lane, ring) = st.lane(REAPED)?;
    if lane.token.fetch_or(HELD, Ordering::Acquire) & HELD != 0 {
        return None;
    }
    drain_held(st, &ring, false);
    try_drain_lane(PROMPT, false);
    Some(Hold { st, ring })
}

impl Hold {
    /// Sleeps in `io_uring_enter` until a CQE, the deadline (absolute,
    /// monotonic) or a signal handler, with `sigmask` in force meanwhile.
    pub(crate) fn sleep(&self, deadline: Option<u64>, sigmask: *const libc::sigset_t) -> emu::Wait {
        let _keep = sys::KeepErrno::new();
        let mut ts = linux_raw_sys::general::__kernel_timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        if let Some(d) = deadline {
            let now = threads::now_ns();
            if now >= d {
                return emu::Wait::TimedOut;
            }
            ts.tv_sec = ((d - now) / 1_000_000_000) as _;
            ts.tv_nsec = ((d - now) % 1_000_000_000) as _;
        }
        let arg = io_uring_getevents_arg {
            sigmask: sigmask as u64,
            sigmask_sz: SIGSET_BYTES,
            min_wait_usec: 0,
            ts: if deadline.is_some() {
                &raw const ts as u64
            } else {
                0
            },
        };
        let r = enter(
            self.ring.fd,
            0,
            1,
            IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG,
            (&raw const arg).cast(),
            size_of::<io_uring_getevents_arg>(),
        );
        match r {
            e if e == -libc::EINTR => emu::Wait::Interrupted,
            e if e == -libc::ETIME && deadline.is_some_and(|d| threads::now_ns() >= d) => emu::Wait::TimedOut,
            _ => emu::Wait::Woken,
        }
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        drain_held(self.st, &self.ring, false);
        release(&self.st.lanes[REAPED]);
        try_drain_lane(PROMPT, false);
    }
}

/// The completer: while needed, sleeps in the PROMPT lane's ring and drains
/// it (and the other lane, when its token is free); unneeded, sleeps on
/// `need`, looking each tick at the REAPED lane for completions nobody took,
/// while requests are in flight; leaves after [`IDLE_NS`] with none.
extern "C" fn completer(_: *mut c_void) -> *mut c_void {
    let Some(st) = state() else {
        return ptr::null_mut();
    };
    let (Some((prompt, ring)), Some((_, reaped))) = (st.lane(PROMPT), st.lane(REAPED)) else {
        return ptr::null_mut();
    };
    let idle = linux_raw_sys::general::__kernel_timespec {
        tv_sec: (IDLE_NS / 1_000_000_000) as _,
        tv_nsec: (IDLE_NS % 1_000_000_000) as _,
    };
    let arg = io_uring_getevents_arg {
        sigmask: 0,
        sigmask_sz: SIGSET_BYTES,
        min_wait_usec: 0,
        ts: &raw const idle as u64,
    };
    // The REAPED CQ's tail at the previous tick: entries before it that are
    // still there have waited a whole tick.
    let mut seen = 0u32;
    loop {
        let v = st.need.load(Ordering::Acquire);
        if v & !sync::WAITERS == 0 {
            if v & sync::WAITERS == 0
                && st
                    .need
                    .compare_exchange(v, v | sync::WAITERS, Ordering::Relaxed, Ordering::Relaxed)
                    .is_err()
            {
                continue;
            }
            // Requests in flight that their program reaps: looked at each
            // tick, in case it stops reaping (or reads the ring instead).
            let lazy = st.pending.load(Ordering::Acquire) > 0;
            let timed_out =
                sys::futex_wait_for(&st.need, v | sync::WAITERS, if lazy { TICK_NS } else { IDLE_NS });
            if timed_out && lazy {
                let head = Ring::word(reaped.cq_head).load(Ordering::Acquire);
                if (seen.wrapping_sub(head) as i32) > 0 {
                    try_drain_lane(REAPED, true);
                }
                interrupt_busy_threads(&reaped);
                seen = Ring::word(reaped.cq_tail).load(Ordering::Acquire);
            } else if timed_out {
                let leave = st.completer.with(|running| {
                    let leave = st.need.load(Ordering::Acquire) & !sync::WAITERS == 0
                        && st.pending.load(Ordering::Acquire) == 0;
                    *running &= !leave;
                    leave
                });
                if leave {
                    return ptr::null_mut();
                }
            }
            continue;
        }
        // Anything already there first: the kernel wakes a sleeper only for
        // what completes after it went to sleep.
        try_drain_lane(REAPED, false);
        if try_drain_lane(PROMPT, false).is_none() {
            // Another thread drains it: wait until it is done.
            sync::wait_while(&prompt.token, |t| t & HELD != 0);
            continue;
        }
        enter(
            ring.fd,
            0,
            1,
            IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG,
            (&raw const arg).cast(),
            size_of::<io_uring_getevents_arg>(),
        );
    }
}
