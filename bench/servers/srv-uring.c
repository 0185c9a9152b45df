// SPDX-License-Identifier: GPL-2.0
/*
 * srv-uring: one io_uring per thread, the thread pinned to its CPU and
 * accepting on its own SO_REUSEPORT listener (CPU steering as in
 * srv-epoll-reuseport) or, with --shared-listener, on one shared listener.
 *
 * Per ring:
 *  - a multishot accept puts each new connection straight into the ring's
 *    registered file table (a direct descriptor, no fd table entry);
 *  - each connection has one multishot recv that takes its buffers from a
 *    provided buffer ring; the data is handed to the protocol and the
 *    buffer goes back to the ring at once;
 *  - responses go out with send on the fixed file, one send in flight per
 *    connection, the next responses queuing behind it;
 *  - the connection is closed with close_direct once neither its recv nor
 *    its send is outstanding, so no late completion can name a slot that a
 *    new connection already reuses.
 * A multishot request that completes without IORING_CQE_F_MORE has ended
 * (ENOBUFS, or the kernel's choice) and is armed again.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "server_common.h"

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#define SQ_ENTRIES	512
#define NBUFS		256		/* provided buffers per ring, a power of 2 */
#define BUF_SIZE	4096
#define BGID		0
#define OUT_HIGH	(256 * 1024)	/* stop receiving over this much output */

enum ud_kind { UD_ACCEPT, UD_RECV, UD_SEND, UD_CANCEL, UD_CLOSE, UD_STOP };

#define UD(kind, slot)	((__u64)(kind) << 32 | (slot))
#define UD_KIND(ud)	((unsigned int)((ud) >> 32))
#define UD_SLOT(ud)	((unsigned int)(ud))

enum uconn_state {
	C_FREE,				/* slot unused, or its close submitted */
	C_OPEN,
	C_CLOSING,			/* close once recv and send are done */
};

struct uconn {
	enum uconn_state state;
	struct srv_conn pc;
	struct srv_buf tx;		/* in flight: the kernel owns it */
	struct srv_buf out;		/* queued behind tx */
	size_t tx_off;			/* bytes of tx already sent */
	bool recv_armed;		/* the multishot recv is outstanding */
	bool sending;
	bool rx_paused;			/* recv cancelled until out drains */
};

struct userver {
	struct srv_thread *t;
	struct srv_stats *st;
	struct io_uring ring;
	struct io_uring_buf_ring *br;
	char *bufs;			/* NBUFS x BUF_SIZE */
	struct uconn *conns;		/* indexed by file table slot */
	bool accept_paused;		/* file table full: re-arm on a close */
	bool stop;
};

static const struct {
	unsigned int flags;
	const char *name;
} setup_modes[] = {
	{ IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
	  IORING_SETUP_COOP_TASKRUN,
	  "SINGLE_ISSUER|DEFER_TASKRUN|COOP_TASKRUN" },
	{ IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
	  "SINGLE_ISSUER|DEFER_TASKRUN" },
	{ IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN,
	  "SINGLE_ISSUER|COOP_TASKRUN" },
	{ IORING_SETUP_COOP_TASKRUN, "COOP_TASKRUN" },
	{ 0, "no flags" },
};

#if __has_include(<liburing/io_uring_version.h>)	/* liburing >= 2.4 */
static struct io_uring_buf_ring *buf_ring_setup(struct io_uring *ring)
{
	struct io_uring_buf_ring *br;
	int err;

	br = io_uring_setup_buf_ring(ring, NBUFS, BGID, 0, &err);
	if (!br)
		errno = -err;
	return br;
}

static void buf_ring_free(struct io_uring *ring, struct io_uring_buf_ring *br)
{
	io_uring_free_buf_ring(ring, br, NBUFS, BGID);
}
#else
/* liburing 2.3 (Debian bookworm) has no io_uring_setup_buf_ring(). */
#define BR_SIZE		(NBUFS * sizeof(struct io_uring_buf))

