/*
 * In a forked child, io_getevents on the parent's context with a {0,0}
 * timeout while the ring is empty. The ring is still mapped in the child,
 * and libaio 0.3.113 answers 0 from it without asking the kernel. Ours
 * forgets every context at fork (a child has none in the kernel), so it asks
 * the kernel, which answers -EINVAL as it does for every other call the
 * child makes on that context (see ctests/fork.c). io_queue_run, which reaps
 * with a {0,0} timeout, follows.
 */
#include "differ.h"
#include <sys/wait.h>

int main(void)
{
	io_context_t ctx = 0;
	CHECK(io_setup(4, &ctx) == 0);
	fflush(stdout);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		struct io_event ev;
		struct timespec zero = { 0, 0 };
		CALL("child: io_getevents(parent's ctx, empty, {0,0})", io_getevents(ctx, 1, 1, &ev, &zero));
		CALL("child: io_pgetevents(parent's ctx, empty, {0,0})", io_pgetevents(ctx, 1, 1, &ev, &zero, NULL));
		CALL("child: io_queue_run(parent's ctx, empty)", io_queue_run(ctx));
		CALL("child: io_queue_wait(parent's ctx, {0,0})", io_queue_wait(ctx, &zero));
		exit(0);
	}
	int st;
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CALL("parent: io_destroy", io_destroy(ctx));
	return 0;
}
