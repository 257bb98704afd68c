/*
 * stress_reap: every completion is delivered exactly once, whoever reaps it.
 *
 * Our io_getevents may take completions straight from the ring in user space,
 * and the kernel's own io_getevents must never run on the same ring at that
 * moment. This program hammers one context from many threads and counts every
 * completion by the unique tag in iocb.data:
 *
 * 1. Submitters send TAGS requests of three kinds: IO_CMD_POLL on an
 *    always-ready eventfd (completes inside io_submit), small buffered reads
 *    of a file (complete inside io_submit, data checked), and IO_CMD_POLL on
 *    an eventfd that a ticker thread makes readable now and then (completes
 *    later, from another thread, waking reapers blocked in the kernel).
 *    Reapers cycle through min_nr 0, 1 and several; zero, short and NULL
 *    timeouts; io_getevents and io_pgetevents. Sentinel polls wake blocked
 *    reapers at the end and are not counted.
 * 2. io_destroy races reapers blocked in the kernel (io_getevents and
 *    io_pgetevents, NULL and long timeouts): each must return -EINVAL.
 * 3. A child made by fork() or by the raw fork system call (no atfork
 *    handlers run) must not take the parent's completions from the ring it
 *    still has mapped: the parent gets every one.
 * 4. Argument checks with completions waiting in the ring: libaio's answers.
 * 5. io_destroy, then an io_setup that gets the same address back, round
 *    after round, while reapers keep calling with the value they hold: every
 *    completion of each new context is still delivered exactly once.
 *
 * Only totals are printed, so both libraries print the same.
 */
#include "common.h"
#include <linux/userfaultfd.h>
#include <poll.h>
#include <setjmp.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define TAGS_FULL 240000
#define TAGS_VALGRIND 3000 /* under valgrind, which runs one thread at a time, slowly */
#define SUBMITTERS 3
#define REAPERS 5
#define CAP 192	   /* requests in flight, at most */
#define READ_LEN 64
#define SENTINEL ((void *)-1L)

static io_context_t ctx;
static int ready_efd, async_efd, file_fd;
static struct iocb *cbs;
static unsigned char (*bufs)[READ_LEN];
static _Atomic unsigned char *seen;
static atomic_long inflight, delivered, bad_results, submitted_all;
static atomic_int stop, reapers_alive;
static struct iocb sentinel;
static long TAGS = TAGS_FULL;
static int pgetevents_ok;

/* io_pgetevents, or io_getevents where the system call is missing (valgrind 3.19). */
static int pget(io_context_t c, long min_nr, long nr, struct io_event *ev, struct timespec *t,
		sigset_t *mask)
{
	return pgetevents_ok ? io_pgetevents(c, min_nr, nr, ev, t, mask) : io_getevents(c, min_nr, nr, ev, t);
}

static unsigned char pattern(long tag)
{
	return (unsigned char)(tag * 7 + 3);
}

static int kind(long tag)
{
	return (int)(tag % 3); /* 0 ready poll, 1 read, 2 later poll */
}

static void prep(long tag)
{
	struct iocb *cb = &cbs[tag];
	switch (kind(tag)) {
	case 0:
		io_prep_poll(cb, ready_efd, POLLIN);
		break;
	case 1:
		io_prep_pread(cb, file_fd, bufs[tag], READ_LEN, (long long)tag * READ_LEN);
		break;
	default:
		io_prep_poll(cb, async_efd, POLLIN);
		break;
	}
	cb->data = (void *)tag;
}

static void count(struct io_event *ev, int n)
{
	long real = 0;
	for (int i = 0; i < n; i++) {
		if (ev[i].data == SENTINEL)
			continue;
		long tag = (long)ev[i].data;
		if (tag < 0 || tag >= TAGS || ev[i].obj != &cbs[tag]) {
			atomic_fetch_add(&bad_results, 1);
			continue;
		}
		int ok = kind(tag) == 1 ? ev[i].res == READ_LEN && bufs[tag][0] == pattern(tag) &&
						  bufs[tag][READ_LEN - 1] == pattern(tag)
					: ev[i].res == POLLIN;
		if (!ok)
			atomic_fetch_add(&bad_results, 1);
		atomic_fetch_add(&seen[tag], 1);
		real++;
	}
	if (real) {
		atomic_fetch_sub(&inflight, real);
		atomic_fetch_add(&delivered, real);
	}
}

