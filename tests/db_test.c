/* Unit tests for core/db through the public API, with I/O faults injected
 * through io/fault.h: failed flushes, compactions and WAL syncs keep every
 * acknowledged write; io_uring blocked by seccomp is CESIUM_ENOTSUP; write
 * stalls, concurrent readers and writers, and iterator snapshots across
 * flush and compaction. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cesium.h"
#include "db.h"
#include "error.h"
#include "fault.h"
#include "park.h"
#include "test_db.h"
#include "test_util.h"

/* ---- helpers ---------------------------------------------------------- */

/* ---- faults during flush ------------------------------------------------ */

enum { FAULT_KEYS = 3000 };

static void check_flush_fault(int err, int want_rc)
{
	char *dir = test_tmpdir("db-flushfault");
	cesium_db *db = open_db(dir, "memtable_size", "64MiB", NULL);
	struct model m;
	model_init(&m, FAULT_KEYS);
	for (unsigned i = 0; i < FAULT_KEYS / 2; i++)
		model_put(db, &m, i, 1);
	assert_int_equal(cesium_flush(db), 0);
	assert_int_equal(count_files(dir, ".seg"), 1);
	/* The memtable to be lost: overwrites, deletes and new keys. */
	for (unsigned i = 0; i < FAULT_KEYS; i += 2)
		model_put(db, &m, i, 2);
	for (unsigned i = 1; i < FAULT_KEYS / 2; i += 6)
		model_delete(db, &m, i);

	struct file_fault f;
	file_fault_arm(&f, IO_OP_WRITE, ".seg", err, 1);
	error_clear();
	int rc = cesium_flush(db);
	file_fault_disarm(&f);
	fprintf(stderr, "failed flush: %s (%s)\n", cesium_strerror(rc), cesium_errmsg());
	assert_int_equal(atomic_load(&f.failed), 1);
	assert_int_equal(rc, want_rc);
	assert_true(strlen(cesium_errmsg()) > 0);
	/* The partial segment is gone; the old one is all that is left. */
	assert_int_equal(access(f.path, F_OK), -1);
	assert_int_equal(count_files(dir, ".seg"), 1);
	assert_int_equal(stat_of(db, "level0_segments"), 1);
	/* Every acknowledged write is still readable. */
	model_check(db, &m);

	cesium_close(db);
	db = open_db(dir, "memtable_size", "64MiB", NULL);
	model_check(db, &m);
	/* The recovered memtable goes to L0; afterwards every segment on
	 * disk is one the version lists. */
	assert_int_equal(cesium_flush(db), 0);
	assert_int_equal(wait_files(dir, ".seg", (int)total_segments(db)), (int)total_segments(db));
	assert_int_equal(access(f.path, F_OK), -1);
	model_check(db, &m);
	/* Writable again after the reopen. */
	model_put(db, &m, 1, 9);
	model_check(db, &m);
	assert_int_equal(cesium_close(db), 0);
	free(m.gen);
	test_rmtree(dir);
	free(dir);
}

/* EIO writing the L0 segment: cesium_flush fails, nothing acknowledged is lost. */
static void test_flush_write_eio_keeps_data(void **state)
{
	(void)state;
	check_flush_fault(-EIO, CESIUM_EIO);
}

/* ENOSPC writing the L0 segment: cesium_flush fails with CESIUM_ENOSPC. */
static void test_flush_write_enospc_keeps_data(void **state)
{
	(void)state;
	check_flush_fault(-ENOSPC, CESIUM_ENOSPC);
}

/* A short write of the L0 segment (disk full midway) fails the flush. */
static void test_flush_short_write_keeps_data(void **state)
{
	(void)state;
	check_flush_fault(0, CESIUM_ENOSPC);
}

/* ---- faults during compaction --------------------------------------------- */

static void check_compact_fault(int err, int want_rc)
{
	char *dir = test_tmpdir("db-compactfault");
	cesium_db *db = open_db(dir, "memtable_size", "64MiB", NULL);
	struct model m;
	model_init(&m, FAULT_KEYS);
	for (unsigned round = 1; round <= 3; round++) {
		for (unsigned i = round - 1; i < FAULT_KEYS; i += round)
			model_put(db, &m, i, round);
		for (unsigned i = round; i < FAULT_KEYS; i += 17)
			model_delete(db, &m, i);
		assert_int_equal(cesium_flush(db), 0);
	}
	assert_int_equal(stat_of(db, "level0_segments"), 3);
	assert_int_equal(count_files(dir, ".seg"), 3);
	uint64_t failures = stat_of(db, "compaction_failures");

	struct file_fault f;
	file_fault_arm(&f, IO_OP_WRITE, ".seg", err, 1);
	error_clear();
	int rc = cesium_compact(db);
	file_fault_disarm(&f);
	fprintf(stderr, "failed compaction: %s (%s)\n", cesium_strerror(rc), cesium_errmsg());
	assert_int_equal(atomic_load(&f.failed), 1);
	assert_int_equal(rc, want_rc);
	assert_true(strlen(cesium_errmsg()) > 0);
	assert_int_equal(stat_of(db, "compaction_failures"), failures + 1);
	/* The tree is as it was and no partial output is left. */
	assert_int_equal(stat_of(db, "level0_segments"), 3);
	assert_int_equal(stat_of(db, "level3_segments"), 0);
	assert_int_equal(access(f.path, F_OK), -1);
	assert_int_equal(count_files(dir, ".seg"), 3);
	model_check(db, &m);
	/* Writes still work: a failed compaction is not a sticky error. */
	model_put(db, &m, 5, 7);

	/* Without the fault the compaction succeeds and frees the space. */
	rc = cesium_compact(db);
	if (rc)
		fprintf(stderr, "compaction: %s\n", cesium_errmsg());
	assert_int_equal(rc, 0);
	assert_int_equal(total_segments(db), 1);
	assert_int_equal(stat_of(db, "level3_segments"), 1);
	assert_int_equal(wait_files(dir, ".seg", 1), 1);
	assert_true(stat_of(db, "files_deleted") >= 4); /* 4 segments (one flushed by compact) */
	model_check(db, &m);

	cesium_close(db);
	db = open_db(dir, NULL);
	model_check(db, &m);
	assert_int_equal(cesium_close(db), 0);
	free(m.gen);
	test_rmtree(dir);
	free(dir);
}

/* EIO writing a compaction output: the compaction fails, is counted, and a
 * later one succeeds and leaves one segment. */
static void test_compact_write_eio_leaves_tree(void **state)
{
	(void)state;
	check_compact_fault(-EIO, CESIUM_EIO);
}

/* ENOSPC writing a compaction output: same, with CESIUM_ENOSPC. */
static void test_compact_write_enospc_leaves_tree(void **state)
{
	(void)state;
	check_compact_fault(-ENOSPC, CESIUM_ENOSPC);
}

/* A short compaction write: same, with CESIUM_ENOSPC. */
static void test_compact_short_write_leaves_tree(void **state)
{
	(void)state;
	check_compact_fault(0, CESIUM_ENOSPC);
}

/* ---- WAL fsync failure ------------------------------------------------------ */

static int sync_batch(cesium_db *db, unsigned first, unsigned n, unsigned gen)
{
	cesium_batch *b = NULL;
	assert_int_equal(cesium_batch_new(&b), 0);
	for (unsigned i = first; i < first + n; i++) {
		char k[32], v[128];
		size_t kl = key_of(k, i), vl = value_of(v, sizeof(v), i, gen);
		assert_int_equal(cesium_batch_put(b, 0, k, kl, v, vl), 0);
	}
	int rc = cesium_write(db, b, CESIUM_WRITE_SYNC);
	cesium_batch_free(b);
	return rc;
}

/* Counts how many of [first, first+n) hold generation gen. */
static unsigned count_gen(cesium_db *db, unsigned first, unsigned n, unsigned gen)
{
	unsigned c = 0;
	for (unsigned i = first; i < first + n; i++) {
		char k[32], want[128];
		size_t kl = key_of(k, i), wl = value_of(want, sizeof(want), i, gen);
		void *val = NULL;
		size_t vlen = 0;
		if (cesium_get(db, k, kl, &val, &vlen) == 0) {
			if (vlen == wl && memcmp(val, want, wl) == 0)
				c++;
			cesium_free(val);
		}
	}
	return c;
}

