/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the TCP listen/accept tests in this directory: a private
 * network namespace per test, loopback addresses for both families, and
 * readers for the per-netns /proc/net counters the tests assert on.
 *
 * Everything here returns -1 (with errno set) or a negative value on error,
 * so that callers can ASSERT on the result; nothing here asserts itself.
 */
#ifndef LISTEN_LIB_H
#define LISTEN_LIB_H

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

/* How long to wait for asynchronous kernel state before giving up. */
#define LIB_DEADLINE_MS		15000

/* A fixed port is fine: every test runs in a netns of its own. */
#define LIB_PORT		4242

static inline uint64_t lib_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A short pause between two looks at kernel state (not a wait on its own). */
/* *ts = CLOCK_REALTIME now + timeout_ms: a deadline for pthread timed waits. */
static inline void lib_deadline_ts(struct timespec *ts, int timeout_ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += timeout_ms / 1000;
	ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

static inline void lib_tick(void)
{
	struct timespec ts = { .tv_nsec = 1000000 };

	nanosleep(&ts, NULL);
}

/*
 * The same, growing from 0.1 ms to 16 ms over successive calls, for state
 * that is costly to read (/proc/net/tcp walks the whole established hash).
 */
static inline void lib_backoff(long *us)
{
	struct timespec ts;

	if (*us < 100)
		*us = 100;
	ts.tv_sec = 0;
	ts.tv_nsec = *us * 1000;
	nanosleep(&ts, NULL);
	if (*us < 16000)
		*us *= 2;
}

/*
 * base * $MP_TEST_SCALE (a positive number, default 1), never below min:
 * lets slow emulated guests run the same tests with fewer connections.
 */
static inline int lib_scaled(int base, int min)
{
	const char *s = getenv("MP_TEST_SCALE");
	double f = s ? strtod(s, NULL) : 1.0;
	double n;

	if (!(f > 0))
		f = 1.0;
	n = base * f;
	if (n < min)
		return min;
	if (n > 1000000)
		return 1000000;
	return (int)n;
}

/*
 * Move the calling process into a new network namespace with lo up.
 * Returns 0, or -1 with errno set (EPERM when not privileged).
 */
static inline int lib_netns_enter(void)
{
	struct ifreq ifr;
	int fd, ret;

	if (unshare(CLONE_NEWNET))
		return -1;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	ret = ioctl(fd, SIOCGIFFLAGS, &ifr);
	if (!ret) {
		ifr.ifr_flags |= IFF_UP;
		ret = ioctl(fd, SIOCSIFFLAGS, &ifr);
	}
	if (ret) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	close(fd);
	return 0;
}

/* Fill *ss with the loopback address of family and port; returns its length. */
static inline socklen_t lib_lo_addr(int family, uint16_t port,
				    struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

		a->sin6_family = AF_INET6;
		a->sin6_addr = in6addr_loopback;
		a->sin6_port = htons(port);
		return sizeof(*a);
	}
	((struct sockaddr_in *)ss)->sin_family = AF_INET;
	((struct sockaddr_in *)ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	((struct sockaddr_in *)ss)->sin_port = htons(port);
	return sizeof(struct sockaddr_in);
}

/* Port of a sockaddr_in/in6, in host order. */
static inline int lib_addr_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	return -1;
}

/* Local port of a socket, or -1. */
static inline int lib_sock_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len))
		return -1;
	return lib_addr_port(&ss);
}

/* Same family, address and port. */
static inline bool lib_addr_eq(const struct sockaddr_storage *a,
			       const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

		return x->sin6_port == y->sin6_port &&
		       !memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr));
	}
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

		return x->sin_port == y->sin_port &&
		       x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	return false;
}

/*
 * The address a socket of family sees for *ss: IPv4 addresses become
 * v4-mapped IPv6 ones (::ffff:a.b.c.d) for AF_INET6, as on a dual-stack
 * listener.
 */
static inline void lib_addr_as(int family, const struct sockaddr_storage *ss,
			       struct sockaddr_storage *out)
{
	const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
	struct sockaddr_in6 *b = (struct sockaddr_in6 *)out;

