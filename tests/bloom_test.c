/* Unit tests for core/bloom: no false negatives, a false-positive rate near
 * theory, and safety on malformed filters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "bloom.h"
#include "mem.h"
#include "test_util.h"

#define NKEYS 100000

static uint64_t key_hash(uint64_t i, uint64_t salt)
{
	uint8_t k[16];
	keys_put_u64be(k, salt);
	keys_put_u64be(k + 8, i);
	return bloom_hash(keys_slice_of(k, sizeof(k)));
}

static uint8_t *build(int bits, uint64_t n, uint64_t salt, size_t *len)
{
	bloom_builder b;
	bloom_builder_init(&b, bits);
	for (uint64_t i = 0; i < n; i++)
		assert_int_equal(bloom_builder_add(&b, key_hash(i, salt)), 0);
	*len = bloom_builder_size(&b);
	uint8_t *f = mem_alloc(*len + 1);
	assert_non_null(f);
	bloom_builder_emit(&b, f);
	bloom_builder_destroy(&b);
	return f;
}

/* e^x by its series: the tests link no libm. */
static double series_exp(double x)
{
	double sum = 1, term = 1;
	for (int i = 1; i < 60; i++) {
		term *= x / i;
		sum += term;
	}
	return sum;
}

/* Every added key is reported as possibly present. */
static void test_no_false_negatives(void **state)
{
	(void)state;
	uint64_t seed = test_seed("bloom_no_fn");
	size_t len;
	uint8_t *f = build(10, NKEYS, seed, &len);
	for (uint64_t i = 0; i < NKEYS; i++)
		assert_true(bloom_may_contain(f, len, key_hash(i, seed)));
	mem_free(f);
}

/* At 10 bits per key the false-positive rate stays within 1.5x of the
 * classic (1 - e^{-kn/m})^k. */
static void test_false_positive_rate_near_theory(void **state)
{
	(void)state;
	uint64_t seed = test_seed("bloom_fp");
	size_t len;
	uint8_t *f = build(10, NKEYS, seed, &len);
	uint64_t fp = 0, probes = 4 * NKEYS;
	for (uint64_t i = 0; i < probes; i++)
		fp += bloom_may_contain(f, len, key_hash(i, seed + 1));
	double m = (double)(len - 1) * 8, k = bloom_probes(10), n = NKEYS;
	double base = 1 - series_exp(-k * n / m), theory = 1;
	for (int i = 0; i < (int)k; i++)
		theory *= base;
	double rate = (double)fp / (double)probes;
	fprintf(stderr, "bloom fp rate %.5f, theory %.5f (k=%d)\n", rate, theory, (int)k);
	assert_true(rate <= 1.5 * theory);
	assert_true(rate > 0); /* a filter answering false for everything is broken too */
	mem_free(f);
}

/* The probe count follows round(bits * ln 2), clamped to 1..30. */
static void test_probe_count_rounds_bits_times_ln2(void **state)
{
	(void)state;
	assert_int_equal(bloom_probes(10), 7);
	assert_int_equal(bloom_probes(1), 1);
	assert_int_equal(bloom_probes(0), 1);
	assert_int_equal(bloom_probes(16), 11);
	assert_int_equal(bloom_probes(100), 30);
}

/* A filter built from no keys answers false; a zero-length one true. */
static void test_empty_filters(void **state)
{
	(void)state;
	size_t len;
	uint8_t *f = build(10, 0, 1, &len);
	assert_int_equal(len, BLOOM_LINE_BYTES + 1);
	for (uint64_t i = 0; i < 1000; i++)
		assert_false(bloom_may_contain(f, len, key_hash(i, 7)));
	mem_free(f);
	f = build(0, 10, 1, &len);
	assert_int_equal(len, 0);
	assert_true(bloom_may_contain(f, 0, key_hash(1, 1)));
	assert_true(bloom_may_contain(NULL, 0, 5));
	mem_free(f);
}

/* Malformed filters (bad length, bad k, random bytes) answer true or false
 * without reading outside the buffer, and the clearly malformed answer
 * true. */
static void test_malformed_filter_is_safe(void **state)
{
	(void)state;
	uint64_t seed = test_seed("bloom_malformed");
	uint64_t rng = seed;
	uint8_t zero[BLOOM_LINE_BYTES + 1] = {0};
	assert_true(bloom_may_contain(zero, sizeof(zero), 42)); /* k = 0 */
	zero[BLOOM_LINE_BYTES] = 31;
	assert_true(bloom_may_contain(zero, sizeof(zero), 42)); /* k > 30 */
	zero[BLOOM_LINE_BYTES] = 3;
	assert_false(bloom_may_contain(zero, sizeof(zero), 42));
	assert_true(bloom_may_contain(zero, sizeof(zero) - 1, 42)); /* not whole lines */
	assert_true(bloom_may_contain(zero, 1, 42));
	for (int round = 0; round < 2000; round++) {
		size_t len = (size_t)(test_rand(&rng) % 300);
		/* Exactly len bytes on the heap so ASan sees any overread. */
		uint8_t *buf = mem_alloc(len ? len : 1);
		assert_non_null(buf);
		for (size_t i = 0; i < len; i++)
			buf[i] = (uint8_t)test_rand(&rng);
		bool r = bloom_may_contain(buf, len, test_rand(&rng));
		if (len == 0 || (len - 1) % BLOOM_LINE_BYTES != 0 || len == 1)
			assert_true(r);
		mem_free(buf);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_no_false_negatives),
	    cmocka_unit_test(test_false_positive_rate_near_theory),
	    cmocka_unit_test(test_probe_count_rounds_bits_times_ln2),
	    cmocka_unit_test(test_empty_filters),
	    cmocka_unit_test(test_malformed_filter_is_safe),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
