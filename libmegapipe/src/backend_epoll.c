// SPDX-License-Identifier: MIT
/*
 * The epoll backend: the channel ABI of <linux/megapipe.h> implemented in
 * user space, for kernels without /dev/megapipe.
 *
 * It takes the same structures and makes the same checks as the device
 * (reserved fields, flags, handles, completion reservations), so code that
 * runs on it runs on the device.  Sockets are non-blocking I/O on epoll:
 * every socket is registered edge-triggered once, for input and output.
 * A request is tried as soon as it is submitted when it is first in its
 * queue; one that finds the socket empty (EAGAIN) waits for the socket's
 * next edge, which the submit call's wait turns into more attempts.
 *
 * Per handle there are two FIFOs: reads (or, for a listener, accepts) and
 * writes (WRITE, WRITEV, DISCONNECT; or the CONNECT of a connecting
 * socket).  Only the head of a FIFO is ever tried, so reads complete in
 * order and so do writes.
 *
 * What user space cannot do: lightweight sockets (every connection here
 * has an fd, the channel's own unless the caller asked for it), listener
 * CPU masks (checked, then ignored), and detection of sockets in a BPF
 * sockmap.  The features word says so.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define EP_MAX_HANDLES		((1U << MEGAPIPE_HANDLE_INDEX_BITS) - 1)
#define EP_MAX_BATCH		256
#define EP_MAX_CQ_ENTRIES	65536
#define EP_MAX_IOV		1024	/* UIO_MAXIOV */
#define EP_GEN_MAX		0x7ff	/* handle = gen << 20 | index, < 2^31 */
#define EP_EVENTS		64
#define CHUNK_BITS		10
#define CHUNK			(1U << CHUNK_BITS)

#define EP_FEATURES	(MEGAPIPE_FEAT_ACCEPT_FD | MEGAPIPE_FEAT_CONNECT | \
			 MEGAPIPE_FEAT_CANCEL | MEGAPIPE_FEAT_EXPORT | \
			 MEGAPIPE_FEAT_WRITEV | MEGAPIPE_FEAT_USER_DATA | \
			 MEGAPIPE_FEAT_POLL | MEGAPIPE_FEAT_BUFFERS | \
			 MEGAPIPE_FEAT_SOCKOPT | MEGAPIPE_FEAT_FILES | \
			 MEGAPIPE_FEAT_ACCEPT_ADDR)

/* The events a POLL may wait for, and those it always gets (the device's). */
#define EP_POLL_EVENTS	(EPOLLIN | EPOLLPRI | EPOLLOUT | EPOLLERR | EPOLLHUP | \
			 EPOLLRDNORM | EPOLLRDBAND | EPOLLWRNORM | \
			 EPOLLWRBAND | EPOLLMSG | EPOLLRDHUP)
#define EP_POLL_ALWAYS	(EPOLLERR | EPOLLHUP)

enum { K_FREE, K_LISTENER, K_CONN, K_CONNECTING, K_FILE };

struct ep_req {
	struct ep_req *next;
	uint8_t op;
	uint32_t op_flags;
	uint32_t left;		/* ACCEPT: connections still wanted */
	size_t total, done;	/* writes: bytes in all, bytes sent */
	struct iovec *iov;	/* writes: the iovecs not yet sent */
	int iovcnt;
	struct iovec *iov_alloc; /* WRITEV: our copy */
	struct iovec iov1;	/* READ, WRITE */
	uint64_t cookie;	/* CONNECT */
	uint64_t user_data;	/* the request's, in each of its completions */
	uint16_t buf_group;	/* READ with MEGAPIPE_READ_BUFFER */
};

/* A buffer ring of the process's (MEGAPIPE_IOC_BUFFERS). */
struct ep_bufring {
	const struct megapipe_buf *ring;	/* NULL: no ring */
	const uint32_t *tail;
	uint32_t entries, head;
	uint32_t tail_seen;	/* *tail as last read, as the device keeps it */
};

/*
 * A file's POLLs wait through one epoll registration per set of events
 * they ask for (see file_reg()).
 */
struct ep_preg {
	struct ep_preg *next;
	uint32_t mask;		/* the events; 0 never (a POLL asks for some) */
	int fd;			/* a dup of the handle's: its own registration */
	unsigned int n;		/* POLLs waiting through it */
};

struct ep_handle {
	uint32_t handle;	/* MEGAPIPE_NO_HANDLE while free */
	uint32_t next_free;
	uint16_t gen;
	uint8_t kind;
	uint8_t owned;		/* lightweight: the fd is the channel's */
	uint8_t closing;	/* DISCONNECT submitted */
	uint8_t in_registry;
	uint8_t nonblock_ref;	/* listener: holds a registration in lfl_tab */
	struct ep_preg *pregs;	/* K_FILE: its POLLs' registrations */
	int fd;
	dev_t dev;
	ino_t ino;
	uint64_t cookie;
	struct ep_req *rq, *rq_tail;	/* READs, ACCEPTs, or POLLs */
	struct ep_req *wq, *wq_tail;	/* WRITE/WRITEV/DISCONNECT, or CONNECT */
};

struct ep_chan {
	int epfd;
	bool set_up;
	unsigned int cq_entries;
	unsigned int reserved;	/* owed by pending requests + in the ring */
	struct megapipe_cqe *cq;
	unsigned int cq_head, cq_n;
	struct ep_req *reqs, *free_reqs;
	/*
	 * Handles in chunks that never move (a pointer to a handle stays
	 * good while others are allocated): index i is chunk[i >> CHUNK_BITS].
	 */
	struct ep_handle *chunk[(EP_MAX_HANDLES >> CHUNK_BITS) + 1];
	unsigned int nh, live;
	uint32_t free_head;	/* list of free slots, MEGAPIPE_NO_HANDLE: none */
	uint32_t free_tail;	/* its last: freed slots go last (h_free()) */
	struct ep_bufring bufs[MEGAPIPE_MAX_BUF_GROUPS];
};

/* ---- the process-wide set of registered sockets (EEXIST) ---------------- */

/*
 * The device refuses a socket already registered in the same channel (a
 * listener is meant to be registered in every channel, each with its
 * CPUs; a connection may be in several, as an fd in several epolls).
 * Sockets are told apart by inode (sockfs gives each its own); the set
 * covers the sockets registered by fd in this process's channels.
 */
#define REG_BUCKETS	1024

struct reg_node {
	struct reg_node *next;
	dev_t dev;
	ino_t ino;
	const void *chan;	/* listeners: the channel; connections: NULL */
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct reg_node *reg_tab[REG_BUCKETS];

static struct reg_node **reg_bucket(dev_t dev, ino_t ino)
{
	return &reg_tab[(ino ^ dev) % REG_BUCKETS];
}

/* 0, -EEXIST or -ENOMEM; @chan: the channel for a listener, else NULL */
static int reg_add(dev_t dev, ino_t ino, const void *chan)
{
	struct reg_node **p, *n;
	int ret = 0;

	pthread_mutex_lock(&reg_lock);
	p = reg_bucket(dev, ino);
	for (n = *p; n; n = n->next)
		if (n->dev == dev && n->ino == ino &&
		    (!n->chan || !chan || n->chan == chan))
			break;
	if (n) {
		ret = -EEXIST;
	} else if (!(n = malloc(sizeof(*n)))) {
		ret = -ENOMEM;
	} else {
		n->dev = dev;
		n->ino = ino;
		n->chan = chan;
		n->next = *p;
		*p = n;
	}
	pthread_mutex_unlock(&reg_lock);
	return ret;
}

static void reg_del(dev_t dev, ino_t ino, const void *chan)
{
	struct reg_node **p, *n;

	pthread_mutex_lock(&reg_lock);
	for (p = reg_bucket(dev, ino); (n = *p); p = &n->next)
		if (n->dev == dev && n->ino == ino && n->chan == chan) {
			*p = n->next;
			free(n);
			break;
		}
	pthread_mutex_unlock(&reg_lock);
}

/*
 * Listeners must be non-blocking while any channel of the process has them
 * (accept4() of a shared listener must not block), and get their own file
 * status flags back when the last registration goes, whichever channel
 * that is.  One record per listener socket, under reg_lock: how many
 * registrations it has and the flags it had before the first.
 */
struct lfl_node {
	struct lfl_node *next;
	dev_t dev;
	ino_t ino;
	unsigned int refs;
	int saved_flags;	/* -1: it was non-blocking already */
};

static struct lfl_node *lfl_tab[REG_BUCKETS];

static struct lfl_node **lfl_find(dev_t dev, ino_t ino)
{
	struct lfl_node **p;

