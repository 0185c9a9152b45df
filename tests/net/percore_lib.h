/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers for the per-core listen tests (percore_*.c): the sysctl, the
 * socket option and the counters in /proc/net/tcp_percore_listen.  Like
 * listen_lib.h, nothing here asserts; errors come back as -1 with errno.
 */
#ifndef PERCORE_LIB_H
#define PERCORE_LIB_H

#include "listen_lib.h"

#ifndef TCP_PERCORE_LISTEN
#define TCP_PERCORE_LISTEN	64	/* include/uapi/linux/tcp.h of our tree */
#endif

#define PCL_SYSCTL	"/proc/sys/net/ipv4/tcp_percore_listen"
#define PCL_PROC	"/proc/net/tcp_percore_listen"
#define PCL_MAX_CPUS	256

struct pcl_counters {
	long long local_accepts;
	long long steals;
	long long overflows;
	long long remote_completions;
};

/* Set net.ipv4.tcp_percore_listen of the current netns (0 or 1). */
static inline int pcl_set_mode(int mode)
{
	return lib_sysctl_write(PCL_SYSCTL, mode);
}

/* TCP_PERCORE_LISTEN of fd: 1, 0, -1 (sysctl decides); -2 on error. */
static inline int pcl_get(int fd)
{
	int v;
	socklen_t len = sizeof(v);

	if (getsockopt(fd, IPPROTO_TCP, TCP_PERCORE_LISTEN, &v, &len))
		return -2;
	return v;
}

static inline int pcl_set(int fd, int v)
{
	return setsockopt(fd, IPPROTO_TCP, TCP_PERCORE_LISTEN, &v, sizeof(v));
}

/*
 * Counters of this netns: cpu >= 0 for one CPU's row, -1 for the "all"
 * row.  Returns 0, or -1 (errno ENOENT when the row is missing).
 */
static inline int pcl_counters(int cpu, struct pcl_counters *c)
{
	char line[256], key[32], want[32];
	FILE *f = fopen(PCL_PROC, "re");
	int found = 0;

	if (!f)
		return -1;
	if (cpu < 0)
		snprintf(want, sizeof(want), "all");
	else
		snprintf(want, sizeof(want), "%d", cpu);
	if (!fgets(line, sizeof(line), f) ||
	    strcmp(line, "cpu local_accepts steals overflows remote_completions\n")) {
		fclose(f);
		errno = EPROTO;
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%31s %lld %lld %lld %lld", key,
			   &c->local_accepts, &c->steals, &c->overflows,
			   &c->remote_completions) == 5 &&
		    !strcmp(key, want)) {
			found = 1;
			break;
		}
	}
	fclose(f);
	if (!found) {
		errno = ENOENT;
		return -1;
	}
	return 0;
}

/*
 * As lib_listener_on() (SO_REUSEADDR; dual-stack for AF_INET6 on any),
 * with TCP_PERCORE_LISTEN set to opt before listen(), or left to the
 * sysctl when opt < 0.
 */
static inline int pcl_listener(int family, bool any, uint16_t port,
			       int backlog, int opt)
{
	struct sockaddr_storage ss;
	socklen_t len = lib_lo_addr(family, port, &ss);
	int one = 1, zero = 0, fd, e;

	if (any) {
		if (family == AF_INET6)
			((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_any;
		else
			((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(INADDR_ANY);
	}
	fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    (any && family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero))) ||
	    (opt >= 0 && pcl_set(fd, opt)) ||
	    bind(fd, (struct sockaddr *)&ss, len) || listen(fd, backlog))
		goto err;
	return fd;
err:
	e = errno;
	close(fd);
	errno = e;
	return -1;
}

#endif /* PERCORE_LIB_H */
