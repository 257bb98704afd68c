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
// run libc's initialisation by then, not this object's constructor (that is
// the start code's job for a program, and the doctor has none), so the
// doctor settles the configuration itself. x86 enters with the stack
// aligned for a call's target, not for a function's first instruction, so
// there a few instructions align it. aarch64, arm, riscv64 and loongarch64
// enter as a function may be entered (a function stores only below its
// stack pointer there); on the other architectures a function stores into
// its caller's frame, which at entry is argc, argv and the environment, so
// the entry is left out there (the Makefile then links no doctor).
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

/// The entry point itself where entering a function is enough.
///
/// cbindgen:ignore
#[cfg(all(
    doctor_entry,
    not(test),
    not(miri),
    not(any(target_arch = "x86_64", target_arch = "x86"))
))]
#[no_mangle]
extern "C" fn libaio_rs_entry() -> ! {
    doctor()
}

#[cfg(all(doctor_entry, not(test), not(miri)))]
extern "C" fn doctor() -> ! {
    crate::report::doctor()
}
