// SPDX-License-Identifier: MIT
/*
 * libmegapipe: the channel, common to both backends.
 *
 * Requests are checked when they are queued (a bad handle or argument
 * fails the call with errno, nothing is queued), held in an array of
 * struct megapipe_req, and handed to the backend in batches of at most
 * max_batch by mp_flush() or by mp_dispatch() when it has no completion
 * left to hand out (or, with a kernel completion ring, before each batch
 * of max_batch it hands out).  The same backend call fetches completions
 * into the library's queue, which mp_dispatch() empties one completion
 * at a time; with a kernel completion ring they stay there and
 * mp_dispatch() hands them out in place.
 *
 * No completion can be lost: every queued request reserves the
 * completions it will produce (one, or the count of an accept) out of
 * cq_entries, and gives each back only when mp_dispatch() has handed it
 * out.  An I/O request that finds no room fails with EBUSY when it is
 * queued.  A request that the backend refuses at submission (it should
 * not, since the library checked it) becomes a completion carrying the
 * error.  The backend knows nothing of those (it never took them), nor of
 * the requests still queued here, and may let a multishot request reserve
 * its next completion in their room: the library's count may then pass
 * the backend's queue, and its own queue is three times that size (see
 * cq_cap).
 *
 * Cleanup never fails for lack of room: the backend's queue is
 * CQ_RESERVE entries larger than cq_entries, and mp_disconnect() and
 * mp_cancel() that find cq_entries taken are queued without a reservation
 * ("held", SQ_F_HELD) and take one from the reserve when they are
 * submitted.  A held CANCEL waits in its place, and the requests queued
 * behind it wait for it.  A held DISCONNECT is submitted only once its
 * handle has no write outstanding, so that it completes at once
 * (nothing can follow it on its handle, so the requests behind it go on).
 * Reserve entries are thus only ever taken by completions that are there
 * already, which the caller's mp_dispatch() gives back: a full queue of
 * requests that never complete (reads of idle connections) cannot stop
 * the cleanup that would end them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "internal.h"

/* mp_completion.resv0 marks completions the library made itself. */
#define CQE_SYNTH	1

/* Completion-queue entries beyond cq_entries, for disconnects and cancels. */
#define CQ_RESERVE	16

/* sq_flags */
#define SQ_F_HELD	0x1	/* queued without a reservation (see above) */
#define SQ_F_DONE	0x2	/* submitted or refused: to be dropped */

unsigned int mp_fork_gen;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void mp_after_fork_child(void)
{
	mp_fork_gen++;
}

static void mp_install_atfork(void)
{
	pthread_atfork(NULL, NULL, mp_after_fork_child);
}

/* The Makefile's VERSION: the shared library's file is libmegapipe.so.VERSION. */
MP_EXPORT const char *mp_version(void)
{
	return MP_LIB_VERSION;
}

/*
 * Every call starts here.  A channel belongs to the process that created it
 * (EPERM elsewhere, as the kernel does) and, in debug builds, to its thread.
 */
MP_INLINE int mp_enter(struct mp_channel *mp)
{
	if (!mp) {
		errno = EINVAL;
		return -1;
	}
#ifdef MP_DEBUG
	if (!pthread_equal(mp->owner, pthread_self())) {
		fprintf(stderr, "libmegapipe: channel %p used by a thread other than the one that created it\n",
			(void *)mp);
		abort();
	}
#endif
	if (mp->fork_gen != mp_fork_gen) {
		errno = EPERM;
		return -1;
	}
	return 0;
}

/* ---- handle table ------------------------------------------------------- */

MP_INLINE struct mp_hslot *slot_get(struct mp_channel *mp, int handle)
{
	uint32_t i;

	if (handle < 0)
		return NULL;
	i = MEGAPIPE_HANDLE_INDEX((uint32_t)handle);
	if (i >= mp->nslots || mp->slots[i].handle != (uint32_t)handle)
		return NULL;
	return &mp->slots[i];
}

/* A handle that requests may be queued on: EBADF otherwise. */
MP_INLINE struct mp_hslot *slot_usable(struct mp_channel *mp, int handle)
{
	struct mp_hslot *s = slot_get(mp, handle);

	if (!s || s->closing) {
		errno = EBADF;
		return NULL;
	}
	return s;
}

/* Make room for index @i; 0 or -1 (ENOMEM). */
static int slots_reserve(struct mp_channel *mp, uint32_t i)
{
	unsigned int n = mp->nslots ? mp->nslots : 64, k;
	struct mp_hslot *p;

	if (i < mp->nslots)
		return 0;
	while (n <= i)
		n *= 2;
	p = realloc(mp->slots, n * sizeof(*p));
	if (!p) {
		errno = ENOMEM;
		return -1;
	}
	memset(p + mp->nslots, 0, (n - mp->nslots) * sizeof(*p));
	for (k = mp->nslots; k < n; k++)
		p[k].handle = MEGAPIPE_NO_HANDLE;
	mp->slots = p;
	mp->nslots = n;
	return 0;
}

static struct mp_hslot *slot_new(struct mp_channel *mp, uint32_t h, bool lw,
				 bool listener, uint64_t cookie)
{
	uint32_t i = MEGAPIPE_HANDLE_INDEX(h);
	struct mp_hslot *s;

	if (slots_reserve(mp, i))
		return NULL;
	s = &mp->slots[i];
	free(s->acc);
	memset(s, 0, sizeof(*s));
	s->handle = h;
	s->lw = lw;
	s->listener = listener;
	s->cookie = cookie;
	s->buf_group = MP_NO_GROUP;
	return s;
}

static void slot_free(struct mp_hslot *s)
{
	free(s->acc);
	memset(s, 0, sizeof(*s));
	s->handle = MEGAPIPE_NO_HANDLE;
}

/* Remaining counts of a listener's accepts: a small FIFO. */
static int acc_push(struct mp_hslot *s, uint32_t count)
{
	if (s->acc_n == s->acc_cap) {
		uint32_t cap = s->acc_cap ? s->acc_cap * 2 : 4, k;
		uint32_t *p = malloc(cap * sizeof(*p));

		if (!p) {
			errno = ENOMEM;
			return -1;
		}
		for (k = 0; k < s->acc_n; k++)
			p[k] = s->acc[(s->acc_head + k) % s->acc_cap];
		free(s->acc);
		s->acc = p;
		s->acc_cap = cap;
		s->acc_head = 0;
	}
	s->acc[(s->acc_head + s->acc_n++) % s->acc_cap] = count;
	return 0;
}

static uint32_t *acc_at(struct mp_hslot *s, uint32_t k)
{
	return &s->acc[(s->acc_head + k) % s->acc_cap];
}

/* Drop entry @k (the refused accept) from the FIFO. */
static uint32_t acc_remove(struct mp_hslot *s, uint32_t k)
{
	uint32_t v = *acc_at(s, k);

	for (; k + 1 < s->acc_n; k++)
		*acc_at(s, k) = *acc_at(s, k + 1);
	s->acc_n--;
	return v;
}

/* ---- queueing ----------------------------------------------------------- */