	if (family != AF_INET6 || ss->ss_family != AF_INET) {
		memcpy(out, ss, sizeof(*out));
		return;
	}
	memset(out, 0, sizeof(*out));
	b->sin6_family = AF_INET6;
	b->sin6_port = a->sin_port;
	b->sin6_addr.s6_addr[10] = 0xff;
	b->sin6_addr.s6_addr[11] = 0xff;
	memcpy(&b->sin6_addr.s6_addr[12], &a->sin_addr, 4);
}

/*
 * A TCP listener on the loopback address of family (or on the wildcard
 * address if any: for AF_INET6 a dual-stack listener, which also takes
 * IPv4 connections), port (0: ephemeral), with backlog; type_flags
 * (SOCK_NONBLOCK, ...) go to socket().
 */
static inline int lib_listener_on(int family, bool any, uint16_t port,
				  int backlog, int type_flags)
{
	struct sockaddr_storage ss;
	socklen_t len = lib_lo_addr(family, port, &ss);
	int fd, one = 1, zero = 0;

	if (any && family == AF_INET6)
		((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_any;
	else if (any)
		((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(INADDR_ANY);

	fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | type_flags, 0);
	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    (any && family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero))) ||
	    bind(fd, (struct sockaddr *)&ss, len) || listen(fd, backlog)) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* A TCP listener on the loopback address of family: see lib_listener_on(). */
static inline int lib_listener(int family, uint16_t port, int backlog,
			       int type_flags)
{
	return lib_listener_on(family, false, port, backlog, type_flags);
}

/*
 * Connect a new TCP socket to loopback:port.  Blocking: returns once the
 * handshake is done.  Non-blocking: returns right after the SYN is sent.
 */
static inline int lib_connect(int family, uint16_t port, bool nonblock)
{
	struct sockaddr_storage ss;
	socklen_t len = lib_lo_addr(family, port, &ss);
	int fd;

	fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC |
			    (nonblock ? SOCK_NONBLOCK : 0), 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&ss, len) &&
	    !(nonblock && errno == EINPROGRESS)) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* TCP state (TCP_ESTABLISHED, ...) of a socket, or -1. */
static inline int lib_tcp_state(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len))
		return -1;
	return ti.tcpi_state;
}

static inline int lib_getsockopt_int(int fd, int level, int name)
{
	int v = -1;
	socklen_t len = sizeof(v);

	if (getsockopt(fd, level, name, &v, &len))
		return -1;
	return v;
}

/*
 * Wait until fd polls with any of events, up to timeout_ms.
 * Returns the revents seen (0 on timeout), or -1.
 */
static inline int lib_poll1(int fd, short events, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	uint64_t end = lib_now_ms() + timeout_ms;
	int ret;

	for (;;) {
		int left = (int)(end - lib_now_ms());

		ret = poll(&pfd, 1, left > 0 ? left : 0);
		if (ret >= 0)
			return ret ? pfd.revents : 0;
		if (errno != EINTR)
			return -1;
	}
}

/*
 * Wait until fd, polled for events, reports all bits of want (POLLERR and
 * POLLHUP need not be asked for); returns the revents seen last, or -1.
 */
static inline int lib_wait_revents(int fd, short events, int want,
				   int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	uint64_t end = lib_now_ms() + timeout_ms;

	for (;;) {
		int left = (int)(end - lib_now_ms());

		pfd.revents = 0;
		if (poll(&pfd, 1, left > 0 ? left : 0) < 0 && errno != EINTR)
			return -1;
		if ((pfd.revents & want) == want || lib_now_ms() >= end)
			return pfd.revents;
		lib_tick();
	}
}

/* The listener rows of one port in /proc/net/tcp{,6} (this netns). */
struct lib_listen_row {
	int rows;		/* LISTEN rows with this local port */
	unsigned int tx_queue;	/* of the last row seen */
	unsigned int rx_queue;	/* of the last row seen: the accept queue */
};

static inline int lib_proc_listen_row(int family, uint16_t port,
				      struct lib_listen_row *r)
{
	const char *path = family == AF_INET6 ? "/proc/net/tcp6" : "/proc/net/tcp";
	char line[512], laddr[64], raddr[64];
	unsigned int lport, rport, st, tx, rx;
	FILE *f;

