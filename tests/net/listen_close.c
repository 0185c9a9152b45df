// SPDX-License-Identifier: GPL-2.0
/*
 * listen_close: close() of a listener with a full accept queue, stock 6.12.
 * Every queued (not yet accepted) connection is reset: its client reads
 * ECONNRESET once, then EOF.  Connections accepted before stay intact.
 * Every socket the listener owned is released: the netns' count of hashed
 * TCP sockets (/proc/net/sockstat "TCP: inuse", plus sockstat6 "TCP6")
 * goes back to where it was.
 *
 * Variants: ipv4, ipv6, and dualstack (an IPv6 listener on [::] taking
 * IPv4 clients as v4-mapped addresses).  Each test runs in a netns of its
 * own, on loopback.
 *
 * MP_TEST_SCALE scales the connection count (default 1000).
 */
#include "kselftest_harness.h"
#include "listen_lib.h"

FIXTURE(listen_close) {
	int l;
	int n;			/* connections */
	int *c;			/* client sockets */
	int *a;			/* accepted sockets */
	int *port;		/* client ports */
	long base;		/* TCP inuse before the test */
};

FIXTURE_VARIANT(listen_close) {
	int family;		/* listener's */
	int cfamily;		/* clients' */
};

FIXTURE_VARIANT_ADD(listen_close, ipv4) {
	.family = AF_INET,
	.cfamily = AF_INET,
};

FIXTURE_VARIANT_ADD(listen_close, ipv6) {
	.family = AF_INET6,
	.cfamily = AF_INET6,
};

/* IPv6 listener on [::] taking IPv4 clients (v4-mapped). */
FIXTURE_VARIANT_ADD(listen_close, dualstack) {
	.family = AF_INET6,
	.cfamily = AF_INET,
};

FIXTURE_SETUP(listen_close)
{
	long somaxconn;
	int i;

	self->l = -1;
	self->n = lib_scaled(1000, 4);
	self->c = malloc(self->n * sizeof(int));
	self->a = malloc(self->n * sizeof(int));
	self->port = malloc(self->n * sizeof(int));
	ASSERT_NE(NULL, self->c);
	ASSERT_NE(NULL, self->a);
	ASSERT_NE(NULL, self->port);
	for (i = 0; i < self->n; i++)
		self->c[i] = self->a[i] = -1;
	ASSERT_EQ(0, lib_raise_nofile(2 * self->n + 64));

	if (lib_netns_enter()) {
		if (errno == EPERM)
			SKIP(return, "needs CAP_SYS_ADMIN for a netns");
		ASSERT_EQ(0, -errno);
	}
	/* The whole lot must fit in the accept queue. */
	somaxconn = lib_sysctl_read("/proc/sys/net/core/somaxconn");
	ASSERT_LT(0, somaxconn);
	if (somaxconn < self->n)
		ASSERT_EQ(0, lib_sysctl_write("/proc/sys/net/core/somaxconn", self->n));

	self->base = lib_tcp_inuse();
	ASSERT_LE(0, self->base);
	self->l = lib_listener_on(variant->family,
				  variant->family != variant->cfamily,
				  LIB_PORT, self->n, 0);
	if (self->l < 0 && variant->family == AF_INET6 && errno == EADDRNOTAVAIL)
		SKIP(return, "no IPv6 loopback");
	ASSERT_LE(0, self->l);
	ASSERT_EQ(self->base + 1, lib_tcp_inuse());
}

FIXTURE_TEARDOWN(listen_close)
{
	int i;

	for (i = 0; i < self->n; i++) {
		if (self->c[i] >= 0)
			close(self->c[i]);
		if (self->a[i] >= 0)
			close(self->a[i]);
	}
	if (self->l >= 0)
		close(self->l);
	free(self->c);
	free(self->a);
	free(self->port);
}

/* Wait until TCP inuse equals want; returns the last value seen. */
static long wait_inuse(long want, int timeout_ms)
{
	return lib_wait_count(lib_tcp_inuse, want, timeout_ms);
}

/* Fill the accept queue with all n connections; every other client sends a byte. */
static void fill_queue(struct __test_metadata *_metadata,
		       FIXTURE_DATA(listen_close) *self, int family)
{
	int i;

	for (i = 0; i < self->n; i++) {
		self->c[i] = lib_connect(family, LIB_PORT, false);
		ASSERT_LE(0, self->c[i]);
		self->port[i] = lib_sock_port(self->c[i]);
		ASSERT_LT(0, self->port[i]);
		if (i & 1)
			ASSERT_EQ(1, write(self->c[i], "x", 1));
	}
	ASSERT_EQ(self->n, lib_wait_queued(self->l, self->n, LIB_DEADLINE_MS));
	/* Listener, n clients and n queued children are all hashed. */
	ASSERT_EQ(self->base + 1 + 2 * self->n, lib_tcp_inuse());
}

