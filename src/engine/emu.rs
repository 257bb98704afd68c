//! User-space contexts: the `io_context_t` is the address of a ring of ours,
//! laid out exactly as the kernel's `struct aio_ring` (magic `0xa10a10a1`,
//! `nr`, `head`, `tail`, compat 1, incompat 0, header length 32) and followed
//! by the `io_event` slots, so a program that reads completions straight
//! from it (QEMU's `aio=native`, fio's `userspace_reap`) works as on kernel
//! AIO.
//!
//! A completion is posted the kernel's way: event written, then `tail`
//! moved with release ordering, then the request's eventfd (`IOCB_FLAG_RESFD`)
//! signalled, so a reader woken by the eventfd finds the event. `head` is
//! moved only by readers (ours, under a lock, or the program's) and always
//! re-read.
//!
//! `io_submit` checks what the kernel checks, in its order, with its errors
//! (`fs/aio.c`): the iocb is read through the kernel (`process_vm_readv`), so
//! a bad pointer is `-EFAULT`, never a fault of ours; reserved fields, the
//! size of the ring, the descriptor and its open mode, the eventfd, the
//! opcode and its fields. Requests the kernel carries out inside `io_submit`
//! (buffered reads and writes, a poll that is ready) are done there too;
//! the rest (`O_DIRECT` I/O, syncs, polls that must wait) go to the executor
//! (`threads`), holding duplicates of their descriptors, as the kernel holds
//! references to the files.
//!
//! Everything a context needs lives in one private anonymous mapping: the
//! ring's pages, then its control block and one request record per slot of
//! the ring, so no memory is allocated per request (only a copy of a vector
//! request's iovec array, which the kernel copies at submission too).

use super::files::{Files, Stat};
use super::{threads, uring};
use crate::abi::{aio_ring, io_context_t, io_event};
use crate::registry::{self, EmuPin};
use crate::sync::{self, Lock, Mutex};
use crate::{diag, sys, uaccess};
use core::ffi::c_long;
use core::mem::{offset_of, size_of};
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

const PAGE: usize = 4096;
/// What the kernel writes into `aio_key` at submission; `io_cancel` wants it.
const KIOCB_KEY: u32 = 0;
/// Highest user address plus one on x86_64 and aarch64 with 48-bit
/// addresses: the kernel's `access_ok` refuses buffers reaching past it.
const TASK_SIZE: u64 = 0x7fff_ffff_f000;
/// The kernel's limit on iovec entries (`UIO_MAXIOV`).
const UIO_MAXIOV: u64 = 1024;
/// Threads that may sleep in `io_getevents` on one context at once; more
/// still work, polling the ring every millisecond.
const MAX_WAITERS: usize = 64;
/// No request record.
const NONE: u32 = u32::MAX;
/// In the waiter list: the thread asleep in the io_uring with the drainer's
/// token (woken by a CQE, so by [`uring::nudge`]), not on an eventfd.
const IN_RING: i32 = -2;

/// Who carries out a context's requests.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exec {
    /// The thread engine's workers and poller (`threads`).
    Threads,
    /// The process's io_uring (`uring`).
    Uring,
}

/// The kernel's opcodes (`IOCB_CMD_*`).
pub(crate) const CMD_PREAD: u16 = 0;
pub(crate) const CMD_PWRITE: u16 = 1;
pub(crate) const CMD_FSYNC: u16 = 2;
pub(crate) const CMD_FDSYNC: u16 = 3;
pub(crate) const CMD_POLL: u16 = 5;
pub(crate) const CMD_PREADV: u16 = 7;
pub(crate) const CMD_PWRITEV: u16 = 8;
const IOCB_FLAG_RESFD: u32 = 1;
const IOCB_FLAG_IOPRIO: u32 = 2;
/// `RWF_*` flags Linux knows (HIPRI, DSYNC, SYNC, NOWAIT, APPEND, NOAPPEND,
/// ATOMIC, DONTCACHE, NOSIGNAL); whether the file supports one is answered
/// when the request runs.
const RWF_KNOWN: u32 = 0x1ff;
/// `RWF_NOWAIT`: fail rather than block.
const RWF_NOWAIT: u32 = 0x8;
/// The most one read or write transfers (`MAX_RW_COUNT`).
const MAX_RW_COUNT: u64 = 0x7fff_f000;

/// The kernel's per-CPU request accounting (`reqs_available`), for one CPU:
/// the point where `io_submit` says `-EAGAIN`, and when slots come back,
/// follow the kernel's rules, so a program sees the same counts.
struct Avail {
    global: u32,
    local: u32,
    batch: u32,
    /// Events posted but not yet credited back.
    completed: u32,
}

impl Avail {
    fn take(&mut self) -> bool {
        if self.local == 0 {
            if self.global < self.batch {
                return false;
            }
            self.global -= self.batch;
            self.local += self.batch;
        }
        self.local -= 1;
        true
    }

    fn put(&mut self, n: u32) {
        self.local += n;
        while self.local >= 2 * self.batch {
            self.local -= self.batch;
            self.global += self.batch;
        }
    }

    /// Credits back the posted events that readers have taken from the ring.
    fn refill(&mut self, head: u32, tail: u32, nr: u32) {
        if self.completed == 0 {
            return;
        }
        let head = head % nr;
        let in_ring = if tail >= head {
            tail - head
        } else {
            tail + nr - head
        };
        if in_ring < self.completed {
            let n = self.completed - in_ring;
            self.completed -= n;
            self.put(n);
        }
    }
}

/// A context's state that changes under its lock.
struct State {
    avail: Avail,
    /// Our own copy of the tail (the ring's copy is the program's to read).
    tail: u32,
    /// First free request record.
    free: u32,
    /// Eventfds of threads sleeping in `io_getevents`.
    waiters: [i32; MAX_WAITERS],
    nwaiters: usize,
}

impl State {
    /// Signals every sleeper's eventfd; true when a sleeper in the io_uring
    /// must be nudged too (done once the context's lock is released).
    #[must_use]
    fn wake_waiters(&self) -> bool {
        let mut in_ring = false;
        for &w in &self.waiters[..self.nwaiters] {
            if w == IN_RING {
                in_ring = true;
            } else {
                signal(w);
            }
        }
        in_ring
    }
}

