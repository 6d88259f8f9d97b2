/*
 * api_test — the public API end to end, as an application sees it: reads
 * and writes, batches, namespaces, iterators and their snapshots, flush,
 * compaction, reopening with other options, and the locking of a database
 * against a second open in this process and in another one.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cesium.h"
#include "test_util.h"

static int fx_setup(void **state)
{
	return test_fx_setup(state, "api");
}


static cesium_db *open_db(const char *dir, const cesium_options *o)
{
	cesium_db *db = NULL;
	int rc = cesium_open(dir, o, &db);
	if (rc != 0)
		print_error("cesium_open(%s): %s: %s\n", dir, cesium_strerror(rc), cesium_errmsg());
	assert_int_equal(rc, 0);
	assert_non_null(db);
	return db;
}

static void reopen(struct test_fx *f, const cesium_options *o)
{
	int rc = cesium_close(f->db);
	f->db = NULL;
	if (rc != 0)
		print_error("cesium_close: %s: %s\n", cesium_strerror(rc), cesium_errmsg());
	assert_int_equal(rc, 0);
	f->db = open_db(f->dir, o);
}

static void check_ok(int rc, const char *what)
{
	if (rc != 0)
		print_error("%s: %s: %s\n", what, cesium_strerror(rc), cesium_errmsg());
	assert_int_equal(rc, 0);
}

static void put_s(cesium_db *db, uint64_t ns, const char *k, const char *v)
{
	check_ok(cesium_put_ns(db, ns, k, strlen(k), v, strlen(v)), "put");
}

static void expect_val(cesium_db *db, uint64_t ns, const char *k, const char *v)
{
	void *got = NULL;
	size_t glen = 0;
	int rc = cesium_get_ns(db, ns, k, strlen(k), &got, &glen);
	if (rc != 0)
		print_error("get ns=%" PRIu64 " key=%s: %s: %s\n", ns, k, cesium_strerror(rc),
		            cesium_errmsg());
	assert_int_equal(rc, 0);
	assert_non_null(got);
	assert_int_equal(glen, strlen(v));
	assert_memory_equal(got, v, glen);
	cesium_free(got);
}

static void expect_missing(cesium_db *db, uint64_t ns, const char *k)
{
	void *got = NULL;
	size_t glen = 0;
	int rc = cesium_get_ns(db, ns, k, strlen(k), &got, &glen);
	if (rc == 0) {
		print_error("ns=%" PRIu64 " key=%s: expected absent, got %zu bytes\n", ns, k, glen);
		cesium_free(got);
	}
	assert_int_equal(rc, CESIUM_ENOTFOUND);
}

static void expect_iter_at(cesium_iter *it, const char *k, const char *v)
{
	size_t klen = 0, vlen = 0;
	if (!cesium_iter_valid(it))
		print_error("iterator invalid (status %d: %s), expected key %s\n",
		            cesium_iter_status(it), cesium_errmsg(), k);
	assert_true(cesium_iter_valid(it));
	const void *key = cesium_iter_key(it, &klen);
	const void *val = cesium_iter_value(it, &vlen);
	assert_int_equal(klen, strlen(k));
	assert_memory_equal(key, k, klen);
	if (v) {
		assert_int_equal(vlen, strlen(v));
		if (vlen)
			assert_memory_equal(val, v, vlen);
	}
}

static void expect_iter_end(cesium_iter *it)
{
	if (cesium_iter_valid(it)) {
		size_t klen = 0;
		const char *key = cesium_iter_key(it, &klen);
		print_error("iterator still at %.*s, expected end\n", (int)klen, key);
	}
	assert_false(cesium_iter_valid(it));
	assert_int_equal(cesium_iter_status(it), 0);
}

static void keyname(char *buf, size_t n, unsigned i)
{
	snprintf(buf, n, "key%06u", i);
}

static void valname(char *buf, size_t n, unsigned i, unsigned gen)
{
	snprintf(buf, n, "value-%u-gen%u-%0*u", i, gen, (int)(i % 40), i);
}

/* A put is readable, an overwrite replaces it, a delete removes it. */
static void test_put_get_delete_roundtrip(void **state)
{
	struct test_fx *f = *state;
	f->db = open_db(f->dir, NULL);
	void *v = NULL;
	size_t vl = 0;
	assert_int_equal(cesium_get(f->db, "a", 1, &v, &vl), CESIUM_ENOTFOUND);
	check_ok(cesium_put(f->db, "a", 1, "one", 3), "put");
	expect_val(f->db, 0, "a", "one");
	check_ok(cesium_put(f->db, "a", 1, "two!", 4), "put");
	expect_val(f->db, 0, "a", "two!");
	check_ok(cesium_delete(f->db, "a", 1), "delete");
	expect_missing(f->db, 0, "a");
	/* Deleting an absent key is not an error. */
	check_ok(cesium_delete(f->db, "zz", 2), "delete absent");
	check_ok(cesium_put(f->db, "a", 1, "three", 5), "put after delete");
	expect_val(f->db, 0, "a", "three");
}

/* What was written before a clean close is there after reopening. */
static void test_data_survives_close_and_reopen(void **state)
{
	struct test_fx *f = *state;
	char k[32], v[96];
	f->db = open_db(f->dir, NULL);
	for (unsigned i = 0; i < 1000; i++) {
		keyname(k, sizeof(k), i);
		valname(v, sizeof(v), i, 0);
		put_s(f->db, 0, k, v);
	}
	for (unsigned i = 0; i < 1000; i += 3) {
		keyname(k, sizeof(k), i);
		check_ok(cesium_delete(f->db, k, strlen(k)), "delete");
	}
	reopen(f, NULL);
	for (unsigned i = 0; i < 1000; i++) {
		keyname(k, sizeof(k), i);
		valname(v, sizeof(v), i, 0);
		if (i % 3 == 0)
			expect_missing(f->db, 0, k);
		else
			expect_val(f->db, 0, k, v);
	}
	/* And again, so that state recovered once is recovered twice. */
	reopen(f, NULL);
	expect_missing(f->db, 0, "key000000");
	expect_val(f->db, 0, "key000001", "value-1-gen0-1");
}

/* A batch is invisible until written, then wholly visible; puts and
 * deletes in one batch apply in order, and a cleared batch writes nothing. */
