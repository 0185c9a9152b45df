// SPDX-License-Identifier: GPL-2.0
/*
 * MegaPipe channels: handles of other files, and MEGAPIPE_OP_POLL.
 *
 * Any pollable file (a timerfd, an eventfd, a signalfd, a pipe, a UDP or
 * Unix socket) can be registered with MEGAPIPE_REGISTER_FILE, so that one
 * loop waits for it and for its sockets; its handle takes POLL requests
 * only.  The handle waits on the wait queues the file's ->poll() names,
 * as epoll does, with entries whose wake function marks the handle ready
 * when the wakeup carries events a POLL waits for; the POLLs run in the
 * owner's context, where the file's ->poll() says what it has.
 *
 * Some queues die before their file (signalfd's lives in the sighand of
 * the process that polls it): wake_up_pollfree() empties them with
 * POLLFREE, upon which an entry leaves its queue and forgets it, and is
 * otherwise removed under RCU, as epoll and io_uring do.
 */
#include <linux/fs.h>
#include <linux/uaccess.h>
#include <linux/eventpoll.h>
#include <linux/file.h>
#include <linux/io_uring.h>
#include <linux/poll.h>
#include <linux/rcupdate.h>
#include <linux/slab.h>

#include "megapipe.h"

/* The events a POLL may ask for; EPOLLERR and EPOLLHUP always count. */
#define MP_POLL_EVENTS	(EPOLLIN | EPOLLPRI | EPOLLOUT | EPOLLERR | \
			 EPOLLHUP | EPOLLRDNORM | EPOLLRDBAND | \
			 EPOLLWRNORM | EPOLLWRBAND | EPOLLMSG | EPOLLRDHUP)
#define MP_POLL_ALWAYS	(EPOLLERR | EPOLLHUP)

/*
 * Files a channel may hold.  Not one that can hold the channel in turn:
 * another channel, or an io_uring (whose registered files can): nothing
 * would ever free such a cycle.  (A Unix socket cannot carry a channel:
 * SCM_RIGHTS refuses channel fds, as it refuses io_uring's.)  Nor an
 * epoll set: it may watch the channel's fd, and its wakeup, forwarded
 * synchronously, would then wake the channel's pollers from within their
 * own wakeup (epoll's loop check cannot see through a channel).
 */
bool mp_file_allowed(struct file *file, int *err)
{
	if (!file_can_poll(file)) {
		*err = -EPERM;
		return false;
	}
	if (megapipe_is_channel(file) || io_is_uring_fops(file) ||
	    file_is_epoll(file)) {
		*err = -EINVAL;
		return false;
	}
	return true;
}

static int mp_file_wake(struct wait_queue_entry *entry, unsigned int mode,
			int sync, void *key)
{
	struct mp_wait *w = container_of(entry, struct mp_wait, entry);
	__poll_t mask = key_to_poll(key);

	if (unlikely(mask & POLLFREE)) {
		/* the POLLs end (mp_poll_run()), once the handle runs */
		mp_handle_mark(w->h);
		/* leave the queue, which goes away (its lock is held) */
		list_del_init(&entry->entry);
		/*
		 * Last, forget it: once mp_file_detach() sees NULL (acquire) it
		 * may free the handle.
		 */
		smp_store_release(&w->head, NULL);
		return 0;
	}
	if (mask && !(mask & (READ_ONCE(w->h->poll_events) | MP_POLL_ALWAYS)))
		return 0;
	/* what it woke for (a wakeup without a key: anything) */
	atomic_or((__force int)(mask ? mask : MP_POLL_EVENTS), &w->h->poll_woken);
	mp_handle_mark(w->h);
	return 0;
}

struct mp_file_pt {
	poll_table pt;
	struct mp_handle *h;
	int err;
};

/* ->poll() names a wait queue of the file: wait there. */
static void mp_file_queue(struct file *file, wait_queue_head_t *head,
			  poll_table *pt)
{
	struct mp_file_pt *p = container_of(pt, struct mp_file_pt, pt);
	struct mp_handle *h = p->h;
	struct mp_wait *w;

	if (h->nwaits == MEGAPIPE_FILE_MAX_QUEUES) {
		p->err = -EOPNOTSUPP;
		return;
	}
	w = &h->waits[h->nwaits++];
	w->h = h;
	w->head = head;
	init_waitqueue_func_entry(&w->entry, mp_file_wake);
	/* not a socket of the channel's (mp_chan_waits_on()) */
	w->entry.private = NULL;
	add_wait_queue(head, &w->entry);
}

/* Hook a file handle to its file's wait queues. */
int mp_file_attach(struct mp_handle *h)
{
	struct mp_file_pt p = { .h = h };

	h->waits = kcalloc(MEGAPIPE_FILE_MAX_QUEUES, sizeof(*h->waits),
			   GFP_KERNEL_ACCOUNT);
	if (!h->waits)
		return -ENOMEM;
	init_poll_funcptr(&p.pt, mp_file_queue);
	vfs_poll(h->file, &p.pt);
	/* no queue: nothing would ever wake a POLL that waits */
	if (!p.err && !h->nwaits)
		p.err = -EOPNOTSUPP;
	if (p.err)
		mp_file_detach(h);
	return p.err;
}

