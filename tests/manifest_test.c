/* Unit tests for core/manifest: a fresh MANIFEST round-trips through
 * version_recover, CURRENT names it, malformed CURRENT files are
 * CESIUM_ECORRUPT naming the file, and injected fsync/rename failures fail
 * manifest_create without touching CURRENT or leaking descriptors. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "edit.h"
#include "error.h"
#include "fault.h"
#include "file.h"
#include "manifest.h"
#include "mem.h"
#include "test_util.h"
#include "version.h"

static struct version_env env; /* no release hook: these files are fake */

/* An internal key for user key "k<n>" in namespace 0. */
static size_t mk_ikey(uint8_t *out, unsigned n, uint64_t seq)
{
	char user[16];
	int ul = snprintf(user, sizeof(user), "k%06u", n);
	keys_make_nskey(out, 0, user, (size_t)ul);
	keys_put_u64le(out + KEYS_NS_SIZE + (size_t)ul, keys_trailer(seq, KEYS_KIND_VALUE));
	return KEYS_NS_SIZE + (size_t)ul + KEYS_TRAILER_SIZE;
}

/* A version with three L0 files, one L1 run of two files and two L7
 * files. */
static struct version *make_version(void)
{
	struct version *base = NULL, *v = NULL;
	assert_int_equal(version_new_empty(&env, &base), 0);
	struct edit e;
	edit_init(&e);
	struct {
		int level;
		uint64_t number;
		unsigned lo, hi;
		uint64_t run;
	} files[] = {
	    {0, 11, 0, 500, 0},  {0, 12, 100, 900, 0}, {0, 13, 50, 60, 0},    {1, 21, 0, 499, 20},
	    {1, 22, 500, 999, 20}, {7, 7, 0, 399, 0},   {7, 8, 400, 999, 0},
	};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		uint8_t lo[32], hi[32];
		struct file_desc d = {
		    .level = files[i].level,
		    .number = files[i].number,
		    .file_size = 1000 + files[i].number,
		    .smallest = lo,
		    .smallest_len = mk_ikey(lo, files[i].lo, 100 + files[i].number),
		    .largest = hi,
		    .largest_len = mk_ikey(hi, files[i].hi, 100 + files[i].number),
		    .min_seq = files[i].number,
		    .max_seq = 100 + files[i].number,
		    .entries = 10 * files[i].number,
		    .tombstones = files[i].number % 3,
		    .run = files[i].run,
		};
		assert_int_equal(edit_add_file(&e, &d), 0);
	}
	assert_int_equal(version_apply(base, &e, NULL, NULL, &v), 0);
	edit_free(&e);
	version_unref(base);
	return v;
}

static char *read_text(const char *dir, const char *name)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	char *buf = calloc(1, 256);
	size_t n = fread(buf, 1, 255, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void write_text(const char *dir, const char *name, const char *text, size_t len)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	fclose(f);
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static bool file_exists(const char *dir, const char *name)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return access(path, F_OK) == 0;
}

/* manifest_create writes a MANIFEST that version_recover reads back whole,
 * and CURRENT names it. */
