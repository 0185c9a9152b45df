/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The per-thread epoll event loop of srv-epoll-shared and
 * srv-epoll-reuseport: accepts on t->lfd and serves the connections it
 * accepted, edge- or level-triggered (--trigger).
 */
#ifndef MP_EPOLL_LOOP_H
#define MP_EPOLL_LOOP_H

#include <stdbool.h>

#include "server_common.h"

/*
 * Serve until t->stop_fd becomes readable.  @exclusive registers the
 * listener with EPOLLEXCLUSIVE, for a listener that all threads share.
 */
void epoll_serve(struct srv_thread *t, bool exclusive);

#endif
