// SPDX-License-Identifier: GPL-2.0
/*
 * Per-core listen: listen clones with per-CPU accept queues.
 *
 * A listener in per-core mode owns a struct inet_pcl: one clone per
 * possible CPU (a shard of the accept queue, with its own lock and wait
 * queue) and a mask of the clones that hold children.  Nothing else about
 * the listener changes: the lookup that chose it, its request sockets,
 * Fast Open and the settings children inherit all stay on the original
 * socket, so a request whose ACK or cookie arrives on another CPU
 * completes exactly as upstream.  A child waits for accept() in the clone
 * of the CPU that completed its handshake (the CPU of its SYN unless the
 * flow moved).  The limits stay the listener's: the accept backlog and the
 * SYN_RECV count that triggers syncookies are per-CPU counters compared
 * with the listener's backlog as a total (percpu_counter: exact near the
 * limit, CPU-local far from it).
 *
 * accept() takes from its own CPU's clone first and steals from the others
 * when it is empty, without the listener's socket lock; after
 * PCL_FAIR_BATCH local accepts that left its clone non-empty it serves
 * another clone first.  Readiness is the same for every caller: poll and
 * epoll report EPOLLIN exactly when some clone holds a child, and a
 * non-blocking accept() says EAGAIN only when every clone is empty.
 *
 * Wakeups, as upstream's, by clone: every new child wakes every
 * non-exclusive waiter (poll, select, plain epoll) and one exclusive one
 * (a thread in accept(), an EPOLLEXCLUSIVE epoll whose owner waits in
 * epoll_wait()).  Non-exclusive waiters wait on the listener's own queue,
 * as upstream.  Exclusive ones wait on the clone of the CPU they register
 * or sleep on and on a queue of all exclusive waiters: a new child on
 * clone c wakes an exclusive waiter of clone c, and when none there takes
 * the wakeup, one of all the others at once.  So the one woken is a local
 * one when there is one, and an idle waiter anywhere is woken now.
 *
 * Locking: a clone's lock protects its list and its bit in the non-empty
 * mask.  No code holds two clone locks, or a clone lock and the
 * listener's rskq_lock, at once; every clone lock is of one lockdep class.
 *
 * Lifetime: the struct is allocated (accounted to the caller's memcg) at
 * the socket's first listen() in per-core mode, which also marks the
 * socket SOCK_RCU_FREE, and freed only with the socket: accept(), poll()
 * and TCP_INFO reach it without the socket lock from the moment listen()
 * stores TCP_LISTEN, also when that listen() then fails.  The mode is
 * decided once per socket, at its first listen(), and sticks.
 */

#include <linux/cpumask.h>
#include <linux/percpu.h>
#include <linux/percpu_counter.h>
#include <linux/poll.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/sysctl.h>
#include <net/inet_percore_listen.h>
#include <net/netns/generic.h>
#include <net/tcp.h>

DEFINE_STATIC_KEY_DEFERRED_FALSE(inet_pcl_key, HZ);
EXPORT_SYMBOL_GPL(inet_pcl_key);

/*
 * Per netns, per CPU.  unsigned long, as the SNMP MIB counters: 32 bits
 * on 32-bit kernels, which /proc sums into 64 bits.
 */
struct pcl_stats {
	unsigned long local_accepts;	/* accept() took from its own clone */
	unsigned long steals;		/* accept() took from another clone */
	unsigned long overflows;	/* the backlog was full: child dropped */
	unsigned long remote_completions; /* handshake done off the SYN's CPU */
};

struct pcl_net {
	u8 sysctl_mode;		/* net.ipv4.tcp_percore_listen */
	struct pcl_stats __percpu *stats;
	struct ctl_table_header *sysctl_hdr;
};

/*
 * One CPU's shard, in cache lines of its own (remote CPUs write it when
 * they steal or complete a handshake here).
 */
struct pcl_clone {
	spinlock_t lock;	/* head, tail and our bit in nonempty */
	struct request_sock *head;
	struct request_sock *tail;
	/* consecutive local accepts that left the clone non-empty */
	u32 local_streak;
	/* poll/epoll and blocking accept() waiters on this CPU */
	struct wait_queue_head wq;
} ____cacheline_aligned_in_smp;

/*
 * Fairness between clones: after this many consecutive accepts from its
 * own clone that left it non-empty, accept() serves another non-empty
 * clone first.  A child in a clone whose CPU has no acceptor thus waits
 * at most this many accepts of a busy CPU.
 */
