// SPDX-License-Identifier: GPL-2.0
/*
 * megapipe_fuzz: a randomized fuzzer of /dev/megapipe.
 *
 * A child process (in a netns and, where the memory controller is there,
 * a memory cgroup of its own) opens one channel and runs FZ_THREADS
 * threads that submit random batches of every opcode (ACCEPT, READ,
 * WRITE, WRITEV, DISCONNECT, CONNECT, CANCEL, POLL and invalid ones) with
 * valid, stale and random handles, random sizes, flags, reserved fields
 * and buffers (mapped, unmapped, read-only, and munmapped by another
 * thread while in flight), reap completions, and REGISTER / UNREGISTER /
 * EXPORT, files too (MEGAPIPE_REGISTER_FILE: eventfds, timerfds, pipes,
 * UDP and Unix sockets, and files the channel must refuse).  A chaos
 * thread meanwhile connects, writes to, reads from, shuts down, resets
 * and closes peers, shuts down listeners, sets socket options, closes
 * registered fds, and makes the registered files readable, writable,
 * hung up and quiet again.  When /sys/kernel/debug/failslab
 * exists, some ioctls run with slab fault injection on for the calling
 * thread (task-filter, /proc/thread-self/make-it-fail).
 *
 * Invariants checked:
 *  - a request the channel takes completes exactly once (an ACCEPT of n:
 *    up to n times, all but the last with MORE); per handle, reads
 *    complete in submission order, writes (per opcode) too; a DISCONNECT
 *    completes after the writes before it and the reads, and is the
 *    handle's last completion; results are in range; cookies belong to
 *    the handle; a POLL completes with events it (or a POLL pending
 *    beside it) asked for, EPOLLERR or EPOLLHUP, MORE only while a
 *    multishot one is pending, -ECANCELED only under a CANCEL;
 *  - a request on a released (stale) or never-issued handle, and an
 *    invalid opcode, are refused;
 *  - after a final CANCEL + DISCONNECT of every handle, every request has
 *    completed and nothing more comes;
 *  - once the channel is closed (or its owner SIGKILLed mid-run), TCP
 *    inuse of the netns returns to 0 and the child's memory cgroup's slab
 *    to (near) its start.
 * Kernel splats fail the VM run (tests/vm/vm-run).
 *
 * Environment: MP_FUZZ_SEED (default: from the clock; printed),
 * MP_FUZZ_REQUESTS (stop after that many requests; default: time bound),
 * MP_FUZZ_SECS (time bound of the main run, default 20), MP_FUZZ_KILLS
 * (SIGKILLed runs, default 3), MP_FUZZ_FAILSLAB=0 (no fault injection).
 * A failure prints the seed; the thread interleaving is not reproduced by
 * a seed, the random choices of each thread are.
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "megapipe_lib.h"

#define FZ_THREADS	3
#define FZ_LISTENERS	2
#define FZ_PORT		(LIB_PORT + 10)	/* listeners FZ_PORT.. */
#define FZ_CLOSED_PORT	(LIB_PORT + 9)	/* nobody listens: CONNECT refused */
#define FZ_CQ		512
#define FZ_Q		32		/* per-handle FIFO depth we keep */
#define FZ_MAXIDX	65536
#define FZ_BUFS		16
#define FZ_BUFSZ	(64 << 10)
#define FZ_PEERS	48
#define FZ_STALE	64
#define FZ_BATCH	16
/* Buffer READs (multishot or not) take 4 KiB buffers from group 0. */
#define FZ_RBUFS	64
#define FZ_RBUFSZ	4096
#define FZ_RD_BUF	(1U << 31)	/* rd[] marks: a buffer READ */
#define FZ_RD_MS	(1U << 30)	/* multishot */
/*
 * Files for MEGAPIPE_REGISTER_FILE: fz_file[k] is registered, fz_peer[k]
 * is the chaos thread's other end (or the file itself).
 */
enum { FF_EVENTFD, FF_TIMERFD, FF_PIPE_R, FF_PIPE_W, FF_UDP, FF_UNIX, FZ_FILES };
#define FZ_FILE_HANDLES	24	/* live file handles at most */
#define FZ_POLL_EVENTS	(EPOLLIN | EPOLLPRI | EPOLLOUT | EPOLLRDNORM | \
			 EPOLLRDBAND | EPOLLWRNORM | EPOLLWRBAND | EPOLLMSG | \
			 EPOLLRDHUP)
static int fz_file[FZ_FILES], fz_peer[FZ_FILES];
static int fz_refuse[3];	/* an epoll set, /dev/null, an O_PATH fd */
static pthread_mutex_t file_mu = PTHREAD_MUTEX_INITIALIZER;

static struct megapipe_buf fz_ring[FZ_RBUFS];
static uint32_t fz_tail;
static char *fz_rmem;

/* A buffer a completion handed back goes to the ring again (mu held). */
static void fz_release(unsigned int bid)
{
	fz_ring[fz_tail % FZ_RBUFS] = (struct megapipe_buf){
		.addr = (uintptr_t)(fz_rmem + (size_t)bid * FZ_RBUFSZ),
		.len = FZ_RBUFSZ, .bid = bid };
	__atomic_store_n(&fz_tail, fz_tail + 1, __ATOMIC_RELEASE);
}

/* ---- shared results (parent <-> fuzz child) ------------------------------ */

struct fz_stats {
	atomic_ulong reqs;		/* requests submitted (ioctl'd) */
	atomic_ulong taken;		/* taken by the channel */
	atomic_ulong cqes;		/* completions reaped */
	atomic_ulong bufcqes;		/* of them, READs into a buffer */
	atomic_ulong submits;
	atomic_ulong ioctls;		/* REGISTER / UNREGISTER / EXPORT */
	atomic_ulong faults;		/* ioctls run with failslab on */
	atomic_ulong chaos;
	atomic_ulong files;		/* REGISTER_FILE calls */
	atomic_ulong files_taken;
	atomic_ulong polls;		/* POLL completions */
	atomic_int failed;
	char msg[512];
};

static struct fz_stats *st;
static uint64_t stop_after;		/* requests; 0: time only */
static uint64_t end_ms;
static atomic_int stop;
static bool failslab;

#define FAILF(...) do {							\
	if (!atomic_exchange(&st->failed, 1))				\
		snprintf(st->msg, sizeof(st->msg), __VA_ARGS__);	\
	fprintf(stderr, "megapipe_fuzz: FAIL: " __VA_ARGS__);		\
	fputc('\n', stderr);						\
	atomic_store(&stop, 1);						\
} while (0)

/* xorshift64*, one state per thread */
static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1DULL;
}

static unsigned int rn(uint64_t *s, unsigned int n)
{
	return n ? (unsigned int)(rnd(s) % n) : 0;
}

static bool chance(uint64_t *s, unsigned int pct)
{
	return rn(s, 100) < pct;
}

/* ---- the tracker ---------------------------------------------------------- */

enum { K_LISTENER = 1, K_CONN, K_FILE };

struct wq_ent {
	uint8_t op;
	uint32_t len;
};

struct rec {
	uint32_t h;
	uint32_t serial;
	uint8_t kind;
	uint8_t owner;
	bool closing;		/* DISCONNECT taken (or being submitted) */
	bool done;		/* DISCONNECT completed, exported, unregistered */
	bool fdb;		/* fd-backed (registered or ACCEPT_FD) */
	int lidx;		/* listener: index in lfd[], else -1 */
	uint32_t rd[FZ_Q];	/* READ lens, or ACCEPT counts left */
	unsigned int rd_h, rd_n;
	struct wq_ent wr[FZ_Q];	/* WRITE/WRITEV/DISCONNECT */
	unsigned int wr_h, wr_n;
	unsigned int cancels;
	uint64_t cookie0;	/* CONNECT: the request's cookie, the handle's first */
	/*
	 * A file's POLLs: they complete in no order (each when the file has
	 * its events), so only how many are pending, how many of them may
	 * be multishot, and every event they asked for are kept.
	 */
	unsigned int npoll, nms;
	uint32_t pmask;
};

struct pend {			/* one request of a batch */
	struct rec *r;		/* pre-counted on this record, or NULL */
	int q;			/* 0 none, 1 rd, 2 wr, 3 cancel, 4 connect, 5 anon cancel, 6 poll */
	bool ms;		/* a multishot POLL */
	bool must_refuse;
	bool disc;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t reap_mu = PTHREAD_MUTEX_INITIALIZER;
static struct rec *cur[FZ_MAXIDX];
static struct rec *owned[FZ_THREADS][FZ_MAXIDX / 8];
static unsigned int nowned[FZ_THREADS];
static uint32_t stale[FZ_STALE];
static unsigned int nstale;
static uint32_t serial_next = 1;
#define FZ_GRAVE	4096
static struct rec *graveyard[FZ_GRAVE];
static unsigned int ngrave;
static long connects;		/* CONNECTs taken, not completed */
static long anon_cancels;	/* CANCELs of NO_HANDLE taken, not completed */
static int ch = -1;
static int lfd[FZ_LISTENERS];
static bool lreg[FZ_LISTENERS];	/* registered (a record exists) */
static char *bufs[FZ_BUFS];
static int peers[FZ_PEERS];	/* fds: clients, exported, ACCEPT_FD */
static unsigned int nfiles;	/* live file handles */
static pthread_mutex_t peer_mu = PTHREAD_MUTEX_INITIALIZER;

static unsigned int outstanding(const struct rec *r)
{
	return r->rd_n + r->wr_n + r->cancels + r->npoll;
}

static void own_add(struct rec *r)
{
	unsigned int t = r->owner;

	if (nowned[t] < FZ_MAXIDX / 8)
		owned[t][nowned[t]++] = r;
}

static void own_del(struct rec *r)
{
	unsigned int t = r->owner, i;

	for (i = 0; i < nowned[t]; i++)
		if (owned[t][i] == r) {
			owned[t][i] = owned[t][--nowned[t]];
			return;
		}
}

/* A handle the kernel just gave us (REGISTER, ACCEPT, CONNECT); mu held. */
static struct rec *rec_new(uint32_t h, uint8_t kind, bool fdb, int lidx)
{
	uint32_t i = MEGAPIPE_HANDLE_INDEX(h);
	struct rec *r, *old;

