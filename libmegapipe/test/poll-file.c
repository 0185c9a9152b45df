// SPDX-License-Identifier: MIT
/*
 * mp_register_file() and mp_poll(): other files in the channel's loop.
 * One-shot and multishot POLLs on an eventfd, a timerfd and a pipe; a
 * POLL ready at submission; another thread waking the channel through an
 * eventfd; the channel's own reference (the caller's fd closed);
 * EPOLLHUP reported unasked; cancel and unregister; what is refused.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "helpers.h"

/* The next completion, which must be a POLL of @h within 2 s. */
static int next_poll(struct mp_channel *mp, int h, struct mp_completion *c)
{
	if (!t_next(mp, c, 2000))
		return -1;
	if (c->op != MP_OP_POLL || c->handle != h)
		return -1;
	return 0;
}

/* Nothing completes within @ms. */
static bool quiet(struct mp_channel *mp, int ms)
{
	struct mp_completion c;
	int r = mp_dispatch(mp, &c, ms);

	if (r == 1)
		printf("# unexpected: op %u handle %d result %d flags %#x\n",
		       c.op, c.handle, c.result, c.flags);
	/* ENOENT: nothing pending at all */
	return r == 0 || (r == -1 && errno == ENOENT);
}

static void t_oneshot(void)
{
	struct mp_channel *mp = t_channel(64);
	struct mp_completion c;
	uint64_t one = 1, v;
	int efd, h;

	T_BEGIN("POLL: an eventfd, one-shot, completes with EPOLLIN once written");
	if (!t_has(MP_FEAT_FILES, t_name)) {
		mp_destroy(mp);
		return;
	}
	efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	T_ASSERT(efd >= 0, "eventfd");
	h = mp_register_file(mp, efd, 77);
	T_ASSERT(h >= 0, "mp_register_file: %s", strerror(errno));
	T_CALL(mp_poll(mp, h, EPOLLIN, 0));
	T_CALL(mp_set_user_data(mp, 5));
	T_ASSERT(quiet(mp, 100), "nothing before the write");
	T_ASSERT(write(efd, &one, 8) == 8, "write");
	T_ASSERT(!next_poll(mp, h, &c), "the POLL completes");
	T_ASSERT(c.result == EPOLLIN && c.cookie == 77 && c.user_data == 5 &&
		 !(c.flags & MP_F_MORE), "result %#x cookie %llu user data %llu flags %#x",
		 c.result, (unsigned long long)c.cookie,
		 (unsigned long long)c.user_data, c.flags);
	T_ASSERT(quiet(mp, 100), "once");
	T_OK();

	T_BEGIN("POLL: ready at submission, it completes at once");
	T_CALL(mp_poll(mp, h, EPOLLIN | EPOLLOUT, 0));
	T_ASSERT(!next_poll(mp, h, &c), "completes");
	T_ASSERT(c.result == (EPOLLIN | EPOLLOUT), "result %#x", c.result);
	T_ASSERT(read(efd, &v, 8) == 8 && v == 1, "the fd is the caller's: it reads");
	T_CALL(mp_poll(mp, h, EPOLLOUT, 0));
	T_ASSERT(!next_poll(mp, h, &c) && c.result == EPOLLOUT, "EPOLLOUT only: %#x",
		 c.result);
	T_OK();

	T_BEGIN("POLL: cancel, then unregister (EBUSY while one is pending)");
	T_CALL(mp_poll(mp, h, EPOLLIN, 0));
	T_CALL(mp_flush(mp));
	T_ERRNO(mp_unregister(mp, h), EBUSY);
	T_CALL(mp_cancel(mp, h, MP_CANCEL_OP(MP_OP_POLL)));
	T_ASSERT(!next_poll(mp, h, &c) && c.result == -ECANCELED, "cancelled: %d",
		 c.result);
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_CANCEL && c.result == 1,
		 "the cancel: %d", c.result);
	T_CALL(mp_unregister(mp, h));
	T_ERRNO(mp_poll(mp, h, EPOLLIN, 0), EBADF);
	T_ASSERT(fcntl(efd, F_GETFD) >= 0, "the caller's fd stays open");
	close(efd);
	mp_destroy(mp);
	T_OK();
}

