//! Runs every program of the C conformance suite (`ctests/*.c`) twice, against
//! Debian's libaio 0.3.113 and against ours, and requires the same stdout and
//! a clean exit from both. Each run checks which libaio the process really
//! loaded, so a misconfigured run cannot pass by testing one library twice.
//! (The cases where the two deliberately differ are in `tests/differences.rs`.)

mod ctests_support;

use ctests_support::{ours, reference, run_with};
use std::path::Path;

fn run_ctest(name: &str) {
    let prog = Path::new(env!("LIBAIO_RS_CTESTS_DIR")).join(name);
    let (reference, ours) = (reference(), ours());
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
