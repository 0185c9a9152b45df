// SPDX-License-Identifier: MIT
/*
 * Cleanup never fails for lack of room: mp_disconnect() and mp_cancel()
 * are taken also when the completion queue is full (of requests that may
 * never complete: reads on idle connections), and every request still
 * completes exactly once, in order with the handle's other requests.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helpers.h"

#define CQ	8

static void t_cancel_full(void)
{
	struct mp_channel *mp = t_channel(CQ);
	struct mp_completion c;
	char buf[CQ][4];
	int lh, h, cfd, i;

	T_BEGIN("full queue of idle reads: mp_cancel is taken and cancels them all");
	T_ASSERT(!t_pair(mp, &lh, &h, &cfd, 0), "pair");
	for (i = 0; i < CQ; i++)
		T_CALL(mp_read(mp, h, buf[i], 4));
	T_ERRNO(mp_read(mp, h, buf[0], 4), EBUSY);	/* the sizing rule holds for I/O */
	T_ASSERT(mp_flush(mp) == CQ, "flush");
	T_CALL(mp_cancel(mp, h, 0));
	for (i = 0; i < CQ; i++) {
		T_ASSERT(t_next(mp, &c, 2000), "read %d", i);
		T_ASSERT(c.op == MP_OP_READ && c.result == -ECANCELED, "read %d: op %d result %d",
			 i, c.op, c.result);
	}
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_CANCEL && c.result == CQ,
		 "cancel: op %d result %d", c.op, c.result);
	T_ERRNO(mp_dispatch(mp, &c, 0), ENOENT);		/* nothing twice */
	close(cfd);
	mp_destroy(mp);
	T_OK();
}

static void t_disconnect_full(void)
{
	struct mp_channel *mp = t_channel(CQ);
	struct mp_completion c;
	struct sockaddr_in addr;
	int lfd = t_listener(&addr), lh, h[CQ], cfd[CQ], i, reads = 0, discs = 0;
	bool done[CQ] = { false };
	char buf[CQ][4];

	T_BEGIN("full queue, one idle read per connection: every connection disconnects");
	lh = mp_register(mp, lfd, 0, NULL, 0);
	T_ASSERT(lh >= 0, "register");
	for (i = 0; i < CQ; i++) {
		T_CALL(mp_accept(mp, lh, 1, 0));
		cfd[i] = t_client(&addr);
		T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_ACCEPT && c.result >= 0, "accept %d", i);
		h[i] = c.new_handle;
		T_CALL(mp_set_cookie(mp, h[i], i));
	}
	for (i = 0; i < CQ; i++)
		T_CALL(mp_read(mp, h[i], buf[i], 4));
	T_ASSERT(mp_flush(mp) == CQ, "flush");
	for (i = 0; i < CQ; i++)
		T_CALL(mp_disconnect(mp, h[i]));		/* all taken: none EBUSY */
	T_ERRNO(mp_disconnect(mp, h[0]), EBADF);		/* closing already */
	for (i = 0; i < 2 * CQ; i++) {
		T_ASSERT(t_next(mp, &c, 2000), "completion %d of %d", i, 2 * CQ);
		T_ASSERT(c.cookie < CQ && !done[c.cookie], "completion after the disconnect of %llu",
			 (unsigned long long)c.cookie);
		if (c.op == MP_OP_READ) {
			T_ASSERT(c.result == -ECANCELED, "read %d", c.result);
			reads++;
		} else {
			T_ASSERT(c.op == MP_OP_DISCONNECT && c.result == 0, "op %d result %d",
				 c.op, c.result);
			done[c.cookie] = true;
			discs++;
		}
	}
	T_ASSERT(reads == CQ && discs == CQ, "reads %d disconnects %d", reads, discs);
	T_ERRNO(mp_dispatch(mp, &c, 0), ENOENT);
	for (i = 0; i < CQ; i++) {
		char x;

		T_ASSERT(read(cfd[i], &x, 1) == 0, "client %d sees the close", i);
		close(cfd[i]);
	}
	T_CALL(mp_unregister(mp, lh));
	mp_destroy(mp);
	close(lfd);
	T_OK();
}

#define BIG	(256 << 10)

static unsigned char wbuf[BIG];

struct drain {
	int fd;
	size_t got;
};

static void *drain(void *arg)
{
	struct drain *d = arg;
	char buf[4096];
	ssize_t n;

	usleep(200 * 1000);	/* let the write block first */
	while (d->got < BIG && (n = read(d->fd, buf, sizeof(buf))) > 0)
		d->got += n;
	return NULL;
}

