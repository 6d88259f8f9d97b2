#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include "edit.h"
#include "error.h"
#include "log.h"
#include "mem.h"
#include "test_util.h"
#include "version.h"

#define MAXF 1000

struct rel {
	int released[MAXF]; /* per file number */
	int unlinked[MAXF]; /* releases that may unlink the file */
	int total;
	int with_reader;
};

static void on_release(void *ctx, struct file_meta *f)
{
	struct rel *r = ctx;
	assert_true(f->number < MAXF);
	r->released[f->number]++;
	r->unlinked[f->number] += f->unlink;
	r->total++;
	if (f->reader == (void *)r)
		r->with_reader++;
}

/* Internal key for user key "u<i>" in namespace 0 (fixed width so that
 * byte order matches numeric order). */
static size_t ikey(uint8_t *out, uint64_t i, uint64_t seq)
{
	char user[16];
	int n = snprintf(user, sizeof(user), "u%06llu", (unsigned long long)i);
	uint8_t nskey[32];
	keys_make_nskey(nskey, 0, user, (size_t)n);
	keys_make_ikey(out, nskey, KEYS_NS_SIZE + (size_t)n, seq, KEYS_KIND_VALUE);
	return KEYS_NS_SIZE + (size_t)n + KEYS_TRAILER_SIZE;
}

static size_t nskey(uint8_t *out, uint64_t i)
{
	char user[16];
	int n = snprintf(user, sizeof(user), "u%06llu", (unsigned long long)i);
	keys_make_nskey(out, 0, user, (size_t)n);
	return KEYS_NS_SIZE + (size_t)n;
}

static void add(struct edit *e, int level, uint64_t number, uint64_t lo, uint64_t hi,
                uint64_t max_seq)
{
	uint8_t s[32], l[32];
	struct file_desc d = {
	    .level = level,
	    .number = number,
	    .file_size = 100 * number,
	    .smallest = s,
	    .smallest_len = ikey(s, lo, max_seq),
	    .largest = l,
	    .largest_len = ikey(l, hi, 1),
	    .min_seq = 1,
	    .max_seq = max_seq,
	    .entries = 10,
	    .tombstones = 1,
	};
	assert_int_equal(edit_add_file(e, &d), 0);
}

static struct version *apply_ok(struct version *base, struct edit *e)
{
	struct version *v = NULL;
	assert_int_equal(version_apply(base, e, NULL, NULL, &v), 0);
	edit_free(e);
	return v;
}

/* apply_ok for an edit that deletes files: marks them obsolete in base, as
 * the scheduler does once the edit is durable. */
static struct version *apply_deleting(struct version *base, struct edit *e)
{
	struct version *v = NULL;
	assert_int_equal(version_apply(base, e, NULL, NULL, &v), 0);
	version_mark_deleted(base, e);
	edit_free(e);
	return v;
}

/* Files are added and deleted, unchanged files are shared, and counters
 * are taken from the edit or inherited. */
static void test_version_apply_add_delete(void **state)
{
	(void)state;
	struct rel r = {0};
	struct version_env env = {on_release, &r};
	struct version *v0;
	assert_int_equal(version_new_empty(&env, &v0), 0);
	struct edit e;
	edit_init(&e);
	edit_set_log_number(&e, 5);
	edit_set_next_file_number(&e, 20);
	edit_set_last_seq(&e, 900);
	add(&e, 0, 1, 0, 50, 100);
	add(&e, 1, 2, 0, 10, 50);
	add(&e, 1, 3, 20, 30, 50);
	struct version *v1 = apply_ok(v0, &e);
	assert_int_equal(v1->nfiles[0], 1);
	assert_int_equal(v1->nfiles[1], 2);
	assert_int_equal(v1->log_number, 5);
	assert_int_equal(v1->next_file_number, 20);
	assert_int_equal(v1->last_seq, 900);
	assert_int_equal(v0->nfiles[1], 0); /* base unchanged */

	edit_init(&e);
	edit_set_last_seq(&e, 1000);
	assert_int_equal(edit_delete_file(&e, 1, 2), 0);
	add(&e, 2, 4, 0, 10, 40);
	struct version *v2 = apply_ok(v1, &e);
	assert_int_equal(v2->nfiles[0], 1);
	assert_int_equal(v2->nfiles[1], 1);
	assert_int_equal(v2->files[1][0]->number, 3);
	assert_int_equal(v2->nfiles[2], 1);
	assert_ptr_equal(v2->files[0][0], v1->files[0][0]); /* shared */
	assert_int_equal(v2->log_number, 5);
	assert_int_equal(v2->next_file_number, 20);
	assert_int_equal(v2->last_seq, 1000);
	assert_int_equal(version_level_bytes(v2, 1), 300);
	assert_int_equal(version_level_bytes(v2, 2), 400);
	version_unref(v0);
	version_unref(v1);
	version_unref(v2);
	assert_int_equal(r.total, 4);
}

