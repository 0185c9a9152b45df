// SPDX-License-Identifier: GPL-2.0
/*
 * percore_listen: the per-core listen mechanism itself.
 *
 *  - how a listener gets per-core mode: net.ipv4.tcp_percore_listen (0, 1,
 *    2; per netns) and the TCP_PERCORE_LISTEN socket option, with their
 *    errors;
 *  - N threads pinned to N CPUs accept exactly the connections clients on
 *    every CPU made: none lost, none twice;
 *  - a CPU with no accepting thread: its connections are stolen by another
 *    CPU, non-blocking accept does not say EAGAIN while any clone holds a
 *    connection, poll() reports it, a blocked accept() wakes for it;
 *  - of several blocked accept()s, the one on the connection's CPU wakes;
 *  - a per-core listener put in a BPF sockmap afterwards keeps working;
 *  - backlog per clone, queue lengths summed over clones, overflow counted;
 *  - close() and shutdown() with connections pending in every clone: all
 *    reset, socket counts back where they started; listen() again keeps
 *    per-core mode and updates the backlog.
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

	/* Out of range sysctl values are refused. */
	EXPECT_EQ(-1, pcl_set_mode(3));
	EXPECT_EQ(0, lib_sysctl_read(PCL_SYSCTL));
}

TEST_F(pcl, reuseport_left_alone_in_mode_1)
{
	int one = 1, s;
	struct sockaddr_storage ss;
	socklen_t len = lib_lo_addr(variant->family, LIB_PORT, &ss);

	for (int mode = 1; mode <= 2; mode++) {
		ASSERT_EQ(0, pcl_set_mode(mode));
		s = socket(variant->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		ASSERT_LE(0, s);
		ASSERT_EQ(0, setsockopt(s, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)));
		ASSERT_EQ(0, bind(s, (struct sockaddr *)&ss, len));
		ASSERT_EQ(0, listen(s, 8));
		EXPECT_EQ(mode == 2 ? 1 : 0, pcl_get(s));
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
	ASSERT_LE(0, pcl_listen(self, variant, 4096, -1));
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

/* pthread_join() with a deadline: 0, or ETIMEDOUT. */
static int join_deadline(pthread_t th, int timeout_ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
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
 * thread on the last CPU, and one from the first CPU the thread there.
 * On a loaded host, the woken thread may not run before the clone's
 * hand-off timer (one or two ticks) lets the other thread steal, as it
 * should: such a try, seen in the hand-off counter, is made again; one
 * without a hand-off is a failure.
 */
TEST_F(pcl, blocked_accept_on_the_connections_cpu_is_woken)
{
	struct blocker b[2];
	struct pcl_counters c0, c1;
	pthread_t th[2];
	int c[2], i, try;
	uint64_t end;
	bool woken;

	if (self->ncpu < 2)
		SKIP(return, "needs 2 CPUs");
	for (try = 1; ; try++) {
		ASSERT_LE(0, pcl_listen(self, variant, 16, -1));
		ASSERT_EQ(0, fcntl(self->l, F_SETFL, 0));	/* blocking */
		ASSERT_EQ(0, pcl_counters(-1, &c0));
		for (i = 0; i < 2; i++) {
			b[i] = (struct blocker){ .fd = -1, .l = self->l };
			b[i].cpu = self->cpus[i ? self->ncpu - 1 : 0];
			ASSERT_EQ(0, pthread_create(&th[i], NULL, blocking_accept,
						    &b[i]));
			while (!__atomic_load_n(&b[i].tid, __ATOMIC_ACQUIRE))
				lib_tick();
			ASSERT_EQ(0, lib_wait_blocked(b[i].tid, SYS_accept4,
						      SYS_accept, LIB_DEADLINE_MS));
		}
		/* The last CPU's connection: b[1] wakes, b[0] sleeps on. */
		ASSERT_EQ(0, lib_pin(b[1].cpu));
		c[1] = lib_connect(variant->cfamily, LIB_PORT, false);
		ASSERT_LE(0, c[1]);
		/* Upstream's choice, b[0], would take it, b[1] sleeping on. */
		woken = false;
		end = lib_now_ms() + LIB_DEADLINE_MS;
		do {
			woken = !join_deadline(th[1], 100);
			ASSERT_EQ(0, pcl_counters(-1, &c1));
		} while (!woken && c1.handoffs == c0.handoffs &&
			 lib_now_ms() < end);
		if (woken)
			break;
		ASSERT_NE(0, c1.handoffs - c0.handoffs)
			TH_LOG("the last CPU's thread was not woken for its connection");
		ASSERT_GT(10, try)
			TH_LOG("10 tries, each handed off before the woken thread ran");
		TH_LOG("try %d: handed off before the woken thread ran; again", try);
		ASSERT_EQ(0, shutdown(self->l, SHUT_RDWR));
		for (i = 0; i < 2; i++) {
			pthread_join(th[i], NULL);
			if (b[i].fd >= 0)
				close(b[i].fd);
		}
		close(c[1]);
		close(self->l);
		self->l = -1;
	}
	EXPECT_EQ(0, b[1].err);
	ASSERT_LE(0, b[1].fd);
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

struct epoller {
	int l;
	int cpu;
	pid_t tid;
	int n;		/* epoll_wait's result */
	int err;
	int fd;		/* accepted once woken, as a server does; or -1 */
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
	/*
	 * Take the connection at once, as a server does: a child left in
	 * its clone is handed to other CPUs' waiters after two ticks.
	 */
	e->fd = e->n == 1 ? accept4(e->l, NULL, NULL,
				    SOCK_NONBLOCK | SOCK_CLOEXEC) : -1;
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
 * waits.  A connection from the first CPU is left to its busy thread for
 * at most about a tick, then handed off: the idle thread is woken, takes
 * it (a steal), and the hand-off is counted.
 */
TEST_F(pcl, busy_exclusive_waiter_hands_off_to_an_idle_one)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE };
	struct epoller idle = { .n = -2, .fd = -1 };
	struct pcl_counters before, after;
	int busy_ep, c;
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
	ASSERT_LE(0, c);
	ASSERT_EQ(0, join_deadline(th, LIB_DEADLINE_MS))
		TH_LOG("the idle CPU's epoll was not woken for a connection its busy owner left waiting");
	EXPECT_EQ(0, idle.err);
	EXPECT_EQ(1, idle.n);
	/* the idle thread took it: a steal, from its CPU */
	EXPECT_LE(0, idle.fd);
	ASSERT_EQ(0, pcl_counters(-1, &after));
	EXPECT_LE(1, after.handoffs - before.handoffs);
	EXPECT_EQ(1, after.steals - before.steals);
	/* the busy epoll reports nothing stale once it is taken */
	EXPECT_EQ(0, epoll_wait(busy_ep, &ev, 1, 0));
	if (idle.fd >= 0)
		close(idle.fd);
	close(c);
	close(busy_ep);
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
 * A thread pinned to one CPU does not see another CPU's fresh connection
 * while that CPU's waiter, woken for it, is about to take it (no steal);
 * but if that waiter leaves it, the pinned thread must be woken and take
 * it once it is two ticks old.  Here the last CPU's EPOLLEXCLUSIVE thread
 * is woken and never accepts; a plain poll() on the first CPU must return
 * POLLIN within the deadline, not sleep until its timeout (the hand-off
 * wakes pollers that were told "empty", although the owner took its
 * wakeup), and its accept() gets the connection.
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
	ASSERT_EQ(0, join_deadline(th, LIB_DEADLINE_MS))
		TH_LOG("the last CPU's epoll was not woken for its connection");
	EXPECT_EQ(1, owner.n);

	ASSERT_EQ(0, lib_pin(self->cpus[0]));
	EXPECT_EQ(POLLIN, lib_poll1(self->l, POLLIN, LIB_DEADLINE_MS) & POLLIN)
		TH_LOG("a pinned poller was not woken for a connection its CPU's woken owner left");
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
 * A connection left to a busy EPOLLEXCLUSIVE owner on the last CPU (it
 * never returns to epoll_wait) while a worker on the first CPU always
 * finds exactly one connection of its own at each accept: that worker's
 * clone empties at every accept, so the fair turn never comes.  Once the
 * hand-off timer finds the last CPU's clone stuck, the first CPU's next
 * accepts must serve it before their own; it must not wait for the
 * worker's own clone to run dry.
 */
TEST_F(pcl, stuck_clone_is_served_before_a_busy_workers_own)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE };
	int busy_ep, far, c, a, p, found = 0, n = 0;
	struct pcl_counters before, after;
	uint64_t end;

	if (self->ncpu < 2)
		SKIP(return, "needs 2 CPUs");
	ASSERT_LE(0, pcl_listen(self, variant, 64, -1));
	ASSERT_EQ(0, lib_pin(self->cpus[self->ncpu - 1]));
	busy_ep = epoll_create1(EPOLL_CLOEXEC);
	ASSERT_LE(0, busy_ep);
	ASSERT_EQ(0, epoll_ctl(busy_ep, EPOLL_CTL_ADD, self->l, &ev));
	far = lib_connect(variant->cfamily, LIB_PORT, false);
	ASSERT_LE(0, far);
	ASSERT_EQ(0, pcl_counters(-1, &before));

	ASSERT_EQ(0, lib_pin(self->cpus[0]));
	end = lib_now_ms() + LIB_DEADLINE_MS;
	while (!found && lib_now_ms() < end) {
		struct sockaddr_storage peer;
		socklen_t len = sizeof(peer);

		c = lib_connect(variant->cfamily, LIB_PORT, false);
		ASSERT_LE(0, c);
		ASSERT_EQ(POLLIN, lib_poll1(self->l, POLLIN, LIB_DEADLINE_MS) & POLLIN);
		a = accept4(self->l, (struct sockaddr *)&peer, &len, SOCK_CLOEXEC);
		ASSERT_LE(0, a) TH_LOG("accept %d: %s", n, strerror(errno));
		p = lib_addr_port(&peer);
		found = p == lib_sock_port(far);
		close(a);
		if (found) {
			/* ours is still queued: take it, as the worker would */
			a = accept_deadline(self->l, LIB_DEADLINE_MS);
			ASSERT_LE(0, a);
			close(a);
		}
		close(c);
		n++;
	}
	ASSERT_TRUE(found) {
		TH_LOG("the busy owner's connection was not served in %d accepts while the worker's own clone never ran dry", n);
	}
	TH_LOG("served after %d accepts", n);
	ASSERT_EQ(0, pcl_counters(-1, &after));
	EXPECT_LE(1, after.handoffs - before.handoffs);
	EXPECT_EQ(1, after.steals - before.steals);
	close(far);
	close(busy_ep);
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

/*
 * The SYN backlog is per clone (patch 0008): with tcp_syncookies=1 and a
 * backlog of 4, SYNs from the first CPU fill its clone's SYN queue and the
 * rest get cookies; SYNs from the last CPU then get request sockets again
 * (no cookie).  With per-core listen off, the same SYNs from the last CPU
 * get cookies: one SYN queue.  IPv4 only (one raw SYN is enough).
 */
TEST_F(pcl, syn_backlog_is_per_clone)
{
	const int backlog = 4, first = 8, last = 3;
	long long c0, c1;
	int raw, mode, i, base;
	uint16_t sport = 20000;

	if (self->ncpu < 2)
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

		ASSERT_EQ(0, lib_pin(self->cpus[0]));
		base = syn_recv_count(LIB_PORT);
		ASSERT_LE(0, base);
		c0 = lib_tcpext("SyncookiesSent");
		for (i = 0; i < first; i++)
			ASSERT_EQ(0, send_syn(raw, sport++, LIB_PORT));
		/* a queue of 4 is full past 4: cookies for the rest */
		EXPECT_EQ(base + backlog + 1,
			  wait_syn_recv(LIB_PORT, base + backlog + 1));
		c1 = lib_tcpext("SyncookiesSent");
		EXPECT_EQ(first - backlog - 1, c1 - c0)
			TH_LOG("mode %d: the first CPU's SYN queue did not fill at its backlog", mode);

		ASSERT_EQ(0, lib_pin(self->cpus[self->ncpu - 1]));
		for (i = 0; i < last; i++)
			ASSERT_EQ(0, send_syn(raw, sport++, LIB_PORT));
		if (mode) {
			EXPECT_EQ(base + backlog + 1 + last,
				  wait_syn_recv(LIB_PORT, base + backlog + 1 + last))
				TH_LOG("per-core: the last CPU's SYNs got no request sockets");
			EXPECT_EQ(0, lib_tcpext("SyncookiesSent") - c1)
				TH_LOG("per-core: the last CPU's SYNs got cookies from the first CPU's full queue");
		} else {
			EXPECT_EQ(c1 + last,
				  lib_wait_tcpext_above("SyncookiesSent", c1 + last - 1,
							LIB_DEADLINE_MS))
				TH_LOG("per-core off: one SYN queue, full: cookies");
			EXPECT_EQ(base + backlog + 1, syn_recv_count(LIB_PORT));
		}
		close(self->l);
		self->l = -1;
		/* the closed listener's requests go at their first timeout */
		ASSERT_EQ(0, wait_syn_recv(LIB_PORT, 0));
	}
	close(raw);
}

/*
 * Request sockets of a per-core listener hold it by a per-CPU reference
 * (patch 0009), which the listener's close turns into one sk_refcnt, and
 * which stays dead after shutdown(): requests made after listen() again
 * hold sk_refcnt.  Raw SYNs from every CPU leave requests on both sides of
 * a shutdown(); the listener is closed; once the requests have timed out,
 * the socket must be freed ("sockets: used" back to its base): a request
 * reference the listener never got back would leak it, and one dropped
 * twice would free it under the requests (KASAN, refcount warnings).
 */
TEST_F(pcl, listener_freed_after_its_requests)
{
	int raw, i, round, per = 3, n = self->ncpu;
	uint16_t sport = 21000;
	long used;

	if (variant->family != AF_INET || variant->cfamily != AF_INET)
		SKIP(return, "IPv4 only");
	if (syn_blackhole())
		SKIP(return, "no veth (ip link add ... type veth)");
	ASSERT_EQ(0, lib_sysctl_write("/proc/sys/net/ipv4/tcp_syncookies", 0));
	raw = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	ASSERT_LE(0, raw);
	used = lib_sockets_used();
	ASSERT_LT(0, used);

	self->l = lib_listener_on(AF_INET, true, LIB_PORT, 64, 0);
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
		/* the percpu reference dies; the next requests hold sk_refcnt */
		ASSERT_EQ(0, shutdown(self->l, SHUT_RDWR));
		ASSERT_EQ(0, listen(self->l, 64));
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

TEST_F(pcl, backlog_is_per_clone_and_lengths_are_summed)
{
	const int backlog = 4;
	struct pcl_counters c0, c1;
	long long lo0, lo1;
	struct client cl[MAXC];
	int n = self->ncpu < 2 ? 1 : 2, extra = 3, i;
	unsigned int q, max;
	struct lib_listen_row row;

	ASSERT_LE(0, pcl_listen(self, variant, backlog, -1));
	ASSERT_EQ(0, lib_acceptq(self->l, &q, &max));
	EXPECT_EQ(0, q);
	EXPECT_EQ(backlog, max);

	/* backlog + 1 per clone, as upstream allows per queue. */
	ASSERT_EQ(n * (backlog + 1),
		  connect_from_cpus(variant->cfamily, self->cpus, n,
				    backlog + 1, cl));
	EXPECT_EQ(n * (backlog + 1),
		  lib_wait_queued(self->l, n * (backlog + 1), LIB_DEADLINE_MS));
	ASSERT_EQ(0, lib_proc_listen_row(variant->family, LIB_PORT, &row));
	EXPECT_EQ(1, row.rows);		/* the listener, once */
	EXPECT_EQ(n * (backlog + 1), row.rx_queue);

	/* More on the first CPU overflow its clone only. */
	ASSERT_EQ(0, pcl_counters(-1, &c0));
	lo0 = lib_tcpext("ListenOverflows");
	ASSERT_EQ(0, lib_pin(self->cpus[0]));
	for (i = 0; i < extra; i++) {
		int fd = lib_connect(variant->cfamily, LIB_PORT, true);

		ASSERT_LE(0, fd);
		/* Dropped handshakes are retried for seconds: just leave them. */
		close(fd);
	}
	lo1 = lib_wait_tcpext_above("ListenOverflows", lo0, LIB_DEADLINE_MS);
	EXPECT_LT(lo0, lo1);
	ASSERT_EQ(0, pcl_counters(-1, &c1));
	EXPECT_LT(c0.overflows, c1.overflows);
	ASSERT_EQ(0, lib_acceptq(self->l, &q, NULL));
	EXPECT_EQ(n * (backlog + 1), q);

	/* All of them are accepted, none twice, from one CPU. */
	for (i = 0; i < n * (backlog + 1); i++) {
		int fd = accept_deadline(self->l, LIB_DEADLINE_MS);

		ASSERT_LE(0, fd) TH_LOG("accept %d: %s", i, strerror(errno));
		close(fd);
	}
	ASSERT_EQ(0, lib_acceptq(self->l, &q, NULL));
	EXPECT_EQ(0, q);
	free_clients(cl, n);
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

	ASSERT_LE(0, pcl_listen(self, variant, 64, -1));
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
