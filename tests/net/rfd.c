// SPDX-License-Identifier: GPL-2.0
/*
 * rfd: Receive Flow Deliver (net.ipv4.tcp_rfd), for the connections a host
 * opens and those it accepts from a per-core listener.
 * Each test runs in a network namespace of its own with the sysctl on
 * (unless it says otherwise):
 *
 *  - rfd.encodes_cpu: connect() on every CPU we may run on gets local
 *    ports that encode that CPU ((port >> 1) % nr_cpu_ids), IPv4, IPv6
 *    and v4-mapped; /proc/net/tcp_rfd counts them, no fallback.
 *  - rfd.fallback, rfd.fallback_netns_range: with a range of 8 ports
 *    (IP_LOCAL_PORT_RANGE, scanned by 1; ip_local_port_range, by 2),
 *    connect() takes the CPU's own ports first, then the others (counted
 *    as fallbacks), then fails with EADDRNOTAVAIL, as without RFD.
 *  - rfd.listener_in_range: a listener on a port of the range (reserved
 *    or not) that encodes another CPU: its packets are not steered.
 *  - rfd.bound_port_not_steered: a socket bound to a port of the range
 *    before connect(): its replies are not steered.
 *  - rfd.raw_tcp_socket_read: a read of a raw IPv4 socket of protocol
 *    IPPROTO_TCP, with RFD on, is not taken for a TCP socket's (a guard
 *    for KASAN: a hook in inet_recvmsg() once read past such a socket).
 *  - rfd.dccp_bind_keeps_tcp_port: a DCCP socket bound to the number of a
 *    TCP connection's RFD port leaves that port steered (DCCP shares
 *    inet_csk_get_port() with TCP, not its ports).
 *  - rfd.off_counts_nothing: with the sysctl off nothing is counted.
 *  - rfd.steers_replies: on loopback a packet is processed on the CPU that
 *    sends it; with RFD on, every reply to a connection made on CPU c is
 *    processed on c (SO_INCOMING_CPU after each), with it off on the
 *    sender's CPU.
 *  - rfd.veth, rfd.veth_gro: the same across a veth pair into a second
 *    namespace (the server's), each reply checked; with GRO on, through
 *    NAPI and netif_receive_skb_list().
 *  - rfd.proxy, rfd.proxy_plain_listener, rfd.proxy_off: a client in a
 *    second namespace -> a proxy here -> a backend in a third.  With RFD
 *    on and a per-core listener, every packet the proxy reads, from the
 *    connection it accepted (taken from another CPU's clone) and from the
 *    one it opened, was processed on the proxy's CPU; a listener without
 *    per-core listen keeps RPS's placement; off, neither side is moved.
 *  - rfd.channel_connect: a /dev/megapipe CONNECT submitted on CPU c gets a
 *    port of c (the server sees it as the peer's port).
 *  - rfd_small.owner_recorded_again_at_recvmsg: in a namespace whose flow
 *    table has its smallest size (1024 sets of 4), 16 connections accepted
 *    on one CPU, then 4096 more kept open: some of the 16 lose their
 *    entries (their next packet is processed where it was sent), and each
 *    gets it back at its next recvmsg() once the 4096 are idle for 2 s
 *    (the packet after that is processed on the accepting CPU).
 *  - rfd_small.new_flow_hash_recorded_at_read: a client whose segments
 *    are dropped until a retransmission timeout picks a new flow hash:
 *    its next segment finds no entry, the server's next read records the
 *    owner under the new hash and clears the old entry.
 *  - rfd_small.close_clears_the_entry: the same with the 4096 closed one
 *    after another: each close frees its entry (also when its last packet
 *    brought another flow hash, which about one in ten does here), and
 *    none of the 16 loses its own.
 *  - rfd_hotplug.owner_offline, accepted_owner_offline: the CPU a port
 *    encodes, or the CPU that accepted a connection from a per-core
 *    listener, goes offline: its packets are left to RPS (counted) and
 *    still arrive; back online, they go to it again.
 *  - sysctl: only 0 and 1; a new namespace starts with the initial one's
 *    value.
 */
#include <fcntl.h>
#include <pthread.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "megapipe_lib.h"
#include "percore_lib.h"

#ifndef IP_LOCAL_PORT_RANGE
#define IP_LOCAL_PORT_RANGE	51
#endif

#define RFD_SYSCTL	"/proc/sys/net/ipv4/tcp_rfd"
#define RFD_PROC	"/proc/net/tcp_rfd"
#define MAX_CPUS	16
#define ROUNDS		8

struct rfd_counters {
	long long ports, fallbacks, steered, local, offline;
	long long accepts, flow_steered, flow_local, flow_held;
	long long flow_renewed, flow_full, flow_cleared;
};

/* The "all" row of /proc/net/tcp_rfd; 0 or -1. */
static int rfd_read(struct rfd_counters *c)
{
	char line[256];
	FILE *f = fopen(RFD_PROC, "re");
	int ret = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "all %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld",
			   &c->ports, &c->fallbacks, &c->steered, &c->local,
			   &c->offline, &c->accepts, &c->flow_steered,
			   &c->flow_local, &c->flow_held, &c->flow_renewed,
			   &c->flow_full, &c->flow_cleared) == 12)
			ret = 0;
	fclose(f);
	return ret;
}


static int port_cpu(int port, int ncpu_ids)
{
	return (port >> 1) % ncpu_ids;
}

static int port_range(int *low, int *high)
{
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "re");
	int ret;

	if (!f)
		return -1;
	ret = fscanf(f, "%d %d", low, high) == 2 ? 0 : -1;
	fclose(f);
	return ret;
}

/* Where a test socket connects: loopback of family, or v4-mapped. */
enum { V4, V6, V4MAPPED };

static socklen_t dst_addr(int kind, uint16_t port, struct sockaddr_storage *ss)
{
	struct sockaddr_storage v4;

	if (kind == V6)
		return lib_lo_addr(AF_INET6, port, ss);
	lib_lo_addr(AF_INET, port, &v4);
	if (kind == V4) {
		memcpy(ss, &v4, sizeof(v4));
		return sizeof(struct sockaddr_in);
	}
	lib_addr_as(AF_INET6, &v4, ss);
	return sizeof(struct sockaddr_in6);
}

