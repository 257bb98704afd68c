//! Runs every program of the C conformance suite (`ctests/`) twice, against
//! Debian's libaio 0.3.113 and against ours, and requires the same stdout and
//! a clean exit from both. Each run checks which libaio the process really
//! loaded, so a misconfigured run cannot pass by testing one library twice.
//!
//! Ours is taken from `$LIBAIO_RS_BUILD_DIR` (default `build/`, made by
//! `make`); Debian's from `$LIBAIO_RS_REFERENCE` (default: the system's
//! `libaio.so.1`, installed by the `libaio1` package).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use std::{env, fs};

const TIMEOUT: Duration = Duration::from_secs(120);

fn ours() -> PathBuf {
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

fn reference() -> PathBuf {
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

struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn run_with(prog: &Path, lib: &Path, tag: &str) -> Outcome {
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
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break Some(st);
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Outcome {
        code: status.and_then(|s| s.code()),
        stdout: reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
}

fn run_ctest(name: &str) {
    let prog = Path::new(env!("LIBAIO_RS_CTESTS_DIR")).join(name);
    let (reference, ours) = (reference(), ours());
    let theirs = run_with(&prog, &reference, &format!("{name}-debian"));
    let mine = run_with(&prog, &ours, &format!("{name}-ours"));
    for (who, lib, o) in [("Debian's libaio", &reference, &theirs), ("ours", &ours, &mine)] {
        let marker = format!("ctest-loaded: {}", lib.display());
        assert!(
            o.stderr.lines().any(|l| l == marker),
            "{name} with {who}: expected {marker:?}; stderr:\n{}",
            o.stderr
        );
        assert_eq!(
            o.code,
            Some(0),
            "{name} failed with {who}\nstdout:\n{}\nstderr:\n{}",
            o.stdout,
            o.stderr
        );
    }
    assert_eq!(
        theirs.stdout, mine.stdout,
        "{name}: observable behaviour differs (left: Debian's libaio, right: ours)"
    );
    assert!(!mine.stdout.is_empty(), "{name} printed no observation");
}

include!(concat!(env!("OUT_DIR"), "/ctests_list.rs"));
