#include "db.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "cache.h"
#include "cleanup.h"
#include "compactor.h"
#include "dbiter.h"
#include "error.h"
#include "filename.h"
#include "file.h"
#include "flush.h"
#include "log.h"
#include "manifest.h"
#include "mem.h"
#include "merge.h"
#include "options.h"
#include "park.h"
#include "policy.h"
#include "prefault.h"
#include "reactor.h"
#include "run_iter.h"
#include "ring.h"
#include "scheduler.h"
#include "wal.h"
#include "waiter.h"

/* A group's record is capped so that one large leader does not make its
 * followers wait for a huge copy. */
#define DB_MAX_GROUP_BYTES (1u << 20)
#define DB_MAILBOX 64
/* The longest a syncer gathers writers (db_sync_gather), whatever the
 * last sync took: a sync that stalled for seconds must not make the next
 * writers wait for half of that. */
#define DB_SYNC_GATHER_MAX_NS 1000000u

/* A writer's state word: queued, until it leads a group or another
 * leader has written it (status and errmsg are set before DONE is stored,
 * and the writer may return as soon as it sees DONE). */
enum { DB_WRITER_QUEUED, DB_WRITER_LEADS, DB_WRITER_DONE };

struct db_writer {
	/* The writer's batch, encoded, or (rep NULL) its one entry, which the
	 * leader encodes straight into the log record. */
	const uint8_t *rep;
	const struct batch_entry_ref *one;
	size_t len; /* encoded, header included */
	uint32_t count;
	bool sync;
	bool flush; /* seal the active memtable, even if not full */
	int status;
	char errmsg[ERROR_MSG_MAX];
	park_word state; /* set under write_mu */
	struct db_writer *next;
};

_Atomic(void (*)(void)) db_late_insert_hook;

static uint64_t db_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int db_file_path(const cesium_db *db, uint64_t number, const char *ext, char **out)
{
	if (!(*out = filename_numbered(db->path, number, ext)))
		return error_set(CESIUM_ENOMEM, "out of memory");
	return 0;
}

void db_remove_segments(cesium_db *db, const struct edit *added, bool via_cleanup)
{
	for (size_t i = 0; i < added->nadded; i++) {
		char *path = NULL;
		if (db_file_path(db, added->added[i].number, "seg", &path) != 0)
			continue; /* left for the next open's orphan sweep */
		if (via_cleanup)
			cleanup_push(db->cleaner, path, added->added[i].file_size);
		else
			io_unlink(path);
		mem_free(path);
	}
}

struct seg_writer_opts db_writer_opts(const cesium_db *db, int level)
{
	(void)level;
	struct seg_writer_opts wo = {
		.block_size = db->opts->block_size,
		.bloom_bits_per_key = (int)db->opts->bloom_bits_per_key,
		.compression = db->opts->compression == OPTIONS_COMPRESSION_ZSTD ? SEG_COMPRESSION_ZSTD
		                                                                 : SEG_COMPRESSION_NONE,
		.zstd_level = (int)db->opts->zstd_level,
	};
	return wo;
}

static uint8_t *db_dup_bytes(keys_slice s)
{
	uint8_t *p = mem_alloc(s.len ? s.len : 1);
	if (p)
		memcpy(p, s.data, s.len);
	return p;
}

int db_desc_from_props(const struct seg_props *p, int level, uint64_t number, uint64_t size,
                       struct file_desc *out)
{
	memset(out, 0, sizeof(*out));
	out->level = level;
	out->number = number;
	out->file_size = size;
	out->smallest = db_dup_bytes(p->smallest);
	out->largest = db_dup_bytes(p->largest);
	if (!out->smallest || !out->largest) {
		mem_free(out->smallest);
		mem_free(out->largest);
		out->smallest = out->largest = NULL;
		return error_set(CESIUM_ENOMEM, "out of memory");
	}
	out->smallest_len = p->smallest.len;
	out->largest_len = p->largest.len;
	out->min_seq = p->min_seq;
	out->max_seq = p->max_seq;
	out->entries = p->entries;
	out->tombstones = p->tombstones;
	out->value_log = p->value_log;
	return 0;
}

/* ---- read state ---------------------------------------------------- */

void db_state_unref(struct db_state *st)
{
	if (!st || atomic_fetch_sub_explicit(&st->refs, 1, memory_order_acq_rel) != 1)
		return;
	memtable_unref(st->active);
	for (size_t i = 0; i < st->nsealed; i++)
		memtable_unref(st->sealed[i]);
	if (st->version)
		version_unref(st->version);
	mem_free(st);
}

static struct db_state *db_state_new(memtable *active, memtable *const *sealed, size_t nsealed,
                                     struct version *v)
{
	struct db_state *st = mem_zalloc(sizeof(*st));
	if (!st)
		return NULL;
	atomic_init(&st->refs, 1);
	memtable_ref(active);
	st->active = active;
	for (size_t i = 0; i < nsealed; i++) {
		memtable_ref(sealed[i]);
		st->sealed[i] = sealed[i];
	}
	st->nsealed = nsealed;
	st->version = version_ref(v);
	return st;
}

/* Publishes st (taking over its reference) and frees the old state once no
 * reader can still see it. Caller holds state_mu. */
static void db_publish(cesium_db *db, struct db_state *st)
{
	atomic_store_explicit(&db->nsealed, st->nsealed, memory_order_relaxed);
	struct db_state *old = atomic_exchange_explicit(&db->current, st, memory_order_seq_cst);
	epoch_synchronize(&db->epoch);
	db_state_unref(old);
}

struct db_state *db_state_acquire(cesium_db *db)
{
	epoch_guard g = epoch_enter(&db->epoch);
	struct db_state *st = atomic_load_explicit(&db->current, memory_order_acquire);
	atomic_fetch_add_explicit(&st->refs, 1, memory_order_relaxed);
	epoch_exit(&db->epoch, g);
	return st;
}

int db_install_version(cesium_db *db, struct version *v, size_t flushed)
{
	pthread_mutex_lock(&db->state_mu);
	struct db_state *cur = atomic_load(&db->current);
	size_t keep = cur->nsealed >= flushed ? cur->nsealed - flushed : 0;
	struct db_state *st = db_state_new(cur->active, cur->sealed, keep, v);
	if (!st) {
		pthread_mutex_unlock(&db->state_mu);
		return error_set(CESIUM_ENOMEM, "out of memory installing a version");
	}
	db_publish(db, st);
	pthread_mutex_unlock(&db->state_mu);
	/* Writers waiting for a memtable slot or for cesium_flush re-check. */
	pthread_mutex_lock(&db->write_mu);
	pthread_cond_broadcast(&db->stall_cv);
	pthread_mutex_unlock(&db->write_mu);
	return 0;
}

/* Caller holds write_mu. The first failure wins; its message is kept for
 * every writer that runs into it later. */
static void db_note_bg_error(cesium_db *db, int code)
{
	if (db->bg_error)
		return;
	db->bg_error = code;
	snprintf(db->bg_errmsg, sizeof(db->bg_errmsg), "%s", cesium_errmsg());
	/* Writers waiting for room or for a stop to lift must learn of it
	 * now: the flush or compaction they wait for may never come. */
	pthread_cond_broadcast(&db->stall_cv);
}

/* A failed fdatasync of a log: whatever failed before, writers from now on
 * must hear that acknowledged data may not be durable (the fsyncgate
 * rule), so the poison replaces an earlier sticky error. Takes write_mu;
 * the caller holds no other lock. */
static void db_note_poison(cesium_db *db)
{
	char msg[ERROR_MSG_MAX];
	snprintf(msg, sizeof(msg), "%s", cesium_errmsg());
	pthread_mutex_lock(&db->write_mu);
	if (!db->bg_poisoned) {
		db->bg_poisoned = true;
		db->bg_error = CESIUM_EIO;
		snprintf(db->bg_errmsg, sizeof(db->bg_errmsg), "%s", msg);
		pthread_cond_broadcast(&db->stall_cv);
	}
	pthread_mutex_unlock(&db->write_mu);
}

/* Caller holds write_mu: the sticky error, with its message. */
static int db_report_bg_error(cesium_db *db)
{
	return error_set(db->bg_error, "%s (an earlier failure; reopen the database)",
	                 db->bg_errmsg[0] ? db->bg_errmsg : cesium_strerror(db->bg_error));
}

void db_set_stall(cesium_db *db, int stall, int err)
{
	if (stall == DB_STALL_FAILING) {
		pthread_mutex_lock(&db->write_mu);
		db->stall_error = err;
		snprintf(db->stall_errmsg, sizeof(db->stall_errmsg), "%s", cesium_errmsg());
		pthread_mutex_unlock(&db->write_mu);
	}
	int old = atomic_exchange_explicit(&db->stall, stall, memory_order_relaxed);
	if (old == DB_STALL_STOP && stall != DB_STALL_STOP) {
		pthread_mutex_lock(&db->write_mu);
		pthread_cond_broadcast(&db->stall_cv);
		pthread_mutex_unlock(&db->write_mu);
	}
}

/* Obeys the scheduler's stall decision before a write joins the queue:
 * a slowdown delays each write a bounded DB_SLOWDOWN_NS; a stop waits
 * until compaction has caught up (or the db fails or closes). Sealed
 * memtables piling up also slow writers down, one short of max_memtables
 * (where db_make_room makes them wait), so that flushes can catch up
 * before a hard wait. A stop behind a compaction that keeps failing (a full
 * or failing disk) is not waited out: the write fails with the
 * compaction's error, and writes resume once a compaction succeeds. */
static int db_throttle(cesium_db *db)
{
	int stall = atomic_load_explicit(&db->stall, memory_order_relaxed);
	if (__builtin_expect(stall == DB_STALL_NONE, 1)) {
		uint32_t max = db->opts->max_memtables;
		if (max < 2 || atomic_load_explicit(&db->nsealed, memory_order_relaxed) + 1 < max)
			return 0;
		stall = DB_STALL_SLOWDOWN;
	}
	uint64_t start = db_now_ns();
	if (stall == DB_STALL_SLOWDOWN) {
		struct timespec ts = { 0, DB_SLOWDOWN_NS };
		nanosleep(&ts, NULL);
		atomic_fetch_add_explicit(&db->stats.slowdowns, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&db->stats.slowdown_ns, db_now_ns() - start,
		                          memory_order_relaxed);
		return 0;
	}
	int rc = 0;
	pthread_mutex_lock(&db->write_mu);
	while ((stall = atomic_load_explicit(&db->stall, memory_order_relaxed)) == DB_STALL_STOP &&
	       !db->bg_error && !db->closing)
		pthread_cond_wait(&db->stall_cv, &db->write_mu);
	if (stall == DB_STALL_FAILING)
		rc = error_set(db->stall_error,
		               "writes are stopped until compaction catches up, and it keeps "
		               "failing: %s",
		               db->stall_errmsg);
	pthread_mutex_unlock(&db->write_mu);
	atomic_fetch_add_explicit(&db->stats.stops, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&db->stats.stop_ns, db_now_ns() - start, memory_order_relaxed);
	return rc;
}

void db_set_bg_error(cesium_db *db, int code)
{
	pthread_mutex_lock(&db->write_mu);
	db_note_bg_error(db, code);
	pthread_mutex_unlock(&db->write_mu);
}

int db_snapshots(cesium_db *db, uint64_t **out, size_t *n)
{
	pthread_mutex_lock(&db->snap_mu);
	size_t k = db->nsnaps;
	uint64_t *s = mem_alloc((k + 1) * sizeof(*s));
	if (s && k)
		memcpy(s, db->snaps, k * sizeof(*s));
	pthread_mutex_unlock(&db->snap_mu);
	if (!s)
		return error_set(CESIUM_ENOMEM, "out of memory");
	/* Registered in creation order, so already ascending; the visible
	 * sequence, loaded after them, is at least the newest. It is the
	 * implicit snapshot of every get: a memtable can be flushed while a
	 * group in it waits for its sync, unpublished, and compaction must
	 * not let such an entry shadow the version gets still read. */
	s[k++] = atomic_load_explicit(&db->visible_seq, memory_order_acquire);
	*out = s;
	*n = k;
	return 0;
}

