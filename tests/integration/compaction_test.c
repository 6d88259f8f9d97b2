/*
 * compaction_test — background compaction end to end: a random workload
 * checked against an in-memory model while the tree reshapes itself,
 * iterators that must keep their snapshot across compactions, tombstones
 * dropped and disk space given back, write stalls that engage and release,
 * and injected write failures in the compactors that must cost nothing.
 *
 * Settings are tiny (64-128 KiB memtables and segments, a 1 MiB first
 * leveled level, x4 per level) so that a few MB reach L3..L5. It links the
 * internal library only for io/fault.h (io_fault_set is not exported);
 * everything else goes through include/cesium.h. Seeds are printed;
 * CESIUM_SEED replays them.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cesium.h"
#include "fault.h"
#include "test_util.h"

/* ---- small helpers ------------------------------------------------------ */

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void check_rc(int rc, const char *what)
{
	if (rc != 0) {
		print_error("%s failed: %s: %s\n", what, cesium_strerror(rc), cesium_errmsg());
		fail();
	}
}

/* Set while compactions are made to fail: a write may then be refused
 * because L0 is full and compaction keeps failing (docs/compaction.md,
 * "Write stalls"); such a write is not applied, and counted. */
static bool stop_failures_allowed;
static unsigned writes_refused;

/* Whether a write succeeded; any other failure fails the test. */
static bool write_applied(int rc, const char *what)
{
	if (rc != 0 && stop_failures_allowed && (rc == CESIUM_EIO || rc == CESIUM_ENOSPC) &&
	    strstr(cesium_errmsg(), "compaction catches up")) {
		writes_refused++;
		return false;
	}
	check_rc(rc, what);
	return true;
}

/* The small shape shared by every test; `extra` (name, value, ..., NULL)
 * comes after it, so it overrides. */
static const char *const small_opts[] = {
    "memtable_size",
    "128KiB",
    "target_file_size",
    "64KiB",
    "max_bytes_for_level_base",
    "1MiB",
    "level_size_multiplier",
    "4",
    "compaction_workers",
    "2",
    "block_size",
    "4KiB",
    NULL,
};

static cesium_db *open_db(const char *dir, const char *const *extra)
{
	cesium_options *o = NULL;
	check_rc(cesium_options_new(&o), "cesium_options_new");
	for (size_t i = 0; small_opts[i]; i += 2)
		check_rc(cesium_options_set(o, small_opts[i], small_opts[i + 1]), small_opts[i]);
	for (size_t i = 0; extra && extra[i]; i += 2)
		check_rc(cesium_options_set(o, extra[i], extra[i + 1]), extra[i]);
	cesium_db *db = NULL;
	check_rc(cesium_open(dir, o, &db), "cesium_open");
	cesium_options_free(o);
	return db;
}

/* One figure of cesium_stats; fails the test when it is missing. */
static uint64_t level_stat(cesium_db *db, const char *what, int level)
{
	char name[48];
	snprintf(name, sizeof(name), "level%d_%s", level, what);
	return stat_of(db, name);
}

/* Waits up to 10 s until no job runs and the scheduler's in-flight set is
 * empty (seen together). A segment left in the set by a finished job never
 * leaves it, so this fails then. */
static bool wait_no_jobs_in_flight(cesium_db *db)
{
	uint64_t deadline = now_ns() + 10000000000ull;
	uint64_t running = 0, inflight = 0;
	while (now_ns() < deadline) {
		running = stat_of(db, "compaction_jobs_running");
		inflight = stat_of(db, "inflight_files");
		if (running == 0 && inflight == 0)
			return true;
		usleep(5000);
	}
	fprintf(stderr, "still %" PRIu64 " jobs running, %" PRIu64 " segments in flight\n", running,
	        inflight);
	return false;
}

static void print_shape(cesium_db *db, const char *when)
{
	fprintf(stderr, "%s: segments per level:", when);
	for (int l = 0; l < 8; l++)
		fprintf(stderr, " %" PRIu64, level_stat(db, "segments", l));
	fprintf(stderr, "; jobs completed %" PRIu64 " failed %" PRIu64 "\n",
	        stat_of(db, "compaction_jobs_completed"), stat_of(db, "compaction_jobs_failed"));
}

/* Files in dir ending in suffix: how many, and (bytes != NULL) their size. */
static int count_files(const char *dir, const char *suffix, uint64_t *bytes)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	int n = 0;
	uint64_t total = 0;
	size_t sl = strlen(suffix);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		size_t l = strlen(e->d_name);
		if (l < sl || strcmp(e->d_name + l - sl, suffix) != 0)
			continue;
		char path[1024];
		struct stat st;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (stat(path, &st) == 0) {
			n++;
			total += (uint64_t)st.st_size;
		}
	}
	closedir(d);
	if (bytes)
		*bytes = total;
	return n;
}

/* Whether the *.seg files on disk are exactly as many as the version
 * lists. Cleanup is asynchronous and a job may finish while we look, so it
 * retries for up to 5 s and only trusts a count taken between two equal
 * readings of the version's count. */
