// SPDX-License-Identifier: MIT
/* Writev: iovecs in order, empty iovecs, the caller's array copied, limits. */
#define _GNU_SOURCE
#include <unistd.h>

#include "helpers.h"

static void t_basic(void)
{
	struct mp_channel *mp = t_channel(64);
	char a[] = "hello, ", b[] = "", c2[] = "world", got[16];
	struct iovec iov[3] = { { a, 7 }, { b, 0 }, { c2, 5 } };
	struct mp_completion c;
	int lh, h, cfd;

	T_BEGIN("writev of 3 iovecs (one empty): 12 bytes in order; the array is copied");
	T_ASSERT(!t_pair(mp, &lh, &h, &cfd, 0), "pair");
	T_CALL(mp_writev(mp, h, iov, 3));
	/* the caller may reuse its array at once */
	iov[0].iov_base = c2;
	iov[2].iov_base = a;
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_WRITEV && c.result == 12,
		 "writev: %d", c.result);
	T_ASSERT(!t_read_full(cfd, got, 12) && !memcmp(got, "hello, world", 12), "bytes");
	close(cfd);
	mp_destroy(mp);
	T_OK();
}

static void t_many(void)
{
	static unsigned char data[1024][64], got[1024 * 64];
	static struct iovec iov[1024];
	struct mp_channel *mp = t_channel(64);
	struct mp_completion c;
	struct mp_info info;
	int lh, h, cfd, i, j;

	T_BEGIN("writev of max_iov iovecs; one more is EINVAL");
	T_CALL(mp_features(mp, &info));
	T_ASSERT(info.max_iov >= 1024, "max_iov %u", info.max_iov);
	T_ASSERT(!t_pair(mp, &lh, &h, &cfd, 0), "pair");
	for (i = 0; i < 1024; i++) {
		for (j = 0; j < 64; j++)
			data[i][j] = t_pat(4, i * 64 + j);
		iov[i].iov_base = data[i];
		iov[i].iov_len = 64;
	}
	T_CALL(mp_writev(mp, h, iov, 1024));
	T_ASSERT(t_next(mp, &c, 2000) && c.result == 65536, "writev: %d", c.result);
	T_ASSERT(!t_read_full(cfd, got, sizeof(got)), "read");
	for (i = 0; i < 65536; i++)
		T_ASSERT(got[i] == t_pat(4, i), "byte %d", i);
	T_ERRNO(mp_writev(mp, h, iov, info.max_iov + 1), EINVAL);
	T_ERRNO(mp_writev(mp, h, iov, 0), EINVAL);
	T_ERRNO(mp_writev(mp, h, iov, -1), EINVAL);
	T_ERRNO(mp_writev(mp, h, NULL, 1), EFAULT);
	iov[0].iov_len = 0;
	T_ERRNO(mp_writev(mp, h, iov, 1), EINVAL);	/* nothing to write */
	T_ERRNO(mp_writev(mp, h + 1, iov, 1), EBADF);
	close(cfd);
	mp_destroy(mp);
	T_OK();
}

int main(void)
{
	t_basic();
	t_many();
	return t_done();
}
