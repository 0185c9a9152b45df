// SPDX-License-Identifier: MIT
/*
 * Randomized stress: THREADS threads, each with its own channel, all
 * registered to one shared listener.  Each thread both serves (echo: read,
 * write back with write or writev, disconnect at end of stream) and drives
 * CONNS client connections through mp_connect, each sending a random-sized
 * stream in random-sized write/writev pieces with reads of random sizes,
 * checking every byte of the echo, then disconnecting.  (Without
 * MP_FEAT_CONNECT, the clients are connect()ed regular sockets registered
 * to the channel instead.)  At most
 * CONCURRENT client connections per thread at once.  Environment:
 * STRESS_THREADS, STRESS_CONNS (per thread), STRESS_SEED.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include "helpers.h"

#define CONCURRENT	16
#define MAXSTREAM	(96 * 1024)
#define PIECE		8192
#define COOKIE_CLIENT	(1ULL << 62)
#define COOKIE_SERVER	(1ULL << 61)
#define STALL_MS	20000
#define LIMIT_MS	150000

struct cl {		/* a client connection */
	int h;
	int fd;		/* without MP_FEAT_CONNECT: the registered fd, else -1 */
	unsigned int seed;
	size_t len, sent, rcvd;
	int writes;	/* in flight */
	bool reading, done;
	unsigned char rbuf[PIECE];
	unsigned char wbuf[4][PIECE];	/* one per write in flight */
	int wslot;
};

struct sv {		/* a server-side connection */
	int h;
	bool writing, closing;
	unsigned char buf[PIECE];
};

struct worker {
	int idx, lfd;
	struct sockaddr_in addr;
	unsigned int rng;
	int conns, started, finished, errors;
	unsigned long long bytes;
	char err[256];
	struct cl cl[CONCURRENT];
	struct sv *sv;	/* indexed by handle index */
	unsigned int nsv;
};

static int nthreads = 4, nconns = 64;
static bool have_connect;
/* client connections finished, all threads: serve until all are done */
static int all_finished, all_failed;

static unsigned int rnd(struct worker *w, unsigned int n)
{
	w->rng = w->rng * 1103515245 + 12345;
	return (w->rng >> 8) % n;
}

#define W_FAIL(w, ...) do {						\
	if (!(w)->errors++)						\
		snprintf((w)->err, sizeof((w)->err), __VA_ARGS__);	\
} while (0)

static struct sv *sv_of(struct worker *w, int h)
{
	unsigned int i = MEGAPIPE_HANDLE_INDEX((unsigned int)h);

	if (i >= w->nsv) {
		unsigned int n = w->nsv ? w->nsv : 256;

		while (n <= i)
			n *= 2;
		w->sv = realloc(w->sv, n * sizeof(*w->sv));
		memset(w->sv + w->nsv, 0, (n - w->nsv) * sizeof(*w->sv));
		w->nsv = n;
	}
	return &w->sv[i];
}

static void cl_push(struct worker *w, struct mp_channel *mp, struct cl *c);

/* A client connection @h is up: start its stream. */
static void cl_begin(struct worker *w, struct mp_channel *mp, int slot, int h, int fd)
{
	struct cl *c = &w->cl[slot];

	memset(c, 0, sizeof(*c));
	c->h = h;
	c->fd = fd;
	c->seed = rnd(w, 1U << 30);
	c->len = 1 + rnd(w, MAXSTREAM);
	if (mp_set_cookie(mp, c->h, COOKIE_CLIENT | slot))
		W_FAIL(w, "set_cookie: %s", strerror(errno));
	cl_push(w, mp, c);
}

static void cl_start(struct worker *w, struct mp_channel *mp, int slot)
{
	int fd, h;

	w->started++;
	if (have_connect) {
		if (mp_connect(mp, (struct sockaddr *)&w->addr, sizeof(w->addr),
			       COOKIE_CLIENT | slot))
			W_FAIL(w, "mp_connect: %s", strerror(errno));
		return;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&w->addr, sizeof(w->addr))) {
		W_FAIL(w, "connect: %s", strerror(errno));
		return;
	}
	h = mp_register(mp, fd, COOKIE_CLIENT | slot, NULL, 0);
	if (h < 0) {
		W_FAIL(w, "mp_register: %s", strerror(errno));
		return;
	}
	cl_begin(w, mp, slot, h, fd);
}

