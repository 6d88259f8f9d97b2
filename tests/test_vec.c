/* The in-test vector source and its list builder; see test_vec.h. */

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_vec.h"

int vec_destroyed;

static bool vec_positioned(vec_iter *v)
{
	memset(v->kbuf, 0xa5, v->kmax);
	memset(v->vbuf, 0x5a, v->vmax);
	if (v->pos >= v->fail_at) {
		v->status = v->fail_code;
		return false;
	}
	if (v->pos < v->n) {
		memcpy(v->kbuf, v->e[v->pos].key, v->e[v->pos].klen);
		memcpy(v->vbuf, v->e[v->pos].val, v->e[v->pos].vlen);
	}
	return true;
}

static void vec_seek(iter *it, keys_slice ikey)
{
	vec_iter *v = (vec_iter *)it;
	v->status = 0;
	size_t lo = 0, hi = v->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (keys_compare_ikey(keys_slice_of(v->e[mid].key, v->e[mid].klen), ikey) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	v->pos = lo;
	vec_positioned(v);
}

static void vec_seek_first(iter *it)
{
	vec_iter *v = (vec_iter *)it;
	v->status = 0;
	v->pos = 0;
	vec_positioned(v);
}

static void vec_next(iter *it)
{
	vec_iter *v = (vec_iter *)it;
	assert_true(v->pos < v->n && v->status == 0);
	v->pos++;
	vec_positioned(v);
}

static bool vec_valid(const iter *it)
{
	const vec_iter *v = (const vec_iter *)it;
	return v->status == 0 && v->pos < v->n;
}

static keys_slice vec_key(const iter *it)
{
	const vec_iter *v = (const vec_iter *)it;
	return keys_slice_of(v->kbuf, v->e[v->pos].klen);
}

static keys_slice vec_value(const iter *it)
{
	const vec_iter *v = (const vec_iter *)it;
	return keys_slice_of(v->vbuf, v->e[v->pos].vlen);
}

static int vec_status(const iter *it)
{
	return ((const vec_iter *)it)->status;
}

static void vec_destroy(iter *it)
{
	vec_iter *v = (vec_iter *)it;
	for (size_t i = 0; i < v->n; i++) {
		free(v->e[i].key);
		free(v->e[i].val);
	}
	free(v->e);
	free(v->kbuf);
	free(v->vbuf);
	free(v);
	vec_destroyed++;
}

static const struct iter_ops vec_ops = {
    .seek = vec_seek,
    .seek_first = vec_seek_first,
    .next = vec_next,
    .valid = vec_valid,
    .key = vec_key,
    .value = vec_value,
    .status = vec_status,
    .destroy = vec_destroy,
};

int vec_entry_cmp(const void *a, const void *b)
{
	const vec_entry *x = a, *y = b;
	return keys_compare_ikey(keys_slice_of(x->key, x->klen), keys_slice_of(y->key, y->klen));
}

/* Copies and sorts entries; the caller keeps its array. */
vec_iter *vec_new(const vec_entry *e, size_t n)
{
	vec_iter *v = calloc(1, sizeof(*v));
	assert_non_null(v);
	v->base.ops = &vec_ops;
	v->e = calloc(n ? n : 1, sizeof(*v->e));
	assert_non_null(v->e);
	for (size_t i = 0; i < n; i++) {
		v->e[i].klen = e[i].klen;
		v->e[i].vlen = e[i].vlen;
		v->e[i].key = malloc(e[i].klen ? e[i].klen : 1);
		v->e[i].val = malloc(e[i].vlen ? e[i].vlen : 1);
		assert_non_null(v->e[i].key);
		assert_non_null(v->e[i].val);
		memcpy(v->e[i].key, e[i].key, e[i].klen);
		memcpy(v->e[i].val, e[i].val, e[i].vlen);
		if (e[i].klen > v->kmax)
			v->kmax = e[i].klen;
		if (e[i].vlen > v->vmax)
			v->vmax = e[i].vlen;
	}
	v->kbuf = malloc(v->kmax + 1);
	v->vbuf = malloc(v->vmax + 1);
	assert_non_null(v->kbuf);
	assert_non_null(v->vbuf);
	v->n = n;
	qsort(v->e, n, sizeof(*v->e), vec_entry_cmp);
	v->fail_at = SIZE_MAX;
	return v;
}

/* Builds an internal key ns ++ ukey ++ trailer into a malloc'd buffer. */
uint8_t *make_ikey(uint64_t ns, const char *ukey, size_t ulen, uint64_t seq, enum keys_kind kind,
                   size_t *klen)
{
	*klen = KEYS_NS_SIZE + ulen + KEYS_TRAILER_SIZE;
	uint8_t *k = malloc(*klen);
	assert_non_null(k);
	keys_put_u64be(k, ns);
	memcpy(k + KEYS_NS_SIZE, ukey, ulen);
	keys_put_u64le(k + KEYS_NS_SIZE + ulen, keys_trailer(seq, kind));
	return k;
}

void vl_add_raw(vec_list *l, const void *key, size_t klen, const void *val, size_t vlen)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 16;
		l->e = realloc(l->e, l->cap * sizeof(*l->e));
		assert_non_null(l->e);
	}
	vec_entry *e = &l->e[l->n++];
	e->klen = klen;
	e->vlen = vlen;
	e->key = malloc(klen ? klen : 1);
	e->val = malloc(vlen ? vlen : 1);
	assert_non_null(e->key);
	assert_non_null(e->val);
	if (klen)
		memcpy(e->key, key, klen);
	if (vlen)
		memcpy(e->val, val, vlen);
}

/* Adds ns/ukey@seq; val NULL adds a tombstone (with an empty value). */
void vl_add(vec_list *l, uint64_t ns, const char *ukey, uint64_t seq, const char *val)
{
	size_t klen;
	uint8_t *k =
	    make_ikey(ns, ukey, strlen(ukey), seq, val ? KEYS_KIND_VALUE : KEYS_KIND_DELETE, &klen);
	vl_add_raw(l, k, klen, val ? val : "", val ? strlen(val) : 0);
	free(k);
}

vec_iter *vec_from(const vec_list *l)
{
	return vec_new(l->e, l->n);
}

void vl_free(vec_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->e[i].key);
		free(l->e[i].val);
	}
	free(l->e);
	memset(l, 0, sizeof(*l));
}

