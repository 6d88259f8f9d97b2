/* Unit tests for core/segment: write → file → open → get/iterate at several
 * block sizes and compressions, snapshots over versions and tombstones,
 * and corruption (flipped bits, truncation) reported as CESIUM_ECORRUPT. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache.h"
#include "error.h"
#include "file.h"
#include "mem.h"
#include "segment.h"
#include "segment_format.h"
#include "test_util.h"

static char *tmpdir;

struct kv {
	uint8_t key[40];
	size_t klen;
	uint8_t *val;
	size_t vlen;
};

static size_t mk_nskey(uint8_t *out, unsigned n)
{
	char user[16];
	int ul = snprintf(user, sizeof(user), "key%08u", n);
	keys_make_nskey(out, 0, user, (size_t)ul);
	return KEYS_NS_SIZE + (size_t)ul;
}

static size_t mk_ikey(uint8_t *out, unsigned n, uint64_t seq, enum keys_kind kind)
{
	uint8_t ns[32];
	size_t l = mk_nskey(ns, n);
	keys_make_ikey(out, ns, l, seq, kind);
	return l + KEYS_TRAILER_SIZE;
}

/* A compressible value of length n % 300 derived from n. */
static size_t mk_val(uint8_t *out, unsigned n)
{
	size_t len = n % 300;
	for (size_t i = 0; i < len; i++)
		out[i] = (uint8_t)("abcdefgh"[(n + i / 16) % 8]);
	return len;
}

/* Streams the writer's output to a new file the way an actor would: in
 * takes of at least 16 KiB, then the rest after finish. */
static char *write_file(seg_writer *w, const char *name)
{
	char *path;
	assert_true(asprintf(&path, "%s/%s", tmpdir, name) > 0);
	int fd = io_open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
	assert_true(fd >= 0);
	uint64_t expect_off = 0;
	struct seg_out o;
	bool finished = false;
	for (;;) {
		while (seg_writer_take(w, finished ? 0 : 16384, &o)) {
			assert_int_equal(o.off, expect_off);
			assert_int_equal(io_pwrite_full(fd, o.data, o.len, o.off), 0);
			expect_off += o.len;
			mem_free(o.data);
		}
		if (finished)
			break;
		assert_int_equal(seg_writer_finish(w), 0);
		finished = true;
	}
	assert_int_equal(expect_off, seg_writer_file_size(w));
	assert_int_equal(seg_writer_props(w)->file_size, expect_off);
	io_close(fd);
	return path;
}

static seg_reader *open_reader(const char *path, uint64_t id, cache *c, int expect)
{
	seg_reader *r = NULL;
	int fd = io_open(path, O_RDONLY, 0);
	assert_true(fd >= 0);
	error_clear();
	int rc = seg_reader_open(fd, path, id, c, &r);
	assert_int_equal(rc, expect);
	if (expect) {
		assert_non_null(strstr(cesium_errmsg(), path));
		return NULL;
	}
	return r;
}

/* Writes keys 0, 2, 4, ... 2(n-1), one version each (seq = i + 1). */
static char *write_simple(unsigned n, size_t bs, enum seg_compression comp, const char *name,
                          uint64_t *size)
{
	struct seg_writer_opts o = {
	    .block_size = bs, .bloom_bits_per_key = 10, .compression = comp, .zstd_level = 3};
	seg_writer *w;
	assert_int_equal(seg_writer_new(&o, &w), 0);
	uint8_t k[64], v[300];
	for (unsigned i = 0; i < n; i++) {
		size_t kl = mk_ikey(k, 2 * i, i + 1, KEYS_KIND_VALUE), vl = mk_val(v, i);
		assert_int_equal(seg_writer_add(w, keys_slice_of(k, kl), keys_slice_of(v, vl)), 0);
	}
	char *path = write_file(w, name);
	const struct seg_props *p = seg_writer_props(w);
	assert_int_equal(p->entries, n);
	assert_int_equal(p->min_seq, 1);
	assert_int_equal(p->max_seq, n);
	if (size)
		*size = p->file_size;
	seg_writer_free(w);
	return path;
}

