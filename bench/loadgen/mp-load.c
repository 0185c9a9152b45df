// SPDX-License-Identifier: GPL-2.0
/*
 * mp-load: closed-loop load generator for the baseline servers.
 *
 * Each thread drives its share of --conns connections from its own epoll
 * instance (edge-triggered, non-blocking sockets).  Operations are taken
 * from a counter shared by all threads, so exactly --ops operations run
 * however the threads are balanced.  An operation is, in short mode,
 * connect + one request + the whole response + close, and in persistent
 * mode one request/response on an already open connection.
 *
 * Every response is checked: echo against the exact bytes sent (which
 * carry the operation number, so a response to another request is a
 * mismatch), http against status 200, Content-Length and the body in
 * http_body.h.  Any failure makes the run exit 1.
 *
 * Who closes first in short mode: http asks "Connection: close" and waits
 * for the server's FIN before closing, so TIME_WAIT stays on the server
 * (as with real HTTP/1.1 servers).  The echo server cannot know where a
 * message ends, so there the client closes first and its ports go through
 * TIME_WAIT; long echo runs need net.ipv4.tcp_tw_reuse=1 and a wide
 * net.ipv4.ip_local_port_range.  A connect() that finds no free port
 * (EADDRNOTAVAIL) is counted as "addr_exhausted".  The client never
 * aborts with RST (SO_LINGER 0): that would change the server's work.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../insncount/marker.h"
#include "../servers/cpulist.h"
#include "../servers/http_body.h"

#define MAX_EVENTS	256
#define SCAN_NS		(100 * 1000 * 1000ull)	/* timeout scan period */
#define HTTP_REQ_MAX	256
#define HTTP_RSP_MAX	1024
#define NODELAY_SIZE	1024	/* larger requests may be split: no Nagle */

/* Latency histogram: exact below 64 ns, then 32 buckets per power of 2. */
#define HIST_SUB_BITS	5
#define HIST_BUCKETS	((64 - HIST_SUB_BITS + 1) << HIST_SUB_BITS)

enum mode { MODE_SHORT, MODE_PERSISTENT };
enum proto { PROTO_ECHO, PROTO_HTTP };
enum phase { PH_OPEN, PH_WARMUP, PH_MEASURE, PH_NR };
enum fail { F_CONNECT, F_ADDR, F_RESET, F_TIMEOUT, F_SHORT, F_MISMATCH,
	    F_IO, F_NR };

static const char *const fail_names[F_NR] = {
	"connect", "addr_exhausted", "reset", "timeout", "short_read",
	"mismatch", "io",
};

enum cstate {
	CS_IDLE,
	CS_CONNECTING,
	CS_SENDING,
	CS_RECEIVING,
	CS_DRAINING,		/* http short: response done, awaiting FIN */
};

struct conn {
	int fd;			/* -1: not connected */
	enum cstate st;
	bool in_op;		/* an operation, not just the up-front connect */
	bool measured;
	uint64_t opno;
	uint64_t t_start;
	uint64_t deadline;
	char *req;
	size_t req_len;
	size_t sent;
	char *rsp;
	size_t rsp_cap;
	size_t rcvd;
};

struct worker {
	int idx;
	pthread_t tid;
	int ep;
	struct conn *conns;
	unsigned int nconns;
	struct conn **idle;		/* stack of idle connections */
	unsigned int nidle;
	enum phase phase;
	bool drained;			/* no operation left to take */
	uint64_t now;
	uint64_t next_scan;
	uint64_t fails[F_NR];
	uint64_t cpu_ns;		/* thread CPU time, measured phase */
	uint64_t max_ns;		/* slowest measured operation */
	uint64_t slow;			/* measured operations over --slow-ms */
	uint64_t hist[HIST_BUCKETS];
};

static struct {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char host[INET6_ADDRSTRLEN + 8];	/* the Host: header */
	int port;
	enum mode mode;
	enum proto proto;
	unsigned int conns;
	uint64_t ops;
	uint64_t warmup;
	unsigned int size;
	int threads;
	int *cpus;
	int ncpus;
	bool mark;
	bool json;
	uint64_t timeout_ns;
	uint64_t slow_ns;		/* --slow-ms; 0: not counted */
} o;

