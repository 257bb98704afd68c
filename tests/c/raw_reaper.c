/*
 * raw_reaper: a program shaped like MariaDB's InnoDB before 10.11.12: it sets
 * up and submits through libaio, but reaps with the io_getevents system call
 * itself, in a thread of its own; it imports no io_getevents. When io_setup
 * fails it falls back to synchronous I/O, as InnoDB does ("native AIO
 * failed: falling back"). When the raw io_getevents fails, it aborts, as
 * InnoDB does ("io_getevents returned -38").
 * Prints which path it took; exit 0 when its I/O was done either way.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libaio.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static io_context_t ctx;

static void *reaper(void *arg)
{
	(void)arg;
	struct io_event ev;
	long r = syscall(SYS_io_getevents, ctx, 1, 1, &ev, NULL);
	if (r != 1) {
		printf("reaper: io_getevents returned %ld\n", r < 0 ? -(long)errno : r);
		fflush(stdout);
		abort();
	}
	printf("reaper: 1 event, res %ld\n", (long)ev.res);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return 2;
	char buf[512];
	memset(buf, 'm', sizeof(buf));
	int ret = io_setup(8, &ctx);
	if (ret < 0) {
		printf("io_setup: %s: falling back to synchronous I/O\n", strerror(-ret));
		if (pwrite(fd, buf, sizeof(buf), 0) != (ssize_t)sizeof(buf))
			return 1;
		printf("synchronous write done\n");
		return 0;
	}
	printf("io_setup: native AIO\n");
	fflush(stdout);
	pthread_t t;
	if (pthread_create(&t, NULL, reaper, NULL) != 0)
		return 1;
	struct iocb cb, *cbs[1] = { &cb };
	io_prep_pwrite(&cb, fd, buf, sizeof(buf), 0);
	if (io_submit(ctx, 1, cbs) != 1)
		return 1;
	pthread_join(t, NULL);
	return 0;
}
