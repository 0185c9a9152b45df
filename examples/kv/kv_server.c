// SPDX-License-Identifier: GPL-2.0
/*
 * kv-epoll and kv-mp: options and the store.  See kv_server.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv_server.h"

#define DEFAULT_MEMORY_MB	64

static void usage_exit(const char *design)
{
	fprintf(stderr,
		"usage: %s [--port P] [--addr A] [--threads N] [--cpus LIST] [--backlog N]\n"
		"          [--max-conns N] [--memory|-m MB] [--max-item|-I BYTES[k|m]]\n"
		"          [--shards N]\n", design);
	exit(2);
}

static unsigned long long num_arg(const char *design, const char *opt,
				  const char *s, bool suffix,
				  unsigned long long min,
				  unsigned long long max)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (suffix && (*end == 'k' || *end == 'K')) {
		v *= 1024;
		end++;
	} else if (suffix && (*end == 'm' || *end == 'M')) {
		v *= 1024 * 1024;
		end++;
	}
	if (errno || end == s || *end || *s == '-' || v < min || v > max) {
		fprintf(stderr, "%s: invalid %s '%s' (expected %llu..%llu)\n",
			design, opt, s, min, max);
		exit(2);
	}
	return v;
}

/* Is argv[*i] the option @lng (or @shrt)?  Sets *val, advances *i. */
static bool take(int argc, char **argv, int *i, const char *lng,
		 const char *shrt, const char **val, const char *design)
{
	const char *a = argv[*i];
	size_t n = strlen(lng);

	if (!strncmp(a, lng, n) && a[n] == '=') {
		*val = a + n + 1;
		return true;
	}
	if (shrt && !strncmp(a, shrt, 2) && a[2]) {
		*val = a + 2;
		return true;
	}
	if (strcmp(a, lng) && (!shrt || strcmp(a, shrt)))
		return false;
	if (*i + 1 >= argc)
		usage_exit(design);
	*val = argv[++*i];
	return true;
}

struct kv_store *kv_server_setup(int argc, char **argv, struct srv_opts *o,
				 const char *design, unsigned int extra)
{
	unsigned long long mb = DEFAULT_MEMORY_MB, max_item = KV_DEFAULT_MAX_ITEM;
	unsigned int shards = 0;
	struct kv_store_stats st;
	struct kv_store *s;
	char **rest;
	int i, n = 0;

	rest = calloc(argc + 1, sizeof(*rest));
	if (!rest)
		srv_die("calloc");
	for (i = 0; i < argc; i++) {
		const char *v;

		if (i && take(argc, argv, &i, "--memory", "-m", &v, design))
			mb = num_arg(design, "--memory", v, false, 1, 1 << 20);
		else if (i && take(argc, argv, &i, "--max-item", "-I", &v, design))
			max_item = num_arg(design, "--max-item", v, true, 1,
					   1 << 30);
		else if (i && take(argc, argv, &i, "--shards", NULL, &v, design))
			shards = num_arg(design, "--shards", v, false, 1, 1024);
		else
			rest[n++] = argv[i];
	}
	srv_parse_args(n, rest, o, design, extra);
	free(rest);
	if (!shards)
		shards = 4 * o->threads;
	s = kv_store_create(mb << 20, max_item, shards);
	if (!s)
		srv_die("store of %llu MB", mb);
	kv_store_stats(s, &st);
	fprintf(stderr, "%s: store %llu MB, %u shard%s, largest value %llu bytes\n",
		design, mb, st.shards, st.shards == 1 ? "" : "s", max_item);
	return s;
}

void kv_server_account(struct srv_thread *t, const struct kv_stats *ks)
{
	t->stats.requests += ks->requests;
	t->stats.errors += ks->errors;
}
