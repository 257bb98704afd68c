/*
 * The iocb bytes written by the static inline helpers of the libaio.h it is
 * compiled with (Debian's, for tests/sh/python_ctypes.sh), one line a call:
 * "name hex-of-the-64-bytes" ("name ret hex" for the ones that submit).
 * tests/python/ctypes_helpers.py --iocb-bytes prints the same lines from our
 * exported functions, with the same arguments; the two outputs must be equal.
 * Every iocb starts filled with 0xa5, so a byte a helper fails to write shows.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <libaio.h>

static struct iocb cb;

static void fill(void)
{
	memset(&cb, 0xa5, sizeof(cb));
}

static void show(const char *name)
{
	const unsigned char *p = (const unsigned char *)&cb;
	size_t i;

	printf("%s ", name);
	for (i = 0; i < sizeof(cb); i++)
		printf("%02x", p[i]);
	printf("\n");
}

static void show_ret(const char *name, int ret)
{
	char label[64];

	snprintf(label, sizeof(label), "%s %d", name, ret);
	show(label);
}

#define PTR(x) ((void *)(uintptr_t)(x))

int main(void)
{
	const struct iovec *iov = PTR(0x7f00deadbee0ULL);
	int ret;

	if (sizeof(cb) != 64)
		return 1;
	fill(), io_prep_pread(&cb, 5, PTR(0x1122334455667788ULL), 0xfedcba98UL, 0x123456789aLL), show("io_prep_pread");
	fill(), io_prep_pwrite(&cb, 6, PTR(0x0102030405060708ULL), 4096, -4096), show("io_prep_pwrite");
	fill(), io_prep_preadv(&cb, 7, iov, 3, 512), show("io_prep_preadv");
	fill(), io_prep_pwritev(&cb, 8, iov, 4, 1024), show("io_prep_pwritev");
	fill(), io_prep_preadv2(&cb, 9, iov, 2, 2048, 0x9), show("io_prep_preadv2");
	fill(), io_prep_pwritev2(&cb, 10, iov, 5, 4096, 0x10), show("io_prep_pwritev2");
	fill(), io_prep_poll(&cb, 11, 0x5), show("io_prep_poll");
	fill(), io_prep_fsync(&cb, 12), show("io_prep_fsync");
	fill(), io_prep_fdsync(&cb, 13), show("io_prep_fdsync");
	fill(), io_prep_pread(&cb, 14, PTR(0x1000), 64, 0), io_set_eventfd(&cb, 15), show("io_set_eventfd");
	fill(), io_set_eventfd(&cb, 16), show("io_set_eventfd_on_fill");
	fill(), io_set_callback(&cb, (io_callback_t)PTR(0x5555aaaa)), show("io_set_callback");
	/* These submit too: with no context the kernel answers -EINVAL. */
	fill(), ret = io_poll(0, &cb, (io_callback_t)PTR(0x6666), 17, 0x1), show_ret("io_poll", ret);
	fill(), ret = io_fsync(0, &cb, (io_callback_t)PTR(0x7777), 18), show_ret("io_fsync", ret);
	fill(), ret = io_fdsync(0, &cb, (io_callback_t)PTR(0x8888), 19), show_ret("io_fdsync", ret);
	return 0;
}
