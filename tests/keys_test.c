/*
 * keys_test — the internal key format of core/keys.h: nskey and internal
 * key encoding round trips, the trailer packing of sequence and kind, the
 * fixed-width integer helpers, and the order that memcmp and
 * keys_compare_ikey give across namespaces, user keys and sequence numbers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "keys.h"
#include "test_util.h"

#define MAX_KEY 64

/* An internal key built in a caller's buffer. */
struct ikey_buf {
	uint8_t b[KEYS_NS_SIZE + MAX_KEY + KEYS_TRAILER_SIZE];
	size_t len;
};

static keys_slice make_ikey(struct ikey_buf *out, uint64_t ns, const void *key, size_t klen,
                            uint64_t seq, enum keys_kind kind)
{
	uint8_t nskey[KEYS_NS_SIZE + MAX_KEY];
	assert_true(klen <= MAX_KEY);
	keys_make_nskey(nskey, ns, key, klen);
	keys_make_ikey(out->b, nskey, KEYS_NS_SIZE + klen, seq, kind);
	out->len = KEYS_NS_SIZE + klen + KEYS_TRAILER_SIZE;
	return keys_slice_of(out->b, out->len);
}

static int sign(int x)
{
	return x < 0 ? -1 : x > 0;
}

/* The 64- and 32-bit helpers read back what they wrote, big-endian ones
 * with the most significant byte first, little-endian ones last. */
static void test_fixed_width_integers_round_trip(void **state)
{
	(void)state;
	uint64_t s = test_seed("keys_int");
	uint8_t b[8];
	keys_put_u64be(b, UINT64_C(0x0102030405060708));
	for (int i = 0; i < 8; i++)
		assert_int_equal(b[i], i + 1);
	keys_put_u64le(b, UINT64_C(0x0102030405060708));
	for (int i = 0; i < 8; i++)
		assert_int_equal(b[i], 8 - i);
	keys_put_u32le(b, 0xa1b2c3d4u);
	assert_int_equal(b[0], 0xd4);
	assert_int_equal(b[3], 0xa1);
	for (int i = 0; i < 1000; i++) {
		uint64_t v = test_rand(&s);
		keys_put_u64be(b, v);
		assert_true(keys_get_u64be(b) == v);
		keys_put_u64le(b, v);
		assert_true(keys_get_u64le(b) == v);
		keys_put_u32le(b, (uint32_t)v);
		assert_int_equal(keys_get_u32le(b), (uint32_t)v);
	}
}

/* Varints: the boundaries take the lengths the format promises (1 byte
 * below 128, 5 for a u32, 10 for a u64), 32-bit values read back, and the
 * 32-bit decoder refuses a truncated varint, one past 32 bits and one at
 * the very end of its input, never reading past it. */
static void test_varints_round_trip_and_refuse_bad_input(void **state)
{
	(void)state;
	uint64_t s = test_seed("keys_varint");
	uint8_t b[KEYS_MAX_VARINT + 1];
	const uint8_t *after;
	uint32_t v;
	assert_int_equal(keys_put_varint(b, 0), 1);
	assert_int_equal(keys_put_varint(b, 127), 1);
	assert_int_equal(keys_put_varint(b, 128), 2);
	assert_int_equal(b[0], 0x80);
	assert_int_equal(b[1], 0x01);
	assert_int_equal(keys_put_varint(b, UINT32_MAX), 5);
	assert_true(keys_get_varint32(b, b + 5, &after, &v));
	assert_true(v == UINT32_MAX && after == b + 5);
	assert_false(keys_get_varint32(b, b + 4, &after, &v)); /* truncated */
	assert_false(keys_get_varint32(b, b, &after, &v));     /* empty */
	assert_int_equal(keys_put_varint(b, UINT64_C(1) << 32), 5);
	assert_false(keys_get_varint32(b, b + 5, &after, &v)); /* 33 bits */
	assert_int_equal(keys_put_varint(b, UINT64_MAX), KEYS_MAX_VARINT);
	assert_int_equal(keys_varint_size(UINT64_MAX), KEYS_MAX_VARINT);
	assert_int_equal(keys_varint_size(127), 1);
	assert_int_equal(keys_varint_size(128), 2);
	assert_false(keys_get_varint32(b, b + KEYS_MAX_VARINT, &after, &v));
	for (int i = 0; i < 1000; i++) {
		uint32_t x = (uint32_t)(test_rand(&s) >> (test_rand(&s) % 32));
		size_t n = keys_put_varint(b, x);
		assert_int_equal(keys_varint_size(x), n);
		b[n] = 0xff; /* whatever follows is not read */
		assert_true(keys_get_varint32(b, b + n + 1, &after, &v));
		assert_int_equal(v, x);
		assert_true(after == b + n);
	}
}