/// A user-space context's control block, in its mapping after the ring.
pub(crate) struct Control {
    exec: Exec,
    ring: usize,
    nr: u32,
    map_len: usize,
    state: Mutex<State>,
    /// Serialises our readers of the ring.
    reap: Lock,
    /// Requests with the executor, not yet posted (`io_destroy` waits for 0).
    inflight: AtomicU32,
    /// Of those, buffered reads and writes on io_uring: kernel AIO would have
    /// finished them inside `io_submit`, so `io_getevents` with `min_nr` 0
    /// waits for them (see `getevents`).
    due: AtomicU32,
    /// `io_getevents` has been called on it: its program reaps through the
    /// library (io_uring: the completer is not needed for its requests).
    driven: AtomicBool,
    reqs: *mut Req,
}

/// A request handed to the executor. Owned by one party at a time: the free
/// list (under the context's lock), the submitter, the executor's queue or
/// poll list (under its lock), the worker or poller carrying it out.
pub(crate) struct Req {
    next_free: u32,
    pub(crate) ctl: *const Control,
    pub(crate) obj: u64,
    pub(crate) data: u64,
    pub(crate) op: u16,
    /// The request's descriptor: our duplicate (thread engine) or the
    /// program's (io_uring, which holds the file itself).
    pub(crate) fd: i32,
    /// Whether `fd` is our duplicate, to close.
    owned: bool,
    /// The file `fd` named at submission (io_uring: checked before a
    /// request is submitted again).
    pub(crate) dev: u64,
    pub(crate) ino: u64,
    /// Our duplicate of its eventfd, or -1.
    pub(crate) resfd: i32,
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
    due: bool,
    /// io_uring: the completer must see to its completion (see `uring`).
    pub(crate) needs_drainer: bool,
    /// io_uring: the ring it went to (`uring`'s lanes).
    pub(crate) lane: u8,
    /// io_uring: bumped (release) once the record is written and its SQE
    /// queued, read (acquire) by whoever takes its CQE. The kernel orders the
    /// two already; this makes the order one that ThreadSanitizer sees too.
    pub(crate) handed: AtomicU32,
    /// Link in the executor's queue or poll list.
    pub(crate) next: *mut Req,
    /// Bumped at each use of the record, so the poller never mistakes a
    /// reused record for the one it polled.
    pub(crate) gen: u32,
}

impl Control {
    fn word(&self, field: usize) -> &AtomicU32 {
        let p = (self.ring + field) as *mut u32;
        // SAFETY: a u32 of the ring's header, mapped while the control block
        // is (they share one mapping), accessed atomically by us; the
        // program's plain accesses are whole-word.
        unsafe { AtomicU32::from_ptr(p) }
    }

    fn head(&self) -> &AtomicU32 {
        self.word(offset_of!(aio_ring, head))
    }

    fn tail(&self) -> &AtomicU32 {
        self.word(offset_of!(aio_ring, tail))
    }

    fn slot(&self, i: u32) -> *mut io_event {
        (self.ring + size_of::<aio_ring>() + (i % self.nr) as usize * size_of::<io_event>()) as *mut io_event
    }

    fn req(&self, i: u32) -> *mut Req {
        self.reqs.wrapping_add(i as usize)
    }

    /// Whether events are waiting in the ring.
    fn ready(&self) -> bool {
        self.head().load(Ordering::Acquire) % self.nr != self.tail().load(Ordering::Acquire) % self.nr
    }

    /// Posts a completion: event, then tail (release), then the eventfd, then
    /// sleeping readers; the kernel's order.
    pub(crate) fn post(&self, obj: u64, data: u64, res: i64, resfd: i32) {
        let nudge = self.state.with(|st| {
            let ev = io_event {
                data: data as usize as *mut _,
                obj: obj as usize as *mut _,
                res: res as _,
                res2: 0,
            };
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
            st.wake_waiters()
        });
        if resfd >= 0 {
            signal(resfd);
        }
        if nudge {
            uring::nudge();
        }
    }

    /// Gives a record back, and the request's count, once it is posted.
    pub(crate) fn finish(&self, req: *mut Req) {
        // SAFETY: the executor hands back a record of ours that nobody else holds.
        let r = unsafe { &mut *req };
        close_dups(r);
        let i = (req as usize - self.reqs as usize) / size_of::<Req>();
        self.state.with(|st| {
            r.next_free = st.free;
            st.free = i as u32;
        });
        let word = self.inflight.as_ptr() as usize;
        // The last touch of the mapping: once the count is 0, io_destroy may
        // unmap it, so a sleeper is woken by address only (a private futex
        // is a key, nothing is read), and WAITERS is left set (harmless:
        // nothing else waits on this word).
        let prev = self.inflight.fetch_sub(1, Ordering::Release);
        if prev & sync::WAITERS != 0 {
            sys::futex_wake_addr(word);
        }
    }

    /// Its program has stopped reaping through `io_getevents`.
    pub(crate) fn not_driven(&self) {
        self.driven.store(false, Ordering::Relaxed);
    }

    /// Wakes every thread sleeping in `io_getevents` (destroy).
    fn wake_waiters(&self) {
        if self.state.with(|st| st.wake_waiters()) {
            uring::nudge();
        }
    }
}

/// Posts a request's completion and gives its record back (the executor's
/// last touch of it).
pub(crate) fn complete(req: *mut Req, res: i64) {
    // SAFETY: the executor hands over a record it holds.
    let r = unsafe { &*req };
    // SAFETY: a record's control block outlives it (io_destroy waits for
    // every record to come back).
    let ctl = unsafe { &*r.ctl };
    ctl.post(r.obj, r.data, res, r.resfd);
    if r.due {
        // After the event: a reader that sees the count drop sees the event.
        ctl.due.fetch_sub(1, Ordering::Release);
    }
    ctl.finish(req);
}

/// Adds one to an eventfd (the kernel's `eventfd_signal`).
pub(crate) fn signal(fd: i32) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes of ours to a descriptor we hold.
    unsafe { libc::write(fd, (&raw const one).cast(), 8) };
}

