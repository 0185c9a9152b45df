// SPDX-License-Identifier: MIT
/* Accept: counts, MORE, order of accept requests, fds on request. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helpers.h"

static void t_count(void)
{
	struct mp_channel *mp = t_channel(64);
	struct sockaddr_in addr;
	struct mp_completion c;
	int lfd = t_listener(&addr), lh, i, cl[3], seen[3];

	T_BEGIN("accept count 3: three completions, MORE on the first two, listener cookie");
	lh = mp_register(mp, lfd, 77, NULL, 0);
	T_ASSERT(lh >= 0, "register: %s", strerror(errno));
	T_CALL(mp_accept(mp, lh, 3, 0));
	for (i = 0; i < 3; i++)
		cl[i] = t_client(&addr);
	for (i = 0; i < 3; i++) {
		T_ASSERT(t_next(mp, &c, 2000), "completion %d", i);
		T_ASSERT(c.op == MP_OP_ACCEPT && c.handle == lh && c.cookie == 77 &&
			 c.result == 0 && c.new_handle >= 0 && !(c.flags & MP_F_FD),
			 "op %d handle %d cookie %llu result %d new %d", c.op, c.handle,
			 (unsigned long long)c.cookie, c.result, c.new_handle);
		T_ASSERT(!!(c.flags & MP_F_MORE) == (i < 2), "MORE on %d: %#x", i, c.flags);
		seen[i] = c.new_handle;
	}
	T_ASSERT(seen[0] != seen[1] && seen[1] != seen[2] && seen[0] != seen[2], "distinct handles");
	T_ERRNO(mp_dispatch(mp, &c, 0), ENOENT);	/* nothing outstanding */
	for (i = 0; i < 3; i++)
		close(cl[i]);
	mp_destroy(mp);
	close(lfd);
	T_OK();
}

static void t_backlog_and_order(void)
{
	struct mp_channel *mp = t_channel(64);
	struct sockaddr_in addr;
	struct mp_completion c;
	int lfd = t_listener(&addr), lh, cl[3], i;

	T_BEGIN("accepts served in submission order; queued connections taken at once");
	for (i = 0; i < 3; i++)		/* waiting before any accept request */
		cl[i] = t_client(&addr);
	lh = mp_register(mp, lfd, 5, NULL, 0);
	T_ASSERT(lh >= 0, "register");
	T_CALL(mp_accept(mp, lh, 2, 0));
	T_CALL(mp_accept(mp, lh, 1, 0));
	for (i = 0; i < 3; i++) {
		T_ASSERT(t_next(mp, &c, 2000), "completion %d", i);
		T_ASSERT(c.op == MP_OP_ACCEPT && c.result == 0, "result %d", c.result);
		/* first request: MORE then last; second request: last */
		T_ASSERT(!!(c.flags & MP_F_MORE) == (i == 0), "flags %#x at %d", c.flags, i);
	}
	for (i = 0; i < 3; i++)
		close(cl[i]);
	mp_destroy(mp);
	close(lfd);
	T_OK();
}

static void t_accept_fd(void)
{
	struct mp_channel *mp = t_channel(64);
	struct sockaddr_in addr, peer;
	socklen_t len = sizeof(peer);
	struct mp_completion c;
	int lfd = t_listener(&addr), lh, cl, fd, fl;

	T_BEGIN("MP_ACCEPT_FD: a regular fd, also a handle; unregister keeps the fd");
	lh = mp_register(mp, lfd, 5, NULL, 0);
	T_ASSERT(lh >= 0, "register");
	T_CALL(mp_accept(mp, lh, 1, MP_ACCEPT_FD | MP_ACCEPT_NONBLOCK));
	cl = t_client(&addr);
	T_ASSERT(t_next(mp, &c, 2000), "completion");
	T_ASSERT(c.op == MP_OP_ACCEPT && c.result >= 0 && (c.flags & MP_F_FD) &&
		 c.new_handle >= 0, "result %d flags %#x", c.result, c.flags);
	fd = c.result;
	T_ASSERT(!getpeername(fd, (struct sockaddr *)&peer, &len), "fd is a connected socket");
	fl = fcntl(fd, F_GETFL);
	T_ASSERT(fl >= 0 && (fl & O_NONBLOCK), "O_NONBLOCK");
	T_ASSERT(fcntl(fd, F_GETFD) & FD_CLOEXEC, "FD_CLOEXEC");
	T_ERRNO(mp_export(mp, c.new_handle, 0), EINVAL);	/* it has an fd */
	T_CALL(mp_unregister(mp, c.new_handle));
	T_ERRNO(mp_unregister(mp, c.new_handle), EBADF);
	T_ASSERT(write(cl, "x", 1) == 1 && t_read_full(fd, &len, 1) == 0, "fd still works");
	close(fd);
	close(cl);

	T_CALL(mp_accept(mp, lh, 1, MP_ACCEPT_FD));	/* blocking fd */
	cl = t_client(&addr);
	T_ASSERT(t_next(mp, &c, 2000) && c.result >= 0, "second accept");
	fl = fcntl(c.result, F_GETFL);
	T_ASSERT(fl >= 0 && !(fl & O_NONBLOCK), "blocking without MP_ACCEPT_NONBLOCK");
	/* an lw handle cannot be unregistered: it has no fd of the caller's */
	close(cl);
	mp_destroy(mp);
	close(c.result);
	close(lfd);
	T_OK();
}

