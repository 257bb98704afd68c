/*
 * churn: a request holds its files from io_submit on, as kernel AIO holds
 * them, whatever the program does with its descriptors afterwards; and the
 * library never closes a descriptor of the program's files.
 *
 * 1. A write, an fsync and a read are submitted on descriptor N of file A;
 *    at once the program closes N and opens file B, which gets number N (or
 *    dup2()s B over N). The write lands in A; B is untouched.
 * 2. A poll on pipe P's read end (number N); N is closed and reused for
 *    another pipe. Writing P completes the poll, which still watches P.
 * 3. A request that signals eventfd E (number M); M is closed and reused for
 *    another eventfd E2 before the request completes. E2 is never signalled.
 * 4. POSIX locks: the program locks a file it opened O_RDWR|O_DIRECT, does
 *    O_DIRECT reads and writes, an fsync, and polls through the library; a
 *    child process still sees the lock (closing any descriptor of the file
 *    would have dropped it, as InnoDB's data files would show).
 */
#include "common.h"
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/wait.h>

static char dir_path[4096];

static int open_file(const char *name, int flags)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/churn-%s", dir_path, name);
	int fd = open(path, flags | O_CREAT, 0600);
	CHECK(fd >= 0);
	return fd;
}

/* O_DIRECT where the file system allows it, else buffered (same results). */
static int open_direct(const char *name)
{
	int fd = open_file(name, O_RDWR | O_DIRECT);
	return fd;
}

static void file_content(const char *label, const char *name)
{
	int fd = open_file(name, O_RDONLY);
	char buf[8192];
	ssize_t n = pread(fd, buf, sizeof(buf), 0);
	int same = n > 0;
	for (ssize_t i = 1; i < n; i++)
		same &= buf[i] == buf[0];
	SAY("%s: %zd bytes%s%c\n", label, n, n > 0 && same ? ", all " : "", n > 0 && same ? buf[0] : ' ');
	close(fd);
}

static void descriptors_reused(io_context_t ctx, int use_dup2)
{
	char name_a[16], name_b[16];
	snprintf(name_a, sizeof(name_a), "a%d", use_dup2);
	snprintf(name_b, sizeof(name_b), "b%d", use_dup2);
	int a = open_direct(name_a);
	CHECK(ftruncate(a, 0) == 0);
	int b_keep = -1;
	char *buf;
	CHECK(posix_memalign((void **)&buf, 4096, 8192) == 0);
	memset(buf, 'A', 4096);
	struct iocb w, s, r, *cbs[3] = { &w, &s, &r };
	io_prep_pwrite(&w, a, buf, 4096, 0);
	io_prep_fsync(&s, a);
	io_prep_pread(&r, a, buf + 4096, 4096, 0);
	CALL(use_dup2 ? "io_submit(write, fsync, read of A; then dup2(B, N))"
		      : "io_submit(write, fsync, read of A; then close(N), open(B) = N)",
	     io_submit(ctx, 3, cbs));
	if (use_dup2) {
		b_keep = open_file(name_b, O_RDWR | O_TRUNC);
		CHECK(dup2(b_keep, a) == a);
	} else {
		close(a);
		int b = open_file(name_b, O_RDWR | O_TRUNC);
		SAY("  B got the same number: %d\n", b == a);
	}
	struct io_event ev[3];
	reap_exactly(ctx, ev, 3);
	for (int i = 0; i < 3; i++)
		if (ev[i].obj == &w)
			SAY("  write: %s\n", resname(ev[i].res));
	for (int i = 0; i < 3; i++)
		if (ev[i].obj == &s)
			SAY("  fsync: %s\n", resname(ev[i].res));
	file_content("  file A", name_a);
	file_content("  file B", name_b);
	close(a);
	if (b_keep >= 0)
		close(b_keep);
	free(buf);
}

static void poll_on_reused_number(io_context_t ctx)
{
	int p[2], q[2];
	CHECK(pipe(p) == 0);
	struct iocb cb, *cbs[1] = { &cb };
	io_prep_poll(&cb, p[0], POLLIN);
	CALL("io_submit(poll on pipe P's read end N)", io_submit(ctx, 1, cbs));
	int n = p[0];
	close(p[0]);
	CHECK(pipe(q) == 0);
	SAY("  another pipe got number N: %d\n", q[0] == n || q[1] == n);
	struct timespec t = ms_timeout(100);
	struct io_event ev;
	CALL("  io_getevents(nothing written yet, 100 ms)", io_getevents(ctx, 1, 1, &ev, &t));
	CHECK(write(q[1], "y", 1) == 1); /* the new pipe: not the one polled */
	t = ms_timeout(100);
	CALL("  io_getevents(the new pipe written, 100 ms)", io_getevents(ctx, 1, 1, &ev, &t));
	CHECK(write(p[1], "x", 1) == 1); /* the pipe the poll holds */
	t = ms_timeout(5000);
	CALL("  io_getevents(pipe P written)", io_getevents(ctx, 1, 1, &ev, &t));
	SAY("  poll: %s\n", resname(ev.res));
	close(p[1]);
	close(q[0]);
	close(q[1]);
}

