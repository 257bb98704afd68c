/*
 * io_queue_run on a completion whose iocb has no callback (data == NULL).
 * libaio 0.3.113 calls it anyway, jumping to address 0; ours skips it and
 * goes on reaping.
 */
#include "differ.h"

static int calls;
static void count(io_context_t ctx, struct iocb *cb, long res, long res2)
{
	(void)ctx;
	(void)cb;
	(void)res;
	(void)res2;
	calls++;
}

int main(void)
{
	io_context_t ctx = 0;
	CHECK(io_queue_init(4, &ctx) == 0);
	int fd = scratch_fd(O_RDWR);
	fill_file(fd, 'n', 4096, 0);
	static char buf[2][64];
	struct iocb cb[2], *cbs[2] = { &cb[0], &cb[1] };
	io_prep_pread(&cb[0], fd, buf[0], 64, 0); /* data stays NULL */
	io_prep_pread(&cb[1], fd, buf[1], 64, 0);
	io_set_callback(&cb[1], count);
	CHECK(io_submit(ctx, 2, cbs) == 2);
	wait_ring_ready(ctx, 2);
	SAY("calling io_queue_run with a NULL callback first\n");
	CALL("io_queue_run", io_queue_run(ctx));
	SAY("callbacks called: %d\n", calls);
	CALL("io_queue_release", io_queue_release(ctx));
	return 0;
}
