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
	int *lfds, lfd, i;

	srv_parse_args(argc, argv, &o, "srv-epoll-shared", SRV_OPT_TRIGGER | SRV_OPT_STALL);
	lfd = srv_listen(&o, false, SOCK_NONBLOCK);
	lfds = calloc(o.threads, sizeof(*lfds));
	if (!lfds)
		srv_die("calloc");
	for (i = 0; i < o.threads; i++)
		lfds[i] = lfd;
	srv_run(&o, lfds, serve);
	free(lfds);
	free(o.cpus);
	return 0;
}
