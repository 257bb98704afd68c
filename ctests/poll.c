/*
 * IO_CMD_POLL: on a pipe (ready at once, ready later, hung up), on an
 * eventfd, on a socket pair, on a regular file; several polls woken by one
 * write; the io_poll helper with io_queue_run; polls the kernel refuses;
 * hundreds of polls waiting at once, submitted in one call and one by one
 * (a user-space engine hands each one's file to a thread that waits on
 * them: none may be refused or lost on the way while that thread is busy).
 */
#include "common.h"
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <pthread.h>

static io_context_t ctx;

static void submit1(const char *label, struct iocb *cb)
{
	int r = io_submit(ctx, 1, &cb);
	SAY("%s: io_submit = %s\n", label, errname(r));
}

/* Reaps one event and prints its poll mask. */
static void reap1(const char *label, struct iocb *cb)
{
	struct io_event ev;
	reap_exactly(ctx, &ev, 1);
	CHECK(ev.obj == cb);
	SAY("%s: res=%s (0x%lx) res2=%s\n", label, resname(ev.res), ev.res, resname(ev.res2));
}

static void nothing_ready(const char *label)
{
	struct io_event ev;
	struct timespec zero = { 0, 0 }, t = ms_timeout(30);
	int a = io_getevents(ctx, 1, 1, &ev, &zero);
	int b = io_getevents(ctx, 1, 1, &ev, &t);
	SAY("%s: io_getevents zero timeout = %s, 30 ms = %s\n", label, errname(a), errname(b));
}

static int calls;
static long last_res;
static void cb_fn(io_context_t c, struct iocb *cb, long res, long res2)
{
	CHECK(c == ctx && res2 == 0 && cb != NULL);
	calls++;
	last_res = res;
}

static void pipes(void)
{
	int p[2];
	CHECK(pipe(p) == 0);
	struct iocb cb, cb2, cb3;

	io_prep_poll(&cb, p[1], POLLOUT);
	submit1("POLLOUT on an empty pipe's write end", &cb);
	reap1("  event", &cb);

	io_prep_poll(&cb, p[0], POLLIN);
	submit1("POLLIN on an empty pipe", &cb);
	nothing_ready("  before the write");
	CHECK(write(p[1], "x", 1) == 1);
	reap1("  after the write", &cb);

	io_prep_poll(&cb, p[0], POLLIN | POLLOUT);
	submit1("POLLIN|POLLOUT on a pipe holding data", &cb);
	reap1("  event", &cb);
	char c;
	CHECK(read(p[0], &c, 1) == 1);

	/* Three polls, one write wakes them all. */
	io_prep_poll(&cb, p[0], POLLIN);
	io_prep_poll(&cb2, p[0], POLLIN | POLLRDNORM);
	io_prep_poll(&cb3, p[0], POLLPRI);
	struct iocb *three[3] = { &cb, &cb2, &cb3 };
	CALL("3 polls on one empty pipe: io_submit", io_submit(ctx, 3, three));
	CHECK(write(p[1], "y", 1) == 1);
	struct io_event ev[3];
	reap_exactly(ctx, ev, 2);
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 2; j++)
			if (ev[j].obj == three[i])
				SAY("  poll %d: res=0x%lx\n", i, ev[j].res);
	nothing_ready("  POLLPRI still waiting");
	CHECK(read(p[0], &c, 1) == 1);

	/* Hang-up wakes the POLLPRI poll too (POLLHUP is always reported). */
	close(p[1]);
	reap1("  POLLPRI after the writer closed", &cb3);
	io_prep_poll(&cb, p[0], POLLIN);
	submit1("POLLIN on a pipe with no writer", &cb);
	reap1("  event", &cb);
	close(p[0]);
}

static void eventfds(void)
{
	int efd = eventfd(0, EFD_CLOEXEC);
	CHECK(efd >= 0);
	struct iocb cb;
	io_prep_poll(&cb, efd, POLLIN);
	submit1("POLLIN on an eventfd at 0", &cb);
	nothing_ready("  before eventfd_write");
	CHECK(eventfd_write(efd, 3) == 0);
	reap1("  after eventfd_write", &cb);
	io_prep_poll(&cb, efd, POLLOUT);
	submit1("POLLOUT on an eventfd", &cb);
	reap1("  event", &cb);
	close(efd);
}

static void sockets(void)
{
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	struct iocb cb;
	io_prep_poll(&cb, sv[0], POLLIN);
	submit1("POLLIN on a socket", &cb);
	nothing_ready("  before send");
	CHECK(send(sv[1], "z", 1, 0) == 1);
	reap1("  after send", &cb);
	io_prep_poll(&cb, sv[0], POLLRDHUP);
	submit1("POLLRDHUP on a socket", &cb);
	nothing_ready("  before shutdown");
	CHECK(shutdown(sv[1], SHUT_WR) == 0);
	reap1("  after shutdown", &cb);
	close(sv[0]);
	close(sv[1]);
}

