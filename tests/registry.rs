//! The context registry in its own process (the unit tests share one
//! registry across threads): many real contexts at once are all tracked,
//! however the kernel lays their rings out. Seen from outside, through the C
//! entry points: a tracked context gives libaio's empty-ring answer to a zero
//! timeout (0, before any argument check) where the kernel would say
//! -EINVAL, and a destroyed one no longer does.

use libaio::abi::{io_context_t, io_event};
use libaio::capi::io::{io_destroy, io_getevents, io_setup};

/// The answer to `min_nr > nr` with a zero timeout on an empty ring.
fn empty_ring_answer(ctx: io_context_t) -> i32 {
    let mut ev = [io_event::zeroed(); 1];
    let mut zero = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: our own array and timeout; any ctx value is answered.
    unsafe { io_getevents(ctx, 2, 1, ev.as_mut_ptr(), &mut zero) }
}

#[test]
fn a_hundred_contexts_are_all_registered() {
    let mut ctxs: Vec<io_context_t> = vec![std::ptr::null_mut(); 100];
    for c in ctxs.iter_mut() {
        // SAFETY: a fresh, zeroed handle of our own.
        assert_eq!(unsafe { io_setup(4, c) }, 0);
    }
    let missing: Vec<usize> = (0..ctxs.len())
        .filter(|&i| empty_ring_answer(ctxs[i]) != 0)
        .collect();
    for &c in &ctxs {
        // SAFETY: our own contexts, destroyed once.
        assert_eq!(unsafe { io_destroy(c) }, 0);
    }
    assert!(missing.is_empty(), "contexts not registered: {missing:?}");
    // Destroyed: the kernel answers, for every one.
    for &c in &ctxs {
        assert_eq!(
            empty_ring_answer(c),
            -libc::EINVAL,
            "a destroyed context stays registered"
        );
    }
}
