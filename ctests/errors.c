/*
 * Error returns of every entry point on bad input: each is -errno and leaves
 * errno untouched (CALL checks). Contexts handed to io_getevents-like calls
 * are NULL or live: libaio 0.3.113 reads the memory of any other non-NULL
 * value (see ctests/differ/ for what happens then).
 */
#include "common.h"
#include <limits.h>

static io_context_t ctx;
static struct io_event ev[8];

/* Reaps what the kernel completed so the next case starts from an empty ring. */
static void drain(int n)
{
	reap_exactly(ctx, ev, n);
}

static void setup_errors(void)
{
	io_context_t c = 0;
	CALL("io_setup(-1)", io_setup(-1, &c));
	CALL("io_setup(0)", io_setup(0, &c));
	CALL("io_setup(INT_MAX)", io_setup(INT_MAX, &c));
	CALL("io_setup(ctxp=NULL)", io_setup(1, NULL));
	CALL("io_setup(ctxp=garbage)", io_setup(1, (io_context_t *)16));
	c = (io_context_t)0x1234;
	CALL("io_setup(*ctxp garbage)", io_setup(4, &c));
	CHECK(c == (io_context_t)0x1234);

	CALL("io_queue_init(-1)", io_queue_init(-1, &c));
	CALL("io_queue_init(0)", io_queue_init(0, &c));
	/* io_queue_init clears *ctxp itself, so a non-zero one is fine. */
	c = (io_context_t)0x1234;
	CALL("io_queue_init(*ctxp garbage)", io_queue_init(4, &c));
	CHECK(c != (io_context_t)0x1234 && c != 0);
	CALL("io_queue_release", io_queue_release(c));
	CALL("io_queue_release(again)", io_queue_release(c));

	CHECK(io_setup(8, &ctx) == 0);
	io_context_t again = ctx;
	CALL("io_setup(*ctxp = live ctx)", io_setup(4, &again));
	CHECK(again == ctx);
}

