/*
 * aiobench: Debian's libaio against ours, both loaded into one process.
 *
 *   aiobench pair LIB_A LIB_B poll  BATCH      [-t s] [-s ms] [-a ARRAYS] [-c 1]
 *   aiobench pair LIB_A LIB_B read  QD FILE    [-t s] [-s ms] [-a ARRAYS] [-c 1]
 *   aiobench pair LIB_A LIB_B soak  QD FILE    [-t s] [-s ms]
 *   aiobench count LIB poll BATCH | read QD FILE  -n OPS [-a ARRAYS]
 *   aiobench calls LIB BATCH -n ROUNDS
 *
 * Workloads (an operation is one I/O: one iocb submitted and reaped):
 *   poll: IO_CMD_POLL on an always-ready eventfd, which completes inside
 *         io_submit: submit a batch, reap it (min_nr = what is missing);
 *   read: 4 KiB random O_DIRECT reads of FILE (a file or a block device) with
 *         QD in flight: reap at least one (min_nr 1, nr QD, no timeout) and
 *         resubmit as many in one io_submit, as fio does.
 * -a ARRAYS: each reap (io_getevents call) writes into the next of ARRAYS
 * distinct event arrays in turn (default 1), as a program with one array per
 * thread, on each thread's stack, does. Each array lies in its own mapping
 * behind a guard page, like a thread stack, so no two share a page.
 *
 * pair: both libraries are dlopen()ed (RTLD_LOCAL: each keeps its own
 * symbols) and take turns in slices of -s ms (default 50) for -t seconds of
 * each (default 1), each on its own context, so both see the same machine at
 * the same moments. A read slice starts with QD reads submitted and ends by
 * reaping what is still in flight. Prints
 *   "a_ns_per_op=X b_ns_per_op=Y a_ops=N b_ops=M".
 * pair -c 1: the same slices, but counting system calls during each library's
 * slices (perf_event_open on the raw_syscalls:sys_enter tracepoint, switched
 * on and off around each slice), so both libraries are counted under the same
 * conditions in one process: those of this thread and of the threads started
 * after the counter (a library's own threads, such as the thread engine's
 * workers), and, as "caller", this thread's alone. Counting slows system
 * calls, so times from such a run are not reported. Prints
 *   "a_syscalls_per_op=X b_syscalls_per_op=Y a_syscalls_per_reap=Z b_syscalls_per_reap=W
 *    a_caller_syscalls_per_op=.. b_caller_syscalls_per_op=.. a_caller_syscalls_per_reap=.. ..."
 * or exits with status 3 when the counter cannot be opened.
 * pair lines also say where each context's ring lies, "a_ring=kernel" (a
 * mapping of the kernel's, /[aio]) or "a_ring=user" (anywhere else: a
 * user-space engine's ring), which shows the engine each library used.
 * soak: `read` in slices of -s ms (default 1000) for -t seconds of each, one
 * line per 10 s of each library's own running time:
 *   "window=K a_ops_per_s=X b_ops_per_s=Y", then "a_eagain=N b_eagain=M"
 * (io_submit answers of -EAGAIN, which a healthy run never sees).
 * count: at least OPS operations on one library, untimed, for counting system
 * calls from outside; prints "ops=N reaps=R" (R: io_getevents calls). Run
 * with a small and a large OPS: the difference leaves set-up out.
 * calls: ROUNDS rounds of `poll` on one library, for valgrind --tool=callgrind.
 *
 * The line "lib: PATH" on stderr names each file really loaded.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <libaio.h>
#include <link.h>
#include <linux/fs.h>
#include <linux/perf_event.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define BS 4096

/* One library and its workload state. */
struct lib {
	int (*setup)(int, io_context_t *);
	int (*destroy)(io_context_t);
	int (*submit)(io_context_t, long, struct iocb **);
	int (*getevents)(io_context_t, long, long, struct io_event *, struct timespec *);
	io_context_t ctx;
	int n; /* batch or queue depth */
	struct iocb *cbs;
	struct iocb **cbp;
	struct io_event *evs;     /* the array of the current reap */
	struct io_event **arrays; /* -a: the arrays taken in turn */
	int narrays, next_array;
	int inflight;
	long ops, eagain, reaps;
	long long syscalls, caller_syscalls; /* pair -c: all threads; this one */
	double seconds;
};

