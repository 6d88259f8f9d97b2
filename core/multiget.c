#include "multiget.h"

#include "db.h"
#include "file.h"
#include "mem.h"
#include "ring.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef unsigned long long ull;

/* A lookup that must read a block: mg_advance returns it, never a code. */
#define MG_PENDING 1
/* Pages of a block checked with mincore before the block is read through
 * the mapping instead of the ring; longer blocks are always read. */
#define MG_MINCORE_PAGES 16

static _Atomic int mg_policy = MULTIGET_SKIP_RESIDENT;

void multiget_set_policy(enum multiget_policy p)
{
	atomic_store_explicit(&mg_policy, (int)p, memory_order_relaxed);
}

/* ---- the calling thread's ring ---------------------------------------- */

static pthread_key_t mg_ring_key;
static pthread_once_t mg_ring_once = PTHREAD_ONCE_INIT;
static int mg_ring_key_rc;
/* Set once io_ring_init failed on this thread (io_uring disabled, locked
 * memory limit): later batches read synchronously instead of retrying. */
static _Thread_local bool mg_ring_unavailable;

static void mg_ring_destroy(void *p)
{
	io_ring_exit(p);
	mem_free(p);
}

static void mg_ring_key_init(void)
{
	mg_ring_key_rc = pthread_key_create(&mg_ring_key, mg_ring_destroy);
}

/* This thread's ring, created on first use (SINGLE_ISSUER: only this
 * thread submits to it); NULL when none can be had. */
static struct io_ring *mg_ring(void)
{
	pthread_once(&mg_ring_once, mg_ring_key_init);
	if (mg_ring_key_rc || mg_ring_unavailable)
		return NULL;
	struct io_ring *ring = pthread_getspecific(mg_ring_key);
	if (ring)
		return ring;
	ring = mem_zalloc(sizeof(*ring));
	if (!ring)
		return NULL;
	if (io_ring_init(ring, MULTIGET_RING_DEPTH)) {
		mem_free(ring);
		mg_ring_unavailable = true;
		return NULL;
	}
	if (pthread_setspecific(mg_ring_key, ring)) {
		mg_ring_destroy(ring);
		return NULL;
	}
	return ring;
}

/* A ring that failed may still have reads in flight: drop it. */
static void mg_ring_drop(struct io_ring *ring)
{
	pthread_setspecific(mg_ring_key, NULL);
	mg_ring_destroy(ring);
}

/* ---- one batch ---------------------------------------------------------- */

struct mg_key {
	keys_slice nskey;
	int level;        /* level of the candidates in [next, end) */
	size_t next, end; /* files of `level` still to try */
	seg_reader *r;    /* this round's candidate */
	struct seg_block_loc loc;
	size_t read; /* index of its block in mg.reads */
};

struct mg_read {
	struct io_req req;
	seg_reader *r;
	struct seg_block_loc loc;
	const uint8_t *bytes; /* the block: mapped, or buf once read */
	uint8_t *buf;
	int res;   /* ring result: bytes read or -errno */
	bool done; /* res is set */
};

struct mg {
	cesium_db *db;
	uint64_t snap;
	const struct version *v;
	struct mg_key *keys;
	size_t *pending, *next_pending; /* key indices */
	size_t npending, nnext;
	struct mg_read *reads;
	size_t nreads;
	void **vals;
	size_t *vlens;
	int *statuses;
	size_t hits;
	int first;                     /* first error */
	char first_msg[ERROR_MSG_MAX]; /* its message */
};

/* Records key i's final result, turning a tombstone into not-found. */
static void mg_settle(struct mg *m, size_t i, int rc, enum keys_kind kind, void *val, size_t vlen)
{
	if (rc == 0 && kind != KEYS_KIND_VALUE) {
		mem_free(val);
		val = NULL;
		vlen = 0;
		rc = CESIUM_ENOTFOUND;
	}
	m->vals[i] = rc == 0 ? val : NULL;
	m->vlens[i] = rc == 0 ? vlen : 0;
	m->statuses[i] = rc;
	if (rc == 0) {
		m->hits++;
	} else if (rc != CESIUM_ENOTFOUND && !m->first) {
		m->first = rc;
		snprintf(m->first_msg, sizeof(m->first_msg), "%s", cesium_errmsg());
	}
}

/*
 * Moves key i to its next candidate segment, in db_get's order (each
 * tiered level's runs newest first, then one file per leveled level):
 * MG_PENDING with the block to read in k->r and k->loc, or a final result
 * (0 with *kind and *val from a compressed segment read directly,
 * CESIUM_ENOTFOUND when no segment is left, an error).
 */