/* A socket of the kind's family, with IP_LOCAL_PORT_RANGE if @range. */
static int dial(int kind, uint16_t port, uint32_t range)
{
	struct sockaddr_storage ss;
	socklen_t len = dst_addr(kind, port, &ss);
	int fd = socket(kind == V4 ? AF_INET : AF_INET6,
			SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if ((range && setsockopt(fd, IPPROTO_IP, IP_LOCAL_PORT_RANGE, &range,
				 sizeof(range))) ||
	    connect(fd, (struct sockaddr *)&ss, len)) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

FIXTURE(rfd) {
	int cpus[MAX_CPUS];
	int n;
	int ncpu_ids;
	int low, high;
	int l;		/* listener on LIB_PORT (below the local range) */
};

FIXTURE_VARIANT(rfd) {
	int kind;
};

FIXTURE_VARIANT_ADD(rfd, ipv4) { .kind = V4 };
FIXTURE_VARIANT_ADD(rfd, ipv6) { .kind = V6 };
FIXTURE_VARIANT_ADD(rfd, v4mapped) { .kind = V4MAPPED };

FIXTURE_SETUP(rfd)
{
	self->l = -1;
	self->n = lib_cpus(self->cpus, MAX_CPUS);
	ASSERT_LT(0, self->n);
	self->ncpu_ids = lib_nr_cpu_ids();
	ASSERT_LT(0, self->ncpu_ids);
	if (lib_netns_enter()) {
		if (errno == EPERM)
			SKIP(return, "needs CAP_SYS_ADMIN for a netns");
		ASSERT_EQ(0, -errno);
	}
	ASSERT_EQ(0, lib_raise_nofile(1024));
	ASSERT_EQ(0, lib_sysctl_write(RFD_SYSCTL, 1)) {
		TH_LOG("%s: %s", RFD_SYSCTL, strerror(errno));
	}
	ASSERT_EQ(0, port_range(&self->low, &self->high));
	ASSERT_GT(self->low, LIB_PORT);
	self->l = lib_listener(variant->kind == V6 ? AF_INET6 : AF_INET,
			       LIB_PORT, 512, 0);
	ASSERT_LE(0, self->l);
}

FIXTURE_TEARDOWN(rfd)
{
	if (self->l >= 0)
		close(self->l);
}

TEST_F(rfd, encodes_cpu)
{
	int k = 16, i, j, port, fds[16];
	struct rfd_counters a, b;

	ASSERT_EQ(0, rfd_read(&a));
	for (i = 0; i < self->n; i++) {
		ASSERT_EQ(0, lib_pin(self->cpus[i]));
		for (j = 0; j < k; j++) {
			fds[j] = dial(variant->kind, LIB_PORT, 0);
			ASSERT_LE(0, fds[j]) {
				TH_LOG("connect #%d on cpu %d: %s", j,
				       self->cpus[i], strerror(errno));
			}
			port = lib_sock_port(fds[j]);
			ASSERT_LE(self->low, port);
			ASSERT_GE(self->high, port);
			EXPECT_EQ(self->cpus[i], port_cpu(port, self->ncpu_ids)) {
				TH_LOG("connect on cpu %d got port %d (cpu %d of %d)",
				       self->cpus[i], port,
				       port_cpu(port, self->ncpu_ids),
				       self->ncpu_ids);
			}
		}
		for (j = 0; j < k; j++)
			close(fds[j]);
	}
	ASSERT_EQ(0, rfd_read(&b));
	EXPECT_EQ(k * self->n, b.ports - a.ports);
	EXPECT_EQ(0, b.fallbacks - a.fallbacks);
}

/*
 * 8 ports from an odd one, @lo, whose pair is @cpu's, so that the range
 * holds @cpu's ports whatever nr_cpu_ids is: the socket's own
 * IP_LOCAL_PORT_RANGE (@sockopt: connect() scans by 1) or the
 * namespace's ip_local_port_range (by 2, one parity then the other).
 */
static void fallback(struct __test_metadata *_metadata, int kind, int cpu,
		     int ncpu_ids, bool sockopt)
{
	int lo = 2 * (20500 / ncpu_ids * ncpu_ids + cpu) + 1;
	int width = 8, enc = 0, i, port;
	uint32_t range = (uint32_t)(lo + width - 1) << 16 | lo;
	struct rfd_counters a, b;
	int fds[8];

	if (!sockopt) {
		char v[32];
		FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "we");

		ASSERT_NE(NULL, f);
		snprintf(v, sizeof(v), "%d %d\n", lo, lo + width - 1);
		ASSERT_LT(0, fputs(v, f));
		ASSERT_EQ(0, fclose(f));
		range = 0;
	}
	for (i = lo; i < lo + width; i++)
		enc += port_cpu(i, ncpu_ids) == cpu;
	ASSERT_LE(1, enc);
	ASSERT_EQ(0, lib_pin(cpu));
	ASSERT_EQ(0, rfd_read(&a));
	for (i = 0; i < width; i++) {
		fds[i] = dial(kind, LIB_PORT, range);
		ASSERT_LE(0, fds[i]) {
			TH_LOG("connect #%d of %d: %s", i, width, strerror(errno));
		}
		port = lib_sock_port(fds[i]);
		ASSERT_LE(lo, port);
		ASSERT_GT(lo + width, port);
		/* first every port of ours, then the others */
		EXPECT_EQ(i < enc, port_cpu(port, ncpu_ids) == cpu) {
			TH_LOG("connect #%d got port %d (cpu %d), %d ports are cpu %d's",
			       i, port, port_cpu(port, ncpu_ids), enc, cpu);
		}
	}
	/* the range is full: as without RFD */
	EXPECT_EQ(-1, dial(kind, LIB_PORT, range));
	EXPECT_EQ(EADDRNOTAVAIL, errno);
	ASSERT_EQ(0, rfd_read(&b));
	EXPECT_EQ(enc, b.ports - a.ports);
	/* each connect that found none of ours free, the failed one too */
	EXPECT_EQ(width - enc + 1, b.fallbacks - a.fallbacks);
	for (i = 0; i < width; i++)
		close(fds[i]);
}

TEST_F(rfd, fallback)
{
	fallback(_metadata, variant->kind, self->cpus[0], self->ncpu_ids, true);
}

TEST_F(rfd, fallback_netns_range)
{
	fallback(_metadata, variant->kind, self->cpus[self->n - 1],
		 self->ncpu_ids, false);
}

/*
 * A listener on a port inside the range that encodes the other CPU: its
 * packets are not steered (only ports connect() took for their CPU are),
 * whether the port is in ip_local_reserved_ports or not.
 */
TEST_F(rfd, listener_in_range)
{
	int ccpu, scpu, port, l, c, s, cpu, reserved;
	struct sockaddr_storage ss;
	socklen_t len;
	char buf[64] = "l";

	if (self->n < 2)
		SKIP(return, "needs two CPUs");
	ccpu = self->cpus[0];
	scpu = self->cpus[1];
	port = 2 * (20000 / self->ncpu_ids * self->ncpu_ids + scpu);
	ASSERT_EQ(scpu, port_cpu(port, self->ncpu_ids));
	ASSERT_LE(self->low, port);
	for (reserved = 0; reserved <= 1; reserved++) {
		FILE *f = fopen("/proc/sys/net/ipv4/ip_local_reserved_ports", "we");

		ASSERT_NE(NULL, f);
		if (reserved)
			fprintf(f, "%d\n", port);
		else
			fputs("\n", f);
		ASSERT_EQ(0, fclose(f));
		l = lib_listener(variant->kind == V6 ? AF_INET6 : AF_INET, port, 4, 0);
		ASSERT_LE(0, l);
		ASSERT_EQ(0, lib_pin(ccpu));
		len = dst_addr(variant->kind, port, &ss);
		c = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		ASSERT_LE(0, c);
		ASSERT_EQ(0, connect(c, (struct sockaddr *)&ss, len));
		s = accept(l, NULL, NULL);
		ASSERT_LE(0, s);
		ASSERT_EQ(sizeof(buf), write(c, buf, sizeof(buf)));
		ASSERT_EQ(sizeof(buf), read(s, buf, sizeof(buf)));
		len = sizeof(cpu);
		ASSERT_EQ(0, getsockopt(s, SOL_SOCKET, SO_INCOMING_CPU, &cpu, &len));
		/* sent on ccpu: processed there */
		EXPECT_EQ(ccpu, cpu) {
			TH_LOG("listener port %d (cpu %d), %sreserved: data processed on cpu %d",
			       port, scpu, reserved ? "" : "not ", cpu);
		}
		close(s);
		close(c);
		close(l);
	}
}

TEST_F(rfd, off_counts_nothing)
{
	struct rfd_counters a, b;
	int i, fd, a_fd;
	char buf[64] = "x";

	ASSERT_EQ(0, lib_sysctl_write(RFD_SYSCTL, 0));
	ASSERT_EQ(0, lib_sysctl_read(RFD_SYSCTL));
	ASSERT_EQ(0, rfd_read(&a));
	for (i = 0; i < 8; i++) {
		fd = dial(variant->kind, LIB_PORT, 0);
		ASSERT_LE(0, fd);
		a_fd = accept(self->l, NULL, NULL);
		ASSERT_LE(0, a_fd);
		ASSERT_EQ(sizeof(buf), write(a_fd, buf, sizeof(buf)));
		ASSERT_EQ(sizeof(buf), read(fd, buf, sizeof(buf)));
		close(a_fd);
		close(fd);
	}
	ASSERT_EQ(0, rfd_read(&b));
	EXPECT_EQ(0, b.ports - a.ports);
	EXPECT_EQ(0, b.fallbacks - a.fallbacks);
	EXPECT_EQ(0, b.steered - a.steered);
	EXPECT_EQ(0, b.local - a.local);
}

/*
 * Ping-pong between a client socket @c, used on @ccpu, and the server end
 * @s, written on @scpu; after each reply, the CPU that processed it.
 * Returns how many of ROUNDS replies were processed on @want, or -1.
 */
static int replies_on(int c, int ccpu, int s, int scpu, int want)
{
	char buf[64];
	int r, cpu, hits = 0;
	socklen_t len;

	memset(buf, 'r', sizeof(buf));
	for (r = 0; r < ROUNDS; r++) {
		if (lib_pin(scpu) || write(s, buf, sizeof(buf)) != sizeof(buf))
			return -1;
		if (lib_pin(ccpu) || read(c, buf, sizeof(buf)) != sizeof(buf))
			return -1;
		len = sizeof(cpu);
		if (getsockopt(c, SOL_SOCKET, SO_INCOMING_CPU, &cpu, &len))
			return -1;
		hits += cpu == want;
	}
	return hits;
}

TEST_F(rfd, steers_replies)
{
	int ccpu, scpu, c, s, on, cpu;
	struct rfd_counters a, b;
	socklen_t len;

	if (self->n < 2)
		SKIP(return, "needs two CPUs");
	ccpu = self->cpus[0];
	scpu = self->cpus[1];
	for (on = 1; on >= 0; on--) {
		ASSERT_EQ(0, lib_sysctl_write(RFD_SYSCTL, on));
		ASSERT_EQ(0, lib_pin(ccpu));
		c = dial(variant->kind, LIB_PORT, 0);
		ASSERT_LE(0, c);
		s = accept(self->l, NULL, NULL);
		ASSERT_LE(0, s);
		ASSERT_EQ(0, rfd_read(&a));
		/* on loopback, off: processed where sent */
		EXPECT_EQ(ROUNDS, replies_on(c, ccpu, s, scpu, on ? ccpu : scpu)) {
			TH_LOG("tcp_rfd=%d: replies sent on cpu %d to a port of cpu %d",
			       on, scpu, ccpu);
		}
		ASSERT_EQ(0, rfd_read(&b));
		/*
		 * On, the client's packets (its ACKs, sent where it processes
		 * the replies) go to a port below the range: not steered.
		 */
		len = sizeof(cpu);
		ASSERT_EQ(0, getsockopt(s, SOL_SOCKET, SO_INCOMING_CPU, &cpu, &len));
		if (on) {
			EXPECT_EQ(ccpu, cpu);
		}
		if (on) {
			EXPECT_LE(ROUNDS, b.steered - a.steered);
		} else {
			EXPECT_EQ(0, b.steered - a.steered);
		}
		close(s);
		close(c);
	}
}

TEST_F(rfd, bound_port_not_steered)
{
	int ccpu, scpu, c, s, port, cpu;
	struct sockaddr_storage ss;
	socklen_t len;

	if (self->n < 2)
		SKIP(return, "needs two CPUs");
	ccpu = self->cpus[0];
	scpu = self->cpus[1];
	/* a port of the range that encodes the server's CPU */
	port = 2 * (21000 / self->ncpu_ids * self->ncpu_ids + scpu);
	ASSERT_EQ(scpu, port_cpu(port, self->ncpu_ids));
	ASSERT_EQ(0, lib_pin(ccpu));
	len = dst_addr(variant->kind, port, &ss);
	c = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_LE(0, c);
	ASSERT_EQ(0, bind(c, (struct sockaddr *)&ss, len));
	len = dst_addr(variant->kind, LIB_PORT, &ss);
	ASSERT_EQ(0, connect(c, (struct sockaddr *)&ss, len));
	s = accept(self->l, NULL, NULL);
	ASSERT_LE(0, s);
	/* replies sent on ccpu stay there: the port is not RFD's */
	EXPECT_EQ(ROUNDS, replies_on(c, ccpu, s, ccpu, ccpu));
	len = sizeof(cpu);
	ASSERT_EQ(0, getsockopt(c, SOL_SOCKET, SO_INCOMING_CPU, &cpu, &len));
	EXPECT_EQ(ccpu, cpu);
	close(s);
	close(c);
}

#ifndef SOCK_DCCP
#define SOCK_DCCP	6
#endif
#ifndef IPPROTO_DCCP
#define IPPROTO_DCCP	33
#endif

TEST_F(rfd, dccp_bind_keeps_tcp_port)
{
	int ccpu, scpu, c, s, d, port;
	struct sockaddr_storage ss;
	socklen_t len;

	if (variant->kind == V4MAPPED)
		SKIP(return, "IPv4 and IPv6 only");
	if (self->n < 2)
		SKIP(return, "needs two CPUs");
	ccpu = self->cpus[0];
	scpu = self->cpus[1];
	ASSERT_EQ(0, lib_pin(ccpu));
	c = dial(variant->kind, LIB_PORT, 0);
	ASSERT_LE(0, c);
	s = accept(self->l, NULL, NULL);
	ASSERT_LE(0, s);
	port = lib_sock_port(c);
	ASSERT_EQ(ccpu, port_cpu(port, self->ncpu_ids));
	d = socket(variant->kind == V4 ? AF_INET : AF_INET6,
		   SOCK_DCCP | SOCK_CLOEXEC, IPPROTO_DCCP);
	if (d < 0) {
		close(s);
		close(c);
		SKIP(return, "no DCCP: %s", strerror(errno));
	}
	/* TCP's port number, in DCCP's own port table: it is free there */
	len = dst_addr(variant->kind, port, &ss);
	ASSERT_EQ(0, bind(d, (struct sockaddr *)&ss, len)) {
		TH_LOG("DCCP bind to %d: %s", port, strerror(errno));
	}
	EXPECT_EQ(ROUNDS, replies_on(c, ccpu, s, scpu, ccpu)) {
		TH_LOG("replies to TCP port %d after a DCCP bind() of it", port);
	}
	close(d);
	close(s);
	close(c);
}

/*
 * A raw IPv4 socket of protocol IPPROTO_TCP is no TCP socket: its reads
 * must not take it for one (a TCP socket's fields lie past its end).
 */
TEST_F(rfd, raw_tcp_socket_read)
{
	char buf[64];
	int r;

	if (variant->kind != V4)
		SKIP(return, "IPv4 only");
	r = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_TCP);
	ASSERT_LE(0, r);
	EXPECT_EQ(-1, recv(r, buf, sizeof(buf), MSG_DONTWAIT));
	EXPECT_EQ(EAGAIN, errno);
	close(r);
}

