/* Tests for bench/job.c: option values, INI job files, error messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "job.h"

static char *write_tmp(const char *text)
{
	static char path[64];
	snprintf(path, sizeof(path), "/tmp/bench-job-test-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	FILE *f = fdopen(fd, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

/* A file's [global] options reach every job; each section is one job. */
static void test_file_global_and_sections(void **state)
{
	(void)state;
	struct job_list l;
	char err[512] = "";
	job_list_init(&l);
	char *p = write_tmp("; comment\n[global]\nnrkeys=2k\nvalue_size=1k\nstonewall\n\n"
	                    "[fill]\nrw=write\n\n[read]\nstonewall\nrw=randread\nnumjobs=4\n"
	                    "random_distribution=zipf:0.9\nopt=memtable_size=8MiB\n");
	assert_int_equal(job_parse_file(p, &l, err, sizeof(err)), 0);
	unlink(p);
	assert_int_equal(l.njobs, 2);
	assert_string_equal(l.jobs[0].name, "fill");
	assert_int_equal(l.jobs[0].rw, JOB_WRITE);
	assert_int_equal(l.jobs[0].nrkeys, 2048);
	assert_int_equal(l.jobs[0].value_size, 1024);
	assert_false(l.jobs[0].stonewall); /* not inherited, as in fio */
	assert_true(l.jobs[1].stonewall);
	assert_int_equal(l.jobs[1].rw, JOB_RANDREAD);
	assert_int_equal(l.jobs[1].numjobs, 4);
	assert_int_equal(l.jobs[1].dist, JOB_DIST_ZIPF);
	assert_true(l.jobs[1].dist_param > 0.89 && l.jobs[1].dist_param < 0.91);
	assert_int_equal(l.jobs[1].nopts, 1);
	assert_string_equal(l.jobs[1].opt_name[0], "memtable_size");
	assert_string_equal(l.jobs[1].opt_value[0], "8MiB");
	job_list_free(&l);
}

/* A bad value names the file, the line and the option. */
static void test_file_bad_value_names_file_line_option(void **state)
{
	(void)state;
	struct job_list l;
	char err[512] = "";
	job_list_init(&l);
	char *p = write_tmp("[global]\nnrkeys=10\n[j]\nrw=write\nrwmixread=150\n");
	assert_int_equal(job_parse_file(p, &l, err, sizeof(err)), -1);
	char want[128];
	snprintf(want, sizeof(want), "%s:5: option 'rwmixread': bad value '150'", p);
	unlink(p);
	assert_non_null(strstr(err, want));
	job_list_free(&l);
}

/* Unknown options, options outside sections and broken headers fail. */
static void test_file_structural_errors(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		const char *msg;
	} cases[] = {
	    {"[j]\nfrobnicate=1\n", ":2: unknown option 'frobnicate'"},
	    {"rw=write\n", ":1: option outside a section"},
	    {"[j\nrw=write\n", ":1: section header without ']'"},
	    {"[]\n", ":1: section name"},
	    {"[j]\nrw=sideways\n", ":2: option 'rw': bad value 'sideways'"},
	    {"[j]\nrandom_distribution=zipf:1.5\n", ":2: option 'random_distribution'"},
	    {"[j]\nengine=berkeleydb\n", ":2: option 'engine'"},
	    {"[j]\nruntime=10 parsecs\n", ":2: option 'runtime'"},
	    {"[j]\nopt=noequals\n", ":2: option 'opt'"},
	    {"[j]\nrw=randread\nrandom_distribution=latest:1.5\n",
	     ":3: option 'random_distribution': bad value 'latest:1.5'"},
	    {"[j]\nrandom_distribution=latest:\n", ":2: option 'random_distribution'"},
	    {"[j]\nrandom_distribution=latests\n", ":2: option 'random_distribution'"},
	    {"[global]\nscan_length_distribution=normal\n",
	     ":2: option 'scan_length_distribution': bad value 'normal' (expected fixed|uniform)"},
	    {"[j]\ninsert=sometimes\n", ":2: option 'insert': bad value 'sometimes'"},
	    {"[j]\n\ninvalidate=2\n", ":3: option 'invalidate': bad value '2'"},
	    {"[j]\niodepth=0\n", ":2: option 'iodepth': bad value '0'"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct job_list l;
		char err[512] = "";
		job_list_init(&l);
		char *p = write_tmp(cases[i].text);
		assert_int_equal(job_parse_file(p, &l, err, sizeof(err)), -1);
		unlink(p);
		if (!strstr(err, cases[i].msg))
			fail_msg("case %zu: message '%s' lacks '%s'", i, err, cases[i].msg);
		job_list_free(&l);
	}
}