fn close_dups(r: &mut Req) {
    if r.owned {
        // SAFETY: our own duplicate.
        unsafe { libc::close(r.fd) };
    }
    if r.resfd >= 0 {
        // SAFETY: our own duplicate.
        unsafe { libc::close(r.resfd) };
    }
    if r.iov != &raw mut r.one {
        // SAFETY: our own malloc'd copy of the iovec array.
        unsafe { libc::free(r.iov.cast()) };
    }
    r.fd = -1;
    r.resfd = -1;
    r.iov = ptr::null_mut();
}

/// The ring size the kernel would give `maxevents` (`ioctx_alloc`): room for
/// twice the larger of `maxevents` and four per possible CPU (in 32-bit
/// arithmetic, as the kernel's), rounded up to whole pages; or the kernel's
/// error: `EINVAL` for a ring too large, `EAGAIN` for none or more events
/// than `fs.aio-max-nr` allows one context.
fn ring_size(maxevents: u32, cpus: u32, max_nr: u64) -> Result<(u32, usize), i32> {
    let want = maxevents.max(cpus.wrapping_mul(4)).wrapping_mul(2);
    if want as usize > 0x1000_0000 / size_of::<io_event>() {
        return Err(libc::EINVAL);
    }
    if want == 0 || u64::from(maxevents) > max_nr {
        return Err(libc::EAGAIN);
    }
    let bytes = size_of::<aio_ring>() + want as usize * size_of::<io_event>();
    let len = bytes.div_ceil(PAGE) * PAGE;
    Ok((
        ((len - size_of::<aio_ring>()) / size_of::<io_event>()) as u32,
        len,
    ))
}

fn possible_cpus() -> u32 {
    let _keep = sys::KeepErrno::new();
    // SAFETY: sysconf has no memory arguments.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_CONF) };
    u32::try_from(n).unwrap_or(1).max(1)
}

/// `io_setup` of a user-space context.
#[inline(never)] // off the kernel path: one copy, not one per entry point
pub(crate) fn setup(maxevents: i32, ctxp: *mut io_context_t, why: &str, exec: Exec) -> i32 {
    let ret = setup_inner(maxevents as u32, ctxp as usize, exec);
    if ret == 0 {
        let name = match exec {
            Exec::Threads => "threads",
            Exec::Uring => "io_uring",
        };
        diag::engine(name, Some(why));
    }
    ret
}

fn setup_inner(maxevents: u32, ctxp: usize, exec: Exec) -> i32 {
    let Some(pid) = threads::pid() else {
        return -libc::ENOMEM;
    };
    // The kernel's order: read *ctxp (EFAULT), then it must be 0 and
    // maxevents not 0 (EINVAL), then the size (EINVAL), then memory.
    let mut old = [0u8; size_of::<usize>()];
    if sys::read_user(pid, ctxp, &mut old) != old.len() {
        return -libc::EFAULT;
    }
    if usize::from_ne_bytes(old) != 0 || maxevents == 0 {
        return -libc::EINVAL;
    }
    let cpus = possible_cpus();
    // The per-context limit the kernel applies (its default where /proc or
    // kernel AIO itself is missing).
    let max_nr = crate::procfs::number(c"/proc/sys/fs/aio-max-nr").unwrap_or(65536);
    let (nr, ring_len) = match ring_size(maxevents, cpus, max_nr) {
        Ok(r) => r,
        Err(e) => return -e,
    };
    let ctl_len = (size_of::<Control>() + nr as usize * size_of::<Req>()).div_ceil(PAGE) * PAGE;
    let map_len = ring_len + ctl_len;
    let Some(base) = sys::map_anonymous(map_len) else {
        return -libc::ENOMEM;
    };
    let ring = base as usize;
    // SAFETY: our fresh mapping, page-aligned, larger than the header.
    unsafe { (ring as *mut aio_ring).write(crate::ring::new_header(nr)) };
    let batch = ((nr - 1) / (cpus * 4)).max(1);
    let ctl_ptr = (ring + ring_len) as *mut Control;
    let reqs = (ring + ring_len + size_of::<Control>()).next_multiple_of(8) as *mut Req;
    let ctl = Control {
        exec,
        ring,
        nr,
        map_len,
        state: Mutex::new(State {
            avail: Avail {
                global: nr - 1,
                local: 0,
                batch,
                completed: 0,
            },
            tail: 0,
            free: 0,
            waiters: [-1; MAX_WAITERS],
            nwaiters: 0,
        }),
        reap: Lock::new(),
        inflight: AtomicU32::new(0),
        due: AtomicU32::new(0),
        driven: AtomicBool::new(false),
        reqs,
    };
    // SAFETY: the control block's place in our fresh mapping, aligned (page).
    unsafe { ctl_ptr.write(ctl) };
    for i in 0..nr {
        let r = Req {
            next_free: if i + 1 < nr { i + 1 } else { NONE },
            ctl: ctl_ptr,
            obj: 0,
            data: 0,
            op: 0,
            fd: -1,
            owned: false,
            dev: 0,
            ino: 0,
            resfd: -1,
            iov: ptr::null_mut(),
            iovcnt: 0,
            one: libc::iovec {
                iov_base: ptr::null_mut(),
                iov_len: 0,
            },
            offset: 0,
            rw_flags: 0,
            events: 0,
            kind: 0,
            prio: 0,
            due: false,
            needs_drainer: false,
            lane: 0,
            handed: AtomicU32::new(0),
            next: ptr::null_mut(),
            gen: 0,
        };
        // SAFETY: record i lies in our mapping (sized for nr records), aligned.
        unsafe { reqs.wrapping_add(i as usize).write(r) };
    }
    if !registry::register_emu(ring, nr, ctl_ptr as usize) {
        // No room in the registry: the kernel's answer when it runs out of
        // memory for contexts.
        // SAFETY: our own mapping, never published.
        unsafe { sys::unmap(base, map_len) };
        return -libc::ENOMEM;
    }
    if !sys::write_user(pid, ctxp, &ring.to_ne_bytes()) {
        if let Some(pin) = registry::pin_emu(ring) {
            destroy(pin);
        }
        return -libc::EFAULT;
    }
    0
}

fn control(pin: &EmuPin) -> &Control {
    // SAFETY: a pinned context's control block stays mapped until the pin goes.
    unsafe { &*(pin.ctl() as *const Control) }
}

