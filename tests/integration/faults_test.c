/*
 * faults_test — a model-checked workload under random I/O faults on every
 * file: EIO on reads and writes, short writes, ENOSPC, failed fsyncs,
 * opens, renames and unlinks (tests/test_db.h's random file_fault through
 * io/fault.h's seam, so it links the internal library).
 *
 * Each round arms the faults at a rate, runs puts, deletes, batches (some
 * CESIUM_WRITE_SYNC), gets, iterators, syncs and flushes on a database with
 * a 64 KiB memtable and segments so that flushes and compactions never
 * stop, then disarms, closes and reopens. Checked:
 * - every error is a clear CESIUM_E* code (EIO or ENOSPC), never a crash;
 * - while open, reads return exactly the acknowledged writes: a failed
 *   write is never visible;
 * - the fsync-failure policy of docs/durability.md: once the WAL's
 *   fdatasync has failed the log is poisoned, and every later write and
 *   cesium_sync fails with CESIUM_EIO until reopen, and so does
 *   cesium_close unless a flush has already retired the poisoned log;
 * - after reopen (a process-level restart, no power loss), every
 *   acknowledged write is there, synced or not; a key holds its last
 *   acknowledged value or that of a failed write issued after it; a failed
 *   batch is whole or absent; nothing is invented.
 * The seed is printed (CESIUM_SEED replays it up to thread timing);
 * CESIUM_FAULT_SECONDS changes the length (default 8).
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cesium.h"
#include "test_db.h"
#include "test_util.h"

#define NKEYS 1500
#define MAXC 12 /* failed writes remembered per key */
#define BATCH_MAX 6
#define ROUND_OPS 4000
#define STUCK_WRITES 40 /* consecutive failed writes that end a round */
#define MIN_ROUNDS 4
#define MAX_ROUNDS 60

/* A write's tag: its generation, and whether it deleted the key. Tag 1
 * (generation 0, deleted) is "never written". */
#define TAG(gen, del) ((uint32_t)(gen) << 1 | (uint32_t)(del))
#define TAG_GEN(t) ((t) >> 1)
#define TAG_DEL(t) ((t)&1u)

struct kstate {
	uint32_t acked;      /* the last acknowledged write */
	uint32_t cand[MAXC]; /* failed writes issued after it, any may be there */
	uint8_t nc;
	bool synced; /* acked was made durable by a sync that returned 0 */
};

struct failed_batch {
	uint32_t gen;
	unsigned n;
	unsigned ids[BATCH_MAX];
	bool del[BATCH_MAX];
};

struct fmodel {
	struct kstate k[NKEYS];
	uint32_t shown[NKEYS]; /* after a reopen: tag read back */
	uint32_t gen;          /* last generation issued */
	struct failed_batch *fb;
	size_t nfb, capfb;
	bool poisoned; /* the WAL's fdatasync failed: sticky until reopen */
	/* Figures for the report. */
	uint64_t writes_ok, writes_failed, sync_acked, reads_checked, iter_entries;
	uint64_t keys_verified, synced_verified, candidates_seen, batches_checked;
	uint64_t errors_seen;
	uint64_t stop_refusals; /* writes refused: L0 full, compaction failing */
};

static const char *const db_opts[] = {
    "memtable_size",
    "64KiB",
    "target_file_size",
    "64KiB",
    "max_bytes_for_level_base",
    "1MiB",
    "level_size_multiplier",
    "4",
    "compaction_workers",
    "2",
    "block_size",
    "1KiB",
    "l0_slowdown_trigger",
    "24",
    "l0_stop_trigger",
    "32",
    /* Every value here (about 75 bytes) stays in its log when flushed, so
     * that the faults also hit kept logs and the reads through them. */
    "log_value_min_size",
    "64",
    NULL,
};

static cesium_db *fopen_db(const char *dir)
{
	return open_db(dir, db_opts[0], db_opts[1], db_opts[2], db_opts[3], db_opts[4], db_opts[5],
	               db_opts[6], db_opts[7], db_opts[8], db_opts[9], db_opts[10], db_opts[11],
	               db_opts[12], db_opts[13], db_opts[14], db_opts[15], db_opts[16], db_opts[17],
	               NULL);
}