static struct io_uring_buf_ring *buf_ring_setup(struct io_uring *ring)
{
	struct io_uring_buf_reg reg = { .ring_entries = NBUFS, .bgid = BGID };
	struct io_uring_buf_ring *br;
	int err;

	br = mmap(NULL, BR_SIZE, PROT_READ | PROT_WRITE,
		  MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (br == MAP_FAILED)
		return NULL;
	reg.ring_addr = (unsigned long)br;
	err = io_uring_register_buf_ring(ring, &reg, 0);
	if (err) {
		munmap(br, BR_SIZE);
		errno = -err;
		return NULL;
	}
	io_uring_buf_ring_init(br);
	return br;
}

static void buf_ring_free(struct io_uring *ring, struct io_uring_buf_ring *br)
{
	io_uring_unregister_buf_ring(ring, BGID);
	munmap(br, BR_SIZE);
}
#endif

static void buf_recycle(struct userver *u, unsigned int bid)
{
	io_uring_buf_ring_add(u->br, u->bufs + (size_t)bid * BUF_SIZE, BUF_SIZE,
			      bid, io_uring_buf_ring_mask(NBUFS), 0);
	io_uring_buf_ring_advance(u->br, 1);
}

static struct io_uring_sqe *get_sqe(struct userver *u, enum ud_kind kind,
				    unsigned int slot)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
	int ret;

	if (!sqe) {			/* SQ full: make room */
		ret = io_uring_submit(&u->ring);
		if (ret < 0) {
			errno = -ret;
			srv_die("thread %d: io_uring_submit", u->t->idx);
		}
		sqe = io_uring_get_sqe(&u->ring);
	}
	io_uring_sqe_set_data64(sqe, UD(kind, slot));
	return sqe;
}

static void arm_accept(struct userver *u)
{
	struct io_uring_sqe *sqe = get_sqe(u, UD_ACCEPT, 0);

	io_uring_prep_multishot_accept_direct(sqe, u->t->lfd, NULL, NULL, 0);
}

static void arm_recv(struct userver *u, unsigned int slot)
{
	struct io_uring_sqe *sqe = get_sqe(u, UD_RECV, slot);

	io_uring_prep_recv_multishot(sqe, slot, NULL, 0, 0);
	sqe->flags |= IOSQE_FIXED_FILE | IOSQE_BUFFER_SELECT;
	sqe->buf_group = BGID;
	u->conns[slot].recv_armed = true;
}

static void cancel_recv(struct userver *u, unsigned int slot)
{
	io_uring_prep_cancel64(get_sqe(u, UD_CANCEL, slot), UD(UD_RECV, slot), 0);
}

static void send_tx(struct userver *u, unsigned int slot)
{
	struct uconn *c = &u->conns[slot];
	struct io_uring_sqe *sqe = get_sqe(u, UD_SEND, slot);

	io_uring_prep_send(sqe, slot, c->tx.data + c->tx_off,
			   c->tx.len - c->tx_off, MSG_NOSIGNAL);
	sqe->flags |= IOSQE_FIXED_FILE;
	c->sending = true;
}

/* Send the queued output, unless a send is already in flight. */
static void flush_out(struct userver *u, unsigned int slot)
{
	struct uconn *c = &u->conns[slot];
	struct srv_buf sent = c->tx;

	if (c->sending || !c->out.len)
		return;
	c->tx = c->out;
	c->out = sent;
	c->out.len = 0;
	c->tx_off = 0;
	send_tx(u, slot);
}

static void try_close(struct userver *u, unsigned int slot)
{
	struct uconn *c = &u->conns[slot];

	if (c->state != C_CLOSING || c->recv_armed || c->sending || c->out.len)
		return;
	io_uring_prep_close_direct(get_sqe(u, UD_CLOSE, slot), slot);
	c->state = C_FREE;
}

/* Stop receiving and close; @flush: send the queued output first. */
static void start_close(struct userver *u, unsigned int slot, bool flush)
{
	struct uconn *c = &u->conns[slot];

	if (!flush)
		c->out.len = 0;
	if (c->state == C_OPEN) {
		c->state = C_CLOSING;
		if (c->recv_armed && !c->rx_paused)
			cancel_recv(u, slot);
	}
	try_close(u, slot);
}

