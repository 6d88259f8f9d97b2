/*
 * compactor — the actor that runs compaction jobs: it merges the inputs
 * (segment iterators with large read-ahead, through the merging iterator
 * and the compaction filter of compact_iter.h), cuts outputs at the target
 * segment size, writes them with asynchronous writes and one fdatasync each
 * (output.h), and reports the result to the scheduler.
 *
 * One compactor per reactor; a job runs as one step on that reactor, whose
 * ring only this job uses. On failure every partial output is removed and
 * the tree is left as it was.
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
};

void compactor_init(struct compactor *c, cesium_db *db);

#endif
