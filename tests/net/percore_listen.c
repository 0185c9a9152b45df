// SPDX-License-Identifier: GPL-2.0
/*
 * percore_listen: the per-core listen mechanism itself.
 *
 *  - mode_sysctl_and_sockopt, reuseport_left_alone_in_mode_1: how a
 *    listener gets per-core mode: net.ipv4.tcp_percore_listen (0 or 1,
 *    per netns; anything else, 2 included, is refused with EINVAL; 1
 *    leaves SO_REUSEPORT listeners alone) and the TCP_PERCORE_LISTEN
 *    socket option, with their errors;
 *  - threads_on_every_cpu_accept_exactly_all: N threads pinned to N CPUs
 *    accept exactly the connections clients on every CPU made: none
 *    lost, none twice;
 *  - cpu_without_acceptor_is_stolen_from,
 *    blocked_accept_wakes_for_another_cpus_clone,
 *    epoll_reports_any_clone: a CPU with no accepting thread: its
 *    connections are stolen by another CPU, non-blocking accept does not
 *    say EAGAIN while any clone holds a connection, poll() and epoll
 *    report it, a blocked accept() wakes for it;
 *  - poll_and_accept_agree_for_every_thread: readiness is the same for
 *    every caller: poll() says readable exactly when a non-blocking
 *    accept() then succeeds, for a thread pinned to each CPU and for an
 *    unpinned one, whichever clone the connection waits in and whatever
 *    epoll instances other CPUs registered;
 *  - blocked_accept_on_the_connections_cpu_is_woken,
 *    epoll_exclusive_waiter_on_the_connections_cpu_is_woken: of several
 *    blocked accept()s or EPOLLEXCLUSIVE epoll_wait()s, the one on the
 *    connection's CPU wakes;
 *  - busy_exclusive_waiter_hands_off_to_an_idle_one,
 *    idle_waiter_is_woken_now,
 *    leftover_epoll_on_a_clone_does_not_hide_its_children,
 *    pinned_poller_gets_a_child_its_woken_owner_leaves: when nobody on
 *    the connection's CPU takes the wakeup (no waiter there, only a busy
 *    EPOLLEXCLUSIVE owner, a leftover epoll), an idle waiter on another
 *    CPU is woken at once (milliseconds: no timer, nothing depends on
 *    HZ), and a connection a woken owner leaves is readable for everyone;
 *  - syn_backlog_is_the_listeners,
 *    backlog_is_the_listeners_and_lengths_are_summed: the SYN_RECV count
 *    that triggers syncookies and the accept backlog are the listener's,
 *    over all clones together (up to one more per CPU for additions that
 *    race), as upstream's; queue lengths are summed over the clones, and
 *    overflows are counted;
 *  - listener_freed_after_its_requests,
 *    failed_first_listen_leaves_an_ordinary_socket: request sockets'
 *    references on the listener, and a first listen() that fails;
 *  - close_with_pending_in_every_clone, shutdown_then_listen_again,
 *    listen_again_updates_backlog: close() and shutdown() with
 *    connections pending in every clone: all reset, socket counts back
 *    where they started; listen() again keeps per-core mode and updates
 *    the backlog;
 *  - listener_in_a_sockmap_keeps_working: a per-core listener put in a
 *    BPF sockmap afterwards keeps working.
 *
 * On loopback the receive softirq runs on the sending CPU, so a client
 * pinned to CPU k has its SYNs processed on CPU k: its connections wait in
 * clone k.  Variants: ipv4, ipv6, dualstack.  Every test runs in a netns
 * of its own.  MP_TEST_SCALE scales connection counts.
 */
#include <linux/bpf.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "percore_lib.h"

#define MAXC	PCL_MAX_CPUS

FIXTURE(pcl) {
	int l;
	int ncpu;
	int cpus[MAXC];
	long base;		/* TCP inuse before the test */
};

FIXTURE_VARIANT(pcl) {
	int family;		/* listener's */
	int cfamily;		/* clients' */
};

FIXTURE_VARIANT_ADD(pcl, ipv4) {
	.family = AF_INET,
	.cfamily = AF_INET,
};

FIXTURE_VARIANT_ADD(pcl, ipv6) {
	.family = AF_INET6,
	.cfamily = AF_INET6,
};

FIXTURE_VARIANT_ADD(pcl, dualstack) {
	.family = AF_INET6,
	.cfamily = AF_INET,
};

FIXTURE_SETUP(pcl)
{
	self->l = -1;
	self->ncpu = lib_cpus(self->cpus, MAXC);
	ASSERT_LT(0, self->ncpu);
	if (lib_netns_enter()) {
		if (errno == EPERM)
			SKIP(return, "needs CAP_SYS_ADMIN for a netns");
		ASSERT_EQ(0, -errno);
	}
	/* The feature must be there: this is its test. */
	ASSERT_EQ(0, pcl_set_mode(1)) TH_LOG("%s: %s", PCL_SYSCTL, strerror(errno));
	ASSERT_EQ(0, lib_sysctl_write("/proc/sys/net/core/somaxconn", 65535));
	self->base = lib_tcp_inuse();
	ASSERT_LE(0, self->base);
}

FIXTURE_TEARDOWN(pcl)
{
	if (self->l >= 0)
		close(self->l);
}

static int pcl_listen(FIXTURE_DATA(pcl) *self,
		      const FIXTURE_VARIANT(pcl) *variant, int backlog, int opt)
{
	self->l = pcl_listener(variant->family,
			       variant->family != variant->cfamily, LIB_PORT,
			       backlog, opt);
	/* Non-blocking: accept() says EAGAIN when every clone is empty. */
	if (self->l >= 0 && fcntl(self->l, F_SETFL, O_NONBLOCK))
		return -1;
	return self->l;
}

/* Wait until TCP inuse of this netns is back to base (frees are deferred). */
static long wait_inuse(long base)
{
	return lib_wait_count(lib_tcp_inuse, base, LIB_DEADLINE_MS);
}

/* Non-blocking accept with a deadline: the fd, or -1 (errno). */
static int accept_deadline(int l, int timeout_ms)
{
	uint64_t end = lib_now_ms() + timeout_ms;
	int fd;

	for (;;) {
		fd = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0 || errno != EAGAIN || lib_now_ms() >= end)
			return fd;
		lib_poll1(l, POLLIN, 50);
	}
}

TEST_F(pcl, mode_sysctl_and_sockopt)
{
	int s, v = 2;

	/* sysctl 1: on, and the option reads -1 before listen(). */
	s = socket(variant->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_LE(0, s);
	EXPECT_EQ(-1, pcl_get(s));
	EXPECT_EQ(-1, setsockopt(s, IPPROTO_TCP, TCP_PERCORE_LISTEN, &v, sizeof(v)));
	EXPECT_EQ(EINVAL, errno);
	close(s);
	ASSERT_LE(0, pcl_listen(self, variant, 16, -1));
	EXPECT_EQ(1, pcl_get(self->l));
	/* Fixed at listen(). */
	EXPECT_EQ(-1, pcl_set(self->l, 0));
	EXPECT_EQ(EBUSY, errno);
	EXPECT_EQ(1, pcl_get(self->l));
	close(self->l);
	self->l = -1;

	/* Opt out under sysctl 1. */
	ASSERT_LE(0, pcl_listen(self, variant, 16, 0));
	EXPECT_EQ(0, pcl_get(self->l));
	close(self->l);

	/* Opt in under sysctl 0; plain listener is off. */
	ASSERT_EQ(0, pcl_set_mode(0));
	ASSERT_LE(0, pcl_listen(self, variant, 16, -1));
	EXPECT_EQ(0, pcl_get(self->l));
	close(self->l);
	ASSERT_LE(0, pcl_listen(self, variant, 16, 1));
	EXPECT_EQ(1, pcl_get(self->l));
	close(self->l);
	self->l = -1;

	/* Out of range sysctl values are refused: 2 (a mode no more) too. */
	for (v = 2; v <= 3; v++) {
		errno = 0;
		EXPECT_EQ(-1, pcl_set_mode(v)) {
			TH_LOG("%s accepted %d", PCL_SYSCTL, v);
		}
		EXPECT_EQ(EINVAL, errno);
		EXPECT_EQ(0, lib_sysctl_read(PCL_SYSCTL)) {
			TH_LOG("a refused %d changed %s", v, PCL_SYSCTL);
		}
	}
}

/*
 * Mode 1 leaves a SO_REUSEPORT listener alone (each member is a queue of
 * its own already); TCP_PERCORE_LISTEN=1 still makes it per-core, and =0
 * keeps it plain.
 */
TEST_F(pcl, reuseport_left_alone_in_mode_1)
{
	int one = 1, s, opt;
	struct sockaddr_storage ss;
	socklen_t len = lib_lo_addr(variant->family, LIB_PORT, &ss);

	ASSERT_EQ(0, pcl_set_mode(1));
	for (opt = -1; opt <= 1; opt++) {
		s = socket(variant->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		ASSERT_LE(0, s);
		ASSERT_EQ(0, setsockopt(s, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)));
		if (opt >= 0)
			ASSERT_EQ(0, pcl_set(s, opt));
		ASSERT_EQ(0, bind(s, (struct sockaddr *)&ss, len));
		ASSERT_EQ(0, listen(s, 8));
		EXPECT_EQ(opt == 1 ? 1 : 0, pcl_get(s)) {
			TH_LOG("SO_REUSEPORT listener, TCP_PERCORE_LISTEN %s: per-core %d",
			       opt < 0 ? "unset" : opt ? "1" : "0", pcl_get(s));
		}
		close(s);
	}
}

struct acceptor {
	int l;
	int cpu;
	int want;		/* stop after this many (shared counter) */
	int *total;
	pthread_mutex_t *mu;
	int *ports;		/* peer ports accepted, by thread */
	int n;
	int err;
};

static void *accept_thread(void *arg)
{
	struct acceptor *a = arg;

	if (lib_pin(a->cpu)) {
		a->err = errno;
		return NULL;
	}
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd;

		pthread_mutex_lock(a->mu);
		if (*a->total >= a->want) {
			pthread_mutex_unlock(a->mu);
			break;
		}
		pthread_mutex_unlock(a->mu);
		fd = accept4(a->l, (struct sockaddr *)&ss, &len,
			     SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN) {
				a->err = errno;
				break;
			}
			lib_poll1(a->l, POLLIN, 20);
			continue;
		}
		pthread_mutex_lock(a->mu);
		(*a->total)++;
		pthread_mutex_unlock(a->mu);
		a->ports[a->n++] = lib_addr_port(&ss);
		close(fd);
	}
	return NULL;
}

