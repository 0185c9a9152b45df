// SPDX-License-Identifier: GPL-2.0
/*
 * accept_poll: readiness of a TCP listener in stock 6.12.  poll(), select()
 * and epoll report it readable (POLLIN | POLLRDNORM, never writable) exactly
 * while its accept queue is not empty; EPOLLET reports each arrival batch
 * once; O_ASYNC sends SIGIO (or the F_SETSIG signal) to the F_SETOWN owner
 * when a connection is queued; shutdown(SHUT_RD) wakes pollers with POLLHUP.
 *
 * Variants: ipv4, ipv6, and dualstack (an IPv6 listener on [::] taking
 * IPv4 clients as v4-mapped addresses).  Each test runs in a netns of its
 * own, on loopback.
 */
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/select.h>

#include "kselftest_harness.h"
#include "listen_lib.h"

#ifndef SYS_poll
#define SYS_poll -2
#endif
#ifndef SYS_epoll_wait
#define SYS_epoll_wait -2
#endif

#define MAX_CLIENTS 16

FIXTURE(accept_poll) {
	int l;			/* non-blocking listener on loopback:LIB_PORT */
	int c[MAX_CLIENTS];
	int nc;
};

FIXTURE_VARIANT(accept_poll) {
	int family;		/* listener's */
	int cfamily;		/* clients' */
};

FIXTURE_VARIANT_ADD(accept_poll, ipv4) {
	.family = AF_INET,
	.cfamily = AF_INET,
};

FIXTURE_VARIANT_ADD(accept_poll, ipv6) {
	.family = AF_INET6,
	.cfamily = AF_INET6,
};

/* IPv6 listener on [::] taking IPv4 clients (v4-mapped). */
FIXTURE_VARIANT_ADD(accept_poll, dualstack) {
	.family = AF_INET6,
	.cfamily = AF_INET,
};

FIXTURE_SETUP(accept_poll)
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
				  LIB_PORT, 16, SOCK_NONBLOCK);
	if (self->l < 0 && variant->family == AF_INET6 && errno == EADDRNOTAVAIL)
		SKIP(return, "no IPv6 loopback");
	ASSERT_LE(0, self->l);
}

FIXTURE_TEARDOWN(accept_poll)
{
	int i;

	for (i = 0; i < self->nc; i++)
		if (self->c[i] >= 0)
			close(self->c[i]);
	if (self->l >= 0)
		close(self->l);
}

/* Remember a client socket for teardown; returns fd. */
static int track(FIXTURE_DATA(accept_poll) *self, int fd)
{
	if (fd >= 0 && self->nc < MAX_CLIENTS)
		self->c[self->nc++] = fd;
	return fd;
}

/* Connect a client and wait until the listener has n queued. */
static int add_client(FIXTURE_DATA(accept_poll) *self, int family, int n)
{
	int fd;

	if (self->nc >= MAX_CLIENTS)
		return -1;
	fd = track(self, lib_connect(family, LIB_PORT, false));
	if (fd < 0)
		return -1;
	if (lib_wait_queued(self->l, n, LIB_DEADLINE_MS) != n)
		return -1;
	return fd;
}

static int accept_one(int l)
{
	int fd = accept4(l, NULL, NULL, SOCK_CLOEXEC);

	if (fd >= 0)
		close(fd);
	return fd;
}

/* revents of the listener polled for everything, without waiting. */
static int poll_now(int fd)
{
	struct pollfd pfd = {
		.fd = fd,
		.events = POLLIN | POLLPRI | POLLOUT | POLLRDNORM | POLLRDBAND |
			  POLLWRNORM | POLLWRBAND | POLLRDHUP,
	};

	if (poll(&pfd, 1, 0) < 0)
		return -1;
	return pfd.revents;
}

/* Block sig and drain any pending instance of it. */
static void block_signal(int sig)
{
	struct timespec zero = { 0 };
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, sig);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	while (sigtimedwait(&set, NULL, &zero) == sig)
		;
}

