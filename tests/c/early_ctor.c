/*
 * early_ctor: a program whose own constructor calls io_setup, so that when
 * it is linked with libaio.a the library's settings are settled before the
 * library's constructor runs. The warnings about LIBAIO_RS_* mistakes must
 * still be printed, once. Prints "early io_setup R".
 */
#include <libaio.h>
#include <stdio.h>

static io_context_t ctx;
static int early;

__attribute__((constructor)) static void before_main(void)
{
	early = io_setup(4, &ctx);
}

int main(void)
{
	printf("early io_setup %d\n", early);
	if (early == 0)
		io_destroy(ctx);
	return 0;
}
