/* Unit tests for core/batch: encoding round trip, append, limits, and
 * rejection of corrupt encodings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "cesium.h"
#include "test_util.h"

struct seen {
	int n;
	uint64_t seq[16];
	enum keys_kind kind[16];
	uint8_t nskey[16][64];
	size_t nskey_len[16];
	uint8_t value[16][64];
	size_t value_len[16];
	int stop_at; /* return 1 from the callback at this entry, -1 never */
};

static int collect(void *ctx, uint64_t seq, enum keys_kind kind, keys_slice nskey,
                   keys_slice value)
{
	struct seen *s = ctx;
	if (s->n == s->stop_at)
		return 1;
	if (s->n >= 16 || nskey.len > 64 || value.len > 64)
		return -100;
	s->seq[s->n] = seq;
	s->kind[s->n] = kind;
	memcpy(s->nskey[s->n], nskey.data, nskey.len);
	s->nskey_len[s->n] = nskey.len;
	if (value.len)
		memcpy(s->value[s->n], value.data, value.len);
	s->value_len[s->n] = value.len;
	s->n++;
	return 0;
}

static void assert_entry(const struct seen *s, int i, uint64_t seq, enum keys_kind kind,
                         uint64_t ns, const char *key, const char *val)
{
	uint8_t nk[64];
	keys_make_nskey(nk, ns, key, strlen(key));
	assert_int_equal(s->seq[i], seq);
	assert_int_equal(s->kind[i], kind);
	assert_int_equal(s->nskey_len[i], 8 + strlen(key));
	assert_memory_equal(s->nskey[i], nk, 8 + strlen(key));
	assert_int_equal(s->value_len[i], strlen(val));
	if (*val)
		assert_memory_equal(s->value[i], val, strlen(val));
}

/* Puts and deletes come back in order with their namespaces, sequence
 * numbers header seq + index, and empty values intact. */
static void round_trip_preserves_entries(void **state)
{
	(void)state;
	cesium_batch *b;
	assert_int_equal(cesium_batch_new(&b), 0);
	assert_int_equal(batch_count(b), 0);
	assert_int_equal(batch_size(b), BATCH_HEADER_SIZE);
	assert_int_equal(cesium_batch_put(b, 0, "k1", 2, "v1", 2), 0);
	assert_int_equal(cesium_batch_delete(b, 5, "k2", 2), 0);
	assert_int_equal(cesium_batch_put(b, UINT64_MAX, "k3", 2, NULL, 0), 0);
	assert_int_equal(batch_count(b), 3);
	/* Headers are exposed through the data pointer, as the WAL sees them. */
	batch_set_seq((uint8_t *)batch_data(b), 100);
	assert_int_equal(batch_get_seq(batch_data(b)), 100);

	struct seen s = { .stop_at = -1 };
	assert_int_equal(batch_iterate(batch_data(b), batch_size(b), collect, &s), 0);
	assert_int_equal(s.n, 3);
	assert_entry(&s, 0, 100, KEYS_KIND_VALUE, 0, "k1", "v1");
	assert_entry(&s, 1, 101, KEYS_KIND_DELETE, 5, "k2", "");
	assert_entry(&s, 2, 102, KEYS_KIND_VALUE, UINT64_MAX, "k3", "");

	/* The callback's non-zero return stops the walk and is returned. */
	struct seen s2 = { .stop_at = 1 };
	assert_int_equal(batch_iterate(batch_data(b), batch_size(b), collect, &s2), 1);
	assert_int_equal(s2.n, 1);

	cesium_batch_clear(b);
	assert_int_equal(batch_count(b), 0);
	assert_int_equal(batch_size(b), BATCH_HEADER_SIZE);
	assert_int_equal(batch_iterate(batch_data(b), batch_size(b), collect, &s), 0);
	cesium_batch_free(b);
	cesium_batch_free(NULL);
}

