/*
 * model_test — a long random sequence of operations against the public API,
 * checked step by step against a trivially correct in-memory model.
 *
 * The key universe is fixed and sorted up front, so the model is an array
 * of slots per namespace indexed by key rank: a get is an index, a seek is a
 * binary search, iteration is a walk up the array. A 64 KiB memtable makes
 * the engine cut many segments, and flush, compact and close+reopen are
 * mixed in, so every read path (memtables, L0, deeper levels, recovery) is
 * compared against the model. The seed is printed; CESIUM_SEED replays it,
 * CESIUM_MODEL_OPS changes the length.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cesium.h"
#include "test_util.h"

#define NS_COUNT 4
#define UNIVERSE 2000
#define MAX_VAL 4096

static const uint64_t namespaces[NS_COUNT] = {0, 1, 0x8000000000000000ull, UINT64_MAX};

struct key {
	unsigned char b[12];
	size_t len;
};

struct slot {
	bool live;
	size_t vlen;
	unsigned char *val;
};

struct model {
	struct key keys[UNIVERSE + 8];
	size_t nkeys;
	struct slot slots[NS_COUNT][UNIVERSE + 8];
};

/* What the current step is doing, for the failure report. */
static unsigned long long cur_step;
static const char *cur_op = "";

static int key_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);
	if (c)
		return c;
	return alen < blen ? -1 : alen > blen ? 1 : 0;
}

static int key_qsort_cmp(const void *a, const void *b)
{
	const struct key *ka = a, *kb = b;
	return key_cmp(ka->b, ka->len, kb->b, kb->len);
}

static const char *show(const void *p, size_t len)
{
	static char buf[4][160];
	static int which;
	char *out = buf[which++ % 4];
	const unsigned char *s = p;
	size_t o = 0;
	for (size_t i = 0; i < len && o < sizeof(buf[0]) - 8; i++) {
		if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\\')
			out[o++] = (char)s[i];
		else
			o += (size_t)snprintf(out + o, 8, "\\x%02x", s[i]);
	}
	if (len && o >= sizeof(buf[0]) - 8)
		o += (size_t)snprintf(out + o, 4, "...");
	out[o] = '\0';
	return out;
}

static void mismatch(uint64_t ns, const struct key *k, const char *what, const char *expected,
                     const char *actual)
{
	print_error("MISMATCH at step %llu op %s ns %" PRIu64 " key '%s': %s\n"
	            "  expected: %s\n  actual:   %s\n",
	            cur_step, cur_op, ns, k ? show(k->b, k->len) : "-", what, expected, actual);
	fail();
}

static void check_rc(int rc, const char *what)
{
	if (rc != 0) {
		print_error("step %llu op %s: %s failed: %s: %s\n", cur_step, cur_op, what,
		            cesium_strerror(rc), cesium_errmsg());
		fail();
	}
}

static void build_universe(struct model *m, uint64_t *rng)
{
	size_t n = 0;
	/* Decimal strings of 1..6 digits, so that many keys are prefixes of
	 * others ("1" < "12" < "123"). */
	while (n < UNIVERSE) {
		unsigned digits = 1 + (unsigned)(test_rand(rng) % 6);
		struct key *k = &m->keys[n++];
		k->len = digits;
		for (unsigned i = 0; i < digits; i++)
			k->b[i] = (unsigned char)('0' + test_rand(rng) % 10);
	}
	/* Bytes a string API would mishandle. */
	static const struct key odd[] = {
	    {{0x00}, 1},           {{0x00, 0x00}, 2}, {{0xff}, 1}, {{0xff, 0xff, 0x00}, 3},
	    {{'1', 0x00, '2'}, 3}, {{0x7f, 0x80}, 2},
	};
	for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++)
		m->keys[n++] = odd[i];
	qsort(m->keys, n, sizeof(m->keys[0]), key_qsort_cmp);
	size_t w = 0;
	for (size_t i = 0; i < n; i++)
		if (w == 0 || key_qsort_cmp(&m->keys[w - 1], &m->keys[i]) != 0)
			m->keys[w++] = m->keys[i];
	m->nkeys = w;
}

