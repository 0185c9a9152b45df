// SPDX-License-Identifier: GPL-2.0
/*
 * kv-epoll: a memcached-protocol key-value server on epoll, the baseline
 * of kv-mp.  Options and output as bench/servers (--addr --port --threads
 * --cpus --backlog --max-conns; "ready ..."; on SIGTERM "stats accepted N
 * requests N errors N", requests = commands) plus the store's (--memory,
 * --max-item, --shards); see docs/kv.md.
 *
 * One listener shared by all threads, registered EPOLLEXCLUSIVE in each
 * thread's epoll instance, level-triggered, one accept4() per event (as
 * srv-epoll-shared).  Connections are edge-triggered: an event reads,
 * handles the commands, writes the replies, and reads again until a read
 * returns less than the buffer (the socket was drained; new data makes a
 * new edge).  While a reply does not fit the socket the connection waits
 * for EPOLLOUT only and reads nothing (back-pressure).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kv_server.h"

#define MAX_EVENTS	256
#define EV_IN		(EPOLLIN | EPOLLRDHUP | EPOLLET)
#define EV_OUT		(EPOLLOUT | EPOLLRDHUP | EPOLLET)

static struct kv_store *store;

struct econn {
	int fd;
	bool blocked;			/* waiting for EPOLLOUT */
	enum kv_status after;		/* what to do once c.out is written */
	size_t out_off;
	struct econn *prev, *next;	/* the thread's connections */
	struct kv_conn c;
};

struct eloop {
	struct srv_thread *t;
	int ep;
	unsigned int active;
	struct econn *conns;
	struct kv_stats ks;
};

static void conn_close(struct eloop *l, struct econn *e)
{
	close(e->fd);
	if (e->prev)
		e->prev->next = e->next;
	else
		l->conns = e->next;
	if (e->next)
		e->next->prev = e->prev;
	kv_conn_free(&e->c);
	free(e);
	l->active--;
}

static void conn_fail(struct eloop *l, struct econn *e, int err)
{
	if (err != ECONNRESET && err != EPIPE)
		l->t->stats.errors++;
	conn_close(l, e);
}

/* Write what is left of the output: 1 all written, 0 blocked, -errno. */
static int flush_out(struct econn *e)
{
	while (e->out_off < e->c.out.len) {
		ssize_t w = send(e->fd, e->c.out.data + e->out_off,
				 e->c.out.len - e->out_off, MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? 0 : -errno;
		}
		e->out_off += w;
	}
	e->out_off = 0;
	kv_written(&e->c);
	return 1;
}

static int set_events(struct eloop *l, struct econn *e, uint32_t ev)
{
	struct epoll_event ee = { .events = ev, .data.ptr = e };

	return epoll_ctl(l->ep, EPOLL_CTL_MOD, e->fd, &ee);
}

/*
 * Handle what is buffered, write replies, read more; until the socket is
 * drained, blocked on output, or closed.  @rdhup: the peer has shut down
 * its side, read to the end of the stream.
 */
static void conn_serve(struct eloop *l, struct econn *e, bool rdhup)
{
	bool drained = false;

	for (;;) {
		enum kv_status st = kv_process(&e->c);
		size_t space;
		ssize_t n;
		int r;

		if (e->c.out.len) {
			r = flush_out(e);
			if (r < 0) {
				conn_fail(l, e, -r);
				return;
			}
			if (!r) {
				e->blocked = true;
				e->after = st;
				if (set_events(l, e, EV_OUT))
					conn_fail(l, e, errno);
				return;
			}
		}
		if (st == KV_CLOSE) {
			conn_close(l, e);
			return;
		}
		if (st == KV_WRITE)
			continue;
		if (drained)		/* wait for the next edge */
			return;
		space = kv_rspace(&e->c);
		n = read(e->fd, kv_rbuf(&e->c), space);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				conn_fail(l, e, errno);
			return;
		}
		if (!n) {			/* peer closed; replies are out */
			conn_close(l, e);
			return;
		}
		kv_received(&e->c, n);
		drained = (size_t)n < space && !rdhup;
	}
}

static void conn_event(struct eloop *l, struct econn *e, uint32_t ev)
{
	int r;

	if (e->blocked) {
		if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		r = flush_out(e);
		if (r < 0) {
			conn_fail(l, e, -r);
			return;
		}
		if (!r)
			return;
		e->blocked = false;
		if (e->after == KV_CLOSE) {
			conn_close(l, e);
			return;
		}
		/* re-polls: input that came meanwhile makes an event */
		if (set_events(l, e, EV_IN)) {
			conn_fail(l, e, errno);
			return;
		}
	}
	conn_serve(l, e, ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR));
}

static void on_listener(struct eloop *l)
{
	struct epoll_event ee;
	struct econn *e;
	int fd;

	fd = accept4(l->t->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno != EAGAIN && errno != ECONNABORTED && errno != EINTR)
			l->t->stats.errors++;
		return;
	}
	if (l->active >= l->t->opts->max_conns) {	/* over --max-conns */
		l->t->stats.errors++;
		close(fd);
		return;
	}
	e = calloc(1, sizeof(*e));
	if (!e || kv_conn_init(&e->c, store, &l->ks)) {
		free(e);
		l->t->stats.errors++;
		close(fd);
		return;
	}
	e->fd = fd;
	e->next = l->conns;
	if (l->conns)
		l->conns->prev = e;
	l->conns = e;
	l->active++;
	l->t->stats.accepted++;
	ee.events = EV_IN;
	ee.data.ptr = e;
	if (epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ee)) {
		conn_fail(l, e, errno);
		return;
	}
	/* the request may be there already: an edge before the ADD is lost */
	conn_serve(l, e, false);
}

static void serve(struct srv_thread *t)
{
	struct epoll_event evs[MAX_EVENTS], ee;
	struct eloop l = { .t = t };
	static char lst, stp;		/* their addresses tag the events */
	bool stopping = false;
	int n, i;

	l.ep = epoll_create1(EPOLL_CLOEXEC);
	if (l.ep < 0)
		srv_die("thread %d: epoll_create1", t->idx);
	ee.events = EPOLLIN | EPOLLEXCLUSIVE;
	ee.data.ptr = &lst;
	if (epoll_ctl(l.ep, EPOLL_CTL_ADD, t->lfd, &ee))
		srv_die("thread %d: epoll_ctl(listener)", t->idx);
	ee.events = EPOLLIN;
	ee.data.ptr = &stp;
	if (epoll_ctl(l.ep, EPOLL_CTL_ADD, t->stop_fd, &ee))
		srv_die("thread %d: epoll_ctl(stop)", t->idx);
	srv_thread_ready();

	while (!stopping) {
		n = epoll_wait(l.ep, evs, MAX_EVENTS, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			srv_die("thread %d: epoll_wait", t->idx);
		}
		for (i = 0; i < n; i++) {
			if (evs[i].data.ptr == &lst)
				on_listener(&l);
			else if (evs[i].data.ptr == &stp)
				stopping = true;
			else
				conn_event(&l, evs[i].data.ptr, evs[i].events);
		}
	}
	while (l.conns)
		conn_close(&l, l.conns);
	close(l.ep);
	kv_server_account(t, &l.ks);
}

int main(int argc, char **argv)
{
	struct srv_opts o;

	store = kv_server_setup(argc, argv, &o, "kv-epoll", 0);
	srv_run_shared(&o, serve);
	free(o.cpus);
	kv_store_destroy(store);
	return 0;
}
