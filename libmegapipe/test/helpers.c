// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

int t_failed;
const char *t_name = "?";
int t_accept_result;
static int t_count;

void t_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
	va_list ap;

	printf("not ok %d - %s\n#   %s:%d: %s: ", ++t_count, t_name, file, line, cond);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	t_failed++;
}

void t_ok(const char *name)
{
	printf("ok %d - %s\n", ++t_count, name);
	fflush(stdout);
}

int t_done(void)
{
	printf("# %d checks, %d failed\n", t_count, t_failed);
	return t_failed ? 1 : 0;
}

long long t_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

struct mp_channel *t_channel(unsigned int cq_entries)
{
	struct mp_channel *mp = mp_create(0, cq_entries);

	if (!mp) {
		printf("Bail out! mp_create(0, %u): %s\n", cq_entries, strerror(errno));
		exit(1);
	}
	return mp;
}

bool t_feature(uint64_t feat)
{
	struct mp_channel *mp = t_channel(0);
	struct mp_info info;
	bool has = !mp_features(mp, &info) && (info.features & feat);

	mp_destroy(mp);
	return has;
}

bool t_has(uint64_t feat, const char *what)
{
	bool has = t_feature(feat);

	if (!has) {
		printf("ok %d - %s # SKIP backend without feature %#llx\n", ++t_count, what,
		       (unsigned long long)feat);
		fflush(stdout);
	}
	return has;
}

int t_listener(struct sockaddr_in *addr)
{
	socklen_t len = sizeof(*addr);
	int one = 1, fd;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memset(addr, 0, sizeof(*addr));
	addr->sin_family = AF_INET;
	addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)addr, sizeof(*addr)) || listen(fd, 1024) ||
	    getsockname(fd, (struct sockaddr *)addr, &len)) {
		printf("Bail out! listener: %s\n", strerror(errno));
		exit(1);
	}
	return fd;
}

int t_client(const struct sockaddr_in *addr)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0 || connect(fd, (const struct sockaddr *)addr, sizeof(*addr))) {
		printf("Bail out! client connect: %s\n", strerror(errno));
		exit(1);
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

int t_next(struct mp_channel *mp, struct mp_completion *c, int timeout_ms)
{
	int ret = mp_dispatch(mp, c, timeout_ms);

	if (ret == 1)
		return 1;
	printf("#   mp_dispatch: %s\n", ret ? strerror(errno) : "timed out");
	return 0;
}

int t_pair(struct mp_channel *mp, int *lh, int *h, int *cfd,
	   unsigned int accept_flags)
{
	struct sockaddr_in addr;
	struct mp_completion c;
	int lfd = t_listener(&addr);

	*lh = mp_register(mp, lfd, 1000, NULL, 0);
	if (*lh < 0 || mp_accept(mp, *lh, 1, accept_flags)) {
		printf("#   t_pair: register/accept: %s\n", strerror(errno));
		return -1;
	}
	*cfd = t_client(&addr);
	if (!t_next(mp, &c, 2000) || c.op != MP_OP_ACCEPT || c.result < 0) {
		printf("#   t_pair: no accept completion (op %d result %d)\n", c.op, c.result);
		return -1;
	}
	*h = c.new_handle;
	t_accept_result = c.result;
	return 0;
}

int t_read_full(int fd, void *buf, size_t n)
{
	size_t got = 0;
	ssize_t r;

	while (got < n) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (poll(&p, 1, 2000) != 1)
			return -1;
		r = read(fd, (char *)buf + got, n - got);
		if (r <= 0)
			return -1;
		got += r;
	}
	return 0;
}

void t_skip(const char *what, const char *why)
{
	printf("ok %d - %s # SKIP %s\n", ++t_count, what, why);
}
