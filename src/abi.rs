//! The `#[repr(C)]` types of libaio 0.3.113: the single source of layout truth.
//!
//! `include/libaio.h` is generated from this file by cbindgen, so every size,
//! offset and constant that a C program sees is written here once.
//!
//! libaio.h pads every pointer and `unsigned long` field to 64 bits so that the
//! user-space structures match the kernel's fixed-size `struct iocb` and
//! `struct io_event` whatever the pointer width. Where the 32-bit padding word
//! goes depends on the byte order: after the value on little-endian machines,
//! before it on big-endian ones. The four cases are expressed with `cfg` on
//! `target_pointer_width` and `target_endian`; cbindgen turns each into a
//! `#if defined(LIBAIO_RS_*)` test whose macro the header derives from the
//! compiler's own `__SIZEOF_LONG__` and `__BYTE_ORDER__` (see cbindgen.toml).
#![allow(non_camel_case_types)]

use core::ffi::{c_int, c_long, c_longlong, c_short, c_uint, c_ulong, c_void};
use core::mem::{offset_of, size_of};

/// Opaque handle type. An `io_context_t` is the address at which the kernel
/// mapped the context's completion ring (`struct aio_ring`) into the process.
pub enum io_context {}

/// The handle `io_setup` returns: the user-space address of the completion ring.
pub type io_context_t = *mut io_context;

/// The completion callback that `io_set_callback` stores in `iocb.data` and
/// that `io_queue_run` calls for each completed request.
pub type io_callback_t =
    Option<unsafe extern "C" fn(ctx: io_context_t, iocb: *mut iocb, res: c_long, res2: c_long)>;

/// Operation codes for `iocb.aio_lio_opcode` (the kernel's `IOCB_CMD_*`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum io_iocb_cmd {
    /// Read into `u.c.buf`.
    IO_CMD_PREAD = 0,
    /// Write from `u.c.buf`.
    IO_CMD_PWRITE = 1,
    /// `fsync(2)` the file.
    IO_CMD_FSYNC = 2,
    /// `fdatasync(2)` the file.
    IO_CMD_FDSYNC = 3,
    /// Wait for `u.poll.events` on the file descriptor.
    IO_CMD_POLL = 5,
    /// Does nothing; kept for source compatibility (the kernel rejects it).
    IO_CMD_NOOP = 6,
    /// Scatter read into the iovec array `u.v.vec` of `u.v.nr` entries.
    IO_CMD_PREADV = 7,
    /// Gather write from the iovec array `u.v.vec` of `u.v.nr` entries.
    IO_CMD_PWRITEV = 8,
}

/// The `io_iocb_cmd` type under its libaio typedef name.
pub type io_iocb_cmd_t = io_iocb_cmd;

/// `iocb.u.c.flags` bit: signal the eventfd in `u.c.resfd` on completion.
pub const IOCB_FLAG_RESFD: c_uint = 1;

/// Arguments of `IO_CMD_POLL`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct io_iocb_poll {
    /// Padding to 64 bits.
    #[cfg(target_endian = "big")]
    pub __pad1: c_uint,
    /// The `poll(2)` events to wait for; the result is the events that fired.
    pub events: c_int,
    /// Padding to 64 bits.
    #[cfg(all(target_endian = "little", target_pointer_width = "32"))]
    pub __pad1: c_uint,
    /// Padding to 64 bits (an `int`, as libaio.h declares it here).
    #[cfg(all(target_endian = "little", target_pointer_width = "64"))]
    pub __pad1: c_int,
}

/// Socket-address arguments (kept for source compatibility; no kernel command uses them).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct io_iocb_sockaddr {
    /// Padding to 64 bits.
    #[cfg(all(target_pointer_width = "32", target_endian = "big"))]
    pub __pad1: c_uint,
    /// The socket address.
    pub addr: *mut libc::sockaddr,
    /// Padding to 64 bits.
    #[cfg(all(target_pointer_width = "32", target_endian = "little"))]
    pub __pad1: c_uint,
    /// Padding to 64 bits.
    #[cfg(all(target_pointer_width = "32", target_endian = "big"))]
    pub __pad2: c_uint,
    /// Its length.
    pub len: c_ulong,
    /// Padding to 64 bits.
    #[cfg(all(target_pointer_width = "32", target_endian = "little"))]
    pub __pad2: c_uint,
}

/// Arguments of reads, writes and syncs (`IO_CMD_PREAD`, `IO_CMD_PWRITE`, ...).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct io_iocb_common {
    /// Padding to 64 bits.
    #[cfg(all(target_pointer_width = "32", target_endian = "big"))]
    pub __pad1: c_uint,
    /// The data buffer (for the vector commands, the iovec array).
    pub buf: *mut c_void,
    /// Padding to 64 bits.
    #[cfg(all(target_pointer_width = "32", target_endian = "little"))]
    pub __pad1: c_uint,
    /// Padding to 64 bits.
    #[cfg(all(target_pointer_width = "32", target_endian = "big"))]
    pub __pad2: c_uint,
    /// Bytes to transfer (for the vector commands, the iovec count).
    pub nbytes: c_ulong,
    /// Padding to 64 bits.
    #[cfg(all(target_pointer_width = "32", target_endian = "little"))]
    pub __pad2: c_uint,
    /// File offset.
    pub offset: c_longlong,
    /// Reserved (the kernel's `aio_reserved2`); must be zero.
    pub __pad3: c_longlong,
    /// `IOCB_FLAG_*` bits.
    pub flags: c_uint,
    /// The eventfd signalled on completion when `IOCB_FLAG_RESFD` is set.
    pub resfd: c_uint,
}

