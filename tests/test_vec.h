/*
 * test_vec — an in-test iter source over sorted (internal key, value) pairs,
 * and a growable list of entries to build such sources from, for the unit
 * tests of the iterators that consume sources (merge, dbiter, compact_iter).
 *
 * Test-only and single-threaded; helpers fail the running cmocka test on
 * error. vec_new and vec_from copy the entries they are given: the caller
 * keeps its array or list (vl_free), and the returned vec_iter owns its
 * copy until its iter's destroy, which is usually done by the consumer that
 * took the source. A vec_iter's key and value slices are valid only until
 * the next move, and are overwritten on each move to catch users that keep
 * them longer.
 */
#ifndef CESIUM_TESTS_TEST_VEC_H
#define CESIUM_TESTS_TEST_VEC_H

#include <stddef.h>
#include <stdint.h>

#include "iter.h"
#include "keys.h"

/*
 * A source: an iter over a sorted array of (internal key, value)
 * pairs it owns. fail_at makes it turn invalid with fail_code when it would
 * move onto entry fail_at (SIZE_MAX: never), as a source hitting a bad
 * block would.
 */
typedef struct {
	uint8_t *key;
	size_t klen;
	uint8_t *val;
	size_t vlen;
} vec_entry;

typedef struct {
	iter base;
	vec_entry *e;
	size_t n;
	size_t pos;
	size_t fail_at;
	int fail_code;
	int status;
	/* The current entry is served from these buffers, rewritten on every
	 * move, so that a user holding a slice across a move sees garbage. */
	uint8_t *kbuf;
	uint8_t *vbuf;
	size_t kmax;
	size_t vmax;
} vec_iter;

/* A growable list of entries that tests fill and turn into sources. */
typedef struct {
	vec_entry *e;
	size_t n;
	size_t cap;
} vec_list;

/* How many vec iterators have been destroyed, so tests can check that a
 * consumer destroys its sources. */
extern int vec_destroyed;

/* Orders vec_entry by internal key (a qsort comparator). */
int vec_entry_cmp(const void *a, const void *b);

/* A source over a sorted copy of e[0..n). */
vec_iter *vec_new(const vec_entry *e, size_t n);
/* A source over a sorted copy of l's entries. */
vec_iter *vec_from(const vec_list *l);

/* Builds an internal key ns ++ ukey ++ trailer into a malloc'd buffer the
 * caller frees; *klen receives its length. */
uint8_t *make_ikey(uint64_t ns, const char *ukey, size_t ulen, uint64_t seq, enum keys_kind kind,
                   size_t *klen);
/* Appends a copy of the given internal key and value. */
void vl_add_raw(vec_list *l, const void *key, size_t klen, const void *val, size_t vlen);
/* Adds ns/ukey@seq; val NULL adds a tombstone (with an empty value). */
void vl_add(vec_list *l, uint64_t ns, const char *ukey, uint64_t seq, const char *val);
/* Frees the entries and leaves l empty. */
void vl_free(vec_list *l);

#endif
