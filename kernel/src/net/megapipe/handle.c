// SPDX-License-Identifier: GPL-2.0
/*
 * MegaPipe channels: handles and how their sockets wake them.
 *
 * A handle is an index into the channel's slot table plus the slot's
 * generation (include/uapi/linux/megapipe.h), so that a stale handle is
 * refused.  A registered handle (and one accepted with an fd) holds a
 * reference to its socket's file; a lightweight one (lwsocket.c) owns
 * its socket, which has no file.
 *
 * A handle waits for its socket's events the way epoll and io_uring's
 * poll do: with entries on the socket's wait queues whose wake function
 * puts the handle on its channel's ready list and wakes the channel (see
 * struct mp_wait).  The socket's callbacks stay TCP's, so the channel
 * coexists with kTLS, sockmap, epoll and every other waiter, and a
 * listener's children owe it nothing.  The I/O runs in the owner's
 * context (mp_run_ready()).  Removing the entries (mp_handle_detach())
 * takes each queue's lock, so once a handle is detached no waker sees it.
 */
#include <linux/file.h>
#include <linux/net.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/nospec.h>
#include <linux/poll.h>
#include <net/inet_connection_sock.h>
#include <net/inet_percore_listen.h>
#include <net/sock.h>

#include "megapipe.h"

/*
 * Handles and requests have slab caches of their own: a handle is about
 * 270 bytes, which kmalloc would round up to 512, on every connection.
 */
struct kmem_cache *mp_handle_cachep, *mp_req_cachep;

int __init mp_caches_init(void)
{
	mp_handle_cachep = KMEM_CACHE(mp_handle, SLAB_ACCOUNT);
	mp_req_cachep = KMEM_CACHE(mp_req, SLAB_ACCOUNT);
	if (!mp_handle_cachep || !mp_req_cachep) {
		kmem_cache_destroy(mp_handle_cachep);
		kmem_cache_destroy(mp_req_cachep);
		return -ENOMEM;
	}
	return 0;
}

/* ---- the slot table ------------------------------------------------- */

#define MP_NO_SLOT	U32_MAX

int mp_handles_init(struct mp_chan *ch)
{
	ch->free_head = MP_NO_SLOT;
	ch->free_tail = MP_NO_SLOT;
	return 0;
}

/*
 * Room for another handle: a channel holds at most RLIMIT_NOFILE of them
 * (and MP_MAX_HANDLES), as an io_uring holds at most RLIMIT_NOFILE
 * registered files: lightweight sockets and registered sockets whose fd
 * was closed count as the fds they stand for.
 */
bool mp_handle_room(struct mp_chan *ch)
{
	return ch->nlive < min_t(unsigned long, MP_MAX_HANDLES,
				 rlimit(RLIMIT_NOFILE));
}

/* Find a free index, growing the table; MP_NO_SLOT when full. */
static u32 mp_slot_alloc(struct mp_chan *ch, int *err)
{
	struct mp_slot *slots;
	u32 i, n;

	if (!mp_handle_room(ch)) {
		*err = -EMFILE;
		return MP_NO_SLOT;
	}
	if (ch->free_head != MP_NO_SLOT) {
		i = ch->free_head;
		ch->free_head = ch->slots[i].next_free;
		if (ch->free_head == MP_NO_SLOT)
			ch->free_tail = MP_NO_SLOT;
		return i;
	}
	n = ch->nslots ? ch->nslots * 2 : 64;
	n = min(n, MP_MAX_HANDLES);
	/* the user's to grow: a failure is its ENOMEM, not a warning */
	slots = kvcalloc(n, sizeof(*slots), GFP_KERNEL_ACCOUNT | __GFP_NOWARN);
	if (!slots) {
		*err = -ENOMEM;
		return MP_NO_SLOT;
	}
	if (ch->nslots)
		memcpy(slots, ch->slots, ch->nslots * sizeof(*slots));
	kvfree(ch->slots);
	ch->slots = slots;
	/* new slots, highest last on the (empty) free list: low indices first */
	for (i = n - 1; i > ch->nslots; i--) {
		slots[i].next_free = ch->free_head;
		ch->free_head = i;
		if (ch->free_tail == MP_NO_SLOT)
			ch->free_tail = i;
	}
	i = ch->nslots;
	ch->nslots = n;
	return i;
}

