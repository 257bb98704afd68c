//! `io_getevents` and `io_destroy` on kernel AIO contexts: completions taken
//! straight from the ring in user space when that is safe, the kernel asked
//! otherwise, with the registry's protocol (see `registry.rs`) keeping the
//! two readers apart so that every event is delivered exactly once.
//!
//! With `LIBAIO_RS_REAP=0` (and under valgrind, or a seccomp filter found at
//! load time) nobody in the process copies events in user space, so kernel
//! readers need not be counted: the calls cost what libaio's cost. libaio's
//! own empty-ring answer to a zero timeout is given either way.
//!
//! A thread must not call `io_getevents` or `io_destroy` from a signal handler
//! that interrupted the same context's user-space copy on that thread (at most
//! `nr` events): it would wait for itself. `LIBAIO_RS_REAP=0` turns user-space
//! reaping off for such programs.

use super::gate::{self, Busy};
use crate::abi::{io_context_t, io_event};
use crate::registry::{self, Mark, Peek, Slot, DEAD, LIVE};
use crate::{config, ring, uaccess};
use core::ffi::c_long;
use core::mem::size_of;
use core::ptr;
use core::sync::atomic::{AtomicU32, Ordering};

/// What `io_getevents`/`io_pgetevents` were asked for.
pub(crate) struct Request {
    /// The context.
    pub(crate) ctx: io_context_t,
    /// Fewest events wanted.
    pub(crate) min_nr: c_long,
    /// Most events wanted.
    pub(crate) nr: c_long,
    /// Where to put them.
    pub(crate) events: *mut io_event,
    /// The caller's timeout (NULL waits for ever).
    pub(crate) timeout: *mut libc::timespec,
}

impl Request {
    /// # Safety
    /// `timeout` is NULL or readable.
    unsafe fn zero_timeout(&self) -> bool {
        if self.timeout.is_null() {
            return false;
        }
        // SAFETY: the caller's promise. libaio reads the timeout of a live
        // context in user space too, so a bad pointer fails exactly where
        // libaio's does.
        let t = unsafe { ptr::read_unaligned(self.timeout) };
        t.tv_sec == 0 && t.tv_nsec == 0
    }

    /// Whether `events` can take `n` events from user space: the kernel has
    /// written there before (else the kernel answers, EFAULT for a bad array).
    fn events_writable(&self, n: u32) -> bool {
        uaccess::writable(self.events.cast(), n as usize * size_of::<io_event>())
    }
}

/// What a user-space reap decided.
enum Reap {
    /// The call's answer: a count or -errno.
    Done(i32),
    /// The kernel must answer (wait, or report EFAULT).
    Kernel,
}

/// `io_getevents` for every caller: answered from the ring when it can be,
/// by `syscall` otherwise. `reap` says whether this call may take events from
/// the ring (libaio's empty-ring, zero-timeout answer is given either way).
///
/// # Safety
/// `req` holds the caller's arguments unchanged (`timeout` is read, as libaio
/// reads it, for a context of ours); `syscall` makes the kernel call.
pub(crate) unsafe fn getevents(req: &Request, reap: bool, syscall: impl FnOnce() -> i32) -> i32 {
    let Some(table) = registry::table() else {
        return syscall(); // nothing was ever registered: nobody reaps in user space
    };
    let ctx = req.ctx as usize;
    // Kernel readers are counted unless nobody in this process ever reaps in
    // user space (a call that may not reap itself, such as one with a signal
    // mask, still runs beside others that do).
    let counted = config::user_reap();
    let gate = table.gate(ctx);
    let Some(mut slot) = table.find(ctx) else {
        return in_kernel(gate, counted, req, syscall);
    };
    // SAFETY: the caller's promise; read once, for a context of ours only.
    let zero = unsafe { req.zero_timeout() };
    let mut peeked = false;
    loop {
        if reap && counted {
            match gate::try_user(gate) {
                Ok(()) => {
                    // SAFETY: USER is held on the gate of req.ctx.
                    match unsafe { reap_holding_user(slot, req, zero) } {
                        Some(Reap::Done(n)) => {
                            gate::release_user(gate);
                            return n;
                        }
                        Some(Reap::Kernel) => {
                            // From copier to counted kernel reader in one step.
                            gate::user_to_reader(gate);
                            return counted_call(gate, req, syscall);
                        }
                        None => {
                            gate::release_user(gate);
                            if slot.ctx() == ctx {
                                // Being destroyed, or gone: the kernel answers.
                                return in_kernel(gate, counted, req, syscall);
                            }
                            let Some(again) = table.find(ctx) else {
                                return in_kernel(gate, counted, req, syscall);
                            };
                            slot = again;
                            continue;
                        }
                    }
                }
                Err(Busy::User) => {
                    gate::wait_no_user(gate);
                    continue;
                }
                Err(Busy::Readers) => {} // the kernel is reading: peek, or join it
            }
        }
        if zero && !peeked {
            // libaio's "empty ring, zero timeout" answer needs no syscall and
            // only reads the indices, which readers in the kernel do not stop.
            match slot.peek_empty(ctx) {
                Peek::Empty => return 0,
                // Events are there: take them here if the readers left, else the kernel.
                Peek::Events => peeked = true,
                Peek::Gone => return in_kernel(gate, counted, req, syscall),
                Peek::Moved => {
                    let Some(again) = table.find(ctx) else {
                        return in_kernel(gate, counted, req, syscall);
                    };
                    slot = again;
                }
            }
            continue;
        }
        return in_kernel(gate, counted, req, syscall);
    }
}

