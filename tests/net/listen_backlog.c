// SPDX-License-Identifier: GPL-2.0
/*
 * listen_backlog: the accept-queue limit of stock 6.12.  With listen(fd, B)
 * and nobody accepting, B + 1 connections complete into the queue
 * (sk_acceptq_is_full() is "queued > B"); later SYNs are dropped silently
 * (client stays in SYN_SENT and retries, no RST) and counted in TcpExt
 * ListenOverflows and ListenDrops.  The backlog is capped by
 * net.core.somaxconn.  Where the numbers `ss -lnt` shows come from:
 *   - /proc/net/tcp{,6}: the listener is one row, rx_queue = queued
 *     connections; tx_queue is write_seq - snd_una, i.e. 0 for a listener
 *     (6.12 does not put the backlog in /proc);
 *   - TCP_INFO on the listener: tcpi_unacked = queued, tcpi_sacked = backlog;
 *   - sock_diag (INET_DIAG): Recv-Q = queued, Send-Q = backlog, one entry.
 *     Skipped where the kernel has no INET_DIAG (the test kernel's config).
 *
 * Variants: family (ipv4, ipv6, dualstack: an IPv6 listener on [::] taking
 * IPv4 clients) x backlog (0 included: it queues one).  Each test runs in
 * a netns of its own, on loopback.
 */
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>

#include "kselftest_harness.h"
#include "listen_lib.h"

#define EXTRA		3	/* SYNs sent to a full queue */
#define MAX_CLIENTS	64

/* Client sockets, in connection order. */
struct clients {
	int c[MAX_CLIENTS];
	int nc;
};

FIXTURE(listen_backlog) {
	int l;
	struct clients cl;
};

FIXTURE_VARIANT(listen_backlog) {
	int family;		/* listener's */
	int cfamily;		/* clients' */
	int backlog;
};

FIXTURE_VARIANT_ADD(listen_backlog, ipv4_b0) {
	.family = AF_INET,
	.cfamily = AF_INET,
	.backlog = 0,
};

FIXTURE_VARIANT_ADD(listen_backlog, ipv4_b1) {
	.family = AF_INET,
	.cfamily = AF_INET,
	.backlog = 1,
};

FIXTURE_VARIANT_ADD(listen_backlog, ipv4_b7) {
	.family = AF_INET,
	.cfamily = AF_INET,
	.backlog = 7,
};

FIXTURE_VARIANT_ADD(listen_backlog, ipv6_b0) {
	.family = AF_INET6,
	.cfamily = AF_INET6,
	.backlog = 0,
};

FIXTURE_VARIANT_ADD(listen_backlog, ipv6_b1) {
	.family = AF_INET6,
	.cfamily = AF_INET6,
	.backlog = 1,
};

FIXTURE_VARIANT_ADD(listen_backlog, ipv6_b7) {
	.family = AF_INET6,
	.cfamily = AF_INET6,
	.backlog = 7,
};

/* IPv6 listener on [::] taking IPv4 clients (v4-mapped). */
FIXTURE_VARIANT_ADD(listen_backlog, dualstack_b1) {
	.family = AF_INET6,
	.cfamily = AF_INET,
	.backlog = 1,
};

static void clients_init(struct clients *cl)
{
	int i;

	cl->nc = 0;
	for (i = 0; i < MAX_CLIENTS; i++)
		cl->c[i] = -1;
}

static void clients_close(struct clients *cl)
{
	int i;

	for (i = 0; i < cl->nc; i++)
		if (cl->c[i] >= 0)
			close(cl->c[i]);
	cl->nc = 0;
}

/* Non-blocking connect; remembers the client. */
static int add_client(struct clients *cl, int family)
{
	int fd;

	if (cl->nc >= MAX_CLIENTS)
		return -1;
	fd = lib_connect(family, LIB_PORT, true);
	if (fd >= 0)
		cl->c[cl->nc++] = fd;
	return fd;
}

/*
 * Connect n clients one by one, each seen established and queued before
 * the next; returns how many were.
 */
