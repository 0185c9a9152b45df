// SPDX-License-Identifier: GPL-2.0
/*
 * Per-core listen: listen clones with per-CPU accept queues.
 *
 * A listener in per-core mode owns a struct inet_pcl: one clone per
 * possible CPU (a shard of the accept queue, with its own lock) and a mask
 * of the clones that hold children.  Nothing else about the listener
 * changes: the lookup that chose it, its request sockets, Fast Open and
 * the settings children inherit all stay on the original socket, so a
 * request whose ACK or cookie arrives on another CPU completes exactly as
 * upstream.  What differs: the place a child waits for accept(), the clone
 * of the CPU that processed its SYN, and the SYN queue accounting
 * (qlen/young, which drive syncookies), counted per clone too, so that
 * each CPU writes only its own lines; both backlogs apply per clone.
 *
 * Wakeups by clone: each clone has a wait queue, where poll() and epoll
 * (from the CPU they run on when they register) and a blocking accept()
 * (the CPU it sleeps on) wait, besides the listener's own queue.  A new
 * child on clone c wakes clone c's waiters, EPOLLEXCLUSIVE and exclusive
 * accept() semantics included.  When nobody waits there, or only
 * non-exclusive waiters, it wakes the listener's queue too, as upstream.
 * When somebody is registered there but busy (an EPOLLEXCLUSIVE epoll
 * whose owner is not in epoll_wait), the child waits for that owner,
 * which finds it ready when it comes back, for a bounded time: the
 * clone's hand-off timer wakes the listener's queue (idle waiters
 * elsewhere come and steal) once the clone has not been
 * empty for a tick or two, whoever was woken for its children, and a
 * clone holding PCL_HANDOFF_QLEN children wakes it at once.  Until then,
 * threads pinned to other CPUs neither see nor steal those children
 * (pcl_left_to_owner()).  Locality while the clone's worker keeps up,
 * stealing when it does not.
 * Everything else (close, errors, state changes) wakes the listener's
 * queue, where every waiter also is.
 *
 * Locking: a clone's lock protects its list, its length, its bit in the
 * non-empty mask and the arming of its hand-off timer.  No code holds two
 * clone locks, or a clone lock and the listener's rskq_lock, at once;
 * every clone lock is of one lockdep class.
 * accept() does not take the listener's socket lock.
 *
 * Lifetime: the struct is allocated (accounted to the caller's memcg) at
 * the socket's first listen() in per-core mode and freed with the socket
 * (after the RCU grace period of SOCK_RCU_FREE listeners), so softirq code
 * that found the listener can always use it.  The mode is decided once per
 * socket; listen() again, or shutdown() then listen(), keeps it.
 */

#include <linux/cpumask.h>
#include <linux/percpu.h>
#include <linux/percpu-refcount.h>
#include <linux/poll.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/sysctl.h>
#include <net/inet_percore_listen.h>
#include <net/netns/generic.h>
#include <net/tcp.h>
#include <trace/events/sock.h>

DEFINE_STATIC_KEY_DEFERRED_FALSE(inet_pcl_key, HZ);
EXPORT_SYMBOL_GPL(inet_pcl_key);

/*
 * Per netns, per CPU.  unsigned long, as the SNMP MIB counters: a 32-bit
 * counter does not tear on 32-bit SMP, and the sums are 64-bit.
 */
struct pcl_stats {
	unsigned long local_accepts;	/* accept() took from its own clone */
	unsigned long steals;		/* accept() took from another clone */
	unsigned long overflows;	/* a clone was full: child dropped */
	unsigned long remote_completions; /* handshake done off the SYN's CPU */
	unsigned long handoffs;	/* a clone's busy waiter: others woken */
};

struct pcl_net {
	u8 sysctl_mode;		/* net.ipv4.tcp_percore_listen */
	struct pcl_stats __percpu *stats;
	struct ctl_table_header *sysctl_hdr;
};

struct pcl_clone {
	/* SYN_RECV requests whose SYN this CPU processed (patch 0008) */
	struct reqsk_syn_counts syn;
	spinlock_t lock;	/* head, tail, qlen and our bit in nonempty */
	u32 qlen;
	/* Consecutive local accepts that left this clone non-empty (fairness) */
	u32 local_streak;
	struct request_sock *head;
	struct request_sock *tail;
	/* poll/epoll and blocking accept() waiters on this CPU */
	struct wait_queue_head wq;
	/* jiffies when the clone last became non-empty */
	unsigned long head_since;
	/* a child was left to busy exclusive waiters (EPOLLEXCLUSIVE) */
	bool busy;
	/* a thread pinned elsewhere was told "empty": pcl_left_to_owner() */
	bool hidden;
	/* armed when the clone becomes non-empty, on the CPU queueing */
	struct timer_list handoff;
	struct sock *listener;
	int cpu;
};

