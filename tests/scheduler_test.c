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
#include "cleanup.h"
#include "db.h"
#include "error.h"
#include "fault.h"
#include "reactor.h"
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

/* The model holds, before and after a reopen; then the database and the
 * model are gone. */
static void check_reopen_and_remove(cesium_db *db, char *dir, struct model *m)
{
	model_check(db, m);
	model_check_after_reopen(db, dir, m);
	free(m->gen);
	test_rmtree(dir);
	free(dir);
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

/* Puts id at gen and checks that it reads back: the database is
 * writable. */
static void assert_writable(cesium_db *db, struct model *m, unsigned id, unsigned gen)
{
	model_put(db, m, id, gen);
	char k[32];
	size_t kl = key_of(k, id);
	void *v = NULL;
	size_t vl = 0;
	assert_int_equal(cesium_get(db, k, kl, &v, &vl), 0);
	char want[128];
	size_t wl = value_of(want, sizeof(want), id, gen);
	assert_int_equal(vl, wl);
	assert_memory_equal(v, want, wl);
	cesium_free(v);
}

static void check_manifest_fault(enum io_op op, int err)
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
	/* A new MANIFEST replaced the failed one and the install was tried
	 * again: the flush succeeded after all. */
	assert_int_equal(rc, 0);
	assert_int_equal(stat_of(db, "manifest_failures"), 1);
	assert_int_equal(stat_of(db, "manifest_rolls"), 1);
	assert_int_equal(stat_of(db, "level0_segments"), 2);
	assert_int_equal(stat_of(db, "sealed_memtables"), 0);
	model_check(db, &m);
	/* Still writable, and later edits go to the new MANIFEST. */
	assert_writable(db, &m, 1, 9);
	assert_int_equal(cesium_flush(db), 0);
	assert_int_equal(stat_of(db, "level0_segments"), 3);
	/* The abandoned MANIFEST goes through the cleanup actor. */
	for (int i = 0; i < 500 && count_manifests(dir) != 1; i++)
		usleep(10000);
	assert_int_equal(count_manifests(dir), 1);
	assert_int_equal(cesium_close(db), 0);

	db = open_db(dir, NO_AUTO_COMPACTION, NULL);
	assert_int_equal(stat_of(db, "level0_segments"), 3);
	model_check(db, &m);
	assert_int_equal(count_files(dir, ".seg"), 3);
	assert_int_equal(count_manifests(dir), 1);
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

/* A failed MANIFEST write during a flush install: a new MANIFEST holding
 * the installed version replaces it, the install is retried and succeeds,
 * nothing is lost and the reopen agrees. */
static void test_manifest_write_failure_recovered_in_flush(void **state)
{
	(void)state;
	check_manifest_fault(IO_OP_WRITE, -EIO);
}

/* A failed MANIFEST fdatasync (the record may be on disk) is recovered the
 * same way: the record in the abandoned MANIFEST no longer counts. */
static void test_manifest_fsync_failure_recovered_in_flush(void **state)
{
	(void)state;
	check_manifest_fault(IO_OP_FSYNC, -EIO);
}

/* A short MANIFEST write (disk full) leaves a torn record in a MANIFEST
 * that is abandoned at once: the flush still succeeds. */
static void test_manifest_short_write_recovered_in_flush(void **state)
{
	(void)state;
	check_manifest_fault(IO_OP_WRITE, 0);
}

/* A failed MANIFEST write during a compaction: the compaction fails and is
 * counted, its outputs are removed, the tree is as before, the database
 * stays writable (flushes install), and the reopen sees that tree. */
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
	assert_int_equal(stat_of(db, "compaction_jobs_failed"), 1);
	assert_int_equal(stat_of(db, "manifest_rolls"), 1);
	assert_int_equal(stat_of(db, "inflight_files"), 0);
	shape_of(db, &after);
	assert_same_shape(&before, &after);
	model_check(db, &m);
	/* The new MANIFEST does not name the outputs: they go (through the
	 * cleanup actor). */
	assert_int_equal(wait_files(dir, ".seg", 3), 3);
	/* Writable: a write and a flush that installs a fourth segment. */
	assert_writable(db, &m, 7, 4);
	assert_int_equal(cesium_flush(db), 0);
	before.segs[0]++;
	shape_of(db, &after);
	assert_int_equal(after.segs[0], 4);
	before = after;
	cesium_close(db);
	db = open_db(dir, NO_AUTO_COMPACTION, NULL);
	shape_of(db, &after);
	assert_same_shape(&before, &after);
	model_check(db, &m);
	assert_int_equal(count_files(dir, ".seg"), 4);
	assert_int_equal(count_manifests(dir), 1);
	assert_int_equal(cesium_compact(db), 0);
	assert_int_equal(total_segments(db), 1);
	model_check(db, &m);
	assert_int_equal(cesium_close(db), 0);
	free(m.gen);
	test_rmtree(dir);
	free(dir);
}

