/* run.c — see run.h. */
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RANDBUF_SIZE (1u << 20)

/* New keys of insert=1 jobs, shared by every job of a run. Key nrkeys + i
 * is the i-th insert; acked says up to where all inserts are done, so that
 * latest reads only keys already written (YCSB's acknowledged counter). */
struct run_inserts {
	_Atomic uint64_t next;  /* inserts handed out */
	_Atomic uint64_t acked; /* inserts 0..acked-1 have all completed */
};

/* Per-job state shared by its clones, read-only while they run (ins is
 * changed only through its atomics). */
struct run_shared {
	const struct job *job;
	const unsigned char *randbuf; /* values are slices of it */
	struct run_keys keys;         /* template of the clones' draws */
	struct run_inserts *ins;
};

/* Buffers of one iodepth batch (randread with iodepth > 1). */
struct run_batch {
	char *keybuf;
	const void **keys;
	size_t *klens;
	void **vals;
	size_t *vlens;
	int *st;
	uint64_t *idx;
};

struct worker {
	pthread_t tid;
	const struct run_params *p;
	struct run_shared *sh;
	void *db;
	unsigned clone;
	uint64_t lo, hi; /* sequential key range of this clone */
	uint64_t ops;    /* ops this clone performs (unless time_based) */
	struct run_keys keys;
	struct dir_stats d[DIR_N];
	struct sec_sample *secs;
	unsigned nsecs, capsecs;
	uint64_t errors, verify_errors, not_found;
	uint64_t t_start, t_stats, t_end; /* ns */
	/* Read by the progress line while the worker runs; relaxed is enough,
	 * the numbers are only displayed. */
	_Atomic uint64_t live_ios[DIR_N];
	_Atomic uint64_t live_done;
	_Atomic int finished;
};

