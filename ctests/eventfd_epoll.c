/*
 * Completion notification through an eventfd (io_set_eventfd), watched with
 * epoll: the counter counts exactly the requests that asked for it, failed
 * ones included; a poll request on that eventfd is woken by a completion.
 */
#include "common.h"
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

static io_context_t ctx;

/* Waits on epoll until the eventfd's counter has added up to `want`
 * (bounded), returning what it added up to. */
static unsigned long long collect(int ep, int efd, unsigned long long want)
{
	unsigned long long total = 0;
	long long deadline = now_ms() + 20000;
	while (total < want && now_ms() < deadline) {
		struct epoll_event e;
		int n = epoll_wait(ep, &e, 1, 1000);
		CHECK(n >= 0 || errno == EINTR);
		if (n == 1) {
			CHECK(e.data.fd == efd && (e.events & EPOLLIN));
			eventfd_t v;
			if (eventfd_read(efd, &v) == 0)
				total += v;
		}
	}
	return total;
}

static int ready_now(int ep)
{
	struct epoll_event e;
	return epoll_wait(ep, &e, 1, 0);
}

int main(void)
{
	CHECK(io_setup(32, &ctx) == 0);
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	CHECK(efd >= 0 && ep >= 0);
	struct epoll_event watch = { .events = EPOLLIN, .data.fd = efd };
	CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, efd, &watch) == 0);

	int fd = scratch_fd(O_RDWR);
	static char bufs[8][512];
	struct iocb cb[8], *cbs[8];
	for (int i = 0; i < 8; i++) {
		memset(bufs[i], 'a' + i, sizeof(bufs[i]));
		io_prep_pwrite(&cb[i], fd, bufs[i], sizeof(bufs[i]), 512LL * i);
		io_set_eventfd(&cb[i], efd);
		cbs[i] = &cb[i];
	}
	SAY("io_set_eventfd: flags=%u resfd-ok=%d\n", cb[0].u.c.flags, cb[0].u.c.resfd == (unsigned)efd);
	SAY("epoll before submitting: %d ready\n", ready_now(ep));
	CALL("io_submit(8 writes with eventfd)", io_submit(ctx, 8, cbs));
	SAY("  eventfd counted %llu\n", collect(ep, efd, 8));
	struct io_event ev[8];
	reap_exactly(ctx, ev, 8);
	SAY("  8 events reaped; epoll now: %d ready\n", ready_now(ep));

	/* Only the requests that asked are counted; failures count too. */
	for (int i = 0; i < 6; i++) {
		io_prep_pread(&cb[i], fd, bufs[i], sizeof(bufs[i]), 512LL * i);
		if (i % 2 == 0)
			io_set_eventfd(&cb[i], efd);
	}
	io_prep_pread(&cb[6], fd, NULL, 512, 0);
	io_set_eventfd(&cb[6], efd);
	CALL("io_submit(6 reads, 3 with eventfd, + 1 failing read with eventfd)", io_submit(ctx, 7, cbs));
	reap_exactly(ctx, ev, 7);
	SAY("  eventfd counted %llu\n", collect(ep, efd, 4));
	SAY("  epoll now: %d ready\n", ready_now(ep));

	/* A poll with eventfd: nothing until the pipe is written. */
	int p[2];
	CHECK(pipe(p) == 0);
	io_prep_poll(&cb[0], p[0], POLLIN);
	io_set_eventfd(&cb[0], efd);
	CALL("io_submit(poll with eventfd)", io_submit(ctx, 1, cbs));
	SAY("  epoll before the write: %d ready\n", ready_now(ep));
	CHECK(write(p[1], "x", 1) == 1);
	SAY("  eventfd counted %llu\n", collect(ep, efd, 1));
	reap_exactly(ctx, ev, 1);
	SAY("  event res=0x%lx\n", ev[0].res);

	/* A poll request on the eventfd itself, woken by another request's
	 * completion. The eventfd is blocking here, so the poll waits for a
	 * non-zero counter. */
	int efd2 = eventfd(0, EFD_CLOEXEC);
	CHECK(efd2 >= 0);
	io_prep_poll(&cb[0], efd2, POLLIN);
	CALL("io_submit(poll on an eventfd)", io_submit(ctx, 1, cbs));
	io_prep_pread(&cb[1], fd, bufs[1], 512, 0);
	io_set_eventfd(&cb[1], efd2);
	CALL("io_submit(read signalling that eventfd)", io_submit(ctx, 1, cbs + 1));
	reap_exactly(ctx, ev, 2);
	int poll_at = ev[0].obj == &cb[0] ? 0 : 1;
	CHECK(ev[poll_at].obj == &cb[0] && ev[1 - poll_at].obj == &cb[1]);
	SAY("  read: res=%s; poll: res=%s\n", resname(ev[1 - poll_at].res), resname(ev[poll_at].res));
	eventfd_t v;
	CHECK(eventfd_read(efd2, &v) == 0);
	SAY("  counter %llu\n", (unsigned long long)v);

	/* An EFD_SEMAPHORE eventfd counts the same. */
	int sem = eventfd(0, EFD_SEMAPHORE | EFD_NONBLOCK);
	CHECK(sem >= 0);
	for (int i = 0; i < 3; i++) {
		io_prep_pread(&cb[i], fd, bufs[i], 512, 0);
		io_set_eventfd(&cb[i], sem);
	}
	CALL("io_submit(3 reads, semaphore eventfd)", io_submit(ctx, 3, cbs));
	reap_exactly(ctx, ev, 3);
	int reads = 0;
	while (eventfd_read(sem, &v) == 0)
		reads++;
	SAY("  semaphore reads: %d\n", reads);

	close(p[0]);
	close(p[1]);
	close(efd2);
	close(sem);
	close(ep);
	close(efd);
	CALL("io_destroy", io_destroy(ctx));
	return 0;
}