struct client {
	int family;
	int cpu;
	int n;
	int *fds;
	int err;
};

static void *connect_thread(void *arg)
{
	struct client *c = arg;

	if (lib_pin(c->cpu)) {
		c->err = errno;
		return NULL;
	}
	for (int i = 0; i < c->n; i++) {
		c->fds[i] = lib_connect(c->family, LIB_PORT, false);
		if (c->fds[i] < 0) {
			c->err = errno;
			return NULL;
		}
	}
	return NULL;
}

/* Clients on each CPU make per connections; returns the total, or -1. */
static int connect_from_cpus(int family, const int *cpus, int ncpu, int per,
			     struct client *cl)
{
	pthread_t th[MAXC];
	int total = 0;

	for (int i = 0; i < ncpu; i++) {
		cl[i].family = family;
		cl[i].cpu = cpus[i];
		cl[i].n = per;
		cl[i].err = 0;
		cl[i].fds = malloc(per * sizeof(int));
		if (!cl[i].fds)
			return -1;
		for (int j = 0; j < per; j++)
			cl[i].fds[j] = -1;
		if (pthread_create(&th[i], NULL, connect_thread, &cl[i]))
			return -1;
	}
	for (int i = 0; i < ncpu; i++) {
		pthread_join(th[i], NULL);
		if (cl[i].err) {
			errno = cl[i].err;
			total = -1;
		} else if (total >= 0) {
			total += per;
		}
	}
	return total;
}

static void free_clients(struct client *cl, int ncpu)
{
	for (int i = 0; i < ncpu; i++) {
		for (int j = 0; j < cl[i].n && cl[i].fds; j++)
			if (cl[i].fds[j] >= 0)
				close(cl[i].fds[j]);
		free(cl[i].fds);
		cl[i].fds = NULL;
	}
}

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

TEST_F(pcl, threads_on_every_cpu_accept_exactly_all)
{
	int per = lib_scaled(100, 4), n = self->ncpu, total = 0, got = 0;
	struct acceptor acc[MAXC];
	struct client cl[MAXC];
	struct pcl_counters c0, c1;
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	pthread_t th[MAXC];
	int *client_ports, *accepted, k = 0;

	ASSERT_EQ(0, lib_raise_nofile(2 * n * per + 64));
	/* the backlog is the listener's: room for every client at once */
	ASSERT_LE(0, pcl_listen(self, variant,
				n * per + 64 > 4096 ? n * per + 64 : 4096, -1));
	ASSERT_EQ(1, pcl_get(self->l));
	ASSERT_EQ(0, pcl_counters(-1, &c0));

	for (int i = 0; i < n; i++) {
		acc[i] = (struct acceptor){ .l = self->l, .cpu = self->cpus[i],
			.want = n * per, .total = &total, .mu = &mu };
		acc[i].ports = calloc(n * per, sizeof(int));
		ASSERT_NE(NULL, acc[i].ports);
		ASSERT_EQ(0, pthread_create(&th[i], NULL, accept_thread, &acc[i]));
	}
	ASSERT_EQ(n * per, connect_from_cpus(variant->cfamily, self->cpus, n,
					     per, cl));
	for (int i = 0; i < n; i++) {
		pthread_join(th[i], NULL);
		EXPECT_EQ(0, acc[i].err) TH_LOG("acceptor %d: %s", i, strerror(acc[i].err));
		got += acc[i].n;
	}
	EXPECT_EQ(n * per, got);

	/* The same set of connections: client ports == accepted peer ports. */
	client_ports = malloc(n * per * sizeof(int));
	accepted = malloc(n * per * sizeof(int));
	ASSERT_NE(NULL, client_ports);
	ASSERT_NE(NULL, accepted);
	for (int i = 0; i < n; i++)
		for (int j = 0; j < per; j++)
			client_ports[i * per + j] = lib_sock_port(cl[i].fds[j]);
	for (int i = 0; i < n; i++)
		for (int j = 0; j < acc[i].n && k < n * per; j++)
			accepted[k++] = acc[i].ports[j];
	ASSERT_EQ(n * per, k);
	qsort(client_ports, k, sizeof(int), cmp_int);
	qsort(accepted, k, sizeof(int), cmp_int);
	for (int i = 0; i < k; i++) {
		ASSERT_EQ(client_ports[i], accepted[i]) TH_LOG("connection %d", i);
		if (i)
			ASSERT_NE(accepted[i - 1], accepted[i]);
	}

	/* Every accept() is counted as local or stolen. */
	ASSERT_EQ(0, pcl_counters(-1, &c1));
	EXPECT_EQ(n * per, (c1.local_accepts - c0.local_accepts) +
			   (c1.steals - c0.steals));
	EXPECT_LT(0, c1.local_accepts - c0.local_accepts);

	free(client_ports);
	free(accepted);
	for (int i = 0; i < n; i++)
		free(acc[i].ports);
	free_clients(cl, n);
}

TEST_F(pcl, cpu_without_acceptor_is_stolen_from)
{
	int k = lib_scaled(50, 4), far, fd, i;
	struct pcl_counters c0, c1, f0, f1;
	struct client cl[1];
	unsigned int q;

	if (self->ncpu < 2)
		SKIP(return, "needs 2 CPUs");
	far = self->cpus[self->ncpu - 1];
	ASSERT_LE(0, pcl_listen(self, variant, 1024, -1));
	ASSERT_EQ(0, lib_pin(self->cpus[0]));

	/* Empty: EAGAIN, not readable. */
	EXPECT_EQ(-1, accept4(self->l, NULL, NULL, SOCK_NONBLOCK));
	EXPECT_EQ(EAGAIN, errno);
	EXPECT_EQ(0, lib_poll1(self->l, POLLIN, 0));

	ASSERT_EQ(0, pcl_counters(-1, &c0));
	ASSERT_EQ(0, pcl_counters(far, &f0));
	ASSERT_EQ(k, connect_from_cpus(variant->cfamily, &far, 1, k, cl));
	ASSERT_EQ(k, lib_wait_queued(self->l, k, LIB_DEADLINE_MS));
	ASSERT_EQ(0, lib_acceptq(self->l, &q, NULL));
	EXPECT_EQ(k, q);
	/* Only clone "far" holds them; CPU 0 still sees the listener ready. */
	EXPECT_EQ(POLLIN, lib_poll1(self->l, POLLIN, 0) & POLLIN);

	for (i = 0; i < k; i++) {
		fd = accept4(self->l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		ASSERT_LE(0, fd) TH_LOG("accept %d of %d: %s", i, k, strerror(errno));
		close(fd);
	}
	EXPECT_EQ(-1, accept4(self->l, NULL, NULL, SOCK_NONBLOCK));
	EXPECT_EQ(EAGAIN, errno);
	EXPECT_EQ(0, lib_poll1(self->l, POLLIN, 0));

	ASSERT_EQ(0, pcl_counters(-1, &c1));
	ASSERT_EQ(0, pcl_counters(far, &f1));
	EXPECT_EQ(k, c1.steals - c0.steals);
	EXPECT_EQ(0, c1.local_accepts - c0.local_accepts);
	/* The steals were made on CPU 0, not on the far CPU. */
	EXPECT_EQ(0, f1.steals - f0.steals);
	free_clients(cl, 1);
}

/* CLOCK_MONOTONIC in microseconds. */
static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* pthread_join() with a deadline: 0, or ETIMEDOUT. */
static int join_deadline(pthread_t th, int timeout_ms)
{
	struct timespec ts;

	lib_deadline_ts(&ts, timeout_ms);
	return pthread_timedjoin_np(th, NULL, &ts);
}

/* Remote port of a connected socket, or -1. */
static int peer_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getpeername(fd, (struct sockaddr *)&ss, &len))
		return -1;
	return lib_addr_port(&ss);
}

struct blocker {
	int l;
	int cpu;
	pid_t tid;
	int fd;
	int err;
	uint64_t done_us;	/* now_us() when accept() returned */
};

static void *blocking_accept(void *arg)
{
	struct blocker *b = arg;

	b->tid = syscall(SYS_gettid);
	if (lib_pin(b->cpu)) {
		b->err = errno;
		return NULL;
	}
	b->fd = accept4(b->l, NULL, NULL, SOCK_CLOEXEC);
	b->done_us = now_us();
	if (b->fd < 0)
		b->err = errno;
	return NULL;
}

TEST_F(pcl, blocked_accept_wakes_for_another_cpus_clone)
{
	struct blocker b = { .fd = -1 };
	pthread_t th;
	int far, c;

	if (self->ncpu < 2)
		SKIP(return, "needs 2 CPUs");
	far = self->cpus[self->ncpu - 1];
	ASSERT_LE(0, pcl_listen(self, variant, 16, -1));
	ASSERT_EQ(0, fcntl(self->l, F_SETFL, 0));	/* blocking accept() */
	b.l = self->l;
	b.cpu = self->cpus[0];
	ASSERT_EQ(0, pthread_create(&th, NULL, blocking_accept, &b));
	while (!__atomic_load_n(&b.tid, __ATOMIC_ACQUIRE))
		lib_tick();
	ASSERT_EQ(0, lib_wait_blocked(b.tid, SYS_accept4, SYS_accept,
				      LIB_DEADLINE_MS));
	ASSERT_EQ(0, lib_pin(far));
	c = lib_connect(variant->cfamily, LIB_PORT, false);
	ASSERT_LE(0, c);
	pthread_join(th, NULL);
	EXPECT_EQ(0, b.err);
	EXPECT_LE(0, b.fd);
	if (b.fd >= 0) {
		/* The accepted socket is the client's peer. */
		EXPECT_EQ(1, write(c, "x", 1));
		char ch = 0;

		EXPECT_EQ(1, read(b.fd, &ch, 1));
		EXPECT_EQ('x', ch);
		close(b.fd);
	}
	close(c);
}

