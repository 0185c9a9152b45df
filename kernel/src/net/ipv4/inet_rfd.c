// SPDX-License-Identifier: GPL-2.0
/*
 * Receive Flow Deliver (RFD): each packet of a connection processed on the
 * CPU that owns the connection, decided where RPS decides.
 *
 * The active half.  A connection that a server opens (a proxy to its
 * backend) is cheapest when its replies are processed on the CPU that
 * opened it.  With net.ipv4.tcp_rfd on, connect() on CPU c first tries
 * the local ports that encode c, port p encoding CPU (p >> 1) %
 * nr_cpu_ids, and falls back to any free port (counted) when none of them
 * is free.  The ports taken this way are marked in a bitmap of the
 * namespace (8 KiB, made when it first turns RFD on), cleared when the
 * port's bind bucket is freed (its last socket, TIME_WAIT included, gone).
 * A TCP packet to a marked port that is not a bare SYN is handed to the
 * CPU that its port encodes, if that CPU is online.  A port's CPU never
 * changes while the CPU stays online, so the packets of a flow are
 * delivered in order.
 *
 * The passive half.  A connection accepted from a per-core listener on
 * CPU c is owned by c.  Per-core listen accepts it on the CPU that
 * processed its SYN, where RPS sent the SYN; but an idle CPU steals from
 * a busy one, and RPS's choice may not be where the application runs.
 * accept() records the owner in a flow table of the namespace, indexed by
 * the connection's flow hash (sk_rxhash, what RPS hashes), with the CPU
 * that processed its last packet so far and that CPU's backlog tail: as
 * in RFS, the flow moves to its owner only once the packets queued before
 * have been processed, so they stay in order.  The table is written at
 * accept(), and again by a recvmsg() that finds the flow's entry gone
 * (taken by later flows of its set, or the flow's hash changed), which
 * RFS's per-recvmsg write would also have redone; a recvmsg() that finds
 * it reads one cache line.  The entry is cleared when the connection
 * closes.  It needs no per-device flow table.  Listeners without per-core
 * listen keep RPS/RFS.
 *
 * Every other packet (a SYN, a listener's, one to a port that bind()
 * chose) is left to RPS/RFS as before.  The decision needs only the
 * packet's headers and hash, so it works on any device, with or without
 * an RPS map: turning the sysctl on enables the RPS hook (rps_needed).  A
 * packet already on its owner is processed there at once, unless packets
 * wait in this CPU's backlog: they may be the flow's, steered here before
 * the flow's receive CPU changed, and it queues behind them.  The headers
 * are read here rather than with the flow dissector: only IPv4/IPv6 TCP
 * ports are wanted, and the dissector's general walk costs more per
 * packet.
 *
 * The counters, per namespace and per CPU, are in /proc/net/tcp_rfd.
 */

#include <linux/bitmap.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/log2.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/netdevice.h>
#include <linux/overflow.h>
#include <linux/percpu.h>
#include <linux/proc_fs.h>
#include <linux/reciprocal_div.h>
#include <linux/seq_file.h>
#include <linux/skbuff.h>
#include <linux/slab.h>
#include <linux/sysctl.h>
#include <linux/tcp.h>
#include <net/inet_hashtables.h>
#include <net/inet_rfd.h>
#include <net/ip.h>
#include <net/netns/generic.h>
#include <net/rps.h>
#include <net/tcp.h>

DEFINE_STATIC_KEY_FALSE(inet_rfd_key);
DEFINE_STATIC_KEY_FALSE(inet_rfd_marks_key);

/* Per netns, per CPU; unsigned long as the SNMP MIB counters. */
struct rfd_stats {
	unsigned long ports;	 /* connect() got a port of its CPU */
	unsigned long fallbacks; /* connect() found none free: any port */
	unsigned long steered;	 /* packet sent on to its port's CPU */
	unsigned long local;	 /* packet already on its port's CPU */
	unsigned long offline;	 /* its owner offline: left to RPS */
	unsigned long accepts;	 /* accept() recorded a flow's owner */
	unsigned long flow_steered; /* an accepted flow's packet sent on */
	unsigned long flow_local;   /* ... already on its owner */
	unsigned long flow_held; /* ... kept behind its earlier packets */
	unsigned long flow_renewed; /* a read recorded a lost owner again */
	unsigned long flow_full; /* ... found its set's entries all in use */
	unsigned long flow_cleared; /* a close or a new hash cleared an entry */
};