/* A trailer is seq << 8 | kind: both come back from an internal key,
 * including the largest sequence number and both kinds. */
static void test_trailer_packs_sequence_and_kind(void **state)
{
	(void)state;
	assert_true(keys_trailer(0, KEYS_KIND_DELETE) == 0);
	assert_true(keys_trailer(1, KEYS_KIND_VALUE) == 0x101);
	assert_true(keys_trailer(KEYS_MAX_SEQ, KEYS_KIND_VALUE) == (KEYS_MAX_SEQ << 8 | 1));
	assert_true(keys_trailer(KEYS_MAX_SEQ, KEYS_KIND_VALUE) >> 8 == KEYS_MAX_SEQ);
	static const uint64_t seqs[] = {0, 1, 255, 256, 0x123456789aULL, KEYS_MAX_SEQ};
	struct ikey_buf ib;
	for (size_t i = 0; i < sizeof(seqs) / sizeof(seqs[0]); i++) {
		for (int kind = KEYS_KIND_DELETE; kind <= KEYS_KIND_VALUE; kind++) {
			keys_slice k = make_ikey(&ib, 7, "key", 3, seqs[i], (enum keys_kind)kind);
			assert_true(keys_ikey_seq(k) == seqs[i]);
			assert_int_equal(keys_ikey_kind(k), kind);
			/* The trailer is stored little-endian after the nskey. */
			assert_true(keys_get_u64le(k.data + k.len - KEYS_TRAILER_SIZE) ==
			            keys_trailer(seqs[i], (enum keys_kind)kind));
		}
	}
}

/* nskey = 8-byte big-endian namespace ++ user key; the internal key's
 * nskey part gives it back unchanged, for empty and random keys. */
static void test_nskey_and_ikey_round_trip(void **state)
{
	(void)state;
	uint64_t s = test_seed("keys_roundtrip");
	uint8_t nskey[KEYS_NS_SIZE + MAX_KEY];
	keys_make_nskey(nskey, UINT64_C(0x0a0b0c0d0e0f1011), "ab", 2);
	static const uint8_t want[] = {0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 'a', 'b'};
	assert_memory_equal(nskey, want, sizeof(want));
	struct ikey_buf ib;
	for (int i = 0; i < 2000; i++) {
		uint8_t key[MAX_KEY];
		size_t klen = test_rand(&s) % (MAX_KEY + 1);
		for (size_t j = 0; j < klen; j++)
			key[j] = (uint8_t)test_rand(&s);
		uint64_t ns = i % 3 == 0 ? test_rand(&s) : (uint64_t)(i % 5);
		uint64_t seq = test_rand(&s) & KEYS_MAX_SEQ;
		enum keys_kind kind = (enum keys_kind)(test_rand(&s) & 1);
		keys_slice ik = make_ikey(&ib, ns, key, klen, seq, kind);
		assert_int_equal(ik.len, KEYS_NS_SIZE + klen + KEYS_TRAILER_SIZE);
		keys_slice nk = keys_ikey_nskey(ik);
		assert_int_equal(nk.len, KEYS_NS_SIZE + klen);
		assert_true(keys_get_u64be(nk.data) == ns);
		if (klen)
			assert_memory_equal(nk.data + KEYS_NS_SIZE, key, klen);
		assert_true(keys_ikey_seq(ik) == seq);
		assert_int_equal(keys_ikey_kind(ik), kind);
	}
}

