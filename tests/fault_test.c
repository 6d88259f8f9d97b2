/* Unit tests for the fault seam (io/fault.c) and the file_fault hook that
 * tests install through it (tests/test_db.c): counted and random modes,
 * operation and suffix matching, the errors it picks. */

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fault.h"
#include "test_db.h"
#include "test_util.h"

/* One check of op on path (or fd), with a write length of 100. */
static int check_path(enum io_op op, const char *path)
{
	size_t len = 100;
	return io_fault_check(op, -1, path, &len);
}

/* With no hook installed every operation passes untouched and the hot-path
 * hint says so. */
static void test_no_hook_passes_everything(void **state)
{
	(void)state;
	io_fault_set(NULL, NULL);
	assert_false(io_fault_armed());
	for (int op = 0; op < IO_OP_COUNT; op++) {
		size_t len = 4096;
		assert_int_equal(io_fault_check((enum io_op)op, 3, "x.seg", &len), 0);
		assert_int_equal(len, 4096);
	}
	assert_int_equal(io_fault_check(IO_OP_FSYNC, 3, NULL, NULL), 0);
}

/* Counted mode fails exactly the nth matching operation; other operations
 * and other files are neither failed nor counted. */
static void test_counted_fails_only_the_nth_match(void **state)
{
	(void)state;
	struct file_fault f;
	file_fault_arm(&f, IO_OP_READ, ".seg", -EIO, 3);
	assert_true(io_fault_armed());
	int results[5];
	for (int i = 0; i < 5; i++) {
		assert_int_equal(check_path(IO_OP_WRITE, "/d/1.seg"), 0);
		assert_int_equal(check_path(IO_OP_READ, "/d/1.wal"), 0);
		results[i] = check_path(IO_OP_READ, "/d/1.seg");
	}
	file_fault_disarm(&f);
	assert_false(io_fault_armed());
	for (int i = 0; i < 5; i++)
		assert_int_equal(results[i], i == 2 ? -EIO : 0);
	assert_int_equal(atomic_load(&f.seen), 5);
	assert_int_equal(atomic_load(&f.failed), 1);
	assert_int_equal(atomic_load(&f.failed_op[IO_OP_READ]), 1);
	assert_string_equal(f.path, "/d/1.seg");
}

/* With `every`, the nth and all later matches fail. */
static void test_counted_every_fails_from_nth_on(void **state)
{
	(void)state;
	struct file_fault f;
	file_fault_arm(&f, IO_OP_FSYNC, "MANIFEST-", -ENOSPC, 2);
	f.every = true;
	int r[4];
	for (int i = 0; i < 4; i++)
		r[i] = check_path(IO_OP_FSYNC, "/d/MANIFEST-000007");
	file_fault_disarm(&f);
	assert_int_equal(r[0], 0);
	for (int i = 1; i < 4; i++)
		assert_int_equal(r[i], -ENOSPC);
	assert_int_equal(atomic_load(&f.failed), 3);
}

/* err 0 lets the write through with half its length: a short write. */
static void test_short_write_halves_length(void **state)
{
	(void)state;
	struct file_fault f;
	file_fault_arm(&f, IO_OP_WRITE, ".wal", 0, 1);
	size_t len = 4096;
	int rc = io_fault_check(IO_OP_WRITE, -1, "/d/5.wal", &len);
	size_t len2 = 4096;
	int rc2 = io_fault_check(IO_OP_WRITE, -1, "/d/5.wal", &len2);
	file_fault_disarm(&f);
	assert_int_equal(rc, 0);
	assert_int_equal(len, 2048);
	assert_int_equal(rc2, 0);
	assert_int_equal(len2, 4096);
	assert_int_equal(atomic_load(&f.shortened), 1);
}

/* An operation known only by its descriptor is matched through the file
 * the descriptor names. */