static bool seg_files_match(cesium_db *db, const char *dir)
{
	uint64_t deadline = now_ns() + 5000000000ull;
	uint64_t before, after;
	int n;
	for (;;) {
		before = total_segments(db);
		n = count_files(dir, ".seg", NULL);
		after = total_segments(db);
		if (before == after && (uint64_t)n == after)
			return true;
		if (now_ns() > deadline)
			break;
		usleep(5000);
	}
	print_error("%d *.seg files on disk, but the version lists %" PRIu64 " (then %" PRIu64
	            "); files_pending_deletion %" PRIu64 "\n",
	            n, before, after, stat_of(db, "files_pending_deletion"));
	return false;
}

/* ---- the model ------------------------------------------------------------ */

#define NKEYS 5000
#define NNS 2
#define MAX_VAL 320

static const uint64_t ns_ids[NNS] = {0, 0x5eed0000beefull};

/* ver[ns][k] == 0: absent; otherwise the value is value_of(ns, k, ver). */
struct model {
	uint32_t ver[NNS][NKEYS];
	uint32_t gen;
};

static size_t key_of(unsigned k, char *buf)
{
	/* Fixed width, so byte order is numeric order. */
	return (size_t)snprintf(buf, 16, "key%05u", k);
}

static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* The value a (namespace, key, version) holds; sometimes empty. */
static size_t value_of(unsigned nsi, unsigned k, uint32_t ver, unsigned char *buf)
{
	uint64_t h = mix64(((uint64_t)nsi << 56) ^ ((uint64_t)k << 32) ^ ver);
	size_t len = (h % 23 == 0) ? 0 : (size_t)(h % MAX_VAL);
	for (size_t i = 0; i < len; i += 8) {
		h = mix64(h);
		size_t n = len - i < 8 ? len - i : 8;
		memcpy(buf + i, &h, n);
	}
	return len;
}

/* The newest version handed out so far (for failure reports). */
static uint32_t m_gen_hint;

/* For a failure report: which older version of the key a wrong value is. */
static const char *which_version(unsigned nsi, unsigned k, uint32_t newest, const void *val,
                                 size_t vlen)
{
	static char buf[64];
	unsigned char v[MAX_VAL];
	for (uint32_t ver = newest; ver > 0; ver--) {
		size_t len = value_of(nsi, k, ver, v);
		if (len == vlen && memcmp(v, val, len) == 0) {
			snprintf(buf, sizeof(buf), "a value this key may have had at version %u",
			         ver);
			return buf;
		}
	}
	return "a value this key never had";
}

static void model_get_check(cesium_db *db, const uint32_t *vers, unsigned nsi, unsigned k)
{
	char key[16];
	unsigned char want[MAX_VAL];
	size_t klen = key_of(k, key);
	void *val = NULL;
	size_t vlen = 0;
	int rc = cesium_get_ns(db, ns_ids[nsi], key, klen, &val, &vlen);
	if (vers[k] == 0) {
		if (rc != CESIUM_ENOTFOUND)
			print_error("ns %u %s: expected not found, got %s (%zu bytes: %s)\n", nsi,
			            key, cesium_strerror(rc), vlen,
			            rc == 0 ? which_version(nsi, k, m_gen_hint, val, vlen) : "-");
		if (rc == 0)
			cesium_free(val);
		assert_int_equal(rc, CESIUM_ENOTFOUND);
		return;
	}
	if (rc != 0)
		print_error("ns %u %s (version %u): get failed: %s: %s\n", nsi, key, vers[k],
		            cesium_strerror(rc), cesium_errmsg());
	assert_int_equal(rc, 0);
	size_t wlen = value_of(nsi, k, vers[k], want);
	if (vlen != wlen || memcmp(val, want, wlen) != 0)
		print_error(
		    "ns %u %s: value of version %u expected (%zu bytes), got %zu bytes: %s\n", nsi,
		    key, vers[k], wlen, vlen, which_version(nsi, k, vers[k], val, vlen));
	bool same = vlen == wlen && memcmp(val, want, wlen) == 0;
	cesium_free(val);
	assert_true(same);
}

/* Walks `it` from `from` (a key rank) to its end and compares every entry
 * with vers (the model, or a copy of it taken when the iterator was made). */