#define PCL_FAIR_BATCH	16

/*
 * The first lines are written only at listen() and close; the counters
 * every CPU updates are per CPU; the non-empty mask, written when a clone
 * gets its first child or is emptied, is on lines of its own (inline, not
 * a cpumask_var_t: with CPUMASK_OFFSTACK that would be a small kmalloc
 * sharing its line with strangers).
 */
struct inet_pcl {
	struct pcl_clone __percpu *clones;
	struct pcl_stats __percpu *stats;	/* of the listener's netns */
	/* children queued on all clones: the accept backlog */
	struct percpu_counter acceptq;
	/* SYN_RECV requests: qlen and young (queue->rskq_syn) */
	struct reqsk_syn_counts syn;

	/* every exclusive waiter, whichever clone it also waits on */
	struct wait_queue_head wq_excl ____cacheline_aligned_in_smp;

	/* a struct cpumask of cpumask_size() bytes */
	unsigned long nonempty[] ____cacheline_aligned_in_smp;
};

static unsigned int pcl_net_id __read_mostly;

static struct pcl_net *pcl_net(const struct net *net)
{
	return net_generic(net, pcl_net_id);
}

static struct cpumask *pcl_nonempty(struct inet_pcl *pcl)
{
	return to_cpumask(pcl->nonempty);
}

/* Values of TCP_PERCORE_LISTEN kept before listen(). */
#define PCL_PREF_SYSCTL	0	/* follow net.ipv4.tcp_percore_listen */
#define PCL_PREF_ON	1
#define PCL_PREF_OFF	2

static bool pcl_can_clone(const struct sock *sk)
{
	/* In-kernel listeners (including MPTCP's subflow listener), ULPs,
	 * replaced callbacks and sockmap/other sk_user_data owners keep
	 * the upstream accept queue: they inspect or own it.
	 */
	return sk->sk_type == SOCK_STREAM && sk->sk_protocol == IPPROTO_TCP &&
	       !sk->sk_kern_sock && !inet_csk(sk)->icsk_ulp_ops &&
	       READ_ONCE(sk->sk_data_ready) == sock_def_readable &&
	       !rcu_access_pointer(sk->sk_user_data);
}

static bool pcl_wanted(const struct sock *sk)
{
	u8 pref = inet_csk(sk)->icsk_accept_queue.rskq_pcl_pref;

	if (pref == PCL_PREF_OFF || !pcl_can_clone(sk))
		return false;
	if (pref == PCL_PREF_ON)
		return true;
	/*
	 * The sysctl leaves SO_REUSEPORT listeners alone: each member is
	 * already a queue of its own, chosen by hash, SO_INCOMING_CPU or a
	 * BPF program.
	 */
	return READ_ONCE(pcl_net(sock_net(sk))->sysctl_mode) &&
	       !sk->sk_reuseport;
}

static void pcl_free(struct inet_pcl *pcl)
{
	percpu_counter_destroy(&pcl->syn.young);
	percpu_counter_destroy(&pcl->syn.qlen);
	percpu_counter_destroy(&pcl->acceptq);
	free_percpu(pcl->clones);
	kfree(pcl);
}

static struct inet_pcl *pcl_alloc(struct sock *sk)
{
	struct inet_pcl *pcl;
	int cpu;

	pcl = kzalloc(sizeof(*pcl) + cpumask_size(), GFP_KERNEL_ACCOUNT);
	if (!pcl)
		return NULL;
	/* cache-aligned per CPU: the type is ____cacheline_aligned_in_smp */
	pcl->clones = alloc_percpu_gfp(struct pcl_clone, GFP_KERNEL_ACCOUNT);
	if (!pcl->clones ||
	    percpu_counter_init(&pcl->acceptq, 0, GFP_KERNEL_ACCOUNT) ||
	    percpu_counter_init(&pcl->syn.qlen, 0, GFP_KERNEL_ACCOUNT) ||
	    percpu_counter_init(&pcl->syn.young, 0, GFP_KERNEL_ACCOUNT)) {
		pcl_free(pcl);	/* copes with what was not set up */
		return NULL;
	}
	for_each_possible_cpu(cpu) {
		struct pcl_clone *c = per_cpu_ptr(pcl->clones, cpu);

		spin_lock_init(&c->lock);
		init_waitqueue_head(&c->wq);
	}
	init_waitqueue_head(&pcl->wq_excl);
	pcl->stats = pcl_net(sock_net(sk))->stats;
	return pcl;
}