/*
 * The passive half's flow table: a set of RFD_WAYS entries (a cache line)
 * per flow hash bucket, each the owner of a flow as in RFS's
 * rps_sock_flow_table, with the per-flow queue record of RFS's per-device
 * table beside it.  A flow takes its own entry again, else an empty one,
 * else the one used longest ago (the stamp: the accept(), refreshed at
 * most once a second by the flow's packets).  The sets keep live flows
 * where a table of single entries would lose one flow of each colliding
 * pair; a flow that loses its entry all the same gets it back at its next
 * read if an entry of its set is free or unused for RFD_IDLE (so that
 * more live flows than ways do not take the entries from each other at
 * every read), and a connection's close clears its own.
 */
#define RFD_WAYS	4
#define RFD_IDLE	(2 * HZ)

struct rfd_flow {
	u32 ident;		/* hash & ~rfd_cpu_mask | owner; 0: none */
	u32 stamp;		/* jiffies when recorded or last used */
	struct rps_dev_flow cur; /* where its packets go now, and their tail */
};

struct rfd_flows {
	u32 mask;		/* sets, less one */
	struct rfd_flow ent[] ____cacheline_aligned;	/* RFD_WAYS per set */
};

struct rfd_net {
	u8 sysctl_rfd;		/* net.ipv4.tcp_rfd */
	/* ports connect() took for their CPU; set at the first enable */
	unsigned long *ports;
	/* accepted connections' owners; set at the first enable */
	struct rfd_flows *flows;
	struct rfd_stats __percpu *stats;
	struct ctl_table_header *sysctl_hdr;
};

static unsigned int rfd_net_id __read_mostly;
static struct reciprocal_value rfd_ncpus __read_mostly;
/* The low bits of a flow entry's ident that hold its owner. */
static u32 rfd_cpu_mask __read_mostly;

/* The entry of the flow of @hash in its set, or NULL; its ident in *identp. */
static struct rfd_flow *rfd_flow_find(struct rfd_flows *ft, u32 hash,
				      u32 *identp)
{
	struct rfd_flow *f = &ft->ent[(hash & ft->mask) * RFD_WAYS];
	int i;

	for (i = 0; i < RFD_WAYS; i++, f++) {
		u32 ident = READ_ONCE(f->ident);

		if (ident && !((ident ^ hash) & ~rfd_cpu_mask)) {
			*identp = ident;
			return f;
		}
	}
	return NULL;
}

/* Serialises the sysctl's writers with each other and with the keys. */
static DEFINE_MUTEX(rfd_mutex);

static struct rfd_net *rfd_net(const struct net *net)
{
	return net_generic(net, rfd_net_id);
}

/*
 * rfd_net() where RPS decides, in an RCU read side: net_generic() without
 * a nested rcu_read_lock(), a call each way with preemptible RCU.
 */
static struct rfd_net *rfd_net_rcu(const struct net *net)
{
	return rcu_dereference(net->gen)->ptr[rfd_net_id];
}

/* The CPU that port pair @pair (port >> 1) encodes. */
static u32 rfd_pair_cpu(u32 pair)
{
	return pair - nr_cpu_ids * reciprocal_divide(pair, rfd_ncpus);
}

int __inet_rfd_connect_cpu(const struct sock *sk)
{
	/* TCP only: DCCP shares the code, not the bind table */
	if (sk->sk_protocol != IPPROTO_TCP ||
	    !READ_ONCE(rfd_net(sock_net(sk))->sysctl_rfd))
		return -1;
	return raw_smp_processor_id();
}

/*
 * 0 if @port encodes @cpu, else how far the first port of the next pair
 * that encodes @cpu is.
 */
u32 inet_rfd_port_distance(int port, int cpu)
{
	u32 pair = (u32)port >> 1;
	u32 have = rfd_pair_cpu(pair);

	if (have == cpu)
		return 0;
	/* the pairs between, then back to the first port of the pair */
	if (cpu > have)
		return 2 * (cpu - have) - (port & 1);
	return 2 * (cpu + nr_cpu_ids - have) - (port & 1);
}

