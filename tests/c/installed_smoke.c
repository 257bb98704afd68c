/*
 * installed_smoke: a program built against an installed libaio-dev (header,
 * libaio.so link or libaio.a, pkg-config), for tests/sh/z_deb_install.sh.
 *
 * Usage: installed_smoke FILE_IN_AN_O_DIRECT_CAPABLE_DIRECTORY
 *
 * Writes 8 blocks with O_DIRECT, reads them back with a vector read and
 * compares; syncs through io_fsync + io_set_eventfd + io_queue_run; cancels a
 * poll (-EINPROGRESS, then a completion with res 0). Checks errno is never
 * changed. Prints on stdout which libaio answered: "libaio: ours" when the
 * library that provides io_submit also has this project's LIBAIO_RS_1 symbols
 * (found with dlvsym), "libaio: other" otherwise; then "libaio path: PATH"
 * and finally "ok". Exit status 0 when every step worked.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>
#include <libaio.h>

#define BLK 4096
#define NBLK 8

static int fsync_calls;
static long fsync_res = 1;

#define CHECK(cond)                                                                \
	do {                                                                       \
		if (!(cond)) {                                                     \
			fprintf(stderr, "installed_smoke: line %d: %s\n", __LINE__, #cond); \
			exit(1);                                                   \
		}                                                                  \
	} while (0)

/* Calls a libaio function with errno set to a sentinel; checks it is kept. */
#define KEEP_ERRNO(expr)                                                           \
	({                                                                         \
		errno = 4242;                                                      \
		long r_ = (long)(expr);                                            \
		CHECK(errno == 4242);                                              \
		r_;                                                                \
	})

static void on_fsync(io_context_t ctx, struct iocb *iocb, long res, long res2)
{
	(void)ctx;
	(void)iocb;
	(void)res2;
	fsync_calls++;
	fsync_res = res;
}

int main(int argc, char **argv)
{
	CHECK(argc == 2);

	Dl_info info;
	CHECK(dladdr((void *)io_submit, &info) != 0 && info.dli_fname != NULL);
	int ours = dlvsym(RTLD_DEFAULT, "io_prep_pread", "LIBAIO_RS_1") != NULL;
	printf("libaio: %s\nlibaio path: %s\n", ours ? "ours" : "other", info.dli_fname);

	int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC | O_DIRECT, 0600);
	CHECK(fd >= 0);
	unsigned char *wbuf, *rbuf;
	CHECK(posix_memalign((void **)&wbuf, BLK, BLK * NBLK) == 0);
	CHECK(posix_memalign((void **)&rbuf, BLK, BLK * NBLK) == 0);
	for (int i = 0; i < BLK * NBLK; i++)
		wbuf[i] = (unsigned char)(i * 7 + i / BLK);
	memset(rbuf, 0, BLK * NBLK);

	io_context_t ctx = 0;
	CHECK(KEEP_ERRNO(io_queue_init(32, &ctx)) == 0);
	CHECK(*(unsigned *)((char *)ctx + 16) == 0xa10a10a1); /* the ring's magic */

	/* Eight O_DIRECT writes in one submission. */
	struct iocb w[NBLK], *wp[NBLK];
	for (int i = 0; i < NBLK; i++) {
		io_prep_pwrite(&w[i], fd, wbuf + i * BLK, BLK, (long long)i * BLK);
		w[i].data = (void *)(intptr_t)(i + 1);
		wp[i] = &w[i];
	}
	CHECK(KEEP_ERRNO(io_submit(ctx, NBLK, wp)) == NBLK);
	struct io_event ev[NBLK];
	int got = 0;
	while (got < NBLK) {
		int n = (int)KEEP_ERRNO(io_getevents(ctx, 1, NBLK - got, ev + got, NULL));
		CHECK(n > 0);
		got += n;
	}
	for (int i = 0; i < NBLK; i++)
		CHECK((long)ev[i].res == BLK && ev[i].res2 == 0);

	/* One vector read of the whole file. */
	struct iovec iov[2] = { { rbuf, BLK * 3 }, { rbuf + BLK * 3, BLK * 5 } };
	struct iocb r, *rp[1] = { &r };
	io_prep_preadv(&r, fd, iov, 2, 0);
	CHECK(KEEP_ERRNO(io_submit(ctx, 1, rp)) == 1);
	CHECK(KEEP_ERRNO(io_getevents(ctx, 1, 1, ev, NULL)) == 1);
	CHECK(ev[0].obj == &r && (long)ev[0].res == BLK * NBLK);
	CHECK(memcmp(wbuf, rbuf, BLK * NBLK) == 0);

	/* fsync with a callback, waited for on an eventfd, run by io_queue_run. */
	int efd = eventfd(0, 0);
	CHECK(efd >= 0);
	struct iocb s, *sp[1] = { &s };
	io_prep_fsync(&s, fd);
	io_set_callback(&s, on_fsync);
	io_set_eventfd(&s, efd);
	CHECK(KEEP_ERRNO(io_submit(ctx, 1, sp)) == 1);
	uint64_t count = 0;
	CHECK(read(efd, &count, sizeof(count)) == sizeof(count) && count == 1);
	CHECK(KEEP_ERRNO(io_queue_run(ctx)) == 0);
	CHECK(fsync_calls == 1 && fsync_res == 0);

	/* A poll can be cancelled: -EINPROGRESS, then a completion with res 0. */
	int p[2];
	CHECK(pipe(p) == 0);
	struct iocb pl, *pp[1] = { &pl };
	io_prep_poll(&pl, p[0], POLLIN);
	CHECK(KEEP_ERRNO(io_submit(ctx, 1, pp)) == 1);
	CHECK(KEEP_ERRNO(io_cancel(ctx, &pl, ev)) == -EINPROGRESS);
	CHECK(KEEP_ERRNO(io_getevents(ctx, 1, 1, ev, NULL)) == 1);
	CHECK(ev[0].obj == &pl && ev[0].res == 0);

	/* Errors come back as -errno. */
	CHECK(KEEP_ERRNO(io_queue_init(0, &ctx)) == -EINVAL);
	CHECK(KEEP_ERRNO(io_queue_release(ctx)) == 0);
	CHECK(KEEP_ERRNO(io_destroy(ctx)) == -EINVAL);

	close(fd);
	unlink(argv[1]);
	printf("ok\n");
	return 0;
}
