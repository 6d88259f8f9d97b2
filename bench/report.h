/*
 * report.h — cesium-bench's output, modelled on fio's: the normal text
 * report (per job, per group, then engine figures), JSON and JSON+ (JSON
 * with the latency histogram bins), and the per-second bandwidth and
 * latency logs (fio's write_bw_log / write_lat_log format:
 * "msec, value, direction, 0, 0"; bw in KiB/s, lat the mean in ns).
 *
 * Functions only read the run_result; call from one thread.
 */
#ifndef BENCH_REPORT_H
#define BENCH_REPORT_H

#include <stdbool.h>
#include <stdio.h>

#include "run.h"

enum report_format { REPORT_NORMAL, REPORT_JSON, REPORT_JSON_PLUS };

/* Merges the results into what is printed: with group_reporting, the
 * jobs of a group become one. Returns the count, or -1 (no memory);
 * *out is freed with free() (its secs arrays too: report_merged_free). */
int report_merge(const struct run_result *res, struct job_result **out);
void report_merged_free(struct job_result *m, int n);

void report_normal(FILE *f, const struct run_result *res);
void report_json(FILE *f, const struct run_result *res, bool plus);
/* Writes <prefix>_bw.<n>.log and <prefix>_lat.<n>.log for every job that
 * asked for them (n counts jobs from 1). Returns 0 or -1 (reported). */
int report_logs(const struct run_result *res);

#endif