/*
 * Two threads blocked in accept(), on the first and the last CPU; the one
 * on the first CPU went to sleep first, so upstream's wake-one would pick
 * it for every connection.  A connection from the last CPU must wake the
 * thread on the last CPU, and one from the first CPU the thread there:
 * each takes its own CPU's connection (two local accepts, no steal).
 */
TEST_F(pcl, blocked_accept_on_the_connections_cpu_is_woken)
{
	struct blocker b[2];
	struct pcl_counters c0, c1;
	pthread_t th[2];
	int c[2], i;

	if (self->ncpu < 2)
		SKIP(return, "needs 2 CPUs");
	ASSERT_LE(0, pcl_listen(self, variant, 16, -1));
	ASSERT_EQ(0, fcntl(self->l, F_SETFL, 0));	/* blocking */
	ASSERT_EQ(0, pcl_counters(-1, &c0));
	for (i = 0; i < 2; i++) {
		b[i] = (struct blocker){ .fd = -1, .l = self->l };
		b[i].cpu = self->cpus[i ? self->ncpu - 1 : 0];
		ASSERT_EQ(0, pthread_create(&th[i], NULL, blocking_accept, &b[i]));
		while (!__atomic_load_n(&b[i].tid, __ATOMIC_ACQUIRE))
			lib_tick();
		ASSERT_EQ(0, lib_wait_blocked(b[i].tid, SYS_accept4, SYS_accept,
					      LIB_DEADLINE_MS));
	}
	/* The last CPU's connection: b[1] wakes, b[0] sleeps on. */
	ASSERT_EQ(0, lib_pin(b[1].cpu));
	c[1] = lib_connect(variant->cfamily, LIB_PORT, false);
	ASSERT_LE(0, c[1]);
	/* Upstream's choice, b[0], would take it, b[1] sleeping on. */
	ASSERT_EQ(0, join_deadline(th[1], LIB_DEADLINE_MS)) {
		TH_LOG("the last CPU's thread was not woken for its connection");
	}
	EXPECT_EQ(0, b[1].err);
	ASSERT_LE(0, b[1].fd);
	EXPECT_EQ(EBUSY, pthread_tryjoin_np(th[0], NULL)) {
		TH_LOG("the first CPU's thread returned for the last CPU's connection");
	}
	/* Then the first CPU's. */
	ASSERT_EQ(0, lib_pin(b[0].cpu));
	c[0] = lib_connect(variant->cfamily, LIB_PORT, false);
	ASSERT_LE(0, c[0]);
	ASSERT_EQ(0, join_deadline(th[0], LIB_DEADLINE_MS));
	EXPECT_EQ(0, b[0].err);
	ASSERT_LE(0, b[0].fd);
	/* Each took its own CPU's connection: two local accepts, no steal. */
	ASSERT_EQ(0, pcl_counters(-1, &c1));
	EXPECT_EQ(2, c1.local_accepts - c0.local_accepts);
	EXPECT_EQ(0, c1.steals - c0.steals);
	for (i = 0; i < 2; i++) {
		EXPECT_EQ(lib_sock_port(c[i]), peer_port(b[i].fd));
		close(b[i].fd);
		close(c[i]);
	}
}

TEST_F(pcl, epoll_reports_any_clone)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE };
	int ep, c, far, fd;

	if (self->ncpu < 2)
		SKIP(return, "needs 2 CPUs");
	far = self->cpus[self->ncpu - 1];
	ASSERT_LE(0, pcl_listen(self, variant, 16, -1));
	ep = epoll_create1(EPOLL_CLOEXEC);
	ASSERT_LE(0, ep);
	ASSERT_EQ(0, epoll_ctl(ep, EPOLL_CTL_ADD, self->l, &ev));
	ASSERT_EQ(0, lib_pin(self->cpus[0]));
	EXPECT_EQ(0, epoll_wait(ep, &ev, 1, 0));

	ASSERT_EQ(0, lib_pin(far));
	c = lib_connect(variant->cfamily, LIB_PORT, false);
	ASSERT_LE(0, c);
	ASSERT_EQ(0, lib_pin(self->cpus[0]));
	EXPECT_EQ(1, epoll_wait(ep, &ev, 1, LIB_DEADLINE_MS));
	fd = accept4(self->l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	EXPECT_LE(0, fd);
	EXPECT_EQ(0, epoll_wait(ep, &ev, 1, 0));
	if (fd >= 0)
		close(fd);
	close(c);
	close(ep);
}

/*
 * poll_and_accept_agree_for_every_thread: threads that take turns, one at
 * a time, each doing poll(listener, 0) and then a non-blocking accept4().
 */
struct agree {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int turn;		/* the checker whose turn it is; -1: none */
	bool stop;
};

struct checker {
	struct agree *ag;
	int idx;
	int l;
	int cpu;		/* pinned to; -1: unpinned */
	const int *cpus;	/* the test's CPUs, for the unpinned one */
	int ncpu;
	int err;		/* pinning failed */
	/* the last turn */
	int ran_on;		/* sched_getcpu() just before poll() */
	int poll_ret;
	int poll_err;
	bool readable;		/* poll() said POLLIN */
	int fd;			/* accept4()'s result */
	int accept_err;
	struct sockaddr_storage peer;
};

static void *checker_fn(void *arg)
{
	struct checker *k = arg;
	struct agree *ag = k->ag;
	cpu_set_t set;
	int i;

	if (k->cpu >= 0) {
		if (lib_pin(k->cpu))
			k->err = errno;
	} else {
		CPU_ZERO(&set);
		for (i = 0; i < k->ncpu; i++)
			CPU_SET(k->cpus[i], &set);
		if (sched_setaffinity(0, sizeof(set), &set))
			k->err = errno;
	}
	pthread_mutex_lock(&ag->mu);
	for (;;) {
		struct pollfd pfd = { .fd = k->l, .events = POLLIN };
		socklen_t len = sizeof(k->peer);

		while (!ag->stop && ag->turn != k->idx)
			pthread_cond_wait(&ag->cv, &ag->mu);
		if (ag->stop)
			break;
		pthread_mutex_unlock(&ag->mu);
		/* poll(), then accept() at once: nobody else is at it */
		k->ran_on = sched_getcpu();
		k->poll_ret = poll(&pfd, 1, 0);
		k->poll_err = k->poll_ret < 0 ? errno : 0;
		k->readable = k->poll_ret == 1 && (pfd.revents & POLLIN);
		k->fd = accept4(k->l, (struct sockaddr *)&k->peer, &len,
				SOCK_NONBLOCK | SOCK_CLOEXEC);
		k->accept_err = k->fd < 0 ? errno : 0;
		pthread_mutex_lock(&ag->mu);
		ag->turn = -1;
		pthread_cond_broadcast(&ag->cv);
	}
	pthread_mutex_unlock(&ag->mu);
	return NULL;
}

/* Give checker idx its turn and wait until it is done: 0, or ETIMEDOUT. */
static int agree_turn(struct agree *ag, int idx, int timeout_ms)
{
	struct timespec ts;
	int ret = 0;

	lib_deadline_ts(&ts, timeout_ms);
	pthread_mutex_lock(&ag->mu);
	ag->turn = idx;
	pthread_cond_broadcast(&ag->cv);
	while (ag->turn != -1 && ret != ETIMEDOUT)
		ret = pthread_cond_timedwait(&ag->cv, &ag->mu, &ts);
	ret = ag->turn == -1 ? 0 : ETIMEDOUT;
	pthread_mutex_unlock(&ag->mu);
	return ret;
}

static void agree_stop(struct agree *ag)
{
	pthread_mutex_lock(&ag->mu);
	ag->stop = true;
	pthread_cond_broadcast(&ag->cv);
	pthread_mutex_unlock(&ag->mu);
}

/*
 * Readiness is the same for every caller.  A thread pinned to each CPU
 * and one unpinned thread take turns, the others idle: poll(listener, 0),
 * then at once a non-blocking accept4().  Before each turn the main thread
 * connects from a random CPU (at least 3 turns in 5 of a pinned thread:
 * from another CPU than the thread's, so that the connection waits in a
 * clone not its own), or, one turn in 5, not at all.  "Foreign" pollers:
 * from every CPU an EPOLLEXCLUSIVE epoll registered the listener there,
 * and nobody ever waits in them (a busy server's).  Each turn, poll() must
 * say readable exactly when accept() then succeeds, and that is exactly
 * when a connection waits; every foreign epoll reports the listener
 * readable then, and not once the connection is taken.  Per-CPU
 * readiness, or children hidden from other CPUs while a clone has
 * waiters, fail here: a thread pinned to one CPU told "not readable"
 * while another clone holds a connection.
 */
