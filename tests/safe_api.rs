//! The safe API on every engine: every operation, errors typed as the
//! engine answers them, exactly-once delivery among threads, and teardown
//! with requests in flight (drop, panic, mem::forget).
#![cfg(feature = "std")]

use libaio::{AlignedBuf, Completion, Context, Engine, Request, RwFlags};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Every engine the tests run on.
fn engines() -> Vec<Engine> {
    vec![Engine::Kernel, Engine::Threads, Engine::IoUring, Engine::Auto]
}

const T: Option<Duration> = Some(Duration::from_secs(10));

/// A scratch file opened with O_DIRECT where some directory allows it
/// (tmpfs does since Linux 6.6), else without.
struct Scratch {
    path: PathBuf,
    file: Arc<File>,
    direct: bool,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn scratch(tag: &str) -> Scratch {
    static N: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "libaio-safe-{}-{}-{}",
        std::process::id(),
        tag,
        N.fetch_add(1, Ordering::Relaxed)
    );
    let dirs = [
        std::env::temp_dir(),
        PathBuf::from("/dev/shm"),
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")),
    ];
    for direct in [true, false] {
        for d in &dirs {
            let path = d.join(&name);
            let mut o = OpenOptions::new();
            o.read(true).write(true).create(true).truncate(true);
            if direct {
                o.custom_flags(libc::O_DIRECT);
            }
            if let Ok(f) = o.open(&path) {
                return Scratch {
                    path,
                    file: Arc::new(f),
                    direct,
                };
            }
        }
    }
    panic!("no directory for a scratch file");
}

/// Submits one request and waits for it: the submission's error or the
/// completion's result, with the request back.
fn run<B: libaio::IoBuf>(ctx: &Context<B>, req: Request<B>) -> (io::Result<usize>, Request<B>) {
    match ctx.submit(req) {
        Err(e) => {
            let (e, r) = e.into_parts();
            (Err(e), r)
        }
        Ok(()) => {
            let mut c = ctx.wait(1, 1, T).unwrap();
            assert_eq!(c.len(), 1, "completion within the timeout");
            let c = c.pop().unwrap();
            (c.result, c.request)
        }
    }
}

fn filled(len: usize, seed: u8) -> AlignedBuf {
    let mut b = AlignedBuf::new(len).unwrap();
    for (i, x) in b.iter_mut().enumerate() {
        *x = seed.wrapping_add((i / 7) as u8);
    }
    b
}

/// A socket pair whose first end is always readable (a byte is never taken out).
fn ready_pipe() -> (Arc<UnixStream>, Arc<UnixStream>) {
    let (r, mut w) = UnixStream::pair().unwrap();
    w.write_all(b"x").unwrap();
    (Arc::new(r), Arc::new(w))
}