static void test_batch_applies_all_or_nothing(void **state)
{
	struct test_fx *f = *state;
	cesium_batch *b = NULL;
	f->db = open_db(f->dir, NULL);
	put_s(f->db, 0, "old", "x");
	check_ok(cesium_batch_new(&b), "batch_new");
	check_ok(cesium_batch_put(b, 0, "b1", 2, "v1", 2), "batch_put");
	check_ok(cesium_batch_put(b, 3, "b2", 2, "v2", 2), "batch_put");
	check_ok(cesium_batch_delete(b, 0, "old", 3), "batch_delete");
	check_ok(cesium_batch_put(b, 0, "b3", 2, "first", 5), "batch_put");
	check_ok(cesium_batch_put(b, 0, "b3", 2, "second", 6), "batch_put");
	check_ok(cesium_batch_put(b, 0, "b4", 2, "gone", 4), "batch_put");
	check_ok(cesium_batch_delete(b, 0, "b4", 2), "batch_delete");
	/* A rejected entry leaves the batch as it was. */
	assert_int_equal(cesium_batch_put(b, 0, "", 0, "v", 1), CESIUM_EINVAL);
	expect_missing(f->db, 0, "b1");
	expect_missing(f->db, 3, "b2");
	expect_val(f->db, 0, "old", "x");

	check_ok(cesium_write(f->db, b, 0), "write");
	expect_val(f->db, 0, "b1", "v1");
	expect_val(f->db, 3, "b2", "v2");
	expect_missing(f->db, 0, "old");
	expect_val(f->db, 0, "b3", "second");
	expect_missing(f->db, 0, "b4");

	cesium_batch_clear(b);
	check_ok(cesium_write(f->db, b, CESIUM_WRITE_SYNC), "write empty batch");
	check_ok(cesium_batch_put(b, 0, "b5", 2, "v5", 2), "batch_put after clear");
	check_ok(cesium_write(f->db, b, CESIUM_WRITE_SYNC), "write sync");
	cesium_batch_free(b);

	reopen(f, NULL);
	expect_val(f->db, 0, "b1", "v1");
	expect_val(f->db, 3, "b2", "v2");
	expect_missing(f->db, 0, "old");
	expect_val(f->db, 0, "b3", "second");
	expect_missing(f->db, 0, "b4");
	expect_val(f->db, 0, "b5", "v5");
	/* The cleared batch's first contents were not written twice: b1 is
	 * still the only b1 and namespace 0 has exactly b1 b3 b5. */
	cesium_iter *it = NULL;
	check_ok(cesium_iter_new(f->db, 0, &it), "iter_new");
	cesium_iter_seek_first(it);
	expect_iter_at(it, "b1", "v1");
	cesium_iter_next(it);
	expect_iter_at(it, "b3", "second");
	cesium_iter_next(it);
	expect_iter_at(it, "b5", "v5");
	cesium_iter_next(it);
	expect_iter_end(it);
	cesium_iter_free(it);
}

/* One key in namespaces 0, 1 and UINT64_MAX holds three separate values;
 * deleting or iterating one namespace does not touch the others. */
static void test_namespaces_are_separate(void **state)
{
	struct test_fx *f = *state;
	const uint64_t ns[] = {0, 1, UINT64_MAX};
	const char *vals[] = {"zero", "one", "max"};
	f->db = open_db(f->dir, NULL);
	for (int round = 0; round < 3; round++) {
		if (round == 0) {
			for (int i = 0; i < 3; i++)
				put_s(f->db, ns[i], "same", vals[i]);
			put_s(f->db, 1, "only-in-1", "x");
		}
		for (int i = 0; i < 3; i++)
			expect_val(f->db, ns[i], "same", vals[i]);
		expect_val(f->db, 0, "same", "zero");
		expect_missing(f->db, 0, "only-in-1");
		expect_missing(f->db, UINT64_MAX, "only-in-1");
		expect_missing(f->db, 2, "same");
		cesium_iter *it = NULL;
		check_ok(cesium_iter_new(f->db, UINT64_MAX, &it), "iter_new");
		cesium_iter_seek_first(it);
		expect_iter_at(it, "same", "max");
		cesium_iter_next(it);
		expect_iter_end(it);
		cesium_iter_free(it);
		/* Check in the memtable, then in a segment, then after reopen. */
		if (round == 0)
			check_ok(cesium_flush(f->db), "flush");
		else if (round == 1)
			reopen(f, NULL);
	}
	check_ok(cesium_delete_ns(f->db, 1, "same", 4), "delete_ns");
	expect_missing(f->db, 1, "same");
	expect_val(f->db, 0, "same", "zero");
	expect_val(f->db, UINT64_MAX, "same", "max");
	check_ok(cesium_compact(f->db), "compact");
	expect_missing(f->db, 1, "same");
	expect_val(f->db, 0, "same", "zero");
	expect_val(f->db, UINT64_MAX, "same", "max");
	expect_val(f->db, 1, "only-in-1", "x");
}

/* An empty value is stored and read back as a value, not as a delete. */
static void test_empty_value_is_a_value(void **state)
{
	struct test_fx *f = *state;
	f->db = open_db(f->dir, NULL);
	check_ok(cesium_put(f->db, "empty", 5, "", 0), "put empty");
	for (int round = 0; round < 3; round++) {
		void *v = NULL;
		size_t vl = 99;
		int rc = cesium_get(f->db, "empty", 5, &v, &vl);
		if (rc)
			print_error("round %d: %s: %s\n", round, cesium_strerror(rc),
			            cesium_errmsg());
		assert_int_equal(rc, 0);
		assert_non_null(v);
		assert_int_equal(vl, 0);
		cesium_free(v);
		cesium_iter *it = NULL;
		check_ok(cesium_iter_new(f->db, 0, &it), "iter_new");
		cesium_iter_seek_first(it);
		expect_iter_at(it, "empty", "");
		cesium_iter_free(it);
		if (round == 0)
			check_ok(cesium_flush(f->db), "flush");
		else if (round == 1)
			reopen(f, NULL);
	}
}

static void fill_keys(cesium_db *db, unsigned n, unsigned step, unsigned gen)
{
	char k[32], v[96];
	for (unsigned i = 0; i < n; i += step) {
		keyname(k, sizeof(k), i);
		valname(v, sizeof(v), i, gen);
		put_s(db, 0, k, v);
	}
}

/* seek lands on the first key >= target, seek_first on the smallest, next
 * walks in order, and the end is reported as invalid with status 0. */