static void submit_errors(int rfd, int wfd)
{
	static char buf[4096];
	struct iocb cb, cb2, *cbs[2] = { &cb, &cb2 };
	io_context_t bad = (io_context_t)0x1000;

	io_prep_pread(&cb, rfd, buf, 16, 0);
	CALL("io_submit(NULL ctx)", io_submit(NULL, 1, cbs));
	CALL("io_submit(garbage ctx)", io_submit(bad, 1, cbs));
	if (!under_valgrind()) {
		/* valgrind walks nr (as unsigned) iocb pointers before the call */
		CALL("io_submit(nr<0)", io_submit(ctx, -1, cbs));
		CALL("io_submit(nr=LONG_MIN)", io_submit(ctx, LONG_MIN, cbs));
	}
	CALL("io_submit(nr=0)", io_submit(ctx, 0, cbs));
	CALL("io_submit(nr=0, iocbpp=NULL)", io_submit(ctx, 0, NULL));
	if (!under_valgrind()) {
		CALL("io_submit(iocbpp=NULL)", io_submit(ctx, 1, NULL));
		CALL("io_submit(iocbpp=garbage)", io_submit(ctx, 1, (struct iocb **)16));
		struct iocb *nulls[1] = { NULL };
		CALL("io_submit(iocbpp[0]=NULL)", io_submit(ctx, 1, nulls));
		struct iocb *garbage[1] = { (struct iocb *)16 };
		CALL("io_submit(iocbpp[0]=garbage)", io_submit(ctx, 1, garbage));
	}

	io_prep_pread(&cb, -1, buf, 16, 0);
	CALL("io_submit(fd=-1)", io_submit(ctx, 1, cbs));
	io_prep_pread(&cb, 1000, buf, 16, 0);
	CALL("io_submit(fd not open)", io_submit(ctx, 1, cbs));
	io_prep_pread(&cb, wfd, buf, 16, 0);
	CALL("io_submit(pread on O_WRONLY fd)", io_submit(ctx, 1, cbs));
	io_prep_pwrite(&cb, rfd, buf, 16, 0);
	CALL("io_submit(pwrite on O_RDONLY fd)", io_submit(ctx, 1, cbs));
	io_prep_preadv(&cb, wfd, NULL, 0, 0);
	CALL("io_submit(preadv on O_WRONLY fd)", io_submit(ctx, 1, cbs));
	io_prep_pwritev(&cb, rfd, NULL, 0, 0);
	CALL("io_submit(pwritev on O_RDONLY fd)", io_submit(ctx, 1, cbs));

	io_prep_pread(&cb, rfd, buf, 16, 0);
	cb.aio_lio_opcode = IO_CMD_NOOP;
	CALL("io_submit(IO_CMD_NOOP)", io_submit(ctx, 1, cbs));
	cb.aio_lio_opcode = 4;
	CALL("io_submit(opcode 4)", io_submit(ctx, 1, cbs));
	cb.aio_lio_opcode = 99;
	CALL("io_submit(opcode 99)", io_submit(ctx, 1, cbs));
	io_prep_pread(&cb, rfd, buf, 16, 0);
	cb.u.c.__pad3 = 1;
	CALL("io_submit(reserved2 != 0)", io_submit(ctx, 1, cbs));
	io_prep_pread(&cb, rfd, buf, 16, 0);
	cb.u.c.flags = IOCB_FLAG_RESFD;
	cb.u.c.resfd = (unsigned)-1;
	CALL("io_submit(RESFD bad fd)", io_submit(ctx, 1, cbs));
	cb.u.c.resfd = (unsigned)rfd;
	CALL("io_submit(RESFD not an eventfd)", io_submit(ctx, 1, cbs));
	io_prep_pread(&cb, rfd, buf, 16, 0);
	cb.aio_rw_flags = 0x80000000u;
	CALL("io_submit(unknown RWF flag)", io_submit(ctx, 1, cbs));

	/* A bad buffer is the request's failure, reported in its event. */
	io_prep_pread(&cb, rfd, NULL, 16, 0);
	CALL("io_submit(pread into NULL)", io_submit(ctx, 1, cbs));
	drain(1);
	SAY("  event: res=%s res2=%s obj-ok=%d\n", resname(ev[0].res), resname(ev[0].res2), ev[0].obj == &cb);
	io_prep_pwrite(&cb, wfd, (void *)16, 16, 0);
	CALL("io_submit(pwrite from garbage)", io_submit(ctx, 1, cbs));
	drain(1);
	SAY("  event: res=%s res2=%s obj-ok=%d\n", resname(ev[0].res), resname(ev[0].res2), ev[0].obj == &cb);

	/* Partial submission: the kernel stops at the first iocb it refuses. */
	io_prep_pread(&cb, rfd, buf, 16, 0);
	io_prep_pread(&cb2, -1, buf, 16, 0);
	CALL("io_submit([good, bad fd])", io_submit(ctx, 2, cbs));
	drain(1);
	if (!under_valgrind()) {
		struct iocb *good_null[2] = { &cb, NULL };
		CALL("io_submit([good, NULL])", io_submit(ctx, 2, good_null));
		drain(1);
	}
	io_prep_pread(&cb2, -1, buf, 16, 0);
	struct iocb *bad_good[2] = { &cb2, &cb };
	CALL("io_submit([bad fd, good])", io_submit(ctx, 2, bad_good));
}

