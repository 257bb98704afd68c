//! Runs every program of the C conformance suite (`ctests/*.c`) twice, against
//! Debian's libaio 0.3.113 and against ours, and requires the same stdout and
//! a clean exit from both. Each run checks which libaio the process really
//! loaded, so a misconfigured run cannot pass by testing one library twice.
//! (The cases where the two deliberately differ are in `tests/differences.rs`.)
//!
//! Each program runs again with ours on each user-space engine
//! (`LIBAIO_RS_ENGINE=threads`, `=io_uring`), against the same Debian run
//! over kernel AIO, with the kernel-only observations listed in
//! `tests/kernel_only.tsv` (explained in doc/differences.md) left out of
//! the comparison.

mod ctests_support;

use ctests_support::{ours, reference, run_with, run_with_env};
use std::path::Path;

/// What a user-space engine cannot show as kernel AIO does, and why: the
/// `ctest` rows of `tests/kernel_only.tsv` (program, None: the whole program
/// | Some(prefix): its lines starting so, reason).
fn kernel_only(name: &str) -> Option<(Option<&'static str>, &'static str)> {
    include_str!("kernel_only.tsv")
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut f = l.split('\t');
            Some((f.next()?, f.next()?, f.next()?, f.next()?))
        })
        .find(|&(kind, n, _, _)| kind == "ctest" && n == name)
        .map(|(_, _, lines, why)| ((lines != "-").then_some(lines), why))
}

fn keep_lines(out: &str, drop: Option<&str>) -> String {
    out.lines()
        .filter(|l| drop.is_none_or(|p| !l.starts_with(p)))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The program on ours with `engine` against Debian's libaio over kernel AIO.
fn run_ctest_on(name: &str, engine: &str) {
    let skip = kernel_only(name);
    if let Some((None, why)) = skip {
        eprintln!("{name} on {engine}: not compared ({why})");
        return;
    }
    let drop = skip.and_then(|(p, _)| p);
    let prog = Path::new(env!("LIBAIO_RS_CTESTS_DIR")).join(name);
    let Some(reference) = reference(&format!("{name} on {engine}")) else {
        return;
    };
    let ours = ours();
    let theirs = run_with(&prog, &reference, &format!("{name}-debian-{engine}"));
    let mine = run_with_env(
        &prog,
        &ours,
        &format!("{name}-ours-{engine}"),
        &[("LIBAIO_RS_ENGINE", engine), ("LIBAIO_RS_DEBUG", "1")],
    );
    theirs.assert_loaded(&format!("{name} with Debian's libaio"), &reference);
    mine.assert_loaded(&format!("{name} with ours on {engine}"), &ours);
    assert_eq!(
        theirs.code,
        Some(0),
        "{name} failed with Debian's libaio: {}",
        theirs.describe()
    );
    assert_eq!(
        mine.code,
        Some(0),
        "{name} failed on {engine}: {}",
        mine.describe()
    );
    assert!(
        mine.stderr.contains(&format!("io_setup: engine {engine}")),
        "{name}: no context was set up on {engine}: {}",
        mine.describe()
    );
    assert!(
        !mine.stderr.contains("io_setup: engine kernel"),
        "{name}: a context was set up on kernel AIO: {}",
        mine.describe()
    );
    assert_eq!(
        keep_lines(&theirs.stdout, drop),
        keep_lines(&mine.stdout, drop),
        "{name}: observable behaviour on {engine} differs (left: Debian's libaio over kernel AIO, right: ours)"
    );
}

fn run_ctest(name: &str) {
    let prog = Path::new(env!("LIBAIO_RS_CTESTS_DIR")).join(name);
    let Some(reference) = reference(name) else {
        return;
    };
    let ours = ours();
    let theirs = run_with(&prog, &reference, &format!("{name}-debian"));
    let mine = run_with(&prog, &ours, &format!("{name}-ours"));
    for (who, lib, o) in [("Debian's libaio", &reference, &theirs), ("ours", &ours, &mine)] {
        o.assert_loaded(&format!("{name} with {who}"), lib);
        assert_eq!(o.code, Some(0), "{name} failed with {who}: {}", o.describe());
    }
    assert_eq!(
        theirs.stdout, mine.stdout,
        "{name}: observable behaviour differs (left: Debian's libaio, right: ours)"
    );
    assert!(!mine.stdout.is_empty(), "{name} printed no observation");
}

include!(concat!(env!("OUT_DIR"), "/ctests_list.rs"));
