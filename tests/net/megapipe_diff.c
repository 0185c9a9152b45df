// SPDX-License-Identifier: GPL-2.0
/*
 * megapipe_diff: differential test of libmegapipe's two backends.
 *
 * A seed makes a random script: peers connecting over loopback to a
 * listener registered in the channel (some of them zero-window: a tiny
 * receive buffer, never read), ACCEPTs, READs, WRITEs and WRITEVs (small,
 * or large enough to stay partly sent), CANCELs with partial op masks,
 * DISCONNECTs, CONNECTs to a plain listener, and peer actions (write,
 * read, shutdown, reset) and shutdown() of the listener; and the requests
 * of issue 17: POLLs (one-shot and multishot, EPOLLIN and EPOLLOUT) on an
 * eventfd that steps write and drain, multishot READs into provided
 * buffers (the bytes and a hash of each buffer compared), ACCEPTs that
 * give the peers' addresses, a handle's TCP_NODELAY and peer name, and
 * user data on every request.  The script runs
 * once on the kernel backend (/dev/megapipe) and once on the epoll
 * backend, each in a child process in a netns of its own pinned to one
 * CPU, waiting after every step until the channel is quiet.  The two
 * transcripts must be the same: per handle and step, the completions
 * (op, result: exact for reads, full/partial/-errno for writes; a write
 * that completes in full at the step that submitted it, since when a
 * large one drains is timing), the library's refusals, and per peer the
 * stream it received (length and hash; only whether it matches the
 * writes' completions when a write was partial, since how much of a
 * partial write was queued depends on buffer tuning; only that it is a
 * prefix when the connection was reset, since how much of the send
 * queue a reset overtakes is timing).  Writes "at the limit", which may
 * meet a full send buffer, are held only to having ended, once (see
 * D_ROOM): how many bytes they took is TCP's timing; what they
 * took exactly is compared too, and a difference there is counted and
 * printed, not failed.  Each transcript must also match its own
 * completions: the peer's stream is the completed writes' bytes, in
 * order, writes keep their order, and nothing queued before a write
 * that ended short is sent after it, every completion carries its
 * request's user data (a write's: its step's), an ACCEPT's address and a
 * handle's peer name are its peer's ("RULE BROKEN").
 *
 * Environment: MP_DIFF_SEED (first seed; default from the clock, printed),
 * MP_DIFF_SCRIPTS (how many scripts, default 6), MP_DIFF_STEPS (steps
 * per script, default 40), MP_DIFF_JOBS (scripts run side by side,
 * default 1), MP_DIFF_VERBOSE=1 (print both transcripts), MP_DIFF_TRACE=1
 * (after each step, on stderr: the time and what each peer holds unread;
 * MP_DIFF_TRACE_SS=<step> adds ss -tnmi of the server's sockets from that
 * step on).
 * A failure prints its seed: MP_DIFF_SEED=<seed> MP_DIFF_SCRIPTS=1
 * reruns that script.  MP_DIFF_A=epoll runs the epoll backend against
 * itself (a check of the test's own determinism, on any kernel).
 */
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "listen_lib.h"
#include <megapipe.h>

#define D_PORT		(LIB_PORT + 20)	/* the channel's listener */
#define D_PLAIN		(LIB_PORT + 21)	/* a plain one, for CONNECTs */
#define D_MAXC		24
/*
 * A big write must stay partly sent until its peer reads: far more than
 * what a peer that does not read can hold (its 512 KiB receive buffer
 * and the server's 64 KiB send buffer, a little over 550 KiB of data
 * at most), so no race with window growth or skb truesize decides
 * whether it is "full" or "partial".
 */
#define D_BIG		(1 << 20)
#define D_OUT		(256 << 10)
/*
 * Every request carries user data naming its step, opcode and target (a
 * connection, or D_WHO_*; D_WHO_MS marks a multishot READ), which each
 * transcript checks against the request its completion ends.
 */
#define D_UD(step, op, who)	((uint64_t)(step) << 16 | (uint64_t)(op) << 8 | (who))
#define D_WHO_L		0xff	/* the listener */
#define D_WHO_K		0xfe	/* a CONNECT */
#define D_WHO_E		0xfd	/* the eventfd */
#define D_WHO_MS	0x80
/* buffers for multishot READs: group 0, never all out (released at once) */
#define D_BUFS		32
#define D_BUFSZ		8192
#define D_MAXPOLLS	24	/* POLLs per script */
#define D_MAXMS		3	/* multishot READs per connection */
#define D_MAXADDR	32	/* ACCEPTs with addresses per script */

static uint64_t rs;
static uint64_t rnd(void)
{
	rs ^= rs >> 12;
	rs ^= rs << 25;
	rs ^= rs >> 27;
	return rs * 0x2545F4914F6CDD1DULL;
}

static unsigned int rn(unsigned int n)
{
	return n ? rnd() % n : 0;
}

/* ---- transcript -------------------------------------------------------- */

/*
 * A line of the transcript: @text under @step is what the backends must
 * agree on; a line about writes at the limit (below) also keeps what
 * exactly happened, @exact under @xstep, for the report of timing
 * differences.  A line with no @text is in the exact transcript only.
 */
struct line {
	int step, xstep, cls, seq;
	int lim_conn;		/* a write at the limit of this connection, or -1 */
	char name[8];
	char text[128];
	char exact[64];
};

static struct line *lines;
static int nlines, maxlines = 20000;

static struct line *tr(int step, const char *name, int cls, const char *fmt, ...)
{
	static struct line spare;
	va_list ap;
	struct line *l = &spare;

	if (nlines < maxlines)
		l = &lines[nlines];
	memset(l, 0, sizeof(*l));
	l->lim_conn = -1;
	l->step = l->xstep = step;
	l->cls = cls;
	l->seq = nlines < maxlines ? nlines++ : 0;
	snprintf(l->name, sizeof(l->name), "%s", name);
	va_start(ap, fmt);
	vsnprintf(l->text, sizeof(l->text), fmt, ap);
	va_end(ap);
	return l;
}

/* What exactly happened, for a line about writes at the limit. */
static void tr_exact(struct line *l, int xstep, const char *fmt, ...)
{
	va_list ap;

	l->xstep = xstep;
	va_start(ap, fmt);
	vsnprintf(l->exact, sizeof(l->exact), fmt, ap);
	va_end(ap);
}

static bool by_xstep;
#define D_CLS_POLL	4	/* a POLL's completion */

static int line_cmp(const void *a, const void *b)
{
	const struct line *x = a, *y = b;
	int c;

	if (by_xstep && x->xstep != y->xstep)
		return x->xstep - y->xstep;
	if (!by_xstep && x->step != y->step)
		return x->step - y->step;
	c = strcmp(x->name, y->name);
	if (c)
		return c;
	if (x->cls != y->cls)
		return x->cls - y->cls;
	/* the POLLs one wakeup completes: in no promised order */
	if (x->cls == D_CLS_POLL) {
		c = strcmp(x->text, y->text);
		if (c)
			return c;
	}
	return x->seq - y->seq;
}

/* ---- the run ------------------------------------------------------------ */

struct conn {
	int h;			/* -1: none (yet) */
	int peer;		/* index in peers[] */
	bool closing, partial;
	uint64_t hash;		/* of the completed writes' bytes */
	uint64_t len;
	int nseg;		/* those bytes, as pieces of wbuf */
	struct { const char *p; size_t n; } seg[256];
	/*
	 * From the script alone, the same on both backends (the generator
	 * may look at these, never at what completed):
	 */
	uint64_t load;		/* bytes submitted since the peer last read all */
	int nsince;		/* writes submitted since then */
	bool lim_any;		/* a write at the limit was submitted */
	bool disc;		/* a DISCONNECT was submitted */
	bool disc_lim;		/* ... behind writes at the limit */
	unsigned int cancel_mask;	/* of the last CANCEL submitted */
	int cancel_step;	/* ... and its step */
	/* checked in each transcript (order, the hole rule) */
	int nsub;		/* writes submitted */
	int cut_from, cut_to;	/* writes numbered so must end with nothing sent */
	int cut_step;		/* ... at this step */
	int wcancelled;		/* writes ended by the CANCEL of this step */
};

