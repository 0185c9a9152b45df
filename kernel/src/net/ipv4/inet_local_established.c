// SPDX-License-Identifier: GPL-2.0
/*
 * Per-CPU local established tables.
 *
 * With net.ipv4.tcp_local_established on in a namespace, a TCP socket
 * owned by CPU c is also entered in CPU c's local table: a socket
 * accept()ed on c from a per-core listener (a listener without per-core
 * listen may hand its connections to any thread: not entered), or one
 * connected out from c with a Receive Flow
 * Deliver port (net.ipv4.tcp_rfd), whose port encodes c.  The lookup of
 * a received packet (early demux and tcp_v4_rcv()/tcp_v6_rcv(), IPv4 and
 * IPv6) looks in the local table of the CPU it runs on first and falls
 * back to the global table, ehash.  With RFD and per-core listen, the
 * packets of a connection are processed on its owner, so the lookup
 * reads lines that only the owner writes.
 *
 * A local table is indexed by the packet's flow hash (skb->hash with
 * l4_hash: what RPS and RFD steer by, computed before the lookup), not
 * by ehash's hash: a hit costs no inet_ehashfn().  A socket is entered
 * under the flow hash known then (sk_rxhash, or none yet), and when a
 * lookup on its owner misses but ehash finds it, it is moved to the
 * chain of the packet's hash ("rekeys"): its next packet is a hit.  A
 * packet without a flow hash, and lookups that are not a received
 * packet's (ICMP errors, diag, netfilter), go to ehash.
 *
 * The entry is a node in the socket (inet_connection_sock's
 * icsk_lest_node) on a plain RCU list.  TCP sockets are
 * SLAB_TYPESAFE_BY_RCU: a reader may be on the node of a socket that is
 * removed, freed and reused meanwhile.  The removal sets the node's next
 * to NULL, the end of a plain list, and so does the allocation (all but
 * sk_node.next is cleared) or a clone's init: such a reader misses; or
 * the socket is entered again, in another chain, and the reader goes on
 * in that chain, where it may miss.
 * A miss falls back to ehash, and a hit takes a reference and checks
 * again that the socket is in ehash with the same 4-tuple, as the ehash
 * lookup does: neither changes the result.  Entries are added under the
 * socket's ehash bucket lock,
 * only while it is in ehash, and removed under that lock before it
 * leaves ehash (inet_unhash(), and the TIME_WAIT hashdance, which
 * replaces it by its timewait socket): a local table holds no socket
 * that ehash does not, and a miss falls back to ehash.
 *
 * Value 2 of the sysctl also checks every hit against ehash: the first
 * socket that the ehash lookup would find must be the local hit; a
 * difference is counted and warned about (a debug aid for tests).
 *
 * Entries leave with their sockets also while the sysctl is off (the
 * removal is not behind the static key); turning it off only stops the
 * lookups and new entries.  Not used: DCCP's lookups (a table of its
 * own), sockets of the kernel (they do not hold their namespace), and a
 * namespace with tcp_l3mdev_accept (sockets of a VRF and unbound ones may
 * share a 4-tuple, and ehash's chain order decides between them).  A
 * socket bound to a device is never a local hit, for the same reason.  A
 * lookup finds only sockets that ehash hashes in its family (an IPv6
 * socket keeps placeholder IPv4 addresses that the IPv4 match would take);
 * ehash's chains, by its hash, do that for it.
 *
 * Counters, per namespace and per CPU: /proc/net/tcp_local_established.
 */

#include <linux/hash.h>
#include <linux/log2.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/overflow.h>
#include <linux/percpu.h>
#include <linux/proc_fs.h>
#include <linux/rculist.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/sysctl.h>
#include <net/inet6_hashtables.h>
#include <net/inet_hashtables.h>
#include <net/inet_local_established.h>
#include <net/netns/generic.h>
#include <net/tcp.h>

DEFINE_STATIC_KEY_FALSE(inet_lest_key);
EXPORT_SYMBOL_GPL(inet_lest_key);

