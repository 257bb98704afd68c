/*
 * Shared helpers of the C conformance suite.
 *
 * Every program in ctests/ is linked against the soname libaio.so.1 and run
 * twice by tests/ctests.rs: once with Debian's libaio and once with ours. What
 * a program prints on stdout is its observable behaviour, and the two runs
 * must print the same; CHECK() failures (exit status 1) fail the run outright.
 * Print only what libaio defines: return values, errno, event results. Never
 * addresses, timings or anything else that differs between two runs.
 */
#ifndef CTESTS_COMMON_H
#define CTESTS_COMMON_H

#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <libaio.h>

#define CHECK(cond)                                                                \
	do {                                                                       \
		if (!(cond)) {                                                     \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__,     \
				__LINE__, #cond);                                  \
			exit(1);                                                   \
		}                                                                  \
	} while (0)

/* An observation: stdout, compared between the two libraries. */
#define SAY(...) (printf(__VA_ARGS__), fflush(stdout))

/* errno must come back untouched from every libaio call. */
#define ERRNO_SENTINEL 4242

/* Runs a libaio call with errno set to a sentinel, checks errno is unchanged,
 * prints "label = result" and evaluates to the result. */
#define CALL(label, expr)                                                          \
	({                                                                         \
		errno = ERRNO_SENTINEL;                                            \
		long __r = (long)(expr);                                           \
		if (errno != ERRNO_SENTINEL) {                                     \
			fprintf(stderr, "%s:%d: %s changed errno to %d\n",         \
				__FILE__, __LINE__, label, errno);                 \
			exit(1);                                                   \
		}                                                                  \
		SAY("%s = %s\n", label, errname(__r));                             \
		__r;                                                               \
	})

/* A result as text: a count, or -ENAME for a negative errno. */
static inline const char *errname(long r)
{
	static char buf[64];
	if (r >= 0) {
		snprintf(buf, sizeof(buf), "%ld", r);
		return buf;
	}
	const char *n = strerrorname_np((int)-r);
	snprintf(buf, sizeof(buf), "-%s", n ? n : "E?");
	return buf;
}

static int report_one(struct dl_phdr_info *info, size_t size, void *data)
{
	(void)size;
	(void)data;
	if (info->dlpi_name && strstr(info->dlpi_name, "libaio.so")) {
		char real[4096];
		const char *p = realpath(info->dlpi_name, real) ? real : info->dlpi_name;
		fprintf(stderr, "ctest-loaded: %s\n", p);
	}
	return 0;
}

/* Tells the runner which libaio this process loaded (stderr, not compared). */
__attribute__((constructor)) static void report_loaded_libaio(void)
{
	dl_iterate_phdr(report_one, NULL);
}

/* A scratch file in $CTEST_TMPDIR (or /tmp), unlinked at once. */
static inline int scratch_fd(int flags)
{
	const char *dir = getenv("CTEST_TMPDIR");
	char path[4096];
	snprintf(path, sizeof(path), "%s/ctest-XXXXXX", dir ? dir : "/tmp");
	int fd = mkostemp(path, flags);
	CHECK(fd >= 0);
	unlink(path);
	return fd;
}

/* ---- Helpers shared by several programs (additions) ---- */

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>

/* The kernel's completion ring header, at the address io_setup hands out. */
struct ctest_aio_ring {
	unsigned id, nr, head, tail;
	unsigned magic, compat_features, incompat_features, header_length;
};
#define CTEST_AIO_RING_MAGIC 0xa10a10a1u

/* Monotonic milliseconds, for bounding waits (never printed). */
static inline long long now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static inline void sleep_ms(long ms)
{
	struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&t, &t) != 0 && errno == EINTR)
		;
}

static inline struct timespec ms_timeout(long ms)
{
	struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };
	return t;
}

/* An io_event's result, as CALL prints results: a count or -ENAME. Uses its
 * own rotating buffers, so several may appear in one SAY. */
static inline const char *resname(unsigned long res)
{
	static char bufs[8][64];
	static int next;
	char *buf = bufs[next++ % 8];
	snprintf(buf, 64, "%s", errname((long)res));
	return buf;
}

