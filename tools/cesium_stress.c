/*
 * cesium-stress — concurrent randomized load against a cesium database,
 * checked against an expected-state oracle that survives SIGKILL.
 *
 * The oracle lives in PATH.oracle, a file mapped MAP_SHARED: a store into it
 * is in the page cache as soon as it executes, so killing the process loses
 * none of it. For each (namespace, key) it holds one 64-bit slot:
 *   low 32 bits:  the committed version (the last acknowledged write),
 *   high 32 bits: the pending version (a write issued but not yet
 *                 acknowledged), 0 when none.
 * A version is (counter << 1) | deleted. Version 0 is "never written"
 * (absent). The value of a put is derived from (ns, key, version), so only
 * the version needs storing. Counters grow per key, so a stale value is told
 * apart from the current one.
 *
 * Key k belongs to thread k % threads: only its owner writes it, so a key has
 * at most one write in flight and a defined order. Each thread also keeps a
 * record of its in-flight write (the keys and their new versions, and
 * whether the write was acknowledged), which lets --verify-only check that a
 * batch interrupted by a kill is present whole or not at all.
 *
 * Readers (get, multi-get, iterate) run concurrently with the owners'
 * writes: a read is accepted when the value seen is one the key could have
 * held between the oracle load before the read and the one after it.
 *
 * Set-up of a new oracle stores the magic last, so a kill during it leaves
 * a file with no magic that is zero but for the shape fields; such a file
 * is taken as a fresh oracle. --verify-only never creates an oracle or a
 * database, and never modifies a fresh oracle.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cesium.h"

#define ORACLE_MAGIC 0x4345535354524553ull /* "CESSTRES" */
#define ORACLE_FORMAT 1u
#define MAX_THREADS 64u
#define MAX_BATCH 8u
#define MAX_NS 64u
#define MAX_KEYS (1u << 24)
#define KEY_LEN 9 /* "k" + 8 digits: text order is numeric order */
/* One value in eight is up to this long: the longer ones (1 KiB and up)
 * are held in their log by the memtable, not copied. */
#define MAX_VAL 4096u
#define ITER_SPAN 64u
#define MAX_OPTS 32
#define MAX_MGET 16u
#define REPORT_BYTES 32u /* value bytes shown in hex by a mismatch report */

/* Per-thread record of the write in flight, on its own cache line pair. */
enum { REC_IDLE = 0, REC_ISSUED = 1, REC_ACKED = 2 };

struct rec {
	_Atomic uint32_t state; /* REC_*; stored last when arming (release) */
	uint32_t n;
	uint32_t ns[MAX_BATCH];
	uint32_t key[MAX_BATCH];
	uint32_t ver[MAX_BATCH];
	_Atomic uint64_t ops; /* operations done by this thread slot, all runs */
} __attribute__((aligned(128)));

struct oracle_hdr {
	uint64_t magic;
	uint32_t format;
	uint32_t nns;
	uint32_t nkeys;
	uint32_t pad;
	_Atomic uint64_t runs;
	_Atomic uint64_t verified_runs;
	uint64_t reserved[10];
	struct rec recs[MAX_THREADS];
};

/* Operation kinds: the op-mix weights and the per-op counts use this order. */
enum op { OP_PUT, OP_DEL, OP_BATCH, OP_GET, OP_MGET, OP_ITER, OP_FLUSH, OP_COMPACT, OP_COUNT };

static const char *const op_names[OP_COUNT] = {
    "put", "delete", "batch", "get", "mget", "iter", "flush", "compact",
};

struct cfg {
	const char *db;
	double duration;
	uint64_t ops;
	unsigned threads;
	uint64_t seed;
	unsigned keys;
	unsigned nns;
	unsigned w[OP_COUNT]; /* op-mix weights */
	unsigned sync_every;
	unsigned max_reports; /* mismatches printed in full; 0: all */
	bool verify_only;
	bool quiet;
	bool shape_given; /* --keys or --ns on the command line */
	const char *opt_name[MAX_OPTS];
	const char *opt_val[MAX_OPTS];
	int nopts;
};

static struct cfg cfg;
static struct oracle_hdr *hdr;
static _Atomic uint64_t *slots;
static cesium_db *db;
static _Atomic uint64_t total_ops;
static _Atomic uint64_t mismatches;
static _Atomic uint64_t reported; /* mismatches printed in full */
static _Atomic uint64_t errors;
static _Atomic bool stop;
static pthread_mutex_t report_mu = PTHREAD_MUTEX_INITIALIZER;

/* ---- helpers ---- */

static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

static double now_sec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t ns_id(uint32_t i)
{
	/* Spread ids over 64 bits so that namespace encoding is exercised. */
	return i == 0 ? 0 : ((uint64_t)i << 40) | i;
}

static uint32_t ver_counter(uint32_t v)
{
	return v >> 1;
}

static bool ver_absent(uint32_t v)
{
	return v == 0 || (v & 1u);
}

static uint32_t slot_committed(uint64_t s)
{
	return (uint32_t)s;
}

static uint32_t slot_pending(uint64_t s)
{
	return (uint32_t)(s >> 32);
}

static uint64_t make_slot(uint32_t committed, uint32_t pending)
{
	return (uint64_t)committed | ((uint64_t)pending << 32);
}

static _Atomic uint64_t *slot_of(uint32_t ns, uint32_t key)
{
	return &slots[(size_t)ns * hdr->nkeys + key];
}

static void make_key(char *buf, uint32_t key)
{
	char tmp[16];
	snprintf(tmp, sizeof(tmp), "k%08u", key % 100000000u);
	memcpy(buf, tmp, KEY_LEN);
}

static bool parse_key(const void *k, size_t klen, uint32_t *key)
{
	const char *p = k;
	uint32_t v = 0;
	if (klen != KEY_LEN || p[0] != 'k')
		return false;
	for (size_t i = 1; i < KEY_LEN; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		v = v * 10 + (uint32_t)(p[i] - '0');
	}
	*key = v;
	return true;
}

/* Value of a put: 4 bytes of version, 4 of key, then bytes derived from
 * (ns, key, version); its length is derived too. */
static size_t make_value(uint8_t *buf, uint32_t ns, uint32_t key, uint32_t ver)
{
	uint64_t h = mix64(((uint64_t)ns << 56) ^ ((uint64_t)key << 32) ^ ver);
	size_t len = 8 + (size_t)(h % 8 == 0 ? h % (MAX_VAL - 8) : h % 120);
	memcpy(buf, &ver, 4);
	memcpy(buf + 4, &key, 4);
	for (size_t i = 8; i < len; i++) {
		if ((i & 7) == 0)
			h = mix64(h);
		buf[i] = (uint8_t)(h >> ((i & 7) * 8));
	}
	return len;
}

/* What a read saw: absent, a well-formed value of version *ver, or garbage. */
enum seen { SEEN_ABSENT, SEEN_VALUE, SEEN_GARBAGE };