static void *submitter(void *arg)
{
	long id = (long)arg;
	struct iocb *list[8];
	long tag = id, round = 0;
	while (tag < TAGS) {
		int want = 1 + (int)(round++ % 8), n = 0;
		for (long t = tag; n < want && t < TAGS; t += SUBMITTERS)
			list[n++] = &cbs[t];
		while (atomic_load(&inflight) + n > CAP)
			sched_yield();
		atomic_fetch_add(&inflight, n);
		int done = 0;
		while (done < n) {
			int r = io_submit(ctx, n - done, list + done);
			if (r == -EAGAIN) {
				sched_yield();
				continue;
			}
			CHECK(r > 0);
			done += r;
		}
		tag += (long)n * SUBMITTERS;
	}
	atomic_fetch_add(&submitted_all, 1);
	return NULL;
}

static void *reaper(void *arg)
{
	long id = (long)arg;
	struct io_event ev[16];
	sigset_t none;
	sigemptyset(&none);
	for (unsigned long i = id; !atomic_load(&stop); i++) {
		struct timespec zero = { 0, 0 }, shortt = { 0, 200000 };
		int r;
		switch (i % 8) {
		case 0: /* poll the ring */
			r = io_getevents(ctx, 0, 16, ev, &zero);
			break;
		case 1: /* block for one */
			r = io_getevents(ctx, 1, 16, ev, NULL);
			break;
		case 2: /* several, short wait */
			r = io_getevents(ctx, 4, 8, ev, &shortt);
			break;
		case 3: /* several, no time limit */
			r = io_getevents(ctx, 3, 3, ev, NULL);
			break;
		case 4:
			r = pget(ctx, 0, 16, ev, &zero, &none);
			break;
		case 5:
			r = pget(ctx, 2, 16, ev, NULL, &none);
			break;
		case 6: /* at least one, zero timeout: whatever is there */
			r = io_getevents(ctx, 1, 1, ev, &zero);
			break;
		default:
			r = pget(ctx, 1, 4, ev, &shortt, NULL);
			break;
		}
		CHECK(r >= 0);
		count(ev, r);
		if (r == 0)
			sched_yield();
	}
	atomic_fetch_sub(&reapers_alive, 1);
	return NULL;
}

static void *ticker(void *arg)
{
	(void)arg;
	uint64_t v;
	while (!atomic_load(&stop)) {
		CHECK(eventfd_write(async_efd, 1) == 0);
		struct timespec t = { 0, 50000 };
		nanosleep(&t, NULL);
		(void)eventfd_read(async_efd, &v); /* back to not readable */
		nanosleep(&t, NULL);
	}
	return NULL;
}

