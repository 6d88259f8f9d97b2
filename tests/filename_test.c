/*
 * filename_test — the names of a database's files (core/filename.h): built
 * paths, numbers read back from names, and the refusal of every name that
 * only looks like one of ours (signs, blanks, trailing text, overflow),
 * since the engine removes files by these rules.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "filename.h"
#include "mem.h"

static void test_paths_are_zero_padded_to_six_digits(void **state)
{
	(void)state;
	char *p = filename_numbered("/db", 42, "seg");
	assert_non_null(p);
	assert_string_equal(p, "/db/000042.seg");
	mem_free(p);
	p = filename_numbered("d", 12345678, "wal");
	assert_non_null(p);
	assert_string_equal(p, "d/12345678.wal");
	mem_free(p);
	p = filename_manifest("/x/y", 7);
	assert_non_null(p);
	assert_string_equal(p, "/x/y/MANIFEST-000007");
	mem_free(p);
}

static void test_numbers_read_back_from_built_names(void **state)
{
	(void)state;
	const uint64_t numbers[] = {1, 42, 999999, 1000000, UINT64_MAX};
	for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++) {
		for (int kind = 0; kind < 3; kind++) {
			char *p = kind == 2
			              ? filename_manifest("d", numbers[i])
			              : filename_numbered("d", numbers[i], kind ? "wal" : "seg");
			assert_non_null(p);
			const char *name = p + 2; /* after "d/" */
			uint64_t got = kind == 2 ? filename_manifest_number(name)
			                         : filename_number(name, kind ? "wal" : "seg");
			assert_int_equal(got, numbers[i]);
			assert_true(filename_is_engine_file(name));
			mem_free(p);
		}
	}
}

static void test_lookalike_names_are_not_ours(void **state)
{
	(void)state;
	const char *not_seg[] = {"",
	                         ".seg",
	                         "seg",
	                         "12.seg.tmp",
	                         "12.wal",
	                         "+12.seg",
	                         " 12.seg",
	                         "-1.seg",
	                         "12 .seg",
	                         "1x2.seg",
	                         "12.SEG",
	                         "12seg",
	                         "12.segx",
	                         "0x1f.seg",
	                         "18446744073709551616.seg",
	                         "99999999999999999999999.seg"};
	for (size_t i = 0; i < sizeof(not_seg) / sizeof(not_seg[0]); i++)
		assert_int_equal(filename_number(not_seg[i], "seg"), 0);
	assert_int_equal(filename_number("18446744073709551615.seg", "seg"), UINT64_MAX);
	const char *not_manifest[] = {
	    "MANIFEST-",     "MANIFEST-12abc", "MANIFEST--1",
	    "MANIFEST- 12",  "MANIFEST-+12",   "manifest-12",
	    "MANIFEST-12\n", "XMANIFEST-12",   "MANIFEST-18446744073709551616"};
	for (size_t i = 0; i < sizeof(not_manifest) / sizeof(not_manifest[0]); i++) {
		assert_int_equal(filename_manifest_number(not_manifest[i]), 0);
		assert_false(filename_is_engine_file(not_manifest[i]));
	}
	/* An extension too long for any file of ours is no match, not an
	 * overrun. */
	assert_int_equal(filename_number("1.abcdefghij", "abcdefghij"), 0);
}

static void test_engine_files_are_told_from_others(void **state)
{
	(void)state;
	const char *ours[] = {".",       "..",          "LOCK",       "CURRENT", "CURRENT.tmp",
	                      "OPTIONS", "OPTIONS.tmp", "000000.seg", "7.wal",   "MANIFEST-0"};
	for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++)
		assert_true(filename_is_engine_file(ours[i]));
	const char *theirs[] = {"lock",  "CURRENT.bak", "OPTIONS~", "notes.txt", "12.log",
	                        "a.seg", "MANIFEST",    ".wal",     "LOCK.tmp"};
	for (size_t i = 0; i < sizeof(theirs) / sizeof(theirs[0]); i++)
		assert_false(filename_is_engine_file(theirs[i]));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_paths_are_zero_padded_to_six_digits),
	    cmocka_unit_test(test_numbers_read_back_from_built_names),
	    cmocka_unit_test(test_lookalike_names_are_not_ours),
	    cmocka_unit_test(test_engine_files_are_told_from_others),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