/* Called from inet_csk_listen_start(), socket locked. */
int inet_pcl_listen_start(struct sock *sk)
{
	struct request_sock_queue *queue = &inet_csk(sk)->icsk_accept_queue;
	struct inet_pcl *pcl;

	if (queue->rskq_pcl) {
		/*
		 * listen() again (after shutdown(), or after a listen() that
		 * failed): the mode sticks.  A callback someone else
		 * installed meanwhile stays.
		 */
		if (sk->sk_data_ready == sock_def_readable)
			WRITE_ONCE(sk->sk_data_ready, inet_pcl_data_ready);
		return 0;
	}
	if (queue->rskq_pcl_decided)
		return 0;
	if (!pcl_wanted(sk)) {
		queue->rskq_pcl_decided = 1;
		return 0;
	}
	pcl = pcl_alloc(sk);
	if (!pcl)
		return -ENOMEM;
	queue->rskq_pcl_decided = 1;

	static_branch_deferred_inc(&inet_pcl_key);
	/*
	 * From here on lockless readers (accept(), poll(), TCP_INFO) may
	 * reach the clones, whatever becomes of this listen(): the struct
	 * lives as long as the socket, whose memory RCU keeps for readers
	 * that found it in a hash table.
	 */
	sock_set_flag(sk, SOCK_RCU_FREE);
	queue->rskq_syn = &pcl->syn;
	/* the clones are initialised before inet_pcl() can see them */
	smp_store_release(&queue->rskq_pcl, pcl);
	WRITE_ONCE(sk->sk_data_ready, inet_pcl_data_ready);
	return 0;
}

/*
 * Called with the socket's memory, for every inet socket: nobody can reach
 * the listener now.  Only sockets with SOCK_RCU_FREE can have clones (set
 * above); children clear the flag.  The flag's line was just read by
 * sk_destruct(), while the accept queue's is cold in a connection.
 */
void inet_pcl_destruct(struct sock *sk)
{
	struct request_sock_queue *queue;
	struct inet_pcl *pcl;

	if (!sock_flag(sk, SOCK_RCU_FREE) ||
	    sk->sk_type != SOCK_STREAM || sk->sk_protocol != IPPROTO_TCP)
		return;
	queue = &inet_csk(sk)->icsk_accept_queue;
	pcl = queue->rskq_pcl;
	if (!pcl)
		return;
	queue->rskq_pcl = NULL;
	queue->rskq_syn = NULL;
	pcl_free(pcl);
	static_branch_slow_dec_deferred(&inet_pcl_key);
}

/* Wake every exclusive waiter: the listener is not listening. */
static void pcl_wake_all(struct inet_pcl *pcl)
{
	int cpu;

	for_each_possible_cpu(cpu)
		wake_up_interruptible_all(&per_cpu_ptr(pcl->clones, cpu)->wq);
	wake_up_interruptible_all(&pcl->wq_excl);
}

/*
 * inet_csk_listen_start() failed after inet_pcl_listen_start() (port in
 * use, hashing failed), socket locked, state back to TCP_CLOSE.  The
 * clones stay (see Lifetime above); the socket, maybe connected later,
 * gets upstream's callback back, and threads that came to accept() or
 * poll() while it looked like a listener are told it is not one.
 */
void inet_pcl_listen_abort(struct sock *sk)
{
	struct inet_pcl *pcl = inet_pcl(sk);
	struct socket_wq *wq;

	if (!pcl)
		return;
	if (sk->sk_data_ready == inet_pcl_data_ready)
		WRITE_ONCE(sk->sk_data_ready, sock_def_readable);
	pcl_wake_all(pcl);
	rcu_read_lock();
	wq = rcu_dereference(sk->sk_wq);
	if (skwq_has_sleeper(wq))
		wake_up_interruptible_all(&wq->wait);
	rcu_read_unlock();
}

/*
 * Is the listener's accept backlog full (more children queued than
 * sk_max_ack_backlog, as sk_acceptq_is_full())?  Summed over the clones:
 * cheap while far from the limit, exact near it.  @drop: the caller drops
 * the SYN or child if so (counted).
 */
