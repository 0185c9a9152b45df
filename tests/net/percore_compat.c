// SPDX-License-Identifier: GPL-2.0
/*
 * percore_compat: per-core listeners (net.ipv4.tcp_percore_listen, the
 * TCP_PERCORE_LISTEN socket option) used with the listener features and
 * the ways of sharing a listener that applications rely on.  Each test
 * checks that the behaviour applications see is the one of a plain
 * listener, and where the clones show through (queue lengths, counters),
 * that they add up:
 *
 *  - defer_accept: TCP_DEFER_ACCEPT keeps a connection without data out
 *    of every clone (accept() says EAGAIN, poll() nothing); its first data
 *    queue it, and it is accepted with that data.
 *  - fastopen: Fast Open children, made at the SYN, are accepted with the
 *    data of the SYN, from clients on every CPU; TCPFastOpenPassive counts
 *    each one.
 *  - syncookies: with tcp_syncookies=2 every connection, from clients on
 *    every CPU, completes through a cookie and is accepted exactly once by
 *    one acceptor on the first CPU, stealing from the other clones.
 *  - specific_vs_wildcard: a per-core listener on the loopback address and
 *    one on the wildcard address, same port: the most specific one gets
 *    the connections, as without clones.
 *  - reuseport_left_alone_and_mode_2_refused: tcp_percore_listen=1 leaves
 *    SO_REUSEPORT listeners alone; writing 2 (a mode that no longer
 *    exists) fails with EINVAL and changes nothing; TCP_PERCORE_LISTEN=1
 *    still makes reuseport members per-core, and such a group accepts
 *    every connection once.
 *  - fork_shared, scm_rights: a listener shared with another process by
 *    fork(), or handed over with SCM_RIGHTS (the sender closing its copy),
 *    is accepted from in that process, on another CPU.
 *  - netns_teardown: a process in a netns of its own exits with
 *    connections waiting in every clone: each queued connection is reset;
 *    the netns then goes.
 *  - sigio: O_ASYNC on a per-core listener sends SIGIO for each connection.
 *  - bind_release: /proc/net/tcp{,6} shows one LISTEN row per per-core
 *    listener (queue summed over the clones); once it is closed, a new
 *    socket binds the port without SO_REUSEADDR: no clone holds the port.
 *  - percore_hotplug.cpu_offline: connections queued in the clone of a
 *    CPU that goes offline are still accepted, by stealing.
 *
 * On loopback a SYN is processed on the CPU that sends it, so a client
 * pinned to CPU k puts its connections in clone k; where that fixes which
 * accept()s are local and which are steals, the counters of
 * /proc/net/tcp_percore_listen are checked too.
 *
 * Variants: ipv4, ipv6, and dualstack (an IPv6 listener on [::] taking
 * IPv4 clients as v4-mapped addresses).  Each test runs in a netns of its
 * own, on loopback, with net.ipv4.tcp_percore_listen=1.
 *
 * MP_TEST_SCALE scales the connection counts.
 */
#include <pthread.h>
#include <signal.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "percore_lib.h"

#ifndef TCPI_OPT_SYN_DATA
#define TCPI_OPT_SYN_DATA	32
#endif

/* Clients go to at most this many CPUs (the first ones we may run on). */
#define USE_CPUS	16
#define NOFILE		1024	/* and more where tests need it */
#define TFO_SYSCTL	"/proc/sys/net/ipv4/tcp_fastopen"
#define COOKIE_SYSCTL	"/proc/sys/net/ipv4/tcp_syncookies"

/* How a test listener is made. */
struct lopt {
	int backlog;
	int pcl;	/* TCP_PERCORE_LISTEN before listen(); -1: the sysctl decides */
	bool reuseport;	/* SO_REUSEPORT (else SO_REUSEADDR) */
	bool nonblock;
	int defer;	/* TCP_DEFER_ACCEPT, seconds; 0: none */
	int tfo;	/* TCP_FASTOPEN queue length; 0: none */
};

/* What a helper process reports (no ASSERT there: it is not the test). */
struct child_result {
	int err;	/* errno of the first failure, 0 if none */
	int line;	/* where it failed */
	int accepted;
	int pcl;	/* TCP_PERCORE_LISTEN of the listener, as it saw it */
	int cpu;	/* where it accepted */
	int made;	/* connections made */
	int queued;	/* connections queued on its listener */
	int nfds;	/* client sockets passed along */
};

#define CHILD_FAIL(r) do {			\
	(r)->err = errno ? errno : EIO;		\
	(r)->line = __LINE__;			\
} while (0)

/* A thread making n blocking connections from one CPU, keeping them. */
struct dialer {
	pthread_t th;
	bool started;
	int cpu;
	const struct sockaddr_storage *dst;
	socklen_t dlen;
	int n;
	int made;
	int err;
	int *fds;
};

static bool addr_is_any(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)ss)->sin6_addr);
	return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
}

/* Loopback address of family and port, or the wildcard address if any. */
static socklen_t addr_of(int family, bool any, uint16_t port,
			 struct sockaddr_storage *ss)
{
	socklen_t len = lib_lo_addr(family, port, ss);

	if (any && family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_addr = in6addr_any;
	else if (any)
		((struct sockaddr_in *)ss)->sin_addr.s_addr = htonl(INADDR_ANY);
	return len;
}

/* An IPv4 address (host order) and port. */
static socklen_t addr_v4(uint32_t a, uint16_t port, struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;

	memset(ss, 0, sizeof(*ss));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(a);
	sin->sin_port = htons(port);
	return sizeof(*sin);
}

/*
 * A TCP listener on *ss (dual-stack if it is [::]) as o says; *before
 * gets TCP_PERCORE_LISTEN as read between bind() and listen().
 */
static int open_listener(const struct sockaddr_storage *ss, socklen_t len,
			 const struct lopt *o, int *before)
{
	int family = ss->ss_family, one = 1, zero = 0, fd, e;

	fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC |
			    (o->nonblock ? SOCK_NONBLOCK : 0), 0);
	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, o->reuseport ? SO_REUSEPORT : SO_REUSEADDR,
		       &one, sizeof(one)) ||
	    (family == AF_INET6 && addr_is_any(ss) &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero))) ||
	    (o->pcl >= 0 && pcl_set(fd, o->pcl)) ||
	    (o->defer && setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT,
				    &o->defer, sizeof(o->defer))) ||
	    (o->tfo && setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN,
				  &o->tfo, sizeof(o->tfo))) ||
	    bind(fd, (const struct sockaddr *)ss, len))
		goto err;
	if (before)
		*before = pcl_get(fd);
	if (listen(fd, o->backlog))
		goto err;
	return fd;
err:
	e = errno;
	close(fd);
	errno = e;
	return -1;
}

/* A new TCP connection to *dst; blocking: returns once established. */
static int dial(const struct sockaddr_storage *dst, socklen_t len, bool nonblock)
{
	int fd, e;

	fd = socket(dst->ss_family, SOCK_STREAM | SOCK_CLOEXEC |
				    (nonblock ? SOCK_NONBLOCK : 0), 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (const struct sockaddr *)dst, len) &&
	    !(nonblock && errno == EINPROGRESS)) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/*
 * accept4() on a non-blocking listener, polling for up to timeout_ms;
 * -1 with errno ETIMEDOUT when nothing came.
 */
