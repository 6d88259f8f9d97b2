#include <setjmp.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "edit.h"
#include "keys.h"
#include "mem.h"
#include "policy.h"
#include "test_util.h"
#include "version.h"

/* ---- building synthetic versions --------------------------------------- */

/* nskey of user key "k<8 digits>" in namespace 0: byte order = numeric. */
static size_t tk_nskey(uint8_t *out, uint64_t i)
{
	char user[16];
	int n = snprintf(user, sizeof(user), "k%08llu", (unsigned long long)i);
	keys_make_nskey(out, 0, user, (size_t)n);
	return KEYS_NS_SIZE + (size_t)n;
}

static size_t tk_ikey(uint8_t *out, uint64_t i, uint64_t seq)
{
	uint8_t ns[32];
	size_t n = tk_nskey(ns, i);
	keys_make_ikey(out, ns, n, seq, KEYS_KIND_VALUE);
	return n + KEYS_TRAILER_SIZE;
}

/* Adds file `number` covering user keys [lo, hi] to e. run 0: its own. */
static void tk_add(struct edit *e, int level, uint64_t number, uint64_t lo, uint64_t hi,
                   uint64_t size, uint64_t run)
{
	uint8_t s[48], l[48];
	struct file_desc d = {
	    .level = level,
	    .number = number,
	    .file_size = size,
	    .smallest = s,
	    .smallest_len = tk_ikey(s, lo, number * 10 + 1),
	    .largest = l,
	    .largest_len = tk_ikey(l, hi, number * 10),
	    .min_seq = number * 10,
	    .max_seq = number * 10 + 1,
	    .entries = 10,
	    .run = run,
	};
	assert_int_equal(edit_add_file(e, &d), 0);
}

/* Replaces *v by *v with e applied, and empties e. */
static void tk_apply(struct version **v, struct edit *e)
{
	struct version *n = NULL;
	assert_int_equal(version_apply(*v, e, NULL, NULL, &n), 0);
	version_unref(*v);
	*v = n;
	edit_free(e);
	edit_init(e);
}

static struct version *tk_empty(void)
{
	struct version *v = NULL;
	assert_int_equal(version_new_empty(NULL, &v), 0);
	return v;
}

static struct policy_config tk_config(void)
{
	return (struct policy_config){
	    .l0_trigger = 4,
	    .tier_run_trigger = 4,
	    .level_base = 1000,
	    .level_multiplier = 10,
	    .target_file_size = 64,
	    .target_file_multiplier = 2,
	};
}

static bool tk_has(const struct policy_job *j, uint64_t number)
{
	for (size_t i = 0; i < j->ninputs; i++)
		if (j->inputs[i]->number == number)
			return true;
	return false;
}

static void tk_free_jobs(struct policy_job *jobs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		policy_job_free(&jobs[i]);
}

static const double eps = 1e-9;

/* cmocka 1.1 has no assert_double_equal. */
#define assert_double_equal(a, b, e) assert_true(fabs((double)(a) - (double)(b)) <= (e))

/* ---- shape and scores --------------------------------------------------- */

/* Level targets grow by the multiplier from L3 on and saturate. */
static void test_level_targets_and_file_sizes(void **state)
{
	(void)state;
	struct policy_config c = tk_config();
	assert_int_equal(policy_level_target(&c, 0), 0);
	assert_int_equal(policy_level_target(&c, 2), 0);
	assert_int_equal(policy_level_target(&c, 3), 1000);
	assert_int_equal(policy_level_target(&c, 4), 10000);
	assert_int_equal(policy_level_target(&c, 7), 10000000);
	c.level_base = UINT64_MAX / 4;
	assert_int_equal(policy_level_target(&c, 5), UINT64_MAX);

	c = tk_config();
	assert_int_equal(policy_target_file_size(&c, 0), 64);
	assert_int_equal(policy_target_file_size(&c, 1), 64);
	assert_int_equal(policy_target_file_size(&c, 2), 128);
	assert_int_equal(policy_target_file_size(&c, 7), 64 << 6);
	c.target_file_size = UINT64_C(1) << 31;
	assert_int_equal(policy_target_file_size(&c, 2), UINT64_C(4) << 30);
	assert_int_equal(policy_target_file_size(&c, 7), UINT64_C(4) << 30);
}

/* L0 scores files against the trigger, L1 distinct runs, L3 bytes against
 * the base, L4 against base * multiplier, L7 never. */
