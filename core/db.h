/*
 * db — the cesium_db object: open and recovery, the write path (group
 * commit into the WAL, then the memtable), the read path (memtables, then
 * segments level by level), iterators, and close.
 *
 * Threads: every public call runs on the caller's thread. Writers queue on
 * write_mu; the leader of a group appends one WAL record for the whole
 * group and inserts it. Readers take no lock: they enter the read epoch,
 * load `current` (the read state: memtables + version) and leave.
 * The read state is replaced only under state_mu, by writers sealing a
 * memtable and by the scheduler actor installing a version.
 *
 * Background work (flush, compaction, cleanup) runs as actors on reactors
 * (actors/, compaction/); they reach back into the db through the functions
 * below marked "actor side".
 */
#ifndef CESIUM_CORE_DB_H
#define CESIUM_CORE_DB_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "cesium.h"
#include "epoch.h"
#include "error.h"
#include "memtable.h"
#include "park.h"
#include "segment.h"
#include "version.h"

struct wal;
struct cache;
struct reactor;
struct flush_actor;
struct cleanup_actor;
struct prefault_actor;
struct scheduler;
struct compactor;

#define DB_MAX_SEALED 64

/* A sealed memtable waiting for its flush, with the first WAL number that
 * holds none of its data (the manifest's log_number once it is flushed). */
struct db_sealed {
	memtable *mem;
	uint64_t next_log_number;
};

/* What readers see: immutable once published, refcounted for iterators. */
struct db_state {
	_Atomic uint64_t refs;
	memtable *active;
	size_t nsealed;
	memtable *sealed[DB_MAX_SEALED]; /* newest first */
	struct version *version;
};

/* Counters behind cesium_stats; relaxed atomics, updated where they happen. */
struct db_stats {
	_Atomic uint64_t puts, deletes, gets, get_hits, writes, write_groups, synced_groups;
	_Atomic uint64_t log_sync_ns; /* time spent syncing logs for groups */
	/* seeks: positionings of iterators, published DB_SEEK_BATCH at a time
	 * per iterator (the rest when it is freed), so that readers on
	 * several threads do not bounce one counter's line on every seek. */
	_Atomic uint64_t iters, seeks, memtable_waits, memtable_wait_ns;
	_Atomic uint64_t flushes, flush_bytes, compactions, compaction_bytes_read,
	    compaction_bytes_written, compaction_failures;
	_Atomic uint64_t files_deleted, bytes_freed, wal_bytes;
	_Atomic uint64_t slowdowns, slowdown_ns, stops, stop_ns;
	/* Memory by purpose: index, filter and props blocks pinned by open
	 * segment readers, and the bytes of segment data mapped for in-place
	 * reads (virtual; resident pages are page cache the kernel reclaims). */
	_Atomic uint64_t pinned_bytes, mapped_bytes;
};

struct db_writer; /* a caller waiting in the write queue */
struct db_group;  /* a group between its append and its completion */

struct cesium_db {
	char *path;
	cesium_options *opts;
	int lock_fd;
	struct cache *cache;

	/* Write path (write_mu). */
	pthread_mutex_t write_mu;
	pthread_cond_t stall_cv; /* writers waiting for a flush to free a slot */
	struct db_writer *queue_head, *queue_tail;
	struct wal *wal;
	uint64_t wal_number;

	/* Sealed WALs whose memtables are not flushed yet: kept open so that
	 * a sync write (or cesium_sync) can make them durable first, without
	 * the seal itself paying for an fsync. Under wal_mu: sync writers
	 * sync them, the scheduler retires them once flushed. */
	pthread_mutex_t wal_mu;
	struct {
		struct wal *w;
		uint64_t number;
	} sealed_wals[DB_MAX_SEALED];
	size_t nsealed_wals;
	uint64_t next_seq;     /* next sequence number to hand out */
	int bg_error;          /* sticky background error, returned to writers */
	char bg_errmsg[ERROR_MSG_MAX]; /* its message, as the failing thread set it */
	bool bg_poisoned;              /* bg_error is a log's failed fdatasync */
	/* While stall is DB_STALL_FAILING: the last compaction failure,
	 * returned to writers (write_mu). Not sticky. */
	int stall_error;
	char stall_errmsg[ERROR_MSG_MAX];
	bool closing;

