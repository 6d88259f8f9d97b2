/* Unit tests for compaction/scheduler, through a real database: version
 * edits from flushes and compactions accumulate in the MANIFEST and a
 * reopen rebuilds the same version; a failed MANIFEST write or sync fails
 * the flush or compaction without changing the version, and the reopen
 * recovers. */
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
#include "error.h"
#include "fault.h"
#include "test_db.h"
#include "test_util.h"

/* ---- helpers ---------------------------------------------------------- */

/* These tests compare exact shapes across reopens: background compaction
 * would move segments while they look. */
#define NO_AUTO_COMPACTION                                                                       \
	"l0_compaction_trigger", "1000", "l0_slowdown_trigger", "1000", "l0_stop_trigger", "1000"

static int count_manifests(const char *dir)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (strncmp(e->d_name, "MANIFEST-", 9) == 0)
			n++;
	closedir(d);
	return n;
}

struct shape {
	uint64_t segs[8], bytes[8];
};

static void shape_of(cesium_db *db, struct shape *s)
{
	for (int l = 0; l < 8; l++) {
		char name[32];
		snprintf(name, sizeof(name), "level%d_segments", l);
		s->segs[l] = stat_of(db, name);
		snprintf(name, sizeof(name), "level%d_bytes", l);
		s->bytes[l] = stat_of(db, name);
	}
}

static void assert_same_shape(const struct shape *a, const struct shape *b)
{
	for (int l = 0; l < 8; l++) {
		if (a->segs[l] != b->segs[l] || a->bytes[l] != b->bytes[l])
			fprintf(stderr, "level %d: %llu segments / %llu bytes, then %llu / %llu\n",
			        l, (unsigned long long)a->segs[l], (unsigned long long)a->bytes[l],
			        (unsigned long long)b->segs[l], (unsigned long long)b->bytes[l]);
		assert_int_equal(a->segs[l], b->segs[l]);
		assert_int_equal(a->bytes[l], b->bytes[l]);
	}
}

/* Edits of many flushes accumulate in the MANIFEST: a reopen rebuilds the
 * same version, and only the new MANIFEST is left. */
static void test_reopen_after_many_flushes_gives_same_version(void **state)
{
	(void)state;
	char *dir = test_tmpdir("sched");
	cesium_db *db = open_db(dir, NO_AUTO_COMPACTION, NULL);
	struct model m;
	model_init(&m, 3000);
	for (unsigned round = 0; round < 25; round++) {
		for (unsigned i = round; i < 3000; i += 25)
			model_put(db, &m, i, round + 1);
		assert_int_equal(cesium_flush(db), 0);
	}
	struct shape before, after;
	shape_of(db, &before);
	assert_int_equal(before.segs[0], 25);
	assert_int_equal(count_files(dir, "MANIFEST-"), 0); /* a prefix, not a suffix */
	assert_int_equal(cesium_close(db), 0);

	db = open_db(dir, NO_AUTO_COMPACTION, NULL);
	shape_of(db, &after);
	assert_same_shape(&before, &after);
	model_check(db, &m);
	assert_int_equal(count_manifests(dir), 1);
	assert_int_equal(count_files(dir, ".seg"), 25);
	assert_int_equal(cesium_close(db), 0);
	free(m.gen);
	test_rmtree(dir);
	free(dir);
}

/* Flushes, a full compaction and more flushes: a reopen gives the same
 * version, the compacted-away segments and old MANIFESTs are gone. */
static void test_reopen_after_compaction_gives_same_version(void **state)
{
	(void)state;
	char *dir = test_tmpdir("sched");
	cesium_db *db = open_db(dir, NO_AUTO_COMPACTION, NULL);
	struct model m;
	model_init(&m, 3000);
	for (unsigned round = 0; round < 10; round++) {
		for (unsigned i = round; i < 3000; i += 7)
			model_put(db, &m, i, round + 1);
		assert_int_equal(cesium_flush(db), 0);
	}
	assert_int_equal(cesium_compact(db), 0);
	for (unsigned round = 10; round < 13; round++) {
		for (unsigned i = round; i < 3000; i += 5)
			model_put(db, &m, i, round + 1);
		for (unsigned i = round; i < 3000; i += 31)
			model_delete(db, &m, i);
		assert_int_equal(cesium_flush(db), 0);
	}
	struct shape before, after;
	shape_of(db, &before);
	assert_int_equal(before.segs[0], 3);
	assert_int_equal(before.segs[3], 1);
	assert_int_equal(cesium_close(db), 0);

	for (int pass = 0; pass < 2; pass++) {
		db = open_db(dir, NO_AUTO_COMPACTION, NULL);
		shape_of(db, &after);
		assert_same_shape(&before, &after);
		model_check(db, &m);
		assert_int_equal(count_manifests(dir), 1);
		assert_int_equal(count_files(dir, ".seg"), 4);
		assert_int_equal(cesium_close(db), 0);
	}
	free(m.gen);
	test_rmtree(dir);
	free(dir);
}

