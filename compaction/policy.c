#include "policy.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "cesium.h"
#include "keys.h"
#include "mem.h"

#define POLICY_INFLIGHT_MIN_CAP 16
#define POLICY_MAX_FILE_SIZE (UINT64_C(4) << 30)

/* ---- in-flight set ------------------------------------------------------ */

/* File numbers are mostly consecutive: mix them so that linear probing
 * does not degrade into long clusters. */
static size_t policy_hash(uint64_t x, size_t cap)
{
	x ^= x >> 33;
	x *= UINT64_C(0xff51afd7ed558ccd);
	x ^= x >> 33;
	x *= UINT64_C(0xc4ceb9fe1a85ec53);
	x ^= x >> 33;
	return (size_t)x & (cap - 1);
}

static size_t policy_inflight_find(const struct policy_inflight *s, uint64_t number)
{
	size_t mask = s->cap - 1;
	size_t i = policy_hash(number, s->cap);
	while (s->slots[i] != 0 && s->slots[i] != number)
		i = (i + 1) & mask;
	return i;
}

int policy_inflight_init(struct policy_inflight *s)
{
	s->count = 0;
	s->cap = POLICY_INFLIGHT_MIN_CAP;
	s->slots = mem_calloc(s->cap, sizeof(*s->slots));
	if (!s->slots) {
		s->cap = 0;
		return CESIUM_ENOMEM;
	}
	return 0;
}

void policy_inflight_free(struct policy_inflight *s)
{
	mem_free(s->slots);
	s->slots = NULL;
	s->cap = 0;
	s->count = 0;
}

static int policy_inflight_grow(struct policy_inflight *s)
{
	size_t ncap = s->cap ? s->cap * 2 : POLICY_INFLIGHT_MIN_CAP;
	uint64_t *nslots = mem_calloc(ncap, sizeof(*nslots));
	if (!nslots)
		return CESIUM_ENOMEM;
	struct policy_inflight n = {.slots = nslots, .cap = ncap, .count = s->count};
	for (size_t i = 0; i < s->cap; i++)
		if (s->slots[i] != 0)
			nslots[policy_inflight_find(&n, s->slots[i])] = s->slots[i];
	mem_free(s->slots);
	*s = n;
	return 0;
}

int policy_inflight_add(struct policy_inflight *s, uint64_t number)
{
	assert(number != 0);
	/* Keep the load at most one half so that probes stay short. */
	if ((s->count + 1) * 2 > s->cap) {
		int rc = policy_inflight_grow(s);
		if (rc != 0)
			return rc;
	}
	size_t i = policy_inflight_find(s, number);
	if (s->slots[i] == 0) {
		s->slots[i] = number;
		s->count++;
	}
	return 0;
}

/* Backward-shift deletion: no tombstones, so lookups never slow down as
 * jobs come and go. */
void policy_inflight_remove(struct policy_inflight *s, uint64_t number)
{
	if (s->cap == 0 || number == 0)
		return;
	size_t mask = s->cap - 1;
	size_t i = policy_inflight_find(s, number);
	if (s->slots[i] == 0)
		return;
	size_t j = i;
	for (;;) {
		j = (j + 1) & mask;
		if (s->slots[j] == 0)
			break;
		size_t home = policy_hash(s->slots[j], s->cap);
		/* Move slot j into the hole at i unless its home lies in the
		 * cyclic range (i, j]: then it is still reachable from home. */
		bool reachable = i <= j ? (home > i && home <= j) : (home > i || home <= j);
		if (!reachable) {
			s->slots[i] = s->slots[j];
			i = j;
		}
	}
	s->slots[i] = 0;
	s->count--;
}

bool policy_inflight_contains(const struct policy_inflight *s, uint64_t number)
{
	if (!s || s->cap == 0 || number == 0)
		return false;
	return s->slots[policy_inflight_find(s, number)] == number;
}

/* ---- cursors and jobs --------------------------------------------------- */

void policy_cursor_free(struct policy_cursor cursors[VERSION_LEVELS])
{
	for (int l = 0; l < VERSION_LEVELS; l++) {
		mem_free(cursors[l].key);
		cursors[l].key = NULL;
		cursors[l].len = 0;
	}
}

void policy_job_free(struct policy_job *j)
{
	mem_free(j->inputs);
	j->inputs = NULL;
	j->ninputs = 0;
}

/* ---- shape -------------------------------------------------------------- */

static uint64_t policy_mul_sat(uint64_t a, uint64_t b, uint64_t cap)
{
	if (b != 0 && a > cap / b)
		return cap;
	uint64_t r = a * b;
	return r > cap ? cap : r;
}