/* Every MANIFEST write fails for a while (starting a new MANIFEST fails
 * too): background compactions fail, are counted and backed off, reads
 * and writes go on; once the disk recovers a compaction succeeds and the
 * reopen sees every write. */
static void test_compaction_retried_after_manifest_recovers(void **state)
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
	assert_int_equal(cesium_close(db), 0);
	/* Every MANIFEST write after the open's own one fails, before the
	 * open's first pick can start the L0 job. */
	struct file_fault f;
	file_fault_arm(&f, IO_OP_WRITE, "MANIFEST", -EIO, 2);
	f.every = true;
	db = open_db(dir, "l0_compaction_trigger", "2", NULL);
	/* The open's tick (or the first pick) starts an L0 job over 3 runs. */
	uint64_t deadline = now_ns() + 5000000000ull;
	while (stat_of(db, "compaction_jobs_failed") < 1 && now_ns() < deadline)
		usleep(10000);
	assert_true(stat_of(db, "compaction_jobs_failed") >= 1);
	assert_true(stat_of(db, "manifest_failures") >= 1);
	assert_int_equal(stat_of(db, "manifest_rolls"), 0);
	assert_int_equal(stat_of(db, "level0_segments"), 3);
	assert_writable(db, &m, 3, 5);
	model_check(db, &m);
	file_fault_disarm(&f);
	deadline = now_ns() + 8000000000ull;
	while ((stat_of(db, "compaction_jobs_completed") < 1 ||
	        stat_of(db, "compaction_jobs_running") > 0) &&
	       now_ns() < deadline)
		usleep(10000);
	assert_true(stat_of(db, "compaction_jobs_completed") >= 1);
	assert_int_equal(stat_of(db, "level0_segments"), 0);
	assert_int_equal(stat_of(db, "inflight_files"), 0);
	assert_true(stat_of(db, "manifest_rolls") >= 1);
	model_check(db, &m);
	/* The write above is in a memtable, which the idle flush may or may
	 * not have written out by now: flush it, so the reopen's L0 is known. */
	assert_int_equal(cesium_flush(db), 0);
	uint64_t l0 = stat_of(db, "level0_segments");
	assert_true(l0 <= 1);
	assert_int_equal(cesium_close(db), 0);
	db = open_db(dir, NO_AUTO_COMPACTION, NULL);
	assert_int_equal(stat_of(db, "level0_segments"), l0);
	model_check(db, &m);
	assert_int_equal(cesium_close(db), 0);
	free(m.gen);
	test_rmtree(dir);
	free(dir);
}

/* Writers stopped by a full L0 while every compaction fails (a failing
 * disk) are not left waiting: after a few failures in a row the writes
 * fail with the compaction's error; once the disk recovers a compaction
 * succeeds and writes go through again. */
