// SPDX-License-Identifier: GPL-2.0
/*
 * kv-mp: the memcached-protocol key-value server of kv-epoll on MegaPipe
 * channels (libmegapipe).  Same options and output (see kv-epoll.c and
 * docs/kv.md); the protocol and the store are the same code.
 *
 * One listener, shared, registered in every thread's channel with that
 * thread's CPU (--cpus); one channel per thread.  Per connection one
 * request is in flight at a time: a read into the protocol's input buffer;
 * after it, the commands are handled and, if there are replies, one write
 * of all of them (no read meanwhile: back-pressure); then the next read.
 * A read of 0, "quit" or a fatal protocol error ends in a disconnect.
 * Without /dev/megapipe the library runs on its epoll backend
 * (MEGAPIPE_BACKEND=epoll|kernel forces one).
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

#include "kv_server.h"

#define ACCEPT_BATCH	16
#define TICK_MS		100	/* a quiet thread looks at the stop flag */
#define LISTENER_COOKIE	UINT64_MAX
#define MAX_CQ		65536

static struct kv_store *store;
static int stop_flag;
static int stop_fd;
static pthread_once_t stop_once = PTHREAD_ONCE_INIT;

struct mconn {
	int h;				/* -1: free */
	bool live;			/* c is initialised */
	enum kv_status after;		/* what follows the write in flight */
	struct kv_conn c;
};

struct mloop {
	struct srv_thread *t;
	struct mp_channel *mp;
	int lh;
	unsigned int active;
	struct mconn **conns;		/* by handle index */
	unsigned int nconns;
	struct kv_stats ks;
};