/*
 * A failed fdatasync of the WAL fails the CESIUM_WRITE_SYNC write, and every
 * later write fails with CESIUM_EIO: after a failed fsync the kernel may
 * have dropped the dirty pages it could not write and marked them clean
 * (the "fsyncgate" rule, PostgreSQL 2018), so a retry could report success
 * for data that is gone. The log is poisoned until the database is
 * reopened; the reopen replays what the file really holds.
 */
static void test_wal_fsync_failure_poisons_writes(void **state)
{
	(void)state;
	char *dir = test_tmpdir("db-walsync");
	cesium_db *db = open_db(dir, NULL);
	struct model m;
	model_init(&m, 400);
	for (unsigned i = 0; i < 100; i++)
		model_put(db, &m, i, 1);
	assert_int_equal(sync_batch(db, 100, 10, 1), 0);
	for (unsigned i = 100; i < 110; i++)
		m.gen[i] = 1;

	struct file_fault f;
	file_fault_arm(&f, IO_OP_FSYNC, ".wal", -EIO, 1);
	f.every = true;
	int rc = sync_batch(db, 200, 10, 1);
	file_fault_disarm(&f);
	fprintf(stderr, "sync write: %s (%s)\n", cesium_strerror(rc), cesium_errmsg());
	assert_true(atomic_load(&f.failed) >= 1);
	assert_int_not_equal(rc, 0);
	assert_int_equal(rc, CESIUM_EIO);

	/* The fault is gone, but the log stays poisoned. */
	char k[32], v[128];
	size_t kl = key_of(k, 300), vl = value_of(v, sizeof(v), 300, 1);
	assert_int_equal(cesium_put(db, k, kl, v, vl), CESIUM_EIO);
	assert_int_equal(sync_batch(db, 300, 5, 1), CESIUM_EIO);
	assert_int_equal(cesium_sync(db), CESIUM_EIO);
	/* Reads still work. */
	assert_int_equal(count_gen(db, 0, 110, 1), 110);
	cesium_close(db); /* its final sync may fail too: the log is poisoned */

	db = open_db(dir, NULL);
	/* Everything acknowledged is back; the failed batch is all or nothing
	 * (its record reached the page cache, so it is expected back whole). */
	assert_int_equal(count_gen(db, 0, 110, 1), 110);
	unsigned failed_batch = count_gen(db, 200, 10, 1);
	fprintf(stderr, "failed batch after reopen: %u of 10\n", failed_batch);
	assert_true(failed_batch == 0 || failed_batch == 10);
	assert_int_equal(count_gen(db, 300, 1, 1), 0);
	/* And the reopened log accepts writes again. */
	assert_int_equal(sync_batch(db, 300, 5, 2), 0);
	assert_int_equal(count_gen(db, 300, 5, 2), 5);
	assert_int_equal(cesium_close(db), 0);
	free(m.gen);
	test_rmtree(dir);
	free(dir);
}

/* The poison survives a memtable switch: sealing the memtable (which
 * starts a new WAL) must not let writes succeed again before a reopen,
 * else the failed record's sequence numbers are handed out twice. */
static void test_wal_poison_survives_memtable_switch(void **state)
{
	(void)state;
	char *dir = test_tmpdir("db-walsync2");
	cesium_db *db = open_db(dir, NULL);
	for (unsigned i = 0; i < 50; i++)
		put_kv(db, i, 1);
	struct file_fault f;
	file_fault_arm(&f, IO_OP_FSYNC, ".wal", -EIO, 1);
	f.every = true;
	int rc = sync_batch(db, 100, 10, 1);
	file_fault_disarm(&f);
	assert_int_equal(rc, CESIUM_EIO);
	/* A flush seals the memtable and opens a fresh log. */
	int frc = cesium_flush(db);
	fprintf(stderr, "flush after poison: %s\n", cesium_strerror(frc));
	char k[32], v[128];
	size_t kl = key_of(k, 100), vl = value_of(v, sizeof(v), 100, 2);
	int put_rc = cesium_put(db, k, kl, v, vl);
	fprintf(stderr, "put after flush: %s\n", cesium_strerror(put_rc));
	cesium_close(db);

	db = open_db(dir, NULL);
	assert_int_equal(count_gen(db, 0, 50, 1), 50);
	unsigned failed_batch = count_gen(db, 101, 9, 1);
	unsigned acked_put = count_gen(db, 100, 1, 2);
	fprintf(stderr, "after reopen: failed batch keys 101..109 %u of 9, put after flush %s\n",
	        failed_batch, acked_put ? "present" : "absent");
	assert_int_equal(cesium_close(db), 0);
	test_rmtree(dir);
	free(dir);
	/* An acknowledged write must survive, whatever else happened. */
	if (put_rc == 0)
		assert_int_equal(acked_put, 1);
	assert_true(failed_batch == 0 || failed_batch == 9);
	assert_int_equal(put_rc, CESIUM_EIO);
}

/* ---- io_uring refused by seccomp ------------------------------------------ */

static int block_io_uring_setup(void)
{
	struct sock_filter filter[] = {
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {
	    .len = (unsigned short)(sizeof(filter) / sizeof(filter[0])),
	    .filter = filter,
	};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return -1;
	return (int)syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
}

/* With io_uring_setup refused by a seccomp filter (Docker's default does
 * this), cesium_open fails with CESIUM_ENOTSUP and says why and how to fix. */
static void test_open_without_io_uring_is_enotsup(void **state)
{
	(void)state;
	char *dir = test_tmpdir("db-seccomp");
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (block_io_uring_setup() != 0)
			_exit(77);
		cesium_db *db = NULL;
		int rc = cesium_open(dir, NULL, &db);
		const char *msg = cesium_errmsg();
		fprintf(stderr, "child: open: %s: %s\n", cesium_strerror(rc), msg);
		if (rc != CESIUM_ENOTSUP)
			_exit(1);
		if (db != NULL)
			_exit(2);
		if (!strstr(msg, "io_uring"))
			_exit(3);
		if (!strstr(msg, "fix") && !strstr(msg, "sysctl") && !strstr(msg, "seccomp"))
			_exit(4);
		_exit(0);
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77) {
		fprintf(stderr, "seccomp unavailable: not checked\n");
	} else {
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	test_rmtree(dir);
	free(dir);
}

/* ---- write stalls ---------------------------------------------------------- */

enum { STALL_WRITERS = 4, STALL_KEYS = 20000 };

struct stall_writer {
	cesium_db *db;
	unsigned id;
	unsigned errors;
};

static void *stall_writer_main(void *arg)
{
	struct stall_writer *w = arg;
	for (unsigned i = 0; i < STALL_KEYS; i++) {
		char k[32], v[128];
		unsigned key = w->id * STALL_KEYS + i;
		size_t kl = key_of(k, key), vl = value_of(v, 48, key, 1);
		if (cesium_put(w->db, k, kl, v, vl) != 0) {
			if (w->errors++ == 0)
				fprintf(stderr, "writer %u: %s\n", w->id, cesium_errmsg());
		}
	}
	return NULL;
}

/* With a tiny memtable and one sealed slot, 4 writers stall on flushes but
 * every write succeeds and is readable; the waits are counted. */
static void test_stalled_writers_all_succeed(void **state)
{
	(void)state;
	char *dir = test_tmpdir("db-stall");
	cesium_db *db = open_db(dir, "memtable_size", "64KiB", "max_memtables", "1",
	                        "wal_prealloc_size", "256KiB", NULL);
	/* Fail fast if a 64KiB memtable cannot hold even a few hundred small
	 * entries (every write would seal, flush and stall; 80k of them
	 * would take minutes and thousands of files). */
	for (unsigned key = 0; key < 200; key++) {
		char k[32], v[128];
		size_t kl = key_of(k, key), vl = value_of(v, 48, key, 1);
		assert_int_equal(cesium_put(db, k, kl, v, vl), 0);
	}
	uint64_t early = stat_of(db, "sealed_memtables") + stat_of(db, "flushes");
	if (early > 2)
		fprintf(stderr, "200 puts of ~60 bytes sealed %llu memtables of 64KiB\n",
		        (unsigned long long)early);
	if (early > 2) {
		cesium_close(db);
		test_rmtree(dir);
		free(dir);
	}
	assert_true(early <= 2);
	struct stall_writer w[STALL_WRITERS];
	pthread_t th[STALL_WRITERS];
	for (unsigned i = 0; i < STALL_WRITERS; i++) {
		w[i] = (struct stall_writer){.db = db, .id = i};
		assert_int_equal(pthread_create(&th[i], NULL, stall_writer_main, &w[i]), 0);
	}
	for (unsigned i = 0; i < STALL_WRITERS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].errors, 0);
	}
	uint64_t waits = stat_of(db, "memtable_waits");
	uint64_t flushes = stat_of(db, "flushes");
	fprintf(stderr, "memtable_waits %llu (%llu ns), flushes %llu\n", (unsigned long long)waits,
	        (unsigned long long)stat_of(db, "memtable_wait_ns"), (unsigned long long)flushes);
	assert_true(flushes > 10);
	assert_true(waits > 0);
	for (unsigned key = 0; key < STALL_WRITERS * STALL_KEYS; key++) {
		char k[32], want[128];
		size_t kl = key_of(k, key), wl = value_of(want, 48, key, 1);
		void *val = NULL;
		size_t vlen = 0;
		int rc = cesium_get(db, k, kl, &val, &vlen);
		if (rc)
			fprintf(stderr, "key %u: %s\n", key, cesium_strerror(rc));
		assert_int_equal(rc, 0);
		assert_int_equal(vlen, wl);
		assert_memory_equal(val, want, wl);
		cesium_free(val);
	}
	assert_int_equal(cesium_close(db), 0);
	test_rmtree(dir);
	free(dir);
}