static int db_snap_register(cesium_db *db, uint64_t seq)
{
	int rc = 0;
	pthread_mutex_lock(&db->snap_mu);
	if (db->nsnaps == db->snaps_cap) {
		size_t cap = db->snaps_cap ? db->snaps_cap * 2 : 16;
		uint64_t *s = mem_realloc(db->snaps, cap * sizeof(*s));
		if (!s) {
			rc = error_set(CESIUM_ENOMEM, "out of memory");
			goto out;
		}
		db->snaps = s;
		db->snaps_cap = cap;
	}
	/* Sequences only grow, but two threads may race between reading the
	 * sequence and registering: insert in order. */
	size_t i = db->nsnaps;
	while (i > 0 && db->snaps[i - 1] > seq) {
		db->snaps[i] = db->snaps[i - 1];
		i--;
	}
	db->snaps[i] = seq;
	db->nsnaps++;
out:
	pthread_mutex_unlock(&db->snap_mu);
	return rc;
}

static void db_snap_unregister(cesium_db *db, uint64_t seq)
{
	pthread_mutex_lock(&db->snap_mu);
	for (size_t i = 0; i < db->nsnaps; i++) {
		if (db->snaps[i] == seq) {
			memmove(&db->snaps[i], &db->snaps[i + 1], (db->nsnaps - i - 1) * sizeof(uint64_t));
			db->nsnaps--;
			break;
		}
	}
	pthread_mutex_unlock(&db->snap_mu);
}

/* ---- segments -------------------------------------------------------- */

/* Opens the log a segment keeps values in, for reads through r. The
 * MANIFEST and the segment must agree on which log that is. */
static int db_attach_value_log(cesium_db *db, const struct file_meta *f, seg_reader *r)
{
	uint64_t log = seg_reader_props(r)->value_log;
	if (log != f->value_log)
		return error_set(
		    CESIUM_ECORRUPT, "%s: keeps values in log %llu, the MANIFEST says log %llu",
		    seg_reader_path(r), (unsigned long long)log, (unsigned long long)f->value_log);
	if (!log)
		return 0;
	char *path = NULL;
	int rc = db_file_path(db, log, "wal", &path);
	if (rc)
		return rc;
	int fd = io_open(path, O_RDONLY, 0);
	if (fd < 0)
		rc = error_set(fd == -ENOENT ? CESIUM_ECORRUPT : error_from_errno(fd),
		               "%s: cannot open the log %s keeping its values: %s",
		               seg_reader_path(r), path, strerror(-fd));
	else
		seg_reader_attach_log(r, fd, path);
	mem_free(path);
	return rc;
}

