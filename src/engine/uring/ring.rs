//! One io_uring: its setup and mappings, and the entries we write to it.
//!
//! The ring is set up once per process, with a completion queue large
//! enough for every request of a few large contexts (the kernel keeps any
//! more, `IORING_FEAT_NODROP`, until there is room). Completions are the
//! kernel's default kind: each interrupts or wakes the thread that submitted
//! the request, which finishes it at once (no `COOP_TASKRUN`, whose
//! completions wait for their submitter to enter the kernel: a submitter
//! asleep elsewhere would hold them for ever).

use crate::sys::uring as sys_uring;
use crate::sys::{fd, Errno};
use core::mem::size_of;
use core::sync::atomic::{AtomicU32, Ordering};
use linux_raw_sys::io_uring::{
    io_uring_cqe, io_uring_op, io_uring_params, io_uring_sqe, io_uring_sqe__bindgen_ty_1,
    io_uring_sqe__bindgen_ty_2, io_uring_sqe__bindgen_ty_3, IORING_FEAT_EXT_ARG, IORING_FEAT_NODROP,
    IORING_FEAT_SINGLE_MMAP, IORING_OFF_SQES, IORING_OFF_SQ_RING, IORING_SETUP_CLAMP, IORING_SETUP_CQSIZE,
    IORING_SETUP_SUBMIT_ALL,
};

/// Submission entries: a batch larger than this is entered in several calls.
pub(crate) const SQ_ENTRIES: u32 = 128;
/// Completion entries.
const CQ_ENTRIES: u32 = 4096;

/// The ring, as `io_uring_setup` laid it out; fixed once set up.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ring {
    /// Its descriptor in the program's table (see `uring`'s rules).
    pub(crate) fd: i32,
    pub(crate) id: fd::FileId,
    sq_head: usize,
    sq_tail: usize,
    sq_mask: u32,
    pub(crate) sq_entries: u32,
    sq_flags: usize,
    sqes: usize,
    cq_head: usize,
    cq_tail: usize,
    cq_mask: u32,
    cqes: usize,
}

fn word(at: usize) -> &'static AtomicU32 {
    // SAFETY: `at` is a 4-byte-aligned word of the ring's shared mapping,
    // which stays mapped for the life of the process; the kernel accesses
    // it atomically too.
    unsafe { AtomicU32::from_ptr(at as *mut u32) }
}

/// Why the process cannot have a ring: the errno `io_setup` answers, and the
/// explanation `LIBAIO_RS_DEBUG` prints.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Refused {
    pub(crate) errno: Errno,
    pub(crate) why: &'static str,
}