/* First key rank >= (p, len). */
static size_t lower_bound(const struct model *m, const void *p, size_t len)
{
	size_t lo = 0, hi = m->nkeys;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (key_cmp(m->keys[mid].b, m->keys[mid].len, p, len) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static size_t make_value(unsigned char *buf, uint64_t *rng)
{
	uint64_t r = test_rand(rng) % 100;
	size_t len;
	if (r < 5)
		len = 0;
	else if (r < 70)
		len = (size_t)(test_rand(rng) % 64);
	else if (r < 97)
		len = 64 + (size_t)(test_rand(rng) % 448);
	else
		len = 512 + (size_t)(test_rand(rng) % (MAX_VAL - 512));
	for (size_t i = 0; i < len; i += 8) {
		uint64_t x = test_rand(rng);
		size_t n = len - i < 8 ? len - i : 8;
		memcpy(buf + i, &x, n);
	}
	return len;
}

static void model_put(struct model *m, int nsi, size_t ki, const unsigned char *v, size_t vlen)
{
	struct slot *s = &m->slots[nsi][ki];
	free(s->val);
	s->val = malloc(vlen ? vlen : 1);
	assert_non_null(s->val);
	memcpy(s->val, v, vlen);
	s->vlen = vlen;
	s->live = true;
}

static void model_delete(struct model *m, int nsi, size_t ki)
{
	struct slot *s = &m->slots[nsi][ki];
	free(s->val);
	s->val = NULL;
	s->vlen = 0;
	s->live = false;
}

static void check_get(cesium_db *db, const struct model *m, int nsi, size_t ki)
{
	const struct key *k = &m->keys[ki];
	const struct slot *s = &m->slots[nsi][ki];
	void *v = NULL;
	size_t vlen = 0;
	char exp[96], act[96];
	int rc = cesium_get_ns(db, namespaces[nsi], k->b, k->len, &v, &vlen);
	if (rc != 0 && rc != CESIUM_ENOTFOUND) {
		snprintf(act, sizeof(act), "error %s: %s", cesium_strerror(rc), cesium_errmsg());
		mismatch(namespaces[nsi], k, "get failed", s->live ? "a value" : "not found", act);
	}
	if (!s->live) {
		if (rc == 0) {
			snprintf(act, sizeof(act), "value of %zu bytes '%s'", vlen, show(v, vlen));
			mismatch(namespaces[nsi], k, "get", "not found", act);
		}
		return;
	}
	if (rc == CESIUM_ENOTFOUND) {
		snprintf(exp, sizeof(exp), "value of %zu bytes", s->vlen);
		mismatch(namespaces[nsi], k, "get", exp, "not found");
	}
	if (vlen != s->vlen || (vlen && memcmp(v, s->val, vlen) != 0)) {
		snprintf(exp, sizeof(exp), "%zu bytes '%s'", s->vlen, show(s->val, s->vlen));
		snprintf(act, sizeof(act), "%zu bytes '%s'", vlen, show(v, vlen));
		mismatch(namespaces[nsi], k, "get value differs", exp, act);
	}
	cesium_free(v);
}

/* Walks the iterator and the model side by side for up to `steps` entries
 * from rank `from`, stopping at rank `stop` (the upper bound). */
static void check_walk(cesium_iter *it, const struct model *m, int nsi, size_t from, size_t stop,
                       unsigned steps)
{
	char exp[96], act[96];
	size_t r = from;
	for (unsigned n = 0; n < steps; n++) {
		while (r < stop && !m->slots[nsi][r].live)
			r++;
		bool valid = cesium_iter_valid(it);
		if (r >= stop) {
			if (valid) {
				size_t kl = 0;
				const void *kp = cesium_iter_key(it, &kl);
				snprintf(act, sizeof(act), "key '%s'", show(kp, kl));
				mismatch(namespaces[nsi], NULL, "iter past end", "end", act);
			}
			int st = cesium_iter_status(it);
			if (st != 0) {
				snprintf(act, sizeof(act), "status %s: %s", cesium_strerror(st),
				         cesium_errmsg());
				mismatch(namespaces[nsi], NULL, "iter status", "0", act);
			}
			return;
		}
		const struct key *k = &m->keys[r];
		const struct slot *s = &m->slots[nsi][r];
		if (!valid) {
			snprintf(act, sizeof(act), "end (status %d: %s)", cesium_iter_status(it),
			         cesium_errmsg());
			mismatch(namespaces[nsi], k, "iter ended early", "this key", act);
		}
		size_t kl = 0, vl = 0;
		const void *kp = cesium_iter_key(it, &kl);
		const void *vp = cesium_iter_value(it, &vl);
		if (key_cmp(kp, kl, k->b, k->len) != 0) {
			snprintf(act, sizeof(act), "key '%s'", show(kp, kl));
			mismatch(namespaces[nsi], k, "iter key", "this key", act);
		}
		if (vl != s->vlen || (vl && memcmp(vp, s->val, vl) != 0)) {
			snprintf(exp, sizeof(exp), "%zu bytes '%s'", s->vlen,
			         show(s->val, s->vlen));
			snprintf(act, sizeof(act), "%zu bytes '%s'", vl, show(vp, vl));
			mismatch(namespaces[nsi], k, "iter value", exp, act);
		}
		cesium_iter_next(it);
		r++;
	}
}

static void check_everything(cesium_db *db, const struct model *m)
{
	for (int nsi = 0; nsi < NS_COUNT; nsi++) {
		for (size_t ki = 0; ki < m->nkeys; ki++)
			check_get(db, m, nsi, ki);
		cesium_iter *it = NULL;
		check_rc(cesium_iter_new(db, namespaces[nsi], &it), "iter_new");
		cesium_iter_seek_first(it);
		check_walk(it, m, nsi, 0, m->nkeys, (unsigned)m->nkeys + 1);
		cesium_iter_free(it);
	}
}

static cesium_db *open_db(const char *dir, const cesium_options *o)
{
	cesium_db *db = NULL;
	check_rc(cesium_open(dir, o, &db), "open");
	return db;
}

/* Random puts, deletes, batches, gets, bounded and unbounded scans,
 * flushes, compactions and reopens agree with the model at every step. */
static void test_random_ops_match_model(void **state)
{
	(void)state;
	uint64_t seed = test_seed("model_test");
	uint64_t rng = seed;
	const char *env = getenv("CESIUM_MODEL_OPS");
	unsigned long long nops = env ? strtoull(env, NULL, 0) : 20000;
	struct model *m = calloc(1, sizeof(*m));
	unsigned char *val = malloc(MAX_VAL);
	char *dir = test_tmpdir("model");
	assert_non_null(m);
	assert_non_null(val);
	assert_non_null(dir);
	build_universe(m, &rng);

	cesium_options *o = NULL;
	check_rc(cesium_options_new(&o), "options_new");
	check_rc(cesium_options_set(o, "memtable_size", "64KiB"), "set memtable_size");
	cesium_db *db = open_db(dir, o);
	cesium_batch *b = NULL;
	check_rc(cesium_batch_new(&b), "batch_new");
	unsigned long long counts[9] = {0};

	for (cur_step = 0; cur_step < nops; cur_step++) {
		/* Hot keys: half the operations hit the first tenth of the
		 * universe, so that keys are overwritten across many segments. */
		size_t ki = test_rand(&rng) % 2 ? (size_t)(test_rand(&rng) % (m->nkeys / 10))
		                                : (size_t)(test_rand(&rng) % m->nkeys);
		int nsi = (int)(test_rand(&rng) % NS_COUNT);
		uint64_t ns = namespaces[nsi];
		const struct key *k = &m->keys[ki];
		unsigned r = (unsigned)(test_rand(&rng) % 1000);
		if (r < 330) {
			cur_op = "put";
			counts[0]++;
			size_t vlen = make_value(val, &rng);
			check_rc(cesium_put_ns(db, ns, k->b, k->len, val, vlen), "put");
			model_put(m, nsi, ki, val, vlen);
		} else if (r < 430) {
			cur_op = "delete";
			counts[1]++;
			check_rc(cesium_delete_ns(db, ns, k->b, k->len), "delete");
			model_delete(m, nsi, ki);
		} else if (r < 510) {
			cur_op = "batch";
			counts[2]++;
			/* Remember the batch's ops to apply them to the model in order
			 * only once the write has succeeded. */
			struct {
				int nsi;
				size_t ki;
				bool put;
				size_t vlen;
				unsigned char *v;
			} ops[8];
			unsigned n = 1 + (unsigned)(test_rand(&rng) % 8);
			cesium_batch_clear(b);
			for (unsigned i = 0; i < n; i++) {
				ops[i].nsi = (int)(test_rand(&rng) % NS_COUNT);
				ops[i].ki = (size_t)(test_rand(&rng) % m->nkeys);
				if (i > 0 && test_rand(&rng) % 4 == 0)
					ops[i].ki = ops[i - 1].ki; /* same key twice */
				ops[i].put = test_rand(&rng) % 4 != 0;
				ops[i].v = NULL;
				ops[i].vlen = 0;
				const struct key *bk = &m->keys[ops[i].ki];
				if (ops[i].put) {
					ops[i].vlen = make_value(val, &rng);
					ops[i].v = malloc(ops[i].vlen + 1);
					assert_non_null(ops[i].v);
					memcpy(ops[i].v, val, ops[i].vlen);
					check_rc(cesium_batch_put(b, namespaces[ops[i].nsi], bk->b,
					                          bk->len, ops[i].v, ops[i].vlen),
					         "batch_put");
				} else {
					check_rc(cesium_batch_delete(b, namespaces[ops[i].nsi],
					                             bk->b, bk->len),
					         "batch_delete");
				}
			}
			unsigned flags = test_rand(&rng) % 10 == 0 ? CESIUM_WRITE_SYNC : 0;
			check_rc(cesium_write(db, b, flags), "write");
			for (unsigned i = 0; i < n; i++) {
				if (ops[i].put)
					model_put(m, ops[i].nsi, ops[i].ki, ops[i].v, ops[i].vlen);
				else
					model_delete(m, ops[i].nsi, ops[i].ki);
				free(ops[i].v);
			}
		} else if (r < 800) {
			cur_op = "get";
			counts[3]++;
			check_get(db, m, nsi, ki);
		} else if (r < 990) {
			cur_op = "iterate";
			counts[4]++;
			cesium_iter *it = NULL;
			check_rc(cesium_iter_new(db, ns, &it), "iter_new");
			size_t stop = m->nkeys;
			unsigned char tgt[8];
			size_t tlen;
			if (test_rand(&rng) % 2) {
				/* Upper bound: a universe key or a random digit string. */
				if (test_rand(&rng) % 2) {
					const struct key *bk = &m->keys[test_rand(&rng) % m->nkeys];
					memcpy(tgt, bk->b, bk->len);
					tlen = bk->len;
				} else {
					tlen = 1 + (size_t)(test_rand(&rng) % 7);
					for (size_t i = 0; i < tlen; i++)
						tgt[i] =
						    (unsigned char)('0' + test_rand(&rng) % 10);
				}
				check_rc(cesium_iter_set_upper_bound(it, tgt, tlen), "set bound");
				stop = lower_bound(m, tgt, tlen);
			}
			size_t from = 0;
			if (test_rand(&rng) % 5 == 0) {
				cesium_iter_seek_first(it);
			} else {
				if (test_rand(&rng) % 2) {
					memcpy(tgt, k->b, k->len);
					tlen = k->len;
				} else {
					tlen = 1 + (size_t)(test_rand(&rng) % 7);
					for (size_t i = 0; i < tlen; i++)
						tgt[i] =
						    (unsigned char)('0' + test_rand(&rng) % 10);
				}
				cesium_iter_seek(it, tgt, tlen);
				from = lower_bound(m, tgt, tlen);
			}
			unsigned steps = 1 + (unsigned)(test_rand(&rng) % 24);
			check_walk(it, m, nsi, from, stop, steps);
			cesium_iter_free(it);
		} else if (r < 995) {
			cur_op = "flush";
			counts[5]++;
			check_rc(cesium_flush(db), "flush");
		} else if (r < 997) {
			cur_op = "compact";
			counts[6]++;
			check_rc(cesium_compact(db), "compact");
		} else {
			cur_op = "reopen";
			counts[7]++;
			check_rc(cesium_close(db), "close");
			db = open_db(dir, o);
			check_everything(db, m);
		}
	}
	cur_op = "final check";
	check_everything(db, m);
	check_rc(cesium_close(db), "close");
	db = open_db(dir, o);
	cur_op = "final check after reopen";
	check_everything(db, m);
	check_rc(cesium_close(db), "close");
	fprintf(stderr,
	        "model_test: %llu ops: %llu put %llu delete %llu batch %llu get %llu iterate "
	        "%llu flush %llu compact %llu reopen\n",
	        nops, counts[0], counts[1], counts[2], counts[3], counts[4], counts[5], counts[6],
	        counts[7]);

	cesium_batch_free(b);
	cesium_options_free(o);
	for (int nsi = 0; nsi < NS_COUNT; nsi++)
		for (size_t ki = 0; ki < m->nkeys; ki++)
			free(m->slots[nsi][ki].val);
	free(m);
	free(val);
	test_rmtree(dir);
	free(dir);
}

int main(void)
{
	test_require_io_uring();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_random_ops_match_model),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