	memset(r, 0, sizeof(*r));
	f = fopen(path, "re");
	if (!f)
		return -1;
	if (!fgets(line, sizeof(line), f)) {	/* header */
		fclose(f);
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, " %*d: %63[0-9A-Fa-f]:%x %63[0-9A-Fa-f]:%x %x %x:%x",
			   laddr, &lport, raddr, &rport, &st, &tx, &rx) != 7)
			continue;
		if (st != 0x0A || lport != port)
			continue;
		r->rows++;
		r->tx_queue = tx;
		r->rx_queue = rx;
	}
	fclose(f);
	return 0;
}

/*
 * Accept queue length and backlog of a listener, from TCP_INFO (where 6.12
 * puts them in tcpi_unacked and tcpi_sacked for TCP_LISTEN sockets).
 */
static inline int lib_acceptq(int l, unsigned int *queued, unsigned int *backlog)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	if (getsockopt(l, IPPROTO_TCP, TCP_INFO, &ti, &len))
		return -1;
	if (ti.tcpi_state != TCP_LISTEN) {
		errno = EINVAL;
		return -1;
	}
	if (queued)
		*queued = ti.tcpi_unacked;
	if (backlog)
		*backlog = ti.tcpi_sacked;
	return 0;
}

/*
 * Wait until the accept queue of listener l holds n connections; returns
 * the last length seen (n on success), or -1.
 */
static inline int lib_wait_queued(int l, unsigned int n, int timeout_ms)
{
	uint64_t end = lib_now_ms() + timeout_ms;
	unsigned int q;
	long us = 0;

	for (;;) {
		if (lib_acceptq(l, &q, NULL))
			return -1;
		if (q == n || lib_now_ms() >= end)
			return q;
		lib_backoff(&us);
	}
}

/*
 * "PROTO: inuse N" from /proc/net/sockstat (TCP) or sockstat6 (TCP6):
 * hashed TCP sockets of this netns (listeners and connections).
 */
static inline long lib_sockstat_inuse(const char *file, const char *proto)
{
	char line[256], tag[32];
	long v = -1, n;
	FILE *f = fopen(file, "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%31s inuse %ld", tag, &n) == 2 &&
		    strlen(tag) == strlen(proto) + 1 &&
		    !strncmp(tag, proto, strlen(proto)) &&
		    tag[strlen(proto)] == ':') {
			v = n;
			break;
		}
	}
	fclose(f);
	return v;
}

/* IPv4 plus IPv6 TCP sockets in use in this netns, or -1. */
static inline long lib_tcp_inuse(void)
{
	long v4 = lib_sockstat_inuse("/proc/net/sockstat", "TCP");
	long v6 = lib_sockstat_inuse("/proc/net/sockstat6", "TCP6");

	if (v4 < 0)
		return -1;
	return v4 + (v6 > 0 ? v6 : 0);
}

/* "sockets: used" of /proc/net/sockstat (this netns), or -1. */
static inline long lib_sockets_used(void)
{
	char line[256];
	long v = -1;
	FILE *f = fopen("/proc/net/sockstat", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "sockets: used %ld", &v) == 1)
			break;
	fclose(f);
	return v;
}

/* Poll @get until it returns @want or @timeout_ms pass; its last value. */
static inline long lib_wait_count(long (*get)(void), long want, int timeout_ms)
{
	uint64_t end = lib_now_ms() + timeout_ms;
	long v, us = 0;

	for (;;) {
		v = get();
		if (v == want || v < 0 || lib_now_ms() >= end)
			return v;
		lib_backoff(&us);
	}
}

/* A TcpExt counter from /proc/net/netstat (this netns), or -1. */
static inline long long lib_tcpext(const char *field)
{
	char names[8192], values[8192];
	long long v = -1;
	FILE *f = fopen("/proc/net/netstat", "re");

	if (!f)
		return -1;
	while (fgets(names, sizeof(names), f) && fgets(values, sizeof(values), f)) {
		char *sn, *sv, *n, *val;

		if (strncmp(names, "TcpExt:", 7))
			continue;
		n = strtok_r(names + 7, " \n", &sn);
		val = strtok_r(values + 7, " \n", &sv);
		while (n && val) {
			if (!strcmp(n, field)) {
				v = atoll(val);
				break;
			}
			n = strtok_r(NULL, " \n", &sn);
			val = strtok_r(NULL, " \n", &sv);
		}
		break;
	}
	fclose(f);
	return v;
}