uint64_t run_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t run_rnd(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static double run_unit(uint64_t *s)
{
	return (double)(run_rnd(s) >> 11) * 0x1.0p-53;
}

uint64_t run_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

void run_make_key(char *buf, size_t len, uint64_t k)
{
	for (size_t i = len; i > 0; i--) {
		buf[i - 1] = (char)('0' + k % 10);
		k /= 10;
	}
}

/* The value of key k: a slice of the random buffer chosen by k, so a read
 * can check it without remembering what was written. */
static const unsigned char *run_value(const struct run_shared *sh, uint64_t k)
{
	return sh->randbuf + run_mix(k) % RANDBUF_SIZE;
}

static double run_zeta_add(double z, uint64_t from, uint64_t to, double theta)
{
	for (uint64_t i = from; i <= to; i++)
		z += 1.0 / pow((double)i, theta);
	return z;
}

static void run_keys_eta(struct run_keys *g)
{
	g->eta = (1.0 - pow(2.0 / (double)g->n, 1.0 - g->theta)) / (1.0 - g->zeta2 / g->zetan);
}

void run_keys_init(struct run_keys *g, const struct job *j, uint64_t seed)
{
	memset(g, 0, sizeof(*g));
	g->dist = j->dist;
	g->nrkeys = j->nrkeys;
	g->n = j->nrkeys;
	g->rng = run_mix(seed) | 1;
	if (j->dist == JOB_DIST_ZIPF || j->dist == JOB_DIST_LATEST) {
		/* Gray et al.'s generator, as YCSB uses; zeta(n) is O(n) once. */
		g->theta = j->dist_param;
		g->zetan = run_zeta_add(0, 1, g->n, g->theta);
		g->zeta2 = 1.0 + 1.0 / pow(2.0, g->theta);
		g->alpha = 1.0 / (1.0 - g->theta);
		run_keys_eta(g);
	} else if (j->dist == JOB_DIST_PARETO) {
		/* u^pow puts a fraction 1-h of the draws in the first h of keys. */
		g->pareto_pow = log(j->dist_param) / log(1.0 - j->dist_param);
	} else if (j->dist == JOB_DIST_NORMAL) {
		g->normal_sd = j->dist_param / 100.0;
	}
}

uint64_t run_keys_rand(struct run_keys *g)
{
	return run_rnd(&g->rng);
}

/* A zipfian rank in 0..n-1, 0 the most frequent. */
static uint64_t run_zipf_rank(struct run_keys *g)
{
	double u = run_unit(&g->rng), uz = u * g->zetan;
	uint64_t rank;
	if (uz < 1.0)
		rank = 0;
	else if (uz < g->zeta2)
		rank = 1;
	else
		rank = (uint64_t)((double)g->n * pow(g->eta * u - g->eta + 1.0, g->alpha));
	return rank < g->n ? rank : g->n - 1;
}

uint64_t run_keys_next(struct run_keys *g, uint64_t newest)
{
	uint64_t n = g->nrkeys;
	double r;
	switch (g->dist) {
	case JOB_DIST_RANDOM:
		return run_rnd(&g->rng) % n;
	case JOB_DIST_ZIPF:
		/* Scatter the popular ranks over the key space, as YCSB does. */
		return run_mix(run_zipf_rank(g)) % n;
	case JOB_DIST_LATEST: {
		/* YCSB grows its zipfian with the record count: zeta gains the
		 * new terms, so each insert costs O(1) here. */
		if (newest + 1 > g->n) {
			g->zetan = run_zeta_add(g->zetan, g->n + 1, newest + 1, g->theta);
			g->n = newest + 1;
			run_keys_eta(g);
		}
		uint64_t rank = run_zipf_rank(g);
		return rank <= newest ? newest - rank : 0;
	}
	case JOB_DIST_PARETO:
		r = (double)n * pow(run_unit(&g->rng), g->pareto_pow);
		return run_mix(r < (double)n ? (uint64_t)r : n - 1) % n;
	case JOB_DIST_NORMAL: {
		double u1 = run_unit(&g->rng), u2 = run_unit(&g->rng);
		double gs = sqrt(-2.0 * log(u1 > 0 ? u1 : 1e-300)) * cos(2 * M_PI * u2);
		r = (double)n / 2 + gs * (double)n * g->normal_sd;
		if (r < 0)
			r = 0;
		return r < (double)n ? (uint64_t)r : n - 1;
	}
	}
	return 0;
}

unsigned run_keys_scan_length(struct run_keys *g, const struct job *j)
{
	if (!j->scan_uniform || j->scan_length <= 1)
		return j->scan_length;
	return 1 + (unsigned)(run_rnd(&g->rng) % j->scan_length);
}

/* The next key a read (or non-insert write) of w touches. */
static uint64_t run_draw(struct worker *w)
{
	uint64_t newest = 0;
	if (w->keys.dist == JOB_DIST_LATEST)
		newest = w->sh->job->nrkeys - 1 +
		         atomic_load_explicit(&w->sh->ins->acked, memory_order_acquire);
	return run_keys_next(&w->keys, newest);
}

static void run_record(struct worker *w, int dir, uint64_t t0, uint64_t t1, uint64_t bytes)
{
	atomic_fetch_add_explicit(&w->live_ios[dir], 1, memory_order_relaxed);
	if (t0 < w->t_stats)
		return; /* ramp */
	uint64_t lat = t1 - t0;
	hist_add(&w->d[dir].lat, lat);
	w->d[dir].ios++;
	w->d[dir].bytes += bytes;
	uint64_t s = (t1 - w->t_stats) / 1000000000ull;
	if (s >= w->capsecs) {
		unsigned cap = w->capsecs ? w->capsecs * 2 : 64;
		while (cap <= s)
			cap *= 2;
		struct sec_sample *n = realloc(w->secs, cap * sizeof(*n));
		if (!n)
			return; /* the log loses samples; the statistics do not */
		memset(n + w->capsecs, 0, (cap - w->capsecs) * sizeof(*n));
		w->secs = n;
		w->capsecs = cap;
	}
	if (s >= w->nsecs)
		w->nsecs = (unsigned)s + 1;
	w->secs[s].ios[dir]++;
	w->secs[s].bytes[dir] += bytes;
	w->secs[s].lat_sum[dir] += (double)lat;
}

static int run_put(struct worker *w, uint64_t k)
{
	const struct job *j = w->sh->job;
	char key[64];
	run_make_key(key, j->key_size, k);
	uint64_t t0 = run_now_ns();
	int rc = w->p->be->put(w->db, key, j->key_size, run_value(w->sh, k), j->value_size);
	run_record(w, DIR_WRITE, t0, run_now_ns(), j->key_size + j->value_size);
	return rc;
}

/* Puts the next new key (nrkeys + i) and acknowledges it once every
 * earlier insert is done too, so acked never covers a missing key. */
static int run_insert(struct worker *w)
{
	struct run_inserts *ins = w->sh->ins;
	uint64_t i = atomic_fetch_add_explicit(&ins->next, 1, memory_order_relaxed);
	int rc = run_put(w, w->sh->job->nrkeys + i);
	while (atomic_load_explicit(&ins->acked, memory_order_acquire) != i)
		sched_yield();
	atomic_store_explicit(&ins->acked, i + 1, memory_order_release);
	return rc;
}

/* A write of randwrite/randrw: a new key with insert=1, else a drawn one. */
static int run_write(struct worker *w)
{
	return w->sh->job->insert ? run_insert(w) : run_put(w, run_draw(w));
}

static int run_del(struct worker *w, uint64_t k)
{
	const struct job *j = w->sh->job;
	char key[64];
	run_make_key(key, j->key_size, k);
	uint64_t t0 = run_now_ns();
	int rc = w->p->be->del(w->db, key, j->key_size);
	run_record(w, DIR_TRIM, t0, run_now_ns(), j->key_size);
	return rc;
}

static void run_verify(struct worker *w, uint64_t k, const void *v, size_t vl)
{
	const struct job *j = w->sh->job;
	if (vl != j->value_size || memcmp(v, run_value(w->sh, k), vl) != 0) {
		if (w->verify_errors++ < 5)
			fprintf(stderr,
			        "cesium-bench: verify: job %s: key %llu: wrong value "
			        "(%zu bytes)\n",
			        j->name, (unsigned long long)k, vl);
	}
}

static int run_get(struct worker *w, uint64_t k)
{
	const struct job *j = w->sh->job;
	char key[64];
	void *v = NULL;
	size_t vl = 0;
	run_make_key(key, j->key_size, k);
	uint64_t t0 = run_now_ns();
	int rc = w->p->be->get(w->db, key, j->key_size, &v, &vl);
	run_record(w, DIR_READ, t0, run_now_ns(), j->key_size + (rc == 0 ? vl : 0));
	if (rc == 1) {
		w->not_found++;
		return 0;
	}
	if (rc == 0) {
		if (j->verify)
			run_verify(w, k, v, vl);
		w->p->be->vfree(v);
	}
	return rc;
}

static bool run_time_left(struct worker *w, uint64_t done)
{
	const struct job *j = w->sh->job;
	if (j->runtime > 0 && run_now_ns() >= w->t_end)
		return false;
	return j->time_based || done < w->ops;
}

/* One randread batch of n keys: a multi-get when the engine has one, else
 * a loop of gets. Every key counts as one op whose latency is the whole
 * batch's, as fio's clat at iodepth n. */
static int run_get_batch(struct worker *w, struct run_batch *b, unsigned n)
{
	const struct job *j = w->sh->job;
	const struct backend *be = w->p->be;
	int rc = 0;
	for (unsigned i = 0; i < n; i++) {
		b->idx[i] = run_draw(w);
		run_make_key(b->keybuf + (size_t)i * j->key_size, j->key_size, b->idx[i]);
		b->keys[i] = b->keybuf + (size_t)i * j->key_size;
		b->klens[i] = j->key_size;
		b->vals[i] = NULL;
		b->vlens[i] = 0;
	}
	uint64_t t0 = run_now_ns();
	if (be->multi_get) {
		rc = be->multi_get(w->db, n, b->keys, b->klens, b->vals, b->vlens, b->st);
	} else {
		for (unsigned i = 0; i < n; i++) {
			b->st[i] =
			    be->get(w->db, b->keys[i], b->klens[i], &b->vals[i], &b->vlens[i]);
			if (b->st[i] < 0)
				rc = -1;
		}
	}
	uint64_t t1 = run_now_ns();
	for (unsigned i = 0; i < n; i++) {
		run_record(w, DIR_READ, t0, t1, j->key_size + (b->st[i] == 0 ? b->vlens[i] : 0));
		if (b->st[i] == 1) {
			w->not_found++;
		} else if (b->st[i] == 0) {
			if (j->verify)
				run_verify(w, b->idx[i], b->vals[i], b->vlens[i]);
			be->vfree(b->vals[i]);
		}
	}
	return rc;
}

static int run_batch_loop(struct worker *w)
{
	const struct job *j = w->sh->job;
	size_t d = j->iodepth;
	struct run_batch b = {
	    .keybuf = malloc(d * j->key_size),
	    .keys = malloc(d * sizeof(*b.keys)),
	    .klens = malloc(d * sizeof(*b.klens)),
	    .vals = malloc(d * sizeof(*b.vals)),
	    .vlens = malloc(d * sizeof(*b.vlens)),
	    .st = malloc(d * sizeof(*b.st)),
	    .idx = malloc(d * sizeof(*b.idx)),
	};
	uint64_t done = 0;
	int rc = 0;
	if (!b.keybuf || !b.keys || !b.klens || !b.vals || !b.vlens || !b.st || !b.idx) {
		fprintf(stderr, "cesium-bench: out of memory\n");
		rc = -1;
		goto out;
	}
	while (rc == 0 && run_time_left(w, done)) {
		uint64_t n = d;
		if (!j->time_based && w->ops - done < n)
			n = w->ops - done;
		rc = run_get_batch(w, &b, (unsigned)n);
		done += n;
		atomic_store_explicit(&w->live_done, done, memory_order_relaxed);
	}
out:
	free(b.keybuf);
	free(b.keys);
	free(b.klens);
	free(b.vals);
	free(b.vlens);
	free(b.st);
	free(b.idx);
	return rc;
}

/* Parses a key this tool wrote back into its index. */
static uint64_t run_key_index(const void *k, size_t kl)
{
	uint64_t v = 0;
	for (size_t i = 0; i < kl; i++)
		v = v * 10 + (uint64_t)(((const char *)k)[i] - '0');
	return v;
}

static int run_scan(struct worker *w, void *it, uint64_t k)
{
	const struct job *j = w->sh->job;
	const struct backend *be = w->p->be;
	char key[64];
	uint64_t bytes = 0;
	unsigned len = run_keys_scan_length(&w->keys, j);
	run_make_key(key, j->key_size, k);
	uint64_t t0 = run_now_ns();
	be->iter_seek(it, key, j->key_size);
	for (unsigned i = 0; i < len && be->iter_valid(it); i++) {
		size_t kl = 0, vl = 0;
		const void *kp = be->iter_key(it, &kl);
		const void *vp = be->iter_value(it, &vl);
		bytes += kl + vl;
		if (j->verify && kl == j->key_size)
			run_verify(w, run_key_index(kp, kl), vp, vl);
		be->iter_next(it);
	}
	run_record(w, DIR_READ, t0, run_now_ns(), bytes);
	return 0;
}

static int run_readseq(struct worker *w)
{
	const struct job *j = w->sh->job;
	const struct backend *be = w->p->be;
	void *it = NULL;
	uint64_t done = 0;
	int rc = 0;
	while (rc == 0 && run_time_left(w, done)) {
		if (be->iter_new(w->db, &it))
			return -1;
		uint64_t t0 = run_now_ns();
		be->iter_seek(it, NULL, 0);
		bool any = false;
		while (be->iter_valid(it) && run_time_left(w, done)) {
			size_t kl = 0, vl = 0;
			const void *kp = be->iter_key(it, &kl);
			const void *vp = be->iter_value(it, &vl);
			if (j->verify && kl == j->key_size)
				run_verify(w, run_key_index(kp, kl), vp, vl);
			be->iter_next(it);
			uint64_t t1 = run_now_ns();
			run_record(w, DIR_READ, t0, t1, kl + vl);
			t0 = t1;
			done++;
			any = true;
			atomic_store_explicit(&w->live_done, done, memory_order_relaxed);
		}
		rc = be->iter_free(it);
		/* An empty database or a finished pass without time_based ends it. */
		if (!any || !j->time_based)
			break;
	}
	return rc;
}

static int run_loop(struct worker *w)
{
	const struct job *j = w->sh->job;
	void *it = NULL;
	int rc = 0;
	uint64_t span = w->hi - w->lo;
	if (j->rw == JOB_READ)
		return run_readseq(w);
	if (j->rw == JOB_RANDREAD && j->iodepth > 1)
		return run_batch_loop(w);
	if ((j->rw == JOB_SCAN || (j->rw == JOB_RANDRW && j->scan_length)) &&
	    w->p->be->iter_new(w->db, &it))
		return -1;
	for (uint64_t i = 0; rc == 0 && run_time_left(w, i); i++) {
		uint64_t seq = w->lo + (span ? i % span : 0);
		bool rd = run_keys_rand(&w->keys) % 100 < j->rwmixread;
		switch (j->rw) {
		case JOB_WRITE:
			rc = run_put(w, seq);
			break;
		case JOB_RANDWRITE:
			rc = run_write(w);
			break;
		case JOB_RANDREAD:
			rc = run_get(w, run_draw(w));
			break;
		case JOB_RANDRW:
			if (!rd)
				rc = run_write(w);
			else if (it)
				rc = run_scan(w, it, run_draw(w));
			else
				rc = run_get(w, run_draw(w));
			break;
		case JOB_READWRITE:
			rc = rd ? run_get(w, seq) : run_put(w, seq);
			break;
		case JOB_SCAN:
			rc = run_scan(w, it, run_draw(w));
			break;
		case JOB_DELETE:
			rc = run_del(w, seq);
			break;
		case JOB_RMW: {
			uint64_t k = run_draw(w);
			rc = run_get(w, k);
			if (rc == 0)
				rc = run_put(w, k);
			break;
		}
		case JOB_READ:
			break;
		}
		atomic_store_explicit(&w->live_done, i + 1, memory_order_relaxed);
	}
	if (it && w->p->be->iter_free(it))
		rc = -1;
	return rc;
}

static void *run_worker(void *arg)
{
	struct worker *w = arg;
	const struct job *j = w->sh->job;
	w->t_start = run_now_ns();
	w->t_stats = w->t_start + (uint64_t)(j->ramp_time * 1e9);
	w->t_end = w->t_stats + (uint64_t)(j->runtime * 1e9);
	if (run_loop(w))
		w->errors++;
	w->t_end = run_now_ns();
	atomic_store_explicit(&w->finished, 1, memory_order_release);
	return NULL;
}

static void run_progress(struct worker *ws, unsigned nw, uint64_t total_ops, double budget,
                         uint64_t start, uint64_t *last_ios, uint64_t *last_t)
{
	uint64_t ios[DIR_N] = {0}, done = 0;
	unsigned running = 0;
	for (unsigned i = 0; i < nw; i++) {
		for (int d = 0; d < DIR_N; d++)
			ios[d] += atomic_load_explicit(&ws[i].live_ios[d], memory_order_relaxed);
		done += atomic_load_explicit(&ws[i].live_done, memory_order_relaxed);
		running += !atomic_load_explicit(&ws[i].finished, memory_order_relaxed);
	}
	uint64_t now = run_now_ns();
	double el = (double)(now - start) / 1e9, dt = (double)(now - *last_t) / 1e9;
	double pct = budget > 0 ? el / budget : (total_ops ? (double)done / (double)total_ops : 0);
	if (pct > 1)
		pct = 1;
	double eta = pct > 0 ? el / pct - el : 0;
	printf("\rJobs: %u: [%.1f%% done] [r=%.0f,w=%.0f,d=%.0f IOPS] [eta %02.0fm:%02.0fs]   ",
	       running, pct * 100, dt > 0 ? (double)(ios[0] - last_ios[0]) / dt : 0,
	       dt > 0 ? (double)(ios[1] - last_ios[1]) / dt : 0,
	       dt > 0 ? (double)(ios[2] - last_ios[2]) / dt : 0, floor(eta / 60), fmod(eta, 60));
	fflush(stdout);
	memcpy(last_ios, ios, sizeof(ios));
	*last_t = now;
}

static void run_collect(struct job_result *r, struct worker *w)
{
	for (int d = 0; d < DIR_N; d++) {
		hist_merge(&r->d[d].lat, &w->d[d].lat);
		r->d[d].ios += w->d[d].ios;
		r->d[d].bytes += w->d[d].bytes;
	}
	r->errors += w->errors;
	r->verify_errors += w->verify_errors;
	r->not_found += w->not_found;
	double secs = (double)(w->t_end - w->t_stats) / 1e9;
	if (secs > r->runtime_sec)
		r->runtime_sec = secs;
	if (w->nsecs > r->nsecs) {
		struct sec_sample *n = realloc(r->secs, w->nsecs * sizeof(*n));
		if (!n)
			return;
		memset(n + r->nsecs, 0, (w->nsecs - r->nsecs) * sizeof(*n));
		r->secs = n;
		r->nsecs = w->nsecs;
	}
	for (unsigned s = 0; s < w->nsecs; s++)
		for (int d = 0; d < DIR_N; d++) {
			r->secs[s].ios[d] += w->secs[s].ios[d];
			r->secs[s].bytes[d] += w->secs[s].bytes[d];
			r->secs[s].lat_sum[d] += w->secs[s].lat_sum[d];
		}
}

/* Runs jobs [first, last) at once. */
static int run_group(const struct run_params *p, void *db, const struct job *jobs, unsigned first,
                     unsigned last, const unsigned char *randbuf, struct run_inserts *ins,
                     struct job_result *res)
{
	unsigned nw = 0;
	int rc = 0;
	for (unsigned i = first; i < last; i++)
		nw += jobs[i].numjobs;
	struct worker *ws = calloc(nw, sizeof(*ws));
	struct run_shared *sh = calloc(last - first, sizeof(*sh));
	unsigned started = 0;
	uint64_t total_ops = 0;
	double budget = 0;
	if (!ws || !sh) {
		fprintf(stderr, "cesium-bench: out of memory\n");
		rc = -1;
		goto out;
	}
	for (unsigned i = first, w = 0; i < last; i++) {
		const struct job *j = &jobs[i];
		struct run_shared *s = &sh[i - first];
		s->job = j;
		s->randbuf = randbuf;
		s->ins = ins;
		run_keys_init(&s->keys, j, j->seed);
		uint64_t ops = j->number_ios ? j->number_ios : j->nrkeys;
		total_ops += j->time_based ? 0 : ops;
		if (j->runtime > 0 && j->ramp_time + j->runtime > budget)
			budget = j->ramp_time + j->runtime;
		for (unsigned c = 0; c < j->numjobs; c++, w++) {
			struct worker *wk = &ws[w];
			wk->p = p;
			wk->sh = s;
			wk->db = db;
			wk->clone = c;
			/* Clones split the sequential key range and the op count. */
			wk->lo = j->nrkeys * c / j->numjobs;
			wk->hi = j->nrkeys * (c + 1) / j->numjobs;
			wk->ops = ops * (c + 1) / j->numjobs - ops * c / j->numjobs;
			wk->keys = s->keys;
			wk->keys.rng = run_mix(j->seed ^ run_mix(i * 1024 + c + 1)) | 1;
			for (int d = 0; d < DIR_N; d++)
				hist_init(&wk->d[d].lat);
		}
	}
	for (; started < nw; started++)
		if (pthread_create(&ws[started].tid, NULL, run_worker, &ws[started]) != 0) {
			fprintf(stderr, "cesium-bench: cannot start thread\n");
			rc = -1;
			break;
		}
	if (p->progress) {
		uint64_t last_ios[DIR_N] = {0}, start = run_now_ns(), last_t = start;
		for (;;) {
			unsigned fin = 0;
			for (unsigned i = 0; i < started; i++)
				fin += (unsigned)atomic_load_explicit(&ws[i].finished,
				                                      memory_order_acquire);
			if (fin == started)
				break;
			usleep(200000);
			if (run_now_ns() - last_t >= 1000000000ull)
				run_progress(ws, started, total_ops, budget, start, last_ios,
				             &last_t);
		}
		printf("\r%100s\r", "");
		fflush(stdout);
	}
	for (unsigned i = 0; i < started; i++)
		pthread_join(ws[i].tid, NULL);
	for (unsigned i = first, w = 0; i < last; i++) {
		struct job_result *r = &res[i];
		for (unsigned c = 0; c < jobs[i].numjobs; c++, w++)
			if (w < started)
				run_collect(r, &ws[w]);
	}
out:
	if (ws)
		for (unsigned i = 0; i < nw; i++)
			free(ws[i].secs);
	free(ws);
	free(sh);
	return rc;
}

/* Peak resident anonymous memory (resident minus file-backed pages, from
 * /proc/self/statm), sampled by a thread while the engine is open: the
 * engine's heap without the page cache its mappings make resident, which
 * ru_maxrss counts (an mmap reader such as LMDB or cesium would otherwise
 * look as large as its data). */
struct run_anon_sampler {
	pthread_t tid;
	atomic_bool stop;
	_Atomic long peak_kb;
};

static long run_anon_kb(void)
{
	long long size, resident, shared;
	FILE *f = fopen("/proc/self/statm", "r");
	if (!f)
		return 0;
	int n = fscanf(f, "%lld %lld %lld", &size, &resident, &shared);
	fclose(f);
	if (n != 3 || shared > resident)
		return 0;
	return (long)((resident - shared) * (sysconf(_SC_PAGESIZE) / 1024));
}

static void *run_anon_sample(void *arg)
{
	struct run_anon_sampler *s = arg;
	while (!atomic_load(&s->stop)) {
		long kb = run_anon_kb();
		if (kb > atomic_load(&s->peak_kb))
			atomic_store(&s->peak_kb, kb);
		usleep(50000);
	}
	return NULL;
}

static void run_anon_stop(struct run_anon_sampler *s, bool *sampling)
{
	if (!*sampling)
		return;
	atomic_store(&s->stop, true);
	pthread_join(s->tid, NULL);
	*sampling = false;
}

static _Atomic uint64_t run_du_total;

static int run_du_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)path;
	(void)ftw;
	if (flag == FTW_F)
		atomic_fetch_add(&run_du_total, (uint64_t)st->st_blocks * 512u);
	return 0;
}