TEST_F_TIMEOUT(pcl, poll_and_accept_agree_for_every_thread, 120)
{
	int n = self->ncpu, nth = n + 1, rounds = lib_scaled(200, 20);
	struct agree ag = { .turn = -1 };
	struct checker *k;
	struct pcl_counters c0, c1;
	int *fep, *turns, *foreign, r, i, started = 0;
	unsigned int seed = (unsigned int)time(NULL) ^ (unsigned int)getpid();
	pthread_t *th;

	if (n < 2)
		SKIP(return, "needs 2 CPUs");
	/* every thread sees every kind of turn */
	if (rounds < 5 * nth)
		rounds = 5 * nth;
	ASSERT_EQ(0, pthread_mutex_init(&ag.mu, NULL));
	ASSERT_EQ(0, pthread_cond_init(&ag.cv, NULL));
	k = calloc(nth, sizeof(*k));
	th = calloc(nth, sizeof(*th));
	fep = calloc(n, sizeof(*fep));
	turns = calloc(nth, sizeof(*turns));
	foreign = calloc(nth, sizeof(*foreign));
	ASSERT_NE(NULL, k);
	ASSERT_NE(NULL, th);
	ASSERT_NE(NULL, fep);
	ASSERT_NE(NULL, turns);
	ASSERT_NE(NULL, foreign);
	ASSERT_LE(0, pcl_listen(self, variant, 64, -1));
	ASSERT_EQ(1, pcl_get(self->l));
	TH_LOG("%d rounds, %d threads, seed %u", rounds, nth, seed);

	/* The foreign pollers: registered from each CPU, never waited in. */
	for (i = 0; i < n; i++) {
		struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE };

		ASSERT_EQ(0, lib_pin(self->cpus[i]));
		fep[i] = epoll_create1(EPOLL_CLOEXEC);
		ASSERT_LE(0, fep[i]);
		ASSERT_EQ(0, epoll_ctl(fep[i], EPOLL_CTL_ADD, self->l, &ev));
	}

	for (i = 0; i < nth; i++) {
		k[i] = (struct checker){ .ag = &ag, .idx = i, .l = self->l,
			.cpu = i < n ? self->cpus[i] : -1, .cpus = self->cpus,
			.ncpu = n, .fd = -1 };
		ASSERT_EQ(0, pthread_create(&th[i], NULL, checker_fn, &k[i]));
		started++;
	}

	for (r = 0; r < rounds; r++) {
		int t = r % nth, own = k[t].cpu, phase = (r / nth) % 5;
		int from = -1, c = -1, port = -1;
		char who[48];
		bool want;

		if (own >= 0)
			snprintf(who, sizeof(who), "the thread pinned to cpu %d", own);
		else
			snprintf(who, sizeof(who), "the unpinned thread");
		if (phase < 4) {
			/* phases 0-2: another CPU than a pinned thread's */
			do
				from = self->cpus[rand_r(&seed) % n];
			while (phase < 3 && from == own);
			ASSERT_EQ(0, lib_pin(from));
			c = lib_connect(variant->cfamily, LIB_PORT, false);
			ASSERT_LE(0, c) TH_LOG("round %d: connect: %s", r, strerror(errno));
			port = lib_sock_port(c);
			ASSERT_EQ(1, lib_wait_queued(self->l, 1, LIB_DEADLINE_MS)) {
				TH_LOG("round %d: the connection from cpu %d was not queued",
				       r, from);
			}
		} else {
			ASSERT_EQ(0, lib_wait_queued(self->l, 0, 0));
		}
		want = c >= 0;

		/*
		 * Every foreign epoll sees it: no exclusive waiter takes the
		 * wakeup, so it reaches all of them.  poll() on the epoll fd
		 * (not epoll_wait()) waits without taking it.
		 */
		for (i = 0; i < n && want; i++) {
			EXPECT_EQ(POLLIN, lib_poll1(fep[i], POLLIN, LIB_DEADLINE_MS)) {
				TH_LOG("round %d: the epoll registered from cpu %d does not report the connection from cpu %d",
				       r, self->cpus[i], from);
			}
		}

		ASSERT_EQ(0, pcl_counters(-1, &c0));
		ASSERT_EQ(0, agree_turn(&ag, t, LIB_DEADLINE_MS)) {
			TH_LOG("round %d: %s did not take its turn", r, who);
		}
		ASSERT_EQ(0, pcl_counters(-1, &c1));
		ASSERT_EQ(0, k[t].err) {
			TH_LOG("%s: affinity: %s", who, strerror(k[t].err));
		}
		ASSERT_LE(0, k[t].poll_ret) {
			TH_LOG("round %d: %s: poll: %s", r, who,
			       strerror(k[t].poll_err));
		}
		turns[t]++;
		if (want && from != (own >= 0 ? own : k[t].ran_on))
			foreign[t]++;

		/* The rule: readable <=> accept() succeeds. */
		ASSERT_EQ(k[t].readable, k[t].fd >= 0) {
			TH_LOG("round %d: %s, on cpu %d: poll() said %s, then accept() %s (%s); %s",
			       r, who, k[t].ran_on,
			       k[t].readable ? "readable" : "not readable",
			       k[t].fd >= 0 ? "succeeded" : "failed",
			       strerror(k[t].accept_err),
			       want ? "one connection waited" : "none waited");
		}
		/* And it says what is there. */
		ASSERT_EQ(want, k[t].readable) {
			if (want)
				TH_LOG("round %d: %s, on cpu %d, was told \"not readable\" while a connection waited in cpu %d's clone",
				       r, who, k[t].ran_on, from);
			else
				TH_LOG("round %d: %s, on cpu %d, was told \"readable\" with no connection waiting",
				       r, who, k[t].ran_on);
		}
		if (want) {
			ASSERT_EQ(port, lib_addr_port(&k[t].peer)) {
				TH_LOG("round %d: %s accepted another connection than the one made",
				       r, who);
			}
			/* it waited in its client's CPU's clone */
			ASSERT_EQ(1, (c1.local_accepts - c0.local_accepts) +
				     (c1.steals - c0.steals));
			if (own >= 0) {
				ASSERT_EQ(from != own, c1.steals - c0.steals) {
					TH_LOG("round %d: the connection from cpu %d, accepted on cpu %d, was %s",
					       r, from, own,
					       from != own ? "not a steal" : "a steal");
				}
			}
			close(k[t].fd);
			k[t].fd = -1;
			close(c);
		} else {
			ASSERT_EQ(EAGAIN, k[t].accept_err) {
				TH_LOG("round %d: %s: accept() on an empty listener: %s, not EAGAIN",
				       r, who, strerror(k[t].accept_err));
			}
		}

		/* Taken, or none: no foreign epoll reports the listener. */
		for (i = 0; i < n; i++) {
			EXPECT_EQ(0, lib_poll1(fep[i], POLLIN, 0)) {
				TH_LOG("round %d: the epoll registered from cpu %d reports an empty listener",
				       r, self->cpus[i]);
			}
		}
	}

	/* The turns that matter were there: a connection in another clone. */
	for (i = 0; i < n; i++) {
		EXPECT_LE(turns[i], 2 * foreign[i]) {
			TH_LOG("the thread pinned to cpu %d had %d turns, only %d with the connection in another CPU's clone",
			       self->cpus[i], turns[i], foreign[i]);
		}
	}
	TH_LOG("the unpinned thread: %d turns, %d with the connection in another CPU's clone than the one it polled on",
	       turns[n], foreign[n]);

	agree_stop(&ag);
	for (i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < n; i++)
		close(fep[i]);
	free(k);
	free(th);
	free(fep);
	free(turns);
	free(foreign);
}

struct epoller {
	int l;
	int cpu;
	pid_t tid;
	int n;		/* epoll_wait's result */
	int err;
	int fd;		/* accepted once woken, as a server does; or -1 */
	uint64_t done_us;	/* now_us() when that accept() returned */
	bool keep;	/* do not accept; keep the epoll (in ep) registered */
	int ep;
};

/* Pinned first, then its own epoll with the listener: EPOLLEXCLUSIVE. */
static void *epoll_waiter(void *arg)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE };
	struct epoller *e = arg;
	int ep;

	if (lib_pin(e->cpu)) {
		e->err = errno;
		return NULL;
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, e->l, &ev)) {
		e->err = errno;
		return NULL;
	}
	__atomic_store_n(&e->tid, syscall(SYS_gettid), __ATOMIC_RELEASE);
	e->n = epoll_wait(ep, &ev, 1, 3 * LIB_DEADLINE_MS);
	if (e->n < 0)
		e->err = errno;
	if (e->keep) {
		e->ep = ep;
		return NULL;
	}
	/* Take the connection at once, as a server does. */
	e->fd = e->n == 1 ? accept4(e->l, NULL, NULL,
				    SOCK_NONBLOCK | SOCK_CLOEXEC) : -1;
	e->done_us = now_us();
	close(ep);
	return NULL;
}

/*
 * Two threads in epoll_wait() with EPOLLEXCLUSIVE, each with its own epoll
 * set up on its own CPU, the first CPU's first: upstream's wake-one picks
 * the first registered for every connection.  A connection from the last
 * CPU must wake the last CPU's thread and leave the first asleep.
 */
TEST_F(pcl, epoll_exclusive_waiter_on_the_connections_cpu_is_woken)
{
	struct epoller e[2] = { { .n = -2, .fd = -1 }, { .n = -2, .fd = -1 } };
	pthread_t th[2];
	int c[2], i;

	if (self->ncpu < 2)
		SKIP(return, "needs 2 CPUs");
	ASSERT_LE(0, pcl_listen(self, variant, 16, -1));
	for (i = 0; i < 2; i++) {
		e[i].l = self->l;
		e[i].cpu = self->cpus[i ? self->ncpu - 1 : 0];
		ASSERT_EQ(0, pthread_create(&th[i], NULL, epoll_waiter, &e[i]));
		while (!__atomic_load_n(&e[i].tid, __ATOMIC_ACQUIRE))
			lib_tick();
		ASSERT_EQ(0, lib_wait_blocked(e[i].tid, SYS_epoll_wait,
					      SYS_epoll_pwait, LIB_DEADLINE_MS));
	}
	ASSERT_EQ(0, lib_pin(e[1].cpu));
	c[1] = lib_connect(variant->cfamily, LIB_PORT, false);
	ASSERT_LE(0, c[1]);
	ASSERT_EQ(0, join_deadline(th[1], LIB_DEADLINE_MS))
		TH_LOG("the last CPU's epoll was not woken for its connection");
	EXPECT_EQ(0, e[1].err);
	EXPECT_EQ(1, e[1].n);
	EXPECT_LE(0, e[1].fd);
	/* the first CPU's thread still sleeps: it was not woken */
	usleep(200 * 1000);
	EXPECT_EQ(EBUSY, pthread_tryjoin_np(th[0], NULL))
		TH_LOG("the first CPU's epoll was woken for the last CPU's connection");
	/* a connection from the first CPU wakes it */
	ASSERT_EQ(0, lib_pin(e[0].cpu));
	c[0] = lib_connect(variant->cfamily, LIB_PORT, false);
	ASSERT_LE(0, c[0]);
	ASSERT_EQ(0, join_deadline(th[0], LIB_DEADLINE_MS));
	EXPECT_EQ(1, e[0].n);
	EXPECT_LE(0, e[0].fd);
	for (i = 0; i < 2; i++) {
		if (e[i].fd >= 0)
			close(e[i].fd);
		close(c[i]);
	}
}

