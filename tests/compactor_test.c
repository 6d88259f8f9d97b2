/* Unit tests for compaction/compactor, through a real database: a full
 * compaction drops shadowed versions and bottom tombstones, keeps what an
 * open iterator needs, cuts outputs at the target size, and a failed input
 * read changes nothing. */
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
#include "compactor.h"
#include "db.h"
#include "error.h"
#include "fault.h"
#include "file.h"
#include "segment.h"
#include "test_db.h"
#include "test_util.h"

/* ---- helpers ---------------------------------------------------------- */

/* Entries and tombstones of the highest-numbered segment in dir (the newest
 * compaction output), read from its properties. */
static void newest_segment_counts(const char *dir, uint64_t *entries, uint64_t *tombstones)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	unsigned long best = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		unsigned long n;
		char ext[8];
		if (sscanf(e->d_name, "%lu.%7s", &n, ext) == 2 && strcmp(ext, "seg") == 0 &&
		    n > best)
			best = n;
	}
	closedir(d);
	assert_true(best > 0);
	char path[512];
	snprintf(path, sizeof(path), "%s/%06lu.seg", dir, best);
	int fd = io_open(path, O_RDONLY, 0);
	assert_true(fd >= 0);
	seg_reader *r = NULL;
	assert_int_equal(seg_reader_open(fd, path, best, NULL, &r), 0);
	*entries = seg_reader_props(r)->entries;
	*tombstones = seg_reader_props(r)->tombstones;
	seg_reader_unref(r);
}

/* A full compaction at the bottom keeps only the newest version of each
 * live key: shadowed versions and tombstones (and what they hide) go. */
static void test_compaction_drops_shadowed_versions_and_tombstones(void **state)
{
	(void)state;
	char *dir = test_tmpdir("compactor");
	cesium_db *db = open_db(dir, NULL);
	struct model m;
	model_init(&m, 1000);
	for (unsigned i = 0; i < 1000; i++)
		model_put(db, &m, i, 1);
	assert_int_equal(cesium_flush(db), 0);
	for (unsigned i = 0; i < 1000; i++)
		model_put(db, &m, i, 2);
	assert_int_equal(cesium_flush(db), 0);
	for (unsigned i = 0; i < 500; i++)
		model_delete(db, &m, i);
	assert_int_equal(cesium_flush(db), 0);
	assert_int_equal(stat_of(db, "level0_segments"), 3);
	assert_int_equal(cesium_compact(db), 0);
	assert_int_equal(stat_of(db, "level0_segments"), 0);
	assert_int_equal(stat_of(db, "level3_segments"), 1);
	assert_int_equal(stat_of(db, "compactions"), 1);
	assert_true(stat_of(db, "compaction_bytes_read") > stat_of(db, "compaction_bytes_written"));
	assert_int_equal(wait_files(dir, ".seg", 1), 1);
	uint64_t entries, tombstones;
	newest_segment_counts(dir, &entries, &tombstones);
	assert_int_equal(entries, 500);
	assert_int_equal(tombstones, 0);
	model_check(db, &m);
	/* Compacting a compacted tree is a no-op. */
	assert_int_equal(cesium_compact(db), 0);
	assert_int_equal(stat_of(db, "compactions"), 1);
	model_check_after_reopen(db, dir, &m);
	free(m.gen);
	test_rmtree(dir);
	free(dir);
}

/* Versions an open iterator still reads survive the compaction (and the
 * tombstones that hide them from newer readers); once it is gone, the next
 * compaction drops them. */