int db_file_reader(cesium_db *db, struct file_meta *f, seg_reader **out)
{
	seg_reader *r = __atomic_load_n((seg_reader **)&f->reader, __ATOMIC_ACQUIRE);
	if (r) {
		*out = r;
		return 0;
	}
	char *path = NULL;
	int rc = db_file_path(db, f->number, "seg", &path);
	if (rc)
		return rc;
	int fd = io_open(path, O_RDONLY, 0);
	if (fd < 0) {
		rc = error_set(fd == -ENOENT ? CESIUM_ECORRUPT : error_from_errno(fd),
		               "%s: cannot open segment: %s", path, strerror(-fd));
		goto out;
	}
	rc = seg_reader_open(fd, path, f->number, db->cache, &r);
	if (rc)
		goto out;
	if ((rc = db_attach_value_log(db, f, r))) {
		seg_reader_unref(r);
		goto out;
	}
	if (db->opts->checksum_every_read)
		seg_reader_verify_every_read(r);
	/* Two threads may open the same file at once: one wins, the other
	 * drops its copy. acq_rel publishes the reader's contents. */
	seg_reader *expected = NULL;
	if (!__atomic_compare_exchange_n((seg_reader **)&f->reader, &expected, r, false,
	                                 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		seg_reader_unref(r);
		r = expected;
	} else {
		atomic_fetch_add(&db->stats.pinned_bytes, seg_reader_pinned_bytes(r));
		atomic_fetch_add(&db->stats.mapped_bytes, seg_reader_mapped_bytes(r));
	}
	*out = r;
out:
	mem_free(path);
	return rc;
}

/* version_env.file_release: the last version holding f let go of it. */
static void db_file_release(void *ctx, struct file_meta *f)
{
	cesium_db *db = ctx;
	seg_reader *r = f->reader;
	if (r) {
		atomic_fetch_sub(&db->stats.pinned_bytes, seg_reader_pinned_bytes(r));
		atomic_fetch_sub(&db->stats.mapped_bytes, seg_reader_mapped_bytes(r));
		seg_reader_unref(r);
	}
	f->reader = NULL;
	if (db->cache)
		cache_erase_segment(db->cache, f->number);
	if (f->unlink && db->cleaner_ready) {
		char *path = NULL;
		if (db_file_path(db, f->number, "seg", &path) == 0) {
			cleanup_push(db->cleaner, path, f->file_size);
			mem_free(path);
		}
		/* Only this segment refers to the log: a flush writes one
		 * segment per log, and compactions copy values out. */
		if (f->value_log && db_file_path(db, f->value_log, "wal", &path) == 0) {
			cleanup_push(db->cleaner, path, 0);
			mem_free(path);
		}
	}
}

/* ---- argument checks --------------------------------------------------- */

int db_check_key(const void *key, size_t klen)
{
	if (!key || klen == 0)
		return error_set(CESIUM_EINVAL, "key is NULL or empty");
	if (klen > CESIUM_MAX_KEY_SIZE)
		return error_set(CESIUM_EINVAL, "key of %zu bytes exceeds the limit of %u", klen,
		                 CESIUM_MAX_KEY_SIZE);
	return 0;
}

static int db_check_value(const void *val, size_t vlen)
{
	if (!val && vlen)
		return error_set(CESIUM_EINVAL, "value is NULL with a length of %zu", vlen);
	if (vlen > CESIUM_MAX_VALUE_SIZE)
		return error_set(CESIUM_EINVAL, "value of %zu bytes exceeds the limit of %u", vlen,
		                 CESIUM_MAX_VALUE_SIZE);
	return 0;
}

int db_check_open(const cesium_db *db)
{
	if (!db)
		return error_set(CESIUM_EINVAL, "database handle is NULL");
	return 0;
}

/* ---- write path ------------------------------------------------------- */

/*
 * Values of log_value_min_size bytes or more are not copied into the
 * memtable: it points at them in the log record they were just written to
 * (its mapping never moves and stays mapped while the memtable lives,
 * wal_hold), and the flush refers to them there (actors/flush.h). The copy
 * and the fresh arena page it fills were the largest costs a writer of
 * large values could shed (bench/RESULTS.md, 2026-11-27 13:54); below the
 * option, a copy is cheap and keeps a get off the log's pages.
 */
struct db_insert_ctx {
	memtable *mem;
	uint64_t puts, deletes;
	uint64_t hold_min; /* 0: copy every value (a replay, or the option off) */
	bool alone;        /* the record holds one entry (MEMTABLE_HELD_ALONE) */
};

static int db_insert_entry(void *ctx, uint64_t seq, enum keys_kind kind, keys_slice nskey,
                           keys_slice value)
{
	struct db_insert_ctx *c = ctx;
	if (kind == KEYS_KIND_VALUE)
		c->puts++;
	else
		c->deletes++;
	if (c->hold_min && kind == KEYS_KIND_VALUE && value.len >= c->hold_min)
		return memtable_add_held(c->mem, seq, nskey, value,
		                         c->alone ? MEMTABLE_HELD_ALONE : MEMTABLE_HELD);
	return memtable_add(c->mem, seq, kind, nskey, value);
}

/* A new memtable for the writes that go to log w: it holds w's mapping,
 * where its large values stay. */
static int db_memtable_for(cesium_db *db, wal *w, memtable **out)
{
	int rc = memtable_new(db->opts->memtable_size, out);
	if (!rc)
		memtable_hold(*out, wal_hold(w), wal_release);
	return rc;
}

/* Seals the active memtable: a new WAL and memtable take over, the old one
 * goes to the flush actor. Caller holds write_mu. */
static int db_seal(cesium_db *db)
{
	struct db_state *cur;
	uint64_t number = atomic_fetch_add(&db->next_file_number, 1);
	uint64_t seg_number = atomic_fetch_add(&db->next_file_number, 1);
	char *path = NULL;
	struct wal *w = NULL;
	memtable *mem = NULL;
	struct flush_request *req = NULL;
	int rc = db_file_path(db, number, "wal", &path);
	if (!rc)
		rc = wal_create_after(path, db->opts->wal_prealloc_size, db->wal_number,
		                      wal_size(db->wal), &w);
	if (!rc)
		rc = db_memtable_for(db, w, &mem);
	if (!rc && !(req = mem_zalloc(sizeof(*req))))
		rc = error_set(CESIUM_ENOMEM, "out of memory");
	if (rc)
		goto fail;
	memtable *sealed[DB_MAX_SEALED];
	/* Under state_mu: the scheduler may have dropped a flushed memtable
	 * since `cur` was read. */
	pthread_mutex_lock(&db->state_mu);
	cur = atomic_load(&db->current);
	sealed[0] = cur->active;
	memcpy(&sealed[1], cur->sealed, cur->nsealed * sizeof(memtable *));
	struct db_state *st = db_state_new(mem, sealed, cur->nsealed + 1, cur->version);
	if (st) {
		db_publish(db, st);
		db->active = mem;
	}
	pthread_mutex_unlock(&db->state_mu);
	if (!st) {
		rc = error_set(CESIUM_ENOMEM, "out of memory");
		goto fail;
	}
	/* Appends go to the new log from here on. */
	wal_set_prefaulter(w, db->prefaulter);
	/* The old log keeps the sealed memtable's data until its flush is
	 * installed. It stays open, unsynced: the next sync write syncs it
	 * before the new log (db_sync_sealed), so a seal never waits for an
	 * fsync of a whole memtable's worth of log. */
	wal_seal(db->wal);
	pthread_mutex_lock(&db->wal_mu);
	if (db->nsealed_wals < DB_MAX_SEALED) {
		db->sealed_wals[db->nsealed_wals].w = db->wal;
		db->sealed_wals[db->nsealed_wals].number = db->wal_number;
		db->nsealed_wals++;
	} else {
		/* Cannot happen while max_memtables < DB_MAX_SEALED; if it
		 * did, syncing now keeps the contract. A failed sync is sticky
		 * (the fsyncgate rule). */
		int close_rc = wal_close(db->wal, true);
		if (close_rc)
			db_note_bg_error(db, close_rc);
	}
	/* Under wal_mu: group syncs read db->wal there. */
	uint64_t sealed_log = db->wal_number;
	db->wal = w;
	db->wal_number = number;
	pthread_mutex_unlock(&db->wal_mu);
	req->msg.type = FLUSH_MSG_MEMTABLE;
	req->mem = sealed[0];
	memtable_ref(req->mem);
	req->file_number = seg_number;
	req->log_number = sealed_log;
	req->next_log_number = number;
	req->last_seq = db->next_seq - 1;
	memtable_unref(mem);
	mem_free(path);
	/* The flush mailbox holds more than max_memtables requests: a refusal
	 * here would be a bug, not backpressure. */
	return actor_send(&db->flusher->actor, &req->msg);
fail:
	if (w) {
		wal_close(w, false);
		io_unlink(path);
	}
	if (mem)
		memtable_unref(mem);
	mem_free(req);
	mem_free(path);
	return rc;
}

/* What a leader needs to know of the read state. */
struct db_shape {
	size_t used;
	uint64_t entries;
	size_t nsealed;
};

static struct db_shape db_shape(cesium_db *db)
{
	/* The values a memtable holds in its log count toward memtable_size:
	 * they are flushed with it, and the log must not outgrow its
	 * mapping's reservation. */
	return (struct db_shape){
	    memtable_memory_usage(db->active) + memtable_held_bytes(db->active),
	    memtable_entries(db->active), atomic_load_explicit(&db->nsealed, memory_order_relaxed)};
}

/* Marks the end of a sync group's inserts after its hand-off; the last one
 * wakes a seal waiting for them. */
static void db_insert_done(cesium_db *db)
{
	if (atomic_fetch_sub(&db->inserting, 1) == 1 && atomic_load(&db->insert_waiter))
		park_wake(&db->inserting);
}

/* Waits until no group inserts behind the queue. Caller holds write_mu, as
 * the leader, so no new group starts inserting. The seq_cst pair (the
 * flag, then the count here; the count, then the flag in db_insert_done)
 * makes one side see the other. */
static void db_wait_inserts(cesium_db *db)
{
	uint32_t n;
	if (!atomic_load(&db->inserting))
		return;
	atomic_store(&db->insert_waiter, true);
	while ((n = atomic_load(&db->inserting)))
		park_wait(&db->inserting, n);
	atomic_store(&db->insert_waiter, false);
}

/* Makes room in the active memtable, waiting while max_memtables sealed
 * ones are queued for flushing. Caller holds write_mu (released while
 * waiting). With force, seals any non-empty memtable. */
static int db_make_room(cesium_db *db, bool force)
{
	uint64_t wait_start = 0;
	int rc = 0;
	for (;;) {
		if (db->bg_error) {
			rc = db_report_bg_error(db);
			break;
		}
		struct db_shape sh = db_shape(db);
		/* A forced seal also covers entries still being inserted behind
		 * the queue (the count says they are coming). */
		bool full = force ? sh.entries > 0 || atomic_load(&db->inserting)
		                  : sh.used >= db->opts->memtable_size;
		if (!full)
			break;
		if (sh.nsealed >= db->opts->max_memtables || sh.nsealed + 1 >= DB_MAX_SEALED) {
			if (!wait_start) {
				wait_start = db_now_ns();
				atomic_fetch_add_explicit(&db->stats.memtable_waits, 1, memory_order_relaxed);
			}
			pthread_cond_wait(&db->stall_cv, &db->write_mu);
			continue;
		}
		/* A sealed memtable never changes again: the inserts still
		 * running into it end first. */
		db_wait_inserts(db);
		rc = db_seal(db);
		break;
	}
	if (wait_start)
		atomic_fetch_add_explicit(&db->stats.memtable_wait_ns, db_now_ns() - wait_start,
		                          memory_order_relaxed);
	return rc;
}

/* Syncs every log, the sealed, not yet flushed ones first: a sync write
 * must not become durable while an earlier write in an older log is not.
 * Under wal_mu, which keeps the set of logs still while a leader may be
 * appending to the current one. */
static int db_sync_logs(cesium_db *db)
{
	int rc = 0;
	pthread_mutex_lock(&db->wal_mu);
	for (size_t i = 0; i < db->nsealed_wals && !rc; i++)
		rc = wal_sync(db->sealed_wals[i].w);
	if (!rc)
		rc = wal_sync(db->wal);
	pthread_mutex_unlock(&db->wal_mu);
	return rc;
}

/* A write group between its append and its completion, on its leader's
 * stack, in db->pending_* (sync_mu). */
struct db_group {
	uint64_t gen, seq;
	uint32_t count;
	uint32_t writers; /* members, all of whom wait for the group */
	bool sync;        /* waits for a sync covering gen */
	bool sticky; /* a failure leaves the log ahead of what readers may see */
	bool inserted; /* its entries are in the memtable (or it failed first) */
	bool done;
	bool enqueued_done; /* done already when db_group_enqueue returned */
	int rc;
	char errmsg[ERROR_MSG_MAX];
	/* Its leader sleeps on this word; wakers bump it under sync_mu, and
	 * issue a wake-up only while the leader sleeps (a futex call per
	 * write cost a lone writer an eighth of its speed). */
	park_word wake;
	bool sleeping;
	struct db_group *next;
};

static void db_group_wake(struct db_group *g, struct park_batch *wakes)
{
	atomic_fetch_add_explicit(&g->wake, 1, memory_order_relaxed);
	if (g->sleeping)
		park_batch_add(wakes, &g->wake);
}

static bool db_group_needs_sync(const cesium_db *db, const struct db_group *g)
{
	return !g->rc && g->sync && g->gen > db->synced_gen && !db->sync_error;
}

static bool db_group_waits(const cesium_db *db, const struct db_group *g)
{
	return !g->inserted || db_group_needs_sync(db, g);
}

/*
 * Completes, in order, the pending groups that wait for nothing more: a
 * group publishes its sequences unless it, or an earlier group after its
 * append, failed; then its leader is woken. Stops at the first group that
 * is still inserting or needs a sync, and wakes that group's leader to run
 * the sync if nobody is syncing (a leader still inserting is not asleep:
 * the wake costs nothing, and it looks for a sync to run when it is done).
 * Caller holds sync_mu and issues the wakes after releasing it.
 */
static void db_complete_groups(cesium_db *db, struct park_batch *wakes)
{
	struct db_group *g;
	while ((g = db->pending_head) && !db_group_waits(db, g)) {
		if (!g->rc && g->sync && g->gen > db->synced_gen) {
			g->rc = db->sync_error;
			snprintf(g->errmsg, sizeof(g->errmsg), "%s", db->sync_errmsg);
		}
		if (!g->rc && db->publish_error) {
			g->rc = db->publish_error;
			snprintf(g->errmsg, sizeof(g->errmsg), "an earlier write failed: %.400s",
			         db->publish_errmsg);
		} else if (g->rc && g->sticky && !db->publish_error) {
			/* Later groups' entries are in the memtable already; they
			 * must not become visible behind this one's. */
			db->publish_error = g->rc;
			snprintf(db->publish_errmsg, sizeof(db->publish_errmsg), "%s", g->errmsg);
		}
		if (!g->rc && g->count)
			atomic_store_explicit(&db->visible_seq, g->seq + g->count - 1,
			                      memory_order_release);
		db->pending_head = g->next;
		if (!g->next)
			db->pending_tail = NULL;
		g->done = true;
		db_group_wake(g, wakes);
	}
	if (g && !db->syncing)
		db_group_wake(g, wakes);
}

/* Queues g after every earlier group. Called by its leader before it hands
 * the write queue on, so the list is in sequence order. A group that needs
 * no sync is completed at once if nothing before it waits (a lone writer's
 * usual case: no second visit to sync_mu); its wakes go into *wakes. */
static void db_group_enqueue(cesium_db *db, struct db_group *g, struct park_batch *wakes)
{
	bool gathered = false;
	pthread_mutex_lock(&db->sync_mu);
	if (db->pending_tail)
		db->pending_tail->next = g;
	else
		db->pending_head = g;
	db->pending_tail = g;
	if (g->sync) {
		db->sync_waiting += g->writers;
		if (db->sync_gathering && db->sync_waiting >= db->sync_goal) {
			atomic_fetch_add_explicit(&db->sync_gather_word, 1, memory_order_relaxed);
			gathered = true;
		}
	} else if (db->pending_head == g) {
		db_complete_groups(db, wakes);
	}
	/* Read under the lock: after it, another thread may complete g. */
	g->enqueued_done = g->done;
	pthread_mutex_unlock(&db->sync_mu);
	if (gathered)
		park_wake(&db->sync_gather_word);
}

/* Before a sync, under sync_mu: waits until as many writers are queued as
 * the last sync served plus those that queued during it, or half the last
 * sync's time (at most DB_SYNC_GATHER_MAX_NS) has passed. Without it, 2k
 * writers settle into two cohorts of k, each queueing while the other's
 * sync runs; gathered, they share one. A lone writer never waits: the goal
 * is 1 and it is queued. */
static void db_sync_gather(cesium_db *db)
{
	if (db->sync_waiting >= db->sync_goal)
		return;
	uint64_t wait = db->sync_last_ns / 2;
	uint64_t now = db_now_ns(),
	         deadline = now + (wait < DB_SYNC_GATHER_MAX_NS ? wait : DB_SYNC_GATHER_MAX_NS);
	db->sync_gathering = true;
	while (db->sync_waiting < db->sync_goal && now < deadline) {
		uint32_t seen = atomic_load_explicit(&db->sync_gather_word, memory_order_relaxed);
		pthread_mutex_unlock(&db->sync_mu);
		park_wait_for(&db->sync_gather_word, seen, deadline - now);
		pthread_mutex_lock(&db->sync_mu);
		now = db_now_ns();
	}
	db->sync_gathering = false;
}

/*
 * Returns once g is complete. A group queued before its inserts first
 * records their result, insert_rc. A leader whose group needs a sync that
 * nobody is running runs it, for every group appended so far: the groups
 * that append while one fdatasync runs share the next. A sync failure is
 * sticky (the log is poisoned by wal_sync).
 */
static int db_group_wait(cesium_db *db, struct db_group *g, int insert_rc)
{
	struct park_batch wakes = {0};
	if (g->enqueued_done)
		goto out;
	pthread_mutex_lock(&db->sync_mu);
	if (!g->inserted) {
		g->inserted = true;
		if (insert_rc) {
			g->rc = insert_rc;
			snprintf(g->errmsg, sizeof(g->errmsg), "%s", cesium_errmsg());
		}
	}
	db_complete_groups(db, &wakes);
	while (!g->done) {
		if (db_group_needs_sync(db, g) && !db->syncing) {
			db->syncing = true;
			db_sync_gather(db);
			uint32_t served = db->sync_waiting;
			db->sync_waiting = 0;
			uint64_t target = atomic_load_explicit(&db->appended_gen, memory_order_acquire);
			pthread_mutex_unlock(&db->sync_mu);
			park_batch_wake(&wakes);
			uint64_t t0 = db_now_ns();
			int rc = db_sync_logs(db);
			uint64_t took = db_now_ns() - t0;
			atomic_fetch_add_explicit(&db->stats.log_sync_ns, took,
			                          memory_order_relaxed);
			atomic_fetch_add_explicit(&db->stats.synced_groups, 1, memory_order_relaxed);
			if (rc)
				db_note_poison(db);
			pthread_mutex_lock(&db->sync_mu);
			db->syncing = false;
			db->sync_goal = served + db->sync_waiting;
			db->sync_last_ns = took;
			if (rc) {
				db->sync_error = rc;
				snprintf(db->sync_errmsg, sizeof(db->sync_errmsg), "%s",
				         cesium_errmsg());
			} else if (target > db->synced_gen) {
				db->synced_gen = target;
			}
			db_complete_groups(db, &wakes);
			continue;
		}
		uint32_t seen = atomic_load_explicit(&g->wake, memory_order_relaxed);
		g->sleeping = true;
		pthread_mutex_unlock(&db->sync_mu);
		park_batch_wake(&wakes);
		park_wait(&g->wake, seen);
		pthread_mutex_lock(&db->sync_mu);
		g->sleeping = false;
	}
	pthread_mutex_unlock(&db->sync_mu);
	park_batch_wake(&wakes);
out:
	if (g->rc)
		error_set(g->rc, "%s", g->errmsg);
	return g->rc;
}

int db_check_kept_log(cesium_db *db, uint64_t number)
{
	int rc = 0;
	pthread_mutex_lock(&db->wal_mu);
	for (size_t i = 0; i < db->nsealed_wals && !rc; i++)
		if (db->sealed_wals[i].number == number)
			rc = wal_check_durable(db->sealed_wals[i].w);
	pthread_mutex_unlock(&db->wal_mu);
	return rc;
}

void db_retire_wals(cesium_db *db, uint64_t below, uint64_t kept)
{
	pthread_mutex_lock(&db->wal_mu);
	size_t k = 0;
	for (size_t i = 0; i < db->nsealed_wals; i++) {
		struct wal *w = db->sealed_wals[i].w;
		bool keep = db->sealed_wals[i].number == kept;
		/* A kept log whose sync failed after the flush's own fdatasync
		 * covered its values stays in the list: every later sync, and
		 * the close, keeps failing on it until a reopen, as for the
		 * live log (the fsyncgate rule). */
		if (db->sealed_wals[i].number >= below || (keep && wal_check_durable(w))) {
			db->sealed_wals[k++] = db->sealed_wals[i];
			continue;
		}
		/* Its data is in segments; a log that keeps values for one
		 * loses only its unused reservation. */
		wal_close(w, keep);
	}
	db->nsealed_wals = k;
	pthread_mutex_unlock(&db->wal_mu);
}

/* Adds n to a statistic that only leaders write, one at a time (the
 * queue's hand-off orders them): a plain load and store, no locked
 * read-modify-write on every write. Readers load it relaxed. */
static inline void db_leader_count(_Atomic uint64_t *stat, uint64_t n)
{
	atomic_store_explicit(stat, atomic_load_explicit(stat, memory_order_relaxed) + n,
	                      memory_order_relaxed);
}

/* The group leader's work while it holds the queue, outside write_mu: one
 * WAL record for the group, at *record once it is in the log (a failure
 * after that leaves log and memtable apart, which only a reopen mends). */
static int db_append_group(cesium_db *db, struct db_writer *first, struct db_writer *last,
                           uint64_t seq, uint32_t count, size_t len, uint8_t **record)
{
	if (count == 0) /* a bare sync or flush */
		return 0;
	/* The group's batches are copied once, straight into the mapped log;
	 * the memtable is filled from there. */
	uint8_t *buf;
	int rc = wal_reserve(db->wal, len, &buf);
	if (rc)
		return rc;
	size_t off = BATCH_HEADER_SIZE;
	for (struct db_writer *w = first;; w = w->next) {
		if (w->one)
			batch_encode_entry(buf + off, w->one);
		else
			memcpy(buf + off, w->rep + BATCH_HEADER_SIZE, w->len - BATCH_HEADER_SIZE);
		off += w->len - BATCH_HEADER_SIZE;
		if (w == last)
			break;
	}
	batch_set_seq(buf, seq);
	keys_put_u32le(buf + 8, count);
	wal_commit(db->wal, len);
	*record = buf;
	db_leader_count(&db->stats.wal_bytes, len);
	return 0;
}

/* Inserts a group's record into mem, where its entries stay invisible until
 * db_complete_groups publishes them. by_leader: the caller still holds the
 * queue, so the counters take plain stores. */
static int db_insert_group(cesium_db *db, memtable *mem, const uint8_t *record, size_t len,
                           uint32_t count, bool by_leader)
{
	struct db_insert_ctx ctx = {
	    .mem = mem, .hold_min = db->opts->log_value_min_size, .alone = count == 1};
	int rc = batch_iterate(record, len, db_insert_entry, &ctx);
	if (by_leader) {
		db_leader_count(&db->stats.puts, ctx.puts);
		db_leader_count(&db->stats.deletes, ctx.deletes);
	} else {
		atomic_fetch_add_explicit(&db->stats.puts, ctx.puts, memory_order_relaxed);
		atomic_fetch_add_explicit(&db->stats.deletes, ctx.deletes, memory_order_relaxed);
	}
	return rc;
}

/* Queues w (its rep or one, len, count, sync and flush set) and returns
 * once its group is done. */
static int db_write(cesium_db *db, struct db_writer *w)
{
	size_t len = w->len;
	uint32_t count = w->count;
	bool sync = w->sync, flush = w->flush;
	if (count == 0 && !sync && !flush)
		return 0;
	if (count) {
		int rc = db_throttle(db);
		if (rc)
			return rc;
	}
	pthread_mutex_lock(&db->write_mu);
	if (db->closing) {
		pthread_mutex_unlock(&db->write_mu);
		return error_set(CESIUM_ECLOSED, "database is closing");
	}
	if (db->queue_tail)
		db->queue_tail->next = w;
	else
		db->queue_head = w;
	db->queue_tail = w;
	if (db->queue_head != w) {
		pthread_mutex_unlock(&db->write_mu);
		uint32_t state;
		while ((state = atomic_load_explicit(&w->state, memory_order_acquire)) ==
		       DB_WRITER_QUEUED)
			park_wait(&w->state, DB_WRITER_QUEUED);
		if (state == DB_WRITER_DONE) {
			if (w->status)
				error_set(w->status, "%s", w->errmsg);
			return w->status;
		}
		pthread_mutex_lock(&db->write_mu);
	}

	/* This writer leads a group. */
	/* Only a leader seals: no other group is between its log append and
	 * its memtable inserts, so a sealed memtable never changes again. */
	int rc = db_make_room(db, flush);
	struct db_writer *last = w;
	size_t total = len;
	bool gsync = sync;
	size_t cap = len < DB_MAX_GROUP_BYTES / 8 ? len + DB_MAX_GROUP_BYTES / 8 : DB_MAX_GROUP_BYTES;
	for (struct db_writer *p = w->next; p; p = p->next) {
		if (total + p->len - BATCH_HEADER_SIZE > cap)
			break;
		total += p->len - BATCH_HEADER_SIZE;
		gsync |= p->sync;
		last = p;
	}
	uint32_t group_count = 0, writers = 0;
	for (struct db_writer *p = w;; p = p->next) {
		group_count += p->count;
		writers++;
		if (p == last)
			break;
	}
	uint64_t seq = db->next_seq;
	db->next_seq += group_count;
	uint64_t gen = ++db->next_gen;
	memtable *mem = db->active;
	pthread_mutex_unlock(&db->write_mu);

	uint8_t *record = NULL;
	if (!rc)
		rc = db_append_group(db, w, last, seq, group_count, total, &record);
	/* A sync group inserts after handing the queue on: it waits for the
	 * sync anyway, and its inserts (a cache miss per level of a random
	 * key's descent) then overlap the next group's append instead of
	 * delaying it. Counted before the hand-off, so that a later leader's
	 * seal waits for them. */
	bool insert_later = record && gsync;
	if (insert_later)
		atomic_fetch_add(&db->inserting, 1);
	else if (record)
		rc = db_insert_group(db, mem, record, total, group_count, true);
	atomic_store_explicit(&db->appended_gen, gen, memory_order_release);
	db_leader_count(&db->stats.write_groups, 1);
	/* A failed sync is as sticky as a failure after the append. */
	bool sticky = record || (gsync && group_count == 0);
	struct db_group g = {.gen = gen,
	                     .seq = seq,
	                     .count = group_count,
	                     .writers = writers,
	                     .sync = gsync,
	                     .sticky = sticky,
	                     .inserted = !insert_later,
	                     .rc = rc};
	if (rc)
		snprintf(g.errmsg, sizeof(g.errmsg), "%s", cesium_errmsg());
	struct park_batch wakes = {0};
	db_group_enqueue(db, &g, &wakes);

	/* The next group may append now, while this one waits for its sync:
	 * that is what lets one fdatasync serve many groups. */
	pthread_mutex_lock(&db->write_mu);
	db->queue_head = last->next;
	if (!db->queue_head) {
		db->queue_tail = NULL;
	} else {
		atomic_store_explicit(&db->queue_head->state, DB_WRITER_LEADS,
		                      memory_order_release);
		park_batch_add(&wakes, &db->queue_head->state);
	}
	pthread_mutex_unlock(&db->write_mu);
	park_batch_wake(&wakes);

	int insert_rc = 0;
	if (insert_later) {
		void (*hook)(void) =
		    atomic_load_explicit(&db_late_insert_hook, memory_order_relaxed);
		if (hook)
			hook();
		insert_rc = db_insert_group(db, mem, record, total, group_count, false);
		db_insert_done(db);
	}
	rc = db_group_wait(db, &g, insert_rc);
	if (w == last && !(rc && sticky))
		return rc; /* nobody to release, nothing to note */

	pthread_mutex_lock(&db->write_mu);
	/* Sequence numbers of a failed group are not reused: a gap is
	 * harmless, a reused number in a log record that did land is not. */
	if (rc && sticky)
		db_note_bg_error(db, rc);
	for (struct db_writer *p = w->next, *next; p && w != last; p = next) {
		/* p may return once it sees DONE: read what is needed first. */
		next = p == last ? NULL : p->next;
		p->status = rc;
		if (rc)
			snprintf(p->errmsg, sizeof(p->errmsg), "%s", cesium_errmsg());
		atomic_store_explicit(&p->state, DB_WRITER_DONE, memory_order_release);
		park_batch_add(&wakes, &p->state);
	}
	pthread_mutex_unlock(&db->write_mu);
	park_batch_wake(&wakes);
	return rc;
}

static int db_write_rep(cesium_db *db, const uint8_t *rep, size_t len, uint32_t count, bool sync,
                        bool flush)
{
	struct db_writer w = {.rep = rep, .len = len, .count = count, .sync = sync, .flush = flush};
	return db_write(db, &w);
}

int cesium_write(cesium_db *db, const cesium_batch *b, unsigned flags)
{
	int rc = db_check_open(db);
	if (rc)
		return rc;
	if (!b)
		return error_set(CESIUM_EINVAL, "batch is NULL");
	if (flags & ~CESIUM_WRITE_SYNC)
		return error_set(CESIUM_EINVAL, "unknown write flags 0x%x", flags);
	atomic_fetch_add_explicit(&db->stats.writes, 1, memory_order_relaxed);
	return db_write_rep(db, batch_data(b), batch_size(b), batch_count(b),
	                    (flags & CESIUM_WRITE_SYNC) || db->opts->sync_writes, false);
}

static int db_write_one(cesium_db *db, enum keys_kind kind, uint64_t ns, const void *key,
                        size_t klen, const void *val, size_t vlen)
{
	int rc = db_check_open(db);
	if (!rc)
		rc = db_check_key(key, klen);
	if (!rc && kind == KEYS_KIND_VALUE)
		rc = db_check_value(val, vlen);
	if (rc)
		return rc;
	struct batch_entry_ref e = {kind, ns, key, klen, val, vlen};
	struct db_writer w = {.one = &e,
	                      .len = BATCH_HEADER_SIZE + batch_entry_size(&e),
	                      .count = 1,
	                      .sync = db->opts->sync_writes};
	return db_write(db, &w);
}

int cesium_put_ns(cesium_db *db, uint64_t ns, const void *key, size_t klen, const void *val,
                  size_t vlen)
{
	return db_write_one(db, KEYS_KIND_VALUE, ns, key, klen, val, vlen);
}

int cesium_put(cesium_db *db, const void *key, size_t klen, const void *val, size_t vlen)
{
	return db_write_one(db, KEYS_KIND_VALUE, 0, key, klen, val, vlen);
}

int cesium_delete_ns(cesium_db *db, uint64_t ns, const void *key, size_t klen)
{
	return db_write_one(db, KEYS_KIND_DELETE, ns, key, klen, NULL, 0);
}

int cesium_delete(cesium_db *db, const void *key, size_t klen)
{
	return db_write_one(db, KEYS_KIND_DELETE, 0, key, klen, NULL, 0);
}

int cesium_sync(cesium_db *db)
{
	int rc = db_check_open(db);
	if (rc)
		return rc;
	/* An empty member of a write group: it waits its turn behind every
	 * earlier write, then the group syncs the log. Sealed logs were synced
	 * when they were sealed. */
	static const uint8_t empty[BATCH_HEADER_SIZE];
	return db_write_rep(db, empty, sizeof(empty), 0, true, false);
}

/* ---- read path -------------------------------------------------------- */

/* The nskey of (ns, key) in buf if it fits, else on the heap. */
uint8_t *db_nskey(uint8_t *buf, size_t cap, uint64_t ns, const void *key, size_t klen)
{
	uint8_t *p = klen + KEYS_NS_SIZE <= cap ? buf : mem_alloc(klen + KEYS_NS_SIZE);
	if (p)
		keys_make_nskey(p, ns, key, klen);
	return p;
}

int db_copy_value(keys_slice v, void **val, size_t *vlen)
{
	void *p = mem_alloc(v.len ? v.len : 1);
	if (!p)
		return error_set(CESIUM_ENOMEM, "out of memory for a value of %zu bytes", v.len);
	memcpy(p, v.data, v.len);
	*val = p;
	*vlen = v.len;
	return 0;
}

/*
 * The segments a get must ask, newest first: one candidate file per run.
 * Each candidate's filter line is prefetched as it is found, so that the
 * filter checks of a tree of many runs wait for their cache misses
 * together rather than one after the other; then the candidates are asked
 * in order, and the first answer wins. A candidate whose reader cannot be
 * opened fails the get only when its turn comes.
 */
#define DB_GET_BATCH 16

struct db_get_batch {
	seg_reader *r[DB_GET_BATCH];
	int rc[DB_GET_BATCH];
	size_t n;
};

static int db_get_ask(struct db_get_batch *b, keys_slice nskey, uint64_t snap,
                      enum keys_kind *kind, void **val, size_t *vlen)
{
	int rc = CESIUM_ENOTFOUND;
	for (size_t i = 0; i < b->n && rc == CESIUM_ENOTFOUND; i++)
		rc = b->rc[i] ? b->rc[i] : seg_reader_get(b->r[i], nskey, snap, kind, val, vlen);
	b->n = 0;
	return rc;
}

static int db_get_segments(cesium_db *db, const struct version *v, keys_slice nskey,
                           uint64_t snap, enum keys_kind *kind, void **val, size_t *vlen)
{
	struct db_get_batch b;
	b.n = 0;
	int rc = CESIUM_ENOTFOUND;
	for (int l = 0; l < VERSION_LEVELS && rc == CESIUM_ENOTFOUND; l++) {
		size_t n = v->nfiles[l];
		for (size_t i = 0, end; i < n && rc == CESIUM_ENOTFOUND; i = end) {
			size_t k = version_run_candidate(v, l, i, nskey, &end);
			if (k == end)
				continue;
			b.rc[b.n] = db_file_reader(db, v->files[l][k], &b.r[b.n]);
			if (!b.rc[b.n])
				seg_reader_prefetch_filter(b.r[b.n], nskey);
			if (++b.n == DB_GET_BATCH)
				rc = db_get_ask(&b, nskey, snap, kind, val, vlen);
		}
	}
	if (rc == CESIUM_ENOTFOUND && b.n)
		rc = db_get_ask(&b, nskey, snap, kind, val, vlen);
	return rc;
}

static int db_get(cesium_db *db, keys_slice nskey, void **val, size_t *vlen)
{
	uint64_t snap = atomic_load_explicit(&db->visible_seq, memory_order_acquire);
	epoch_guard g = epoch_enter(&db->epoch);
	struct db_state *st = atomic_load_explicit(&db->current, memory_order_acquire);
	enum keys_kind kind = KEYS_KIND_DELETE;
	keys_slice v;
	int rc = memtable_get(st->active, nskey, snap, &kind, &v);
	for (size_t i = 0; rc == CESIUM_ENOTFOUND && i < st->nsealed; i++)
		rc = memtable_get(st->sealed[i], nskey, snap, &kind, &v);
	if (rc == 0) {
		rc = kind == KEYS_KIND_VALUE ? db_copy_value(v, val, vlen) : CESIUM_ENOTFOUND;
		goto out;
	}
	rc = db_get_segments(db, st->version, nskey, snap, &kind, val, vlen);
	if (rc == 0 && kind != KEYS_KIND_VALUE) {
		mem_free(*val);
		*val = NULL;
		rc = CESIUM_ENOTFOUND;
	}
out:
	epoch_exit(&db->epoch, g);
	return rc;
}

/*
 * Idle flush. A memtable that stops receiving writes while reads go on
 * is sealed, so that the flush actor writes it out: a get then finds its
 * keys through a segment's filter and fenced index, and a seek through a
 * block's restarts, instead of descending a skiplist (a cache miss per
 * level), and the memtable's memory goes back. Readers sample: every
 * DB_IDLE_SAMPLE-th get or seek of an iterator (and every 64th new
 * iterator) looks at the write counters, and the sampling reader that
 * finds them unmoved for DB_IDLE_FLUSH_NS seals the active memtable as
 * cesium_flush would, without waiting for the flush.
 */
#define DB_IDLE_SAMPLE 4096u
#define DB_IDLE_FLUSH_NS (1000ull * 1000 * 1000)
/* Seeks an iterator counts before it publishes them (db_stats.seeks). */
#define DB_SEEK_BATCH 16u

static void db_idle_check(cesium_db *db)
{
	uint64_t writes = atomic_load_explicit(&db->stats.puts, memory_order_relaxed) +
	                  atomic_load_explicit(&db->stats.deletes, memory_order_relaxed);
	uint64_t now = db_now_ns();
	if (writes != atomic_load_explicit(&db->idle_writes, memory_order_relaxed)) {
		atomic_store_explicit(&db->idle_writes, writes, memory_order_relaxed);
		atomic_store_explicit(&db->idle_since_ns, now, memory_order_relaxed);
		return;
	}
	uint64_t since = atomic_load_explicit(&db->idle_since_ns, memory_order_relaxed);
	if (since == 0) /* the first sample since open */
		atomic_store_explicit(&db->idle_since_ns, now, memory_order_relaxed);
	if (since == 0 || now - since < DB_IDLE_FLUSH_NS)
		return;
	epoch_guard g = epoch_enter(&db->epoch);
	struct db_state *st = atomic_load_explicit(&db->current, memory_order_acquire);
	bool empty = memtable_entries(st->active) == 0;
	epoch_exit(&db->epoch, g);
	/* A reader never waits for room: with sealed memtables still being
	 * flushed (right after a load) the seal could wait for an install
	 * (a get took 140 ms that way). It seals only into an empty flush
	 * pipeline; a later sample tries again. */
	bool flushing = atomic_load_explicit(&db->nsealed, memory_order_relaxed) > 0;
	if (empty || flushing ||
	    atomic_exchange_explicit(&db->idle_sealing, true, memory_order_acquire))
		return;
	/* A failure here is a seal's failure, which the next write's seal
	 * would meet and report; this reader's get has succeeded. */
	static const uint8_t none[BATCH_HEADER_SIZE];
	(void)db_write_rep(db, none, sizeof(none), 0, false, true);
	atomic_store_explicit(&db->idle_since_ns, db_now_ns(), memory_order_relaxed);
	atomic_store_explicit(&db->idle_sealing, false, memory_order_release);
}

int cesium_get_ns(cesium_db *db, uint64_t ns, const void *key, size_t klen, void **val,
                  size_t *vlen)
{
	int rc = db_check_open(db);
	if (!rc)
		rc = db_check_key(key, klen);
	if (!rc && (!val || !vlen))
		rc = error_set(CESIUM_EINVAL, "value or length out-pointer is NULL");
	if (rc)
		return rc;
	*val = NULL;
	*vlen = 0;
	uint8_t buf[256];
	uint8_t *nk = db_nskey(buf, sizeof(buf), ns, key, klen);
	if (!nk)
		return error_set(CESIUM_ENOMEM, "out of memory");
	uint64_t n = atomic_fetch_add_explicit(&db->stats.gets, 1, memory_order_relaxed);
	rc = db_get(db, keys_slice_of(nk, klen + KEYS_NS_SIZE), val, vlen);
	if (rc == 0)
		atomic_fetch_add_explicit(&db->stats.get_hits, 1, memory_order_relaxed);
	if (nk != buf)
		mem_free(nk);
	if (n % DB_IDLE_SAMPLE == DB_IDLE_SAMPLE - 1)
		db_idle_check(db);
	return rc;
}

int cesium_get(cesium_db *db, const void *key, size_t klen, void **val, size_t *vlen)
{
	return cesium_get_ns(db, 0, key, klen, val, vlen);
}

void cesium_free(void *p)
{
	mem_free(p);
}

/* ---- iterators --------------------------------------------------------- */

struct cesium_iter {
	cesium_db *db;
	struct db_state *st;
	uint64_t ns, snap;
	uint64_t seeks; /* positionings so far, for the idle sample */
	dbiter *di;
	uint8_t *bound; /* user key */
	size_t bound_len;
	int status;
};

/* Whether f may hold keys of [lo, hi) (nskeys; hi NULL: no end). */
static bool db_file_overlaps(const struct file_meta *f, keys_slice lo, const keys_slice *hi)
{
	keys_slice fs = keys_ikey_nskey(keys_slice_of(f->smallest, f->smallest_len));
	keys_slice fl = keys_ikey_nskey(keys_slice_of(f->largest, f->largest_len));
	if (keys_compare_bytes(fl, lo) < 0)
		return false;
	return !hi || keys_compare_bytes(fs, *hi) < 0;
}

/*
 * Moves a positioning iterator to the database's newest state. Its
 * snapshot stays: it is registered, so compactions keep every entry it
 * sees, and flushes and compactions only move entries, so the newer state
 * answers the same at that snapshot, from fewer memtables and runs once
 * the work after a load has finished. A long-lived iterator also stops
 * pinning memtables and files that are gone. Every DB_IDLE_SAMPLE-th
 * seek of an iterator also samples for the idle flush, as gets do.
 */
static void db_iter_refresh(cesium_iter *it)
{
	cesium_db *db = it->db;
	if (++it->seeks % DB_SEEK_BATCH == 0)
		atomic_fetch_add_explicit(&db->stats.seeks, DB_SEEK_BATCH, memory_order_relaxed);
	if (it->seeks % DB_IDLE_SAMPLE == 0)
		db_idle_check(db);
	if (atomic_load_explicit(&db->current, memory_order_acquire) == it->st)
		return; /* it->st is referenced, so its address cannot be reused */
	struct db_state *st = db_state_acquire(db);
	db_state_unref(it->st);
	it->st = st;
}

/* Builds the merged view of every source that may hold keys of
 * [ns ++ from, bound): memtables, then segments outside the range skipped. */
static int db_iter_build(cesium_iter *it, const void *from, size_t from_len)
{
	db_iter_refresh(it);
	struct db_state *st = it->st;
	const struct version *v = st->version;
	size_t max = 1 + st->nsealed;
	for (int l = 0; l < VERSION_LEVELS; l++)
		max += v->nfiles[l];
	iter **children = mem_calloc(max, sizeof(*children));
	uint8_t *lo = mem_alloc(KEYS_NS_SIZE + from_len + 1);
	uint8_t *hib = mem_alloc(KEYS_NS_SIZE + it->bound_len + 1);
	size_t n = 0;
	iter *merged = NULL;
	int rc = 0;
	if (!children || !lo || !hib) {
		rc = error_set(CESIUM_ENOMEM, "out of memory building an iterator");
		goto out;
	}
	keys_make_nskey(lo, it->ns, from, from_len);
	keys_slice los = keys_slice_of(lo, KEYS_NS_SIZE + from_len), his;
	const keys_slice *hi = &his;
	if (it->bound_len) {
		keys_make_nskey(hib, it->ns, it->bound, it->bound_len);
		his = keys_slice_of(hib, KEYS_NS_SIZE + it->bound_len);
	} else if (it->ns != UINT64_MAX) {
		keys_put_u64be(hib, it->ns + 1);
		his = keys_slice_of(hib, KEYS_NS_SIZE);
	} else {
		hi = NULL;
	}
	rc = memtable_iter_new(st->active, &children[n]);
	if (!rc)
		n++;
	for (size_t i = 0; !rc && i < st->nsealed; i++) {
		rc = memtable_iter_new(st->sealed[i], &children[n]);
		if (!rc)
			n++;
	}
	for (int l = 0; !rc && l < VERSION_LEVELS; l++) {
		/* L0 files overlap: one child each. Above L0 each sorted run
		 * (one per leveled level, several per tiered one) is one
		 * child, whose overlapping files are consecutive. */
		for (size_t i = 0; !rc && i < v->nfiles[l];) {
			size_t end = i + 1;
			while (l > 0 && end < v->nfiles[l] &&
			       (l >= VERSION_TIERED_LEVELS || v->files[l][end]->run == v->files[l][i]->run))
				end++;
			size_t a = i, b = end;
			while (a < b && !db_file_overlaps(v->files[l][a], los, hi))
				a++;
			while (b > a && !db_file_overlaps(v->files[l][b - 1], los, hi))
				b--;
			i = end;
			if (a == b)
				continue;
			/* Lazy seeks either way: a run whose answer is its
			 * first entry reads no block unless the merge
			 * returns it. */
			if (b - a == 1) {
				seg_reader *r;
				struct seg_iter_opts so = {.fill_cache = true, .lazy = true};
				rc = db_file_reader(it->db, v->files[l][a], &r);
				if (!rc)
					rc = seg_reader_iter_new(r, &so, &children[n]);
			} else {
				rc = run_iter_new(it->db, &v->files[l][a], b - a, &children[n]);
			}
			if (!rc)
				n++;
		}
	}
	if (rc)
		goto out;
	rc = merge_iter_new(children, n, &merged);
	n = 0;
	if (rc)
		goto out;
	dbiter_free(it->di);
	it->di = NULL;
	rc = dbiter_new(merged, it->ns, it->snap, &it->di);
	if (!rc && it->bound_len)
		rc = dbiter_set_upper_bound(it->di, it->bound, it->bound_len);
out:
	for (size_t i = 0; i < n; i++)
		iter_destroy(children[i]);
	mem_free(children);
	mem_free(lo);
	mem_free(hib);
	it->status = rc;
	return rc;
}

int cesium_iter_new(cesium_db *db, uint64_t ns, cesium_iter **out)
{
	int rc = db_check_open(db);
	if (!rc && !out)
		rc = error_set(CESIUM_EINVAL, "iterator out-pointer is NULL");
	if (rc)
		return rc;
	cesium_iter *it = mem_zalloc(sizeof(*it));
	if (!it)
		return error_set(CESIUM_ENOMEM, "out of memory");
	it->db = db;
	it->ns = ns;
	/* The sequence first, then the state: every write up to it is in the
	 * state's memtables or segments. */
	it->snap = atomic_load_explicit(&db->visible_seq, memory_order_acquire);
	rc = db_snap_register(db, it->snap);
	if (rc) {
		mem_free(it);
		return rc;
	}
	it->st = db_state_acquire(db);
	uint64_t n = atomic_fetch_add_explicit(&db->stats.iters, 1, memory_order_relaxed);
	*out = it;
	if (n % (DB_IDLE_SAMPLE / 64) == DB_IDLE_SAMPLE / 64 - 1)
		db_idle_check(db); /* an iterator reads many keys */
	return 0;
}

int cesium_iter_set_upper_bound(cesium_iter *it, const void *key, size_t klen)
{
	if (!it)
		return error_set(CESIUM_EINVAL, "iterator is NULL");
	if (klen && !key)
		return error_set(CESIUM_EINVAL, "bound is NULL with a length of %zu", klen);
	if (klen > CESIUM_MAX_KEY_SIZE)
		return error_set(CESIUM_EINVAL, "bound of %zu bytes exceeds the key limit", klen);
	uint8_t *b = NULL;
	if (klen) {
		b = mem_alloc(klen);
		if (!b)
			return error_set(CESIUM_ENOMEM, "out of memory");
		memcpy(b, key, klen);
	}
	mem_free(it->bound);
	it->bound = b;
	it->bound_len = klen;
	if (it->di)
		return dbiter_set_upper_bound(it->di, key, klen);
	return 0;
}

void cesium_iter_seek(cesium_iter *it, const void *key, size_t klen)
{
	if (!it)
		return;
	if ((!key && klen) || klen > CESIUM_MAX_KEY_SIZE) {
		it->status = error_set(CESIUM_EINVAL, "seek key is NULL or too long");
		dbiter_free(it->di);
		it->di = NULL;
		return;
	}
	if (db_iter_build(it, key, klen) == 0)
		dbiter_seek(it->di, key, klen);
}

void cesium_iter_seek_first(cesium_iter *it)
{
	if (it && db_iter_build(it, NULL, 0) == 0)
		dbiter_seek_first(it->di);
}

bool cesium_iter_valid(const cesium_iter *it)
{
	return it && it->di && it->status == 0 && dbiter_valid(it->di);
}

void cesium_iter_next(cesium_iter *it)
{
	if (cesium_iter_valid(it))
		dbiter_next(it->di);
}

const void *cesium_iter_key(const cesium_iter *it, size_t *klen)
{
	if (!cesium_iter_valid(it)) {
		if (klen)
			*klen = 0;
		return NULL;
	}
	size_t dummy;
	return dbiter_key(it->di, klen ? klen : &dummy);
}

const void *cesium_iter_value(const cesium_iter *it, size_t *vlen)
{
	if (!cesium_iter_valid(it)) {
		if (vlen)
			*vlen = 0;
		return NULL;
	}
	size_t dummy;
	return dbiter_value(it->di, vlen ? vlen : &dummy);
}

int cesium_iter_status(const cesium_iter *it)
{
	if (!it)
		return error_set(CESIUM_EINVAL, "iterator is NULL");
	if (it->status)
		return it->status;
	return it->di ? dbiter_status(it->di) : 0;
}

void cesium_iter_free(cesium_iter *it)
{
	if (!it)
		return;
	atomic_fetch_add_explicit(&it->db->stats.seeks, it->seeks % DB_SEEK_BATCH,
	                          memory_order_relaxed);
	dbiter_free(it->di);
	db_snap_unregister(it->db, it->snap);
	db_state_unref(it->st);
	mem_free(it->bound);
	mem_free(it);
}

/* ---- flush and compaction ------------------------------------------- */

int cesium_flush(cesium_db *db)
{
	int rc = db_check_open(db);
	if (rc)
		return rc;
	static const uint8_t empty[BATCH_HEADER_SIZE];
	rc = db_write_rep(db, empty, sizeof(empty), 0, false, true);
	if (rc)
		return rc;
	pthread_mutex_lock(&db->write_mu);
	while (atomic_load_explicit(&db->nsealed, memory_order_relaxed) > 0 && !db->bg_error)
		pthread_cond_wait(&db->stall_cv, &db->write_mu);
	rc = db->bg_error ? db_report_bg_error(db) : 0;
	pthread_mutex_unlock(&db->write_mu);
	return rc;
}

int cesium_compact(cesium_db *db)
{
	int rc = cesium_flush(db);
	if (rc)
		return rc;
	struct waiter w;
	rc = waiter_init(&w);
	if (rc)
		return rc;
	struct sched_compact *msg = mem_zalloc(sizeof(*msg));
	if (!msg) {
		waiter_destroy(&w);
		return error_set(CESIUM_ENOMEM, "out of memory");
	}
	msg->msg.type = SCHED_MSG_COMPACT;
	msg->waiter = &w;
	pthread_mutex_lock(&db->compact_mu);
	rc = actor_send(&db->sched->actor, &msg->msg);
	if (rc)
		mem_free(msg);
	else
		rc = waiter_wait(&w);
	pthread_mutex_unlock(&db->compact_mu);
	waiter_destroy(&w);
	return rc;
}

/* ---- open, recovery, close ------------------------------------------- */

struct db_replay_ctx {
	memtable *mem;
	uint64_t max_seq;
	const char *path;
};

static int db_replay_entry(void *ctx, uint64_t seq, enum keys_kind kind, keys_slice nskey,
                           keys_slice value)
{
	struct db_replay_ctx *c = ctx;
	if (seq > c->max_seq)
		c->max_seq = seq;
	return memtable_add(c->mem, seq, kind, nskey, value);
}

static int db_replay_record(void *ctx, keys_slice payload)
{
	struct db_replay_ctx *c = ctx;
	int rc = batch_iterate(payload.data, payload.len, db_replay_entry, c);
	if (rc == CESIUM_ECORRUPT)
		error_set(rc, "%s: a log record holds a malformed batch: %s", c->path, cesium_errmsg());
	return rc;
}

static int db_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Lists the directory's WALs (sorted), and its highest file number. */
static int db_scan_dir(cesium_db *db, uint64_t **wals, size_t *nwals, uint64_t *max_number,
                       bool *has_db_files)
{
	DIR *d = opendir(db->path);
	if (!d)
		return error_set(error_from_errno(-errno), "%s: cannot list: %s", db->path,
		                 strerror(errno));
	uint64_t *w = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;
	struct dirent *e;
	*max_number = 0;
	*has_db_files = false;
	while ((e = readdir(d)) != NULL) {
		uint64_t wn = filename_number(e->d_name, "wal");
		uint64_t sn = filename_number(e->d_name, "seg");
		uint64_t mn = filename_manifest_number(e->d_name);
		if (mn > *max_number)
			*max_number = mn;
		/* A MANIFEST alone is a first open that crashed before CURRENT
		 * was written: nothing was ever acknowledged, start afresh. */
		if (wn || sn)
			*has_db_files = true;
		if (sn > *max_number)
			*max_number = sn;
		if (wn > *max_number)
			*max_number = wn;
		if (!wn)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			uint64_t *nw = mem_realloc(w, cap * sizeof(*w));
			if (!nw) {
				rc = error_set(CESIUM_ENOMEM, "out of memory");
				break;
			}
			w = nw;
		}
		w[n++] = wn;
	}
	closedir(d);
	if (rc) {
		mem_free(w);
		return rc;
	}
	if (n > 1)
		qsort(w, n, sizeof(*w), db_cmp_u64);
	*wals = w;
	*nwals = n;
	return 0;
}