/*
 * Work conservation: the first CPU's thread registered its EPOLLEXCLUSIVE
 * epoll there but is busy (not in epoll_wait); the last CPU's thread
 * waits.  Nobody on the first CPU takes the wakeup for a connection from
 * there, so the idle thread must be woken at once (the listener's queue,
 * as upstream), and take it (a steal, from its CPU) well within 200 ms
 * of connect() returning: nothing may wait for a timer or a tick.
 */
#define IDLE_WAKE_MS	200

TEST_F(pcl, busy_exclusive_waiter_hands_off_to_an_idle_one)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE };
	struct epoller idle = { .n = -2, .fd = -1 };
	struct pcl_counters before, after;
	int busy_ep, c;
	uint64_t t1;
	long long us;
	pthread_t th;

	if (self->ncpu < 2)
		SKIP(return, "needs 2 CPUs");
	ASSERT_LE(0, pcl_listen(self, variant, 16, -1));
	/* "busy": registered from the first CPU, never in epoll_wait */
	ASSERT_EQ(0, lib_pin(self->cpus[0]));
	busy_ep = epoll_create1(EPOLL_CLOEXEC);
	ASSERT_LE(0, busy_ep);
	ASSERT_EQ(0, epoll_ctl(busy_ep, EPOLL_CTL_ADD, self->l, &ev));
	idle.l = self->l;
	idle.cpu = self->cpus[self->ncpu - 1];
	ASSERT_EQ(0, pthread_create(&th, NULL, epoll_waiter, &idle));
	while (!__atomic_load_n(&idle.tid, __ATOMIC_ACQUIRE))
		lib_tick();
	ASSERT_EQ(0, lib_wait_blocked(idle.tid, SYS_epoll_wait,
				      SYS_epoll_pwait, LIB_DEADLINE_MS));
	ASSERT_EQ(0, pcl_counters(-1, &before));

	ASSERT_EQ(0, lib_pin(self->cpus[0]));
	c = lib_connect(variant->cfamily, LIB_PORT, false);
	t1 = now_us();
	ASSERT_LE(0, c);
	ASSERT_EQ(0, join_deadline(th, LIB_DEADLINE_MS)) {
		TH_LOG("the idle CPU's epoll was not woken for a connection its busy owner left waiting");
	}
	EXPECT_EQ(0, idle.err);
	EXPECT_EQ(1, idle.n);
	/* the idle thread took it: a steal, from its CPU */
	EXPECT_LE(0, idle.fd);
	/* woken before connect() came back to us: no wait at all */
	us = idle.done_us > t1 ? (long long)(idle.done_us - t1) : 0;
	TH_LOG("the idle thread accepted %lld us after connect() returned", us);
	EXPECT_GE(IDLE_WAKE_MS * 1000LL, us) {
		TH_LOG("the idle thread was woken late: more than %d ms after connect() returned",
		       IDLE_WAKE_MS);
	}
	ASSERT_EQ(0, pcl_counters(-1, &after));
	EXPECT_EQ(1, after.steals - before.steals);
	/* the busy epoll reports nothing stale once it is taken */
	EXPECT_EQ(0, epoll_wait(busy_ep, &ev, 1, 0));
	if (idle.fd >= 0)
		close(idle.fd);
	close(c);
	close(busy_ep);
}

/*
 * An EPOLLEXCLUSIVE epoll registered from one CPU by a thread that then
 * never waits in it: a server thread busy elsewhere.
 */
struct busy_owner {
	int l;
	int cpu;
	int ep;
	int stop;	/* read end of a pipe: written when the test is done */
	int err;
	bool ready;
};

static void *busy_owner_fn(void *arg)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE };
	struct busy_owner *o = arg;

	if (lib_pin(o->cpu)) {
		o->err = errno;
	} else {
		o->ep = epoll_create1(EPOLL_CLOEXEC);
		if (o->ep < 0 || epoll_ctl(o->ep, EPOLL_CTL_ADD, o->l, &ev))
			o->err = errno;
	}
	__atomic_store_n(&o->ready, true, __ATOMIC_RELEASE);
	/* Busy: asleep somewhere else than in epoll_wait(). */
	lib_poll1(o->stop, POLLIN, 10 * LIB_DEADLINE_MS);
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * Work conservation, timed: a thread pinned to the first CPU blocks in
 * accept(); on the second CPU the listener's only other waiter is an
 * EPOLLEXCLUSIVE epoll whose owner is busy (never in epoll_wait()).  A
 * client pinned to the second CPU connects: its connection waits in that
 * CPU's clone, where nobody takes the wakeup, so the idle thread must be
 * woken right away, as upstream wakes the listener's queue.  From
 * connect() returning to accept() returning on the first CPU, over 20
 * rounds: median at most 5 ms, none over 100 ms.  A hand-off by timer
 * (one or two ticks: 8 ms at HZ=250, 20 ms at HZ=100) fails the median.
 */
#define IDLE_ROUNDS		20
#define IDLE_MEDIAN_MS		5
#define IDLE_MAX_MS		100

TEST_F(pcl, idle_waiter_is_woken_now)
{
	struct busy_owner o = { .ep = -1 };
	struct pcl_counters c0, c1;
	uint64_t lat[IDLE_ROUNDS], sorted[IDLE_ROUNDS], t1, med, max;
	char line[IDLE_ROUNDS * 24 + 1];
	int stop[2], c, r, len = 0;
	struct blocker b;
	pthread_t oth, th;

	if (self->ncpu < 2)
		SKIP(return, "needs 2 CPUs");
	ASSERT_LE(0, pcl_listen(self, variant, 16, -1));
	ASSERT_EQ(0, fcntl(self->l, F_SETFL, 0));	/* blocking accept() */
	ASSERT_EQ(0, pipe2(stop, O_CLOEXEC));
	o.l = self->l;
	o.cpu = self->cpus[1];
	o.stop = stop[0];
	ASSERT_EQ(0, pthread_create(&oth, NULL, busy_owner_fn, &o));
	while (!__atomic_load_n(&o.ready, __ATOMIC_ACQUIRE))
		lib_tick();
	ASSERT_EQ(0, o.err) {
		TH_LOG("the busy owner's epoll: %s", strerror(o.err));
	}
	ASSERT_EQ(0, pcl_counters(-1, &c0));

	for (r = 0; r < IDLE_ROUNDS; r++) {
		b = (struct blocker){ .fd = -1, .l = self->l,
				      .cpu = self->cpus[0] };
		ASSERT_EQ(0, pthread_create(&th, NULL, blocking_accept, &b));
		while (!__atomic_load_n(&b.tid, __ATOMIC_ACQUIRE))
			lib_tick();
		ASSERT_EQ(0, lib_wait_blocked(b.tid, SYS_accept4, SYS_accept,
					      LIB_DEADLINE_MS));
		ASSERT_EQ(0, lib_pin(self->cpus[1]));
		c = lib_connect(variant->cfamily, LIB_PORT, false);
		t1 = now_us();
		ASSERT_LE(0, c) TH_LOG("connect: %s", strerror(errno));
		ASSERT_EQ(0, join_deadline(th, LIB_DEADLINE_MS)) {
			TH_LOG("round %d: the thread blocked in accept() on cpu %d was not woken for cpu %d's connection",
			       r, self->cpus[0], self->cpus[1]);
		}
		ASSERT_EQ(0, b.err) TH_LOG("accept: %s", strerror(b.err));
		ASSERT_LE(0, b.fd);
		EXPECT_EQ(lib_sock_port(c), peer_port(b.fd));
		/* woken before connect() came back to us: no wait at all */
		lat[r] = b.done_us > t1 ? b.done_us - t1 : 0;
		close(b.fd);
		close(c);
	}

	line[0] = 0;
	for (r = 0; r < IDLE_ROUNDS && len < (int)sizeof(line); r++)
		len += snprintf(line + len, sizeof(line) - len, " %llu",
				(unsigned long long)lat[r]);
	TH_LOG("accept() returned, us after connect():%s", line);
	memcpy(sorted, lat, sizeof(lat));
	qsort(sorted, IDLE_ROUNDS, sizeof(sorted[0]), cmp_u64);
	med = sorted[IDLE_ROUNDS / 2];
	max = sorted[IDLE_ROUNDS - 1];
	EXPECT_GE(IDLE_MEDIAN_MS * 1000ULL, med) {
		TH_LOG("median %.1f ms (at most %d ms): the idle waiter was not woken at once",
		       med / 1000.0, IDLE_MEDIAN_MS);
	}
	EXPECT_GE(IDLE_MAX_MS * 1000ULL, max) {
		TH_LOG("slowest %.1f ms (at most %d ms): the idle waiter was not woken at once",
		       max / 1000.0, IDLE_MAX_MS);
	}
	/* Every connection waited in the second CPU's clone: all steals. */
	ASSERT_EQ(0, pcl_counters(-1, &c1));
	EXPECT_EQ(IDLE_ROUNDS, c1.steals - c0.steals);
	EXPECT_EQ(0, c1.local_accepts - c0.local_accepts);

	ASSERT_EQ(1, write(stop[1], "x", 1));
	pthread_join(oth, NULL);
	close(o.ep);
	close(stop[0]);
	close(stop[1]);
}