/*
 * A freed slot goes to the end of the free list: a slot is reused only
 * after every slot freed before it, so that the id of a handle gone (its
 * generation, MP_GEN_BITS of it) names another handle only after the
 * slot was reused 2^MP_GEN_BITS times, not after as many handles.
 */
static void mp_slot_put(struct mp_chan *ch, u32 i)
{
	ch->slots[i].h = NULL;
	ch->slots[i].gen = (ch->slots[i].gen + 1) & ((1U << MP_GEN_BITS) - 1);
	ch->slots[i].next_free = MP_NO_SLOT;
	if (ch->free_tail == MP_NO_SLOT)
		ch->free_head = i;
	else
		ch->slots[ch->free_tail].next_free = i;
	ch->free_tail = i;
}

/* The handle @id names, closing (DISCONNECT queued) or not; or NULL. */
struct mp_handle *mp_handle_lookup(struct mp_chan *ch, u32 id)
{
	u32 i = MEGAPIPE_HANDLE_INDEX(id);
	struct mp_handle *h;

	if (id >= (1U << 31) || i >= ch->nslots)
		return NULL;
	h = ch->slots[array_index_nospec(i, ch->nslots)].h;
	if (!h || h->id != id || h->connecting)
		return NULL;
	return h;
}

/* A live handle that takes requests; NULL for EBADF. */
struct mp_handle *mp_handle_get(struct mp_chan *ch, u32 id)
{
	struct mp_handle *h = mp_handle_lookup(ch, id);

	if (!h || h->closing)
		return NULL;
	return h;
}

/*
 * A new handle holding @file (the caller's reference becomes the
 * handle's), or with @file NULL the lightweight socket @sock (which
 * becomes the handle's), not yet attached to its socket.
 */
struct mp_handle *mp_handle_new(struct mp_chan *ch, struct file *file,
				struct socket *sock, bool listener,
				bool fd_backed, int *err)
{
	struct mp_handle *h = NULL;
	u32 i;

	/* a connection's handle: one the channel freed, if it kept some */
	if (!listener)
		h = list_first_entry_or_null(&ch->handle_cache,
					     struct mp_handle, sock_node);
	if (h) {
		list_del(&h->sock_node);
		ch->nr_handle_cache--;
		memset(h, 0, sizeof(*h));
	} else {
		h = kmem_cache_zalloc(mp_handle_cachep, GFP_KERNEL_ACCOUNT);
		if (!h) {
			*err = -ENOMEM;
			return NULL;
		}
	}
	if (listener && !zalloc_cpumask_var(&h->cpus, GFP_KERNEL_ACCOUNT)) {
		kmem_cache_free(mp_handle_cachep, h);
		*err = -ENOMEM;
		return NULL;
	}
	i = mp_slot_alloc(ch, err);
	if (i == MP_NO_SLOT) {
		if (listener)
			free_cpumask_var(h->cpus);
		kmem_cache_free(mp_handle_cachep, h);
		return NULL;
	}
	h->ch = ch;
	h->id = ch->slots[i].gen << MEGAPIPE_HANDLE_INDEX_BITS | i;
	h->file = file;
	h->sock = file ? sock_from_file(file) : sock;
	h->sk = h->sock ? h->sock->sk : NULL;
	h->listener = listener;
	h->fd_backed = fd_backed;
	INIT_LIST_HEAD(&h->sock_node);
	INIT_LIST_HEAD(&h->ready_node);
	INIT_LIST_HEAD(&h->accepts);
	INIT_LIST_HEAD(&h->reads);
	INIT_LIST_HEAD(&h->writes);
	ch->slots[i].h = h;
	ch->nlive++;
	return h;
}

/* ---- readiness ------------------------------------------------------ */