size_t policy_level_runs(const struct version *v, int level)
{
	size_t n = v->nfiles[level];
	if (level == 0)
		return n;
	if (level >= POLICY_TIERED_LEVELS)
		return n ? 1 : 0;
	/* version_apply keeps a tiered level grouped by run (newest first), so
	 * counting the boundaries counts the distinct runs. */
	size_t runs = 0;
	for (size_t i = 0; i < n; i++)
		if (i == 0 || v->files[level][i]->run != v->files[level][i - 1]->run)
			runs++;
	return runs;
}

uint64_t policy_level_target(const struct policy_config *c, int level)
{
	if (level < POLICY_TIERED_LEVELS)
		return 0;
	uint64_t t = c->level_base;
	for (int l = POLICY_TIERED_LEVELS; l < level; l++)
		t = policy_mul_sat(t, c->level_multiplier ? c->level_multiplier : 1, UINT64_MAX);
	return t;
}

uint64_t policy_target_file_size(const struct policy_config *c, int level)
{
	uint64_t t = c->target_file_size;
	for (int l = 1; l < level; l++)
		t = policy_mul_sat(t, c->target_file_multiplier ? c->target_file_multiplier : 1,
		                   POLICY_MAX_FILE_SIZE);
	return t;
}

static bool policy_taken(const struct policy_inflight *busy, const struct policy_inflight *used,
                         const struct file_meta *f)
{
	return policy_inflight_contains(busy, f->number) ||
	       policy_inflight_contains(used, f->number);
}

/* Tiered levels are scanned in runs: [*start, end) is the run that ends at
 * `end` (files of one run are adjacent). Returns whether all are free. */
static bool policy_run_before(const struct version *v, int level, size_t end, size_t *start,
                              const struct policy_inflight *busy,
                              const struct policy_inflight *used)
{
	struct file_meta **files = v->files[level];
	size_t s = end - 1;
	while (s > 0 && files[s - 1]->run == files[end - 1]->run)
		s--;
	bool free_run = true;
	for (size_t i = s; i < end; i++)
		if (policy_taken(busy, used, files[i]))
			free_run = false;
	*start = s;
	return free_run;
}

/* Whether an L0 job folds L1 in (see policy.h): folding is on, L0 has a
 * segment, and all of L1 is free and no larger than l0_fold_bytes. */
static bool policy_fold(const struct version *v, const struct policy_config *c,
                        const struct policy_inflight *busy, const struct policy_inflight *used)
{
	if (c->l0_fold_bytes == 0 || v->nfiles[0] == 0)
		return false;
	uint64_t bytes = 0;
	for (size_t i = 0; i < v->nfiles[1]; i++) {
		if (policy_taken(busy, used, v->files[1][i]))
			return false;
		bytes += v->files[1][i]->file_size;
	}
	return bytes <= c->l0_fold_bytes;
}

static double policy_ratio(uint64_t n, uint64_t d)
{
	return (double)n / (double)(d ? d : 1);
}

static double policy_level_score(const struct version *v, const struct policy_config *c,
                                 const struct policy_inflight *busy,
                                 const struct policy_inflight *used, int level)
{
	if (level == VERSION_LEVELS - 1)
		return 0;
	struct file_meta **files = v->files[level];
	size_t n = v->nfiles[level];
	if (level < POLICY_TIERED_LEVELS) {
		uint64_t runs = 0;
		size_t end = n;
		while (end > 0) {
			size_t start;
			if (policy_run_before(v, level, end, &start, busy, used))
				runs++;
			end = start;
		}
		uint32_t trigger = level != 0                      ? c->tier_run_trigger
		                   : policy_fold(v, c, busy, used) ? 1
		                                                   : c->l0_trigger;
		return policy_ratio(runs, trigger);
	}
	uint64_t bytes = 0;
	for (size_t i = 0; i < n; i++)
		if (!policy_taken(busy, used, files[i]))
			bytes += files[i]->file_size;
	return policy_ratio(bytes, policy_level_target(c, level));
}

void policy_scores(const struct version *v, const struct policy_config *c,
                   const struct policy_inflight *busy, double scores[VERSION_LEVELS])
{
	for (int l = 0; l < VERSION_LEVELS; l++)
		scores[l] = policy_level_score(v, c, busy, NULL, l);
}

/* ---- picking ------------------------------------------------------------ */

static keys_slice policy_small(const struct file_meta *f)
{
	return keys_ikey_nskey(keys_slice_of(f->smallest, f->smallest_len));
}

static keys_slice policy_large(const struct file_meta *f)
{
	return keys_ikey_nskey(keys_slice_of(f->largest, f->largest_len));
}