	/* Group completion (sync_mu). A leader joins the pending list and
	 * hands the write queue on as soon as its group is in the log and,
	 * unless it waits for a sync, the memtable; a sync group inserts after
	 * the hand-off, while the next leader appends. Groups complete
	 * (publish visible_seq, wake their leader) strictly in list order,
	 * which is sequence order, once inserted and, if they asked, synced.
	 * One leader at a time syncs, for every group appended so far, while
	 * the next groups append. */
	pthread_mutex_t sync_mu;
	struct db_group *pending_head, *pending_tail;
	uint64_t next_gen;             /* write_mu: groups formed so far */
	/* Sync groups whose leader handed the queue on and is still inserting
	 * into the active memtable (db_write); a seal waits for them
	 * (db_wait_inserts), flagging insert_waiter so the last one wakes it. */
	park_word inserting;
	_Atomic bool insert_waiter;
	_Atomic uint64_t appended_gen; /* every group up to it is in the logs */
	uint64_t synced_gen;           /* every group up to it is durable */
	bool syncing;                  /* a leader is in db_sync_logs */
	/* Gathering before a sync (sync_mu): the writers the last sync served
	 * plus those that queued meanwhile estimate how many write with sync
	 * at once (sync_goal); the next syncer waits, at most half as long as
	 * the last sync took, until that many are queued, so that they share
	 * one sync instead of alternating between two. */
	uint32_t sync_waiting; /* writers in sync groups queued since the last sync began */
	uint32_t sync_goal;
	uint64_t sync_last_ns;
	bool sync_gathering;
	park_word sync_gather_word;    /* bumped when sync_goal is reached */
	int sync_error;                /* sticky: a group sync failed */
	char sync_errmsg[ERROR_MSG_MAX];
	int publish_error; /* sticky: a group failed after its append */
	char publish_errmsg[ERROR_MSG_MAX];

	/* Published to readers: the last sequence whose writes are all in the
	 * memtables. release on store / acquire on load, so that a reader that
	 * sees seq N also sees every entry up to N. */
	_Atomic uint64_t visible_seq;

	/* Idle flush (db_idle_check): the write count last seen by a sampling
	 * reader, and since when it has not moved. */
	_Atomic uint64_t idle_writes, idle_since_ns;
	atomic_bool idle_sealing;
	_Atomic uint64_t next_file_number;

	/* Read state. */
	pthread_mutex_t state_mu; /* serializes installers of `current` */
	struct epoch epoch;
	_Atomic(struct db_state *) current;
	/* current's sealed memtable count, for the writers' throttle, which
	 * must not enter the epoch on every write. */
	_Atomic size_t nsealed;
	/* current's active memtable, for the leader's inserts without the
	 * epoch or a reference: set at open and by a seal, under write_mu,
	 * which only a leader does; read by leaders, one at a time (the
	 * queue's hand-off orders them). current's reference keeps it alive
	 * until a later leader seals it. */
	memtable *active;

	/* Open iterators' snapshots (for compaction): under snap_mu. */
	pthread_mutex_t snap_mu;
	uint64_t *snaps;
	size_t nsnaps, snaps_cap;

	pthread_mutex_t compact_mu; /* one cesium_compact at a time */

	/* Actors. */
	struct reactor *bg;          /* flush, scheduler, cleanup */
	struct reactor **compact_rs; /* one per compactor */
	struct compactor **compactors;
	size_t ncompactors;
	struct flush_actor *flusher;
	struct scheduler *sched;
	struct cleanup_actor *cleaner;
	struct prefault_actor *prefaulter; /* populates the WAL's mapping ahead */

	/* The scheduler's stall decision (enum db_stall): relaxed, a hint
	 * that writers read on every write. */
	_Atomic int stall;

