/* Unit tests for actors/flush, through a real database: a flush adds one L0
 * segment and retires the WAL that held its data, an empty memtable makes
 * no file, recovered and background-filled memtables are flushed in order. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cesium.h"
#include "db.h"
#include "error.h"
#include "flush.h"
#include "output.h"
#include "fault.h"
#include "test_db.h"
#include "test_util.h"

/* ---- helpers ---------------------------------------------------------- */

/* The names of the *.wal files in dir, as a bitmap of file numbers < 4096. */
static void wal_numbers(const char *dir, bool *out, size_t cap)
{
	memset(out, 0, cap);
	DIR *d = opendir(dir);
	assert_non_null(d);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		unsigned long n;
		char ext[8];
		if (sscanf(e->d_name, "%lu.%7s", &n, ext) == 2 && strcmp(ext, "wal") == 0 &&
		    n < cap)
			out[n] = true;
	}
	closedir(d);
}

static bool wait_gone(const char *dir, unsigned long number)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%06lu.wal", dir, number);
	uint64_t deadline = now_ns() + 5000000000ull;
	while (access(path, F_OK) == 0 && now_ns() < deadline)
		usleep(2000);
	return access(path, F_OK) != 0;
}

/* cesium_flush writes the memtable as one new L0 segment and the WAL that
 * held its data is deleted. */
static void test_flush_adds_one_l0_segment_and_deletes_its_wal(void **state)
{
	(void)state;
	char *dir = test_tmpdir("flush");
	cesium_db *db = open_db(dir, NULL);
	struct model m;
	model_init(&m, 2000);
	for (unsigned i = 0; i < 2000; i++)
		model_put(db, &m, i, 1);
	bool before[4096], after[4096];
	wal_numbers(dir, before, sizeof(before));
	assert_int_equal(count_files(dir, ".wal"), 1);
	assert_int_equal(stat_of(db, "level0_segments"), 0);

	assert_int_equal(cesium_flush(db), 0);
	assert_int_equal(stat_of(db, "level0_segments"), 1);
	assert_int_equal(stat_of(db, "flushes"), 1);
	assert_int_equal(stat_of(db, "sealed_memtables"), 0);
	assert_true(stat_of(db, "level0_bytes") > 2000 * 20);
	assert_int_equal(count_files(dir, ".seg"), 1);
	for (unsigned long n = 0; n < 4096; n++)
		if (before[n])
			assert_true(wait_gone(dir, n));
	wal_numbers(dir, after, sizeof(after));
	assert_int_equal(count_files(dir, ".wal"), 1); /* the new active log */
	model_check(db, &m);

	/* A second flush adds a second segment, newest first for reads. */
	for (unsigned i = 0; i < 2000; i += 2)
		model_put(db, &m, i, 2);
	assert_int_equal(cesium_flush(db), 0);
	assert_int_equal(stat_of(db, "level0_segments"), 2);
	assert_int_equal(count_files(dir, ".seg"), 2);
	for (unsigned long n = 0; n < 4096; n++)
		if (after[n])
			assert_true(wait_gone(dir, n));
	model_check(db, &m);
	assert_int_equal(cesium_close(db), 0);
	free(m.gen);
	test_rmtree(dir);
	free(dir);
}

/* Flushing an empty memtable creates no segment (and no error). */
static void test_flush_of_empty_memtable_creates_no_file(void **state)
{
	(void)state;
	char *dir = test_tmpdir("flush");
	cesium_db *db = open_db(dir, NULL);
	assert_int_equal(cesium_flush(db), 0);
	assert_int_equal(stat_of(db, "level0_segments"), 0);
	assert_int_equal(count_files(dir, ".seg"), 0);
	put_kv(db, 1, 1);
	assert_int_equal(cesium_flush(db), 0);
	assert_int_equal(cesium_flush(db), 0);
	assert_int_equal(cesium_flush(db), 0);
	assert_int_equal(stat_of(db, "level0_segments"), 1);
	assert_int_equal(stat_of(db, "flushes"), 1);
	assert_int_equal(count_files(dir, ".seg"), 1);
	assert_int_equal(cesium_close(db), 0);
	test_rmtree(dir);
	free(dir);
}

