/*
 * flush — the actor that writes a sealed memtable as an L0 segment:
 * pipelined asynchronous writes and one fdatasync on its reactor's ring
 * (compaction/output.h, completion-driven mode), then a SCHED_MSG_FLUSHED
 * to the scheduler.
 *
 * A flush is a state machine driven by write completions, so that the
 * scheduler and cleanup actors sharing this reactor keep running while a
 * segment is written: the handler starts the flush (encoding entries until
 * OUTPUT_WINDOW writes are in flight) and returns; each write completion
 * encodes and submits more; the completion of the last write issues the
 * fdatasync; its completion reports the result. No handler or callback
 * waits on the ring. What still runs synchronously on the reactor thread:
 * encoding (and compressing) up to OUTPUT_WINDOW chunks per step, and the
 * open, close and (on failure) unlink system calls of the segment file.
 *
 * Values the memtable holds in its log (memtable_add_held: those of at
 * least log_value_min_size bytes) are not written again: the segment
 * refers to them there (segment format version 2), and that log then
 * lives as long as the segment. The log is
 * fdatasynced on the ring while the segment is written, and the result
 * names the log (file.value_log) so that the scheduler keeps it.
 *
 * Memtables are flushed strictly in the order they were sealed: requests
 * that arrive while one is being written wait in the actor's own queue
 * (bounded by max_memtables, since only sealed memtables are sent), and a
 * result the scheduler's full mailbox refuses is resent from a timer
 * before the next flush starts. So the WAL number each flush retires only
 * grows.
 *
 * Messages it takes: FLUSH_MSG_MEMTABLE (from the writer that sealed the
 * memtable, any thread). Sends: SCHED_MSG_FLUSHED.
 * State is touched only on the reactor's thread; `resumed` may be read by
 * tests once the flush they wait for is done.
 */
#ifndef CESIUM_ACTORS_FLUSH_H
#define CESIUM_ACTORS_FLUSH_H

#include <stdbool.h>
#include <stdint.h>

#include "iter.h"
#include "memtable.h"
#include "output.h"
#include "reactor.h"

typedef struct cesium_db cesium_db;
struct scheduler;
struct sched_flushed;

#define FLUSH_MSG_MEMTABLE 200

struct flush_request {
	struct actor_msg msg;
	memtable *mem;            /* a reference owned by the request */
	uint64_t file_number;     /* the segment to create */
	uint64_t log_number;      /* the WAL of mem's writes (0: several, recovered) */
	uint64_t next_log_number; /* first WAL holding none of mem's data */
	uint64_t last_seq;        /* every write in mem has seq <= last_seq */
};

/* The flush in progress. */
struct flush_job {
	struct flush_request *req;
	struct sched_flushed *res; /* the result being built */
	iter *it;                  /* over req->mem, at the next entry to add */
	char *path;
	struct output o;
	bool opened;
	int rc; /* first failure; the job ends once no write is in flight */
	/* With log references (segment format version 2): the segment's
	 * values of at least log_value_min_size bytes stay in the log, which
	 * is fdatasynced (log_sync) alongside the segment's writes, since
	 * the segment's edit may only reach the MANIFEST once the values it
	 * refers to are durable. */
	bool refs;
	int log_fd;
	char *log_path;
	struct io_req log_sync;
	bool log_syncing;
};

struct flush_actor {
	struct actor actor;
	cesium_db *db;
	struct scheduler *sched;
	struct actor_msg *queue_head, *queue_tail; /* requests not yet started */
	bool busy;                                 /* job is live */
	struct flush_job job;
	struct sched_flushed *unsent; /* refused by a full mailbox; resent by retry */
	struct io_req retry;
	uint64_t resumed; /* flush steps run from a write completion */
};

void flush_init(struct flush_actor *f, cesium_db *db, struct scheduler *sched);

#endif
