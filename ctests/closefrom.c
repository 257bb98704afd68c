/*
 * closefrom: a program that closes every descriptor it does not know of
 * (closefrom(3), close_range(3, ~0), as daemons do after fork, or before
 * running untrusted code) closes whatever a library has open. Kernel AIO has
 * no descriptor to lose. Afterwards the program opens new files, which take
 * the freed numbers, and goes on using the same context and a new one: every
 * request must work as before, nothing may hang or spin, and no byte may
 * land in the new files that the program did not write there.
 * It is done twice: once at once, once after the library's threads have
 * gone idle (they leave after 2 s); the second time the new context is read
 * straight from its ring, with no io_getevents and no eventfd, as fio's
 * userspace_reap reads it.
 * A third run closes the descriptors while requests are in flight: long
 * O_DIRECT reads, each signalling an eventfd, of a file the program keeps
 * (closefrom(5), the file and the eventfd at 3 and 4); then a poll on a new
 * socket that waits, one more such read first. The reads' events must reach the ring with no library
 * call, the eventfd must count each, and nothing may reach the socket.
 */
#include "common.h"
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

static char path[4096];

/* One of each kind of request, reaped: O_DIRECT (or buffered) read, buffered
 * read, a poll that waits, and a read that signals an eventfd. */
static void round_of_requests(io_context_t ctx, const char *label)
{
	int dfd = open(path, O_RDONLY | O_DIRECT);
	if (dfd < 0)
		dfd = open(path, O_RDONLY);
	int bfd = open(path, O_RDONLY);
	int p[2];
	CHECK(dfd >= 0 && bfd >= 0 && pipe(p) == 0);
	int efd = eventfd(0, EFD_NONBLOCK);
	CHECK(efd >= 0);
	char *buf;
	CHECK(posix_memalign((void **)&buf, 4096, 3 * 4096) == 0);
	struct iocb cb[4], *cbs[4];
	io_prep_pread(&cb[0], dfd, buf, 4096, 0);
	io_prep_pread(&cb[1], bfd, buf + 4096, 100, 4096);
	io_prep_poll(&cb[2], p[0], POLLIN);
	io_prep_pread(&cb[3], dfd, buf + 8192, 4096, 4096);
	io_set_eventfd(&cb[3], efd);
	for (int i = 0; i < 4; i++)
		cbs[i] = &cb[i];
	SAY("%s\n", label);
	CALL("  io_submit(4)", io_submit(ctx, 4, cbs));
	CHECK(write(p[1], "x", 1) == 1);
	struct io_event ev[4];
	reap_exactly(ctx, ev, 4);
	for (int k = 0; k < 4; k++)
		for (int i = 0; i < 4; i++)
			if (ev[i].obj == &cb[k])
				SAY("  request %d: %s\n", k, resname(ev[i].res));
	uint64_t v = 0;
	sleep_ms(10);
	SAY("  eventfd signalled: %d\n", read(efd, &v, 8) == 8 && v == 1);
	SAY("  data: %c %c %c\n", buf[0], buf[4096], buf[8192]);
	close(dfd);
	close(bfd);
	close(p[0]);
	close(p[1]);
	close(efd);
	free(buf);
}

/* An O_DIRECT (or buffered) read whose event is awaited by reading the ring
 * at the io_context_t address, never calling the library. */
static void read_from_the_ring(io_context_t ctx)
{
	int dfd = open(path, O_RDONLY | O_DIRECT);
	if (dfd < 0)
		dfd = open(path, O_RDONLY);
	CHECK(dfd >= 0);
	char *buf;
	CHECK(posix_memalign((void **)&buf, 4096, 4096) == 0);
	struct iocb cb, *cbs[1] = { &cb };
	io_prep_pread(&cb, dfd, buf, 4096, 4096);
	CALL("  io_submit(a read, its event read from the ring)", io_submit(ctx, 1, cbs));
	volatile struct ctest_aio_ring *r = (void *)ctx;
	long long deadline = now_ms() + 10000;
	while (r->head == r->tail && now_ms() < deadline)
		;
	SAY("  the event is in the ring: %d\n", r->head != r->tail);
	struct io_event *ev = (struct io_event *)((char *)ctx + sizeof(struct ctest_aio_ring));
	SAY("  its result: %s\n", r->head != r->tail ? resname(ev[r->head].res) : "none");
	r->head = (r->head + 1) % r->nr;
	close(dfd);
	free(buf);
}

