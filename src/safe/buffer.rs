//! Buffers a request may own: [`AlignedBuf`] (for `O_DIRECT`) and `Vec<u8>`.

use std::alloc::{self, Layout};
use std::fmt;
use std::io;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::vec::Vec;

/// The unit `O_DIRECT` transfers are counted in on every Linux filesystem
/// (the smallest logical block size): lengths must be a multiple of it.
pub const DIRECT_BLOCK: usize = 512;

/// The alignment [`AlignedBuf::new`] gives: a page, enough for `O_DIRECT` on
/// any device.
pub const DEFAULT_ALIGN: usize = 4096;

mod sealed {
    pub trait Sealed {}
}

/// A buffer a [`Request`](crate::Request) can own while the kernel (or an
/// engine's thread) reads or writes it: [`AlignedBuf`] or `Vec<u8>`.
///
/// Sealed: soundness rests on the data staying at the same address while the
/// buffer value itself is moved into and out of the context, which holds for
/// these two heap-backed types and cannot be promised for arbitrary ones.
///
/// ```
/// use libaio::IoBuf;
/// let v = vec![0u8; 4];
/// assert_eq!(IoBuf::len(&v), 4);
/// let b = libaio::AlignedBuf::new(512).unwrap();
/// assert_eq!(IoBuf::len(&b), 512);
/// ```
pub trait IoBuf: sealed::Sealed + Send + 'static {
    /// The address of the first byte, valid for [`len`](IoBuf::len) bytes of
    /// reads and writes until the buffer is dropped, wherever it is moved.
    fn io_ptr(&mut self) -> *mut u8;
    /// The number of bytes the request transfers.
    fn len(&self) -> usize;
    /// Whether [`len`](IoBuf::len) is 0.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl sealed::Sealed for Vec<u8> {}

impl IoBuf for Vec<u8> {
    fn io_ptr(&mut self) -> *mut u8 {
        // `as_mut_ptr` is documented not to create a reference to the
        // contents, so the kernel's later writes do not race with one.
        self.as_mut_ptr()
    }
    fn len(&self) -> usize {
        Vec::len(self)
    }
}

/// A zero-filled heap buffer whose address is aligned for `O_DIRECT`.
///
/// `O_DIRECT` needs the address, the length and the file offset aligned to
/// the device's logical block size; the kernel answers `EINVAL` otherwise.
/// This type checks what it can know at construction: the alignment is a
/// power of two and at least [`DIRECT_BLOCK`], and the length a multiple of
/// [`DIRECT_BLOCK`] (the offset is the request's business).
///
/// ```
/// use libaio::AlignedBuf;
/// let mut b = AlignedBuf::new(8192).unwrap();
/// assert_eq!(b.as_ptr() as usize % 4096, 0);
/// b[..5].copy_from_slice(b"hello");
/// assert_eq!(&b[..5], b"hello");
/// // Lengths and alignments O_DIRECT would refuse are refused here.
/// assert_eq!(AlignedBuf::new(100).unwrap_err().raw_os_error(), Some(libc::EINVAL));
/// assert!(AlignedBuf::with_alignment(512, 3000).is_err());
/// ```
pub struct AlignedBuf {
    ptr: NonNull<u8>,
    len: usize,
    align: usize,
}

// SAFETY: AlignedBuf owns its allocation exclusively (like Box<[u8]>); no
// other value refers to it, so it may be moved to another thread.
unsafe impl Send for AlignedBuf {}
// SAFETY: shared access only reads through `&[u8]`, as for Box<[u8]>.
unsafe impl Sync for AlignedBuf {}

fn einval() -> io::Error {
    io::Error::from_raw_os_error(libc::EINVAL)
}

impl AlignedBuf {
    /// A zeroed buffer of `len` bytes aligned to [`DEFAULT_ALIGN`] (4096);
    /// `EINVAL` when `len` is not a multiple of [`DIRECT_BLOCK`] (512).
    pub fn new(len: usize) -> io::Result<Self> {
        Self::with_alignment(len, DEFAULT_ALIGN)
    }

    /// A zeroed buffer of `len` bytes aligned to `align`; `EINVAL` unless
    /// `align` is a power of two of at least [`DIRECT_BLOCK`] and `len` a
    /// multiple of [`DIRECT_BLOCK`]; `ENOMEM` when it cannot be allocated.
    pub fn with_alignment(len: usize, align: usize) -> io::Result<Self> {
        if !align.is_power_of_two() || align < DIRECT_BLOCK || len % DIRECT_BLOCK != 0 {
            return Err(einval());
        }
        if len == 0 {
            // Nothing to allocate: a dangling, aligned, non-null address.
            let ptr = NonNull::new(align as *mut u8).ok_or_else(einval)?;
            return Ok(Self { ptr, len, align });
        }
        let layout = Layout::from_size_align(len, align).map_err(|_| einval())?;
        // SAFETY: `layout` has a non-zero size (len > 0 checked above).
        let p = unsafe { alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(p).ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))?;
        Ok(Self { ptr, len, align })
    }

    /// The alignment of the address.
    pub fn alignment(&self) -> usize {
        self.align
    }
}

impl IoBuf for AlignedBuf {
    fn io_ptr(&mut self) -> *mut u8 {
        self.ptr.as_ptr()
    }
    fn len(&self) -> usize {
        self.len
    }
}

impl sealed::Sealed for AlignedBuf {}

impl Deref for AlignedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `ptr` is valid for `len` initialized (zeroed at allocation)
        // bytes, owned by `self`, and no request holds it: a buffer in
        // flight is owned by the context, out of the user's reach.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl DerefMut for AlignedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`, and `&mut self` makes this the only access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        if self.len == 0 {
            return;
        }
        if let Ok(layout) = Layout::from_size_align(self.len, self.align) {
            // SAFETY: allocated in `with_alignment` with this very layout,
            // and freed only here, once.
            unsafe { alloc::dealloc(self.ptr.as_ptr(), layout) };
        }
    }
}

impl fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlignedBuf")
            .field("len", &self.len)
            .field("align", &self.align)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_and_zeroed() {
        for align in [512, 4096, 65536] {
            let mut b = AlignedBuf::with_alignment(3 * 512, align).unwrap();
            assert_eq!(b.as_ptr() as usize % align, 0);
            assert!(b.iter().all(|&x| x == 0));
            b.fill(7);
            assert_eq!(b.alignment(), align);
            assert_eq!(IoBuf::len(&b), 1536);
            let moved = b; // the data does not move with the value
            assert!(moved.iter().all(|&x| x == 7));
        }
    }

    #[test]
    fn refused_where_o_direct_would_be() {
        for (len, align) in [(100, 4096), (512, 256), (512, 3000), (513, 512), (512, 0)] {
            let e = AlignedBuf::with_alignment(len, align).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "{len} {align}");
        }
    }

    #[test]
    fn empty_allocates_nothing() {
        let mut b = AlignedBuf::new(0).unwrap();
        assert!(b.is_empty());
        assert_eq!(b.io_ptr() as usize % DEFAULT_ALIGN, 0);
        assert_eq!(&b[..], &[] as &[u8]);
    }

    #[test]
    fn vec_pointer_survives_moves() {
        let mut v = std::vec![1u8; 64];
        let p = v.io_ptr();
        let mut moved = v;
        assert_eq!(moved.io_ptr(), p);
    }
}
