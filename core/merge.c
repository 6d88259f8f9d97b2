#include "merge.h"

#include <assert.h>

#include "error.h"
#include "mem.h"

/*
 * A binary min-heap of child indices, ordered by the children's current
 * keys, ties broken by index. Each child's current key is cached in keys[]
 * so that comparisons do not go through the child's ops table; the cache is
 * refreshed whenever that child moves (its slices are valid until then).
 * next() moves only the top child and sifts it down, which costs two
 * comparisons when the same source keeps winning (the common case of long
 * runs from one segment).
 */
typedef struct {
	iter base;
	size_t n;
	iter **children;
	keys_slice *keys; /* current key of each valid child */
	bool *unloaded;   /* child seeked and not read since: maybe lazy (iter.h) */
	size_t *heap;     /* child indices; heap[0] is the smallest */
	size_t hn;
	int status;
} merge_iter;

static bool merge_less(const merge_iter *m, size_t a, size_t b)
{
	int c = keys_compare_ikey(m->keys[a], m->keys[b]);
	return c < 0 || (c == 0 && a < b);
}

static void merge_sift_down(merge_iter *m, size_t pos)
{
	size_t *h = m->heap;
	size_t hn = m->hn;
	size_t x = h[pos];
	for (;;) {
		size_t l = 2 * pos + 1;
		if (l >= hn)
			break;
		size_t best = l;
		if (l + 1 < hn && merge_less(m, h[l + 1], h[l]))
			best = l + 1;
		if (!merge_less(m, h[best], x))
			break;
		h[pos] = h[best];
		pos = best;
	}
	h[pos] = x;
}

/* First non-zero status in child order, so that the reported error does not
 * depend on heap layout. */
static int merge_child_status(const merge_iter *m)
{
	for (size_t i = 0; i < m->n; i++) {
		int st = iter_status(m->children[i]);
		if (st != 0)
			return st;
	}
	return 0;
}

/* Rebuilds the heap after every child was repositioned. */
static void merge_rebuild(merge_iter *m)
{
	m->hn = 0;
	m->status = merge_child_status(m);
	if (m->status != 0)
		return;
	for (size_t i = 0; i < m->n; i++) {
		if (iter_valid(m->children[i])) {
			m->keys[i] = iter_key(m->children[i]);
			m->heap[m->hn++] = i;
		}
	}
	for (size_t i = m->hn / 2; i-- > 0;)
		merge_sift_down(m, i);
}

/* The top child moved (next, or a load): refreshes its cached key, or drops
 * it from the heap when it ended. False when the merge has nothing left or
 * failed. */
static bool merge_top_moved(merge_iter *m)
{
	size_t top = m->heap[0];
	iter *c = m->children[top];
	if (iter_valid(c)) {
		m->keys[top] = iter_key(c);
		return true;
	}
	if (iter_status(c) != 0) {
		m->status = merge_child_status(m);
		m->hn = 0;
		return false;
	}
	m->heap[0] = m->heap[--m->hn];
	return m->hn > 0;
}

/* Reads the top child's entry if a lazy seek left it unread (iter.h): only
 * the top is ever returned, so a child whose first key comes from its
 * metadata costs nothing until it wins. Loading may fail (the child turns
 * invalid with a status) or, on inconsistent metadata, move its key: the
 * heap is fixed up and the new top looked at in turn. */
static void merge_load_top(merge_iter *m)
{
	while (m->hn > 0) {
		size_t top = m->heap[0];
		iter *c = m->children[top];
		if (!m->unloaded[top])
			return;
		m->unloaded[top] = false;
		keys_slice before = m->keys[top];
		iter_load(c);
		if (iter_valid(c) && keys_compare_ikey(iter_key(c), before) == 0) {
			m->keys[top] = iter_key(c);
			return;
		}
		if (!merge_top_moved(m))
			return;
		merge_sift_down(m, 0);
	}
}

static void merge_seek(iter *it, keys_slice ikey)
{
	merge_iter *m = (merge_iter *)it;
	for (size_t i = 0; i < m->n; i++)
		iter_prepare_seek(m->children[i], ikey);
	for (size_t i = 0; i < m->n; i++) {
		iter_seek(m->children[i], ikey);
		m->unloaded[i] = m->children[i]->ops->load != NULL;
	}
	merge_rebuild(m);
	merge_load_top(m);
}

static void merge_seek_first(iter *it)
{
	merge_iter *m = (merge_iter *)it;
	for (size_t i = 0; i < m->n; i++) {
		iter_seek_first(m->children[i]);
		m->unloaded[i] = m->children[i]->ops->load != NULL;
	}
	merge_rebuild(m);
	merge_load_top(m);
}

static void merge_next(iter *it)
{
	merge_iter *m = (merge_iter *)it;
	assert(m->hn > 0 && m->status == 0);
	size_t top = m->heap[0];
	iter_next(m->children[top]); /* reads its entry: loaded (iter.h) */
	if (!merge_top_moved(m))
		return;
	merge_sift_down(m, 0);
	merge_load_top(m);
}

static bool merge_valid(const iter *it)
{
	const merge_iter *m = (const merge_iter *)it;
	return m->hn > 0 && m->status == 0;
}

static keys_slice merge_key(const iter *it)
{
	const merge_iter *m = (const merge_iter *)it;
	assert(m->hn > 0);
	return m->keys[m->heap[0]];
}

static keys_slice merge_value(const iter *it)
{
	const merge_iter *m = (const merge_iter *)it;
	assert(m->hn > 0);
	return iter_value(m->children[m->heap[0]]);
}

static int merge_status(const iter *it)
{
	return ((const merge_iter *)it)->status;
}

static void merge_destroy(iter *it)
{
	merge_iter *m = (merge_iter *)it;
	for (size_t i = 0; i < m->n; i++)
		iter_destroy(m->children[i]);
	mem_free(m->children);
	mem_free(m->keys);
	mem_free(m->heap);
	mem_free(m->unloaded);
	mem_free(m);
}

static const struct iter_ops merge_ops = {
    .seek = merge_seek,
    .seek_first = merge_seek_first,
    .next = merge_next,
    .valid = merge_valid,
    .key = merge_key,
    .value = merge_value,
    .status = merge_status,
    .destroy = merge_destroy,
};

int merge_iter_new(iter **children, size_t n, iter **out)
{
	int rc = 0;
	merge_iter *m = NULL;
	size_t cap = n ? n : 1;

	*out = NULL;
	m = mem_zalloc(sizeof(*m));
	if (!m)
		goto nomem;
	m->base.ops = &merge_ops;
	m->children = mem_calloc(cap, sizeof(*m->children));
	m->keys = mem_calloc(cap, sizeof(*m->keys));
	m->heap = mem_calloc(cap, sizeof(*m->heap));
	m->unloaded = mem_calloc(cap, sizeof(*m->unloaded));
	if (!m->children || !m->keys || !m->heap || !m->unloaded)
		goto nomem;
	for (size_t i = 0; i < n; i++)
		m->children[i] = children[i];
	m->n = n;
	*out = &m->base;
	goto out;
nomem:
	rc = error_set(CESIUM_ENOMEM, "merge: cannot allocate a merging iterator over %zu sources",
	               n);
	for (size_t i = 0; i < n; i++)
		iter_destroy(children[i]);
	if (m) {
		mem_free(m->children);
		mem_free(m->keys);
		mem_free(m->heap);
		mem_free(m->unloaded);
		mem_free(m);
	}
out:
	return rc;
}
