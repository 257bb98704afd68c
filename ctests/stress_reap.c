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
 *
 * Only totals are printed, so both libraries print the same.
 */
#include "common.h"
#include <poll.h>
#include <sys/eventfd.h>
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
	return 0;
}
