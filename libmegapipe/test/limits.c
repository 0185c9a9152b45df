// SPDX-License-Identifier: MIT
/*
 * Limits and bad input: unknown and stale handles (EBADF), reserved flags
 * (EINVAL), a full completion queue (EBUSY for I/O, nothing dropped), batches
 * larger than max_batch, registration errors, use from another process.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

static void t_bad_handles(void)
{
	struct mp_channel *mp = t_channel(64);
	struct iovec iov = { "x", 1 };
	char buf[4];
	int lh, h, cfd;

	T_BEGIN("unknown, negative and stale handles: EBADF from every call");
	T_ASSERT(!t_pair(mp, &lh, &h, &cfd, 0), "pair");
	for (int bad = 0; bad < 3; bad++) {
		int x = bad == 0 ? h + 12345 : bad == 1 ? -7 : (h ^ (1 << 24));

		T_ERRNO(mp_read(mp, x, buf, 1), EBADF);
		T_ERRNO(mp_write(mp, x, buf, 1), EBADF);
		T_ERRNO(mp_writev(mp, x, &iov, 1), EBADF);
		T_ERRNO(mp_accept(mp, x, 1, 0), EBADF);
		T_ERRNO(mp_disconnect(mp, x), EBADF);
		T_ERRNO(mp_cancel(mp, x, 0), EBADF);
		T_ERRNO(mp_unregister(mp, x), EBADF);
		T_ERRNO(mp_export(mp, x, 0), EBADF);
		T_ERRNO(mp_set_cookie(mp, x, 1), EBADF);
	}
	T_ERRNO(mp_read(NULL, h, buf, 1), EINVAL);
	close(cfd);
	mp_destroy(mp);
	T_OK();
}

static void t_bad_args(void)
{
	struct mp_channel *mp = t_channel(64);
	struct mp_completion c;
	char buf[4];
	int lh, h, cfd;

	T_BEGIN("reserved flags and bad lengths: EINVAL; NULL buffers: EFAULT");
	T_ASSERT(!t_pair(mp, &lh, &h, &cfd, 0), "pair");
	T_ERRNO(mp_accept(mp, lh, 1, 1U << 9), EINVAL);
	T_ERRNO(mp_accept(mp, lh, 1, MP_ACCEPT_NONBLOCK), EINVAL);	/* needs _FD */
	T_ERRNO(mp_accept(mp, lh, 0, 0), EINVAL);
	T_ERRNO(mp_accept(mp, lh, 65, 0), EINVAL);	/* more than the CQ */
	T_ERRNO(mp_read(mp, h, buf, 0), EINVAL);
	T_ERRNO(mp_write(mp, h, buf, 0), EINVAL);
	T_ERRNO(mp_read(mp, h, buf, (size_t)1 << 31), EINVAL);
	T_ERRNO(mp_read(mp, h, NULL, 1), EFAULT);
	T_ERRNO(mp_write(mp, h, NULL, 1), EFAULT);
	T_ERRNO(mp_read(mp, lh, buf, 1), EINVAL);	/* a listener */
	T_ERRNO(mp_write(mp, lh, buf, 1), EINVAL);
	T_ERRNO(mp_export(mp, h, ~0U), EINVAL);
	T_ERRNO(mp_dispatch(mp, NULL, 0), EFAULT);
	T_ERRNO(mp_dispatch(mp, &c, 0), ENOENT);	/* nothing was queued: nothing lost */
	close(cfd);
	mp_destroy(mp);
	T_OK();
}