	if (h == MEGAPIPE_NO_HANDLE || h >= 1U << 31 || i >= FZ_MAXIDX) {
		FAILF("new handle %#x out of range", h);
		return NULL;
	}
	old = cur[i];
	if (old) {
		/*
		 * CANCELs of a closing handle may be counted and not yet
		 * submitted (they will be refused): not the kernel's.
		 */
		if (!old->done || old->rd_n || old->wr_n)
			FAILF("handle %#x given out while %#x of its index %s (%u reads/accepts, %u writes outstanding)",
			      h, old->h, old->done ? "is released" : "is live",
			      old->rd_n, old->wr_n);
		if (!old->done)
			own_del(old);
		/* a batch being built may still point at it: free it later */
		free(graveyard[ngrave % FZ_GRAVE]);
		graveyard[ngrave++ % FZ_GRAVE] = old;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		abort();
	r->h = h;
	r->serial = serial_next++;
	r->kind = kind;
	r->owner = i % FZ_THREADS;
	r->fdb = fdb;
	r->lidx = lidx;
	cur[i] = r;
	own_add(r);
	return r;
}

static struct rec *rec_get(uint32_t h)
{
	uint32_t i = MEGAPIPE_HANDLE_INDEX(h);

	if (h == MEGAPIPE_NO_HANDLE || i >= FZ_MAXIDX || !cur[i] || cur[i]->h != h)
		return NULL;
	return cur[i];
}

/* The handle is gone (its last completion, EXPORT, UNREGISTER); mu held. */
static void rec_release(struct rec *r)
{
	if (r->done)
		return;
	r->done = true;
	if (r->kind == K_FILE)
		nfiles--;
	own_del(r);
	if (r->lidx >= 0)
		lreg[r->lidx] = false;
	stale[nstale++ % FZ_STALE] = r->h;
}

static uint64_t cookie_of(const struct rec *r, unsigned int k)
{
	return (uint64_t)r->serial << 8 | (k & 0xff);
}

/* The user data of each request: its opcode and handle, tagged. */
#define FZ_UD(op, h)	(0xa5ULL << 56 | (uint64_t)(uint8_t)(op) << 40 | (uint32_t)(h))

/* One completion, in channel order (reap_mu and mu held). */
static void on_cqe(const struct megapipe_cqe *c)
{
	struct rec *r, *n;
	unsigned int k;

	atomic_fetch_add(&st->cqes, 1);
	if (c->resv0)
		FAILF("cqe reserved field set (op %u)", c->opcode);
	/* every completion carries its request's user data */
	if (c->user_data != FZ_UD(c->opcode, c->handle))
		FAILF("cqe user data %#llx, not its request's (op %u handle %#x)",
		      (unsigned long long)c->user_data, c->opcode, c->handle);
	if (c->result < -4095)
		FAILF("cqe result %d out of range (op %u)", c->result, c->opcode);
	if (c->opcode == MEGAPIPE_OP_CONNECT) {
		if (c->handle != MEGAPIPE_NO_HANDLE)
			FAILF("CONNECT cqe with handle %#x", c->handle);
		if (connects-- <= 0)
			FAILF("CONNECT completion nobody asked for (result %d)", c->result);
		if (c->result == 0) {
			n = rec_new(c->new_handle, K_CONN, false, -1);
			if (n)	/* the request's (maybe a fuzzed one) */
				n->cookie0 = c->cookie;
		} else if (c->result > 0 || c->new_handle != MEGAPIPE_NO_HANDLE) {
			FAILF("CONNECT result %d new_handle %#x", c->result, c->new_handle);
		}
		return;
	}
	r = rec_get(c->handle);
	if (!r) {
		FAILF("completion (op %u result %d) for unknown handle %#x",
		      c->opcode, c->result, c->handle);
		return;
	}
	if (c->cookie && (c->cookie >> 8) != r->serial && c->cookie != r->cookie0)
		FAILF("handle %#x: cookie %#llx is another handle's", c->handle,
		      (unsigned long long)c->cookie);
	/* a READ into a buffer names it there (checked below) */
	if (c->opcode != MEGAPIPE_OP_ACCEPT && c->opcode != MEGAPIPE_OP_CONNECT &&
	    !(c->flags & MEGAPIPE_CQE_F_BUFFER) && c->new_handle != MEGAPIPE_NO_HANDLE)
		FAILF("op %u cqe with new_handle %#x", c->opcode, c->new_handle);
	switch (c->opcode) {
	case MEGAPIPE_OP_ACCEPT:
		if (r->kind != K_LISTENER || !r->rd_n) {
			FAILF("ACCEPT completion on %#x with none pending", r->h);
			return;
		}
		k = r->rd_h % FZ_Q;
		if (c->result >= 0) {
			r->rd[k]--;
			if (!!(c->flags & MEGAPIPE_CQE_F_MORE) != !!r->rd[k])
				FAILF("ACCEPT on %#x: MORE %d with %u left", r->h,
				      !!(c->flags & MEGAPIPE_CQE_F_MORE), r->rd[k]);
			n = rec_new(c->new_handle, K_CONN, c->flags & MEGAPIPE_CQE_F_FD, -1);
			if (n && (c->flags & MEGAPIPE_CQE_F_FD) != (c->result > 0 ? MEGAPIPE_CQE_F_FD : 0))
				FAILF("ACCEPT result %d flags %#x", c->result, c->flags);
			if (c->result > 0) {	/* a new fd: the chaos thread's too */
				pthread_mutex_lock(&peer_mu);
				for (k = 0; k < FZ_PEERS && peers[k] >= 0; k++)
					;
				if (k < FZ_PEERS)
					peers[k] = c->result;
				else
					close(c->result);
				pthread_mutex_unlock(&peer_mu);
			}
			if (!r->rd[r->rd_h % FZ_Q]) {
				r->rd_h++;
				r->rd_n--;
			}
		} else {
			if (c->flags & MEGAPIPE_CQE_F_MORE)
				FAILF("ACCEPT error %d with MORE", c->result);
			r->rd_h++;
			r->rd_n--;
		}
		return;
	case MEGAPIPE_OP_READ:
		if (r->kind != K_CONN || !r->rd_n) {
			FAILF("READ completion (result %d) on %#x with none pending",
			      c->result, r->h);
			return;
		}
		k = r->rd_h % FZ_Q;
		if (c->flags & MEGAPIPE_CQE_F_BUFFER) {
			if (!(r->rd[k] & FZ_RD_BUF) || c->result <= 0 ||
			    c->result > FZ_RBUFSZ || c->new_handle >= FZ_RBUFS)
				FAILF("READ into buffer %u on %#x: result %d (rd %#x)",
				      c->new_handle, r->h, c->result, r->rd[k]);
			else
				fz_release(c->new_handle);
			atomic_fetch_add(&st->bufcqes, 1);
		}
		if (c->flags & MEGAPIPE_CQE_F_MORE) {
			if (!(r->rd[k] & FZ_RD_MS) || !(c->flags & MEGAPIPE_CQE_F_BUFFER))
				FAILF("READ completion with MORE on %#x (rd %#x, flags %#x)",
				      r->h, r->rd[k], c->flags);
			return;		/* still armed */
		}
		r->rd_h++;
		r->rd_n--;
		if (r->rd[k] & FZ_RD_BUF) {
			if (c->result == -EAGAIN || (c->result > 0 && !(c->flags & MEGAPIPE_CQE_F_BUFFER)))
				FAILF("buffer READ on %#x: result %d flags %#x", r->h,
				      c->result, c->flags);
			return;
		}
		if (c->result > (int)r->rd[k] || c->result == -EAGAIN)
			FAILF("READ of %u on %#x: result %d", r->rd[k], r->h, c->result);
		return;
	case MEGAPIPE_OP_WRITE:
	case MEGAPIPE_OP_WRITEV:
	case MEGAPIPE_OP_DISCONNECT: {
		unsigned int j, e = 0;

		for (j = 0; j < r->wr_n; j++) {
			e = (r->wr_h + j) % FZ_Q;
			if (r->wr[e].op == c->opcode)
				break;
		}
		if (r->kind != K_CONN || j == r->wr_n) {
			FAILF("op %u completion (result %d) on %#x with none pending",
			      c->opcode, c->result, r->h);
			return;
		}
		if (c->opcode == MEGAPIPE_OP_DISCONNECT) {
			if (j || r->rd_n)
				FAILF("DISCONNECT of %#x completed before %u writes / %u reads",
				      r->h, j, r->rd_n);
			if (c->result)
				FAILF("DISCONNECT of %#x: result %d", r->h, c->result);
		} else if (!c->result || c->result > (int)r->wr[e].len ||
			   c->result == -EAGAIN) {
			FAILF("op %u of %u on %#x: result %d", c->opcode, r->wr[e].len,
			      r->h, c->result);
		}
		/* take entry e out, keeping the order of the others */
		for (; j + 1 < r->wr_n; j++)
			r->wr[(r->wr_h + j) % FZ_Q] = r->wr[(r->wr_h + j + 1) % FZ_Q];
		r->wr_n--;
		if (c->opcode == MEGAPIPE_OP_DISCONNECT) {
			if (r->wr_n)
				FAILF("DISCONNECT of %#x with %u writes behind it", r->h, r->wr_n);
			rec_release(r);
		}
		return;
	}
	case MEGAPIPE_OP_POLL:
		atomic_fetch_add(&st->polls, 1);
		if (r->kind != K_FILE || !r->npoll) {
			FAILF("POLL completion (result %d) on %#x with none pending",
			      c->result, r->h);
			return;
		}
		if (c->result < 0) {
			/* only a CANCEL ends a POLL early (no file here loses its queue) */
			if (c->result != -ECANCELED || !r->cancels ||
			    (c->flags & MEGAPIPE_CQE_F_MORE))
				FAILF("POLL on %#x: result %d flags %#x with %u CANCELs pending",
				      r->h, c->result, c->flags, r->cancels);
		} else if (!c->result ||
			   (c->result & ~(r->pmask | EPOLLERR | EPOLLHUP))) {
			FAILF("POLL on %#x: events %#x, asked for %#x", r->h,
			      c->result, r->pmask);
		}
		if (c->flags & MEGAPIPE_CQE_F_MORE) {
			if (!r->nms)
				FAILF("POLL on %#x: MORE with no multishot POLL pending", r->h);
			return;		/* still armed */
		}
		r->npoll--;
		if (r->nms > r->npoll)
			r->nms = r->npoll;
		if (!r->npoll)
			r->pmask = 0;
		return;
	case MEGAPIPE_OP_CANCEL:
		if (!r->cancels) {
			FAILF("CANCEL completion on %#x with none pending", r->h);
			return;
		}
		r->cancels--;
		if (c->result < 0)
			FAILF("CANCEL on %#x: result %d", r->h, c->result);
		return;
	default:
		FAILF("completion with opcode %u", c->opcode);
	}
}

/* ---- buffers, failslab ------------------------------------------------------ */

static char *pick_buf(uint64_t *s, uint32_t len)
{
	unsigned int b = rn(s, FZ_BUFS);

	if (chance(s, 2))
		return (char *)BAD_PTR;
	if (len > FZ_BUFSZ)
		len = FZ_BUFSZ;
	return bufs[b] + rn(s, FZ_BUFSZ - len + 1);
}

static void make_it_fail(int on)
{
	static __thread int fd = -1;

	if (!failslab)
		return;
	if (fd < 0)
		fd = open("/proc/thread-self/make-it-fail", O_WRONLY | O_CLOEXEC);
	if (fd >= 0 && pwrite(fd, on ? "1" : "0", 1, 0) == 1 && on)
		atomic_fetch_add(&st->faults, 1);
}

static int write_str(const char *path, const char *v)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), ret;