static void t_disconnect_behind_write(void)
{
	struct mp_channel *mp = t_channel(4);
	struct sockaddr_in addr;
	struct mp_completion c;
	struct drain d = { 0 };
	int lfd = t_listener(&addr), lh, h, small = 4096, i;
	char buf[3][4];
	pthread_t th;

	T_BEGIN("full queue, a write held by the peer ahead: the disconnect waits for it, then runs last");
	setsockopt(lfd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	lh = mp_register(mp, lfd, 0, NULL, 0);
	T_ASSERT(lh >= 0 && !mp_accept(mp, lh, 1, 0), "register");
	d.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(d.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	T_ASSERT(!connect(d.fd, (struct sockaddr *)&addr, sizeof(addr)), "connect");
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_ACCEPT && c.result >= 0, "accept");
	h = c.new_handle;
	T_CALL(mp_write(mp, h, wbuf, BIG));
	for (i = 0; i < 3; i++)
		T_CALL(mp_read(mp, h, buf[i], 4));
	T_ERRNO(mp_read(mp, h, buf[0], 4), EBUSY);
	T_ASSERT(mp_flush(mp) == 4, "flush");
	T_CALL(mp_disconnect(mp, h));
	T_ASSERT(mp_dispatch(mp, &c, 50) == 0, "nothing completes while the peer reads nothing");
	T_ASSERT(!pthread_create(&th, NULL, drain, &d), "thread");
	T_ASSERT(t_next(mp, &c, 5000) && c.op == MP_OP_WRITE && c.result == BIG,
		 "the write first: op %d result %d", c.op, c.result);
	for (i = 0; i < 3; i++)
		T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_READ && c.result == -ECANCELED,
			 "read %d: op %d result %d", i, c.op, c.result);
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_DISCONNECT && c.result == 0,
		 "disconnect last: op %d result %d", c.op, c.result);
	T_ERRNO(mp_dispatch(mp, &c, 0), ENOENT);
	pthread_join(th, NULL);
	T_ASSERT(d.got == BIG, "peer got %zu bytes", d.got);
	close(d.fd);
	mp_destroy(mp);
	close(lfd);
	T_OK();
}

#define NCANCEL	40

static void t_many_cancels(void)
{
	struct mp_channel *mp = t_channel(4);
	struct mp_completion c;
	char buf[5][4];
	int lh, h, cfd, i, queued = 0;

	T_BEGIN("40 cancels on a full queue: all taken, each completes once, in order, before a later read");
	T_ASSERT(!t_pair(mp, &lh, &h, &cfd, 0), "pair");
	for (i = 0; i < 4; i++)
		T_CALL(mp_read(mp, h, buf[i], 4));
	for (i = 0; i < NCANCEL; i++)
		T_CALL(mp_cancel(mp, h, MP_CANCEL_OP(MP_OP_READ)));
	for (i = 0; i < 4; i++)
		T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_READ && c.result == -ECANCELED,
			 "read %d: op %d result %d", i, c.op, c.result);
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_CANCEL && c.result == 4,
		 "first cancel: op %d result %d", c.op, c.result);
	/*
	 * A read queued as soon as there is room goes behind the cancels still
	 * queued: none of them may cancel it.
	 */
	for (i = 1; i < NCANCEL; i++) {
		if (!queued) {
			errno = 0;
			if (!mp_read(mp, h, buf[4], 4))
				queued = i;
			else
				T_ASSERT(errno == EBUSY, "read: %s", strerror(errno));
		}
		T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_CANCEL && c.result == 0,
			 "cancel %d: op %d result %d", i, c.op, c.result);
	}
	T_ASSERT(queued && queued < NCANCEL - 1, "the read was queued before cancel %d", queued);
	T_ASSERT(write(cfd, "wxyz", 4) == 4, "client write");
	T_ASSERT(t_next(mp, &c, 2000) && c.op == MP_OP_READ && c.result == 4 &&
		 !memcmp(buf[4], "wxyz", 4), "the later read is not cancelled: op %d result %d",
		 c.op, c.result);
	T_ERRNO(mp_dispatch(mp, &c, 0), ENOENT);
	/* and the channel still keeps to its size for I/O */
	for (i = 0; i < 4; i++)
		T_CALL(mp_read(mp, h, buf[i], 4));
	T_ERRNO(mp_read(mp, h, buf[0], 4), EBUSY);
	close(cfd);
	mp_destroy(mp);
	T_OK();
}

static void t_destroy_with_held(void)
{
	struct mp_channel *mp = t_channel(2);
	char buf[2][4];
	int lh, h, cfd, i;

	T_BEGIN("mp_destroy with cancels and a disconnect held for room: nothing leaks or crashes");
	T_ASSERT(!t_pair(mp, &lh, &h, &cfd, 0), "pair");
	for (i = 0; i < 2; i++)
		T_CALL(mp_read(mp, h, buf[i], 4));
	for (i = 0; i < NCANCEL; i++)
		T_CALL(mp_cancel(mp, h, 0));
	T_CALL(mp_disconnect(mp, h));
	T_ERRNO(mp_unregister(mp, h), EBADF);
	T_CALL(mp_unregister(mp, lh));
	close(cfd);
	mp_destroy(mp);
	T_OK();
}

int main(void)
{
	t_cancel_full();
	t_disconnect_full();
	t_disconnect_behind_write();
	t_many_cancels();
	t_destroy_with_held();
	return t_done();
}