static enum seen decode_value(uint32_t ns, uint32_t key, const void *val, size_t vlen,
                              uint32_t *ver)
{
	uint8_t exp[MAX_VAL];
	uint32_t v;
	if (vlen < 8)
		return SEEN_GARBAGE;
	memcpy(&v, val, 4);
	if (v == 0 || (v & 1u))
		return SEEN_GARBAGE;
	size_t len = make_value(exp, ns, key, v);
	if (len != vlen || memcmp(exp, val, len) != 0)
		return SEEN_GARBAGE;
	*ver = v;
	return SEEN_VALUE;
}

static void describe(char *buf, size_t n, enum seen s, uint32_t ver)
{
	if (s == SEEN_ABSENT)
		snprintf(buf, n, "absent");
	else if (s == SEEN_GARBAGE)
		snprintf(buf, n, "garbage");
	else
		snprintf(buf, n, "v%u", ver_counter(ver));
}

static void describe_ver(char *buf, size_t n, uint32_t v)
{
	if (v == 0)
		snprintf(buf, n, "never-written");
	else if (v & 1u)
		snprintf(buf, n, "deleted@v%u", ver_counter(v));
	else
		snprintf(buf, n, "v%u", ver_counter(v));
}

/* "N bytes HEX", the hex cut at REPORT_BYTES bytes ("..." when cut). */
static void fmt_bytes(char *buf, size_t n, const void *p, size_t len)
{
	const uint8_t *b = p;
	size_t shown = len < REPORT_BYTES ? len : REPORT_BYTES;
	int off = snprintf(buf, n, "%zu bytes%s", len, len ? " " : "");
	for (size_t i = 0; i < shown && off > 0 && (size_t)off + 3 < n; i++)
		off += snprintf(buf + off, n - (size_t)off, "%02x", b[i]);
	if (shown < len && off > 0 && (size_t)off + 4 < n)
		snprintf(buf + off, n - (size_t)off, "...");
}

/* What a key holds at oracle version ver: absent, or the value bytes. */
static void fmt_version_value(char *buf, size_t n, uint32_t ns, uint32_t key, uint32_t ver)
{
	uint8_t v[MAX_VAL];
	char vb[32];
	describe_ver(vb, sizeof(vb), ver);
	if (ver_absent(ver)) {
		snprintf(buf, n, "%s: absent", vb);
		return;
	}
	int off = snprintf(buf, n, "%s: ", vb);
	if (off > 0 && (size_t)off < n)
		fmt_bytes(buf + off, n - (size_t)off, v, make_value(v, ns, key, ver));
}

/* What a read returned: absent, or the bytes it saw (val NULL: the value
 * of version ver, which decode_value checked byte for byte). */
static void fmt_seen(char *buf, size_t n, uint32_t ns, uint32_t key, enum seen s, uint32_t ver,
                     const void *val, size_t vlen)
{
	char d[32];
	int off;
	if (s == SEEN_ABSENT) {
		snprintf(buf, n, "absent");
		return;
	}
	if (!val) {
		if (s == SEEN_VALUE)
			fmt_version_value(buf, n, ns, key, ver);
		else
			snprintf(buf, n, "garbage (bytes not kept)");
		return;
	}
	describe(d, sizeof(d), s, ver);
	off = snprintf(buf, n, "%s: ", d);
	if (off > 0 && (size_t)off < n)
		fmt_bytes(buf + off, n - (size_t)off, val, vlen);
}

/* Counts a mismatch and prints it (with the detail lines, each already
 * formatted) unless --max-reports of them have been printed. */
__attribute__((format(printf, 4, 5))) static void mismatch(const char *what, uint32_t ns,
                                                           uint32_t key, const char *fmt, ...)
{
	atomic_fetch_add(&mismatches, 1);
	pthread_mutex_lock(&report_mu);
	uint64_t n = atomic_load(&reported);
	if (cfg.max_reports && n >= cfg.max_reports) {
		pthread_mutex_unlock(&report_mu);
		return;
	}
	va_list ap;
	fprintf(stderr, "MISMATCH (%s) ns=%u (id %#" PRIx64 ") key=k%08u: ", what, ns, ns_id(ns),
	        key);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	atomic_store(&reported, n + 1);
	if (cfg.max_reports && n + 1 == cfg.max_reports)
		fprintf(stderr,
		        "(--max-reports=%u reached: further mismatches counted, not "
		        "printed)\n",
		        cfg.max_reports);
	pthread_mutex_unlock(&report_mu);
}

static void fail_call(const char *call, int rc)
{
	atomic_fetch_add(&errors, 1);
	pthread_mutex_lock(&report_mu);
	fprintf(stderr, "ERROR: %s: %s: %s\n", call, cesium_strerror(rc), cesium_errmsg());
	pthread_mutex_unlock(&report_mu);
	atomic_store(&stop, true);
}

/*
 * A concurrent read saw `s` (version `v`) for a key whose slot was `before`
 * just before the read and `after` just after it. The key could hold any
 * version from the committed one of `before` to the newest one of `after`;
 * versions strictly between those two ends are unknown, and any of them may
 * have been a delete.
 */
static bool read_ok(uint64_t before, uint64_t after, enum seen s, uint32_t v)
{
	uint32_t lo = slot_committed(before);
	uint32_t hi = slot_pending(after) ? slot_pending(after) : slot_committed(after);
	if (s == SEEN_GARBAGE)
		return false;
	if (s == SEEN_ABSENT)
		return ver_absent(lo) || ver_absent(hi) || ver_counter(hi) > ver_counter(lo) + 1 ||
		       (slot_pending(before) && ver_absent(slot_pending(before)));
	if (ver_counter(v) == ver_counter(lo))
		return v == lo;
	if (ver_counter(v) == ver_counter(hi))
		return v == hi;
	return ver_counter(v) > ver_counter(lo) && ver_counter(v) < ver_counter(hi);
}

/* val/vlen: the bytes the read returned (NULL when absent). */
static void report_read(const char *what, uint32_t ns, uint32_t key, uint64_t before,
                        uint64_t after, enum seen s, uint32_t v, const void *val, size_t vlen)
{
	char a[32], b[32], c[32], d[32], eb[160], ec[160], act[160];
	uint32_t lo = slot_committed(before);
	uint32_t hi = slot_pending(after) ? slot_pending(after) : slot_committed(after);
	describe(a, sizeof(a), s, v);
	describe_ver(b, sizeof(b), lo);
	describe_ver(c, sizeof(c), hi);
	describe_ver(d, sizeof(d), slot_pending(before));
	fmt_version_value(eb, sizeof(eb), ns, key, lo);
	fmt_version_value(ec, sizeof(ec), ns, key, hi);
	fmt_seen(act, sizeof(act), ns, key, s, v, val, vlen);
	mismatch(what, ns, key,
	         "expected %s..%s (pending before: %s), actual %s\n"
	         "  expected value %s%s%s\n"
	         "  actual value   %s",
	         b, c, slot_pending(before) ? d : "none", a, eb,
	         lo != hi ? "\n    .. up to    " : "", lo != hi ? ec : "", act);
}