/* Wait up to timeout_ms for sig; returns it (with *si filled) or -1. */
static int wait_signal(int sig, siginfo_t *si, int timeout_ms)
{
	struct timespec ts = {
		.tv_sec = timeout_ms / 1000,
		.tv_nsec = (timeout_ms % 1000) * 1000000L,
	};
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, sig);
	return sigtimedwait(&set, si, &ts);
}

/* poll(): POLLIN | POLLRDNORM exactly while connections are queued. */
TEST_F(accept_poll, poll_readable_iff_queued)
{
	int fam = variant->cfamily;

	ASSERT_EQ(0, poll_now(self->l));

	ASSERT_LE(0, add_client(self, fam, 1));
	ASSERT_EQ(POLLIN | POLLRDNORM, poll_now(self->l));
	ASSERT_LE(0, add_client(self, fam, 2));
	ASSERT_EQ(POLLIN | POLLRDNORM, poll_now(self->l));

	ASSERT_LE(0, accept_one(self->l));
	ASSERT_EQ(POLLIN | POLLRDNORM, poll_now(self->l));
	ASSERT_LE(0, accept_one(self->l));
	ASSERT_EQ(0, poll_now(self->l));
	ASSERT_EQ(-1, accept_one(self->l));
	ASSERT_EQ(EAGAIN, errno);

	/* And again for a later arrival, waited for with poll() itself. */
	ASSERT_LE(0, track(self, lib_connect(fam, LIB_PORT, false)));
	ASSERT_EQ(POLLIN, lib_poll1(self->l, POLLIN, LIB_DEADLINE_MS));
	ASSERT_LE(0, accept_one(self->l));
	ASSERT_EQ(0, poll_now(self->l));
}

/* select() on fd alone, without waiting: bit 0 readable, 1 writable, 2 exceptional. */
static int select_now(int fd)
{
	struct timeval tv = { 0 };
	fd_set r, w, e;

	FD_ZERO(&r);
	FD_ZERO(&w);
	FD_ZERO(&e);
	FD_SET(fd, &r);
	FD_SET(fd, &w);
	FD_SET(fd, &e);
	if (select(fd + 1, &r, &w, &e, &tv) < 0)
		return -1;
	return FD_ISSET(fd, &r) | FD_ISSET(fd, &w) << 1 | FD_ISSET(fd, &e) << 2;
}

/* select(): readable exactly while connections are queued, never writable or exceptional. */
TEST_F(accept_poll, select_readable_iff_queued)
{
	int fam = variant->cfamily;

	ASSERT_EQ(0, select_now(self->l));

	ASSERT_LE(0, add_client(self, fam, 1));
	ASSERT_LE(0, add_client(self, fam, 2));
	ASSERT_EQ(1, select_now(self->l));

	ASSERT_LE(0, accept_one(self->l));
	ASSERT_EQ(1, select_now(self->l));
	ASSERT_LE(0, accept_one(self->l));
	ASSERT_EQ(0, select_now(self->l));
}

/* Level-triggered epoll: EPOLLIN on every epoll_wait() while queued, nothing after. */
TEST_F(accept_poll, epoll_level_triggered)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP };
	int fam = variant->cfamily, ep, i;

	ep = epoll_create1(EPOLL_CLOEXEC);
	ASSERT_LE(0, ep);
	ev.data.u64 = 42;
	ASSERT_EQ(0, epoll_ctl(ep, EPOLL_CTL_ADD, self->l, &ev));
	ASSERT_EQ(0, epoll_wait(ep, &ev, 1, 0));

	ASSERT_LE(0, add_client(self, fam, 1));
	ASSERT_LE(0, add_client(self, fam, 2));
	for (i = 0; i < 3; i++) {
		memset(&ev, 0, sizeof(ev));
		/* The first wait covers a wake-up that trails the queueing. */
		ASSERT_EQ(1, epoll_wait(ep, &ev, 1, i ? 0 : LIB_DEADLINE_MS));
		ASSERT_EQ(EPOLLIN, ev.events);
		ASSERT_EQ(42, ev.data.u64);
	}
	ASSERT_LE(0, accept_one(self->l));
	ASSERT_EQ(1, epoll_wait(ep, &ev, 1, 0));
	ASSERT_EQ(EPOLLIN, ev.events);
	ASSERT_LE(0, accept_one(self->l));
	ASSERT_EQ(0, epoll_wait(ep, &ev, 1, 0));
	close(ep);
}

