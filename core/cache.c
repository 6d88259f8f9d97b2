#include "cache.h"

#include "cesium.h"
#include "mem.h"

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <string.h>

#define CACHE_SHARD_BITS 6
#define CACHE_SHARDS (1u << CACHE_SHARD_BITS)
/* A shard smaller than this would evict a block as soon as a few others
 * arrive: small caches use fewer shards instead. */
#define CACHE_MIN_SHARD_BYTES (64u * 1024u)

struct cache_handle {
	uint64_t id, off;
	uint64_t hash;
	void *data;
	size_t len;
	void (*free_fn)(void *);
	uint32_t refs; /* guarded by the shard lock */
	bool in_table; /* reachable by lookup; charged to the shard */
	struct cache_handle *hnext;
	struct cache_handle *prev, *next; /* LRU links, only while refs == 0 */
};

struct cache_shard {
	alignas(64) pthread_mutex_t mu;
	struct cache_handle **buckets;
	size_t nbuckets, count;
	size_t cap;
	/* Written under mu, read lock-free by cache_usage: relaxed is enough
	 * for a statistic. */
	_Atomic size_t usage;
	struct cache_handle lru; /* sentinel: lru.next is the oldest */
	/* Statistics only, per shard so lookups on different shards do not
	 * share a cache line; relaxed. */
	_Atomic uint64_t hits, misses;
};

struct cache {
	size_t capacity;
	size_t nshards; /* a power of two, 1..CACHE_SHARDS */
	struct cache_shard shards[CACHE_SHARDS];
};

static uint64_t cache_hash(uint64_t id, uint64_t off)
{
	uint64_t h = id * UINT64_C(0x9e3779b97f4a7c15) ^ off;
	h ^= h >> 31;
	h *= UINT64_C(0xbf58476d1ce4e5b9);
	h ^= h >> 29;
	h *= UINT64_C(0x94d049bb133111eb);
	h ^= h >> 32;
	return h;
}

static struct cache_shard *cache_shard_of(cache *c, uint64_t hash)
{
	return &c->shards[(hash >> (64 - CACHE_SHARD_BITS)) & (c->nshards - 1)];
}

int cache_new(size_t capacity, cache **out)
{
	cache *c = mem_zalloc(sizeof(*c));
	if (!c)
		return CESIUM_ENOMEM;
	c->capacity = capacity;
	c->nshards = CACHE_SHARDS;
	while (c->nshards > 1 && capacity / c->nshards < CACHE_MIN_SHARD_BYTES)
		c->nshards /= 2;
	for (size_t i = 0; i < CACHE_SHARDS; i++) {
		struct cache_shard *s = &c->shards[i];
		pthread_mutex_init(&s->mu, NULL);
		s->cap = i >= c->nshards
		             ? 0
		             : capacity / c->nshards + (i < capacity % c->nshards ? 1 : 0);
		s->lru.next = s->lru.prev = &s->lru;
	}
	*out = c;
	return 0;
}

static void cache_entry_free(struct cache_handle *e)
{
	if (e->free_fn)
		e->free_fn(e->data);
	mem_free(e);
}

void cache_free(cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < CACHE_SHARDS; i++) {
		struct cache_shard *s = &c->shards[i];
		for (size_t b = 0; b < s->nbuckets; b++) {
			struct cache_handle *e = s->buckets[b];
			while (e) {
				struct cache_handle *n = e->hnext;
				cache_entry_free(e);
				e = n;
			}
		}
		mem_free(s->buckets);
		pthread_mutex_destroy(&s->mu);
	}
	mem_free(c);
}

static void cache_lru_unlink(struct cache_handle *e)
{
	e->prev->next = e->next;
	e->next->prev = e->prev;
	e->prev = e->next = NULL;
}

static void cache_lru_append(struct cache_shard *s, struct cache_handle *e)
{
	e->next = &s->lru;
	e->prev = s->lru.prev;
	e->prev->next = e;
	s->lru.prev = e;
}

