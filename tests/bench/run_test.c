/* End-to-end runs of bench/run.c against every engine built in: load,
 * verified random reads, scans, deletes, concurrent clones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cesium.h"
#include "run.h"

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
	enum { NJ = 5 };
	struct job jobs[NJ];
	char err[256];
	const char *spec[NJ][4] = {
	    {"load", "write", "2", NULL}, {"get", "randread", "2", "zipf:0.9"},
	    {"scan", "scan", "1", NULL},  {"mix", "randrw", "3", "pareto:0.2"},
	    {"del", "delete", "1", NULL},
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
	assert_int_equal(res.jobs[4].d[DIR_TRIM].ios, 20000);
	assert_true(res.jobs[1].d[DIR_READ].lat.max >= res.jobs[1].d[DIR_READ].lat.min);
	assert_true(res.disk_bytes > 0);
	assert_true(res.peak_rss_kb > 0);
	run_result_free(&res);

	/* After the deletes, a read pass finds nothing. */
	struct job rd;
	job_defaults(&rd);
	set(&rd, "rw", "randread");
	set(&rd, "nrkeys", "20000");
	set(&rd, "number_ios", "1000");
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
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