static void test_scores_per_level(void **state)
{
	(void)state;
	struct policy_config c = tk_config();
	struct version *v = tk_empty();
	struct edit e;
	edit_init(&e);
	for (uint64_t i = 1; i <= 3; i++)
		tk_add(&e, 0, i, 0, 100, 10, 0);
	/* L1: run 10 has three files, run 20 two, run 30 one. */
	tk_add(&e, 1, 10, 0, 9, 10, 10);
	tk_add(&e, 1, 11, 10, 19, 10, 10);
	tk_add(&e, 1, 12, 20, 29, 10, 10);
	tk_add(&e, 1, 20, 0, 9, 10, 20);
	tk_add(&e, 1, 21, 10, 19, 10, 20);
	tk_add(&e, 1, 30, 5, 50, 10, 30);
	tk_add(&e, 3, 40, 0, 9, 700, 0);
	tk_add(&e, 3, 41, 10, 19, 800, 0);
	tk_add(&e, 4, 50, 0, 19, 5000, 0);
	tk_add(&e, 7, 60, 0, 19, 1u << 30, 0);
	tk_apply(&v, &e);

	assert_int_equal(policy_level_runs(v, 0), 3);
	assert_int_equal(policy_level_runs(v, 1), 3);
	assert_int_equal(policy_level_runs(v, 2), 0);
	assert_int_equal(policy_level_runs(v, 3), 1);
	assert_int_equal(policy_level_runs(v, 5), 0);

	struct policy_inflight busy;
	assert_int_equal(policy_inflight_init(&busy), 0);
	double s[VERSION_LEVELS];
	policy_scores(v, &c, &busy, s);
	assert_double_equal(s[0], 0.75, eps);
	assert_double_equal(s[1], 0.75, eps);
	assert_double_equal(s[2], 0.0, eps);
	assert_double_equal(s[3], 1.5, eps);
	assert_double_equal(s[4], 0.5, eps);
	assert_double_equal(s[7], 0.0, eps);

	/* In-flight files do not count: one busy file takes its whole run. */
	assert_int_equal(policy_inflight_add(&busy, 1), 0);
	assert_int_equal(policy_inflight_add(&busy, 11), 0);
	assert_int_equal(policy_inflight_add(&busy, 41), 0);
	policy_scores(v, &c, &busy, s);
	assert_double_equal(s[0], 0.5, eps);
	assert_double_equal(s[1], 0.5, eps);
	assert_double_equal(s[3], 0.7, eps);

	policy_inflight_free(&busy);
	version_unref(v);
}

/* ---- picking ------------------------------------------------------------ */

/* The most urgent level is picked first; equal scores go shallower first. */
static void test_pick_highest_score_first_ties_shallower(void **state)
{
	(void)state;
	struct policy_config c = tk_config();
	c.l0_trigger = 2;
	struct version *v = tk_empty();
	struct edit e;
	edit_init(&e);
	/* L0 score 2 (4 files / 2), L3 score 3. */
	for (uint64_t i = 1; i <= 4; i++)
		tk_add(&e, 0, i, 0, 100, 10, 0);
	tk_add(&e, 3, 10, 0, 9, 1500, 0);
	tk_add(&e, 3, 11, 10, 19, 1500, 0);
	tk_apply(&v, &e);

	struct policy_job jobs[8];
	size_t n = 0;
	assert_int_equal(policy_pick(v, &c, NULL, false, 8, jobs, &n, NULL), 0);
	assert_true(n >= 2);
	assert_int_equal(jobs[0].level, 3);
	assert_double_equal(jobs[0].score, 3.0, eps);
	assert_int_equal(jobs[n - 1].level, 0);
	assert_int_equal(jobs[n - 1].output_level, 1);
	assert_int_equal(jobs[n - 1].ninputs, 4);
	tk_free_jobs(jobs, n);

	/* Now L0 and L3 both score 2: L0 goes first. */
	assert_int_equal(edit_delete_file(&e, 3, 11), 0);
	tk_add(&e, 3, 11, 10, 19, 500, 0);
	tk_apply(&v, &e);
	double s[VERSION_LEVELS];
	policy_scores(v, &c, NULL, s);
	assert_double_equal(s[0], s[3], eps);
	assert_int_equal(policy_pick(v, &c, NULL, false, 1, jobs, &n, NULL), 0);
	assert_int_equal(n, 1);
	assert_int_equal(jobs[0].level, 0);
	tk_free_jobs(jobs, n);
	version_unref(v);
}

/* With an L0 job running none is picked; otherwise exactly one. */
static void test_l0_jobs_serialized(void **state)
{
	(void)state;
	struct policy_config c = tk_config();
	struct version *v = tk_empty();
	struct edit e;
	edit_init(&e);
	for (uint64_t i = 1; i <= 20; i++)
		tk_add(&e, 0, i, i * 10, i * 10 + 5, 10, 0);
	tk_apply(&v, &e);

	struct policy_job jobs[POLICY_MAX_JOBS];
	size_t n = 99;
	assert_int_equal(policy_pick(v, &c, NULL, true, POLICY_MAX_JOBS, jobs, &n, NULL), 0);
	assert_int_equal(n, 0);
	assert_int_equal(policy_pick(v, &c, NULL, false, POLICY_MAX_JOBS, jobs, &n, NULL), 0);
	assert_int_equal(n, 1);
	assert_int_equal(jobs[0].level, 0);
	assert_int_equal(jobs[0].ninputs, 20);
	assert_int_equal(jobs[0].target_file_size, 64);
	tk_free_jobs(jobs, n);
	version_unref(v);
}