/* Removes what no version needs: segments it does not list (a flush or
 * compaction that crashed before its edit), WALs below its log number, old
 * MANIFESTs. */
static void db_remove_orphans(cesium_db *db, const struct version *v, uint64_t manifest_number)
{
	DIR *d = opendir(db->path);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		bool remove = false;
		uint64_t n, mn;
		if ((n = filename_number(e->d_name, "seg")) != 0) {
			remove = true;
			for (int l = 0; l < VERSION_LEVELS && remove; l++)
				for (size_t i = 0; i < v->nfiles[l]; i++)
					if (v->files[l][i]->number == n)
						remove = false;
		} else if ((n = filename_number(e->d_name, "wal")) != 0) {
			remove = n < v->log_number;
			for (int l = 0; l < VERSION_LEVELS && remove; l++)
				for (size_t i = 0; i < v->nfiles[l]; i++)
					if (v->files[l][i]->value_log == n)
						remove = false;
		} else if ((mn = filename_manifest_number(e->d_name)) != 0) {
			remove = mn != manifest_number;
		} else if (strcmp(e->d_name, "CURRENT.tmp") == 0) {
			remove = true;
		}
		if (remove) {
			char *p = NULL;
			if ((p = mem_printf("%s/%s", db->path, e->d_name)) != NULL) {
				io_unlink(p);
				mem_free(p);
			}
		}
	}
	closedir(d);
}