static void test_iter_seek_and_next(void **state)
{
	struct test_fx *f = *state;
	char k[32], v[96];
	f->db = open_db(f->dir, NULL);
	fill_keys(f->db, 200, 2, 0); /* even keys only */
	put_s(f->db, 1, "key000001", "other namespace");
	cesium_iter *it = NULL;
	check_ok(cesium_iter_new(f->db, 0, &it), "iter_new");
	cesium_iter_seek_first(it);
	expect_iter_at(it, "key000000", "value-0-gen0-0");
	cesium_iter_seek(it, "key000001", 9); /* absent: lands on the next */
	expect_iter_at(it, "key000002", NULL);
	cesium_iter_seek(it, "key000100", 9); /* present: lands on it */
	expect_iter_at(it, "key000100", NULL);
	for (unsigned i = 100; i < 200; i += 2) {
		keyname(k, sizeof(k), i);
		valname(v, sizeof(v), i, 0);
		expect_iter_at(it, k, v);
		cesium_iter_next(it);
	}
	expect_iter_end(it);
	cesium_iter_seek(it, "a", 1); /* before everything */
	expect_iter_at(it, "key000000", NULL);
	cesium_iter_seek(it, "z", 1); /* after everything */
	expect_iter_end(it);
	cesium_iter_seek(it, "key0001985", 10); /* between the last two */
	expect_iter_end(it);
	cesium_iter_free(it);

	/* An empty namespace iterates nothing. */
	check_ok(cesium_iter_new(f->db, 42, &it), "iter_new");
	cesium_iter_seek_first(it);
	expect_iter_end(it);
	cesium_iter_free(it);
}

/* The upper bound is exclusive, can be moved and removed. */
static void test_iter_upper_bound(void **state)
{
	struct test_fx *f = *state;
	char v[96];
	f->db = open_db(f->dir, NULL);
	fill_keys(f->db, 20, 1, 0);
	check_ok(cesium_flush(f->db), "flush");
	fill_keys(f->db, 40, 3, 1); /* some in the memtable, some overwrite */
	cesium_iter *it = NULL;
	check_ok(cesium_iter_new(f->db, 0, &it), "iter_new");
	check_ok(cesium_iter_set_upper_bound(it, "key000005", 9), "set bound");
	cesium_iter_seek_first(it);
	unsigned n = 0;
	for (; cesium_iter_valid(it); cesium_iter_next(it))
		n++;
	assert_int_equal(n, 5);
	assert_int_equal(cesium_iter_status(it), 0);
	cesium_iter_seek(it, "key000005", 9);
	expect_iter_end(it);
	cesium_iter_seek(it, "key000004", 9);
	expect_iter_at(it, "key000004", NULL);
	cesium_iter_next(it);
	expect_iter_end(it);
	/* A bound between keys. */
	check_ok(cesium_iter_set_upper_bound(it, "key0000305", 10), "set bound");
	cesium_iter_seek(it, "key000029", 9);
	valname(v, sizeof(v), 30, 1);
	expect_iter_at(it, "key000030", v);
	cesium_iter_next(it);
	expect_iter_end(it);
	/* No bound: to the end. */
	check_ok(cesium_iter_set_upper_bound(it, NULL, 0), "clear bound");
	cesium_iter_seek(it, "key000036", 9);
	expect_iter_at(it, "key000036", NULL);
	cesium_iter_next(it);
	expect_iter_at(it, "key000039", NULL);
	cesium_iter_next(it);
	expect_iter_end(it);
	cesium_iter_free(it);
}

/* Writes made after cesium_iter_new (puts, overwrites, deletes, batches)
 * are invisible to that iterator, and visible to a new one. */
static void test_iter_snapshot_ignores_later_writes(void **state)
{
	struct test_fx *f = *state;
	f->db = open_db(f->dir, NULL);
	put_s(f->db, 0, "b", "b0");
	put_s(f->db, 0, "d", "d0");
	put_s(f->db, 0, "f", "f0");
	cesium_iter *it = NULL;
	check_ok(cesium_iter_new(f->db, 0, &it), "iter_new");
	put_s(f->db, 0, "a", "new");
	put_s(f->db, 0, "c", "new");
	put_s(f->db, 0, "d", "d1");
	check_ok(cesium_delete(f->db, "f", 1), "delete");
	cesium_batch *b = NULL;
	check_ok(cesium_batch_new(&b), "batch_new");
	check_ok(cesium_batch_put(b, 0, "e", 1, "new", 3), "batch_put");
	check_ok(cesium_batch_delete(b, 0, "b", 1), "batch_delete");
	check_ok(cesium_write(f->db, b, 0), "write");
	cesium_batch_free(b);

	cesium_iter_seek_first(it);
	expect_iter_at(it, "b", "b0");
	cesium_iter_next(it);
	expect_iter_at(it, "d", "d0");
	cesium_iter_next(it);
	expect_iter_at(it, "f", "f0");
	cesium_iter_next(it);
	expect_iter_end(it);
	cesium_iter_free(it);

	check_ok(cesium_iter_new(f->db, 0, &it), "iter_new");
	cesium_iter_seek_first(it);
	expect_iter_at(it, "a", "new");
	cesium_iter_next(it);
	expect_iter_at(it, "c", "new");
	cesium_iter_next(it);
	expect_iter_at(it, "d", "d1");
	cesium_iter_next(it);
	expect_iter_at(it, "e", "new");
	cesium_iter_next(it);
	expect_iter_end(it);
	cesium_iter_free(it);
}

/* An iterator created before cesium_flush and cesium_compact keeps
 * returning its snapshot while (and after) the files under it change. */