static void test_compaction_keeps_versions_an_open_iterator_needs(void **state)
{
	(void)state;
	char *dir = test_tmpdir("compactor");
	cesium_db *db = open_db(dir, NULL);
	struct model m;
	model_init(&m, 1000);
	for (unsigned i = 0; i < 1000; i++)
		model_put(db, &m, i, 1);
	assert_int_equal(cesium_flush(db), 0);
	cesium_iter *it = NULL;
	assert_int_equal(cesium_iter_new(db, 0, &it), 0);
	struct model old = {.n = m.n, .gen = malloc(m.n * sizeof(unsigned))};
	memcpy(old.gen, m.gen, m.n * sizeof(unsigned));

	for (unsigned i = 0; i < 1000; i++)
		model_put(db, &m, i, 2);
	for (unsigned i = 0; i < 500; i++)
		model_delete(db, &m, i);
	assert_int_equal(cesium_compact(db), 0);
	assert_int_equal(total_segments(db), 1);
	uint64_t entries, tombstones;
	newest_segment_counts(dir, &entries, &tombstones);
	fprintf(stderr, "with a snapshot: %llu entries, %llu tombstones\n",
	        (unsigned long long)entries, (unsigned long long)tombstones);
	/* Needed: v1 of every key (the snapshot), v2 of the 500 live keys,
	 * the 500 tombstones. v2 of a deleted key no reader can see. */
	assert_true(entries >= 2000 && entries <= 2500);
	assert_int_equal(tombstones, 500);
	model_check(db, &m);

	unsigned id = 0;
	for (cesium_iter_seek_first(it); cesium_iter_valid(it); cesium_iter_next(it), id++) {
		char k[32], want[128];
		size_t kl = key_of(k, id), wl = value_of(want, sizeof(want), id, 1);
		size_t gkl, gvl;
		const void *gk = cesium_iter_key(it, &gkl);
		const void *gv = cesium_iter_value(it, &gvl);
		assert_int_equal(gkl, kl);
		assert_memory_equal(gk, k, kl);
		assert_int_equal(gvl, wl);
		assert_memory_equal(gv, want, wl);
	}
	assert_int_equal(cesium_iter_status(it), 0);
	assert_int_equal(id, 1000);
	cesium_iter_free(it);

	/* Without the snapshot, the bottom file's tombstones make the next
	 * full compaction run and drop what only the iterator needed. */
	assert_int_equal(cesium_compact(db), 0);
	assert_int_equal(total_segments(db), 1);
	assert_int_equal(wait_files(dir, ".seg", 1), 1);
	newest_segment_counts(dir, &entries, &tombstones);
	assert_int_equal(entries, 500);
	assert_int_equal(tombstones, 0);
	model_check(db, &m);
	assert_int_equal(cesium_close(db), 0);
	free(old.gen);
	free(m.gen);
	test_rmtree(dir);
	free(dir);
}

/* Outputs are cut at target_file_size into one sorted run at the bottom,
 * and point reads find keys in every output. */
static void test_compaction_splits_outputs_at_target_size(void **state)
{
	(void)state;
	char *dir = test_tmpdir("compactor");
	cesium_db *db =
	    open_db(dir, "target_file_size", "64KiB", "target_file_size_multiplier", "1", NULL);
	struct model m;
	model_init(&m, 6000);
	for (unsigned gen = 1; gen <= 2; gen++) {
		for (unsigned i = gen - 1; i < 6000; i += gen)
			model_put(db, &m, i, gen);
		assert_int_equal(cesium_flush(db), 0);
	}
	assert_int_equal(cesium_compact(db), 0);
	uint64_t n7 = stat_of(db, "level3_segments"); /* the full compaction's level */
	fprintf(stderr, "%llu outputs\n", (unsigned long long)n7);
	assert_true(n7 >= 4);
	assert_int_equal(total_segments(db), n7);
	assert_int_equal(wait_files(dir, ".seg", (int)n7), (int)n7);
	model_check(db, &m);
	model_check_after_reopen(db, dir, &m);
	free(m.gen);
	test_rmtree(dir);
	free(dir);
}

/* A compaction whose input cannot be read fails, changes nothing, and
 * does not poison later compactions. */
static void test_compaction_read_failure_changes_nothing(void **state)
{
	(void)state;
	char *dir = test_tmpdir("compactor");
	cesium_db *db = open_db(dir, "block_cache_size", "0", NULL);
	struct model m;
	model_init(&m, 2000);
	for (unsigned gen = 1; gen <= 2; gen++) {
		for (unsigned i = 0; i < 2000; i += gen)
			model_put(db, &m, i, gen);
		assert_int_equal(cesium_flush(db), 0);
	}
	struct file_fault f;
	file_fault_arm(&f, IO_OP_READ, ".seg", -EIO, 1);
	f.every = true;
	int rc = cesium_compact(db);
	file_fault_disarm(&f);
	fprintf(stderr, "compaction with failing reads: %s (%s)\n", cesium_strerror(rc),
	        cesium_errmsg());
	assert_true(atomic_load(&f.failed) >= 1);
	assert_int_equal(rc, CESIUM_EIO);
	assert_int_equal(stat_of(db, "compaction_failures"), 1);
	assert_int_equal(stat_of(db, "level0_segments"), 2);
	assert_int_equal(count_files(dir, ".seg"), 2);
	model_check(db, &m);
	assert_int_equal(cesium_compact(db), 0);
	assert_int_equal(total_segments(db), 1);
	model_check(db, &m);
	assert_int_equal(cesium_close(db), 0);
	free(m.gen);
	test_rmtree(dir);
	free(dir);
}

