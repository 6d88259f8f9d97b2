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
#include "error.h"
#include "fault.h"
#include "test_util.h"

/* ---- helpers ---------------------------------------------------------- */

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Opens dir with name=value option pairs (NULL-terminated). */
static cesium_db *open_db(const char *dir, ...)
{
	cesium_options *o = NULL;
	assert_int_equal(cesium_options_new(&o), 0);
	va_list ap;
	va_start(ap, dir);
	const char *name;
	while ((name = va_arg(ap, const char *)) != NULL) {
		const char *value = va_arg(ap, const char *);
		assert_int_equal(cesium_options_set(o, name, value), 0);
	}
	va_end(ap);
	cesium_db *db = NULL;
	int rc = cesium_open(dir, o, &db);
	if (rc)
		fprintf(stderr, "cesium_open: %s: %s\n", cesium_strerror(rc), cesium_errmsg());
	assert_int_equal(rc, 0);
	cesium_options_free(o);
	return db;
}

static size_t key_of(char *buf, unsigned id)
{
	return (size_t)snprintf(buf, 32, "key%06u", id);
}

static size_t value_of(char *buf, size_t cap, unsigned id, unsigned gen)
{
	/* Padded, so that segments have some bulk. */
	static const char pad[] =
	    "................................................................";
	int n = snprintf(buf, cap, "v%u-%06u-", gen, id);
	size_t len = (size_t)n;
	for (size_t i = 0; i + 1 < sizeof(pad) && len + 1 < cap; i++)
		buf[len++] = pad[i];
	buf[len] = '\0';
	return len;
}

static void put_kv(cesium_db *db, unsigned id, unsigned gen)
{
	char k[32], v[128];
	size_t kl = key_of(k, id), vl = value_of(v, sizeof(v), id, gen);
	int rc = cesium_put(db, k, kl, v, vl);
	if (rc)
		fprintf(stderr, "put %u: %s\n", id, cesium_errmsg());
	assert_int_equal(rc, 0);
}

/* The model: gen[id] is the generation of id's value, 0 = absent. */
struct model {
	unsigned n;
	unsigned *gen;
};

static void model_init(struct model *m, unsigned n)
{
	m->n = n;
	m->gen = calloc(n, sizeof(unsigned));
	assert_non_null(m->gen);
}

static void model_put(cesium_db *db, struct model *m, unsigned id, unsigned gen)
{
	put_kv(db, id, gen);
	m->gen[id] = gen;
}

static void model_delete(cesium_db *db, struct model *m, unsigned id)
{
	char k[32];
	size_t kl = key_of(k, id);
	assert_int_equal(cesium_delete(db, k, kl), 0);
	m->gen[id] = 0;
}

/* Every key of the model reads back through get and through an iterator. */
static void model_check(cesium_db *db, const struct model *m)
{
	for (unsigned id = 0; id < m->n; id++) {
		char k[32], want[128];
		size_t kl = key_of(k, id);
		void *val = NULL;
		size_t vlen = 0;
		int rc = cesium_get(db, k, kl, &val, &vlen);
		if (m->gen[id] == 0) {
			if (rc != CESIUM_ENOTFOUND)
				fprintf(stderr, "key %u: want absent, got %d\n", id, rc);
			assert_int_equal(rc, CESIUM_ENOTFOUND);
			continue;
		}
		if (rc)
			fprintf(stderr, "key %u: get %d %s\n", id, rc, cesium_errmsg());
		assert_int_equal(rc, 0);
		size_t wl = value_of(want, sizeof(want), id, m->gen[id]);
		assert_int_equal(vlen, wl);
		assert_memory_equal(val, want, wl);
		cesium_free(val);
	}
	cesium_iter *it = NULL;
	assert_int_equal(cesium_iter_new(db, 0, &it), 0);
	unsigned id = 0;
	for (cesium_iter_seek_first(it); cesium_iter_valid(it); cesium_iter_next(it)) {
		while (id < m->n && m->gen[id] == 0)
			id++;
		assert_true(id < m->n);
		char k[32], want[128];
		size_t kl = key_of(k, id), wl = value_of(want, sizeof(want), id, m->gen[id]);
		size_t gkl, gvl;
		const void *gk = cesium_iter_key(it, &gkl);
		const void *gv = cesium_iter_value(it, &gvl);
		if (gkl != kl || memcmp(gk, k, kl) != 0)
			fprintf(stderr, "iterator: want %.*s got %.*s\n", (int)kl, k, (int)gkl,
			        (const char *)gk);
		assert_int_equal(gkl, kl);
		assert_memory_equal(gk, k, kl);
		assert_int_equal(gvl, wl);
		assert_memory_equal(gv, want, wl);
		id++;
	}
	assert_int_equal(cesium_iter_status(it), 0);
	while (id < m->n && m->gen[id] == 0)
		id++;
	assert_int_equal(id, m->n);
	cesium_iter_free(it);
}