/*
 * Put the handle on its channel's ready list and wake the channel.  True
 * when a thread of the channel is waiting for work (the channel is idle):
 * it runs the handle now.
 */
bool mp_handle_mark(struct mp_handle *h)
{
	struct mp_chan *ch = h->ch;
	unsigned long flags;
	bool marked = false, idle;

	spin_lock_irqsave(&ch->ready_lock, flags);
	if (list_empty(&h->ready_node)) {
		list_add_tail(&h->ready_node, &ch->ready);
		marked = true;
	}
	spin_unlock_irqrestore(&ch->ready_lock, flags);
	/* a waiter was woken when the handle was marked before */
	idle = wq_has_sleeper(&ch->wait);
	if (marked && idle)
		wake_up(&ch->wait);
	if (marked && wq_has_sleeper(&ch->poll_wait))
		wake_up(&ch->poll_wait);
	return idle;
}

/*
 * A connection's socket posted an event (data, write space, a state
 * change, an error): mark the handle, whatever the event, as the callbacks
 * of the socket post them whether or not a request waits (mp_read_run()
 * relies on it).
 */
static int mp_conn_wake(struct wait_queue_entry *entry, unsigned int mode,
			int sync, void *key)
{
	mp_handle_mark(container_of(entry, struct mp_wait, entry)->h);
	return 0;
}

/*
 * Does a waiter wait on the clone of this CPU, the one the new child is
 * queued on (inet_pcl_data_ready() runs in the same BH-disabled section)?
 * If none does, the child is nobody's own: every channel is marked.
 */
static bool mp_clone_covered(struct sock *sk)
{
	struct wait_queue_head *head;

	head = inet_pcl_wait_head(sk, raw_smp_processor_id());
	/*
	 * Lockless: a handle registering on that clone meanwhile has its
	 * ACCEPT try the queues when it is submitted (mp_accept_submit()).
	 */
	return head && waitqueue_active(head);
}

/*
 * A listener's event.  Its entries are exclusive, as an EPOLLEXCLUSIVE
 * epoll's: a new connection wakes one waiter, and the waker goes on to the
 * next while none takes it.  A channel takes it (returns 1) when it has an
 * ACCEPT pending and a thread waiting.  A busy channel lets the wakeup go
 * on, so that an idle channel (or accept(2)) further on is served now; it
 * is marked too, to try when it gets to it, where the connection is its
 * own (the clone of a CPU of its mask, a CPU no channel's mask has, or a
 * listener not in per-core mode), and else left alone: the channel of
 * that CPU is marked, and this one looks for queued connections itself
 * before it sleeps (mp_listeners_recheck()).  Anything but a new
 * connection (the listener stopped listening: a NULL key, EPOLLHUP or
 * EPOLLERR) marks every handle: pending ACCEPTs end with accept()'s error.
 */
static int mp_listener_wake(struct wait_queue_entry *entry, unsigned int mode,
			    int sync, void *key)
{
	struct mp_wait *w = container_of(entry, struct mp_wait, entry);
	struct mp_handle *h = w->h;
	__poll_t mask = key_to_poll(key);

	if (!key || (mask & (EPOLLERR | EPOLLHUP))) {
		mp_handle_mark(h);
		return 0;
	}
	if (!READ_ONCE(h->naccepts))
		return 0;
	/*
	 * A polled channel is marked (its pollers woken) like an idle one,
	 * but lets the wakeup go on: whether its thread waits cannot be told.
	 */
	if (!w->mark_busy && !wq_has_sleeper(&h->ch->wait) &&
	    !wq_has_sleeper(&h->ch->poll_wait) && mp_clone_covered(h->sk))
		return 0;
	return mp_handle_mark(h);
}

/*
 * The channel is about to sleep (on its wait queue already, so idle for
 * the wakers): mark its listeners with an ACCEPT pending that have a
 * connection queued anywhere (one another, busy, channel was sent), so
 * that it takes them now.  True if it marked some.
 */
