/*
 * diag_probe: makes libaio calls fail on purpose, for tests/sh/diagnostics.sh.
 *
 * Every call runs with errno set to a sentinel and must leave it so, whether
 * or not LIBAIO_RS_DEBUG is on; each result is printed on stdout as
 * "label = result". What the library writes on stderr is the script's to
 * judge. Exit status 0 when every call returned what the kernel returns,
 * 1 otherwise.
 *
 * Usage: diag_probe MODE
 *   basic     failures of every entry point, plus calls that succeed
 *   eagain    io_setup asking for more events than fs.aio-max-nr allows
 *   exhaust   (root) holds a context, lowers fs.aio-max-nr to fs.aio-nr,
 *             then io_setup fails; prints "limit = N" (the script restores
 *             the sysctl whatever happens)
 *   enosys    io_setup where kernel AIO is unavailable (run under seccomp_noaio)
 *   eperm     io_setup refused with EPERM (run under seccomp_noaio --errno=EPERM)
 *   ok        only calls that succeed
 *   completions DIR  O_DIRECT reads of a file in DIR with the buffer, the
 *             length and the offset misaligned (each twice), and a buffered
 *             read into unmapped memory: each completes with its -errno;
 *             prints "skip" when DIR takes no O_DIRECT
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <libaio.h>

#define SENTINEL 4242
static int failures;

/* Runs EXPR with errno = SENTINEL; checks errno and the expected result. */
#define EXPECT(label, expr, want)                                                  \
	do {                                                                       \
		errno = SENTINEL;                                                  \
		long r_ = (long)(expr);                                            \
		int e_ = errno;                                                    \
		printf("%s = %ld\n", label, r_);                                   \
		fflush(stdout);                                                    \
		if (e_ != SENTINEL) {                                              \
			fprintf(stderr, "diag_probe: %s changed errno to %d\n",    \
				label, e_);                                        \
			failures++;                                                \
		}                                                                  \
		if (r_ != (long)(want)) {                                          \
			fprintf(stderr, "diag_probe: %s returned %ld, expected %ld\n", \
				label, r_, (long)(want));                          \
			failures++;                                                \
		}                                                                  \
	} while (0)

static long read_number(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = -1;
	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

static void on_alarm(int sig)
{
	(void)sig;
}

static void successes(void)
{
	io_context_t ctx = 0;
	EXPECT("io_setup(8)", io_setup(8, &ctx), 0);
	int fd = open("/proc/self/exe", O_RDONLY);
	char buf[64];
	struct iocb cb, *cbs[1] = { &cb };
	struct io_event ev[1];
	struct timespec ts = { 5, 0 }, zero = { 0, 0 };
	io_prep_pread(&cb, fd, buf, sizeof(buf), 0);
	EXPECT("io_submit(read)", io_submit(ctx, 1, cbs), 1);
	EXPECT("io_getevents(1)", io_getevents(ctx, 1, 1, ev, &ts), 1);
	EXPECT("io_getevents(empty, zero timeout)", io_getevents(ctx, 0, 1, ev, &zero), 0);
	EXPECT("io_queue_run(empty)", io_queue_run(ctx), 0);
	EXPECT("io_destroy", io_destroy(ctx), 0);
	close(fd);
}

static void basic(void)
{
	io_context_t ctx = 0, stale = (io_context_t)1;
	EXPECT("io_setup(0)", io_setup(0, &ctx), -EINVAL);
	EXPECT("io_setup(*ctxp != 0)", io_setup(1, &stale), -EINVAL);
	EXPECT("io_destroy(NULL)", io_destroy(NULL), -EINVAL);
	EXPECT("io_setup(8)", io_setup(8, &ctx), 0);

	int fd = open("/proc/self/exe", O_RDONLY);
	int p[2];
	if (pipe(p) != 0)
		abort();
	char buf[64];
	struct iocb cb, *cbs[1] = { &cb };
	struct io_event ev[4];
	struct timespec ts = { 1, 0 };

	io_prep_pread(&cb, 1000, buf, sizeof(buf), 0);
	EXPECT("io_submit(bad fd)", io_submit(ctx, 1, cbs), -EBADF);
	io_prep_pread(&cb, fd, buf, sizeof(buf), 0);
	cb.aio_lio_opcode = IO_CMD_NOOP;
	EXPECT("io_submit(IO_CMD_NOOP)", io_submit(ctx, 1, cbs), -EINVAL);
	EXPECT("io_submit(nr -1)", io_submit(ctx, -1, cbs), -EINVAL);

	/* Partial: the second of three is refused. */
	struct iocb three[3], *pthree[3] = { &three[0], &three[1], &three[2] };
	io_prep_pread(&three[0], fd, buf, 8, 0);
	io_prep_pread(&three[1], 1000, buf, 8, 0);
	io_prep_pread(&three[2], fd, buf, 8, 0);
	EXPECT("io_submit(3, second refused)", io_submit(ctx, 3, pthree), 1);
	EXPECT("io_getevents(reap it)", io_getevents(ctx, 1, 1, ev, &ts), 1);

	EXPECT("io_getevents(min_nr > nr)", io_getevents(ctx, 2, 1, ev, &ts), -EINVAL);

	/* A read cannot be cancelled (it is done already); a poll can. */
	io_prep_pread(&cb, fd, buf, sizeof(buf), 0);
	EXPECT("io_submit(read)", io_submit(ctx, 1, cbs), 1);
	EXPECT("io_cancel(read)", io_cancel(ctx, &cb, &ev[0]), -EINVAL);
	EXPECT("io_getevents(read)", io_getevents(ctx, 1, 1, ev, &ts), 1);
	io_prep_poll(&cb, p[0], POLLIN);
	EXPECT("io_submit(poll)", io_submit(ctx, 1, cbs), 1);
	EXPECT("io_cancel(poll)", io_cancel(ctx, &cb, &ev[0]), -EINPROGRESS);
	EXPECT("io_getevents(cancelled poll)", io_getevents(ctx, 1, 1, ev, &ts), 1);

	/* EINTR: SIGALRM's handler runs while io_getevents waits. */
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGALRM, &sa, NULL);
	struct timespec longer = { 10, 0 };
	alarm(1);
	EXPECT("io_getevents(interrupted)", io_getevents(ctx, 1, 1, ev, &longer), -EINTR);

	EXPECT("io_destroy", io_destroy(ctx), 0);
	EXPECT("io_destroy(again)", io_destroy(ctx), -EINVAL);
	close(fd);
	close(p[0]);
	close(p[1]);
}

