/* Tests for bench/report.c: the JSON layout (fio's), group_reporting
 * merging and the per-second logs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "report.h"

static struct job jobs[2];
static struct job_result jr[2];
static struct sec_sample secs[2][3];

/* Two jobs in one group: a writer with 1000 ops and a reader with 500. */
static void make_result(struct run_result *res, bool group_reporting)
{
	memset(res, 0, sizeof(*res));
	memset(jr, 0, sizeof(jr));
	memset(secs, 0, sizeof(secs));
	for (int i = 0; i < 2; i++) {
		job_defaults(&jobs[i]);
		jobs[i].group_reporting = group_reporting;
		snprintf(jobs[i].name, sizeof(jobs[i].name), "%s", i ? "rd" : "wr");
		jobs[i].rw = i ? JOB_RANDREAD : JOB_WRITE;
		jr[i].job = &jobs[i];
		jr[i].clones = 1;
		memcpy(jr[i].name, i ? "rd" : "wr", 3);
		for (int d = 0; d < DIR_N; d++)
			hist_init(&jr[i].d[d].lat);
		jr[i].runtime_sec = 2.0;
		jr[i].secs = secs[i];
		jr[i].nsecs = 2;
	}
	for (int k = 0; k < 1000; k++) {
		hist_add(&jr[0].d[DIR_WRITE].lat, 1000 + (uint64_t)k);
		secs[0][k % 2].ios[DIR_WRITE]++;
		secs[0][k % 2].bytes[DIR_WRITE] += 116;
		secs[0][k % 2].lat_sum[DIR_WRITE] += 1000.0 + k;
	}
	jr[0].d[DIR_WRITE].ios = 1000;
	jr[0].d[DIR_WRITE].bytes = 116000;
	for (int k = 0; k < 500; k++)
		hist_add(&jr[1].d[DIR_READ].lat, 2000);
	jr[1].d[DIR_READ].ios = 500;
	jr[1].d[DIR_READ].bytes = 58000;
	res->engine = "cesium";
	res->jobs = jr;
	res->njobs = 2;
	res->est.write_amp = 1.5;
	res->est.compaction_bytes = res->est.stall_sec = res->est.cache_hit_rate = -1;
}

static char *render(const struct run_result *res, bool plus)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_non_null(f);
	report_json(f, res, plus);
	fclose(f);
	return buf;
}

/* JSON has fio's keys, balanced braces and one object per job. */
static void test_json_shape(void **state)
{
	(void)state;
	struct run_result res;
	make_result(&res, false);
	char *s = render(&res, false);
	static const char *const keys[] = {
	    "\"jobs\": [",     "\"jobname\": \"wr\"", "\"jobname\": \"rd\"", "\"read\": {",
	    "\"write\": {",    "\"trim\": {",         "\"iops\": 500.000",   "\"iops\": 250.000",
	    "\"clat_ns\": {",  "\"lat_ns\": {",       "\"percentile\": {",   "\"99.000000\": ",
	    "\"99.990000\": ", "\"engine_stats\": {", "\"write_amp\": 1.500"};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!strstr(s, keys[i]))
			fail_msg("missing %s in:\n%s", keys[i], s);
	int depth = 0, objs = 0;
	bool in_str = false;
	for (const char *p = s; *p; p++) {
		if (*p == '"' && p[-1] != '\\')
			in_str = !in_str;
		if (in_str)
			continue;
		if (*p == '{' || *p == '[')
			depth++;
		if (*p == '}' || *p == ']')
			depth--;
		assert_true(depth >= 0);
		if (*p == '{')
			objs++;
	}
	assert_int_equal(depth, 0);
	assert_false(in_str);
	assert_null(strstr(s, "\"bins\""));
	assert_null(strstr(s, "nan"));
	free(s);
}

/* json+ adds the histogram bins; their counts add up to the ops. */
static void test_json_plus_bins(void **state)
{
	(void)state;
	struct run_result res;
	make_result(&res, false);
	char *s = render(&res, true);
	char *b = strstr(s, "\"bins\": {");
	assert_non_null(b);
	/* rd's 500 reads of 2000 ns sit in one bin keyed by its floor. */
	double lo, w;
	char want[64];
	hist_bucket(hist_index(2000), &lo, &w);
	assert_true(lo <= 2000 && lo + w > 2000);
	snprintf(want, sizeof(want), "\"%.0f\": 500", lo);
	assert_non_null(strstr(s, want));
	free(s);
}

/* group_reporting merges the jobs of a group into one result. */
static void test_group_reporting_merges(void **state)
{
	(void)state;
	struct run_result res;
	struct job_result *m = NULL;
	make_result(&res, false);
	assert_int_equal(report_merge(&res, &m), 2);
	report_merged_free(m, 2);
	make_result(&res, true);
	int n = report_merge(&res, &m);
	assert_int_equal(n, 1);
	assert_int_equal(m[0].d[DIR_WRITE].ios, 1000);
	assert_int_equal(m[0].d[DIR_READ].ios, 500);
	assert_int_equal(m[0].clones, 2);
	report_merged_free(m, n);
}

/* The bw log has one line per second per direction in fio's format. */
static void test_bw_log(void **state)
{
	(void)state;
	struct run_result res;
	char prefix[] = "/tmp/bench-report-test-XXXXXX";
	int fd = mkstemp(prefix);
	assert_true(fd >= 0);
	close(fd);
	make_result(&res, false);
	snprintf(jobs[0].bw_log, sizeof(jobs[0].bw_log), "%s", prefix);
	snprintf(jobs[0].lat_log, sizeof(jobs[0].lat_log), "%s", prefix);
	assert_int_equal(report_logs(&res), 0);
	char path[128], line[128];
	snprintf(path, sizeof(path), "%s_bw.1.log", prefix);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(line, sizeof(line), f));
	/* 500 writes of 116 bytes in second 1: 56.6 KiB -> "57". */
	assert_string_equal(line, "1000, 57, 1, 0, 0\n");
	assert_non_null(fgets(line, sizeof(line), f));
	assert_string_equal(line, "2000, 57, 1, 0, 0\n");
	assert_null(fgets(line, sizeof(line), f));
	fclose(f);
	unlink(path);
	snprintf(path, sizeof(path), "%s_lat.1.log", prefix);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(line, sizeof(line), f));
	/* Even k (0..998) in second 1: mean 1000 + 499. */
	assert_string_equal(line, "1000, 1499, 1, 0, 0\n");
	fclose(f);
	unlink(path);
	unlink(prefix);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_json_shape),
	    cmocka_unit_test(test_json_plus_bins),
	    cmocka_unit_test(test_group_reporting_merges),
	    cmocka_unit_test(test_bw_log),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