static void iter_check_from(cesium_iter *it, const uint32_t *vers, unsigned nsi, unsigned from,
                            const char *what)
{
	unsigned char want[MAX_VAL];
	char key[16];
	size_t n = 0;
	for (unsigned k = from; k < NKEYS; k++) {
		if (vers[k] == 0)
			continue;
		size_t klen = key_of(k, key);
		if (!cesium_iter_valid(it)) {
			print_error("%s: ns %u: iterator ended before %s (status %s)\n", what, nsi,
			            key, cesium_strerror(cesium_iter_status(it)));
			fail();
		}
		size_t gk, gv;
		const void *kp = cesium_iter_key(it, &gk);
		const void *vp = cesium_iter_value(it, &gv);
		if (gk != klen || memcmp(kp, key, klen) != 0) {
			print_error("%s: ns %u: expected key %s, got '%.*s'\n", what, nsi, key,
			            (int)gk, (const char *)kp);
			fail();
		}
		size_t wlen = value_of(nsi, k, vers[k], want);
		if (gv != wlen || memcmp(vp, want, wlen) != 0) {
			print_error("%s: ns %u: key %s: wrong value (%zu bytes, expected %zu of "
			            "version %u)\n",
			            what, nsi, key, gv, wlen, vers[k]);
			fail();
		}
		n++;
		cesium_iter_next(it);
	}
	if (cesium_iter_valid(it)) {
		size_t gk;
		const void *kp = cesium_iter_key(it, &gk);
		print_error("%s: ns %u: extra key '%.*s' after %zu entries\n", what, nsi, (int)gk,
		            (const char *)kp, n);
		fail();
	}
	assert_int_equal(cesium_iter_status(it), 0);
}

static void model_scan_check(cesium_db *db, const uint32_t *vers, unsigned nsi, const char *what)
{
	cesium_iter *it = NULL;
	check_rc(cesium_iter_new(db, ns_ids[nsi], &it), "cesium_iter_new");
	cesium_iter_seek_first(it);
	iter_check_from(it, vers, nsi, 0, what);
	cesium_iter_free(it);
}

static void model_full_check(cesium_db *db, const struct model *m, const char *what)
{
	for (unsigned nsi = 0; nsi < NNS; nsi++) {
		model_scan_check(db, m->ver[nsi], nsi, what);
		for (unsigned k = 0; k < NKEYS; k++)
			model_get_check(db, m->ver[nsi], nsi, k);
	}
}

static void model_put(cesium_db *db, struct model *m, unsigned nsi, unsigned k)
{
	char key[16];
	unsigned char val[MAX_VAL];
	uint32_t ver = ++m->gen;
	m_gen_hint = m->gen;
	size_t klen = key_of(k, key);
	size_t vlen = value_of(nsi, k, ver, val);
	if (write_applied(cesium_put_ns(db, ns_ids[nsi], key, klen, val, vlen), "cesium_put_ns"))
		m->ver[nsi][k] = ver;
}

static void model_delete(cesium_db *db, struct model *m, unsigned nsi, unsigned k)
{
	char key[16];
	size_t klen = key_of(k, key);
	if (write_applied(cesium_delete_ns(db, ns_ids[nsi], key, klen), "cesium_delete_ns"))
		m->ver[nsi][k] = 0;
}

/* A batch of 1..16 puts and deletes (repeats allowed: the last one wins). */
static void model_batch(cesium_db *db, struct model *m, uint64_t *rng, unsigned nkeys)
{
	struct {
		unsigned nsi, k;
		uint32_t ver;
	} ops[16];
	unsigned n = 1 + (unsigned)(test_rand(rng) % 16);
	cesium_batch *b = NULL;
	check_rc(cesium_batch_new(&b), "cesium_batch_new");
	for (unsigned i = 0; i < n; i++) {
		char key[16];
		unsigned char val[MAX_VAL];
		ops[i].nsi = (unsigned)(test_rand(rng) % NNS);
		ops[i].k = (unsigned)(test_rand(rng) % nkeys);
		size_t klen = key_of(ops[i].k, key);
		if (test_rand(rng) % 4 == 0) {
			ops[i].ver = 0;
			check_rc(cesium_batch_delete(b, ns_ids[ops[i].nsi], key, klen),
			         "batch_delete");
		} else {
			ops[i].ver = ++m->gen;
			m_gen_hint = m->gen;
			size_t vlen = value_of(ops[i].nsi, ops[i].k, ops[i].ver, val);
			check_rc(cesium_batch_put(b, ns_ids[ops[i].nsi], key, klen, val, vlen),
			         "batch_put");
		}
	}
	bool applied = write_applied(cesium_write(db, b, 0), "cesium_write");
	cesium_batch_free(b);
	for (unsigned i = 0; applied && i < n; i++)
		m->ver[ops[i].nsi][ops[i].k] = ops[i].ver;
}

/* One random operation over the first nkeys keys: mostly writes. */
static void model_random_op(cesium_db *db, struct model *m, uint64_t *rng, unsigned nkeys,
                            unsigned nns)
{
	unsigned r = (unsigned)(test_rand(rng) % 100);
	unsigned nsi = (unsigned)(test_rand(rng) % nns);
	unsigned k = (unsigned)(test_rand(rng) % nkeys);
	if (r < 55)
		model_put(db, m, nsi, k);
	else if (r < 75)
		model_delete(db, m, nsi, k);
	else if (r < 85)
		model_batch(db, m, rng, nkeys);
	else
		model_get_check(db, m->ver[nsi], nsi, k);
}

/* ---- 1. model under background compaction ------------------------------- */