static void test_iter_survives_flush_and_compact(void **state)
{
	struct test_fx *f = *state;
	char k[32], v[96];
	f->db = open_db(f->dir, NULL);
	fill_keys(f->db, 3000, 1, 0);
	check_ok(cesium_flush(f->db), "flush");
	fill_keys(f->db, 3000, 2, 1); /* memtable overwrites half */
	cesium_iter *it = NULL;
	check_ok(cesium_iter_new(f->db, 0, &it), "iter_new");
	cesium_iter_seek_first(it);
	unsigned i = 0;
	for (; i < 1000; i++, cesium_iter_next(it)) {
		keyname(k, sizeof(k), i);
		valname(v, sizeof(v), i, i % 2 == 0 ? 1 : 0);
		expect_iter_at(it, k, v);
	}
	/* Change everything under the iterator. */
	fill_keys(f->db, 3000, 1, 2);
	for (unsigned j = 0; j < 3000; j += 5) {
		keyname(k, sizeof(k), j);
		check_ok(cesium_delete(f->db, k, strlen(k)), "delete");
	}
	check_ok(cesium_flush(f->db), "flush");
	for (; i < 2000; i++, cesium_iter_next(it)) {
		keyname(k, sizeof(k), i);
		valname(v, sizeof(v), i, i % 2 == 0 ? 1 : 0);
		expect_iter_at(it, k, v);
	}
	check_ok(cesium_compact(f->db), "compact");
	for (; i < 3000; i++, cesium_iter_next(it)) {
		keyname(k, sizeof(k), i);
		valname(v, sizeof(v), i, i % 2 == 0 ? 1 : 0);
		expect_iter_at(it, k, v);
	}
	expect_iter_end(it);
	/* Seeking back re-reads the pinned snapshot, not the new files. */
	cesium_iter_seek(it, "key000005", 9);
	expect_iter_at(it, "key000005", "value-5-gen0-00005");
	cesium_iter_free(it);
	expect_missing(f->db, 0, "key000005");
	expect_val(f->db, 0, "key000006", "value-6-gen2-000006");
}

/* Flushed data is read from segments after reopening, mixed with newer
 * writes that are only in the log. */
static void test_flush_then_reopen(void **state)
{
	struct test_fx *f = *state;
	char k[32], v[96];
	f->db = open_db(f->dir, NULL);
	fill_keys(f->db, 2000, 1, 0);
	check_ok(cesium_flush(f->db), "flush");
	fill_keys(f->db, 2000, 4, 1);
	for (unsigned i = 1; i < 2000; i += 4) {
		keyname(k, sizeof(k), i);
		check_ok(cesium_delete(f->db, k, strlen(k)), "delete");
	}
	reopen(f, NULL);
	for (unsigned i = 0; i < 2000; i++) {
		keyname(k, sizeof(k), i);
		if (i % 4 == 1) {
			expect_missing(f->db, 0, k);
			continue;
		}
		valname(v, sizeof(v), i, i % 4 == 0 ? 1 : 0);
		expect_val(f->db, 0, k, v);
	}
	check_ok(cesium_flush(f->db), "flush empty-ish");
	check_ok(cesium_flush(f->db), "flush twice");
	reopen(f, NULL);
	expect_val(f->db, 0, "key000004", "value-4-gen1-0004");
	expect_missing(f->db, 0, "key000005");
}

/* After cesium_compact every live key is readable with its newest value
 * and no deleted key comes back, before and after reopening. */
static void test_compact_keeps_all_data(void **state)
{
	struct test_fx *f = *state;
	char k[32], v[96];
	f->db = open_db(f->dir, NULL);
	for (unsigned gen = 0; gen < 4; gen++) {
		fill_keys(f->db, 5000, gen + 1, gen);
		for (unsigned i = gen; i < 5000; i += 7) {
			keyname(k, sizeof(k), i);
			check_ok(cesium_delete(f->db, k, strlen(k)), "delete");
		}
		check_ok(cesium_flush(f->db), "flush");
	}
	fill_keys(f->db, 5000, 11, 4); /* left in the memtable */
	check_ok(cesium_compact(f->db), "compact");
	for (int round = 0; round < 2; round++) {
		unsigned live = 0;
		for (unsigned i = 0; i < 5000; i++) {
			/* Replay the writes above for key i to find its fate. */
			int gen = -1;
			for (unsigned g = 0; g < 4; g++) {
				if (i % (g + 1) == 0)
					gen = (int)g;
				if (i >= g && (i - g) % 7 == 0)
					gen = -1;
			}
			if (i % 11 == 0)
				gen = 4;
			keyname(k, sizeof(k), i);
			if (gen < 0) {
				expect_missing(f->db, 0, k);
			} else {
				valname(v, sizeof(v), i, (unsigned)gen);
				expect_val(f->db, 0, k, v);
				live++;
			}
		}
		cesium_iter *it = NULL;
		check_ok(cesium_iter_new(f->db, 0, &it), "iter_new");
		unsigned n = 0;
		for (cesium_iter_seek_first(it); cesium_iter_valid(it); cesium_iter_next(it))
			n++;
		assert_int_equal(cesium_iter_status(it), 0);
		cesium_iter_free(it);
		assert_int_equal(n, live);
		reopen(f, NULL);
	}
}

/* A 1 MiB value and a key of exactly CESIUM_MAX_KEY_SIZE bytes round-trip
 * through memtable, segment and reopen; one byte more is refused. */
static void test_large_value_and_max_key(void **state)
{
	struct test_fx *f = *state;
	size_t vlen = 1u << 20;
	unsigned char *big = malloc(vlen);
	char *key = malloc(CESIUM_MAX_KEY_SIZE + 1);
	assert_non_null(big);
	assert_non_null(key);
	uint64_t s = 12345;
	for (size_t i = 0; i < vlen; i++)
		big[i] = (unsigned char)(test_rand(&s) >> 56);
	for (size_t i = 0; i < CESIUM_MAX_KEY_SIZE + 1; i++)
		key[i] = (char)('a' + i % 26);
	f->db = open_db(f->dir, NULL);
	check_ok(cesium_put(f->db, "big", 3, big, vlen), "put 1MiB");
	check_ok(cesium_put(f->db, key, CESIUM_MAX_KEY_SIZE, "maxkey", 6), "put max key");
	assert_int_equal(cesium_put(f->db, key, CESIUM_MAX_KEY_SIZE + 1, "x", 1), CESIUM_EINVAL);
	assert_true(cesium_errmsg()[0] != '\0');
	for (int round = 0; round < 3; round++) {
		void *v = NULL;
		size_t vl = 0;
		check_ok(cesium_get(f->db, "big", 3, &v, &vl), "get 1MiB");
		assert_int_equal(vl, vlen);
		assert_memory_equal(v, big, vlen);
		cesium_free(v);
		check_ok(cesium_get(f->db, key, CESIUM_MAX_KEY_SIZE, &v, &vl), "get max key");
		assert_int_equal(vl, 6);
		assert_memory_equal(v, "maxkey", 6);
		cesium_free(v);
		/* A prefix of the long key is another key. */
		assert_int_equal(cesium_get(f->db, key, CESIUM_MAX_KEY_SIZE - 1, &v, &vl),
		                 CESIUM_ENOTFOUND);
		cesium_iter *it = NULL;
		check_ok(cesium_iter_new(f->db, 0, &it), "iter_new");
		cesium_iter_seek(it, key, CESIUM_MAX_KEY_SIZE);
		assert_true(cesium_iter_valid(it));
		size_t kl = 0;
		const void *ik = cesium_iter_key(it, &kl);
		assert_int_equal(kl, CESIUM_MAX_KEY_SIZE);
		assert_memory_equal(ik, key, kl);
		cesium_iter_next(it);
		expect_iter_at(it, "big", NULL);
		size_t ivl = 0;
		const void *iv = cesium_iter_value(it, &ivl);
		assert_int_equal(ivl, vlen);
		assert_memory_equal(iv, big, vlen);
		cesium_iter_free(it);
		if (round == 0)
			check_ok(cesium_flush(f->db), "flush");
		else if (round == 1)
			reopen(f, NULL);
	}
	free(big);
	free(key);
}