/* A batch grows past its inline buffer and keeps every byte. */
static void large_batches_grow(void **state)
{
	(void)state;
	cesium_batch *b;
	assert_int_equal(cesium_batch_new(&b), 0);
	static uint8_t val[100000];
	for (size_t i = 0; i < sizeof(val); i++)
		val[i] = (uint8_t)(i * 7);
	for (int i = 0; i < 50; i++)
		assert_int_equal(cesium_batch_put(b, (uint64_t)i, "key", 3, val, sizeof(val)), 0);
	assert_int_equal(batch_count(b), 50);
	assert_true(batch_size(b) > 50 * sizeof(val));
	assert_int_equal(batch_iterate(batch_data(b), batch_size(b), NULL, NULL), 0);
	cesium_batch_free(b);
}

/* append concatenates entries, adds counts, and works onto itself. */
static void append_concatenates(void **state)
{
	(void)state;
	cesium_batch *a, *b;
	assert_int_equal(cesium_batch_new(&a), 0);
	assert_int_equal(cesium_batch_new(&b), 0);
	assert_int_equal(cesium_batch_put(a, 0, "a", 1, "1", 1), 0);
	assert_int_equal(cesium_batch_put(b, 0, "b", 1, "2", 1), 0);
	assert_int_equal(cesium_batch_delete(b, 0, "c", 1), 0);
	batch_set_seq((uint8_t *)batch_data(a), 7);
	assert_int_equal(batch_append(a, b), 0);
	assert_int_equal(batch_count(a), 3);
	assert_int_equal(batch_count(b), 2);
	struct seen s = { .stop_at = -1 };
	assert_int_equal(batch_iterate(batch_data(a), batch_size(a), collect, &s), 0);
	assert_int_equal(s.n, 3);
	assert_entry(&s, 0, 7, KEYS_KIND_VALUE, 0, "a", "1");
	assert_entry(&s, 1, 8, KEYS_KIND_VALUE, 0, "b", "2");
	assert_entry(&s, 2, 9, KEYS_KIND_DELETE, 0, "c", "");
	assert_int_equal(batch_append(a, a), 0);
	assert_int_equal(batch_count(a), 6);
	assert_int_equal(batch_iterate(batch_data(a), batch_size(a), NULL, NULL), 0);
	assert_int_equal(batch_append(NULL, a), CESIUM_EINVAL);
	cesium_batch_free(a);
	cesium_batch_free(b);
}

/* An entry encoded on its own (what a single put hands the log's leader)
 * is byte for byte the entry cesium_batch_put/delete appends, and its size
 * is announced exactly: 1- and 2-byte length varints, a 4 KiB value, a
 * namespace, a tombstone. */
static void entry_encoding_matches_batch(void **state)
{
	(void)state;
	static uint8_t big[4096];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7);
	const struct batch_entry_ref refs[] = {
	    {KEYS_KIND_VALUE, 3, "key", 3, "val", 3},
	    {KEYS_KIND_VALUE, 0, "k", 1, big, sizeof(big)},
	    {KEYS_KIND_VALUE, 0, "k", 1, big, 0},
	    {KEYS_KIND_DELETE, 9, "gone", 4, NULL, 0},
	};
	for (size_t i = 0; i < sizeof(refs) / sizeof(refs[0]); i++) {
		const struct batch_entry_ref *e = &refs[i];
		cesium_batch *hb;
		assert_int_equal(cesium_batch_new(&hb), 0);
		if (e->kind == KEYS_KIND_VALUE)
			assert_int_equal(
			    cesium_batch_put(hb, e->ns, e->key, e->klen, e->val, e->vlen), 0);
		else
			assert_int_equal(cesium_batch_delete(hb, e->ns, e->key, e->klen), 0);
		size_t want = batch_size(hb) - BATCH_HEADER_SIZE;
		assert_int_equal(batch_entry_size(e), want);
		uint8_t *buf = malloc(BATCH_HEADER_SIZE + want + 1);
		assert_non_null(buf);
		buf[BATCH_HEADER_SIZE + want] = 0xa5; /* must stay untouched */
		assert_int_equal(batch_encode_entry(buf + BATCH_HEADER_SIZE, e), want);
		assert_int_equal(buf[BATCH_HEADER_SIZE + want], 0xa5);
		assert_memory_equal(buf + BATCH_HEADER_SIZE, batch_data(hb) + BATCH_HEADER_SIZE,
		                    want);
		memcpy(buf, batch_data(hb), BATCH_HEADER_SIZE);
		assert_int_equal(batch_iterate(buf, BATCH_HEADER_SIZE + want, NULL, NULL), 0);
		free(buf);
		cesium_batch_free(hb);
	}
}

