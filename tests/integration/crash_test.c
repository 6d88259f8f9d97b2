/*
 * crash_test — real crashes: a forked child writes to the database and is
 * killed with SIGKILL at a random moment; the parent reopens the database
 * and checks the durability contract of include/cesium.h.
 *
 * Write number `seq` puts the keys "w<seq>.<j>" for j < batch_size(seq)
 * (one key: a plain put; several: one atomic batch that also sets "last" in
 * namespace 1 to seq). Values are derived from (seq, j, round), so a value
 * resurrected from an earlier round is told apart from the current one.
 * The child reports each write through a shared mapping before issuing it
 * ("issued") and after it returned 0 ("acked"). After the kill the parent
 * requires:
 *  - every acknowledged write is present (SIGKILL leaves the page cache, so
 *    a process crash must lose nothing acknowledged, synced or not);
 *  - what is present is a prefix of the issued writes: no gap, no write
 *    beyond the last one issued, no half batch, no foreign key or value.
 * Each round continues on the database the previous round recovered, so a
 * recovery of a recovery (and a kill during recovery) is exercised.
 * CESIUM_CRASH_ROUNDS sets the number of rounds; CESIUM_SEED replays.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cesium.h"
#include "test_util.h"

#define KEY_LEN 20 /* "w" + 16 digits + "." + 2 digits */
#define MAX_BATCH 6
#define MAX_ROUNDS 10000

/* Shared between parent and child; the child's stores are release so that
 * the parent, after waitpid, sees the counters in order. */
struct shared {
	uint64_t issued; /* writes [0, issued) may be present */
	uint64_t acked;  /* writes [0, acked) returned 0 */
	uint64_t synced; /* writes [0, synced) returned 0 with CESIUM_WRITE_SYNC */
	int child_rc;
	char child_msg[600];
};

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static unsigned batch_size(uint64_t seq)
{
	uint64_t h = mix(seq ^ 0x5eed);
	return h % 10 < 6 ? 1 : 2 + (unsigned)(h % (MAX_BATCH - 1));
}

static bool is_sync(uint64_t seq)
{
	return seq % 7 == 6;
}

static void make_key(char *buf, uint64_t seq, unsigned j)
{
	/* The moduli tell the compiler the text fits in KEY_LEN bytes. */
	snprintf(buf, KEY_LEN + 1, "w%016" PRIu64 ".%02u",
	         (uint64_t)(seq % UINT64_C(10000000000000000)), j % 100u);
}

static size_t make_value(unsigned char *buf, uint64_t seq, unsigned j, unsigned round)
{
	uint64_t h = mix(seq * 64 + j);
	int n = snprintf((char *)buf, 64, "r%u s%" PRIu64 " j%u|", round, seq, j);
	size_t len = (size_t)n + (size_t)(h % 200);
	for (size_t i = (size_t)n; i < len; i++) {
		h = mix(h);
		buf[i] = (unsigned char)h;
	}
	return len;
}

static cesium_options *crash_options(void)
{
	cesium_options *o = NULL;
	if (cesium_options_new(&o) != 0)
		return NULL;
	/* Small memtables: the kill lands during log rotation and flushes too. */
	if (cesium_options_set(o, "memtable_size", "256KiB") != 0) {
		cesium_options_free(o);
		return NULL;
	}
	return o;
}

static _Noreturn void child_fail(struct shared *sh, int code, const char *what, int rc)
{
	snprintf(sh->child_msg, sizeof(sh->child_msg), "%s: %s: %s", what, cesium_strerror(rc),
	         cesium_errmsg());
	__atomic_store_n(&sh->child_rc, code, __ATOMIC_RELEASE);
	_exit(code);
}

