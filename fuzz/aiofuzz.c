/*
 * aiofuzz: a differential fuzzer of random libaio call sequences.
 *
 *     aiofuzz SEED [OPS]
 *
 * From SEED it draws OPS (default 300) operations: contexts set up
 * (io_setup, io_queue_init), destroyed (io_destroy, io_queue_release) and set
 * up again; requests built with the io_prep_* helpers and by hand with
 * hostile fields, submitted in batches; completions reaped with every reaping
 * entry point (io_getevents and io_queue_wait at both symbol versions,
 * io_pgetevents, io_queue_run) and by the program itself from the ring, as
 * fio's userspace_reap does; io_cancel at both versions; hostile arguments
 * (negative and inverted counts, NULL, PROT_NONE, read-only and kernel
 * addresses for every pointer, contexts destroyed or never set up, odd
 * timeouts, the ring's magic hidden). It prints one transcript line per
 * operation on stdout: the call with its arguments in symbolic form
 * (contexts by creation number, requests by pool slot, never an address),
 * the result, whether errno survived, what came back (events: slot, data tag
 * or "cb", res, res2, in the order returned) and how many completions are
 * left in the ring. tests/sh/fuzz.sh runs each seed on Debian's libaio twice
 * and on ours and compares the transcripts. FUZZ_TRACE=1 also writes each
 * call on stderr before it is made (to find where a run crashed or hung).
 *
 * Everything printed must depend on the seed and the library's behaviour
 * only. So the program
 *  - pins itself to one CPU (the kernel caches request slots per CPU, which
 *    moves the point where io_submit answers -EAGAIN);
 *  - after every operation waits until every completion that is due is in
 *    the ring (it reads the ring header and events, which changes nothing),
 *    then puts the events waiting in each ring in one canonical order (by
 *    request slot), so results never depend on timing nor on the order in
 *    which requests completed, which no library defines (a request done
 *    inside io_submit and one a worker finishes); fsync, which completes later from a
 *    kernel worker, is only ever the last of a batch, and a poll of the
 *    eventfd never signals that eventfd itself (the kernel would complete
 *    it from a worker too);
 *  - never lets a call wait long: a NULL or long timeout (negative ones wait
 *    for ever on Linux 6.x) is used only when enough completions are already
 *    in the ring or the arguments are invalid; otherwise it is zero or at
 *    most 1 ms;
 *  - single-threaded, no fork, no signals.
 *
 * Inputs on which libaio 0.3.113 itself crashes, and the documented
 * differences (README, "Deliberate differences", and doc/engines.md for the
 * user-space engines, on which the same seeds run), are never generated:
 *  - io_getevents, io_pgetevents, io_queue_run and io_queue_wait read the
 *    ring at any non-NULL context, so they only get live contexts, NULL, or
 *    a readable address that is not a ring; garbage and destroyed contexts go
 *    only to the calls that are plain system calls (io_submit, io_cancel,
 *    io_destroy, io_queue_release);
 *  - libaio reads *timeout in user space for a live context and the 0.1
 *    versions copy it first, so bad timeout pointers go only to the 0.4
 *    calls with a NULL or non-ring context;
 *  - io_queue_init writes *ctxp when maxevents > 0: then ctxp is valid;
 *  - io_queue_run calls each event's data as a function: it runs only on
 *    contexts whose requests all carry the callback, or whose ring is empty;
 *  - event arrays never change protection (ours remembers arrays it found
 *    writable); no fork.
 *
 * Destroyed contexts and address reuse: a destroyed context's value is kept
 * and passed again (io_submit, io_cancel, io_destroy must answer -EINVAL)
 * only until the next attempt to set up a context. From then on it is never
 * used: the new ring may be mapped at the old address or not, depending on
 * each library's own mappings, and a call on the old value would reach the
 * new context on one library and not on the other (it does happen: rings
 * land on a destroyed ring's address often, and not at the same calls with
 * both libraries). Contexts that were never set up are values no ring can
 * have (below mmap_min_addr, kernel addresses, a page of this program, an
 * address inside a live ring).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <libaio.h>

/* The @LIBAIO_0.1 versions (old signatures), bound as ctests/compat_0_1.c does. */
int old_getevents(io_context_t ctx, long nr, struct io_event *events, const struct timespec *timeout);
int old_cancel(io_context_t ctx, struct iocb *iocb);
int old_queue_wait(io_context_t ctx, const struct timespec *timeout);
__asm__(".symver old_getevents, io_getevents@LIBAIO_0.1");
__asm__(".symver old_cancel, io_cancel@LIBAIO_0.1");
__asm__(".symver old_queue_wait, io_queue_wait@LIBAIO_0.1");
/* Exported (default version LIBAIO_0.4) but commented out in libaio.h. */
int io_queue_wait(io_context_t ctx, struct timespec *timeout);

/* The io_queue_run callback: every request of a "callbacks" context carries it. */
void qcb(io_context_t ctx, struct iocb *iocb, long res, long res2);

#define IOCB_FLAG_IOPRIO_ (1u << 1)
#define RING_MAGIC 0xa10a10a1u

/* ---------------------------------------------------------------- basics */

static void die(const char *what)
{
	fprintf(stderr, "aiofuzz: %s: %s\n", what, strerror(errno));
	exit(2);
}

/* splitmix64: the only source of randomness. */
static uint64_t rng;
static uint64_t next64(void)
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}
static unsigned rnd(unsigned n)
{
	return n ? (unsigned)(next64() % n) : 0;
}
static int pct(unsigned p)
{
	return rnd(100) < p;
}
#define PICK(a) ((a)[rnd(sizeof(a) / sizeof((a)[0]))])

static long long now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

/* The transcript: one line per operation, flushed at once so a crash leaves
 * everything before it. */
static char line[1 << 16];
static size_t linelen;
static unsigned opno;