static int db_write_options_file(cesium_db *db)
{
	char *text = NULL, *path = NULL, *tmp = NULL;
	int fd = -1;
	int rc = options_to_text(db->opts, &text);
	if (rc)
		return rc;
	if (!(path = mem_printf("%s/OPTIONS", db->path)) ||
	    !(tmp = mem_printf("%s/OPTIONS.tmp", db->path))) {
		rc = error_set(CESIUM_ENOMEM, "out of memory");
		goto out;
	}
	fd = io_open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	rc = fd < 0 ? fd : io_pwrite_full(fd, text, strlen(text), 0);
	if (!rc)
		rc = io_rename(tmp, path);
	if (rc)
		rc = error_set(error_from_errno(rc), "%s: cannot write OPTIONS", db->path);
out:
	io_close(fd);
	mem_free(text);
	mem_free(path);
	mem_free(tmp);
	return rc;
}

/* Refuses a directory without CURRENT that holds a name cesium never
 * creates: adopting it would mix the engine's files into someone else's
 * data. An empty directory (or one holding only cesium's own files, left
 * by a first open that crashed) is fine. Called before LOCK is created, so
 * a refused directory is left exactly as it was, and again under the lock
 * in db_recover in case a file appeared in between. */
static int db_check_not_foreign(cesium_db *db)
{
	DIR *d = opendir(db->path);
	if (!d)
		return error_set(error_from_errno(-errno), "%s: cannot list: %s", db->path,
		                 strerror(errno));
	int rc = 0;
	bool has_current = false;
	char foreign[256] = "";
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, "CURRENT") == 0)
			has_current = true;
		else if (!foreign[0] && !filename_is_engine_file(e->d_name))
			snprintf(foreign, sizeof(foreign), "%s", e->d_name);
	}
	closedir(d);
	if (!has_current && foreign[0])
		rc = error_set(CESIUM_EINVAL, "not a cesium database: %s contains %s", db->path,
		               foreign);
	return rc;
}