struct wreq {			/* a write in flight: its bytes */
	int c;
	int step;		/* submitted at */
	int seqno;		/* its connection's nsub when submitted */
	bool lim;		/* may meet a full send buffer (w_submitted()) */
	const char *buf;
	const struct iovec *iov;
	int iovcnt;
	size_t total;
};

static struct conn conns[D_MAXC];
static int nconns;		/* accepted ones take A0.., connects K0.. */
static int peers[2 * D_MAXC], npeers, nacc_peers, ncon_peers;
static bool peer_zw[2 * D_MAXC];
static int acc_order[D_MAXC], con_order[D_MAXC], nacc, ncon;
static int dport_peer[2 * D_MAXC];	/* peers of the channel's listener, in connect order */
static int lh = -1;		/* the listener's handle */
static struct mp_channel *mp;
static int lfd, plain;
static int step_no;
static const char *trace;	/* MP_DIFF_TRACE: the backend's name, or NULL */
static struct timespec t0;
static char *wbuf;		/* D_BIG + 64K of pattern */
static struct wreq wq[D_MAXC][64];
static int wq_n[D_MAXC];
static int efd = -1, eh = -1;	/* an eventfd, and its handle (POLLs) */
static int npolls;		/* POLLs submitted */
static int ms_sub[D_MAXC];	/* multishot READs submitted */
static char *bufmem;		/* group 0 */
/*
 * ACCEPTs of the listener not ended, by the step that queued them (one
 * a step at most): where their addresses go, or NULL.
 */
static struct {
	int step;
	struct sockaddr_storage *addrs;
	int next;
} accq[64];
static int accq_n;
static struct sockaddr_storage addr_pool[D_MAXADDR][2];
static int naddr;

static const char *ename(int e)
{
	static char b[16];

	switch (e) {
	case EBADF: return "EBADF";
	case EINVAL: return "EINVAL";
	case EBUSY: return "EBUSY";
	case ECANCELED: return "ECANCELED";
	case ECONNRESET: return "ECONNRESET";
	case EPIPE: return "EPIPE";
	case ECONNREFUSED: return "ECONNREFUSED";
	case EFAULT: return "EFAULT";
	case ENOTCONN: return "ENOTCONN";
	case ENOBUFS: return "ENOBUFS";
	case ENOSPC: return "ENOSPC";
	}
	snprintf(b, sizeof(b), "E%d", e);
	return b;
}

static void cname(int c, char *b)
{
	int k;

	for (k = 0; k < nacc; k++)
		if (acc_order[k] == c) {
			sprintf(b, "A%d", k);
			return;
		}
	for (k = 0; k < ncon; k++)
		if (con_order[k] == c) {
			sprintf(b, "K%d", k);
			return;
		}
	sprintf(b, "?%d", c);
}

static int conn_of(int h)
{
	int c;

	for (c = 0; c < nconns; c++)
		if (conns[c].h == h)
			return c;
	return -1;
}

/* Label the request just queued (mp_set_user_data()). */
static void ud(int op, int who)
{
	if (mp_set_user_data(mp, D_UD(step_no, op, who)))
		tr(step_no, "!", 3, "RULE BROKEN: user data refused: %s", ename(errno));
}

/* A completion carries its request's user data: opcode and target. */
static void ud_check(const struct mp_completion *e, const char *nm, int who)
{
	unsigned int uop = e->user_data >> 8 & 0xff, uwho = e->user_data & 0xff;

	if (uop != e->op || (uwho & ~D_WHO_MS) != (unsigned int)(who & ~D_WHO_MS) ||
	    e->user_data >> 16 > (uint64_t)step_no)
		tr(step_no, nm, 3, "RULE BROKEN: op %d completion with user data %#llx",
		   e->op, (unsigned long long)e->user_data);
}

/*
 * Writes "at the limit".  A write that may meet its connection's send
 * buffer full takes as many bytes as TCP finds room for, and that is not
 * a function of the script.  A send that fills the buffer frees the
 * segments the peer has ACKed only if the ACK came in before one of the
 * backlog flushes tcp_sendmsg() makes every 16 segments: it leaves the
 * buffer full, or one segment short, as the peer's delayed ACK fired.
 * One segment of room is less than EPOLLOUT waits for (a third of the
 * buffer), so neither backend retries; the next write submitted takes
 * it, or finds none (traced with MP_DIFF_TRACE_SS:
 * docs/measurements/diff-20261205/seed-50194-ss.txt).  So for such a
 * write the transcripts hold only that it ended, once, under the step
 * that submitted it, with a byte count, -ECANCELED, -EPIPE or
 * -ECONNRESET (another errno is compared as it is); a DISCONNECT or a
 * CANCEL of writes behind one, only a result other than 0 or the count.
 * Each transcript still checks for itself that its peer streams are its
 * completions' bytes and that writes keep their order and the hole rule
 * ("RULE BROKEN").
 *
 * A write is at the limit when the bytes submitted to its connection
 * since its peer last read everything, this one's included, pass what
 * the connection surely holds: D_ROOM_ZW with a zero-window peer (a
 * 2 KiB window and 1 KiB segments: the 64 KiB send buffer holds about
 * 38 KiB of data), D_ROOM with one that reads (a window of 150 KiB and
 * more).  Decided from the script alone: the same on both backends.
 */
#define D_ROOM_ZW	(16 << 10)
#define D_ROOM		(64 << 10)

static uint64_t room(int c)
{
	int p = conns[c].peer;

	return p >= 0 && peer_zw[p] ? D_ROOM_ZW : D_ROOM;
}

/* Write @w (wq[c][wq_n[c]]) was taken for connection @c. */
static void w_submitted(int c, struct wreq *w)
{
	struct conn *cn = &conns[c];

	cn->load += w->total;
	cn->nsince++;
	w->lim = cn->load > room(c);
	cn->lim_any |= w->lim;
	w->seqno = cn->nsub++;
	if (wq_n[c] < 63)
		wq_n[c]++;
	else	/* the script bounds them (nsince): the test's own bug */
		tr(step_no, "!", 3, "RULE BROKEN: more writes pending than the test keeps");
}

static bool cancels_writes(unsigned int mask)
{
	return !mask || (mask & (MP_CANCEL_OP(MP_OP_WRITE) | MP_CANCEL_OP(MP_OP_WRITEV)));
}

static uint64_t hash_add(uint64_t hsh, const char *p, size_t n)
{
	while (n--)
		hsh = (hsh ^ (unsigned char)*p++) * 0x100000001b3ULL;
	return hsh;
}

/* The first @n bytes of write request @w go into conn @c's expected stream. */
static void seg_add(struct conn *c, const char *p, size_t n)
{
	c->hash = hash_add(c->hash, p, n);
	if (c->nseg < 256)
		c->seg[c->nseg++] = (typeof(c->seg[0])){ p, n };
	else
		c->nseg = 1000;	/* too many to tell a prefix */
}

static void stream_add(struct conn *c, const struct wreq *w, size_t n)
{
	int i;

	c->len += n;
	if (w->buf) {
		seg_add(c, w->buf, n);
		return;
	}
	for (i = 0; i < w->iovcnt && n; i++) {
		size_t k = n < w->iov[i].iov_len ? n : w->iov[i].iov_len;

		seg_add(c, w->iov[i].iov_base, k);
		n -= k;
	}
}