/*
 * A clone with this many children wakes the listener's queue for every
 * new one when its own waiter is busy: stealing starts before latency
 * does.  Below it, the children wait for the clone's busy waiter until the
 * clone has been non-empty for PCL_HANDOFF_DELAY jiffies (the hand-off
 * timer): one to two ticks.  (4, tried first, handed off whenever a
 * worker was a few connections behind under ordinary load: most of the
 * steals of the 4+4 vCPU benchmark, none with 16.)
 */
#define PCL_HANDOFF_QLEN	16
#define PCL_HANDOFF_DELAY	2
#define PCL_HANDOFF_WAKE_MAX	8	/* waiters a stuck clone wakes */

/*
 * Fairness between clones: after this many consecutive accepts from its
 * own clone, accept() serves another non-empty clone first.  A child in a
 * clone whose CPU has no acceptor thus waits at most this many accepts of
 * a busy CPU, and the common path (own clone non-empty) stays lock-local.
 */
#define PCL_FAIR_BATCH	16

/*
 * Read by every SYN and accept on every CPU: the first line holds only
 * what is written at listen() and close.  What changes per connection
 * (the non-empty mask: a bit set when a clone gets its first child and
 * cleared when it is emptied) lives on a line of its own, so that those
 * writes do not evict the pointers every other CPU's SYNs read (false
 * sharing, seen by the cache-line transfer counter: docs/locality.md).
 */
struct inet_pcl {
	struct pcl_clone __percpu *clones;
	struct pcl_stats __percpu *stats;	/* of the listener's netns */
	/* request sockets' references on the listener (inet_pcl_ref_tryget) */
	struct percpu_ref reqs;
	struct sock *sk;
	bool reqs_live;		/* reqs not killed yet (socket lock) */

	cpumask_var_t nonempty ____cacheline_aligned_in_smp;
	/*
	 * Clones the hand-off timer found stuck, until they empty: accept()
	 * on a CPU whose clone is not stuck serves them first.  Read by every
	 * accept(), written only by hand-offs: a line of its own.
	 */
	cpumask_var_t stuck ____cacheline_aligned_in_smp;
};

/* The clone the last child was queued on, for the wakeup that follows. */
static DEFINE_PER_CPU(int, pcl_wake_cpu);

static unsigned int pcl_net_id __read_mostly;

static struct pcl_net *pcl_net(const struct net *net)
{
	return net_generic(net, pcl_net_id);
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
	u8 mode;

	if (pref == PCL_PREF_OFF || !pcl_can_clone(sk))
		return false;
	if (pref == PCL_PREF_ON)
		return true;
	mode = READ_ONCE(pcl_net(sock_net(sk))->sysctl_mode);
	if (mode == 0)
		return false;
	/* Mode 1 leaves SO_REUSEPORT listeners alone: they already have a
	 * queue per socket, and their BPF programs may rely on it.
	 */
	return mode == 2 || !sk->sk_reuseport;
}

static void pcl_free(struct inet_pcl *pcl)
{
	percpu_ref_exit(&pcl->reqs);
	free_cpumask_var(pcl->nonempty);
	free_cpumask_var(pcl->stuck);
	free_percpu(pcl->clones);
	kfree(pcl);
}

/*
 * Wake the listener's queue for a new child whose clone's waiter is busy:
 * an idle waiter on another CPU (there is one on the listener's queue for
 * each one on a clone) comes and steals it.  As upstream's wakeup.
 */
static void pcl_handoff(struct sock *sk, struct inet_pcl *pcl)
{
	this_cpu_inc(pcl->stats->handoffs);
	sock_def_readable(sk);
}