/* The fault hook and the directory of the running test, so that a failure
 * can show the faults that led to it and the files they left. */
static struct file_fault *active_faults;
static const char *active_dir;

static void print_files(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	fprintf(stderr, "files in %s:", dir);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		char path[1024];
		struct stat st;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (e->d_name[0] != '.' && stat(path, &st) == 0)
			fprintf(stderr, " %s(%lld)", e->d_name, (long long)st.st_size);
	}
	fprintf(stderr, "\n");
	closedir(d);
}

static void fail_with_faults(void)
{
	if (active_faults)
		file_fault_print_recent(active_faults);
	if (active_dir)
		print_files(active_dir);
	fail();
}

/* An error under faults must be one of the codes a failed disk gives. */
static void check_fault_code(struct fmodel *m, int rc, const char *what)
{
	m->errors_seen++;
	if (strstr(cesium_errmsg(), "compaction catches up"))
		m->stop_refusals++;
	if (rc != CESIUM_EIO && rc != CESIUM_ENOSPC) {
		print_error("%s: unexpected %d (%s): %s\n", what, rc, cesium_strerror(rc),
		            cesium_errmsg());
		fail_with_faults();
	}
}

/* The first poisoned log of the round, from the error that named it. */
static char poisoned_log[512];

/* The error names the WAL's failed fdatasync: the log is poisoned. */
static bool errmsg_is_poison(void)
{
	const char *msg = cesium_errmsg();
	if (!msg || strncmp(msg, "log ", 4) != 0 || !strstr(msg, "fdatasync failed"))
		return false;
	if (!poisoned_log[0]) {
		const char *end = strchr(msg + 4, ':');
		size_t n = end ? (size_t)(end - (msg + 4)) : 0;
		if (n < sizeof(poisoned_log)) {
			memcpy(poisoned_log, msg + 4, n);
			poisoned_log[n] = '\0';
		}
	}
	return true;
}

static bool has_room(const struct fmodel *m, unsigned id)
{
	return m->k[id].nc < MAXC;
}

static void note_write(struct fmodel *m, const unsigned *ids, const bool *del, unsigned n,
                       uint32_t gen, int rc, bool sync)
{
	for (unsigned i = 0; i < n; i++) {
		struct kstate *k = &m->k[ids[i]];
		if (rc == 0) {
			k->acked = TAG(gen, del[i]);
			k->nc = 0;
			k->synced = sync;
		} else {
			k->cand[k->nc++] = TAG(gen, del[i]);
		}
	}
	if (rc == 0) {
		m->writes_ok++;
		m->sync_acked += sync;
		return;
	}
	m->writes_failed++;
	if (n > 1) {
		if (m->nfb == m->capfb) {
			m->capfb = m->capfb ? 2 * m->capfb : 64;
			m->fb = realloc(m->fb, m->capfb * sizeof(*m->fb));
			assert_non_null(m->fb);
		}
		struct failed_batch *b = &m->fb[m->nfb++];
		b->gen = gen;
		b->n = n;
		memcpy(b->ids, ids, n * sizeof(*ids));
		memcpy(b->del, del, n * sizeof(*del));
	}
}

/* One write (a put, a delete or a batch of distinct keys) with its
 * outcome recorded; returns its code. */