static void check_get(seg_reader *r, unsigned i, bool present)
{
	uint8_t ns[32], v[300];
	size_t nl = mk_nskey(ns, 2 * i);
	enum keys_kind kind;
	void *val = (void *)1;
	size_t vlen = 99;
	int rc = seg_reader_get(r, keys_slice_of(ns, nl), KEYS_MAX_SEQ, &kind, &val, &vlen);
	if (!present) {
		assert_int_equal(rc, CESIUM_ENOTFOUND);
		return;
	}
	assert_int_equal(rc, 0);
	assert_int_equal(kind, KEYS_KIND_VALUE);
	size_t vl = mk_val(v, i);
	assert_non_null(val);
	assert_int_equal(vlen, vl);
	assert_memory_equal(val, v, vl);
	mem_free(val);
}

static void check_absent(seg_reader *r, unsigned n)
{
	uint8_t ns[32];
	size_t nl = mk_nskey(ns, n);
	enum keys_kind kind;
	void *val;
	size_t vlen;
	assert_int_equal(seg_reader_get(r, keys_slice_of(ns, nl), KEYS_MAX_SEQ, &kind, &val, &vlen),
	                 CESIUM_ENOTFOUND);
}

static void check_iter(seg_reader *r, unsigned n, const struct seg_iter_opts *o)
{
	iter *it;
	assert_int_equal(seg_reader_iter_new(r, o, &it), 0);
	uint8_t k[64], v[300];
	unsigned i = 0;
	for (iter_seek_first(it); iter_valid(it); iter_next(it), i++) {
		size_t kl = mk_ikey(k, 2 * i, i + 1, KEYS_KIND_VALUE), vl = mk_val(v, i);
		assert_int_equal(iter_key(it).len, kl);
		assert_memory_equal(iter_key(it).data, k, kl);
		assert_int_equal(iter_value(it).len, vl);
		assert_memory_equal(iter_value(it).data, v, vl);
	}
	assert_int_equal(iter_status(it), 0);
	assert_int_equal(i, n);
	/* Seeks at and between keys. */
	for (unsigned j = 0; j < n; j += 37) {
		size_t kl = mk_ikey(k, 2 * j, KEYS_MAX_SEQ, KEYS_KIND_VALUE);
		iter_seek(it, keys_slice_of(k, kl));
		assert_true(iter_valid(it));
		kl = mk_ikey(v, 2 * j, j + 1, KEYS_KIND_VALUE);
		assert_memory_equal(iter_key(it).data, v, kl);
		kl = mk_ikey(k, 2 * j + 1, KEYS_MAX_SEQ, KEYS_KIND_VALUE);
		iter_seek(it, keys_slice_of(k, kl));
		if (j + 1 < n) {
			assert_true(iter_valid(it));
			kl = mk_ikey(v, 2 * j + 2, j + 2, KEYS_KIND_VALUE);
			assert_memory_equal(iter_key(it).data, v, kl);
		} else {
			assert_false(iter_valid(it));
		}
	}
	size_t kl = mk_ikey(k, 2 * n, KEYS_MAX_SEQ, KEYS_KIND_VALUE);
	iter_seek(it, keys_slice_of(k, kl));
	assert_false(iter_valid(it));
	assert_int_equal(iter_status(it), 0);
	iter_destroy(it);
}

/* Every key is found, absent keys are not, iteration and seeks are exact,
 * at block sizes 512, 4096 and 65536, with and without zstd, with and
 * without a cache; zstd makes the file smaller. */
