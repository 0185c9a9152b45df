// SPDX-License-Identifier: MIT
/*
 * mp_setsockopt & co: the options a handle's socket takes, the ones it
 * refuses (the same on both backends), names, and bad input.
 */
#define _GNU_SOURCE
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include "helpers.h"

static int get_int(struct mp_channel *mp, int h, int level, int name)
{
	socklen_t len = sizeof(int);
	int v = -12345;

	if (mp_getsockopt(mp, h, level, name, &v, &len) || len != sizeof(int))
		return -12345;
	return v;
}

static void t_options(void)
{
	struct mp_channel *mp = t_channel(64);
	int lh, h, cfd, one = 1, v;
	char cc[16] = "";
	struct tcp_info ti;
	socklen_t len;

	T_BEGIN("sockopt: options set and read back through the handle");
	T_ASSERT(!t_pair(mp, &lh, &h, &cfd, 0), "pair");
	T_ASSERT(get_int(mp, h, IPPROTO_TCP, TCP_NODELAY) == 0, "nodelay off at first");
	T_CALL(mp_setsockopt(mp, h, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)));
	T_ASSERT(get_int(mp, h, IPPROTO_TCP, TCP_NODELAY) == 1, "nodelay on");
	T_CALL(mp_setsockopt(mp, h, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one)));
	T_ASSERT(get_int(mp, h, SOL_SOCKET, SO_KEEPALIVE) == 1, "keepalive");
	v = 77;
	T_CALL(mp_setsockopt(mp, h, IPPROTO_TCP, TCP_KEEPIDLE, &v, sizeof(v)));
	T_ASSERT(get_int(mp, h, IPPROTO_TCP, TCP_KEEPIDLE) == 77, "keepidle");
	v = 0x10;
	T_CALL(mp_setsockopt(mp, h, IPPROTO_IP, IP_TOS, &v, sizeof(v)));
	T_ASSERT(get_int(mp, h, IPPROTO_IP, IP_TOS) == 0x10, "tos");
	v = 65536;
	T_CALL(mp_setsockopt(mp, h, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v)));
	T_ASSERT(get_int(mp, h, SOL_SOCKET, SO_RCVBUF) == 2 * 65536, "rcvbuf (doubled, as setsockopt)");
	T_CALL(mp_setsockopt(mp, h, IPPROTO_TCP, TCP_CONGESTION, "reno", 4));
	len = sizeof(cc);
	T_CALL(mp_getsockopt(mp, h, IPPROTO_TCP, TCP_CONGESTION, cc, &len));
	T_ASSERT(!strcmp(cc, "reno"), "congestion control %s", cc);
	T_ERRNO(mp_setsockopt(mp, h, IPPROTO_TCP, TCP_CONGESTION, "no-such-cc", 10), ENOENT);
	len = sizeof(ti);
	T_CALL(mp_getsockopt(mp, h, IPPROTO_TCP, TCP_INFO, &ti, &len));
	T_ASSERT(len > 0 && len <= sizeof(ti) && ti.tcpi_state == 1, "tcp_info: established");
	T_ASSERT(get_int(mp, h, SOL_SOCKET, SO_DOMAIN) == AF_INET, "domain");
	/* what the option itself says: IPv6 options on an IPv4 socket */
	T_ERRNO(mp_setsockopt(mp, h, IPPROTO_IPV6, IPV6_TCLASS, &one, sizeof(one)), ENOPROTOOPT);
	/* the data still flows, with TCP_NODELAY on */
	T_CALL(mp_write(mp, h, "hi", 2));
	{
		struct mp_completion c;
		char b[2];

		T_ASSERT(t_next(mp, &c, 2000) && c.result == 2, "write");
		T_ASSERT(!t_read_full(cfd, b, 2) && !memcmp(b, "hi", 2), "client got it");
	}
	close(cfd);
	mp_destroy(mp);
	T_OK();
}