#define SNAPSHOTS 3

struct snapshot {
	cesium_iter *it;
	unsigned nsi;
	uint32_t *vers;
	uint64_t jobs_at_creation;
};

static void snapshot_check(struct snapshot *s, uint64_t *rng, const char *what)
{
	/* The whole snapshot from the start, then from a random key. */
	cesium_iter_seek_first(s->it);
	iter_check_from(s->it, s->vers, s->nsi, 0, what);
	unsigned from = (unsigned)(test_rand(rng) % NKEYS);
	char key[16];
	size_t klen = key_of(from, key);
	cesium_iter_seek(s->it, key, klen);
	iter_check_from(s->it, s->vers, s->nsi, from, what);
}

/* ~40k random puts, deletes and batches over 5k keys in two namespaces,
 * with compactions running in the background: gets and scans always match
 * the model, three long-lived iterators keep their snapshots, L0 stays
 * bounded, data reaches deeper levels, and a reopen reads the same. */
static void test_background_compaction_matches_model(void **state)
{
	(void)state;
	uint64_t rng = test_seed("background_compaction_matches_model");
	char *dir = test_tmpdir("compaction-model");
	assert_non_null(dir);
	static const char *const extra[] = {"l0_stop_trigger", "12", "max_memtables", "4", NULL};
	const uint64_t l0_stop = 12, max_memtables = 4;
	cesium_db *db = open_db(dir, extra);
	struct model *m = calloc(1, sizeof(*m));
	assert_non_null(m);
	struct snapshot snaps[SNAPSHOTS] = {0};
	const unsigned snap_at[SNAPSHOTS] = {4000, 14000, 26000};
	const unsigned ops = 40000;
	uint64_t max_l0 = 0;
	unsigned nsnaps = 0;

	for (unsigned op = 1; op <= ops; op++) {
		model_random_op(db, m, &rng, NKEYS, NNS);
		if (op % 500 == 0) {
			uint64_t l0 = level_stat(db, "segments", 0);
			if (l0 > max_l0)
				max_l0 = l0;
		}
		if (op % 5000 == 0) {
			char what[64];
			snprintf(what, sizeof(what), "scan after op %u", op);
			for (unsigned nsi = 0; nsi < NNS; nsi++)
				model_scan_check(db, m->ver[nsi], nsi, what);
			for (unsigned i = 0; i < 400; i++) {
				unsigned nsi = (unsigned)(test_rand(&rng) % NNS);
				unsigned k = (unsigned)(test_rand(&rng) % NKEYS);
				model_get_check(db, m->ver[nsi], nsi, k);
			}
		}
		if (nsnaps < SNAPSHOTS && op == snap_at[nsnaps]) {
			struct snapshot *s = &snaps[nsnaps];
			s->nsi = nsnaps % NNS;
			s->vers = malloc(sizeof(m->ver[0]));
			assert_non_null(s->vers);
			memcpy(s->vers, m->ver[s->nsi], sizeof(m->ver[0]));
			s->jobs_at_creation = stat_of(db, "compaction_jobs_completed");
			check_rc(cesium_iter_new(db, ns_ids[s->nsi], &s->it), "cesium_iter_new");
			nsnaps++;
		}
	}
	assert_int_equal(nsnaps, SNAPSHOTS);
	print_shape(db, "after the random phase");
	fprintf(stderr, "most L0 segments seen: %" PRIu64 "\n", max_l0);

	uint64_t jobs = stat_of(db, "compaction_jobs_completed");
	assert_true(jobs > 0);
	assert_int_equal(stat_of(db, "compaction_jobs_failed"), 0);
	uint64_t deep = 0;
	for (int l = 1; l < 8; l++)
		deep += level_stat(db, "segments", l);
	assert_true(deep > 0);
	/* Writers stop at l0_stop_trigger; memtables sealed before the stop
	 * still flush, and the one writer may be past the throttle with one
	 * more seal, so L0 may exceed the trigger by max_memtables + 1. */
	assert_true(max_l0 <= l0_stop + max_memtables + 1);
	assert_true(level_stat(db, "segments", 0) <= l0_stop + max_memtables + 1);
	/* The first iterator has lived through many compactions. */
	assert_true(jobs >= snaps[0].jobs_at_creation + 3);

	for (unsigned i = 0; i < SNAPSHOTS; i++) {
		char what[64];
		snprintf(what, sizeof(what), "iterator %u (after %" PRIu64 " jobs)", i,
		         jobs - snaps[i].jobs_at_creation);
		snapshot_check(&snaps[i], &rng, what);
	}
	model_full_check(db, m, "after the random phase");

	/* A full compaction under the open iterators must not disturb them.
	 * It is large enough (MBs against 64-256 KiB outputs, 2 compactors)
	 * to run as subcompactions. */
	uint64_t subs = stat_of(db, "subcompactions");
	check_rc(cesium_compact(db), "cesium_compact");
	fprintf(stderr, "cesium_compact ran %" PRIu64 " subcompactions\n",
	        stat_of(db, "subcompactions") - subs);
	assert_true(stat_of(db, "subcompactions") > subs);
	assert_true(wait_no_jobs_in_flight(db));
	for (unsigned i = 0; i < SNAPSHOTS; i++) {
		char what[64];
		snprintf(what, sizeof(what), "iterator %u after cesium_compact", i);
		snapshot_check(&snaps[i], &rng, what);
		cesium_iter_free(snaps[i].it);
		free(snaps[i].vers);
	}
	model_full_check(db, m, "after cesium_compact");

	check_rc(cesium_close(db), "cesium_close");
	db = open_db(dir, extra);
	model_full_check(db, m, "after reopen");
	assert_true(seg_files_match(db, dir));
	check_rc(cesium_close(db), "cesium_close");
	free(m);
	test_rmtree(dir);
	free(dir);
}