static atomic_uint_fast64_t next_op[PH_NR];
static pthread_barrier_t barrier;

static void die(const char *fmt, ...)
	__attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
	int err = errno;
	va_list ap;

	fprintf(stderr, "mp-load: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, ": %s\n", strerror(err));
	exit(2);
}

static uint64_t clock_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static uint64_t now_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

/* ---- latency histogram ------------------------------------------------ */

static unsigned int hist_bucket(uint64_t ns)
{
	unsigned int shift;

	if (ns < (2u << HIST_SUB_BITS))
		return ns;
	shift = 63 - __builtin_clzll(ns) - HIST_SUB_BITS;
	return (shift << HIST_SUB_BITS) + (ns >> shift);
}

/* The middle of the bucket's range, in ns. */
static double hist_value(unsigned int b)
{
	unsigned int shift;

	if (b < (2u << HIST_SUB_BITS))
		return b;
	shift = (b >> HIST_SUB_BITS) - 1;
	return (double)((uint64_t)(b - (shift << HIST_SUB_BITS)) << shift) +
	       (double)(1ull << shift) / 2;
}

static double hist_percentile_us(const uint64_t *h, double p)
{
	uint64_t total = 0, rank, sum = 0;
	unsigned int b;

	for (b = 0; b < HIST_BUCKETS; b++)
		total += h[b];
	if (!total)
		return 0;
	rank = ceil(p * total);
	for (b = 0; b < HIST_BUCKETS; b++) {
		sum += h[b];
		if (sum >= rank)
			break;
	}
	return hist_value(b) / 1000;
}

/* ---- requests and responses ------------------------------------------- */

static void build_request(struct conn *c)
{
	char tag[32];
	size_t i, n;

	if (o.proto == PROTO_HTTP) {
		c->req_len = snprintf(c->req, HTTP_REQ_MAX,
				      "GET /op/%llu HTTP/1.1\r\nHost: %s\r\n%s\r\n",
				      (unsigned long long)c->opno, o.host,
				      o.mode == MODE_SHORT ? "Connection: close\r\n" : "");
		return;
	}
	/* "op=<n>:" followed by a pattern that also depends on n */
	n = snprintf(tag, sizeof(tag), "op=%llu:", (unsigned long long)c->opno);
	for (i = 0; i < o.size; i++)
		c->req[i] = i < n ? tag[i] : (char)('a' + (c->opno + i) % 26);
	c->req_len = o.size;
}

/* Content-Length of the head [p, end), or -1. */
static long http_content_length(const char *p, const char *end)
{
	const char *eol;
	char *num_end;
	long v;

	for (; p < end; p = eol + 1) {
		eol = memchr(p, '\n', end - p);
		if (!eol)
			break;
		if (eol - p < 15 || strncasecmp(p, "Content-Length:", 15))
			continue;
		v = strtol(p + 15, &num_end, 10);
		return num_end == p + 15 || v < 0 ? -1 : v;
	}
	return -1;
}

/* 1: the response is complete and right, 0: incomplete, -1: wrong. */
static int check_response(struct conn *c)
{
	const char *head_end;
	size_t head_len;

	if (o.proto == PROTO_ECHO) {
		if (c->rcvd < c->req_len)
			return 0;
		return memcmp(c->rsp, c->req, c->req_len) ? -1 : 1;
	}

	head_end = memmem(c->rsp, c->rcvd, "\r\n\r\n", 4);
	if (!head_end)
		return c->rcvd < c->rsp_cap ? 0 : -1;
	head_len = head_end + 4 - c->rsp;
	if (c->rcvd < 13 || memcmp(c->rsp, "HTTP/1.", 7) ||
	    memcmp(c->rsp + 8, " 200 ", 5) ||
	    http_content_length(c->rsp, head_end + 2) != HTTP_BODY_LEN)
		return -1;
	if (c->rcvd < head_len + HTTP_BODY_LEN)
		return 0;
	if (c->rcvd > head_len + HTTP_BODY_LEN)
		return -1;
	return memcmp(c->rsp + head_len, HTTP_BODY, HTTP_BODY_LEN) ? -1 : 1;
}

/* ---- connections ------------------------------------------------------ */

