/* Unit tests of compaction/compact_iter: which versions a compaction keeps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cesium.h"
#include "compact_iter.h"
#include "test_util.h"
#include "test_vec.h"

static compact_iter *open_ci(const vec_list *l, const uint64_t *snaps, size_t nsnap,
                             bool bottommost)
{
	compact_iter *ci = NULL;
	assert_int_equal(compact_iter_new(&vec_from(l)->base, snaps, nsnap, bottommost, &ci), 0);
	return ci;
}

/* Renders the remaining output as "key@seq=val" / "key@seq=DEL" items
 * (namespace left out: tests use one per case unless they say so). */
static void render(compact_iter *ci, char *out, size_t cap)
{
	size_t n = 0;
	out[0] = '\0';
	for (; compact_iter_valid(ci); compact_iter_next(ci)) {
		keys_slice k = compact_iter_key(ci), v = compact_iter_value(ci);
		keys_slice nsk = keys_ikey_nskey(k);
		int w;
		if (keys_ikey_kind(k) == KEYS_KIND_DELETE)
			w = snprintf(out + n, cap - n, "%s%.*s@%llu=DEL", n ? "," : "",
			             (int)(nsk.len - KEYS_NS_SIZE),
			             (const char *)nsk.data + KEYS_NS_SIZE,
			             (unsigned long long)keys_ikey_seq(k));
		else
			w = snprintf(
			    out + n, cap - n, "%s%.*s@%llu=%.*s", n ? "," : "",
			    (int)(nsk.len - KEYS_NS_SIZE), (const char *)nsk.data + KEYS_NS_SIZE,
			    (unsigned long long)keys_ikey_seq(k), (int)v.len, (const char *)v.data);
		assert_true(w > 0);
		n += (size_t)w;
		assert_true(n < cap);
	}
	assert_int_equal(compact_iter_status(ci), 0);
}

static void assert_output(const vec_list *l, const uint64_t *snaps, size_t nsnap, bool bottommost,
                          const char *want, compact_iter_stats *stats)
{
	char got[1024];
	compact_iter *ci = open_ci(l, snaps, nsnap, bottommost);
	render(ci, got, sizeof(got));
	assert_string_equal(got, want);
	compact_iter_stats s = compact_iter_get_stats(ci);
	assert_int_equal(s.entries_in, l->n);
	assert_int_equal(s.entries_in, s.entries_out + s.dropped_shadowed + s.dropped_tombstones);
	if (stats)
		*stats = s;
	compact_iter_free(ci);
}

/* Without snapshots only the newest version of each key survives. */
static void test_compact_iter_drops_shadowed_versions(void **state)
{
	(void)state;
	vec_list l = {0};
	vl_add(&l, 0, "a", 3, "a3");
	vl_add(&l, 0, "a", 2, "a2");
	vl_add(&l, 0, "a", 1, "a1");
	vl_add(&l, 0, "b", 9, "b9");
	vl_add(&l, 0, "c", 4, "c4");
	vl_add(&l, 0, "c", 2, NULL);
	compact_iter_stats s;
	assert_output(&l, NULL, 0, false, "a@3=a3,b@9=b9,c@4=c4", &s);
	assert_int_equal(s.entries_out, 3);
	assert_int_equal(s.dropped_shadowed, 3);
	assert_int_equal(s.dropped_tombstones, 0);
	vl_free(&l);
}

/* Each snapshot keeps the newest version at or below it; versions in the
 * same stripe as a newer one go. A snapshot equal to a seq sees it. */
static void test_compact_iter_snapshots_keep_their_versions(void **state)
{
	(void)state;
	vec_list l = {0};
	for (uint64_t seq = 2; seq <= 10; seq += 2) {
		char v[8];
		snprintf(v, sizeof(v), "v%llu", (unsigned long long)seq);
		vl_add(&l, 0, "k", seq, v);
	}
	uint64_t snaps[] = {3, 7};
	compact_iter_stats s;
	assert_output(&l, snaps, 2, false, "k@10=v10,k@6=v6,k@2=v2", &s);
	assert_int_equal(s.dropped_shadowed, 2);
	uint64_t exact[] = {4, 6};
	assert_output(&l, exact, 2, true, "k@10=v10,k@6=v6,k@4=v4", NULL);
	uint64_t dup[] = {1, 5, 5, 100};
	assert_output(&l, dup, 4, false, "k@10=v10,k@4=v4", NULL);
	vl_free(&l);
}

