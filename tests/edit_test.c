#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "edit.h"
#include "error.h"
#include "keys.h"
#include "mem.h"
#include "test_util.h"

/* An internal key for user key "k<i>" at seq in namespace ns. */
static size_t make_key(uint8_t *out, uint64_t ns, uint64_t i, uint64_t seq)
{
	char user[32];
	int n = snprintf(user, sizeof(user), "k%08llu", (unsigned long long)i);
	uint8_t nskey[64];
	keys_make_nskey(nskey, ns, user, (size_t)n);
	keys_make_ikey(out, nskey, KEYS_NS_SIZE + (size_t)n, seq, KEYS_KIND_VALUE);
	return KEYS_NS_SIZE + (size_t)n + KEYS_TRAILER_SIZE;
}

static void add_test_file(struct edit *e, int level, uint64_t number, uint64_t lo, uint64_t hi)
{
	uint8_t s[64], l[64];
	struct file_desc d = {
	    .level = level,
	    .number = number,
	    .file_size = number * 1000 + 17,
	    .smallest = s,
	    .smallest_len = make_key(s, number % 3, lo, 100 + number),
	    .largest = l,
	    .largest_len = make_key(l, number % 3, hi, 5),
	    .min_seq = number,
	    .max_seq = number * 3 + (UINT64_C(1) << 40),
	    .entries = number + 10,
	    .tombstones = number % 10,
	};
	assert_int_equal(edit_add_file(e, &d), 0);
}

static void build_big_edit(struct edit *e)
{
	edit_init(e);
	edit_set_log_number(e, 42);
	edit_set_next_file_number(e, UINT64_MAX);
	edit_set_last_seq(e, KEYS_MAX_SEQ);
	for (uint64_t i = 0; i < 300; i++)
		add_test_file(e, (int)(i % EDIT_LEVELS), i + 1, i * 10, i * 10 + 5);
	for (uint64_t i = 0; i < 100; i++)
		assert_int_equal(edit_delete_file(e, (int)(i % EDIT_LEVELS), i * 1000003), 0);
}

static void assert_edits_equal(const struct edit *a, const struct edit *b)
{
	assert_int_equal(a->has_log_number, b->has_log_number);
	assert_int_equal(a->has_next_file_number, b->has_next_file_number);
	assert_int_equal(a->has_last_seq, b->has_last_seq);
	assert_int_equal(a->log_number, b->log_number);
	assert_int_equal(a->next_file_number, b->next_file_number);
	assert_int_equal(a->last_seq, b->last_seq);
	assert_int_equal(a->ndeleted, b->ndeleted);
	for (size_t i = 0; i < a->ndeleted; i++) {
		assert_int_equal(a->deleted[i].level, b->deleted[i].level);
		assert_int_equal(a->deleted[i].number, b->deleted[i].number);
	}
	assert_int_equal(a->nadded, b->nadded);
	for (size_t i = 0; i < a->nadded; i++) {
		const struct file_desc *x = &a->added[i], *y = &b->added[i];
		assert_int_equal(x->level, y->level);
		assert_int_equal(x->number, y->number);
		assert_int_equal(x->file_size, y->file_size);
		assert_int_equal(x->smallest_len, y->smallest_len);
		assert_memory_equal(x->smallest, y->smallest, x->smallest_len);
		assert_int_equal(x->largest_len, y->largest_len);
		assert_memory_equal(x->largest, y->largest, x->largest_len);
		assert_int_equal(x->min_seq, y->min_seq);
		assert_int_equal(x->max_seq, y->max_seq);
		assert_int_equal(x->entries, y->entries);
		assert_int_equal(x->tombstones, y->tombstones);
		assert_int_equal(x->run, y->run);
		assert_int_equal(x->value_log, y->value_log);
	}
}