/* ---- concurrent readers and writers --------------------------------------- */

enum { RW_KEYS_PER_WRITER = 1000, RW_WRITERS = 2, RW_READERS = 2 };

struct rw_shared {
	cesium_db *db;
	_Atomic unsigned acked[RW_WRITERS * RW_KEYS_PER_WRITER];
	atomic_bool stop;
	_Atomic uint64_t errors, gets, scans, writes;
	uint64_t seed;
};

struct rw_thread {
	struct rw_shared *s;
	unsigned id;
	uint64_t rng;
};

static size_t rw_value(char *buf, unsigned key, unsigned ver)
{
	return (size_t)snprintf(buf, 96, "%06u:%010u:%s", key, ver, "payload-payload-payload");
}

/* Parses "<key>:<version>:..." */
static bool rw_parse(const void *v, size_t len, unsigned *key, unsigned *ver)
{
	char buf[96];
	if (len >= sizeof(buf))
		return false;
	memcpy(buf, v, len);
	buf[len] = '\0';
	return sscanf(buf, "%u:%u:", key, ver) == 2;
}

static void rw_error(struct rw_shared *s, const char *what, unsigned key)
{
	if (atomic_fetch_add(&s->errors, 1) < 5)
		fprintf(stderr, "%s (key %u): %s\n", what, key, cesium_errmsg());
}

static void *rw_writer_main(void *arg)
{
	struct rw_thread *t = arg;
	struct rw_shared *s = t->s;
	unsigned ver[RW_KEYS_PER_WRITER] = {0};
	while (!atomic_load(&s->stop)) {
		unsigned i = (unsigned)(test_rand(&t->rng) % RW_KEYS_PER_WRITER);
		unsigned key = t->id * RW_KEYS_PER_WRITER + i;
		char k[32], v[96];
		size_t kl = key_of(k, key), vl = rw_value(v, key, ++ver[i]);
		if (cesium_put(s->db, k, kl, v, vl) != 0) {
			rw_error(s, "put", key);
			break;
		}
		/* release: a reader that sees this version also sees the put done. */
		atomic_store_explicit(&s->acked[key], ver[i], memory_order_release);
		atomic_fetch_add(&s->writes, 1);
	}
	return NULL;
}

static void rw_get(struct rw_thread *t)
{
	struct rw_shared *s = t->s;
	unsigned key = (unsigned)(test_rand(&t->rng) % (RW_WRITERS * RW_KEYS_PER_WRITER));
	unsigned before = atomic_load_explicit(&s->acked[key], memory_order_acquire);
	char k[32];
	size_t kl = key_of(k, key);
	void *val = NULL;
	size_t vlen = 0;
	int rc = cesium_get(s->db, k, kl, &val, &vlen);
	atomic_fetch_add(&s->gets, 1);
	if (rc == CESIUM_ENOTFOUND) {
		if (before != 0)
			rw_error(s, "get: an acknowledged key is missing", key);
		return;
	}
	if (rc) {
		rw_error(s, "get failed", key);
		return;
	}
	unsigned gk, gv;
	if (!rw_parse(val, vlen, &gk, &gv) || gk != key || gv < before)
		rw_error(s, "get: wrong or older value", key);
	cesium_free(val);
}

static void rw_scan(struct rw_thread *t)
{
	struct rw_shared *s = t->s;
	enum { N = RW_WRITERS * RW_KEYS_PER_WRITER, SPAN = 20 };
	unsigned start = (unsigned)(test_rand(&t->rng) % N);
	static _Thread_local unsigned before[N];
	for (unsigned i = 0; i < N; i++)
		before[i] = atomic_load_explicit(&s->acked[i], memory_order_acquire);
	cesium_iter *it = NULL;
	if (cesium_iter_new(s->db, 0, &it) != 0) {
		rw_error(s, "iter_new", start);
		return;
	}
	char k[32];
	size_t kl = key_of(k, start);
	unsigned expect = start, seen = 0;
	for (cesium_iter_seek(it, k, kl); cesium_iter_valid(it) && seen < SPAN;
	     cesium_iter_next(it), seen++) {
		size_t gkl, gvl;
		const char *gk = cesium_iter_key(it, &gkl);
		const void *gv = cesium_iter_value(it, &gvl);
		unsigned key, vk, ver;
		char kbuf[16] = { 0 }; /* iterator keys are not NUL-terminated */
		if (gkl == 9)
			memcpy(kbuf, gk, 9);
		if (gkl != 9 || sscanf(kbuf, "key%6u", &key) != 1 || key < expect) {
			rw_error(s, "scan: key out of order", expect);
			break;
		}
		/* No acknowledged key between the last one and this may be skipped. */
		for (unsigned j = expect; j < key; j++)
			if (before[j] != 0)
				rw_error(s, "scan: skipped an acknowledged key", j);
		if (!rw_parse(gv, gvl, &vk, &ver) || vk != key || ver < before[key])
			rw_error(s, "scan: wrong or older value", key);
		expect = key + 1;
	}
	if (cesium_iter_status(it) != 0)
		rw_error(s, "scan: iterator error", start);
	cesium_iter_free(it);
	atomic_fetch_add(&s->scans, 1);
}

static void *rw_reader_main(void *arg)
{
	struct rw_thread *t = arg;
	while (!atomic_load(&t->s->stop)) {
		if (test_rand(&t->rng) % 8 == 0)
			rw_scan(t);
		else
			rw_get(t);
	}
	return NULL;
}

/* 2 writers and 2 readers (gets and short scans) for 2 s with flushes
 * happening: every read returns the acknowledged version or a newer one. */
static void test_concurrent_readers_see_latest_writes(void **state)
{
	(void)state;
	char *dir = test_tmpdir("db-rw");
	struct rw_shared *s = calloc(1, sizeof(*s));
	assert_non_null(s);
	s->seed = test_seed("db_rw");
	s->db = open_db(dir, "memtable_size", "256KiB", "wal_prealloc_size", "1MiB", NULL);
	struct rw_thread t[RW_WRITERS + RW_READERS];
	pthread_t th[RW_WRITERS + RW_READERS];
	for (unsigned i = 0; i < RW_WRITERS + RW_READERS; i++) {
		t[i] = (struct rw_thread){.s = s,
		                          .id = i < RW_WRITERS ? i : i - RW_WRITERS,
		                          .rng = s->seed + i * 0x9e3779b97f4a7c15ull};
		assert_int_equal(pthread_create(&th[i], NULL,
		                                i < RW_WRITERS ? rw_writer_main : rw_reader_main,
		                                &t[i]),
		                 0);
	}
	usleep(2000000);
	atomic_store(&s->stop, true);
	for (unsigned i = 0; i < RW_WRITERS + RW_READERS; i++)
		pthread_join(th[i], NULL);
	fprintf(stderr, "writes %llu gets %llu scans %llu flushes %llu\n",
	        (unsigned long long)atomic_load(&s->writes),
	        (unsigned long long)atomic_load(&s->gets),
	        (unsigned long long)atomic_load(&s->scans),
	        (unsigned long long)stat_of(s->db, "flushes"));
	assert_int_equal(atomic_load(&s->errors), 0);
	assert_true(atomic_load(&s->writes) > 1000);
	assert_true(atomic_load(&s->gets) > 1000);
	assert_true(atomic_load(&s->scans) > 10);
	assert_true(stat_of(s->db, "flushes") > 0);
	assert_int_equal(cesium_close(s->db), 0);
	free(s);
	test_rmtree(dir);
	free(dir);
}

