/*
 * iter — the internal iterator interface every sorted source implements
 * (memtable, segment, merging iterator), so that one merge serves reads,
 * flushes and compactions.
 *
 * An internal iterator yields internal keys (see keys.h) in internal-key
 * order, with every version and tombstone; hiding is the reader's job.
 * Key and value slices stay valid until the next call that moves the
 * iterator. An iterator belongs to one thread at a time.
 */
#ifndef CESIUM_CORE_ITER_H
#define CESIUM_CORE_ITER_H

#include "keys.h"

typedef struct iter iter;

struct iter_ops {
	/* Positions at the first entry whose internal key is >= ikey. */
	void (*seek)(iter *it, keys_slice ikey);
	void (*seek_first)(iter *it);
	void (*next)(iter *it);
	bool (*valid)(const iter *it);
	keys_slice (*key)(const iter *it);   /* internal key */
	keys_slice (*value)(const iter *it);
	/* 0, or the CESIUM_E* code that made the iterator invalid; the
	 * message was set with error_set on the thread that hit it. */
	int (*status)(const iter *it);
	void (*destroy)(iter *it);
	/* Optional (NULL: never lazy). A seek may position an iterator
	 * lazily: valid, with the key known from metadata, the entry itself
	 * not read yet. load reads it (a no-op when not lazy); valid and
	 * status then tell whether that worked. Whoever wants value() or
	 * next() of a lazy iterator calls load first (merge_iter does, for
	 * its top child). */
	void (*load)(iter *it);
	/* Optional (NULL: nothing to prepare). The first half of a seek to
	 * ikey: finds where the entry lies and asks for its cache lines,
	 * without waiting for them; the seek that follows (to the same ikey)
	 * finishes the job. A merge prepares every child before seeking any,
	 * so the children's misses overlap. */
	void (*prepare_seek)(iter *it, keys_slice ikey);
};

/* Implementations embed this as their first member. */
struct iter {
	const struct iter_ops *ops;
};

static inline void iter_seek(iter *it, keys_slice ikey) { it->ops->seek(it, ikey); }
static inline void iter_seek_first(iter *it) { it->ops->seek_first(it); }
static inline void iter_next(iter *it) { it->ops->next(it); }
static inline bool iter_valid(const iter *it) { return it->ops->valid(it); }
static inline keys_slice iter_key(const iter *it) { return it->ops->key(it); }
static inline keys_slice iter_value(const iter *it) { return it->ops->value(it); }
static inline int iter_status(const iter *it) { return it->ops->status(it); }
static inline void iter_prepare_seek(iter *it, keys_slice ikey)
{
	if (it->ops->prepare_seek)
		it->ops->prepare_seek(it, ikey);
}
static inline void iter_load(iter *it)
{
	if (it->ops->load)
		it->ops->load(it);
}
static inline void iter_destroy(iter *it)
{
	if (it)
		it->ops->destroy(it);
}

#endif