/// Arguments of the vector commands, as libaio names them.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct io_iocb_vector {
    /// Padding to 64 bits.
    #[cfg(all(target_pointer_width = "32", target_endian = "big"))]
    pub __pad1: c_uint,
    /// The iovec array.
    pub vec: *const libc::iovec,
    /// Padding to 64 bits.
    #[cfg(all(target_pointer_width = "32", target_endian = "little"))]
    pub __pad1: c_uint,
    /// Padding to 64 bits.
    #[cfg(all(target_pointer_width = "32", target_endian = "big"))]
    pub __pad2: c_uint,
    /// Number of iovec entries.
    pub nr: c_ulong,
    /// Padding to 64 bits.
    #[cfg(all(target_pointer_width = "32", target_endian = "little"))]
    pub __pad2: c_uint,
    /// File offset.
    pub offset: c_longlong,
}

/// The command-specific part of an `iocb`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union iocb_u {
    /// Reads, writes, syncs.
    pub c: io_iocb_common,
    /// Vector reads and writes.
    pub v: io_iocb_vector,
    /// Poll.
    pub poll: io_iocb_poll,
    /// Socket address.
    pub saddr: io_iocb_sockaddr,
}

/// One I/O request: what `io_submit` hands to the kernel (the kernel's
/// `struct iocb`, 64 bytes on every architecture).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct iocb {
    /// Padding to 64 bits.
    #[cfg(all(target_pointer_width = "32", target_endian = "big"))]
    pub __pad1: c_uint,
    /// Returned untouched in `io_event.data`; `io_set_callback` stores the callback here.
    pub data: *mut c_void,
    /// Padding to 64 bits.
    #[cfg(all(target_pointer_width = "32", target_endian = "little"))]
    pub __pad1: c_uint,
    /// `RWF_*` flags for reads and writes (before `key` on big-endian targets).
    #[cfg(target_endian = "big")]
    pub aio_rw_flags: c_uint,
    /// Written by the kernel at submission; identifies the request to `io_cancel`.
    pub key: c_uint,
    /// `RWF_*` flags for reads and writes (for example `RWF_NOWAIT`).
    #[cfg(target_endian = "little")]
    pub aio_rw_flags: c_uint,
    /// One of `IO_CMD_*`.
    pub aio_lio_opcode: c_short,
    /// Request priority (`IOPRIO_PRIO_VALUE`), used when `IOCB_FLAG_IOPRIO` is set.
    pub aio_reqprio: c_short,
    /// The file descriptor.
    pub aio_fildes: c_int,
    /// Command-specific arguments.
    pub u: iocb_u,
}

/// One completion, as the kernel writes it into the ring and into the caller's array.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct io_event {
    /// Padding to 64 bits.
    #[cfg(all(target_pointer_width = "32", target_endian = "big"))]
    pub __pad1: c_uint,
    /// The request's `iocb.data`.
    pub data: *mut c_void,
    /// Padding to 64 bits.
    #[cfg(all(target_pointer_width = "32", target_endian = "little"))]
    pub __pad1: c_uint,
    /// Padding to 64 bits.
    #[cfg(all(target_pointer_width = "32", target_endian = "big"))]
    pub __pad2: c_uint,
    /// The request's `iocb` address.
    pub obj: *mut iocb,
    /// Padding to 64 bits.
    #[cfg(all(target_pointer_width = "32", target_endian = "little"))]
    pub __pad2: c_uint,
    /// Padding to 64 bits.
    #[cfg(all(target_pointer_width = "32", target_endian = "big"))]
    pub __pad3: c_uint,
    /// Result: bytes transferred, poll events, or a negative errno.
    pub res: c_ulong,
    /// Padding to 64 bits.
    #[cfg(all(target_pointer_width = "32", target_endian = "little"))]
    pub __pad3: c_uint,
    /// Padding to 64 bits.
    #[cfg(all(target_pointer_width = "32", target_endian = "big"))]
    pub __pad4: c_uint,
    /// Secondary result (zero for every command the kernel has today).
    pub res2: c_ulong,
    /// Padding to 64 bits.
    #[cfg(all(target_pointer_width = "32", target_endian = "little"))]
    pub __pad4: c_uint,
}

/// The kernel's `{pointer, size}` pair that `io_pgetevents` passes for the signal mask.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct io_sigset {
    /// Address of the `sigset_t`, or 0 for none.
    pub ss: c_ulong,
    /// Size of the kernel's signal set in bytes (`_NSIG / 8`).
    pub ss_len: c_ulong,
}