/* Parses "123", "64KiB", "1MiB", "2GiB" into bytes; -1 on anything else. */
static long long parse_size(const char *s)
{
	char *end = NULL;
	errno = 0;
	long long n = strtoll(s, &end, 10);
	if (errno || end == s)
		return -1;
	while (*end == ' ')
		end++;
	if (*end == '\0' || strcmp(end, "B") == 0)
		return n;
	if (strcmp(end, "KiB") == 0 || strcmp(end, "K") == 0)
		return n << 10;
	if (strcmp(end, "MiB") == 0 || strcmp(end, "M") == 0)
		return n << 20;
	if (strcmp(end, "GiB") == 0 || strcmp(end, "G") == 0)
		return n << 30;
	return -1;
}

static void expect_size_opt(const cesium_options *o, const char *name, long long want)
{
	char buf[64];
	check_ok(cesium_options_get(o, name, buf, sizeof(buf)), name);
	if (parse_size(buf) != want)
		print_error("option %s reads back as '%s', want %lld bytes\n", name, buf, want);
	assert_true(parse_size(buf) == want);
}

static bool bool_text(const char *s, bool *out)
{
	if (strcmp(s, "true") == 0 || strcmp(s, "1") == 0)
		*out = true;
	else if (strcmp(s, "false") == 0 || strcmp(s, "0") == 0)
		*out = false;
	else
		return false;
	return true;
}

static void expect_bool_opt(const cesium_options *o, const char *name, bool want)
{
	char buf[64];
	bool got = !want;
	check_ok(cesium_options_get(o, name, buf, sizeof(buf)), name);
	assert_true(bool_text(buf, &got));
	assert_true(got == want);
}

/* Every documented option can be set and read back, defaults included. */
static void test_options_round_trip(void **state)
{
	(void)state;
	cesium_options *o = NULL;
	char buf[64];
	check_ok(cesium_options_new(&o), "options_new");
	expect_bool_opt(o, "create_if_missing", true);
	expect_bool_opt(o, "error_if_exists", false);
	expect_bool_opt(o, "sync_writes", false);
	check_ok(cesium_options_set(o, "memtable_size", "64KiB"), "set");
	expect_size_opt(o, "memtable_size", 64 << 10);
	check_ok(cesium_options_set(o, "memtable_size", "3MiB"), "set");
	expect_size_opt(o, "memtable_size", 3 << 20);
	check_ok(cesium_options_set(o, "block_cache_size", "1GiB"), "set");
	expect_size_opt(o, "block_cache_size", 1LL << 30);
	check_ok(cesium_options_set(o, "block_size", "8192"), "set");
	expect_size_opt(o, "block_size", 8192);
	check_ok(cesium_options_set(o, "max_memtables", "3"), "set");
	check_ok(cesium_options_get(o, "max_memtables", buf, sizeof(buf)), "get");
	assert_string_equal(buf, "3");
	check_ok(cesium_options_set(o, "bloom_bits_per_key", "12"), "set");
	check_ok(cesium_options_get(o, "bloom_bits_per_key", buf, sizeof(buf)), "get");
	assert_string_equal(buf, "12");
	check_ok(cesium_options_set(o, "compaction_workers", "2"), "set");
	check_ok(cesium_options_get(o, "compaction_workers", buf, sizeof(buf)), "get");
	assert_string_equal(buf, "2");
	check_ok(cesium_options_set(o, "l0_slowdown_trigger", "9"), "set");
	check_ok(cesium_options_get(o, "l0_slowdown_trigger", buf, sizeof(buf)), "get");
	assert_string_equal(buf, "9");
	check_ok(cesium_options_set(o, "l0_stop_trigger", "21"), "set");
	check_ok(cesium_options_get(o, "l0_stop_trigger", buf, sizeof(buf)), "get");
	assert_string_equal(buf, "21");
	check_ok(cesium_options_set(o, "compression", "zstd"), "set");
	check_ok(cesium_options_get(o, "compression", buf, sizeof(buf)), "get");
	assert_string_equal(buf, "zstd");
	check_ok(cesium_options_set(o, "compression", "none"), "set");
	check_ok(cesium_options_get(o, "compression", buf, sizeof(buf)), "get");
	assert_string_equal(buf, "none");
	check_ok(cesium_options_set(o, "sync_writes", "true"), "set");
	expect_bool_opt(o, "sync_writes", true);
	check_ok(cesium_options_set(o, "create_if_missing", "0"), "set");
	expect_bool_opt(o, "create_if_missing", false);
	check_ok(cesium_options_set(o, "error_if_exists", "1"), "set");
	expect_bool_opt(o, "error_if_exists", true);
	assert_int_equal(cesium_options_get(o, "no_such_option", buf, sizeof(buf)), CESIUM_EINVAL);
	cesium_options_free(o);
}

static cesium_options *make_opts(const char *const *kv)
{
	cesium_options *o = NULL;
	check_ok(cesium_options_new(&o), "options_new");
	for (; kv[0]; kv += 2) {
		int rc = cesium_options_set(o, kv[0], kv[1]);
		if (rc)
			print_error("set %s=%s: %s\n", kv[0], kv[1], cesium_errmsg());
		assert_int_equal(rc, 0);
	}
	return o;
}