/*
 * List heads per CPU: ehash's size shared out among the possible CPUs,
 * within these bounds, so that a CPU's chains are no longer than ehash's
 * when the sockets are spread over the CPUs.
 */
#define LEST_MIN_BUCKETS	1024
#define LEST_MAX_BUCKETS	65536

/*
 * One CPU's table: sockets owned by that CPU, entered and removed from any
 * CPU (mostly its own).  Its lookups read only chain[], not the line that
 * the writers on other CPUs write.
 */
struct lest_table {
	spinlock_t lock;	/* writers of chain[] and entries */
	unsigned int entries;	/* sockets in chain[] */
	int cpu;		/* whose */
	struct hlist_head chain[] ____cacheline_aligned_in_smp;
};

struct lest_net {
	u8 sysctl;		/* net.ipv4.tcp_local_established */
	struct net *net;	/* whose */
	u8 bits;		/* log2 of the list heads per table */
	/*
	 * A table per possible CPU, indexed by CPU: allocated when the
	 * sysctl is first turned on, freed with the netns.  The lookups
	 * find theirs in net->ipv4.tcp_lest (struct inet_lest_cpu).
	 */
	struct lest_table **tables;
	struct ctl_table_header *sysctl_hdr;
};

static unsigned int lest_net_id __read_mostly;
static DEFINE_MUTEX(lest_mutex);

static struct lest_net *lest_net(const struct net *net)
{
	return net_generic(net, lest_net_id);
}

/*
 * The chain of flow hash @hash: its high bits, mixed (a NIC picks the RSS
 * queue, and so the CPU, by the low bits: on one CPU those are alike).
 */
static struct hlist_head *lest_chain(u8 bits, struct lest_table *t, u32 hash)
{
	return &t->chain[hash_32(hash, bits)];
}

/*
 * Under @cpu's table's lock (the sysctl's writer holds lest_mutex too):
 * what @cpu's lookups read.  They look in the table only while the sysctl
 * is on and the table has entries; a socket entered meanwhile is in ehash
 * too.
 */
static void lest_cpu_update(struct lest_net *ln, int cpu)
{
	struct inet_lest_cpu *c = per_cpu_ptr(ln->net->ipv4.tcp_lest, cpu);
	struct lest_table *t = ln->tables[cpu];
	u8 sysctl = READ_ONCE(ln->sysctl);

	lockdep_assert_held(&t->lock);
	WRITE_ONCE(c->verify, sysctl == 2);
	/* the chains' initialisation before the table is seen */
	smp_store_release(&c->table, sysctl && t->entries ? t : NULL);
}

void __inet_lest_insert(struct sock *sk, int cpu)
{
	struct lest_net *ln = lest_net(sock_net(sk));
	struct inet_connection_sock *icsk = inet_csk(sk);
	struct lest_table **tables;
	struct lest_table *t;
	spinlock_t *lock;	/* the socket's ehash bucket's */

	/*
	 * TCP only (DCCP has an ehash of its own).  Not kernel sockets: they
	 * do not hold their namespace, which could go before them.
	 */
	if (!READ_ONCE(ln->sysctl) || sk->sk_protocol != IPPROTO_TCP ||
	    !sk->sk_net_refcnt || cpu < 0 || cpu >= nr_cpu_ids)
		return;
	/* never a local hit (lest_match4()): not entered */
	if (READ_ONCE(sk->sk_bound_dev_if))
		return;
	/* pairs with the release in lest_enable() */
	tables = smp_load_acquire(&ln->tables);
	if (!tables)
		return;
	t = tables[cpu];
	lock = inet_ehash_lockp(tcp_or_dccp_get_hashinfo(sk), sk->sk_hash);
	spin_lock_bh(lock);
	/* only while in ehash, and once */
	/* lockless: a rekey moves the node under the table's lock only */
	if (hlist_nulls_unhashed(&sk->sk_nulls_node) ||
	    !hlist_unhashed_lockless(&icsk->icsk_lest_node)) {
		spin_unlock_bh(lock);
		return;
	}
	spin_lock(&t->lock);
	WRITE_ONCE(icsk->icsk_lest_cpu, cpu);
	/*
	 * Under the flow hash known now; none yet (a connect()): its ehash
	 * hash, which spreads such sockets over the chains.  The first miss
	 * on @cpu moves it to its flow's chain.
	 */
	hlist_add_head_rcu(&icsk->icsk_lest_node,
			   lest_chain(ln->bits, t,
				      READ_ONCE(sk->sk_rxhash) ?: sk->sk_hash));
	if (!t->entries++)
		lest_cpu_update(ln, cpu);
	spin_unlock(&t->lock);
	spin_unlock_bh(lock);
	this_cpu_inc(sock_net(sk)->ipv4.tcp_lest->stats.inserts);
}