/* Input reads the compactors submitted on their rings so far. */
static uint64_t ring_reads(cesium_db *db)
{
	uint64_t n = 0;
	for (size_t i = 0; i < db->ncompactors; i++)
		n += atomic_load_explicit(&db->compactors[i]->ring_reads, memory_order_relaxed);
	return n;
}

/* Two flushed segments of several readahead windows each. */
static cesium_db *open_with_big_inputs(const char *dir, struct model *m)
{
	cesium_db *db = open_db(dir, "block_cache_size", "0", "memtable_size", "64MiB", NULL);
	model_init(m, 100000);
	for (unsigned gen = 1; gen <= 2; gen++) {
		for (unsigned i = gen - 1; i < 100000; i += gen)
			model_put(db, m, i, gen);
		assert_int_equal(cesium_flush(db), 0);
	}
	assert_int_equal(stat_of(db, "level0_segments"), 2);
	return db;
}

/* A compactor reads its inputs with asynchronous reads on its own ring:
 * one per readahead window, so at least input bytes / 2 MiB of them. */
static void test_compaction_reads_inputs_on_its_ring(void **state)
{
	(void)state;
	char *dir = test_tmpdir("compactor");
	struct model m;
	cesium_db *db = open_with_big_inputs(dir, &m);
	uint64_t before = ring_reads(db);
	uint64_t in_bytes = stat_of(db, "level0_bytes");
	assert_int_equal(cesium_compact(db), 0);
	uint64_t reads = ring_reads(db) - before;
	fprintf(stderr, "%llu input bytes, %llu ring reads\n", (unsigned long long)in_bytes,
	        (unsigned long long)reads);
	assert_true(in_bytes > 4 * (2u << 20));
	assert_true(reads >= in_bytes / (2u << 20));
	assert_int_equal(total_segments(db), 1);
	model_check(db, &m);
	assert_int_equal(cesium_close(db), 0);
	free(m.gen);
	test_rmtree(dir);
	free(dir);
}

/* Fails the nth read of one whole readahead window (reader opens read
 * other sizes), with EIO. */
struct window_fault {
	unsigned nth;
	atomic_uint seen, failed;
};

static int window_fault_hook(void *arg, enum io_op op, int fd, const char *path, size_t *len)
{
	struct window_fault *wf = arg;
	(void)fd;
	(void)path;
	if (op != IO_OP_READ || *len != (2u << 20))
		return 0;
	if (atomic_fetch_add(&wf->seen, 1) + 1 != wf->nth)
		return 0;
	atomic_fetch_add(&wf->failed, 1);
	return -EIO;
}

/* An EIO on a prefetched input window, after the merge has consumed the
 * earlier windows, fails the job cleanly: the tree and its files are as
 * before, and the next compaction succeeds. */
static void test_compaction_ring_read_eio_mid_merge_fails_cleanly(void **state)
{
	(void)state;
	char *dir = test_tmpdir("compactor");
	struct model m;
	cesium_db *db = open_with_big_inputs(dir, &m);
	uint64_t before = ring_reads(db);
	/* Full windows 1-4 are both inputs' first windows and their
	 * prefetches; the 5th is a prefetch issued once the merge has
	 * consumed the first input's first window. */
	struct window_fault wf = {.nth = 5};
	io_fault_set(window_fault_hook, &wf);
	int rc = cesium_compact(db);
	io_fault_set(NULL, NULL);
	uint64_t reads = ring_reads(db) - before;
	fprintf(stderr, "failed compaction: %s (%s), %llu ring reads\n", cesium_strerror(rc),
	        cesium_errmsg(), (unsigned long long)reads);
	assert_int_equal(atomic_load(&wf.failed), 1);
	assert_int_equal(rc, CESIUM_EIO);
	assert_true(reads >= 5);
	assert_int_equal(stat_of(db, "compaction_failures"), 1);
	assert_int_equal(stat_of(db, "level0_segments"), 2);
	assert_int_equal(count_files(dir, ".seg"), 2);
	model_check(db, &m);
	assert_int_equal(cesium_compact(db), 0);
	assert_int_equal(total_segments(db), 1);
	model_check(db, &m);
	model_check_after_reopen(db, dir, &m);
	free(m.gen);
	test_rmtree(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_compaction_drops_shadowed_versions_and_tombstones),
	    cmocka_unit_test(test_compaction_keeps_versions_an_open_iterator_needs),
	    cmocka_unit_test(test_compaction_splits_outputs_at_target_size),
	    cmocka_unit_test(test_compaction_read_failure_changes_nothing),
	    cmocka_unit_test(test_compaction_reads_inputs_on_its_ring),
	    cmocka_unit_test(test_compaction_ring_read_eio_mid_merge_fails_cleanly),
	};
	test_require_io_uring();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