static void test_round_trip_block_sizes_and_compression(void **state)
{
	(void)state;
	const unsigned n = 5000;
	size_t sizes[] = {512, 4096, 65536};
	for (size_t s = 0; s < 3; s++) {
		uint64_t fsize[2];
		for (int z = 0; z < 2; z++) {
			cache *c = NULL;
			if (z)
				assert_int_equal(cache_new(1 << 20, &c), 0);
			char name[64];
			snprintf(name, sizeof(name), "rt-%zu-%d.seg", sizes[s], z);
			char *path = write_simple(n, sizes[s],
			                          z ? SEG_COMPRESSION_ZSTD : SEG_COMPRESSION_NONE,
			                          name, &fsize[z]);
			seg_reader *r = open_reader(path, 1, c, 0);
			const struct seg_props *p = seg_reader_props(r);
			assert_int_equal(p->entries, n);
			assert_int_equal(p->tombstones, 0);
			assert_int_equal(p->file_size, fsize[z]);
			assert_true(p->data_blocks >= (sizes[s] == 512 ? 100 : 1));
			uint8_t k[64];
			size_t kl = mk_ikey(k, 0, 1, KEYS_KIND_VALUE);
			assert_int_equal(keys_compare_ikey(p->smallest, keys_slice_of(k, kl)), 0);
			kl = mk_ikey(k, 2 * (n - 1), n, KEYS_KIND_VALUE);
			assert_int_equal(keys_compare_ikey(p->largest, keys_slice_of(k, kl)), 0);
			assert_true(seg_reader_pinned_bytes(r) > 0);
			for (int pass = 0; pass < 2; pass++) /* second pass from the cache */
				for (unsigned i = 0; i < n; i++)
					check_get(r, i, true);
			unsigned fp = 0;
			for (unsigned i = 0; i < n; i++) {
				check_absent(r, 2 * i + 1);
				uint8_t ns[32];
				fp += seg_reader_may_contain(
				    r, keys_slice_of(ns, mk_nskey(ns, 2 * i + 1)));
			}
			assert_true(fp < n / 20); /* the filter works */
			check_absent(r, 2 * n + 10);
			check_iter(r, n, NULL);
			struct seg_iter_opts scan = {.fill_cache = false, .readahead = 2 << 20};
			check_iter(r, n, &scan);
			if (c)
				assert_true(cache_hits(c) > 0);
			seg_reader_unref(r);
			cache_free(c);
			free(path);
		}
		assert_true(fsize[1] < fsize[0]);
	}
}

/* Gets honour the snapshot: the newest version at or below it, tombstones
 * reported as such, nothing when every version is newer. */
static void test_versions_and_tombstones_with_snapshots(void **state)
{
	(void)state;
	const unsigned n = 1000;
	struct seg_writer_opts o = {.block_size = 512, .bloom_bits_per_key = 10};
	seg_writer *w;
	assert_int_equal(seg_writer_new(&o, &w), 0);
	uint8_t k[64];
	for (unsigned i = 0; i < n; i++) {
		uint64_t base = (uint64_t)i * 10 + 10;
		size_t kl = mk_ikey(k, i, base + 3, KEYS_KIND_VALUE);
		assert_int_equal(seg_writer_add(w, keys_slice_of(k, kl), keys_slice_of("c", 1)), 0);
		kl = mk_ikey(k, i, base + 2, i % 3 ? KEYS_KIND_VALUE : KEYS_KIND_DELETE);
		assert_int_equal(seg_writer_add(w, keys_slice_of(k, kl),
		                                keys_slice_of(i % 3 ? "b" : "", i % 3 ? 1 : 0)),
		                 0);
		kl = mk_ikey(k, i, base + 1, KEYS_KIND_VALUE);
		/* an empty value is a value */
		assert_int_equal(seg_writer_add(w, keys_slice_of(k, kl), keys_slice_of("", 0)), 0);
	}
	/* Out of order and duplicate keys are refused. */
	size_t kl = mk_ikey(k, n, 5, KEYS_KIND_VALUE);
	assert_int_equal(seg_writer_add(w, keys_slice_of(k, kl), keys_slice_of("", 0)), 0);
	assert_int_equal(seg_writer_add(w, keys_slice_of(k, kl), keys_slice_of("", 0)),
	                 CESIUM_EINVAL);
	kl = mk_ikey(k, 0, 5, KEYS_KIND_VALUE);
	assert_int_equal(seg_writer_add(w, keys_slice_of(k, kl), keys_slice_of("", 0)),
	                 CESIUM_EINVAL);
	assert_int_equal(seg_writer_add(w, keys_slice_of(k, 4), keys_slice_of("", 0)),
	                 CESIUM_EINVAL);
	char *path = write_file(w, "versions.seg");
	seg_writer_free(w);

	seg_reader *r = open_reader(path, 2, NULL, 0);
	assert_int_equal(seg_reader_props(r)->entries, 3 * n + 1);
	assert_int_equal(seg_reader_props(r)->tombstones, (n + 2) / 3);
	for (unsigned i = 0; i < n; i++) {
		uint64_t base = (uint64_t)i * 10 + 10;
		uint8_t ns[32];
		keys_slice nsk = keys_slice_of(ns, mk_nskey(ns, i));
		enum keys_kind kind;
		void *val;
		size_t vlen;
		assert_int_equal(seg_reader_get(r, nsk, base, &kind, &val, &vlen),
		                 CESIUM_ENOTFOUND);
		assert_int_equal(seg_reader_get(r, nsk, base + 1, &kind, &val, &vlen), 0);
		assert_int_equal(kind, KEYS_KIND_VALUE);
		assert_non_null(val);
		assert_int_equal(vlen, 0);
		mem_free(val);
		assert_int_equal(seg_reader_get(r, nsk, base + 2, &kind, &val, &vlen), 0);
		if (i % 3) {
			assert_int_equal(kind, KEYS_KIND_VALUE);
			assert_int_equal(vlen, 1);
			assert_memory_equal(val, "b", 1);
			mem_free(val);
		} else {
			assert_int_equal(kind, KEYS_KIND_DELETE);
			assert_null(val);
		}
		uint64_t snaps[] = {base + 3, base + 9, UINT64_MAX};
		for (int s = 0; s < 3; s++) {
			assert_int_equal(seg_reader_get(r, nsk, snaps[s], &kind, &val, &vlen), 0);
			assert_int_equal(kind, KEYS_KIND_VALUE);
			assert_memory_equal(val, "c", 1);
			mem_free(val);
		}
	}
	uint8_t ns[32];
	keys_slice nsk = keys_slice_of(ns, mk_nskey(ns, n));
	enum keys_kind kind;
	void *val;
	size_t vlen;
	assert_int_equal(seg_reader_get(r, nsk, 4, &kind, &val, &vlen), CESIUM_ENOTFOUND);
	assert_int_equal(seg_reader_get(r, nsk, 5, &kind, &val, &vlen), 0);
	mem_free(val);
	/* Iteration yields every version, tombstones included. */
	iter *it;
	assert_int_equal(seg_reader_iter_new(r, NULL, &it), 0);
	unsigned count = 0, dels = 0;
	for (iter_seek_first(it); iter_valid(it); iter_next(it)) {
		count++;
		dels += keys_ikey_kind(iter_key(it)) == KEYS_KIND_DELETE;
	}
	assert_int_equal(count, 3 * n + 1);
	assert_int_equal(dels, (n + 2) / 3);
	seg_reader_unref(r); /* the iterator still holds a reference */
	iter_seek_first(it);
	assert_true(iter_valid(it));
	iter_destroy(it);
	free(path);
}

