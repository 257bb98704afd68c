/*
 * seccomp_allowlist: reaping works in a sandbox that allows nothing but
 * libaio's system calls and what the program itself needs.
 *
 * libaio makes no system call but io_setup, io_destroy, io_submit, io_cancel,
 * io_getevents and io_pgetevents, so a program may confine itself to those
 * (and futex, for its threads) once it has set up its contexts. Here, after
 * io_setup, an allow-list seccomp filter goes onto every thread at once
 * (SECCOMP_FILTER_FLAG_TSYNC; architecture checked, anything else kills the
 * process); then THREADS threads submit tagged polls of an always-ready
 * eventfd (they complete inside io_submit) and reap them, each into an event
 * array on its own stack: first one thread at a time, then all at once with
 * zero, short and masked waits, until every tag is in, each exactly once.
 * The threads then exit and are joined inside the sandbox, so the list also
 * holds what glibc 2.36 needs for that, as strace shows: rt_sigprocmask (an
 * exiting thread blocks signals), madvise (it gives back the unused part of
 * its stack), exit, and futex (join). The stacks are small enough for glibc
 * to keep them cached rather than unmap them. A child process first checks
 * that the filter kills for a call off the list.
 *
 * Under valgrind, and in sanitizer builds (ASan, TSan), whose runtimes make
 * system calls of their own (mmap, munmap, the leak check's ptrace), no
 * filter is installed; under valgrind the count is smaller too.
 */
#include "common.h"
#include <limits.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/futex.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <stddef.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#define THREADS 64
#define TOTAL 100000
#define TOTAL_VALGRIND 2000
#define STACK_BYTES (128 * 1024) /* 64 of them stay in glibc's stack cache */

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZER_BUILD 1
#else
#define SANITIZER_BUILD 0
#endif

#if defined(__x86_64__) && !defined(__ILP32__)
#define NATIVE_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NATIVE_ARCH AUDIT_ARCH_AARCH64
#elif defined(__i386__)
#define NATIVE_ARCH AUDIT_ARCH_I386
#else
#error "add this architecture's AUDIT_ARCH_ value"
#endif

static io_context_t ctx;
static struct iocb *cbs;
static _Atomic unsigned char *seen;
static atomic_long distinct, bad_results;
static atomic_int started, turn = -1; /* turn: a futex word, 0 once the sandbox is on */
static long total = TOTAL;
static int pgetevents_ok;

static long futex(atomic_int *word, int op, int val)
{
	return syscall(SYS_futex, word, op, val, NULL, NULL, 0);
}

/* The allow-list: these system calls, on the native architecture only; on
 * every thread of the process when `tsync`. */
static void sandbox(int tsync)
{
	static const long allowed[] = {
		/* libaio's own */
		SYS_io_setup, SYS_io_destroy, SYS_io_submit, SYS_io_cancel, SYS_io_getevents,
		CTEST_NR_IO_PGETEVENTS,
		/* the threads: waiting and waking, exit, join */
		SYS_futex, SYS_rt_sigprocmask, SYS_madvise, SYS_exit, SYS_exit_group,
		/* printing (stdout's buffer exists already) */
		SYS_write,
	};
	enum { N = sizeof(allowed) / sizeof(allowed[0]) };
	struct sock_filter f[N + 6];
	int k = 0;
	f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
	f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NATIVE_ARCH, 1, 0);
	f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
	f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
	for (int i = 0; i < N; i++)
		/* a match jumps to the ALLOW at the end, past the remaining tests and the KILL */
		f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)allowed[i],
						      (unsigned char)(N - i), 0);
	f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
	f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	struct sock_fprog prog = { (unsigned short)k, f };
	CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0);
	CHECK(syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, tsync ? SECCOMP_FILTER_FLAG_TSYNC : 0, &prog) == 0);
}

/* A child under the filter that calls getpid dies of SIGSYS. */
static int off_the_list_kills(void)
{
	fflush(stdout);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		sandbox(0);
		syscall(SYS_getpid);
		_exit(0);
	}
	int st;
	CHECK(waitpid(pid, &st, 0) == pid);
	return WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS;
}

static void count(const struct io_event *ev, int n)
{
	for (int i = 0; i < n; i++) {
		long tag = (long)ev[i].data;
		if (tag < 0 || tag >= total || ev[i].obj != &cbs[tag] || ev[i].res != POLLIN) {
			atomic_fetch_add(&bad_results, 1);
			continue;
		}
		if (atomic_fetch_add(&seen[tag], 1) == 0)
			atomic_fetch_add(&distinct, 1);
	}
}

/* Waits until the futex word `w` is at least `v`. */
static void wait_for(atomic_int *w, int v)
{
	int now;
	while ((now = atomic_load(w)) < v)
		futex(w, FUTEX_WAIT_PRIVATE, now);
}