/* The child: writes until killed. Never returns. */
static _Noreturn void child_run(struct shared *sh, const char *dir, uint64_t start, unsigned round,
                                uint64_t seed)
{
	cesium_options *o = crash_options();
	cesium_db *db = NULL;
	cesium_batch *b = NULL;
	char key[KEY_LEN + 1];
	unsigned char val[300];
	uint64_t rng = seed ? seed : 1;
	int rc;

	if (!o)
		child_fail(sh, 3, "options", CESIUM_ENOMEM);
	rc = cesium_open(dir, o, &db);
	if (rc)
		child_fail(sh, 3, "child open", rc);
	rc = cesium_batch_new(&b);
	if (rc)
		child_fail(sh, 3, "batch_new", rc);
	for (uint64_t seq = start;; seq++) {
		unsigned m = batch_size(seq);
		unsigned flags = is_sync(seq) ? CESIUM_WRITE_SYNC : 0;
		__atomic_store_n(&sh->issued, seq + 1, __ATOMIC_RELEASE);
		if (m == 1 && !flags) {
			make_key(key, seq, 0);
			size_t vlen = make_value(val, seq, 0, round);
			rc = cesium_put(db, key, KEY_LEN, val, vlen);
		} else {
			cesium_batch_clear(b);
			for (unsigned j = 0; j < m; j++) {
				make_key(key, seq, j);
				size_t vlen = make_value(val, seq, j, round);
				rc = cesium_batch_put(b, 0, key, KEY_LEN, val, vlen);
				if (rc)
					child_fail(sh, 4, "batch_put", rc);
			}
			if (m > 1) {
				rc = cesium_batch_put(b, 1, "last", 4, &seq, sizeof(seq));
				if (rc)
					child_fail(sh, 4, "batch_put last", rc);
			}
			rc = cesium_write(db, b, flags);
		}
		if (rc)
			child_fail(sh, 5, "write", rc);
		__atomic_store_n(&sh->acked, seq + 1, __ATOMIC_RELEASE);
		if (flags)
			__atomic_store_n(&sh->synced, seq + 1, __ATOMIC_RELEASE);
		if (test_rand(&rng) % 400 == 0) {
			rc = cesium_flush(db);
			if (rc)
				child_fail(sh, 6, "flush", rc);
		}
	}
}

/* Which round wrote write `seq`: rounds' ranges are contiguous because each
 * round starts where the recovered prefix ended. */
static unsigned round_of(const uint64_t *starts, unsigned nrounds, uint64_t seq)
{
	unsigned r = 0;
	while (r + 1 < nrounds && starts[r + 1] <= seq)
		r++;
	return r;
}