/*
 * The clone's hand-off timer (softirq), armed when the clone becomes
 * non-empty.  A clone that has not been empty for PCL_HANDOFF_DELAY
 * jiffies (one to two ticks) is stuck: its children wait for a waiter that
 * does not come, or does not keep up.  Wake up to qlen (at most
 * PCL_HANDOFF_WAKE_MAX) exclusive waiters of the listener's queue, idle
 * ones elsewhere, which steal, and look again PCL_HANDOFF_DELAY later while
 * it stays non-empty; and mark it stuck, so that until it empties the
 * accept()s of CPUs that keep up serve it first (pcl_dequeue()), also when
 * no waiter is idle.  Whichever wakeup a child came with, this bounds its wait.
 * When a child was left to busy EPOLLEXCLUSIVE waiters, or pinned pollers
 * elsewhere were told "empty" (pcl_left_to_owner()), the wakeup is the one
 * a new child makes (it was held back); otherwise only threads blocked in
 * accept() are woken, so
 * that poll() and epoll, edge-triggered included, see no event without a
 * new child (their owners were told when the children came).  No SIGIO:
 * it was sent when the children came.  inet_pcl_listen_stop() deletes the
 * timer and keeps it from being armed again, so the listener is alive.
 */
static void pcl_handoff_expired(struct timer_list *t)
{
	struct pcl_clone *c = from_timer(c, t, handoff);
	struct sock *sk = c->listener;
	struct socket_wq *wq;
	struct inet_pcl *pcl;
	bool tell = false;
	__poll_t key;
	u32 stuck = 0;

	if (!READ_ONCE(c->head))
		return;
	spin_lock_bh(&c->lock);
	if (c->head && sk->sk_state == TCP_LISTEN) {
		if (time_after_eq(jiffies, c->head_since + PCL_HANDOFF_DELAY)) {
			stuck = c->qlen;
			tell = c->busy || c->hidden;
			pcl = inet_csk(sk)->icsk_accept_queue.rskq_pcl;
			if (!cpumask_test_cpu(c->cpu, pcl->stuck))
				cpumask_set_cpu(c->cpu, pcl->stuck);
			mod_timer(&c->handoff, jiffies + PCL_HANDOFF_DELAY);
		} else {
			mod_timer(&c->handoff,
				  c->head_since + PCL_HANDOFF_DELAY);
		}
	}
	spin_unlock_bh(&c->lock);
	if (!stuck)
		return;
	this_cpu_inc(inet_pcl(sk)->stats->handoffs);
	/* EPOLLMSG: no poll or epoll waiter asks for it; accept()s ignore it */
	key = tell ? EPOLLIN | EPOLLPRI | EPOLLRDNORM | EPOLLRDBAND : EPOLLMSG;
	rcu_read_lock();
	wq = rcu_dereference(sk->sk_wq);
	if (skwq_has_sleeper(wq))
		__wake_up(&wq->wait, TASK_INTERRUPTIBLE,
			  min_t(u32, stuck, PCL_HANDOFF_WAKE_MAX), poll_to_key(key));
	rcu_read_unlock();
}

/*
 * Request sockets' references on a per-core listener.  While it listens,
 * each request takes a per-CPU reference (inet_pcl_reqsk_hold()) instead
 * of one on sk_refcnt, and the socket's own reference keeps it alive.
 * inet_pcl_listen_stop() takes one sk_refcnt for all of them and kills the
 * percpu_ref; the last request to go drops that sk_refcnt here.  Once
 * killed, the percpu_ref stays dead: requests of a listener listened on
 * again after shutdown() take sk_refcnt, as upstream's do.
 */
static void pcl_reqs_release(struct percpu_ref *ref)
{
	struct inet_pcl *pcl = container_of(ref, struct inet_pcl, reqs);

	sock_put(pcl->sk);
}

bool inet_pcl_ref_tryget(struct inet_pcl *pcl)
{
	return percpu_ref_tryget_live(&pcl->reqs);
}

/* __reqsk_free() of a request that holds a per-CPU reference. */
void inet_pcl_reqsk_put(struct request_sock *req)
{
	struct sock *sk = req->rsk_listener;

	percpu_ref_put(&inet_csk(sk)->icsk_accept_queue.rskq_pcl->reqs);
}
EXPORT_SYMBOL_GPL(inet_pcl_reqsk_put);