static bool claim(struct worker *w, uint64_t *opno)
{
	const uint64_t limit[PH_NR] = { 0, o.warmup, o.ops };
	uint64_t n;

	if (w->drained)
		return false;
	n = atomic_fetch_add_explicit(&next_op[w->phase], 1,
				      memory_order_relaxed);
	if (n >= limit[w->phase]) {
		w->drained = true;
		return false;
	}
	/* number ops uniquely across phases, so echo payloads never repeat */
	*opno = w->phase == PH_MEASURE ? o.warmup + n : n;
	return true;
}

static void conn_idle(struct worker *w, struct conn *c)
{
	c->st = CS_IDLE;
	c->in_op = false;
	w->idle[w->nidle++] = c;
}

static void conn_drop(struct conn *c)
{
	close(c->fd);
	c->fd = -1;
}

static void op_fail(struct worker *w, struct conn *c, enum fail kind)
{
	w->fails[kind]++;
	conn_drop(c);
	conn_idle(w, c);
}

static void op_fail_errno(struct worker *w, struct conn *c, int err)
{
	op_fail(w, c, err == ECONNRESET || err == EPIPE ? F_RESET : F_IO);
}

static void op_done(struct worker *w, struct conn *c)
{
	if (o.mode == MODE_SHORT)
		conn_drop(c);
	conn_idle(w, c);
}

static void conn_connect(struct worker *w, struct conn *c)
{
	struct epoll_event ev = {
		.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
		.data.ptr = c,
	};
	int one = 1;

	c->fd = socket(o.addr.ss_family,
		       SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		w->fails[F_IO]++;
		conn_idle(w, c);
		return;
	}
	if (o.proto == PROTO_ECHO && o.size > NODELAY_SIZE &&
	    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)))
		die("setsockopt(TCP_NODELAY)");
	if (connect(c->fd, (struct sockaddr *)&o.addr, o.addrlen) &&
	    errno != EINPROGRESS) {
		op_fail(w, c, errno == EADDRNOTAVAIL ? F_ADDR : F_CONNECT);
		return;
	}
	/* registered only now: an unconnected socket polls as EPOLLHUP */
	if (epoll_ctl(w->ep, EPOLL_CTL_ADD, c->fd, &ev))
		die("thread %d: epoll_ctl(ADD)", w->idx);
	c->st = CS_CONNECTING;
}

static void op_start(struct worker *w, struct conn *c, uint64_t opno)
{
	ssize_t n;

	c->in_op = true;
	c->measured = w->phase == PH_MEASURE;
	c->opno = opno;
	build_request(c);
	c->sent = 0;
	c->rcvd = 0;
	c->t_start = now_ns();
	c->deadline = c->t_start + o.timeout_ns;
	if (c->fd < 0) {
		conn_connect(w, c);
		return;
	}
	c->st = CS_SENDING;
	n = send(c->fd, c->req, c->req_len, MSG_NOSIGNAL);
	if (n < 0 && errno != EAGAIN) {
		op_fail_errno(w, c, errno);
		return;
	}
	if (n > 0)
		c->sent = n;
	if (c->sent == c->req_len)
		c->st = CS_RECEIVING;
}

/*
 * Read what the event announced.  As in the servers' edge-triggered loop,
 * a read that returns less than asked drained the socket and later data
 * raises a new event, so we stop there, unless EPOLLRDHUP says the FIN is
 * already queued (it raises no event of its own).
 */
