/*
 * multiget_test — cesium_multi_get against a loop of cesium_get_ns over the
 * same keys: memtables, L0 and compacted levels, tombstones, overwrites
 * across levels, namespaces, compressed segments, batches wider than the
 * ring, a thread the kernel refuses a ring, bad arguments, a corrupted
 * block and failing reads.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <dirent.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cesium.h"
#include "fault.h"
#include "multiget.h"
#include "ring.h"
#include "test_db.h"
#include "test_util.h"

#define NS_COUNT 3

static int fx_setup(void **state)
{
	return test_fx_setup(state, "multiget");
}

static int fx_teardown(void **state)
{
	multiget_set_policy(MULTIGET_SKIP_RESIDENT);
	io_fault_set(NULL, NULL);
	return test_fx_teardown(state);
}

static void check_ok(int rc, const char *what)
{
	if (rc != 0)
		print_error("%s: %s: %s\n", what, cesium_strerror(rc), cesium_errmsg());
	assert_int_equal(rc, 0);
}

static size_t mk_key(char *buf, unsigned id)
{
	return (size_t)snprintf(buf, 32, "k%07u", id);
}

/* Values vary in length (empty ones included) and name their generation. */
static size_t mk_val(char *buf, size_t cap, uint64_t ns, unsigned id, unsigned gen)
{
	if ((id + gen) % 17 == 0)
		return 0;
	int n = snprintf(buf, cap, "v-%llu-%u-%u-", (unsigned long long)ns, id, gen);
	size_t len = (size_t)n + (id * 7u + gen) % 90u;
	for (size_t i = (size_t)n; i < len && i < cap; i++)
		buf[i] = (char)('a' + (i + id) % 26);
	return len < cap ? len : cap;
}

static void put_id(cesium_db *db, uint64_t ns, unsigned id, unsigned gen)
{
	char k[32], v[160];
	size_t kl = mk_key(k, id), vl = mk_val(v, sizeof(v), ns, id, gen);
	check_ok(cesium_put_ns(db, ns, k, kl, v, vl), "put");
}

static void del_id(cesium_db *db, uint64_t ns, unsigned id)
{
	char k[32];
	check_ok(cesium_delete_ns(db, ns, k, mk_key(k, id)), "delete");
}

/*
 * One multi_get of ids (ids >= nkeys were never written) in ns, checked key
 * by key against cesium_get_ns. Returns how many were found.
 */
static size_t check_batch(cesium_db *db, uint64_t ns, const unsigned *ids, size_t n)
{
	char(*kb)[32] = calloc(n ? n : 1, sizeof(*kb));
	const void **keys = calloc(n ? n : 1, sizeof(*keys));
	size_t *klens = calloc(n ? n : 1, sizeof(*klens));
	void **vals = calloc(n ? n : 1, sizeof(*vals));
	size_t *vlens = calloc(n ? n : 1, sizeof(*vlens));
	int *st = calloc(n ? n : 1, sizeof(*st));
	assert_true(kb && keys && klens && vals && vlens && st);
	for (size_t i = 0; i < n; i++) {
		klens[i] = mk_key(kb[i], ids[i]);
		keys[i] = kb[i];
	}
	int rc = cesium_multi_get(db, ns, n, keys, klens, vals, vlens, st);
	int first = 0;
	size_t found = 0;
	for (size_t i = 0; i < n; i++) {
		void *v = NULL;
		size_t vl = 0;
		int grc = cesium_get_ns(db, ns, keys[i], klens[i], &v, &vl);
		if (grc != st[i])
			print_error("ns %llu key %s: get %d, multi_get %d\n",
			            (unsigned long long)ns, kb[i], grc, st[i]);
		assert_int_equal(st[i], grc);
		if (grc == 0) {
			found++;
			assert_non_null(vals[i]);
			assert_int_equal(vlens[i], vl);
			assert_memory_equal(vals[i], v, vl);
		} else {
			assert_null(vals[i]);
			if (grc != CESIUM_ENOTFOUND && !first)
				first = grc;
		}
		cesium_free(v);
		cesium_free(vals[i]);
	}
	assert_int_equal(rc, first);
	free(kb);
	free(keys);
	free(klens);
	free(vals);
	free(vlens);
	free(st);
	return found;
}

/* Random batches (missing ids and an unused namespace included). */
static size_t check_random_batches(cesium_db *db, uint64_t *rng, unsigned nkeys, int batches)
{
	unsigned ids[300];
	size_t found = 0;
	for (int b = 0; b < batches; b++) {
		size_t n = 1 + test_rand(rng) % (sizeof(ids) / sizeof(ids[0]));
		uint64_t ns = test_rand(rng) % (NS_COUNT + 1); /* NS_COUNT: never written */
		for (size_t i = 0; i < n; i++)
			ids[i] = (unsigned)(test_rand(rng) % (nkeys + nkeys / 8));
		found += check_batch(db, ns, ids, n);
	}
	return found;
}