static void test_create_then_recover_round_trips(void **state)
{
	(void)state;
	char *dir = test_tmpdir("manifest");
	assert_non_null(dir);
	struct version *v = make_version();
	int fd = -1;
	uint64_t size = 0;
	assert_int_equal(manifest_create(dir, 42, v, 9, 77, 12345, &fd, &size), 0);
	assert_true(fd >= 0);
	assert_true(size > 0);
	assert_int_equal(io_file_size(fd), (int64_t)size);

	char *cur = read_text(dir, "CURRENT");
	assert_non_null(cur);
	assert_string_equal(cur, "MANIFEST-000042\n");
	free(cur);
	assert_false(file_exists(dir, "CURRENT.tmp"));

	char *mpath = NULL;
	assert_int_equal(manifest_read_current(dir, &mpath), 0);
	char want[512];
	snprintf(want, sizeof(want), "%s/MANIFEST-000042", dir);
	assert_string_equal(mpath, want);

	struct version *rv = NULL;
	uint64_t valid_end = 0;
	assert_int_equal(version_recover(mpath, &env, NULL, NULL, &rv, &valid_end), 0);
	assert_int_equal(valid_end, size);
	assert_int_equal(rv->log_number, 9);
	assert_int_equal(rv->next_file_number, 77);
	assert_int_equal(rv->last_seq, 12345);
	for (int l = 0; l < VERSION_LEVELS; l++) {
		assert_int_equal(rv->nfiles[l], v->nfiles[l]);
		for (size_t i = 0; i < v->nfiles[l]; i++) {
			const struct file_meta *a = v->files[l][i], *b = rv->files[l][i];
			assert_int_equal(b->number, a->number);
			assert_int_equal(b->file_size, a->file_size);
			assert_int_equal(b->min_seq, a->min_seq);
			assert_int_equal(b->max_seq, a->max_seq);
			assert_int_equal(b->entries, a->entries);
			assert_int_equal(b->tombstones, a->tombstones);
			assert_int_equal(b->run, a->run); /* a tiered level keeps its runs */
			assert_int_equal(b->smallest_len, a->smallest_len);
			assert_memory_equal(b->smallest, a->smallest, a->smallest_len);
			assert_int_equal(b->largest_len, a->largest_len);
			assert_memory_equal(b->largest, a->largest, a->largest_len);
		}
	}
	version_unref(rv);
	mem_free(mpath);
	io_close(fd);
	version_unref(v);
	test_rmtree(dir);
	free(dir);
}

/* An empty version round-trips too (a brand-new database). */
static void test_empty_version_round_trips(void **state)
{
	(void)state;
	char *dir = test_tmpdir("manifest");
	struct version *v = NULL;
	assert_int_equal(version_new_empty(&env, &v), 0);
	int fd = -1;
	uint64_t size = 0;
	assert_int_equal(manifest_create(dir, 1, v, 2, 3, 0, &fd, &size), 0);
	char *mpath = NULL;
	assert_int_equal(manifest_read_current(dir, &mpath), 0);
	struct version *rv = NULL;
	uint64_t valid_end = 0;
	assert_int_equal(version_recover(mpath, &env, NULL, NULL, &rv, &valid_end), 0);
	for (int l = 0; l < VERSION_LEVELS; l++)
		assert_int_equal(rv->nfiles[l], 0);
	assert_int_equal(rv->log_number, 2);
	assert_int_equal(rv->next_file_number, 3);
	version_unref(rv);
	version_unref(v);
	mem_free(mpath);
	io_close(fd);
	test_rmtree(dir);
	free(dir);
}

static void expect_corrupt_current(const char *dir, const char *text, size_t len)
{
	write_text(dir, "CURRENT", text, len);
	char *mpath = NULL;
	int rc = manifest_read_current(dir, &mpath);
	if (rc != CESIUM_ECORRUPT)
		fprintf(stderr, "CURRENT \"%.*s\" gave %d (%s)\n", (int)len, text, rc,
		        rc == 0 ? mpath : cesium_errmsg());
	if (rc == 0)
		mem_free(mpath);
	assert_int_equal(rc, CESIUM_ECORRUPT);
	char want[512];
	snprintf(want, sizeof(want), "%s/CURRENT", dir);
	assert_non_null(strstr(cesium_errmsg(), want));
}

/* Empty, garbage and newline-less CURRENT files are CESIUM_ECORRUPT with a
 * message naming the file. */
static void test_malformed_current_is_corrupt(void **state)
{
	(void)state;
	char *dir = test_tmpdir("manifest");
	expect_corrupt_current(dir, "", 0);
	expect_corrupt_current(dir, "garbage in CURRENT\n", 19);
	expect_corrupt_current(dir, "MANIFEST-000042", 15);
	expect_corrupt_current(dir, "MANIFEST-\n", 10);
	expect_corrupt_current(dir, "MANIFEST-00x042\n", 16);
	expect_corrupt_current(dir, "\0\0\0\0\0\0\0\0\0\0\0\0", 12);
	/* The well-formed line is accepted (the checks above can pass). */
	write_text(dir, "CURRENT", "MANIFEST-000042\n", 16);
	char *mpath = NULL;
	assert_int_equal(manifest_read_current(dir, &mpath), 0);
	mem_free(mpath);
	test_rmtree(dir);
	free(dir);
}