/* An edit deleting an absent file, deleting one twice, or adding a number
 * already held is corruption, and the base is untouched. */
static void test_version_apply_rejects_inconsistent_edits(void **state)
{
	(void)state;
	struct rel r = {0};
	struct version_env env = {on_release, &r};
	struct version *v0, *v1, *bad = NULL;
	assert_int_equal(version_new_empty(&env, &v0), 0);
	struct edit e;
	edit_init(&e);
	add(&e, 1, 7, 0, 10, 5);
	v1 = apply_ok(v0, &e);

	edit_init(&e);
	assert_int_equal(edit_delete_file(&e, 1, 8), 0);
	assert_int_equal(version_apply(v1, &e, NULL, NULL, &bad), CESIUM_ECORRUPT);
	edit_free(&e);
	edit_init(&e);
	assert_int_equal(edit_delete_file(&e, 2, 7), 0); /* wrong level */
	assert_int_equal(version_apply(v1, &e, NULL, NULL, &bad), CESIUM_ECORRUPT);
	edit_free(&e);
	edit_init(&e);
	assert_int_equal(edit_delete_file(&e, 1, 7), 0);
	assert_int_equal(edit_delete_file(&e, 1, 7), 0);
	assert_int_equal(version_apply(v1, &e, NULL, NULL, &bad), CESIUM_ECORRUPT);
	edit_free(&e);
	edit_init(&e);
	add(&e, 3, 7, 40, 50, 5);
	assert_int_equal(version_apply(v1, &e, NULL, NULL, &bad), CESIUM_ECORRUPT);
	assert_non_null(strstr(cesium_errmsg(), "7"));
	edit_free(&e);
	/* A move (delete at L1, add the same number at L2) is fine. */
	edit_init(&e);
	assert_int_equal(edit_delete_file(&e, 1, 7), 0);
	add(&e, 2, 7, 0, 10, 5);
	struct version *v2 = apply_ok(v1, &e);
	assert_int_equal(v2->nfiles[2], 1);
	assert_null(bad);
	assert_int_equal(v1->nfiles[1], 1);
	assert_int_equal(r.total, 0);
	version_unref(v2);
	version_unref(v1);
	version_unref(v0);
	/* The L1 and the L2 meta for number 7 are distinct: two releases. */
	assert_int_equal(r.released[7], 2);
}

/* L0 is newest first: max_seq descending, then number descending. */
static void test_version_l0_order_newest_first(void **state)
{
	(void)state;
	struct version *v0, *v1;
	assert_int_equal(version_new_empty(NULL, &v0), 0);
	struct edit e;
	edit_init(&e);
	add(&e, 0, 10, 0, 9, 300);
	add(&e, 0, 11, 0, 9, 500);
	add(&e, 0, 12, 0, 9, 100);
	add(&e, 0, 13, 0, 9, 500);
	add(&e, 0, 14, 0, 9, 400);
	v1 = apply_ok(v0, &e);
	const uint64_t want[] = {13, 11, 14, 10, 12};
	assert_int_equal(v1->nfiles[0], 5);
	for (int i = 0; i < 5; i++)
		assert_int_equal(v1->files[0][i]->number, want[i]);
	version_unref(v1);
	version_unref(v0);
}

/* L1..L7 are sorted by smallest key; a level is a sorted run only when no
 * two files overlap; find_file locates the file whose range may hold a key. */