bool inet_pcl_acceptq_is_full(const struct sock *sk, bool drop)
{
	struct inet_pcl *pcl = inet_pcl(sk);

	if (__percpu_counter_compare(&pcl->acceptq,
				     READ_ONCE(sk->sk_max_ack_backlog),
				     percpu_counter_batch) <= 0)
		return false;
	if (drop)
		this_cpu_inc(pcl->stats->overflows);
	return true;
}
EXPORT_SYMBOL_GPL(inet_pcl_acceptq_is_full);

/* Children ready for accept(), over all clones (exact: O(online CPUs)). */
u32 inet_pcl_acceptq_len(const struct sock *sk)
{
	return percpu_counter_sum_positive(&inet_pcl(sk)->acceptq);
}
EXPORT_SYMBOL_GPL(inet_pcl_acceptq_len);

/*
 * Queue @child on the clone of this CPU, the one completing its handshake.
 * BH-disabled context, as is the listener's sk_data_ready() call that
 * follows (inet_pcl_data_ready() wakes this CPU's clone).  Returns false if
 * the listener is closing; the caller then forgets the child, as upstream
 * does.
 */
bool inet_pcl_queue_add(struct sock *sk, struct request_sock *req,
			struct sock *child)
{
	struct inet_pcl *pcl = inet_pcl(sk);
	int cpu = smp_processor_id();
	struct pcl_clone *c = per_cpu_ptr(pcl->clones, cpu);

	spin_lock(&c->lock);
	if (unlikely(inet_sk_state_load(sk) != TCP_LISTEN)) {
		spin_unlock(&c->lock);
		return false;
	}
	inet_pcl_debug_delay(INET_PCL_DBG_QUEUE_ADD);
	req->sk = child;
	req->dl_next = NULL;
	if (!c->head) {
		WRITE_ONCE(c->head, req);
		cpumask_set_cpu(cpu, pcl_nonempty(pcl));
	} else {
		c->tail->dl_next = req;
	}
	c->tail = req;
	spin_unlock(&c->lock);
	percpu_counter_inc(&pcl->acceptq);

	if (req->syn_cpu != cpu)
		this_cpu_inc(pcl->stats->remote_completions);
	return true;
}

/* Wake one exclusive waiter of @wqh; false if none took the wakeup. */
static bool pcl_wake_one(struct wait_queue_head *wqh)
{
	return wq_has_sleeper(wqh) &&
	       __wake_up(wqh, TASK_INTERRUPTIBLE, 1,
			 poll_to_key(EPOLLIN | EPOLLPRI | EPOLLRDNORM |
				     EPOLLRDBAND));
}

/*
 * sk_data_ready of a per-core listener.  For a new child (queued on this
 * CPU's clone by inet_pcl_queue_add(), in the same BH-disabled section):
 * wake one exclusive waiter, this clone's if one takes the wakeup (an
 * EPOLLEXCLUSIVE epoll whose owner is not in epoll_wait() does not),
 * else one of all; then, as upstream, every non-exclusive waiter (on the
 * listener's queue, where no exclusive one is) and SIGIO.
 */
void inet_pcl_data_ready(struct sock *sk)
{
	struct inet_pcl *pcl = inet_pcl(sk);

	if (pcl && inet_sk_state_load(sk) == TCP_LISTEN &&
	    !pcl_wake_one(&raw_cpu_ptr(pcl->clones)->wq))
		pcl_wake_one(&pcl->wq_excl);
	sock_def_readable(sk);
}

static struct request_sock *pcl_take(struct inet_pcl *pcl, int cpu)
{
	struct pcl_clone *c = per_cpu_ptr(pcl->clones, cpu);
	struct request_sock *req;

	if (!READ_ONCE(c->head))
		return NULL;
	spin_lock_bh(&c->lock);
	req = c->head;
	if (req) {
		WRITE_ONCE(c->head, req->dl_next);
		if (!c->head) {
			c->tail = NULL;
			cpumask_clear_cpu(cpu, pcl_nonempty(pcl));
		}
	}
	spin_unlock_bh(&c->lock);
	if (req)
		percpu_counter_dec(&pcl->acceptq);
	return req;
}

/*
 * Some clone holds a child.  The mask is read locklessly: a bit is set
 * after its clone got a child and cleared when it was emptied, both under
 * the clone's lock; a racing reader sees the state just before or after.
 */
static bool pcl_ready(struct inet_pcl *pcl)
{
	return !cpumask_empty(pcl_nonempty(pcl));
}