/* NULLs, empty and oversized keys, oversized values are CESIUM_EINVAL with a
 * message, and leave the batch unchanged. */
static void limits_are_enforced(void **state)
{
	(void)state;
	cesium_batch *b;
	assert_int_equal(cesium_batch_new(NULL), CESIUM_EINVAL);
	assert_int_equal(cesium_batch_new(&b), 0);
	uint8_t *key = calloc(1, CESIUM_MAX_KEY_SIZE + 1);
	assert_non_null(key);
	assert_int_equal(cesium_batch_put(NULL, 0, "k", 1, "v", 1), CESIUM_EINVAL);
	assert_int_equal(cesium_batch_put(b, 0, NULL, 1, "v", 1), CESIUM_EINVAL);
	assert_int_equal(cesium_batch_put(b, 0, "k", 0, "v", 1), CESIUM_EINVAL);
	assert_int_equal(cesium_batch_put(b, 0, key, CESIUM_MAX_KEY_SIZE + 1, "v", 1),
	                 CESIUM_EINVAL);
	assert_true(strstr(cesium_errmsg(), "key length") != NULL);
	assert_int_equal(cesium_batch_put(b, 0, "k", 1, NULL, 1), CESIUM_EINVAL);
	assert_int_equal(cesium_batch_put(b, 0, "k", 1, "v", (size_t)CESIUM_MAX_VALUE_SIZE + 1),
	                 CESIUM_EINVAL);
	assert_int_equal(cesium_batch_delete(NULL, 0, "k", 1), CESIUM_EINVAL);
	assert_int_equal(cesium_batch_delete(b, 0, NULL, 1), CESIUM_EINVAL);
	assert_int_equal(cesium_batch_delete(b, 0, key, CESIUM_MAX_KEY_SIZE + 1), CESIUM_EINVAL);
	assert_int_equal(batch_count(b), 0);
	assert_int_equal(batch_size(b), BATCH_HEADER_SIZE);
	/* The limits themselves are accepted and round-trip. */
	assert_int_equal(cesium_batch_put(b, 0, key, CESIUM_MAX_KEY_SIZE, NULL, 0), 0);
	assert_int_equal(cesium_batch_delete(b, 0, key, CESIUM_MAX_KEY_SIZE), 0);
	assert_int_equal(batch_iterate(batch_data(b), batch_size(b), NULL, NULL), 0);
	free(key);
	cesium_batch_free(b);
}

/* Builds a small valid batch into buf; returns its length. */
static size_t sample(uint8_t *buf)
{
	cesium_batch *b;
	assert_int_equal(cesium_batch_new(&b), 0);
	assert_int_equal(cesium_batch_put(b, 1, "alpha", 5, "one", 3), 0);
	assert_int_equal(cesium_batch_delete(b, 2, "beta", 4), 0);
	assert_int_equal(cesium_batch_put(b, 3, "gamma", 5, "", 0), 0);
	batch_set_seq((uint8_t *)batch_data(b), 42);
	size_t n = batch_size(b);
	memcpy(buf, batch_data(b), n);
	cesium_batch_free(b);
	return n;
}

static int never(void *ctx, uint64_t seq, enum keys_kind kind, keys_slice k, keys_slice v)
{
	(void)seq, (void)kind, (void)k, (void)v;
	(*(int *)ctx)++;
	return 0;
}

/* Every truncation, and specific corruptions, are CESIUM_ECORRUPT with an
 * offset in the message, and no entry is delivered. */