/* A sign or space before the number is not a MANIFEST name: scanf's %llu
 * would accept "-5" as 2^64-5. */
static void test_current_with_signed_number_is_corrupt(void **state)
{
	(void)state;
	char *dir = test_tmpdir("manifest");
	expect_corrupt_current(dir, "MANIFEST--5\n", 12);
	expect_corrupt_current(dir, "MANIFEST-+5\n", 12);
	expect_corrupt_current(dir, "MANIFEST- 5\n", 12);
	test_rmtree(dir);
	free(dir);
}

struct fail_op {
	enum io_op op;
	int err;
	atomic_int hits;
};

static int fail_op_hook(void *arg, enum io_op op, int fd, const char *path, size_t *len)
{
	struct fail_op *f = arg;
	(void)fd;
	(void)path;
	(void)len;
	if (op != f->op)
		return 0;
	atomic_fetch_add(&f->hits, 1);
	return f->err;
}

static void check_create_fails_cleanly(enum io_op op, int err)
{
	char *dir = test_tmpdir("manifest");
	struct version *v = make_version();
	int fd = -1;
	uint64_t size = 0;
	assert_int_equal(manifest_create(dir, 5, v, 1, 20, 10, &fd, &size), 0);
	io_close(fd);
	char *before = read_text(dir, "CURRENT");
	assert_non_null(before);

	int fds = count_fds();
	struct fail_op f = {.op = op, .err = err};
	io_fault_set(fail_op_hook, &f);
	fd = 12345;
	error_clear();
	int rc = manifest_create(dir, 6, v, 1, 21, 11, &fd, &size);
	io_fault_set(NULL, NULL);
	assert_true(atomic_load(&f.hits) > 0);
	assert_int_equal(rc, err == -ENOSPC ? CESIUM_ENOSPC : CESIUM_EIO);
	assert_true(strlen(cesium_errmsg()) > 0);
	assert_int_equal(fd, 12345); /* not written on failure */
	assert_int_equal(count_fds(), fds);

	char *after = read_text(dir, "CURRENT");
	assert_non_null(after);
	assert_string_equal(after, before);
	char *mpath = NULL;
	assert_int_equal(manifest_read_current(dir, &mpath), 0);
	struct version *rv = NULL;
	uint64_t valid_end;
	assert_int_equal(version_recover(mpath, &env, NULL, NULL, &rv, &valid_end), 0);
	assert_int_equal(rv->next_file_number, 20);
	version_unref(rv);
	mem_free(mpath);
	free(before);
	free(after);
	version_unref(v);
	test_rmtree(dir);
	free(dir);
}

/* A failing fsync (of the MANIFEST or of CURRENT.tmp) fails manifest_create
 * and leaves CURRENT naming the previous MANIFEST. */
static void test_fsync_failure_leaves_current(void **state)
{
	(void)state;
	check_create_fails_cleanly(IO_OP_FSYNC, -EIO);
}

/* A failing rename of CURRENT.tmp fails manifest_create; CURRENT unchanged. */
static void test_rename_failure_leaves_current(void **state)
{
	(void)state;
	check_create_fails_cleanly(IO_OP_RENAME, -EIO);
}

/* A full disk while writing the MANIFEST is CESIUM_ENOSPC; CURRENT unchanged. */
static void test_write_enospc_leaves_current(void **state)
{
	(void)state;
	check_create_fails_cleanly(IO_OP_WRITE, -ENOSPC);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_create_then_recover_round_trips),
	    cmocka_unit_test(test_empty_version_round_trips),
	    cmocka_unit_test(test_malformed_current_is_corrupt),
	    cmocka_unit_test(test_current_with_signed_number_is_corrupt),
	    cmocka_unit_test(test_fsync_failure_leaves_current),
	    cmocka_unit_test(test_rename_failure_leaves_current),
	    cmocka_unit_test(test_write_enospc_leaves_current),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
