// SPDX-License-Identifier: GPL-2.0
/*
 * mp_server: the channel server skeleton (see mp_server.h).
 *
 * The listener is registered in each thread's channel with the thread's
 * CPU as its mask: on a kernel with per-core listen a channel accepts the
 * connections of its own CPU first.  Each loop iteration is one
 * mp_dispatch() call per completion, and one system call when the fetched
 * batch is used up.  Back-pressure as in the epoll loops: no input is
 * offered while a reply is being written.  srv_run's stop eventfd is
 * polled in each channel (mp_poll(), MP_FEAT_FILES): its completion ends
 * the thread, so the loop waits without a timeout.
 *
 * Reads: where the channel has buffer rings (MP_FEAT_BUFFERS), one
 * multishot read per connection, armed for its life, into buffers of a
 * ring the thread provides, each given back once offered.  Input that
 * arrives while a reply is written is held; past HELD_MAX the read is
 * cancelled, and armed again once the held input was taken.  Elsewhere,
 * or with --single: one read at a time.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <megapipe.h>

#include "mp_server.h"

#define RBUF_SIZE	16384	/* a read at a time: its buffer */
#define MAX_CQ		65536
#define MS_GROUP	0
#define MS_BUFS		1024
#define MS_BUF_SIZE	4096
#define HELD_MAX	(64 * 1024)	/* input held while a reply is written */

struct mconn {
	int h;			/* the connection's handle */
	bool live;		/* accepted and opened: state is the protocol's */
	bool closing;		/* disconnect queued */
	bool writing;		/* a reply's write in flight */
	bool again;		/* MPS_AGAIN: input() once it is written */
	bool close_after;	/* MPS_CLOSE: disconnect once it is written */
	bool armed;		/* multishot: the read in flight */
	bool paused;		/* multishot: read cancelled, HELD_MAX held */
	bool eof;		/* the peer closed while a reply was written */
	size_t reply_len;
	/* kept from one connection of the slot to the next: */
	struct srv_buf held;	/* input the protocol has not taken */
	char *rbuf;		/* a read at a time: RBUF_SIZE */
	alignas(max_align_t) unsigned char state[];	/* the protocol's */
};

struct mloop {
	struct srv_thread *t;
	const struct mps_proto *p;
	struct mp_channel *mp;
	int lh;
	unsigned int active;
	unsigned int nconns;
	struct mconn **conns;	/* by handle index, allocated on first use */
	bool multishot;
	char *bufs;		/* MS_BUFS x MS_BUF_SIZE */
};

static const struct mps_proto *proto;
static bool single_reads;	/* --single */

/* A call that cannot fail in a correct loop failed. */
static void __attribute__((noreturn)) call_failed(struct mloop *l, const char *call)
{
	srv_die("thread %d: %s", l->t->idx, call);
}

static struct mconn *conn_of(struct mloop *l, int h)
{
	struct mconn **c = &l->conns[MP_HANDLE_INDEX(h)];

	if (!*c) {
		*c = calloc(1, sizeof(**c) + l->p->state_size);
		if (!*c)
			srv_die("thread %d: connection", l->t->idx);
	}
	return *c;
}

/* @err: why (0: the end); a reset by the peer is no server error. */
static void conn_close(struct mloop *l, struct mconn *c, int err)
{
	if (err && err != ECONNRESET && err != EPIPE)
		l->t->stats.errors++;
	c->closing = true;
	if (mp_disconnect(l->mp, c->h))
		call_failed(l, "mp_disconnect");
}

static void conn_arm(struct mloop *l, struct mconn *c)
{
	if (c->armed || c->paused || c->closing || c->eof)
		return;
	if (mp_read_multishot(l->mp, c->h, MS_GROUP))
		call_failed(l, "mp_read_multishot");
	c->armed = true;
}

/* Nothing (more) to write: read on, or close at the end of the stream. */
static void conn_idle(struct mloop *l, struct mconn *c)
{
	if (c->eof) {
		conn_close(l, c, 0);
	} else if (l->multishot) {
		c->paused = false;
		conn_arm(l, c);
	} else if (mp_read(l->mp, c->h, c->rbuf, RBUF_SIZE)) {
		call_failed(l, "mp_read");
	}
}

/* Offer the protocol what it left over and @len bytes more; write its reply. */
static void conn_feed(struct mloop *l, struct mconn *c, const char *data,
		      size_t len)
{
	struct mps_reply r = { 0 };
	long took;

	if (c->held.len) {
		srv_buf_append(&c->held, data, len);
		data = c->held.data;
		len = c->held.len;
	}
	took = l->p->input(c->state, l->t, data, len, &r);
	if (took < 0 || (size_t)took > len) {
		conn_close(l, c, EPROTO);
		return;
	}
	if (c->held.len)
		srv_buf_consume(&c->held, took);
	else if ((size_t)took < len)
		srv_buf_append(&c->held, data + took, len - took);

	if (r.len) {
		if (mp_write(l->mp, c->h, r.data, r.len))
			call_failed(l, "mp_write");
		c->writing = true;
		c->reply_len = r.len;
		c->again = r.next == MPS_AGAIN;
		c->close_after = r.next == MPS_CLOSE;
	} else if (r.next == MPS_CLOSE) {
		conn_close(l, c, 0);
	} else {
		conn_idle(l, c);
	}
}

