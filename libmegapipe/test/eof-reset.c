// SPDX-License-Identifier: MIT
/* End of stream is a read of 0 (every read after it too); a reset is -ECONNRESET. */
#define _GNU_SOURCE
#include <sys/socket.h>
#include <unistd.h>

#include "helpers.h"

static void t_eof(void)
{
	struct mp_channel *mp = t_channel(64);
	struct mp_completion c;
	char buf[64];
	int lh, h, cfd;

	T_BEGIN("data then FIN: the data, then reads of 0, every time");
	T_ASSERT(!t_pair(mp, &lh, &h, &cfd, 0), "pair");
	T_CALL(mp_read(mp, h, buf, sizeof(buf)));
	T_CALL(mp_read(mp, h, buf, sizeof(buf)));
	T_ASSERT(mp_flush(mp) == 2, "flush");
	T_ASSERT(write(cfd, "hello", 5) == 5, "client write");
	close(cfd);
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_READ && c.result == 5 &&
		 !memcmp(buf, "hello", 5), "data: %d", c.result);
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_READ && c.result == 0, "EOF: %d", c.result);
	T_CALL(mp_read(mp, h, buf, sizeof(buf)));
	T_ASSERT(t_next(mp, &c, 2000) && c.result == 0, "EOF again: %d", c.result);
	/* the other direction still works after the peer's FIN */
	T_CALL(mp_write(mp, h, "bye", 3));
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_WRITE && c.result == 3, "write: %d", c.result);
	T_CALL(mp_disconnect(mp, h));
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_DISCONNECT && c.result == 0, "disconnect");
	mp_destroy(mp);
	T_OK();
}

static void t_reset(void)
{
	struct mp_channel *mp = t_channel(64);
	struct linger lg = { 1, 0 };
	struct mp_completion c;
	char buf[64];
	int lh, h, cfd;

	T_BEGIN("reset by the peer: a pending read gets -ECONNRESET, a write fails");
	T_ASSERT(!t_pair(mp, &lh, &h, &cfd, 0), "pair");
	T_CALL(mp_read(mp, h, buf, sizeof(buf)));
	T_ASSERT(mp_flush(mp) == 1, "flush");
	setsockopt(cfd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(cfd);
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_READ && c.result == -ECONNRESET,
		 "read: %d", c.result);
	T_CALL(mp_write(mp, h, "x", 1));
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_WRITE &&
		 (c.result == -EPIPE || c.result == -ECONNRESET), "write: %d", c.result);
	T_CALL(mp_disconnect(mp, h));
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_DISCONNECT, "disconnect");
	mp_destroy(mp);
	T_OK();
}

static void t_reset_with_data(void)
{
	struct mp_channel *mp = t_channel(64);
	struct linger lg = { 1, 0 };
	struct mp_completion c;
	char buf[64];
	int lh, h, cfd;

	T_BEGIN("reset after data: the reset wins over unread data (as recv says)");
	T_ASSERT(!t_pair(mp, &lh, &h, &cfd, 0), "pair");
	T_ASSERT(write(cfd, "abc", 3) == 3, "client write");
	usleep(10000);
	setsockopt(cfd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(cfd);
	usleep(10000);
	T_CALL(mp_read(mp, h, buf, sizeof(buf)));
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_READ, "read");
	/* TCP drops the receive queue on a reset: recv() reports the reset */
	T_ASSERT(c.result == -ECONNRESET || c.result == 3, "read: %d", c.result);
	mp_destroy(mp);
	T_OK();
}

int main(void)
{
	t_eof();
	t_reset();
	t_reset_with_data();
	return t_done();
}