/// The kernel answers, the caller counted on `gate` when anyone may reap in
/// user space.
fn in_kernel(gate: &AtomicU32, counted: bool, req: &Request, syscall: impl FnOnce() -> i32) -> i32 {
    if !counted {
        return syscall();
    }
    gate::enter_kernel(gate);
    counted_call(gate, req, syscall)
}

/// Runs `syscall` as a counted kernel reader (already counted in), and
/// remembers where the kernel wrote events.
fn counted_call(gate: &AtomicU32, req: &Request, syscall: impl FnOnce() -> i32) -> i32 {
    let ret = syscall();
    gate::leave_kernel(gate);
    if ret > 0 {
        uaccess::remember(req.events.cast(), ret as usize * size_of::<io_event>());
    }
    ret
}

/// The user-space reap, or None when the slot no longer holds a live,
/// undestroyed `req.ctx`.
///
/// # Safety
/// The caller holds `USER` on the gate of `req.ctx`, and `req.timeout` is as
/// [`getevents`] requires.
#[inline(always)]
unsafe fn reap_holding_user(slot: &Slot, req: &Request, zero: bool) -> Option<Reap> {
    // Sequentially consistent, after taking USER the same way: a destroy has
    // either set DEAD before this load, or will see USER and wait for us.
    let s = slot.state.load(Ordering::SeqCst);
    let ctx = req.ctx as usize;
    if s & (LIVE | DEAD) != LIVE || slot.ctx() != ctx {
        return None;
    }
    // libaio's own shortcut, taken before any argument check and on libaio's
    // own test of the header, as libaio does.
    // SAFETY: a live, undestroyed context of ours, whose destroy waits for USER.
    if zero && unsafe { ring::looks_empty(ctx) } {
        return Some(Reap::Done(0));
    }
    // SAFETY: as above.
    let Some(ring) = (unsafe { ring::Ring::open(ctx, slot.nr()) }) else {
        return Some(Reap::Kernel);
    };
    let Some((head, ready)) = ring.pending() else {
        return Some(Reap::Kernel);
    };
    // The kernel's checks, in its order (a negative nr fails min_nr > nr).
    if req.min_nr < 0 || req.min_nr > req.nr {
        return Some(Reap::Done(-libc::EINVAL));
    }
    if (ready as c_long) < req.min_nr && !zero {
        return Some(Reap::Kernel); // must wait: the kernel's job
    }
    let n = (ready as c_long).min(req.nr) as u32;
    if n == 0 {
        return Some(Reap::Done(0));
    }
    if !req.events_writable(n) {
        return Some(Reap::Kernel); // the kernel writes it (or answers EFAULT)
    }
    // SAFETY: USER held, n <= ready, and `events` is writable for n events.
    unsafe { ring.take(head, n, req.events) };
    Some(Reap::Done(n as i32))
}

/// The part of `io_destroy` around the syscall: stop user-space reaping before
/// the kernel unmaps the ring, and forget the context once it is gone.
pub(crate) fn destroy(ctx: io_context_t, syscall: impl FnOnce() -> i32) -> i32 {
    let Some(table) = registry::table() else {
        return syscall();
    };
    let ctx = ctx as usize;
    let slot = loop {
        let Some(slot) = table.find(ctx) else {
            return syscall();
        };
        match slot.mark_dead(ctx) {
            Mark::Marked => break slot,
            Mark::NotLive => return syscall(), // gone: the kernel answers -EINVAL
            Mark::Moved => continue,
        }
    };
    // No new peek or copy can start; let those running finish with the ring.
    slot.wait_for_peekers();
    gate::wait_no_user(table.gate(ctx));
    let ret = syscall();
    if ret < 0 && ret != -libc::EINVAL {
        // Refused (a seccomp filter, say): the context lives on.
        slot.unmark_dead();
        return ret;
    }
    // Destroyed, or unknown to the kernel (destroyed behind our back): either
    // way no ring is left to read. Readers still in the kernel are counted on
    // the gate, not the slot, so it is freed at once.
    slot.free();
    ret
}

#[cfg(test)]
mod tests {
    use super::super::gate::{READERS, USER};
    use super::*;
    use crate::abi::aio_ring;
    use crate::registry::{is_registered, register, table, PEEKERS};
    use crate::sync::WAITERS;
    use crate::sys;
    use std::sync::atomic::AtomicBool;
    use std::sync::{Arc, Mutex, MutexGuard};
    use std::time::Duration;
    use std::vec::Vec;