/* Room for one more queued request; 0 or -1 (ENOMEM). */
static int sq_grow(struct mp_channel *mp)
{
	unsigned int cap = mp->sq_cap * 2;
	struct megapipe_req *sq;
	uint8_t *flags;
	void **aux;

	if (mp->sq_n < mp->sq_cap)
		return 0;
	sq = realloc(mp->sq, cap * sizeof(*sq));
	if (sq)
		mp->sq = sq;
	aux = realloc(mp->sq_aux, cap * sizeof(*aux));
	if (aux)
		mp->sq_aux = aux;
	flags = realloc(mp->sq_flags, cap * sizeof(*flags));
	if (flags)
		mp->sq_flags = flags;
	if (!sq || !aux || !flags) {
		errno = ENOMEM;
		return -1;
	}
	mp->sq_cap = cap;
	return 0;
}

/*
 * Queue a request needing @need completions: EBUSY if the completion
 * queue cannot take them, unless @cleanup (a disconnect or cancel: one
 * completion), which is then held for room (SQ_F_HELD).  The caller fills
 * in the returned entry and calls sq_commit(), or nothing if it fails in
 * between.
 */
MP_INLINE struct megapipe_req *sq_get(struct mp_channel *mp, unsigned int need,
				       bool cleanup)
{
	bool held = mp->owed + need > mp->cq_entries;
	struct megapipe_req *r;

	if (held && !cleanup) {
		errno = EBUSY;
		return NULL;
	}
	/* reserved entries fit (sq_cap >= cq_total); held ones may need more */
	if (mp_unlikely(mp->sq_n == mp->sq_cap) && sq_grow(mp))
		return NULL;
	r = &mp->sq[mp->sq_n];
	memset(r, 0, sizeof(*r));
	mp->sq_aux[mp->sq_n] = NULL;
	mp->sq_flags[mp->sq_n] = held ? SQ_F_HELD : 0;
	return r;
}

MP_INLINE void sq_commit(struct mp_channel *mp, struct mp_hslot *s,
			   struct megapipe_req *r, unsigned int need, void *aux)
{
	if (s) {
		r->handle = s->handle;
		if (s->cookie_dirty && r->opcode != MEGAPIPE_OP_CANCEL) {
			r->flags |= MEGAPIPE_REQ_F_SET_COOKIE;
			r->cookie = s->cookie;
			s->cookie_dirty = 0;
		}
		s->busy++;
		if (r->opcode == MEGAPIPE_OP_WRITE || r->opcode == MEGAPIPE_OP_WRITEV)
			s->writes++;
	}
	mp->sq_aux[mp->sq_n] = aux;
	mp->sq_last = mp->sq_n;
	if (mp->sq_flags[mp->sq_n] & SQ_F_HELD)
		mp->sq_held++;
	else
		mp->owed += need;
	mp->sq_n++;
}

static int need_feature(struct mp_channel *mp, uint64_t feat)
{
	if (mp->info.features & feat)
		return 0;
	errno = EOPNOTSUPP;
	return -1;
}

static int queue_accept(struct mp_channel *mp, int handle, unsigned int count,
			unsigned int flags, struct sockaddr_storage *addrs)
{
	struct megapipe_req *r;
	struct mp_hslot *s;

	if (mp_enter(mp))
		return -1;
	s = slot_usable(mp, handle);
	if (!s)
		return -1;
	if (!s->listener || !count || count > mp->cq_entries ||
	    (flags & ~(MP_ACCEPT_FD | MP_ACCEPT_NONBLOCK)) ||
	    ((flags & MP_ACCEPT_NONBLOCK) && !(flags & MP_ACCEPT_FD))) {
		errno = EINVAL;
		return -1;
	}
	if ((flags & MP_ACCEPT_FD) && need_feature(mp, MEGAPIPE_FEAT_ACCEPT_FD))
		return -1;
	if (addrs && need_feature(mp, MEGAPIPE_FEAT_ACCEPT_ADDR))
		return -1;
	r = sq_get(mp, count, false);
	if (!r || acc_push(s, count))
		return -1;
	r->opcode = MEGAPIPE_OP_ACCEPT;
	r->addr = (uintptr_t)addrs;
	r->len = count;
	r->op_flags = flags;
	sq_commit(mp, s, r, count, NULL);
	return 0;
}

MP_EXPORT int mp_accept(struct mp_channel *mp, int handle, unsigned int count,
			unsigned int flags)
{
	return queue_accept(mp, handle, count, flags, NULL);
}

MP_EXPORT int mp_accept_addr(struct mp_channel *mp, int handle,
			     unsigned int count, unsigned int flags,
			     struct sockaddr_storage *addrs)
{
	if (!addrs) {
		errno = EFAULT;
		return -1;
	}
	return queue_accept(mp, handle, count, flags, addrs);
}

MP_INLINE int queue_rw(struct mp_channel *mp, int handle, uint8_t op,
			const void *buf, size_t len)
{
	struct megapipe_req *r;
	struct mp_hslot *s;

	if (mp_enter(mp))
		return -1;
	s = slot_usable(mp, handle);
	if (!s)
		return -1;
	if (s->listener || s->file || !len || len > INT_MAX) {
		errno = EINVAL;
		return -1;
	}
	if (!buf) {
		errno = EFAULT;
		return -1;
	}
	r = sq_get(mp, 1, false);
	if (!r)
		return -1;
	r->opcode = op;
	r->addr = (uintptr_t)buf;
	r->len = len;
	sq_commit(mp, s, r, 1, NULL);
	return 0;
}

MP_EXPORT int mp_read(struct mp_channel *mp, int handle, void *buf, size_t len)
{
	return queue_rw(mp, handle, MEGAPIPE_OP_READ, buf, len);
}

MP_EXPORT int mp_write(struct mp_channel *mp, int handle, const void *buf,
		       size_t len)
{
	return queue_rw(mp, handle, MEGAPIPE_OP_WRITE, buf, len);
}

MP_EXPORT int mp_writev(struct mp_channel *mp, int handle,
			const struct iovec *iov, int iovcnt)
{
	struct megapipe_req *r;
	struct mp_hslot *s;
	struct iovec *copy;
	size_t total = 0;
	int i;

	if (mp_enter(mp))
		return -1;
	if (need_feature(mp, MEGAPIPE_FEAT_WRITEV))
		return -1;
	s = slot_usable(mp, handle);
	if (!s)
		return -1;
	if (s->listener || s->file || iovcnt <= 0 || (unsigned int)iovcnt > mp->info.max_iov) {
		errno = EINVAL;
		return -1;
	}
	if (!iov) {
		errno = EFAULT;
		return -1;
	}
	for (i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len && !iov[i].iov_base) {
			errno = EFAULT;
			return -1;
		}
		if (iov[i].iov_len > INT_MAX - total) {
			errno = EINVAL;
			return -1;
		}
		total += iov[i].iov_len;
	}
	if (!total) {
		errno = EINVAL;
		return -1;
	}
	r = sq_get(mp, 1, false);
	if (!r)
		return -1;
	/* The caller may reuse its array at once; the copy lives to the flush. */
	copy = malloc(iovcnt * sizeof(*copy));
	if (!copy) {
		errno = ENOMEM;
		return -1;
	}
	memcpy(copy, iov, iovcnt * sizeof(*copy));
	r->opcode = MEGAPIPE_OP_WRITEV;
	r->addr = (uintptr_t)copy;
	r->len = iovcnt;
	sq_commit(mp, s, r, 1, copy);
	return 0;
}