	struct version_env env;
	atomic_bool cleaner_ready; /* actors run: released files go to cleanup */

	struct db_stats stats;
};

enum db_stall {
	DB_STALL_NONE,
	DB_STALL_SLOWDOWN, /* each write delayed DB_SLOWDOWN_NS */
	DB_STALL_STOP,     /* writers wait until compaction catches up */
	DB_STALL_FAILING,  /* stopped, and compaction keeps failing: writes fail */
};
#define DB_SLOWDOWN_NS (1000u * 1000u)

/* A test seam: when set, a sync group's leader calls it after handing the
 * write queue on and before its memtable inserts (db_write), so that a test
 * can hold those inserts back while later groups seal. NULL in production. */
extern _Atomic(void (*)(void)) db_late_insert_hook;

/* Actor side (scheduler): what writers must do about L0's size. With
 * DB_STALL_FAILING, err and the calling thread's error message are what
 * writers get back. */
void db_set_stall(cesium_db *db, int stall, int err);

/* Actor side (flush): after its own fdatasync of the sealed log `number`
 * succeeded, whether the values it holds may stay there: CESIUM_EIO when
 * an earlier sync of that log failed (the kernel may have dropped pages
 * that fdatasync then no longer sees as dirty). */
int db_check_kept_log(cesium_db *db, uint64_t number);

/* Actor side (scheduler): closes the sealed WALs numbered below `below`,
 * whose data is now in durable segments; the one numbered `kept` (0: none)
 * stays as the home of a segment's values and loses its unused tail. */
void db_retire_wals(cesium_db *db, uint64_t below, uint64_t kept);

/* Actor side: removes the segments an edit adds (outputs that will never
 * be part of a version), now (unlink) or through the cleanup actor. */
void db_remove_segments(cesium_db *db, const struct edit *added, bool via_cleanup);

/* Actor side: file naming, shared by every module that touches files. */
int db_file_path(const cesium_db *db, uint64_t number, const char *ext, char **out);

/* Actor side (scheduler): publishes `v` as the current version and drops
 * the first `flushed` sealed memtables (oldest), now in segments. Takes a
 * reference on v. Wakes writers waiting for a memtable slot. */
int db_install_version(cesium_db *db, struct version *v, size_t flushed);

/* Actor side: the sequence numbers open iterators still read at, sorted;
 * the caller frees *out with mem_free. */
int db_snapshots(cesium_db *db, uint64_t **out, size_t *n);

/* Actor side: records a background failure, so that writers learn of it. */
void db_set_bg_error(cesium_db *db, int code);

/* Opens (once) the reader of a segment file; caller threads and compactors
 * share it. Returns a borrowed pointer valid while f is referenced. */
int db_file_reader(cesium_db *db, struct file_meta *f, struct seg_reader **out);

/* Caller side, shared with multiget: argument checks (0 or CESIUM_EINVAL
 * with a message). */
int db_check_open(const cesium_db *db);
int db_check_key(const void *key, size_t klen);
/* The nskey of (ns, key) in buf if it fits, else mem_alloc'd (the caller
 * frees it when it is not buf); NULL when out of memory. */
uint8_t *db_nskey(uint8_t *buf, size_t cap, uint64_t ns, const void *key, size_t klen);
/* A mem_alloc'd copy of v (never NULL, even for an empty value). */
int db_copy_value(keys_slice v, void **val, size_t *vlen);
/* A counted reference on the current read state (memtables and version),
 * for readers that may block: iterators and multi_get. Any thread; drop
 * it with db_state_unref. */
struct db_state *db_state_acquire(cesium_db *db);
void db_state_unref(struct db_state *st);

/* Actor side: writer options from the db's options for an output level. */
struct seg_writer_opts db_writer_opts(const cesium_db *db, int level);
/* Fills a file description (keys copied) from a finished segment. */
int db_desc_from_props(const struct seg_props *p, int level, uint64_t number, uint64_t size,
                       struct file_desc *out);

#endif
