/*
 * multiget — cesium_multi_get: a batch of point lookups in one namespace
 * at one snapshot, whose segment block reads go out together on a ring
 * (design: docs/architecture.md, "multi_get").
 *
 * Threads: any caller thread, like cesium_get. A batch loads visible_seq
 * once and stays inside the read epoch, on one db_state, from its first
 * memtable lookup to its last block search, its block reads included.
 * Those reads go out on a ring private to the calling thread (io/ring.h,
 * created on first use, destroyed at thread exit by a pthread_key
 * destructor), never on a reactor's ring, and so through the fault seam
 * (io/fault.h). Blocks already in the page cache (mincore) are searched
 * in place in the segment's mapping; without io_uring the reads fall back
 * to pread.
 *
 * Limits: segments written with zstd are looked up key by key through
 * seg_reader_get (their decompressed blocks live in the block cache), so
 * they get no parallel reads.
 *
 * Results: each vals[i] is mem_alloc'd and owned by the caller (free with
 * cesium_free); nothing returned points into the module's state.
 */
#ifndef CESIUM_CORE_MULTIGET_H
#define CESIUM_CORE_MULTIGET_H

#include "cesium.h"

/* Reads a batch keeps in flight on its thread's ring at once; larger
 * batches go out in a sliding window of this many. */
#define MULTIGET_RING_DEPTH 64

/* How a batch decides which blocks to read on the ring. */
enum multiget_policy {
	/* Blocks whose pages mincore reports resident are searched in place
	 * in the segment's mapping; only the others are read (default). */
	MULTIGET_SKIP_RESIDENT,
	/* Every block is read on the ring (tests: exercises the ring and
	 * the fault seam even when the page cache is warm). */
	MULTIGET_READ_ALL,
};
/* Process-wide; any thread, any time (relaxed: a batch reads it once). */
void multiget_set_policy(enum multiget_policy p);

#endif