/* What a process in a namespace of its own behind a veth pair does. */
enum peer_role {
	PEER_ECHO,	/* answer each byte read with 64 */
	PEER_CLIENT,	/* send bytes to us, each after the last's answer */
};

struct peer {
	pid_t pid;
	int rd, wr;	/* pipes from and to it */
};

/* 10.<81 + i>.0.<host> in network order */
static uint32_t peer_ip(int i, int host)
{
	return htonl(0x0a000000 | (81 + i) << 16 | host);
}

/*
 * A child process, pinned to @cpu, in a new namespace joined to ours by
 * the veth pair rfdv<2i> (ours, 10.<81+i>.0.1/24) and rfdv<2i+1> (its,
 * .2).  PEER_ECHO listens on .2:LIB_PORT, says 'l', and answers each byte
 * of the one connection it accepts with 64.  PEER_CLIENT connects to our
 * .1:LIB_PORT + 1, says 'c', waits for a 'g', then sends a byte and reads
 * its 64-byte answer ROUNDS times.  0, or -1.
 */
static int peer_start(struct peer *pr, int i, int cpu, enum peer_role role)
{
	int p[2], q[2];
	char ch, cmd[256];

	if (pipe(p) || pipe(q))
		return -1;
	pr->pid = fork();
	if (pr->pid < 0)
		return -1;
	if (pr->pid == 0) {
		struct sockaddr_in a = { .sin_family = AF_INET };
		int l, s, r, one = 1;
		char buf[64];

		close(p[0]);
		close(q[1]);
		if (lib_pin(cpu) || unshare(CLONE_NEWNET))
			_exit(1);
		/* the parent moves the peer in, then we configure it */
		if (write(p[1], "n", 1) != 1 || read(q[0], &ch, 1) != 1)
			_exit(2);
		snprintf(cmd, sizeof(cmd),
			 "ip link set lo up && ip addr add 10.%d.0.2/24 dev rfdv%d && ip link set rfdv%d up",
			 81 + i, 2 * i + 1, 2 * i + 1);
		if (system(cmd))
			_exit(3);
		memset(buf, 's', sizeof(buf));
		if (role == PEER_ECHO) {
			a.sin_port = htons(LIB_PORT);
			a.sin_addr.s_addr = peer_ip(i, 2);
			l = socket(AF_INET, SOCK_STREAM, 0);
			if (l < 0 ||
			    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
			    bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 4))
				_exit(4);
			if (write(p[1], "l", 1) != 1)
				_exit(5);
			s = accept(l, NULL, NULL);
			if (s < 0)
				_exit(6);
			while (read(s, &ch, 1) == 1)
				if (write(s, buf, sizeof(buf)) != sizeof(buf))
					_exit(7);
			_exit(0);
		}
		a.sin_port = htons(LIB_PORT + 1);
		a.sin_addr.s_addr = peer_ip(i, 1);
		s = socket(AF_INET, SOCK_STREAM, 0);
		if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof(a)))
			_exit(4);
		if (write(p[1], "c", 1) != 1 || read(q[0], &ch, 1) != 1)
			_exit(5);
		for (r = 0; r < ROUNDS; r++)
			if (write(s, "q", 1) != 1 ||
			    recv(s, buf, sizeof(buf), MSG_WAITALL) != sizeof(buf))
				_exit(6);
		_exit(0);
	}
	close(p[1]);
	close(q[0]);
	pr->rd = p[0];
	pr->wr = q[1];
	if (read(pr->rd, &ch, 1) != 1)
		return -1;
	snprintf(cmd, sizeof(cmd),
		 "ip link add rfdv%d type veth peer name rfdv%d netns %d && "
		 "ip addr add 10.%d.0.1/24 dev rfdv%d && ip link set rfdv%d up",
		 2 * i, 2 * i + 1, (int)pr->pid, 81 + i, 2 * i, 2 * i);
	if (system(cmd) || write(pr->wr, "g", 1) != 1 ||
	    read(pr->rd, &ch, 1) != 1)
		return -1;
	return 0;
}

