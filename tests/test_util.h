/*
 * test_util — helpers shared by the cmocka tests: scratch directories,
 * seeded random numbers whose seed is printed so a failure can be replayed,
 * and probes that skip a test (exit 77) when the kernel lacks a feature.
 */
#ifndef CESIUM_TESTS_TEST_UTIL_H
#define CESIUM_TESTS_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Creates a fresh empty directory under $TMPDIR (or /tmp) and returns its
 * path (static storage per call site is not needed: the caller frees). */
char *test_tmpdir(const char *tag);
/* Removes a directory tree; ignores errors. */
void test_rmtree(const char *path);
/* A seed from $CESIUM_SEED or the clock, printed to stderr with `tag`. */
uint64_t test_seed(const char *tag);
/* xorshift64* generator. */
uint64_t test_rand(uint64_t *state);
/* A cmocka fixture: a fresh directory and the database a test opens in it
 * (closed, and the directory removed, by test_fx_teardown). */
struct cesium_db;
struct test_fx {
	char *dir;
	struct cesium_db *db;
};
int test_fx_setup(void **state, const char *tag);
int test_fx_teardown(void **state);

/* The named counter from cesium_stats; fails the test when it is missing. */
uint64_t stat_of(struct cesium_db *db, const char *name);
/* Segments over all levels, from the statistics. */
uint64_t total_segments(struct cesium_db *db);

/* For a watchdog that found a hang: writes every thread's stack to stderr
 * as binary(+offset) return addresses, for addr2line. Async-signal-safe enough for a SIGALRM handler that
 * exits right after; test_dump_threads_init must run first. */
void test_dump_threads_init(void);
void test_dump_threads(void);

/* Exits 77 (meson: skipped) when io_uring cannot be set up here. */
void test_require_io_uring(void);

#endif