static void getevents_errors(int rfd)
{
	static char buf[64];
	struct iocb cb, *cbs[1] = { &cb };
	struct timespec zero = { 0, 0 }, short_wait = ms_timeout(10);

	CALL("io_getevents(NULL ctx, NULL timeout)", io_getevents(NULL, 1, 4, ev, NULL));
	CALL("io_getevents(NULL ctx, zero timeout)", io_getevents(NULL, 1, 4, ev, &zero));
	CALL("io_getevents(NULL ctx, bad timeout)", io_getevents(NULL, 1, 4, ev, (struct timespec *)16));
	CALL("io_getevents(min>nr)", io_getevents(ctx, 2, 1, ev, NULL));
	CALL("io_getevents(min>nr, short timeout)", io_getevents(ctx, 2, 1, ev, &short_wait));
	CALL("io_getevents(nr<0)", io_getevents(ctx, 0, -1, ev, NULL));
	CALL("io_getevents(min<0)", io_getevents(ctx, -1, 1, ev, NULL));
	CALL("io_getevents(min=nr=0)", io_getevents(ctx, 0, 0, ev, NULL));
	CALL("io_getevents(min=nr=0, events=NULL)", io_getevents(ctx, 0, 0, NULL, NULL));
	/* Empty ring and {0,0}: libaio answers 0 before looking at anything else. */
	CALL("io_getevents(empty, zero timeout)", io_getevents(ctx, 1, 4, ev, &zero));
	CALL("io_getevents(empty, zero timeout, min>nr)", io_getevents(ctx, 5, 4, ev, &zero));
	CALL("io_getevents(empty, zero timeout, nr<0)", io_getevents(ctx, 0, -1, ev, &zero));
	CALL("io_getevents(empty, zero timeout, events=NULL)", io_getevents(ctx, 1, 4, NULL, &zero));

	/* One event ready: a bad event array is the kernel's EFAULT, and the
	 * event stays in the ring for the next reap. */
	io_prep_pread(&cb, rfd, buf, 16, 0);
	cb.data = (void *)0x5151;
	CHECK(io_submit(ctx, 1, cbs) == 1);
	/* Wait for the completion without taking it. */
	wait_ring_ready(ctx, 1);
	CALL("io_getevents(ready, events=NULL)", io_getevents(ctx, 1, 1, NULL, NULL));
	CALL("io_getevents(ready, events=garbage)", io_getevents(ctx, 1, 1, (struct io_event *)16, &zero));
	CALL("io_getevents(ready, min>nr)", io_getevents(ctx, 2, 1, ev, &zero));
	CALL("io_getevents(ready, nr<0)", io_getevents(ctx, 0, -1, ev, &zero));
	CALL("io_getevents(ready, nr=0)", io_getevents(ctx, 0, 0, ev, &zero));
	CALL("io_getevents(ready)", io_getevents(ctx, 1, 1, ev, &zero));
	SAY("  event: res=%s data-ok=%d obj-ok=%d\n", resname(ev[0].res), ev[0].data == (void *)0x5151, ev[0].obj == &cb);

	sigset_t mask;
	sigemptyset(&mask);
	CALL("io_pgetevents(NULL ctx)", io_pgetevents(NULL, 1, 4, ev, &short_wait, &mask));
	CALL("io_pgetevents(min>nr)", io_pgetevents(ctx, 2, 1, ev, &short_wait, &mask));
	CALL("io_pgetevents(nr<0)", io_pgetevents(ctx, 0, -1, ev, &short_wait, &mask));
	CALL("io_pgetevents(sigmask=garbage)", io_pgetevents(ctx, 1, 1, ev, &short_wait, (sigset_t *)16));
	CALL("io_pgetevents(empty, zero timeout, sigmask=garbage)",
	     io_pgetevents(ctx, 1, 1, ev, &zero, (sigset_t *)16));
	CALL("io_pgetevents(empty, zero timeout, min>nr)", io_pgetevents(ctx, 2, 1, ev, &zero, NULL));
	CALL("io_pgetevents(empty, short timeout, NULL mask)", io_pgetevents(ctx, 1, 1, ev, &short_wait, NULL));
}

static void cancel_errors(int rfd)
{
	static char buf[64];
	struct iocb cb, *cbs[1] = { &cb };
	struct io_event e;

	io_prep_pread(&cb, rfd, buf, 16, 0);
	CALL("io_cancel(never submitted)", io_cancel(ctx, &cb, &e));
	CALL("io_cancel(NULL iocb)", io_cancel(ctx, NULL, &e));
	CALL("io_cancel(garbage iocb)", io_cancel(ctx, (struct iocb *)16, &e));
	CALL("io_cancel(NULL ctx)", io_cancel(NULL, &cb, &e));
	CHECK(io_submit(ctx, 1, cbs) == 1);
	drain(1);
	/* A read of a regular file cannot be cancelled; once done it is gone. */
	CALL("io_cancel(completed read)", io_cancel(ctx, &cb, &e));
	CALL("io_cancel(completed read, NULL ctx)", io_cancel(NULL, &cb, &e));
	CALL("io_cancel(completed read, garbage ctx)", io_cancel((io_context_t)0x1000, &cb, &e));
	CALL("io_cancel(completed read, NULL event)", io_cancel(ctx, &cb, NULL));
}

static void queue_errors(void)
{
	struct timespec zero = { 0, 0 };
	CALL("io_queue_run(NULL)", io_queue_run(NULL));
	CALL("io_queue_wait(NULL, NULL)", io_queue_wait(NULL, NULL));
	CALL("io_queue_wait(NULL, zero)", io_queue_wait(NULL, &zero));
	CALL("io_queue_release(NULL)", io_queue_release(NULL));
	CALL("io_queue_release(garbage)", io_queue_release((io_context_t)0x1000));
}