void __inet_lest_remove(struct sock *sk)
{
	struct inet_connection_sock *icsk = inet_csk(sk);
	struct lest_net *ln = lest_net(sock_net(sk));
	int cpu = icsk->icsk_lest_cpu;
	struct lest_table *t = ln->tables[cpu];

	spin_lock(&t->lock);
	hlist_del_init_rcu(&icsk->icsk_lest_node);
	/*
	 * A reader on the node now ends there (a miss).  No stale next may
	 * stay in the socket: a copy of it (the clone of a listener that was
	 * once connected) would hand it to readers on the clone's node.
	 */
	WRITE_ONCE(icsk->icsk_lest_node.next, NULL);
	/* in no table: a rekey that checked the owner before this sees so */
	WRITE_ONCE(icsk->icsk_lest_cpu, -1);
	if (!--t->entries)
		lest_cpu_update(ln, cpu);
	spin_unlock(&t->lock);
	this_cpu_inc(sock_net(sk)->ipv4.tcp_lest->stats.removes);
}

/* The first socket of @hash's ehash chain that matches @key, or NULL. */
static struct sock *lest_ehash_first(struct inet_hashinfo *hashinfo,
				     unsigned int hash,
				     bool (*match)(const struct sock *sk,
						   const void *key),
				     const void *key)
{
	unsigned int slot = hash & hashinfo->ehash_mask;
	const struct hlist_nulls_node *node;
	struct sock *sk;

begin:
	sk_nulls_for_each_rcu(sk, node, &hashinfo->ehash[slot].chain)
		if (sk->sk_hash == hash && match(sk, key))
			return sk;
	/* an item moved to another chain: look again, as the lookup does */
	if (get_nulls_value(node) != slot)
		goto begin;
	return NULL;
}

/*
 * Value 2: is @hit the first socket of its ehash chain with this key, as
 * the ehash lookup would find?  A difference seen without the lock may
 * be a socket leaving ehash at that moment (replaced by its TIME_WAIT
 * socket, or unlinked before it is marked unhashed): look again under
 * the bucket's lock, where chain and state agree.
 */
static void lest_verify(struct net *net, struct sock *hit,
			bool (*ematch)(const struct sock *sk, const void *key),
			unsigned int hash, const void *key)
{
	struct inet_hashinfo *hashinfo = net->ipv4.tcp_death_row.hashinfo;
	/* @hash: ehash's hash of the key (not the hit's own sk_hash) */
	spinlock_t *lock = inet_ehash_lockp(hashinfo, hash);	/* the bucket's */
	struct sock *first = lest_ehash_first(hashinfo, hash, ematch, key);

	if (first == hit)
		return;
	spin_lock_bh(lock);
	first = lest_ehash_first(hashinfo, hash, ematch, key);
	if (first == hit || hlist_nulls_unhashed(&hit->sk_nulls_node)) {
		spin_unlock_bh(lock);
		return;
	}
	spin_unlock_bh(lock);
	this_cpu_inc(net->ipv4.tcp_lest->stats.mismatches);
	WARN_ONCE(1, "tcp_local_established: local hit %p, ehash finds %p\n",
		  hit, first);
}

