// SPDX-License-Identifier: GPL-2.0
/*
 * mp-proxy: bench/servers/srv-proxy ported to MegaPipe channels.  A
 * thread per --threads pinned to its CPU of --cpus, a channel per thread
 * with the one listener registered in it for that CPU (per-core listen:
 * the CPU's own connections first), accepts kept armed.  For each
 * accepted connection the thread's channel CONNECTs to --backend (on the
 * kernel backend a lightweight socket whose local port, with Receive Flow
 * Deliver on, steers its packets to this CPU), then one multishot read
 * per side, armed for the pair's life, hands each buffer it fills to a
 * WRITE on the other side; the buffer goes back to the ring when that
 * write completes.  Either side's end of stream (or an error) disconnects
 * both.  Back-pressure is the buffer ring: a side that does not take its
 * bytes holds buffers until the ring is empty, and the reads wait.
 *
 * Same options and output as srv-proxy (--backend ADDR:PORT, and
 * --owner-stats: SO_INCOMING_CPU of the socket after each read, through
 * mp_getsockopt(), compared with the thread's CPU; printed as "owner
 * passive_reads N passive_local N active_reads N active_local N").
 * Needs multishot reads (MP_FEAT_BUFFERS): both of libmegapipe's backends
 * have them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <megapipe.h>

#include "mp_server.h"

#define GROUP		0
#define NBUFS		1024
#define BUF_SIZE	4096

/* A pair: side 0 the accepted client, side 1 the backend connection. */
struct pair {
	int h[2];		/* handles; -1: none (yet) */
	bool armed[2];		/* the side's multishot read is in flight */
	bool closing;		/* both disconnects queued */
	int handles;		/* handles whose DISCONNECT has not completed */
};

struct ploop {
	struct srv_thread *t;
	struct mp_channel *mp;
	int lh;
	int cpu;
	struct pair *pairs;
	unsigned int *free_pairs, nfree;
	int *by_index;		/* handle index -> pair * 2 + side, or -1 */
	unsigned int nindex;
	char *bufs;
	unsigned long reads[2], local[2];
};

static unsigned long owner_reads[2], owner_local[2];

static void __attribute__((noreturn)) call_failed(struct ploop *l, const char *call)
{
	srv_die("thread %d: %s", l->t->idx, call);
}

static void side_set(struct ploop *l, struct pair *p, int side, int h)
{
	p->h[side] = h;
	p->handles++;
	l->by_index[MP_HANDLE_INDEX(h)] = (p - l->pairs) * 2 + side;
}

static void arm(struct ploop *l, struct pair *p, int side)
{
	if (p->armed[side] || p->closing)
		return;
	if (mp_read_multishot(l->mp, p->h[side], GROUP))
		call_failed(l, "mp_read_multishot");
	p->armed[side] = true;
}

/* @err: why (0: the end of a stream); a reset is no server error. */
static void pair_close(struct ploop *l, struct pair *p, int err)
{
	int i;

	if (err && err != ECONNRESET && err != EPIPE)
		l->t->stats.errors++;
	if (p->closing)
		return;
	p->closing = true;
	for (i = 0; i < 2; i++)
		if (p->h[i] >= 0 && mp_disconnect(l->mp, p->h[i]))
			call_failed(l, "mp_disconnect");
}

static void on_accept(struct ploop *l, const struct mp_completion *e)
{
	const struct srv_opts *o = l->t->opts;
	struct pair *p;

	if (!(e->flags & MP_F_MORE) && mp_accept(l->mp, l->lh, MPS_ACCEPT_BATCH, 0))
		call_failed(l, "mp_accept");
	if (e->result < 0) {
		if (e->result != -ECONNABORTED)
			l->t->stats.errors++;
		return;
	}
	l->t->stats.accepted++;
	if (!l->nfree) {	/* over --max-conns */
		l->t->stats.errors++;
		if (mp_disconnect(l->mp, e->new_handle))
			call_failed(l, "mp_disconnect");
		l->by_index[MP_HANDLE_INDEX(e->new_handle)] = -1;
		return;
	}
	p = &l->pairs[l->free_pairs[--l->nfree]];
	memset(p, 0, sizeof(*p));
	p->h[1] = -1;
	side_set(l, p, 0, e->new_handle);
	/* connect out from this thread's CPU; its completion carries the pair */
	if (mp_connect(l->mp, (const struct sockaddr *)&o->backend, o->backend_len,
		       (p - l->pairs) * 2 + 1))
		call_failed(l, "mp_connect");
}

static void on_connect(struct ploop *l, const struct mp_completion *e)
{
	struct pair *p = &l->pairs[e->cookie / 2];

	if (e->result < 0) {
		pair_close(l, p, -e->result);
		return;
	}
	side_set(l, p, 1, e->new_handle);
	arm(l, p, 0);
	arm(l, p, 1);
}

static void count_owner(struct ploop *l, int h, int side)
{
	socklen_t len = sizeof(int);
	int cpu = -1;

	if (!l->t->opts->owner_stats ||
	    mp_getsockopt(l->mp, h, SOL_SOCKET, SO_INCOMING_CPU, &cpu, &len))
		return;
	l->reads[side]++;
	l->local[side] += cpu == l->cpu;
}

