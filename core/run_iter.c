#include "run_iter.h"

#include "db.h"
#include "error.h"
#include "mem.h"
#include "segment.h"
#include "version.h"

struct run_iter {
	iter base;
	struct cesium_db *db;
	struct file_meta *const *files;
	size_t n;
	size_t cur; /* index of the file `seg` iterates; n when none */
	/* NULL when unpositioned or past the end. A lazy segment iterator
	 * (seg_iter_opts.lazy): a seek that lands on a file's first entry
	 * reads no block until loaded (iter.h). */
	iter *seg;
	int status;
};

static keys_slice run_largest(const struct file_meta *f)
{
	return keys_slice_of(f->largest, f->largest_len);
}

/* Replaces the current segment iterator with one over files[i]. */
static bool run_open(struct run_iter *it, size_t i)
{
	iter_destroy(it->seg);
	it->seg = NULL;
	it->cur = i;
	if (i >= it->n)
		return false;
	seg_reader *r;
	struct seg_iter_opts so = {.fill_cache = true, .lazy = true};
	int rc = db_file_reader(it->db, it->files[i], &r);
	if (!rc)
		rc = seg_reader_iter_new(r, &so, &it->seg);
	if (rc) {
		it->status = rc;
		it->cur = it->n;
		return false;
	}
	return true;
}

/* The segment iterator over files[i], reusing the current one. */
static bool run_at(struct run_iter *it, size_t i)
{
	return (i == it->cur && it->seg) || run_open(it, i);
}

/* Past the end of the current file: on to the first entry of the next,
 * read at once (only a seek may leave an entry unread). */
static void run_skip_exhausted(struct run_iter *it)
{
	while (it->seg && !iter_valid(it->seg)) {
		int rc = iter_status(it->seg);
		if (rc) {
			it->status = rc;
			return;
		}
		if (!run_open(it, it->cur + 1))
			return;
		iter_seek_first(it->seg);
		iter_load(it->seg);
	}
}

static void run_load(iter *base)
{
	struct run_iter *it = (struct run_iter *)base;
	if (!it->seg)
		return;
	iter_load(it->seg);
	run_skip_exhausted(it);
}

/* The first file whose largest key is >= target holds the answer, or, if
 * target falls between files, starts right after it. */
static size_t run_find(const struct run_iter *it, keys_slice target)
{
	size_t lo = 0, hi = it->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (keys_compare_ikey(run_largest(it->files[mid]), target) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void run_prepare_seek(iter *base, keys_slice target)
{
	struct run_iter *it = (struct run_iter *)base;
	size_t lo = run_find(it, target);
	if (!it->status && lo < it->n && run_at(it, lo))
		iter_prepare_seek(it->seg, target);
}

static void run_seek(iter *base, keys_slice target)
{
	struct run_iter *it = (struct run_iter *)base;
	if (it->status || !run_at(it, run_find(it, target)))
		return;
	iter_seek(it->seg, target);
	run_skip_exhausted(it);
}

static void run_seek_first(iter *base)
{
	struct run_iter *it = (struct run_iter *)base;
	if (it->status || !run_at(it, 0))
		return;
	iter_seek_first(it->seg);
	run_skip_exhausted(it);
}

static bool run_valid(const iter *base)
{
	const struct run_iter *it = (const struct run_iter *)base;
	return !it->status && it->seg && iter_valid(it->seg);
}

static void run_next(iter *base)
{
	struct run_iter *it = (struct run_iter *)base;
	if (!run_valid(base))
		return;
	iter_next(it->seg);
	run_skip_exhausted(it);
}

static keys_slice run_key(const iter *base)
{
	return iter_key(((const struct run_iter *)base)->seg);
}

static keys_slice run_value(const iter *base)
{
	return iter_value(((const struct run_iter *)base)->seg);
}

static int run_status(const iter *base)
{
	return ((const struct run_iter *)base)->status;
}

static void run_destroy(iter *base)
{
	struct run_iter *it = (struct run_iter *)base;
	iter_destroy(it->seg);
	mem_free(it);
}

static const struct iter_ops run_iter_ops = {
    .seek = run_seek,
    .seek_first = run_seek_first,
    .next = run_next,
    .valid = run_valid,
    .key = run_key,
    .value = run_value,
    .status = run_status,
    .destroy = run_destroy,
    .load = run_load,
    .prepare_seek = run_prepare_seek,
};

int run_iter_new(struct cesium_db *db, struct file_meta *const *files, size_t n, iter **out)
{
	if (!db || !files || n == 0 || !out)
		return error_set(CESIUM_EINVAL, "run_iter_new: empty run or NULL argument");
	struct run_iter *it = mem_zalloc(sizeof(*it));
	if (!it)
		return error_set(CESIUM_ENOMEM, "out of memory for a run iterator");
	it->base.ops = &run_iter_ops;
	it->db = db;
	it->files = files;
	it->n = n;
	it->cur = n;
	*out = &it->base;
	return 0;
}