static void *worker(void *arg)
{
	long id = (long)arg;
	struct io_event ev[16]; /* on this thread's stack: new to the library */
	struct timespec zero = { 0, 0 }, ms = { 0, 1000000 };
	sigset_t none;
	sigemptyset(&none);
	atomic_fetch_add(&started, 1);

	/* First, one at a time: a poll of its own and a reap into its array
	 * while nobody else calls, so that any library which answers from the
	 * ring in user space does so here for every new array. */
	wait_for(&turn, (int)id);
	struct iocb *first = &cbs[id];
	CHECK(io_submit(ctx, 1, &first) == 1);
	int got = io_getevents(ctx, 1, 16, ev, NULL);
	CHECK(got >= 1);
	count(ev, got);
	atomic_store(&turn, (int)id + 1);
	futex(&turn, FUTEX_WAKE_PRIVATE, INT_MAX);
	wait_for(&turn, THREADS);

	/* Then all together. This thread's tags: id, id + THREADS, ... */
	long next = id + THREADS;
	long long deadline = now_ms() + 30000; /* clock_gettime: the vDSO, no system call */
	for (unsigned long i = (unsigned long)id; atomic_load(&distinct) < total; i++) {
		CHECK(now_ms() < deadline);
		if (next < total) {
			struct iocb *list[8];
			int n = 0;
			for (long t = next; n < 1 + (int)(i % 8) && t < total; t += THREADS)
				list[n++] = &cbs[t];
			int r = io_submit(ctx, n, list);
			CHECK(r > 0 || r == -EAGAIN); /* EAGAIN: the ring is full, reap first */
			if (r > 0)
				next += (long)r * THREADS;
		}
		int r;
		switch (i % 5) {
		case 0:
			r = io_getevents(ctx, 1, 16, ev, &ms);
			break;
		case 1:
			r = io_getevents(ctx, 0, 16, ev, &zero);
			break;
		case 2:
			r = pgetevents_ok ? io_pgetevents(ctx, 1, 16, ev, &ms, &none)
					  : io_getevents(ctx, 1, 16, ev, &ms);
			break;
		case 3:
			r = io_getevents(ctx, 2, 8, ev, &ms);
			break;
		default:
			r = pgetevents_ok ? io_pgetevents(ctx, 0, 16, ev, &zero, NULL)
					  : io_getevents(ctx, 0, 16, ev, &zero);
			break;
		}
		CHECK(r >= 0);
		count(ev, r);
	}
	return NULL;
}

int main(void)
{
	pgetevents_ok = have_pgetevents();
	int sandboxed = !under_valgrind() && !SANITIZER_BUILD;
	if (under_valgrind())
		total = TOTAL_VALGRIND;
	cbs = calloc(total, sizeof(*cbs));
	seen = calloc(total, 1);
	CHECK(cbs && seen);
	int efd = eventfd(1, EFD_NONBLOCK);
	CHECK(efd >= 0);
	for (long t = 0; t < total; t++) {
		io_prep_poll(&cbs[t], efd, POLLIN);
		cbs[t].data = (void *)t;
	}
	if (sandboxed)
		SAY("a call off the list kills: %s\n", off_the_list_kills() ? "yes" : "no");
	CHECK(io_setup(1024, &ctx) == 0);
	SAY("io_setup = 0\n"); /* also gives stdout its buffer before the sandbox */

	pthread_attr_t attr;
	CHECK(pthread_attr_init(&attr) == 0);
	CHECK(pthread_attr_setstacksize(&attr, STACK_BYTES) == 0);
	pthread_t th[THREADS];
	for (long i = 0; i < THREADS; i++)
		CHECK(pthread_create(&th[i], &attr, worker, (void *)i) == 0);
	/* Every thread past its start-up (which makes calls the list does not
	 * hold), waiting for its turn. */
	while (atomic_load(&started) < THREADS)
		sched_yield();
	if (sandboxed)
		sandbox(1);
	SAY("allow-list filter on every thread: %s\n", sandboxed ? "yes" : "no (valgrind or a sanitizer)");
	atomic_store(&turn, 0);
	futex(&turn, FUTEX_WAKE_PRIVATE, INT_MAX);

	for (int i = 0; i < THREADS; i++)
		CHECK(pthread_join(th[i], NULL) == 0);
	long once = 0, dups = 0;
	for (long t = 0; t < total; t++) {
		once += seen[t] != 0;
		dups += seen[t] > 1 ? seen[t] - 1 : 0;
	}
	SAY("%d threads reaped: tags=%ld delivered=%ld duplicates=%ld lost=%ld bad_results=%ld\n", THREADS,
	    total, once, dups, total - once, atomic_load(&bad_results));
	CALL("io_destroy", io_destroy(ctx));
	/* Freeing and closing are left to exit: munmap and close are not on the list. */
	return 0;
}
