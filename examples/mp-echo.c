// SPDX-License-Identifier: GPL-2.0
/*
 * mp-echo: the benchmark's echo and HTTP server (bench/servers) ported to
 * MegaPipe channels (libmegapipe).  Same options and output contract as
 * the baseline servers: --addr --port --threads --cpus --proto echo|http
 * --backlog --max-conns --size; "ready ..." once listening, and on SIGTERM
 * "stats accepted N requests N errors N".
 *
 * One listener, shared; one channel per thread, the thread pinned to its
 * CPU (--cpus) and the listener registered to the channel with that CPU as
 * its mask, so that on a kernel with per-core listen a channel accepts the
 * connections that arrived on its own CPU first.  Without /dev/megapipe
 * the library runs on epoll (MEGAPIPE_BACKEND=epoll|kernel forces one).
 *
 * Per connection, one request at a time is in flight: a read; then, if the
 * protocol produced output, a write of all of it (and no read meanwhile:
 * back-pressure, as in the epoll loop); then the next read.  A read of 0
 * (the peer closed) or an HTTP response that ends the connection is
 * followed by a disconnect.  Each loop iteration is one mp_dispatch() call
 * per completion, and one system call when the fetched batch is used up.
 *
 * --copy (this server's own option): the channel's copy transport instead
 * of the shared-memory rings (as MEGAPIPE_RING=0), to compare the two.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <megapipe.h>

#include "server_common.h"

#define RBUF_SIZE	16384
#define ACCEPT_BATCH	16
#define TICK_MS		100	/* how often a quiet thread looks at the stop flag */
#define LISTENER_COOKIE	UINT64_MAX

struct mconn {
	int h;			/* -1: free */
	bool writing;
	struct srv_conn pc;
	struct srv_buf out;	/* the response being written */
	char rbuf[RBUF_SIZE];
};

struct mloop {
	struct srv_thread *t;
	struct srv_stats *st;
	struct mp_channel *mp;
	int lh;
	unsigned int active;
	struct mconn **conns;	/* by handle index, allocated on first use */
	unsigned int nconns;
};

static int stopping;
static pthread_once_t watch_once = PTHREAD_ONCE_INIT;
static int watch_fd;

