/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Receive Flow Deliver (RFD), the active half: connect() on CPU c picks a
 * local port that encodes c, and the receive path steers the packets of
 * such a port to c, in software, where RPS decides.
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
#include <linux/jump_label.h>

struct net;
struct net_device;
struct sk_buff;

#ifdef CONFIG_TCP_RFD

/* True while net.ipv4.tcp_rfd is on in at least one namespace. */
extern struct static_key_false inet_rfd_key;

int __inet_rfd_connect_cpu(const struct net *net);
u32 inet_rfd_port_distance(int port, int cpu);
void inet_rfd_port_taken(const struct net *net, int port);
void inet_rfd_port_fallback(const struct net *net);
void inet_rfd_port_free(const struct net *net, unsigned short port);
bool __inet_rfd_steer(struct net_device *dev, struct sk_buff *skb, int *cpu);

/*
 * connect(): the CPU whose ports to try first, or -1 when RFD is off in
 * @net.
 */
static inline int inet_rfd_connect_cpu(const struct net *net)
{
	if (static_branch_unlikely(&inet_rfd_key))
		return __inet_rfd_connect_cpu(net);
	return -1;
}

/*
 * Where RPS decides: true if RFD places @skb (an IPv4 or IPv6 TCP packet
 * at skb->data), with *@cpu the CPU that its destination port encodes, or
 * -1 when that is this CPU; false to leave the packet to RPS/RFS.
 */
static inline bool inet_rfd_steer(struct net_device *dev, struct sk_buff *skb,
				  int *cpu)
{
	if (static_branch_unlikely(&inet_rfd_key))
		return __inet_rfd_steer(dev, skb, cpu);
	return false;
}

#else /* !CONFIG_TCP_RFD */

static inline int inet_rfd_connect_cpu(const struct net *net)
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

static inline void inet_rfd_port_free(const struct net *net,
				      unsigned short port)
{
}

static inline bool inet_rfd_steer(struct net_device *dev, struct sk_buff *skb,
				  int *cpu)
{
	return false;
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