/* A client was reset: error and hang-up pending, ECONNRESET once, then EOF. */
static void expect_reset(struct __test_metadata *_metadata, int fd)
{
	char b;
	int r;

	r = lib_wait_revents(fd, 0, POLLERR | POLLHUP, LIB_DEADLINE_MS);
	ASSERT_EQ(POLLERR | POLLHUP, r);
	r = lib_poll1(fd, POLLIN | POLLOUT | POLLRDHUP, 0);
	ASSERT_EQ(POLLIN | POLLOUT | POLLRDHUP | POLLERR | POLLHUP, r);
	ASSERT_EQ(-1, read(fd, &b, 1));
	ASSERT_EQ(ECONNRESET, errno);
	ASSERT_EQ(0, read(fd, &b, 1));
	ASSERT_EQ(TCP_CLOSE, lib_tcp_state(fd));
	ASSERT_EQ(-1, send(fd, "y", 1, MSG_NOSIGNAL));
	ASSERT_EQ(EPIPE, errno);
}

/* close() with n connections queued: all n clients are reset, every socket is released. */
TEST_F_TIMEOUT(listen_close, close_resets_queued, 120)
{
	int i;

	fill_queue(_metadata, self, variant->cfamily);

	ASSERT_EQ(0, close(self->l));
	self->l = -1;
	for (i = 0; i < self->n; i++)
		expect_reset(_metadata, self->c[i]);

	/* The children are gone and the reset clients unhashed... */
	ASSERT_EQ(self->base, wait_inuse(self->base, LIB_DEADLINE_MS));
	/* ...nobody listens any more... */
	ASSERT_EQ(-1, lib_connect(variant->cfamily, LIB_PORT, false));
	ASSERT_EQ(ECONNREFUSED, errno);
	/* ...and closing the clients changes nothing. */
	for (i = 0; i < self->n; i++) {
		close(self->c[i]);
		self->c[i] = -1;
	}
	ASSERT_EQ(self->base, wait_inuse(self->base, LIB_DEADLINE_MS));
}

/* close() resets only what is still queued; accepted connections live on. */
TEST_F_TIMEOUT(listen_close, close_keeps_accepted, 120)
{
	int i, half = self->n / 2;
	struct sockaddr_storage ss;
	static int idx[65536];
	socklen_t len;
	char b;

	fill_queue(_metadata, self, variant->cfamily);
	memset(idx, 0xff, sizeof(idx));
	for (i = 0; i < self->n; i++)
		idx[self->port[i]] = i;

	/* Accept the first half; find which client each one is. */
	for (i = 0; i < half; i++) {
		int fd, j, port;

		len = sizeof(ss);
		fd = accept4(self->l, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC);
		ASSERT_LE(0, fd);
		port = lib_addr_port(&ss);
		ASSERT_LT(0, port);
		j = idx[port];
		ASSERT_LE(0, j);
		ASSERT_EQ(-1, self->a[j]);
		self->a[j] = fd;
	}
	ASSERT_EQ(self->n - half, lib_wait_queued(self->l, self->n - half, 0));

	ASSERT_EQ(0, close(self->l));
	self->l = -1;

	for (i = 0; i < self->n; i++) {
		if (self->a[i] < 0) {
			expect_reset(_metadata, self->c[i]);
			continue;
		}
		/* Accepted: data sent before and after the close flows. */
		if (i & 1) {
			ASSERT_EQ(1, read(self->a[i], &b, 1));
			ASSERT_EQ('x', b);
		}
		ASSERT_EQ(1, write(self->a[i], "z", 1));
		ASSERT_EQ(1, read(self->c[i], &b, 1));
		ASSERT_EQ('z', b);
		ASSERT_EQ(1, write(self->c[i], "w", 1));
		ASSERT_EQ(1, read(self->a[i], &b, 1));
		ASSERT_EQ('w', b);
		ASSERT_EQ(TCP_ESTABLISHED, lib_tcp_state(self->c[i]));
	}

	/* Only the accepted pairs remain hashed. */
	ASSERT_EQ(self->base + 2 * half, wait_inuse(self->base + 2 * half,
						      LIB_DEADLINE_MS));
	for (i = 0; i < self->n; i++) {
		if (self->a[i] >= 0)
			close(self->a[i]);
		close(self->c[i]);
		self->a[i] = self->c[i] = -1;
	}
	ASSERT_EQ(self->base, wait_inuse(self->base, LIB_DEADLINE_MS));
}

TEST_HARNESS_MAIN
