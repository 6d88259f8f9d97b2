/* Unit tests for core/memtable: order, snapshots, tombstones, iterator,
 * concurrent inserts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cesium.h"
#include "memtable.h"
#include "test_util.h"

/* nskey of (ns, C string key) in a caller buffer. */
static keys_slice nsk(uint8_t *buf, uint64_t ns, const char *key)
{
	size_t n = strlen(key);
	keys_make_nskey(buf, ns, key, n);
	return keys_slice_of(buf, KEYS_NS_SIZE + n);
}

static void put(memtable *mt, uint64_t seq, const char *key, const char *val)
{
	uint8_t b[128];
	assert_int_equal(memtable_add(mt, seq, KEYS_KIND_VALUE, nsk(b, 0, key),
	                              keys_slice_of(val, strlen(val))),
	                 0);
}

static void del(memtable *mt, uint64_t seq, const char *key)
{
	uint8_t b[128];
	assert_int_equal(memtable_add(mt, seq, KEYS_KIND_DELETE, nsk(b, 0, key),
	                              keys_slice_of(NULL, 0)),
	                 0);
}

/* Returns the value at snapshot as a static string, "<del>" or "<none>". */
static const char *get(memtable *mt, const char *key, uint64_t snap)
{
	static char out[128];
	uint8_t b[128];
	enum keys_kind kind;
	keys_slice v;
	int rc = memtable_get(mt, nsk(b, 0, key), snap, &kind, &v);
	if (rc == CESIUM_ENOTFOUND)
		return "<none>";
	assert_int_equal(rc, 0);
	if (kind == KEYS_KIND_DELETE)
		return "<del>";
	assert_true(v.len < sizeof(out));
	memcpy(out, v.data, v.len);
	out[v.len] = '\0';
	return out;
}

/* Iteration yields keys ascending and versions of one key newest first. */
static void iteration_orders_keys_then_versions_newest_first(void **state)
{
	(void)state;
	memtable *mt;
	assert_int_equal(memtable_new(0, &mt), 0);
	put(mt, 3, "b", "b3");
	put(mt, 1, "a", "a1");
	put(mt, 7, "a", "a7");
	del(mt, 5, "a");
	put(mt, 2, "ab", "ab2");
	put(mt, 4, "c", "c4");
	uint8_t b[8];
	keys_make_nskey(b, 1, "", 0);
	/* Namespace 1 sorts after every key of namespace 0. */
	assert_int_equal(memtable_add(mt, 9, KEYS_KIND_VALUE, keys_slice_of(b, 8),
	                              keys_slice_of("z", 1)),
	                 0);
	assert_int_equal(memtable_entries(mt), 7);

	static const struct {
		uint64_t ns;
		const char *key;
		uint64_t seq;
		enum keys_kind kind;
	} want[] = {
		{ 0, "a", 7, KEYS_KIND_VALUE }, { 0, "a", 5, KEYS_KIND_DELETE },
		{ 0, "a", 1, KEYS_KIND_VALUE }, { 0, "ab", 2, KEYS_KIND_VALUE },
		{ 0, "b", 3, KEYS_KIND_VALUE }, { 0, "c", 4, KEYS_KIND_VALUE },
		{ 1, "", 9, KEYS_KIND_VALUE },
	};
	iter *it;
	assert_int_equal(memtable_iter_new(mt, &it), 0);
	iter_seek_first(it);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		assert_true(iter_valid(it));
		keys_slice k = iter_key(it);
		uint8_t e[64];
		size_t n = strlen(want[i].key);
		keys_make_nskey(e, want[i].ns, want[i].key, n);
		assert_int_equal(k.len, KEYS_NS_SIZE + n + KEYS_TRAILER_SIZE);
		assert_memory_equal(k.data, e, KEYS_NS_SIZE + n);
		assert_int_equal(keys_ikey_seq(k), want[i].seq);
		assert_int_equal(keys_ikey_kind(k), want[i].kind);
		iter_next(it);
	}
	assert_false(iter_valid(it));
	assert_int_equal(iter_status(it), 0);
	iter_destroy(it);
	memtable_unref(mt);
}

/* get returns the newest version visible at the snapshot, tombstones
 * included, and never confuses a key with its prefix or extension. */
