//! `io_submit` on a user-space context: the iocbs are read through the
//! kernel's checked copies (a bad pointer is `-EFAULT`, never a fault of
//! ours), checked the kernel's way (`iocb`), and each request is done here
//! (as kernel AIO does buffered and stream I/O inside `io_submit`) or handed
//! to the executor.
//!
//! A request's descriptors are the program's numbers, valid only until
//! `io_submit` returns: everything that resolves them (a read done here,
//! io_uring's submission, the `SCM_RIGHTS` that hands a file to an engine
//! thread) happens before it returns. Requests are handed over at the end of
//! each run of up to 64 iocbs; an executor that cannot take them (no thread
//! can start, no channel) has them done here instead.

use super::env::{free_iovecs, RealEnv};
use super::iocb::{self, Env, Iocb, Limits, Plan, Where};
use super::{control, Control, Op, Req, NONE};
use crate::engine::process;
use crate::registry::EmuPin;
use crate::sys::Errno;
use crate::sys::{self, fd};
use crate::uaccess;
use core::ffi::c_long;
use core::mem::size_of;
use core::ptr;
use core::sync::atomic::Ordering;

/// Requests handed to the executor in one go.
const CHUNK: usize = 64;

/// `io_submit` on a user-space context.
#[inline(never)] // off the kernel path: one copy, not one per entry point
pub(crate) fn submit(pin: &EmuPin, nr: c_long, ios: usize) -> i32 {
    if nr < 0 {
        return -libc::EINVAL;
    }
    let Some(pid) = process::pid() else {
        return -libc::EAGAIN;
    };
    let ctl = control(pin);
    let nr = (nr as u64).min(u64::from(ctl.nr)) as usize;
    let mut env = RealEnv::new(pid);
    let lim = limits(ctl.exec.async_buffered());
    let mut done = 0;
    let mut ret = 0;
    while done < nr {
        // The pointers, a run at a time.
        let mut ptrs = [0usize; CHUNK];
        let n = (nr - done).min(CHUNK);
        let mut bytes = [0u8; CHUNK * size_of::<usize>()];
        let want = n * size_of::<usize>();
        let got =
            copy_in(pid, ios + done * size_of::<usize>(), &mut bytes[..want], true) / size_of::<usize>();
        for (i, p) in ptrs.iter_mut().enumerate().take(got) {
            let w = &bytes[i * size_of::<usize>()..(i + 1) * size_of::<usize>()];
            *p = usize::from_ne_bytes(w.try_into().unwrap_or([0; size_of::<usize>()]));
        }
        let mut batch = [ptr::null_mut::<Req>(); CHUNK];
        let mut queued = 0;
        let mut polls = Polls::new();
        for &user_iocb in &ptrs[..got] {
            match submit_one(ctl, pid, user_iocb, &mut env, lim, &mut polls) {
                Ok(Some(req)) => {
                    batch[queued] = req;
                    queued += 1;
                    done += 1;
                }
                Ok(None) => done += 1,
                Err(e) => {
                    ret = e.neg();
                    break;
                }
            }
        }
        polls.hand_over(ctl);
        if queued > 0 {
            // SAFETY: records of `ctl` this call filled, handed to no one yet.
            unsafe { ctl.exec.start(ctl, &batch[..queued]) };
        }
        if ret != 0 {
            break;
        }
        if got < n {
            ret = -libc::EFAULT;
            break;
        }
    }
    if done > 0 {
        done as i32
    } else {
        ret
    }
}

/// What the checks may assume of this machine and executor.
fn limits(async_buffered: bool) -> Limits {
    use core::sync::atomic::AtomicU8;
    // 0 not asked yet, 1 a 64-bit kernel, 2 a 32-bit one.
    static KERNEL: AtomicU8 = AtomicU8::new(0);
    let k64 = if cfg!(target_pointer_width = "64") {
        true
    } else {
        match KERNEL.load(Ordering::Relaxed) {
            0 => {
                let b = kernel_is_64_bit();
                KERNEL.store(if b { 1 } else { 2 }, Ordering::Relaxed);
                b
            }
            v => v == 1,
        }
    };
    Limits {
        task_size: iocb::task_size(k64),
        kernel_32: !k64,
        async_buffered,
    }
}

