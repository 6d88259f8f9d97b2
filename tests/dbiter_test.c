/* Unit tests of core/dbiter: snapshots, tombstones, namespaces, bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cesium.h"
#include "dbiter.h"
#include "test_util.h"
#include "test_vec.h"

static dbiter *open_dbiter(const vec_list *l, uint64_t ns, uint64_t snap)
{
	dbiter *d = NULL;
	assert_int_equal(dbiter_new(&vec_from(l)->base, ns, snap, &d), 0);
	return d;
}

/* Asserts the iterator is at key/value (val NULL: any value). */
static void assert_kv(const dbiter *d, const char *key, const char *val)
{
	assert_true(dbiter_valid(d));
	size_t klen, vlen;
	const void *k = dbiter_key(d, &klen);
	assert_int_equal(klen, strlen(key));
	if (klen)
		assert_memory_equal(k, key, klen);
	const void *v = dbiter_value(d, &vlen);
	if (val) {
		assert_int_equal(vlen, strlen(val));
		if (vlen)
			assert_memory_equal(v, val, vlen);
	}
}

/* Scans from seek_first and compares with a "k=v,k=v" listing. */
static void assert_scan(dbiter *d, const char *want)
{
	char got[4096];
	size_t n = 0;
	got[0] = '\0';
	for (dbiter_seek_first(d); dbiter_valid(d); dbiter_next(d)) {
		size_t klen, vlen;
		const char *k = dbiter_key(d, &klen);
		const char *v = dbiter_value(d, &vlen);
		n += (size_t)snprintf(got + n, sizeof(got) - n, "%s%.*s=%.*s", n ? "," : "",
		                      (int)klen, k, (int)vlen, v);
		assert_true(n < sizeof(got));
	}
	assert_int_equal(dbiter_status(d), 0);
	assert_string_equal(got, want);
}