/* Called from inet_csk_listen_start(), socket locked. */
int inet_pcl_listen_start(struct sock *sk)
{
	struct request_sock_queue *queue = &inet_csk(sk)->icsk_accept_queue;
	struct inet_pcl *pcl;
	int cpu;

	if (queue->rskq_pcl) {
		/*
		 * listen() again after shutdown(): the mode sticks.  A
		 * callback someone else installed meanwhile stays.
		 */
		if (sk->sk_data_ready == sock_def_readable)
			WRITE_ONCE(sk->sk_data_ready, inet_pcl_data_ready);
		return 0;
	}
	if (queue->rskq_pcl_decided)
		return 0;
	queue->rskq_pcl_decided = 1;
	if (!pcl_wanted(sk))
		return 0;

	pcl = kzalloc(sizeof(*pcl), GFP_KERNEL_ACCOUNT);
	if (!pcl)
		goto nomem;
	pcl->clones = alloc_percpu_gfp(struct pcl_clone, GFP_KERNEL_ACCOUNT);
	if (!pcl->clones || !zalloc_cpumask_var(&pcl->nonempty, GFP_KERNEL_ACCOUNT) ||
	    !zalloc_cpumask_var(&pcl->stuck, GFP_KERNEL_ACCOUNT))
		goto nomem;
	if (percpu_ref_init(&pcl->reqs, pcl_reqs_release, 0, GFP_KERNEL_ACCOUNT))
		goto nomem;
	pcl->sk = sk;
	pcl->reqs_live = true;
	for_each_possible_cpu(cpu) {
		struct pcl_clone *c = per_cpu_ptr(pcl->clones, cpu);

		spin_lock_init(&c->lock);
		init_waitqueue_head(&c->wq);
		timer_setup(&c->handoff, pcl_handoff_expired, TIMER_PINNED);
		c->listener = sk;
		c->cpu = cpu;
	}
	pcl->stats = pcl_net(sock_net(sk))->stats;

	static_branch_deferred_inc(&inet_pcl_key);
	/* Published before the socket is hashed, so every child sees it. */
	queue->rskq_syn = &pcl->clones->syn;
	WRITE_ONCE(queue->rskq_pcl, pcl);
	WRITE_ONCE(sk->sk_data_ready, inet_pcl_data_ready);
	return 0;
nomem:
	if (pcl)
		pcl_free(pcl);
	queue->rskq_pcl_decided = 0;
	return -ENOMEM;
}

static void pcl_detach(struct sock *sk, struct inet_pcl *pcl)
{
	inet_csk(sk)->icsk_accept_queue.rskq_pcl = NULL;
	inet_csk(sk)->icsk_accept_queue.rskq_syn = NULL;
	pcl_free(pcl);
	static_branch_slow_dec_deferred(&inet_pcl_key);
}

/*
 * Called with the socket's memory, for every inet socket: nobody can reach
 * the listener now.  Only sockets with SOCK_RCU_FREE can have clones: a
 * listener gets it when it is hashed (a first listen() that fails before
 * that frees its clones, inet_pcl_listen_abort()), children clear it.
 * The flag's line was just read by sk_destruct(), while the accept queue's
 * is cold in a connection (written where it was cloned): a cache miss per
 * connection the sharing counter showed, per-core listen on or off.
 */
void inet_pcl_destruct(struct sock *sk)
{
	struct inet_pcl *pcl;

	if (!sock_flag(sk, SOCK_RCU_FREE) ||
	    sk->sk_type != SOCK_STREAM || sk->sk_protocol != IPPROTO_TCP)
		return;
	pcl = inet_csk(sk)->icsk_accept_queue.rskq_pcl;
	if (pcl)
		pcl_detach(sk, pcl);
}

/*
 * inet_csk_listen_start() failed after inet_pcl_listen_start() (port in
 * use, hashing failed), socket locked.  A listener that was never hashed
 * (no SOCK_RCU_FREE) cannot have been found by a SYN: undo the clones, so
 * that the socket, maybe connected later, is an ordinary one again, and
 * its next listen() decides afresh.  A listener hashed before (listen()
 * again after shutdown()) keeps them.
 */
void inet_pcl_listen_abort(struct sock *sk)
{
	struct inet_pcl *pcl = inet_pcl(sk);

	if (!pcl || sock_flag(sk, SOCK_RCU_FREE))
		return;
	if (sk->sk_data_ready == inet_pcl_data_ready)
		WRITE_ONCE(sk->sk_data_ready, sock_def_readable);
	pcl_detach(sk, pcl);
	inet_csk(sk)->icsk_accept_queue.rskq_pcl_decided = 0;
}

/* Clone @cpu's queue limit: the listener's backlog, per clone. */
static bool pcl_clone_full(const struct sock *sk, struct pcl_clone *c)
{
	return READ_ONCE(c->qlen) > READ_ONCE(sk->sk_max_ack_backlog);
}

