#include "version.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "log.h"
#include "mem.h"

struct file_meta *file_meta_new(const struct file_desc *d)
{
	struct file_meta *f = mem_zalloc(sizeof(*f));
	if (!f)
		return NULL;
	f->smallest = mem_alloc(d->smallest_len ? d->smallest_len : 1);
	f->largest = mem_alloc(d->largest_len ? d->largest_len : 1);
	f->life = mem_alloc(sizeof(*f->life));
	if (!f->smallest || !f->largest || !f->life) {
		mem_free(f->smallest);
		mem_free(f->largest);
		mem_free(f->life);
		mem_free(f);
		return NULL;
	}
	atomic_init(&f->life->metas, 1);
	atomic_init(&f->life->obsolete, false);
	f->unlink = false;
	memcpy(f->smallest, d->smallest, d->smallest_len);
	memcpy(f->largest, d->largest, d->largest_len);
	atomic_init(&f->refs, 1);
	f->number = d->number;
	f->level = d->level;
	f->file_size = d->file_size;
	f->smallest_len = d->smallest_len;
	f->largest_len = d->largest_len;
	f->min_seq = d->min_seq;
	f->max_seq = d->max_seq;
	f->entries = d->entries;
	f->tombstones = d->tombstones;
	f->value_log = d->value_log;
	f->run = d->run ? d->run : d->number;
	return f;
}

void file_meta_unref(struct file_meta *f, const struct version_env *env)
{
	if (!f)
		return;
	if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1)
		return;
	bool last = atomic_fetch_sub_explicit(&f->life->metas, 1, memory_order_acq_rel) == 1;
	f->unlink = last && atomic_load_explicit(&f->life->obsolete, memory_order_acquire);
	if (env && env->file_release)
		env->file_release(env->ctx, f);
	if (last)
		mem_free(f->life);
	mem_free(f->smallest);
	mem_free(f->largest);
	mem_free(f);
}

static struct version *version_alloc(struct version_env *env)
{
	struct version *v = mem_zalloc(sizeof(*v));
	if (!v)
		return NULL;
	atomic_init(&v->refs, 1);
	v->env = env;
	return v;
}

int version_new_empty(struct version_env *env, struct version **out)
{
	struct version *v = version_alloc(env);
	if (!v)
		return error_set(CESIUM_ENOMEM, "version: out of memory");
	*out = v;
	return 0;
}

void version_unref(struct version *v)
{
	if (!v)
		return;
	/* acq_rel: the thread that frees must see every other holder's
	 * reads finished (release on their decrement, acquire on ours). */
	if (atomic_fetch_sub_explicit(&v->refs, 1, memory_order_acq_rel) != 1)
		return;
	for (int l = 0; l < VERSION_LEVELS; l++) {
		for (size_t i = 0; i < v->nfiles[l]; i++)
			file_meta_unref(v->files[l][i], v->env);
		mem_free(v->files[l]);
	}
	mem_free(v);
}

struct file_desc file_meta_desc(const struct file_meta *f, int level, uint64_t run)
{
	return (struct file_desc){
	    .level = level,
	    .number = f->number,
	    .file_size = f->file_size,
	    .smallest = f->smallest,
	    .smallest_len = f->smallest_len,
	    .largest = f->largest,
	    .largest_len = f->largest_len,
	    .min_seq = f->min_seq,
	    .max_seq = f->max_seq,
	    .entries = f->entries,
	    .tombstones = f->tombstones,
	    .run = run,
	    .value_log = f->value_log,
	};
}

static keys_slice version_smallest(const struct file_meta *f)
{
	return keys_slice_of(f->smallest, f->smallest_len);
}

static keys_slice version_largest(const struct file_meta *f)
{
	return keys_slice_of(f->largest, f->largest_len);
}

static int version_cmp_l0(const void *a, const void *b)
{
	const struct file_meta *x = *(struct file_meta *const *)a;
	const struct file_meta *y = *(struct file_meta *const *)b;
	if (x->max_seq != y->max_seq)
		return x->max_seq > y->max_seq ? -1 : 1;
	return x->number > y->number ? -1 : x->number < y->number ? 1 : 0;
}

static int version_cmp_sorted(const void *a, const void *b)
{
	const struct file_meta *x = *(struct file_meta *const *)a;
	const struct file_meta *y = *(struct file_meta *const *)b;
	int c = keys_compare_ikey(version_smallest(x), version_smallest(y));
	if (c != 0)
		return c;
	return x->number < y->number ? -1 : x->number > y->number ? 1 : 0;
}