MP_EXPORT int mp_disconnect(struct mp_channel *mp, int handle)
{
	struct megapipe_req *r;
	struct mp_hslot *s;

	if (mp_enter(mp))
		return -1;
	s = slot_usable(mp, handle);
	if (!s)
		return -1;
	if (s->listener || s->file) {
		errno = EINVAL;
		return -1;
	}
	r = sq_get(mp, 1, true);
	if (!r)
		return -1;
	r->opcode = MEGAPIPE_OP_DISCONNECT;
	sq_commit(mp, s, r, 1, NULL);
	s->closing = 1;
	return 0;
}

MP_EXPORT int mp_connect(struct mp_channel *mp, const struct sockaddr *addr,
			 socklen_t addrlen, uint64_t cookie)
{
	struct megapipe_req *r;
	void *copy;

	if (mp_enter(mp))
		return -1;
	if (need_feature(mp, MEGAPIPE_FEAT_CONNECT))
		return -1;
	if (!addr) {
		errno = EFAULT;
		return -1;
	}
	if (addrlen < sizeof(sa_family_t) || addrlen > sizeof(struct sockaddr_storage)) {
		errno = EINVAL;
		return -1;
	}
	if (addr->sa_family != AF_INET && addr->sa_family != AF_INET6) {
		errno = EAFNOSUPPORT;
		return -1;
	}
	if (addrlen < (addr->sa_family == AF_INET ? sizeof(struct sockaddr_in) :
						     sizeof(struct sockaddr_in6))) {
		errno = EINVAL;
		return -1;
	}
	r = sq_get(mp, 1, false);
	if (!r)
		return -1;
	copy = malloc(addrlen);
	if (!copy) {
		errno = ENOMEM;
		return -1;
	}
	memcpy(copy, addr, addrlen);
	r->opcode = MEGAPIPE_OP_CONNECT;
	r->handle = MEGAPIPE_NO_HANDLE;
	r->addr = (uintptr_t)copy;
	r->len = addrlen;
	r->cookie = cookie;
	sq_commit(mp, NULL, r, 1, copy);
	mp->connects++;
	return 0;
}

MP_EXPORT int mp_cancel(struct mp_channel *mp, int handle, unsigned int ops)
{
	struct megapipe_req *r;
	struct mp_hslot *s = NULL;

	if (mp_enter(mp))
		return -1;
	if (need_feature(mp, MEGAPIPE_FEAT_CANCEL))
		return -1;
	if (ops & ~MEGAPIPE_CANCEL_ALL) {
		errno = EINVAL;
		return -1;
	}
	if (handle != MP_NO_HANDLE) {
		s = slot_usable(mp, handle);
		if (!s)
			return -1;
	}
	r = sq_get(mp, 1, true);
	if (!r)
		return -1;
	r->opcode = MEGAPIPE_OP_CANCEL;
	r->handle = MEGAPIPE_NO_HANDLE;
	r->op_flags = ops;
	sq_commit(mp, s, r, 1, NULL);
	return 0;
}

/* The events a POLL may wait for (the kernel's list). */
#define MP_POLL_EVENTS	(EPOLLIN | EPOLLPRI | EPOLLOUT | EPOLLERR | EPOLLHUP | \
			 EPOLLRDNORM | EPOLLRDBAND | EPOLLWRNORM | \
			 EPOLLWRBAND | EPOLLMSG | EPOLLRDHUP)

MP_EXPORT int mp_poll(struct mp_channel *mp, int handle, unsigned int events,
		      unsigned int flags)
{
	struct megapipe_req *r;
	struct mp_hslot *s;

	if (mp_enter(mp) || need_feature(mp, MEGAPIPE_FEAT_FILES))
		return -1;
	s = slot_usable(mp, handle);
	if (!s)
		return -1;
	if (!s->file || !events || (events & ~MP_POLL_EVENTS) ||
	    (flags & ~MP_POLL_MULTISHOT)) {
		errno = EINVAL;
		return -1;
	}
	r = sq_get(mp, 1, false);
	if (!r)
		return -1;
	r->opcode = MEGAPIPE_OP_POLL;
	r->len = events;
	r->op_flags = flags;
	sq_commit(mp, s, r, 1, NULL);
	return 0;
}

MP_EXPORT int mp_set_cookie(struct mp_channel *mp, int handle, uint64_t cookie)
{
	struct mp_hslot *s;

	if (mp_enter(mp))
		return -1;
	s = slot_usable(mp, handle);
	if (!s)
		return -1;
	s->cookie = cookie;
	s->cookie_dirty = 1;
	return 0;
}

/* ---- registration ------------------------------------------------------- */

MP_EXPORT int mp_register(struct mp_channel *mp, int fd, uint64_t cookie,
			  const void *cpuset, size_t cpusetsize)
{
	struct megapipe_register reg = { .fd = fd, .cookie = cookie };
	struct megapipe_unregister unreg = { 0 };
	uint64_t mask[MEGAPIPE_CPUMASK_MAX_BYTES / 8];
	int listening = 0, ret;
	socklen_t olen = sizeof(listening);

	if (mp_enter(mp))
		return -1;
	if (fd < 0) {
		errno = EBADF;
		return -1;
	}
	if (cpuset || cpusetsize) {
		const unsigned long *w = cpuset;
		size_t nw = cpusetsize / sizeof(*w), i, b;

		if (!cpuset) {
			errno = EFAULT;
			return -1;
		}
		if (!cpusetsize || cpusetsize % sizeof(*w)) {
			errno = EINVAL;
			return -1;
		}
		memset(mask, 0, sizeof(mask));
		/* CPUs past the ABI's mask cannot exist: ignored, as the kernel does */
		for (i = 0; i < nw; i++)
			for (b = 0; b < 8 * sizeof(*w); b++) {
				size_t cpu = i * 8 * sizeof(*w) + b;

				if ((w[i] >> b & 1) && cpu < 8 * sizeof(mask))
					mask[cpu / 64] |= 1ULL << (cpu % 64);
			}
		reg.cpumask = (uintptr_t)mask;
		reg.cpumask_len = sizeof(mask);
		/*
		 * A kernel without per-core masks takes only "all CPUs": a
		 * listener's mask naming some CPU is a hint dropped there (the
		 * kernel still refuses an empty one, or one on a connection).
		 */
		for (i = 0; i < sizeof(mask) / 8 && !mask[i]; i++)
			;
		if (mp->ops->id == MP_BACKEND_KERNEL &&
		    !(mp->info.features & MEGAPIPE_FEAT_PERCORE_LISTEN) &&
		    i < sizeof(mask) / 8 &&
		    !getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &olen) &&
		    listening) {
			reg.cpumask = 0;
			reg.cpumask_len = 0;
		}
	}
	ret = mp->ops->reg(mp, &reg);
	if (ret) {
		errno = -ret;
		return -1;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &olen) ||
	    !slot_new(mp, reg.handle, false, listening, cookie)) {
		int err = errno;

		unreg.handle = reg.handle;
		mp->ops->unreg(mp, &unreg);
		errno = err;
		return -1;
	}
	return reg.handle;
}