/* ---- writer side ---- */

struct worker {
	unsigned id;
	uint64_t rng;
	uint64_t writes;
	uint64_t ops;
	uint64_t nops[OP_COUNT]; /* per op kind, this run */
	pthread_t tid;
	cesium_batch *batch;
};

static uint32_t pick_own_key(struct worker *w)
{
	uint32_t per = (hdr->nkeys - w->id + cfg.threads - 1) / cfg.threads;
	uint32_t i = (uint32_t)(rnd(&w->rng) % per);
	return i * cfg.threads + w->id;
}

/*
 * One write of n keys (n == 1 and !force_batch: a plain put or delete).
 * Arms the thread's record and the pending versions, writes, and commits.
 */
static void do_write(struct worker *w, unsigned n, bool force_batch, bool del_only)
{
	struct rec *r = &hdr->recs[w->id];
	uint32_t ns[MAX_BATCH], key[MAX_BATCH], ver[MAX_BATCH];
	uint8_t val[MAX_VAL];
	char kbuf[KEY_LEN];
	unsigned m = 0;
	int rc = 0;

	while (m < n) {
		uint32_t a = (uint32_t)(rnd(&w->rng) % hdr->nns), k = pick_own_key(w);
		bool dup = false;
		for (unsigned i = 0; i < m; i++)
			dup |= ns[i] == a && key[i] == k;
		if (dup)
			continue;
		uint64_t s = atomic_load_explicit(slot_of(a, k), memory_order_relaxed);
		uint32_t newest = slot_pending(s) ? slot_pending(s) : slot_committed(s);
		bool del = del_only || (force_batch && rnd(&w->rng) % 5 == 0);
		ns[m] = a;
		key[m] = k;
		ver[m] = ((ver_counter(newest) + 1) << 1) | (del ? 1u : 0u);
		m++;
	}

	/* Record first, then pending slots: verify treats a record key whose
	 * slot is not pending yet as "write not issued". */
	r->n = n;
	memcpy(r->ns, ns, sizeof(ns[0]) * n);
	memcpy(r->key, key, sizeof(key[0]) * n);
	memcpy(r->ver, ver, sizeof(ver[0]) * n);
	atomic_store_explicit(&r->state, REC_ISSUED, memory_order_seq_cst);
	for (unsigned i = 0; i < n; i++) {
		_Atomic uint64_t *sl = slot_of(ns[i], key[i]);
		uint64_t s = atomic_load_explicit(sl, memory_order_relaxed);
		atomic_store_explicit(sl, make_slot(slot_committed(s), ver[i]),
		                      memory_order_seq_cst);
	}

	w->writes++;
	unsigned flags = cfg.sync_every && w->writes % cfg.sync_every == 0 ? CESIUM_WRITE_SYNC : 0;
	if (n == 1 && !force_batch && !flags) {
		make_key(kbuf, key[0]);
		if (ver[0] & 1u) {
			rc = cesium_delete_ns(db, ns_id(ns[0]), kbuf, KEY_LEN);
			if (rc)
				fail_call("cesium_delete_ns", rc);
		} else {
			size_t vlen = make_value(val, ns[0], key[0], ver[0]);
			rc = cesium_put_ns(db, ns_id(ns[0]), kbuf, KEY_LEN, val, vlen);
			if (rc)
				fail_call("cesium_put_ns", rc);
		}
	} else {
		cesium_batch_clear(w->batch);
		for (unsigned i = 0; i < n && rc == 0; i++) {
			make_key(kbuf, key[i]);
			if (ver[i] & 1u) {
				rc = cesium_batch_delete(w->batch, ns_id(ns[i]), kbuf, KEY_LEN);
			} else {
				size_t vlen = make_value(val, ns[i], key[i], ver[i]);
				rc = cesium_batch_put(w->batch, ns_id(ns[i]), kbuf, KEY_LEN, val,
				                      vlen);
			}
		}
		if (rc)
			fail_call("cesium_batch_put/delete", rc);
		else if ((rc = cesium_write(db, w->batch, flags)) != 0)
			fail_call("cesium_write", rc);
	}
	if (rc)
		return; /* leave it pending: verify resolves it */

	atomic_store_explicit(&r->state, REC_ACKED, memory_order_seq_cst);
	for (unsigned i = 0; i < n; i++)
		atomic_store_explicit(slot_of(ns[i], key[i]), make_slot(ver[i], 0),
		                      memory_order_seq_cst);
	atomic_store_explicit(&r->state, REC_IDLE, memory_order_seq_cst);
}

/* ---- reader side ---- */

static void do_get(struct worker *w)
{
	uint32_t a = (uint32_t)(rnd(&w->rng) % hdr->nns);
	uint32_t k = (uint32_t)(rnd(&w->rng) % hdr->nkeys);
	char kbuf[KEY_LEN];
	void *val = NULL;
	size_t vlen = 0;
	uint32_t v = 0;
	enum seen s;

	make_key(kbuf, k);
	uint64_t before = atomic_load_explicit(slot_of(a, k), memory_order_seq_cst);
	int rc = cesium_get_ns(db, ns_id(a), kbuf, KEY_LEN, &val, &vlen);
	uint64_t after = atomic_load_explicit(slot_of(a, k), memory_order_seq_cst);
	if (rc == CESIUM_ENOTFOUND) {
		s = SEEN_ABSENT;
	} else if (rc) {
		fail_call("cesium_get_ns", rc);
		return;
	} else {
		s = decode_value(a, k, val, vlen, &v);
	}
	if (!read_ok(before, after, s, v))
		report_read("get", a, k, before, after, s, v, rc ? NULL : val, vlen);
	if (!rc)
		cesium_free(val);
}

/* 1..MAX_MGET random keys of one namespace (repeats allowed: the API must
 * answer each position) in one cesium_multi_get, each result checked as a
 * get would be. */
static void do_mget(struct worker *w)
{
	uint32_t a = (uint32_t)(rnd(&w->rng) % hdr->nns);
	size_t n = 1 + (size_t)(rnd(&w->rng) % MAX_MGET);
	char kbuf[MAX_MGET][KEY_LEN];
	const void *keys[MAX_MGET];
	size_t klens[MAX_MGET], vlens[MAX_MGET];
	void *vals[MAX_MGET];
	int st[MAX_MGET];
	uint32_t key[MAX_MGET];
	uint64_t before[MAX_MGET];

	for (size_t i = 0; i < n; i++) {
		key[i] = (uint32_t)(rnd(&w->rng) % hdr->nkeys);
		make_key(kbuf[i], key[i]);
		keys[i] = kbuf[i];
		klens[i] = KEY_LEN;
		vals[i] = NULL;
		vlens[i] = 0;
		st[i] = 0;
	}
	for (size_t i = 0; i < n; i++)
		before[i] = atomic_load_explicit(slot_of(a, key[i]), memory_order_seq_cst);
	int rc = cesium_multi_get(db, ns_id(a), n, keys, klens, vals, vlens, st);
	for (size_t i = 0; i < n; i++) {
		uint64_t after = atomic_load_explicit(slot_of(a, key[i]), memory_order_seq_cst);
		enum seen s = SEEN_ABSENT;
		uint32_t v = 0;
		if (st[i] == 0 && !vals[i]) {
			mismatch("mget", a, key[i], "status 0 at position %zu of %zu but no value",
			         i, n);
			continue;
		}
		if (st[i] != 0 && st[i] != CESIUM_ENOTFOUND) {
			if (!rc)
				rc = st[i];
			continue;
		}
		if (st[i] == 0)
			s = decode_value(a, key[i], vals[i], vlens[i], &v);
		if (!read_ok(before[i], after, s, v))
			report_read("mget", a, key[i], before[i], after, s, v, vals[i], vlens[i]);
	}
	for (size_t i = 0; i < n; i++)
		cesium_free(vals[i]);
	if (rc)
		fail_call("cesium_multi_get", rc);
}