static void test_stop_behind_failing_compaction_fails_writes(void **state)
{
	(void)state;
	char *dir = test_tmpdir("sched");
	cesium_db *db = open_db(dir, NO_AUTO_COMPACTION, NULL);
	struct model m;
	model_init(&m, 2000);
	for (unsigned gen = 1; gen <= 4; gen++) {
		for (unsigned i = gen; i < 2000; i += gen)
			model_put(db, &m, i, gen);
		assert_int_equal(cesium_flush(db), 0);
	}
	assert_int_equal(cesium_close(db), 0);
	struct file_fault f;
	file_fault_arm(&f, IO_OP_WRITE, ".seg", -EIO, 1);
	f.every = true;
	db = open_db(dir, "l0_compaction_trigger", "2", "l0_slowdown_trigger", "3",
	             "l0_stop_trigger", "4", NULL);
	assert_int_equal(stat_of(db, "level0_segments"), 4);
	/* The scheduler's first look at the tree stops writers. */
	uint64_t deadline = now_ns() + 5000000000ull;
	while (stat_of(db, "stall_state") < 2 && now_ns() < deadline)
		usleep(1000);
	assert_true(stat_of(db, "stall_state") >= 2);
	/* Before the change this put waited for ever. */
	alarm(30);
	char k[32];
	size_t kl = key_of(k, 7);
	int rc = cesium_put(db, k, kl, "x", 1);
	assert_int_equal(rc, CESIUM_EIO);
	assert_non_null(strstr(cesium_errmsg(), "compaction"));
	assert_true(stat_of(db, "compaction_jobs_failed") >= 3);
	model_check(db, &m);
	file_fault_disarm(&f);
	/* The next retry (after at most a few seconds' back-off) succeeds,
	 * and the scheduler's next look at the tree lifts the stop. The job
	 * is counted before that look, so wait for the stop itself to go. */
	deadline = now_ns() + 20000000000ull;
	while (stat_of(db, "stall_state") >= 2 && now_ns() < deadline)
		usleep(10000);
	assert_true(stat_of(db, "stall_state") < 2);
	assert_true(stat_of(db, "compaction_jobs_completed") >= 1);
	assert_writable(db, &m, 7, 9);
	alarm(0);
	check_reopen_and_remove(db, dir, &m);
}

/* Waits until no compaction runs and none is due; false after 20 s. */
static bool settle(cesium_db *db)
{
	uint64_t deadline = now_ns() + 20000000000ull;
	while (now_ns() < deadline) {
		bool due = stat_of(db, "compaction_jobs_running") > 0 ||
		           stat_of(db, "compaction_jobs_queued") > 0;
		if (!due)
			return true;
		usleep(10000);
	}
	return false;
}

/* Keys written in order make segments that share no key: compaction moves
 * them down the levels as they are (trivial moves), writing nothing, and
 * the moved files stay readable across a reopen. Later overwrites in the
 * middle of the range overlap them, and those jobs merge as usual. */
static void test_sequential_load_moves_segments(void **state)
{
	(void)state;
	char *dir = test_tmpdir("sched");
	const char *opts[] = {"memtable_size",
	                      "64KiB",
	                      "target_file_size",
	                      "64KiB",
	                      "max_bytes_for_level_base",
	                      "1MiB",
	                      "l0_compaction_trigger",
	                      "2"};
	cesium_db *db = open_db(dir, opts[0], opts[1], opts[2], opts[3], opts[4], opts[5], opts[6],
	                        opts[7], NULL);
	struct model m;
	model_init(&m, 12000);
	for (unsigned id = 0; id < 12000; id++)
		model_put(db, &m, id, 1);
	assert_int_equal(cesium_flush(db), 0);
	assert_true(settle(db));
	uint64_t moves = stat_of(db, "compaction_trivial_moves");
	fprintf(stderr, "in-order load: %llu moves of %llu bytes, %llu bytes written by merges\n",
	        (unsigned long long)moves,
	        (unsigned long long)stat_of(db, "compaction_moved_bytes"),
	        (unsigned long long)stat_of(db, "compaction_bytes_written"));
	assert_true(moves >= 2);
	assert_int_equal(stat_of(db, "compaction_bytes_written"), 0);
	assert_true(stat_of(db, "compaction_moved_bytes") > 0);
	/* Below L0 now, untouched (the trigger may have adapted upwards to a
	 * write-heavy load, so some files may still wait in L0). */
	assert_true(total_segments(db) > stat_of(db, "level0_segments"));
	model_check(db, &m);
	assert_int_equal(cesium_close(db), 0);
	db = open_db(dir, opts[0], opts[1], opts[2], opts[3], opts[4], opts[5], opts[6], opts[7],
	             NULL);
	model_check(db, &m);
	/* Overwrites in random order: segments that overlap, merged. */
	for (unsigned i = 0; i < 3000; i++)
		model_put(db, &m, (i * 7919u) % 12000u, 2);
	assert_int_equal(cesium_flush(db), 0);
	assert_true(settle(db));
	assert_true(stat_of(db, "compaction_bytes_written") > 0);
	check_reopen_and_remove(db, dir, &m);
}

