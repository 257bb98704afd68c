//! The safe Rust API against the C entry points, in one process (bench/run.sh,
//! group `safe`). Both sides run this crate's code: the C side calls
//! `io_setup`/`io_submit`/`io_getevents` with iocbs it fills itself, as
//! bench/aiobench.c does; the safe side does the same work with `Context`
//! and `Request` (table, tokens, eventfd on every request, buffers moved in
//! and out). They take turns in slices of 50 ms, each on its own context, so
//! both meet the same machine at the same moments.
//!
//!     safe_bench poll BATCH        [-t SECONDS] [-f safe|c] [-e 1]
//!     safe_bench read QD FILE      [-t SECONDS] [-f safe|c] [-e 1]
//!
//! poll: IO_CMD_POLL on an always-readable descriptor (completes inside
//! io_submit), a batch submitted then reaped; read: random 4 KiB O_DIRECT
//! reads of FILE with QD in flight, reaping at least one and resubmitting as
//! many. -f: which side runs first. -e 1: the C side's requests signal an
//! eventfd too (IOCB_FLAG_RESFD), as the safe API's always do, so that both
//! sides ask the same of the kernel and the difference is the safe layer's
//! own. Prints
//! "c_ns_per_op=X safe_ns_per_op=Y c_ops=N safe_ops=M".

use libaio::abi::{io_context_t, io_event, iocb};
use libaio::capi::io::{io_destroy, io_getevents, io_setup, io_submit};
use libaio::{AlignedBuf, Completion, Context, IoBuf, Request};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

const BS: usize = 4096;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Work {
    Poll,
    Read,
}

trait Side {
    fn work(&self) -> Work;
    /// One batch of polls submitted and reaped; the operations done.
    fn poll_round(&mut self) -> u64;
    /// Reaps what has completed (at least one), resubmitting it if asked.
    fn read_round(&mut self, resubmit: bool) -> u64;
    /// Submits every read (at a fresh random offset).
    fn start_reads(&mut self);
    fn in_flight(&self) -> usize;

    /// One slice of `d`, left with nothing in flight; the operations done.
    fn slice(&mut self, d: Duration) -> u64 {
        let end = Instant::now() + d;
        if self.work() == Work::Poll {
            return until(end, || self.poll_round());
        }
        self.start_reads();
        let mut ops = until(end, || self.read_round(true));
        while self.in_flight() > 0 {
            ops += self.read_round(false);
        }
        ops
    }
}

fn fail(what: &str, r: i64) -> ! {
    eprintln!("safe_bench: {what} = {r}");
    std::process::exit(2);
}

/// The C entry points, driven as bench/aiobench.c drives them.
struct CSide {
    ctx: io_context_t,
    work: Work,
    n: usize,
    fd: i32,
    blocks: u64,
    rng: Rng,
    cbs: Vec<iocb>,
    cbp: Vec<*mut iocb>,
    evs: Vec<io_event>,
    bufs: Vec<AlignedBuf>,
    inflight: usize,
    /// The eventfd every request signals (-e 1), or -1.
    efd: i32,
    _efd: Option<OwnedFd>,
}

impl CSide {
    fn new(work: Work, n: usize, fd: i32, blocks: u64, efd: Option<OwnedFd>) -> Self {
        let mut ctx: io_context_t = std::ptr::null_mut();
        // SAFETY: a fresh, zeroed handle of our own.
        let r = unsafe { io_setup(n as i32, &mut ctx) };
        if r != 0 {
            fail("io_setup", r.into());
        }
        let mut s = Self {
            ctx,
            work,
            n,
            fd,
            blocks,
            rng: Rng(0x9e37_79b9_7f4a_7c15),
            cbs: vec![iocb::zeroed(); n],
            cbp: vec![std::ptr::null_mut(); n],
            evs: vec![io_event::zeroed(); n],
            bufs: Vec::new(),
            inflight: 0,
            efd: efd.as_ref().map_or(-1, |f| f.as_raw_fd()),
            _efd: efd,
        };
        if work == Work::Poll {
            for i in 0..n {
                s.cbs[i].prep_poll(fd, libc::POLLIN.into());
                if s.efd >= 0 {
                    s.cbs[i].set_eventfd(s.efd);
                }
            }
        } else {
            s.bufs = (0..n).map(|_| AlignedBuf::new(BS).unwrap()).collect();
        }
        for i in 0..n {
            s.cbp[i] = &raw mut s.cbs[i];
        }
        s
    }

    fn prep_read(&mut self, i: usize) {
        let off = (self.rng.next() % self.blocks) as i64 * BS as i64;
        let p = self.bufs[i].io_ptr().cast();
        self.cbs[i].prep_pread(self.fd, p, BS, off);
        self.cbs[i].data = i as *mut libc::c_void;
        if self.efd >= 0 {
            self.cbs[i].set_eventfd(self.efd);
        }
    }