static int accept_wait(int l, int timeout_ms, struct sockaddr_storage *peer)
{
	uint64_t end = lib_now_ms() + timeout_ms;
	struct pollfd pfd = { .fd = l, .events = POLLIN };
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, left;

	for (;;) {
		len = sizeof(ss);
		fd = accept4(l, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC);
		if (fd >= 0) {
			if (peer)
				memcpy(peer, &ss, sizeof(ss));
			return fd;
		}
		if (errno != EAGAIN && errno != EINTR)
			return -1;
		left = (int)(end - lib_now_ms());
		if (left <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		if (poll(&pfd, 1, left) < 0 && errno != EINTR)
			return -1;
	}
}

/* Receive len bytes within timeout_ms; returns how many came, or -1. */
static int recv_wait(int fd, void *buf, int len, int timeout_ms)
{
	uint64_t end = lib_now_ms() + timeout_ms;
	int got = 0, r, left;
	ssize_t n;

	while (got < len) {
		left = (int)(end - lib_now_ms());
		r = lib_poll1(fd, POLLIN, left > 0 ? left : 0);
		if (r < 0)
			return -1;
		if (!r) {
			errno = ETIMEDOUT;
			return got ? got : -1;
		}
		n = recv(fd, (char *)buf + got, len - got, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			return -1;
		}
		if (!n)
			break;
		got += n;
	}
	return got;
}

/* Read exactly len bytes from a socket within timeout_ms. */
static int read_full(int fd, void *buf, size_t len, int timeout_ms)
{
	int got = recv_wait(fd, buf, (int)len, timeout_ms);

	if (got == (int)len)
		return 0;
	if (got >= 0)
		errno = EBADMSG;
	return -1;
}

/* read_full() for a pipe (recv() only works on sockets). */
static int read_pipe(int fd, void *buf, size_t len, int timeout_ms)
{
	uint64_t end = lib_now_ms() + timeout_ms;
	size_t got = 0;
	ssize_t n;
	int r, left;

	while (got < len) {
		left = (int)(end - lib_now_ms());
		r = lib_poll1(fd, POLLIN, left > 0 ? left : 0);
		if (r < 0)
			return -1;
		if (!r) {
			errno = ETIMEDOUT;
			return -1;
		}
		n = read(fd, (char *)buf + got, len - got);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -1;
		}
		if (!n) {
			errno = EBADMSG;
			return -1;
		}
		got += n;
	}
	return 0;
}

/* Send len bytes of data with nfds descriptors (SCM_RIGHTS). */
static int send_fds(int sock, const void *data, size_t len,
		    const int *fds, int nfds)
{
	char cbuf[CMSG_SPACE(sizeof(int) * USE_CPUS)];
	struct iovec iov = { .iov_base = (void *)data, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cm;

	if (nfds > USE_CPUS) {
		errno = EINVAL;
		return -1;
	}
	if (nfds > 0) {
		memset(cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
	}
	if (sendmsg(sock, &mh, MSG_NOSIGNAL) != (ssize_t)len) {
		if (errno == 0)
			errno = EMSGSIZE;
		return -1;
	}
	return 0;
}

/*
 * Receive what send_fds() sent, within timeout_ms: len bytes into data,
 * up to max descriptors into fds.  Returns how many descriptors, or -1.
 */
static int recv_fds(int sock, void *data, size_t len, int *fds, int max,
		    int timeout_ms)
{
	char cbuf[CMSG_SPACE(sizeof(int) * USE_CPUS)];
	struct iovec iov = { .iov_base = data, .iov_len = len };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cm;
	int n = 0, i, k, fd, r;
	ssize_t got;

	r = lib_poll1(sock, POLLIN, timeout_ms);
	if (r <= 0) {
		if (!r)
			errno = ETIMEDOUT;
		return -1;
	}
	do {
		got = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	} while (got < 0 && errno == EINTR);
	if (got < 0)
		return -1;
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < k; i++) {
			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (n < max)
				fds[n++] = fd;
			else
				close(fd);
		}
	}
	if ((size_t)got != len || (mh.msg_flags & MSG_CTRUNC)) {
		for (i = 0; i < n; i++)
			close(fds[i]);
		errno = EBADMSG;
		return -1;
	}
	return n;
}

/* Reap pid within timeout_ms; 0, or -1 (errno ETIMEDOUT if still alive). */
static int wait_child(pid_t pid, int timeout_ms, int *status)
{
	uint64_t end = lib_now_ms() + timeout_ms;
	pid_t r;

	for (;;) {
		r = waitpid(pid, status, WNOHANG);
		if (r == pid)
			return 0;
		if (r < 0 && errno != EINTR)
			return -1;
		if (lib_now_ms() >= end) {
			errno = ETIMEDOUT;
			return -1;
		}
		lib_tick();
	}
}

static int find_port(const int *ports, int n, int port)
{
	int i;

	for (i = 0; i < n; i++)
		if (ports[i] == port)
			return i;
	return -1;
}

static void *dialer_fn(void *arg)
{
	struct dialer *d = arg;
	int fd;

	if (lib_pin(d->cpu)) {
		d->err = errno;
		return NULL;
	}
	while (d->made < d->n) {
		fd = dial(d->dst, d->dlen, false);
		if (fd < 0) {
			d->err = errno;
			break;
		}
		d->fds[d->made++] = fd;
	}
	return NULL;
}

/* nd dialers, on cpus[0..nd-1], making total connections between them. */
static int dialers_start(struct dialer *d, int nd, const int *cpus,
			 const struct sockaddr_storage *dst, socklen_t dlen,
			 int total)
{
	int i;

	for (i = 0; i < nd; i++) {
		memset(&d[i], 0, sizeof(d[i]));
		d[i].cpu = cpus[i];
		d[i].dst = dst;
		d[i].dlen = dlen;
		d[i].n = total / nd + (i < total % nd);
		d[i].fds = calloc(d[i].n ? d[i].n : 1, sizeof(int));
		if (!d[i].fds)
			return -1;
		if (pthread_create(&d[i].th, NULL, dialer_fn, &d[i]))
			return -1;
		d[i].started = true;
	}
	return 0;
}

static int dialers_join(struct dialer *d, int nd, int timeout_ms)
{
	struct timespec ts;
	int i;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000 + 1;
	for (i = 0; i < nd; i++) {
		if (!d[i].started)
			continue;
		if (pthread_timedjoin_np(d[i].th, NULL, &ts))
			return -1;
		d[i].started = false;
	}
	return 0;
}

/*
 * In a helper process: accept k connections from listener l (blocking,
 * SO_RCVTIMEO bounding each wait) on CPU cpu; send byte on each.
 */
static void child_accept(int l, int cpu, int k, char byte,
			 struct child_result *r)
{
	struct timeval tv = { .tv_sec = 20 };
	int a;

	r->pcl = pcl_get(l);
	if (lib_pin(cpu) ||
	    setsockopt(l, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv))) {
		CHILD_FAIL(r);
		return;
	}
	while (r->accepted < k) {
		a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
		if (a < 0) {
			if (errno == EINTR)
				continue;
			CHILD_FAIL(r);
			return;
		}
		if (send(a, &byte, 1, MSG_NOSIGNAL) != 1) {
			CHILD_FAIL(r);
			close(a);
			return;
		}
		close(a);
		r->accepted++;
	}
	r->cpu = sched_getcpu();
}

/* The counters of this netns, "all" row. */
static void read_counters(struct __test_metadata *_metadata,
			  struct pcl_counters *c)
{
	ASSERT_EQ(0, pcl_counters(-1, c)) {
		TH_LOG("%s: %s", PCL_PROC, strerror(errno));
	}
}

/* local accepts and steals since *b are exactly these. */
static void check_accepts(struct __test_metadata *_metadata,
			  const struct pcl_counters *b,
			  long long local, long long steals)
{
	struct pcl_counters a;

	read_counters(_metadata, &a);
	ASSERT_EQ(local, a.local_accepts - b->local_accepts);
	ASSERT_EQ(steals, a.steals - b->steals);
}

/* A client was reset: error and hang-up pending, then ECONNRESET. */
static void expect_reset(struct __test_metadata *_metadata, int fd)
{
	char b;
	int r;

	r = lib_wait_revents(fd, 0, POLLERR | POLLHUP, LIB_DEADLINE_MS);
	ASSERT_EQ(POLLERR | POLLHUP, r);
	ASSERT_EQ(-1, read(fd, &b, 1));
	ASSERT_EQ(ECONNRESET, errno);
}

/* One byte each way over an accepted connection and its client. */
static void echo(struct __test_metadata *_metadata, int a, int c)
{
	char b = 0;

	ASSERT_EQ(1, send(c, "c", 1, MSG_NOSIGNAL));
	ASSERT_EQ(1, recv_wait(a, &b, 1, LIB_DEADLINE_MS));
	ASSERT_EQ('c', b);
	ASSERT_EQ(1, send(a, "s", 1, MSG_NOSIGNAL));
	ASSERT_EQ(1, recv_wait(c, &b, 1, LIB_DEADLINE_MS));
	ASSERT_EQ('s', b);
}