	if (fd < 0)
		return -1;
	ret = write(fd, v, strlen(v)) == (ssize_t)strlen(v) ? 0 : -1;
	close(fd);
	return ret;
}

#define FS "/sys/kernel/debug/failslab/"

static bool failslab_setup(bool on)
{
	if (access(FS "probability", W_OK))
		return false;
	if (!on)
		return !write_str(FS "probability", "0");
	return !write_str(FS "task-filter", "Y") &&
	       !write_str(FS "verbose", "0") &&
	       !write_str(FS "interval", "1") &&
	       !write_str(FS "times", "-1") &&
	       !write_str(FS "space", "0") &&
	       (write_str(FS "ignore-gfp-wait", "N"), true) &&
	       (write_str(FS "cache-filter", "N"), true) &&
	       !write_str(FS "probability", "20");
}

/* ---- building and submitting batches ---------------------------------------- */

static uint32_t random_bad_handle(uint64_t *s)
{
	switch (rn(s, 4)) {
	case 0:
		return 1U << 31 | rnd(s);		/* >= 2^31, maybe NO_HANDLE */
	case 1:
		return (rn(s, 2047) + 1) << 20 | (FZ_MAXIDX + rn(s, 1 << 19));
	case 2:
		return FZ_MAXIDX + rn(s, 1000);
	default:
		return 0xfffffffeU;
	}
}

static void fuzz_fields(uint64_t *s, struct megapipe_req *q)
{
	switch (rn(s, 8)) {
	case 0: q->resv[rn(s, 2)] = rnd(s) | 1; break;
	case 1: q->resv0 = 1 + rn(s, 255); break;
	case 2: q->flags |= 2 << rn(s, 15); break;
	case 3: q->op_flags = rnd(s); break;
	case 4: q->len = rn(s, 2) ? 0 : 0x80000000U + rn(s, 1000); break;
	case 5:
		if (!(q->flags & MEGAPIPE_REQ_F_SET_COOKIE))
			q->cookie = rnd(s) | 1;
		break;
	case 6: q->addr = rn(s, 2) ? (uint64_t)-4096 : 0xffff800000000000ULL; break;
	default: q->addr = 0; break;
	}
}

static struct iovec iov_pool[FZ_THREADS][FZ_BATCH * 4][8];

/* Fill request q for thread t; mu held.  Fills *p with what it pre-counted. */
static void build(unsigned int t, uint64_t *s, struct megapipe_req *q,
		  struct pend *p, unsigned int slot)
{
	unsigned int d = rn(s, 100), k;
	struct rec *r = NULL;