/* A segment with no entries opens, finds nothing, iterates nothing. */
static void test_empty_segment(void **state)
{
	(void)state;
	seg_writer *w;
	assert_int_equal(seg_writer_new(NULL, &w), 0);
	char *path = write_file(w, "empty.seg");
	seg_writer_free(w);
	seg_reader *r = open_reader(path, 3, NULL, 0);
	assert_int_equal(seg_reader_props(r)->entries, 0);
	check_absent(r, 1);
	iter *it;
	assert_int_equal(seg_reader_iter_new(r, NULL, &it), 0);
	iter_seek_first(it);
	assert_false(iter_valid(it));
	assert_int_equal(iter_status(it), 0);
	iter_destroy(it);
	seg_reader_unref(r);
	free(path);
}

static uint8_t *slurp(const char *path, size_t *len)
{
	int fd = io_open(path, O_RDONLY, 0);
	assert_true(fd >= 0);
	int64_t sz = io_file_size(fd);
	assert_true(sz > 0);
	uint8_t *b = mem_alloc((size_t)sz);
	assert_int_equal(io_pread_full(fd, b, (size_t)sz, 0), sz);
	io_close(fd);
	*len = (size_t)sz;
	return b;
}

static char *write_copy(const uint8_t *b, size_t len, const char *name)
{
	char *path;
	assert_true(asprintf(&path, "%s/%s", tmpdir, name) > 0);
	int fd = io_open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
	assert_true(fd >= 0);
	assert_int_equal(io_pwrite_full(fd, b, len, 0), 0);
	io_close(fd);
	return path;
}

/* A flipped bit in a data block is caught on read (get and iteration) with
 * the path and offset in the message. */