/* ---- iterators across flush and compaction ------------------------------- */

/* The ending of the tests below: the live view matches m, then the
 * database, m and dir go. */
static void check_close_and_remove(cesium_db *db, char *dir, struct model *m)
{
	model_check(db, m);
	assert_int_equal(cesium_close(db), 0);
	free(m->gen);
	test_rmtree(dir);
	free(dir);
}

/* An iterator created before 10k more writes, a flush and a full
 * compaction still returns exactly its snapshot. */
static void test_iterator_snapshot_survives_flush_and_compaction(void **state)
{
	(void)state;
	char *dir = test_tmpdir("db-itersnap");
	uint64_t seed = test_seed("db_itersnap");
	cesium_db *db = open_db(dir, "memtable_size", "1MiB", NULL);
	enum { N = 8000 };
	struct model m;
	model_init(&m, N);
	for (unsigned i = 0; i < N; i += 2)
		model_put(db, &m, i, 1);
	assert_int_equal(cesium_flush(db), 0);
	for (unsigned i = 0; i < N; i += 3)
		model_put(db, &m, i, 2);
	for (unsigned i = 0; i < N; i += 10)
		model_delete(db, &m, i);

	/* The snapshot's contents: part in L0, part in the memtable. */
	unsigned *snap = malloc(N * sizeof(unsigned));
	assert_non_null(snap);
	memcpy(snap, m.gen, N * sizeof(unsigned));
	cesium_iter *it = NULL;
	assert_int_equal(cesium_iter_new(db, 0, &it), 0);

	for (unsigned n = 0; n < 10000; n++) {
		unsigned id = (unsigned)(test_rand(&seed) % N);
		if (test_rand(&seed) % 5 == 0)
			model_delete(db, &m, id);
		else
			model_put(db, &m, id, 3 + n);
	}
	assert_int_equal(cesium_flush(db), 0);
	assert_int_equal(cesium_compact(db), 0);
	assert_int_equal(total_segments(db), 1);

	struct model then = {.n = N, .gen = snap};
	assert_true(model_check_iter(it, &then) > 1000);
	cesium_iter_free(it);
	free(snap);
	/* And the live view is the newest one. */
	check_close_and_remove(db, dir, &m);
}

/* A long-lived iterator does not pin what a compaction replaced beyond
 * its next seek: the seek moves it onto the newest state (same snapshot),
 * and the replaced segments are deleted while it stays open. */
static void test_seek_releases_replaced_segments(void **state)
{
	(void)state;
	char *dir = test_tmpdir("db-iterrefresh");
	cesium_db *db = open_db(dir, "memtable_size", "1MiB", NULL);
	enum { N = 6000 };
	struct model m;
	model_init(&m, N);
	for (int round = 0; round < 3; round++) {
		for (unsigned i = (unsigned)round; i < N; i += 3)
			model_put(db, &m, i, 1);
		assert_int_equal(cesium_flush(db), 0);
	}
	assert_true(count_files(dir, ".seg") >= 3);
	cesium_iter *it = NULL;
	assert_int_equal(cesium_iter_new(db, 0, &it), 0);
	assert_int_equal(model_check_iter(it, &m), N);
	unsigned *snap = malloc(N * sizeof(unsigned));
	assert_non_null(snap);
	memcpy(snap, m.gen, N * sizeof(unsigned));
	for (unsigned i = 0; i < N; i += 2)
		model_put(db, &m, i, 2);
	assert_int_equal(cesium_compact(db), 0);
	assert_int_equal(total_segments(db), 1);
	/* Pinned by the iterator's last seek. */
	assert_true(count_files(dir, ".seg") > 1);
	char k[32];
	cesium_iter_seek(it, k, key_of(k, 1));
	assert_true(cesium_iter_valid(it));
	assert_int_equal(wait_files(dir, ".seg", 1), 1);
	struct model then = {.n = N, .gen = snap};
	assert_int_equal(model_check_iter(it, &then), N);
	cesium_iter_free(it);
	free(snap);
	check_close_and_remove(db, dir, &m);
}

/* The `seeks` statistic counts every positioning: an open iterator's in
 * batches of 16, the rest when it is freed; `iters` counts iterators. */
static void test_seeks_counted_per_positioning(void **state)
{
	(void)state;
	char *dir = test_tmpdir("db-seeks");
	cesium_db *db = open_db(dir, NULL);
	struct model m;
	model_init(&m, 100);
	for (unsigned i = 0; i < 100; i++)
		model_put(db, &m, i, 1);
	uint64_t seeks = stat_of(db, "seeks"), iters = stat_of(db, "iters");
	cesium_iter *it = NULL;
	assert_int_equal(cesium_iter_new(db, 0, &it), 0);
	char k[32];
	for (unsigned i = 0; i < 40; i++) {
		if (i % 10 == 0)
			cesium_iter_seek_first(it);
		else
			cesium_iter_seek(it, k, key_of(k, i));
		assert_true(cesium_iter_valid(it));
	}
	assert_int_equal(stat_of(db, "seeks") - seeks, 32);
	cesium_iter_free(it);
	assert_int_equal(stat_of(db, "seeks") - seeks, 40);
	assert_int_equal(cesium_iter_new(db, 0, &it), 0);
	cesium_iter_seek(it, k, key_of(k, 3));
	cesium_iter_free(it);
	assert_int_equal(stat_of(db, "seeks") - seeks, 41);
	assert_int_equal(stat_of(db, "iters") - iters, 2);
	check_close_and_remove(db, dir, &m);
}

/* ---- group commit --------------------------------------------------------- */

enum { SYNC_WRITERS = 16, SYNC_PUTS = 60 };

struct sync_writer {
	cesium_db *db;
	unsigned id;
	unsigned puts;       /* 0: SYNC_PUTS */
	size_t value_len;    /* 0: the key itself; else the key, padded */
	atomic_uint *unread; /* puts not visible to their own writer right after */
};

/* Writer id's i-th value: its key, padded with the key's last byte up to
 * len bytes (len 0: the key alone). Returns the length. */
static size_t sync_value(char *buf, const char *key, size_t klen, size_t len)
{
	memcpy(buf, key, klen);
	if (len <= klen)
		return klen;
	memset(buf + klen, key[klen - 1], len - klen);
	return len;
}

/* Each fdatasync takes 2 ms, so that writers pile up behind it. */
static int slow_fsync(void *arg, enum io_op op, int fd, const char *path, size_t *len)
{
	(void)arg;
	(void)fd;
	(void)path;
	(void)len;
	if (op == IO_OP_FSYNC)
		usleep(2000);
	return 0;
}

static void *sync_writer_main(void *arg)
{
	struct sync_writer *w = arg;
	cesium_batch *b;
	if (cesium_batch_new(&b))
		return (void *)1;
	unsigned puts = w->puts ? w->puts : SYNC_PUTS;
	for (unsigned i = 0; i < puts; i++) {
		char key[32], val[512];
		int kl = snprintf(key, sizeof(key), "w%02u-%04u", w->id, i);
		size_t vl = sync_value(val, key, (size_t)kl, w->value_len);
		cesium_batch_clear(b);
		if (cesium_batch_put(b, 0, key, (size_t)kl, val, vl) ||
		    cesium_write(w->db, b, CESIUM_WRITE_SYNC))
			return (void *)1;
		void *got;
		size_t got_len;
		bool whole = cesium_get(w->db, key, (size_t)kl, &got, &got_len) == 0;
		if (whole) {
			whole = got_len == vl && memcmp(got, val, vl) == 0;
			cesium_free(got);
		}
		if (!whole)
			atomic_fetch_add(w->unread, 1);
	}
	cesium_batch_free(b);
	return NULL;
}

/* Runs n sync writers (at most SYNC_WRITERS) of `puts` puts each, values
 * padded to value_len (sync_value), and returns how many writes were not
 * read back whole by their own writer right after. */