static void t_multishot(void)
{
	struct mp_channel *mp = t_channel(64);
	struct mp_completion c;
	uint64_t one = 1, v;
	int efd, h, i;

	T_BEGIN("POLL multishot: one completion per write, MP_F_MORE, until cancelled");
	if (!t_has(MP_FEAT_FILES, t_name)) {
		mp_destroy(mp);
		return;
	}
	efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	T_ASSERT(efd >= 0, "eventfd");
	h = mp_register_file(mp, efd, 1);
	T_ASSERT(h >= 0, "mp_register_file: %s", strerror(errno));
	T_CALL(mp_poll(mp, h, EPOLLIN, MP_POLL_MULTISHOT));
	T_ASSERT(quiet(mp, 50), "nothing yet");
	for (i = 0; i < 5; i++) {
		T_ASSERT(write(efd, &one, 8) == 8, "write");
		T_ASSERT(!next_poll(mp, h, &c), "completion %d", i);
		T_ASSERT(c.result == EPOLLIN && (c.flags & MP_F_MORE),
			 "result %#x flags %#x", c.result, c.flags);
		T_ASSERT(read(efd, &v, 8) == 8, "drained");
		T_ASSERT(quiet(mp, 30), "one per write");
	}
	T_CALL(mp_cancel(mp, h, 0));
	T_ASSERT(!next_poll(mp, h, &c) && c.result == -ECANCELED &&
		 !(c.flags & MP_F_MORE), "cancelled: %d flags %#x", c.result, c.flags);
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_CANCEL && c.result == 1,
		 "the cancel");
	T_ASSERT(write(efd, &one, 8) == 8 && quiet(mp, 50), "over");
	T_CALL(mp_unregister(mp, h));
	close(efd);
	mp_destroy(mp);
	T_OK();
}

/*
 * A multishot POLL completes for the wakeups that carry its events, once
 * each: armed on a file that has them, it completes once (not again for
 * the same state); a wakeup for another POLL's events, or the end of
 * another POLL, does not complete it.
 */