static void conn_recv(struct worker *w, struct conn *c, uint32_t events)
{
	bool more = events & EPOLLRDHUP;
	char scratch[64];
	size_t want;
	ssize_t n;
	int ok;

	for (;;) {
		if (c->st == CS_DRAINING) {
			n = recv(c->fd, scratch, sizeof(scratch), 0);
			if (n < 0 && errno == EAGAIN)
				return;
			if (n < 0)
				op_fail_errno(w, c, errno);
			else if (n > 0)		/* bytes after the response */
				op_fail(w, c, F_MISMATCH);
			else
				op_done(w, c);
			return;
		}

		want = (o.proto == PROTO_ECHO ? c->req_len : c->rsp_cap) - c->rcvd;
		n = recv(c->fd, c->rsp + c->rcvd, want, 0);
		if (n < 0) {
			if (errno != EAGAIN)
				op_fail_errno(w, c, errno);
			return;
		}
		if (n == 0) {
			op_fail(w, c, F_SHORT);
			return;
		}
		c->rcvd += n;
		ok = check_response(c);
		if (ok < 0) {
			op_fail(w, c, F_MISMATCH);
			return;
		}
		if (ok == 0) {
			if ((size_t)n < want && !more)
				return;
			continue;
		}
		if (c->measured) {
			uint64_t lat = now_ns() - c->t_start;

			w->hist[hist_bucket(lat)]++;
			if (lat > w->max_ns)
				w->max_ns = lat;
			if (o.slow_ns && lat > o.slow_ns)
				w->slow++;
		}
		if (o.mode == MODE_PERSISTENT || o.proto == PROTO_ECHO) {
			op_done(w, c);
			return;
		}
		c->st = CS_DRAINING;
		if (!more)
			return;
	}
}

static void conn_event(struct worker *w, struct conn *c, uint32_t events)
{
	socklen_t len = sizeof(int);
	int err = 0;
	ssize_t n;

	switch (c->st) {
	case CS_IDLE:
		return;
	case CS_CONNECTING:
		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len))
			err = errno;
		if (err) {
			op_fail(w, c, err == EADDRNOTAVAIL ? F_ADDR : F_CONNECT);
			return;
		}
		if (!c->in_op) {		/* persistent: opened up front */
			conn_idle(w, c);
			return;
		}
		c->st = CS_SENDING;
		/* fall through */
	case CS_SENDING:
		n = send(c->fd, c->req + c->sent, c->req_len - c->sent,
			 MSG_NOSIGNAL);
		if (n < 0) {
			if (errno != EAGAIN)
				op_fail_errno(w, c, errno);
			return;
		}
		c->sent += n;
		if (c->sent < c->req_len)
			return;
		c->st = CS_RECEIVING;
		if (!(events & EPOLLIN))
			return;
		/* fall through */
	case CS_RECEIVING:
	case CS_DRAINING:
		conn_recv(w, c, events);
		return;
	}
}

static void expire(struct worker *w)
{
	unsigned int i;

	for (i = 0; i < w->nconns; i++) {
		struct conn *c = &w->conns[i];

		if (c->st != CS_IDLE && w->now >= c->deadline)
			op_fail(w, c, F_TIMEOUT);
	}
}

/* Run operations of @phase until none is left and all are finished. */
static void run_phase(struct worker *w, enum phase phase)
{
	struct epoll_event evs[MAX_EVENTS];
	uint64_t opno;
	int i, n;

	w->phase = phase;
	w->drained = false;
	for (;;) {
		while (w->nidle && claim(w, &opno))
			op_start(w, w->idle[--w->nidle], opno);
		if (w->nidle == w->nconns)
			return;

		n = epoll_wait(w->ep, evs, MAX_EVENTS, SCAN_NS / 1000000);
		if (n < 0 && errno != EINTR)
			die("thread %d: epoll_wait", w->idx);
		for (i = 0; i < n; i++)
			conn_event(w, evs[i].data.ptr, evs[i].events);

		w->now = now_ns();
		if (w->now >= w->next_scan) {
			expire(w);
			w->next_scan = w->now + SCAN_NS;
		}
	}
}

static void open_conns(struct worker *w)
{
	uint64_t deadline = now_ns() + o.timeout_ns;
	struct conn *c;

	w->phase = PH_OPEN;
	while (w->nidle) {
		c = w->idle[--w->nidle];
		c->deadline = deadline;
		conn_connect(w, c);
	}
	run_phase(w, PH_OPEN);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	uint64_t cpu0;
	unsigned int i;
	int err;

	if (o.cpus) {
		err = cpulist_pin_self(o.cpus[w->idx % o.ncpus]);
		if (err) {
			errno = err;
			die("thread %d: pinning to CPU %d", w->idx,
			    o.cpus[w->idx % o.ncpus]);
		}
	}
	w->ep = epoll_create1(EPOLL_CLOEXEC);
	if (w->ep < 0)
		die("thread %d: epoll_create1", w->idx);
	w->now = now_ns();
	w->next_scan = w->now + SCAN_NS;

	if (o.mode == MODE_PERSISTENT)
		open_conns(w);
	run_phase(w, PH_WARMUP);
	pthread_barrier_wait(&barrier);		/* warm-up done everywhere */
	pthread_barrier_wait(&barrier);		/* clock and mark started */
	cpu0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
	run_phase(w, PH_MEASURE);
	w->cpu_ns = clock_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0;
	pthread_barrier_wait(&barrier);		/* clock and mark stopped */

	for (i = 0; i < w->nconns; i++)
		if (w->conns[i].fd >= 0)
			close(w->conns[i].fd);
	close(w->ep);
	return NULL;
}

