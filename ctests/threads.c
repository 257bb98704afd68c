/*
 * Several threads submitting to and reaping from one context at once, with
 * ways of reaping mixed ({0,0}, short timeouts, min_nr 0, 1 and 2,
 * io_pgetevents with and without a mask; then io_queue_run in every thread):
 * every completion is delivered exactly once
 * (each request carries a tag, and each tag is counted). Then polls completed
 * by one thread while others wait for them. Then O_DIRECT reads paced one
 * at a time, from one thread and then from several: the threads a
 * user-space engine adds for them stay few (kernel AIO adds none).
 */
#include "common.h"
#include <poll.h>

#define THREADS 4
#define PER_THREAD 2500
#define TOTAL (THREADS * PER_THREAD)

static io_context_t ctx;
static int fd;
static struct iocb cbs[TOTAL];
static atomic_int delivered[TOTAL];
static atomic_int reaped_total, submitted_total, eagains;
static char buf[THREADS][64];
/* The ways of reaping that reap_some cycles through in a round. */
static const int *mix;
static int nmix, pgetevents;

static void count(struct io_event *ev)
{
	uintptr_t tag = (uintptr_t)ev->data;
	CHECK(tag < TOTAL && ev->obj == &cbs[tag] && (long)ev->res == 64);
	atomic_fetch_add(&delivered[tag], 1);
	atomic_fetch_add(&reaped_total, 1);
}

static void on_complete(io_context_t c, struct iocb *cb, long res, long res2)
{
	CHECK(c == ctx && res == 64 && res2 == 0);
	uintptr_t tag = (uintptr_t)(cb - cbs);
	CHECK(tag < TOTAL);
	atomic_fetch_add(&delivered[tag], 1);
	atomic_fetch_add(&reaped_total, 1);
}

/* One reap, in the way chosen by `how`; returns how many events it took. */
static int reap_some(int how)
{
	struct io_event ev[16];
	struct timespec zero = { 0, 0 }, t = ms_timeout(5);
	sigset_t none;
	sigemptyset(&none);
	int r;
	int way = mix[how % nmix];
	if ((way == 2 || way == 3) && !pgetevents)
		way = 1;
	switch (way) {
	case 0:
		r = io_getevents(ctx, 0, 16, ev, &zero);
		break;
	case 1:
		r = io_getevents(ctx, 1, 16, ev, &t);
		break;
	case 2:
		r = io_pgetevents(ctx, 1, 7, ev, &zero, NULL);
		break;
	case 3:
		r = io_pgetevents(ctx, 1, 16, ev, &t, &none);
		break;
	default:
		r = io_getevents(ctx, 2, 3, ev, &t);
		break;
	}
	CHECK(r >= 0);
	for (int i = 0; i < r; i++)
		count(&ev[i]);
	return r;
}

static void *worker(void *arg)
{
	int me = (int)(intptr_t)arg;
	int next = me * PER_THREAD, end = next + PER_THREAD, how = me;
	long long deadline = now_ms() + 60000;
	while (next < end) {
		int n = end - next < 8 ? end - next : 8;
		struct iocb *list[8];
		for (int i = 0; i < n; i++) {
			io_prep_pread(&cbs[next + i], fd, buf[me], 64, 0);
			cbs[next + i].data = (void *)(uintptr_t)(next + i);
			list[i] = &cbs[next + i];
		}
		int r = io_submit(ctx, n, list);
		CHECK(r > 0 || r == -EAGAIN);
		if (r > 0) {
			next += r;
			atomic_fetch_add(&submitted_total, r);
		} else {
			atomic_fetch_add(&eagains, 1);
		}
		reap_some(how++);
		CHECK(now_ms() < deadline);
	}
	while (atomic_load(&reaped_total) < TOTAL) {
		reap_some(how++);
		CHECK(now_ms() < deadline);
	}
	return NULL;
}

static void many_threads_one_context(const char *label, const int *ways, int n)
{
	mix = ways;
	nmix = n;
	atomic_store(&reaped_total, 0);
	atomic_store(&submitted_total, 0);
	for (int i = 0; i < TOTAL; i++)
		atomic_store(&delivered[i], 0);
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++)
		CHECK(pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i) == 0);
	for (int i = 0; i < THREADS; i++)
		CHECK(pthread_join(t[i], NULL) == 0);
	int once = 0, other = 0;
	for (int i = 0; i < TOTAL; i++) {
		if (atomic_load(&delivered[i]) == 1)
			once++;
		else
			other++;
	}
	SAY("%d threads reaping with %s: %d submitted, %d reaped; delivered exactly once: %d, otherwise: %d\n",
	    THREADS, label, atomic_load(&submitted_total), atomic_load(&reaped_total), once, other);
	struct io_event ev;
	struct timespec zero = { 0, 0 };
	CALL("io_getevents(after all, {0,0})", io_getevents(ctx, 1, 1, &ev, &zero));
}

/* io_queue_run from several threads at once. */
static void *queue_runner(void *arg)
{
	(void)arg;
	long long deadline = now_ms() + 60000;
	while (atomic_load(&reaped_total) < TOTAL) {
		CHECK(io_queue_run(ctx) == 0);
		CHECK(now_ms() < deadline);
		sched_yield();
	}
	return NULL;
}