/* A memtable of only tombstones is flushed too: the deletes hide the older
 * segment's values, before and after a reopen. */
static void test_flushed_tombstones_hide_older_segments(void **state)
{
	(void)state;
	char *dir = test_tmpdir("flush");
	cesium_db *db = open_db(dir, NULL);
	struct model m;
	model_init(&m, 500);
	for (unsigned i = 0; i < 500; i++)
		model_put(db, &m, i, 1);
	assert_int_equal(cesium_flush(db), 0);
	for (unsigned i = 0; i < 500; i += 3)
		model_delete(db, &m, i);
	assert_int_equal(cesium_flush(db), 0);
	assert_int_equal(stat_of(db, "level0_segments"), 2);
	model_check(db, &m);
	model_check_after_reopen(db, dir, &m);
	free(m.gen);
	test_rmtree(dir);
	free(dir);
}

/* What a reopen replays from the WAL is flushed to L0 and its WAL deleted. */
static void test_recovered_memtable_is_flushed(void **state)
{
	(void)state;
	char *dir = test_tmpdir("flush");
	cesium_db *db = open_db(dir, NULL);
	struct model m;
	model_init(&m, 1000);
	for (unsigned i = 0; i < 1000; i++)
		model_put(db, &m, i, 1);
	bool before[4096];
	wal_numbers(dir, before, sizeof(before));
	assert_int_equal(cesium_close(db), 0);
	db = open_db(dir, NULL);
	model_check(db, &m);
	assert_int_equal(cesium_flush(db), 0); /* waits for the recovered one */
	assert_int_equal(stat_of(db, "level0_segments"), 1);
	assert_int_equal(count_files(dir, ".seg"), 1);
	for (unsigned long n = 0; n < 4096; n++)
		if (before[n])
			assert_true(wait_gone(dir, n));
	model_check(db, &m);
	assert_int_equal(cesium_close(db), 0);
	free(m.gen);
	test_rmtree(dir);
	free(dir);
}

/* Memtables filled by writes (not cesium_flush) are flushed in the
 * background, in order: later values win. */
static void test_background_flushes_keep_newest_values(void **state)
{
	(void)state;
	char *dir = test_tmpdir("flush");
	cesium_db *db = open_db(dir, "memtable_size", "512KiB", "wal_prealloc_size", "1MiB", NULL);
	struct model m;
	model_init(&m, 3000);
	for (unsigned gen = 1; gen <= 6; gen++)
		for (unsigned i = 0; i < 3000; i++)
			model_put(db, &m, i, gen);
	assert_int_equal(cesium_flush(db), 0);
	assert_true(stat_of(db, "flushes") >= 2);
	/* Background compaction may already have merged some of them. */
	assert_true(stat_of(db, "level0_segments") <= stat_of(db, "flushes"));
	model_check(db, &m);
	assert_int_equal(cesium_close(db), 0);
	free(m.gen);
	test_rmtree(dir);
	free(dir);
}

/* A failed fdatasync of the new segment fails the flush (the segment may
 * not be durable, so it must not enter the MANIFEST): the data stays
 * readable, the segment is removed, and a reopen recovers it from the WAL. */
static void test_segment_fsync_failure_fails_flush(void **state)
{
	(void)state;
	char *dir = test_tmpdir("flush");
	cesium_db *db = open_db(dir, NULL);
	struct model m;
	model_init(&m, 1000);
	for (unsigned i = 0; i < 1000; i++)
		model_put(db, &m, i, 1);
	struct file_fault f;
	file_fault_arm(&f, IO_OP_FSYNC, ".seg", -EIO, 1);
	int rc = cesium_flush(db);
	file_fault_disarm(&f);
	assert_int_equal(atomic_load(&f.failed), 1);
	assert_int_equal(rc, CESIUM_EIO);
	assert_int_equal(stat_of(db, "level0_segments"), 0);
	assert_int_equal(count_files(dir, ".seg"), 0);
	model_check(db, &m);
	cesium_close(db);
	db = open_db(dir, NULL);
	model_check(db, &m);
	assert_int_equal(cesium_flush(db), 0);
	assert_int_equal(total_segments(db), 1);
	assert_int_equal(wait_files(dir, ".seg", 1), 1);
	assert_int_equal(cesium_close(db), 0);
	free(m.gen);
	test_rmtree(dir);
	free(dir);
}

