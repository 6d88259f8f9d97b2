/*
 * output — writes one new segment file on a reactor's ring: entries go
 * through a seg_writer; each full chunk (OUTPUT_CHUNK bytes) is written
 * with an asynchronous write, at most OUTPUT_WINDOW of them in flight;
 * once every write has completed, the file is fdatasynced once.
 * Shared by the flush actor and the compactors: both build segments the
 * same way.
 *
 * Two ways to drive it, both on the one reactor thread that owns `ring`:
 *  - Blocking (the compactors): output_add waits on the ring while the
 *    window is full, output_finish waits for every write and the sync.
 *    They wait only on their own ring's completions, so a job blocks its
 *    own reactor while it runs, never another thread.
 *  - Completion-driven (the flush actor), after output_set_notify: nothing
 *    waits. output_add never waits (the owner stops adding while
 *    output_busy and resumes from the notify callback),
 *    output_finish_start seals the segment and returns; the fdatasync is
 *    issued from the completion of the last write, and output_done turns
 *    true when the sync (or a failure) has landed. notify runs from
 *    io_ring_poll after every write or sync completion, as the last thing
 *    the output does, so it may close the output and reuse its storage.
 *
 * output_close waits for writes still in flight (a completion-driven owner
 * closes only once output_inflight is 0, so it never waits).
 */
#ifndef CESIUM_COMPACTION_OUTPUT_H
#define CESIUM_COMPACTION_OUTPUT_H

#include <stdbool.h>
#include <stdint.h>

#include "ring.h"
#include "segment.h"

#define OUTPUT_CHUNK (1u << 20)
#define OUTPUT_WINDOW 8

struct output;
typedef void (*output_notify_fn)(struct output *o, void *arg);

struct output {
	struct io_ring *ring;
	seg_writer *writer;
	char *path;
	uint64_t number;
	int fd;
	unsigned inflight; /* writes and syncs submitted, not yet completed */
	int error;         /* first failure, sticky */
	uint64_t bytes_written;
	output_notify_fn notify; /* NULL: blocking mode */
	void *notify_arg;
	bool sealed;  /* the writer is finished: no more adds */
	bool syncing; /* the fdatasync has been issued */
	bool synced;  /* and succeeded */
};

/* Creates the file (O_EXCL) and the writer. On failure nothing is left. */
int output_open(struct output *o, struct io_ring *ring, const char *path, uint64_t number,
                const struct seg_writer_opts *wo);
/* Switches o to completion-driven mode; before the first add. */
void output_set_notify(struct output *o, output_notify_fn fn, void *arg);
/* Appends an entry, submitting every full chunk. Blocking mode: waits while
 * more than OUTPUT_WINDOW writes are in flight. 0 or the first error. */
int output_add(struct output *o, keys_slice ikey, keys_slice value);
/* The same for a value kept in the segment's log (seg_writer_add_ref). */
int output_add_ref(struct output *o, keys_slice ikey, const struct seg_log_ref *ref);
/* Completion-driven mode: the window is full; add nothing more until a
 * notify. */
static inline bool output_busy(const struct output *o)
{
	return o->inflight >= OUTPUT_WINDOW;
}
/* Blocking mode: finishes the segment and makes it durable. 0 or the first
 * error. */
int output_finish(struct output *o);
/* Completion-driven mode: finishes the segment and submits what is left;
 * the sync follows from the completions. 0 or the first error (then wait
 * for output_inflight to reach 0 before closing). */
int output_finish_start(struct output *o);
/* Completion-driven mode: sealed, nothing in flight, and synced or failed
 * (o->error says which). */
static inline bool output_done(const struct output *o)
{
	return o->sealed && o->inflight == 0 && (o->synced || o->error);
}
static inline unsigned output_inflight(const struct output *o)
{
	return o->inflight;
}
/* Frees the writer and closes the file; unless keep, unlinks it (a failed
 * or abandoned output leaves nothing behind). */
void output_close(struct output *o, bool keep);

#endif
