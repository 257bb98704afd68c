/*
 * Timeouts of io_getevents and io_pgetevents: {0,0} (returns what is ready,
 * 0 on an empty ring), a tiny and a short one (waits, then returns what is
 * there), NULL (waits for min_nr), a long one cut short by a completion; the
 * timeout is not written back. Elapsed times are checked, never printed.
 * Then min_nr 0 after buffered reads of a cold file: kernel AIO did them
 * inside io_submit, so they are returned at once (a user-space engine that
 * does them later must wait for them, and wake when they are done, also
 * when one carries an eventfd).
 */
#include "common.h"
#include <poll.h>
#include <sys/eventfd.h>

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
	/* About 35,000 years; the most a 32-bit time_t holds on i386. */
	struct timespec huge = { sizeof(time_t) > 4 ? (time_t)((long long)1 << 40) : (time_t)0x7fffffff, 0 };
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

	/* min_nr 0 owes the buffered reads submitted before. */
	int efd = eventfd(0, EFD_CLOEXEC);
	CHECK(efd >= 0);
	fill_file(fd, 'c', 64 * 4096, 0);
	CHECK(fsync(fd) == 0);
	int rounds_ok = 0, slow = 0;
	for (int round = 0; round < 40; round++) {
		CHECK(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0);
		static struct iocb cr[2];
		struct iocb *crs[2] = { &cr[0], &cr[1] };
		io_prep_pread(&cr[0], fd, buf[0], sizeof(buf[0]), (round % 32) * 8192);
		io_prep_pread(&cr[1], fd, buf[1], sizeof(buf[1]), (round % 32) * 8192 + 4096);
		io_set_eventfd(&cr[1], efd);
		CHECK(io_submit(ctx, 2, crs) == 2);
		start = now_ms();
		int got = 0;
		while (got < 2) {
			int r = io_getevents(ctx, 0, 16, ev, &t10s);
			CHECK(r >= 0);
			if (r == 0)
				break;
			got += r;
		}
		slow += now_ms() - start > 5000;
		rounds_ok += got == 2 && buf[0][0] == 'c' && buf[1][0] == 'c';
		uint64_t v;
		CHECK(eventfd_read(efd, &v) == 0);
	}
	SAY("40 rounds of 2 cold buffered reads (one with an eventfd), io_getevents(min 0, 10 s): "
	    "both returned in %d, none waited for its timeout: %s\n",
	    rounds_ok, slow ? "no" : "yes");
	close(efd);

	CALL("io_destroy", io_destroy(ctx));
	return 0;
}
