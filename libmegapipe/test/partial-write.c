// SPDX-License-Identifier: MIT
/*
 * Writes larger than a tiny send buffer: they complete whole, in order,
 * while the peer reads slowly; a write stopped by a reset or a cancel
 * reports the bytes it had queued, and the writes behind it are cancelled.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helpers.h"

#define BIG	(1 << 20)

static unsigned char wbuf[2][BIG];

struct reader {
	int fd;
	size_t want;
	size_t got;
	int bad;
};

/* Read slowly (small reads, pauses) and check the pattern. */
static void *slow_reader(void *arg)
{
	struct reader *r = arg;
	unsigned char buf[4096];
	ssize_t n;
	size_t i;

	while (r->got < r->want) {
		n = read(r->fd, buf, r->got % 3 ? sizeof(buf) : 1000);
		if (n <= 0)
			break;
		for (i = 0; i < (size_t)n; i++)
			if (buf[i] != t_pat(9, r->got + i))
				r->bad++;
		r->got += n;
		if ((r->got / 4096) % 64 == 0)
			usleep(500);
	}
	return NULL;
}

/* A pair whose server side has a tiny SO_SNDBUF (inherited from the listener). */
static int tiny_pair(struct mp_channel *mp, int *h, int *cfd)
{
	struct sockaddr_in addr;
	struct mp_completion c;
	int lfd = t_listener(&addr), lh, small = 4096, rcv = 65536;

	setsockopt(lfd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	lh = mp_register(mp, lfd, 1, NULL, 0);
	if (lh < 0 || mp_accept(mp, lh, 1, 0))
		return -1;
	*cfd = t_client(&addr);
	/* bounded, so that a peer that does not read stops the writer */
	setsockopt(*cfd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	if (!t_next(mp, &c, 2000) || c.result < 0)
		return -1;
	*h = c.new_handle;
	return 0;
}

static void t_whole(void)
{
	struct mp_channel *mp = t_channel(64);
	struct reader rd = { .want = 2 * BIG };
	struct mp_completion c;
	pthread_t th;
	int h, i;
	size_t k;

	T_BEGIN("two 1 MiB writes through a 4 KiB send buffer: whole, in order, every byte");
	T_ASSERT(!tiny_pair(mp, &h, &rd.fd), "pair");
	for (i = 0; i < 2; i++)
		for (k = 0; k < BIG; k++)
			wbuf[i][k] = t_pat(9, (size_t)i * BIG + k);
	T_CALL(mp_write(mp, h, wbuf[0], BIG));
	T_CALL(mp_write(mp, h, wbuf[1], BIG));
	pthread_create(&th, NULL, slow_reader, &rd);
	for (i = 0; i < 2; i++) {
		T_ASSERT(t_next(mp, &c, 10000), "completion %d", i);
		T_ASSERT(c.op == MP_OP_WRITE && c.result == BIG, "write %d: %d", i, c.result);
	}
	pthread_join(th, NULL);
	T_ASSERT(rd.got == 2 * BIG && !rd.bad, "reader got %zu, %d bad", rd.got, rd.bad);
	close(rd.fd);
	mp_destroy(mp);
	T_OK();
}

static void t_reset(void)
{
	struct mp_channel *mp = t_channel(64);
	struct linger lg = { 1, 0 };
	unsigned char buf[65536];
	struct mp_completion c;
	int h, cfd, got = 0;

	T_BEGIN("peer resets mid-write: partial count, the write behind it -ECANCELED");
	T_ASSERT(!tiny_pair(mp, &h, &cfd), "pair");
	T_CALL(mp_write(mp, h, wbuf[0], BIG));
	T_CALL(mp_write(mp, h, wbuf[1], BIG));
	T_ASSERT(mp_flush(mp) == 2, "flush");
	/*
	 * Take what the flush sent (requests progress only inside the
	 * channel's calls, as on the device), then abort.
	 */
	got = read(cfd, buf, sizeof(buf));
	T_ASSERT(got > 0, "client read");
	setsockopt(cfd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(cfd);
	T_ASSERT(t_next(mp, &c, 5000), "first write completes");
	T_ASSERT(c.op == MP_OP_WRITE && c.result >= got && c.result < BIG,
		 "partial: %d (client read %d)", c.result, got);
	T_ASSERT(t_next(mp, &c, 5000), "second write completes");
	T_ASSERT(c.op == MP_OP_WRITE && c.result == -ECANCELED, "second: %d", c.result);
	mp_destroy(mp);
	T_OK();
}

static void t_cancel_midway(void)
{
	struct mp_channel *mp = t_channel(64);
	struct mp_completion c;
	unsigned char buf[4096];
	int h, cfd;

	T_BEGIN("cancel mid-write: partial count, the one behind -ECANCELED, cancel counts 2");
	T_ASSERT(!tiny_pair(mp, &h, &cfd), "pair");
	T_CALL(mp_write(mp, h, wbuf[0], BIG));
	T_CALL(mp_write(mp, h, wbuf[1], BIG));
	T_ASSERT(mp_flush(mp) == 2, "flush");
	T_ASSERT(read(cfd, buf, sizeof(buf)) > 0, "client read");	/* some went out */
	T_ASSERT(mp_dispatch(mp, &c, 50) == 0, "nothing completes while the peer sleeps");
	T_CALL(mp_cancel(mp, h, MP_CANCEL_OP(MP_OP_WRITE)));
	T_ASSERT(t_next(mp, &c, 2000), "write 1");
	T_ASSERT(c.op == MP_OP_WRITE && c.result > 0 && c.result < BIG, "partial %d", c.result);
	T_ASSERT(t_next(mp, &c, 2000), "write 2");
	T_ASSERT(c.op == MP_OP_WRITE && c.result == -ECANCELED, "second %d", c.result);
	T_ASSERT(t_next(mp, &c, 2000), "cancel");
	T_ASSERT(c.op == MP_OP_CANCEL && c.result == 2, "cancel result %d", c.result);
	close(cfd);
	mp_destroy(mp);
	T_OK();
}

int main(void)
{
	t_whole();
	t_reset();
	t_cancel_midway();
	return t_done();
}
