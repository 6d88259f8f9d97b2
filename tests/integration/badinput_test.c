/*
 * badinput_test — everything a caller or a disk can get wrong: NULL handles
 * and pointers, empty and oversized keys and values, unknown and malformed
 * options, directories that are not databases, a database already held,
 * and log and segment files cut short or with a flipped bit. Each must give
 * a clear error code and a non-empty cesium_errmsg(), never a crash, and
 * never a silently wrong answer.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cesium.h"
#include "test_util.h"

#define expect_err(call, code)                                                                     \
	do {                                                                                       \
		int rc_ = (call);                                                                  \
		if (rc_ != (code))                                                                 \
			print_error("%s: got %d (%s), want %s\n", #call, rc_,                      \
			            cesium_strerror(rc_), #code);                                  \
		assert_int_equal(rc_, (code));                                                     \
		if (cesium_errmsg()[0] == '\0')                                                    \
			print_error("%s: empty cesium_errmsg()\n", #call);                         \
		assert_true(cesium_errmsg()[0] != '\0');                                           \
	} while (0)

static int fx_setup(void **state)
{
	return test_fx_setup(state, "badinput");
}


static void check_ok(int rc, const char *what)
{
	if (rc != 0)
		print_error("%s: %s: %s\n", what, cesium_strerror(rc), cesium_errmsg());
	assert_int_equal(rc, 0);
}

static cesium_db *open_db(const char *dir, const cesium_options *o)
{
	cesium_db *db = NULL;
	check_ok(cesium_open(dir, o, &db), "open");
	assert_non_null(db);
	return db;
}

static void close_db(struct test_fx *f)
{
	check_ok(cesium_close(f->db), "close");
	f->db = NULL;
}

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static unsigned char *read_whole(const char *path, size_t *len)
{
	struct stat st;
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	unsigned char *buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		assert_true(n > 0);
		got += (size_t)n;
	}
	close(fd);
	*len = got;
	return buf;
}

/* Names of the files in dir ending in suffix, NULL-terminated. */
static char **list_files(const char *dir, const char *suffix)
{
	char **names = calloc(256, sizeof(*names));
	size_t n = 0, sl = strlen(suffix);
	assert_non_null(names);
	DIR *d = opendir(dir);
	assert_non_null(d);
	struct dirent *e;
	while ((e = readdir(d)) && n < 255) {
		size_t l = strlen(e->d_name);
		if (l > sl && strcmp(e->d_name + l - sl, suffix) == 0) {
			names[n] = strdup(e->d_name);
			assert_non_null(names[n]);
			n++;
		}
	}
	closedir(d);
	return names;
}

static void free_list(char **names)
{
	for (size_t i = 0; names[i]; i++)
		free(names[i]);
	free(names);
}

/* A value that appears once in the files, so a test can find its bytes. */
static size_t pattern_value(char *buf, size_t size, const char *tag, unsigned i)
{
	int n = snprintf(buf, size, "%s-%06u-", tag, i);
	size_t len = size - 1;
	for (size_t j = (size_t)n; j < len; j++)
		buf[j] = (char)('a' + (i + j) % 26);
	buf[len] = '\0';
	return len;
}

static void key_of(char *buf, size_t size, unsigned i)
{
	snprintf(buf, size, "key%06u", i);
}

static void fill_pattern(cesium_db *db, const char *tag, unsigned n, size_t vsize)
{
	char k[32], v[512];
	assert_true(vsize <= sizeof(v));
	for (unsigned i = 0; i < n; i++) {
		key_of(k, sizeof(k), i);
		size_t vl = pattern_value(v, vsize, tag, i);
		check_ok(cesium_put(db, k, strlen(k), v, vl), "put");
	}
}

/* Finds the value of key i in the files of dir ending in suffix and flips
 * one bit of it (every copy in every file, so that the live file is hit
 * even if an obsolete one is still around); or truncates the file in the
 * middle of it. Returns the basename of the first file touched. */
