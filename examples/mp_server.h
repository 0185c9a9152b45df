/* SPDX-License-Identifier: GPL-2.0 */
/*
 * mp_server: the channel server skeleton of mp-echo, kv-mp and mp-http:
 * a thread per --threads pinned to its CPU of --cpus, a channel per thread
 * (on the device's shared-memory rings where it has them), the one
 * listener registered in each with its thread's CPU, accepts kept armed,
 * per-connection state by handle index, reads (multishot from a buffer
 * ring where the channel has MP_FEAT_BUFFERS), each reply written in full
 * before more input is taken, disconnects, and the stop (srv_run()'s
 * eventfd, polled in the channel) and "ready"/"stats" lines of
 * bench/servers.  A protocol plugs in with struct mps_proto: bytes in,
 * what to write, whether to close.  mp-proxy, not a protocol of this
 * loop, opens its channels with mps_channel().
 */
#ifndef MP_SERVER_H
#define MP_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "server_common.h"

/* What follows the reply. */
enum mps_next {
	MPS_READ,	/* write the reply (if any), then read on */
	MPS_AGAIN,	/* write the reply, then call input() again, new input or not */
	MPS_CLOSE,	/* write the reply (if any), then close */
};

struct mps_reply {
	const void *data;	/* valid until the next input() or close() */
	size_t len;
	enum mps_next next;
};

struct mps_proto {
	size_t state_size;	/* per-connection state, zeroed before open() */
	/* A new connection (optional).  Non-zero: refuse it (an error). */
	int (*open)(void *state, struct srv_thread *t);
	/*
	 * Input: take what it can of [data, data + len) and fill *r (zeroed
	 * before the call).  Returns the bytes taken, or -1 for a protocol
	 * error (counted; the connection is dropped).  Bytes not taken are
	 * offered again, followed by what arrives next, once the reply is
	 * written: a protocol that takes less than all must reply, or bound
	 * what it leaves (an incomplete request).  Never called while the
	 * previous reply is being written, so it may reuse its memory.
	 */
	long (*input)(void *state, struct srv_thread *t, const char *data,
		      size_t len, struct mps_reply *r);
	/* The connection is gone (optional): free what open() and input() took. */
	void (*close)(void *state, struct srv_thread *t);
};

/*
 * Take the skeleton's own options out of argv and return the new argc:
 * --copy (the channel's copy transport instead of shared-memory rings, as
 * MEGAPIPE_RING=0), --epoll (libmegapipe's epoll backend even where
 * /dev/megapipe exists, as MEGAPIPE_BACKEND=epoll) and --single (one read at a time even where multishot
 * reads exist).  To compare them.
 */
int mps_options(int argc, char **argv);

/* The cookies of the listener's and the stop eventfd's handles. */
#define MPS_LISTENER_COOKIE	UINT64_MAX
#define MPS_STOP_COOKIE		(UINT64_MAX - 1)
#define MPS_ACCEPT_BATCH	16	/* connections per ACCEPT */

struct mp_channel;
struct mp_info;

/*
 * Thread @t's channel, with @cq completion entries (at most 65536): the
 * listener registered with @t's CPU as its mask (MPS_LISTENER_COOKIE;
 * its handle in *@lh), an ACCEPT of MPS_ACCEPT_BATCH armed, srv_run()'s
 * stop eventfd polled (MPS_STOP_COOKIE: its MP_OP_POLL completion means
 * stop), what the channel has in *@info, and "<design>: backend
 * kernel|epoll" on stderr from thread 0.  Dies on failure.
 */
struct mp_channel *mps_channel(struct srv_thread *t, unsigned int cq, int *lh,
			       struct mp_info *info);

/*
 * Listen on --addr/--port and serve @proto until SIGINT/SIGTERM, with the
 * output contract of bench/servers (srv_run()); "<design>: backend
 * kernel|epoll" on stderr.
 */
void mps_run(const struct srv_opts *o, const struct mps_proto *proto);

#endif
