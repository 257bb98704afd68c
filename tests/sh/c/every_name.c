/*
 * Uses every name that libaio 0.3.113's libaio.h gives a program, in C (C99
 * and later) and C++, and checks what each one does.
 *
 * Built by tests/sh/header_flags.sh against our header and against Debian's,
 * under several -std/-pedantic settings with -Wall -Wextra -Werror, then run
 * with either library. It prints a transcript that must be the same whatever
 * header and library it was built and run with; any failed expectation
 * prints a "FAIL" line and makes the exit status 1.
 *
 *   every_name DIR     (DIR: where a scratch file is created and removed)
 *
 * -DLIBAIO_TEST_STRICT: define no feature-test macro, so a strict -std=c99
 *    compile sees only what ISO C gives (no sigset_t, no struct timespec);
 *    the real I/O part, which needs POSIX, is left out.
 * -DLIBAIO_TEST_QUEUE_WAIT: also call io_queue_wait, which libaio 0.3.113
 *    exports but whose declaration its libaio.h comments out.
 */
#if !defined(LIBAIO_TEST_STRICT) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* g++ defines it already */
#endif

#include <libaio.h>

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>

#ifndef LIBAIO_TEST_STRICT
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#endif

static int failures;

#define EXPECT(cond)                                                                   \
	do {                                                                           \
		if (!(cond)) {                                                         \
			printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);         \
			failures++;                                                    \
		}                                                                      \
	} while (0)

/* What io_set_callback stores in iocb.data, read back without a
 * function-to-object pointer cast (which -pedantic rejects). */
union callback_bits {
	void *data;
	io_callback_t cb;
};

static int calls;
static struct iocb *last_iocb;
static long last_res, last_res2;

static void count_callback(io_context_t ctx, struct iocb *iocb, long res, long res2)
{
	(void)ctx;
	calls++;
	last_iocb = iocb;
	last_res = res;
	last_res2 = res2;
}

/* Every byte of an iocb that the helpers must clear starts non-zero. */
static void dirty(struct iocb *iocb)
{
	memset(iocb, 0xa5, sizeof(*iocb));
}

static int all_zero(const void *p, size_t n)
{
	const unsigned char *b = (const unsigned char *)p;
	size_t i;

	for (i = 0; i < n; i++)
		if (b[i])
			return 0;
	return 1;
}