/*
 * Waits (at most 20 s, else the program fails) until thread `tid` of this
 * process is inside system call `nr`, as /proc/self/task/TID/syscall shows.
 * Lets a test deliver a signal or destroy a context while another thread
 * really is blocked in the kernel, whatever the machine's load. Our library's
 * user-space engines wait in futex(2) or io_uring_enter(2) inside
 * io_getevents, which counts as well (the waiting threads of these programs
 * make no such call themselves).
 */
static inline void wait_in_syscall(pid_t tid, long nr)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)tid);
	long long deadline = now_ms() + 20000;
	for (;;) {
		FILE *f = fopen(path, "r");
		CHECK(f != NULL);
		long cur = -2;
		int got = fscanf(f, "%ld", &cur);
		fclose(f);
		/* A user-space engine sleeps in futex, or io_uring_enter (the
		 * io_uring engine's drainer), inside io_getevents. */
		if (got == 1 && (cur == nr || cur == SYS_futex || cur == SYS_io_uring_enter)) {
			/* Give it a moment to go to sleep inside the call (not needed
			 * for correctness: a signal or destroy anywhere in it counts). */
			sleep_ms(20);
			return;
		}
		CHECK(now_ms() < deadline);
		sleep_ms(2);
	}
}

/* The number of the io_getevents and io_pgetevents system calls. */
#define CTEST_NR_IO_GETEVENTS ((long)SYS_io_getevents)
#ifdef SYS_io_pgetevents
#define CTEST_NR_IO_PGETEVENTS ((long)SYS_io_pgetevents)
#else
#define CTEST_NR_IO_PGETEVENTS 333L /* x86_64 */
#endif

/* Reaps exactly `n` events within 20 s (else fails), into ev. */
static inline void reap_exactly(io_context_t ctx, struct io_event *ev, int n)
{
	int got = 0;
	long long deadline = now_ms() + 20000;
	while (got < n) {
		struct timespec t = ms_timeout(1000);
		int r = io_getevents(ctx, 1, n - got, ev + got, &t);
		CHECK(r >= 0);
		got += r;
		CHECK(now_ms() < deadline);
	}
}

/*
 * A helper thread that acts on the calling thread once that one is blocked
 * in a system call: start_when_waiting(&w, nr, sig, fd) returns at once; the
 * helper waits until the caller is inside system call `nr`, then sends it
 * `sig` (if not 0), then, if `fd` >= 0, waits 50 ms and writes a byte to
 * `fd` (completing a poll, say). finish_when_waiting joins it.
 */
struct when_waiting {
	pid_t tid;
	long nr;
	int sig;
	int fd;
	pthread_t thread;
};

static inline void *when_waiting_main(void *arg)
{
	struct when_waiting *w = arg;
	wait_in_syscall(w->tid, w->nr);
	if (w->sig)
		CHECK(syscall(SYS_tgkill, getpid(), w->tid, w->sig) == 0);
	if (w->fd >= 0) {
		if (w->sig)
			sleep_ms(50);
		CHECK(write(w->fd, "x", 1) == 1);
	}
	return NULL;
}

static inline void start_when_waiting(struct when_waiting *w, long nr, int sig, int fd)
{
	w->tid = gettid();
	w->nr = nr;
	w->sig = sig;
	w->fd = fd;
	CHECK(pthread_create(&w->thread, NULL, when_waiting_main, w) == 0);
}

static inline void finish_when_waiting(struct when_waiting *w)
{
	CHECK(pthread_join(w->thread, NULL) == 0);
}

/* Submits one iocb and prints "label: io_submit = R", then, once it has
 * completed, ", res=... res2=...". */
static inline void submit_and_show(io_context_t ctx, const char *label, struct iocb *cb)
{
	struct io_event ev;
	int r = io_submit(ctx, 1, &cb);
	SAY("%s: io_submit = %s", label, errname(r));
	if (r == 1) {
		reap_exactly(ctx, &ev, 1);
		CHECK(ev.obj == cb);
		SAY(", res=%s res2=%s", resname(ev.res), resname(ev.res2));
	}
	SAY("\n");
}


/* Waits (at most 20 s) until the ring of `ctx` holds at least `n`
 * completions, without reaping them: reads the ring header as programs such
 * as fio do. */