/* Delays every write to a segment file: a slow disk under the flushes. */
static int slow_seg_hook(void *arg, enum io_op op, int fd, const char *path, size_t *len)
{
	(void)arg;
	(void)path;
	(void)len;
	if (op != IO_OP_WRITE || fd < 0)
		return 0;
	char link[64], target[512];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, target, sizeof(target) - 1);
	if (n < 4)
		return 0;
	target[n] = '\0';
	if (strcmp(target + n - 4, ".seg") == 0)
		usleep(20000);
	return 0;
}

/* With flushes slower than the writers, sealed memtables pile up: at
 * max_memtables - 1 of them each write is slowed a bounded amount
 * (counted), before the hard wait at max_memtables; no write fails. */
static void test_slowdown_when_sealed_memtables_pile_up(void **state)
{
	(void)state;
	char *dir = test_tmpdir("sched");
	cesium_db *db = open_db(dir, NO_AUTO_COMPACTION, "memtable_size", "64KiB", "max_memtables",
	                        "3", NULL);
	struct model m;
	model_init(&m, 4000);
	io_fault_set(slow_seg_hook, NULL);
	for (unsigned i = 0; i < 4000; i++)
		model_put(db, &m, i, 1);
	io_fault_set(NULL, NULL);
	uint64_t slowdowns = stat_of(db, "slowdowns");
	uint64_t slowdown_ns = stat_of(db, "slowdown_ns");
	fprintf(stderr, "%llu writes slowed for %llu ms in all; %llu memtable waits\n",
	        (unsigned long long)slowdowns, (unsigned long long)(slowdown_ns / 1000000),
	        (unsigned long long)stat_of(db, "memtable_waits"));
	assert_true(slowdowns > 0);
	assert_true(slowdown_ns >= slowdowns * 500000);
	/* Bounded: about a millisecond each, never a wait for the flush. */
	assert_true(slowdown_ns / slowdowns < 20000000);
	/* L0 stayed far below its triggers: the slowdown came from the
	 * memtables alone. */
	assert_int_equal(stat_of(db, "stops"), 0);
	model_check(db, &m);
	assert_int_equal(cesium_flush(db), 0);
	assert_int_equal(cesium_close(db), 0);
	free(m.gen);
	test_rmtree(dir);
	free(dir);
}

/* The `workload` statistic's value. */
static void workload_of(cesium_db *db, char *out, size_t cap)
{
	char *text = NULL;
	assert_int_equal(cesium_stats(db, &text), 0);
	char *line = strstr(text, "\nworkload ");
	assert_non_null(line);
	line += strlen("\nworkload ");
	size_t n = strcspn(line, "\n");
	snprintf(out, cap, "%.*s", (int)n, line);
	cesium_free(text);
}

/* PHASE_SCAN: short scans, an iterator each; PHASE_SEEK: one iterator
 * for the whole phase, seeking. */
enum phase_op { PHASE_PUT, PHASE_GET, PHASE_SCAN, PHASE_SEEK };