static int do_write(cesium_db *db, struct fmodel *m, uint64_t *rng)
{
	unsigned r = (unsigned)(test_rand(rng) % 100);
	unsigned n = r < 55 ? 1 : 2 + (unsigned)(test_rand(rng) % (BATCH_MAX - 1));
	bool sync = test_rand(rng) % 100 < 12;
	unsigned ids[BATCH_MAX];
	bool del[BATCH_MAX];
	unsigned got = 0;
	for (unsigned tries = 0; got < n && tries < 4 * BATCH_MAX; tries++) {
		unsigned id = (unsigned)(test_rand(rng) % NKEYS);
		bool dup = !has_room(m, id);
		for (unsigned j = 0; j < got; j++)
			dup |= ids[j] == id;
		if (dup)
			continue;
		ids[got] = id;
		del[got] = test_rand(rng) % 100 < 20;
		got++;
	}
	if (got == 0)
		return 0;
	uint32_t gen = ++m->gen;
	char k[32], v[128];
	int rc;
	if (got == 1 && !sync) {
		size_t kl = key_of(k, ids[0]);
		if (del[0]) {
			rc = cesium_delete(db, k, kl);
		} else {
			size_t vl = value_of(v, sizeof(v), ids[0], gen);
			rc = cesium_put(db, k, kl, v, vl);
		}
	} else {
		cesium_batch *b = NULL;
		assert_int_equal(cesium_batch_new(&b), 0);
		for (unsigned i = 0; i < got; i++) {
			size_t kl = key_of(k, ids[i]);
			if (del[i]) {
				assert_int_equal(cesium_batch_delete(b, 0, k, kl), 0);
			} else {
				size_t vl = value_of(v, sizeof(v), ids[i], gen);
				assert_int_equal(cesium_batch_put(b, 0, k, kl, v, vl), 0);
			}
		}
		rc = cesium_write(db, b, sync ? CESIUM_WRITE_SYNC : 0);
		cesium_batch_free(b);
	}
	if (rc) {
		check_fault_code(m, rc, "write");
		if (errmsg_is_poison())
			m->poisoned = true;
	} else if (m->poisoned) {
		print_error("a write was acknowledged after the WAL's fdatasync failed\n");
		fail_with_faults();
	}
	note_write(m, ids, del, got, gen, rc, sync);
	return rc;
}

/* The tag a value read back stands for; fails on anything not written. */
static uint32_t tag_of_value(unsigned id, const void *val, size_t vlen)
{
	char buf[160], want[128];
	assert_true(vlen < sizeof(buf));
	memcpy(buf, val, vlen);
	buf[vlen] = '\0';
	unsigned gen = 0, vid = 0;
	if (sscanf(buf, "v%u-%u-", &gen, &vid) != 2 || vid != id || gen == 0) {
		print_error("key %u: invented value '%s'\n", id, buf);
		fail_with_faults();
	}
	size_t wl = value_of(want, sizeof(want), id, gen);
	assert_int_equal(vlen, wl);
	assert_memory_equal(buf, want, wl);
	return TAG(gen, 0);
}

/* While open, a get returns exactly the last acknowledged write, or an
 * I/O error. */
static void check_get_live(cesium_db *db, struct fmodel *m, unsigned id, bool faults)
{
	char k[32];
	size_t kl = key_of(k, id);
	void *val = NULL;
	size_t vlen = 0;
	int rc = cesium_get(db, k, kl, &val, &vlen);
	uint32_t want = m->k[id].acked;
	if (rc == 0) {
		uint32_t t = tag_of_value(id, val, vlen);
		cesium_free(val);
		if (t != want) {
			print_error("key %u: get gave generation %u, acknowledged %u%s\n", id,
			            TAG_GEN(t), TAG_GEN(want), TAG_DEL(want) ? " (deleted)" : "");
			fail_with_faults();
		}
	} else if (rc == CESIUM_ENOTFOUND) {
		if (!TAG_DEL(want)) {
			print_error("key %u: get found nothing, acknowledged generation %u\n", id,
			            TAG_GEN(want));
			fail_with_faults();
		}
	} else if (faults) {
		check_fault_code(m, rc, "get");
		return;
	} else {
		print_error("key %u: get failed without faults: %s\n", id, cesium_errmsg());
		fail_with_faults();
	}
	m->reads_checked++;
}

static unsigned next_live(const struct fmodel *m, unsigned id)
{
	while (id < NKEYS && TAG_DEL(m->k[id].acked))
		id++;
	return id;
}

/* An iterator from start over at most limit entries yields exactly the
 * acknowledged keys and values, or stops with an I/O error. */