/*
 * An epoll instance registered from the last CPU and never waited in (a
 * leftover, as the upstream selftest reuseport_bpf leaves one per phase)
 * is the only waiter of the last CPU's clone.  A thread that registered
 * its own epoll on the first CPU and then runs unpinned must still be
 * woken for a connection made on the last CPU: it waits on the listener's
 * queue too, and a clone with only non-exclusive waiters must wake it.
 */
TEST_F(pcl, leftover_epoll_on_a_clone_does_not_hide_its_children)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int old_ep, ep, c, a;
	cpu_set_t all;

	if (self->ncpu < 2)
		SKIP(return, "needs 2 CPUs");
	ASSERT_LE(0, pcl_listen(self, variant, 16, -1));
	ASSERT_EQ(0, lib_pin(self->cpus[self->ncpu - 1]));
	old_ep = epoll_create1(EPOLL_CLOEXEC);
	ASSERT_LE(0, old_ep);
	ASSERT_EQ(0, epoll_ctl(old_ep, EPOLL_CTL_ADD, self->l, &ev));
	ASSERT_EQ(0, lib_pin(self->cpus[0]));
	ep = epoll_create1(EPOLL_CLOEXEC);
	ASSERT_LE(0, ep);
	ASSERT_EQ(0, epoll_ctl(ep, EPOLL_CTL_ADD, self->l, &ev));

	/* the connection from the last CPU, then wait unpinned */
	ASSERT_EQ(0, lib_pin(self->cpus[self->ncpu - 1]));
	c = lib_connect(variant->cfamily, LIB_PORT, false);
	ASSERT_LE(0, c);
	CPU_ZERO(&all);
	for (a = 0; a < self->ncpu; a++)
		CPU_SET(self->cpus[a], &all);
	ASSERT_EQ(0, sched_setaffinity(0, sizeof(all), &all));
	EXPECT_EQ(1, epoll_wait(ep, &ev, 1, LIB_DEADLINE_MS))
		TH_LOG("an epoll registered on another CPU was not woken for the connection");
	a = accept_deadline(self->l, LIB_DEADLINE_MS);
	EXPECT_LE(0, a);
	if (a >= 0)
		close(a);
	close(c);
	close(ep);
	close(old_ep);
}

/*
 * The last CPU's EPOLLEXCLUSIVE thread is woken for its CPU's connection
 * and never accepts it (a server busy with something else).  Readiness is
 * the same for every caller: a plain poll() by a thread pinned to the
 * first CPU must report POLLIN at once (timeout 0: no wakeup, no timer
 * involved), and its accept() gets the connection, a steal.
 */
TEST_F(pcl, pinned_poller_gets_a_child_its_woken_owner_leaves)
{
	struct epoller owner = { .n = -2, .fd = -1, .keep = true, .ep = -1 };
	struct pcl_counters before, after;
	pthread_t th;
	int c, a;

	if (self->ncpu < 2)
		SKIP(return, "needs 2 CPUs");
	ASSERT_LE(0, pcl_listen(self, variant, 16, -1));
	owner.l = self->l;
	owner.cpu = self->cpus[self->ncpu - 1];
	ASSERT_EQ(0, pthread_create(&th, NULL, epoll_waiter, &owner));
	while (!__atomic_load_n(&owner.tid, __ATOMIC_ACQUIRE))
		lib_tick();
	ASSERT_EQ(0, lib_wait_blocked(owner.tid, SYS_epoll_wait,
				      SYS_epoll_pwait, LIB_DEADLINE_MS));
	ASSERT_EQ(0, pcl_counters(-1, &before));

	ASSERT_EQ(0, lib_pin(owner.cpu));
	c = lib_connect(variant->cfamily, LIB_PORT, false);
	ASSERT_LE(0, c);
	ASSERT_EQ(0, join_deadline(th, LIB_DEADLINE_MS)) {
		TH_LOG("the last CPU's epoll was not woken for its connection");
	}
	EXPECT_EQ(1, owner.n);

	/* The owner's epoll_wait() returned: the child is queued by now. */
	ASSERT_EQ(0, lib_pin(self->cpus[0]));
	EXPECT_EQ(POLLIN, lib_poll1(self->l, POLLIN, 0) & POLLIN) {
		TH_LOG("a thread pinned to another CPU saw the listener empty while the woken owner's connection waited");
	}
	a = accept4(self->l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	EXPECT_LE(0, a) TH_LOG("accept: %s", strerror(errno));
	ASSERT_EQ(0, pcl_counters(-1, &after));
	EXPECT_EQ(1, after.steals - before.steals);
	if (a >= 0)
		close(a);
	close(c);
	close(owner.ep);
}

/*
 * SYNs that are never completed: from 10.79.0.1 to our 10.79.0.254, whose
 * SYN-ACKs leave through a veth whose peer drops them (a permanent
 * neighbour, no ARP).  A raw socket sends them on the CPU it runs on; they
 * come in through loopback and are processed there.
 */
static int syn_blackhole(void)
{
	return system("ip link add pclv0 type veth peer name pclv1 && "
		      "ip addr add 10.79.0.254/24 dev pclv0 && "
		      "ip link set pclv0 up && ip link set pclv1 up && "
		      "ip neigh replace 10.79.0.1 lladdr 02:00:00:00:79:01 "
		      "nud permanent dev pclv0");
}

/* Internet checksum of @len bytes (even), host order sum so far @sum. */
static uint32_t csum_add(uint32_t sum, const void *p, size_t len)
{
	const uint8_t *b = p;	/* bytes: may alias any struct */
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)b[i] << 8 | b[i + 1];
	return sum;
}

static uint16_t csum_fold32(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons((uint16_t)~sum);
}

/* One bare SYN from 10.79.0.1:@sport to 10.79.0.254:@dport. */
static int send_syn(int raw, uint16_t sport, uint16_t dport)
{
	struct {
		struct iphdr ip;
		struct tcphdr tcp;
	} pkt = {
		.ip = { .version = 4, .ihl = 5, .ttl = 64,
			.protocol = IPPROTO_TCP,
			.tot_len = htons(sizeof(pkt)),
			.saddr = htonl(0x0a4f0001),
			.daddr = htonl(0x0a4f00fe) },
		.tcp = { .source = htons(sport), .dest = htons(dport),
			 .seq = htonl(0x1000 + sport), .doff = 5, .syn = 1,
			 .window = htons(65535) },
	};
	struct { uint32_t s, d; uint8_t z, p; uint16_t len; } ph = {
		pkt.ip.saddr, pkt.ip.daddr, 0, IPPROTO_TCP,
		htons(sizeof(pkt.tcp)),
	};
	struct sockaddr_in to = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(0x0a4f00fe) };
	uint32_t sum = csum_add(0, &ph, sizeof(ph));

	pkt.tcp.check = csum_fold32(csum_add(sum, &pkt.tcp, sizeof(pkt.tcp)));
	return sendto(raw, &pkt, sizeof(pkt), 0, (void *)&to, sizeof(to)) ==
	       sizeof(pkt) ? 0 : -1;
}

/* Request sockets (SYN_RECV) of this netns to 10.79.0.254:@port. */
static int syn_recv_count(uint16_t port)
{
	char line[256], want[16];
	FILE *f = fopen("/proc/net/tcp", "re");
	int n = 0;

	if (!f)
		return -1;
	snprintf(want, sizeof(want), "FE004F0A:%04X", port);
	while (fgets(line, sizeof(line), f)) {
		char local[32], st[8];

		if (sscanf(line, "%*s %31s %*s %7s", local, st) == 2 &&
		    !strcmp(local, want) && !strcmp(st, "03"))
			n++;
	}
	fclose(f);
	return n;
}

/* Wait until @port has @n requests; the count seen last. */
static int wait_syn_recv(uint16_t port, int n)
{
	uint64_t end = lib_now_ms() + LIB_DEADLINE_MS;
	long us = 0;
	int have;

	while ((have = syn_recv_count(port)) != n && lib_now_ms() < end)
		lib_backoff(&us);
	return have;
}

/* Sockets in use once the count has not moved for 200 ms (or after 5 s). */
static long sockets_settled(void)
{
	uint64_t end = lib_now_ms() + 5000, still = lib_now_ms() + 200;
	long v = lib_sockets_used(), w;

	while (lib_now_ms() < end && lib_now_ms() < still) {
		usleep(10000);
		w = lib_sockets_used();
		if (w != v) {
			v = w;
			still = lib_now_ms() + 200;
		}
	}
	return v;
}

/*
 * Wait until the SYNs to @port sent since there were @req0 requests and
 * @ck0 SyncookiesSent are answered, @n of them: each by a request socket
 * or by a cookie.  *req and *ck: the requests and cookies since, seen
 * last.
 */
static void syns_answered(uint16_t port, int req0, long long ck0, int n,
			  int *req, long long *ck)
{
	uint64_t end = lib_now_ms() + LIB_DEADLINE_MS;
	long us = 0;

	for (;;) {
		*req = syn_recv_count(port) - req0;
		*ck = lib_tcpext("SyncookiesSent") - ck0;
		if (*req + *ck >= n || lib_now_ms() >= end)
			return;
		lib_backoff(&us);
	}
}

/*
 * The SYN_RECV count that triggers syncookies is the listener's, over all
 * CPUs (patch 0008), as upstream's: with tcp_syncookies=1 and a backlog
 * of 4, raw SYNs from every CPU in turn (backlog + 2 from each: enough to
 * fill a queue of one CPU's own) get request sockets until the listener
 * holds backlog + 1 (upstream: cookies once qlen > backlog); every other
 * SYN is answered with a cookie.  CPUs adding at once may each pass the
 * limit by one: at most backlog + ncpu requests.  A count per CPU would
 * give backlog + 1 requests on every CPU.  Then, the queue full, one more
 * SYN from each CPU must get a cookie.  With per-core listen off, the
 * control: exactly backlog + 1.  IPv4 only (one raw SYN is enough).
 */