static int policy_cmp_smallest(const void *a, const void *b)
{
	const struct file_meta *x = *(struct file_meta *const *)a;
	const struct file_meta *y = *(struct file_meta *const *)b;
	return keys_compare_bytes(policy_small(x), policy_small(y));
}

bool policy_is_move(const struct policy_job *j)
{
	if (j->ninputs == 0)
		return false;
	for (size_t i = 0; i < j->ninputs; i++) {
		const struct file_meta *f = j->inputs[i];
		if (f->level == j->output_level || (j->bottommost && f->tombstones > 0))
			return false;
	}
	struct file_meta **by_key = mem_alloc(j->ninputs * sizeof(*by_key));
	if (!by_key)
		return false; /* a merge does the same job */
	memcpy(by_key, j->inputs, j->ninputs * sizeof(*by_key));
	qsort(by_key, j->ninputs, sizeof(*by_key), policy_cmp_smallest);
	bool disjoint = true;
	for (size_t i = 1; i < j->ninputs && disjoint; i++)
		disjoint =
		    keys_compare_bytes(policy_large(by_key[i - 1]), policy_small(by_key[i])) < 0;
	mem_free(by_key);
	return disjoint;
}

/* Files of a (sorted-run) level whose nskey range meets [lo, hi]:
 * indexes [*first, *last). */
static void policy_overlaps(const struct version *v, int level, keys_slice lo, keys_slice hi,
                            size_t *first, size_t *last)
{
	size_t i = version_find_file(v, level, lo);
	size_t j = i;
	while (j < v->nfiles[level] &&
	       keys_compare_bytes(policy_small(v->files[level][j]), hi) <= 0)
		j++;
	*first = i;
	*last = j;
}

static bool policy_range_free(const struct version *v, int level, size_t first, size_t last,
                              const struct policy_inflight *busy,
                              const struct policy_inflight *used)
{
	for (size_t i = first; i < last; i++)
		if (policy_taken(busy, used, v->files[level][i]))
			return false;
	return true;
}

/* A job may drop tombstones only when nothing older than its inputs can
 * survive it: no level below the output holds a file, and a tiered output
 * level (where the new run sits beside the older ones) is empty. */
static bool policy_bottommost(const struct version *v, int output_level)
{
	if (output_level < POLICY_TIERED_LEVELS && v->nfiles[output_level] != 0)
		return false;
	for (int l = output_level + 1; l < VERSION_LEVELS; l++)
		if (v->nfiles[l] != 0)
			return false;
	return true;
}

struct policy_pick_state {
	const struct version *v;
	const struct policy_config *c;
	const struct policy_inflight *busy;
	struct policy_inflight used;
};

/* Fills job with files [a, b) of `level` and [c0, d) of the next level, and
 * marks them used. */
static int policy_make_job(struct policy_pick_state *st, struct policy_job *job, int level,
                           double score, size_t a, size_t b, size_t c0, size_t d)
{
	const struct version *v = st->v;
	int out = level + 1;
	size_t n = (b - a) + (d - c0);
	struct file_meta **inputs = mem_alloc(n * sizeof(*inputs));
	if (!inputs)
		return CESIUM_ENOMEM;
	size_t k = 0;
	for (size_t i = a; i < b; i++)
		inputs[k++] = v->files[level][i];
	for (size_t i = c0; i < d; i++)
		inputs[k++] = v->files[out][i];
	for (size_t i = 0; i < n; i++) {
		int rc = policy_inflight_add(&st->used, inputs[i]->number);
		if (rc != 0) {
			mem_free(inputs);
			return rc;
		}
	}
	*job = (struct policy_job){
	    .level = level,
	    .output_level = out,
	    .score = score,
	    .bottommost = policy_bottommost(v, out),
	    .target_file_size = policy_target_file_size(st->c, out),
	    .ninputs = n,
	    .inputs = inputs,
	};
	return 0;
}

/* A tiered level: its oldest runs, up to the first one in flight. Taking a
 * newer run while an older one is being merged down would let the older
 * data, still in this level, shadow the newer data below it. */