static void test_suffix_matches_descriptor_path(void **state)
{
	(void)state;
	char *dir = test_tmpdir("fault-fd");
	assert_non_null(dir);
	char a[512], b[512];
	snprintf(a, sizeof(a), "%s/000001.wal", dir);
	snprintf(b, sizeof(b), "%s/000002.seg", dir);
	int fa = open(a, O_CREAT | O_RDWR, 0644), fb = open(b, O_CREAT | O_RDWR, 0644);
	assert_true(fa >= 0 && fb >= 0);
	struct file_fault f;
	file_fault_arm(&f, IO_OP_FSYNC, ".wal", -EIO, 1);
	f.every = true;
	int ra = io_fault_check(IO_OP_FSYNC, fa, NULL, NULL);
	int rb = io_fault_check(IO_OP_FSYNC, fb, NULL, NULL);
	int rnone = io_fault_check(IO_OP_FSYNC, -1, NULL, NULL);
	file_fault_disarm(&f);
	assert_int_equal(ra, -EIO);
	assert_int_equal(rb, 0);
	assert_int_equal(rnone, 0);
	assert_string_equal(f.path, a);
	close(fa);
	close(fb);
	test_rmtree(dir);
	free(dir);
}

/* A NULL suffix matches every file, and operations with no file at all. */
static void test_null_suffix_matches_every_file(void **state)
{
	(void)state;
	struct file_fault f;
	file_fault_arm(&f, IO_OP_UNLINK, NULL, -EIO, 1);
	f.every = true;
	int r1 = check_path(IO_OP_UNLINK, "/d/LOCK");
	int r2 = io_fault_check(IO_OP_UNLINK, -1, NULL, NULL);
	int r3 = check_path(IO_OP_RENAME, "/d/LOCK");
	file_fault_disarm(&f);
	assert_int_equal(r1, -EIO);
	assert_int_equal(r2, -EIO);
	assert_int_equal(r3, 0);
}

/* Random mode fails matching operations at about the asked rate. */
static void test_random_rate_follows_probability(void **state)
{
	(void)state;
	uint64_t seed = test_seed("fault_random_rate");
	struct file_fault f;
	file_fault_arm_random(&f, FILE_FAULT_OP(IO_OP_READ), ".seg", -EIO, 50000, seed);
	unsigned failed = 0;
	for (int i = 0; i < 40000; i++)
		failed += check_path(IO_OP_READ, "/d/9.seg") == -EIO;
	/* Other files are never failed. */
	for (int i = 0; i < 1000; i++)
		assert_int_equal(check_path(IO_OP_READ, "/d/9.wal"), 0);
	file_fault_disarm(&f);
	/* 5% of 40000 is 2000; the binomial's sd is about 44. */
	assert_in_range(failed, 1700, 2300);
	assert_int_equal(atomic_load(&f.failed), failed);
	assert_int_equal(atomic_load(&f.seen), 40000);
}

/* The decisions are a function of the seed and the operation's number:
 * the same seed replays them, another seed does not. */
static void test_random_seed_replays_decisions(void **state)
{
	(void)state;
	uint64_t seed = test_seed("fault_random_replay");
	static int runs[3][2000];
	uint64_t seeds[3] = {seed, seed, seed + 1};
	for (int r = 0; r < 3; r++) {
		struct file_fault f;
		file_fault_arm_random(&f, FILE_FAULT_ALL_OPS, NULL, -EIO, 100000, seeds[r]);
		for (int i = 0; i < 2000; i++)
			runs[r][i] = check_path((enum io_op)(i % IO_OP_COUNT), "/d/x");
		file_fault_disarm(&f);
	}
	assert_memory_equal(runs[0], runs[1], sizeof(runs[0]));
	assert_memory_not_equal(runs[0], runs[2], sizeof(runs[0]));
}

/* Only the operations in the mask are failed; at a probability of one
 * every one of them is. */
static void test_random_respects_operation_mask(void **state)
{
	(void)state;
	struct file_fault f;
	unsigned ops = FILE_FAULT_OP(IO_OP_OPEN) | FILE_FAULT_OP(IO_OP_RENAME);
	file_fault_arm_random(&f, ops, "", -EIO, 1000000, test_seed("fault_mask"));
	int r[IO_OP_COUNT];
	for (int op = 0; op < IO_OP_COUNT; op++)
		r[op] = check_path((enum io_op)op, "/d/CURRENT");
	file_fault_disarm(&f);
	for (int op = 0; op < IO_OP_COUNT; op++)
		assert_int_equal(r[op], (ops & FILE_FAULT_OP(op)) ? -EIO : 0);
	assert_int_equal(atomic_load(&f.failed_op[IO_OP_OPEN]), 1);
	assert_int_equal(atomic_load(&f.failed_op[IO_OP_RENAME]), 1);
	assert_int_equal(atomic_load(&f.failed), 2);
}

/* The mixed error is one the operation can really return: reads and syncs
 * EIO, fallocate ENOSPC, writes EIO, ENOSPC or a short write (never a
 * short write of a length that cannot be shortened). */