/* Tiered levels: runs newest first (a later job's run holds newer data),
 * then key order inside a run. */
static int version_cmp_tiered(const void *a, const void *b)
{
	const struct file_meta *x = *(struct file_meta *const *)a;
	const struct file_meta *y = *(struct file_meta *const *)b;
	if (x->run != y->run)
		return x->run > y->run ? -1 : 1;
	return version_cmp_sorted(a, b);
}

static int version_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y ? 1 : 0;
}

static bool version_is_deleted(const struct edit *e, int level, uint64_t number)
{
	for (size_t i = 0; i < e->ndeleted; i++)
		if (e->deleted[i].level == level && e->deleted[i].number == number)
			return true;
	return false;
}

/* Checks the edit against base before anything is built: every deleted
 * file present once, no added number clashing with a surviving file. */
static int version_check_edit(const struct version *base, const struct edit *e)
{
	int rc = 0;
	uint64_t *nums = NULL;
	for (size_t i = 0; i < e->ndeleted; i++) {
		const struct edit_deleted *d = &e->deleted[i];
		bool found = false;
		if (d->level >= 0 && d->level < VERSION_LEVELS)
			for (size_t j = 0; j < base->nfiles[d->level]; j++)
				if (base->files[d->level][j]->number == d->number)
					found = true;
		for (size_t k = 0; k < i; k++)
			if (e->deleted[k].level == d->level && e->deleted[k].number == d->number)
				found = false;
		if (!found)
			return error_set(CESIUM_ECORRUPT,
			                 "version edit deletes file %llu at level %d, which the "
			                 "version does not hold (or deletes it twice)",
			                 (unsigned long long)d->number, d->level);
	}
	size_t n = e->nadded;
	for (int l = 0; l < VERSION_LEVELS; l++)
		n += base->nfiles[l];
	nums = mem_alloc((n ? n : 1) * sizeof(*nums));
	if (!nums)
		return error_set(CESIUM_ENOMEM, "version: out of memory");
	size_t k = 0;
	for (int l = 0; l < VERSION_LEVELS; l++)
		for (size_t j = 0; j < base->nfiles[l]; j++)
			if (!version_is_deleted(e, l, base->files[l][j]->number))
				nums[k++] = base->files[l][j]->number;
	for (size_t i = 0; i < e->nadded; i++) {
		if (e->added[i].level < 0 || e->added[i].level >= VERSION_LEVELS) {
			rc = error_set(CESIUM_ECORRUPT,
			               "version edit adds file %llu at bad level %d",
			               (unsigned long long)e->added[i].number, e->added[i].level);
			goto out;
		}
		nums[k++] = e->added[i].number;
	}
	qsort(nums, k, sizeof(*nums), version_cmp_u64);
	for (size_t i = 1; i < k; i++)
		if (nums[i] == nums[i - 1]) {
			rc = error_set(
			    CESIUM_ECORRUPT,
			    "version edit adds file %llu, which the version already holds",
			    (unsigned long long)nums[i]);
			goto out;
		}
out:
	mem_free(nums);
	return rc;
}

/* A file the edit moves (deletes at one level, adds at another) keeps its
 * life: the new meta joins the old one's, so the file goes only when the
 * last of them does, not when the newest is dropped while an older
 * version, pinned by a reader, still holds the old meta. */
static void version_share_life(const struct version *base, const struct edit *e,
                               struct file_meta *f)
{
	for (size_t i = 0; i < e->ndeleted; i++) {
		const struct edit_deleted *del = &e->deleted[i];
		if (del->number != f->number || del->level < 0 || del->level >= VERSION_LEVELS)
			continue;
		for (size_t j = 0; j < base->nfiles[del->level]; j++) {
			struct file_meta *old = base->files[del->level][j];
			if (old->number != f->number)
				continue;
			mem_free(f->life);
			f->life = old->life;
			atomic_fetch_add_explicit(&f->life->metas, 1, memory_order_relaxed);
			return;
		}
	}
}