static void many_threads(void)
{
	cbs = calloc(TAGS, sizeof(*cbs));
	bufs = calloc(TAGS, READ_LEN);
	seen = calloc(TAGS, 1);
	CHECK(cbs && bufs && seen);

	ready_efd = eventfd(1, EFD_NONBLOCK);
	async_efd = eventfd(0, EFD_NONBLOCK);
	CHECK(ready_efd >= 0 && async_efd >= 0);
	const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("CTEST_TMPDIR");
	char path[4096];
	snprintf(path, sizeof(path), "%s/stress-reap-XXXXXX", dir ? dir : "/tmp");
	file_fd = mkstemp(path);
	CHECK(file_fd >= 0);
	unlink(path);
	unsigned char *content = malloc((size_t)TAGS * READ_LEN);
	CHECK(content);
	for (long t = 0; t < TAGS; t++)
		memset(content + t * READ_LEN, pattern(t), READ_LEN);
	CHECK(pwrite(file_fd, content, (size_t)TAGS * READ_LEN, 0) == (ssize_t)TAGS * READ_LEN);
	free(content);
	for (long t = 0; t < TAGS; t++)
		prep(t);
	io_prep_poll(&sentinel, ready_efd, POLLIN);
	sentinel.data = SENTINEL;

	CHECK(io_setup(256, &ctx) == 0);
	pthread_t sub[SUBMITTERS], rea[REAPERS], tick;
	atomic_store(&reapers_alive, REAPERS);
	for (long i = 0; i < REAPERS; i++)
		CHECK(pthread_create(&rea[i], NULL, reaper, (void *)i) == 0);
	CHECK(pthread_create(&tick, NULL, ticker, NULL) == 0);
	for (long i = 0; i < SUBMITTERS; i++)
		CHECK(pthread_create(&sub[i], NULL, submitter, (void *)i) == 0);

	for (int i = 0; i < SUBMITTERS; i++)
		CHECK(pthread_join(sub[i], NULL) == 0);
	/* Reapers blocked for more events than are left are woken by sentinels,
	 * until every tag is in (or 60 s pass: then the counts show what is lost),
	 * then until every reaper is out. */
	struct iocb *wake[4] = { &sentinel, &sentinel, &sentinel, &sentinel };
	long long deadline = now_ms() + 60000;
	while (atomic_load(&delivered) < TAGS && now_ms() < deadline) {
		(void)io_submit(ctx, 4, wake);
		sleep_ms(1);
	}
	atomic_store(&stop, 1);
	while (atomic_load(&reapers_alive) > 0) {
		(void)io_submit(ctx, 4, wake);
		sleep_ms(1);
	}
	for (int i = 0; i < REAPERS; i++)
		CHECK(pthread_join(rea[i], NULL) == 0);
	CHECK(pthread_join(tick, NULL) == 0);
	CHECK(io_destroy(ctx) == 0);

	long once = 0, dups = 0, lost = 0, per_kind[3] = { 0, 0, 0 };
	for (long t = 0; t < TAGS; t++) {
		if (seen[t] == 0)
			lost++;
		else {
			once++;
			dups += seen[t] - 1;
			per_kind[kind(t)]++;
		}
	}
	SAY("many threads: tags=%ld delivered=%ld duplicates=%ld lost=%ld bad_results=%ld\n", TAGS, once,
	    dups, lost, atomic_load(&bad_results));
	SAY("many threads: ready polls=%ld reads=%ld later polls=%ld\n", per_kind[0], per_kind[1],
	    per_kind[2]);
	close(file_fd);
	close(ready_efd);
	close(async_efd);
}

/* A context of 16 and n polls of an always-ready eventfd (returned), tagged 0..n-1. */
static int ready_polls(io_context_t *c, struct iocb *cb, struct iocb **cbp, int n)
{
	*c = 0;
	CHECK(io_setup(16, c) == 0);
	int efd = eventfd(1, 0);
	CHECK(efd >= 0);
	for (int i = 0; i < n; i++) {
		io_prep_poll(&cb[i], efd, POLLIN);
		cb[i].data = (void *)(long)i;
		cbp[i] = &cb[i];
	}
	return efd;
}

/* ---- 2. io_destroy racing reapers blocked in the kernel ---- */

struct blocked {
	io_context_t ctx;
	int how;
	pid_t tid;
	atomic_int started;
	int ret;
	pthread_t thread;
};

static void *block_in_kernel(void *arg)
{
	struct blocked *b = arg;
	struct io_event ev[4];
	struct timespec long_wait = { 30, 0 };
	sigset_t none;
	sigemptyset(&none);
	b->tid = gettid();
	atomic_store(&b->started, 1);
	switch (b->how) {
	case 0:
		b->ret = io_getevents(b->ctx, 1, 4, ev, NULL);
		break;
	case 1:
		b->ret = io_getevents(b->ctx, 2, 4, ev, &long_wait);
		break;
	case 2:
		b->ret = pget(b->ctx, 1, 4, ev, NULL, &none);
		break;
	default:
		b->ret = pget(b->ctx, 4, 4, ev, &long_wait, NULL);
		break;
	}
	return NULL;
}

static void destroy_races_blocked_reapers(void)
{
	enum { ROUNDS = 12, WAITERS = 4 };
	long einval = 0, other = 0, destroyed = 0;
	for (int round = 0; round < ROUNDS; round++) {
		/* Some completions come and go first, so the ring is not pristine. */
		io_context_t c;
		struct iocb cb[3], *cbp[3];
		int efd = ready_polls(&c, cb, cbp, 3);
		CHECK(io_submit(c, 3, cbp) == 3);
		struct io_event ev[3];
		reap_exactly(c, ev, 3);

		struct blocked b[WAITERS];
		for (int i = 0; i < WAITERS; i++) {
			b[i].ctx = c;
			b[i].how = (i + round) % 4;
			atomic_store(&b[i].started, 0);
			CHECK(pthread_create(&b[i].thread, NULL, block_in_kernel, &b[i]) == 0);
		}
		for (int i = 0; i < WAITERS; i++) {
			while (!atomic_load(&b[i].started))
				sched_yield();
			int pgetevents = b[i].how >= 2 && pgetevents_ok;
			wait_in_syscall(b[i].tid, pgetevents ? CTEST_NR_IO_PGETEVENTS : CTEST_NR_IO_GETEVENTS);
		}
		destroyed += io_destroy(c) == 0;
		for (int i = 0; i < WAITERS; i++) {
			CHECK(pthread_join(b[i].thread, NULL) == 0);
			if (b[i].ret == -EINVAL)
				einval++;
			else
				other++;
		}
		close(efd);
	}
	SAY("destroy vs blocked reapers: rounds=%d destroyed=%ld reapers=%d einval=%ld other=%ld\n", ROUNDS,
	    destroyed, ROUNDS * WAITERS, einval, other);
}