static inline void wait_ring_ready(io_context_t ctx, unsigned n)
{
	const struct ctest_aio_ring *ring = (const struct ctest_aio_ring *)ctx;
	CHECK(ring->magic == CTEST_AIO_RING_MAGIC);
	long long deadline = now_ms() + 20000;
	for (;;) {
		unsigned head = __atomic_load_n(&ring->head, __ATOMIC_ACQUIRE);
		unsigned tail = __atomic_load_n(&ring->tail, __ATOMIC_ACQUIRE);
		if ((tail + ring->nr - head) % ring->nr >= n)
			return;
		CHECK(now_ms() < deadline);
		sched_yield();
	}
}

/*
 * Under valgrind (tests/sh/ctests_valgrind.sh sets CTEST_UNDER_VALGRIND=1),
 * cases that hand the kernel garbage pointers on purpose are left out:
 * valgrind's own io_submit wrapper reads the iocbs and iovecs it is given,
 * and dies on them. Only the valgrind run skips anything; its output is not
 * compared with anything.
 */
static inline int under_valgrind(void)
{
	return getenv("CTEST_UNDER_VALGRIND") != NULL;
}

/* Whether the io_pgetevents system call is there: valgrind 3.19 does not
 * know it and answers ENOSYS. Everywhere else the suite needs it. */
static inline int have_pgetevents(void)
{
	/* Only valgrind lacks it; elsewhere the raw probe could be refused by a
	 * seccomp filter the program runs under (engine_noaio.sh). */
	if (!under_valgrind())
		return 1;
	int saved = errno;
	long r = syscall(CTEST_NR_IO_PGETEVENTS, 0L, 0L, 0L, NULL, NULL, NULL);
	int missing = r < 0 && errno == ENOSYS;
	errno = saved;
	CHECK(!missing || under_valgrind());
	return !missing;
}

/* Writes `len` bytes of `c` at `off` with plain pwrite. */
static inline void fill_file(int fd, char c, size_t len, off_t off)
{
	/* Aligned, so it also serves O_DIRECT descriptors (len, off aligned too). */
	char buf[4096] __attribute__((aligned(4096)));
	memset(buf, c, sizeof(buf));
	while (len > 0) {
		size_t n = len < sizeof(buf) ? len : sizeof(buf);
		CHECK(pwrite(fd, buf, n, off) == (ssize_t)n);
		len -= n;
		off += (off_t)n;
	}
}

/* Appends `mib` MiB of `c` through the page cache, left dirty: a sync of the
 * file then takes a while. */
static inline void write_dirty(int fd, char c, int mib)
{
	char *big = malloc(1 << 20);
	CHECK(big != NULL);
	memset(big, c, 1 << 20);
	for (int i = 0; i < mib; i++)
		CHECK(write(fd, big, 1 << 20) == 1 << 20);
	free(big);
}

/* A scratch file of `len` bytes of `c`, written through the page cache and
 * synced, opened read-only with O_DIRECT where the file system allows it
 * (else buffered: the same results), unlinked at once. */
static inline int direct_data_fd(char c, size_t len)
{
	char path[4200];
	const char *dir = getenv("CTEST_TMPDIR");
	snprintf(path, sizeof(path), "%s/ctest-direct-XXXXXX", dir ? dir : "/tmp");
	int w = mkstemp(path);
	CHECK(w >= 0);
	fill_file(w, c, len, 0);
	CHECK(fsync(w) == 0);
	int fd = open(path, O_RDONLY | O_DIRECT);
	if (fd < 0)
		fd = open(path, O_RDONLY);
	CHECK(fd >= 0);
	unlink(path);
	close(w);
	return fd;
}

/* Pins the calling thread to one CPU (the first it may run on), so that the
 * kernel's per-CPU request accounting gives the same counts on every run. */
static inline void pin_to_one_cpu(void)
{
	cpu_set_t set;
	CHECK(sched_getaffinity(0, sizeof(set), &set) == 0);
	for (int c = 0; c < CPU_SETSIZE; c++) {
		if (CPU_ISSET(c, &set)) {
			CPU_ZERO(&set);
			CPU_SET(c, &set);
			CHECK(sched_setaffinity(0, sizeof(set), &set) == 0);
			return;
		}
	}
	CHECK(0);
}

/* Installs `fn` for `sig` with the given sa_flags. */
static inline void on_signal(int sig, void (*fn)(int), int flags)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fn;
	sa.sa_flags = flags;
	sigemptyset(&sa.sa_mask);
	CHECK(sigaction(sig, &sa, NULL) == 0);
}

#endif