	memset(q, 0, sizeof(*q));
	memset(p, 0, sizeof(*p));
	if (d < 3) {			/* invalid opcode */
		q->opcode = rn(s, 2) ? 0 : MEGAPIPE_OP_LAST + 1 + rn(s, 248);
		q->handle = nowned[t] ? owned[t][rn(s, nowned[t])]->h : 0;
		p->must_refuse = true;
		return;
	}
	if (d < 8 && nstale) {		/* a released handle */
		q->opcode = 1 + rn(s, MEGAPIPE_OP_LAST);
		q->handle = stale[rn(s, nstale < FZ_STALE ? nstale : FZ_STALE)];
		q->len = 1 + rn(s, 64);
		q->addr = (uintptr_t)pick_buf(s, q->len);
		if (q->opcode == MEGAPIPE_OP_DISCONNECT || q->opcode == MEGAPIPE_OP_CANCEL)
			q->addr = q->len = 0;
		if (q->opcode == MEGAPIPE_OP_CONNECT)
			q->opcode = MEGAPIPE_OP_READ;
		/* a reused value is a live one: then it is not stale */
		if (!rec_get(q->handle) || rec_get(q->handle)->done)
			p->must_refuse = true;
		else
			q->opcode = 0, p->must_refuse = true;
		return;
	}
	if (d < 11) {			/* a handle never given out */
		q->opcode = 1 + rn(s, MEGAPIPE_OP_LAST);
		q->handle = random_bad_handle(s);
		if (q->opcode == MEGAPIPE_OP_CONNECT || q->handle == MEGAPIPE_NO_HANDLE)
			q->opcode = MEGAPIPE_OP_READ;
		q->len = 8;
		q->addr = (uintptr_t)bufs[0];
		p->must_refuse = true;
		return;
	}
	if (d < 16) {			/* CONNECT */
		static __thread struct sockaddr_in sa[FZ_BATCH * 4];
		struct sockaddr_in *a = &sa[slot];

		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		a->sin_port = htons(rn(s, 5) ? FZ_PORT + rn(s, FZ_LISTENERS) : FZ_CLOSED_PORT);
		q->opcode = MEGAPIPE_OP_CONNECT;
		q->handle = MEGAPIPE_NO_HANDLE;
		q->addr = (uintptr_t)a;
		q->len = sizeof(*a);
		q->cookie = (uint64_t)rn(s, 1 << 20) << 8 | 0xcc;
		if (chance(s, 10))
			fuzz_fields(s, q);
		p->q = 4;
		connects++;
		return;
	}
	if (d < 19) {			/* CANCEL of the CONNECTs */
		q->opcode = MEGAPIPE_OP_CANCEL;
		q->handle = MEGAPIPE_NO_HANDLE;
		q->op_flags = rn(s, 2) ? 0 : MEGAPIPE_CANCEL_OP(MEGAPIPE_OP_CONNECT);
		p->q = 5;	/* its completion has handle NO_HANDLE: counted apart */
		anon_cancels++;
		return;
	}
	if (!nowned[t]) {
		q->opcode = MEGAPIPE_OP_CANCEL;
		q->handle = MEGAPIPE_NO_HANDLE;
		p->q = 5;
		anon_cancels++;
		return;
	}
	r = owned[t][rn(s, nowned[t])];
	q->handle = r->h;
	if (chance(s, 3)) {
		q->flags = MEGAPIPE_REQ_F_SET_COOKIE;
		q->cookie = cookie_of(r, rn(s, 256));
	}
	d = rn(s, 100);
	if (r->kind == K_FILE && d >= 8) {
		if (d >= 90) {		/* what a file handle does not take */
			static const uint8_t ops[] = {
				MEGAPIPE_OP_ACCEPT, MEGAPIPE_OP_READ,
				MEGAPIPE_OP_WRITE, MEGAPIPE_OP_DISCONNECT };

			q->opcode = ops[rn(s, 4)];
			q->len = q->opcode == MEGAPIPE_OP_DISCONNECT ? 0 : 1;
			q->addr = q->len ? (uintptr_t)bufs[0] : 0;
			p->must_refuse = true;
			return;
		}
		q->opcode = MEGAPIPE_OP_POLL;
		q->len = rnd(s) & FZ_POLL_EVENTS;
		if (!q->len || chance(s, 30))	/* the usual ones */
			q->len = rn(s, 3) ? EPOLLIN : rn(s, 2) ? EPOLLOUT : EPOLLIN | EPOLLOUT;
		q->op_flags = rn(s, 3) ? 0 : MEGAPIPE_POLL_MULTISHOT;
		if (chance(s, 3)) {		/* refused: events or flags not in the ABI */
			if (rn(s, 2))
				q->len |= 1U << (20 + rn(s, 12));
			else
				q->op_flags |= 2 << rn(s, 30);
			p->must_refuse = true;
			return;
		}
		if (chance(s, 5))
			fuzz_fields(s, q);
		if (r->npoll >= FZ_Q)
			q->opcode = 0, p->must_refuse = true;
	} else if (r->kind != K_FILE && d >= 8 && chance(s, 2)) {
		q->opcode = MEGAPIPE_OP_POLL;	/* not a file's handle */
		q->len = EPOLLIN;
		p->must_refuse = true;
		return;
	} else if (r->closing || d < 8) {
		q->opcode = MEGAPIPE_OP_CANCEL;
		q->flags = 0;
		q->cookie = 0;
		q->op_flags = rn(s, 3) ? 0 : rn(s, 2) ? rnd(s) & MEGAPIPE_CANCEL_ALL :
			      MEGAPIPE_CANCEL_OP(1 + rn(s, MEGAPIPE_OP_LAST));
		if (r->cancels >= FZ_Q)
			q->opcode = 0, p->must_refuse = true;
	} else if (r->kind == K_LISTENER) {
		q->opcode = MEGAPIPE_OP_ACCEPT;
		q->len = 1 + rn(s, 4);
		q->op_flags = rn(s, 3) ? 0 : rn(s, 4);	/* FD, NONBLOCK, both */
		/* peer addresses into the pool, or where nothing is mapped */
		if (chance(s, 20))
			q->addr = (uintptr_t)pick_buf(s, q->len *
						      sizeof(struct sockaddr_storage));
		if (r->rd_n >= FZ_Q)
			q->opcode = 0, p->must_refuse = true;
	} else if (d < 45) {
		q->opcode = MEGAPIPE_OP_READ;
		q->len = 1 + rn(s, rn(s, 4) ? 4096 : FZ_BUFSZ);
		q->addr = (uintptr_t)pick_buf(s, q->len);
		if (chance(s, 25)) {		/* into a buffer of group 0 */
			q->len = 0;
			q->addr = 0;
			q->op_flags = MEGAPIPE_READ_BUFFER |
				      (rn(s, 2) ? MEGAPIPE_READ_MULTISHOT : 0);
		}
		if (r->rd_n >= FZ_Q)
			q->opcode = 0, p->must_refuse = true;
	} else if (d < 75) {
		q->opcode = MEGAPIPE_OP_WRITE;
		q->len = 1 + rn(s, rn(s, 4) ? 2048 : rn(s, 8) ? FZ_BUFSZ : 16 << 20);
		q->addr = (uintptr_t)pick_buf(s, q->len);
		if (q->len > FZ_BUFSZ)		/* a big one: up to the end of the pool */
			q->addr = (uintptr_t)bufs[0];
		if (r->wr_n >= FZ_Q - 1)
			q->opcode = 0, p->must_refuse = true;
	} else if (d < 94) {
		struct iovec *v = iov_pool[t][slot];
		unsigned int n = 1 + rn(s, 8), tot = 0;

		for (k = 0; k < n; k++) {
			v[k].iov_len = rn(s, 5) ? rn(s, 4096) : 0;
			v[k].iov_base = pick_buf(s, v[k].iov_len);
			tot += v[k].iov_len;
		}
		q->opcode = MEGAPIPE_OP_WRITEV;
		q->addr = (uintptr_t)v;
		q->len = n;
		if (chance(s, 2))
			q->addr = (uintptr_t)BAD_PTR;
		if (r->wr_n >= FZ_Q - 1)
			q->opcode = 0, p->must_refuse = true;
		k = tot;	/* the completion's bound */
		if (q->opcode) {
			if (chance(s, 5))
				fuzz_fields(s, q);
			p->r = r;
			p->q = 2;
			r->wr[(r->wr_h + r->wr_n++) % FZ_Q] =
				(struct wq_ent){ MEGAPIPE_OP_WRITEV, tot ? tot : 1 };
		}
		return;
	} else {
		q->opcode = MEGAPIPE_OP_DISCONNECT;
		if (r->wr_n >= FZ_Q)
			q->opcode = 0, p->must_refuse = true;
	}
	if (!q->opcode)
		return;
	if (chance(s, 5) && q->opcode != MEGAPIPE_OP_POLL)
		fuzz_fields(s, q);
	p->r = r;
	switch (q->opcode) {
	case MEGAPIPE_OP_POLL:
		/* counted as sent: a refused one is taken back (unbuild()) */
		p->q = 6;
		p->ms = q->op_flags & MEGAPIPE_POLL_MULTISHOT;
		r->npoll++;
		r->nms += p->ms;
		/* events the channel takes (a fuzzed len is refused) */
		if (!(q->len & ~FZ_POLL_EVENTS))
			r->pmask |= q->len;
		break;
	case MEGAPIPE_OP_ACCEPT:
	case MEGAPIPE_OP_READ:
		p->q = 1;
		r->rd[(r->rd_h + r->rd_n++) % FZ_Q] = q->len |
			(q->op_flags & MEGAPIPE_READ_BUFFER && q->opcode == MEGAPIPE_OP_READ ?
			 FZ_RD_BUF : 0) |
			(q->op_flags & MEGAPIPE_READ_MULTISHOT && q->opcode == MEGAPIPE_OP_READ ?
			 FZ_RD_MS : 0);
		break;
	case MEGAPIPE_OP_WRITE:
	case MEGAPIPE_OP_DISCONNECT:
		p->q = 2;
		r->wr[(r->wr_h + r->wr_n++) % FZ_Q] =
			(struct wq_ent){ q->opcode, q->len };
		if (q->opcode == MEGAPIPE_OP_DISCONNECT) {
			p->disc = true;
			r->closing = true;
		}
		break;
	case MEGAPIPE_OP_CANCEL:
		p->q = 3;
		r->cancels++;
		break;
	}
}


/* Undo the pre-count of a request that was not taken; mu held. */
static void unbuild(struct pend *p)
{
	struct rec *r = p->r;

	switch (p->q) {
	case 1: r->rd_n--; break;
	case 2:
		r->wr_n--;
		if (p->disc)
			r->closing = false;
		break;
	case 3: r->cancels--; break;
	case 4: connects--; break;
	case 5: anon_cancels--; break;
	case 6:
		r->npoll--;
		if (p->ms)
			r->nms--;
		break;
	}
}

/*
 * After the SUBMIT: requests [0, taken) were taken, the rest not; undo
 * those in reverse order (they are the tails of their FIFOs).  mu held.
 */
static void settle_batch(struct megapipe_req *q, struct pend *p, unsigned int n,
			 unsigned int taken, int error)
{
	unsigned int i;

	for (i = 0; i < taken; i++) {
		if (p[i].must_refuse)
			FAILF("request %u (op %u handle %#x len %u) taken, want refused",
			      i, q[i].opcode, q[i].handle, q[i].len);
	}
	if (taken < n && !error)
		FAILF("SUBMIT took %u of %u without an error", taken, n);
	if (taken < n && error != -EINVAL && error != -EBADF && error != -EFAULT &&
	    error != -EBUSY && error != -ENOMEM && error != -EAFNOSUPPORT &&
	    error != -ENFILE && error != -EMFILE)
		FAILF("SUBMIT refusal %d", error);
	if (taken < n && p[taken].must_refuse && error == -ENOMEM)
		;	/* failslab before the check: fine */
	for (i = n; i-- > taken;)
		unbuild(&p[i]);
}

static void reap_cqes(struct megapipe_cqe *c, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		if (c[i].opcode == MEGAPIPE_OP_CANCEL && c[i].handle == MEGAPIPE_NO_HANDLE) {
			atomic_fetch_add(&st->cqes, 1);
			if (anon_cancels-- <= 0)
				FAILF("CANCEL(NO_HANDLE) completion nobody asked for");
			if (c[i].result < 0)
				FAILF("CANCEL(NO_HANDLE) result %d", c[i].result);
			continue;
		}
		on_cqe(&c[i]);
	}
}

/*
 * Reap what is queued (reap_mu and mu held): before a new handle's record,
 * as the handle may reuse the index of one whose last completion waits.
 */
static void reap_queued(void)
{
	struct megapipe_cqe c[64];
	struct megapipe_submit so;

	while (!mp_sub(ch, NULL, 0, c, 64, 0, 0, &so) && so.completed)
		reap_cqes(c, so.completed);
}

