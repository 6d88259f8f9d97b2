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
#include "test_util.h"

/* ---- helpers ---------------------------------------------------------- */

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Opens dir with name=value option pairs (NULL-terminated). */
/* These tests compare exact shapes across reopens: background compaction
 * would move segments while they look. */
#define NO_AUTO_COMPACTION                                                                       \
	"l0_compaction_trigger", "1000", "l0_slowdown_trigger", "1000", "l0_stop_trigger", "1000"

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