static void t_multishot_own_events(void)
{
	struct mp_channel *mp = t_channel(64);
	struct mp_completion c;
	uint64_t one = 1, v;
	int efd, h;

	T_BEGIN("POLL multishot: once when armed on a ready file, then only for its own events");
	if (!t_has(MP_FEAT_FILES, t_name)) {
		mp_destroy(mp);
		return;
	}
	efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	T_ASSERT(efd >= 0, "eventfd");
	h = mp_register_file(mp, efd, 1);
	T_ASSERT(h >= 0, "mp_register_file: %s", strerror(errno));
	/* an eventfd is writable: EPOLLOUT at once, and only once */
	T_CALL(mp_poll(mp, h, EPOLLOUT, MP_POLL_MULTISHOT));
	T_ASSERT(!next_poll(mp, h, &c) && c.result == EPOLLOUT && (c.flags & MP_F_MORE),
		 "at once: %#x flags %#x", c.result, c.flags);
	T_ASSERT(quiet(mp, 50), "once for one state");
	/* a one-shot POLL for EPOLLIN beside it, then a write: EPOLLIN's wakeup */
	T_CALL(mp_poll(mp, h, EPOLLIN, 0));
	T_ASSERT(quiet(mp, 50), "the one-shot waits");
	T_ASSERT(write(efd, &one, 8) == 8, "write");
	T_ASSERT(!next_poll(mp, h, &c) && c.result == EPOLLIN && !(c.flags & MP_F_MORE),
		 "the one-shot: %#x flags %#x", c.result, c.flags);
	T_ASSERT(quiet(mp, 50), "the EPOLLOUT one: not for EPOLLIN's wakeup, nor the one-shot's end");
	/* reading wakes the writers (EPOLLOUT): its wakeup */
	T_ASSERT(read(efd, &v, 8) == 8, "read");
	T_ASSERT(!next_poll(mp, h, &c) && c.result == EPOLLOUT && (c.flags & MP_F_MORE),
		 "EPOLLOUT's wakeup: %#x flags %#x", c.result, c.flags);
	T_ASSERT(quiet(mp, 50), "once");
	/* a second multishot POLL with the same events: at once, the first not */
	T_CALL(mp_poll(mp, h, EPOLLOUT, MP_POLL_MULTISHOT));
	T_CALL(mp_set_user_data(mp, 9));
	T_ASSERT(!next_poll(mp, h, &c) && c.user_data == 9 && (c.flags & MP_F_MORE),
		 "the second at once: user data %llu", (unsigned long long)c.user_data);
	T_ASSERT(quiet(mp, 50), "the first not");
	T_CALL(mp_cancel(mp, h, 0));
	T_ASSERT(!next_poll(mp, h, &c) && c.result == -ECANCELED, "cancelled");
	T_ASSERT(!next_poll(mp, h, &c) && c.result == -ECANCELED, "cancelled");
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_CANCEL && c.result == 2, "the cancel");
	T_OK();

	T_BEGIN("POLL multishot: a wakeup that came before it is the other POLLs', not its own");
	T_CALL(mp_poll(mp, h, EPOLLIN, 0));
	T_CALL(mp_set_user_data(mp, 1));
	T_ASSERT(quiet(mp, 50), "the one-shot waits");
	T_ASSERT(write(efd, &one, 8) == 8, "write");	/* its wakeup, not collected yet */
	T_CALL(mp_poll(mp, h, EPOLLIN, MP_POLL_MULTISHOT));
	T_CALL(mp_set_user_data(mp, 2));
	T_ASSERT(!next_poll(mp, h, &c) && c.user_data == 1 && !(c.flags & MP_F_MORE),
		 "the one-shot first: user data %llu", (unsigned long long)c.user_data);
	T_ASSERT(!next_poll(mp, h, &c) && c.user_data == 2 && c.result == EPOLLIN &&
		 (c.flags & MP_F_MORE), "the multishot at submission: user data %llu",
		 (unsigned long long)c.user_data);
	T_ASSERT(quiet(mp, 50), "and not again for the write before it");
	T_ASSERT(read(efd, &v, 8) == 8 && write(efd, &one, 8) == 8, "drain, write");
	T_ASSERT(!next_poll(mp, h, &c) && c.user_data == 2 && (c.flags & MP_F_MORE),
		 "the next write: once");
	T_ASSERT(quiet(mp, 50), "once");
	T_CALL(mp_cancel(mp, h, 0));
	T_ASSERT(!next_poll(mp, h, &c) && c.result == -ECANCELED, "cancelled");
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_CANCEL && c.result == 1, "the cancel");
	T_CALL(mp_unregister(mp, h));
	close(efd);
	mp_destroy(mp);
	T_OK();
}

/* Count the completions of user data 1, 2 and 3 until 200 ms pass quietly. */
static void count_ud(struct mp_channel *mp, int n[4], uint64_t cookie[4])
{
	struct mp_completion c;

	while (mp_dispatch(mp, &c, 200) == 1)
		if (c.user_data < 4) {
			n[c.user_data]++;
			cookie[c.user_data] = c.cookie;
		}
}

/*
 * Wakeups made inside one call: a WRITE of the channel's own, to a
 * socket whose peer end is a registered file.
 */
