/*
 * no_library_threads: an LD_PRELOAD shim that makes pthread_create fail with
 * EAGAIN for every thread the libaio library itself would start (its start
 * routine lies in libaio.so), as RLIMIT_NPROC or a pids cgroup would, while
 * the program's own threads start as usual. A program can lift and restore
 * the refusal through the variable refuse_library_threads (dlsym). Used by
 * tests/sh/thread_failure.sh.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>

int refuse_library_threads = 1;
int library_threads_refused;

typedef int (*create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

int pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*start)(void *), void *arg)
{
	static create_fn real;
	if (!real)
		real = (create_fn)dlsym(RTLD_NEXT, "pthread_create");
	Dl_info info;
	if (__atomic_load_n(&refuse_library_threads, __ATOMIC_RELAXED) && dladdr((void *)start, &info) &&
	    info.dli_fname && strstr(info.dli_fname, "libaio.so")) {
		__atomic_add_fetch(&library_threads_refused, 1, __ATOMIC_RELAXED);
		return EAGAIN;
	}
	return real(t, attr, start, arg);
}