static void worker_init(struct worker *w, int idx, unsigned int nconns)
{
	size_t req_cap = o.proto == PROTO_HTTP ? HTTP_REQ_MAX : o.size;
	size_t rsp_cap = o.proto == PROTO_HTTP ? HTTP_RSP_MAX : o.size;
	unsigned int i;

	w->idx = idx;
	w->nconns = nconns;
	w->conns = calloc(nconns, sizeof(*w->conns));
	w->idle = calloc(nconns, sizeof(*w->idle));
	if (!w->conns || !w->idle)
		die("allocating %u connections", nconns);
	for (i = 0; i < nconns; i++) {
		struct conn *c = &w->conns[i];

		c->fd = -1;
		c->req = malloc(req_cap);
		c->rsp = malloc(rsp_cap);
		if (!c->req || !c->rsp)
			die("allocating connection buffers");
		c->rsp_cap = rsp_cap;
		conn_idle(w, c);
	}
}

static void worker_free(struct worker *w)
{
	unsigned int i;

	for (i = 0; i < w->nconns; i++) {
		free(w->conns[i].req);
		free(w->conns[i].rsp);
	}
	free(w->conns);
	free(w->idle);
}

/* ---- options ---------------------------------------------------------- */

static void usage(int status)
{
	fprintf(status ? stderr : stdout,
		"usage: mp-load [--addr A] [--port P] [--mode short|persistent]\n"
		"               [--proto echo|http] [--conns N] [--ops M] [--size S]\n"
		"               [--threads T] [--cpus LIST] [--warmup W] [--timeout SEC]\n"
		"               [--slow-ms MS] [--mark] [--json]\n");
	exit(status);
}

static uint64_t parse_num(const char *opt, const char *s, uint64_t min,
			  uint64_t max)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v < min || v > max) {
		fprintf(stderr, "mp-load: invalid %s '%s' (expected %llu..%llu)\n",
			opt, s, (unsigned long long)min, (unsigned long long)max);
		exit(2);
	}
	return v;
}

