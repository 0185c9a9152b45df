/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What kv-epoll and kv-mp share besides the protocol: their options (the
 * benchmark servers' options of bench/servers plus the store's) and the
 * one store all threads use.
 */
#ifndef KV_SERVER_H
#define KV_SERVER_H

#include "kv_proto.h"
#include "kv_store.h"
#include "server_common.h"

/*
 * Take the store's options out of argv (--memory/-m MB, --max-item/-I
 * BYTES[k|m], --shards N), parse the rest with srv_parse_args() and create
 * the store.  Exits 2 on a bad option, 1 if the store cannot be created.
 */
struct kv_store *kv_server_setup(int argc, char **argv, struct srv_opts *o,
				 const char *design, unsigned int extra);

/* Add a thread's protocol counters to its srv_stats. */
void kv_server_account(struct srv_thread *t, const struct kv_stats *ks);

#endif
