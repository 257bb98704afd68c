/*
 * Vector reads and writes: preadv and pwritev, and preadv2/pwritev2 with the
 * RWF_* flags (NOWAIT on cached data and on an empty or full pipe, APPEND,
 * DSYNC, SYNC, HIPRI, an unknown flag); bad vectors.
 */
#include "common.h"
#include <limits.h>
#include <sys/stat.h>
#include <sys/uio.h>

static io_context_t ctx;

static void one(const char *label, struct iocb *cb)
{
	submit_and_show(ctx, label, cb);
}

static long long size_of(int fd)
{
	struct stat st;
	CHECK(fstat(fd, &st) == 0);
	return (long long)st.st_size;
}

static void files(void)
{
	int fd = scratch_fd(O_RDWR);
	static char a[100], b[3000], c[1];
	memset(a, 'A', sizeof(a));
	memset(b, 'B', sizeof(b));
	c[0] = 'C';
	struct iovec out[3] = { { a, sizeof(a) }, { b, sizeof(b) }, { c, sizeof(c) } };
	struct iocb cb;

	io_prep_pwritev(&cb, fd, out, 3, 10);
	one("pwritev 3 segments at 10", &cb);
	SAY("  size %lld\n", size_of(fd));

	static char x[50], y[3051], z[10];
	struct iovec in[3] = { { x, sizeof(x) }, { y, sizeof(y) }, { z, sizeof(z) } };
	io_prep_preadv(&cb, fd, in, 3, 0);
	one("preadv 3 segments at 0", &cb);
	CHECK(x[9] == 0 && x[10] == 'A' && y[59] == 'A' && y[60] == 'B' && z[8] == 'B' && z[9] == 'C');
	SAY("  data matches\n");

	io_prep_preadv(&cb, fd, in, 0, 0);
	one("preadv 0 segments", &cb);
	if (!under_valgrind()) {
		io_prep_preadv(&cb, fd, in, -1, 0);
		one("preadv -1 segments", &cb);
		io_prep_preadv(&cb, fd, in, 1025, 0);
		one("preadv 1025 segments", &cb);
		io_prep_preadv(&cb, fd, NULL, 1, 0);
		one("preadv iov=NULL", &cb);
	}
	struct iovec nullbase[1] = { { NULL, 16 } };
	io_prep_preadv(&cb, fd, nullbase, 1, 0);
	one("preadv segment base NULL", &cb);
	struct iovec zerolen[2] = { { x, 0 }, { z, 4 } };
	io_prep_preadv(&cb, fd, zerolen, 2, 10);
	one("preadv with an empty segment", &cb);
	CHECK(memcmp(z, "AAAA", 4) == 0);

	/* Flags. */
	io_prep_preadv2(&cb, fd, in, 3, 0, RWF_NOWAIT);
	one("preadv2 RWF_NOWAIT, cached", &cb);
	io_prep_pwritev2(&cb, fd, out, 1, 0, RWF_DSYNC);
	one("pwritev2 RWF_DSYNC", &cb);
	io_prep_pwritev2(&cb, fd, out, 1, 0, RWF_SYNC);
	one("pwritev2 RWF_SYNC", &cb);
	io_prep_preadv2(&cb, fd, in, 1, 0, RWF_HIPRI);
	one("preadv2 RWF_HIPRI", &cb);
	long long before = size_of(fd);
	io_prep_pwritev2(&cb, fd, out + 2, 1, 0, RWF_APPEND);
	one("pwritev2 RWF_APPEND at offset 0", &cb);
	SAY("  size grew by %lld\n", size_of(fd) - before);
	char last = 0;
	CHECK(pread(fd, &last, 1, before) == 1 && last == 'C');
	CHECK(pread(fd, &last, 1, 0) == 1 && last == 'A');
	io_prep_preadv2(&cb, fd, in, 1, 0, RWF_APPEND);
	one("preadv2 RWF_APPEND", &cb);
	io_prep_preadv2(&cb, fd, in, 1, 0, 0x40000000);
	one("preadv2 unknown flag", &cb);
	io_prep_pwritev2(&cb, fd, out, 1, 0, RWF_NOWAIT | RWF_DSYNC);
	one("pwritev2 RWF_NOWAIT|RWF_DSYNC", &cb);
	/* Plain pread/pwrite carry aio_rw_flags too. */
	io_prep_pwrite(&cb, fd, "q", 1, 0);
	cb.aio_rw_flags = RWF_APPEND;
	before = size_of(fd);
	one("pwrite with RWF_APPEND", &cb);
	SAY("  size grew by %lld\n", size_of(fd) - before);
	close(fd);

	/* A misaligned segment under O_DIRECT. */
	fd = scratch_fd(O_RDWR | O_DIRECT);
	void *mem;
	CHECK(posix_memalign(&mem, 4096, 8192) == 0);
	memset(mem, 'd', 8192);
	struct iovec dv[2] = { { mem, 4096 }, { (char *)mem + 4096, 4096 } };
	io_prep_pwritev(&cb, fd, dv, 2, 0);
	one("O_DIRECT pwritev aligned", &cb);
	dv[1].iov_base = (char *)mem + 4097;
	dv[1].iov_len = 4095;
	io_prep_preadv(&cb, fd, dv, 2, 0);
	one("O_DIRECT preadv misaligned segment", &cb);
	free(mem);
	close(fd);
}

static void pipes(void)
{
	int p[2];
	CHECK(pipe2(p, 0) == 0);
	static char buf[64];
	struct iovec v = { buf, sizeof(buf) };
	struct iocb cb;
	io_prep_preadv2(&cb, p[0], &v, 1, 0, RWF_NOWAIT);
	one("preadv2 RWF_NOWAIT, empty pipe", &cb);
	CHECK(write(p[1], "hello", 5) == 5);
	io_prep_preadv2(&cb, p[0], &v, 1, 0, RWF_NOWAIT);
	one("preadv2 RWF_NOWAIT, pipe holding 5", &cb);
	CHECK(memcmp(buf, "hello", 5) == 0);

	/* Fill the pipe, then a NOWAIT write cannot go in. */
	CHECK(fcntl(p[1], F_SETFL, O_NONBLOCK) == 0);
	static char junk[4096];
	while (write(p[1], junk, sizeof(junk)) > 0)
		;
	CHECK(fcntl(p[1], F_SETFL, 0) == 0);
	struct iovec w = { junk, sizeof(junk) };
	io_prep_pwritev2(&cb, p[1], &w, 1, 0, RWF_NOWAIT);
	one("pwritev2 RWF_NOWAIT, full pipe", &cb);
	close(p[0]);
	close(p[1]);
}

int main(void)
{
	CHECK(io_setup(16, &ctx) == 0);
	files();
	pipes();
	CALL("io_destroy", io_destroy(ctx));
	return 0;
}
