/*
 * scheduler — the actor that alone owns the shape of the LSM-tree: it turns
 * flush and compaction results into version edits, appends them to the
 * MANIFEST (write, then fdatasync, on its ring, without waiting: the
 * edit's completion continues the work), installs each new version,
 * owns the set of segments in flight, serializes L0 compactions, picks jobs
 * (compaction/policy.h) to fill free compactor slots, splits large jobs
 * into subcompactions, decides write stalls and keeps the compaction
 * statistics. A failed MANIFEST append never makes the database read-only:
 * the scheduler starts a new MANIFEST from the installed version (core/
 * manifest.h's manifest_create, synchronous, on its own thread) and the
 * failed edit is retried or its job failed (docs/compaction.md).
 * One edit is in flight at a time; flush installs and job commits that
 * come meanwhile queue behind it in arrival order, so MANIFEST records
 * and version installs keep that order. A job stays running (its inputs
 * in flight) until its edit is installed.
 * Because only this actor touches that state, none of it needs
 * a mutex; other threads read the published figures (struct sched_stats)
 * through relaxed atomics.
 *
 * Messages it takes:
 *   SCHED_MSG_FLUSHED   from the flush actor: a new L0 segment (or none,
 *                       for an empty memtable) and the WAL it retires.
 *                       Installed strictly in arrival order; an install
 *                       whose MANIFEST edit fails stays queued and is
 *                       retried (at once, then with back-off).
 *   SCHED_MSG_COMPACT   from a caller (cesium_compact): merge everything
 *                       into one sorted run at the last non-empty level
 *                       (L3 at least); the caller's waiter is woken then.
 *   SCHED_MSG_PART_DONE from a compactor: one part of a job finished.
 *   (timer)             every SCHED_TICK_NS: pick again (retries after a
 *                       failure's back-off), sample the workload.
 * Messages it sends: COMPACTOR_MSG_PART to compactors.
 */
#ifndef CESIUM_COMPACTION_SCHEDULER_H
#define CESIUM_COMPACTION_SCHEDULER_H

#include <stdint.h>

#include "edit.h"
#include "policy.h"
#include "reactor.h"
#include "version.h"

typedef struct cesium_db cesium_db;
struct waiter;
struct memtable;
struct compactor;

enum sched_msg_type {
	SCHED_MSG_FLUSHED = 1,
	SCHED_MSG_COMPACT,
	SCHED_MSG_PART_DONE,
	SCHED_MSG_START,
};

#define SCHED_MAX_COMPACTORS 64
#define SCHED_TICK_NS (1000u * 1000u * 1000u)
/* Quiet ticks that regular merges wait for a settle, and the runs that
 * call for one however small (scheduler.c). */
#define SCHED_SETTLE_WAIT_TICKS 3u
#define SCHED_SETTLE_RUNS 4u

/* A compaction job: inputs are referenced for the job's lifetime. It runs
 * as one or more parts (subcompactions by key range), committed together
 * in one edit. Owned by the scheduler. */
struct compaction_job {
	struct scheduler *sched;
	struct file_meta **inputs;
	size_t ninputs;
	int level, output_level;
	bool bottommost;
	bool manual;
	bool move; /* a trivial move: no part, the inputs become the outputs */
	uint64_t target_file_size;
	uint64_t run; /* run id of the outputs */
	size_t nparts, parts_done;
	int result;
	char errmsg[512];
	struct edit outputs; /* added files, gathered from the parts */
	uint64_t bytes_read, bytes_written, start_ns;
	struct compaction_job *next; /* the scheduler's running list */
	/* Waiting for its edit (every part done, none failed). */
	struct compaction_job *commit_next;
	uint64_t commit_seq; /* arrival order among queued edits */
};

/* One part of a job: the keys in [lo, hi) (nskeys; NULL: unbounded). */
struct compaction_part {
	struct actor_msg msg;
	struct compaction_job *job;
	struct compactor *compactor;
	uint8_t *lo, *hi;
	size_t lo_len, hi_len;
	uint64_t start_ns; /* when it was handed to its compactor */
	/* Filled by the compactor. */
	int result;
	char errmsg[512];
	struct edit outputs;
	uint64_t bytes_read, bytes_written;
};

/* Figures other threads read (cesium_stats): written by the scheduler only. */
struct sched_stats {
	_Atomic uint64_t jobs_completed, jobs_failed, jobs_running, jobs_queued;
	_Atomic uint64_t subcompactions, busy_ns, l0_jobs;
	_Atomic uint64_t trivial_moves, moved_bytes; /* jobs done by moving files */
	_Atomic uint64_t inflight_files;    /* segments in the in-flight set */
	_Atomic uint64_t manifest_failures; /* MANIFEST appends that failed */
	_Atomic uint64_t manifest_rolls;    /* new MANIFESTs started after one */
	_Atomic uint64_t flush_retries;     /* flush installs tried again */
	_Atomic uint64_t score_milli[VERSION_LEVELS]; /* score x 1000 */
	_Atomic int workload; /* enum sched_workload */
	_Atomic uint64_t start_ns;
};

