/*
 * A full ring: io_submit stops short when the context has no room (a short
 * count, then -EAGAIN), room comes back as events are reaped, and the head
 * and tail wrap around the ring many times with every event seen exactly
 * once; a burst of poll completions fills the ring to the brim at once.
 * The thread is pinned to one CPU: the kernel hands out request slots per
 * CPU, and pinning makes the counts the same on every run.
 */
#include "common.h"
#include <poll.h>

#define MANY 512
static io_context_t ctx;
static struct iocb cb[MANY];
static struct iocb *cbs[MANY];
static int seen[MANY];
static char buf[64];

static void prep_reads(int fd, int n)
{
	for (int i = 0; i < n; i++) {
		io_prep_pread(&cb[i], fd, buf, sizeof(buf), 0);
		cb[i].data = (void *)(uintptr_t)i;
		cbs[i] = &cb[i];
	}
}

/* Reaps `n` events in chunks of `chunk`, checking each request once. */
static void reap_all(int n, int chunk)
{
	struct io_event ev[32];
	struct timespec zero = { 0, 0 }, t = ms_timeout(1000);
	memset(seen, 0, sizeof(seen));
	int got = 0, round = 0;
	long long deadline = now_ms() + 20000;
	while (got < n) {
		int want = n - got < chunk ? n - got : chunk;
		int r = io_getevents(ctx, 1, want, ev, (round++ % 2) ? &zero : &t);
		CHECK(r >= 0 && r <= want);
		for (int i = 0; i < r; i++) {
			uintptr_t k = (uintptr_t)ev[i].data;
			CHECK(k < MANY && ev[i].obj == &cb[k] && seen[k] == 0);
			seen[k] = 1;
		}
		got += r;
		CHECK(now_ms() < deadline);
	}
}

int main(void)
{
	pin_to_one_cpu();
	CHECK(io_setup(4, &ctx) == 0);
	const struct ctest_aio_ring *ring = (const struct ctest_aio_ring *)ctx;
	int fd = scratch_fd(O_RDWR);
	fill_file(fd, 'f', 4096, 0);
	struct io_event ev[4];
	struct timespec zero = { 0, 0 };

	prep_reads(fd, MANY);
	int first = io_submit(ctx, MANY, cbs);
	SAY("io_submit(%d reads) on a context set up for 4 = %s\n", MANY, errname(first));
	CHECK(first > 0 && first < MANY && (unsigned)first < ring->nr);
	CALL("io_submit(1 more)", io_submit(ctx, 1, cbs + first));
	SAY("ring holds %u, head != tail: %d\n", (ring->tail + ring->nr - ring->head) % ring->nr,
	    ring->head != ring->tail);

	/* Room returns as events are reaped. */
	CALL("io_getevents(4 of them)", io_getevents(ctx, 4, 4, ev, &zero));
	int more = io_submit(ctx, MANY - first, cbs + first);
	SAY("io_submit after reaping 4 = %s\n", errname(more));
	CHECK(more >= 0);
	reap_all(first - 4 + more, 7);
	/* The first four were reaped above; the rest once each. */
	SAY("every remaining event seen once\n");

	/* Many fill-and-drain rounds: head and tail wrap around the ring. */
	int counts[3] = { 0, 0, 0 };
	unsigned wraps = 0, last_head = ring->head;
	for (int round = 0; round < 30; round++) {
		prep_reads(fd, MANY);
		int r = io_submit(ctx, MANY, cbs);
		CHECK(r > 0);
		if (round < 3)
			counts[round] = r;
		CHECK(io_submit(ctx, 1, cbs + r) == -EAGAIN);
		reap_all(r, 3 + round % 5);
		for (int k = 0; k < r; k++)
			CHECK(seen[k] == 1);
		if (ring->head < last_head)
			wraps++;
		last_head = ring->head;
	}
	SAY("30 rounds of fill (%d, %d, %d, ...), -EAGAIN, drain: every event once; ring wrapped: %s\n",
	    counts[0], counts[1], counts[2], wraps >= 10 ? "yes" : "no");

	/* Polls up to the limit, then one write completes them all at once. */
	int p[2];
	CHECK(pipe(p) == 0);
	int polls = 0;
	for (int i = 0; i < MANY; i++) {
		io_prep_poll(&cb[i], p[0], POLLIN);
		cb[i].data = (void *)(uintptr_t)i;
		int r = io_submit(ctx, 1, &cbs[i]);
		if (r != 1) {
			SAY("poll #%d: io_submit = %s\n", i, errname(r));
			break;
		}
		polls++;
	}
	CHECK(polls == first);
	CALL("io_getevents(polls pending, {0,0})", io_getevents(ctx, 1, 4, ev, &zero));
	CHECK(write(p[1], "x", 1) == 1);
	reap_all(polls, 32);
	SAY("%s polls completed by one write, each reaped once\n", polls == first ? "all" : "not all");
	CALL("io_getevents(drained, {0,0})", io_getevents(ctx, 1, 4, ev, &zero));
	CALL("io_destroy", io_destroy(ctx));
	return 0;
}