/* ---- 2. tombstones and space ---------------------------------------------- */

/* Every key written, then deleted, then cesium_compact: the tombstones and
 * the data they hide are gone from disk, the space is given back (counted
 * by the cleanup statistics), and nothing is readable any more. */
static void test_tombstones_dropped_and_space_reclaimed(void **state)
{
	(void)state;
	uint64_t rng = test_seed("tombstones_dropped_and_space_reclaimed");
	char *dir = test_tmpdir("compaction-tomb");
	assert_non_null(dir);
	cesium_db *db = open_db(dir, NULL);
	const unsigned n = 20000;
	unsigned char val[200];
	uint64_t peak = 0, bytes;
	for (unsigned i = 0; i < n; i++) {
		char key[16];
		size_t klen = (size_t)snprintf(key, sizeof(key), "t%07u", i);
		uint64_t h = test_rand(&rng);
		for (size_t j = 0; j < sizeof(val); j++)
			val[j] = (unsigned char)(h >> (j % 8 * 8)) ^ (unsigned char)j;
		check_rc(cesium_put(db, key, klen, val, sizeof(val)), "cesium_put");
		if (i % 2000 == 0) {
			count_files(dir, ".seg", &bytes);
			if (bytes > peak)
				peak = bytes;
		}
	}
	check_rc(cesium_flush(db), "cesium_flush");
	count_files(dir, ".seg", &bytes);
	if (bytes > peak)
		peak = bytes;
	for (unsigned i = 0; i < n; i++) {
		char key[16];
		size_t klen = (size_t)snprintf(key, sizeof(key), "t%07u", i);
		check_rc(cesium_delete(db, key, klen), "cesium_delete");
	}
	check_rc(cesium_flush(db), "cesium_flush");
	count_files(dir, ".seg", &bytes);
	if (bytes > peak)
		peak = bytes;
	print_shape(db, "before cesium_compact");
	uint64_t deleted = stat_of(db, "files_deleted");
	uint64_t freed = stat_of(db, "bytes_freed");
	/* At least the live data (20000 x 200 bytes) reached the disk. */
	assert_true(peak >= (uint64_t)n * sizeof(val));

	check_rc(cesium_compact(db), "cesium_compact");
	uint64_t deadline = now_ns() + 5000000000ull;
	do {
		count_files(dir, ".seg", &bytes);
		/* Also until the cleanup actor has counted every unlink: a file
		 * leaves the directory a moment before its completion is seen. */
		if (bytes * 20 < peak && stat_of(db, "files_pending_deletion") == 0)
			break;
		usleep(5000);
	} while (now_ns() < deadline);
	print_shape(db, "after cesium_compact");
	fprintf(stderr, "*.seg bytes: peak %" PRIu64 ", after %" PRIu64 "\n", peak, bytes);
	assert_true(bytes * 20 < peak);
	assert_true(stat_of(db, "files_deleted") > deleted);
	assert_true(stat_of(db, "bytes_freed") > freed);
	/* The freed figure covers at least the live data that was dropped. */
	assert_true(stat_of(db, "bytes_freed") - freed >= (uint64_t)n * sizeof(val) / 2);

	for (unsigned i = 0; i < n; i++) {
		char key[16];
		size_t klen = (size_t)snprintf(key, sizeof(key), "t%07u", i);
		void *v = NULL;
		size_t vlen;
		int rc = cesium_get(db, key, klen, &v, &vlen);
		if (rc != CESIUM_ENOTFOUND)
			print_error("%s: expected not found, got %s\n", key, cesium_strerror(rc));
		assert_int_equal(rc, CESIUM_ENOTFOUND);
	}
	cesium_iter *it = NULL;
	check_rc(cesium_iter_new(db, 0, &it), "cesium_iter_new");
	cesium_iter_seek_first(it);
	assert_false(cesium_iter_valid(it));
	assert_int_equal(cesium_iter_status(it), 0);
	cesium_iter_free(it);

	/* Still empty, and still small, after a reopen. */
	check_rc(cesium_close(db), "cesium_close");
	db = open_db(dir, NULL);
	check_rc(cesium_iter_new(db, 0, &it), "cesium_iter_new");
	cesium_iter_seek_first(it);
	assert_false(cesium_iter_valid(it));
	cesium_iter_free(it);
	assert_true(seg_files_match(db, dir));
	count_files(dir, ".seg", &bytes);
	assert_true(bytes * 20 < peak);
	check_rc(cesium_close(db), "cesium_close");
	test_rmtree(dir);
	free(dir);
}