/* The header's types, fields, constants and helpers, without the kernel. */
static void names(void)
{
	struct iocb iocb;
	struct io_event event;
	struct io_iocb_common common;
	struct io_iocb_vector vector;
	struct io_iocb_poll pollargs;
	struct io_iocb_sockaddr saddr;
	struct io_sigset sigset_arg;
	struct io_sigset_compat sigset_compat_arg;
	io_iocb_cmd_t cmd;
	enum io_iocb_cmd cmd2;
	io_callback_t cb = count_callback;
	io_context_t ctx = 0;
	struct io_context *raw = ctx;
	union callback_bits bits;
	char buf[64];
	struct iovec iov[2];

	/* Prototypes, as libaio.h 0.3.113 declares them. */
	int (*f_queue_init)(int, io_context_t *) = io_queue_init;
	int (*f_queue_release)(io_context_t) = io_queue_release;
	int (*f_queue_run)(io_context_t) = io_queue_run;
	int (*f_setup)(int, io_context_t *) = io_setup;
	int (*f_destroy)(io_context_t) = io_destroy;
	int (*f_submit)(io_context_t, long, struct iocb **) = io_submit;
	int (*f_cancel)(io_context_t, struct iocb *, struct io_event *) = io_cancel;
	int (*f_getevents)(io_context_t, long, long, struct io_event *, struct timespec *) =
		io_getevents;
	void (*f_set_callback)(struct iocb *, io_callback_t) = io_set_callback;
	void (*f_prep_pread)(struct iocb *, int, void *, size_t, long long) = io_prep_pread;
	void (*f_prep_pwrite)(struct iocb *, int, void *, size_t, long long) = io_prep_pwrite;
	void (*f_prep_preadv)(struct iocb *, int, const struct iovec *, int, long long) =
		io_prep_preadv;
	void (*f_prep_pwritev)(struct iocb *, int, const struct iovec *, int, long long) =
		io_prep_pwritev;
	void (*f_prep_preadv2)(struct iocb *, int, const struct iovec *, int, long long, int) =
		io_prep_preadv2;
	void (*f_prep_pwritev2)(struct iocb *, int, const struct iovec *, int, long long, int) =
		io_prep_pwritev2;
	void (*f_prep_poll)(struct iocb *, int, int) = io_prep_poll;
	int (*f_poll)(io_context_t, struct iocb *, io_callback_t, int, int) = io_poll;
	void (*f_prep_fsync)(struct iocb *, int) = io_prep_fsync;
	int (*f_fsync)(io_context_t, struct iocb *, io_callback_t, int) = io_fsync;
	void (*f_prep_fdsync)(struct iocb *, int) = io_prep_fdsync;
	int (*f_fdsync)(io_context_t, struct iocb *, io_callback_t, int) = io_fdsync;
	void (*f_set_eventfd)(struct iocb *, int) = io_set_eventfd;

	EXPECT(f_queue_init && f_queue_release && f_queue_run && f_setup && f_destroy);
	EXPECT(f_submit && f_cancel && f_getevents && f_set_callback && f_prep_pread);
	EXPECT(f_prep_pwrite && f_prep_preadv && f_prep_pwritev && f_prep_preadv2);
	EXPECT(f_prep_pwritev2 && f_prep_poll && f_poll && f_prep_fsync && f_fsync);
	EXPECT(f_prep_fdsync && f_fdsync && f_set_eventfd);
	EXPECT(raw == NULL);

	/* The kernel's layout, the same on every architecture. */
	EXPECT(sizeof(struct iocb) == 64);
	EXPECT(sizeof(struct io_event) == 32);
	EXPECT(offsetof(struct iocb, aio_lio_opcode) == 16);
	EXPECT(offsetof(struct iocb, aio_fildes) == 20);
	EXPECT(offsetof(struct iocb, u.c.buf) == 24 || offsetof(struct iocb, u.c.buf) == 28);
	EXPECT(offsetof(struct iocb, u.c.offset) == 40);
	EXPECT(offsetof(struct iocb, u.c.flags) == 56);
	EXPECT(offsetof(struct iocb, u.c.resfd) == 60);

	cmd = IO_CMD_PREAD;
	cmd2 = cmd;
	printf("IO_CMD: %d %d %d %d %d %d %d %d\n", (int)cmd2, (int)IO_CMD_PWRITE,
	       (int)IO_CMD_FSYNC, (int)IO_CMD_FDSYNC, (int)IO_CMD_POLL, (int)IO_CMD_NOOP,
	       (int)IO_CMD_PREADV, (int)IO_CMD_PWRITEV);
#ifdef IOCB_FLAG_RESFD
	EXPECT(IOCB_FLAG_RESFD == 1);
#endif

	dirty(&iocb);
	io_prep_pread(&iocb, 3, buf, sizeof(buf), 128);
	EXPECT(iocb.data == NULL && iocb.key == 0 && iocb.aio_rw_flags == 0);
	EXPECT(iocb.aio_lio_opcode == IO_CMD_PREAD && iocb.aio_reqprio == 0);
	EXPECT(iocb.aio_fildes == 3 && iocb.u.c.buf == buf && iocb.u.c.nbytes == sizeof(buf));
	EXPECT(iocb.u.c.offset == 128 && iocb.u.c.__pad3 == 0);
	EXPECT(iocb.u.c.flags == 0 && iocb.u.c.resfd == 0);

	dirty(&iocb);
	io_prep_pwrite(&iocb, 4, buf, 10, 1LL << 40);
	EXPECT(iocb.aio_lio_opcode == IO_CMD_PWRITE && iocb.aio_fildes == 4);
	EXPECT(iocb.u.c.buf == buf && iocb.u.c.nbytes == 10 && iocb.u.c.offset == 1LL << 40);
	common = iocb.u.c;
	EXPECT(common.buf == buf && common.nbytes == 10 && common.flags == 0);

	dirty(&iocb);
	io_prep_preadv(&iocb, 5, iov, 2, 256);
	EXPECT(iocb.aio_lio_opcode == IO_CMD_PREADV && iocb.aio_fildes == 5);
	EXPECT(iocb.u.v.vec == iov && iocb.u.v.nr == 2 && iocb.u.v.offset == 256);
	EXPECT(iocb.u.c.buf == (void *)iov && iocb.u.c.nbytes == 2);
	vector = iocb.u.v;
	EXPECT(vector.vec == iov && vector.nr == 2 && vector.offset == 256);

	dirty(&iocb);
	io_prep_pwritev(&iocb, 6, iov, 1, 512);
	EXPECT(iocb.aio_lio_opcode == IO_CMD_PWRITEV && iocb.u.v.nr == 1);
	EXPECT(iocb.aio_rw_flags == 0 && iocb.data == NULL);

	dirty(&iocb);
	io_prep_preadv2(&iocb, 7, iov, 2, 1024, 0x8);
	EXPECT(iocb.aio_lio_opcode == IO_CMD_PREADV && iocb.aio_rw_flags == 0x8);
	EXPECT(iocb.u.v.vec == iov && iocb.u.v.nr == 2 && iocb.u.v.offset == 1024);
	EXPECT(iocb.key == 0 && iocb.u.c.flags == 0);

	dirty(&iocb);
	io_prep_pwritev2(&iocb, 8, iov, 2, 2048, 0x10);
	EXPECT(iocb.aio_lio_opcode == IO_CMD_PWRITEV && iocb.aio_rw_flags == 0x10);
	EXPECT(iocb.key == 0);

	dirty(&iocb);
	io_prep_poll(&iocb, 9, 0x1);
	EXPECT(iocb.aio_lio_opcode == IO_CMD_POLL && iocb.u.poll.events == 0x1);
	pollargs = iocb.u.poll;
	EXPECT(pollargs.events == 1 && pollargs.__pad1 == 0);
	EXPECT(all_zero(&iocb.u.c.offset, 24));

	dirty(&iocb);
	io_prep_fsync(&iocb, 10);
	EXPECT(iocb.aio_lio_opcode == IO_CMD_FSYNC && iocb.aio_fildes == 10);
	EXPECT(all_zero(&iocb.u, sizeof(iocb.u)) && iocb.data == NULL);

	dirty(&iocb);
	io_prep_fdsync(&iocb, 11);
	EXPECT(iocb.aio_lio_opcode == IO_CMD_FDSYNC && iocb.aio_fildes == 11);
	EXPECT(all_zero(&iocb.u, sizeof(iocb.u)));

	io_set_callback(&iocb, cb);
	bits.data = iocb.data;
	EXPECT(bits.cb == count_callback);

	io_prep_pread(&iocb, 12, buf, 8, 0);
	io_set_eventfd(&iocb, 13);
	EXPECT(iocb.u.c.flags == 1 && iocb.u.c.resfd == 13);

	iocb.u.saddr.addr = NULL;
	iocb.u.saddr.len = 16;
	saddr = iocb.u.saddr;
	EXPECT(saddr.addr == NULL && saddr.len == 16);

	event.data = buf;
	event.obj = &iocb;
	event.res = 4096;
	event.res2 = 0;
	EXPECT(event.data == buf && event.obj == &iocb && event.res == 4096 && event.res2 == 0);

	sigset_arg.ss = 0;
	sigset_arg.ss_len = 8;
	sigset_compat_arg.ss = 0;
	sigset_compat_arg.ss_len = 8;
	EXPECT(sigset_arg.ss_len == sigset_compat_arg.ss_len && sigset_arg.ss == 0);
	EXPECT(sizeof(sigset_arg) == 2 * sizeof(unsigned long));

	iov[0].iov_base = buf;
	iov[0].iov_len = 1;
	iov[1] = iov[0];
}

