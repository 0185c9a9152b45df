// SPDX-License-Identifier: GPL-2.0
/*
 * MegaPipe channels: handles and the socket callbacks.
 *
 * A handle is an index into the channel's slot table plus the slot's
 * generation (include/uapi/linux/megapipe.h), so that a stale handle is
 * refused.  A registered handle (and one accepted with an fd) holds a
 * reference to its socket's file; a lightweight one (lwsocket.c) owns
 * its socket, which has no file.
 *
 * The channel hooks sk_data_ready (listeners and connections),
 * sk_write_space and sk_state_change (connections) of a registered
 * socket.  The wrappers run in softirq: they only put the handle on its
 * channel's ready list and wake the channel, then chain to the callback
 * they replaced.  They find the handles through sk_user_data (struct
 * mp_sock), written under sk_callback_lock and read under it, so that once
 * a handle is detached no callback can still see it.  A socket whose
 * callbacks someone else replaced, with a ULP, or with sk_user_data of
 * another owner (a sockmap, say) is refused; a callback is restored only
 * if it is still ours.  Children of a registered listener are cloned with
 * its callbacks but not its sk_user_data (SK_USER_DATA_NOCOPY):
 * megapipe_sk_clone() gives them TCP's defaults back, and a wrapper that
 * finds no mp_sock behaves as the default.  A TCP socket's default callbacks
 * are sock_def_readable (or a per-core listener's inet_pcl_data_ready),
 * sk_stream_write_space and sock_def_wakeup.
 */
#include <linux/file.h>
#include <linux/net.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <net/inet_connection_sock.h>
#include <net/net_namespace.h>
#include <net/inet_percore_listen.h>
#include <net/sock.h>
#include <net/tcp.h>

#include "megapipe.h"

/* ---- the slot table ------------------------------------------------- */

#define MP_NO_SLOT	U32_MAX

int mp_handles_init(struct mp_chan *ch)
{
	ch->free_head = MP_NO_SLOT;
	return 0;
}

/* Find a free index, growing the table; MP_NO_SLOT when full. */
static u32 mp_slot_alloc(struct mp_chan *ch, int *err)
{
	struct mp_slot *slots;
	u32 i, n;

	if (ch->free_head != MP_NO_SLOT) {
		i = ch->free_head;
		ch->free_head = ch->slots[i].next_free;
		return i;
	}
	if (ch->nlive >= MP_MAX_HANDLES) {
		*err = -EMFILE;
		return MP_NO_SLOT;
	}
	n = ch->nslots ? ch->nslots * 2 : 64;
	n = min(n, MP_MAX_HANDLES);
	slots = kvcalloc(n, sizeof(*slots), GFP_KERNEL_ACCOUNT);
	if (!slots) {
		*err = -ENOMEM;
		return MP_NO_SLOT;
	}
	if (ch->nslots)
		memcpy(slots, ch->slots, ch->nslots * sizeof(*slots));
	kvfree(ch->slots);
	ch->slots = slots;
	/* new slots, highest last on the free list: low indices first */
	for (i = n - 1; i > ch->nslots; i--) {
		slots[i].next_free = ch->free_head;
		ch->free_head = i;
	}
	i = ch->nslots;
	ch->nslots = n;
	return i;
}

static void mp_slot_put(struct mp_chan *ch, u32 i)
{
	ch->slots[i].h = NULL;
	ch->slots[i].gen = (ch->slots[i].gen + 1) & ((1U << MP_GEN_BITS) - 1);
	ch->slots[i].next_free = ch->free_head;
	ch->free_head = i;
}

/* The handle @id names, closing (DISCONNECT queued) or not; or NULL. */
struct mp_handle *mp_handle_lookup(struct mp_chan *ch, u32 id)
{
	u32 i = MEGAPIPE_HANDLE_INDEX(id);
	struct mp_handle *h;