TEST_F(pcl, syn_backlog_is_the_listeners)
{
	const int backlog = 4, per = backlog + 2;
	int n = self->ncpu, raw, mode, i, j, base, sent, req, req2, most;
	long long c0, ck, ck2;
	uint16_t sport = 20000;

	if (n < 2)
		SKIP(return, "needs 2 CPUs");
	if (variant->family != AF_INET || variant->cfamily != AF_INET)
		SKIP(return, "IPv4 only");
	if (syn_blackhole())
		SKIP(return, "no veth (ip link add ... type veth)");
	ASSERT_EQ(0, lib_sysctl_write("/proc/sys/net/ipv4/tcp_syncookies", 1));
	raw = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	ASSERT_LE(0, raw);
	for (mode = 1; mode >= 0; mode--) {
		ASSERT_EQ(0, pcl_set_mode(mode));
		/* on the wildcard address: the SYNs are for 10.79.0.254 */
		self->l = lib_listener_on(AF_INET, true, LIB_PORT, backlog, 0);
		ASSERT_LE(0, self->l);
		ASSERT_EQ(mode, pcl_get(self->l));
		base = syn_recv_count(LIB_PORT);
		ASSERT_LE(0, base);
		c0 = lib_tcpext("SyncookiesSent");
		ASSERT_LE(0, c0);

		sent = 0;
		for (i = 0; i < n; i++) {
			ASSERT_EQ(0, lib_pin(self->cpus[i]));
			for (j = 0; j < per; j++, sent++)
				ASSERT_EQ(0, send_syn(raw, sport++, LIB_PORT));
		}
		syns_answered(LIB_PORT, base, c0, sent, &req, &ck);
		TH_LOG("mode %d: %d SYNs from %d CPUs: %d request sockets, %lld cookies",
		       mode, sent, n, req, ck);
		EXPECT_EQ(sent, req + ck) {
			TH_LOG("mode %d: %d SYNs neither got a request socket nor a cookie",
			       mode, sent - req - (int)ck);
		}
		EXPECT_LE(backlog + 1, req) {
			TH_LOG("mode %d: cookies before the SYN queue held backlog + 1 = %d requests",
			       mode, backlog + 1);
		}
		/* upstream is exact; per-core: one more per racing CPU at most */
		most = mode ? backlog + n : backlog + 1;
		EXPECT_GE(most, req) {
			TH_LOG("mode %d: %d requests past a backlog of %d from %d CPUs (at most %d): the SYN queue is not the listener's",
			       mode, req, backlog, n, most);
		}

		/* Full for every CPU: one more SYN from each, a cookie each. */
		for (i = 0; i < n; i++) {
			ASSERT_EQ(0, lib_pin(self->cpus[i]));
			ASSERT_EQ(0, send_syn(raw, sport++, LIB_PORT));
		}
		sent += n;
		syns_answered(LIB_PORT, base, c0, sent, &req2, &ck2);
		EXPECT_EQ(req, req2) {
			TH_LOG("mode %d: a full SYN queue made %d requests for SYNs from other CPUs",
			       mode, req2 - req);
		}
		EXPECT_EQ(ck + n, ck2) {
			TH_LOG("mode %d: %lld cookies for the %d SYNs sent to a full SYN queue",
			       mode, ck2 - ck, n);
		}
		close(self->l);
		self->l = -1;
		/* the closed listener's requests go at their first timeout */
		ASSERT_EQ(0, wait_syn_recv(LIB_PORT, 0));
	}
	close(raw);
}

/*
 * Request sockets hold their per-core listener, on every CPU's clone and
 * across a shutdown() and listen() again.  Raw SYNs from every CPU leave
 * requests on both sides of a shutdown(); the listener is closed; once the
 * requests have timed out, the socket must be freed ("sockets: used" back
 * to its base): a request reference the listener never got back would
 * leak it, and one dropped twice would free it under the requests (KASAN,
 * refcount warnings).
 */
TEST_F(pcl, listener_freed_after_its_requests)
{
	int raw, i, round, per = 3, n = self->ncpu;
	/* the SYN queue is the listener's: room for every request */
	int backlog = 2 * n * per + 8;
	uint16_t sport = 21000;
	long used;

	if (variant->family != AF_INET || variant->cfamily != AF_INET)
		SKIP(return, "IPv4 only");
	if (syn_blackhole())
		SKIP(return, "no veth (ip link add ... type veth)");
	ASSERT_EQ(0, lib_sysctl_write("/proc/sys/net/ipv4/tcp_syncookies", 0));
	/* without cookies, SYNs are dropped past 3/4 of this */
	ASSERT_EQ(0, lib_sysctl_write("/proc/sys/net/ipv4/tcp_max_syn_backlog",
				      4 * backlog));
	raw = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	ASSERT_LE(0, raw);
	/*
	 * The test before may have left a closed listener that goes only
	 * after its requests do (what this test checks): count once it has.
	 */
	ASSERT_EQ(0, wait_syn_recv(LIB_PORT, 0));
	used = sockets_settled();
	ASSERT_LT(0, used);

	self->l = lib_listener_on(AF_INET, true, LIB_PORT, backlog, 0);
	ASSERT_LE(0, self->l);
	ASSERT_EQ(1, pcl_get(self->l));
	for (round = 0; round < 2; round++) {
		for (i = 0; i < n * per; i++) {
			ASSERT_EQ(0, lib_pin(self->cpus[i % n]));
			ASSERT_EQ(0, send_syn(raw, sport++, LIB_PORT));
		}
		EXPECT_EQ((round + 1) * n * per,
			  wait_syn_recv(LIB_PORT, (round + 1) * n * per));
		if (round)
			break;
		/* requests on both sides of a shutdown() and listen() again */
		ASSERT_EQ(0, shutdown(self->l, SHUT_RDWR));
		ASSERT_EQ(0, listen(self->l, backlog));
		EXPECT_EQ(1, pcl_get(self->l));
	}
	ASSERT_EQ(used + 1, lib_sockets_used());
	close(self->l);
	self->l = -1;
	/* the closed listener's requests go at their first timeout */
	EXPECT_EQ(0, wait_syn_recv(LIB_PORT, 0));
	EXPECT_EQ(used, lib_wait_count(lib_sockets_used, used, LIB_DEADLINE_MS))
		TH_LOG("the closed listener was not freed after its requests");
	close(raw);
}

/*
 * A first listen() that fails after the clones were set up (its port is
 * taken by a listener bound beside it with SO_REUSEADDR) leaves an
 * ordinary socket (patch 0010): it connects and carries data, and its
 * teardown (KASAN, lockdep) and the listeners' leave nothing behind
 * (sockets: used back to its start).
 */
TEST_F(pcl, failed_first_listen_leaves_an_ordinary_socket)
{
	struct sockaddr_storage ss;
	socklen_t len = lib_lo_addr(variant->family, LIB_PORT + 1, &ss);
	int one = 1, s, busy, a, i;
	long used = lib_sockets_used();
	char buf[4];

	ASSERT_LE(0, used);
	ASSERT_LE(0, pcl_listen(self, variant, 8, -1));
	ASSERT_EQ(1, pcl_get(self->l));
	/* bound first, then a listener takes the port: listen() fails */
	s = socket(variant->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_LE(0, s);
	ASSERT_EQ(0, setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)));
	ASSERT_EQ(0, bind(s, (struct sockaddr *)&ss, len));
	busy = lib_listener(variant->family, LIB_PORT + 1, 8, 0);
	ASSERT_LE(0, busy) TH_LOG("listener beside it: %s", strerror(errno));
	EXPECT_EQ(-1, listen(s, 8));
	EXPECT_EQ(EADDRINUSE, errno);
	close(busy);

	/* connected from its port to the per-core listener */
	len = lib_lo_addr(variant->family, LIB_PORT, &ss);
	ASSERT_EQ(0, connect(s, (struct sockaddr *)&ss, len))
		TH_LOG("connect after a failed listen: %s", strerror(errno));
	a = accept_deadline(self->l, LIB_DEADLINE_MS);
	ASSERT_LE(0, a);
	for (i = 0; i < 2; i++) {
		int from = i ? a : s, to = i ? s : a;

		ASSERT_EQ(4, write(from, "ping", 4));
		ASSERT_EQ(POLLIN, lib_poll1(to, POLLIN, LIB_DEADLINE_MS) & POLLIN);
		ASSERT_EQ(4, read(to, buf, 4));
		EXPECT_EQ(0, memcmp(buf, "ping", 4));
	}
	close(a);
	close(s);
	close(self->l);
	self->l = -1;
	EXPECT_EQ(used, lib_wait_count(lib_sockets_used, used, LIB_DEADLINE_MS));
}

/*
 * The accept backlog is the listener's, over all clones (patch 0002), as
 * upstream's: with listen(fd, 4), clients on every CPU in turn (backlog +
 * 2 each: enough to fill a queue of one CPU's own), nobody accepting,
 * backlog + 1 children queue in all (upstream: full once queued >
 * backlog), in several clones; CPUs adding at once may each pass the
 * limit by one, so never more than backlog + ncpu.  The rest overflow,
 * counted.  A backlog per clone would queue backlog + 1 in every clone.
 * Lengths are summed: TCP_INFO (Recv-Q, with Send-Q the backlog) and
 * /proc show the total, and accept() then finds every child counted.
 */
#define BACKLOG_SETTLE_MS	300

