/*
 * submitters_exit: one context shared by short-lived submitter threads. Each
 * thread submits O_DIRECT writes (where the file system allows them, else
 * buffered ones), an fsync and a buffered write, then exits at once, its
 * requests in flight; a reaper thread waits in io_getevents all along. With
 * kernel AIO every request completes normally and the data is on the file:
 * a request outlives the thread that submitted it.
 * Then a thread submits a poll on eventfd E and exits; the program closes E
 * and gets another eventfd, E2, at the same number. The poll still watches
 * E (nothing ever looks the number up again): writing E2 does not complete
 * it; io_cancel does.
 */
#include "common.h"
#include <poll.h>
#include <sys/eventfd.h>

#define THREADS 6
#define PER 8
#define BLOCK 4096

static io_context_t ctx;
static int direct_fd, buffered_fd;
static char *bufs;

static void *submitter(void *arg)
{
	long id = (long)arg;
	static struct iocb all[THREADS][PER + 2]; /* outlive the thread */
	struct iocb *cb = all[id];
	struct iocb *cbs[PER + 2];
	for (int i = 0; i < PER; i++) {
		long slot = id * PER + i;
		char *b = bufs + slot * BLOCK;
		memset(b, 'a' + (int)(slot % 26), BLOCK);
		io_prep_pwrite(&cb[i], direct_fd, b, BLOCK, slot * BLOCK);
		cbs[i] = &cb[i];
	}
	io_prep_fsync(&cb[PER], direct_fd);
	cbs[PER] = &cb[PER];
	char *small = bufs + (THREADS * PER + id) * BLOCK;
	memset(small, 'A' + (int)id, 512);
	io_prep_pwrite(&cb[PER + 1], buffered_fd, small, 512, id * 512);
	cbs[PER + 1] = &cb[PER + 1];
	CHECK(io_submit(ctx, PER + 2, cbs) == PER + 2);
	return NULL; /* gone, its requests in flight */
}

struct tally {
	int events, ok, bad;
};

static void *reaper(void *arg)
{
	struct tally *t = arg;
	int want = THREADS * (PER + 2);
	struct io_event ev[16];
	long long deadline = now_ms() + 20000;
	while (t->events < want) {
		struct timespec to = ms_timeout(1000);
		int n = io_getevents(ctx, 1, 16, ev, &to);
		CHECK(n >= 0);
		for (int i = 0; i < n; i++) {
			struct iocb *cb = ev[i].obj;
			long expect = cb->aio_lio_opcode == IO_CMD_FSYNC ? 0 : (long)cb->u.c.nbytes;
			if ((long)ev[i].res == expect)
				t->ok++;
			else
				t->bad++;
		}
		t->events += n;
		CHECK(now_ms() < deadline);
	}
	return NULL;
}

static int poll_fd;
static struct iocb poll_cb;

static void *poll_submitter(void *arg)
{
	(void)arg;
	struct iocb *cbs[1] = { &poll_cb };
	io_prep_poll(&poll_cb, poll_fd, POLLIN);
	CHECK(io_submit(ctx, 1, cbs) == 1);
	return NULL;
}

static void poll_outlives_its_thread_and_its_number(void)
{
	poll_fd = eventfd(0, EFD_NONBLOCK);
	CHECK(poll_fd >= 0);
	pthread_t t;
	CHECK(pthread_create(&t, NULL, poll_submitter, NULL) == 0);
	CHECK(pthread_join(t, NULL) == 0);
	sleep_ms(20); /* the thread is gone, and with it anything tied to it */
	int n = poll_fd;
	close(poll_fd);
	int e2 = eventfd(0, EFD_NONBLOCK);
	SAY("eventfd E2 got E's number: %d\n", e2 == n);
	uint64_t one = 1;
	CHECK(write(e2, &one, 8) == 8);
	struct io_event ev;
	struct timespec t100 = ms_timeout(100);
	CALL("  io_getevents(E2 written, 100 ms)", io_getevents(ctx, 1, 1, &ev, &t100));
	CALL("  io_cancel(the poll on E)", io_cancel(ctx, &poll_cb, &ev));
	struct timespec t5 = ms_timeout(5000);
	CALL("  io_getevents", io_getevents(ctx, 1, 1, &ev, &t5));
	SAY("  the poll's event: %s\n", resname(ev.res));
	close(e2);
}

int main(void)
{
	CALL("io_setup", io_setup(256, &ctx));
	char path[4096];
	const char *dir = getenv("CTEST_TMPDIR");
	snprintf(path, sizeof(path), "%s/submitters-data", dir ? dir : "/tmp");
	direct_fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_DIRECT, 0600);
	if (direct_fd < 0)
		direct_fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK(direct_fd >= 0);
	buffered_fd = scratch_fd(O_RDWR);
	CHECK(posix_memalign((void **)&bufs, BLOCK, (THREADS * PER + THREADS) * BLOCK) == 0);
	for (int round = 0; round < 3; round++) {
		struct tally t = { 0, 0, 0 };
		pthread_t r, s[THREADS];
		CHECK(pthread_create(&r, NULL, reaper, &t) == 0);
		for (long i = 0; i < THREADS; i++)
			CHECK(pthread_create(&s[i], NULL, submitter, (void *)i) == 0);
		for (int i = 0; i < THREADS; i++)
			CHECK(pthread_join(s[i], NULL) == 0);
		CHECK(pthread_join(r, NULL) == 0);
		SAY("round %d: %d events, %d as asked, %d otherwise\n", round, t.events, t.ok, t.bad);
		/* The data is where each request put it. */
		int right = 0;
		static char check[BLOCK];
		for (long slot = 0; slot < THREADS * PER; slot++) {
			int rfd = open(path, O_RDONLY);
			CHECK(pread(rfd, check, BLOCK, slot * BLOCK) == BLOCK);
			close(rfd);
			right += check[0] == 'a' + (int)(slot % 26) && check[BLOCK - 1] == check[0];
		}
		SAY("  blocks with their data: %d of %d\n", right, THREADS * PER);
		char small[512];
		int smalls = 0;
		for (long id = 0; id < THREADS; id++) {
			CHECK(pread(buffered_fd, small, 512, id * 512) == 512);
			smalls += small[0] == 'A' + (int)id;
		}
		SAY("  buffered writes with their data: %d of %d\n", smalls, THREADS);
	}
	poll_outlives_its_thread_and_its_number();
	CALL("io_destroy", io_destroy(ctx));
	unlink(path);
	return 0;
}