/*
 * Edge-triggered epoll: arrivals while nobody waits make one event; with
 * connections still queued there is no further event until a new one
 * arrives; accept() itself makes none.
 *
 * The listener's wake-up for an arrival can trail its queueing by a bit,
 * so a batch is known complete only once each arrival's F_SETSIG signal
 * (sent by the same data_ready call, after the wake-up) was received.
 */
TEST_F(accept_poll, epoll_edge_triggered)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET };
	int fam = variant->cfamily, ep, i, sig = SIGRTMIN + 2;
	siginfo_t si;

	block_signal(sig);
	ASSERT_EQ(0, fcntl(self->l, F_SETSIG, sig));
	ASSERT_EQ(0, fcntl(self->l, F_SETOWN, getpid()));
	ASSERT_EQ(0, fcntl(self->l, F_SETFL, fcntl(self->l, F_GETFL) | O_ASYNC));

	ep = epoll_create1(EPOLL_CLOEXEC);
	ASSERT_LE(0, ep);
	ASSERT_EQ(0, epoll_ctl(ep, EPOLL_CTL_ADD, self->l, &ev));
	ASSERT_EQ(0, epoll_wait(ep, &ev, 1, 0));

	/* A batch of three: one event, then silence. */
	for (i = 1; i <= 3; i++)
		ASSERT_LE(0, add_client(self, fam, i));
	for (i = 0; i < 3; i++)
		ASSERT_EQ(sig, wait_signal(sig, &si, LIB_DEADLINE_MS));
	ASSERT_EQ(1, epoll_wait(ep, &ev, 1, 0));
	ASSERT_EQ(EPOLLIN, ev.events);
	ASSERT_EQ(0, epoll_wait(ep, &ev, 1, 0));

	/* Taking one leaves two queued, and no event. */
	ASSERT_LE(0, accept_one(self->l));
	ASSERT_EQ(0, epoll_wait(ep, &ev, 1, 0));

	/* A new arrival makes a new event, though the queue was not empty. */
	ASSERT_LE(0, add_client(self, fam, 3));
	ASSERT_EQ(sig, wait_signal(sig, &si, LIB_DEADLINE_MS));
	ASSERT_EQ(1, epoll_wait(ep, &ev, 1, 0));
	ASSERT_EQ(EPOLLIN, ev.events);
	ASSERT_EQ(0, epoll_wait(ep, &ev, 1, 0));

	/* Drained: still no event; the next arrival makes one, waited for. */
	for (i = 0; i < 3; i++)
		ASSERT_LE(0, accept_one(self->l));
	ASSERT_EQ(0, epoll_wait(ep, &ev, 1, 0));
	ASSERT_LE(0, add_client(self, fam, 1));
	ASSERT_EQ(1, epoll_wait(ep, &ev, 1, LIB_DEADLINE_MS));
	ASSERT_EQ(sig, wait_signal(sig, &si, LIB_DEADLINE_MS));
	ASSERT_EQ(0, epoll_wait(ep, &ev, 1, 0));
	ASSERT_LE(0, accept_one(self->l));
	close(ep);
}

struct waiter {
	int l;
	int ep;			/* -1: poll() instead of epoll_wait() */
	pid_t tid;		/* atomic */
	int ret;
	unsigned int revents;
};

