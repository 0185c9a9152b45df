// SPDX-License-Identifier: GPL-2.0
/*
 * percore_races: races and fairness of per-core listeners (issue 7).
 *
 *  - close_races_connects, shutdown_races_connects (defect 1): clients on
 *    every CPU connect while the listener is closed (or shut down, then
 *    closed) after a random delay, round after round.  Every client must
 *    end reset, refused or at EOF (a client the stock kernel leaves
 *    half-open, when the listener closes between its SYN and its ACK, is
 *    reset by its first data); none may stay connected to a child nobody
 *    owns, and TCP inuse must come back to where it started.
 *  - accept_before_first_listen (defect 3): a thread loops a blocking
 *    accept() on a bound socket with TCP_PERCORE_LISTEN=1 (EINVAL until it
 *    listens) while another calls listen(); it must then return the first
 *    connection.
 *  - failed_first_listen_races_accept_and_poll: listen() of a per-core
 *    socket fails (EADDRINUSE) while other threads sit in a blocking
 *    accept(), add it to epoll, poll() it and read TCP_INFO: between
 *    TCP_LISTEN being stored and get_port() failing they reach the
 *    clones without the socket lock.  The clones must outlive them (a
 *    KASAN or DEBUG_LIST report fails the run), the blocked accept() must
 *    return EINVAL, and a later listen() must work.
 *  - fastopen_child_keeps_sockmap_verdict (defect 4), with
 *    plain_child_keeps_sockmap_verdict as its control: a sockops program
 *    puts each passively established child in a sockmap whose sk_skb
 *    verdict program counts what it sees; the child's data must pass
 *    through that program.  A Fast Open child is queued (on a clone)
 *    after the sockops callback ran; a plain child before it.  Skipped
 *    where the kernel has no sockmap or sockops.
 *  - busy_clone_does_not_starve_the_others (defect 5): one acceptor on
 *    CPU 0 accepting one connection per poll() while CPU 0 keeps its own
 *    clone non-empty must still take a connection waiting in CPU 1's clone
 *    within a bound.
 *  - migrate_req_between_percore_members: net.ipv4.tcp_migrate_req=1 and
 *    SO_REUSEPORT: closing a member moves its pending connections, from
 *    every clone, to the other member (per-core or not), none reset.
 *
 * The races are widened, where the kernel has them (a test kernel built
 * with CONFIG_TCP_PERCORE_LISTEN_DEBUG), by the delay knobs in
 * /sys/kernel/debug/tcp_percore_listen/; without them the tests run the
 * same rounds, with narrower windows.  The knobs are set back to 0 by the
 * test's parent process, whatever became of the test.
 *
 * On loopback the receive softirq runs on the sending CPU, so a client
 * pinned to CPU k has its connections queued in clone k.  Variants: ipv4,
 * ipv6.  Every test runs in a netns of its own.  MP_TEST_SCALE scales the
 * number of rounds.
 */
#include <linux/bpf.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "kselftest_harness.h"
#include "percore_lib.h"

#ifndef TCPI_OPT_SYN_DATA
#define TCPI_OPT_SYN_DATA	32
#endif

#define MAXC		PCL_MAX_CPUS
#define DEBUG_DIR	"/sys/kernel/debug/tcp_percore_listen"
#define KNOB_QUEUE_ADD	"queue_add_delay_us"
#define KNOB_ACCEPT	"accept_delay_us"
#define KNOB_LISTEN	"listen_delay_us"
#define TFO_SYSCTL	"/proc/sys/net/ipv4/tcp_fastopen"
#define MIGRATE_SYSCTL	"/proc/sys/net/ipv4/tcp_migrate_req"
#define SOMAXCONN_SYSCTL "/proc/sys/net/core/somaxconn"

FIXTURE(races) {
	int ncpu;
	int cpus[MAXC];
	long base;		/* TCP inuse of the netns before the test */
	char cg[320];		/* cgroup made by the test; "" if none */
	char cgmnt[256];	/* cgroup2 mounted by the test; "" if none */
};

FIXTURE_VARIANT(races) {
	int family;
};

FIXTURE_VARIANT_ADD(races, ipv4) {
	.family = AF_INET,
};

FIXTURE_VARIANT_ADD(races, ipv6) {
	.family = AF_INET6,
};

/*
 * Set a debug knob: 1 when set, 0 when this kernel has none (built without
 * CONFIG_TCP_PERCORE_LISTEN_DEBUG, or debugfs not mounted), -1 on error.
 */
static int knob_set(const char *name, long us)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/%s", DEBUG_DIR, name);
	if (access(path, F_OK))
		return errno == ENOENT ? 0 : -1;
	if (lib_sysctl_write(path, us))
		return -1;
	if (lib_sysctl_read(path) != us) {
		errno = EIO;
		return -1;
	}
	return 1;
}

/*
 * In a test: set a knob, fail the test on an error, log when this kernel
 * has none (the test then runs with the narrower window).  Yields
 * knob_set()'s value.
 */
#define KNOB_ON(name, us) ({						\
	int __k = knob_set(name, us);					\
	ASSERT_LE(0, __k) TH_LOG("%s/%s: %s", DEBUG_DIR, name,		\
				 strerror(errno));			\
	if (!__k)							\
		TH_LOG("no %s/%s: running without the widened window",	\
		       DEBUG_DIR, name);				\
	__k;								\
})

FIXTURE_SETUP(races)
{
	self->cg[0] = self->cgmnt[0] = 0;
	self->ncpu = lib_cpus(self->cpus, MAXC);
	ASSERT_LT(0, self->ncpu);
	if (lib_netns_enter()) {
		if (errno == EPERM)
			SKIP(return, "needs CAP_SYS_ADMIN for a netns");
		ASSERT_EQ(0, -errno);
	}
	/* The feature must be there: these are its tests. */
	ASSERT_EQ(0, access(PCL_SYSCTL, F_OK)) {
		TH_LOG("%s: %s", PCL_SYSCTL, strerror(errno));
	}
	ASSERT_EQ(0, lib_sysctl_write(SOMAXCONN_SYSCTL, 65535));
	ASSERT_EQ(0, lib_raise_nofile(4096));
	self->base = lib_tcp_inuse();
	ASSERT_LE(0, self->base);
}