static uint64_t stat_of(cesium_db *db, const char *name)
{
	char *text = NULL;
	assert_int_equal(cesium_stats(db, &text), 0);
	size_t n = strlen(name);
	uint64_t v = UINT64_MAX;
	for (char *line = text; line && *line;) {
		if (strncmp(line, name, n) == 0 && line[n] == ' ') {
			v = strtoull(line + n + 1, NULL, 10);
			break;
		}
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	cesium_free(text);
	if (v == UINT64_MAX)
		fprintf(stderr, "no statistic %s\n", name);
	assert_true(v != UINT64_MAX);
	return v;
}

static uint64_t total_segments(cesium_db *db)
{
	uint64_t n = 0;
	for (int l = 0; l < 8; l++) {
		char name[32];
		snprintf(name, sizeof(name), "level%d_segments", l);
		n += stat_of(db, name);
	}
	return n;
}

static int count_files(const char *dir, const char *suffix)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	int n = 0;
	size_t sl = strlen(suffix);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		size_t l = strlen(e->d_name);
		if (l >= sl && strcmp(e->d_name + l - sl, suffix) == 0)
			n++;
	}
	closedir(d);
	return n;
}

/* Waits (cleanup is asynchronous) until dir holds want files ending in suffix. */
static int wait_files(const char *dir, const char *suffix, int want)
{
	uint64_t deadline = now_ns() + 5000000000ull;
	int n;
	while ((n = count_files(dir, suffix)) != want && now_ns() < deadline)
		usleep(2000);
	return n;
}

/* ---- fault hook: fails one write (or sync) of files with a given suffix -- */

struct file_fault {
	enum io_op op;
	const char *suffix; /* ".seg", ".wal", "MANIFEST" ... */
	int err;            /* 0: shorten the write to half */
	unsigned nth;       /* fail the nth matching operation after arming */
	bool every;         /* fail every matching operation from the nth on */
	atomic_bool armed;
	atomic_uint seen, failed;
	pthread_mutex_t mu;
	char path[512]; /* the file that failed first */
};

static bool fd_matches(int fd, const char *suffix, char *out, size_t cap)
{
	if (fd < 0)
		return false;
	char link[64], target[512];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, target, sizeof(target) - 1);
	if (n <= 0)
		return false;
	target[n] = '\0';
	if (!strstr(target, suffix))
		return false;
	snprintf(out, cap, "%s", target);
	return true;
}

static int file_fault_hook(void *arg, enum io_op op, int fd, const char *path, size_t *len)
{
	struct file_fault *f = arg;
	char target[512];
	if (op != f->op || !atomic_load(&f->armed))
		return 0;
	if (path) {
		if (!strstr(path, f->suffix))
			return 0;
		snprintf(target, sizeof(target), "%s", path);
	} else if (!fd_matches(fd, f->suffix, target, sizeof(target))) {
		return 0;
	}
	unsigned k = atomic_fetch_add(&f->seen, 1) + 1;
	if (k < f->nth || (k > f->nth && !f->every))
		return 0;
	if (atomic_fetch_add(&f->failed, 1) == 0) {
		pthread_mutex_lock(&f->mu);
		snprintf(f->path, sizeof(f->path), "%s", target);
		pthread_mutex_unlock(&f->mu);
	}
	if (f->err)
		return f->err;
	*len /= 2;
	return 0;
}

static void file_fault_arm(struct file_fault *f, enum io_op op, const char *suffix, int err,
                           unsigned nth)
{
	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->mu, NULL);
	f->op = op;
	f->suffix = suffix;
	f->err = err;
	f->nth = nth;
	io_fault_set(file_fault_hook, f);
	atomic_store(&f->armed, true);
}

static void file_fault_disarm(struct file_fault *f)
{
	atomic_store(&f->armed, false);
	io_fault_set(NULL, NULL);
	pthread_mutex_destroy(&f->mu);
}

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
	assert_int_equal(cesium_close(db), 0);
	db = open_db(dir, NULL);
	model_check(db, &m);
	assert_int_equal(cesium_close(db), 0);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_flush_adds_one_l0_segment_and_deletes_its_wal),
	    cmocka_unit_test(test_flush_of_empty_memtable_creates_no_file),
	    cmocka_unit_test(test_flushed_tombstones_hide_older_segments),
	    cmocka_unit_test(test_recovered_memtable_is_flushed),
	    cmocka_unit_test(test_background_flushes_keep_newest_values),
	    cmocka_unit_test(test_segment_fsync_failure_fails_flush),
	};
	test_require_io_uring();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