static void helper_and_refusals(void)
{
	int p[2];
	CHECK(pipe(p) == 0);
	struct iocb cb;
	CALL("io_poll(pipe, POLLIN)", io_poll(ctx, &cb, cb_fn, p[0], POLLIN));
	CHECK(cb.aio_lio_opcode == IO_CMD_POLL && cb.u.poll.events == POLLIN && cb.data == (void *)cb_fn);
	calls = 0;
	CALL("io_queue_run before the write", io_queue_run(ctx));
	SAY("  callbacks %d\n", calls);
	CHECK(write(p[1], "w", 1) == 1);
	long long deadline = now_ms() + 20000;
	while (calls == 0) {
		CHECK(io_queue_run(ctx) == 0);
		CHECK(now_ms() < deadline);
	}
	SAY("io_queue_run after the write: callbacks %d, res=0x%lx\n", calls, last_res);

	int fd = scratch_fd(O_RDWR);
	io_prep_poll(&cb, fd, POLLIN | POLLOUT);
	submit1("POLLIN|POLLOUT on a regular file", &cb);
	reap1("  event", &cb);

	io_prep_poll(&cb, p[0], 0x10000);
	submit1("poll with events 0x10000", &cb);
	io_prep_poll(&cb, p[0], POLLIN);
	cb.u.c.offset = 1;
	submit1("poll with an offset", &cb);
	io_prep_poll(&cb, p[0], POLLIN);
	cb.aio_rw_flags = RWF_NOWAIT;
	submit1("poll with aio_rw_flags", &cb);
	io_prep_poll(&cb, -1, POLLIN);
	submit1("poll on fd -1", &cb);
	CALL("io_poll(NULL ctx)", io_poll(NULL, &cb, cb_fn, p[0], POLLIN));
	close(fd);
	close(p[0]);
	close(p[1]);
}

/* A poll and a read of an empty blocking pipe in one io_submit: kernel AIO
 * arms the poll at its iocb, so it completes while io_submit still waits
 * in the read. */
static int hp1[2], hp2[2];
static struct iocb hcb[2];
static char hbuf[1];
static void *blocked_submitter(void *arg)
{
	(void)arg;
	struct iocb *two[2] = { &hcb[0], &hcb[1] };
	CHECK(io_submit(ctx, 2, two) == 2);
	return NULL;
}

static void poll_then_blocking_read(void)
{
	CHECK(pipe(hp1) == 0 && pipe(hp2) == 0);
	io_prep_poll(&hcb[0], hp1[0], POLLIN);
	io_prep_pread(&hcb[1], hp2[0], hbuf, 1, 0);
	/* valgrind holds its one lock through io_submit, which would then
	 * block every thread: there the read finds its byte at once. */
	int pre_written = under_valgrind();
	if (pre_written)
		CHECK(write(hp2[1], "y", 1) == 1);
	pthread_t t;
	CHECK(pthread_create(&t, NULL, blocked_submitter, NULL) == 0);
	sleep_ms(200); /* in the read by now (if not, the poll is ready at once) */
	CHECK(write(hp1[1], "x", 1) == 1);
	struct io_event ev;
	struct timespec t2 = ms_timeout(2000);
	int n = io_getevents(ctx, 1, 1, &ev, &t2);
	SAY("poll, then a read of an empty blocking pipe, in one io_submit: the poll's event while it "
	    "blocks: %d (res 0x%lx)\n",
	    n, n == 1 ? ev.res : 0);
	if (!pre_written)
		CHECK(write(hp2[1], "y", 1) == 1);
	CHECK(pthread_join(t, NULL) == 0);
	reap_exactly(ctx, &ev, 1);
	SAY("  then the read: res=%s\n", resname(ev.res));
	for (int i = 0; i < 2; i++) {
		close(hp1[i]);
		close(hp2[i]);
	}
}

#define MANY 600 /* within the usual 1024 descriptors, as kernel AIO needs none */

static void many_waiting(void)
{
	static struct iocb cbs[MANY];
	static struct iocb *list[MANY];
	static struct io_event ev[MANY];
	io_context_t big = 0;
	CHECK(io_setup(MANY, &big) == 0);
	int efd = eventfd(0, EFD_CLOEXEC);
	CHECK(efd >= 0);
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < MANY; i++) {
			io_prep_poll(&cbs[i], efd, POLLIN);
			cbs[i].data = (void *)(long)i;
			list[i] = &cbs[i];
		}
		int accepted = 0;
		if (round == 0) {
			accepted = io_submit(big, MANY, list);
		} else {
			for (int i = 0; i < MANY; i++)
				accepted += io_submit(big, 1, &list[i]) == 1;
		}
		struct timespec zero = { 0, 0 };
		int early = io_getevents(big, 0, MANY, ev, &zero);
		CHECK(eventfd_write(efd, 1) == 0);
		int got = 0, pollin = 0;
		if (early == 0 && accepted == MANY) {
			reap_exactly(big, ev, MANY);
			got = MANY;
			for (int i = 0; i < MANY; i++)
				pollin += ev[i].res == POLLIN && ev[i].obj == &cbs[(long)ev[i].data];
		}
		SAY("%d polls waiting on one eventfd, %s: accepted %d, ready before the write %d, "
		    "reaped %d, POLLIN %d\n",
		    MANY, round ? "one io_submit each" : "one io_submit", accepted, early, got, pollin);
		uint64_t v;
		CHECK(eventfd_read(efd, &v) == 0);
	}
	close(efd);
	CALL("io_destroy(600-event context)", io_destroy(big));
}

int main(void)
{
	CHECK(io_setup(16, &ctx) == 0);
	pipes();
	eventfds();
	sockets();
	helper_and_refusals();
	poll_then_blocking_read();
	many_waiting();
	CALL("io_destroy", io_destroy(ctx));
	return 0;
}