MP_EXPORT int mp_register_file(struct mp_channel *mp, int fd, uint64_t cookie)
{
	struct megapipe_register reg = {
		.fd = fd,
		.flags = MEGAPIPE_REGISTER_FILE,
		.cookie = cookie,
	};
	struct megapipe_unregister unreg = { 0 };
	struct mp_hslot *s;
	int ret;

	if (mp_enter(mp) || need_feature(mp, MEGAPIPE_FEAT_FILES))
		return -1;
	if (fd < 0) {
		errno = EBADF;
		return -1;
	}
	ret = mp->ops->reg(mp, &reg);
	if (ret) {
		errno = -ret;
		return -1;
	}
	s = slot_new(mp, reg.handle, false, false, cookie);
	if (!s) {
		int err = errno;

		unreg.handle = reg.handle;
		mp->ops->unreg(mp, &unreg);
		errno = err;
		return -1;
	}
	s->file = 1;
	return reg.handle;
}

MP_EXPORT int mp_unregister(struct mp_channel *mp, int handle)
{
	struct megapipe_unregister u = { .handle = (uint32_t)handle };
	struct mp_hslot *s;
	int ret;

	if (mp_enter(mp))
		return -1;
	s = slot_usable(mp, handle);
	if (!s)
		return -1;
	if (s->lw) {
		errno = EINVAL;
		return -1;
	}
	if (s->busy) {
		errno = EBUSY;
		return -1;
	}
	ret = mp->ops->unreg(mp, &u);
	if (ret) {
		errno = -ret;
		return -1;
	}
	slot_free(s);
	return 0;
}

MP_EXPORT int mp_export(struct mp_channel *mp, int handle, unsigned int flags)
{
	struct megapipe_export e = { .handle = (uint32_t)handle, .flags = flags };
	struct mp_hslot *s;
	int ret;

	if (mp_enter(mp))
		return -1;
	if (need_feature(mp, MEGAPIPE_FEAT_EXPORT))
		return -1;
	s = slot_usable(mp, handle);
	if (!s)
		return -1;
	if (!s->lw || (flags & ~MP_EXPORT_NONBLOCK)) {
		errno = EINVAL;
		return -1;
	}
	if (s->busy) {
		errno = EBUSY;
		return -1;
	}
	ret = mp->ops->export_fd(mp, &e);
	if (ret) {
		errno = -ret;
		return -1;
	}
	slot_free(s);
	return e.fd;
}

/* ---- submission and completions ----------------------------------------- */

static void cq_push(struct mp_channel *mp, const struct mp_completion *c)
{
	unsigned int at = (mp->cq_head + mp->cq_n++) % mp->cq_cap;

	/* see cq_cap in internal.h */
	assert(mp->cq_n <= mp->cq_cap);
	mp->cq[at] = *c;
	/* after what the kernel has posted so far */
	if (mp->kcq)
		mp->cq_at[at] = __atomic_load_n(&mp->kcq->tail, __ATOMIC_ACQUIRE);
}

/*
 * The kernel's completion ring (mp->kcq), read in place.  ring_scan()
 * looks at the completions that arrived since it last did, for the
 * reservation that a multishot request's next completion holds (as the
 * kernel reserved it when it posted this one), and returns how many it
 * has looked at in all that are not handed out yet.  The kernel posts
 * completions only in the owner's calls: after each, the library's count
 * is exact again.
 */
/*
 * A multishot READ's or POLL's completion that leaves it armed: the kernel
 * reserved its next completion when it posted this one.
 */
MP_INLINE bool holds_next(const struct mp_completion *c)
{
	return (c->flags & MEGAPIPE_CQE_F_MORE) &&
	       (c->op == MEGAPIPE_OP_READ || c->op == MEGAPIPE_OP_POLL);
}

static uint32_t ring_scan(struct mp_channel *mp)
{
	uint32_t tail = __atomic_load_n(&mp->kcq->tail, __ATOMIC_ACQUIRE);

	for (; mp->kc_seen != tail; mp->kc_seen++)
		if (holds_next(&mp->kcqes[mp->kc_seen & mp->kc_mask]))
			mp->owed++;
	return mp->kc_seen - mp->kcq->head;
}

/*
 * The backend refused request @r with @err: it becomes a completion, so the
 * caller hears of it and its reservation is given back on dispatch.
 */
static void synthesize(struct mp_channel *mp, const struct megapipe_req *r,
		       int err)
{
	struct mp_completion c = {
		.handle = (int32_t)r->handle,
		.new_handle = MP_NO_HANDLE,
		.result = err,
		.op = r->opcode,
		.resv0 = CQE_SYNTH,
		.user_data = r->user_data,
	};
	struct mp_hslot *s = NULL;

	if (r->opcode == MEGAPIPE_OP_CONNECT) {
		c.cookie = r->cookie;
	} else if (r->handle != MEGAPIPE_NO_HANDLE) {
		s = slot_get(mp, r->handle);
		if (s)
			c.cookie = s->cookie;
	}
	if (s && r->opcode == MEGAPIPE_OP_ACCEPT && s->acc_sub < s->acc_n) {
		/* the refused accept is the first one not submitted */
		uint32_t left = acc_remove(s, s->acc_sub);

		if (left > 1)
			mp->owed -= left - 1;
	}
	cq_push(mp, &c);
}

/*
 * Copy transport and epoll backend, before a completion the library makes
 * for a request the backend refused: fetch what the backend posted before
 * the refusal (one call took at most max_cqes), so that the made
 * completion comes after them.  The backend holds at most cq_total, so
 * that many are enough, and the library's queue takes up to 2 * cq_total
 * fetched ones here (see cq_cap).  With rings, cq_push()'s mark does it.
 */
static void fetch_all(struct mp_channel *mp)
{
	unsigned int budget = mp->cq_total;

	while (budget) {
		struct megapipe_submit sub = { 0 };
		unsigned int room, i;

		room = mp->cq_n < 2 * mp->cq_total ? 2 * mp->cq_total - mp->cq_n : 0;
		if (room > mp->info.max_batch)
			room = mp->info.max_batch;
		if (room > budget)
			room = budget;
		if (!room)
			return;
		budget -= room;
		sub.cqes = (uintptr_t)mp->fetch;
		sub.max_cqes = room;
		if (mp->ops->submit(mp, &sub))
			return;
		for (i = 0; i < sub.completed; i++) {
			cq_push(mp, &mp->fetch[i]);
			if (holds_next(&mp->fetch[i]))
				mp->owed++;
		}
		if (sub.completed < room)
			return;
	}
}

/*
 * May queued request @k go to the backend now?  1: yes; 0: not yet, but
 * the requests behind it may (a held DISCONNECT: nothing of its handle
 * is behind it); -1: not yet, and nothing behind it either.
 */
