//! What the io_uring engine keeps per thread of the program: its way into
//! the ring, and its requests still in the kernel.
//!
//! - A thread enters the ring through its own registration of it
//!   (`IORING_REGISTER_RING_FDS`), made the first time, once the descriptor
//!   is checked to be the ring's; where the kernel has no registration
//!   (before 5.18), through the descriptor, checked each time.
//! - `inflight` counts the thread's requests in the kernel. io_uring cancels
//!   them if the thread exits, so the thread's destructor (run by
//!   `pthread_exit` and a return from the thread's function) waits until
//!   they are done, draining. Only then is the record freed; the drainer's
//!   last touch of it is the count (woken by address, see `done`).
//! - A forked child inherits the forking thread's record as a copy, from
//!   another process (`pid`): it is replaced.

use super::ring::Ring;
use crate::sys::fd;
use crate::sys::thread as sys_thread;
use crate::sys::uring::{self as sys_uring, RingRef};
use core::ffi::c_void;
use core::sync::atomic::{AtomicI32, AtomicU32, Ordering};

pub(crate) struct Thread {
    pid: i32,
    /// Requests of this thread in the kernel (and `sync::WAITERS`).
    pub(crate) inflight: AtomicU32,
    /// The ring's index among this thread's registered rings; `NONE` not
    /// registered yet, `CANNOT` where the kernel has no registration.
    reg: AtomicI32,
    /// The service's own descriptor for the ring (its table is its own).
    own_fd: AtomicI32,
}

const NONE: i32 = -1;
const CANNOT: i32 = -2;

/// The key's value plus one (0: no key yet).
static KEY: AtomicU32 = AtomicU32::new(0);

fn key() -> Option<libc::pthread_key_t> {
    let k = KEY.load(Ordering::Acquire);
    if k != 0 {
        return Some(k - 1);
    }
    let made = sys_thread::key_create(Some(exit)).ok()?;
    match KEY.compare_exchange(0, made + 1, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => Some(made),
        Err(other) => {
            // SAFETY: our own key, never used.
            unsafe { libc::pthread_key_delete(made) };
            Some(other - 1)
        }
    }
}

/// This thread's record, made on first use.
pub(crate) fn current() -> Option<&'static Thread> {
    let k = key()?;
    let p = sys_thread::key_get(k).cast::<Thread>();
    let pid = super::process::pid()?;
    // SAFETY: a record of ours (made below), alive until this thread's
    // destructor frees it.
    if !p.is_null() && unsafe { (*p).pid } == pid {
        // SAFETY: as above.
        return Some(unsafe { &*p });
    }
    let fresh = sys_thread::alloc(core::mem::size_of::<Thread>()).cast::<Thread>();
    if fresh.is_null() {
        return None;
    }
    let t = Thread {
        pid,
        inflight: AtomicU32::new(0),
        reg: AtomicI32::new(NONE),
        own_fd: AtomicI32::new(-1),
    };
    // SAFETY: our fresh allocation, sized and aligned (malloc) for it.
    unsafe { fresh.write(t) };
    if sys_thread::key_set(k, fresh.cast()).is_err() {
        // SAFETY: ours, never published.
        unsafe { sys_thread::free(fresh.cast()) };
        return None;
    }
    // SAFETY: initialised above; freed only by this thread's destructor.
    Some(unsafe { &*fresh })
}

impl Thread {
    /// How this thread names the ring to the kernel: None when it cannot
    /// reach it (its descriptor is no longer the ring's).
    pub(crate) fn ring_ref(&self, ring: &Ring) -> Option<RingRef> {
        let reg = self.reg.load(Ordering::Relaxed);
        if reg >= 0 {
            return Some(RingRef::Registered(reg as u32));
        }
        let own = self.own_fd.load(Ordering::Relaxed);
        let fd = if own >= 0 { own } else { ring.fd };
        if !fd::fstat(fd).is_ok_and(|s| s.id == ring.id) {
            return None;
        }
        if reg == CANNOT {
            return Some(RingRef::Fd(fd));
        }
        match sys_uring::register_ring(fd) {
            Ok(i) => {
                self.reg.store(i as i32, Ordering::Relaxed);
                Some(RingRef::Registered(i))
            }
            Err(_) => {
                self.reg.store(CANNOT, Ordering::Relaxed);
                Some(RingRef::Fd(fd))
            }
        }
    }
}

/// The service's thread reaches the ring through its own descriptor.
pub(crate) fn adopt(own_fd: i32, ring: &Ring) {
    if let Some(t) = current() {
        if t.own_fd.swap(own_fd, Ordering::Relaxed) != own_fd {
            t.reg.store(NONE, Ordering::Relaxed);
            let _ = t.ring_ref(ring);
        }
    }
}

/// One request of the thread whose record is at `owner` is out of the
/// kernel: the last touch of that record (it may be freed once its count
/// is 0, so a sleeper is woken by address).
pub(crate) fn done(owner: usize) {
    if owner == 0 {
        return;
    }
    // SAFETY: the record of the request's submitter, alive while it counts
    // the request (its destructor waits for the count).
    let count = unsafe { &(*(owner as *const Thread)).inflight };
    let addr = count.as_ptr() as usize;
    let prev = count.fetch_sub(1, Ordering::SeqCst);
    if prev & crate::sync::WAITERS != 0 {
        crate::sys::futex_wake_addr(addr);
    }
}

/// A thread's destructor: waits for its requests, then frees its record.
unsafe extern "C" fn exit(p: *mut c_void) {
    let t = p.cast::<Thread>();
    if t.is_null() {
        return;
    }
    // SAFETY: the record this thread made.
    let same_process = super::process::pid() == Some(unsafe { (*t).pid });
    if same_process {
        // Put back for the wait, which enters the ring as this thread.
        if let Some(k) = key() {
            let _ = sys_thread::key_set(k, p);
        }
        // SAFETY: as above.
        super::wait_for_thread(unsafe { &(*t).inflight });
        if let Some(k) = key() {
            let _ = sys_thread::key_set(k, core::ptr::null_mut());
        }
    }
    // SAFETY: our allocation, no longer referred to (its count is 0).
    unsafe { sys_thread::free(t.cast()) };
}