/* Take from another CPU's clone, starting after ours to spread steals. */
static struct request_sock *pcl_steal(struct inet_pcl *pcl, int self)
{
	int start = self + 1 < nr_cpu_ids ? self + 1 : 0;
	struct request_sock *req;
	int cpu;

	for_each_cpu_wrap(cpu, pcl_nonempty(pcl), start) {
		if (cpu == self)
			continue;
		req = pcl_take(pcl, cpu);
		if (req) {
			this_cpu_inc(pcl->stats->steals);
			return req;
		}
	}
	return NULL;
}

/*
 * Own clone first, then steal; but after PCL_FAIR_BATCH local accepts in
 * a row that left the own clone non-empty, steal first, so that a CPU
 * whose clone never empties cannot starve the other clones.  A local
 * accept that empties the own clone ends the streak.  The streak is a
 * heuristic: a racing accept() on the same CPU may lose an update, which
 * only shifts the next fair turn.
 */
static struct request_sock *pcl_dequeue(struct inet_pcl *pcl)
{
	int self = raw_smp_processor_id();
	struct pcl_clone *own = per_cpu_ptr(pcl->clones, self);
	struct request_sock *req;

	if (READ_ONCE(own->local_streak) >= PCL_FAIR_BATCH) {
		WRITE_ONCE(own->local_streak, 0);
		req = pcl_steal(pcl, self);
		if (req)
			return req;
	}
	req = pcl_take(pcl, self);
	if (req) {
		WRITE_ONCE(own->local_streak, READ_ONCE(own->head) ?
			   READ_ONCE(own->local_streak) + 1 : 0);
		this_cpu_inc(pcl->stats->local_accepts);
		return req;
	}
	WRITE_ONCE(own->local_streak, 0);
	return pcl_steal(pcl, self);
}

/*
 * Sleep until a clone has a child: exclusively on the clone of the CPU we
 * sleep on (where a new child on this CPU wakes us first) and on the queue
 * of all exclusive waiters (children of clones where nobody took the
 * wakeup; close).  Requeued on the new CPU's clone after a migration.
 */
static int pcl_wait(struct sock *sk, struct inet_pcl *pcl, long *timeo)
{
	struct wait_queue_entry own, any;
	struct wait_queue_head *wqh;
	int err;

	init_wait(&own);
	init_wait(&any);
	for (;;) {
		wqh = &raw_cpu_ptr(pcl->clones)->wq;
		prepare_to_wait_exclusive(wqh, &own, TASK_INTERRUPTIBLE);
		prepare_to_wait_exclusive(&pcl->wq_excl, &any,
					  TASK_INTERRUPTIBLE);
		err = 0;
		if (pcl_ready(pcl))
			break;
		err = -EINVAL;
		if (inet_sk_state_load(sk) != TCP_LISTEN)
			break;
		err = sock_intr_errno(*timeo);
		if (signal_pending(current))
			break;
		err = -EAGAIN;
		if (!*timeo)
			break;
		*timeo = schedule_timeout(*timeo);
		sched_annotate_sleep();
		finish_wait(wqh, &own);
	}
	finish_wait(wqh, &own);
	finish_wait(&pcl->wq_excl, &any);
	return err;
}

/*
 * accept() on a per-core listener: no socket lock, a child from any clone.
 * Returns the request (whose ->sk is the child) or an ERR_PTR.
 */
struct request_sock *inet_pcl_accept(struct sock *sk,
				     struct proto_accept_arg *arg)
{
	struct inet_pcl *pcl = inet_pcl(sk);
	struct request_sock *req;
	long timeo;
	int err;

	if (inet_sk_state_load(sk) != TCP_LISTEN)
		return ERR_PTR(-EINVAL);

	timeo = sock_rcvtimeo(sk, arg->flags & O_NONBLOCK);
	while (!(req = pcl_dequeue(pcl))) {
		if (inet_sk_state_load(sk) != TCP_LISTEN)
			return ERR_PTR(-EINVAL);
		if (!timeo)
			return ERR_PTR(-EAGAIN);
		err = pcl_wait(sk, pcl, &timeo);
		if (err)
			return ERR_PTR(err);
	}
	arg->is_empty = !pcl_ready(pcl);
	return req;
}