/* Seek to a random key, iterate up to an upper bound ITER_SPAN keys later,
 * and check order, every key and value seen, and that every key skipped
 * could have been absent at the iterator's snapshot. */
static void do_iter(struct worker *w)
{
	uint32_t a = (uint32_t)(rnd(&w->rng) % hdr->nns);
	uint32_t start = (uint32_t)(rnd(&w->rng) % hdr->nkeys);
	uint32_t end = start + ITER_SPAN < hdr->nkeys ? start + ITER_SPAN : hdr->nkeys;
	uint64_t before[ITER_SPAN];
	char kbuf[KEY_LEN], ebuf[KEY_LEN];
	cesium_iter *it = NULL;
	uint32_t next = start; /* first key not yet accounted for */
	int rc;

	for (uint32_t k = start; k < end; k++)
		before[k - start] = atomic_load_explicit(slot_of(a, k), memory_order_seq_cst);
	rc = cesium_iter_new(db, ns_id(a), &it);
	if (rc) {
		fail_call("cesium_iter_new", rc);
		return;
	}
	if (end < hdr->nkeys) {
		make_key(ebuf, end);
		rc = cesium_iter_set_upper_bound(it, ebuf, KEY_LEN);
		if (rc) {
			fail_call("cesium_iter_set_upper_bound", rc);
			goto out;
		}
	}
	make_key(kbuf, start);
	if (rnd(&w->rng) % 16 == 0 && start == 0)
		cesium_iter_seek_first(it);
	else
		cesium_iter_seek(it, kbuf, KEY_LEN);
	for (; cesium_iter_valid(it); cesium_iter_next(it)) {
		size_t klen, vlen;
		const void *kp = cesium_iter_key(it, &klen);
		const void *vp = cesium_iter_value(it, &vlen);
		uint32_t k, v = 0;
		if (!parse_key(kp, klen, &k) || k < next || k >= end) {
			char kb[160];
			fmt_bytes(kb, sizeof(kb), kp, klen);
			mismatch("iter-order", a, next, "unexpected key %s (range k%08u..k%08u)",
			         kb, next, end);
			goto out;
		}
		for (; next < k; next++) {
			uint64_t after =
			    atomic_load_explicit(slot_of(a, next), memory_order_seq_cst);
			if (!read_ok(before[next - start], after, SEEN_ABSENT, 0))
				report_read("iter-skip", a, next, before[next - start], after,
				            SEEN_ABSENT, 0, NULL, 0);
		}
		enum seen s = decode_value(a, k, vp, vlen, &v);
		uint64_t after = atomic_load_explicit(slot_of(a, k), memory_order_seq_cst);
		if (!read_ok(before[k - start], after, s, v))
			report_read("iter", a, k, before[k - start], after, s, v, vp, vlen);
		next = k + 1;
	}
	rc = cesium_iter_status(it);
	if (rc) {
		fail_call("cesium_iter_status", rc);
		goto out;
	}
	for (; next < end; next++) {
		uint64_t after = atomic_load_explicit(slot_of(a, next), memory_order_seq_cst);
		if (!read_ok(before[next - start], after, SEEN_ABSENT, 0))
			report_read("iter-skip", a, next, before[next - start], after, SEEN_ABSENT,
			            0, NULL, 0);
	}
out:
	cesium_iter_free(it);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct rec *r = &hdr->recs[w->id];
	unsigned wsum = 0;
	int rc;

	for (unsigned i = 0; i < OP_COUNT; i++)
		wsum += cfg.w[i];

	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		if (cfg.ops) {
			uint64_t n = atomic_fetch_add_explicit(&total_ops, 1, memory_order_relaxed);
			if (n >= cfg.ops)
				break;
		} else {
			atomic_fetch_add_explicit(&total_ops, 1, memory_order_relaxed);
		}
		unsigned x = (unsigned)(rnd(&w->rng) % wsum);
		enum op op = OP_PUT;
		while (x >= cfg.w[op])
			x -= cfg.w[op++];
		switch (op) {
		case OP_PUT:
			do_write(w, 1, false, false);
			break;
		case OP_DEL:
			do_write(w, 1, false, true);
			break;
		case OP_BATCH: {
			unsigned n = 2 + (unsigned)(rnd(&w->rng) % (MAX_BATCH - 1));
			uint32_t per =
			    (hdr->nkeys - w->id + cfg.threads - 1) / cfg.threads * hdr->nns;
			if (n > per)
				n = per;
			do_write(w, n, true, false);
			break;
		}
		case OP_GET:
			do_get(w);
			break;
		case OP_MGET:
			do_mget(w);
			break;
		case OP_ITER:
			do_iter(w);
			break;
		case OP_FLUSH:
			if ((rc = cesium_flush(db)) != 0)
				fail_call("cesium_flush", rc);
			break;
		case OP_COMPACT:
		case OP_COUNT:
			if ((rc = cesium_compact(db)) != 0)
				fail_call("cesium_compact", rc);
			break;
		}
		w->nops[op]++;
		w->ops++;
		atomic_store_explicit(&r->ops,
		                      atomic_load_explicit(&r->ops, memory_order_relaxed) + 1,
		                      memory_order_relaxed);
	}
	return NULL;
}

/* ---- oracle file ---- */

/*
 * A file whose set-up a kill interrupted: oracle_open stores the magic last,
 * after the shape fields, and nothing else before it, so such a file has no
 * magic and is zero everywhere but the shape fields (ftruncate zero-fills).
 * Returns 1 when it is one, 0 when not, -1 on a read error (errno set).
 */
static int oracle_never_set_up(int fd, off_t size)
{
	uint8_t buf[65536];
	size_t lo = offsetof(struct oracle_hdr, format), hi = offsetof(struct oracle_hdr, pad);
	off_t off = 0;

	while (off < size) {
		ssize_t n = pread(fd, buf, sizeof(buf), off);
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		for (ssize_t i = 0; i < n; i++) {
			size_t at = (size_t)off + (size_t)i;
			if (buf[i] && (at < lo || at >= hi))
				return 0;
		}
		off += n;
	}
	return 1;
}