/* ---- 3. a forked child must not take the parent's completions ---- */

static void fork_keeps_completions(int raw)
{
	io_context_t c;
	struct iocb cb[4], *cbp[4];
	int efd = ready_polls(&c, cb, cbp, 4);
	CHECK(io_submit(c, 4, cbp) == 4);
	wait_ring_ready(c, 4);
	int answer[2];
	CHECK(pipe(answer) == 0);
	fflush(stdout);
	pid_t pid = raw ? (pid_t)syscall(SYS_fork) : fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		struct io_event ev[4];
		struct timespec zero = { 0, 0 };
		int r[2] = { io_getevents(c, 1, 4, ev, &zero), io_getevents(c, 1, 4, ev, NULL) };
		/* Through a pipe, not the exit status (which valgrind may take over). */
		_exit(write(answer[1], r, sizeof(r)) == sizeof(r) ? 0 : 1);
	}
	int st, r[2];
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECK(read(answer[0], r, sizeof(r)) == sizeof(r));
	close(answer[0]);
	close(answer[1]);
	struct io_event ev[4];
	struct timespec zero = { 0, 0 };
	int got = io_getevents(c, 0, 4, ev, &zero);
	int mask = 0;
	for (int i = 0; i < got; i++)
		mask |= 1 << (long)ev[i].data;
	SAY("%s child: io_getevents(zero timeout) = %s, io_getevents(NULL) = %s; parent then reaped %d of 4, "
	    "all distinct=%s\n",
	    raw ? "raw fork" : "fork()", errname(r[0]), resname((unsigned long)r[1]), got, mask == 15 ? "yes" : "no");
	CHECK(io_destroy(c) == 0);
	close(efd);
}

/* ---- 4. argument checks with completions waiting ---- */

static void checks_with_events_ready(void)
{
	io_context_t c;
	struct iocb cb[8], *cbp[8];
	int efd = ready_polls(&c, cb, cbp, 8);
	struct io_event ev[8];
	struct timespec zero = { 0, 0 }, ms = ms_timeout(1);
	CALL("io_submit(3 ready polls)", io_submit(c, 3, cbp));
	wait_ring_ready(c, 3);
	CALL("3 ready: io_getevents(min 2 > nr 1)", io_getevents(c, 2, 1, ev, NULL));
	CALL("3 ready: io_getevents(min -1)", io_getevents(c, -1, 4, ev, NULL));
	CALL("3 ready: io_getevents(nr -1, zero timeout)", io_getevents(c, 0, -1, ev, &zero));
	CALL("3 ready: io_pgetevents(min 1 > nr 0)", pget(c, 1, 0, ev, &zero, NULL));
	CALL("3 ready: io_getevents(events NULL)", io_getevents(c, 1, 2, NULL, NULL));
	CALL("3 ready: io_getevents(events 0x10)", io_getevents(c, 1, 2, (struct io_event *)16, &zero));
	CALL("3 ready: io_getevents(0, 0)", io_getevents(c, 0, 0, ev, NULL));
	CALL("3 ready: io_getevents(min 5, zero timeout)", io_getevents(c, 5, 8, ev, &zero));
	CALL("io_submit(3 more)", io_submit(c, 3, cbp + 3));
	wait_ring_ready(c, 3);
	CALL("3 ready: io_getevents(2, 2, 1 ms)", io_getevents(c, 2, 2, ev, &ms));
	CALL("1 ready: io_pgetevents(1, 1, zero)", pget(c, 1, 1, ev, &zero, NULL));
	CALL("empty: io_getevents(1, 1, 1 ms)", io_getevents(c, 1, 1, ev, &ms));
	CALL("empty: io_getevents(min 2 > nr 1, zero timeout)", io_getevents(c, 2, 1, ev, &zero));
	CALL("io_destroy", io_destroy(c));
	close(efd);
}