/* Bytes that arrived: offered now, or held while a reply is written. */
static void conn_input(struct mloop *l, struct mconn *c, const char *data,
		       size_t len)
{
	if (!c->writing) {
		conn_feed(l, c, data, len);
		return;
	}
	srv_buf_append(&c->held, data, len);
	if (c->held.len > HELD_MAX && c->armed && !c->paused) {
		/* only the read: the reply's write goes on */
		if (mp_cancel(l->mp, c->h, MP_CANCEL_OP(MP_OP_READ)))
			call_failed(l, "mp_cancel");
		c->paused = true;
	}
}

static void on_accept(struct mloop *l, const struct mp_completion *e)
{
	struct mconn *c;

	if (!(e->flags & MP_F_MORE) && mp_accept(l->mp, l->lh, MPS_ACCEPT_BATCH, 0))
		call_failed(l, "mp_accept");
	if (e->result < 0) {
		if (e->result != -ECONNABORTED)
			l->t->stats.errors++;
		return;
	}
	c = conn_of(l, e->new_handle);
	memset(c, 0, offsetof(struct mconn, held));	/* not what the slot keeps */
	c->h = e->new_handle;
	c->held.len = 0;
	memset(c->state, 0, l->p->state_size);
	if (l->active >= l->t->opts->max_conns ||	/* over --max-conns */
	    (l->p->open && l->p->open(c->state, l->t))) {
		l->t->stats.errors++;
		conn_close(l, c, 0);
		return;
	}
	c->live = true;
	l->active++;
	l->t->stats.accepted++;
	if (!l->multishot && !c->rbuf) {
		c->rbuf = malloc(RBUF_SIZE);
		if (!c->rbuf)
			srv_die("thread %d: read buffer", l->t->idx);
	}
	conn_idle(l, c);
}

/* A multishot read's completion: data in a buffer of the ring, or its end. */
static void on_read_buffer(struct mloop *l, struct mconn *c,
			   const struct mp_completion *e)
{
	if (!(e->flags & MP_F_MORE))
		c->armed = false;
	if (e->flags & MP_F_BUFFER) {
		conn_input(l, c, mp_buffer(l->mp, MS_GROUP, e->new_handle),
			   e->result);
		if (mp_buffer_release(l->mp, MS_GROUP, e->new_handle))
			call_failed(l, "mp_buffer_release");
	} else if (!e->result) {	/* peer closed: after the reply */
		c->eof = true;
		if (!c->writing)
			conn_close(l, c, 0);
	} else if (e->result != -ENOBUFS && e->result != -ECANCELED) {
		conn_close(l, c, -e->result);
	}
	/*
	 * Ended for want of queue room or buffers, or by our cancel: armed
	 * again unless paused (then when the held input is taken).
	 */
	conn_arm(l, c);
}

static void on_write(struct mloop *l, struct mconn *c, int res)
{
	c->writing = false;
	if (c->closing)
		return;
	if (res < 0 || (size_t)res != c->reply_len) {	/* partial: the peer went away */
		conn_close(l, c, res < 0 ? -res : EPIPE);
		return;
	}
	if (c->close_after) {
		conn_close(l, c, 0);
	} else if (c->held.len || c->again) {
		c->again = false;
		conn_feed(l, c, NULL, 0);
	} else {
		conn_idle(l, c);
	}
}

/* The handle's last completion: the slot is free. */
static void on_disconnect(struct mloop *l, struct mconn *c)
{
	if (!c->live)
		return;
	if (l->p->close)
		l->p->close(c->state, l->t);
	c->live = false;
	l->active--;
	if (c->held.cap > RBUF_SIZE)	/* no slow client's backlog kept */
		srv_buf_free(&c->held);
}

static void dispatch(struct mloop *l, const struct mp_completion *e)
{
	struct mconn *c;

	if (e->op == MP_OP_ACCEPT) {
		on_accept(l, e);
		return;
	}
	c = conn_of(l, e->handle);
	switch (e->op) {
	case MP_OP_READ:
		if (c->closing) {	/* what came before the disconnect ran */
			if ((e->flags & MP_F_BUFFER) &&
			    mp_buffer_release(l->mp, MS_GROUP, e->new_handle))
				call_failed(l, "mp_buffer_release");
		} else if (l->multishot) {
			on_read_buffer(l, c, e);
		} else if (e->result > 0) {
			conn_feed(l, c, c->rbuf, e->result);
		} else {		/* 0: the peer closed */
			conn_close(l, c, -e->result);
		}
		break;
	case MP_OP_WRITE:
		on_write(l, c, e->result);
		break;
	case MP_OP_DISCONNECT:
		on_disconnect(l, c);
		break;
	}				/* MP_OP_CANCEL: the multishot read's end says it all */
}

