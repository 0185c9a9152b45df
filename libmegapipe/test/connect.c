// SPDX-License-Identifier: MIT
/* Connect: asynchronous, new handle with the request's cookie; refusals; bad addresses. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helpers.h"

static void t_connect(void)
{
	struct mp_channel *mp = t_channel(64);
	struct sockaddr_in addr;
	struct mp_completion c;
	char buf[8];
	int lfd = t_listener(&addr), sfd, h;

	T_BEGIN("connect: completion with the new handle and its cookie; I/O on it");
	T_CALL(mp_connect(mp, (struct sockaddr *)&addr, sizeof(addr), 4242));
	T_ASSERT(t_next(mp, &c, 2000), "completion");
	T_ASSERT(c.op == MP_OP_CONNECT && c.result == 0 && c.handle == MP_NO_HANDLE &&
		 c.new_handle >= 0 && c.cookie == 4242, "op %d result %d new %d cookie %llu",
		 c.op, c.result, c.new_handle, (unsigned long long)c.cookie);
	h = c.new_handle;
	sfd = accept(lfd, NULL, NULL);
	T_ASSERT(sfd >= 0, "accept");
	T_CALL(mp_write(mp, h, "ping", 4));
	T_CALL(mp_read(mp, h, buf, sizeof(buf)));
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_WRITE && c.result == 4 &&
		 c.cookie == 4242 && c.handle == h, "write");
	T_ASSERT(!t_read_full(sfd, buf, 4) && !memcmp(buf, "ping", 4), "server got ping");
	T_ASSERT(write(sfd, "pong", 4) == 4, "server write");
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_READ && c.result == 4 &&
		 !memcmp(buf, "pong", 4), "read: %d", c.result);
	T_CALL(mp_disconnect(mp, h));
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_DISCONNECT, "disconnect");
	T_ASSERT(read(sfd, buf, 1) == 0, "server sees EOF");
	close(sfd);
	close(lfd);
	mp_destroy(mp);
	T_OK();
}

static void t_refused(void)
{
	struct mp_channel *mp = t_channel(64);
	struct sockaddr_in addr;
	struct mp_completion c;
	int lfd = t_listener(&addr);

	T_BEGIN("connect to a closed port: -ECONNREFUSED, no handle");
	close(lfd);
	T_CALL(mp_connect(mp, (struct sockaddr *)&addr, sizeof(addr), 9));
	T_ASSERT(t_next(mp, &c, 2000), "completion");
	T_ASSERT(c.op == MP_OP_CONNECT && c.result == -ECONNREFUSED &&
		 c.new_handle == MP_NO_HANDLE && c.cookie == 9, "result %d new %d",
		 c.result, c.new_handle);
	mp_destroy(mp);
	T_OK();
}

static void t_v6(void)
{
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	struct mp_channel *mp = t_channel(64);
	socklen_t len = sizeof(a6);
	struct mp_completion c;
	int lfd = socket(AF_INET6, SOCK_STREAM, 0), sfd;

	T_BEGIN("connect over IPv6 loopback");
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&a6, sizeof(a6)) || listen(lfd, 8) ||
	    getsockname(lfd, (struct sockaddr *)&a6, &len)) {
		printf("ok - IPv6 loopback # SKIP no IPv6\n");
		mp_destroy(mp);
		return;
	}
	T_CALL(mp_connect(mp, (struct sockaddr *)&a6, sizeof(a6), 6));
	T_ASSERT(t_next(mp, &c, 2000) && c.result == 0 && c.new_handle >= 0, "result %d", c.result);
	sfd = accept(lfd, NULL, NULL);
	T_ASSERT(sfd >= 0, "accept");
	close(sfd);
	close(lfd);
	mp_destroy(mp);
	T_OK();
}

static void t_bad(void)
{
	struct mp_channel *mp = t_channel(64);
	struct sockaddr_in addr = { .sin_family = AF_INET };
	struct sockaddr_storage ss = { .ss_family = AF_UNIX };

	T_BEGIN("connect: bad family EAFNOSUPPORT, short length EINVAL, NULL EFAULT");
	T_ERRNO(mp_connect(mp, (struct sockaddr *)&ss, sizeof(ss), 0), EAFNOSUPPORT);
	T_ERRNO(mp_connect(mp, (struct sockaddr *)&addr, sizeof(addr) - 1, 0), EINVAL);
	T_ERRNO(mp_connect(mp, (struct sockaddr *)&addr, 1, 0), EINVAL);
	T_ERRNO(mp_connect(mp, (struct sockaddr *)&addr, sizeof(ss) + 1, 0), EINVAL);
	T_ERRNO(mp_connect(mp, NULL, sizeof(addr), 0), EFAULT);
	mp_destroy(mp);
	T_OK();
}

static void t_unsupported(void)
{
	struct mp_channel *mp = t_channel(0);
	struct sockaddr_in a = { .sin_family = AF_INET };

	T_BEGIN("mp_connect without MP_FEAT_CONNECT: EOPNOTSUPP");
	T_ERRNO(mp_connect(mp, (struct sockaddr *)&a, sizeof(a), 0), EOPNOTSUPP);
	mp_destroy(mp);
	T_OK();
}

int main(void)
{
	if (!t_has(MP_FEAT_CONNECT, "mp_connect")) {
		t_unsupported();
		return t_done();
	}
	t_connect();
	t_refused();
	t_v6();
	t_bad();
	return t_done();
}
