//! Whether the caller's event array may be written from user space.
//!
//! libaio hands the array to the kernel, which answers `EFAULT` for a bad one.
//! Reaping in user space writes it directly, where a bad pointer would crash
//! instead. So before the first user-space write into an array, the kernel is
//! asked once whether the whole range is writable (`process_vm_writev` of the
//! range onto itself, which changes no byte), and the answer is remembered in
//! a small table of ranges. An array that is not known to be writable is left
//! to the syscall path, where the kernel answers as it does for libaio.
//!
//! The table is never invalidated: an array that was writable and has since
//! been unmapped or made read-only (mprotect) is still taken as writable, and
//! a user-space reap into it faults where the kernel would answer EFAULT (see
//! the README's differences).

use crate::sys;
use core::sync::atomic::{fence, AtomicU32, AtomicUsize, Ordering};

/// Addresses below this are never mapped (`vm.mmap_min_addr` is at least 4096).
const MIN_ADDR: usize = 4096;
const ENTRIES: usize = 16;

/// A remembered writable range, guarded by a sequence number: odd while being
/// rewritten, so a reader never trusts a half-written pair.
struct Range {
    seq: AtomicU32,
    start: AtomicUsize,
    end: AtomicUsize,
}

#[allow(clippy::declare_interior_mutable_const)] // only used to initialise RANGES
const EMPTY: Range = Range {
    seq: AtomicU32::new(0),
    start: AtomicUsize::new(0),
    end: AtomicUsize::new(0),
};
static RANGES: [Range; ENTRIES] = [EMPTY; ENTRIES];
static NEXT: AtomicU32 = AtomicU32::new(0);

impl Range {
    fn covers(&self, start: usize, end: usize) -> bool {
        let s1 = self.seq.load(Ordering::Acquire);
        if s1 & 1 != 0 {
            return false;
        }
        let (a, b) = (
            self.start.load(Ordering::Relaxed),
            self.end.load(Ordering::Relaxed),
        );
        fence(Ordering::Acquire);
        self.seq.load(Ordering::Relaxed) == s1 && a != 0 && a <= start && end <= b
    }

    fn store(&self, start: usize, end: usize) {
        let s = self.seq.load(Ordering::Relaxed);
        if s & 1 != 0
            || self
                .seq
                .compare_exchange(s, s + 1, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
        {
            return; // another thread is rewriting this entry; remembering is optional
        }
        self.start.store(start, Ordering::Relaxed);
        self.end.store(end, Ordering::Relaxed);
        self.seq.store(s + 2, Ordering::Release);
    }
}

/// True when `len` bytes at `p` are known, or now proven, writable. On a
/// miss the kernel is asked first about `hint` bytes (the most the caller
/// could ever need at `p`), so one check serves the calls that follow.
pub fn writable(p: *mut u8, len: usize, hint: usize) -> bool {
    let start = p as usize;
    let Some(end) = start.checked_add(len) else {
        return false;
    };
    if start < MIN_ADDR {
        return false;
    }
    if RANGES.iter().any(|r| r.covers(start, end)) {
        return true;
    }
    // The probe is a system call libaio never makes: not under a seccomp
    // filter, which may kill for it (one may have been installed since the
    // first call). Unknown arrays then go to the kernel, as with libaio.
    let _keep = crate::diag::KeepErrno::new();
    if crate::diag::seccomp_mode_of_self() != Some(0) {
        return false;
    }
    for size in [hint.max(len), len] {
        if let Some(end) = start.checked_add(size) {
            if sys::probe_writable(p, size) {
                let i = NEXT.fetch_add(1, Ordering::Relaxed) as usize % ENTRIES;
                RANGES[i].store(start, end);
                return true;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// The table is process-wide and addresses get reused between tests, so
    /// each test runs alone on an empty table.
    static SERIAL: Mutex<()> = Mutex::new(());

    fn fresh() -> std::sync::MutexGuard<'static, ()> {
        let guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        for r in &RANGES {
            r.start.store(0, Ordering::Relaxed);
            r.end.store(0, Ordering::Relaxed);
        }
        guard
    }

    fn map(prot: i32) -> *mut u8 {
        // SAFETY: an anonymous private mapping of one page, unmapped by the caller.
        let p = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                4096,
                prot,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED);
        p.cast()
    }

    #[test]
    fn writable_memory_is_accepted_and_left_unchanged() {
        let _serial = fresh();
        let mut buf = [7u8; 256];
        assert!(writable(buf.as_mut_ptr(), 64, 256));
        assert!(buf.iter().all(|&b| b == 7), "the probe must not change the bytes");
        // Remembered: a sub-range needs no new probe (and still answers true).
        assert!(writable(buf[32..].as_mut_ptr(), 32, 32));
    }

    #[test]
    fn null_low_and_overflowing_pointers_are_refused() {
        let _serial = fresh();
        assert!(!writable(core::ptr::null_mut(), 32, 32));
        assert!(!writable(16 as *mut u8, 32, 32));
        assert!(!writable((usize::MAX - 8) as *mut u8, 32, 32));
    }

    #[test]
    fn read_only_and_unmapped_memory_is_refused() {
        let _serial = fresh();
        let ro = map(libc::PROT_READ);
        assert!(!writable(ro, 32, 32));
        // PROT_NONE answers like an unmapped page, and unlike a munmap()ed
        // one it cannot be handed to another test thread meanwhile.
        let none = map(libc::PROT_NONE);
        assert!(!writable(none, 32, 32));
        // SAFETY: unmapping our own pages.
        unsafe {
            libc::munmap(none.cast(), 4096);
            libc::munmap(ro.cast(), 4096);
        }
    }

    #[test]
    fn a_hint_larger_than_the_mapping_falls_back_to_the_needed_length() {
        let _serial = fresh();
        let rw = map(libc::PROT_READ | libc::PROT_WRITE);
        // SAFETY: the last 64 bytes of our page.
        let tail = unsafe { rw.add(4096 - 64) };
        assert!(writable(tail, 64, 4096));
        // SAFETY: as above.
        unsafe { libc::munmap(rw.cast(), 4096) };
    }
}
