/*
 * test_db — helpers for unit tests that drive a whole database: open with
 * option pairs, a model of which generation of each key should be visible
 * (checked through get and an iterator), statistics and file counts, and a
 * fault hook that fails chosen, or random, operations on chosen files.
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
/* Closes db (which must succeed), reopens dir with default options, checks
 * the model there and closes again. */
void model_check_after_reopen(cesium_db *db, const char *dir, const struct model *m);

/* The file fd names, from its /proc/self/fd link, into out. */
bool fd_path(int fd, char *out, size_t cap);

/* Files in dir whose names end in suffix. */
int count_files(const char *dir, const char *suffix);
/* Waits up to 5 s (cleanup is asynchronous) until dir holds want files
 * ending in suffix; returns the last count. */
int wait_files(const char *dir, const char *suffix, int want);

/*
 * A fault hook for io/'s seam (fault.h). Counted mode fails the nth matching
 * operation after arming (set `every` after arming to fail all from the nth
 * on). Random mode fails each matching operation with probability
 * per_million / 1e6, decided by a hash of seed and the operation's number,
 * so a run is replayed by its seed (up to the order threads reach the
 * hook). An operation matches when its bit is in `ops` and its file's path
 * (the path given, or the fd's /proc/self/fd link) contains `suffix`; a
 * NULL or empty suffix matches every file, and operations with neither
 * path nor fd.
 */
#define FILE_FAULT_OP(op) (1u << (op))
#define FILE_FAULT_ALL_OPS ((1u << IO_OP_COUNT) - 1)
/* err: fail with an error natural to the operation, chosen by the hash:
 * reads EIO; writes EIO, ENOSPC or a short write; fsync EIO; fallocate
 * ENOSPC; open, rename, unlink and truncate EIO or ENOSPC. */
#define FILE_FAULT_MIXED 1

struct file_fault {
	unsigned ops;         /* FILE_FAULT_OP bits */
	const char *suffix;   /* ".seg", ".wal", "MANIFEST" ...; NULL: every file */
	int err;              /* -errno; 0: shorten the write to half; FILE_FAULT_MIXED */
	unsigned nth;         /* counted: fail the nth matching operation after arming */
	bool every;           /* counted: fail every matching operation from the nth on */
	uint32_t per_million; /* random mode when non-zero */
	uint64_t seed;
	bool trace; /* print each injected fault to stderr */
	atomic_bool armed;
	atomic_uint seen, failed;
	atomic_uint failed_op[IO_OP_COUNT]; /* faults injected, by operation */
	atomic_uint shortened;              /* of which short writes */
	pthread_mutex_t mu;
	char path[512]; /* the file that failed first */
	/* The last FILE_FAULT_RECENT faults injected, as text, for a failing
	 * test to show (file_fault_print_recent); under mu. */
#define FILE_FAULT_RECENT 32
	char recent[FILE_FAULT_RECENT][160];
	unsigned nrecent;
};

/* Counted mode on one operation. */
void file_fault_arm(struct file_fault *f, enum io_op op, const char *suffix, int err, unsigned nth);
/* Random mode on the operations in ops (FILE_FAULT_OP bits). */
void file_fault_arm_random(struct file_fault *f, unsigned ops, const char *suffix, int err,
                           uint32_t per_million, uint64_t seed);
/* Stops injecting without removing the hook (counters keep their values);
 * file_fault_resume starts again. */
void file_fault_pause(struct file_fault *f);
void file_fault_resume(struct file_fault *f);
void file_fault_disarm(struct file_fault *f);
/* Writes the last faults injected, oldest first, to stderr. */
void file_fault_print_recent(struct file_fault *f);
/* The hook itself, for tests that call it directly. */
int file_fault_hook(void *arg, enum io_op op, int fd, const char *path, size_t *len);

#endif
