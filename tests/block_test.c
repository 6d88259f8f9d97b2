/* Unit tests for core/block: round trips, seeks, restart boundaries and
 * rejection of malformed blocks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "block.h"
#include "cesium.h"
#include "mem.h"
#include "test_util.h"

/* Byte keys "key%08u" with step 2, so that odd numbers fall between. */
static size_t mkkey(char *buf, unsigned n)
{
	return (size_t)snprintf(buf, 32, "key%08u", n);
}

static size_t mkval(char *buf, unsigned n)
{
	return (size_t)snprintf(buf, 64, "value-%u-%.*s", n, (int)(n % 23),
	                        "xxxxxxxxxxxxxxxxxxxxxxxxx");
}

/* Builds a bytewise block of n entries (keys 0, 2, 4...); *out is a heap
 * copy of exactly the block's size. */
static uint8_t *build_block(unsigned n, size_t *len)
{
	block_builder b;
	block_builder_init(&b, BLOCK_RESTART_INTERVAL);
	char k[32], v[64];
	for (unsigned i = 0; i < n; i++) {
		size_t kl = mkkey(k, 2 * i), vl = mkval(v, i);
		assert_int_equal(block_builder_add(&b, keys_slice_of(k, kl), keys_slice_of(v, vl)),
		                 0);
	}
	size_t est = block_builder_estimate(&b);
	keys_slice out;
	assert_int_equal(block_builder_finish(&b, &out), 0);
	assert_int_equal(out.len, est);
	uint8_t *copy = mem_alloc(out.len);
	memcpy(copy, out.data, out.len);
	*len = out.len;
	block_builder_destroy(&b);
	return copy;
}

static void check_at(iter *it, unsigned i)
{
	char k[32], v[64];
	size_t kl = mkkey(k, 2 * i), vl = mkval(v, i);
	assert_true(iter_valid(it));
	keys_slice key = iter_key(it), val = iter_value(it);
	assert_int_equal(key.len, kl);
	assert_memory_equal(key.data, k, kl);
	assert_int_equal(val.len, vl);
	assert_memory_equal(val.data, v, vl);
}

/* Every entry comes back in order with its value, at several sizes that
 * straddle restart points. */
static void test_round_trip_across_restart_boundaries(void **state)
{
	(void)state;
	unsigned sizes[] = {0, 1, 15, 16, 17, 31, 32, 33, 1000};
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		unsigned n = sizes[s];
		size_t len;
		uint8_t *blk = build_block(n, &len);
		uint32_t nr = keys_get_u32le(blk + len - 4);
		assert_int_equal(nr, (n + BLOCK_RESTART_INTERVAL - 1) / BLOCK_RESTART_INTERVAL);
		iter *it;
		assert_int_equal(block_iter_new(blk, len, false, &it), 0);
		unsigned i = 0;
		for (iter_seek_first(it); iter_valid(it); iter_next(it))
			check_at(it, i++);
		assert_int_equal(i, n);
		assert_int_equal(iter_status(it), 0);
		iter_destroy(it);
		mem_free(blk);
	}
}

/* Seeking to every key lands on it; seeking between keys lands on the
 * next one; seeking past the end invalidates. */
static void test_seek_at_and_between_keys(void **state)
{
	(void)state;
	unsigned n = 500;
	size_t len;
	uint8_t *blk = build_block(n, &len);
	struct block_iter bi;
	block_iter_init(&bi, false);
	block_iter_reset(&bi, blk, len);
	iter *it = &bi.base;
	char k[32];
	for (unsigned i = 0; i < n; i++) {
		iter_seek(it, keys_slice_of(k, mkkey(k, 2 * i)));
		check_at(it, i);
		iter_seek(it, keys_slice_of(k, mkkey(k, 2 * i + 1)));
		if (i + 1 < n)
			check_at(it, i + 1);
		else
			assert_false(iter_valid(it));
	}
	iter_seek(it, keys_slice_of("a", 1));
	check_at(it, 0);
	iter_seek(it, keys_slice_of("z", 1));
	assert_false(iter_valid(it));
	assert_int_equal(iter_status(it), 0);
	block_iter_cleanup(&bi);
	mem_free(blk);
}

/* Internal keys order newest first; long keys spill off the inline buffer. */
static void test_internal_keys_and_long_keys(void **state)
{
	(void)state;
	block_builder b;
	block_builder_init(&b, BLOCK_RESTART_INTERVAL);
	uint8_t key[600];
	memset(key, 'q', sizeof(key) - 8);
	const size_t nsl = sizeof(key) - 8;
	/* 40 versions of one long key, seq 40 down to 1. */
	for (uint64_t s = 40; s >= 1; s--) {
		keys_make_ikey(key, key, nsl, s, KEYS_KIND_VALUE);
		assert_int_equal(
		    block_builder_add(&b, keys_slice_of(key, sizeof(key)), keys_slice_of(&s, 8)),
		    0);
	}
	keys_slice blk;
	assert_int_equal(block_builder_finish(&b, &blk), 0);
	struct block_iter bi;
	block_iter_init(&bi, true);
	block_iter_reset(&bi, blk.data, blk.len);
	for (uint64_t s = 45; s >= 1; s--) {
		keys_make_ikey(key, key, nsl, s, KEYS_KIND_VALUE);
		iter_seek(&bi.base, keys_slice_of(key, sizeof(key)));
		assert_true(iter_valid(&bi.base));
		uint64_t want = s > 40 ? 40 : s;
		assert_int_equal(keys_ikey_seq(iter_key(&bi.base)), want);
		assert_int_equal(keys_get_u64le(iter_value(&bi.base).data), want);
	}
	block_iter_cleanup(&bi);
	block_builder_destroy(&b);
}