#define CHANGED_N 3000

/* Checks every key of the model (gen[i] < 0: deleted) by get, and the
 * whole namespace by one scan. */
static void expect_model(cesium_db *db, const int *gen, const char *when)
{
	char k[32], v[96];
	unsigned live = 0;
	for (unsigned i = 0; i < CHANGED_N; i++) {
		keyname(k, sizeof(k), i);
		if (gen[i] < 0) {
			expect_missing(db, 0, k);
			continue;
		}
		valname(v, sizeof(v), i, (unsigned)gen[i]);
		expect_val(db, 0, k, v);
		live++;
	}
	cesium_iter *it = NULL;
	check_ok(cesium_iter_new(db, 0, &it), "iter_new");
	unsigned seen = 0;
	for (cesium_iter_seek_first(it); cesium_iter_valid(it); cesium_iter_next(it))
		seen++;
	if (seen != live)
		print_error("%s: scan saw %u keys, the model holds %u\n", when, seen, live);
	assert_int_equal(cesium_iter_status(it), 0);
	assert_int_equal(seen, live);
	cesium_iter_free(it);
}

/* A database reopens with every option a user may change between opens
 * changed at each open (memtable and block sizes, cache on and off, bloom
 * filters 10 -> 0 -> 20 bits, compression and zstd level, level shape and
 * file-size multipliers, triggers, workers, sync_writes, WAL reservation),
 * and every write made under one set reads back under the next, through
 * flushes, compactions, deletes and WAL replay. */
static void test_reopen_with_changed_options(void **state)
{
	struct test_fx *f = *state;
	char k[32], v[96];
	/* Name, value pairs read best a few to a line. */
	/* clang-format off */
	static const char *const phase0[] = {
	    "memtable_size", "64KiB", "max_memtables", "2", "block_size", "4KiB",
	    "block_cache_size", "256KiB", "bloom_bits_per_key", "10", "compression", "none",
	    "zstd_level", "3", "compaction_workers", "1", "l0_compaction_trigger", "2",
	    "l0_slowdown_trigger", "4", "l0_stop_trigger", "8", "sync_writes", "false",
	    "target_file_size", "64KiB", "target_file_size_multiplier", "2",
	    "level_size_multiplier", "4", "max_bytes_for_level_base", "1MiB",
	    "wal_prealloc_size", "64KiB", NULL};
	static const char *const phase1[] = {
	    "memtable_size", "128KiB", "max_memtables", "1", "block_size", "1KiB",
	    "block_cache_size", "0", "bloom_bits_per_key", "0", "compression", "zstd",
	    "zstd_level", "1", "compaction_workers", "2", "l0_compaction_trigger", "1",
	    "l0_slowdown_trigger", "2", "l0_stop_trigger", "3", "sync_writes", "true",
	    "target_file_size", "128KiB", "target_file_size_multiplier", "1",
	    "level_size_multiplier", "2", "max_bytes_for_level_base", "2MiB",
	    "wal_prealloc_size", "1MiB", NULL};
	static const char *const phase2[] = {
	    "memtable_size", "4MiB", "max_memtables", "8", "block_size", "16KiB",
	    "block_cache_size", "8MiB", "bloom_bits_per_key", "20", "compression", "zstd",
	    "zstd_level", "19", "compaction_workers", "4", "l0_compaction_trigger", "8",
	    "l0_slowdown_trigger", "16", "l0_stop_trigger", "32", "sync_writes", "false",
	    "target_file_size", "1MiB", "target_file_size_multiplier", "4",
	    "level_size_multiplier", "10", "max_bytes_for_level_base", "16MiB",
	    "wal_prealloc_size", "4MiB", NULL};
	static const char *const phase3[] = {
	    "memtable_size", "64KiB", "max_memtables", "3", "block_size", "512",
	    "block_cache_size", "64KiB", "bloom_bits_per_key", "32", "compression", "none",
	    "zstd_level", "19", "compaction_workers", "1", "l0_compaction_trigger", "3",
	    "l0_slowdown_trigger", "3", "l0_stop_trigger", "6", "sync_writes", "false",
	    "target_file_size", "256KiB", "target_file_size_multiplier", "16",
	    "level_size_multiplier", "100", "max_bytes_for_level_base", "1MiB",
	    "wal_prealloc_size", "128KiB", NULL};
	/* clang-format on */
	static const char *const *const phases[] = {phase0, phase1, phase2, phase3, NULL};
	/* sync_writes costs an fdatasync per write: fewer writes there. */
	static const unsigned step[] = {1, 13, 3, 2, 5};
	static int gen[CHANGED_N];
	for (unsigned i = 0; i < CHANGED_N; i++)
		gen[i] = -1;
	f->db = NULL;
	for (unsigned p = 0; p <= 4; p++) {
		cesium_options *o = phases[p] ? make_opts(phases[p]) : NULL;
		char when[64];
		if (f->db)
			reopen(f, o);
		else
			f->db = open_db(f->dir, o);
		snprintf(when, sizeof(when), "phase %u after reopen", p);
		expect_model(f->db, gen, when);
		for (unsigned i = p % step[p]; i < CHANGED_N; i += step[p]) {
			keyname(k, sizeof(k), i);
			valname(v, sizeof(v), i, p);
			put_s(f->db, 0, k, v);
			gen[i] = (int)p;
		}
		for (unsigned i = p; i < CHANGED_N; i += 97) {
			keyname(k, sizeof(k), i);
			check_ok(cesium_delete(f->db, k, strlen(k)), "delete");
			gen[i] = -1;
		}
		snprintf(when, sizeof(when), "phase %u after writes", p);
		expect_model(f->db, gen, when);
		check_ok(cesium_flush(f->db), "flush");
		if (p % 2 == 1)
			check_ok(cesium_compact(f->db), "compact");
		snprintf(when, sizeof(when), "phase %u after flush", p);
		expect_model(f->db, gen, when);
		/* Left in the WAL: the next open replays it under other options. */
		for (unsigned i = p + 1; i < CHANGED_N; i += 50) {
			keyname(k, sizeof(k), i);
			valname(v, sizeof(v), i, p + 10);
			put_s(f->db, 0, k, v);
			gen[i] = (int)p + 10;
		}
		cesium_options_free(o);
	}
	reopen(f, NULL);
	expect_model(f->db, gen, "final reopen");
}