static void on_accept(struct userver *u, struct io_uring_cqe *cqe)
{
	struct uconn *c;

	if (cqe->res >= 0) {
		c = &u->conns[cqe->res];
		c->state = C_OPEN;
		srv_conn_reset(&c->pc);
		c->tx.len = 0;
		c->out.len = 0;
		c->rx_paused = false;
		u->st->accepted++;
		arm_recv(u, cqe->res);
	} else {
		/* ENFILE: file table full, the kernel dropped the connection */
		if (cqe->res == -ENFILE)
			u->accept_paused = true;
		if (cqe->res != -ECONNABORTED)
			u->st->errors++;
	}
	if (!(cqe->flags & IORING_CQE_F_MORE) && !u->accept_paused)
		arm_accept(u);
}

static void on_data(struct userver *u, unsigned int slot, const char *data,
		    size_t len)
{
	struct uconn *c = &u->conns[slot];

	if (srv_proto_input(&c->pc, u->t->opts, data, len, &c->out, u->st)) {
		u->st->errors++;
		start_close(u, slot, false);
		return;
	}
	flush_out(u, slot);
	if (c->pc.close_after) {
		start_close(u, slot, true);
	} else if (c->out.len > OUT_HIGH && c->recv_armed && !c->rx_paused) {
		c->rx_paused = true;	/* the peer is not reading */
		cancel_recv(u, slot);
	}
}

static void on_recv(struct userver *u, unsigned int slot,
		    struct io_uring_cqe *cqe)
{
	struct uconn *c = &u->conns[slot];
	unsigned int bid;

	if (!(cqe->flags & IORING_CQE_F_MORE))
		c->recv_armed = false;

	if (cqe->res > 0) {
		bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
		if (c->state == C_OPEN)
			on_data(u, slot, u->bufs + (size_t)bid * BUF_SIZE,
				cqe->res);
		buf_recycle(u, bid);
	} else if (cqe->res == 0) {		/* peer closed */
		start_close(u, slot, true);
	} else if (cqe->res != -ENOBUFS && cqe->res != -ECANCELED) {
		if (cqe->res != -ECONNRESET)
			u->st->errors++;
		start_close(u, slot, false);
	}

	if (!c->recv_armed && c->state == C_OPEN && !c->rx_paused)
		arm_recv(u, slot);
	try_close(u, slot);
}

static void on_send(struct userver *u, unsigned int slot, int res)
{
	struct uconn *c = &u->conns[slot];

	c->sending = false;
	if (res < 0) {
		if (res != -ECONNRESET && res != -EPIPE)
			u->st->errors++;
		start_close(u, slot, false);
		return;
	}
	c->tx_off += res;
	if (c->tx_off < c->tx.len) {		/* short send: send the rest */
		send_tx(u, slot);
		return;
	}
	c->tx.len = 0;
	flush_out(u, slot);
	if (c->rx_paused && !c->out.len) {
		c->rx_paused = false;
		if (!c->recv_armed && c->state == C_OPEN)
			arm_recv(u, slot);
	}
	try_close(u, slot);
}

static void on_close(struct userver *u, int res)
{
	if (res < 0)
		u->st->errors++;
	if (u->accept_paused) {
		u->accept_paused = false;
		arm_accept(u);
	}
}

static void handle_cqe(struct userver *u, struct io_uring_cqe *cqe)
{
	unsigned int slot = UD_SLOT(cqe->user_data);

	switch (UD_KIND(cqe->user_data)) {
	case UD_ACCEPT:
		on_accept(u, cqe);
		break;
	case UD_RECV:
		on_recv(u, slot, cqe);
		break;
	case UD_SEND:
		on_send(u, slot, cqe->res);
		break;
	case UD_CLOSE:
		on_close(u, cqe->res);
		break;
	case UD_CANCEL:		/* ENOENT/EALREADY: the recv ended anyway */
		break;
	case UD_STOP:
		u->stop = true;
		break;
	}
}

