/*
 * compactor — the actor that runs compaction jobs: it merges the inputs
 * (segment iterators reading 2 MiB windows with asynchronous reads on this
 * compactor's ring, the next window of each input in flight while the
 * merge consumes the current one, through the merging iterator and the
 * compaction filter of compact_iter.h), cuts outputs at the target segment
 * size, writes them with asynchronous writes and one fdatasync each
 * (output.h, blocking mode), and reports the result to the scheduler.
 *
 * One compactor per reactor; a part runs as one step (one handle call) on
 * that reactor, whose ring only this job uses: the step waits on its own
 * ring for input windows that have not landed and for a free write slot,
 * which stalls no other actor. Readers are opened and output files
 * created with synchronous open calls. On failure every partial output is
 * removed and the tree is left as it was.
 *
 * Messages it takes: COMPACTOR_MSG_PART (a struct compaction_part: one key
 * range of a job, from the scheduler). Sends: SCHED_MSG_PART_DONE (the same
 * part back, with its outputs).
 */
#ifndef CESIUM_COMPACTION_COMPACTOR_H
#define CESIUM_COMPACTION_COMPACTOR_H

#include "reactor.h"
#include "scheduler.h"

#define COMPACTOR_MSG_PART 100

struct compactor {
	struct actor actor;
	cesium_db *db;
	uint64_t jobs_done, jobs_failed;
	/* Input reads submitted on the ring; written by the compactor's
	 * reactor only, read by tests after the work is done. */
	_Atomic uint64_t ring_reads;
	/* Results a full scheduler mailbox refused, in order (linked through
	 * msg.next); resent from the retry timer. */
	struct actor_msg *unsent_head, *unsent_tail;
	struct io_req retry;
};

void compactor_init(struct compactor *c, cesium_db *db);

#endif