/* A missing file is an error naming it. */
static void test_file_missing(void **state)
{
	(void)state;
	struct job_list l;
	char err[512] = "";
	job_list_init(&l);
	assert_int_equal(job_parse_file("/nonexistent/x.fio", &l, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "/nonexistent/x.fio"));
	job_list_free(&l);
}

/* Sizes, times, booleans and distributions parse as fio writes them. */
static void test_option_values(void **state)
{
	(void)state;
	struct job j;
	char err[256];
	uint64_t u = 0;
	double d = 0;
	job_defaults(&j);
	assert_true(job_parse_size("4k", &u) && u == 4096);
	assert_true(job_parse_size("1GiB", &u) && u == 1ull << 30);
	assert_false(job_parse_size("-1", &u));
	assert_false(job_parse_size("12q", &u));
	assert_false(job_parse_size("", &u));
	assert_true(job_parse_time("500ms", &d) && d > 0.49 && d < 0.51);
	assert_true(job_parse_time("2m", &d) && d == 120);
	assert_true(job_parse_time("30", &d) && d == 30);
	assert_false(job_parse_time("abc", &d));
	assert_int_equal(job_set(&j, "time_based", NULL, err, sizeof(err)), 0);
	assert_true(j.time_based);
	assert_int_equal(job_set(&j, "time_based", "0", err, sizeof(err)), 0);
	assert_false(j.time_based);
	assert_int_equal(job_set(&j, "bs", "4k", err, sizeof(err)), 0);
	assert_int_equal(j.value_size, 4096);
	assert_int_equal(job_set(&j, "rwmixwrite", "30", err, sizeof(err)), 0);
	assert_int_equal(j.rwmixread, 70);
	assert_int_equal(job_set(&j, "random_distribution", "pareto:0.2", err, sizeof(err)), 0);
	assert_int_equal(j.dist, JOB_DIST_PARETO);
	assert_int_equal(job_set(&j, "random_distribution", "normal", err, sizeof(err)), 0);
	assert_int_equal(j.dist, JOB_DIST_NORMAL);
	assert_int_equal(job_set(&j, "random_distribution", "pareto:1", err, sizeof(err)), -1);
	assert_int_equal(job_set(&j, "random_distribution", "zipf:", err, sizeof(err)), -1);
	assert_int_equal(job_set(&j, "numjobs", "0", err, sizeof(err)), -1);
	assert_int_equal(job_set(&j, "key_size", "4", err, sizeof(err)), -1);
	assert_int_equal(job_set(&j, "opt", "a=1", err, sizeof(err)), 0);
	assert_int_equal(job_set(&j, "opt", "a=2", err, sizeof(err)), 0);
	assert_int_equal(j.nopts, 1); /* a later value replaces */
	assert_string_equal(j.opt_value[0], "2");
}

/* latest, scan_length_distribution, insert and invalidate parse from a
 * file, [global] ones reaching every job, and default to off. */
static void test_file_new_options(void **state)
{
	(void)state;
	struct job_list l;
	char err[512] = "";
	job_list_init(&l);
	char *p = write_tmp("[global]\ninsert=1\nscan_length_distribution=uniform\n"
	                    "[a]\nrandom_distribution=latest\ninvalidate\niodepth=64\n"
	                    "[b]\nrandom_distribution=latest:0.5\ninsert=0\n"
	                    "scan_length_distribution=fixed\n");
	assert_int_equal(job_parse_file(p, &l, err, sizeof(err)), 0);
	unlink(p);
	assert_int_equal(l.njobs, 2);
	assert_int_equal(l.jobs[0].dist, JOB_DIST_LATEST);
	assert_true(l.jobs[0].dist_param > 0.989 && l.jobs[0].dist_param < 0.991);
	assert_true(l.jobs[0].insert);
	assert_true(l.jobs[0].scan_uniform);
	assert_true(l.jobs[0].invalidate);
	assert_int_equal(l.jobs[0].iodepth, 64);
	assert_int_equal(l.jobs[1].dist, JOB_DIST_LATEST);
	assert_true(l.jobs[1].dist_param > 0.49 && l.jobs[1].dist_param < 0.51);
	assert_false(l.jobs[1].insert);
	assert_false(l.jobs[1].scan_uniform);
	assert_false(l.jobs[1].invalidate);
	job_list_free(&l);
	struct job j;
	job_defaults(&j);
	assert_false(j.insert || j.invalidate || j.scan_uniform);
	assert_int_equal(j.iodepth, 1);
}