/* Above a deeper level, every kept tombstone is written. */
static void test_compact_iter_keeps_tombstones_when_not_bottommost(void **state)
{
	(void)state;
	vec_list l = {0};
	vl_add(&l, 0, "a", 5, NULL);
	vl_add(&l, 0, "a", 3, "a3");
	vl_add(&l, 0, "b", 4, NULL);
	compact_iter_stats s;
	assert_output(&l, NULL, 0, false, "a@5=DEL,b@4=DEL", &s);
	assert_int_equal(s.dropped_tombstones, 0);
	assert_int_equal(s.dropped_shadowed, 1);
	vl_free(&l);
}

/* At the bottom, a tombstone with no kept value beneath it goes; one that
 * still hides a value some snapshot can see stays. */
static void test_compact_iter_drops_tombstones_at_bottom(void **state)
{
	(void)state;
	vec_list l = {0};
	vl_add(&l, 0, "a", 5, NULL);
	vl_add(&l, 0, "a", 3, "a3");
	vl_add(&l, 0, "b", 4, NULL);
	vl_add(&l, 0, "c", 8, "c8");
	compact_iter_stats s;
	/* No snapshot: a3 is shadowed, so both tombstones hide nothing. */
	assert_output(&l, NULL, 0, true, "c@8=c8", &s);
	assert_int_equal(s.dropped_tombstones, 2);
	assert_int_equal(s.dropped_shadowed, 1);
	/* A snapshot at 4 still reads a3: the tombstone above it stays. */
	uint64_t snap4[] = {4};
	assert_output(&l, snap4, 1, true, "a@5=DEL,a@3=a3,c@8=c8", &s);
	assert_int_equal(s.dropped_tombstones, 1);
	assert_int_equal(s.dropped_shadowed, 0);
	vl_free(&l);
}

/* A chain of tombstones over nothing goes entirely; tombstones below the
 * deepest kept value go, those above it stay. */
static void test_compact_iter_tombstone_chains_at_bottom(void **state)
{
	(void)state;
	vec_list l = {0};
	vl_add(&l, 0, "a", 10, NULL);
	vl_add(&l, 0, "a", 6, NULL);
	vl_add(&l, 0, "b", 10, NULL);
	vl_add(&l, 0, "b", 8, NULL);
	vl_add(&l, 0, "b", 6, "b6");
	vl_add(&l, 0, "b", 3, NULL);
	uint64_t snaps[] = {4, 7, 9};
	compact_iter_stats s;
	assert_output(&l, snaps, 3, true, "b@10=DEL,b@8=DEL,b@6=b6", &s);
	assert_int_equal(s.dropped_tombstones, 3);
	assert_int_equal(s.dropped_shadowed, 0);
	assert_int_equal(s.entries_out, 3);
	assert_output(&l, snaps, 3, false, "a@10=DEL,a@6=DEL,b@10=DEL,b@8=DEL,b@6=b6,b@3=DEL",
	              NULL);
	vl_free(&l);
}

/* Equal user keys in different namespaces are different keys. */
static void test_compact_iter_namespaces_are_separate_keys(void **state)
{
	(void)state;
	vec_list l = {0};
	vl_add(&l, 0, "k", 5, "ns0");
	vl_add(&l, 1, "k", 3, "ns1");
	vl_add(&l, UINT64_MAX, "k", 1, "nsmax");
	assert_output(&l, NULL, 0, true, "k@5=ns0,k@3=ns1,k@1=nsmax", NULL);
	vl_free(&l);
}

