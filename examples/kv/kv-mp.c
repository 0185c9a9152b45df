// SPDX-License-Identifier: GPL-2.0
/*
 * kv-mp: the memcached-protocol key-value server of kv-epoll on MegaPipe
 * channels (libmegapipe), on the channel server skeleton (mp_server.c:
 * threads, channels, accepts, reads, writes, back-pressure).  Same options
 * and output (see kv-epoll.c and docs/kv.md); the protocol and the store
 * are the same code.
 *
 * The bytes of each read go into the protocol's input buffer; the
 * commands are handled and the replies written, all of them, before more
 * input is taken.  A read of 0, "quit" or a fatal protocol error ends in
 * a disconnect.  Without /dev/megapipe the library runs on its epoll
 * backend (MEGAPIPE_BACKEND=epoll|kernel forces one).
 */
#include <stdlib.h>
#include <string.h>

#include "../mp_server.h"
#include "kv_server.h"

static struct kv_store *store;

struct kv_mconn {
	struct kv_conn c;
	struct kv_stats ks;	/* added to the thread's at close */
};

static int kv_open(void *state, struct srv_thread *t)
{
	struct kv_mconn *m = state;

	(void)t;
	return kv_conn_init(&m->c, store, &m->ks);
}

static long kv_input(void *state, struct srv_thread *t, const char *data,
		     size_t len, struct mps_reply *r)
{
	struct kv_mconn *m = state;
	enum kv_status st;
	size_t took = 0, n;

	(void)t;
	kv_written(&m->c);
	/* in pieces of the input buffer's room: kv_process() makes more */
	do {
		n = kv_rspace(&m->c);
		if (n > len - took)
			n = len - took;
		if (n) {
			memcpy(kv_rbuf(&m->c), data + took, n);
			kv_received(&m->c, n);
			took += n;
		}
		st = kv_process(&m->c);
	} while (st == KV_READ && !m->c.out.len && took < len);

	r->data = m->c.out.data;
	r->len = m->c.out.len;
	/* KV_WRITE: the protocol has input left; the rest of ours waits too */
	r->next = st == KV_CLOSE ? MPS_CLOSE : st == KV_WRITE ? MPS_AGAIN : MPS_READ;
	return took;
}

static void kv_close(void *state, struct srv_thread *t)
{
	struct kv_mconn *m = state;

	kv_server_account(t, &m->ks);
	kv_conn_free(&m->c);
}

static const struct mps_proto kv_mproto = {
	.state_size	= sizeof(struct kv_mconn),
	.open		= kv_open,
	.input		= kv_input,
	.close		= kv_close,
};

int main(int argc, char **argv)
{
	struct srv_opts o;

	argc = mps_options(argc, argv);
	store = kv_server_setup(argc, argv, &o, "kv-mp", 0);
	mps_run(&o, &kv_mproto);
	free(o.cpus);
	kv_store_destroy(store);
	return 0;
}