/* Waits for the peer: true if it exited with 0. */
static bool peer_end(struct peer *pr)
{
	int st;

	close(pr->rd);
	close(pr->wr);
	return waitpid(pr->pid, &st, 0) == pr->pid && WIFEXITED(st) &&
	       WEXITSTATUS(st) == 0;
}

/*
 * With @gro, GRO on the client's end of the pair: veth then receives
 * through NAPI and netif_receive_skb_list(), not netif_rx().
 */
static void veth_rounds(struct __test_metadata *_metadata, int ccpu, int scpu,
			int ncpu_ids, bool gro)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(LIB_PORT) };
	int c, r, cpu, hits = 0;
	struct rfd_counters x, y;
	struct peer srv;
	socklen_t len;
	char buf[64];

	ASSERT_EQ(0, peer_start(&srv, 0, scpu, PEER_ECHO)) {
		TH_LOG("veth pair into a second namespace: %s", strerror(errno));
	}
	if (gro)
		ASSERT_EQ(0, system("ethtool -K rfdv0 gro on"));
	ASSERT_EQ(0, lib_pin(ccpu));
	a.sin_addr.s_addr = peer_ip(0, 2);
	c = socket(AF_INET, SOCK_STREAM, 0);
	ASSERT_LE(0, c);
	ASSERT_EQ(0, connect(c, (struct sockaddr *)&a, sizeof(a)));
	EXPECT_EQ(ccpu, port_cpu(lib_sock_port(c), ncpu_ids));
	ASSERT_EQ(0, rfd_read(&x));
	for (r = 0; r < ROUNDS; r++) {
		ASSERT_EQ(1, write(c, "p", 1));
		ASSERT_EQ(sizeof(buf), recv(c, buf, sizeof(buf), MSG_WAITALL));
		len = sizeof(cpu);
		ASSERT_EQ(0, getsockopt(c, SOL_SOCKET, SO_INCOMING_CPU, &cpu, &len));
		hits += cpu == ccpu;
	}
	ASSERT_EQ(0, rfd_read(&y));
	/* the server answers on scpu: every reply must be moved to ccpu */
	EXPECT_EQ(ROUNDS, hits);
	EXPECT_LE(ROUNDS, y.steered - x.steered);
	close(c);
	EXPECT_TRUE(peer_end(&srv));
	/* the pair went with the server's namespace */
	EXPECT_NE(0, system("ip link show rfdv0 >/dev/null 2>&1"));
}