/* Builds a tree with data in every place a get looks, then compares. */
static void random_mix(void **state, const char *compression)
{
	struct test_fx *f = *state;
	uint64_t rng = test_seed("multiget_random_mix");
	const unsigned nkeys = 2500;
	f->db = open_db(f->dir, "memtable_size", "64KiB", "compression", compression, "block_size",
	                "1KiB", NULL);
	cesium_db *db = f->db;
	for (uint64_t ns = 0; ns < NS_COUNT; ns++)
		for (unsigned id = 0; id < nkeys; id++)
			if (test_rand(&rng) % 8)
				put_id(db, ns, id, 1);
	check_ok(cesium_compact(db), "compact"); /* the oldest versions, deep */
	for (unsigned gen = 2; gen <= 4; gen++) {
		for (int j = 0; j < 600; j++) {
			uint64_t ns = test_rand(&rng) % NS_COUNT;
			unsigned id = (unsigned)(test_rand(&rng) % nkeys);
			if (test_rand(&rng) % 4)
				put_id(db, ns, id, gen);
			else
				del_id(db, ns, id);
		}
		check_ok(cesium_flush(db), "flush"); /* L0 runs over the deep level */
	}
	for (int j = 0; j < 400; j++) { /* the memtable */
		uint64_t ns = test_rand(&rng) % NS_COUNT;
		unsigned id = (unsigned)(test_rand(&rng) % nkeys);
		if (test_rand(&rng) % 4)
			put_id(db, ns, id, 5);
		else
			del_id(db, ns, id);
	}
	size_t found = 0;
	multiget_set_policy(MULTIGET_SKIP_RESIDENT);
	found += check_random_batches(db, &rng, nkeys, 40);
	multiget_set_policy(MULTIGET_READ_ALL);
	found += check_random_batches(db, &rng, nkeys, 40);
	assert_true(found > 1000); /* the comparison covered real hits */
}

/* Results equal a get loop over memtable, L0, compacted levels and tombstones. */
static void test_random_mix_matches_get_loop(void **state)
{
	random_mix(state, "none");
}

/* Compressed segments (the fallback path) give the same results too. */
static void test_compressed_segments_match_get_loop(void **state)
{
	random_mix(state, "zstd");
}

/* Writes ids [0, nkeys) to namespace 1 in small blocks, compacted, and
 * returns nids ids scattered over [0, nids): every block, and ids past
 * nkeys that were never written. */
static unsigned *load_compacted(struct test_fx *f, unsigned nkeys, unsigned nids)
{
	f->db = open_db(f->dir, "block_size", "512", NULL);
	for (unsigned id = 0; id < nkeys; id++)
		put_id(f->db, 1, id, 1);
	check_ok(cesium_compact(f->db), "compact");
	unsigned *ids = calloc(nids, sizeof(*ids));
	assert_non_null(ids);
	for (unsigned i = 0; i < nids; i++)
		ids[i] = (i * 7919u) % nids;
	return ids;
}

/* A batch several times the ring depth reads every block and finds every key. */
static void test_batch_wider_than_ring(void **state)
{
	struct test_fx *f = *state;
	const unsigned nkeys = MULTIGET_RING_DEPTH * 20;
	unsigned *ids = load_compacted(f, nkeys, nkeys);
	multiget_set_policy(MULTIGET_READ_ALL);
	assert_int_equal(check_batch(f->db, 1, ids, nkeys), nkeys);
	multiget_set_policy(MULTIGET_SKIP_RESIDENT);
	assert_int_equal(check_batch(f->db, 1, ids, nkeys), nkeys);
	free(ids);
}

/* What a thread without a ring of its own saw (no cmocka assertion may
 * run off the test's thread). */
struct ringless_run {
	cesium_db *db;
	const unsigned *ids;
	size_t n;
	bool filtered;     /* the seccomp filter is in place */
	bool ring_refused; /* io_uring_setup failed in this thread */
	int rc;            /* cesium_multi_get's result */
	size_t found, mismatches;
};

/* Refuses io_uring_setup to this thread only (EPERM, as Docker's default
 * seccomp profile does), then compares one multi_get with a get loop. */