/* ---- 3. stalls --------------------------------------------------------- */

#define STALL_THREADS 2
#define STALL_KEYS 30000
#define STALL_VAL 100

struct stall_writer {
	cesium_db *db;
	unsigned id;
	unsigned failures;
	int first_error;
};

static size_t stall_key(unsigned id, unsigned i, char *buf)
{
	return (size_t)snprintf(buf, 24, "w%u-%06u", id, i);
}

static void stall_value(unsigned id, unsigned i, unsigned char *buf)
{
	uint64_t h = mix64(((uint64_t)id << 32) | i);
	for (size_t j = 0; j < STALL_VAL; j++) {
		if (j % 8 == 0)
			h = mix64(h);
		buf[j] = (unsigned char)(h >> (j % 8 * 8));
	}
}

/* Samples the stall decision and L0 while the writers run. */
struct stall_monitor {
	cesium_db *db;
	atomic_bool done;
	uint64_t samples, stalled_samples, max_l0;
};

static void *stall_watch(void *arg)
{
	struct stall_monitor *mon = arg;
	while (!atomic_load(&mon->done)) {
		uint64_t l0 = level_stat(mon->db, "segments", 0);
		mon->samples++;
		mon->stalled_samples += stat_of(mon->db, "stall_state") != 0;
		if (l0 > mon->max_l0)
			mon->max_l0 = l0;
		usleep(1000);
	}
	return NULL;
}

static void *stall_write(void *arg)
{
	struct stall_writer *w = arg;
	for (unsigned i = 0; i < STALL_KEYS; i++) {
		char key[24];
		unsigned char val[STALL_VAL];
		size_t klen = stall_key(w->id, i, key);
		stall_value(w->id, i, val);
		int rc = cesium_put(w->db, key, klen, val, sizeof(val));
		if (rc) {
			if (!w->failures++)
				w->first_error = rc;
		}
	}
	return NULL;
}

/* Two writers flooding a tree with a low L0 stop trigger and one compactor:
 * the scheduler slows and stops them (counted), every write still succeeds,
 * and shortly after the burst L0 drains below the slowdown trigger and the
 * stall is lifted. */