#[test]
fn every_operation_on_every_engine() {
    for engine in engines() {
        let ctx: Context = Context::with_engine(8, engine).unwrap();
        let s = scratch("ops");
        let f = &s.file;

        // write, with an RWF flag, then read back
        let (r, req) = run(
            &ctx,
            Request::write(f, filled(8192, 1), 0).with_flags(RwFlags::DSYNC),
        );
        assert_eq!(r.unwrap(), 8192, "{engine:?} write");
        let written = req.into_buf().unwrap();
        let (r, req) = run(&ctx, Request::read(f, AlignedBuf::new(8192).unwrap(), 0));
        assert_eq!(r.unwrap(), 8192, "{engine:?} read");
        assert_eq!(&req.into_buf().unwrap()[..], &written[..], "{engine:?} read data");

        // vectored write and read, with a flag
        let (r, _) = run(
            &ctx,
            Request::writev(f, vec![filled(4096, 7), filled(512, 9)], 8192),
        );
        assert_eq!(r.unwrap(), 4608, "{engine:?} writev");
        let bufs = vec![AlignedBuf::new(512).unwrap(), AlignedBuf::new(4096).unwrap()];
        let (r, req) = run(&ctx, Request::readv(f, bufs, 8192).with_flags(RwFlags::HIPRI));
        assert_eq!(r.unwrap(), 4608, "{engine:?} readv");
        let back = req.into_bufs();
        assert_eq!(&back[0][..], &filled(4096, 7)[..512]);
        assert_eq!(&back[1][..3584], &filled(4096, 7)[512..]);
        assert_eq!(&back[1][3584..], &filled(512, 9)[..]);

        // syncs
        assert_eq!(run(&ctx, Request::fsync(f)).0.unwrap(), 0, "{engine:?} fsync");
        assert_eq!(run(&ctx, Request::fdsync(f)).0.unwrap(), 0, "{engine:?} fdsync");

        // poll, ready at once and ready later
        let (rd, _w) = ready_pipe();
        let (r, _) = run(&ctx, Request::poll(&rd, libc::POLLIN));
        assert_eq!(r.unwrap(), libc::POLLIN as usize, "{engine:?} poll");
        let (rd, wr) = UnixStream::pair().unwrap();
        ctx.submit(Request::poll(&Arc::new(rd), libc::POLLIN).with_user_data(77))
            .unwrap();
        assert!(ctx
            .wait(1, 1, Some(Duration::from_millis(50)))
            .unwrap()
            .is_empty());
        (&wr).write_all(b"y").unwrap();
        let c = ctx.wait(1, 1, T).unwrap().pop().unwrap();
        assert_eq!(c.user_data, 77);
        // The waker's mask: POLLIN, maybe with POLLRDNORM.
        assert_ne!(c.result.unwrap() & libc::POLLIN as usize, 0, "{engine:?}");

        // The 8 requests so far each signalled the eventfd too, just after
        // its event reached the ring (a signal may land after the reap).
        let (mut earlier, t0) = (0, Instant::now());
        while earlier < 8 && t0.elapsed() < Duration::from_secs(5) {
            earlier += ctx.clear_ready().unwrap();
        }
        assert_eq!(
            earlier, 8,
            "{engine:?}: every earlier request signalled the eventfd"
        );

        // a batch: all taken, all reaped once, the eventfd counted them
        let mut batch: Vec<_> = (0..8)
            .map(|i| Request::read(f, AlignedBuf::new(4096).unwrap(), (i % 3) * 4096).with_user_data(i))
            .collect();
        assert_eq!(ctx.submit_batch(&mut batch).unwrap(), 8, "{engine:?} batch");
        assert!(batch.is_empty());
        let mut done: Vec<Completion<AlignedBuf>> = Vec::new();
        while done.len() < 8 {
            ctx.wait_into(1, 8, T, &mut done).unwrap();
        }
        let mut ids: Vec<u64> = done.iter().map(|c| c.user_data).collect();
        ids.sort();
        assert_eq!(ids, (0..8).collect::<Vec<_>>());
        assert!(done.iter().all(|c| *c.result.as_ref().unwrap() == 4096));
        // Every request signals the eventfd, just after its event is in the ring
        // (so a reader may see the event first: the count can lag a moment).
        let (mut count, t0) = (0, Instant::now());
        while count < 8 && t0.elapsed() < Duration::from_secs(5) {
            count += ctx.clear_ready().unwrap();
        }
        assert_eq!(count, 8, "{engine:?}: every request signalled the eventfd");
        assert_eq!(ctx.clear_ready().unwrap(), 0);
        assert_eq!(ctx.in_flight(), 0);

        // cancel a poll that would never complete
        let (rd, _wr) = UnixStream::pair().unwrap();
        ctx.submit(Request::poll(&Arc::new(rd), libc::POLLIN).with_user_data(5))
            .unwrap();
        assert_eq!(ctx.cancel(5).unwrap(), 1, "{engine:?} cancel");
        let c = ctx.wait(1, 1, T).unwrap().pop().unwrap();
        assert_eq!(c.user_data, 5);
        assert_eq!(ctx.cancel(5).unwrap(), 0, "nothing left to cancel");
    }
}

#[test]
fn plain_vec_buffers_on_every_engine() {
    for engine in engines() {
        let ctx: Context<Vec<u8>> = Context::with_engine(4, engine).unwrap();
        let (rd, wr) = UnixStream::pair().unwrap();
        let (rd, wr) = (Arc::new(rd), Arc::new(wr));
        let (r, _) = run(&ctx, Request::write(&wr, b"hello".to_vec(), 0));
        assert_eq!(r.unwrap(), 5, "{engine:?}");
        let (r, req) = run(&ctx, Request::read(&rd, vec![0; 16], 0));
        assert_eq!(r.unwrap(), 5, "{engine:?}");
        assert_eq!(&req.into_buf().unwrap()[..5], b"hello");
    }
}