/* Queue the next piece of client @c's stream, if it may. */
static void cl_push(struct worker *w, struct mp_channel *mp, struct cl *c)
{
	while (c->sent < c->len && c->writes < 4 && c->sent - c->rcvd < 4 * PIECE) {
		size_t n = 1 + rnd(w, PIECE), i;
		unsigned char *b = c->wbuf[c->wslot];

		if (n > c->len - c->sent)
			n = c->len - c->sent;
		for (i = 0; i < n; i++)
			b[i] = t_pat(c->seed, c->sent + i);
		if (rnd(w, 2)) {
			if (mp_write(mp, c->h, b, n))
				W_FAIL(w, "mp_write: %s", strerror(errno));
		} else {
			struct iovec iov[3];
			size_t a = rnd(w, n + 1), b2 = a + rnd(w, n - a + 1);

			iov[0] = (struct iovec){ b, a };
			iov[1] = (struct iovec){ b + a, b2 - a };
			iov[2] = (struct iovec){ b + b2, n - b2 };
			if (mp_writev(mp, c->h, iov, 3))
				W_FAIL(w, "mp_writev: %s", strerror(errno));
		}
		c->wslot = (c->wslot + 1) % 4;
		c->writes++;
		c->sent += n;
	}
	if (!c->reading && c->rcvd < c->len) {
		if (mp_read(mp, c->h, c->rbuf, 1 + rnd(w, PIECE)))
			W_FAIL(w, "mp_read: %s", strerror(errno));
		c->reading = true;
	}
}

static void on_client(struct worker *w, struct mp_channel *mp,
		      const struct mp_completion *e)
{
	int slot = e->cookie & 0xffff;
	struct cl *c = &w->cl[slot];
	int i;

	switch (e->op) {
	case MP_OP_CONNECT:
		if (e->result) {
			W_FAIL(w, "connect: %d", e->result);
			return;
		}
		cl_begin(w, mp, slot, e->new_handle, -1);
		return;
	case MP_OP_WRITE:
	case MP_OP_WRITEV:
		if (e->result <= 0)
			W_FAIL(w, "client write: %d", e->result);
		c->writes--;
		break;
	case MP_OP_READ:
		c->reading = false;
		if (e->result <= 0) {
			W_FAIL(w, "client read: %d at %zu of %zu", e->result, c->rcvd, c->len);
			return;
		}
		for (i = 0; i < e->result; i++)
			if (c->rbuf[i] != t_pat(c->seed, c->rcvd + i)) {
				W_FAIL(w, "byte %zu of a stream differs", c->rcvd + i);
				break;
			}
		c->rcvd += e->result;
		w->bytes += e->result;
		break;
	case MP_OP_DISCONNECT:
		if (c->fd >= 0)
			close(c->fd);
		c->fd = -1;
		w->finished++;
		__atomic_add_fetch(&all_finished, 1, __ATOMIC_RELAXED);
		if (w->started < w->conns)
			cl_start(w, mp, slot);
		return;
	default:
		W_FAIL(w, "client op %d", e->op);
		return;
	}
	if (c->rcvd == c->len && !c->writes && !c->done) {
		c->done = true;
		if (mp_disconnect(mp, c->h))
			W_FAIL(w, "client disconnect: %s", strerror(errno));
		return;
	}
	cl_push(w, mp, c);
}

