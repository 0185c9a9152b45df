// SPDX-License-Identifier: GPL-2.0
/*
 * mp-echo: the benchmark's echo and HTTP server (bench/servers) ported to
 * MegaPipe channels (libmegapipe), on the channel server skeleton
 * (mp_server.c: threads, channels, accepts, reads, writes, back-pressure).
 * Same options and output contract as the baseline servers: --addr --port
 * --threads --cpus --proto echo|http --backlog --max-conns --size;
 * "ready ..." once listening, and on SIGTERM "stats accepted N requests N
 * errors N".  The protocol is theirs (srv_proto_input()).
 *
 * Options of this server's own: --copy, the channel's copy transport
 * instead of the shared-memory rings (as MEGAPIPE_RING=0); --epoll,
 * libmegapipe's epoll backend even where /dev/megapipe exists (as
 * MEGAPIPE_BACKEND=epoll); --single, one read at a time even where
 * multishot reads exist.  To compare them.
 */
#include <stdlib.h>

#include "mp_server.h"

struct echo_conn {
	struct srv_conn pc;	/* http: a partial request head */
	struct srv_buf out;	/* the reply */
};

static long echo_input(void *state, struct srv_thread *t, const char *data,
		       size_t len, struct mps_reply *r)
{
	struct echo_conn *c = state;

	c->out.len = 0;		/* written */
	if (srv_proto_input(&c->pc, t->opts, data, len, &c->out, &t->stats))
		return -1;
	r->data = c->out.data;
	r->len = c->out.len;
	r->next = c->pc.close_after ? MPS_CLOSE : MPS_READ;
	return len;
}

static void echo_close(void *state, struct srv_thread *t)
{
	struct echo_conn *c = state;

	(void)t;
	srv_conn_free(&c->pc);
	srv_buf_free(&c->out);
}

static const struct mps_proto echo_proto = {
	.state_size	= sizeof(struct echo_conn),
	.input		= echo_input,
	.close		= echo_close,
};

int main(int argc, char **argv)
{
	struct srv_opts o;

	argc = mps_options(argc, argv);
	srv_parse_args(argc, argv, &o, "mp-echo", 0);
	mps_run(&o, &echo_proto);
	free(o.cpus);
	return 0;
}