static void *waiter_fn(void *arg)
{
	struct waiter *w = arg;

	__atomic_store_n(&w->tid, gettid(), __ATOMIC_RELEASE);
	if (w->ep >= 0) {
		struct epoll_event ev = { 0 };

		w->ret = epoll_wait(w->ep, &ev, 1, LIB_DEADLINE_MS);
		w->revents = ev.events;
	} else {
		struct pollfd pfd = { .fd = w->l, .events = POLLIN };

		w->ret = poll(&pfd, 1, LIB_DEADLINE_MS);
		w->revents = pfd.revents;
	}
	return NULL;
}

/* Pollers and epoll waiters asleep on a listener wake with POLLHUP on shutdown(SHUT_RD). */
TEST_F(accept_poll, shutdown_rd_wakes_pollers)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct waiter w[2] = {
		{ .l = self->l, .ep = -1 },
		{ .l = self->l, .ep = epoll_create1(EPOLL_CLOEXEC) },
	};
	pthread_t th[2];
	int i;

	ASSERT_LE(0, w[1].ep);
	ASSERT_EQ(0, epoll_ctl(w[1].ep, EPOLL_CTL_ADD, self->l, &ev));
	for (i = 0; i < 2; i++)
		ASSERT_EQ(0, pthread_create(&th[i], NULL, waiter_fn, &w[i]));
	for (i = 0; i < 2; i++) {
		while (!__atomic_load_n(&w[i].tid, __ATOMIC_ACQUIRE))
			lib_tick();
		ASSERT_EQ(0, lib_wait_blocked(w[i].tid,
					      i ? SYS_epoll_wait : SYS_poll,
					      i ? SYS_epoll_pwait : SYS_ppoll,
					      LIB_DEADLINE_MS));
	}
	ASSERT_EQ(0, shutdown(self->l, SHUT_RD));
	for (i = 0; i < 2; i++)
		ASSERT_EQ(0, pthread_join(th[i], NULL));

	ASSERT_EQ(1, w[0].ret);
	ASSERT_EQ(POLLHUP, w[0].revents);
	ASSERT_EQ(1, w[1].ret);
	ASSERT_EQ(EPOLLHUP, w[1].revents);
	/* The stopped listener: hung up, writable, not readable. */
	ASSERT_EQ(POLLOUT | POLLWRNORM | POLLHUP, poll_now(self->l) &
		  (POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM | POLLHUP | POLLERR));
	close(w[1].ep);
}

/*
 * O_ASYNC with F_SETOWN(pid): SIGIO on each arrival, none before, none
 * once O_ASYNC is cleared.
 */
TEST_F(accept_poll, sigio_on_arrival)
{
	int fam = variant->cfamily, fl;
	siginfo_t si;

	block_signal(SIGIO);
	ASSERT_EQ(0, fcntl(self->l, F_SETOWN, getpid()));
	ASSERT_EQ(getpid(), fcntl(self->l, F_GETOWN));
	fl = fcntl(self->l, F_GETFL);
	ASSERT_LE(0, fl);
	ASSERT_EQ(0, fcntl(self->l, F_SETFL, fl | O_ASYNC));
	ASSERT_EQ(-1, wait_signal(SIGIO, &si, 0));
	ASSERT_EQ(EAGAIN, errno);

	ASSERT_LE(0, add_client(self, fam, 1));
	ASSERT_EQ(SIGIO, wait_signal(SIGIO, &si, LIB_DEADLINE_MS));
	ASSERT_LE(0, accept_one(self->l));
	ASSERT_EQ(-1, wait_signal(SIGIO, &si, 0));

	ASSERT_LE(0, add_client(self, fam, 1));
	ASSERT_EQ(SIGIO, wait_signal(SIGIO, &si, LIB_DEADLINE_MS));
	ASSERT_LE(0, accept_one(self->l));

	/* Cleared O_ASYNC: the arrival is there, the signal is not. */
	ASSERT_EQ(0, fcntl(self->l, F_SETFL, fl));
	ASSERT_LE(0, add_client(self, fam, 1));
	ASSERT_EQ(POLLIN, lib_poll1(self->l, POLLIN, LIB_DEADLINE_MS));
	ASSERT_EQ(-1, wait_signal(SIGIO, &si, 100));
	ASSERT_EQ(EAGAIN, errno);
	ASSERT_LE(0, accept_one(self->l));
}

