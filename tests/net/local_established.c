// SPDX-License-Identifier: GPL-2.0
/*
 * local_established: per-CPU local established tables
 * (net.ipv4.tcp_local_established).  Each test runs in a network
 * namespace of its own with the sysctl at 2 (on, every local hit checked
 * against the global table: a difference is counted in "mismatches" and
 * warns, which fails the test VM's splat check):
 *
 *  - lest.accepted: connections accepted on CPU c from a per-core
 *    listener, used from c: their server sockets are entered in c's table
 *    and found there.
 *  - lest.plain_listener_not_entered: connections accepted from a
 *    listener without per-core listen are not entered.
 *  - lest.connected_rfd: with tcp_rfd on, connections made from CPU c
 *    (their ports encode c) are entered in c's table, moved to the chain
 *    of their flow hash by the SYN-ACK (rekeys), and found there.
 *  - lest.churn: a random mix, on every CPU, IPv4, IPv6 and v4-mapped:
 *    connect, accept on another CPU or the same, data, close from either
 *    side or with RST (SO_LINGER 0), TIME_WAIT and reuse of the same
 *    ports with SO_REUSEADDR; no mismatch, every byte where it belongs,
 *    exactly the sockets expected entered, and none left at the end.
 *  - lest.toggle_and_disconnect: off with sockets in the tables, their
 *    entries leave with them; back on, they are found; a disconnected
 *    accepted socket leaves its table and can listen.
 *  - lest.off: with the sysctl off nothing is entered or looked up.
 *  - lest_small.ipv4_never_finds_an_ipv6_socket: IPv4 SYNs with the
 *    addresses an IPv6 socket keeps as placeholders, and its ports, land
 *    in its chain and do not find it.
 *  - lest_netns.dismantle: a namespace whose process is killed with
 *    connections in its tables goes away (entries left at its exit would
 *    warn).
 *  - lest_hotplug.owner_offline: connections owned by a CPU that goes
 *    offline keep working (looked up in the global table), and again
 *    from their table once it is back.
 *  - sysctl: 0, 1 and 2 only.
 */
#include <fcntl.h>
#include <arpa/inet.h>
#include <signal.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "percore_lib.h"

#define LEST_SYSCTL	"/proc/sys/net/ipv4/tcp_local_established"
#define LEST_PROC	"/proc/net/tcp_local_established"
#define RFD_SYSCTL	"/proc/sys/net/ipv4/tcp_rfd"
#define MAX_CPUS	16

struct lest_counters {
	long long hits, misses, inserts, removes, mismatches, rekeys;
};

static int lest_read(struct lest_counters *c)
{
	char line[256];
	FILE *f = fopen(LEST_PROC, "re");
	int ret = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "all %lld %lld %lld %lld %lld %lld", &c->hits,
			   &c->misses, &c->inserts, &c->removes,
			   &c->mismatches, &c->rekeys) == 6)
			ret = 0;
	fclose(f);
	return ret;
}

/* Entries in the namespace's tables now, or -1. */
static long lest_live(void)
{
	struct lest_counters c;

	if (lest_read(&c))
		return -1;
	return (long)(c.inserts - c.removes);
}


/* Send @n bytes on @a, read them on @b; 0 or -1. */
static int xfer(int a, int b, int n)
{
	char buf[512];
	int got = 0, r;

	memset(buf, 'x', sizeof(buf));
	if (n > (int)sizeof(buf) || write(a, buf, n) != n)
		return -1;
	while (got < n) {
		r = read(b, buf, n - got);
		if (r <= 0)
			return -1;
		got += r;
	}
	return 0;
}

/*
 * A listener of @family on LIB_PORT and one connection to it, accepted,
 * with data both ways: 0, or -1 with errno.
 */
static int lest_conn(int family, int *l, int *c, int *s)
{
	*c = *s = -1;
	*l = pcl_listener(family, false, LIB_PORT, 8, 1);
	if (*l < 0)
		return -1;
	*c = lib_connect(family, LIB_PORT, false);
	if (*c < 0)
		return -1;
	*s = accept(*l, NULL, NULL);
	if (*s < 0 || xfer(*c, *s, 100) || xfer(*s, *c, 100))
		return -1;
	return 0;
}