static void on_read(struct ploop *l, struct pair *p, int side,
		    const struct mp_completion *e)
{
	if (!(e->flags & MP_F_MORE))
		p->armed[side] = false;
	if (e->flags & MP_F_BUFFER) {
		if (p->closing) {
			if (mp_buffer_release(l->mp, GROUP, e->new_handle))
				call_failed(l, "mp_buffer_release");
			return;
		}
		count_owner(l, p->h[side], side);
		/* the buffer's id and the length ride in the write's user data */
		if (mp_write(l->mp, p->h[!side], mp_buffer(l->mp, GROUP, e->new_handle),
			     e->result) ||
		    mp_set_user_data(l->mp, (uint64_t)e->result << 32 |
					    ((uint32_t)e->new_handle + 1)))
			call_failed(l, "mp_write");
		if (!side)
			l->t->stats.echo_bytes += e->result;
	} else if (!e->result) {
		pair_close(l, p, 0);		/* a side ended */
	} else if (e->result != -ENOBUFS && e->result != -ECANCELED) {
		pair_close(l, p, -e->result);
	}
	/* ended for want of buffers or queue room: armed again */
	arm(l, p, side);
}

static void on_write(struct ploop *l, struct pair *p, const struct mp_completion *e)
{
	uint32_t bid = (uint32_t)e->user_data, len = e->user_data >> 32;

	if (bid && mp_buffer_release(l->mp, GROUP, bid - 1))
		call_failed(l, "mp_buffer_release");
	if (e->result == -ECANCELED)	/* by our disconnect */
		return;
	/* an error, or short: the other side went away mid-stream */
	if (e->result < 0 || (uint32_t)e->result != len)
		pair_close(l, p, e->result < 0 ? -e->result : EPIPE);
}

static void on_disconnect(struct ploop *l, struct pair *p, int h)
{
	l->by_index[MP_HANDLE_INDEX(h)] = -1;
	if (--p->handles)
		return;
	l->free_pairs[l->nfree++] = p - l->pairs;
}

static void dispatch(struct ploop *l, const struct mp_completion *e)
{
	struct pair *p;
	int ps;

	if (e->op == MP_OP_ACCEPT) {
		on_accept(l, e);
		return;
	}
	if (e->op == MP_OP_CONNECT) {
		on_connect(l, e);
		return;
	}
	ps = l->by_index[MP_HANDLE_INDEX(e->handle)];
	if (ps < 0) {			/* refused over --max-conns */
		return;
	}
	p = &l->pairs[ps / 2];
	switch (e->op) {
	case MP_OP_READ:
		on_read(l, p, ps & 1, e);
		break;
	case MP_OP_WRITE:
		on_write(l, p, e);
		break;
	case MP_OP_DISCONNECT:
		on_disconnect(l, p, e->handle);
		break;
	}
}

static void setup(struct ploop *l)
{
	const struct srv_opts *o = l->t->opts;
	struct mp_info info;
	unsigned int i;

	l->cpu = o->cpus ? o->cpus[l->t->idx] : sched_getcpu();
	/* per pair: two reads' and two writes' completions at a time, a connect */
	l->mp = mps_channel(l->t, 6 * o->max_conns + 2 * MPS_ACCEPT_BATCH,
			    &l->lh, &info);
	if (!(info.features & MP_FEAT_BUFFERS) || !(info.features & MP_FEAT_CONNECT))
		srv_die("thread %d: the channel has no multishot reads or no CONNECT",
			l->t->idx);
	l->nindex = info.max_handles;
	l->by_index = malloc(l->nindex * sizeof(*l->by_index));
	l->pairs = calloc(o->max_conns, sizeof(*l->pairs));
	l->free_pairs = calloc(o->max_conns, sizeof(*l->free_pairs));
	l->bufs = malloc((size_t)NBUFS * BUF_SIZE);
	if (!l->by_index || !l->pairs || !l->free_pairs || !l->bufs)
		srv_die("thread %d: memory", l->t->idx);
	memset(l->by_index, 0xff, l->nindex * sizeof(*l->by_index));
	for (i = 0; i < o->max_conns; i++)
		l->free_pairs[l->nfree++] = o->max_conns - 1 - i;
	/* touched now: not one page fault per buffer on its first read */
	memset(l->bufs, 0xa5, (size_t)NBUFS * BUF_SIZE);
	if (mp_provide_buffers(l->mp, GROUP, l->bufs, BUF_SIZE, NBUFS))
		call_failed(l, "mp_provide_buffers");
}

static void serve(struct srv_thread *t)
{
	struct ploop l = { .t = t };
	struct mp_completion e;
	int n, k;

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
	for (k = 0; k < 2; k++) {
		__atomic_add_fetch(&owner_reads[k], l.reads[k], __ATOMIC_RELAXED);
		__atomic_add_fetch(&owner_local[k], l.local[k], __ATOMIC_RELAXED);
	}
	free(l.by_index);
	free(l.pairs);
	free(l.free_pairs);
	free(l.bufs);
}

int main(int argc, char **argv)
{
	struct srv_opts o;

	srv_parse_args(argc, argv, &o, "mp-proxy", SRV_OPT_BACKEND);
	srv_run_shared(&o, serve);
	if (o.owner_stats)
		srv_print_owner(owner_reads, owner_local);
	free(o.cpus);
	return 0;
}
