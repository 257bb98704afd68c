//! `include/libaio.h` is generated from the Rust definitions by build.rs
//! (cbindgen) and committed. This test fails while the committed file differs
//! from what build.rs generates now; `make header` rewrites it.

use std::fs;
use std::path::Path;

#[test]
fn committed_header_is_the_generated_one() {
    let generated_path = env!("LIBAIO_RS_GENERATED_HEADER");
    let committed_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("include/libaio.h");
    let generated = fs::read_to_string(generated_path)
        .unwrap_or_else(|e| panic!("cannot read the generated header {generated_path}: {e}"));
    let committed = fs::read_to_string(&committed_path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}; run `make header` to write it",
            committed_path.display()
        )
    });
    if committed == generated {
        return;
    }
    let mut committed_lines = committed.lines();
    let mut generated_lines = generated.lines();
    let mut line = 1;
    let (was, now) = loop {
        match (committed_lines.next(), generated_lines.next()) {
            (Some(a), Some(b)) if a == b => line += 1,
            (a, b) => break (a.unwrap_or("<end of file>"), b.unwrap_or("<end of file>")),
        }
    };
    panic!(
        "include/libaio.h is stale: it differs from the header build.rs generates \
         ({generated_path}) from line {line} on:\n  include/libaio.h: {was}\n  generated:        {now}\n\
         Run `make header` and commit include/libaio.h."
    );
}
