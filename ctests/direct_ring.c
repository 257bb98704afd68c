/*
 * direct_ring: completions read straight from the ring, never through
 * io_getevents, as QEMU's aio=native and fio's userspace_reap do. Every
 * request signals one eventfd (IOCB_FLAG_RESFD); a reaper thread blocks in
 * read(2) on it, then reads head, tail and the events at the io_context_t
 * address, and moves head itself. Two submitter threads send tagged
 * requests: polls on an always-ready eventfd (complete inside io_submit),
 * buffered reads (likewise), and O_DIRECT reads where the file system takes
 * them (complete later, elsewhere). An event woken for must be in the ring
 * when the eventfd says so, and every tag must come exactly once.
 * Only totals are printed, so every library and engine prints the same.
 */
#include "common.h"
#include <poll.h>
#include <sys/eventfd.h>

#define TAGS 30000
#define CAP 96 /* requests in flight, at most (the context holds 128) */
#define LEN 4096
#define NBUF 1024 /* buffers, reused round-robin: far more than CAP */

struct ring_view {
	struct ctest_aio_ring h;
	struct io_event ev[];
};

static io_context_t ctx;
static int notify_fd, ready_fd, buffered_fd, direct_fd = -1;
static long tags = TAGS;
static struct iocb *cbs;
static unsigned char *bufs;
static _Atomic unsigned char *seen;
static atomic_long next_tag, delivered, bad;

static unsigned char pattern(long tag)
{
	return (unsigned char)(tag % 251);
}

static void *reaper(void *arg)
{
	(void)arg;
	struct ring_view *ring = (struct ring_view *)ctx;
	CHECK(ring->h.magic == CTEST_AIO_RING_MAGIC);
	while (atomic_load(&delivered) < tags) {
		uint64_t v;
		CHECK(read(notify_fd, &v, sizeof(v)) == sizeof(v));
		/* The eventfd is signalled after the tail moved: at least one event
		 * is there for each count, unless an earlier pass took it. */
		for (;;) {
			unsigned head = __atomic_load_n(&ring->h.head, __ATOMIC_RELAXED);
			unsigned tail = __atomic_load_n(&ring->h.tail, __ATOMIC_ACQUIRE);
			if (head == tail)
				break;
			struct io_event *e = &ring->ev[head];
			long tag = (long)(uintptr_t)e->data;
			if (tag < 0 || tag >= tags || e->obj != &cbs[tag]) {
				atomic_fetch_add(&bad, 1);
			} else {
				int op = cbs[tag].aio_lio_opcode;
				long want = op == IO_CMD_POLL ? POLLIN : LEN;
				if ((long)e->res != want || e->res2 != 0 ||
				    (op == IO_CMD_PREAD && bufs[(size_t)(tag % NBUF) * LEN + 7] != pattern(tag % 4)))
					atomic_fetch_add(&bad, 1);
				atomic_fetch_add(&seen[tag], 1);
			}
			__atomic_store_n(&ring->h.head, (head + 1) % ring->h.nr, __ATOMIC_RELEASE);
			atomic_fetch_add(&delivered, 1);
		}
	}
	return NULL;
}

static void *submitter(void *arg)
{
	(void)arg;
	for (;;) {
		long tag = atomic_fetch_add(&next_tag, 1);
		if (tag >= tags)
			return NULL;
		while (tag - atomic_load(&delivered) >= CAP)
			sched_yield();
		struct iocb *cb = &cbs[tag];
		switch (tag % 3) {
		case 0:
			io_prep_poll(cb, ready_fd, POLLIN);
			break;
		case 1:
			io_prep_pread(cb, buffered_fd, bufs + (size_t)(tag % NBUF) * LEN, LEN, (tag % 4) * LEN);
			break;
		default:
			io_prep_pread(cb, direct_fd >= 0 ? direct_fd : buffered_fd, bufs + (size_t)(tag % NBUF) * LEN, LEN,
				      (tag % 4) * LEN);
			break;
		}
		io_set_eventfd(cb, notify_fd);
		cb->data = (void *)(uintptr_t)tag;
		int r;
		while ((r = io_submit(ctx, 1, &cb)) == -EAGAIN)
			sched_yield();
		CHECK(r == 1);
	}
}

int main(void)
{
	if (under_valgrind()) {
		/* Valgrind takes a kernel ring for the size asked of io_setup, not
		 * the kernel's larger one, and reports reads past it. */
		fprintf(stderr, "direct_ring: not run under valgrind\n");
		return 0;
	}
	CHECK(io_setup(128, &ctx) == 0);
	notify_fd = eventfd(0, EFD_CLOEXEC);
	ready_fd = eventfd(1, EFD_CLOEXEC);
	CHECK(notify_fd >= 0 && ready_fd >= 0);
	buffered_fd = scratch_fd(O_RDWR);
	for (int i = 0; i < 4; i++)
		fill_file(buffered_fd, (char)pattern(i), LEN, (off_t)i * LEN);
	CHECK(fsync(buffered_fd) == 0);
	/* The same data through O_DIRECT where the file system allows it. */
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", buffered_fd);
	direct_fd = open(path, O_RDONLY | O_DIRECT);
	CHECK(posix_memalign((void **)&bufs, 4096, (size_t)NBUF * LEN) == 0);
	cbs = calloc((size_t)tags, sizeof(*cbs));
	seen = calloc((size_t)tags, 1);
	CHECK(cbs && seen);

	pthread_t r, s[2];
	CHECK(pthread_create(&r, NULL, reaper, NULL) == 0);
	for (int i = 0; i < 2; i++)
		CHECK(pthread_create(&s[i], NULL, submitter, NULL) == 0);
	for (int i = 0; i < 2; i++)
		CHECK(pthread_join(s[i], NULL) == 0);
	CHECK(pthread_join(r, NULL) == 0);

	long dups = 0, lost = 0;
	for (long t = 0; t < tags; t++) {
		dups += seen[t] > 1 ? seen[t] - 1 : 0;
		lost += seen[t] == 0;
	}
	SAY("direct ring reader: delivered all=%d duplicates=%ld lost=%ld bad_results=%ld\n",
	    atomic_load(&delivered) == tags, dups, lost, atomic_load(&bad));
	/* Nothing is left for io_getevents. */
	struct io_event ev;
	struct timespec zero = { 0, 0 };
	CALL("io_getevents after the ring was read directly", io_getevents(ctx, 0, 1, &ev, &zero));
	CALL("io_destroy", io_destroy(ctx));
	return 0;
}