/*
 * tcp_poll() of a per-core listener: readable when any clone holds a
 * child, for every caller.  An exclusive poller (EPOLLEXCLUSIVE) waits on
 * the clone of the CPU it registers from and on the queue of all
 * exclusive waiters, others on the listener's queue (sock_poll_wait()).
 */
__poll_t inet_pcl_poll(struct file *file, struct socket *sock,
		       struct poll_table_struct *wait)
{
	struct inet_pcl *pcl = inet_pcl(sock->sk);

	if (!(poll_requested_events(wait) & EPOLLEXCLUSIVE)) {
		sock_poll_wait(file, sock, wait);
	} else if (!poll_does_not_wait(wait)) {
		poll_wait(file, &raw_cpu_ptr(pcl->clones)->wq, wait);
		poll_wait(file, &pcl->wq_excl, wait);
		/* pairs with wq_has_sleeper() in pcl_wake_one() */
		smp_mb();
	}
	return pcl_ready(pcl) ? EPOLLIN | EPOLLRDNORM : 0;
}

/*
 * Where an exclusive waiter that is not a thread waits for the children of
 * a per-core listener (/dev/megapipe's listener handles, which wait as an
 * EPOLLEXCLUSIVE epoll does): the clone of @cpu, woken first for the
 * children of that CPU, or with @cpu < 0 the queue of all exclusive
 * waiters, woken when no waiter of the clone took the wakeup.  Both are
 * woken all when the listener stops listening.  NULL: not a per-core
 * listener.  The queues live as long as the socket.
 */
struct wait_queue_head *inet_pcl_wait_head(struct sock *sk, int cpu)
{
	struct inet_pcl *pcl = inet_pcl(sk);

	if (!pcl)
		return NULL;
	if (cpu < 0)
		return &pcl->wq_excl;
	return &per_cpu_ptr(pcl->clones, cpu)->wq;
}

/*
 * The listener is closing: move every clone's children to the listener's
 * own queue, where inet_csk_listen_stop() resets them or migrates them to
 * another reuseport listener, as it does upstream.
 *
 * Every clone is visited under its lock, not only those the non-empty
 * mask shows: inet_pcl_queue_add() checks sk_state under the clone lock
 * and sets the mask bit only after linking the child.  Our caller changed
 * sk_state first, so once we have held a clone's lock, no child can be
 * added to it any more; a child being added while we wait for the lock is
 * found when we get it.
 */
void inet_pcl_listen_stop(struct sock *sk)
{
	struct request_sock_queue *queue = &inet_csk(sk)->icsk_accept_queue;
	struct inet_pcl *pcl = inet_pcl(sk);
	int cpu;

	if (!pcl)
		return;
	for_each_possible_cpu(cpu) {
		struct pcl_clone *c = per_cpu_ptr(pcl->clones, cpu);
		struct request_sock *head, *tail, *req;
		u32 n = 0;

		spin_lock_bh(&c->lock);
		head = c->head;
		tail = c->tail;
		WRITE_ONCE(c->head, NULL);
		c->tail = NULL;
		cpumask_clear_cpu(cpu, pcl_nonempty(pcl));
		spin_unlock_bh(&c->lock);
		if (!head)
			continue;
		for (req = head; req; req = req->dl_next)
			n++;
		percpu_counter_sub(&pcl->acceptq, n);

		spin_lock_bh(&queue->rskq_lock);
		if (queue->rskq_accept_head)
			queue->rskq_accept_tail->dl_next = head;
		else
			WRITE_ONCE(queue->rskq_accept_head, head);
		queue->rskq_accept_tail = tail;
		WRITE_ONCE(sk->sk_ack_backlog, sk->sk_ack_backlog + n);
		spin_unlock_bh(&queue->rskq_lock);
	}
	/* blocked accept()s and exclusive pollers see the listener close */
	pcl_wake_all(pcl);
}

int inet_pcl_setsockopt(struct sock *sk, int val)
{
	struct request_sock_queue *queue = &inet_csk(sk)->icsk_accept_queue;

	if (val != 0 && val != 1)
		return -EINVAL;
	/* The mode is fixed at the first listen(). */
	if (queue->rskq_pcl_decided)
		return -EBUSY;
	if (val && !pcl_can_clone(sk))
		return -EOPNOTSUPP;
	queue->rskq_pcl_pref = val ? PCL_PREF_ON : PCL_PREF_OFF;
	return 0;
}