static int lest_netns(int value)
{
	if (lib_netns_enter())
		return -1;
	return lib_sysctl_write(LEST_SYSCTL, value);
}

FIXTURE(lest) {
	int cpus[MAX_CPUS];
	int n;
};

FIXTURE_SETUP(lest)
{
	self->n = lib_cpus(self->cpus, MAX_CPUS);
	ASSERT_LT(0, self->n);
	ASSERT_EQ(0, lest_netns(2)) {
		TH_LOG("netns + %s=2: %s", LEST_SYSCTL, strerror(errno));
	}
	ASSERT_EQ(0, lib_raise_nofile(4096));
}

FIXTURE_TEARDOWN(lest)
{
}

/*
 * As lest, in a namespace whose ehash has 128 buckets
 * (tcp_child_ehash_entries, set in the parent around the unshare): its
 * local tables have their fewest chains.
 */
FIXTURE(lest_small) {
	int cpus[MAX_CPUS];
	int n;
};

#define CHILD_EHASH	"/proc/sys/net/ipv4/tcp_child_ehash_entries"

FIXTURE_SETUP(lest_small)
{
	/* opened before the unshare: it stays the parent's */
	int fd = open(CHILD_EHASH, O_RDWR | O_CLOEXEC), err;
	char old[32];
	ssize_t n;

	self->n = lib_cpus(self->cpus, MAX_CPUS);
	ASSERT_LT(0, self->n);
	ASSERT_LE(0, fd);
	n = pread(fd, old, sizeof(old), 0);
	ASSERT_LT(0, n);
	ASSERT_EQ(3, pwrite(fd, "128", 3, 0));
	err = lest_netns(2);
	/* the parent's value back, for the namespaces made after */
	EXPECT_EQ(n, pwrite(fd, old, n, 0));
	close(fd);
	ASSERT_EQ(0, err) {
		TH_LOG("netns + %s=2: %s", LEST_SYSCTL, strerror(errno));
	}
}

FIXTURE_TEARDOWN(lest_small)
{
}

TEST_F(lest, accepted)
{
	int k = 8, i, j, l, c[8], s[8];
	struct lest_counters a, b;

	l = pcl_listener(AF_INET, false, LIB_PORT, 64, 1);
	ASSERT_LE(0, l);
	for (i = 0; i < self->n; i++) {
		ASSERT_EQ(0, lib_pin(self->cpus[i]));
		ASSERT_EQ(0, lest_read(&a));
		for (j = 0; j < k; j++) {
			c[j] = lib_connect(AF_INET, LIB_PORT, false);
			ASSERT_LE(0, c[j]);
			s[j] = accept(l, NULL, NULL);
			ASSERT_LE(0, s[j]);
		}
		/* on loopback, processed where sent: here */
		for (j = 0; j < k; j++) {
			ASSERT_EQ(0, xfer(c[j], s[j], 100));
			ASSERT_EQ(0, xfer(s[j], c[j], 100));
		}
		ASSERT_EQ(0, lest_read(&b));
		EXPECT_EQ(k, b.inserts - a.inserts);
		/* at least the data to each server socket */
		EXPECT_LE(k, b.hits - a.hits) {
			TH_LOG("cpu %d: %lld hits, %lld misses", self->cpus[i],
			       b.hits - a.hits, b.misses - a.misses);
		}
		EXPECT_EQ(0, b.mismatches);
		for (j = 0; j < k; j++) {
			close(c[j]);
			close(s[j]);
		}
	}
	close(l);
}

/*
 * A listener without per-core listen may hand its connections to any
 * thread: its accepted sockets are not entered (nor looked up locally).
 */
