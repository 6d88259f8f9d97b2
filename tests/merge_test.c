/* Unit tests of core/merge: the merging iterator against a sorted model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cesium.h"
#include "merge.h"
#include "test_util.h"
#include "test_vec.h"

/* One entry of the model: what the merge must yield, in order. */
typedef struct {
	vec_entry e;
	size_t src;
} model_entry;

static int model_cmp(const void *a, const void *b)
{
	const model_entry *x = a, *y = b;
	int c = vec_entry_cmp(&x->e, &y->e);
	if (c != 0)
		return c;
	return x->src < y->src ? -1 : x->src > y->src ? 1 : 0;
}

static void assert_at(iter *m, const model_entry *want)
{
	assert_true(iter_valid(m));
	keys_slice k = iter_key(m), v = iter_value(m);
	assert_int_equal(k.len, want->e.klen);
	assert_memory_equal(k.data, want->e.key, k.len);
	assert_int_equal(v.len, want->e.vlen);
	if (v.len)
		assert_memory_equal(v.data, want->e.val, v.len);
}

/* A random set of sources; the model holds every entry sorted by key, then
 * source index. Keys come from a small space so that sources collide. */
typedef struct {
	vec_list *lists;
	size_t nsrc;
	model_entry *model;
	size_t nmodel;
} random_setup;

static void random_build(random_setup *s, uint64_t *rng)
{
	s->nsrc = 1 + test_rand(rng) % 24;
	s->lists = calloc(s->nsrc, sizeof(*s->lists));
	assert_non_null(s->lists);
	s->nmodel = 0;
	size_t cap = 0;
	s->model = NULL;
	for (size_t i = 0; i < s->nsrc; i++) {
		size_t m = test_rand(rng) % 200;
		for (size_t j = 0; j < m; j++) {
			char ukey[6];
			size_t ulen = test_rand(rng) % 5;
			for (size_t c = 0; c < ulen; c++)
				ukey[c] = (char)('a' + test_rand(rng) % 3);
			uint64_t ns = test_rand(rng) % 3;
			uint64_t seq = test_rand(rng) % 8;
			enum keys_kind kind = (enum keys_kind)(test_rand(rng) % 2);
			size_t klen;
			uint8_t *k = make_ikey(ns, ukey, ulen, seq, kind, &klen);
			/* One source never holds the same internal key twice. */
			bool dup = false;
			for (size_t d = 0; d < s->lists[i].n && !dup; d++)
				dup = s->lists[i].e[d].klen == klen &&
				      memcmp(s->lists[i].e[d].key, k, klen) == 0;
			if (!dup) {
				char val[32];
				int vlen = snprintf(val, sizeof(val), "s%zu-%zu", i, j);
				vl_add_raw(&s->lists[i], k, klen, val, (size_t)vlen);
				if (s->nmodel == cap) {
					cap = cap ? 2 * cap : 64;
					s->model = realloc(s->model, cap * sizeof(*s->model));
					assert_non_null(s->model);
				}
				s->model[s->nmodel].e = s->lists[i].e[s->lists[i].n - 1];
				s->model[s->nmodel].src = i;
				s->nmodel++;
			}
			free(k);
		}
	}
	if (s->nmodel > 0) /* qsort's base must not be NULL, even for 0 items */
		qsort(s->model, s->nmodel, sizeof(*s->model), model_cmp);
}

static iter *random_merge(const random_setup *s)
{
	iter **children = calloc(s->nsrc, sizeof(*children));
	assert_non_null(children);
	for (size_t i = 0; i < s->nsrc; i++)
		children[i] = &vec_from(&s->lists[i])->base;
	iter *m = NULL;
	assert_int_equal(merge_iter_new(children, s->nsrc, &m), 0);
	free(children);
	return m;
}

static void random_free(random_setup *s)
{
	for (size_t i = 0; i < s->nsrc; i++)
		vl_free(&s->lists[i]);
	free(s->lists);
	free(s->model);
}

/* A full scan yields every entry of every source in model order. */
static void test_merge_scan_matches_sorted_model(void **state)
{
	(void)state;
	uint64_t rng = test_seed("merge_scan");
	for (int round = 0; round < 200; round++) {
		random_setup s;
		random_build(&s, &rng);
		iter *m = random_merge(&s);
		iter_seek_first(m);
		for (size_t i = 0; i < s.nmodel; i++) {
			assert_at(m, &s.model[i]);
			iter_next(m);
		}
		assert_false(iter_valid(m));
		assert_int_equal(iter_status(m), 0);
		iter_destroy(m);
		random_free(&s);
	}
}

/* Seeking to a random internal key lands on the first model entry >= it,
 * and the scan continues in model order from there. */
static void test_merge_seek_random_keys(void **state)
{
	(void)state;
	uint64_t rng = test_seed("merge_seek");
	for (int round = 0; round < 100; round++) {
		random_setup s;
		random_build(&s, &rng);
		iter *m = random_merge(&s);
		for (int q = 0; q < 50; q++) {
			char ukey[6];
			size_t ulen = test_rand(&rng) % 5;
			for (size_t c = 0; c < ulen; c++)
				ukey[c] = (char)('a' + test_rand(&rng) % 3);
			size_t klen;
			uint8_t *k = make_ikey(test_rand(&rng) % 4, ukey, ulen, test_rand(&rng) % 9,
			                       (enum keys_kind)(test_rand(&rng) % 2), &klen);
			size_t want = 0;
			while (want < s.nmodel &&
			       keys_compare_ikey(
			           keys_slice_of(s.model[want].e.key, s.model[want].e.klen),
			           keys_slice_of(k, klen)) < 0)
				want++;
			iter_seek(m, keys_slice_of(k, klen));
			for (size_t i = want; i < s.nmodel && i < want + 20; i++) {
				assert_at(m, &s.model[i]);
				iter_next(m);
			}
			if (want + 20 >= s.nmodel)
				assert_false(iter_valid(m));
			free(k);
		}
		iter_destroy(m);
		random_free(&s);
	}
}