static void get_honours_snapshots_and_tombstones(void **state)
{
	(void)state;
	memtable *mt;
	assert_int_equal(memtable_new(0, &mt), 0);
	put(mt, 10, "k", "v10");
	put(mt, 20, "k", "v20");
	del(mt, 30, "k");
	put(mt, 40, "k", "");
	put(mt, 15, "kk", "x");
	put(mt, 16, "j", "y");

	assert_string_equal(get(mt, "k", 0), "<none>");
	assert_string_equal(get(mt, "k", 9), "<none>");
	assert_string_equal(get(mt, "k", 10), "v10");
	assert_string_equal(get(mt, "k", 19), "v10");
	assert_string_equal(get(mt, "k", 20), "v20");
	assert_string_equal(get(mt, "k", 29), "v20");
	assert_string_equal(get(mt, "k", 30), "<del>");
	assert_string_equal(get(mt, "k", 39), "<del>");
	/* An empty value is a value, not a delete. */
	assert_string_equal(get(mt, "k", 40), "");
	assert_string_equal(get(mt, "k", UINT64_MAX), "");
	assert_string_equal(get(mt, "kk", 14), "<none>");
	assert_string_equal(get(mt, "kk", 100), "x");
	assert_string_equal(get(mt, "", 100), "<none>");
	assert_string_equal(get(mt, "l", 100), "<none>");
	assert_string_equal(get(mt, "a", 100), "<none>");

	/* Same user key in another namespace is another key. */
	uint8_t b[64];
	enum keys_kind kind;
	keys_slice v;
	assert_int_equal(memtable_get(mt, nsk(b, 7, "k"), 100, &kind, &v), CESIUM_ENOTFOUND);
	memtable_unref(mt);
}

/* Bad arguments get CESIUM_EINVAL. */
static void add_rejects_bad_arguments(void **state)
{
	(void)state;
	memtable *mt;
	uint8_t b[64];
	assert_int_equal(memtable_new(0, &mt), 0);
	keys_slice k = nsk(b, 0, "x");
	assert_int_equal(memtable_add(mt, KEYS_MAX_SEQ + 1, KEYS_KIND_VALUE, k, k), CESIUM_EINVAL);
	assert_int_equal(memtable_add(mt, 1, (enum keys_kind)7, k, k), CESIUM_EINVAL);
	assert_int_equal(memtable_add(NULL, 1, KEYS_KIND_VALUE, k, k), CESIUM_EINVAL);
	assert_int_equal(memtable_add(mt, 1, KEYS_KIND_VALUE, keys_slice_of(NULL, 3), k),
	                 CESIUM_EINVAL);
	assert_int_equal(memtable_entries(mt), 0);
	assert_int_equal(memtable_new(0, NULL), CESIUM_EINVAL);
	memtable_unref(mt);
}

/* seek positions at the first internal key >= target. */
static void iterator_seek_finds_first_ge(void **state)
{
	(void)state;
	memtable *mt;
	assert_int_equal(memtable_new(0, &mt), 0);
	for (int i = 0; i < 100; i += 2) {
		char k[16];
		snprintf(k, sizeof(k), "key%03d", i);
		put(mt, (uint64_t)i + 100, k, k);
		put(mt, (uint64_t)i + 1, k, "old");
	}
	iter *it;
	assert_int_equal(memtable_iter_new(mt, &it), 0);
	uint8_t ik[64];
	uint8_t b[64];
	/* Absent key: lands on the next key's newest version. */
	keys_slice n = nsk(b, 0, "key011");
	keys_make_ikey(ik, n.data, n.len, KEYS_MAX_SEQ, KEYS_KIND_VALUE);
	iter_seek(it, keys_slice_of(ik, n.len + 8));
	assert_true(iter_valid(it));
	assert_memory_equal(iter_key(it).data + 8, "key012", 6);
	assert_int_equal(keys_ikey_seq(iter_key(it)), 112);
	assert_memory_equal(iter_value(it).data, "key012", 6);
	/* Present key at a snapshot between its versions: the old one. */
	n = nsk(b, 0, "key040");
	keys_make_ikey(ik, n.data, n.len, 100, KEYS_KIND_VALUE);
	iter_seek(it, keys_slice_of(ik, n.len + 8));
	assert_true(iter_valid(it));
	assert_int_equal(keys_ikey_seq(iter_key(it)), 41);
	assert_int_equal(iter_value(it).len, 3);
	iter_next(it);
	assert_memory_equal(iter_key(it).data + 8, "key042", 6);
	/* A bare nskey (shorter than a trailer) seeks before all versions. */
	iter_seek(it, keys_slice_of("\0\0\0", 3));
	assert_true(iter_valid(it));
	assert_memory_equal(iter_key(it).data + 8, "key000", 6);
	/* Past the end. */
	n = nsk(b, 0, "zzz");
	keys_make_ikey(ik, n.data, n.len, 0, KEYS_KIND_DELETE);
	iter_seek(it, keys_slice_of(ik, n.len + 8));
	assert_false(iter_valid(it));
	iter_destroy(it);
	memtable_unref(mt);
}

