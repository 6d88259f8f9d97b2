/*
 * run.h — runs a list of jobs against one engine, as fio runs a job file:
 * jobs between stonewalls form a group and run at once (numjobs threads
 * each); groups run one after another on one database. Collects per-job
 * statistics (latency histograms per direction, per-second samples for the
 * logs), engine figures, disk usage and peak RSS.
 *
 * The caller owns struct run_result and frees it with run_result_free.
 * run_jobs is called from one thread; it starts and joins the workers.
 */
#ifndef BENCH_RUN_H
#define BENCH_RUN_H

#include <stdbool.h>
#include <stdint.h>

#include "backend.h"
#include "hist.h"
#include "job.h"

enum { DIR_READ, DIR_WRITE, DIR_TRIM, DIR_N }; /* trim = delete, as in fio */

struct dir_stats {
	struct hist lat; /* ns per op */
	uint64_t ios;
	uint64_t bytes; /* key + value bytes moved */
};

struct sec_sample {
	uint64_t ios[DIR_N];
	uint64_t bytes[DIR_N];
	double lat_sum[DIR_N];
};

struct job_result {
	char name[JOB_NAME_MAX];
	const struct job *job;
	unsigned group;
	unsigned clones;
	struct dir_stats d[DIR_N];
	double runtime_sec; /* measured, ramp excluded */
	uint64_t errors;
	uint64_t verify_errors;
	uint64_t not_found;
	struct sec_sample *secs;
	unsigned nsecs;
};

struct run_result {
	const char *engine;
	const char *dir;
	struct job_result *jobs;
	unsigned njobs;
	struct backend_stats est;
	uint64_t disk_bytes;
	long peak_rss_kb;
	double total_sec;
	int status; /* 0, or 1 if any error or verify failure */
};

struct run_params {
	const struct backend *be;
	const char *dir;
	bool progress; /* live line on stdout (only when it is a terminal) */
};

/* Runs the jobs (already finalized) and fills *res. Returns 0, or -1 when
 * the engine could not start (res->status is set either way). */
int run_jobs(const struct run_params *p, const struct job *jobs, unsigned njobs,
             struct run_result *res);
void run_result_free(struct run_result *res);
/* Bytes the directory tree takes on disk. */
uint64_t run_disk_usage(const char *dir);
/* The key of index k, zero-padded decimal in exactly len bytes. */
void run_make_key(char *buf, size_t len, uint64_t k);

#endif
