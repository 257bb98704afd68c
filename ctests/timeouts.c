/*
 * Timeouts of io_getevents and io_pgetevents: {0,0} (returns what is ready,
 * 0 on an empty ring), a tiny and a short one (waits, then returns what is
 * there), NULL (waits for min_nr), a long one cut short by a completion; the
 * timeout is not written back. Elapsed times are checked, never printed.
 */
#include "common.h"
#include <poll.h>

static io_context_t ctx;
static int fd;
static char buf[16][64];

static void submit_reads(int n)
{
	struct iocb *cbs[16];
	static struct iocb cb[16];
	for (int i = 0; i < n; i++) {
		io_prep_pread(&cb[i], fd, buf[i], sizeof(buf[i]), 0);
		cbs[i] = &cb[i];
	}
	CHECK(io_submit(ctx, n, cbs) == n);
	wait_ring_ready(ctx, (unsigned)n);
}

int main(void)
{
	CHECK(io_setup(16, &ctx) == 0);
	fd = scratch_fd(O_RDWR);
	fill_file(fd, 't', 4096, 0);
	struct io_event ev[16];
	struct timespec zero = { 0, 0 }, tiny = { 0, 1 }, t50 = ms_timeout(50), t10s = ms_timeout(10000);
	sigset_t none;
	sigemptyset(&none);
	long long start;

	/* Empty ring. */
	CALL("io_getevents(empty, {0,0})", io_getevents(ctx, 1, 16, ev, &zero));
	CALL("io_pgetevents(empty, {0,0}, mask)", io_pgetevents(ctx, 1, 16, ev, &zero, &none));
	CALL("io_pgetevents(empty, {0,0}, NULL mask)", io_pgetevents(ctx, 1, 16, ev, &zero, NULL));
	CALL("io_getevents(empty, {0,1ns})", io_getevents(ctx, 1, 16, ev, &tiny));
	start = now_ms();
	CALL("io_getevents(empty, 50 ms)", io_getevents(ctx, 1, 16, ev, &t50));
	CHECK(now_ms() - start >= 40);
	start = now_ms();
	CALL("io_pgetevents(empty, 50 ms)", io_pgetevents(ctx, 1, 16, ev, &t50, &none));
	CHECK(now_ms() - start >= 40 || !have_pgetevents());
	CALL("io_getevents(empty, min 0, 50 ms)", io_getevents(ctx, 0, 16, ev, &t50));
	SAY("timeout unchanged: %d\n", t50.tv_sec == 0 && t50.tv_nsec == 50000000 && zero.tv_sec == 0 &&
					   zero.tv_nsec == 0);

	/* Events ready. */
	submit_reads(3);
	CALL("io_getevents(3 ready, {0,0}, min 1, nr 2)", io_getevents(ctx, 1, 2, ev, &zero));
	CALL("io_getevents(1 ready, {0,0}, min 3, nr 16)", io_getevents(ctx, 3, 16, ev, &zero));
	CALL("io_getevents(empty again, {0,0})", io_getevents(ctx, 1, 16, ev, &zero));
	submit_reads(2);
	CALL("io_pgetevents(2 ready, {0,0}, min 0)",
	     have_pgetevents() ? io_pgetevents(ctx, 0, 16, ev, &zero, NULL) : io_getevents(ctx, 0, 16, ev, &zero));
	submit_reads(1);
	start = now_ms();
	CALL("io_getevents(1 ready, 50 ms, min 2)", io_getevents(ctx, 2, 16, ev, &t50));
	CHECK(now_ms() - start >= 40);
	SAY("  res=%s\n", resname(ev[0].res));
	submit_reads(4);
	CALL("io_getevents(4 ready, NULL, min 4)", io_getevents(ctx, 4, 4, ev, NULL));
	submit_reads(2);
	CALL("io_getevents(2 ready, 10 s, min 1, nr 1)", io_getevents(ctx, 1, 1, ev, &t10s));
	CALL("io_getevents(1 ready, {0,1ns})", io_getevents(ctx, 1, 1, ev, &tiny));
	submit_reads(16);
	CALL("io_getevents(16 ready, NULL, nr 16)", io_getevents(ctx, 16, 16, ev, NULL));
	struct timespec huge = { 1L << 40, 0 };
	submit_reads(1);
	CALL("io_getevents(1 ready, 2^40 s)", io_getevents(ctx, 1, 1, ev, &huge));

	/* Waiting: a completion ends the wait early. */
	int p[2];
	CHECK(pipe(p) == 0);
	struct iocb pc, *pcs[1] = { &pc };
	struct when_waiting w;
	io_prep_poll(&pc, p[0], POLLIN);
	CHECK(io_submit(ctx, 1, pcs) == 1);
	start_when_waiting(&w, CTEST_NR_IO_GETEVENTS, 0, p[1]);
	CALL("io_getevents(poll completes while waiting, NULL)", io_getevents(ctx, 1, 1, ev, NULL));
	finish_when_waiting(&w);
	CHECK(ev[0].obj == &pc);
	char c;
	CHECK(read(p[0], &c, 1) == 1);

	io_prep_poll(&pc, p[0], POLLIN);
	CHECK(io_submit(ctx, 1, pcs) == 1);
	start_when_waiting(&w, CTEST_NR_IO_GETEVENTS, 0, p[1]);
	start = now_ms();
	CALL("io_getevents(poll completes while waiting, 10 s)", io_getevents(ctx, 1, 1, ev, &t10s));
	CHECK(now_ms() - start < 9000);
	finish_when_waiting(&w);
	CHECK(read(p[0], &c, 1) == 1);

	if (have_pgetevents()) {
		io_prep_poll(&pc, p[0], POLLIN);
		CHECK(io_submit(ctx, 1, pcs) == 1);
		start_when_waiting(&w, CTEST_NR_IO_PGETEVENTS, 0, p[1]);
		CALL("io_pgetevents(poll completes while waiting, NULL, mask)",
		     io_pgetevents(ctx, 1, 1, ev, NULL, &none));
		finish_when_waiting(&w);
		CHECK(read(p[0], &c, 1) == 1);
	}

	CALL("io_destroy", io_destroy(ctx));
	return 0;
}
