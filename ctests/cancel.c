/*
 * io_cancel: a pending poll is cancelled with -EINPROGRESS and its event then
 * arrives in the ring; what cannot be cancelled (done, never submitted, on
 * another context, a read) gets -EINVAL.
 */
#include "common.h"
#include <poll.h>

static io_context_t ctx, other;

static void reap1(const char *label, struct iocb *cb)
{
	struct io_event ev;
	reap_exactly(ctx, &ev, 1);
	CHECK(ev.obj == cb);
	SAY("%s: res=%s (0x%lx) res2=%s data-ok=%d\n", label, resname(ev.res), ev.res, resname(ev.res2),
	    ev.data == cb->data);
}

static void none_left(const char *label)
{
	struct io_event ev;
	struct timespec t = ms_timeout(30);
	SAY("%s: io_getevents(30 ms) = %s\n", label, errname(io_getevents(ctx, 1, 1, &ev, &t)));
}

int main(void)
{
	CHECK(io_setup(16, &ctx) == 0);
	CHECK(io_setup(16, &other) == 0);
	int p[2];
	CHECK(pipe(p) == 0);
	struct iocb cb, cb2, cb3, *cbs[3] = { &cb, &cb2, &cb3 };
	struct io_event ev;

	io_prep_poll(&cb, p[0], POLLIN);
	cb.data = (void *)0xc0ffee;
	CHECK(io_submit(ctx, 1, cbs) == 1);
	CALL("io_cancel(pending poll, other ctx)", io_cancel(other, &cb, &ev));
	CALL("io_cancel(pending poll)", io_cancel(ctx, &cb, &ev));
	reap1("  its event", &cb);
	CALL("io_cancel(same poll again)", io_cancel(ctx, &cb, &ev));
	none_left("  nothing more");

	io_prep_poll(&cb, p[0], POLLIN);
	CHECK(io_submit(ctx, 1, cbs) == 1);
	CALL("io_cancel(pending poll, event=NULL)", io_cancel(ctx, &cb, NULL));
	reap1("  its event", &cb);

	/* Cancel one of three; the others still complete normally. */
	io_prep_poll(&cb, p[0], POLLIN);
	io_prep_poll(&cb2, p[0], POLLIN);
	io_prep_poll(&cb3, p[0], POLLIN);
	for (int i = 0; i < 3; i++)
		cbs[i]->data = (void *)(uintptr_t)(i + 1);
	CHECK(io_submit(ctx, 3, cbs) == 3);
	CALL("io_cancel(second of three)", io_cancel(ctx, &cb2, &ev));
	reap1("  its event", &cb2);
	none_left("  the other two still wait");
	CHECK(write(p[1], "x", 1) == 1);
	struct io_event two[2];
	reap_exactly(ctx, two, 2);
	CHECK((two[0].obj == &cb && two[1].obj == &cb3) || (two[0].obj == &cb3 && two[1].obj == &cb));
	SAY("  after a write: res=0x%lx, 0x%lx\n", two[0].res, two[1].res);
	CALL("io_cancel(completed poll)", io_cancel(ctx, &cb, &ev));

	/* Completed but not yet reaped. */
	io_prep_poll(&cb, p[0], POLLIN);
	CHECK(io_submit(ctx, 1, cbs) == 1);
	wait_ring_ready(ctx, 1);
	CALL("io_cancel(completed, not reaped)", io_cancel(ctx, &cb, &ev));
	reap1("  its event", &cb);
	char c;
	CHECK(read(p[0], &c, 1) == 1);

	/* The kernel finds the request by its address, once the key it wrote
	 * at submission (KIOCB_KEY, 0) is still there. */
	io_prep_poll(&cb, p[0], POLLIN);
	cb.key = 77;
	CHECK(io_submit(ctx, 1, cbs) == 1);
	SAY("key after submission: %u\n", cb.key);
	cb.key = 1;
	CALL("io_cancel(pending poll, key changed)", io_cancel(ctx, &cb, &ev));
	struct iocb copy = cb;
	copy.key = 0;
	CALL("io_cancel(copy of the iocb)", io_cancel(ctx, &copy, &ev));
	cb.key = 0;
	CALL("io_cancel(pending poll, key restored)", io_cancel(ctx, &cb, &ev));
	reap1("  its event", &cb);

	/* A read completes at once and was never cancellable. */
	int fd = scratch_fd(O_RDWR);
	fill_file(fd, 'r', 4096, 0);
	static char buf[4096];
	io_prep_pread(&cb, fd, buf, sizeof(buf), 0);
	CHECK(io_submit(ctx, 1, cbs) == 1);
	CALL("io_cancel(read)", io_cancel(ctx, &cb, &ev));
	reap1("  the read's event", &cb);

	/* Cancelling through io_queue_release/io_destroy: a pending poll is
	 * cancelled by the kernel and the destroy returns. */
	io_prep_poll(&cb, p[0], POLLIN);
	CHECK(io_submit(other, 1, cbs) == 1);
	CALL("io_destroy(context with a pending poll)", io_destroy(other));
	CALL("io_destroy", io_destroy(ctx));
	return 0;
}