TEST_F(pcl, backlog_is_the_listeners_and_lengths_are_summed)
{
	const int backlog = 4;
	int n = self->ncpu, total = n * (backlog + 2), *cfd, i;
	unsigned int q, max, last, most = 0;
	struct pcl_counters c0, c1;
	struct lib_listen_row row;
	long long lo0, lo1;
	uint64_t end, since;

	ASSERT_EQ(0, lib_raise_nofile(total + 64));
	cfd = calloc(total, sizeof(int));
	ASSERT_NE(NULL, cfd);
	ASSERT_LE(0, pcl_listen(self, variant, backlog, -1));
	ASSERT_EQ(1, pcl_get(self->l));
	ASSERT_EQ(0, lib_acceptq(self->l, &q, &max));
	EXPECT_EQ(0, q);
	EXPECT_EQ(backlog, max);
	ASSERT_EQ(0, pcl_counters(-1, &c0));
	lo0 = lib_tcpext("ListenOverflows");
	ASSERT_LE(0, lo0);

	/*
	 * One CPU after the other, so that the first children land in
	 * several clones.  Non-blocking: a client whose handshake overflows
	 * retries for seconds; leave it.
	 */
	for (i = 0; i < total; i++) {
		ASSERT_EQ(0, lib_pin(self->cpus[i % n]));
		cfd[i] = lib_connect(variant->cfamily, LIB_PORT, true);
		ASSERT_LE(0, cfd[i]) TH_LOG("connect %d: %s", i, strerror(errno));
	}
	lo1 = lib_wait_tcpext_above("ListenOverflows", lo0, LIB_DEADLINE_MS);
	EXPECT_LT(lo0, lo1) {
		TH_LOG("no overflow: %d connections to a backlog of %d", total,
		       backlog);
	}

	/* Until the queue holds backlog + 1 and has not changed for a while. */
	end = lib_now_ms() + LIB_DEADLINE_MS;
	ASSERT_EQ(0, lib_acceptq(self->l, &last, NULL));
	most = last;
	since = lib_now_ms();
	while (lib_now_ms() < end &&
	       (last < (unsigned int)backlog + 1 ||
		lib_now_ms() - since < BACKLOG_SETTLE_MS)) {
		lib_tick();
		ASSERT_EQ(0, lib_acceptq(self->l, &q, NULL));
		if (q > most)
			most = q;
		if (q != last) {
			last = q;
			since = lib_now_ms();
		}
	}
	TH_LOG("%d connections from %d CPUs to a backlog of %d: %u queued (at most %u seen)",
	       total, n, backlog, last, most);
	EXPECT_GE((unsigned int)backlog + n, most) {
		TH_LOG("%u children queued over the clones of a listener with backlog %d on %d CPUs (at most %d): the backlog is not the listener's",
		       most, backlog, n, backlog + n);
	}
	ASSERT_LE((unsigned int)backlog + 1, last) {
		TH_LOG("only %u queued: children were refused below the backlog",
		       last);
	}

	/* Recv-Q is the sum, Send-Q the backlog; /proc agrees, one row. */
	ASSERT_EQ(0, lib_acceptq(self->l, &q, &max));
	EXPECT_EQ(backlog, max);
	EXPECT_GE(max + n, q) {
		TH_LOG("Recv-Q %u past Send-Q %u by more than %d CPUs", q, max, n);
	}
	ASSERT_EQ(0, lib_proc_listen_row(variant->family, LIB_PORT, &row));
	EXPECT_EQ(1, row.rows);		/* the listener, once */
	EXPECT_EQ(q, row.rx_queue);
	ASSERT_EQ(0, pcl_counters(-1, &c1));
	EXPECT_LT(c0.overflows, c1.overflows) {
		TH_LOG("the dropped handshakes were not counted as overflows");
	}

	/* accept() from one CPU finds every one that was counted. */
	ASSERT_EQ(0, lib_pin(self->cpus[0]));
	ASSERT_EQ(0, pcl_counters(-1, &c0));
	for (i = 0; i < (int)q; i++) {
		int fd = accept4(self->l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		ASSERT_LE(0, fd) {
			TH_LOG("accept %d of the %u counted: %s", i, q,
			       strerror(errno));
		}
		close(fd);
	}
	ASSERT_EQ(0, pcl_counters(-1, &c1));
	EXPECT_EQ(q, (c1.local_accepts - c0.local_accepts) +
		     (c1.steals - c0.steals));
	/* They were in several clones: some were stolen. */
	if (n > 1)
		EXPECT_LT(0, c1.steals - c0.steals);
	for (i = 0; i < total; i++)
		close(cfd[i]);
	free(cfd);
}

/* Pending connections in every clone, then close or shutdown. */
static void fill_and_stop(struct __test_metadata *_metadata,
			  FIXTURE_DATA(pcl) *self,
			  const FIXTURE_VARIANT(pcl) *variant, bool shut)
{
	int per = lib_scaled(1000, 8) / self->ncpu, n = self->ncpu, total, i, j;
	struct client cl[MAXC];
	long inuse;

	if (per < 4)
		per = 4;
	total = n * per;
	ASSERT_EQ(0, lib_raise_nofile(2 * total + 64));
	ASSERT_LE(0, pcl_listen(self, variant, total, -1));
	ASSERT_EQ(total, connect_from_cpus(variant->cfamily, self->cpus, n,
					   per, cl));
	ASSERT_EQ(total, lib_wait_queued(self->l, total, LIB_DEADLINE_MS));

	if (shut) {
		ASSERT_EQ(0, shutdown(self->l, SHUT_RDWR));
	} else {
		ASSERT_EQ(0, close(self->l));
		self->l = -1;
	}
	/* Every client is reset: ECONNRESET once. */
	for (i = 0; i < n; i++) {
		for (j = 0; j < per; j++) {
			char ch;
			int fd = cl[i].fds[j];

			ASSERT_EQ(POLLIN, lib_poll1(fd, POLLIN, LIB_DEADLINE_MS) & POLLIN);
			ASSERT_EQ(-1, read(fd, &ch, 1)) TH_LOG("client %d/%d", i, j);
			ASSERT_EQ(ECONNRESET, errno);
		}
	}
	free_clients(cl, n);

	if (shut) {
		/* listen() again: per-core still, and it works. */
		int c, fd;

		ASSERT_EQ(0, listen(self->l, 8));
		EXPECT_EQ(1, pcl_get(self->l));
		c = lib_connect(variant->cfamily, LIB_PORT, false);
		ASSERT_LE(0, c);
		fd = accept_deadline(self->l, LIB_DEADLINE_MS);
		ASSERT_LE(0, fd);
		close(fd);
		close(c);
		close(self->l);
		self->l = -1;
	}
	inuse = wait_inuse(self->base);
	EXPECT_EQ(self->base, inuse);
}

TEST_F(pcl, close_with_pending_in_every_clone)
{
	fill_and_stop(_metadata, self, variant, false);
}

TEST_F(pcl, shutdown_then_listen_again)
{
	fill_and_stop(_metadata, self, variant, true);
}

TEST_F(pcl, listen_again_updates_backlog)
{
	unsigned int max;

	ASSERT_LE(0, pcl_listen(self, variant, 2, -1));
	ASSERT_EQ(0, lib_acceptq(self->l, NULL, &max));
	EXPECT_EQ(2, max);
	ASSERT_EQ(0, listen(self->l, 64));
	ASSERT_EQ(0, lib_acceptq(self->l, NULL, &max));
	EXPECT_EQ(64, max);
	EXPECT_EQ(1, pcl_get(self->l));
}

static int bpf_sys(int cmd, union bpf_attr *attr)
{
	return syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

/*
 * The mode is decided at listen(), before a listener can be in a sockmap
 * (sockmaps take only listening or connected sockets).  One added later
 * (sockmap replaces its proto) still accepts from every clone, and leaves
 * the map cleanly.
 */
TEST_F(pcl, listener_in_a_sockmap_keeps_working)
{
	union bpf_attr attr;
	struct client cl[MAXC];
	int map, per = 4, n = self->ncpu, total, i;
	__u32 key = 0;
	__u64 val;

	/* the backlog is the listener's: room for every client at once */
	ASSERT_LE(0, pcl_listen(self, variant, n * per + 8, -1));
	ASSERT_EQ(1, pcl_get(self->l));
	memset(&attr, 0, sizeof(attr));
	attr.map_type = BPF_MAP_TYPE_SOCKMAP;
	attr.key_size = sizeof(__u32);
	attr.value_size = sizeof(__u64);
	attr.max_entries = 1;
	map = bpf_sys(BPF_MAP_CREATE, &attr);
	if (map < 0 && (errno == EINVAL || errno == ENOSYS || errno == EPERM))
		SKIP(return, "no sockmap here: %s", strerror(errno));
	ASSERT_LE(0, map) TH_LOG("BPF_MAP_CREATE: %s", strerror(errno));
	val = self->l;
	memset(&attr, 0, sizeof(attr));
	attr.map_fd = map;
	attr.key = (__u64)(uintptr_t)&key;
	attr.value = (__u64)(uintptr_t)&val;
	attr.flags = BPF_ANY;
	ASSERT_EQ(0, bpf_sys(BPF_MAP_UPDATE_ELEM, &attr))
		TH_LOG("BPF_MAP_UPDATE_ELEM: %s", strerror(errno));
	EXPECT_EQ(1, pcl_get(self->l));

	total = connect_from_cpus(variant->cfamily, self->cpus, n, per, cl);
	ASSERT_EQ(n * per, total);
	for (i = 0; i < total; i++) {
		int fd = accept_deadline(self->l, LIB_DEADLINE_MS);

		ASSERT_LE(0, fd) TH_LOG("accept %d: %s", i, strerror(errno));
		/* The child is an ordinary socket: data flows. */
		EXPECT_EQ(1, write(fd, "y", 1));
		close(fd);
	}
	memset(&attr, 0, sizeof(attr));
	attr.map_fd = map;
	attr.key = (__u64)(uintptr_t)&key;
	EXPECT_EQ(0, bpf_sys(BPF_MAP_DELETE_ELEM, &attr));
	close(map);
	free_clients(cl, n);
}

TEST_HARNESS_MAIN