/* The same internal key in several sources comes out once per source,
 * lower source index (newer) first. */
static void test_merge_duplicates_lower_index_first(void **state)
{
	(void)state;
	vec_list l[3] = {0};
	vl_add(&l[2], 0, "k", 5, "from2");
	vl_add(&l[0], 0, "k", 5, "from0");
	vl_add(&l[1], 0, "k", 5, "from1");
	vl_add(&l[1], 0, "k", 6, "newer");
	iter *children[3];
	for (int i = 0; i < 3; i++)
		children[i] = &vec_from(&l[i])->base;
	iter *m;
	assert_int_equal(merge_iter_new(children, 3, &m), 0);
	const char *want[] = {"newer", "from0", "from1", "from2"};
	iter_seek_first(m);
	for (int i = 0; i < 4; i++) {
		assert_true(iter_valid(m));
		keys_slice v = iter_value(m);
		assert_int_equal(v.len, strlen(want[i]));
		assert_memory_equal(v.data, want[i], v.len);
		iter_next(m);
	}
	assert_false(iter_valid(m));
	iter_destroy(m);
	for (int i = 0; i < 3; i++)
		vl_free(&l[i]);
}

/* A child failing mid-scan makes the merge invalid with its status even
 * though other children still hold entries. */
static void test_merge_child_error_on_next_propagates(void **state)
{
	(void)state;
	vec_list a = {0}, b = {0};
	vl_add(&a, 0, "a", 1, "1");
	vl_add(&a, 0, "c", 1, "3");
	vl_add(&a, 0, "e", 1, "5");
	vl_add(&b, 0, "b", 1, "2");
	vl_add(&b, 0, "d", 1, "4");
	vec_iter *va = vec_from(&a), *vb = vec_from(&b);
	vb->fail_at = 1; /* fails when it moves past "b" */
	vb->fail_code = CESIUM_EIO;
	iter *children[2] = {&va->base, &vb->base};
	iter *m;
	assert_int_equal(merge_iter_new(children, 2, &m), 0);
	iter_seek_first(m);
	assert_true(iter_valid(m)); /* a */
	iter_next(m);
	assert_true(iter_valid(m)); /* b */
	iter_next(m);
	assert_false(iter_valid(m));
	assert_int_equal(iter_status(m), CESIUM_EIO);
	iter_destroy(m);
	vl_free(&a);
	vl_free(&b);
}

/* Children failing at seek: the merge is invalid and reports the first
 * failing child in child order. */
static void test_merge_child_error_on_seek_reports_first_child(void **state)
{
	(void)state;
	vec_list l = {0};
	vl_add(&l, 0, "a", 1, "1");
	vec_iter *v[4];
	for (int i = 0; i < 4; i++)
		v[i] = vec_from(&l);
	v[1]->fail_at = 0;
	v[1]->fail_code = CESIUM_ECORRUPT;
	v[3]->fail_at = 0;
	v[3]->fail_code = CESIUM_EIO;
	iter *children[4] = {&v[0]->base, &v[1]->base, &v[2]->base, &v[3]->base};
	iter *m;
	assert_int_equal(merge_iter_new(children, 4, &m), 0);
	iter_seek_first(m);
	assert_false(iter_valid(m));
	assert_int_equal(iter_status(m), CESIUM_ECORRUPT);
	iter_destroy(m);
	vl_free(&l);
}

/* A merge of no sources is empty, and of empty sources too. */
static void test_merge_empty(void **state)
{
	(void)state;
	iter *m;
	assert_int_equal(merge_iter_new(NULL, 0, &m), 0);
	iter_seek_first(m);
	assert_false(iter_valid(m));
	assert_int_equal(iter_status(m), 0);
	iter_destroy(m);

	vec_list l = {0};
	iter *children[2] = {&vec_from(&l)->base, &vec_from(&l)->base};
	assert_int_equal(merge_iter_new(children, 2, &m), 0);
	iter_seek_first(m);
	assert_false(iter_valid(m));
	iter_destroy(m);
}

/* Destroying the merge destroys every child it took over. */
static void test_merge_destroy_destroys_children(void **state)
{
	(void)state;
	vec_list l = {0};
	vl_add(&l, 7, "x", 1, "v");
	iter *children[5];
	for (int i = 0; i < 5; i++)
		children[i] = &vec_from(&l)->base;
	iter *m;
	int before = vec_destroyed;
	assert_int_equal(merge_iter_new(children, 5, &m), 0);
	iter_seek_first(m);
	int seen = 0;
	for (; iter_valid(m); iter_next(m))
		seen++;
	assert_int_equal(seen, 5);
	iter_destroy(m);
	assert_int_equal(vec_destroyed - before, 5);
	vl_free(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_merge_scan_matches_sorted_model),
	    cmocka_unit_test(test_merge_seek_random_keys),
	    cmocka_unit_test(test_merge_duplicates_lower_index_first),
	    cmocka_unit_test(test_merge_child_error_on_next_propagates),
	    cmocka_unit_test(test_merge_child_error_on_seek_reports_first_child),
	    cmocka_unit_test(test_merge_empty),
	    cmocka_unit_test(test_merge_destroy_destroys_children),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
