// SPDX-License-Identifier: GPL-2.0
/*
 * srv-epoll-shared: one listening socket shared by all threads.  Each
 * thread has its own epoll instance with the listener registered
 * EPOLLEXCLUSIVE, so a new connection wakes one idle thread, which
 * accepts it and serves it for its whole life.
 */
#include <stdlib.h>
#include <sys/socket.h>

#include "epoll_loop.h"
#include "server_common.h"

static void serve(struct srv_thread *t)
{
	epoll_serve(t, true);
}

int main(int argc, char **argv)
{
	struct srv_opts o;

	srv_parse_args(argc, argv, &o, "srv-epoll-shared", SRV_OPT_TRIGGER | SRV_OPT_STALL);
	srv_run_shared(&o, serve);
	free(o.cpus);
	return 0;
}
