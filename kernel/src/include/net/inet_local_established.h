/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Per-CPU local established tables (net.ipv4.tcp_local_established).
 *
 * A TCP socket owned by CPU c (accepted on c from a per-core listener, or
 * connected out from c with a Receive Flow Deliver port, which encodes c)
 * is also entered in CPU c's local table of its namespace.  The lookup of
 * a packet received on CPU c looks there first, by the packet's flow hash,
 * and falls back to the global table (ehash).  The entry is a node in the
 * socket: TCP sockets are SLAB_TYPESAFE_BY_RCU, so a hit is revalidated
 * (reference, still in ehash, same 4-tuple) as the ehash lookup does.  An
 * entry is added under the socket's ehash bucket lock, only while the
 * socket is in ehash, and removed under the same lock before the socket
 * leaves ehash (close, TIME_WAIT): a local table never holds a socket that
 * ehash does not.
 *
 * See Documentation/networking/ip-sysctl.rst (tcp_local_established).
 */
#ifndef _INET_LOCAL_ESTABLISHED_H
#define _INET_LOCAL_ESTABLISHED_H

#include <linux/jump_label.h>
#include <linux/percpu.h>
#include <linux/types.h>
#include <net/inet_connection_sock.h>
#include <net/inet_hashtables.h>
#include <net/net_namespace.h>
#include <net/sock.h>
#if IS_ENABLED(CONFIG_IPV6)
#include <net/inet6_hashtables.h>
#endif

struct in6_addr;
struct inet_hashinfo;
struct net;
struct sock;

#ifdef CONFIG_TCP_LOCAL_ESTABLISHED

/* True while net.ipv4.tcp_local_established is on in some namespace. */
extern struct static_key_false inet_lest_key;

struct lest_table;

/* Counted by the CPU that does it: /proc/net/tcp_local_established. */
struct inet_lest_stats {
	unsigned long hits;	/* lookups found in this CPU's table */
	unsigned long misses;	/* ... not: looked up in ehash */
	unsigned long inserts;	/* sockets entered in a table (by this CPU) */
	unsigned long removes;	/* ... and taken out (by this CPU) */
	unsigned long mismatches; /* value 2: a hit ehash would not give */
	unsigned long rekeys;	/* entries moved to their flow hash's chain */
};

/*
 * A CPU's part of a namespace's local tables (net->ipv4.tcp_lest, per
 * CPU): what the lookups of that CPU read.  Written under the table's
 * lock when the table gets its first entry or loses its last one, and
 * when the sysctl changes.
 */
struct inet_lest_cpu {
	/*
	 * The CPU's table while the sysctl is on and the table has entries;
	 * else NULL, and its lookups go to ehash alone.
	 */
	struct lest_table *table;
	u8 bits;		/* log2 of the table's chains */
	bool verify;		/* the sysctl is 2 */
	struct inet_lest_stats stats;
};

void __inet_lest_insert(struct sock *sk, int cpu);
void __inet_lest_remove(struct sock *sk);
struct sock *__inet_lest_lookup(struct lest_table *t, struct net *net,
				u32 hash, __be32 saddr, __be16 sport,
				__be32 daddr, u16 hnum, int dif, int sdif);
struct sock *__inet6_lest_lookup(struct lest_table *t, struct net *net,
				 u32 hash, const struct in6_addr *saddr,
				 __be16 sport, const struct in6_addr *daddr,
				 u16 hnum, int dif, int sdif);

/*
 * The table of the CPU that runs a received packet's lookup (BH off), if
 * it is to be looked in: the sysctl on, entries in it, and the packet's
 * flow hash (what the table is indexed by) known.  The lookups of TCP
 * (tcp_death_row's hashinfo) only: DCCP's sockets are never entered.
 */
static inline struct lest_table *__inet_lest_table(const struct net *net,
						   const struct sk_buff *skb)
{
	struct lest_table *t;

	/*
	 * Pairs with the release in lest_cpu_update(): the chains, and the
	 * CPU's bits, as they were when the table was published.
	 */
	t = smp_load_acquire(this_cpu_ptr(&net->ipv4.tcp_lest->table));
	return t && skb->l4_hash ? t : NULL;
}

static inline struct lest_table *inet_lest_table(const struct net *net,
						 const struct sk_buff *skb)
{
	if (static_branch_unlikely(&inet_lest_key))
		return __inet_lest_table(net, skb);
	return NULL;
}

/* @sk (in ehash) is now owned by @cpu: enter it in @cpu's local table. */
static inline void inet_lest_insert(struct sock *sk, int cpu)
{
	if (static_branch_unlikely(&inet_lest_key))
		__inet_lest_insert(sk, cpu);
}

/*
 * Under @sk's ehash bucket lock, before @sk leaves ehash.  Not behind the
 * static key: entries stay while the sysctl is off, and leave with their
 * sockets.
 */
static inline void inet_lest_remove(struct sock *sk)
{
	/* lockless: a rekey moves the node under its table's lock only */
	if (unlikely(!hlist_unhashed_lockless(&inet_csk(sk)->icsk_lest_node)))
		__inet_lest_remove(sk);
}

/* A clone (inet_csk_clone_lock()) is in no table. */
static inline void inet_lest_clone_init(struct sock *newsk)
{
	INIT_HLIST_NODE(&inet_csk(newsk)->icsk_lest_node);
}

/*
 * __inet_lookup_established() for a received packet @skb (early demux):
 * this CPU's local table first, by the packet's flow hash.
 */
