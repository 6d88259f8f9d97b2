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
	long peak_rss_kb;  /* getrusage: heap plus resident pages of mapped files */
	long peak_anon_kb; /* sampled every 50 ms: resident anonymous memory only */
	double total_sec;
	int status; /* 0, or 1 if any error or verify failure */
};

/* Key draws of one worker thread: random_distribution over the job's
 * nrkeys keys, or for latest over the keys 0..newest. Plain memory; copy
 * an initialized one to give each thread its own (and reseed it). */
struct run_keys {
	enum job_dist dist;
	uint64_t nrkeys;
	uint64_t n;   /* keys the zipf constants cover (latest: grows) */
	double theta; /* zipf, latest */
	double zetan, zeta2, eta, alpha;
	double pareto_pow;
	double normal_sd; /* normal: stddev as a fraction of the keys */
	uint64_t rng;     /* xorshift state, never 0 */
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
/* Draws over j's keys seeded with seed; zipf and latest sum zeta(nrkeys)
 * once here (O(nrkeys)). */
void run_keys_init(struct run_keys *g, const struct job *j, uint64_t seed);
/* A key index in 0..nrkeys-1; for latest, newest - zipf rank, in
 * 0..newest (newest: the index of the newest key that exists). */
uint64_t run_keys_next(struct run_keys *g, uint64_t newest);
/* The next raw 64-bit random number of g. */
uint64_t run_keys_rand(struct run_keys *g);
/* A scan's length: j->scan_length, or with scan_uniform a draw from
 * 1..scan_length. */
unsigned run_keys_scan_length(struct run_keys *g, const struct job *j);
/* Writes back and drops from the page cache every regular file under dir
 * (recursively): fdatasync, then posix_fadvise(POSIX_FADV_DONTNEED).
 * Returns 0, or -1 (message on stderr) if a file could not be handled. */
int run_drop_cache(const char *dir);
/* Bytes the directory tree takes on disk. */
uint64_t run_disk_usage(const char *dir);
/* The key of index k, zero-padded decimal in exactly len bytes. */
void run_make_key(char *buf, size_t len, uint64_t k);
/* Shared with the db_bench-style mode (legacy.c): CLOCK_MONOTONIC in ns,
 * xorshift64* (state never 0) and a splitmix64 finalizer for seeds. */
uint64_t run_now_ns(void);
uint64_t run_rnd(uint64_t *s);
uint64_t run_mix(uint64_t x);

#endif