static int fill_queue(struct clients *cl, int l, int family, int n)
{
	int i, fd;

	for (i = 0; i < n; i++) {
		fd = add_client(cl, family);
		if (fd < 0)
			return -1;
		if (lib_wait_queued(l, i + 1, LIB_DEADLINE_MS) != i + 1)
			return i;
		if (lib_wait_revents(fd, POLLOUT, POLLOUT, LIB_DEADLINE_MS) != POLLOUT)
			return i;
		if (lib_tcp_state(fd) != TCP_ESTABLISHED)
			return i;
	}
	return n;
}

FIXTURE_SETUP(listen_backlog)
{
	self->l = -1;
	clients_init(&self->cl);
	if (lib_netns_enter()) {
		if (errno == EPERM)
			SKIP(return, "needs CAP_SYS_ADMIN for a netns");
		ASSERT_EQ(0, -errno);
	}
	self->l = lib_listener_on(variant->family,
				  variant->family != variant->cfamily, LIB_PORT,
				  variant->backlog, SOCK_NONBLOCK);
	if (self->l < 0 && variant->family == AF_INET6 && errno == EADDRNOTAVAIL)
		SKIP(return, "no IPv6 loopback");
	ASSERT_LE(0, self->l);
}

FIXTURE_TEARDOWN(listen_backlog)
{
	clients_close(&self->cl);
	if (self->l >= 0)
		close(self->l);
}

/*
 * B + 1 connections are queued; further SYNs are dropped (client left in
 * SYN_SENT), each counted in ListenOverflows and ListenDrops; the /proc row
 * shows the queue; once room is made, the clients' SYN retransmissions get
 * in.
 */
/* A per-core listener (TCP_PERCORE_LISTEN of this tree's kernels)? */
static bool percore(int l)
{
	int v = 0;
	socklen_t len = sizeof(v);

	return !getsockopt(l, IPPROTO_TCP, 64 /* TCP_PERCORE_LISTEN */, &v,
			   &len) && v == 1;
}