static char *damage_value(const char *dir, const char *suffix, const char *tag, unsigned i,
                          size_t vsize, bool truncate_there)
{
	char v[512], path[4096];
	size_t vl = pattern_value(v, vsize, tag, i);
	char **names = list_files(dir, suffix);
	char *hit = NULL;
	for (size_t n = 0; names[n]; n++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[n]);
		size_t len = 0;
		unsigned char *data = read_whole(path, &len);
		unsigned char *at = memmem(data, len, v, vl);
		if (at) {
			off_t off = (off_t)(at - data) + (off_t)(vl / 2);
			if (truncate_there) {
				assert_int_equal(truncate(path, off), 0);
			} else {
				int fd = open(path, O_WRONLY);
				assert_true(fd >= 0);
				unsigned char byte = (unsigned char)(data[off] ^ 0x10);
				assert_int_equal(pwrite(fd, &byte, 1, off), 1);
				close(fd);
			}
			if (!hit)
				hit = strdup(names[n]);
		}
		free(data);
	}
	free_list(names);
	if (!hit)
		print_error("value of key %u not found in any *%s file of %s\n", i, suffix, dir);
	assert_non_null(hit);
	return hit;
}

/* Option calls with NULL arguments return CESIUM_EINVAL. */
static void test_null_option_args_are_einval(void **state)
{
	(void)state;
	cesium_options *o = NULL;
	char buf[64];
	expect_err(cesium_options_new(NULL), CESIUM_EINVAL);
	check_ok(cesium_options_new(&o), "options_new");
	expect_err(cesium_options_set(NULL, "memtable_size", "1MiB"), CESIUM_EINVAL);
	expect_err(cesium_options_set(o, NULL, "1MiB"), CESIUM_EINVAL);
	expect_err(cesium_options_set(o, "memtable_size", NULL), CESIUM_EINVAL);
	expect_err(cesium_options_get(NULL, "memtable_size", buf, sizeof(buf)), CESIUM_EINVAL);
	expect_err(cesium_options_get(o, NULL, buf, sizeof(buf)), CESIUM_EINVAL);
	expect_err(cesium_options_get(o, "memtable_size", NULL, sizeof(buf)), CESIUM_EINVAL);
	/* A buffer too small is refused, not overrun. */
	memset(buf, 'Z', sizeof(buf));
	assert_true(cesium_options_get(o, "memtable_size", buf, 1) < 0);
	assert_int_equal(buf[1], 'Z');
	cesium_options_free(o);
}

/* Database calls with a NULL handle or NULL out-pointers return EINVAL. */
static void test_null_db_args_are_einval(void **state)
{
	struct test_fx *f = *state;
	cesium_db *db = NULL;
	void *v = NULL;
	size_t vl = 0;
	char *s = NULL;
	expect_err(cesium_open(NULL, NULL, &db), CESIUM_EINVAL);
	assert_null(db);
	expect_err(cesium_open(f->dir, NULL, NULL), CESIUM_EINVAL);
	assert_true(cesium_open("", NULL, &db) < 0);
	assert_null(db);
	expect_err(cesium_close(NULL), CESIUM_EINVAL);
	expect_err(cesium_put(NULL, "k", 1, "v", 1), CESIUM_EINVAL);
	expect_err(cesium_get(NULL, "k", 1, &v, &vl), CESIUM_EINVAL);
	expect_err(cesium_delete(NULL, "k", 1), CESIUM_EINVAL);
	expect_err(cesium_put_ns(NULL, 1, "k", 1, "v", 1), CESIUM_EINVAL);
	expect_err(cesium_get_ns(NULL, 1, "k", 1, &v, &vl), CESIUM_EINVAL);
	expect_err(cesium_delete_ns(NULL, 1, "k", 1), CESIUM_EINVAL);
	expect_err(cesium_sync(NULL), CESIUM_EINVAL);
	expect_err(cesium_flush(NULL), CESIUM_EINVAL);
	expect_err(cesium_compact(NULL), CESIUM_EINVAL);
	expect_err(cesium_stats(NULL, &s), CESIUM_EINVAL);
	cesium_iter *it = NULL;
	expect_err(cesium_iter_new(NULL, 0, &it), CESIUM_EINVAL);
	assert_null(it);

	f->db = open_db(f->dir, NULL);
	expect_err(cesium_put(f->db, NULL, 1, "v", 1), CESIUM_EINVAL);
	expect_err(cesium_put(f->db, "k", 1, NULL, 1), CESIUM_EINVAL);
	expect_err(cesium_put_ns(f->db, 2, NULL, 1, "v", 1), CESIUM_EINVAL);
	expect_err(cesium_put_ns(f->db, 2, "k", 1, NULL, 1), CESIUM_EINVAL);
	expect_err(cesium_get(f->db, NULL, 1, &v, &vl), CESIUM_EINVAL);
	expect_err(cesium_get(f->db, "k", 1, NULL, &vl), CESIUM_EINVAL);
	expect_err(cesium_get(f->db, "k", 1, &v, NULL), CESIUM_EINVAL);
	expect_err(cesium_get_ns(f->db, 2, NULL, 1, &v, &vl), CESIUM_EINVAL);
	expect_err(cesium_get_ns(f->db, 2, "k", 1, NULL, &vl), CESIUM_EINVAL);
	expect_err(cesium_get_ns(f->db, 2, "k", 1, &v, NULL), CESIUM_EINVAL);
	expect_err(cesium_delete(f->db, NULL, 1), CESIUM_EINVAL);
	expect_err(cesium_delete_ns(f->db, 2, NULL, 1), CESIUM_EINVAL);
	expect_err(cesium_write(NULL, NULL, 0), CESIUM_EINVAL);
	expect_err(cesium_write(f->db, NULL, 0), CESIUM_EINVAL);
	expect_err(cesium_stats(f->db, NULL), CESIUM_EINVAL);
	expect_err(cesium_iter_new(f->db, 0, NULL), CESIUM_EINVAL);
	/* Nothing of the above was written. */
	assert_int_equal(cesium_get(f->db, "k", 1, &v, &vl), CESIUM_ENOTFOUND);
	assert_int_equal(cesium_get_ns(f->db, 2, "k", 1, &v, &vl), CESIUM_ENOTFOUND);
}