static int db_open_dir(cesium_db *db)
{
	struct stat st;
	if (stat(db->path, &st) == 0) {
		if (!S_ISDIR(st.st_mode))
			return error_set(CESIUM_EINVAL, "%s: exists and is not a directory", db->path);
		int rc = db_check_not_foreign(db);
		if (rc)
			return rc;
	} else if (errno != ENOENT) {
		return error_set(error_from_errno(-errno), "%s: %s", db->path, strerror(errno));
	} else if (!db->opts->create_if_missing) {
		return error_set(CESIUM_EINVAL, "%s: no database here and create_if_missing is false",
		                 db->path);
	} else if (mkdir(db->path, 0755) != 0) {
		return error_set(error_from_errno(-errno), "%s: cannot create: %s", db->path,
		                 strerror(errno));
	}
	char *lock = NULL;
	if (!(lock = mem_printf("%s/LOCK", db->path)))
		return error_set(CESIUM_ENOMEM, "out of memory");
	db->lock_fd = io_open(lock, O_RDWR | O_CREAT, 0644);
	mem_free(lock);
	if (db->lock_fd < 0)
		return error_set(error_from_errno(db->lock_fd), "%s/LOCK: cannot open: %s", db->path,
		                 strerror(-db->lock_fd));
	/* flock locks belong to the open file description, so a second open
	 * in this same process is refused too. */
	if (flock(db->lock_fd, LOCK_EX | LOCK_NB) != 0)
		return error_set(errno == EWOULDBLOCK ? CESIUM_EBUSY : error_from_errno(-errno),
		                 "%s: locked by another handle or process", db->path);
	return 0;
}