FIXTURE(percore_compat) {
	int cpus[PCL_MAX_CPUS];
	int ncpus;		/* CPUs we may run on */
	int nuse;		/* the first nuse of them get clients */
	int first, last;	/* cpus[0], cpus[ncpus - 1] */
	int *fds;		/* every socket opened, -1 once closed */
	int nfds, capfds;
	pid_t child;		/* helper process, killed by teardown */
};

FIXTURE_VARIANT(percore_compat) {
	int family;		/* listener's */
	int cfamily;		/* clients' */
};

FIXTURE_VARIANT_ADD(percore_compat, ipv4) {
	.family = AF_INET,
	.cfamily = AF_INET,
};

FIXTURE_VARIANT_ADD(percore_compat, ipv6) {
	.family = AF_INET6,
	.cfamily = AF_INET6,
};

/* IPv6 listener on [::] taking IPv4 clients (v4-mapped). */
FIXTURE_VARIANT_ADD(percore_compat, dualstack) {
	.family = AF_INET6,
	.cfamily = AF_INET,
};

/* Remember fd for teardown; returns it (-1 stays -1). */
static int keep(FIXTURE_DATA(percore_compat) *self, int fd)
{
	int *p, cap;

	if (fd < 0)
		return fd;
	if (self->nfds == self->capfds) {
		cap = self->capfds ? 2 * self->capfds : 64;
		p = realloc(self->fds, cap * sizeof(int));
		if (!p) {
			close(fd);
			errno = ENOMEM;
			return -1;
		}
		self->fds = p;
		self->capfds = cap;
	}
	self->fds[self->nfds++] = fd;
	return fd;
}

/* Close a kept fd. */
static int drop(FIXTURE_DATA(percore_compat) *self, int fd)
{
	int i;

	for (i = self->nfds - 1; i >= 0; i--) {
		if (self->fds[i] == fd) {
			self->fds[i] = -1;
			break;
		}
	}
	return close(fd);
}

/*
 * A listener on *ss as o says: TCP_PERCORE_LISTEN reads o->pcl before
 * listen() (-1: the sysctl will decide) and want after.
 */
static int listener_at(struct __test_metadata *_metadata,
		       FIXTURE_DATA(percore_compat) *self,
		       const struct sockaddr_storage *ss, socklen_t len,
		       const struct lopt *o, int want)
{
	int before = -2, fd;

	fd = keep(self, open_listener(ss, len, o, &before));
	ASSERT_LE(0, fd) {
		TH_LOG("listener on port %d: %s", lib_addr_port(ss),
		       strerror(errno));
	}
	ASSERT_EQ(o->pcl, before);
	ASSERT_EQ(want, pcl_get(fd));
	return fd;
}

/* The variant's listener on port: loopback, or [::] for dualstack. */
static int variant_listener(struct __test_metadata *_metadata,
			    FIXTURE_DATA(percore_compat) *self,
			    const FIXTURE_VARIANT(percore_compat) *variant,
			    uint16_t port, const struct lopt *o, int want)
{
	struct sockaddr_storage ss;
	socklen_t len;

	len = addr_of(variant->family, variant->family != variant->cfamily,
		      port, &ss);
	return listener_at(_metadata, self, &ss, len, o, want);
}

FIXTURE_SETUP(percore_compat)
{
	struct lopt o = { .backlog = 8, .pcl = -1 };
	struct sockaddr_storage ss;
	struct pcl_counters c;
	int fd, before = -2;
	socklen_t len;

	self->child = -1;
	self->fds = NULL;
	self->nfds = self->capfds = 0;
	self->ncpus = lib_cpus(self->cpus, PCL_MAX_CPUS);
	ASSERT_LT(0, self->ncpus);
	self->nuse = self->ncpus < USE_CPUS ? self->ncpus : USE_CPUS;
	self->first = self->cpus[0];
	self->last = self->cpus[self->ncpus - 1];

	if (lib_netns_enter()) {
		if (errno == EPERM)
			SKIP(return, "needs CAP_SYS_ADMIN for a netns");
		ASSERT_EQ(0, -errno);
	}
	/* Syncookies' clients and accepted sockets, netns_teardown's clients. */
	ASSERT_EQ(0, lib_raise_nofile(2 * lib_scaled(50, 4) * self->nuse +
				      lib_scaled(200, 8) + NOFILE));
	/* The feature must be there: no SKIP. */
	ASSERT_EQ(0, pcl_set_mode(1)) {
		TH_LOG("%s: %s", PCL_SYSCTL, strerror(errno));
	}
	ASSERT_EQ(1, lib_sysctl_read(PCL_SYSCTL));
	ASSERT_EQ(0, pcl_counters(-1, &c)) {
		TH_LOG("%s: %s", PCL_PROC, strerror(errno));
	}

	/* The sysctl decides at listen(): -1 before, per-core after. */
	len = addr_of(variant->family, variant->family != variant->cfamily,
		      0, &ss);
	fd = open_listener(&ss, len, &o, &before);
	if (fd < 0 && variant->family == AF_INET6 &&
	    (errno == EADDRNOTAVAIL || errno == EAFNOSUPPORT))
		SKIP(return, "no IPv6 loopback");
	ASSERT_LE(0, keep(self, fd)) {
		TH_LOG("listener: %s", strerror(errno));
	}
	ASSERT_EQ(-1, before);
	ASSERT_EQ(1, pcl_get(fd));
	ASSERT_EQ(0, drop(self, fd));
}

FIXTURE_TEARDOWN(percore_compat)
{
	int i, status;

	if (self->child > 0) {
		kill(self->child, SIGKILL);
		waitpid(self->child, &status, 0);
		self->child = -1;
	}
	for (i = 0; i < self->nfds; i++)
		if (self->fds[i] >= 0)
			close(self->fds[i]);
	free(self->fds);
	self->fds = NULL;
	self->nfds = self->capfds = 0;
}

/*
 * TCP_DEFER_ACCEPT: a connection without data stays out of the clones
 * (non-blocking accept() says EAGAIN, poll() reports nothing) until its
 * first data, then it is accepted with that data.
 */
TEST_F(percore_compat, defer_accept)
{
	struct lopt o = { .backlog = 16, .pcl = -1, .nonblock = true, .defer = 1 };
	struct sockaddr_storage dst, peer;
	struct pcl_counters before;
	socklen_t dlen;
	char buf[8];
	uint64_t t0;
	int l, c, a;

	dlen = lib_lo_addr(variant->cfamily, LIB_PORT, &dst);
	l = variant_listener(_metadata, self, variant, LIB_PORT, &o, 1);
	ASSERT_LT(0, lib_getsockopt_int(l, IPPROTO_TCP, TCP_DEFER_ACCEPT));
	read_counters(_metadata, &before);

	/* The client, on the last CPU, sees the handshake complete... */
	ASSERT_EQ(0, lib_pin(self->last));
	c = keep(self, dial(&dst, dlen, false));
	ASSERT_LE(0, c) TH_LOG("connect: %s", strerror(errno));
	ASSERT_EQ(TCP_ESTABLISHED, lib_tcp_state(c));
	ASSERT_EQ(0, lib_pin(self->first));

	/* ...but without data there is nothing to accept (well within 1 s). */
	t0 = lib_now_ms();
	while (lib_now_ms() - t0 < 300) {
		ASSERT_EQ(-1, accept4(l, NULL, NULL, SOCK_CLOEXEC));
		ASSERT_EQ(EAGAIN, errno);
		ASSERT_EQ(0, lib_poll1(l, POLLIN, 20));
	}
	ASSERT_EQ(0, lib_wait_queued(l, 0, 0));

	/* Data, from the client's CPU: the child goes to that CPU's clone. */
	ASSERT_EQ(0, lib_pin(self->last));
	ASSERT_EQ(5, send(c, "hello", 5, MSG_NOSIGNAL));
	ASSERT_EQ(0, lib_pin(self->first));
	a = keep(self, accept_wait(l, LIB_DEADLINE_MS, &peer));
	ASSERT_LE(0, a) TH_LOG("accept: %s", strerror(errno));
	ASSERT_EQ(lib_sock_port(c), lib_addr_port(&peer));
	ASSERT_EQ(5, recv_wait(a, buf, 5, LIB_DEADLINE_MS));
	ASSERT_EQ(0, memcmp(buf, "hello", 5));
	ASSERT_EQ(1, send(a, "r", 1, MSG_NOSIGNAL));
	ASSERT_EQ(1, recv_wait(c, buf, 1, LIB_DEADLINE_MS));
	ASSERT_EQ('r', buf[0]);
	ASSERT_EQ(0, lib_wait_queued(l, 0, 0));
	check_accepts(_metadata, &before, self->last == self->first,
		      self->last != self->first);

	ASSERT_EQ(0, drop(self, a));
	ASSERT_EQ(0, drop(self, c));
	ASSERT_EQ(0, drop(self, l));
}