static void parse_addr(const char *s)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)&o.addr;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&o.addr;

	memset(&o.addr, 0, sizeof(o.addr));
	if (inet_pton(AF_INET, s, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons(o.port);
		o.addrlen = sizeof(*in4);
		snprintf(o.host, sizeof(o.host), "%s:%d", s, o.port);
	} else if (inet_pton(AF_INET6, s, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(o.port);
		o.addrlen = sizeof(*in6);
		snprintf(o.host, sizeof(o.host), "[%s]:%d", s, o.port);
	} else {
		fprintf(stderr, "mp-load: invalid --addr '%s' (expected an IPv4 or IPv6 address)\n",
			s);
		exit(2);
	}
}

static void parse_args(int argc, char **argv)
{
	enum { O_ADDR = 256, O_PORT, O_MODE, O_PROTO, O_CONNS, O_OPS, O_SIZE,
	       O_THREADS, O_CPUS, O_WARMUP, O_MARK, O_JSON, O_TIMEOUT,
	       O_SLOW_MS, O_HELP };
	static const struct option longopts[] = {
		{ "addr",	required_argument, NULL, O_ADDR },
		{ "port",	required_argument, NULL, O_PORT },
		{ "mode",	required_argument, NULL, O_MODE },
		{ "proto",	required_argument, NULL, O_PROTO },
		{ "conns",	required_argument, NULL, O_CONNS },
		{ "ops",	required_argument, NULL, O_OPS },
		{ "size",	required_argument, NULL, O_SIZE },
		{ "threads",	required_argument, NULL, O_THREADS },
		{ "cpus",	required_argument, NULL, O_CPUS },
		{ "warmup",	required_argument, NULL, O_WARMUP },
		{ "mark",	no_argument,	   NULL, O_MARK },
		{ "json",	no_argument,	   NULL, O_JSON },
		{ "timeout",	required_argument, NULL, O_TIMEOUT },
		{ "slow-ms",	required_argument, NULL, O_SLOW_MS },
		{ "help",	no_argument,	   NULL, O_HELP },
		{ NULL, 0, NULL, 0 }
	};
	const char *addr = "127.0.0.1";
	double timeout = 10, slow_ms = 0;
	char *end;
	int c;

	o.port = 8080;
	o.mode = MODE_SHORT;
	o.proto = PROTO_ECHO;
	o.conns = 50;
	o.ops = 10000;
	o.size = 64;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case O_ADDR:
			addr = optarg;
			break;
		case O_PORT:
			o.port = parse_num("--port", optarg, 1, 65535);
			break;
		case O_MODE:
			if (!strcmp(optarg, "short"))
				o.mode = MODE_SHORT;
			else if (!strcmp(optarg, "persistent"))
				o.mode = MODE_PERSISTENT;
			else
				usage(2);
			break;
		case O_PROTO:
			if (!strcmp(optarg, "echo"))
				o.proto = PROTO_ECHO;
			else if (!strcmp(optarg, "http"))
				o.proto = PROTO_HTTP;
			else
				usage(2);
			break;
		case O_CONNS:
			o.conns = parse_num("--conns", optarg, 1, 1 << 20);
			break;
		case O_OPS:
			o.ops = parse_num("--ops", optarg, 1, UINT64_MAX / 4);
			break;
		case O_SIZE:
			o.size = parse_num("--size", optarg, 1, 1 << 20);
			break;
		case O_THREADS:
			o.threads = parse_num("--threads", optarg, 1, 1024);
			break;
		case O_CPUS:
			free(o.cpus);
			o.ncpus = cpulist_parse(optarg, &o.cpus);
			if (o.ncpus <= 0) {
				fprintf(stderr, "mp-load: invalid --cpus '%s' (expected e.g. 0-3 or 0,2)\n",
					optarg);
				exit(2);
			}
			break;
		case O_WARMUP:
			o.warmup = parse_num("--warmup", optarg, 0, UINT64_MAX / 4);
			break;
		case O_MARK:
			o.mark = true;
			break;
		case O_JSON:
			o.json = true;
			break;
		case O_TIMEOUT:
			timeout = strtod(optarg, &end);
			if (end == optarg || *end || !(timeout > 0)) {
				fprintf(stderr, "mp-load: invalid --timeout '%s' (expected seconds > 0)\n",
					optarg);
				exit(2);
			}
			break;
		case O_SLOW_MS:
			slow_ms = strtod(optarg, &end);
			if (end == optarg || *end || !(slow_ms > 0)) {
				fprintf(stderr, "mp-load: invalid --slow-ms '%s' (expected milliseconds > 0)\n",
					optarg);
				exit(2);
			}
			break;
		case O_HELP:
			usage(0);
			break;
		default:
			usage(2);
		}
	}
	if (optind < argc)
		usage(2);

	parse_addr(addr);
	o.timeout_ns = timeout * 1e9;
	o.slow_ns = slow_ms * 1e6;
	if (!o.threads)
		o.threads = o.cpus ? o.ncpus : 1;
	if (o.conns < (unsigned int)o.threads) {
		fprintf(stderr, "mp-load: --conns %u is less than --threads %d\n",
			o.conns, o.threads);
		exit(2);
	}
}

/* ---- main ------------------------------------------------------------- */