static int mg_advance(struct mg *m, size_t i, enum keys_kind *kind, void **val, size_t *vlen)
{
	struct mg_key *k = &m->keys[i];
	for (;;) {
		if (k->next >= k->end) {
			if (++k->level >= VERSION_LEVELS)
				return CESIUM_ENOTFOUND;
			k->next = 0;
			k->end = m->v->nfiles[k->level];
			continue;
		}
		/* One run at a time: its only candidate file, if any. */
		size_t run_end;
		size_t idx = version_run_candidate(m->v, k->level, k->next, k->nskey, &run_end);
		k->next = run_end;
		if (idx == run_end)
			continue;
		struct file_meta *f = m->v->files[k->level][idx];
		seg_reader *r;
		int rc = db_file_reader(m->db, f, &r);
		if (rc)
			return rc;
		if (seg_reader_props(r)->compression != SEG_COMPRESSION_NONE) {
			/* Decompressed blocks live in the block cache, which
			 * seg_reader_get consults: take the ordinary path. */
			rc = seg_reader_get(r, k->nskey, m->snap, kind, val, vlen);
		} else {
			rc = seg_reader_locate(r, k->nskey, m->snap, &k->loc);
			if (rc == 0) {
				k->r = r;
				return MG_PENDING;
			}
		}
		if (rc != CESIUM_ENOTFOUND)
			return rc;
	}
}

/* Moves key i on and files it under next round's reads or settles it. */
static void mg_step(struct mg *m, size_t i)
{
	enum keys_kind kind = KEYS_KIND_DELETE;
	void *val = NULL;
	size_t vlen = 0;
	int rc = mg_advance(m, i, &kind, &val, &vlen);
	if (rc == MG_PENDING)
		m->next_pending[m->nnext++] = i;
	else
		mg_settle(m, i, rc, kind, val, vlen);
}

static int mg_cmp_block(const void *a, const void *b, void *ctx)
{
	const struct mg *m = ctx;
	const struct mg_key *x = &m->keys[*(const size_t *)a], *y = &m->keys[*(const size_t *)b];
	if (x->r != y->r)
		return (uintptr_t)x->r < (uintptr_t)y->r ? -1 : 1;
	if (x->loc.off != y->loc.off)
		return x->loc.off < y->loc.off ? -1 : 1;
	return 0;
}

/* One read per distinct block among this round's keys. */
static void mg_plan_reads(struct mg *m)
{
	qsort_r(m->pending, m->npending, sizeof(*m->pending), mg_cmp_block, m);
	m->nreads = 0;
	for (size_t j = 0; j < m->npending; j++) {
		struct mg_key *k = &m->keys[m->pending[j]];
		struct mg_read *prev = m->nreads ? &m->reads[m->nreads - 1] : NULL;
		if (!prev || prev->r != k->r || prev->loc.off != k->loc.off) {
			prev = &m->reads[m->nreads++];
			memset(prev, 0, sizeof(*prev));
			prev->r = k->r;
			prev->loc = k->loc;
		}
		k->read = (size_t)(prev - m->reads);
	}
}

/* Whether every page of the mapped block is in the page cache, so that
 * reading it in place costs no fault to disk. */
static bool mg_resident(const uint8_t *p, size_t len)
{
	long page = sysconf(_SC_PAGESIZE);
	if (page <= 0)
		return false;
	uintptr_t lo = (uintptr_t)p & ~((uintptr_t)page - 1);
	uintptr_t hi = (uintptr_t)p + len;
	size_t pages = (size_t)((hi - lo + (uintptr_t)page - 1) / (uintptr_t)page);
	unsigned char vec[MG_MINCORE_PAGES];
	if (pages > MG_MINCORE_PAGES || mincore((void *)lo, hi - lo, vec))
		return false;
	for (size_t i = 0; i < pages; i++)
		if (!(vec[i] & 1))
			return false;
	return true;
}

static void mg_read_done(struct io_req *req, int res)
{
	struct mg_read *rd = req->ctx;
	rd->res = res;
	rd->done = true;
}

/* The status of a finished read: 0, or an error naming file and offset. */
static int mg_read_status(const struct mg_read *rd)
{
	if (rd->bytes)
		return 0;
	const char *path = seg_reader_path(rd->r);
	if (rd->res < 0)
		return error_set(error_from_errno(rd->res),
		                 "%s: read of %zu bytes at offset %llu: %s", path, rd->loc.len,
		                 (ull)rd->loc.off, strerror(-rd->res));
	if (!rd->buf)
		return error_set(CESIUM_ENOMEM, "%s: out of memory for a block at offset %llu",
		                 path, (ull)rd->loc.off);
	return error_set(CESIUM_ECORRUPT,
	                 "%s: block at offset %llu: file truncated (%d of %zu bytes)", path,
	                 (ull)rd->loc.off, rd->res, rd->loc.len);
}