static void die(const char *what)
{
	fprintf(stderr, "aiobench: %s\n", what);
	exit(2);
}

static void *sym(void *h, const char *name, const char *version)
{
	void *p = version ? dlvsym(h, name, version) : dlsym(h, name);
	if (!p) {
		fprintf(stderr, "aiobench: %s: %s\n", name, dlerror());
		exit(2);
	}
	return p;
}

static void load(struct lib *l, const char *path)
{
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		fprintf(stderr, "aiobench: %s\n", dlerror());
		exit(2);
	}
	l->setup = sym(h, "io_setup", NULL);
	l->destroy = sym(h, "io_destroy", NULL);
	l->submit = sym(h, "io_submit", NULL);
	l->getevents = sym(h, "io_getevents", "LIBAIO_0.4");
	struct link_map *lm;
	if (dlinfo(h, RTLD_DI_LINKMAP, &lm) == 0) {
		char real[4096];
		fprintf(stderr, "lib: %s\n", realpath(lm->l_name, real) ? real : lm->l_name);
	}
}

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

static int narrays = 1; /* -a */

/* An array of n events in a mapping of its own, after a guard page (like a
 * thread stack), placed near the mapping's end as a stack variable would be. */
static struct io_event *mapped_events(int n)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t need = n * sizeof(struct io_event) + 256;
	size_t len = page + (need + page - 1) / page * page;
	char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED || mprotect(m, page, PROT_NONE) != 0)
		die("mmap");
	return (struct io_event *)(m + len - need);
}

/* A context for n requests in flight, with n iocbs, pointers and events. */
static void setup_ctx(struct lib *l, int n)
{
	l->n = n;
	if (l->setup(n, &l->ctx) != 0)
		die("io_setup");
	l->cbs = calloc(n, sizeof(*l->cbs));
	l->cbp = calloc(n, sizeof(*l->cbp));
	l->narrays = narrays;
	l->arrays = calloc(narrays, sizeof(*l->arrays));
	if (!l->cbs || !l->cbp || !l->arrays)
		die("calloc");
	for (int i = 0; i < narrays; i++)
		if (!(l->arrays[i] = narrays == 1 ? calloc(n, sizeof(struct io_event)) : mapped_events(n)))
			die("calloc");
	l->evs = l->arrays[0];
}

/* The array the next reap writes into. */
static inline void next_events(struct lib *l)
{
	l->evs = l->arrays[l->next_array];
	if (++l->next_array == l->narrays)
		l->next_array = 0;
}

static inline int reap(struct lib *l, long min_nr, long nr, struct io_event *evs)
{
	l->reaps++;
	return l->getevents(l->ctx, min_nr, nr, evs, NULL);
}

/* ---- poll: IO_CMD_POLL on an always-ready eventfd ---- */

static int ready_efd = -1;

static void poll_setup(struct lib *l, int batch)
{
	if (ready_efd < 0 && (ready_efd = eventfd(1, EFD_NONBLOCK)) < 0) /* count 1: always readable */
		die("eventfd");
	setup_ctx(l, batch);
	for (int i = 0; i < batch; i++) {
		io_prep_poll(&l->cbs[i], ready_efd, POLLIN);
		l->cbp[i] = &l->cbs[i];
	}
}

/* Submits a batch and reaps it; returns the batch size. */
static inline int poll_round(struct lib *l)
{
	int batch = l->n;
	int r = l->submit(l->ctx, batch, l->cbp);
	if (r != batch) {
		fprintf(stderr, "aiobench: io_submit = %d\n", r);
		exit(2);
	}
	next_events(l);
	for (int got = 0; got < batch;) {
		r = reap(l, batch - got, batch - got, l->evs + got);
		if (r <= 0) {
			fprintf(stderr, "aiobench: io_getevents = %d\n", r);
			exit(2);
		}
		for (int i = got; i < got + r; i++)
			if (l->evs[i].res != POLLIN)
				die("poll event result");
		got += r;
	}
	return batch;
}

/* ---- read: random 4 KiB O_DIRECT reads at queue depth QD ---- */

static int rfd = -1;
static long nblocks;
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static void prep_read(struct iocb *cb)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	io_prep_pread(cb, rfd, cb->u.c.buf, BS, (long long)(rng % nblocks) * BS);
}