static void t_multishot_same_call(void)
{
	struct mp_channel *mp = t_channel(64);
	int lh, h, cfd, fh, n[4] = { 0 };
	uint64_t cookie[4] = { 0 }, one = 1;
	int efd, eh;

	T_BEGIN("POLL multishot: a wakeup an earlier request of the batch made is not a later POLL's");
	if (!t_has(MP_FEAT_FILES, t_name)) {
		mp_destroy(mp);
		return;
	}
	T_ASSERT(!t_pair(mp, &lh, &h, &cfd, 0), "a connection");
	fh = mp_register_file(mp, cfd, 9);
	T_ASSERT(fh >= 0, "mp_register_file: %s", strerror(errno));
	T_CALL(mp_poll(mp, fh, EPOLLIN, MP_POLL_MULTISHOT));
	T_CALL(mp_set_user_data(mp, 1));
	T_ASSERT(quiet(mp, 50), "it waits");
	/* one batch: a write that wakes the file, then a second POLL */
	T_CALL(mp_write(mp, h, "x", 1));
	T_CALL(mp_set_user_data(mp, 3));
	T_CALL(mp_poll(mp, fh, EPOLLIN, MP_POLL_MULTISHOT));
	T_CALL(mp_set_user_data(mp, 2));
	count_ud(mp, n, cookie);
	T_ASSERT(n[1] == 1 && n[2] == 1 && n[3] == 1,
		 "the first POLL %d, the second %d, the write %d (want 1, 1, 1)",
		 n[1], n[2], n[3]);
	T_OK();

	T_BEGIN("POLL multishot: a wakeup right after it, in the same call, counts");
	T_CALL(mp_cancel(mp, fh, 0));
	count_ud(mp, n, cookie);
	memset(n, 0, sizeof(n));
	/* the file has data (the "x"): a new POLL completes at once */
	T_CALL(mp_poll(mp, fh, EPOLLIN, MP_POLL_MULTISHOT));
	T_CALL(mp_set_user_data(mp, 1));
	T_CALL(mp_write(mp, h, "y", 1));
	T_CALL(mp_set_user_data(mp, 3));
	count_ud(mp, n, cookie);
	T_ASSERT(n[1] == 2 && n[3] == 1, "the POLL %d (want 2: at submission and for the write)",
		 n[1]);
	T_CALL(mp_cancel(mp, fh, 0));
	count_ud(mp, n, cookie);
	T_CALL(mp_unregister(mp, fh));
	T_OK();

	T_BEGIN("POLL: an older POLL's completion for a wakeup before a new cookie has the old one");
	efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	T_ASSERT(efd >= 0, "eventfd");
	eh = mp_register_file(mp, efd, 77);
	T_ASSERT(eh >= 0, "mp_register_file: %s", strerror(errno));
	memset(n, 0, sizeof(n));
	T_CALL(mp_poll(mp, eh, EPOLLIN, MP_POLL_MULTISHOT));
	T_CALL(mp_set_user_data(mp, 1));
	T_ASSERT(quiet(mp, 50), "it waits");
	T_ASSERT(write(efd, &one, 8) == 8, "write");
	T_CALL(mp_set_cookie(mp, eh, 88));
	T_CALL(mp_poll(mp, eh, EPOLLIN, MP_POLL_MULTISHOT));
	T_CALL(mp_set_user_data(mp, 2));
	count_ud(mp, n, cookie);
	T_ASSERT(n[1] == 1 && cookie[1] == 77 && n[2] == 1 && cookie[2] == 88,
		 "the first %d with cookie %llu, the second %d with %llu", n[1],
		 (unsigned long long)cookie[1], n[2], (unsigned long long)cookie[2]);
	T_CALL(mp_cancel(mp, eh, 0));
	count_ud(mp, n, cookie);
	T_CALL(mp_unregister(mp, eh));
	close(efd);
	close(cfd);
	mp_destroy(mp);
	T_OK();
}

