/* Tests for bench/hist.c: percentiles and moments against known
 * distributions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "hist.h"

static uint64_t seed_state;

static uint64_t next_rand(void)
{
	uint64_t x = seed_state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	seed_state = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static int setup_seed(void **state)
{
	(void)state;
	const char *s = getenv("TEST_SEED");
	uint64_t seed = s ? strtoull(s, NULL, 0) : (uint64_t)time(NULL);
	printf("seed %llu (set TEST_SEED to repeat)\n", (unsigned long long)seed);
	seed_state = seed * 2654435761u | 1;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* The bucket layout keeps every value within 1/16 of its bucket's floor. */
static void test_bucket_bounds_contain_value(void **state)
{
	(void)state;
	for (int i = 0; i < 100000; i++) {
		uint64_t v = next_rand() >> (next_rand() % 64);
		double lo, w;
		hist_bucket(hist_index(v), &lo, &w);
		assert_true((double)v >= lo && (double)v < lo + w);
		assert_true(w <= 1 || w <= lo / 16 + 1e-9);
	}
}

/* Uniform 1..N: the p-th percentile is p*N within the 6.25 % bucket error. */
static void test_uniform_percentiles(void **state)
{
	(void)state;
	struct hist h;
	hist_init(&h);
	const uint64_t n = 100000;
	for (uint64_t v = 1; v <= n; v++)
		hist_add(&h, v);
	for (int i = 0; i < HIST_NPCT; i++) {
		double p = hist_pct_list[i] / 100, want = p * (double)n;
		double got = hist_percentile(&h, p);
		if (fabs(got - want) > want * 0.0625 + 1)
			fail_msg("p%.2f: got %.1f want %.1f", hist_pct_list[i], got, want);
	}
	assert_int_equal(h.min, 1);
	assert_int_equal(h.max, n);
	assert_true(fabs(hist_mean(&h) - (double)(n + 1) / 2) < 1e-6);
	/* Uniform on 1..n: variance (n^2 - 1) / 12. */
	assert_true(fabs(hist_stdev(&h) - sqrt(((double)n * (double)n - 1) / 12)) < 1e-3);
}

/* Exponential samples: histogram percentiles match the sorted samples'. */
static void test_exponential_matches_exact_quantiles(void **state)
{
	(void)state;
	enum { N = 200000 };
	uint64_t *v = malloc(N * sizeof(*v));
	struct hist h;
	assert_non_null(v);
	hist_init(&h);
	for (int i = 0; i < N; i++) {
		double u = ((double)(next_rand() >> 11) + 0.5) * 0x1.0p-53;
		v[i] = (uint64_t)(-log(u) * 20000.0) + 1;
		hist_add(&h, v[i]);
	}
	qsort(v, N, sizeof(*v), cmp_u64);
	for (int i = 0; i < HIST_NPCT; i++) {
		double p = hist_pct_list[i] / 100;
		size_t idx = (size_t)ceil(p * N) - 1;
		double want = (double)v[idx], got = hist_percentile(&h, p);
		if (fabs(got - want) > want * 0.0625 + 1)
			fail_msg("p%.2f: got %.1f want %.1f", hist_pct_list[i], got, want);
	}
	assert_int_equal(h.max, v[N - 1]);
	assert_int_equal(h.min, v[0]);
	free(v);
}

/* One repeated value: every percentile is that value exactly. */
static void test_constant_is_exact(void **state)
{
	(void)state;
	struct hist h;
	hist_init(&h);
	for (int i = 0; i < 1000; i++)
		hist_add(&h, 12345);
	for (int i = 0; i < HIST_NPCT; i++)
		assert_true(hist_percentile(&h, hist_pct_list[i] / 100) == 12345.0);
	assert_true(hist_stdev(&h) == 0.0);
}

/* Merging two histograms equals adding all samples to one. */
static void test_merge_equals_single(void **state)
{
	(void)state;
	static struct hist a, b, all;
	hist_init(&a);
	hist_init(&b);
	hist_init(&all);
	for (int i = 0; i < 50000; i++) {
		uint64_t v = next_rand() % 1000000;
		hist_add(i % 3 ? &a : &b, v);
		hist_add(&all, v);
	}
	hist_merge(&a, &b);
	assert_memory_equal(a.b, all.b, sizeof(a.b));
	assert_int_equal(a.count, all.count);
	assert_int_equal(a.min, all.min);
	assert_int_equal(a.max, all.max);
	assert_true(fabs(hist_percentile(&a, 0.99) - hist_percentile(&all, 0.99)) < 1e-9);
}

/* fraction_below counts whole buckets under the edge; empty is 0. */
static void test_fraction_below(void **state)
{
	(void)state;
	struct hist h;
	hist_init(&h);
	assert_true(hist_fraction_below(&h, 100) == 0);
	assert_true(hist_percentile(&h, 0.5) == 0);
	for (int i = 0; i < 90; i++)
		hist_add(&h, 100);
	for (int i = 0; i < 10; i++)
		hist_add(&h, 100000);
	assert_true(fabs(hist_fraction_below(&h, 1000) - 0.9) < 1e-9);
	assert_true(fabs(hist_fraction_below(&h, 50) - 0.0) < 1e-9);
	assert_true(fabs(hist_fraction_below(&h, 200000) - 1.0) < 1e-9);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bucket_bounds_contain_value),
	    cmocka_unit_test(test_uniform_percentiles),
	    cmocka_unit_test(test_exponential_matches_exact_quantiles),
	    cmocka_unit_test(test_constant_is_exact),
	    cmocka_unit_test(test_merge_equals_single),
	    cmocka_unit_test(test_fraction_below),
	};
	return cmocka_run_group_tests(tests, setup_seed, NULL);
}