    /// Gates are shared by every address of a home, so tests that look at
    /// them run one at a time.
    static SERIAL: Mutex<()> = Mutex::new(());

    fn serial() -> MutexGuard<'static, ()> {
        crate::config::init();
        SERIAL.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A fake ring in its own mapping: a header the kernel's way and `nr` slots.
    struct Fake {
        base: *mut u8,
        len: usize,
        nr: u32,
    }

    // SAFETY: the mapping is plain memory, used through atomics and raw copies.
    unsafe impl Send for Fake {}
    // SAFETY: as for Send: nothing in it is tied to a thread.
    unsafe impl Sync for Fake {}

    impl Fake {
        fn new(nr: u32) -> Fake {
            let len = (size_of::<aio_ring>() + nr as usize * size_of::<io_event>()).next_multiple_of(4096);
            let base = sys::map_anonymous(len).expect("mmap");
            let h = base.cast::<aio_ring>();
            let header = ring::new_header(nr);
            // SAFETY: the header lies in our fresh, aligned mapping.
            unsafe { h.write(header) };
            Fake { base, len, nr }
        }
        fn ctx(&self) -> io_context_t {
            self.base.cast()
        }
        fn addr(&self) -> usize {
            self.base as usize
        }
        fn register(&self) {
            // SAFETY: our fake ring is mapped, as a fresh kernel one would be.
            unsafe { register(self.addr()) };
        }
        fn ring(&self) -> ring::Ring {
            // SAFETY: our mapping, alive as long as self.
            unsafe { ring::Ring::open(self.addr(), self.nr) }.expect("a valid fake header")
        }
        fn header(&self) -> *mut aio_ring {
            self.base.cast()
        }
        /// Appends completions tagged `tags` at the tail, as the kernel does.
        fn complete(&self, tags: impl IntoIterator<Item = usize>) {
            let r = self.ring();
            let mut tail = r.tail().load(Ordering::Relaxed);
            for t in tags {
                let mut ev = io_event::zeroed();
                ev.data = t as *mut _;
                ev.res = 1;
                let slot = self
                    .base
                    .wrapping_add(size_of::<aio_ring>())
                    .cast::<io_event>()
                    .wrapping_add(tail as usize);
                // SAFETY: tail < nr: a slot of our mapping, aligned (page + 32 + 32 * tail).
                unsafe { slot.write(ev) };
                tail = if tail + 1 == self.nr { 0 } else { tail + 1 };
            }
            r.tail().store(tail, Ordering::Release);
        }
        fn set_head(&self, i: u32) {
            self.ring().head().store(i, Ordering::Relaxed);
            self.ring().tail().store(i, Ordering::Relaxed);
        }
    }

    impl Drop for Fake {
        fn drop(&mut self) {
            // Forget it first, as io_destroy would, then unmap.
            assert_eq!(destroy(self.ctx(), || 0), 0);
            // SAFETY: our own mapping, no longer registered.
            unsafe { sys::unmap(self.base, self.len) };
        }
    }

    fn req(
        ctx: io_context_t,
        min_nr: c_long,
        nr: c_long,
        events: &mut [io_event],
        timeout: Option<&mut libc::timespec>,
    ) -> Request {
        Request {
            ctx,
            min_nr,
            nr,
            events: events.as_mut_ptr(),
            timeout: timeout.map_or(ptr::null_mut(), |t| t as *mut _),
        }
    }

    /// An event array the kernel has "written" before (see uaccess).
    fn known_array<const N: usize>() -> std::boxed::Box<[io_event; N]> {
        let mut ev = std::boxed::Box::new([io_event::zeroed(); N]);
        uaccess::remember(ev.as_mut_ptr().cast(), N * size_of::<io_event>());
        ev
    }

    fn no_syscall() -> i32 {
        panic!("the kernel was asked")
    }