/* Batch and iterator calls with NULL handles or pointers return EINVAL;
 * the void ones do nothing and the accessors report "no entry". */
static void test_null_batch_and_iter_args_are_einval(void **state)
{
	struct test_fx *f = *state;
	cesium_batch *b = NULL;
	expect_err(cesium_batch_new(NULL), CESIUM_EINVAL);
	expect_err(cesium_batch_put(NULL, 0, "k", 1, "v", 1), CESIUM_EINVAL);
	expect_err(cesium_batch_delete(NULL, 0, "k", 1), CESIUM_EINVAL);
	check_ok(cesium_batch_new(&b), "batch_new");
	expect_err(cesium_batch_put(b, 0, NULL, 1, "v", 1), CESIUM_EINVAL);
	expect_err(cesium_batch_put(b, 0, "k", 1, NULL, 1), CESIUM_EINVAL);
	expect_err(cesium_batch_delete(b, 0, NULL, 1), CESIUM_EINVAL);
	cesium_batch_free(b);

	expect_err(cesium_iter_set_upper_bound(NULL, "k", 1), CESIUM_EINVAL);
	expect_err(cesium_iter_status(NULL), CESIUM_EINVAL);
	cesium_iter_seek(NULL, "k", 1);
	cesium_iter_seek_first(NULL);
	cesium_iter_next(NULL);
	assert_false(cesium_iter_valid(NULL));
	size_t kl = 7, vl = 7;
	assert_null(cesium_iter_key(NULL, &kl));
	assert_null(cesium_iter_value(NULL, &vl));

	f->db = open_db(f->dir, NULL);
	cesium_iter *it = NULL;
	check_ok(cesium_iter_new(f->db, 0, &it), "iter_new");
	expect_err(cesium_iter_set_upper_bound(it, NULL, 3), CESIUM_EINVAL);
	cesium_iter_seek(it, NULL, 3);
	assert_false(cesium_iter_valid(it));
	/* Moving an iterator that is not positioned is harmless. */
	cesium_iter_next(it);
	assert_false(cesium_iter_valid(it));
	assert_null(cesium_iter_key(it, &kl));
	assert_null(cesium_iter_value(it, &vl));
	cesium_iter_free(it);
}