#[test]
fn errors_are_typed() {
    for engine in engines() {
        let ctx: Context<Vec<u8>> = Context::with_engine(2, engine).unwrap();
        let s = scratch("err");
        let ro = Arc::new(File::open(&s.path).unwrap());
        // A descriptor not open for writing: EBADF, request given back.
        let e = ctx.submit(Request::write(&ro, vec![1; 512], 0)).unwrap_err();
        assert_eq!(e.error().raw_os_error(), Some(libc::EBADF), "{engine:?}");
        assert_eq!(e.into_request().into_buf().unwrap().len(), 512);
        // Flags no kernel knows: EOPNOTSUPP.
        let bad = RwFlags::from_bits(1 << 30);
        let (r, _) = run(&ctx, Request::read(&ro, vec![0; 512], 0).with_flags(bad));
        assert_eq!(
            r.unwrap_err().raw_os_error(),
            Some(libc::EOPNOTSUPP),
            "{engine:?}"
        );
        // min > max.
        assert_eq!(ctx.wait(2, 1, T).unwrap_err().raw_os_error(), Some(libc::EINVAL));

        // Misaligned O_DIRECT: EINVAL, at submission or in the completion.
        if s.direct {
            let dctx: Context = Context::with_engine(2, engine).unwrap();
            // Data to read (a read past the end would answer 0 first).
            let (r, _) = run(&dctx, Request::write(&s.file, filled(8192, 3), 0));
            assert_eq!(r.unwrap(), 8192);
            let (r, _) = run(&dctx, Request::read(&s.file, AlignedBuf::new(4096).unwrap(), 100));
            assert_eq!(
                r.unwrap_err().raw_os_error(),
                Some(libc::EINVAL),
                "{engine:?} offset"
            );
            let odd = vec![0u8; 100];
            let (r, _) = run(&ctx, Request::write(&s.file, odd, 0));
            assert_eq!(
                r.unwrap_err().raw_os_error(),
                Some(libc::EINVAL),
                "{engine:?} length"
            );
        }

        // A full queue: EAGAIN, for one request and for a batch.
        let (rd, _wr) = UnixStream::pair().unwrap();
        let rd = Arc::new(rd);
        let mut two = vec![
            Request::poll(&rd, libc::POLLIN).with_user_data(1),
            Request::poll(&rd, libc::POLLIN).with_user_data(1),
        ];
        assert_eq!(ctx.submit_batch(&mut two).unwrap(), 2);
        let e = ctx.submit(Request::poll(&rd, libc::POLLIN)).unwrap_err();
        assert_eq!(e.error().raw_os_error(), Some(libc::EAGAIN), "{engine:?}");
        let mut more = vec![Request::poll(&rd, libc::POLLIN)];
        assert_eq!(
            ctx.submit_batch(&mut more).unwrap_err().raw_os_error(),
            Some(libc::EAGAIN)
        );
        assert_eq!(more.len(), 1, "the refused request stays with the caller");
        assert_eq!(ctx.cancel(1).unwrap(), 2);
        let mut got = 0;
        while got < 2 {
            got += ctx.wait(1, 2, T).unwrap().len();
        }
        assert_eq!(ctx.submit_batch(&mut more).unwrap(), 1, "room again");
    }
    // Contexts that cannot be.
    assert_eq!(
        Context::<Vec<u8>>::new(0).unwrap_err().raw_os_error(),
        Some(libc::EINVAL)
    );
}

#[test]
fn a_partial_batch_is_reported() {
    for engine in engines() {
        let ctx: Context<Vec<u8>> = Context::with_engine(4, engine).unwrap();
        let (rd, _w) = ready_pipe();
        let s = scratch("partial");
        let ro = Arc::new(File::open(&s.path).unwrap());
        // The third is refused by the engine (EBADF): two taken, two left.
        let mut reqs = vec![
            Request::poll(&rd, libc::POLLIN).with_user_data(0),
            Request::poll(&rd, libc::POLLIN).with_user_data(1),
            Request::write(&ro, vec![0; 8], 0).with_user_data(2),
            Request::poll(&rd, libc::POLLIN).with_user_data(3),
        ];
        assert_eq!(ctx.submit_batch(&mut reqs).unwrap(), 2, "{engine:?}");
        assert_eq!(reqs.iter().map(|r| r.user_data()).collect::<Vec<_>>(), [2, 3]);
        let e = ctx.submit_batch(&mut reqs).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EBADF));
        assert_eq!(reqs.len(), 2);
        let mut got = 0;
        while got < 2 {
            got += ctx.wait(1, 4, T).unwrap().len();
        }
    }
}

