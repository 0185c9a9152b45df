// SPDX-License-Identifier: GPL-2.0
/*
 * Per-thread epoll loop.  Each thread owns its epoll instance and its
 * connections; a connection never moves between threads.
 *
 * The listener is level-triggered and each listener event accepts one
 * connection: if more are queued, the next epoll_wait() reports the
 * listener again, so the common case costs no accept4() that fails with
 * EAGAIN.  With a shared listener, EPOLLEXCLUSIVE wakes one waiting
 * thread per connection instead of all of them (no thundering herd).
 *
 * A connection waits either for input (EPOLLIN) or, while the socket
 * does not take a whole response, for output space (EPOLLOUT): it reads
 * no more requests until its pending output is gone.  Switching back to
 * EPOLLIN with EPOLL_CTL_MOD re-polls the socket, so input that arrived
 * in between is reported even when edge-triggered.
 *
 * Edge-triggered, one event may read several times: until a read returns
 * less than the buffer (the socket was drained at that moment, and any
 * later data raises a new edge), or, when the event says EPOLLRDHUP, until
 * the end of the stream, since a FIN that came with the data raises no
 * edge of its own.  Level-triggered, each event reads once.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "epoll_loop.h"

#define RBUF_SIZE	16384
#define MAX_EVENTS	256
#define TAG_LISTENER	UINT64_MAX		/* epoll data of the listener */
#define TAG_STOP	(UINT64_MAX - 1)	/* ... and of the stop eventfd */

struct econn {
	int fd;				/* -1: slot is free */
	struct srv_conn pc;
	struct srv_buf pend;		/* output the socket did not take yet */
};

struct eloop {
	struct srv_thread *t;
	struct srv_stats *st;
	bool edge;
	int ep;
	struct econn *conns;		/* --max-conns slots */
	unsigned int *free_slots;	/* stack of free slot numbers */
	unsigned int nfree;
	struct srv_buf out;		/* responses to one read */
	char rbuf[RBUF_SIZE];
};

static void epoll_add(struct eloop *l, int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev = { .events = events, .data.u64 = data };

	if (epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ev))
		srv_die("thread %d: epoll_ctl(ADD, fd %d)", l->t->idx, fd);
}

static void conn_want(struct eloop *l, struct econn *c, int op)
{
	struct epoll_event ev = {
		.events = (c->pend.len ? EPOLLOUT : EPOLLIN | EPOLLRDHUP) |
			  (l->edge ? EPOLLET : 0),
		.data.u64 = c - l->conns,
	};

	if (epoll_ctl(l->ep, op, c->fd, &ev))
		srv_die("thread %d: epoll_ctl(%s, connection fd %d)", l->t->idx,
			op == EPOLL_CTL_ADD ? "ADD" : "MOD", c->fd);
}

static void conn_close(struct eloop *l, struct econn *c)
{
	close(c->fd);
	c->fd = -1;
	c->pend.len = 0;
	srv_conn_reset(&c->pc);
	l->free_slots[l->nfree++] = c - l->conns;
}

/* A reset by the peer is its way of closing, not a server error. */
static void conn_fail(struct eloop *l, struct econn *c, int err)
{
	if (err != ECONNRESET && err != EPIPE)
		l->st->errors++;
	conn_close(l, c);
}

/* Send @n bytes; what the socket does not take waits in c->pend. */
static int conn_send(struct eloop *l, struct econn *c, const char *p, size_t n)
{
	ssize_t w = n ? send(c->fd, p, n, MSG_NOSIGNAL) : 0;

	if (w < 0) {
		if (errno != EAGAIN)
			return -1;
		w = 0;
	}
	if ((size_t)w < n) {
		srv_buf_append(&c->pend, p + w, n - w);
		conn_want(l, c, EPOLL_CTL_MOD);
	}
	return 0;
}

static void conn_read(struct eloop *l, struct econn *c, bool to_eof)
{
	ssize_t n;

	do {
		n = recv(c->fd, l->rbuf, sizeof(l->rbuf), 0);
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0) {
			conn_fail(l, c, errno);
			return;
		}
		if (n == 0) {		/* peer closed */
			conn_close(l, c);
			return;
		}
		l->out.len = 0;
		if (srv_proto_input(&c->pc, l->t->opts, l->rbuf, n, &l->out,
				    l->st)) {
			conn_fail(l, c, EPROTO);
			return;
		}
		if (conn_send(l, c, l->out.data, l->out.len)) {
			conn_fail(l, c, errno);
			return;
		}
		if (c->pend.len)	/* read on once the output is gone */
			return;
		if (c->pc.close_after) {
			conn_close(l, c);
			return;
		}
	} while (l->edge && (to_eof || n == sizeof(l->rbuf)));
}