/*
 * TCP Fast Open (tcp_fastopen=0x207: client and server, no cookie): from
 * clients on every CPU, each child is accepted with the SYN's data as its
 * first bytes, and TCPFastOpenPassive counts every connection.
 */
TEST_F_TIMEOUT(percore_compat, fastopen, 60)
{
	int k = lib_scaled(4, 2), n = k * self->nuse, i, j, x, got;
	struct lopt o = { .backlog = n + 8, .pcl = -1, .nonblock = true, .tfo = 8 };
	struct sockaddr_storage dst, peer;
	struct pcl_counters before;
	long long passive, fail;
	struct tcp_info ti;
	char msg[16], buf[16];
	int l, a, fd, *c, *ports;
	socklen_t dlen, tl;
	char *seen;

	ASSERT_EQ(0, lib_sysctl_write(TFO_SYSCTL, 0x207));
	ASSERT_EQ(0x207, lib_sysctl_read(TFO_SYSCTL));
	dlen = lib_lo_addr(variant->cfamily, LIB_PORT, &dst);
	l = variant_listener(_metadata, self, variant, LIB_PORT, &o, 1);
	passive = lib_tcpext("TCPFastOpenPassive");
	fail = lib_tcpext("TCPFastOpenPassiveFail");
	ASSERT_LE(0, passive);
	ASSERT_LE(0, fail);
	read_counters(_metadata, &before);

	c = calloc(n, sizeof(int));
	ports = calloc(n, sizeof(int));
	seen = calloc(n, 1);
	ASSERT_NE(NULL, c);
	ASSERT_NE(NULL, ports);
	ASSERT_NE(NULL, seen);

	for (i = 0; i < self->nuse; i++) {
		ASSERT_EQ(0, lib_pin(self->cpus[i]));
		for (j = 0; j < k; j++) {
			x = i * k + j;
			fd = keep(self, socket(variant->cfamily,
					       SOCK_STREAM | SOCK_CLOEXEC, 0));
			ASSERT_LE(0, fd);
			snprintf(msg, sizeof(msg), "tfo%05d", x);
			ASSERT_EQ(8, sendto(fd, msg, 8, MSG_FASTOPEN,
					    (struct sockaddr *)&dst, dlen)) {
				TH_LOG("sendto(MSG_FASTOPEN): %s", strerror(errno));
			}
			/* The SYN-ACK acknowledged the data of the SYN. */
			tl = sizeof(ti);
			ASSERT_EQ(0, getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tl));
			ASSERT_NE(0, ti.tcpi_options & TCPI_OPT_SYN_DATA) {
				TH_LOG("connection %d (cpu %d): SYN data not acked",
				       x, self->cpus[i]);
			}
			c[x] = fd;
			ports[x] = lib_sock_port(fd);
			ASSERT_LT(0, ports[x]);
		}
	}

	ASSERT_EQ(0, lib_pin(self->first));
	for (got = 0; got < n; got++) {
		a = keep(self, accept_wait(l, LIB_DEADLINE_MS, &peer));
		ASSERT_LE(0, a) {
			TH_LOG("accept %d of %d: %s", got, n, strerror(errno));
		}
		x = find_port(ports, n, lib_addr_port(&peer));
		ASSERT_LE(0, x);
		ASSERT_EQ(0, seen[x]);
		seen[x] = 1;
		ASSERT_EQ(8, recv_wait(a, buf, 8, LIB_DEADLINE_MS));
		snprintf(msg, sizeof(msg), "tfo%05d", x);
		ASSERT_EQ(0, memcmp(buf, msg, 8)) {
			TH_LOG("connection %d: got '%.8s'", x, buf);
		}
		tl = sizeof(ti);
		ASSERT_EQ(0, getsockopt(a, IPPROTO_TCP, TCP_INFO, &ti, &tl));
		ASSERT_NE(0, ti.tcpi_options & TCPI_OPT_SYN_DATA);
		ASSERT_EQ(0, drop(self, a));
	}
	ASSERT_EQ(passive + n, lib_wait_tcpext_above("TCPFastOpenPassive",
						     passive + n - 1,
						     LIB_DEADLINE_MS));
	ASSERT_EQ(fail, lib_tcpext("TCPFastOpenPassiveFail"));
	ASSERT_EQ(0, lib_wait_queued(l, 0, 0));
	/* The first CPU's k were local, the rest stolen from their clones. */
	check_accepts(_metadata, &before, k, n - k);

	for (i = 0; i < n; i++)
		ASSERT_EQ(0, drop(self, c[i]));
	ASSERT_EQ(0, drop(self, l));
	free(c);
	free(ports);
	free(seen);
}

/*
 * tcp_syncookies=2: every connection completes through a cookie.  Clients
 * on every CPU, one acceptor on the first: each connection is accepted
 * exactly once (most of them stolen) and carries data both ways.
 */
TEST_F_TIMEOUT(percore_compat, syncookies, 120)
{
	int n = lib_scaled(50, 4), total = n * self->nuse, i, j, x, c;
	struct lopt o = { .backlog = total + 8, .pcl = -1, .nonblock = true };
	struct sockaddr_storage dst, peer;
	struct dialer d[USE_CPUS];
	struct pcl_counters before;
	long long sent, recvd;
	int l, *acc, *aport;
	socklen_t dlen;

	ASSERT_EQ(0, lib_sysctl_write(COOKIE_SYSCTL, 2));
	ASSERT_EQ(2, lib_sysctl_read(COOKIE_SYSCTL));
	dlen = lib_lo_addr(variant->cfamily, LIB_PORT, &dst);
	l = variant_listener(_metadata, self, variant, LIB_PORT, &o, 1);
	sent = lib_tcpext("SyncookiesSent");
	recvd = lib_tcpext("SyncookiesRecv");
	ASSERT_LE(0, sent);
	ASSERT_LE(0, recvd);
	read_counters(_metadata, &before);

	acc = calloc(total, sizeof(int));
	aport = calloc(total, sizeof(int));
	ASSERT_NE(NULL, acc);
	ASSERT_NE(NULL, aport);

	ASSERT_EQ(0, lib_pin(self->first));
	memset(d, 0, sizeof(d));
	ASSERT_EQ(0, dialers_start(d, self->nuse, self->cpus, &dst, dlen, total));
	for (i = 0; i < total; i++) {
		acc[i] = keep(self, accept_wait(l, LIB_DEADLINE_MS, &peer));
		ASSERT_LE(0, acc[i]) {
			TH_LOG("accept %d of %d: %s", i, total, strerror(errno));
		}
		aport[i] = lib_addr_port(&peer);
	}
	ASSERT_EQ(0, dialers_join(d, self->nuse, LIB_DEADLINE_MS));
	for (i = 0; i < self->nuse; i++) {
		ASSERT_EQ(0, d[i].err) {
			TH_LOG("client on cpu %d: %s", d[i].cpu, strerror(d[i].err));
		}
		ASSERT_EQ(d[i].n, d[i].made);
		for (j = 0; j < d[i].made; j++)
			ASSERT_LE(0, keep(self, d[i].fds[j]));
	}

	/* Pair each client with its accepted socket (by port): once each. */
	for (i = 0; i < self->nuse; i++) {
		for (j = 0; j < d[i].made; j++) {
			c = d[i].fds[j];
			x = find_port(aport, total, lib_sock_port(c));
			ASSERT_LE(0, x) {
				TH_LOG("client %d of cpu %d never accepted", j, d[i].cpu);
			}
			aport[x] = -1;
			echo(_metadata, acc[x], c);
			ASSERT_EQ(0, drop(self, acc[x]));
			ASSERT_EQ(0, drop(self, c));
		}
		free(d[i].fds);
		d[i].fds = NULL;
	}

	ASSERT_LE(sent + total, lib_tcpext("SyncookiesSent"));
	ASSERT_LE(recvd + total, lib_tcpext("SyncookiesRecv"));
	ASSERT_EQ(0, lib_tcpext("ListenOverflows"));
	ASSERT_EQ(0, lib_wait_queued(l, 0, 0));
	check_accepts(_metadata, &before, n, total - n);
	ASSERT_EQ(0, drop(self, l));
	free(acc);
	free(aport);
}