static void t_cq_full(void)
{
	struct mp_channel *mp = t_channel(2);
	struct mp_completion c;
	uint64_t one = 1, v;
	int efd, h, n = 0, more = 0;
	bool last = false;

	T_BEGIN("POLL multishot: wakeups with nothing reaped, nothing after a last completion");
	if (!t_has(MP_FEAT_FILES, t_name)) {
		mp_destroy(mp);
		return;
	}
	efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	h = mp_register_file(mp, efd, 1);
	T_ASSERT(h >= 0, "mp_register_file: %s", strerror(errno));
	T_CALL(mp_poll(mp, h, EPOLLIN, MP_POLL_MULTISHOT));
	T_CALL(mp_flush(mp));
	/*
	 * A wakeup per write, none reaped: completions pile up until the
	 * queue has no room, and the POLL then posts its last one.  How many
	 * wakeups become completions depends on when the backend runs (the
	 * device coalesces those between two of its calls, and the library
	 * makes no call while completions wait in the ring); the exact count
	 * is tests/net/megapipe_poll.c's.  Here: MP_F_MORE on all but maybe
	 * the last, and nothing after a last one.
	 */
	for (int i = 0; i < 200; i++) {
		T_ASSERT(write(efd, &one, 8) == 8, "write");
		T_CALL(mp_flush(mp));
	}
	while (mp_dispatch(mp, &c, 100) == 1) {
		T_ASSERT(c.op == MP_OP_POLL && c.result == EPOLLIN, "poll %#x", c.result);
		T_ASSERT(!last, "nothing after the last one");
		n++;
		if (c.flags & MP_F_MORE)
			more++;
		else
			last = true;
	}
	T_ASSERT(n >= 1 && n <= 200 && more >= n - 1, "%d completions, %d with MP_F_MORE",
		 n, more);
	if (!last) {
		/* still armed: the queue never filled */
		T_CALL(mp_cancel(mp, h, 0));
		while (!last && t_next(mp, &c, 2000)) {
			if (c.op == MP_OP_POLL && !(c.flags & MP_F_MORE))
				last = true;
		}
		T_ASSERT(last, "the cancel ends it");
		T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_CANCEL, "the cancel's own");
	}
	T_ASSERT(read(efd, &v, 8) == 8 && v == 200, "the counter: %llu",
		 (unsigned long long)v);
	T_CALL(mp_unregister(mp, h));
	close(efd);
	mp_destroy(mp);
	T_OK();
}

static void t_timer_pipe(void)
{
	struct itimerspec its = { .it_value.tv_nsec = 30 * 1000 * 1000 };
	struct mp_channel *mp = t_channel(64);
	struct mp_completion c;
	int tfd, th, p[2], ph;
	long long t0;
	char x = 'x';

	T_BEGIN("POLL: a timerfd fires through the channel");
	if (!t_has(MP_FEAT_FILES, t_name)) {
		mp_destroy(mp);
		return;
	}
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	T_ASSERT(tfd >= 0, "timerfd");
	th = mp_register_file(mp, tfd, 2);
	T_ASSERT(th >= 0, "mp_register_file: %s", strerror(errno));
	T_CALL(mp_poll(mp, th, EPOLLIN, 0));
	t0 = t_ms();
	T_ASSERT(!timerfd_settime(tfd, 0, &its, NULL), "settime");
	T_ASSERT(!next_poll(mp, th, &c) && c.result == EPOLLIN, "fired: %#x", c.result);
	T_ASSERT(t_ms() - t0 >= 25, "not before its time (%lld ms)", t_ms() - t0);
	T_CALL(mp_unregister(mp, th));
	close(tfd);
	T_OK();

	T_BEGIN("POLL: the channel's own reference: the caller's fd closed");
	T_ASSERT(!pipe2(p, O_NONBLOCK | O_CLOEXEC), "pipe");
	ph = mp_register_file(mp, p[0], 3);
	T_ASSERT(ph >= 0, "mp_register_file: %s", strerror(errno));
	close(p[0]);
	T_CALL(mp_poll(mp, ph, EPOLLIN, 0));
	T_ASSERT(quiet(mp, 50), "nothing yet");
	T_ASSERT(write(p[1], &x, 1) == 1, "write");
	T_ASSERT(!next_poll(mp, ph, &c) && c.result == EPOLLIN, "readable: %#x", c.result);
	T_OK();

	T_BEGIN("POLL: EPOLLHUP comes unasked");
	T_CALL(mp_poll(mp, ph, EPOLLPRI, 0));
	T_ASSERT(quiet(mp, 50), "no EPOLLPRI on a pipe");
	close(p[1]);
	T_ASSERT(!next_poll(mp, ph, &c) && (c.result & EPOLLHUP) &&
		 !(c.result & EPOLLIN), "hang-up only: %#x", c.result);
	T_CALL(mp_unregister(mp, ph));
	mp_destroy(mp);
	T_OK();
}

static void *waker(void *arg)
{
	uint64_t one = 1;

	usleep(100 * 1000);
	if (write(*(int *)arg, &one, 8) != 8)
		return (void *)1;
	return NULL;
}