static size_t count_wals(const char *dir)
{
	size_t n = 0;
	DIR *d = opendir(dir);
	assert_non_null(d);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		size_t l = strlen(e->d_name);
		if (l > 4 && strcmp(e->d_name + l - 4, ".wal") == 0)
			n++;
	}
	closedir(d);
	return n;
}

/* Opening and closing without writing leaves no trail of empty WALs: the
 * log an open finds empty is retired at that open. */
static void test_reopen_without_writes_keeps_one_wal(void **state)
{
	struct test_fx *f = *state;
	for (unsigned i = 0; i < 10; i++) {
		f->db = open_db(f->dir, NULL);
		check_ok(cesium_close(f->db), "close");
		f->db = NULL;
	}
	size_t n = count_wals(f->dir);
	print_message("%zu WAL(s) after 10 open/close cycles\n", n);
	assert_true(n <= 1);
}

/* Writes keep surviving reopens and a process crash while WALs are
 * retired, and once the data is flushed the WALs stop piling up. */
static void test_wal_retirement_keeps_written_data(void **state)
{
	struct test_fx *f = *state;
	char k[32], v[96];
	for (unsigned g = 0; g < 4; g++) {
		f->db = open_db(f->dir, NULL);
		for (unsigned i = 0; i < 4; i++) /* the earlier rounds, recovered */
			for (unsigned j = i; j < 300; j += 4) {
				if (i >= g)
					break;
				keyname(k, sizeof(k), j);
				valname(v, sizeof(v), j, i);
				expect_val(f->db, 0, k, v);
			}
		for (unsigned j = g; j < 300; j += 4) {
			keyname(k, sizeof(k), j);
			valname(v, sizeof(v), j, g);
			put_s(f->db, 0, k, v);
		}
		check_ok(cesium_close(f->db), "close");
		f->db = NULL;
	}
	/* A child writes and is killed without closing. */
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		cesium_db *db = NULL;
		if (cesium_open(f->dir, NULL, &db) != 0)
			_exit(1);
		for (unsigned j = 300; j < 600; j++) {
			keyname(k, sizeof(k), j);
			valname(v, sizeof(v), j, 9);
			if (cesium_put(db, k, strlen(k), v, strlen(v)) != 0)
				_exit(1);
		}
		kill(getpid(), SIGKILL);
		_exit(1);
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	for (unsigned round = 0; round < 4; round++) {
		f->db = open_db(f->dir, NULL);
		for (unsigned j = 0; j < 600; j++) {
			keyname(k, sizeof(k), j);
			valname(v, sizeof(v), j, j < 300 ? j % 4 : 9);
			expect_val(f->db, 0, k, v);
		}
		check_ok(cesium_close(f->db), "close");
		f->db = NULL;
	}
	size_t n = count_wals(f->dir);
	print_message("%zu WAL(s) after the crash and 4 reopens\n", n);
	assert_true(n <= 1);
}

/* An iterator's exclusive upper bound keeps it out of segments that lie
 * wholly beyond the bound: a damaged segment there does not fail a bounded
 * scan, while an unbounded one reports the damage. */
static void test_iter_bound_skips_segments_beyond_it(void **state)
{
	struct test_fx *f = *state;
	char k[32], v[96];
	static const char *const kv[] = {"compression", "none", "l0_compaction_trigger", "8",
	                                 "l0_slowdown_trigger", "8", "l0_stop_trigger", "12",
	                                 NULL};
	cesium_options *o = make_opts(kv);
	f->db = open_db(f->dir, o);
	for (unsigned i = 0; i < 100; i++) {
		snprintf(k, sizeof(k), "a%03u", i);
		snprintf(v, sizeof(v), "low-value-%03u", i);
		put_s(f->db, 0, k, v);
	}
	check_ok(cesium_flush(f->db), "flush low");
	for (unsigned i = 0; i < 100; i++) {
		snprintf(k, sizeof(k), "z%03u", i);
		snprintf(v, sizeof(v), "HIGH-VALUE-%03u", i);
		put_s(f->db, 0, k, v);
	}
	check_ok(cesium_flush(f->db), "flush high");
	check_ok(cesium_close(f->db), "close");
	f->db = NULL;

	/* Find the segment holding the high keys' first value and flip a byte
	 * of it: the first data block, which any scan of the file reads. */
	bool flipped = false;
	DIR *d = opendir(f->dir);
	assert_non_null(d);
	struct dirent *e;
	while (!flipped && (e = readdir(d)) != NULL) {
		size_t l = strlen(e->d_name);
		if (l < 4 || strcmp(e->d_name + l - 4, ".seg") != 0)
			continue;
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", f->dir, e->d_name);
		int fd = open(path, O_RDWR);
		assert_true(fd >= 0);
		off_t size = lseek(fd, 0, SEEK_END);
		assert_true(size > 0);
		char *buf = malloc((size_t)size);
		assert_non_null(buf);
		assert_int_equal(pread(fd, buf, (size_t)size, 0), size);
		/* The test needs the two ranges in separate segments. */
		assert_false(memmem(buf, (size_t)size, "HIGH-VALUE", 10) &&
		             memmem(buf, (size_t)size, "low-value", 9));
		char *hit = memmem(buf, (size_t)size, "HIGH-VALUE-000", 14);
		if (hit) {
			char c = (char)(hit[0] ^ 0x20);
			assert_int_equal(pwrite(fd, &c, 1, hit - buf), 1);
			flipped = true;
			print_message("flipped a byte of %s at offset %td\n", e->d_name, hit - buf);
		}
		free(buf);
		close(fd);
	}
	closedir(d);
	assert_true(flipped);

	f->db = open_db(f->dir, o);
	cesium_iter *it = NULL;
	check_ok(cesium_iter_new(f->db, 0, &it), "iter_new");
	check_ok(cesium_iter_set_upper_bound(it, "m", 1), "set bound");
	unsigned n = 0;
	for (cesium_iter_seek_first(it); cesium_iter_valid(it); cesium_iter_next(it), n++) {
		snprintf(k, sizeof(k), "a%03u", n);
		snprintf(v, sizeof(v), "low-value-%03u", n);
		expect_iter_at(it, k, v);
	}
	if (cesium_iter_status(it) != 0)
		print_error("bounded scan: %s: %s\n", cesium_strerror(cesium_iter_status(it)),
		            cesium_errmsg());
	assert_int_equal(cesium_iter_status(it), 0);
	assert_int_equal(n, 100);
	cesium_iter_free(it);

	check_ok(cesium_iter_new(f->db, 0, &it), "iter_new");
	n = 0;
	for (cesium_iter_seek_first(it); cesium_iter_valid(it); cesium_iter_next(it))
		n++;
	print_message("unbounded scan stopped after %u keys: %s\n", n, cesium_errmsg());
	assert_int_equal(cesium_iter_status(it), CESIUM_ECORRUPT);
	assert_true(n < 200);
	cesium_iter_free(it);
	cesium_options_free(o);
}