/*
 * m connections to dst, from every CPU in turn: all accepted from want
 * (with dst as their local address), none queued on other.
 */
static void route_batch(struct __test_metadata *_metadata,
			FIXTURE_DATA(percore_compat) *self,
			const struct sockaddr_storage *dst, socklen_t dlen,
			int m, int want, int other)
{
	struct sockaddr_storage wl, exp, peer, local;
	socklen_t len = sizeof(wl);
	int i, x, a, *c, *ports;
	char *seen;

	ASSERT_EQ(0, getsockname(want, (struct sockaddr *)&wl, &len));
	lib_addr_as(wl.ss_family, dst, &exp);
	c = calloc(m, sizeof(int));
	ports = calloc(m, sizeof(int));
	seen = calloc(m, 1);
	ASSERT_NE(NULL, c);
	ASSERT_NE(NULL, ports);
	ASSERT_NE(NULL, seen);

	for (i = 0; i < m; i++) {
		ASSERT_EQ(0, lib_pin(self->cpus[i % self->nuse]));
		c[i] = keep(self, dial(dst, dlen, false));
		ASSERT_LE(0, c[i]) TH_LOG("connect: %s", strerror(errno));
		ports[i] = lib_sock_port(c[i]);
		ASSERT_LT(0, ports[i]);
	}
	ASSERT_EQ(0, lib_pin(self->first));
	for (i = 0; i < m; i++) {
		a = keep(self, accept_wait(want, LIB_DEADLINE_MS, &peer));
		ASSERT_LE(0, a) {
			TH_LOG("accept %d of %d: %s (other listener has %d)", i, m,
			       strerror(errno), lib_wait_queued(other, 0, 0));
		}
		x = find_port(ports, m, lib_addr_port(&peer));
		ASSERT_LE(0, x);
		ASSERT_EQ(0, seen[x]);
		seen[x] = 1;
		len = sizeof(local);
		ASSERT_EQ(0, getsockname(a, (struct sockaddr *)&local, &len));
		ASSERT_TRUE(lib_addr_eq(&exp, &local));
		ASSERT_EQ(0, drop(self, a));
	}
	ASSERT_EQ(0, lib_wait_queued(want, 0, 0));
	ASSERT_EQ(0, lib_wait_queued(other, 0, 0));
	ASSERT_EQ(-1, accept4(other, NULL, NULL, SOCK_CLOEXEC));
	ASSERT_EQ(EAGAIN, errno);
	for (i = 0; i < m; i++)
		ASSERT_EQ(0, drop(self, c[i]));
	free(c);
	free(ports);
	free(seen);
}

/*
 * Two per-core listeners on one port, SO_REUSEPORT (separate groups: the
 * addresses differ), TCP_PERCORE_LISTEN=1: one on the loopback address of
 * the clients' family, one on the wildcard address.  The specific one
 * gets every connection to its address; another loopback address
 * (127.0.0.2, over IPv4; v4-mapped into [::] for the IPv6 variants) only
 * reaches the wildcard one.
 */
TEST_F_TIMEOUT(percore_compat, specific_vs_wildcard, 60)
{
	int m = lib_scaled(16, 4);
	struct lopt o = { .pcl = 1, .reuseport = true, .nonblock = true };
	struct sockaddr_storage sa, wa, dst;
	socklen_t slen, wlen, dlen;
	int ls, lw;

	if (m < self->nuse)
		m = self->nuse;
	o.backlog = m + 8;
	slen = addr_of(variant->cfamily, false, LIB_PORT, &sa);
	wlen = addr_of(variant->family, true, LIB_PORT, &wa);
	ls = listener_at(_metadata, self, &sa, slen, &o, 1);
	lw = listener_at(_metadata, self, &wa, wlen, &o, 1);

	dlen = lib_lo_addr(variant->cfamily, LIB_PORT, &dst);
	route_batch(_metadata, self, &dst, dlen, m, ls, lw);

	dlen = addr_v4(INADDR_LOOPBACK + 1, LIB_PORT, &dst);
	route_batch(_metadata, self, &dst, dlen, m, lw, ls);

	ASSERT_EQ(0, drop(self, ls));
	ASSERT_EQ(0, drop(self, lw));
}

/*
 * tcp_percore_listen=1 leaves a SO_REUSEPORT listener alone: each member
 * is a queue of its own already.  The sysctl takes only 0 and 1: writing
 * 2 (once "reuseport listeners too") fails with EINVAL and leaves the
 * value as it was.  The socket option still makes reuseport members
 * per-core on request, and two such members together accept every
 * connection exactly once.
 */
TEST_F_TIMEOUT(percore_compat, reuseport_left_alone_and_mode_2_refused, 60)
{
	int m = lib_scaled(64, 16), i, j, x, got = 0, cnt[2] = { 0, 0 };
	struct lopt o = { .backlog = 16, .pcl = -1, .reuseport = true,
			  .nonblock = true };
	struct sockaddr_storage dst, peer;
	struct pcl_counters before, after;
	int r0, r[2], c0, a, *c, *ports;
	socklen_t dlen;
	uint64_t end;
	char *seen;

	/* Mode 1: no clones for a reuseport listener. */
	r0 = variant_listener(_metadata, self, variant, LIB_PORT, &o, 0);
	read_counters(_metadata, &before);
	dlen = lib_lo_addr(variant->cfamily, LIB_PORT, &dst);
	c0 = keep(self, dial(&dst, dlen, false));
	ASSERT_LE(0, c0);
	a = keep(self, accept_wait(r0, LIB_DEADLINE_MS, NULL));
	ASSERT_LE(0, a);
	echo(_metadata, a, c0);
	/* Not a per-core accept: the counters do not move. */
	check_accepts(_metadata, &before, 0, 0);
	ASSERT_EQ(0, drop(self, a));
	ASSERT_EQ(0, drop(self, c0));

	/* Mode 2 is gone: refused under 1 and under 0, nothing changes. */
	for (i = 1; i >= 0; i--) {
		ASSERT_EQ(0, pcl_set_mode(i));
		errno = 0;
		ASSERT_EQ(-1, pcl_set_mode(2)) {
			TH_LOG("writing 2 to %s (mode %d) did not fail", PCL_SYSCTL, i);
		}
		ASSERT_EQ(EINVAL, errno) {
			TH_LOG("writing 2 to %s: %s, not EINVAL", PCL_SYSCTL,
			       strerror(errno));
		}
		ASSERT_EQ(i, lib_sysctl_read(PCL_SYSCTL)) {
			TH_LOG("a refused 2 changed mode %d", i);
		}
	}
	ASSERT_EQ(0, pcl_set_mode(1));
	ASSERT_EQ(0, pcl_get(r0));

	/* Per-core on request: both members of a reuseport group. */
	if (m < self->nuse)
		m = self->nuse;
	o.backlog = m;
	o.pcl = 1;
	r[0] = variant_listener(_metadata, self, variant, LIB_PORT + 1, &o, 1);
	r[1] = variant_listener(_metadata, self, variant, LIB_PORT + 1, &o, 1);
	read_counters(_metadata, &before);

	c = calloc(m, sizeof(int));
	ports = calloc(m, sizeof(int));
	seen = calloc(m, 1);
	ASSERT_NE(NULL, c);
	ASSERT_NE(NULL, ports);
	ASSERT_NE(NULL, seen);
	dlen = lib_lo_addr(variant->cfamily, LIB_PORT + 1, &dst);
	for (i = 0; i < m; i++) {
		ASSERT_EQ(0, lib_pin(self->cpus[i % self->nuse]));
		c[i] = keep(self, dial(&dst, dlen, false));
		ASSERT_LE(0, c[i]) TH_LOG("connect: %s", strerror(errno));
		ports[i] = lib_sock_port(c[i]);
		ASSERT_LT(0, ports[i]);
	}
	ASSERT_EQ(0, lib_pin(self->first));

	end = lib_now_ms() + LIB_DEADLINE_MS;
	while (got < m) {
		struct pollfd p[2] = {
			{ .fd = r[0], .events = POLLIN },
			{ .fd = r[1], .events = POLLIN },
		};
		int left = (int)(end - lib_now_ms());

		ASSERT_LT(0, left) {
			TH_LOG("accepted %d of %d (%d + %d)", got, m, cnt[0], cnt[1]);
		}
		if (poll(p, 2, left) < 0) {
			ASSERT_EQ(EINTR, errno);
			continue;
		}
		for (j = 0; j < 2; j++) {
			for (;;) {
				a = accept_wait(r[j], 0, &peer);
				if (a < 0) {
					ASSERT_EQ(ETIMEDOUT, errno);
					break;
				}
				x = find_port(ports, m, lib_addr_port(&peer));
				if (x < 0 || seen[x])
					close(a);
				ASSERT_LE(0, x);
				ASSERT_EQ(0, seen[x]);
				seen[x] = 1;
				cnt[j]++;
				got++;
				ASSERT_EQ(0, close(a));
			}
		}
	}
	TH_LOG("reuseport members accepted %d and %d", cnt[0], cnt[1]);
	ASSERT_EQ(m, cnt[0] + cnt[1]);
	ASSERT_EQ(0, lib_wait_queued(r[0], 0, 0));
	ASSERT_EQ(0, lib_wait_queued(r[1], 0, 0));
	read_counters(_metadata, &after);
	ASSERT_EQ(m, (after.local_accepts - before.local_accepts) +
		     (after.steals - before.steals));

	for (i = 0; i < m; i++)
		ASSERT_EQ(0, drop(self, c[i]));
	ASSERT_EQ(0, drop(self, r[0]));
	ASSERT_EQ(0, drop(self, r[1]));
	ASSERT_EQ(0, drop(self, r0));
	free(c);
	free(ports);
	free(seen);
}