bool mp_listeners_recheck(struct mp_chan *ch)
{
	struct mp_handle *h;
	bool any = false;

	lockdep_assert_held(&ch->lock);
	list_for_each_entry(h, &ch->listeners, sock_node) {
		if (!h->naccepts)
			continue;
		/* the protocol's poll: no busy polling, no sleeping */
		if (READ_ONCE(h->sock->ops)->poll(h->file, h->sock, NULL) &
		    (EPOLLIN | EPOLLERR | EPOLLHUP)) {
			mp_handle_mark(h);
			any = true;
		}
	}
	return any;
}

static void mp_wait_add(struct mp_handle *h, struct mp_wait *w,
			struct wait_queue_head *head, bool exclusive,
			bool mark_busy)
{
	w->h = h;
	w->head = head;
	w->mark_busy = mark_busy;
	init_waitqueue_func_entry(&w->entry, exclusive ? mp_listener_wake :
				  mp_conn_wake);
	/* the channel's mark on the queue (mp_chan_waits_on()) */
	w->entry.private = h->ch;
	if (exclusive)
		add_wait_queue_exclusive(head, &w->entry);
	else
		add_wait_queue(head, &w->entry);
}

/*
 * The wait queues a listener handle waits on: a per-core listener's clone
 * of each CPU of the handle's mask (unless the mask is every CPU) and its
 * queue of all exclusive waiters, so that a connection goes to a channel
 * of its CPU first and to any idle one else (inet_pcl_data_ready()); any
 * other listener's own queue.
 */
static int mp_listener_attach(struct mp_handle *h)
{
	struct wait_queue_head *head;
	bool all = cpumask_equal(h->cpus, cpu_possible_mask);
	u32 n = 0;
	int cpu;

	head = inet_pcl_wait_head(h->sk, -1);
	if (!head) {
		mp_wait_add(h, &h->wait, sk_sleep(h->sk), true, true);
		return 0;
	}
	if (!all) {
		h->waits = kcalloc(cpumask_weight(h->cpus), sizeof(*h->waits),
				   GFP_KERNEL_ACCOUNT);
		if (!h->waits)
			return -ENOMEM;
		for_each_cpu(cpu, h->cpus)
			mp_wait_add(h, &h->waits[n++],
				    inet_pcl_wait_head(h->sk, cpu), true,
				    true);
		h->nwaits = n;
	}
	/* with every CPU in its mask, every connection is its own */
	mp_wait_add(h, &h->wait, head, true, all);
	return 0;
}

/* Does an entry of channel @ch wait on @head already? */
static bool mp_chan_waits_on(struct wait_queue_head *head, struct mp_chan *ch)
{
	struct wait_queue_entry *e;
	bool found = false;

	spin_lock_irq(&head->lock);
	list_for_each_entry(e, &head->head, entry) {
		if (e->private == ch) {
			found = true;
			break;
		}
	}
	spin_unlock_irq(&head->lock);
	return found;
}

/*
 * Hook the handle to its socket's events.  A socket is in a channel at
 * most once: -EEXIST (a connection may be in several channels, as an fd
 * in several epolls; a listener is meant to be in every channel).  Events
 * that came before are found by the first request, which tries the
 * socket when it is submitted.
 */
int mp_handle_attach(struct mp_handle *h)
{
	struct mp_handle *o;
	int err;

	if (!h->listener) {
		if (h->fd_backed && mp_chan_waits_on(&h->sock->wq.wait, h->ch))
			return -EEXIST;
		/* TCP's own receive queue holds what a READ would get */
		if (!inet_csk_has_ulp(h->sk) &&
		    !rcu_access_pointer(h->sk->sk_user_data))
			h->prot = READ_ONCE(h->sk->sk_prot);
		mp_wait_add(h, &h->wait, &h->sock->wq.wait, false, false);
		return 0;
	}
	list_for_each_entry(o, &h->ch->listeners, sock_node)
		if (o->sk == h->sk)
			return -EEXIST;
	err = mp_listener_attach(h);
	if (err)
		return err;
	list_add_tail(&h->sock_node, &h->ch->listeners);
	return 0;
}