/*
 * Is the clone a child of @req (NULL: of a SYN on this CPU) would be
 * queued on full?  @drop: the caller drops the child if so (counted).
 */
bool inet_pcl_acceptq_is_full(const struct sock *sk,
			      const struct request_sock *req, bool drop)
{
	struct inet_pcl *pcl = inet_pcl(sk);
	int cpu = req ? req->syn_cpu : raw_smp_processor_id();

	if (!pcl_clone_full(sk, per_cpu_ptr(pcl->clones, cpu)))
		return false;
	if (drop)
		this_cpu_inc(pcl->stats->overflows);
	return true;
}
EXPORT_SYMBOL_GPL(inet_pcl_acceptq_is_full);

u32 inet_pcl_acceptq_len(const struct sock *sk)
{
	struct inet_pcl *pcl = inet_pcl(sk);
	u32 len = 0;
	int cpu;

	for_each_possible_cpu(cpu)
		len += READ_ONCE(per_cpu_ptr(pcl->clones, cpu)->qlen);
	return len;
}
EXPORT_SYMBOL_GPL(inet_pcl_acceptq_len);

/*
 * Queue @child on the clone of the CPU that processed its SYN.  Softirq
 * (or BH-disabled) context.  Returns false if the listener is closing; the
 * caller then forgets the child, as upstream does.
 */
bool inet_pcl_queue_add(struct sock *sk, struct request_sock *req,
			struct sock *child)
{
	struct inet_pcl *pcl = inet_pcl(sk);
	int cpu = req->syn_cpu;	/* set by inet_reqsk_alloc(), kept by clones */
	struct pcl_clone *c = per_cpu_ptr(pcl->clones, cpu);

	spin_lock(&c->lock);
	if (unlikely(sk->sk_state != TCP_LISTEN)) {
		spin_unlock(&c->lock);
		return false;
	}
	inet_pcl_debug_delay(INET_PCL_DBG_QUEUE_ADD);
	req->sk = child;
	req->dl_next = NULL;
	if (!c->head) {
		WRITE_ONCE(c->head, req);
		WRITE_ONCE(c->head_since, jiffies);
		cpumask_set_cpu(cpu, pcl->nonempty);
		/* bound the wait, whoever is woken for this child */
		if (!timer_pending(&c->handoff))
			mod_timer(&c->handoff, jiffies + PCL_HANDOFF_DELAY);
	} else {
		c->tail->dl_next = req;
	}
	c->tail = req;
	WRITE_ONCE(c->qlen, c->qlen + 1);
	spin_unlock(&c->lock);

	if (cpu != raw_smp_processor_id())
		this_cpu_inc(pcl->stats->remote_completions);
	__this_cpu_write(pcl_wake_cpu, cpu);
	return true;
}

/*
 * In a per-core listener's sk_data_ready for a new child (softirq): the
 * CPU of the clone the child was queued on, for callbacks that route the
 * wakeup by CPU (/dev/megapipe channels with a CPU mask).
 */
int inet_pcl_wake_cpu(void)
{
	return __this_cpu_read(pcl_wake_cpu);
}

/*
 * Is one of the clone's waiters exclusive (EPOLLEXCLUSIVE, accept())?
 * They are queued after the others, so the last one tells.
 */
static bool pcl_has_exclusive(struct wait_queue_head *wqh)
{
	struct wait_queue_entry *last;
	unsigned long flags;
	bool excl = false;

	spin_lock_irqsave(&wqh->lock, flags);
	if (!list_empty(&wqh->head)) {
		last = list_last_entry(&wqh->head, struct wait_queue_entry,
				       entry);
		excl = last->flags & WQ_FLAG_EXCLUSIVE;
	}
	spin_unlock_irqrestore(&wqh->lock, flags);
	return excl;
}

/*
 * PCL_HANDOFF_QLEN, but at most half the clone's queue limit (the backlog,
 * pcl_clone_full()): a clone must hand off well before it drops children.
 */
static u32 pcl_handoff_qlen(struct pcl_clone *c)
{
	return min_t(u32, PCL_HANDOFF_QLEN,
		     READ_ONCE(c->listener->sk_max_ack_backlog) / 2 + 1);
}

/*
 * Leave the new child to the clone's busy waiter?  Yes while the clone is
 * short (the hand-off timer, armed when the clone became non-empty, bounds
 * the wait); also when the clone is already empty (a thread that was awake
 * took the child: nobody needs waking).  No once the clone is long.
 */
