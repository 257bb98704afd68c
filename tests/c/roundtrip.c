/*
 * Real I/O through libaio, for the shell tests (tests/sh/install_tree.sh,
 * tests/sh/three_ways.sh). Builds against either libaio.h, Debian's or ours.
 *
 *   roundtrip FILE
 *
 * Writes a pattern to FILE with io_submit and reaps it with io_queue_run (the
 * callback set by io_set_callback), reads it back and reaps with io_getevents,
 * compares; with -DOLD_GETEVENTS also reads through the LIBAIO_0.1
 * io_getevents(ctx, nr, events, timeout), bound with .symver. Prints
 * "served-by: PATH" (the object that io_submit was found in) and
 * "roundtrip: ok"; any failure prints why and exits 1.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <libaio.h>

#define SIZE 8192

#define CHECK(cond)                                                              \
	do {                                                                     \
		if (!(cond)) {                                                   \
			fprintf(stderr, "roundtrip: %s:%d: %s\n", __FILE__, __LINE__, \
				#cond);                                          \
			exit(1);                                                 \
		}                                                                \
	} while (0)

#ifdef OLD_GETEVENTS
/* The libaio 0.1 signature, still exported as io_getevents@LIBAIO_0.1. */
int io_getevents_0_1(io_context_t ctx, long nr, struct io_event *events,
		     const struct timespec *timeout);
__asm__(".symver io_getevents_0_1, io_getevents@LIBAIO_0.1");
#endif

static struct iocb *write_cb_iocb;
static long write_cb_res = -1, write_cb_res2 = -1;
static int write_cb_calls;

static void write_done(io_context_t ctx, struct iocb *iocb, long res, long res2)
{
	(void)ctx;
	write_cb_iocb = iocb;
	write_cb_res = res;
	write_cb_res2 = res2;
	write_cb_calls++;
}

/* Reads LEN bytes at OFF into BUF through the default io_getevents. */
static void read_back(io_context_t ctx, int fd, char *buf, size_t len, long long off)
{
	struct iocb cb, *cbs[1] = {&cb};
	struct io_event ev;
	struct timespec ts = {5, 0};

	io_prep_pread(&cb, fd, buf, len, off);
	CHECK(io_submit(ctx, 1, cbs) == 1);
	CHECK(io_getevents(ctx, 1, 1, &ev, &ts) == 1);
	CHECK(ev.obj == &cb);
	CHECK((long)ev.res == (long)len);
	CHECK(ev.res2 == 0);
}

int main(int argc, char **argv)
{
	static char out[SIZE], in[SIZE];
	io_context_t ctx = 0;
	struct iocb cb, *cbs[1] = {&cb};
	struct io_event ev;
	struct timespec zero = {0, 0};
	Dl_info info;
	int fd, i, ret;

	CHECK(argc == 2);
	fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	for (i = 0; i < SIZE; i++)
		out[i] = (char)(i * 7 + 3);

	CHECK(io_queue_init(16, &ctx) == 0);
	CHECK(ctx != 0);
	/* Nothing in flight: a zero timeout returns 0 at once. */
	CHECK(io_getevents(ctx, 1, 1, &ev, &zero) == 0);

	/* Write, reaped by io_queue_run through the callback. */
	io_prep_pwrite(&cb, fd, out, SIZE, 0);
	io_set_callback(&cb, write_done);
	CHECK(io_submit(ctx, 1, cbs) == 1);
	for (i = 0; i < 5000 && write_cb_calls == 0; i++) {
		struct timespec ms = {0, 1000000};
		ret = io_queue_run(ctx);
		CHECK(ret >= 0);
		if (write_cb_calls == 0)
			nanosleep(&ms, NULL);
	}
	CHECK(write_cb_calls == 1);
	CHECK(write_cb_iocb == &cb);
	CHECK(write_cb_res == SIZE);
	CHECK(write_cb_res2 == 0);
	CHECK(io_queue_run(ctx) == 0);

	/* Read back and compare. */
	memset(in, 0, sizeof(in));
	read_back(ctx, fd, in, SIZE, 0);
	CHECK(memcmp(in, out, SIZE) == 0);

#ifdef OLD_GETEVENTS
	/* The old entry point waits for at least one event. */
	memset(in, 0, sizeof(in));
	io_prep_pread(&cb, fd, in, 512, 1024);
	CHECK(io_submit(ctx, 1, cbs) == 1);
	CHECK(io_getevents_0_1(ctx, 1, &ev, NULL) == 1);
	CHECK(ev.obj == &cb && ev.res == 512);
	CHECK(memcmp(in, out + 1024, 512) == 0);
	printf("old io_getevents@LIBAIO_0.1: ok\n");
#endif

	CHECK(io_queue_release(ctx) == 0);
	CHECK(close(fd) == 0);
	CHECK(dladdr((void *)io_submit, &info) != 0 && info.dli_fname != NULL);
	printf("served-by: %s\n", info.dli_fname);
	printf("roundtrip: ok\n");
	return 0;
}
