// SPDX-License-Identifier: GPL-2.0
/*
 * srv-proxy: a TCP proxy, the shape of server that connects out.  One
 * listener shared by all threads (each thread's epoll has it
 * EPOLLEXCLUSIVE, as srv-epoll-shared); for each accepted connection the
 * thread that accepted it connects to --backend from its own CPU and
 * forwards bytes both ways until either side ends, then closes both.
 * Level-triggered; a direction whose destination does not take all the
 * bytes stops reading its source until they are gone.
 *
 * --owner-stats: after each read, SO_INCOMING_CPU of the socket read,
 * compared with the thread's CPU, gives the share of connections whose
 * last packet was processed on the CPU that serves them ("owner"), for
 * the accepted (passive) side and the backend (active) side; printed as
 * "owner passive_reads N passive_local N active_reads N active_local N"
 * after the stats line.  It costs a getsockopt() per read.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server_common.h"

#define MAX_EVENTS	256
#define BUF_SIZE	16384
#define TAG_LISTENER	UINT64_MAX
#define TAG_STOP	(UINT64_MAX - 1)

struct side {
	int fd;
	uint32_t events;	/* the epoll interest now registered */
	struct srv_buf pend;	/* bytes for this side it did not take yet */
};

struct pconn {
	bool used;
	bool connecting;	/* backend connect() in progress */
	struct side s[2];	/* 0: client, 1: backend */
};

struct ploop {
	struct srv_thread *t;
	int ep;
	int cpu;
	struct pconn *conns;
	unsigned int *free_slots;
	unsigned int nfree;
	unsigned long reads[2], local[2];
	char buf[BUF_SIZE];
};

static unsigned long owner_reads[2], owner_local[2];

static uint32_t want(const struct pconn *c, int i)
{
	const struct side *me = &c->s[i], *other = &c->s[!i];

	if (i == 1 && c->connecting)
		return EPOLLOUT;
	/* read while the other side has taken everything; write if owed */
	return (other->pend.len ? 0 : EPOLLIN) | (me->pend.len ? EPOLLOUT : 0);
}

static void update(struct ploop *l, struct pconn *c, int i)
{
	uint32_t ev = want(c, i);
	struct epoll_event e = { .events = ev, .data.u64 = (c - l->conns) * 2 + i };

	if (ev == c->s[i].events)
		return;
	if (epoll_ctl(l->ep, EPOLL_CTL_MOD, c->s[i].fd, &e))
		srv_die("thread %d: epoll_ctl(MOD)", l->t->idx);
	c->s[i].events = ev;
}

static void pair_close(struct ploop *l, struct pconn *c)
{
	int i;

	for (i = 0; i < 2; i++) {
		if (c->s[i].fd >= 0)
			close(c->s[i].fd);
		c->s[i].fd = -1;
		srv_buf_free(&c->s[i].pend);
	}
	c->used = false;
	l->free_slots[l->nfree++] = c - l->conns;
}

/* Send @n bytes to side @i: what it does not take waits in its pend. */
static int send_to(struct ploop *l, struct pconn *c, int i, const char *p, size_t n)
{
	struct side *d = &c->s[i];
	ssize_t w = 0;

	if (!d->pend.len && !(i == 1 && c->connecting)) {
		w = write(d->fd, p, n);
		if (w < 0) {
			if (errno != EAGAIN)
				return -1;
			w = 0;
		}
	}
	if ((size_t)w < n)
		srv_buf_append(&d->pend, p + w, n - w);
	if (i == 0)
		l->t->stats.echo_bytes += w;
	return 0;
}

static int flush(struct ploop *l, struct pconn *c, int i)
{
	struct side *d = &c->s[i];
	ssize_t w;

	if (!d->pend.len)
		return 0;
	w = write(d->fd, d->pend.data, d->pend.len);
	if (w < 0)
		return errno == EAGAIN ? 0 : -1;
	if (i == 0)
		l->t->stats.echo_bytes += w;
	srv_buf_consume(&d->pend, w);
	return 0;
}

static void count_owner(struct ploop *l, int fd, int i)
{
	int cpu = -1;
	socklen_t len = sizeof(cpu);

	if (!l->t->opts->owner_stats)
		return;
	if (getsockopt(fd, SOL_SOCKET, SO_INCOMING_CPU, &cpu, &len))
		return;
	l->reads[i]++;
	l->local[i] += cpu == l->cpu;
}

/* An event on side @i of @c; -1: close the pair. */
static int event(struct ploop *l, struct pconn *c, int i, uint32_t ev)
{
	struct side *me = &c->s[i];
	ssize_t n;

	if (i == 1 && c->connecting) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (getsockopt(me->fd, SOL_SOCKET, SO_ERROR, &err, &len) || err)
			return -1;
		c->connecting = false;
		if (flush(l, c, 1))
			return -1;
		update(l, c, 0);
		update(l, c, 1);
		return 0;
	}
	if (ev & EPOLLOUT) {
		if (flush(l, c, i))
			return -1;
		update(l, c, !i);
	}
	if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		n = read(me->fd, l->buf, sizeof(l->buf));
		if (n == 0)
			return -1;
		if (n < 0)
			return errno == EAGAIN ? 0 : -1;
		count_owner(l, me->fd, i);
		if (send_to(l, c, !i, l->buf, n))
			return -1;
	}
	update(l, c, i);
	update(l, c, !i);
	return 0;
}