static void get_one(cesium_db *db, unsigned id)
{
	char k[32];
	void *v = NULL;
	size_t vl = 0;
	int rc = cesium_get(db, k, key_of(k, id), &v, &vl);
	assert_true(rc == 0 || rc == CESIUM_ENOTFOUND);
	cesium_free(v);
}

/* A database whose L0 holds two runs (two flushes of a 2000-key model),
 * with the given L0 trigger and no write stall. */
static cesium_db *open_with_two_l0_runs(const char *dir, const char *l0_trigger, struct model *m)
{
	cesium_db *db = open_db(dir, "l0_compaction_trigger", l0_trigger, "l0_slowdown_trigger",
	                        "1000", "l0_stop_trigger", "1000", NULL);
	model_init(m, 2000);
	for (unsigned gen = 1; gen <= 2; gen++) {
		for (unsigned i = 0; i < 2000; i += gen)
			model_put(db, m, i, gen);
		assert_int_equal(cesium_flush(db), 0);
	}
	assert_int_equal(stat_of(db, "level0_runs"), 2);
	return db;
}

/* Runs one kind of operation until the scheduler reports `want` as the
 * workload with L0's score at want_score (x 1000), or 6 s (the scheduler
 * samples once a second). Returns whether it did. */
static bool run_phase(cesium_db *db, struct model *m, enum phase_op op, const char *want,
                      uint64_t want_score)
{
	uint64_t deadline = now_ns() + 6000000000ull;
	char w[32] = "";
	uint64_t score = 0;
	unsigned id = 0;
	bool done = false;
	cesium_iter *seeker = NULL;
	if (op == PHASE_SEEK)
		assert_int_equal(cesium_iter_new(db, 0, &seeker), 0);
	while (!done && now_ns() < deadline) {
		for (unsigned i = 0; i < 300; i++, id = (id + 7) % m->n) {
			if (op == PHASE_PUT) {
				model_put(db, m, id, m->gen[id] + 1);
			} else if (op == PHASE_GET) {
				get_one(db, id);
			} else if (op == PHASE_SEEK) {
				char k[32];
				cesium_iter_seek(seeker, k, key_of(k, id));
				assert_int_equal(cesium_iter_status(seeker), 0);
			} else if (i % 30 == 0) {
				cesium_iter *it = NULL;
				assert_int_equal(cesium_iter_new(db, 0, &it), 0);
				cesium_iter_seek_first(it);
				for (int j = 0; j < 20 && cesium_iter_valid(it); j++)
					cesium_iter_next(it);
				cesium_iter_free(it);
			}
		}
		/* A trickle of writes: with writes stopped, L0 would be folded
		 * into L1 (test_l0_folded_once_writes_stop) and score 0. */
		if (op != PHASE_PUT)
			model_put(db, m, id, m->gen[id] + 1);
		workload_of(db, w, sizeof(w));
		score = stat_of(db, "level0_score_milli");
		done = strcmp(w, want) == 0 && score == want_score;
		if (!done)
			usleep(2000);
	}
	cesium_iter_free(seeker);
	if (!done)
		fprintf(stderr, "wanted workload %s with L0 score %llu, saw %s with %llu\n", want,
		        (unsigned long long)want_score, w, (unsigned long long)score);
	return done;
}

/* Phases of puts, gets and scans are each reported as their workload, and
 * the L0 trigger adapts: doubled for writes (score halves), halved for
 * reads and scans (score doubles) against the configured 20. Seeks through
 * one long-lived iterator count as scans too (they were idle when only
 * iterators created were counted). */