TEST_F(lest, plain_listener_not_entered)
{
	int k = 8, j, l, c[8], s[8];
	struct lest_counters a, b;

	/* no RFD ports for the clients: they would be entered */
	ASSERT_EQ(0, lib_sysctl_write(RFD_SYSCTL, 0));
	/* off explicitly: the third pass runs with tcp_percore_listen=1 */
	l = pcl_listener(AF_INET, false, LIB_PORT, 64, 0);
	ASSERT_LE(0, l);
	ASSERT_EQ(0, pcl_get(l));
	ASSERT_EQ(0, lib_pin(self->cpus[0]));
	ASSERT_EQ(0, lest_read(&a));
	for (j = 0; j < k; j++) {
		c[j] = lib_connect(AF_INET, LIB_PORT, false);
		ASSERT_LE(0, c[j]);
		s[j] = accept(l, NULL, NULL);
		ASSERT_LE(0, s[j]);
		ASSERT_EQ(0, xfer(c[j], s[j], 100));
		ASSERT_EQ(0, xfer(s[j], c[j], 100));
	}
	ASSERT_EQ(0, lest_read(&b));
	EXPECT_EQ(0, b.inserts - a.inserts);
	EXPECT_EQ(0, b.hits - a.hits);
	for (j = 0; j < k; j++) {
		close(c[j]);
		close(s[j]);
	}
	close(l);
}

TEST_F(lest, connected_rfd)
{
	int k = 8, i, j, l, c[8], s[8], ncpu_ids = lib_nr_cpu_ids(), port;
	struct lest_counters a, b;

	ASSERT_LT(0, ncpu_ids);
	ASSERT_EQ(0, lib_sysctl_write(RFD_SYSCTL, 1));
	l = pcl_listener(AF_INET6, false, LIB_PORT, 64, 1);
	ASSERT_LE(0, l);
	for (i = 0; i < self->n; i++) {
		int srv_cpu = self->cpus[(i + 1) % self->n];

		ASSERT_EQ(0, lib_pin(self->cpus[i]));
		ASSERT_EQ(0, lest_read(&a));
		for (j = 0; j < k; j++) {
			c[j] = lib_connect(AF_INET6, LIB_PORT, false);
			ASSERT_LE(0, c[j]);
			port = lib_sock_port(c[j]);
			ASSERT_EQ(self->cpus[i], (port >> 1) % ncpu_ids);
		}
		/* accepted on another CPU: those are its sockets */
		ASSERT_EQ(0, lib_pin(srv_cpu));
		for (j = 0; j < k; j++) {
			s[j] = accept(l, NULL, NULL);
			ASSERT_LE(0, s[j]);
		}
		ASSERT_EQ(0, lest_read(&b));
		EXPECT_EQ(2 * k, b.inserts - a.inserts);
		/*
		 * A connecting socket is entered before its flow hash is
		 * known: the SYN-ACK misses and moves it to its hash's chain
		 * (the accepted ones have the hash of the handshake's ACK).
		 */
		EXPECT_LE(k / 2, b.rekeys - a.rekeys) {
			TH_LOG("cpu %d: %lld rekeys", self->cpus[i],
			       b.rekeys - a.rekeys);
		}
		/* replies sent here, steered to the client's CPU: hits there */
		ASSERT_EQ(0, lest_read(&a));
		for (j = 0; j < k; j++) {
			ASSERT_EQ(0, lib_pin(srv_cpu));
			ASSERT_EQ(0, xfer(s[j], c[j], 200));
		}
		ASSERT_EQ(0, lest_read(&b));
		EXPECT_LE(k, b.hits - a.hits);
		EXPECT_EQ(0, b.mismatches);
		for (j = 0; j < k; j++) {
			close(c[j]);
			close(s[j]);
		}
	}
	close(l);
}

/* xorshift: the churn's own generator, seeded per run and logged */
static uint32_t rnd(uint64_t *st)
{
	*st ^= *st << 13;
	*st ^= *st >> 7;
	*st ^= *st << 17;
	return (uint32_t)(*st >> 11);
}

struct pair {
	int c, s;
};

