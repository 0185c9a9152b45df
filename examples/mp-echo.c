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
 * Where the channel has buffer rings (MP_FEAT_BUFFERS), each connection
 * has one multishot read armed for its life instead, into buffers of a
 * ring the thread provides (MS_BUFS of MS_BUF_SIZE): the data is fed to
 * the protocol and the buffer given back at once.  Input that arrives
 * while a response is being written waits in the connection until the
 * write completes (the same back-pressure).
 *
 * Options of this server's own: --copy, the channel's copy transport
 * instead of the shared-memory rings (as MEGAPIPE_RING=0); --single, one
 * read at a time even where multishot reads exist.  To compare them.
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
#define MS_GROUP	0
#define MS_BUFS		1024
#define MS_BUF_SIZE	4096

static bool single_reads;	/* --single */

struct mconn {
	int h;			/* -1: free */
	bool writing;
	bool closing;		/* disconnect queued */
	struct srv_conn pc;
	struct srv_buf out;	/* the response being written */
	struct srv_buf held;	/* multishot: input that came while writing */
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
	bool multishot;
	char *bufs;		/* MS_BUFS x MS_BUF_SIZE */
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
	if (l->multishot)	/* armed for the connection's life */
		return;
	if (mp_read(l->mp, c->h, c->rbuf, sizeof(c->rbuf)))
		srv_die("thread %d: mp_read", l->t->idx);
}

static void conn_arm(struct mloop *l, struct mconn *c)
{
	if (mp_read_multishot(l->mp, c->h, MS_GROUP))
		srv_die("thread %d: mp_read_multishot", l->t->idx);
}

static void conn_close(struct mloop *l, struct mconn *c)
{
	c->closing = true;
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
	c->closing = false;
	c->out.len = 0;
	srv_conn_reset(&c->pc);
	if (l->active >= l->t->opts->max_conns) {	/* over --max-conns */
		l->st->errors++;
		conn_close(l, c);
		return;
	}
	l->active++;
	l->st->accepted++;
	c->held.len = 0;
	if (l->multishot)
		conn_arm(l, c);
	else
		conn_read(l, c);
}

/* Feed @len bytes to the protocol; write what it answers. */
static void conn_input(struct mloop *l, struct mconn *c, const char *data,
		       size_t len)
{
	c->out.len = 0;
	if (srv_proto_input(&c->pc, l->t->opts, data, len, &c->out, l->st)) {
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
	conn_input(l, c, c->rbuf, res);
}

/* A multishot read's completion: data in a buffer of the ring. */
static void on_read_buffer(struct mloop *l, struct mconn *c,
			   const struct mp_completion *e)
{
	bool armed = e->flags & MP_F_MORE;

	if (c->closing) {		/* what came before the disconnect ran */
		if ((e->flags & MP_F_BUFFER) &&
		    mp_buffer_release(l->mp, MS_GROUP, e->new_handle))
			srv_die("thread %d: mp_buffer_release", l->t->idx);
		return;
	}
	if (e->flags & MP_F_BUFFER) {
		const char *data = mp_buffer(l->mp, MS_GROUP, e->new_handle);

		if (c->writing || c->pc.close_after)
			srv_buf_append(&c->held, data, e->result);
		else
			conn_input(l, c, data, e->result);
		if (mp_buffer_release(l->mp, MS_GROUP, e->new_handle))
			srv_die("thread %d: mp_buffer_release", l->t->idx);
		/* ended for want of queue room: again */
		if (!armed)
			conn_arm(l, c);
		return;
	}
	if (e->result == -ENOBUFS) {	/* every buffer out: again */
		conn_arm(l, c);
		return;
	}
	if (e->result == -ECANCELED)	/* our disconnect */
		return;
	on_read(l, c, e->result);	/* end of stream or an error */
}

static void on_write(struct mloop *l, struct mconn *c, int res)
{
	c->writing = false;
	if (res < 0 || (size_t)res != c->out.len) {	/* partial: the peer went away */
		conn_fail(l, c, res < 0 ? -res : EPIPE);
		return;
	}
	if (c->pc.close_after) {
		conn_close(l, c);
	} else if (c->held.len) {
		struct srv_buf in = c->held;

		c->held = (struct srv_buf){ 0 };
		conn_input(l, c, in.data, in.len);
		srv_buf_free(&in);
	} else {
		conn_read(l, c);
	}
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
	if (!single_reads) {
		struct mp_info info;

		if (mp_features(l.mp, &info))
			srv_die("thread %d: mp_features", t->idx);
		l.multishot = info.features & MP_FEAT_BUFFERS;
	}
	if (l.multishot) {
		l.bufs = malloc((size_t)MS_BUFS * MS_BUF_SIZE);
		if (!l.bufs)
			srv_die("thread %d: buffers", t->idx);
		/* touched now: not one page fault per buffer on its first read */
		memset(l.bufs, 0xa5, (size_t)MS_BUFS * MS_BUF_SIZE);	/* not 0: no calloc() */
		if (mp_provide_buffers(l.mp, MS_GROUP, l.bufs, MS_BUF_SIZE, MS_BUFS))
			srv_die("thread %d: mp_provide_buffers", t->idx);
	}
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
				if (l.multishot)
					on_read_buffer(&l, c, &e);
				else
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
		srv_buf_free(&l.conns[i]->held);
		free(l.conns[i]);
	}
	free(l.conns);
	free(l.bufs);
}

int main(int argc, char **argv)
{
	struct srv_opts o;
	int *lfds, lfd, i, j;

	for (i = j = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--copy"))
			setenv("MEGAPIPE_RING", "0", 1);
		else if (!strcmp(argv[i], "--single"))
			single_reads = true;
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
