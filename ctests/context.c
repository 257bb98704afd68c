/*
 * What an io_context_t is: the address of the kernel's completion ring (an
 * "[aio]" mapping whose header has magic 0xa10a10a1), gone after io_destroy.
 * A context made by the raw io_setup system call works with the library; so
 * do many contexts at once.
 */
#include "common.h"

/* The name of the mapping that starts at `addr`, from /proc/self/maps. */
static const char *mapping_at(const void *addr)
{
	static char name[256];
	FILE *f = fopen("/proc/self/maps", "r");
	CHECK(f != NULL);
	char line[512];
	strcpy(name, "(none)");
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		int off = 0;
		if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &lo, &hi, &off) < 2)
			continue;
		if (lo == (unsigned long)addr) {
			snprintf(name, sizeof(name), "%s", off ? line + off : "");
			name[strcspn(name, "\n")] = 0;
			break;
		}
	}
	fclose(f);
	return name;
}

static void ring_header(void)
{
	io_context_t ctx = 0;
	CALL("io_setup(4)", io_setup(4, &ctx));
	const struct ctest_aio_ring *r = (const struct ctest_aio_ring *)ctx;
	SAY("ring at ctx: magic 0x%x, header_length %u, compat_features %u, incompat_features %u\n", r->magic,
	    r->header_length, r->compat_features, r->incompat_features);
	SAY("  nr %u (at least 4: %d), head %u, tail %u, id %u\n", r->nr, r->nr >= 4, r->head, r->tail, r->id);
	SAY("  mapping at ctx: %s\n", mapping_at(ctx));
	SAY("  page aligned: %d\n", ((uintptr_t)ctx & 4095) == 0);

	int fd = scratch_fd(O_RDWR);
	fill_file(fd, 'c', 4096, 0);
	static char buf[64];
	struct iocb cb, *cbs[1] = { &cb };
	io_prep_pread(&cb, fd, buf, sizeof(buf), 0);
	cb.data = (void *)0xabcdef;
	CHECK(io_submit(ctx, 1, cbs) == 1);
	wait_ring_ready(ctx, 1);
	/* The event as the kernel wrote it into the ring. */
	const struct io_event *slot = (const struct io_event *)(r + 1) + r->head;
	SAY("  after one read: tail - head = %u; in the ring: data-ok %d obj-ok %d res %s\n",
	    (r->tail + r->nr - r->head) % r->nr, slot->data == (void *)0xabcdef, slot->obj == &cb,
	    resname(slot->res));
	struct io_event ev;
	struct timespec zero = { 0, 0 };
	CALL("  io_getevents({0,0})", io_getevents(ctx, 1, 1, &ev, &zero));
	SAY("  head == tail afterwards: %d\n", r->head == r->tail);
	close(fd);

	CALL("io_destroy", io_destroy(ctx));
	SAY("  mapping at ctx after io_destroy: %s\n", mapping_at(ctx));
}

static void raw_syscall_context(void)
{
	io_context_t ctx = 0;
	CHECK(syscall(SYS_io_setup, 4, &ctx) == 0);
	int fd = scratch_fd(O_RDWR);
	fill_file(fd, 'r', 4096, 0);
	static char buf[64];
	struct iocb cb, *cbs[1] = { &cb };
	struct io_event ev;
	struct timespec zero = { 0, 0 }, t = ms_timeout(20);
	CALL("raw io_setup context: io_getevents(empty, {0,0})", io_getevents(ctx, 1, 1, &ev, &zero));
	CALL("  io_getevents(empty, 20 ms)", io_getevents(ctx, 1, 1, &ev, &t));
	io_prep_pread(&cb, fd, buf, sizeof(buf), 0);
	CALL("  io_submit", io_submit(ctx, 1, cbs));
	CALL("  io_getevents(NULL)", io_getevents(ctx, 1, 1, &ev, NULL));
	SAY("  res=%s\n", resname(ev.res));
	CHECK(io_submit(ctx, 1, cbs) == 1);
	wait_ring_ready(ctx, 1);
	CALL("  io_pgetevents({0,0})", io_pgetevents(ctx, 1, 1, &ev, &zero, NULL));
	CALL("  io_queue_run", io_queue_run(ctx));
	CALL("  io_destroy", io_destroy(ctx));
	close(fd);
}

#define N 100
#define DESTROYERS 10
static io_context_t ctxs[N];
static atomic_int destroyed;

static void *destroy_some(void *arg)
{
	for (int i = (int)(intptr_t)arg; i < N; i += DESTROYERS)
		if (io_destroy(ctxs[i]) == 0)
			atomic_fetch_add(&destroyed, 1);
	return NULL;
}

static void many_contexts(void)
{
	int fd = scratch_fd(O_RDWR);
	fill_file(fd, 'm', 4096, 0);
	static char buf[N][64];
	static struct iocb cb[N];
	struct io_event ev;
	struct timespec zero = { 0, 0 };
	int ok = 0;
	for (int i = 0; i < N; i++)
		CHECK(io_setup(2, &ctxs[i]) == 0);
	for (int i = 0; i < N; i++) {
		struct iocb *one = &cb[i];
		io_prep_pread(&cb[i], fd, buf[i], 64, 0);
		cb[i].data = (void *)(uintptr_t)i;
		CHECK(io_submit(ctxs[i], 1, &one) == 1);
	}
	for (int i = N - 1; i >= 0; i--) {
		wait_ring_ready(ctxs[i], 1);
		int r = (i % 2) ? io_getevents(ctxs[i], 1, 1, &ev, &zero) : io_getevents(ctxs[i], 1, 1, &ev, NULL);
		ok += r == 1 && ev.obj == &cb[i] && ev.data == (void *)(uintptr_t)i && (long)ev.res == 64;
		CHECK(io_getevents(ctxs[i], 1, 1, &ev, &zero) == 0);
	}
	SAY("%d contexts at once: %d delivered their one event to the right context\n", N, ok);
	/* io_destroy waits for an RCU grace period: destroy from several
	 * threads at once to keep the run short. */
	pthread_t t[DESTROYERS];
	for (int i = 0; i < DESTROYERS; i++)
		CHECK(pthread_create(&t[i], NULL, destroy_some, (void *)(intptr_t)i) == 0);
	for (int i = 0; i < DESTROYERS; i++)
		CHECK(pthread_join(t[i], NULL) == 0);
	SAY("  %d destroyed\n", atomic_load(&destroyed));
	close(fd);
}

int main(void)
{
	ring_header();
	raw_syscall_context();
	many_contexts();
	return 0;
}
