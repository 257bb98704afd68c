/*
 * Signals and waiting: io_pgetevents with a signal mask (a signal that the
 * mask lets in interrupts the wait with -EINTR, or is delivered by the same
 * call that returns ready events; one it keeps out stays pending), EINTR from io_getevents (with and without SA_RESTART, SIGALRM and
 * SIGUSR1), a signal after some events were already collected, an ignored
 * signal. Signals are sent by a helper thread once the waiting thread is seen
 * inside the system call (/proc/self/task/TID/syscall), or made pending
 * before the call, so every run sees the same thing whatever the load.
 */
#include "common.h"
#include <poll.h>

static io_context_t ctx;
static volatile sig_atomic_t usr1, alrm;
static void on_usr1(int s) { (void)s; usr1++; }
static void on_alrm(int s) { (void)s; alrm++; }

static int usr1_blocked(void)
{
	sigset_t cur;
	CHECK(pthread_sigmask(SIG_BLOCK, NULL, &cur) == 0);
	return sigismember(&cur, SIGUSR1);
}

static void block_usr1(int how)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGUSR1);
	CHECK(pthread_sigmask(how, &s, NULL) == 0);
}

static void pgetevents_masks(int p[2])
{
	if (!have_pgetevents())
		return;
	struct io_event ev;
	struct iocb cb, *cbs[1] = { &cb };
	struct timespec long_wait = ms_timeout(10000), short_wait = ms_timeout(50);
	sigset_t let_in, keep_out;
	sigemptyset(&let_in);
	sigemptyset(&keep_out);
	sigaddset(&keep_out, SIGUSR1);

	/* SIGUSR1 blocked by the thread, made pending, let in by the mask. */
	block_usr1(SIG_BLOCK);
	usr1 = 0;
	CHECK(raise(SIGUSR1) == 0);
	CHECK(usr1 == 0);
	CALL("io_pgetevents(pending SIGUSR1, mask lets it in)",
	     io_pgetevents(ctx, 1, 1, &ev, &long_wait, &let_in));
	SAY("  handler ran %d, SIGUSR1 blocked again %d\n", (int)usr1, usr1_blocked());

	/* Events ready and a pending signal the mask lets in: the events are
	 * returned and the signal is delivered by the same call. */
	static char buf[64];
	int fd = scratch_fd(O_RDWR);
	struct timespec zero = { 0, 0 };
	for (int i = 0; i < 2; i++) {
		io_prep_pread(&cb, fd, buf, sizeof(buf), 0);
		CHECK(io_submit(ctx, 1, cbs) == 1);
		wait_ring_ready(ctx, 1);
		usr1 = 0;
		CHECK(raise(SIGUSR1) == 0);
		CALL(i == 0 ? "io_pgetevents(1 ready, pending SIGUSR1, mask lets it in)"
			    : "io_pgetevents(1 ready, pending SIGUSR1, mask lets it in, zero timeout)",
		     io_pgetevents(ctx, 1, 1, &ev, i == 0 ? &long_wait : &zero, &let_in));
		SAY("  handler ran %d, SIGUSR1 blocked again %d\n", (int)usr1, usr1_blocked());
	}
	close(fd);

	/* Pending, kept out by the mask: the wait runs to its timeout. */
	usr1 = 0;
	CHECK(raise(SIGUSR1) == 0);
	CALL("io_pgetevents(pending SIGUSR1, mask keeps it out, 50 ms)",
	     io_pgetevents(ctx, 1, 1, &ev, &short_wait, &keep_out));
	SAY("  handler ran %d\n", (int)usr1);
	block_usr1(SIG_UNBLOCK);
	SAY("  after unblocking: handler ran %d\n", (int)usr1);

	/* Arriving during the wait, let in by the mask. */
	block_usr1(SIG_BLOCK);
	usr1 = 0;
	struct when_waiting w;
	start_when_waiting(&w, CTEST_NR_IO_PGETEVENTS, SIGUSR1, -1);
	CALL("io_pgetevents(SIGUSR1 arrives, mask lets it in)",
	     io_pgetevents(ctx, 1, 1, &ev, &long_wait, &let_in));
	finish_when_waiting(&w);
	SAY("  handler ran %d, SIGUSR1 blocked again %d\n", (int)usr1, usr1_blocked());
	block_usr1(SIG_UNBLOCK);

	/* Arriving during the wait, kept out by the mask: the wait goes on
	 * until a poll completes; the handler runs once the mask is restored. */
	usr1 = 0;
	io_prep_poll(&cb, p[0], POLLIN);
	CHECK(io_submit(ctx, 1, cbs) == 1);
	start_when_waiting(&w, CTEST_NR_IO_PGETEVENTS, SIGUSR1, p[1]);
	CALL("io_pgetevents(SIGUSR1 arrives, mask keeps it out, poll completes)",
	     io_pgetevents(ctx, 1, 1, &ev, &long_wait, &keep_out));
	finish_when_waiting(&w);
	SAY("  event res=0x%lx, handler ran %d\n", ev.res, (int)usr1);
	char c;
	CHECK(read(p[0], &c, 1) == 1);

	/* NULL mask: the thread's own mask applies. */
	usr1 = 0;
	start_when_waiting(&w, CTEST_NR_IO_PGETEVENTS, SIGUSR1, -1);
	CALL("io_pgetevents(SIGUSR1 arrives, NULL mask)", io_pgetevents(ctx, 1, 1, &ev, &long_wait, NULL));
	finish_when_waiting(&w);
	SAY("  handler ran %d\n", (int)usr1);
}