struct mp_channel *mps_channel(struct srv_thread *t, unsigned int cq, int *lh,
			       struct mp_info *info)
{
	const struct srv_opts *o = t->opts;
	struct mp_channel *mp;
	cpu_set_t set;
	int h;

	if (cq > MAX_CQ)
		cq = MAX_CQ;
	mp = mp_create(0, cq);
	if (!mp)
		srv_die("thread %d: mp_create(%u)", t->idx, cq);
	CPU_ZERO(&set);
	if (o->cpus)
		CPU_SET(o->cpus[t->idx], &set);
	*lh = mp_register(mp, t->lfd, MPS_LISTENER_COOKIE,
			  o->cpus ? &set : NULL, o->cpus ? sizeof(set) : 0);
	if (*lh < 0)
		srv_die("thread %d: mp_register(listener)", t->idx);
	if (mp_accept(mp, *lh, MPS_ACCEPT_BATCH, 0))
		srv_die("thread %d: mp_accept", t->idx);
	/* srv_run's stop eventfd in the loop: its POLL ends the thread */
	h = mp_register_file(mp, t->stop_fd, MPS_STOP_COOKIE);
	if (h < 0 || mp_poll(mp, h, EPOLLIN, 0))
		srv_die("thread %d: polling the stop eventfd (MP_FEAT_FILES)", t->idx);
	if (mp_features(mp, info))
		srv_die("thread %d: mp_features", t->idx);
	if (!t->idx)
		fprintf(stderr, "%s: backend %s\n", o->design,
			info->backend == MP_BACKEND_KERNEL ? "kernel" : "epoll");
	return mp;
}

static void setup(struct mloop *l)
{
	const struct srv_opts *o = l->t->opts;
	struct mp_info info;

	l->mp = mps_channel(l->t, 2 * o->max_conns + 2 * MPS_ACCEPT_BATCH,
			    &l->lh, &info);
	/* virtual memory: the pages of the indexes in use are touched */
	l->nconns = info.max_handles;
	l->conns = calloc(l->nconns, sizeof(*l->conns));
	if (!l->conns)
		srv_die("thread %d: connection table", l->t->idx);
	/* back-pressure needs the cancel */
	l->multishot = !single_reads && (info.features & MP_FEAT_BUFFERS) &&
		       (info.features & MP_FEAT_CANCEL);
	if (!l->multishot)
		return;
	l->bufs = malloc((size_t)MS_BUFS * MS_BUF_SIZE);
	if (!l->bufs)
		srv_die("thread %d: buffers", l->t->idx);
	/* touched now: not one page fault per buffer on its first read */
	memset(l->bufs, 0xa5, (size_t)MS_BUFS * MS_BUF_SIZE);	/* not 0: no calloc() */
	if (mp_provide_buffers(l->mp, MS_GROUP, l->bufs, MS_BUF_SIZE, MS_BUFS))
		call_failed(l, "mp_provide_buffers");
}

static void serve(struct srv_thread *t)
{
	struct mloop l = { .t = t, .p = proto };
	struct mp_completion e;
	unsigned int i;
	int n;

	setup(&l);
	srv_thread_ready();

	for (;;) {
		n = mp_dispatch(l.mp, &e, -1);
		if (n < 0 && errno != EINTR)
			call_failed(&l, "mp_dispatch");
		if (n > 0 && e.op == MP_OP_POLL)	/* stopping */
			break;
		if (n > 0)
			dispatch(&l, &e);
	}

	mp_destroy(l.mp);	/* releases every connection */
	for (i = 0; i < l.nconns; i++) {
		struct mconn *c = l.conns[i];

		if (!c)
			continue;
		if (c->live && l.p->close)
			l.p->close(c->state, t);
		srv_buf_free(&c->held);
		free(c->rbuf);
		free(c);
	}
	free(l.conns);
	free(l.bufs);
}

int mps_options(int argc, char **argv)
{
	int i, j;

	if (argc < 1)
		return argc;
	for (i = j = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--copy"))
			setenv("MEGAPIPE_RING", "0", 1);
		else if (!strcmp(argv[i], "--epoll"))
			setenv("MEGAPIPE_BACKEND", "epoll", 1);
		else if (!strcmp(argv[i], "--single"))
			single_reads = true;
		else
			argv[j++] = argv[i];
	}
	argv[j] = NULL;
	return j;
}

void mps_run(const struct srv_opts *o, const struct mps_proto *p)
{
	proto = p;
	srv_run_shared(o, serve);
}