/*
 * 1 if per-core, 0 if not; before listen(), -1 if the sysctl decides.
 * Under the socket lock: setsockopt() and listen() write these bitfields.
 */
int inet_pcl_getsockopt(struct sock *sk)
{
	const struct request_sock_queue *queue = &inet_csk(sk)->icsk_accept_queue;
	int val = -1;

	lock_sock(sk);
	if (queue->rskq_pcl_decided)
		val = !!queue->rskq_pcl;
	else if (queue->rskq_pcl_pref == PCL_PREF_ON)
		val = 1;
	else if (queue->rskq_pcl_pref == PCL_PREF_OFF)
		val = 0;
	release_sock(sk);
	return val;
}

/* /proc/net/tcp_percore_listen: this netns's counters, a row per CPU. */
static int pcl_seq_show(struct seq_file *seq, void *v)
{
	struct pcl_net *pn = pcl_net(seq_file_single_net(seq));
	u64 sum_la = 0, sum_st = 0, sum_ov = 0, sum_rc = 0;
	int cpu;

	seq_puts(seq, "cpu local_accepts steals overflows remote_completions\n");
	for_each_possible_cpu(cpu) {
		const struct pcl_stats *s = per_cpu_ptr(pn->stats, cpu);
		unsigned long la = READ_ONCE(s->local_accepts);
		unsigned long st = READ_ONCE(s->steals);
		unsigned long ov = READ_ONCE(s->overflows);
		unsigned long rc = READ_ONCE(s->remote_completions);

		seq_printf(seq, "%d %lu %lu %lu %lu\n", cpu, la, st, ov, rc);
		sum_la += la;
		sum_st += st;
		sum_ov += ov;
		sum_rc += rc;
	}
	seq_printf(seq, "all %llu %llu %llu %llu\n", sum_la, sum_st, sum_ov,
		   sum_rc);
	return 0;
}

static struct ctl_table pcl_sysctl_table[] = {
	{
		.procname	= "tcp_percore_listen",
		.maxlen		= sizeof(u8),
		.mode		= 0644,
		.proc_handler	= proc_dou8vec_minmax,
		.extra1		= SYSCTL_ZERO,
		.extra2		= SYSCTL_ONE,
	},
};

static int __net_init pcl_net_init(struct net *net)
{
	struct pcl_net *pn = pcl_net(net);
	struct ctl_table *table = pcl_sysctl_table;

	/* A new namespace starts with the initial namespace's setting. */
	if (!net_eq(net, &init_net))
		pn->sysctl_mode = READ_ONCE(pcl_net(&init_net)->sysctl_mode);
	pn->stats = alloc_percpu_gfp(struct pcl_stats, GFP_KERNEL_ACCOUNT);
	if (!pn->stats)
		return -ENOMEM;

	if (!net_eq(net, &init_net)) {
		table = kmemdup(table, sizeof(pcl_sysctl_table), GFP_KERNEL);
		if (!table)
			goto err;
	}
	table[0].data = &pn->sysctl_mode;
	pn->sysctl_hdr = register_net_sysctl_sz(net, "net/ipv4", table,
						ARRAY_SIZE(pcl_sysctl_table));
	if (!pn->sysctl_hdr)
		goto err_table;
	if (!proc_create_net_single("tcp_percore_listen", 0444, net->proc_net,
				    pcl_seq_show, NULL))
		goto err_sysctl;
	return 0;

err_sysctl:
	unregister_net_sysctl_table(pn->sysctl_hdr);
err_table:
	if (!net_eq(net, &init_net))
		kfree(table);
err:
	free_percpu(pn->stats);
	return -ENOMEM;
}

static void __net_exit pcl_net_exit(struct net *net)
{
	struct pcl_net *pn = pcl_net(net);
	const struct ctl_table *table = pn->sysctl_hdr->ctl_table_arg;

	remove_proc_entry("tcp_percore_listen", net->proc_net);
	unregister_net_sysctl_table(pn->sysctl_hdr);
	if (!net_eq(net, &init_net))
		kfree(table);
	free_percpu(pn->stats);
}

static struct pernet_operations pcl_net_ops = {
	.init	= pcl_net_init,
	.exit	= pcl_net_exit,
	.id	= &pcl_net_id,
	.size	= sizeof(struct pcl_net),
};

static int __init inet_pcl_init(void)
{
	return register_pernet_subsys(&pcl_net_ops);
}
fs_initcall(inet_pcl_init);