static void getevents_eintr(int p[2])
{
	struct io_event ev[2];
	struct iocb cb, *cbs[1] = { &cb };
	struct timespec long_wait = ms_timeout(10000), short_wait = ms_timeout(100);

	usr1 = 0;
	struct when_waiting w;
	start_when_waiting(&w, CTEST_NR_IO_GETEVENTS, SIGUSR1, -1);
	CALL("io_getevents(SIGUSR1 arrives)", io_getevents(ctx, 1, 1, ev, &long_wait));
	finish_when_waiting(&w);
	SAY("  handler ran %d\n", (int)usr1);

	usr1 = 0;
	start_when_waiting(&w, CTEST_NR_IO_GETEVENTS, SIGUSR1, -1);
	CALL("io_getevents(SIGUSR1 arrives, NULL timeout)", io_getevents(ctx, 1, 1, ev, NULL));
	finish_when_waiting(&w);
	SAY("  handler ran %d\n", (int)usr1);

	on_signal(SIGALRM, on_alrm, SA_RESTART);
	alrm = 0;
	start_when_waiting(&w, CTEST_NR_IO_GETEVENTS, SIGALRM, -1);
	CALL("io_getevents(SIGALRM arrives, SA_RESTART)", io_getevents(ctx, 1, 1, ev, &long_wait));
	finish_when_waiting(&w);
	SAY("  handler ran %d\n", (int)alrm);

	/* One event already collected when the signal comes: it is returned. */
	int fd = scratch_fd(O_RDWR);
	static char buf[64];
	io_prep_pread(&cb, fd, buf, sizeof(buf), 0);
	CHECK(io_submit(ctx, 1, cbs) == 1);
	usr1 = 0;
	start_when_waiting(&w, CTEST_NR_IO_GETEVENTS, SIGUSR1, -1);
	CALL("io_getevents(min 2, 1 ready, SIGUSR1 arrives)", io_getevents(ctx, 2, 2, ev, &long_wait));
	finish_when_waiting(&w);
	SAY("  handler ran %d, event res=%s\n", (int)usr1, resname(ev[0].res));
	close(fd);

	/* A signal whose default action is to ignore it does not interrupt. */
	start_when_waiting(&w, CTEST_NR_IO_GETEVENTS, SIGWINCH, -1);
	CALL("io_getevents(SIGWINCH arrives, default action ignore, 100 ms)",
	     io_getevents(ctx, 1, 1, ev, &short_wait));
	finish_when_waiting(&w);
	signal(SIGURG, SIG_IGN);
	start_when_waiting(&w, CTEST_NR_IO_GETEVENTS, SIGURG, -1);
	CALL("io_getevents(SIGURG arrives, SIG_IGN, 100 ms)", io_getevents(ctx, 1, 1, ev, &short_wait));
	finish_when_waiting(&w);

	/* A poll completed by the sender after the signal: the signal wins. */
	io_prep_poll(&cb, p[0], POLLIN);
	CHECK(io_submit(ctx, 1, cbs) == 1);
	usr1 = 0;
	start_when_waiting(&w, CTEST_NR_IO_GETEVENTS, SIGUSR1, p[1]);
	CALL("io_getevents(SIGUSR1 arrives, then a poll completes)", io_getevents(ctx, 1, 1, ev, &long_wait));
	finish_when_waiting(&w);
	SAY("  handler ran %d\n", (int)usr1);
	reap_exactly(ctx, ev, 1);
	SAY("  the poll's event: res=0x%lx\n", ev[0].res);
	char c;
	CHECK(read(p[0], &c, 1) == 1);
}

int main(void)
{
	CHECK(io_setup(8, &ctx) == 0);
	on_signal(SIGUSR1, on_usr1, 0);
	int p[2];
	CHECK(pipe(p) == 0);
	pgetevents_masks(p);
	getevents_eintr(p);
	CALL("io_destroy", io_destroy(ctx));
	return 0;
}
