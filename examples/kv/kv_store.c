// SPDX-License-Identifier: GPL-2.0
/*
 * kv_store: sharded hash table with LRU eviction.  See kv_store.h.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kv_store.h"

#define MIN_BUCKETS	1024
#define MAX_SHARDS	64
#define REL_EXPTIME_MAX	(60 * 60 * 24 * 30)	/* larger: absolute time */

struct kv_shard {
	pthread_mutex_t lock;
	struct kv_item **buckets;
	size_t nbuckets;		/* a power of two */
	struct kv_item *head, *tail;	/* LRU: head most recent */
	size_t used, limit;		/* bytes */
	uint64_t next_cas;		/* shard i: i + 1 + k * nshards */
	unsigned int cas_step;		/* nshards */
	uint64_t items, total_items, evictions;
	uint64_t hits, misses, cmd_set, cmd_touch;
} __attribute__((aligned(64)));

struct kv_store {
	unsigned int nshards;
	unsigned int shard_shift;	/* hash >> shift: the shard */
	size_t max_item;
	size_t limit;
	int64_t started;
	unsigned long curr_conns, total_conns;	/* atomics */
	struct kv_shard *shards;
};

/* FNV-1a, then a multiply-xorshift finaliser so that the high bits mix. */
static uint64_t kv_hash(const char *key, size_t nkey)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t i;

	for (i = 0; i < nkey; i++) {
		h ^= (unsigned char)key[i];
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

static size_t item_size(const struct kv_item *it)
{
	return sizeof(*it) + it->nkey + it->nbytes + 2;
}

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

int64_t kv_exptime(int64_t exptime)
{
	if (!exptime)
		return 0;
	if (exptime < 0)
		return 1;		/* long past: expired at once */
	if (exptime > REL_EXPTIME_MAX)
		return exptime;		/* absolute Unix time */
	return now_s() + exptime;
}

static bool expired(const struct kv_item *it)
{
	return it->exptime && it->exptime <= now_s();
}

struct kv_item *kv_item_new(const char *key, size_t nkey, uint32_t flags,
			    int64_t exptime, size_t nbytes)
{
	struct kv_item *it;

	if (nkey > KV_KEY_MAX || nbytes > UINT32_MAX - 2)
		return NULL;
	it = malloc(sizeof(*it) + nkey + nbytes + 2);
	if (!it)
		return NULL;
	memset(it, 0, sizeof(*it));
	it->flags = flags;
	it->exptime = exptime;
	it->nbytes = nbytes;
	it->nkey = nkey;
	memcpy(it->data, key, nkey);
	it->hash = kv_hash(key, nkey);
	return it;
}

void kv_item_free(struct kv_item *it)
{
	free(it);
}

struct kv_store *kv_store_create(size_t limit, size_t max_item,
				 unsigned int shards)
{
	size_t per_item = sizeof(struct kv_item) + KV_KEY_MAX + max_item + 2;
	struct kv_store *s;
	unsigned int n = 1, i;

	while (n * 2 <= shards && n * 2 <= MAX_SHARDS)
		n *= 2;
	while (n > 1 && limit / n < 2 * per_item)
		n /= 2;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	if (posix_memalign((void **)&s->shards, 64, n * sizeof(*s->shards))) {
		free(s);
		return NULL;
	}
	memset(s->shards, 0, n * sizeof(*s->shards));
	s->nshards = n;
	s->shard_shift = 64;
	for (i = n; i > 1; i /= 2)
		s->shard_shift--;
	s->max_item = max_item;
	s->limit = limit;
	s->started = now_s();
	for (i = 0; i < n; i++) {
		struct kv_shard *sh = &s->shards[i];

		pthread_mutex_init(&sh->lock, NULL);
		sh->limit = limit / n;
		sh->next_cas = i + 1;
		sh->cas_step = n;
		sh->nbuckets = MIN_BUCKETS;
		sh->buckets = calloc(sh->nbuckets, sizeof(*sh->buckets));
		if (!sh->buckets) {
			s->nshards = i;
			kv_store_destroy(s);
			return NULL;
		}
	}
	return s;
}

void kv_store_destroy(struct kv_store *s)
{
	unsigned int i;

	for (i = 0; i < s->nshards; i++) {
		struct kv_shard *sh = &s->shards[i];
		struct kv_item *it, *next;

		for (it = sh->head; it; it = next) {
			next = it->next;
			kv_item_free(it);
		}
		free(sh->buckets);
		pthread_mutex_destroy(&sh->lock);
	}
	free(s->shards);
	free(s);
}

size_t kv_store_max_item(const struct kv_store *s)
{
	return s->max_item;
}

static struct kv_shard *shard_of(struct kv_store *s, uint64_t hash)
{
	return &s->shards[s->nshards > 1 ? hash >> s->shard_shift : 0];
}

/* ---- under the shard lock ---------------------------------------------- */

static struct kv_item **bucket(struct kv_shard *sh, uint64_t hash)
{
	return &sh->buckets[hash & (sh->nbuckets - 1)];
}

static void lru_unlink(struct kv_shard *sh, struct kv_item *it)
{
	if (it->prev)
		it->prev->next = it->next;
	else
		sh->head = it->next;
	if (it->next)
		it->next->prev = it->prev;
	else
		sh->tail = it->prev;
	it->prev = it->next = NULL;
}

static void lru_push(struct kv_shard *sh, struct kv_item *it)
{
	it->prev = NULL;
	it->next = sh->head;
	if (sh->head)
		sh->head->prev = it;
	else
		sh->tail = it;
	sh->head = it;
}

static void lru_bump(struct kv_shard *sh, struct kv_item *it)
{
	if (sh->head != it) {
		lru_unlink(sh, it);
		lru_push(sh, it);
	}
}

/* The slot pointing at the live or expired item of @key, or NULL. */
static struct kv_item **find_slot(struct kv_shard *sh, uint64_t hash,
				  const char *key, size_t nkey)
{
	struct kv_item **pp;

	for (pp = bucket(sh, hash); *pp; pp = &(*pp)->hnext) {
		struct kv_item *it = *pp;

		if (it->hash == hash && it->nkey == nkey &&
		    !memcmp(it->data, key, nkey))
			return pp;
	}
	return NULL;
}

static void unlink_free(struct kv_shard *sh, struct kv_item **slot)
{
	struct kv_item *it = *slot;

	*slot = it->hnext;
	lru_unlink(sh, it);
	sh->used -= item_size(it);
	sh->items--;
	kv_item_free(it);
}

/* The live item of @key (an expired one is dropped on the way). */
static struct kv_item *find(struct kv_shard *sh, uint64_t hash,
			    const char *key, size_t nkey)
{
	struct kv_item **slot = find_slot(sh, hash, key, nkey);

	if (!slot)
		return NULL;
	if (expired(*slot)) {
		unlink_free(sh, slot);
		return NULL;
	}
	return *slot;
}

static void grow(struct kv_shard *sh)
{
	size_t n = sh->nbuckets * 2, i;
	struct kv_item **b = calloc(n, sizeof(*b));

	if (!b)
		return;			/* longer chains, still correct */
	for (i = 0; i < sh->nbuckets; i++) {
		struct kv_item *it, *next;

		for (it = sh->buckets[i]; it; it = next) {
			next = it->hnext;
			it->hnext = b[it->hash & (n - 1)];
			b[it->hash & (n - 1)] = it;
		}
	}
	free(sh->buckets);
	sh->buckets = b;
	sh->nbuckets = n;
}

/* Evict from the LRU tail until @need more bytes fit; never @keep. */
static void make_room(struct kv_shard *sh, size_t need,
		      const struct kv_item *keep)
{
	while (sh->used + need > sh->limit && sh->tail && sh->tail != keep) {
		struct kv_item *victim = sh->tail;
		struct kv_item **slot = find_slot(sh, victim->hash, victim->data,
						  victim->nkey);

		if (!expired(victim))
			sh->evictions++;
		unlink_free(sh, slot);
	}
}

/* Link @it (no item of its key is linked); false if it cannot fit. */
static bool link_item(struct kv_shard *sh, struct kv_item *it)
{
	size_t sz = item_size(it);
	struct kv_item **b;

	if (sz > sh->limit)
		return false;
	make_room(sh, sz, NULL);
	it->cas = sh->next_cas;
	sh->next_cas += sh->cas_step;
	b = bucket(sh, it->hash);
	it->hnext = *b;
	*b = it;
	lru_push(sh, it);
	sh->used += sz;
	sh->items++;
	sh->total_items++;
	if (sh->items > sh->nbuckets + sh->nbuckets / 2)
		grow(sh);
	return true;
}

/* ---- the operations ----------------------------------------------------- */

static struct kv_item *concat(const struct kv_item *old,
			      const struct kv_item *add, bool append)
{
	const struct kv_item *first = append ? old : add;
	const struct kv_item *second = append ? add : old;
	struct kv_item *it;

	it = kv_item_new(old->data, old->nkey, old->flags, old->exptime,
			 (size_t)old->nbytes + add->nbytes);
	if (!it)
		return NULL;
	memcpy(kv_item_value(it), kv_item_cvalue(first), first->nbytes);
	memcpy(kv_item_value(it) + first->nbytes, kv_item_cvalue(second),
	       second->nbytes + 2);
	return it;
}

enum kv_result kv_store_put(struct kv_store *s, struct kv_item *it,
			    enum kv_mode mode, uint64_t cas)
{
	struct kv_shard *sh = shard_of(s, it->hash);
	enum kv_result res = KV_STORED;
	struct kv_item *old, *neu = it;

	pthread_mutex_lock(&sh->lock);
	sh->cmd_set++;
	old = find(sh, it->hash, it->data, it->nkey);
	switch (mode) {
	case KV_SET:
		break;
	case KV_ADD:
		if (old) {
			lru_bump(sh, old);	/* as memcached: an add hit is a use */
			res = KV_NOT_STORED;
		}
		break;
	case KV_REPLACE:
		if (!old)
			res = KV_NOT_STORED;
		break;
	case KV_APPEND:
	case KV_PREPEND:
		if (!old) {
			res = KV_NOT_STORED;
			break;
		}
		if ((size_t)old->nbytes + it->nbytes > s->max_item) {
			res = KV_NOMEM;
			break;
		}
		neu = concat(old, it, mode == KV_APPEND);
		if (!neu)
			res = KV_NOMEM;
		break;
	case KV_CAS:
		if (!old)
			res = KV_NOT_FOUND;
		else if (old->cas != cas)
			res = KV_EXISTS;
		break;
	}
	if (res == KV_STORED) {
		if (old)
			unlink_free(sh, find_slot(sh, old->hash, old->data,
						  old->nkey));
		if (!link_item(sh, neu))
			res = KV_NOMEM;
		else if (neu == it)
			it = NULL;	/* linked: not ours to free */
		if (neu != it && res != KV_STORED)
			kv_item_free(neu);
	}
	pthread_mutex_unlock(&sh->lock);
	if (it)
		kv_item_free(it);
	return res;
}

bool kv_store_get(struct kv_store *s, const char *key, size_t nkey,
		  void (*fn)(void *arg, const struct kv_item *it), void *arg)
{
	uint64_t hash = kv_hash(key, nkey);
	struct kv_shard *sh = shard_of(s, hash);
	struct kv_item *it;

	pthread_mutex_lock(&sh->lock);
	it = find(sh, hash, key, nkey);
	if (it) {
		sh->hits++;
		lru_bump(sh, it);
		fn(arg, it);
	} else {
		sh->misses++;
	}
	pthread_mutex_unlock(&sh->lock);
	return it != NULL;
}

enum kv_result kv_store_delete(struct kv_store *s, const char *key,
			       size_t nkey)
{
	uint64_t hash = kv_hash(key, nkey);
	struct kv_shard *sh = shard_of(s, hash);
	enum kv_result res = KV_NOT_FOUND;

	pthread_mutex_lock(&sh->lock);
	if (find(sh, hash, key, nkey)) {
		unlink_free(sh, find_slot(sh, hash, key, nkey));
		res = KV_DELETED;
	}
	pthread_mutex_unlock(&sh->lock);
	return res;
}

enum kv_result kv_store_touch(struct kv_store *s, const char *key,
			      size_t nkey, int64_t exptime)
{
	uint64_t hash = kv_hash(key, nkey);
	struct kv_shard *sh = shard_of(s, hash);
	enum kv_result res = KV_NOT_FOUND;
	struct kv_item *it;

	pthread_mutex_lock(&sh->lock);
	sh->cmd_touch++;
	it = find(sh, hash, key, nkey);
	if (it) {
		it->exptime = exptime;
		lru_bump(sh, it);
		res = KV_TOUCHED;
	}
	pthread_mutex_unlock(&sh->lock);
	return res;
}

/* A value of 1..20 decimal digits (trailing spaces allowed) -> *@v. */
static bool parse_counter(const struct kv_item *it, uint64_t *v)
{
	const char *p = kv_item_cvalue(it);
	size_t n = it->nbytes, i;
	uint64_t x = 0;

	while (n && p[n - 1] == ' ')
		n--;
	if (!n || n > 20)
		return false;
	for (i = 0; i < n; i++) {
		unsigned int d = (unsigned char)p[i] - '0';

		if (d > 9 || x > (UINT64_MAX - d) / 10)
			return false;
		x = x * 10 + d;
	}
	*v = x;
	return true;
}

enum kv_result kv_store_arith(struct kv_store *s, const char *key,
			      size_t nkey, bool incr, uint64_t delta,
			      uint64_t *value)
{
	uint64_t hash = kv_hash(key, nkey);
	struct kv_shard *sh = shard_of(s, hash);
	enum kv_result res = KV_OK;
	struct kv_item *it, *neu;
	char num[24];
	uint64_t v;
	int n, i;

	pthread_mutex_lock(&sh->lock);
	it = find(sh, hash, key, nkey);
	if (!it) {
		res = KV_NOT_FOUND;
		goto out;
	}
	if (!parse_counter(it, &v)) {
		res = KV_NON_NUMERIC;
		goto out;
	}
	if (incr)
		v += delta;		/* wraps at 2^64, as memcached */
	else
		v = v > delta ? v - delta : 0;
	n = 0;
	do {
		num[n++] = '0' + v % 10;
		v /= 10;
	} while (v);
	neu = kv_item_new(it->data, it->nkey, it->flags, it->exptime, n);
	if (!neu) {
		res = KV_NOMEM;
		goto out;
	}
	for (i = 0; i < n; i++)
		kv_item_value(neu)[i] = num[n - 1 - i];
	memcpy(kv_item_value(neu) + n, "\r\n", 2);
	unlink_free(sh, find_slot(sh, hash, key, nkey));
	if (!link_item(sh, neu)) {	/* cannot happen: it is small */
		kv_item_free(neu);
		res = KV_NOMEM;
		goto out;
	}
	*value = 0;
	for (i = 0; i < n; i++)
		*value = *value * 10 + (kv_item_value(neu)[i] - '0');
out:
	pthread_mutex_unlock(&sh->lock);
	return res;
}

void kv_store_flush(struct kv_store *s)
{
	unsigned int i;

	for (i = 0; i < s->nshards; i++) {
		struct kv_shard *sh = &s->shards[i];

		pthread_mutex_lock(&sh->lock);
		while (sh->tail)
			unlink_free(sh, find_slot(sh, sh->tail->hash,
						  sh->tail->data,
						  sh->tail->nkey));
		pthread_mutex_unlock(&sh->lock);
	}
}

void kv_store_conn(struct kv_store *s, bool opened)
{
	if (opened) {
		__atomic_add_fetch(&s->curr_conns, 1, __ATOMIC_RELAXED);
		__atomic_add_fetch(&s->total_conns, 1, __ATOMIC_RELAXED);
	} else {
		__atomic_sub_fetch(&s->curr_conns, 1, __ATOMIC_RELAXED);
	}
}

void kv_store_stats(struct kv_store *s, struct kv_store_stats *st)
{
	unsigned int i;

	memset(st, 0, sizeof(*st));
	for (i = 0; i < s->nshards; i++) {
		struct kv_shard *sh = &s->shards[i];

		pthread_mutex_lock(&sh->lock);
		st->curr_items += sh->items;
		st->total_items += sh->total_items;
		st->bytes += sh->used;
		st->evictions += sh->evictions;
		st->get_hits += sh->hits;
		st->get_misses += sh->misses;
		st->cmd_set += sh->cmd_set;
		st->cmd_touch += sh->cmd_touch;
		pthread_mutex_unlock(&sh->lock);
	}
	st->cmd_get = st->get_hits + st->get_misses;
	st->limit = s->limit;
	st->shards = s->nshards;
	st->started = s->started;
	st->curr_conns = __atomic_load_n(&s->curr_conns, __ATOMIC_RELAXED);
	st->total_conns = __atomic_load_n(&s->total_conns, __ATOMIC_RELAXED);
}