TEST_F(rfd, veth)
{
	if (variant->kind != V4)
		SKIP(return, "IPv4 only");
	if (self->n < 2)
		SKIP(return, "needs two CPUs");
	veth_rounds(_metadata, self->cpus[0], self->cpus[1], self->ncpu_ids, false);
}

TEST_F(rfd, veth_gro)
{
	if (variant->kind != V4)
		SKIP(return, "IPv4 only");
	if (self->n < 2)
		SKIP(return, "needs two CPUs");
	veth_rounds(_metadata, self->cpus[0], self->cpus[1], self->ncpu_ids, true);
}

/* The CPU that processed the last packet read from @fd, or -1. */
static int incoming_cpu(int fd)
{
	socklen_t len = sizeof(int);
	int cpu;

	if (getsockopt(fd, SOL_SOCKET, SO_INCOMING_CPU, &cpu, &len))
		return -1;
	return cpu;
}

/*
 * Three namespaces: a client (a second namespace, on @ccpu) -> a proxy
 * (ours, on @scpu) -> a backend (a third namespace, on @ccpu too).  The
 * client connects to a listener here (per-core if @percore) and sends a
 * byte ROUNDS times; for each, the proxy sends a byte to the backend over
 * a connection it opened after accept() and passes the 64-byte answer
 * back.  veth delivers a packet on the CPU that sends it (no RPS map), so
 * the client's SYN is processed on ccpu and the proxy's accept() on scpu
 * takes the connection from ccpu's clone.  The client sends after the
 * accept.  *@front and *@back: how many of the proxy's reads had their
 * last packet processed on scpu, from the client and from the backend.
 */
static void proxy_rounds(struct __test_metadata *_metadata, int ccpu,
			 int scpu, bool percore, int *front, int *back,
			 struct rfd_counters *d)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(LIB_PORT + 1) };
	struct peer backend, client;
	struct rfd_counters x, y;
	int l, fc, bc, r, one = 1;
	char buf[64], ch;

	*front = *back = 0;
	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_LE(0, l);
	ASSERT_EQ(0, setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)));
	ASSERT_EQ(0, pcl_set(l, percore));
	ASSERT_EQ(0, bind(l, (struct sockaddr *)&a, sizeof(a)));
	ASSERT_EQ(0, listen(l, 16));
	ASSERT_EQ(0, peer_start(&backend, 1, ccpu, PEER_ECHO));
	ASSERT_EQ(0, lib_pin(scpu));
	ASSERT_EQ(0, rfd_read(&x));
	ASSERT_EQ(0, peer_start(&client, 2, ccpu, PEER_CLIENT));
	fc = accept(l, NULL, NULL);
	ASSERT_LE(0, fc);
	bc = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_LE(0, bc);
	a.sin_port = htons(LIB_PORT);
	a.sin_addr.s_addr = peer_ip(1, 2);
	ASSERT_EQ(0, connect(bc, (struct sockaddr *)&a, sizeof(a)));
	ASSERT_EQ(1, write(client.wr, "g", 1));
	for (r = 0; r < ROUNDS; r++) {
		ASSERT_EQ(1, read(fc, &ch, 1));
		*front += incoming_cpu(fc) == scpu;
		ASSERT_EQ(1, write(bc, &ch, 1));
		ASSERT_EQ(sizeof(buf), recv(bc, buf, sizeof(buf), MSG_WAITALL));
		*back += incoming_cpu(bc) == scpu;
		ASSERT_EQ(sizeof(buf), write(fc, buf, sizeof(buf)));
	}
	ASSERT_EQ(0, read(fc, &ch, 1));
	ASSERT_EQ(0, rfd_read(&y));
	close(bc);
	close(fc);
	close(l);
	EXPECT_TRUE(peer_end(&client));
	EXPECT_TRUE(peer_end(&backend));
	d->steered = y.steered - x.steered;
	d->accepts = y.accepts - x.accepts;
	d->flow_steered = y.flow_steered - x.flow_steered;
	d->flow_held = y.flow_held - x.flow_held;
}

/* On, with a per-core listener: every read of both sides on the proxy's CPU. */
TEST_F(rfd, proxy)
{
	struct rfd_counters d;
	int front, back;

	if (variant->kind != V4)
		SKIP(return, "IPv4 only");
	if (self->n < 2)
		SKIP(return, "needs two CPUs");
	proxy_rounds(_metadata, self->cpus[0], self->cpus[1], true, &front,
		     &back, &d);
	EXPECT_EQ(ROUNDS, front);
	EXPECT_EQ(ROUNDS, back);
	EXPECT_EQ(1, d.accepts);
	EXPECT_LE(ROUNDS, d.flow_steered);
	EXPECT_LE(ROUNDS, d.steered);
}