	for (p = &lfl_tab[(ino ^ dev) % REG_BUCKETS]; *p; p = &(*p)->next)
		if ((*p)->dev == dev && (*p)->ino == ino)
			break;
	return p;
}

/* One more registration of listener @fd: make it non-blocking. 0 or -errno. */
static int lfl_get(int fd, dev_t dev, ino_t ino)
{
	struct lfl_node **p, *n;
	int fl, ret = 0;

	pthread_mutex_lock(&reg_lock);
	p = lfl_find(dev, ino);
	if ((n = *p)) {
		n->refs++;
		goto out;
	}
	fl = fcntl(fd, F_GETFL);
	if (fl < 0) {
		ret = -errno;
		goto out;
	}
	n = malloc(sizeof(*n));
	if (!n) {
		ret = -ENOMEM;
		goto out;
	}
	n->saved_flags = -1;
	if (!(fl & O_NONBLOCK)) {
		if (fcntl(fd, F_SETFL, fl | O_NONBLOCK)) {
			ret = -errno;
			free(n);
			goto out;
		}
		n->saved_flags = fl;
	}
	n->dev = dev;
	n->ino = ino;
	n->refs = 1;
	n->next = NULL;
	*p = n;
out:
	pthread_mutex_unlock(&reg_lock);
	return ret;
}

/* One registration of listener @fd less: the last one restores its flags. */
static void lfl_put(int fd, dev_t dev, ino_t ino)
{
	struct lfl_node **p, *n;

	pthread_mutex_lock(&reg_lock);
	p = lfl_find(dev, ino);
	n = *p;
	if (n && !--n->refs) {
		/* the caller may have set flags meanwhile: give back only O_NONBLOCK */
		if (n->saved_flags >= 0) {
			int fl = fcntl(fd, F_GETFL);

			if (fl >= 0)
				fcntl(fd, F_SETFL, (fl & ~O_NONBLOCK) |
					  (n->saved_flags & O_NONBLOCK));
		}
		*p = n->next;
		free(n);
	}
	pthread_mutex_unlock(&reg_lock);
}

/* ---- handles -------------------------------------------------------------- */

static struct ep_handle *h_at(struct ep_chan *ch, uint32_t i)
{
	return &ch->chunk[i >> CHUNK_BITS][i & (CHUNK - 1)];
}

static struct ep_handle *h_get(struct ep_chan *ch, uint32_t handle)
{
	uint32_t i = MEGAPIPE_HANDLE_INDEX(handle);
	struct ep_handle *h;

	if (handle == MEGAPIPE_NO_HANDLE || i >= ch->nh)
		return NULL;
	h = h_at(ch, i);
	return h->handle == handle ? h : NULL;
}

/* A live handle that takes requests. */
static struct ep_handle *h_live(struct ep_chan *ch, uint32_t handle)
{
	struct ep_handle *h = h_get(ch, handle);

	if (!h || h->closing || h->kind == K_CONNECTING)
		return NULL;
	return h;
}

/* A new handle for @fd; NULL with -EMFILE/-ENOMEM in *err. */
static struct ep_handle *h_alloc(struct ep_chan *ch, int fd, uint8_t kind,
				 bool owned, uint64_t cookie, int *err)
{
	struct ep_handle *h;
	uint32_t i;

	if (ch->live >= EP_MAX_HANDLES) {
		*err = -EMFILE;
		return NULL;
	}
	if (ch->free_head == MEGAPIPE_NO_HANDLE) {
		struct ep_handle *p = calloc(CHUNK, sizeof(*p));
		unsigned int k;

		if (!p) {
			*err = -ENOMEM;
			return NULL;
		}
		ch->chunk[ch->nh >> CHUNK_BITS] = p;
		/* free list (empty) in index order, so low indexes go first */
		for (k = CHUNK; k-- > 0;) {
			p[k].handle = MEGAPIPE_NO_HANDLE;
			p[k].next_free = ch->free_head;
			ch->free_head = ch->nh + k;
			if (ch->free_tail == MEGAPIPE_NO_HANDLE)
				ch->free_tail = ch->nh + k;
		}
		ch->nh += CHUNK;
	}
	i = ch->free_head;
	h = h_at(ch, i);
	ch->free_head = h->next_free;
	if (ch->free_head == MEGAPIPE_NO_HANDLE)
		ch->free_tail = MEGAPIPE_NO_HANDLE;
	if (!h->gen || h->gen >= EP_GEN_MAX)
		h->gen = 1;
	else
		h->gen++;
	h->handle = (uint32_t)h->gen << MEGAPIPE_HANDLE_INDEX_BITS | i;
	h->kind = kind;
	h->owned = owned;
	h->closing = 0;
	h->in_registry = 0;
	h->nonblock_ref = 0;
	h->pregs = NULL;
	h->fd = fd;
	h->cookie = cookie;
	h->rq = h->rq_tail = h->wq = h->wq_tail = NULL;
	ch->live++;
	return h;
}

static void h_free(struct ep_chan *ch, struct ep_handle *h)
{
	uint32_t i = MEGAPIPE_HANDLE_INDEX(h->handle);

	if (h->in_registry)
		reg_del(h->dev, h->ino, ch);
	h->handle = MEGAPIPE_NO_HANDLE;
	h->kind = K_FREE;
	h->fd = -1;
	/* last: as the device, a slot is reused after those freed before */
	h->next_free = MEGAPIPE_NO_HANDLE;
	if (ch->free_tail == MEGAPIPE_NO_HANDLE)
		ch->free_head = i;
	else
		h_at(ch, ch->free_tail)->next_free = i;
	ch->free_tail = i;
	ch->live--;
}

static int ep_add(struct ep_chan *ch, struct ep_handle *h, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.u64 = h->handle };

	return epoll_ctl(ch->epfd, EPOLL_CTL_ADD, h->fd, &ev) ? -errno : 0;
}

/* ---- requests and completions -------------------------------------------- */

static struct ep_req *req_get(struct ep_chan *ch)
{
	struct ep_req *r = ch->free_reqs;

	/* every pending request holds a reservation: the pool cannot run dry */
	assert(r);
	ch->free_reqs = r->next;
	memset(r, 0, sizeof(*r));
	return r;
}

static void req_put(struct ep_chan *ch, struct ep_req *r)
{
	free(r->iov_alloc);
	r->iov_alloc = NULL;
	r->next = ch->free_reqs;
	ch->free_reqs = r;
}

static void q_push(struct ep_req **head, struct ep_req **tail, struct ep_req *r)
{
	r->next = NULL;
	if (*tail)
		(*tail)->next = r;
	else
		*head = r;
	*tail = r;
}

static struct ep_req *q_pop(struct ep_req **head, struct ep_req **tail)
{
	struct ep_req *r = *head;

	*head = r->next;
	if (!*head)
		*tail = NULL;
	return r;
}

/* Post a completion; its room was reserved at submission. */
static void post(struct ep_chan *ch, uint64_t cookie, uint32_t handle,
		 uint32_t new_handle, int32_t result, uint8_t op, uint16_t flags,
		 uint64_t user_data)
{
	struct megapipe_cqe *c;

	assert(ch->cq_n < ch->cq_entries);
	c = &ch->cq[(ch->cq_head + ch->cq_n++) % ch->cq_entries];
	memset(c, 0, sizeof(*c));
	c->cookie = cookie;
	c->handle = handle;
	c->new_handle = new_handle;
	c->result = result;
	c->opcode = op;
	c->flags = flags;
	c->user_data = user_data;
}

/* Complete @r on @h with @result; the request leaves its queue first. */
static void finish(struct ep_chan *ch, struct ep_handle *h, struct ep_req *r,
		   int32_t result)
{
	post(ch, h->cookie, h->handle, MEGAPIPE_NO_HANDLE, result, r->op, 0,
	     r->user_data);
	req_put(ch, r);
}