/*
 * Wait until TcpExt counter field exceeds base; returns the value seen
 * last (> base on success), or -1 if it cannot be read.
 */
static inline long long lib_wait_tcpext_above(const char *field, long long base,
					      int timeout_ms)
{
	uint64_t end = lib_now_ms() + timeout_ms;
	long long v;
	long us = 0;

	for (;;) {
		v = lib_tcpext(field);
		if (v < 0 || v > base || lib_now_ms() >= end)
			return v;
		lib_backoff(&us);
	}
}

/* Read/write an integer sysctl file; -1 on error. */
static inline long lib_sysctl_read(const char *path)
{
	long v = -1;
	FILE *f = fopen(path, "re");

	if (!f)
		return -1;
	if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

static inline int lib_sysctl_write(const char *path, long v)
{
	FILE *f = fopen(path, "we");
	int ret;

	if (!f)
		return -1;
	ret = fprintf(f, "%ld\n", v) < 0;
	ret |= fclose(f) != 0;
	return ret ? -1 : 0;
}

/* Make room for at least n open files. */
static inline int lib_raise_nofile(rlim_t n)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return -1;
	if (rl.rlim_cur >= n)
		return 0;
	if (rl.rlim_max < n)
		rl.rlim_max = n;
	rl.rlim_cur = n;
	return setrlimit(RLIMIT_NOFILE, &rl);
}

/*
 * The CPUs this process may run on, up to max; returns how many.
 */
static inline int lib_cpus(int *cpus, int max)
{
	cpu_set_t set;
	int n = 0, i;

	if (sched_getaffinity(0, sizeof(set), &set))
		return -1;
	for (i = 0; i < CPU_SETSIZE && n < max; i++)
		if (CPU_ISSET(i, &set))
			cpus[n++] = i;
	return n;
}

/*
 * nr_cpu_ids: one more than the last possible CPU (the last number of
 * /sys/devices/system/cpu/possible, e.g. "0-3" or "0,2-5"), or -1.
 */
static inline int lib_nr_cpu_ids(void)
{
	FILE *f = fopen("/sys/devices/system/cpu/possible", "re");
	char buf[256], *p;

	if (!f)
		return -1;
	if (!fgets(buf, sizeof(buf), f)) {
		fclose(f);
		return -1;
	}
	fclose(f);
	p = buf + strlen(buf);
	while (p > buf && p[-1] != '-' && p[-1] != ',')
		p--;
	return (int)strtol(p, NULL, 10) + 1;
}

/* Pin the calling thread to one CPU. */
static inline int lib_pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set);
}

/*
 * Wait until thread tid of this process sleeps inside system call nr1 or
 * nr2 (read from /proc/self/task/TID/syscall, which names the call only
 * while the thread is off the CPU).  Where that file is missing, settle
 * for the thread sleeping ('S' in .../stat).  Returns 0, or -1 on timeout.
 */
static inline int lib_wait_blocked(pid_t tid, long nr1, long nr2,
				   int timeout_ms)
{
	uint64_t end = lib_now_ms() + timeout_ms;
	char path[64], buf[512];

	for (;;) {
		FILE *f;
		long nr;

		snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", tid);
		f = fopen(path, "re");
		if (f) {
			if (fgets(buf, sizeof(buf), f) &&
			    sscanf(buf, "%ld", &nr) == 1 &&
			    (nr == nr1 || nr == nr2)) {
				fclose(f);
				return 0;
			}
			fclose(f);
		} else {
			char *p;

			snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
			f = fopen(path, "re");
			if (!f)
				return -1;
			p = fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
			fclose(f);
			if (p && p[1] == ' ' && p[2] == 'S')
				return 0;
		}
		if (lib_now_ms() >= end)
			return -1;
		lib_tick();
	}
}

#endif /* LISTEN_LIB_H */
