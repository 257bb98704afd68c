//! Holding a program's files the way kernel AIO holds them: from
//! `io_submit` on, without a descriptor in the program's table.
//!
//! Kernel AIO takes a reference to a request's file inside `io_submit` and
//! drops it at completion; the program may close or reuse the descriptor
//! number meanwhile. A user-space engine must do the same, and two things
//! are ruled out:
//! - a `dup` in the program's table, closed later: closing *any* descriptor
//!   of a file drops every POSIX lock the process holds on it;
//! - looking the number up again later: it may name another file by then.
//!
//! So the engines' threads live in descriptor tables of their own, and a
//! file reaches them as `SCM_RIGHTS` over a *channel*, a `SOCK_SEQPACKET`
//! pair: `sendmsg` inside `io_submit` takes the reference (as the kernel's
//! `fget`), the receiving thread gets a descriptor in its own table, and
//! closes it at completion. POSIX locks belong to the table they were taken
//! through (`fl_owner`), so nothing the engines close touches the program's.
//!
//! # A table of our own
//! A library thread is started from a program thread, so it shares the
//! program's table; it leaves it at once ([`spawn_private`]):
//! 1. preferred: `close_range(0, ~0, CLOSE_RANGE_UNSHARE)` gives it an empty
//!    table (nothing of the program's is copied, referenced or closed), and
//!    `pidfd_getfd` fetches the channel's receiving end into it;
//! 2. where that is refused (kernels before 5.9, seccomp filters, the
//!    process's main thread gone): `unshare(CLONE_FILES)` copies the table,
//!    then every copied descriptor but the channel's is closed. Those closes
//!    are of copies in *our* table: no lock is lost; the files themselves
//!    stay open in the program's.
//!
//! The spawner waits for the outcome, so a failure is known at once.
//!
//! # The program may close our descriptors
//! The sending end lives in the program's table, where a program's
//! `closefrom` can close it and reuse the number. Before each send its
//! identity (device, inode: unique per socket) is checked, so a message
//! never goes to a file of the program's; a channel found gone is replaced.
//! (A number closed and reused between the check and the send, by another
//! thread of the program at that very instant, is the one window left.)

use crate::sync::Mutex;
use crate::sys::fd::{self, FileId};
use crate::sys::{self, Errno};
use core::ffi::c_void;
use core::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};

/// Marks the threads that live in a table of their own (the key's value
/// plus one; 0: no key yet).
static OWN_TABLE: AtomicU32 = AtomicU32::new(0);

fn own_table_key() -> Option<libc::pthread_key_t> {
    let k = OWN_TABLE.load(Ordering::Acquire);
    if k != 0 {
        return Some(k - 1);
    }
    let made = sys::thread::key_create(None).ok()?;
    match OWN_TABLE.compare_exchange(0, made + 1, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => Some(made),
        Err(other) => Some(other - 1),
    }
}

/// Whether the calling thread lives in a table of its own: the program's
/// descriptor numbers mean nothing there, so it never touches a channel's
/// program-side ends (nor anything else of the program's table).
pub(crate) fn in_own_table() -> bool {
    let k = OWN_TABLE.load(Ordering::Acquire);
    k != 0 && !sys::thread::key_get(k - 1).is_null()
}

/// The library's own descriptors in the program's table (channel ends, the
/// ring): a forked child has none of the threads or state they serve, so
/// they are closed there (`pthread_atfork`), before the child's program
/// runs on; each only if it still names the file it was made for (the
/// program may have closed the number and opened one of its own under it).
/// An entry: the number (-1: free, -2: being filled), then the file's
/// device and inode.
struct Owned {
    fd: AtomicI32,
    dev: AtomicU64,
    ino: AtomicU64,
}

static OWNED: [Owned; 8] = [const {
    Owned {
        fd: AtomicI32::new(-1),
        dev: AtomicU64::new(0),
        ino: AtomicU64::new(0),
    }
}; 8];
static ATFORK: AtomicU32 = AtomicU32::new(0);

/// Records `fd`, the file `id`, as the library's own (see [`OWNED`]).
pub(crate) fn own(fd: i32, id: FileId) {
    if ATFORK.swap(1, Ordering::AcqRel) == 0 {
        // SAFETY: registers a function of ours, which stays loaded (the
        // shared object is linked -z nodelete).
        unsafe { libc::pthread_atfork(None, None, Some(close_owned_in_child)) };
    }
    for slot in &OWNED {
        // Claimed (-2), the identity written, then the number: a child
        // finds a whole entry or none.
        if slot
            .fd
            .compare_exchange(-1, -2, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            slot.dev.store(id.dev, Ordering::Relaxed);
            slot.ino.store(id.ino, Ordering::Relaxed);
            slot.fd.store(fd, Ordering::Release);
            return;
        }
    }
}