TEST_F_TIMEOUT(listen_backlog, queue_holds_backlog_plus_one, 60)
{
	int fam = variant->family, cfam = variant->cfamily, i, j, fd;
	int full = variant->backlog + 1;
	long long ovf0, drop0, cookies0, ovf, drop;
	struct lib_listen_row row;
	unsigned int q, b;
	int ports[MAX_CLIENTS];

	ASSERT_GE(MAX_CLIENTS, full + EXTRA);
	ovf0 = lib_tcpext("ListenOverflows");
	drop0 = lib_tcpext("ListenDrops");
	cookies0 = lib_tcpext("SyncookiesSent");
	ASSERT_LE(0, ovf0);
	ASSERT_LE(0, drop0);
	ASSERT_LE(0, cookies0);

	ASSERT_EQ(full, fill_queue(&self->cl, self->l, cfam, full));
	ASSERT_EQ(ovf0, lib_tcpext("ListenOverflows"));
	/* One at a time the SYN queue never fills (even for B = 0): no syncookies. */
	ASSERT_EQ(0, lib_tcpext("SyncookiesSent") - cookies0);
	for (i = 0; i < full; i++)
		ports[i] = lib_sock_port(self->cl.c[i]);

	/* The queue is full: each further SYN is dropped and counted. */
	for (i = 0; i < EXTRA; i++) {
		ASSERT_LE(0, add_client(&self->cl, cfam));
		ASSERT_LE(ovf0 + i + 1, lib_wait_tcpext_above("ListenOverflows",
							      ovf0 + i,
							      LIB_DEADLINE_MS));
	}
	ovf = lib_tcpext("ListenOverflows");
	drop = lib_tcpext("ListenDrops");
	ASSERT_LE(ovf0 + EXTRA, ovf);
	ASSERT_LE(ovf - ovf0, drop - drop0);	/* read after: drops >= overflows */
	for (i = full; i < full + EXTRA; i++) {
		ASSERT_EQ(TCP_SYN_SENT, lib_tcp_state(self->cl.c[i]));
		ASSERT_EQ(0, lib_getsockopt_int(self->cl.c[i], SOL_SOCKET, SO_ERROR));
	}

	/* TCP_INFO of a listener: tcpi_unacked = queued, tcpi_sacked = backlog. */
	ASSERT_EQ(0, lib_acceptq(self->l, &q, &b));
	ASSERT_EQ(full, q);
	ASSERT_EQ(variant->backlog, b);

	/* One row for the listener, showing the queue; none in the other family's file. */
	ASSERT_EQ(0, lib_proc_listen_row(fam, LIB_PORT, &row));
	ASSERT_EQ(1, row.rows);
	ASSERT_EQ(full, row.rx_queue);
	ASSERT_EQ(0, row.tx_queue);
	ASSERT_EQ(0, lib_proc_listen_row(fam == AF_INET ? AF_INET6 : AF_INET,
					 LIB_PORT, &row));
	ASSERT_EQ(0, row.rows);

	/* The queued ones are there to accept, and only they. */
	for (i = 0; i < full; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);

		fd = accept4(self->l, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC);
		ASSERT_LE(0, fd);
		for (j = 0; j < full; j++)
			if (ports[j] == lib_addr_port(&ss))
				break;
		ASSERT_GT(full, j);
		ports[j] = -1;
		close(fd);
	}
	ASSERT_EQ(-1, accept(self->l, NULL, NULL));
	ASSERT_EQ(EAGAIN, errno);

	/*
	 * The dropped clients retry their SYN (RTO 1 s) and get in.  On a
	 * per-core listener the backlog is per CPU's clone, and the
	 * retransmission timers of idle CPUs may fire on other CPUs (timer
	 * migration), so more of them may get in, up to all.
	 */
	j = EXTRA < full ? EXTRA : full;
	q = lib_wait_queued(self->l, j, LIB_DEADLINE_MS);
	if (percore(self->l)) {
		ASSERT_LE(j, q);
		ASSERT_GE(EXTRA, q);
		j = q;
	} else {
		ASSERT_EQ(j, q);
	}
	for (i = 0; i < j; i++) {
		fd = accept(self->l, NULL, NULL);
		ASSERT_LE(0, fd);
		close(fd);
	}
}

/*
 * Dump TCP listeners over sock_diag; report on the ones with local port
 * port.  Returns 0, -EPROTONOSUPPORT/-ENOENT without INET_DIAG, or -errno.
 */
static int diag_listeners(int family, uint16_t port, int *count,
			  unsigned int *rq, unsigned int *wq)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 req;
	} msg = {
		.nlh = {
			.nlmsg_len = sizeof(msg),
			.nlmsg_type = SOCK_DIAG_BY_FAMILY,
			.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
			.nlmsg_seq = 1,
		},
		.req = {
			.sdiag_family = family,
			.sdiag_protocol = IPPROTO_TCP,
			.idiag_states = 1 << TCP_LISTEN,
		},
	};
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	static char buf[32768];
	int fd, ret = 0, done = 0;

	*count = 0;
	fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (fd < 0)
		return -errno;
	if (sendto(fd, &msg, sizeof(msg), 0, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		ret = -errno;
		goto out;
	}
	while (!done) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		struct nlmsghdr *h;

		if (n < 0) {
			ret = -errno;
			goto out;
		}
		for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
			struct inet_diag_msg *m = NLMSG_DATA(h);

			if (h->nlmsg_type == NLMSG_DONE) {
				done = 1;
				break;
			}
			if (h->nlmsg_type == NLMSG_ERROR) {
				struct nlmsgerr *e = NLMSG_DATA(h);

				ret = e->error ? e->error : -EIO;
				goto out;
			}
			if (ntohs(m->id.idiag_sport) != port)
				continue;
			(*count)++;
			*rq = m->idiag_rqueue;
			*wq = m->idiag_wqueue;
		}
	}
out:
	close(fd);
	return ret;
}

