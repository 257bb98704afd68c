//! Running a compiled C test program against one libaio: shared by
//! `tests/ctests.rs` (same behaviour from both libraries) and
//! `tests/differences.rs` (the documented differences).
//!
//! Ours is taken from `$LIBAIO_RS_BUILD_DIR` (default `build/`, made by
//! `make`); Debian's from `$LIBAIO_RS_REFERENCE` (default: the system's
//! `libaio.so.1`, installed by the `libaio1` package).

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use std::{env, fs};

/// No program of the suites should take more than a few seconds.
const TIMEOUT: Duration = Duration::from_secs(120);

/// Our `libaio.so.1`, resolved.
pub fn ours() -> PathBuf {
    let dir = env::var_os("LIBAIO_RS_BUILD_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("build"));
    let so = dir.join("libaio.so.1");
    assert!(
        so.exists(),
        "{} is missing: run `make` (or `make check`) first",
        so.display()
    );
    fs::canonicalize(so).expect("our library resolves")
}

/// Debian's `libaio.so.1`, resolved.
pub fn reference() -> PathBuf {
    let candidates = env::var_os("LIBAIO_RS_REFERENCE")
        .map(PathBuf::from)
        .into_iter()
        .chain(
            [
                "/usr/lib/x86_64-linux-gnu/libaio.so.1",
                "/lib/x86_64-linux-gnu/libaio.so.1",
            ]
            .map(PathBuf::from),
        );
    for c in candidates {
        if let Ok(real) = fs::canonicalize(&c) {
            return real;
        }
    }
    panic!("Debian's libaio.so.1 is not installed (apt-get install libaio1), or set LIBAIO_RS_REFERENCE");
}

/// A directory holding only `libaio.so.1 -> lib`, for LD_LIBRARY_PATH.
fn lib_dir_for(lib: &Path, tag: &str) -> PathBuf {
    let dir = env::temp_dir().join(format!("libaio-rs-ctests-{}-{tag}", std::process::id()));
    fs::create_dir_all(&dir).expect("temp dir");
    let link = dir.join("libaio.so.1");
    let _ = fs::remove_file(&link);
    std::os::unix::fs::symlink(lib, &link).expect("symlink");
    dir
}

/// How a run ended and what it printed.
pub struct Outcome {
    /// The exit code, when it exited.
    pub code: Option<i32>,
    /// The signal that killed it, when one did.
    pub signal: Option<i32>,
    /// Whether it was killed for running past [`TIMEOUT`].
    pub timed_out: bool,
    /// Everything it wrote on stdout.
    pub stdout: String,
    /// Everything it wrote on stderr.
    pub stderr: String,
}

impl Outcome {
    /// Fails unless the process really loaded `lib` (the C programs' common.h
    /// reports it on stderr), so a misconfigured run cannot pass by testing
    /// one library twice.
    pub fn assert_loaded(&self, what: &str, lib: &Path) {
        let marker = format!("ctest-loaded: {}", lib.display());
        assert!(
            self.stderr.lines().any(|l| l == marker),
            "{what}: expected {marker:?}; stderr:\n{}",
            self.stderr
        );
    }

    /// A short description for failure messages.
    pub fn describe(&self) -> String {
        format!(
            "code {:?}, signal {:?}, timed out {}\nstdout:\n{}\nstderr:\n{}",
            self.code, self.signal, self.timed_out, self.stdout, self.stderr
        )
    }
}

/// Runs `prog` with `lib` as its `libaio.so.1`, a scratch `$CTEST_TMPDIR`,
/// no stdin, and a time limit.
pub fn run_with(prog: &Path, lib: &Path, tag: &str) -> Outcome {
    let tmp = env::temp_dir().join(format!("libaio-rs-ctest-tmp-{}-{tag}", std::process::id()));
    fs::create_dir_all(&tmp).expect("temp dir");
    let mut child = Command::new(prog)
        .env("LD_LIBRARY_PATH", lib_dir_for(lib, tag))
        .env("CTEST_TMPDIR", &tmp)
        .env_remove("LD_PRELOAD")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", prog.display()));
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let mut timed_out = false;
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break Some(st);
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            timed_out = true;
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let _ = fs::remove_dir_all(&tmp);
    Outcome {
        code: status.and_then(|s| s.code()),
        signal: status.and_then(|s| s.signal()),
        timed_out,
        stdout: reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
}
