/*
 * Shared helpers of the C conformance suite.
 *
 * Every program in ctests/ is linked against the soname libaio.so.1 and run
 * twice by tests/ctests.rs: once with Debian's libaio and once with ours. What
 * a program prints on stdout is its observable behaviour, and the two runs
 * must print the same; CHECK() failures (exit status 1) fail the run outright.
 * Print only what libaio defines: return values, errno, event results. Never
 * addresses, timings or anything else that differs between two runs.
 */
#ifndef CTESTS_COMMON_H
#define CTESTS_COMMON_H

#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <libaio.h>

#define CHECK(cond)                                                                \
	do {                                                                       \
		if (!(cond)) {                                                     \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__,     \
				__LINE__, #cond);                                  \
			exit(1);                                                   \
		}                                                                  \
	} while (0)

/* An observation: stdout, compared between the two libraries. */
#define SAY(...) (printf(__VA_ARGS__), fflush(stdout))

/* errno must come back untouched from every libaio call. */
#define ERRNO_SENTINEL 4242

/* Runs a libaio call with errno set to a sentinel, checks errno is unchanged,
 * prints "label = result" and evaluates to the result. */
#define CALL(label, expr)                                                          \
	({                                                                         \
		errno = ERRNO_SENTINEL;                                            \
		long __r = (long)(expr);                                           \
		if (errno != ERRNO_SENTINEL) {                                     \
			fprintf(stderr, "%s:%d: %s changed errno to %d\n",         \
				__FILE__, __LINE__, label, errno);                 \
			exit(1);                                                   \
		}                                                                  \
		SAY("%s = %s\n", label, errname(__r));                             \
		__r;                                                               \
	})

/* A result as text: a count, or -ENAME for a negative errno. */
static inline const char *errname(long r)
{
	static char buf[64];
	if (r >= 0) {
		snprintf(buf, sizeof(buf), "%ld", r);
		return buf;
	}
	const char *n = strerrorname_np((int)-r);
	snprintf(buf, sizeof(buf), "-%s", n ? n : "E?");
	return buf;
}

static int report_one(struct dl_phdr_info *info, size_t size, void *data)
{
	(void)size;
	(void)data;
	if (info->dlpi_name && strstr(info->dlpi_name, "libaio.so")) {
		char real[4096];
		const char *p = realpath(info->dlpi_name, real) ? real : info->dlpi_name;
		fprintf(stderr, "ctest-loaded: %s\n", p);
	}
	return 0;
}

/* Tells the runner which libaio this process loaded (stderr, not compared). */
__attribute__((constructor)) static void report_loaded_libaio(void)
{
	dl_iterate_phdr(report_one, NULL);
}

/* A scratch file in $CTEST_TMPDIR (or /tmp), unlinked at once. */
static inline int scratch_fd(int flags)
{
	const char *dir = getenv("CTEST_TMPDIR");
	char path[4096];
	snprintf(path, sizeof(path), "%s/ctest-XXXXXX", dir ? dir : "/tmp");
	int fd = mkostemp(path, flags);
	CHECK(fd >= 0);
	unlink(path);
	return fd;
}

#endif