static void t_full_cq(void)
{
	struct mp_channel *mp = t_channel(8);
	struct mp_completion c;
	char buf[8][4];
	int lh, h, cfd, i;

	T_BEGIN("full completion queue: EBUSY when queuing, room again after dispatch");
	T_ASSERT(!t_pair(mp, &lh, &h, &cfd, 0), "pair");
	for (i = 0; i < 8; i++)
		T_CALL(mp_read(mp, h, buf[i], 4));
	T_ERRNO(mp_read(mp, h, buf[0], 4), EBUSY);
	/* mp_cancel() and mp_disconnect() are never refused: test/cleanup-full.c */
	T_ERRNO(mp_accept(mp, lh, 1, 0), EBUSY);
	T_ASSERT(mp_flush(mp) == 8, "flush");
	T_ERRNO(mp_read(mp, h, buf[0], 4), EBUSY);	/* in flight still counts */
	T_ASSERT(write(cfd, "abcd", 4) == 4, "client write");
	T_ASSERT(t_next(mp, &c, 2000) && c.result == 4, "one read");
	T_CALL(mp_cancel(mp, h, 0));			/* exactly one free entry */
	T_ERRNO(mp_read(mp, h, buf[0], 4), EBUSY);
	for (i = 0; i < 8; i++)
		T_ASSERT(t_next(mp, &c, 2000), "completion %d", i);
	T_ASSERT(c.op == MP_OP_CANCEL && c.result == 7, "cancel %d", c.result);
	T_ERRNO(mp_dispatch(mp, &c, 0), ENOENT);

	/* an accept reserves its whole count */
	T_CALL(mp_accept(mp, lh, 6, 0));
	T_CALL(mp_read(mp, h, buf[0], 4));
	T_CALL(mp_read(mp, h, buf[1], 4));
	T_ERRNO(mp_read(mp, h, buf[2], 4), EBUSY);
	close(cfd);
	mp_destroy(mp);
	T_OK();
}

static void t_big_batch(void)
{
	static char buf[600][2];
	struct mp_channel *mp = t_channel(1024);
	struct mp_completion c;
	struct mp_info info;
	int lh, h, cfd, i, n;

	T_BEGIN("600 requests in one flush (over max_batch): all reach the backend, all complete");
	T_CALL(mp_features(mp, &info));
	T_ASSERT(info.max_batch < 600, "max_batch %u", info.max_batch);
	T_ASSERT(!t_pair(mp, &lh, &h, &cfd, 0), "pair");
	for (i = 0; i < 600; i++)
		T_CALL(mp_read(mp, h, buf[i], 2));
	T_ASSERT(mp_flush(mp) == 600, "flush");
	T_CALL(mp_cancel(mp, h, 0));
	for (i = 0; i < 601; i++) {
		T_ASSERT(t_next(mp, &c, 2000), "completion %d", i);
		if (i < 600)
			T_ASSERT(c.op == MP_OP_READ && c.result == -ECANCELED, "read %d", i);
	}
	T_ASSERT(c.op == MP_OP_CANCEL && c.result == 600, "cancel %d", c.result);
	/* and the same without cancelling: data for all of them */
	for (i = 0; i < 600; i++)
		T_CALL(mp_read(mp, h, buf[i], 2));
	for (i = 0; i < 600; i++)
		T_ASSERT(write(cfd, "ab", 2) == 2, "client write");
	for (i = n = 0; i < 600; i++) {
		T_ASSERT(t_next(mp, &c, 2000) && c.result > 0, "read %d", i);
		n += c.result;
		if (n == 1200)
			break;
	}
	T_ASSERT(n == 1200, "bytes %d", n);
	close(cfd);
	mp_destroy(mp);
	T_OK();
}