/* connect() took @port, one of its CPU's, under the port's bhash lock. */
void inet_rfd_port_taken(const struct net *net, int port)
{
	struct rfd_net *rn = rfd_net(net);
	/* pairs with the release in rfd_enable() */
	unsigned long *ports = smp_load_acquire(&rn->ports);

	if (ports)
		set_bit(port, ports);
	this_cpu_inc(rn->stats->ports);
}

void inet_rfd_port_fallback(const struct net *net)
{
	this_cpu_inc(rfd_net(net)->stats->fallbacks);
}

static unsigned long *rfd_marks(const struct net *net)
{
	/* pairs with the release in rfd_enable() */
	return smp_load_acquire(&rfd_net(net)->ports);
}

/*
 * Under the bhash lock of @tb's port, before @tb is freed: the port stays
 * marked while another bucket of it (another VRF's) remains.  Behind a
 * key that is never turned off: the marks must go also while RFD is off.
 */
void __inet_rfd_port_free(const struct kmem_cache *cachep,
			  const struct inet_bind_bucket *tb)
{
	const struct net *net = ib_net(tb);
	unsigned long *ports = rfd_marks(net);
	struct inet_bind_hashbucket *head;
	struct inet_bind_bucket *other;

	if (!ports || cachep != tcp_hashinfo.bind_bucket_cachep ||
	    !test_bit(tb->port, ports))
		return;
	head = &tcp_hashinfo.bhash[inet_bhashfn(net, tb->port,
						tcp_hashinfo.bhash_size)];
	inet_bind_bucket_for_each(other, &head->chain)
		if (other != tb && net_eq(ib_net(other), net) &&
		    other->port == tb->port)
			return;
	clear_bit(tb->port, ports);
}

void __inet_rfd_port_bound(const struct inet_bind_bucket *tb)
{
	unsigned long *ports = rfd_marks(ib_net(tb));

	if (ports && test_bit(tb->port, ports))
		clear_bit(tb->port, ports);
}

/* The TCP header of an IPv4 or IPv6 packet at skb->data, or NULL. */
static const struct tcphdr *rfd_tcp_header(struct sk_buff *skb,
					   struct tcphdr *buf)
{
	unsigned int thoff;

	switch (skb->protocol) {
	case htons(ETH_P_IP): {
		const struct iphdr *iph;
		struct iphdr _iph;

		iph = skb_header_pointer(skb, 0, sizeof(_iph), &_iph);
		if (!iph || iph->version != 4 || iph->ihl < 5 ||
		    iph->protocol != IPPROTO_TCP || ip_is_fragment(iph))
			return NULL;
		thoff = iph->ihl * 4;
		break;
	}
	case htons(ETH_P_IPV6): {
		const struct ipv6hdr *ip6h;
		struct ipv6hdr _ip6h;

		/* Extension headers: left to RPS. */
		ip6h = skb_header_pointer(skb, 0, sizeof(_ip6h), &_ip6h);
		if (!ip6h || ip6h->version != 6 ||
		    ip6h->nexthdr != IPPROTO_TCP)
			return NULL;
		thoff = sizeof(*ip6h);
		break;
	}
	default:
		return NULL;
	}
	return skb_header_pointer(skb, thoff, sizeof(*buf), buf);
}

/*
 * *cpu for a packet whose owner is this CPU: -1, processed at once, when
 * this CPU's backlog is empty; else this CPU, queued behind the packets
 * there (a flow's earlier packets may wait there, steered from another
 * CPU before its receive CPU changed: processing this one at once would
 * overtake them).  netif_rx() queues here in either case.
 */
static int rfd_here(int cpu)
{
	const struct softnet_data *sd = this_cpu_ptr(&softnet_data);

	if (READ_ONCE(sd->input_queue_tail) != READ_ONCE(sd->input_queue_head))
		return cpu;
	return -1;
}

/*
 * An accepted connection's packet: to its owner once the packets queued
 * before its accept() have been processed where they were queued.
 */