static void read_setup(struct lib *l, int qd, const char *file)
{
	if (rfd < 0) {
		rfd = open(file, O_RDONLY | O_DIRECT);
		if (rfd < 0)
			die("open O_DIRECT");
		struct stat st;
		if (fstat(rfd, &st) != 0)
			die("fstat");
		long long size = st.st_size;
		if (S_ISBLK(st.st_mode) && ioctl(rfd, BLKGETSIZE64, &size) != 0)
			die("BLKGETSIZE64");
		nblocks = size / BS;
		if (nblocks < 1)
			die("file too small");
	}
	setup_ctx(l, qd);
	for (int i = 0; i < qd; i++) {
		void *buf;
		if (posix_memalign(&buf, BS, BS))
			die("posix_memalign");
		memset(buf, 0, BS);
		l->cbs[i].u.c.buf = buf;
		prep_read(&l->cbs[i]);
	}
}

/* Submits n iocbs from cbp, retrying what the kernel did not take. */
static void submit_all(struct lib *l, int n)
{
	struct iocb **p = l->cbp;
	while (n > 0) {
		int r = l->submit(l->ctx, n, p);
		if (r == -EAGAIN) {
			l->eagain++;
			continue;
		}
		if (r <= 0) {
			fprintf(stderr, "aiobench: io_submit = %d\n", r);
			exit(2);
		}
		p += r;
		n -= r;
		l->inflight += r;
	}
}

/* Fills the queue: every iocb in flight. */
static void read_start(struct lib *l)
{
	for (int i = 0; i < l->n; i++) {
		prep_read(&l->cbs[i]);
		l->cbp[i] = &l->cbs[i];
	}
	submit_all(l, l->n);
}

/* Reaps at least one read and checks them; resubmits as many unless draining. */
static inline int read_round(struct lib *l, int resubmit)
{
	next_events(l);
	int r = reap(l, 1, l->n, l->evs);
	if (r <= 0) {
		fprintf(stderr, "aiobench: io_getevents = %d\n", r);
		exit(2);
	}
	l->inflight -= r;
	for (int i = 0; i < r; i++) {
		if (l->evs[i].res != BS) {
			fprintf(stderr, "aiobench: read result %ld\n", (long)l->evs[i].res);
			exit(2);
		}
		struct iocb *cb = l->evs[i].obj;
		prep_read(cb);
		l->cbp[i] = cb;
	}
	if (resubmit)
		submit_all(l, r);
	return r;
}

/* ---- slices ---- */

enum workload { POLL, READ };

/* ---- counting this thread's system calls (pair -c) ---- */

/* sc_fd[0]: this thread; sc_fd[1]: this thread and those it starts later
 * (inherit), such as a library's worker threads. */
static int sc_fd[2] = { -1, -1 };
static long long sc_last[2], sc_own[2]; /* last readings; calls of a bare on/off */

static long long sc_read(int i)
{
	long long v;
	if (read(sc_fd[i], &v, sizeof(v)) != sizeof(v))
		die("read of the syscall counter");
	return v;
}

static void sc_on(void)
{
	ioctl(sc_fd[0], PERF_EVENT_IOC_ENABLE, 0);
	ioctl(sc_fd[1], PERF_EVENT_IOC_ENABLE, 0);
}

static void sc_off(void)
{
	ioctl(sc_fd[1], PERF_EVENT_IOC_DISABLE, 0);
	ioctl(sc_fd[0], PERF_EVENT_IOC_DISABLE, 0);
}

/* The tracepoint's id, from tracefs wherever it is mounted. */
static int sc_open(void)
{
	const char *ids[] = { "/sys/kernel/tracing/events/raw_syscalls/sys_enter/id",
			      "/sys/kernel/debug/tracing/events/raw_syscalls/sys_enter/id" };
	long long id = -1;
	for (unsigned i = 0; i < sizeof(ids) / sizeof(ids[0]) && id < 0; i++) {
		FILE *f = fopen(ids[i], "r");
		if (f) {
			if (fscanf(f, "%lld", &id) != 1)
				id = -1;
			fclose(f);
		}
	}
	if (id < 0)
		return -1;
	for (int i = 0; i < 2; i++) {
		struct perf_event_attr a;
		memset(&a, 0, sizeof(a));
		a.type = PERF_TYPE_TRACEPOINT;
		a.size = sizeof(a);
		a.config = id;
		a.disabled = 1;
		a.inherit = i;
		sc_fd[i] = syscall(SYS_perf_event_open, &a, 0 /* this thread */, -1, -1, 0);
		if (sc_fd[i] < 0)
			return -1;
	}
	/* The ioctls between the counters' on and off are themselves counted:
	 * measure what a bare on/off adds, to take it off every slice. */
	for (int i = 0; i < 2; i++)
		sc_last[i] = sc_read(i);
	sc_on();
	sc_off();
	for (int i = 0; i < 2; i++) {
		long long v = sc_read(i);
		sc_own[i] = v - sc_last[i];
		sc_last[i] = v;
	}
	return 0;
}