struct lest_key4 {
	const struct net *net;
	__addrpair acookie;
	__portpair ports;
	int dif, sdif;
};

static __always_inline struct lest_key4
lest_key4(const struct net *net, __be32 saddr, __be16 sport, __be32 daddr,
	  u16 hnum, int dif, int sdif)
{
	INET_ADDR_COOKIE(acookie, saddr, daddr);

	return (struct lest_key4){
		.net = net, .acookie = acookie,
		.ports = INET_COMBINED_PORTS(sport, hnum),
		.dif = dif, .sdif = sdif,
	};
}

/*
 * Does ehash hash @sk as IPv4 (sk_ehashfn())?  An IPv6 socket whose peer
 * is not v4-mapped keeps placeholder IPv4 addresses (LOOPBACK4_IPV6) that
 * inet_match() would take: ehash's chains keep it from IPv4 lookups by
 * their hash, ours (by flow hash) by this.
 */
static __always_inline bool lest_hashed_as_v4(const struct sock *sk)
{
#if IS_ENABLED(CONFIG_IPV6)
	if (sk->sk_family == AF_INET6 &&
	    !ipv6_addr_v4mapped(&sk->sk_v6_daddr))
		return false;
#endif
	return true;
}

/*
 * A socket bound to a device is left to ehash: with another socket of the
 * same 4-tuple (unbound, or bound to another device of a VRF), which of
 * them a packet finds is ehash's chain order.  Read at each lookup, as
 * SO_BINDTODEVICE may come after the socket was entered.
 */
static __always_inline bool lest_match4(const struct sock *sk,
					const void *key)
{
	const struct lest_key4 *k = key;

	return lest_hashed_as_v4(sk) && !READ_ONCE(sk->sk_bound_dev_if) &&
	       inet_match(k->net, sk, k->acookie, k->ports, k->dif, k->sdif);
}

/* ehash's match of a key (lest_verify(): ehash's own answer) */
static bool lest_ematch4(const struct sock *sk, const void *key)
{
	const struct lest_key4 *k = key;

	return inet_match(k->net, sk, k->acookie, k->ports, k->dif, k->sdif);
}

/*
 * lest_verify() of an IPv4 hit, out of line: its key on the stack is
 * this function's, not the lookup's.
 */
static noinline void lest_verify4(struct net *net, struct sock *hit,
				  __be32 saddr, __be16 sport, __be32 daddr,
				  u16 hnum, int dif, int sdif)
{
	struct lest_key4 k = lest_key4(net, saddr, sport, daddr, hnum, dif,
				       sdif);

	lest_verify(net, hit, lest_ematch4,
		    inet_ehashfn(net, daddr, hnum, saddr, sport), &k);
}

static bool lest_l3mdev_accept(const struct net *net)
{
#ifdef CONFIG_NET_L3_MASTER_DEV
	return READ_ONCE(net->ipv4.sysctl_tcp_l3mdev_accept);
#else
	return false;
#endif
}

/*
 * Inlined into each family's lookup, with its match function.  @hash is
 * the packet's flow hash: the chains hold no hash to compare, the match
 * decides.
 */
static __always_inline struct sock *
lest_lookup(struct inet_lest_cpu __percpu *pc, struct lest_table *t, u32 hash,
	    bool (*match)(const struct sock *sk, const void *key),
	    const void *key)
{
	struct inet_connection_sock *icsk;
	struct sock *sk;

	hlist_for_each_entry_rcu(icsk,
				 lest_chain(this_cpu_read(pc->bits), t, hash),
				 icsk_lest_node) {
		sk = &icsk->icsk_inet.sk;
		if (!match(sk, key))
			continue;
		if (unlikely(!refcount_inc_not_zero(&sk->sk_refcnt)))
			break;
		if (unlikely(hlist_nulls_unhashed_lockless(&sk->sk_nulls_node) ||
			     !match(sk, key))) {
			sock_gen_put(sk);
			break;
		}
		this_cpu_inc(pc->stats.hits);
		return sk;
	}
	this_cpu_inc(pc->stats.misses);
	return NULL;
}