/* An edit with every field and hundreds of files decodes to itself. */
static void test_edit_round_trip_many_files(void **state)
{
	(void)state;
	struct edit e, d;
	build_big_edit(&e);
	uint8_t *buf;
	size_t len;
	assert_int_equal(edit_encode(&e, &buf, &len), 0);
	assert_int_equal(edit_decode(buf, len, &d, "MANIFEST-1", 0), 0);
	assert_edits_equal(&e, &d);
	edit_free(&d);
	mem_free(buf);

	/* The empty edit too. */
	struct edit empty;
	edit_init(&empty);
	assert_int_equal(edit_encode(&empty, &buf, &len), 0);
	assert_int_equal(len, 1);
	assert_int_equal(edit_decode(buf, len, &d, "MANIFEST-1", 0), 0);
	assert_edits_equal(&empty, &d);
	edit_free(&d);
	mem_free(buf);
	edit_free(&e);
}

/* Every proper prefix of an encoding is rejected as corrupt. */
static void test_edit_every_truncation_rejected(void **state)
{
	(void)state;
	struct edit e, d;
	edit_init(&e);
	edit_set_log_number(&e, 300);
	edit_set_last_seq(&e, 123456789);
	for (uint64_t i = 0; i < 4; i++)
		add_test_file(&e, (int)i, i + 1, i, i + 2);
	assert_int_equal(edit_delete_file(&e, 3, 77), 0);
	uint8_t *buf;
	size_t len;
	assert_int_equal(edit_encode(&e, &buf, &len), 0);
	for (size_t cut = 0; cut < len; cut++) {
		uint8_t *copy = malloc(cut ? cut : 1);
		memcpy(copy, buf, cut);
		assert_int_equal(edit_decode(copy, cut, &d, "M", 1000), CESIUM_ECORRUPT);
		assert_non_null(strstr(cesium_errmsg(), "M: offset 1"));
		edit_free(&d);
		free(copy);
	}
	mem_free(buf);
	edit_free(&e);
}

/* Malformed fields are rejected with the path and the offset of the bad
 * field: unknown tag, level >= 8, empty key, duplicate scalar, overlong
 * varint, trailing bytes. */