#[test]
fn exactly_once_among_threads() {
    const THREADS: usize = 4;
    const EACH: usize = 2000;
    for engine in engines() {
        let ctx: Context<Vec<u8>> = Context::with_engine(32, engine).unwrap();
        let zero = Arc::new(File::open("/dev/zero").unwrap());
        let (rd, _w) = ready_pipe();
        let seen: Vec<AtomicU8> = (0..THREADS * EACH).map(|_| AtomicU8::new(0)).collect();
        let reaped = AtomicUsize::new(0);
        let start = Instant::now();
        std::thread::scope(|sc| {
            for t in 0..THREADS {
                let (ctx, zero, rd, seen, reaped) = (&ctx, &zero, &rd, &seen, &reaped);
                sc.spawn(move || {
                    let mut next = 0;
                    let mut out = Vec::new();
                    while reaped.load(Ordering::Relaxed) < THREADS * EACH {
                        assert!(start.elapsed() < Duration::from_secs(60), "stuck");
                        if next < EACH {
                            let id = (t * EACH + next) as u64;
                            let req = if next % 2 == 0 {
                                Request::read(zero, vec![1; 64], 0)
                            } else {
                                Request::poll(rd, libc::POLLIN)
                            };
                            match ctx.submit(req.with_user_data(id)) {
                                Ok(()) => next += 1,
                                Err(e) => assert_eq!(e.error().raw_os_error(), Some(libc::EAGAIN)),
                            }
                        }
                        out.clear();
                        let min = usize::from(next == EACH);
                        ctx.wait_into(min, 8, Some(Duration::from_millis(5)), &mut out)
                            .unwrap();
                        for c in &out {
                            assert!(c.result.is_ok());
                            seen[c.user_data as usize].fetch_add(1, Ordering::Relaxed);
                        }
                        reaped.fetch_add(out.len(), Ordering::Relaxed);
                    }
                });
            }
        });
        let wrong: Vec<usize> = (0..seen.len())
            .filter(|&i| seen[i].load(Ordering::Relaxed) != 1)
            .collect();
        assert!(
            wrong.is_empty(),
            "{engine:?}: not delivered exactly once: {wrong:?}"
        );
        assert_eq!(ctx.in_flight(), 0);
    }
}

/// Requests still in flight when the context goes: drop waits for them
/// (their buffers are freed after), a panic drops it the same way, and
/// mem::forget leaks it all.
#[test]
fn teardown_with_requests_in_flight() {
    for engine in engines() {
        let s = scratch("drop");
        let (rd, _wr) = UnixStream::pair().unwrap();
        let rd = Arc::new(rd);
        for how in 0..3 {
            let body = || {
                let ctx: Context = Context::with_engine(16, engine).unwrap();
                for i in 0..8 {
                    ctx.submit(Request::write(&s.file, filled(4096, i), u64::from(i) * 4096))
                        .unwrap();
                }
                ctx.submit(Request::poll(&rd, libc::POLLIN)).unwrap(); // never ready
                match how {
                    0 => drop(ctx),
                    1 => panic!("user code panics between submit and wait"),
                    _ => std::mem::forget(ctx),
                }
            };
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
            assert_eq!(r.is_err(), how == 1);
        }
        // The file holds what was written before the context went.
        let ctx: Context = Context::with_engine(1, engine).unwrap();
        let (r, req) = run(
            &ctx,
            Request::read(&s.file, AlignedBuf::new(4096).unwrap(), 7 * 4096),
        );
        assert_eq!(r.unwrap(), 4096);
        assert_eq!(&req.into_buf().unwrap()[..], &filled(4096, 7)[..]);
        // The forgotten context still holds its poll's file.
        assert!(Arc::strong_count(&rd) >= 2);
    }
}