static void check_iter_live(cesium_db *db, struct fmodel *m, unsigned start, unsigned limit,
                            bool faults)
{
	cesium_iter *it = NULL;
	int rc = cesium_iter_new(db, 0, &it);
	if (rc) {
		assert_true(faults);
		check_fault_code(m, rc, "iter_new");
		return;
	}
	char k[32];
	size_t kl = key_of(k, start);
	cesium_iter_seek(it, k, kl);
	unsigned id = start, n = 0;
	for (; n < limit && cesium_iter_valid(it); n++, id++, cesium_iter_next(it)) {
		id = next_live(m, id);
		size_t gkl, gvl;
		const void *gk = cesium_iter_key(it, &gkl);
		const void *gv = cesium_iter_value(it, &gvl);
		kl = id < NKEYS ? key_of(k, id) : 0;
		if (id >= NKEYS || gkl != kl || memcmp(gk, k, kl) != 0) {
			print_error("iterator: want key %u, got %.*s\n", id, (int)gkl,
			            (const char *)gk);
			fail_with_faults();
		}
		assert_int_equal(tag_of_value(id, gv, gvl), m->k[id].acked);
		m->iter_entries++;
	}
	rc = cesium_iter_status(it);
	if (rc) {
		assert_true(faults);
		check_fault_code(m, rc, "iterator");
	} else if (n < limit) {
		assert_int_equal(next_live(m, id), NKEYS); /* a clean end is the real end */
	}
	cesium_iter_free(it);
}

/* One round of random operations under armed faults; returns the number
 * of operations issued. */
static unsigned run_round(cesium_db *db, struct fmodel *m, uint64_t *rng)
{
	unsigned ops = 0, stuck = 0;
	for (; ops < ROUND_OPS && stuck < STUCK_WRITES; ops++) {
		unsigned r = (unsigned)(test_rand(rng) % 1000);
		if (r < 700) {
			stuck = do_write(db, m, rng) ? stuck + 1 : 0;
		} else if (r < 900) {
			check_get_live(db, m, (unsigned)(test_rand(rng) % NKEYS), true);
		} else if (r < 960) {
			check_iter_live(db, m, (unsigned)(test_rand(rng) % NKEYS), 40, true);
		} else if (r < 990) {
			int rc = cesium_sync(db);
			if (rc == 0 && m->poisoned) {
				print_error(
				    "cesium_sync returned 0 after the WAL's fdatasync failed\n");
				fail_with_faults();
			}
			if (rc == 0) {
				for (unsigned id = 0; id < NKEYS; id++)
					m->k[id].synced = true;
			} else {
				check_fault_code(m, rc, "cesium_sync");
				if (errmsg_is_poison())
					m->poisoned = true;
			}
		} else {
			int rc = cesium_flush(db);
			if (rc)
				check_fault_code(m, rc, "cesium_flush");
		}
		if (m->poisoned && stuck < STUCK_WRITES - 3)
			stuck = STUCK_WRITES - 3; /* a few more writes must fail too */
	}
	return ops;
}

/* Faults off: the policy after an fdatasync failure holds, and every read
 * returns exactly the acknowledged state. */