static void *ringless_thread(void *arg)
{
	struct ringless_run *r = arg;
	struct sock_filter filter[] = {
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = sizeof(filter) / sizeof(filter[0]), .filter = filter};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
		return NULL;
	r->filtered = true;
	r->ring_refused = io_ring_probe() != 0;
	char(*kb)[32] = calloc(r->n, sizeof(*kb));
	const void **keys = calloc(r->n, sizeof(*keys));
	size_t *klens = calloc(r->n, sizeof(*klens)), *vlens = calloc(r->n, sizeof(*vlens));
	void **vals = calloc(r->n, sizeof(*vals));
	int *st = calloc(r->n, sizeof(*st));
	if (!kb || !keys || !klens || !vlens || !vals || !st) {
		r->rc = CESIUM_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < r->n; i++) {
		klens[i] = mk_key(kb[i], r->ids[i]);
		keys[i] = kb[i];
	}
	r->rc = cesium_multi_get(r->db, 1, r->n, keys, klens, vals, vlens, st);
	for (size_t i = 0; i < r->n; i++) {
		void *v = NULL;
		size_t vl = 0;
		int grc = cesium_get_ns(r->db, 1, keys[i], klens[i], &v, &vl);
		bool same =
		    grc == st[i] &&
		    (grc != 0 || (vals[i] && vlens[i] == vl && memcmp(vals[i], v, vl) == 0));
		r->mismatches += !same;
		r->found += grc == 0;
		cesium_free(v);
		cesium_free(vals[i]);
	}
out:
	free(kb);
	free(keys);
	free(klens);
	free(vlens);
	free(vals);
	free(st);
	return NULL;
}

/* A thread the kernel refuses a ring (a seccomp profile, io_uring
 * disabled after the open) still gets every block, read one by one. */
static void test_thread_without_a_ring_reads_one_by_one(void **state)
{
	struct test_fx *f = *state;
	const unsigned nkeys = MULTIGET_RING_DEPTH * 4;
	unsigned *ids = load_compacted(f, nkeys, nkeys + nkeys / 4);
	multiget_set_policy(MULTIGET_READ_ALL);             /* reads even what is resident */
	struct ringless_run r = {.db = f->db, .ids = ids, .n = nkeys + nkeys / 4};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, ringless_thread, &r), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	free(ids);
	if (!r.filtered)
		skip(); /* no seccomp here */
	assert_true(r.ring_refused);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.mismatches, 0);
	assert_int_equal(r.found, nkeys);
}

/* An empty batch succeeds and touches nothing, even with NULL arrays. */
static void test_empty_batch(void **state)
{
	struct test_fx *f = *state;
	f->db = open_db(f->dir, NULL);
	assert_int_equal(cesium_multi_get(f->db, 0, 0, NULL, NULL, NULL, NULL, NULL), 0);
}

/* NULL handles and arrays and bad keys give CESIUM_EINVAL, never a crash. */
static void test_bad_arguments(void **state)
{
	struct test_fx *f = *state;
	f->db = open_db(f->dir, NULL);
	check_ok(cesium_put(f->db, "a", 1, "1", 1), "put");
	static char big[CESIUM_MAX_KEY_SIZE + 1];
	const void *keys[4] = {"a", "", NULL, big};
	size_t klens[4] = {1, 0, 3, sizeof(big)};
	void *vals[4];
	size_t vlens[4];
	int st[4];
	assert_int_equal(cesium_multi_get(NULL, 0, 1, keys, klens, vals, vlens, st), CESIUM_EINVAL);
	assert_int_equal(cesium_multi_get(f->db, 0, 1, NULL, klens, vals, vlens, st),
	                 CESIUM_EINVAL);
	assert_int_equal(cesium_multi_get(f->db, 0, 1, keys, NULL, vals, vlens, st), CESIUM_EINVAL);
	assert_int_equal(cesium_multi_get(f->db, 0, 1, keys, klens, NULL, vlens, st),
	                 CESIUM_EINVAL);
	assert_int_equal(cesium_multi_get(f->db, 0, 1, keys, klens, vals, NULL, st), CESIUM_EINVAL);
	assert_int_equal(cesium_multi_get(f->db, 0, 1, keys, klens, vals, vlens, NULL),
	                 CESIUM_EINVAL);
	/* Bad keys fail alone: the good one is still looked up. */
	assert_int_equal(cesium_multi_get(f->db, 0, 4, keys, klens, vals, vlens, st),
	                 CESIUM_EINVAL);
	assert_int_equal(st[0], 0);
	assert_int_equal(vlens[0], 1);
	assert_memory_equal(vals[0], "1", 1);
	cesium_free(vals[0]);
	for (int i = 1; i < 4; i++) {
		assert_int_equal(st[i], CESIUM_EINVAL);
		assert_null(vals[i]);
	}
}

/* The path of the first .seg file in dir (caller frees), or NULL. */
static char *first_segment(const char *dir)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	char *path = NULL;
	struct dirent *e;
	while (!path && (e = readdir(d)) != NULL) {
		size_t l = strlen(e->d_name);
		if (l > 4 && strcmp(e->d_name + l - 4, ".seg") == 0) {
			path = malloc(strlen(dir) + l + 2);
			assert_non_null(path);
			sprintf(path, "%s/%s", dir, e->d_name);
		}
	}
	closedir(d);
	return path;
}