static void test_workload_detected_and_trigger_adapted(void **state)
{
	(void)state;
	char *dir = test_tmpdir("sched");
	struct model m;
	cesium_db *db = open_with_two_l0_runs(dir, "20", &m);
	/* 2 runs: 2/40 while writing. */
	assert_true(run_phase(db, &m, PHASE_PUT, "write-heavy", 50));
	/* The puts' memtable is flushed now, not by the idle flush in the
	 * middle of a read phase: 3 runs, 3/10 while reading or scanning. */
	assert_int_equal(cesium_flush(db), 0);
	assert_int_equal(stat_of(db, "level0_runs"), 3);
	assert_true(run_phase(db, &m, PHASE_GET, "read-heavy", 300));
	assert_true(run_phase(db, &m, PHASE_SEEK, "scan-heavy", 300));
	assert_true(run_phase(db, &m, PHASE_GET, "read-heavy", 300));
	assert_true(run_phase(db, &m, PHASE_SCAN, "scan-heavy", 300));
	model_check(db, &m);
	assert_int_equal(cesium_close(db), 0);
	free(m.gen);
	test_rmtree(dir);
	free(dir);
}

/* Runs reads until `done` holds of the tree, or 6 s (the scheduler sees
 * writes stopped a tick or two after the last one); returns it. */
static bool read_until(cesium_db *db, const struct model *m, bool (*done)(cesium_db *))
{
	uint64_t deadline = now_ns() + 6000000000ull;
	unsigned id = 0;
	while (!done(db) && now_ns() < deadline) {
		for (unsigned i = 0; i < 300; i++, id = (id + 7) % m->n)
			get_one(db, id);
		usleep(2000);
	}
	fprintf(stderr, "after the reads: runs L0 %llu, L1 %llu, L2 %llu, L3 %llu\n",
	        (unsigned long long)stat_of(db, "level0_runs"),
	        (unsigned long long)stat_of(db, "level1_runs"),
	        (unsigned long long)stat_of(db, "level2_runs"),
	        (unsigned long long)stat_of(db, "level3_runs"));
	return done(db);
}

static bool one_run_in_l2(cesium_db *db)
{
	return stat_of(db, "level0_runs") == 0 && stat_of(db, "level1_runs") == 0 &&
	       stat_of(db, "level2_runs") == 1;
}

/* Once writes stop, a tree of several runs settles into one (here the two
 * runs of L0, under the read-heavy trigger of 4, into L2) at the next read
 * phase: every run costs each seek about the same. */
static void test_tree_settles_once_writes_stop(void **state)
{
	(void)state;
	char *dir = test_tmpdir("sched");
	struct model m;
	cesium_db *db = open_with_two_l0_runs(dir, "8", &m);
	assert_true(read_until(db, &m, one_run_in_l2));
	check_reopen_and_remove(db, dir, &m);
}

/* A large run (one L3 run of a 20000-key model) under `flushes` small
 * ones (200 keys each) in L0, with an L0 trigger of 8 (4 while reading). */
static cesium_db *open_with_small_flushes(const char *dir, unsigned flushes, struct model *m)
{
	cesium_db *db = open_db(dir, "l0_compaction_trigger", "8", "l0_slowdown_trigger", "1000",
	                        "l0_stop_trigger", "1000", NULL);
	model_init(m, 20000);
	for (unsigned i = 0; i < m->n; i++)
		model_put(db, m, i, 1);
	assert_int_equal(cesium_compact(db), 0);
	for (unsigned part = 0; part < flushes; part++) {
		for (unsigned i = part * 200; i < part * 200 + 200; i++)
			model_put(db, m, i, 2);
		assert_int_equal(cesium_flush(db), 0);
	}
	assert_int_equal(stat_of(db, "level0_runs"), flushes);
	return db;
}

static bool one_run_in_l3(cesium_db *db)
{
	return stat_of(db, "level0_runs") == 0 && stat_of(db, "level1_runs") == 0 &&
	       stat_of(db, "level2_runs") == 0 && stat_of(db, "level3_runs") == 1;
}

/* Three small flushes on a large run are 3 % of the tree, but 4 runs: the
 * tree settles into one run (in L3, its deepest level). */