/* Submits one read and checks the result its completion carries. */
static void read_completes(io_context_t ctx, const char *label, int fd, void *buf, size_t len,
			   long long off, long want)
{
	struct iocb cb, *cbs[1] = { &cb };
	struct io_event ev[1];
	struct timespec ts = { 5, 0 };
	char name[96];
	io_prep_pread(&cb, fd, buf, len, off);
	snprintf(name, sizeof(name), "io_submit(%s)", label);
	EXPECT(name, io_submit(ctx, 1, cbs), 1);
	snprintf(name, sizeof(name), "io_getevents(%s)", label);
	EXPECT(name, io_getevents(ctx, 1, 1, ev, &ts), 1);
	snprintf(name, sizeof(name), "res(%s)", label);
	EXPECT(name, (long)ev[0].res, want);
}

static int completions(const char *dir)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/diag_probe.direct", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_DIRECT, 0600);
	if (fd < 0) {
		printf("skip\n");
		return 0;
	}
	unlink(path);
	char *buf;
	if (posix_memalign((void **)&buf, 65536, 3 * 65536))
		abort();
	/* Data, not holes: a hole is read without the alignment checks. */
	memset(buf, 'x', 3 * 65536);
	if (pwrite(fd, buf, 3 * 65536, 0) != 3 * 65536)
		abort();
	io_context_t ctx = 0;
	EXPECT("io_setup(4)", io_setup(4, &ctx), 0);
	read_completes(ctx, "aligned", fd, buf, 65536, 65536, 65536);
	for (int round = 0; round < 2; round++) {
		read_completes(ctx, "buffer + 1", fd, buf + 1, 65536, 0, -EINVAL);
		read_completes(ctx, "length 65537", fd, buf, 65537, 0, -EINVAL);
		read_completes(ctx, "offset 1", fd, buf, 65536, 1, -EINVAL);
	}
	/* Buffered: the kernel copies into an unmapped page at completion. */
	int bfd = open("/proc/self/exe", O_RDONLY);
	char *gone = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (bfd < 0 || gone == MAP_FAILED || munmap(gone, 4096) != 0)
		abort();
	read_completes(ctx, "unmapped buffer", bfd, gone, 4096, 0, -EFAULT);
	EXPECT("io_destroy", io_destroy(ctx), 0);
	close(bfd);
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "basic";
	if (!strcmp(mode, "basic")) {
		basic();
		successes();
	} else if (!strcmp(mode, "ok")) {
		successes();
	} else if (!strcmp(mode, "eagain")) {
		long max = read_number("/proc/sys/fs/aio-max-nr");
		if (max < 0 || max >= 4194304) {
			fprintf(stderr, "diag_probe: cannot use fs.aio-max-nr = %ld\n", max);
			return 2;
		}
		io_context_t ctx = 0;
		printf("limit = %ld\n", max);
		EXPECT("io_setup(aio-max-nr + 1)", io_setup((int)max + 1, &ctx), -EAGAIN);
	} else if (!strcmp(mode, "exhaust")) {
		io_context_t held = 0, ctx = 0;
		EXPECT("io_setup(16)", io_setup(16, &held), 0);
		long nr = read_number("/proc/sys/fs/aio-nr");
		FILE *f = fopen("/proc/sys/fs/aio-max-nr", "w");
		if (nr < 16 || !f || fprintf(f, "%ld\n", nr) < 0 || fclose(f) != 0) {
			fprintf(stderr, "diag_probe: cannot set fs.aio-max-nr to %ld\n", nr);
			return 2;
		}
		printf("limit = %ld\n", nr);
		EXPECT("io_setup(16) at the limit", io_setup(16, &ctx), -EAGAIN);
		EXPECT("io_destroy(held)", io_destroy(held), 0);
	} else if (!strcmp(mode, "enosys")) {
		io_context_t ctx = 0;
		EXPECT("io_setup(8) without AIO", io_setup(8, &ctx), -ENOSYS);
		EXPECT("io_queue_init(8) without AIO", io_queue_init(8, &ctx), -ENOSYS);
	} else if (!strcmp(mode, "completions") && argc > 2) {
		completions(argv[2]);
	} else if (!strcmp(mode, "eperm")) {
		io_context_t ctx = 0;
		EXPECT("io_setup(8) refused", io_setup(8, &ctx), -EPERM);
	} else {
		fprintf(stderr, "diag_probe: unknown mode %s\n", mode);
		return 2;
	}
	return failures ? 1 : 0;
}
