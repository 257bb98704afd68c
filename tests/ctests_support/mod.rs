//! Running a compiled C test program against one libaio: shared by
//! `tests/ctests.rs` (same behaviour from both libraries) and
//! `tests/differences.rs` (the documented differences).
//!
//! Ours is taken from `$LIBAIO_RS_BUILD_DIR` (default `build/`), after `make`
//! has brought it up to date with the sources being tested: a library left
//! there by an earlier `make` must not pass for them. Debian's comes from
//! `$LIBAIO_RS_REFERENCE` (default: the system's `libaio.so.1`, installed by
//! the `libaio1` package).

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use std::{env, fs};

/// No program of the suites should take more than a few seconds.
const TIMEOUT: Duration = Duration::from_secs(120);

/// Our `libaio.so.1`, resolved, once `make` has brought it up to date.
pub fn ours() -> PathBuf {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(build_ours)
        .clone()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Runs the Makefile's rule for the shared object, once per test process.
/// Cargo holds no lock while tests run, so the nested `cargo build` in it
/// cannot wait for this one.
fn build_ours() -> Result<PathBuf, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = env::var_os("LIBAIO_RS_BUILD_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("build"));
    let dir = root.join(dir); // a relative one is taken from the repository root
    let target = dir.join("libaio.so.1.0.2");
    let out = Command::new("make")
        .arg("-s")
        .arg("-C")
        .arg(root)
        .arg(format!("B={}", dir.display()))
        .arg(&target)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run make to build our library: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`make {}` failed ({}), so the C suite has no library built from these sources:\n{}{}",
            target.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let so = dir.join("libaio.so.1");
    fs::canonicalize(&so).map_err(|e| format!("{}: {e} after make", so.display()))
}

/// Debian's `libaio.so.1` (`tools/debian-libaio.sh`), resolved; None, with a line on stderr saying the
/// comparison of `what` is skipped, where it is not installed. Under
/// `make check` (LIBAIO_RS_REQUIRE_REFERENCE=1) a missing reference fails.
pub fn reference(what: &str) -> Option<PathBuf> {
    // The one lookup of Debian's library, shared with the shell tests.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/debian-libaio.sh");
    if let Ok(out) = Command::new(&script).stdin(Stdio::null()).output() {
        let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && !path.is_empty() {
            return Some(PathBuf::from(path));
        }
    }
    let why = "Debian's libaio.so.1 is not installed (apt-get install libaio1), or set LIBAIO_RS_REFERENCE";
    assert!(
        env::var_os("LIBAIO_RS_REQUIRE_REFERENCE").is_none_or(|v| v != "1"),
        "{why}"
    );
    eprintln!("SKIPPED {what}: {why}");
    None
}

/// Per-run scratch space, removed when dropped (after the run, or when the
/// test panics): `lib/` holds only `libaio.so.1 -> lib`, for
/// LD_LIBRARY_PATH, and `tmp/` is the program's `$CTEST_TMPDIR`.
struct RunDir(PathBuf);

const RUN_DIR_PREFIX: &str = "libaio-rs-ctests-";

impl RunDir {
    fn new(lib: &Path, tag: &str) -> RunDir {
        static SWEPT: OnceLock<()> = OnceLock::new();
        SWEPT.get_or_init(sweep_dead);
        let dir = RunDir(env::temp_dir().join(format!("{RUN_DIR_PREFIX}{}-{tag}", std::process::id())));
        let _ = fs::remove_dir_all(&dir.0);
        fs::create_dir_all(dir.lib()).expect("temp dir");
        fs::create_dir_all(dir.tmp()).expect("temp dir");
        std::os::unix::fs::symlink(lib, dir.lib().join("libaio.so.1")).expect("symlink");
        dir
    }

    fn lib(&self) -> PathBuf {
        self.0.join("lib")
    }

    fn tmp(&self) -> PathBuf {
        self.0.join("tmp")
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Removes run directories left by test processes that no longer exist
/// (killed before their guards ran).
fn sweep_dead() {
    let Ok(entries) = fs::read_dir(env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let pid = name
            .strip_prefix(RUN_DIR_PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }
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
    run_with_env(prog, lib, tag, &[])
}

/// [`run_with`], with extra environment variables (our library's switches,
/// which are otherwise removed so that the caller's environment cannot
/// change what is tested).
pub fn run_with_env(prog: &Path, lib: &Path, tag: &str, vars: &[(&str, &str)]) -> Outcome {
    let dir = RunDir::new(lib, tag);
    let mut cmd = Command::new(prog);
    for v in [
        "LIBAIO_RS_ENGINE",
        "LIBAIO_RS_DEBUG",
        "LIBAIO_RS_REAP",
        "LIBAIO_RS_FALLBACK_EAGAIN",
    ] {
        cmd.env_remove(v);
    }
    cmd.envs(vars.iter().copied());
    let mut child = cmd
        .env("LD_LIBRARY_PATH", dir.lib())
        .env("CTEST_TMPDIR", dir.tmp())
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
    drop(dir);
    Outcome {
        code: status.and_then(|s| s.code()),
        signal: status.and_then(|s| s.signal()),
        timed_out,
        stdout: reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
}