static void t_refused(void)
{
	struct mp_channel *mp = t_channel(64);
	struct linger lg = { 1, 5 };
	int lh, h, cfd, one = 1, v;
	socklen_t len = sizeof(v);

	T_BEGIN("sockopt: refused options (EOPNOTSUPP), a lingering close (EINVAL), bad input");
	T_ASSERT(!t_pair(mp, &lh, &h, &cfd, 0), "pair");
	T_ERRNO(mp_setsockopt(mp, h, IPPROTO_TCP, TCP_ULP, "tls", 3), EOPNOTSUPP);
	T_ERRNO(mp_getsockopt(mp, h, SOL_SOCKET, SO_ERROR, &v, &len), EOPNOTSUPP);
	T_ERRNO(mp_setsockopt(mp, h, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), EOPNOTSUPP);
	T_ERRNO(mp_setsockopt(mp, h, SOL_SOCKET, SO_TYPE, &one, sizeof(one)), EOPNOTSUPP);
	T_ERRNO(mp_setsockopt(mp, h, 9999, 1, &one, sizeof(one)), EOPNOTSUPP);
	T_ERRNO(mp_setsockopt(mp, h, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), EINVAL);
	T_ERRNO(mp_setsockopt(mp, h, SOL_SOCKET, SO_LINGER, &lg, 4), EINVAL);
	T_ERRNO(mp_setsockopt(mp, h, SOL_SOCKET, SO_LINGER, (void *)8, sizeof(lg)), EFAULT);
	T_ERRNO(mp_setsockopt(mp, h, IPPROTO_TCP, TCP_NODELAY, (void *)8, sizeof(one)), EFAULT);
	T_ERRNO(mp_getsockopt(mp, h, IPPROTO_TCP, TCP_NODELAY, (void *)8, &len), EFAULT);
	T_ERRNO(mp_getsockopt(mp, h, IPPROTO_TCP, TCP_NODELAY, &v, NULL), EFAULT);
	T_ERRNO(mp_setsockopt(mp, h + 1, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)), EBADF);
	T_ERRNO(mp_setsockopt(mp, -1, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)), EBADF);
	T_ERRNO(mp_setsockopt(NULL, h, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)), EINVAL);
	/* nothing was changed by the refusals */
	T_ASSERT(get_int(mp, h, IPPROTO_TCP, TCP_NODELAY) == 0, "unchanged");
	T_CALL(mp_disconnect(mp, h));
	T_ERRNO(mp_setsockopt(mp, h, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)), EBADF);
	close(cfd);
	mp_destroy(mp);
	T_OK();
}

static void t_linger_reset(void)
{
	struct mp_channel *mp = t_channel(64);
	struct linger lg = { 1, 0 };
	struct mp_completion c;
	int lh, h, cfd;
	char b[4];

	T_BEGIN("sockopt: SO_LINGER {1, 0} makes DISCONNECT reset the connection");
	T_ASSERT(!t_pair(mp, &lh, &h, &cfd, 0), "pair");
	T_CALL(mp_setsockopt(mp, h, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)));
	T_CALL(mp_disconnect(mp, h));
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_DISCONNECT && c.result == 0, "disconnect");
	T_ASSERT(read(cfd, b, sizeof(b)) < 0 && errno == ECONNRESET, "client: reset (%s)",
		 strerror(errno));
	close(cfd);
	mp_destroy(mp);
	T_OK();
}

static void t_names(void)
{
	struct mp_channel *mp = t_channel(64);
	struct sockaddr_in a, b, la;
	socklen_t len, blen = sizeof(b);
	int lh, h, cfd;

	T_BEGIN("sockopt: getsockname/getpeername of a handle, truncation, a listener");
	T_ASSERT(!t_pair(mp, &lh, &h, &cfd, 0), "pair");
	len = sizeof(a);
	T_CALL(mp_getpeername(mp, h, (struct sockaddr *)&a, &len));
	T_ASSERT(!getsockname(cfd, (struct sockaddr *)&b, &blen), "client name");
	T_ASSERT(len == sizeof(a) && a.sin_family == AF_INET && a.sin_port == b.sin_port &&
		 a.sin_addr.s_addr == b.sin_addr.s_addr, "peer is the client");
	len = sizeof(a);
	T_CALL(mp_getsockname(mp, h, (struct sockaddr *)&a, &len));
	blen = sizeof(b);
	T_ASSERT(!getpeername(cfd, (struct sockaddr *)&b, &blen), "client's peer");
	T_ASSERT(len == sizeof(a) && a.sin_port == b.sin_port, "name is the client's peer");
	/* truncated: only the room given is written, the full length returned */
	memset(&a, 0xee, sizeof(a));
	len = 4;
	T_CALL(mp_getsockname(mp, h, (struct sockaddr *)&a, &len));
	T_ASSERT(len == sizeof(a) && a.sin_family == AF_INET &&
		 a.sin_addr.s_addr == 0xeeeeeeee, "truncated to 4 bytes, length %u", len);
	/* a listener's handle: its own address, and no peer */
	len = sizeof(la);
	T_CALL(mp_getsockname(mp, lh, (struct sockaddr *)&la, &len));
	T_ASSERT(la.sin_port == b.sin_port, "listener's port");
	len = sizeof(la);
	T_ERRNO(mp_getpeername(mp, lh, (struct sockaddr *)&la, &len), ENOTCONN);
	T_ERRNO(mp_getpeername(mp, h, (struct sockaddr *)&la, NULL), EFAULT);
	len = sizeof(la);
	T_ERRNO(mp_getpeername(mp, h, (struct sockaddr *)8, &len), EFAULT);
	close(cfd);
	mp_destroy(mp);
	T_OK();
}

int main(void)
{
	if (!t_has(MP_FEAT_SOCKOPT, "sockopt"))
		return t_done();
	t_options();
	t_refused();
	t_linger_reset();
	t_names();
	return t_done();
}