/* sock_diag (what ss -lnt shows): one entry, Recv-Q = queued, Send-Q = backlog. */
TEST_F(listen_backlog, diag_queue_and_backlog)
{
	int fam = variant->family, full = variant->backlog + 1, count, ret;
	int cfam = variant->cfamily;
	unsigned int rq = ~0u, wq = ~0u;

	ret = diag_listeners(fam, LIB_PORT, &count, &rq, &wq);
	if (ret == -EPROTONOSUPPORT || ret == -ENOENT)
		SKIP(return, "no INET_DIAG in this kernel (%d)", ret);
	ASSERT_EQ(0, ret);
	ASSERT_EQ(1, count);
	ASSERT_EQ(0, rq);
	ASSERT_EQ(variant->backlog, wq);

	ASSERT_EQ(full, fill_queue(&self->cl, self->l, cfam, full));
	ASSERT_EQ(0, diag_listeners(fam, LIB_PORT, &count, &rq, &wq));
	ASSERT_EQ(1, count);
	ASSERT_EQ(full, rq);
	ASSERT_EQ(variant->backlog, wq);

	/* listen() again shows the new backlog, same queue. */
	ASSERT_EQ(0, listen(self->l, variant->backlog + 5));
	ASSERT_EQ(0, diag_listeners(fam, LIB_PORT, &count, &rq, &wq));
	ASSERT_EQ(1, count);
	ASSERT_EQ(full, rq);
	ASSERT_EQ(variant->backlog + 5, wq);
}

/* A netns whose net.core.somaxconn is 2. */
FIXTURE(somaxconn) {
	struct clients cl;
};

FIXTURE_VARIANT(somaxconn) {
	int family;
};

FIXTURE_VARIANT_ADD(somaxconn, ipv4) {
	.family = AF_INET,
};

FIXTURE_VARIANT_ADD(somaxconn, ipv6) {
	.family = AF_INET6,
};

FIXTURE_SETUP(somaxconn)
{
	clients_init(&self->cl);
	if (lib_netns_enter()) {
		if (errno == EPERM)
			SKIP(return, "needs CAP_SYS_ADMIN for a netns");
		ASSERT_EQ(0, -errno);
	}
	/* net.core.somaxconn is per netns: this leaves the host's alone. */
	ASSERT_EQ(0, lib_sysctl_write("/proc/sys/net/core/somaxconn", 2));
	ASSERT_EQ(2, lib_sysctl_read("/proc/sys/net/core/somaxconn"));
}

FIXTURE_TEARDOWN(somaxconn)
{
	clients_close(&self->cl);
}

/* listen(fd, n) takes min(n, somaxconn) as backlog, n < 0 included: 2 + 1 queued. */
TEST_F(somaxconn, caps_backlog)
{
	static const int asked[] = { 100, INT_MAX, -1 };
	int fam = variant->family, i, l;
	unsigned int q, b;
	long long ovf;

	for (i = 0; i < 3; i++) {
		l = lib_listener(fam, LIB_PORT, asked[i], SOCK_NONBLOCK);
		if (l < 0 && fam == AF_INET6 && errno == EADDRNOTAVAIL)
			SKIP(return, "no IPv6 loopback");
		ASSERT_LE(0, l);

		ASSERT_EQ(0, lib_acceptq(l, &q, &b));
		ASSERT_EQ(0, q);
		ASSERT_EQ(2, b);
		ASSERT_EQ(3, fill_queue(&self->cl, l, fam, 3));
		ovf = lib_tcpext("ListenOverflows");
		ASSERT_LE(0, add_client(&self->cl, fam));
		ASSERT_LT(ovf, lib_wait_tcpext_above("ListenOverflows", ovf,
						     LIB_DEADLINE_MS));
		ASSERT_EQ(TCP_SYN_SENT, lib_tcp_state(self->cl.c[3]));
		ASSERT_EQ(3, lib_wait_queued(l, 3, 0));

		clients_close(&self->cl);
		close(l);
	}
}

TEST_HARNESS_MAIN