static unsigned run_sync_writers(cesium_db *db, unsigned n, unsigned puts, size_t value_len)
{
	struct sync_writer w[SYNC_WRITERS];
	pthread_t t[SYNC_WRITERS];
	atomic_uint unread = 0;
	assert_true(n <= SYNC_WRITERS);
	for (unsigned i = 0; i < n; i++) {
		w[i] = (struct sync_writer){
		    .db = db, .id = i, .puts = puts, .value_len = value_len, .unread = &unread};
		assert_int_equal(pthread_create(&t[i], NULL, sync_writer_main, &w[i]), 0);
	}
	for (unsigned i = 0; i < n; i++) {
		void *ret;
		pthread_join(t[i], &ret);
		assert_null(ret);
	}
	return atomic_load(&unread);
}

/* Reopens the database in dir and finds every write run_sync_writers made,
 * whole. */
static void check_sync_writes(const char *dir, unsigned n, unsigned puts, size_t value_len)
{
	cesium_db *db = open_db(dir, NULL);
	for (unsigned id = 0; id < n; id++)
		for (unsigned i = 0; i < puts; i++) {
			char key[32], want[512];
			int kl = snprintf(key, sizeof(key), "w%02u-%04u", id, i);
			size_t wl = sync_value(want, key, (size_t)kl, value_len);
			void *v;
			size_t vl;
			assert_int_equal(cesium_get(db, key, (size_t)kl, &v, &vl), 0);
			assert_int_equal(vl, wl);
			assert_memory_equal(v, want, wl);
			cesium_free(v);
		}
	assert_int_equal(cesium_close(db), 0);
}

/* One get of id, checked against the model. */
static void check_get(cesium_db *db, const struct model *m, unsigned id)
{
	char k[32], want[256];
	size_t kl = key_of(k, id);
	void *v = NULL;
	size_t vl = 0;
	int rc = cesium_get(db, k, kl, &v, &vl);
	if (!m->gen[id]) {
		assert_int_equal(rc, CESIUM_ENOTFOUND);
		return;
	}
	assert_int_equal(rc, 0);
	size_t wl = value_of(want, sizeof(want), id, m->gen[id]);
	assert_int_equal(vl, wl);
	assert_memory_equal(v, want, wl);
	cesium_free(v);
}

/* Fails the first segment write after a delay, so that a newer memtable is
 * sealed and flushed behind the failing one. */
static int fail_first_seg_write_late(void *arg, enum io_op op, int fd, const char *path,
                                     size_t *len)
{
	atomic_int *seen = arg;
	(void)len;
	char target[512];
	if (!path && fd_path(fd, target, sizeof(target)))
		path = target; /* ring writes name the file by descriptor */
	if (op != IO_OP_WRITE || !path || !strstr(path, ".seg"))
		return 0;
	if (atomic_fetch_add(seen, 1) != 0)
		return 0;
	usleep(300000);
	return -EIO;
}

/* A seal whose new WAL fails after the file exists (its fsync) and whose
 * cleanup unlink fails too leaves an empty WAL behind, linked to the
 * current one; the next seal links its WAL to the same predecessor. Replay
 * must pass the empty orphan and replay the real successor: the writes in
 * it were acknowledged. The successor's memtable is kept from being
 * flushed (its segment write fails), so that the reopen replays it. */
struct orphan_faults {
	atomic_int wal_fsyncs, wal_unlinks, seg_writes;
	atomic_bool seg_armed;
};

static int orphan_wal_hook(void *arg, enum io_op op, int fd, const char *path, size_t *len)
{
	struct orphan_faults *f = arg;
	(void)len;
	char target[512];
	if (!path && fd >= 0 && fd_path(fd, target, sizeof(target)))
		path = target;
	if (!path)
		return 0;
	if (op == IO_OP_FSYNC && strstr(path, ".wal") && atomic_fetch_add(&f->wal_fsyncs, 1) == 0)
		return -EIO;
	if (op == IO_OP_UNLINK && strstr(path, ".wal") && atomic_fetch_add(&f->wal_unlinks, 1) == 0)
		return -EIO;
	if (op == IO_OP_WRITE && strstr(path, ".seg") && atomic_load(&f->seg_armed) &&
	    atomic_fetch_add(&f->seg_writes, 1) == 0) {
		usleep(300000);
		return -EIO;
	}
	return 0;
}

static void test_orphan_wal_does_not_hide_later_writes(void **state)
{
	(void)state;
	char *dir = test_tmpdir("db-orphanwal");
	cesium_db *db = open_db(dir, "memtable_size", "64KiB", "max_memtables", "4",
	                        "l0_compaction_trigger", "100", "l0_slowdown_trigger", "1000",
	                        "l0_stop_trigger", "1000", NULL);
	struct model m;
	model_init(&m, FAULT_KEYS);
	for (unsigned i = 0; i < 50; i++)
		model_put(db, &m, i, 1);
	static struct orphan_faults f;
	memset(&f, 0, sizeof(f));
	io_fault_set(orphan_wal_hook, &f);
	/* The seal's new WAL fails its fsync; its removal fails too. */
	assert_int_equal(cesium_flush(db), CESIUM_EIO);
	assert_int_equal(atomic_load(&f.wal_unlinks), 1);
	assert_int_equal(count_files(dir, ".wal"), 2);
	/* Now a memtable's worth of writes: the seal inside them succeeds,
	 * its flush fails late, and the writes after the seal land in the
	 * new WAL, acknowledged, until the failure reaches writers. */
	atomic_store(&f.seg_armed, true);
	unsigned after = 0;
	for (unsigned i = 0; i < FAULT_KEYS; i++) {
		char k[32], v[128];
		size_t kl = key_of(k, i), vl = value_of(v, sizeof(v), i, 2);
		if (cesium_put(db, k, kl, v, vl) != 0)
			break;
		m.gen[i] = 2;
		after += count_files(dir, ".wal") == 3;
	}
	usleep(400000);
	io_fault_set(NULL, NULL);
	fprintf(stderr, "orphan WAL: %u acknowledged writes after the seal, %d WALs\n", after,
	        count_files(dir, ".wal"));
	assert_true(after > 0);
	cesium_close(db); /* reports the flush failure */
	db = open_db(dir, NULL);
	model_check(db, &m);
	assert_int_equal(cesium_close(db), 0);
	free(m.gen);
	test_rmtree(dir);
	free(dir);
}

/* A flush that fails leaves its memtable readable and its WAL replayable
 * even when a newer memtable's flush succeeds behind it: installing that
 * one would drop the failed memtable from the read state and retire its
 * WAL (an acknowledged write read back old, then lost at reopen). */
static void test_failed_flush_not_overtaken_by_a_later_one(void **state)
{
	(void)state;
	char *dir = test_tmpdir("db-flushorder");
	/* No compaction: every segment write is a flush's. */
	cesium_db *db = open_db(dir, "memtable_size", "64KiB", "max_memtables", "4",
	                        "l0_compaction_trigger", "100", "l0_slowdown_trigger", "1000",
	                        "l0_stop_trigger", "1000", NULL);
	struct model m;
	model_init(&m, FAULT_KEYS);
	for (unsigned i = 0; i < FAULT_KEYS; i++)
		model_put(db, &m, i, 1);
	assert_int_equal(cesium_flush(db), 0);
	atomic_int seen = 0;
	io_fault_set(fail_first_seg_write_late, &seen);
	/* Generation 2 of every key: several 64 KiB memtables, sealed while
	 * the first one's flush is still failing. */
	unsigned written = 0;
	for (unsigned i = 0; i < FAULT_KEYS; i++) {
		char k[32], v[128];
		size_t kl = key_of(k, i), vl = value_of(v, sizeof(v), i, 2);
		if (cesium_put(db, k, kl, v, vl) != 0)
			break; /* the failure reached writers */
		m.gen[i] = 2;
		written++;
	}
	usleep(600000); /* every flush has ended, failed or not */
	io_fault_set(NULL, NULL);
	fprintf(stderr, "segment writes %d, puts %u, sealed %llu, flushes %llu\n", atomic_load(&seen),
	        written, (unsigned long long)stat_of(db, "sealed_memtables"),
	        (unsigned long long)stat_of(db, "flushes"));
	assert_true(atomic_load(&seen) >= 2); /* a later flush wrote too */
	assert_true(written > 0);
	for (unsigned i = 0; i < FAULT_KEYS; i++)
		check_get(db, &m, i);
	cesium_close(db); /* reports the flush failure */
	db = open_db(dir, NULL);
	model_check(db, &m);
	assert_int_equal(cesium_close(db), 0);
	free(m.gen);
	test_rmtree(dir);
	free(dir);
}