/* One thread waits for srv_run's stop eventfd and raises the flag. */
static void *stop_watcher(void *arg)
{
	struct pollfd p = { .fd = watch_fd, .events = POLLIN };

	(void)arg;
	/* the eventfd is non-blocking: wait until it is readable */
	while (poll(&p, 1, -1) != 1)
		;
	__atomic_store_n(&stopping, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void start_watcher(void)
{
	pthread_t th;

	if (pthread_create(&th, NULL, stop_watcher, NULL))
		srv_die("pthread_create(stop watcher)");
	pthread_detach(th);
}

static struct mconn *conn_of(struct mloop *l, int h)
{
	unsigned int i = MEGAPIPE_HANDLE_INDEX((unsigned int)h);

	if (i >= l->nconns) {
		unsigned int n = l->nconns ? l->nconns : 1024;
		struct mconn **p;

		while (n <= i)
			n *= 2;
		p = realloc(l->conns, n * sizeof(*p));
		if (!p)
			srv_die("thread %d: connection table", l->t->idx);
		memset(p + l->nconns, 0, (n - l->nconns) * sizeof(*p));
		l->conns = p;
		l->nconns = n;
	}
	if (!l->conns[i]) {
		l->conns[i] = calloc(1, sizeof(struct mconn));
		if (!l->conns[i])
			srv_die("thread %d: connection", l->t->idx);
		l->conns[i]->h = -1;
	}
	return l->conns[i];
}

static void conn_read(struct mloop *l, struct mconn *c)
{
	if (mp_read(l->mp, c->h, c->rbuf, sizeof(c->rbuf)))
		srv_die("thread %d: mp_read", l->t->idx);
}

static void conn_close(struct mloop *l, struct mconn *c)
{
	if (mp_disconnect(l->mp, c->h))
		srv_die("thread %d: mp_disconnect", l->t->idx);
}

/* A reset by the peer is its way of closing, not a server error. */
static void conn_fail(struct mloop *l, struct mconn *c, int err)
{
	if (err != ECONNRESET && err != EPIPE)
		l->st->errors++;
	conn_close(l, c);
}

static void on_accept(struct mloop *l, const struct mp_completion *e)
{
	struct mconn *c;

	if (!(e->flags & MP_F_MORE) && mp_accept(l->mp, l->lh, ACCEPT_BATCH, 0))
		srv_die("thread %d: mp_accept", l->t->idx);
	if (e->result < 0) {
		if (e->result != -ECONNABORTED)
			l->st->errors++;
		return;
	}
	c = conn_of(l, e->new_handle);
	c->h = e->new_handle;
	c->writing = false;
	c->out.len = 0;
	srv_conn_reset(&c->pc);
	if (l->active >= l->t->opts->max_conns) {	/* over --max-conns */
		l->st->errors++;
		conn_close(l, c);
		return;
	}
	l->active++;
	l->st->accepted++;
	conn_read(l, c);
}

static void on_read(struct mloop *l, struct mconn *c, int res)
{
	if (res < 0) {
		conn_fail(l, c, -res);
		return;
	}
	if (!res) {			/* peer closed */
		conn_close(l, c);
		return;
	}
	c->out.len = 0;
	if (srv_proto_input(&c->pc, l->t->opts, c->rbuf, res, &c->out, l->st)) {
		conn_fail(l, c, EPROTO);
		return;
	}
	if (c->out.len) {
		if (mp_write(l->mp, c->h, c->out.data, c->out.len))
			srv_die("thread %d: mp_write", l->t->idx);
		c->writing = true;
	} else {
		conn_read(l, c);	/* an incomplete HTTP head */
	}
}

static void on_write(struct mloop *l, struct mconn *c, int res)
{
	c->writing = false;
	if (res < 0 || (size_t)res != c->out.len) {	/* partial: the peer went away */
		conn_fail(l, c, res < 0 ? -res : EPIPE);
		return;
	}
	if (c->pc.close_after)
		conn_close(l, c);
	else
		conn_read(l, c);
}

static void serve(struct srv_thread *t)
{
	const struct srv_opts *o = t->opts;
	unsigned int cq = 2 * o->max_conns + 2 * ACCEPT_BATCH;
	struct mp_completion e;
	struct mloop l = { .t = t, .st = &t->stats };
	cpu_set_t set;
	unsigned int i;
	int n;

	watch_fd = t->stop_fd;
	pthread_once(&watch_once, start_watcher);
	if (cq > 65536)
		cq = 65536;
	l.mp = mp_create(0, cq);
	if (!l.mp)
		srv_die("thread %d: mp_create(%u)", t->idx, cq);
	CPU_ZERO(&set);
	if (o->cpus)
		CPU_SET(o->cpus[t->idx], &set);
	l.lh = mp_register(l.mp, t->lfd, LISTENER_COOKIE, o->cpus ? &set : NULL,
			   o->cpus ? sizeof(set) : 0);
	if (l.lh < 0)
		srv_die("thread %d: mp_register(listener)", t->idx);
	if (mp_accept(l.mp, l.lh, ACCEPT_BATCH, 0))
		srv_die("thread %d: mp_accept", t->idx);
	srv_thread_ready();

	while (!__atomic_load_n(&stopping, __ATOMIC_ACQUIRE)) {
		n = mp_dispatch(l.mp, &e, TICK_MS);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			srv_die("thread %d: mp_dispatch", t->idx);
		}
		if (!n)
			continue;
		if (e.op == MP_OP_ACCEPT) {
			on_accept(&l, &e);
			continue;
		}
		{
			struct mconn *c = conn_of(&l, e.handle);

			switch (e.op) {
			case MP_OP_READ:
				on_read(&l, c, e.result);
				break;
			case MP_OP_WRITE:
				on_write(&l, c, e.result);
				break;
			case MP_OP_DISCONNECT:
				c->h = -1;
				if (l.active)
					l.active--;
				break;
			}
		}
	}

	mp_destroy(l.mp);	/* releases every connection */
	for (i = 0; i < l.nconns; i++) {
		if (!l.conns[i])
			continue;
		srv_conn_free(&l.conns[i]->pc);
		srv_buf_free(&l.conns[i]->out);
		free(l.conns[i]);
	}
	free(l.conns);
}

int main(int argc, char **argv)
{
	struct srv_opts o;
	int *lfds, lfd, i, j;

	for (i = j = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--copy"))
			setenv("MEGAPIPE_RING", "0", 1);
		else
			argv[j++] = argv[i];
	}
	argc = j;
	argv[argc] = NULL;
	srv_parse_args(argc, argv, &o, "mp-echo", 0);
	lfd = srv_listen(&o, false, SOCK_NONBLOCK);
	lfds = calloc(o.threads, sizeof(*lfds));
	if (!lfds)
		srv_die("calloc");
	for (i = 0; i < o.threads; i++)
		lfds[i] = lfd;
	srv_run(&o, lfds, serve);
	free(lfds);
	free(o.cpus);
	return 0;
}