/*
 * At most this many rekeys per CPU and jiffy: a flow that reaches its
 * owner under two hashes (two devices with different RSS keys) would
 * otherwise take the table's lock for each of its packets.  Past it,
 * sockets stay in their chain and are found in ehash.
 */
#define LEST_REKEYS_PER_JIFFY	64

struct lest_rekey_budget {
	unsigned long jiffy;
	unsigned int n;
};

static DEFINE_PER_CPU(struct lest_rekey_budget, lest_rekey_budget);

/*
 * @sk, found in ehash for a packet of flow hash @hash after this CPU's
 * table @t missed it: if @sk is in @t, it is in another hash's chain (the
 * one known when it was entered, or its flow's hash changed): move it to
 * @hash's chain.  Readers on its node go on in the new chain, and may miss.
 */
static void lest_missed(struct inet_lest_cpu __percpu *pc,
			struct lest_table *t, struct sock *sk, u32 hash)
{
	struct hlist_head *head = lest_chain(this_cpu_read(pc->bits), t, hash);
	struct lest_rekey_budget *b = raw_cpu_ptr(&lest_rekey_budget);
	int cpu = t->cpu;
	struct inet_connection_sock *icsk;
	struct hlist_node *n;
	unsigned long now;

	/* a bound socket is never a local hit (lest_match4()): no move */
	if (!sk_fullsock(sk) || READ_ONCE(sk->sk_bound_dev_if))
		return;
	icsk = inet_csk(sk);
	if (hlist_unhashed_lockless(&icsk->icsk_lest_node) ||
	    READ_ONCE(icsk->icsk_lest_cpu) != cpu)
		return;
	now = jiffies;
	if (b->jiffy != now) {
		b->jiffy = now;
		b->n = 0;
	}
	if (b->n >= LEST_REKEYS_PER_JIFFY)
		return;
	b->n++;
	spin_lock_bh(&t->lock);
	/*
	 * Again under @t's lock: removed meanwhile (and maybe entered in
	 * another CPU's table, whose lock we do not hold), or moved already.
	 */
	if (hlist_unhashed(&icsk->icsk_lest_node) ||
	    READ_ONCE(icsk->icsk_lest_cpu) != cpu)
		goto out;
	hlist_for_each(n, head)
		if (n == &icsk->icsk_lest_node)
			goto out;	/* a lookup that raced with a change */
	hlist_del_rcu(&icsk->icsk_lest_node);
	hlist_add_head_rcu(&icsk->icsk_lest_node, head);
	this_cpu_inc(pc->stats.rekeys);
out:
	spin_unlock_bh(&t->lock);
}

/*
 * The lookups of a received packet of flow hash @hash in this CPU's
 * table @t (inet_lest_table()), then in ehash.  With tcp_l3mdev_accept,
 * sockets bound to a VRF and unbound ones may share a 4-tuple, and
 * ehash's chain order decides between them: ehash alone.
 */
struct sock *__inet_lest_lookup(struct lest_table *t, struct net *net,
				u32 hash, __be32 saddr, __be16 sport,
				__be32 daddr, u16 hnum, int dif, int sdif)
{
	struct inet_hashinfo *hashinfo = net->ipv4.tcp_death_row.hashinfo;
	struct inet_lest_cpu __percpu *pc = net->ipv4.tcp_lest;
	struct lest_key4 k = lest_key4(net, saddr, sport, daddr, hnum, dif,
				       sdif);
	struct sock *sk;

	if (lest_l3mdev_accept(net))
		return __inet_lookup_established(net, hashinfo, saddr, sport,
						 daddr, hnum, dif, sdif);
	sk = lest_lookup(pc, t, hash, lest_match4, &k);
	if (sk) {
		if (unlikely(this_cpu_read(pc->verify)))
			lest_verify4(net, sk, saddr, sport, daddr, hnum, dif,
				     sdif);
		return sk;
	}
	sk = __inet_lookup_established(net, hashinfo, saddr, sport, daddr,
				       hnum, dif, sdif);
	if (sk)
		lest_missed(pc, t, sk, hash);
	return sk;
}