/*
 * The parent's half of fork_shared and scm_rights: connect k clients from
 * the first CPU, read the byte the child (accepting on the last CPU) sends
 * on each, then collect the child's report through rfd (read with
 * readfn) and its exit status, and check the accept counters.
 */
static void parent_dials_child_accepts(struct __test_metadata *_metadata,
				       FIXTURE_DATA(percore_compat) *self,
				       const struct sockaddr_storage *dst,
				       socklen_t dlen, int k, int *c, char want,
				       int rfd,
				       int (*readfn)(int, void *, size_t, int),
				       int want_exit,
				       const struct pcl_counters *before)
{
	struct child_result r;
	int i, status;
	char b;

	ASSERT_EQ(0, lib_pin(self->first));
	for (i = 0; i < k; i++) {
		c[i] = keep(self, dial(dst, dlen, false));
		ASSERT_LE(0, c[i]) TH_LOG("connect: %s", strerror(errno));
	}
	for (i = 0; i < k; i++) {
		ASSERT_EQ(1, recv_wait(c[i], &b, 1, LIB_DEADLINE_MS)) {
			TH_LOG("connection %d: nothing from the child (%s)", i,
			       strerror(errno));
		}
		ASSERT_EQ(want, b);
	}
	memset(&r, 0, sizeof(r));
	ASSERT_EQ(0, readfn(rfd, &r, sizeof(r), LIB_DEADLINE_MS));
	ASSERT_EQ(0, wait_child(self->child, LIB_DEADLINE_MS, &status));
	self->child = -1;
	ASSERT_EQ(0, r.err) {
		TH_LOG("child, line %d: %s", r.line, strerror(r.err));
	}
	ASSERT_EQ(k, r.accepted);
	ASSERT_EQ(1, r.pcl);
	ASSERT_EQ(self->last, r.cpu);
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(want_exit, WEXITSTATUS(status));
	if (self->first == self->last)
		check_accepts(_metadata, before, k, 0);
	else
		check_accepts(_metadata, before, 0, k);
}

/*
 * A listener shared by fork(): the child, on the last CPU, accepts what
 * the parent connects from the first CPU (stealing it from clone first).
 */
TEST_F_TIMEOUT(percore_compat, fork_shared, 60)
{
	int k = lib_scaled(32, 4), p[2], i;
	struct lopt o = { .pcl = -1 };
	struct sockaddr_storage dst;
	struct pcl_counters before;
	struct child_result r;
	socklen_t dlen;
	int l, *c;

	if (k > 200)
		k = 200;	/* it is also the exit status */
	o.backlog = k + 8;
	dlen = lib_lo_addr(variant->cfamily, LIB_PORT, &dst);
	l = variant_listener(_metadata, self, variant, LIB_PORT, &o, 1);
	ASSERT_EQ(0, pipe2(p, O_CLOEXEC));
	keep(self, p[0]);
	keep(self, p[1]);
	read_counters(_metadata, &before);
	c = calloc(k, sizeof(int));
	ASSERT_NE(NULL, c);

	self->child = fork();
	ASSERT_LE(0, self->child);
	if (!self->child) {
		memset(&r, 0, sizeof(r));
		close(p[0]);
		child_accept(l, self->last, k, 'x', &r);
		if (write(p[1], &r, sizeof(r)) != sizeof(r))
			_exit(255);
		_exit(r.accepted);
	}
	ASSERT_EQ(0, drop(self, p[1]));

	parent_dials_child_accepts(_metadata, self, &dst, dlen, k, c, 'x', p[0],
				   read_pipe, k, &before);
	ASSERT_EQ(0, lib_wait_queued(l, 0, 0));

	for (i = 0; i < k; i++)
		ASSERT_EQ(0, drop(self, c[i]));
	ASSERT_EQ(0, drop(self, p[0]));
	ASSERT_EQ(0, drop(self, l));
	free(c);
}

/*
 * A listener handed to another process with SCM_RIGHTS, the sender
 * closing its own copy at once: the receiver accepts everything; when it
 * closes the listener, nobody listens any more.
 */
TEST_F_TIMEOUT(percore_compat, scm_rights, 60)
{
	int k = lib_scaled(32, 4), sp[2], i, fd;
	struct lopt o = { .pcl = -1 };
	struct sockaddr_storage dst;
	struct pcl_counters before;
	struct child_result r;
	socklen_t dlen;
	int l, *c;
	char b;

	o.backlog = k + 8;
	dlen = lib_lo_addr(variant->cfamily, LIB_PORT, &dst);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp));
	keep(self, sp[0]);
	keep(self, sp[1]);
	read_counters(_metadata, &before);
	c = calloc(k, sizeof(int));
	ASSERT_NE(NULL, c);

	/* Forked before the listener exists: it only gets it through sp. */
	self->child = fork();
	ASSERT_LE(0, self->child);
	if (!self->child) {
		memset(&r, 0, sizeof(r));
		close(sp[0]);
		fd = -1;
		if (recv_fds(sp[1], &b, 1, &fd, 1, 30000) != 1) {
			CHILD_FAIL(&r);
		} else {
			child_accept(fd, self->last, k, 'y', &r);
			/* The last reference: the listener closes here. */
			if (close(fd) && !r.err)
				CHILD_FAIL(&r);
		}
		if (write(sp[1], &r, sizeof(r)) != sizeof(r))
			_exit(2);
		_exit(0);
	}
	ASSERT_EQ(0, drop(self, sp[1]));

	l = variant_listener(_metadata, self, variant, LIB_PORT, &o, 1);
	ASSERT_EQ(0, send_fds(sp[0], "L", 1, &l, 1));
	/* Ours goes; the one in flight keeps the listener alive. */
	ASSERT_EQ(0, drop(self, l));

	parent_dials_child_accepts(_metadata, self, &dst, dlen, k, c, 'y', sp[0],
				   read_full, 0, &before);

	/* The child closed the only copy left. */
	fd = dial(&dst, dlen, false);
	if (fd >= 0)
		close(fd);
	ASSERT_EQ(-1, fd);
	ASSERT_EQ(ECONNREFUSED, errno);

	for (i = 0; i < k; i++)
		ASSERT_EQ(0, drop(self, c[i]));
	ASSERT_EQ(0, drop(self, sp[0]));
	free(c);
}