static void ring_init(struct userver *u)
{
	struct io_uring_params p;
	unsigned int i, n = u->t->opts->max_conns;
	int ret = -EINVAL;

	for (i = 0; i < ARRAY_SIZE(setup_modes) && ret == -EINVAL; i++) {
		memset(&p, 0, sizeof(p));
		p.flags = setup_modes[i].flags;
		ret = io_uring_queue_init_params(SQ_ENTRIES, &u->ring, &p);
	}
	if (ret < 0) {
		errno = -ret;
		srv_die("thread %d: io_uring_queue_init_params", u->t->idx);
	}
	if (u->t->idx == 0)
		fprintf(stderr, "%s: io_uring setup flags: %s\n",
			u->t->opts->design, setup_modes[i - 1].name);

	/* Optional: lets io_uring_enter() skip the ring fd lookup. */
	io_uring_register_ring_fd(&u->ring);

	ret = io_uring_register_files_sparse(&u->ring, n);
	if (ret < 0) {
		errno = -ret;
		srv_die("thread %d: io_uring_register_files_sparse(%u) (--max-conns)",
			u->t->idx, n);
	}

	u->br = buf_ring_setup(&u->ring);
	if (!u->br)
		srv_die("thread %d: setting up the provided buffer ring",
			u->t->idx);
	u->bufs = malloc((size_t)NBUFS * BUF_SIZE);
	u->conns = calloc(n, sizeof(*u->conns));
	if (!u->bufs || !u->conns)
		srv_die("thread %d: allocating buffers", u->t->idx);
	for (i = 0; i < NBUFS; i++)
		io_uring_buf_ring_add(u->br, u->bufs + (size_t)i * BUF_SIZE,
				      BUF_SIZE, i, io_uring_buf_ring_mask(NBUFS),
				      i);
	io_uring_buf_ring_advance(u->br, NBUFS);

	arm_accept(u);
	io_uring_prep_poll_add(get_sqe(u, UD_STOP, 0), u->t->stop_fd, POLLIN);
}

static void ring_destroy(struct userver *u)
{
	unsigned int i;

	buf_ring_free(&u->ring, u->br);
	io_uring_queue_exit(&u->ring);	/* also closes the direct descriptors */
	for (i = 0; i < u->t->opts->max_conns; i++) {
		srv_conn_free(&u->conns[i].pc);
		srv_buf_free(&u->conns[i].tx);
		srv_buf_free(&u->conns[i].out);
	}
	free(u->conns);
	free(u->bufs);
}

static void serve(struct srv_thread *t)
{
	struct userver u = { .t = t, .st = &t->stats };
	struct io_uring_cqe *cqe;
	unsigned int head, n;
	int ret;

	ring_init(&u);
	srv_thread_ready();

	while (!u.stop) {
		ret = io_uring_submit_and_wait(&u.ring, 1);
		if (ret < 0 && ret != -EINTR) {
			errno = -ret;
			srv_die("thread %d: io_uring_submit_and_wait", t->idx);
		}
		n = 0;
		io_uring_for_each_cqe(&u.ring, head, cqe) {
			handle_cqe(&u, cqe);
			n++;
		}
		io_uring_cq_advance(&u.ring, n);
	}

	ring_destroy(&u);
}

int main(int argc, char **argv)
{
	struct srv_opts o;
	int *lfds, i;

	srv_parse_args(argc, argv, &o, "srv-uring", SRV_OPT_SHARED_LISTENER);
	lfds = calloc(o.threads, sizeof(*lfds));
	if (!lfds)
		srv_die("calloc");
	if (o.shared_listener) {
		lfds[0] = srv_listen(&o, false, 0);
		for (i = 1; i < o.threads; i++)
			lfds[i] = lfds[0];
	} else {
		srv_reuseport_listeners(&o, lfds, 0);
	}
	srv_run(&o, lfds, serve);
	free(lfds);
	free(o.cpus);
	return 0;
}
