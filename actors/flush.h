/*
 * flush — the actor that writes a sealed memtable as an L0 segment:
 * pipelined asynchronous writes and one fdatasync on its reactor's ring
 * (compaction/output.h), then a SCHED_MSG_FLUSHED to the scheduler.
 *
 * Memtables are flushed strictly in the order they were sealed (one
 * mailbox, one actor), so the WAL number each flush retires only grows.
 *
 * Messages it takes: FLUSH_MSG_MEMTABLE (from the writer that sealed the
 * memtable, any thread). Sends: SCHED_MSG_FLUSHED.
 */
#ifndef CESIUM_ACTORS_FLUSH_H
#define CESIUM_ACTORS_FLUSH_H

#include <stdint.h>

#include "memtable.h"
#include "reactor.h"

typedef struct cesium_db cesium_db;
struct scheduler;

#define FLUSH_MSG_MEMTABLE 200

struct flush_request {
	struct actor_msg msg;
	memtable *mem;            /* a reference owned by the request */
	uint64_t file_number;     /* the segment to create */
	uint64_t next_log_number; /* first WAL holding none of mem's data */
	uint64_t last_seq;        /* every write in mem has seq <= last_seq */
};

struct flush_actor {
	struct actor actor;
	cesium_db *db;
	struct scheduler *sched;
};

void flush_init(struct flush_actor *f, cesium_db *db, struct scheduler *sched);

#endif
