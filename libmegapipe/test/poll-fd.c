// SPDX-License-Identifier: MIT
/*
 * mp_fd(): the channel in another event loop.  The fd is readable when
 * mp_dispatch() has work; after draining with timeout 0 it goes quiet;
 * a connection, data or a completion makes it readable again, in poll()
 * and in an epoll set.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "helpers.h"

/* Dispatch with timeout 0 until nothing is left; the completions, at most @max. */
static int drain(struct mp_channel *mp, struct mp_completion *out, int max)
{
	struct mp_completion c;
	int n = 0;

	while (mp_dispatch(mp, &c, 0) == 1)
		if (n < max)
			out[n++] = c;
	return n;
}

/* Quiet: readable at most a few times while being drained, then not. */
static bool goes_quiet(struct mp_channel *mp, int fd)
{
	struct mp_completion c[8];
	struct pollfd p = { .fd = fd, .events = POLLIN };

	for (int i = 0; i < 50; i++) {
		if (poll(&p, 1, 0) == 0)
			return true;
		drain(mp, c, 8);
	}
	return false;
}

static void t_poll(void)
{
	struct mp_channel *mp = t_channel(64);
	struct sockaddr_in addr;
	struct mp_completion c[8];
	struct epoll_event ev = { .events = EPOLLIN }, got;
	int lfd = t_listener(&addr), lh, h = -1, fd, ep, cfd, n, i;
	char buf[16];
	long long t0;

	T_BEGIN("mp_fd: quiet with nothing to do, readable on a connection (poll)");
	if (!t_has(MP_FEAT_POLL, t_name)) {
		close(lfd);
		mp_destroy(mp);
		return;
	}
	fd = mp_fd(mp);
	T_ASSERT(fd >= 0, "mp_fd: %s", strerror(errno));
	lh = mp_register(mp, lfd, 1, NULL, 0);
	T_ASSERT(lh >= 0, "register");
	T_CALL(mp_accept(mp, lh, 1, 0));
	T_CALL(mp_flush(mp));
	T_ASSERT(goes_quiet(mp, fd), "an accept waiting, no connection: the fd goes quiet");
	{
		struct pollfd p = { .fd = fd, .events = POLLIN };

		T_ASSERT(poll(&p, 1, 100) == 0, "and stays quiet for 100 ms");
		cfd = t_client(&addr);
		t0 = t_ms();
		T_ASSERT(poll(&p, 1, 2000) == 1 && (p.revents & POLLIN),
			 "readable after the connection (revents %#x)", p.revents);
	}
	n = drain(mp, c, 8);
	T_ASSERT(n == 1 && c[0].op == MP_OP_ACCEPT && c[0].result == 0,
		 "the accept completes (%d completions)", n);
	h = c[0].new_handle;
	T_ASSERT(t_ms() - t0 < 2000, "in time");
	T_OK();

	T_BEGIN("mp_fd: in an epoll set, readable on data for a pending read");
	ep = epoll_create1(EPOLL_CLOEXEC);
	T_ASSERT(ep >= 0, "epoll_create1");
	T_CALL(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev));
	T_CALL(mp_read(mp, h, buf, sizeof(buf)));
	T_CALL(mp_flush(mp));
	T_ASSERT(goes_quiet(mp, fd), "a read waiting, no data: quiet");
	/* an edge may be left over from before: take it, then none may come */
	while (epoll_wait(ep, &got, 1, 0) == 1)
		drain(mp, c, 8);
	T_ASSERT(epoll_wait(ep, &got, 1, 100) == 0, "no event for 100 ms");
	T_ASSERT(write(cfd, "hello", 5) == 5, "client write");
	T_ASSERT(epoll_wait(ep, &got, 1, 2000) == 1 && (got.events & EPOLLIN), "epoll: readable");
	n = drain(mp, c, 8);
	for (i = 0; i < n && c[i].op != MP_OP_READ; i++)
		;
	T_ASSERT(i < n && c[i].result == 5 && !memcmp(buf, "hello", 5), "the read completes");
	T_OK();

	T_BEGIN("mp_fd: readable for a completion posted by a submission (a write)");
	T_ASSERT(goes_quiet(mp, fd), "quiet first");
	T_CALL(mp_write(mp, h, "w", 1));
	T_CALL(mp_flush(mp));
	{
		struct pollfd p = { .fd = fd, .events = POLLIN };

		/* the kernel posts it in the submission; the epoll backend holds it */
		n = drain(mp, c, 8);
		if (!n) {
			T_ASSERT(poll(&p, 1, 2000) == 1, "readable");
			n = drain(mp, c, 8);
		}
	}
	T_ASSERT(n >= 1 && c[0].op == MP_OP_WRITE && c[0].result == 1, "the write completes");
	T_OK();

	T_BEGIN("mp_fd: the same fd for the channel's life; EBADF after destroy");
	T_ASSERT(mp_fd(mp) == fd, "same fd");
	T_CALL(mp_disconnect(mp, h));
	T_ASSERT(t_next(mp, &c[0], 2000) && c[0].op == MP_OP_DISCONNECT, "disconnect");
	close(cfd);
	close(lfd);
	close(ep);
	mp_destroy(mp);
	T_ASSERT(fcntl(fd, F_GETFD) == -1 && errno == EBADF, "closed with the channel");
	T_OK();
}

int main(void)
{
	t_poll();
	return t_done();
}