/* checksum_every_read: a block that changes on disk after this segment's
 * first read of it is still caught, on the next read. */
static void test_checksum_every_read_catches_later_damage(void **state)
{
	(void)state;
	char *dir = test_tmpdir("db-everyread");
	cesium_db *db = open_db(dir, "checksum_every_read", "true", "block_cache_size", "0", NULL);
	struct model m;
	model_init(&m, 200);
	for (unsigned i = 0; i < 200; i++)
		model_put(db, &m, i, 1);
	assert_int_equal(cesium_flush(db), 0);
	check_get(db, &m, 0); /* the first read of the first block */
	/* Damage the first data block's first value byte range. */
	char seg[600] = "";
	DIR *d = opendir(dir);
	assert_non_null(d);
	for (struct dirent *e; (e = readdir(d));)
		if (strstr(e->d_name, ".seg"))
			snprintf(seg, sizeof(seg), "%s/%s", dir, e->d_name);
	closedir(d);
	assert_true(seg[0]);
	int fd = open(seg, O_RDWR);
	assert_true(fd >= 0);
	uint8_t b;
	assert_int_equal(pread(fd, &b, 1, 40), 1);
	b ^= 0x5a;
	assert_int_equal(pwrite(fd, &b, 1, 40), 1);
	close(fd);
	char k[32];
	void *v = NULL;
	size_t vl = 0;
	assert_int_equal(cesium_get(db, k, key_of(k, 0), &v, &vl), CESIUM_ECORRUPT);
	assert_non_null(strstr(cesium_errmsg(), ".seg"));
	cesium_close(db);
	free(m.gen);
	test_rmtree(dir);
	free(dir);
}

/* The 2 KiB value of key i, generation g: every byte depends on both. */
static void big_value(uint8_t *v, size_t n, unsigned i, unsigned g)
{
	for (size_t j = 0; j < n; j++)
		v[j] = (uint8_t)(i * 31 + g * 7 + j);
}

static void check_big(cesium_db *db, unsigned i, unsigned g)
{
	char k[32];
	uint8_t want[2048];
	void *v = NULL;
	size_t vl = 0;
	big_value(want, sizeof(want), i, g);
	assert_int_equal(cesium_get(db, k, key_of(k, i), &v, &vl), 0);
	assert_int_equal(vl, sizeof(want));
	assert_memory_equal(v, want, sizeof(want));
	cesium_free(v);
}

/* Large values stay in the log record they were written to, the memtable
 * pointing at them: they read back through gets and through an iterator
 * opened before their memtable was sealed, flushed and its log retired
 * (the iterator keeps the log's mapping), and after a reopen. */
static void test_large_values_read_from_the_log(void **state)
{
	(void)state;
	char *dir = test_tmpdir("db-heldvalues");
	cesium_db *db = open_db(dir, "memtable_size", "64KiB", NULL);
	uint8_t v[2048];
	char k[32];
	for (unsigned i = 0; i < 20; i++) {
		big_value(v, sizeof(v), i, 1);
		assert_int_equal(cesium_put(db, k, key_of(k, i), v, sizeof(v)), 0);
	}
	assert_int_equal(stat_of(db, "memtable_log_value_bytes"), 20 * sizeof(v));
	cesium_iter *it = NULL;
	assert_int_equal(cesium_iter_new(db, 0, &it), 0);
	/* Seal, flush and retire that memtable and its log, many times over. */
	for (unsigned i = 20; i < 400; i++) {
		big_value(v, sizeof(v), i, 1);
		assert_int_equal(cesium_put(db, k, key_of(k, i), v, sizeof(v)), 0);
	}
	assert_int_equal(cesium_flush(db), 0);
	assert_true(stat_of(db, "flushes") >= 10);
	unsigned n = 0;
	for (cesium_iter_seek_first(it); cesium_iter_valid(it); cesium_iter_next(it), n++) {
		size_t vl = 0;
		const void *val = cesium_iter_value(it, &vl);
		big_value(v, sizeof(v), n, 1);
		assert_int_equal(vl, sizeof(v));
		assert_memory_equal(val, v, sizeof(v));
	}
	assert_int_equal(n, 20);
	cesium_iter_free(it);
	for (unsigned i = 0; i < 400; i += 7)
		check_big(db, i, 1);
	assert_int_equal(cesium_close(db), 0);
	db = open_db(dir, NULL);
	for (unsigned i = 0; i < 400; i += 3)
		check_big(db, i, 1);
	cesium_close(db);
	test_rmtree(dir);
	free(dir);
}

/* ---- values kept in the log ---------------------------------------- */

/* The names (in dir) of its .wal files, ascending by number; returns how
 * many (at most cap). */
static int list_wals(const char *dir, unsigned long long *numbers, int cap)
{
	int n = 0;
	DIR *d = opendir(dir);
	assert_non_null(d);
	for (struct dirent *e; (e = readdir(d));) {
		unsigned long long x;
		char tail[8];
		if (sscanf(e->d_name, "%llu.%7s", &x, tail) == 2 && strcmp(tail, "wal") == 0 &&
		    n < cap)
			numbers[n++] = x;
	}
	closedir(d);
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && numbers[j - 1] > numbers[j]; j--) {
			unsigned long long t = numbers[j];
			numbers[j] = numbers[j - 1];
			numbers[j - 1] = t;
		}
	return n;
}

/* The format version in the footer of every .seg in dir; fails unless
 * they all agree, and returns it. */
static uint32_t segment_versions(const char *dir)
{
	uint32_t version = 0;
	DIR *d = opendir(dir);
	assert_non_null(d);
	for (struct dirent *e; (e = readdir(d));) {
		if (!strstr(e->d_name, ".seg"))
			continue;
		char path[600];
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		int fd = open(path, O_RDONLY);
		assert_true(fd >= 0);
		off_t size = lseek(fd, 0, SEEK_END);
		uint8_t v[4];
		/* The footer's u32 version is 20 bytes before the file's end. */
		assert_int_equal(pread(fd, v, 4, size - 20), 4);
		close(fd);
		uint32_t ver = (uint32_t)v[0] | (uint32_t)v[1] << 8 | (uint32_t)v[2] << 16 |
		               (uint32_t)v[3] << 24;
		if (version)
			assert_int_equal(ver, version);
		version = ver;
	}
	closedir(d);
	return version;
}

static bool file_exists(const char *dir, unsigned long long number, const char *ext)
{
	char path[600];
	snprintf(path, sizeof(path), "%s/%06llu.%s", dir, number, ext);
	return access(path, F_OK) == 0;
}

/* Puts keys 0..n-1 at generation 1 into db and model m, then flushes. */
static void fill_and_flush(cesium_db *db, struct model *m, unsigned n)
{
	model_init(m, n);
	for (unsigned i = 0; i < n; i++)
		model_put(db, m, i, 1);
	assert_int_equal(cesium_flush(db), 0);
}

/* Ends a test: closes db, frees the model and removes dir. */
static void close_and_remove(cesium_db *db, struct model *m, char *dir)
{
	cesium_close(db);
	free(m->gen);
	test_rmtree(dir);
	free(dir);
}

/* A flushed memtable's long values stay where its log has them: the log
 * outlives the flush, the segment (format version 3) refers to it, gets,
 * scans and a reopen read the values back, and compaction copies them
 * into a level and lets the log go. */