/* In the parent: the knobs are global, and it outlives the test. */
FIXTURE_TEARDOWN_PARENT(races)
{
	int i;

	if (knob_set(KNOB_QUEUE_ADD, 0) < 0 || knob_set(KNOB_ACCEPT, 0) < 0 ||
	    knob_set(KNOB_LISTEN, 0) < 0)
		TH_LOG("could not reset the debug knobs: %s", strerror(errno));
	if (self->cg[0]) {
		/* The test process is gone; its cgroup empties at its exit. */
		for (i = 0; i < 100 && rmdir(self->cg) && errno == EBUSY; i++)
			lib_tick();
	}
	if (self->cgmnt[0]) {
		umount2(self->cgmnt, MNT_DETACH);
		rmdir(self->cgmnt);
	}
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sleep_us(long us)
{
	struct timespec ts = { .tv_sec = us / 1000000,
			       .tv_nsec = (us % 1000000) * 1000 };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* pthread_join() with a deadline: 0, or ETIMEDOUT. */
static int join_deadline(pthread_t th, int timeout_ms)
{
	struct timespec ts;

	lib_deadline_ts(&ts, timeout_ms);
	return pthread_timedjoin_np(th, NULL, &ts);
}

/* Wait until TCP inuse of this netns is back to base (frees are deferred). */
static long wait_inuse(long base)
{
	uint64_t end = lib_now_ms() + LIB_DEADLINE_MS;
	long us = 0, n;

	do {
		n = lib_tcp_inuse();
		if (n == base)
			break;
		lib_backoff(&us);
	} while (lib_now_ms() < end);
	return n;
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

/*
 * accept4() on a non-blocking listener, polling for up to timeout_ms;
 * -1 with errno ETIMEDOUT when nothing came.
 */
static int accept_wait(int l, int timeout_ms)
{
	uint64_t end = lib_now_ms() + timeout_ms;
	int fd, left;

	for (;;) {
		fd = accept4(l, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0 || (errno != EAGAIN && errno != EINTR))
			return fd;
		left = (int)(end - lib_now_ms());
		if (left <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		lib_poll1(l, POLLIN, left);
	}
}

/*
 * Read exactly len bytes within timeout_ms, riding out EAGAIN (which a
 * socket in a sockmap returns while its data sits where its verdict
 * program never looks).  Returns how many came; errno says why not all.
 */
static int read_all(int fd, char *buf, int len, int timeout_ms)
{
	uint64_t end = lib_now_ms() + timeout_ms;
	int got = 0, left;
	ssize_t n;

	errno = 0;
	while (got < len) {
		left = (int)(end - lib_now_ms());
		if (left <= 0) {
			if (!errno)
				errno = ETIMEDOUT;
			break;
		}
		if (lib_poll1(fd, POLLIN, left) <= 0)
			continue;
		n = recv(fd, buf + got, len - got, MSG_DONTWAIT);
		if (n > 0) {
			got += n;
			continue;
		}
		if (!n) {
			errno = EPIPE;
			break;
		}
		if (errno != EAGAIN && errno != EINTR)
			break;
		lib_tick();
	}
	return got;
}

/* ------------------------------------------------------------------ */
/* Defect 1: close()/shutdown() racing the softirq that queues a child. */

#define RACE_PER	2	/* connects per racing CPU per round */
#define CALIBRATE	5	/* first rounds: close after the connects */

struct race_ctl {
	pthread_barrier_t go, done;
	int family;
	int closer_cpu;		/* this round: that CPU's racer sits out */
	bool stop;
};

struct racer {
	pthread_t th;
	struct race_ctl *ctl;
	int cpu;
	int fds[RACE_PER];
	int nfds;
	int refused;		/* connect() itself said so */
	int err;
	long us;		/* how long its first connect took, this round */
};

static void *racer_fn(void *arg)
{
	struct racer *r = arg;
	struct race_ctl *ctl = r->ctl;
	struct sockaddr_storage ss;
	socklen_t len = lib_lo_addr(ctl->family, LIB_PORT, &ss);
	uint64_t t0;
	int i, fd;

	if (lib_pin(r->cpu))
		r->err = errno;
	for (;;) {
		pthread_barrier_wait(&ctl->go);
		if (ctl->stop)
			break;
		r->nfds = 0;
		r->refused = 0;
		r->us = 0;
		if (!r->err && r->cpu != ctl->closer_cpu) {
			t0 = now_us();
			for (i = 0; i < RACE_PER; i++) {
				if (i == 1)
					r->us = (long)(now_us() - t0);
				fd = socket(ctl->family, SOCK_STREAM | SOCK_CLOEXEC |
						       SOCK_NONBLOCK, 0);
				if (fd < 0) {
					r->err = errno;
					break;
				}
				/* On loopback the handshake, and the child's
				 * queueing on this CPU's clone, run in here.
				 */
				if (connect(fd, (struct sockaddr *)&ss, len) &&
				    errno != EINPROGRESS) {
					if (errno != ECONNREFUSED &&
					    errno != ECONNRESET) {
						r->err = errno;
						close(fd);
						break;
					}
					r->refused++;
					close(fd);
					continue;
				}
				r->fds[r->nfds++] = fd;
			}
		}
		pthread_barrier_wait(&ctl->done);
	}
	return NULL;
}

enum outcome { OUT_RESET, OUT_REFUSED, OUT_EOF, OUT_PROBED, OUT_STUCK, OUT_ODD };

/*
 * What became of a client once its listener was closed.  Reset (maybe
 * after a FIN), refused or EOF are all fine.  A client still connected, without error or EOF,
 * gets one byte sent: a stock kernel can leave a client believing it is
 * connected when the listener closes between its SYN and its ACK (the
 * server drops the ACK, the request later dies silently), and that
 * client's data draws a RST (OUT_PROBED, fine too).  A child that was
 * queued on a clone after the close, and that nobody will ever accept or
 * reset, takes the byte instead: the client is still connected at the
 * deadline (OUT_STUCK).  OUT_ODD: any other error (*err).
 */
static enum outcome client_outcome(int fd, uint64_t deadline_ms, int *err)
{
	bool probed = false;
	int r, e, left;
	socklen_t len;
	ssize_t n;
	char b;

	*err = 0;
	for (;;) {
		left = (int)(deadline_ms - lib_now_ms());
		if (left < 0 || !probed)
			left = 0;
		r = lib_poll1(fd, POLLIN, left);
		if (r < 0) {
			*err = errno;
			return OUT_ODD;
		}
		if (!r) {
			if (probed)
				return OUT_STUCK;
			probed = true;
			if (send(fd, "p", 1, MSG_DONTWAIT | MSG_NOSIGNAL) == 1 ||
			    errno == EAGAIN)	/* still connecting */
				continue;
			if (errno == ECONNRESET || errno == EPIPE)
				return OUT_PROBED;
			*err = errno;
			return OUT_ODD;
		}
		e = 0;
		len = sizeof(e);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len)) {
			*err = errno;
			return OUT_ODD;
		}
		/*
		 * EPIPE: a RST after a FIN.  A child cloned from a listener
		 * that close() has just marked SHUTDOWN_MASK (before its
		 * state is TCP_CLOSE) inherits that, sends a FIN when it
		 * becomes established and is then reset with the others;
		 * the stock kernel does the same.
		 */
		if (e == ECONNRESET || e == EPIPE)
			return probed ? OUT_PROBED : OUT_RESET;
		if (e == ECONNREFUSED)
			return OUT_REFUSED;
		if (e) {
			*err = e;
			return OUT_ODD;
		}
		n = recv(fd, &b, 1, MSG_DONTWAIT);
		if (!n)
			return OUT_EOF;
		if (n < 0 && errno == ECONNRESET)
			return probed ? OUT_PROBED : OUT_RESET;
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			if (lib_now_ms() >= deadline_ms)
				return OUT_STUCK;
			lib_tick();
			continue;
		}
		*err = n < 0 ? errno : EBADMSG;	/* data: nobody sends any */
		return OUT_ODD;
	}
}

static int cmp_long(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;

	return x < y ? -1 : x > y;
}

static void close_race(struct __test_metadata *_metadata,
		       FIXTURE_DATA(races) *self,
		       const FIXTURE_VARIANT(races) *variant, bool shut)
{
	int rounds = lib_scaled(150, 20), n = self->ncpu, tally[4] = { 0 };
	struct race_ctl ctl = { .family = variant->family };
	long window = 0, delay, maxus, inuse, calib[CALIBRATE];
	unsigned int seed = (unsigned int)(now_us() ^ getpid());
	struct racer *rc;
	int r, i, j, l, err, before, raced = 0;
	enum outcome o;
	uint64_t end, t0;

	if (n < 2)
		SKIP(return, "needs 2 CPUs");
	KNOB_ON(KNOB_QUEUE_ADD, 2000);
	TH_LOG("%d rounds, seed %u", rounds, seed);

	rc = calloc(n, sizeof(*rc));
	ASSERT_NE(NULL, rc);
	ASSERT_EQ(0, pthread_barrier_init(&ctl.go, NULL, n + 1));
	ASSERT_EQ(0, pthread_barrier_init(&ctl.done, NULL, n + 1));
	for (i = 0; i < n; i++) {
		rc[i].ctl = &ctl;
		rc[i].cpu = self->cpus[i];
		ASSERT_EQ(0, pthread_create(&rc[i].th, NULL, racer_fn, &rc[i]));
	}

	for (r = 0; r < rounds; r++) {
		/* The closer takes each CPU in turn; the others race it. */
		ctl.closer_cpu = self->cpus[r % n];
		ASSERT_EQ(0, lib_pin(ctl.closer_cpu));
		l = pcl_listener(variant->family, false, LIB_PORT, 1024, 1);
		ASSERT_LE(0, l) TH_LOG("listener: %s", strerror(errno));
		ASSERT_EQ(1, pcl_get(l));

		pthread_barrier_wait(&ctl.go);
		if (r < CALIBRATE) {
			/* Close once every connection is queued: this
			 * measures how long a first connect takes.
			 */
			delay = -1;
			pthread_barrier_wait(&ctl.done);
		} else {
			/* Spin: the CPU is ours this round, and a sleep
			 * can oversleep a whole native connect.
			 */
			delay = rand_r(&seed) % (window + 1);
			t0 = now_us();
			while (now_us() - t0 < (uint64_t)delay)
				;
		}
		if (shut)
			ASSERT_EQ(0, shutdown(l, SHUT_RDWR));
		ASSERT_EQ(0, close(l));
		if (r >= CALIBRATE)
			pthread_barrier_wait(&ctl.done);

		/* Every client: reset, refused or EOF, at once. */
		end = lib_now_ms() + LIB_DEADLINE_MS;
		maxus = 0;
		before = tally[OUT_REFUSED] + tally[OUT_PROBED];
		for (i = 0; i < n; i++) {
			ASSERT_EQ(0, rc[i].err) {
				TH_LOG("client on cpu %d: %s", rc[i].cpu,
				       strerror(rc[i].err));
			}
			tally[OUT_REFUSED] += rc[i].refused;
			if (rc[i].us > maxus)
				maxus = rc[i].us;
			for (j = 0; j < rc[i].nfds; j++) {
				o = client_outcome(rc[i].fds[j], end, &err);
				ASSERT_NE(OUT_STUCK, o) {
					TH_LOG("round %d: client %d of cpu %d (port %d) is still connected (tcp state %d) %d ms after the listener was %s (%ld us into the round; -1: after the connects), and its data was taken: its child was queued on a clone after the close, and nobody will accept or reset it",
					       r, j, rc[i].cpu,
					       lib_sock_port(rc[i].fds[j]),
					       lib_tcp_state(rc[i].fds[j]),
					       LIB_DEADLINE_MS,
					       shut ? "shut down" : "closed",
					       delay);
				}
				ASSERT_NE(OUT_ODD, o) {
					TH_LOG("round %d: client %d of cpu %d: %s",
					       r, j, rc[i].cpu, strerror(err));
				}
				tally[o]++;
			}
			for (j = 0; j < rc[i].nfds; j++)
				close(rc[i].fds[j]);
			rc[i].nfds = 0;
		}
		/* Some connect came after the close: the round raced. */
		if (tally[OUT_REFUSED] + tally[OUT_PROBED] > before)
			raced++;
		inuse = wait_inuse(self->base);
		ASSERT_EQ(self->base, inuse) {
			TH_LOG("round %d: %ld TCP sockets left in the netns after the listener and every client closed",
			       r, inuse - self->base);
		}
		/*
		 * Aim the closes at the first connect of a round, whose child
		 * is the first of an empty clone: the one whose queueing the
		 * close may miss.  Twice the median of the calibration rounds
		 * (emulated CPUs have outliers).
		 */
		if (r < CALIBRATE)
			calib[r] = maxus;
		if (r == CALIBRATE - 1) {
			qsort(calib, CALIBRATE, sizeof(calib[0]), cmp_long);
			window = 2 * calib[CALIBRATE / 2];
			if (window < 200)
				window = 200;
			if (window > 100000)
				window = 100000;
			TH_LOG("a first connect takes %ld-%ld us: closing 0-%ld us into each round",
			       calib[0], calib[CALIBRATE - 1], window);
		}
	}
	ctl.stop = true;
	pthread_barrier_wait(&ctl.go);
	for (i = 0; i < n; i++)
		pthread_join(rc[i].th, NULL);
	TH_LOG("clients: %d reset, %d refused, %d at EOF, %d reset when they sent (half-open); %d of %d rounds closed amid the connects",
	       tally[OUT_RESET], tally[OUT_REFUSED], tally[OUT_EOF],
	       tally[OUT_PROBED], raced, rounds - CALIBRATE);
	free(rc);
	ASSERT_EQ(0, knob_set(KNOB_QUEUE_ADD, 0) < 0);
}

TEST_F_TIMEOUT(races, close_races_connects, 300)
{
	close_race(_metadata, self, variant, false);
}

TEST_F_TIMEOUT(races, shutdown_races_connects, 300)
{
	close_race(_metadata, self, variant, true);
}

/* ------------------------------------------------------------------ */
/* Defect 3: a blocking accept() racing the socket's first listen(). */

struct early {
	int s;
	int cpu;
	int fd;
	int err;
	int einval;		/* accept() calls that said EINVAL */
	int stop;
	struct sockaddr_storage peer;
};

static void *early_accept_fn(void *arg)
{
	struct early *a = arg;
	socklen_t len;
	int fd;

	if (lib_pin(a->cpu)) {
		a->err = errno;
		return NULL;
	}
	for (;;) {
		len = sizeof(a->peer);
		fd = accept4(a->s, (struct sockaddr *)&a->peer, &len, SOCK_CLOEXEC);
		if (fd >= 0) {
			a->fd = fd;
			break;
		}
		if (errno == EINTR)
			continue;
		if (errno != EINVAL) {
			a->err = errno;
			break;
		}
		__atomic_add_fetch(&a->einval, 1, __ATOMIC_SEQ_CST);
		if (__atomic_load_n(&a->stop, __ATOMIC_SEQ_CST))
			break;
	}
	return NULL;
}

TEST_F_TIMEOUT(races, accept_before_first_listen, 300)
{
	int rounds = lib_scaled(20, 5), one = 1, knob, r, c, rc;
	unsigned int seed = (unsigned int)(now_us() ^ getpid());
	struct sockaddr_storage ss;
	socklen_t len = lib_lo_addr(variant->family, LIB_PORT, &ss);
	long max_delay, delay;
	struct early a;
	pthread_t th;
	uint64_t end;
	char b;

	knob = KNOB_ON(KNOB_ACCEPT, 20000);
	/* Each accept() before listen() lasts about the knob's delay. */
	max_delay = knob ? 3 * 20000 : 2000;
	TH_LOG("%d rounds, seed %u", rounds, seed);

	for (r = 0; r < rounds; r++) {
		memset(&a, 0, sizeof(a));
		a.fd = -1;
		a.cpu = self->cpus[0];
		a.s = socket(variant->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		ASSERT_LE(0, a.s);
		ASSERT_EQ(0, setsockopt(a.s, SOL_SOCKET, SO_REUSEADDR, &one,
					sizeof(one)));
		ASSERT_EQ(0, pcl_set(a.s, 1));
		ASSERT_EQ(0, bind(a.s, (struct sockaddr *)&ss, len));

		ASSERT_EQ(0, pthread_create(&th, NULL, early_accept_fn, &a));
		/* It is in its accept() loop... */
		end = lib_now_ms() + LIB_DEADLINE_MS;
		while (!__atomic_load_n(&a.einval, __ATOMIC_SEQ_CST) &&
		       !__atomic_load_n(&a.err, __ATOMIC_SEQ_CST) &&
		       lib_now_ms() < end)
			lib_tick();
		ASSERT_EQ(0, a.err) TH_LOG("accept(): %s", strerror(a.err));
		ASSERT_LT(0, a.einval);

		/* ...when, from another CPU, the socket starts listening. */
		ASSERT_EQ(0, lib_pin(self->cpus[self->ncpu - 1]));
		delay = rand_r(&seed) % (max_delay + 1);
		sleep_us(delay);
		ASSERT_EQ(0, listen(a.s, 16));
		ASSERT_EQ(1, pcl_get(a.s));
		c = lib_connect(variant->family, LIB_PORT, false);
		ASSERT_LE(0, c) TH_LOG("connect: %s", strerror(errno));

		rc = join_deadline(th, 10000);
		if (rc) {
			/* Wake it: a listener that stops listening does. */
			__atomic_store_n(&a.stop, 1, __ATOMIC_SEQ_CST);
			shutdown(a.s, SHUT_RDWR);
			join_deadline(th, LIB_DEADLINE_MS);
		}
		ASSERT_EQ(0, rc) {
			TH_LOG("round %d: the accept() that began before listen() (%ld us after its first EINVAL) did not return the connection in 10 s: it sleeps on a queue nothing is added to",
			       r, delay);
		}
		ASSERT_EQ(0, a.err) TH_LOG("round %d: accept(): %s", r,
					   strerror(a.err));
		ASSERT_LE(0, a.fd);
		EXPECT_EQ(lib_sock_port(c), lib_addr_port(&a.peer));
		ASSERT_EQ(1, send(c, "x", 1, MSG_NOSIGNAL));
		ASSERT_EQ(1, read_all(a.fd, &b, 1, LIB_DEADLINE_MS));
		ASSERT_EQ('x', b);
		close(a.fd);
		close(c);
		close(a.s);
	}
	ASSERT_EQ(0, knob_set(KNOB_ACCEPT, 0) < 0);
}

/* ------------------------------------------------------------------ */
/* Lockless users of the clones while a first listen() fails. */

struct failing {
	int s;
	int stop;
	int err;		/* unexpected errno of a user thread */
	int accepts;		/* accept() calls that returned */
	int polls;		/* epoll and poll rounds */
};

static void *failing_accept_fn(void *arg)
{
	struct timeval tv = { .tv_usec = 20000 };
	struct failing *f = arg;
	int fd;

	if (setsockopt(f->s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv))) {
		f->err = errno;
		return NULL;
	}
	while (!__atomic_load_n(&f->stop, __ATOMIC_SEQ_CST)) {
		fd = accept4(f->s, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0) {
			close(fd);
		} else if (errno != EINVAL && errno != EAGAIN &&
			   errno != EINTR) {
			f->err = errno;
			break;
		}
		__atomic_add_fetch(&f->accepts, 1, __ATOMIC_SEQ_CST);
	}
	return NULL;
}

static void *failing_poll_fn(void *arg)
{
	struct epoll_event ev = { .events = EPOLLIN }, out;
	struct failing *f = arg;
	struct pollfd pfd = { .fd = f->s, .events = POLLIN };
	struct tcp_info ti;
	socklen_t len;
	int ep = epoll_create1(EPOLL_CLOEXEC);

	if (ep < 0) {
		f->err = errno;
		return NULL;
	}
	while (!__atomic_load_n(&f->stop, __ATOMIC_SEQ_CST)) {
		if (epoll_ctl(ep, EPOLL_CTL_ADD, f->s, &ev)) {
			f->err = errno;
			break;
		}
		epoll_wait(ep, &out, 1, 5);
		poll(&pfd, 1, 5);
		len = sizeof(ti);
		getsockopt(f->s, IPPROTO_TCP, TCP_INFO, &ti, &len);
		if (epoll_ctl(ep, EPOLL_CTL_DEL, f->s, NULL)) {
			f->err = errno;
			break;
		}
		__atomic_add_fetch(&f->polls, 1, __ATOMIC_SEQ_CST);
	}
	close(ep);
	return NULL;
}

TEST_F_TIMEOUT(races, failed_first_listen_races_accept_and_poll, 300)
{
	int rounds = lib_scaled(10, 3), tries = 8, one = 1, r, i, h;
	struct sockaddr_storage ss;
	socklen_t len = lib_lo_addr(variant->family, LIB_PORT, &ss);
	pthread_t tacc, tpoll;
	struct failing f;
	uint64_t end;
	int c, a, n;

	KNOB_ON(KNOB_LISTEN, 20000);

	for (r = 0; r < rounds; r++) {
		memset(&f, 0, sizeof(f));
		/* Both bound to the port; h listens first, so s cannot. */
		h = socket(variant->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		f.s = socket(variant->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		ASSERT_LE(0, h);
		ASSERT_LE(0, f.s);
		ASSERT_EQ(0, setsockopt(h, SOL_SOCKET, SO_REUSEADDR, &one,
					sizeof(one)));
		ASSERT_EQ(0, setsockopt(f.s, SOL_SOCKET, SO_REUSEADDR, &one,
					sizeof(one)));
		ASSERT_EQ(0, pcl_set(f.s, 1));
		ASSERT_EQ(0, bind(h, (struct sockaddr *)&ss, len));
		ASSERT_EQ(0, bind(f.s, (struct sockaddr *)&ss, len));
		ASSERT_EQ(0, listen(h, 16));

		ASSERT_EQ(0, pthread_create(&tacc, NULL, failing_accept_fn, &f));
		ASSERT_EQ(0, pthread_create(&tpoll, NULL, failing_poll_fn, &f));
		/*
		 * At least @tries failing listen()s, and until both threads
		 * have had a go at the socket meanwhile (a loaded machine may
		 * not run them at once).
		 */
		end = lib_now_ms() + LIB_DEADLINE_MS;
		for (i = 0; i < tries ||
		     ((!__atomic_load_n(&f.accepts, __ATOMIC_SEQ_CST) ||
		       !__atomic_load_n(&f.polls, __ATOMIC_SEQ_CST)) &&
		      lib_now_ms() < end); i++) {
			ASSERT_EQ(-1, listen(f.s, 16));
			ASSERT_EQ(EADDRINUSE, errno);
		}
		/* accept() calls that returned while listen() failed */
		n = __atomic_load_n(&f.accepts, __ATOMIC_SEQ_CST);
		/* The mode was decided at the first listen(): it sticks. */
		ASSERT_EQ(1, pcl_get(f.s));

		/* The port is free: s listens, per-core, and works. */
		close(h);
		ASSERT_EQ(0, listen(f.s, 16));
		ASSERT_EQ(1, pcl_get(f.s));
		c = lib_connect(variant->family, LIB_PORT, false);
		ASSERT_LE(0, c) TH_LOG("connect: %s", strerror(errno));
		__atomic_store_n(&f.stop, 1, __ATOMIC_SEQ_CST);
		/* The accept thread may take the connection itself: fine. */
		ASSERT_EQ(0, join_deadline(tacc, LIB_DEADLINE_MS)) {
			TH_LOG("round %d: accept() did not return: it sleeps on a queue nothing wakes",
			       r);
			shutdown(f.s, SHUT_RDWR);
		}
		ASSERT_EQ(0, join_deadline(tpoll, LIB_DEADLINE_MS));
		ASSERT_EQ(0, f.err) TH_LOG("round %d: %s", r, strerror(f.err));
		ASSERT_LT(0, n);
		ASSERT_LT(0, f.polls);
		a = accept4(f.s, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (a >= 0)
			close(a);
		close(c);
		close(f.s);
	}
	ASSERT_EQ(0, knob_set(KNOB_LISTEN, 0) < 0);
	EXPECT_EQ(self->base, wait_inuse(self->base));
}

/* ------------------------------------------------------------------ */
/* Defect 4: a Fast Open child's sk_data_ready, set by a sockmap. */

/* The few eBPF instructions the two programs need. */
#define INSN(c, d, s, o, i) \
	((struct bpf_insn){ .code = (c), .dst_reg = (d), .src_reg = (s), \
			    .off = (o), .imm = (i) })
#define MOV64_REG(d, s)	INSN(BPF_ALU64 | BPF_MOV | BPF_X, d, s, 0, 0)
#define MOV64_IMM(d, i)	INSN(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, i)
#define ADD64_IMM(d, i)	INSN(BPF_ALU64 | BPF_ADD | BPF_K, d, 0, 0, i)
#define LDX_W(d, s, o)	INSN(BPF_LDX | BPF_MEM | BPF_W, d, s, o, 0)
#define STX_W(d, s, o)	INSN(BPF_STX | BPF_MEM | BPF_W, d, s, o, 0)
#define ST_W(d, o, i)	INSN(BPF_ST | BPF_MEM | BPF_W, d, 0, o, i)
#define XADD_DW(d, s, o) INSN(BPF_STX | BPF_ATOMIC | BPF_DW, d, s, o, BPF_ADD)
#define JEQ_IMM(d, i, o) INSN(BPF_JMP | BPF_JEQ | BPF_K, d, 0, o, i)
#define JNE_IMM(d, i, o) INSN(BPF_JMP | BPF_JNE | BPF_K, d, 0, o, i)
#define CALL(f)		INSN(BPF_JMP | BPF_CALL, 0, 0, 0, f)
#define EXIT()		INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
/* Two instructions: a map's fd, made a pointer by the verifier. */
#define LD_MAP_FD(d, fd) \
	INSN(BPF_LD | BPF_DW | BPF_IMM, d, BPF_PSEUDO_MAP_FD, 0, fd), \
	INSN(0, 0, 0, 0, 0)

enum { R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10 };

/* Slots of the counter array. */
enum { CNT_VERDICT, CNT_ADDED, CNT_ADD_FAILED, CNT_MAX };

static int bpf_sys(int cmd, union bpf_attr *attr)
{
	return syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

static int map_create(__u32 type, __u32 ksz, __u32 vsz, __u32 max)
{
	union bpf_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.map_type = type;
	attr.key_size = ksz;
	attr.value_size = vsz;
	attr.max_entries = max;
	return bpf_sys(BPF_MAP_CREATE, &attr);
}

static int counter(int map, __u32 key, __u64 *v)
{
	union bpf_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.map_fd = map;
	attr.key = (__u64)(uintptr_t)&key;
	attr.value = (__u64)(uintptr_t)v;
	return bpf_sys(BPF_MAP_LOOKUP_ELEM, &attr);
}

static int prog_load(__u32 type, const struct bpf_insn *insns, int n,
		     char *log, size_t loglen)
{
	union bpf_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.prog_type = type;
	attr.insns = (__u64)(uintptr_t)insns;
	attr.insn_cnt = n;
	attr.license = (__u64)(uintptr_t)"GPL";
	attr.log_buf = (__u64)(uintptr_t)log;
	attr.log_size = loglen;
	attr.log_level = 1;
	log[0] = 0;
	return bpf_sys(BPF_PROG_LOAD, &attr);
}

static int prog_attach(int prog, int target, __u32 type)
{
	union bpf_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.target_fd = target;
	attr.attach_bpf_fd = prog;
	attr.attach_type = type;
	return bpf_sys(BPF_PROG_ATTACH, &attr);
}

/* sk_skb verdict: count the skb in slot CNT_VERDICT, pass it. */
static int load_verdict(int cnt, char *log, size_t loglen)
{
	const struct bpf_insn p[] = {
		ST_W(R10, -4, CNT_VERDICT),
		MOV64_REG(R2, R10),
		ADD64_IMM(R2, -4),
		LD_MAP_FD(R1, cnt),
		CALL(BPF_FUNC_map_lookup_elem),
		JEQ_IMM(R0, 0, 2),
		MOV64_IMM(R1, 1),
		XADD_DW(R0, R1, 0),
		MOV64_IMM(R0, SK_PASS),
		EXIT(),
	};

	return prog_load(BPF_PROG_TYPE_SK_SKB, p, ARRAY_SIZE(p), log, loglen);
}

/*
 * sockops: on PASSIVE_ESTABLISHED_CB put the child in slot 0 of the
 * sockmap (replacing whatever was there) and count the outcome in
 * CNT_ADDED or CNT_ADD_FAILED.
 */
static int load_sockops(int cnt, int smap, char *log, size_t loglen)
{
	const struct bpf_insn p[] = {
		MOV64_REG(R6, R1),
		LDX_W(R2, R6, offsetof(struct bpf_sock_ops, op)),
		JNE_IMM(R2, BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB, 20),
		ST_W(R10, -4, 0),
		MOV64_REG(R1, R6),
		LD_MAP_FD(R2, smap),
		MOV64_REG(R3, R10),
		ADD64_IMM(R3, -4),
		MOV64_IMM(R4, BPF_ANY),
		CALL(BPF_FUNC_sock_map_update),
		MOV64_IMM(R7, CNT_ADDED),
		JEQ_IMM(R0, 0, 1),
		MOV64_IMM(R7, CNT_ADD_FAILED),
		STX_W(R10, R7, -8),
		MOV64_REG(R2, R10),
		ADD64_IMM(R2, -8),
		LD_MAP_FD(R1, cnt),
		CALL(BPF_FUNC_map_lookup_elem),
		JEQ_IMM(R0, 0, 2),
		MOV64_IMM(R1, 1),
		XADD_DW(R0, R1, 0),
		/* out: */
		MOV64_IMM(R0, 1),
		EXIT(),
	};

	return prog_load(BPF_PROG_TYPE_SOCK_OPS, p, ARRAY_SIZE(p), log, loglen);
}

/* A cgroup v2 of our own, with us in it: its path goes to self->cg. */
static int cgroup_enter(FIXTURE_DATA(races) *self)
{
	char line[1024], dev[256], mnt[256], type[64], path[400];
	FILE *f = fopen("/proc/self/mounts", "re");
	bool found = false;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%255s %255s %63s", dev, mnt, type) == 3 &&
		    !strcmp(type, "cgroup2")) {
			found = true;
			break;
		}
	}
	fclose(f);
	if (!found) {
		snprintf(self->cgmnt, sizeof(self->cgmnt),
			 "/tmp/percore_races.cg.XXXXXX");
		if (!mkdtemp(self->cgmnt)) {
			self->cgmnt[0] = 0;
			return -1;
		}
		if (mount("cgroup2", self->cgmnt, "cgroup2", 0, NULL))
			return -1;
		snprintf(mnt, sizeof(mnt), "%s", self->cgmnt);
	}
	snprintf(self->cg, sizeof(self->cg), "%s/percore_races.%d", mnt,
		 (int)getpid());
	if (mkdir(self->cg, 0755) && errno != EEXIST) {
		self->cg[0] = 0;
		return -1;
	}
	snprintf(path, sizeof(path), "%s/cgroup.procs", self->cg);
	return lib_sysctl_write(path, getpid());
}

struct bpf_env {
	int cnt, smap, verdict, sockops, cg;
};

static void bpf_env_close(struct bpf_env *e)
{
	int *fds[] = { &e->sockops, &e->verdict, &e->smap, &e->cnt, &e->cg };

	for (unsigned int i = 0; i < ARRAY_SIZE(fds); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

/* A TCP listener on loopback:port with TCP_PERCORE_LISTEN and Fast Open. */
static int tfo_listener(int family, uint16_t port, int pcl, int tfo_qlen)
{
	struct sockaddr_storage ss;
	socklen_t len = lib_lo_addr(family, port, &ss);
	int fd, e, one = 1;

	fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    pcl_set(fd, pcl) ||
	    setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN, &tfo_qlen,
		       sizeof(tfo_qlen)) ||
	    bind(fd, (struct sockaddr *)&ss, len) || listen(fd, 64)) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static void sockmap_verdict(struct __test_metadata *_metadata,
			    FIXTURE_DATA(races) *self,
			    const FIXTURE_VARIANT(races) *variant, bool tfo)
{
	static char log[65536];
	struct bpf_env e = { -1, -1, -1, -1, -1 };
	int nconn = self->ncpu < 4 ? self->ncpu : 4, i, l, c, a, got;
	__u64 v0[CNT_MAX], v1[CNT_MAX];
	struct sockaddr_storage dst;
	socklen_t dlen = lib_lo_addr(variant->family, LIB_PORT, &dst);
	char msg[32], buf[32];
	struct tcp_info ti;
	socklen_t tl;

	/* Sockets made from here on are in our cgroup, with sockops. */
	ASSERT_EQ(0, cgroup_enter(self)) TH_LOG("cgroup2: %s", strerror(errno));
	e.cg = open(self->cg, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_LE(0, e.cg);

	e.cnt = map_create(BPF_MAP_TYPE_ARRAY, 4, 8, CNT_MAX);
	if (e.cnt < 0 && (errno == EINVAL || errno == ENOSYS || errno == EPERM))
		SKIP(goto out, "no BPF maps here: %s", strerror(errno));
	ASSERT_LE(0, e.cnt) TH_LOG("array map: %s", strerror(errno));
	e.smap = map_create(BPF_MAP_TYPE_SOCKMAP, 4, 4, 4);
	if (e.smap < 0 && (errno == EINVAL || errno == ENOSYS || errno == EPERM))
		SKIP(goto out, "no sockmap here: %s", strerror(errno));
	ASSERT_LE(0, e.smap) TH_LOG("sockmap: %s", strerror(errno));

	e.verdict = load_verdict(e.cnt, log, sizeof(log));
	if (e.verdict < 0 && !log[0] &&
	    (errno == EINVAL || errno == ENOSYS || errno == EPERM))
		SKIP(goto out, "no sk_skb programs here: %s", strerror(errno));
	ASSERT_LE(0, e.verdict) TH_LOG("sk_skb load: %s\n%s", strerror(errno), log);
	e.sockops = load_sockops(e.cnt, e.smap, log, sizeof(log));
	if (e.sockops < 0 && !log[0] &&
	    (errno == EINVAL || errno == ENOSYS || errno == EPERM))
		SKIP(goto out, "no sockops programs here: %s", strerror(errno));
	ASSERT_LE(0, e.sockops) TH_LOG("sockops load: %s\n%s", strerror(errno), log);

	ASSERT_EQ(0, prog_attach(e.verdict, e.smap, BPF_SK_SKB_VERDICT)) {
		TH_LOG("attach sk_skb verdict to the sockmap: %s", strerror(errno));
	}
	ASSERT_EQ(0, prog_attach(e.sockops, e.cg, BPF_CGROUP_SOCK_OPS)) {
		TH_LOG("attach sockops to %s: %s", self->cg, strerror(errno));
	}

	/* Client and server Fast Open, no cookie needed. */
	ASSERT_EQ(0, lib_sysctl_write(TFO_SYSCTL, 0x207));
	l = tfo_listener(variant->family, LIB_PORT, 1, 16);
	ASSERT_LE(0, l) TH_LOG("listener: %s", strerror(errno));
	ASSERT_EQ(1, pcl_get(l));

	for (i = 0; i < nconn; i++) {
		for (int k = 0; k < CNT_MAX; k++)
			ASSERT_EQ(0, counter(e.cnt, k, &v0[k]));
		/* The client's CPU is the child's clone. */
		ASSERT_EQ(0, lib_pin(self->cpus[i]));
		c = socket(variant->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		ASSERT_LE(0, c);
		snprintf(msg, sizeof(msg), "syn%05d", i);
		if (tfo) {
			ASSERT_EQ(8, sendto(c, msg, 8, MSG_FASTOPEN,
					    (struct sockaddr *)&dst, dlen)) {
				TH_LOG("sendto(MSG_FASTOPEN): %s", strerror(errno));
			}
		} else {
			ASSERT_EQ(0, connect(c, (struct sockaddr *)&dst, dlen));
			ASSERT_EQ(8, send(c, msg, 8, MSG_NOSIGNAL));
		}
		tl = sizeof(ti);
		ASSERT_EQ(0, getsockopt(c, IPPROTO_TCP, TCP_INFO, &ti, &tl));
		ASSERT_EQ(tfo, !!(ti.tcpi_options & TCPI_OPT_SYN_DATA)) {
			TH_LOG("connection %d: SYN data %sacked", i,
			       tfo ? "not " : "");
		}
		/* More after the handshake: the verdict program's too. */
		snprintf(msg + 8, sizeof(msg) - 8, "data%012d", i);
		ASSERT_EQ(16, send(c, msg + 8, 16, MSG_NOSIGNAL));

		ASSERT_EQ(0, lib_pin(self->cpus[0]));
		a = accept_wait(l, LIB_DEADLINE_MS);
		ASSERT_LE(0, a) TH_LOG("accept %d: %s", i, strerror(errno));
		ASSERT_EQ(lib_sock_port(c), peer_port(a));
		memset(buf, 0, sizeof(buf));
		got = read_all(a, buf, 24, 5000);

		for (int k = 0; k < CNT_MAX; k++)
			ASSERT_EQ(0, counter(e.cnt, k, &v1[k]));
		ASSERT_EQ(v0[CNT_ADDED] + 1, v1[CNT_ADDED]) {
			TH_LOG("connection %d: sockops did not put the child in the sockmap (%llu failures)",
			       i, (unsigned long long)(v1[CNT_ADD_FAILED] - v0[CNT_ADD_FAILED]));
		}
		ASSERT_LT(v0[CNT_VERDICT], v1[CNT_VERDICT]) {
			TH_LOG("connection %d (%s, cpu %d): the sk_skb verdict program saw none of the child's data (read %d of 24 bytes: %s): the child's sk_data_ready is not the sockmap's",
			       i, tfo ? "Fast Open" : "plain", self->cpus[i],
			       got, got == 24 ? "ok" : strerror(errno));
		}
		ASSERT_EQ(24, got) TH_LOG("connection %d: read %d of 24 bytes: %s",
					  i, got, strerror(errno));
		ASSERT_EQ(0, memcmp(buf, msg, 24)) {
			TH_LOG("connection %d: got '%.24s', want '%.24s'", i, buf, msg);
		}
		/* And the child still talks back. */
		ASSERT_EQ(1, send(a, "r", 1, MSG_NOSIGNAL));
		ASSERT_EQ(1, read_all(c, buf, 1, LIB_DEADLINE_MS));
		ASSERT_EQ('r', buf[0]);
		close(a);
		close(c);
	}
	TH_LOG("%d %s connections; the verdict program saw %llu skbs", nconn,
	       tfo ? "Fast Open" : "plain", (unsigned long long)v1[CNT_VERDICT]);
	close(l);
out:
	bpf_env_close(&e);
}

TEST_F_TIMEOUT(races, fastopen_child_keeps_sockmap_verdict, 120)
{
	sockmap_verdict(_metadata, self, variant, true);
}

/* The control: a plain child runs sockops after it is queued. */
TEST_F_TIMEOUT(races, plain_child_keeps_sockmap_verdict, 120)
{
	sockmap_verdict(_metadata, self, variant, false);
}

/* ------------------------------------------------------------------ */
/* Defect 5: a busy clone must not starve the others. */

#define FILL		64	/* connections kept in clone 0 */
#define STEAL_BOUND	32	/* the other clone's connection by then */
#define GIVE_UP		200

TEST_F_TIMEOUT(races, busy_clone_does_not_starve_the_others, 120)
{
	int cap = FILL + GIVE_UP + 8, *cfd, *cport, n = 0, i, x, l, a, far, p;
	int me, other, found = 0;
	struct pcl_counters c0, c1;
	struct sockaddr_storage peer;
	socklen_t len;

	if (self->ncpu < 2)
		SKIP(return, "needs 2 CPUs");
	me = self->cpus[0];
	other = self->cpus[1];
	cfd = calloc(cap, sizeof(int));
	cport = calloc(cap, sizeof(int));
	ASSERT_NE(NULL, cfd);
	ASSERT_NE(NULL, cport);
	l = pcl_listener(variant->family, false, LIB_PORT, 256, 1);
	ASSERT_LE(0, l) TH_LOG("listener: %s", strerror(errno));
	ASSERT_EQ(1, pcl_get(l));
	ASSERT_EQ(0, fcntl(l, F_SETFL, O_NONBLOCK));

	/* FILL in our own clone, then one in the other CPU's. */
	ASSERT_EQ(0, lib_pin(me));
	for (n = 0; n < FILL; n++) {
		cfd[n] = lib_connect(variant->family, LIB_PORT, false);
		ASSERT_LE(0, cfd[n]) TH_LOG("connect: %s", strerror(errno));
		cport[n] = lib_sock_port(cfd[n]);
	}
	ASSERT_EQ(0, lib_pin(other));
	far = lib_connect(variant->family, LIB_PORT, false);
	ASSERT_LE(0, far) TH_LOG("connect: %s", strerror(errno));
	ASSERT_EQ(0, lib_pin(me));
	ASSERT_EQ(FILL + 1, lib_wait_queued(l, FILL + 1, LIB_DEADLINE_MS));
	ASSERT_EQ(0, pcl_counters(-1, &c0));

	/*
	 * One accept per poll(), as nginx does by default; each connection
	 * accepted is replaced by a new one from our CPU, so our clone never
	 * empties.
	 */
	for (i = 1; i <= GIVE_UP; i++) {
		ASSERT_EQ(POLLIN, lib_poll1(l, POLLIN, LIB_DEADLINE_MS) & POLLIN);
		len = sizeof(peer);
		a = accept4(l, (struct sockaddr *)&peer, &len, SOCK_CLOEXEC);
		ASSERT_LE(0, a) TH_LOG("accept %d: %s", i, strerror(errno));
		p = lib_addr_port(&peer);
		close(a);
		if (p == lib_sock_port(far)) {
			found = i;
			break;
		}
		for (x = 0; x < n && cport[x] != p; x++)
			;
		ASSERT_LT(x, n) TH_LOG("accept %d: unknown peer port %d", i, p);
		close(cfd[x]);
		cfd[x] = cfd[n - 1];
		cport[x] = cport[n - 1];
		n--;
		cfd[n] = lib_connect(variant->family, LIB_PORT, false);
		ASSERT_LE(0, cfd[n]) TH_LOG("connect: %s", strerror(errno));
		cport[n] = lib_sock_port(cfd[n]);
		n++;
	}
	ASSERT_NE(0, found) {
		TH_LOG("the connection in cpu %d's clone was not accepted in %d accepts while cpu %d's own clone stayed busy",
		       other, GIVE_UP, me);
	}
	TH_LOG("cpu %d's connection came with accept %d", other, found);
	ASSERT_GE(STEAL_BOUND, found);
	ASSERT_EQ(0, pcl_counters(-1, &c1));
	EXPECT_EQ(1, c1.steals - c0.steals);
	EXPECT_EQ(found - 1, c1.local_accepts - c0.local_accepts);

	for (x = 0; x < n; x++)
		close(cfd[x]);
	close(far);
	close(l);
	free(cfd);
	free(cport);
}

/* ------------------------------------------------------------------ */
/* tcp_migrate_req between SO_REUSEPORT members, per-core or not. */

/* A SO_REUSEPORT listener on loopback:port, TCP_PERCORE_LISTEN = opt. */
static int reuseport_listener(int family, uint16_t port, int backlog, int opt)
{
	struct sockaddr_storage ss;
	socklen_t len = lib_lo_addr(family, port, &ss);
	int fd, e, one = 1;

	fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) ||
	    (opt >= 0 && pcl_set(fd, opt)) ||
	    bind(fd, (struct sockaddr *)&ss, len) || listen(fd, backlog)) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

TEST_F_TIMEOUT(races, migrate_req_between_percore_members, 120)
{
	/* TCP_PERCORE_LISTEN of the closed member and of the other one (the
	 * sysctl leaves SO_REUSEPORT listeners alone: set on each socket).
	 */
	static const int combo[][2] = { { 1, 1 }, { 1, 0 }, { 0, 1 } };
	int per = lib_scaled(8, 2), n = self->ncpu, total = n * per;
	int i, j, k, x, la, lb, a, p, *cfd, *cport;
	long long mig0, mig1;
	char *seen, b;

	ASSERT_EQ(0, lib_sysctl_write(MIGRATE_SYSCTL, 1));
	cfd = calloc(total, sizeof(int));
	cport = calloc(total, sizeof(int));
	seen = calloc(total, 1);
	ASSERT_NE(NULL, cfd);
	ASSERT_NE(NULL, cport);
	ASSERT_NE(NULL, seen);

	for (k = 0; k < 3; k++) {
		uint16_t port = LIB_PORT + k;

		/* Only A exists while the connections come: all in its clones. */
		la = reuseport_listener(variant->family, port, total, combo[k][0]);
		ASSERT_LE(0, la) TH_LOG("listener A: %s", strerror(errno));
		ASSERT_EQ(combo[k][0] ? 1 : 0, pcl_get(la));
		for (i = 0; i < n; i++) {
			ASSERT_EQ(0, lib_pin(self->cpus[i]));
			for (j = 0; j < per; j++) {
				x = i * per + j;
				cfd[x] = lib_connect(variant->family, port, false);
				ASSERT_LE(0, cfd[x]) TH_LOG("connect: %s", strerror(errno));
				cport[x] = lib_sock_port(cfd[x]);
			}
		}
		ASSERT_EQ(0, lib_pin(self->cpus[0]));
		ASSERT_EQ(total, lib_wait_queued(la, total, LIB_DEADLINE_MS));

		lb = reuseport_listener(variant->family, port, total, combo[k][1]);
		ASSERT_LE(0, lb) TH_LOG("listener B: %s", strerror(errno));
		ASSERT_EQ(combo[k][1] ? 1 : 0, pcl_get(lb));
		mig0 = lib_tcpext("TCPMigrateReqSuccess");
		ASSERT_LE(0, mig0);

		/* Closing A hands every connection to B. */
		ASSERT_EQ(0, close(la));
		mig1 = lib_wait_tcpext_above("TCPMigrateReqSuccess",
					     mig0 + total - 1, LIB_DEADLINE_MS);
		EXPECT_EQ(mig0 + total, mig1) {
			TH_LOG("A %s, B %s: %lld of %d migrated",
			       combo[k][0] ? "per-core" : "plain",
			       combo[k][1] ? "per-core" : "plain",
			       mig1 - mig0, total);
		}
		memset(seen, 0, total);
		for (i = 0; i < total; i++) {
			a = accept_wait(lb, LIB_DEADLINE_MS);
			ASSERT_LE(0, a) {
				TH_LOG("A %s, B %s: accept %d of %d from B: %s",
				       combo[k][0] ? "per-core" : "plain",
				       combo[k][1] ? "per-core" : "plain",
				       i, total, strerror(errno));
			}
			p = peer_port(a);
			for (x = 0; x < total && cport[x] != p; x++)
				;
			ASSERT_LT(x, total) TH_LOG("unknown peer port %d", p);
			ASSERT_EQ(0, seen[x]);
			seen[x] = 1;
			/* Not reset: data flows to the client. */
			ASSERT_EQ(1, send(a, "m", 1, MSG_NOSIGNAL)) {
				TH_LOG("send on migrated connection: %s", strerror(errno));
			}
			ASSERT_EQ(1, read_all(cfd[x], &b, 1, LIB_DEADLINE_MS)) {
				TH_LOG("client of a migrated connection: %s",
				       strerror(errno));
			}
			ASSERT_EQ('m', b);
			close(a);
		}
		ASSERT_EQ(0, lib_wait_queued(lb, 0, 0));
		for (i = 0; i < total; i++)
			close(cfd[i]);
		close(lb);
	}
	EXPECT_EQ(self->base, wait_inuse(self->base));
	free(cfd);
	free(cport);
	free(seen);
}

TEST_HARNESS_MAIN