static void test_version_sorted_levels_and_find_file(void **state)
{
	(void)state;
	struct version *v0, *v1, *v2;
	assert_int_equal(version_new_empty(NULL, &v0), 0);
	struct edit e;
	edit_init(&e);
	/* L3: [100,190], [200,290], ... [900,990], added out of order. */
	for (uint64_t k = 9; k >= 1; k--)
		add(&e, 3, 100 + k, k * 100, k * 100 + 90, 7);
	v1 = apply_ok(v0, &e);
	assert_int_equal(v1->nfiles[3], 9);
	for (size_t i = 0; i < 9; i++)
		assert_int_equal(v1->files[3][i]->number, 101 + i);
	assert_true(version_level_is_sorted_run(v1, 3));
	assert_true(version_level_is_sorted_run(v1, 4)); /* empty */
	uint8_t k[32];
	assert_int_equal(version_find_file(v1, 3, keys_slice_of(k, nskey(k, 5))), 0);
	assert_int_equal(version_find_file(v1, 3, keys_slice_of(k, nskey(k, 100))), 0);
	assert_int_equal(version_find_file(v1, 3, keys_slice_of(k, nskey(k, 190))), 0);
	assert_int_equal(version_find_file(v1, 3, keys_slice_of(k, nskey(k, 191))), 1);
	assert_int_equal(version_find_file(v1, 3, keys_slice_of(k, nskey(k, 555))), 4);
	assert_int_equal(version_find_file(v1, 3, keys_slice_of(k, nskey(k, 990))), 8);
	assert_int_equal(version_find_file(v1, 3, keys_slice_of(k, nskey(k, 991))), 9);
	assert_int_equal(version_find_file(v1, 5, keys_slice_of(k, nskey(k, 1))), 0);

	edit_init(&e);
	add(&e, 3, 200, 250, 350, 8); /* overlaps two files */
	v2 = apply_ok(v1, &e);
	assert_false(version_level_is_sorted_run(v2, 3));
	assert_int_equal(v2->files[3][2]->number, 200);

	char *text;
	assert_int_equal(version_dump(v2, &text), 0);
	assert_non_null(strstr(text, "L3: 10 files"));
	assert_non_null(strstr(text, "#200 size 20000"));
	mem_free(text);
	version_unref(v2);
	version_unref(v1);
	version_unref(v0);
}

/* The candidate of one run: L0 one file at a time, a tiered level's runs
 * (newest first) each by binary search, a leveled level as one run. */
static void test_version_run_candidate(void **state)
{
	(void)state;
	struct version *v0, *v1;
	assert_int_equal(version_new_empty(NULL, &v0), 0);
	struct edit e;
	edit_init(&e);
	add(&e, 0, 5, 0, 50, 900);
	add(&e, 0, 6, 40, 90, 950);
	/* L1: run 20 = [0,9] [10,19] [20,29], run 30 (newer) = [5,14] [15,24]. */
	for (uint64_t i = 0; i < 3; i++)
		add(&e, 1, 20 + i, i * 10, i * 10 + 9, 100);
	for (uint64_t i = 0; i < 2; i++)
		add(&e, 1, 30 + i, 5 + i * 10, 14 + i * 10, 200);
	for (size_t i = 0; i < e.nadded; i++)
		e.added[i].run = e.added[i].level == 1 ? (e.added[i].number >= 30 ? 30 : 20) : 0;
	for (uint64_t k = 1; k <= 4; k++)
		add(&e, 3, 100 + k, k * 100, k * 100 + 90, 7);
	v1 = apply_ok(v0, &e);
	uint8_t k[32];
	size_t end;
	/* L0: newest first (file 6), each file its own run. */
	keys_slice key = keys_slice_of(k, nskey(k, 45));
	assert_int_equal(version_run_candidate(v1, 0, 0, key, &end), 0);
	assert_int_equal(end, 1);
	assert_int_equal(v1->files[0][0]->number, 6);
	assert_int_equal(version_run_candidate(v1, 0, 1, key, &end), 1);
	key = keys_slice_of(k, nskey(k, 95));
	assert_int_equal(version_run_candidate(v1, 0, 0, key, &end), 1); /* none: end */
	/* L1: run 30 first (indexes 0-1), then run 20 (2-4). */
	key = keys_slice_of(k, nskey(k, 16));
	assert_int_equal(version_run_candidate(v1, 1, 0, key, &end), 1);
	assert_int_equal(end, 2);
	assert_int_equal(v1->files[1][1]->number, 31);
	assert_int_equal(version_run_candidate(v1, 1, 2, key, &end), 3);
	assert_int_equal(end, 5);
	assert_int_equal(v1->files[1][3]->number, 21);
	key = keys_slice_of(k, nskey(k, 27)); /* past run 30, inside run 20 */
	assert_int_equal(version_run_candidate(v1, 1, 0, key, &end), 2);
	assert_int_equal(version_run_candidate(v1, 1, 2, key, &end), 4);
	/* L3: one run; a key between two files has no candidate. */
	key = keys_slice_of(k, nskey(k, 250));
	assert_int_equal(version_run_candidate(v1, 3, 0, key, &end), 1);
	assert_int_equal(end, 4);
	key = keys_slice_of(k, nskey(k, 295));
	assert_int_equal(version_run_candidate(v1, 3, 0, key, &end), 4);
	version_unref(v1);
	version_unref(v0);
}

