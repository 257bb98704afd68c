/*
 * engine_probe_race SECONDS: io_context_engine() asked in a loop while two
 * threads reap one kernel-AIO context with zero timeouts (in user space,
 * where the library reaps so) and the main thread keeps polls of a ready
 * eventfd flowing. Each completion must be delivered once: prints
 * "submitted N delivered M" and exits 1 unless N == M. (An engine query
 * that entered the kernel's reaping would move the ring's head behind the
 * user-space reapers and hand some completions out twice.)
 */
#define _GNU_SOURCE
#include <libaio.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>

#define RING 256
#define INFLIGHT 128

static io_context_t ctx;
static atomic_long delivered, asked;
static atomic_int done;

static void *ask(void *arg)
{
	(void)arg;
	while (!atomic_load(&done)) {
		if (!io_context_engine(ctx))
			abort();
		atomic_fetch_add(&asked, 1);
	}
	return NULL;
}

static void *reap(void *arg)
{
	struct io_event ev[8];
	struct timespec zero = { 0, 0 };
	(void)arg;
	while (!atomic_load(&done)) {
		int n = io_getevents(ctx, 0, 8, ev, &zero);
		if (n > 0)
			atomic_fetch_add(&delivered, n);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int secs = argc > 1 ? atoi(argv[1]) : 3;
	int efd = eventfd(1, EFD_NONBLOCK);
	static struct iocb cbs[INFLIGHT * 2];
	long submitted = 0;
	pthread_t asker, reapers[2];
	if (efd < 0 || io_setup(RING, &ctx) != 0)
		return 2;
	pthread_create(&asker, NULL, ask, NULL);
	for (int i = 0; i < 2; i++)
		pthread_create(&reapers[i], NULL, reap, NULL);
	time_t end = time(NULL) + secs;
	while (time(NULL) < end) {
		struct iocb *batch[16];
		if (submitted - atomic_load(&delivered) > INFLIGHT - 16) {
			sched_yield();
			continue;
		}
		for (int i = 0; i < 16; i++) {
			batch[i] = &cbs[(submitted + i) % (INFLIGHT * 2)];
			io_prep_poll(batch[i], efd, POLLIN);
		}
		int r = io_submit(ctx, 16, batch);
		if (r > 0)
			submitted += r;
	}
	/* Let the reapers take what is left, then stop them. */
	for (int i = 0; i < 200 && atomic_load(&delivered) < submitted; i++) {
		struct timespec ms = { 0, 5000000 };
		nanosleep(&ms, NULL);
	}
	atomic_store(&done, 1);
	pthread_join(asker, NULL);
	for (int i = 0; i < 2; i++)
		pthread_join(reapers[i], NULL);
	printf("submitted %ld delivered %ld (engine asked %ld times)\n", submitted, (long)atomic_load(&delivered),
	       (long)atomic_load(&asked));
	io_destroy(ctx);
	return atomic_load(&delivered) == submitted ? 0 : 1;
}