/*
 * Helper process of netns_teardown: in a netns of its own, fill the clones
 * of a per-core listener from every CPU, pass one client socket per CPU to
 * the parent, wait for its word and exit without accepting anything.
 */
static void netns_child(const FIXTURE_VARIANT(percore_compat) *variant,
			FIXTURE_DATA(percore_compat) *self, int n, int sock)
{
	struct lopt o = { .backlog = n, .pcl = -1 };
	struct sockaddr_storage ss, dst;
	struct child_result r;
	struct dialer d[USE_CPUS];
	int fds[USE_CPUS], nfds = 0, l, i;
	socklen_t len, dlen;

	memset(&r, 0, sizeof(r));
	memset(d, 0, sizeof(d));
	if (lib_netns_enter() || pcl_set_mode(1)) {
		CHILD_FAIL(&r);
		goto out;
	}
	len = addr_of(variant->family, variant->family != variant->cfamily,
		      LIB_PORT, &ss);
	l = open_listener(&ss, len, &o, NULL);
	if (l < 0) {
		CHILD_FAIL(&r);
		goto out;
	}
	r.pcl = pcl_get(l);
	dlen = lib_lo_addr(variant->cfamily, LIB_PORT, &dst);
	if (dialers_start(d, self->nuse, self->cpus, &dst, dlen, n) ||
	    dialers_join(d, self->nuse, 60000)) {
		CHILD_FAIL(&r);
		goto out;
	}
	for (i = 0; i < self->nuse; i++) {
		r.made += d[i].made;
		if (d[i].err && !r.err) {
			r.err = d[i].err;
			r.line = __LINE__;
		}
		if (d[i].made)
			fds[nfds++] = d[i].fds[d[i].made - 1];
	}
	r.queued = lib_wait_queued(l, r.made, LIB_DEADLINE_MS);
	r.nfds = nfds;
out:
	if (send_fds(sock, &r, sizeof(r), fds, r.err ? 0 : nfds))
		_exit(2);
	/* Everything stays open and unaccepted until the parent says go. */
	lib_poll1(sock, POLLIN, 60000);
	_exit(0);
}

/*
 * A process alone in its netns exits with every clone of its per-core
 * listener holding connections: at exit the listener closes and every
 * queued connection is reset (seen on client sockets passed to us); when
 * we close those, the last users of the netns, it is torn down.
 */
TEST_F_TIMEOUT(percore_compat, netns_teardown, 120)
{
	int n = lib_scaled(200, 8), sp[2], fds[USE_CPUS], nfds, i, status;
	struct child_result r;

	if (n < self->nuse)
		n = self->nuse;
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp));
	keep(self, sp[0]);
	keep(self, sp[1]);

	self->child = fork();
	ASSERT_LE(0, self->child);
	if (!self->child) {
		close(sp[0]);
		netns_child(variant, self, n, sp[1]);
		_exit(3);
	}
	ASSERT_EQ(0, drop(self, sp[1]));

	memset(&r, 0, sizeof(r));
	nfds = recv_fds(sp[0], &r, sizeof(r), fds, USE_CPUS, 90000);
	ASSERT_LE(0, nfds) TH_LOG("from the child: %s", strerror(errno));
	for (i = 0; i < nfds; i++)
		keep(self, fds[i]);
	ASSERT_EQ(0, r.err) {
		TH_LOG("child, line %d: %s", r.line, strerror(r.err));
	}
	ASSERT_EQ(1, r.pcl);
	ASSERT_EQ(n, r.made);
	ASSERT_EQ(n, r.queued);
	ASSERT_EQ(self->nuse, nfds);
	ASSERT_EQ(r.nfds, nfds);
	/* Queued, not reset yet: established, nothing to read. */
	for (i = 0; i < nfds; i++) {
		ASSERT_EQ(TCP_ESTABLISHED, lib_tcp_state(fds[i]));
		ASSERT_EQ(0, lib_poll1(fds[i], POLLIN, 0));
	}

	ASSERT_EQ(1, send(sp[0], "g", 1, MSG_NOSIGNAL));
	ASSERT_EQ(0, wait_child(self->child, LIB_DEADLINE_MS, &status));
	self->child = -1;
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));

	for (i = 0; i < nfds; i++)
		expect_reset(_metadata, fds[i]);
	/* The netns's last sockets: it goes now. */
	for (i = 0; i < nfds; i++)
		ASSERT_EQ(0, drop(self, fds[i]));
	ASSERT_EQ(0, drop(self, sp[0]));
}

static volatile sig_atomic_t sigio_count;

static void on_sigio(int sig)
{
	(void)sig;
	sigio_count++;
}

/* O_ASYNC + F_SETOWN: a connection from any CPU raises SIGIO. */
TEST_F(percore_compat, sigio)
{
	struct lopt o = { .backlog = 16, .pcl = -1, .nonblock = true };
	struct sigaction sa;
	struct sockaddr_storage dst;
	int l, c, a, i, fl;
	socklen_t dlen;
	uint64_t end;

	dlen = lib_lo_addr(variant->cfamily, LIB_PORT, &dst);
	l = variant_listener(_metadata, self, variant, LIB_PORT, &o, 1);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigio;
	sa.sa_flags = SA_RESTART;
	ASSERT_EQ(0, sigemptyset(&sa.sa_mask));
	ASSERT_EQ(0, sigaction(SIGIO, &sa, NULL));
	ASSERT_EQ(0, fcntl(l, F_SETOWN, getpid()));
	fl = fcntl(l, F_GETFL);
	ASSERT_LE(0, fl);
	ASSERT_EQ(0, fcntl(l, F_SETFL, fl | O_ASYNC));

	/* Nothing happens, no signal. */
	sigio_count = 0;
	end = lib_now_ms() + 100;
	while (lib_now_ms() < end)
		lib_tick();
	ASSERT_EQ(0, sigio_count);

	for (i = 0; i < self->nuse; i++) {
		ASSERT_EQ(0, lib_pin(self->cpus[i]));
		sigio_count = 0;
		c = keep(self, dial(&dst, dlen, true));
		ASSERT_LE(0, c) TH_LOG("connect: %s", strerror(errno));
		ASSERT_EQ(POLLOUT, lib_wait_revents(c, POLLOUT, POLLOUT,
						    LIB_DEADLINE_MS));
		end = lib_now_ms() + LIB_DEADLINE_MS;
		while (!sigio_count && lib_now_ms() < end)
			lib_tick();
		ASSERT_LT(0, sigio_count) {
			TH_LOG("no SIGIO for a connection from cpu %d",
			       self->cpus[i]);
		}
		a = keep(self, accept_wait(l, LIB_DEADLINE_MS, NULL));
		ASSERT_LE(0, a) TH_LOG("accept: %s", strerror(errno));
		ASSERT_EQ(0, drop(self, a));
		ASSERT_EQ(0, drop(self, c));
	}
	ASSERT_EQ(0, drop(self, l));
}

/*
 * While a per-core listener with connections in several clones exists,
 * /proc/net/tcp{,6} has one LISTEN row for its port, the queue summed over
 * the clones.  Once it is closed (its queued connections reset), a new
 * socket binds the port without SO_REUSEADDR and listens: no clone, and
 * nothing of the old listener, holds it.
 */