#define BIG_KEYS 250000

/* A memtable of many write windows, flushed by cesium_flush. */
static cesium_db *open_with_big_memtable(const char *dir, struct model *m)
{
	cesium_db *db = open_db(dir, "memtable_size", "64MiB", NULL);
	model_init(m, BIG_KEYS);
	for (unsigned i = 0; i < BIG_KEYS; i++)
		model_put(db, m, i, 1);
	return db;
}

/* A flush larger than the write window is not written inside one handler
 * call: after the first window, every further chunk is encoded and
 * submitted from a write completion. */
static void test_large_flush_continues_from_write_completions(void **state)
{
	(void)state;
	char *dir = test_tmpdir("flush");
	struct model m;
	cesium_db *db = open_with_big_memtable(dir, &m);
	uint64_t before = db->flusher->resumed;
	assert_int_equal(cesium_flush(db), 0);
	uint64_t resumed = db->flusher->resumed - before;
	uint64_t bytes = stat_of(db, "flush_bytes");
	fprintf(stderr, "%llu bytes flushed, %llu steps from completions\n",
	        (unsigned long long)bytes, (unsigned long long)resumed);
	assert_true(bytes > 2ull * OUTPUT_WINDOW * OUTPUT_CHUNK);
	assert_true(resumed >= bytes / OUTPUT_CHUNK - OUTPUT_WINDOW);
	assert_int_equal(stat_of(db, "level0_segments"), 1);
	model_check(db, &m);
	model_check_after_reopen(db, dir, &m);
	free(m.gen);
	test_rmtree(dir);
	free(dir);
}

/* A write that fails while later chunks are still being produced fails
 * the flush once every write in flight has landed: the partial segment is
 * removed, the data stays readable, and after a reopen (the failure is a
 * background error) the data is recovered from the WAL and flushes. */
static void test_write_failure_mid_flush_fails_it_cleanly(void **state)
{
	(void)state;
	char *dir = test_tmpdir("flush");
	struct model m;
	cesium_db *db = open_with_big_memtable(dir, &m);
	struct file_fault f;
	file_fault_arm(&f, IO_OP_WRITE, ".seg", -EIO, OUTPUT_WINDOW + 3);
	int rc = cesium_flush(db);
	file_fault_disarm(&f);
	fprintf(stderr, "failed flush: %s (%s)\n", cesium_strerror(rc), cesium_errmsg());
	assert_int_equal(atomic_load(&f.failed), 1);
	assert_int_equal(rc, CESIUM_EIO);
	assert_int_equal(stat_of(db, "level0_segments"), 0);
	assert_int_equal(count_files(dir, ".seg"), 0);
	model_check(db, &m);
	cesium_close(db);
	db = open_db(dir, NULL);
	model_check(db, &m);
	assert_int_equal(cesium_flush(db), 0);
	assert_int_equal(total_segments(db), 1);
	model_check(db, &m);
	assert_int_equal(cesium_close(db), 0);
	free(m.gen);
	test_rmtree(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_flush_adds_one_l0_segment_and_deletes_its_wal),
	    cmocka_unit_test(test_flush_of_empty_memtable_creates_no_file),
	    cmocka_unit_test(test_flushed_tombstones_hide_older_segments),
	    cmocka_unit_test(test_recovered_memtable_is_flushed),
	    cmocka_unit_test(test_background_flushes_keep_newest_values),
	    cmocka_unit_test(test_segment_fsync_failure_fails_flush),
	    cmocka_unit_test(test_large_flush_continues_from_write_completions),
	    cmocka_unit_test(test_write_failure_mid_flush_fails_it_cleanly),
	};
	test_require_io_uring();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
