//! Whether the caller's event array may be written from user space.
//!
//! libaio hands the array to the kernel, which answers `EFAULT` for a bad one.
//! Reaping in user space writes it directly, where a bad pointer would crash
//! instead. So an array is written in user space only where the kernel itself
//! has written it before: when a counted kernel `io_getevents` returns `n`
//! events into `events`, the pages under those `n` events were mapped
//! writable, and that is remembered. An array the kernel has not yet written
//! goes to the kernel, which answers as it does for libaio (and fills it, so
//! the next call can be answered here). No system call is ever made to learn
//! this: under a seccomp filter the library makes only libaio's calls.
//!
//! Each remembered range is one word (page-aligned start | page count), so a
//! reader never sees half of one: what it reads is something the kernel
//! proved. The table is a small set-associative cache keyed by the array's
//! first page; a miss costs only that the call goes to the kernel once more.
//!
//! The table is never invalidated: an array that was writable and has since
//! been unmapped or made read-only (mprotect) is still taken as writable, and
//! a user-space reap into it faults where the kernel would answer EFAULT (see
//! the README's differences).

use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

const PAGE: usize = 4096;
/// Page counts are kept in the low bits of a page-aligned address.
const MAX_PAGES: usize = PAGE - 1;
/// Sets of the cache, and ways in each.
const SETS: usize = 64;
const WAYS: usize = 4;

#[allow(clippy::declare_interior_mutable_const)] // only used to initialise RANGES
const EMPTY: AtomicUsize = AtomicUsize::new(0);
/// Remembered ranges: `start | pages`, 0 when empty.
static RANGES: [AtomicUsize; SETS * WAYS] = [EMPTY; SETS * WAYS];
/// Picks the way a new range replaces.
static NEXT: AtomicU32 = AtomicU32::new(0);

fn page_of(addr: usize) -> usize {
    addr & !(PAGE - 1)
}

fn set_of(start_page: usize) -> &'static [AtomicUsize] {
    let i = ((start_page / PAGE) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58;
    let i = i as usize % SETS;
    &RANGES[i * WAYS..(i + 1) * WAYS]
}

/// The end (exclusive) of the range a word describes.
fn end_of(word: usize) -> usize {
    page_of(word).saturating_add((word & MAX_PAGES) * PAGE)
}

/// True when `len` bytes at `p` are known to be writable.
pub(crate) fn writable(p: *mut u8, len: usize) -> bool {
    let start = p as usize;
    let Some(end) = start.checked_add(len) else {
        return false;
    };
    let first = page_of(start);
    set_of(first).iter().any(|w| {
        // Relaxed: the word is the whole fact, read whole.
        let w = w.load(Ordering::Relaxed);
        w != 0 && page_of(w) == first && end <= end_of(w)
    })
}

/// Remembers that the kernel has just written `len` bytes at `p` (events it
/// returned): the pages under them were writable.
pub(crate) fn remember(p: *mut u8, len: usize) {
    let start = p as usize;
    let Some(last) = start.checked_add(len) else {
        return;
    };
    if len == 0 || page_of(start) == 0 {
        return;
    }
    let first = page_of(start);
    let pages = (last - first).div_ceil(PAGE).min(MAX_PAGES);
    let word = first | pages;
    let set = set_of(first);
    if let Some(known) = set.iter().find(|w| page_of(w.load(Ordering::Relaxed)) == first) {
        // Grow it; a concurrent store of a smaller range only forgets a little.
        known.fetch_max(word, Ordering::Relaxed);
        return;
    }
    let way = NEXT.fetch_add(1, Ordering::Relaxed) as usize % WAYS;
    set[way].store(word, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    use std::vec::Vec;

    #[test]
    fn only_what_the_kernel_wrote_is_known_and_whole_pages_count() {
        let base = 0x7000_0000_0000usize;
        let p = (base + 96) as *mut u8;
        assert!(!writable(p, 32));
        remember(p, 64);
        assert!(writable(p, 64));
        // The rest of that page was writable too.
        assert!(writable(p, PAGE - 96));
        // Not the next page, nor an array starting elsewhere.
        assert!(!writable(p, PAGE));
        assert!(!writable((base + PAGE) as *mut u8, 32));
        // A larger answer grows what is known.
        remember(p, 2 * PAGE);
        assert!(writable(p, 2 * PAGE));
        // Null, overflowing and empty ranges are never remembered.
        remember(core::ptr::null_mut(), 64);
        assert!(!writable(core::ptr::null_mut(), 1));
        assert!(!writable((usize::MAX - 8) as *mut u8, 32));
    }

    #[test]
    fn more_arrays_than_a_set_holds_evict_but_never_invent() {
        // Pages that all fall in one set, more of them than it has ways.
        let set0: Vec<usize> = (1..)
            .map(|i| 0x1000_0000usize + i * PAGE)
            .filter(|&p| core::ptr::eq(set_of(p), set_of(0x1000_0000 + PAGE)))
            .take(WAYS * 2)
            .collect();
        for &p in &set0 {
            remember(p as *mut u8, 32);
            assert!(writable(p as *mut u8, 32));
        }
        let known = set0.iter().filter(|&&p| writable(p as *mut u8, 32)).count();
        assert!(known <= WAYS && known > 0, "{known} remembered");
    }

    /// Readers racing writers never accept a range no writer stored: each
    /// entry is one word. (The sequence-locked pair this replaced could be
    /// read torn; under Miri's weak-memory emulation this test caught it.)
    #[test]
    fn concurrent_readers_never_see_a_torn_range() {
        let stop = Arc::new(AtomicBool::new(false));
        // Writers store ranges of one page at page-aligned starts whose set is shared.
        let starts: Vec<usize> = (1..)
            .map(|i| 0x2000_0000usize + i * PAGE)
            .filter(|&p| core::ptr::eq(set_of(p), set_of(0x2000_0000 + PAGE)))
            .take(8)
            .collect();
        let writers: Vec<_> = (0..2)
            .map(|t| {
                let (starts, stop) = (starts.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut i = t;
                    while !stop.load(Ordering::Relaxed) {
                        remember(starts[i % starts.len()] as *mut u8, 64);
                        i += 1;
                    }
                })
            })
            .collect();
        for _ in 0..if cfg!(miri) { 200 } else { 200_000 } {
            for &s in &starts {
                // Only one page was ever proved at each start.
                assert!(!writable(s as *mut u8, PAGE + 1), "torn range at {s:#x}");
            }
        }
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            w.join().expect("writer");
        }
    }
}
