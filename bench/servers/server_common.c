// SPDX-License-Identifier: GPL-2.0
/*
 * Common code of the baseline servers.  See server_common.h.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "cpulist.h"
#include "http_body.h"
#include "server_common.h"

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#define HTTP_MAX_HEAD	8192	/* longest request head we buffer */

static const char *prog = "server";
static void (*serve_fn)(struct srv_thread *t);
static pthread_barrier_t ready_barrier;

void srv_die(const char *fmt, ...)
{
	int err = errno;
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, ": %s\n", strerror(err));
	exit(1);
}

/* ---- options ---------------------------------------------------------- */

static void usage(unsigned int extra, int status)
{
	fprintf(status ? stderr : stdout,
		"usage: %s [--port P] [--addr A] [--threads N] [--cpus LIST]\n"
		"          [--proto echo|http] [--backlog N] [--max-conns N] [--size N]%s%s%s%s\n",
		prog,
		extra & SRV_OPT_TRIGGER ? "\n          [--trigger edge|level]" : "",
		extra & SRV_OPT_SHARED_LISTENER ? "\n          [--shared-listener]" : "",
		extra & SRV_OPT_STALL ? "\n          [--stall-thread I --stall-ms MS --stall-every-ms MS [--stall-mode sleep|spin]]" : "",
		extra & SRV_OPT_BACKEND ? "\n          --backend ADDR:PORT [--owner-stats]" : "");
	exit(status);
}

static void inapplicable(const char *opt, unsigned int extra)
{
	fprintf(stderr, "%s: %s does not apply to this server\n", prog, opt);
	usage(extra, 2);
}

static unsigned long parse_num(const char *opt, const char *s,
			       unsigned long min, unsigned long max)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v < min || v > max) {
		fprintf(stderr, "%s: invalid %s '%s' (expected %lu..%lu)\n",
			prog, opt, s, min, max);
		exit(2);
	}
	return v;
}

static void parse_addr(struct srv_opts *o, const char *s)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)&o->addr;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&o->addr;

	memset(&o->addr, 0, sizeof(o->addr));
	if (inet_pton(AF_INET, s, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		o->addrlen = sizeof(*in4);
	} else if (inet_pton(AF_INET6, s, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		o->addrlen = sizeof(*in6);
	} else {
		fprintf(stderr, "%s: invalid --addr '%s' (expected an IPv4 or IPv6 address)\n",
			prog, s);
		exit(2);
	}
}

/* --backend ADDR:PORT (IPv4) */
static void parse_backend(struct srv_opts *o, const char *s)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)&o->backend;
	const char *colon = strrchr(s, ':');
	char host[64];

	memset(&o->backend, 0, sizeof(o->backend));
	if (!colon || (size_t)(colon - s) >= sizeof(host)) {
		fprintf(stderr, "%s: invalid --backend '%s' (expected ADDR:PORT)\n",
			prog, s);
		exit(2);
	}
	memcpy(host, s, colon - s);
	host[colon - s] = 0;
	if (inet_pton(AF_INET, host, &in4->sin_addr) != 1) {
		fprintf(stderr, "%s: invalid --backend address '%s' (IPv4)\n",
			prog, host);
		exit(2);
	}
	in4->sin_family = AF_INET;
	in4->sin_port = htons(parse_num("--backend port", colon + 1, 1, 65535));
	o->backend_len = sizeof(*in4);
}

static void set_port(struct srv_opts *o)
{
	if (o->addr.ss_family == AF_INET)
		((struct sockaddr_in *)&o->addr)->sin_port = htons(o->port);
	else
		((struct sockaddr_in6 *)&o->addr)->sin6_port = htons(o->port);
}