    fn zero() -> libc::timespec {
        libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        }
    }

    fn gate(ctx: io_context_t) -> &'static AtomicU32 {
        table().expect("mapped").gate(ctx as usize)
    }

    fn state(ctx: io_context_t) -> u32 {
        table()
            .expect("mapped")
            .find(ctx as usize)
            .expect("registered")
            .state
            .load(Ordering::SeqCst)
            & !WAITERS
    }

    #[test]
    fn reaps_a_registered_ring_in_user_space_with_wrap_around() {
        let _s = serial();
        let f = Fake::new(8);
        f.register();
        assert!(is_registered(f.addr()));
        f.set_head(6);
        f.complete([10, 11, 12, 13]); // slots 6, 7, 0, 1
        let mut ev = known_array::<8>();
        // SAFETY: a live fake ring and our own array.
        let n = unsafe { getevents(&req(f.ctx(), 1, 3, &mut ev[..], None), true, no_syscall) };
        assert_eq!(n, 3);
        assert_eq!(
            ev[..3].iter().map(|e| e.data as usize).collect::<Vec<_>>(),
            [10, 11, 12]
        );
        assert_eq!(f.ring().head().load(Ordering::Relaxed), 1);
        let mut z = zero();
        // SAFETY: a live fake ring and our own array.
        let n = unsafe { getevents(&req(f.ctx(), 0, 8, &mut ev[..], Some(&mut z)), true, no_syscall) };
        assert_eq!((n, ev[0].data as usize), (1, 13));
        // Empty ring, zero timeout: libaio's answer, whatever the arguments.
        // SAFETY: a live fake ring and our own array.
        let n = unsafe { getevents(&req(f.ctx(), 5, 1, &mut ev[..], Some(&mut z)), true, no_syscall) };
        assert_eq!(n, 0);
        assert_eq!(state(f.ctx()), LIVE);
        assert_eq!(gate(f.ctx()).load(Ordering::SeqCst) & !WAITERS, 0);
    }

    #[test]
    fn an_array_the_kernel_never_wrote_goes_to_the_kernel_once() {
        let _s = serial();
        let f = Fake::new(8);
        f.register();
        f.complete([1, 2]);
        let mut ev = std::boxed::Box::new([io_event::zeroed(); 4]);
        let ctx = f.ctx();
        // Unknown array: the kernel answers (here: "writes" two events).
        // SAFETY: a live fake ring and our own array.
        let n = unsafe {
            getevents(&req(ctx, 1, 4, &mut ev[..], None), true, || {
                assert_eq!(gate(ctx).load(Ordering::SeqCst) & READERS, 1, "counted");
                f.set_head(0);
                2
            })
        };
        assert_eq!(n, 2);
        // Now known: answered in user space.
        f.complete([3]);
        // SAFETY: a live fake ring and our own array.
        let n = unsafe { getevents(&req(ctx, 1, 4, &mut ev[..], None), true, no_syscall) };
        assert_eq!((n, ev[0].data as usize), (1, 3));
    }

    #[test]
    fn bad_arguments_get_the_kernels_answer_without_a_syscall() {
        let _s = serial();
        let f = Fake::new(8);
        f.register();
        f.complete([1, 2]);
        let mut ev = known_array::<4>();
        let mut z = zero();
        for (min_nr, nr) in [(2, 1), (-1, 4), (0, -1), (1, 0)] {
            // SAFETY: a live fake ring and our own array.
            let n = unsafe {
                getevents(
                    &req(f.ctx(), min_nr, nr, &mut ev[..], Some(&mut z)),
                    true,
                    no_syscall,
                )
            };
            assert_eq!(n, -libc::EINVAL, "min_nr {min_nr} nr {nr}");
        }
        // SAFETY: a live fake ring and our own array.
        let n = unsafe { getevents(&req(f.ctx(), 0, 0, &mut ev[..], None), true, no_syscall) };
        assert_eq!(n, 0);
        assert_eq!(f.ring().head().load(Ordering::Relaxed), 0, "nothing taken");
        // A bad array goes to the kernel (which answers EFAULT).
        let mut bad = req(f.ctx(), 1, 2, &mut ev[..], None);
        bad.events = 16 as *mut io_event;
        // SAFETY: the array is never written by us.
        let n = unsafe { getevents(&bad, true, || -libc::EFAULT) };
        assert_eq!(n, -libc::EFAULT);
        assert_eq!(
            gate(f.ctx()).load(Ordering::SeqCst) & !WAITERS,
            0,
            "the kernel reader has left"
        );
    }

    #[test]
    fn waiting_and_non_reaping_calls_go_to_the_kernel_as_counted_readers() {
        let _s = serial();
        let f = Fake::new(8);
        f.register();
        f.complete([1]);
        let mut ev = known_array::<4>();
        let ctx = f.ctx();
        // Fewer ready than min_nr: the kernel waits, counted.
        // SAFETY: a live fake ring and our own array.
        let n = unsafe {
            getevents(&req(ctx, 2, 4, &mut ev[..], None), true, || {
                assert_eq!(gate(ctx).load(Ordering::SeqCst) & READERS, 1);
                0
            })
        };
        assert_eq!(n, 0);
        // A call that may not reap (a signal mask): the kernel answers, still
        // counted, since other calls reap in user space.
        // SAFETY: a live fake ring and our own array.
        let n = unsafe {
            getevents(&req(ctx, 0, 4, &mut ev[..], None), false, || {
                assert_eq!(gate(ctx).load(Ordering::SeqCst) & READERS, 1);
                0
            })
        };
        assert_eq!(n, 0);
        assert_eq!(f.ring().head().load(Ordering::Relaxed), 0, "nothing taken");
        // ... but the empty-ring shortcut stays, as in libaio.
        f.set_head(3);
        let mut z = zero();
        // SAFETY: a live fake ring and our own array.
        let n = unsafe { getevents(&req(ctx, 1, 4, &mut ev[..], Some(&mut z)), false, no_syscall) };
        assert_eq!(n, 0);
        assert_eq!(state(ctx), LIVE);
    }

    #[test]
    fn unknown_contexts_and_unknown_layouts_go_to_the_kernel() {
        let _s = serial();
        let mut ev = known_array::<1>();
        for ctx in [0usize, 0x1000, 0xdead_0000] {
            // SAFETY: the ring of an unknown context is never read.
            let n = unsafe {
                getevents(&req(ctx as io_context_t, 0, 1, &mut ev[..], None), true, || {
                    -libc::EINVAL
                })
            };
            assert_eq!(n, -libc::EINVAL);
        }
        for spoil in 0..4 {
            let f = Fake::new(8);
            // SAFETY: our fake header, mapped and aligned, used by this thread only.
            let h = unsafe { &mut *f.header() };
            match spoil {
                0 => h.magic = 0,
                1 => h.incompat_features = 1,
                2 => h.header_length = 64,
                _ => h.nr = 0,
            }
            f.register();
            assert!(!is_registered(f.addr()), "layout spoiled at {spoil}");
            let good = Fake::new(8);
            // SAFETY: our fake header, mapped and aligned.
            let fresh = unsafe { good.header().read() };
            // SAFETY: our fake header, mapped and aligned; put back for Fake's drop.
            unsafe { f.header().write(fresh) };
        }
        // A header rewritten after registration: the fast path refuses it.
        let f = Fake::new(8);
        f.register();
        f.complete([1]);
        // SAFETY: our fake header.
        unsafe { (*f.header()).nr = 4096 };
        // SAFETY: a registered fake ring.
        let n = unsafe { getevents(&req(f.ctx(), 1, 1, &mut ev[..], None), true, || 42) };
        assert_eq!(n, 42);
        // SAFETY: a registered fake ring.
        unsafe { (*f.header()).nr = 8 };
        // Indices out of range, likewise.
        f.ring().head().store(9, Ordering::Relaxed);
        // SAFETY: a registered fake ring.
        let n = unsafe { getevents(&req(f.ctx(), 1, 1, &mut ev[..], None), true, || 43) };
        assert_eq!(n, 43);
        f.ring().head().store(0, Ordering::Relaxed);
    }

    #[test]
    fn a_reader_waits_for_a_user_space_copy_and_destroy_does_too() {
        let _s = serial();
        let f = Arc::new(Fake::new(8));
        f.register();
        let g = gate(f.ctx());
        // Pretend a user-space copy is under way.
        g.store(USER, Ordering::SeqCst);
        let entered = Arc::new(AtomicBool::new(false));
        let (f2, e2) = (f.clone(), entered.clone());
        let reader = std::thread::spawn(move || {
            let mut ev = known_array::<1>();
            // SAFETY: a registered fake ring.
            unsafe {
                getevents(&req(f2.ctx(), 1, 1, &mut ev[..], None), true, || {
                    e2.store(true, Ordering::SeqCst);
                    0
                })
            }
        });
        let f3 = f.clone();
        let destroyed = Arc::new(AtomicBool::new(false));
        let d3 = destroyed.clone();
        let destroyer = std::thread::spawn(move || {
            let r = destroy(f3.ctx(), || -libc::EPERM); // refused: the context lives on
            d3.store(true, Ordering::SeqCst);
            r
        });
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            !entered.load(Ordering::SeqCst),
            "entered the kernel during a user-space copy"
        );
        assert!(
            !destroyed.load(Ordering::SeqCst),
            "destroyed during a user-space copy"
        );
        crate::engine::kernel::gate::release_user(g);
        assert_eq!(reader.join().expect("reader"), 0);
        assert_eq!(destroyer.join().expect("destroyer"), -libc::EPERM);
        assert!(entered.load(Ordering::SeqCst));
        assert_eq!(state(f.ctx()), LIVE, "a refused destroy changes nothing");
    }

    /// The late caller of the hardening issue: a reader of a destroyed
    /// context is in the kernel when a new ring is set up at the same address
    /// and registered. No user-space copy of that address may run until it
    /// has left, or an event could be delivered twice.
    #[test]
    fn a_late_reader_in_the_kernel_holds_off_copies_of_a_new_ring_at_its_address() {
        let _s = serial();
        let f = Arc::new(Fake::new(8));
        f.register();
        let ctx = f.addr();
        assert_eq!(destroy(f.ctx(), || 0), 0, "destroyed; the slot is freed at once");
        assert!(!is_registered(ctx));
        let (inside, release) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let (i2, r2, f2) = (inside.clone(), release.clone(), f.clone());
        let late = std::thread::spawn(move || {
            let mut ev = known_array::<4>();
            // SAFETY: the ring is mapped (Fake), though not registered.
            unsafe {
                getevents(&req(f2.ctx(), 1, 4, &mut ev[..], None), true, || {
                    i2.store(true, Ordering::SeqCst);
                    while !r2.load(Ordering::SeqCst) {
                        std::thread::yield_now();
                    }
                    -libc::EINVAL
                })
            }
        });
        while !inside.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        // io_setup gives the same address again; events arrive.
        f.register();
        assert!(is_registered(ctx));
        f.complete([7]);
        let mut ev = known_array::<4>();
        let asked = AtomicBool::new(false);
        // SAFETY: a registered fake ring.
        let n = unsafe {
            getevents(&req(f.ctx(), 1, 4, &mut ev[..], None), true, || {
                asked.store(true, Ordering::SeqCst);
                0
            })
        };
        assert!(
            asked.load(Ordering::SeqCst),
            "copied in user space beside a kernel reader"
        );
        assert_eq!((n, f.ring().head().load(Ordering::Relaxed)), (0, 0));
        release.store(true, Ordering::SeqCst);
        assert_eq!(late.join().expect("late reader"), -libc::EINVAL);
        // Alone again: answered in user space.
        // SAFETY: a registered fake ring.
        let n = unsafe { getevents(&req(f.ctx(), 1, 4, &mut ev[..], None), true, no_syscall) };
        assert_eq!((n, ev[0].data as usize), (1, 7));
    }

    #[test]
    fn destroy_does_not_wait_for_readers() {
        let _s = serial();
        let f = Arc::new(Fake::new(8));
        f.register();
        let ctx = f.ctx();
        let (inside, release) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (f, i, r) = (f.clone(), inside.clone(), release.clone());
                std::thread::spawn(move || {
                    let mut ev = known_array::<1>();
                    // SAFETY: a registered fake ring.
                    unsafe {
                        getevents(&req(f.ctx(), 1, 1, &mut ev[..], None), true, || {
                            i.store(true, Ordering::SeqCst);
                            while !r.load(Ordering::SeqCst) {
                                std::thread::yield_now();
                            }
                            -libc::EINVAL
                        })
                    }
                })
            })
            .collect();
        while gate(ctx).load(Ordering::SeqCst) & READERS != 2 {
            std::thread::yield_now();
        }
        // The kernel destroys it; io_destroy returns at once and forgets it.
        assert_eq!(destroy(ctx, || 0), 0);
        assert!(!is_registered(ctx as usize));
        // A late caller is counted too.
        let mut ev = known_array::<1>();
        // SAFETY: the ring is not read (no slot names it).
        let n = unsafe {
            getevents(&req(ctx, 0, 1, &mut ev[..], None), true, || {
                assert_eq!(gate(ctx).load(Ordering::SeqCst) & READERS, 3);
                -libc::EINVAL
            })
        };
        assert_eq!(n, -libc::EINVAL);
        release.store(true, Ordering::SeqCst);
        for r in readers {
            assert_eq!(r.join().expect("reader"), -libc::EINVAL);
        }
        assert_eq!(gate(ctx).load(Ordering::SeqCst) & !WAITERS, 0);
        f.register(); // for Fake's drop
    }

    #[test]
    fn a_destroy_the_kernel_refuses_with_einval_forgets_the_context() {
        let _s = serial();
        let f = Fake::new(8);
        f.register();
        assert_eq!(destroy(f.ctx(), || -libc::EINVAL), -libc::EINVAL);
        assert!(!is_registered(f.addr()));
        f.register(); // for Fake's drop
    }

    /// A full count makes the next thread wait; it is never let in uncounted.
    #[test]
    fn full_counters_make_threads_wait() {
        let _s = serial();
        let f = Arc::new(Fake::new(8));
        f.register();
        let ctx = f.ctx();
        let g = gate(ctx);
        g.store(READERS, Ordering::SeqCst); // as if 2^29 - 1 threads were in the kernel
        let entered = Arc::new(AtomicBool::new(false));
        let (f2, e2) = (f.clone(), entered.clone());
        let reader = std::thread::spawn(move || {
            let mut ev = known_array::<1>();
            // SAFETY: a registered fake ring.
            unsafe {
                getevents(&req(f2.ctx(), 1, 1, &mut ev[..], None), true, || {
                    e2.store(true, Ordering::SeqCst);
                    0
                })
            }
        });
        std::thread::sleep(Duration::from_millis(30));
        assert!(!entered.load(Ordering::SeqCst), "entered with the count full");
        crate::engine::kernel::gate::leave_kernel(g); // one leaves
        assert_eq!(reader.join().expect("reader"), 0);
        assert!(entered.load(Ordering::SeqCst));
        assert_eq!(g.load(Ordering::SeqCst) & !WAITERS, READERS - 1);
        g.store(0, Ordering::SeqCst);

        // Peekers likewise.
        let slot = table().expect("mapped").find(f.addr()).expect("registered");
        slot.state.fetch_or(PEEKERS, Ordering::SeqCst);
        let peeked = Arc::new(AtomicBool::new(false));
        let (f3, p3) = (f.clone(), peeked.clone());
        let peeker = std::thread::spawn(move || {
            let mut ev = known_array::<1>();
            let mut z = zero();
            // SAFETY: a registered fake ring; reap off so only the peek runs.
            let n = unsafe { getevents(&req(f3.ctx(), 0, 1, &mut ev[..], Some(&mut z)), false, no_syscall) };
            p3.store(true, Ordering::SeqCst);
            n
        });
        std::thread::sleep(Duration::from_millis(30));
        assert!(!peeked.load(Ordering::SeqCst), "peeked with the count full");
        let prev = slot.state.fetch_sub(1, Ordering::SeqCst);
        crate::sync::wake(&slot.state, prev);
        assert_eq!(peeker.join().expect("peeker"), 0);
        slot.state.fetch_sub(PEEKERS - 1, Ordering::SeqCst);
        assert_eq!(state(ctx), LIVE);
    }

    #[test]
    fn a_forked_child_forgets_every_context() {
        let _s = serial();
        let f = Fake::new(8);
        f.register();
        assert!(is_registered(f.addr()));
        for raw in [false, true] {
            let pid = if raw {
                // SAFETY: the child only reads memory and exits with _exit.
                unsafe { libc::syscall(libc::SYS_fork) as libc::pid_t }
            } else {
                // SAFETY: the child only reads memory and exits with _exit.
                unsafe { libc::fork() }
            };
            assert!(pid >= 0);
            if pid == 0 {
                let gone = !is_registered(f.addr());
                // SAFETY: ends the child without running the parent's destructors.
                unsafe { libc::_exit(if gone { 0 } else { 1 }) };
            }
            let mut status = 0;
            // SAFETY: waits for our own child.
            assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
            assert!(
                libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
                "raw={raw}: the child still knew the context"
            );
            assert!(is_registered(f.addr()), "the parent keeps it");
        }
    }

    /// User-space copies and a model of the kernel's reader (which takes
    /// events from the same ring under a lock of its own, as `fs/aio.c` does)
    /// racing on one ring: every event is delivered exactly once. Run under
    /// Miri too, whose weak-memory emulation and race detector check the
    /// gate's orderings.
    #[test]
    fn copies_and_the_kernels_reader_deliver_each_event_once() {
        use std::sync::atomic::{AtomicU8, AtomicUsize};
        let _s = serial();
        const NR: u32 = 16;
        let total: usize = if cfg!(miri) { 120 } else { 100_000 };
        let f = Arc::new(Fake::new(NR));
        f.register();
        let seen: Arc<Vec<AtomicU8>> = Arc::new((0..total).map(|_| AtomicU8::new(0)).collect());
        let delivered = Arc::new(AtomicUsize::new(0));
        let kernel_lock = Arc::new(Mutex::new(()));
        let reapers: Vec<_> = (0..4)
            .map(|id| {
                let (f, seen, delivered, kernel_lock) =
                    (f.clone(), seen.clone(), delivered.clone(), kernel_lock.clone());
                std::thread::spawn(move || {
                    let mut ev = known_array::<4>();
                    let mut i = id;
                    while delivered.load(Ordering::SeqCst) < total {
                        i += 1;
                        let mut z = zero();
                        let (min_nr, t) = match i % 3 {
                            0 => (0, Some(&mut z)),
                            1 => (1, None),
                            _ => (2, None),
                        };
                        let call = req(f.ctx(), min_nr, 4, &mut ev[..], t);
                        let out = call.events;
                        // The kernel's reader: under its own lock, like
                        // aio_read_events_ring, never beside a user-space copy.
                        let kernel = || {
                            let _k = kernel_lock.lock().unwrap_or_else(|e| e.into_inner());
                            let r = f.ring();
                            let (head, ready) = r.pending().expect("indices in range");
                            // The kernel takes its time; a copier running now would be seen.
                            std::thread::yield_now();
                            let n = ready.min(4);
                            // SAFETY: n events ready; `out` holds 4.
                            unsafe { r.take(head, n, out) };
                            n as i32
                        };
                        // SAFETY: a registered fake ring and our own array.
                        let n = unsafe { getevents(&call, true, kernel) };
                        assert!(n >= 0, "{n}");
                        for e in &ev[..n as usize] {
                            seen[e.data as usize].fetch_add(1, Ordering::SeqCst);
                        }
                        delivered.fetch_add(n as usize, Ordering::SeqCst);
                        if n == 0 {
                            std::thread::yield_now();
                        }
                    }
                })
            })
            .collect();
        // The kernel completing requests: event written, then the tail moved.
        for tag in 0..total {
            while tag - delivered.load(Ordering::SeqCst) >= (NR - 1) as usize {
                std::thread::yield_now();
            }
            f.complete([tag]);
        }
        for r in reapers {
            r.join().expect("reaper");
        }
        let dups = seen.iter().filter(|s| s.load(Ordering::SeqCst) > 1).count();
        let lost = seen.iter().filter(|s| s.load(Ordering::SeqCst) == 0).count();
        assert_eq!((delivered.load(Ordering::SeqCst), dups, lost), (total, 0, 0));
    }

    /// The real kernel: user-space reaps, kernel reaps and destroys racing
    /// callers that are still entering (which libaio itself would not survive),
    /// with every completion counted.
    #[test]
    fn exactly_once_against_the_kernel_with_destroy_racing_callers() {
        let _s = serial();
        use crate::abi::iocb;
        use crate::capi::io::{io_destroy, io_getevents, io_setup, io_submit};
        use std::sync::atomic::{AtomicI64, AtomicU8, AtomicUsize};

        const TAGS: usize = 4000;
        // SAFETY: creating an eventfd that is always readable.
        let efd = unsafe { libc::eventfd(1, libc::EFD_NONBLOCK) };
        assert!(efd >= 0);
        for round in 0..4 {
            let mut ctx: io_context_t = ptr::null_mut();
            // SAFETY: ctx is ours and zero.
            assert_eq!(unsafe { io_setup(64, &mut ctx) }, 0);
            assert!(is_registered(ctx as usize));
            let seen: Arc<Vec<AtomicU8>> = Arc::new((0..TAGS).map(|_| AtomicU8::new(0)).collect());
            let delivered = Arc::new(AtomicUsize::new(0));
            let stop = Arc::new(AtomicBool::new(false));
            let einval = Arc::new(AtomicI64::new(0));
            let ctxu = ctx as usize;
            let reapers: Vec<_> = (0..4)
                .map(|id| {
                    let (seen, delivered, stop, einval) =
                        (seen.clone(), delivered.clone(), stop.clone(), einval.clone());
                    std::thread::spawn(move || {
                        let mut ev = [io_event::zeroed(); 8];
                        let mut i = id;
                        while !stop.load(Ordering::SeqCst) {
                            let mut z = zero();
                            let mut short = libc::timespec {
                                tv_sec: 0,
                                tv_nsec: 100_000,
                            };
                            let (min_nr, t): (c_long, *mut libc::timespec) = match i % 3 {
                                0 => (0, &mut z),
                                1 => (1, &mut short),
                                _ => (2, &mut short),
                            };
                            i += 1;
                            // SAFETY: our array; the context may be destroyed under us.
                            let n =
                                unsafe { io_getevents(ctxu as io_context_t, min_nr, 8, ev.as_mut_ptr(), t) };
                            if n < 0 {
                                assert_eq!(n, -libc::EINVAL);
                                einval.fetch_add(1, Ordering::SeqCst);
                                continue;
                            }
                            for e in &ev[..n as usize] {
                                seen[e.data as usize].fetch_add(1, Ordering::SeqCst);
                            }
                            delivered.fetch_add(n as usize, Ordering::SeqCst);
                        }
                    })
                })
                .collect();
            let mut cbs: Vec<iocb> = (0..TAGS)
                .map(|t| {
                    let mut cb = iocb::zeroed();
                    cb.aio_lio_opcode = crate::abi::io_iocb_cmd::IO_CMD_POLL as i16;
                    cb.aio_fildes = efd;
                    cb.u.poll.events = libc::POLLIN as i32;
                    cb.data = t as *mut _;
                    cb
                })
                .collect();
            let mut next = 0;
            while next < TAGS {
                let n = 8.min(TAGS - next);
                while next - delivered.load(Ordering::SeqCst) + n > 48 {
                    std::thread::yield_now();
                }
                let mut ptrs: Vec<*mut iocb> =
                    cbs[next..next + n].iter_mut().map(|c| c as *mut iocb).collect();
                // SAFETY: our iocbs, alive until reaped.
                let r = unsafe { io_submit(ctx, n as c_long, ptrs.as_mut_ptr()) };
                assert!(r > 0, "io_submit = {r}");
                next += r as usize;
            }
            while delivered.load(Ordering::SeqCst) < TAGS {
                std::thread::yield_now();
            }
            // Destroy while the reapers keep calling (some inside, some entering).
            if round % 2 == 1 {
                std::thread::sleep(Duration::from_millis(1));
            }
            // SAFETY: our context.
            assert_eq!(unsafe { io_destroy(ctx) }, 0);
            assert!(!is_registered(ctx as usize));
            while einval.load(Ordering::SeqCst) < 8 {
                std::thread::yield_now();
            }
            stop.store(true, Ordering::SeqCst);
            for r in reapers {
                r.join().expect("reaper");
            }
            let dups: usize = seen
                .iter()
                .map(|s| s.load(Ordering::SeqCst).saturating_sub(1) as usize)
                .sum();
            let lost = seen.iter().filter(|s| s.load(Ordering::SeqCst) == 0).count();
            assert_eq!(
                (delivered.load(Ordering::SeqCst), dups, lost),
                (TAGS, 0, 0),
                "round {round}"
            );
        }
        // SAFETY: our descriptor.
        unsafe { libc::close(efd) };
    }
}
