/*
 * engine_of: sets up one context and prints what the library says of it:
 *   version <libaio_rs_version()>
 *   engine <io_context_engine(ctx)>          (or "io_setup -ERRNO")
 *   destroyed <io_context_engine after io_destroy, "(null)" expected>
 *   bogus <io_context_engine of a handle never set up>
 * and checks that errno is left as it was by both functions.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <libaio.h>

static const char *show(const char *s)
{
	return s ? s : "(null)";
}

int main(void)
{
	io_context_t ctx = 0;
	errno = 4242;
	const char *v = libaio_rs_version();
	printf("version %s\n", show(v));
	int r = io_setup(4, &ctx);
	if (r < 0) {
		printf("io_setup %d\n", r);
		return 0;
	}
	struct io_event ev[1];
	struct timespec zero = { 0, 0 };
	if (io_getevents(ctx, 0, 1, ev, &zero) != 0) /* a program that reaps through the library */
		return 1;
	const char *e = io_context_engine(ctx);
	printf("engine %s\n", show(e));
	io_destroy(ctx);
	printf("destroyed %s\n", show(io_context_engine(ctx)));
	printf("bogus %s\n", show(io_context_engine((io_context_t)0x1000)));
	if (errno != 4242) {
		printf("errno changed to %d\n", errno);
		return 1;
	}
	return 0;
}