static int settle_and_close(cesium_db *db, struct fmodel *m)
{
	int rc = cesium_sync(db);
	if (m->poisoned) {
		/* The fsync-failure policy: never pretend the data is durable. */
		assert_int_equal(rc, CESIUM_EIO);
		assert_int_equal(cesium_sync(db), CESIUM_EIO);
		unsigned id = 0;
		while (!has_room(m, id))
			id++;
		char k[32], v[128];
		size_t kl = key_of(k, id), vl = value_of(v, sizeof(v), id, m->gen + 1);
		assert_int_equal(cesium_put(db, k, kl, v, vl), CESIUM_EIO);
		m->gen++;
		m->k[id].cand[m->k[id].nc++] = TAG(m->gen, 0); /* may be in the log */
	} else if (rc == 0) {
		for (unsigned id = 0; id < NKEYS; id++)
			m->k[id].synced = true;
	} else {
		check_fault_code(m, rc, "cesium_sync after the faults");
	}
	for (unsigned id = 0; id < NKEYS; id++)
		check_get_live(db, m, id, false);
	check_iter_live(db, m, 0, NKEYS + 1, false);
	/* A retired log whose unlink failed (an injected fault) stays on
	 * disk until the next open's sweep, retired all the same. */
	uint64_t unlinks_failed = stat_of(db, "file_deletion_failures");
	rc = cesium_close(db);
	if (m->poisoned && rc == 0) {
		/* Allowed only once a flush rewrote the poisoned log's memtable
		 * into a synced segment and retired the log (deleted by close):
		 * then every acknowledged write is durable. */
		if (access(poisoned_log, F_OK) == 0 && unlinks_failed == 0) {
			print_error("close returned 0 with the poisoned log %s still live\n",
			            poisoned_log);
			fail_with_faults();
		}
	} else if (m->poisoned) {
		assert_int_equal(rc, CESIUM_EIO);
	} else if (rc)
		check_fault_code(m, rc, "cesium_close");
	return rc;
}

/* Whether id holds a deleting write at or after generation gen. */
static bool deleted_since(const struct kstate *k, uint32_t gen)
{
	if (TAG_DEL(k->acked) && TAG_GEN(k->acked) >= gen)
		return true;
	for (unsigned i = 0; i < k->nc; i++)
		if (TAG_DEL(k->cand[i]) && TAG_GEN(k->cand[i]) >= gen)
			return true;
	return false;
}

/* After the reopen: every key holds its last acknowledged write or a
 * failed one issued after it, failed batches are whole or absent, and an
 * iterator agrees with the gets. The recovered state becomes the model. */
static void verify_recovered(cesium_db *db, struct fmodel *m)
{
	for (unsigned id = 0; id < NKEYS; id++) {
		struct kstate *ks = &m->k[id];
		char k[32];
		size_t kl = key_of(k, id);
		void *val = NULL;
		size_t vlen = 0;
		int rc = cesium_get(db, k, kl, &val, &vlen);
		if (rc && rc != CESIUM_ENOTFOUND) {
			print_error("key %u: get after reopen: %s\n", id, cesium_errmsg());
			fail_with_faults();
		}
		uint32_t t = TAG(0, 1);
		if (rc == 0) {
			t = tag_of_value(id, val, vlen);
			cesium_free(val);
		}
		bool ok = rc == 0 ? t == ks->acked : TAG_DEL(ks->acked);
		bool from_failed = false;
		for (unsigned i = 0; !ok && i < ks->nc; i++)
			ok = from_failed = rc == 0 ? t == ks->cand[i] : TAG_DEL(ks->cand[i]) != 0;
		if (!ok) {
			print_error("key %u after reopen: %s generation %u; acknowledged %u%s%s, "
			            "%u failed writes after it\n",
			            id, rc ? "absent, not" : "holds", TAG_GEN(t),
			            TAG_GEN(ks->acked), TAG_DEL(ks->acked) ? " (delete)" : "",
			            ks->synced ? " (synced)" : "", ks->nc);
			fail_with_faults();
		}
		m->shown[id] = t;
		m->keys_verified++;
		m->synced_verified += ks->synced && !from_failed;
		m->candidates_seen += from_failed;
	}
	/* A failed batch is all there or not at all: if one of its puts shows,
	 * every entry shows it or something later. */
	for (size_t b = 0; b < m->nfb; b++) {
		const struct failed_batch *fb = &m->fb[b];
		bool any = false;
		for (unsigned i = 0; i < fb->n; i++)
			any |= !fb->del[i] && m->shown[fb->ids[i]] == TAG(fb->gen, 0);
		if (!any)
			continue;
		for (unsigned i = 0; i < fb->n; i++) {
			uint32_t s = m->shown[fb->ids[i]];
			bool later = TAG_DEL(s) ? deleted_since(&m->k[fb->ids[i]], fb->gen)
			                        : TAG_GEN(s) >= fb->gen;
			if (!later) {
				print_error(
				    "batch %u is half applied: key %u shows generation %u\n",
				    fb->gen, fb->ids[i], TAG_GEN(s));
				fail_with_faults();
			}
		}
		m->batches_checked++;
	}
	for (unsigned id = 0; id < NKEYS; id++) {
		m->k[id].acked = m->shown[id];
		m->k[id].nc = 0;
		/* What a process restart recovered is in files, but not
		 * necessarily synced: only a later sync says so. */
		m->k[id].synced = false;
	}
	m->nfb = 0;
	m->poisoned = false;
	poisoned_log[0] = '\0';
	check_iter_live(db, m, 0, NKEYS + 1, false);
}