static bool pcl_wait_for_busy(struct pcl_clone *c)
{
	return READ_ONCE(c->qlen) < pcl_handoff_qlen(c);
}

/*
 * sk_data_ready of a per-core listener: wake the waiters of the clone the
 * new child was queued on (inet_pcl_queue_add() just said which), all the
 * non-exclusive ones and one exclusive one, as sock_def_readable() does on
 * the listener's queue; when no exclusive waiter there takes the wakeup,
 * wake the listener's queue too: sock_def_readable().
 */
void inet_pcl_data_ready(struct sock *sk)
{
	struct inet_pcl *pcl = inet_pcl(sk);
	struct pcl_clone *c;

	if (!pcl || READ_ONCE(sk->sk_state) != TCP_LISTEN) {
		sock_def_readable(sk);
		return;
	}
	c = per_cpu_ptr(pcl->clones, this_cpu_read(pcl_wake_cpu));
	/*
	 * Done when an exclusive waiter of the clone took the wakeup.  An
	 * EPOLLEXCLUSIVE item whose owner is busy (not in epoll_wait) does
	 * not take it, nor does a thread already awake; the item is on its
	 * epoll's ready list, though, so the owner finds the child when it
	 * comes back.  Wait for it, bounded (pcl_wait_for_busy()), or wake
	 * the listener's queue as upstream does, so that an idle waiter on
	 * another CPU comes and steals the child.  (Non-exclusive waiters of
	 * the clone may so be woken twice; they tolerate it.)
	 */
	if (!wq_has_sleeper(&c->wq)) {
		sock_def_readable(sk);
		return;
	}
	if (!__wake_up(&c->wq, TASK_INTERRUPTIBLE, 1,
		       poll_to_key(EPOLLIN | EPOLLPRI | EPOLLRDNORM |
				   EPOLLRDBAND))) {
		/*
		 * Only non-exclusive waiters here (say an epoll instance
		 * nobody waits in any more): nobody here is bound to take
		 * the child, so tell every waiter, as upstream does, lest a
		 * poller registered on another CPU sleep on (an upstream
		 * selftest, reuseport_bpf, hung so).
		 */
		if (!pcl_has_exclusive(&c->wq)) {
			sock_def_readable(sk);
			return;
		}
		/* exclusive waiters, all busy */
		if (!pcl_wait_for_busy(c)) {
			pcl_handoff(sk, pcl);
			return;
		}
		if (!READ_ONCE(c->busy))
			WRITE_ONCE(c->busy, true);
	}
	/* else one exclusive waiter took it */
	trace_sk_data_ready(sk);
	rcu_read_lock();
	sk_wake_async_rcu(sk, SOCK_WAKE_WAITD, POLL_IN);
	rcu_read_unlock();
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
			cpumask_clear_cpu(cpu, pcl->nonempty);
			if (cpumask_test_cpu(cpu, pcl->stuck))
				cpumask_clear_cpu(cpu, pcl->stuck);
			WRITE_ONCE(c->busy, false);
			WRITE_ONCE(c->hidden, false);
		}
		WRITE_ONCE(c->qlen, c->qlen - 1);
	}
	spin_unlock_bh(&c->lock);
	return req;
}

/*
 * Are clone @c's children left to its own waiters, for a thread pinned to
 * another CPU (pcl_defers())?  Yes while the clone has waiters (they were
 * woken for the children, or are busy and will find them: the EPOLLEXCLUSIVE
 * case), its children are fresh (the clone has been non-empty for less
 * than PCL_HANDOFF_DELAY) and fewer than PCL_HANDOFF_QLEN: what the hand-off
 * (pcl_wait_for_busy(), the timer) also leaves to them.  Such a thread,
 * its own clone empty, then sees the listener as empty: poll and epoll,
 * level-triggered included, report nothing and accept() says EAGAIN or
 * sleeps, instead of taking a connection its own CPU's worker was about
 * to take, which would move the connection's lines between CPUs for the
 * rest of its life.  The clone then notes that it hid children, so that
 * the hand-off timer, once they are no longer fresh, wakes pollers too
 * (pcl_handoff_expired()).  Lockless: a stale answer only shifts a steal
 * by a tick.
 */