/* The void destructors accept NULL. */
static void test_void_functions_accept_null(void **state)
{
	(void)state;
	cesium_options_free(NULL);
	cesium_batch_free(NULL);
	cesium_batch_clear(NULL);
	cesium_iter_free(NULL);
	cesium_free(NULL);
	assert_non_null(cesium_errmsg());
}

/* Every code has a name; unknown codes too. */
static void test_strerror_names_every_code(void **state)
{
	(void)state;
	const int codes[] = {CESIUM_OK,      CESIUM_ENOTFOUND, CESIUM_EINVAL,   CESIUM_ENOMEM,
	                     CESIUM_EIO,     CESIUM_ENOSPC,    CESIUM_ECORRUPT, CESIUM_EBUSY,
	                     CESIUM_ECLOSED, CESIUM_ENOTSUP,   -12345,          12345};
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		const char *s = cesium_strerror(codes[i]);
		assert_non_null(s);
		assert_true(s[0] != '\0');
	}
	assert_string_not_equal(cesium_strerror(CESIUM_EIO), cesium_strerror(CESIUM_ECORRUPT));
}

/* Empty keys and keys or values over the limits are CESIUM_EINVAL
 * everywhere, and nothing is written. */
static void test_bad_key_and_value_sizes_are_einval(void **state)
{
	struct test_fx *f = *state;
	size_t big_key = (size_t)CESIUM_MAX_KEY_SIZE + 1;
	size_t big_val = (size_t)CESIUM_MAX_VALUE_SIZE + 1;
	char *k = calloc(1, big_key);
	char *v = calloc(1, big_val); /* lazily mapped zero pages: cheap */
	void *out = NULL;
	size_t ol = 0;
	assert_non_null(k);
	assert_non_null(v);
	memset(k, 'k', big_key);
	f->db = open_db(f->dir, NULL);
	cesium_batch *b = NULL;
	check_ok(cesium_batch_new(&b), "batch_new");

	expect_err(cesium_put(f->db, "k", 0, "v", 1), CESIUM_EINVAL);
	expect_err(cesium_put_ns(f->db, 5, "k", 0, "v", 1), CESIUM_EINVAL);
	expect_err(cesium_get(f->db, "k", 0, &out, &ol), CESIUM_EINVAL);
	expect_err(cesium_get_ns(f->db, 5, "k", 0, &out, &ol), CESIUM_EINVAL);
	expect_err(cesium_delete(f->db, "k", 0), CESIUM_EINVAL);
	expect_err(cesium_delete_ns(f->db, 5, "k", 0), CESIUM_EINVAL);
	expect_err(cesium_batch_put(b, 0, "k", 0, "v", 1), CESIUM_EINVAL);
	expect_err(cesium_batch_delete(b, 0, "k", 0), CESIUM_EINVAL);

	expect_err(cesium_put(f->db, k, big_key, "v", 1), CESIUM_EINVAL);
	expect_err(cesium_put_ns(f->db, 5, k, big_key, "v", 1), CESIUM_EINVAL);
	expect_err(cesium_get(f->db, k, big_key, &out, &ol), CESIUM_EINVAL);
	expect_err(cesium_get_ns(f->db, 5, k, big_key, &out, &ol), CESIUM_EINVAL);
	expect_err(cesium_delete(f->db, k, big_key), CESIUM_EINVAL);
	expect_err(cesium_delete_ns(f->db, 5, k, big_key), CESIUM_EINVAL);
	expect_err(cesium_batch_put(b, 0, k, big_key, "v", 1), CESIUM_EINVAL);
	expect_err(cesium_batch_delete(b, 0, k, big_key), CESIUM_EINVAL);

	expect_err(cesium_put(f->db, "k", 1, v, big_val), CESIUM_EINVAL);
	expect_err(cesium_put_ns(f->db, 5, "k", 1, v, big_val), CESIUM_EINVAL);
	expect_err(cesium_batch_put(b, 0, "k", 1, v, big_val), CESIUM_EINVAL);
	expect_err(cesium_put(f->db, "k", 1, v, SIZE_MAX), CESIUM_EINVAL);
	expect_err(cesium_put(f->db, k, SIZE_MAX, "v", 1), CESIUM_EINVAL);

	cesium_iter *it = NULL;
	check_ok(cesium_iter_new(f->db, 0, &it), "iter_new");
	expect_err(cesium_iter_set_upper_bound(it, k, big_key), CESIUM_EINVAL);
	cesium_iter_free(it);

	/* The rejected entries left the batch empty: writing it changes nothing. */
	check_ok(cesium_write(f->db, b, 0), "write");
	cesium_batch_free(b);
	assert_int_equal(cesium_get(f->db, "k", 1, &out, &ol), CESIUM_ENOTFOUND);
	assert_int_equal(cesium_get_ns(f->db, 5, "k", 1, &out, &ol), CESIUM_ENOTFOUND);
	check_ok(cesium_iter_new(f->db, 0, &it), "iter_new");
	cesium_iter_seek_first(it);
	assert_false(cesium_iter_valid(it));
	cesium_iter_free(it);
	free(k);
	free(v);
}

