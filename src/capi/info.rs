//! What the library says about itself when asked: its version and the
//! engine of a context (version node `LIBAIO_RS_2`; libaio has neither).

use crate::abi::io_context_t;
use crate::registry;
use crate::sys;
use core::ffi::c_char;

/// The version of this library as a NUL-terminated string, for example
/// `"0.4.0"`. libaio's own version, 0.3.113, is the ABI it keeps.
#[no_mangle]
pub extern "C" fn libaio_rs_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The engine that carries out `ctx`'s requests: `"kernel"`, `"io_uring"`
/// or `"threads"` (a static string), or NULL when `ctx` is not a live
/// context of this process. `errno` is left as it was.
///
/// # Safety
/// None: any value of `ctx` is answered (a kernel context is looked up by
/// the kernel, with an `io_submit` of no request).
#[no_mangle]
pub unsafe extern "C" fn io_context_engine(ctx: io_context_t) -> *const c_char {
    if let Some(pin) = registry::pin_emu(ctx as usize) {
        return match crate::engine::user::control(&pin).exec.name() {
            "io_uring" => c"io_uring".as_ptr(),
            _ => c"threads".as_ptr(),
        };
    }
    let _keep = sys::KeepErrno::new();
    // SAFETY: with nr 0 the kernel only looks the context up (-EINVAL when
    // it is not live) and reads nothing. Not io_getevents, which would
    // rewrite the ring's head behind the back of a user-space reap (see
    // engine::kernel::gate: only counted readers may enter the kernel's reaping).
    let ret = unsafe { sys::io_submit(ctx, 0, core::ptr::null_mut()) };
    if ret == 0 {
        c"kernel".as_ptr()
    } else {
        core::ptr::null()
    }
}
