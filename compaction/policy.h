/*
 * policy — which compactions the tree needs, in what order: level scores
 * and job picking. Pure functions over an immutable version and the set of
 * segments already in flight; the scheduler actor is the only caller, so
 * nothing here is shared or locked.
 *
 * The shape (docs/compaction.md has the full rules):
 *   L0      tiered: every flush adds one run (one segment).
 *   L1, L2  tiered: several sorted runs (a run = the segments one job wrote,
 *           sharing file_meta.run); too many runs are merged into one new
 *           run of the next level.
 *   L3..L7  leveled: one sorted run per level; level L3 targets
 *           max_bytes_for_level_base bytes, each next level
 *           level_size_multiplier times more. L7 is the last level.
 *
 * Scores (>= 1 means the level needs a compaction):
 *   L0      runs not in flight / l0_compaction_trigger
 *   L1, L2  runs not in flight / tier_run_trigger
 *   L3..L6  level bytes / level target
 *   L7      0 (nothing below it)
 *
 * Jobs, most urgent level first, never two sharing a segment, never one
 * touching a segment in flight:
 *   L0 -> L1   all L0 segments not in flight; output a new L1 run. At most
 *              one at a time (l0_running).
 *   L0 + L1 -> L1 (folding: on when l0_fold_bytes is set, which the
 *              scheduler does once writes have stopped) the L0 job also
 *              takes every L1 run, if none is in flight and L1 holds at
 *              most l0_fold_bytes; its one output run replaces them all,
 *              so reads look in one run fewer. L0 then scores against a
 *              trigger of 1: the last flush of a load is folded at once
 *              instead of waiting, alone in L0, for more flushes.
 *   L1 -> L2   all L1 runs not in flight; output a new L2 run.
 *   L2 -> L3   all L2 runs not in flight, plus every L3 segment their key
 *              range overlaps; output into L3. Skipped if an overlapping L3
 *              segment is in flight.
 *   Ln -> Ln+1 (n >= 3) one segment of Ln (the first in key order after
 *              the previous pick for that level, wrapping around) whose
 *              overlapping Ln+1 segments are all free, plus those; output
 *              into Ln+1.
 * A job is bottommost when no level below its output level holds a
 * segment: only then may it drop tombstones.
 */
#ifndef CESIUM_COMPACTION_POLICY_H
#define CESIUM_COMPACTION_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "version.h"

#define POLICY_TIERED_LEVELS 3 /* L0, L1, L2 */
#define POLICY_MAX_JOBS 64

struct policy_config {
	uint32_t l0_trigger;           /* l0_compaction_trigger */
	uint32_t tier_run_trigger;     /* runs in L1/L2 that start a merge down */
	uint64_t level_base;           /* max_bytes_for_level_base: target of L3 */
	uint32_t level_multiplier;     /* level_size_multiplier */
	uint64_t target_file_size;     /* output segment size at L0/L1 */
	uint32_t target_file_multiplier; /* growth per level below L1 */
	uint64_t l0_fold_bytes;          /* 0: no folding; see above */
};

/* File numbers in flight: a small open-addressing set. */
struct policy_inflight {
	uint64_t *slots; /* 0 = empty (file numbers start at 1) */
	size_t cap, count;
};

int policy_inflight_init(struct policy_inflight *s);
void policy_inflight_free(struct policy_inflight *s);
int policy_inflight_add(struct policy_inflight *s, uint64_t number);
void policy_inflight_remove(struct policy_inflight *s, uint64_t number);
bool policy_inflight_contains(const struct policy_inflight *s, uint64_t number);

/* Round-robin position of a leveled level (see policy_pick). */
struct policy_cursor {
	uint8_t *key; /* nskey, mem_alloc'ed; NULL = start */
	size_t len;
};
void policy_cursor_free(struct policy_cursor cursors[VERSION_LEVELS]);

struct policy_job {
	int level;        /* input level */
	int output_level;
	double score;     /* of the input level when picked */
	bool bottommost;
	uint64_t target_file_size; /* cut outputs at this size */
	size_t ninputs;
	struct file_meta **inputs; /* borrowed from the version; mem_alloc'ed
	                            * array, freed by policy_job_free */
};

void policy_job_free(struct policy_job *j);

/* Whether j can be done by moving its inputs to the output level as they
 * are (a trivial move): none of them is in the output level and no two
 * share a user key, so a merge would only copy them. Not when the job is
 * bottommost and an input holds tombstones, which a merge would drop. */
bool policy_is_move(const struct policy_job *j);

/* Runs in a level: distinct file_meta.run values (L0: files). */
size_t policy_level_runs(const struct version *v, int level);
/* Target bytes of a leveled level (0 for tiered levels). */
uint64_t policy_level_target(const struct policy_config *c, int level);
/* Output segment size for a level. */
uint64_t policy_target_file_size(const struct policy_config *c, int level);
/* Score of every level. */
void policy_scores(const struct version *v, const struct policy_config *c,
                   const struct policy_inflight *busy, double scores[VERSION_LEVELS]);

/* Picks up to max_jobs non-conflicting jobs, most urgent level first, none
 * touching `busy` (and none sharing an input with another picked job).
 * l0_running: an L0 job is already in flight, so none is picked.
 * cursors (VERSION_LEVELS of them, may be NULL): the round-robin position
 * of each leveled level, owned by the caller; policy_pick moves a level's
 * cursor to the largest nskey of the segment it picked there.
 * Returns 0 and *njobs, or CESIUM_ENOMEM. */
int policy_pick(const struct version *v, const struct policy_config *c,
                const struct policy_inflight *busy, bool l0_running, size_t max_jobs,
                struct policy_job *jobs, size_t *njobs, struct policy_cursor *cursors);


#endif
