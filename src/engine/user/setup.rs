//! A user-space context's life: `io_setup` (the mapping that holds the
//! ring, the control block and one record per ring slot, registered), the
//! context of a pinned handle, `io_cancel` and `io_destroy`. The records'
//! protocol is the parent module's (`user`).

use super::*;
use crate::sys::Errno;

/// The ring size the kernel would give `maxevents` (`ioctx_alloc`): room for
/// twice the larger of `maxevents` and four per possible CPU (in 32-bit
/// arithmetic, as the kernel's), rounded up to whole pages; or the kernel's
/// error: `EINVAL` for a ring too large, `EAGAIN` for none or more events
/// than `fs.aio-max-nr` allows one context.
fn ring_size(maxevents: u32, cpus: u32, max_nr: u64) -> Result<(u32, usize), Errno> {
    let want = maxevents.max(cpus.wrapping_mul(4)).wrapping_mul(2);
    if want as usize > 0x1000_0000 / size_of::<io_event>() {
        return Err(Errno(libc::EINVAL));
    }
    if want == 0 || u64::from(maxevents) > max_nr {
        return Err(Errno(libc::EAGAIN));
    }
    let bytes = size_of::<aio_ring>() + want as usize * size_of::<io_event>();
    let len = bytes.div_ceil(PAGE) * PAGE;
    Ok((
        ((len - size_of::<aio_ring>()) / size_of::<io_event>()) as u32,
        len,
    ))
}

fn possible_cpus() -> u32 {
    sys::process::possible_cpus()
}

/// `io_setup` of a user-space context.
#[inline(never)] // off the kernel path: one copy, not one per entry point
pub(crate) fn setup(maxevents: i32, ctxp: *mut io_context_t, why: &str, exec: &'static dyn Executor) -> i32 {
    let ret = setup_inner(maxevents as u32, ctxp as usize, exec);
    if ret == 0 {
        diag::engine(exec.name(), Some(why));
    }
    ret
}

fn setup_inner(maxevents: u32, ctxp: usize, exec: &'static dyn Executor) -> i32 {
    let Some(pid) = process::pid() else {
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
        Err(e) => return e.neg(),
    };
    let ctl_len = (size_of::<Control>() + 8 + nr as usize * size_of::<Req>()).div_ceil(PAGE) * PAGE;
    let map_len = ring_len + ctl_len;
    let Some(base) = sys::map_anonymous(map_len) else {
        return -libc::ENOMEM;
    };
    let ring = base as usize;
    // SAFETY: our fresh mapping, page-aligned, larger than the header.
    unsafe { (ring as *mut aio_ring).write(crate::ring::new_header(nr)) };
    let ctl_ptr = (ring + ring_len) as *mut Control;
    let reqs = (ring + ring_len + size_of::<Control>()).next_multiple_of(8) as *mut Req;
    let ctl = Control {
        exec,
        ring,
        nr,
        map_len,
        state: Mutex::new(State {
            avail: Avail::new(nr, cpus),
            tail: 0,
            free: 0,
        }),
        reap: Lock::new(),
        seq: AtomicU32::new(0),
        sleepers: AtomicU32::new(0),
        ring_sleepers: AtomicU32::new(0),
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
            op: Op::Read,
            fd: -1,
            resfd: -1,
            held_fd: AtomicI32::new(-1),
            held_resfd: AtomicI32::new(-1),
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
            prompt: false,
            owner: 0,
            handed: AtomicU32::new(0),
            next: ptr::null_mut(),
            gen: 0,
            poll_state: AtomicU32::new(0),
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

pub(crate) fn control(pin: &EmuPin) -> &Control {
    // SAFETY: a pinned context's control block stays mapped until the pin goes.
    unsafe { &*(pin.ctl() as *const Control) }
}

/// What the kernel writes into `aio_key` at submission; `io_cancel` wants it.
pub(crate) const KIOCB_KEY: u32 = 0;

/// `io_cancel` on a user-space context: a pending poll is cancelled (its
/// event, res 0, comes through the ring) with `-EINPROGRESS`; anything else
/// is `-EINVAL`.
#[inline(never)] // off the kernel path: one copy, not one per entry point
pub(crate) fn cancel(pin: &EmuPin, iocb: usize) -> i32 {
    let Some(pid) = process::pid() else {
        return -libc::EINVAL;
    };
    let mut key = [0u8; 4];
    if sys::read_user(pid, iocb + iocb::KEY_OFFSET, &mut key) != 4 {
        return -libc::EFAULT;
    }
    if u32::from_ne_bytes(key) != KIOCB_KEY {
        return -libc::EINVAL;
    }
    let ctl = control(pin);
    if ctl.exec.cancel_polls(ctl, Some(iocb as u64)) {
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
    ctl.wake();
    pin.wait_alone();
    ctl.exec.cancel_polls(ctl, None);
    wait::until_idle(ctl);
    let (base, len) = (ctl.ring, ctl.map_len);
    pin.unregister();
    // SAFETY: no call is inside any more and none can start, and every
    // record has come back: the mapping (ring, control block, records) is
    // ours to drop.
    unsafe { sys::unmap(base as *mut u8, len) };
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_sizes_follow_the_kernel() {
        // 2 CPUs: at least 8 events, doubled, whole pages.
        assert_eq!(ring_size(1, 2, 65536), Ok((127, 4096)));
        assert_eq!(ring_size(128, 2, 65536), Ok((383, 12288)));
        assert_eq!(ring_size(0, 0, 65536), Err(Errno(libc::EAGAIN)));
        assert_eq!(ring_size(70000, 2, 65536), Err(Errno(libc::EAGAIN)));
        assert_eq!(ring_size(u32::MAX / 2, 2, u64::MAX), Err(Errno(libc::EINVAL)));
    }
}