static void test_flushed_values_stay_in_their_log(void **state)
{
	(void)state;
	char *dir = test_tmpdir("db-logvalues");
	/* The model's values are about 75 bytes; no L0 compaction yet. */
	cesium_db *db = open_db(dir, "log_value_min_size", "64", "l0_compaction_trigger", "100",
	                        "l0_slowdown_trigger", "200", "l0_stop_trigger", "300", NULL);
	struct model m;
	fill_and_flush(db, &m, 300);
	unsigned long long wals[8];
	assert_int_equal(list_wals(dir, wals, 8), 2); /* the kept log and the live one */
	unsigned long long kept = wals[0];
	assert_int_equal(segment_versions(dir), 3);
	model_check(db, &m);
	/* Overwrite a third, half of it two puts to a batch, and delete a
	 * third: the newer versions go to a second kept log, the older ones
	 * still read from the first. A put alone in its log record is checked
	 * by the record's checksum, one of two by its own. */
	for (unsigned i = 0; i < 50; i++)
		model_put(db, &m, i, 2);
	for (unsigned i = 50; i < 100; i += 2) {
		cesium_batch *b;
		assert_int_equal(cesium_batch_new(&b), 0);
		for (unsigned id = i; id < i + 2; id++) {
			char k[32], v[128];
			size_t kl = key_of(k, id), vl = value_of(v, sizeof(v), id, 2);
			assert_int_equal(cesium_batch_put(b, 0, k, kl, v, vl), 0);
			m.gen[id] = 2;
		}
		assert_int_equal(cesium_write(db, b, 0), 0);
		cesium_batch_free(b);
	}
	for (unsigned i = 100; i < 200; i++)
		model_delete(db, &m, i);
	assert_int_equal(cesium_flush(db), 0);
	assert_int_equal(list_wals(dir, wals, 8), 3);
	model_check(db, &m);
	model_check_after_reopen(db, dir, &m);
	assert_true(file_exists(dir, kept, "wal"));
	db = open_db(dir, NULL);
	model_check(db, &m);
	assert_int_equal(cesium_compact(db), 0);
	model_check(db, &m);
	/* Compaction copied the values out: once the old segments go, their
	 * logs go with them. */
	assert_int_equal(wait_files(dir, ".wal", 1), 1);
	assert_false(file_exists(dir, kept, "wal"));
	close_and_remove(db, &m, dir);
}

/* Damage to a value kept in a log is found by its checksum and reported
 * with the log's name and the offset. */
static void test_damaged_log_value_is_reported(void **state)
{
	(void)state;
	char *dir = test_tmpdir("db-logvalue-damage");
	cesium_db *db = open_db(dir, "log_value_min_size", "64", NULL);
	struct model m;
	fill_and_flush(db, &m, 50);
	unsigned long long wals[4];
	assert_int_equal(list_wals(dir, wals, 4), 2);
	char path[600], want[256];
	snprintf(path, sizeof(path), "%s/%06llu.wal", dir, wals[0]);
	size_t wl = value_of(want, sizeof(want), 7, 1);
	/* Find key 7's value in the kept log and flip its last byte. */
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	off_t size = lseek(fd, 0, SEEK_END);
	uint8_t *buf = malloc((size_t)size);
	assert_non_null(buf);
	/* The scheduler may be cutting the log's unused tail meanwhile. */
	ssize_t got = pread(fd, buf, (size_t)size, 0);
	assert_true(got > 0);
	uint8_t *at = memmem(buf, (size_t)got, want, wl);
	assert_non_null(at);
	off_t off = (off_t)(at - buf) + (off_t)wl - 1;
	uint8_t b = (uint8_t)(buf[off] ^ 0x5a);
	assert_int_equal(pwrite(fd, &b, 1, off), 1);
	close(fd);
	free(buf);
	char k[32];
	void *v = NULL;
	size_t vl = 0;
	assert_int_equal(cesium_get(db, k, key_of(k, 7), &v, &vl), CESIUM_ECORRUPT);
	char name[64];
	snprintf(name, sizeof(name), "%06llu.wal", wals[0]);
	assert_non_null(strstr(cesium_errmsg(), name));
	assert_non_null(strstr(cesium_errmsg(), "offset"));
	/* Another key's value is intact. */
	check_get(db, &m, 8);
	close_and_remove(db, &m, dir);
}

/* log_value_min_size=0: flushes copy every value, and no log is kept. */
static void test_log_values_off_keeps_no_log(void **state)
{
	(void)state;
	char *dir = test_tmpdir("db-logvalues-off");
	cesium_db *db = open_db(dir, "log_value_min_size", "0", NULL);
	struct model m;
	fill_and_flush(db, &m, 100);
	unsigned long long wals[4];
	assert_int_equal(wait_files(dir, ".wal", 1), 1);
	assert_int_equal(list_wals(dir, wals, 4), 1);
	assert_int_equal(segment_versions(dir), 1);
	model_check(db, &m);
	close_and_remove(db, &m, dir);
}

/* A database in dir whose memtable holds FAULT_KEYS keys, all in m. */
static cesium_db *open_with_full_memtable(const char *dir, struct model *m)
{
	cesium_db *db = open_db(dir, "memtable_size", "64MiB", NULL);
	model_init(m, FAULT_KEYS);
	for (unsigned i = 0; i < FAULT_KEYS; i++)
		model_put(db, m, i, 1);
	return db;
}

/* A memtable that stops receiving writes while gets go on is flushed
 * (db_idle_check): after a second without writes, the gets find its keys
 * in a segment; while writes keep coming, nothing is flushed. The loops
 * wait for the flush, not for a level-0 segment: once writes stop, the
 * scheduler may fold that segment into level 1 before the next sample. */
static void test_idle_memtable_flushed_under_reads(void **state)
{
	(void)state;
	char *dir = test_tmpdir("db-idle");
	struct model m;
	cesium_db *db = open_with_full_memtable(dir, &m);
	/* Writes interleaved with gets for half a second: no idle flush. */
	uint64_t t0 = now_ns();
	for (unsigned i = 0; now_ns() - t0 < 500000000ull; i++) {
		if (i % 64 == 0)
			model_put(db, &m, i % FAULT_KEYS, 2);
		check_get(db, &m, i % FAULT_KEYS);
	}
	assert_int_equal(stat_of(db, "flushes"), 0);
	/* Then gets only: within a few seconds the memtable is flushed. */
	t0 = now_ns();
	for (unsigned i = 0; stat_of(db, "flushes") == 0; i++) {
		check_get(db, &m, i % FAULT_KEYS);
		assert_true(now_ns() - t0 < 10000000000ull);
	}
	assert_int_equal(stat_of(db, "flushes"), 1);
	model_check(db, &m);
	assert_int_equal(cesium_close(db), 0);
	free(m.gen);
	test_rmtree(dir);
	free(dir);
}

/* The same through one long-lived iterator that only seeks (as a reader
 * reusing its iterator does): its seeks sample too, and once the memtable
 * is flushed they move the iterator onto the new segment. */
static void test_idle_memtable_flushed_under_seeks(void **state)
{
	(void)state;
	char *dir = test_tmpdir("db-idle-seeks");
	struct model m;
	cesium_db *db = open_with_full_memtable(dir, &m);
	cesium_iter *it = NULL;
	assert_int_equal(cesium_iter_new(db, 0, &it), 0);
	uint64_t t0 = now_ns();
	for (unsigned i = 0; stat_of(db, "flushes") == 0; i++) {
		char k[32];
		size_t kl = key_of(k, i % FAULT_KEYS);
		cesium_iter_seek(it, k, kl);
		assert_true(cesium_iter_valid(it));
		assert_true(now_ns() - t0 < 10000000000ull);
	}
	assert_int_equal(stat_of(db, "flushes"), 1);
	/* Its view, now from the segment, is still the whole snapshot. */
	assert_int_equal(model_check_iter(it, &m), FAULT_KEYS);
	cesium_iter_free(it);
	assert_int_equal(cesium_close(db), 0);
	free(m.gen);
	test_rmtree(dir);
	free(dir);
}

/* A lone writer never waits, so it must issue no wake-up: a futex call
 * per write cost it an eighth of its speed once (bench/RESULTS.md,
 * 2026-11-27, 7ff4cd3). Plain puts, sync batches and cesium_sync. */
static void test_lone_writer_issues_no_wakeups(void **state)
{
	(void)state;
	char *dir = test_tmpdir("lonewriter");
	cesium_db *db = open_db(dir, NULL);
	cesium_batch *b;
	assert_int_equal(cesium_batch_new(&b), 0);
	uint64_t wakes0 = park_wakes_issued();
	for (unsigned i = 0; i < 2000; i++) {
		char key[32];
		int kl = snprintf(key, sizeof(key), "k%05u", i);
		assert_int_equal(cesium_put(db, key, (size_t)kl, key, (size_t)kl), 0);
		if (i % 100 == 0) {
			cesium_batch_clear(b);
			assert_int_equal(cesium_batch_put(b, 0, key, (size_t)kl, "s", 1), 0);
			assert_int_equal(cesium_write(db, b, CESIUM_WRITE_SYNC), 0);
			assert_int_equal(cesium_sync(db), 0);
		}
	}
	assert_int_equal(park_wakes_issued() - wakes0, 0);
	cesium_batch_free(b);
	assert_int_equal(cesium_close(db), 0);
	test_rmtree(dir);
	free(dir);
}