/* Unknown option names and malformed or out-of-range values are EINVAL
 * and leave the options unchanged. */
static void test_bad_option_names_and_values_are_einval(void **state)
{
	(void)state;
	static const char *const bad[][2] = {
	    {"no_such_option", "1"},
	    {"", "1"},
	    {"MEMTABLE_SIZE", "1MiB"},
	    {"memtable_size ", "1MiB"},
	    {"memtable_size", ""},
	    {"memtable_size", "abc"},
	    {"memtable_size", "12XB"},
	    {"memtable_size", "-5"},
	    {"memtable_size", "1MiBx"},
	    {"memtable_size", "99999999999999999999999"},
	    {"memtable_size", "99999999999GiB"},
	    {"block_cache_size", "lots"},
	    {"block_size", "0x"},
	    {"create_if_missing", "maybe"},
	    {"error_if_exists", "2"},
	    {"sync_writes", "yes please"},
	    {"compression", "lz77"},
	    {"compression", ""},
	    {"bloom_bits_per_key", "many"},
	    {"compaction_workers", "-1"},
	    {"max_memtables", "x"},
	    {"l0_slowdown_trigger", "1.5"},
	    {"l0_stop_trigger", "ten"},
	};
	cesium_options *o = NULL;
	char before[64], after[64];
	check_ok(cesium_options_new(&o), "options_new");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		bool known = cesium_options_get(o, bad[i][0], before, sizeof(before)) == 0;
		int rc = cesium_options_set(o, bad[i][0], bad[i][1]);
		if (rc != CESIUM_EINVAL)
			print_error("set '%s'='%s' returned %d, want CESIUM_EINVAL\n", bad[i][0],
			            bad[i][1], rc);
		assert_int_equal(rc, CESIUM_EINVAL);
		assert_true(cesium_errmsg()[0] != '\0');
		if (known) {
			check_ok(cesium_options_get(o, bad[i][0], after, sizeof(after)), "get");
			assert_string_equal(before, after);
		}
	}
	cesium_options_free(o);
}

/* A path that is a regular file is refused with a message. */
static void test_regular_file_path_is_rejected(void **state)
{
	struct test_fx *f = *state;
	char path[4096];
	cesium_db *db = NULL;
	snprintf(path, sizeof(path), "%s/file", f->dir);
	write_file(path, "not a database\n", 15);
	int rc = cesium_open(path, NULL, &db);
	print_message("open of a regular file: %s: %s\n", cesium_strerror(rc), cesium_errmsg());
	assert_true(rc == CESIUM_EINVAL || rc == CESIUM_ECORRUPT || rc == CESIUM_EIO);
	assert_null(db);
	assert_true(cesium_errmsg()[0] != '\0');
}

/* A directory whose CURRENT holds junk, or names a missing manifest, is
 * not opened (and not overwritten) but reported. */