static int sq_ready(struct mp_channel *mp, unsigned int k)
{
	const struct megapipe_req *r = &mp->sq[k];
	struct mp_hslot *s;

	if (!(mp->sq_flags[k] & SQ_F_HELD))
		return 1;
	if (r->opcode == MEGAPIPE_OP_CANCEL)
		return mp->owed < mp->cq_total ? 1 : -1;
	/* a DISCONNECT from the reserve must complete at once: no write before it */
	s = slot_get(mp, r->handle);
	if (s && s->writes)
		return 0;
	return mp->owed < mp->cq_total;
}

/*
 * Hand the queued requests to the backend, max_batch at a time and in
 * order (held ones that cannot go yet stay queued), fetching completions
 * into the ring on the way; with @wait, the last call waits up to
 * @timeout_ms (-1: no limit) for at least one completion.  Returns how
 * many requests left the queue (taken, or refused and made completions).
 */
static int mp_submit(struct mp_channel *mp, bool wait, int timeout_ms)
{
	unsigned int k = 0, gone = 0, i, j;
	bool called = false, waited = false, stop = false;
	int err = 0;

	/* what is queued may be taken now: too late to label it */
	mp->sq_last = UINT_MAX;

	for (;;) {
		struct megapipe_submit sub = { 0 };
		struct mp_completion *got;
		struct megapipe_req *batch;
		unsigned int n = 0, room;
		bool last, want_wait;
		int ret;

		/*
		 * The next batch: queued requests in order, held ones skipped.
		 * Without held ones (the usual case) it is a slice of sq as it is.
		 */
		if (!mp->sq_held) {
			batch = &mp->sq[k];
			for (; k < mp->sq_n && n < mp->info.max_batch; k++)
				mp->batch_idx[n++] = k;
		} else {
			batch = mp->batch;
		}
		while (batch == mp->batch && !stop && k < mp->sq_n &&
		       n < mp->info.max_batch) {
			int ready = sq_ready(mp, k);

			if (ready < 0) {
				stop = true;
				break;
			}
			if (ready) {
				if (mp->sq_flags[k] & SQ_F_HELD) {
					/* its reservation, out of the reserve */
					mp->sq_flags[k] &= ~SQ_F_HELD;
					mp->sq_held--;
					mp->owed++;
				}
				mp->batch[n] = mp->sq[k];
				mp->batch_idx[n++] = k;
			}
			k++;
		}
		last = stop || k >= mp->sq_n;
		room = mp->cq_n < mp->cq_total ? mp->cq_total - mp->cq_n : 0;
		if (room > mp->info.max_batch)
			room = mp->info.max_batch;
		want_wait = last && wait && !waited && room && !mp->cq_n && mp->owed;
		if (mp->kcq)		/* completions stay in the ring */
			room = 0;
		if (!n && called && !want_wait)
			break;
		/*
		 * Into the ring itself when it is empty (it starts again at
		 * its first entry then): no second copy.
		 */
		got = mp->fetch;
		if (!mp->cq_n) {
			mp->cq_head = 0;
			got = mp->cq;
		}
		sub.reqs = (uintptr_t)batch;
		sub.nr_reqs = n;
		sub.cqes = (uintptr_t)got;
		sub.max_cqes = room;
		if (want_wait) {
			sub.min_complete = 1;
			sub.timeout_ns = timeout_ms < 0 ? -1 : (int64_t)timeout_ms * 1000000;
			waited = true;
		}
		ret = mp->ops->submit(mp, &sub);
		called = true;
		if (mp->kcq)
			ring_scan(mp);

		if (ret == -EINTR || (ret && !n)) {
			err = -ret;	/* nothing taken: keep the rest queued */
			break;
		}
		if (ret) {
			/* the call failed as a whole: each request hears of it */
			sub.submitted = 0;
			sub.completed = 0;
			sub.error = ret;
		}
		for (i = 0; i < sub.completed; i++) {
			if (got == mp->fetch)
				cq_push(mp, &got[i]);
			/* an armed READ or POLL holds a reservation for its next one too */
			if (holds_next(&got[i]))
				mp->owed++;
		}
		if (got == mp->cq)
			mp->cq_n = sub.completed;
		for (i = 0; i < sub.submitted; i++) {
			const struct megapipe_req *r = &batch[i];

			j = mp->batch_idx[i];
			if (mp->sq_aux[j]) {
				free(mp->sq_aux[j]);
				mp->sq_aux[j] = NULL;
			}
			mp->sq_flags[j] |= SQ_F_DONE;
			gone++;
			if (r->opcode == MEGAPIPE_OP_ACCEPT) {
				struct mp_hslot *s = slot_get(mp, r->handle);

				if (s)
					s->acc_sub++;
			}
		}
		/* the refused one; if the call failed as a whole, all */
		for (i = sub.submitted; i < n; i++) {
			j = mp->batch_idx[i];
			if (!ret && sub.error == -EBUSY) {
				/*
				 * The backend's queue is fuller than ours says
				 * (an armed READ's next completion, reserved
				 * before we saw it): it and those behind it
				 * stay queued, for after the dispatch; the
				 * call may still wait for a completion.
				 */
				k = mp->sq_n;
				stop = true;
				break;
			}
			/* after what the backend posted before it, if it can */
			if (!ret && !mp->kcq && sub.completed == sub.max_cqes)
				fetch_all(mp);
			synthesize(mp, &mp->sq[j], sub.error ? sub.error : -EIO);
			free(mp->sq_aux[j]);
			mp->sq_aux[j] = NULL;
			mp->sq_flags[j] |= SQ_F_DONE;
			gone++;
			if (!ret) {
				/* the rest of the batch was not looked at: again */
				k = j + 1;
				stop = false;
				break;
			}
		}
	}
	if (gone == mp->sq_n) {
		mp->sq_n = 0;		/* all gone: nothing to move */
	} else if (gone) {
		for (i = j = 0; i < mp->sq_n; i++) {
			if (mp->sq_flags[i] & SQ_F_DONE)
				continue;
			if (i != j) {
				mp->sq[j] = mp->sq[i];
				mp->sq_aux[j] = mp->sq_aux[i];
				mp->sq_flags[j] = mp->sq_flags[i];
			}
			j++;
		}
		mp->sq_n = j;
	}
	if (err) {
		errno = err;
		return -1;
	}
	return gone;
}

MP_EXPORT int mp_set_user_data(struct mp_channel *mp, uint64_t data)
{
	if (mp_enter(mp))
		return -1;
	if (mp->sq_last == UINT_MAX) {
		errno = EINVAL;
		return -1;
	}
	if (data && need_feature(mp, MEGAPIPE_FEAT_USER_DATA))
		return -1;
	mp->sq[mp->sq_last].user_data = data;
	return 0;
}

MP_EXPORT int mp_fd(struct mp_channel *mp)
{
	if (mp_enter(mp))
		return -1;
	if (need_feature(mp, MEGAPIPE_FEAT_POLL))
		return -1;
	return mp->ops->poll_fd(mp);
}

MP_EXPORT int mp_flush(struct mp_channel *mp)
{
	if (mp_enter(mp))
		return -1;
	return mp_submit(mp, false, 0);
}

/* ---- the socket behind a handle (MEGAPIPE_IOC_SOCKOPT) ------------------ */

