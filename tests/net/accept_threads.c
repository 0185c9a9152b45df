// SPDX-License-Identifier: GPL-2.0
/*
 * accept_threads: one listener shared by threads pinned to every CPU.
 * Stock 6.12 hands every connection to exactly one accept() (no loss, no
 * duplicate), whichever CPU the connection came in on and whichever CPUs
 * the acceptors sleep on, with blocking accept() as with EPOLLEXCLUSIVE
 * epoll plus non-blocking accept(); shutdown(SHUT_RD) wakes every sleeper.
 * Connections are told apart by their client port: every client socket
 * stays open until the end, so no port is reused within a test.
 *
 * Variants: ipv4, ipv6, and dualstack (an IPv6 listener on [::] taking
 * IPv4 clients as v4-mapped addresses).  Each test runs in a netns of its
 * own, on loopback.
 *
 * MP_TEST_SCALE scales the connection count (default 1000).
 */
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/time.h>

#include "kselftest_harness.h"
#include "listen_lib.h"

#ifndef SYS_accept
#define SYS_accept -2
#endif

#define MAX_THREADS	64

struct acceptor {
	struct shared *sh;
	pthread_t th;
	int cpu;
	pid_t tid;
	int count;		/* connections it accepted */
	int err;		/* errno that ended its loop */
	int bad;		/* unexpected accept() errors */
};

struct client {
	struct shared *sh;
	pthread_t th;
	int cpu;		/* -1: not pinned */
	int n;			/* connections to make */
	int *fds;
	int *ports;
	int made;
	int err;
};

struct shared {
	int family;		/* clients' */
	int l;
	int stop;		/* eventfd: epoll acceptors leave */
	int accepted;		/* atomic */
	unsigned int seen[65536];	/* accepts per client port (atomic) */
};

FIXTURE(accept_threads) {
	struct shared *sh;
	int cpus[MAX_THREADS];
	int ncpus;
	int m;			/* connections per test */
	struct acceptor acc[MAX_THREADS];
	int nacc;
	struct client cl[MAX_THREADS];
	int ncl;
};

FIXTURE_VARIANT(accept_threads) {
	int family;		/* listener's */
	int cfamily;		/* clients' */
};

FIXTURE_VARIANT_ADD(accept_threads, ipv4) {
	.family = AF_INET,
	.cfamily = AF_INET,
};

FIXTURE_VARIANT_ADD(accept_threads, ipv6) {
	.family = AF_INET6,
	.cfamily = AF_INET6,
};

/* IPv6 listener on [::] taking IPv4 clients (v4-mapped). */
FIXTURE_VARIANT_ADD(accept_threads, dualstack) {
	.family = AF_INET6,
	.cfamily = AF_INET,
};

FIXTURE_SETUP(accept_threads)
{
	long somaxconn;
	int backlog;

	self->sh = calloc(1, sizeof(*self->sh));
	ASSERT_NE(NULL, self->sh);
	self->sh->l = -1;
	self->sh->stop = -1;
	self->sh->family = variant->cfamily;
	self->nacc = 0;
	self->ncl = 0;

	self->ncpus = lib_cpus(self->cpus, MAX_THREADS);
	ASSERT_LT(0, self->ncpus);
	self->m = lib_scaled(1000, 10);
	/* Every client socket stays open until the end. */
	ASSERT_EQ(0, lib_raise_nofile(self->m + 256));

	if (lib_netns_enter()) {
		if (errno == EPERM)
			SKIP(return, "needs CAP_SYS_ADMIN for a netns");
		ASSERT_EQ(0, -errno);
	}
	/* Room for all connections at once: loss must not be backlog drops. */
	backlog = self->m < 128 ? 128 : self->m;
	somaxconn = lib_sysctl_read("/proc/sys/net/core/somaxconn");
	ASSERT_LT(0, somaxconn);
	if (somaxconn < backlog)
		ASSERT_EQ(0, lib_sysctl_write("/proc/sys/net/core/somaxconn", backlog));
	self->sh->l = lib_listener_on(variant->family,
				      variant->family != variant->cfamily,
				      LIB_PORT, backlog, 0);
	if (self->sh->l < 0 && variant->family == AF_INET6 && errno == EADDRNOTAVAIL)
		SKIP(return, "no IPv6 loopback");
	ASSERT_LE(0, self->sh->l);
	self->sh->stop = eventfd(0, EFD_CLOEXEC);
	ASSERT_LE(0, self->sh->stop);
}