static void put(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	size_t room = sizeof(line) - linelen;
	int n = vsnprintf(line + linelen, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		linelen += (size_t)n < room ? (size_t)n : room - 1;
}

static void endline(void)
{
	printf("%u %s\n", opno, line);
	fflush(stdout);
	linelen = 0;
	line[0] = 0;
}

static const char *errname(long r)
{
	static char bufs[4][48];
	static int k;
	char *b = bufs[k++ % 4];
	if (r >= 0) {
		snprintf(b, 48, "%ld", r);
	} else {
		const char *n = r >= -4095 ? strerrorname_np((int)-r) : NULL;
		if (n)
			snprintf(b, 48, "-%s", n);
		else
			snprintf(b, 48, "%ld", r);
	}
	return b;
}

/* Runs one libaio call with errno set to a sentinel and notes whether the
 * call left it alone (libaio returns -errno and never touches errno). */
static int errno_ok, trace;
#define CALL(expr)                                               \
	({                                                       \
		int sent_ = 1000 + (int)rnd(3000);               \
		if (trace)                                       \
			fprintf(stderr, "%u %s\n", opno, line); \
		errno = sent_;                                   \
		long r_ = (long)(expr);                          \
		errno_ok = errno == sent_;                       \
		r_;                                              \
	})
static void put_result(long r)
{
	put(" = %s", errname(r));
	if (!errno_ok)
		put(" ERRNO-CHANGED");
}

/* ------------------------------------------------------------ the arena */

/*
 * One anonymous mapping, laid out once; no page ever changes protection.
 * Guard pages (PROT_NONE) follow the event arrays, the pointer arrays, the
 * iovecs and the buffers, so "k valid entries, then a fault" can be built.
 */
#define PG 4096
enum {
	P_EV = 0, /* 4 pages: event arrays */
	P_EVGUARD = 4,
	P_RO = 5, /* read-only: zeros, then 0xff */
	P_PTR = 6, /* iocb pointer arrays */
	P_PTRGUARD = 7,
	P_IOV = 8, /* 8 pages: 4 iovecs per slot */
	P_IOVGUARD = 16,
	P_BUF = 17, /* 32 pages: 256 bytes per slot */
	P_BUFGUARD = 49,
	P_POOL = 50, /* 8 pages: the iocbs */
	P_MISC = 58, /* ctxp cells, timeouts, sigsets */
	P_NOTRING = 59, /* zeros: readable, and no ring (no magic) */
	P_TOTAL = 60,
};
static char *arena;
#define PAGE(p) (arena + (size_t)(p) * PG)
#define NONE_P ((void *)PAGE(P_EVGUARD))
#define RO_P ((void *)PAGE(P_RO))
/* Read-only too, all 0xff: an iocb there is rejected (a zero one would read
 * fd 0, with NULL data that io_queue_run would call). */
#define RO_FF_P ((void *)(PAGE(P_RO) + PG / 2))
#define LOW_P ((void *)16)
#define KERNEL_P ((void *)0xffff888000000000ul)

#define NSLOT 512
#define SLOTBUF 256
#define EVCAP (4 * PG / (int)sizeof(struct io_event))

static struct iocb *pool;

static struct {
	io_context_t ctxp[4];
	struct timespec tmo;
	sigset_t sig_empty, sig_full;
	struct io_event cancel_res;
} *misc;

static void arena_init(void)
{
	arena = mmap(NULL, (size_t)P_TOTAL * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (arena == MAP_FAILED)
		die("mmap");
	int guards[] = { P_EVGUARD, P_PTRGUARD, P_IOVGUARD, P_BUFGUARD };
	for (unsigned i = 0; i < sizeof(guards) / sizeof(guards[0]); i++)
		if (mprotect(PAGE(guards[i]), PG, PROT_NONE))
			die("mprotect");
	memset(RO_FF_P, 0xff, PG / 2);
	if (mprotect(PAGE(P_RO), PG, PROT_READ))
		die("mprotect");
	pool = (struct iocb *)PAGE(P_POOL);
	misc = (void *)PAGE(P_MISC);
	sigemptyset(&misc->sig_empty);
	sigfillset(&misc->sig_full);
}

/* --------------------------------------------------------- files and fds */

enum { F_FILE, F_RO, F_WO, F_PIPE_R, F_PIPE_W, F_EFD, F_NULL, F_DIR, F_BAD, F_CLOSED, F_N };
static const char *fdname[F_N] = { "file", "file_ro", "file_wo", "pipe_r", "pipe_w",
				   "efd", "devnull", "dir", "fd-1", "fd_closed" };
static int fds[F_N];
/* The eventfd that completions signal (IOCB_FLAG_RESFD), never read. */
static int note_fd;

static void files_init(void)
{
	const char *dir = getenv("FUZZ_TMPDIR");
	if (!dir || !*dir)
		dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	char path[4096];
	snprintf(path, sizeof(path), "%s/aiofuzz-XXXXXX", dir);
	int fd = mkstemp(path);
	if (fd < 0)
		die("mkstemp");
	char pat[4096];
	for (int i = 0; i < 4096; i++)
		pat[i] = (char)('a' + i % 26);
	for (int i = 0; i < 16; i++)
		if (write(fd, pat, sizeof(pat)) != (ssize_t)sizeof(pat))
			die("write");
	fds[F_FILE] = fd;
	fds[F_RO] = open(path, O_RDONLY);
	fds[F_WO] = open(path, O_WRONLY);
	unlink(path);
	int p[2];
	if (pipe2(p, O_NONBLOCK))
		die("pipe2");
	fds[F_PIPE_R] = p[0];
	fds[F_PIPE_W] = p[1];
	fds[F_EFD] = eventfd(0, EFD_NONBLOCK);
	note_fd = eventfd(0, EFD_NONBLOCK);
	fds[F_NULL] = open("/dev/null", O_RDWR);
	fds[F_DIR] = open(dir, O_RDONLY | O_DIRECTORY);
	fds[F_BAD] = -1;
	fds[F_CLOSED] = 900; /* far above anything opened here or by a library */
	close(900);
	for (int i = 0; i < F_CLOSED; i++)
		if (i != F_BAD && fds[i] < 0)
			die(fdname[i]);
}

/* ------------------------------------------------------------- contexts */

/* CX_CORRUPT: live, but its ring header was scribbled on (op_ring). */
enum { CX_LIVE, CX_CORRUPT, CX_DEAD, CX_RETIRED };
#define MAXCX 64
static struct cx {
	io_context_t v;
	int state;
	int cb; /* requests carry the io_queue_run callback as data */
} cxs[MAXCX];
static int ncx;

struct ring {
	unsigned id, nr, head, tail, magic, compat, incompat, hdrlen;
	struct io_event ev[];
};

static unsigned ring_ready(int c)
{
	struct ring *r = (struct ring *)cxs[c].v;
	unsigned nr = r->nr;
	unsigned head = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
	unsigned tail = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
	if (!nr || head >= nr || tail >= nr)
		return 0;
	return (tail + nr - head) % nr;
}

static int nlive(void)
{
	int n = 0;
	for (int i = 0; i < ncx; i++)
		n += cxs[i].state == CX_LIVE;
	return n;
}

/* Contexts the kernel has (against aio-nr, shared with the whole machine). */
static int nkernel(void)
{
	int n = 0;
	for (int i = 0; i < ncx; i++)
		n += cxs[i].state == CX_LIVE || cxs[i].state == CX_CORRUPT;
	return n;
}

/* A context argument and how the transcript names it. */
struct carg {
	io_context_t v;
	int idx; /* into cxs, or -1 */
	int live;
	int corrupt; /* idx is CX_CORRUPT */
	char name[32];
};

/* `plain`: the call is a plain system call in libaio (io_submit, io_cancel,
 * io_destroy), so destroyed and garbage values are allowed. `corrupt`: a
 * context with a scribbled ring header may be chosen (only zero-timeout
 * reaping and io_destroy get one: see op_ring). */
static struct carg ctx_arg(int plain, int corrupt)
{
	struct carg a = { 0, -1, 0, 0, "" };
	int live[MAXCX], dead[MAXCX], bad[MAXCX], nl = 0, nd = 0, nb = 0;
	for (int i = 0; i < ncx; i++) {
		if (cxs[i].state == CX_LIVE)
			live[nl++] = i;
		else if (cxs[i].state == CX_DEAD)
			dead[nd++] = i;
		else if (cxs[i].state == CX_CORRUPT)
			bad[nb++] = i;
	}
	if (corrupt && nb && pct(15)) {
		a.idx = bad[rnd(nb)];
		a.v = cxs[a.idx].v;
		a.corrupt = 1;
		snprintf(a.name, sizeof(a.name), "ctx#%d(scribbled)", a.idx);
		return a;
	}
	unsigned r = rnd(100);
	if (nl && r < 3) {
		/* Inside a live ring (readable, so libaio only finds no magic). */
		int i = live[rnd(nl)];
		a.v = (io_context_t)((char *)cxs[i].v + 32);
		snprintf(a.name, sizeof(a.name), "ctx#%d+32", i);
		return a;
	}
	if (nl && r < 84) {
		a.idx = live[rnd(nl)];
		a.v = cxs[a.idx].v;
		a.live = 1;
		snprintf(a.name, sizeof(a.name), "ctx#%d", a.idx);
		return a;
	}
	if (plain && nd && r < 92) {
		a.idx = dead[rnd(nd)];
		a.v = cxs[a.idx].v;
		snprintf(a.name, sizeof(a.name), "ctx#%d(destroyed)", a.idx);
		return a;
	}
	static const struct {
		uintptr_t v;
		const char *name;
	} plainv[] = { { 1, "garbage:1" },
		       { 0xfff, "garbage:0xfff" },
		       { UINTPTR_MAX, "garbage:-1" },
		       { 0xffff888000000000ul, "kernel-addr" } };
	unsigned k = rnd(plain ? 6 : 2);
	if (k == 0) {
		strcpy(a.name, "NULL");
	} else if (k == 1) {
		a.v = (io_context_t)PAGE(P_NOTRING);
		strcpy(a.name, "not-a-ring");
	} else {
		a.v = (io_context_t)plainv[k - 2].v;
		strcpy(a.name, plainv[k - 2].name);
	}
	return a;
}

/* ---------------------------------------------------------------- slots */

/*
 * A slot is one iocb of the pool with its buffer and iovecs. In flight: it
 * was accepted by io_submit and its completion has not been reaped. `due`:
 * its completion must arrive by itself (everything but a poll still
 * waiting for its file); `in_ring`: it has been seen in the ring.
 */
static struct slot {
	int busy, ctx;
	int poll_fd;
	short poll_events;
	int due, in_ring;
} slots[NSLOT];

static int slot_of(const struct iocb *obj)
{
	uintptr_t p = (uintptr_t)obj, b = (uintptr_t)pool;
	if (p < b || p >= b + NSLOT * sizeof(struct iocb) || (p - b) % sizeof(struct iocb))
		return -1;
	return (int)((p - b) / sizeof(struct iocb));
}

static char *slotbuf(int s)
{
	return PAGE(P_BUF) + (size_t)s * SLOTBUF;
}

static struct iovec *slotiov(int s)
{
	return (struct iovec *)(PAGE(P_IOV) + (size_t)s * 4 * sizeof(struct iovec));
}

static int alloc_slot(void)
{
	unsigned start = rnd(NSLOT);
	for (unsigned i = 0; i < NSLOT; i++) {
		int s = (int)((start + i) % NSLOT);
		if (!slots[s].busy)
			return s;
	}
	return -1;
}

static int poll_ready(int fd, short events)
{
	struct pollfd p = { fd, events, 0 };
	return poll(&p, 1, 0) > 0 && (p.revents & (events | POLLERR | POLLHUP));
}

/* Marks every in-flight slot whose completion is in its context's ring. */
static void scan_rings(void)
{
	for (int c = 0; c < ncx; c++) {
		if (cxs[c].state != CX_LIVE)
			continue;
		struct ring *r = (struct ring *)cxs[c].v;
		unsigned nr = r->nr, head = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
		unsigned tail = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
		if (!nr || head >= nr || tail >= nr)
			continue;
		for (unsigned i = head; i != tail; i = (i + 1) % nr) {
			int s = slot_of(r->ev[i].obj);
			if (s >= 0 && slots[s].busy && slots[s].ctx == c)
				slots[s].in_ring = 1;
		}
	}
}

/*
 * Waits until every completion that is due is in the ring: requests other
 * than polls, cancelled polls, and polls whose file is ready now (the kernel
 * completes those from the wakeup, inline or from a worker).
 */
static void settle(void)
{
	long long deadline = now_us() + 5 * 1000 * 1000;
	for (;;) {
		scan_rings();
		int missing = 0;
		for (int s = 0; s < NSLOT; s++) {
			struct slot *sl = &slots[s];
			if (!sl->busy || sl->in_ring)
				continue;
			if (sl->due || poll_ready(sl->poll_fd, sl->poll_events))
				missing++;
		}
		if (!missing)
			return;
		if (now_us() > deadline) {
			/* Completions lost or late: what follows would only wait
			 * more, and this line already tells the runs apart. */
			put("settle: %d due completions never reached the ring: giving up", missing);
			endline();
			exit(3);
		}
		struct timespec t = { 0, 20000 };
		nanosleep(&t, NULL);
	}
}

/* Events of one ring, sorted by request slot, then data (stale events of
 * no slot last, in the order found). */
static int ev_order(const void *a, const void *b)
{
	const struct io_event *x = a, *y = b;
	int sx = slot_of(x->obj), sy = slot_of(y->obj);
	unsigned kx = sx < 0 ? 1u << 30 : (unsigned)sx, ky = sy < 0 ? 1u << 30 : (unsigned)sy;
	if (kx != ky)
		return kx < ky ? -1 : 1;
	return (uintptr_t)x->data < (uintptr_t)y->data ? -1 : (uintptr_t)x->data > (uintptr_t)y->data;
}

/*
 * Puts the events waiting in each live ring in the canonical order: the
 * order in which they completed is not the library's to define (kernel AIO
 * finishes some inside io_submit, a user-space engine in a thread of its
 * own), so it must not decide what a later call reaps. The ring is the
 * program's memory: rewriting events between head and tail is what a
 * program may do (the kernel only writes at the tail), whatever its magic
 * says. Scribbled rings are left alone.
 */
static void canon_rings(void)
{
	static struct io_event buf[1 << 16];
	for (int c = 0; c < ncx; c++) {
		if (cxs[c].state != CX_LIVE)
			continue;
		struct ring *r = (struct ring *)cxs[c].v;
		unsigned nr = r->nr, head = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
		unsigned tail = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
		if (!nr || nr > (1u << 16) || head >= nr || tail >= nr)
			continue;
		unsigned n = 0;
		for (unsigned i = head; i != tail; i = (i + 1) % nr)
			buf[n++] = r->ev[i];
		qsort(buf, n, sizeof(buf[0]), ev_order);
		n = 0;
		for (unsigned i = head; i != tail; i = (i + 1) % nr)
			r->ev[i] = buf[n++];
	}
}

static void release_ctx_slots(int c)
{
	for (int s = 0; s < NSLOT; s++)
		if (slots[s].busy && slots[s].ctx == c)
			memset(&slots[s], 0, sizeof(slots[s]));
}

/* ------------------------------------------------------- building iocbs */

static const long long offsets[] = { 0, 0, 0, 0, 1, 512, 4096, 65536, 100000, 1 << 20 };

/* Appends to `d` (the request's description) with a format. */
static void dput(char *d, size_t n, const char *fmt, ...)
{
	size_t l = strlen(d);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(d + l, n - l, fmt, ap);
	va_end(ap);
}

static int rw_fd(int write)
{
	unsigned r = rnd(100);
	if (r < 50)
		return F_FILE;
	if (r < 64)
		return write ? F_PIPE_W : F_PIPE_R;
	if (r < 75)
		return F_EFD;
	if (r < 84)
		return F_NULL;
	if (r < 87)
		return write ? F_RO : F_WO; /* wrong direction */
	if (r < 90)
		return write ? F_WO : F_RO;
	if (r < 93)
		return write ? F_PIPE_R : F_PIPE_W; /* wrong end */
	if (r < 96)
		return F_DIR;
	return r < 98 ? F_BAD : F_CLOSED;
}

/*
 * A buffer for a read or write of slot s: the slot's own 256 bytes with
 * nbytes <= 256 (a read writes no further), or a hostile one: near the
 * guard page with any length (the kernel stops at the fault), NULL,
 * PROT_NONE, read-only, kernel. Sets *buf and *n, describes itself.
 */
static void pick_buffer(int s, int fdk, void **buf, unsigned long *n, char *d, size_t dn)
{
	unsigned r = rnd(100);
	if (r < 86) {
		static const unsigned long lens[] = { 0, 1, 7, 8, 8, 16, 64, 100, 256 };
		*buf = slotbuf(s);
		*n = fdk == F_EFD && pct(70) ? 8 : PICK(lens);
		dput(d, dn, "buf,%lu", *n);
		return;
	}
	if (r < 93) {
		static const unsigned ks[] = { 0, 1, 17, 100, 4096 };
		static const unsigned long lens[] = { 1, 8, 64, 4096, 1ul << 20, 0x7fffffff };
		unsigned k = PICK(ks);
		*buf = PAGE(P_BUFGUARD) - k;
		*n = pct(30) ? k : PICK(lens);
		dput(d, dn, "edge-%u,%lu", k, *n);
		return;
	}
	static const unsigned long lens[] = { 0, 8, 64 };
	*n = PICK(lens);
	switch (rnd(5)) {
	case 0:
		*buf = NULL;
		dput(d, dn, "NULL,%lu", *n);
		break;
	case 1:
		*buf = NONE_P;
		dput(d, dn, "none,%lu", *n);
		break;
	case 2:
		*buf = RO_P;
		dput(d, dn, "ro,%lu", *n);
		break;
	case 3:
		*buf = KERNEL_P;
		dput(d, dn, "kernel,%lu", *n);
		break;
	default:
		*buf = slotbuf(s);
		*n = 1ul << 63; /* negative as ssize_t: the kernel's overflow check */
		dput(d, dn, "buf,2^63");
		break;
	}
}

/* Vectors for slot s: up to 4 iovecs over its buffer, or hostile ones. */
static void pick_iov(int s, int fdk, struct iovec **iov, long *cnt, char *d, size_t dn)
{
	struct iovec *v = slotiov(s);
	char *b = slotbuf(s);
	unsigned r = rnd(100);
	long k = rnd(5);
	for (long i = 0; i < 4; i++) {
		v[i].iov_base = b + i * 64;
		v[i].iov_len = fdk == F_EFD ? 8 : rnd(65);
	}
	*iov = v;
	*cnt = k;
	if (r < 75) {
		dput(d, dn, "iov[%ld]", k);
	} else if (r < 83) {
		if (!k)
			k = *cnt = 1;
		long j = rnd((unsigned)k);
		void *const bad[] = { NULL, (void *)1, (void *)0xffff888000000000ul };
		v[j].iov_base = PICK(bad);
		if (!v[j].iov_len)
			v[j].iov_len = 8;
		dput(d, dn, "iov[%ld,bad@%ld]", k, j);
	} else if (r < 88) {
		/* k iovecs right before the guard page, more claimed. */
		long valid = rnd(3);
		struct iovec *e = (struct iovec *)(PAGE(P_IOVGUARD)) - valid;
		for (long i = 0; i < valid; i++) {
			e[i].iov_base = b + i * 64;
			e[i].iov_len = 32;
		}
		*iov = e;
		*cnt = valid + 1 + rnd(3);
		dput(d, dn, "iov-edge[%ld of %ld]", valid, *cnt);
	} else if (r < 92) {
		*iov = pct(50) ? NULL : NONE_P;
		*cnt = 1 + rnd(3);
		dput(d, dn, "iov-%s[%ld]", *iov ? "none" : "NULL", *cnt);
	} else if (r < 96) {
		*cnt = pct(50) ? 1025 : 100000; /* > UIO_MAXIOV */
		dput(d, dn, "iov[%ld]", *cnt);
	} else {
		*cnt = -1;
		dput(d, dn, "iov[-1]");
	}
}

/*
 * Fills slot s for context c (data tag or callback by the context's mode) as
 * a random request; `last` allows fsync (it completes from a kernel worker,
 * so only as the last of a batch its place in the ring is fixed). Describes
 * it in d. Returns 1 if it is a poll (for the slot's bookkeeping).
 */
static unsigned long tagseq;
static int build_iocb(int s, int cbmode, int last, char *d, size_t dn)
{
	struct iocb *cb = &pool[s];
	memset(cb, 0, sizeof(*cb));
	slots[s].poll_fd = -1;
	slots[s].poll_events = 0;
	d[0] = 0;
	int is_poll = 0;
	unsigned r = rnd(100);
	if (r < 20 || (r < 26 && !last)) {
		int f = rw_fd(0);
		void *buf;
		unsigned long n;
		dput(d, dn, "pread(%s,", fdname[f]);
		pick_buffer(s, f, &buf, &n, d, dn);
		long long off = PICK(offsets);
		io_prep_pread(cb, fds[f], buf, n, off);
		dput(d, dn, ",%lld)", off);
	} else if (r < 36) {
		int f = rw_fd(1);
		void *buf;
		unsigned long n;
		dput(d, dn, "pwrite(%s,", fdname[f]);
		pick_buffer(s, f, &buf, &n, d, dn);
		if (f == F_PIPE_W && buf != slotbuf(s)) {
			/* A pipe write that copies nothing still wakes the pipe's
			 * readers, which completes kernel AIO's polls of it, ready
			 * or not: a documented difference, never generated. */
			buf = slotbuf(s);
			n = 8;
			dput(d, dn, "->buf,8");
		}
		long long off = PICK(offsets);
		if (buf == slotbuf(s)) {
			/* An eventfd takes an 8-byte count; 1..3 keeps it small. */
			uint64_t v = 1 + rnd(3);
			memcpy(slotbuf(s), &v, sizeof(v));
			for (int i = 8; i < SLOTBUF; i++)
				slotbuf(s)[i] = (char)('A' + (s + i) % 26);
		}
		io_prep_pwrite(cb, fds[f], buf, n, off);
		dput(d, dn, ",%lld)", off);
	} else if (r < 46) {
		int w = pct(40);
		int f = rw_fd(w);
		struct iovec *iov;
		long cnt;
		long long off = PICK(offsets);
		int flags = pct(80) ? 0 : PICK(((const int[]){ RWF_NOWAIT, RWF_HIPRI, RWF_DSYNC, 0x40000000 }));
		dput(d, dn, "%s(%s,", w ? "pwritev" : "preadv", fdname[f]);
		pick_iov(s, f, &iov, &cnt, d, dn);
		long total = 0;
		for (long i = 0; i < cnt && cnt <= 4 && iov == slotiov(s); i++)
			total += (long)iov[i].iov_len;
		if (w && f == F_PIPE_W) {
			/* As for pwrite above: a pipe write that copies nothing. */
			iov = slotiov(s);
			cnt = 1;
			iov[0].iov_base = slotbuf(s);
			iov[0].iov_len = 8;
			dput(d, dn, "->iov[1]");
		}
		if (total == 0 && iov == slotiov(s) && (flags & RWF_NOWAIT)) {
			/* An empty read or write asks the file (kernel AIO) or not
			 * (readv(2), a user-space engine): whether the file takes
			 * RWF_NOWAIT is a documented difference, never generated. */
			flags &= ~RWF_NOWAIT;
		}
		if (w) {
			uint64_t v = 1;
			for (int i = 0; i < 4; i++)
				memcpy(slotbuf(s) + i * 64, &v, sizeof(v));
			io_prep_pwritev2(cb, fds[f], iov, 0, off, flags);
		} else {
			io_prep_preadv2(cb, fds[f], iov, 0, off, flags);
		}
		cb->u.v.nr = (unsigned long)cnt; /* the helpers take an int */
		dput(d, dn, ",%lld,rwf=%#x)", off, flags);
	} else if (r < 78 || (r < 85 && !last)) {
		static const int fks[] = { F_PIPE_R, F_PIPE_R, F_PIPE_R, F_EFD, F_EFD, F_PIPE_W,
					   F_FILE, F_NULL, F_DIR, F_BAD, F_CLOSED };
		static const int evs[] = { POLLIN, POLLIN, POLLIN, POLLIN, POLLOUT, POLLIN | POLLOUT,
					   POLLPRI, 0, 0xffff, 0x10000 };
		int f = PICK(fks);
		int ev = PICK(evs);
		io_prep_poll(cb, fds[f], ev);
		dput(d, dn, "poll(%s,%#x)", fdname[f], ev);
		if (pct(4)) {
			cb->u.c.offset = 1; /* must be 0 for a poll */
			dput(d, dn, "+offset");
		}
		slots[s].poll_fd = fds[f];
		slots[s].poll_events = (short)ev;
		is_poll = 1;
	} else if (r < 85) {
		static const int fks[] = { F_FILE, F_FILE, F_FILE, F_RO, F_DIR, F_PIPE_R, F_NULL, F_EFD, F_BAD };
		int f = PICK(fks);
		int dsync = pct(50);
		if (dsync)
			io_prep_fdsync(cb, fds[f]);
		else
			io_prep_fsync(cb, fds[f]);
		dput(d, dn, "%s(%s)", dsync ? "fdsync" : "fsync", fdname[f]);
		if (pct(5)) {
			cb->u.c.nbytes = 1;
			dput(d, dn, "+nbytes");
		}
	} else {
		/* Hand-built hostile requests on otherwise sane reads. */
		io_prep_pread(cb, fds[F_FILE], slotbuf(s), 64, 0);
		switch (rnd(7)) {
		case 0: {
			static const short ops[] = { 4, 6, 9, 100, -1, 0x7fff };
			cb->aio_lio_opcode = PICK(ops);
			dput(d, dn, "opcode(%d)", cb->aio_lio_opcode);
			break;
		}
		case 1:
			cb->u.c.__pad3 = 1 + rnd(1000);
			dput(d, dn, "reserved2(%lld)", cb->u.c.__pad3);
			break;
		case 2: {
			static const unsigned fl[] = { 0x80000000u, 0x100, 0x20, RWF_NOWAIT, RWF_HIPRI };
			cb->aio_rw_flags = PICK(fl);
			dput(d, dn, "rw_flags(%#x)", cb->aio_rw_flags);
			break;
		}
		case 3: {
			static const short prio[] = { 0, 4 | (2 << 13), 7 << 13, 0x7fff, -1 };
			cb->u.c.flags |= IOCB_FLAG_IOPRIO_;
			cb->aio_reqprio = PICK(prio);
			dput(d, dn, "ioprio(%d)", cb->aio_reqprio);
			break;
		}
		case 4:
			cb->u.c.offset = pct(50) ? -1 : LLONG_MAX;
			dput(d, dn, "offset(%lld)", cb->u.c.offset);
			break;
		case 5: {
			static const int fks[] = { F_PIPE_R, F_FILE, F_BAD, F_CLOSED };
			int f = PICK(fks);
			io_set_eventfd(cb, fds[f]);
			dput(d, dn, "resfd(%s)", fdname[f]);
			break;
		}
		default:
			cb->u.c.flags |= 0x80 | 0x4;
			cb->key = 1 + rnd(10);
			dput(d, dn, "flags+key");
			break;
		}
	}
	/* Completions signal an eventfd of their own, never read: when a
	 * library signals it after posting the event is its own business (the
	 * kernel does it at once, a user-space engine maybe from another
	 * thread), so nothing printed may depend on it. */
	if (pct(10)) {
		io_set_eventfd(cb, note_fd);
		dput(d, dn, "+resfd");
	}
	if (cbmode) {
		io_set_callback(cb, qcb);
	} else {
		cb->data = pct(5) ? NULL : (void *)(++tagseq);
	}
	return is_poll;
}

/* ------------------------------------------------------ reporting events */

/* One event reaped from context c: its slot is free again. */
static void put_event(const struct io_event *e, int expect_cb, int c)
{
	int s = slot_of(e->obj);
	if (s < 0)
		put(" [obj=?");
	else
		put(" [#%d", s);
	if (e->data == (void *)qcb)
		put(" cb");
	else if (expect_cb)
		put(" data=NOT-CB");
	else
		put(" tag:%lu", (unsigned long)e->data);
	put(" %s %ld]", errname((long)e->res), (long)e->res2);
	if (c < 0 || cxs[c].state != CX_LIVE)
		return; /* a scribbled ring hands out stale events: its slots stay reserved */
	if (s >= 0 && slots[s].busy && slots[s].ctx == c)
		memset(&slots[s], 0, sizeof(slots[s]));
	else
		put("(NOT-IN-FLIGHT)");
}

/* The io_queue_run callback: keeps the event it was given, printed (as a
 * set: see put_events) once io_queue_run returns. */
static io_context_t qrun_ctx;
static int qrun_idx;
static struct io_event qrun_evs[1 << 12];
static int qrun_n, qrun_other;
void qcb(io_context_t ctx, struct iocb *iocb, long res, long res2)
{
	struct io_event e = { .data = (void *)qcb, .obj = iocb, .res = (unsigned long)res, .res2 = (unsigned long)res2 };
	qrun_other |= ctx != qrun_ctx;
	if (qrun_n < (1 << 12))
		qrun_evs[qrun_n++] = e;
}

static void put_qrun_events(void)
{
	qsort(qrun_evs, (size_t)qrun_n, sizeof(qrun_evs[0]), ev_order);
	for (int i = 0; i < qrun_n; i++) {
		put(" cb(%s)", qrun_other ? "OTHER-CTX" : "same-ctx");
		put_event(&qrun_evs[i], 1, qrun_idx);
	}
	qrun_n = qrun_other = 0;
}

static void put_ring(const struct carg *c)
{
	if (c->live)
		put(" ring=%u", ring_ready(c->idx));
}

/* ----------------------------------------------------------- operations */

static void op_setup(void)
{
	/* A new ring may land where a destroyed one was: destroyed values are
	 * not passed again from here on (see the top of the file). */
	for (int i = 0; i < ncx; i++)
		if (cxs[i].state == CX_DEAD)
			cxs[i].state = CX_RETIRED;
	int queue = pct(40);
	static const int good[] = { 1, 1, 2, 3, 4, 8, 16, 31, 64, 128, 200 };
	static const int bad[] = { 0, -1, INT_MIN, 1 << 20, 10000000, INT_MAX };
	int can_create = nkernel() < 4 && ncx < MAXCX;
	int is_good = can_create && pct(85);
	int nr = is_good ? PICK(good) : PICK(bad);
	io_context_t *cell = &misc->ctxp[0];
	*cell = 0;
	const char *pname = "&ctx";
	unsigned r = rnd(100);
	if (queue) {
		if (r < 15) {
			*cell = (io_context_t)(uintptr_t)(1 + rnd(1000)); /* io_queue_init clears it */
			pname = "&ctx(dirty)";
		} else if (r < 30 && nr <= 0) {
			static const char *names[] = { "NULL", "none", "ro" };
			unsigned k = rnd(3);
			cell = k == 0 ? NULL : k == 1 ? NONE_P : RO_P;
			pname = names[k];
		}
	} else if (r < 20) {
		static const char *names[] = { "NULL", "none", "ro", "low", "&ctx(dirty)", "&live-ctx" };
		unsigned k = rnd(6);
		pname = names[k];
		if (k == 0)
			cell = NULL;
		else if (k == 1)
			cell = NONE_P;
		else if (k == 2)
			cell = RO_P;
		else if (k == 3)
			cell = LOW_P;
		else if (k == 4)
			*cell = (io_context_t)(uintptr_t)(1 + rnd(1000));
		else {
			struct carg c = ctx_arg(0, 0);
			*cell = c.v;
			pname = c.live ? "&live-ctx" : "&ctx(NULL-or-other)";
		}
	}
	long ret;
	if (queue) {
		put("io_queue_init(%d, %s)", nr, pname);
		ret = CALL(io_queue_init(nr, cell));
	} else {
		put("io_setup(%d, %s)", nr, pname);
		ret = CALL(io_setup(nr, cell));
	}
	put_result(ret);
	if (ret == -EAGAIN && is_good && (cell == &misc->ctxp[0] || cell == RO_P)) {
		/* aio-nr is shared with every process on the machine: someone
		 * else holds the requests; the runner tries again later. */
		put(" (aio-nr exhausted by other processes)");
		endline();
		exit(4);
	}
	if (ret == 0 && cell == &misc->ctxp[0] && ncx < MAXCX) {
		int c = ncx++;
		cxs[c].v = *cell;
		cxs[c].state = CX_LIVE;
		cxs[c].cb = pct(queue ? 70 : 30);
		struct ring *rg = (struct ring *)cxs[c].v;
		put(" -> ctx#%d ring-nr=%u %s", c, rg->nr, cxs[c].cb ? "callbacks" : "tags");
		/* Where the ring landed depends on the library's own mappings:
		 * told on stderr (with FUZZ_TRACE), never in the transcript. */
		for (int i = 0; trace && i < c; i++)
			if (cxs[i].v == cxs[c].v)
				fprintf(stderr, "%u ctx#%d is at the address of destroyed ctx#%d\n", opno, c, i);
		if (rg->magic != RING_MAGIC)
			put(" BAD-MAGIC");
	} else if (ret == 0) {
		put(" SUCCEEDED-WITHOUT-A-USABLE-CTXP");
	}
	endline();
}

static void op_destroy(void)
{
	struct carg c = ctx_arg(1, 1);
	int rel = pct(30);
	put("%s(%s)", rel ? "io_queue_release" : "io_destroy", c.name);
	long ret = rel ? CALL(io_queue_release(c.v)) : CALL(io_destroy(c.v));
	put_result(ret);
	if (ret == 0 && c.idx >= 0 && (cxs[c.idx].state == CX_LIVE || cxs[c.idx].state == CX_CORRUPT)) {
		cxs[c.idx].state = CX_DEAD;
		release_ctx_slots(c.idx);
	}
	endline();
}

/* Submits a batch; `flood` fills the ring with always-ready requests. */
static void op_submit(int flood)
{
	struct carg c = ctx_arg(1, 0);
	int cbmode = c.live && cxs[c.idx].cb;
	int want = flood ? 16 + (int)rnd(49) : 1 + (int)rnd(pct(20) ? 12 : 4);
	int ss[64];
	int n = 0;
	static char descs[64][160];
	for (; n < want; n++) {
		int s = alloc_slot();
		if (s < 0)
			break;
		slots[s].busy = 1; /* reserved while building */
		ss[n] = s;
		if (flood) {
			memset(&pool[s], 0, sizeof(pool[s]));
			if (n % 2)
				io_prep_poll(&pool[s], fds[F_NULL], POLLOUT);
			else
				io_prep_pwrite(&pool[s], fds[F_NULL], slotbuf(s), 16, 0);
			slots[s].poll_fd = n % 2 ? fds[F_NULL] : -1;
			slots[s].poll_events = n % 2 ? POLLOUT : 0;
			if (cbmode) {
				io_set_callback(&pool[s], qcb);
			} else {
				pool[s].data = (void *)(++tagseq);
			}
		} else {
			build_iocb(s, cbmode, n == want - 1, descs[n], sizeof(descs[n]));
		}
	}
	struct iocb **arr = (struct iocb **)PAGE(P_PTR);
	for (int i = 0; i < n; i++)
		arr[i] = &pool[ss[i]];
	long nr = n;
	char how[64] = "";
	unsigned r = flood ? 100 : rnd(100);
	if (r < 4) {
		static const long nrs[] = { -1, 0, LONG_MIN };
		nr = PICK(nrs);
	} else if (r < 7 && n > 1) {
		nr = rnd((unsigned)n);
	} else if (r < 12 && n > 0) {
		int j = (int)rnd((unsigned)n);
		int k = (int)rnd(3);
		arr[j] = k == 0 ? NULL : k == 1 ? (struct iocb *)NONE_P : (struct iocb *)RO_FF_P;
		snprintf(how, sizeof(how), ",%s@%d", k == 0 ? "NULL" : k == 1 ? "none" : "ro(0xff iocb)", j);
	} else if (r < 15) {
		static const char *names[] = { "NULL", "none", "kernel" };
		unsigned k = rnd(3);
		arr = k == 0 ? NULL : k == 1 ? (struct iocb **)NONE_P : (struct iocb **)KERNEL_P;
		snprintf(how, sizeof(how), ",array=%s", names[k]);
	} else if (r < 18 && n > 0) {
		/* The n pointers end at the guard page; nr claims more. */
		struct iocb **e = (struct iocb **)PAGE(P_PTRGUARD) - n;
		memmove(e, arr, (size_t)n * sizeof(*arr));
		arr = e;
		nr = n + 1 + rnd(4);
		snprintf(how, sizeof(how), ",array-at-guard");
	}
	put("io_submit(%s, %ld%s, [", c.name, nr, how);
	if (flood)
		put("%d x devnull pwrite/poll", n);
	for (int i = 0; !flood && i < n; i++)
		put("%s#%d:%s", i ? "; " : "", ss[i], descs[i]);
	put("])");
	long ret = CALL(io_submit(c.v, nr, arr));
	put_result(ret);
	long ok = ret > 0 ? ret : 0;
	if (ok > n) {
		put(" MORE-THAN-GIVEN");
		ok = n;
	}
	for (int i = 0; i < n; i++) {
		struct slot *sl = &slots[ss[i]];
		if (i < ok) {
			sl->busy = 1;
			sl->ctx = c.idx;
			sl->in_ring = 0;
			sl->due = pool[ss[i]].aio_lio_opcode != IO_CMD_POLL;
		} else {
			memset(sl, 0, sizeof(*sl));
		}
	}
	endline();
	/* Accepted by a context we do not know (a divergence in itself): such
	 * slots are never reaped; free them so bookkeeping goes on. */
	if (ok && !c.live)
		for (int i = 0; i < ok; i++)
			memset(&slots[ss[i]], 0, sizeof(slots[ss[i]]));
}

/* An event array and how the transcript names it; `cap` events are
 * writable from it (0 for the hostile ones). */
struct evarg {
	struct io_event *p;
	long cap;
	char name[24];
};

static struct evarg ev_arg(void)
{
	struct evarg a;
	unsigned r = rnd(100);
	if (r < 70) {
		a.p = (struct io_event *)PAGE(P_EV);
		a.cap = EVCAP;
		strcpy(a.name, "ev");
	} else if (r < 78) {
		long k = rnd(9);
		a.p = (struct io_event *)PAGE(P_EVGUARD) - k;
		a.cap = k;
		snprintf(a.name, sizeof(a.name), "ev-edge-%ld", k);
	} else if (r < 84) {
		a.p = (struct io_event *)(PAGE(P_EV) + 8); /* misaligned */
		a.cap = EVCAP - 1;
		strcpy(a.name, "ev+8");
	} else {
		void *const bad[] = { NULL, NONE_P, RO_P, LOW_P, KERNEL_P };
		static const char *names[] = { "NULL", "none", "ro", "low", "kernel" };
		unsigned k = rnd(5);
		a.p = bad[k];
		a.cap = 0;
		strcpy(a.name, names[k]);
	}
	return a;
}

/* A timeout: `wait_ok` when the call cannot wait (then NULL and long ones
 * are fine), `bad_ptr_ok` when a bad pointer may be passed. */
static int force_zero;
static struct timespec *tmo_arg(int wait_ok, int bad_ptr_ok, char *name, size_t nn)
{
	struct timespec *t = &misc->tmo;
	if (force_zero) {
		t->tv_sec = t->tv_nsec = 0;
		snprintf(name, nn, "{0,0}");
		return t;
	}
	unsigned r = rnd(100);
	if (bad_ptr_ok && r < 10) {
		void *const bad[] = { NONE_P, LOW_P, KERNEL_P };
		static const char *names[] = { "none", "low", "kernel" };
		unsigned k = rnd(3);
		snprintf(name, nn, "%s", names[k]);
		return bad[k];
	}
	if (wait_ok && r < 35) {
		snprintf(name, nn, "NULL");
		return NULL;
	}
	/* Negative timeouts wait for ever on Linux 6.x: long ones too. */
	static const struct timespec shortt[] = { { 0, 0 }, { 0, 0 }, { 0, 0 }, { 0, 50000 }, { 0, 200000 },
						  { 0, 1000000 } };
	static const struct timespec longt[] = { { 1, 0 }, { 0, 999999999 }, { 0, 1000000000 },
						 { 0, LONG_MAX }, { LONG_MAX, 0 }, { 100, -5 },
						 { -1, 0 }, { 0, -1 }, { -5, 999999999 } };
	*t = wait_ok && r < 60 ? PICK(longt) : PICK(shortt);
	snprintf(name, nn, "{%ld,%ld}", (long)t->tv_sec, t->tv_nsec);
	return t;
}

static const char *tmo_check(const struct timespec *t, struct timespec saved)
{
	if (t == &misc->tmo && (t->tv_sec != saved.tv_sec || t->tv_nsec != saved.tv_nsec))
		return " TIMEOUT-CHANGED";
	return "";
}

/* Canary over the whole event area: what a call may write is
 * [p, p + ret) on success, anything from p on when it fails. */
#define CANARY 0xa5
static void canary_fill(void)
{
	memset(PAGE(P_EV), CANARY, 4 * PG);
}
static void canary_check(const struct evarg *a, long ret, long nr)
{
	char *lo = (char *)a->p, *hi = lo;
	if (ret > 0)
		hi = lo + ret * (long)sizeof(struct io_event);
	if (ret < 0 && nr > 0)
		hi = PAGE(P_EVGUARD);
	for (char *q = PAGE(P_EV); q < PAGE(P_EVGUARD); q++) {
		if (q >= lo && q < hi)
			continue;
		if (*(unsigned char *)q != CANARY) {
			put(" WROTE-OUTSIDE-RESULT@%ld", (long)(q - (char *)a->p));
			return;
		}
	}
}

static void put_events(const struct evarg *a, long ret, int expect_cb, int c)
{
	if (ret <= 0)
		return;
	if (ret > a->cap) {
		put(" MORE-EVENTS-THAN-WRITABLE");
		return;
	}
	/* As a set: events that completed while the call waited come in the
	 * order they completed, which no library defines. */
	static struct io_event evs[1 << 16];
	long n = ret < (1 << 16) ? ret : (1 << 16);
	for (long i = 0; i < n; i++)
		memcpy(&evs[i], (char *)a->p + i * (long)sizeof(evs[i]), sizeof(evs[i])); /* may be misaligned */
	qsort(evs, (size_t)n, sizeof(evs[0]), ev_order);
	for (long i = 0; i < n; i++)
		put_event(&evs[i], expect_cb, c);
}

static void op_getevents(void)
{
	struct carg c = ctx_arg(0, 1);
	/* A scribbled ring: what the kernel thinks is ready is unknown here. */
	force_zero = c.corrupt;
	long ready = c.live ? ring_ready(c.idx) : 0;
	int expect_cb = c.live && cxs[c.idx].cb;
	unsigned kind = rnd(100);
	if (kind < 45) {
		/* io_getevents@@LIBAIO_0.4 */
		const long nrs[] = { ready, ready, ready + 1, 1, 2, 4, 8, 64, 512, 0, -1, LONG_MAX };
		long nr = PICK(nrs);
		const long mins[] = { 0, 0, 1, 1, ready, ready + 1, nr, nr == LONG_MAX ? nr : nr + 1, -1, LONG_MIN, 2 };
		long min = PICK(mins);
		int can_wait = c.live && min >= 0 && min <= nr && min > ready;
		struct evarg a = ev_arg();
		char tn[32];
		struct timespec *t = tmo_arg(!can_wait, !c.live, tn, sizeof(tn));
		struct timespec saved = t && t == &misc->tmo ? *t : (struct timespec){ 0, 0 };
		put("io_getevents(%s, %ld, %ld, %s, %s)", c.name, min, nr, a.name, tn);
		canary_fill();
		long ret = CALL(io_getevents(c.v, min, nr, a.p, t));
		put_result(ret);
		put("%s", tmo_check(t, saved));
		canary_check(&a, ret, nr);
		put_events(&a, ret, expect_cb, c.idx);
		put_ring(&c);
	} else if (kind < 60) {
		/* io_getevents@LIBAIO_0.1: min_nr is 1; copies *timeout first. */
		const long nrs[] = { ready, ready + 1, 1, 2, 8, 512, 0, -1 };
		long nr = PICK(nrs);
		int can_wait = c.live && nr >= 1 && ready == 0;
		struct evarg a = ev_arg();
		char tn[32];
		struct timespec *t = tmo_arg(!can_wait, 0, tn, sizeof(tn));
		struct timespec saved = t ? *t : (struct timespec){ 0, 0 };
		put("io_getevents@0.1(%s, %ld, %s, %s)", c.name, nr, a.name, tn);
		canary_fill();
		long ret = CALL(old_getevents(c.v, nr, a.p, t));
		put_result(ret);
		put("%s", tmo_check(t, saved));
		canary_check(&a, ret, nr);
		put_events(&a, ret, expect_cb, c.idx);
		put_ring(&c);
	} else if (kind < 78) {
		/* io_pgetevents */
		const long nrs[] = { ready, ready + 1, 1, 4, 64, 0, -1 };
		long nr = PICK(nrs);
		const long mins[] = { 0, 1, ready, ready + 1, nr + 1, -1 };
		long min = PICK(mins);
		int can_wait = c.live && min >= 0 && min <= nr && min > ready;
		struct evarg a = ev_arg();
		char tn[32];
		struct timespec *t = tmo_arg(!can_wait, !c.live, tn, sizeof(tn));
		struct timespec saved = t && t == &misc->tmo ? *t : (struct timespec){ 0, 0 };
		static const char *sn[] = { "NULL", "NULL", "NULL", "empty", "full", "none", "low" };
		unsigned k = rnd(7);
		sigset_t *sig = k < 3 ? NULL : k == 3 ? &misc->sig_empty : k == 4 ? &misc->sig_full
			      : k == 5 ? (sigset_t *)NONE_P : (sigset_t *)LOW_P;
		put("io_pgetevents(%s, %ld, %ld, %s, %s, %s)", c.name, min, nr, a.name, tn, sn[k]);
		canary_fill();
		long ret = CALL(io_pgetevents(c.v, min, nr, a.p, t, sig));
		put_result(ret);
		put("%s", tmo_check(t, saved));
		canary_check(&a, ret, nr);
		put_events(&a, ret, expect_cb, c.idx);
		put_ring(&c);
		/* The mask must be back as it was. */
		sigset_t now;
		sigprocmask(SIG_BLOCK, NULL, &now);
		if (!sigisemptyset(&now))
			put(" SIGMASK-LEFT-CHANGED");
	} else if (kind < 88) {
		/* io_queue_run calls data as a function: only where all is callbacks. */
		if ((c.live && !cxs[c.idx].cb && ready) || c.corrupt) {
			c.v = NULL;
			c.live = 0;
			c.idx = -1;
			strcpy(c.name, "NULL");
		}
		put("io_queue_run(%s)", c.name);
		qrun_ctx = c.v;
		qrun_idx = c.idx;
		long ret = CALL(io_queue_run(c.v));
		put_qrun_events();
		put_result(ret);
		put_ring(&c);
	} else {
		int old = pct(40);
		char tn[32];
		struct timespec *t = tmo_arg(1, !old && !c.live, tn, sizeof(tn));
		struct timespec saved = t && t == &misc->tmo ? *t : (struct timespec){ 0, 0 };
		put("io_queue_wait%s(%s, %s)", old ? "@0.1" : "", c.name, tn);
		long ret = old ? CALL(old_queue_wait(c.v, t)) : CALL(io_queue_wait(c.v, t));
		put_result(ret);
		put("%s", tmo_check(t, saved));
		put_ring(&c);
	}
	endline();
}

static void op_cancel(void)
{
	struct carg c = ctx_arg(1, 0);
	int old = pct(35);
	int pending[NSLOT], np = 0, busy[NSLOT], nb = 0;
	for (int s = 0; s < NSLOT; s++) {
		if (!slots[s].busy)
			continue;
		busy[nb++] = s;
		if (slots[s].ctx == c.idx && !slots[s].due && !slots[s].in_ring)
			pending[np++] = s;
	}
	struct iocb *target;
	char tname[48];
	int ts = -1, keyed = 0;
	unsigned r = rnd(100);
	if (np && r < 55) {
		ts = pending[rnd(np)];
	} else if (nb && r < 75) {
		ts = busy[rnd(nb)];
	} else if (r < 85) {
		ts = (int)rnd(NSLOT);
	}
	if (ts >= 0) {
		target = &pool[ts];
		snprintf(tname, sizeof(tname), "#%d", ts);
		if (pct(8)) {
			target->key = 7; /* the kernel checks the key before anything */
			keyed = 1;
			strcat(tname, "(key=7)");
		}
	} else {
		void *const bad[] = { NULL, NONE_P, LOW_P, KERNEL_P, RO_P };
		static const char *names[] = { "NULL", "none", "low", "kernel", "ro(zero iocb)" };
		unsigned k = rnd(5);
		target = bad[k];
		snprintf(tname, sizeof(tname), "%s", names[k]);
	}
	long ret;
	if (old) {
		put("io_cancel@0.1(%s, %s)", c.name, tname);
		ret = CALL(old_cancel(c.v, target));
		put_result(ret);
	} else {
		void *const res[] = { NULL, NONE_P, KERNEL_P };
		static const char *names[] = { "res", "NULL", "none", "kernel" };
		unsigned k = rnd(4);
		struct io_event *ev = k == 0 ? &misc->cancel_res : res[k - 1];
		memset(&misc->cancel_res, CANARY, sizeof(misc->cancel_res));
		put("io_cancel(%s, %s, %s)", c.name, tname, names[k]);
		ret = CALL(io_cancel(c.v, target, ev));
		put_result(ret);
		/* The kernel no longer fills *result (the event goes to the ring). */
		for (size_t i = 0; i < sizeof(misc->cancel_res); i++)
			if (((unsigned char *)&misc->cancel_res)[i] != CANARY) {
				put(" result-written");
				break;
			}
	}
	if (keyed)
		target->key = 0;
	/* Cancelled (0 on old kernels, -EINPROGRESS since 4.19): the event
	 * comes through the ring, from a kernel worker. */
	if ((ret == 0 || ret == -EINPROGRESS) && ts >= 0 && slots[ts].busy)
		slots[ts].due = 1;
	endline();
}

/*
 * The program writes the ring itself: reaps as fio's userspace_reap does
 * (takes events from the ring and moves its head), hides the ring's magic
 * (libaio then always makes the system call) or shows it again, or
 * scribbles on the header. libaio reads only magic, head and tail, and only
 * to answer a zero timeout on an empty ring; the kernel copes with the rest.
 */
static void op_ring(void)
{
	int live[MAXCX], nl = 0;
	for (int i = 0; i < ncx; i++)
		if (cxs[i].state == CX_LIVE)
			live[nl++] = i;
	if (!nl)
		return;
	int c = live[rnd(nl)];
	struct ring *r = (struct ring *)cxs[c].v;
	int quiet = 1; /* nothing of c still to complete */
	for (int s = 0; s < NSLOT; s++)
		if (slots[s].busy && slots[s].ctx == c && !slots[s].in_ring)
			quiet = 0;
	if (pct(12) && quiet) {
		/* Scribbles on the header as a buggy or hostile program may. The
		 * context is then only reaped with zero timeouts and destroyed;
		 * its requests stay reserved. Only a context with nothing left
		 * to complete: a completion would move the tail at a time no
		 * library defines, and what a zero-timeout reap then finds
		 * would depend on it. */
		unsigned nr = r->nr, k = rnd(8);
		static const char *what[] = { "head=nr+3", "tail=nr+5", "head=tail", "head=tail+1",
					      "head=tail=7", "nr=3", "head=tail-1", "head=tail=nr+100" };
		switch (k) {
		case 0: r->head = nr + 3; break;
		case 1: r->tail = nr + 5; break;
		case 2: r->head = r->tail; break;
		case 3: r->head = (r->tail + 1) % nr; break;
		case 4: r->head = r->tail = 7; break;
		case 5: r->nr = 3; break;
		case 6: r->head = (r->tail + nr - 1) % nr; break;
		default: r->head = r->tail = nr + 100; break;
		}
		cxs[c].state = CX_CORRUPT;
		for (int s = 0; s < NSLOT; s++)
			if (slots[s].busy && slots[s].ctx == c) {
				slots[s].due = 0;
				slots[s].poll_fd = -1;
			}
		put("ring: ctx#%d scribbled %s", c, what[k]);
		endline();
		return;
	}
	if (pct(25)) {
		r->magic = r->magic == RING_MAGIC ? 0 : RING_MAGIC;
		put("ring: ctx#%d magic %s", c, r->magic ? "restored" : "cleared");
		endline();
		return;
	}
	/* Events that came after the last op settled (a poll whose file the
	 * fuzzer no longer watches completes when the engine's thread gets to
	 * it) are put in order too: which k are taken must not depend on it. */
	canon_rings();
	unsigned ready = ring_ready(c), nr = r->nr;
	unsigned k = ready ? 1 + rnd(ready) : 0;
	unsigned head = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
	put("ring: ctx#%d self-reap %u of %u", c, k, ready);
	for (unsigned i = 0; i < k; i++) {
		struct io_event e = r->ev[head];
		put_event(&e, cxs[c].cb, c);
		head = (head + 1) % nr;
	}
	__atomic_store_n(&r->head, head, __ATOMIC_RELEASE);
	put(" ring=%u", ring_ready(c));
	endline();
}

/*
 * Moves an empty ring's head to just before its end, by batches of
 * always-ready writes to /dev/null reaped at once, so that what follows
 * wraps around. Prints a digest of what was reaped, not every event.
 */
static void op_advance(void)
{
	int live[MAXCX], nl = 0;
	for (int i = 0; i < ncx; i++)
		if (cxs[i].state == CX_LIVE && ring_ready(i) == 0)
			live[nl++] = i;
	if (!nl)
		return;
	int c = live[rnd(nl)];
	struct ring *r = (struct ring *)cxs[c].v;
	unsigned nr = r->nr, head = r->head;
	unsigned want = (2 * nr - head - 1 - rnd(4)) % nr;
	put("advance(ctx#%d) by %u:", c, want);
	uint64_t digest = 1469598103934665603ull;
	long got = 0;
	while (want) {
		int k = want < 64 ? (int)want : 64, ss[64], n = 0;
		for (; n < k; n++) {
			int s = alloc_slot();
			if (s < 0)
				break;
			ss[n] = s;
			slots[s].busy = 1;
			slots[s].ctx = c;
			slots[s].due = 1;
			memset(&pool[s], 0, sizeof(pool[s]));
			io_prep_pwrite(&pool[s], fds[F_NULL], slotbuf(s), 1 + n, 0);
			if (cxs[c].cb)
				io_set_callback(&pool[s], qcb);
			else
				pool[s].data = (void *)(++tagseq);
			((struct iocb **)PAGE(P_PTR))[n] = &pool[s];
		}
		long sub = CALL(io_submit(cxs[c].v, n, (struct iocb **)PAGE(P_PTR)));
		if (!errno_ok)
			put(" ERRNO-CHANGED");
		for (int i = sub > 0 ? (int)sub : 0; i < n; i++)
			memset(&slots[ss[i]], 0, sizeof(slots[ss[i]]));
		if (sub <= 0) {
			put(" submit %s", errname(sub));
			break;
		}
		struct io_event *ev = (struct io_event *)PAGE(P_EV);
		long rc = CALL(io_getevents(cxs[c].v, sub, sub, ev, NULL));
		if (!errno_ok)
			put(" ERRNO-CHANGED");
		if (rc != sub) {
			put(" submit %ld reaped %s", sub, errname(rc));
			break;
		}
		for (long i = 0; i < rc; i++) {
			int s = slot_of(ev[i].obj);
			/* Never an address in the digest: the callback counts as 0. */
			uint64_t data = ev[i].data == (void *)qcb ? 0 : (uint64_t)(uintptr_t)ev[i].data;
			uint64_t v[3] = { (uint64_t)s, ev[i].res, data };
			for (int j = 0; j < 3; j++)
				digest = (digest ^ v[j]) * 1099511628211ull;
			if (s >= 0)
				memset(&slots[s], 0, sizeof(slots[s]));
		}
		got += rc;
		want -= (unsigned)sub;
	}
	put(" reaped %ld digest %016llx ring=%u", got, (unsigned long long)digest, ring_ready(c));
	endline();
}

/* Changes to the files that pending polls wait on. */
static void op_env(void)
{
	unsigned k = rnd(4);
	if (k == 0) {
		int n = 1 + (int)rnd(4);
		ssize_t w = write(fds[F_PIPE_W], "wxyz", (size_t)n);
		put("env: pipe write %d = %s", n, errname(w < 0 ? -errno : w));
	} else if (k == 1) {
		static char sink[1 << 16];
		ssize_t rd = read(fds[F_PIPE_R], sink, sizeof(sink));
		put("env: pipe drain = %s", errname(rd < 0 ? -errno : rd));
	} else if (k == 2) {
		uint64_t v = 1 + rnd(2);
		ssize_t w = write(fds[F_EFD], &v, sizeof(v));
		put("env: eventfd add %lu = %s", (unsigned long)v, errname(w < 0 ? -errno : w));
	} else {
		uint64_t v = 0;
		ssize_t rd = read(fds[F_EFD], &v, sizeof(v));
		put("env: eventfd read = %s value %lu", errname(rd < 0 ? -errno : rd), (unsigned long)v);
	}
	endline();
}

/* ------------------------------------------------------------------ main */

static int report_lib(struct dl_phdr_info *info, size_t size, void *data)
{
	(void)size;
	(void)data;
	if (info->dlpi_name && strstr(info->dlpi_name, "libaio.so")) {
		char real[4096];
		fprintf(stderr, "aiofuzz-loaded: %s\n",
			realpath(info->dlpi_name, real) ? real : info->dlpi_name);
	}
	return 0;
}

static void pin_cpu(void)
{
	int cpu = sched_getcpu();
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu < 0 ? 0 : cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) && cpu >= 0) {
		/* Not fatal: only the point of -EAGAIN may move. */
		fprintf(stderr, "aiofuzz: sched_setaffinity: %s\n", strerror(errno));
	}
}

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: %s SEED [OPS]\n", argv[0]);
		return 2;
	}
	unsigned long long seed = strtoull(argv[1], NULL, 0);
	long ops = argc > 2 ? strtol(argv[2], NULL, 0) : 300;
	rng = seed * 0x2545f4914f6cdd1dull + 1;
	trace = getenv("FUZZ_TRACE") != NULL; /* each call on stderr before it is made */
	struct rlimit none = { 0, 0 };
	setrlimit(RLIMIT_CORE, &none);
	dl_iterate_phdr(report_lib, NULL);
	pin_cpu();
	arena_init();
	files_init();
	printf("aiofuzz seed %llu ops %ld\n", seed, ops);
	for (opno = 1; opno <= (unsigned)ops; opno++) {
		unsigned r = rnd(1000);
		int live = nlive();
		if (!live && r < 600)
			r = 0; /* mostly set a context up first */
		/* io_destroy waits for an RCU grace period (~30 ms): kept rare. */
		if (r < 35)
			op_setup();
		else if (r < 47)
			op_destroy();
		else if (r < 367)
			op_submit(0);
		else if (r < 392)
			op_submit(1);
		else if (r < 772)
			op_getevents();
		else if (r < 882)
			op_cancel();
		else if (r < 907)
			op_ring();
		else if (r < 922)
			op_advance();
		else
			op_env();
		settle();
		canon_rings();
	}
	/* The contexts left are torn down by exit (one grace period for all). */
	put("end:");
	for (int c = 0; c < ncx; c++)
		if (cxs[c].state == CX_LIVE)
			put(" ctx#%d ring=%u", c, ring_ready(c));
	endline();
	return 0;
}
