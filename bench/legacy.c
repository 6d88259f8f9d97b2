/*
 * legacy.c — cesium-bench's original db_bench-style mode and the demo.
 * main.c sends a command line here when it holds --demo or --benchmarks=,
 * so the commands in README.md and bench/RESULTS.md keep their meaning.
 *
 *   cesium-bench [--db=DIR] [--num=N] [--value_size=100] [--key_size=16]
 *                [--benchmarks=fillseq,fillrandom,overwrite,readrandom,readseq,seekrandom]
 *                [--threads=1] [--sync] [--seed=S] [--opt name=value ...] [--demo]
 *
 * Each benchmark runs --num operations split across --threads threads and
 * prints ops/s, MB/s (key + value bytes, MiB) and the latency distribution
 * (p50, p99, p99.9, max, in microseconds) from a log-bucket histogram.
 * Keys are --key_size bytes of zero-padded decimal; values are random
 * (incompressible) bytes. Without --db a temporary directory is used and
 * removed at exit; with --db the directory is kept.
 *
 * --demo writes 200k keys (or --num), reads them back, scans them, closes,
 * reopens and checks a sample, printing what it did and how fast; it exits
 * 0 only if every check passed.
 *
 * Self-contained on purpose: only include/cesium.h, libc and pthreads.
 */
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cesium.h"
#include "hist.h"
#include "legacy.h"
#include "run.h"

#define MAX_OPTS 64
#define RANDBUF_SIZE (1u << 20)

struct config {
	const char *db;
	uint64_t num;
	bool num_set;
	size_t value_size;
	size_t key_size;
	const char *benchmarks;
	unsigned threads;
	bool sync;
	bool demo;
	uint64_t seed;
	const char *opt_name[MAX_OPTS];
	const char *opt_value[MAX_OPTS];
	unsigned nopts;
};

/* ---- helpers ---- */

static double now_sec(void)
{
	return (double)run_now_ns() * 1e-9;
}