/* A round that does not finish within a minute is a hang (a writer
 * waiting for a flush that never comes): fail clearly instead of waiting
 * for meson's timeout. */
static void watchdog(int sig)
{
	(void)sig;
	static const char msg[] =
	    "faults: a round hung for 60 s (a write or close never "
	    "returned); the last faults are above with CESIUM_FAULT_TRACE=1\n";
	ssize_t n = write(2, msg, sizeof(msg) - 1);
	(void)n;
	test_dump_threads();
	_exit(1);
}

static const uint32_t rates[] = {200, 1000, 3000, 10000, 30000};

/* Random faults of every kind on every file, round after round: errors
 * are clear codes, reads never show a failed write, an fdatasync failure
 * poisons the log until reopen, and every acknowledged write survives the
 * reopen with the state a prefix-consistent one. */
static void test_random_faults_keep_acknowledged_writes(void **state)
{
	(void)state;
	uint64_t seed = test_seed("faults");
	uint64_t rng = seed;
	const char *env = getenv("CESIUM_FAULT_SECONDS");
	double secs = env ? atof(env) : 8.0;
	char *dir = test_tmpdir("faults");
	assert_non_null(dir);
	struct fmodel *m = calloc(1, sizeof(*m));
	assert_non_null(m);
	for (unsigned id = 0; id < NKEYS; id++)
		m->k[id].acked = TAG(0, 1);
	test_dump_threads_init();
	signal(SIGALRM, watchdog);
	static struct file_fault f;
	file_fault_arm_random(&f, FILE_FAULT_ALL_OPS, NULL, FILE_FAULT_MIXED, 1, seed);
	file_fault_pause(&f);
	f.trace = getenv("CESIUM_FAULT_TRACE") != NULL;
	active_faults = &f;
	active_dir = dir;

	cesium_db *db = fopen_db(dir);
	uint64_t deadline = now_ns() + (uint64_t)(secs * 1e9);
	unsigned rounds = 0, rounds_failing = 0, close_failed = 0, poisoned_rounds = 0;
	uint64_t ops = 0;
	while (rounds < MAX_ROUNDS && (rounds < MIN_ROUNDS || now_ns() < deadline)) {
		unsigned before = atomic_load(&f.failed);
		uint64_t errors_before = m->errors_seen;
		/* Set while paused: the hook reads them only after seeing armed. */
		f.per_million = rates[rounds % (sizeof(rates) / sizeof(rates[0]))];
		f.seed = seed + rounds;
		alarm(60);
		file_fault_resume(&f);
		ops += run_round(db, m, &rng);
		file_fault_pause(&f);
		rounds_failing += atomic_load(&f.failed) > before && m->errors_seen > errors_before;
		poisoned_rounds += m->poisoned;
		close_failed += settle_and_close(db, m) != 0;
		db = fopen_db(dir);
		verify_recovered(db, m);
		rounds++;
	}
	alarm(0);
	assert_int_equal(cesium_close(db), 0);
	file_fault_disarm(&f);

	unsigned injected = atomic_load(&f.failed);
	fprintf(stderr,
	        "faults: %u rounds, %" PRIu64 " operations, %u faults injected (read %u, write %u "
	        "[%u short], fsync %u, open %u, rename %u, unlink %u, fallocate %u, truncate %u) "
	        "of %u I/O operations seen\n",
	        rounds, ops, injected, atomic_load(&f.failed_op[IO_OP_READ]),
	        atomic_load(&f.failed_op[IO_OP_WRITE]), atomic_load(&f.shortened),
	        atomic_load(&f.failed_op[IO_OP_FSYNC]), atomic_load(&f.failed_op[IO_OP_OPEN]),
	        atomic_load(&f.failed_op[IO_OP_RENAME]), atomic_load(&f.failed_op[IO_OP_UNLINK]),
	        atomic_load(&f.failed_op[IO_OP_FALLOCATE]),
	        atomic_load(&f.failed_op[IO_OP_TRUNCATE]), atomic_load(&f.seen));
	fprintf(stderr,
	        "faults: %" PRIu64 " writes acknowledged (%" PRIu64 " sync), %" PRIu64
	        " failed; %" PRIu64 " errors surfaced; %u rounds with errors, %u poisoned WAL, "
	        "%u failed closes, %" PRIu64 " writes refused while L0 was full and compaction "
	        "failing\n",
	        m->writes_ok, m->sync_acked, m->writes_failed, m->errors_seen, rounds_failing,
	        poisoned_rounds, close_failed, m->stop_refusals);
	fprintf(stderr,
	        "faults: verified %" PRIu64 " live reads, %" PRIu64 " iterator entries, %" PRIu64
	        " keys after reopen (%" PRIu64 " synced, %" PRIu64 " holding a failed write), "
	        "%" PRIu64 " failed batches whole\n",
	        m->reads_checked, m->iter_entries, m->keys_verified, m->synced_verified,
	        m->candidates_seen, m->batches_checked);
	/* The run must have exercised what it claims to. */
	assert_true(injected > 0);
	assert_true(rounds_failing >= 2);
	assert_true(m->writes_ok > 1000);
	assert_true(m->writes_failed > 0);
	free(m->fb);
	free(m);
	test_rmtree(dir);
	free(dir);
}

