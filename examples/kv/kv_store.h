/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kv_store: the item store of the memcached-protocol examples (kv-epoll,
 * kv-mp).  A hash table of items with LRU eviction under a memory limit,
 * split into shards by key hash; each shard has its own lock, hash table,
 * LRU list and an equal part of the limit, so threads on different shards
 * do not meet.  All calls are thread-safe.
 *
 * Memory: an item costs sizeof(struct kv_item) + key + value + 2 bytes
 * against its shard's limit; storing an item evicts the shard's least
 * recently used items until it fits.  Hash buckets are not counted.
 */
#ifndef KV_STORE_H
#define KV_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KV_KEY_MAX		250
#define KV_DEFAULT_MAX_ITEM	(1024 * 1024)	/* value bytes */

struct kv_item {
	struct kv_item *hnext;		/* hash chain */
	struct kv_item *prev, *next;	/* LRU list, most recent first */
	uint64_t hash;
	uint64_t cas;
	int64_t exptime;		/* absolute Unix seconds; 0: never */
	uint32_t flags;
	uint32_t nbytes;		/* value length, without the "\r\n" */
	uint8_t nkey;
	char data[];			/* key, then value and "\r\n" */
};

static inline char *kv_item_value(struct kv_item *it)
{
	return it->data + it->nkey;
}

static inline const char *kv_item_cvalue(const struct kv_item *it)
{
	return it->data + it->nkey;
}

enum kv_mode { KV_SET, KV_ADD, KV_REPLACE, KV_APPEND, KV_PREPEND, KV_CAS };

enum kv_result {
	KV_STORED, KV_NOT_STORED, KV_EXISTS, KV_NOT_FOUND,
	KV_DELETED, KV_TOUCHED, KV_OK,
	KV_NOMEM,		/* larger than a shard's share of the limit */
	KV_NON_NUMERIC,		/* incr/decr of a value that is no number */
};

struct kv_store_stats {
	uint64_t curr_items, total_items, bytes, limit, evictions;
	uint64_t get_hits, get_misses, cmd_get, cmd_set, cmd_touch;
	uint64_t curr_conns, total_conns;
	unsigned int shards;
	int64_t started;		/* Unix seconds */
};

struct kv_store;

/*
 * @limit bytes in all; @max_item the largest value; @shards a wish,
 * rounded down to a power of two and lowered until every shard can hold
 * two items of the largest size.  NULL on a failed allocation.
 */
struct kv_store *kv_store_create(size_t limit, size_t max_item,
				 unsigned int shards);
void kv_store_destroy(struct kv_store *s);
size_t kv_store_max_item(const struct kv_store *s);

/* A protocol exptime (0, relative seconds, absolute, < 0) -> absolute. */
int64_t kv_exptime(int64_t exptime);

/*
 * An unlinked item of @nbytes value bytes (plus room for "\r\n"), the key
 * copied in; the caller fills the value.  NULL if out of memory.
 */
struct kv_item *kv_item_new(const char *key, size_t nkey, uint32_t flags,
			    int64_t exptime, size_t nbytes);
void kv_item_free(struct kv_item *it);

/*
 * Store @it (set/add/replace/append/prepend/cas with @cas); takes it over
 * whatever the result: KV_STORED, KV_NOT_STORED, KV_EXISTS (cas),
 * KV_NOT_FOUND (cas), KV_NOMEM.
 */
enum kv_result kv_store_put(struct kv_store *s, struct kv_item *it,
			    enum kv_mode mode, uint64_t cas);

/*
 * Look @key up; on a hit call @fn with the item, under the shard's lock
 * (copy what you need, keep no pointer).  Returns whether it was a hit.
 */
bool kv_store_get(struct kv_store *s, const char *key, size_t nkey,
		  void (*fn)(void *arg, const struct kv_item *it), void *arg);

enum kv_result kv_store_delete(struct kv_store *s, const char *key,
			       size_t nkey);
enum kv_result kv_store_touch(struct kv_store *s, const char *key,
			      size_t nkey, int64_t exptime);
/*
 * incr (@incr) or decr by @delta: 64-bit unsigned, incr wraps, decr stops
 * at 0.  KV_OK with *@value, KV_NOT_FOUND, KV_NON_NUMERIC, KV_NOMEM.
 */
enum kv_result kv_store_arith(struct kv_store *s, const char *key,
			      size_t nkey, bool incr, uint64_t delta,
			      uint64_t *value);
void kv_store_flush(struct kv_store *s);

void kv_store_conn(struct kv_store *s, bool opened);
void kv_store_stats(struct kv_store *s, struct kv_store_stats *st);

#endif
