/*
 * output — writes one new segment file on a reactor's ring: entries go
 * through a seg_writer; each full chunk (OUTPUT_CHUNK bytes) is written
 * with an asynchronous write, at most OUTPUT_WINDOW of them in flight;
 * finishing waits for every write, then fdatasyncs the file once.
 * Shared by the flush actor and the compactors: both build segments the
 * same way.
 *
 * Runs on one reactor thread (the one owning `ring`). It waits only on its
 * own ring's completions, so a job blocks its own reactor while it runs,
 * never another thread.
 */
#ifndef CESIUM_COMPACTION_OUTPUT_H
#define CESIUM_COMPACTION_OUTPUT_H

#include <stdint.h>

#include "ring.h"
#include "segment.h"

#define OUTPUT_CHUNK  (1u << 20)
#define OUTPUT_WINDOW 8

struct output {
	struct io_ring *ring;
	seg_writer *writer;
	char *path;
	uint64_t number;
	int fd;
	unsigned inflight;
	int error; /* first failure, sticky */
	uint64_t bytes_written;
};

/* Creates the file (O_EXCL) and the writer. On failure nothing is left. */
int output_open(struct output *o, struct io_ring *ring, const char *path, uint64_t number,
                const struct seg_writer_opts *wo);
int output_add(struct output *o, keys_slice ikey, keys_slice value);
/* Finishes the segment and makes it durable. 0 or the first error. */
int output_finish(struct output *o);
/* Frees the writer and closes the file; unless keep, unlinks it (a failed
 * or abandoned output leaves nothing behind). */
void output_close(struct output *o, bool keep);

#endif