static void t_wake(void)
{
	struct mp_channel *mp = t_channel(64);
	struct mp_completion c;
	pthread_t t;
	int efd, h;
	long long t0;

	T_BEGIN("POLL: another thread wakes the channel through an eventfd");
	if (!t_has(MP_FEAT_FILES, t_name)) {
		mp_destroy(mp);
		return;
	}
	efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	h = mp_register_file(mp, efd, 4);
	T_ASSERT(h >= 0, "mp_register_file: %s", strerror(errno));
	T_CALL(mp_poll(mp, h, EPOLLIN, MP_POLL_MULTISHOT));
	T_ASSERT(!pthread_create(&t, NULL, waker, &efd), "thread");
	t0 = t_ms();
	T_ASSERT(mp_dispatch(mp, &c, 5000) == 1 && c.op == MP_OP_POLL &&
		 c.handle == h, "woken");
	T_ASSERT(t_ms() - t0 < 4000, "by the thread, not the timeout");
	pthread_join(t, NULL);
	T_CALL(mp_cancel(mp, h, 0));
	while (mp_dispatch(mp, &c, 200) == 1)
		;
	T_CALL(mp_unregister(mp, h));
	close(efd);
	mp_destroy(mp);
	T_OK();
}

static void t_refused(void)
{
	struct mp_channel *mp = t_channel(64);
	int lh, h, cfd, efd, fh, one = 1, reg;
	char path[] = "/tmp/mp-poll-file-XXXXXX";

	T_BEGIN("refused: regular file, bad fd, the channel itself, wrong handles and flags");
	if (!t_has(MP_FEAT_FILES, t_name)) {
		mp_destroy(mp);
		return;
	}
	reg = mkstemp(path);
	T_ASSERT(reg >= 0, "mkstemp");
	unlink(path);
	T_ERRNO(mp_register_file(mp, reg, 0), EPERM);
	close(reg);
	T_ERRNO(mp_register_file(mp, -1, 0), EBADF);
	T_ERRNO(mp_register_file(mp, 1000000, 0), EBADF);
	T_ERRNO(mp_register_file(mp, mp_fd(mp), 0), EINVAL);
	{
		int ep = epoll_create1(EPOLL_CLOEXEC);

		T_ERRNO(mp_register_file(mp, ep, 0), EINVAL);
		close(ep);
	}
	T_ASSERT(!t_pair(mp, &lh, &h, &cfd, 0), "a connection");
	efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	fh = mp_register_file(mp, efd, 0);
	T_ASSERT(fh >= 0, "mp_register_file: %s", strerror(errno));
	T_ERRNO(mp_poll(mp, h, EPOLLIN, 0), EINVAL);
	T_ERRNO(mp_poll(mp, lh, EPOLLIN, 0), EINVAL);
	T_ERRNO(mp_poll(mp, fh, 0, 0), EINVAL);
	T_ERRNO(mp_poll(mp, fh, EPOLLIN, 0x100), EINVAL);
	T_ERRNO(mp_poll(mp, fh, EPOLLET, 0), EINVAL);
	T_ERRNO(mp_poll(mp, 12345, EPOLLIN, 0), EBADF);
	{
		char b[4];

		T_ERRNO(mp_read(mp, fh, b, sizeof(b)), EINVAL);
		T_ERRNO(mp_write(mp, fh, b, sizeof(b)), EINVAL);
		T_ERRNO(mp_disconnect(mp, fh), EINVAL);
		T_ERRNO(mp_export(mp, fh, 0), EINVAL);
	}
	if (t_feature(MP_FEAT_SOCKOPT))
		T_ERRNO(mp_setsockopt(mp, fh, SOL_SOCKET, SO_KEEPALIVE, &one,
				      sizeof(one)), EOPNOTSUPP);
	T_CALL(mp_unregister(mp, fh));
	T_ERRNO(mp_unregister(mp, fh), EBADF);
	close(efd);
	close(cfd);
	mp_destroy(mp);
	T_OK();
}

int main(void)
{
	t_oneshot();
	t_multishot();
	t_multishot_own_events();
	t_multishot_same_call();
	t_cq_full();
	t_timer_pipe();
	t_wake();
	t_refused();
	return t_done();
}
