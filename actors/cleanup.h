/*
 * cleanup — the actor that deletes files no version and no reader needs any
 * more (obsolete segments, flushed WALs) with IORING_OP_UNLINKAT, and counts
 * the bytes it frees.
 *
 * Any thread hands it a file with cleanup_push() (lock-free: a Treiber
 * stack plus at most one pending wake-up message). The actor runs on the
 * background reactor; its state (the counters) is written only there and
 * read with relaxed atomics by cesium_stats.
 */
#ifndef CESIUM_ACTORS_CLEANUP_H
#define CESIUM_ACTORS_CLEANUP_H

#include <stdatomic.h>
#include <stdint.h>

#include "reactor.h"

struct cleanup_item;

struct cleanup_actor {
	struct actor actor;
	_Atomic(struct cleanup_item *) pending; /* pushed by any thread */
	atomic_bool kick_queued;                /* a wake-up is in the mailbox */
	struct actor_msg kick;
	unsigned inflight; /* unlinks on the ring (reactor thread only) */
	_Atomic uint64_t files_pushed, files_deleted, bytes_freed, failures;
};

void cleanup_init(struct cleanup_actor *c);
/* Files pushed and not yet deleted (approximate; any thread). */
uint64_t cleanup_pending(const struct cleanup_actor *c);
/* Any thread: schedules path (copied) for deletion; `bytes` is what it frees. */
int cleanup_push(struct cleanup_actor *c, const char *path, uint64_t bytes);

#endif