static void do_accept(struct ploop *l)
{
	const struct srv_opts *o = l->t->opts;
	struct epoll_event e;
	struct pconn *c;
	unsigned int slot;
	int cfd, bfd;

	cfd = accept4(l->t->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (cfd < 0) {
		if (errno != EAGAIN && errno != ECONNABORTED)
			l->t->stats.errors++;
		return;
	}
	l->t->stats.accepted++;
	if (!l->nfree) {
		close(cfd);
		l->t->stats.errors++;
		return;
	}
	/* connect out from this thread's CPU */
	bfd = socket(o->backend.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (bfd < 0 || (connect(bfd, (const struct sockaddr *)&o->backend,
				o->backend_len) && errno != EINPROGRESS)) {
		if (bfd >= 0)
			close(bfd);
		close(cfd);
		l->t->stats.errors++;
		return;
	}
	slot = l->free_slots[--l->nfree];
	c = &l->conns[slot];
	memset(c, 0, sizeof(*c));
	c->used = true;
	c->connecting = true;
	c->s[0].fd = cfd;
	c->s[1].fd = bfd;
	c->s[0].events = want(c, 0);
	c->s[1].events = want(c, 1);
	e = (struct epoll_event){ .events = c->s[0].events, .data.u64 = slot * 2 };
	if (epoll_ctl(l->ep, EPOLL_CTL_ADD, cfd, &e))
		srv_die("thread %d: epoll_ctl(ADD)", l->t->idx);
	e = (struct epoll_event){ .events = c->s[1].events, .data.u64 = slot * 2 + 1 };
	if (epoll_ctl(l->ep, EPOLL_CTL_ADD, bfd, &e))
		srv_die("thread %d: epoll_ctl(ADD)", l->t->idx);
}

static void serve(struct srv_thread *t)
{
	const struct srv_opts *o = t->opts;
	struct epoll_event evs[MAX_EVENTS], e;
	struct ploop *l = calloc(1, sizeof(*l));
	unsigned int i;
	int n, k;

	if (!l)
		srv_die("calloc");
	l->t = t;
	l->cpu = o->cpus ? o->cpus[t->idx] : sched_getcpu();
	l->conns = calloc(o->max_conns, sizeof(*l->conns));
	l->free_slots = calloc(o->max_conns, sizeof(*l->free_slots));
	if (!l->conns || !l->free_slots)
		srv_die("calloc");
	for (i = 0; i < o->max_conns; i++)
		l->free_slots[l->nfree++] = o->max_conns - 1 - i;
	l->ep = epoll_create1(EPOLL_CLOEXEC);
	if (l->ep < 0)
		srv_die("epoll_create1");
	e = (struct epoll_event){ .events = EPOLLIN | EPOLLEXCLUSIVE,
				  .data.u64 = TAG_LISTENER };
	if (epoll_ctl(l->ep, EPOLL_CTL_ADD, t->lfd, &e))
		srv_die("epoll_ctl(listener)");
	e = (struct epoll_event){ .events = EPOLLIN, .data.u64 = TAG_STOP };
	if (epoll_ctl(l->ep, EPOLL_CTL_ADD, t->stop_fd, &e))
		srv_die("epoll_ctl(stop)");
	srv_thread_ready();
	for (;;) {
		n = epoll_wait(l->ep, evs, MAX_EVENTS, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			srv_die("epoll_wait");
		}
		for (k = 0; k < n; k++) {
			uint64_t d = evs[k].data.u64;
			struct pconn *c;

			if (d == TAG_STOP)
				goto out;
			if (d == TAG_LISTENER) {
				do_accept(l);
				continue;
			}
			c = &l->conns[d / 2];
			if (!c->used)
				continue;	/* closed by an earlier event */
			if (event(l, c, d & 1, evs[k].events))
				pair_close(l, c);
		}
	}
out:
	for (i = 0; i < o->max_conns; i++)
		if (l->conns[i].used)
			pair_close(l, &l->conns[i]);
	for (k = 0; k < 2; k++) {
		__atomic_add_fetch(&owner_reads[k], l->reads[k], __ATOMIC_RELAXED);
		__atomic_add_fetch(&owner_local[k], l->local[k], __ATOMIC_RELAXED);
	}
	close(l->ep);
	free(l->conns);
	free(l->free_slots);
	free(l);
}

int main(int argc, char **argv)
{
	struct srv_opts o;

	srv_parse_args(argc, argv, &o, "srv-proxy", SRV_OPT_BACKEND);
	srv_run_shared(&o, serve);
	if (o.owner_stats)
		srv_print_owner(owner_reads, owner_local);
	free(o.cpus);
	return 0;
}