static int scan_status(const uint8_t *blk, size_t len, bool ikeys, unsigned *count)
{
	struct block_iter bi;
	block_iter_init(&bi, ikeys);
	block_iter_reset(&bi, blk, len);
	unsigned n = 0;
	for (iter_seek_first(&bi.base); iter_valid(&bi.base); iter_next(&bi.base))
		n++;
	int st = iter_status(&bi.base);
	char k[32];
	iter_seek(&bi.base, keys_slice_of(k, mkkey(k, 501)));
	if (!st)
		st = iter_status(&bi.base);
	block_iter_cleanup(&bi);
	if (count)
		*count = n;
	return st;
}

/* Hand-made corruptions are reported as CESIUM_ECORRUPT. */
static void test_corrupt_blocks_rejected(void **state)
{
	(void)state;
	size_t len;
	uint8_t *blk = build_block(100, &len);
	uint8_t *bad = mem_alloc(len);

	assert_int_equal(scan_status(blk, 3, false, NULL), CESIUM_ECORRUPT);

	memcpy(bad, blk, len); /* restart count larger than the block */
	keys_put_u32le(bad + len - 4, 0x40000000);
	assert_int_equal(scan_status(bad, len, false, NULL), CESIUM_ECORRUPT);

	memcpy(bad, blk, len); /* first restart offset past the entries */
	keys_put_u32le(bad + len - 4 - 4 * 7, (uint32_t)len);
	assert_int_equal(scan_status(bad, len, false, NULL), CESIUM_ECORRUPT);

	memcpy(bad, blk, len); /* a restart entry claiming a shared prefix */
	bad[0] = 3;
	assert_int_equal(scan_status(bad, len, false, NULL), CESIUM_ECORRUPT);

	size_t one_len; /* value length running past the entries */
	uint8_t *one = build_block(1, &one_len);
	assert_int_equal(scan_status(one, one_len, false, NULL), 0);
	one[2] = 0x7f;
	assert_int_equal(scan_status(one, one_len, false, NULL), CESIUM_ECORRUPT);
	mem_free(one);

	memcpy(bad, blk, len); /* an unterminated varint */
	bad[0] = 0xff;
	bad[1] = 0xff;
	bad[2] = 0xff;
	bad[3] = 0xff;
	bad[4] = 0xff;
	assert_int_equal(scan_status(bad, len, false, NULL), CESIUM_ECORRUPT);

	/* Internal keys shorter than a trailer are corruption. */
	assert_int_equal(scan_status(blk, len, true, NULL), 0);
	block_builder b;
	block_builder_init(&b, 16);
	block_builder_add(&b, keys_slice_of("abc", 3), keys_slice_of("v", 1));
	keys_slice s;
	block_builder_finish(&b, &s);
	assert_int_equal(scan_status(s.data, s.len, true, NULL), CESIUM_ECORRUPT);
	block_builder_destroy(&b);
	mem_free(bad);
	mem_free(blk);
}

/* Truncations and random byte flips never crash nor read out of bounds
 * (run under ASan), and end in status 0 or CESIUM_ECORRUPT. */
static void test_fuzzed_blocks_are_safe(void **state)
{
	(void)state;
	uint64_t rng = test_seed("block_fuzz");
	size_t len;
	uint8_t *blk = build_block(200, &len);
	for (size_t cut = 0; cut < len; cut++) {
		uint8_t *t = mem_alloc(cut ? cut : 1);
		memcpy(t, blk, cut);
		int st = scan_status(t, cut, false, NULL);
		assert_true(st == 0 || st == CESIUM_ECORRUPT);
		mem_free(t);
	}
	unsigned corrupt = 0;
	for (int round = 0; round < 3000; round++) {
		uint8_t *t = mem_alloc(len);
		memcpy(t, blk, len);
		int flips = 1 + (int)(test_rand(&rng) % 4);
		for (int f = 0; f < flips; f++)
			t[test_rand(&rng) % len] ^= (uint8_t)(1u << (test_rand(&rng) % 8));
		int st = scan_status(t, len, round & 1, NULL);
		assert_true(st == 0 || st == CESIUM_ECORRUPT);
		corrupt += st == CESIUM_ECORRUPT;
		mem_free(t);
	}
	assert_true(corrupt > 0);
	mem_free(blk);
}

/* Reset after finish starts a fresh block. */
static void test_builder_reset_starts_fresh(void **state)
{
	(void)state;
	block_builder b;
	block_builder_init(&b, 4);
	block_builder_add(&b, keys_slice_of("b", 1), keys_slice_of("1", 1));
	keys_slice s;
	block_builder_finish(&b, &s);
	block_builder_reset(&b);
	assert_true(block_builder_empty(&b));
	block_builder_add(&b, keys_slice_of("a", 1), keys_slice_of("2", 1));
	block_builder_finish(&b, &s);
	unsigned n;
	iter *it;
	assert_int_equal(block_iter_new(s.data, s.len, false, &it), 0);
	iter_seek_first(it);
	assert_true(iter_valid(it));
	assert_memory_equal(iter_key(it).data, "a", 1);
	iter_next(it);
	assert_false(iter_valid(it));
	iter_destroy(it);
	assert_int_equal(scan_status(s.data, s.len, false, &n), 0);
	assert_int_equal(n, 1);
	block_builder_destroy(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip_across_restart_boundaries),
	    cmocka_unit_test(test_seek_at_and_between_keys),
	    cmocka_unit_test(test_internal_keys_and_long_keys),
	    cmocka_unit_test(test_corrupt_blocks_rejected),
	    cmocka_unit_test(test_fuzzed_blocks_are_safe),
	    cmocka_unit_test(test_builder_reset_starts_fresh),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