/* Byte order: shorter first on a common prefix, bytes compared unsigned,
 * and the empty string smallest. */
static void test_compare_bytes_orders_prefixes_and_high_bytes(void **state)
{
	(void)state;
	keys_slice empty = keys_slice_of(NULL, 0);
	keys_slice a = keys_slice_of("a", 1), ab = keys_slice_of("ab", 2);
	keys_slice hi = keys_slice_of("\xff", 1), lo = keys_slice_of("\x01", 1);
	assert_int_equal(keys_compare_bytes(empty, empty), 0);
	assert_true(keys_compare_bytes(empty, a) < 0);
	assert_true(keys_compare_bytes(a, empty) > 0);
	assert_true(keys_compare_bytes(a, ab) < 0);
	assert_true(keys_compare_bytes(ab, a) > 0);
	assert_int_equal(keys_compare_bytes(ab, keys_slice_of("ab", 2)), 0);
	assert_true(keys_compare_bytes(lo, hi) < 0);
	assert_true(keys_compare_bytes(hi, ab) > 0);
}

/* Namespaces order before user keys: every key of namespace n sorts before
 * every key of n + 1, as nskeys and as internal keys, even when the user
 * keys say otherwise (and across the byte boundaries of the big-endian
 * namespace). */
static void test_namespace_orders_before_user_key(void **state)
{
	(void)state;
	static const uint64_t ns[] = {
	    0, 1, 2, 255, 256, 65535, 65536, UINT64_C(1) << 32, UINT64_MAX - 1, UINT64_MAX};
	static const char *const keys[] = {"", "a", "zzzz", "\xff\xff"};
	struct ikey_buf x, y;
	for (size_t i = 0; i + 1 < sizeof(ns) / sizeof(ns[0]); i++) {
		for (size_t a = 0; a < 4; a++) {
			for (size_t b = 0; b < 4; b++) {
				keys_slice lo = make_ikey(&x, ns[i], keys[a], strlen(keys[a]), 1,
				                          KEYS_KIND_VALUE);
				keys_slice hi = make_ikey(&y, ns[i + 1], keys[b], strlen(keys[b]),
				                          KEYS_MAX_SEQ, KEYS_KIND_VALUE);
				assert_true(keys_compare_ikey(lo, hi) < 0);
				assert_true(keys_compare_ikey(hi, lo) > 0);
				assert_true(keys_compare_bytes(keys_ikey_nskey(lo),
				                               keys_ikey_nskey(hi)) < 0);
			}
		}
	}
}

/* For one nskey the newest version comes first: higher sequence first,
 * and at one sequence a value before a delete (larger trailer first). */
static void test_newer_sequence_sorts_first(void **state)
{
	(void)state;
	struct ikey_buf x, y;
	keys_slice old = make_ikey(&x, 3, "k", 1, 5, KEYS_KIND_VALUE);
	keys_slice neu = make_ikey(&y, 3, "k", 1, 6, KEYS_KIND_DELETE);
	assert_true(keys_compare_ikey(neu, old) < 0);
	assert_true(keys_compare_ikey(old, neu) > 0);
	/* Sequence numbers that differ only in a high byte: the trailer is
	 * compared as a number, not as little-endian bytes. */
	old = make_ikey(&x, 3, "k", 1, 0x100, KEYS_KIND_VALUE);
	neu = make_ikey(&y, 3, "k", 1, 0x1ff00, KEYS_KIND_VALUE);
	assert_true(keys_compare_ikey(neu, old) < 0);
	keys_slice v = make_ikey(&x, 3, "k", 1, 9, KEYS_KIND_VALUE);
	keys_slice d = make_ikey(&y, 3, "k", 1, 9, KEYS_KIND_DELETE);
	assert_true(keys_compare_ikey(v, d) < 0);
	assert_int_equal(keys_compare_ikey(v, v), 0);
	/* The user key still dominates the sequence. */
	keys_slice a = make_ikey(&x, 3, "a", 1, 1, KEYS_KIND_VALUE);
	keys_slice b = make_ikey(&y, 3, "b", 1, KEYS_MAX_SEQ, KEYS_KIND_VALUE);
	assert_true(keys_compare_ikey(a, b) < 0);
	/* A key that is a prefix of another sorts first whatever the seqs. */
	a = make_ikey(&x, 3, "ab", 2, 1, KEYS_KIND_VALUE);
	b = make_ikey(&y, 3, "abc", 3, KEYS_MAX_SEQ, KEYS_KIND_VALUE);
	assert_true(keys_compare_ikey(a, b) < 0);
}