/*
 * Opens PATH.oracle: a valid one is continued; a missing, empty or
 * never-set-up one (see oracle_never_set_up) starts fresh with the shape of
 * --ns and --keys. With --verify-only the file must exist and is not
 * modified when fresh: it is then verified from an anonymous all-absent
 * mapping. Sets *fresh.
 */
static int oracle_open(bool *fresh)
{
	char path[PATH_MAX];
	struct oracle_hdr h;
	struct stat st;
	size_t size;
	void *m;
	int fd, rc = -1;

	*fresh = false;
	snprintf(path, sizeof(path), "%s.oracle", cfg.db);
	fd = open(path, cfg.verify_only ? O_RDWR : O_RDWR | O_CREAT, 0644);
	if (fd < 0) {
		if (cfg.verify_only && errno == ENOENT)
			fprintf(stderr,
			        "cesium-stress: --verify-only: no oracle at %s: nothing to verify "
			        "against (a run without --verify-only creates it)\n",
			        path);
		else
			fprintf(stderr, "cesium-stress: open %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0) {
		fprintf(stderr, "cesium-stress: fstat %s: %s\n", path, strerror(errno));
		goto out;
	}
	memset(&h, 0, sizeof(h));
	if ((size_t)st.st_size >= sizeof(h) && pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h)) {
		fprintf(stderr, "cesium-stress: read %s: %s\n", path,
		        errno ? strerror(errno) : "short read");
		goto out;
	}
	if (h.magic == ORACLE_MAGIC) {
		if (h.format != ORACLE_FORMAT || h.nns == 0 || h.nns > MAX_NS || h.nkeys == 0 ||
		    h.nkeys > MAX_KEYS ||
		    (size_t)st.st_size != sizeof(h) + (size_t)h.nns * h.nkeys * 8) {
			fprintf(stderr,
			        "cesium-stress: %s is not a valid oracle file (format %u, ns %u, "
			        "keys %u, %lld bytes)\n",
			        path, h.format, h.nns, h.nkeys, (long long)st.st_size);
			goto out;
		}
		if (cfg.shape_given && (h.nns != cfg.nns || h.nkeys != cfg.keys))
			fprintf(stderr, "cesium-stress: continuing oracle with --ns=%u --keys=%u\n",
			        h.nns, h.nkeys);
		cfg.nns = h.nns;
		cfg.keys = h.nkeys;
	} else {
		int z = oracle_never_set_up(fd, st.st_size);
		if (z < 0) {
			fprintf(stderr, "cesium-stress: read %s: %s\n", path, strerror(errno));
			goto out;
		}
		if (z == 0) {
			fprintf(stderr,
			        "cesium-stress: %s is not a valid oracle file (no magic, and not "
			        "an interrupted set-up: it holds data)\n",
			        path);
			goto out;
		}
		*fresh = true;
		if (st.st_size)
			fprintf(stderr,
			        "cesium-stress: %s: set-up was interrupted before it finished; "
			        "treating it as a fresh oracle\n",
			        path);
	}
	size = sizeof(struct oracle_hdr) + (size_t)cfg.nns * cfg.keys * 8;
	if (*fresh && cfg.verify_only) {
		m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	} else {
		/* A fresh file is all zero (or shape fields only): truncating to 0
		 * first clears those too. */
		if (*fresh && (ftruncate(fd, 0) != 0 || ftruncate(fd, (off_t)size) != 0)) {
			fprintf(stderr, "cesium-stress: ftruncate %s: %s\n", path, strerror(errno));
			goto out;
		}
		m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	}
	if (m == MAP_FAILED) {
		fprintf(stderr, "cesium-stress: mmap %s: %s\n", path, strerror(errno));
		goto out;
	}
	hdr = m;
	slots = (_Atomic uint64_t *)(void *)((char *)m + sizeof(struct oracle_hdr));
	if (*fresh) {
		hdr->nns = cfg.nns;
		hdr->nkeys = cfg.keys;
		hdr->format = ORACLE_FORMAT;
		/* The magic last: a kill before it leaves a file that
		 * oracle_never_set_up recognises. */
		atomic_thread_fence(memory_order_seq_cst);
		hdr->magic = ORACLE_MAGIC;
	}
	rc = 0;
out:
	close(fd);
	return rc;
}

/* True when the oracle records no write at all (nothing issued, ever). */
static bool oracle_empty(void)
{
	for (unsigned i = 0; i < MAX_THREADS; i++)
		if (atomic_load(&hdr->recs[i].state) != REC_IDLE)
			return false;
	for (size_t i = 0; i < (size_t)hdr->nns * hdr->nkeys; i++)
		if (atomic_load_explicit(&slots[i], memory_order_relaxed))
			return false;
	return true;
}

static uint64_t oracle_total_ops(void)
{
	uint64_t t = 0;
	for (unsigned i = 0; i < MAX_THREADS; i++)
		t += atomic_load(&hdr->recs[i].ops);
	return t;
}

static bool oracle_unsettled(void)
{
	for (unsigned i = 0; i < MAX_THREADS; i++)
		if (atomic_load(&hdr->recs[i].state) != REC_IDLE)
			return true;
	for (size_t i = 0; i < (size_t)hdr->nns * hdr->nkeys; i++)
		if (slot_pending(atomic_load_explicit(&slots[i], memory_order_relaxed)))
			return true;
	return false;
}

/* ---- verification (no concurrent writers) ---- */

struct seen_state {
	uint8_t s;    /* enum seen */
	uint32_t ver; /* for SEEN_VALUE */
};

static bool seen_is(const struct seen_state *o, uint32_t v)
{
	if (o->s == SEEN_ABSENT)
		return ver_absent(v);
	return o->s == SEEN_VALUE && o->ver == v;
}

/* Checks every key with a get and every namespace with a full scan, then
 * the atomicity of every interrupted batch; on success resolves pending
 * versions to what the database holds. Returns the number of mismatches. */