/// A new ring.
pub(crate) fn create() -> Result<Ring, Refused> {
    let mut flags = IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP | IORING_SETUP_SUBMIT_ALL;
    let (fd, p) = loop {
        // SAFETY: io_uring_params is plain data, valid all-zero.
        let mut p: io_uring_params = unsafe { core::mem::zeroed() };
        p.flags = flags;
        p.cq_entries = CQ_ENTRIES;
        match sys_uring::setup(SQ_ENTRIES, &mut p) {
            // SUBMIT_ALL is 5.18's: older kernels refuse the flag, not the ring.
            Err(Errno(libc::EINVAL)) if flags & IORING_SETUP_SUBMIT_ALL != 0 => {
                flags &= !IORING_SETUP_SUBMIT_ALL;
            }
            Ok(fd) => break (fd, p),
            Err(Errno(e)) => return Err(Refused {
                errno: Errno(e),
                why: match e {
                    libc::ENOSYS => {
                        "io_uring_setup answered -ENOSYS (no io_uring in this kernel, or a seccomp filter)"
                    }
                    libc::EPERM => {
                        "io_uring_setup answered -EPERM (kernel.io_uring_disabled, or a seccomp filter)"
                    }
                    libc::EMFILE | libc::ENFILE => "io_uring_setup answered -EMFILE (no descriptor left)",
                    _ => "io_uring_setup failed",
                },
            }),
        }
    };
    let refuse = |errno, why, maps: &[(usize, usize)]| {
        for &(at, len) in maps {
            // SAFETY: our own mapping, never published.
            unsafe { sys_uring::unmap_ring(at, len) };
        }
        fd::close(fd);
        Err(Refused {
            errno: Errno(errno),
            why,
        })
    };
    let need = IORING_FEAT_NODROP | IORING_FEAT_EXT_ARG | IORING_FEAT_SINGLE_MMAP;
    if p.features & need != need {
        return refuse(
            libc::ENOSYS,
            "io_uring is too old here (Linux 5.11 or later: waits with a timeout and a signal mask)",
            &[],
        );
    }
    let Ok(id) = fd::fstat(fd).map(|s| s.id) else {
        return refuse(libc::ENOMEM, "cannot fstat the io_uring", &[]);
    };
    let sq_len = p.sq_off.array as usize + p.sq_entries as usize * 4;
    let cq_len = p.cq_off.cqes as usize + p.cq_entries as usize * size_of::<io_uring_cqe>();
    let rings_len = sq_len.max(cq_len);
    // One mapping holds both rings (IORING_FEAT_SINGLE_MMAP).
    let Ok(rings) = sys_uring::map_ring(fd, rings_len, u64::from(IORING_OFF_SQ_RING)) else {
        return refuse(libc::ENOMEM, "cannot map the io_uring rings", &[]);
    };
    let sqes_len = p.sq_entries as usize * size_of::<io_uring_sqe>();
    let Ok(sqes) = sys_uring::map_ring(fd, sqes_len, IORING_OFF_SQES as u64) else {
        return refuse(
            libc::ENOMEM,
            "cannot map the io_uring submission entries",
            &[(rings, rings_len)],
        );
    };
    let at = |off: u32| rings + off as usize;
    let ring = Ring {
        fd,
        id,
        sq_head: at(p.sq_off.head),
        sq_tail: at(p.sq_off.tail),
        sq_mask: word(at(p.sq_off.ring_mask)).load(Ordering::Relaxed),
        sq_entries: p.sq_entries,
        sq_flags: at(p.sq_off.flags),
        sqes,
        cq_head: at(p.cq_off.head),
        cq_tail: at(p.cq_off.tail),
        cq_mask: word(at(p.cq_off.ring_mask)).load(Ordering::Relaxed),
        cqes: at(p.cq_off.cqes),
    };
    // The array maps each SQ slot to the entry of the same index, for good.
    let array = at(p.sq_off.array);
    for i in 0..p.sq_entries {
        word(array + i as usize * 4).store(i, Ordering::Relaxed);
    }
    Ok(ring)
}

impl Ring {
    /// The kernel's submission head: entries before it are consumed.
    pub(crate) fn sq_head(&self) -> u32 {
        word(self.sq_head).load(Ordering::Acquire)
    }

    /// Publishes entries written up to `tail`.
    pub(crate) fn publish(&self, tail: u32) {
        word(self.sq_tail).store(tail, Ordering::Release);
    }

    pub(crate) fn sq_flags(&self) -> u32 {
        word(self.sq_flags).load(Ordering::Acquire)
    }

    /// The zeroed entry for position `tail` (the caller holds the
    /// submission lock, and the kernel has consumed that slot).
    pub(crate) fn entry(&self, tail: u32) -> &'static mut io_uring_sqe {
        let sqe = (self.sqes as *mut io_uring_sqe).wrapping_add((tail & self.sq_mask) as usize);
        // SAFETY: an entry of the SQE mapping that the kernel has consumed
        // (the head passed it) and that only the holder of the submission
        // lock writes.
        unsafe { sqe.write_bytes(0, 1) };
        // SAFETY: as above; zeroed, a valid io_uring_sqe.
        unsafe { &mut *sqe }
    }

    /// The completion queue's indices: (head, tail).
    pub(crate) fn cq(&self) -> (u32, u32) {
        (
            word(self.cq_head).load(Ordering::Relaxed),
            word(self.cq_tail).load(Ordering::Acquire),
        )
    }

    /// The CQE at `head`: (user_data, res). The caller holds the token.
    pub(crate) fn cqe(&self, head: u32) -> (u64, i32) {
        let c = (self.cqes as *const io_uring_cqe).wrapping_add((head & self.cq_mask) as usize);
        // SAFETY: a CQE the kernel published (before the tail, acquired by
        // `cq`), in the mapping; read whole before its slot is given back.
        let cqe = unsafe { &*c };
        (cqe.user_data, cqe.res)
    }

    /// Gives the CQ's slots before `head` back to the kernel.
    pub(crate) fn set_cq_head(&self, head: u32) {
        word(self.cq_head).store(head, Ordering::Release);
    }
}