static struct cache_handle **cache_find_slot(struct cache_shard *s, uint64_t hash, uint64_t id,
                                             uint64_t off)
{
	if (!s->nbuckets)
		return NULL;
	struct cache_handle **p = &s->buckets[hash & (s->nbuckets - 1)];
	while (*p && !((*p)->id == id && (*p)->off == off))
		p = &(*p)->hnext;
	return p;
}

/* Takes e out of the table (caller holds the lock). */
static void cache_table_remove(struct cache_shard *s, struct cache_handle *e)
{
	struct cache_handle **p = cache_find_slot(s, e->hash, e->id, e->off);
	if (p && *p == e)
		*p = e->hnext;
	e->hnext = NULL;
	e->in_table = false;
	s->count--;
	atomic_store_explicit(&s->usage,
	                      atomic_load_explicit(&s->usage, memory_order_relaxed) - e->len,
	                      memory_order_relaxed);
}

/* Grows the table when it is fuller than one entry per bucket; failure to
 * grow only makes chains longer. */
static void cache_table_grow(struct cache_shard *s)
{
	if (s->count < s->nbuckets)
		return;
	size_t n = s->nbuckets ? s->nbuckets * 2 : 16;
	struct cache_handle **nb = mem_calloc(n, sizeof(*nb));
	if (!nb)
		return;
	for (size_t i = 0; i < s->nbuckets; i++) {
		struct cache_handle *e = s->buckets[i];
		while (e) {
			struct cache_handle *next = e->hnext;
			struct cache_handle **slot = &nb[e->hash & (n - 1)];
			e->hnext = *slot;
			*slot = e;
			e = next;
		}
	}
	mem_free(s->buckets);
	s->buckets = nb;
	s->nbuckets = n;
}

/* Evicts unreferenced entries, oldest first, until the shard fits its
 * budget; returns them chained on hnext so the caller frees them after
 * unlocking. */
static struct cache_handle *cache_evict(struct cache_shard *s)
{
	struct cache_handle *dead = NULL;
	while (atomic_load_explicit(&s->usage, memory_order_relaxed) > s->cap &&
	       s->lru.next != &s->lru) {
		struct cache_handle *e = s->lru.next;
		cache_lru_unlink(e);
		cache_table_remove(s, e);
		e->hnext = dead;
		dead = e;
	}
	return dead;
}

static void cache_free_chain(struct cache_handle *e)
{
	while (e) {
		struct cache_handle *n = e->hnext;
		cache_entry_free(e);
		e = n;
	}
}

cache_handle *cache_lookup(cache *c, uint64_t id, uint64_t off)
{
	if (!c)
		return NULL;
	uint64_t hash = cache_hash(id, off);
	struct cache_shard *s = cache_shard_of(c, hash);
	pthread_mutex_lock(&s->mu);
	struct cache_handle **p = cache_find_slot(s, hash, id, off);
	struct cache_handle *e = p ? *p : NULL;
	if (e) {
		if (e->refs++ == 0)
			cache_lru_unlink(e);
	}
	pthread_mutex_unlock(&s->mu);
	atomic_fetch_add_explicit(e ? &s->hits : &s->misses, 1, memory_order_relaxed);
	return e;
}