static void test_mixed_errors_fit_the_operation(void **state)
{
	(void)state;
	struct file_fault f;
	file_fault_arm_random(&f, FILE_FAULT_ALL_OPS, NULL, FILE_FAULT_MIXED, 1000000,
	                      test_seed("fault_mixed"));
	unsigned eio = 0, enospc = 0, shorts = 0, other = 0;
	for (int i = 0; i < 300; i++) {
		assert_int_equal(check_path(IO_OP_READ, "/d/a"), -EIO);
		assert_int_equal(check_path(IO_OP_FSYNC, "/d/a"), -EIO);
		assert_int_equal(check_path(IO_OP_FALLOCATE, "/d/a"), -ENOSPC);
		int ro = check_path(IO_OP_OPEN, "/d/a");
		assert_true(ro == -EIO || ro == -ENOSPC);
		size_t len = 1;
		assert_int_not_equal(io_fault_check(IO_OP_WRITE, -1, "/d/a", &len), 0);
		assert_int_equal(len, 1);
		len = 1000;
		int rc = io_fault_check(IO_OP_WRITE, -1, "/d/a", &len);
		if (rc == -EIO)
			eio++;
		else if (rc == -ENOSPC)
			enospc++;
		else if (rc == 0 && len == 500)
			shorts++;
		else
			other++;
	}
	file_fault_disarm(&f);
	assert_int_equal(other, 0);
	assert_true(eio > 50 && enospc > 50 && shorts > 50);
	assert_int_equal(atomic_load(&f.shortened), shorts);
}

/* Pausing stops injection and counting without removing the hook. */
static void test_pause_and_resume(void **state)
{
	(void)state;
	struct file_fault f;
	file_fault_arm_random(&f, FILE_FAULT_OP(IO_OP_READ), NULL, -EIO, 1000000, 1);
	file_fault_pause(&f);
	int paused = check_path(IO_OP_READ, "/d/a");
	bool hint = io_fault_armed();
	file_fault_resume(&f);
	int resumed = check_path(IO_OP_READ, "/d/a");
	file_fault_disarm(&f);
	assert_int_equal(paused, 0);
	assert_true(hint);
	assert_int_equal(resumed, -EIO);
	assert_int_equal(atomic_load(&f.seen), 1);
}

static int done_calls, done_res;
static enum io_op done_op;

static void record_done(void *arg, enum io_op op, int fd, int res)
{
	(void)arg;
	(void)fd;
	done_calls++;
	done_op = op;
	done_res = res;
}

/* The completion hook is called with the result while installed, and not
 * after it is removed. */
static void test_done_hook_reports_results(void **state)
{
	(void)state;
	done_calls = 0;
	io_fault_set_done(record_done, NULL);
	io_fault_done(IO_OP_FSYNC, 5, -EIO);
	io_fault_set_done(NULL, NULL);
	io_fault_done(IO_OP_FSYNC, 5, 0);
	assert_int_equal(done_calls, 1);
	assert_int_equal(done_op, IO_OP_FSYNC);
	assert_int_equal(done_res, -EIO);
}

/* Every operation has a name, and a bad one does not crash. */
static void test_op_names(void **state)
{
	(void)state;
	assert_string_equal(io_op_name(IO_OP_READ), "read");
	assert_string_equal(io_op_name(IO_OP_TRUNCATE), "truncate");
	for (int op = 0; op < IO_OP_COUNT; op++)
		assert_string_not_equal(io_op_name((enum io_op)op), "?");
	assert_string_equal(io_op_name(IO_OP_COUNT), "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_no_hook_passes_everything),
	    cmocka_unit_test(test_counted_fails_only_the_nth_match),
	    cmocka_unit_test(test_counted_every_fails_from_nth_on),
	    cmocka_unit_test(test_short_write_halves_length),
	    cmocka_unit_test(test_suffix_matches_descriptor_path),
	    cmocka_unit_test(test_null_suffix_matches_every_file),
	    cmocka_unit_test(test_random_rate_follows_probability),
	    cmocka_unit_test(test_random_seed_replays_decisions),
	    cmocka_unit_test(test_random_respects_operation_mask),
	    cmocka_unit_test(test_mixed_errors_fit_the_operation),
	    cmocka_unit_test(test_pause_and_resume),
	    cmocka_unit_test(test_done_hook_reports_results),
	    cmocka_unit_test(test_op_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