/// `fd` is no longer the library's own.
pub(crate) fn disown(fd: i32) {
    for slot in &OWNED {
        let _ = slot
            .fd
            .compare_exchange(fd, -1, Ordering::AcqRel, Ordering::Acquire);
    }
}

extern "C" fn close_owned_in_child() {
    let _keep = sys::KeepErrno::new();
    for slot in &OWNED {
        let fd = slot.fd.swap(-1, Ordering::AcqRel);
        let id = FileId {
            dev: slot.dev.load(Ordering::Relaxed),
            ino: slot.ino.load(Ordering::Relaxed),
        };
        // fstat is async-signal-safe, as a handler run after fork must be.
        if fd >= 0 && fd::fstat(fd).is_ok_and(|st| st.id == id) {
            fd::close(fd);
        }
    }
}

/// How long a sender waits for room in a full channel.
const SEND_WAIT_NS: u64 = 1_000_000_000;

/// One channel: its ends in the program's table, and who they are.
#[derive(Clone, Copy)]
pub(crate) struct Channel {
    tx: i32,
    rx: i32,
    tx_id: FileId,
    rx_id: FileId,
}

impl Channel {
    /// A new channel; `timeout`: how long a blocking receive waits.
    pub(crate) fn open(timeout: Option<u64>) -> Result<Channel, Errno> {
        let (tx, rx) = fd::seqpacket_pair()?;
        let ids = fd::fstat(tx).and_then(|a| fd::fstat(rx).map(|b| (a.id, b.id)));
        // A sender waits for room a moment (the reader is always reading),
        // never for ever.
        let timed = fd::set_timeout(tx, true, SEND_WAIT_NS).and_then(|()| match timeout {
            Some(ns) => fd::set_timeout(rx, false, ns),
            None => Ok(()),
        });
        match (ids, timed) {
            (Ok((tx_id, rx_id)), Ok(())) => {
                own(tx, tx_id);
                own(rx, rx_id);
                Ok(Channel { tx, rx, tx_id, rx_id })
            }
            (Err(e), _) | (_, Err(e)) => {
                fd::close(tx);
                fd::close(rx);
                Err(e)
            }
        }
    }

    /// Whether `fd` still names the file `id` (the program may have closed
    /// and reused the number).
    fn ours(fd: i32, id: FileId) -> bool {
        fd::fstat(fd).is_ok_and(|s| s.id == id)
    }

    /// Sends one message with its descriptors (`wait`: for room, up to
    /// [`SEND_WAIT_NS`]): `Err(EBADF)` when the channel is no longer ours,
    /// else the kernel's error (no room, too many descriptors in flight).
    pub(crate) fn send(&self, payload: &[u8], fds: &[i32], wait: bool) -> Result<(), Errno> {
        if !Self::ours(self.tx, self.tx_id) {
            return Err(Errno(libc::EBADF));
        }
        fd::send_with_fds(self.tx, payload, fds, wait)
    }

    /// Sends each of `msgs` as a message of its own: how many went.
    pub(crate) fn send_batch(&self, msgs: &[fd::Small]) -> Result<usize, Errno> {
        if !Self::ours(self.tx, self.tx_id) {
            return Err(Errno(libc::EBADF));
        }
        fd::send_batch(self.tx, msgs)
    }

    /// Whether both ends are still ours in the program's table (a new
    /// thread fetches the receiving end from there).
    pub(crate) fn intact(&self) -> bool {
        Self::ours(self.tx, self.tx_id) && Self::ours(self.rx, self.rx_id)
    }

    /// Closes whichever ends are still ours: a channel given up (its
    /// threads see the end of the stream and leave).
    fn close(&self) {
        for (fd, id) in [(self.tx, self.tx_id), (self.rx, self.rx_id)] {
            disown(fd);
            if Self::ours(fd, id) {
                fd::close(fd);
            }
        }
    }

    /// The receiving end, for a thread entering a table of its own.
    pub(crate) fn receiver(&self) -> (i32, FileId) {
        (self.rx, self.rx_id)
    }
}