static void test_foreign_directory_is_rejected(void **state)
{
	struct test_fx *f = *state;
	char path[4096];
	cesium_db *db = NULL;
	unsigned char junk[300];
	uint64_t s = 99;
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (unsigned char)test_rand(&s);
	snprintf(path, sizeof(path), "%s/CURRENT", f->dir);
	write_file(path, junk, sizeof(junk));
	int rc = cesium_open(f->dir, NULL, &db);
	print_message("junk CURRENT: %s: %s\n", cesium_strerror(rc), cesium_errmsg());
	assert_true(rc == CESIUM_ECORRUPT || rc == CESIUM_EINVAL);
	assert_null(db);
	assert_true(cesium_errmsg()[0] != '\0');
	/* The foreign file is left as it was. */
	size_t len = 0;
	unsigned char *back = read_whole(path, &len);
	assert_int_equal(len, sizeof(junk));
	assert_memory_equal(back, junk, len);
	free(back);

	write_file(path, "MANIFEST-000099\n", 16);
	rc = cesium_open(f->dir, NULL, &db);
	print_message("CURRENT naming a missing manifest: %s: %s\n", cesium_strerror(rc),
	              cesium_errmsg());
	assert_true(rc < 0 && rc != CESIUM_ENOTFOUND);
	assert_null(db);
	assert_true(cesium_errmsg()[0] != '\0');
}

/* Names in dir other than . and .., NULL-terminated. */
static char **list_all(const char *dir)
{
	char **names = list_files(dir, "");
	size_t k = 0;
	for (size_t i = 0; names[i]; i++) {
		if (strcmp(names[i], ".") == 0 || strcmp(names[i], "..") == 0)
			free(names[i]);
		else
			names[k++] = names[i];
	}
	names[k] = NULL;
	return names;
}

static size_t count_names(char **names)
{
	size_t n = 0;
	while (names[n])
		n++;
	return n;
}

/* A directory holding only someone else's files (no CURRENT) is refused
 * with CESIUM_EINVAL naming a file, and nothing is created in it; an empty
 * directory is still adopted, and a database keeps opening with a foreign
 * file put beside it later. */
static void test_directory_of_foreign_files_is_not_adopted(void **state)
{
	struct test_fx *f = *state;
	char path[4096];
	cesium_db *db = NULL;
	snprintf(path, sizeof(path), "%s/notes.txt", f->dir);
	write_file(path, "shopping list\n", 14);
	snprintf(path, sizeof(path), "%s/photo.jpg", f->dir);
	write_file(path, "\xff\xd8\xff\xe0", 4);
	int rc = cesium_open(f->dir, NULL, &db);
	print_message("foreign files: %s: %s\n", cesium_strerror(rc), cesium_errmsg());
	assert_int_equal(rc, CESIUM_EINVAL);
	assert_null(db);
	assert_non_null(strstr(cesium_errmsg(), "not a cesium database"));
	assert_true(strstr(cesium_errmsg(), "notes.txt") || strstr(cesium_errmsg(), "photo.jpg"));
	char **names = list_all(f->dir);
	for (size_t i = 0; names[i]; i++)
		print_message("left in the directory: %s\n", names[i]);
	assert_int_equal(count_names(names), 2);
	free_list(names);

	/* One foreign name among cesium's own is enough to refuse. */
	snprintf(path, sizeof(path), "%s/photo.jpg", f->dir);
	assert_int_equal(unlink(path), 0);
	snprintf(path, sizeof(path), "%s/000007.wal", f->dir);
	write_file(path, "", 0);
	expect_err(cesium_open(f->dir, NULL, &db), CESIUM_EINVAL);
	assert_non_null(strstr(cesium_errmsg(), "notes.txt"));
	assert_null(db);

	/* Emptied, the directory is adopted. */
	assert_int_equal(unlink(path), 0);
	snprintf(path, sizeof(path), "%s/notes.txt", f->dir);
	assert_int_equal(unlink(path), 0);
	f->db = open_db(f->dir, NULL);
	check_ok(cesium_put(f->db, "k", 1, "v", 1), "put");
	close_db(f);
	/* A file put beside a database afterwards does not lock it out, and
	 * one named like an old MANIFEST (a backup copy) is not removed as
	 * one: only names the engine gives are its own. */
	write_file(path, "shopping list\n", 14);
	char backup[4096];
	snprintf(backup, sizeof(backup), "%s/MANIFEST-000001.bak", f->dir);
	write_file(backup, "kept\n", 5);
	f->db = open_db(f->dir, NULL);
	void *out = NULL;
	size_t ol = 0;
	check_ok(cesium_get(f->db, "k", 1, &out, &ol), "get");
	assert_int_equal(ol, 1);
	cesium_free(out);
	assert_int_equal(access(path, F_OK), 0);
	assert_int_equal(access(backup, F_OK), 0);
}