static bool pcl_left_to_owner(struct pcl_clone *c)
{
	/* waitqueue_active(): a lockless hint, no barrier needed (above) */
	if (!waitqueue_active(&c->wq) ||
	    READ_ONCE(c->qlen) >= pcl_handoff_qlen(c) ||
	    !time_before(jiffies, READ_ONCE(c->head_since) + PCL_HANDOFF_DELAY))
		return false;
	if (!READ_ONCE(c->hidden))
		WRITE_ONCE(c->hidden, true);
	return true;
}

/*
 * Does the calling thread, on CPU @self, leave other CPUs' fresh children
 * to their own waiters?  Only when it is pinned to one CPU and its CPU's
 * clone has waiters: then it looks like a worker of its CPU whose poll or
 * epoll registered there (the documented set-up), not the very waiter
 * another clone woke.  An unpinned thread, or one on a CPU where nobody
 * waits (one epoll shared by several threads, registered elsewhere), sees
 * and takes every clone's children.  A thread that registered on one CPU
 * and was pinned to another afterwards, where other threads wait, may
 * still be told "empty" for its own children: they then come with the
 * hand-off, a tick or two later.
 */
static bool pcl_defers(struct inet_pcl *pcl, int self)
{
	if (current->nr_cpus_allowed != 1)
		return false;
	/* waitqueue_active(): a lockless hint, as in pcl_left_to_owner() */
	return waitqueue_active(&per_cpu_ptr(pcl->clones, self)->wq);
}

/* Can a thread on CPU @self take a child now (own clone, or a steal)? */
static bool pcl_ready(struct inet_pcl *pcl, int self)
{
	bool defer;
	int cpu;

	if (READ_ONCE(per_cpu_ptr(pcl->clones, self)->head))
		return true;
	defer = pcl_defers(pcl, self);
	for_each_cpu(cpu, pcl->nonempty) {
		if (cpu == self)
			continue;
		if (!defer || !pcl_left_to_owner(per_cpu_ptr(pcl->clones, cpu)))
			return true;
	}
	return false;
}

/* Take from another CPU's clone, starting after ours to spread steals. */
static struct request_sock *pcl_steal(struct inet_pcl *pcl, int self)
{
	int start = self + 1 < nr_cpu_ids ? self + 1 : 0;
	bool defer = pcl_defers(pcl, self);
	struct request_sock *req;
	int cpu;

	for_each_cpu_wrap(cpu, pcl->nonempty, start) {
		if (cpu == self ||
		    (defer && pcl_left_to_owner(per_cpu_ptr(pcl->clones, cpu))))
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
 * accept that empties the own clone ends the streak: this CPU was keeping
 * up, and its next accept steals anyway if another clone still holds a
 * child.  (Counting every local accept made every 16th accept of a CPU
 * that keeps up take a fresh child from another CPU whose own waiter was
 * about to take it: a steal that costs the connection its locality.)
 * The streak is a heuristic: a racing accept() on the same CPU may lose an
 * update, which only shifts the next fair turn.
 */
static struct request_sock *pcl_dequeue(struct inet_pcl *pcl)
{
	int self = raw_smp_processor_id();
	struct pcl_clone *own = per_cpu_ptr(pcl->clones, self);
	struct request_sock *req;
	int cpu;

	/*
	 * A CPU that keeps up (its own clone is not stuck) serves the
	 * children of clones the hand-off timer found stuck (a stalled or
	 * overloaded worker's) before its own, until they empty, so that
	 * they wait about two ticks however busy the other CPUs' own
	 * connections keep their workers.  A CPU whose own clone is stuck
	 * serves its own (locality under overload; the fair turn below
	 * bounds the others' wait).
	 */
	if (unlikely(!cpumask_empty(pcl->stuck)) &&
	    !cpumask_test_cpu(self, pcl->stuck)) {
		for_each_cpu_wrap(cpu, pcl->stuck, self) {
			req = pcl_take(pcl, cpu);
			if (req) {
				this_cpu_inc(pcl->stats->steals);
				return req;
			}
		}
	}
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
 * sleep on (where a new child on this CPU wakes us first) and on the
 * listener's queue (for the children of clones nobody waits on, and
 * close).  Requeued on the new CPU's clone after a migration.
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
		prepare_to_wait_exclusive(sk_sleep(sk), &any,
					  TASK_INTERRUPTIBLE);
		err = 0;
		if (pcl_ready(pcl, raw_smp_processor_id()))
			break;
		err = -EINVAL;
		if (READ_ONCE(sk->sk_state) != TCP_LISTEN)
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
	finish_wait(sk_sleep(sk), &any);
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

	if (READ_ONCE(sk->sk_state) != TCP_LISTEN)
		return ERR_PTR(-EINVAL);

	timeo = sock_rcvtimeo(sk, arg->flags & O_NONBLOCK);
	while (!(req = pcl_dequeue(pcl))) {
		if (READ_ONCE(sk->sk_state) != TCP_LISTEN)
			return ERR_PTR(-EINVAL);
		if (!timeo)
			return ERR_PTR(-EAGAIN);
		err = pcl_wait(sk, pcl, &timeo);
		if (err)
			return ERR_PTR(err);
	}
	arg->is_empty = cpumask_empty(pcl->nonempty);
	return req;
}

/*
 * tcp_poll() of a per-core listener, after its sock_poll_wait(): the
 * poller also waits on the clone of the CPU it runs on; readable when a
 * clone has a child the poller's accept() would take (any clone's, but
 * for a thread pinned to one CPU not the fresh children other CPUs'
 * waiters are about to take: pcl_left_to_owner()).
 */
__poll_t inet_pcl_poll(struct sock *sk, struct file *file,
		       struct poll_table_struct *wait)
{
	struct inet_pcl *pcl = inet_pcl(sk);

