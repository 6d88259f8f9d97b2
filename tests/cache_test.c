/* Unit tests for core/cache: byte budget, pinning, counters, replacement,
 * segment erasure and concurrent use. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>

#include "cache.h"
#include "keys.h"
#include "mem.h"
#include "test_util.h"

static atomic_long live_blocks;

static void count_free(void *p)
{
	atomic_fetch_sub(&live_blocks, 1);
	mem_free(p);
}

/* A block whose bytes are derived from its key, so readers can check it. */
static void *make_block(uint64_t id, uint64_t off, size_t len)
{
	uint8_t *p = mem_alloc(len ? len : 1);
	assert_non_null(p);
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(id * 31 + off * 7 + i);
	atomic_fetch_add(&live_blocks, 1);
	return p;
}

static bool block_ok(const cache_handle *h, uint64_t id, uint64_t off)
{
	size_t len;
	const uint8_t *p = cache_value(h, &len);
	for (size_t i = 0; i < len; i++)
		if (p[i] != (uint8_t)(id * 31 + off * 7 + i))
			return false;
	return true;
}

/* Usage never exceeds capacity when nothing is pinned, and every block is
 * freed by the end. */
static void test_budget_respected_under_many_inserts(void **state)
{
	(void)state;
	uint64_t rng = test_seed("cache_budget");
	cache *c;
	const size_t cap = 64 * 1024;
	assert_int_equal(cache_new(cap, &c), 0);
	for (uint64_t i = 0; i < 20000; i++) {
		size_t len = 1 + (size_t)(test_rand(&rng) % 3000);
		uint64_t id = test_rand(&rng) % 8, off = test_rand(&rng) % 4096;
		assert_int_equal(
		    cache_insert(c, id, off, make_block(id, off, len), len, count_free, NULL), 0);
		assert_true(cache_usage(c) <= cap);
	}
	assert_true(cache_usage(c) > cap / 2); /* it does cache */
	cache_free(c);
	assert_int_equal(atomic_load(&live_blocks), 0);
}

/* A referenced entry is neither freed nor evicted from lookup while held,
 * whatever else is inserted; released, it becomes evictable again. */
static void test_pinned_entries_survive_eviction(void **state)
{
	(void)state;
	cache *c;
	const size_t cap = 16 * 1024;
	assert_int_equal(cache_new(cap, &c), 0);
	cache_handle *pinned;
	assert_int_equal(cache_insert(c, 99, 0, make_block(99, 0, 4000), 4000, count_free, &pinned),
	                 0);
	for (uint64_t i = 0; i < 5000; i++)
		cache_insert(c, 1, i, make_block(1, i, 500), 500, count_free, NULL);
	assert_true(block_ok(pinned, 99, 0));
	cache_handle *again = cache_lookup(c, 99, 0);
	assert_ptr_equal(again, pinned);
	cache_release(c, again);
	assert_true(cache_usage(c) <= cap + 4000);
	cache_release(c, pinned);
	for (uint64_t i = 0; i < 5000; i++)
		cache_insert(c, 2, i, make_block(2, i, 500), 500, count_free, NULL);
	assert_true(cache_usage(c) <= cap);
	assert_null(cache_lookup(c, 99, 0));
	cache_free(c);
	assert_int_equal(atomic_load(&live_blocks), 0);
}

/* Hits and misses are counted exactly. */
static void test_hit_and_miss_counts(void **state)
{
	(void)state;
	cache *c;
	assert_int_equal(cache_new(1 << 20, &c), 0);
	for (uint64_t i = 0; i < 100; i++)
		cache_insert(c, 5, i * 4096, make_block(5, i * 4096, 100), 100, count_free, NULL);
	for (uint64_t i = 0; i < 150; i++) {
		cache_handle *h = cache_lookup(c, 5, i * 4096);
		if (i < 100) {
			assert_non_null(h);
			assert_true(block_ok(h, 5, i * 4096));
			cache_release(c, h);
		} else {
			assert_null(h);
		}
	}
	assert_int_equal(cache_hits(c), 100);
	assert_int_equal(cache_misses(c), 50);
	assert_int_equal(cache_usage(c), 100 * 100);
	cache_free(c);
	assert_int_equal(atomic_load(&live_blocks), 0);
}

/* Inserting an existing key replaces it; the old handle stays readable
 * until released. */