/* file_release runs exactly once per file, when the last version holding
 * it goes, whatever order versions are dropped in. */
static void test_version_file_released_once_by_last_holder(void **state)
{
	(void)state;
	struct rel r = {0};
	struct version_env env = {on_release, &r};
	struct version *v[4];
	assert_int_equal(version_new_empty(&env, &v[0]), 0);
	struct edit e;
	edit_init(&e);
	add(&e, 0, 1, 0, 9, 10);
	add(&e, 1, 2, 0, 9, 5);
	v[1] = apply_ok(v[0], &e);
	edit_init(&e);
	assert_int_equal(edit_delete_file(&e, 0, 1), 0);
	add(&e, 1, 3, 10, 19, 10);
	v[2] = apply_ok(v[1], &e);
	edit_init(&e);
	assert_int_equal(edit_delete_file(&e, 1, 2), 0);
	v[3] = apply_deleting(v[2], &e);
	/* L1 is tiered: newest run (file 3) first, so file 2 is second. */
	assert_int_equal(v[2]->files[1][1]->number, 2);
	assert_true(atomic_load(&v[2]->files[1][1]->life->obsolete));

	struct version *pin = version_ref(v[1]);
	version_unref(v[1]);
	assert_int_equal(r.total, 0);
	version_unref(v[2]);
	assert_int_equal(r.total, 0); /* v1 (pinned) still holds 1 and 2 */
	version_unref(pin);
	assert_int_equal(r.released[1], 1);
	assert_int_equal(r.released[2], 1);
	assert_int_equal(r.total, 2);
	version_unref(v[0]);
	version_unref(v[3]);
	assert_int_equal(r.released[3], 1);
	assert_int_equal(r.total, 3);
}

/* A trivial move gives the file a new meta at its new level; an older
 * version, pinned by a reader, keeps the old one. When a compaction then
 * deletes the moved file and every version holding the new meta goes, the
 * file must stay until the pinned version lets go of the old meta too:
 * only that last release may unlink it. */
static void test_version_moved_file_unlinked_by_its_last_meta(void **state)
{
	(void)state;
	struct rel r = {0};
	struct version_env env = {on_release, &r};
	struct version *v[4];
	assert_int_equal(version_new_empty(&env, &v[0]), 0);
	struct edit e;
	edit_init(&e);
	add(&e, 0, 5, 0, 9, 10);
	v[1] = apply_ok(v[0], &e);
	edit_init(&e); /* the move: L0 -> L3 */
	assert_int_equal(edit_delete_file(&e, 0, 5), 0);
	add(&e, 3, 5, 0, 9, 10);
	v[2] = apply_deleting(v[1], &e);
	assert_ptr_not_equal(v[2]->files[3][0], v[1]->files[0][0]);
	assert_false(atomic_load(&v[1]->files[0][0]->life->obsolete));
	edit_init(&e); /* a compaction consumes it */
	assert_int_equal(edit_delete_file(&e, 3, 5), 0);
	add(&e, 3, 6, 0, 9, 10);
	v[3] = apply_deleting(v[2], &e);

	struct version *pin = version_ref(v[1]); /* a reader's */
	version_unref(v[1]);
	version_unref(v[2]);
	assert_int_equal(r.released[5], 1); /* the new meta, gone */
	assert_int_equal(r.unlinked[5], 0); /* but the file stays */
	version_unref(pin);
	assert_int_equal(r.released[5], 2);
	assert_int_equal(r.unlinked[5], 1);
	version_unref(v[0]);
	version_unref(v[3]);
	assert_int_equal(r.unlinked[6], 0); /* live to the end */
}