static bool rfd_steer_accepted(struct rfd_net *rn, struct sk_buff *skb,
			       int *cpu, struct rps_dev_flow **rflowp)
{
	/* pairs with the release in rfd_flows() */
	struct rfd_flows *ft = smp_load_acquire(&rn->flows);
	struct rfd_flow *f;
	u32 hash, ident, owner, tcpu;

	if (!ft)
		return false;
	skb_reset_network_header(skb);
	hash = skb_get_hash(skb);
	if (!hash)
		return false;
	f = rfd_flow_find(ft, hash, &ident);
	if (!f)
		return false;
	/* in use: not the oldest of its set (a write a second at most) */
	if (unlikely((u32)jiffies - READ_ONCE(f->stamp) > HZ))
		WRITE_ONCE(f->stamp, (u32)jiffies);
	/* the queue record after the ident: pairs with __inet_rfd_accepted() */
	smp_rmb();
	owner = ident & rfd_cpu_mask;
	if (unlikely(owner >= nr_cpu_ids || !cpu_online(owner))) {
		this_cpu_inc(rn->stats->offline);
		return false;
	}
	tcpu = READ_ONCE(f->cur.cpu);
	if (unlikely(tcpu != owner)) {
		/*
		 * RFS's rule: stay where the flow's earlier packets were
		 * queued until that CPU has processed them all.
		 */
		if (tcpu < nr_cpu_ids && cpu_online(tcpu) &&
		    (int)(READ_ONCE(per_cpu(softnet_data, tcpu).input_queue_head) -
			  READ_ONCE(f->cur.last_qtail)) < 0) {
			this_cpu_inc(rn->stats->flow_held);
			*cpu = tcpu;
			*rflowp = &f->cur;
			return true;
		}
		WRITE_ONCE(f->cur.cpu, owner);
	}
	if (owner == smp_processor_id()) {
		this_cpu_inc(rn->stats->flow_local);
		*cpu = rfd_here(owner);
	} else {
		this_cpu_inc(rn->stats->flow_steered);
		*cpu = owner;
	}
	return true;
}

bool __inet_rfd_steer(struct net_device *dev, struct sk_buff *skb, int *cpu,
		      struct rps_dev_flow **rflowp)
{
	struct net *net = dev_net(dev);
	struct rfd_net *rn = rfd_net_rcu(net);
	const struct tcphdr *th;
	unsigned long *ports;
	struct tcphdr _th;
	int low, high, port;
	u32 owner;

	if (!READ_ONCE(rn->sysctl_rfd))
		return false;
	th = rfd_tcp_header(skb, &_th);
	/* A bare SYN opens a passive connection: not ours to place. */
	if (!th || (th->syn && !th->ack))
		return false;
	port = ntohs(th->dest);
	inet_get_local_port_range(net, &low, &high);
	/* only ports connect() took for their CPU: not a listener's */
	ports = smp_load_acquire(&rn->ports);
	if (port < low || port > high || !ports || !test_bit(port, ports))
		return rfd_steer_accepted(rn, skb, cpu, rflowp);
	owner = rfd_pair_cpu(port >> 1);
	if (unlikely(!cpu_online(owner))) {
		this_cpu_inc(rn->stats->offline);
		return false;
	}
	if (owner == smp_processor_id()) {
		/* processed here, as without RPS */
		this_cpu_inc(rn->stats->local);
		*cpu = rfd_here(owner);
	} else {
		this_cpu_inc(rn->stats->steered);
		*cpu = owner;
	}
	return true;
}

/*
 * The flow table of @net, made at its first accept() from a per-core
 * listener, with a flow hash or not (a namespace that only connects out,
 * or inherits tcp_rfd without such listeners, has none, and its packets
 * are not hashed for it): twice as many entries as the namespace's ehash
 * has buckets, within 4096 and 131072 (16 bytes each).  NULL if it cannot be allocated: that
 * accept() is not recorded.
 */
static struct rfd_flows *rfd_flows(struct rfd_net *rn, struct net *net)
{
	struct rfd_flows *ft, *old;
	u32 i, n;