/* An open database is locked: a second open is CESIUM_EBUSY. */
static void test_locked_database_is_busy(void **state)
{
	struct test_fx *f = *state;
	cesium_db *db = NULL;
	f->db = open_db(f->dir, NULL);
	expect_err(cesium_open(f->dir, NULL, &db), CESIUM_EBUSY);
	assert_null(db);
	check_ok(cesium_put(f->db, "k", 1, "v", 1), "put still works");
}

/* A log cut in the middle of its last record opens; every write before
 * the torn one is there, the torn one is not, and new writes after the
 * recovery survive another reopen. */
static void test_torn_wal_tail_loses_only_the_torn_write(void **state)
{
	struct test_fx *f = *state;
	char k[32], v[128];
	void *out = NULL;
	size_t ol = 0;
	/* A tear happens only where the log was never synced: the writes
	 * come from a process that dies without closing (a clean close
	 * syncs, and damage below the sync watermark is corruption). */
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		cesium_db *db = NULL;
		if (cesium_open(f->dir, NULL, &db) != 0)
			_exit(1);
		fill_pattern(db, "walval", 100, 64);
		raise(SIGKILL);
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	char *name = damage_value(f->dir, ".wal", "walval", 99, 64, true);
	print_message("tore %s\n", name);
	free(name);
	f->db = open_db(f->dir, NULL);
	for (unsigned i = 0; i < 99; i++) {
		key_of(k, sizeof(k), i);
		size_t vl = pattern_value(v, 64, "walval", i);
		int rc = cesium_get(f->db, k, strlen(k), &out, &ol);
		if (rc)
			print_error("key %u lost: %s: %s\n", i, cesium_strerror(rc),
			            cesium_errmsg());
		assert_int_equal(rc, 0);
		assert_int_equal(ol, vl);
		assert_memory_equal(out, v, vl);
		cesium_free(out);
	}
	assert_int_equal(cesium_get(f->db, "key000099", 9, &out, &ol), CESIUM_ENOTFOUND);
	check_ok(cesium_put(f->db, "after", 5, "tear", 4), "put after recovery");
	close_db(f);
	f->db = open_db(f->dir, NULL);
	check_ok(cesium_get(f->db, "after", 5, &out, &ol), "get after second reopen");
	assert_int_equal(ol, 4);
	cesium_free(out);
	check_ok(cesium_get(f->db, "key000098", 9, &out, &ol), "get before the tear");
	cesium_free(out);
}

/* A flipped bit in the middle of a log (valid records after it) is
 * corruption, reported with the file's name, not a torn tail. */
static void test_wal_bit_flip_is_corruption(void **state)
{
	struct test_fx *f = *state;
	cesium_db *db = NULL;
	f->db = open_db(f->dir, NULL);
	fill_pattern(f->db, "walval", 100, 64);
	close_db(f);
	char *name = damage_value(f->dir, ".wal", "walval", 50, 64, false);
	int rc = cesium_open(f->dir, NULL, &db);
	print_message("flipped a bit in %s: %s: %s\n", name, cesium_strerror(rc), cesium_errmsg());
	if (rc == 0)
		cesium_close(db);
	assert_int_equal(rc, CESIUM_ECORRUPT);
	assert_non_null(strstr(cesium_errmsg(), name));
	free(name);
}

static cesium_options *no_compression(void)
{
	cesium_options *o = NULL;
	check_ok(cesium_options_new(&o), "options_new");
	check_ok(cesium_options_set(o, "compression", "none"), "set compression");
	return o;
}

/* Reopens a database whose segment was damaged and reads every key: each
 * read gives the right value or CESIUM_ECORRUPT naming the file, and at
 * least one read (or the open itself) reports the damage. */