/* The iterator's reference keeps the table alive after the owner drops it. */
static void iterator_holds_a_reference(void **state)
{
	(void)state;
	memtable *mt;
	assert_int_equal(memtable_new(0, &mt), 0);
	put(mt, 1, "a", "1");
	iter *it;
	assert_int_equal(memtable_iter_new(mt, &it), 0);
	memtable_unref(mt);
	iter_seek_first(it);
	assert_true(iter_valid(it));
	assert_memory_equal(iter_value(it).data, "1", 1);
	iter_destroy(it);
}

/* A home for held values: its release is counted. */
struct home {
	char bytes[3][2048];
	int released;
};

static void home_release(void *p)
{
	((struct home *)p)->released++;
}

/* Values added with memtable_add_held are not copied: gets and iterators
 * return the home's own bytes, they count as held bytes, not arena bytes,
 * the iterator tells how each was added, and the home is released once,
 * when the last holder of the table lets go. Without a home, or told to
 * copy, the call is refused. */
static void held_values_stay_in_their_home(void **state)
{
	(void)state;
	static struct home h;
	memtable *mt;
	assert_int_equal(memtable_new(0, &mt), 0);
	uint8_t b[128];
	keys_slice v0 = keys_slice_of(h.bytes[0], sizeof(h.bytes[0]));
	assert_int_equal(memtable_add_held(mt, 1, nsk(b, 0, "a"), v0, MEMTABLE_HELD),
	                 CESIUM_EINVAL);
	memtable_hold(mt, &h, home_release);
	assert_int_equal(memtable_add_held(mt, 1, nsk(b, 0, "a"), v0, MEMTABLE_COPIED),
	                 CESIUM_EINVAL);
	const enum memtable_held how[3] = {MEMTABLE_HELD, MEMTABLE_HELD_ALONE, MEMTABLE_HELD};
	size_t arena = memtable_memory_usage(mt);
	for (int i = 0; i < 3; i++) {
		memset(h.bytes[i], 'a' + i, sizeof(h.bytes[i]));
		char key[2] = {(char)('a' + i), 0};
		assert_int_equal(memtable_add_held(mt, (uint64_t)i + 1, nsk(b, 0, key),
		                                   keys_slice_of(h.bytes[i], sizeof(h.bytes[i])),
		                                   how[i]),
		                 0);
	}
	put(mt, 4, "d", "copied");
	assert_int_equal(memtable_held_bytes(mt), 3 * sizeof(h.bytes[0]));
	assert_true(memtable_memory_usage(mt) - arena < sizeof(h.bytes[0]));
	enum keys_kind kind;
	keys_slice v;
	assert_int_equal(memtable_get(mt, nsk(b, 0, "b"), 10, &kind, &v), 0);
	assert_ptr_equal(v.data, h.bytes[1]);
	assert_int_equal(v.len, sizeof(h.bytes[1]));
	assert_string_equal(get(mt, "d", 10), "copied");
	iter *it;
	assert_int_equal(memtable_iter_new(mt, &it), 0);
	memtable_unref(mt);
	iter_seek_first(it);
	for (int i = 0; i < 3; i++, iter_next(it)) {
		assert_true(iter_valid(it));
		assert_ptr_equal(iter_value(it).data, h.bytes[i]);
		assert_int_equal(iter_value(it).len, sizeof(h.bytes[i]));
		assert_int_equal(memtable_iter_held(it), how[i]);
	}
	assert_memory_equal(iter_value(it).data, "copied", 6);
	assert_int_equal(memtable_iter_held(it), MEMTABLE_COPIED);
	assert_int_equal(h.released, 0);
	iter_destroy(it);
	assert_int_equal(h.released, 1);
}