static void test_flipped_bit_in_data_block(void **state)
{
	(void)state;
	for (int z = 0; z < 2; z++) {
		char *path = write_simple(500, 512, z ? SEG_COMPRESSION_ZSTD : SEG_COMPRESSION_NONE,
		                          "flip-data.seg", NULL);
		size_t len;
		uint8_t *b = slurp(path, &len);
		b[20] ^= 0x10;
		char *bad = write_copy(b, len, "flip-data-bad.seg");
		seg_reader *r = open_reader(bad, 4, NULL, 0);
		uint8_t ns[32];
		enum keys_kind kind;
		void *val;
		size_t vlen;
		error_clear();
		assert_int_equal(seg_reader_get(r, keys_slice_of(ns, mk_nskey(ns, 0)), KEYS_MAX_SEQ,
		                                &kind, &val, &vlen),
		                 CESIUM_ECORRUPT);
		assert_non_null(strstr(cesium_errmsg(), bad));
		assert_non_null(strstr(cesium_errmsg(), "offset 0"));
		iter *it;
		assert_int_equal(seg_reader_iter_new(r, NULL, &it), 0);
		error_clear();
		iter_seek_first(it);
		assert_false(iter_valid(it));
		assert_int_equal(iter_status(it), CESIUM_ECORRUPT);
		assert_non_null(strstr(cesium_errmsg(), bad));
		iter_destroy(it);
		/* Blocks elsewhere remain readable. */
		check_get(r, 499, true);
		seg_reader_unref(r);
		mem_free(b);
		free(bad);
		free(path);
	}
}

/* Blocks that share a verification slot (small blocks, several per 4 KiB)
 * do not vouch for each other: after every key was read once, damage to
 * the first block, which is not its slot's last-verified block, is still
 * caught on the next get. */
static void test_verified_slot_does_not_cover_neighbours(void **state)
{
	(void)state;
	char *path = write_simple(500, 512, SEG_COMPRESSION_NONE, "verified-slot.seg", NULL);
	seg_reader *r = open_reader(path, 4, NULL, 0);
	for (unsigned i = 0; i < 500; i++)
		check_get(r, i, true);
	int fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	uint8_t byte;
	int rfd = open(path, O_RDONLY);
	assert_true(rfd >= 0);
	assert_int_equal(pread(rfd, &byte, 1, 20), 1);
	byte ^= 0x10;
	assert_int_equal(pwrite(fd, &byte, 1, 20), 1);
	close(fd);
	close(rfd);
	uint8_t ns[32];
	enum keys_kind kind;
	void *val;
	size_t vlen;
	error_clear();
	assert_int_equal(seg_reader_get(r, keys_slice_of(ns, mk_nskey(ns, 0)), KEYS_MAX_SEQ, &kind,
	                                &val, &vlen),
	                 CESIUM_ECORRUPT);
	assert_non_null(strstr(cesium_errmsg(), "offset 0"));
	seg_reader_unref(r);
	free(path);
}

/* Keys whose 8 bytes after their common prefix tie in groups of 50 (the
 * difference lies further on), with 3 versions each, over small blocks:
 * seeks through the index fences land where a linear scan says, for keys
 * below, between, inside and above the segment's range, at every
 * snapshot. */
static size_t fence_nskey(uint8_t *out, unsigned group, unsigned n)
{
	char user[40];
	int ul = snprintf(user, sizeof(user), "F%03uSAMESAMESAME%05u", group, n);
	keys_make_nskey(out, 7, user, (size_t)ul);
	return KEYS_NS_SIZE + (size_t)ul;
}