TEST_F(percore_compat, bind_release)
{
	int k = lib_scaled(4, 2), n = k * self->nuse, i, j, l, fd, c2, a, *c;
	int other = variant->family == AF_INET6 ? AF_INET : AF_INET6;
	bool any = variant->family != variant->cfamily;
	struct lopt o = { .backlog = n + 8, .pcl = -1, .nonblock = true };
	struct sockaddr_storage ss, dst;
	struct lib_listen_row row;
	socklen_t len, dlen;
	int zero = 0;

	dlen = lib_lo_addr(variant->cfamily, LIB_PORT, &dst);
	l = variant_listener(_metadata, self, variant, LIB_PORT, &o, 1);
	c = calloc(n, sizeof(int));
	ASSERT_NE(NULL, c);
	for (i = 0; i < self->nuse; i++) {
		ASSERT_EQ(0, lib_pin(self->cpus[i]));
		for (j = 0; j < k; j++) {
			c[i * k + j] = keep(self, dial(&dst, dlen, false));
			ASSERT_LE(0, c[i * k + j]) TH_LOG("connect: %s", strerror(errno));
		}
	}
	ASSERT_EQ(0, lib_pin(self->first));
	ASSERT_EQ(n, lib_wait_queued(l, n, LIB_DEADLINE_MS));

	ASSERT_EQ(0, lib_proc_listen_row(variant->family, LIB_PORT, &row));
	ASSERT_EQ(1, row.rows);
	ASSERT_EQ(n, row.rx_queue);
	if (!lib_proc_listen_row(other, LIB_PORT, &row))
		ASSERT_EQ(0, row.rows);

	ASSERT_EQ(0, drop(self, l));
	for (i = 0; i < n; i++)
		expect_reset(_metadata, c[i]);
	ASSERT_EQ(0, lib_proc_listen_row(variant->family, LIB_PORT, &row));
	ASSERT_EQ(0, row.rows);

	/* No SO_REUSEADDR: nothing may hold the port any more. */
	fd = keep(self, socket(variant->family,
			       SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
	ASSERT_LE(0, fd);
	if (any)
		ASSERT_EQ(0, setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY,
					&zero, sizeof(zero)));
	len = addr_of(variant->family, any, LIB_PORT, &ss);
	ASSERT_EQ(0, bind(fd, (struct sockaddr *)&ss, len)) {
		TH_LOG("bind after close: %s", strerror(errno));
	}
	ASSERT_EQ(0, listen(fd, 8));
	ASSERT_EQ(1, pcl_get(fd));
	ASSERT_EQ(0, lib_proc_listen_row(variant->family, LIB_PORT, &row));
	ASSERT_EQ(1, row.rows);

	c2 = keep(self, dial(&dst, dlen, false));
	ASSERT_LE(0, c2);
	a = keep(self, accept_wait(fd, LIB_DEADLINE_MS, NULL));
	ASSERT_LE(0, a) TH_LOG("accept: %s", strerror(errno));
	echo(_metadata, a, c2);

	ASSERT_EQ(0, drop(self, a));
	ASSERT_EQ(0, drop(self, c2));
	ASSERT_EQ(0, drop(self, fd));
	for (i = 0; i < n; i++)
		ASSERT_EQ(0, drop(self, c[i]));
	free(c);
}

/*
 * CPU hotplug.  The teardown runs in the parent process, so that the CPU
 * comes back online whatever became of the test process.
 */
FIXTURE(percore_hotplug) {
	int cpus[PCL_MAX_CPUS];
	int ncpus;
	int cpu;		/* the one taken offline: the last */
	int offline;		/* it may be offline now */
	char online[64];	/* its sysfs "online" file */
};

FIXTURE_SETUP(percore_hotplug)
{
	self->offline = 0;
	self->ncpus = lib_cpus(self->cpus, PCL_MAX_CPUS);
	ASSERT_LT(0, self->ncpus);
	if (lib_netns_enter()) {
		if (errno == EPERM)
			SKIP(return, "needs CAP_SYS_ADMIN for a netns");
		ASSERT_EQ(0, -errno);
	}
	ASSERT_EQ(0, lib_raise_nofile(NOFILE));
	ASSERT_EQ(0, pcl_set_mode(1)) {
		TH_LOG("%s: %s", PCL_SYSCTL, strerror(errno));
	}
	if (self->ncpus < 2)
		SKIP(return, "needs two CPUs");
	self->cpu = self->cpus[self->ncpus - 1];
	snprintf(self->online, sizeof(self->online),
		 "/sys/devices/system/cpu/cpu%d/online", self->cpu);
	if (access(self->online, W_OK))
		SKIP(return, "%s: %s", self->online, strerror(errno));
	if (lib_sysctl_read(self->online) != 1)
		SKIP(return, "cpu%d is not online", self->cpu);
}

FIXTURE_TEARDOWN_PARENT(percore_hotplug)
{
	if (self->offline && lib_sysctl_write(self->online, 1))
		TH_LOG("could not bring cpu%d back online: %s", self->cpu,
		       strerror(errno));
}

/*
 * Connections queued in the clone of a CPU that then goes offline are all
 * accepted from another CPU, by stealing, and work.
 */
TEST_F_TIMEOUT(percore_hotplug, cpu_offline, 120)
{
	int k = lib_scaled(16, 4), i, x, l, a, e, before_opt = -2, *c, *ports;
	struct lopt o = { .pcl = -1, .nonblock = true };
	struct sockaddr_storage ss, peer;
	struct pcl_counters before;
	socklen_t len;
	char *seen;

	o.backlog = k + 8;
	len = addr_of(AF_INET, false, LIB_PORT, &ss);
	l = open_listener(&ss, len, &o, &before_opt);
	ASSERT_LE(0, l) TH_LOG("listener: %s", strerror(errno));
	ASSERT_EQ(-1, before_opt);
	ASSERT_EQ(1, pcl_get(l));
	c = calloc(k, sizeof(int));
	ports = calloc(k, sizeof(int));
	seen = calloc(k, 1);
	ASSERT_NE(NULL, c);
	ASSERT_NE(NULL, ports);
	ASSERT_NE(NULL, seen);

	ASSERT_EQ(0, lib_pin(self->cpu));
	for (i = 0; i < k; i++) {
		c[i] = dial(&ss, len, false);
		ASSERT_LE(0, c[i]) TH_LOG("connect: %s", strerror(errno));
		ports[i] = lib_sock_port(c[i]);
		ASSERT_LT(0, ports[i]);
	}
	ASSERT_EQ(0, lib_pin(self->cpus[0]));
	ASSERT_EQ(k, lib_wait_queued(l, k, LIB_DEADLINE_MS));
	read_counters(_metadata, &before);

	self->offline = 1;
	if (lib_sysctl_write(self->online, 0)) {
		e = errno;
		if (lib_sysctl_read(self->online) == 1) {
			self->offline = 0;
			SKIP(return, "cannot take cpu%d offline: %s", self->cpu,
			     strerror(e));
		}
		ASSERT_EQ(0, -e);
	}
	ASSERT_EQ(0, lib_sysctl_read(self->online));

	/* Still queued, still readable. */
	ASSERT_EQ(k, lib_wait_queued(l, k, 0));
	ASSERT_EQ(POLLIN, lib_poll1(l, POLLIN, 0));
	for (i = 0; i < k; i++) {
		a = accept_wait(l, LIB_DEADLINE_MS, &peer);
		ASSERT_LE(0, a) {
			TH_LOG("accept %d of %d: %s", i, k, strerror(errno));
		}
		x = find_port(ports, k, lib_addr_port(&peer));
		ASSERT_LE(0, x);
		ASSERT_EQ(0, seen[x]);
		seen[x] = 1;
		echo(_metadata, a, c[x]);
		ASSERT_EQ(0, close(a));
	}
	ASSERT_EQ(0, lib_wait_queued(l, 0, 0));
	check_accepts(_metadata, &before, 0, k);

	ASSERT_EQ(0, lib_sysctl_write(self->online, 1)) {
		TH_LOG("cpu%d back online: %s", self->cpu, strerror(errno));
	}
	self->offline = 0;
	ASSERT_EQ(1, lib_sysctl_read(self->online));

	for (i = 0; i < k; i++)
		ASSERT_EQ(0, close(c[i]));
	ASSERT_EQ(0, close(l));
	free(c);
	free(ports);
	free(seen);
}

TEST_HARNESS_MAIN
