/*
 * dbiter — what a user iterator sees: the newest visible version of each
 * user key of one namespace, from a merged internal iterator that holds
 * every version and tombstone. The db module wraps this in cesium_iter.
 *
 * Semantics:
 *  - an entry is visible when its seq <= the snapshot sequence;
 *  - for each user key only its newest visible version counts; when that
 *    version is a tombstone, the key is absent;
 *  - only keys of the iterator's namespace are returned; iteration ends at
 *    the end of the namespace;
 *  - an upper bound (exclusive, in user-key space) ends iteration early;
 *  - an empty value is a value, not a delete.
 *
 * Ownership: the dbiter owns the internal iterator (destroyed by
 * dbiter_free) and copies the upper bound. The current key lives in a
 * buffer the dbiter owns; the current value is borrowed from the internal
 * iterator, which does not move until the next dbiter call that moves.
 * Both pointers stay valid until the next seek/next/free.
 *
 * Errors: a failed allocation, a malformed internal key or an internal
 * iterator error makes the dbiter invalid; dbiter_status reports the code
 * (the message was set with error_set on the calling thread). A later seek
 * retries.
 *
 * One thread at a time.
 */
#ifndef CESIUM_CORE_DBITER_H
#define CESIUM_CORE_DBITER_H

#include "iter.h"

typedef struct dbiter dbiter;

/* Takes over `internal` (also on failure). snapshot_seq values above
 * KEYS_MAX_SEQ mean "everything". The result is unpositioned (invalid)
 * until a seek. Returns 0 or CESIUM_ENOMEM. */
int dbiter_new(iter *internal, uint64_t ns, uint64_t snapshot_seq, dbiter **out);

/* Sets an exclusive upper bound on user keys (copied); klen 0 removes it.
 * Applies from the next seek or next on. Returns 0 or CESIUM_ENOMEM (the
 * previous bound is kept then). */
int dbiter_set_upper_bound(dbiter *d, const void *key, size_t klen);

/* Positions at the first visible user key >= key. */
void dbiter_seek(dbiter *d, const void *key, size_t klen);
/* Positions at the first visible user key of the namespace. */
void dbiter_seek_first(dbiter *d);
/* Moves to the next visible user key; requires dbiter_valid. */
void dbiter_next(dbiter *d);
bool dbiter_valid(const dbiter *d);
/* The user key (no namespace prefix) and value; require dbiter_valid. */
const void *dbiter_key(const dbiter *d, size_t *klen);
const void *dbiter_value(const dbiter *d, size_t *vlen);
/* 0, or the CESIUM_E* code that made the iterator invalid. */
int dbiter_status(const dbiter *d);
void dbiter_free(dbiter *d);

#endif