/* ---- 5. destroy, then a new context at the same address, under reapers ---- */

/*
 * io_destroy unmaps the ring and an io_setup right after it usually gets the
 * same address back, so io_context_t values repeat. Reapers that keep calling
 * with the value they hold are callers on a dead context one moment and on
 * the new one the next. The kernel's own reaping is serialised, so whatever
 * the moment, every completion of the new context is delivered exactly once.
 *
 * Half the reapers wait (zero, short and NULL timeouts, min_nr 0 to 8,
 * io_getevents and io_pgetevents with and without a mask; after finding the
 * context dead, only NULL timeouts, so the next call that gets in waits in
 * the kernel on the new context); the other half poll (zero timeouts, no
 * mask): calls that our library answers in user space when it can.
 *
 * Two stalls that a page fault can cause in any program are made on purpose
 * where userfaultfd allows (privileged, not under valgrind; elsewhere the
 * rounds run without them and print the same), so that every round has the
 * interleavings that matter, not the odd one: io_setup's final write of the
 * new value to *ctxp waits until the waiting reapers are inside the kernel
 * (which already has the new context, while neither the program nor the
 * library has heard of it), and the kernel's copy of events into a waiting
 * reaper's array (the ring's head read, not yet moved on) waits until a
 * polling reaper has made a call, or 2 ms.
 *
 * libaio 0.3.113 reads the ring header at any non-NULL value before the
 * system call, so with it a call made while the address is unmapped faults
 * before reaching the kernel. For a library that does this (found out at
 * start on a PROT_NONE page) such a fault is caught and counts as a call not
 * made; any other fault, and any fault with a library that does not read
 * foreign headers, still kills the program.
 */
#define RE_ROUNDS 40
#define RE_ROUNDS_VALGRIND 4
#define RE_PER_ROUND 48
#define RE_WAITERS 2
#define RE_POLLERS 2
#define RE_SETUP_WAIT_MS 5
#define RE_COPY_WAIT_MS 2
#define RE_FAULTED (-100000)

static _Atomic(io_context_t) re_ctx;
static atomic_int re_stop, re_catch, re_waiter_tid[RE_WAITERS];
static atomic_long re_distinct, re_bad, re_poll_calls;
static _Atomic unsigned char *re_seen;
static struct iocb *re_cbs;
static long re_tags;
static struct sigaction re_segv_before;
static __thread sigjmp_buf re_jump;
static __thread volatile uintptr_t re_armed; /* the page of the ctx being passed, or 0 */

static void re_on_segv(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	uintptr_t a = (uintptr_t)si->si_addr, page = re_armed;
	if (atomic_load(&re_catch) && page && a - page < 4096)
		siglongjmp(re_jump, 1);
	/* A real crash: the faulting access repeats, under the handler from before. */
	sigaction(sig, &re_segv_before, NULL);
}

/* One call on `c`, in way 0-8; RE_FAULTED when the library faulted on the header. */
static int re_call(io_context_t c, int way, struct io_event *ev)
{
	struct timespec zero = { 0, 0 }, shortt = { 0, 200000 };
	sigset_t none;
	sigemptyset(&none);
	re_armed = (uintptr_t)c & ~(uintptr_t)4095;
	if (sigsetjmp(re_jump, 0)) {
		re_armed = 0;
		return RE_FAULTED;
	}
	int r;
	switch (way) {
	case 0:
		r = io_getevents(c, 0, 8, ev, &zero);
		break;
	case 1:
		r = io_getevents(c, 1, 8, ev, NULL);
		break;
	case 2:
		r = io_getevents(c, 2, 8, ev, &shortt);
		break;
	case 3:
		r = pget(c, 0, 8, ev, &zero, NULL);
		break;
	case 4:
		r = pget(c, 3, 8, ev, NULL, NULL);
		break;
	case 5:
		r = io_getevents(c, 1, 1, ev, &zero);
		break;
	case 6:
		r = pget(c, 1, 8, ev, &shortt, &none);
		break;
	case 7:
		r = io_getevents(c, 8, 8, ev, NULL);
		break;
	default:
		r = pget(c, 1, 8, ev, &shortt, NULL);
		break;
	}
	re_armed = 0;
	return r;
}