/* Unhook the handle: once this returns, no waker can see it. */
static void mp_handle_detach(struct mp_handle *h)
{
	u32 i;

	if (h->is_file) {
		mp_file_detach(h);
		return;
	}
	if (!h->wait.head)
		return;
	remove_wait_queue(h->wait.head, &h->wait.entry);
	h->wait.head = NULL;
	for (i = 0; i < h->nwaits; i++)
		remove_wait_queue(h->waits[i].head, &h->waits[i].entry);
	kfree(h->waits);
	h->waits = NULL;
	h->nwaits = 0;
	if (h->listener)
		list_del_init(&h->sock_node);
}

/*
 * Forget a handle whose requests are all gone: unhook it, drop it from
 * the ready list and the table, and release its file reference or its
 * lightweight socket (unless the caller took them over, leaving NULL).
 */
void mp_handle_free(struct mp_handle *h)
{
	struct mp_chan *ch = h->ch;
	u32 i = MEGAPIPE_HANDLE_INDEX(h->id);

	WARN_ON_ONCE(h->pending);
	mp_handle_detach(h);
	spin_lock_irq(&ch->ready_lock);
	list_del_init(&h->ready_node);
	spin_unlock_irq(&ch->ready_lock);
	if (ch->slots[i].h == h) {
		mp_slot_put(ch, i);
		ch->nlive--;
	}
	if (h->file)
		fput(h->file);
	else if (h->sock)
		mp_lw_release(h->sock);
	if (h->listener) {
		free_cpumask_var(h->cpus);
	} else if (ch->nr_handle_cache < MP_HANDLE_CACHE) {
		/* no waker can see it any more: detached above */
		list_add(&h->sock_node, &ch->handle_cache);
		ch->nr_handle_cache++;
		return;
	}
	kmem_cache_free(mp_handle_cachep, h);
}

/* The channel goes away: free the handles it kept. */
void mp_handle_cache_free(struct mp_chan *ch)
{
	struct mp_handle *h, *tmp;

	list_for_each_entry_safe(h, tmp, &ch->handle_cache, sock_node)
		kmem_cache_free(mp_handle_cachep, h);
	INIT_LIST_HEAD(&ch->handle_cache);
	ch->nr_handle_cache = 0;
}

/* Closing the channel: cancel everything, release every socket. */
void mp_handles_release(struct mp_chan *ch)
{
	u32 i;

	for (i = 0; i < ch->nslots; i++) {
		struct mp_handle *h = ch->slots[i].h;

		if (!h)
			continue;
		mp_handle_cancel_all(h, false);
		mp_handle_free(h);
		cond_resched();
	}
	kvfree(ch->slots);
	ch->slots = NULL;
	ch->nslots = 0;
}

/* ---- running ready handles (owner context) ---------------------------- */

bool mp_ready_pending(struct mp_chan *ch)
{
	return !list_empty_careful(&ch->ready);
}

/* Make whatever progress the handle's socket allows, in request order. */
void mp_handle_run(struct mp_handle *h)
{
	if (h->connecting) {
		mp_connect_run(h);
		return;
	}
	if (h->is_file) {
		mp_poll_run(h);
		return;
	}
	if (h->listener) {
		mp_accept_run(h);
		return;
	}
	/* reads first: the write side may free the handle (DISCONNECT) */
	mp_read_run(h);
	if (mp_write_ready(h))
		mp_write_run(h);
}

/*
 * Run the handles ready now, once each: those the callbacks mark
 * meanwhile wait for the next call.  A handle of the batch stays on it
 * until it is run (mp_handle_free() takes it off under ready_lock).
 */
