//! The context registry in its own process (the unit tests in ring.rs share
//! one registry across threads): many real contexts at once are all tracked,
//! however the kernel lays their rings out.

use libaio::abi::io_context_t;
use libaio::capi::io::{io_destroy, io_setup};
use libaio::ring::is_registered;

#[test]
fn a_hundred_contexts_are_all_registered() {
    let mut ctxs: Vec<io_context_t> = vec![std::ptr::null_mut(); 100];
    for c in ctxs.iter_mut() {
        // SAFETY: a fresh, zeroed handle of our own.
        assert_eq!(unsafe { io_setup(4, c) }, 0);
    }
    let missing: Vec<usize> = (0..ctxs.len()).filter(|&i| !is_registered(ctxs[i])).collect();
    for &c in &ctxs {
        // SAFETY: our own contexts, destroyed once.
        assert_eq!(unsafe { io_destroy(c) }, 0);
    }
    assert!(missing.is_empty(), "contexts not registered: {missing:?}");
    assert!(
        ctxs.iter().all(|&c| !is_registered(c)),
        "destroyed contexts stay registered"
    );
}
