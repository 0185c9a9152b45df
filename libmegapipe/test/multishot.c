// SPDX-License-Identifier: MIT
/*
 * Multishot reads from provided buffers: one mp_read_multishot() completes
 * each time data arrives, into a buffer of the group (MP_F_BUFFER, its id
 * in new_handle, MP_F_MORE while armed); -ENOBUFS when the group is empty,
 * 0 at end of stream, -ECANCELED on cancel end it.
 */
#define _GNU_SOURCE
#include <unistd.h>

#include "helpers.h"

#define G 3

static char bufs[8][16];

static void t_multishot(void)
{
	struct mp_channel *mp = t_channel(64);
	struct mp_completion c;
	char got[64];
	int lh, h, cfd, i, n;
	unsigned int bid[2];

	T_BEGIN("multishot: each arrival completes into a buffer, armed (MP_F_MORE)");
	if (!t_has(MP_FEAT_BUFFERS, t_name)) {
		mp_destroy(mp);
		return;
	}
	T_CALL(mp_provide_buffers(mp, G, bufs, sizeof(bufs[0]), 2));
	T_ASSERT(!t_pair(mp, &lh, &h, &cfd, 0), "pair");
	T_CALL(mp_read_multishot(mp, h, G));
	T_CALL(mp_set_user_data(mp, 0x55));
	for (i = 0; i < 2; i++) {
		T_ASSERT(write(cfd, i ? "world!" : "hello", i ? 6 : 5) == (i ? 6 : 5), "write");
		T_ASSERT(t_next(mp, &c, 2000), "completion %d", i);
		T_ASSERT(c.op == MP_OP_READ && c.result == (i ? 6 : 5) &&
			 (c.flags & MP_F_BUFFER) && (c.flags & MP_F_MORE) && c.user_data == 0x55,
			 "read %d: result %d flags %#x", i, c.result, c.flags);
		bid[i] = (unsigned int)c.new_handle;
		T_ASSERT(bid[i] < 2 && mp_buffer(mp, G, bid[i]) == bufs[bid[i]], "buffer id %u", bid[i]);
		T_ASSERT(!memcmp(bufs[bid[i]], i ? "world!" : "hello", c.result), "data");
	}
	T_ASSERT(bid[0] != bid[1], "two buffers");
	T_OK();

	T_BEGIN("multishot: no buffer left ends it with -ENOBUFS; released, it reads again");
	T_ASSERT(write(cfd, "xyz", 3) == 3, "write");
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_READ && c.result == -ENOBUFS &&
		 !(c.flags & (MP_F_MORE | MP_F_BUFFER)), "ENOBUFS: %d flags %#x", c.result, c.flags);
	T_CALL(mp_buffer_release(mp, G, bid[0]));
	T_ERRNO(mp_buffer_release(mp, G, bid[0]), EINVAL);	/* twice */
	T_CALL(mp_buffer_release(mp, G, bid[1]));
	T_CALL(mp_read_multishot(mp, h, G));
	T_ASSERT(t_next(mp, &c, 2000) && c.result == 3 && (c.flags & MP_F_MORE) &&
		 !memcmp(mp_buffer(mp, G, c.new_handle), "xyz", 3), "the data waited");
	T_CALL(mp_buffer_release(mp, G, c.new_handle));
	T_OK();

	T_BEGIN("multishot: a burst larger than a buffer fills several, in order");
	T_ASSERT(write(cfd, "0123456789abcdefghij", 20) == 20, "write");
	for (n = 0; n < 20; ) {
		T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_READ && c.result > 0 &&
			 (c.flags & MP_F_BUFFER), "piece at %d: %d", n, c.result);
		memcpy(got + n, mp_buffer(mp, G, c.new_handle), c.result);
		n += c.result;
		T_CALL(mp_buffer_release(mp, G, c.new_handle));
		T_ASSERT(c.flags & MP_F_MORE, "still armed");
	}
	T_ASSERT(n == 20 && !memcmp(got, "0123456789abcdefghij", 20), "stream");
	T_OK();

	T_BEGIN("multishot: a READ behind an armed one waits; cancel ends both, in order");
	/* the one armed above first */
	T_CALL(mp_cancel(mp, h, MP_CANCEL_OP(MP_OP_READ)));
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_READ && c.result == -ECANCELED,
		 "cancelled: %d", c.result);
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_CANCEL && c.result == 1, "cancel");
	T_CALL(mp_read_multishot(mp, h, G));
	T_CALL(mp_set_user_data(mp, 1));
	T_CALL(mp_read(mp, h, got, 4));
	T_CALL(mp_set_user_data(mp, 2));
	T_ASSERT(write(cfd, "ab", 2) == 2, "write");
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_READ && c.result == 2 &&
		 (c.flags & MP_F_MORE) && c.user_data == 1, "the armed one reads: %d ud %llu",
		 c.result, (unsigned long long)c.user_data);
	T_CALL(mp_buffer_release(mp, G, c.new_handle));
	T_CALL(mp_cancel(mp, h, MP_CANCEL_OP(MP_OP_READ)));
	for (i = 1; i <= 2; i++)
		T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_READ && c.result == -ECANCELED &&
			 !(c.flags & MP_F_MORE) && c.user_data == (unsigned int)i,
			 "cancelled %d: op %d result %d ud %llu", i, c.op, c.result,
			 (unsigned long long)c.user_data);
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_CANCEL && c.result == 2, "cancel: %d", c.result);
	T_OK();

	T_BEGIN("multishot: when the armed one ends, the READ behind it reads");
	T_CALL(mp_read_multishot(mp, h, G));
	T_CALL(mp_set_user_data(mp, 3));
	T_CALL(mp_read(mp, h, got, 4));
	T_CALL(mp_set_user_data(mp, 4));
	for (i = 0; i < 2; i++) {
		T_ASSERT(write(cfd, i ? "y" : "x", 1) == 1, "write");
		T_ASSERT(t_next(mp, &c, 2000) && c.result == 1 && (c.flags & MP_F_MORE) &&
			 c.user_data == 3, "buffer %d: %d ud %llu", i, c.result,
			 (unsigned long long)c.user_data);
		bid[i] = (unsigned int)c.new_handle;
	}
	T_ASSERT(write(cfd, "z", 1) == 1, "write");
	T_ASSERT(t_next(mp, &c, 2000) && c.result == -ENOBUFS && !(c.flags & MP_F_MORE) &&
		 c.user_data == 3, "ENOBUFS ends it: %d", c.result);
	T_ASSERT(t_next(mp, &c, 2000) && c.result == 1 && !(c.flags & MP_F_BUFFER) &&
		 c.user_data == 4 && got[0] == 'z', "then the READ: %d ud %llu", c.result,
		 (unsigned long long)c.user_data);
	T_CALL(mp_buffer_release(mp, G, bid[0]));
	T_CALL(mp_buffer_release(mp, G, bid[1]));
	T_CALL(mp_read_multishot(mp, h, G));
	T_OK();

	T_BEGIN("multishot: cancel ends it (-ECANCELED); end of stream ends it (0)");
	T_CALL(mp_cancel(mp, h, MP_CANCEL_OP(MP_OP_READ)));
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_READ && c.result == -ECANCELED &&
		 !(c.flags & MP_F_MORE), "cancelled: op %d result %d flags %#x", c.op, c.result, c.flags);
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_CANCEL && c.result == 1, "cancel");
	T_CALL(mp_read_multishot(mp, h, G));
	close(cfd);
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_READ && c.result == 0 &&
		 !(c.flags & (MP_F_MORE | MP_F_BUFFER)), "end of stream: %d %#x", c.result, c.flags);
	T_OK();

	T_BEGIN("multishot: bad input");
	T_ERRNO(mp_read_multishot(mp, h, 5), EINVAL);		/* no such group */
	T_ERRNO(mp_read_multishot(mp, lh, G), EINVAL);		/* a listener */
	T_ERRNO(mp_provide_buffers(mp, G, bufs, 16, 2), EEXIST);
	T_ERRNO(mp_provide_buffers(mp, 4, bufs, 16, 0), EINVAL);
	T_ERRNO(mp_provide_buffers(mp, 16, bufs, 16, 2), EINVAL);
	T_ERRNO(mp_provide_buffers(mp, 4, NULL, 16, 2), EFAULT);
	T_CALL(mp_provide_buffers(mp, 4, bufs[2], 16, 2));
	T_ERRNO(mp_read_multishot(mp, h, 4), EINVAL);		/* one group per handle */
	T_ERRNO(mp_buffer_release(mp, 4, 0), EINVAL);		/* never handed out */
	T_ASSERT(mp_buffer(mp, 4, 2) == NULL && errno == EINVAL, "bid out of range");
	T_CALL(mp_disconnect(mp, h));
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_DISCONNECT, "disconnect");
	T_OK();
	mp_destroy(mp);
}

int main(void)
{
	t_multishot();
	return t_done();
}