#define SEG_KEYS 2000

/* Uncompressed blocks are read in place from the segment's mapping: an
 * injected read fault there surfaces as CESIUM_EIO from a get and from an
 * iterator, naming the segment, and both work again once disarmed. */
static void test_mapped_segment_read_fault_is_eio(void **state)
{
	(void)state;
	char *dir = test_tmpdir("faults-mapped");
	assert_non_null(dir);
	cesium_db *db = open_db(dir, "compression", "none", "block_cache_size", "0", NULL);
	struct model m;
	model_init(&m, SEG_KEYS);
	for (unsigned id = 0; id < SEG_KEYS; id++)
		model_put(db, &m, id, 1);
	assert_int_equal(cesium_flush(db), 0);
	assert_int_equal(count_files(dir, ".seg") > 0, 1);
	model_check(db, &m); /* served from the segment: the memtable is empty */

	cesium_iter *it = NULL;
	assert_int_equal(cesium_iter_new(db, 0, &it), 0);

	struct file_fault f;
	file_fault_arm(&f, IO_OP_READ, ".seg", -EIO, 1);
	f.every = true;
	char k[32];
	size_t kl = key_of(k, 1234);
	void *val = NULL;
	size_t vlen = 0;
	int rc_get = cesium_get(db, k, kl, &val, &vlen);
	char msg[512];
	snprintf(msg, sizeof(msg), "%s", cesium_errmsg());
	cesium_iter_seek_first(it);
	bool valid = cesium_iter_valid(it);
	int rc_iter = cesium_iter_status(it);
	cesium_iter_free(it);
	file_fault_disarm(&f);

	assert_int_equal(rc_get, CESIUM_EIO);
	assert_non_null(strstr(msg, ".seg"));
	assert_false(valid);
	assert_int_equal(rc_iter, CESIUM_EIO);
	assert_true(atomic_load(&f.failed) >= 2);

	model_check(db, &m);
	assert_int_equal(cesium_close(db), 0);
	free(m.gen);
	test_rmtree(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mapped_segment_read_fault_is_eio),
	    cmocka_unit_test(test_random_faults_keep_acknowledged_writes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