static void t_lightweight_unregister(void)
{
	struct mp_channel *mp = t_channel(64);
	int lh, h, cfd;

	T_BEGIN("a lightweight handle cannot be unregistered (EINVAL); listener unregisters");
	T_ASSERT(!t_pair(mp, &lh, &h, &cfd, 0), "pair");
	T_ERRNO(mp_unregister(mp, h), EINVAL);
	T_ERRNO(mp_accept(mp, h, 1, 0), EINVAL);	/* not a listener */
	T_CALL(mp_unregister(mp, lh));
	T_ERRNO(mp_accept(mp, lh, 1, 0), EBADF);
	close(cfd);
	mp_destroy(mp);
	T_OK();
}

static void t_peer_address(void)
{
	struct mp_channel *mp = t_channel(64);
	struct sockaddr_storage peers[3];
	struct sockaddr_in addr, local;
	struct mp_completion c;
	socklen_t len;
	int lfd = t_listener(&addr), lh, i, cl[3];

	T_BEGIN("mp_accept_addr: each connection's peer address in its slot, in order");
	if (!t_has(MP_FEAT_ACCEPT_ADDR, t_name)) {
		close(lfd);
		mp_destroy(mp);
		return;
	}
	lh = mp_register(mp, lfd, 1, NULL, 0);
	T_ASSERT(lh >= 0, "register: %s", strerror(errno));
	memset(peers, 0xa5, sizeof(peers));
	T_CALL(mp_accept_addr(mp, lh, 3, 0, peers));
	for (i = 0; i < 3; i++) {
		cl[i] = t_client(&addr);
		T_ASSERT(cl[i] >= 0, "client");
		T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_ACCEPT && c.result == 0,
			 "accept %d: %d", i, c.result);
		len = sizeof(local);
		T_ASSERT(!getsockname(cl[i], (struct sockaddr *)&local, &len), "getsockname");
		T_ASSERT(peers[i].ss_family == AF_INET &&
			 ((struct sockaddr_in *)&peers[i])->sin_port == local.sin_port &&
			 ((struct sockaddr_in *)&peers[i])->sin_addr.s_addr ==
			 local.sin_addr.s_addr, "slot %d: family %d port %u, the client's %u",
			 i, peers[i].ss_family,
			 ntohs(((struct sockaddr_in *)&peers[i])->sin_port),
			 ntohs(local.sin_port));
	}
	T_ASSERT(((unsigned char *)&peers[2])[sizeof(peers[2]) - 1] == 0xa5,
		 "past the address, the slot is untouched");
	T_ERRNO(mp_accept_addr(mp, lh, 1, 0, NULL), EFAULT);
	for (i = 0; i < 3; i++)
		close(cl[i]);
	mp_destroy(mp);
	close(lfd);
	T_OK();

	T_BEGIN("mp_accept_addr: an unwritable slot ends the accept with EFAULT");
	mp = t_channel(64);
	lfd = t_listener(&addr);
	lh = mp_register(mp, lfd, 1, NULL, 0);
	T_ASSERT(lh >= 0, "register");
	T_CALL(mp_accept_addr(mp, lh, 2, 0, (struct sockaddr_storage *)(uintptr_t)4096));
	cl[0] = t_client(&addr);
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_ACCEPT && c.result == -EFAULT &&
		 !(c.flags & MP_F_MORE), "result %d flags %#x", c.result, c.flags);
	close(cl[0]);
	mp_destroy(mp);
	close(lfd);
	T_OK();
}

int main(void)
{
	t_count();
	t_peer_address();
	t_backlog_and_order();
	t_accept_fd();
	t_lightweight_unregister();
	return t_done();
}