	if (id >= (1U << 31) || i >= ch->nslots)
		return NULL;
	h = ch->slots[i].h;
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
		h = kzalloc(sizeof(*h), GFP_KERNEL_ACCOUNT);
		if (!h) {
			*err = -ENOMEM;
			return NULL;
		}
	}
	if (listener && !zalloc_cpumask_var(&h->cpus, GFP_KERNEL_ACCOUNT)) {
		kfree(h);
		*err = -ENOMEM;
		return NULL;
	}
	i = mp_slot_alloc(ch, err);
	if (i == MP_NO_SLOT) {
		if (listener)
			free_cpumask_var(h->cpus);
		kfree(h);
		return NULL;
	}
	h->ch = ch;
	h->id = ch->slots[i].gen << MEGAPIPE_HANDLE_INDEX_BITS | i;
	h->file = file;
	h->sock = file ? sock_from_file(file) : sock;
	h->sk = h->sock->sk;
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

void mp_handle_mark(struct mp_handle *h)
{
	struct mp_chan *ch = h->ch;
	unsigned long flags;
	bool wake = false;

	spin_lock_irqsave(&ch->ready_lock, flags);
	if (list_empty(&h->ready_node)) {
		list_add_tail(&h->ready_node, &ch->ready);
		wake = true;
	}
	spin_unlock_irqrestore(&ch->ready_lock, flags);
	if (wake && wq_has_sleeper(&ch->wait))
		wake_up(&ch->wait);
}

/*
 * Mark the socket's handles.  A new child of a per-core listener marks
 * only the handles (channels) whose CPU mask has the CPU of the child's
 * clone and which have an ACCEPT pending, when there are some: the
 * channel of that CPU takes it, the others sleep on; else every handle,
 * and whoever runs first takes (steals) it.  The child's clone is the
 * current CPU's: per-core listen queues a child on the CPU completing its
 * handshake and calls sk_data_ready() there, in the same BH-disabled
 * section.  (h->accepts is read without the channel lock: a race only
 * costs a spurious or a wider wakeup.)
 */
static void mp_sock_mark(struct sock *sk, struct mp_sock *ms)
{
	struct mp_handle *h;
	bool any = false;
	int cpu;

	if (ms->listener && inet_pcl(sk)) {
		cpu = raw_smp_processor_id();
		list_for_each_entry(h, &ms->handles, sock_node) {
			if (cpumask_test_cpu(cpu, h->cpus) &&
			    !list_empty_careful(&h->accepts)) {
				mp_handle_mark(h);
				any = true;
			}
		}
		if (any)
			return;
	}
	list_for_each_entry(h, &ms->handles, sock_node)
		mp_handle_mark(h);
}

/*
 * Ours only while one of our wrappers is installed, and tagged exactly
 * NOCOPY: a sockmap's psock (NOCOPY | PSOCK) or a reuseport array's entry
 * (NOCOPY | BPF) is someone else's.
 */
static struct mp_sock *mp_sock_of(struct sock *sk)
{
	uintptr_t ud = (uintptr_t)rcu_dereference_check(__sk_user_data(sk),
				lockdep_is_held(&sk->sk_callback_lock));

	if ((ud & ~SK_USER_DATA_PTRMASK) != SK_USER_DATA_NOCOPY)
		return NULL;
	return (struct mp_sock *)(ud & SK_USER_DATA_PTRMASK);
}

/* sock_def_wakeup(), which is static. */
static void mp_def_wakeup(struct sock *sk)
{
	struct socket_wq *wq;

	rcu_read_lock();
	wq = rcu_dereference(sk->sk_wq);
	if (skwq_has_sleeper(wq))
		wake_up_interruptible_all(&wq->wait);
	rcu_read_unlock();
}

/*
 * A TCP socket's own sk_state_change (sock_def_wakeup(), static in
 * net/core/sock.c), learnt from a socket made for the purpose, so that
 * registration can tell whether someone else replaced it.
 */
static void (*mp_tcp_state_change)(struct sock *sk) __ro_after_init = mp_def_wakeup;

void __init mp_handles_learn_defaults(void)
{
	struct socket *sock;

	if (sock_create_kern(&init_net, AF_INET, SOCK_STREAM, IPPROTO_TCP,
			     &sock))
		return;
	mp_tcp_state_change = sock->sk->sk_state_change;
	sock_release(sock);
}