FIXTURE_TEARDOWN(accept_threads)
{
	int i, j;

	if (!self->sh)
		return;
	for (i = 0; i < self->ncl; i++) {
		for (j = 0; j < self->cl[i].made; j++)
			close(self->cl[i].fds[j]);
		free(self->cl[i].fds);
		free(self->cl[i].ports);
	}
	if (self->sh->l >= 0)
		close(self->sh->l);
	if (self->sh->stop >= 0)
		close(self->sh->stop);
	free(self->sh);
}

static void count_accept(struct acceptor *a, const struct sockaddr_storage *ss)
{
	int port = lib_addr_port(ss);

	if (port >= 0 && port < 65536)
		__atomic_fetch_add(&a->sh->seen[port], 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&a->sh->accepted, 1, __ATOMIC_RELEASE);
	a->count++;
}

/* Blocking accept() until the listener is shut down. */
static void *acceptor_blocking(void *arg)
{
	struct acceptor *a = arg;
	struct sockaddr_storage ss;
	socklen_t len;
	int fd;

	__atomic_store_n(&a->tid, gettid(), __ATOMIC_RELEASE);
	if (a->cpu >= 0 && lib_pin(a->cpu))
		a->bad++;
	for (;;) {
		len = sizeof(ss);
		fd = accept(a->sh->l, (struct sockaddr *)&ss, &len);
		if (fd < 0) {
			if (errno == EINTR)
				continue;
			a->err = errno;
			break;
		}
		count_accept(a, &ss);
		close(fd);
	}
	return NULL;
}

/* Own epoll, listener added EPOLLEXCLUSIVE; drain with non-blocking accept. */
static void *acceptor_epoll(void *arg)
{
	struct acceptor *a = arg;
	struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE };
	struct epoll_event evs[4];
	struct sockaddr_storage ss;
	socklen_t len;
	int ep, n, i, fd;

	__atomic_store_n(&a->tid, gettid(), __ATOMIC_RELEASE);
	if (a->cpu >= 0 && lib_pin(a->cpu))
		a->bad++;
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0) {
		a->err = errno;
		return NULL;
	}
	ev.data.fd = a->sh->l;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, a->sh->l, &ev))
		goto out_err;
	ev.events = EPOLLIN;
	ev.data.fd = a->sh->stop;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, a->sh->stop, &ev))
		goto out_err;
	for (;;) {
		n = epoll_wait(ep, evs, 4, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			goto out_err;
		}
		for (i = 0; i < n; i++) {
			if (evs[i].data.fd == a->sh->stop)
				goto out;
			for (;;) {
				len = sizeof(ss);
				fd = accept4(a->sh->l, (struct sockaddr *)&ss,
					     &len, SOCK_CLOEXEC);
				if (fd < 0) {
					if (errno != EAGAIN && errno != EINTR)
						a->bad++;
					break;
				}
				count_accept(a, &ss);
				close(fd);
			}
		}
	}
out_err:
	a->err = errno;
out:
	close(ep);
	return NULL;
}

/* Make n blocking connections and keep them open. */
static void *client_fn(void *arg)
{
	struct client *c = arg;
	int fd;

	if (c->cpu >= 0 && lib_pin(c->cpu)) {
		c->err = errno;
		return NULL;
	}
	while (c->made < c->n) {
		fd = lib_connect(c->sh->family, LIB_PORT, false);
		if (fd < 0) {
			c->err = errno;
			break;
		}
		c->fds[c->made] = fd;
		c->ports[c->made] = lib_sock_port(fd);
		c->made++;
	}
	return NULL;
}