void srv_parse_args(int argc, char **argv, struct srv_opts *o,
		    const char *design, unsigned int extra)
{
	enum { O_PORT = 256, O_ADDR, O_THREADS, O_CPUS, O_PROTO, O_BACKLOG,
	       O_MAX_CONNS, O_SIZE, O_TRIGGER, O_SHARED, O_STALL_THREAD,
	       O_STALL_MS, O_STALL_EVERY, O_STALL_MODE, O_BACKEND,
	       O_OWNER_STATS, O_HELP };
	static const struct option longopts[] = {
		{ "port",		required_argument, NULL, O_PORT },
		{ "addr",		required_argument, NULL, O_ADDR },
		{ "threads",		required_argument, NULL, O_THREADS },
		{ "cpus",		required_argument, NULL, O_CPUS },
		{ "proto",		required_argument, NULL, O_PROTO },
		{ "backlog",		required_argument, NULL, O_BACKLOG },
		{ "max-conns",		required_argument, NULL, O_MAX_CONNS },
		{ "size",		required_argument, NULL, O_SIZE },
		{ "trigger",		required_argument, NULL, O_TRIGGER },
		{ "shared-listener",	no_argument,	   NULL, O_SHARED },
		{ "stall-thread",	required_argument, NULL, O_STALL_THREAD },
		{ "stall-ms",		required_argument, NULL, O_STALL_MS },
		{ "stall-every-ms",	required_argument, NULL, O_STALL_EVERY },
		{ "stall-mode",		required_argument, NULL, O_STALL_MODE },
		{ "backend",		required_argument, NULL, O_BACKEND },
		{ "owner-stats",	no_argument,	   NULL, O_OWNER_STATS },
		{ "help",		no_argument,	   NULL, O_HELP },
		{ NULL, 0, NULL, 0 }
	};
	int ncpus = 0, c;

	prog = design;
	memset(o, 0, sizeof(*o));
	o->design = design;
	o->port = 8080;
	o->proto = PROTO_ECHO;
	o->backlog = 4096;
	o->max_conns = 4096;
	o->size = 64;
	o->edge = true;
	parse_addr(o, "0.0.0.0");

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case O_PORT:
			o->port = parse_num("--port", optarg, 1, 65535);
			break;
		case O_ADDR:
			parse_addr(o, optarg);
			break;
		case O_THREADS:
			o->threads = parse_num("--threads", optarg, 1, 1024);
			break;
		case O_CPUS:
			free(o->cpus);
			ncpus = cpulist_parse(optarg, &o->cpus);
			if (ncpus <= 0) {
				fprintf(stderr, "%s: invalid --cpus '%s' (expected e.g. 0-3 or 0,2)\n",
					prog, optarg);
				exit(2);
			}
			break;
		case O_PROTO:
			if (!strcmp(optarg, "echo"))
				o->proto = PROTO_ECHO;
			else if (!strcmp(optarg, "http"))
				o->proto = PROTO_HTTP;
			else
				usage(extra, 2);
			break;
		case O_BACKLOG:
			o->backlog = parse_num("--backlog", optarg, 1, 1 << 20);
			break;
		case O_MAX_CONNS:
			o->max_conns = parse_num("--max-conns", optarg, 1, 1 << 20);
			break;
		case O_SIZE:
			o->size = parse_num("--size", optarg, 1, 1 << 20);
			break;
		case O_TRIGGER:
			if (!(extra & SRV_OPT_TRIGGER))
				inapplicable("--trigger", extra);
			if (!strcmp(optarg, "edge"))
				o->edge = true;
			else if (!strcmp(optarg, "level"))
				o->edge = false;
			else
				usage(extra, 2);
			break;
		case O_SHARED:
			if (!(extra & SRV_OPT_SHARED_LISTENER))
				inapplicable("--shared-listener", extra);
			o->shared_listener = true;
			break;
		case O_STALL_THREAD:
		case O_STALL_MS:
		case O_STALL_EVERY:
		case O_STALL_MODE:
			if (!(extra & SRV_OPT_STALL))
				inapplicable("--stall-*", extra);
			if (c == O_STALL_THREAD)
				o->stall_thread = parse_num("--stall-thread", optarg, 0, 1023);
			else if (c == O_STALL_MS)
				o->stall_ms = parse_num("--stall-ms", optarg, 0, 3600000);
			else if (c == O_STALL_EVERY)
				o->stall_every_ms = parse_num("--stall-every-ms", optarg, 1, 3600000);
			else if (!strcmp(optarg, "sleep"))
				o->stall_spin = false;
			else if (!strcmp(optarg, "spin"))
				o->stall_spin = true;
			else
				usage(extra, 2);
			break;
		case O_BACKEND:
		case O_OWNER_STATS:
			if (!(extra & SRV_OPT_BACKEND))
				inapplicable(c == O_BACKEND ? "--backend" : "--owner-stats",
					     extra);
			if (c == O_BACKEND)
				parse_backend(o, optarg);
			else
				o->owner_stats = true;
			break;
		case O_HELP:
			usage(extra, 0);
			break;
		default:
			usage(extra, 2);
		}
	}
	if (optind < argc)
		usage(extra, 2);

	if ((extra & SRV_OPT_BACKEND) && !o->backend_len) {
		fprintf(stderr, "%s: --backend is required\n", prog);
		exit(2);
	}
	if (!o->threads)
		o->threads = o->cpus ? ncpus : 1;
	if (o->cpus && o->threads > ncpus) {
		fprintf(stderr, "%s: --threads %d exceeds the %d CPUs in --cpus\n",
			prog, o->threads, ncpus);
		exit(2);
	}
	if (o->stall_ms) {
		if (!o->stall_every_ms || o->stall_every_ms <= o->stall_ms) {
			fprintf(stderr, "%s: --stall-ms needs --stall-every-ms longer than the stall\n",
				prog);
			exit(2);
		}
		if (o->stall_thread >= o->threads) {
			fprintf(stderr, "%s: --stall-thread %d: there are only %d threads\n",
				prog, o->stall_thread, o->threads);
			exit(2);
		}
	}
	set_port(o);
}