struct sample {
	uint64_t ns, seq;
	uint8_t key[8];
	size_t klen;
	enum keys_kind kind;
	struct ikey_buf ib;
};

static int sample_model_cmp(const struct sample *a, const struct sample *b)
{
	if (a->ns != b->ns)
		return a->ns < b->ns ? -1 : 1;
	int c = keys_compare_bytes(keys_slice_of(a->key, a->klen), keys_slice_of(b->key, b->klen));
	if (c)
		return sign(c);
	if (a->seq != b->seq)
		return a->seq > b->seq ? -1 : 1;
	return a->kind > b->kind ? -1 : a->kind < b->kind;
}

/* keys_compare_ikey agrees with the model order (namespace, user key,
 * sequence descending, kind descending) on random pairs. */
static void test_ikey_order_matches_model_on_random_keys(void **state)
{
	(void)state;
	uint64_t s = test_seed("keys_order");
	enum { N = 300 };
	struct sample *v = calloc(N, sizeof(*v));
	assert_non_null(v);
	for (size_t i = 0; i < N; i++) {
		/* Few distinct values, so that ties on each field are common. */
		v[i].ns = test_rand(&s) % 3 == 0 ? test_rand(&s) : test_rand(&s) % 3;
		v[i].klen = test_rand(&s) % 4;
		for (size_t j = 0; j < v[i].klen; j++)
			v[i].key[j] = (uint8_t)("a\x80\xff"[test_rand(&s) % 3]);
		v[i].seq =
		    test_rand(&s) % 4 == 0 ? test_rand(&s) & KEYS_MAX_SEQ : test_rand(&s) % 600;
		v[i].kind = (enum keys_kind)(test_rand(&s) & 1);
		make_ikey(&v[i].ib, v[i].ns, v[i].key, v[i].klen, v[i].seq, v[i].kind);
	}
	for (size_t i = 0; i < N; i++) {
		for (size_t j = 0; j < N; j++) {
			keys_slice a = keys_slice_of(v[i].ib.b, v[i].ib.len);
			keys_slice b = keys_slice_of(v[j].ib.b, v[j].ib.len);
			int want = sample_model_cmp(&v[i], &v[j]);
			int got = sign(keys_compare_ikey(a, b));
			if (got != want)
				print_error("pair %zu/%zu: got %d want %d\n", i, j, got, want);
			assert_int_equal(got, want);
			/* nskeys alone order by memcmp, as the header promises. */
			int ns_want =
			    v[i].ns != v[j].ns
			        ? (v[i].ns < v[j].ns ? -1 : 1)
			        : sign(keys_compare_bytes(keys_slice_of(v[i].key, v[i].klen),
			                                  keys_slice_of(v[j].key, v[j].klen)));
			assert_int_equal(
			    sign(keys_compare_bytes(keys_ikey_nskey(a), keys_ikey_nskey(b))),
			    ns_want);
		}
	}
	free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fixed_width_integers_round_trip),
	    cmocka_unit_test(test_varints_round_trip_and_refuse_bad_input),
	    cmocka_unit_test(test_trailer_packs_sequence_and_kind),
	    cmocka_unit_test(test_nskey_and_ikey_round_trip),
	    cmocka_unit_test(test_compare_bytes_orders_prefixes_and_high_bytes),
	    cmocka_unit_test(test_namespace_orders_before_user_key),
	    cmocka_unit_test(test_newer_sequence_sorts_first),
	    cmocka_unit_test(test_ikey_order_matches_model_on_random_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