	n = roundup_pow_of_two(clamp(2 * (net->ipv4.tcp_death_row.hashinfo->ehash_mask + 1),
				     4096U, 131072U));
	/* in accept(), charged to its caller: a failure only goes uncounted */
	ft = kvzalloc(struct_size(ft, ent, n), GFP_KERNEL_ACCOUNT | __GFP_NOWARN);
	if (!ft)
		return NULL;
	ft->mask = n / RFD_WAYS - 1;
	for (i = 0; i < n; i++)
		ft->ent[i].cur.filter = RPS_NO_FILTER;
	/* filled in before it is seen; another accept() may have won */
	old = cmpxchg_release(&rn->flows, NULL, ft);
	if (old) {
		kvfree(ft);
		/* pairs with the release above, in the winner */
		return smp_load_acquire(&rn->flows);
	}
	return ft;
}

/*
 * How long ago @f was recorded or used, as of @now; 0 if a packet on
 * another CPU stamped it after @now was read.
 */
static u32 rfd_age(const struct rfd_flow *f, u32 now)
{
	s32 age = now - READ_ONCE(f->stamp);

	return age > 0 ? age : 0;
}

/*
 * Where to record the flow of @hash: its own entry, else an empty one, else
 * the one used longest ago.  Two accept()s racing for a set may pick
 * the same entry: one flow goes unrecorded (left to RPS), no error.
 */
static struct rfd_flow *rfd_flow_slot(struct rfd_flows *ft, u32 hash, u32 now)
{
	struct rfd_flow *set = &ft->ent[(hash & ft->mask) * RFD_WAYS], *f = NULL;
	u32 ident, age, oldest = 0;
	int i;

	for (i = 0; i < RFD_WAYS; i++) {
		ident = READ_ONCE(set[i].ident);
		if (ident && !((ident ^ hash) & ~rfd_cpu_mask))
			return &set[i];
		age = ident ? rfd_age(&set[i], now) : U32_MAX;
		if (!f || age > oldest) {
			f = &set[i];
			oldest = age;
		}
	}
	return f;
}

/* The ident of the flow of @hash owned by @cpu. */
static u32 rfd_ident(u32 hash, int cpu)
{
	return (hash & ~rfd_cpu_mask) | cpu;
}

/*
 * Record @cpu as the owner of @sk's flow (@hash) in @f, the entry of its
 * set that rfd_flow_slot() chose at @now, and, for its close, in the
 * socket.  The packets processed so far went where RPS sent them, to the
 * CPU of sk_incoming_cpu as last seen: the flow stays there until that
 * CPU's backlog has passed its tail of now.
 */
static void rfd_record(struct rfd_flow *f, struct sock *sk, u32 hash,
		       int cpu, u32 now)
{
	u32 ident = rfd_ident(hash, cpu);
	int prev = READ_ONCE(sk->sk_incoming_cpu);

	if (READ_ONCE(f->ident) != ident) {
		WRITE_ONCE(f->ident, 0);
		/*
		 * The cleared ident before the new queue record, so that a
		 * reader rarely pairs the entry's last flow with it.  One
		 * that does (it read the old ident just before) places one
		 * packet on a wrong CPU: a cost, not an error; TCP puts it
		 * back in order.
		 */
		smp_wmb();
	}
	if (prev >= 0 && prev < nr_cpu_ids && prev != cpu) {
		WRITE_ONCE(f->cur.cpu, prev);
		WRITE_ONCE(f->cur.last_qtail,
			   READ_ONCE(per_cpu(softnet_data, prev).input_queue_tail));
	} else {
		WRITE_ONCE(f->cur.cpu, cpu);
	}
	WRITE_ONCE(f->stamp, now);
	/* the queue record before the ident: pairs with rfd_steer_accepted() */
	smp_wmb();
	WRITE_ONCE(f->ident, ident);
	WRITE_ONCE(inet_csk(sk)->icsk_rfd_hash, hash);
}

/* Clear the entry of the flow of @hash owned by @cpu, if still there. */
static bool rfd_clear(struct rfd_flows *ft, u32 hash, int cpu)
{
	u32 want = rfd_ident(hash, cpu), ident;
	struct rfd_flow *f = rfd_flow_find(ft, hash, &ident);

	/* another accept() may be taking the entry: only ours is cleared */
	return f && ident == want && cmpxchg(&f->ident, want, 0) == want;
}

