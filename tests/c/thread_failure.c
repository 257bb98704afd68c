/*
 * thread_failure: what a program sees of a user-space engine when the
 * library cannot start a thread (run with the no_library_threads shim, as
 * under RLIMIT_NPROC or a pids cgroup): reads, writes and syncs are done
 * inside io_submit, as kernel AIO does buffered I/O; a poll that would have
 * to wait gets -EAGAIN (io_submit's answer when resources are short); a
 * ready poll completes; io_destroy returns at once. Once threads can start
 * again, the engine uses them: the next waiting poll works. Exit status 0
 * when all holds; prints what it checks.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <libaio.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CHECK(c)                                                                      \
	do {                                                                          \
		if (!(c)) {                                                           \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c); \
			exit(1);                                                      \
		}                                                                     \
	} while (0)

static long long now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000LL + t.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
	CHECK(argc == 2);
	int *refuse = dlsym(RTLD_DEFAULT, "refuse_library_threads");
	int *refused = dlsym(RTLD_DEFAULT, "library_threads_refused");
	CHECK(refuse && refused); /* the shim is loaded */
	int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC | O_DIRECT, 0600);
	if (fd < 0)
		fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	char *buf;
	CHECK(posix_memalign((void **)&buf, 4096, 8192) == 0);
	memset(buf, 'w', 4096);
	io_context_t ctx = 0;
	CHECK(io_setup(16, &ctx) == 0);
	struct iocb w, r, s, *cbs[3] = { &w, &r, &s };
	io_prep_pwrite(&w, fd, buf, 4096, 0);
	io_prep_fsync(&s, fd);
	CHECK(io_submit(ctx, 1, cbs) == 1);
	struct io_event ev[3];
	struct timespec t = { 5, 0 };
	CHECK(io_getevents(ctx, 1, 1, ev, &t) == 1 && ev[0].res == 4096);
	io_prep_pread(&r, fd, buf + 4096, 4096, 0);
	cbs[0] = &r;
	cbs[1] = &s;
	CHECK(io_submit(ctx, 2, cbs) == 2);
	CHECK(io_getevents(ctx, 2, 2, ev, &t) == 2);
	CHECK(buf[4096] == 'w');
	printf("no thread started, %d refused: write, read and fsync done\n", *refused > 0);
	int p[2];
	CHECK(pipe(p) == 0);
	struct iocb poll_cb, *pcb[1] = { &poll_cb };
	io_prep_poll(&poll_cb, p[0], POLLIN);
	int ret = io_submit(ctx, 1, pcb);
	printf("a poll that must wait: io_submit = %d (%s)\n", ret, ret == -EAGAIN ? "-EAGAIN" : "?");
	CHECK(ret == -EAGAIN);
	CHECK(write(p[1], "x", 1) == 1);
	CHECK(io_submit(ctx, 1, pcb) == 1); /* ready now: done inside io_submit */
	CHECK(io_getevents(ctx, 1, 1, ev, &t) == 1 && ev[0].res & POLLIN);
	printf("a ready poll completes\n");
	char c;
	CHECK(read(p[0], &c, 1) == 1);
	long long t0 = now_ms();
	CHECK(io_destroy(ctx) == 0);
	CHECK(now_ms() - t0 < 1000);
	printf("io_destroy returns at once\n");
	/* Threads can start again: a poll that waits works. */
	*refuse = 0;
	ctx = 0;
	CHECK(io_setup(16, &ctx) == 0);
	CHECK(io_submit(ctx, 1, pcb) == 1);
	struct timespec t100 = { 0, 100000000 };
	CHECK(io_getevents(ctx, 1, 1, ev, &t100) == 0);
	CHECK(write(p[1], "x", 1) == 1);
	CHECK(io_getevents(ctx, 1, 1, ev, &t) == 1 && ev[0].res & POLLIN);
	printf("threads start again: a waiting poll completes\n");
	CHECK(io_destroy(ctx) == 0);
	return 0;
}