/* @len: in and out (NULL: EFAULT, as the system calls) */
static int sockopt(struct mp_channel *mp, int handle, unsigned int cmd,
		   int level, int optname, void *val, socklen_t *len)
{
	struct megapipe_sockopt o = {
		.handle = (uint32_t)handle, .cmd = cmd, .level = level,
		.optname = optname, .optval = (uintptr_t)val,
	};
	int ret;

	if (mp_enter(mp))
		return -1;
	if (!len) {
		errno = EFAULT;
		return -1;
	}
	o.optlen = *len;
	if (need_feature(mp, MEGAPIPE_FEAT_SOCKOPT))
		return -1;
	if (!slot_usable(mp, handle))
		return -1;
	ret = mp->ops->sockopt(mp, &o);
	if (ret) {
		errno = -ret;
		return -1;
	}
	*len = o.optlen;
	return 0;
}

MP_EXPORT int mp_setsockopt(struct mp_channel *mp, int handle, int level,
			    int optname, const void *optval, socklen_t optlen)
{
	return sockopt(mp, handle, MEGAPIPE_SOCKOPT_SET, level, optname,
		       (void *)optval, &optlen);
}

MP_EXPORT int mp_getsockopt(struct mp_channel *mp, int handle, int level,
			    int optname, void *optval, socklen_t *optlen)
{
	return sockopt(mp, handle, MEGAPIPE_SOCKOPT_GET, level, optname,
		       optval, optlen);
}

MP_EXPORT int mp_getsockname(struct mp_channel *mp, int handle,
			     struct sockaddr *addr, socklen_t *addrlen)
{
	return sockopt(mp, handle, MEGAPIPE_SOCKOPT_SOCKNAME, 0, 0, addr, addrlen);
}

MP_EXPORT int mp_getpeername(struct mp_channel *mp, int handle,
			     struct sockaddr *addr, socklen_t *addrlen)
{
	return sockopt(mp, handle, MEGAPIPE_SOCKOPT_PEERNAME, 0, 0, addr, addrlen);
}

/* ---- buffer rings (mp_provide_buffers) ----------------------------------- */

struct mp_bufgroup {
	char *base;
	size_t size;
	unsigned int count, entries;
	struct megapipe_buf *ring;	/* the backend reads it */
	uint32_t tail;			/* and this */
	uint8_t *out;			/* per buffer: 1 while the caller has it */
};

static struct mp_bufgroup *group_get(struct mp_channel *mp, unsigned int group)
{
	return group < MEGAPIPE_MAX_BUF_GROUPS ? mp->groups[group] : NULL;
}

static void buf_push(struct mp_bufgroup *g, unsigned int bid)
{
	struct megapipe_buf *b = &g->ring[g->tail & (g->entries - 1)];

	b->addr = (uintptr_t)(g->base + (size_t)bid * g->size);
	b->len = (uint32_t)g->size;
	b->bid = (uint16_t)bid;
	b->resv = 0;
	__atomic_store_n(&g->tail, g->tail + 1, __ATOMIC_RELEASE);
}

/* A READ's completion on @s hands its buffer to the caller. */
MP_INLINE void buf_out(struct mp_channel *mp, struct mp_hslot *s,
		    const struct mp_completion *c)
{
	struct mp_bufgroup *g = s ? group_get(mp, s->buf_group) : NULL;

	if (g && (unsigned int)c->new_handle < g->count)
		g->out[c->new_handle] = 1;
}

MP_EXPORT int mp_provide_buffers(struct mp_channel *mp, unsigned int group,
				 void *base, size_t size, unsigned int count)
{
	struct megapipe_buffers b = { 0 };
	struct mp_bufgroup *g;
	unsigned int i;
	int ret;

	if (mp_enter(mp) || need_feature(mp, MEGAPIPE_FEAT_BUFFERS))
		return -1;
	if (group >= MEGAPIPE_MAX_BUF_GROUPS || !size || size > INT_MAX ||
	    !count || count > MEGAPIPE_MAX_BUF_ENTRIES) {
		errno = EINVAL;
		return -1;
	}
	if (!base) {
		errno = EFAULT;
		return -1;
	}
	if (mp->groups[group]) {
		errno = EEXIST;
		return -1;
	}
	g = calloc(1, sizeof(*g));
	if (!g)
		goto nomem;
	for (g->entries = 1; g->entries < count; g->entries <<= 1)
		;
	g->ring = calloc(g->entries, sizeof(*g->ring));
	g->out = calloc(count, 1);
	if (!g->ring || !g->out)
		goto nomem;
	g->base = base;
	g->size = size;
	g->count = count;
	for (i = 0; i < count; i++)
		buf_push(g, i);
	b.ring = (uintptr_t)g->ring;
	b.tail = (uintptr_t)&g->tail;
	b.entries = g->entries;
	b.group = (uint16_t)group;
	ret = mp->ops->buffers(mp, &b);
	if (ret) {
		free(g->ring);
		free(g->out);
		free(g);
		errno = -ret;
		return -1;
	}
	mp->groups[group] = g;
	return 0;
nomem:
	if (g) {
		free(g->ring);
		free(g->out);
	}
	free(g);
	errno = ENOMEM;
	return -1;
}

MP_EXPORT void *mp_buffer(struct mp_channel *mp, unsigned int group,
			  unsigned int bid)
{
	struct mp_bufgroup *g;

	if (mp_enter(mp))
		return NULL;
	g = group_get(mp, group);
	if (!g || bid >= g->count) {
		errno = EINVAL;
		return NULL;
	}
	return g->base + (size_t)bid * g->size;
}

MP_EXPORT int mp_buffer_release(struct mp_channel *mp, unsigned int group,
				unsigned int bid)
{
	struct mp_bufgroup *g;

	if (mp_enter(mp))
		return -1;
	g = group_get(mp, group);
	if (!g || bid >= g->count || !g->out[bid]) {
		errno = EINVAL;
		return -1;
	}
	g->out[bid] = 0;
	buf_push(g, bid);
	return 0;
}

MP_EXPORT int mp_read_multishot(struct mp_channel *mp, int handle,
				unsigned int group)
{
	struct megapipe_req *r;
	struct mp_hslot *s;

	if (mp_enter(mp) || need_feature(mp, MEGAPIPE_FEAT_BUFFERS))
		return -1;
	s = slot_usable(mp, handle);
	if (!s)
		return -1;
	/* one group per handle: its completions name buffers of that group */
	if (s->listener || s->file || !group_get(mp, group) ||
	    (s->buf_group != MP_NO_GROUP && s->buf_group != group)) {
		errno = EINVAL;
		return -1;
	}
	r = sq_get(mp, 1, false);
	if (!r)
		return -1;
	s->buf_group = (uint8_t)group;
	r->opcode = MEGAPIPE_OP_READ;
	r->op_flags = MEGAPIPE_READ_BUFFER | MEGAPIPE_READ_MULTISHOT;
	r->buf_group = (uint16_t)group;
	sq_commit(mp, s, r, 1, NULL);
	return 0;
}

/*
 * Bookkeeping of one completion as it is handed out: give back its
 * reservation, and learn about new and released handles.  0, or -1 (ENOMEM)
 * with nothing changed.
 */