int version_apply(const struct version *base, const struct edit *e, version_make_meta_fn make_meta,
                  void *ctx, struct version **out)
{
	int rc = version_check_edit(base, e);
	if (rc < 0)
		return rc;
	struct version *v = version_alloc(base->env);
	if (!v)
		return error_set(CESIUM_ENOMEM, "version: out of memory");
	v->log_number = e->has_log_number ? e->log_number : base->log_number;
	v->next_file_number =
	    e->has_next_file_number ? e->next_file_number : base->next_file_number;
	v->last_seq = e->has_last_seq ? e->last_seq : base->last_seq;

	for (int l = 0; l < VERSION_LEVELS; l++) {
		size_t cap = base->nfiles[l];
		for (size_t i = 0; i < e->nadded; i++)
			cap += e->added[i].level == l;
		if (cap == 0)
			continue;
		v->files[l] = mem_alloc(cap * sizeof(*v->files[l]));
		if (!v->files[l]) {
			rc = error_set(CESIUM_ENOMEM, "version: out of memory");
			goto out;
		}
		for (size_t j = 0; j < base->nfiles[l]; j++) {
			struct file_meta *f = base->files[l][j];
			if (!version_is_deleted(e, l, f->number))
				v->files[l][v->nfiles[l]++] = file_meta_ref(f);
		}
	}
	for (size_t i = 0; i < e->nadded; i++) {
		const struct file_desc *d = &e->added[i];
		struct file_meta *f = make_meta ? make_meta(ctx, d) : file_meta_new(d);
		if (!f) {
			if (make_meta)
				rc = CESIUM_EIO; /* the hook's message stands */
			else
				rc =
				    error_set(CESIUM_ENOMEM, "version: out of memory for file %llu",
				              (unsigned long long)d->number);
			goto out;
		}
		version_share_life(base, e, f);
		v->files[d->level][v->nfiles[d->level]++] = f;
	}
	for (int l = 0; l < VERSION_LEVELS; l++)
		if (v->nfiles[l] > 1)
			qsort(v->files[l], v->nfiles[l], sizeof(*v->files[l]),
			      l == 0                         ? version_cmp_l0
			      : l < VERSION_TIERED_LEVELS ? version_cmp_tiered
			                                  : version_cmp_sorted);
	*out = v;
	v = NULL;
out:
	version_unref(v);
	return rc;
}

/* Whether the edit adds the file again (a trivial move to another level). */
static bool version_is_readded(const struct edit *e, uint64_t number)
{
	for (size_t i = 0; i < e->nadded; i++)
		if (e->added[i].number == number)
			return true;
	return false;
}

void version_mark_deleted(const struct version *base, const struct edit *e)
{
	for (size_t i = 0; i < e->ndeleted; i++) {
		int l = e->deleted[i].level;
		if (l < 0 || l >= VERSION_LEVELS || version_is_readded(e, e->deleted[i].number))
			continue;
		for (size_t j = 0; j < base->nfiles[l]; j++)
			if (base->files[l][j]->number == e->deleted[i].number)
				atomic_store_explicit(&base->files[l][j]->life->obsolete, true,
				                      memory_order_release);
	}
}

bool version_level_is_sorted_run(const struct version *v, int level)
{
	if (level < 0 || level >= VERSION_LEVELS)
		return false;
	for (size_t i = 1; i < v->nfiles[level]; i++)
		if (keys_compare_ikey(version_largest(v->files[level][i - 1]),
		                      version_smallest(v->files[level][i])) >= 0)
			return false;
	return true;
}

/* Among files[lo, hi), in key order: the first whose largest nskey is >=
 * nskey, or hi. */