/* With folding on, one L0 segment is enough for a job, and the job takes
 * all of L1 along; not when L1 is too large or partly in flight. */
static void test_l0_folds_into_small_l1(void **state)
{
	(void)state;
	struct policy_config c = tk_config();
	struct version *v = tk_empty();
	struct edit e;
	edit_init(&e);
	tk_add(&e, 0, 5, 0, 100, 10, 0);
	tk_add(&e, 1, 2, 0, 50, 30, 2);
	tk_add(&e, 1, 3, 51, 100, 30, 2);
	tk_add(&e, 2, 1, 0, 100, 10, 1);
	tk_apply(&v, &e);
	struct policy_job jobs[POLICY_MAX_JOBS];
	size_t n = 99;

	/* Off: one L0 run of a trigger of 4. */
	assert_int_equal(policy_pick(v, &c, NULL, false, POLICY_MAX_JOBS, jobs, &n, NULL), 0);
	assert_int_equal(n, 0);

	c.l0_fold_bytes = 60;
	double scores[VERSION_LEVELS];
	policy_scores(v, &c, NULL, scores);
	assert_double_equal(scores[0], 1.0, eps);
	assert_int_equal(policy_pick(v, &c, NULL, false, POLICY_MAX_JOBS, jobs, &n, NULL), 0);
	assert_int_equal(n, 1);
	assert_int_equal(jobs[0].level, 0);
	assert_int_equal(jobs[0].output_level, 1);
	assert_int_equal(jobs[0].ninputs, 3);
	assert_true(tk_has(&jobs[0], 5) && tk_has(&jobs[0], 2) && tk_has(&jobs[0], 3));
	assert_false(jobs[0].bottommost);
	assert_false(policy_is_move(&jobs[0]));
	tk_free_jobs(jobs, n);
	/* Serialized like any L0 job. */
	assert_int_equal(policy_pick(v, &c, NULL, true, POLICY_MAX_JOBS, jobs, &n, NULL), 0);
	assert_int_equal(n, 0);

	/* L1 over the bound: L0 waits for its usual trigger. */
	c.l0_fold_bytes = 59;
	assert_int_equal(policy_pick(v, &c, NULL, false, POLICY_MAX_JOBS, jobs, &n, NULL), 0);
	assert_int_equal(n, 0);

	/* Part of L1 in flight: no fold, and no new L1 run beside it. */
	c.l0_fold_bytes = 60;
	struct policy_inflight busy;
	assert_int_equal(policy_inflight_init(&busy), 0);
	assert_int_equal(policy_inflight_add(&busy, 3), 0);
	assert_int_equal(policy_pick(v, &c, &busy, false, POLICY_MAX_JOBS, jobs, &n, NULL), 0);
	assert_int_equal(n, 0);
	policy_inflight_free(&busy);
	version_unref(v);
}

/* No more jobs than max_jobs, even when more levels need one. */
static void test_pick_respects_slots(void **state)
{
	(void)state;
	struct policy_config c = tk_config();
	struct version *v = tk_empty();
	struct edit e;
	edit_init(&e);
	for (uint64_t i = 1; i <= 8; i++)
		tk_add(&e, 0, i, 0, 100, 10, 0);
	for (uint64_t i = 0; i < 10; i++)
		tk_add(&e, 3, 100 + i, i * 10, i * 10 + 9, 500, 0);
	for (uint64_t i = 0; i < 10; i++)
		tk_add(&e, 4, 200 + i, i * 10 + 5, i * 10 + 9, 5000, 0);
	tk_apply(&v, &e);

	struct policy_job jobs[POLICY_MAX_JOBS];
	size_t n;
	for (size_t slots = 0; slots <= 2; slots++) {
		assert_int_equal(policy_pick(v, &c, NULL, false, slots, jobs, &n, NULL), 0);
		assert_int_equal(n, slots);
		tk_free_jobs(jobs, n);
	}
	/* Plenty of slots: more than two jobs come out. */
	assert_int_equal(policy_pick(v, &c, NULL, false, 16, jobs, &n, NULL), 0);
	assert_true(n > 2 && n <= 16);
	tk_free_jobs(jobs, n);
	version_unref(v);
}