static void test_many_small_runs_settle(void **state)
{
	(void)state;
	char *dir = test_tmpdir("sched");
	struct model m;
	cesium_db *db = open_with_small_flushes(dir, 3, &m);
	assert_true(read_until(db, &m, one_run_in_l3));
	check_reopen_and_remove(db, dir, &m);
}

static bool moved_to_l1(cesium_db *db)
{
	return stat_of(db, "level0_runs") == 0 && stat_of(db, "level1_runs") == 1 &&
	       stat_of(db, "level2_runs") == 0;
}

/* Three flushes of disjoint key ranges (a key-ordered load) are runs that
 * cost reads little: no settle (three runs in all would call for one);
 * folding moves them to L1 as they are, without a rewrite. Three, below
 * the read-heavy L0 trigger of 4, so that no regular L0 job moves them. */
static void test_disjoint_runs_do_not_settle(void **state)
{
	(void)state;
	char *dir = test_tmpdir("sched");
	cesium_db *db = open_db(dir, "l0_compaction_trigger", "8", "l0_slowdown_trigger", "1000",
	                        "l0_stop_trigger", "1000", NULL);
	struct model m;
	model_init(&m, 1500);
	for (unsigned part = 0; part < 3; part++) {
		for (unsigned i = part * 500; i < part * 500 + 500; i++)
			model_put(db, &m, i, 1);
		assert_int_equal(cesium_flush(db), 0);
	}
	assert_int_equal(stat_of(db, "level0_runs"), 3);
	assert_true(read_until(db, &m, moved_to_l1));
	assert_int_equal(stat_of(db, "compaction_bytes_written"), 0);
	check_reopen_and_remove(db, dir, &m);
}

static bool l0_folded(cesium_db *db)
{
	return stat_of(db, "level0_runs") == 0 && stat_of(db, "level1_runs") == 1 &&
	       stat_of(db, "level3_runs") == 1;
}

/* Two small flushes on a large run (2 % of the tree and 3 runs, too little
 * to settle it) are folded into L1 once writes stop, though under the
 * read-heavy trigger of 4. */
static void test_l0_folded_once_writes_stop(void **state)
{
	(void)state;
	char *dir = test_tmpdir("sched");
	struct model m;
	cesium_db *db = open_with_small_flushes(dir, 2, &m);
	assert_true(read_until(db, &m, l0_folded));
	check_reopen_and_remove(db, dir, &m);
}

/* State of the hooks below: static, so that a hook call racing its removal
 * never touches freed memory. */
static struct {
	cesium_db *db;
	char dir[512];
	atomic_bool armed;
	atomic_int markers;             /* files handed to the cleanup actor */
	atomic_uint_fast64_t at_submit; /* bg reactor's deliveries then */
	atomic_int syncs;               /* MANIFEST fdatasyncs completed */
	atomic_int served;              /* ... with a message delivered meanwhile */
} busy;

static bool fd_is_manifest(int fd)
{
	if (fd < 0)
		return false;
	char link[64], target[512];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, target, sizeof(target) - 1);
	if (n <= 0)
		return false;
	target[n] = '\0';
	return strstr(target, "/MANIFEST-") != NULL;
}

/* At the submission of a MANIFEST fdatasync (on the scheduler's reactor
 * thread): hands a file to the cleanup actor, which shares that reactor,
 * and notes how many messages the reactor has delivered so far. */
static int busy_check_hook(void *arg, enum io_op op, int fd, const char *path, size_t *len)
{
	(void)arg;
	(void)path;
	(void)len;
	if (op != IO_OP_FSYNC || !atomic_load(&busy.armed) || !fd_is_manifest(fd))
		return 0;
	char marker[600];
	snprintf(marker, sizeof(marker), "%s/marker-%d.tmp", busy.dir,
	         atomic_fetch_add(&busy.markers, 1));
	int mfd = open(marker, O_CREAT | O_WRONLY, 0644);
	if (mfd >= 0)
		close(mfd);
	struct reactor_stats st;
	reactor_get_stats(busy.db->bg, &st);
	atomic_store(&busy.at_submit, st.delivered);
	cleanup_push(busy.db->cleaner, marker, 0);
	return 0;
}

