/* Error returns of every entry point on bad input: -errno, errno untouched. */
#include "common.h"

int main(void)
{
	io_context_t ctx = 0, bad = (io_context_t)0x1000;
	struct io_event ev[4];
	struct iocb cb, *cbs[1] = { &cb };
	struct timespec zero = { 0, 0 };

	CALL("io_setup(-1)", io_setup(-1, &ctx));
	CALL("io_setup(0)", io_setup(0, &ctx));
	CALL("io_setup(ctxp=NULL)", io_setup(1, NULL));
	CALL("io_queue_init(0)", io_queue_init(0, &ctx));
	CHECK(io_setup(4, &ctx) == 0);
	io_context_t again = ctx;
	CALL("io_setup(*ctxp!=0)", io_setup(4, &again));

	CALL("io_submit(bad ctx)", io_submit(bad, 1, cbs));
	CALL("io_submit(nr<0)", io_submit(ctx, -1, cbs));
	CALL("io_submit(nr=0)", io_submit(ctx, 0, cbs));
	CALL("io_submit(iocbpp=NULL)", io_submit(ctx, 1, NULL));
	io_prep_pread(&cb, -1, NULL, 0, 0);
	CALL("io_submit(bad fd)", io_submit(ctx, 1, cbs));

	CALL("io_getevents(min>nr)", io_getevents(ctx, 2, 1, ev, NULL));
	CALL("io_getevents(nr<0)", io_getevents(ctx, 0, -1, ev, NULL));
	CALL("io_getevents(empty, zero timeout)", io_getevents(ctx, 1, 4, ev, &zero));
	CALL("io_getevents(NULL ctx)", io_getevents(NULL, 1, 4, ev, &zero));

	CALL("io_destroy", io_destroy(ctx));
	CALL("io_destroy(again)", io_destroy(ctx));
	CALL("io_destroy(NULL)", io_destroy(NULL));
	return 0;
}
