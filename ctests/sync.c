/*
 * fsync and fdatasync: io_prep_fsync/io_prep_fdsync and the io_fsync/io_fdsync
 * helpers (with io_queue_run), on files of two file systems, on a read-only
 * descriptor, batched behind writes, and where the kernel refuses them.
 */
#include "common.h"
#include <sys/uio.h>

static io_context_t ctx;
static int calls;
static long last_res;

static void one(const char *label, struct iocb *cb)
{
	submit_and_show(ctx, label, cb);
}

static void done(io_context_t c, struct iocb *cb, long res, long res2)
{
	CHECK(c == ctx && cb != NULL && res2 == 0);
	calls++;
	last_res = res;
}

/* Waits for one completion without reaping it, then runs the queue. */
static void run_queue(const char *label)
{
	wait_ring_ready(ctx, 1);
	calls = 0;
	int r = io_queue_run(ctx);
	SAY("%s: io_queue_run = %s, callbacks %d, res=%s\n", label, errname(r), calls, errname(last_res));
}

static void on_file(const char *where, int fd)
{
	SAY("on %s\n", where);
	struct iocb cb;
	fill_file(fd, 'x', 8192, 0);
	io_prep_fsync(&cb, fd);
	one("  fsync", &cb);
	io_prep_fdsync(&cb, fd);
	one("  fdsync", &cb);

	CALL("  io_fsync", io_fsync(ctx, &cb, done, fd));
	CHECK(cb.aio_lio_opcode == IO_CMD_FSYNC && cb.data == (void *)done);
	run_queue("  io_fsync");
	CALL("  io_fdsync", io_fdsync(ctx, &cb, done, fd));
	CHECK(cb.aio_lio_opcode == IO_CMD_FDSYNC);
	run_queue("  io_fdsync");

	/* Writes and a sync in one batch. */
	static char data[2][4096] __attribute__((aligned(4096)));
	struct iocb w[2], s, *batch[3] = { &w[0], &w[1], &s };
	for (int i = 0; i < 2; i++) {
		memset(data[i], '0' + i, sizeof(data[i]));
		io_prep_pwrite(&w[i], fd, data[i], sizeof(data[i]), 4096LL * i);
	}
	io_prep_fdsync(&s, fd);
	int r = io_submit(ctx, 3, batch);
	SAY("  [pwrite, pwrite, fdsync]: io_submit = %s\n", errname(r));
	struct io_event ev[3];
	reap_exactly(ctx, ev, r);
	for (int i = 0; i < 3; i++) {
		for (int j = 0; j < 3; j++)
			if (ev[j].obj == batch[i])
				SAY("  [%d] res=%s\n", i, resname(ev[j].res));
	}

	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	int ro = open(path, O_RDONLY);
	CHECK(ro >= 0);
	io_prep_fsync(&cb, ro);
	one("  fsync on an O_RDONLY descriptor", &cb);
	io_prep_fdsync(&cb, ro);
	one("  fdsync on an O_RDONLY descriptor", &cb);
	close(ro);

	io_prep_fsync(&cb, fd);
	cb.u.c.buf = data[0];
	one("  fsync with buf set", &cb);
	io_prep_fsync(&cb, fd);
	cb.u.c.offset = 4096;
	one("  fsync with offset set", &cb);
	io_prep_fdsync(&cb, fd);
	cb.u.c.nbytes = 1;
	one("  fdsync with nbytes set", &cb);
	io_prep_fsync(&cb, fd);
	cb.aio_rw_flags = RWF_DSYNC;
	one("  fsync with aio_rw_flags set", &cb);
	close(fd);
}

int main(void)
{
	CHECK(io_queue_init(16, &ctx) == 0);
	on_file("$CTEST_TMPDIR", scratch_fd(O_RDWR));
	on_file("$CTEST_TMPDIR, O_DIRECT", scratch_fd(O_RDWR | O_DIRECT));
	char shm[] = "/dev/shm/ctest-sync-XXXXXX";
	int fd = mkstemp(shm);
	CHECK(fd >= 0);
	unlink(shm);
	on_file("/dev/shm", fd);

	struct iocb cb;
	int p[2];
	CHECK(pipe(p) == 0);
	io_prep_fsync(&cb, p[1]);
	one("fsync on a pipe", &cb);
	io_prep_fdsync(&cb, p[0]);
	one("fdsync on a pipe", &cb);
	io_prep_fsync(&cb, -1);
	one("fsync on fd -1", &cb);
	CALL("io_fsync(fd -1)", io_fsync(ctx, &cb, done, -1));
	CALL("io_fdsync(NULL ctx)", io_fdsync(NULL, &cb, done, p[1]));
	int dir = open("/", O_RDONLY | O_DIRECTORY);
	CHECK(dir >= 0);
	io_prep_fsync(&cb, dir);
	one("fsync on a directory", &cb);

	CALL("io_queue_run(empty)", io_queue_run(ctx));
	CALL("io_queue_release", io_queue_release(ctx));
	return 0;
}