/// A channel that is opened on first use and replaced when the program
/// has closed one of its ends.
pub(crate) struct Slot {
    chan: Mutex<Option<Channel>>,
    /// Bumped each time the channel is replaced.
    gen: AtomicU32,
    timeout: Option<u64>,
}

impl Slot {
    pub(crate) const fn new(timeout: Option<u64>) -> Slot {
        Slot {
            chan: Mutex::new(None),
            gen: AtomicU32::new(0),
            timeout,
        }
    }

    /// The current channel and its generation, opened if there is none.
    /// Never from a thread in a table of its own.
    pub(crate) fn get(&self) -> Result<(Channel, u32), Errno> {
        if in_own_table() {
            return Err(Errno(libc::EBADF));
        }
        self.chan.with(|c| {
            let ch = match *c {
                Some(ch) => ch,
                None => {
                    let ch = Channel::open(self.timeout)?;
                    *c = Some(ch);
                    self.gen.fetch_add(1, Ordering::Release);
                    ch
                }
            };
            Ok((ch, self.gen.load(Ordering::Acquire)))
        })
    }

    /// Gives up channel `gen`, found broken: what is still ours of it is
    /// closed (never a number the program has reused).
    pub(crate) fn lost(&self, gen: u32) {
        self.chan.with(|c| {
            if self.gen.load(Ordering::Acquire) == gen {
                if let Some(ch) = c.take() {
                    ch.close();
                }
            }
        });
    }

    /// Sends on channel `gen`, if it is still the current one and ours
    /// (else it is given up: `EBADF`). A message is never sent on a channel
    /// other than the one its reader reads.
    pub(crate) fn send_on(&self, gen: u32, payload: &[u8], fds: &[i32], wait: bool) -> Result<(), Errno> {
        let (ch, now) = self.get()?;
        if now != gen {
            return Err(Errno(libc::EBADF));
        }
        ch.send(payload, fds, wait).inspect_err(|e| {
            if e.0 == libc::EBADF {
                self.lost(gen);
            }
        })
    }
}

impl Slot {
    /// Sends a batch on channel `gen`, if it is still the current one and
    /// ours (else it is given up): how many went.
    pub(crate) fn send_batch_on(&self, gen: u32, msgs: &[fd::Small]) -> Result<usize, Errno> {
        let (ch, now) = self.get()?;
        if now != gen {
            return Err(Errno(libc::EBADF));
        }
        ch.send_batch(msgs).inspect_err(|e| {
            if e.0 == libc::EBADF {
                self.lost(gen);
            }
        })
    }

    /// The current channel's receiving end, for a new thread, if the
    /// channel is intact (else it is given up, and a new one opened).
    pub(crate) fn receiver(&self) -> Result<((i32, FileId), u32), Errno> {
        for _ in 0..2 {
            let (ch, gen) = self.get()?;
            if ch.intact() {
                return Ok((ch.receiver(), gen));
            }
            self.lost(gen);
        }
        Err(Errno(libc::EBADF))
    }

    /// The current channel's generation (0: none yet).
    pub(crate) fn generation(&self) -> u32 {
        self.gen.load(Ordering::Acquire)
    }
}

/// How new threads leave the program's table: 0 not known yet, 1 the empty
/// table and `pidfd_getfd`, 2 a copy of the table, 3 neither works here.
static METHOD: AtomicU32 = AtomicU32::new(0);
const EMPTY_TABLE: u32 = 1;
const COPY_TABLE: u32 = 2;
const NO_TABLE: u32 = 3;

/// Most descriptors a thread brings into its table.
pub(crate) const MAX_BRING: usize = 2;

/// What a new thread is handed: the program-table descriptors to bring
/// along (and their identities), its entry point and argument, and where it
/// reports how entering its table went.
struct Boot {
    bring: [(i32, FileId); MAX_BRING],
    n: usize,
    main: fn([i32; MAX_BRING], usize),
    arg: usize,
    /// 0 while entering; then 1 + the method used, or `FAILED`.
    done: AtomicU32,
}

const FAILED: u32 = 100;

/// Whether the engines can have tables of their own here (a previous start
/// found neither way possible).
pub(crate) fn possible() -> bool {
    METHOD.load(Ordering::Relaxed) != NO_TABLE
}