static struct file_meta *make_meta_hook(void *ctx, const struct file_desc *d)
{
	struct file_meta *f = file_meta_new(d);
	if (f)
		f->reader = ctx;
	return f;
}

static struct file_meta *failing_hook(void *ctx, const struct file_desc *d)
{
	(void)ctx;
	error_set(CESIUM_EIO, "cannot open segment %llu", (unsigned long long)d->number);
	return NULL;
}

/* make_meta builds the metas of added files; a failing hook fails the
 * apply with its message, releasing the metas already made. */
static void test_version_make_meta_hook(void **state)
{
	(void)state;
	struct rel r = {0};
	struct version_env env = {on_release, &r};
	struct version *v0, *v1, *bad = NULL;
	assert_int_equal(version_new_empty(&env, &v0), 0);
	struct edit e;
	edit_init(&e);
	add(&e, 0, 1, 0, 9, 10);
	add(&e, 0, 2, 0, 9, 11);
	assert_int_equal(version_apply(v0, &e, make_meta_hook, &r, &v1), 0);
	assert_ptr_equal(v1->files[0][0]->reader, &r);
	assert_int_equal(version_apply(v0, &e, failing_hook, NULL, &bad), CESIUM_EIO);
	assert_non_null(strstr(cesium_errmsg(), "cannot open segment 1"));
	assert_null(bad);
	edit_free(&e);
	version_unref(v1);
	assert_int_equal(r.with_reader, 2);
	version_unref(v0);
}

static void *pin_loop(void *arg)
{
	struct version *v = arg;
	for (int i = 0; i < 200000; i++) {
		struct version *p = version_ref(v);
		assert_true(p->nfiles[0] == 1);
		version_unref(p);
	}
	return NULL;
}

/* Concurrent pins and unpins leave the count balanced; the last unref
 * releases the files once. */
static void test_version_concurrent_ref_unref(void **state)
{
	(void)state;
	struct rel r = {0};
	struct version_env env = {on_release, &r};
	struct version *v0, *v1;
	assert_int_equal(version_new_empty(&env, &v0), 0);
	struct edit e;
	edit_init(&e);
	add(&e, 0, 1, 0, 9, 10);
	v1 = apply_ok(v0, &e);
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, pin_loop, v1), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(atomic_load(&v1->refs), 1);
	assert_int_equal(r.total, 0);
	version_unref(v1);
	assert_int_equal(r.total, 1);
	version_unref(v0);
}

/* Writes each edit as one log record; returns the offsets of the records
 * (offs[n] = end of file). */
static void write_manifest(const char *path, struct edit *edits, int n, size_t *offs)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	size_t off = 0;
	for (int i = 0; i < n; i++) {
		uint8_t *p;
		size_t len;
		assert_int_equal(edit_encode(&edits[i], &p, &len), 0);
		uint8_t *rec = malloc(log_record_size(len));
		log_encode(rec, p, len);
		assert_int_equal(write(fd, rec, log_record_size(len)),
		                 (ssize_t)log_record_size(len));
		offs[i] = off;
		off += log_record_size(len);
		free(rec);
		mem_free(p);
	}
	offs[n] = off;
	close(fd);
}

static void manifest_edits(struct edit e[3])
{
	for (int i = 0; i < 3; i++)
		edit_init(&e[i]);
	edit_set_log_number(&e[0], 1);
	edit_set_next_file_number(&e[0], 2);
	add(&e[0], 0, 5, 0, 9, 10);
	add(&e[0], 0, 6, 0, 9, 20);
	edit_set_last_seq(&e[1], 20);
	assert_int_equal(edit_delete_file(&e[1], 0, 5), 0);
	assert_int_equal(edit_delete_file(&e[1], 0, 6), 0);
	add(&e[1], 1, 7, 0, 9, 20);
	edit_set_log_number(&e[2], 3);
	add(&e[2], 0, 8, 5, 15, 30);
}

/* A MANIFEST replays to the version its edits describe; a torn last record
 * is discarded and valid_end points at its start. */