/// What one request asks of io_uring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sqe {
    /// `READV`/`WRITEV` of `iovcnt` iovecs at `iov`, at `offset` (-1: the
    /// file's position), with `RWF_*` flags and priority.
    Rw {
        write: bool,
        fd: i32,
        iov: u64,
        iovcnt: u32,
        offset: i64,
        rw_flags: u32,
        prio: u16,
    },
    /// Does nothing: its completion wakes a thread asleep in the ring.
    Nop,
}

/// `RWF_HIPRI`: poll for completion (a hint to kernel AIO).
const RWF_HIPRI: u32 = 1;

impl Sqe {
    /// Writes the entry; `user_data` comes back in its completion.
    pub(crate) fn encode(self, sqe: &mut io_uring_sqe, user_data: u64) {
        sqe.user_data = user_data;
        match self {
            Sqe::Rw {
                write,
                fd,
                iov,
                iovcnt,
                offset,
                rw_flags,
                prio,
            } => {
                sqe.opcode = if write {
                    io_uring_op::IORING_OP_WRITEV
                } else {
                    io_uring_op::IORING_OP_READV
                } as u8;
                sqe.fd = fd;
                sqe.ioprio = prio;
                sqe.__bindgen_anon_2 = io_uring_sqe__bindgen_ty_2 { addr: iov };
                sqe.len = iovcnt;
                // -1 (no offset) is io_uring's "the file's position".
                sqe.__bindgen_anon_1 = io_uring_sqe__bindgen_ty_1 { off: offset as u64 };
                // RWF_HIPRI asks io_uring for a polled ring, which this is
                // not; kernel AIO takes it as a hint. The rest mean the same.
                sqe.__bindgen_anon_3 = io_uring_sqe__bindgen_ty_3 {
                    rw_flags: rw_flags & !RWF_HIPRI,
                };
            }
            Sqe::Nop => sqe.opcode = io_uring_op::IORING_OP_NOP as u8,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(sqe: &io_uring_sqe) -> [u8; 64] {
        // SAFETY: io_uring_sqe is 64 bytes of plain data.
        unsafe { core::mem::transmute_copy(sqe) }
    }

    #[test]
    fn a_read_is_laid_out_as_the_kernel_reads_it() {
        // SAFETY: plain data, valid all-zero.
        let mut sqe: io_uring_sqe = unsafe { core::mem::zeroed() };
        Sqe::Rw {
            write: false,
            fd: 7,
            iov: 0x1122_3344_5566_7788,
            iovcnt: 3,
            offset: 4096,
            rw_flags: 0x8 | RWF_HIPRI,
            prio: 0x4003,
        }
        .encode(&mut sqe, 0xdead_beef);
        let b = bytes(&sqe);
        // struct io_uring_sqe: opcode u8 @0, flags u8 @1, ioprio u16 @2,
        // fd i32 @4, off u64 @8, addr u64 @16, len u32 @24, rw_flags u32
        // @28, user_data u64 @32; native byte order.
        assert_eq!(b[0], io_uring_op::IORING_OP_READV as u8);
        assert_eq!(b[1], 0);
        assert_eq!(b[2..4], 0x4003u16.to_ne_bytes());
        assert_eq!(b[4..8], 7i32.to_ne_bytes());
        assert_eq!(b[8..16], 4096u64.to_ne_bytes());
        assert_eq!(b[16..24], 0x1122_3344_5566_7788u64.to_ne_bytes());
        assert_eq!(b[24..28], 3u32.to_ne_bytes());
        assert_eq!(
            b[28..32],
            0x8u32.to_ne_bytes(),
            "RWF_HIPRI is dropped, RWF_NOWAIT kept"
        );
        assert_eq!(b[32..40], 0xdead_beefu64.to_ne_bytes());
        assert!(b[40..].iter().all(|&x| x == 0));
    }

    #[test]
    fn a_nop() {
        // SAFETY: plain data, valid all-zero.
        let mut nop: io_uring_sqe = unsafe { core::mem::zeroed() };
        Sqe::Nop.encode(&mut nop, 0);
        assert_eq!(bytes(&nop)[0], io_uring_op::IORING_OP_NOP as u8);
    }
}
