/*
 * scheduler — the actor that alone owns the shape of the LSM-tree: it turns
 * flush and compaction results into version edits, appends them to the
 * MANIFEST (write, then fdatasync, on its ring), installs the new version,
 * owns the set of segments in flight, and hands jobs to compactors.
 * Because only this actor touches that state, none of it needs a mutex.
 *
 * Messages it takes:
 *   SCHED_MSG_FLUSHED   from the flush actor: a new L0 segment (or none,
 *                       for an empty memtable) and the WAL it retires.
 *   SCHED_MSG_COMPACT   from a caller (cesium_compact): merge every segment
 *                       into one sorted run at the bottom level; the
 *                       caller's waiter is woken when that is installed.
 *   SCHED_MSG_JOB_DONE  from a compactor: the outputs of a job, or its error.
 * Messages it sends: COMPACTOR_MSG_JOB to a compactor.
 *
 * Compaction picking (scores, tiered and leveled levels) is the compaction
 * issue's work; today only the manual full compaction is scheduled.
 */
#ifndef CESIUM_COMPACTION_SCHEDULER_H
#define CESIUM_COMPACTION_SCHEDULER_H

#include <stdint.h>

#include "edit.h"
#include "reactor.h"
#include "version.h"

typedef struct cesium_db cesium_db;
struct waiter;
struct memtable;
struct compactor;

enum sched_msg_type {
	SCHED_MSG_FLUSHED = 1,
	SCHED_MSG_COMPACT,
	SCHED_MSG_JOB_DONE,
};

/* A compaction job: inputs are referenced for the job's lifetime. */
struct compaction_job {
	struct actor_msg msg;
	struct scheduler *sched;
	struct file_meta **inputs;
	size_t ninputs;
	int output_level;
	bool bottommost;
	/* Filled by the compactor. */
	int result;
	char errmsg[512];
	struct edit outputs; /* added files only */
	uint64_t bytes_read, bytes_written;
};

struct sched_flushed {
	struct actor_msg msg;
	int result;
	char errmsg[512];
	bool has_file;
	struct file_desc file; /* keys owned by this message */
	uint64_t next_log_number;
	uint64_t last_seq;
};

struct sched_compact {
	struct actor_msg msg;
	struct waiter *waiter;
};

struct scheduler {
	struct actor actor;
	cesium_db *db;
	struct compactor *compactor;
	struct version *version; /* the installed version (one reference) */
	int manifest_fd;
	int dir_fd; /* the database directory, fsynced before edits adding files */
	char *manifest_path;
	uint64_t manifest_size;
	unsigned inflight;         /* manifest I/O on the ring */
	struct compaction_job *running;
	struct sched_compact *waiting; /* a cesium_compact waiting for a slot */
	struct version_env *env;
};

/* Takes over the manifest fd (open for appending at manifest_size) and a
 * reference on v. */
int scheduler_init(struct scheduler *s, cesium_db *db, struct version *v, int manifest_fd,
                   const char *manifest_path, uint64_t manifest_size);
/* After the reactor stopped. */
void scheduler_fini(struct scheduler *s);

#endif