/*
 * A listener without per-core listen: its connections keep RPS's placement
 * (here the client's CPU); the backend side is still steered.
 */
TEST_F(rfd, proxy_plain_listener)
{
	struct rfd_counters d;
	int front, back;

	if (variant->kind != V4)
		SKIP(return, "IPv4 only");
	if (self->n < 2)
		SKIP(return, "needs two CPUs");
	proxy_rounds(_metadata, self->cpus[0], self->cpus[1], false, &front,
		     &back, &d);
	EXPECT_EQ(0, front);
	EXPECT_EQ(ROUNDS, back);
	EXPECT_EQ(0, d.accepts);
	EXPECT_EQ(0, d.flow_steered);
}

/*
 * Off: both sides' packets are processed where they were sent, the
 * client's and the backend's CPU, and RFD steers and records nothing.  A
 * peer's segment is now and then sent from the proxy's CPU (e.g. an ACK or
 * data that the peer's socket sends while the proxy's segment is processed
 * there; seen once in seven runs): at most a quarter of the rounds may be
 * processed there (with RFD on, all).
 */
TEST_F(rfd, proxy_off)
{
	struct rfd_counters d;
	int front, back;

	if (variant->kind != V4)
		SKIP(return, "IPv4 only");
	if (self->n < 2)
		SKIP(return, "needs two CPUs");
	ASSERT_EQ(0, lib_sysctl_write(RFD_SYSCTL, 0));
	proxy_rounds(_metadata, self->cpus[0], self->cpus[1], true, &front,
		     &back, &d);
	EXPECT_GE(ROUNDS / 4, front);
	EXPECT_GE(ROUNDS / 4, back);
	EXPECT_EQ(0, d.accepts);
	EXPECT_EQ(0, d.steered);
	EXPECT_EQ(0, d.flow_steered);
}

TEST_F(rfd, channel_connect)
{
	int ch, i, a, port;
	struct sockaddr_storage dst, peer;

	if (variant->kind == V4MAPPED)
		SKIP(return, "IPv4 and IPv6 only");
	ch = mp_open(16);
	ASSERT_LE(0, ch);
	for (i = 0; i < self->n; i++) {
		struct megapipe_req r = {
			.opcode = MEGAPIPE_OP_CONNECT,
			.handle = MEGAPIPE_NO_HANDLE,
			.addr = (uintptr_t)&dst,
			.len = dst_addr(variant->kind, LIB_PORT, &dst),
			.cookie = i,
		};
		struct megapipe_submit out;
		struct megapipe_cqe c;

		ASSERT_EQ(0, lib_pin(self->cpus[i]));
		ASSERT_EQ(0, mp_sub(ch, &r, 1, &c, 1, 1, 5000000000LL, &out));
		ASSERT_EQ(1, out.completed);
		ASSERT_EQ(0, c.result);
		a = accept(self->l, (struct sockaddr *)&peer,
			   &(socklen_t){ sizeof(peer) });
		ASSERT_LE(0, a);
		port = lib_addr_port(&peer);
		EXPECT_EQ(self->cpus[i], port_cpu(port, self->ncpu_ids)) {
			TH_LOG("CONNECT on cpu %d got port %d", self->cpus[i], port);
		}
		close(a);
	}
	close(ch);
}

/*
 * A namespace of its own whose established hash table has 128 buckets,
 * the smallest: RFD's flow table then has its smallest size, 4096 entries
 * in sets of 4.  A per-core listener on LIB_PORT + 1.
 */
#define CHILD_EHASH	"/proc/sys/net/ipv4/tcp_child_ehash_entries"
#define TARGETS		16
#define FLOOD		4096

FIXTURE(rfd_small) {
	int cpus[MAX_CPUS];
	int n;
	int l;
};

FIXTURE_SETUP(rfd_small)
{
	/* opened before the unshare: it stays the parent's */
	int fd = open(CHILD_EHASH, O_RDWR | O_CLOEXEC), err = 0;
	char old[32];
	ssize_t n;

	self->l = -1;
	self->n = lib_cpus(self->cpus, MAX_CPUS);
	ASSERT_LT(0, self->n);
	if (self->n < 2)
		SKIP(return, "needs two CPUs");
	ASSERT_LE(0, fd);
	n = pread(fd, old, sizeof(old), 0);
	ASSERT_LT(0, n);
	ASSERT_EQ(3, pwrite(fd, "128", 3, 0));
	if (lib_netns_enter())
		err = -errno;
	/* the parent's value back, for the namespaces made after */
	EXPECT_EQ(n, pwrite(fd, old, n, 0));
	close(fd);
	ASSERT_EQ(0, err);
	ASSERT_EQ(0, lib_raise_nofile(2 * FLOOD + 2 * TARGETS + 64));
	ASSERT_EQ(0, lib_sysctl_write(RFD_SYSCTL, 1));
	self->l = pcl_listener(AF_INET, false, LIB_PORT + 1, 4096, 1);
	ASSERT_LE(0, self->l);
}

FIXTURE_TEARDOWN(rfd_small)
{
	if (self->l >= 0)
		close(self->l);
}

/*
 * @n connections made on @ccpu and accepted on @scpu (taken from ccpu's
 * clone): scpu owns them.
 */
static void targets_open(struct __test_metadata *_metadata,
			 FIXTURE_DATA(rfd_small) *self, int ccpu, int scpu,
			 int *c, int *s, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		ASSERT_EQ(0, lib_pin(ccpu));
		c[i] = lib_connect(AF_INET, LIB_PORT + 1, false);
		ASSERT_LE(0, c[i]);
		ASSERT_EQ(0, lib_pin(scpu));
		s[i] = accept(self->l, NULL, NULL);
		ASSERT_LE(0, s[i]);
	}
}

/*
 * Send a byte on @c from @ccpu; once @s has it, true if its packet was
 * processed on @scpu.  The byte is read (a recvmsg() of @s) if @read.
 */
static bool byte_on(struct __test_metadata *_metadata, int c, int s, int ccpu,
		    int scpu, bool read)
{
	char ch;
	int cpu;

	if (lib_pin(ccpu) || write(c, "t", 1) != 1 ||
	    lib_poll1(s, POLLIN, LIB_DEADLINE_MS) != 1) {
		TH_LOG("a byte from cpu %d did not arrive", ccpu);
		return false;
	}
	cpu = incoming_cpu(s);
	if (read && recv(s, &ch, 1, 0) != 1)
		TH_LOG("recv: %s", strerror(errno));
	return cpu == scpu;
}