int cache_insert(cache *c, uint64_t id, uint64_t off, void *data, size_t len,
                 void (*free_fn)(void *), cache_handle **out)
{
	if (out)
		*out = NULL;
	struct cache_handle *e = mem_zalloc(sizeof(*e));
	if (!e) {
		if (free_fn)
			free_fn(data);
		return CESIUM_ENOMEM;
	}
	e->id = id;
	e->off = off;
	e->hash = cache_hash(id, off);
	e->data = data;
	e->len = len;
	e->free_fn = free_fn;
	e->refs = out ? 1 : 0;
	if (!c || c->capacity == 0) {
		if (out)
			*out = e;
		else
			cache_entry_free(e);
		return 0;
	}
	struct cache_shard *s = cache_shard_of(c, e->hash);
	struct cache_handle *dead = NULL;
	pthread_mutex_lock(&s->mu);
	cache_table_grow(s);
	struct cache_handle **p = cache_find_slot(s, e->hash, id, off);
	if (!p) {
		/* No table at all (allocation failed): hand back an uncached
		 * handle rather than fail the read. */
		pthread_mutex_unlock(&s->mu);
		if (out)
			*out = e;
		else
			cache_entry_free(e);
		return 0;
	}
	struct cache_handle *old = *p;
	if (old) {
		if (old->refs == 0)
			cache_lru_unlink(old);
		cache_table_remove(s, old);
		if (old->refs == 0) {
			old->hnext = dead;
			dead = old;
		}
		p = cache_find_slot(s, e->hash, id, off);
	}
	e->hnext = NULL;
	*p = e;
	e->in_table = true;
	s->count++;
	atomic_store_explicit(&s->usage,
	                      atomic_load_explicit(&s->usage, memory_order_relaxed) + len,
	                      memory_order_relaxed);
	if (!out)
		cache_lru_append(s, e);
	struct cache_handle *evicted = cache_evict(s);
	pthread_mutex_unlock(&s->mu);
	cache_free_chain(dead);
	cache_free_chain(evicted);
	if (out)
		*out = e;
	return 0;
}

const void *cache_value(const cache_handle *h, size_t *len)
{
	if (len)
		*len = h->len;
	return h->data;
}

void cache_release(cache *c, cache_handle *h)
{
	if (!h)
		return;
	if (!c || c->capacity == 0) {
		cache_entry_free(h); /* never shared: refs was 1 */
		return;
	}
	struct cache_shard *s = cache_shard_of(c, h->hash);
	struct cache_handle *dead = NULL;
	pthread_mutex_lock(&s->mu);
	if (--h->refs == 0) {
		if (h->in_table) {
			cache_lru_append(s, h);
			dead = cache_evict(s);
		} else {
			h->hnext = NULL;
			dead = h;
		}
	}
	pthread_mutex_unlock(&s->mu);
	cache_free_chain(dead);
}

void cache_erase_segment(cache *c, uint64_t id)
{
	if (!c)
		return;
	for (size_t i = 0; i < CACHE_SHARDS; i++) {
		struct cache_shard *s = &c->shards[i];
		struct cache_handle *dead = NULL;
		pthread_mutex_lock(&s->mu);
		for (size_t b = 0; b < s->nbuckets; b++) {
			struct cache_handle *e = s->buckets[b];
			while (e) {
				struct cache_handle *n = e->hnext;
				if (e->id == id) {
					if (e->refs == 0)
						cache_lru_unlink(e);
					cache_table_remove(s, e);
					if (e->refs == 0) {
						e->hnext = dead;
						dead = e;
					}
				}
				e = n;
			}
		}
		pthread_mutex_unlock(&s->mu);
		cache_free_chain(dead);
	}
}

size_t cache_capacity(const cache *c)
{
	return c ? c->capacity : 0;
}

size_t cache_usage(const cache *c)
{
	size_t u = 0;
	if (!c)
		return 0;
	for (size_t i = 0; i < CACHE_SHARDS; i++)
		u += atomic_load_explicit(&c->shards[i].usage, memory_order_relaxed);
	return u;
}

uint64_t cache_hits(const cache *c)
{
	uint64_t n = 0;
	if (!c)
		return 0;
	for (size_t i = 0; i < CACHE_SHARDS; i++)
		n += atomic_load_explicit(&c->shards[i].hits, memory_order_relaxed);
	return n;
}

uint64_t cache_misses(const cache *c)
{
	uint64_t n = 0;
	if (!c)
		return 0;
	for (size_t i = 0; i < CACHE_SHARDS; i++)
		n += atomic_load_explicit(&c->shards[i].misses, memory_order_relaxed);
	return n;
}
