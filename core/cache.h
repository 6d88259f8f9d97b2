/*
 * cache — the block cache: (segment id, file offset) → an immutable,
 * reference-counted block of bytes, within a byte budget.
 *
 * Concurrency: 64 shards (chosen by a hash of the key; fewer for caches
 * under 4 MiB, so that a shard holds at least 64 KiB), each guarded by its
 * own mutex held only for a hash-table probe and a list splice; there is no
 * global lock. Lookups are NOT lock-free (a per-shard lock, LRU eviction).
 * Any thread may call anything.
 *
 * Budget: an entry is charged its byte length. Each shard holds at most
 * its share of the capacity in entries nobody references; referenced
 * (pinned) entries are never freed, so usage exceeds capacity only by
 * pinned bytes. Capacity 0 caches nothing (inserts still hand back a
 * handle, freed on release).
 *
 * Lifetime: a handle and its bytes stay valid until cache_release; the
 * cache frees the bytes with the free_fn given at insert once the entry is
 * both out of the cache and released. The cache must outlive its handles.
 */
#ifndef CESIUM_CORE_CACHE_H
#define CESIUM_CORE_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cache cache;
typedef struct cache_handle cache_handle;

int cache_new(size_t capacity, cache **out);
/* Frees every entry; no handle may be outstanding. */
void cache_free(cache *c);

/* A referenced handle, or NULL on a miss. */
cache_handle *cache_lookup(cache *c, uint64_t id, uint64_t off);
/*
 * Inserts data (len bytes, freed later with free_fn, which may be NULL),
 * replacing any entry with the same key (the old one lives on until
 * released). With out, *out receives a referenced handle; without, the
 * entry is left unreferenced. The cache owns data from this call on, even
 * on failure (CESIUM_ENOMEM: data freed, *out NULL).
 */
int cache_insert(cache *c, uint64_t id, uint64_t off, void *data, size_t len,
                 void (*free_fn)(void *), cache_handle **out);
const void *cache_value(const cache_handle *h, size_t *len);
void cache_release(cache *c, cache_handle *h);
/* Drops every unreferenced entry of segment id and detaches referenced ones
 * (a deleted segment's blocks are of no further use). */
void cache_erase_segment(cache *c, uint64_t id);

size_t cache_capacity(const cache *c);
/* Bytes charged now (cached plus pinned-but-cached entries). */
size_t cache_usage(const cache *c);
uint64_t cache_hits(const cache *c);
uint64_t cache_misses(const cache *c);

#endif
