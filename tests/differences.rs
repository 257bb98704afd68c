//! The documented differences between ours and libaio 0.3.113, each run
//! against both libraries: the programs in `ctests/differ/` (see the comment
//! at the top of each) cannot be in the side-by-side suite because the two
//! libraries must not agree. Here each library must do exactly what is
//! written for it, typically: Debian's crashes with SIGSEGV at the marked call
//! (its stdout stops just before it), ours returns the kernel's answer.

mod ctests_support;

use ctests_support::{ours, reference, run_with, Outcome};
use std::path::Path;

/// What one library must do with one program.
enum Want {
    /// Killed by this signal after printing exactly this.
    Signal(i32, &'static str),
    /// Exits 0 after printing exactly this.
    Prints(&'static str),
}

/// Every program in `ctests/differ/`, with what Debian's libaio and ours must do.
const CASES: &[(&str, Want, Want)] = &[
    (
        "garbage_ctx",
        Want::Signal(libc::SIGSEGV, "calling io_getevents(garbage ctx, {0,0})\n"),
        Want::Prints(
            "calling io_getevents(garbage ctx, {0,0})\n\
             io_getevents(garbage ctx, {0,0}) = -EINVAL\n\
             io_getevents(garbage ctx, NULL) = -EINVAL\n\
             io_pgetevents(garbage ctx, {0,0}) = -EINVAL\n\
             io_queue_run(garbage ctx) = -EINVAL\n\
             io_queue_wait(garbage ctx) = -EINVAL\n",
        ),
    ),
    (
        "destroyed_ctx",
        Want::Signal(
            libc::SIGSEGV,
            "io_destroy = 0\ncalling io_getevents(destroyed ctx, {0,0})\n",
        ),
        Want::Prints(
            "io_destroy = 0\n\
             calling io_getevents(destroyed ctx, {0,0})\n\
             io_getevents(destroyed ctx, {0,0}) = -EINVAL\n\
             io_getevents(destroyed ctx, NULL) = -EINVAL\n\
             io_pgetevents(destroyed ctx, NULL) = -EINVAL\n\
             io_queue_run(destroyed ctx) = -EINVAL\n",
        ),
    ),
    (
        "null_callback",
        Want::Signal(libc::SIGSEGV, "calling io_queue_run with a NULL callback first\n"),
        Want::Prints(
            "calling io_queue_run with a NULL callback first\n\
             io_queue_run = 0\n\
             callbacks called: 1\n\
             io_queue_release = 0\n",
        ),
    ),
    (
        "fork_zero_timeout",
        Want::Prints(
            "child: io_getevents(parent's ctx, empty, {0,0}) = 0\n\
             child: io_pgetevents(parent's ctx, empty, {0,0}) = 0\n\
             child: io_queue_run(parent's ctx, empty) = 0\n\
             child: io_queue_wait(parent's ctx, {0,0}) = 0\n\
             parent: io_destroy = 0\n",
        ),
        Want::Prints(
            "child: io_getevents(parent's ctx, empty, {0,0}) = -EINVAL\n\
             child: io_pgetevents(parent's ctx, empty, {0,0}) = -EINVAL\n\
             child: io_queue_run(parent's ctx, empty) = -EINVAL\n\
             child: io_queue_wait(parent's ctx, {0,0}) = -EINVAL\n\
             parent: io_destroy = 0\n",
        ),
    ),
    (
        "exported_helpers",
        Want::Prints(
            "io_prep_pread: absent\n\
             io_prep_pwrite: absent\n\
             io_prep_preadv: absent\n\
             io_prep_pwritev: absent\n\
             io_prep_preadv2: absent\n\
             io_prep_pwritev2: absent\n\
             io_prep_poll: absent\n\
             io_prep_fsync: absent\n\
             io_prep_fdsync: absent\n\
             io_set_callback: absent\n\
             io_set_eventfd: absent\n\
             io_poll: absent\n\
             io_fsync: absent\n\
             io_fdsync: absent\n",
        ),
        Want::Prints(
            "io_prep_pread: exported, same iocb as the inline helper: yes\n\
             io_prep_pwrite: exported, same iocb as the inline helper: yes\n\
             io_prep_preadv: exported, same iocb as the inline helper: yes\n\
             io_prep_pwritev: exported, same iocb as the inline helper: yes\n\
             io_prep_preadv2: exported, same iocb as the inline helper: yes\n\
             io_prep_pwritev2: exported, same iocb as the inline helper: yes\n\
             io_prep_poll: exported, same iocb as the inline helper: yes\n\
             io_prep_fsync: exported, same iocb as the inline helper: yes\n\
             io_prep_fdsync: exported, same iocb as the inline helper: yes\n\
             io_set_callback: exported, same iocb as the inline helper: yes\n\
             io_set_eventfd: exported, same iocb as the inline helper: yes\n\
             io_poll: exported = 1, event res=0x1 data-ok=1\n\
             io_fsync: exported = 1, opcode 2, event res=0\n\
             io_fdsync: exported = 1, opcode 3, event res=0\n",
        ),
    ),
];

fn check(name: &str, who: &str, lib: &Path, o: &Outcome, want: &Want) {
    let what = format!("{name} with {who}");
    o.assert_loaded(&what, lib);
    match *want {
        Want::Signal(sig, stdout) => {
            assert_eq!(
                o.signal,
                Some(sig),
                "{what}: expected signal {sig}; {}",
                o.describe()
            );
            assert_eq!(o.stdout, stdout, "{what}: stdout");
        }
        Want::Prints(stdout) => {
            assert_eq!(o.code, Some(0), "{what}: expected exit 0; {}", o.describe());
            assert_eq!(o.stdout, stdout, "{what}: stdout");
        }
    }
}

fn run_difference(name: &str) {
    let (_, debian, mine) = CASES
        .iter()
        .find(|(n, _, _)| *n == name)
        .unwrap_or_else(|| panic!("no expectations for {name}"));
    let prog = Path::new(env!("LIBAIO_RS_CTESTS_DIFFER_DIR")).join(name);
    let ours = ours();
    // Without Debian's library, ours is still held to its side of the difference.
    if let Some(reference) = reference(&format!("{name} (Debian's side)")) {
        let theirs = run_with(&prog, &reference, &format!("differ-{name}-debian"));
        check(name, "Debian's libaio", &reference, &theirs, debian);
    }
    let o = run_with(&prog, &ours, &format!("differ-{name}-ours"));
    check(name, "ours", &ours, &o, mine);
}

#[test]
fn every_program_has_expectations() {
    let list = include_str!(concat!(env!("OUT_DIR"), "/ctests_differ_list.txt"));
    let built: Vec<&str> = list.lines().collect();
    let mut known: Vec<&str> = CASES.iter().map(|(n, _, _)| *n).collect();
    known.sort_unstable();
    assert_eq!(
        built, known,
        "ctests/differ/*.c and CASES in tests/differences.rs disagree"
    );
}

#[test]
fn garbage_ctx() {
    run_difference("garbage_ctx");
}

#[test]
fn destroyed_ctx() {
    run_difference("destroyed_ctx");
}

#[test]
fn null_callback() {
    run_difference("null_callback");
}

#[test]
fn fork_zero_timeout() {
    run_difference("fork_zero_timeout");
}

#[test]
fn exported_helpers() {
    run_difference("exported_helpers");
}