	poll_wait(file, &raw_cpu_ptr(pcl->clones)->wq, wait);
	if (!pcl_ready(pcl, raw_smp_processor_id()))
		return 0;
	return EPOLLIN | EPOLLRDNORM;
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
	if (pcl->reqs_live) {
		pcl->reqs_live = false;
		sock_hold(sk);	/* for the requests; pcl_reqs_release() */
		percpu_ref_kill(&pcl->reqs);
	}
	for_each_possible_cpu(cpu) {
		struct pcl_clone *c = per_cpu_ptr(pcl->clones, cpu);
		struct request_sock *head, *tail;
		u32 n;

		spin_lock_bh(&c->lock);
		head = c->head;
		tail = c->tail;
		n = c->qlen;
		WRITE_ONCE(c->head, NULL);
		c->tail = NULL;
		WRITE_ONCE(c->qlen, 0);
		WRITE_ONCE(c->busy, false);
		WRITE_ONCE(c->hidden, false);
		cpumask_clear_cpu(cpu, pcl->nonempty);
		cpumask_clear_cpu(cpu, pcl->stuck);
		spin_unlock_bh(&c->lock);
		/* not armed again: sk_state is no longer TCP_LISTEN */
		timer_delete_sync(&c->handoff);
		/* blocking accept()s of this clone see the listener close */
		wake_up_interruptible_all(&c->wq);
		if (!head)
			continue;

		spin_lock_bh(&queue->rskq_lock);
		if (queue->rskq_accept_head)
			queue->rskq_accept_tail->dl_next = head;
		else
			WRITE_ONCE(queue->rskq_accept_head, head);
		queue->rskq_accept_tail = tail;
		WRITE_ONCE(sk->sk_ack_backlog, sk->sk_ack_backlog + n);
		spin_unlock_bh(&queue->rskq_lock);
	}
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
	u64 sum_la = 0, sum_st = 0, sum_ov = 0, sum_rc = 0, sum_ho = 0;
	int cpu;

	seq_puts(seq,
		 "cpu local_accepts steals overflows remote_completions handoffs\n");
	for_each_possible_cpu(cpu) {
		const struct pcl_stats *s = per_cpu_ptr(pn->stats, cpu);
		unsigned long la = READ_ONCE(s->local_accepts);
		unsigned long st = READ_ONCE(s->steals);
		unsigned long ov = READ_ONCE(s->overflows);
		unsigned long rc = READ_ONCE(s->remote_completions);
		unsigned long ho = READ_ONCE(s->handoffs);

		seq_printf(seq, "%d %lu %lu %lu %lu %lu\n", cpu, la, st, ov, rc,
			   ho);
		sum_la += la;
		sum_st += st;
		sum_ov += ov;
		sum_rc += rc;
		sum_ho += ho;
	}
	seq_printf(seq, "all %llu %llu %llu %llu %llu\n", sum_la, sum_st,
		   sum_ov, sum_rc, sum_ho);
	return 0;
}

static struct ctl_table pcl_sysctl_table[] = {
	{
		.procname	= "tcp_percore_listen",
		.maxlen		= sizeof(u8),
		.mode		= 0644,
		.proc_handler	= proc_dou8vec_minmax,
		.extra1		= SYSCTL_ZERO,
		.extra2		= SYSCTL_TWO,
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
