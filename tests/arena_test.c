/* Unit tests for core/arena: alignment, growth, large blocks, concurrency. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "cesium.h"
#include "test_util.h"

/* Every returned pointer honours the requested alignment. */
static void alloc_respects_alignment(void **state)
{
	(void)state;
	arena *a;
	assert_int_equal(arena_new(4096, &a), 0);
	static const size_t aligns[] = { 1, 2, 4, 8, 16, 64, 256, 4096 };
	for (int round = 0; round < 50; round++) {
		for (size_t i = 0; i < sizeof(aligns) / sizeof(aligns[0]); i++) {
			void *p = arena_alloc(a, (size_t)round * 3 + 1, aligns[i]);
			assert_non_null(p);
			assert_int_equal((uintptr_t)p % aligns[i], 0);
		}
	}
	arena_free(a);
}

/* Bad alignments and bad block sizes are refused, not crashed on. */
static void bad_arguments_rejected(void **state)
{
	(void)state;
	arena *a = NULL;
	assert_int_equal(arena_new(0, &a), CESIUM_EINVAL);
	assert_int_equal(arena_new(4096, NULL), CESIUM_EINVAL);
	assert_int_equal(arena_new(4096, &a), 0);
	assert_null(arena_alloc(a, 8, 0));
	assert_null(arena_alloc(a, 8, 3));
	assert_null(arena_alloc(a, SIZE_MAX, 8));
	assert_null(arena_alloc(NULL, 8, 8));
	arena_free(a);
	arena_free(NULL);
}

/* Many allocations keep their contents: none overlaps another. */
static void many_allocs_do_not_overlap(void **state)
{
	(void)state;
	uint64_t rng = test_seed("arena many");
	arena *a;
	assert_int_equal(arena_new(1024, &a), 0);
	enum { N = 20000 };
	uint8_t **ptrs = calloc(N, sizeof(*ptrs));
	size_t *sizes = calloc(N, sizeof(*sizes));
	assert_non_null(ptrs);
	assert_non_null(sizes);
	for (size_t i = 0; i < N; i++) {
		/* Mostly small, sometimes larger than block/4 (own block). */
		size_t sz = test_rand(&rng) % 16 == 0 ? 300 + test_rand(&rng) % 3000
		                                      : 1 + test_rand(&rng) % 64;
		sizes[i] = sz;
		ptrs[i] = arena_alloc(a, sz, 8);
		assert_non_null(ptrs[i]);
		memset(ptrs[i], (int)(i & 0xff), sz);
	}
	for (size_t i = 0; i < N; i++)
		for (size_t j = 0; j < sizes[i]; j++)
			assert_int_equal(ptrs[i][j], i & 0xff);
	assert_true(arena_memory_usage(a) >= N * 8);
	free(ptrs);
	free(sizes);
	arena_free(a);
}

/* Memory usage grows with blocks, and a large allocation gets its own block
 * without retiring the current one. */
static void usage_tracks_blocks(void **state)
{
	(void)state;
	arena *a;
	assert_int_equal(arena_new(4096, &a), 0);
	size_t u0 = arena_memory_usage(a);
	assert_true(u0 >= 4096);
	void *small1 = arena_alloc(a, 16, 8);
	assert_non_null(small1);
	assert_int_equal(arena_memory_usage(a), u0);
	void *big = arena_alloc(a, 100000, 8);
	assert_non_null(big);
	assert_true(arena_memory_usage(a) >= u0 + 100000);
	void *small2 = arena_alloc(a, 16, 8);
	/* Still bumped from the first block. */
	assert_true((uint8_t *)small2 == (uint8_t *)small1 + 16);
	arena_free(a);
}

enum { THREADS = 4, PER_THREAD = 50000 };

struct worker {
	arena *a;
	uint64_t seed;
	uint8_t *ptrs[PER_THREAD];
	uint16_t sizes[PER_THREAD];
	uint8_t tag;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	uint64_t rng = w->seed;
	for (int i = 0; i < PER_THREAD; i++) {
		size_t sz = 1 + test_rand(&rng) % 200;
		w->sizes[i] = (uint16_t)sz;
		w->ptrs[i] = arena_alloc(w->a, sz, 8);
		if (w->ptrs[i])
			memset(w->ptrs[i], w->tag, sz);
	}
	return NULL;
}

/* Four threads allocating at once get disjoint memory. */
static void concurrent_allocs_are_disjoint(void **state)
{
	(void)state;
	uint64_t seed = test_seed("arena concurrent");
	arena *a;
	assert_int_equal(arena_new(8192, &a), 0);
	struct worker *w = calloc(THREADS, sizeof(*w));
	assert_non_null(w);
	pthread_t th[THREADS];
	for (int t = 0; t < THREADS; t++) {
		w[t].a = a;
		w[t].seed = seed + (uint64_t)t * 7919;
		w[t].tag = (uint8_t)(0x10 + t);
		assert_int_equal(pthread_create(&th[t], NULL, worker_main, &w[t]), 0);
	}
	for (int t = 0; t < THREADS; t++)
		pthread_join(th[t], NULL);
	for (int t = 0; t < THREADS; t++) {
		for (int i = 0; i < PER_THREAD; i++) {
			assert_non_null(w[t].ptrs[i]);
			assert_int_equal((uintptr_t)w[t].ptrs[i] % 8, 0);
			for (size_t j = 0; j < w[t].sizes[i]; j++)
				assert_int_equal(w[t].ptrs[i][j], w[t].tag);
		}
	}
	free(w);
	arena_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(alloc_respects_alignment),
		cmocka_unit_test(bad_arguments_rejected),
		cmocka_unit_test(many_allocs_do_not_overlap),
		cmocka_unit_test(usage_tracks_blocks),
		cmocka_unit_test(concurrent_allocs_are_disjoint),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