static void test_index_fences_with_ties(void **state)
{
	(void)state;
	struct seg_writer_opts o = {.block_size = 256, .bloom_bits_per_key = 10};
	seg_writer *w;
	assert_int_equal(seg_writer_new(&o, &w), 0);
	enum { GROUPS = 20, PER = 50, VERSIONS = 3 };
	uint8_t k[64], v[16];
	for (unsigned g = 0; g < GROUPS; g++)
		for (unsigned n = 0; n < PER; n++)
			for (unsigned ver = VERSIONS; ver >= 1; ver--) { /* newest first */
				size_t nl = fence_nskey(k, g, 2 * n + 1);
				keys_put_u64le(k + nl, keys_trailer(ver, KEYS_KIND_VALUE));
				int vl = snprintf((char *)v, sizeof(v), "%u.%u.%u", g, n, ver);
				assert_int_equal(seg_writer_add(w, keys_slice_of(k, nl + 8),
				                                keys_slice_of(v, (size_t)vl)),
				                 0);
			}
	char *path = write_file(w, "fences.seg");
	seg_writer_free(w);
	seg_reader *r = open_reader(path, 9, NULL, 0);
	iter *it, *lazy;
	assert_int_equal(seg_reader_iter_new(r, NULL, &it), 0);
	struct seg_iter_opts lo = {.fill_cache = true, .lazy = true};
	assert_int_equal(seg_reader_iter_new(r, &lo, &lazy), 0);
	uint64_t rng = test_seed("segment_fences");
	for (int round = 0; round < 3000; round++) {
		/* Targets: groups -1..GROUPS (outside on both sides), numbers
		 * even (gaps) and odd (present), any snapshot 0..4. */
		unsigned g = (unsigned)(test_rand(&rng) % (GROUPS + 2));
		unsigned n = (unsigned)(test_rand(&rng) % (2 * PER + 2));
		uint64_t snap = test_rand(&rng) % (VERSIONS + 2);
		uint8_t t[64];
		size_t tl;
		if (g == 0) { /* below everything: another namespace */
			keys_make_nskey(t, 6, "zzz", 3);
			tl = KEYS_NS_SIZE + 3;
		} else {
			tl = fence_nskey(t, g - 1, n);
		}
		keys_put_u64le(t + tl, keys_trailer(snap, KEYS_KIND_VALUE));
		keys_slice target = keys_slice_of(t, tl + 8);
		/* A prepared seek (iter.h) must land where a plain one does,
		 * also when the preparation was for another target or the
		 * iterator moved in between. */
		uint8_t other[64];
		size_t ol = fence_nskey(other, (unsigned)(test_rand(&rng) % GROUPS), 1);
		keys_put_u64le(other + ol, keys_trailer(2, KEYS_KIND_VALUE));
		switch (round % 4) {
		case 1:
			iter_prepare_seek(it, target);
			break;
		case 2:
			iter_prepare_seek(it, keys_slice_of(other, ol + 8));
			break;
		case 3:
			iter_prepare_seek(it, target);
			iter_seek_first(it);
			iter_next(it);
			break;
		default:
			break;
		}
		iter_seek(it, target);
		/* The model: the first entry >= target in a full scan. */
		iter *scan;
		assert_int_equal(seg_reader_iter_new(r, NULL, &scan), 0);
		for (iter_seek_first(scan); iter_valid(scan); iter_next(scan))
			if (keys_compare_ikey(iter_key(scan), target) >= 0)
				break;
		assert_int_equal(iter_valid(it), iter_valid(scan));
		if (iter_valid(scan)) {
			keys_slice a = iter_key(it), b = iter_key(scan);
			assert_int_equal(a.len, b.len);
			assert_memory_equal(a.data, b.data, a.len);
		}
		/* A lazy iterator lands on the same key, before and after it
		 * reads its entry, and walks on from there. */
		if (round % 2)
			iter_seek(lazy, target);
		else
			iter_seek_first(lazy);
		if (round % 2 == 0)
			iter_seek(lazy, target);
		assert_int_equal(iter_valid(lazy), iter_valid(scan));
		if (iter_valid(scan)) {
			keys_slice a = iter_key(lazy), b = iter_key(scan);
			assert_int_equal(a.len, b.len);
			assert_memory_equal(a.data, b.data, a.len);
			iter_load(lazy);
			keys_slice va = iter_value(lazy), vb = iter_value(scan);
			assert_int_equal(va.len, vb.len);
			assert_memory_equal(va.data, vb.data, va.len);
			iter_next(lazy);
			iter_next(scan);
			assert_int_equal(iter_valid(lazy), iter_valid(scan));
			if (iter_valid(scan)) {
				a = iter_key(lazy);
				b = iter_key(scan);
				assert_int_equal(a.len, b.len);
				assert_memory_equal(a.data, b.data, a.len);
			}
		}
		assert_int_equal(iter_status(scan), 0);
		iter_destroy(scan);
	}
	assert_int_equal(iter_status(it), 0);
	iter_destroy(it);
	assert_int_equal(iter_status(lazy), 0);
	iter_destroy(lazy);
	/* Point lookups go through the same fences. */
	for (unsigned g = 0; g < GROUPS; g++)
		for (unsigned n = 0; n < 2 * PER; n++) {
			uint8_t ns[64];
			size_t nl = fence_nskey(ns, g, n);
			enum keys_kind kind;
			void *val;
			size_t vlen;
			int rc = seg_reader_get(r, keys_slice_of(ns, nl), 2, &kind, &val, &vlen);
			if (n % 2 == 0) {
				assert_int_equal(rc, CESIUM_ENOTFOUND);
				continue;
			}
			assert_int_equal(rc, 0);
			char want[16];
			int wl = snprintf(want, sizeof(want), "%u.%u.2", g, n / 2);
			assert_int_equal(vlen, (size_t)wl);
			assert_memory_equal(val, want, vlen);
			mem_free(val);
		}
	seg_reader_unref(r);
	free(path);
}