/* Keys in a block with a flipped byte get CESIUM_ECORRUPT; others still read. */
static void test_corrupt_block_is_ecorrupt(void **state)
{
	struct test_fx *f = *state;
	const unsigned nkeys = 400;
	f->db = open_db(f->dir, NULL);
	for (unsigned id = 0; id < nkeys; id++)
		put_id(f->db, 0, id, 1);
	check_ok(cesium_compact(f->db), "compact");
	check_ok(cesium_close(f->db), "close");
	f->db = NULL;
	char *seg = first_segment(f->dir);
	assert_non_null(seg);
	int fd = open(seg, O_RDWR);
	assert_true(fd >= 0);
	unsigned char c;
	assert_int_equal(pread(fd, &c, 1, 40), 1); /* inside the first data block */
	c ^= 0x5a;
	assert_int_equal(pwrite(fd, &c, 1, 40), 1);
	close(fd);
	free(seg);
	f->db = open_db(f->dir, NULL);

	unsigned ids[nkeys];
	for (unsigned i = 0; i < nkeys; i++)
		ids[i] = i;
	for (int pass = 0; pass < 2; pass++) {
		multiget_set_policy(pass ? MULTIGET_READ_ALL : MULTIGET_SKIP_RESIDENT);
		size_t found = check_batch(f->db, 0, ids, nkeys); /* statuses equal get's */
		assert_true(found > 0 && found < nkeys);
		char k[32];
		const void *key = k;
		size_t kl = mk_key(k, 0);
		void *v = NULL;
		size_t vl = 0;
		int st = 0;
		assert_int_equal(cesium_multi_get(f->db, 0, 1, &key, &kl, &v, &vl, &st),
		                 CESIUM_ECORRUPT);
		assert_int_equal(st, CESIUM_ECORRUPT);
		assert_null(v);
		assert_non_null(strstr(cesium_errmsg(), ".seg"));
		assert_non_null(strstr(cesium_errmsg(), "offset"));
	}
}

static int fail_reads(void *arg, enum io_op op, int fd, const char *path, size_t *len)
{
	(void)arg;
	(void)fd;
	(void)path;
	(void)len;
	return op == IO_OP_READ ? -EIO : 0;
}

/* A failed block read gives that key CESIUM_EIO naming file and offset;
 * keys answered by the memtable are unaffected. */
static void test_read_error_is_per_key(void **state)
{
	struct test_fx *f = *state;
	f->db = open_db(f->dir, NULL);
	for (unsigned id = 0; id < 200; id++)
		put_id(f->db, 0, id, 1);
	check_ok(cesium_compact(f->db), "compact");
	put_id(f->db, 0, 7, 2); /* in the memtable */
	char k[32];
	void *v = NULL;
	size_t vl;
	check_ok(cesium_get(f->db, k, mk_key(k, 3), &v, &vl), "get"); /* opens the reader */
	cesium_free(v);

	char kb[2][32];
	const void *keys[2] = {kb[0], kb[1]};
	size_t klens[2] = {mk_key(kb[0], 3), mk_key(kb[1], 7)};
	void *vals[2];
	size_t vlens[2];
	int st[2];
	multiget_set_policy(MULTIGET_READ_ALL);
	io_fault_set(fail_reads, NULL);
	int rc = cesium_multi_get(f->db, 0, 2, keys, klens, vals, vlens, st);
	io_fault_set(NULL, NULL);
	assert_int_equal(rc, CESIUM_EIO);
	assert_int_equal(st[0], CESIUM_EIO);
	assert_null(vals[0]);
	assert_non_null(strstr(cesium_errmsg(), ".seg"));
	assert_non_null(strstr(cesium_errmsg(), "offset"));
	assert_int_equal(st[1], 0);
	char want[160];
	size_t wl = mk_val(want, sizeof(want), 0, 7, 2);
	assert_int_equal(vlens[1], wl);
	assert_memory_equal(vals[1], want, wl);
	cesium_free(vals[1]);
	/* The ring survives the failure: the next batch reads normally. */
	unsigned ids[2] = {3, 7};
	assert_int_equal(check_batch(f->db, 0, ids, 2), 2);
}

int main(void)
{
	test_require_io_uring();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_random_mix_matches_get_loop, fx_setup,
	                                    fx_teardown),
	    cmocka_unit_test_setup_teardown(test_compressed_segments_match_get_loop, fx_setup,
	                                    fx_teardown),
	    cmocka_unit_test_setup_teardown(test_batch_wider_than_ring, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_thread_without_a_ring_reads_one_by_one, fx_setup,
	                                    fx_teardown),
	    cmocka_unit_test_setup_teardown(test_empty_batch, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_bad_arguments, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_corrupt_block_is_ecorrupt, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_read_error_is_per_key, fx_setup, fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