static void report(struct worker *ws, uint64_t elapsed_ns)
{
	uint64_t hist[HIST_BUCKETS] = { 0 };
	uint64_t fails[F_NR] = { 0 }, errors = 0, cpu_ns = 0, max_ns = 0;
	uint64_t slow = 0;
	double secs = elapsed_ns / 1e9, p50, p99, util;
	int t, k;
	unsigned int b;

	for (t = 0; t < o.threads; t++) {
		for (b = 0; b < HIST_BUCKETS; b++)
			hist[b] += ws[t].hist[b];
		for (k = 0; k < F_NR; k++)
			fails[k] += ws[t].fails[k];
		cpu_ns += ws[t].cpu_ns;
		slow += ws[t].slow;
		if (ws[t].max_ns > max_ns)
			max_ns = ws[t].max_ns;
	}
	for (k = 0; k < F_NR; k++)
		errors += fails[k];
	p50 = hist_percentile_us(hist, 0.50);
	p99 = hist_percentile_us(hist, 0.99);
	util = cpu_ns / ((double)elapsed_ns * o.threads);

	fprintf(o.json ? stderr : stdout,
		"mp-load: %s %s: %llu ops in %.3f s, %.0f ops/s, p50 %.1f us, p99 %.1f us, max %.1f us, %u conns, %d threads, client CPU %.0f%%, errors %llu",
		o.mode == MODE_SHORT ? "short" : "persistent",
		o.proto == PROTO_ECHO ? "echo" : "http",
		(unsigned long long)o.ops, secs, o.ops / secs, p50, p99,
		max_ns / 1e3, o.conns, o.threads, util * 100,
		(unsigned long long)errors);
	if (o.slow_ns)
		fprintf(o.json ? stderr : stdout, ", slower than %g ms %llu",
			o.slow_ns / 1e6, (unsigned long long)slow);
	fprintf(o.json ? stderr : stdout, "\n");

	if (o.json) {
		printf("{\"mode\":\"%s\",\"proto\":\"%s\",\"ops\":%llu,\"warmup\":%llu,\"size\":%u,\"errors\":%llu,\"errors_by_kind\":{",
		       o.mode == MODE_SHORT ? "short" : "persistent",
		       o.proto == PROTO_ECHO ? "echo" : "http",
		       (unsigned long long)o.ops, (unsigned long long)o.warmup,
		       o.size, (unsigned long long)errors);
		for (k = 0; k < F_NR; k++)
			printf("%s\"%s\":%llu", k ? "," : "", fail_names[k],
			       (unsigned long long)fails[k]);
		printf("},\"elapsed_s\":%.6f,\"ops_per_s\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f,",
		       secs, o.ops / secs, p50, p99, max_ns / 1e3);
		if (o.slow_ns)
			printf("\"slow_ms\":%g,\"slow\":%llu,", o.slow_ns / 1e6,
			       (unsigned long long)slow);
		printf("\"conns\":%u,\"threads\":%d,\"client_cpu_util\":%.3f}\n",
		       o.conns, o.threads, util);
	}
	fflush(stdout);

	if (errors) {
		fprintf(stderr, "FAILURES: %llu failed operations:",
			(unsigned long long)errors);
		for (k = 0; k < F_NR; k++)
			fprintf(stderr, " %s=%llu", fail_names[k],
				(unsigned long long)fails[k]);
		fprintf(stderr, "\n");
		exit(1);
	}
}

int main(int argc, char **argv)
{
	struct worker *ws;
	uint64_t t0, t1;
	int t, err;

	parse_args(argc, argv);

	ws = calloc(o.threads, sizeof(*ws));
	if (!ws)
		die("calloc(%d threads)", o.threads);
	pthread_barrier_init(&barrier, NULL, o.threads + 1);
	for (t = 0; t < o.threads; t++) {
		worker_init(&ws[t], t, o.conns / o.threads +
			    ((unsigned int)t < o.conns % o.threads));
		err = pthread_create(&ws[t].tid, NULL, worker_main, &ws[t]);
		if (err) {
			errno = err;
			die("pthread_create(thread %d)", t);
		}
	}

	pthread_barrier_wait(&barrier);		/* warm-up done */
	if (o.mark)
		mp_mark_start();
	t0 = now_ns();
	pthread_barrier_wait(&barrier);		/* go */
	pthread_barrier_wait(&barrier);		/* all measured ops done */
	t1 = now_ns();
	if (o.mark)
		mp_mark_stop();

	for (t = 0; t < o.threads; t++)
		pthread_join(ws[t].tid, NULL);
	report(ws, t1 - t0);

	for (t = 0; t < o.threads; t++)
		worker_free(&ws[t]);
	free(ws);
	free(o.cpus);
	pthread_barrier_destroy(&barrier);
	return 0;
}