/* size divides into keys of key_size + value_size; time_based needs runtime. */
static void test_finalize(void **state)
{
	(void)state;
	struct job j;
	char err[256];
	job_defaults(&j);
	assert_int_equal(job_set(&j, "size", "1m", err, sizeof(err)), 0);
	assert_int_equal(job_finalize(&j, err, sizeof(err)), 0);
	assert_int_equal(j.nrkeys, (1u << 20) / 116);
	job_defaults(&j);
	j.time_based = true;
	assert_int_equal(job_finalize(&j, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "time_based"));
	job_defaults(&j);
	assert_int_equal(job_set(&j, "rw", "scan", err, sizeof(err)), 0);
	assert_int_equal(job_finalize(&j, err, sizeof(err)), 0);
	assert_int_equal(j.scan_length, 100);
}

/* Every job file shipped in bench/jobs parses and finalizes. */
static void test_shipped_job_files_parse(void **state)
{
	(void)state;
	const char *dir = getenv("BENCH_JOBS_DIR");
	if (!dir)
		skip();
	DIR *d = opendir(dir);
	assert_non_null(d);
	unsigned files = 0;
	for (struct dirent *e; (e = readdir(d));) {
		size_t n = strlen(e->d_name);
		if (n < 5 || strcmp(e->d_name + n - 4, ".fio"))
			continue;
		char path[1024], err[512] = "";
		struct job_list l;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		job_list_init(&l);
		if (job_parse_file(path, &l, err, sizeof(err)))
			fail_msg("%s", err);
		assert_true(l.njobs >= 1);
		for (unsigned i = 0; i < l.njobs; i++)
			if (job_finalize(&l.jobs[i], err, sizeof(err)))
				fail_msg("%s: %s", path, err);
		job_list_free(&l);
		files++;
	}
	closedir(d);
	assert_true(files >= 15);
}

static void parse_shipped(const char *name, struct job_list *l)
{
	const char *dir = getenv("BENCH_JOBS_DIR");
	char path[1024], err[512] = "";
	if (!dir)
		skip();
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	job_list_init(l);
	if (job_parse_file(path, l, err, sizeof(err)))
		fail_msg("%s", err);
	for (unsigned i = 0; i < l->njobs; i++)
		if (job_finalize(&l->jobs[i], err, sizeof(err)))
			fail_msg("%s: %s", path, err);
}

/* ycsb-d reads latest and inserts; ycsb-e inserts and draws scan lengths
 * from 1..100; multiget-cold reads cold at iodepth 1 and 64. */
static void test_ycsb_and_multiget_cold_files(void **state)
{
	(void)state;
	struct job_list l;
	parse_shipped("ycsb-d.fio", &l);
	assert_int_equal(l.njobs, 2);
	assert_int_equal(l.jobs[1].dist, JOB_DIST_LATEST);
	assert_true(l.jobs[1].insert);
	assert_int_equal(l.jobs[1].rwmixread, 95);
	job_list_free(&l);
	parse_shipped("ycsb-e.fio", &l);
	assert_int_equal(l.njobs, 2);
	assert_true(l.jobs[1].insert);
	assert_true(l.jobs[1].scan_uniform);
	assert_int_equal(l.jobs[1].scan_length, 100);
	job_list_free(&l);
	parse_shipped("multiget-cold.fio", &l);
	assert_int_equal(l.njobs, 3);
	assert_int_equal(l.jobs[0].nrkeys, 1000000);
	assert_int_equal(l.jobs[0].key_size, 16);
	assert_int_equal(l.jobs[0].value_size, 100);
	for (unsigned i = 1; i < 3; i++) {
		assert_int_equal(l.jobs[i].rw, JOB_RANDREAD);
		assert_true(l.jobs[i].invalidate);
		assert_true(l.jobs[i].stonewall);
	}
	assert_int_equal(l.jobs[1].iodepth, 1);
	assert_int_equal(l.jobs[2].iodepth, 64);
	job_list_free(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_file_global_and_sections),
	    cmocka_unit_test(test_file_bad_value_names_file_line_option),
	    cmocka_unit_test(test_file_structural_errors),
	    cmocka_unit_test(test_file_missing),
	    cmocka_unit_test(test_option_values),
	    cmocka_unit_test(test_finalize),
	    cmocka_unit_test(test_file_new_options),
	    cmocka_unit_test(test_ycsb_and_multiget_cold_files),
	    cmocka_unit_test(test_shipped_job_files_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