static int run(int idle_first)
{
	alarm(60); /* a hang is a failure */
	const char *dir = getenv("CTEST_TMPDIR");
	snprintf(path, sizeof(path), "%s/closefrom-data", dir ? dir : "/tmp");
	int wfd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK(wfd >= 0);
	fill_file(wfd, 'p', 4096, 0);
	fill_file(wfd, 'q', 4096, 4096);
	fsync(wfd);
	close(wfd);
	io_context_t ctx = 0;
	CALL("io_setup", io_setup(32, &ctx));
	round_of_requests(ctx, "before closefrom");
	if (idle_first)
		sleep_ms(2500); /* the library's threads leave */
	long closed = syscall(SYS_close_range, 3, ~0U, 0);
	SAY("close_range(3, ~0) = %ld\n", closed);
	/* New files take the numbers just freed. */
	char victim_path[4200];
	snprintf(victim_path, sizeof(victim_path), "%s/closefrom-victim", dir ? dir : "/tmp");
	int victim = open(victim_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	int vp[2];
	CHECK(victim >= 0 && pipe(vp) == 0);
	int vefd = eventfd(0, EFD_NONBLOCK);
	int vsock[2];
	CHECK(vefd >= 0 && socketpair(AF_UNIX, SOCK_SEQPACKET, 0, vsock) == 0);
	/* A child forked now keeps the program's new descriptors (the library
	 * closes its own in a child, and only those). */
	pid_t kid = fork();
	CHECK(kid >= 0);
	if (kid == 0) {
		int fds[] = { victim, vp[0], vp[1], vefd, vsock[0], vsock[1] };
		int kept = 1;
		for (unsigned i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
			kept &= fcntl(fds[i], F_GETFD) >= 0;
		_exit(kept ? 0 : 1);
	}
	int kst;
	CHECK(waitpid(kid, &kst, 0) == kid);
	SAY("a forked child has the program's new descriptors: %d\n", WIFEXITED(kst) && WEXITSTATUS(kst) == 0);
	round_of_requests(ctx, "after closefrom, same context");
	io_context_t ctx2 = 0;
	CALL("io_setup(a new context)", io_setup(32, &ctx2));
	round_of_requests(ctx2, "after closefrom, new context");
	read_from_the_ring(ctx2);
	/* Nothing of the library's landed in the program's new files. */
	struct stat st;
	CHECK(fstat(victim, &st) == 0);
	SAY("victim file size: %lld\n", (long long)st.st_size);
	char c;
	int fl = fcntl(vp[0], F_GETFL);
	fcntl(vp[0], F_SETFL, fl | O_NONBLOCK);
	SAY("victim pipe has data: %d\n", read(vp[0], &c, 1) == 1);
	uint64_t v;
	SAY("victim eventfd signalled: %d\n", read(vefd, &v, 8) == 8);
	char msg[64];
	SAY("victim sockets have data: %d %d\n", recv(vsock[0], msg, sizeof(msg), MSG_DONTWAIT) > 0,
	    recv(vsock[1], msg, sizeof(msg), MSG_DONTWAIT) > 0);
	CALL("io_destroy", io_destroy(ctx));
	CALL("io_destroy(the new context)", io_destroy(ctx2));
	unlink(path);
	unlink(victim_path);
	return 0;
}

#define INFLIGHT 8
#define CHUNK (8 << 20)

static int in_flight(void)
{
	alarm(60); /* a hang is a failure */
	const char *dir = getenv("CTEST_TMPDIR");
	snprintf(path, sizeof(path), "%s/closefrom-big", dir ? dir : "/tmp");
	/* Numbers 3 and 4 are the program's before the library opens any. */
	int wfd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK(wfd >= 0);
	fill_file(wfd, 'b', (size_t)INFLIGHT * CHUNK, 0);
	CHECK(fsync(wfd) == 0);
	close(wfd);
	int dfd = open(path, O_RDONLY | O_DIRECT);
	if (dfd < 0)
		dfd = open(path, O_RDONLY);
	int efd = eventfd(0, EFD_NONBLOCK);
	CHECK(dfd >= 0 && efd >= 0);
	if (dfd != 3)
		CHECK(dup2(dfd, 3) == 3 && close(dfd) == 0);
	if (efd != 4)
		CHECK(dup2(efd, 4) == 4 && close(efd) == 0);
	unlink(path);
	io_context_t ctx = 0;
	CALL("io_setup", io_setup(32, &ctx));
	static struct iocb cb[INFLIGHT];
	struct iocb *cbs[INFLIGHT];
	char *buf;
	CHECK(posix_memalign((void **)&buf, 4096, (size_t)(INFLIGHT + 1) * CHUNK) == 0);
	/* Defined for valgrind, which cannot see kernel AIO write it. */
	memset(buf, 0, (size_t)(INFLIGHT + 1) * CHUNK);
	for (int i = 0; i < INFLIGHT; i++) {
		io_prep_pread(&cb[i], 3, buf + (size_t)i * CHUNK, CHUNK, (long long)i * CHUNK);
		io_set_eventfd(&cb[i], 4);
		cbs[i] = &cb[i];
	}
	CALL("io_submit(8 reads of 8 MiB, each with an eventfd)", io_submit(ctx, INFLIGHT, cbs));
	long closed = syscall(SYS_close_range, 5, ~0U, 0);
	SAY("close_range(5, ~0) = %ld\n", closed);
	/* One more read with the eventfd, submitted after the close. */
	static struct iocb late;
	struct iocb *lates[1] = { &late };
	io_prep_pread(&late, 3, buf + (size_t)INFLIGHT * CHUNK, CHUNK, 0);
	io_set_eventfd(&late, 4);
	CALL("io_submit(one more read with the eventfd)", io_submit(ctx, 1, lates));
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
	struct iocb pc, *pcs[1] = { &pc };
	io_prep_poll(&pc, sv[0], POLLIN); /* waits: nobody writes to sv[1] */
	CALL("io_submit(a poll on a new socket)", io_submit(ctx, 1, pcs));
	/* Read from the ring, as fio's userspace_reap does. */
	struct ctest_aio_ring *r = (struct ctest_aio_ring *)ctx;
	struct io_event *ev = (struct io_event *)(r + 1);
	long long deadline = now_ms() + 20000;
	int got = 0, right = 0;
	while (got < INFLIGHT + 1 && now_ms() < deadline) {
		unsigned head = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
		if (head == __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE)) {
			sleep_ms(1);
			continue;
		}
		right += ev[head].res == CHUNK;
		got++;
		__atomic_store_n(&r->head, (head + 1) % r->nr, __ATOMIC_RELEASE);
	}
	SAY("  events in the ring within 20 s: %d, reads of %d bytes: %d\n", got, CHUNK, right);
	sleep_ms(100);
	uint64_t v = 0;
	SAY("  eventfd counted: %d\n", read(4, &v, 8) == 8 ? (int)v : 0);
	char junk[64];
	SAY("  bytes that reached the program's socket: %d\n", (int)(read(sv[1], junk, sizeof(junk)) > 0));
	SAY("  data: %c %c\n", buf[0], buf[(size_t)INFLIGHT * CHUNK - 1]);
	struct io_event pev;
	CALL("io_cancel(the poll)", io_cancel(ctx, &pc, &pev));
	struct timespec t = ms_timeout(5000);
	CALL("io_getevents(the poll's event)", io_getevents(ctx, 1, 1, &pev, &t));
	CALL("io_destroy", io_destroy(ctx));
	free(buf);
	return 0;
}

int main(void)
{
	/* Each run in a child process of its own: close_range closes all. */
	for (int mode = 0; mode < 3; mode++) {
		SAY("-- %s\n", mode == 2 ? "with requests in flight" :
			       mode ? "after the library's threads went idle" : "at once");
		pid_t child = fork();
		CHECK(child >= 0);
		if (child == 0)
			_exit(mode == 2 ? in_flight() : run(mode));
		int status;
		CHECK(waitpid(child, &status, 0) == child);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	return 0;
}