/* L2 -> L3 takes every overlapping L3 file, and waits when one is busy. */
static void test_l2_job_includes_overlapping_l3(void **state)
{
	(void)state;
	struct policy_config c = tk_config();
	c.tier_run_trigger = 2;
	struct version *v = tk_empty();
	struct edit e;
	edit_init(&e);
	tk_add(&e, 2, 10, 100, 150, 10, 10);
	tk_add(&e, 2, 11, 160, 200, 10, 10);
	tk_add(&e, 2, 20, 120, 180, 10, 20);
	tk_add(&e, 3, 30, 0, 50, 10, 0);    /* below */
	tk_add(&e, 3, 31, 60, 100, 10, 0);  /* touches 100 */
	tk_add(&e, 3, 32, 101, 190, 10, 0); /* inside */
	tk_add(&e, 3, 33, 195, 300, 10, 0); /* crosses 200 */
	tk_add(&e, 3, 34, 201, 400, 10, 0); /* above */
	tk_apply(&v, &e);

	struct policy_job jobs[4];
	size_t n;
	assert_int_equal(policy_pick(v, &c, NULL, false, 4, jobs, &n, NULL), 0);
	assert_int_equal(n, 1);
	assert_int_equal(jobs[0].level, 2);
	assert_int_equal(jobs[0].output_level, 3);
	assert_int_equal(jobs[0].ninputs, 6);
	uint64_t want[] = {10, 11, 20, 31, 32, 33};
	for (size_t i = 0; i < 6; i++)
		assert_true(tk_has(&jobs[0], want[i]));
	assert_false(tk_has(&jobs[0], 30));
	assert_false(tk_has(&jobs[0], 34));
	tk_free_jobs(jobs, n);

	struct policy_inflight busy;
	assert_int_equal(policy_inflight_init(&busy), 0);
	assert_int_equal(policy_inflight_add(&busy, 33), 0);
	assert_int_equal(policy_pick(v, &c, &busy, false, 4, jobs, &n, NULL), 0);
	assert_int_equal(n, 0);
	/* A busy L3 file outside the range does not hold it up. */
	policy_inflight_remove(&busy, 33);
	assert_int_equal(policy_inflight_add(&busy, 34), 0);
	assert_int_equal(policy_pick(v, &c, &busy, false, 4, jobs, &n, NULL), 0);
	assert_int_equal(n, 1);
	tk_free_jobs(jobs, n);
	policy_inflight_free(&busy);
	version_unref(v);
}

/* A job whose inputs share no user key and hold nothing of the output
 * level is a trivial move; overlap, an output-level input, or tombstones
 * in a bottommost job make it a merge. */
static void test_trivial_move_detection(void **state)
{
	(void)state;
	struct policy_config c = tk_config();
	c.l0_trigger = 3;
	struct version *v = tk_empty();
	struct edit e;
	edit_init(&e);
	tk_add(&e, 0, 12, 20, 29, 10, 0);
	tk_add(&e, 0, 10, 0, 9, 10, 0);
	tk_add(&e, 0, 11, 10, 19, 10, 0);
	tk_apply(&v, &e);
	struct policy_job jobs[4];
	size_t n;
	assert_int_equal(policy_pick(v, &c, NULL, false, 4, jobs, &n, NULL), 0);
	assert_int_equal(n, 1);
	assert_int_equal(jobs[0].ninputs, 3);
	assert_true(policy_is_move(&jobs[0]));
	/* Bottommost with a tombstone: the merge would drop it. */
	jobs[0].bottommost = true;
	jobs[0].inputs[1]->tombstones = 1;
	assert_false(policy_is_move(&jobs[0]));
	jobs[0].bottommost = false;
	assert_true(policy_is_move(&jobs[0]));
	jobs[0].inputs[1]->tombstones = 0;
	tk_free_jobs(jobs, n);

	/* One more L0 file whose last key is another's first: a merge. */
	tk_add(&e, 0, 13, 29, 35, 10, 0);
	tk_apply(&v, &e);
	assert_int_equal(policy_pick(v, &c, NULL, false, 4, jobs, &n, NULL), 0);
	assert_int_equal(n, 1);
	assert_int_equal(jobs[0].ninputs, 4);
	assert_false(policy_is_move(&jobs[0]));
	tk_free_jobs(jobs, n);
	version_unref(v);

	/* L2 -> L3 that takes an overlapping L3 segment: a merge; the same
	 * runs over an empty L3: a move. */
	c.tier_run_trigger = 2;
	v = tk_empty();
	tk_add(&e, 2, 20, 100, 150, 10, 20);
	tk_add(&e, 2, 21, 160, 200, 10, 21);
	tk_add(&e, 3, 30, 140, 155, 10, 0);
	tk_apply(&v, &e);
	assert_int_equal(policy_pick(v, &c, NULL, false, 4, jobs, &n, NULL), 0);
	assert_int_equal(n, 1);
	assert_true(tk_has(&jobs[0], 30));
	assert_false(policy_is_move(&jobs[0]));
	tk_free_jobs(jobs, n);
	edit_delete_file(&e, 3, 30);
	tk_apply(&v, &e);
	assert_int_equal(policy_pick(v, &c, NULL, false, 4, jobs, &n, NULL), 0);
	assert_int_equal(n, 1);
	assert_int_equal(jobs[0].output_level, 3);
	assert_true(policy_is_move(&jobs[0]));
	tk_free_jobs(jobs, n);
	version_unref(v);
}