/* Hash of the first @len bytes the completions say were sent, or 0. */
static uint64_t prefix_hash(const struct conn *c, uint64_t len)
{
	uint64_t hsh = 0xcbf29ce484222325ULL;
	int i;

	if (c->nseg > 256)
		return 0;
	for (i = 0; i < c->nseg && len; i++) {
		size_t k = len < c->seg[i].n ? len : c->seg[i].n;

		hsh = hash_add(hsh, c->seg[i].p, k);
		len -= k;
	}
	return hsh;
}

/*
 * An ACCEPT with addresses: the i-th connection it took has its peer's
 * address in addrs[i]; the peer is the test's own socket (its port).
 */
static int accq_find(const struct mp_completion *e)
{
	int q;

	for (q = 0; q < accq_n; q++)
		if (accq[q].step == (int)(e->user_data >> 16))
			return q;
	return -1;
}

static void accept_addr(const struct mp_completion *e, int c, char *ad)
{
	struct sockaddr_storage *a;
	int p = conns[c].peer, q = accq_find(e);

	if (q < 0 || !accq[q].addrs)
		return;
	a = &accq[q].addrs[accq[q].next < 2 ? accq[q].next : 1];
	if (p < 0 || peers[p] < 0) {
		strcpy(ad, " addr ?");
		return;
	}
	if (a->ss_family != AF_INET || lib_addr_port(a) != lib_sock_port(peers[p])) {
		char nm[8];

		cname(c, nm);
		tr(step_no, nm, 0, "RULE BROKEN: ACCEPT's address: family %d port %d, peer's port %d",
		   a->ss_family, lib_addr_port(a), lib_sock_port(peers[p]));
	}
	strcpy(ad, " addr");
}

static void on_completion(const struct mp_completion *e)
{
	char nm[8], res[32];
	int c, cls = 0;

	if (e->op == MP_OP_ACCEPT || e->op == MP_OP_CONNECT) {
		char ad[16] = "";

		ud_check(e, e->op == MP_OP_ACCEPT ? "L" : "K",
			 e->op == MP_OP_ACCEPT ? D_WHO_L : D_WHO_K);
		if (e->result >= 0 && e->new_handle >= 0 && nconns < D_MAXC) {
			c = nconns++;
			conns[c].h = e->new_handle;
			conns[c].hash = 0xcbf29ce484222325ULL;
			if (e->op == MP_OP_ACCEPT) {
				acc_order[nacc++] = c;
				conns[c].peer = nacc <= nacc_peers ? dport_peer[nacc - 1] : -1;
			} else {
				con_order[ncon++] = c;
				conns[c].peer = -1;	/* set when the plain accept() runs */
			}
			cname(c, nm);
			snprintf(res, sizeof(res), "ok -> %s", nm);
			if (e->op == MP_OP_ACCEPT)
				accept_addr(e, c, ad);
		} else {
			snprintf(res, sizeof(res), "%s", e->result < 0 ? ename(-e->result) : "ok?");
		}
		if (e->op == MP_OP_ACCEPT && accq_find(e) >= 0) {
			/* its ACCEPT (a refused one need not be the oldest): one more, or ended */
			int q = accq_find(e);

			if (e->result >= 0)
				accq[q].next++;
			if (!(e->flags & MP_F_MORE))
				accq[q] = accq[--accq_n];
		}
		if (e->op == MP_OP_ACCEPT)
			tr(step_no, "L", 0, "ACCEPT %s%s%s", res, ad, e->flags & MP_F_MORE ? " more" : "");
		else
			tr(step_no, "K", 0, "CONNECT %s", res);
		return;
	}
	if (eh >= 0 && e->handle == eh) {
		ud_check(e, "E", D_WHO_E);
		if (e->op == MP_OP_POLL && e->result >= 0)
			tr(step_no, "E", D_CLS_POLL, "POLL %#x%s", e->result,
			   e->flags & MP_F_MORE ? " more" : "");
		else if (e->op == MP_OP_POLL)
			tr(step_no, "E", D_CLS_POLL, "POLL %s", ename(-e->result));
		else if (e->op == MP_OP_CANCEL)
			tr(step_no, "E", 2, "CANCEL %d", e->result);
		else
			tr(step_no, "E", 1, "op %d result %d", e->op, e->result);
		return;
	}
	c = conn_of(e->handle);
	if (c < 0) {
		if (e->handle == lh)
			ud_check(e, "L", D_WHO_L);
		if (e->op == MP_OP_CANCEL)
			tr(step_no, e->handle == lh ? "L" : "?", 2, "CANCEL %d", e->result);
		else
			tr(step_no, e->handle == lh ? "L" : "?", 1, "op %d result %d", e->op, e->result);
		return;
	}
	cname(c, nm);
	ud_check(e, nm, c);
	switch (e->op) {
	case MP_OP_READ:
		snprintf(res, sizeof(res), "%d", e->result);
		if (e->result < 0)
			snprintf(res, sizeof(res), "%s", ename(-e->result));
		if (e->flags & MP_F_BUFFER) {
			/* what it read, and the buffer back at once */
			const char *b = mp_buffer(mp, 0, e->new_handle);

			if (!b || e->result <= 0 || e->result > D_BUFSZ) {
				tr(step_no, nm, 0, "RULE BROKEN: READ into buffer %d: %d",
				   e->new_handle, e->result);
			} else {
				snprintf(res, sizeof(res), "%d h%04x", e->result,
					 (unsigned int)(hash_add(0xcbf29ce484222325ULL, b,
								 e->result) & 0xffff));
				if (mp_buffer_release(mp, 0, e->new_handle))
					tr(step_no, nm, 3, "RULE BROKEN: buffer %d not released: %s",
					   e->new_handle, ename(errno));
			}
		}
		if (!(e->user_data & D_WHO_MS) && (e->flags & (MP_F_BUFFER | MP_F_MORE)))
			tr(step_no, nm, 0, "RULE BROKEN: a READ into its own buffer with flags %#x",
			   e->flags);
		tr(step_no, nm, 0, "READ%s %s%s", e->user_data & D_WHO_MS ? " ms" : "", res,
		   e->flags & MP_F_MORE ? " more" : "");
		break;
	case MP_OP_WRITE:
	case MP_OP_WRITEV: {
		const char *opn = e->op == MP_OP_WRITE ? "WRITE" : "WRITEV";
		struct wreq w;
		int k, i;

		cls = 1;
		if (!wq_n[c]) {
			tr(step_no, nm, 1, "write completion with none pending");
			break;
		}
		/* writes complete in order (per opcode) */
		for (k = 0; k < wq_n[c] && (wq[c][k].buf ? MP_OP_WRITE : MP_OP_WRITEV) != e->op; k++)
			;
		if (k == wq_n[c]) {
			tr(step_no, nm, 1, "op %d completion with none pending", e->op);
			break;
		}
		w = wq[c][k];
		for (i = k; i + 1 < wq_n[c]; i++)
			wq[c][i] = wq[c][i + 1];
		wq_n[c]--;
		if ((int)(e->user_data >> 16) != w.step)
			tr(step_no, nm, cls, "RULE BROKEN: %s of step %d completed with user data of step %d",
			   opn, w.step, (int)(e->user_data >> 16));
		/*
		 * Order and the hole rule: bytes of a write go out only when
		 * every write submitted before it has ended (a WRITE behind
		 * a pending WRITEV may be cancelled first, sending nothing),
		 * and after a write ends short or with an error, the writes
		 * queued behind it send nothing.
		 */
		if (e->result > 0 && (k > 0 || (w.seqno >= conns[c].cut_from &&
						       w.seqno < conns[c].cut_to)))
			tr(step_no, nm, cls, "RULE BROKEN: %s sent %d bytes %s", opn, e->result,
			   k ? "with an earlier write pending" : "after a write ended short");
		/* -ECANCELED: a CANCEL of this step named it, or the hole rule */
		if (e->result == -ECANCELED &&
		    !(w.seqno >= conns[c].cut_from && w.seqno < conns[c].cut_to) &&
		    !(conns[c].cancel_step == step_no &&
		      (!conns[c].cancel_mask || (conns[c].cancel_mask & MP_CANCEL_OP(e->op)))))
			tr(step_no, nm, cls, "RULE BROKEN: %s cancelled by no CANCEL naming it", opn);
		if (conns[c].cancel_step == step_no &&
		    (e->result == -ECANCELED || (e->result > 0 && e->result < (int)w.total)))
			conns[c].wcancelled++;
		/* the writes queued behind one that ends short send nothing */
		if (e->result < (int)w.total && e->result != -ECANCELED &&
		    w.seqno + 1 < conns[c].nsub) {
			conns[c].cut_from = w.seqno + 1;
			conns[c].cut_to = conns[c].nsub;
			conns[c].cut_step = step_no;
		}
		if (e->result == (int)w.total) {
			snprintf(res, sizeof(res), "full");
		} else if (e->result > 0) {
			snprintf(res, sizeof(res), "partial");
			conns[c].partial = true;
		} else {
			snprintf(res, sizeof(res), "%s", ename(-e->result));
		}
		if (e->result > 0)
			stream_add(&conns[c], &w, e->result);
		/*
		 * A write that completes in full is recorded at the step that
		 * submitted it: when a large one drains depends on the peer's
		 * ACKs and window, i.e. on timing, which "quiet" only bounds.
		 * Short, failed and cancelled ones stay where they happened.
		 */
		k = e->result == (int)w.total ? w.step : step_no;
		if (w.lim && (e->result >= 0 || e->result == -ECANCELED ||
			      e->result == -EPIPE || e->result == -ECONNRESET)) {
			struct line *l = tr(w.step, nm, cls, "%s at the limit: ended", opn);

			tr_exact(l, k, "%s %s", opn, res);
			l->lim_conn = c;
		} else {
			tr(k, nm, cls, "%s %s", opn, res);
		}
		break;
	}
	case MP_OP_DISCONNECT:
		/* its writes completed before it (each transcript) */
		if (wq_n[c] && !e->result)
			tr(step_no, nm, 1, "RULE BROKEN: DISCONNECT with %d writes pending", wq_n[c]);
		if (!conns[c].disc_lim)
			tr(step_no, nm, 1, "DISCONNECT %d", e->result);
		else	/* when: as the writes before it */
			tr_exact(tr(step_no, nm, 1, e->result ? "DISCONNECT behind writes at the limit: %d" : "",
				    e->result), step_no, "DISCONNECT %d", e->result);
		if (!e->result)
			conns[c].h = -2;	/* gone */
		break;
	case MP_OP_CANCEL:
		/*
		 * How many it ended: as many writes at the limit were left,
		 * so the writes it ended (their completions came before it)
		 * are taken out.
		 */
		if (conns[c].load > room(c) && cancels_writes(conns[c].cancel_mask))
			tr_exact(tr(step_no, nm, 2, "CANCEL %d and writes at the limit",
				    e->result < 0 ? e->result : e->result - conns[c].wcancelled),
				 step_no, "CANCEL %d", e->result);
		else
			tr(step_no, nm, 2, "CANCEL %d", e->result);
		break;
	default:
		tr(step_no, nm, 2, "op %d result %d", e->op, e->result);
	}
}