static void fail_round(unsigned round, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail_round(unsigned round, const char *fmt, ...)
{
	char msg[700];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	print_error("round %u: %s\n", round, msg);
	fail();
}

/* Scans the recovered database; returns how many writes are present. */
static uint64_t verify(cesium_db *db, unsigned round, const uint64_t *starts, unsigned nstarts,
                       uint64_t issued)
{
	cesium_iter *it = NULL;
	int rc = cesium_iter_new(db, 0, &it);
	if (rc)
		fail_round(round, "iter_new: %s: %s", cesium_strerror(rc), cesium_errmsg());
	uint64_t seq = 0;
	unsigned j = 0;
	uint64_t last_batch = UINT64_MAX;
	char want[KEY_LEN + 1];
	unsigned char wval[300];
	for (cesium_iter_seek_first(it); cesium_iter_valid(it); cesium_iter_next(it)) {
		size_t kl = 0, vl = 0;
		const char *k = cesium_iter_key(it, &kl);
		const unsigned char *v = cesium_iter_value(it, &vl);
		make_key(want, seq, j);
		if (kl != KEY_LEN || memcmp(k, want, KEY_LEN) != 0) {
			if (j != 0)
				fail_round(round,
				           "half batch: write %" PRIu64
				           " has %u of %u keys, next key "
				           "is '%.*s'",
				           seq, j, batch_size(seq), (int)(kl < 40 ? kl : 40), k);
			fail_round(round,
			           "gap or foreign key: expected '%s' (write %" PRIu64
			           "), found '%.*s'",
			           want, seq, (int)(kl < 40 ? kl : 40), k);
		}
		if (seq >= issued)
			fail_round(round, "write %" PRIu64 " present but only %" PRIu64 " issued",
			           seq, issued);
		unsigned r = round_of(starts, nstarts, seq);
		size_t wl = make_value(wval, seq, j, r);
		if (vl != wl || memcmp(v, wval, wl) != 0)
			fail_round(round,
			           "write %" PRIu64
			           " key %u: value differs (want %zu bytes '%.20s', "
			           "got %zu bytes '%.20s')",
			           seq, j, wl, (const char *)wval, vl, (const char *)v);
		if (++j == batch_size(seq)) {
			if (j > 1)
				last_batch = seq;
			j = 0;
			seq++;
		}
	}
	rc = cesium_iter_status(it);
	if (rc)
		fail_round(round, "iteration failed: %s: %s", cesium_strerror(rc), cesium_errmsg());
	cesium_iter_free(it);
	if (j != 0)
		fail_round(round, "half batch at the end: write %" PRIu64 " has %u of %u keys", seq,
		           j, batch_size(seq));

	/* "last" moves with each batch, atomically with it. */
	void *lv = NULL;
	size_t ll = 0;
	rc = cesium_get_ns(db, 1, "last", 4, &lv, &ll);
	if (last_batch == UINT64_MAX) {
		if (rc != CESIUM_ENOTFOUND)
			fail_round(round, "'last' present (rc %d) but no batch is", rc);
	} else {
		uint64_t got = 0;
		if (rc != 0 || ll != sizeof(got))
			fail_round(round, "'last' missing or malformed (rc %d, %zu bytes): %s", rc,
			           ll, cesium_errmsg());
		memcpy(&got, lv, sizeof(got));
		if (got != last_batch)
			fail_round(round, "'last' is %" PRIu64 ", newest present batch is %" PRIu64,
			           got, last_batch);
	}
	cesium_free(lv);
	return seq;
}

/* Killed writers never lose an acknowledged write, and recovery yields an
 * in-order prefix with whole batches, round after round on one database. */
static void test_sigkill_keeps_acknowledged_prefix(void **state)
{
	(void)state;
	uint64_t seed = test_seed("crash_test");
	uint64_t rng = seed;
	const char *env = getenv("CESIUM_CRASH_ROUNDS");
	unsigned rounds = env ? (unsigned)strtoul(env, NULL, 0) : 20;
	if (rounds > MAX_ROUNDS)
		rounds = MAX_ROUNDS;
	char *dir = test_tmpdir("crash");
	assert_non_null(dir);
	uint64_t *starts = calloc(rounds + 1, sizeof(*starts));
	assert_non_null(starts);
	struct shared *sh =
	    mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(sh != MAP_FAILED);
	cesium_options *o = crash_options();
	assert_non_null(o);

	uint64_t present = 0;
	unsigned long long total_lost = 0;
	for (unsigned round = 0; round < rounds; round++) {
		starts[round] = present;
		memset(sh, 0, sizeof(*sh));
		sh->issued = present;
		sh->acked = present;
		sh->synced = present;
		unsigned delay_ms = 5 + (unsigned)(test_rand(&rng) % 196);
		uint64_t child_seed = test_rand(&rng);
		fflush(NULL);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0)
			child_run(sh, dir, present, round, child_seed);

		struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)delay_ms * 1000000L};
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
		kill(pid, SIGKILL);
		int status = 0;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		if (WIFEXITED(status))
			fail_round(round, "child exited by itself with %d: %s", WEXITSTATUS(status),
			           sh->child_msg);
		assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

		uint64_t issued = __atomic_load_n(&sh->issued, __ATOMIC_ACQUIRE);
		uint64_t acked = __atomic_load_n(&sh->acked, __ATOMIC_ACQUIRE);
		uint64_t synced = __atomic_load_n(&sh->synced, __ATOMIC_ACQUIRE);

		cesium_db *db = NULL;
		int rc = cesium_open(dir, o, &db);
		if (rc)
			fail_round(round, "recovery open failed: %s: %s", cesium_strerror(rc),
			           cesium_errmsg());
		/* A write lost in an earlier round and reissued in this one has
		 * this round's value, so a stale copy coming back is caught. */
		uint64_t now = verify(db, round, starts, round + 1, issued);
		rc = cesium_close(db);
		if (rc)
			fail_round(round, "close: %s: %s", cesium_strerror(rc), cesium_errmsg());
		fprintf(stderr,
		        "round %u: killed after %u ms: issued %" PRIu64 " acked %" PRIu64
		        " synced %" PRIu64 " present %" PRIu64 "\n",
		        round, delay_ms, issued, acked, synced, now);
		if (now < synced)
			fail_round(round,
			           "lost synced writes: %" PRIu64 " synced, %" PRIu64 " present",
			           synced, now);
		if (now < acked)
			fail_round(round,
			           "lost acknowledged writes: %" PRIu64 " acked, %" PRIu64
			           " present",
			           acked, now);
		if (now < present)
			fail_round(round,
			           "lost writes of earlier rounds: had %" PRIu64 ", now %" PRIu64,
			           present, now);
		total_lost += issued > now ? issued - now : 0;
		present = now;
	}
	fprintf(stderr,
	        "crash_test: %u rounds, %" PRIu64 " writes present, %llu unacknowledged lost\n",
	        rounds, present, total_lost);
	assert_true(present > 0);

	cesium_options_free(o);
	munmap(sh, sizeof(*sh));
	free(starts);
	test_rmtree(dir);
	free(dir);
}

int main(void)
{
	test_require_io_uring();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sigkill_keeps_acknowledged_prefix),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
