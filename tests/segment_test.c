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
#include <xxhash.h>

#include "cache.h"
#include "error.h"
#include "file.h"
#include "log.h"
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

/* A lie in the metadata, resealed with a valid checksum (a bug in some
 * writer, not a flipped bit): each of the reader's own consistency checks
 * turns it into CESIUM_ECORRUPT naming the file, the block's offset and
 * what is wrong. */
static void test_resealed_metadata_lies_are_ecorrupt(void **state)
{
	(void)state;
	char *path = write_simple(500, 512, SEG_COMPRESSION_NONE, "lie.seg", NULL);
	size_t len;
	uint8_t *good = slurp(path, &len);
	const uint8_t *f = good + len - SEG_FOOTER_SIZE;
	uint64_t props_off = keys_get_u64le(f + SEG_FOOTER_PROPS);
	uint32_t props_size = keys_get_u32le(f + SEG_FOOTER_PROPS + SEG_HANDLE_SIZE_AT);
	uint64_t index_off = keys_get_u64le(f + SEG_FOOTER_INDEX);
	static const char *const why[] = {
	    "props smallest key out of bounds",
	    "props key bounds inconsistent with entry count",
	    "index and props disagree on the block count",
	    "metadata block is compressed",
	    "block handle out of bounds",
	};
	uint8_t *b = mem_alloc(len);
	assert_non_null(b);
	for (size_t lie = 0; lie < sizeof(why) / sizeof(why[0]); lie++) {
		memcpy(b, good, len);
		uint8_t *props = b + props_off, *foot = b + len - SEG_FOOTER_SIZE;
		uint64_t at = props_off;
		switch (lie) {
		case 0:
			keys_put_u32le(props + SEG_PROPS_SMALLEST_LEN, props_size);
			break;
		case 1:
			keys_put_u64le(props + SEG_PROPS_ENTRIES, 0);
			break;
		case 2:
			keys_put_u64le(props + SEG_PROPS_DATA_BLOCKS,
			               keys_get_u64le(props + SEG_PROPS_DATA_BLOCKS) + 1);
			at = index_off;
			break;
		case 3:
			props[props_size + SEG_TRAILER_TYPE] = SEG_COMPRESS_ZSTD;
			break;
		case 4: /* the footer's own checksum resealed too */
			keys_put_u32le(foot + SEG_FOOTER_PROPS + SEG_HANDLE_SIZE_AT,
			               (uint32_t)(len - props_off));
			keys_put_u64le(foot + SEG_FOOTER_CHECKSUM,
			               XXH3_64bits(foot, SEG_FOOTER_CHECKSUM));
			break;
		}
		keys_put_u64le(props + props_size + SEG_TRAILER_CHECKSUM,
		               XXH3_64bits(props, (size_t)props_size + 1));
		char *bad = write_copy(b, len, "lie-bad.seg");
		open_reader(bad, 7, NULL, CESIUM_ECORRUPT);
		char want[64];
		snprintf(want, sizeof(want), "block at offset %llu", (unsigned long long)at);
		if (!strstr(cesium_errmsg(), why[lie]) || !strstr(cesium_errmsg(), want))
			print_error("lie %zu: %s\n", lie, cesium_errmsg());
		assert_non_null(strstr(cesium_errmsg(), why[lie]));
		assert_non_null(strstr(cesium_errmsg(), want));
		free(bad);
	}
	seg_reader_unref(open_reader(path, 7, NULL, 0));
	mem_free(b);
	mem_free(good);
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

/* ================= values kept in the log (format version 2) ================= */

#define VL_LOG 7 /* the log number the v2 segments name */
enum { VL_KEYS = 160 };

/* One entry of a v2 test segment, in the segment's order: key numbers
 * ascending, versions of one key newest first. Key i (by i % 4): a value
 * kept in the log; an inline value; a tombstone over a value kept in the
 * log; an inline value over a value kept in the log. */
struct vl_entry {
	unsigned key;
	uint64_t seq;
	enum keys_kind kind;
	bool in_log;
	uint8_t *val; /* the value as callers see it (mem_alloc'd, also for 0 bytes) */
	size_t vlen;
	uint64_t off; /* in_log: where the value lies in the log */
};

struct vl_seg {
	struct vl_entry e[2 * VL_KEYS];
	size_t n;
	uint8_t *log; /* the log's bytes */
	size_t log_len;
	char *seg_path, *log_path;
};

static uint8_t *vl_bytes(unsigned key, uint64_t seq, size_t len)
{
	uint8_t *p = mem_alloc(len ? len : 1);
	assert_non_null(p);
	for (size_t j = 0; j < len; j++)
		p[j] = (uint8_t)(key * 7 + seq * 31 + j * 13 + (j >> 8));
	return p;
}

static void vl_push(struct vl_seg *s, unsigned key, uint64_t seq, enum keys_kind kind, bool in_log,
                    size_t len)
{
	assert_true(s->n < sizeof(s->e) / sizeof(s->e[0]));
	struct vl_entry *e = &s->e[s->n++];
	*e = (struct vl_entry){.key = key, .seq = seq, .kind = kind, .in_log = in_log};
	e->vlen = kind == KEYS_KIND_VALUE ? len : 0;
	e->val = vl_bytes(key, seq, e->vlen);
}

/* Builds the entries and the log, and writes both files: the log holds a
 * 37-byte header of its own, then every value kept there behind a few
 * bytes of other records. */
static void vl_build(struct vl_seg *s, enum seg_compression comp, const char *name)
{
	memset(s, 0, sizeof(*s));
	for (unsigned i = 0; i < VL_KEYS; i++) {
		/* Log values of 0..~3 KiB (key 4's is empty), inline ones of 0..70. */
		size_t big = i == 4 ? 0 : 200 + (i * 131) % 3000;
		size_t small = (i * 7) % 71;
		switch (i % 4) {
		case 0:
			vl_push(s, i, 2 * i + 1, KEYS_KIND_VALUE, true, big);
			break;
		case 1:
			vl_push(s, i, 2 * i + 1, KEYS_KIND_VALUE, false, small);
			break;
		case 2:
			vl_push(s, i, 2 * i + 2, KEYS_KIND_DELETE, false, 0);
			vl_push(s, i, 2 * i + 1, KEYS_KIND_VALUE, true, big);
			break;
		default:
			vl_push(s, i, 2 * i + 2, KEYS_KIND_VALUE, false, small);
			vl_push(s, i, 2 * i + 1, KEYS_KIND_VALUE, true, big);
			break;
		}
	}
	size_t cap = 37;
	for (size_t j = 0; j < s->n; j++)
		cap += 5 + (s->e[j].in_log ? s->e[j].vlen : 0);
	s->log = mem_alloc(cap);
	assert_non_null(s->log);
	memset(s->log, 'H', 37);
	size_t at = 37;
	for (size_t j = 0; j < s->n; j++) {
		memset(s->log + at, 'R', 5); /* another record's bytes */
		at += 5;
		if (!s->e[j].in_log)
			continue;
		s->e[j].off = at;
		memcpy(s->log + at, s->e[j].val, s->e[j].vlen);
		at += s->e[j].vlen;
	}
	s->log_len = at;
	char lname[64];
	snprintf(lname, sizeof(lname), "%s.wal", name);
	s->log_path = write_copy(s->log, s->log_len, lname);

	struct seg_writer_opts o = {.block_size = 512,
	                            .bloom_bits_per_key = 10,
	                            .compression = comp,
	                            .zstd_level = 3,
	                            .value_log = VL_LOG};
	seg_writer *w;
	assert_int_equal(seg_writer_new(&o, &w), 0);
	for (size_t j = 0; j < s->n; j++) {
		const struct vl_entry *e = &s->e[j];
		uint8_t k[64];
		size_t kl = mk_ikey(k, e->key, e->seq, e->kind);
		if (e->in_log) {
			struct seg_log_ref ref = {e->off, (uint32_t)e->vlen,
			                          XXH3_64bits(e->val, e->vlen), 0};
			assert_int_equal(seg_writer_add_ref(w, keys_slice_of(k, kl), &ref), 0);
		} else {
			assert_int_equal(
			    seg_writer_add(w, keys_slice_of(k, kl), keys_slice_of(e->val, e->vlen)),
			    0);
		}
	}
	/* A tombstone cannot refer to the log. */
	uint8_t k[64];
	size_t kl = mk_ikey(k, VL_KEYS + 1, 1, KEYS_KIND_DELETE);
	struct seg_log_ref ref = {37, 1, 0, 0};
	assert_int_equal(seg_writer_add_ref(w, keys_slice_of(k, kl), &ref), CESIUM_EINVAL);
	char sname[64];
	snprintf(sname, sizeof(sname), "%s.seg", name);
	s->seg_path = write_file(w, sname);
	assert_int_equal(seg_writer_props(w)->value_log, VL_LOG);
	assert_int_equal(seg_writer_props(w)->entries, s->n);
	seg_writer_free(w);
}

static void vl_free(struct vl_seg *s)
{
	for (size_t j = 0; j < s->n; j++)
		mem_free(s->e[j].val);
	mem_free(s->log);
	free(s->seg_path);
	free(s->log_path);
}

/* The reader of s's segment with log_path (NULL: none) attached. */
static seg_reader *vl_open(const struct vl_seg *s, const char *log_path)
{
	seg_reader *r = open_reader(s->seg_path, 40, NULL, 0);
	assert_int_equal(seg_reader_props(r)->value_log, VL_LOG);
	if (log_path) {
		int fd = io_open(log_path, O_RDONLY, 0);
		assert_true(fd >= 0);
		seg_reader_attach_log(r, fd, log_path);
	}
	return r;
}

/* The entry a get of key at snap answers with, or NULL. */
static const struct vl_entry *vl_model_get(const struct vl_seg *s, unsigned key, uint64_t snap)
{
	for (size_t j = 0; j < s->n; j++)
		if (s->e[j].key == key && s->e[j].seq <= snap)
			return &s->e[j];
	return NULL;
}

static const struct vl_entry *vl_find(const struct vl_seg *s, unsigned key, uint64_t seq)
{
	for (size_t j = 0; j < s->n; j++)
		if (s->e[j].key == key && s->e[j].seq == seq)
			return &s->e[j];
	fail_msg("no entry %u@%llu", key, (unsigned long long)seq);
	return NULL;
}

/* A get's results (rc, kind, val, vlen) against the entry want (NULL:
 * not found). Frees val. */
static void vl_check_result(const struct vl_entry *want, int rc, enum keys_kind kind, void *val,
                            size_t vlen)
{
	if (!want) {
		assert_int_equal(rc, CESIUM_ENOTFOUND);
		return;
	}
	if (rc)
		fail_msg("key %u@%llu: rc %d (%s)", want->key, (unsigned long long)want->seq, rc,
		         cesium_errmsg());
	assert_int_equal(kind, want->kind);
	if (want->kind == KEYS_KIND_DELETE) {
		assert_null(val);
		return;
	}
	assert_non_null(val);
	assert_int_equal(vlen, want->vlen);
	assert_memory_equal(val, want->val, want->vlen);
	mem_free(val);
}

/* seg_reader_locate, a pread of the block, seg_reader_get_in_block. */
static int vl_get_split(seg_reader *r, keys_slice nskey, uint64_t snap, enum keys_kind *kind,
                        void **val, size_t *vlen)
{
	struct seg_block_loc loc;
	*val = NULL;
	int rc = seg_reader_locate(r, nskey, snap, &loc);
	if (rc)
		return rc;
	uint8_t *buf = mem_alloc(loc.len);
	assert_non_null(buf);
	assert_int_equal(io_pread_full(seg_reader_fd(r), buf, loc.len, loc.off), (ssize_t)loc.len);
	rc = seg_reader_get_in_block(r, &loc, buf, nskey, snap, kind, val, vlen);
	mem_free(buf);
	return rc;
}

static int vl_get(seg_reader *r, unsigned key, uint64_t snap, bool split, enum keys_kind *kind,
                  void **val, size_t *vlen)
{
	uint8_t ns[32];
	keys_slice nskey = keys_slice_of(ns, mk_nskey(ns, key));
	*val = NULL;
	error_clear();
	if (split)
		return vl_get_split(r, nskey, snap, kind, val, vlen);
	return seg_reader_get(r, nskey, snap, kind, val, vlen);
}

/* The iterator stands on entry e, with its value. */
static void vl_check_at(iter *it, const struct vl_entry *e)
{
	if (!iter_valid(it))
		fail_msg("entry %u@%llu: iterator invalid, status %d (%s)", e->key,
		         (unsigned long long)e->seq, iter_status(it), cesium_errmsg());
	uint8_t k[64];
	size_t kl = mk_ikey(k, e->key, e->seq, e->kind);
	keys_slice key = iter_key(it);
	assert_int_equal(key.len, kl);
	assert_memory_equal(key.data, k, kl);
	iter_load(it);
	keys_slice v = iter_value(it);
	assert_int_equal(v.len, e->vlen);
	if (e->vlen)
		assert_memory_equal(v.data, e->val, e->vlen);
}

/* A full scan yields every entry with its value; seeks to every key (and
 * to every older version) land on it with its value. */
static void vl_check_iter(const struct vl_seg *s, seg_reader *r, const struct seg_iter_opts *o)
{
	iter *it;
	assert_int_equal(seg_reader_iter_new(r, o, &it), 0);
	size_t j = 0;
	for (iter_seek_first(it); iter_valid(it); iter_next(it), j++) {
		assert_true(j < s->n);
		vl_check_at(it, &s->e[j]);
	}
	assert_int_equal(iter_status(it), 0);
	assert_int_equal(j, s->n);
	/* Seeks backwards and forwards: every entry exactly, each key at
	 * KEYS_MAX_SEQ (its newest version). */
	for (size_t t = 0; t < s->n; t++) {
		const struct vl_entry *e = &s->e[(t * 7) % s->n];
		uint8_t k[64];
		size_t kl = mk_ikey(k, e->key, e->seq, e->kind);
		iter_seek(it, keys_slice_of(k, kl));
		vl_check_at(it, e);
		kl = mk_ikey(k, e->key, KEYS_MAX_SEQ, KEYS_KIND_VALUE);
		iter_seek(it, keys_slice_of(k, kl));
		vl_check_at(it, vl_model_get(s, e->key, KEYS_MAX_SEQ));
		iter_next(it);
		const struct vl_entry *nx = vl_model_get(s, e->key, KEYS_MAX_SEQ) + 1;
		if (nx < s->e + s->n)
			vl_check_at(it, nx);
		else
			assert_false(iter_valid(it));
	}
	size_t kl;
	uint8_t k[64];
	kl = mk_ikey(k, VL_KEYS, KEYS_MAX_SEQ, KEYS_KIND_VALUE);
	iter_seek(it, keys_slice_of(k, kl));
	assert_false(iter_valid(it));
	assert_int_equal(iter_status(it), 0);
	iter_destroy(it);
}

/* A version 2 segment mixing inline values, values kept in the log and
 * tombstones reads back exactly through gets (plain and split), scans
 * and seeks (mapped, readahead and lazy), with and without zstd; its
 * footer says version 2 and its props name the log. A writer without a
 * value_log still writes version 1 and refuses references. */
static void test_value_log_round_trip(void **state)
{
	(void)state;
	for (int z = 0; z < 2; z++) {
		struct vl_seg s;
		vl_build(&s, z ? SEG_COMPRESSION_ZSTD : SEG_COMPRESSION_NONE,
		         z ? "vl-rt-z" : "vl-rt");
		size_t len;
		uint8_t *b = slurp(s.seg_path, &len);
		assert_int_equal(keys_get_u32le(b + len - SEG_FOOTER_SIZE + SEG_FOOTER_VERSION),
		                 SEG_FORMAT_VERSION_LOG_RECORDS);
		mem_free(b);
		seg_reader *r = vl_open(&s, s.log_path);
		const struct seg_props *p = seg_reader_props(r);
		assert_int_equal(p->value_log, VL_LOG);
		assert_int_equal(p->entries, s.n);
		assert_int_equal(p->tombstones, VL_KEYS / 4);
		assert_true(p->data_blocks > 10);
		for (int pass = 0; pass < 2; pass++) /* the second from verified blocks */
			for (int split = 0; split < 2; split++)
				for (unsigned i = 0; i < VL_KEYS + 3; i++) {
					uint64_t snaps[] = {KEYS_MAX_SEQ, 2 * i + 1, 2 * i};
					for (int t = 0; t < 3; t++) {
						enum keys_kind kind;
						void *val;
						size_t vlen;
						int rc = vl_get(r, i, snaps[t], split, &kind, &val,
						                &vlen);
						vl_check_result(vl_model_get(&s, i, snaps[t]), rc,
						                kind, val, vlen);
					}
				}
		vl_check_iter(&s, r, NULL);
		struct seg_iter_opts scan = {.fill_cache = false, .readahead = 4096};
		vl_check_iter(&s, r, &scan);
		struct seg_iter_opts lazy = {.fill_cache = true, .lazy = true};
		vl_check_iter(&s, r, &lazy);
		seg_reader_unref(r);
		vl_free(&s);
	}

	/* Without value_log: version 1, no reference, no log in the props. */
	struct seg_writer_opts o = {.block_size = 512};
	seg_writer *w;
	assert_int_equal(seg_writer_new(&o, &w), 0);
	uint8_t k[64];
	size_t kl = mk_ikey(k, 0, 1, KEYS_KIND_VALUE);
	struct seg_log_ref ref = {0, 3, XXH3_64bits("abc", 3), 0};
	assert_int_equal(seg_writer_add_ref(w, keys_slice_of(k, kl), &ref), CESIUM_EINVAL);
	assert_int_equal(seg_writer_add(w, keys_slice_of(k, kl), keys_slice_of("abc", 3)), 0);
	kl = mk_ikey(k, 2, 2, KEYS_KIND_VALUE);
	assert_int_equal(seg_writer_add_ref(w, keys_slice_of(k, kl), &ref), CESIUM_EINVAL);
	char *path = write_file(w, "vl-v1.seg");
	assert_int_equal(seg_writer_props(w)->value_log, 0);
	assert_int_equal(seg_writer_props(w)->entries, 1);
	seg_writer_free(w);
	size_t len;
	uint8_t *b = slurp(path, &len);
	assert_int_equal(keys_get_u32le(b + len - SEG_FOOTER_SIZE + SEG_FOOTER_VERSION),
	                 SEG_FORMAT_VERSION);
	mem_free(b);
	seg_reader *r = open_reader(path, 41, NULL, 0);
	assert_int_equal(seg_reader_props(r)->value_log, 0);
	enum keys_kind kind;
	void *val;
	size_t vlen;
	assert_int_equal(vl_get(r, 0, KEYS_MAX_SEQ, false, &kind, &val, &vlen), 0);
	assert_int_equal(vlen, 3);
	assert_memory_equal(val, "abc", 3);
	mem_free(val);
	seg_reader_unref(r);
	free(path);
}

/* The message of the last error names the log and the offset. */
static void vl_assert_msg_names(const char *path, uint64_t off)
{
	char want[48];
	snprintf(want, sizeof(want), "offset %llu ", (unsigned long long)off);
	if (!strstr(cesium_errmsg(), path) || !strstr(cesium_errmsg(), want))
		fail_msg("message '%s' should name %s and '%s'", cesium_errmsg(), path, want);
}

/* One flipped byte in a value kept in the log: its gets (plain and split)
 * are CESIUM_ECORRUPT naming the log and the value's offset, an iterator
 * that lands on it fails with CESIUM_ECORRUPT; every other value still
 * reads. */
static void test_value_log_corrupt_value(void **state)
{
	(void)state;
	struct vl_seg s;
	vl_build(&s, SEG_COMPRESSION_NONE, "vl-flip");
	const struct vl_entry *bad = vl_find(&s, 8, 17); /* a key's only version, in the log */
	assert_true(bad->in_log && bad->vlen > 100);
	uint8_t *copy = mem_alloc(s.log_len);
	assert_non_null(copy);
	memcpy(copy, s.log, s.log_len);
	copy[bad->off + bad->vlen / 2] ^= 0x04;
	char *bad_log = write_copy(copy, s.log_len, "vl-flip-bad.wal");
	mem_free(copy);
	seg_reader *r = vl_open(&s, bad_log);
	for (int split = 0; split < 2; split++) {
		enum keys_kind kind;
		void *val;
		size_t vlen;
		assert_int_equal(vl_get(r, 8, KEYS_MAX_SEQ, split, &kind, &val, &vlen),
		                 CESIUM_ECORRUPT);
		vl_assert_msg_names(bad_log, bad->off);
		/* Its neighbours, in the log and inline, are fine. */
		for (unsigned i = 4; i <= 12; i++) {
			if (i == 8)
				continue;
			int rc = vl_get(r, i, KEYS_MAX_SEQ, split, &kind, &val, &vlen);
			vl_check_result(vl_model_get(&s, i, KEYS_MAX_SEQ), rc, kind, val, vlen);
		}
	}
	/* An iterator seeking to it. */
	iter *it;
	assert_int_equal(seg_reader_iter_new(r, NULL, &it), 0);
	uint8_t k[64];
	size_t kl = mk_ikey(k, 7, KEYS_MAX_SEQ, KEYS_KIND_VALUE);
	iter_seek(it, keys_slice_of(k, kl));
	vl_check_at(it, vl_model_get(&s, 7, KEYS_MAX_SEQ));
	kl = mk_ikey(k, 8, KEYS_MAX_SEQ, KEYS_KIND_VALUE);
	error_clear();
	iter_seek(it, keys_slice_of(k, kl));
	assert_false(iter_valid(it));
	assert_int_equal(iter_status(it), CESIUM_ECORRUPT);
	vl_assert_msg_names(bad_log, bad->off);
	iter_destroy(it);
	/* A scan: every entry before it, then the failure. */
	assert_int_equal(seg_reader_iter_new(r, NULL, &it), 0);
	size_t j = 0;
	error_clear();
	for (iter_seek_first(it); iter_valid(it); iter_next(it), j++)
		vl_check_at(it, &s.e[j]);
	assert_int_equal(iter_status(it), CESIUM_ECORRUPT);
	assert_int_equal(j, (size_t)(bad - s.e));
	vl_assert_msg_names(bad_log, bad->off);
	iter_destroy(it);
	seg_reader_unref(r);
	/* The intact log still serves the same segment. */
	r = vl_open(&s, s.log_path);
	enum keys_kind kind;
	void *val;
	size_t vlen;
	int rc = vl_get(r, 8, KEYS_MAX_SEQ, false, &kind, &val, &vlen);
	vl_check_result(bad, rc, kind, val, vlen);
	seg_reader_unref(r);
	free(bad_log);
	vl_free(&s);
}

/* References past the log's end (straddling it, at it, far beyond) are
 * CESIUM_ECORRUPT naming the log and the offset, for gets and
 * iterators; an inline value beside them reads. */
static void test_value_log_ref_past_end(void **state)
{
	(void)state;
	uint8_t logb[300];
	for (size_t i = 0; i < sizeof(logb); i++)
		logb[i] = (uint8_t)(i * 3);
	char *log = write_copy(logb, sizeof(logb), "vl-short.wal");
	/* Refs 0..4 reach past the end; their checksums are of what a
	 * longer log of zeros after these bytes would have held there. An
	 * offset of 2^63 would be a negative pread offset, and an empty
	 * value past the end would need no read at all. */
	enum { NBAD = 5 };
	struct seg_log_ref refs[NBAD] = {
	    {sizeof(logb) - 5, 10, 0, 0},
	    {sizeof(logb), 1, 0, 0},
	    {sizeof(logb) + 4096, 100, 0, 0},
	    {UINT64_C(1) << 63, 10, 0, 0},
	    {100000, 0, 0, 0},
	};
	uint8_t junk[100] = {0};
	memcpy(junk, logb + sizeof(logb) - 5, 5);
	refs[0].checksum = XXH3_64bits(junk, refs[0].len);
	memset(junk, 0, sizeof(junk));
	for (int i = 1; i < NBAD; i++)
		refs[i].checksum = XXH3_64bits(junk, refs[i].len);
	struct seg_log_ref fine = {100, 50, XXH3_64bits(logb + 100, 50), 0};
	struct seg_writer_opts o = {.block_size = 4096, .bloom_bits_per_key = 10, .value_log = 3};
	seg_writer *w;
	assert_int_equal(seg_writer_new(&o, &w), 0);
	uint8_t k[64];
	for (unsigned i = 0; i < NBAD; i++) {
		size_t kl = mk_ikey(k, i, 10 + i, KEYS_KIND_VALUE);
		assert_int_equal(seg_writer_add_ref(w, keys_slice_of(k, kl), &refs[i]), 0);
	}
	size_t kl = mk_ikey(k, NBAD, 20, KEYS_KIND_VALUE);
	assert_int_equal(seg_writer_add(w, keys_slice_of(k, kl), keys_slice_of("inline", 6)), 0);
	kl = mk_ikey(k, NBAD + 1, 21, KEYS_KIND_VALUE);
	assert_int_equal(seg_writer_add_ref(w, keys_slice_of(k, kl), &fine), 0);
	char *path = write_file(w, "vl-short.seg");
	seg_writer_free(w);
	seg_reader *r = open_reader(path, 42, NULL, 0);
	assert_int_equal(seg_reader_props(r)->value_log, 3);
	int fd = io_open(log, O_RDONLY, 0);
	assert_true(fd >= 0);
	seg_reader_attach_log(r, fd, log);
	for (int split = 0; split < 2; split++) {
		enum keys_kind kind;
		void *val;
		size_t vlen;
		for (unsigned i = 0; i < NBAD; i++) {
			assert_int_equal(vl_get(r, i, KEYS_MAX_SEQ, split, &kind, &val, &vlen),
			                 CESIUM_ECORRUPT);
			vl_assert_msg_names(log, refs[i].offset);
			/* Said as such, not as a checksum mismatch over bytes
			 * that were never read. */
			assert_non_null(strstr(cesium_errmsg(), "past the end"));
		}
		assert_int_equal(vl_get(r, NBAD, KEYS_MAX_SEQ, split, &kind, &val, &vlen), 0);
		assert_int_equal(vlen, 6);
		assert_memory_equal(val, "inline", 6);
		mem_free(val);
		assert_int_equal(vl_get(r, NBAD + 1, KEYS_MAX_SEQ, split, &kind, &val, &vlen), 0);
		assert_int_equal(vlen, 50);
		assert_memory_equal(val, logb + 100, 50);
		mem_free(val);
	}
	for (unsigned i = 0; i < NBAD + 2; i++) {
		iter *it;
		assert_int_equal(seg_reader_iter_new(r, NULL, &it), 0);
		kl = mk_ikey(k, i, KEYS_MAX_SEQ, KEYS_KIND_VALUE);
		error_clear();
		iter_seek(it, keys_slice_of(k, kl));
		if (i < NBAD) {
			assert_false(iter_valid(it));
			assert_int_equal(iter_status(it), CESIUM_ECORRUPT);
			vl_assert_msg_names(log, refs[i].offset);
		} else {
			assert_true(iter_valid(it));
			keys_slice v = iter_value(it);
			assert_int_equal(v.len, i == NBAD ? 6 : 50);
			assert_memory_equal(
			    v.data, i == NBAD ? (const uint8_t *)"inline" : logb + 100, v.len);
		}
		iter_destroy(it);
	}
	seg_reader_unref(r);
	free(path);
	free(log);
}

/* A value referred to by its log record's checksum (a version 3 reference
 * with a head) reads back through gets (plain and split) and iterators;
 * a flipped byte in the record before the value, which a value's own
 * checksum would not cover, is CESIUM_ECORRUPT naming the log and the
 * value's offset; a head longer than the offset is refused as malformed. */
static void test_value_log_record_refs(void **state)
{
	(void)state;
	enum { REC = 700, HEAD = 40, VLEN = 300, NREC = 3 };
	uint8_t logb[NREC * REC];
	struct seg_log_ref refs[NREC + 1];
	for (unsigned i = 0; i < NREC; i++) {
		uint8_t *rec = logb + i * REC;
		size_t plen = HEAD - LOG_HEADER_SIZE + VLEN;
		for (size_t j = 0; j < plen; j++)
			rec[LOG_HEADER_SIZE + j] = (uint8_t)(i * 31 + j * 7);
		log_seal(rec, plen);
		memset(rec + LOG_HEADER_SIZE + plen, 0, REC - LOG_HEADER_SIZE - plen);
		refs[i] =
		    (struct seg_log_ref){i * REC + HEAD, VLEN, log_stored_checksum(rec), HEAD};
	}
	/* Impossible: the record would start before the log. */
	refs[NREC] = (struct seg_log_ref){HEAD - 1, VLEN, refs[0].checksum, HEAD};
	logb[REC + LOG_HEADER_SIZE + 3]++; /* record 1, before its value */
	char *log = write_copy(logb, sizeof(logb), "vl-rec.wal");
	struct seg_writer_opts o = {.block_size = 4096, .bloom_bits_per_key = 10, .value_log = 5};
	seg_writer *w;
	assert_int_equal(seg_writer_new(&o, &w), 0);
	uint8_t k[64];
	for (unsigned i = 0; i <= NREC; i++) {
		size_t kl = mk_ikey(k, i, 10 + i, KEYS_KIND_VALUE);
		assert_int_equal(seg_writer_add_ref(w, keys_slice_of(k, kl), &refs[i]), 0);
	}
	char *path = write_file(w, "vl-rec.seg");
	seg_writer_free(w);
	seg_reader *r = open_reader(path, 43, NULL, 0);
	int fd = io_open(log, O_RDONLY, 0);
	assert_true(fd >= 0);
	seg_reader_attach_log(r, fd, log);
	for (int split = 0; split < 2; split++)
		for (unsigned i = 0; i <= NREC; i++) {
			enum keys_kind kind;
			void *val;
			size_t vlen;
			int rc = vl_get(r, i, KEYS_MAX_SEQ, split, &kind, &val, &vlen);
			if (i == 1) {
				assert_int_equal(rc, CESIUM_ECORRUPT);
				vl_assert_msg_names(log, refs[i].offset);
				assert_non_null(strstr(cesium_errmsg(), "checksum mismatch"));
			} else if (i == NREC) {
				assert_int_equal(rc, CESIUM_ECORRUPT);
				assert_non_null(
				    strstr(cesium_errmsg(), "impossible header length"));
			} else {
				assert_int_equal(rc, 0);
				assert_int_equal(vlen, VLEN);
				assert_memory_equal(val, logb + refs[i].offset, VLEN);
				mem_free(val);
			}
		}
	iter *it;
	assert_int_equal(seg_reader_iter_new(r, NULL, &it), 0);
	size_t kl = mk_ikey(k, 2, KEYS_MAX_SEQ, KEYS_KIND_VALUE);
	iter_seek(it, keys_slice_of(k, kl));
	assert_true(iter_valid(it));
	assert_int_equal(iter_value(it).len, VLEN);
	assert_memory_equal(iter_value(it).data, logb + refs[2].offset, VLEN);
	iter_destroy(it);
	seg_reader_unref(r);
	free(path);
	free(log);
}

/* Without its log attached, a value kept there is CESIUM_EIO (gets and
 * iterators) while inline values and tombstones of the same segment read
 * fine. */
static void test_value_log_not_attached(void **state)
{
	(void)state;
	struct vl_seg s;
	vl_build(&s, SEG_COMPRESSION_NONE, "vl-none");
	seg_reader *r = vl_open(&s, NULL);
	unsigned eio = 0, ok = 0;
	for (int split = 0; split < 2; split++)
		for (unsigned i = 0; i < VL_KEYS; i++) {
			enum keys_kind kind;
			void *val;
			size_t vlen;
			for (int t = 0; t < 2; t++) {
				const struct vl_entry *want =
				    vl_model_get(&s, i, t ? 2 * i + 1 : KEYS_MAX_SEQ);
				int rc = vl_get(r, i, want->seq, split, &kind, &val, &vlen);
				if (want->in_log) {
					if (rc != CESIUM_EIO)
						fail_msg("key %u@%llu: rc %d, want CESIUM_EIO", i,
						         (unsigned long long)want->seq, rc);
					assert_null(val);
					eio++;
				} else {
					vl_check_result(want, rc, kind, val, vlen);
					ok++;
				}
			}
		}
	assert_true(eio > 100 && ok > 100);
	/* Iterators: fine on inline entries, CESIUM_EIO landing on a value
	 * kept in the log. */
	for (size_t j = 0; j < s.n; j += 3) {
		const struct vl_entry *e = &s.e[j];
		iter *it;
		assert_int_equal(seg_reader_iter_new(r, NULL, &it), 0);
		uint8_t k[64];
		size_t kl = mk_ikey(k, e->key, e->seq, e->kind);
		iter_seek(it, keys_slice_of(k, kl));
		if (e->in_log) {
			assert_false(iter_valid(it));
			assert_int_equal(iter_status(it), CESIUM_EIO);
		} else {
			vl_check_at(it, e);
		}
		iter_destroy(it);
	}
	seg_reader_unref(r);
	vl_free(&s);
}

/* A value whose tag byte is neither SEG_VALUE_INLINE nor a well-formed
 * SEG_VALUE_IN_LOG reference (block checksum made to match) is
 * CESIUM_ECORRUPT "malformed value tag" for gets and iterators. */
static void test_value_log_malformed_tag(void **state)
{
	(void)state;
	static const char marker[] = "MARKER-VALUE-0123456789";
	for (int variant = 0; variant < 2; variant++) {
		/* Variant 0 stores exactly SEG_REF_SIZE bytes (tag included) so
		 * that only the tag is wrong. */
		const size_t ml = variant ? sizeof(marker) - 1 : SEG_REF_SIZE - 1;
		struct seg_writer_opts o = {.block_size = 4096, .value_log = 9};
		seg_writer *w;
		assert_int_equal(seg_writer_new(&o, &w), 0);
		uint8_t k[64];
		size_t kl = mk_ikey(k, 1, 5, KEYS_KIND_VALUE);
		assert_int_equal(seg_writer_add(w, keys_slice_of(k, kl), keys_slice_of(marker, ml)),
		                 0);
		char *path = write_file(w, "vl-tag.seg");
		seg_writer_free(w);
		size_t len;
		uint8_t *b = slurp(path, &len);
		uint8_t *m = memmem(b, len, marker, ml);
		assert_non_null(m);
		assert_int_equal(m[-1], SEG_VALUE_INLINE);
		/* An unknown tag; an in-log tag on a value longer than a
		 * reference. */
		m[-1] = variant ? SEG_VALUE_IN_LOG : 0x7f;
		/* The only data block starts at 0; reseal it. */
		uint64_t blk_end = keys_get_u64le(b + len - SEG_FOOTER_SIZE + SEG_FOOTER_FILTER);
		size_t size = (size_t)blk_end - SEG_TRAILER_SIZE;
		assert_int_equal(b[size + SEG_TRAILER_TYPE], SEG_COMPRESS_NONE);
		keys_put_u64le(b + size + SEG_TRAILER_CHECKSUM, XXH3_64bits(b, size + 1));
		char *bad = write_copy(b, len, "vl-tag-bad.seg");
		mem_free(b);
		seg_reader *r = open_reader(bad, 43, NULL, 0);
		enum keys_kind kind;
		void *val;
		size_t vlen;
		for (int split = 0; split < 2; split++) {
			assert_int_equal(vl_get(r, 1, KEYS_MAX_SEQ, split, &kind, &val, &vlen),
			                 CESIUM_ECORRUPT);
			assert_non_null(strstr(cesium_errmsg(), bad));
			assert_non_null(strstr(cesium_errmsg(), "malformed value tag"));
		}
		iter *it;
		assert_int_equal(seg_reader_iter_new(r, NULL, &it), 0);
		error_clear();
		iter_seek_first(it);
		assert_false(iter_valid(it));
		assert_int_equal(iter_status(it), CESIUM_ECORRUPT);
		assert_non_null(strstr(cesium_errmsg(), "malformed value tag"));
		iter_destroy(it);
		seg_reader_unref(r);
		free(bad);
		free(path);
	}
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
	    cmocka_unit_test(test_resealed_metadata_lies_are_ecorrupt),
	    cmocka_unit_test(test_truncated_file),
	    cmocka_unit_test(test_random_flips_never_crash),
	    cmocka_unit_test(test_concurrent_gets_share_reader_and_cache),
	    cmocka_unit_test(test_value_log_round_trip),
	    cmocka_unit_test(test_value_log_corrupt_value),
	    cmocka_unit_test(test_value_log_ref_past_end),
	    cmocka_unit_test(test_value_log_record_refs),
	    cmocka_unit_test(test_value_log_not_attached),
	    cmocka_unit_test(test_value_log_malformed_tag),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