/* ---- listeners -------------------------------------------------------- */

static int open_listener(const struct srv_opts *o, bool reuseport,
			 int sock_flags, int incoming_cpu)
{
	int one = 1, fd;

	fd = socket(o->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | sock_flags, 0);
	if (fd < 0)
		srv_die("socket");
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)))
		srv_die("setsockopt(SO_REUSEADDR)");
	if (reuseport &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)))
		srv_die("setsockopt(SO_REUSEPORT)");
	/* Accepted sockets inherit TCP_NODELAY from the listener on Linux. */
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)))
		srv_die("setsockopt(TCP_NODELAY)");
	if (incoming_cpu >= 0 &&
	    setsockopt(fd, SOL_SOCKET, SO_INCOMING_CPU, &incoming_cpu,
		       sizeof(incoming_cpu)))
		srv_die("setsockopt(SO_INCOMING_CPU, %d)", incoming_cpu);
	if (bind(fd, (struct sockaddr *)&o->addr, o->addrlen))
		srv_die("bind to port %d", o->port);
	if (listen(fd, o->backlog))
		srv_die("listen");
	return fd;
}

int srv_listen(const struct srv_opts *o, bool reuseport, int sock_flags)
{
	return open_listener(o, reuseport, sock_flags, -1);
}

/*
 * The "reuseport by CPU" program: the reuseport group hands a connection
 * to the socket whose index (its position in the group, i.e. the order
 * in which the listeners were created) the program returns.  Returning
 * "current CPU - first CPU" maps CPU cpus[i] to listener i for a
 * contiguous CPU list; a result outside the group (a CPU not in the
 * list) makes the kernel fall back to its hash.
 */
static void attach_cpu_steering(int fd, int first_cpu)
{
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_AD_OFF + SKF_AD_CPU),
		BPF_STMT(BPF_ALU | BPF_SUB | BPF_K, first_cpu),
		BPF_STMT(BPF_RET | BPF_A, 0),
	};
	struct sock_fprog prog = { .len = ARRAY_SIZE(code), .filter = code };

	if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog,
		       sizeof(prog)))
		srv_die("setsockopt(SO_ATTACH_REUSEPORT_CBPF)");
}