static inline struct sock *
inet_lest_lookup_established(struct net *net, struct inet_hashinfo *hashinfo,
			     const struct sk_buff *skb, __be32 saddr,
			     __be16 sport, __be32 daddr, u16 hnum, int dif,
			     int sdif)
{
	struct lest_table *t = inet_lest_table(net, skb);

	if (t)
		return __inet_lest_lookup(t, net, skb->hash, saddr, sport,
					  daddr, hnum, dif, sdif);
	return __inet_lookup_established(net, hashinfo, saddr, sport, daddr,
					 hnum, dif, sdif);
}

/*
 * __inet_lookup_skb() (tcp_v4_rcv()): a packet that comes with its
 * socket (early demux, BPF) keeps it; else the established lookup, this
 * CPU's local table first, then the listeners.
 */
static inline struct sock *inet_lest_lookup_skb(struct inet_hashinfo *hashinfo,
						struct sk_buff *skb, int doff,
						__be16 sport, __be16 dport,
						int sdif, bool *refcounted)
{
	struct lest_table *t = NULL;
	struct net *net = NULL;

	if (static_branch_unlikely(&inet_lest_key) && !skb->sk) {
		net = skb_dst_dev_net_rcu(skb);
		t = __inet_lest_table(net, skb);
	}
	if (t) {
		const struct iphdr *iph = ip_hdr(skb);
		struct sock *sk;

		sk = __inet_lest_lookup(t, net, skb->hash, iph->saddr, sport,
					iph->daddr, ntohs(dport),
					inet_iif(skb), sdif);
		*refcounted = true;
		if (sk)
			return sk;
		*refcounted = false;
		return __inet_lookup_listener(net, hashinfo, skb, doff,
					      iph->saddr, sport, iph->daddr,
					      ntohs(dport), inet_iif(skb), sdif);
	}
	return __inet_lookup_skb(hashinfo, skb, doff, sport, dport, sdif,
				 refcounted);
}

#if IS_ENABLED(CONFIG_IPV6)
static inline struct sock *
inet6_lest_lookup_established(struct net *net, struct inet_hashinfo *hashinfo,
			      const struct sk_buff *skb,
			      const struct in6_addr *saddr, __be16 sport,
			      const struct in6_addr *daddr, u16 hnum, int dif,
			      int sdif)
{
	struct lest_table *t = inet_lest_table(net, skb);

	if (t)
		return __inet6_lest_lookup(t, net, skb->hash, saddr, sport,
					   daddr, hnum, dif, sdif);
	return __inet6_lookup_established(net, hashinfo, saddr, sport, daddr,
					  hnum, dif, sdif);
}

static inline struct sock *inet6_lest_lookup_skb(struct inet_hashinfo *hashinfo,
						 struct sk_buff *skb, int doff,
						 __be16 sport, __be16 dport,
						 int iif, int sdif,
						 bool *refcounted)
{
	struct lest_table *t = NULL;
	struct net *net = NULL;

	if (static_branch_unlikely(&inet_lest_key) && !skb->sk) {
		net = skb_dst_dev_net_rcu(skb);
		t = __inet_lest_table(net, skb);
	}
	if (t) {
		const struct ipv6hdr *ip6h = ipv6_hdr(skb);
		struct sock *sk;

		sk = __inet6_lest_lookup(t, net, skb->hash, &ip6h->saddr,
					 sport, &ip6h->daddr, ntohs(dport),
					 iif, sdif);
		*refcounted = true;
		if (sk)
			return sk;
		*refcounted = false;
		return inet6_lookup_listener(net, hashinfo, skb, doff,
					     &ip6h->saddr, sport, &ip6h->daddr,
					     ntohs(dport), iif, sdif);
	}
	return __inet6_lookup_skb(hashinfo, skb, doff, sport, dport, iif, sdif,
				  refcounted);
}
#endif

#else /* !CONFIG_TCP_LOCAL_ESTABLISHED */

static inline void inet_lest_insert(struct sock *sk, int cpu)
{
}

static inline void inet_lest_remove(struct sock *sk)
{
}

static inline void inet_lest_clone_init(struct sock *newsk)
{
}

static inline struct sock *
inet_lest_lookup_established(struct net *net, struct inet_hashinfo *hashinfo,
			     const struct sk_buff *skb, __be32 saddr,
			     __be16 sport, __be32 daddr, u16 hnum, int dif,
			     int sdif)
{
	return __inet_lookup_established(net, hashinfo, saddr, sport, daddr,
					 hnum, dif, sdif);
}

static inline struct sock *inet_lest_lookup_skb(struct inet_hashinfo *hashinfo,
						struct sk_buff *skb, int doff,
						__be16 sport, __be16 dport,
						int sdif, bool *refcounted)
{
	return __inet_lookup_skb(hashinfo, skb, doff, sport, dport, sdif,
				 refcounted);
}

#if IS_ENABLED(CONFIG_IPV6)
static inline struct sock *
inet6_lest_lookup_established(struct net *net, struct inet_hashinfo *hashinfo,
			      const struct sk_buff *skb,
			      const struct in6_addr *saddr, __be16 sport,
			      const struct in6_addr *daddr, u16 hnum, int dif,
			      int sdif)
{
	return __inet6_lookup_established(net, hashinfo, saddr, sport, daddr,
					  hnum, dif, sdif);
}

static inline struct sock *inet6_lest_lookup_skb(struct inet_hashinfo *hashinfo,
						 struct sk_buff *skb, int doff,
						 __be16 sport, __be16 dport,
						 int iif, int sdif,
						 bool *refcounted)
{
	return __inet6_lookup_skb(hashinfo, skb, doff, sport, dport, iif, sdif,
				  refcounted);
}
#endif

#endif /* CONFIG_TCP_LOCAL_ESTABLISHED */

#endif /* _INET_LOCAL_ESTABLISHED_H */
