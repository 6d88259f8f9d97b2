/*
 * compact_iter — the compaction output filter: from a merged internal
 * iterator over a compaction's inputs, yields exactly the entries the
 * compaction must write, in internal-key order.
 *
 * The rule. Let S = s_0 < s_1 < ... < s_{k-1} be the snapshot sequences
 * (open iterators and other readers pinned at a sequence). A reader at
 * snapshot s sees, for each nskey, the newest version with seq <= s; the
 * latest reader sees the newest version of all. Give each version of an
 * nskey a stripe: the index i of the smallest s_i >= seq, or k when seq is
 * above every snapshot. Two versions in the same stripe are seen by exactly
 * the same readers, so only the newer one can ever be read. Hence, walking
 * the versions of one nskey newest first:
 *
 *  1. A version is kept when it is the newest version of its stripe (the
 *     newest version of the key is always kept); every other version is
 *     dropped and counted in dropped_shadowed (tombstones included).
 *  2. Only when `bottommost` (no level below the output holds older data
 *     for these keys): a kept tombstone is dropped when no kept value
 *     version lies beneath it (older) for this nskey — nothing it hides
 *     survives, so every reader answers "absent" without it. This covers a
 *     tombstone alone in its stripe with no older kept version, and a
 *     chain of kept tombstones over nothing. Such drops are counted in
 *     dropped_tombstones. A kept tombstone above a kept value is written.
 *  3. When not bottommost, kept tombstones are always written: they must
 *     keep hiding versions in deeper levels.
 *
 * entries_in = entries_out + dropped_shadowed + dropped_tombstones once the
 * input is exhausted. Deciding rule 2 needs to look past a tombstone, so
 * kept tombstones are held (copied) until the key's next kept value or the
 * end of the key: at most one per stripe, i.e. nsnap + 1.
 *
 * Ownership: takes over the input iterator (also on failure) and copies the
 * snapshot list. Key and value slices stay valid until the next
 * compact_iter_next/seek/free. One thread (the compactor actor) at a time.
 * An input error ends iteration; compact_iter_status reports it.
 */
#ifndef CESIUM_COMPACTION_COMPACT_ITER_H
#define CESIUM_COMPACTION_COMPACT_ITER_H

#include "iter.h"

typedef struct compact_iter compact_iter;

typedef struct {
	uint64_t entries_in;         /* input entries read */
	uint64_t entries_out;        /* entries yielded */
	uint64_t dropped_shadowed;   /* older versions in the stripe of a newer one */
	uint64_t dropped_tombstones; /* kept tombstones dropped by rule 2 */
} compact_iter_stats;

/* snapshots: ascending (duplicates allowed), nsnap may be 0. Positions the
 * filter at its first output (seek_first on the input). Returns 0,
 * CESIUM_EINVAL (snapshots not ascending) or CESIUM_ENOMEM; the input is
 * destroyed on failure. */
int compact_iter_new(iter *input, const uint64_t *snapshots, size_t nsnap, bool bottommost,
                     compact_iter **out);

/* Repositions at the first output whose nskey is >= nskey (a subcompaction
 * starting at a key boundary). Counters keep accumulating. */
void compact_iter_seek(compact_iter *ci, const void *nskey, size_t len);
void compact_iter_next(compact_iter *ci);
bool compact_iter_valid(const compact_iter *ci);
keys_slice compact_iter_key(const compact_iter *ci); /* internal key */
keys_slice compact_iter_value(const compact_iter *ci);
int compact_iter_status(const compact_iter *ci);
compact_iter_stats compact_iter_get_stats(const compact_iter *ci);
void compact_iter_free(compact_iter *ci);

#endif