/// Starts a thread in a descriptor table of its own holding only the files
/// `bring` names (each checked to be the file its identity says), then runs
/// `main(their numbers there, arg)`. Returns once the thread is in its
/// table, or with the reason it could not be.
pub(crate) fn spawn_private(
    bring: &[(i32, FileId)],
    main: fn([i32; MAX_BRING], usize),
    arg: usize,
) -> Result<(), Errno> {
    for _ in 0..2 {
        let method = METHOD.load(Ordering::Relaxed);
        if method == NO_TABLE {
            return Err(Errno(libc::ENOSYS));
        }
        let mut boot = Boot {
            bring: [(-1, FileId::default()); MAX_BRING],
            n: bring.len().min(MAX_BRING),
            main,
            arg,
            done: AtomicU32::new(0),
        };
        boot.bring[..boot.n].copy_from_slice(&bring[..bring.len().min(MAX_BRING)]);
        sys::thread::spawn(enter, (&raw mut boot).cast())?;
        let r =
            crate::sync::wait_while(&boot.done, |v| v & !crate::sync::WAITERS == 0) & !crate::sync::WAITERS;
        if r == FAILED {
            // The empty table was had, the files could not be brought in:
            // next time, copy the table instead.
            let _ = METHOD.compare_exchange(
                method,
                if method == COPY_TABLE {
                    NO_TABLE
                } else {
                    COPY_TABLE
                },
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
            continue;
        }
        let _ = METHOD.compare_exchange(0, r - 1, Ordering::Relaxed, Ordering::Relaxed);
        return Ok(());
    }
    Err(Errno(libc::ENOSYS))
}

extern "C" fn enter(arg: *mut c_void) -> *mut c_void {
    // SAFETY: the spawner's Boot, alive until `done` is set (it waits for it).
    let boot = unsafe { &*arg.cast::<Boot>() };
    let (bring, n, main, marg) = (boot.bring, boot.n, boot.main, boot.arg);
    // Marked first: from here on, this thread never uses the program's
    // descriptor numbers.
    let marked = own_table_key().is_some_and(|k| sys::thread::key_set(k, 1 as *mut c_void).is_ok());
    let outcome = if marked {
        leave_program_table(&bring[..n])
    } else {
        Err(())
    };
    let report = match outcome {
        Ok((_, m)) => m + 1,
        Err(()) => FAILED,
    };
    let prev = boot.done.swap(report, Ordering::Release);
    // The spawner may return as soon as it sees `done`: Boot is not touched
    // after, and the wake uses the address only.
    if prev & crate::sync::WAITERS != 0 {
        sys::futex_wake_addr(boot.done.as_ptr() as usize);
    }
    if let Ok((fds, _)) = outcome {
        main(fds, marg);
    }
    core::ptr::null_mut()
}

/// Moves this (new) thread into a table of its own holding `bring`: their
/// numbers there, and the method that worked.
fn leave_program_table(bring: &[(i32, FileId)]) -> Result<([i32; MAX_BRING], u32), ()> {
    let mut out = [-1; MAX_BRING];
    let method = METHOD.load(Ordering::Relaxed);
    if method == 0 || method == EMPTY_TABLE {
        match fd::unshare_empty_table() {
            Ok(()) => {
                // From here on the table is ours and empty: either the files
                // come in, or this thread is of no use.
                let pidfd = fd::pidfd_self().map_err(drop)?;
                let mut ok = true;
                for (i, &(num, id)) in bring.iter().enumerate() {
                    match fd::pidfd_getfd(pidfd, num) {
                        Ok(mine) if fd::fstat(mine).is_ok_and(|s| s.id == id) => out[i] = mine,
                        _ => ok = false,
                    }
                }
                fd::close(pidfd);
                return if ok { Ok((out, EMPTY_TABLE)) } else { Err(()) };
            }
            Err(_) if method == EMPTY_TABLE => return Err(()),
            Err(_) => {} // not here: the table is still the program's
        }
    }
    fd::unshare_table_copy().map_err(drop)?;
    // Close every copied descriptor but ours, in the gaps between them.
    let mut keep = [u32::MAX; MAX_BRING];
    for (i, &(num, id)) in bring.iter().enumerate() {
        if !fd::fstat(num).is_ok_and(|s| s.id == id) {
            return Err(());
        }
        keep[i] = num as u32;
        out[i] = num;
    }
    keep.sort_unstable();
    let mut from = 0u32;
    for &k in keep.iter().take(bring.len()) {
        if k > from {
            fd::close_range(from, k - 1).map_err(drop)?;
        }
        from = k.saturating_add(1);
    }
    fd::close_range(from, u32::MAX).map_err(drop)?;
    Ok((out, COPY_TABLE))
}