/// Whether the kernel is a 64-bit one (a 32-bit program may run on either).
fn kernel_is_64_bit() -> bool {
    let Some(u) = sys::uname() else {
        return false;
    };
    #[allow(clippy::unnecessary_cast)] // c_char is i8 or u8, by target
    let m: [u8; 8] = core::array::from_fn(|i| u.machine[i] as u8);
    m.starts_with(b"x86_64")
        || m.starts_with(b"aarch64")
        || m.starts_with(b"ppc64")
        || m.starts_with(b"s390x")
        || m.starts_with(b"mips64")
        || m.starts_with(b"riscv64")
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

/// One iocb: Ok(Some(record)) for the executor, Ok(None) when done here
/// (posted), Err(errno) when refused.
fn submit_one(
    ctl: &Control,
    pid: i32,
    user_iocb: usize,
    env: &mut RealEnv,
    lim: Limits,
    polls: &mut Polls,
) -> Result<Option<*mut Req>, Errno> {
    let mut raw = [0u8; 64];
    if copy_in(pid, user_iocb, &mut raw, false) != raw.len() {
        return Err(Errno(libc::EFAULT));
    }
    let cb = Iocb::decode(&raw);
    iocb::precheck(&cb, lim.kernel_32)?;
    // A request slot (the kernel's reqs_available).
    let Some(slot) = ctl.take_slot() else {
        return Err(Errno(libc::EAGAIN));
    };
    let plan = match iocb::check(&cb, user_iocb, env, lim) {
        Ok(p) => p,
        Err(e) => {
            ctl.give_back_slot(slot);
            return Err(e);
        }
    };
    let iovs = env.take_iovecs();
    match plan {
        Plan::Poll { ready, .. } if ready != 0 => {
            ctl.post(user_iocb as u64, cb.data, i64::from(ready));
            signal_here(cb.resfd());
            ctl.give_back_record(slot);
            return Ok(None);
        }
        Plan::Rw {
            write,
            vectored,
            one,
            iovcnt,
            offset,
            rw_flags,
            at: at @ (Where::Here | Where::HereIfCached),
            mode_checked,
            ..
        } => {
            let list = if vectored {
                iovs.cast_const()
            } else {
                &raw const one
            };
            let cached = at == Where::HereIfCached;
            let flags = rw_flags as i32 | if cached { iocb::RWF_NOWAIT as i32 } else { 0 };
            let may_block = !matches!(env.stat(cb.fd).kind, libc::S_IFREG | libc::S_IFBLK)
                && rw_flags & iocb::RWF_NOWAIT == 0
                && env.flags(cb.fd).is_ok_and(|f| f & libc::O_NONBLOCK == 0);
            if may_block {
                // A blocking pipe, socket or device may keep us here for as
                // long as it likes: the polls before it wait with the
                // engine from now on, as kernel AIO's were armed before it.
                polls.hand_over(ctl);
            }
            // SAFETY: our copy of the iovecs (or the one buffer), checked the
            // kernel's way; the buffers are the program's, which the kernel
            // reads through its checked copies.
            let mut res = unsafe { fd::rw(cb.fd, write, list, iovcnt as i32, offset, flags) };
            // readv(2) answers an empty read itself; kernel AIO asks the file,
            // and an eventfd refuses a read of fewer than 8 bytes.
            if res == 0
                && !write
                && env.stat(cb.fd).kind == 0
                && total_len(list, iovcnt) == 0
                && env.is_eventfd(cb.fd)
            {
                res = -i64::from(libc::EINVAL);
            }
            if cached && res == -i64::from(libc::EOPNOTSUPP) {
                // This file system cannot say whether it would block: done
                // here, blocking, as kernel AIO does it.
                // SAFETY: as above.
                res = unsafe { fd::rw(cb.fd, write, list, iovcnt as i32, offset, rw_flags as i32) };
            }
            let would_block = cached
                && (res == -i64::from(libc::EAGAIN)
                    || (!write && res > 0 && short_of_end(env, cb.fd, offset, res, list, iovcnt)));
            if !would_block {
                // SAFETY: this call's copy, taken from `env`, held by no record.
                unsafe { free_iovecs(iovs) };
                if res == -i64::from(libc::EBADF) && !mode_checked {
                    // The open mode, which io_submit refuses (see iocb::check).
                    ctl.give_back_slot(slot);
                    return Err(Errno(libc::EBADF));
                }
                ctl.post(user_iocb as u64, cb.data, res);
                signal_here(cb.resfd());
                ctl.give_back_record(slot);
                // What it read or wrote may have made an earlier poll of
                // this call ready: the kernel completes it from the wake-up.
                polls.look_again(env);
                return Ok(None);
            }
            // Not in the page cache: io_uring reads it without blocking us.
        }
        _ => {}
    }
    let poll_fds = if cb.resfd() >= 0 { 2 } else { 1 };
    if slot == NONE || (matches!(plan, Plan::Poll { .. }) && !ctl.exec.reserve_poll(poll_fds)) {
        // No record, or no room with the engine for a poll that must wait.
        // SAFETY: this call's copy, taken from `env`, held by no record.
        unsafe { free_iovecs(iovs) };
        ctl.give_back_slot(slot);
        return Err(Errno(libc::EAGAIN));
    }
    let req = ctl.record(slot);
    // SAFETY: the record we took from the free list: ours alone.
    let r = unsafe { &mut *req };
    r.obj = user_iocb as u64;
    r.data = cb.data;
    r.op = plan.op();
    r.fd = cb.fd;
    r.resfd = cb.resfd();
    r.held_fd.store(-1, Ordering::Relaxed);
    r.held_resfd.store(-1, Ordering::Relaxed);
    r.iov = ptr::null_mut();
    r.iovcnt = 0;
    r.offset = -1;
    r.rw_flags = 0;
    r.events = 0;
    r.kind = 0;
    r.prio = 0;
    r.due = false;
    r.prompt = r.resfd >= 0 || !ctl.driven.load(Ordering::Relaxed);
    r.owner = 0;
    r.next = ptr::null_mut();
    r.gen = r.gen.wrapping_add(1);
    r.poll_state.store(0, Ordering::Relaxed);
    match plan {
        Plan::Rw {
            vectored,
            one,
            iovcnt,
            offset,
            rw_flags,
            prio,
            buffered,
            ..
        } => {
            r.one = one;
            r.iov = if vectored { iovs } else { &raw mut r.one };
            r.iovcnt = iovcnt as i32;
            r.offset = offset;
            r.rw_flags = rw_flags as i32;
            r.prio = prio;
            r.due = buffered;
        }
        Plan::Sync { .. } => {}
        Plan::Poll { events, kind, .. } => {
            r.events = events;
            r.kind = kind;
        }
    }
    ctl.inflight.fetch_add(1, Ordering::Relaxed);
    if r.due {
        ctl.due.fetch_add(1, Ordering::Relaxed);
    }
    if r.op == Op::Poll {
        // Handed over at the end of the run (its room is reserved), once
        // the rest of the call has had its chance to make it ready.
        polls.add(req);
        return Ok(None);
    }
    Ok(Some(req))
}

/// The polls of one run of iocbs that must wait, held until the run's end
/// (or until a request that may block is done here): kernel AIO completes
/// a poll from the wake-up of its file, so a poll that a later request of
/// the same call makes ready completes then, even if a request after that
/// makes it not ready again.
struct Polls {
    reqs: [*mut Req; CHUNK],
    n: usize,
}

impl Polls {
    fn new() -> Polls {
        Polls {
            reqs: [ptr::null_mut(); CHUNK],
            n: 0,
        }
    }

    fn add(&mut self, req: *mut Req) {
        if self.n < CHUNK {
            self.reqs[self.n] = req;
            self.n += 1;
        }
    }

    /// Completes those that have become ready, with the mask of the
    /// wake-up (see `iocb::wake_mask`).
    fn look_again(&mut self, env: &mut RealEnv) {
        let mut i = 0;
        while i < self.n {
            let req = self.reqs[i];
            // SAFETY: a filled poll record of this call, not handed over.
            let r = unsafe { &*req };
            let mask = env.poll_now(r.fd, r.events);
            if mask == 0 {
                i += 1;
                continue;
            }
            self.n -= 1;
            self.reqs[i] = self.reqs[self.n];
            // SAFETY: a record of the control block it names.
            let ctl = unsafe { &*r.ctl };
            ctl.exec.release_poll(if r.resfd >= 0 { 2 } else { 1 });
            let (efd, res) = (r.resfd, i64::from(iocb::wake_mask(r.kind, mask, r.events)));
            // SAFETY: ours, in flight; its eventfd number is still the program's.
            unsafe { super::complete(req, res, efd) };
        }
    }

    /// Hands the rest to the engine; one it cannot take after all (its
    /// reservation notwithstanding) completes with `-EAGAIN`.
    fn hand_over(&mut self, ctl: &Control) {
        for &req in &self.reqs[..self.n] {
            // SAFETY: a filled poll record of this call, handed over.
            if unsafe { ctl.exec.start_poll(req) }.is_err() {
                // SAFETY: ours still; the eventfd number is the program's.
                let efd = unsafe { (*req).resfd };
                // SAFETY: as above.
                unsafe { super::complete(req, -i64::from(libc::EAGAIN), efd) };
            }
        }
        self.n = 0;
    }
}

/// The bytes `cnt` iovecs at `list` ask for.
fn total_len(list: *const libc::iovec, cnt: usize) -> u64 {
    if cnt == 0 {
        return 0;
    }
    // SAFETY: `list` holds `cnt` iovecs (ours, or the one buffer).
    unsafe { core::slice::from_raw_parts(list, cnt) }
        .iter()
        .map(|e| e.iov_len as u64)
        .sum()
}

/// Whether a read that stopped at `res` bytes, short of what was asked,
/// also stopped short of the end of the file: the rest is not cached.
fn short_of_end(
    env: &mut RealEnv,
    fd: i32,
    offset: i64,
    res: i64,
    list: *const libc::iovec,
    cnt: usize,
) -> bool {
    (res as u64) < total_len(list, cnt) && offset.saturating_add(res) < env.stat(fd).size
}

/// Signals the program's eventfd `fd` (-1: none) inside `io_submit`, where
/// the number is still the one the request named.
fn signal_here(fd: i32) {
    if fd >= 0 {
        let _ = fd::eventfd_signal(fd);
    }
}

/// Carries out a record's request here and now with the program's
/// descriptors: only inside the `io_submit` that took it (an executor that
/// cannot take it). Posts it and gives the record back.
///
/// # Safety
/// `req` is a filled record in flight that the caller holds, taken by the
/// current `io_submit`.
pub(crate) unsafe fn run_here(req: *mut Req) {
    // SAFETY: the caller's promise.
    let r = unsafe { &*req };
    let res = match r.op {
        Op::Fsync => fd::sync(r.fd, false),
        Op::Fdsync => fd::sync(r.fd, true),
        // SAFETY: the record's checked iovecs; the kernel checks the buffers.
        Op::Read | Op::Write => unsafe { fd::rw(r.fd, r.writes(), r.iov, r.iovcnt, r.offset, r.rw_flags) },
        Op::Poll => 0, // not reached: polls go to the service or are refused
    };
    let efd = r.resfd;
    // SAFETY: the caller's promise; the eventfd number is still the program's.
    unsafe { super::complete(req, res, efd) };
}

/// [`run_here`] for each of `reqs`.
///
/// # Safety
/// As [`run_here`], for each record.
pub(crate) unsafe fn run_all_here(reqs: &[*mut Req]) {
    for &req in reqs {
        // SAFETY: the caller's promise, for each record.
        unsafe { run_here(req) };
    }
}