/* An accept ends: its last completion, and the rest of its reservation back. */
static void accept_end(struct ep_chan *ch, struct ep_handle *h, int32_t err)
{
	struct ep_req *r = q_pop(&h->rq, &h->rq_tail);

	post(ch, h->cookie, h->handle, MEGAPIPE_NO_HANDLE, err,
	     MEGAPIPE_OP_ACCEPT, 0, r->user_data);
	ch->reserved -= r->left - 1;
	req_put(ch, r);
}

static void run_accepts(struct ep_chan *ch, struct ep_handle *h)
{
	struct ep_req *r;

	while ((r = h->rq)) {
		bool want_fd = r->op_flags & MEGAPIPE_ACCEPT_FD;
		int flags = SOCK_CLOEXEC, fd, err = 0;
		struct ep_handle *nh;
		struct stat st;

		if (ch->live >= EP_MAX_HANDLES) {
			accept_end(ch, h, -EMFILE);
			continue;
		}
		if (!want_fd || (r->op_flags & MEGAPIPE_ACCEPT_NONBLOCK))
			flags |= SOCK_NONBLOCK;
		if (r->iov1.iov_base) {
			/* the request's k-th connection: its address in slot k */
			struct sockaddr_storage *slot = r->iov1.iov_base;
			socklen_t sl = sizeof(*slot);

			fd = accept4(h->fd, (struct sockaddr *)(slot + (r->total - r->left)),
				     &sl, flags);
		} else {
			fd = accept4(h->fd, NULL, NULL, flags);
		}
		if (fd < 0) {
			/* a connection that gave up, or a network error: as accept(2) advises, go on */
			if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO ||
			    errno == ENETDOWN || errno == ENOPROTOOPT || errno == EHOSTDOWN ||
			    errno == ENONET || errno == EHOSTUNREACH || errno == EOPNOTSUPP ||
			    errno == ENETUNREACH)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			accept_end(ch, h, -errno);
			continue;
		}
		nh = h_alloc(ch, fd, K_CONN, !want_fd, 0, &err);
		if (nh && want_fd) {
			if (fstat(fd, &st))
				err = -errno;
			else if (!(err = reg_add(st.st_dev, st.st_ino, ch))) {
				nh->dev = st.st_dev;
				nh->ino = st.st_ino;
				nh->in_registry = 1;
			}
		}
		if (nh && !err)
			err = ep_add(ch, nh, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);
		if (err) {
			if (nh)
				h_free(ch, nh);
			close(fd);
			accept_end(ch, h, err);
			continue;
		}
		r->left--;
		post(ch, h->cookie, h->handle, nh->handle, want_fd ? fd : 0,
		     MEGAPIPE_OP_ACCEPT, (r->left ? MEGAPIPE_CQE_F_MORE : 0) |
					 (want_fd ? MEGAPIPE_CQE_F_FD : 0), r->user_data);
		if (!r->left)
			req_put(ch, q_pop(&h->rq, &h->rq_tail));
	}
}

/* The next buffer of @group, as the device takes it: 0 or -ENOBUFS. */
static int buf_take(struct ep_chan *ch, uint16_t group, struct megapipe_buf *b)
{
	struct ep_bufring *br = group < MEGAPIPE_MAX_BUF_GROUPS ? &ch->bufs[group] : NULL;
	uint32_t tail;

	if (!br || !br->ring)
		return -ENOBUFS;
	/* the tail is read again once what it published is taken */
	if (br->head == br->tail_seen) {
		tail = __atomic_load_n(br->tail, __ATOMIC_ACQUIRE);
		if (tail == br->head || tail - br->head > br->entries)
			return -ENOBUFS;
		br->tail_seen = tail;
	}
	*b = br->ring[br->head & (br->entries - 1)];
	if (!b->len || b->len > INT_MAX)
		return -ENOBUFS;
	br->head++;
	return 0;
}

/*
 * A READ into a buffer of its group (MEGAPIPE_READ_BUFFER): false when
 * the socket had nothing (the READ waits).  Multishot: stays armed while
 * its next completion can be reserved.
 */