/* At that fdatasync's completion: did the reactor deliver any message
 * while it was in flight? */
static void busy_done_hook(void *arg, enum io_op op, int fd, int res)
{
	(void)arg;
	(void)res;
	if (op != IO_OP_FSYNC || !atomic_load(&busy.armed) || !fd_is_manifest(fd))
		return;
	struct reactor_stats st;
	reactor_get_stats(busy.db->bg, &st);
	atomic_fetch_add(&busy.syncs, 1);
	if (st.delivered > atomic_load(&busy.at_submit))
		atomic_fetch_add(&busy.served, 1);
}

/* While a MANIFEST edit's fdatasync is in flight the scheduler's reactor
 * goes on delivering messages: a file handed to the cleanup actor (same
 * reactor) when the sync is submitted is taken before the sync completes.
 * (A scheduler that waited for its sync on the reactor delivered none.) */
static void test_reactor_serves_messages_during_manifest_sync(void **state)
{
	(void)state;
	char *dir = test_tmpdir("sched");
	cesium_db *db = open_db(dir, NO_AUTO_COMPACTION, NULL);
	struct model m;
	model_init(&m, 1000);
	busy.db = db;
	snprintf(busy.dir, sizeof(busy.dir), "%s", dir);
	atomic_store(&busy.markers, 0);
	atomic_store(&busy.syncs, 0);
	atomic_store(&busy.served, 0);
	io_fault_set_done(busy_done_hook, NULL);
	io_fault_set(busy_check_hook, NULL);
	atomic_store(&busy.armed, true);
	for (unsigned round = 0; round < 10; round++) {
		for (unsigned i = round; i < 1000; i += 10)
			model_put(db, &m, i, round + 1);
		assert_int_equal(cesium_flush(db), 0);
	}
	atomic_store(&busy.armed, false);
	io_fault_set(NULL, NULL);
	io_fault_set_done(NULL, NULL);
	int syncs = atomic_load(&busy.syncs), served = atomic_load(&busy.served);
	fprintf(stderr, "%d of %d MANIFEST syncs saw the reactor deliver a message meanwhile\n",
	        served, syncs);
	assert_true(syncs >= 10);
	/* Not all: a sync may complete before the reactor gets to the
	 * mailbox; but a reactor that is never free during one gives 0. */
	assert_true(served >= 1);
	assert_int_equal(wait_files(dir, ".tmp", 0), 0);
	assert_int_equal(stat_of(db, "level0_segments"), 10);
	model_check(db, &m);
	assert_int_equal(cesium_close(db), 0);
	db = open_db(dir, NO_AUTO_COMPACTION, NULL);
	assert_int_equal(stat_of(db, "level0_segments"), 10);
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
	    cmocka_unit_test(test_manifest_write_failure_recovered_in_flush),
	    cmocka_unit_test(test_manifest_fsync_failure_recovered_in_flush),
	    cmocka_unit_test(test_manifest_short_write_recovered_in_flush),
	    cmocka_unit_test(test_manifest_failure_during_compaction),
	    cmocka_unit_test(test_compaction_retried_after_manifest_recovers),
	    cmocka_unit_test(test_stop_behind_failing_compaction_fails_writes),
	    cmocka_unit_test(test_sequential_load_moves_segments),
	    cmocka_unit_test(test_slowdown_when_sealed_memtables_pile_up),
	    cmocka_unit_test(test_workload_detected_and_trigger_adapted),
	    cmocka_unit_test(test_l0_folded_once_writes_stop),
	    cmocka_unit_test(test_tree_settles_once_writes_stop),
	    cmocka_unit_test(test_many_small_runs_settle),
	    cmocka_unit_test(test_disjoint_runs_do_not_settle),
	    cmocka_unit_test(test_reactor_serves_messages_during_manifest_sync),
	};
	test_require_io_uring();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