/* One batch of thread t. */
static void do_batch(unsigned int t, uint64_t *s)
{
	struct megapipe_req q[FZ_BATCH];
	struct megapipe_cqe c[64];
	struct pend p[FZ_BATCH];
	struct megapipe_submit out = { 0 };
	unsigned int n = 1 + rn(s, FZ_BATCH), i;
	bool reap, fault = chance(s, 10);
	void *qp = q, *cp = c;
	int ret;

	pthread_mutex_lock(&mu);
	for (i = 0; i < n; i++) {
		build(t, s, &q[i], &p[i], i);
		q[i].user_data = FZ_UD(q[i].opcode, q[i].handle);
	}
	pthread_mutex_unlock(&mu);
	if (chance(s, 1))
		qp = rn(s, 2) ? BAD_PTR : (void *)-4096L;
	reap = !pthread_mutex_trylock(&reap_mu);
	if (reap && chance(s, 1))
		cp = BAD_PTR;
	if (fault)
		make_it_fail(1);
	ret = mp_sub(ch, qp, n, cp, reap ? 64 : 0, reap && chance(s, 30) ? 1 : 0,
		     rn(s, 3) ? 0 : rn(s, 2) * 2000000LL, &out);
	if (fault)
		make_it_fail(0);
	atomic_fetch_add(&st->submits, 1);
	atomic_fetch_add(&st->reqs, n);
	pthread_mutex_lock(&mu);
	if (ret) {
		if (errno != EFAULT && errno != EINTR && errno != ENOMEM)
			FAILF("SUBMIT failed: %s", strerror(errno));
		if (qp == q && cp == c && errno == EFAULT)
			FAILF("SUBMIT EFAULT with good arrays");
		settle_batch(q, p, n, 0, -EFAULT);
	} else {
		if (qp != q && out.submitted)
			FAILF("SUBMIT took %u requests from a bad array", out.submitted);
		atomic_fetch_add(&st->taken, out.submitted);
		settle_batch(q, p, n, out.submitted, out.error);
		if (out.completed > (reap ? 64U : 0U))
			FAILF("SUBMIT completed %u > max_cqes", out.completed);
		if (cp == c)
			reap_cqes(c, out.completed);
	}
	pthread_mutex_unlock(&mu);
	if (reap)
		pthread_mutex_unlock(&reap_mu);
}

/*
 * MEGAPIPE_IOC_SOCKOPT by thread t: a handle of ours or a bad one, any
 * command, options taken and refused, values good, short, unmapped or
 * in memory another thread may unmap.  A bad handle must be EBADF (or
 * EINVAL for a bad command, checked first); an option off the list
 * EOPNOTSUPP; nothing may hang or splat.
 */
static void do_sockopt(unsigned int t, uint64_t *s)
{
	static const int opts[][2] = {
		{ IPPROTO_TCP, TCP_NODELAY }, { SOL_SOCKET, SO_RCVBUF },
		{ SOL_SOCKET, SO_LINGER }, { IPPROTO_TCP, TCP_CONGESTION },
		{ IPPROTO_TCP, TCP_INFO }, { IPPROTO_TCP, TCP_CORK },
		{ IPPROTO_IP, IP_TOS }, { IPPROTO_IPV6, IPV6_TCLASS },
		{ SOL_SOCKET, SO_KEEPALIVE },
		/* refused */
		{ IPPROTO_TCP, TCP_ULP }, { SOL_SOCKET, SO_ERROR },
		{ SOL_SOCKET, SO_REUSEADDR }, { SOL_SOCKET, SO_BINDTODEVICE },
		{ 9999, 1 },
	};
	static char val[256];
	struct megapipe_sockopt o = { 0 };
	struct rec *r = NULL;
	bool bad;
	int k = rn(s, sizeof(opts) / sizeof(opts[0])), ret;

	pthread_mutex_lock(&mu);
	if (nowned[t] && !chance(s, 5))
		r = owned[t][rn(s, nowned[t])];
	o.handle = r ? r->h : random_bad_handle(s);
	bad = !r;
	pthread_mutex_unlock(&mu);
	o.cmd = chance(s, 20) ? 4 + rn(s, 100) : rn(s, 4);
	if (o.cmd < MEGAPIPE_SOCKOPT_SOCKNAME || chance(s, 10)) {
		o.level = opts[k][0];
		o.optname = opts[k][1];
	}
	if (chance(s, 20))
		o.resv = 1;
	switch (rn(s, 5)) {
	case 0: o.optval = 0; break;
	case 1: o.optval = (uintptr_t)-4096; break;
	case 2:		/* a SET's value in memory another thread may unmap */
		if (o.cmd == MEGAPIPE_SOCKOPT_SET) {
			o.optval = (uintptr_t)bufs[rn(s, FZ_BUFS)] + rn(s, FZ_BUFSZ);
			break;
		}
		/* fall through */
	default:
		for (ret = 0; ret < 16; ret++)
			val[ret] = (char)rnd(s);
		if (o.level == IPPROTO_TCP && o.optname == TCP_CONGESTION)
			strcpy(val, rn(s, 2) ? "reno" : "cubic");
		o.optval = (uintptr_t)val;
	}
	o.optlen = rn(s, 4) ? rn(s, 24) : rnd(s);
	ret = ioctl(ch, MEGAPIPE_IOC_SOCKOPT, &o);
	if (ret && (errno == EINVAL || errno == EFAULT))
		return;		/* before or after the handle lookup: both fine */
	if (bad && !(ret && errno == EBADF))
		FAILF("SOCKOPT cmd %u on bad handle %#x: %s", o.cmd, o.handle,
		      ret ? strerror(errno) : "succeeded");
	if (!ret && k >= 9 && o.cmd < MEGAPIPE_SOCKOPT_SOCKNAME)
		FAILF("SOCKOPT %u of refused option %d/%d succeeded", o.cmd, o.level, o.optname);
}

/*
 * REGISTER of a file (MEGAPIPE_REGISTER_FILE) by thread t: one of ours
 * (taken, unless the handles or memory run out), or one the channel must
 * refuse with its own errno: an epoll set, a file without poll, an O_PATH
 * fd, the channel itself, a closed fd; a file without the flag is not a
 * TCP socket.
 */
static void do_register_file(unsigned int t, uint64_t *s, bool fault)
{
	struct megapipe_register g = { .flags = MEGAPIPE_REGISTER_FILE };
	int k = rn(s, FZ_FILES + 6), want = 0, ret;
	uint64_t mask = 1;

	pthread_mutex_lock(&mu);
	if (k < FZ_FILES && nfiles >= FZ_FILE_HANDLES)
		k = FZ_FILES + rn(s, 6);
	if (k < FZ_FILES)
		nfiles++;	/* a handle on its way: counted now, under the bound */
	pthread_mutex_unlock(&mu);
	if (k < FZ_FILES) {
		pthread_mutex_lock(&file_mu);
		g.fd = fz_file[k];
		/* held across the call: the chaos thread may replace the file */
		if (chance(s, 5)) {	/* no flag: not a TCP socket */
			g.flags = 0;
			want = k == FF_UDP || k == FF_UNIX ? EOPNOTSUPP : ENOTSOCK;
		} else if (chance(s, 5)) {
			g.cpumask = (uintptr_t)&mask;	/* no CPUs for a file */
			g.cpumask_len = sizeof(mask);
			want = EINVAL;
		}
	} else {
		switch (k - FZ_FILES) {
		case 0: g.fd = fz_refuse[0]; want = EINVAL; break;	/* epoll */
		case 1: g.fd = fz_refuse[1]; want = EPERM; break;	/* no poll */
		case 2: g.fd = fz_refuse[2]; want = EBADF; break;	/* O_PATH */
		case 3: g.fd = ch; want = EINVAL; break;		/* a channel */
		case 4: g.fd = 1000 + rn(s, 1000); want = EBADF; break;
		default: g.flags |= 2 << rn(s, 30); want = EINVAL; break;
		}
	}
	atomic_fetch_add(&st->files, 1);
	/* as for a socket: reap what is queued before a new handle may reuse an index */
	pthread_mutex_lock(&reap_mu);
	if (fault)
		make_it_fail(1);
	ret = ioctl(ch, MEGAPIPE_IOC_REGISTER, &g);
	if (fault)
		make_it_fail(0);
	if (k < FZ_FILES)
		pthread_mutex_unlock(&file_mu);
	pthread_mutex_lock(&mu);
	if (!ret)
		reap_queued();
	pthread_mutex_unlock(&reap_mu);
	if (want) {
		if (!ret || errno != want)
			FAILF("REGISTER_FILE of fd %d (file %d, flags %#x): %s, want %s",
			      g.fd, k, g.flags, ret ? strerror(errno) : "taken",
			      strerror(want));
	} else if (ret && errno != ENOMEM && errno != EMFILE) {
		FAILF("REGISTER_FILE of file %d: %s", k, strerror(errno));
	}
	if (!ret && !want) {
		if (rec_new(g.handle, K_FILE, true, -1))
			atomic_fetch_add(&st->files_taken, 1);
	} else if (k < FZ_FILES) {
		nfiles--;
	}
	pthread_mutex_unlock(&mu);
	(void)t;
}