/// The kernel's `struct iocb`, decoded from its 64 bytes.
struct Iocb {
    data: u64,
    rw_flags: u32,
    opcode: u16,
    reqprio: u16,
    fd: i32,
    buf: u64,
    nbytes: u64,
    offset: i64,
    reserved2: u64,
    flags: u32,
    resfd: u32,
}

/// Where `aio_key` sits in the kernel's iocb (after `aio_data`, on the
/// endian side of the `aio_rw_flags` pair).
pub(crate) const KEY_OFFSET: usize = if cfg!(target_endian = "little") { 8 } else { 12 };

impl Iocb {
    fn decode(b: &[u8; 64]) -> Iocb {
        let u64_at = |o: usize| u64::from_ne_bytes(b[o..o + 8].try_into().unwrap_or([0; 8]));
        let u32_at = |o: usize| u32::from_ne_bytes(b[o..o + 4].try_into().unwrap_or([0; 4]));
        let u16_at = |o: usize| u16::from_ne_bytes(b[o..o + 2].try_into().unwrap_or([0; 2]));
        Iocb {
            data: u64_at(0),
            rw_flags: u32_at(if cfg!(target_endian = "little") { 12 } else { 8 }),
            opcode: u16_at(16),
            reqprio: u16_at(18),
            fd: u32_at(20) as i32,
            buf: u64_at(24),
            nbytes: u64_at(32),
            offset: u64_at(40) as i64,
            reserved2: u64_at(48),
            flags: u32_at(56),
            resfd: u32_at(60),
        }
    }
}

/// `io_submit` on a user-space context.
#[inline(never)] // off the kernel path: one copy, not one per entry point
pub(crate) fn submit(pin: &EmuPin, nr: c_long, ios: usize) -> i32 {
    if nr < 0 {
        return -libc::EINVAL;
    }
    let Some(pid) = threads::pid() else {
        return -libc::EAGAIN;
    };
    let ctl = control(pin);
    let nr = (nr as u64).min(u64::from(ctl.nr)) as usize;
    let mut done = 0;
    let mut ret = 0;
    let mut queued = 0;
    let mut files = Files::new();
    while done < nr {
        // The pointers, a batch at a time.
        let mut ptrs = [0usize; 64];
        let n = (nr - done).min(ptrs.len());
        let mut bytes = [0u8; 64 * size_of::<usize>()];
        let want = n * size_of::<usize>();
        let got =
            copy_in(pid, ios + done * size_of::<usize>(), &mut bytes[..want], true) / size_of::<usize>();
        for (i, p) in ptrs.iter_mut().enumerate().take(got) {
            let w = &bytes[i * size_of::<usize>()..(i + 1) * size_of::<usize>()];
            *p = usize::from_ne_bytes(w.try_into().unwrap_or([0; size_of::<usize>()]));
        }
        for &user_iocb in &ptrs[..got] {
            match submit_one(ctl, pid, user_iocb, &mut files) {
                Ok(to_executor) => {
                    done += 1;
                    queued += usize::from(to_executor);
                }
                Err(e) => {
                    ret = -e;
                    break;
                }
            }
        }
        if ret != 0 {
            break;
        }
        if got < n {
            ret = -libc::EFAULT;
            break;
        }
    }
    if queued > 0 {
        match ctl.exec {
            Exec::Threads => threads::kick(queued),
            Exec::Uring => uring::kick(),
        }
    }
    if done > 0 {
        done as i32
    } else {
        ret
    }
}

/// Copies `dst.len()` bytes of the program's memory at `src`: directly where
/// the kernel has written before (`uaccess`), else through the kernel's
/// checked copy, so a bad pointer is answered, not faulted on. `learn`: after
/// a checked copy, write the same bytes back through the kernel once, so that
/// an array read at every submission (the iocb pointers) is known
/// thereafter. Returns the bytes copied.
fn copy_in(pid: i32, src: usize, dst: &mut [u8], learn: bool) -> usize {
    if uaccess::writable(src as *mut u8, dst.len()) {
        // SAFETY: `dst.len()` bytes the kernel wrote before, so mapped; the
        // program may change them meanwhile, as it may change an iocb while
        // the kernel reads it.
        unsafe { ptr::copy_nonoverlapping(src as *const u8, dst.as_mut_ptr(), dst.len()) };
        return dst.len();
    }
    let got = sys::read_user(pid, src, dst);
    if learn && got == dst.len() && got > 0 && sys::write_user(pid, src, dst) {
        uaccess::remember(src as *mut u8, got);
    }
    got
}

/// Duplicates a descriptor for a request that outlives `io_submit`.
fn dup(fd: i32) -> Result<i32, i32> {
    // SAFETY: F_DUPFD_CLOEXEC has no memory argument.
    let d = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if d < 0 {
        Err(sys::errno())
    } else {
        Ok(d)
    }
}

/// One iocb, checked the kernel's way. Ok(true): handed to the executor;
/// Ok(false): done already (posted); Err(errno): refused.
fn submit_one(ctl: &Control, pid: i32, user_iocb: usize, files: &mut Files) -> Result<bool, i32> {
    let mut raw = [0u8; 64];
    if copy_in(pid, user_iocb, &mut raw, false) != raw.len() {
        return Err(libc::EFAULT);
    }
    let cb = Iocb::decode(&raw);
    if cb.reserved2 != 0 {
        return Err(libc::EINVAL);
    }
    if (cb.nbytes as i64) < 0 {
        return Err(libc::EINVAL);
    }
    // A request slot (the kernel's reqs_available).
    let slot = ctl.state.with(|st| {
        if !st.avail.take() {
            // The head as it is now, under the lock posts take (the kernel
            // reads it under its completion lock).
            st.avail
                .refill(ctl.head().load(Ordering::Acquire), st.tail, ctl.nr);
            if !st.avail.take() {
                return None;
            }
        }
        let i = st.free;
        if i != NONE {
            // SAFETY: a free record of ours, under the lock that guards the list.
            st.free = unsafe { (*ctl.req(i)).next_free };
        }
        Some(i)
    });
    let Some(slot) = slot else {
        return Err(libc::EAGAIN);
    };
    let give_back = |ctl: &Control| {
        ctl.state.with(|st| {
            st.avail.put(1);
            if slot != NONE {
                // SAFETY: the record we took, returned under the list's lock.
                unsafe { (*ctl.req(slot)).next_free = st.free };
                st.free = slot;
            }
        })
    };
    match prepare(ctl, pid, user_iocb, &cb, slot, files) {
        Ok(Some(req)) => {
            ctl.inflight.fetch_add(1, Ordering::Relaxed);
            // SAFETY: our record, not yet handed to the executor.
            if unsafe { (*req).due } {
                ctl.due.fetch_add(1, Ordering::Relaxed);
            }
            match ctl.exec {
                Exec::Threads => threads::enqueue(req),
                Exec::Uring => uring::enqueue(req),
            }
            Ok(true)
        }
        Ok(None) => {
            // Done inline: its record goes back now (its slot stays taken
            // until the event is reaped, as in the kernel).
            ctl.state.with(|st| {
                if slot != NONE {
                    // SAFETY: the record we took, returned under the list's lock.
                    unsafe { (*ctl.req(slot)).next_free = st.free };
                    st.free = slot;
                }
            });
            Ok(false)
        }
        Err(e) => {
            give_back(ctl);
            Err(e)
        }
    }
}