static void test_replace_keeps_old_handle_alive(void **state)
{
	(void)state;
	cache *c;
	assert_int_equal(cache_new(1 << 20, &c), 0);
	cache_handle *old, *cur;
	cache_insert(c, 1, 1, make_block(1, 1, 64), 64, count_free, &old);
	cache_insert(c, 1, 1, make_block(2, 2, 32), 32, count_free, NULL);
	assert_true(block_ok(old, 1, 1));
	cur = cache_lookup(c, 1, 1);
	assert_non_null(cur);
	size_t len;
	cache_value(cur, &len);
	assert_int_equal(len, 32);
	assert_int_equal(cache_usage(c), 32);
	cache_release(c, old);
	assert_int_equal(atomic_load(&live_blocks), 1);
	cache_release(c, cur);
	cache_free(c);
	assert_int_equal(atomic_load(&live_blocks), 0);
}

/* Capacity 0 caches nothing but still hands back usable handles. */
static void test_zero_capacity_caches_nothing(void **state)
{
	(void)state;
	cache *c;
	assert_int_equal(cache_new(0, &c), 0);
	cache_handle *h;
	assert_int_equal(cache_insert(c, 1, 0, make_block(1, 0, 10), 10, count_free, &h), 0);
	assert_non_null(h);
	assert_true(block_ok(h, 1, 0));
	assert_null(cache_lookup(c, 1, 0));
	cache_release(c, h);
	cache_insert(c, 1, 0, make_block(1, 0, 10), 10, count_free, NULL);
	assert_int_equal(cache_usage(c), 0);
	assert_int_equal(atomic_load(&live_blocks), 0);
	cache_free(c);
}

/* Erasing a segment drops its blocks and only its blocks. */
static void test_erase_segment(void **state)
{
	(void)state;
	cache *c;
	assert_int_equal(cache_new(1 << 20, &c), 0);
	for (uint64_t i = 0; i < 50; i++) {
		cache_insert(c, 7, i, make_block(7, i, 10), 10, count_free, NULL);
		cache_insert(c, 8, i, make_block(8, i, 10), 10, count_free, NULL);
	}
	cache_handle *held = cache_lookup(c, 7, 3);
	cache_erase_segment(c, 7);
	assert_null(cache_lookup(c, 7, 1));
	assert_true(block_ok(held, 7, 3));
	cache_handle *h = cache_lookup(c, 8, 1);
	assert_non_null(h);
	cache_release(c, h);
	assert_int_equal(cache_usage(c), 500);
	cache_release(c, held);
	assert_int_equal(atomic_load(&live_blocks), 50);
	cache_free(c);
	assert_int_equal(atomic_load(&live_blocks), 0);
}

struct worker {
	cache *c;
	uint64_t seed;
	uint64_t lookups, bad;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	uint64_t rng = w->seed;
	for (int i = 0; i < 100000; i++) {
		uint64_t id = test_rand(&rng) % 4, off = (test_rand(&rng) % 2000) * 4096;
		cache_handle *h = cache_lookup(w->c, id, off);
		w->lookups++;
		if (!h) {
			size_t len = 1000 + (size_t)(off / 4096 % 2000);
			if (cache_insert(w->c, id, off, make_block(id, off, len), len, count_free,
			                 &h))
				continue;
		}
		if (!block_ok(h, id, off))
			w->bad++;
		cache_release(w->c, h);
	}
	return NULL;
}

/* Four threads looking up, inserting and releasing see only intact blocks,
 * the counters add up, and the budget holds once they are done. */
static void test_concurrent_lookups_from_four_threads(void **state)
{
	(void)state;
	uint64_t seed = test_seed("cache_threads");
	cache *c;
	const size_t cap = 4 * 1024 * 1024; /* all 64 shards */
	assert_int_equal(cache_new(cap, &c), 0);
	struct worker w[4];
	pthread_t t[4];
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){.c = c, .seed = seed + (uint64_t)i * 7919};
		assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
	}
	uint64_t total = 0;
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].bad, 0);
		total += w[i].lookups;
	}
	assert_int_equal(cache_hits(c) + cache_misses(c), total);
	assert_true(cache_hits(c) > 0);
	assert_true(cache_usage(c) <= cap);
	cache_free(c);
	assert_int_equal(atomic_load(&live_blocks), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_budget_respected_under_many_inserts),
	    cmocka_unit_test(test_pinned_entries_survive_eviction),
	    cmocka_unit_test(test_hit_and_miss_counts),
	    cmocka_unit_test(test_replace_keeps_old_handle_alive),
	    cmocka_unit_test(test_zero_capacity_caches_nothing),
	    cmocka_unit_test(test_erase_segment),
	    cmocka_unit_test(test_concurrent_lookups_from_four_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