/* REGISTER / UNREGISTER / EXPORT by thread t. */
static void do_ioctl(unsigned int t, uint64_t *s)
{
	struct megapipe_unregister u = { 0 };
	struct megapipe_export e = { 0 };
	struct megapipe_register g = { 0 };
	bool fault = chance(s, 20);
	struct rec *r = NULL;
	int ret, fd = -1, li = -1, k;

	atomic_fetch_add(&st->ioctls, 1);
	if (chance(s, 4)) {
		do_sockopt(t, s);
		return;
	}
	if (chance(s, 30)) {
		do_register_file(t, s, fault);
		return;
	}
	pthread_mutex_lock(&mu);
	switch (rn(s, 3)) {
	case 0:		/* REGISTER: a listener not in, or a peer fd */
		for (k = 0; k < FZ_LISTENERS; k++)
			if (!lreg[k] && k % FZ_THREADS == (int)t)
				li = k;
		if (li >= 0) {
			fd = lfd[li];
		} else {
			pthread_mutex_lock(&peer_mu);
			fd = peers[rn(s, FZ_PEERS)];
			pthread_mutex_unlock(&peer_mu);
		}
		pthread_mutex_unlock(&mu);
		g.fd = fd < 0 ? rn(s, 64) : fd;
		g.cookie = 0;
		if (chance(s, 5))
			g.resv[rn(s, 2)] = 1;
		/*
		 * The new handle may reuse the index of one whose last
		 * completion is still queued: reap what is queued first.
		 */
		pthread_mutex_lock(&reap_mu);
		if (fault)
			make_it_fail(1);
		ret = ioctl(ch, MEGAPIPE_IOC_REGISTER, &g);
		if (fault)
			make_it_fail(0);
		pthread_mutex_lock(&mu);
		if (!ret)
			reap_queued();
		pthread_mutex_unlock(&reap_mu);
		if (!ret) {
			int lis = 0;
			socklen_t ol = sizeof(lis);

			getsockopt(g.fd, SOL_SOCKET, SO_ACCEPTCONN, &lis, &ol);
			if (li >= 0 && g.fd == lfd[li])
				lreg[li] = true;
			else
				li = -1;
			r = rec_new(g.handle, lis ? K_LISTENER : K_CONN, true, li);
		}
		break;
	case 1:		/* UNREGISTER an idle fd-backed handle of ours, or any */
	case 2:		/* EXPORT an idle lightweight one */
		if (nowned[t])
			r = owned[t][rn(s, nowned[t])];
		if (!r || r->closing || outstanding(r)) {
			bool closing = r && r->closing, unreg = rn(s, 2);
			uint32_t h = r && chance(s, 50) ? r->h : random_bad_handle(s);

			pthread_mutex_unlock(&mu);
			u.handle = e.handle = h;
			/*
			 * Nobody reaps while the handle goes: a completion
			 * reaped meanwhile may name a new handle of its index
			 * before the release is recorded.
			 */
			pthread_mutex_lock(&reap_mu);
			ret = ioctl(ch, unreg ? MEGAPIPE_IOC_UNREGISTER : MEGAPIPE_IOC_EXPORT,
				    unreg ? (void *)&u : (void *)&e);
			if (ret) {
				pthread_mutex_unlock(&reap_mu);
				return;
			}
			pthread_mutex_lock(&mu);
			r = rec_get(h);
			/* idle by now (its completions not reaped yet): fine */
			if (!r || closing)
				FAILF("%s of %s handle %#x succeeded", unreg ? "UNREGISTER" : "EXPORT",
				      closing ? "a closing" : "an unknown", h);
			else
				rec_release(r);
			pthread_mutex_unlock(&mu);
			pthread_mutex_unlock(&reap_mu);
			if (!unreg && e.fd > 0)
				close(e.fd);
			return;
		}
		pthread_mutex_unlock(&mu);
		u.handle = e.handle = r->h;
		e.flags = rn(s, 2);
		pthread_mutex_lock(&reap_mu);	/* as above */
		if (fault)
			make_it_fail(1);
		if (r->fdb || r->kind == K_LISTENER)
			ret = ioctl(ch, MEGAPIPE_IOC_UNREGISTER, &u);
		else
			ret = ioctl(ch, MEGAPIPE_IOC_EXPORT, &e);
		if (fault)
			make_it_fail(0);
		pthread_mutex_lock(&mu);
		if (!ret) {
			rec_release(r);
			if (!r->fdb && r->kind == K_CONN) {
				pthread_mutex_lock(&peer_mu);
				for (k = 0; k < FZ_PEERS && peers[k] >= 0; k++)
					;
				if (k < FZ_PEERS)
					peers[k] = e.fd;
				else
					close(e.fd);
				pthread_mutex_unlock(&peer_mu);
			}
		} else if (errno != EBUSY && errno != ENOMEM && errno != EMFILE &&
			   errno != ENFILE) {
			FAILF("%s of idle handle %#x: %s", r->fdb || r->kind == K_LISTENER ?
			      "UNREGISTER" : "EXPORT", r->h, strerror(errno));
		}
		pthread_mutex_unlock(&mu);
		pthread_mutex_unlock(&reap_mu);
		return;
	}
	pthread_mutex_unlock(&mu);
}

static uint64_t seed0;

static void *fuzz_thread(void *arg)
{
	unsigned int t = (uintptr_t)arg;
	uint64_t s = seed0 * 0x9E3779B97F4A7C15ULL + t + 1;

	while (!atomic_load(&stop)) {
		if (chance(&s, 4))
			do_ioctl(t, &s);
		else
			do_batch(t, &s);
		if (stop_after && atomic_load(&st->reqs) >= stop_after)
			atomic_store(&stop, 1);
		if (lib_now_ms() >= end_ms)
			atomic_store(&stop, 1);
	}
	return NULL;
}

/* (Re)make file k of the pool and its other end; file_mu held. */
static int file_make(int k)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int p[2];

	switch (k) {
	case FF_EVENTFD:
		fz_file[k] = fz_peer[k] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		break;
	case FF_TIMERFD:
		fz_file[k] = fz_peer[k] = timerfd_create(CLOCK_MONOTONIC,
							 TFD_NONBLOCK | TFD_CLOEXEC);
		break;
	case FF_PIPE_R:		/* registered: the read end */
	case FF_PIPE_W:		/* registered: the write end */
		if (pipe2(p, O_NONBLOCK | O_CLOEXEC))
			return -1;
		fz_file[k] = p[k == FF_PIPE_W];
		fz_peer[k] = p[k != FF_PIPE_W];
		break;
	case FF_UDP:
		fz_file[k] = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		fz_peer[k] = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fz_file[k] < 0 || fz_peer[k] < 0 ||
		    bind(fz_file[k], (struct sockaddr *)&a, sizeof(a)) ||
		    getsockname(fz_file[k], (struct sockaddr *)&a, &al) ||
		    connect(fz_peer[k], (struct sockaddr *)&a, sizeof(a)))
			return -1;
		break;
	case FF_UNIX:
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, p))
			return -1;
		fz_file[k] = p[0];
		fz_peer[k] = p[1];
		break;
	}
	return fz_file[k] < 0 ? -1 : 0;
}

static void file_close(int k)
{
	if (fz_peer[k] != fz_file[k])
		close(fz_peer[k]);
	close(fz_file[k]);
}

/*
 * A file of the pool made readable, writable, hung up or quiet again; or
 * closed and made anew (the handles of the old one keep it: the channel
 * holds its own reference).
 */
static void file_chaos(uint64_t *s)
{
	static char junk[4096];
	struct itimerspec it = { 0 };
	int k = rn(s, FZ_FILES), i;
	uint64_t one = 1;

	pthread_mutex_lock(&file_mu);
	if (chance(s, 3)) {
		file_close(k);
		if (file_make(k))
			FAILF("file %d of the pool: %s", k, strerror(errno));
		pthread_mutex_unlock(&file_mu);
		return;
	}
	switch (k) {
	case FF_EVENTFD:
		if (rn(s, 2))
			(void)!write(fz_peer[k], &one, sizeof(one));
		else
			(void)!read(fz_peer[k], &one, sizeof(one));
		break;
	case FF_TIMERFD:
		switch (rn(s, 3)) {
		case 0:		/* once, in a millisecond or two */
			it.it_value.tv_nsec = 1000000 * (1 + rn(s, 2));
			break;
		case 1:		/* a few times */
			it.it_value.tv_nsec = 1000000;
			it.it_interval.tv_nsec = 5000000 + 1000000 * rn(s, 15);
			break;
		default:	/* disarmed, and drained */
			(void)!read(fz_peer[k], &one, sizeof(one));
			break;
		}
		timerfd_settime(fz_peer[k], 0, &it, NULL);
		break;
	case FF_PIPE_R:
	case FF_UNIX:	/* (after a shutdown: EPIPE, no signal) */
		if (rn(s, 2) && k == FF_PIPE_R)
			(void)!write(fz_peer[k], junk, 1 + rn(s, 512));
		else if (k == FF_UNIX && rn(s, 2))
			(void)!send(fz_peer[k], junk, 1 + rn(s, 512), MSG_NOSIGNAL | MSG_DONTWAIT);
		else
			while (read(fz_file[k], junk, sizeof(junk)) > 0)
				;
		if (k == FF_UNIX && chance(s, 5))
			shutdown(fz_peer[k], SHUT_WR);	/* EPOLLRDHUP */
		break;
	case FF_PIPE_W:		/* full (no EPOLLOUT), then drained */
		if (rn(s, 2))
			for (i = 0; i < 64 && write(fz_file[k], junk, sizeof(junk)) > 0; i++)
				;
		else
			while (read(fz_peer[k], junk, sizeof(junk)) > 0)
				;
		break;
	case FF_UDP:
		if (rn(s, 2))
			(void)!send(fz_peer[k], junk, 1 + rn(s, 1024), MSG_DONTWAIT);
		else
			while (recv(fz_file[k], junk, sizeof(junk), MSG_DONTWAIT) > 0)
				;
		break;
	}
	pthread_mutex_unlock(&file_mu);
}