/* The entry points on a real context, with no I/O (valid in strict ISO C). */
static void context_calls(void)
{
	io_context_t ctx = 0, ctx2 = 0;
	struct iocb iocb, *list[1];
	struct io_event events[4];
	int r;

	r = io_queue_init(8, &ctx);
	printf("io_queue_init: %d %s\n", r, ctx ? "ctx" : "null");
	EXPECT(r == 0 && ctx != 0);
	printf("io_getevents(0, 4, NULL): %d\n", io_getevents(ctx, 0, 4, events, NULL));
	printf("io_getevents(min > nr): %d\n", io_getevents(ctx, 2, 1, events, NULL));
	printf("io_pgetevents(no mask): %d\n", io_pgetevents(ctx, 0, 4, events, NULL, NULL));
	printf("io_queue_run(empty): %d\n", io_queue_run(ctx));
#ifdef LIBAIO_TEST_QUEUE_WAIT
	EXPECT(io_queue_wait(ctx, NULL) == 0);
#endif
	printf("io_submit(0): %d\n", io_submit(ctx, 0, list));
	io_prep_pread(&iocb, -1, events, 8, 0);
	list[0] = &iocb;
	printf("io_submit(bad fd): %d\n", io_submit(ctx, 1, list));
	printf("io_cancel(not submitted): %d\n", io_cancel(ctx, &iocb, &events[0]));
	printf("io_fsync(bad fd): %d\n", io_fsync(ctx, &iocb, count_callback, -1));
	printf("io_fdsync(bad fd): %d\n", io_fdsync(ctx, &iocb, count_callback, -1));
	printf("io_poll(bad fd): %d\n", io_poll(ctx, &iocb, count_callback, -1, 1));
	r = io_setup(4, &ctx2);
	printf("io_setup: %d, io_setup again: %d\n", r, io_setup(4, &ctx2));
	printf("io_destroy: %d\n", io_destroy(ctx2));
	printf("io_queue_release: %d\n", io_queue_release(ctx));
}