static int cmp_ikey(const void *a, const void *b)
{
	const keys_slice *x = a, *y = b;
	return keys_compare_ikey(*x, *y);
}

/* Sorts the model of a table's internal keys, then checks that a full scan
 * gives exactly them, in order, each entry also passing check (if any).
 * Returns the iterator, for more checks. */
static iter *scan_matches_model(memtable *mt, keys_slice *model, size_t n,
                                void (*check)(keys_slice key, keys_slice value))
{
	qsort(model, n, sizeof(*model), cmp_ikey);
	iter *it;
	assert_int_equal(memtable_iter_new(mt, &it), 0);
	iter_seek_first(it);
	for (size_t i = 0; i < n; i++, iter_next(it)) {
		assert_true(iter_valid(it));
		keys_slice k = iter_key(it);
		assert_int_equal(k.len, model[i].len);
		assert_memory_equal(k.data, model[i].data, k.len);
		if (check)
			check(k, iter_value(it));
	}
	assert_false(iter_valid(it));
	return it;
}

/* A value is its entry's sequence number; a tombstone has none. */
static void value_is_seq(keys_slice k, keys_slice v)
{
	if (keys_ikey_kind(k) == KEYS_KIND_VALUE) {
		uint64_t s;
		assert_int_equal(v.len, 8);
		memcpy(&s, v.data, 8);
		assert_int_equal(s, keys_ikey_seq(k));
	} else {
		assert_int_equal(v.len, 0);
	}
}

/* Random keys, versions and values come back in exactly sorted order. */
static void random_inserts_match_sorted_model(void **state)
{
	(void)state;
	uint64_t rng = test_seed("memtable random");
	memtable *mt;
	assert_int_equal(memtable_new(0, &mt), 0);
	enum { N = 20000 };
	uint8_t *keys = malloc((size_t)N * 32);
	keys_slice *model = malloc(N * sizeof(*model));
	assert_non_null(keys);
	assert_non_null(model);
	for (size_t i = 0; i < N; i++) {
		uint8_t *k = keys + i * 32;
		/* Short keys from a small alphabet: many versions per key. */
		size_t klen = 1 + test_rand(&rng) % 3;
		uint8_t user[3];
		for (size_t j = 0; j < klen; j++)
			user[j] = (uint8_t)('a' + test_rand(&rng) % 4);
		keys_make_nskey(k, test_rand(&rng) % 2, user, klen);
		uint64_t seq = i + 1;
		enum keys_kind kind = test_rand(&rng) % 5 ? KEYS_KIND_VALUE : KEYS_KIND_DELETE;
		keys_make_ikey(k, k, 8 + klen, seq, kind);
		model[i] = keys_slice_of(k, 8 + klen + 8);
		assert_int_equal(memtable_add(mt, seq, kind, keys_slice_of(k, 8 + klen),
		                              keys_slice_of(&seq, sizeof(seq))),
		                 0);
	}
	iter_destroy(scan_matches_model(mt, model, N, value_is_seq));
	free(model);
	free(keys);
	memtable_unref(mt);
}

/* A raw nskey for the search hints' edge cases: a run of one byte whose
 * length straddles what a link's hint can hold (255), then a short tail of
 * extreme bytes, so that keys are often prefixes of one another, share
 * long prefixes, or are empty. */
static size_t hint_key(uint64_t *rng, uint8_t *out)
{
	static const size_t runs[] = {0, 1, 3, 253, 254, 255, 256, 300};
	static const uint8_t tail[] = {0x00, 0x01, 0x7f, 0xff};
	size_t run = runs[test_rand(rng) % 8];
	memset(out, test_rand(rng) % 2 ? 'p' : 0x00, run);
	size_t n = test_rand(rng) % 4;
	for (size_t i = 0; i < n; i++)
		out[run + i] = tail[test_rand(rng) % 4];
	return run + n;
}

enum { HINT_KEY_MAX = 304 + KEYS_TRAILER_SIZE };

/* Inserts in random order, then a full scan and seeks to random targets
 * must match a sorted model: the hints decide most comparisons of both. */