static _Atomic unsigned run_drop_failures;

static int run_drop_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)ftw;
	if (flag != FTW_F || !S_ISREG(st->st_mode))
		return 0;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	int err = 0;
	const char *what = "open";
	if (fd < 0) {
		err = errno;
	} else {
		/* Dirty pages are not dropped: write them back first. */
		what = "fdatasync";
		if (fdatasync(fd) != 0) {
			err = errno;
		} else {
			what = "posix_fadvise";
			err = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		}
		close(fd);
	}
	/* A file the engine removed meanwhile has nothing to drop. */
	if (err && err != ENOENT) {
		fprintf(stderr, "cesium-bench: invalidate: %s: %s: %s\n", path, what,
		        strerror(err));
		atomic_fetch_add(&run_drop_failures, 1);
	}
	return 0;
}

int run_drop_cache(const char *dir)
{
	atomic_store(&run_drop_failures, 0);
	if (nftw(dir, run_drop_entry, 16, FTW_PHYS) != 0) {
		fprintf(stderr, "cesium-bench: invalidate: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	return atomic_load(&run_drop_failures) ? -1 : 0;
}

uint64_t run_disk_usage(const char *dir)
{
	atomic_store(&run_du_total, 0);
	nftw(dir, run_du_entry, 16, FTW_PHYS);
	return atomic_load(&run_du_total);
}

int run_jobs(const struct run_params *p, const struct job *jobs, unsigned njobs,
             struct run_result *res)
{
	void *db = NULL;
	int rc = -1;
	size_t maxv = 0;
	uint64_t s = 0x5eed;
	memset(res, 0, sizeof(*res));
	res->engine = p->be->name;
	res->dir = p->dir;
	res->status = 1;
	res->est.write_amp = res->est.compaction_bytes = res->est.stall_sec = -1;
	res->est.cache_hit_rate = -1;
	for (unsigned i = 0; i < njobs; i++)
		if (jobs[i].value_size > maxv)
			maxv = jobs[i].value_size;
	struct run_inserts ins = {0};
	struct run_anon_sampler anon = {0};
	bool sampling = false;
	unsigned char *randbuf = malloc(RANDBUF_SIZE + maxv + 8);
	res->jobs = calloc(njobs, sizeof(*res->jobs));
	if (!randbuf || !res->jobs) {
		fprintf(stderr, "cesium-bench: out of memory\n");
		goto out;
	}
	res->njobs = njobs;
	for (size_t i = 0; i < RANDBUF_SIZE + maxv; i += 8) {
		uint64_t x = run_rnd(&s);
		memcpy(randbuf + i, &x, 8);
	}
	const struct job *j0 = &jobs[0];
	struct backend_cfg cfg = {
	    .dir = p->dir,
	    .sync = j0->sync,
	    .memtable_size = 64ull << 20,
	    .cache_size = 8ull << 20,
	    .bloom_bits = 10,
	    .opt_name = j0->opt_name,
	    .opt_value = j0->opt_value,
	    .nopts = j0->nopts,
	};
	if (backend_common_opts(&cfg, p->be->name, false))
		goto out;
	uint64_t t0 = run_now_ns();
	if (p->be->open(&cfg, &db))
		goto out;
	atomic_store(&anon.peak_kb, run_anon_kb());
	sampling = pthread_create(&anon.tid, NULL, run_anon_sample, &anon) == 0;
	unsigned group = 0;
	int status = 0;
	for (unsigned i = 0; i < njobs; i++)
		if (jobs[i].rw == JOB_RANDREAD && jobs[i].iodepth > 1 && !p->be->multi_get) {
			fprintf(stderr,
			        "cesium-bench: note: %s has no multi-get: iodepth %u runs as a "
			        "loop of %u gets per batch\n",
			        p->be->name, jobs[i].iodepth, jobs[i].iodepth);
			break;
		}
	for (unsigned first = 0; first < njobs;) {
		unsigned last = first + 1;
		bool invalidate = false;
		while (last < njobs && !jobs[last].stonewall)
			last++;
		for (unsigned i = first; i < last; i++)
			invalidate |= jobs[i].invalidate;
		if (invalidate) {
			/* Cold start: the engine's own cache goes with the close, the
			 * page cache with the fadvise. */
			int crc = p->be->close(db);
			db = NULL;
			if (crc || run_drop_cache(p->dir))
				status = 1;
			if (p->be->open(&cfg, &db)) {
				db = NULL;
				goto out;
			}
		}
		for (unsigned i = first; i < last; i++) {
			struct job_result *r = &res->jobs[i];
			snprintf(r->name, sizeof(r->name), "%s", jobs[i].name);
			r->job = &jobs[i];
			r->group = group;
			r->clones = jobs[i].numjobs;
			for (int d = 0; d < DIR_N; d++)
				hist_init(&r->d[d].lat);
		}
		if (run_group(p, db, jobs, first, last, randbuf, &ins, res->jobs))
			status = 1;
		first = last;
		group++;
	}
	p->be->stats(db, &res->est);
	run_anon_stop(&anon, &sampling);
	res->peak_anon_kb = atomic_load(&anon.peak_kb);
	int crc = p->be->close(db);
	db = NULL;
	if (crc)
		status = 1;
	res->total_sec = (double)(run_now_ns() - t0) / 1e9;
	res->disk_bytes = run_disk_usage(p->dir);
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		res->peak_rss_kb = ru.ru_maxrss;
	for (unsigned i = 0; i < njobs; i++)
		if (res->jobs[i].errors || res->jobs[i].verify_errors)
			status = 1;
	res->status = status;
	rc = 0;
out:
	run_anon_stop(&anon, &sampling);
	free(randbuf);
	return rc;
}

void run_result_free(struct run_result *res)
{
	for (unsigned i = 0; i < res->njobs; i++)
		free(res->jobs[i].secs);
	free(res->jobs);
	res->jobs = NULL;
	res->njobs = 0;
}