#if IS_ENABLED(CONFIG_IPV6)
struct lest_key6 {
	const struct net *net;
	const struct in6_addr *saddr, *daddr;
	__portpair ports;
	int dif, sdif;
};

static bool lest_ematch6(const struct sock *sk, const void *key)
{
	const struct lest_key6 *k = key;

	return inet6_match(k->net, sk, k->saddr, k->daddr, k->ports, k->dif,
			   k->sdif);
}

static __always_inline struct lest_key6
lest_key6(const struct net *net, const struct in6_addr *saddr, __be16 sport,
	  const struct in6_addr *daddr, u16 hnum, int dif, int sdif)
{
	return (struct lest_key6){
		.net = net, .saddr = saddr, .daddr = daddr,
		.ports = INET_COMBINED_PORTS(sport, hnum),
		.dif = dif, .sdif = sdif,
	};
}

/* lest_verify4() for IPv6 */
static noinline void lest_verify6(struct net *net, struct sock *hit,
				  const struct in6_addr *saddr, __be16 sport,
				  const struct in6_addr *daddr, u16 hnum,
				  int dif, int sdif)
{
	struct lest_key6 k = lest_key6(net, saddr, sport, daddr, hnum, dif,
				       sdif);

	lest_verify(net, hit, lest_ematch6,
		    inet6_ehashfn(net, daddr, hnum, saddr, sport), &k);
}

static __always_inline bool lest_match6(const struct sock *sk,
					const void *key)
{
	const struct lest_key6 *k = key;

	/* as lest_match4(); a v4-mapped socket is hashed as IPv4 */
	return !lest_hashed_as_v4(sk) && !READ_ONCE(sk->sk_bound_dev_if) &&
	       inet6_match(k->net, sk, k->saddr, k->daddr, k->ports, k->dif,
			   k->sdif);
}

/* __inet_lest_lookup() for IPv6 */
struct sock *__inet6_lest_lookup(struct lest_table *t, struct net *net,
				 u32 hash, const struct in6_addr *saddr,
				 __be16 sport, const struct in6_addr *daddr,
				 u16 hnum, int dif, int sdif)
{
	struct inet_hashinfo *hashinfo = net->ipv4.tcp_death_row.hashinfo;
	struct inet_lest_cpu __percpu *pc = net->ipv4.tcp_lest;
	struct lest_key6 k = lest_key6(net, saddr, sport, daddr, hnum, dif,
				       sdif);
	struct sock *sk;

	if (lest_l3mdev_accept(net))
		return __inet6_lookup_established(net, hashinfo, saddr, sport,
						  daddr, hnum, dif, sdif);
	sk = lest_lookup(pc, t, hash, lest_match6, &k);
	if (sk) {
		if (unlikely(this_cpu_read(pc->verify)))
			lest_verify6(net, sk, saddr, sport, daddr, hnum, dif,
				     sdif);
		return sk;
	}
	sk = __inet6_lookup_established(net, hashinfo, saddr, sport, daddr,
					hnum, dif, sdif);
	if (sk)
		lest_missed(pc, t, sk, hash);
	return sk;
}
EXPORT_SYMBOL_GPL(__inet6_lest_lookup);
#endif

static void lest_free_tables(struct lest_table **tables)
{
	int cpu;

	for_each_possible_cpu(cpu)
		kvfree(tables[cpu]);
	kfree(tables);
}