TEST_F_TIMEOUT(rfd_small, owner_recorded_again_at_recvmsg, 600)
{
	int c[TARGETS], s[TARGETS], *fc, *fs, i, before = 0, after = 0;
	int ccpu = self->cpus[0], scpu = self->cpus[1];
	struct rfd_counters x, y;

	fc = calloc(FLOOD, sizeof(int));
	fs = calloc(FLOOD, sizeof(int));
	ASSERT_TRUE(fc && fs);
	targets_open(_metadata, self, ccpu, scpu, c, s, TARGETS);
	/* later flows, kept open: their accept()s take entries of the sets */
	ASSERT_EQ(0, lib_pin(ccpu));
	for (i = 0; i < FLOOD; i++) {
		fc[i] = lib_connect(AF_INET, LIB_PORT + 1, false);
		ASSERT_LE(0, fc[i]);
		fs[i] = accept(self->l, NULL, NULL);
		ASSERT_LE(0, fs[i]);
	}
	/*
	 * A read takes an entry only if it is free or unused for 2 s: the
	 * flood's entries, never used after their accept(), are then.
	 */
	sleep(3);
	ASSERT_EQ(0, rfd_read(&x));
	for (i = 0; i < TARGETS; i++) {
		/* read from ccpu: the owner recorded is the accepting CPU */
		before += byte_on(_metadata, c[i], s[i], ccpu, scpu, true);
		after += byte_on(_metadata, c[i], s[i], ccpu, scpu, true);
	}
	ASSERT_EQ(0, rfd_read(&y));
	TH_LOG("%d of %d kept their entries; %lld recorded again", before,
	       TARGETS, y.flow_renewed - x.flow_renewed);
	/* else the flood evicted none, and this test could not tell */
	EXPECT_GT(TARGETS, before);
	EXPECT_EQ(TARGETS, after);
	EXPECT_EQ(TARGETS - before, y.flow_renewed - x.flow_renewed);
	for (i = 0; i < FLOOD; i++) {
		close(fs[i]);
		close(fc[i]);
	}
	for (i = 0; i < TARGETS; i++) {
		close(s[i]);
		close(c[i]);
	}
	free(fc);
	free(fs);
}

/*
 * The client's segments dropped on input (nftables: sent, so that the
 * client's retransmission timer runs) until it retransmits: each
 * retransmission timeout picks a new txhash (net.core.txrehash), which the
 * server's socket takes as its flow hash from the segment that gets
 * through.  That segment finds no entry (processed where it was sent);
 * the server's next read records the owner under the new hash and clears
 * the old hash's entry; the segment after is processed on the owner.
 */
TEST_F_TIMEOUT(rfd_small, new_flow_hash_recorded_at_read, 120)
{
	int ccpu = self->cpus[0], scpu = self->cpus[1], c, s, t;
	long long rehash;
	struct rfd_counters x, y;
	char cmd[256];

	if (access("/usr/sbin/nft", X_OK))
		SKIP(return, "no nft (make deps installs nftables)");
	targets_open(_metadata, self, ccpu, scpu, &c, &s, 1);
	EXPECT_TRUE(byte_on(_metadata, c, s, ccpu, scpu, true));
	snprintf(cmd, sizeof(cmd),
		 "nft add table ip rfdt && "
		 "nft add chain ip rfdt i '{ type filter hook input priority 0 ; }' && "
		 "nft add rule ip rfdt i tcp sport %d drop", lib_sock_port(c));
	ASSERT_EQ(0, system(cmd));
	rehash = lib_tcpext("TcpTimeoutRehash");
	ASSERT_EQ(1, write(c, "r", 1));
	for (t = 0; lib_tcpext("TcpTimeoutRehash") == rehash; t++) {
		ASSERT_GT(LIB_DEADLINE_MS / 10, t);
		usleep(10000);
	}
	ASSERT_EQ(0, system("nft delete table ip rfdt"));
	/*
	 * No entry under the new hash: left to RPS, processed where the
	 * retransmission timer ran (not necessarily ccpu: not checked).
	 */
	ASSERT_EQ(1, lib_poll1(s, POLLIN, LIB_DEADLINE_MS));
	ASSERT_EQ(0, rfd_read(&x));
	ASSERT_EQ(1, recv(s, cmd, 1, 0));
	ASSERT_EQ(0, rfd_read(&y));
	EXPECT_EQ(1, y.flow_renewed - x.flow_renewed);
	EXPECT_EQ(1, y.flow_cleared - x.flow_cleared);
	EXPECT_TRUE(byte_on(_metadata, c, s, ccpu, scpu, true));
	close(s);
	close(c);
}

TEST_F_TIMEOUT(rfd_small, close_clears_the_entry, 600)
{
	int c[TARGETS], s[TARGETS], fc, fs, i, t, kept = 0;
	int ccpu = self->cpus[0], scpu = self->cpus[1];
	struct rfd_counters x, y;

	targets_open(_metadata, self, ccpu, scpu, c, s, TARGETS);
	ASSERT_EQ(0, rfd_read(&x));
	ASSERT_EQ(0, lib_pin(ccpu));
	for (i = 0; i < FLOOD; i++) {
		fc = lib_connect(AF_INET, LIB_PORT + 1, false);
		ASSERT_LE(0, fc);
		fs = accept(self->l, NULL, NULL);
		ASSERT_LE(0, fs);
		/*
		 * The client first; the accepted end closed (LAST_ACK ->
		 * CLOSE, or through TIME_WAIT) before the next accept(), even
		 * when softirq work waits for ksoftirqd.
		 */
		close(fc);
		ASSERT_EQ(0, shutdown(fs, SHUT_WR));
		for (t = 0; lib_tcp_state(fs) != TCP_CLOSE; t++) {
			ASSERT_GT(LIB_DEADLINE_MS, t);
			usleep(1000);
		}
		close(fs);
	}
	for (i = 0; i < TARGETS; i++)
		kept += byte_on(_metadata, c[i], s[i], ccpu, scpu, false);
	ASSERT_EQ(0, rfd_read(&y));
	TH_LOG("%d of %d kept their entries; %lld cleared", kept, TARGETS,
	       y.flow_cleared - x.flow_cleared);
	EXPECT_EQ(TARGETS, kept);
	EXPECT_EQ(FLOOD, y.flow_cleared - x.flow_cleared);
	EXPECT_EQ(FLOOD, y.accepts - x.accepts);
	for (i = 0; i < TARGETS; i++) {
		close(s[i]);
		close(c[i]);
	}
}