/* The open mode against the other checks, in the kernel's order (EBADF for
 * the mode before EFAULT/EINVAL for buffers and offsets), on a file of
 * CTEST_TMPDIR and on one in memory (/dev/shm, where user-space engines do
 * the I/O inside io_submit). */
static void mode_errors(const char *where, int ro, int wo)
{
	static char buf[64];
	struct iocb cb, *cbs[1] = { &cb };
	struct iovec bad_iov = { (void *)16, 16 };
	int opath = -1;
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", ro);
	opath = open(path, O_PATH);
	CHECK(opath >= 0);
	SAY("%s:\n", where);
	io_prep_pread(&cb, wo, buf, 16, 0);
	CALL("  io_submit(pread on O_WRONLY fd)", io_submit(ctx, 1, cbs));
	io_prep_pwrite(&cb, ro, buf, 16, 0);
	CALL("  io_submit(pwrite on O_RDONLY fd)", io_submit(ctx, 1, cbs));
	io_prep_pread(&cb, wo, (void *)-4096L, 16, 0);
	CALL("  io_submit(pread on O_WRONLY fd, buffer past the address space)", io_submit(ctx, 1, cbs));
	if (!under_valgrind()) { /* valgrind reads the iovecs itself, and faults */
		io_prep_preadv(&cb, wo, (struct iovec *)16, 1, 0);
		CALL("  io_submit(preadv on O_WRONLY fd, unreadable iovec array)", io_submit(ctx, 1, cbs));
		io_prep_pwritev(&cb, ro, &bad_iov, 1, -1);
		CALL("  io_submit(pwritev on O_RDONLY fd, negative offset)", io_submit(ctx, 1, cbs));
	}
	io_prep_pread(&cb, ro, (void *)-4096L, 16, 0);
	CALL("  io_submit(pread, buffer past the address space)", io_submit(ctx, 1, cbs));
	io_prep_pread(&cb, ro, buf, 16, -1);
	CALL("  io_submit(pread, negative offset)", io_submit(ctx, 1, cbs));
	io_prep_pread(&cb, opath, buf, 16, 0);
	CALL("  io_submit(pread on O_PATH fd)", io_submit(ctx, 1, cbs));
	io_prep_pread(&cb, ro, buf, 16, 0);
	int r = io_submit(ctx, 1, cbs);
	SAY("  io_submit(pread) = %s", errname(r));
	if (r == 1) {
		struct io_event ev;
		reap_exactly(ctx, &ev, 1);
		SAY(", res=%s", resname(ev.res));
	}
	SAY("\n");
	close(opath);
}

static void mode_errors_in_memory(void)
{
	char shm[] = "/dev/shm/ctest-errors-XXXXXX";
	int fd = mkstemp(shm);
	if (fd < 0) {
		SAY("/dev/shm: no file\n");
		return;
	}
	unlink(shm);
	fill_file(fd, 'm', 4096, 0);
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	int ro = open(path, O_RDONLY), wo = open(path, O_WRONLY);
	CHECK(ro >= 0 && wo >= 0);
	mode_errors("a file in /dev/shm", ro, wo);
	close(ro);
	close(wo);
	close(fd);
}

int main(void)
{
	int rfd = scratch_fd(O_RDWR);
	fill_file(rfd, 'r', 4096, 0);
	int wfd = dup(rfd);
	/* Separate descriptions for each direction. */
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", rfd);
	int ro = open(path, O_RDONLY);
	int wo = open(path, O_WRONLY);
	CHECK(ro >= 0 && wo >= 0 && wfd >= 0);
	close(wfd);

	setup_errors();
	submit_errors(ro, wo);
	mode_errors("a file in $CTEST_TMPDIR", ro, wo);
	mode_errors_in_memory();
	getevents_errors(ro);
	cancel_errors(ro);
	queue_errors();

	CALL("io_destroy", io_destroy(ctx));
	CALL("io_destroy(again)", io_destroy(ctx));
	CALL("io_destroy(NULL)", io_destroy(NULL));
	CALL("io_destroy(garbage)", io_destroy((io_context_t)0x1000));
	CALL("io_submit(destroyed)", io_submit(ctx, 0, NULL));
	CALL("io_cancel(destroyed)", io_cancel(ctx, NULL, NULL));
	return 0;
}
