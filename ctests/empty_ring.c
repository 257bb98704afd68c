/*
 * io_getevents, io_pgetevents and what is built on them (io_queue_run,
 * io_queue_wait, the @LIBAIO_0.1 io_getevents and io_queue_wait) answer 0 on
 * an empty ring with a {0,0} timeout, before looking at their other
 * arguments: also while another thread is blocked in io_getevents on the same
 * context. tests/sh/ctests_no_syscall.sh runs this program under strace and
 * checks that the main thread makes no io_getevents/io_pgetevents system
 * call between the two section markers it prints.
 */
#include "common.h"
#include <sched.h>
#include <poll.h>

int old_getevents(io_context_t ctx, long nr, struct io_event *events, const struct timespec *timeout);
int old_queue_wait(io_context_t ctx, const struct timespec *timeout);
__asm__(".symver old_getevents, io_getevents@LIBAIO_0.1");
__asm__(".symver old_queue_wait, io_queue_wait@LIBAIO_0.1");

static io_context_t ctx;
static pid_t waiter_tid;
static atomic_int waiter_started;
static int waiter_ret;

static void *waiter(void *arg)
{
	(void)arg;
	struct io_event ev;
	waiter_tid = gettid();
	atomic_store(&waiter_started, 1);
	waiter_ret = io_getevents(ctx, 1, 1, &ev, NULL);
	return NULL;
}

static void zero_timeout_calls(const char *when)
{
	struct io_event ev[4];
	struct timespec zero = { 0, 0 };
	sigset_t mask;
	sigemptyset(&mask);
	SAY("[no-syscall section begins] %s\n", when);
	CALL("  io_getevents(1, 4)", io_getevents(ctx, 1, 4, ev, &zero));
	CALL("  io_getevents(0, 4)", io_getevents(ctx, 0, 4, ev, &zero));
	CALL("  io_getevents(min > nr)", io_getevents(ctx, 5, 4, ev, &zero));
	CALL("  io_getevents(nr < 0)", io_getevents(ctx, 1, -1, ev, &zero));
	CALL("  io_getevents(events NULL)", io_getevents(ctx, 1, 4, NULL, &zero));
	CALL("  io_pgetevents(mask)", io_pgetevents(ctx, 1, 4, ev, &zero, &mask));
	CALL("  io_pgetevents(NULL mask)", io_pgetevents(ctx, 1, 4, ev, &zero, NULL));
	CALL("  io_pgetevents(garbage mask)", io_pgetevents(ctx, 1, 4, ev, &zero, (sigset_t *)16));
	CALL("  io_queue_run", io_queue_run(ctx));
	CALL("  io_queue_wait({0,0})", io_queue_wait(ctx, &zero));
	CALL("  old io_getevents({0,0})", old_getevents(ctx, 4, ev, &zero));
	CALL("  old io_queue_wait({0,0})", old_queue_wait(ctx, &zero));
	SAY("[no-syscall section ends]\n");
}

int main(void)
{
	CHECK(io_setup(8, &ctx) == 0);
	zero_timeout_calls("empty ring");

	/* Once a completion has come and gone, the ring is empty again. */
	int p[2];
	CHECK(pipe(p) == 0);
	CHECK(write(p[1], "x", 1) == 1);
	struct iocb cb, *cbs[1] = { &cb };
	io_prep_poll(&cb, p[0], POLLIN);
	CHECK(io_submit(ctx, 1, cbs) == 1);
	wait_ring_ready(ctx, 1);
	struct io_event ev;
	struct timespec zero = { 0, 0 };
	CALL("one completion: io_getevents({0,0})", io_getevents(ctx, 1, 1, &ev, &zero));
	char c;
	CHECK(read(p[0], &c, 1) == 1);
	zero_timeout_calls("empty again");

	/* Another thread waits in the kernel on this context meanwhile. */
	io_prep_poll(&cb, p[0], POLLIN);
	CHECK(io_submit(ctx, 1, cbs) == 1);
	pthread_t t;
	CHECK(pthread_create(&t, NULL, waiter, NULL) == 0);
	long long deadline = now_ms() + 20000;
	while (!atomic_load(&waiter_started)) {
		CHECK(now_ms() < deadline);
		sched_yield(); /* let the new thread run (valgrind runs one at a time) */
	}
	wait_in_syscall(waiter_tid, CTEST_NR_IO_GETEVENTS);
	zero_timeout_calls("empty, another thread waiting in io_getevents");
	CHECK(write(p[1], "y", 1) == 1);
	CHECK(pthread_join(t, NULL) == 0);
	SAY("the waiting thread got %s\n", errname(waiter_ret));

	CALL("io_destroy", io_destroy(ctx));
	return 0;
}
