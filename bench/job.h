/*
 * job.h — fio-style job description for cesium-bench: option names and
 * values (`name=value`, as on the command line or in an INI job file with
 * [global] and one section per job), their defaults and validation.
 *
 * A struct job is plain memory owned by the caller; the functions here do
 * no I/O except job_parse_file, which reads the file it is given. Errors are
 * returned as -1 with a message in the caller's buffer naming the file,
 * line and option. Call from one thread.
 */
#ifndef BENCH_JOB_H
#define BENCH_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JOB_MAX_OPTS 32
#define JOB_NAME_MAX 64
#define JOB_PATH_MAX 1024

enum job_rw {
	JOB_WRITE,     /* sequential puts, keys 0..nrkeys-1 */
	JOB_RANDWRITE, /* puts of keys drawn from random_distribution */
	JOB_READ,      /* iterator scan from the first key, one op per next */
	JOB_RANDREAD,  /* gets of keys drawn from random_distribution */
	JOB_RANDRW,    /* random gets (or scans) and puts, rwmixread % reads */
	JOB_READWRITE, /* sequential keys, rwmixread % gets, the rest puts */
	JOB_SCAN,      /* seek to a random key, then scan_length nexts */
	JOB_DELETE,    /* sequential deletes */
	JOB_RMW,       /* get then put of the same random key (YCSB F) */
};

/* latest: YCSB's "latest" generator, a zipfian over recency: the newest
 * key is drawn most, then the one before it, and so on. */
enum job_dist {
	JOB_DIST_RANDOM,
	JOB_DIST_ZIPF,
	JOB_DIST_PARETO,
	JOB_DIST_NORMAL,
	JOB_DIST_LATEST,
};

struct job {
	char name[JOB_NAME_MAX];
	enum job_rw rw;
	unsigned rwmixread;  /* percent of reads in randrw/readwrite */
	unsigned numjobs;    /* clones of this job, each a thread */
	unsigned iodepth;    /* randread: keys per multi-get batch */
	double runtime;      /* seconds; 0 = until the ops are done */
	bool time_based;     /* keep going until runtime even when ops are done */
	double ramp_time;    /* seconds run before statistics start */
	uint64_t nrkeys;     /* key space (set directly or from size) */
	uint64_t size;       /* bytes of key+value; nrkeys = size / (key+value) */
	uint64_t number_ios; /* ops for the job (all clones); 0 = nrkeys */
	size_t key_size;
	size_t value_size;
	bool sync; /* every write durable before it returns */
	enum job_dist dist;
	double dist_param;    /* zipf/latest theta, pareto h, normal stddev in % of keys */
	unsigned scan_length; /* nexts per scan; in randrw, >0 makes reads scans */
	bool scan_uniform;    /* each scan's length drawn from 1..scan_length */
	bool insert;          /* writes put new keys nrkeys, nrkeys+1, ... in order */
	bool invalidate;      /* reopen the engine with a cold page cache first */
	char directory[JOB_PATH_MAX];
	bool group_reporting;
	bool stonewall; /* wait for the jobs before this one to finish */
	bool verify;    /* every read checks the value written for its key */
	char engine[16];
	char bw_log[JOB_PATH_MAX];  /* write_bw_log prefix, "" = none */
	char lat_log[JOB_PATH_MAX]; /* write_lat_log prefix, "" = none */
	uint64_t seed;
	char opt_name[JOB_MAX_OPTS][64];
	char opt_value[JOB_MAX_OPTS][128];
	unsigned nopts;
};

struct job_list {
	struct job global;
	struct job *jobs;
	unsigned njobs;
	unsigned cap;
};

void job_defaults(struct job *j);
/* Sets one option ("rw", "bs", "opt" with "name=value", ...). */
int job_set(struct job *j, const char *name, const char *value, char *err, size_t errlen);
/* Checks the whole job and derives nrkeys from size. */
int job_finalize(struct job *j, char *err, size_t errlen);
/* Appends a copy of l->global named name; returns it or NULL (no memory). */
struct job *job_list_add(struct job_list *l, const char *name);
void job_list_init(struct job_list *l);
void job_list_free(struct job_list *l);
/* Reads an INI job file into l (its [global] updates l->global; each other
 * section starts a job from the global options seen so far). */
int job_parse_file(const char *path, struct job_list *l, char *err, size_t errlen);
const char *job_rw_name(enum job_rw rw);
/* Parsers shared with main.c: "4k", "1MiB", "10" -> bytes; "30", "2m",
 * "500ms" -> seconds. Return false on junk. */
bool job_parse_size(const char *s, uint64_t *out);
bool job_parse_time(const char *s, double *out);

#endif