/* Seek restarts at a key boundary and the walk is correct from there. */
static void test_compact_iter_seek_to_key(void **state)
{
	(void)state;
	vec_list l = {0};
	vl_add(&l, 2, "a", 5, "a5");
	vl_add(&l, 2, "b", 6, NULL);
	vl_add(&l, 2, "b", 5, "b5");
	vl_add(&l, 2, "b", 4, "b4");
	vl_add(&l, 2, "c", 1, "c1");
	compact_iter *ci = open_ci(&l, NULL, 0, true);
	uint8_t nsk[KEYS_NS_SIZE + 1];
	keys_make_nskey(nsk, 2, "b", 1);
	compact_iter_seek(ci, nsk, sizeof(nsk));
	char got[256];
	render(ci, got, sizeof(got));
	assert_string_equal(got, "c@1=c1");
	uint64_t snaps[] = {5};
	compact_iter_free(ci);
	ci = open_ci(&l, snaps, 1, true);
	compact_iter_seek(ci, nsk, sizeof(nsk));
	render(ci, got, sizeof(got));
	assert_string_equal(got, "b@6=DEL,b@5=b5,c@1=c1");
	compact_iter_free(ci);
	vl_free(&l);
}

/* An input error ends the output and is reported; unsorted snapshots are
 * refused. */
static void test_compact_iter_errors(void **state)
{
	(void)state;
	vec_list l = {0};
	vl_add(&l, 0, "a", 1, "1");
	vl_add(&l, 0, "b", 1, "2");
	vl_add(&l, 0, "c", 1, "3");
	vec_iter *v = vec_from(&l);
	v->fail_at = 2;
	v->fail_code = CESIUM_ECORRUPT;
	compact_iter *ci;
	assert_int_equal(compact_iter_new(&v->base, NULL, 0, true, &ci), 0);
	int n = 0;
	for (; compact_iter_valid(ci); compact_iter_next(ci))
		n++;
	assert_int_equal(n, 2);
	assert_int_equal(compact_iter_status(ci), CESIUM_ECORRUPT);
	compact_iter_free(ci);

	uint64_t bad[] = {5, 3};
	int before = vec_destroyed;
	assert_int_equal(compact_iter_new(&vec_from(&l)->base, bad, 2, false, &ci), CESIUM_EINVAL);
	assert_null(ci);
	assert_int_equal(vec_destroyed - before, 1);
	vl_free(&l);
}

/* What a reader at snapshot `snap` (UINT64_MAX: latest) reads for key k from
 * versions[] (newest first): -1 absent, else the seq of the value. */
typedef struct {
	uint64_t seq;
	bool del;
} version;

static int64_t read_at(const version *v, size_t n, uint64_t snap)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].seq <= snap)
			return v[i].del ? -1 : (int64_t)v[i].seq;
	return -1;
}

/* Random histories: at the bottom, every reader (each snapshot and the
 * latest) reads the same from the output as from the input; above the
 * bottom, each reader also sees the same newest version, tombstone or not.
 * Nothing is kept that no reader can see. */