static __attribute__((noinline)) int mp_account_any(struct mp_channel *mp,
						    const struct mp_completion *c)
{
	bool synth = c->resv0 == CQE_SYNTH;
	struct mp_hslot *s = NULL, *ns;

	/* first, as it may move the table */
	if ((c->op == MEGAPIPE_OP_ACCEPT || c->op == MEGAPIPE_OP_CONNECT) &&
	    c->result >= 0 && c->new_handle >= 0) {
		ns = slot_new(mp, (uint32_t)c->new_handle,
			      !(c->flags & MEGAPIPE_CQE_F_FD), false,
			      c->op == MEGAPIPE_OP_CONNECT ? c->cookie : 0);
		if (!ns)
			return -1;
	}
	if (c->handle != MP_NO_HANDLE)
		s = slot_get(mp, c->handle);
	mp->owed--;
	switch (c->op) {
	case MEGAPIPE_OP_ACCEPT:
		if (!s || synth) {
			if (s)
				s->busy--;
			break;
		}
		if (s->acc_n) {
			uint32_t *left = acc_at(s, 0);

			if (*left)
				--*left;
			if (!(c->flags & MEGAPIPE_CQE_F_MORE)) {
				mp->owed -= *left;
				s->acc_head = (s->acc_head + 1) % s->acc_cap;
				s->acc_n--;
				if (s->acc_sub)
					s->acc_sub--;
				s->busy--;
			}
		}
		break;
	case MEGAPIPE_OP_CONNECT:
		mp->connects--;
		break;
	case MEGAPIPE_OP_DISCONNECT:
		if (!s)
			break;
		if (synth) {		/* refused: the handle lives on */
			s->closing = 0;
			s->busy--;
		} else {
			slot_free(s);
		}
		break;
	case MEGAPIPE_OP_WRITE:
	case MEGAPIPE_OP_WRITEV:
		if (s) {
			s->busy--;
			s->writes--;
		}
		break;
	case MEGAPIPE_OP_READ:
		if (c->flags & MEGAPIPE_CQE_F_BUFFER)
			buf_out(mp, s, c);
		/* fall through */
	case MEGAPIPE_OP_POLL:
		if (s && !(c->flags & MEGAPIPE_CQE_F_MORE))
			s->busy--;
		break;
	default:
		if (s)
			s->busy--;
	}
	return 0;
}

/*
 * The bookkeeping of a READ's or WRITE's completion (see mp_account_any()),
 * with no call: the per-request paths.
 */
MP_INLINE void mp_account_rw(struct mp_channel *mp,
			     const struct mp_completion *c)
{
	struct mp_hslot *s = slot_get(mp, c->handle);

	mp->owed--;
	if (c->op == MEGAPIPE_OP_WRITE) {
		if (s) {
			s->busy--;
			s->writes--;
		}
		return;
	}
	if (c->flags & MEGAPIPE_CQE_F_BUFFER)
		buf_out(mp, s, c);
	if (s && !(c->flags & MEGAPIPE_CQE_F_MORE))
		s->busy--;
}

MP_INLINE bool is_rw(const struct mp_completion *c)
{
	return c->op == MEGAPIPE_OP_READ || c->op == MEGAPIPE_OP_WRITE;
}

/* The bookkeeping of completion @e as it is handed out: 0 or -1. */
MP_INLINE int mp_account(struct mp_channel *mp, const struct mp_completion *e)
{
	if (is_rw(e)) {
		mp_account_rw(mp, e);
		return 0;
	}
	return mp_account_any(mp, e);
}

/* Hand out completion @e, at the ring's head, where it is. */
MP_INLINE int ring_dispatch(struct mp_channel *mp, struct mp_completion *c,
			    const struct mp_completion *e)
{
	if (mp_account(mp, e))
		return -1;
	*c = *e;
	__atomic_store_n(&mp->kcq->head, mp->kcq->head + 1, __ATOMIC_RELEASE);
	return 1;
}

MP_INLINE const struct mp_completion *ring_head(struct mp_channel *mp)
{
	return &mp->kcqes[mp->kcq->head & mp->kc_mask];
}

/* Hand out the completion at the head of the library's own queue. */
static int cq_dispatch(struct mp_channel *mp, struct mp_completion *c)
{
	struct mp_completion *head = &mp->cq[mp->cq_head];

	if (mp_account(mp, head))
		return -1;
	*c = *head;
	c->resv0 = 0;
	/*
	 * An emptied queue starts again at its first entry: the completions
	 * stay in the same few lines and pages, where going round a queue
	 * sized for the worst case would touch (and fault in) all of it.
	 */
	if (!--mp->cq_n || ++mp->cq_head == mp->cq_cap)
		mp->cq_head = 0;
	return 1;
}

/*
 * mp_dispatch() but for its fast path, oldest first: the library's queue,
 * whose head may have to wait for the kernel's completions before it;
 * the ring's, a batch of at most max_batch at a time, each batch after
 * the submission of what the one before queued (as with copies, where
 * each call fetched at most that many); else a submission and a wait.
 */
static __attribute__((noinline)) int dispatch_slow(struct mp_channel *mp,
						   struct mp_completion *c,
						   int timeout_ms)
{
	bool flushed = false, waited = false;
	uint32_t n;

	for (;;) {
		if (mp->cq_n &&
		    (!mp->kcq || mp->kcq->head == mp->cq_at[mp->cq_head]))
			return cq_dispatch(mp, c);
		if (mp->kcq) {
			if (mp->kc_stop != mp->kcq->head)
				return ring_dispatch(mp, c, ring_head(mp));
			n = ring_scan(mp);
			if (n && mp->sq_n && !flushed) {
				/*
				 * Completions are there to hand out: a flush that
				 * fails (EINTR) leaves its requests queued, for
				 * the next one.
				 */
				flushed = true;
				mp_submit(mp, false, 0);
				continue;
			}
			if (n) {
				if (n > mp->info.max_batch)
					n = mp->info.max_batch;
				mp->kc_stop = mp->kcq->head + n;
				return ring_dispatch(mp, c, ring_head(mp));
			}
		}
		if (mp->cq_n)	/* cannot be: what it waits for is in the ring */
			return cq_dispatch(mp, c);
		if (waited)
			return 0;
		if (!mp->owed && !mp->sq_n) {	/* nothing could ever complete */
			errno = ENOENT;
			return -1;
		}
		if (mp_submit(mp, true, timeout_ms) < 0)
			return -1;
		waited = true;
	}
}

MP_EXPORT int mp_dispatch(struct mp_channel *mp, struct mp_completion *c,
			  int timeout_ms)
{
	const struct mp_completion *e;

	if (mp_enter(mp))
		return -1;
	if (!c) {
		errno = EFAULT;
		return -1;
	}
	/*
	 * A read's or write's completion in the ring, already looked at:
	 * handed out from there, with no call and no copy but to @c.
	 */
	if (mp->kcq && !mp->cq_n && mp->kc_stop != mp->kcq->head) {
		e = ring_head(mp);
		if (is_rw(e))	/* ring_dispatch() with no call left in it */
			return ring_dispatch(mp, c, e);
	}
	return dispatch_slow(mp, c, timeout_ms);
}