static uint64_t verify_all(void)
{
	size_t total = (size_t)hdr->nns * hdr->nkeys;
	struct seen_state *obs = calloc(total, sizeof(*obs));
	uint64_t before = atomic_load(&mismatches);
	char kbuf[KEY_LEN], b1[32], b2[32], b3[32], e1[160], e2[160], act[160];
	int rc;

	if (!obs) {
		fprintf(stderr, "cesium-stress: out of memory\n");
		atomic_fetch_add(&errors, 1);
		return 1;
	}
	for (uint32_t a = 0; a < hdr->nns; a++) {
		for (uint32_t k = 0; k < hdr->nkeys; k++) {
			struct seen_state *o = &obs[(size_t)a * hdr->nkeys + k];
			uint64_t s = atomic_load(slot_of(a, k));
			void *val = NULL;
			size_t vlen = 0;
			make_key(kbuf, k);
			rc = cesium_get_ns(db, ns_id(a), kbuf, KEY_LEN, &val, &vlen);
			if (rc == CESIUM_ENOTFOUND) {
				o->s = SEEN_ABSENT;
			} else if (rc) {
				fail_call("cesium_get_ns", rc);
				goto out;
			} else {
				o->s = (uint8_t)decode_value(a, k, val, vlen, &o->ver);
			}
			if (!seen_is(o, slot_committed(s)) &&
			    !(slot_pending(s) && seen_is(o, slot_pending(s)))) {
				describe(b1, sizeof(b1), o->s, o->ver);
				describe_ver(b2, sizeof(b2), slot_committed(s));
				describe_ver(b3, sizeof(b3), slot_pending(s));
				fmt_version_value(e1, sizeof(e1), a, k, slot_committed(s));
				fmt_version_value(e2, sizeof(e2), a, k, slot_pending(s));
				fmt_seen(act, sizeof(act), a, k, o->s, o->ver, val, vlen);
				mismatch("verify-get", a, k,
				         "expected %s%s%s, actual %s\n"
				         "  expected value %s%s%s\n"
				         "  actual value   %s",
				         b2, slot_pending(s) ? " or pending " : "",
				         slot_pending(s) ? b3 : "", b1, e1,
				         slot_pending(s) ? "\n    or pending   " : "",
				         slot_pending(s) ? e2 : "", act);
			}
			cesium_free(val);
		}
		/* A full scan must agree with the gets key by key. */
		cesium_iter *it = NULL;
		uint32_t next = 0;
		if ((rc = cesium_iter_new(db, ns_id(a), &it)) != 0) {
			fail_call("cesium_iter_new", rc);
			goto out;
		}
		for (cesium_iter_seek_first(it); cesium_iter_valid(it); cesium_iter_next(it)) {
			size_t klen, vlen;
			const void *kp = cesium_iter_key(it, &klen);
			const void *vp = cesium_iter_value(it, &vlen);
			uint32_t k, v = 0;
			if (!parse_key(kp, klen, &k) || k < next || k >= hdr->nkeys) {
				fmt_bytes(act, sizeof(act), kp, klen);
				mismatch("verify-scan-order", a, next,
				         "unexpected key %s after k%08u", act, next);
				break;
			}
			for (; next < k; next++)
				if (obs[(size_t)a * hdr->nkeys + next].s != SEEN_ABSENT)
					mismatch("verify-scan", a, next,
					         "get found it, scan skipped it");
			const struct seen_state *o = &obs[(size_t)a * hdr->nkeys + k];
			enum seen s = decode_value(a, k, vp, vlen, &v);
			if (s != o->s || (s == SEEN_VALUE && v != o->ver)) {
				describe(b1, sizeof(b1), s, v);
				describe(b2, sizeof(b2), (enum seen)o->s, o->ver);
				fmt_seen(e1, sizeof(e1), a, k, (enum seen)o->s, o->ver, NULL, 0);
				fmt_seen(act, sizeof(act), a, k, s, v, vp, vlen);
				mismatch("verify-scan", a, k,
				         "get saw %s, scan saw %s\n"
				         "  get value  %s\n"
				         "  scan value %s",
				         b2, b1, e1, act);
			}
			next = k + 1;
		}
		rc = cesium_iter_status(it);
		cesium_iter_free(it);
		if (rc) {
			fail_call("cesium_iter_status", rc);
			goto out;
		}
		for (; next < hdr->nkeys; next++)
			if (obs[(size_t)a * hdr->nkeys + next].s != SEEN_ABSENT)
				mismatch("verify-scan", a, next, "get found it, scan skipped it");
	}

	/* Interrupted writes: an acknowledged one must be whole; an issued one
	 * must be whole or absent. A key whose slot is not (yet) pending with
	 * the record's version was not part of an issued write. */
	for (unsigned t = 0; t < MAX_THREADS; t++) {
		struct rec *r = &hdr->recs[t];
		uint32_t st = atomic_load(&r->state);
		unsigned nnew = 0, nold = 0, n = r->n < MAX_BATCH ? r->n : MAX_BATCH;
		bool armed = true;
		if (st == REC_IDLE)
			continue;
		for (unsigned i = 0; i < n; i++) {
			if (r->ns[i] >= hdr->nns || r->key[i] >= hdr->nkeys)
				continue;
			uint64_t s = atomic_load(slot_of(r->ns[i], r->key[i]));
			const struct seen_state *o =
			    &obs[(size_t)r->ns[i] * hdr->nkeys + r->key[i]];
			bool is_new = seen_is(o, r->ver[i]);
			bool is_old =
			    seen_is(o, slot_committed(s)) && slot_committed(s) != r->ver[i];
			if (slot_pending(s) != r->ver[i] && slot_committed(s) != r->ver[i])
				armed = false;
			if (is_new && !is_old)
				nnew++;
			else if (is_old && !is_new)
				nold++;
		}
		if ((st == REC_ACKED && nold) || (st == REC_ISSUED && nnew && nold) ||
		    (st == REC_ISSUED && !armed && nnew)) {
			for (unsigned i = 0; i < n; i++) {
				if (r->ns[i] >= hdr->nns || r->key[i] >= hdr->nkeys)
					continue;
				const struct seen_state *o =
				    &obs[(size_t)r->ns[i] * hdr->nkeys + r->key[i]];
				describe(b1, sizeof(b1), (enum seen)o->s, o->ver);
				describe_ver(b2, sizeof(b2), r->ver[i]);
				fmt_version_value(e1, sizeof(e1), r->ns[i], r->key[i], r->ver[i]);
				fmt_seen(act, sizeof(act), r->ns[i], r->key[i], (enum seen)o->s,
				         o->ver, NULL, 0);
				mismatch(st == REC_ACKED ? "verify-acked-batch"
				                         : "verify-batch-atomicity",
				         r->ns[i], r->key[i],
				         "thread %u write of %u keys (%s): expected %s, actual %s\n"
				         "  expected value %s\n"
				         "  actual value   %s",
				         t, n, st == REC_ACKED ? "acknowledged" : "in flight", b2,
				         b1, e1, act);
			}
		}
	}

	if (atomic_load(&mismatches) == before) {
		/* Resolve pending versions to what the database holds. */
		for (size_t i = 0; i < total; i++) {
			uint64_t s = atomic_load_explicit(&slots[i], memory_order_relaxed);
			if (!slot_pending(s))
				continue;
			uint32_t v =
			    seen_is(&obs[i], slot_pending(s)) ? slot_pending(s) : slot_committed(s);
			atomic_store(&slots[i], make_slot(v, 0));
		}
		for (unsigned t = 0; t < MAX_THREADS; t++)
			atomic_store(&hdr->recs[t].state, REC_IDLE);
	}
out:
	free(obs);
	return atomic_load(&mismatches) - before;
}

