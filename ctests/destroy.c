/*
 * io_destroy with work outstanding: requests in flight (polls that would
 * never complete are cancelled, O_DIRECT writes are waited for), completions
 * nobody reaped, another thread blocked in io_getevents/io_pgetevents on the
 * context (woken with -EINVAL) or on a different context (unaffected).
 */
#include "common.h"
#include <sched.h>
#include <poll.h>

struct waiter {
	io_context_t ctx;
	int use_pgetevents;
	long timeout_ms; /* < 0: NULL timeout */
	pid_t tid;
	int ret;
	atomic_int started;
	pthread_t thread;
};

static void *wait_for_events(void *arg)
{
	struct waiter *w = arg;
	struct io_event ev;
	struct timespec t = ms_timeout(w->timeout_ms);
	struct timespec *tp = w->timeout_ms < 0 ? NULL : &t;
	w->tid = gettid();
	atomic_store(&w->started, 1);
	if (w->use_pgetevents) {
		sigset_t none;
		sigemptyset(&none);
		w->ret = io_pgetevents(w->ctx, 1, 1, &ev, tp, &none);
	} else {
		w->ret = io_getevents(w->ctx, 1, 1, &ev, tp);
	}
	return NULL;
}

static void start_waiter(struct waiter *w, io_context_t ctx, int use_pgetevents, long timeout_ms)
{
	w->ctx = ctx;
	w->use_pgetevents = use_pgetevents && have_pgetevents();
	w->timeout_ms = timeout_ms;
	atomic_store(&w->started, 0);
	CHECK(pthread_create(&w->thread, NULL, wait_for_events, w) == 0);
	long long deadline = now_ms() + 20000;
	while (!atomic_load(&w->started)) {
		CHECK(now_ms() < deadline);
		sched_yield(); /* let the new thread run (valgrind runs one at a time) */
	}
	wait_in_syscall(w->tid, w->use_pgetevents ? CTEST_NR_IO_PGETEVENTS : CTEST_NR_IO_GETEVENTS);
}

static void in_flight(void)
{
	io_context_t ctx = 0;
	CHECK(io_setup(64, &ctx) == 0);
	int p[2];
	CHECK(pipe(p) == 0);
	struct iocb polls[8], *pp[8];
	for (int i = 0; i < 8; i++) {
		io_prep_poll(&polls[i], p[0], POLLIN);
		pp[i] = &polls[i];
	}
	CALL("io_submit(8 polls that never complete)", io_submit(ctx, 8, pp));

	int fd = scratch_fd(O_RDWR | O_DIRECT);
	void *mem;
	CHECK(posix_memalign(&mem, 4096, 16 * 65536) == 0);
	memset(mem, 'D', 16 * 65536);
	struct iocb w[16], *wp[16];
	for (int i = 0; i < 16; i++) {
		io_prep_pwrite(&w[i], fd, (char *)mem + 65536 * i, 65536, 65536LL * i);
		wp[i] = &w[i];
	}
	CALL("io_submit(16 O_DIRECT writes of 64 KiB)", io_submit(ctx, 16, wp));
	CALL("io_destroy(with all that in flight)", io_destroy(ctx));
	/* The writes finished before io_destroy returned. */
	char *back;
	CHECK(posix_memalign((void **)&back, 4096, 16 * 65536) == 0);
	CHECK(pread(fd, back, 16 * 65536, 0) == 16 * 65536);
	SAY("  all the writes are in the file: %s\n", memcmp(back, mem, 16 * 65536) == 0 ? "yes" : "no");
	free(back);
	free(mem);
	close(fd);
	close(p[0]);
	close(p[1]);
}

static void unreaped(void)
{
	io_context_t ctx = 0;
	CHECK(io_setup(8, &ctx) == 0);
	int fd = scratch_fd(O_RDWR);
	fill_file(fd, 'u', 4096, 0);
	static char buf[4][64];
	struct iocb cb[4], *cbs[4];
	for (int i = 0; i < 4; i++) {
		io_prep_pread(&cb[i], fd, buf[i], 64, 0);
		cbs[i] = &cb[i];
	}
	CHECK(io_submit(ctx, 4, cbs) == 4);
	wait_ring_ready(ctx, 4);
	CALL("io_destroy(4 completions unreaped)", io_destroy(ctx));
	close(fd);
}

/* Sets up a context, has a thread block on it, then destroys it (with
 * io_queue_release if `release`). */
static void destroy_under_waiter(const char *label, int use_pgetevents, long timeout_ms, int release)
{
	io_context_t ctx = 0;
	struct waiter w;
	CHECK(io_setup(8, &ctx) == 0);
	start_waiter(&w, ctx, use_pgetevents, timeout_ms);
	CALL(label, release ? io_queue_release(ctx) : io_destroy(ctx));
	CHECK(pthread_join(w.thread, NULL) == 0);
	SAY("  the waiter got %s\n", errname(w.ret));
}

static void blocked_waiters(void)
{
	destroy_under_waiter("io_destroy(a thread waits in io_getevents, 10 s)", 0, 10000, 0);
	destroy_under_waiter("io_destroy(a thread waits in io_getevents, NULL timeout)", 0, -1, 0);
	destroy_under_waiter("io_queue_release(a thread waits in io_pgetevents, NULL timeout)", 1, -1, 1);

	/* A waiter on another context is not disturbed. */
	io_context_t ctx = 0, other = 0;
	struct waiter w, w2;
	CHECK(io_setup(8, &ctx) == 0);
	CHECK(io_setup(8, &other) == 0);
	start_waiter(&w, other, 0, 300);
	CALL("io_destroy(a thread waits 300 ms on another context)", io_destroy(ctx));
	CHECK(pthread_join(w.thread, NULL) == 0);
	SAY("  the waiter got %s\n", errname(w.ret));

	/* Two waiters on one context. */
	start_waiter(&w, other, 0, 10000);
	start_waiter(&w2, other, 1, 10000);
	CALL("io_destroy(two threads wait on it)", io_destroy(other));
	CHECK(pthread_join(w.thread, NULL) == 0);
	CHECK(pthread_join(w2.thread, NULL) == 0);
	SAY("  the waiters got %s and %s\n", errname(w.ret), errname(w2.ret));
}

static void setup_after_destroy(void)
{
	io_context_t a = 0, b = 0;
	for (int i = 0; i < 10; i++) {
		a = 0;
		CHECK(io_setup(4, &a) == 0);
		CHECK(io_destroy(a) == 0);
	}
	CALL("io_setup after 10 setup/destroy cycles", io_setup(4, &b));
	int fd = scratch_fd(O_RDWR);
	fill_file(fd, 's', 4096, 0);
	static char buf[64];
	struct iocb cb, *cbs[1] = { &cb };
	struct io_event ev;
	io_prep_pread(&cb, fd, buf, 64, 0);
	CALL("  io_submit", io_submit(b, 1, cbs));
	struct timespec zero = { 0, 0 };
	wait_ring_ready(b, 1);
	CALL("  io_getevents({0,0})", io_getevents(b, 1, 1, &ev, &zero));
	CALL("  io_destroy", io_destroy(b));
	close(fd);
}

int main(void)
{
	in_flight();
	unreaped();
	blocked_waiters();
	setup_after_destroy();
	return 0;
}