static void on_server(struct worker *w, struct mp_channel *mp,
		      const struct mp_completion *e, int lh)
{
	struct sv *s;

	if (e->op == MP_OP_ACCEPT) {
		if (!(e->flags & MP_F_MORE) && mp_accept(mp, lh, 8, 0))
			W_FAIL(w, "mp_accept: %s", strerror(errno));
		if (e->result < 0) {
			W_FAIL(w, "accept: %d", e->result);
			return;
		}
		s = sv_of(w, e->new_handle);
		memset(s, 0, sizeof(*s));
		s->h = e->new_handle;
		mp_set_cookie(mp, s->h, COOKIE_SERVER | (unsigned int)s->h);
		if (mp_read(mp, s->h, s->buf, 1 + rnd(w, PIECE)))
			W_FAIL(w, "server read: %s", strerror(errno));
		return;
	}
	s = sv_of(w, e->handle);
	switch (e->op) {
	case MP_OP_READ:
		if (e->result < 0)
			W_FAIL(w, "server read: %d", e->result);
		if (e->result <= 0) {
			if (mp_disconnect(mp, s->h))
				W_FAIL(w, "server disconnect: %s", strerror(errno));
			return;
		}
		if (rnd(w, 2)) {
			if (mp_write(mp, s->h, s->buf, e->result))
				W_FAIL(w, "server write: %s", strerror(errno));
		} else {
			struct iovec iov[2] = { { s->buf, e->result / 2 },
						{ s->buf + e->result / 2, e->result - e->result / 2 } };

			if (mp_writev(mp, s->h, iov, 2))
				W_FAIL(w, "server writev: %s", strerror(errno));
		}
		return;
	case MP_OP_WRITE:
	case MP_OP_WRITEV:
		if (e->result <= 0)
			W_FAIL(w, "server write: %d", e->result);
		if (mp_read(mp, s->h, s->buf, 1 + rnd(w, PIECE)))
			W_FAIL(w, "server read: %s", strerror(errno));
		return;
	case MP_OP_DISCONNECT:
		return;
	default:
		W_FAIL(w, "server op %d", e->op);
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct mp_channel *mp = mp_create(0, 512);
	struct mp_completion e;
	cpu_set_t set;
	/*
	 * A hang is no connection finishing anywhere for STALL_MS; the run as a
	 * whole gets up to LIMIT_MS (run-tests.sh allows this test more).  A
	 * fixed 40 s deadline failed runs that were only slow: 25-28 s idle,
	 * near 40 s on a loaded host.
	 */
	long long now = t_ms(), limit = now + LIMIT_MS, progress = now;
	int seen = 0, lh, i, ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	const char *why = "stopped: another thread failed";

	if (!mp) {
		W_FAIL(w, "mp_create: %s", strerror(errno));
		return NULL;
	}
	CPU_ZERO(&set);
	CPU_SET(w->idx % ncpu, &set);
	lh = mp_register(mp, w->lfd, COOKIE_SERVER | 0xffff, &set, sizeof(set));
	if (lh < 0 || mp_accept(mp, lh, 8, 0)) {
		W_FAIL(w, "register/accept: %s", strerror(errno));
		mp_destroy(mp);
		return NULL;
	}
	for (i = 0; i < CONCURRENT && w->started < w->conns; i++)
		cl_start(w, mp, i);
	while (!__atomic_load_n(&all_failed, __ATOMIC_RELAXED)) {
		int r, fin = __atomic_load_n(&all_finished, __ATOMIC_RELAXED);

		if (fin >= nthreads * nconns) {
			why = NULL;
			break;
		}
		now = t_ms();
		if (fin != seen) {
			seen = fin;
			progress = now;
		}
		if (now - progress > STALL_MS || now > limit) {
			/* Said first, before other threads see their peers go. */
			W_FAIL(w, "%s %d s: %d of %d connections done here, %d of %d in all",
			       now > limit ? "over the time limit of" : "no progress for",
			       (now > limit ? LIMIT_MS : STALL_MS) / 1000,
			       w->finished, w->conns, fin, nthreads * nconns);
			__atomic_store_n(&all_failed, 1, __ATOMIC_RELAXED);
			break;
		}
		r = mp_dispatch(mp, &e, 1000);
		if (r < 0) {
			W_FAIL(w, "mp_dispatch: %s", strerror(errno));
			break;
		}
		if (!r)
			continue;
		if (e.cookie & COOKIE_CLIENT || e.op == MP_OP_CONNECT)
			on_client(w, mp, &e);
		else
			on_server(w, mp, &e, lh);
		if (w->errors)
			__atomic_store_n(&all_failed, 1, __ATOMIC_RELAXED);
	}
	if (why && w->finished < w->conns && !w->errors)
		W_FAIL(w, "%s: %d of %d connections done", why, w->finished, w->conns);
	mp_destroy(mp);
	free(w->sv);
	return NULL;
}

int main(void)
{
	struct sockaddr_in addr;
	struct worker *w;
	pthread_t *th;
	unsigned int seed = getenv("STRESS_SEED") ? (unsigned int)atoi(getenv("STRESS_SEED")) :
						    (unsigned int)getpid();
	unsigned long long bytes = 0;
	int lfd, i, errors = 0, done = 0;
	long long t0 = t_ms();

	if (getenv("STRESS_THREADS"))
		nthreads = atoi(getenv("STRESS_THREADS"));
	if (getenv("STRESS_CONNS"))
		nconns = atoi(getenv("STRESS_CONNS"));
	have_connect = t_feature(MP_FEAT_CONNECT);
	printf("# seed %u, %d threads x %d connections (clients: %s)\n", seed, nthreads,
	       nconns, have_connect ? "mp_connect" : "connect() + mp_register");
	lfd = t_listener(&addr);
	w = calloc(nthreads, sizeof(*w));
	th = calloc(nthreads, sizeof(*th));
	T_BEGIN("stress: every byte of every connection echoed intact, all closed");
	for (i = 0; i < nthreads; i++) {
		w[i].idx = i;
		w[i].lfd = lfd;
		w[i].addr = addr;
		w[i].rng = seed + i * 7919;
		w[i].conns = nconns;
		pthread_create(&th[i], NULL, worker_main, &w[i]);
	}
	for (i = 0; i < nthreads; i++) {
		pthread_join(th[i], NULL);
		errors += w[i].errors;
		done += w[i].finished;
		bytes += w[i].bytes;
		if (w[i].errors)
			printf("#   thread %d: %d errors, first: %s\n", i, w[i].errors, w[i].err);
	}
	printf("#   %d connections, %llu bytes echoed and checked, %lld ms\n", done, bytes, t_ms() - t0);
	if (errors || done != nthreads * nconns)
		t_fail(__FILE__, __LINE__, "errors == 0", "%d errors, %d of %d connections",
		       errors, done, nthreads * nconns);
	else
		T_OK();
	close(lfd);
	free(w);
	free(th);
	return t_done();
}