static bool read_buffer(struct ep_chan *ch, struct ep_handle *h, struct ep_req *r)
{
	struct megapipe_buf b;
	ssize_t n;
	char peek;
	int err = buf_take(ch, r->buf_group, &b);

	if (err) {
		/* as the device: no buffer matters only when there is data (or an end) */
		if (recv(h->fd, &peek, 1, MSG_PEEK | MSG_DONTWAIT) < 0 &&
		    (errno == EAGAIN || errno == EWOULDBLOCK))
			return false;
		q_pop(&h->rq, &h->rq_tail);
		finish(ch, h, r, err);
		return true;
	}
	do {
		n = recv(h->fd, (void *)(uintptr_t)b.addr, b.len, MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	if (n <= 0) {
		ch->bufs[r->buf_group].head--;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return false;
		q_pop(&h->rq, &h->rq_tail);
		finish(ch, h, r, n < 0 ? -errno : 0);
		return true;
	}
	if ((r->op_flags & MEGAPIPE_READ_MULTISHOT) && ch->reserved < ch->cq_entries) {
		ch->reserved++;
		post(ch, h->cookie, h->handle, b.bid, (int32_t)n, MEGAPIPE_OP_READ,
		     MEGAPIPE_CQE_F_BUFFER | MEGAPIPE_CQE_F_MORE, r->user_data);
		return true;
	}
	q_pop(&h->rq, &h->rq_tail);
	post(ch, h->cookie, h->handle, b.bid, (int32_t)n, MEGAPIPE_OP_READ,
	     MEGAPIPE_CQE_F_BUFFER, r->user_data);
	req_put(ch, r);
	return true;
}

static void run_reads(struct ep_chan *ch, struct ep_handle *h)
{
	struct ep_req *r;
	ssize_t n;

	while ((r = h->rq)) {
		if (r->op_flags & MEGAPIPE_READ_BUFFER) {
			if (!read_buffer(ch, h, r))
				return;
			continue;
		}
		n = recv(h->fd, r->iov1.iov_base, r->iov1.iov_len, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		q_pop(&h->rq, &h->rq_tail);
		finish(ch, h, r, n < 0 ? -errno : (int32_t)n);
	}
}

/* Complete every WRITE/WRITEV still queued with -ECANCELED; returns how many. */
static unsigned int cancel_writes_behind(struct ep_chan *ch, struct ep_handle *h)
{
	struct ep_req **p = &h->wq, *r;
	unsigned int n = 0;

	h->wq_tail = NULL;
	while ((r = *p)) {
		if (r->op == MEGAPIPE_OP_DISCONNECT) {
			h->wq_tail = r;
			p = &r->next;
			continue;
		}
		*p = r->next;
		finish(ch, h, r, -ECANCELED);
		n++;
	}
	return n;
}

static void poll_end(struct ep_chan *ch, struct ep_handle *h,
		     struct ep_req **pp, int32_t result);
static void file_unreg_all(struct ep_chan *ch, struct ep_handle *h, bool del);

/* Pending reads, accepts or polls complete with -ECANCELED; returns how many. */
static unsigned int cancel_rq(struct ep_chan *ch, struct ep_handle *h)
{
	unsigned int n = 0;

	while (h->rq) {
		if (h->kind == K_LISTENER)
			accept_end(ch, h, -ECANCELED);
		else if (h->kind == K_FILE)
			poll_end(ch, h, &h->rq, -ECANCELED);
		else
			finish(ch, h, q_pop(&h->rq, &h->rq_tail), -ECANCELED);
		n++;
	}
	return n;
}

/* Release a handle's socket and the handle itself. */
static void h_release(struct ep_chan *ch, struct ep_handle *h)
{
	/*
	 * A file's fd is a dup: epoll forgets it only with the caller's fd
	 * closed too, so it leaves the set first.
	 */
	if (h->kind == K_FILE) {
		file_unreg_all(ch, h, true);
		epoll_ctl(ch->epfd, EPOLL_CTL_DEL, h->fd, NULL);
	}
	if (h->owned) {
		close(h->fd);
	} else {
		epoll_ctl(ch->epfd, EPOLL_CTL_DEL, h->fd, NULL);
		if (h->nonblock_ref)
			lfl_put(h->fd, h->dev, h->ino);
	}
	h_free(ch, h);
}

static void run_disconnect(struct ep_chan *ch, struct ep_handle *h)
{
	struct ep_req *r = q_pop(&h->wq, &h->wq_tail);

	cancel_rq(ch, h);
	/*
	 * As the device: a registered socket is shut down (its fd stays the
	 * caller's), the channel's own one only closed, which is a reset
	 * when it has SO_LINGER {1, 0} or unread input and a FIN otherwise.
	 */
	if (!h->owned)
		shutdown(h->fd, SHUT_RDWR);
	finish(ch, h, r, 0);
	h_release(ch, h);
}

/* Returns false if the handle is gone (a DISCONNECT ran). */
static bool run_writes(struct ep_chan *ch, struct ep_handle *h)
{
	struct ep_req *r;
	struct msghdr msg;
	ssize_t n;

	while ((r = h->wq)) {
		if (r->op == MEGAPIPE_OP_DISCONNECT) {
			run_disconnect(ch, h);
			return false;
		}
		memset(&msg, 0, sizeof(msg));
		msg.msg_iov = r->iov;
		msg.msg_iovlen = r->iovcnt;
		n = sendmsg(h->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return true;
		if (n < 0) {
			int err = errno;

			q_pop(&h->wq, &h->wq_tail);
			finish(ch, h, r, r->done ? (int32_t)r->done : -err);
			cancel_writes_behind(ch, h);
			continue;
		}
		r->done += n;
		while (n > 0 && r->iovcnt) {
			size_t k = (size_t)n < r->iov->iov_len ? (size_t)n : r->iov->iov_len;

			r->iov->iov_base = (char *)r->iov->iov_base + k;
			r->iov->iov_len -= k;
			n -= k;
			if (!r->iov->iov_len) {
				r->iov++;
				r->iovcnt--;
			}
		}
		while (r->iovcnt && !r->iov->iov_len) {	/* empty iovecs */
			r->iov++;
			r->iovcnt--;
		}
		if (r->done == r->total) {
			q_pop(&h->wq, &h->wq_tail);
			finish(ch, h, r, (int32_t)r->total);
		}
	}
	return true;
}

static void finish_connect(struct ep_chan *ch, struct ep_handle *h, int err)
{
	struct ep_req *r = q_pop(&h->wq, &h->wq_tail);

	if (!err) {
		h->kind = K_CONN;
		post(ch, r->cookie, MEGAPIPE_NO_HANDLE, h->handle, 0,
		     MEGAPIPE_OP_CONNECT, 0, r->user_data);
	} else {
		post(ch, r->cookie, MEGAPIPE_NO_HANDLE, MEGAPIPE_NO_HANDLE, err,
		     MEGAPIPE_OP_CONNECT, 0, r->user_data);
		close(h->fd);
		h_free(ch, h);
	}
	req_put(ch, r);
}

static void start_connect(struct ep_chan *ch, const struct megapipe_req *q,
			  const struct sockaddr *sa)
{
	struct ep_handle *h;
	struct ep_req *r;
	int fd, err = 0;

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    IPPROTO_TCP);
	if (fd < 0) {
		err = -errno;
		goto fail;
	}
	h = h_alloc(ch, fd, K_CONNECTING, true, q->cookie, &err);
	if (!h) {
		close(fd);
		goto fail;
	}
	r = req_get(ch);
	r->op = MEGAPIPE_OP_CONNECT;
	r->cookie = q->cookie;
	r->user_data = q->user_data;
	q_push(&h->wq, &h->wq_tail, r);
	err = ep_add(ch, h, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);
	if (!err && connect(fd, sa, q->len))
		err = errno == EINPROGRESS || errno == EINTR ? 1 : -errno;
	if (err <= 0)
		finish_connect(ch, h, err);
	return;
fail:
	post(ch, q->cookie, MEGAPIPE_NO_HANDLE, MEGAPIPE_NO_HANDLE, err,
	     MEGAPIPE_OP_CONNECT, 0, q->user_data);
}

/* ---- files and their POLLs (MEGAPIPE_REGISTER_FILE) ------------------------ */

/*
 * The device completes a multishot POLL again for a wakeup that carries
 * one of its events, and only then.  epoll reports an edge-triggered
 * registration for exactly those wakeups, but one interest for all of a
 * file's POLLs would not do: a wakeup for one POLL's events would report
 * the file to the others, and changing the interest (EPOLL_CTL_MOD) when
 * a POLL comes or goes reports a file that has the events again, with no
 * wakeup.  So each set of events the file's POLLs ask for has a
 * registration of its own, on a dup of the handle's fd, made when the
 * first POLL with it arrives and removed when the last one ends: no
 * registration changes while a POLL waits through it.
 *
 * Before a POLL is queued, what epoll has queued runs (take()): the
 * wakeups that came before it are the other POLLs', and the report a new
 * registration makes of a file that already has the events finds no
 * POLL of them yet.  The POLL itself is then checked against what the
 * file has, as the device checks it at submission, and counts every
 * wakeup after that.
 */
static struct ep_preg *file_reg_find(struct ep_handle *h, uint32_t mask)
{
	struct ep_preg *p;

	for (p = h->pregs; p && p->mask != mask; p = p->next)
		;
	return p;
}

/* The registration for @mask, new (*@fresh) or not; NULL with -errno in *@err. */
static struct ep_preg *file_reg(struct ep_chan *ch, struct ep_handle *h,
				uint32_t mask, bool *fresh, int *err)
{
	struct epoll_event ev = {
		.events = mask | EPOLLET,
		.data.u64 = (uint64_t)mask << 32 | h->handle,
	};
	struct ep_preg *p = file_reg_find(h, mask);

	*fresh = false;
	if (p)
		return p;
	p = calloc(1, sizeof(*p));
	if (!p) {
		*err = -ENOMEM;
		return NULL;
	}
	p->fd = fcntl(h->fd, F_DUPFD_CLOEXEC, 0);
	if (p->fd < 0 || epoll_ctl(ch->epfd, EPOLL_CTL_ADD, p->fd, &ev)) {
		*err = -errno;
		if (p->fd >= 0)
			close(p->fd);
		free(p);
		return NULL;
	}
	p->mask = mask;
	p->next = h->pregs;
	h->pregs = p;
	*fresh = true;
	return p;
}

/* A POLL with @mask ended: its registration goes with the last one. */
static void file_unreg(struct ep_chan *ch, struct ep_handle *h, uint32_t mask)
{
	struct ep_preg **pp, *p;

	for (pp = &h->pregs; (p = *pp) && p->mask != mask; pp = &p->next)
		;
	if (!p || --p->n)
		return;
	*pp = p->next;
	/* a dup: epoll keeps it while any fd of the file is open */
	epoll_ctl(ch->epfd, EPOLL_CTL_DEL, p->fd, NULL);
	close(p->fd);
	free(p);
}

/* Every registration of @h, at its release (@del: leave the epoll set too). */
static void file_unreg_all(struct ep_chan *ch, struct ep_handle *h, bool del)
{
	struct ep_preg *p;

	while ((p = h->pregs)) {
		h->pregs = p->next;
		if (del)
			epoll_ctl(ch->epfd, EPOLL_CTL_DEL, p->fd, NULL);
		close(p->fd);
		free(p);
	}
}

/* POLL @r leaves its queue (@pp) with @result. */
static void poll_end(struct ep_chan *ch, struct ep_handle *h,
		     struct ep_req **pp, int32_t result)
{
	struct ep_req *r = *pp;
	uint32_t mask = r->left;

	*pp = r->next;
	if (h->rq_tail == r) {
		h->rq_tail = NULL;
		if (h->rq)
			for (h->rq_tail = h->rq; h->rq_tail->next;
			     h->rq_tail = h->rq_tail->next)
				;
	}
	finish(ch, h, r, result);
	file_unreg(ch, h, mask);
}

/*
 * Complete POLL @r if @mask (what the file has) holds its events; a
 * multishot one stays armed while its next completion can be reserved.
 * True when it is over (then it was unlinked from the queue by @pp).
 */
static bool poll_try(struct ep_chan *ch, struct ep_handle *h,
		     struct ep_req **pp, uint32_t mask)
{
	struct ep_req *r = *pp;
	uint32_t got = mask & (r->left | EP_POLL_ALWAYS);

	if (!got)
		return false;
	if ((r->op_flags & MEGAPIPE_POLL_MULTISHOT) &&
	    ch->reserved < ch->cq_entries) {
		ch->reserved++;
		post(ch, h->cookie, h->handle, MEGAPIPE_NO_HANDLE, (int32_t)got,
		     MEGAPIPE_OP_POLL, MEGAPIPE_CQE_F_MORE, r->user_data);
		return false;
	}
	poll_end(ch, h, pp, (int32_t)got);
	return true;
}

/* What poll(2) says the file has now. */
static uint32_t file_mask(struct ep_handle *h)
{
	struct pollfd p = { .fd = h->fd, .events = EP_POLL_EVENTS & 0xffff };

	if (poll(&p, 1, 0) < 0)
		return 0;
	return (uint32_t)(unsigned short)p.revents;
}

/* epoll reported the registration of @preg_mask with @ev: its POLLs. */
static void run_polls(struct ep_chan *ch, struct ep_handle *h,
		      uint32_t preg_mask, uint32_t ev)
{
	struct ep_preg *p = file_reg_find(h, preg_mask);
	struct ep_req **pp = &h->rq;

	if (!p)			/* gone since epoll_wait() reported it */
		return;
	while (*pp)
		if ((*pp)->left != preg_mask || !poll_try(ch, h, pp, ev))
			pp = &(*pp)->next;
}

static unsigned int run_cancel(struct ep_chan *ch, struct ep_handle *h,
			       uint32_t mask)
{
	struct ep_req **p, *r;
	unsigned int n = 0, i;

	if (!mask)
		mask = MEGAPIPE_CANCEL_ALL;
	if (!h) {			/* the channel's pending connects */
		if (!(mask & MEGAPIPE_CANCEL_OP(MEGAPIPE_OP_CONNECT)))
			return 0;
		for (i = 0; i < ch->nh; i++) {
			if (h_at(ch, i)->kind != K_CONNECTING)
				continue;
			finish_connect(ch, h_at(ch, i), -ECANCELED);
			n++;
		}
		return n;
	}
	if (mask & MEGAPIPE_CANCEL_OP(h->kind == K_LISTENER ? MEGAPIPE_OP_ACCEPT :
				      h->kind == K_FILE ? MEGAPIPE_OP_POLL :
							  MEGAPIPE_OP_READ))
		n += cancel_rq(ch, h);
	p = &h->wq;
	while ((r = *p)) {
		if (r->op == MEGAPIPE_OP_DISCONNECT ||
		    !(mask & MEGAPIPE_CANCEL_OP(r->op))) {
			p = &r->next;
			continue;
		}
		*p = r->next;
		if (!*p)
			h->wq_tail = p == &h->wq ? NULL :
				(struct ep_req *)((char *)p - offsetof(struct ep_req, next));
		n++;
		if (r->done) {		/* partly sent: the rest cannot follow */
			finish(ch, h, r, (int32_t)r->done);
			n += cancel_writes_behind(ch, h);
			break;
		}
		finish(ch, h, r, -ECANCELED);
	}
	return n;
}

/* ---- the ABI ---------------------------------------------------------------- */

static bool resv_zero(const void *p, size_t n)
{
	const unsigned char *c = p;

	while (n--)
		if (*c++)
			return false;
	return true;
}

static int ep_open(struct mp_channel *mp)
{
	struct ep_chan *ch = calloc(1, sizeof(*ch));

	if (!ch)
		return -ENOMEM;
	ch->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (ch->epfd < 0) {
		int err = -errno;

		free(ch);
		return err;
	}
	ch->free_head = MEGAPIPE_NO_HANDLE;
	ch->free_tail = MEGAPIPE_NO_HANDLE;
	mp->be = ch;
	return 0;
}

static int ep_info(struct mp_channel *mp, struct megapipe_info *info)
{
	(void)mp;
	if (info->flags)
		return -EINVAL;
	memset(info, 0, sizeof(*info));
	info->abi_version = MEGAPIPE_ABI_VERSION;
	info->features = EP_FEATURES;
	info->max_handles = EP_MAX_HANDLES;
	info->max_batch = EP_MAX_BATCH;
	info->max_cq_entries = EP_MAX_CQ_ENTRIES;
	info->max_iov = EP_MAX_IOV;
	return 0;
}

static int ep_setup(struct mp_channel *mp, struct megapipe_setup *s)
{
	struct ep_chan *ch = mp->be;
	unsigned int i;

	if (ch->set_up)
		return -EBUSY;
	/* no rings here (MEGAPIPE_FEAT_RING clear): the library copies */
	if (s->flags || s->sq_entries || s->resv0 || s->sq_ring_size ||
	    s->cq_ring_size || s->resv ||
	    !s->cq_entries || s->cq_entries > EP_MAX_CQ_ENTRIES)
		return -EINVAL;
	ch->cq = calloc(s->cq_entries, sizeof(*ch->cq));
	ch->reqs = calloc(s->cq_entries, sizeof(*ch->reqs));
	if (!ch->cq || !ch->reqs) {
		free(ch->cq);
		free(ch->reqs);
		ch->cq = NULL;
		ch->reqs = NULL;
		return -ENOMEM;
	}
	for (i = 0; i < s->cq_entries; i++) {
		ch->reqs[i].next = ch->free_reqs;
		ch->free_reqs = &ch->reqs[i];
	}
	ch->cq_entries = s->cq_entries;
	ch->set_up = true;
	return 0;
}

/* Does the mask name at least one CPU of this machine? */
static int check_cpumask(const struct megapipe_register *r)
{
	const uint64_t *w = (const uint64_t *)(uintptr_t)r->cpumask;
	long ncpu = sysconf(_SC_NPROCESSORS_CONF);
	unsigned int cpu;

	if (!r->cpumask)
		return r->cpumask_len ? -EINVAL : 0;
	if (!r->cpumask_len || r->cpumask_len % 8 ||
	    r->cpumask_len > MEGAPIPE_CPUMASK_MAX_BYTES)
		return -EINVAL;
	for (cpu = 0; cpu < r->cpumask_len * 8 && cpu < ncpu; cpu++)
		if (w[cpu / 64] >> (cpu % 64) & 1)
			return 0;
	return -EINVAL;
}

/*
 * A file for POLLs.  The channel keeps its own descriptor of it (a dup),
 * as the device keeps its own reference: the caller may close its fd.
 * Refused as the device refuses them: a file epoll cannot wait on
 * (EPERM), a channel, an io_uring or an epoll set (EINVAL).
 */
static int ep_reg_file(struct ep_chan *ch, struct megapipe_register *r)
{
	char path[64], link[64];
	struct ep_handle *h;
	ssize_t n;
	int fd, err = 0;

	if (r->cpumask || r->cpumask_len)
		return -EINVAL;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", r->fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n > 0) {
		link[n] = 0;
		if (!strcmp(link, "anon_inode:[io_uring]") ||
		    !strcmp(link, "anon_inode:[eventpoll]") ||
		    !strcmp(link, MEGAPIPE_DEVICE))
			return -EINVAL;
	}
	fd = fcntl(r->fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	h = h_alloc(ch, fd, K_FILE, true, r->cookie, &err);
	if (!h) {
		close(fd);
		return err;
	}
	/* no POLL yet: an interest of nothing */
	err = ep_add(ch, h, EPOLLET);
	if (err) {
		h_free(ch, h);
		close(fd);
		return err;
	}
	r->handle = h->handle;
	return 0;
}

static int ep_reg(struct mp_channel *mp, struct megapipe_register *r)
{
	struct ep_chan *ch = mp->be;
	int val, listening = 0, err = 0;
	socklen_t len = sizeof(val);
	struct sockaddr_storage ss;
	struct ep_handle *h;
	struct stat st;

	if (!ch->set_up)
		return -EBADFD;
	if ((r->flags & ~MEGAPIPE_REGISTER_FILE) ||
	    !resv_zero(r->resv, sizeof(r->resv)) || r->handle)
		return -EINVAL;
	if (fstat(r->fd, &st))
		return -EBADF;
	if (r->flags & MEGAPIPE_REGISTER_FILE)
		return ep_reg_file(ch, r);
	if (!S_ISSOCK(st.st_mode))
		return -ENOTSOCK;
	if (getsockopt(r->fd, SOL_SOCKET, SO_DOMAIN, &val, &len) ||
	    (val != AF_INET && val != AF_INET6))
		return -EOPNOTSUPP;
	len = sizeof(val);
	if (getsockopt(r->fd, SOL_SOCKET, SO_TYPE, &val, &len) || val != SOCK_STREAM)
		return -EOPNOTSUPP;
	len = sizeof(val);
	if (getsockopt(r->fd, SOL_SOCKET, SO_PROTOCOL, &val, &len) || val != IPPROTO_TCP)
		return -EOPNOTSUPP;
	len = sizeof(listening);
	if (getsockopt(r->fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len))
		return -errno;
	len = sizeof(ss);
	if (!listening && getpeername(r->fd, (struct sockaddr *)&ss, &len))
		return -ENOTCONN;
	if (r->cpumask && !listening)
		return -EINVAL;
	err = check_cpumask(r);
	if (err)
		return err;
	err = reg_add(st.st_dev, st.st_ino, ch);
	if (err)
		return err;
	h = h_alloc(ch, r->fd, listening ? K_LISTENER : K_CONN, false, r->cookie, &err);
	if (!h) {
		reg_del(st.st_dev, st.st_ino, ch);
		return err;
	}
	h->dev = st.st_dev;
	h->ino = st.st_ino;
	h->in_registry = 1;
	if (listening) {
		/* accept4() must not block: a listener may be shared */
		err = lfl_get(r->fd, st.st_dev, st.st_ino);
		if (!err) {
			h->nonblock_ref = 1;
			err = ep_add(ch, h, EPOLLIN | EPOLLEXCLUSIVE | EPOLLET);
		}
	} else {
		err = ep_add(ch, h, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);
	}
	if (err) {
		if (h->nonblock_ref)
			lfl_put(r->fd, st.st_dev, st.st_ino);
		h_free(ch, h);
		return err;
	}
	r->handle = h->handle;
	return 0;
}

static int ep_unreg(struct mp_channel *mp, struct megapipe_unregister *u)
{
	struct ep_chan *ch = mp->be;
	struct ep_handle *h;

	if (!ch->set_up)
		return -EBADFD;
	if (u->flags || u->resv)
		return -EINVAL;
	h = h_live(ch, u->handle);
	if (!h)
		return -EBADF;
	if (h->owned && h->kind != K_FILE)
		return -EINVAL;
	if (h->rq || h->wq)
		return -EBUSY;
	h_release(ch, h);
	return 0;
}

/* MEGAPIPE_IOC_BUFFERS, with the device's checks. */
static int ep_buffers(struct mp_channel *mp, struct megapipe_buffers *b)
{
	struct ep_chan *ch = mp->be;
	struct ep_bufring *br;

	if (!ch->set_up)
		return -EBADFD;
	if (b->flags || !resv_zero(b->resv, sizeof(b->resv)) ||
	    b->group >= MEGAPIPE_MAX_BUF_GROUPS)
		return -EINVAL;
	br = &ch->bufs[b->group];
	if (!b->ring) {
		if (b->tail || b->entries)
			return -EINVAL;
		if (!br->ring)
			return -ENOENT;
		memset(br, 0, sizeof(*br));
		return 0;
	}
	if (br->ring)
		return -EEXIST;
	if (!b->entries || (b->entries & (b->entries - 1)) ||
	    b->entries > MEGAPIPE_MAX_BUF_ENTRIES || (b->tail & 3))
		return -EINVAL;
	if (!b->tail)
		return -EFAULT;
	br->ring = (const struct megapipe_buf *)(uintptr_t)b->ring;
	br->tail = (const uint32_t *)(uintptr_t)b->tail;
	br->entries = b->entries;
	br->head = 0;
	br->tail_seen = 0;
	return 0;
}

static int ep_export(struct mp_channel *mp, struct megapipe_export *e)
{
	struct ep_chan *ch = mp->be;
	struct ep_handle *h;
	int fl, fd;

	if (!ch->set_up)
		return -EBADFD;
	if ((e->flags & ~MEGAPIPE_EXPORT_NONBLOCK) || e->resv)
		return -EINVAL;
	h = h_live(ch, e->handle);
	if (!h)
		return -EBADF;
	if (!h->owned || h->kind == K_FILE)
		return -EINVAL;
	if (h->rq || h->wq)
		return -EBUSY;
	fd = h->fd;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, (e->flags & MEGAPIPE_EXPORT_NONBLOCK) ?
				 fl | O_NONBLOCK : fl & ~O_NONBLOCK))
		return -errno;
	epoll_ctl(ch->epfd, EPOLL_CTL_DEL, fd, NULL);
	h_free(ch, h);
	e->fd = fd;
	return 0;
}

/*
 * MEGAPIPE_IOC_SOCKOPT: the options the device takes, and the same
 * refusals (EOPNOTSUPP for the rest, EINVAL for a lingering SO_LINGER),
 * on the handle's fd.
 */
static const struct { int level, optname; bool set; } ep_sockopts[] = {
	{ SOL_SOCKET, SO_KEEPALIVE, true },	{ SOL_SOCKET, SO_RCVBUF, true },
	{ SOL_SOCKET, SO_SNDBUF, true },	{ SOL_SOCKET, SO_PRIORITY, true },
	{ SOL_SOCKET, SO_LINGER, true },	{ SOL_SOCKET, SO_TYPE, false },
	{ SOL_SOCKET, SO_DOMAIN, false },	{ SOL_SOCKET, SO_PROTOCOL, false },
	{ SOL_SOCKET, SO_INCOMING_CPU, false },	{ SOL_SOCKET, SO_COOKIE, false },
	{ IPPROTO_TCP, TCP_NODELAY, true },	{ IPPROTO_TCP, TCP_CORK, true },
	{ IPPROTO_TCP, TCP_KEEPIDLE, true },	{ IPPROTO_TCP, TCP_KEEPINTVL, true },
	{ IPPROTO_TCP, TCP_KEEPCNT, true },	{ IPPROTO_TCP, TCP_USER_TIMEOUT, true },
	{ IPPROTO_TCP, TCP_CONGESTION, true },	{ IPPROTO_TCP, TCP_NOTSENT_LOWAT, true },
	{ IPPROTO_TCP, TCP_INFO, false },	{ IPPROTO_TCP, TCP_MAXSEG, false },
	{ IPPROTO_IP, IP_TOS, true },		{ IPPROTO_IPV6, IPV6_TCLASS, true },
};

static int ep_sockopt(struct mp_channel *mp, struct megapipe_sockopt *o)
{
	struct ep_chan *ch = mp->be;
	void *val = (void *)(uintptr_t)o->optval;
	socklen_t len = o->optlen;
	struct ep_handle *h;
	unsigned int i;
	int r;

	if (!ch->set_up)
		return -EBADFD;
	if (o->resv || o->cmd > MEGAPIPE_SOCKOPT_PEERNAME ||
	    (o->cmd >= MEGAPIPE_SOCKOPT_SOCKNAME && (o->level || o->optname)))
		return -EINVAL;
	h = h_get(ch, o->handle);
	if (!h || h->closing)
		return -EBADF;
	if (h->kind == K_FILE)
		return -EOPNOTSUPP;
	if (o->cmd >= MEGAPIPE_SOCKOPT_SOCKNAME) {
		r = o->cmd == MEGAPIPE_SOCKOPT_PEERNAME ?
			getpeername(h->fd, val, &len) : getsockname(h->fd, val, &len);
		goto out;
	}
	for (i = 0; i < sizeof(ep_sockopts) / sizeof(ep_sockopts[0]); i++)
		if (ep_sockopts[i].level == o->level &&
		    ep_sockopts[i].optname == o->optname)
			break;
	if (i == sizeof(ep_sockopts) / sizeof(ep_sockopts[0]) ||
	    (o->cmd == MEGAPIPE_SOCKOPT_SET && !ep_sockopts[i].set))
		return -EOPNOTSUPP;
	if (o->cmd == MEGAPIPE_SOCKOPT_GET) {
		r = getsockopt(h->fd, o->level, o->optname, val, &len);
		goto out;
	}
	if (o->optlen > INT_MAX)
		return -EINVAL;
	if (o->level == SOL_SOCKET && o->optname == SO_LINGER) {
		struct linger lg;
		struct iovec to = { &lg, sizeof(lg) }, from = { val, sizeof(lg) };

		if (o->optlen < sizeof(lg))
			return -EINVAL;
		/*
		 * One copy, checked and set; EFAULT (not SIGSEGV) for a bad
		 * pointer, as the device; a plain copy where a sandbox
		 * refuses the call.
		 */
		if (process_vm_readv(getpid(), &to, 1, &from, 1, 0) != sizeof(lg)) {
			if (errno == EFAULT)
				return -EFAULT;
			memcpy(&lg, val, sizeof(lg));
		}
		if (lg.l_onoff && lg.l_linger)
			return -EINVAL;
		return setsockopt(h->fd, o->level, o->optname, &lg, sizeof(lg)) ? -errno : 0;
	}
	return setsockopt(h->fd, o->level, o->optname, val, len) ? -errno : 0;
out:
	if (r)
		return -errno;
	o->optlen = len;
	return 0;
}

static void ep_collect(struct ep_chan *ch);

/*
 * Check request @q and, if it is good, take it: 0 or the -errno for which
 * it is refused (nothing done then).
 */
static int take(struct ep_chan *ch, const struct megapipe_req *q)
{
	struct ep_handle *h = NULL;
	struct ep_preg *preg = NULL;
	unsigned int need = 1;
	bool was_empty, fresh = false;
	struct ep_req *r;
	int i;

	if (q->resv0 || q->resv1 || q->resv2 || !resv_zero(q->resv, sizeof(q->resv)) ||
	    (q->buf_group && q->opcode != MEGAPIPE_OP_READ) || !q->opcode || q->opcode > MEGAPIPE_OP_LAST ||
	    (q->flags & ~MEGAPIPE_REQ_F_SET_COOKIE))
		return -EINVAL;
	if (q->opcode == MEGAPIPE_OP_CONNECT || q->opcode == MEGAPIPE_OP_CANCEL) {
		if (q->flags || (q->opcode == MEGAPIPE_OP_CANCEL && q->cookie))
			return -EINVAL;
	} else if (!(q->flags & MEGAPIPE_REQ_F_SET_COOKIE) && q->cookie) {
		return -EINVAL;
	}

	switch (q->opcode) {
	case MEGAPIPE_OP_ACCEPT:
		h = h_live(ch, q->handle);
		if (!h)
			return -EBADF;
		if (h->kind != K_LISTENER ||
		    (q->op_flags & ~(MEGAPIPE_ACCEPT_FD | MEGAPIPE_ACCEPT_NONBLOCK)) ||
		    ((q->op_flags & MEGAPIPE_ACCEPT_NONBLOCK) &&
		     !(q->op_flags & MEGAPIPE_ACCEPT_FD)) ||
		    !q->len || q->len > ch->cq_entries)
			return -EINVAL;
		need = q->len;
		break;
	case MEGAPIPE_OP_READ:
	case MEGAPIPE_OP_WRITE:
	case MEGAPIPE_OP_WRITEV:
	case MEGAPIPE_OP_DISCONNECT:
		h = h_live(ch, q->handle);
		if (!h)
			return -EBADF;
		if (q->opcode == MEGAPIPE_OP_READ && (q->op_flags & MEGAPIPE_READ_BUFFER)) {
			if (h->kind != K_CONN ||
			    (q->op_flags & ~(MEGAPIPE_READ_BUFFER | MEGAPIPE_READ_MULTISHOT)) ||
			    q->addr || q->len || q->buf_group >= MEGAPIPE_MAX_BUF_GROUPS)
				return -EINVAL;
			break;
		}
		if (h->kind != K_CONN || q->op_flags || q->buf_group)
			return -EINVAL;
		if (q->opcode == MEGAPIPE_OP_DISCONNECT) {
			if (q->addr || q->len)
				return -EINVAL;
		} else if (!q->len || q->len > (q->opcode == MEGAPIPE_OP_WRITEV ?
						EP_MAX_IOV : INT_MAX)) {
			return -EINVAL;
		} else if (!q->addr) {
			return -EFAULT;
		}
		break;
	case MEGAPIPE_OP_CONNECT: {
		const struct sockaddr *sa = (const struct sockaddr *)(uintptr_t)q->addr;

		if (q->handle != MEGAPIPE_NO_HANDLE || q->op_flags)
			return -EINVAL;
		if (!sa)
			return -EFAULT;
		if (q->len < sizeof(sa_family_t) || q->len > sizeof(struct sockaddr_storage))
			return -EINVAL;
		if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6)
			return -EAFNOSUPPORT;
		if (q->len < (sa->sa_family == AF_INET ? sizeof(struct sockaddr_in) :
							 sizeof(struct sockaddr_in6)))
			return -EINVAL;
		break;
	}
	case MEGAPIPE_OP_POLL:
		h = h_live(ch, q->handle);
		if (!h)
			return -EBADF;
		if (h->kind != K_FILE || q->addr || !q->len ||
		    (q->len & ~EP_POLL_EVENTS) ||
		    (q->op_flags & ~MEGAPIPE_POLL_MULTISHOT))
			return -EINVAL;
		break;
	case MEGAPIPE_OP_CANCEL:
		if (q->handle != MEGAPIPE_NO_HANDLE) {
			h = h_live(ch, q->handle);
			if (!h)
				return -EBADF;
		}
		if (q->addr || q->len || (q->op_flags & ~MEGAPIPE_CANCEL_ALL))
			return -EINVAL;
		break;
	}
	if (need > ch->cq_entries - ch->reserved)
		return -EBUSY;
	/*
	 * A POLL: what epoll has queued runs first (file_reg()), its entry
	 * held meanwhile, as the POLLs that run may re-arm; then its
	 * registration (an fd: refused when there is none to have), whose
	 * report of a file that has the events, if new, runs before it too.
	 */
	if (q->opcode == MEGAPIPE_OP_POLL) {
		ch->reserved += need;
		ep_collect(ch);
		preg = file_reg(ch, h, q->len, &fresh, &i);
		if (preg && fresh)
			ep_collect(ch);
		ch->reserved -= need;
		if (!preg)
			return i;
	}

	/* Taken: from here on, the outcome is a completion. */
	if (q->opcode == MEGAPIPE_OP_WRITEV) {
		const struct iovec *uiov = (const struct iovec *)(uintptr_t)q->addr;
		size_t total = 0;

		for (i = 0; i < (int)q->len; i++) {
			if (uiov[i].iov_len > INT_MAX - total)
				return -EINVAL;
			total += uiov[i].iov_len;
		}
		if (!total)
			return -EINVAL;
		r = req_get(ch);
		r->iov_alloc = malloc(q->len * sizeof(*uiov));
		if (!r->iov_alloc) {
			req_put(ch, r);
			return -ENOMEM;
		}
		memcpy(r->iov_alloc, uiov, q->len * sizeof(*uiov));
		r->iov = r->iov_alloc;
		r->iovcnt = q->len;
		r->total = total;
	} else if (q->opcode != MEGAPIPE_OP_CANCEL && q->opcode != MEGAPIPE_OP_CONNECT) {
		r = req_get(ch);
		r->iov1.iov_base = (void *)(uintptr_t)q->addr;
		r->iov1.iov_len = q->len;
		r->iov = &r->iov1;
		r->iovcnt = 1;
		r->total = q->len;
	} else {
		r = NULL;
	}
	ch->reserved += need;
	if (h && (q->flags & MEGAPIPE_REQ_F_SET_COOKIE))
		h->cookie = q->cookie;
	if (r) {
		r->op = q->opcode;
		r->op_flags = q->op_flags;
		r->left = q->len;
		r->user_data = q->user_data;
		r->buf_group = q->buf_group;
	}

	switch (q->opcode) {
	case MEGAPIPE_OP_ACCEPT:
		was_empty = !h->rq;
		q_push(&h->rq, &h->rq_tail, r);
		if (was_empty)
			run_accepts(ch, h);
		break;
	case MEGAPIPE_OP_READ:
		was_empty = !h->rq;
		q_push(&h->rq, &h->rq_tail, r);
		if (was_empty)
			run_reads(ch, h);
		break;
	case MEGAPIPE_OP_POLL: {
		struct ep_req **pp = &h->rq;
		uint32_t has;

		q_push(&h->rq, &h->rq_tail, r);
		preg->n++;
		/* only this one: the others complete on wakeups */
		while (*pp != r)
			pp = &(*pp)->next;
		has = file_mask(h);
		poll_try(ch, h, pp, has);
		break;
	}
	case MEGAPIPE_OP_DISCONNECT:
		h->closing = 1;
		/* fall through */
	case MEGAPIPE_OP_WRITE:
	case MEGAPIPE_OP_WRITEV:
		was_empty = !h->wq;
		q_push(&h->wq, &h->wq_tail, r);
		if (was_empty)
			run_writes(ch, h);
		break;
	case MEGAPIPE_OP_CONNECT:
		start_connect(ch, q, (const struct sockaddr *)(uintptr_t)q->addr);
		break;
	case MEGAPIPE_OP_CANCEL: {
		unsigned int n = run_cancel(ch, h, q->op_flags);

		post(ch, h ? h->cookie : 0, q->handle, MEGAPIPE_NO_HANDLE, n,
		     MEGAPIPE_OP_CANCEL, 0, q->user_data);
		break;
	}
	}
	return 0;
}