/* Sync writers share fdatasyncs: while one runs, the writers behind it
 * append, and the next sync covers them all. The syncer gathers the writers
 * the last sync released before it starts, so they share one sync rather
 * than split into two cohorts that alternate (8 writes per sync here).
 * Every sync write is readable by its writer as soon as it returns, and all
 * of them survive a reopen. */
static void test_sync_writers_share_fdatasyncs(void **state)
{
	(void)state;
	char *dir = test_tmpdir("groupsync");
	cesium_db *db = open_db(dir, NULL);
	uint64_t syncs0 = stat_of(db, "synced_groups");
	uint64_t sync_ns0 = stat_of(db, "log_sync_ns");
	io_fault_set(slow_fsync, NULL);
	unsigned unread = run_sync_writers(db, SYNC_WRITERS, SYNC_PUTS, 0);
	io_fault_set(NULL, NULL);
	uint64_t syncs = stat_of(db, "synced_groups") - syncs0;
	fprintf(stderr, "%u sync writes, %llu fdatasync rounds\n", SYNC_WRITERS * SYNC_PUTS,
	        (unsigned long long)syncs);
	assert_int_equal(unread, 0);
	/* Serialized syncs would take one round per write, two cohorts one
	 * round per SYNC_WRITERS / 2 writes; gathered, most rounds serve all. */
	assert_true(syncs * SYNC_WRITERS * 2 <= SYNC_WRITERS * SYNC_PUTS * 3);
	/* Each round waited at least for one slowed fdatasync. */
	assert_true(stat_of(db, "log_sync_ns") - sync_ns0 >= syncs * 2000000ull);
	assert_int_equal(cesium_close(db), 0);
	check_sync_writes(dir, SYNC_WRITERS, SYNC_PUTS, 0);
	test_rmtree(dir);
	free(dir);
}

/* Every 64th late insert waits 10 ms: longer than a small memtable's
 * flush, so a seal that did not wait for it would lose the entry. */
static atomic_uint late_inserts;

static void slow_late_insert(void)
{
	if (atomic_fetch_add(&late_inserts, 1) % 64 == 0)
		usleep(10000);
}

/* A sync group inserts into the memtable after handing the write queue on,
 * so a later leader may find the memtable full while those inserts run: its
 * seal waits for them, or the flush would write a memtable that is still
 * changing and retire the log of the entries it missed. Small memtables
 * seal every few hundred writes here, and some late inserts are held back
 * (slow_late_insert); every write must survive a reopen, which reads the
 * flushed segments, not the retired logs. */
static void test_sync_inserts_finish_before_a_seal(void **state)
{
	(void)state;
	enum { WRITERS = 16, PUTS = 400, VALUE = 200 };
	char *dir = test_tmpdir("syncseal");
	cesium_db *db = open_db(dir, "memtable_size", "64KiB", "wal_prealloc_size", "256KiB", NULL);
	uint64_t flushes0 = stat_of(db, "flushes");
	atomic_store(&db_late_insert_hook, slow_late_insert);
	unsigned unread = run_sync_writers(db, WRITERS, PUTS, VALUE);
	atomic_store(&db_late_insert_hook, NULL);
	assert_int_equal(unread, 0);
	assert_int_equal(cesium_flush(db), 0);
	uint64_t flushes = stat_of(db, "flushes") - flushes0;
	fprintf(stderr, "%u sync writes, %llu flushes\n", WRITERS * PUTS,
	        (unsigned long long)flushes);
	assert_true(flushes >= 20);
	assert_int_equal(cesium_close(db), 0);
	check_sync_writes(dir, WRITERS, PUTS, VALUE);
	test_rmtree(dir);
	free(dir);
}

/* ---- memory accounting ---------------------------------------------------- */

/* cesium_stats accounts memory by purpose: memtable bytes follow writes and
 * return to near zero after a flush, an open segment pins its index and
 * filter and maps its data, and zstd blocks go through the cache, whose
 * hits and misses are counted. */
static void test_stats_account_memory_by_purpose(void **state)
{
	(void)state;
	char *dir = test_tmpdir("memstats");
	cesium_db *db = open_db(dir, "memtable_size", "64MiB", "compression", "zstd", NULL);
	uint64_t empty = stat_of(db, "mem_memtables");
	char key[32], val[200];
	memset(val, 'v', sizeof(val));
	for (unsigned i = 0; i < 5000; i++) {
		snprintf(key, sizeof(key), "key%08u", i);
		assert_int_equal(cesium_put(db, key, strlen(key), val, sizeof(val)), 0);
	}
	/* 5000 entries of over 200 bytes each live in the memtable arena. */
	assert_true(stat_of(db, "mem_memtables") >= empty + 5000u * 200u);
	assert_int_equal(stat_of(db, "mem_index_filter"), 0);
	assert_true(stat_of(db, "mem_process_anon") > 0);

	assert_int_equal(cesium_flush(db), 0);
	assert_true(stat_of(db, "mem_memtables") < empty + 5000u * 200u / 4);
	uint64_t misses = stat_of(db, "block_cache_misses");
	void *v;
	size_t vlen;
	for (int round = 0; round < 2; round++) {
		assert_int_equal(cesium_get(db, "key00000042", 11, &v, &vlen), 0);
		assert_int_equal(vlen, sizeof(val));
		cesium_free(v);
	}
	assert_true(stat_of(db, "mem_index_filter") > 0);
	assert_true(stat_of(db, "block_cache_misses") >= misses + 1);
	assert_true(stat_of(db, "block_cache_hits") >= 1);
	assert_true(stat_of(db, "mem_block_cache") > 0);
	assert_int_equal(stat_of(db, "mem_block_cache"), stat_of(db, "block_cache_usage"));
	assert_int_equal(cesium_close(db), 0);
	test_rmtree(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_open_without_io_uring_is_enotsup),
	    cmocka_unit_test(test_flush_write_eio_keeps_data),
	    cmocka_unit_test(test_flush_write_enospc_keeps_data),
	    cmocka_unit_test(test_flush_short_write_keeps_data),
	    cmocka_unit_test(test_compact_write_eio_leaves_tree),
	    cmocka_unit_test(test_compact_write_enospc_leaves_tree),
	    cmocka_unit_test(test_compact_short_write_leaves_tree),
	    cmocka_unit_test(test_wal_fsync_failure_poisons_writes),
	    cmocka_unit_test(test_wal_poison_survives_memtable_switch),
	    cmocka_unit_test(test_stalled_writers_all_succeed),
	    cmocka_unit_test(test_concurrent_readers_see_latest_writes),
	    cmocka_unit_test(test_iterator_snapshot_survives_flush_and_compaction),
	    cmocka_unit_test(test_seek_releases_replaced_segments),
	    cmocka_unit_test(test_stats_account_memory_by_purpose),
	    cmocka_unit_test(test_lone_writer_issues_no_wakeups),
	    cmocka_unit_test(test_sync_writers_share_fdatasyncs),
	    cmocka_unit_test(test_sync_inserts_finish_before_a_seal),
	    cmocka_unit_test(test_idle_memtable_flushed_under_reads),
	    cmocka_unit_test(test_idle_memtable_flushed_under_seeks),
	    cmocka_unit_test(test_seeks_counted_per_positioning),
	    cmocka_unit_test(test_checksum_every_read_catches_later_damage),
	    cmocka_unit_test(test_failed_flush_not_overtaken_by_a_later_one),
	    cmocka_unit_test(test_orphan_wal_does_not_hide_later_writes),
	    cmocka_unit_test(test_large_values_read_from_the_log),
	    cmocka_unit_test(test_flushed_values_stay_in_their_log),
	    cmocka_unit_test(test_damaged_log_value_is_reported),
	    cmocka_unit_test(test_log_values_off_keeps_no_log),
	};
	/* Once, before any test: a skip (exit 77) in the middle of the run
	 * would hide earlier failures. */
	test_require_io_uring();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