/*
 * @sk, a TCP socket, was accepted on @cpu (this CPU, read once by the
 * caller for every table it enters) from a per-core listener: record @cpu
 * as its flow's owner, in the namespace's table and in the socket, where
 * its reads find it to record it again and its close to clear it.  Under
 * the socket's lock, as they are: a connection that an RST closed while
 * it waited to be accepted records nothing that no close would clear.
 */
void __inet_rfd_accepted(struct sock *sk, int cpu)
{
	struct rfd_net *rn = rfd_net(sock_net(sk));
	struct rfd_flows *ft;
	u32 hash;

	if (sk->sk_protocol != IPPROTO_TCP || !READ_ONCE(rn->sysctl_rfd))
		return;
	/* pairs with the release in rfd_flows() */
	ft = smp_load_acquire(&rn->flows);
	if (unlikely(!ft)) {
		ft = rfd_flows(rn, sock_net(sk));
		if (!ft)
			return;
	}
	lock_sock(sk);
	if (sk->sk_state == TCP_CLOSE)
		goto out;
	WRITE_ONCE(inet_csk(sk)->icsk_rfd_owner, cpu + 1);
	/*
	 * No flow hash: the device gives none, and nothing hashed the
	 * packets before the table existed.  It exists now: the packets of
	 * the connections after this one are hashed (rfd_steer_accepted()),
	 * and their sockets get the hash (sk_rxhash) from their handshake;
	 * this one's reads record it once its packets have one.
	 */
	hash = READ_ONCE(sk->sk_rxhash);
	if (hash) {
		u32 now = jiffies;

		rfd_record(rfd_flow_slot(ft, hash, now), sk, hash, cpu, now);
		this_cpu_inc(rn->stats->accepts);
	}
out:
	release_sock(sk);
}

/*
 * A read of @sk, a TCP socket whose owner accept() recorded, under its
 * lock: the flow's entry is looked up (one cache line) and recorded again
 * if it is gone: later flows of its set took it, or the flow's hash
 * (sk_rxhash, updated by its packets) changed, and then the old hash's
 * entry is cleared.  It takes an entry of its set that is free or unused
 * for RFD_IDLE, not one that another live flow uses.
 */
void __inet_rfd_record_flow(struct sock *sk)
{
	int cpu = READ_ONCE(inet_csk(sk)->icsk_rfd_owner) - 1;
	struct rfd_net *rn = rfd_net(sock_net(sk));
	u32 hash = READ_ONCE(sk->sk_rxhash), old, now;
	struct rfd_flows *ft;
	struct rfd_flow *f;
	u32 ident;

	if (cpu < 0 || !hash || !READ_ONCE(rn->sysctl_rfd))
		return;
	/* made before the owner was recorded; pairs with rfd_flows() */
	ft = smp_load_acquire(&rn->flows);
	if (unlikely(!ft))
		return;
	if (likely(rfd_flow_find(ft, hash, &ident) &&
		   ident == rfd_ident(hash, cpu)))
		return;
	/* a connection that ended takes no entry (its close cleared it) */
	if ((1 << sk->sk_state) & (TCPF_CLOSE | TCPF_LISTEN))
		return;
	old = READ_ONCE(inet_csk(sk)->icsk_rfd_hash);
	if (old && old != hash && rfd_clear(ft, old, cpu))
		this_cpu_inc(rn->stats->flow_cleared);
	now = jiffies;
	f = rfd_flow_slot(ft, hash, now);
	/*
	 * Not an entry another flow uses: another flow of the set, or one
	 * with the same hash and another owner (two flows whose hashes
	 * are equal take the entry from each other at most once per
	 * RFD_IDLE).
	 */
	ident = READ_ONCE(f->ident);
	if (ident && ident != rfd_ident(hash, cpu) &&
	    rfd_age(f, now) < RFD_IDLE) {
		this_cpu_inc(rn->stats->flow_full);
		return;
	}
	rfd_record(f, sk, hash, cpu, now);
	this_cpu_inc(rn->stats->flow_renewed);
}

/*
 * @sk, whose owner accept() recorded, is closing (TCP_CLOSE, under its
 * lock): the entry it recorded last (by the hash it recorded: the last packets of a closing
 * connection may bring another, about one close in ten in the tests on
 * loopback), if still its own, is freed for the flows that go on, and the
 * socket forgets its owner (a later connect() of it is another flow).
 */
