/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kv_proto: the memcached text protocol, per connection, independent of
 * how bytes come and go (kv-epoll: read/write on readiness; kv-mp:
 * libmegapipe requests).  See docs/kv.md for the commands.
 *
 * The I/O loop reads into kv_rbuf()/kv_rspace(), reports the bytes with
 * kv_received(), calls kv_process() and writes c->out (all of it) before
 * it reads again or calls kv_process() again:
 *
 *	KV_READ   everything buffered is handled; write c->out (if any),
 *		  then read more
 *	KV_WRITE  c->out passed its high-water mark with input left; write
 *		  c->out, then call kv_process() again (no read meanwhile)
 *	KV_CLOSE  write c->out, then close the connection
 *
 * Memory per connection is bounded: the input buffer grows up to
 * KV_LINE_MAX for one command line, a storage command's data goes straight
 * into its item (at most the store's largest item), and output stops at
 * KV_OUT_HIGH plus one value.
 */
#ifndef KV_PROTO_H
#define KV_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv_store.h"

#define KV_VERSION	"1.6.0-megapipe-kv"
#define KV_RBUF_MIN	4096		/* initial input buffer */
#define KV_LINE_MAX	65536		/* longest command line */
#define KV_OUT_HIGH	(256 * 1024)	/* pause parsing above this output */

enum kv_status { KV_READ, KV_WRITE, KV_CLOSE };

struct kv_buf {
	char *data;
	size_t len, cap;
};

/* Per-thread counters for the "stats" line of the benchmark contract. */
struct kv_stats {
	unsigned long requests;		/* commands handled */
	unsigned long errors;		/* ERROR, CLIENT_ERROR, line too long */
};

struct kv_conn {
	struct kv_store *store;
	struct kv_stats *stats;
	char *in;			/* input buffer */
	size_t in_cap, in_start, in_end;
	int state;			/* what the next input is */
	/* a storage command waiting for its data block */
	struct kv_item *item;		/* NULL: swallowing it */
	size_t data_left;		/* bytes of data + "\r\n" still due */
	size_t data_got;
	enum kv_mode mode;
	uint64_t cas;
	bool noreply;
	/* a get/gets paused at KV_OUT_HIGH: its line stays in the buffer */
	size_t get_next;		/* offset of the next key; 0: none */
	size_t get_eol;			/* offset of the line's end */
	bool get_cas;
	bool closing;
	struct kv_buf out;
};

/* Returns 0, or -1 if out of memory. */
int kv_conn_init(struct kv_conn *c, struct kv_store *s, struct kv_stats *st);
void kv_conn_free(struct kv_conn *c);

static inline char *kv_rbuf(struct kv_conn *c)
{
	return c->in + c->in_end;
}

static inline size_t kv_rspace(const struct kv_conn *c)
{
	return c->in_cap - c->in_end;
}

static inline void kv_received(struct kv_conn *c, size_t n)
{
	c->in_end += n;
}

enum kv_status kv_process(struct kv_conn *c);

/* After c->out is written: forget it (and shrink a large buffer). */
void kv_written(struct kv_conn *c);

#endif
