/*
 * Shared by the programs in ctests/differ/: cases where our libaio and
 * libaio 0.3.113 deliberately behave differently, so they cannot be in the
 * side-by-side suite. Each program is run against both libraries by
 * tests/differences.rs, which holds what each library must do (for Debian's,
 * typically: killed by SIGSEGV at the marked call).
 */
#ifndef CTESTS_DIFFER_H
#define CTESTS_DIFFER_H

#include "common.h"
#include <sys/resource.h>

/* No core files from the expected crashes. */
__attribute__((constructor)) static void no_core_files(void)
{
	struct rlimit none = { 0, 0 };
	setrlimit(RLIMIT_CORE, &none);
}

#endif
