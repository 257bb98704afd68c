/*
 * The io_queue_* layer: io_queue_init, io_queue_run calling each request's
 * callback (stored by io_set_callback) with its result, callbacks that submit
 * more work, io_queue_wait (the LIBAIO_0.4 one; compat_0_1.c has the old
 * one), io_queue_release with completions still in the ring.
 */
#include "common.h"

static io_context_t ctx;
static struct iocb cbs[8];
static int order[64], nres, chain_left;
static long results[64];
static int fd;
static char buf[8][512];

static void record(io_context_t c, struct iocb *cb, long res, long res2)
{
	CHECK(c == ctx && res2 == 0);
	CHECK(cb >= cbs && cb < cbs + 8 && nres < 64);
	order[nres] = (int)(cb - cbs);
	results[nres++] = res;
}

/* A callback that submits its own request again until chain_left runs out. */
static void chain(io_context_t c, struct iocb *cb, long res, long res2)
{
	record(c, cb, res, res2);
	if (chain_left-- > 0) {
		io_prep_pread(cb, fd, buf[0], 100, 0);
		io_set_callback(cb, chain);
		CHECK(io_submit(c, 1, &cb) == 1);
	}
}

static void show(const char *label, int r)
{
	SAY("%s: io_queue_run = %s, %d callbacks:", label, errname(r), nres);
	for (int i = 0; i < nres; i++)
		SAY(" #%d=%s", order[i], errname(results[i]));
	SAY("\n");
	nres = 0;
}

int main(void)
{
	CALL("io_queue_init(8)", io_queue_init(8, &ctx));
	fd = scratch_fd(O_RDWR);
	fill_file(fd, 'q', 4096, 0);
	struct timespec zero = { 0, 0 }, t = ms_timeout(20);

	show("empty queue", io_queue_run(ctx));
	CALL("io_queue_wait(empty, NULL)", io_queue_wait(ctx, NULL));
	CALL("io_queue_wait(empty, zero)", io_queue_wait(ctx, &zero));
	CALL("io_queue_wait(empty, 20 ms)", io_queue_wait(ctx, &t));

	struct iocb *list[8];
	for (int i = 0; i < 5; i++) {
		io_prep_pread(&cbs[i], fd, buf[i], 100 * (i + 1), 4096 - 300);
		io_set_callback(&cbs[i], record);
		list[i] = &cbs[i];
	}
	io_prep_pread(&cbs[5], fd, NULL, 100, 0);
	io_set_callback(&cbs[5], record);
	list[5] = &cbs[5];
	CALL("io_submit(6 reads with callbacks)", io_submit(ctx, 6, list));
	wait_ring_ready(ctx, 6);
	/* io_queue_wait reaps nothing: the events stay for io_queue_run. */
	CALL("io_queue_wait(6 ready, NULL)", io_queue_wait(ctx, NULL));
	CALL("io_queue_wait(6 ready, 20 ms)", io_queue_wait(ctx, &t));
	show("6 ready", io_queue_run(ctx));
	show("again", io_queue_run(ctx));

	chain_left = 3;
	io_prep_pread(&cbs[0], fd, buf[0], 100, 0);
	io_set_callback(&cbs[0], chain);
	CHECK(io_submit(ctx, 1, list) == 1);
	wait_ring_ready(ctx, 1);
	show("a callback that resubmits 3 times", io_queue_run(ctx));

	/* More completions than the queue was sized for, reaped in one run. */
	int total = 0;
	for (int round = 0; round < 4; round++) {
		for (int i = 0; i < 8; i++) {
			io_prep_pread(&cbs[i], fd, buf[i], 10, 0);
			io_set_callback(&cbs[i], record);
			list[i] = &cbs[i];
		}
		int r = io_submit(ctx, 8, list);
		CHECK(r > 0);
		wait_ring_ready(ctx, (unsigned)r);
		CHECK(io_queue_run(ctx) == 0);
		total += nres;
		CHECK(nres == r);
		nres = 0;
	}
	SAY("4 rounds: every submitted request called back once: %s\n", total >= 4 ? "yes" : "no");

	/* Release with completions nobody reaped. */
	io_prep_pread(&cbs[0], fd, buf[0], 10, 0);
	io_set_callback(&cbs[0], record);
	CHECK(io_submit(ctx, 1, list) == 1);
	wait_ring_ready(ctx, 1);
	CALL("io_queue_release(1 unreaped)", io_queue_release(ctx));
	CALL("io_queue_release(again)", io_queue_release(ctx));
	SAY("callbacks after release: %d\n", nres);
	return 0;
}