static int start_acceptor(FIXTURE_DATA(accept_threads) *self, int cpu,
			  void *(*fn)(void *))
{
	struct acceptor *a = &self->acc[self->nacc];

	memset(a, 0, sizeof(*a));
	a->sh = self->sh;
	a->cpu = cpu;
	if (pthread_create(&a->th, NULL, fn, a))
		return -1;
	self->nacc++;
	return 0;
}

static int start_client(FIXTURE_DATA(accept_threads) *self, int cpu, int n)
{
	struct client *c = &self->cl[self->ncl];

	memset(c, 0, sizeof(*c));
	c->sh = self->sh;
	c->cpu = cpu;
	c->n = n;
	c->fds = calloc(n ? n : 1, sizeof(int));
	c->ports = calloc(n ? n : 1, sizeof(int));
	if (!c->fds || !c->ports || pthread_create(&c->th, NULL, client_fn, c)) {
		free(c->fds);
		free(c->ports);
		return -1;
	}
	self->ncl++;
	return 0;
}

static int timed_join(pthread_t th, int timeout_ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	return pthread_timedjoin_np(th, NULL, &ts);
}

/* Wait until accepted reaches n; returns the count seen last. */
static int wait_accepted(struct shared *sh, int n, int timeout_ms)
{
	uint64_t end = lib_now_ms() + timeout_ms;
	int v;

	for (;;) {
		v = __atomic_load_n(&sh->accepted, __ATOMIC_ACQUIRE);
		if (v >= n || lib_now_ms() >= end)
			return v;
		lib_tick();
	}
}

/*
 * Join the clients, wait for every connection to be accepted, stop the
 * acceptors (shutdown(SHUT_RD) for blocking ones, the eventfd for epoll
 * ones) and check each connection was accepted exactly once.
 */
static void finish(struct __test_metadata *_metadata,
		   FIXTURE_DATA(accept_threads) *self, bool epoll)
{
	struct shared *sh = self->sh;
	int i, j, made = 0, sum = 0;
	uint64_t v = 1;

	for (i = 0; i < self->ncl; i++) {
		/* Generous: the harness timeout (120 s) is the real limit. */
		ASSERT_EQ(0, timed_join(self->cl[i].th, 100000));
		ASSERT_EQ(0, self->cl[i].err);
		ASSERT_EQ(self->cl[i].n, self->cl[i].made);
		made += self->cl[i].made;
	}
	ASSERT_EQ(self->m, made);

	/* None lost: all get accepted, nothing is left queued, none dropped. */
	ASSERT_EQ(made, wait_accepted(sh, made, LIB_DEADLINE_MS));
	ASSERT_EQ(0, lib_wait_queued(sh->l, 0, LIB_DEADLINE_MS));
	ASSERT_EQ(0, lib_tcpext("ListenDrops"));

	if (epoll) {
		ASSERT_EQ(sizeof(v), write(sh->stop, &v, sizeof(v)));
	} else {
		ASSERT_EQ(0, shutdown(sh->l, SHUT_RD));
	}
	for (i = 0; i < self->nacc; i++) {
		ASSERT_EQ(0, timed_join(self->acc[i].th, LIB_DEADLINE_MS));
		ASSERT_EQ(0, self->acc[i].bad);
		ASSERT_EQ(epoll ? 0 : EINVAL, self->acc[i].err);
		sum += self->acc[i].count;
		TH_LOG("acceptor %d (cpu %d): %d", i, self->acc[i].cpu,
		       self->acc[i].count);
	}
	self->nacc = 0;

	/* Exactly once: no duplicates, no strangers. */
	ASSERT_EQ(made, sum);
	ASSERT_EQ(made, __atomic_load_n(&sh->accepted, __ATOMIC_ACQUIRE));
	for (i = 0; i < self->ncl; i++)
		for (j = 0; j < self->cl[i].made; j++)
			ASSERT_EQ(1, sh->seen[self->cl[i].ports[j]]);
}

