/*
 * bloom — the per-segment bloom filter over nskeys (keys without their
 * trailer), so that a get skips segments that cannot hold the key.
 *
 * Layout is cache-line blocked: the top 32 bits of a key's XXH3 hash pick
 * one 64-byte line, and all k probes land inside that line, so a lookup
 * touches one cache line. Format (docs/format-segment.md):
 *   nlines * 64 bytes of bits, then 1 byte k (1..30).
 * A zero-length filter means "no filter" and answers true.
 *
 * A builder belongs to one thread (the segment writer); bloom_may_contain
 * is pure and any thread may call it on any bytes.
 */
#ifndef CESIUM_CORE_BLOOM_H
#define CESIUM_CORE_BLOOM_H

#include "keys.h"

#define BLOOM_LINE_BYTES 64
#define BLOOM_LINE_BITS (BLOOM_LINE_BYTES * 8)
#define BLOOM_MAX_PROBES 30

typedef struct bloom_builder {
	uint64_t *hashes;
	size_t n, cap;
	int bits_per_key;
} bloom_builder;

/* The hash every filter operation takes: XXH3_64bits of the nskey. */
uint64_t bloom_hash(keys_slice nskey);

/* bits_per_key <= 0 builds an empty filter (no filtering). */
void bloom_builder_init(bloom_builder *b, int bits_per_key);
/* Adds one key's hash; a hash equal to the previous one is skipped
 * (consecutive versions of one key). CESIUM_ENOMEM on failure. */
int bloom_builder_add(bloom_builder *b, uint64_t hash);
/* The number of bytes bloom_builder_emit will write. */
size_t bloom_builder_size(const bloom_builder *b);
/* Writes the filter into dst (bloom_builder_size bytes). */
void bloom_builder_emit(const bloom_builder *b, uint8_t *dst);
/* Forgets the hashes, keeps the memory. */
void bloom_builder_reset(bloom_builder *b);
void bloom_builder_destroy(bloom_builder *b);

/* The number of probes for bits_per_key (round(bits * ln 2), 1..30). */
int bloom_probes(int bits_per_key);

/* False only when the key whose hash is given was certainly not added.
 * Safe on any bytes: a malformed filter answers true. */
bool bloom_may_contain(const uint8_t *filter, size_t len, uint64_t hash);
/* Prefetches the one cache line bloom_may_contain will read for hash. */
void bloom_prefetch(const uint8_t *filter, size_t len, uint64_t hash);

#endif
