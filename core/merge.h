/*
 * merge — the merging iterator: one sorted view over N internal iterators
 * (memtables, segments), so that reads, flushes and compactions share a
 * single merge.
 *
 * The merged iterator is itself an iter (iter.h). It yields every entry of
 * every child, in internal-key order (keys_compare_ikey). When two children
 * hold the same internal key, the child with the lower index comes first:
 * callers pass the newest source first.
 *
 * Ownership: merge_iter_new takes the children over (also when it fails);
 * iter_destroy on the merged iterator destroys them. Key and value slices
 * come from the current child and stay valid until the merged iterator is
 * next moved. Children must yield keys of at least KEYS_TRAILER_SIZE bytes
 * (sources validate what they decode).
 *
 * Errors: when any child becomes invalid with a non-zero status, the merged
 * iterator becomes invalid and its status is the first non-zero child status
 * in child order. A later seek starts afresh from the children's statuses.
 *
 * One thread at a time, like every iter.
 */
#ifndef CESIUM_CORE_MERGE_H
#define CESIUM_CORE_MERGE_H

#include "iter.h"

/* Builds the merged iterator over children[0..n) (n may be 0: always
 * invalid). The array itself is copied; the children are owned from here
 * on. The result is unpositioned: seek or seek_first it first. Returns 0 or
 * CESIUM_ENOMEM (the children are destroyed then). */
int merge_iter_new(iter **children, size_t n, iter **out);

#endif
