//! The staticlib that the final link turns into `libaio.so.1` and `libaio.a`.
//!
//! It adds only what a C library needs and a Rust library must not have: the
//! panic handler. No code path in the library panics by design; if one ever
//! did, the process aborts, and nothing unwinds into C.
#![cfg_attr(not(test), no_std)]

// Pulls in every exported entry point.
pub use libaio::capi;

#[cfg(not(test))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    // SAFETY: abort(3) takes no arguments and does not return.
    unsafe { libc_abort() }
}

#[cfg(not(test))]
extern "C" {
    #[link_name = "abort"]
    fn libc_abort() -> !;
}