/// The kernel's `__io_submit_one` after the request slot is taken: Ok(None)
/// when the request completed inline, Ok(Some) when it goes to the executor.
fn prepare(
    ctl: &Control,
    pid: i32,
    user_iocb: usize,
    cb: &Iocb,
    slot: u32,
    files: &mut Files,
) -> Result<Option<*mut Req>, i32> {
    // The file (fget: EBADF, also for an O_PATH descriptor). Its open flags
    // cost a system call, which a read or write of a file in memory does
    // without: done here and now whatever the engine, the I/O itself answers
    // EBADF; only if another check fails first are the flags asked, to put
    // EBADF first as the kernel does.
    let st = files.stat(cb.fd);
    if !st.open {
        return Err(libc::EBADF);
    }
    let rw = matches!(cb.opcode, CMD_PREAD | CMD_PWRITE | CMD_PREADV | CMD_PWRITEV);
    let in_memory = rw && st.kind == libc::S_IFREG && files.in_memory(cb.fd);
    if !in_memory {
        opened(files, cb.fd)?;
    }
    let r = prepare_rest(ctl, pid, user_iocb, cb, slot, files, in_memory);
    match r {
        Err(e) if in_memory && e != libc::EBADF => opened(files, cb.fd).and(Err(e)),
        r => r,
    }
}

/// The descriptor's open flags; EBADF for an O_PATH one, which the kernel's
/// `fget` does not take.
fn opened(files: &mut Files, fd: i32) -> Result<i32, i32> {
    let flags = files.flags(fd)?;
    if flags & libc::O_PATH != 0 {
        return Err(libc::EBADF);
    }
    Ok(flags)
}

