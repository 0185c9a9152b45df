// SPDX-License-Identifier: GPL-2.0
/*
 * accept_basic: the single-threaded accept()/listen() contract of stock
 * Linux 6.12 TCP.  Later patches (per-CPU listen clones) must keep all of it.
 *
 * Variants: ipv4, ipv6, and dualstack (an IPv6 listener on [::] taking
 * IPv4 clients as v4-mapped addresses).  Each test runs in a netns of its
 * own, on loopback.
 */
#include <pthread.h>
#include <sys/time.h>

#include "kselftest_harness.h"
#include "listen_lib.h"

#ifndef SYS_accept
#define SYS_accept -2
#endif

#define MAX_CLIENTS 16

FIXTURE(accept_basic) {
	int l;				/* listener on loopback:LIB_PORT */
	int c[MAX_CLIENTS];		/* client sockets, closed by teardown */
	int nc;
};

FIXTURE_VARIANT(accept_basic) {
	int family;		/* listener's */
	int cfamily;		/* clients' */
};

FIXTURE_VARIANT_ADD(accept_basic, ipv4) {
	.family = AF_INET,
	.cfamily = AF_INET,
};

FIXTURE_VARIANT_ADD(accept_basic, ipv6) {
	.family = AF_INET6,
	.cfamily = AF_INET6,
};

/* IPv6 listener on [::] taking IPv4 clients (v4-mapped). */
FIXTURE_VARIANT_ADD(accept_basic, dualstack) {
	.family = AF_INET6,
	.cfamily = AF_INET,
};

FIXTURE_SETUP(accept_basic)
{
	int i;

	self->l = -1;
	self->nc = 0;
	for (i = 0; i < MAX_CLIENTS; i++)
		self->c[i] = -1;
	if (lib_netns_enter()) {
		if (errno == EPERM)
			SKIP(return, "needs CAP_SYS_ADMIN for a netns");
		ASSERT_EQ(0, -errno);
	}
	self->l = lib_listener_on(variant->family,
				  variant->family != variant->cfamily,
				  LIB_PORT, 16, 0);
	if (self->l < 0 && variant->family == AF_INET6 && errno == EADDRNOTAVAIL)
		SKIP(return, "no IPv6 loopback");
	ASSERT_LE(0, self->l);
}

FIXTURE_TEARDOWN(accept_basic)
{
	int i;

	for (i = 0; i < self->nc; i++)
		if (self->c[i] >= 0)
			close(self->c[i]);
	if (self->l >= 0)
		close(self->l);
}

/* Connect a client (blocking unless nonblock) and remember it for teardown. */
static int add_client(FIXTURE_DATA(accept_basic) *self, int family, bool nonblock)
{
	int fd;

	if (self->nc >= MAX_CLIENTS)
		return -1;
	fd = lib_connect(family, LIB_PORT, nonblock);
	if (fd >= 0)
		self->c[self->nc++] = fd;
	return fd;
}

/* Close client i early (teardown then skips it). */
static void drop_client(FIXTURE_DATA(accept_basic) *self, int i)
{
	close(self->c[i]);
	self->c[i] = -1;
}

/* Accept one connection; returns the fd and the peer's port in *port. */
static int accept_port(int l, int flags, int *port)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int fd = accept4(l, (struct sockaddr *)&ss, &len, flags);

	if (fd >= 0 && port)
		*port = lib_addr_port(&ss);
	return fd;
}