static void test_edit_rejects_malformed_fields(void **state)
{
	(void)state;
	struct {
		const char *what;
		uint8_t bytes[40];
		size_t len;
		const char *msg;
	} cases[] = {
	    {"unknown tag", {9, 0}, 2, "offset 500: version edit: unknown field tag"},
	    {"deleted level 8", {4, 8, 1, 0}, 4, "offset 501: version edit: level out of range"},
	    {"added level 9", {5, 9}, 2, "offset 501: version edit: level out of range"},
	    {"empty key", {5, 1, 7, 100, 0}, 5, "offset 504: version edit: empty key"},
	    {"duplicate", {1, 5, 1, 6, 0}, 5, "offset 502: version edit: field appears twice"},
	    {"overlong varint",
	     {1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0},
	     12,
	     "offset 501: version edit: varint overflows"},
	    {"trailing", {1, 5, 0, 0}, 4, "offset 503: version edit: bytes after the end tag"},
	    {"key past end", {5, 1, 7, 100, 30, 1, 2}, 7, "key runs past the end"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct edit d;
		int rc = edit_decode(cases[i].bytes, cases[i].len, &d, "MANIFEST-9", 500);
		if (rc != CESIUM_ECORRUPT || !strstr(cesium_errmsg(), cases[i].msg))
			fail_msg("%s: rc %d msg '%s'", cases[i].what, rc, cesium_errmsg());
		assert_non_null(strstr(cesium_errmsg(), "MANIFEST-9"));
		edit_free(&d);
	}
}

/* edit_add_file and edit_delete_file refuse what could not be decoded. */
static void test_edit_add_rejects_bad_files(void **state)
{
	(void)state;
	struct edit e;
	edit_init(&e);
	uint8_t k[64];
	size_t kl = make_key(k, 0, 1, 1);
	struct file_desc d = {.level = 8,
	                      .number = 1,
	                      .smallest = k,
	                      .smallest_len = kl,
	                      .largest = k,
	                      .largest_len = kl};
	assert_int_equal(edit_add_file(&e, &d), CESIUM_EINVAL);
	d.level = 1;
	d.smallest_len = 0;
	assert_int_equal(edit_add_file(&e, &d), CESIUM_EINVAL);
	d.smallest_len = kl;
	d.min_seq = 5;
	d.max_seq = 4;
	assert_int_equal(edit_add_file(&e, &d), CESIUM_EINVAL);
	d.max_seq = 5;
	assert_int_equal(edit_add_file(&e, &d), 0);
	assert_int_equal(edit_delete_file(&e, -1, 3), CESIUM_EINVAL);
	assert_int_equal(edit_delete_file(&e, 8, 3), CESIUM_EINVAL);
	assert_int_equal(e.nadded, 1);
	assert_int_equal(e.ndeleted, 0);
	edit_free(&e);
}

/* Random bytes and mutated encodings never crash the decoder (run under
 * ASan); each decodes or is rejected as corrupt, and what decodes
 * re-encodes. */
static void test_edit_random_bytes_never_crash(void **state)
{
	(void)state;
	uint64_t seed = test_seed("edit_random");
	struct edit e;
	build_big_edit(&e);
	uint8_t *valid;
	size_t vlen;
	assert_int_equal(edit_encode(&e, &valid, &vlen), 0);
	edit_free(&e);
	int decoded = 0;
	for (int round = 0; round < 20000; round++) {
		bool mutate = round % 4 == 0;
		size_t n = mutate ? vlen : (size_t)(test_rand(&seed) % 64);
		uint8_t *buf = malloc(n ? n : 1);
		assert_non_null(buf);
		if (mutate) {
			memcpy(buf, valid, n);
			for (int k = 0; k < 4; k++)
				buf[test_rand(&seed) % n] = (uint8_t)test_rand(&seed);
		} else {
			for (size_t i = 0; i < n; i++)
				/* Small bytes hit real tags and levels more often. */
				buf[i] = (uint8_t)(test_rand(&seed) % (round & 1 ? 256 : 8));
		}
		struct edit d;
		int rc = edit_decode(buf, n, &d, "fuzz", 0);
		assert_true(rc == 0 || rc == CESIUM_ECORRUPT);
		if (rc == 0) {
			decoded++;
			uint8_t *re;
			size_t relen;
			assert_int_equal(edit_encode(&d, &re, &relen), 0);
			mem_free(re);
		}
		edit_free(&d);
		free(buf);
	}
	assert_true(decoded > 0);
	mem_free(valid);
}

/* A file's value log survives encode/decode; a file without one decodes
 * without one, and its encoding carries no EDIT_TAG_VALUE_LOG field. */
static void test_edit_value_log_round_trip(void **state)
{
	(void)state;
	struct edit e, d;
	edit_init(&e);
	edit_set_log_number(&e, 12);
	add_test_file(&e, 0, 10, 1, 5);
	add_test_file(&e, 0, 11, 6, 9);
	add_test_file(&e, 2, 13, 20, 30);
	assert_int_equal(e.nadded, 3);
	/* edit_add_file copies value_log like any other field. */
	uint8_t s[64], l[64];
	struct file_desc f = {.level = 0,
	                      .number = 14,
	                      .smallest = s,
	                      .smallest_len = make_key(s, 0, 40, 9),
	                      .largest = l,
	                      .largest_len = make_key(l, 0, 41, 9),
	                      .min_seq = 9,
	                      .max_seq = 9,
	                      .entries = 2,
	                      .value_log = UINT64_MAX};
	assert_int_equal(edit_add_file(&e, &f), 0);
	assert_int_equal(e.added[3].value_log, UINT64_MAX);
	e.added[0].value_log = 11;  /* below the log number: still kept */
	e.added[2].value_log = 300; /* a multi-byte varint */
	uint8_t *buf;
	size_t len;
	assert_int_equal(edit_encode(&e, &buf, &len), 0);
	assert_int_equal(edit_decode(buf, len, &d, "MANIFEST-3", 0), 0);
	assert_int_equal(d.nadded, 4);
	assert_int_equal(d.added[0].value_log, 11);
	assert_int_equal(d.added[1].value_log, 0);
	assert_int_equal(d.added[2].value_log, 300);
	assert_int_equal(d.added[3].value_log, UINT64_MAX);
	assert_edits_equal(&e, &d);
	edit_free(&d);
	/* The field costs bytes only where a file has a log: the same edit
	 * without logs is shorter by tag + varint for each of the three. */
	for (size_t i = 0; i < e.nadded; i++)
		e.added[i].value_log = 0;
	uint8_t *plain;
	size_t plen;
	assert_int_equal(edit_encode(&e, &plain, &plen), 0);
	assert_int_equal(len - plen, (1 + 1) + (1 + 2) + (1 + 10));
	assert_int_equal(edit_decode(plain, plen, &d, "MANIFEST-3", 0), 0);
	for (size_t i = 0; i < d.nadded; i++)
		assert_int_equal(d.added[i].value_log, 0);
	edit_free(&d);
	mem_free(plain);
	/* Every proper prefix of the encoding with logs is still corrupt. */
	for (size_t cut = 0; cut < len; cut++) {
		assert_int_equal(edit_decode(buf, cut, &d, "M", 0), CESIUM_ECORRUPT);
		edit_free(&d);
	}
	mem_free(buf);
	edit_free(&e);
}

/* An added file's field, by hand: level 1, number 7, size 100, keys
 * "\0\0\0\0\0\0\0\0a" + trailer, seqs 1..1, 1 entry, 0 tombstones, run 0.
 * Returns its length. */
static size_t put_added(uint8_t *p)
{
	size_t n = 0;
	p[n++] = EDIT_TAG_ADDED;
	p[n++] = 1;   /* level */
	p[n++] = 7;   /* number */
	p[n++] = 100; /* file size */
	for (int key = 0; key < 2; key++) {
		uint8_t ns[16];
		keys_make_nskey(ns, 0, "a", 1);
		p[n++] = KEYS_NS_SIZE + 1 + KEYS_TRAILER_SIZE;
		keys_make_ikey(p + n, ns, KEYS_NS_SIZE + 1, 1, KEYS_KIND_VALUE);
		n += KEYS_NS_SIZE + 1 + KEYS_TRAILER_SIZE;
	}
	p[n++] = 1; /* min_seq */
	p[n++] = 1; /* max_seq */
	p[n++] = 1; /* entries */
	p[n++] = 0; /* tombstones */
	p[n++] = 0; /* run */
	return n;
}

/* EDIT_TAG_VALUE_LOG is accepted only right after an EDIT_TAG_ADDED
 * field, and never with log number 0: anything else is CESIUM_ECORRUPT
 * with the path and the offset of the bad field. */
static void test_edit_value_log_misplaced_or_zero(void **state)
{
	(void)state;
	uint8_t b[128];
	struct edit d;
	size_t a = put_added(b);
	/* The valid shape first: ADDED, VALUE_LOG 5, END. */
	b[a] = EDIT_TAG_VALUE_LOG;
	b[a + 1] = 5;
	b[a + 2] = EDIT_TAG_END;
	assert_int_equal(edit_decode(b, a + 3, &d, "MANIFEST-4", 1000), 0);
	assert_int_equal(d.nadded, 1);
	assert_int_equal(d.added[0].number, 7);
	assert_int_equal(d.added[0].value_log, 5);
	edit_free(&d);

	struct {
		const char *what;
		uint8_t bytes[64];
		size_t len;
		size_t bad_at; /* offset of the bad field in bytes */
	} cases[] = {
	    {"first field", {EDIT_TAG_VALUE_LOG, 5, EDIT_TAG_END}, 3, 0},
	    {"after a scalar", {EDIT_TAG_LOG_NUMBER, 3, EDIT_TAG_VALUE_LOG, 5, EDIT_TAG_END}, 5, 2},
	    {"after a deleted file",
	     {EDIT_TAG_DELETED, 1, 9, EDIT_TAG_VALUE_LOG, 5, EDIT_TAG_END},
	     6,
	     3},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		error_clear();
		int rc = edit_decode(cases[i].bytes, cases[i].len, &d, "MANIFEST-4", 1000);
		char want[32];
		snprintf(want, sizeof(want), "offset %zu:", 1000 + cases[i].bad_at);
		if (rc != CESIUM_ECORRUPT || !strstr(cesium_errmsg(), want) ||
		    !strstr(cesium_errmsg(), "MANIFEST-4"))
			fail_msg("%s: rc %d msg '%s'", cases[i].what, rc, cesium_errmsg());
		edit_free(&d);
	}

	/* Built on an added file: a second VALUE_LOG after the first, one
	 * after a DELETED field that follows the file, and log number 0. */
	size_t n = a;
	b[n++] = EDIT_TAG_VALUE_LOG;
	b[n++] = 5;
	b[n++] = EDIT_TAG_VALUE_LOG;
	b[n++] = 6;
	b[n++] = EDIT_TAG_END;
	error_clear();
	assert_int_equal(edit_decode(b, n, &d, "MANIFEST-4", 1000), CESIUM_ECORRUPT);
	char want[32];
	snprintf(want, sizeof(want), "offset %zu:", 1000 + a + 2);
	assert_non_null(strstr(cesium_errmsg(), want));
	edit_free(&d);

	n = a;
	b[n++] = EDIT_TAG_DELETED;
	b[n++] = 1;
	b[n++] = 9;
	b[n++] = EDIT_TAG_VALUE_LOG;
	b[n++] = 5;
	b[n++] = EDIT_TAG_END;
	error_clear();
	assert_int_equal(edit_decode(b, n, &d, "MANIFEST-4", 1000), CESIUM_ECORRUPT);
	snprintf(want, sizeof(want), "offset %zu:", 1000 + a + 3);
	assert_non_null(strstr(cesium_errmsg(), want));
	edit_free(&d);

	n = a;
	b[n++] = EDIT_TAG_VALUE_LOG;
	b[n++] = 0;
	b[n++] = EDIT_TAG_END;
	error_clear();
	assert_int_equal(edit_decode(b, n, &d, "MANIFEST-4", 1000), CESIUM_ECORRUPT);
	snprintf(want, sizeof(want), "offset %zu:", 1000 + a);
	assert_non_null(strstr(cesium_errmsg(), want));
	assert_non_null(strstr(cesium_errmsg(), "MANIFEST-4"));
	edit_free(&d);
	/* 0 spelled as a two-byte varint is 0 too. */
	n = a;
	b[n++] = EDIT_TAG_VALUE_LOG;
	b[n++] = 0x80;
	b[n++] = 0x00;
	b[n++] = EDIT_TAG_END;
	assert_int_equal(edit_decode(b, n, &d, "MANIFEST-4", 1000), CESIUM_ECORRUPT);
	edit_free(&d);
	/* A log number cut off by the end of the record. */
	n = a;
	b[n++] = EDIT_TAG_VALUE_LOG;
	b[n++] = 0x85;
	assert_int_equal(edit_decode(b, n, &d, "MANIFEST-4", 1000), CESIUM_ECORRUPT);
	edit_free(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_edit_round_trip_many_files),
	    cmocka_unit_test(test_edit_every_truncation_rejected),
	    cmocka_unit_test(test_edit_rejects_malformed_fields),
	    cmocka_unit_test(test_edit_add_rejects_bad_files),
	    cmocka_unit_test(test_edit_random_bytes_never_crash),
	    cmocka_unit_test(test_edit_value_log_round_trip),
	    cmocka_unit_test(test_edit_value_log_misplaced_or_zero),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
