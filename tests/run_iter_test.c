/* Unit tests for core/run_iter through the public iterator: a compacted
 * level split into many segments is read as one sorted run, by seeks that
 * land in, between and past the files, and by full scans. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "cesium.h"
#include "error.h"
#include "run_iter.h"
#include "test_db.h"
#include "test_util.h"

enum { RUN_KEYS = 20000 };

/* Keys k00000000, k00000002, ...: even numbers only, so that every odd
 * number names a gap to seek into. */
static int run_key(char *buf, size_t cap, unsigned i)
{
	return snprintf(buf, cap, "k%08u", 2 * i);
}

static cesium_db *run_fill(const char *dir)
{
	cesium_db *db = open_db(dir, "target_file_size", "64KiB", "target_file_size_multiplier", "1",
	                         "memtable_size", "256KiB", NULL);
	char key[32], val[64];
	for (unsigned i = 0; i < RUN_KEYS; i++) {
		int kl = run_key(key, sizeof(key), i);
		int vl = snprintf(val, sizeof(val), "value-%u", i);
		assert_int_equal(cesium_put(db, key, (size_t)kl, val, (size_t)vl), 0);
	}
	assert_int_equal(cesium_compact(db), 0);
	return db;
}

/* A seek lands on the first key >= target, whichever file of the run holds
 * it, and iteration from there crosses file boundaries in order. */
static void test_seeks_cross_files_in_order(void **state)
{
	(void)state;
	char *dir = test_tmpdir("run_iter");
	cesium_db *db = run_fill(dir);
	uint64_t segs = 0;
	for (int l = 1; l < 8; l++) {
		char name[32];
		snprintf(name, sizeof(name), "level%d_segments", l);
		segs += stat_of(db, name);
	}
	assert_true(segs >= 4); /* the run really spans several files */
	uint64_t rng = test_seed("run_iter_seek");
	cesium_iter *it;
	assert_int_equal(cesium_iter_new(db, 0, &it), 0);
	for (int round = 0; round < 2000; round++) {
		unsigned n = (unsigned)(test_rand(&rng) % (2 * RUN_KEYS + 2));
		char target[32], want[32];
		int tl = snprintf(target, sizeof(target), "k%08u", n);
		cesium_iter_seek(it, target, (size_t)tl);
		unsigned first = (n + 1) / 2; /* index of the first key >= target */
		for (unsigned j = first; j < first + 3; j++) {
			if (j >= RUN_KEYS) {
				assert_false(cesium_iter_valid(it));
				break;
			}
			assert_true(cesium_iter_valid(it));
			size_t kl;
			const void *k = cesium_iter_key(it, &kl);
			int wl = run_key(want, sizeof(want), j);
			assert_int_equal(kl, (size_t)wl);
			assert_memory_equal(k, want, kl);
			cesium_iter_next(it);
		}
	}
	assert_int_equal(cesium_iter_status(it), 0);
	/* A full scan yields every key once, in order. */
	cesium_iter_seek_first(it);
	unsigned count = 0;
	char want[32];
	for (; cesium_iter_valid(it); cesium_iter_next(it), count++) {
		size_t kl;
		const void *k = cesium_iter_key(it, &kl);
		int wl = run_key(want, sizeof(want), count);
		assert_int_equal(kl, (size_t)wl);
		assert_memory_equal(k, want, kl);
	}
	assert_int_equal(count, RUN_KEYS);
	assert_int_equal(cesium_iter_status(it), 0);
	cesium_iter_free(it);
	assert_int_equal(cesium_close(db), 0);
	test_rmtree(dir);
	free(dir);
}

/* An upper bound inside the run stops the scan there. */
static void test_upper_bound_inside_run(void **state)
{
	(void)state;
	char *dir = test_tmpdir("run_iter_bound");
	cesium_db *db = run_fill(dir);
	cesium_iter *it;
	assert_int_equal(cesium_iter_new(db, 0, &it), 0);
	char lo[32], hi[32];
	int ll = run_key(lo, sizeof(lo), 5000);
	int hl = run_key(hi, sizeof(hi), 12000);
	assert_int_equal(cesium_iter_set_upper_bound(it, hi, (size_t)hl), 0);
	unsigned count = 0;
	for (cesium_iter_seek(it, lo, (size_t)ll); cesium_iter_valid(it); cesium_iter_next(it))
		count++;
	assert_int_equal(count, 7000);
	assert_int_equal(cesium_iter_status(it), 0);
	cesium_iter_free(it);
	assert_int_equal(cesium_close(db), 0);
	test_rmtree(dir);
	free(dir);
}

/* An empty run or a NULL argument is CESIUM_EINVAL, not a crash. */
static void test_bad_arguments(void **state)
{
	(void)state;
	iter *it = NULL;
	struct file_meta *none[1] = {NULL};
	assert_int_equal(run_iter_new(NULL, none, 1, &it), CESIUM_EINVAL);
	assert_null(it);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_seeks_cross_files_in_order),
	    cmocka_unit_test(test_upper_bound_inside_run),
	    cmocka_unit_test(test_bad_arguments),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