/// [`prepare`] once the descriptor is known open (`in_memory`: a read or
/// write of a file in memory, whose flags are not asked yet).
fn prepare_rest(
    ctl: &Control,
    pid: i32,
    user_iocb: usize,
    cb: &Iocb,
    slot: u32,
    files: &mut Files,
    in_memory: bool,
) -> Result<Option<*mut Req>, i32> {
    if cb.flags & IOCB_FLAG_RESFD != 0 {
        opened(files, cb.resfd as i32)?;
        if !files.is_eventfd(cb.resfd as i32) {
            return Err(libc::EINVAL);
        }
    }
    let key_at = user_iocb + KEY_OFFSET;
    if uaccess::writable(key_at as *mut u8, 4) {
        // SAFETY: 4 bytes the kernel has written before (see copy_in).
        unsafe { (key_at as *mut u32).write_unaligned(KIOCB_KEY) };
    } else if sys::write_user(pid, key_at, &KIOCB_KEY.to_ne_bytes()) {
        // Writable now: so is the page under the whole iocb (64 bytes, which
        // may cross into the next page: remembered only when it does not).
        if user_iocb / 4096 == (user_iocb + 63) / 4096 {
            uaccess::remember(user_iocb as *mut u8, 64);
        }
    } else {
        return Err(libc::EFAULT);
    }
    let resfd = if cb.flags & IOCB_FLAG_RESFD != 0 {
        cb.resfd as i32
    } else {
        -1
    };
    let st = files.stat(cb.fd);
    let (ftype, size, sparse) = (st.kind, st.size, st.sparse);
    let seekable = ftype == libc::S_IFREG || ftype == libc::S_IFBLK;
    let (write, vectored) = match cb.opcode {
        CMD_PREAD => (false, false),
        CMD_PWRITE => (true, false),
        CMD_PREADV => (false, true),
        CMD_PWRITEV => (true, true),
        CMD_FSYNC | CMD_FDSYNC => {
            if cb.buf != 0 || cb.offset != 0 || cb.nbytes != 0 || cb.rw_flags != 0 {
                return Err(libc::EINVAL);
            }
            if !matches!(ftype, libc::S_IFREG | libc::S_IFDIR | libc::S_IFBLK) {
                return Err(libc::EINVAL); // no fsync for pipes, sockets, devices, eventfds
            }
            return handoff(ctl, slot, cb, user_iocb, resfd, &st).map(Some);
        }
        CMD_POLL => {
            if u64::from(cb.buf as u16) != cb.buf {
                return Err(libc::EINVAL);
            }
            if cb.offset != 0 || cb.nbytes != 0 || cb.rw_flags != 0 {
                return Err(libc::EINVAL);
            }
            let events = cb.buf as i16 | libc::POLLERR | libc::POLLHUP;
            let mask = threads::poll_now(cb.fd, events);
            if mask != 0 {
                ctl.post(user_iocb as u64, cb.data, i64::from(mask), resfd);
                return Ok(None);
            }
            if matches!(ftype, libc::S_IFREG | libc::S_IFDIR | libc::S_IFBLK) {
                // No poll method: never becomes ready for what it is not now.
                return Err(libc::EINVAL);
            }
            let req = handoff(ctl, slot, cb, user_iocb, resfd, &st)?;
            // SAFETY: our record, not yet handed to anyone.
            let r = unsafe { &mut *req };
            r.events = events;
            r.kind = ftype;
            return Ok(Some(req));
        }
        _ => return Err(libc::EINVAL),
    };
    // aio_prep_rw: priority, then the RWF flags.
    if cb.flags & IOCB_FLAG_IOPRIO != 0 {
        ioprio_check(cb.reqprio)?;
    }
    if cb.rw_flags & !RWF_KNOWN != 0 {
        return Err(libc::EOPNOTSUPP);
    }
    // The open mode: EBADF (for a file in memory, asked only if a later
    // check fails: see `prepare`).
    let mode = |files: &mut Files| -> Result<i32, i32> {
        let flags = opened(files, cb.fd)?;
        let acc = flags & libc::O_ACCMODE;
        if (write && acc == libc::O_RDONLY) || (!write && acc == libc::O_WRONLY) {
            return Err(libc::EBADF);
        }
        Ok(flags)
    };
    let flags = if in_memory { None } else { Some(mode(files)?) };
    let refuse = |files: &mut Files, e: i32| -> i32 {
        match (flags, mode(files)) {
            (None, Err(bad)) => bad,
            _ => e,
        }
    };
    if ftype == libc::S_IFDIR || (write && ftype == 0 && files.is_eventfd(cb.fd)) {
        return Err(libc::EINVAL); // no read_iter/write_iter
    }
    // The buffers (aio_setup_rw), then the offset (rw_verify_area).
    let mut iovs: *mut libc::iovec = ptr::null_mut();
    let single = libc::iovec {
        iov_base: cb.buf as usize as *mut _,
        iov_len: cb.nbytes as usize,
    };
    let iovcnt;
    if vectored {
        if cb.nbytes > UIO_MAXIOV {
            return Err(refuse(files, libc::EINVAL));
        }
        iovcnt = cb.nbytes as usize;
        if iovcnt > 0 {
            let bytes = iovcnt * size_of::<libc::iovec>();
            // SAFETY: malloc of a size that cannot overflow (at most 16 KiB).
            iovs = unsafe { libc::malloc(bytes) }.cast();
            if iovs.is_null() {
                return Err(refuse(files, libc::ENOMEM));
            }
            // SAFETY: our fresh allocation of `bytes` bytes.
            let dst = unsafe { core::slice::from_raw_parts_mut(iovs.cast::<u8>(), bytes) };
            let bad = if sys::read_user(pid, cb.buf as usize, dst) != bytes {
                Some(libc::EFAULT)
            } else {
                // SAFETY: the copy holds iovcnt initialised iovecs.
                let v = unsafe { core::slice::from_raw_parts(iovs, iovcnt) };
                let mut total: u64 = 0;
                v.iter().find_map(|e| {
                    if (e.iov_len as isize) < 0 {
                        return Some(libc::EINVAL);
                    }
                    total = total.saturating_add(e.iov_len as u64);
                    if total > isize::MAX as u64 {
                        return Some(libc::EINVAL);
                    }
                    ((e.iov_base as u64).saturating_add(e.iov_len as u64) > TASK_SIZE).then_some(libc::EFAULT)
                })
            };
            if let Some(e) = bad {
                // SAFETY: our allocation, not used after.
                unsafe { libc::free(iovs.cast()) };
                return Err(refuse(files, e));
            }
        }
    } else {
        iovcnt = 1;
        if cb.buf.saturating_add(cb.nbytes) > TASK_SIZE {
            return Err(refuse(files, libc::EFAULT));
        }
    }
    let count = if vectored {
        let v = if iovs.is_null() {
            &[][..]
        } else {
            // SAFETY: our copy holds iovcnt initialised iovecs.
            unsafe { core::slice::from_raw_parts(iovs, iovcnt) }
        };
        v.iter().map(|e| e.iov_len as u64).sum::<u64>()
    } else {
        cb.nbytes
    };
    // rw_verify_area: the offset, and the end of the transfer, not negative.
    if seekable && (cb.offset < 0 || cb.offset.checked_add(count.min(MAX_RW_COUNT) as i64).is_none()) {
        if !iovs.is_null() {
            // SAFETY: our allocation, not used after.
            unsafe { libc::free(iovs.cast()) };
        }
        return Err(refuse(files, libc::EINVAL));
    }
    let offset = if seekable { cb.offset } else { -1 };
    // The kernel also finishes inside io_submit an O_DIRECT read that needs
    // no device I/O: past the end of the file, or of a file with no block
    // allocated (all hole).
    let past_end = !write && ftype == libc::S_IFREG && (offset >= size || sparse);
    // The thread engine does inside io_submit what the kernel does there:
    // buffered I/O, and O_DIRECT on a file in memory (a copy). io_uring does
    // buffered I/O asynchronously too, all but what cannot block: reads past
    // the end, files in memory (io_uring would hand their O_DIRECT copies to
    // its workers), and RWF_NOWAIT requests (which io_uring answers
    // otherwise in places: -EAGAIN for kernel AIO's -EOPNOTSUPP).
    let inline = in_memory
        || past_end
        || match ctl.exec {
            Exec::Threads => flags.unwrap_or(0) & libc::O_DIRECT == 0,
            Exec::Uring => cb.rw_flags & RWF_NOWAIT != 0,
        };
    if inline {
        // The kernel does buffered I/O inside io_submit; so do we.
        let list = if vectored {
            iovs.cast_const()
        } else {
            &raw const single
        };
        let res = threads::rw(cb.fd, write, list, iovcnt as i32, offset, cb.rw_flags as i32);
        if !iovs.is_null() {
            // SAFETY: our allocation, not used after.
            unsafe { libc::free(iovs.cast()) };
        }
        if flags.is_none() && res == -i64::from(libc::EBADF) {
            return Err(libc::EBADF); // the open mode, which io_submit refuses
        }
        ctl.post(user_iocb as u64, cb.data, res, resfd);
        return Ok(None);
    }
    let req = match handoff(ctl, slot, cb, user_iocb, resfd, &st) {
        Ok(r) => r,
        Err(e) => {
            if !iovs.is_null() {
                // SAFETY: our allocation, not used after.
                unsafe { libc::free(iovs.cast()) };
            }
            return Err(e);
        }
    };
    // SAFETY: our record, not yet handed to anyone.
    let r = unsafe { &mut *req };
    r.offset = offset;
    r.iov = iovs; // our copy (vectored), else set just below
    r.iovcnt = iovcnt as i32;
    r.rw_flags = cb.rw_flags as i32;
    if cb.flags & IOCB_FLAG_IOPRIO != 0 {
        r.prio = cb.reqprio;
    }
    r.due = flags.unwrap_or(0) & libc::O_DIRECT == 0;
    if !vectored {
        r.one = single;
        r.iov = &raw mut r.one;
    }
    Ok(Some(req))
}