    fn submit_all(&mut self, n: usize) {
        let mut done = 0;
        while done < n {
            // SAFETY: the iocbs, their buffers and the pointer array live in
            // `self` until the requests are reaped (every slice drains).
            let r = unsafe { io_submit(self.ctx, (n - done) as i64, self.cbp[done..].as_mut_ptr()) };
            if r == -libc::EAGAIN {
                continue;
            }
            if r <= 0 {
                fail("io_submit", r.into());
            }
            done += r as usize;
            self.inflight += r as usize;
        }
    }

    fn reap(&mut self, min: usize, nr: usize, at: usize) -> usize {
        // SAFETY: `evs` has room for `nr` events from `at`.
        let r = unsafe {
            io_getevents(
                self.ctx,
                min as i64,
                nr as i64,
                self.evs[at..].as_mut_ptr(),
                std::ptr::null_mut(),
            )
        };
        if r <= 0 {
            fail("io_getevents", r.into());
        }
        r as usize
    }

    fn poll_round(&mut self) -> u64 {
        let b = self.n;
        // SAFETY: as in submit_all.
        let r = unsafe { io_submit(self.ctx, b as i64, self.cbp.as_mut_ptr()) };
        if r != b as i32 {
            fail("io_submit", r.into());
        }
        let mut got = 0;
        while got < b {
            let r = self.reap(b - got, b - got, got);
            for e in &self.evs[got..got + r] {
                if e.res != libc::POLLIN as u64 {
                    fail("poll result", e.res as i64);
                }
            }
            got += r;
        }
        b as u64
    }

    fn read_round(&mut self, resubmit: bool) -> u64 {
        let r = self.reap(1, self.n, 0);
        self.inflight -= r;
        for k in 0..r {
            let e = self.evs[k];
            if e.res != BS as u64 {
                fail("read result", e.res as i64);
            }
            let i = e.data as usize;
            self.prep_read(i);
            self.cbp[k] = &raw mut self.cbs[i];
        }
        if resubmit {
            self.submit_all(r);
        }
        r as u64
    }
}

/// Runs `round` in groups of 16 until `end` (the clock read once a group):
/// the operations done.
fn until(end: Instant, mut round: impl FnMut() -> u64) -> u64 {
    let mut ops = 0;
    loop {
        for _ in 0..16 {
            ops += round();
        }
        if Instant::now() >= end {
            return ops;
        }
    }
}

impl Side for CSide {
    fn work(&self) -> Work {
        self.work
    }
    fn poll_round(&mut self) -> u64 {
        CSide::poll_round(self)
    }
    fn read_round(&mut self, resubmit: bool) -> u64 {
        CSide::read_round(self, resubmit)
    }
    fn start_reads(&mut self) {
        for i in 0..self.n {
            self.prep_read(i);
            self.cbp[i] = &raw mut self.cbs[i];
        }
        self.submit_all(self.n);
    }
    fn in_flight(&self) -> usize {
        self.inflight
    }
}

impl Drop for CSide {
    fn drop(&mut self) {
        // SAFETY: our context; nothing is in flight after a slice.
        unsafe { io_destroy(self.ctx) };
    }
}

/// The safe API doing the same work.
struct SafeSide {
    ctx: Context,
    work: Work,
    n: usize,
    blocks: u64,
    rng: Rng,
    reqs: Vec<Request<AlignedBuf>>,
    done: Vec<Completion<AlignedBuf>>,
}

impl SafeSide {
    /// The requests, made once and reused, each keep the file open.
    fn new<F: std::os::fd::AsFd + Send + Sync + 'static>(
        work: Work,
        n: usize,
        file: Arc<F>,
        blocks: u64,
    ) -> Self {
        let ctx =
            Context::new(n).unwrap_or_else(|e| fail("Context::new", e.raw_os_error().unwrap_or(0).into()));
        let reqs = (0..n)
            .map(|_| match work {
                Work::Poll => Request::poll(&file, libc::POLLIN),
                Work::Read => Request::read(&file, AlignedBuf::new(BS).unwrap(), 0),
            })
            .collect();
        Self {
            ctx,
            work,
            n,
            blocks,
            rng: Rng(0x9e37_79b9_7f4a_7c15),
            reqs,
            done: Vec::with_capacity(n),
        }
    }

    fn submit_all(&mut self) {
        while !self.reqs.is_empty() {
            match self.ctx.submit_batch(&mut self.reqs) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => {}
                Err(e) => fail("submit_batch", e.raw_os_error().unwrap_or(0).into()),
            }
        }
    }

    fn poll_round(&mut self) -> u64 {
        let b = self.n;
        self.submit_all();
        while self.done.len() < b {
            let want = b - self.done.len();
            if let Err(e) = self.ctx.wait_into(want, want, None, &mut self.done) {
                fail("wait_into", e.raw_os_error().unwrap_or(0).into());
            }
        }
        for c in self.done.drain(..) {
            if !matches!(c.result, Ok(r) if r == libc::POLLIN as usize) {
                fail("poll result", -1);
            }
            self.reqs.push(c.request);
        }
        b as u64
    }

    fn read_round(&mut self, resubmit: bool) -> u64 {
        if let Err(e) = self.ctx.wait_into(1, self.n, None, &mut self.done) {
            fail("wait_into", e.raw_os_error().unwrap_or(0).into());
        }
        let r = self.done.len();
        for c in self.done.drain(..) {
            if !matches!(c.result, Ok(BS)) {
                fail("read result", -1);
            }
            let mut req = c.request;
            req.set_offset((self.rng.next() % self.blocks) * BS as u64);
            self.reqs.push(req);
        }
        if resubmit {
            self.submit_all();
        }
        r as u64
    }
}