static void queue_runs(void)
{
	atomic_store(&reaped_total, 0);
	for (int i = 0; i < TOTAL; i++)
		atomic_store(&delivered[i], 0);
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++)
		CHECK(pthread_create(&t[i], NULL, queue_runner, NULL) == 0);
	int next = 0;
	long long deadline = now_ms() + 60000;
	while (next < TOTAL) {
		int n = TOTAL - next < 8 ? TOTAL - next : 8;
		struct iocb *list[8];
		for (int i = 0; i < n; i++) {
			io_prep_pread(&cbs[next + i], fd, buf[0], 64, 0);
			io_set_callback(&cbs[next + i], on_complete);
			list[i] = &cbs[next + i];
		}
		int r = io_submit(ctx, n, list);
		CHECK(r > 0 || r == -EAGAIN);
		if (r > 0)
			next += r;
		else
			sched_yield();
		CHECK(now_ms() < deadline);
	}
	for (int i = 0; i < THREADS; i++)
		CHECK(pthread_join(t[i], NULL) == 0);
	int once = 0;
	for (int i = 0; i < TOTAL; i++)
		once += atomic_load(&delivered[i]) == 1;
	SAY("io_queue_run in %d threads: %d callbacks, each request once: %s\n", THREADS,
	    atomic_load(&reaped_total), once == TOTAL ? "yes" : "no");
}

/* Waiters blocked in the kernel while another thread completes polls. */
struct poll_waiter {
	int got;
	pthread_t thread;
};

static atomic_int polls_reaped;

static void *poll_reaper(void *arg)
{
	struct poll_waiter *w = arg;
	struct io_event ev[4];
	long long deadline = now_ms() + 60000;
	while (atomic_load(&polls_reaped) < 64) {
		struct timespec t = ms_timeout(20);
		int r = io_getevents(ctx, 1, 4, ev, &t);
		CHECK(r >= 0);
		for (int i = 0; i < r; i++)
			CHECK((long)ev[i].res > 0);
		w->got += r;
		atomic_fetch_add(&polls_reaped, r);
		CHECK(now_ms() < deadline);
	}
	return NULL;
}

static void polls_across_threads(void)
{
	int p[64][2];
	struct poll_waiter w[THREADS];
	for (int i = 0; i < 64; i++) {
		CHECK(pipe(p[i]) == 0);
		io_prep_poll(&cbs[i], p[i][0], POLLIN);
		struct iocb *one = &cbs[i];
		CHECK(io_submit(ctx, 1, &one) == 1);
	}
	for (int i = 0; i < THREADS; i++) {
		w[i].got = 0;
		CHECK(pthread_create(&w[i].thread, NULL, poll_reaper, &w[i]) == 0);
	}
	for (int i = 0; i < 64; i++) {
		CHECK(write(p[i][1], "x", 1) == 1);
		if (i % 8 == 0)
			sleep_ms(1);
	}
	int sum = 0;
	for (int i = 0; i < THREADS; i++) {
		CHECK(pthread_join(w[i].thread, NULL) == 0);
		sum += w[i].got;
	}
	SAY("64 polls completed while %d threads wait: %d reaped\n", THREADS, sum);
	for (int i = 0; i < 64; i++) {
		close(p[i][0]);
		close(p[i][1]);
	}
}

/* Threads in this process now (/proc/self/status). */
static int thread_count(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	CHECK(f != NULL);
	char line[256];
	int n = -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Threads: %d", &n) == 1)
			break;
	fclose(f);
	CHECK(n > 0);
	return n;
}

#define PACED 150
static int direct_fd;
static atomic_int paced_ok, paced_done;

static void *paced_reader(void *arg)
{
	io_context_t c = 0;
	CHECK(io_setup(4, &c) == 0);
	void *b;
	CHECK(posix_memalign(&b, 4096, 4096) == 0);
	for (long i = 0; i < PACED; i++) {
		struct iocb cb, *one = &cb;
		io_prep_pread(&cb, direct_fd, b, 4096, ((i + (long)arg) % 16) * 4096);
		CHECK(io_submit(c, 1, &one) == 1);
		struct io_event ev;
		reap_exactly(c, &ev, 1);
		if (ev.res == 4096 && ((char *)b)[0] == 'd')
			atomic_fetch_add(&paced_ok, 1);
		sleep_ms(1);
	}
	free(b);
	CHECK(io_destroy(c) == 0);
	atomic_fetch_add(&paced_done, 1);
	return NULL;
}

static void paced_direct_reads(void)
{
	direct_fd = direct_data_fd('d', 16 * 4096);
	for (int readers = 1; readers <= 3; readers += 2) {
		int before = thread_count(), most = 0;
		pthread_t t[3];
		atomic_store(&paced_ok, 0);
		atomic_store(&paced_done, 0);
		for (long i = 0; i < readers; i++)
			CHECK(pthread_create(&t[i], NULL, paced_reader, (void *)i) == 0);
		while (atomic_load(&paced_done) < readers) {
			int now = thread_count() - before - readers;
			most = now > most ? now : most;
			sleep_ms(2);
		}
		for (int i = 0; i < readers; i++)
			CHECK(pthread_join(t[i], NULL) == 0);
		SAY("%d thread(s) each doing %d O_DIRECT reads one at a time: %d read right; "
		    "threads added meanwhile at most 12: %s\n",
		    readers, PACED, atomic_load(&paced_ok), most <= 12 ? "yes" : "no");
	}
	close(direct_fd);
}

int main(void)
{
	pgetevents = have_pgetevents();
	CHECK(io_setup(64, &ctx) == 0);
	fd = scratch_fd(O_RDWR);
	fill_file(fd, 'm', 4096, 0);
	static const int all[] = { 0, 1, 2, 3, 4 }, zero_and_masked[] = { 0, 3 }, zero_and_waiting[] = { 2, 1, 4 };
	many_threads_one_context("every way", all, 5);
	many_threads_one_context("{0,0} and io_pgetevents with a mask", zero_and_masked, 2);
	many_threads_one_context("{0,0} and waiting", zero_and_waiting, 3);
	queue_runs();
	polls_across_threads();
	paced_direct_reads();
	CALL("io_destroy", io_destroy(ctx));
	return 0;
}