void mp_run_ready(struct mp_chan *ch)
{
	struct mp_handle *h;
	LIST_HEAD(batch);

	lockdep_assert_held(&ch->lock);
	/*
	 * Nothing marked: a handle marked meanwhile wakes the channel or is
	 * seen by its next look (mp_wait() checks under its wait entry).
	 */
	if (!mp_ready_pending(ch))
		return;
	/*
	 * ready_lock is held from the splice to the first handle's removal,
	 * and from each run's end to the next removal: one lock per handle.
	 */
	spin_lock_irq(&ch->ready_lock);
	list_splice_init(&ch->ready, &batch);
	while (!list_empty(&batch)) {
		h = list_first_entry(&batch, struct mp_handle, ready_node);
		list_del_init(&h->ready_node);
		spin_unlock_irq(&ch->ready_lock);
		mp_handle_run(h);
		cond_resched();
		spin_lock_irq(&ch->ready_lock);
	}
	spin_unlock_irq(&ch->ready_lock);
}

/* ---- MEGAPIPE_IOC_REGISTER, _UNREGISTER, _EXPORT ---------------------- */

static int mp_copy_cpumask(struct mp_handle *h,
			   const struct megapipe_register *reg)
{
	u32 nbits = reg->cpumask_len * BITS_PER_BYTE;
	unsigned long *bits;
	u64 *words;
	int err = 0;

	if (!reg->cpumask) {
		cpumask_copy(h->cpus, cpu_possible_mask);
		return 0;
	}
	/* an array of __u64, CPU n at bit n % 64 of word n / 64 */
	words = kmalloc(reg->cpumask_len, GFP_KERNEL_ACCOUNT);
	bits = bitmap_zalloc(nbits, GFP_KERNEL_ACCOUNT);
	if (!words || !bits) {
		kfree(words);
		bitmap_free(bits);
		return -ENOMEM;
	}
	if (copy_from_user(words, u64_to_user_ptr(reg->cpumask),
			   reg->cpumask_len)) {
		kfree(words);
		bitmap_free(bits);
		return -EFAULT;
	}
	bitmap_from_arr64(bits, words, nbits);
	kfree(words);
	bitmap_copy(cpumask_bits(h->cpus), bits,
		    min_t(u32, nbits, nr_cpumask_bits));
	cpumask_and(h->cpus, h->cpus, cpu_possible_mask);
	if (cpumask_empty(h->cpus))
		err = -EINVAL;
	/* without per-core listen a mask of some CPUs would mean nothing */
	else if (!(MP_FEATURES & MEGAPIPE_FEAT_PERCORE_LISTEN) &&
		 !cpumask_equal(h->cpus, cpu_possible_mask))
		err = -EOPNOTSUPP;
	bitmap_free(bits);
	return err;
}

/* MEGAPIPE_REGISTER_FILE: any pollable file, for POLLs (poll.c). */
static long mp_register_file(struct mp_chan *ch,
			     const struct megapipe_register *reg,
			     struct file *file, u32 __user *uhandle)
{
	struct mp_handle *h;
	int err = 0;

	if (reg->cpumask || !mp_file_allowed(file, &err)) {
		fput(file);
		return err ? err : -EINVAL;
	}
	h = mp_handle_new(ch, file, NULL, false, true, &err);
	if (!h) {
		fput(file);
		return err;
	}
	/* not a socket to the channel, even if it is one */
	h->sock = NULL;
	h->sk = NULL;
	h->is_file = true;
	err = mp_file_attach(h);
	if (!err && put_user(h->id, uhandle))
		err = -EFAULT;
	if (err) {
		mp_handle_free(h);	/* drops the file reference */
		return err;
	}
	h->cookie = reg->cookie;
	return 0;
}