/*
 * Brings every planned block in: in place when mapped and resident,
 * otherwise into a buffer, all reads in flight together on this thread's
 * ring (at most MULTIGET_RING_DEPTH at a time) or, without a ring, one by
 * one. A failed read leaves its bytes NULL and its cause in res.
 */
static void mg_fetch(struct mg *m)
{
	struct io_ring *ring = NULL;
	size_t nio = 0;
	bool skip_resident =
	    atomic_load_explicit(&mg_policy, memory_order_relaxed) == MULTIGET_SKIP_RESIDENT;
	for (size_t j = 0; j < m->nreads; j++) {
		struct mg_read *rd = &m->reads[j];
		const uint8_t *p = seg_reader_mapped(rd->r, &rd->loc);
		if (p && skip_resident && mg_resident(p, rd->loc.len)) {
			rd->bytes = p;
			continue;
		}
		rd->buf = mem_alloc(rd->loc.len);
		if (!rd->buf) {
			rd->res = 0;
			rd->done = true;
			continue;
		}
		rd->res = -EINPROGRESS;
		nio++;
	}
	if (nio)
		ring = mg_ring();
	for (size_t j = 0; j < m->nreads; j++) {
		struct mg_read *rd = &m->reads[j];
		if (rd->done || rd->bytes)
			continue;
		if (!ring) {
			ssize_t got =
			    io_pread_full(seg_reader_fd(rd->r), rd->buf, rd->loc.len, rd->loc.off);
			rd->res = (int)got; /* at most a block: fits */
			rd->done = true;
			continue;
		}
		while (io_ring_inflight(ring) >= MULTIGET_RING_DEPTH) {
			int p = io_ring_poll(ring, true);
			if (p < 0)
				goto broken;
		}
		rd->req.done = mg_read_done;
		rd->req.ctx = rd;
		io_ring_read(ring, &rd->req, seg_reader_fd(rd->r), rd->buf, rd->loc.len,
		             rd->loc.off);
	}
	while (ring && io_ring_inflight(ring)) {
		int p = io_ring_poll(ring, true);
		if (p < 0)
			goto broken;
	}
	goto settle;
broken:
	/* The kernel may still write into the buffers of reads that never
	 * completed: leak them rather than free memory it may touch. */
	for (size_t j = 0; j < m->nreads; j++) {
		struct mg_read *rd = &m->reads[j];
		if (rd->bytes || rd->done || !rd->buf)
			continue;
		rd->buf = NULL;
		rd->res = -EIO;
		rd->done = true;
	}
	mg_ring_drop(ring);
settle:
	for (size_t j = 0; j < m->nreads; j++) {
		struct mg_read *rd = &m->reads[j];
		if (!rd->bytes && rd->buf && rd->res >= 0 && (size_t)rd->res == rd->loc.len)
			rd->bytes = rd->buf;
	}
}

/* Searches each pending key's block; misses go on to their next candidate. */
static void mg_search(struct mg *m)
{
	m->nnext = 0;
	for (size_t j = 0; j < m->npending; j++) {
		size_t i = m->pending[j];
		struct mg_key *k = &m->keys[i];
		struct mg_read *rd = &m->reads[k->read];
		enum keys_kind kind = KEYS_KIND_DELETE;
		void *val = NULL;
		size_t vlen = 0;
		int rc = mg_read_status(rd);
		if (!rc)
			rc = seg_reader_get_in_block(k->r, &k->loc, rd->bytes, k->nskey, m->snap,
			                             &kind, &val, &vlen);
		if (rc == CESIUM_ENOTFOUND)
			mg_step(m, i);
		else
			mg_settle(m, i, rc, kind, val, vlen);
	}
	for (size_t j = 0; j < m->nreads; j++) {
		mem_free(m->reads[j].buf);
		m->reads[j].buf = NULL;
	}
}

/* Looks every key up in the memtables; the rest start on the segments. */
static void mg_memtables(struct mg *m, const struct db_state *st, size_t n)
{
	m->nnext = 0;
	for (size_t i = 0; i < n; i++) {
		if (m->statuses[i] != MG_PENDING)
			continue;
		struct mg_key *k = &m->keys[i];
		enum keys_kind kind = KEYS_KIND_DELETE;
		keys_slice v;
		int rc = memtable_get(st->active, k->nskey, m->snap, &kind, &v);
		for (size_t s = 0; rc == CESIUM_ENOTFOUND && s < st->nsealed; s++)
			rc = memtable_get(st->sealed[s], k->nskey, m->snap, &kind, &v);
		if (rc == 0 && kind == KEYS_KIND_VALUE) {
			void *val = NULL;
			size_t vlen = 0;
			rc = db_copy_value(v, &val, &vlen);
			mg_settle(m, i, rc, kind, val, vlen);
		} else if (rc == 0) {
			mg_settle(m, i, CESIUM_ENOTFOUND, kind, NULL, 0);
		} else if (rc == CESIUM_ENOTFOUND) {
			k->level = -1;
			k->next = k->end = 0;
			mg_step(m, i);
		} else {
			mg_settle(m, i, rc, kind, NULL, 0);
		}
	}
}