/* srv_run's stop eventfd is no socket: one thread waits for it. */
static void *stop_watch(void *arg)
{
	struct pollfd p = { .fd = stop_fd, .events = POLLIN };

	(void)arg;
	while (poll(&p, 1, -1) != 1)
		;
	__atomic_store_n(&stop_flag, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void stop_watch_start(void)
{
	pthread_t th;

	if (pthread_create(&th, NULL, stop_watch, NULL))
		srv_die("pthread_create(stop watcher)");
	pthread_detach(th);
}

static struct mconn *conn_of(struct mloop *l, int h)
{
	unsigned int i = MEGAPIPE_HANDLE_INDEX((unsigned int)h);

	if (i >= l->nconns) {
		unsigned int n = l->nconns ? l->nconns : 256;
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

static void conn_close(struct mloop *l, struct mconn *m)
{
	if (mp_disconnect(l->mp, m->h))
		srv_die("thread %d: mp_disconnect", l->t->idx);
}

static void conn_fail(struct mloop *l, struct mconn *m, int err)
{
	if (err != ECONNRESET && err != EPIPE)
		l->t->stats.errors++;
	conn_close(l, m);
}

/* Handle what is buffered; queue the write of the replies, or a read. */
static void conn_step(struct mloop *l, struct mconn *m)
{
	enum kv_status st = kv_process(&m->c);

	if (m->c.out.len) {
		m->after = st;
		if (mp_write(l->mp, m->h, m->c.out.data, m->c.out.len))
			srv_die("thread %d: mp_write", l->t->idx);
		return;
	}
	if (st == KV_CLOSE) {
		conn_close(l, m);
		return;
	}
	/* KV_WRITE comes with output, so this is KV_READ */
	if (mp_read(l->mp, m->h, kv_rbuf(&m->c), kv_rspace(&m->c)))
		srv_die("thread %d: mp_read", l->t->idx);
}

static void on_accept(struct mloop *l, const struct mp_completion *e)
{
	struct mconn *m;

	if (!(e->flags & MP_F_MORE) &&
	    mp_accept(l->mp, l->lh, ACCEPT_BATCH, 0))
		srv_die("thread %d: mp_accept", l->t->idx);
	if (e->result < 0) {
		if (e->result != -ECONNABORTED)
			l->t->stats.errors++;
		return;
	}
	m = conn_of(l, e->new_handle);
	m->h = e->new_handle;
	if (l->active >= l->t->opts->max_conns ||	/* over --max-conns */
	    kv_conn_init(&m->c, store, &l->ks)) {
		l->t->stats.errors++;
		conn_close(l, m);
		return;
	}
	m->live = true;
	l->active++;
	l->t->stats.accepted++;
	conn_step(l, m);
}

static void on_read(struct mloop *l, struct mconn *m, int res)
{
	if (res < 0) {
		conn_fail(l, m, -res);
		return;
	}
	if (!res) {			/* peer closed; replies are out */
		conn_close(l, m);
		return;
	}
	kv_received(&m->c, res);
	conn_step(l, m);
}

static void on_write(struct mloop *l, struct mconn *m, int res)
{
	if (res < 0 || (size_t)res != m->c.out.len) {
		conn_fail(l, m, res < 0 ? -res : EPIPE);
		return;
	}
	kv_written(&m->c);
	if (m->after == KV_CLOSE)
		conn_close(l, m);
	else
		conn_step(l, m);
}

static void on_disconnect(struct mloop *l, struct mconn *m)
{
	m->h = -1;
	if (m->live) {
		kv_conn_free(&m->c);
		m->live = false;
		l->active--;
	}
}

static void serve(struct srv_thread *t)
{
	const struct srv_opts *o = t->opts;
	unsigned int cq = 2 * o->max_conns + 2 * ACCEPT_BATCH, i;
	struct mloop l = { .t = t };
	struct mp_completion e;
	cpu_set_t set;
	int n;

	stop_fd = t->stop_fd;
	pthread_once(&stop_once, stop_watch_start);
	if (cq > MAX_CQ)
		cq = MAX_CQ;
	l.mp = mp_create(0, cq);
	if (!l.mp)
		srv_die("thread %d: mp_create(%u)", t->idx, cq);
	CPU_ZERO(&set);
	if (o->cpus)
		CPU_SET(o->cpus[t->idx], &set);
	l.lh = mp_register(l.mp, t->lfd, LISTENER_COOKIE,
			   o->cpus ? &set : NULL, o->cpus ? sizeof(set) : 0);
	if (l.lh < 0)
		srv_die("thread %d: mp_register(listener)", t->idx);
	if (mp_accept(l.mp, l.lh, ACCEPT_BATCH, 0))
		srv_die("thread %d: mp_accept", t->idx);
	if (!t->idx) {
		struct mp_info info;

		if (mp_features(l.mp, &info))
			srv_die("mp_features");
		fprintf(stderr, "kv-mp: backend %s\n",
			info.backend == MP_BACKEND_KERNEL ? "kernel" : "epoll");
	}
	srv_thread_ready();

	while (!__atomic_load_n(&stop_flag, __ATOMIC_ACQUIRE)) {
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
		switch (e.op) {
		case MP_OP_READ:
			on_read(&l, conn_of(&l, e.handle), e.result);
			break;
		case MP_OP_WRITE:
			on_write(&l, conn_of(&l, e.handle), e.result);
			break;
		case MP_OP_DISCONNECT:
			on_disconnect(&l, conn_of(&l, e.handle));
			break;
		}
	}

	mp_destroy(l.mp);		/* releases every connection */
	for (i = 0; i < l.nconns; i++) {
		if (!l.conns[i])
			continue;
		if (l.conns[i]->live)
			kv_conn_free(&l.conns[i]->c);
		free(l.conns[i]);
	}
	free(l.conns);
	kv_server_account(t, &l.ks);
}

int main(int argc, char **argv)
{
	struct srv_opts o;
	int *lfds, lfd, i;

	store = kv_server_setup(argc, argv, &o, "kv-mp", 0);
	lfd = srv_listen(&o, false, SOCK_NONBLOCK);
	lfds = calloc(o.threads, sizeof(*lfds));
	if (!lfds)
		srv_die("calloc");
	for (i = 0; i < o.threads; i++)
		lfds[i] = lfd;
	srv_run(&o, lfds, serve);
	free(lfds);
	free(o.cpus);
	kv_store_destroy(store);
	return 0;
}