/*
 * MP_DIFF_TRACE=1: after each step, on stderr (not in the transcript), the
 * time and what each peer has received but not read: a zero-window peer's
 * queue grows only when TCP's persist timer probes it, so this shows where
 * a difference is one of timing.
 */
static void trace_peers(void)
{
	struct timespec t;
	int p, inq;

	if (!trace)
		return;
	clock_gettime(CLOCK_MONOTONIC, &t);
	fprintf(stderr, "# trace %s %5ld ms step %d:", trace,
		(t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000,
		step_no);
	for (p = 0; p < npeers; p++)
		if (peers[p] >= 0 && !ioctl(peers[p], FIONREAD, &inq))
			fprintf(stderr, " p%d=%d", p, inq);
	fprintf(stderr, "\n");
	if (getenv("MP_DIFF_TRACE_SS") && step_no >= atoi(getenv("MP_DIFF_TRACE_SS"))) {
		char cmd[128];

		fflush(stderr);
		snprintf(cmd, sizeof(cmd), "ss -tnmi '( sport = :%d )' >&2", D_PORT);
		if (system(cmd))
			fprintf(stderr, "# ss failed\n");
	}
}

/* Until the channel has been quiet for a while; plain accepts on the way. */
static void settle(void)
{
	struct mp_completion e;
	int quiet = 0, r, fd;

	while (quiet < 2) {
		r = mp_dispatch(mp, &e, 30);
		if (r == 1) {
			on_completion(&e);
			quiet = 0;
			continue;
		}
		if (r < 0 && errno != ENOENT)
			tr(step_no, "!", 3, "dispatch: %s", ename(errno));
		if (r < 0)
			usleep(30000);
		while ((fd = accept4(plain, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
			peers[npeers] = fd;
			if (ncon_peers < ncon)
				conns[con_order[ncon_peers]].peer = npeers;
			ncon_peers++;
			npeers++;
		}
		quiet++;
	}
	trace_peers();
}

static void refused(int c_or_l, const char *op)
{
	char nm[8] = "L";

	if (c_or_l >= 0)
		cname(c_or_l, nm);
	else if (c_or_l == -2)
		strcpy(nm, "E");
	tr(step_no, nm, 3, "%s refused %s", op, ename(errno));
}

static int peer_new(bool zw)
{
	struct sockaddr_storage ss;
	socklen_t len = lib_lo_addr(AF_INET, D_PORT, &ss);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), v = zw ? 2048 : 256 << 10;

	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
	if (connect(fd, (struct sockaddr *)&ss, len)) {
		tr(step_no, "P", 3, "connect: %s", ename(errno));
		close(fd);
		return -1;
	}
	fcntl(fd, F_SETFL, O_NONBLOCK);
	return fd;
}

static uint64_t rx_hash[2 * D_MAXC], rx_len[2 * D_MAXC];
/* the peer saw its connection reset (a close with input unread) */
static bool peer_rst[2 * D_MAXC];

static void peer_err(int p, int err)
{
	if (err == ECONNRESET || err == EPIPE)
		peer_rst[p] = true;
}

static int peer_drain(int p)
{
	static char b[65536];
	ssize_t n;
	int tot = 0;

	if (p < 0 || peers[p] < 0)
		return -1;
	while ((n = recv(peers[p], b, sizeof(b), 0)) > 0) {
		rx_hash[p] = hash_add(rx_hash[p], b, n);
		rx_len[p] += n;
		tot += n;
	}
	if (n < 0)
		peer_err(p, errno);
	return tot;
}

static char rbufs[D_MAXC][8192];

/*
 * The hole rule, in each transcript: the writes queued behind one that
 * ended short this step ended too (-ECANCELED), in this step.
 */
static void check_cuts(void)
{
	char nm[8];
	int c, k;

	for (c = 0; c < nconns; c++) {
		if (conns[c].cut_step != step_no)
			continue;
		for (k = 0; k < wq_n[c]; k++) {
			if (wq[c][k].seqno < conns[c].cut_from ||
			    wq[c][k].seqno >= conns[c].cut_to)
				continue;
			cname(c, nm);
			tr(step_no, nm, 1, "RULE BROKEN: a write queued behind one that ended short is still pending");
			break;
		}
	}
}

/*
 * A DISCONNECT submitted behind writes at the limit runs when they end:
 * on one backend perhaps, never on the other (a closing handle cannot be
 * cancelled).  Their lines are compared exactly only.
 */
static void lim_unsettled(void)
{
	int i;

	for (i = 0; i < nlines; i++)
		if (lines[i].lim_conn >= 0 && conns[lines[i].lim_conn].disc_lim)
			lines[i].text[0] = 0;
}

/* An ACCEPT of the listener was queued; @addrs: where its addresses go. */
static void accepted(struct sockaddr_storage *addrs)
{
	ud(MP_OP_ACCEPT, D_WHO_L);
	if (accq_n < 64) {
		accq[accq_n].step = step_no;
		accq[accq_n].addrs = addrs;
		accq[accq_n++].next = 0;
	}
}

/*
 * The requests of issue 17: POLLs on an eventfd (one-shot and multishot)
 * and what makes it readable or not, multishot READs into provided
 * buffers, a handle's socket options and peer address, ACCEPTs that give
 * the peers' addresses.  @a: a connection, maybe not there.
 */
static void extra_step(unsigned int x, int a)
{
	bool usable = a < nconns && conns[a].h >= 0 && !conns[a].disc;
	uint64_t v = 1;
	unsigned int k;
	char nm[8];

	if (x < 5) {
		static const unsigned int ev[] = {
			EPOLLIN, EPOLLIN, EPOLLOUT, EPOLLIN | EPOLLOUT };
		unsigned int m = ev[rn(4)], f = rn(2) ? MP_POLL_MULTISHOT : 0;

		tr(step_no, "#", -1, "step poll E %#x%s", m, f ? " multishot" : "");
		if (npolls >= D_MAXPOLLS) {
			errno = ENOSPC;
			refused(-2, "POLL");
		} else if (npolls++, mp_poll(mp, eh, m, f)) {
			refused(-2, "POLL");
		} else {
			ud(MP_OP_POLL, D_WHO_E);
		}
	} else if (x < 9) {
		if (rn(3)) {
			tr(step_no, "#", -1, "step event E");
			if (write(efd, &v, sizeof(v)) != sizeof(v))
				tr(step_no, "E", 3, "eventfd write: %s", ename(errno));
		} else {
			tr(step_no, "#", -1, "step event-drain E");
			if (read(efd, &v, sizeof(v)) != sizeof(v))
				tr(step_no, "E", 3, "eventfd read: %s", ename(errno));
		}
	} else if (x < 11) {
		static const unsigned int masks[] = {
			0, MP_CANCEL_OP(MP_OP_POLL), MP_CANCEL_OP(MP_OP_READ) };

		k = masks[rn(3)];
		tr(step_no, "#", -1, "step cancel E %#x", k);
		if (mp_cancel(mp, eh, k))
			refused(-2, "CANCEL");
		else
			ud(MP_OP_CANCEL, D_WHO_E);
	} else if (!usable && x < 19) {
		tr(step_no, "#", -1, "step none");
	} else if (x < 15) {
		cname(a, nm);
		tr(step_no, "#", -1, "step read-ms %s", nm);
		if (ms_sub[a] >= D_MAXMS) {
			errno = ENOSPC;
			refused(a, "READ-MS");
		} else if (ms_sub[a]++, mp_read_multishot(mp, conns[a].h, 0)) {
			refused(a, "READ-MS");
		} else {
			ud(MP_OP_READ, a | D_WHO_MS);
		}
	} else if (x < 19) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss), ol;
		int on = rn(2), got = -1, p = conns[a].peer;

		cname(a, nm);
		tr(step_no, "#", -1, "step sockopt %s nodelay %d", nm, on);
		if (mp_setsockopt(mp, conns[a].h, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)))
			refused(a, "SETSOCKOPT");
		ol = sizeof(got);
		if (mp_getsockopt(mp, conns[a].h, IPPROTO_TCP, TCP_NODELAY, &got, &ol))
			refused(a, "GETSOCKOPT");
		else
			tr(step_no, nm, 3, "TCP_NODELAY %d (%u bytes)", got, ol);
		if (mp_getpeername(mp, conns[a].h, (struct sockaddr *)&ss, &sl)) {
			refused(a, "GETPEERNAME");
		} else if (p < 0 || peers[p] < 0) {
			tr(step_no, nm, 3, "peer name (peer gone)");
		} else if (ss.ss_family != AF_INET ||
			   lib_addr_port(&ss) != lib_sock_port(peers[p])) {
			tr(step_no, nm, 3, "RULE BROKEN: peer name: family %d port %d, the peer's port %d",
			   ss.ss_family, lib_addr_port(&ss), lib_sock_port(peers[p]));
		} else {
			tr(step_no, nm, 3, "peer name ok");
		}
	} else {
		struct sockaddr_storage *ad;

		k = 1 + rn(2);
		tr(step_no, "#", -1, "step accept-addr %u", k);
		if (naddr >= D_MAXADDR) {
			errno = ENOSPC;
			refused(-1, "ACCEPT");
			return;
		}
		ad = addr_pool[naddr++];
		memset(ad, 0, 2 * sizeof(*ad));
		if (mp_accept_addr(mp, lh, k, 0, ad))
			refused(-1, "ACCEPT");
		else
			accepted(ad);
	}
}