/* A tiered level merges its oldest runs only, up to the first busy one:
 * newer data must never reach the level below before older data. */
static void test_tiered_takes_oldest_free_runs(void **state)
{
	(void)state;
	struct policy_config c = tk_config();
	c.tier_run_trigger = 2;
	struct version *v = tk_empty();
	struct edit e;
	edit_init(&e);
	for (uint64_t r = 1; r <= 4; r++)
		tk_add(&e, 1, r * 10, 0, 100, 10, r * 10);
	tk_apply(&v, &e);
	struct policy_inflight busy;
	assert_int_equal(policy_inflight_init(&busy), 0);
	struct policy_job jobs[4];
	size_t n;

	assert_int_equal(policy_inflight_add(&busy, 30), 0);
	assert_int_equal(policy_pick(v, &c, &busy, false, 4, jobs, &n, NULL), 0);
	assert_int_equal(n, 1);
	assert_int_equal(jobs[0].ninputs, 2);
	assert_true(tk_has(&jobs[0], 10) && tk_has(&jobs[0], 20));
	tk_free_jobs(jobs, n);

	/* The oldest run is being merged: the newer ones wait for it. */
	assert_int_equal(policy_inflight_add(&busy, 10), 0);
	policy_inflight_remove(&busy, 30);
	assert_int_equal(policy_pick(v, &c, &busy, false, 4, jobs, &n, NULL), 0);
	assert_int_equal(n, 0);
	policy_inflight_free(&busy);
	version_unref(v);
}

/* Bottommost only when nothing lies below the output (and a tiered output
 * level holds no older run). */
static void test_bottommost_flag(void **state)
{
	(void)state;
	struct policy_config c = tk_config();
	c.l0_trigger = 1;
	struct version *v = tk_empty();
	struct edit e;
	edit_init(&e);
	tk_add(&e, 0, 1, 0, 100, 10, 0);
	tk_add(&e, 3, 2, 0, 50, 2000, 0);
	tk_apply(&v, &e);

	struct policy_job jobs[4];
	size_t n;
	assert_int_equal(policy_pick(v, &c, NULL, false, 4, jobs, &n, NULL), 0);
	assert_int_equal(n, 2);
	for (size_t i = 0; i < n; i++) {
		if (jobs[i].level == 0)
			assert_false(jobs[i].bottommost); /* L3 below */
		else
			assert_true(jobs[i].bottommost); /* L3 -> L4, nothing below */
	}
	tk_free_jobs(jobs, n);

	/* A file in L6 makes the L3 job not bottommost. */
	tk_add(&e, 6, 3, 500, 600, 10, 0);
	tk_apply(&v, &e);
	assert_int_equal(policy_pick(v, &c, NULL, false, 4, jobs, &n, NULL), 0);
	assert_int_equal(n, 2);
	for (size_t i = 0; i < n; i++)
		assert_false(jobs[i].bottommost);
	tk_free_jobs(jobs, n);

	/* Only L0 and an older L1 run: the new L1 run sits beside it. */
	assert_int_equal(edit_delete_file(&e, 3, 2), 0);
	assert_int_equal(edit_delete_file(&e, 6, 3), 0);
	tk_add(&e, 1, 4, 0, 100, 10, 4);
	tk_apply(&v, &e);
	assert_int_equal(policy_pick(v, &c, NULL, false, 4, jobs, &n, NULL), 0);
	assert_int_equal(n, 1);
	assert_int_equal(jobs[0].level, 0);
	assert_false(jobs[0].bottommost);
	tk_free_jobs(jobs, n);

	/* L0 alone: bottommost. */
	assert_int_equal(edit_delete_file(&e, 1, 4), 0);
	tk_apply(&v, &e);
	assert_int_equal(policy_pick(v, &c, NULL, false, 4, jobs, &n, NULL), 0);
	assert_int_equal(n, 1);
	assert_true(jobs[0].bottommost);
	tk_free_jobs(jobs, n);
	version_unref(v);
}