void megapipe_sk_data_ready(struct sock *sk)
{
	void (*orig)(struct sock *sk) = sock_def_readable;
	struct mp_sock *ms;

	read_lock_bh(&sk->sk_callback_lock);
	ms = mp_sock_of(sk);
	if (ms) {
		mp_sock_mark(sk, ms);
		orig = ms->saved_data_ready;
	}
	read_unlock_bh(&sk->sk_callback_lock);
	orig(sk);
}

static void mp_sk_write_space(struct sock *sk)
{
	void (*orig)(struct sock *sk) = sk_stream_write_space;
	struct mp_sock *ms;

	read_lock_bh(&sk->sk_callback_lock);
	ms = mp_sock_of(sk);
	if (ms) {
		if (sk_stream_is_writeable(sk))
			mp_sock_mark(sk, ms);
		orig = ms->saved_write_space;
	}
	read_unlock_bh(&sk->sk_callback_lock);
	orig(sk);
}

static void mp_sk_state_change(struct sock *sk)
{
	void (*orig)(struct sock *sk) = mp_tcp_state_change;
	struct mp_sock *ms;

	read_lock_bh(&sk->sk_callback_lock);
	ms = mp_sock_of(sk);
	if (ms) {
		mp_sock_mark(sk, ms);
		orig = ms->saved_state_change;
	}
	read_unlock_bh(&sk->sk_callback_lock);
	orig(sk);
}

/*
 * A child of a registered listener, cloned with its callbacks (from
 * inet_csk_clone_lock(), before anyone sees the child): give it TCP's
 * defaults back.  Registration only hooks sockets that had them.
 */
void __megapipe_sk_clone(struct sock *newsk)
{
	newsk->sk_data_ready = sock_def_readable;
	if (newsk->sk_write_space == mp_sk_write_space)
		newsk->sk_write_space = sk_stream_write_space;
	if (newsk->sk_state_change == mp_sk_state_change)
		newsk->sk_state_change = mp_tcp_state_change;
}

/*
 * Hook the handle's socket.  The socket must be a TCP socket nobody else
 * hooked: -EOPNOTSUPP otherwise, -EEXIST when a channel has it already (a
 * connection anywhere, a listener in this channel), -ENOTCONN when it is
 * neither listening nor connected.
 */
int mp_handle_attach(struct mp_handle *h)
{
	struct sock *sk = h->sk;
	struct mp_sock *ms, *new;
	struct mp_handle *o;
	bool listening;
	void *ud;
	int err = 0;

	new = kzalloc(sizeof(*new), GFP_KERNEL_ACCOUNT);
	if (!new)
		return -ENOMEM;
	INIT_LIST_HEAD(&new->handles);

	lock_sock(sk);
	listening = sk->sk_state == TCP_LISTEN;
	if (h->listener != listening) {
		err = -ENOTCONN;
		goto out;
	}
	write_lock_bh(&sk->sk_callback_lock);
	ud = rcu_dereference_protected(__sk_user_data(sk),
				       lockdep_is_held(&sk->sk_callback_lock));
	if (ud) {
		/* ours: our data_ready is installed and the NOCOPY tag set */
		ms = mp_sock_of(sk);
		if (!ms || sk->sk_data_ready != megapipe_sk_data_ready) {
			err = -EOPNOTSUPP;
		} else if (!ms->listener || !h->listener) {
			err = -EEXIST;
		} else {
			list_for_each_entry(o, &ms->handles, sock_node)
				if (o->ch == h->ch)
					err = -EEXIST;
		}
		if (!err)
			list_add_tail(&h->sock_node, &ms->handles);
		write_unlock_bh(&sk->sk_callback_lock);
		goto out;
	}
	if (inet_csk_has_ulp(sk) ||
	    (sk->sk_data_ready != sock_def_readable &&
	     sk->sk_data_ready != megapipe_sk_data_ready &&
	     !(IS_ENABLED(CONFIG_TCP_PERCORE_LISTEN) && h->listener &&
	       sk->sk_data_ready == inet_pcl_data_ready)) ||
	    sk->sk_state_change != mp_tcp_state_change ||
	    (!h->listener && sk->sk_write_space != sk_stream_write_space)) {
		write_unlock_bh(&sk->sk_callback_lock);
		err = -EOPNOTSUPP;
		goto out;
	}
	ms = new;
	new = NULL;
	ms->listener = h->listener;
	/* children get TCP's defaults back (megapipe_sk_clone()) */
	ms->saved_data_ready = sk->sk_data_ready == megapipe_sk_data_ready ?
			       sock_def_readable : sk->sk_data_ready;
	ms->saved_write_space = sk->sk_write_space;
	ms->saved_state_change = sk->sk_state_change;
	list_add_tail(&h->sock_node, &ms->handles);
	__rcu_assign_sk_user_data_with_flags(sk, ms, SK_USER_DATA_NOCOPY);
	WRITE_ONCE(sk->sk_data_ready, megapipe_sk_data_ready);
	if (!h->listener) {
		WRITE_ONCE(sk->sk_write_space, mp_sk_write_space);
		WRITE_ONCE(sk->sk_state_change, mp_sk_state_change);
	}
	write_unlock_bh(&sk->sk_callback_lock);
out:
	release_sock(sk);
	kfree(new);
	if (!err)
		h->ms = ms;
	return err;
}