#ifndef LIBAIO_TEST_STRICT
/* Waits for one completion of ctx and checks it is iocb's. */
static long reap_one(io_context_t ctx, struct iocb *iocb, const char *what)
{
	struct io_event ev;
	struct timespec ts;
	int n;

	ts.tv_sec = 5;
	ts.tv_nsec = 0;
	n = io_getevents(ctx, 1, 1, &ev, &ts);
	if (n != 1) {
		printf("FAIL %s: io_getevents returned %d\n", what, n);
		failures++;
		return -9999;
	}
	EXPECT(ev.obj == iocb && ev.data == iocb->data);
	printf("%s: res=%ld res2=%ld\n", what, (long)ev.res, (long)ev.res2);
	return (long)ev.res;
}

/* Runs io_queue_run until `want` callbacks have run (5 s at most). */
static void run_callbacks(io_context_t ctx, int want)
{
	int i;

	for (i = 0; i < 5000 && calls < want; i++) {
		EXPECT(io_queue_run(ctx) == 0);
		if (calls < want)
			poll(NULL, 0, 1);
	}
	EXPECT(calls == want);
}

static int submit1(io_context_t ctx, struct iocb *iocb)
{
	struct iocb *list[1];

	list[0] = iocb;
	return io_submit(ctx, 1, list);
}