/* Where ctx's ring lies: "kernel" (the kernel's /[aio] mapping), "user"
 * (any other mapping: a user-space engine) or "none". */
static const char *ring_kind(io_context_t ctx)
{
	FILE *f = fopen("/proc/self/maps", "r");
	if (!f)
		return "none";
	char line[4096];
	const char *kind = "none";
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && (unsigned long)ctx >= lo &&
		    (unsigned long)ctx < hi) {
			kind = strstr(line, "/[aio]") ? "kernel" : "user";
			break;
		}
	}
	fclose(f);
	return kind;
}

/* Runs one slice of `ms` on l; adds its operations and time (and with
 * pair -c its system calls). */
static void slice(struct lib *l, enum workload w, double ms)
{
	if (sc_fd[0] >= 0)
		sc_on();
	double start = now(), end = start + ms / 1000;
	long ops = 0;
	if (w == POLL) {
		do {
			for (int k = 0; k < 16; k++)
				ops += poll_round(l);
		} while (now() < end);
	} else {
		read_start(l);
		do {
			for (int k = 0; k < 16; k++)
				ops += read_round(l, 1);
		} while (now() < end);
		while (l->inflight > 0)
			ops += read_round(l, 0);
	}
	l->seconds += now() - start;
	l->ops += ops;
	if (sc_fd[0] >= 0) {
		sc_off();
		long long v0 = sc_read(0), v1 = sc_read(1);
		l->caller_syscalls += v0 - sc_last[0] - sc_own[0];
		l->syscalls += v1 - sc_last[1] - sc_own[1];
		sc_last[0] = v0, sc_last[1] = v1;
	}
}

struct opts {
	double seconds, slice_ms;
	long ops;
};

static void pair(struct lib *a, struct lib *b, enum workload w, struct opts *o, int soak)
{
	/* Warm-up: a slice of each, not counted. */
	slice(a, w, o->slice_ms);
	slice(b, w, o->slice_ms);
	a->ops = b->ops = 0;
	a->reaps = b->reaps = 0;
	a->syscalls = b->syscalls = 0;
	a->caller_syscalls = b->caller_syscalls = 0;
	a->seconds = b->seconds = 0;
	a->eagain = b->eagain = 0;
	long wa = 0, wb = 0;
	double ta = 0, tb = 0;
	int window = 0;
	while (a->seconds < o->seconds || b->seconds < o->seconds) {
		slice(a, w, o->slice_ms);
		slice(b, w, o->slice_ms);
		if (soak && a->seconds - ta >= 10 && b->seconds - tb >= 10) {
			printf("window=%d a_ops_per_s=%.0f b_ops_per_s=%.0f\n", ++window,
			       (a->ops - wa) / (a->seconds - ta), (b->ops - wb) / (b->seconds - tb));
			fflush(stdout);
			wa = a->ops, wb = b->ops, ta = a->seconds, tb = b->seconds;
		}
	}
	if (soak)
		printf("a_eagain=%ld b_eagain=%ld\n", a->eagain, b->eagain);
	else if (sc_fd[0] >= 0)
		printf("a_syscalls_per_op=%.4f b_syscalls_per_op=%.4f a_syscalls_per_reap=%.4f "
		       "b_syscalls_per_reap=%.4f a_caller_syscalls_per_op=%.4f b_caller_syscalls_per_op=%.4f "
		       "a_caller_syscalls_per_reap=%.4f b_caller_syscalls_per_reap=%.4f a_ops=%ld b_ops=%ld "
		       "a_ring=%s b_ring=%s\n",
		       (double)a->syscalls / a->ops, (double)b->syscalls / b->ops,
		       (double)a->syscalls / a->reaps, (double)b->syscalls / b->reaps,
		       (double)a->caller_syscalls / a->ops, (double)b->caller_syscalls / b->ops,
		       (double)a->caller_syscalls / a->reaps, (double)b->caller_syscalls / b->reaps, a->ops,
		       b->ops, ring_kind(a->ctx), ring_kind(b->ctx));
	else
		printf("a_ns_per_op=%.1f b_ns_per_op=%.1f a_ops=%ld b_ops=%ld a_ring=%s b_ring=%s\n",
		       a->seconds * 1e9 / a->ops, b->seconds * 1e9 / b->ops, a->ops, b->ops, ring_kind(a->ctx),
		       ring_kind(b->ctx));
}