/* Replays every WAL the version does not cover into one memtable, as one
 * chain (wal_replay_chain); *chain says where the next WAL links. */
static int db_replay_wals(cesium_db *db, const uint64_t *wals, size_t nwals, uint64_t log_number,
                          memtable *mem, uint64_t *max_seq, struct wal_chain_stats *chain)
{
	struct db_replay_ctx ctx = { .mem = mem, .max_seq = *max_seq, .path = "(log)" };
	char **paths = mem_calloc(nwals ? nwals : 1, sizeof(*paths));
	uint64_t *numbers = mem_calloc(nwals ? nwals : 1, sizeof(*numbers));
	size_t n = 0;
	int rc = 0;
	memset(chain, 0, sizeof(*chain));
	if (!paths || !numbers) {
		rc = error_set(CESIUM_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < nwals && !rc; i++) {
		if (wals[i] < log_number)
			continue;
		rc = db_file_path(db, wals[i], "wal", &paths[n]);
		numbers[n++] = wals[i];
	}
	if (!rc)
		rc = wal_replay_chain((const char *const *)paths, numbers, n, db_replay_record, &ctx,
		                      chain);
	*max_seq = ctx.max_seq;
out:
	for (size_t i = 0; paths && i < n; i++)
		mem_free(paths[i]);
	mem_free(paths);
	mem_free(numbers);
	return rc;
}

static int db_start_actors(cesium_db *db, struct version *v, int manifest_fd,
                           const char *manifest_path, uint64_t manifest_size)
{
	size_t n = db->opts->compaction_workers;
	if (n > SCHED_MAX_COMPACTORS)
		n = SCHED_MAX_COMPACTORS;
	db->sched = mem_zalloc(sizeof(*db->sched));
	db->flusher = mem_zalloc(sizeof(*db->flusher));
	db->cleaner = mem_zalloc(sizeof(*db->cleaner));
	db->prefaulter = mem_zalloc(sizeof(*db->prefaulter));
	db->compactors = mem_calloc(n, sizeof(*db->compactors));
	db->compact_rs = mem_calloc(n, sizeof(*db->compact_rs));
	if (!db->sched || !db->flusher || !db->cleaner || !db->prefaulter || !db->compactors ||
	    !db->compact_rs) {
		io_close(manifest_fd);
		return error_set(CESIUM_ENOMEM, "out of memory");
	}
	int rc = scheduler_init(db->sched, db, v, manifest_fd, manifest_path, manifest_size);
	if (rc)
		return rc;
	flush_init(db->flusher, db, db->sched);
	cleanup_init(db->cleaner);
	prefault_init(db->prefaulter);
	rc = reactor_new("cesium-bg", &db->bg);
	if (!rc)
		rc = reactor_add_actor(db->bg, &db->sched->actor, DB_MAILBOX);
	if (!rc)
		rc = reactor_add_actor(db->bg, &db->flusher->actor, DB_MAILBOX);
	if (!rc)
		rc = reactor_add_actor(db->bg, &db->cleaner->actor, DB_MAILBOX);
	if (!rc)
		rc = reactor_add_actor(db->bg, &db->prefaulter->actor, DB_MAILBOX);
	for (size_t i = 0; i < n && !rc; i++) {
		db->compactors[i] = mem_zalloc(sizeof(struct compactor));
		if (!db->compactors[i]) {
			rc = error_set(CESIUM_ENOMEM, "out of memory");
			break;
		}
		db->ncompactors = i + 1;
		compactor_init(db->compactors[i], db);
		char name[24]; /* the reactor keeps 15 bytes: it names the thread */
		snprintf(name, sizeof(name), "cesium-comp%u", (unsigned)i);
		rc = reactor_new(name, &db->compact_rs[i]);
		if (!rc)
			rc = reactor_add_actor(db->compact_rs[i], &db->compactors[i]->actor, DB_MAILBOX);
	}
	if (!rc)
		rc = scheduler_set_compactors(db->sched, db->compactors, db->ncompactors);
	if (!rc)
		rc = reactor_start(db->bg);
	for (size_t i = 0; i < db->ncompactors && !rc; i++)
		rc = reactor_start(db->compact_rs[i]);
	if (!rc)
		rc = scheduler_start(db->sched);
	if (!rc)
		wal_set_prefaulter(db->wal, db->prefaulter);
	return rc;
}

static int db_recover(cesium_db *db)
{
	char *manifest = NULL;
	uint64_t *wals = NULL;
	size_t nwals = 0;
	uint64_t max_number = 0, last_seq = 0, manifest_size = 0;
	bool has_files = false;
	struct version *v = NULL;
	memtable *recovered = NULL, *active = NULL;
	int manifest_fd = -1;
	char *cur = NULL;
	struct wal_chain_stats chain = {0};
	int rc = db_scan_dir(db, &wals, &nwals, &max_number, &has_files);
	if (rc)
		goto out;
	if (!(cur = mem_printf("%s/CURRENT", db->path))) {
		cur = NULL;
		rc = error_set(CESIUM_ENOMEM, "out of memory");
		goto out;
	}
	if (access(cur, F_OK) == 0) {
		if (db->opts->error_if_exists) {
			rc = error_set(CESIUM_EINVAL, "%s: database exists and error_if_exists is true",
			               db->path);
			goto out;
		}
		uint64_t valid_end;
		rc = manifest_read_current(db->path, &manifest);
		if (!rc)
			rc = version_recover(manifest, &db->env, NULL, NULL, &v, &valid_end);
	} else {
		/* Checked again under the lock: a file may have appeared since
		 * db_open_dir looked. */
		rc = db_check_not_foreign(db);
		if (!rc && has_files)
			rc = error_set(CESIUM_ECORRUPT,
			               "%s: holds segment or log files but no CURRENT: not a "
			               "database cesium can open safely",
			               db->path);
		if (!rc)
			rc = version_new_empty(&db->env, &v);
	}
	if (rc)
		goto out;
	uint64_t next = v->next_file_number > max_number + 1 ? v->next_file_number : max_number + 1;
	last_seq = v->last_seq;
	rc = memtable_new(db->opts->memtable_size, &recovered);
	if (!rc)
		rc = db_replay_wals(db, wals, nwals, v->log_number, recovered, &last_seq, &chain);
	if (rc)
		goto out;

	/* A fresh MANIFEST at every open: recovery never appends after a
	 * torn record, and old MANIFESTs do not pile up. */
	uint64_t manifest_number = next++;
	uint64_t wal_number = next++;
	uint64_t flush_number = next++;
	bool flush_recovered = memtable_entries(recovered) > 0;
	/* The recovered memtable is flushed before the new WAL is retired, so
	 * the version's log number stays where it was until that flush, whose
	 * edit moves it to wal_number and hands the old WALs to cleanup.
	 *
	 * With nothing recovered, the WALs from log_number on held no complete
	 * record (never written, or only a torn tail that replay discards
	 * anyway), so no log below wal_number holds data the segments lack:
	 * the new MANIFEST's snapshot edit moves log_number to wal_number at
	 * once. manifest_create makes that MANIFEST durable and CURRENT point
	 * at it (fsync, rename, fsync of the directory) before
	 * db_remove_orphans deletes a WAL below it. A crash before the switch
	 * keeps the old MANIFEST and its still-empty WALs, which the next open
	 * retires the same way; a crash after it leaves WALs below log_number,
	 * which the next open's orphan sweep deletes. A crash before the new
	 * WAL exists leaves no log at or above log_number: nothing to replay,
	 * and nothing acknowledged was in one. Without this every open would
	 * leave one more empty WAL behind. */
	if (!flush_recovered && v->log_number < wal_number) {
		struct edit le;
		struct version *nv = NULL;
		edit_init(&le);
		edit_set_log_number(&le, wal_number);
		rc = version_apply(v, &le, NULL, NULL, &nv);
		edit_free(&le);
		if (rc)
			goto out;
		version_unref(v);
		v = nv;
	}
	rc = manifest_create(db->path, manifest_number, v, v->log_number, next, last_seq,
	                     &manifest_fd, &manifest_size);
	if (rc)
		goto out;
	mem_free(manifest);
	manifest = NULL;
	if (!(manifest = filename_manifest(db->path, manifest_number))) {
		rc = error_set(CESIUM_ENOMEM, "out of memory");
		goto out;
	}
	db_remove_orphans(db, v, manifest_number);
	atomic_store(&db->next_file_number, next);
	db->next_seq = last_seq + 1;
	atomic_store(&db->visible_seq, last_seq);

	char *wpath = NULL;
	rc = db_file_path(db, wal_number, "wal", &wpath);
	if (!rc)
		rc = wal_create_after(wpath, db->opts->wal_prealloc_size, chain.last_number,
		                      chain.last_end, &db->wal);
	mem_free(wpath);
	if (rc)
		goto out;
	db->wal_number = wal_number;
	rc = db_memtable_for(db, db->wal, &active);
	if (rc)
		goto out;
	struct db_state *st = db_state_new(active, &recovered, flush_recovered ? 1 : 0, v);
	if (!st) {
		rc = error_set(CESIUM_ENOMEM, "out of memory");
		goto out;
	}
	atomic_store(&db->nsealed, st->nsealed);
	db->active = active;
	atomic_store(&db->current, st);
	rc = db_start_actors(db, v, manifest_fd, manifest, manifest_size);
	manifest_fd = -1;
	if (rc)
		goto out;
	if (flush_recovered) {
		struct flush_request *req = mem_zalloc(sizeof(*req));
		if (!req) {
			rc = error_set(CESIUM_ENOMEM, "out of memory");
			goto out;
		}
		req->msg.type = FLUSH_MSG_MEMTABLE;
		req->mem = recovered;
		memtable_ref(recovered);
		req->file_number = flush_number;
		req->next_log_number = wal_number;
		req->last_seq = last_seq;
		rc = actor_send(&db->flusher->actor, &req->msg);
		if (rc)
			mem_free(req);
	}
out:
	io_close(manifest_fd);
	if (recovered)
		memtable_unref(recovered);
	if (active)
		memtable_unref(active);
	if (v)
		version_unref(v);
	mem_free(wals);
	mem_free(manifest);
	mem_free(cur);
	return rc;
}

static void db_free(cesium_db *db)
{
	/* The background reactor first: its scheduler waits for running
	 * jobs, which need the compactors' reactors still running. */
	if (db->bg)
		reactor_stop(db->bg);
	for (size_t i = 0; i < db->ncompactors; i++)
		if (db->compact_rs[i])
			reactor_stop(db->compact_rs[i]);
	/* From here no actor runs: files released later are left for the
	 * next open's orphan sweep. */
	db->cleaner_ready = false;
	if (db->sched)
		scheduler_fini(db->sched);
	reactor_free(db->bg);
	for (size_t i = 0; i < db->ncompactors; i++) {
		reactor_free(db->compact_rs[i]);
		mem_free(db->compactors[i]);
	}
	mem_free(db->compact_rs);
	mem_free(db->compactors);
	if (db->wal)
		wal_close(db->wal, true);
	for (size_t i = 0; i < db->nsealed_wals; i++)
		wal_close(db->sealed_wals[i].w, false); /* synced by cesium_close */
	db->nsealed_wals = 0;
	db_state_unref(atomic_load(&db->current));
	mem_free(db->sched);
	mem_free(db->flusher);
	mem_free(db->cleaner);
	mem_free(db->prefaulter);
	if (db->cache)
		cache_free(db->cache);
	if (db->opts)
		cesium_options_free(db->opts);
	if (db->lock_fd >= 0)
		io_close(db->lock_fd);
	pthread_mutex_destroy(&db->write_mu);
	pthread_mutex_destroy(&db->state_mu);
	pthread_mutex_destroy(&db->snap_mu);
	pthread_mutex_destroy(&db->compact_mu);
	pthread_mutex_destroy(&db->wal_mu);
	pthread_mutex_destroy(&db->sync_mu);
	pthread_cond_destroy(&db->stall_cv);
	mem_free(db->snaps);
	free(db->path);
	mem_free(db);
}

int cesium_open(const char *path, const cesium_options *o, cesium_db **out)
{
	if (!path || !*path || !out)
		return error_set(CESIUM_EINVAL, "path or out-pointer is NULL or empty");
	*out = NULL;
	error_clear();
	int rc = io_ring_probe();
	if (rc)
		return rc;
	cesium_db *db = mem_zalloc(sizeof(*db));
	if (!db)
		return error_set(CESIUM_ENOMEM, "out of memory");
	db->lock_fd = -1;
	pthread_mutex_init(&db->write_mu, NULL);
	pthread_mutex_init(&db->state_mu, NULL);
	pthread_mutex_init(&db->snap_mu, NULL);
	pthread_mutex_init(&db->compact_mu, NULL);
	pthread_mutex_init(&db->wal_mu, NULL);
	pthread_mutex_init(&db->sync_mu, NULL);
	pthread_cond_init(&db->stall_cv, NULL);
	epoch_init(&db->epoch);
	db->env.file_release = db_file_release;
	db->env.ctx = db;
	db->path = strdup(path);
	if (!db->path) {
		rc = error_set(CESIUM_ENOMEM, "out of memory");
		goto fail;
	}
	rc = options_copy(o, &db->opts);
	if (!rc)
		rc = options_validate(db->opts);
	if (!rc)
		rc = db_open_dir(db);
	if (!rc && db->opts->block_cache_size)
		rc = cache_new(db->opts->block_cache_size, &db->cache);
	if (!rc)
		rc = db_recover(db);
	if (!rc)
		rc = db_write_options_file(db);
	if (rc)
		goto fail;
	db->cleaner_ready = true;
	*out = db;
	return 0;
fail:;
	char msg[ERROR_MSG_MAX];
	snprintf(msg, sizeof(msg), "%s", cesium_errmsg());
	db_free(db);
	error_set(rc, "%s", msg);
	return rc;
}

int cesium_close(cesium_db *db)
{
	if (!db)
		return error_set(CESIUM_EINVAL, "database handle is NULL");
	pthread_mutex_lock(&db->write_mu);
	db->closing = true;
	int rc = db->wal ? db_sync_logs(db) : 0;
	pthread_mutex_unlock(&db->write_mu);
	char msg[ERROR_MSG_MAX];
	snprintf(msg, sizeof(msg), "%s", cesium_errmsg());
	db_free(db);
	if (rc)
		error_set(rc, "%s", msg);
	return rc;
}

/* ---- statistics --------------------------------------------------------- */

/* Resident anonymous memory of the whole process (resident minus
 * file-backed pages, from /proc/self/statm): the heap of cesium and of its
 * host program, without the page cache that mappings make resident. 0 when
 * /proc is not there. */
static uint64_t db_process_anon_bytes(void)
{
	unsigned long long size = 0, resident = 0, shared = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (!f)
		return 0;
	int n = fscanf(f, "%llu %llu %llu", &size, &resident, &shared);
	fclose(f);
	if (n != 3 || shared > resident)
		return 0;
	return (resident - shared) * (uint64_t)sysconf(_SC_PAGESIZE);
}

/*
 * Memory by purpose (docs/options.md, "Memory"): what cesium holds on the
 * heap for each use, then the process's resident anonymous memory, so that
 * the rest (compaction and flush buffers, iterators, the host program) is
 * visible too.
 */
static size_t db_stats_memory(cesium_db *db, const struct db_state *st, char *buf, size_t cap,
                              size_t len)
{
	size_t memtables = memtable_memory_usage(st->active);
	for (size_t i = 0; i < st->nsealed; i++)
		memtables += memtable_memory_usage(st->sealed[i]);
	struct {
		const char *name;
		uint64_t val;
	} m[] = {
	    {"mem_memtables", memtables},
	    {"mem_block_cache", db->cache ? cache_usage(db->cache) : 0},
	    {"mem_index_filter", atomic_load(&db->stats.pinned_bytes)},
	    {"mem_segment_maps", atomic_load(&db->stats.mapped_bytes)},
	    {"mem_process_anon", db_process_anon_bytes()},
	};
	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
		len += (size_t)snprintf(buf + len, len < cap ? cap - len : 0, "%s %llu\n", m[i].name,
		                        (unsigned long long)m[i].val);
	return len;
}

int cesium_stats(cesium_db *db, char **out)
{
	int rc = db_check_open(db);
	if (!rc && !out)
		rc = error_set(CESIUM_EINVAL, "out-pointer is NULL");
	if (rc)
		return rc;
	size_t cap = 8192, len = 0;
	char *buf = mem_alloc(cap);
	if (!buf)
		return error_set(CESIUM_ENOMEM, "out of memory");
#define S(name, val)                                                                              \
	len += (size_t)snprintf(buf + len, len < cap ? cap - len : 0, "%s %llu\n", name,         \
	                        (unsigned long long)(val))
#define A(field) S(#field, atomic_load_explicit(&db->stats.field, memory_order_relaxed))
	A(puts);
	A(deletes);
	A(gets);
	A(get_hits);
	A(writes);
	A(write_groups);
	A(synced_groups);
	A(log_sync_ns);
	A(iters);
	A(seeks);
	A(memtable_waits);
	A(memtable_wait_ns);
	A(flushes);
	A(flush_bytes);
	A(compactions);
	A(compaction_bytes_read);
	A(compaction_bytes_written);
	A(compaction_failures);
	A(wal_bytes);
	A(slowdowns);
	A(slowdown_ns);
	A(stops);
	A(stop_ns);
	S("stall_state", atomic_load_explicit(&db->stall, memory_order_relaxed));
	uint64_t flushed = atomic_load(&db->stats.flush_bytes);
	uint64_t written = flushed + atomic_load(&db->stats.compaction_bytes_written);
	/* Segment bytes written (flushes and compactions) per segment byte
	 * flushed: RocksDB's W-Amp, so the two compare directly. The WAL,
	 * written once per user byte in both engines, is left out. */
	S("write_amplification_milli", flushed ? written * 1000 / flushed : 0);
	if (db->cleaner) {
		S("files_deleted", atomic_load(&db->cleaner->files_deleted));
		S("bytes_freed", atomic_load(&db->cleaner->bytes_freed));
		S("files_pending_deletion", cleanup_pending(db->cleaner));
		S("file_deletion_failures", atomic_load(&db->cleaner->failures));
	}
	if (db->prefaulter) {
		S("wal_prefault_bytes", atomic_load(&db->prefaulter->bytes));
		S("wal_prefault_failures", atomic_load(&db->prefaulter->failures));
		S("wal_prefault_skipped", atomic_load(&db->prefaulter->skipped));
	}
	if (db->sched) {
		struct sched_stats *ss = &db->sched->stats;
		S("compaction_jobs_queued", atomic_load(&ss->jobs_queued));
		S("compaction_jobs_running", atomic_load(&ss->jobs_running));
		S("compaction_jobs_completed", atomic_load(&ss->jobs_completed));
		S("compaction_jobs_failed", atomic_load(&ss->jobs_failed));
		S("compaction_l0_jobs", atomic_load(&ss->l0_jobs));
		S("subcompactions", atomic_load(&ss->subcompactions));
		S("compaction_trivial_moves", atomic_load(&ss->trivial_moves));
		S("compaction_moved_bytes", atomic_load(&ss->moved_bytes));
		S("inflight_files", atomic_load(&ss->inflight_files));
		S("manifest_failures", atomic_load(&ss->manifest_failures));
		S("manifest_rolls", atomic_load(&ss->manifest_rolls));
		S("flush_install_retries", atomic_load(&ss->flush_retries));
		S("compactors", db->ncompactors);
		uint64_t up = db_now_ns() - atomic_load(&ss->start_ns);
		S("compactor_utilization_milli",
		  up && db->ncompactors ? atomic_load(&ss->busy_ns) * 1000 / (up * db->ncompactors) : 0);
		len += (size_t)snprintf(buf + len, len < cap ? cap - len : 0, "workload %s\n",
		                        sched_workload_name(atomic_load(&ss->workload)));
		for (int l = 0; l < VERSION_LEVELS; l++) {
			char name[32];
			snprintf(name, sizeof(name), "level%d_score_milli", l);
			S(name, atomic_load(&ss->score_milli[l]));
		}
	}
	S("visible_seq", atomic_load(&db->visible_seq));
	S("block_cache_usage", db->cache ? cache_usage(db->cache) : 0);
	S("block_cache_hits", db->cache ? cache_hits(db->cache) : 0);
	S("block_cache_misses", db->cache ? cache_misses(db->cache) : 0);
	struct db_state *st = db_state_acquire(db);
	S("memtable_bytes", memtable_memory_usage(st->active));
	S("memtable_log_value_bytes", memtable_held_bytes(st->active));
	S("sealed_memtables", st->nsealed);
	len = db_stats_memory(db, st, buf, cap, len);
	for (int l = 0; l < VERSION_LEVELS; l++) {
		char name[32];
		snprintf(name, sizeof(name), "level%d_segments", l);
		S(name, st->version->nfiles[l]);
		/* From the version readers see, like the segments: the
		 * scheduler's published figures can trail an install. */
		snprintf(name, sizeof(name), "level%d_runs", l);
		S(name, policy_level_runs(st->version, l));
		snprintf(name, sizeof(name), "level%d_bytes", l);
		S(name, version_level_bytes(st->version, l));
	}
	db_state_unref(st);
#undef A
#undef S
	if (len >= cap) {
		mem_free(buf);
		return error_set(CESIUM_ENOMEM, "statistics overflowed their buffer");
	}
	*out = buf;
	return 0;
}