/* Under lest_mutex: the namespace turns its tables on. */
static int lest_enable(struct lest_net *ln)
{
	struct lest_table **tables;
	u32 n;
	int cpu;

	if (!ln->tables) {
		/* the namespace's ehash: its own with tcp_child_ehash_entries */
		n = (ln->net->ipv4.tcp_death_row.hashinfo->ehash_mask + 1) /
		    num_possible_cpus();
		n = roundup_pow_of_two(clamp(n, LEST_MIN_BUCKETS,
					     LEST_MAX_BUCKETS));
		tables = kcalloc(nr_cpu_ids, sizeof(*tables), GFP_KERNEL_ACCOUNT);
		if (!tables)
			return -ENOMEM;
		for_each_possible_cpu(cpu) {
			/* zeroed: empty heads */
			tables[cpu] = kvzalloc_node(struct_size(tables[cpu], chain, n),
						    GFP_KERNEL_ACCOUNT | __GFP_NOWARN,
						    cpu_to_node(cpu));
			if (!tables[cpu]) {
				lest_free_tables(tables);
				return -ENOMEM;
			}
			spin_lock_init(&tables[cpu]->lock);
			tables[cpu]->cpu = cpu;
		}
		ln->bits = ilog2(n);
		for_each_possible_cpu(cpu)
			per_cpu_ptr(ln->net->ipv4.tcp_lest, cpu)->bits = ln->bits;
		/* the heads and the mask before the tables are seen */
		smp_store_release(&ln->tables, tables);
	}
	static_branch_inc(&inet_lest_key);
	return 0;
}

/* Under lest_mutex, after a change of the sysctl: tell the lookups. */
static void lest_cpus_update(struct lest_net *ln)
{
	int cpu;

	if (!ln->tables)
		return;
	for_each_possible_cpu(cpu) {
		spin_lock_bh(&ln->tables[cpu]->lock);
		lest_cpu_update(ln, cpu);
		spin_unlock_bh(&ln->tables[cpu]->lock);
	}
}

static int lest_sysctl(const struct ctl_table *table, int write, void *buffer,
		       size_t *lenp, loff_t *ppos)
{
	struct lest_net *ln = container_of(table->data, struct lest_net, sysctl);
	struct ctl_table tmp = *table;
	u8 val;
	int ret;

	/* It patches the lookup of every namespace (static key). */
	if (write && !capable(CAP_NET_ADMIN))
		return -EPERM;
	mutex_lock(&lest_mutex);
	val = ln->sysctl;
	tmp.data = &val;
	ret = proc_dou8vec_minmax(&tmp, write, buffer, lenp, ppos);
	if (write && !ret && !!val != !!ln->sysctl) {
		if (val) {
			ret = lest_enable(ln);
			if (!ret)
				WRITE_ONCE(ln->sysctl, val);
		} else {
			WRITE_ONCE(ln->sysctl, 0);
			static_branch_dec(&inet_lest_key);
		}
	} else if (write && !ret) {
		WRITE_ONCE(ln->sysctl, val);
	}
	if (write && !ret)
		lest_cpus_update(ln);
	mutex_unlock(&lest_mutex);
	return ret;
}

/* /proc/net/tcp_local_established: this namespace's counters, per CPU. */
static int lest_seq_show(struct seq_file *seq, void *v)
{
	struct lest_net *ln = lest_net(seq_file_single_net(seq));
	u64 sum[6] = {};
	int cpu, i;

	BUILD_BUG_ON(sizeof(struct inet_lest_stats) !=
		     ARRAY_SIZE(sum) * sizeof(unsigned long));
	seq_puts(seq, "cpu hits misses inserts removes mismatches rekeys\n");
	for_each_possible_cpu(cpu) {
		const struct inet_lest_stats *s =
			&per_cpu_ptr(ln->net->ipv4.tcp_lest, cpu)->stats;
		unsigned long v[ARRAY_SIZE(sum)] = {
			READ_ONCE(s->hits), READ_ONCE(s->misses),
			READ_ONCE(s->inserts), READ_ONCE(s->removes),
			READ_ONCE(s->mismatches), READ_ONCE(s->rekeys),
		};

		seq_printf(seq, "%d %lu %lu %lu %lu %lu %lu\n", cpu,
			   v[0], v[1], v[2], v[3], v[4], v[5]);
		for (i = 0; i < ARRAY_SIZE(sum); i++)
			sum[i] += v[i];
	}
	seq_printf(seq, "all %llu %llu %llu %llu %llu %llu\n",
		   sum[0], sum[1], sum[2], sum[3], sum[4], sum[5]);
	return 0;
}