enum sched_workload {
	SCHED_WORKLOAD_IDLE,
	SCHED_WORKLOAD_READ_HEAVY,
	SCHED_WORKLOAD_WRITE_HEAVY,
	SCHED_WORKLOAD_SCAN_HEAVY,
	SCHED_WORKLOAD_MIXED,
};
const char *sched_workload_name(int w);

struct sched_flushed {
	struct actor_msg msg;
	int result;
	char errmsg[512];
	bool has_file;
	struct file_desc file; /* keys owned by this message */
	uint64_t next_log_number;
	uint64_t last_seq;
	struct sched_flushed *next; /* the scheduler's queue of installs */
	uint64_t seq;               /* arrival order among queued edits */
};

struct sched_compact {
	struct actor_msg msg;
	struct waiter *waiter;
};

struct scheduler {
	struct actor actor;
	cesium_db *db;
	struct compactor **compactors;
	bool *compactor_busy;
	size_t ncompactors;
	struct version *version; /* the installed version (one reference) */
	int manifest_fd;
	int dir_fd; /* the database directory, fsynced before edits adding files */
	char *manifest_path;
	uint64_t manifest_size;
	/* The MANIFEST may disagree with `version` (an append failed, or
	 * was written but not installed): nothing more is appended to it;
	 * the next edit first starts a new MANIFEST from `version`. */
	bool manifest_stale;
	struct version_env *env;

	/* The one edit in flight: its directory fsync, then its MANIFEST
	 * write and fdatasync are on the ring; their completions finish it
	 * (install, then the flush's or the job's follow-up). Exactly one
	 * of flush and job is set while active. */
	struct sched_edit {
		bool active;
		struct io_req dir_sync, write, sync;
		int write_res, sync_res;
		unsigned pending;
		struct edit e;
		struct version *nv; /* what the edit makes (one reference) */
		uint8_t *rec;       /* the encoded record */
		size_t rlen;
		uint64_t old_log; /* a flush: the log number before it */
		struct sched_flushed *flush;
		struct compaction_job *job;
	} edit;
	/* Jobs whose parts all succeeded, waiting for their edit, oldest
	 * first; they stay on the running list meanwhile. */
	struct compaction_job *commit_head, *commit_tail;
	uint64_t edit_seq; /* source of the seq/commit_seq arrival stamps */

	/* Flush results not installed yet, oldest first: installed strictly
	 * in order (each drops the oldest sealed memtable), retried after a
	 * failure with back-off. */
	struct sched_flushed *flush_head, *flush_tail;
	unsigned flush_failures;
	/* A flush failed to write its segment: its memtable stays sealed and
	 * its WAL holds the data until a reopen replays it. Every later flush
	 * result is dropped, never installed: its edit would move log_number
	 * past the failed one's WAL, and the install would drop the oldest
	 * sealed memtable, the failed one, from the read state. */
	bool flush_broken;
	uint64_t flush_retry_ns;

	struct policy_inflight inflight; /* segments that running jobs read */
	struct policy_cursor cursors[VERSION_LEVELS];
	struct compaction_job *running;
	bool l0_running;
	struct sched_compact *manual; /* a cesium_compact waiting its turn */
	uint64_t backoff_until_ns;
	unsigned consecutive_failures;
	int last_failure; /* and its message: what stopped writers get */
	char last_failure_msg[512];
	bool stopping;
	struct io_req tick;
	struct actor_msg start_msg;
	bool tick_armed;
	uint64_t last_gets, last_puts, last_seeks;
	unsigned quiet_ticks; /* ticks in a row that saw no put or delete */
	struct sched_stats stats;
};

/* Takes over the manifest fd (open for appending at manifest_size) and a
 * reference on v. */
int scheduler_init(struct scheduler *s, cesium_db *db, struct version *v, int manifest_fd,
                   const char *manifest_path, uint64_t manifest_size);
/* The compactor actors the scheduler hands parts to (before start). */
int scheduler_set_compactors(struct scheduler *s, struct compactor **c, size_t n);
/* Any thread: arms the tick timer (a message, so that the timer is set
 * from the scheduler's own reactor). */
int scheduler_start(struct scheduler *s);
/* After the reactor stopped. */
void scheduler_fini(struct scheduler *s);

#endif