static void count(struct lib *l, enum workload w, long ops)
{
	long done = 0;
	if (w == POLL) {
		while (done < ops)
			done += poll_round(l);
	} else {
		read_start(l);
		while (done < ops)
			done += read_round(l, 1);
	}
	printf("ops=%ld reaps=%ld\n", done, l->reaps);
}

static void usage(void)
{
	fprintf(stderr, "usage: aiobench pair LIB_A LIB_B poll BATCH | read|soak QD FILE  [-t s] [-s ms] [-a ARRAYS] [-c 1]\n"
			"       aiobench count LIB poll BATCH | read QD FILE  -n OPS [-a ARRAYS]\n"
			"       aiobench calls LIB BATCH -n ROUNDS\n");
	exit(2);
}

int main(int argc, char **argv)
{
	if (argc < 4)
		usage();
	const char *cmd = argv[1];
	int nlibs = !strcmp(cmd, "pair") ? 2 : 1;
	int argi = 2 + nlibs;
	const char *mode = !strcmp(cmd, "calls") ? "poll" : argv[argi++];
	if (argi >= argc)
		usage();
	int param = atoi(argv[argi++]);
	const char *file = NULL;
	int soak = !strcmp(mode, "soak");
	enum workload w = !strcmp(mode, "poll") ? POLL : READ;
	if (w == READ) {
		if (strcmp(mode, "read") && !soak)
			usage();
		if (argi >= argc)
			usage();
		file = argv[argi++];
	}
	struct opts o = { .seconds = 1.0, .slice_ms = soak ? 1000 : 50, .ops = 0 };
	int counting = 0;
	for (; argi + 1 < argc; argi += 2) {
		if (!strcmp(argv[argi], "-t"))
			o.seconds = atof(argv[argi + 1]);
		else if (!strcmp(argv[argi], "-s"))
			o.slice_ms = atof(argv[argi + 1]);
		else if (!strcmp(argv[argi], "-n"))
			o.ops = atol(argv[argi + 1]);
		else if (!strcmp(argv[argi], "-a"))
			narrays = atoi(argv[argi + 1]);
		else if (!strcmp(argv[argi], "-c"))
			counting = atoi(argv[argi + 1]);
		else
			usage();
	}
	if (param < 1)
		die("BATCH/QD must be at least 1");
	if (narrays < 1)
		die("ARRAYS must be at least 1");

	struct lib libs[2];
	memset(libs, 0, sizeof(libs));
	for (int i = 0; i < nlibs; i++) {
		load(&libs[i], argv[2 + i]);
		if (w == POLL)
			poll_setup(&libs[i], param);
		else
			read_setup(&libs[i], param, file);
	}
	if (!strcmp(cmd, "pair")) {
		if (counting && (soak || sc_open() != 0)) {
			fprintf(stderr, "aiobench: cannot count system calls here (perf_event_open of "
					"raw_syscalls:sys_enter: needs tracefs and root)\n");
			return 3;
		}
		pair(&libs[0], &libs[1], w, &o, soak);
	} else if (!strcmp(cmd, "count")) {
		if (o.ops <= 0)
			usage();
		count(&libs[0], w, o.ops);
	} else if (!strcmp(cmd, "calls")) {
		for (long i = 0; i < (o.ops > 0 ? o.ops : 1000); i++)
			poll_round(&libs[0]);
	} else {
		usage();
	}
	for (int i = 0; i < nlibs; i++)
		libs[i].destroy(libs[i].ctx);
	return 0;
}