static void check_manifest_fault(enum io_op op, int err, int want)
{
	char *dir = test_tmpdir("sched");
	cesium_db *db = open_db(dir, NO_AUTO_COMPACTION, NULL);
	struct model m;
	model_init(&m, 2000);
	for (unsigned i = 0; i < 1000; i++)
		model_put(db, &m, i, 1);
	assert_int_equal(cesium_flush(db), 0);
	for (unsigned i = 500; i < 2000; i++)
		model_put(db, &m, i, 2);
	struct file_fault f;
	file_fault_arm(&f, op, "MANIFEST-", err, 1);
	int rc = cesium_flush(db);
	file_fault_disarm(&f);
	fprintf(stderr, "flush with a failing MANIFEST %s: %s (%s)\n", io_op_name(op),
	        cesium_strerror(rc), cesium_errmsg());
	assert_int_equal(atomic_load(&f.failed), 1);
	assert_int_equal(rc, want);
	/* The edit did not happen: the version and the data are as before. */
	assert_int_equal(stat_of(db, "level0_segments"), 1);
	model_check(db, &m);
	/* The MANIFEST may hold a torn record now: nothing more is appended. */
	char k[32], v[128];
	size_t kl = key_of(k, 1), vl = value_of(v, sizeof(v), 1, 9);
	assert_int_not_equal(cesium_put(db, k, kl, v, vl), 0);
	cesium_close(db);

	db = open_db(dir, NO_AUTO_COMPACTION, NULL);
	model_check(db, &m);
	assert_int_equal(cesium_flush(db), 0);
	assert_int_equal(wait_files(dir, ".seg", (int)total_segments(db)), (int)total_segments(db));
	assert_int_equal(count_manifests(dir), 1);
	model_put(db, &m, 1, 9);
	assert_int_equal(cesium_compact(db), 0);
	model_check(db, &m);
	assert_int_equal(cesium_close(db), 0);
	db = open_db(dir, NO_AUTO_COMPACTION, NULL);
	model_check(db, &m);
	assert_int_equal(cesium_close(db), 0);
	free(m.gen);
	test_rmtree(dir);
	free(dir);
}

/* A failed MANIFEST write fails the flush; the reopen recovers every write
 * from the WAL and removes the segment no version lists. */
static void test_manifest_write_failure_fails_flush(void **state)
{
	(void)state;
	check_manifest_fault(IO_OP_WRITE, -EIO, CESIUM_EIO);
}

/* A failed MANIFEST fdatasync fails the flush the same way. */
static void test_manifest_fsync_failure_fails_flush(void **state)
{
	(void)state;
	check_manifest_fault(IO_OP_FSYNC, -EIO, CESIUM_EIO);
}

/* A short MANIFEST write (disk full) fails the flush with CESIUM_ENOSPC and
 * the torn record is discarded at the reopen. */
static void test_manifest_short_write_fails_flush(void **state)
{
	(void)state;
	check_manifest_fault(IO_OP_WRITE, 0, CESIUM_ENOSPC);
}

/* A failed MANIFEST write during a compaction: the compaction fails, its
 * outputs are removed, and the reopen gives the tree as before it. */
static void test_manifest_failure_during_compaction(void **state)
{
	(void)state;
	char *dir = test_tmpdir("sched");
	cesium_db *db = open_db(dir, NO_AUTO_COMPACTION, NULL);
	struct model m;
	model_init(&m, 2000);
	for (unsigned gen = 1; gen <= 3; gen++) {
		for (unsigned i = gen; i < 2000; i += gen)
			model_put(db, &m, i, gen);
		assert_int_equal(cesium_flush(db), 0);
	}
	struct shape before, after;
	shape_of(db, &before);
	struct file_fault f;
	file_fault_arm(&f, IO_OP_WRITE, "MANIFEST-", -EIO, 1);
	int rc = cesium_compact(db);
	file_fault_disarm(&f);
	assert_int_equal(rc, CESIUM_EIO);
	assert_int_equal(stat_of(db, "compaction_failures"), 1);
	shape_of(db, &after);
	assert_same_shape(&before, &after);
	model_check(db, &m);
	/* The failed edit may have reached the disk (a write before a failed
	 * sync): its outputs may stay until the reopen's sweep. */
	assert_true(count_files(dir, ".seg") <= 3 + 1);
	cesium_close(db);
	db = open_db(dir, NO_AUTO_COMPACTION, NULL);
	shape_of(db, &after);
	assert_same_shape(&before, &after);
	model_check(db, &m);
	assert_int_equal(count_files(dir, ".seg"), 3);
	assert_int_equal(cesium_compact(db), 0);
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
	    cmocka_unit_test(test_reopen_after_many_flushes_gives_same_version),
	    cmocka_unit_test(test_reopen_after_compaction_gives_same_version),
	    cmocka_unit_test(test_manifest_write_failure_fails_flush),
	    cmocka_unit_test(test_manifest_fsync_failure_fails_flush),
	    cmocka_unit_test(test_manifest_short_write_fails_flush),
	    cmocka_unit_test(test_manifest_failure_during_compaction),
	};
	test_require_io_uring();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