static struct ctl_table lest_sysctl_table[] = {
	{
		.procname	= "tcp_local_established",
		.maxlen		= sizeof(u8),
		.mode		= 0644,
		.proc_handler	= lest_sysctl,
		.extra1		= SYSCTL_ZERO,
		.extra2		= SYSCTL_TWO,
	},
};

static int __net_init lest_net_init(struct net *net)
{
	struct lest_net *ln = lest_net(net);
	struct ctl_table *table = lest_sysctl_table;

	/*
	 * A new namespace starts off, whatever the initial one's value: on,
	 * it costs a table per possible CPU, not for every container.
	 */
	ln->net = net;
	net->ipv4.tcp_lest = alloc_percpu_gfp(struct inet_lest_cpu,
					      GFP_KERNEL_ACCOUNT);
	if (!net->ipv4.tcp_lest)
		return -ENOMEM;
	if (!net_eq(net, &init_net)) {
		table = kmemdup(table, sizeof(lest_sysctl_table), GFP_KERNEL);
		if (!table)
			goto err;
	}
	table[0].data = &ln->sysctl;
	ln->sysctl_hdr = register_net_sysctl_sz(net, "net/ipv4", table,
						ARRAY_SIZE(lest_sysctl_table));
	if (!ln->sysctl_hdr)
		goto err_table;
	if (!proc_create_net_single("tcp_local_established", 0444,
				    net->proc_net, lest_seq_show, NULL))
		goto err_sysctl;
	return 0;

err_sysctl:
	unregister_net_sysctl_table(ln->sysctl_hdr);
err_table:
	if (!net_eq(net, &init_net))
		kfree(table);
err:
	free_percpu(net->ipv4.tcp_lest);
	return -ENOMEM;
}

static void __net_exit lest_net_exit(struct net *net)
{
	struct lest_net *ln = lest_net(net);
	const struct ctl_table *table = ln->sysctl_hdr->ctl_table_arg;
	bool empty = true;
	int cpu;
	u32 i;

	remove_proc_entry("tcp_local_established", net->proc_net);
	unregister_net_sysctl_table(ln->sysctl_hdr);
	if (!net_eq(net, &init_net))
		kfree(table);
	mutex_lock(&lest_mutex);
	if (ln->sysctl)
		static_branch_dec(&inet_lest_key);
	mutex_unlock(&lest_mutex);
	/*
	 * The namespace's user sockets, which hold it, are gone, and their
	 * entries with them (kernel sockets are never entered).
	 */
	if (ln->tables) {
		for_each_possible_cpu(cpu)
			for (i = 0; i < (1U << ln->bits); i++)
				empty &= hlist_empty(&ln->tables[cpu]->chain[i]);
		/* sockets left would point into freed tables: keep them */
		if (WARN_ONCE(!empty, "tcp_local_established: entries left at netns exit\n"))
			return;
		lest_free_tables(ln->tables);
	}
	free_percpu(net->ipv4.tcp_lest);
}

static struct pernet_operations lest_net_ops = {
	.init	= lest_net_init,
	.exit	= lest_net_exit,
	.id	= &lest_net_id,
	.size	= sizeof(struct lest_net),
};

static int __init inet_lest_init(void)
{
	return register_pernet_subsys(&lest_net_ops);
}
fs_initcall(inet_lest_init);