static size_t version_lower_bound(struct file_meta *const *files, size_t lo, size_t hi,
                                  keys_slice nskey)
{
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (keys_compare_bytes(keys_ikey_nskey(version_largest(files[mid])), nskey) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

size_t version_find_file(const struct version *v, int level, keys_slice nskey)
{
	return version_lower_bound(v->files[level], 0, v->nfiles[level], nskey);
}

size_t version_run_candidate(const struct version *v, int level, size_t first, keys_slice nskey,
                             size_t *end)
{
	struct file_meta *const *files = v->files[level];
	size_t n = v->nfiles[level], hi = n;
	if (level == 0) {
		hi = first + 1;
	} else if (level < VERSION_TIERED_LEVELS) {
		hi = first + 1;
		while (hi < n && files[hi]->run == files[first]->run)
			hi++;
	}
	*end = hi;
	size_t k = version_lower_bound(files, first, hi, nskey);
	if (k == hi || keys_compare_bytes(keys_ikey_nskey(version_smallest(files[k])), nskey) > 0)
		return hi;
	return k;
}

uint64_t version_level_bytes(const struct version *v, int level)
{
	uint64_t n = 0;
	for (size_t i = 0; i < v->nfiles[level]; i++)
		n += v->files[level][i]->file_size;
	return n;
}

struct version_text {
	char *buf;
	size_t len, cap;
	bool oom;
};

static void version_printf(struct version_text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void version_printf(struct version_text *t, const char *fmt, ...)
{
	if (t->oom)
		return;
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->oom = true;
			return;
		}
		if ((size_t)n < t->cap - t->len) {
			t->len += (size_t)n;
			return;
		}
		size_t nc = (t->cap + (size_t)n + 1) * 2;
		char *p = mem_realloc(t->buf, nc);
		if (!p) {
			t->oom = true;
			return;
		}
		t->buf = p;
		t->cap = nc;
	}
}

static void version_print_key(struct version_text *t, const uint8_t *k, size_t n)
{
	size_t shown = n > 24 ? 24 : n;
	for (size_t i = 0; i < shown; i++)
		version_printf(t, "%02x", k[i]);
	if (shown < n)
		version_printf(t, "..");
}

int version_dump(const struct version *v, char **text)
{
	struct version_text t = {0};
	t.cap = 256;
	t.buf = mem_alloc(t.cap);
	if (!t.buf)
		return error_set(CESIUM_ENOMEM, "version: out of memory");
	t.buf[0] = '\0';
	version_printf(&t, "log_number %llu next_file_number %llu last_seq %llu\n",
	               (unsigned long long)v->log_number, (unsigned long long)v->next_file_number,
	               (unsigned long long)v->last_seq);
	for (int l = 0; l < VERSION_LEVELS; l++) {
		if (!v->nfiles[l])
			continue;
		version_printf(&t, "L%d: %zu files, %llu bytes%s\n", l, v->nfiles[l],
		               (unsigned long long)version_level_bytes(v, l),
		               l > 0 && version_level_is_sorted_run(v, l) ? ", sorted run" : "");
		for (size_t i = 0; i < v->nfiles[l]; i++) {
			const struct file_meta *f = v->files[l][i];
			version_printf(
			    &t, "  #%llu size %llu seq %llu..%llu entries %llu tombstones %llu [",
			    (unsigned long long)f->number, (unsigned long long)f->file_size,
			    (unsigned long long)f->min_seq, (unsigned long long)f->max_seq,
			    (unsigned long long)f->entries, (unsigned long long)f->tombstones);
			version_print_key(&t, f->smallest, f->smallest_len);
			version_printf(&t, " .. ");
			version_print_key(&t, f->largest, f->largest_len);
			version_printf(&t, "]\n");
		}
	}
	if (t.oom) {
		mem_free(t.buf);
		return error_set(CESIUM_ENOMEM, "version: out of memory");
	}
	*text = t.buf;
	return 0;
}

int version_recover(const char *manifest_path, struct version_env *env,
                    version_make_meta_fn make_meta, void *ctx, struct version **out,
                    uint64_t *valid_end)
{
	uint8_t *buf = NULL;
	size_t size = 0;
	struct version *cur = NULL;
	struct edit e;
	edit_init(&e);
	int rc = log_read_file(manifest_path, &buf, &size);
	if (rc < 0)
		goto out;
	rc = version_new_empty(env, &cur);
	if (rc < 0)
		goto out;
	struct log_reader r;
	log_reader_init(&r, buf, size, manifest_path);
	keys_slice p;
	while ((rc = log_reader_next(&r, &p)) == 1) {
		rc = edit_decode(p.data, p.len, &e, manifest_path,
		                 r.record_offset + LOG_HEADER_SIZE);
		if (rc < 0)
			goto out;
		struct version *next = NULL;
		rc = version_apply(cur, &e, make_meta, ctx, &next);
		if (rc < 0) {
			if (rc == CESIUM_ECORRUPT) {
				char msg[ERROR_MSG_MAX];
				snprintf(msg, sizeof(msg), "%s", cesium_errmsg());
				error_set(rc, "%s: offset %llu: %s", manifest_path,
				          (unsigned long long)r.record_offset, msg);
			}
			goto out;
		}
		edit_free(&e);
		version_unref(cur);
		cur = next;
	}
	if (rc < 0)
		goto out;
	*valid_end = r.valid_end;
	*out = cur;
	cur = NULL;
out:
	edit_free(&e);
	version_unref(cur);
	mem_free(buf);
	return rc;
}