static void test_stall_engages_and_releases(void **state)
{
	(void)state;
	char *dir = test_tmpdir("compaction-stall");
	assert_non_null(dir);
	static const char *const extra[] = {
	    "memtable_size",
	    "64KiB",
	    "l0_compaction_trigger",
	    "2",
	    "l0_slowdown_trigger",
	    "3",
	    "l0_stop_trigger",
	    "5",
	    "compaction_workers",
	    "1",
	    NULL,
	};
	cesium_db *db = open_db(dir, extra);
	struct stall_writer w[STALL_THREADS];
	pthread_t th[STALL_THREADS];
	struct stall_monitor mon = {.db = db};
	pthread_t mth;
	assert_int_equal(pthread_create(&mth, NULL, stall_watch, &mon), 0);
	uint64_t start = now_ns();
	for (unsigned i = 0; i < STALL_THREADS; i++) {
		w[i] = (struct stall_writer){.db = db, .id = i};
		assert_int_equal(pthread_create(&th[i], NULL, stall_write, &w[i]), 0);
	}
	for (unsigned i = 0; i < STALL_THREADS; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	uint64_t burst_end = now_ns();
	atomic_store(&mon.done, true);
	assert_int_equal(pthread_join(mth, NULL), 0);
	for (unsigned i = 0; i < STALL_THREADS; i++) {
		if (w[i].failures)
			print_error("writer %u: %u writes failed, first with %s\n", i,
			            w[i].failures, cesium_strerror(w[i].first_error));
		assert_int_equal(w[i].failures, 0);
	}
	uint64_t slowdowns = stat_of(db, "slowdowns"), stops = stat_of(db, "stops");
	fprintf(stderr,
	        "burst of %u writes in %.2f s: slowdowns %" PRIu64 " (%.2f s), stops %" PRIu64
	        " (%.2f s), L0 now %" PRIu64 ", stall_state %" PRIu64 "\n",
	        STALL_THREADS * STALL_KEYS, (double)(burst_end - start) / 1e9, slowdowns,
	        (double)stat_of(db, "slowdown_ns") / 1e9, stops,
	        (double)stat_of(db, "stop_ns") / 1e9, level_stat(db, "segments", 0),
	        stat_of(db, "stall_state"));
	fprintf(stderr,
	        "monitor: stalled in %" PRIu64 " of %" PRIu64 " samples, most L0 %" PRIu64 "\n",
	        mon.stalled_samples, mon.samples, mon.max_l0);
	assert_true(slowdowns + stops > 0);
	/* L0 reached the slowdown trigger, and the stop held it near the stop
	 * trigger: memtables sealed before the stop still flush (at most
	 * max_memtables, 4 by default), and each writer already past the
	 * throttle may seal one more. */
	assert_true(mon.max_l0 >= 3);
	assert_true(mon.max_l0 <= 5 + 4 + STALL_THREADS);

	/* Released within 10 s: L0 under the slowdown trigger, no stall, and
	 * no sealed memtable left to flush (one would raise L0 again, and a
	 * pile of them slows writers down by itself). */
	uint64_t deadline = burst_end + 10000000000ull;
	uint64_t l0, stall, sealed;
	for (;;) {
		sealed = stat_of(db, "sealed_memtables");
		l0 = level_stat(db, "segments", 0);
		stall = stat_of(db, "stall_state");
		if ((sealed == 0 && l0 < 3 && stall == 0) || now_ns() > deadline)
			break;
		usleep(10000);
	}
	fprintf(stderr,
	        "released after %.2f s: L0 %" PRIu64 ", stall_state %" PRIu64
	        ", sealed memtables %" PRIu64 "\n",
	        (double)(now_ns() - burst_end) / 1e9, l0, stall, sealed);
	assert_int_equal(sealed, 0);
	assert_true(l0 < 3);
	assert_int_equal(stall, 0);
	assert_true(stat_of(db, "compaction_jobs_completed") > 0);

	/* Released for real: a new write goes through without a stall. */
	uint64_t before = stat_of(db, "slowdowns") + stat_of(db, "stops");
	check_rc(cesium_put(db, "after", 5, "x", 1), "cesium_put");
	assert_int_equal(stat_of(db, "slowdowns") + stat_of(db, "stops"), before);

	for (unsigned id = 0; id < STALL_THREADS; id++) {
		for (unsigned i = 0; i < STALL_KEYS; i++) {
			char key[24];
			unsigned char want[STALL_VAL];
			size_t klen = stall_key(id, i, key);
			stall_value(id, i, want);
			void *v = NULL;
			size_t vlen = 0;
			int rc = cesium_get(db, key, klen, &v, &vlen);
			if (rc)
				print_error("%s: %s: %s\n", key, cesium_strerror(rc),
				            cesium_errmsg());
			assert_int_equal(rc, 0);
			assert_int_equal(vlen, STALL_VAL);
			assert_memory_equal(v, want, STALL_VAL);
			cesium_free(v);
		}
	}
	check_rc(cesium_close(db), "cesium_close");
	test_rmtree(dir);
	free(dir);
}

/* ---- 4. faults in the compactors ------------------------------------------ */

/* Fails every `every`-th write to a *.seg file issued by a compactor thread
 * (the reactors are named cesium-comp<N>; the flush actor runs on
 * cesium-bg, so a flush — whose failure is sticky by design — is never
 * hit), up to `max` failures: EIO, then ENOSPC, then a short write, again. */
struct comp_fault {
	atomic_bool armed;
	unsigned every, max;
	atomic_uint seen, failed;
	atomic_uint by_kind[3];
};

static bool fd_is_seg(int fd)
{
	if (fd < 0)
		return false;
	char link[64], target[512];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, target, sizeof(target) - 1);
	if (n < 4)
		return false;
	target[n] = '\0';
	return strcmp(target + n - 4, ".seg") == 0;
}

static int comp_fault_hook(void *arg, enum io_op op, int fd, const char *path, size_t *len)
{
	struct comp_fault *f = arg;
	(void)path;
	if (op != IO_OP_WRITE || !atomic_load(&f->armed))
		return 0;
	char name[32] = "";
	if (pthread_getname_np(pthread_self(), name, sizeof(name)) != 0 ||
	    strncmp(name, "cesium-comp", 11) != 0)
		return 0;
	if (!fd_is_seg(fd))
		return 0;
	unsigned k = atomic_fetch_add(&f->seen, 1) + 1;
	if (k % f->every != 0)
		return 0;
	unsigned done = atomic_load(&f->failed);
	do {
		if (done >= f->max)
			return 0;
	} while (!atomic_compare_exchange_weak(&f->failed, &done, done + 1));
	unsigned kind = done % 3;
	if (kind == 2 && len && *len < 2)
		kind = 0; /* too short to shorten */
	atomic_fetch_add(&f->by_kind[kind], 1);
	if (kind == 0)
		return -EIO;
	if (kind == 1)
		return -ENOSPC;
	*len /= 2;
	return 0;
}

#define FAULT_KEYS 3000
#define FAULT_MAX 6

/* Compaction outputs failing with EIO, ENOSPC and short writes under a
 * steady write load: jobs fail and are counted, no write fails, and once the
 * faults stop compaction catches up; after a reopen every acknowledged write
 * is there and no partial output is left on disk. */
