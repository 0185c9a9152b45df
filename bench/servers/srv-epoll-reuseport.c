// SPDX-License-Identifier: GPL-2.0
/*
 * srv-epoll-reuseport: one SO_REUSEPORT listener per thread, each thread
 * pinned to its CPU with its own epoll instance.  The kernel picks the
 * listener (and thus the thread) when the SYN arrives; with --cpus the
 * listeners carry SO_INCOMING_CPU and, for a contiguous CPU list, a cBPF
 * program selects the listener of the CPU that took the packet, so a
 * connection is handled on the CPU its packets are processed on.
 */
#include <stdlib.h>
#include <sys/socket.h>

#include "epoll_loop.h"
#include "server_common.h"

static void serve(struct srv_thread *t)
{
	epoll_serve(t, false);
}

int main(int argc, char **argv)
{
	struct srv_opts o;
	int *lfds;

	srv_parse_args(argc, argv, &o, "srv-epoll-reuseport", SRV_OPT_TRIGGER | SRV_OPT_STALL);
	lfds = calloc(o.threads, sizeof(*lfds));
	if (!lfds)
		srv_die("calloc");
	srv_reuseport_listeners(&o, lfds, SOCK_NONBLOCK);
	srv_run(&o, lfds, serve);
	free(lfds);
	free(o.cpus);
	return 0;
}