static void hinted_search_matches_model(void **state)
{
	(void)state;
	uint64_t rng = test_seed("memtable hints");
	memtable *mt;
	assert_int_equal(memtable_new(0, &mt), 0);
	enum { N = 6000, SEEKS = 3000 };
	uint8_t *keys = malloc((size_t)N * HINT_KEY_MAX);
	keys_slice *model = malloc(N * sizeof(*model));
	assert_non_null(keys);
	assert_non_null(model);
	for (size_t i = 0; i < N; i++) {
		uint8_t *k = keys + i * HINT_KEY_MAX;
		size_t klen = hint_key(&rng, k);
		keys_put_u64le(k + klen, keys_trailer(i + 1, KEYS_KIND_VALUE));
		model[i] = keys_slice_of(k, klen + KEYS_TRAILER_SIZE);
		assert_int_equal(memtable_add(mt, i + 1, KEYS_KIND_VALUE, keys_slice_of(k, klen),
		                              keys_slice_of(&i, sizeof(i))),
		                 0);
	}
	iter *it = scan_matches_model(mt, model, N, NULL);
	uint8_t target[HINT_KEY_MAX];
	for (size_t s = 0; s < SEEKS; s++) {
		size_t tlen = hint_key(&rng, target);
		keys_put_u64le(target + tlen,
		               keys_trailer(test_rand(&rng) % (N + 2), KEYS_KIND_VALUE));
		keys_slice t = keys_slice_of(target, tlen + KEYS_TRAILER_SIZE);
		size_t lo = 0, hi = N; /* the first model key >= t */
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;
			if (keys_compare_ikey(model[mid], t) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		iter_seek(it, t);
		if (lo == N) {
			assert_false(iter_valid(it));
			continue;
		}
		assert_true(iter_valid(it));
		assert_int_equal(iter_key(it).len, model[lo].len);
		assert_memory_equal(iter_key(it).data, model[lo].data, model[lo].len);
	}
	iter_destroy(it);
	free(model);
	free(keys);
	memtable_unref(mt);
}

enum { THREADS = 4, PER_THREAD = 25000 };

struct writer {
	memtable *mt;
	int id;
	int rc;
};

/* The hash index behind gets: with 1024 buckets and 20000 keys every chain
 * holds many keys; each key gets versions in a random order of sequence
 * numbers (as racing adds could produce), some of them tombstones; a get
 * at every snapshot returns the newest version at or below it. */
static void get_finds_newest_version_through_crowded_buckets(void **state)
{
	(void)state;
	enum { KEYS = 20000, VERSIONS = 4 };
	memtable *mt;
	assert_int_equal(memtable_new(0, &mt), 0);
	uint64_t rng = test_seed("memtable_hash");
	/* Key i has versions with seqs i*VERSIONS+1 .. i*VERSIONS+VERSIONS,
	 * inserted in a shuffled order; odd versions of every 7th key are
	 * tombstones. */
	for (unsigned i = 0; i < KEYS; i++) {
		unsigned order[VERSIONS] = {0, 1, 2, 3};
		for (unsigned j = VERSIONS - 1; j > 0; j--) {
			unsigned r = (unsigned)(test_rand(&rng) % (j + 1));
			unsigned t = order[j];
			order[j] = order[r];
			order[r] = t;
		}
		char key[32], val[32];
		snprintf(key, sizeof(key), "key%06u", i);
		for (unsigned j = 0; j < VERSIONS; j++) {
			uint64_t seq = (uint64_t)i * VERSIONS + order[j] + 1;
			if (i % 7 == 0 && order[j] % 2 == 1) {
				del(mt, seq, key);
			} else {
				snprintf(val, sizeof(val), "v%llu", (unsigned long long)seq);
				put(mt, seq, key, val);
			}
		}
	}
	for (unsigned i = 0; i < KEYS; i += 13) {
		char key[32], want[32];
		snprintf(key, sizeof(key), "key%06u", i);
		uint64_t first = (uint64_t)i * VERSIONS + 1;
		assert_string_equal(get(mt, key, first - 1), "<none>");
		for (uint64_t snap = first; snap < first + VERSIONS + 2; snap++) {
			uint64_t newest = snap < first + VERSIONS ? snap : first + VERSIONS - 1;
			bool tomb = i % 7 == 0 && (newest - first) % 2 == 1;
			snprintf(want, sizeof(want), "v%llu", (unsigned long long)newest);
			assert_string_equal(get(mt, key, snap), tomb ? "<del>" : want);
		}
	}
	assert_string_equal(get(mt, "key999999", KEYS_MAX_SEQ), "<none>");
	memtable_unref(mt);
}

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	for (int i = 0; i < PER_THREAD && w->rc == 0; i++) {
		char k[32];
		/* Interleave the threads' keys so they contend on the same
		 * splices. */
		int n = snprintf(k, sizeof(k), "%08d", i * THREADS + w->id);
		uint8_t b[64];
		keys_make_nskey(b, 0, k, (size_t)n);
		uint64_t seq = (uint64_t)(i * THREADS + w->id) + 1;
		w->rc = memtable_add(w->mt, seq, KEYS_KIND_VALUE, keys_slice_of(b, 8 + (size_t)n),
		                     keys_slice_of(k, (size_t)n));
	}
	return NULL;
}