/* F_SETSIG: the chosen signal arrives with si_fd = the listener, si_code POLL_IN, POLLIN in si_band. */
TEST_F(accept_poll, setsig_siginfo)
{
	int fam = variant->cfamily, sig = SIGRTMIN + 1;
	siginfo_t si;

	block_signal(sig);
	block_signal(SIGIO);
	ASSERT_EQ(0, fcntl(self->l, F_SETSIG, sig));
	ASSERT_EQ(0, fcntl(self->l, F_SETOWN, getpid()));
	ASSERT_EQ(0, fcntl(self->l, F_SETFL, fcntl(self->l, F_GETFL) | O_ASYNC));

	ASSERT_LE(0, add_client(self, fam, 1));
	memset(&si, 0, sizeof(si));
	ASSERT_EQ(sig, wait_signal(sig, &si, LIB_DEADLINE_MS));
	ASSERT_EQ(self->l, si.si_fd);
	ASSERT_EQ(POLL_IN, si.si_code);
	ASSERT_TRUE(si.si_band & POLLIN);
	ASSERT_FALSE(si.si_band & POLLOUT);
	ASSERT_EQ(-1, wait_signal(SIGIO, &si, 0));
	ASSERT_LE(0, accept_one(self->l));
}

struct sig_thread {
	pid_t tid;		/* atomic */
	int go;			/* atomic: 1 once the owner is set */
	int got;
};

static void *sig_thread_fn(void *arg)
{
	struct sig_thread *t = arg;
	siginfo_t si;

	/* SIGIO is blocked here too (inherited); take it synchronously. */
	__atomic_store_n(&t->tid, gettid(), __ATOMIC_RELEASE);
	while (!__atomic_load_n(&t->go, __ATOMIC_ACQUIRE))
		lib_tick();
	t->got = wait_signal(SIGIO, &si, LIB_DEADLINE_MS);
	return NULL;
}

/* F_SETOWN_EX(F_OWNER_TID): SIGIO goes to that thread, not to the others. */
TEST_F(accept_poll, sigio_to_owner_thread)
{
	struct f_owner_ex own = { .type = F_OWNER_TID };
	struct sig_thread t = { 0 };
	int fam = variant->cfamily;
	pthread_t th;
	sigset_t pend;

	block_signal(SIGIO);
	ASSERT_EQ(0, pthread_create(&th, NULL, sig_thread_fn, &t));
	while (!__atomic_load_n(&t.tid, __ATOMIC_ACQUIRE))
		lib_tick();
	own.pid = t.tid;
	ASSERT_EQ(0, fcntl(self->l, F_SETOWN_EX, &own));
	ASSERT_EQ(0, fcntl(self->l, F_SETFL, fcntl(self->l, F_GETFL) | O_ASYNC));
	__atomic_store_n(&t.go, 1, __ATOMIC_RELEASE);

	ASSERT_LE(0, add_client(self, fam, 1));
	ASSERT_EQ(0, pthread_join(th, NULL));
	ASSERT_EQ(SIGIO, t.got);
	/* Nothing for this (main) thread or the process as a whole. */
	ASSERT_EQ(0, sigpending(&pend));
	ASSERT_FALSE(sigismember(&pend, SIGIO));
	ASSERT_LE(0, accept_one(self->l));
}

TEST_HARNESS_MAIN