static void eventfd_reused(io_context_t ctx)
{
	int e = eventfd(0, EFD_NONBLOCK);
	CHECK(e >= 0);
	int p[2];
	CHECK(pipe(p) == 0);
	struct iocb cb, *cbs[1] = { &cb };
	io_prep_poll(&cb, p[0], POLLIN);
	io_set_eventfd(&cb, e);
	CALL("io_submit(poll signalling eventfd E, number M)", io_submit(ctx, 1, cbs));
	int m = e;
	close(e);
	int e2 = eventfd(0, EFD_NONBLOCK);
	SAY("  eventfd E2 got number M: %d\n", e2 == m);
	CHECK(write(p[1], "x", 1) == 1);
	struct io_event ev;
	struct timespec t = ms_timeout(5000);
	CALL("  io_getevents", io_getevents(ctx, 1, 1, &ev, &t));
	sleep_ms(20);
	uint64_t v = 0;
	SAY("  E2 signalled: %d\n", read(e2, &v, 8) == 8);
	close(e2);
	close(p[0]);
	close(p[1]);
}

/* fsync and fdatasync of a file with much dirty data (they take a while),
 * then its number closed and taken by another file: the syncs are of the
 * file the iocbs named when submitted. */
static void syncs_outlive_the_number(io_context_t ctx)
{
	int fd = open_file("dirty", O_RDWR | O_TRUNC);
	write_dirty(fd, 'D', 64);
	struct iocb cb[2], *cbs[2] = { &cb[0], &cb[1] };
	io_prep_fsync(&cb[0], fd);
	io_prep_fdsync(&cb[1], fd);
	CALL("io_submit(fsync, fdatasync of 64 MiB dirty; then close(N), pipe() = N)", io_submit(ctx, 2, cbs));
	close(fd);
	int p[2];
	CHECK(pipe(p) == 0);
	SAY("  the pipe got the same number: %d\n", p[0] == fd);
	struct io_event ev[2];
	reap_exactly(ctx, ev, 2);
	for (int k = 0; k < 2; k++)
		for (int i = 0; i < 2; i++)
			if (ev[i].obj == &cb[k])
				SAY("  %s: %s\n", k ? "fdatasync" : "fsync", resname(ev[i].res));
	close(p[0]);
	close(p[1]);
}

static void locks_kept(io_context_t ctx)
{
	int fd = open_direct("locked");
	CHECK(ftruncate(fd, 65536) == 0);
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };
	CALL("fcntl(F_SETLK, write lock on the whole file)", fcntl(fd, F_SETLK, &fl));
	char *buf;
	CHECK(posix_memalign((void **)&buf, 4096, 16384) == 0);
	memset(buf, 'L', 16384);
	int p[2];
	CHECK(pipe(p) == 0);
	struct iocb cb[5], *cbs[5];
	io_prep_pwrite(&cb[0], fd, buf, 4096, 0);
	io_prep_pread(&cb[1], fd, buf + 4096, 4096, 8192);
	io_prep_fsync(&cb[2], fd);
	io_prep_fdsync(&cb[3], fd);
	io_prep_poll(&cb[4], p[0], POLLIN);
	for (int i = 0; i < 5; i++)
		cbs[i] = &cb[i];
	CALL("io_submit(O_DIRECT write, read, fsync, fdatasync, poll)", io_submit(ctx, 5, cbs));
	CHECK(write(p[1], "x", 1) == 1);
	struct io_event ev[5];
	reap_exactly(ctx, ev, 5);
	sleep_ms(20); /* whatever the engine closes, it has closed by now */
	pid_t child = fork();
	CHECK(child >= 0);
	if (child == 0) {
		int cfd = open_file("locked", O_RDWR);
		struct flock probe = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
		if (fcntl(cfd, F_GETLK, &probe) != 0)
			_exit(2);
		_exit(probe.l_type == F_WRLCK && probe.l_pid == getppid() ? 0 : 1);
	}
	int status;
	CHECK(waitpid(child, &status, 0) == child);
	SAY("  the lock is still held (seen from a child): %d\n", WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(fd);
	close(p[0]);
	close(p[1]);
	free(buf);
}

int main(void)
{
	const char *d = getenv("CTEST_TMPDIR");
	snprintf(dir_path, sizeof(dir_path), "%s", d ? d : "/tmp");
	io_context_t ctx = 0;
	CALL("io_setup", io_setup(32, &ctx));
	descriptors_reused(ctx, 0);
	descriptors_reused(ctx, 1);
	poll_on_reused_number(ctx);
	eventfd_reused(ctx);
	syncs_outlive_the_number(ctx);
	locks_kept(ctx);
	CALL("io_destroy", io_destroy(ctx));
	return 0;
}