/* Unhook it: once this returns, no waker can see the handle. */
void mp_file_detach(struct mp_handle *h)
{
	struct wait_queue_head *head;
	u32 i;

	for (i = 0; i < h->nwaits; i++) {
		rcu_read_lock();
		/*
		 * Pairs with mp_file_wake()'s release on POLLFREE; a queue it
		 * empties is freed after an RCU grace period.
		 */
		head = smp_load_acquire(&h->waits[i].head);
		if (head)
			remove_wait_queue(head, &h->waits[i].entry);
		rcu_read_unlock();
	}
	kfree(h->waits);
	h->waits = NULL;
	h->nwaits = 0;
}

/* A queue of the file died (POLLFREE): no wakeup will come from it. */
static bool mp_file_dead(struct mp_handle *h)
{
	u32 i;

	for (i = 0; i < h->nwaits; i++)
		/* pairs with mp_file_wake()'s release on POLLFREE */
		if (!smp_load_acquire(&h->waits[i].head))
			return true;
	return false;
}

int mp_poll_prep(struct mp_chan *ch, const struct megapipe_req *r)
{
	if (r->addr || !r->len || (r->len & ~MP_POLL_EVENTS) ||
	    (r->op_flags & ~MEGAPIPE_POLL_MULTISHOT))
		return -EINVAL;
	return 1;
}

/*
 * Complete @req if the file has what it waits for (@mask, from ->poll());
 * a multishot POLL stays armed while its next completion can be reserved.
 * True if it is over.
 */
static bool mp_poll_try(struct mp_req *req, __poll_t mask, bool dead)
{
	__poll_t got = mask & (req->len | MP_POLL_ALWAYS);

	if (!got) {
		if (!dead)
			return false;
		mp_req_complete(req, -ECANCELED, MEGAPIPE_NO_HANDLE, 0);
		return true;
	}
	if ((req->op_flags & MEGAPIPE_POLL_MULTISHOT) && !dead &&
	    mp_cq_reserve(req->h->ch, 1)) {
		mp_req_complete(req, got, MEGAPIPE_NO_HANDLE,
				MEGAPIPE_CQE_F_MORE);
		return false;
	}
	mp_req_complete(req, got, MEGAPIPE_NO_HANDLE, 0);
	return true;
}

/* What the handle's pending POLLs wait for, for the wake function. */
static void mp_poll_events_update(struct mp_handle *h)
{
	struct mp_req *req;
	u32 events = 0;

	list_for_each_entry(req, &h->reads, node)
		events |= req->len;
	WRITE_ONCE(h->poll_events, events);
}

int mp_poll_submit(struct mp_chan *ch, struct mp_handle *h,
		   const struct megapipe_req *r)
{
	struct mp_req *req = mp_req_alloc(h, r);

	if (!req)
		return -ENOMEM;
	list_add_tail(&req->node, &h->reads);
	h->pending++;
	/* before the look: a wakeup in between marks the handle */
	WRITE_ONCE(h->poll_events, h->poll_events | req->len);
	/* only this one: the others complete on wakeups, not on submissions */
	mp_poll_try(req, vfs_poll(h->file, NULL), mp_file_dead(h));
	return 0;
}

/*
 * Before a POLL is taken (mp_opdef.pre_submit): the wakeups that came
 * before it are the other POLLs', and run for them now, with the
 * handle's cookie of then, or the next run would count them for the new
 * one too.
 */
void mp_poll_flush(struct mp_handle *h)
{
	if (atomic_read(&h->poll_woken))
		mp_poll_run(h);
}

/*
 * The file woke the handle: complete the POLLs that have their events.  A
 * one-shot POLL looks at what the file has; a multishot one completes
 * again only for a wakeup that carried one of its events (as an EPOLLET
 * epoll reports), not for another POLL's.
 */
void mp_poll_run(struct mp_handle *h)
{
	struct mp_req *req, *tmp;
	bool dead = mp_file_dead(h);
	__poll_t mask, woken;

	/* before the look: a wakeup after it marks the handle again */
	woken = (__force __poll_t)atomic_xchg(&h->poll_woken, 0);
	if (list_empty(&h->reads))
		return;
	mask = vfs_poll(h->file, NULL);
	list_for_each_entry_safe(req, tmp, &h->reads, node) {
		if ((req->op_flags & MEGAPIPE_POLL_MULTISHOT) && !dead &&
		    !(woken & ((__force __poll_t)req->len | MP_POLL_ALWAYS)))
			continue;
		mp_poll_try(req, mask, dead);
	}
	mp_poll_events_update(h);
}
