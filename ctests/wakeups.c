/*
 * Wake-ups that must not be lost when several threads use contexts of their
 * own at the same time, round after round, with nothing else happening to
 * cover a lost one:
 * 1. each thread submits a poll that waits, cancels it, and waits (3 s at
 *    most) for the cancellation's event; all meet at a barrier;
 * 2. each thread submits O_DIRECT reads that signal an eventfd of its own
 *    and reaps them: every completion adds one to its eventfd, at once.
 * Kernel AIO delivers each at once; a user-space engine hands both to its
 * threads, which must be woken every time.
 */
#include "common.h"
#include <poll.h>
#include <sys/eventfd.h>

#define K 4
#define CANCEL_ROUNDS 1500
#define READ_ROUNDS 1000
/* Under valgrind, which runs one thread at a time, slowly: */
#define VALGRIND_ROUNDS 50

static int cancel_rounds = CANCEL_ROUNDS, read_rounds = READ_ROUNDS;
#define B 4

static pthread_barrier_t bar;
static atomic_int missing_cancel, slow_cancel, missing_signal, bad_reads;
static int data_fd;

static void *canceller(void *arg)
{
	(void)arg;
	io_context_t ctx = 0;
	CHECK(io_setup(8, &ctx) == 0);
	int p[2];
	CHECK(pipe(p) == 0);
	for (int r = 0; r < cancel_rounds; r++) {
		struct iocb cb, *one = &cb;
		io_prep_poll(&cb, p[0], POLLIN);
		CHECK(io_submit(ctx, 1, &one) == 1);
		struct io_event ev;
		int c = io_cancel(ctx, &cb, &ev);
		CHECK(c == -EINPROGRESS || c == 0);
		struct timespec t = ms_timeout(3000);
		long long start = now_ms();
		int n = io_getevents(ctx, 1, 1, &ev, &t);
		if (n != 1)
			atomic_fetch_add(&missing_cancel, 1);
		else if (now_ms() - start > 1000)
			atomic_fetch_add(&slow_cancel, 1);
		pthread_barrier_wait(&bar);
	}
	close(p[0]);
	close(p[1]);
	CHECK(io_destroy(ctx) == 0);
	return NULL;
}

static void *reader(void *arg)
{
	long id = (long)arg;
	io_context_t ctx = 0;
	CHECK(io_setup(16, &ctx) == 0);
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	CHECK(efd >= 0);
	char *buf;
	CHECK(posix_memalign((void **)&buf, 4096, B * 4096) == 0);
	for (int r = 0; r < read_rounds; r++) {
		struct iocb cb[B], *cbs[B];
		for (int i = 0; i < B; i++) {
			io_prep_pread(&cb[i], data_fd, buf + i * 4096, 4096, ((id * B + i + r) % 64) * 4096);
			io_set_eventfd(&cb[i], efd);
			cbs[i] = &cb[i];
		}
		CHECK(io_submit(ctx, B, cbs) == B);
		struct io_event ev[B];
		reap_exactly(ctx, ev, B);
		for (int i = 0; i < B; i++)
			if (ev[i].res != 4096 || buf[i * 4096] != 'w')
				atomic_fetch_add(&bad_reads, 1);
		/* Each completion signalled the eventfd before its event was
		 * reaped, as kernel AIO does; a few milliseconds' grace for a
		 * service thread that signals it. */
		uint64_t v = 0, total = 0;
		long long deadline = now_ms() + 1000;
		while (total < B && now_ms() < deadline) {
			if (read(efd, &v, 8) == 8)
				total += v;
			else
				sleep_ms(1);
		}
		if (total != B)
			atomic_fetch_add(&missing_signal, 1);
	}
	free(buf);
	close(efd);
	CHECK(io_destroy(ctx) == 0);
	return NULL;
}

/* Runs `fn` in K threads at once, each given its index, and waits for all. */
static void in_k_threads(void *(*fn)(void *))
{
	pthread_t t[K];
	for (long i = 0; i < K; i++)
		CHECK(pthread_create(&t[i], NULL, fn, (void *)i) == 0);
	for (int i = 0; i < K; i++)
		CHECK(pthread_join(t[i], NULL) == 0);
}

int main(void)
{
	if (under_valgrind())
		cancel_rounds = read_rounds = VALGRIND_ROUNDS;
	CHECK(pthread_barrier_init(&bar, NULL, K) == 0);
	in_k_threads(canceller);
	SAY("%d threads x %d rounds of poll, io_cancel, io_getevents(3 s): events missing %d, "
	    "later than 1 s %d\n",
	    K, cancel_rounds, atomic_load(&missing_cancel), atomic_load(&slow_cancel));

	data_fd = direct_data_fd('w', 64 * 4096);
	in_k_threads(reader);
	SAY("%d threads x %d rounds of %d O_DIRECT reads with an eventfd: wrong reads %d, "
	    "rounds whose eventfd missed a completion %d\n",
	    K, read_rounds, B, atomic_load(&bad_reads), atomic_load(&missing_signal));
	close(data_fd);
	return 0;
}