/* Whether the library reads the header at a value io_setup never gave it
 * (libaio does): a call on a PROT_NONE page faults. */
static int reads_any_header(void)
{
	void *page = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(page != MAP_FAILED);
	struct io_event ev[8];
	atomic_store(&re_catch, 1);
	int r = re_call((io_context_t)page, 0, ev);
	atomic_store(&re_catch, 0);
	CHECK(r == RE_FAULTED || r == -EINVAL);
	munmap(page, 4096);
	return r == RE_FAULTED;
}

/* ---- the waits made with userfaultfd ---- */

static int re_uffd = -1, re_uffd_stop = -1;
static io_context_t *re_ctxp;	 /* where io_setup writes the new value */
static unsigned char *re_arrays; /* one page per waiting reaper, for its events */
static pthread_t re_uffd_thread;

/* Whether every waiting reaper is inside io_getevents or io_pgetevents. */
static int re_waiters_inside(void)
{
	for (int i = 0; i < RE_WAITERS; i++) {
		int tid = atomic_load(&re_waiter_tid[i]);
		if (tid == 0)
			continue; /* not started yet (the first io_setup) */
		char path[64];
		snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", tid);
		FILE *f = fopen(path, "r");
		CHECK(f != NULL);
		long nr = -2;
		int got = fscanf(f, "%ld", &nr);
		fclose(f);
		if (got != 1 || (nr != CTEST_NR_IO_GETEVENTS && nr != CTEST_NR_IO_PGETEVENTS))
			return 0;
	}
	return 1;
}

static void re_protect_ctxp(int on)
{
	struct uffdio_writeprotect wp;
	memset(&wp, 0, sizeof(wp));
	wp.range.start = (uintptr_t)re_ctxp;
	wp.range.len = 4096;
	wp.mode = on ? UFFDIO_WRITEPROTECT_MODE_WP : 0; /* 0 also wakes the writer */
	CHECK(ioctl(re_uffd, UFFDIO_WRITEPROTECT, &wp) == 0);
}

static void re_pause(long long until_ms, int (*done)(void))
{
	while (now_ms() < until_ms && !done()) {
		struct timespec t = { 0, 50000 };
		nanosleep(&t, NULL);
	}
}

static long re_polls_seen;
static int re_a_poll_ran(void)
{
	return atomic_load(&re_poll_calls) >= re_polls_seen + 2; /* one whole call at least */
}

static void *re_fault_handler(void *arg)
{
	(void)arg;
	static unsigned char zeros[4096] __attribute__((aligned(4096)));
	struct pollfd p[2] = { { re_uffd, POLLIN, 0 }, { re_uffd_stop, POLLIN, 0 } };
	for (;;) {
		if (poll(p, 2, -1) < 0) {
			CHECK(errno == EINTR);
			continue;
		}
		if (p[1].revents)
			return NULL;
		struct uffd_msg m;
		if (read(re_uffd, &m, sizeof(m)) != sizeof(m))
			continue;
		CHECK(m.event == UFFD_EVENT_PAGEFAULT);
		uintptr_t page = (uintptr_t)m.arg.pagefault.address & ~(uintptr_t)4095;
		if (page == (uintptr_t)re_ctxp) {
			re_pause(now_ms() + RE_SETUP_WAIT_MS, re_waiters_inside);
			re_protect_ctxp(0);
			continue;
		}
		re_polls_seen = atomic_load(&re_poll_calls);
		re_pause(now_ms() + RE_COPY_WAIT_MS, re_a_poll_ran);
		struct uffdio_copy cp;
		memset(&cp, 0, sizeof(cp));
		cp.dst = page;
		cp.src = (uintptr_t)zeros;
		cp.len = 4096;
		if (ioctl(re_uffd, UFFDIO_COPY, &cp) != 0) {
			CHECK(errno == EEXIST);
			struct uffdio_range r = { page, 4096 };
			CHECK(ioctl(re_uffd, UFFDIO_WAKE, &r) == 0);
		}
	}
}