TEST_F_TIMEOUT(lest, churn, 300)
{
	int rounds = lib_scaled(600, 100), r, l4, l6, fam, kind, lport;
	uint64_t st = (uint64_t)time(NULL) * 2654435761u | 1;
	struct pair p[32] = {};
	struct lest_counters a, b;
	struct sockaddr_storage ss;
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	long long want = 0;
	socklen_t len;
	int one = 1, i, bound;

	TH_LOG("seed %llu, %d rounds", (unsigned long long)st, rounds);
	ASSERT_EQ(0, lib_sysctl_write(RFD_SYSCTL, 1));
	l4 = pcl_listener(AF_INET, false, LIB_PORT, 256, 1);
	ASSERT_LE(0, l4);
	l6 = pcl_listener(AF_INET6, false, LIB_PORT + 1, 256, 1);
	ASSERT_LE(0, l6);
	ASSERT_EQ(0, lest_read(&a));
	for (r = 0; r < rounds; r++) {
		struct pair *x = &p[rnd(&st) % 32];

		ASSERT_EQ(0, lib_pin(self->cpus[rnd(&st) % self->n]));
		if (!x->c) {
			/* 0: IPv4, 1: IPv6, 2: v4-mapped to the IPv4 one */
			kind = rnd(&st) % 3;
			fam = kind == 0 ? AF_INET : AF_INET6;
			lport = kind == 1 ? LIB_PORT + 1 : LIB_PORT;
			x->c = socket(fam, SOCK_STREAM | SOCK_CLOEXEC, 0);
			ASSERT_LE(0, x->c);
			ASSERT_EQ(0, setsockopt(x->c, SOL_SOCKET, SO_REUSEADDR,
						&one, sizeof(one)));
			/* a fixed port now and then: TIME_WAIT, then reuse */
			bound = rnd(&st) % 4 == 0;
			if (bound) {
				lib_lo_addr(fam, 50000 + rnd(&st) % 8, &ss);
				if (kind == 2)
					((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_any;
				len = fam == AF_INET ? sizeof(struct sockaddr_in) :
						       sizeof(struct sockaddr_in6);
				if (bind(x->c, (struct sockaddr *)&ss, len)) {
					close(x->c);
					x->c = 0;
					continue;
				}
			}
			if (kind == 2) {
				struct sockaddr_storage v4;

				lib_lo_addr(AF_INET, lport, &v4);
				lib_addr_as(AF_INET6, &v4, &ss);
			} else {
				lib_lo_addr(fam, lport, &ss);
			}
			len = fam == AF_INET ? sizeof(struct sockaddr_in) :
					       sizeof(struct sockaddr_in6);
			if (connect(x->c, (struct sockaddr *)&ss, len)) {
				/* a 4-tuple still in TIME_WAIT */
				ASSERT_EQ(EADDRNOTAVAIL, errno);
				close(x->c);
				x->c = 0;
				continue;
			}
			ASSERT_EQ(0, lib_pin(self->cpus[rnd(&st) % self->n]));
			x->s = accept(kind == 1 ? l6 : l4, NULL, NULL);
			ASSERT_LE(0, x->s);
			/* the accepted one; the client if RFD chose its port */
			want += 1 + !bound;
			continue;
		}
		switch (rnd(&st) % 5) {
		case 0:
		case 1:
			ASSERT_EQ(0, xfer(x->c, x->s, 1 + rnd(&st) % 500));
			ASSERT_EQ(0, xfer(x->s, x->c, 1 + rnd(&st) % 500));
			break;
		case 2:		/* the client closes first: its TIME_WAIT */
			close(x->c);
			ASSERT_EQ(0, lib_pin(self->cpus[rnd(&st) % self->n]));
			close(x->s);
			x->c = x->s = 0;
			break;
		case 3:		/* the server closes first */
			close(x->s);
			close(x->c);
			x->c = x->s = 0;
			break;
		case 4:		/* RST */
			ASSERT_EQ(0, setsockopt(rnd(&st) % 2 ? x->c : x->s,
						SOL_SOCKET, SO_LINGER, &lg,
						sizeof(lg)));
			close(x->c);
			close(x->s);
			x->c = x->s = 0;
			break;
		}
	}
	for (i = 0; i < 32; i++) {
		if (p[i].c) {
			ASSERT_EQ(0, xfer(p[i].c, p[i].s, 10));
			close(p[i].c);
			close(p[i].s);
		}
	}
	ASSERT_EQ(0, lest_read(&b));
	TH_LOG("inserts %lld hits %lld misses %lld mismatches %lld",
	       b.inserts - a.inserts, b.hits - a.hits, b.misses - a.misses,
	       b.mismatches);
	EXPECT_EQ(want, b.inserts - a.inserts);
	EXPECT_LT(b.misses - a.misses, 4 * (b.hits - a.hits)) {
		TH_LOG("too few hits");
	}
	EXPECT_EQ(0, b.mismatches);
	close(l4);
	close(l6);
	/* every entry left with its socket (TIME_WAIT, close) */
	EXPECT_EQ(0, lib_wait_count(lest_live, 0, LIB_DEADLINE_MS)) {
		TH_LOG("%ld entries left", lest_live());
	}
}

/*
 * Off with sockets in the tables: their entries stay and leave with them;
 * back on, they are found again.  An accepted socket disconnected
 * (connect(AF_UNSPEC)) leaves its table, and may listen: its children
 * are entered on their own.
 */
TEST_F(lest, toggle_and_disconnect)
{
	struct sockaddr_storage ss = { .ss_family = AF_UNSPEC };
	struct lest_counters a, b;
	int l, l2, c[4], s[4], j, c2, s2;

	l = pcl_listener(AF_INET, false, LIB_PORT, 16, 1);
	ASSERT_LE(0, l);
	ASSERT_EQ(0, lib_pin(self->cpus[0]));
	for (j = 0; j < 4; j++) {
		c[j] = lib_connect(AF_INET, LIB_PORT, false);
		ASSERT_LE(0, c[j]);
		s[j] = accept(l, NULL, NULL);
		ASSERT_LE(0, s[j]);
	}
	ASSERT_EQ(4, lest_live());
	ASSERT_EQ(0, lib_sysctl_write(LEST_SYSCTL, 0));
	close(c[0]);
	close(s[0]);
	ASSERT_EQ(0, xfer(c[1], s[1], 10));
	ASSERT_EQ(3, lib_wait_count(lest_live, 3, LIB_DEADLINE_MS));
	ASSERT_EQ(0, lib_sysctl_write(LEST_SYSCTL, 2));
	ASSERT_EQ(0, lest_read(&a));
	ASSERT_EQ(0, xfer(c[2], s[2], 10));
	ASSERT_EQ(0, lest_read(&b));
	EXPECT_LE(1, b.hits - a.hits);

	/* s[3]: disconnected, then a listener */
	ASSERT_EQ(0, connect(s[3], (struct sockaddr *)&ss, sizeof(ss)));
	ASSERT_EQ(2, lib_wait_count(lest_live, 2, LIB_DEADLINE_MS));
	lib_lo_addr(AF_INET, LIB_PORT + 7, &ss);
	ASSERT_EQ(0, bind(s[3], (struct sockaddr *)&ss, sizeof(struct sockaddr_in)));
	ASSERT_EQ(0, pcl_set(s[3], 1));
	ASSERT_EQ(0, listen(s[3], 4));
	l2 = s[3];
	c2 = lib_connect(AF_INET, LIB_PORT + 7, false);
	ASSERT_LE(0, c2);
	s2 = accept(l2, NULL, NULL);
	ASSERT_LE(0, s2);
	ASSERT_EQ(3, lest_live());
	ASSERT_EQ(0, xfer(c2, s2, 10));
	close(c2);
	close(s2);
	close(l2);
	for (j = 1; j < 3; j++) {
		close(c[j]);
		close(s[j]);
	}
	close(c[3]);
	close(l);
	EXPECT_EQ(0, lib_wait_count(lest_live, 0, LIB_DEADLINE_MS));
	EXPECT_EQ(0, b.mismatches);
}

TEST_F(lest, off)
{
	struct lest_counters a, b;
	int l, c, s;

	ASSERT_EQ(0, lib_sysctl_write(LEST_SYSCTL, 0));
	ASSERT_EQ(0, lest_read(&a));
	ASSERT_EQ(0, lest_conn(AF_INET, &l, &c, &s));
	ASSERT_EQ(0, lest_read(&b));
	EXPECT_EQ(0, b.inserts - a.inserts);
	EXPECT_EQ(0, b.hits - a.hits);
	EXPECT_EQ(0, b.misses - a.misses);
	close(s);
	close(c);
	close(l);
}

/*
 * An IPv6 connection's socket holds placeholder IPv4 addresses
 * (127.0.0.6 both ways): an IPv4 packet with those addresses and its
 * ports must not find it in a local table, as ehash (whose hash is the
 * socket's family's) does not.  SYNs from fresh sockets (each a new flow
 * hash) to the IPv6 connection's ports as IPv4, on its owner's CPU, until
 * one lands in its chain many times over; a namespace with a small
 * ehash, so the tables have their fewest chains (1024).  A SYN that found
 * it would be a mismatch (value 2: ehash's chain of the key does not hold
 * it); the namespace's hit count, which any late ACK of the connection
 * moves, is not the signal.
 */
#define V6_PLACEHOLDER	"127.0.0.6"	/* LOOPBACK4_IPV6 */

TEST_F_TIMEOUT(lest_small, ipv4_never_finds_an_ipv6_socket, 600)
{
	int tries = lib_scaled(16384, 4096), i, l, c, s, a, one = 1;
	struct sockaddr_in6 cl6, sv6;
	struct sockaddr_in src = { .sin_family = AF_INET },
			   dst = { .sin_family = AF_INET };
	socklen_t len = sizeof(cl6);
	struct lest_counters b0, b1;

	ASSERT_EQ(0, lib_pin(self->cpus[0]));
	/* entered at accept, moved to its flow's chain by the first packet */
	ASSERT_EQ(0, lest_conn(AF_INET6, &l, &c, &s));
	ASSERT_EQ(0, getsockname(c, (struct sockaddr *)&cl6, &len));
	len = sizeof(sv6);
	ASSERT_EQ(0, getsockname(s, (struct sockaddr *)&sv6, &len));
	ASSERT_EQ(1, inet_pton(AF_INET, V6_PLACEHOLDER, &src.sin_addr));
	dst.sin_addr = src.sin_addr;
	src.sin_port = cl6.sin6_port;	/* the server socket's remote port */
	dst.sin_port = sv6.sin6_port;	/* and its local one */
	ASSERT_EQ(0, lest_read(&b0));
	for (i = 0; i < tries; i++) {
		a = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		ASSERT_LE(0, a);
		ASSERT_EQ(0, setsockopt(a, SOL_SOCKET, SO_REUSEADDR, &one,
					sizeof(one)));
		ASSERT_EQ(0, bind(a, (struct sockaddr *)&src, sizeof(src)));
		/* the SYN is processed here, on loopback, before connect returns */
		if (connect(a, (struct sockaddr *)&dst, sizeof(dst)))
			ASSERT_EQ(EINPROGRESS, errno);
		close(a);
		if (i % 1024 == 1023) {
			ASSERT_EQ(0, lest_read(&b1));
			if (b1.mismatches != b0.mismatches)
				break;
		}
	}
	ASSERT_EQ(0, lest_read(&b1));
	EXPECT_EQ(b0.mismatches, b1.mismatches) {
		TH_LOG("an IPv4 SYN found the IPv6 socket (within %d SYNs)", i + 1);
	}
	/* the IPv6 connection is unharmed */
	ASSERT_EQ(0, xfer(c, s, 100));
	ASSERT_EQ(0, xfer(s, c, 100));
	close(c);
	close(s);
	close(l);
}

/*
 * A process in a namespace of its own, with accepted and connected
 * sockets in the tables, is killed: the namespace is dismantled.
 */
TEST(lest_netns_dismantle)
{
	int p[2], st, round;
	pid_t pid;
	char ch;

	for (round = 0; round < 3; round++) {
		ASSERT_EQ(0, pipe(p));
		pid = fork();
		ASSERT_LE(0, pid);
		if (pid == 0) {
			int l, c, s, i;

			if (lest_netns(1) || lib_sysctl_write(RFD_SYSCTL, 1))
				_exit(1);
			/* dual-stack: IPv4 and IPv6 connections */
			l = pcl_listener(AF_INET6, true, LIB_PORT, 64, 1);
			if (l < 0)
				_exit(2);
			for (i = 0; i < 16; i++) {
				c = lib_connect(i % 2 ? AF_INET6 : AF_INET,
						LIB_PORT, false);
				if (c < 0)
					_exit(3);
				s = accept(l, NULL, NULL);
				if (s < 0 || xfer(c, s, 10))
					_exit(4);
			}
			if (write(p[1], "r", 1) != 1)
				_exit(5);
			pause();
			_exit(0);
		}
		close(p[1]);
		ASSERT_EQ(1, read(p[0], &ch, 1));
		close(p[0]);
		ASSERT_EQ(0, kill(pid, SIGKILL));
		ASSERT_EQ(pid, waitpid(pid, &st, 0));
		ASSERT_TRUE(WIFSIGNALED(st));
	}
}

FIXTURE(lest_hotplug) {
	int cpus[MAX_CPUS];
	int n;
	int cpu;
	int offline;
	char online[64];
};

FIXTURE_SETUP(lest_hotplug)
{
	self->offline = 0;
	self->n = lib_cpus(self->cpus, MAX_CPUS);
	ASSERT_LT(0, self->n);
	ASSERT_EQ(0, lest_netns(2));
	if (self->n < 2)
		SKIP(return, "needs two CPUs");
	self->cpu = self->cpus[self->n - 1];
	snprintf(self->online, sizeof(self->online),
		 "/sys/devices/system/cpu/cpu%d/online", self->cpu);
	if (access(self->online, W_OK))
		SKIP(return, "%s: %s", self->online, strerror(errno));
	if (lib_sysctl_read(self->online) != 1)
		SKIP(return, "cpu%d is not online", self->cpu);
}

FIXTURE_TEARDOWN_PARENT(lest_hotplug)
{
	if (self->offline && lib_sysctl_write(self->online, 1))
		TH_LOG("could not bring cpu%d back online: %s", self->cpu,
		       strerror(errno));
}

TEST_F_TIMEOUT(lest_hotplug, owner_offline, 120)
{
	struct lest_counters a, b;
	int l, c[4], s[4], j;

	l = pcl_listener(AF_INET, false, LIB_PORT, 16, 1);
	ASSERT_LE(0, l);
	ASSERT_EQ(0, lib_pin(self->cpu));
	for (j = 0; j < 4; j++) {
		c[j] = lib_connect(AF_INET, LIB_PORT, false);
		ASSERT_LE(0, c[j]);
		s[j] = accept(l, NULL, NULL);
		ASSERT_LE(0, s[j]);
	}
	ASSERT_EQ(0, lib_pin(self->cpus[0]));
	self->offline = 1;
	ASSERT_EQ(0, lib_sysctl_write(self->online, 0));
	ASSERT_EQ(0, lest_read(&a));
	/*
	 * Looked up on cpus[0]: not in its table, found in ehash (its table
	 * is empty: looked up in ehash alone, not counted as a miss).
	 */
	for (j = 0; j < 4; j++) {
		ASSERT_EQ(0, xfer(c[j], s[j], 100));
		ASSERT_EQ(0, xfer(s[j], c[j], 100));
	}
	ASSERT_EQ(0, lest_read(&b));
	EXPECT_EQ(0, b.hits - a.hits);
	ASSERT_EQ(0, lib_sysctl_write(self->online, 1));
	self->offline = 0;
	ASSERT_EQ(0, lib_pin(self->cpu));
	ASSERT_EQ(0, lest_read(&a));
	for (j = 0; j < 4; j++)
		ASSERT_EQ(0, xfer(c[j], s[j], 100));
	ASSERT_EQ(0, lest_read(&b));
	EXPECT_LE(4, b.hits - a.hits);
	EXPECT_EQ(0, b.mismatches);
	for (j = 0; j < 4; j++) {
		close(c[j]);
		close(s[j]);
	}
	close(l);
}

TEST(sysctl)
{
	ASSERT_EQ(0, lib_netns_enter());
	EXPECT_EQ(0, lib_sysctl_write(LEST_SYSCTL, 2));
	EXPECT_EQ(2, lib_sysctl_read(LEST_SYSCTL));
	EXPECT_EQ(0, lib_sysctl_write(LEST_SYSCTL, 1));
	EXPECT_EQ(1, lib_sysctl_read(LEST_SYSCTL));
	EXPECT_EQ(-1, lib_sysctl_write(LEST_SYSCTL, 3));
	EXPECT_EQ(1, lib_sysctl_read(LEST_SYSCTL));
	EXPECT_EQ(0, lib_sysctl_write(LEST_SYSCTL, 0));
	EXPECT_EQ(0, lib_sysctl_read(LEST_SYSCTL));
}

TEST_HARNESS_MAIN
