/*
 * A context used after io_destroy. The kernel unmaps the ring when the
 * context is destroyed; libaio 0.3.113's io_getevents reads the ring header
 * first and crashes on the unmapped page, ours knows the context is gone and
 * lets the kernel answer -EINVAL.
 */
#include "differ.h"

int main(void)
{
	io_context_t ctx = 0;
	struct io_event ev;
	struct timespec zero = { 0, 0 };
	CHECK(io_setup(4, &ctx) == 0);
	CALL("io_destroy", io_destroy(ctx));
	SAY("calling io_getevents(destroyed ctx, {0,0})\n");
	CALL("io_getevents(destroyed ctx, {0,0})", io_getevents(ctx, 1, 1, &ev, &zero));
	CALL("io_getevents(destroyed ctx, NULL)", io_getevents(ctx, 1, 1, &ev, NULL));
	CALL("io_pgetevents(destroyed ctx, NULL)", io_pgetevents(ctx, 1, 1, &ev, NULL, NULL));
	CALL("io_queue_run(destroyed ctx)", io_queue_run(ctx));
	return 0;
}