/* Each user key shows its newest version at or below the snapshot. */
static void test_dbiter_snapshot_picks_newest_visible(void **state)
{
	(void)state;
	vec_list l = {0};
	vl_add(&l, 0, "a", 1, "a1");
	vl_add(&l, 0, "a", 5, "a5");
	vl_add(&l, 0, "a", 9, "a9");
	vl_add(&l, 0, "b", 7, "b7");
	vl_add(&l, 0, "c", 3, "c3");
	struct {
		uint64_t snap;
		const char *want;
	} cases[] = {
	    {0, ""},          {1, "a=a1"},           {4, "a=a1,c=c3"},
	    {5, "a=a5,c=c3"}, {8, "a=a5,b=b7,c=c3"}, {UINT64_MAX, "a=a9,b=b7,c=c3"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		dbiter *d = open_dbiter(&l, 0, cases[i].snap);
		assert_scan(d, cases[i].want);
		dbiter_free(d);
	}
	vl_free(&l);
}

/* A tombstone hides older versions, but not from a snapshot taken before
 * it; a newer value resurrects the key. */
static void test_dbiter_tombstones_hide_per_snapshot(void **state)
{
	(void)state;
	vec_list l = {0};
	vl_add(&l, 0, "a", 2, "a2");
	vl_add(&l, 0, "a", 4, NULL);
	vl_add(&l, 0, "a", 6, "a6");
	vl_add(&l, 0, "b", 3, "b3");
	vl_add(&l, 0, "b", 5, NULL);
	vl_add(&l, 0, "c", 1, NULL);
	struct {
		uint64_t snap;
		const char *want;
	} cases[] = {
	    {3, "a=a2,b=b3"}, {4, "b=b3"}, {5, ""}, {6, "a=a6"}, {100, "a=a6"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		dbiter *d = open_dbiter(&l, 0, cases[i].snap);
		assert_scan(d, cases[i].want);
		dbiter_free(d);
	}
	vl_free(&l);
}

/* Keys of neighbouring namespaces, including 0 and UINT64_MAX, never leak
 * into each other. */
static void test_dbiter_namespaces_kept_apart(void **state)
{
	(void)state;
	vec_list l = {0};
	uint64_t nss[] = {0, 1, 2, UINT64_MAX - 1, UINT64_MAX};
	for (size_t i = 0; i < 5; i++) {
		char v[32];
		snprintf(v, sizeof(v), "v%zu", i);
		vl_add(&l, nss[i], "", 1, v);
		vl_add(&l, nss[i], "k", 1, v);
		vl_add(&l, nss[i], "\xff\xff", 1, v);
	}
	for (size_t i = 0; i < 5; i++) {
		char want[128];
		snprintf(want, sizeof(want), "=v%zu,k=v%zu,\xff\xff=v%zu", i, i, i);
		dbiter *d = open_dbiter(&l, nss[i], UINT64_MAX);
		assert_scan(d, want);
		/* Seeking past the last key of the namespace ends it. */
		dbiter_seek(d, "\xff\xff\xff", 3);
		assert_false(dbiter_valid(d));
		assert_int_equal(dbiter_status(d), 0);
		dbiter_free(d);
	}
	dbiter *d = open_dbiter(&l, 3, UINT64_MAX); /* an empty namespace */
	assert_scan(d, "");
	dbiter_free(d);
	vl_free(&l);
}

/* The upper bound is exclusive, can be changed and removed. */
static void test_dbiter_upper_bound_stops(void **state)
{
	(void)state;
	vec_list l = {0};
	vl_add(&l, 4, "a", 1, "1");
	vl_add(&l, 4, "b", 1, "2");
	vl_add(&l, 4, "bb", 1, "3");
	vl_add(&l, 4, "c", 1, "4");
	vl_add(&l, 5, "a", 1, "x");
	dbiter *d = open_dbiter(&l, 4, 10);
	assert_int_equal(dbiter_set_upper_bound(d, "bb", 2), 0);
	assert_scan(d, "a=1,b=2");
	assert_int_equal(dbiter_set_upper_bound(d, "b", 1), 0);
	assert_scan(d, "a=1");
	dbiter_seek(d, "b", 1);
	assert_false(dbiter_valid(d));
	assert_int_equal(dbiter_set_upper_bound(d, "a", 1), 0);
	assert_scan(d, "");
	assert_int_equal(dbiter_set_upper_bound(d, NULL, 0), 0);
	assert_scan(d, "a=1,b=2,bb=3,c=4");
	dbiter_free(d);
	vl_free(&l);
}

/* Seek lands on the first visible key >= the target, skipping deleted and
 * invisible keys, and ends past the last key. */
static void test_dbiter_seek(void **state)
{
	(void)state;
	vec_list l = {0};
	vl_add(&l, 1, "apple", 1, "A");
	vl_add(&l, 1, "banana", 1, "B");
	vl_add(&l, 1, "banana", 2, NULL);
	vl_add(&l, 1, "cherry", 9, "C9");
	vl_add(&l, 1, "cherry", 3, "C3");
	vl_add(&l, 1, "date", 20, "D");
	dbiter *d = open_dbiter(&l, 1, 10);
	dbiter_seek(d, "b", 1);
	assert_kv(d, "cherry", "C9");
	dbiter_seek(d, "apple", 5);
	assert_kv(d, "apple", "A");
	dbiter_seek(d, "", 0);
	assert_kv(d, "apple", "A");
	dbiter_seek(d, "cherry", 6);
	assert_kv(d, "cherry", "C9");
	dbiter_next(d);
	assert_false(dbiter_valid(d)); /* date is newer than the snapshot */
	dbiter_seek(d, "zzz", 3);
	assert_false(dbiter_valid(d));
	assert_int_equal(dbiter_status(d), 0);
	dbiter_free(d);
	d = open_dbiter(&l, 1, 5);
	dbiter_seek(d, "cherry", 6);
	assert_kv(d, "cherry", "C3");
	dbiter_free(d);
	vl_free(&l);
}

/* Long runs of tombstones and of invisible versions are skipped in a loop,
 * however long (a recursive skip would overflow the stack here). */
static void test_dbiter_long_runs_of_tombstones(void **state)
{
	(void)state;
	vec_list l = {0};
	enum { N = 200000 };
	vl_add(&l, 0, "a", 1, "first");
	for (int i = 0; i < N; i++) {
		char k[16];
		snprintf(k, sizeof(k), "d%07d", i);
		vl_add(&l, 0, k, 5, NULL);
		vl_add(&l, 0, k, 4, "hidden");
	}
	for (int i = 0; i < N; i++)
		vl_add(&l, 0, "m", (uint64_t)(1000 + i), "too new");
	vl_add(&l, 0, "m", 7, "m7");
	vl_add(&l, 0, "z", 1, "last");
	dbiter *d = open_dbiter(&l, 0, 100);
	assert_scan(d, "a=first,m=m7,z=last");
	dbiter_free(d);
	vl_free(&l);
}

/* An empty value is a value; an empty user key is a key. */
static void test_dbiter_empty_values_and_keys(void **state)
{
	(void)state;
	vec_list l = {0};
	vl_add(&l, 0, "", 3, "");
	vl_add(&l, 0, "e", 3, "");
	vl_add(&l, 0, "e", 2, "old");
	vl_add(&l, 0, "f", 3, NULL);
	dbiter *d = open_dbiter(&l, 0, 10);
	dbiter_seek_first(d);
	assert_kv(d, "", "");
	dbiter_next(d);
	assert_kv(d, "e", "");
	dbiter_next(d);
	assert_false(dbiter_valid(d));
	dbiter_free(d);
	vl_free(&l);
}

/* Key and value stay put until the next move, although the source
 * rewrites its own key buffer whenever it moves. */
static void test_dbiter_key_value_stable_until_next(void **state)
{
	(void)state;
	vec_list l = {0};
	vl_add(&l, 0, "k1", 2, "v1");
	vl_add(&l, 0, "k1", 1, "old");
	vl_add(&l, 0, "k2", 2, "v2");
	dbiter *d = open_dbiter(&l, 0, 10);
	dbiter_seek_first(d);
	size_t klen, vlen;
	const char *k = dbiter_key(d, &klen);
	const char *v = dbiter_value(d, &vlen);
	assert_kv(d, "k1", "v1");
	assert_memory_equal(k, "k1", 2);
	assert_memory_equal(v, "v1", 2);
	dbiter_next(d);
	assert_kv(d, "k2", "v2");
	dbiter_free(d);
	vl_free(&l);
}

/* An internal iterator error ends iteration and is reported. */
static void test_dbiter_internal_error_reported(void **state)
{
	(void)state;
	vec_list l = {0};
	vl_add(&l, 0, "a", 1, "1");
	vl_add(&l, 0, "b", 1, NULL);
	vl_add(&l, 0, "c", 1, "3");
	vec_iter *v = vec_from(&l);
	v->fail_at = 2;
	v->fail_code = CESIUM_EIO;
	dbiter *d;
	assert_int_equal(dbiter_new(&v->base, 0, 5, &d), 0);
	dbiter_seek_first(d);
	assert_kv(d, "a", "1");
	dbiter_next(d);
	assert_false(dbiter_valid(d));
	assert_int_equal(dbiter_status(d), CESIUM_EIO);
	dbiter_free(d);
	vl_free(&l);
}

/* Random histories against a model built by brute force. */
static void test_dbiter_random_against_model(void **state)
{
	(void)state;
	uint64_t rng = test_seed("dbiter_random");
	for (int round = 0; round < 300; round++) {
		vec_list l = {0};
		enum { NK = 6 };
		/* model[ns][key][seq]: 0 absent, 1 tombstone, 2 value */
		int model[3][NK][16] = {0};
		int n = (int)(test_rand(&rng) % 60);
		for (int i = 0; i < n; i++) {
			uint64_t ns = test_rand(&rng) % 3;
			int key = (int)(test_rand(&rng) % NK);
			int seq = 1 + (int)(test_rand(&rng) % 15);
			if (model[ns][key][seq])
				continue;
			char k[4] = {'k', (char)('0' + key), 0};
			char val[16];
			snprintf(val, sizeof(val), "%d@%d", key, seq);
			bool del = test_rand(&rng) % 3 == 0;
			model[ns][key][seq] = del ? 1 : 2;
			vl_add(&l, ns, k, (uint64_t)seq, del ? NULL : val);
		}
		uint64_t ns = test_rand(&rng) % 3;
		int snap = (int)(test_rand(&rng) % 17);
		char want[512];
		size_t wn = 0;
		want[0] = '\0';
		for (int key = 0; key < NK; key++) {
			for (int seq = snap < 15 ? snap : 15; seq >= 1; seq--) {
				if (!model[ns][key][seq])
					continue;
				if (model[ns][key][seq] == 2)
					wn += (size_t)snprintf(want + wn, sizeof(want) - wn,
					                       "%sk%d=%d@%d", wn ? "," : "", key,
					                       key, seq);
				break;
			}
		}
		dbiter *d = open_dbiter(&l, ns, (uint64_t)snap);
		assert_scan(d, want);
		dbiter_free(d);
		vl_free(&l);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dbiter_snapshot_picks_newest_visible),
	    cmocka_unit_test(test_dbiter_tombstones_hide_per_snapshot),
	    cmocka_unit_test(test_dbiter_namespaces_kept_apart),
	    cmocka_unit_test(test_dbiter_upper_bound_stops),
	    cmocka_unit_test(test_dbiter_seek),
	    cmocka_unit_test(test_dbiter_long_runs_of_tombstones),
	    cmocka_unit_test(test_dbiter_empty_values_and_keys),
	    cmocka_unit_test(test_dbiter_key_value_stable_until_next),
	    cmocka_unit_test(test_dbiter_internal_error_reported),
	    cmocka_unit_test(test_dbiter_random_against_model),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
