/*
 * A context value that no io_setup returned. libaio 0.3.113's io_getevents
 * and io_pgetevents read the ring header at any non-NULL context (to answer a
 * {0,0} timeout on an empty ring without a system call), so an unmapped
 * address crashes them; ours reads only rings it set up itself and hands
 * anything else to the kernel, which answers -EINVAL.
 */
#include "differ.h"

int main(void)
{
	io_context_t garbage = (io_context_t)0x1000; /* below mmap_min_addr: never mapped */
	struct io_event ev;
	struct timespec zero = { 0, 0 };
	SAY("calling io_getevents(garbage ctx, {0,0})\n");
	CALL("io_getevents(garbage ctx, {0,0})", io_getevents(garbage, 1, 1, &ev, &zero));
	CALL("io_getevents(garbage ctx, NULL)", io_getevents(garbage, 1, 1, &ev, NULL));
	CALL("io_pgetevents(garbage ctx, {0,0})", io_pgetevents(garbage, 1, 1, &ev, &zero, NULL));
	CALL("io_queue_run(garbage ctx)", io_queue_run(garbage));
	CALL("io_queue_wait(garbage ctx)", io_queue_wait(garbage, NULL));
	return 0;
}