void __inet_rfd_closed(struct sock *sk)
{
	struct inet_connection_sock *icsk = inet_csk(sk);
	int cpu = READ_ONCE(icsk->icsk_rfd_owner) - 1;
	u32 hash = READ_ONCE(icsk->icsk_rfd_hash);
	struct rfd_net *rn = rfd_net(sock_net(sk));
	struct rfd_flows *ft;

	WRITE_ONCE(icsk->icsk_rfd_owner, 0);
	WRITE_ONCE(icsk->icsk_rfd_hash, 0);
	/*
	 * The socket holds its namespace: the table is freed only when the
	 * namespace is dismantled, after its last such socket.
	 */
	ft = smp_load_acquire(&rn->flows);
	if (cpu >= 0 && hash && ft && rfd_clear(ft, hash, cpu))
		this_cpu_inc(rn->stats->flow_cleared);
}

/* Under rfd_mutex: a namespace turns RFD on, or off. */
static int rfd_enable(struct rfd_net *rn)
{
	unsigned long *ports;

	if (!rn->ports) {
		ports = bitmap_zalloc(1 << 16, GFP_KERNEL_ACCOUNT);
		if (!ports)
			return -ENOMEM;
		/* zeroed before it is seen */
		smp_store_release(&rn->ports, ports);
		static_branch_enable(&inet_rfd_marks_key);
	}
	static_branch_inc(&rps_needed);
	static_branch_inc(&inet_rfd_key);
	return 0;
}

static void rfd_disable(void)
{
	static_branch_dec(&inet_rfd_key);
	static_branch_dec(&rps_needed);
}

static int rfd_sysctl(const struct ctl_table *table, int write, void *buffer,
		      size_t *lenp, loff_t *ppos)
{
	struct rfd_net *rn = container_of(table->data, struct rfd_net, sysctl_rfd);
	u8 *valp = table->data;
	struct ctl_table tmp = *table;
	u8 val;
	int ret;

	/*
	 * It patches the code of every namespace's receive path: not for
	 * the root of a user namespace alone.
	 */
	if (write && !capable(CAP_NET_ADMIN))
		return -EPERM;
	mutex_lock(&rfd_mutex);
	val = *valp;
	tmp.data = &val;
	ret = proc_dou8vec_minmax(&tmp, write, buffer, lenp, ppos);
	if (write && !ret && val != *valp) {
		/* The keys before the value on, after it off. */
		if (val)
			ret = rfd_enable(rn);
		if (!ret)
			WRITE_ONCE(*valp, val);
		if (!val)
			rfd_disable();
	}
	mutex_unlock(&rfd_mutex);
	return ret;
}

/* /proc/net/tcp_rfd: this namespace's counters, a row per CPU. */
static int rfd_seq_show(struct seq_file *seq, void *v)
{
	struct rfd_net *rn = rfd_net(seq_file_single_net(seq));
	u64 sum[12] = {};
	int cpu, i;

	BUILD_BUG_ON(sizeof(struct rfd_stats) !=
		     ARRAY_SIZE(sum) * sizeof(unsigned long));

	seq_puts(seq, "cpu ports fallbacks steered local offline accepts flow_steered flow_local flow_held flow_renewed flow_full flow_cleared\n");
	for_each_possible_cpu(cpu) {
		const struct rfd_stats *s = per_cpu_ptr(rn->stats, cpu);
		unsigned long v[ARRAY_SIZE(sum)] = {
			READ_ONCE(s->ports), READ_ONCE(s->fallbacks),
			READ_ONCE(s->steered), READ_ONCE(s->local),
			READ_ONCE(s->offline), READ_ONCE(s->accepts),
			READ_ONCE(s->flow_steered), READ_ONCE(s->flow_local),
			READ_ONCE(s->flow_held), READ_ONCE(s->flow_renewed),
			READ_ONCE(s->flow_full), READ_ONCE(s->flow_cleared),
		};

		seq_printf(seq, "%d", cpu);
		for (i = 0; i < ARRAY_SIZE(sum); i++) {
			seq_printf(seq, " %lu", v[i]);
			sum[i] += v[i];
		}
		seq_putc(seq, '\n');
	}
	seq_puts(seq, "all");
	for (i = 0; i < ARRAY_SIZE(sum); i++)
		seq_printf(seq, " %llu", sum[i]);
	seq_putc(seq, '\n');
	return 0;
}

