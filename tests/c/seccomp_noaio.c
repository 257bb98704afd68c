/*
 * seccomp_noaio: runs a program in an environment without kernel AIO, the way
 * a container's seccomp profile can leave it: a seccomp filter makes every
 * io_* system call fail with ENOSYS (as on a kernel built without CONFIG_AIO),
 * then the program is executed with the filter in force.
 *
 * Usage: seccomp_noaio [--errno=ENOSYS|--errno=EPERM] [--no-io-uring] PROGRAM [ARGUMENT...]
 * (--errno=EPERM answers EPERM instead, as a systemd unit's
 * SystemCallErrorNumber=EPERM or some container profiles do; --no-io-uring
 * refuses io_uring_setup, io_uring_enter and io_uring_register the same way,
 * as Docker's default profile does.)
 * Exit status: PROGRAM's, or 126 if the filter cannot be installed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#if !defined(__x86_64__)
#error "seccomp_noaio checks the x86_64 system-call ABI only"
#endif

/* Jumps: on a match, skip to the ENOSYS return; otherwise fall through. */
#define DENY_NR(nr, to_enosys) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), (to_enosys), 0)

int main(int argc, char **argv)
{
	int err = ENOSYS;
	if (argc > 1 && (strcmp(argv[1], "--errno=EPERM") == 0 || strcmp(argv[1], "--errno=ENOSYS") == 0)) {
		err = strcmp(argv[1], "--errno=EPERM") == 0 ? EPERM : ENOSYS;
		argv++;
		argc--;
	}
	/* A number no call has: the io_uring entries then never match. */
	unsigned uring_setup = 0x3ffffff0, uring_enter = 0x3ffffff0, uring_register = 0x3ffffff0;
	if (argc > 1 && strcmp(argv[1], "--no-io-uring") == 0) {
		uring_setup = __NR_io_uring_setup;
		uring_enter = __NR_io_uring_enter;
		uring_register = __NR_io_uring_register;
		argv++;
		argc--;
	}
	if (argc < 2) {
		fprintf(stderr, "usage: seccomp_noaio [--errno=ENOSYS|--errno=EPERM] [--no-io-uring] PROGRAM [ARGUMENT...]\n");
		return 126;
	}
	struct sock_filter code[] = {
		/* 0: only the x86_64 ABI is judged; x32 and i386 calls are killed. */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
		/* 3: the system-call number; x32 numbers have bit 30 set. */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 10, 0),
		DENY_NR(__NR_io_setup, 10),
		DENY_NR(__NR_io_destroy, 9),
		DENY_NR(__NR_io_submit, 8),
		DENY_NR(__NR_io_cancel, 7),
		DENY_NR(__NR_io_getevents, 6),
		DENY_NR(__NR_io_pgetevents, 5),
		DENY_NR(uring_setup, 4),
		DENY_NR(uring_enter, 3),
		DENY_NR(uring_register, 2),
		/* 14: everything else runs. */
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		/* 15: x32 calls. */
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
		/* 16: the refused calls. */
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((unsigned)err & SECCOMP_RET_DATA)),
	};
	struct sock_fprog prog = {
		.len = (unsigned short)(sizeof(code) / sizeof(code[0])),
		.filter = code,
	};
	/* Unprivileged processes may install a filter once they give up gaining privileges. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		fprintf(stderr, "seccomp_noaio: PR_SET_NO_NEW_PRIVS: %s\n", strerror(errno));
		return 126;
	}
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0) {
		fprintf(stderr, "seccomp_noaio: PR_SET_SECCOMP: %s\n", strerror(errno));
		return 126;
	}
	execvp(argv[1], argv + 1);
	fprintf(stderr, "seccomp_noaio: cannot run %s: %s\n", argv[1], strerror(errno));
	return 127;
}