long mp_register(struct mp_chan *ch, struct megapipe_register __user *arg)
{
	struct megapipe_register reg;
	struct mp_handle *h;
	struct socket *sock;
	struct file *file;
	bool listener;
	int err = 0;

	if (copy_from_user(&reg, arg, sizeof(reg)))
		return -EFAULT;
	if ((reg.flags & ~MEGAPIPE_REGISTER_FILE) || reg.resv[0] || reg.resv[1] ||
	    !reg.cpumask != !reg.cpumask_len ||
	    reg.cpumask_len % sizeof(u64) ||
	    reg.cpumask_len > MEGAPIPE_CPUMASK_MAX_BYTES)
		return -EINVAL;
	file = fget(reg.fd);
	if (!file)
		return -EBADF;
	if (reg.flags & MEGAPIPE_REGISTER_FILE)
		return mp_register_file(ch, &reg, file, &arg->handle);
	sock = sock_from_file(file);
	if (!sock) {
		err = -ENOTSOCK;
		goto out_put;
	}
	if (!sock->sk || sock->type != SOCK_STREAM ||
	    (sock->sk->sk_family != AF_INET && sock->sk->sk_family != AF_INET6) ||
	    sock->sk->sk_protocol != IPPROTO_TCP) {
		err = -EOPNOTSUPP;
		goto out_put;
	}
	listener = READ_ONCE(sock->sk->sk_state) == TCP_LISTEN;
	if (!listener && !((1 << READ_ONCE(sock->sk->sk_state)) &
			   (TCPF_ESTABLISHED | TCPF_CLOSE_WAIT))) {
		err = -ENOTCONN;
		goto out_put;
	}
	if (!listener && reg.cpumask) {
		err = -EINVAL;
		goto out_put;
	}
	h = mp_handle_new(ch, file, NULL, listener, true, &err);
	if (!h)
		goto out_put;
	if (listener)
		err = mp_copy_cpumask(h, &reg);
	if (!err)
		err = mp_handle_attach(h);
	if (!err && put_user(h->id, &arg->handle))
		err = -EFAULT;
	if (err) {
		mp_handle_free(h);	/* drops the file reference */
		return err;
	}
	h->cookie = reg.cookie;
	/* anything that arrived before the hook is found by the first request */
	return 0;
out_put:
	fput(file);
	return err;
}

/* A handle that may leave the channel: EBADF, EBUSY. */
static struct mp_handle *mp_handle_leaving(struct mp_chan *ch, u32 id,
					   int *err)
{
	struct mp_handle *h = mp_handle_get(ch, id);

	if (!h) {
		*err = -EBADF;
		return NULL;
	}
	if (h->pending) {
		*err = -EBUSY;
		return NULL;
	}
	return h;
}

long mp_unregister(struct mp_chan *ch, struct megapipe_unregister __user *arg)
{
	struct megapipe_unregister u;
	struct mp_handle *h;
	int err = 0;

	if (copy_from_user(&u, arg, sizeof(u)))
		return -EFAULT;
	if (u.flags || u.resv)
		return -EINVAL;
	h = mp_handle_get(ch, u.handle);
	if (!h)
		return -EBADF;
	if (!h->fd_backed)
		return -EINVAL;
	h = mp_handle_leaving(ch, u.handle, &err);
	if (!h)
		return err;
	mp_handle_free(h);
	return 0;
}

long mp_export(struct mp_chan *ch, struct megapipe_export __user *arg)
{
	struct megapipe_export e;
	struct mp_handle *h;
	struct file *file;
	int err = 0, fd;

	if (copy_from_user(&e, arg, sizeof(e)))
		return -EFAULT;
	if ((e.flags & ~MEGAPIPE_EXPORT_NONBLOCK) || e.resv)
		return -EINVAL;
	h = mp_handle_get(ch, e.handle);
	if (!h)
		return -EBADF;
	if (h->fd_backed)
		return -EINVAL;
	h = mp_handle_leaving(ch, e.handle, &err);
	if (!h)
		return err;
	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0)
		return fd;
	if (put_user(fd, &arg->fd)) {
		put_unused_fd(fd);
		return -EFAULT;
	}
	/* on failure the socket stays the handle's, as it was */
	file = mp_lw_file(h->sock, e.flags & MEGAPIPE_EXPORT_NONBLOCK);
	if (IS_ERR(file)) {
		put_unused_fd(fd);
		return PTR_ERR(file);
	}
	mp_lw_exported(h->sock);
	h->sock = NULL;		/* the socket goes to the file, the file to the fd */
	mp_handle_free(h);
	fd_install(fd, file);
	return 0;
}
