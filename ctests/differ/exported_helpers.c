/*
 * The libaio.h inline helpers that ours also exports as functions (version
 * node LIBAIO_RS_1, for FFI callers): libaio 0.3.113 has no such symbols.
 * Where they exist, each must fill an iocb exactly as the inline helper does.
 */
#include "differ.h"
#include <poll.h>

typedef void (*prep_rw_fn)(struct iocb *, int, void *, size_t, long long);
typedef void (*prep_v_fn)(struct iocb *, int, const struct iovec *, int, long long);
typedef void (*prep_v2_fn)(struct iocb *, int, const struct iovec *, int, long long, int);
typedef void (*prep_poll_fn)(struct iocb *, int, int);
typedef void (*prep_fd_fn)(struct iocb *, int);
typedef void (*set_cb_fn)(struct iocb *, io_callback_t);
typedef void (*set_efd_fn)(struct iocb *, int);
typedef int (*submit_poll_fn)(io_context_t, struct iocb *, io_callback_t, int, int);
typedef int (*submit_fd_fn)(io_context_t, struct iocb *, io_callback_t, int);

static void *lib;

static void *find(const char *name)
{
	void *f = dlvsym(lib, name, "LIBAIO_RS_1");
	SAY("%s: %s", name, f ? "exported" : "absent");
	return f;
}

static void same(const struct iocb *a, const struct iocb *b)
{
	SAY(", same iocb as the inline helper: %s\n", memcmp(a, b, sizeof(*a)) == 0 ? "yes" : "no");
}

static void cb_fn(io_context_t c, struct iocb *cb, long res, long res2)
{
	(void)c;
	(void)cb;
	(void)res;
	(void)res2;
}

int main(void)
{
	lib = dlopen("libaio.so.1", RTLD_NOW | RTLD_NOLOAD);
	CHECK(lib != NULL);
	static char buf[64];
	struct iovec iov[2] = { { buf, 32 }, { buf + 32, 32 } };
	struct iocb a, b;
	void *f;

	const char *rw[] = { "io_prep_pread", "io_prep_pwrite" };
	for (int i = 0; i < 2; i++) {
		if ((f = find(rw[i]))) {
			memset(&a, 0x5a, sizeof(a));
			memset(&b, 0xa5, sizeof(b));
			((prep_rw_fn)f)(&a, 7, buf, 64, 1LL << 33);
			(i ? io_prep_pwrite : io_prep_pread)(&b, 7, buf, 64, 1LL << 33);
			same(&a, &b);
		} else {
			SAY("\n");
		}
	}
	const char *v[] = { "io_prep_preadv", "io_prep_pwritev" };
	for (int i = 0; i < 2; i++) {
		if ((f = find(v[i]))) {
			memset(&a, 0x5a, sizeof(a));
			memset(&b, 0xa5, sizeof(b));
			((prep_v_fn)f)(&a, 7, iov, 2, 4096);
			(i ? io_prep_pwritev : io_prep_preadv)(&b, 7, iov, 2, 4096);
			same(&a, &b);
		} else {
			SAY("\n");
		}
	}
	const char *v2[] = { "io_prep_preadv2", "io_prep_pwritev2" };
	for (int i = 0; i < 2; i++) {
		if ((f = find(v2[i]))) {
			memset(&a, 0x5a, sizeof(a));
			memset(&b, 0xa5, sizeof(b));
			((prep_v2_fn)f)(&a, 7, iov, 2, 4096, RWF_NOWAIT | RWF_HIPRI);
			(i ? io_prep_pwritev2 : io_prep_preadv2)(&b, 7, iov, 2, 4096, RWF_NOWAIT | RWF_HIPRI);
			same(&a, &b);
		} else {
			SAY("\n");
		}
	}
	if ((f = find("io_prep_poll"))) {
		memset(&a, 0x5a, sizeof(a));
		memset(&b, 0xa5, sizeof(b));
		((prep_poll_fn)f)(&a, 7, POLLIN | POLLPRI);
		io_prep_poll(&b, 7, POLLIN | POLLPRI);
		same(&a, &b);
	} else {
		SAY("\n");
	}
	const char *fdn[] = { "io_prep_fsync", "io_prep_fdsync" };
	for (int i = 0; i < 2; i++) {
		if ((f = find(fdn[i]))) {
			memset(&a, 0x5a, sizeof(a));
			memset(&b, 0xa5, sizeof(b));
			((prep_fd_fn)f)(&a, 7);
			(i ? io_prep_fdsync : io_prep_fsync)(&b, 7);
			same(&a, &b);
		} else {
			SAY("\n");
		}
	}
	if ((f = find("io_set_callback"))) {
		io_prep_fsync(&a, 7);
		io_prep_fsync(&b, 7);
		((set_cb_fn)f)(&a, cb_fn);
		io_set_callback(&b, cb_fn);
		same(&a, &b);
	} else {
		SAY("\n");
	}
	if ((f = find("io_set_eventfd"))) {
		io_prep_pread(&a, 7, buf, 64, 0);
		io_prep_pread(&b, 7, buf, 64, 0);
		((set_efd_fn)f)(&a, 9);
		io_set_eventfd(&b, 9);
		same(&a, &b);
	} else {
		SAY("\n");
	}

	/* The submitting helpers, on a real context. */
	io_context_t ctx = 0;
	CHECK(io_setup(4, &ctx) == 0);
	int p[2];
	CHECK(pipe(p) == 0);
	CHECK(write(p[1], "x", 1) == 1);
	struct io_event ev;
	if ((f = find("io_poll"))) {
		int r = ((submit_poll_fn)f)(ctx, &a, cb_fn, p[0], POLLIN);
		reap_exactly(ctx, &ev, 1);
		SAY(" = %s, event res=0x%lx data-ok=%d\n", errname(r), ev.res, ev.data == (void *)cb_fn);
	} else {
		SAY("\n");
	}
	int fd = scratch_fd(O_RDWR);
	const char *sub[] = { "io_fsync", "io_fdsync" };
	for (int i = 0; i < 2; i++) {
		if ((f = find(sub[i]))) {
			int r = ((submit_fd_fn)f)(ctx, &a, cb_fn, fd);
			reap_exactly(ctx, &ev, 1);
			SAY(" = %s, opcode %d, event res=%s\n", errname(r), a.aio_lio_opcode, resname(ev.res));
		} else {
			SAY("\n");
		}
	}
	CHECK(io_destroy(ctx) == 0);
	return 0;
}