static void t_register_errors(void)
{
	struct mp_channel *mp = t_channel(64), *mp2 = t_channel(64);
	struct sockaddr_in addr;
	int lfd = t_listener(&addr), p[2], u, s, cfd, lh, lh2, cfd2;
	cpu_set_t set;

	T_BEGIN("register: EBADF, ENOTSOCK, EOPNOTSUPP, ENOTCONN, EEXIST, EINVAL masks, EBUSY unregister");
	T_ERRNO(mp_register(mp, -1, 0, NULL, 0), EBADF);
	T_ERRNO(mp_register(mp, 1000, 0, NULL, 0), EBADF);
	T_ASSERT(!pipe(p), "pipe");
	T_ERRNO(mp_register(mp, p[0], 0, NULL, 0), ENOTSOCK);
	u = socket(AF_INET, SOCK_DGRAM, 0);
	T_ERRNO(mp_register(mp, u, 0, NULL, 0), EOPNOTSUPP);
	close(u);
	u = socket(AF_UNIX, SOCK_STREAM, 0);
	T_ERRNO(mp_register(mp, u, 0, NULL, 0), EOPNOTSUPP);
	close(u);
	s = socket(AF_INET, SOCK_STREAM, 0);
	T_ERRNO(mp_register(mp, s, 0, NULL, 0), ENOTCONN);
	close(s);

	CPU_ZERO(&set);
	CPU_SET(0, &set);
	cfd = t_client(&addr);
	T_ERRNO(mp_register(mp, cfd, 0, &set, sizeof(set)), EINVAL);	/* mask on a connection */
	lh = mp_register(mp, cfd, 0, NULL, 0);
	T_ASSERT(lh >= 0, "register a connected socket: %s", strerror(errno));
	T_ERRNO(mp_register(mp, cfd, 0, NULL, 0), EEXIST);	/* once per channel */
	cfd2 = dup(cfd);
	T_ERRNO(mp_register(mp, cfd2, 0, NULL, 0), EEXIST);	/* same socket */
	close(cfd2);
	/* in another channel too, as an fd in two epolls */
	lh2 = mp_register(mp2, cfd, 0, NULL, 0);
	T_ASSERT(lh2 >= 0, "register in a second channel: %s", strerror(errno));
	T_CALL(mp_unregister(mp2, lh2));
	T_CALL(mp_unregister(mp, lh));
	lh = mp_register(mp2, cfd, 0, NULL, 0);		/* free again */
	T_ASSERT(lh >= 0, "re-register elsewhere");

	CPU_ZERO(&set);
	T_ERRNO(mp_register(mp, lfd, 0, &set, sizeof(set)), EINVAL);	/* no CPU */
	T_ERRNO(mp_register(mp, lfd, 0, &set, 3), EINVAL);		/* odd size */
	T_ERRNO(mp_register(mp, lfd, 0, NULL, 8), EFAULT);
	CPU_SET(0, &set);
	lh = mp_register(mp, lfd, 0, &set, sizeof(set));
	T_ASSERT(lh >= 0, "listener with CPU 0: %s", strerror(errno));
	T_ERRNO(mp_register(mp, lfd, 0, NULL, 0), EEXIST);		/* same channel */
	lh2 = mp_register(mp2, lfd, 0, NULL, 0);			/* another channel: fine */
	T_ASSERT(lh2 >= 0, "listener in a second channel: %s", strerror(errno));
	T_CALL(mp_accept(mp, lh, 1, 0));
	T_ERRNO(mp_unregister(mp, lh), EBUSY);			/* queued accept */
	T_ASSERT(mp_flush(mp) == 1, "flush");
	T_ERRNO(mp_unregister(mp, lh), EBUSY);			/* accept in flight */
	close(p[0]);
	close(p[1]);
	close(cfd);
	mp_destroy(mp);
	mp_destroy(mp2);
	close(lfd);
	T_OK();
}

static void t_fork(void)
{
	struct mp_channel *mp = t_channel(64);
	struct mp_completion c;
	int lh, h, cfd, st;
	char buf[4];
	pid_t pid;

	T_BEGIN("a channel used from a child process: EPERM; the parent's channel unharmed");
	T_ASSERT(!t_pair(mp, &lh, &h, &cfd, 0), "pair");
	pid = fork();
	if (pid == 0) {
		int bad = 0;

		errno = 0;
		if (mp_read(mp, h, buf, 1) != -1 || errno != EPERM)
			bad |= 1;
		if (mp_dispatch(mp, &c, 0) != -1 || errno != EPERM)
			bad |= 2;
		if (mp_flush(mp) != -1 || errno != EPERM)
			bad |= 4;
		mp_destroy(mp);		/* frees the child's copy only */
		_exit(bad);
	}
	T_ASSERT(pid > 0 && waitpid(pid, &st, 0) == pid, "fork");
	T_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child saw %#x", WEXITSTATUS(st));
	T_CALL(mp_read(mp, h, buf, 1));
	T_ASSERT(write(cfd, "q", 1) == 1, "client write");
	T_ASSERT(t_next(mp, &c, 2000) && c.result == 1 && buf[0] == 'q', "parent still works");
	close(cfd);
	mp_destroy(mp);
	T_OK();
}

int main(void)
{
	t_bad_handles();
	t_bad_args();
	t_full_cq();
	t_big_batch();
	t_register_errors();
	t_fork();
	return t_done();
}
