// SPDX-License-Identifier: MIT
/* Disconnect: after the writes before it, cancels reads, releases the handle. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helpers.h"

static void t_after_writes(void)
{
	static unsigned char big[300000], got[300000];
	struct mp_channel *mp = t_channel(64);
	struct mp_completion c;
	char buf[8];
	int lh, h, cfd, i;

	T_BEGIN("write, read, disconnect in one batch: peer gets every byte then EOF");
	T_ASSERT(!t_pair(mp, &lh, &h, &cfd, 0), "pair");
	for (i = 0; i < (int)sizeof(big); i++)
		big[i] = t_pat(5, i);
	T_CALL(mp_write(mp, h, big, sizeof(big)));
	T_CALL(mp_read(mp, h, buf, sizeof(buf)));
	T_CALL(mp_disconnect(mp, h));
	T_ERRNO(mp_read(mp, h, buf, 1), EBADF);	/* closing */
	T_ERRNO(mp_disconnect(mp, h), EBADF);
	T_ASSERT(mp_flush(mp) == 3, "flush");
	/* the write needs the peer to read: read in pieces, dispatching */
	for (i = 0; i < (int)sizeof(got);) {
		ssize_t n = read(cfd, got + i, sizeof(got) - i);

		T_ASSERT(n > 0, "client read at %d", i);
		i += n;
		while (mp_dispatch(mp, &c, 0) == 1) {
			if (c.op == MP_OP_WRITE)
				T_ASSERT(c.result == (int)sizeof(big), "write %d", c.result);
			else if (c.op == MP_OP_READ)
				T_ASSERT(c.result == -ECANCELED, "read %d", c.result);
			else
				T_ASSERT(c.op == MP_OP_DISCONNECT && c.result == 0, "op %d", c.op);
		}
	}
	T_ASSERT(!memcmp(got, big, sizeof(big)), "bytes");
	T_ASSERT(read(cfd, buf, 1) == 0, "EOF after the data");
	T_ERRNO(mp_read(mp, h, buf, 1), EBADF);
	close(cfd);
	mp_destroy(mp);
	T_OK();
}

static void t_order(void)
{
	struct mp_channel *mp = t_channel(64);
	struct mp_completion c;
	char buf[8];
	int lh, h, cfd, h2, cfd2;

	T_BEGIN("completions: the cancelled read before the disconnect; stale handle EBADF after reuse");
	T_ASSERT(!t_pair(mp, &lh, &h, &cfd, 0), "pair");
	T_CALL(mp_read(mp, h, buf, sizeof(buf)));
	T_CALL(mp_disconnect(mp, h));
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_READ && c.result == -ECANCELED, "read first");
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_DISCONNECT && c.handle == h, "then disconnect");
	/* a new connection may take the index, never the value */
	T_ASSERT(!t_pair(mp, &lh, &h2, &cfd2, 0), "second pair");
	T_ASSERT(h2 != h, "new handle %d differs from old %d", h2, h);
	T_ERRNO(mp_write(mp, h, "x", 1), EBADF);
	T_ASSERT(read(cfd, buf, 1) == 0, "first peer sees EOF");
	close(cfd);
	close(cfd2);
	mp_destroy(mp);
	T_OK();
}

static void t_registered_fd(void)
{
	struct mp_channel *mp = t_channel(64);
	struct mp_completion c;
	char buf[4];
	int lh, h, cfd, fd;

	T_BEGIN("disconnect of a handle with a caller's fd: shut down, fd stays open");
	T_ASSERT(!t_pair(mp, &lh, &h, &cfd, MP_ACCEPT_FD), "pair");
	T_ERRNO(mp_disconnect(mp, lh), EINVAL);	/* listeners unregister */
	fd = t_accept_result;
	T_ASSERT(fd >= 0, "accepted fd");
	T_CALL(mp_write(mp, h, "ab", 2));
	T_CALL(mp_disconnect(mp, h));
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_WRITE && c.result == 2, "write");
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_DISCONNECT && c.result == 0, "disconnect");
	T_ASSERT(!t_read_full(cfd, buf, 2) && read(cfd, buf, 1) == 0, "peer: data then EOF");
	/* the fd is the caller's, still open, and shut down */
	T_ASSERT(fcntl(fd, F_GETFD) >= 0, "fd open");
	T_ASSERT(write(fd, "c", 1) == -1 && errno == EPIPE, "fd is shut down");
	close(fd);
	close(cfd);
	mp_destroy(mp);
	T_OK();
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	t_after_writes();
	t_order();
	t_registered_fd();
	return t_done();
}