/* ---- driver ---- */

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: cesium-stress --db=PATH [options]\n"
	    "  --duration=SECONDS   run time (default 10 unless --ops is given)\n"
	    "  --ops=N              total operations instead of a duration\n"
	    "  --threads=N          worker threads (default 4, max %u)\n"
	    "  --seed=N             random seed (default: from the clock; printed)\n"
	    "  --keys=N             keys per namespace (default 10000; fixed by the oracle)\n"
	    "  --ns=N               namespaces (default 4; fixed by the oracle)\n"
	    "  --put= --delete= --batch= --get= --mget= --iter= --flush= --compact=\n"
	    "                       op-mix weights (default 4000 800 1000 3000 750 1000 3 1);\n"
	    "                       mget: cesium_multi_get of 1..%u keys of one namespace\n"
	    "  --sync-every=N       every Nth write of a thread is CESIUM_WRITE_SYNC (default\n"
	    "                       100; 0: never)\n"
	    "  --opt name=value     engine option (repeatable); defaults: memtable_size=256KiB\n"
	    "                       target_file_size=128KiB max_bytes_for_level_base=1MiB\n"
	    "                       level_size_multiplier=4\n"
	    "  --verify-only        check the whole database against the oracle and exit;\n"
	    "                       PATH.oracle must exist, the database is never created\n"
	    "  --max-reports=N      mismatches printed with key, expected and actual value\n"
	    "                       (default 50; 0: all); the total is always printed\n"
	    "  --quiet              no progress line\n"
	    "The oracle is kept in PATH.oracle. Exit: 0 ok, 1 mismatch or error, 2 usage.\n",
	    MAX_THREADS, MAX_MGET);
}

static bool parse_u64(const char *s, uint64_t *out)
{
	char *end;
	if (!s || !*s || *s == '-')
		return false;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || *end)
		return false;
	*out = v;
	return true;
}

static bool parse_uint(const char *s, unsigned *out, unsigned max)
{
	uint64_t v;
	if (!parse_u64(s, &v) || v > max)
		return false;
	*out = (unsigned)v;
	return true;
}

static int add_opt(char *nv)
{
	char *eq = strchr(nv, '=');
	if (!eq || eq == nv || cfg.nopts >= MAX_OPTS)
		return -1;
	*eq = 0;
	cfg.opt_name[cfg.nopts] = nv;
	cfg.opt_val[cfg.nopts] = eq + 1;
	cfg.nopts++;
	return 0;
}

static int parse_args(int argc, char **argv)
{
	static const struct {
		const char *name;
		unsigned *dst;
		unsigned max;
	} weights[] = {
	    {"--put=", &cfg.w[OP_PUT], 1000000},     {"--delete=", &cfg.w[OP_DEL], 1000000},
	    {"--batch=", &cfg.w[OP_BATCH], 1000000}, {"--get=", &cfg.w[OP_GET], 1000000},
	    {"--mget=", &cfg.w[OP_MGET], 1000000},   {"--iter=", &cfg.w[OP_ITER], 1000000},
	    {"--flush=", &cfg.w[OP_FLUSH], 1000000}, {"--compact=", &cfg.w[OP_COMPACT], 1000000},
	};
	/* mget at a quarter of get: each one reads up to MAX_MGET keys. */
	static const unsigned default_w[OP_COUNT] = {
	    [OP_PUT] = 4000, [OP_DEL] = 800,   [OP_BATCH] = 1000, [OP_GET] = 3000,
	    [OP_MGET] = 750, [OP_ITER] = 1000, [OP_FLUSH] = 3,    [OP_COMPACT] = 1,
	};
	bool have_seed = false;
	unsigned wsum = 0;

	cfg.threads = 4;
	cfg.keys = 10000;
	cfg.nns = 4;
	memcpy(cfg.w, default_w, sizeof(cfg.w));
	cfg.sync_every = 100;
	cfg.max_reports = 50;

	for (int i = 1; i < argc; i++) {
		char *a = argv[i];
		const char *v;
		bool ok = true, matched = false;
#define OPT(name) (strncmp(a, name, strlen(name)) == 0 && (v = a + strlen(name), true))
		for (size_t j = 0; j < sizeof(weights) / sizeof(weights[0]); j++) {
			if (OPT(weights[j].name)) {
				ok = parse_uint(v, weights[j].dst, weights[j].max);
				matched = true;
			}
		}
		if (matched) {
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			exit(0);
		} else if (OPT("--db=")) {
			cfg.db = v;
			ok = *v != 0;
		} else if (OPT("--duration=")) {
			char *end;
			cfg.duration = strtod(v, &end);
			ok = *v && !*end && cfg.duration > 0;
		} else if (OPT("--ops=")) {
			ok = parse_u64(v, &cfg.ops) && cfg.ops > 0;
		} else if (OPT("--threads=")) {
			ok = parse_uint(v, &cfg.threads, MAX_THREADS) && cfg.threads > 0;
		} else if (OPT("--seed=")) {
			ok = parse_u64(v, &cfg.seed);
			have_seed = true;
		} else if (OPT("--keys=")) {
			ok = parse_uint(v, &cfg.keys, MAX_KEYS) && cfg.keys > 0;
			cfg.shape_given = true;
		} else if (OPT("--ns=")) {
			ok = parse_uint(v, &cfg.nns, MAX_NS) && cfg.nns > 0;
			cfg.shape_given = true;
		} else if (OPT("--max-reports=")) {
			ok = parse_uint(v, &cfg.max_reports, UINT_MAX);
		} else if (OPT("--sync-every=")) {
			ok = parse_uint(v, &cfg.sync_every, UINT_MAX);
		} else if (OPT("--opt=")) {
			ok = add_opt(a + strlen("--opt=")) == 0;
		} else if (strcmp(a, "--opt") == 0 && i + 1 < argc) {
			ok = add_opt(argv[++i]) == 0;
		} else if (strcmp(a, "--verify-only") == 0) {
			cfg.verify_only = true;
		} else if (strcmp(a, "--quiet") == 0) {
			cfg.quiet = true;
		} else {
			ok = false;
		}
#undef OPT
		if (!ok) {
			fprintf(stderr, "cesium-stress: bad argument '%s'\n", a);
			return -1;
		}
	}
	if (!cfg.db) {
		fprintf(stderr, "cesium-stress: --db=PATH is required\n");
		return -1;
	}
	for (unsigned i = 0; i < OP_COUNT; i++)
		wsum += cfg.w[i];
	if (wsum == 0) {
		fprintf(stderr, "cesium-stress: every op weight is 0\n");
		return -1;
	}
	if (!cfg.ops && cfg.duration <= 0)
		cfg.duration = 10;
	if (!have_seed) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		cfg.seed =
		    mix64((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid());
	}
	return 0;
}