/// Fills the request record for the executor (its buffers and offset are
/// the caller's to set), with a duplicate of the eventfd, and of the
/// descriptor for the thread engine (the kernel holds references to both).
fn handoff(
    ctl: &Control,
    slot: u32,
    cb: &Iocb,
    user_iocb: usize,
    resfd: i32,
    st: &Stat,
) -> Result<*mut Req, i32> {
    if slot == NONE {
        return Err(libc::EAGAIN);
    }
    // The thread engine's workers use the descriptor later: a duplicate
    // holds the file. io_uring takes its own reference when the request is
    // entered (inside this io_submit); the program's descriptor, and the
    // file's identity to check it against, serve to submit it again.
    let owned = ctl.exec == Exec::Threads;
    let fd = if owned { dup(cb.fd)? } else { cb.fd };
    let resfd = if resfd >= 0 {
        match dup(resfd) {
            Ok(d) => d,
            Err(e) => {
                if owned {
                    // SAFETY: our own duplicate.
                    unsafe { libc::close(fd) };
                }
                return Err(e);
            }
        }
    } else {
        -1
    };
    let req = ctl.req(slot);
    // SAFETY: the record we took from the free list: ours alone.
    let r = unsafe { &mut *req };
    r.obj = user_iocb as u64;
    r.data = cb.data;
    r.op = cb.opcode;
    r.fd = fd;
    r.owned = owned;
    (r.dev, r.ino) = (st.dev, st.ino);
    r.resfd = resfd;
    r.iov = ptr::null_mut();
    r.iovcnt = 0;
    r.offset = -1;
    r.rw_flags = 0;
    r.events = 0;
    r.prio = 0;
    r.due = false;
    r.needs_drainer = resfd >= 0 || !ctl.driven.load(Ordering::Relaxed);
    r.next = ptr::null_mut();
    r.gen = r.gen.wrapping_add(1);
    Ok(req)
}

/// The kernel's `ioprio_check_cap`: a valid class and level; the real-time
/// class needs privilege.
fn ioprio_check(prio: u16) -> Result<(), i32> {
    let class = prio >> 13;
    let level = prio & 0x1fff;
    match class {
        0 => Ok(()),
        1 => {
            // SAFETY: geteuid has no arguments.
            if unsafe { libc::geteuid() } != 0 {
                return Err(libc::EPERM);
            }
            if level >= 8 {
                Err(libc::EINVAL)
            } else {
                Ok(())
            }
        }
        2 if level < 8 => Ok(()),
        3 => Ok(()),
        _ => Err(libc::EINVAL),
    }
}

/// `io_getevents`/`io_pgetevents` on a user-space context. `sigmask` is the
/// caller's mask for the wait (NULL: none).
///
/// # Safety
/// `timeout` is NULL or readable (read in user space for the zero-timeout
/// answer, as libaio reads it).
#[inline(never)] // off the kernel path: one copy, not one per entry point
pub(crate) unsafe fn getevents(
    pin: &EmuPin,
    min_nr: c_long,
    nr: c_long,
    events: *mut io_event,
    timeout: *mut libc::timespec,
    sigmask: *const libc::sigset_t,
) -> i32 {
    let ctl = control(pin);
    if ctl.exec == Exec::Uring && !ctl.driven.load(Ordering::Relaxed) {
        ctl.driven.store(true, Ordering::Relaxed);
    }
    // libaio's own answer, before any check: empty ring, zero timeout.
    // SAFETY: the caller's promise; libaio reads it the same way.
    let zero = !timeout.is_null() && {
        // SAFETY: the caller's promise; libaio reads it the same way.
        let t = unsafe { ptr::read_unaligned(timeout) };
        t.tv_sec == 0 && t.tv_nsec == 0
    };
    // SAFETY: a pinned context's ring is mapped.
    if zero && unsafe { crate::ring::looks_empty(ctl.ring) } {
        return 0;
    }
    let Some(pid) = threads::pid() else {
        return -libc::EINVAL;
    };
    // io_pgetevents reads the mask first of all.
    if !sigmask.is_null() {
        let mut m = [0u8; 8];
        if sys::read_user(pid, sigmask as usize, &mut m) != m.len() {
            return -libc::EFAULT;
        }
    }
    if min_nr < 0 || min_nr > nr {
        return -libc::EINVAL;
    }
    let deadline = if timeout.is_null() {
        None
    } else {
        let mut raw = [0u8; size_of::<libc::timespec>()];
        if sys::read_user(pid, timeout as usize, &mut raw) != raw.len() {
            return -libc::EFAULT;
        }
        // SAFETY: a timespec's bytes, any value of which is valid.
        let t: libc::timespec = unsafe { core::mem::transmute(raw) };
        Some(threads::deadline(&t))
    };
    let mut got: c_long = 0;
    loop {
        // Read before the ring: once it is 0, every due event is in the ring.
        let due = ctl.due.load(Ordering::Acquire);
        match reap(ctl, pid, events.wrapping_add(got as usize), nr - got) {
            Ok(n) => got += n as c_long,
            Err(e) => return if got > 0 { got as i32 } else { -e },
        }
        if pin.dead() {
            return if got > 0 { got as i32 } else { -libc::EINVAL };
        }
        // min_nr 0 asks for what has completed, which on kernel AIO includes
        // every buffered request submitted: wait for those still due.
        let owed = min_nr == 0 && due > 0 && got < nr && !zero;
        if (got >= min_nr && !owed) || zero {
            if !sigmask.is_null() {
                // The kernel installs the mask for the call even when events
                // are ready: a pending signal it lets in is delivered now.
                threads::let_signals_in(sigmask);
            }
            return got as i32;
        }
        let helped = match ctl.exec {
            Exec::Threads => threads::help(),
            Exec::Uring => uring::help(),
        };
        if helped {
            continue; // a request done here: look at the ring again
        }
        match wait(ctl, pin, deadline, sigmask) {
            Wait::Woken => {}
            Wait::TimedOut => return got as i32,
            Wait::Interrupted => return if got > 0 { got as i32 } else { -libc::EINTR },
        }
    }
}

