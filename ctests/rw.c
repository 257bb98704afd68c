/*
 * Reads and writes: pread and pwrite on regular files (buffered and
 * O_DIRECT), at EOF, past EOF, at large offsets, on pipes and character
 * devices; unaligned O_DIRECT buffers and offsets give -EINVAL in event.res.
 */
#include "common.h"
#include <sys/stat.h>

static io_context_t ctx;

/* Submits `n` iocbs, reaps them, and prints each one's result in array order. */
static void run(const char *label, struct iocb **cbs, int n)
{
	struct io_event ev[16];
	CHECK(n <= 16);
	int r = io_submit(ctx, n, cbs);
	SAY("%s: io_submit = %s\n", label, errname(r));
	if (r <= 0)
		return;
	reap_exactly(ctx, ev, r);
	for (int i = 0; i < r; i++) {
		int found = 0;
		for (int j = 0; j < r; j++) {
			if (ev[j].obj == cbs[i]) {
				CHECK(ev[j].data == cbs[i]->data);
				SAY("  [%d] res=%s res2=%s\n", i, resname(ev[j].res), resname(ev[j].res2));
				found++;
			}
		}
		CHECK(found == 1);
	}
}

static void one(const char *label, struct iocb *cb)
{
	run(label, &cb, 1);
}

static void buffered(void)
{
	int fd = scratch_fd(O_RDWR);
	static char out[3][4096], in[3][4096];
	struct iocb cb[3], *cbs[3] = { &cb[0], &cb[1], &cb[2] };
	for (int i = 0; i < 3; i++) {
		memset(out[i], 'a' + i, sizeof(out[i]));
		io_prep_pwrite(&cb[i], fd, out[i], sizeof(out[i]), 4096LL * i);
		cb[i].data = (void *)(uintptr_t)(100 + i);
	}
	run("pwrite x3", cbs, 3);
	struct stat st;
	CHECK(fstat(fd, &st) == 0);
	SAY("  file size %lld\n", (long long)st.st_size);
	for (int i = 0; i < 3; i++) {
		io_prep_pread(&cb[i], fd, in[i], sizeof(in[i]), 4096LL * (2 - i));
		cb[i].data = (void *)(uintptr_t)(200 + i);
	}
	run("pread x3", cbs, 3);
	for (int i = 0; i < 3; i++)
		CHECK(memcmp(in[i], out[2 - i], sizeof(in[i])) == 0);
	SAY("  data matches\n");

	io_prep_pread(&cb[0], fd, in[0], 4096, 3 * 4096);
	one("pread at EOF", &cb[0]);
	io_prep_pread(&cb[0], fd, in[0], 4096, 3 * 4096 - 100);
	one("pread across EOF", &cb[0]);
	CHECK(memcmp(in[0], out[2], 100) == 0);
	io_prep_pread(&cb[0], fd, in[0], 4096, 1LL << 40);
	one("pread far past EOF", &cb[0]);
	io_prep_pread(&cb[0], fd, in[0], 0, 0);
	one("pread of 0 bytes", &cb[0]);
	io_prep_pwrite(&cb[0], fd, out[0], 0, 0);
	one("pwrite of 0 bytes", &cb[0]);
	io_prep_pread(&cb[0], fd, in[0], 16, -1);
	one("pread at offset -1", &cb[0]);
	io_prep_pwrite(&cb[0], fd, out[1], 512, (1LL << 32) + 7);
	one("pwrite at 4 GiB + 7", &cb[0]);
	CHECK(fstat(fd, &st) == 0);
	SAY("  file size %lld\n", (long long)st.st_size);
	memset(in[0], 0, sizeof(in[0]));
	io_prep_pread(&cb[0], fd, in[0], 4096, (1LL << 32) + 7 - 100);
	one("pread at 4 GiB - 93", &cb[0]);
	CHECK(in[0][0] == 0 && in[0][100] == 'b' && in[0][611] == 'b');
	close(fd);
}

static void direct(const char *where, int fd)
{
	SAY("O_DIRECT on %s\n", where);
	void *mem;
	CHECK(posix_memalign(&mem, 4096, 3 * 4096) == 0);
	char *buf = mem;
	memset(buf, 'd', 3 * 4096);
	struct iocb cb;
	io_prep_pwrite(&cb, fd, buf, 8192, 0);
	one("  aligned pwrite", &cb);
	memset(buf, 0, 3 * 4096);
	io_prep_pread(&cb, fd, buf, 8192, 0);
	one("  aligned pread", &cb);
	CHECK(buf[0] == 'd' && buf[8191] == 'd');
	io_prep_pread(&cb, fd, buf + 4096, 4096, 8192);
	one("  aligned pread at EOF", &cb);
	io_prep_pread(&cb, fd, buf + 1, 4096, 0);
	one("  pread, buffer misaligned by 1", &cb);
	io_prep_pread(&cb, fd, buf, 4096, 1);
	one("  pread, offset misaligned by 1", &cb);
	io_prep_pread(&cb, fd, buf, 100, 0);
	one("  pread, length 100", &cb);
	io_prep_pwrite(&cb, fd, buf + 1, 4096, 0);
	one("  pwrite, buffer misaligned by 1", &cb);
	io_prep_pwrite(&cb, fd, buf, 4096, 1);
	one("  pwrite, offset misaligned by 1", &cb);
	free(mem);
	close(fd);
}

static void special_files(void)
{
	static char buf[64];
	struct iocb cb;
	int p[2];
	CHECK(pipe(p) == 0);
	CHECK(write(p[1], "pipedata", 8) == 8);
	io_prep_pread(&cb, p[0], buf, sizeof(buf), 0);
	one("pread on a pipe holding 8 bytes", &cb);
	io_prep_pwrite(&cb, p[1], "xyz", 3, 0);
	one("pwrite on a pipe", &cb);
	io_prep_pread(&cb, p[1], buf, sizeof(buf), 0);
	one("pread on a pipe's write end", &cb);
	close(p[0]);
	io_prep_pwrite(&cb, p[1], "xyz", 3, 0);
	/* No reader: EPIPE in the event (SIGPIPE ignored). */
	signal(SIGPIPE, SIG_IGN);
	one("pwrite on a pipe with no reader", &cb);
	close(p[1]);

	int z = open("/dev/zero", O_RDONLY), n = open("/dev/null", O_WRONLY);
	CHECK(z >= 0 && n >= 0);
	memset(buf, 1, sizeof(buf));
	io_prep_pread(&cb, z, buf, sizeof(buf), 12345);
	one("pread on /dev/zero", &cb);
	CHECK(buf[0] == 0 && buf[63] == 0);
	io_prep_pwrite(&cb, n, buf, sizeof(buf), 0);
	one("pwrite on /dev/null", &cb);
	int dir = open("/", O_RDONLY | O_DIRECTORY);
	CHECK(dir >= 0);
	io_prep_pread(&cb, dir, buf, sizeof(buf), 0);
	one("pread on a directory", &cb);
	close(z);
	close(n);
	close(dir);
}

int main(void)
{
	CHECK(io_setup(32, &ctx) == 0);
	buffered();

	int fd = scratch_fd(O_RDWR | O_DIRECT);
	direct("$CTEST_TMPDIR", fd);
	char shm[] = "/dev/shm/ctest-rw-XXXXXX";
	fd = mkostemp(shm, O_RDWR | O_DIRECT);
	if (fd >= 0) {
		unlink(shm);
		direct("/dev/shm", fd);
	} else {
		SAY("O_DIRECT on /dev/shm: open fails\n");
	}
	special_files();
	CALL("io_destroy", io_destroy(ctx));
	return 0;
}
