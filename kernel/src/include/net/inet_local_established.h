/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Per-CPU local established tables (net.ipv4.tcp_local_established).
 *
 * A TCP socket owned by CPU c (accepted on c, or connected out from c
 * with a Receive Flow Deliver port, which encodes c) is also entered in
 * CPU c's local table of its namespace.  The established lookup on CPU c
 * looks there first and falls back to the global table (ehash).  The
 * entry is a node in the socket: TCP sockets are SLAB_TYPESAFE_BY_RCU, so
 * a hit is revalidated (reference, still in ehash, same 4-tuple) as the
 * ehash lookup does.  An entry is added
 * under the socket's ehash bucket lock, only while the socket is in
 * ehash, and removed under the same lock before the socket leaves ehash
 * (close, TIME_WAIT): a local table never holds a socket that ehash
 * does not.
 *
 * See Documentation/networking/ip-sysctl.rst (tcp_local_established).
 */
#ifndef _INET_LOCAL_ESTABLISHED_H
#define _INET_LOCAL_ESTABLISHED_H

#include <linux/jump_label.h>
#include <linux/types.h>
#include <net/inet_connection_sock.h>
#include <net/sock.h>

struct in6_addr;
struct inet_hashinfo;
struct net;
struct sock;

#ifdef CONFIG_TCP_LOCAL_ESTABLISHED

/* True while net.ipv4.tcp_local_established is on in some namespace. */
extern struct static_key_false inet_lest_key;

void __inet_lest_insert(struct sock *sk, int cpu);
void __inet_lest_remove(struct sock *sk);
struct sock *__inet_lest_lookup(const struct net *net,
				struct inet_hashinfo *hashinfo,
				unsigned int hash, __addrpair acookie,
				__portpair ports,
				int dif, int sdif);
struct sock *__inet6_lest_lookup(const struct net *net,
				 struct inet_hashinfo *hashinfo,
				 unsigned int hash,
				 const struct in6_addr *saddr,
				 const struct in6_addr *daddr,
				 __portpair ports, int dif, int sdif);

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
	if (unlikely(!hlist_unhashed(&inet_csk(sk)->icsk_lest_node)))
		__inet_lest_remove(sk);
}

/* A clone (inet_csk_clone_lock()) is in no table. */
static inline void inet_lest_clone_init(struct sock *newsk)
{
	INIT_HLIST_NODE(&inet_csk(newsk)->icsk_lest_node);
}

/*
 * The established socket of this 4-tuple in this CPU's local table, with
 * a reference, or NULL: then look in ehash.
 */
static inline struct sock *inet_lest_lookup(const struct net *net,
					    struct inet_hashinfo *hashinfo,
					    unsigned int hash, __addrpair acookie,
					    __portpair ports, int dif, int sdif)
{
	if (static_branch_unlikely(&inet_lest_key))
		return __inet_lest_lookup(net, hashinfo, hash, acookie, ports,
					  dif, sdif);
	return NULL;
}

static inline struct sock *inet6_lest_lookup(const struct net *net,
					     struct inet_hashinfo *hashinfo,
					     unsigned int hash,
					     const struct in6_addr *saddr,
					     const struct in6_addr *daddr,
					     __portpair ports, int dif, int sdif)
{
	if (static_branch_unlikely(&inet_lest_key))
		return __inet6_lest_lookup(net, hashinfo, hash, saddr, daddr,
					   ports, dif, sdif);
	return NULL;
}

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

static inline struct sock *inet_lest_lookup(const struct net *net,
					    struct inet_hashinfo *hashinfo,
					    unsigned int hash, __addrpair acookie,
					    __portpair ports, int dif, int sdif)
{
	return NULL;
}

static inline struct sock *inet6_lest_lookup(const struct net *net,
					     struct inet_hashinfo *hashinfo,
					     unsigned int hash,
					     const struct in6_addr *saddr,
					     const struct in6_addr *daddr,
					     __portpair ports, int dif, int sdif)
{
	return NULL;
}

#endif /* CONFIG_TCP_LOCAL_ESTABLISHED */

#endif /* _INET_LOCAL_ESTABLISHED_H */