static void conn_event(struct eloop *l, struct econn *c, uint32_t events)
{
	ssize_t w;

	if (!c->pend.len) {
		conn_read(l, c, events & EPOLLRDHUP);
		return;
	}

	w = send(c->fd, c->pend.data, c->pend.len, MSG_NOSIGNAL);
	if (w < 0) {
		if (errno != EAGAIN)
			conn_fail(l, c, errno);
		return;
	}
	srv_buf_consume(&c->pend, w);
	if (c->pend.len)
		return;
	if (c->pc.close_after)
		conn_close(l, c);
	else
		conn_want(l, c, EPOLL_CTL_MOD);
}

static void on_accept(struct eloop *l)
{
	struct econn *c;
	int fd;

	fd = accept4(l->t->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		/* EAGAIN: another thread took it; ECONNABORTED: peer gave up */
		if (errno != EAGAIN && errno != ECONNABORTED)
			l->st->errors++;
		return;
	}
	if (!l->nfree) {		/* over --max-conns */
		close(fd);
		l->st->errors++;
		return;
	}
	c = &l->conns[l->free_slots[--l->nfree]];
	c->fd = fd;
	conn_want(l, c, EPOLL_CTL_ADD);
	l->st->accepted++;
}

static void eloop_init(struct eloop *l, struct srv_thread *t, bool exclusive)
{
	unsigned int i, n = t->opts->max_conns;

	l->t = t;
	l->st = &t->stats;
	l->edge = t->opts->edge;
	l->ep = epoll_create1(EPOLL_CLOEXEC);
	if (l->ep < 0)
		srv_die("thread %d: epoll_create1", t->idx);
	l->conns = calloc(n, sizeof(*l->conns));
	l->free_slots = calloc(n, sizeof(*l->free_slots));
	if (!l->conns || !l->free_slots)
		srv_die("thread %d: allocating %u connection slots", t->idx, n);
	for (i = 0; i < n; i++) {
		l->conns[i].fd = -1;
		l->free_slots[i] = n - 1 - i;	/* hand out slot 0 first */
	}
	l->nfree = n;
	epoll_add(l, t->lfd, EPOLLIN | (exclusive ? EPOLLEXCLUSIVE : 0),
		  TAG_LISTENER);
	epoll_add(l, t->stop_fd, EPOLLIN, TAG_STOP);
}

static void eloop_destroy(struct eloop *l)
{
	unsigned int i;

	for (i = 0; i < l->t->opts->max_conns; i++) {
		if (l->conns[i].fd >= 0)
			close(l->conns[i].fd);
		srv_conn_free(&l->conns[i].pc);
		srv_buf_free(&l->conns[i].pend);
	}
	srv_buf_free(&l->out);
	free(l->conns);
	free(l->free_slots);
	close(l->ep);
}

void epoll_serve(struct srv_thread *t, bool exclusive)
{
	struct epoll_event evs[MAX_EVENTS];
	struct srv_stall stall;
	struct eloop *l;
	bool stop = false;
	int i, n, tmo;

	l = calloc(1, sizeof(*l));
	if (!l)
		srv_die("thread %d: allocating the event loop", t->idx);
	eloop_init(l, t, exclusive);
	srv_thread_ready();
	srv_stall_init(&stall, t);

	while (!stop) {
		/* --stall-*: stall here, between iterations, when due */
		tmo = srv_stall_poll(&stall, t);
		n = epoll_wait(l->ep, evs, MAX_EVENTS, tmo);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			srv_die("thread %d: epoll_wait", t->idx);
		}
		for (i = 0; i < n; i++) {
			if (evs[i].data.u64 == TAG_STOP)
				stop = true;
			else if (evs[i].data.u64 == TAG_LISTENER)
				on_accept(l);
			else
				conn_event(l, &l->conns[evs[i].data.u64],
					   evs[i].events);
		}
	}

	eloop_destroy(l);
	free(l);
}