static int open_db(void)
{
	static const char *const defaults[][2] = {
	    {"memtable_size", "256KiB"},
	    {"target_file_size", "128KiB"},
	    {"max_bytes_for_level_base", "1MiB"},
	    {"level_size_multiplier", "4"},
	    /* The longer values (up to MAX_VAL) stay in their logs when
	     * flushed: crashes and kills then hit kept logs too. */
	    {"log_value_min_size", "512"},
	};
	cesium_options *o = NULL;
	int rc = cesium_options_new(&o);
	if (rc)
		goto out;
	for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]) && !rc; i++)
		if ((rc = cesium_options_set(o, defaults[i][0], defaults[i][1])) != 0)
			fprintf(stderr, "cesium-stress: option %s: %s\n", defaults[i][0],
			        cesium_errmsg());
	for (int i = 0; i < cfg.nopts && !rc; i++)
		if ((rc = cesium_options_set(o, cfg.opt_name[i], cfg.opt_val[i])) != 0)
			fprintf(stderr, "cesium-stress: option %s=%s: %s\n", cfg.opt_name[i],
			        cfg.opt_val[i], cesium_errmsg());
	/* Verifying must not conjure up an empty database where one was lost. */
	if (!rc && cfg.verify_only && (rc = cesium_options_set(o, "create_if_missing", "false")))
		fprintf(stderr, "cesium-stress: option create_if_missing: %s\n", cesium_errmsg());
	if (rc)
		goto out;
	rc = cesium_open(cfg.db, o, &db);
	if (rc)
		fprintf(stderr, "cesium-stress: open %s: %s: %s\n", cfg.db, cesium_strerror(rc),
		        cesium_errmsg());
out:
	cesium_options_free(o);
	return rc;
}

int main(int argc, char **argv)
{
	struct worker *ws = NULL;
	struct stat st;
	bool fresh;
	int ret = 1, rc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (parse_args(argc, argv)) {
		usage(stderr);
		return 2;
	}
	if (oracle_open(&fresh))
		return 1;
	/* A kill before the first run opened the database leaves an oracle
	 * and no database: nothing was written, so nothing can be lost. */
	if (cfg.verify_only && stat(cfg.db, &st) != 0 && errno == ENOENT) {
		if (!oracle_empty()) {
			fprintf(stderr,
			        "cesium-stress: --verify-only: no database at %s, but its oracle "
			        "records writes (%" PRIu64 " operations)\n",
			        cfg.db, oracle_total_ops());
			return 1;
		}
		printf("verify: db=%s ns=%u keys=%u checked=0 mismatches=0 errors=0 "
		       "total_ops=%" PRIu64 " (no database yet; the oracle records no write)\n",
		       cfg.db, hdr->nns, hdr->nkeys, oracle_total_ops());
		return 0;
	}
	if (open_db())
		return 1;

	if (cfg.verify_only || oracle_unsettled()) {
		double t0 = now_sec();
		uint64_t bad = verify_all();
		printf("verify: db=%s ns=%u keys=%u checked=%zu mismatches=%" PRIu64
		       " errors=%" PRIu64 " total_ops=%" PRIu64 " (%.2fs)\n",
		       cfg.db, hdr->nns, hdr->nkeys, (size_t)hdr->nns * hdr->nkeys, bad,
		       atomic_load(&errors), oracle_total_ops(), now_sec() - t0);
		if (bad || atomic_load(&errors))
			goto close;
		atomic_fetch_add(&hdr->verified_runs, 1);
		if (cfg.verify_only) {
			ret = 0;
			goto close;
		}
	}

	if (cfg.threads > hdr->nkeys) {
		fprintf(stderr, "cesium-stress: --threads must not exceed --keys\n");
		goto close;
	}
	printf("stress: db=%s seed=%" PRIu64 " threads=%u ns=%u keys=%u %s%g\n", cfg.db, cfg.seed,
	       cfg.threads, hdr->nns, hdr->nkeys,
	       cfg.ops ? "ops=" : "duration=", cfg.ops ? (double)cfg.ops : cfg.duration);
	atomic_fetch_add(&hdr->runs, 1);
	ws = calloc(cfg.threads, sizeof(*ws));
	if (!ws) {
		fprintf(stderr, "cesium-stress: out of memory\n");
		goto close;
	}
	unsigned started = 0;
	for (unsigned i = 0; i < cfg.threads; i++) {
		ws[i].id = i;
		ws[i].rng = mix64(cfg.seed + i * 0x1234567ull) | 1;
		if ((rc = cesium_batch_new(&ws[i].batch)) != 0) {
			fail_call("cesium_batch_new", rc);
			break;
		}
		if (pthread_create(&ws[i].tid, NULL, worker_main, &ws[i]) != 0) {
			fprintf(stderr, "cesium-stress: pthread_create failed\n");
			atomic_fetch_add(&errors, 1);
			atomic_store(&stop, true);
			cesium_batch_free(ws[i].batch);
			break;
		}
		started++;
	}

	double t0 = now_sec(), last = t0;
	uint64_t last_ops = 0;
	while (!atomic_load(&stop)) {
		usleep(20000);
		double t = now_sec();
		uint64_t ops = atomic_load(&total_ops);
		if (cfg.ops && ops >= cfg.ops)
			break;
		if (!cfg.ops && t - t0 >= cfg.duration)
			break;
		if (!cfg.quiet && t - last >= 1.0) {
			fprintf(stderr,
			        "[%6.1fs] ops=%" PRIu64 " (%.0f/s) mismatches=%" PRIu64 "\n",
			        t - t0, ops, (double)(ops - last_ops) / (t - last),
			        atomic_load(&mismatches));
			last = t;
			last_ops = ops;
		}
	}
	atomic_store(&stop, true);
	uint64_t done = 0, nops[OP_COUNT] = {0};
	for (unsigned i = 0; i < started; i++) {
		pthread_join(ws[i].tid, NULL);
		cesium_batch_free(ws[i].batch);
		done += ws[i].ops;
		for (unsigned j = 0; j < OP_COUNT; j++)
			nops[j] += ws[i].nops[j];
	}
	double el = now_sec() - t0;
	printf("stress: ops by kind:");
	for (unsigned j = 0; j < OP_COUNT; j++)
		printf(" %s=%" PRIu64, op_names[j], nops[j]);
	printf("\n");
	printf("stress: seed=%" PRIu64 " ops=%" PRIu64 " in %.2fs = %.0f ops/s, mismatches=%" PRIu64
	       " errors=%" PRIu64 "\n",
	       cfg.seed, done, el, el > 0 ? (double)done / el : 0.0, atomic_load(&mismatches),
	       atomic_load(&errors));
	if (!atomic_load(&mismatches) && !atomic_load(&errors))
		ret = 0;
close:
	if (atomic_load(&mismatches))
		fprintf(stderr,
		        "cesium-stress: %" PRIu64 " mismatch%s in total, %" PRIu64
		        " printed (--max-reports=%u)\n",
		        atomic_load(&mismatches), atomic_load(&mismatches) == 1 ? "" : "es",
		        atomic_load(&reported), cfg.max_reports);
	rc = cesium_close(db);
	if (rc) {
		fprintf(stderr, "cesium-stress: close: %s: %s\n", cesium_strerror(rc),
		        cesium_errmsg());
		ret = 1;
	}
	free(ws);
	return ret;
}
