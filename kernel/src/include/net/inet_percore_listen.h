/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Per-core listen: listen clones with per-CPU accept queues.
 *
 * A TCP listener in per-core mode keeps one clone per CPU.  A clone is a
 * shard of the listener's accept queue: the listener lookup, the request
 * sockets and the child sockets stay exactly as upstream makes them (from
 * the original listener and its settings), but a child whose handshake
 * completed on CPU c is queued on clone c.  accept() on CPU c takes from
 * clone c first and steals from the other clones through a mask of the
 * non-empty ones.  accept() never takes the listener's socket lock.
 *
 * See Documentation/networking/ip-sysctl.rst (tcp_percore_listen) and
 * TCP_PERCORE_LISTEN in include/uapi/linux/tcp.h.
 */
#ifndef _INET_PERCORE_LISTEN_H
#define _INET_PERCORE_LISTEN_H

#include <linux/jump_label_ratelimit.h>
#include <net/inet_connection_sock.h>

struct proto_accept_arg;
struct poll_table_struct;

/* Only with CONFIG_TCP_PERCORE_LISTEN; declared for IS_ENABLED() tests. */
void inet_pcl_data_ready(struct sock *sk);

#ifdef CONFIG_TCP_PERCORE_LISTEN

/* True while at least one per-core listener exists. */
extern struct static_key_false_deferred inet_pcl_key;

/*
 * The clones of a per-core listener, or NULL.  Published with a release
 * (inet_pcl_listen_start()) and read with READ_ONCE(): the reader's
 * accesses depend on the pointer.  Never freed before the socket is.
 */
static inline struct inet_pcl *inet_pcl(const struct sock *sk)
{
	if (static_branch_unlikely(&inet_pcl_key.key))
		return READ_ONCE(inet_csk(sk)->icsk_accept_queue.rskq_pcl);
	return NULL;
}

static inline void inet_pcl_req_init(struct request_sock *req)
{
	req->syn_cpu = raw_smp_processor_id();
}

int inet_pcl_listen_start(struct sock *sk);
void inet_pcl_listen_stop(struct sock *sk);
void inet_pcl_listen_abort(struct sock *sk);
void inet_pcl_destruct(struct sock *sk);
bool inet_pcl_queue_add(struct sock *sk, struct request_sock *req,
			struct sock *child);
struct request_sock *inet_pcl_accept(struct sock *sk,
				     struct proto_accept_arg *arg);
__poll_t inet_pcl_poll(struct file *file, struct socket *sock,
		       struct poll_table_struct *wait);
bool inet_pcl_acceptq_is_full(const struct sock *sk, bool drop);
u32 inet_pcl_acceptq_len(const struct sock *sk);
int inet_pcl_setsockopt(struct sock *sk, int val);
int inet_pcl_getsockopt(struct sock *sk);
struct wait_queue_head *inet_pcl_wait_head(struct sock *sk, int cpu);

/*
 * A child is cloned from its listener, callbacks included: give it
 * upstream's data_ready before anything (a sockops program putting it in
 * a sockmap, say) sees or replaces it.
 */
static inline void inet_pcl_clone_init(struct sock *newsk)
{
	if (static_branch_unlikely(&inet_pcl_key.key) &&
	    newsk->sk_data_ready == inet_pcl_data_ready)
		newsk->sk_data_ready = sock_def_readable;
}

#else /* !CONFIG_TCP_PERCORE_LISTEN */

static inline struct inet_pcl *inet_pcl(const struct sock *sk)
{
	return NULL;
}

static inline void inet_pcl_req_init(struct request_sock *req) {}
static inline int inet_pcl_listen_start(struct sock *sk) { return 0; }
static inline void inet_pcl_listen_stop(struct sock *sk) {}
static inline void inet_pcl_listen_abort(struct sock *sk) {}
static inline void inet_pcl_destruct(struct sock *sk) {}
static inline bool inet_pcl_queue_add(struct sock *sk,
				      struct request_sock *req,
				      struct sock *child)
{
	return false;
}

static inline struct request_sock *
inet_pcl_accept(struct sock *sk, struct proto_accept_arg *arg)
{
	return ERR_PTR(-EINVAL);
}

static inline __poll_t inet_pcl_poll(struct file *file, struct socket *sock,
				     struct poll_table_struct *wait)
{
	return 0;
}

static inline bool inet_pcl_acceptq_is_full(const struct sock *sk,
					    bool drop)
{
	return false;
}

static inline u32 inet_pcl_acceptq_len(const struct sock *sk) { return 0; }
static inline int inet_pcl_setsockopt(struct sock *sk, int val)
{
	return -ENOPROTOOPT;
}

static inline int inet_pcl_getsockopt(struct sock *sk)
{
	return -ENOPROTOOPT;
}

static inline void inet_pcl_clone_init(struct sock *newsk) {}

static inline struct wait_queue_head *inet_pcl_wait_head(struct sock *sk,
							 int cpu)
{
	return NULL;
}

#endif /* CONFIG_TCP_PERCORE_LISTEN */

/* Points where a test kernel can widen a race window (debugfs knobs). */
enum inet_pcl_dbg {
	INET_PCL_DBG_QUEUE_ADD,	/* child's clone locked, not yet linked */
	INET_PCL_DBG_ACCEPT,	/* accept(): not per-core, before lock_sock */
	INET_PCL_DBG_LISTEN,	/* listen(): TCP_LISTEN stored, before get_port */
	INET_PCL_DBG_NR
};

#ifdef CONFIG_TCP_PERCORE_LISTEN_DEBUG
void inet_pcl_debug_delay(enum inet_pcl_dbg point);
#else
static inline void inet_pcl_debug_delay(enum inet_pcl_dbg point) {}
#endif

/*
 * The hooks upstream code calls: sk_acceptq_is_full() over all clones of a
 * per-core listener.  For callers that drop the SYN or child when the
 * backlog is full (counted).
 */
static inline bool inet_csk_acceptq_is_full(const struct sock *sk)
{
	if (inet_pcl(sk))
		return inet_pcl_acceptq_is_full(sk, true);
	return sk_acceptq_is_full(sk);
}

/* The same, for callers that only ask. */
static inline bool inet_csk_acceptq_peek_full(const struct sock *sk)
{
	if (inet_pcl(sk))
		return inet_pcl_acceptq_is_full(sk, false);
	return sk_acceptq_is_full(sk);
}

/* Children ready for accept(), summed over the clones. */
static inline u32 inet_csk_acceptq_len(const struct sock *sk)
{
	if (inet_pcl(sk))
		return inet_pcl_acceptq_len(sk);
	return READ_ONCE(sk->sk_ack_backlog);
}

#endif /* _INET_PERCORE_LISTEN_H */
