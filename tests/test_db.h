/*
 * test_db — helpers for unit tests that drive a whole database: open with
 * option pairs, a model of which generation of each key should be visible
 * (checked through get and an iterator), statistics and file counts, and a
 * fault hook that fails one (or every) write or sync of chosen files.
 *
 * Test-only; every helper fails the running cmocka test on error. The
 * caller owns the db from open_db (cesium_close) and the model's gen array
 * (free(m.gen)). A file_fault must stay live from file_fault_arm until
 * file_fault_disarm: the hook reads it from the database's threads.
 */
#ifndef CESIUM_TESTS_TEST_DB_H
#define CESIUM_TESTS_TEST_DB_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cesium.h"
#include "fault.h"

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t now_ns(void);

/* Opens dir with name=value option pairs, NULL-terminated. */
cesium_db *open_db(const char *dir, ...) __attribute__((sentinel));

/* Key and value of id at generation gen into buf (keys need 32 bytes);
 * values are padded so that segments have some bulk. Return the length. */
size_t key_of(char *buf, unsigned id);
size_t value_of(char *buf, size_t cap, unsigned id, unsigned gen);
/* Puts id's value of generation gen. */
void put_kv(cesium_db *db, unsigned id, unsigned gen);

/* The model: gen[id] is the generation of id's value, 0 = absent. */
struct model {
	unsigned n;
	unsigned *gen;
};

void model_init(struct model *m, unsigned n);
void model_put(cesium_db *db, struct model *m, unsigned id, unsigned gen);
void model_delete(cesium_db *db, struct model *m, unsigned id);
/* Seeks it to its first entry and checks that it yields exactly the keys
 * present in m, with their values; returns how many it yielded. */
unsigned model_check_iter(cesium_iter *it, const struct model *m);
/* Every key of the model reads back through get and through an iterator. */
void model_check(cesium_db *db, const struct model *m);

/* Files in dir whose names end in suffix. */
int count_files(const char *dir, const char *suffix);
/* Waits up to 5 s (cleanup is asynchronous) until dir holds want files
 * ending in suffix; returns the last count. */
int wait_files(const char *dir, const char *suffix, int want);

/* Fails the nth operation op on files whose path contains suffix, counted
 * from arming; set `every` after arming to fail all from the nth on. */
struct file_fault {
	enum io_op op;
	const char *suffix; /* ".seg", ".wal", "MANIFEST" ... */
	int err;            /* 0: shorten the write to half */
	unsigned nth;       /* fail the nth matching operation after arming */
	bool every;         /* fail every matching operation from the nth on */
	atomic_bool armed;
	atomic_uint seen, failed;
	pthread_mutex_t mu;
	char path[512]; /* the file that failed first */
};

void file_fault_arm(struct file_fault *f, enum io_op op, const char *suffix, int err, unsigned nth);
void file_fault_disarm(struct file_fault *f);

#endif