static void test_version_recover_with_torn_tail(void **state)
{
	(void)state;
	char *dir = test_tmpdir("version");
	char path[512];
	snprintf(path, sizeof(path), "%s/MANIFEST-1", dir);
	struct edit e[3];
	manifest_edits(e);
	size_t offs[4];
	write_manifest(path, e, 3, offs);
	struct rel r = {0};
	struct version_env env = {on_release, &r};
	struct version *v;
	uint64_t valid_end = 0;
	assert_int_equal(version_recover(path, &env, NULL, NULL, &v, &valid_end), 0);
	assert_int_equal(valid_end, offs[3]);
	assert_int_equal(v->log_number, 3);
	assert_int_equal(v->next_file_number, 2);
	assert_int_equal(v->last_seq, 20);
	assert_int_equal(v->nfiles[0], 1);
	assert_int_equal(v->files[0][0]->number, 8);
	assert_int_equal(v->nfiles[1], 1);
	assert_int_equal(v->files[1][0]->number, 7);
	version_unref(v);
	/* Files 5 and 6 were dropped during replay, 7 and 8 with v. */
	assert_int_equal(r.total, 4);

	/* Torn: cut inside the last record. */
	assert_int_equal(truncate(path, (off_t)(offs[2] + (offs[3] - offs[2]) / 2)), 0);
	assert_int_equal(version_recover(path, &env, NULL, NULL, &v, &valid_end), 0);
	assert_int_equal(valid_end, offs[2]);
	assert_int_equal(v->log_number, 1);
	assert_int_equal(v->nfiles[0], 0);
	assert_int_equal(v->nfiles[1], 1);
	version_unref(v);
	for (int i = 0; i < 3; i++)
		edit_free(&e[i]);
	test_rmtree(dir);
	free(dir);
}

/* A flipped bit in a middle record, or an edit that does not apply, is
 * CESIUM_ECORRUPT naming the MANIFEST and the offset. */
static void test_version_recover_corruption_in_middle(void **state)
{
	(void)state;
	char *dir = test_tmpdir("version");
	char path[512];
	snprintf(path, sizeof(path), "%s/MANIFEST-2", dir);
	struct edit e[3];
	manifest_edits(e);
	size_t offs[4];
	write_manifest(path, e, 3, offs);
	int fd = open(path, O_RDWR);
	uint8_t b;
	assert_int_equal(pread(fd, &b, 1, (off_t)offs[1] + 14), 1);
	b ^= 0x10;
	assert_int_equal(pwrite(fd, &b, 1, (off_t)offs[1] + 14), 1);
	close(fd);
	struct version *v = NULL;
	uint64_t valid_end = 0;
	assert_int_equal(version_recover(path, NULL, NULL, NULL, &v, &valid_end), CESIUM_ECORRUPT);
	char want[600];
	snprintf(want, sizeof(want), "%s: offset %zu:", path, offs[1]);
	assert_non_null(strstr(cesium_errmsg(), want));
	assert_null(v);

	/* Valid records, but the second deletes a file nobody added. */
	edit_free(&e[0]);
	edit_init(&e[0]);
	write_manifest(path, e, 3, offs);
	snprintf(want, sizeof(want), "%s: offset %zu:", path, offs[1]);
	assert_int_equal(version_recover(path, NULL, NULL, NULL, &v, &valid_end), CESIUM_ECORRUPT);
	if (!strstr(cesium_errmsg(), want) || !strstr(cesium_errmsg(), "does not hold"))
		fail_msg("message: %s", cesium_errmsg());
	for (int i = 0; i < 3; i++)
		edit_free(&e[i]);

	/* A missing MANIFEST is an error naming it. */
	snprintf(path, sizeof(path), "%s/MANIFEST-404", dir);
	assert_int_not_equal(version_recover(path, NULL, NULL, NULL, &v, &valid_end), 0);
	assert_non_null(strstr(cesium_errmsg(), "MANIFEST-404"));
	test_rmtree(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_version_apply_add_delete),
	    cmocka_unit_test(test_version_apply_rejects_inconsistent_edits),
	    cmocka_unit_test(test_version_l0_order_newest_first),
	    cmocka_unit_test(test_version_sorted_levels_and_find_file),
	    cmocka_unit_test(test_version_run_candidate),
	    cmocka_unit_test(test_version_file_released_once_by_last_holder),
	    cmocka_unit_test(test_version_moved_file_unlinked_by_its_last_meta),
	    cmocka_unit_test(test_version_make_meta_hook),
	    cmocka_unit_test(test_version_concurrent_ref_unref),
	    cmocka_unit_test(test_version_recover_with_torn_tail),
	    cmocka_unit_test(test_version_recover_corruption_in_middle),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