struct reader {
	memtable *mt;
	atomic_bool stop;
	long scans;
	int bad;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	iter *it;
	if (memtable_iter_new(r->mt, &it) != 0) {
		r->bad = 1;
		return NULL;
	}
	while (!atomic_load(&r->stop)) {
		iter_seek_first(it);
		keys_slice prev = { NULL, 0 };
		for (; iter_valid(it); iter_next(it)) {
			keys_slice k = iter_key(it);
			if (prev.data && keys_compare_ikey(prev, k) >= 0)
				r->bad = 1;
			prev = k;
		}
		r->scans++;
	}
	iter_destroy(it);
	return NULL;
}

/* Four writers at once, with a reader scanning: every key lands, in order. */
static void concurrent_inserts_keep_every_key_in_order(void **state)
{
	(void)state;
	memtable *mt;
	assert_int_equal(memtable_new(0, &mt), 0);
	struct writer w[THREADS];
	pthread_t th[THREADS], rt;
	struct reader r = { .mt = mt };
	atomic_init(&r.stop, false);
	assert_int_equal(pthread_create(&rt, NULL, reader_main, &r), 0);
	for (int t = 0; t < THREADS; t++) {
		w[t] = (struct writer){ mt, t, 0 };
		assert_int_equal(pthread_create(&th[t], NULL, writer_main, &w[t]), 0);
	}
	for (int t = 0; t < THREADS; t++) {
		pthread_join(th[t], NULL);
		assert_int_equal(w[t].rc, 0);
	}
	atomic_store(&r.stop, true);
	pthread_join(rt, NULL);
	assert_int_equal(r.bad, 0);

	assert_int_equal(memtable_entries(mt), THREADS * PER_THREAD);
	for (int i = 0; i < THREADS * PER_THREAD; i++) {
		char k[32];
		snprintf(k, sizeof(k), "%08d", i);
		assert_string_equal(get(mt, k, UINT64_MAX), k);
		/* Visible only from its own sequence number on. */
		assert_string_equal(get(mt, k, (uint64_t)i), "<none>");
	}
	iter *it;
	assert_int_equal(memtable_iter_new(mt, &it), 0);
	int n = 0;
	keys_slice prev = { NULL, 0 };
	for (iter_seek_first(it); iter_valid(it); iter_next(it), n++) {
		keys_slice k = iter_key(it);
		if (prev.data)
			assert_true(keys_compare_ikey(prev, k) < 0);
		prev = k;
	}
	assert_int_equal(n, THREADS * PER_THREAD);
	iter_destroy(it);
	assert_true(memtable_memory_usage(mt) > (size_t)THREADS * PER_THREAD * 24);
	memtable_unref(mt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(iteration_orders_keys_then_versions_newest_first),
	    cmocka_unit_test(get_honours_snapshots_and_tombstones),
	    cmocka_unit_test(get_finds_newest_version_through_crowded_buckets),
	    cmocka_unit_test(add_rejects_bad_arguments),
	    cmocka_unit_test(iterator_seek_finds_first_ge),
	    cmocka_unit_test(iterator_holds_a_reference),
	    cmocka_unit_test(held_values_stay_in_their_home),
	    cmocka_unit_test(random_inserts_match_sorted_model),
	    cmocka_unit_test(hinted_search_matches_model),
	    cmocka_unit_test(concurrent_inserts_keep_every_key_in_order),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