static void test_compact_iter_random_preserves_reads(void **state)
{
	(void)state;
	uint64_t rng = test_seed("compact_iter_random");
	for (int round = 0; round < 2000; round++) {
		enum { NK = 4, MAXV = 12 };
		version in[NK][MAXV];
		size_t nin[NK] = {0};
		vec_list l = {0};
		for (int k = 0; k < NK; k++) {
			uint64_t seq = 40;
			size_t nv = test_rand(&rng) % MAXV;
			for (size_t i = 0; i < nv; i++) {
				seq -= 1 + test_rand(&rng) % 3;
				in[k][nin[k]].seq = seq;
				in[k][nin[k]].del = test_rand(&rng) % 3 == 0;
				char key[2] = {(char)('a' + k), 0};
				vl_add(&l, 0, key, seq, in[k][nin[k]].del ? NULL : "v");
				nin[k]++;
			}
		}
		uint64_t snaps[5];
		size_t nsnap = test_rand(&rng) % 5;
		for (size_t i = 0; i < nsnap; i++)
			snaps[i] = test_rand(&rng) % 42;
		for (size_t i = 1; i < nsnap; i++) /* insertion sort */
			for (size_t j = i; j > 0 && snaps[j] < snaps[j - 1]; j--) {
				uint64_t t = snaps[j];
				snaps[j] = snaps[j - 1];
				snaps[j - 1] = t;
			}
		bool bottom = test_rand(&rng) % 2;
		compact_iter *ci = open_ci(&l, snaps, nsnap, bottom);
		version out[NK][MAXV];
		size_t nout[NK] = {0};
		keys_slice prev = {0};
		uint8_t prevbuf[64];
		for (; compact_iter_valid(ci); compact_iter_next(ci)) {
			keys_slice k = compact_iter_key(ci);
			if (prev.len)
				assert_true(keys_compare_ikey(prev, k) < 0);
			memcpy(prevbuf, k.data, k.len);
			prev = keys_slice_of(prevbuf, k.len);
			int key = k.data[KEYS_NS_SIZE] - 'a';
			assert_true(key >= 0 && key < NK);
			assert_true(nout[key] < MAXV);
			out[key][nout[key]].seq = keys_ikey_seq(k);
			out[key][nout[key]].del = keys_ikey_kind(k) == KEYS_KIND_DELETE;
			nout[key]++;
		}
		assert_int_equal(compact_iter_status(ci), 0);
		compact_iter_stats s = compact_iter_get_stats(ci);
		assert_int_equal(s.entries_in, l.n);
		assert_int_equal(s.entries_in,
		                 s.entries_out + s.dropped_shadowed + s.dropped_tombstones);
		if (!bottom)
			assert_int_equal(s.dropped_tombstones, 0);
		compact_iter_free(ci);

		for (int k = 0; k < NK; k++) {
			uint64_t readers[6];
			size_t nr = 0;
			for (size_t i = 0; i < nsnap; i++)
				readers[nr++] = snaps[i];
			readers[nr++] = UINT64_MAX;
			for (size_t r = 0; r < nr; r++)
				assert_int_equal(read_at(out[k], nout[k], readers[r]),
				                 read_at(in[k], nin[k], readers[r]));
			/* Every output version is the one some reader lands on. */
			for (size_t i = 0; i < nout[k]; i++) {
				bool seen = false;
				for (size_t r = 0; r < nr && !seen; r++) {
					for (size_t j = 0; j < nin[k]; j++) {
						if (in[k][j].seq <= readers[r]) {
							seen = in[k][j].seq == out[k][i].seq;
							break;
						}
					}
				}
				assert_true(seen);
			}
			if (!bottom) {
				/* Above the bottom, readers must still hit the same
				 * version (a tombstone hides deeper data). */
				for (size_t r = 0; r < nr; r++) {
					int64_t a = -2, b = -2;
					for (size_t j = 0; j < nin[k]; j++)
						if (in[k][j].seq <= readers[r]) {
							a = (int64_t)in[k][j].seq;
							break;
						}
					for (size_t j = 0; j < nout[k]; j++)
						if (out[k][j].seq <= readers[r]) {
							b = (int64_t)out[k][j].seq;
							break;
						}
					assert_int_equal(a, b);
				}
			} else {
				/* At the bottom, no tombstone without a value beneath. */
				for (size_t i = 0; i < nout[k]; i++) {
					if (!out[k][i].del)
						continue;
					bool value_below = false;
					for (size_t j = i + 1; j < nout[k]; j++)
						value_below |= !out[k][j].del;
					assert_true(value_below);
				}
			}
		}
		vl_free(&l);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_compact_iter_drops_shadowed_versions),
	    cmocka_unit_test(test_compact_iter_snapshots_keep_their_versions),
	    cmocka_unit_test(test_compact_iter_keeps_tombstones_when_not_bottommost),
	    cmocka_unit_test(test_compact_iter_drops_tombstones_at_bottom),
	    cmocka_unit_test(test_compact_iter_tombstone_chains_at_bottom),
	    cmocka_unit_test(test_compact_iter_namespaces_are_separate_keys),
	    cmocka_unit_test(test_compact_iter_seek_to_key),
	    cmocka_unit_test(test_compact_iter_errors),
	    cmocka_unit_test(test_compact_iter_random_preserves_reads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