/* Unhook the handle from its socket; the last one restores the callbacks. */
static void mp_handle_detach(struct mp_handle *h)
{
	struct sock *sk = h->sk;
	struct mp_sock *ms = h->ms;
	bool last;

	if (!ms)
		return;
	write_lock_bh(&sk->sk_callback_lock);
	list_del_init(&h->sock_node);
	last = list_empty(&ms->handles);
	if (last) {
		if (sk->sk_data_ready == megapipe_sk_data_ready)
			WRITE_ONCE(sk->sk_data_ready, ms->saved_data_ready);
		if (sk->sk_write_space == mp_sk_write_space)
			WRITE_ONCE(sk->sk_write_space, ms->saved_write_space);
		if (sk->sk_state_change == mp_sk_state_change)
			WRITE_ONCE(sk->sk_state_change, ms->saved_state_change);
		rcu_assign_sk_user_data(sk, NULL);
	}
	write_unlock_bh(&sk->sk_callback_lock);
	h->ms = NULL;
	if (last)
		kfree_rcu(ms, rcu);
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
	spin_lock_bh(&ch->ready_lock);
	list_del_init(&h->ready_node);
	spin_unlock_bh(&ch->ready_lock);
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
		/* no callback can see it any more: detached above */
		list_add(&h->sock_node, &ch->handle_cache);
		ch->nr_handle_cache++;
		return;
	}
	kfree(h);
}

/* The channel goes away: free the handles it kept. */
void mp_handle_cache_free(struct mp_chan *ch)
{
	struct mp_handle *h, *tmp;

	list_for_each_entry_safe(h, tmp, &ch->handle_cache, sock_node)
		kfree(h);
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
	if (h->listener) {
		mp_accept_run(h);
		return;
	}
	/* reads first: the write side may free the handle (DISCONNECT) */
	mp_read_run(h);
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
	spin_lock_bh(&ch->ready_lock);
	list_splice_init(&ch->ready, &batch);
	spin_unlock_bh(&ch->ready_lock);
	for (;;) {
		spin_lock_bh(&ch->ready_lock);
		h = list_first_entry_or_null(&batch, struct mp_handle,
					     ready_node);
		if (h)
			list_del_init(&h->ready_node);
		spin_unlock_bh(&ch->ready_lock);
		if (!h)
			break;
		mp_handle_run(h);
		cond_resched();
	}
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
	if (reg.flags || reg.resv[0] || reg.resv[1] ||
	    !reg.cpumask != !reg.cpumask_len ||
	    reg.cpumask_len % sizeof(u64) ||
	    reg.cpumask_len > MEGAPIPE_CPUMASK_MAX_BYTES)
		return -EINVAL;
	file = fget(reg.fd);
	if (!file)
		return -EBADF;
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
	h->sock = NULL;		/* the socket goes to the file, the file to the fd */
	mp_handle_free(h);
	fd_install(fd, file);
	return 0;
}