FIXTURE(rfd_hotplug) {
	int cpus[MAX_CPUS];
	int n;
	int ncpu_ids;
	int cpu;		/* the one taken offline: the last */
	int offline;
	char online[64];
	int l;
};

FIXTURE_SETUP(rfd_hotplug)
{
	self->l = -1;
	self->offline = 0;
	self->n = lib_cpus(self->cpus, MAX_CPUS);
	ASSERT_LT(0, self->n);
	self->ncpu_ids = lib_nr_cpu_ids();
	ASSERT_LT(0, self->ncpu_ids);
	if (lib_netns_enter()) {
		if (errno == EPERM)
			SKIP(return, "needs CAP_SYS_ADMIN for a netns");
		ASSERT_EQ(0, -errno);
	}
	ASSERT_EQ(0, lib_sysctl_write(RFD_SYSCTL, 1));
	if (self->n < 2)
		SKIP(return, "needs two CPUs");
	self->cpu = self->cpus[self->n - 1];
	snprintf(self->online, sizeof(self->online),
		 "/sys/devices/system/cpu/cpu%d/online", self->cpu);
	if (access(self->online, W_OK))
		SKIP(return, "%s: %s", self->online, strerror(errno));
	if (lib_sysctl_read(self->online) != 1)
		SKIP(return, "cpu%d is not online", self->cpu);
	self->l = lib_listener(AF_INET, LIB_PORT, 16, 0);
	ASSERT_LE(0, self->l);
}

FIXTURE_TEARDOWN_PARENT(rfd_hotplug)
{
	if (self->offline && lib_sysctl_write(self->online, 1))
		TH_LOG("could not bring cpu%d back online: %s", self->cpu,
		       strerror(errno));
}

/*
 * Ping-pong between @wr, written on @other, and @rd, read on the owner
 * (self->cpu) and processed there; the owner goes offline: the packets are
 * left to RPS (counted), here processed where sent, and still arrive;
 * back online, they go to it again.  @flow: an accepted connection's
 * (flow_steered), else a port's (steered).
 */
static void owner_cycle(struct __test_metadata *_metadata,
			FIXTURE_DATA(rfd_hotplug) *self, int rd, int wr,
			int other, bool flow)
{
	struct rfd_counters a, b;
	char buf[64] = "o";

	ASSERT_EQ(0, rfd_read(&a));
	ASSERT_EQ(ROUNDS, replies_on(rd, self->cpu, wr, other, self->cpu));
	ASSERT_EQ(0, rfd_read(&b));
	EXPECT_LE(ROUNDS, flow ? b.flow_steered - a.flow_steered :
				 b.steered - a.steered);

	ASSERT_EQ(0, lib_pin(other));
	self->offline = 1;
	ASSERT_EQ(0, lib_sysctl_write(self->online, 0));
	ASSERT_EQ(0, rfd_read(&a));
	ASSERT_EQ(ROUNDS, replies_on(rd, other, wr, other, other));
	ASSERT_EQ(0, rfd_read(&b));
	EXPECT_LE(ROUNDS, b.offline - a.offline);
	EXPECT_EQ(0, b.steered - a.steered);
	EXPECT_EQ(0, b.flow_steered - a.flow_steered);

	ASSERT_EQ(0, lib_sysctl_write(self->online, 1));
	self->offline = 0;
	ASSERT_EQ(ROUNDS, replies_on(rd, self->cpu, wr, other, self->cpu));
	ASSERT_EQ(sizeof(buf), write(rd, buf, sizeof(buf)));
	ASSERT_EQ(sizeof(buf), read(wr, buf, sizeof(buf)));
}

/* The CPU a connect()ed port encodes. */
TEST_F_TIMEOUT(rfd_hotplug, owner_offline, 120)
{
	int c, s;

	ASSERT_EQ(0, lib_pin(self->cpu));
	c = lib_connect(AF_INET, LIB_PORT, false);
	ASSERT_LE(0, c);
	ASSERT_EQ(self->cpu, port_cpu(lib_sock_port(c), self->ncpu_ids));
	s = accept(self->l, NULL, NULL);
	ASSERT_LE(0, s);
	owner_cycle(_metadata, self, c, s, self->cpus[0], false);
	close(s);
	close(c);
	close(self->l);
}

/* The CPU that accepted a connection from a per-core listener. */
TEST_F_TIMEOUT(rfd_hotplug, accepted_owner_offline, 120)
{
	int l, c, s;

	l = pcl_listener(AF_INET, false, LIB_PORT + 1, 16, 1);
	ASSERT_LE(0, l);
	ASSERT_EQ(0, lib_pin(self->cpus[0]));
	c = lib_connect(AF_INET, LIB_PORT + 1, false);
	ASSERT_LE(0, c);
	ASSERT_EQ(0, lib_pin(self->cpu));
	s = accept(l, NULL, NULL);
	ASSERT_LE(0, s);
	owner_cycle(_metadata, self, s, c, self->cpus[0], true);
	close(s);
	close(c);
	close(l);
	close(self->l);
}

/*
 * Only 0 and 1; a new namespace starts with the initial namespace's value
 * (an fd opened before unshare() stays on the initial namespace's file).
 */
TEST(sysctl)
{
	int init_fd, v0;
	char buf[8] = "";

	v0 = lib_sysctl_read(RFD_SYSCTL);
	ASSERT_LE(0, v0) {
		TH_LOG("%s: %s", RFD_SYSCTL, strerror(errno));
	}
	init_fd = open(RFD_SYSCTL, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, init_fd);
	EXPECT_EQ(-1, write(init_fd, "2\n", 2));
	EXPECT_EQ(EINVAL, errno);
	ASSERT_EQ(2, pwrite(init_fd, "1\n", 2, 0));
	/* from here on, no ASSERT before the initial value is back */
	if (lib_netns_enter()) {
		int e = errno;

		EXPECT_EQ(2, pwrite(init_fd, v0 ? "1\n" : "0\n", 2, 0));
		if (e == EPERM)
			SKIP(return, "needs CAP_SYS_ADMIN for a netns");
		ASSERT_EQ(0, -e);
	}
	EXPECT_EQ(1, lib_sysctl_read(RFD_SYSCTL));
	EXPECT_EQ(0, lib_sysctl_write(RFD_SYSCTL, 0));
	EXPECT_EQ(0, lib_sysctl_read(RFD_SYSCTL));
	EXPECT_EQ(2, pread(init_fd, buf, sizeof(buf) - 1, 0));
	EXPECT_STREQ("1\n", buf);
	EXPECT_EQ(0, rfd_read(&(struct rfd_counters){}));
	ASSERT_EQ(2, pwrite(init_fd, v0 ? "1\n" : "0\n", 2, 0));
	close(init_fd);
}

TEST_HARNESS_MAIN
