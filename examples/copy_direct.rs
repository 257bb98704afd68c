//! Copies a file with O_DIRECT reads and writes, 32 requests in flight,
//! through the safe API, then verifies the copy byte for byte.
//!
//!     cargo run --features std --example copy_direct -- SRC DST [ENGINE]
//!     cargo run --features std --example copy_direct        (a scratch file of its own)
//!     cargo run --features std --example copy_direct -- --help
//!
//! ENGINE: auto (default: what LIBAIO_RS_ENGINE says), kernel, threads or
//! io_uring. It prints the engine the context got. No `unsafe` here.

use libaio::{AlignedBuf, Context, Engine, Request};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

const QD: usize = 32;
const BLOCK: usize = 64 << 10;
/// user_data: the block's offset, with this bit for writes.
const WRITE: u64 = 1 << 63;

const USAGE: &str = "usage: copy_direct [SRC DST [ENGINE]]
  Copies SRC to DST with O_DIRECT reads and writes, 32 requests in flight,
  and verifies the copy; with no SRC and DST, copies a scratch file of its own.
  ENGINE: auto (default: what LIBAIO_RS_ENGINE says, kernel AIO when unset),
  kernel, threads or io_uring.";

/// `e`, with the file it concerns named.
fn about(path: &Path, what: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {what}: {e}", path.display()))
}

/// Copies `src` to `dst`; the bytes copied and the engine that did it.
fn copy(src: &Path, dst: &Path, engine: Engine) -> io::Result<(u64, Engine)> {
    let input = Arc::new(
        OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECT)
            .open(src)
            .map_err(|e| about(src, "cannot open for O_DIRECT reading", e))?,
    );
    let output = Arc::new(
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_DIRECT)
            .open(dst)
            .map_err(|e| about(dst, "cannot open for O_DIRECT writing", e))?,
    );
    let size = input.metadata()?.len();
    let ctx: Context = Context::with_engine(QD, engine).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot set up a context on engine {engine}: {e}"),
        )
    })?;
    let got = ctx.engine();

    let mut next = 0u64; // next offset to read
    let mut spare: Vec<AlignedBuf> = (0..QD)
        .map(|_| AlignedBuf::new(BLOCK))
        .collect::<io::Result<_>>()?;
    let mut to_submit = Vec::with_capacity(QD);
    let mut done = Vec::with_capacity(QD);
    let mut written = 0u64;
    while written < size {
        // Reads into every free buffer.
        while next < size {
            let Some(buf) = spare.pop() else { break };
            to_submit.push(Request::read(&input, buf, next).with_user_data(next));
            next += BLOCK as u64;
        }
        while !to_submit.is_empty() {
            ctx.submit_batch(&mut to_submit)?;
        }
        done.clear();
        ctx.wait_into(1, QD, None, &mut done)?;
        for c in done.drain(..) {
            let n = c.result.map_err(|e| {
                let (path, op) = if c.user_data & WRITE != 0 {
                    (dst, "write")
                } else {
                    (src, "read")
                };
                about(path, &format!("{op} at offset {}", c.user_data & !WRITE), e)
            })?;
            let off = c.user_data & !WRITE;
            if c.user_data & WRITE != 0 {
                // Whole blocks are written; the last one's excess is cut below.
                written += (n as u64).min(size - off);
                spare.push(
                    c.request
                        .into_buf()
                        .ok_or_else(|| io::Error::other("no buffer"))?,
                );
            } else if n < BLOCK && off + (n as u64) < size {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "short read"));
            } else {
                let buf = c
                    .request
                    .into_buf()
                    .ok_or_else(|| io::Error::other("no buffer"))?;
                to_submit.push(Request::write(&output, buf, off).with_user_data(off | WRITE));
            }
        }
    }
    drop(ctx);
    output.set_len(size)?;
    Ok((size, got))
}

fn same(a: &Path, b: &Path) -> io::Result<bool> {
    let (mut a, mut b) = (File::open(a)?, File::open(b)?);
    if a.metadata()?.len() != b.metadata()?.len() {
        return Ok(false);
    }
    let (mut x, mut y) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = a.read(&mut x)?;
        if n == 0 {
            return Ok(true);
        }
        b.read_exact(&mut y[..n])?;
        if x[..n] != y[..n] {
            return Ok(false);
        }
    }
}

/// A directory whose filesystem takes O_DIRECT (tmpfs does since Linux 6.6).
fn scratch_dir() -> PathBuf {
    for d in [std::env::temp_dir(), PathBuf::from("/dev/shm")] {
        let probe = d.join(format!("copy_direct-probe-{}", std::process::id()));
        let ok = OpenOptions::new()
            .write(true)
            .create(true)
            .custom_flags(libc::O_DIRECT)
            .open(&probe)
            .is_ok();
        let _ = std::fs::remove_file(&probe);
        if ok {
            return d;
        }
    }
    std::env::temp_dir()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    if args.len() == 1 || args.len() > 3 || args.iter().any(|a| a.starts_with('-')) {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    }
    let engine = match args.get(2).map(String::as_str) {
        None | Some("auto") => Engine::Auto,
        Some("kernel") => Engine::Kernel,
        Some("threads") => Engine::Threads,
        Some("io_uring") => Engine::IoUring,
        Some(e) => {
            eprintln!("copy_direct: no engine {e:?}: the engines are auto, kernel, threads and io_uring");
            return ExitCode::from(2);
        }
    };
    match run(&args, engine) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("copy_direct: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String], engine: Engine) -> io::Result<()> {
    let (src, dst, own) = if args.len() >= 2 {
        (PathBuf::from(&args[0]), PathBuf::from(&args[1]), false)
    } else {
        // 8 MiB and a tail that is no multiple of the block size.
        let dir = scratch_dir();
        let src = dir.join(format!("copy_direct-src-{}", std::process::id()));
        let mut f = File::create(&src).map_err(|e| about(&src, "cannot create", e))?;
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let data: Vec<u8> = (0..(8 << 20) + 1234)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        f.write_all(&data).map_err(|e| about(&src, "cannot write", e))?;
        (src.clone(), src.with_extension("copy"), true)
    };
    let result = copy(&src, &dst, engine).and_then(|r| Ok((r, same(&src, &dst)?)));
    if own {
        let _ = std::fs::remove_file(&src);
        let _ = std::fs::remove_file(&dst);
    }
    let ((n, got), ok) = result?;
    if !ok {
        return Err(io::Error::other(format!(
            "{} differs from {}",
            dst.display(),
            src.display()
        )));
    }
    println!("copied {n} bytes with O_DIRECT at QD {QD} on engine {got} (asked: {engine}): verified");
    Ok(())
}