static void corrupt_encodings_are_rejected(void **state)
{
	(void)state;
	uint8_t good[128];
	size_t n = sample(good);
	int calls = 0;
	assert_int_equal(batch_iterate(good, n, never, &calls), 0);
	assert_int_equal(calls, 3);

	for (size_t len = 0; len < n; len++) {
		/* A heap copy of exactly len bytes, so ASan sees any overread. */
		uint8_t *cut = malloc(len ? len : 1);
		memcpy(cut, good, len);
		calls = 0;
		assert_int_equal(batch_iterate(cut, len, never, &calls), CESIUM_ECORRUPT);
		assert_int_equal(calls, 0);
		assert_true(strstr(cesium_errmsg(), "offset") != NULL ||
		            strstr(cesium_errmsg(), "header") != NULL);
		free(cut);
	}

	uint8_t bad[160];
	/* Trailing byte. */
	memcpy(bad, good, n);
	bad[n] = 0;
	assert_int_equal(batch_iterate(bad, n + 1, never, &calls), CESIUM_ECORRUPT);
	/* Count too high and too low. */
	memcpy(bad, good, n);
	keys_put_u32le(bad + 8, 4);
	assert_int_equal(batch_iterate(bad, n, never, &calls), CESIUM_ECORRUPT);
	keys_put_u32le(bad + 8, 2);
	assert_int_equal(batch_iterate(bad, n, never, &calls), CESIUM_ECORRUPT);
	/* Bad kind. */
	memcpy(bad, good, n);
	bad[BATCH_HEADER_SIZE] = 7;
	assert_int_equal(batch_iterate(bad, n, never, &calls), CESIUM_ECORRUPT);
	assert_true(strstr(cesium_errmsg(), "offset 12") != NULL);
	/* Key length shorter than a namespace, and an overlong varint. */
	memcpy(bad, good, n);
	bad[BATCH_HEADER_SIZE + 1] = 8;
	assert_int_equal(batch_iterate(bad, n, never, &calls), CESIUM_ECORRUPT);
	memcpy(bad, good, BATCH_HEADER_SIZE + 1);
	memset(bad + BATCH_HEADER_SIZE + 1, 0xff, 6);
	assert_int_equal(batch_iterate(bad, BATCH_HEADER_SIZE + 7, never, &calls),
	                 CESIUM_ECORRUPT);
	/* Sequence numbers that would pass KEYS_MAX_SEQ. */
	memcpy(bad, good, n);
	batch_set_seq(bad, KEYS_MAX_SEQ - 1);
	assert_int_equal(batch_iterate(bad, n, never, &calls), CESIUM_ECORRUPT);
	batch_set_seq(bad, KEYS_MAX_SEQ - 2);
	assert_int_equal(batch_iterate(bad, n, never, &calls), 0);
	assert_int_equal(calls, 3);
}

/* Random bit flips and random bytes never crash or overread; whatever is
 * accepted re-validates entry by entry. */
static void random_garbage_never_crashes(void **state)
{
	(void)state;
	uint64_t rng = test_seed("batch fuzz");
	uint8_t good[128];
	size_t n = sample(good);
	for (int round = 0; round < 200000; round++) {
		size_t len = round % 2 ? n : test_rand(&rng) % 64;
		uint8_t *buf = malloc(len ? len : 1);
		if (round % 2) {
			memcpy(buf, good, n);
			int flips = 1 + (int)(test_rand(&rng) % 3);
			for (int f = 0; f < flips; f++)
				buf[test_rand(&rng) % n] ^= (uint8_t)(1u << (test_rand(&rng) % 8));
		} else {
			for (size_t i = 0; i < len; i++)
				buf[i] = (uint8_t)test_rand(&rng);
			if (len >= 12)
				keys_put_u32le(buf + 8, (uint32_t)(test_rand(&rng) % 4));
			if (len >= 8)
				batch_set_seq(buf, test_rand(&rng) % 1000);
		}
		struct seen s = { .stop_at = -1 };
		int rc = batch_iterate(buf, len, collect, &s);
		assert_true(rc == 0 || rc == CESIUM_ECORRUPT || rc == -100);
		if (rc == CESIUM_ECORRUPT)
			assert_int_equal(s.n, 0);
		free(buf);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(round_trip_preserves_entries),
	    cmocka_unit_test(large_batches_grow),
	    cmocka_unit_test(append_concatenates),
	    cmocka_unit_test(entry_encoding_matches_batch),
	    cmocka_unit_test(limits_are_enforced),
	    cmocka_unit_test(corrupt_encodings_are_rejected),
	    cmocka_unit_test(random_garbage_never_crashes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
