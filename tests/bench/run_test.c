/* End-to-end runs of bench/run.c against every engine built in: load,
 * verified random reads, scans, deletes, concurrent clones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cesium.h"
#include "run.h"
#include "test_util.h"

/* Exits 77 (meson: skipped) when cesium cannot open a database here
 * (io_uring refused by the kernel or a seccomp filter). */
static void require_cesium(void)
{
	char dir[] = "/tmp/bench-run-probe-XXXXXX";
	cesium_options *o = NULL;
	cesium_db *db = NULL;
	if (!mkdtemp(dir) || cesium_options_new(&o))
		return;
	int rc = cesium_open(dir, o, &db);
	cesium_options_free(o);
	if (rc == 0)
		cesium_close(db);
	char cmd[64];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
	if (rc == CESIUM_ENOTSUP) {
		printf("skipped: %s\n", cesium_errmsg());
		exit(77);
	}
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(p);
	return 0;
}

static void set(struct job *j, const char *n, const char *v)
{
	char err[256];
	if (job_set(j, n, v, err, sizeof(err)))
		fail_msg("%s", err);
}

static void run_engine(const char *engine)
{
	const struct backend *be = backend_find(engine);
	if (!be)
		skip();
	enum { NJ = 6 };
	struct job jobs[NJ];
	char err[256];
	const char *spec[NJ][4] = {
	    {"load", "write", "2", NULL},         {"get", "randread", "2", "zipf:0.9"},
	    {"scan", "scan", "1", NULL},          {"mix", "randrw", "3", "pareto:0.2"},
	    {"batch", "randread", "2", "random"}, {"del", "delete", "1", NULL},
	};
	for (int i = 0; i < NJ; i++) {
		job_defaults(&jobs[i]);
		set(&jobs[i], "name", spec[i][0]);
		set(&jobs[i], "rw", spec[i][1]);
		set(&jobs[i], "numjobs", spec[i][2]);
		set(&jobs[i], "nrkeys", "20000");
		set(&jobs[i], "verify", "1");
		if (spec[i][3])
			set(&jobs[i], "random_distribution", spec[i][3]);
		if (i)
			set(&jobs[i], "stonewall", NULL);
		if (strcmp(engine, "cesium") == 0)
			set(&jobs[i], "opt", "memtable_size=1MiB");
		assert_int_equal(job_finalize(&jobs[i], err, sizeof(err)), 0);
	}
	set(&jobs[2], "number_ios", "500");
	set(&jobs[2], "scan_length", "10");
	/* Batches of 8 on a cold start; 10003 leaves a short last batch. */
	set(&jobs[4], "iodepth", "8");
	set(&jobs[4], "invalidate", "1");
	set(&jobs[4], "number_ios", "10003");
	char dir[] = "/tmp/bench-run-test-XXXXXX";
	assert_non_null(mkdtemp(dir));
	struct run_params p = {.be = be, .dir = dir};
	struct run_result res;
	assert_int_equal(run_jobs(&p, jobs, NJ, &res), 0);
	assert_int_equal(res.status, 0);
	assert_int_equal(res.njobs, NJ);
	assert_int_equal(res.jobs[0].d[DIR_WRITE].ios, 20000);
	assert_int_equal(res.jobs[0].clones, 2);
	/* Every key was loaded: no read misses, no wrong values. */
	assert_int_equal(res.jobs[1].d[DIR_READ].ios, 20000);
	assert_int_equal(res.jobs[1].not_found, 0);
	assert_int_equal(res.jobs[1].verify_errors, 0);
	assert_int_equal(res.jobs[2].d[DIR_READ].ios, 500);
	/* Each scan of 10 moves 10 entries of 116 bytes (unless near the end). */
	assert_true(res.jobs[2].d[DIR_READ].bytes > 500 * 116 * 5);
	uint64_t mix = res.jobs[3].d[DIR_READ].ios + res.jobs[3].d[DIR_WRITE].ios;
	assert_int_equal(mix, 20000);
	assert_true(res.jobs[3].d[DIR_READ].ios > 8000 && res.jobs[3].d[DIR_READ].ios < 12000);
	assert_int_equal(res.jobs[4].d[DIR_READ].ios, 10003);
	assert_int_equal(res.jobs[4].not_found, 0);
	assert_int_equal(res.jobs[4].verify_errors, 0);
	assert_int_equal(res.jobs[4].errors, 0);
	/* Each key's latency is its batch's: no faster than a lone get. */
	assert_true(res.jobs[4].d[DIR_READ].lat.min > 0);
	assert_int_equal(res.jobs[5].d[DIR_TRIM].ios, 20000);
	assert_true(res.jobs[1].d[DIR_READ].lat.max >= res.jobs[1].d[DIR_READ].lat.min);
	assert_true(res.disk_bytes > 0);
	assert_true(res.peak_rss_kb > 0);
	assert_true(res.peak_anon_kb > 0 && res.peak_anon_kb <= res.peak_rss_kb);
	run_result_free(&res);

	/* After the deletes, a read pass finds nothing, batched or not. */
	struct job rd;
	job_defaults(&rd);
	set(&rd, "rw", "randread");
	set(&rd, "nrkeys", "20000");
	set(&rd, "number_ios", "1000");
	set(&rd, "iodepth", "8");
	set(&rd, "invalidate", "1");
	assert_int_equal(job_finalize(&rd, err, sizeof(err)), 0);
	if (strcmp(engine, "cesium") == 0)
		set(&rd, "opt", "memtable_size=1MiB");
	assert_int_equal(run_jobs(&p, &rd, 1, &res), 0);
	assert_int_equal(res.status, 0);
	assert_int_equal(res.jobs[0].not_found, 1000);
	run_result_free(&res);
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* cesium: the whole job sequence gives exact op counts and no errors. */
static void test_cesium(void **state)
{
	(void)state;
	run_engine("cesium");
}

/* rocksdb, when built in: same sequence, same counts. */
static void test_rocksdb(void **state)
{
	(void)state;
	run_engine("rocksdb");
}

/* leveldb, when built in. */
static void test_leveldb(void **state)
{
	(void)state;
	run_engine("leveldb");
}

/* lmdb, when built in. */
static void test_lmdb(void **state)
{
	(void)state;
	run_engine("lmdb");
}

/* latest draws the newest key most, then the ones just before it, and
 * follows the newest key as it moves. */
static void test_latest_favours_recent_keys(void **state)
{
	(void)state;
	enum { N = 10000, DRAWS = 200000 };
	struct job j;
	struct run_keys g, u;
	char err[256];
	uint64_t seed = test_seed("bench_run latest");
	static uint32_t count[N + 1000];
	memset(count, 0, sizeof(count));
	job_defaults(&j);
	set(&j, "nrkeys", "10000");
	set(&j, "random_distribution", "latest");
	assert_int_equal(job_finalize(&j, err, sizeof(err)), 0);
	run_keys_init(&g, &j, seed);
	uint64_t top = 0, bottom = 0;
	for (int i = 0; i < DRAWS; i++) {
		uint64_t k = run_keys_next(&g, N - 1);
		assert_true(k < N);
		count[k]++;
		top += k >= N - N / 100;
		bottom += k < N / 10;
	}
	/* Uniform draws would put 1 % in the newest 1 % and 10 % in the oldest
	 * tenth; zipf(0.99) over recency puts about half in the newest 1 %. */
	assert_true(top > DRAWS * 2 / 5);
	assert_true(bottom < DRAWS / 50);
	assert_true(count[N - 1] > count[N - 2]);
	assert_true(count[N - 2] > count[N - 10]);
	assert_true(count[N - 1] > DRAWS / 20);
	/* The same test on uniform draws fails: the check can tell. */
	set(&j, "random_distribution", "random");
	run_keys_init(&u, &j, seed);
	uint64_t utop = 0;
	for (int i = 0; i < DRAWS; i++)
		utop += run_keys_next(&u, N - 1) >= N - N / 100;
	assert_true(utop < DRAWS / 50);
	/* 1000 inserts later, the new keys take the draws. */
	uint64_t newest = N + 999, fresh = 0, old_top = 0;
	for (int i = 0; i < DRAWS; i++) {
		uint64_t k = run_keys_next(&g, newest);
		assert_true(k <= newest);
		fresh += k >= newest + 1 - N / 100;
		old_top += k >= N - N / 100 && k < N;
	}
	assert_true(fresh > DRAWS * 2 / 5);
	assert_true(old_top < DRAWS / 20);
}

/* scan_length_distribution=uniform draws every length of 1..scan_length
 * about equally and nothing outside; fixed always gives scan_length. */
static void test_uniform_scan_lengths(void **state)
{
	(void)state;
	enum { LEN = 10, DRAWS = 20000 };
	struct job j;
	struct run_keys g;
	char err[256];
	unsigned seen[LEN + 1] = {0};
	uint64_t seed = test_seed("bench_run scan length");
	job_defaults(&j);
	set(&j, "rw", "scan");
	set(&j, "scan_length", "10");
	set(&j, "scan_length_distribution", "uniform");
	assert_int_equal(job_finalize(&j, err, sizeof(err)), 0);
	run_keys_init(&g, &j, seed);
	for (int i = 0; i < DRAWS; i++) {
		unsigned len = run_keys_scan_length(&g, &j);
		assert_true(len >= 1 && len <= LEN);
		seen[len]++;
	}
	/* Expected 2000 each; 1500 is > 10 standard deviations away. */
	for (unsigned l = 1; l <= LEN; l++)
		assert_true(seen[l] > 1500 && seen[l] < 2500);
	set(&j, "scan_length_distribution", "fixed");
	for (int i = 0; i < 100; i++)
		assert_int_equal(run_keys_scan_length(&g, &j), LEN);
	set(&j, "scan_length_distribution", "uniform");
	set(&j, "scan_length", "1");
	for (int i = 0; i < 100; i++)
		assert_int_equal(run_keys_scan_length(&g, &j), 1);
}

/* insert=1 puts new keys after nrkeys in order; latest reads of two
 * concurrent clones find every key (only completed inserts are drawn),
 * and a later pass sees nrkeys + inserts entries. Uniform scans of a
 * YCSB-E mix stay within scan_length. */
static void test_inserts_extend_key_space(void **state)
{
	(void)state;
	enum { NJ = 4 };
	struct job jobs[NJ];
	char err[256];
	for (int i = 0; i < NJ; i++) {
		job_defaults(&jobs[i]);
		set(&jobs[i], "nrkeys", "2000");
		set(&jobs[i], "verify", "1");
		set(&jobs[i], "opt", "memtable_size=1MiB");
		if (i)
			set(&jobs[i], "stonewall", NULL);
	}
	set(&jobs[0], "rw", "write");
	set(&jobs[1], "rw", "randrw");
	set(&jobs[1], "rwmixread", "50");
	set(&jobs[1], "insert", "1");
	set(&jobs[1], "numjobs", "2");
	set(&jobs[1], "number_ios", "4000");
	set(&jobs[1], "random_distribution", "latest");
	set(&jobs[2], "rw", "randrw");
	set(&jobs[2], "rwmixread", "90");
	set(&jobs[2], "insert", "1");
	set(&jobs[2], "number_ios", "1000");
	set(&jobs[2], "scan_length", "7");
	set(&jobs[2], "scan_length_distribution", "uniform");
	set(&jobs[2], "random_distribution", "zipf:0.99");
	set(&jobs[3], "rw", "read");
	set(&jobs[3], "number_ios", "1000000");
	for (int i = 0; i < NJ; i++)
		assert_int_equal(job_finalize(&jobs[i], err, sizeof(err)), 0);
	char dir[] = "/tmp/bench-run-test-XXXXXX";
	assert_non_null(mkdtemp(dir));
	struct run_params p = {.be = backend_find("cesium"), .dir = dir};
	struct run_result res;
	assert_int_equal(run_jobs(&p, jobs, NJ, &res), 0);
	assert_int_equal(res.status, 0);
	uint64_t w1 = res.jobs[1].d[DIR_WRITE].ios, w2 = res.jobs[2].d[DIR_WRITE].ios;
	assert_int_equal(res.jobs[1].d[DIR_READ].ios + w1, 4000);
	assert_true(w1 > 1500 && w1 < 2500);
	assert_int_equal(res.jobs[1].not_found, 0);
	assert_int_equal(res.jobs[1].verify_errors, 0);
	assert_int_equal(res.jobs[2].verify_errors, 0);
	/* A scan of at most 7 entries of 116 bytes each. */
	uint64_t scans = res.jobs[2].d[DIR_READ].ios;
	assert_true(scans > 800);
	assert_true(res.jobs[2].d[DIR_READ].bytes <= scans * 7 * 116);
	assert_true(res.jobs[2].d[DIR_READ].bytes > scans * 2 * 116);
	/* Inserts only ever add keys: the pass counts them all. */
	assert_int_equal(res.jobs[3].d[DIR_READ].ios, 2000 + w1 + w2);
	assert_int_equal(res.jobs[3].verify_errors, 0);
	run_result_free(&res);
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static size_t resident_pages(const char *path, size_t len)
{
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	void *m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	assert_true(m != MAP_FAILED);
	size_t pg = (size_t)sysconf(_SC_PAGESIZE), n = (len + pg - 1) / pg, r = 0;
	unsigned char *vec = malloc(n);
	assert_non_null(vec);
	assert_int_equal(mincore(m, len, vec), 0);
	for (size_t i = 0; i < n; i++)
		r += vec[i] & 1;
	free(vec);
	munmap(m, len);
	close(fd);
	return r;
}

/* run_drop_cache writes back and drops every regular file under the
 * directory, subdirectories included, and skips what is not a file. */
static void test_drop_cache_empties_page_cache(void **state)
{
	(void)state;
	enum { LEN = 4 << 20 };
	char dir[] = "/var/tmp/bench-run-drop-XXXXXX", sub[64], file[96], fifo[96];
	assert_non_null(mkdtemp(dir));
	snprintf(sub, sizeof(sub), "%s/sub", dir);
	snprintf(file, sizeof(file), "%s/data", sub);
	snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
	assert_int_equal(mkdir(sub, 0755), 0);
	assert_int_equal(mkfifo(fifo, 0644), 0);
	char *buf = malloc(LEN);
	assert_non_null(buf);
	memset(buf, 'x', LEN);
	FILE *f = fopen(file, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, LEN, f), LEN);
	fclose(f);
	free(buf);
	size_t before = resident_pages(file, LEN);
	if (before == 0) {
		/* A file system that keeps nothing cached has nothing to test. */
		nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
		skip();
	}
	/* The pages are dirty here: only a write-back lets them go. */
	assert_int_equal(run_drop_cache(dir), 0);
	size_t after = resident_pages(file, LEN);
	assert_true(after * 10 < before);
	assert_int_equal(run_drop_cache("/nonexistent/bench-dir"), -1);
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* time_based keeps going for runtime; ramp_time ops are not counted. */
static void test_time_based_and_ramp(void **state)
{
	(void)state;
	struct job j;
	char err[256];
	job_defaults(&j);
	set(&j, "rw", "randwrite");
	set(&j, "nrkeys", "1000");
	set(&j, "runtime", "300ms");
	set(&j, "ramp_time", "100ms");
	set(&j, "time_based", NULL);
	assert_int_equal(job_finalize(&j, err, sizeof(err)), 0);
	char dir[] = "/tmp/bench-run-test-XXXXXX";
	assert_non_null(mkdtemp(dir));
	struct run_params p = {.be = backend_find("cesium"), .dir = dir};
	struct run_result res;
	assert_int_equal(run_jobs(&p, &j, 1, &res), 0);
	assert_true(res.jobs[0].d[DIR_WRITE].ios > 1000);
	assert_true(res.jobs[0].runtime_sec > 0.29 && res.jobs[0].runtime_sec < 1.0);
	assert_true(res.jobs[0].nsecs == 1);
	run_result_free(&res);
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
	require_cesium();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cesium),
	    cmocka_unit_test(test_rocksdb),
	    cmocka_unit_test(test_leveldb),
	    cmocka_unit_test(test_lmdb),
	    cmocka_unit_test(test_time_based_and_ramp),
	    cmocka_unit_test(test_latest_favours_recent_keys),
	    cmocka_unit_test(test_uniform_scan_lengths),
	    cmocka_unit_test(test_inserts_extend_key_space),
	    cmocka_unit_test(test_drop_cache_empties_page_cache),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