/* Real I/O through every kind of request. */
static void real_io(const char *dir)
{
	char path[4096], wbuf[4096], rbuf[4096], a[10], b[20], c[30], tag[] = "tag";
	struct iovec iov[2];
	struct iocb iocb;
	struct io_event ev;
	struct timespec ts;
	struct stat st;
	io_context_t ctx = 0;
	sigset_t mask;
	unsigned long long count;
	int fd, p[2], q[2], efd, i, r;

	snprintf(path, sizeof(path), "%s/every_name.data", dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	EXPECT(fd >= 0);
	EXPECT(io_queue_init(16, &ctx) == 0);

	for (i = 0; i < (int)sizeof(wbuf); i++)
		wbuf[i] = (char)('A' + i % 26);
	io_prep_pwrite(&iocb, fd, wbuf, sizeof(wbuf), 0);
	iocb.data = tag;
	printf("submit pwrite: %d\n", submit1(ctx, &iocb));
	printf("key after submit: %u\n", iocb.key);
	EXPECT(reap_one(ctx, &iocb, "pwrite") == 4096);
	EXPECT(pread(fd, rbuf, sizeof(rbuf), 0) == 4096 && memcmp(rbuf, wbuf, 4096) == 0);

	memset(rbuf, 0, sizeof(rbuf));
	io_prep_pread(&iocb, fd, rbuf, 100, 10);
	printf("submit pread: %d\n", submit1(ctx, &iocb));
	EXPECT(reap_one(ctx, &iocb, "pread") == 100);
	EXPECT(memcmp(rbuf, wbuf + 10, 100) == 0);

	memset(a, 'x', sizeof(a));
	memset(b, 'y', sizeof(b));
	iov[0].iov_base = a;
	iov[0].iov_len = sizeof(a);
	iov[1].iov_base = b;
	iov[1].iov_len = sizeof(b);
	io_prep_pwritev(&iocb, fd, iov, 2, 4096);
	printf("submit pwritev: %d\n", submit1(ctx, &iocb));
	EXPECT(reap_one(ctx, &iocb, "pwritev") == 30);

	iov[0].iov_base = c;
	iov[0].iov_len = 12;
	iov[1].iov_base = c + 12;
	iov[1].iov_len = 18;
	memset(c, 0, sizeof(c));
	io_prep_preadv(&iocb, fd, iov, 2, 4096);
	printf("submit preadv: %d\n", submit1(ctx, &iocb));
	EXPECT(reap_one(ctx, &iocb, "preadv") == 30);
	EXPECT(memcmp(c, a, 10) == 0 && memcmp(c + 10, b, 20) == 0);

	/* RWF_APPEND (0x10): the kernel sees aio_rw_flags when it writes at the end. */
	iov[0].iov_base = (void *)"tail!";
	iov[0].iov_len = 5;
	io_prep_pwritev2(&iocb, fd, iov, 1, 0, 0x10);
	printf("submit pwritev2(RWF_APPEND): %d\n", submit1(ctx, &iocb));
	EXPECT(reap_one(ctx, &iocb, "pwritev2(RWF_APPEND)") == 5);
	EXPECT(fstat(fd, &st) == 0);
	printf("size after append: %lld\n", (long long)st.st_size);
	EXPECT(pread(fd, rbuf, 5, 4126) == 5 && memcmp(rbuf, "tail!", 5) == 0);
	EXPECT(pread(fd, rbuf, 1, 0) == 1 && rbuf[0] == 'A');

	iov[0].iov_base = c;
	iov[0].iov_len = 5;
	io_prep_preadv2(&iocb, fd, iov, 1, 4126, 0);
	printf("submit preadv2(0): %d\n", submit1(ctx, &iocb));
	EXPECT(reap_one(ctx, &iocb, "preadv2(0)") == 5);
	io_prep_preadv2(&iocb, fd, iov, 1, 0, 0x40000000);
	printf("submit preadv2(unknown flag): %d\n", submit1(ctx, &iocb));

	/* io_fsync / io_fdsync callbacks through io_queue_run. */
	calls = 0;
	printf("io_fsync: %d\n", io_fsync(ctx, &iocb, count_callback, fd));
	run_callbacks(ctx, 1);
	EXPECT(last_iocb == &iocb);
	printf("fsync callback: res=%ld res2=%ld\n", last_res, last_res2);
	printf("io_fdsync: %d\n", io_fdsync(ctx, &iocb, count_callback, fd));
	run_callbacks(ctx, 2);
	printf("fdsync callback: res=%ld res2=%ld\n", last_res, last_res2);

	/* io_poll on a pipe that becomes readable. */
	EXPECT(pipe(p) == 0);
	printf("io_poll: %d\n", io_poll(ctx, &iocb, count_callback, p[0], POLLIN));
	EXPECT(write(p[1], "!", 1) == 1);
	run_callbacks(ctx, 3);
	printf("poll callback: res=%#lx res2=%ld\n", (unsigned long)last_res, last_res2);
	EXPECT(last_res & POLLIN);

	/* io_set_eventfd: the eventfd counts the completion. */
	efd = eventfd(0, 0);
	EXPECT(efd >= 0);
	io_prep_pread(&iocb, fd, rbuf, 26, 0);
	io_set_eventfd(&iocb, efd);
	printf("submit pread+eventfd: %d\n", submit1(ctx, &iocb));
	count = 0;
	EXPECT(read(efd, &count, sizeof(count)) == (ssize_t)sizeof(count));
	printf("eventfd count: %llu\n", count);
	EXPECT(reap_one(ctx, &iocb, "pread+eventfd") == 26);

	/* Cancelling a poll that cannot complete. */
	EXPECT(pipe(q) == 0);
	io_prep_poll(&iocb, q[0], POLLIN);
	printf("submit poll: %d\n", submit1(ctx, &iocb));
	r = io_cancel(ctx, &iocb, &ev);
	printf("io_cancel(poll): %d (%s)\n", r, r == -EINPROGRESS ? "-EINPROGRESS" : "other");
	reap_one(ctx, &iocb, "cancelled poll");

	/* io_pgetevents with a signal mask. */
	EXPECT(sigemptyset(&mask) == 0 && sigaddset(&mask, SIGUSR1) == 0);
	io_prep_fsync(&iocb, fd);
	printf("submit fsync: %d\n", submit1(ctx, &iocb));
	ts.tv_sec = 5;
	ts.tv_nsec = 0;
	printf("io_pgetevents(mask): %d\n", io_pgetevents(ctx, 1, 1, &ev, &ts, &mask));
	EXPECT(ev.obj == &iocb);

	/* A short timeout with nothing in flight. */
	ts.tv_sec = 0;
	ts.tv_nsec = 1000000;
	printf("io_getevents(1 ms, idle): %d\n", io_getevents(ctx, 1, 1, &ev, &ts));

	EXPECT(io_queue_release(ctx) == 0);
	close(p[0]);
	close(p[1]);
	close(q[0]);
	close(q[1]);
	close(efd);
	close(fd);
	EXPECT(unlink(path) == 0);
}
#endif

int main(int argc, char **argv)
{
	names();
	context_calls();
#ifndef LIBAIO_TEST_STRICT
	if (argc < 2) {
		printf("usage: %s DIR\n", argv[0]);
		return 2;
	}
	real_io(argv[1]);
#else
	(void)argc;
	(void)argv;
#endif
	printf("done, %d failures\n", failures);
	return failures ? 1 : 0;
}