/* ---- channel lifetime --------------------------------------------------- */

static bool bad_env_told;

static const struct mp_backend_ops *pick_backend(unsigned int flags, int *err)
{
	const char *env;

	if (flags & MP_CREATE_KERNEL)
		return &mp_kernel_ops;
	if (flags & MP_CREATE_EPOLL)
		return &mp_epoll_ops;
	env = getenv("MEGAPIPE_BACKEND");
	if (!env || !*env)
		return NULL;
	if (!strcmp(env, "kernel"))
		return &mp_kernel_ops;
	if (!strcmp(env, "epoll"))
		return &mp_epoll_ops;
	/* said once per process: mp_create() may be called in a loop */
	if (!__atomic_exchange_n(&bad_env_told, true, __ATOMIC_RELAXED))
		fprintf(stderr, "libmegapipe: MEGAPIPE_BACKEND=%s: unknown backend (kernel or epoll, or unset for automatic); mp_create() fails with EINVAL\n",
			env);
	*err = EINVAL;
	return NULL;
}

static bool ring_off(void)
{
	const char *env = getenv("MEGAPIPE_RING");

	return env && !strcmp(env, "0");
}

static void mp_free(struct mp_channel *mp)
{
	unsigned int i;

	for (i = 0; i < mp->nslots; i++)
		free(mp->slots[i].acc);
	for (i = 0; i < mp->sq_n; i++)
		free(mp->sq_aux[i]);
	for (i = 0; i < MEGAPIPE_MAX_BUF_GROUPS; i++) {
		if (!mp->groups[i])
			continue;
		free(mp->groups[i]->ring);
		free(mp->groups[i]->out);
		free(mp->groups[i]);
	}
	free(mp->slots);
	free(mp->sq);
	free(mp->sq_aux);
	free(mp->sq_flags);
	free(mp->batch);
	free(mp->batch_idx);
	free(mp->cq);
	free(mp->cq_at);
	free(mp->fetch);
	free(mp);
}

MP_EXPORT struct mp_channel *mp_create(unsigned int flags,
				       unsigned int cq_entries)
{
	const struct mp_backend_ops *ops;
	struct megapipe_setup setup = { 0 };
	unsigned int reserve = 0;
	struct mp_channel *mp;
	int err = 0, ret;

	pthread_once(&atfork_once, mp_install_atfork);
	if ((flags & ~(MP_CREATE_KERNEL | MP_CREATE_EPOLL)) ||
	    (flags & MP_CREATE_KERNEL && flags & MP_CREATE_EPOLL)) {
		errno = EINVAL;
		return NULL;
	}
	ops = pick_backend(flags, &err);
	if (err) {
		errno = err;
		return NULL;
	}
	mp = calloc(1, sizeof(*mp));
	if (!mp) {
		errno = ENOMEM;
		return NULL;
	}
	mp->fork_gen = mp_fork_gen;
	mp->sq_last = UINT_MAX;
#ifdef MP_DEBUG
	mp->owner = pthread_self();
#endif
	if (ops) {
		mp->ops = ops;
		ret = ops->open(mp);
	} else {
		/* automatic: the device if it opens, else epoll */
		mp->ops = &mp_kernel_ops;
		ret = mp->ops->open(mp);
		if (ret) {
			mp->ops = &mp_epoll_ops;
			ret = mp->ops->open(mp);
		}
	}
	if (ret) {
		free(mp);
		errno = -ret;
		return NULL;
	}
	ret = mp->ops->info(mp, &mp->info);
	if (!ret && mp->info.abi_version < 1)
		ret = -EPROTONOSUPPORT;
	if (!ret && !cq_entries)
		cq_entries = mp->info.max_cq_entries < MP_DEFAULT_CQ_ENTRIES ?
			     mp->info.max_cq_entries : MP_DEFAULT_CQ_ENTRIES;
	if (!ret && cq_entries > mp->info.max_cq_entries)
		ret = -EINVAL;
	if (!ret) {
		/*
		 * The backend's queue has CQ_RESERVE entries more, for cleanup;
		 * near the backend's maximum they come out of cq_entries.
		 */
		reserve = CQ_RESERVE < mp->info.max_cq_entries / 2 ?
			  CQ_RESERVE : mp->info.max_cq_entries / 2;
		if (cq_entries > mp->info.max_cq_entries - reserve)
			cq_entries = mp->info.max_cq_entries - reserve;
		setup.cq_entries = cq_entries + reserve;
		/* rings where the backend has them, unless MEGAPIPE_RING=0 */
		if ((mp->info.features & MEGAPIPE_FEAT_RING) && !ring_off()) {
			setup.flags = MEGAPIPE_SETUP_RING;
			setup.sq_entries = mp->info.max_batch;
		}
		ret = mp->ops->setup(mp, &setup);
	}
	if (!ret && setup.cq_entries < cq_entries + reserve)
		ret = -EPROTO;
	if (!ret) {
		mp->cq_entries = cq_entries;
		mp->cq_total = setup.cq_entries;
		mp->sq_cap = mp->cq_total;
		mp->sq = calloc(mp->sq_cap, sizeof(*mp->sq));
		mp->sq_aux = calloc(mp->sq_cap, sizeof(*mp->sq_aux));
		mp->sq_flags = calloc(mp->sq_cap, sizeof(*mp->sq_flags));
		mp->cq_cap = 3 * mp->cq_total;
		mp->cq = calloc(mp->cq_cap, sizeof(*mp->cq));
		mp->cq_at = calloc(mp->cq_cap, sizeof(*mp->cq_at));
		mp->fetch = calloc(mp->info.max_batch, sizeof(*mp->fetch));
		mp->batch = calloc(mp->info.max_batch, sizeof(*mp->batch));
		mp->batch_idx = calloc(mp->info.max_batch, sizeof(*mp->batch_idx));
		if (!mp->sq || !mp->sq_aux || !mp->sq_flags || !mp->cq ||
		    !mp->cq_at || !mp->fetch ||
		    !mp->batch || !mp->batch_idx)
			ret = -ENOMEM;
	}
	if (ret) {
		mp->ops->close(mp, false);
		mp_free(mp);
		errno = -ret;
		return NULL;
	}
	return mp;
}

MP_EXPORT void mp_destroy(struct mp_channel *mp)
{
	if (!mp)
		return;
	mp->ops->close(mp, mp->fork_gen != mp_fork_gen);
	mp_free(mp);
}

MP_EXPORT int mp_features(struct mp_channel *mp, struct mp_info *info)
{
	if (mp_enter(mp))
		return -1;
	if (!info) {
		errno = EFAULT;
		return -1;
	}
	memset(info, 0, sizeof(*info));
	info->abi_version = mp->info.abi_version;
	info->backend = mp->ops->id;
	info->features = mp->info.features;
	info->max_handles = mp->info.max_handles;
	info->max_batch = mp->info.max_batch;
	info->max_cq_entries = mp->info.max_cq_entries;
	info->max_iov = mp->info.max_iov;
	info->cq_entries = mp->cq_entries;
	return 0;
}