void srv_reuseport_listeners(const struct srv_opts *o, int *lfds,
			     int sock_flags)
{
	bool contiguous = o->cpus != NULL;
	int i;

	/* Group index == creation order, so create them in CPU-list order. */
	for (i = 0; i < o->threads; i++) {
		lfds[i] = open_listener(o, true, sock_flags,
					o->cpus ? o->cpus[i] : -1);
		if (o->cpus && o->cpus[i] != o->cpus[0] + i)
			contiguous = false;
	}

	if (contiguous) {
		attach_cpu_steering(lfds[0], o->cpus[0]);
		fprintf(stderr, "%s: reuseport steering: cBPF, CPU %d..%d -> listener 0..%d\n",
			prog, o->cpus[0], o->cpus[0] + o->threads - 1,
			o->threads - 1);
	} else {
		fprintf(stderr, "%s: reuseport steering: kernel hash (%s)\n",
			prog, o->cpus ? "CPU list not contiguous; SO_INCOMING_CPU set" :
					"no --cpus");
	}
}

/* ---- threads ---------------------------------------------------------- */

/* Each connection may need a descriptor (epoll) or a file-table slot. */
static void raise_nofile(const struct srv_opts *o)
{
	rlim_t want = (rlim_t)o->threads * o->max_conns + 64;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		srv_die("getrlimit(RLIMIT_NOFILE)");
	if (rl.rlim_cur >= want)
		return;
	if (rl.rlim_max < want)
		fprintf(stderr, "%s: warning: RLIMIT_NOFILE hard limit %llu is below the %llu that --threads x --max-conns needs\n",
			prog, (unsigned long long)rl.rlim_max,
			(unsigned long long)want);
	rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		srv_die("setrlimit(RLIMIT_NOFILE, %llu)",
			(unsigned long long)rl.rlim_cur);
}

static void *thread_main(void *arg)
{
	struct srv_thread *t = arg;
	int err;

	if (t->opts->cpus) {
		err = cpulist_pin_self(t->opts->cpus[t->idx]);
		if (err) {
			errno = err;
			srv_die("thread %d: pinning to CPU %d", t->idx,
				t->opts->cpus[t->idx]);
		}
	}
	serve_fn(t);
	return NULL;
}

void srv_thread_ready(void)
{
	pthread_barrier_wait(&ready_barrier);
}

void srv_print_owner(const unsigned long reads[2], const unsigned long local[2])
{
	printf("owner passive_reads %lu passive_local %lu active_reads %lu active_local %lu\n",
	       reads[0], local[0], reads[1], local[1]);
	fflush(stdout);
}

void srv_run_shared(const struct srv_opts *o,
		    void (*serve)(struct srv_thread *t))
{
	int *lfds = calloc(o->threads, sizeof(*lfds)), lfd, i;

	if (!lfds)
		srv_die("calloc");
	lfd = srv_listen(o, false, SOCK_NONBLOCK);
	for (i = 0; i < o->threads; i++)
		lfds[i] = lfd;
	srv_run(o, lfds, serve);
	free(lfds);
}