/* Successive picks at L3 walk its files in key order and wrap around. */
static void test_round_robin_cursor(void **state)
{
	(void)state;
	struct policy_config c = tk_config();
	struct version *v = tk_empty();
	struct edit e;
	edit_init(&e);
	for (uint64_t i = 0; i < 5; i++)
		tk_add(&e, 3, 10 + i, i * 100, i * 100 + 50, 1000, 0);
	tk_add(&e, 4, 30, 110, 320, 100, 0); /* overlaps files 11, 12, 13 */
	tk_apply(&v, &e);

	struct policy_cursor cur[VERSION_LEVELS];
	memset(cur, 0, sizeof(cur));
	struct policy_job jobs[4];
	size_t n;
	uint64_t seen[10];
	for (size_t round = 0; round < 10; round++) {
		assert_int_equal(policy_pick(v, &c, NULL, false, 1, jobs, &n, cur), 0);
		assert_int_equal(n, 1);
		assert_int_equal(jobs[0].level, 3);
		seen[round] = jobs[0].inputs[0]->number;
		assert_non_null(cur[3].key);
		uint8_t want[32];
		size_t wl = tk_nskey(want, (seen[round] - 10) * 100 + 50);
		assert_int_equal(cur[3].len, wl);
		assert_memory_equal(cur[3].key, want, wl);
		tk_free_jobs(jobs, n);
	}
	for (size_t round = 0; round < 10; round++)
		assert_int_equal(seen[round], 10 + round % 5);

	/* A file whose overlap is busy is skipped. */
	struct policy_inflight busy;
	assert_int_equal(policy_inflight_init(&busy), 0);
	assert_int_equal(policy_inflight_add(&busy, 30), 0);
	policy_cursor_free(cur);
	assert_int_equal(policy_pick(v, &c, &busy, false, 1, jobs, &n, cur), 0);
	assert_int_equal(n, 1);
	assert_int_equal(jobs[0].inputs[0]->number, 10);
	tk_free_jobs(jobs, n);
	assert_int_equal(policy_pick(v, &c, &busy, false, 1, jobs, &n, cur), 0);
	assert_int_equal(n, 1);
	assert_int_equal(jobs[0].inputs[0]->number, 14);
	tk_free_jobs(jobs, n);
	policy_inflight_free(&busy);
	policy_cursor_free(cur);
	version_unref(v);
}

/* ---- the in-flight set -------------------------------------------------- */

/* Adds, lookups and removals agree with a plain bitmap through growth,
 * collisions and backward shifts; removing everything empties the set. */
static void test_inflight_set_matches_model(void **state)
{
	(void)state;
	uint64_t seed = test_seed("policy_inflight");
	enum { N = 4096 };
	static bool model[N];
	memset(model, 0, sizeof(model));
	struct policy_inflight s;
	assert_int_equal(policy_inflight_init(&s), 0);
	assert_false(policy_inflight_contains(&s, 0));
	size_t count = 0;
	for (int op = 0; op < 200000; op++) {
		uint64_t x = 1 + test_rand(&seed) % (N - 1);
		if (test_rand(&seed) % 3 != 0) {
			assert_int_equal(policy_inflight_add(&s, x), 0);
			if (!model[x])
				count++;
			model[x] = true;
		} else {
			policy_inflight_remove(&s, x);
			if (model[x])
				count--;
			model[x] = false;
		}
		assert_true(policy_inflight_contains(&s, x) == model[x]);
		assert_int_equal(s.count, count);
	}
	for (uint64_t x = 1; x < N; x++)
		assert_true(policy_inflight_contains(&s, x) == model[x]);
	for (uint64_t x = 1; x < N; x++)
		policy_inflight_remove(&s, x);
	assert_int_equal(s.count, 0);
	for (size_t i = 0; i < s.cap; i++)
		assert_int_equal(s.slots[i], 0);
	/* Strided numbers (multiples of a power of two) and huge ones: all
	 * found through growth, all removable, none invented. */
	for (uint64_t k = 1; k <= 1000; k++) {
		assert_int_equal(policy_inflight_add(&s, k << 20), 0);
		assert_int_equal(policy_inflight_add(&s, UINT64_MAX - k), 0);
	}
	assert_int_equal(s.count, 2000);
	assert_true(s.count * 2 <= s.cap);
	for (uint64_t k = 1; k <= 1000; k++) {
		assert_true(policy_inflight_contains(&s, k << 20));
		assert_true(policy_inflight_contains(&s, UINT64_MAX - k));
		assert_false(policy_inflight_contains(&s, (k << 20) + 1));
	}
	for (uint64_t k = 1; k <= 1000; k += 2)
		policy_inflight_remove(&s, k << 20);
	for (uint64_t k = 1; k <= 1000; k++)
		assert_true(policy_inflight_contains(&s, k << 20) == (k % 2 == 0));
	policy_inflight_free(&s);
}

/* A job's inputs are marked in flight, then removed whether the job
 * succeeded or failed: the set ends empty either way. */
