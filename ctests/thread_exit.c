/*
 * thread_exit: requests outlive the thread that submitted them. A thread
 * submits polls that are not ready yet, an fsync and buffered writes, then
 * exits; the main thread makes the polls ready and reaps every event. With
 * kernel AIO each completes normally; io_uring cancels a thread's queued
 * requests when the thread exits, which a libaio program must never see.
 * Then a thread cancelled (pthread_cancel) while in io_submit with an
 * fsync of much dirty data and reads: io_submit is no cancellation point
 * (libaio makes the system call itself), so the call completes, and the
 * context is destroyed normally.
 */
#include "common.h"
#include <poll.h>

#define NPOLL 8
#define NWRITE 8

struct job {
	io_context_t ctx;
	int pipes[NPOLL][2];
	int fd;
	struct iocb polls[NPOLL], writes[NWRITE], sync;
	char bufs[NWRITE][512];
};

static void *submitter(void *arg)
{
	struct job *j = arg;
	struct iocb *cbs[NPOLL + NWRITE + 1];
	int n = 0;
	for (int i = 0; i < NPOLL; i++) {
		io_prep_poll(&j->polls[i], j->pipes[i][0], POLLIN);
		cbs[n++] = &j->polls[i];
	}
	for (int i = 0; i < NWRITE; i++) {
		memset(j->bufs[i], 'a' + i, sizeof(j->bufs[i]));
		io_prep_pwrite(&j->writes[i], j->fd, j->bufs[i], sizeof(j->bufs[i]), i * 512);
		cbs[n++] = &j->writes[i];
	}
	io_prep_fsync(&j->sync, j->fd);
	cbs[n++] = &j->sync;
	CHECK(io_submit(j->ctx, n, cbs) == n);
	return NULL; /* the thread ends with everything in flight */
}

static io_context_t cctx;
static int cfd;
static atomic_int entering;
static char cbuf[4][512];

static void *cancelled_submitter(void *arg)
{
	(void)arg;
	struct iocb cb[5], *cbs[5];
	io_prep_fsync(&cb[0], cfd);
	for (int i = 0; i < 4; i++)
		io_prep_pread(&cb[i + 1], cfd, cbuf[i], sizeof(cbuf[i]), i * 512);
	for (int i = 0; i < 5; i++)
		cbs[i] = &cb[i];
	atomic_store(&entering, 1);
	int r = io_submit(cctx, 5, cbs);
	SAY("  io_submit in the thread being cancelled = %d\n", r);
	pthread_testcancel();
	return NULL;
}

static void cancelled_in_submit(void)
{
	CHECK(io_setup(8, &cctx) == 0);
	cfd = scratch_fd(O_RDWR);
	write_dirty(cfd, 'c', 128);
	pthread_t t;
	CHECK(pthread_create(&t, NULL, cancelled_submitter, NULL) == 0);
	while (!atomic_load(&entering))
		sched_yield();
	sleep_ms(2);
	CHECK(pthread_cancel(t) == 0);
	CHECK(pthread_join(t, NULL) == 0); /* cancelled or not: timing's */
	SAY("thread cancelled during io_submit: joined\n");
	struct io_event ev[5];
	reap_exactly(cctx, ev, 5);
	int ok = 0;
	for (int i = 0; i < 5; i++)
		ok += ev[i].res == 0 || ev[i].res == 512;
	SAY("  its 5 requests completed: %d\n", ok);
	alarm(30); /* a hang is a failure */
	CALL("  io_destroy", io_destroy(cctx));
	alarm(0);
	close(cfd);
}

int main(void)
{
	static struct job j;
	CHECK(io_setup(64, &j.ctx) == 0);
	j.fd = scratch_fd(O_RDWR);
	for (int i = 0; i < NPOLL; i++)
		CHECK(pipe(j.pipes[i]) == 0);
	for (int round = 0; round < 3; round++) {
		pthread_t t;
		CHECK(pthread_create(&t, NULL, submitter, &j) == 0);
		CHECK(pthread_join(t, NULL) == 0);
		sleep_ms(20); /* the thread is gone, and with it anything tied to it */
		for (int i = 0; i < NPOLL; i++)
			CHECK(write(j.pipes[i][1], "x", 1) == 1);
		struct io_event ev[NPOLL + NWRITE + 1];
		reap_exactly(j.ctx, ev, NPOLL + NWRITE + 1);
		int polls = 0, writes = 0, syncs = 0, other = 0;
		for (int i = 0; i < NPOLL + NWRITE + 1; i++) {
			struct iocb *cb = ev[i].obj;
			if (cb >= j.polls && cb < j.polls + NPOLL && ev[i].res == (POLLIN | POLLRDNORM))
				polls++;
			else if (cb >= j.writes && cb < j.writes + NWRITE && ev[i].res == 512)
				writes++;
			else if (cb == &j.sync && ev[i].res == 0)
				syncs++;
			else
				other++;
		}
		SAY("round %d, submitter exited: polls ready=%d writes done=%d fsync done=%d other=%d\n", round,
		    polls, writes, syncs, other);
		char c;
		for (int i = 0; i < NPOLL; i++)
			CHECK(read(j.pipes[i][0], &c, 1) == 1);
		char back[512];
		for (int i = 0; i < NWRITE; i++) {
			CHECK(pread(j.fd, back, sizeof(back), i * 512) == (ssize_t)sizeof(back));
			CHECK(back[0] == 'a' + i && back[511] == 'a' + i);
		}
	}
	CALL("io_destroy", io_destroy(j.ctx));
	cancelled_in_submit();
	return 0;
}
