/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Receive Flow Deliver (RFD): the receive path steers a connection's
 * packets to the CPU that owns it, in software, where RPS decides.  The
 * active half: connect() on CPU c picks a local port that encodes c, and
 * the packets to such a port go to c.  The passive half: a connection
 * accepted from a per-core listener on CPU c is delivered to c, found by
 * its flow hash in a table that accept() fills and recvmsg() refills.
 *
 * The encoding: port p encodes CPU (p >> 1) % nr_cpu_ids.  Both ports of
 * a pair (2m, 2m + 1) encode the same CPU, so the parity that connect()
 * prefers and the one bind() prefers encode alike.  Only the ports that
 * connect() took this way are steered (a bitmap per namespace, cleared
 * when the port's bind bucket goes): a listener's port never is.
 *
 * See Documentation/networking/ip-sysctl.rst (tcp_rfd).
 */
#ifndef _INET_RFD_H
#define _INET_RFD_H

#include <linux/align.h>
#include <linux/cpumask.h>
#include <linux/in.h>
#include <linux/jump_label.h>
#include <net/inet_connection_sock.h>

struct inet_bind_bucket;
struct kmem_cache;
struct net;
struct net_device;
struct rps_dev_flow;
struct sk_buff;
struct sock;

#ifdef CONFIG_TCP_RFD

/* True while net.ipv4.tcp_rfd is on in at least one namespace. */
extern struct static_key_false inet_rfd_key;
/* True once some namespace has had it on: ports may be marked. */
extern struct static_key_false inet_rfd_marks_key;

int __inet_rfd_connect_cpu(const struct sock *sk);
u32 inet_rfd_port_distance(int port, int cpu);
void inet_rfd_port_taken(const struct net *net, int port);
void inet_rfd_port_fallback(const struct net *net);
void __inet_rfd_port_free(const struct kmem_cache *cachep,
			  const struct inet_bind_bucket *tb);
void __inet_rfd_port_bound(const struct inet_bind_bucket *tb);

/*
 * The bind bucket @tb (of @cachep) is about to be freed, under its bhash
 * lock: unmark its port unless another bucket of the port remains.
 */
static inline void inet_rfd_port_free(const struct kmem_cache *cachep,
				      const struct inet_bind_bucket *tb)
{
	if (static_branch_unlikely(&inet_rfd_marks_key))
		__inet_rfd_port_free(cachep, tb);
}

/*
 * @sk was bound into @tb by bind() or listen() (inet_csk_get_port(),
 * under its bhash lock): a TCP port is no longer only connect()'s.  DCCP
 * shares the code, not TCP's ports.
 */
static inline void inet_rfd_port_bound(const struct sock *sk,
				       const struct inet_bind_bucket *tb)
{
	if (static_branch_unlikely(&inet_rfd_marks_key) &&
	    sk->sk_protocol == IPPROTO_TCP)
		__inet_rfd_port_bound(tb);
}

bool __inet_rfd_steer(struct net_device *dev, struct sk_buff *skb, int *cpu,
		      struct rps_dev_flow **rflowp);
void __inet_rfd_accepted(struct sock *sk, int cpu);
void __inet_rfd_record_flow(struct sock *sk);
void __inet_rfd_closed(struct sock *sk);

/*
 * connect() of @sk: the CPU whose ports to try first, or -1 when RFD is
 * off in its namespace (or @sk is not TCP).
 */
static inline int inet_rfd_connect_cpu(const struct sock *sk)
{
	if (static_branch_unlikely(&inet_rfd_key))
		return __inet_rfd_connect_cpu(sk);
	return -1;
}

/*
 * Where RPS decides: true if RFD places @skb (an IPv4 or IPv6 TCP packet
 * at skb->data), with *@cpu the CPU that owns its connection, or -1 when
 * that is this CPU; false to leave the packet to RPS/RFS.  *@rflowp may
 * be set to the flow's record, whose last_qtail the enqueue updates (as
 * RFS's).
 */
static inline bool inet_rfd_steer(struct net_device *dev, struct sk_buff *skb,
				  int *cpu, struct rps_dev_flow **rflowp)
{
	if (static_branch_unlikely(&inet_rfd_key))
		return __inet_rfd_steer(dev, skb, cpu, rflowp);
	return false;
}

/*
 * @sk was accepted on @cpu (this CPU) from a per-core listener: deliver
 * its packets there from now on.
 */
static inline void inet_rfd_accepted(struct sock *sk, int cpu)
{
	if (static_branch_unlikely(&inet_rfd_key))
		__inet_rfd_accepted(sk, cpu);
}

/*
 * A read of @sk, a TCP socket, under its lock (tcp_recvmsg(), splice,
 * zerocopy receive): if accept() recorded its owner, record it again when
 * its flow lost its entry.
 */
static inline void inet_rfd_record_flow(struct sock *sk)
{
	if (static_branch_unlikely(&inet_rfd_key) &&
	    READ_ONCE(inet_csk(sk)->icsk_rfd_owner))
		__inet_rfd_record_flow(sk);
}

/*
 * @sk, a TCP socket, goes to TCP_CLOSE (under its lock): it forgets its
 * owner and its flow's entry is cleared.  Not behind the key: an owner
 * recorded while RFD was on is forgotten also after it is turned off.
 */
static inline void inet_rfd_closed(struct sock *sk)
{
	if (unlikely(READ_ONCE(inet_csk(sk)->icsk_rfd_owner)))
		__inet_rfd_closed(sk);
}

#else /* !CONFIG_TCP_RFD */

static inline int inet_rfd_connect_cpu(const struct sock *sk)
{
	return -1;
}

static inline u32 inet_rfd_port_distance(int port, int cpu)
{
	return 0;
}

static inline void inet_rfd_port_taken(const struct net *net, int port)
{
}

static inline void inet_rfd_port_fallback(const struct net *net)
{
}

static inline void inet_rfd_port_free(const struct kmem_cache *cachep,
				      const struct inet_bind_bucket *tb)
{
}

static inline void inet_rfd_port_bound(const struct sock *sk,
				       const struct inet_bind_bucket *tb)
{
}

static inline bool inet_rfd_steer(struct net_device *dev, struct sk_buff *skb,
				  int *cpu, struct rps_dev_flow **rflowp)
{
	return false;
}

static inline void inet_rfd_accepted(struct sock *sk, int cpu)
{
}

static inline void inet_rfd_record_flow(struct sock *sk)
{
}

static inline void inet_rfd_closed(struct sock *sk)
{
}

#endif /* CONFIG_TCP_RFD */

/*
 * connect()'s port scan, at @port of a scan by @step that wraps at @high:
 * false if @port encodes @cpu.  Else true, with @port and @i moved so that
 * the scan's next step lands on the first port of the next pair that
 * encodes @cpu, if that is below @high (else the scan steps on as usual).
 */
static inline bool inet_rfd_skip_port(int cpu, int *port, int *i, int step,
				      int high)
{
	u32 skip = inet_rfd_port_distance(*port, cpu);

	if (!skip)
		return false;
	/* A scan by 2 keeps its parity. */
	skip = ALIGN(skip, step);
	if (*port + skip < high) {
		*port += skip - step;
		*i += skip - step;
	}
	return true;
}

#endif /* _INET_RFD_H */