static struct ctl_table rfd_sysctl_table[] = {
	{
		.procname	= "tcp_rfd",
		.maxlen		= sizeof(u8),
		.mode		= 0644,
		.proc_handler	= rfd_sysctl,
		.extra1		= SYSCTL_ZERO,
		.extra2		= SYSCTL_ONE,
	},
};

static int __net_init rfd_net_init(struct net *net)
{
	struct rfd_net *rn = rfd_net(net);
	struct ctl_table *table = rfd_sysctl_table;

	rn->stats = alloc_percpu_gfp(struct rfd_stats, GFP_KERNEL_ACCOUNT);
	if (!rn->stats)
		return -ENOMEM;
	/*
	 * A new namespace starts with the initial namespace's setting, set
	 * before its sysctl can be written.
	 */
	if (!net_eq(net, &init_net)) {
		mutex_lock(&rfd_mutex);
		if (READ_ONCE(rfd_net(&init_net)->sysctl_rfd) && !rfd_enable(rn))
			rn->sysctl_rfd = 1;
		mutex_unlock(&rfd_mutex);
	}
	if (!net_eq(net, &init_net)) {
		table = kmemdup(table, sizeof(rfd_sysctl_table), GFP_KERNEL);
		if (!table)
			goto err;
	}
	table[0].data = &rn->sysctl_rfd;
	rn->sysctl_hdr = register_net_sysctl_sz(net, "net/ipv4", table,
						ARRAY_SIZE(rfd_sysctl_table));
	if (!rn->sysctl_hdr)
		goto err_table;
	if (!proc_create_net_single("tcp_rfd", 0444, net->proc_net,
				    rfd_seq_show, NULL))
		goto err_sysctl;
	return 0;

err_sysctl:
	unregister_net_sysctl_table(rn->sysctl_hdr);
err_table:
	if (!net_eq(net, &init_net))
		kfree(table);
err:
	mutex_lock(&rfd_mutex);
	if (rn->sysctl_rfd)
		rfd_disable();
	mutex_unlock(&rfd_mutex);
	bitmap_free(rn->ports);
	kvfree(rn->flows);
	free_percpu(rn->stats);
	return -ENOMEM;
}

static void __net_exit rfd_net_exit(struct net *net)
{
	struct rfd_net *rn = rfd_net(net);
	const struct ctl_table *table = rn->sysctl_hdr->ctl_table_arg;
	struct rfd_flows *flows = rn->flows;
	unsigned long *ports = rn->ports;

	remove_proc_entry("tcp_rfd", net->proc_net);
	unregister_net_sysctl_table(rn->sysctl_hdr);
	if (!net_eq(net, &init_net))
		kfree(table);
	mutex_lock(&rfd_mutex);
	if (rn->sysctl_rfd)
		rfd_disable();
	mutex_unlock(&rfd_mutex);
	/*
	 * Bind buckets of the namespace may still be freed after this (its
	 * TIME_WAIT sockets go in TCP's exit), with BH off, an RCU read
	 * side: they see NULL, or the bitmap until a grace period is over.
	 */
	if (ports) {
		WRITE_ONCE(rn->ports, NULL);
		kfree_rcu_mightsleep(ports);
	}
	/* RPS reads it in an RCU read side: gone after a grace period */
	if (flows) {
		WRITE_ONCE(rn->flows, NULL);
		kvfree_rcu_mightsleep(flows);
	}
	free_percpu(rn->stats);
}

static struct pernet_operations rfd_net_ops = {
	.init	= rfd_net_init,
	.exit	= rfd_net_exit,
	.id	= &rfd_net_id,
	.size	= sizeof(struct rfd_net),
};

static int __init inet_rfd_init(void)
{
	rfd_ncpus = reciprocal_value(nr_cpu_ids);
	rfd_cpu_mask = roundup_pow_of_two(nr_cpu_ids) - 1;
	return register_pernet_subsys(&rfd_net_ops);
}
fs_initcall(inet_rfd_init);