static int policy_pick_tiered(struct policy_pick_state *st, int level, double score,
                              struct policy_job *job, bool *picked)
{
	const struct version *v = st->v;
	size_t n = v->nfiles[level];
	size_t end = n;
	while (end > 0) {
		size_t start;
		if (!policy_run_before(v, level, end, &start, st->busy, &st->used))
			break;
		end = start;
	}
	*picked = false;
	if (end == n)
		return 0;
	size_t first = 0, last = 0;
	if (level == 0 && policy_fold(v, st->c, st->busy, &st->used)) {
		last = v->nfiles[1];
	} else if (level + 1 >= POLICY_TIERED_LEVELS) {
		struct file_meta **files = v->files[level];
		keys_slice lo = policy_small(files[end]), hi = policy_large(files[end]);
		for (size_t i = end + 1; i < n; i++) {
			if (keys_compare_bytes(policy_small(files[i]), lo) < 0)
				lo = policy_small(files[i]);
			if (keys_compare_bytes(policy_large(files[i]), hi) > 0)
				hi = policy_large(files[i]);
		}
		policy_overlaps(v, level + 1, lo, hi, &first, &last);
		if (!policy_range_free(v, level + 1, first, last, st->busy, &st->used))
			return 0;
	}
	int rc = policy_make_job(st, job, level, score, end, n, first, last);
	if (rc == 0)
		*picked = true;
	return rc;
}

static int policy_cursor_set(struct policy_cursor *cur, keys_slice key)
{
	uint8_t *k = mem_alloc(key.len ? key.len : 1);
	if (!k)
		return CESIUM_ENOMEM;
	memcpy(k, key.data, key.len);
	mem_free(cur->key);
	cur->key = k;
	cur->len = key.len;
	return 0;
}

/* A leveled level: the first free file after the cursor (wrapping) whose
 * next-level overlaps are free too, with those overlaps. */
static int policy_pick_leveled(struct policy_pick_state *st, int level, double score,
                               struct policy_job *job, struct policy_cursor *cur, bool *picked)
{
	const struct version *v = st->v;
	struct file_meta **files = v->files[level];
	size_t n = v->nfiles[level];
	size_t begin = 0;
	*picked = false;
	if (cur && cur->key) {
		keys_slice ck = keys_slice_of(cur->key, cur->len);
		while (begin < n && keys_compare_bytes(policy_small(files[begin]), ck) <= 0)
			begin++;
	}
	for (size_t k = 0; k < n; k++) {
		size_t i = (begin + k) % n;
		if (policy_taken(st->busy, &st->used, files[i]))
			continue;
		size_t first, last;
		policy_overlaps(v, level + 1, policy_small(files[i]), policy_large(files[i]),
		                &first, &last);
		if (!policy_range_free(v, level + 1, first, last, st->busy, &st->used))
			continue;
		if (cur) {
			int rc = policy_cursor_set(cur, policy_large(files[i]));
			if (rc != 0)
				return rc;
		}
		int rc = policy_make_job(st, job, level, score, i, i + 1, first, last);
		if (rc == 0)
			*picked = true;
		return rc;
	}
	return 0;
}

int policy_pick(const struct version *v, const struct policy_config *c,
                const struct policy_inflight *busy, bool l0_running, size_t max_jobs,
                struct policy_job *jobs, size_t *njobs, struct policy_cursor *cursors)
{
	struct policy_pick_state st = {.v = v, .c = c, .busy = busy};
	double scores[VERSION_LEVELS];
	int order[VERSION_LEVELS];
	size_t nj = 0;
	int rc = policy_inflight_init(&st.used);
	if (rc != 0)
		goto out;
	if (max_jobs > POLICY_MAX_JOBS)
		max_jobs = POLICY_MAX_JOBS;
	policy_scores(v, c, busy, scores);
	/* Insertion sort: stable, so equal scores keep the shallower first. */
	for (int l = 0; l < VERSION_LEVELS; l++) {
		int k = l;
		while (k > 0 && scores[order[k - 1]] < scores[l]) {
			order[k] = order[k - 1];
			k--;
		}
		order[k] = l;
	}
	for (int k = 0; k < VERSION_LEVELS && nj < max_jobs; k++) {
		int l = order[k];
		if (scores[l] < 1.0 || l == VERSION_LEVELS - 1)
			break;
		if (l == 0 && l0_running)
			continue;
		bool picked;
		if (l < POLICY_TIERED_LEVELS) {
			rc = policy_pick_tiered(&st, l, scores[l], &jobs[nj], &picked);
			if (rc != 0)
				goto out;
			if (picked)
				nj++;
			continue;
		}
		/* A leveled level may give several jobs, while what is left of
		 * it unpicked still exceeds its target. */
		do {
			rc = policy_pick_leveled(&st, l, scores[l], &jobs[nj],
			                         cursors ? &cursors[l] : NULL, &picked);
			if (rc != 0)
				goto out;
			if (picked)
				nj++;
		} while (picked && nj < max_jobs &&
		         policy_level_score(v, c, busy, &st.used, l) >= 1.0);
	}
out:
	policy_inflight_free(&st.used);
	if (rc != 0) {
		for (size_t i = 0; i < nj; i++)
			policy_job_free(&jobs[i]);
		nj = 0;
	}
	*njobs = nj;
	return rc;
}