/* One blocking acceptor per CPU, one client thread: each connection accepted once. */
TEST_F_TIMEOUT(accept_threads, blocking_per_cpu, 120)
{
	int i, n = self->ncpus < 2 ? 2 : self->ncpus;

	for (i = 0; i < n; i++)
		ASSERT_EQ(0, start_acceptor(self, self->cpus[i % self->ncpus],
					    acceptor_blocking));
	ASSERT_EQ(0, start_client(self, -1, self->m));
	finish(_metadata, self, false);
}

/* One EPOLLEXCLUSIVE epoll + non-blocking accept thread per CPU: each connection accepted once. */
TEST_F_TIMEOUT(accept_threads, epoll_exclusive_per_cpu, 120)
{
	int i, n = self->ncpus < 2 ? 2 : self->ncpus;
	int fl = fcntl(self->sh->l, F_GETFL);

	ASSERT_LE(0, fl);
	ASSERT_EQ(0, fcntl(self->sh->l, F_SETFL, fl | O_NONBLOCK));
	for (i = 0; i < n; i++)
		ASSERT_EQ(0, start_acceptor(self, self->cpus[i % self->ncpus],
					    acceptor_epoll));
	ASSERT_EQ(0, start_client(self, -1, self->m));
	finish(_metadata, self, true);
}

/*
 * A single acceptor, on the last CPU, while clients pinned to every CPU
 * connect: connections arriving on the other CPUs are accepted too.
 */
TEST_F_TIMEOUT(accept_threads, one_acceptor_clients_every_cpu, 120)
{
	int i, n = self->ncpus < 2 ? 2 : self->ncpus, left = self->m;

	ASSERT_EQ(0, start_acceptor(self, self->cpus[self->ncpus - 1],
				    acceptor_blocking));
	for (i = 0; i < n; i++) {
		int k = left / (n - i);

		ASSERT_EQ(0, start_client(self, self->cpus[i % self->ncpus], k));
		left -= k;
	}
	finish(_metadata, self, false);
}

/* The same with a single epoll + non-blocking accept thread, on the first CPU. */
TEST_F_TIMEOUT(accept_threads, one_epoll_acceptor_clients_every_cpu, 120)
{
	int i, n = self->ncpus < 2 ? 2 : self->ncpus, left = self->m;
	int fl = fcntl(self->sh->l, F_GETFL);

	ASSERT_LE(0, fl);
	ASSERT_EQ(0, fcntl(self->sh->l, F_SETFL, fl | O_NONBLOCK));
	ASSERT_EQ(0, start_acceptor(self, self->cpus[0], acceptor_epoll));
	for (i = 0; i < n; i++) {
		int k = left / (n - i);

		ASSERT_EQ(0, start_client(self, self->cpus[i % self->ncpus], k));
		left -= k;
	}
	finish(_metadata, self, true);
}

/*
 * shutdown(SHUT_RD) of the listener wakes every thread asleep in accept()
 * on it, on every CPU, and each fails with EINVAL.
 */
TEST_F_TIMEOUT(accept_threads, shutdown_wakes_all_acceptors, 60)
{
	int i, n = 2 * (self->ncpus < 2 ? 2 : self->ncpus);

	if (n > MAX_THREADS)
		n = MAX_THREADS;

	for (i = 0; i < n; i++)
		ASSERT_EQ(0, start_acceptor(self, self->cpus[i % self->ncpus],
					    acceptor_blocking));
	for (i = 0; i < n; i++) {
		while (!__atomic_load_n(&self->acc[i].tid, __ATOMIC_ACQUIRE))
			lib_tick();
		ASSERT_EQ(0, lib_wait_blocked(self->acc[i].tid, SYS_accept,
					      SYS_accept4, LIB_DEADLINE_MS));
	}
	ASSERT_EQ(0, shutdown(self->sh->l, SHUT_RD));
	for (i = 0; i < n; i++) {
		ASSERT_EQ(0, timed_join(self->acc[i].th, LIB_DEADLINE_MS));
		ASSERT_EQ(EINVAL, self->acc[i].err);
		ASSERT_EQ(0, self->acc[i].count);
		ASSERT_EQ(0, self->acc[i].bad);
	}
	self->nacc = 0;
}

TEST_HARNESS_MAIN
