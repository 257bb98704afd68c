/*
 * The @LIBAIO_0.1 entry points that programs linked against libaio before
 * 0.4 still bind to, reached here through .symver: io_getevents(ctx, nr,
 * events, timeout) waits for at least one event, io_cancel(ctx, iocb) drops
 * the completion it would have returned, io_queue_wait(ctx, timeout). The
 * default (@@LIBAIO_0.4) ones are used alongside them.
 */
#include "common.h"
#include <poll.h>

int old_getevents(io_context_t ctx, long nr, struct io_event *events, const struct timespec *timeout);
int old_cancel(io_context_t ctx, struct iocb *iocb);
int old_queue_wait(io_context_t ctx, const struct timespec *timeout);
__asm__(".symver old_getevents, io_getevents@LIBAIO_0.1");
__asm__(".symver old_cancel, io_cancel@LIBAIO_0.1");
__asm__(".symver old_queue_wait, io_queue_wait@LIBAIO_0.1");

static io_context_t ctx;

static void versions(void)
{
	void *lib = dlopen("libaio.so.1", RTLD_NOW | RTLD_NOLOAD);
	CHECK(lib != NULL);
	const char *names[] = { "io_getevents", "io_cancel", "io_queue_wait" };
	for (int i = 0; i < 3; i++) {
		void *v01 = dlvsym(lib, names[i], "LIBAIO_0.1");
		void *v04 = dlvsym(lib, names[i], "LIBAIO_0.4");
		void *def = dlsym(lib, names[i]);
		SAY("%s: @LIBAIO_0.1 %s, @LIBAIO_0.4 %s, distinct %d, default is 0.4 %d\n", names[i],
		    v01 ? "found" : "missing", v04 ? "found" : "missing", v01 != v04, def == v04);
	}
	dlclose(lib);
}

int main(void)
{
	versions();
	CHECK(io_setup(8, &ctx) == 0);
	int fd = scratch_fd(O_RDWR);
	fill_file(fd, 'o', 4096, 0);
	static char buf[4][64];
	struct iocb cb[4], *cbs[4];
	struct io_event ev[4];
	struct timespec zero = { 0, 0 }, t30 = ms_timeout(30);
	for (int i = 0; i < 4; i++)
		cbs[i] = &cb[i];

	/* io_getevents@LIBAIO_0.1 */
	CALL("old io_getevents(empty, {0,0})", old_getevents(ctx, 4, ev, &zero));
	long long start = now_ms();
	CALL("old io_getevents(empty, 30 ms)", old_getevents(ctx, 4, ev, &t30));
	CHECK(now_ms() - start >= 20);
	SAY("  timeout unchanged: %d\n", t30.tv_sec == 0 && t30.tv_nsec == 30000000);
	CALL("old io_getevents(NULL ctx, NULL)", old_getevents(NULL, 4, ev, NULL));
	CALL("old io_getevents(nr=0, 30 ms)", old_getevents(ctx, 0, ev, &t30));
	CALL("old io_getevents(nr=-1, 30 ms)", old_getevents(ctx, -1, ev, &t30));
	for (int i = 0; i < 3; i++)
		io_prep_pread(&cb[i], fd, buf[i], 64, 0);
	CHECK(io_submit(ctx, 3, cbs) == 3);
	wait_ring_ready(ctx, 3);
	CALL("old io_getevents(3 ready, nr 2, NULL)", old_getevents(ctx, 2, ev, NULL));
	CALL("old io_getevents(1 ready, nr 4, {0,0})", old_getevents(ctx, 4, ev, &zero));
	SAY("  res=%s\n", resname(ev[0].res));

	/* Waits for at least one: a poll completed while it waits. */
	int p[2];
	CHECK(pipe(p) == 0);
	io_prep_poll(&cb[0], p[0], POLLIN);
	CHECK(io_submit(ctx, 1, cbs) == 1);
	struct when_waiting w;
	start_when_waiting(&w, CTEST_NR_IO_GETEVENTS, 0, p[1]);
	CALL("old io_getevents(poll completes while waiting, NULL)", old_getevents(ctx, 4, ev, NULL));
	finish_when_waiting(&w);
	SAY("  res=0x%lx obj-ok=%d\n", ev[0].res, ev[0].obj == &cb[0]);
	char c;
	CHECK(read(p[0], &c, 1) == 1);

	/* io_cancel@LIBAIO_0.1 */
	io_prep_poll(&cb[0], p[0], POLLIN);
	CHECK(io_submit(ctx, 1, cbs) == 1);
	CALL("old io_cancel(pending poll)", old_cancel(ctx, &cb[0]));
	reap_exactly(ctx, ev, 1);
	SAY("  its event still arrives: res=%s obj-ok=%d\n", resname(ev[0].res), ev[0].obj == &cb[0]);
	CALL("old io_cancel(again)", old_cancel(ctx, &cb[0]));
	CALL("old io_cancel(NULL ctx)", old_cancel(NULL, &cb[0]));
	CALL("old io_cancel(NULL iocb)", old_cancel(ctx, NULL));
	io_prep_poll(&cb[0], p[0], POLLIN);
	CHECK(io_submit(ctx, 1, cbs) == 1);
	CALL("new io_cancel(pending poll)", io_cancel(ctx, &cb[0], &ev[0]));
	reap_exactly(ctx, ev, 1);

	/* io_queue_wait@LIBAIO_0.1 */
	CALL("old io_queue_wait(empty, NULL)", old_queue_wait(ctx, NULL));
	CALL("old io_queue_wait(empty, 30 ms)", old_queue_wait(ctx, &t30));
	CALL("old io_queue_wait(empty, {0,0})", old_queue_wait(ctx, &zero));
	CALL("old io_queue_wait(NULL ctx)", old_queue_wait(NULL, NULL));
	io_prep_pread(&cb[0], fd, buf[0], 64, 0);
	CHECK(io_submit(ctx, 1, cbs) == 1);
	wait_ring_ready(ctx, 1);
	CALL("old io_queue_wait(1 ready, NULL)", old_queue_wait(ctx, NULL));
	CALL("new io_queue_wait(1 ready, NULL)", io_queue_wait(ctx, NULL));
	CALL("  the event is still there: old io_getevents", old_getevents(ctx, 1, ev, &zero));

	close(p[0]);
	close(p[1]);
	CALL("io_destroy", io_destroy(ctx));
	return 0;
}