impl Side for SafeSide {
    fn work(&self) -> Work {
        self.work
    }
    fn poll_round(&mut self) -> u64 {
        SafeSide::poll_round(self)
    }
    fn read_round(&mut self, resubmit: bool) -> u64 {
        SafeSide::read_round(self, resubmit)
    }
    fn start_reads(&mut self) {
        for r in self.reqs.iter_mut() {
            r.set_offset((self.rng.next() % self.blocks) * BS as u64);
        }
        self.submit_all();
    }
    fn in_flight(&self) -> usize {
        self.ctx.in_flight()
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = || -> ! {
        eprintln!("usage: safe_bench poll BATCH | read QD FILE  [-t SECONDS] [-f safe|c]");
        std::process::exit(2)
    };
    let work = match args.first().map(String::as_str) {
        Some("poll") => Work::Poll,
        Some("read") => Work::Read,
        _ => usage(),
    };
    let n: usize = args
        .get(1)
        .and_then(|s| s.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| usage());
    let mut i = 2;
    let file = if work == Work::Read {
        i += 1;
        Some(args.get(2).unwrap_or_else(|| usage()).clone())
    } else {
        None
    };
    let (mut secs, mut safe_first, mut efd) = (1.0f64, true, false);
    while i + 1 < args.len() {
        match args[i].as_str() {
            "-t" => secs = args[i + 1].parse().unwrap_or_else(|_| usage()),
            "-f" => safe_first = args[i + 1] == "safe",
            "-e" => efd = args[i + 1] == "1",
            _ => usage(),
        }
        i += 2;
    }

    // An eventfd for the C side's requests (-e 1); never read, as the safe
    // side's is not read either in this loop.
    let efd = efd.then(|| {
        // SAFETY: eventfd takes two integers and returns a new descriptor or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            fail("eventfd", fd.into());
        }
        // SAFETY: `fd` was just opened and is owned by nobody else.
        unsafe { OwnedFd::from_raw_fd(fd) }
    });
    let (mut c, mut s): (Box<dyn Side>, Box<dyn Side>) = match &file {
        None => {
            // Always readable: a byte is written and never read.
            let (r, mut w) = UnixStream::pair().unwrap();
            w.write_all(b"x").unwrap();
            std::mem::forget(w);
            let r = Arc::new(r);
            (
                Box::new(CSide::new(work, n, r.as_raw_fd(), 0, efd)),
                Box::new(SafeSide::new(work, n, r, 0)),
            )
        }
        Some(path) => {
            let f: File = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_DIRECT)
                .open(path)
                .unwrap_or_else(|e| fail(&format!("open {path}: {e}"), 0));
            let blocks = f.metadata().map(|m| m.len()).unwrap_or(0) / BS as u64;
            if blocks == 0 {
                fail("file too small", 0);
            }
            let f = Arc::new(f);
            (
                Box::new(CSide::new(work, n, f.as_raw_fd(), blocks, efd)),
                Box::new(SafeSide::new(work, n, f, blocks)),
            )
        }
    };
    let slice = Duration::from_millis(50);
    // Warm-up: one slice of each, not counted.
    c.slice(slice);
    s.slice(slice);
    let (mut tc, mut ts, mut oc, mut os) = (0f64, 0f64, 0u64, 0u64);
    while tc < secs || ts < secs {
        for first in [safe_first, !safe_first] {
            let t0 = Instant::now();
            if first {
                os += s.slice(slice);
                ts += t0.elapsed().as_secs_f64();
            } else {
                oc += c.slice(slice);
                tc += t0.elapsed().as_secs_f64();
            }
        }
    }
    println!(
        "c_ns_per_op={:.1} safe_ns_per_op={:.1} c_ops={oc} safe_ops={os}",
        tc * 1e9 / oc as f64,
        ts * 1e9 / os as f64
    );
    let _ = io::stdout().flush();
}