void srv_run(const struct srv_opts *o, const int *lfds,
	     void (*serve)(struct srv_thread *t))
{
	unsigned long accepted = 0, requests = 0, echo_bytes = 0, errors = 0;
	unsigned long stalls = 0, stall_ns = 0;
	struct srv_thread *th;
	sigset_t sigs;
	int i, err, sig, stop_fd;

	raise_nofile(o);

	/* Only this thread takes the signals; the workers inherit the mask. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	err = pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	if (err) {
		errno = err;
		srv_die("pthread_sigmask");
	}

	stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (stop_fd < 0)
		srv_die("eventfd");
	th = calloc(o->threads, sizeof(*th));
	if (!th)
		srv_die("calloc(%d threads)", o->threads);
	serve_fn = serve;
	pthread_barrier_init(&ready_barrier, NULL, o->threads + 1);

	for (i = 0; i < o->threads; i++) {
		th[i].opts = o;
		th[i].idx = i;
		th[i].lfd = lfds[i];
		th[i].stop_fd = stop_fd;
		err = pthread_create(&th[i].tid, NULL, thread_main, &th[i]);
		if (err) {
			errno = err;
			srv_die("pthread_create(thread %d)", i);
		}
	}

	pthread_barrier_wait(&ready_barrier);
	printf("ready %s port %d threads %d\n", o->design, o->port, o->threads);
	fflush(stdout);

	do {
		err = sigwait(&sigs, &sig);
	} while (err == EINTR);
	if (eventfd_write(stop_fd, 1))
		srv_die("eventfd_write");

	for (i = 0; i < o->threads; i++) {
		pthread_join(th[i].tid, NULL);
		accepted += th[i].stats.accepted;
		requests += th[i].stats.requests;
		echo_bytes += th[i].stats.echo_bytes;
		errors += th[i].stats.errors;
		stalls += th[i].stats.stalls;
		stall_ns += th[i].stats.stall_ns;
	}
	/* stderr: the stats line on stdout keeps its exact format */
	if (o->stall_ms)
		fprintf(stderr, "%s: stall thread %d stalls %lu total_ms %.1f (%s %u ms every %u ms)\n",
			prog, o->stall_thread, stalls, stall_ns / 1e6,
			o->stall_spin ? "spin" : "sleep", o->stall_ms,
			o->stall_every_ms);
	printf("stats accepted %lu requests %lu errors %lu\n",
	       accepted, requests + echo_bytes / o->size, errors);
	fflush(stdout);

	/* A shared listener appears once per thread in lfds[]. */
	for (i = 0; i < o->threads; i++)
		if (i == 0 || lfds[i] != lfds[0])
			close(lfds[i]);
	close(stop_fd);
	pthread_barrier_destroy(&ready_barrier);
	free(th);
}

/* ---- stalls ----------------------------------------------------------- */

static unsigned long long mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

void srv_stall_init(struct srv_stall *s, const struct srv_thread *t)
{
	const struct srv_opts *o = t->opts;

	s->on = o->stall_ms && t->idx == o->stall_thread;
	/* the first stall one period after the thread is ready */
	s->next_ns = mono_ns() + o->stall_every_ms * 1000000ull;
}

int srv_stall_poll(struct srv_stall *s, struct srv_thread *t)
{
	const struct srv_opts *o = t->opts;
	unsigned long long now, end, period = o->stall_every_ms * 1000000ull;
	struct timespec ts;

	if (!s->on)
		return -1;
	now = mono_ns();
	if (now >= s->next_ns) {
		/* a late loop iteration stalls late, but as long */
		end = now + o->stall_ms * 1000000ull;
		if (o->stall_spin) {
			while (mono_ns() < end)
				;
		} else {
			ts.tv_sec = end / 1000000000ull;
			ts.tv_nsec = end % 1000000000ull;
			while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME,
					       &ts, NULL) == EINTR)
				;
		}
		t->stats.stalls++;
		t->stats.stall_ns += mono_ns() - now;
		/* the next on the period's grid, skipping those missed */
		now = mono_ns();
		while (s->next_ns <= now)
			s->next_ns += period;
	}
	return (s->next_ns - now + 999999) / 1000000;
}

/* ---- buffers and protocol --------------------------------------------- */