/* cesium_stats returns non-empty "name value" lines. */
static void test_stats_returns_text(void **state)
{
	struct test_fx *f = *state;
	f->db = open_db(f->dir, NULL);
	fill_keys(f->db, 100, 1, 0);
	check_ok(cesium_flush(f->db), "flush");
	char *s = NULL;
	check_ok(cesium_stats(f->db, &s), "stats");
	assert_non_null(s);
	assert_true(strlen(s) > 0);
	assert_non_null(strchr(s, ' '));
	assert_non_null(strchr(s, '\n'));
	cesium_free(s);
}

/* A second handle on an open database in this process is refused. */
static void test_second_open_in_process_is_busy(void **state)
{
	struct test_fx *f = *state;
	f->db = open_db(f->dir, NULL);
	cesium_db *db2 = NULL;
	int rc = cesium_open(f->dir, NULL, &db2);
	assert_int_equal(rc, CESIUM_EBUSY);
	assert_null(db2);
	assert_true(cesium_errmsg()[0] != '\0');
	/* The first handle is unharmed. */
	put_s(f->db, 0, "k", "v");
	expect_val(f->db, 0, "k", "v");
	/* Once closed, the directory can be opened again. */
	reopen(f, NULL);
	expect_val(f->db, 0, "k", "v");
}

/* Another process cannot open a database this process holds. */
static void test_second_open_from_child_is_busy(void **state)
{
	struct test_fx *f = *state;
	f->db = open_db(f->dir, NULL);
	put_s(f->db, 0, "k", "v");
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		cesium_db *db2 = NULL;
		int rc = cesium_open(f->dir, NULL, &db2);
		if (rc != CESIUM_EBUSY)
			fprintf(stderr, "child: open returned %d (%s) %s\n", rc,
			        cesium_strerror(rc), cesium_errmsg());
		_exit(rc == CESIUM_EBUSY && cesium_errmsg()[0] != '\0' ? 0 : 1);
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	expect_val(f->db, 0, "k", "v");
}

/* create_if_missing=false on a missing directory fails and creates nothing. */
static void test_missing_db_without_create_fails(void **state)
{
	struct test_fx *f = *state;
	char path[4096];
	snprintf(path, sizeof(path), "%s/not-there", f->dir);
	static const char *const kv[] = {"create_if_missing", "false", NULL};
	cesium_options *o = make_opts(kv);
	cesium_db *db = NULL;
	int rc = cesium_open(path, o, &db);
	assert_true(rc < 0);
	assert_null(db);
	assert_true(cesium_errmsg()[0] != '\0');
	assert_int_equal(access(path, F_OK), -1);
	cesium_options_free(o);
}

/* error_if_exists=true on an existing database fails and leaves it intact. */
static void test_existing_db_with_error_if_exists_fails(void **state)
{
	struct test_fx *f = *state;
	f->db = open_db(f->dir, NULL);
	put_s(f->db, 0, "k", "v");
	check_ok(cesium_close(f->db), "close");
	f->db = NULL;
	static const char *const kv[] = {"error_if_exists", "true", NULL};
	cesium_options *o = make_opts(kv);
	cesium_db *db = NULL;
	int rc = cesium_open(f->dir, o, &db);
	assert_true(rc < 0);
	assert_null(db);
	assert_true(cesium_errmsg()[0] != '\0');
	cesium_options_free(o);
	f->db = open_db(f->dir, NULL);
	expect_val(f->db, 0, "k", "v");
}

/* A path that is a regular file is not a database: a clear error. */
static void test_regular_file_path_is_rejected(void **state)
{
	struct test_fx *f = *state;
	char path[4096];
	snprintf(path, sizeof(path), "%s/plain-file", f->dir);
	int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "hello\n", 6), 6);
	close(fd);
	cesium_db *db = NULL;
	int rc = cesium_open(path, NULL, &db);
	if (rc != CESIUM_EINVAL)
		print_message("open of a regular file: %d (%s): %s\n", rc, cesium_strerror(rc),
		              cesium_errmsg());
	assert_true(rc < 0 && rc != CESIUM_ENOTFOUND);
	assert_null(db);
	assert_true(cesium_errmsg()[0] != '\0');
}

int main(void)
{
	test_require_io_uring();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_put_get_delete_roundtrip, fx_setup, test_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_data_survives_close_and_reopen, fx_setup,
	                                    test_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_batch_applies_all_or_nothing, fx_setup,
	                                    test_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_namespaces_are_separate, fx_setup, test_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_empty_value_is_a_value, fx_setup, test_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_iter_seek_and_next, fx_setup, test_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_iter_upper_bound, fx_setup, test_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_iter_snapshot_ignores_later_writes, fx_setup,
	                                    test_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_iter_survives_flush_and_compact, fx_setup,
	                                    test_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_flush_then_reopen, fx_setup, test_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_compact_keeps_all_data, fx_setup, test_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_large_value_and_max_key, fx_setup, test_fx_teardown),
	    cmocka_unit_test(test_options_round_trip),
	    cmocka_unit_test_setup_teardown(test_reopen_with_changed_options, fx_setup,
	                                    test_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_reopen_without_writes_keeps_one_wal, fx_setup,
	                                    test_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_wal_retirement_keeps_written_data, fx_setup,
	                                    test_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_iter_bound_skips_segments_beyond_it, fx_setup,
	                                    test_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_stats_returns_text, fx_setup, test_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_second_open_in_process_is_busy, fx_setup,
	                                    test_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_second_open_from_child_is_busy, fx_setup,
	                                    test_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_missing_db_without_create_fails, fx_setup,
	                                    test_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_existing_db_with_error_if_exists_fails, fx_setup,
	                                    test_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_regular_file_path_is_rejected, fx_setup,
	                                    test_fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