/// Copies up to `max` events from the ring into the caller's array and moves
/// the head on: how many, or EFAULT (nothing taken) for a bad array.
fn reap(ctl: &Control, pid: i32, out: *mut io_event, max: c_long) -> Result<u32, i32> {
    if max <= 0 {
        return Ok(0);
    }
    ctl.reap.with(|| {
        let head = ctl.head().load(Ordering::Acquire) % ctl.nr;
        let tail = ctl.tail().load(Ordering::Acquire) % ctl.nr;
        let ready = if tail >= head {
            tail - head
        } else {
            tail + ctl.nr - head
        };
        let n = (ready as c_long).min(max) as u32;
        if n == 0 {
            return Ok(0);
        }
        let first = n.min(ctl.nr - head);
        let len = n as usize * size_of::<io_event>();
        let ev = size_of::<io_event>();
        if uaccess::writable(out.cast(), len) {
            for i in 0..n {
                // SAFETY: slot (head + i) mod nr of our mapped ring.
                let e = unsafe { ctl.slot(head + i).read() };
                // SAFETY: the destination holds n events (known writable).
                unsafe { out.wrapping_add(i as usize).write_unaligned(e) };
            }
        } else {
            // Through the kernel: a bad array is EFAULT, not a fault.
            // SAFETY: `first` (then n - first) events of our mapped ring.
            let a = unsafe { core::slice::from_raw_parts(ctl.slot(head).cast::<u8>(), first as usize * ev) };
            // SAFETY: `first` (then n - first) events of our mapped ring; from slot 0.
            let b =
                unsafe { core::slice::from_raw_parts(ctl.slot(0).cast::<u8>(), (n - first) as usize * ev) };
            if !sys::write_user(pid, out as usize, a) || !sys::write_user(pid, out as usize + a.len(), b) {
                return Err(libc::EFAULT);
            }
            uaccess::remember(out.cast(), len);
        }
        ctl.head().store((head + n) % ctl.nr, Ordering::Release);
        Ok(n)
    })
}

pub(crate) enum Wait {
    Woken,
    TimedOut,
    Interrupted,
}

/// Sleeps until a completion, the deadline, a signal handler or `io_destroy`.
fn wait(ctl: &Control, pin: &EmuPin, deadline: Option<u64>, sigmask: *const libc::sigset_t) -> Wait {
    // On io_uring, the thread that gets the token sleeps in the ring itself,
    // listed as IN_RING so that an event posted some other way nudges it.
    let hold = if ctl.exec == Exec::Uring {
        uring::hold()
    } else {
        None
    };
    let w = if hold.is_some() {
        IN_RING
    } else {
        threads::waiter_fd()
    };
    let listed = ctl.state.with(|st| {
        if (w < 0 && w != IN_RING) || st.nwaiters == MAX_WAITERS {
            return false;
        }
        st.waiters[st.nwaiters] = w;
        st.nwaiters += 1;
        true
    });
    let efd = if listed && w >= 0 { w } else { -1 };
    // Looked at again once listed: a completion posted before would be missed.
    let outcome = if ctl.ready() || pin.dead() {
        Wait::Woken
    } else if let Some(hold) = &hold {
        hold.sleep(deadline, sigmask)
    } else if ctl.exec == Exec::Uring {
        // Another thread holds the token, and may leave before our event
        // comes: the completer drains meanwhile.
        uring::with_drainer(|| threads::sleep_on(efd, deadline, sigmask))
    } else {
        threads::sleep_on(efd, deadline, sigmask)
    };
    if listed {
        ctl.state.with(|st| {
            if let Some(i) = st.waiters[..st.nwaiters].iter().position(|&x| x == w) {
                st.nwaiters -= 1;
                st.waiters[i] = st.waiters[st.nwaiters];
            }
        });
    }
    if hold.is_none() {
        threads::waiter_fd_done(w);
    }
    outcome
}

/// `io_cancel` on a user-space context: a pending poll is cancelled (its
/// event, res 0, comes through the ring) with `-EINPROGRESS`; anything else
/// is `-EINVAL`.
#[inline(never)] // off the kernel path: one copy, not one per entry point
pub(crate) fn cancel(pin: &EmuPin, iocb: usize) -> i32 {
    let Some(pid) = threads::pid() else {
        return -libc::EINVAL;
    };
    let mut key = [0u8; 4];
    if sys::read_user(pid, iocb + KEY_OFFSET, &mut key) != 4 {
        return -libc::EFAULT;
    }
    if u32::from_ne_bytes(key) != KIOCB_KEY {
        return -libc::EINVAL;
    }
    let ctl = control(pin);
    let cancelled = match ctl.exec {
        Exec::Threads => threads::cancel_poll(ctl, iocb as u64),
        Exec::Uring => uring::cancel_polls(ctl, Some(iocb as u64)),
    };
    if cancelled {
        -libc::EINPROGRESS
    } else {
        -libc::EINVAL
    }
}

/// `io_destroy` of a user-space context: no new call gets in, sleepers are
/// woken (they answer `-EINVAL`), pending polls are cancelled, requests in
/// flight are waited for, then everything is freed.
#[inline(never)] // off the kernel path: one copy, not one per entry point
pub(crate) fn destroy(pin: EmuPin) -> i32 {
    if !pin.mark_dead() {
        return -libc::EINVAL; // another thread's destroy got there first
    }
    let ctl = control(&pin);
    // Sleepers inside are woken (a later one sees DEAD before it sleeps);
    // then no other call is inside, so no submission adds work behind us.
    ctl.wake_waiters();
    pin.wait_alone();
    match ctl.exec {
        Exec::Threads => threads::cancel_all(ctl),
        Exec::Uring => {
            uring::cancel_polls(ctl, None);
        }
    }
    let wait_all = || sync::wait_while(&ctl.inflight, |v| v & !sync::WAITERS != 0);
    match ctl.exec {
        Exec::Threads => wait_all(),
        Exec::Uring => uring::with_drainer(wait_all),
    };
    let (base, len) = (ctl.ring, ctl.map_len);
    pin.unregister();
    // SAFETY: no call is inside any more and none can start: the mapping
    // (ring, control block, records) is ours to drop.
    unsafe { sys::unmap(base as *mut u8, len) };
    0
}