static int set_rcvtimeo_ms(int fd, int ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

	return setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

/* accept() on an empty non-blocking listener fails with EAGAIN, also after the queue drained. */
TEST_F(accept_basic, nonblocking_empty_eagain)
{
	int fl, a, c;

	fl = fcntl(self->l, F_GETFL);
	ASSERT_LE(0, fl);
	ASSERT_EQ(0, fcntl(self->l, F_SETFL, fl | O_NONBLOCK));

	ASSERT_EQ(-1, accept(self->l, NULL, NULL));
	ASSERT_EQ(EAGAIN, errno);

	c = add_client(self, variant->cfamily, false);
	ASSERT_LE(0, c);
	ASSERT_EQ(1, lib_wait_queued(self->l, 1, LIB_DEADLINE_MS));
	a = accept(self->l, NULL, NULL);
	ASSERT_LE(0, a);
	close(a);

	ASSERT_EQ(-1, accept(self->l, NULL, NULL));
	ASSERT_EQ(EAGAIN, errno);
	ASSERT_EQ(-1, accept4(self->l, NULL, NULL, SOCK_CLOEXEC));
	ASSERT_EQ(EAGAIN, errno);
}

/* accept() on a socket that is not listening fails with EINVAL. */
TEST_F(accept_basic, accept_needs_listen)
{
	int s = socket(variant->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int c, a;

	ASSERT_LE(0, s);
	ASSERT_EQ(-1, accept(s, NULL, NULL));
	ASSERT_EQ(EINVAL, errno);
	close(s);

	/* Nor on a connected one, nor on an accepted one. */
	c = add_client(self, variant->cfamily, false);
	ASSERT_LE(0, c);
	a = accept(self->l, NULL, NULL);
	ASSERT_LE(0, a);
	ASSERT_EQ(-1, accept(c, NULL, NULL));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(-1, accept(a, NULL, NULL));
	ASSERT_EQ(EINVAL, errno);
	close(a);
}

/* SO_RCVTIMEO on a blocking listener bounds accept(), which then fails with EAGAIN. */
TEST_F(accept_basic, rcvtimeo_bounds_blocking_accept)
{
	uint64_t t0, dt;

	ASSERT_EQ(0, set_rcvtimeo_ms(self->l, 200));
	t0 = lib_now_ms();
	ASSERT_EQ(-1, accept(self->l, NULL, NULL));
	ASSERT_EQ(EAGAIN, errno);
	dt = lib_now_ms() - t0;
	/* jiffies rounding aside, it really waited, and not forever. */
	ASSERT_LE(150, dt);
	ASSERT_GT(LIB_DEADLINE_MS, dt);
}

struct delayed_connect {
	int family;
	pid_t waiter;		/* thread that must be blocked in accept first */
	int blocked;		/* 0: it was; -1: it was never seen blocked */
	int fd;
	int port;
	int err;
};

static void *delayed_connect_fn(void *arg)
{
	struct delayed_connect *d = arg;

	d->blocked = lib_wait_blocked(d->waiter, SYS_accept, SYS_accept4,
				      LIB_DEADLINE_MS);
	d->fd = lib_connect(d->family, LIB_PORT, false);
	d->err = d->fd < 0 ? errno : 0;
	d->port = d->fd < 0 ? -1 : lib_sock_port(d->fd);
	return NULL;
}

/* A blocked accept() sleeps until a connection arrives, then returns exactly it. */
TEST_F(accept_basic, blocking_accept_wakes_on_connect)
{
	struct delayed_connect d = {
		.family = variant->cfamily, .waiter = gettid(), .fd = -1,
	};
	pthread_t th;
	int a, port = -1;

	/* Safety net: a lost wake-up fails the test instead of hanging it. */
	ASSERT_EQ(0, set_rcvtimeo_ms(self->l, LIB_DEADLINE_MS));
	ASSERT_EQ(0, pthread_create(&th, NULL, delayed_connect_fn, &d));
	a = accept_port(self->l, 0, &port);
	ASSERT_EQ(0, pthread_join(th, NULL));
	if (d.fd >= 0)
		self->c[self->nc++] = d.fd;

	ASSERT_EQ(0, d.blocked);
	ASSERT_EQ(0, d.err);
	ASSERT_LE(0, a);
	ASSERT_EQ(d.port, port);
	close(a);
}

/* accept4() sets O_NONBLOCK/FD_CLOEXEC exactly as asked, never inherits the listener's O_NONBLOCK, and rejects other flags. */
TEST_F(accept_basic, accept4_flags)
{
	static const int flags[] = {
		0, SOCK_NONBLOCK, SOCK_CLOEXEC, SOCK_NONBLOCK | SOCK_CLOEXEC,
	};
	int i, fl, c, a, port;

	fl = fcntl(self->l, F_GETFL);
	ASSERT_LE(0, fl);
	ASSERT_EQ(0, fcntl(self->l, F_SETFL, fl | O_NONBLOCK));

	for (i = 0; i < 4; i++) {
		c = add_client(self, variant->cfamily, false);
		ASSERT_LE(0, c);
		ASSERT_EQ(POLLIN, lib_poll1(self->l, POLLIN, LIB_DEADLINE_MS));

		/* Bad flags fail and leave the connection queued. */
		ASSERT_EQ(-1, accept4(self->l, NULL, NULL,
				      ~(SOCK_NONBLOCK | SOCK_CLOEXEC)));
		ASSERT_EQ(EINVAL, errno);
		ASSERT_EQ(-1, accept4(self->l, NULL, NULL, O_APPEND));
		ASSERT_EQ(EINVAL, errno);

		a = accept_port(self->l, flags[i], &port);
		ASSERT_LE(0, a);
		ASSERT_EQ(lib_sock_port(c), port);
		ASSERT_EQ(!!(flags[i] & SOCK_NONBLOCK),
			  !!(fcntl(a, F_GETFL) & O_NONBLOCK));
		ASSERT_EQ(!!(flags[i] & SOCK_CLOEXEC),
			  !!(fcntl(a, F_GETFD) & FD_CLOEXEC));
		close(a);
	}
}

/*
 * The address accept() returns is the client's; the accepted socket's own
 * names mirror the client's.  A dual-stack listener shows IPv4 peers as
 * v4-mapped IPv6 addresses.
 */
TEST_F(accept_basic, accepted_addresses)
{
	struct sockaddr_storage cl, cp, pa, al, ap, lo, want;
	socklen_t len, full;
	int c, a;

	full = variant->family == AF_INET6 ? sizeof(struct sockaddr_in6) :
					     sizeof(struct sockaddr_in);
	lib_lo_addr(variant->cfamily, LIB_PORT, &lo);

	c = add_client(self, variant->cfamily, false);
	ASSERT_LE(0, c);
	len = sizeof(cl);
	ASSERT_EQ(0, getsockname(c, (struct sockaddr *)&cl, &len));
	len = sizeof(cp);
	ASSERT_EQ(0, getpeername(c, (struct sockaddr *)&cp, &len));
	ASSERT_TRUE(lib_addr_eq(&cp, &lo));

	memset(&pa, 0xa5, sizeof(pa));
	len = sizeof(pa);
	a = accept(self->l, (struct sockaddr *)&pa, &len);
	ASSERT_LE(0, a);
	ASSERT_EQ(full, len);
	lib_addr_as(variant->family, &cl, &want);
	ASSERT_TRUE(lib_addr_eq(&pa, &want));

	len = sizeof(ap);
	ASSERT_EQ(0, getpeername(a, (struct sockaddr *)&ap, &len));
	ASSERT_EQ(full, len);
	ASSERT_TRUE(lib_addr_eq(&ap, &want));
	len = sizeof(al);
	ASSERT_EQ(0, getsockname(a, (struct sockaddr *)&al, &len));
	ASSERT_EQ(full, len);
	lib_addr_as(variant->family, &lo, &want);
	ASSERT_TRUE(lib_addr_eq(&al, &want));
	close(a);

	/* A short buffer gets a truncated address and the full length. */
	c = add_client(self, variant->cfamily, false);
	ASSERT_LE(0, c);
	memset(&pa, 0xa5, sizeof(pa));
	len = sizeof(sa_family_t);
	a = accept(self->l, (struct sockaddr *)&pa, &len);
	ASSERT_LE(0, a);
	ASSERT_EQ(full, len);
	ASSERT_EQ(variant->family, pa.ss_family);
	ASSERT_EQ(0xa5, ((unsigned char *)&pa)[sizeof(sa_family_t)]);
	close(a);

	/* No buffer at all is fine too. */
	c = add_client(self, variant->cfamily, false);
	ASSERT_LE(0, c);
	a = accept(self->l, NULL, NULL);
	ASSERT_LE(0, a);
	len = sizeof(ap);
	ASSERT_EQ(0, getpeername(a, (struct sockaddr *)&ap, &len));
	ASSERT_EQ(lib_sock_port(c), lib_addr_port(&ap));
	close(a);
}

/*
 * listen() on a listening socket only changes the backlog: queued
 * connections stay queued and accept()able, and the new limit (B + 1
 * queued) applies to new arrivals in both directions.
 */
TEST_F(accept_basic, relisten_changes_backlog_keeps_queue)
{
	int cfam = variant->cfamily, ports[3], seen[3], i, j, c, a;
	unsigned int q, b;
	long long ovf;

	for (i = 0; i < 3; i++) {
		c = add_client(self, cfam, false);
		ASSERT_LE(0, c);
		ports[i] = lib_sock_port(c);
		ASSERT_EQ(i + 1, lib_wait_queued(self->l, i + 1, LIB_DEADLINE_MS));
	}

	ASSERT_EQ(0, lib_acceptq(self->l, &q, &b));
	ASSERT_EQ(3, q);
	ASSERT_EQ(16, b);

	/* Shrink below the queue length: nothing is dropped... */
	ASSERT_EQ(0, listen(self->l, 1));
	ASSERT_EQ(1, lib_getsockopt_int(self->l, SOL_SOCKET, SO_ACCEPTCONN));
	ASSERT_EQ(0, lib_acceptq(self->l, &q, &b));
	ASSERT_EQ(3, q);
	ASSERT_EQ(1, b);

	/* ...but a new SYN is: the queue is over the new limit. */
	ovf = lib_tcpext("ListenOverflows");
	ASSERT_LE(0, ovf);
	c = add_client(self, cfam, true);
	ASSERT_LE(0, c);
	ASSERT_LT(ovf, lib_wait_tcpext_above("ListenOverflows", ovf, LIB_DEADLINE_MS));
	ASSERT_EQ(TCP_SYN_SENT, lib_tcp_state(c));
	drop_client(self, self->nc - 1);
	ASSERT_EQ(3, lib_wait_queued(self->l, 3, 0));

	/* The three queued before are all still there. */
	for (i = 0; i < 3; i++) {
		a = accept_port(self->l, 0, &seen[i]);
		ASSERT_LE(0, a);
		close(a);
	}
	for (i = 0; i < 3; i++) {
		for (j = 0; j < 3; j++)
			if (seen[j] == ports[i])
				break;
		ASSERT_GT(3, j);
	}

	/* The new limit holds for new arrivals: two fit (B + 1), a third not. */
	for (i = 0; i < 2; i++) {
		ASSERT_LE(0, add_client(self, cfam, false));
		ASSERT_EQ(i + 1, lib_wait_queued(self->l, i + 1, LIB_DEADLINE_MS));
	}
	ovf = lib_tcpext("ListenOverflows");
	c = add_client(self, cfam, true);
	ASSERT_LE(0, c);
	ASSERT_LT(ovf, lib_wait_tcpext_above("ListenOverflows", ovf, LIB_DEADLINE_MS));
	ASSERT_EQ(TCP_SYN_SENT, lib_tcp_state(c));
	drop_client(self, self->nc - 1);

	/* Growing it again admits new connections at once. */
	ASSERT_EQ(0, listen(self->l, 16));
	ASSERT_EQ(0, lib_acceptq(self->l, &q, &b));
	ASSERT_EQ(2, q);
	ASSERT_EQ(16, b);
	ASSERT_LE(0, add_client(self, cfam, false));
	ASSERT_EQ(3, lib_wait_queued(self->l, 3, LIB_DEADLINE_MS));
	for (i = 0; i < 3; i++) {
		a = accept(self->l, NULL, NULL);
		ASSERT_LE(0, a);
		close(a);
	}
}

/*
 * shutdown(SHUT_RD) on a listener stops it: queued connections are reset
 * (their clients read ECONNRESET), accept() fails with EINVAL, new SYNs are
 * refused; listen() again on the same, explicitly bound port works and
 * starts from an empty queue.
 */
TEST_F(accept_basic, shutdown_rd_resets_queue_then_relisten)
{
	int fam = variant->family, cfam = variant->cfamily, i, c, a, port, r;
	struct lib_listen_row row;
	char b;

	/* Safety net: an accept() that blocks fails the test instead of hanging it. */
	ASSERT_EQ(0, set_rcvtimeo_ms(self->l, LIB_DEADLINE_MS));
	for (i = 0; i < 2; i++) {
		ASSERT_LE(0, add_client(self, cfam, false));
		ASSERT_EQ(i + 1, lib_wait_queued(self->l, i + 1, LIB_DEADLINE_MS));
	}

	ASSERT_EQ(0, shutdown(self->l, SHUT_RD));
	ASSERT_EQ(0, lib_getsockopt_int(self->l, SOL_SOCKET, SO_ACCEPTCONN));
	ASSERT_EQ(0, lib_proc_listen_row(fam, LIB_PORT, &row));
	ASSERT_EQ(0, row.rows);
	ASSERT_EQ(-1, accept4(self->l, NULL, NULL, SOCK_NONBLOCK));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(-1, accept(self->l, NULL, NULL));	/* does not block */
	ASSERT_EQ(EINVAL, errno);

	for (i = 0; i < 2; i++) {
		r = lib_wait_revents(self->c[i], 0, POLLERR | POLLHUP,
				     LIB_DEADLINE_MS);
		ASSERT_EQ(POLLERR | POLLHUP, r);
		ASSERT_EQ(-1, read(self->c[i], &b, 1));
		ASSERT_EQ(ECONNRESET, errno);
		ASSERT_EQ(0, read(self->c[i], &b, 1));
		ASSERT_EQ(TCP_CLOSE, lib_tcp_state(self->c[i]));
	}

	/* Nobody listens on the port now. */
	ASSERT_EQ(-1, lib_connect(cfam, LIB_PORT, false));
	ASSERT_EQ(ECONNREFUSED, errno);

	/* Listen again: same port, empty queue, works as before. */
	ASSERT_EQ(0, listen(self->l, 8));
	ASSERT_EQ(LIB_PORT, lib_sock_port(self->l));
	ASSERT_EQ(1, lib_getsockopt_int(self->l, SOL_SOCKET, SO_ACCEPTCONN));
	ASSERT_EQ(0, lib_proc_listen_row(fam, LIB_PORT, &row));
	ASSERT_EQ(1, row.rows);
	ASSERT_EQ(0, row.rx_queue);
	ASSERT_EQ(0, lib_wait_queued(self->l, 0, 0));
	ASSERT_EQ(0, fcntl(self->l, F_SETFL, O_NONBLOCK));
	ASSERT_EQ(-1, accept(self->l, NULL, NULL));
	ASSERT_EQ(EAGAIN, errno);

	c = add_client(self, cfam, false);
	ASSERT_LE(0, c);
	ASSERT_EQ(POLLIN, lib_poll1(self->l, POLLIN, LIB_DEADLINE_MS));
	a = accept_port(self->l, 0, &port);
	ASSERT_LE(0, a);
	ASSERT_EQ(lib_sock_port(c), port);
	close(a);
}

/* shutdown(SHUT_WR) on a listener does nothing: it keeps listening and keeps its queue. */
TEST_F(accept_basic, shutdown_wr_is_noop)
{
	int cfam = variant->cfamily, c, a, port;
	char b = 'x';

	c = add_client(self, cfam, false);
	ASSERT_LE(0, c);
	ASSERT_EQ(1, lib_wait_queued(self->l, 1, LIB_DEADLINE_MS));

	ASSERT_EQ(0, shutdown(self->l, SHUT_WR));
	ASSERT_EQ(1, lib_getsockopt_int(self->l, SOL_SOCKET, SO_ACCEPTCONN));
	ASSERT_EQ(1, lib_wait_queued(self->l, 1, 0));
	ASSERT_LE(0, add_client(self, cfam, false));
	ASSERT_EQ(2, lib_wait_queued(self->l, 2, LIB_DEADLINE_MS));

	a = accept_port(self->l, 0, &port);
	ASSERT_LE(0, a);
	ASSERT_EQ(lib_sock_port(c), port);
	/* The connection is whole: data flows both ways. */
	ASSERT_EQ(1, write(a, &b, 1));
	ASSERT_EQ(1, read(c, &b, 1));
	ASSERT_EQ(1, write(c, &b, 1));
	ASSERT_EQ(1, read(a, &b, 1));
	close(a);
	a = accept(self->l, NULL, NULL);
	ASSERT_LE(0, a);
	close(a);
}

/* SO_ACCEPTCONN is 1 only on listening sockets, and read-only; listen() on an unbound socket binds it. */
TEST_F(accept_basic, so_acceptconn)
{
	int fam = variant->family, cfam = variant->cfamily, s, c, a, one = 1, port;

	ASSERT_EQ(1, lib_getsockopt_int(self->l, SOL_SOCKET, SO_ACCEPTCONN));
	ASSERT_EQ(-1, setsockopt(self->l, SOL_SOCKET, SO_ACCEPTCONN, &one, sizeof(one)));
	ASSERT_EQ(ENOPROTOOPT, errno);

	s = socket(fam, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_LE(0, s);
	ASSERT_EQ(0, lib_getsockopt_int(s, SOL_SOCKET, SO_ACCEPTCONN));

	/* listen() without bind() picks an ephemeral port. */
	ASSERT_EQ(0, listen(s, 4));
	ASSERT_EQ(1, lib_getsockopt_int(s, SOL_SOCKET, SO_ACCEPTCONN));
	port = lib_sock_port(s);
	ASSERT_LT(0, port);
	c = lib_connect(cfam, port, false);
	ASSERT_LE(0, c);
	a = accept(s, NULL, NULL);
	ASSERT_LE(0, a);
	ASSERT_EQ(0, lib_getsockopt_int(c, SOL_SOCKET, SO_ACCEPTCONN));
	ASSERT_EQ(0, lib_getsockopt_int(a, SOL_SOCKET, SO_ACCEPTCONN));

	/* A connected socket cannot listen. */
	ASSERT_EQ(-1, listen(c, 4));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(-1, listen(a, 4));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(0, lib_getsockopt_int(c, SOL_SOCKET, SO_ACCEPTCONN));

	close(a);
	close(c);
	close(s);
}

TEST_HARNESS_MAIN
