/*
 * memtable — the in-memory sorted table of recent writes: a concurrent
 * skiplist of internal keys (keys.h) whose nodes, keys and values live in
 * one arena, plus a hash index (one entry per distinct key, pointing at
 * its newest version) that point lookups use instead of the skiplist.
 *
 * Ownership: reference counted. memtable_new returns one reference; every
 * holder (the db's current version, a reader, an iterator, the flush actor)
 * takes its own with memtable_ref and drops it with memtable_unref; the last
 * unref frees the table and its arena.
 * Threads: memtable_add may run on several writer threads at once (inserts
 * are lock-free, CAS on each level's next pointer); memtable_get, the
 * iterators and the statistics never lock and may run concurrently with
 * adds. Readers filter by sequence number, so an entry published by a
 * concurrent add may or may not be seen, but the skiplist order is always
 * consistent.
 * Lifetime: slices returned by memtable_get and by the iterator point into
 * the arena, or for held values into the table's home, and stay valid
 * while the caller holds a reference.
 */
#ifndef CESIUM_CORE_MEMTABLE_H
#define CESIUM_CORE_MEMTABLE_H

#include "iter.h"
#include "keys.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct memtable memtable;

/* Towers grow with p = 1/2 per level, so 20 levels keep the top level
 * short up to about a million entries (a 64 MiB table of 100-byte values
 * holds 400k). */
#define MEMTABLE_MAX_HEIGHT 20

/* A new empty table with a reference count of 1, its hash index sized for
 * about capacity bytes of entries (0: a small one). CESIUM_ENOMEM. */
int memtable_new(size_t capacity, memtable **out);
void memtable_ref(memtable *mt);
/* Drops one reference; frees the table at zero. mt may be NULL. */
void memtable_unref(memtable *mt);

/* Inserts nskey@seq. value is ignored for tombstones. seq must be unique
 * per entry and <= KEYS_MAX_SEQ. CESIUM_EINVAL, CESIUM_ENOMEM. */
int memtable_add(memtable *mt, uint64_t seq, enum keys_kind kind, keys_slice nskey,
                 keys_slice value);

/* Values that live elsewhere for as long as the table does: home (a log's
 * mapping, wal_hold) is released with release(home) when the table is
 * freed. Once, before the first memtable_add_held. */
void memtable_hold(memtable *mt, void *home, void (*release)(void *home));
/* How a node has its value: a copy in the arena, or a pointer into the
 * table's home; MEMTABLE_HELD_ALONE says, for whoever reads it back, that
 * the value is the last field of the only entry of its log record (the
 * flush then refers to the record's own checksum instead of hashing the
 * value). */
enum memtable_held { MEMTABLE_COPIED, MEMTABLE_HELD, MEMTABLE_HELD_ALONE };
/* memtable_add of a value whose bytes stay where they are, in the table's
 * home (CESIUM_EINVAL without one, or with MEMTABLE_COPIED): the node
 * keeps a pointer, not a copy, and readers read the value there. */
int memtable_add_held(memtable *mt, uint64_t seq, keys_slice nskey, keys_slice value,
                      enum memtable_held how);

/* The newest version of nskey with seq <= snapshot_seq: 0 with *kind set
 * (and *value, for KEYS_KIND_VALUE), or CESIUM_ENOTFOUND. */
int memtable_get(memtable *mt, keys_slice nskey, uint64_t snapshot_seq, enum keys_kind *kind,
                 keys_slice *value);

/* Bytes the arena has reserved. */
size_t memtable_memory_usage(const memtable *mt);
/* Bytes of the values added with memtable_add_held (they are in the home,
 * not the arena). */
size_t memtable_held_bytes(const memtable *mt);
/* Entries inserted so far. */
uint64_t memtable_entries(const memtable *mt);

/* An iterator over every entry (see iter.h); it holds a reference on mt
 * until destroyed. CESIUM_ENOMEM. */
int memtable_iter_new(memtable *mt, iter **out);
/* For a memtable iterator only: how its entry's value was added
 * (MEMTABLE_COPIED, or as memtable_add_held was told: its bytes are in the
 * table's home). */
enum memtable_held memtable_iter_held(const iter *it);
/* The home given to memtable_hold (NULL: none). */
void *memtable_home(const memtable *mt);

#endif