static void test_inflight_cleared_after_job(void **state)
{
	(void)state;
	struct policy_config c = tk_config();
	c.l0_trigger = 1;
	struct version *v = tk_empty();
	struct edit e;
	edit_init(&e);
	for (uint64_t i = 1; i <= 3; i++)
		tk_add(&e, 0, i, 0, 100, 10, 0);
	for (uint64_t i = 0; i < 4; i++)
		tk_add(&e, 3, 10 + i, i * 100, i * 100 + 50, 1000, 0);
	for (uint64_t i = 0; i < 4; i++)
		tk_add(&e, 4, 20 + i, i * 100 + 20, i * 100 + 90, 10, 0);
	tk_apply(&v, &e);

	struct policy_inflight busy;
	assert_int_equal(policy_inflight_init(&busy), 0);
	for (int outcome = 0; outcome < 2; outcome++) {
		struct policy_job jobs[8];
		size_t n;
		assert_int_equal(policy_pick(v, &c, &busy, false, 8, jobs, &n, NULL), 0);
		assert_true(n >= 2);
		for (size_t j = 0; j < n; j++)
			for (size_t i = 0; i < jobs[j].ninputs; i++)
				assert_int_equal(
				    policy_inflight_add(&busy, jobs[j].inputs[i]->number), 0);
		/* While they run nothing more can be picked from those files. */
		size_t n2;
		struct policy_job more[8];
		assert_int_equal(policy_pick(v, &c, &busy, true, 8, more, &n2, NULL), 0);
		for (size_t j = 0; j < n2; j++)
			for (size_t i = 0; i < more[j].ninputs; i++)
				assert_false(
				    policy_inflight_contains(&busy, more[j].inputs[i]->number));
		tk_free_jobs(more, n2);
		/* Success or failure: the scheduler removes the inputs. */
		for (size_t j = 0; j < n; j++)
			for (size_t i = 0; i < jobs[j].ninputs; i++)
				policy_inflight_remove(&busy, jobs[j].inputs[i]->number);
		assert_int_equal(busy.count, 0);
		for (uint64_t x = 1; x < 30; x++)
			assert_false(policy_inflight_contains(&busy, x));
		tk_free_jobs(jobs, n);
	}
	policy_inflight_free(&busy);
	version_unref(v);
}

/* ---- randomized invariants ---------------------------------------------- */

static int tk_cmp_nskey_range(const struct file_meta *f, keys_slice lo, keys_slice hi)
{
	keys_slice s = keys_ikey_nskey(keys_slice_of(f->smallest, f->smallest_len));
	keys_slice l = keys_ikey_nskey(keys_slice_of(f->largest, f->largest_len));
	return keys_compare_bytes(l, lo) >= 0 && keys_compare_bytes(s, hi) <= 0;
}

static struct version *tk_random_version(uint64_t *rng, uint64_t *next_number)
{
	struct version *v = tk_empty();
	struct edit e;
	edit_init(&e);
	uint64_t num = 1;
	for (int l = 0; l < VERSION_LEVELS; l++) {
		if (l == 0) {
			uint64_t nf = test_rand(rng) % 9;
			for (uint64_t i = 0; i < nf; i++) {
				uint64_t lo = test_rand(rng) % 1000;
				tk_add(&e, 0, num, lo, lo + test_rand(rng) % 300, 10, 0);
				num++;
			}
		} else if (l < VERSION_TIERED_LEVELS) {
			uint64_t nr = test_rand(rng) % 7;
			for (uint64_t r = 0; r < nr; r++) {
				uint64_t run = num, k = test_rand(rng) % 200;
				uint64_t nf = 1 + test_rand(rng) % 4;
				for (uint64_t i = 0; i < nf; i++) {
					uint64_t lo = k + test_rand(rng) % 50;
					uint64_t hi = lo + test_rand(rng) % 100;
					tk_add(&e, l, num++, lo, hi, 10, run);
					k = hi + 1;
				}
			}
		} else {
			uint64_t nf = test_rand(rng) % 16, k = test_rand(rng) % 50;
			for (uint64_t i = 0; i < nf; i++) {
				uint64_t lo = k + test_rand(rng) % 60;
				uint64_t hi = lo + test_rand(rng) % 80;
				tk_add(&e, l, num++, lo, hi, 1 + test_rand(rng) % 400, 0);
				k = hi + 1;
			}
		}
	}
	tk_apply(&v, &e);
	*next_number = num;
	return v;
}

/* Over random shapes and busy sets: no two jobs share a file, none touches
 * a busy one, leveled outputs take every overlapping file, L0 stays
 * serialized and the slot count holds. */