static void fill_random(unsigned char *buf, size_t len, uint64_t *s)
{
	for (size_t i = 0; i < len; i += 8) {
		uint64_t x = run_rnd(s);
		memcpy(buf + i, &x, len - i < 8 ? len - i : 8);
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

static void rmtree(const char *path)
{
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void report_error(const char *what, int rc)
{
	fprintf(stderr, "cesium-bench: %s: %s: %s\n", what, cesium_strerror(rc), cesium_errmsg());
}

static int make_options(const struct config *c, bool error_if_exists, cesium_options **out)
{
	cesium_options *o = NULL;
	int rc = cesium_options_new(&o);
	if (rc) {
		report_error("options_new", rc);
		return rc;
	}
	if (c->sync && (rc = cesium_options_set(o, "sync_writes", "true")) != 0) {
		report_error("option sync_writes", rc);
		goto fail;
	}
	if (error_if_exists && (rc = cesium_options_set(o, "error_if_exists", "true")) != 0) {
		report_error("option error_if_exists", rc);
		goto fail;
	}
	for (unsigned i = 0; i < c->nopts; i++) {
		rc = cesium_options_set(o, c->opt_name[i], c->opt_value[i]);
		if (rc) {
			fprintf(stderr, "cesium-bench: --opt %s=%s: %s: %s\n", c->opt_name[i],
			        c->opt_value[i], cesium_strerror(rc), cesium_errmsg());
			goto fail;
		}
	}
	*out = o;
	return 0;
fail:
	cesium_options_free(o);
	return rc;
}

/* ---- benchmarks ---- */

struct run;

struct worker {
	pthread_t tid;
	unsigned id;
	struct run *run;
	struct hist h;
	uint64_t lo, hi; /* this worker's share of [0, num) */
	uint64_t done, bytes, found;
	uint64_t rng;
	unsigned char *randbuf;
	double start, end;
	int err;
};

typedef void bench_fn(struct worker *w);

struct run {
	const struct config *c;
	cesium_db *db;
	bench_fn *fn;
	pthread_barrier_t barrier;
};

static const unsigned char *random_value(struct worker *w)
{
	return w->randbuf + run_rnd(&w->rng) % RANDBUF_SIZE;
}

static void do_write(struct worker *w, bool seq)
{
	const struct config *c = w->run->c;
	char key[64];
	for (uint64_t i = w->lo; i < w->hi; i++) {
		uint64_t k = seq ? i : run_rnd(&w->rng) % c->num;
		run_make_key(key, c->key_size, k);
		const unsigned char *v = random_value(w);
		uint64_t t0 = run_now_ns();
		int rc = cesium_put(w->run->db, key, c->key_size, v, c->value_size);
		hist_add(&w->h, run_now_ns() - t0);
		if (rc) {
			report_error("put", rc);
			w->err = rc;
			return;
		}
		w->done++;
		w->bytes += c->key_size + c->value_size;
	}
}

static void bench_fillseq(struct worker *w)
{
	do_write(w, true);
}

static void bench_fillrandom(struct worker *w)
{
	do_write(w, false);
}

static void bench_readrandom(struct worker *w)
{
	const struct config *c = w->run->c;
	char key[64];
	for (uint64_t i = w->lo; i < w->hi; i++) {
		run_make_key(key, c->key_size, run_rnd(&w->rng) % c->num);
		void *v = NULL;
		size_t vl = 0;
		uint64_t t0 = run_now_ns();
		int rc = cesium_get(w->run->db, key, c->key_size, &v, &vl);
		hist_add(&w->h, run_now_ns() - t0);
		if (rc == 0) {
			w->found++;
			w->bytes += c->key_size + vl;
			cesium_free(v);
		} else if (rc != CESIUM_ENOTFOUND) {
			report_error("get", rc);
			w->err = rc;
			return;
		}
		w->done++;
	}
}

static void bench_readseq(struct worker *w)
{
	cesium_iter *it = NULL;
	int rc = cesium_iter_new(w->run->db, 0, &it);
	if (rc) {
		report_error("iter_new", rc);
		w->err = rc;
		return;
	}
	/* Every thread scans from the start, like db_bench's readseq. */
	uint64_t n = w->hi - w->lo;
	uint64_t t0 = run_now_ns();
	cesium_iter_seek_first(it);
	for (uint64_t i = 0; i < n && cesium_iter_valid(it); i++) {
		size_t kl = 0, vl = 0;
		(void)cesium_iter_key(it, &kl);
		(void)cesium_iter_value(it, &vl);
		w->bytes += kl + vl;
		w->found++;
		w->done++;
		cesium_iter_next(it);
		uint64_t t1 = run_now_ns();
		hist_add(&w->h, t1 - t0);
		t0 = t1;
	}
	rc = cesium_iter_status(it);
	if (rc) {
		report_error("iterate", rc);
		w->err = rc;
	}
	cesium_iter_free(it);
}

static void bench_seekrandom(struct worker *w)
{
	const struct config *c = w->run->c;
	char key[64];
	cesium_iter *it = NULL;
	int rc = cesium_iter_new(w->run->db, 0, &it);
	if (rc) {
		report_error("iter_new", rc);
		w->err = rc;
		return;
	}
	for (uint64_t i = w->lo; i < w->hi; i++) {
		run_make_key(key, c->key_size, run_rnd(&w->rng) % c->num);
		uint64_t t0 = run_now_ns();
		cesium_iter_seek(it, key, c->key_size);
		bool valid = cesium_iter_valid(it);
		size_t kl = 0, vl = 0;
		if (valid) {
			(void)cesium_iter_key(it, &kl);
			(void)cesium_iter_value(it, &vl);
		}
		hist_add(&w->h, run_now_ns() - t0);
		if (valid) {
			w->found++;
			w->bytes += kl + vl;
		} else if ((rc = cesium_iter_status(it)) != 0) {
			report_error("seek", rc);
			w->err = rc;
			break;
		}
		w->done++;
	}
	cesium_iter_free(it);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	pthread_barrier_wait(&w->run->barrier);
	w->start = now_sec();
	w->run->fn(w);
	w->end = now_sec();
	return NULL;
}

static const struct {
	const char *name;
	bench_fn *fn;
} benchmarks[] = {
    {"fillseq", bench_fillseq},      {"fillrandom", bench_fillrandom},
    {"overwrite", bench_fillrandom}, {"readrandom", bench_readrandom},
    {"readseq", bench_readseq},      {"seekrandom", bench_seekrandom},
};

static int run_one(const struct config *c, cesium_db *db, const char *name, bench_fn *fn,
                   uint64_t seed)
{
	struct run run = {.c = c, .db = db, .fn = fn};
	struct worker *ws = calloc(c->threads, sizeof(*ws));
	int rc = 0;
	unsigned started = 0;
	if (!ws) {
		fprintf(stderr, "cesium-bench: out of memory\n");
		return 1;
	}
	pthread_barrier_init(&run.barrier, NULL, c->threads);
	for (unsigned t = 0; t < c->threads; t++) {
		struct worker *w = &ws[t];
		w->id = t;
		w->run = &run;
		hist_init(&w->h);
		w->lo = c->num * t / c->threads;
		w->hi = c->num * (t + 1) / c->threads;
		w->rng = run_mix(seed ^ (t + 1)) | 1;
		w->randbuf = malloc(RANDBUF_SIZE + c->value_size);
		if (!w->randbuf) {
			fprintf(stderr, "cesium-bench: out of memory\n");
			rc = 1;
			break;
		}
		fill_random(w->randbuf, RANDBUF_SIZE + c->value_size, &w->rng);
	}
	for (unsigned t = 0; rc == 0 && t < c->threads; t++) {
		if (pthread_create(&ws[t].tid, NULL, worker_main, &ws[t]) != 0) {
			/* The barrier would wait forever for the missing thread. */
			fprintf(stderr, "cesium-bench: cannot start thread %u\n", t);
			exit(1);
		}
		started++;
	}
	struct hist total;
	hist_init(&total);
	uint64_t done = 0, bytes = 0, found = 0;
	double start = 0, end = 0;
	for (unsigned t = 0; t < started; t++) {
		pthread_join(ws[t].tid, NULL);
		if (ws[t].err)
			rc = 1;
		hist_merge(&total, &ws[t].h);
		done += ws[t].done;
		bytes += ws[t].bytes;
		found += ws[t].found;
		if (t == 0 || ws[t].start < start)
			start = ws[t].start;
		if (ws[t].end > end)
			end = ws[t].end;
	}
	double secs = end - start;
	if (secs <= 0)
		secs = 1e-9;
	char extra[64] = "";
	if (fn == bench_readrandom || fn == bench_seekrandom)
		snprintf(extra, sizeof(extra), " (%" PRIu64 " of %" PRIu64 " found)", found, done);
	printf("%-12s : %10.3f micros/op %10.0f ops/s %8.1f MB/s%s\n", name,
	       done ? secs * 1e6 / (double)done : 0.0, (double)done / secs,
	       (double)bytes / 1048576.0 / secs, extra);
	printf("%-12s   latency us: p50 %.2f  p99 %.2f  p99.9 %.2f  max %.2f  avg %.2f\n", "",
	       hist_percentile(&total, 0.50) / 1e3, hist_percentile(&total, 0.99) / 1e3,
	       hist_percentile(&total, 0.999) / 1e3, (double)total.max / 1e3,
	       hist_mean(&total) / 1e3);
	fflush(stdout);
	for (unsigned t = 0; t < c->threads; t++)
		free(ws[t].randbuf);
	free(ws);
	pthread_barrier_destroy(&run.barrier);
	return rc;
}

static void print_header(const struct config *c, const char *dir)
{
	char model[256] = "unknown";
	FILE *f = fopen("/proc/cpuinfo", "r");
	if (f) {
		char line[512];
		while (fgets(line, sizeof(line), f)) {
			char *colon = strchr(line, ':');
			if (strncmp(line, "model name", 10) == 0 && colon) {
				snprintf(model, sizeof(model), "%s", colon + 2);
				model[strcspn(model, "\n")] = '\0';
				break;
			}
		}
		fclose(f);
	}
	printf("cesium:     version %d.%d.%d\n", CESIUM_VERSION_MAJOR, CESIUM_VERSION_MINOR,
	       CESIUM_VERSION_PATCH);
	printf("CPU:        %ld x %s\n", sysconf(_SC_NPROCESSORS_ONLN), model);
	printf("Database:   %s\n", dir);
	printf("Keys:       %zu bytes each\n", c->key_size);
	printf("Values:     %zu bytes each (random, incompressible)\n", c->value_size);
	printf("Entries:    %" PRIu64 "\n", c->num);
	printf("Threads:    %u\n", c->threads);
	printf("Sync:       %s\n", c->sync ? "every write (sync_writes=true)" : "no");
	for (unsigned i = 0; i < c->nopts; i++)
		printf("Option:     %s=%s\n", c->opt_name[i], c->opt_value[i]);
	printf("------------------------------------------------\n");
	fflush(stdout);
}

static int run_benchmarks(const struct config *c, const char *dir)
{
	cesium_options *o = NULL;
	cesium_db *db = NULL;
	int rc = make_options(c, false, &o);
	if (rc)
		return 1;
	rc = cesium_open(dir, o, &db);
	cesium_options_free(o);
	if (rc) {
		report_error("open", rc);
		return 1;
	}
	print_header(c, dir);
	char *list = strdup(c->benchmarks);
	int status = 0;
	if (!list) {
		cesium_close(db);
		return 1;
	}
	uint64_t seed = c->seed;
	for (char *save = NULL, *name = strtok_r(list, ",", &save); name;
	     name = strtok_r(NULL, ",", &save)) {
		bench_fn *fn = NULL;
		for (size_t i = 0; i < sizeof(benchmarks) / sizeof(benchmarks[0]); i++)
			if (strcmp(name, benchmarks[i].name) == 0)
				fn = benchmarks[i].fn;
		if (!fn) {
			fprintf(stderr, "cesium-bench: unknown benchmark '%s'\n", name);
			status = 1;
			break;
		}
		seed = run_mix(seed);
		if (run_one(c, db, name, fn, seed)) {
			status = 1;
			break;
		}
	}
	free(list);
	rc = cesium_close(db);
	if (rc) {
		report_error("close", rc);
		status = 1;
	}
	return status;
}

/* ---- demo ---- */

/* Demo key i is the even number 2i; odd numbers are never written. */
static void demo_value(unsigned char *buf, size_t len, uint64_t i)
{
	uint64_t s = run_mix(i) | 1;
	fill_random(buf, len, &s);
}

static int demo_check_get(cesium_db *db, const struct config *c, uint64_t i, unsigned char *want,
                          unsigned long long *failures)
{
	char key[64];
	void *v = NULL;
	size_t vl = 0;
	run_make_key(key, c->key_size, 2 * i);
	demo_value(want, c->value_size, i);
	int rc = cesium_get(db, key, c->key_size, &v, &vl);
	if (rc != 0) {
		if (*failures < 10)
			fprintf(stderr, "  key %.*s: %s: %s\n", (int)c->key_size, key,
			        cesium_strerror(rc), cesium_errmsg());
		++*failures;
		return rc;
	}
	if (vl != c->value_size || memcmp(v, want, vl) != 0) {
		if (*failures < 10)
			fprintf(stderr, "  key %.*s: wrong value (%zu bytes)\n", (int)c->key_size,
			        key, vl);
		++*failures;
	}
	cesium_free(v);
	return 0;
}

static int run_demo(const struct config *c, const char *dir)
{
	uint64_t n = c->num_set ? c->num : 200000;
	unsigned long long failures = 0;
	cesium_options *o = NULL;
	cesium_db *db = NULL;
	uint64_t *order = malloc(n * sizeof(*order));
	unsigned char *val = malloc(c->value_size + 8);
	unsigned char *want = malloc(c->value_size + 8);
	char key[64];
	int rc;
	int status = 1;
	if (!order || !val || !want) {
		fprintf(stderr, "cesium-bench: out of memory\n");
		goto out;
	}
	/* A directory the user named must not hold a database already: the
	 * checks below assume they see exactly what the demo wrote. */
	if (make_options(c, c->db != NULL, &o))
		goto out;
	printf("demo: opening a new database in %s\n", dir);
	rc = cesium_open(dir, o, &db);
	if (rc) {
		report_error("open", rc);
		goto out;
	}

	/* Write in a shuffled order, so the engine sorts, not the caller. */
	uint64_t rng = run_mix(c->seed) | 1;
	for (uint64_t i = 0; i < n; i++)
		order[i] = i;
	for (uint64_t i = n; i > 1; i--) {
		uint64_t j = run_rnd(&rng) % i;
		uint64_t t = order[i - 1];
		order[i - 1] = order[j];
		order[j] = t;
	}
	double t0 = now_sec();
	for (uint64_t i = 0; i < n; i++) {
		run_make_key(key, c->key_size, 2 * order[i]);
		demo_value(val, c->value_size, order[i]);
		rc = cesium_put(db, key, c->key_size, val, c->value_size);
		if (rc) {
			report_error("put", rc);
			goto out;
		}
	}
	rc = cesium_sync(db);
	if (rc) {
		report_error("sync", rc);
		goto out;
	}
	double secs = now_sec() - t0;
	printf("demo: wrote %" PRIu64 " keys (%zu-byte keys, %zu-byte values) in random order "
	       "and synced: %.2f s, %.0f writes/s\n",
	       n, c->key_size, c->value_size, secs, (double)n / secs);

	t0 = now_sec();
	for (uint64_t i = 0; i < n; i++)
		demo_check_get(db, c, order[(i * 7919) % n], want, &failures);
	secs = now_sec() - t0;
	printf("demo: read all %" PRIu64 " keys back in another order and checked every value: "
	       "%.2f s, %.0f reads/s, %llu failures\n",
	       n, secs, (double)n / secs, failures);

	cesium_iter *it = NULL;
	rc = cesium_iter_new(db, 0, &it);
	if (rc) {
		report_error("iter_new", rc);
		goto out;
	}
	t0 = now_sec();
	uint64_t seen = 0;
	unsigned long long scan_bad = 0;
	for (cesium_iter_seek_first(it); cesium_iter_valid(it); cesium_iter_next(it), seen++) {
		size_t kl = 0, vl = 0;
		const void *k = cesium_iter_key(it, &kl);
		const void *v = cesium_iter_value(it, &vl);
		run_make_key(key, c->key_size, 2 * seen);
		demo_value(want, c->value_size, seen);
		if (seen >= n || kl != c->key_size || memcmp(k, key, kl) != 0 ||
		    vl != c->value_size || memcmp(v, want, vl) != 0) {
			if (scan_bad++ < 10)
				fprintf(stderr,
				        "  scan entry %" PRIu64 ": unexpected key or value\n",
				        seen);
		}
	}
	rc = cesium_iter_status(it);
	cesium_iter_free(it);
	secs = now_sec() - t0;
	if (rc) {
		report_error("scan", rc);
		scan_bad++;
	}
	if (seen != n)
		scan_bad++;
	failures += scan_bad;
	printf("demo: scanned %" PRIu64 " keys in order (expected %" PRIu64 "): %.2f s, %.0f "
	       "keys/s, %llu failures\n",
	       seen, n, secs, (double)seen / secs, scan_bad);

	t0 = now_sec();
	rc = cesium_close(db);
	db = NULL;
	if (rc) {
		report_error("close", rc);
		goto out;
	}
	cesium_options_free(o);
	o = NULL;
	if (make_options(c, false, &o))
		goto out;
	rc = cesium_open(dir, o, &db);
	if (rc) {
		report_error("reopen", rc);
		goto out;
	}
	secs = now_sec() - t0;
	printf("demo: closed and reopened the database: %.3f s\n", secs);

	uint64_t sample = n < 10000 ? n : 10000;
	unsigned long long before = failures;
	t0 = now_sec();
	for (uint64_t i = 0; i < sample; i++)
		demo_check_get(db, c, run_rnd(&rng) % n, want, &failures);
	for (uint64_t i = 0; i < 1000; i++) {
		void *v = NULL;
		size_t vl = 0;
		run_make_key(key, c->key_size, 2 * (run_rnd(&rng) % n) + 1);
		rc = cesium_get(db, key, c->key_size, &v, &vl);
		if (rc != CESIUM_ENOTFOUND) {
			if (failures++ < 10)
				fprintf(stderr, "  never-written key %.*s: %s\n", (int)c->key_size,
				        key, rc ? cesium_strerror(rc) : "found");
			if (rc == 0)
				cesium_free(v);
		}
	}
	secs = now_sec() - t0;
	printf("demo: after reopening, checked %" PRIu64 " random keys and 1000 never-written "
	       "ones: %.3f s, %llu failures\n",
	       sample, secs, failures - before);
	status = failures ? 1 : 0;
	printf("demo: %s\n", status ? "FAILED" : "all checks passed");
out:
	if (db) {
		rc = cesium_close(db);
		if (rc) {
			report_error("close", rc);
			status = 1;
		}
	}
	cesium_options_free(o);
	free(order);
	free(val);
	free(want);
	return status;
}

/* ---- command line ---- */

static void usage(void)
{
	fprintf(stderr,
	        "usage: cesium-bench [--db=DIR] [--num=N] [--value_size=100] [--key_size=16]\n"
	        "                    [--benchmarks=fillseq,fillrandom,overwrite,readrandom,"
	        "readseq,seekrandom]\n"
	        "                    [--threads=1] [--sync] [--seed=S] [--opt name=value ...] "
	        "[--demo]\n");
}

static bool parse_u64(const char *s, uint64_t *out)
{
	char *end = NULL;
	errno = 0;
	if (!*s || *s == '-')
		return false;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end)
		return false;
	*out = v;
	return true;
}

static int parse_args(int argc, char **argv, struct config *c)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *eq = strchr(a, '=');
		const char *val = eq ? eq + 1 : NULL;
		size_t nl = eq ? (size_t)(eq - a) : strlen(a);
		uint64_t u = 0;
#define IS(name) (nl == strlen(name) && strncmp(a, name, nl) == 0)
		if (IS("--db") && val) {
			c->db = val;
		} else if (IS("--num") && val && parse_u64(val, &u) && u > 0) {
			c->num = u;
			c->num_set = true;
		} else if (IS("--value_size") && val && parse_u64(val, &u) &&
		           u <= CESIUM_MAX_VALUE_SIZE) {
			c->value_size = (size_t)u;
		} else if (IS("--key_size") && val && parse_u64(val, &u) && u >= 1 && u <= 32) {
			c->key_size = (size_t)u;
		} else if (IS("--benchmarks") && val) {
			c->benchmarks = val;
		} else if (IS("--threads") && val && parse_u64(val, &u) && u >= 1 && u <= 1024) {
			c->threads = (unsigned)u;
		} else if (IS("--seed") && val && parse_u64(val, &u)) {
			c->seed = u;
		} else if (IS("--sync") && !val) {
			c->sync = true;
		} else if (IS("--demo") && !val) {
			c->demo = true;
		} else if (IS("--opt")) {
			/* --opt name=value or --opt=name=value */
			const char *kv = val ? val : (i + 1 < argc ? argv[++i] : NULL);
			const char *e2 = kv ? strchr(kv, '=') : NULL;
			if (!e2 || e2 == kv || c->nopts == MAX_OPTS) {
				fprintf(stderr, "cesium-bench: --opt needs name=value\n");
				return -1;
			}
			char *name = strndup(kv, (size_t)(e2 - kv));
			if (!name)
				return -1;
			c->opt_name[c->nopts] = name;
			c->opt_value[c->nopts] = e2 + 1;
			c->nopts++;
		} else if (IS("--help") || IS("-h")) {
			usage();
			exit(0);
		} else {
			fprintf(stderr, "cesium-bench: bad argument '%s'\n", a);
			return -1;
		}
#undef IS
	}
	return 0;
}

int legacy_main(int argc, char **argv)
{
	struct config c = {
	    .num = 100000,
	    .value_size = 100,
	    .key_size = 16,
	    .benchmarks = "fillseq,fillrandom,overwrite,readrandom,readseq,seekrandom",
	    .threads = 1,
	    .seed = 301,
	};
	if (parse_args(argc, argv, &c) != 0) {
		usage();
		return 2;
	}
	char tmp[] = "/tmp/cesium-bench-XXXXXX";
	const char *dir = c.db;
	if (!dir) {
		const char *base = getenv("TMPDIR");
		static char path[4096];
		snprintf(path, sizeof(path), "%s/cesium-bench-XXXXXX", base ? base : "/tmp");
		dir = mkdtemp(path);
		if (!dir)
			dir = mkdtemp(tmp);
		if (!dir) {
			fprintf(stderr, "cesium-bench: cannot create a temporary directory: %s\n",
			        strerror(errno));
			return 1;
		}
	}
	int status = c.demo ? run_demo(&c, dir) : run_benchmarks(&c, dir);
	if (!c.db)
		rmtree(dir);
	for (unsigned i = 0; i < c.nopts; i++)
		free((char *)c.opt_name[i]);
	return status;
}
