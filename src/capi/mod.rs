//! The exported C entry points: each a few lines over the safe core.
//!
//! Conventions, as libaio 0.3.113 has them: every call returns a result or
//! `-errno` and leaves `errno` as it was; pointers from the caller go to the
//! kernel untouched. The `# Safety` sections say what the C caller promises.

pub mod compat;
pub mod info;
pub mod io;
pub mod prep;
pub mod queue;

/// The library's constructor: settles the configuration while the process is
/// still being loaded, so that no call made later needs a system call beyond
/// libaio's (see `config`). Runs for the shared object and for `libaio.a`.
extern "C" fn load() {
    if crate::config::init() {
        crate::report::loaded();
    }
}

// Not under Miri, which runs constructors but cannot read /proc or map the
// registry; the tests it runs need neither.
#[cfg(not(miri))]
#[used]
#[link_section = ".init_array"]
static LOAD: extern "C" fn() = load;

// Where the dynamic loader jumps when the shared object itself is run
// (`libaio.so.1` as a command; the Makefile names it with `-e` and gives
// the object a program interpreter): the doctor (`report`). The loader has
// run every constructor, libc's and ours, by then. x86 enters with the
// stack aligned for a call's target, not for a function's first
// instruction, so there a few instructions align it; elsewhere the entry
// state is a function's.
#[cfg(all(not(test), not(miri), target_arch = "x86_64"))]
core::arch::global_asm!(
    ".globl libaio_rs_entry",
    ".type libaio_rs_entry, @function",
    "libaio_rs_entry:",
    "xor ebp, ebp",
    "and rsp, -16",
    "call {doctor}",
    "ud2",
    doctor = sym doctor,
);
#[cfg(all(not(test), not(miri), target_arch = "x86"))]
core::arch::global_asm!(
    ".globl libaio_rs_entry",
    ".type libaio_rs_entry, @function",
    "libaio_rs_entry:",
    "xor ebp, ebp",
    "and esp, -16",
    "call {doctor}",
    "ud2",
    doctor = sym doctor,
);

/// The entry point itself on the other architectures.
///
/// cbindgen:ignore
#[cfg(all(not(test), not(miri), not(any(target_arch = "x86_64", target_arch = "x86"))))]
#[no_mangle]
extern "C" fn libaio_rs_entry() -> ! {
    doctor()
}

#[cfg(not(test))]
extern "C" fn doctor() -> ! {
    crate::report::doctor()
}