/// The layout that 32-bit processes on some 64-bit kernels expected from
/// `io_pgetevents` (the pointer padded to 64 bits); tried again on `-EINVAL`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct io_sigset_compat {
    /// Padding to 64 bits.
    #[cfg(all(target_pointer_width = "32", target_endian = "big"))]
    pub __ss_pad: c_uint,
    /// Address of the `sigset_t`.
    pub ss: c_ulong,
    /// Padding to 64 bits.
    #[cfg(all(target_pointer_width = "32", target_endian = "little"))]
    pub __ss_pad: c_uint,
    /// Size of the kernel's signal set in bytes.
    pub ss_len: c_ulong,
}

/// Header of the completion ring the kernel maps at the `io_context_t` address.
/// Not part of libaio.h; read by the user-space reaper (`ring.rs`).
#[repr(C)]
#[derive(Debug)]
pub struct aio_ring {
    /// Kernel-internal index.
    pub id: c_uint,
    /// Number of `io_event` slots that follow the header.
    pub nr: c_uint,
    /// Next slot to reap; written by whoever reaps.
    pub head: c_uint,
    /// Next slot the kernel fills; written by the kernel.
    pub tail: c_uint,
    /// `AIO_RING_MAGIC` while the layout is the one described here.
    pub magic: c_uint,
    /// Compatible feature bits.
    pub compat_features: c_uint,
    /// Incompatible feature bits: any set bit means the layout is not ours to read.
    pub incompat_features: c_uint,
    /// Size of this header; the events start here.
    pub header_length: c_uint,
}

/// The ring header's `magic` value.
pub const AIO_RING_MAGIC: c_uint = 0xa10a_10a1;

/// The kernel's signal-set size in bytes on Linux (`_NSIG / 8`); 128 signals on MIPS.
#[cfg(any(target_arch = "mips", target_arch = "mips64"))]
pub const KERNEL_SIGSET_BYTES: c_ulong = 16;
/// The kernel's signal-set size in bytes on Linux (`_NSIG / 8`).
#[cfg(not(any(target_arch = "mips", target_arch = "mips64")))]
pub const KERNEL_SIGSET_BYTES: c_ulong = 8;

// The kernel ABI fixes these on every architecture; a wrong cfg above fails the build.
const _: () = assert!(size_of::<iocb>() == 64);
const _: () = assert!(size_of::<io_event>() == 32);
const _: () = assert!(size_of::<aio_ring>() == 32);
const _: () = assert!(offset_of!(iocb, aio_lio_opcode) == 16);
const _: () = assert!(offset_of!(iocb, aio_reqprio) == 18);
const _: () = assert!(offset_of!(iocb, aio_fildes) == 20);
const _: () = assert!(offset_of!(iocb, u) == 24);
const _: () = assert!(offset_of!(io_iocb_common, offset) == 16);
const _: () = assert!(offset_of!(io_iocb_common, __pad3) == 24);
const _: () = assert!(offset_of!(io_iocb_common, flags) == 32);
const _: () = assert!(offset_of!(io_iocb_common, resfd) == 36);
const _: () = assert!(offset_of!(io_iocb_vector, offset) == 16);
const _: () = assert!(size_of::<io_iocb_poll>() == 8);

// Pointer-sized fields land where the kernel reads the low 32 bits (x86_64 shown;
// the padding cfgs above put them at +4 on 32-bit big-endian machines).
#[cfg(target_pointer_width = "64")]
const _: () = {
    assert!(offset_of!(iocb, data) == 0);
    assert!(offset_of!(iocb, key) == if cfg!(target_endian = "big") { 12 } else { 8 });
    assert!(offset_of!(io_iocb_common, buf) == 0);
    assert!(offset_of!(io_iocb_common, nbytes) == 8);
    assert!(offset_of!(io_event, obj) == 8);
    assert!(offset_of!(io_event, res) == 16);
    assert!(offset_of!(io_event, res2) == 24);
    assert!(size_of::<io_sigset>() == 16);
};
#[cfg(all(target_pointer_width = "32", target_endian = "little"))]
const _: () = {
    assert!(offset_of!(iocb, data) == 0);
    assert!(offset_of!(io_event, obj) == 8);
    assert!(offset_of!(io_event, res) == 16);
};
#[cfg(all(target_pointer_width = "32", target_endian = "big"))]
const _: () = {
    assert!(offset_of!(iocb, data) == 4);
    assert!(offset_of!(io_event, obj) == 12);
    assert!(offset_of!(io_event, res) == 20);
};

impl iocb {
    /// An all-zero request, what the `io_prep_*` helpers start from.
    pub const fn zeroed() -> Self {
        // SAFETY: every field is an integer, a raw pointer or a union of those,
        // for all of which the all-zero bit pattern is valid (null pointers).
        unsafe { core::mem::zeroed() }
    }
}

impl io_event {
    /// An all-zero completion.
    pub const fn zeroed() -> Self {
        // SAFETY: integers and raw pointers only; all-zero is valid for each.
        unsafe { core::mem::zeroed() }
    }
}