/* A flipped bit anywhere in the index, filter, props or footer makes open
 * fail with CESIUM_ECORRUPT naming the file. */
static void test_flipped_bit_in_metadata_and_footer(void **state)
{
	(void)state;
	uint64_t rng = test_seed("segment_flip_meta");
	char *path = write_simple(500, 512, SEG_COMPRESSION_NONE, "flip-meta.seg", NULL);
	size_t len;
	uint8_t *b = slurp(path, &len);
	uint8_t *f = b + len - SEG_FOOTER_SIZE;
	uint64_t filter_off = keys_get_u64le(f + SEG_FOOTER_FILTER);
	uint64_t index_off = keys_get_u64le(f + SEG_FOOTER_INDEX);
	uint32_t index_size = keys_get_u32le(f + SEG_FOOTER_INDEX + SEG_HANDLE_SIZE_AT);
	struct {
		uint64_t lo, hi;
		const char *what;
	} regions[] = {
	    {index_off, index_off + index_size + SEG_TRAILER_SIZE, "index"},
	    {filter_off, index_off, "filter+props"},
	    {len - SEG_FOOTER_SIZE, len, "footer"},
	};
	for (int reg = 0; reg < 3; reg++) {
		for (int t = 0; t < 40; t++) {
			uint64_t pos =
			    regions[reg].lo + test_rand(&rng) % (regions[reg].hi - regions[reg].lo);
			uint8_t bit = (uint8_t)(1u << (test_rand(&rng) % 8));
			b[pos] ^= bit;
			char *bad = write_copy(b, len, "flip-meta-bad.seg");
			open_reader(bad, 5, NULL, CESIUM_ECORRUPT);
			b[pos] ^= bit;
			free(bad);
		}
	}
	seg_reader_unref(open_reader(path, 5, NULL, 0));
	mem_free(b);
	free(path);
}

/* A file cut short anywhere is CESIUM_ECORRUPT at open. */
static void test_truncated_file(void **state)
{
	(void)state;
	char *path = write_simple(300, 512, SEG_COMPRESSION_NONE, "trunc.seg", NULL);
	size_t len;
	uint8_t *b = slurp(path, &len);
	size_t cuts[] = {0,
	                 1,
	                 10,
	                 SEG_FOOTER_SIZE - 1,
	                 SEG_FOOTER_SIZE,
	                 len / 2,
	                 len - 100,
	                 len - SEG_FOOTER_SIZE,
	                 len - 1};
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		char *bad = write_copy(b, cuts[i], "trunc-bad.seg");
		open_reader(bad, 6, NULL, CESIUM_ECORRUPT);
		free(bad);
	}
	mem_free(b);
	free(path);
}

/* Random bit flips anywhere never crash a reader: every call ends in a
 * value, CESIUM_ENOTFOUND or CESIUM_ECORRUPT. */