/*
 * Run the script of seed @seed; the generator draws the same numbers on
 * both backends: no choice depends on what happened.
 */
static void run(uint64_t seed, int steps)
{
	struct iovec iovs[D_MAXC][64][4];
	int iv = 0, i, c, ret;
	char nm[8];

	rs = seed * 0x9E3779B97F4A7C15ULL | 1;
	for (i = 0; i < D_BIG + 65536; i++)
		wbuf[i] = (char)(rnd() >> 56);
	for (c = 0; c < D_MAXC; c++)
		conns[c].h = -1;
	for (i = 0; i < 2 * D_MAXC; i++) {
		peers[i] = -1;
		rx_hash[i] = 0xcbf29ce484222325ULL;
	}
	{
		int v = 32 << 10;

		lfd = lib_listener(AF_INET, D_PORT, 64, 0);
		/* the accepted sockets inherit a small, fixed send buffer */
		setsockopt(lfd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
		plain = lib_listener(AF_INET, D_PLAIN, 64, SOCK_NONBLOCK);
	}
	lh = mp_register(mp, lfd, 0, NULL, 0);
	if (lh < 0) {
		tr(0, "!", 3, "register: %s", ename(errno));
		return;
	}
	/* an eventfd for POLLs, buffers for multishot READs */
	efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	eh = mp_register_file(mp, efd, 0x5e);
	if (eh < 0)
		tr(0, "!", 3, "register_file: %s", ename(errno));
	bufmem = aligned_alloc(4096, D_BUFS * D_BUFSZ);
	if (!bufmem || mp_provide_buffers(mp, 0, bufmem, D_BUFSZ, D_BUFS))
		tr(0, "!", 3, "provide_buffers: %s", ename(errno));
	for (step_no = 1; step_no <= steps + 1; step_no++) {
		unsigned int d = rn(100), k;
		int a = nconns ? (int)rn(nconns + 1) : 0;	/* may be one not there */
		bool last = step_no == steps + 1;
		unsigned int x = rn(100);

		if (a >= D_MAXC)
			a = D_MAXC - 1;
		if (last) {
			/* the end: cancel everything, disconnect everything */
			tr(step_no, "#", -1, "step end");
			for (c = 0; c < nconns; c++) {
				/* a closing handle: the library refuses both */
				if (conns[c].h < 0 || conns[c].disc)
					continue;
				conns[c].cancel_mask = 0;
				conns[c].cancel_step = step_no;
				conns[c].wcancelled = 0;
				if (mp_cancel(mp, conns[c].h, 0))
					refused(c, "CANCEL");
				else
					ud(MP_OP_CANCEL, c);
				if (mp_disconnect(mp, conns[c].h))
					refused(c, "DISCONNECT");
				else
					ud(MP_OP_DISCONNECT, c);
			}
			if (mp_cancel(mp, lh, 0))
				refused(-1, "CANCEL");
			else
				ud(MP_OP_CANCEL, D_WHO_L);
			if (eh >= 0) {
				if (mp_cancel(mp, eh, 0))
					refused(-2, "CANCEL");
				else
					ud(MP_OP_CANCEL, D_WHO_E);
			}
			settle();
			check_cuts();
			break;
		}
		if (x < 24) {
			extra_step(x, a >= D_MAXC ? D_MAXC - 1 : a);
		} else if (d < 14 && npeers < D_MAXC) {
			bool zw = rn(3) == 0;

			tr(step_no, "#", -1, "step peer connect%s", zw ? " zero-window" : "");
			peers[npeers] = peer_new(zw);
			peer_zw[npeers] = zw;
			dport_peer[nacc_peers++] = npeers;
			/* accepted ones map to peers in connect order */
			npeers++;
		} else if (d < 24) {
			k = 1 + rn(2);
			tr(step_no, "#", -1, "step accept %u", k);
			if (mp_accept(mp, lh, k, 0))
				refused(-1, "ACCEPT");
			else
				accepted(NULL);
		} else if (d < 27) {
			struct sockaddr_storage ss;
			socklen_t len = lib_lo_addr(AF_INET, rn(4) ? D_PLAIN : D_PLAIN + 5, &ss);

			tr(step_no, "#", -1, "step connect");
			if (mp_connect(mp, (struct sockaddr *)&ss, len, 7))
				refused(-1, "CONNECT");
			else
				ud(MP_OP_CONNECT, D_WHO_K);
		} else if (d < 29) {
			/* with an ACCEPT pending */
			tr(step_no, "#", -1, "step accept 1 + listener shutdown");
			if (mp_accept(mp, lh, 1, 0))
				refused(-1, "ACCEPT");
			else
				accepted(NULL);
			mp_flush(mp);
			settle();
			shutdown(lfd, SHUT_RDWR);
		} else if (d < 31) {
			k = rn(2) ? 0 : MP_CANCEL_OP(MP_OP_ACCEPT);
			tr(step_no, "#", -1, "step cancel L %#x", k);
			if (mp_cancel(mp, lh, k))
				refused(-1, "CANCEL");
			else
				ud(MP_OP_CANCEL, D_WHO_L);
		} else if (a >= nconns || conns[a].h < 0 || conns[a].disc) {
			/*
			 * A step on a connection that is not there, or is
			 * closing (its DISCONNECT may wait behind writes at the
			 * limit on one backend only): the same on both.
			 */
			tr(step_no, "#", -1, "step none");
		} else if (d < 45) {
			cname(a, nm);
			k = 1 + rn(rn(2) ? 8192 : 100);
			tr(step_no, "#", -1, "step read %s %u", nm, k);
			if (mp_read(mp, conns[a].h, rbufs[a], k))
				refused(a, "READ");
			else
				ud(MP_OP_READ, a);
		} else if (d < 62 || (d < 70 && conns[a].nsince < 60)) {
			bool big = rn(4) == 0, v = d >= 55;
			struct wreq *w = &wq[a][wq_n[a] < 62 ? wq_n[a] : 62];

			cname(a, nm);
			memset(w, 0, sizeof(*w));
			w->c = a;
			w->step = step_no;
			if (!v) {
				w->total = big ? D_BIG : 1 + rn(4000);
				w->buf = wbuf + rn(65536);
				tr(step_no, "#", -1, "step write %s %zu", nm, w->total);
				ret = conns[a].nsince < 60 ? mp_write(mp, conns[a].h, w->buf, w->total) :
							     (errno = ENOSPC, -1);
			} else {
				struct iovec *io = iovs[a][iv++ % 64];

				w->iovcnt = 1 + rn(4);
				for (i = 0; i < w->iovcnt; i++) {
					io[i].iov_len = big && !i ? D_BIG : rn(3000);
					io[i].iov_base = wbuf + rn(65536);
					w->total += io[i].iov_len;
				}
				w->iov = io;
				tr(step_no, "#", -1, "step writev %s %zu", nm, w->total);
				ret = conns[a].nsince < 60 ? mp_writev(mp, conns[a].h, io, w->iovcnt) :
							     (errno = ENOSPC, -1);
			}
			if (ret)
				refused(a, v ? "WRITEV" : "WRITE");
			else
				ud(v ? MP_OP_WRITEV : MP_OP_WRITE, a), w_submitted(a, w);
		} else if (d < 76) {
			static const unsigned int masks[] = {
				0, MP_CANCEL_OP(MP_OP_WRITE), MP_CANCEL_OP(MP_OP_WRITEV),
				MP_CANCEL_OP(MP_OP_READ),
				MP_CANCEL_OP(MP_OP_WRITE) | MP_CANCEL_OP(MP_OP_READ),
			};

			k = masks[rn(5)];
			cname(a, nm);
			if (rn(3) == 0 && conns[a].nsince < 58) {
				/* a big WRITE, a WRITEV behind it, CANCEL of WRITEs only */
				struct wreq *w = &wq[a][wq_n[a] < 62 ? wq_n[a] : 62];
				struct iovec *io = iovs[a][iv++ % 64];

				memset(w, 0, 2 * sizeof(*w));
				w->c = w[1].c = a;
				w->step = w[1].step = step_no;
				w->buf = wbuf + rn(65536);
				w->total = D_BIG;
				io[0].iov_base = wbuf + rn(65536);
				io[0].iov_len = 1 + rn(3000);
				w[1].iov = io;
				w[1].iovcnt = 1;
				w[1].total = io[0].iov_len;
				tr(step_no, "#", -1, "step write %s %u + writev %zu + cancel WRITE",
				   nm, D_BIG, io[0].iov_len);
				if (mp_write(mp, conns[a].h, w->buf, w->total))
					refused(a, "WRITE");
				else
					ud(MP_OP_WRITE, a), w_submitted(a, w);
				if (mp_writev(mp, conns[a].h, io, 1)) {
					refused(a, "WRITEV");
				} else {
					ud(MP_OP_WRITEV, a);
					/* the WRITE's slot, if it was refused */
					if (&wq[a][wq_n[a]] != w + 1 && wq_n[a] < 63)
						wq[a][wq_n[a]] = w[1];
					w_submitted(a, &wq[a][wq_n[a] < 63 ? wq_n[a] : 63]);
				}
				mp_flush(mp);
				settle();
				k = MP_CANCEL_OP(MP_OP_WRITE);
			}
			tr(step_no, "#", -1, "step cancel %s %#x", nm, k);
			conns[a].cancel_mask = k;
			conns[a].cancel_step = step_no;
			conns[a].wcancelled = 0;
			if (mp_cancel(mp, conns[a].h, k))
				refused(a, "CANCEL");
			else
				ud(MP_OP_CANCEL, a);
		} else if (d < 80) {
			cname(a, nm);
			tr(step_no, "#", -1, "step disconnect %s", nm);
			if (mp_disconnect(mp, conns[a].h)) {
				refused(a, "DISCONNECT");
			} else {
				ud(MP_OP_DISCONNECT, a);
				conns[a].disc = true;
				conns[a].disc_lim = conns[a].load > room(a);
			}
		} else if (d < 88) {
			int p = conns[a].peer;

			k = 1 + rn(4000);
			cname(a, nm);
			tr(step_no, "#", -1, "step peer-of-%s write %u", nm, k);
			if (p >= 0 && peers[p] >= 0)
				send(peers[p], wbuf + 7, k, MSG_NOSIGNAL);
		} else if (d < 95) {
			cname(a, nm);
			tr(step_no, "#", -1, "step peer-of-%s read", nm);
			/*
			 * Read until nothing more comes: the kernel backend
			 * refills the window while the peer reads, the epoll
			 * one only when dispatched, so one pass would leave
			 * their writes at different points.  A zero-window
			 * peer reads once: its few KiB at a time would take
			 * hundreds of passes.
			 */
			if (conns[a].peer >= 0 && peer_zw[conns[a].peer]) {
				peer_drain(conns[a].peer);	/* a little */
			} else {
				for (k = 0; k < 1000 && (ret = peer_drain(conns[a].peer)) > 0; k++)
					settle();
				/* it read all: every write completed */
				if (!ret) {
					conns[a].load = 0;
					conns[a].nsince = 0;
				}
			}
		} else if (d < 98) {
			int p = conns[a].peer;

			cname(a, nm);
			tr(step_no, "#", -1, "step peer-of-%s shutdown wr", nm);
			if (p >= 0 && peers[p] >= 0)
				shutdown(peers[p], SHUT_WR);
		} else {
			struct linger lg = { 1, 0 };
			int p = conns[a].peer;

			cname(a, nm);
			tr(step_no, "#", -1, "step peer-of-%s reset", nm);
			if (p >= 0 && peers[p] >= 0) {
				setsockopt(peers[p], SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
				close(peers[p]);
				peers[p] = -2;
			}
		}
		if (mp_flush(mp) < 0)
			tr(step_no, "!", 3, "flush: %s", ename(errno));
		settle();
		check_cuts();
	}
	/* what each peer got */
	step_no = 10000;
	for (c = 0; c < nconns; c++) {
		static char b[65536];
		int p = conns[c].peer, fd, tries = 0;
		char what[128];
		bool ok = true;
		uint64_t hsh, len;
		ssize_t r;

		cname(c, nm);
		if (p < 0 || peers[p] < 0) {
			tr(step_no, nm, 0, "peer gone");
			continue;
		}
		fd = peers[p];
		hsh = rx_hash[p];
		len = rx_len[p];
		for (;;) {
			r = recv(fd, b, sizeof(b), 0);
			if (r > 0) {
				hsh = hash_add(hsh, b, r);
				len += r;
				tries = 0;
				continue;
			}
			if (r < 0 && errno == EAGAIN && ++tries < 20) {
				usleep(10000);
				continue;
			}
			if (r < 0)
				peer_err(p, errno);
			break;
		}
		/*
		 * A socket closed with input unread resets the connection and
		 * drops what it had not sent: then the peer has a prefix.
		 */
		if (wq_n[c]) {	/* the library keeps a closing handle's writes */
			snprintf(what, sizeof(what), "peer stream not checked: %d writes never completed",
				 wq_n[c]);
		/*
		 * Whether a reset overtakes the last of the completed writes
		 * is timing (how far the send queue drained before the close):
		 * both backends must reset, and keep a prefix.
		 */
		} else if (peer_rst[p] && ((len == conns[c].len && hsh == conns[c].hash) ||
					   (len < conns[c].len && hsh == prefix_hash(&conns[c], len)))) {
			snprintf(what, sizeof(what), "peer stream is a prefix of the writes' completions, then a reset");
		} else if (len < conns[c].len && hsh == prefix_hash(&conns[c], len)) {
			snprintf(what, sizeof(what), "peer stream is a prefix of the writes' completions (reset)");
			ok = false;	/* no reset seen: compared as it is */
		} else if (len != conns[c].len || hsh != conns[c].hash) {
			snprintf(what, sizeof(what), "peer stream does NOT match the writes' completions (%llu bytes, completions say %llu)",
				 (unsigned long long)len, (unsigned long long)conns[c].len);
			ok = false;
		} else if (conns[c].partial) {
			snprintf(what, sizeof(what), "peer stream matches (a write was partial)");
		} else {
			snprintf(what, sizeof(what), "peer stream %llu bytes hash %016llx",
				 (unsigned long long)len, (unsigned long long)hsh);
		}
		/*
		 * After writes at the limit, how many bytes they sent, and so
		 * whether a DISCONNECT behind them ran, was TCP's timing: the
		 * stream is held against this transcript's completions only
		 * (a stream shorter than them with no reset seen, or one
		 * that does not match, is compared as it is).
		 */
		if (ok && conns[c].lim_any)
			tr_exact(tr(step_no, nm, 0, "peer stream: writes at the limit (checked against the completions if all ended)"),
				 step_no, "%.63s", what);
		else
			tr(step_no, nm, 0, "%s", what);
	}
	lim_unsettled();
}

#define D_EXACT		"---- exactly\n"

/* One script on one backend, in a child: its transcript into @buf. */
static int run_child(uint64_t seed, int steps, const char *backend, char *buf, size_t cap)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (!pid) {
		size_t o = 0;
		int i, cpus[64], ncpu;

		setenv("MEGAPIPE_BACKEND", backend, 1);
		if (getenv("MP_DIFF_TRACE") && atoi(getenv("MP_DIFF_TRACE")))
			trace = backend;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		if (lib_netns_enter())
			_exit(10);
		/* both backends of a script on one CPU; scripts spread over them */
		ncpu = lib_cpus(cpus, 64);
		lib_pin(ncpu > 0 ? cpus[seed % ncpu] : 0);
		lines = calloc(maxlines, sizeof(*lines));
		wbuf = malloc(D_BIG + 65536);
		mp = mp_create(0, 1024);
		if (!lines || !wbuf || !mp)
			_exit(11);
		run(seed, steps);
		/* what must agree, then (after D_EXACT) what exactly happened */
		qsort(lines, nlines, sizeof(*lines), line_cmp);
		for (i = 0; i < nlines && o + 160 < cap; i++)
			if (lines[i].text[0])
				o += snprintf(buf + o, cap - o, "%5d %-3s %s\n", lines[i].step,
					      lines[i].name, lines[i].text);
		o += snprintf(buf + o, cap - o, D_EXACT);
		by_xstep = true;
		qsort(lines, nlines, sizeof(*lines), line_cmp);
		for (i = 0; i < nlines && o + 160 < cap; i++)
			o += snprintf(buf + o, cap - o, "%5d %-3s %s\n", lines[i].xstep, lines[i].name,
				      lines[i].exact[0] ? lines[i].exact : lines[i].text);
		buf[o] = 0;
		mp_destroy(mp);
		_exit(0);
	}
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/*
 * Print the first difference: one line that names it (the CI log keeps
 * little of a failing test's output), then a little context.
 */
static void show_diff(FILE *f, uint64_t seed, const char *a, const char *b, bool brief)
{
	const char *pa = a, *pb = b, *ctx[4] = { NULL };
	int n = 0, i;

	while (*pa && *pb) {
		const char *ea = strchr(pa, '\n'), *eb = strchr(pb, '\n');

		if (!ea || !eb)
			break;
		if (ea - pa != eb - pb || memcmp(pa, pb, ea - pa))
			break;
		ctx[n++ % 4] = pa;
		pa = ea + 1;
		pb = eb + 1;
	}
	fprintf(f, "# seed %llu: %s: kernel \"%.*s\", epoll \"%.*s\"\n",
		(unsigned long long)seed,
		brief ? "equal; writes at the limit took other byte counts" : "the backends differ",
		(int)(strchrnul(pa, '\n') - pa), pa, (int)(strchrnul(pb, '\n') - pb), pb);
	if (brief)
		return;
	fprintf(f, "#   same before it:\n");
	for (i = n > 4 ? n - 4 : 0; i < n; i++) {
		const char *p = ctx[i % 4];

		fprintf(f, "#     %.*s\n", (int)(strchr(p, '\n') - p), p);
	}
	for (i = 0; i < 2; i++) {
		const char *p = i ? pb : pa;
		int k;

		fprintf(f, "#   %s backend goes on:\n", i ? "epoll" : "kernel");
		for (k = 0; *p && k < 8; k++) {
			const char *e = strchrnul(p, '\n');

			fprintf(f, "#   %c %.*s\n", i ? 'E' : 'K', (int)(e - p), p);
			p = *e ? e + 1 : e;
		}
	}
	fprintf(f, "# rerun: MP_DIFF_SEED=%llu MP_DIFF_SCRIPTS=1 MP_DIFF_VERBOSE=1\n",
		(unsigned long long)seed);
}

FIXTURE(diff) {
	int unused;
};

FIXTURE_SETUP(diff)
{
}

FIXTURE_TEARDOWN(diff)
{
}

/*
 * Script @s on both backends: 0 same, 1 a difference (reported on @f),
 * 2 the same but for what writes at the limit took (reported in one
 * line), -1 a run that did not finish (reported).
 */
static int diff_one(FILE *f, uint64_t s, int steps, const char *ba, char *kb,
		    char *eb, size_t cap, bool verbose)
{
	int rc, bad = 0;
	char *kx, *ex;

	kb[0] = eb[0] = 0;
	rc = run_child(s, steps, ba, kb, cap);
	if (rc) {
		fprintf(f, "# seed %llu: kernel run exit %d\n", (unsigned long long)s, rc);
		return -1;
	}
	rc = run_child(s, steps, "epoll", eb, cap);
	if (rc) {
		fprintf(f, "# seed %llu: epoll run exit %d\n", (unsigned long long)s, rc);
		return -1;
	}
	if (!kb[0] || !eb[0]) {
		fprintf(f, "# seed %llu: an empty transcript (%s backend)\n", (unsigned long long)s,
			kb[0] ? "epoll" : "kernel");
		return -1;
	}
	if (verbose)
		fprintf(f, "# seed %llu kernel:\n%s# seed %llu epoll:\n%s",
			(unsigned long long)s, kb, (unsigned long long)s, eb);
	if (strstr(kb, "NOT match") || strstr(eb, "NOT match")) {
		fprintf(f, "# seed %llu: a peer's stream does not match its writes' completions (%s backend)\n",
			(unsigned long long)s, strstr(kb, "NOT match") ? "kernel" : "epoll");
		bad = 1;
	}
	if (strstr(kb, "RULE BROKEN") || strstr(eb, "RULE BROKEN")) {
		fprintf(f, "# seed %llu: writes out of order or past a hole (%s backend)\n",
			(unsigned long long)s, strstr(kb, "RULE BROKEN") ? "kernel" : "epoll");
		bad = 1;
	}
	kx = strstr(kb, D_EXACT);
	ex = strstr(eb, D_EXACT);
	if (!kx || !ex) {
		fprintf(f, "# seed %llu: a transcript cut short\n", (unsigned long long)s);
		return -1;
	}
	*kx = *ex = 0;
	if (strcmp(kb, eb)) {
		show_diff(f, s, kb, eb, false);
		bad = 1;
	} else if (!bad && strcmp(kx + strlen(D_EXACT), ex + strlen(D_EXACT))) {
		show_diff(f, s, kx + strlen(D_EXACT), ex + strlen(D_EXACT), true);
		bad = 2;
	}
	return bad;
}

/* What the workers found, in memory they share. */
struct diff_tally {
	int done, bad, failed, timing;
};

/*
 * Worker @j of @jobs: scripts seed + i for i = j, j + jobs, ...  Each
 * report goes out in one write, so workers' reports do not interleave.
 */
static void diff_worker(struct diff_tally *t, int j, int jobs, uint64_t seed,
			int scripts, int steps, const char *ba, bool verbose)
{
	size_t cap = 1 << 20;
	/* shared: run_child()'s child writes the transcript here */
	char *kb = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	char *eb = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int i;

	if (kb == MAP_FAILED || eb == MAP_FAILED)
		_exit(1);
	for (i = j; i < scripts; i += jobs) {
		char *rep = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&rep, &len);
		int r;

		if (!f)
			_exit(1);
		r = diff_one(f, seed + i, steps, ba, kb, eb, cap, verbose);
		fclose(f);
		if (len && write(STDOUT_FILENO, rep, len) < 0)
			_exit(1);
		free(rep);
		if (__atomic_add_fetch(&t->done, 1, __ATOMIC_RELAXED) % 1000 == 0) {
			char p[96];
			int n = snprintf(p, sizeof(p), "# %d scripts done, %d with a difference\n",
					 __atomic_load_n(&t->done, __ATOMIC_RELAXED),
					 __atomic_load_n(&t->bad, __ATOMIC_RELAXED));

			if (write(STDOUT_FILENO, p, n) < 0)
				_exit(1);
		}
		if (r == 1)
			__atomic_add_fetch(&t->bad, 1, __ATOMIC_RELAXED);
		if (r == 2)
			__atomic_add_fetch(&t->timing, 1, __ATOMIC_RELAXED);
		if (r < 0)
			__atomic_add_fetch(&t->failed, 1, __ATOMIC_RELAXED);
	}
	_exit(0);
}

/*
 * MP_DIFF_JOBS workers (default 1) run scripts side by side: each script
 * is two children in netns of their own, mostly waiting for the channel
 * to be quiet.  Faster, but it stretches the timing "quiet" relies on: at
 * 48 jobs on 2 CPUs large writes complete a step later on one backend, or
 * are found partial by a CANCEL on one only (docs/channel.md).
 */
TEST_F_TIMEOUT(diff, kernel_vs_epoll, 86400)
{
	const char *e = getenv("MP_DIFF_SEED");
	uint64_t seed = e ? strtoull(e, NULL, 0) : (uint64_t)time(NULL);
	int scripts = getenv("MP_DIFF_SCRIPTS") ? atoi(getenv("MP_DIFF_SCRIPTS")) : 6;
	int steps = getenv("MP_DIFF_STEPS") ? atoi(getenv("MP_DIFF_STEPS")) : 40;
	int jobs = getenv("MP_DIFF_JOBS") ? atoi(getenv("MP_DIFF_JOBS")) : 1;
	bool verbose = getenv("MP_DIFF_VERBOSE") && atoi(getenv("MP_DIFF_VERBOSE"));
	const char *ba = getenv("MP_DIFF_A") ? getenv("MP_DIFF_A") : "kernel";
	struct diff_tally *t;
	int j, st, workers_ok = 1;
	uint64_t t0 = lib_now_ms();

	if (!strcmp(ba, "kernel") && access("/dev/megapipe", F_OK))
		SKIP(return, "no /dev/megapipe (CONFIG_MEGAPIPE)");
	ASSERT_LT(0, jobs);
	t = mmap(NULL, sizeof(*t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, t);
	printf("# first seed %llu, %d scripts of %d steps, %d at a time (MP_DIFF_SEED=<seed> MP_DIFF_SCRIPTS=1 reruns one)\n",
	       (unsigned long long)seed, scripts, steps, jobs);
	fflush(stdout);
	for (j = 0; j < jobs; j++) {
		pid_t pid = fork();

		ASSERT_LE(0, pid);
		if (!pid)
			diff_worker(t, j, jobs, seed, scripts, steps, ba, verbose);
	}
	for (j = 0; j < jobs; j++) {
		ASSERT_LT(0, wait(&st));
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			workers_ok = 0;
	}
	printf("# %d scripts run in %llu s, %d with a difference, %d runs did not finish; %d equal but for the bytes writes at the limit took\n",
	       t->done, (unsigned long long)(lib_now_ms() - t0) / 1000, t->bad, t->failed,
	       t->timing);
	EXPECT_TRUE(workers_ok);
	EXPECT_EQ(scripts, t->done);
	EXPECT_EQ(0, t->failed);
	EXPECT_EQ(0, t->bad);
	munmap(t, sizeof(*t));
}

TEST_HARNESS_MAIN