static void expect_segment_damage_reported(struct test_fx *f, const cesium_options *o, const char *name,
                                           unsigned n, size_t vsize)
{
	char k[32], v[512];
	unsigned corrupt = 0;
	int rc = cesium_open(f->dir, o, &f->db);
	if (rc != 0) {
		print_message("open: %s: %s\n", cesium_strerror(rc), cesium_errmsg());
		f->db = NULL;
		assert_int_equal(rc, CESIUM_ECORRUPT);
		assert_non_null(strstr(cesium_errmsg(), name));
		return;
	}
	for (unsigned i = 0; i < n; i++) {
		void *out = NULL;
		size_t ol = 0;
		key_of(k, sizeof(k), i);
		size_t vl = pattern_value(v, vsize, "segval", i);
		rc = cesium_get(f->db, k, strlen(k), &out, &ol);
		if (rc == CESIUM_ECORRUPT) {
			if (corrupt++ == 0)
				print_message("get %s: %s\n", k, cesium_errmsg());
			assert_non_null(strstr(cesium_errmsg(), name));
			continue;
		}
		if (rc != 0)
			print_error("get %s: %s: %s\n", k, cesium_strerror(rc), cesium_errmsg());
		assert_int_equal(rc, 0);
		if (ol != vl || memcmp(out, v, vl) != 0)
			print_error("get %s returned a wrong value silently\n", k);
		assert_int_equal(ol, vl);
		assert_memory_equal(out, v, vl);
		cesium_free(out);
	}
	assert_true(corrupt > 0);
	/* A scan stops at the damage with the error in its status. */
	cesium_iter *it = NULL;
	check_ok(cesium_iter_new(f->db, 0, &it), "iter_new");
	unsigned seen = 0;
	for (cesium_iter_seek_first(it); cesium_iter_valid(it); cesium_iter_next(it))
		seen++;
	assert_true(seen < n);
	assert_int_equal(cesium_iter_status(it), CESIUM_ECORRUPT);
	cesium_iter_free(it);
}

/* A flipped bit in a segment's data is reported as CESIUM_ECORRUPT with
 * the segment's name, never returned as data. */
static void test_segment_bit_flip_is_corruption(void **state)
{
	struct test_fx *f = *state;
	cesium_options *o = no_compression();
	f->db = open_db(f->dir, o);
	fill_pattern(f->db, "segval", 2000, 200);
	check_ok(cesium_flush(f->db), "flush");
	close_db(f);
	char *name = damage_value(f->dir, ".seg", "segval", 1000, 200, false);
	expect_segment_damage_reported(f, o, name, 2000, 200);
	free(name);
	cesium_options_free(o);
}

/* A segment cut short is reported as CESIUM_ECORRUPT with its name. */
static void test_truncated_segment_is_corruption(void **state)
{
	struct test_fx *f = *state;
	cesium_options *o = no_compression();
	f->db = open_db(f->dir, o);
	fill_pattern(f->db, "segval", 2000, 200);
	check_ok(cesium_flush(f->db), "flush");
	close_db(f);
	char *name = damage_value(f->dir, ".seg", "segval", 1000, 200, true);
	expect_segment_damage_reported(f, o, name, 2000, 200);
	free(name);
	cesium_options_free(o);
}

int main(void)
{
	test_require_io_uring();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_null_option_args_are_einval),
	    cmocka_unit_test_setup_teardown(test_null_db_args_are_einval, fx_setup, test_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_null_batch_and_iter_args_are_einval, fx_setup,
	                                    test_fx_teardown),
	    cmocka_unit_test(test_void_functions_accept_null),
	    cmocka_unit_test(test_strerror_names_every_code),
	    cmocka_unit_test_setup_teardown(test_bad_key_and_value_sizes_are_einval, fx_setup,
	                                    test_fx_teardown),
	    cmocka_unit_test(test_bad_option_names_and_values_are_einval),
	    cmocka_unit_test_setup_teardown(test_regular_file_path_is_rejected, fx_setup,
	                                    test_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_foreign_directory_is_rejected, fx_setup,
	                                    test_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_directory_of_foreign_files_is_not_adopted, fx_setup,
	                                    test_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_locked_database_is_busy, fx_setup, test_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_torn_wal_tail_loses_only_the_torn_write, fx_setup,
	                                    test_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_wal_bit_flip_is_corruption, fx_setup, test_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_segment_bit_flip_is_corruption, fx_setup,
	                                    test_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_truncated_segment_is_corruption, fx_setup,
	                                    test_fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