static void on_event(struct ep_chan *ch, uint64_t data, uint32_t ev)
{
	uint32_t handle = (uint32_t)data, preg_mask = data >> 32;
	struct ep_handle *h = h_get(ch, handle);
	int err = 0;
	socklen_t len = sizeof(err);

	if (!h)			/* released since epoll_wait() reported it */
		return;
	switch (h->kind) {
	case K_LISTENER:
		if (h->rq)
			run_accepts(ch, h);
		break;
	case K_CONNECTING:
		if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			break;
		if (getsockopt(h->fd, SOL_SOCKET, SO_ERROR, &err, &len))
			err = errno;
		finish_connect(ch, h, -err);
		break;
	case K_FILE:
		run_polls(ch, h, preg_mask, ev);
		break;
	case K_CONN:
		if (h->rq && (ev & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP)))
			run_reads(ch, h);
		if (h->wq && (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			run_writes(ch, h);
		break;
	}
}

static unsigned int copy_out(struct ep_chan *ch, struct megapipe_cqe *out,
			     unsigned int room)
{
	unsigned int n = 0;

	while (ch->cq_n && n < room) {
		out[n++] = ch->cq[ch->cq_head];
		ch->cq_head = (ch->cq_head + 1) % ch->cq_entries;
		ch->cq_n--;
		ch->reserved--;
	}
	if (!ch->cq_n)		/* as the library's queue: start again at 0 */
		ch->cq_head = 0;
	return n;
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * Run everything epoll has queued now, without waiting (one call returns
 * at most EP_EVENTS; a few more rounds take the rest).
 */
static void ep_collect(struct ep_chan *ch)
{
	struct epoll_event evs[EP_EVENTS];
	int i, n, rounds = 0;

	do {
		n = epoll_wait(ch->epfd, evs, EP_EVENTS, 0);
		for (i = 0; i < n; i++)
			on_event(ch, evs[i].data.u64, evs[i].events);
	} while (n == EP_EVENTS && ++rounds < 64);
}

static int ep_submit(struct mp_channel *mp, struct megapipe_submit *s)
{
	const struct megapipe_req *reqs = (const void *)(uintptr_t)s->reqs;
	struct megapipe_cqe *cqes = (void *)(uintptr_t)s->cqes;
	struct ep_chan *ch = mp->be;
	struct epoll_event evs[EP_EVENTS];
	int64_t deadline = 0;
	int i, n, err;

	if (!ch->set_up)
		return -EBADFD;
	if (s->flags || !resv_zero(s->resv, sizeof(s->resv)) ||
	    s->min_complete > s->max_cqes)
		return -EINVAL;
	if (s->nr_reqs > EP_MAX_BATCH || s->max_cqes > EP_MAX_BATCH)
		return -E2BIG;
	if ((s->nr_reqs && !reqs) || (s->max_cqes && !cqes))
		return -EFAULT;

	s->submitted = 0;
	s->completed = 0;
	s->error = 0;
	for (; s->submitted < s->nr_reqs; s->submitted++) {
		err = take(ch, &reqs[s->submitted]);
		if (err) {
			s->error = err;
			break;
		}
	}
	/*
	 * Run what the sockets' events allow now, as the device runs its
	 * ready handles in every call: a call that does not wait (timeout 0,
	 * the caller polling mp_fd()) makes progress too, and so does one
	 * with no room for completions (they wait in the queue).
	 */
	ep_collect(ch);
	s->completed = copy_out(ch, cqes, s->max_cqes);
	if (s->error || s->completed >= s->min_complete || !s->timeout_ns)
		return 0;

	if (s->timeout_ns > 0)
		deadline = now_ns() + s->timeout_ns;
	while (s->completed < s->min_complete) {
		int ms = -1;

		if (s->timeout_ns > 0) {
			int64_t left = deadline - now_ns();

			if (left <= 0)
				break;
			/* round up: never return before the timeout */
			ms = left / 1000000 + (left % 1000000 != 0);
			if (ms > INT_MAX / 2)
				ms = INT_MAX / 2;
		}
		n = epoll_wait(ch->epfd, evs, EP_EVENTS, ms);
		if (n < 0) {
			if (errno != EINTR)
				return -errno;
			return s->submitted ? 0 : -EINTR;
		}
		for (i = 0; i < n; i++)
			on_event(ch, evs[i].data.u64, evs[i].events);
		s->completed += copy_out(ch, cqes + s->completed,
					 s->max_cqes - s->completed);
	}
	return 0;
}

static void ep_close(struct mp_channel *mp, bool foreign)
{
	struct ep_chan *ch = mp->be;
	unsigned int i;

	if (!ch)
		return;
	for (i = 0; i < ch->nh; i++) {
		struct ep_handle *h = h_at(ch, i);
		struct ep_req *r;

		if (h->handle == MEGAPIPE_NO_HANDLE)
			continue;
		while (h->rq)
			req_put(ch, q_pop(&h->rq, &h->rq_tail));
		if (h->kind == K_FILE)	/* the epoll set goes with epfd */
			file_unreg_all(ch, h, false);
		while (h->wq) {
			r = q_pop(&h->wq, &h->wq_tail);
			free(r->iov_alloc);
			r->iov_alloc = NULL;
		}
		if (foreign) {		/* the creator's sockets: hands off */
			if (h->owned)
				close(h->fd);
			continue;
		}
		if (h->owned)
			close(h->fd);
		else if (h->nonblock_ref)
			lfl_put(h->fd, h->dev, h->ino);
		if (h->in_registry)
			reg_del(h->dev, h->ino, ch);
	}
	close(ch->epfd);
	for (i = 0; i < ch->nh; i += CHUNK)
		free(ch->chunk[i >> CHUNK_BITS]);
	free(ch->cq);
	free(ch->reqs);
	free(ch);
	mp->be = NULL;
}

/* The epoll set: readable when a socket has an event for ep_submit(). */
static int ep_poll_fd(struct mp_channel *mp)
{
	return ((struct ep_chan *)mp->be)->epfd;
}

const struct mp_backend_ops mp_epoll_ops = {
	.name		= "epoll",
	.id		= MP_BACKEND_EPOLL,
	.open		= ep_open,
	.info		= ep_info,
	.setup		= ep_setup,
	.reg		= ep_reg,
	.unreg		= ep_unreg,
	.export_fd	= ep_export,
	.sockopt	= ep_sockopt,
	.buffers	= ep_buffers,
	.submit		= ep_submit,
	.poll_fd	= ep_poll_fd,
	.close		= ep_close,
};