static void test_fault_mid_background_compaction(void **state)
{
	(void)state;
	uint64_t rng = test_seed("fault_mid_background_compaction");
	char *dir = test_tmpdir("compaction-fault");
	assert_non_null(dir);
	/* High stall triggers: a compaction backing off after a fault must not
	 * stop the writers for long. */
	static const char *const extra[] = {
	    "memtable_size", "64KiB", "l0_slowdown_trigger", "24", "l0_stop_trigger", "32", NULL,
	};
	cesium_db *db = open_db(dir, extra);
	struct model *m = calloc(1, sizeof(*m));
	assert_non_null(m);

	for (unsigned op = 0; op < 8000; op++)
		model_random_op(db, m, &rng, FAULT_KEYS, NNS);
	uint64_t failed0 = stat_of(db, "compaction_jobs_failed");
	uint64_t failures0 = stat_of(db, "compaction_failures");
	assert_int_equal(failed0, 0);

	static struct comp_fault f;
	memset(&f, 0, sizeof(f));
	f.every = 3;
	f.max = FAULT_MAX;
	io_fault_set(comp_fault_hook, &f);
	stop_failures_allowed = true;
	atomic_store(&f.armed, true);
	/* Paced writes (about 10k a second) until every fault was delivered
	 * and seen by the scheduler, or 30 s. */
	uint64_t deadline = now_ns() + 30000000000ull;
	unsigned ops = 0;
	while (now_ns() < deadline) {
		for (unsigned i = 0; i < 200; i++, ops++)
			model_random_op(db, m, &rng, FAULT_KEYS, NNS);
		if (atomic_load(&f.failed) >= FAULT_MAX &&
		    stat_of(db, "compaction_jobs_running") == 0)
			break;
		usleep(20000);
	}
	atomic_store(&f.armed, false);
	io_fault_set(NULL, NULL);
	uint64_t failed1 = stat_of(db, "compaction_jobs_failed");
	uint64_t failures1 = stat_of(db, "compaction_failures");
	fprintf(stderr,
	        "%u writes under faults: %u faults (EIO %u, ENOSPC %u, short %u) of %u compactor "
	        "segment writes; jobs failed %" PRIu64 "\n",
	        ops, atomic_load(&f.failed), atomic_load(&f.by_kind[0]), atomic_load(&f.by_kind[1]),
	        atomic_load(&f.by_kind[2]), atomic_load(&f.seen), failed1 - failed0);
	fprintf(stderr, "%u writes refused while L0 was full and compaction failing\n",
	        writes_refused);
	assert_int_equal(atomic_load(&f.failed), FAULT_MAX);
	assert_true(atomic_load(&f.by_kind[2]) > 0);
	assert_true(failed1 > failed0);
	assert_true(failures1 > failures0);
	/* The failed jobs' inputs left the in-flight set. */
	assert_true(wait_no_jobs_in_flight(db));
	model_full_check(db, m, "right after the faults");

	/* Not sticky: writes go on, and compaction catches up by itself. */
	uint64_t completed1 = stat_of(db, "compaction_jobs_completed");
	for (unsigned op = 0; op < 6000; op++)
		model_random_op(db, m, &rng, FAULT_KEYS, NNS);
	deadline = now_ns() + 20000000000ull;
	bool caught_up = false;
	while (!caught_up && now_ns() < deadline) {
		caught_up = stat_of(db, "compaction_jobs_completed") > completed1 &&
		            stat_of(db, "compaction_jobs_running") == 0;
		for (int l = 0; l < 8 && caught_up; l++)
			caught_up = level_stat(db, "score_milli", l) < 1000;
		if (!caught_up)
			usleep(20000);
	}
	print_shape(db, "after catching up");
	assert_true(caught_up);
	/* Writes refused while stopped go through once compaction caught up. */
	stop_failures_allowed = false;
	for (unsigned op = 0; op < 1000; op++)
		model_random_op(db, m, &rng, FAULT_KEYS, NNS);
	assert_true(wait_no_jobs_in_flight(db));
	assert_int_equal(stat_of(db, "compaction_jobs_failed"), failed1);
	model_full_check(db, m, "after catching up");
	/* No output of a failed job is left behind. */
	assert_true(seg_files_match(db, dir));

	check_rc(cesium_close(db), "cesium_close");
	db = open_db(dir, extra);
	model_full_check(db, m, "after reopen");
	assert_true(seg_files_match(db, dir));
	check_rc(cesium_close(db), "cesium_close");
	free(m);
	test_rmtree(dir);
	free(dir);
}

int main(void)
{
	test_require_io_uring();
	/* CESIUM_TEST_FILTER=test_stall* runs only the matching tests. */
	const char *filter = getenv("CESIUM_TEST_FILTER");
	if (filter)
		cmocka_set_test_filter(filter);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_background_compaction_matches_model),
	    cmocka_unit_test(test_tombstones_dropped_and_space_reclaimed),
	    cmocka_unit_test(test_stall_engages_and_releases),
	    cmocka_unit_test(test_fault_mid_background_compaction),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
