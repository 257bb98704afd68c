//! The exported C entry points: each a few lines over the safe core.
//!
//! Conventions, as libaio 0.3.113 has them: every call returns a result or
//! `-errno` and leaves `errno` as it was; pointers from the caller go to the
//! kernel untouched. The `# Safety` sections say what the C caller promises.

pub mod compat;
pub mod io;
pub mod prep;
pub mod queue;

/// The library's constructor: settles the configuration while the process is
/// still being loaded, so that no call made later needs a system call beyond
/// libaio's (see `config`). Runs for the shared object and for `libaio.a`.
extern "C" fn load() {
    crate::config::init();
}

// Not under Miri, which runs constructors but cannot read /proc or map the
// registry; the tests it runs need neither.
#[cfg(not(miri))]
#[used]
#[link_section = ".init_array"]
static LOAD: extern "C" fn() = load;