/* Checks the keys and lays out their nskeys in one buffer; a bad key gets
 * its error as its status, the others MG_PENDING. */
static int mg_prepare(struct mg *m, uint64_t ns, size_t n, const void *const *keys,
                      const size_t *klens, uint8_t **nsbuf)
{
	size_t total = 0;
	for (size_t i = 0; i < n; i++) {
		m->vals[i] = NULL;
		m->vlens[i] = 0;
		m->statuses[i] = MG_PENDING;
		int rc = db_check_key(keys[i], klens[i]);
		if (rc) {
			m->statuses[i] = rc;
			if (!m->first) {
				m->first = rc;
				snprintf(m->first_msg, sizeof(m->first_msg), "key %zu: %s", i,
				         cesium_errmsg());
			}
			continue;
		}
		total += klens[i] + KEYS_NS_SIZE;
	}
	uint8_t *p = mem_alloc(total ? total : 1);
	m->keys = mem_zalloc(n * sizeof(*m->keys));
	m->pending = mem_alloc(n * sizeof(*m->pending));
	m->next_pending = mem_alloc(n * sizeof(*m->next_pending));
	m->reads = mem_alloc(n * sizeof(*m->reads));
	*nsbuf = p;
	if (!p || !m->keys || !m->pending || !m->next_pending || !m->reads)
		return error_set(CESIUM_ENOMEM, "multi_get: out of memory for %zu keys", n);
	for (size_t i = 0; i < n; i++) {
		if (m->statuses[i] != MG_PENDING)
			continue;
		keys_make_nskey(p, ns, keys[i], klens[i]);
		m->keys[i].nskey = keys_slice_of(p, klens[i] + KEYS_NS_SIZE);
		p += klens[i] + KEYS_NS_SIZE;
	}
	return 0;
}

int cesium_multi_get(cesium_db *db, uint64_t ns, size_t n, const void *const *keys,
                     const size_t *klens, void **vals, size_t *vlens, int *statuses)
{
	int rc = db_check_open(db);
	if (rc)
		return rc;
	if (n == 0)
		return 0;
	if (!keys || !klens || !vals || !vlens || !statuses)
		return error_set(CESIUM_EINVAL, "multi_get: an array argument is NULL");
	struct mg *m = mem_zalloc(sizeof(*m));
	uint8_t *nsbuf = NULL;
	if (!m) {
		rc = error_set(CESIUM_ENOMEM, "multi_get: out of memory");
		for (size_t i = 0; i < n; i++) {
			vals[i] = NULL;
			vlens[i] = 0;
			statuses[i] = rc;
		}
		return rc;
	}
	m->db = db;
	m->vals = vals;
	m->vlens = vlens;
	m->statuses = statuses;
	rc = mg_prepare(m, ns, n, keys, klens, &nsbuf);
	if (rc) {
		for (size_t i = 0; i < n; i++)
			if (statuses[i] == MG_PENDING)
				statuses[i] = rc;
		goto out;
	}

	/* One snapshot for the whole batch: the sequence first, then the
	 * state, as db_get does, so every write up to snap is in it. A
	 * reference rather than the read epoch holds the state: a batch may
	 * wait on disk, and an epoch held that long would stall every
	 * installer of a new version. */
	m->snap = atomic_load_explicit(&db->visible_seq, memory_order_acquire);
	struct db_state *st = db_state_acquire(db);
	m->v = st->version;
	mg_memtables(m, st, n);
	while (m->nnext) {
		size_t *t = m->pending;
		m->pending = m->next_pending;
		m->next_pending = t;
		m->npending = m->nnext;
		mg_plan_reads(m);
		mg_fetch(m);
		mg_search(m);
	}
	db_state_unref(st);
	atomic_fetch_add_explicit(&db->stats.gets, n, memory_order_relaxed);
	atomic_fetch_add_explicit(&db->stats.get_hits, m->hits, memory_order_relaxed);
	rc = m->first;
	if (rc)
		error_set(rc, "%s", m->first_msg);
out:
	mem_free(nsbuf);
	mem_free(m->keys);
	mem_free(m->pending);
	mem_free(m->next_pending);
	mem_free(m->reads);
	mem_free(m);
	return rc;
}
