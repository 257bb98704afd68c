/*
 * fork: a context belongs to the process that set it up. In the child, the
 * parent's context is refused by io_submit, io_getevents (waiting ones: a
 * {0,0} one is in ctests/differ/), io_cancel and io_destroy with -EINVAL; the
 * child's own contexts work; the parent's context and its request in flight
 * are unaffected.
 */
#include "common.h"
#include <poll.h>
#include <sys/wait.h>

static void child(io_context_t parent_ctx, struct iocb *pending, int fd)
{
	static char buf[64];
	struct iocb cb, *cbs[1] = { &cb };
	struct io_event ev;
	struct timespec t = ms_timeout(20);

	io_prep_pread(&cb, fd, buf, sizeof(buf), 0);
	CALL("child: io_submit(parent's ctx)", io_submit(parent_ctx, 1, cbs));
	CALL("child: io_getevents(parent's ctx, NULL)", io_getevents(parent_ctx, 1, 1, &ev, NULL));
	CALL("child: io_getevents(parent's ctx, 20 ms)", io_getevents(parent_ctx, 1, 1, &ev, &t));
	CALL("child: io_pgetevents(parent's ctx, 20 ms)", io_pgetevents(parent_ctx, 1, 1, &ev, &t, NULL));
	CALL("child: io_queue_wait(parent's ctx)", io_queue_wait(parent_ctx, NULL));
	CALL("child: io_cancel(parent's ctx, parent's poll)", io_cancel(parent_ctx, pending, &ev));
	CALL("child: io_destroy(parent's ctx)", io_destroy(parent_ctx));

	io_context_t mine = 0;
	CALL("child: io_setup", io_setup(4, &mine));
	CHECK(mine != parent_ctx);
	CALL("child: io_submit(own ctx)", io_submit(mine, 1, cbs));
	reap_exactly(mine, &ev, 1);
	SAY("child: event res=%s obj-ok=%d\n", resname(ev.res), ev.obj == &cb);
	CALL("child: io_destroy(own ctx)", io_destroy(mine));
	exit(0);
}

static void fork_and_wait(io_context_t ctx, struct iocb *pending, int fd)
{
	fflush(stdout);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
		child(ctx, pending, fd);
	int st;
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

int main(void)
{
	io_context_t ctx = 0;
	CHECK(io_setup(8, &ctx) == 0);
	int fd = scratch_fd(O_RDWR);
	fill_file(fd, 'k', 4096, 0);
	int p[2];
	CHECK(pipe(p) == 0);
	struct iocb poll_cb, read_cb, *cbs[1];
	struct io_event ev;
	static char buf[64];

	/* A poll in flight across the fork. */
	io_prep_poll(&poll_cb, p[0], POLLIN);
	cbs[0] = &poll_cb;
	CALL("parent: io_submit(poll)", io_submit(ctx, 1, cbs));
	fork_and_wait(ctx, &poll_cb, fd);
	CHECK(write(p[1], "x", 1) == 1);
	reap_exactly(ctx, &ev, 1);
	SAY("parent: the poll completed after the fork, res=0x%lx obj-ok=%d\n", ev.res, ev.obj == &poll_cb);

	/* A completion waiting in the ring across the fork. */
	io_prep_pread(&read_cb, fd, buf, sizeof(buf), 0);
	cbs[0] = &read_cb;
	CALL("parent: io_submit(read)", io_submit(ctx, 1, cbs));
	wait_ring_ready(ctx, 1);
	fork_and_wait(ctx, &poll_cb, fd);
	struct timespec zero = { 0, 0 };
	CALL("parent: io_getevents({0,0})", io_getevents(ctx, 1, 1, &ev, &zero));
	SAY("parent: res=%s obj-ok=%d\n", resname(ev.res), ev.obj == &read_cb);

	/* A second generation: the parent keeps using its context. */
	fork_and_wait(ctx, &poll_cb, fd);
	CALL("parent: io_submit(read) after children", io_submit(ctx, 1, cbs));
	reap_exactly(ctx, &ev, 1);
	SAY("parent: res=%s\n", resname(ev.res));
	CALL("parent: io_destroy", io_destroy(ctx));
	return 0;
}
