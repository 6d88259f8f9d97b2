/*
 * block — the sorted key/value block used for a segment's data blocks and
 * its index block: a builder that encodes entries, and an iterator that
 * reads them back.
 *
 * Entry: varint32 shared, varint32 non_shared, varint32 value_len,
 * key[shared..] (non_shared bytes), value. Every restart_interval entries
 * the key is stored whole (shared = 0) and its offset is recorded; the
 * block ends with the restart offsets (u32 LE each) and their count
 * (u32 LE). See docs/format-segment.md.
 *
 * A builder belongs to one thread. A block iterator belongs to one thread
 * at a time and reads a caller-owned byte range, which must outlive it.
 * The iterator trusts nothing in the bytes: a malformed block makes it
 * invalid with status CESIUM_ECORRUPT, never reads out of bounds.
 */
#ifndef CESIUM_CORE_BLOCK_H
#define CESIUM_CORE_BLOCK_H

#include "iter.h"

#define BLOCK_RESTART_INTERVAL 16
/* Keys up to this many bytes are rebuilt without allocating. */
#define BLOCK_INLINE_KEY 128

typedef struct block_builder {
	uint8_t *buf;
	size_t len, cap;
	uint32_t *restarts;
	size_t nrestarts, rcap;
	uint8_t *last_key;
	size_t last_len, last_cap;
	size_t entries;
	int counter; /* entries since the last restart */
	int restart_interval;
} block_builder;

/* restart_interval >= 1 (BLOCK_RESTART_INTERVAL for data blocks). */
void block_builder_init(block_builder *b, int restart_interval);
/* Appends an entry; keys must be added in increasing order (the caller
 * checks). CESIUM_ENOMEM on failure. */
int block_builder_add(block_builder *b, keys_slice key, keys_slice value);
/* Bytes the finished block would take now. */
size_t block_builder_estimate(const block_builder *b);
bool block_builder_empty(const block_builder *b);
/* The last key added (valid until the next add or reset). */
keys_slice block_builder_last_key(const block_builder *b);
/* Appends the restart array; *out points into the builder and stays valid
 * until reset or destroy. CESIUM_ENOMEM on failure. */
int block_builder_finish(block_builder *b, keys_slice *out);
void block_builder_reset(block_builder *b);
void block_builder_destroy(block_builder *b);

/*
 * A block iterator. Embed or put on the stack with block_iter_init /
 * block_iter_reset / block_iter_cleanup (no allocation unless a key is
 * longer than BLOCK_INLINE_KEY), or get a heap one with block_iter_new.
 * With ikeys, keys are internal keys ordered by keys_compare_ikey and a key
 * shorter than a trailer is corruption; otherwise keys are compared
 * bytewise.
 */
struct block_iter {
	iter base;
	const uint8_t *data;
	size_t restarts_off; /* where the entries end */
	uint32_t nrestarts;
	size_t cur;      /* offset of the current entry; restarts_off when invalid */
	size_t next_off; /* offset of the entry after it */
	uint8_t *key;    /* rebuilt current key */
	size_t key_len, key_cap;
	keys_slice value;
	int status;
	bool ikeys;
	bool heap;
	uint8_t inline_key[BLOCK_INLINE_KEY];
};

void block_iter_init(struct block_iter *it, bool ikeys);
/* Points the iterator at a new block (unpositioned); a malformed restart
 * array sets status CESIUM_ECORRUPT. */
void block_iter_reset(struct block_iter *it, const uint8_t *data, size_t len);
void block_iter_cleanup(struct block_iter *it);
/* The key of restart entry i (< nrestarts), read in place (a restart
 * entry shares nothing with its predecessor); false with the iterator
 * failed (CESIUM_ECORRUPT) when the entry is malformed. */
bool block_iter_restart_key(struct block_iter *it, uint32_t i, keys_slice *key);
/* Seeks to the first entry >= target at or after restart i: a seek whose
 * binary search over the restarts was done by the caller (i = the last
 * restart whose key is below target, or 0). */
void block_iter_seek_from(struct block_iter *it, uint32_t i, keys_slice target);
/* A heap iterator over [data, data+len); iter_destroy frees it. */
int block_iter_new(const uint8_t *data, size_t len, bool ikeys, iter **out);

#endif