void srv_buf_append(struct srv_buf *b, const void *p, size_t n)
{
	if (!n)
		return;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 512;
		char *d;

		while (cap < b->len + n)
			cap *= 2;
		d = realloc(b->data, cap);
		if (!d)
			srv_die("realloc(%zu)", cap);
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

void srv_buf_consume(struct srv_buf *b, size_t n)
{
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
}

void srv_buf_free(struct srv_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

static const char http_keepalive[] =
	"HTTP/1.1 200 OK\r\n"
	"Content-Type: text/plain\r\n"
	"Content-Length: " HTTP_BODY_LEN_STR "\r\n"
	"Connection: keep-alive\r\n"
	"\r\n"
	HTTP_BODY;

static const char http_close[] =
	"HTTP/1.1 200 OK\r\n"
	"Content-Type: text/plain\r\n"
	"Content-Length: " HTTP_BODY_LEN_STR "\r\n"
	"Connection: close\r\n"
	"\r\n"
	HTTP_BODY;

/* Is @token one of the comma-separated elements of [v, end)? */
static bool has_token(const char *v, const char *end, const char *token)
{
	size_t n = strlen(token);
	const char *t, *e;

	while (v < end) {
		while (v < end && (*v == ' ' || *v == '\t' || *v == ','))
			v++;
		for (t = v; v < end && *v != ','; v++)
			;
		for (e = v; e > t && (e[-1] == ' ' || e[-1] == '\t'); e--)
			;
		if ((size_t)(e - t) == n && !strncasecmp(t, token, n))
			return true;
	}
	return false;
}

/*
 * @req is one request head, ending in the empty line.  Returns 1 if the
 * connection stays open after the response, 0 if it closes, -1 if the
 * request line is not "<method> <target> HTTP/1.x".
 */
static int http_keep_alive(const char *req, size_t len)
{
	const char *end = req + len, *line, *eol, *v, *ve;
	bool keep;

	eol = memchr(req, '\n', len);
	if (eol - req < 11 || eol[-1] != '\r' || memcmp(eol - 10, " HTTP/1.", 8))
		return -1;
	keep = eol[-2] != '0';		/* HTTP/1.0 closes unless asked */

	for (line = eol + 1; line < end; line = eol + 1) {
		eol = memchr(line, '\n', end - line);
		if (eol - line < 11 || strncasecmp(line, "Connection:", 11))
			continue;
		v = line + 11;
		ve = eol[-1] == '\r' ? eol - 1 : eol;
		if (has_token(v, ve, "close"))
			keep = false;
		else if (has_token(v, ve, "keep-alive"))
			keep = true;
	}
	return keep;
}

static int http_input(struct srv_conn *c, const char *data, size_t len,
		      struct srv_buf *out, struct srv_stats *st)
{
	const char *p = data, *end = data + len, *head_end;
	int keep;

	if (c->in.len) {		/* complete a buffered partial head */
		srv_buf_append(&c->in, data, len);
		p = c->in.data;
		end = p + c->in.len;
	}

	while ((head_end = memmem(p, end - p, "\r\n\r\n", 4))) {
		head_end += 4;
		keep = http_keep_alive(p, head_end - p);
		if (keep < 0)
			return -1;
		st->requests++;
		if (!keep) {
			srv_buf_append(out, http_close, sizeof(http_close) - 1);
			c->close_after = true;
			c->in.len = 0;
			return 0;
		}
		srv_buf_append(out, http_keepalive, sizeof(http_keepalive) - 1);
		p = head_end;
	}

	if (end - p > HTTP_MAX_HEAD)
		return -1;
	if (c->in.len)
		srv_buf_consume(&c->in, p - c->in.data);
	else
		srv_buf_append(&c->in, p, end - p);
	return 0;
}

int srv_proto_input(struct srv_conn *c, const struct srv_opts *o,
		    const char *data, size_t len, struct srv_buf *out,
		    struct srv_stats *st)
{
	if (c->close_after)
		return 0;
	if (o->proto == PROTO_HTTP)
		return http_input(c, data, len, out, st);
	srv_buf_append(out, data, len);
	st->echo_bytes += len;
	return 0;
}

void srv_conn_reset(struct srv_conn *c)
{
	c->in.len = 0;
	c->close_after = false;
}

void srv_conn_free(struct srv_conn *c)
{
	srv_buf_free(&c->in);
	c->close_after = false;
}