/* The peers, the listeners, the buffers, the files. */
static void *chaos_thread(void *arg)
{
	uint64_t s = seed0 * 31 + 77;
	static char junk[8192];
	struct linger lg = { 1, 0 };
	int k, fd, v;

	(void)arg;
	while (!atomic_load(&stop)) {
		atomic_fetch_add(&st->chaos, 1);
		k = rn(&s, FZ_PEERS);
		pthread_mutex_lock(&peer_mu);
		fd = peers[k];
		switch (rn(&s, 16)) {
		case 0: case 1: case 2:	/* a new client */
			if (fd < 0)
				peers[k] = lib_connect(AF_INET, FZ_PORT + rn(&s, FZ_LISTENERS), true);
			break;
		case 3: case 4:
			if (fd >= 0)
				send(fd, junk, 1 + rn(&s, sizeof(junk)), MSG_DONTWAIT | MSG_NOSIGNAL);
			break;
		case 5: case 6:
			if (fd >= 0)
				while (recv(fd, junk, sizeof(junk), MSG_DONTWAIT) > 0)
					;
			break;
		case 7:
			if (fd >= 0)
				shutdown(fd, rn(&s, 3));
			break;
		case 8:		/* close (maybe a registered fd), maybe with a RST */
			if (fd >= 0) {
				if (rn(&s, 2))
					setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
				close(fd);
				peers[k] = -1;
			}
			break;
		case 9:
			v = rn(&s, 2) ? 2048 : 1 << 20;
			if (fd >= 0)
				setsockopt(fd, SOL_SOCKET, rn(&s, 2) ? SO_RCVBUF : SO_SNDBUF,
					   &v, sizeof(v));
			v = 1;
			if (fd >= 0)
				setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, sizeof(v));
			break;
		case 10:	/* a listener: shut down and back, or options */
			v = rn(&s, FZ_LISTENERS);
			if (chance(&s, 20)) {
				shutdown(lfd[v], SHUT_RDWR);
				listen(lfd[v], 64);
			} else if (chance(&s, 10)) {
				listen(lfd[v], 64);
			} else {
				int one = rn(&s, 2);

				setsockopt(lfd[v], SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
			}
			break;
		case 11:	/* buffers: away and back, read-only */
			v = rn(&s, FZ_BUFS);
			if (rn(&s, 2)) {
				munmap(bufs[v], FZ_BUFSZ);
				usleep(rn(&s, 2000));
				mmap(bufs[v], FZ_BUFSZ, PROT_READ | PROT_WRITE,
				     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
			} else {
				mprotect(bufs[v], FZ_BUFSZ, PROT_READ);
				usleep(rn(&s, 2000));
				mprotect(bufs[v], FZ_BUFSZ, PROT_READ | PROT_WRITE);
			}
			break;
		case 12: case 13: case 14:
			pthread_mutex_unlock(&peer_mu);
			file_chaos(&s);
			pthread_mutex_lock(&peer_mu);
			break;
		default:
			break;
		}
		pthread_mutex_unlock(&peer_mu);
		if (chance(&s, 30))
			usleep(rn(&s, 500));
	}
	return NULL;
}

/*
 * The end: cancel everything, disconnect every connection, and reap until
 * nothing is outstanding; then nothing more may come.
 */
static void finish(void)
{
	struct megapipe_req q[256];
	struct megapipe_cqe c[256];
	struct megapipe_submit out;
	unsigned int n = 0, i, t, left;
	uint64_t end = lib_now_ms() + 4 * LIB_DEADLINE_MS;
	struct pend p[256];
	struct rec *r;

	for (int pass = 0; pass < 200; pass++) {
		pthread_mutex_lock(&mu);
		n = 0;
		for (t = 0; t < FZ_THREADS; t++)
			for (i = 0; i < nowned[t] && n < 254; i++) {
				r = owned[t][i];
				memset(&q[n], 0, sizeof(q[n]));
				memset(&p[n], 0, sizeof(p[n]));
				q[n].opcode = MEGAPIPE_OP_CANCEL;
				q[n].handle = r->h;
				p[n].r = r;
				p[n].q = 3;
				r->cancels++;
				n++;
				if (r->kind == K_CONN && !r->closing) {
					memset(&q[n], 0, sizeof(q[n]));
					memset(&p[n], 0, sizeof(p[n]));
					q[n].opcode = MEGAPIPE_OP_DISCONNECT;
					q[n].handle = r->h;
					p[n].r = r;
					p[n].q = 2;
					p[n].disc = true;
					r->closing = true;
					r->wr[(r->wr_h + r->wr_n++) % FZ_Q] =
						(struct wq_ent){ MEGAPIPE_OP_DISCONNECT, 0 };
					n++;
				}
			}
		memset(&q[n], 0, sizeof(q[n]));
		memset(&p[n], 0, sizeof(p[n]));
		q[n].opcode = MEGAPIPE_OP_CANCEL;
		q[n].handle = MEGAPIPE_NO_HANDLE;
		p[n++].q = 5;
		anon_cancels++;
		for (i = 0; i < n; i++)
			q[i].user_data = FZ_UD(q[i].opcode, q[i].handle);
		/* only a prefix may go in per call; the rest next pass */
		if (mp_sub(ch, q, n, c, 256, 0, 0, &out)) {
			FAILF("final SUBMIT: %s", strerror(errno));
			pthread_mutex_unlock(&mu);
			return;
		}
		settle_batch(q, p, n, out.submitted, out.error);
		reap_cqes(c, out.completed);
		/* reap until what was taken is done */
		left = 0;
		for (int w = 0; w < 50; w++) {
			left = connects + anon_cancels;
			for (i = 0; i < FZ_MAXIDX; i++)
				if (cur[i])
					left += outstanding(cur[i]);
			if (!left)
				break;
			if (mp_sub(ch, NULL, 0, c, 256, 1, 20000000LL, &out)) {
				FAILF("final reap: %s", strerror(errno));
				break;
			}
			reap_cqes(c, out.completed);
		}
		n = 0;
		for (t = 0; t < FZ_THREADS; t++)
			for (i = 0; i < nowned[t]; i++)
				n += owned[t][i]->kind == K_CONN;
		pthread_mutex_unlock(&mu);
		if ((!n && !left) || atomic_load(&st->failed))
			break;
		if (lib_now_ms() > end) {
			FAILF("final: %u handles live, %u requests outstanding after %d ms",
			      n, left, 4 * LIB_DEADLINE_MS);
			for (i = 0; i < FZ_MAXIDX; i++)
				if (cur[i] && outstanding(cur[i]))
					fprintf(stderr, "  handle %#x kind %d closing %d: %u reads/accepts, %u writes, %u cancels, %u polls\n",
						cur[i]->h, cur[i]->kind, cur[i]->closing,
						cur[i]->rd_n, cur[i]->wr_n, cur[i]->cancels,
						cur[i]->npoll);
			return;
		}
	}
	/* nothing more may come */
	if (!mp_sub(ch, NULL, 0, c, 256, 1, 200000000LL, &out) && out.completed) {
		FAILF("%u completions after every request completed (op %u handle %#x result %d)",
		      out.completed, c[0].opcode, c[0].handle, c[0].result);
	}
}

/* The fuzz child: runs until the bound, checks, exits 0 / 1. */
static void fuzz_child(uint64_t seed, uint64_t ms, bool final)
{
	pthread_t th[FZ_THREADS + 1];
	unsigned int t, i;

	seed0 = seed;
	end_ms = lib_now_ms() + ms;
	ch = mp_open(FZ_CQ);
	if (ch < 0)
		_exit(20);
	for (i = 0; i < FZ_BUFS; i++) {
		bufs[i] = mmap(NULL, FZ_BUFSZ, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (bufs[i] == MAP_FAILED)
			_exit(21);
	}
	fz_rmem = malloc((size_t)FZ_RBUFS * FZ_RBUFSZ);
	if (!fz_rmem)
		_exit(21);
	for (i = 0; i < FZ_RBUFS; i++)
		fz_release(i);
	{
		struct megapipe_buffers b = {
			.ring = (uintptr_t)fz_ring, .tail = (uintptr_t)&fz_tail,
			.entries = FZ_RBUFS,
		};

		if (ioctl(ch, MEGAPIPE_IOC_BUFFERS, &b))
			_exit(22);
	}
	for (i = 0; i < FZ_PEERS; i++)
		peers[i] = -1;
	for (i = 0; i < FZ_FILES; i++)
		if (file_make(i))
			_exit(23);
	fz_refuse[0] = epoll_create1(EPOLL_CLOEXEC);
	fz_refuse[1] = open("/dev/null", O_RDWR | O_CLOEXEC);
	fz_refuse[2] = open("/", O_PATH | O_CLOEXEC);
	if (fz_refuse[0] < 0 || fz_refuse[1] < 0 || fz_refuse[2] < 0)
		_exit(23);
	for (i = 0; i < FZ_LISTENERS; i++) {
		int v = 1 << 16;

		lfd[i] = lib_listener(AF_INET, FZ_PORT + i, 256, 0);
		if (lfd[i] < 0)
			_exit(22);
		if (i == 1)	/* children inherit a small locked send buffer */
			setsockopt(lfd[i], SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
	}
	for (t = 0; t < FZ_THREADS; t++)
		pthread_create(&th[t], NULL, fuzz_thread, (void *)(uintptr_t)t);
	pthread_create(&th[FZ_THREADS], NULL, chaos_thread, NULL);
	for (t = 0; t <= FZ_THREADS; t++)
		pthread_join(th[t], NULL);
	if (final && !atomic_load(&st->failed)) {
		for (i = 0; i < FZ_BUFS; i++)	/* everything mapped again */
			mmap(bufs[i], FZ_BUFSZ, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		finish();
	}
	close(ch);
	for (i = 0; i < FZ_PEERS; i++)
		if (peers[i] >= 0)
			close(peers[i]);
	for (i = 0; i < FZ_LISTENERS; i++)
		close(lfd[i]);
	for (i = 0; i < FZ_FILES; i++)
		file_close(i);
	_exit(atomic_load(&st->failed) ? 1 : 0);
}

/* ---- the parent: netns, memory cgroup, baselines --------------------------- */

static char cg[128];

static long cg_slab(void)
{
	char path[192], line[256];
	long v = -1, n;
	FILE *f;

	if (!cg[0])
		return -1;
	snprintf(path, sizeof(path), "%s/memory.stat", cg);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "slab %ld", &n) == 1)
			v = n;
	fclose(f);
	return v;
}

/* A memory cgroup for the fuzz children, or none (cg[0] == 0). */
static void cg_make(void)
{
	char path[192];

	write_str("/sys/fs/cgroup/cgroup.subtree_control", "+memory");
	snprintf(cg, sizeof(cg), "/sys/fs/cgroup/mpfuzz-%d", getpid());
	if (mkdir(cg, 0755) && errno != EEXIST) {
		cg[0] = 0;
		return;
	}
	snprintf(path, sizeof(path), "%s/memory.stat", cg);
	if (access(path, R_OK))
		cg[0] = 0;
}

FIXTURE(fz) {
	uint64_t seed;
	long slab0;
};

FIXTURE_SETUP(fz)
{
	const char *e = getenv("MP_FUZZ_SEED");

	if (access(MEGAPIPE_DEVICE, F_OK))
		SKIP(return, "no " MEGAPIPE_DEVICE " (CONFIG_MEGAPIPE)");
	if (lib_netns_enter()) {
		if (errno == EPERM)
			SKIP(return, "needs CAP_SYS_ADMIN for a netns");
		ASSERT_EQ(0, -errno);
	}
	ASSERT_EQ(0, lib_raise_nofile(4096));
	ASSERT_EQ(0, lib_tcp_inuse());
	/* no TIME_WAIT sockets (charged to the cgroup for 60 s): close at once */
	write_str("/proc/sys/net/ipv4/tcp_max_tw_buckets", "0");
	self->seed = e ? strtoull(e, NULL, 0) : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	if (!self->seed)
		self->seed = 1;
	st = mmap(NULL, sizeof(*st), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, st);
	memset(st, 0, sizeof(*st));
	e = getenv("MP_FUZZ_REQUESTS");
	stop_after = e ? strtoull(e, NULL, 0) : 0;
	e = getenv("MP_FUZZ_FAILSLAB");
	failslab = !(e && !strcmp(e, "0")) && failslab_setup(true);
	cg_make();
	self->slab0 = cg_slab();
	printf("# seed %llu (MP_FUZZ_SEED=%llu reproduces the random choices); failslab %s; memory cgroup %s\n",
	       (unsigned long long)self->seed, (unsigned long long)self->seed,
	       failslab ? "on" : "not there (skipped)", cg[0] ? cg : "none");
}

FIXTURE_TEARDOWN(fz)
{
	if (failslab)
		failslab_setup(false);
	if (cg[0])
		rmdir(cg);
}

/* Fork a fuzz child in the cgroup; kill_ms: SIGKILL it then (0: never). */
static int run_child(uint64_t seed, uint64_t ms, uint64_t kill_ms)
{
	char path[192], pid_s[32];
	int status;
	pid_t pid;

	pid = fork();
	if (pid < 0)
		return -1;
	if (!pid) {
		if (cg[0]) {
			snprintf(path, sizeof(path), "%s/cgroup.procs", cg);
			snprintf(pid_s, sizeof(pid_s), "%d", getpid());
			write_str(path, pid_s);
		}
		fuzz_child(seed, ms, !kill_ms);
	}
	if (kill_ms) {
		usleep(kill_ms * 1000);
		kill(pid, SIGKILL);
	}
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	if (kill_ms && WIFSIGNALED(status))
		return 0;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/*
 * TCP sockets of this netns that something still holds: a socket with an
 * inode (a struct socket: an fd, a registered file or a channel's
 * lightweight socket).  An orphan finishing its close (FIN_WAIT1 against
 * a zero window, LAST_ACK, ...) has none and is TCP's, not a leak.  Each
 * held one is listed.
 */
static int tcp_held(void)
{
	const char *files[] = { "/proc/net/tcp", "/proc/net/tcp6" };
	unsigned long ino;
	unsigned int i, st;
	char line[512];
	int n = 0;
	FILE *f;

	for (i = 0; i < 2; i++) {
		f = fopen(files[i], "r");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f)) {
			if (sscanf(line, " %*d: %*x:%*x %*x:%*x %x %*x:%*x %*x:%*x %*x %*d %*d %lu",
				   &st, &ino) != 2)
				continue;
			printf("# %s: state %u inode %lu: %s", ino ? "held" : "orphan",
			       st, ino, line);
			n += !!ino;
		}
		fclose(f);
	}
	return n;
}

/* After the channel is gone: sockets and the cgroup's slab back. */
static void check_baseline(struct __test_metadata *_metadata, long slab0)
{
	uint64_t end = lib_now_ms() + 4 * LIB_DEADLINE_MS;
	long slab = -1, us = 0, inuse;

	/* every socket gone, or only orphans TCP is still closing */
	inuse = wait_inuse(0, 4 * LIB_DEADLINE_MS);
	if (inuse) {
		printf("# TCP inuse %ld after 60 s: orphans still closing, or held\n",
		       inuse);
		EXPECT_EQ(0, tcp_held());
	}
	if (slab0 < 0)
		return;
	/*
	 * Objects freed after an RCU grace period (sockets, inodes) and
	 * per-CPU stat batches: settle, and allow a little slack.
	 */
	do {
		write_str("/proc/sys/vm/drop_caches", "2");
		slab = cg_slab();
		if (slab <= slab0 + (128 << 10))
			break;
		lib_backoff(&us);
	} while (lib_now_ms() < end);
	printf("# cgroup slab: %ld bytes at start, %ld after\n", slab0, slab);
	EXPECT_GE(slab0 + (128 << 10), slab);
}

static void report(const char *what, uint64_t seed)
{
	printf("# %s: seed %llu: %lu requests fuzzed (%lu taken) in %lu submits, %lu completions (%lu into buffers, %lu of POLLs), %lu register/unregister/export/sockopt ioctls (%lu REGISTER_FILE, %lu taken), %lu with failslab, %lu chaos actions\n",
	       what, (unsigned long long)seed, atomic_load(&st->reqs),
	       atomic_load(&st->taken), atomic_load(&st->submits),
	       atomic_load(&st->cqes), atomic_load(&st->bufcqes), atomic_load(&st->polls),
	       atomic_load(&st->ioctls), atomic_load(&st->files),
	       atomic_load(&st->files_taken),
	       atomic_load(&st->faults), atomic_load(&st->chaos));
	if (atomic_load(&st->failed))
		printf("# FAILED (seed %llu): %s\n", (unsigned long long)seed, st->msg);
	fflush(stdout);
}

TEST_F_TIMEOUT(fz, random_batches, 86400)
{
	const char *e = getenv("MP_FUZZ_SECS");
	uint64_t secs = e ? strtoull(e, NULL, 0) : 20;
	int rc;

	if (stop_after && !e)
		secs = 86400;
	rc = run_child(self->seed, secs * 1000, 0);
	report("random_batches", self->seed);
	EXPECT_EQ(0, rc) TH_LOG("seed %llu: %s", (unsigned long long)self->seed, st->msg);
	check_baseline(_metadata, self->slab0);
}

TEST_F_TIMEOUT(fz, sigkill_midway, 86400)
{
	const char *e = getenv("MP_FUZZ_KILLS");
	int kills = e ? atoi(e) : 3, i, rc;
	uint64_t s = self->seed ^ 0x5a5a;

	for (i = 0; i < kills; i++) {
		stop_after = 0;
		rc = run_child(self->seed + i, 60000, 300 + rn(&s, 1500));
		EXPECT_EQ(0, rc || atomic_load(&st->failed))
			TH_LOG("seed %llu: %s", (unsigned long long)self->seed + i, st->msg);
		if (rc || atomic_load(&st->failed))
			break;
	}
	report("sigkill_midway", self->seed);
	check_baseline(_metadata, self->slab0);
}

TEST_HARNESS_MAIN
