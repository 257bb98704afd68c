//! Writes libaio.h from the Rust definitions with cbindgen.
//!
//! The header always goes to `$OUT_DIR/libaio.h`; `tests/header.rs` fails when
//! the committed `include/libaio.h` differs from it. With
//! `LIBAIO_RS_WRITE_HEADER=1` (`make header`) it is also written to
//! `include/libaio.h`.

use std::env;
use std::fs;
use std::path::PathBuf;

fn main() {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    for p in ["src", "cbindgen.toml", "build.rs"] {
        println!("cargo:rerun-if-changed={p}");
    }
    println!("cargo:rerun-if-env-changed=LIBAIO_RS_WRITE_HEADER");

    let mut config = cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml parses");
    let helpers = fs::read_to_string(root.join("src/capi/inline.h")).expect("src/capi/inline.h is readable");
    config.trailer = Some(helpers);
    let header = out.join("libaio.h");
    let mut text = Vec::new();
    cbindgen::Builder::new()
        .with_crate(&root)
        .with_config(config)
        .generate()
        .expect("cbindgen generates libaio.h")
        .write(&mut text);
    let text = String::from_utf8(text).expect("cbindgen writes UTF-8");
    fs::write(&header, fold_conditional_semicolons(&text)).expect("OUT_DIR is writable");
    if env::var_os("LIBAIO_RS_WRITE_HEADER").is_some_and(|v| v == "1") {
        fs::copy(&header, root.join("include/libaio.h")).expect("include/libaio.h is writable");
    }
    println!("cargo:rustc-env=LIBAIO_RS_GENERATED_HEADER={}", header.display());
}

/// cbindgen writes a field under `#if` as `#if C / type name / #endif / ;`,
/// which leaves a lone `;` in the struct where the condition is false (an
/// error under `-pedantic-errors`). Moves each such `;` back onto its field.
fn fold_conditional_semicolons(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out: Vec<String> = Vec::with_capacity(lines.len());
    let mut i = 0;
    while i < lines.len() {
        let lone_semicolon = lines.get(i + 1).is_some_and(|next| next.trim() == ";");
        if lines[i].trim() == "#endif" && lone_semicolon {
            if let Some(field) = out.last_mut() {
                field.push(';');
            }
            out.push(lines[i].to_string());
            i += 2;
            continue;
        }
        out.push(lines[i].to_string());
        i += 1;
    }
    out.join("\n") + "\n"
}