static void re_waits_start(void)
{
	re_ctxp = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	re_arrays = mmap(NULL, RE_WAITERS * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(re_ctxp != MAP_FAILED && re_arrays != MAP_FAILED);
	*re_ctxp = 0; /* present: only the write-protection makes writes wait */
	if (under_valgrind())
		return;
	/* Without UFFD_USER_MODE_ONLY, so that the kernel's own accesses wait too
	 * (that needs privilege; without it the call fails and nothing waits). */
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return;
	struct uffdio_api api;
	memset(&api, 0, sizeof(api));
	api.api = UFFD_API;
	struct uffdio_register wp, missing;
	memset(&wp, 0, sizeof(wp));
	wp.range.start = (uintptr_t)re_ctxp;
	wp.range.len = 4096;
	wp.mode = UFFDIO_REGISTER_MODE_WP;
	memset(&missing, 0, sizeof(missing));
	missing.range.start = (uintptr_t)re_arrays;
	missing.range.len = RE_WAITERS * 4096;
	missing.mode = UFFDIO_REGISTER_MODE_MISSING;
	if (ioctl(fd, UFFDIO_API, &api) != 0 || ioctl(fd, UFFDIO_REGISTER, &wp) != 0 ||
	    !(wp.ioctls & (1ULL << _UFFDIO_WRITEPROTECT)) || ioctl(fd, UFFDIO_REGISTER, &missing) != 0) {
		close(fd);
		return;
	}
	re_uffd = fd;
	re_uffd_stop = eventfd(0, EFD_CLOEXEC);
	CHECK(re_uffd_stop >= 0);
	CHECK(pthread_create(&re_uffd_thread, NULL, re_fault_handler, NULL) == 0);
}

static void re_waits_stop(void)
{
	if (re_uffd >= 0) {
		CHECK(eventfd_write(re_uffd_stop, 1) == 0);
		CHECK(pthread_join(re_uffd_thread, NULL) == 0);
		close(re_uffd_stop);
		close(re_uffd);
	}
	munmap(re_ctxp, 4096);
	munmap(re_arrays, RE_WAITERS * 4096);
}

/* io_setup, whose write of the new value waits (see above). */
static io_context_t re_setup(void)
{
	*re_ctxp = 0;
	if (re_uffd >= 0)
		re_protect_ctxp(1);
	CHECK(io_setup(64, re_ctxp) == 0);
	return *re_ctxp;
}

/* A waiting reaper's array whose first write by the kernel waits (see above). */
static struct io_event *re_slow_array(long id)
{
	unsigned char *page = re_arrays + id * 4096;
	if (re_uffd >= 0)
		CHECK(madvise(page, 4096, MADV_DONTNEED) == 0); /* missing again */
	return (struct io_event *)page;
}

/* ---- the reapers ---- */

static void re_count(struct io_event *ev, int n)
{
	for (int i = 0; i < n; i++) {
		if (ev[i].data == SENTINEL)
			continue;
		long tag = (long)ev[i].data;
		if (tag < 0 || tag >= re_tags || ev[i].obj != &re_cbs[tag] || ev[i].res != POLLIN) {
			atomic_fetch_add(&re_bad, 1);
			continue;
		}
		if (atomic_fetch_add(&re_seen[tag], 1) == 0)
			atomic_fetch_add(&re_distinct, 1);
	}
}

static void *re_reaper(void *arg)
{
	long id = (long)arg;
	int waiter = id < RE_WAITERS;
	/* Pollers never wait: zero timeouts, no mask. */
	static const int after_dead[] = { 7, 4 }, polls[] = { 0, 3, 5 };
	struct io_event own[8];
	if (waiter)
		atomic_store(&re_waiter_tid[id], gettid());
	unsigned long i = (unsigned long)id;
	int last_dead = 0;
	while (!atomic_load(&re_stop)) {
		io_context_t c = atomic_load(&re_ctx);
		struct io_event *ev = own;
		int way;
		if (!waiter)
			way = polls[i % 3];
		else if (last_dead) {
			way = after_dead[i % 2];
			ev = re_slow_array(id);
		} else
			way = (int)(i % 9);
		i++;
		int r = re_call(c, way, ev);
		if (!waiter)
			atomic_fetch_add(&re_poll_calls, 1);
		last_dead = r == -EINVAL || r == RE_FAULTED;
		if (last_dead) {
			/* Retry soon, not at once: callers that never stop overlapping
			 * keep the dead context's bookkeeping alive in our library, and
			 * then it does not reap the new context in user space at all. */
			struct timespec t = { 0, 20000 };
			nanosleep(&t, NULL);
			continue;
		}
		CHECK(r >= 0);
		re_count(ev, r);
	}
	return NULL;
}

static void destroy_then_setup_same_address(void)
{
	int rounds = under_valgrind() ? RE_ROUNDS_VALGRIND : RE_ROUNDS;
	re_tags = (long)rounds * RE_PER_ROUND;
	re_cbs = calloc(re_tags, sizeof(*re_cbs));
	re_seen = calloc(re_tags, 1);
	CHECK(re_cbs && re_seen);
	int efd = eventfd(1, EFD_NONBLOCK);
	CHECK(efd >= 0);
	for (long t = 0; t < re_tags; t++) {
		io_prep_poll(&re_cbs[t], efd, POLLIN);
		re_cbs[t].data = (void *)t;
	}
	struct iocb sent;
	io_prep_poll(&sent, efd, POLLIN);
	sent.data = SENTINEL;
	struct iocb *wake[4] = { &sent, &sent, &sent, &sent };

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = re_on_segv;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER; /* left by siglongjmp: keep SIGSEGV unblocked */
	sigemptyset(&sa.sa_mask);
	CHECK(sigaction(SIGSEGV, &sa, &re_segv_before) == 0);
	atomic_store(&re_catch, reads_any_header());

	re_waits_start();
	io_context_t c = re_setup();
	atomic_store(&re_ctx, c);
	pthread_t th[RE_WAITERS + RE_POLLERS];
	for (long i = 0; i < RE_WAITERS + RE_POLLERS; i++)
		CHECK(pthread_create(&th[i], NULL, re_reaper, (void *)i) == 0);

	int reused = 0, done = 0;
	long long budget = now_ms() + 30000; /* a library that loses events reaches it (5 s a round); TSan on a busy machine takes about 10 s */
	for (int round = 0; round < rounds && now_ms() < budget; round++, done++) {
		io_context_t old = c;
		CHECK(io_destroy(c) == 0);
		c = re_setup();
		reused += c == old;
		atomic_store(&re_ctx, c);
		/* Tagged polls of an always-ready eventfd: each completes inside
		 * io_submit, in batches of 1 to 8. */
		long first = (long)round * RE_PER_ROUND, next = first;
		for (int b = 0; next < first + RE_PER_ROUND; b++) {
			struct iocb *list[8];
			int n = 0;
			while (n < 1 + b % 8 && next < first + RE_PER_ROUND)
				list[n++] = &re_cbs[next++];
			int r = io_submit(c, n, list);
			if (r == -EAGAIN) { /* ring full of sentinels: the reapers are behind */
				next -= n;
				sched_yield();
				continue;
			}
			CHECK(r > 0);
			next -= n - r;
		}
		/* Sentinels wake reapers that wait for more than is left. */
		long long deadline = now_ms() + 5000;
		while (atomic_load(&re_distinct) < first + RE_PER_ROUND && now_ms() < deadline) {
			(void)io_submit(c, 4, wake);
			struct timespec t = { 0, 50000 };
			nanosleep(&t, NULL);
		}
	}
	atomic_store(&re_stop, 1);
	CHECK(io_destroy(c) == 0); /* wakes the reapers still waiting */
	for (int i = 0; i < RE_WAITERS + RE_POLLERS; i++)
		CHECK(pthread_join(th[i], NULL) == 0);
	CHECK(sigaction(SIGSEGV, &re_segv_before, NULL) == 0);
	re_waits_stop();
	/* The kernel hands the same address back nearly every time (under
	 * valgrind, whose address space manager has a say, not necessarily). */
	CHECK(under_valgrind() || reused >= done / 4);

	long once = 0, dups = 0, lost = 0;
	for (long t = 0; t < re_tags; t++) {
		if (re_seen[t] == 0)
			lost++;
		else {
			once++;
			dups += re_seen[t] - 1;
		}
	}
	SAY("destroy then setup at the same address: rounds=%d tags=%ld delivered=%ld duplicates=%ld lost=%ld "
	    "bad_results=%ld address reused=%s\n",
	    done, re_tags, once, dups, lost, atomic_load(&re_bad), reused ? "yes" : "no");
	close(efd);
	free(re_cbs);
	free((void *)re_seen);
}

int main(void)
{
	pgetevents_ok = have_pgetevents();
	if (under_valgrind())
		TAGS = TAGS_VALGRIND;
	many_threads();
	destroy_races_blocked_reapers();
	fork_keeps_completions(0);
	fork_keeps_completions(1);
	checks_with_events_ready();
	destroy_then_setup_same_address();
	return 0;
}