static void test_random_pick_invariants(void **state)
{
	(void)state;
	uint64_t rng = test_seed("policy_random");
	struct policy_cursor cur[VERSION_LEVELS];
	memset(cur, 0, sizeof(cur));
	size_t total_jobs = 0;
	for (int round = 0; round < 1000; round++) {
		uint64_t nnum;
		struct version *v = tk_random_version(&rng, &nnum);
		struct policy_config c = {
		    .l0_trigger = (uint32_t)(1 + test_rand(&rng) % 4),
		    .tier_run_trigger = (uint32_t)(1 + test_rand(&rng) % 4),
		    .level_base = 100 + test_rand(&rng) % 1000,
		    .level_multiplier = (uint32_t)(1 + test_rand(&rng) % 4),
		    .target_file_size = 64,
		    .target_file_multiplier = 2,
		    .l0_fold_bytes = test_rand(&rng) % 2 ? test_rand(&rng) % 2000 : 0,
		};
		struct policy_inflight busy;
		assert_int_equal(policy_inflight_init(&busy), 0);
		unsigned pct = (unsigned)(test_rand(&rng) % 40);
		for (uint64_t x = 1; x < nnum; x++)
			if (test_rand(&rng) % 100 < pct)
				assert_int_equal(policy_inflight_add(&busy, x), 0);
		bool l0_running = test_rand(&rng) % 2;
		size_t max_jobs = test_rand(&rng) % 9;
		struct policy_job jobs[POLICY_MAX_JOBS];
		size_t n = 0;
		assert_int_equal(policy_pick(v, &c, &busy, l0_running, max_jobs, jobs, &n, cur), 0);
		assert_true(n <= max_jobs);
		total_jobs += n;

		static bool used[4096];
		memset(used, 0, sizeof(used));
		size_t l0_jobs = 0;
		for (size_t j = 0; j < n; j++) {
			struct policy_job *job = &jobs[j];
			assert_true(job->level >= 0 && job->level < VERSION_LEVELS - 1);
			assert_int_equal(job->output_level, job->level + 1);
			assert_true(job->score >= 1.0);
			assert_int_equal(job->target_file_size,
			                 policy_target_file_size(&c, job->output_level));
			assert_true(job->ninputs > 0);
			if (job->level == 0)
				l0_jobs++;
			bool below = false;
			for (int l = job->output_level + 1; l < VERSION_LEVELS; l++)
				below = below || v->nfiles[l] != 0;
			if (below)
				assert_false(job->bottommost);
			keys_slice lo = {NULL, 0}, hi = {NULL, 0};
			for (size_t i = 0; i < job->ninputs; i++) {
				struct file_meta *f = job->inputs[i];
				assert_true(f->number < 4096);
				assert_false(used[f->number]);
				used[f->number] = true;
				assert_false(policy_inflight_contains(&busy, f->number));
				assert_true(f->level == job->level ||
				            f->level == job->output_level);
				if (f->level != job->level)
					continue;
				keys_slice s =
				    keys_ikey_nskey(keys_slice_of(f->smallest, f->smallest_len));
				keys_slice g =
				    keys_ikey_nskey(keys_slice_of(f->largest, f->largest_len));
				if (!lo.data || keys_compare_bytes(s, lo) < 0)
					lo = s;
				if (!hi.data || keys_compare_bytes(g, hi) > 0)
					hi = g;
			}
			assert_non_null(lo.data);
			int out = job->output_level;
			/* A fold takes all of L1, within its bound. */
			bool fold =
			    job->level == 0 && v->nfiles[1] && tk_has(job, v->files[1][0]->number);
			uint64_t out_bytes = 0;
			for (size_t i = 0; i < v->nfiles[out]; i++) {
				struct file_meta *f = v->files[out][i];
				out_bytes += f->file_size;
				if (out >= VERSION_TIERED_LEVELS)
					assert_true(tk_has(job, f->number) ==
					            tk_cmp_nskey_range(f, lo, hi));
				else
					assert_true(tk_has(job, f->number) == fold);
			}
			if (fold)
				assert_true(c.l0_fold_bytes && out_bytes <= c.l0_fold_bytes);
			/* Tiered inputs are the level's oldest files (its tail). */
			if (job->level < VERSION_TIERED_LEVELS) {
				size_t nl = v->nfiles[job->level], k = 0;
				for (size_t i = 0; i < job->ninputs; i++)
					k += job->inputs[i]->level == job->level;
				for (size_t i = nl - k; i < nl; i++)
					assert_true(tk_has(job, v->files[job->level][i]->number));
			}
		}
		assert_true(l0_jobs <= 1);
		if (l0_running)
			assert_int_equal(l0_jobs, 0);
		tk_free_jobs(jobs, n);
		policy_inflight_free(&busy);
		version_unref(v);
	}
	/* The shapes are busy enough that jobs do come out. */
	assert_true(total_jobs > 500);
	policy_cursor_free(cur);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_level_targets_and_file_sizes),
	    cmocka_unit_test(test_scores_per_level),
	    cmocka_unit_test(test_pick_highest_score_first_ties_shallower),
	    cmocka_unit_test(test_l0_jobs_serialized),
	    cmocka_unit_test(test_l0_folds_into_small_l1),
	    cmocka_unit_test(test_pick_respects_slots),
	    cmocka_unit_test(test_l2_job_includes_overlapping_l3),
	    cmocka_unit_test(test_trivial_move_detection),
	    cmocka_unit_test(test_tiered_takes_oldest_free_runs),
	    cmocka_unit_test(test_bottommost_flag),
	    cmocka_unit_test(test_round_robin_cursor),
	    cmocka_unit_test(test_inflight_set_matches_model),
	    cmocka_unit_test(test_inflight_cleared_after_job),
	    cmocka_unit_test(test_random_pick_invariants),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