static void test_random_flips_never_crash(void **state)
{
	(void)state;
	uint64_t rng = test_seed("segment_fuzz");
	const unsigned n = 200;
	char *path = write_simple(n, 512, SEG_COMPRESSION_ZSTD, "fuzz.seg", NULL);
	size_t len;
	uint8_t *b = slurp(path, &len);
	unsigned corrupt = 0;
	for (int round = 0; round < 60; round++) {
		uint8_t *t = mem_alloc(len);
		memcpy(t, b, len);
		int flips = 1 + (int)(test_rand(&rng) % 3);
		for (int f = 0; f < flips; f++)
			t[test_rand(&rng) % len] ^= (uint8_t)(1u << (test_rand(&rng) % 8));
		char *bad = write_copy(t, len, "fuzz-bad.seg");
		seg_reader *r = NULL;
		int fd = io_open(bad, O_RDONLY, 0);
		assert_true(fd >= 0);
		int rc = seg_reader_open(fd, bad, 8, NULL, &r);
		assert_true(rc == 0 || rc == CESIUM_ECORRUPT);
		if (rc == 0) {
			for (unsigned i = 0; i < 2 * n; i++) {
				uint8_t ns[32];
				enum keys_kind kind;
				void *val;
				size_t vlen;
				rc = seg_reader_get(r, keys_slice_of(ns, mk_nskey(ns, i)),
				                    KEYS_MAX_SEQ, &kind, &val, &vlen);
				assert_true(rc == 0 || rc == CESIUM_ENOTFOUND ||
				            rc == CESIUM_ECORRUPT);
				corrupt += rc == CESIUM_ECORRUPT;
				if (rc == 0)
					mem_free(val);
			}
			iter *it;
			assert_int_equal(seg_reader_iter_new(r, NULL, &it), 0);
			for (iter_seek_first(it); iter_valid(it); iter_next(it))
				;
			assert_true(iter_status(it) == 0 || iter_status(it) == CESIUM_ECORRUPT);
			iter_destroy(it);
			seg_reader_unref(r);
		} else {
			corrupt++;
		}
		free(bad);
		mem_free(t);
	}
	assert_true(corrupt > 0);
	mem_free(b);
	free(path);
}

struct getter {
	seg_reader *r;
	unsigned n;
	int failures;
};

static void *getter_main(void *arg)
{
	struct getter *g = arg;
	for (unsigned round = 0; round < 3; round++)
		for (unsigned i = 0; i < g->n; i++) {
			uint8_t ns[32], v[300];
			enum keys_kind kind;
			void *val;
			size_t vlen;
			int rc = seg_reader_get(g->r, keys_slice_of(ns, mk_nskey(ns, 2 * i)),
			                        KEYS_MAX_SEQ, &kind, &val, &vlen);
			size_t vl = mk_val(v, i);
			if (rc || vlen != vl || memcmp(val, v, vl))
				g->failures++;
			if (!rc)
				mem_free(val);
		}
	return NULL;
}

/* Four threads share one reader and a small cache. */
static void test_concurrent_gets_share_reader_and_cache(void **state)
{
	(void)state;
	const unsigned n = 4000;
	char *path = write_simple(n, 1024, SEG_COMPRESSION_ZSTD, "threads.seg", NULL);
	cache *c;
	assert_int_equal(cache_new(64 * 1024, &c), 0);
	seg_reader *r = open_reader(path, 7, c, 0);
	struct getter g[4];
	pthread_t t[4];
	for (int i = 0; i < 4; i++) {
		g[i] = (struct getter){r, n, 0};
		assert_int_equal(pthread_create(&t[i], NULL, getter_main, &g[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(g[i].failures, 0);
	}
	assert_true(cache_usage(c) <= 64 * 1024);
	seg_reader_unref(r);
	cache_free(c);
	free(path);
}

static int setup(void **state)
{
	(void)state;
	tmpdir = test_tmpdir("segment");
	return tmpdir ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	test_rmtree(tmpdir);
	free(tmpdir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip_block_sizes_and_compression),
	    cmocka_unit_test(test_versions_and_tombstones_with_snapshots),
	    cmocka_unit_test(test_empty_segment),
	    cmocka_unit_test(test_flipped_bit_in_data_block),
	    cmocka_unit_test(test_verified_slot_does_not_cover_neighbours),
	    cmocka_unit_test(test_index_fences_with_ties),
	    cmocka_unit_test(test_flipped_bit_in_metadata_and_footer),
	    cmocka_unit_test(test_truncated_file),
	    cmocka_unit_test(test_random_flips_never_crash),
	    cmocka_unit_test(test_concurrent_gets_share_reader_and_cache),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
