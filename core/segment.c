#include "segment.h"

#include "batch.h"
#include "block.h"
#include "bloom.h"
#include "cache.h"
#include "error.h"
#include "fault.h"
#include "file.h"
#include "log.h"
#include "mem.h"
#include "ring.h"
#include "segment_format.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <xxhash.h>
#include <zstd.h>

#define SEG_DEFAULT_BLOCK_SIZE 4096

typedef unsigned long long ull;

struct seg_handle {
	uint64_t off;
	uint32_t size;
};

static void seg_put_handle(uint8_t *p, struct seg_handle h)
{
	keys_put_u64le(p + SEG_HANDLE_OFFSET, h.off);
	keys_put_u32le(p + SEG_HANDLE_SIZE_AT, h.size);
}

static struct seg_handle seg_get_handle(const uint8_t *p)
{
	return (struct seg_handle){keys_get_u64le(p + SEG_HANDLE_OFFSET),
	                           keys_get_u32le(p + SEG_HANDLE_SIZE_AT)};
}

static void seg_mem_free(void *p)
{
	mem_free(p);
}

/* ================= writer ================= */

struct seg_writer {
	struct seg_writer_opts o;
	block_builder data, index;
	bloom_builder bloom;
	ZSTD_CCtx *zc;
	uint8_t *zbuf;
	size_t zcap;
	uint8_t *out; /* pending output, file bytes [out_off, out_off + out_len) */
	size_t out_len, out_cap;
	uint64_t out_off;
	uint8_t *last; /* last key added */
	size_t last_len, last_cap;
	uint8_t *smallest;
	uint8_t *tagged; /* version 2: a value with its tag byte */
	size_t tagged_cap;
	struct seg_props props;
	bool finished;
	int err; /* sticky: a failed writer produces nothing more */
};

int seg_writer_new(const struct seg_writer_opts *o, seg_writer **out)
{
	seg_writer *w = mem_zalloc(sizeof(*w));
	if (!w)
		return error_set(CESIUM_ENOMEM, "segment writer: out of memory");
	if (o)
		w->o = *o;
	if (w->o.block_size == 0)
		w->o.block_size = SEG_DEFAULT_BLOCK_SIZE;
	if (w->o.block_size > SEG_MAX_BLOCK_SIZE / 2)
		w->o.block_size = SEG_MAX_BLOCK_SIZE / 2;
	block_builder_init(&w->data, BLOCK_RESTART_INTERVAL);
	block_builder_init(&w->index, SEG_INDEX_RESTART_INTERVAL);
	bloom_builder_init(&w->bloom, w->o.bloom_bits_per_key);
	w->props.compression = (uint32_t)w->o.compression;
	w->props.value_log = w->o.value_log;
	w->props.min_seq = UINT64_MAX;
	if (w->o.compression == SEG_COMPRESSION_ZSTD) {
		w->zc = ZSTD_createCCtx();
		if (!w->zc) {
			mem_free(w);
			return error_set(CESIUM_ENOMEM, "segment writer: out of memory for zstd");
		}
	} else if (w->o.compression != SEG_COMPRESSION_NONE) {
		mem_free(w);
		return error_set(CESIUM_EINVAL, "segment writer: unknown compression %d",
		                 (int)o->compression);
	}
	*out = w;
	return 0;
}

static int seg_grow(uint8_t **buf, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	size_t ncap = *cap ? *cap : 4096;
	while (ncap < need)
		ncap *= 2;
	uint8_t *nb = mem_realloc(*buf, ncap);
	if (!nb)
		return error_set(CESIUM_ENOMEM, "segment writer: out of memory (%zu bytes)", need);
	*buf = nb;
	*cap = ncap;
	return 0;
}

/* Appends the trailer to a block whose size bytes are already at
 * out + out_len, and returns where the block lives. */
static struct seg_handle seg_seal_block(seg_writer *w, size_t size, uint8_t type)
{
	uint8_t *p = w->out + w->out_len;
	p[size + SEG_TRAILER_TYPE] = type;
	keys_put_u64le(p + size + SEG_TRAILER_CHECKSUM, XXH3_64bits(p, size + 1));
	struct seg_handle h = {w->out_off + w->out_len, (uint32_t)size};
	w->out_len += size + SEG_TRAILER_SIZE;
	return h;
}

static int seg_emit_block(seg_writer *w, const void *data, size_t size, uint8_t type,
                          struct seg_handle *h)
{
	int rc = seg_grow(&w->out, &w->out_cap, w->out_len + size + SEG_TRAILER_SIZE);
	if (rc)
		return rc;
	if (size)
		memcpy(w->out + w->out_len, data, size);
	*h = seg_seal_block(w, size, type);
	return 0;
}

static int seg_flush_data_block(seg_writer *w)
{
	keys_slice raw;
	struct seg_handle h;
	uint8_t hbuf[SEG_HANDLE_SIZE];
	int rc = block_builder_finish(&w->data, &raw);
	if (rc)
		return error_set(rc, "segment writer: out of memory");
	const void *stored = raw.data;
	size_t size = raw.len;
	uint8_t type = SEG_COMPRESS_NONE;
	if (w->zc) {
		size_t bound = ZSTD_compressBound(raw.len);
		if ((rc = seg_grow(&w->zbuf, &w->zcap, bound)))
			return rc;
		size_t c =
		    ZSTD_compressCCtx(w->zc, w->zbuf, w->zcap, raw.data, raw.len, w->o.zstd_level);
		/* Compression must pay for the decompression on every read. */
		if (!ZSTD_isError(c) && c <= raw.len - raw.len / 8) {
			stored = w->zbuf;
			size = c;
			type = SEG_COMPRESS_ZSTD;
		}
	}
	if ((rc = seg_emit_block(w, stored, size, type, &h)))
		return rc;
	seg_put_handle(hbuf, h);
	if (block_builder_add(&w->index, block_builder_last_key(&w->data),
	                      keys_slice_of(hbuf, sizeof(hbuf))))
		return error_set(CESIUM_ENOMEM, "segment writer: out of memory");
	w->props.data_blocks++;
	block_builder_reset(&w->data);
	return 0;
}

/* Appends ikey with value as the block stores it (tag included). */
static int seg_writer_add_stored(seg_writer *w, keys_slice ikey, keys_slice value)
{
	int rc = 0;
	if (w->err)
		return w->err;
	if (w->finished)
		return error_set(CESIUM_EINVAL, "segment writer: add after finish");
	if (ikey.len < KEYS_TRAILER_SIZE || ikey.len > UINT32_MAX || value.len > UINT32_MAX)
		return error_set(CESIUM_EINVAL, "segment writer: bad key or value length");
	if (w->props.entries > 0 &&
	    keys_compare_ikey(keys_slice_of(w->last, w->last_len), ikey) >= 0)
		return error_set(CESIUM_EINVAL, "segment writer: keys out of order");
	if ((rc = seg_grow(&w->last, &w->last_cap, ikey.len)))
		goto out;
	memcpy(w->last, ikey.data, ikey.len);
	w->last_len = ikey.len;
	if (w->props.entries == 0) {
		w->smallest = mem_alloc(ikey.len);
		if (!w->smallest) {
			rc = error_set(CESIUM_ENOMEM, "segment writer: out of memory");
			goto out;
		}
		memcpy(w->smallest, ikey.data, ikey.len);
		w->props.smallest = keys_slice_of(w->smallest, ikey.len);
	}
	if ((rc = bloom_builder_add(&w->bloom, bloom_hash(keys_ikey_nskey(ikey))))) {
		rc = error_set(rc, "segment writer: out of memory");
		goto out;
	}
	if ((rc = block_builder_add(&w->data, ikey, value))) {
		rc = error_set(rc, "segment writer: out of memory");
		goto out;
	}
	uint64_t seq = keys_ikey_seq(ikey);
	w->props.entries++;
	if (keys_ikey_kind(ikey) == KEYS_KIND_DELETE)
		w->props.tombstones++;
	if (seq < w->props.min_seq)
		w->props.min_seq = seq;
	if (seq > w->props.max_seq)
		w->props.max_seq = seq;
	w->props.raw_key_bytes += ikey.len;
	w->props.raw_value_bytes += value.len;
	if (block_builder_estimate(&w->data) >= w->o.block_size)
		rc = seg_flush_data_block(w);
out:
	if (rc)
		w->err = rc;
	return rc;
}

/* Version 2: the value behind its tag, in w->tagged. */
static int seg_writer_tag(seg_writer *w, uint8_t tag, size_t len, uint8_t **body)
{
	int rc = seg_grow(&w->tagged, &w->tagged_cap, len + 1);
	if (rc)
		return rc;
	w->tagged[0] = tag;
	*body = w->tagged + 1;
	return 0;
}

int seg_writer_add(seg_writer *w, keys_slice ikey, keys_slice value)
{
	if (!w->o.value_log)
		return seg_writer_add_stored(w, ikey, value);
	uint8_t *body;
	int rc = seg_writer_tag(w, SEG_VALUE_INLINE, value.len, &body);
	if (rc)
		return rc;
	if (value.len)
		memcpy(body, value.data, value.len);
	return seg_writer_add_stored(w, ikey, keys_slice_of(w->tagged, value.len + 1));
}

int seg_writer_add_ref(seg_writer *w, keys_slice ikey, const struct seg_log_ref *ref)
{
	if (!w->o.value_log || ikey.len < KEYS_TRAILER_SIZE ||
	    keys_ikey_kind(ikey) != KEYS_KIND_VALUE)
		return error_set(CESIUM_EINVAL, "segment writer: a log reference needs a value "
		                                "key and a value_log");
	size_t size = ref->head ? SEG_REF_RECORD_SIZE : SEG_REF_SIZE;
	uint8_t *body;
	int rc = seg_writer_tag(w, ref->head ? SEG_VALUE_IN_LOG_RECORD : SEG_VALUE_IN_LOG, size - 1,
	                        &body);
	if (rc)
		return rc;
	keys_put_u64le(w->tagged + SEG_REF_OFFSET, ref->offset);
	keys_put_u32le(w->tagged + SEG_REF_LENGTH, ref->len);
	keys_put_u64le(w->tagged + SEG_REF_CHECKSUM, ref->checksum);
	if (ref->head)
		keys_put_u32le(w->tagged + SEG_REF_HEAD, ref->head);
	return seg_writer_add_stored(w, ikey, keys_slice_of(w->tagged, size));
}

bool seg_writer_take(seg_writer *w, size_t min_bytes, struct seg_out *out)
{
	if (w->out_len == 0 || w->out_len < min_bytes)
		return false;
	out->data = w->out;
	out->len = w->out_len;
	out->off = w->out_off;
	w->out_off += w->out_len;
	w->out = NULL;
	w->out_len = w->out_cap = 0;
	return true;
}

static int seg_emit_props(seg_writer *w, struct seg_handle *h)
{
	const struct seg_props *p = &w->props;
	size_t size = SEG_PROPS_FIXED_SIZE + p->smallest.len + 4 + p->largest.len +
	              (p->value_log ? SEG_PROPS_VALUE_LOG_SIZE : 0);
	int rc = seg_grow(&w->out, &w->out_cap, w->out_len + size + SEG_TRAILER_SIZE);
	if (rc)
		return rc;
	uint8_t *b = w->out + w->out_len;
	keys_put_u64le(b + SEG_PROPS_ENTRIES, p->entries);
	keys_put_u64le(b + SEG_PROPS_TOMBSTONES, p->tombstones);
	keys_put_u64le(b + SEG_PROPS_MIN_SEQ, p->min_seq);
	keys_put_u64le(b + SEG_PROPS_MAX_SEQ, p->max_seq);
	keys_put_u64le(b + SEG_PROPS_RAW_KEYS, p->raw_key_bytes);
	keys_put_u64le(b + SEG_PROPS_RAW_VALUES, p->raw_value_bytes);
	keys_put_u64le(b + SEG_PROPS_DATA_BLOCKS, p->data_blocks);
	keys_put_u32le(b + SEG_PROPS_COMPRESSION, p->compression);
	keys_put_u32le(b + SEG_PROPS_SMALLEST_LEN, (uint32_t)p->smallest.len);
	uint8_t *q = b + SEG_PROPS_FIXED_SIZE;
	if (p->smallest.len)
		memcpy(q, p->smallest.data, p->smallest.len);
	q += p->smallest.len;
	keys_put_u32le(q, (uint32_t)p->largest.len);
	q += 4;
	if (p->largest.len)
		memcpy(q, p->largest.data, p->largest.len);
	if (p->value_log)
		keys_put_u64le(q + p->largest.len, p->value_log);
	*h = seg_seal_block(w, size, SEG_COMPRESS_NONE);
	return 0;
}

int seg_writer_finish(seg_writer *w)
{
	int rc = 0;
	struct seg_handle fh, ph, ih;
	keys_slice idx;
	if (w->err)
		return w->err;
	if (w->finished)
		return error_set(CESIUM_EINVAL, "segment writer: finished twice");
	if (!block_builder_empty(&w->data) && (rc = seg_flush_data_block(w)))
		goto out;
	if (w->props.entries == 0)
		w->props.min_seq = 0;
	w->props.largest = keys_slice_of(w->last, w->last_len);

	size_t fsize = bloom_builder_size(&w->bloom);
	if ((rc = seg_grow(&w->out, &w->out_cap, w->out_len + fsize + SEG_TRAILER_SIZE)))
		goto out;
	bloom_builder_emit(&w->bloom, w->out + w->out_len);
	fh = seg_seal_block(w, fsize, SEG_COMPRESS_NONE);

	if ((rc = seg_emit_props(w, &ph)))
		goto out;
	if ((rc = block_builder_finish(&w->index, &idx))) {
		rc = error_set(rc, "segment writer: out of memory");
		goto out;
	}
	if ((rc = seg_emit_block(w, idx.data, idx.len, SEG_COMPRESS_NONE, &ih)))
		goto out;

	if ((rc = seg_grow(&w->out, &w->out_cap, w->out_len + SEG_FOOTER_SIZE)))
		goto out;
	uint8_t *f = w->out + w->out_len;
	seg_put_handle(f + SEG_FOOTER_FILTER, fh);
	seg_put_handle(f + SEG_FOOTER_PROPS, ph);
	seg_put_handle(f + SEG_FOOTER_INDEX, ih);
	keys_put_u32le(f + SEG_FOOTER_VERSION,
	               w->o.value_log ? SEG_FORMAT_VERSION_LOG_RECORDS : SEG_FORMAT_VERSION);
	keys_put_u64le(f + SEG_FOOTER_MAGIC, SEG_MAGIC);
	keys_put_u64le(f + SEG_FOOTER_CHECKSUM, XXH3_64bits(f, SEG_FOOTER_CHECKSUM));
	w->out_len += SEG_FOOTER_SIZE;
	w->finished = true;
	w->props.file_size = w->out_off + w->out_len;
	/* The builders' memory is of no further use. */
	bloom_builder_destroy(&w->bloom);
	block_builder_destroy(&w->data);
	block_builder_destroy(&w->index);
out:
	if (rc)
		w->err = rc;
	return rc;
}

uint64_t seg_writer_file_size(const seg_writer *w)
{
	return w->out_off + w->out_len;
}

const struct seg_props *seg_writer_props(const seg_writer *w)
{
	return &w->props;
}

void seg_writer_free(seg_writer *w)
{
	if (!w)
		return;
	block_builder_destroy(&w->data);
	block_builder_destroy(&w->index);
	bloom_builder_destroy(&w->bloom);
	ZSTD_freeCCtx(w->zc);
	mem_free(w->zbuf);
	mem_free(w->out);
	mem_free(w->last);
	mem_free(w->smallest);
	mem_free(w->tagged);
	mem_free(w);
}

/* ================= reader ================= */

struct seg_reader {
	/* Readers are shared by caller threads and compactors: the last
	 * unref (acq_rel) frees. */
	_Atomic uint32_t refs;
	int fd;
	char *path;
	uint64_t id;
	struct cache *cache;
	uint8_t *index, *filter, *props_raw; /* pinned, each with its trailer */
	size_t index_len, filter_len, props_len;
	uint64_t data_end; /* data blocks lie in [0, data_end) */
	uint64_t file_size;
	uint32_t version; /* SEG_FORMAT_VERSION* */
	/* The data blocks mapped read-only, so that a get reads an
	 * uncompressed block from the page cache without a system call or a
	 * copy. NULL when the mapping failed: reads then use pread.
	 * Segments are immutable and only ever unlinked, which keeps the
	 * mapping valid. */
	const uint8_t *map;
	/* Mapped blocks whose checksum this reader has verified: slot
	 * off / SEG_VERIFIED_GRAIN holds off + 1 once the block at off passed.
	 * Two blocks sharing a slot only cost re-verification. NULL (verify
	 * every read) when the data region is 4 GiB or more. */
	_Atomic uint32_t *verified;
	/* The index's restart keys as fixed-width numbers, for a binary
	 * search that touches one compact array instead of a key per step:
	 * fence[i] is 8 bytes of restart key i's nskey from fence_cp on (every
	 * index key shares its first fence_cp bytes, fence_prefix), read
	 * big-endian and zero-padded, so fence order agrees with key order
	 * and ties go to a full comparison. NULL: plain block seek. */
	uint64_t *fence;
	uint32_t nfence;
	size_t fence_cp;
	const uint8_t *fence_prefix; /* in the pinned index block */
	struct seg_props props;
	/* Format version 2 (props.value_log != 0): values carry a tag, and
	 * those kept in the log are read from log_fd (seg_reader_attach_log;
	 * -1 until then). */
	int log_fd;
	char *log_path;
	uint64_t log_size; /* at attach; the log never shrinks below its records */
};

/* A decoded data block: from the cache (h), owned (owned), or borrowed
 * from an iterator's readahead buffer. */
struct seg_block {
	const uint8_t *data;
	size_t len;
	cache_handle *h;
	void *owned;
};

#define SEG_VERIFIED_GRAIN_SHIFT 12 /* data blocks are about 4 KiB apart */

static bool seg_block_verified(const seg_reader *r, uint64_t off)
{
	return r->verified && atomic_load_explicit(&r->verified[off >> SEG_VERIFIED_GRAIN_SHIFT],
	                                           memory_order_relaxed) == (uint32_t)off + 1;
}

/* Relaxed is enough: the mapped bytes never change, so a reader that sees
 * the mark can trust them without seeing anything else this thread did. */
void seg_reader_attach_log(seg_reader *r, int fd, const char *path)
{
	if (r->log_fd >= 0)
		io_close(r->log_fd);
	mem_free(r->log_path);
	r->log_fd = fd;
	r->log_path = mem_printf("%s", path ? path : "log");
	int64_t size = io_file_size(fd);
	r->log_size = size > 0 ? (uint64_t)size : 0;
}

void seg_reader_verify_every_read(seg_reader *r)
{
	/* Without the marks every mapped read takes the verifying path. */
	mem_free((void *)r->verified);
	r->verified = NULL;
}

static void seg_block_mark_verified(seg_reader *r, uint64_t off)
{
	if (r->verified)
		atomic_store_explicit(&r->verified[off >> SEG_VERIFIED_GRAIN_SHIFT],
		                      (uint32_t)off + 1, memory_order_relaxed);
}

static void seg_block_release(seg_reader *r, struct seg_block *b)
{
	if (b->h)
		cache_release(r->cache, b->h);
	mem_free(b->owned);
	memset(b, 0, sizeof(*b));
}

static pthread_key_t seg_dctx_key;
static pthread_once_t seg_dctx_once = PTHREAD_ONCE_INIT;
static int seg_dctx_key_rc;

static void seg_dctx_destroy(void *p)
{
	ZSTD_freeDCtx(p);
}

static void seg_dctx_init(void)
{
	seg_dctx_key_rc = pthread_key_create(&seg_dctx_key, seg_dctx_destroy);
}

/* One decompression context per thread, freed at thread exit. */
static ZSTD_DCtx *seg_dctx(void)
{
	pthread_once(&seg_dctx_once, seg_dctx_init);
	if (seg_dctx_key_rc)
		return NULL;
	ZSTD_DCtx *d = pthread_getspecific(seg_dctx_key);
	if (!d) {
		d = ZSTD_createDCtx();
		if (d && pthread_setspecific(seg_dctx_key, d)) {
			ZSTD_freeDCtx(d);
			d = NULL;
		}
	}
	return d;
}

static int seg_corrupt(const seg_reader *r, uint64_t off, const char *what)
{
	return error_set(CESIUM_ECORRUPT, "%s: block at offset %llu: %s", r->path, (ull)off, what);
}

/* Reads exactly len bytes at off. */
static int seg_pread(const seg_reader *r, void *buf, size_t len, uint64_t off)
{
	ssize_t n = io_pread_full(r->fd, buf, len, off);
	if (n < 0)
		return error_set(error_from_errno((int)n),
		                 "%s: read of %zu bytes at offset %llu: %s", r->path, len, (ull)off,
		                 strerror((int)-n));
	if ((size_t)n < len)
		return error_set(CESIUM_ECORRUPT,
		                 "%s: block at offset %llu: file truncated (%zd of %zu bytes)",
		                 r->path, (ull)off, n, len);
	return 0;
}

/* Checks the trailer after size bytes at p; returns the type or an error. */
static int seg_verify(const seg_reader *r, const uint8_t *p, size_t size, uint64_t off)
{
	uint64_t want = keys_get_u64le(p + size + SEG_TRAILER_CHECKSUM);
	if (XXH3_64bits(p, size + 1) != want)
		return seg_corrupt(r, off, "checksum mismatch");
	uint8_t type = p[size + SEG_TRAILER_TYPE];
	if (type != SEG_COMPRESS_NONE && type != SEG_COMPRESS_ZSTD)
		return seg_corrupt(r, off, "unknown compression type");
	return type;
}

/* Reads, verifies and decodes a block whose raw bytes (with trailer) are at
 * raw, or are read from the file when raw is NULL; caches it when asked. */
static int seg_load_miss(seg_reader *r, struct seg_handle h, bool fill, const uint8_t *raw,
                         struct seg_block *b)
{
	int rc = 0;
	uint8_t *buf = NULL, *dec = NULL;
	size_t len = h.size;
	const uint8_t *data;
	memset(b, 0, sizeof(*b));
	if (!raw) {
		buf = mem_alloc((size_t)h.size + SEG_TRAILER_SIZE);
		if (!buf) {
			rc = error_set(CESIUM_ENOMEM, "%s: out of memory for a block", r->path);
			goto out;
		}
		if ((rc = seg_pread(r, buf, (size_t)h.size + SEG_TRAILER_SIZE, h.off)))
			goto out;
		raw = buf;
	}
	int type = seg_verify(r, raw, h.size, h.off);
	if (type < 0) {
		rc = type;
		goto out;
	}
	data = raw;
	if (type == SEG_COMPRESS_ZSTD) {
		unsigned long long n = ZSTD_getFrameContentSize(raw, h.size);
		if (n == ZSTD_CONTENTSIZE_ERROR || n == ZSTD_CONTENTSIZE_UNKNOWN ||
		    n > SEG_MAX_BLOCK_SIZE) {
			rc = seg_corrupt(r, h.off, "bad zstd frame header");
			goto out;
		}
		ZSTD_DCtx *d = seg_dctx();
		dec = mem_alloc(n ? (size_t)n : 1);
		if (!d || !dec) {
			rc = error_set(CESIUM_ENOMEM, "%s: out of memory for decompression",
			               r->path);
			goto out;
		}
		size_t got = ZSTD_decompressDCtx(d, dec, (size_t)n, raw, h.size);
		if (ZSTD_isError(got) || got != n) {
			rc = seg_corrupt(r, h.off, "zstd decompression failed");
			goto out;
		}
		mem_free(buf);
		buf = NULL;
		data = dec;
		len = (size_t)n;
	} else if (!buf && fill && r->cache) {
		/* Borrowed bytes cannot go into the cache: copy them. */
		dec = mem_alloc(len ? len : 1);
		if (!dec) {
			rc = error_set(CESIUM_ENOMEM, "%s: out of memory for a block", r->path);
			goto out;
		}
		memcpy(dec, raw, len);
		data = dec;
	} else if (buf) {
		dec = buf; /* the trailer's 9 bytes ride along unused */
		buf = NULL;
	}
	if (dec && fill && r->cache) {
		cache_handle *ch;
		rc = cache_insert(r->cache, r->id, h.off, dec, len, seg_mem_free, &ch);
		dec = NULL; /* the cache owns it now, even on failure */
		if (rc) {
			rc = error_set(rc, "%s: out of memory caching a block", r->path);
			goto out;
		}
		b->h = ch;
		b->data = cache_value(ch, &b->len);
		goto out;
	}
	b->owned = dec;
	dec = NULL;
	b->data = data;
	b->len = len;
out:
	mem_free(buf);
	mem_free(dec);
	return rc;
}

static int seg_load_block(seg_reader *r, struct seg_handle h, bool fill, struct seg_block *b)
{
	if (r->map && h.off <= r->data_end && SEG_TRAILER_SIZE <= r->data_end - h.off &&
	    h.size <= r->data_end - h.off - SEG_TRAILER_SIZE &&
	    r->map[h.off + h.size + SEG_TRAILER_TYPE] == SEG_COMPRESS_NONE) {
		/* Uncompressed and mapped: read in place, the checksum
		 * verified on this reader's first read of the block (as a
		 * block cache verifies on insert, not on every hit); the page
		 * cache is its cache, so the block cache keeps its budget for
		 * decompressed blocks. The fault seam is asked here because
		 * no read call passes through io/ (a real media error on a
		 * mapped page is SIGBUS instead: docs/durability.md). */
		if (io_fault_armed()) {
			size_t want = (size_t)h.size + SEG_TRAILER_SIZE, len = want;
			int e = io_fault_check(IO_OP_READ, r->fd, r->path, &len);
			if (e < 0)
				return error_set(error_from_errno(e),
				                 "%s: read of %zu bytes at offset %llu: %s", r->path,
				                 want, (ull)h.off, strerror(-e));
			if (len < want)
				return error_set(CESIUM_ECORRUPT,
				                 "%s: block at offset %llu: file truncated (%zu of %zu bytes)",
				                 r->path, (ull)h.off, len, want);
		}
		if (seg_block_verified(r, h.off)) {
			*b = (struct seg_block){.data = r->map + h.off, .len = h.size};
			return 0;
		}
		int rc = seg_load_miss(r, h, false, r->map + h.off, b);
		if (!rc)
			seg_block_mark_verified(r, h.off);
		return rc;
	}
	cache_handle *ch = r->cache ? cache_lookup(r->cache, r->id, h.off) : NULL;
	if (ch) {
		memset(b, 0, sizeof(*b));
		b->h = ch;
		b->data = cache_value(ch, &b->len);
		return 0;
	}
	return seg_load_miss(r, h, fill, NULL, b);
}

/* Reads a pinned (uncompressed) metadata block with its trailer. */
static int seg_read_pinned(seg_reader *r, struct seg_handle h, uint64_t limit, uint8_t **out)
{
	int rc = 0;
	uint8_t *buf = NULL;
	if (h.off > limit || (uint64_t)h.size + SEG_TRAILER_SIZE > limit - h.off) {
		rc = seg_corrupt(r, h.off, "block handle out of bounds");
		goto out;
	}
	buf = mem_alloc((size_t)h.size + SEG_TRAILER_SIZE);
	if (!buf) {
		rc = error_set(CESIUM_ENOMEM, "%s: out of memory", r->path);
		goto out;
	}
	if ((rc = seg_pread(r, buf, (size_t)h.size + SEG_TRAILER_SIZE, h.off)))
		goto out;
	int type = seg_verify(r, buf, h.size, h.off);
	if (type < 0) {
		rc = type;
		goto out;
	}
	if (type != SEG_COMPRESS_NONE) {
		rc = seg_corrupt(r, h.off, "metadata block is compressed");
		goto out;
	}
	*out = buf;
	buf = NULL;
out:
	mem_free(buf);
	return rc;
}

static int seg_parse_props(seg_reader *r, uint64_t off, uint32_t version)
{
	const uint8_t *b = r->props_raw;
	size_t n = r->props_len;
	struct seg_props *p = &r->props;
	if (n < SEG_PROPS_FIXED_SIZE)
		return seg_corrupt(r, off, "props block too short");
	p->entries = keys_get_u64le(b + SEG_PROPS_ENTRIES);
	p->tombstones = keys_get_u64le(b + SEG_PROPS_TOMBSTONES);
	p->min_seq = keys_get_u64le(b + SEG_PROPS_MIN_SEQ);
	p->max_seq = keys_get_u64le(b + SEG_PROPS_MAX_SEQ);
	p->raw_key_bytes = keys_get_u64le(b + SEG_PROPS_RAW_KEYS);
	p->raw_value_bytes = keys_get_u64le(b + SEG_PROPS_RAW_VALUES);
	p->data_blocks = keys_get_u64le(b + SEG_PROPS_DATA_BLOCKS);
	p->compression = keys_get_u32le(b + SEG_PROPS_COMPRESSION);
	size_t sl = keys_get_u32le(b + SEG_PROPS_SMALLEST_LEN);
	if (sl > n - SEG_PROPS_FIXED_SIZE || n - SEG_PROPS_FIXED_SIZE - sl < 4)
		return seg_corrupt(r, off, "props smallest key out of bounds");
	const uint8_t *q = b + SEG_PROPS_FIXED_SIZE + sl;
	size_t ll = keys_get_u32le(q);
	size_t tail = version != SEG_FORMAT_VERSION ? SEG_PROPS_VALUE_LOG_SIZE : 0;
	if (n - SEG_PROPS_FIXED_SIZE - sl - 4 < tail ||
	    ll != n - SEG_PROPS_FIXED_SIZE - sl - 4 - tail)
		return seg_corrupt(r, off, "props largest key out of bounds");
	if (tail && (p->value_log = keys_get_u64le(q + 4 + ll)) == 0)
		return seg_corrupt(r, off, "props name no value log in a version 2 or 3 segment");
	bool empty = p->entries == 0;
	if (empty ? (sl || ll) : (sl < KEYS_TRAILER_SIZE || ll < KEYS_TRAILER_SIZE))
		return seg_corrupt(r, off, "props key bounds inconsistent with entry count");
	p->smallest = keys_slice_of(b + SEG_PROPS_FIXED_SIZE, sl);
	p->largest = keys_slice_of(q + 4, ll);
	p->file_size = r->file_size;
	return 0;
}

/* Walks the whole index once so that gets and iterators can rely on its
 * shape: every value a handle to a block inside the data region. */
static int seg_check_index(seg_reader *r, uint64_t off)
{
	struct block_iter it;
	uint64_t count = 0;
	int rc = 0;
	block_iter_init(&it, true);
	block_iter_reset(&it, r->index, r->index_len);
	for (iter_seek_first(&it.base); iter_valid(&it.base); iter_next(&it.base)) {
		keys_slice v = iter_value(&it.base);
		if (v.len != SEG_HANDLE_SIZE) {
			rc = seg_corrupt(r, off, "index entry is not a block handle");
			goto out;
		}
		struct seg_handle h = seg_get_handle(v.data);
		if (h.off > r->data_end ||
		    (uint64_t)h.size + SEG_TRAILER_SIZE > r->data_end - h.off ||
		    h.size > SEG_MAX_BLOCK_SIZE) {
			rc = seg_corrupt(r, off, "index points outside the data blocks");
			goto out;
		}
		count++;
	}
	if (iter_status(&it.base)) {
		rc = seg_corrupt(r, off, "malformed index block");
		goto out;
	}
	if (count != r->props.data_blocks)
		rc = seg_corrupt(r, off, "index and props disagree on the block count");
out:
	block_iter_cleanup(&it);
	return rc;
}

static void seg_reader_destroy(seg_reader *r)
{
	if (r->map)
		munmap((void *)r->map, r->data_end);
	mem_free((void *)r->verified);
	mem_free(r->fence);
	if (r->fd >= 0)
		io_close(r->fd);
	if (r->log_fd >= 0)
		io_close(r->log_fd);
	mem_free(r->log_path);
	mem_free(r->index);
	mem_free(r->filter);
	mem_free(r->props_raw);
	mem_free(r->path);
	mem_free(r);
}

static uint64_t seg_fence_of(keys_slice nskey, size_t cp)
{
	uint8_t b[8] = {0};
	if (nskey.len > cp)
		memcpy(b, nskey.data + cp, nskey.len - cp < 8 ? nskey.len - cp : 8);
	return keys_get_u64be(b);
}

/* Builds r->fence from the (verified) index block. Best effort: without
 * memory, or on an index the seek itself will report as malformed, the
 * reader just searches the block. */
static void seg_build_fence(seg_reader *r)
{
	struct block_iter ii;
	block_iter_init(&ii, true);
	block_iter_reset(&ii, r->index, r->index_len);
	uint32_t n = ii.nrestarts;
	keys_slice first, last, k;
	if (ii.status || n == 0 || !block_iter_restart_key(&ii, 0, &first) ||
	    !block_iter_restart_key(&ii, n - 1, &last))
		goto out;
	keys_slice fa = keys_ikey_nskey(first), la = keys_ikey_nskey(last);
	size_t cp = 0;
	while (cp < fa.len && cp < la.len && fa.data[cp] == la.data[cp])
		cp++;
	uint64_t *fence = mem_alloc((size_t)n * sizeof(*fence));
	if (!fence)
		goto out;
	for (uint32_t i = 0; i < n; i++) {
		if (!block_iter_restart_key(&ii, i, &k)) {
			mem_free(fence);
			goto out;
		}
		fence[i] = seg_fence_of(keys_ikey_nskey(k), cp);
	}
	r->fence = fence;
	r->nfence = n;
	r->fence_cp = cp;
	r->fence_prefix = fa.data;
out:
	block_iter_cleanup(&ii);
}

/* Positions ii (over r's index) at the first entry >= target, through the
 * fence array when there is one. */
static void seg_index_seek(const seg_reader *r, struct block_iter *ii, keys_slice target)
{
	if (!r->fence) {
		iter_seek(&ii->base, target);
		return;
	}
	keys_slice t = keys_ikey_nskey(target);
	size_t cp = r->fence_cp;
	int c = memcmp(t.data, r->fence_prefix, t.len < cp ? t.len : cp);
	if (c < 0 || (c == 0 && t.len < cp)) { /* below every index key */
		block_iter_seek_from(ii, 0, target);
		return;
	}
	if (c > 0) { /* above every index key */
		block_iter_seek_from(ii, r->nfence, target);
		return;
	}
	uint64_t f = seg_fence_of(t, cp);
	uint32_t lo = 0, hi = r->nfence;
	while (lo < hi) { /* first fence >= f */
		uint32_t mid = lo + (hi - lo) / 2;
		if (r->fence[mid] < f)
			lo = mid + 1;
		else
			hi = mid;
	}
	hi = lo;
	while (hi < r->nfence && r->fence[hi] == f)
		hi++;
	while (lo < hi) { /* among equal fences, the first key >= target */
		uint32_t mid = lo + (hi - lo) / 2;
		keys_slice k;
		if (!block_iter_restart_key(ii, mid, &k))
			return;
		if (keys_compare_ikey(k, target) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* Entries between restarts lo - 1 and lo may hold the answer. */
	block_iter_seek_from(ii, lo > 0 ? lo - 1 : 0, target);
}

int seg_reader_open(int fd, const char *path, uint64_t id, struct cache *block_cache,
                    seg_reader **out)
{
	int rc = 0;
	uint8_t f[SEG_FOOTER_SIZE];
	seg_reader *r = mem_zalloc(sizeof(*r));
	size_t plen = path ? strlen(path) : 0;
	if (!r || !(r->path = mem_alloc(plen + 1))) {
		mem_free(r);
		io_close(fd);
		return error_set(CESIUM_ENOMEM, "segment: out of memory opening %s",
		                 path ? path : "?");
	}
	memcpy(r->path, path ? path : "", plen + 1);
	atomic_init(&r->refs, 1);
	r->fd = fd;
	r->log_fd = -1;
	r->id = id;
	r->cache = block_cache;

	int64_t fsize = io_file_size(fd);
	if (fsize < 0) {
		rc = error_set(error_from_errno((int)fsize), "%s: cannot stat: %s", r->path,
		               strerror((int)-fsize));
		goto out;
	}
	r->file_size = (uint64_t)fsize;
	if (r->file_size < SEG_FOOTER_SIZE) {
		rc =
		    error_set(CESIUM_ECORRUPT,
		              "%s: footer at offset 0: file of %llu bytes is shorter than a footer",
		              r->path, (ull)r->file_size);
		goto out;
	}
	uint64_t foff = r->file_size - SEG_FOOTER_SIZE;
	if ((rc = seg_pread(r, f, sizeof(f), foff)))
		goto out;
	if (XXH3_64bits(f, SEG_FOOTER_CHECKSUM) != keys_get_u64le(f + SEG_FOOTER_CHECKSUM)) {
		rc = error_set(CESIUM_ECORRUPT, "%s: footer at offset %llu: checksum mismatch",
		               r->path, (ull)foff);
		goto out;
	}
	if (keys_get_u64le(f + SEG_FOOTER_MAGIC) != SEG_MAGIC) {
		rc = error_set(CESIUM_ECORRUPT,
		               "%s: footer at offset %llu: not a segment (bad magic)", r->path,
		               (ull)foff);
		goto out;
	}
	uint32_t ver = keys_get_u32le(f + SEG_FOOTER_VERSION);
	if (ver != SEG_FORMAT_VERSION && ver != SEG_FORMAT_VERSION_LOG_VALUES &&
	    ver != SEG_FORMAT_VERSION_LOG_RECORDS) {
		rc = error_set(CESIUM_ECORRUPT,
		               "%s: footer at offset %llu: format version %u, expected %u to %u",
		               r->path, (ull)foff, ver, SEG_FORMAT_VERSION,
		               SEG_FORMAT_VERSION_LOG_RECORDS);
		goto out;
	}
	r->version = ver;
	struct seg_handle fh = seg_get_handle(f + SEG_FOOTER_FILTER);
	struct seg_handle ph = seg_get_handle(f + SEG_FOOTER_PROPS);
	struct seg_handle ih = seg_get_handle(f + SEG_FOOTER_INDEX);
	if ((rc = seg_read_pinned(r, fh, foff, &r->filter)))
		goto out;
	r->filter_len = fh.size;
	r->data_end = fh.off;
	if (r->data_end > 0) {
		void *m = mmap(NULL, r->data_end, PROT_READ, MAP_SHARED, fd, 0);
		if (m != MAP_FAILED) {
			madvise(m, r->data_end, MADV_RANDOM); /* gets touch one block */
			r->map = m;
			/* Without the slots (too large, or no memory) every
			 * read verifies: slower, never wrong. */
			if (r->data_end < UINT32_MAX)
				r->verified = mem_zalloc(
				    ((r->data_end >> SEG_VERIFIED_GRAIN_SHIFT) + 1) * sizeof(uint32_t));
		}
	}
	if ((rc = seg_read_pinned(r, ph, foff, &r->props_raw)))
		goto out;
	r->props_len = ph.size;
	if ((rc = seg_parse_props(r, ph.off, ver)))
		goto out;
	if ((rc = seg_read_pinned(r, ih, foff, &r->index)))
		goto out;
	r->index_len = ih.size;
	if ((rc = seg_check_index(r, ih.off)))
		goto out;
	seg_build_fence(r);
	*out = r;
	r = NULL;
out:
	if (r)
		seg_reader_destroy(r);
	return rc;
}

void seg_reader_ref(seg_reader *r)
{
	atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
}

void seg_reader_unref(seg_reader *r)
{
	if (r && atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) == 1)
		seg_reader_destroy(r);
}

const struct seg_props *seg_reader_props(const seg_reader *r)
{
	return &r->props;
}

size_t seg_reader_pinned_bytes(const seg_reader *r)
{
	size_t verified =
	    r->verified ? ((r->data_end >> SEG_VERIFIED_GRAIN_SHIFT) + 1) * sizeof(uint32_t) : 0;
	return r->index_len + r->filter_len + r->props_len + 3 * SEG_TRAILER_SIZE + verified +
	       (size_t)r->nfence * sizeof(uint64_t);
}

size_t seg_reader_mapped_bytes(const seg_reader *r)
{
	return r->map ? (size_t)r->data_end : 0;
}

const char *seg_reader_path(const seg_reader *r)
{
	return r->path;
}

uint64_t seg_reader_id(const seg_reader *r)
{
	return r->id;
}

void seg_reader_prefetch_filter(const seg_reader *r, keys_slice nskey)
{
	if (r->filter_len > 0)
		bloom_prefetch(r->filter, r->filter_len, bloom_hash(nskey));
}

bool seg_reader_may_contain(seg_reader *r, keys_slice nskey)
{
	if (r->filter_len == 0)
		return true;
	return bloom_may_contain(r->filter, r->filter_len, bloom_hash(nskey));
}

/* The internal key a point lookup seeks: nskey at the snapshot, in a
 * stack buffer when it fits. */
struct seg_lookup {
	uint8_t stack[256];
	uint8_t *buf;
	keys_slice target;
};

static int seg_lookup_init(const seg_reader *r, struct seg_lookup *lu, keys_slice nskey,
                           uint64_t snapshot_seq)
{
	lu->buf = lu->stack;
	if (nskey.len + KEYS_TRAILER_SIZE > sizeof(lu->stack)) {
		lu->buf = mem_alloc(nskey.len + KEYS_TRAILER_SIZE);
		if (!lu->buf)
			return error_set(CESIUM_ENOMEM, "%s: out of memory", r->path);
	}
	if (snapshot_seq > KEYS_MAX_SEQ)
		snapshot_seq = KEYS_MAX_SEQ;
	/* The highest kind sorts first among versions of one seq. */
	keys_make_ikey(lu->buf, nskey.data, nskey.len, snapshot_seq, KEYS_KIND_VALUE);
	lu->target = keys_slice_of(lu->buf, nskey.len + KEYS_TRAILER_SIZE);
	return 0;
}

static void seg_lookup_cleanup(struct seg_lookup *lu)
{
	if (lu->buf != lu->stack)
		mem_free(lu->buf);
}

/* The data block that holds the first entry >= target, if any: 0 with *h,
 * CESIUM_ENOTFOUND past the last block, CESIUM_ECORRUPT. */
static int seg_index_find(seg_reader *r, keys_slice target, struct seg_handle *h)
{
	int rc = CESIUM_ENOTFOUND;
	struct block_iter ii;
	block_iter_init(&ii, true);
	block_iter_reset(&ii, r->index, r->index_len);
	seg_index_seek(r, &ii, target);
	if (!iter_valid(&ii.base)) {
		if (iter_status(&ii.base))
			rc = seg_corrupt(r, r->data_end, "malformed index block");
		goto out;
	}
	/* The first block whose last key >= target holds the first entry >=
	 * target: the newest visible version, if nskey is here at all. */
	*h = seg_get_handle(iter_value(&ii.base).data);
	rc = 0;
out:
	block_iter_cleanup(&ii);
	return rc;
}

static const char *seg_log_name(const seg_reader *r)
{
	return r->log_path ? r->log_path : "log"; /* NULL: out of memory at attach */
}

/* Whether ref can be read: the log is attached and holds the whole value
 * (a damaged reference must not make a reader allocate or seek blindly). */
static int seg_check_ref(const seg_reader *r, const struct seg_log_ref *ref)
{
	if (r->log_fd < 0)
		return error_set(CESIUM_EIO, "%s: value log %llu is not open", r->path,
		                 (ull)r->props.value_log);
	if (ref->offset > r->log_size || ref->len > r->log_size - ref->offset)
		return error_set(CESIUM_ECORRUPT,
		                 "%s: value at offset %llu (%u bytes, kept for %s) lies past the "
		                 "end of the log (%llu bytes)",
		                 seg_log_name(r), (ull)ref->offset, ref->len, r->path,
		                 (ull)r->log_size);
	return 0;
}

/* The most a record can hold before its value: the log's and the batch's
 * headers, and a put's kind, lengths and longest namespaced key. */
#define SEG_REF_HEAD_MAX                                                                           \
	(LOG_HEADER_SIZE + BATCH_HEADER_SIZE + 1 + 5 + KEYS_NS_SIZE + CESIUM_MAX_KEY_SIZE + 5)

const char *seg_ref_decode(keys_slice stored, uint32_t version, struct seg_log_ref *ref)
{
	bool whole_record = stored.len >= 1 && stored.data[0] == SEG_VALUE_IN_LOG_RECORD;
	if (stored.len < 1 || (stored.data[0] != SEG_VALUE_IN_LOG && !whole_record) ||
	    (whole_record && version < SEG_FORMAT_VERSION_LOG_RECORDS))
		return "unknown value tag";
	if (stored.len != (whole_record ? SEG_REF_RECORD_SIZE : SEG_REF_SIZE))
		return "log reference of the wrong length";
	ref->offset = keys_get_u64le(stored.data + SEG_REF_OFFSET);
	ref->len = keys_get_u32le(stored.data + SEG_REF_LENGTH);
	ref->checksum = keys_get_u64le(stored.data + SEG_REF_CHECKSUM);
	ref->head = whole_record ? keys_get_u32le(stored.data + SEG_REF_HEAD) : 0;
	if (whole_record && (ref->head < LOG_HEADER_SIZE || ref->head > SEG_REF_HEAD_MAX ||
	                     ref->head > ref->offset))
		return "log record reference with an impossible header length";
	return NULL;
}

/*
 * A version 2 or 3 value as stored (tag first): *ref is set and 1 returned
 * for a value kept in the log that the attached log can hold
 * (seg_check_ref); *inl is set and 0 returned for one stored here.
 * block_off locates the block, for the message on a malformed tag.
 */
static int seg_value_decode(const seg_reader *r, uint64_t block_off, keys_slice stored,
                            keys_slice *inl, struct seg_log_ref *ref)
{
	if (stored.len >= 1 && stored.data[0] == SEG_VALUE_INLINE) {
		*inl = keys_slice_of(stored.data + 1, stored.len - 1);
		return 0;
	}
	const char *bad = seg_ref_decode(stored, r->version, ref);
	if (bad)
		return error_set(CESIUM_ECORRUPT,
		                 "%s: block at offset %llu: malformed value tag: %s", r->path,
		                 (ull)block_off, bad);
	int rc = seg_check_ref(r, ref);
	return rc ? rc : 1;
}

int seg_ref_read(int log_fd, const char *log, const char *seg, const struct seg_log_ref *ref,
                 void *buf)
{
	/* A record reference reads the record's head and the value with one
	 * call: they are contiguous in the log. */
	uint8_t small[512];
	uint8_t *head = ref->head <= sizeof(small) ? small : mem_alloc(ref->head);
	if (!head)
		return error_set(CESIUM_ENOMEM, "out of memory");
	struct iovec iov[2] = {{head, ref->head}, {buf, ref->len}};
	size_t want = (size_t)ref->head + ref->len;
	ssize_t got = want ? io_preadv_full(log_fd, iov, 2, ref->offset - ref->head) : 0;
	int rc = 0;
	if (got < 0)
		rc = error_set(error_from_errno((int)got),
		               "%s: read of %zu bytes at offset %llu: %s", log, want,
		               (ull)(ref->offset - ref->head), strerror((int)-got));
	else if ((size_t)got < want)
		rc = error_set(CESIUM_ECORRUPT,
		               "%s: value at offset %llu (%u bytes, kept for %s) lies past the "
		               "end of the log",
		               log, (ull)ref->offset, ref->len, seg);
	else if ((ref->head ? log_record_checksum(head, ref->head, buf, ref->len)
	                    : XXH3_64bits(buf, ref->len)) != ref->checksum)
		rc = error_set(CESIUM_ECORRUPT,
		               "%s: value at offset %llu (%u bytes, kept for %s): checksum "
		               "mismatch%s",
		               log, (ull)ref->offset, ref->len, seg,
		               ref->head ? " (its log record's)" : "");
	if (head != small)
		mem_free(head);
	return rc;
}

/* Reads the value ref points at (checked by seg_check_ref) into buf and
 * checks it (seg_ref_read). */
static int seg_read_log_value(const seg_reader *r, const struct seg_log_ref *ref, void *buf)
{
	return seg_ref_read(r->log_fd, seg_log_name(r), r->path, ref, buf);
}

/* The value of an entry as the caller sees it, in a new allocation (never
 * NULL, even for 0 bytes). */
static int seg_value_copy(const seg_reader *r, uint64_t block_off, keys_slice stored, void **val,
                          size_t *vlen)
{
	keys_slice v = stored;
	struct seg_log_ref ref = {0};
	int kept = 0;
	if (r->props.value_log && (kept = seg_value_decode(r, block_off, stored, &v, &ref)) < 0)
		return kept;
	int rc = 0;
	size_t len = kept ? ref.len : v.len;
	void *p = mem_alloc(len ? len : 1);
	if (!p)
		return error_set(CESIUM_ENOMEM, "%s: out of memory for a %zu-byte value", r->path,
		                 len);
	if (kept)
		rc = seg_read_log_value(r, &ref, p);
	else if (len)
		memcpy(p, v.data, len);
	if (rc) {
		mem_free(p);
		return rc;
	}
	*val = p;
	*vlen = len;
	return 0;
}

/* Searches the decoded block blk (at h) for the newest version of nskey
 * at or below target's sequence; seg_reader_get's results. */
static int seg_block_search(seg_reader *r, struct seg_handle h, const struct seg_block *blk,
                            keys_slice target, keys_slice nskey, enum keys_kind *kind, void **val,
                            size_t *vlen)
{
	int rc = CESIUM_ENOTFOUND;
	struct block_iter di;
	block_iter_init(&di, true);
	block_iter_reset(&di, blk->data, blk->len);
	iter_seek(&di.base, target);
	if (!iter_valid(&di.base)) {
		if (iter_status(&di.base))
			rc = seg_corrupt(r, h.off, "malformed data block");
		goto out;
	}
	keys_slice k = iter_key(&di.base);
	if (keys_compare_bytes(keys_ikey_nskey(k), nskey) != 0)
		goto out;
	enum keys_kind kd = keys_ikey_kind(k);
	if (kd == KEYS_KIND_VALUE) {
		if ((rc = seg_value_copy(r, h.off, iter_value(&di.base), val, vlen)))
			goto out;
	} else if (kd != KEYS_KIND_DELETE) {
		rc = seg_corrupt(r, h.off, "unknown entry kind");
		goto out;
	}
	*kind = kd;
	rc = 0;
out:
	block_iter_cleanup(&di);
	return rc;
}

/* Blocks read in place from the mapping up to this size are prefetched
 * whole (seg_prefetch_block). */
#define SEG_PREFETCH_WHOLE (8u << 10)
#define SEG_CACHE_LINE 64u

/* Asks for the cache lines of block h when it is read in place from the
 * mapping, before a get or a seek searches it: the binary search over the
 * restarts, and the scan after, touch lines all over the block, and
 * prefetched together their misses overlap instead of following each
 * other (seeks +24 to +43 %, gets +14 to +30 %, bench/RESULTS.md,
 * 2026-11-27 21:04). A block over SEG_PREFETCH_WHOLE gets its first,
 * middle and last lines (first entries and restart keys, restart array and
 * trailer). Inlined by force: GCC takes a function that only prefetches
 * for one without side effects and deletes the calls. */
static inline __attribute__((always_inline)) void seg_prefetch_block(const seg_reader *r,
                                                                     struct seg_handle h)
{
	if (!r->map || h.off > r->data_end || SEG_TRAILER_SIZE > r->data_end - h.off ||
	    h.size > r->data_end - h.off - SEG_TRAILER_SIZE)
		return;
	const uint8_t *b = r->map + h.off;
	size_t len = h.size + SEG_TRAILER_SIZE;
	if (len <= SEG_PREFETCH_WHOLE) {
		for (size_t at = 0; at < len; at += SEG_CACHE_LINE)
			__builtin_prefetch(b + at);
	} else {
		__builtin_prefetch(b);
		__builtin_prefetch(b + h.size / 2);
	}
	__builtin_prefetch(b + len - 1);
}

/* The first steps of every point lookup: the filter, the lookup key (in
 * lu, which the caller cleans up), and the index: *h is the block that
 * holds nskey's newest version at or below the snapshot, if any block
 * does. CESIUM_ENOTFOUND when the filter or the index rules it out. */
static int seg_find_block(seg_reader *r, keys_slice nskey, uint64_t snapshot_seq,
                          struct seg_lookup *lu, struct seg_handle *h)
{
	if (r->props.entries == 0 || !seg_reader_may_contain(r, nskey))
		return CESIUM_ENOTFOUND;
	int rc = seg_lookup_init(r, lu, nskey, snapshot_seq);
	return rc ? rc : seg_index_find(r, lu->target, h);
}

int seg_reader_get(seg_reader *r, keys_slice nskey, uint64_t snapshot_seq, enum keys_kind *kind,
                   void **val, size_t *vlen)
{
	struct seg_lookup lu;
	struct seg_block blk = {0};
	struct seg_handle h = {0};
	*val = NULL;
	*vlen = 0;
	lu.buf = lu.stack;
	int rc = seg_find_block(r, nskey, snapshot_seq, &lu, &h);
	if (rc)
		goto out;
	seg_prefetch_block(r, h);
	if ((rc = seg_load_block(r, h, true, &blk)))
		goto out;
	rc = seg_block_search(r, h, &blk, lu.target, nskey, kind, val, vlen);
out:
	seg_block_release(r, &blk);
	seg_lookup_cleanup(&lu);
	return rc;
}

int seg_reader_locate(seg_reader *r, keys_slice nskey, uint64_t snapshot_seq,
                      struct seg_block_loc *loc)
{
	struct seg_lookup lu;
	struct seg_handle h = {0};
	lu.buf = lu.stack;
	int rc = seg_find_block(r, nskey, snapshot_seq, &lu, &h);
	if (rc)
		goto out;
	loc->off = h.off;
	loc->size = h.size;
	loc->len = (size_t)h.size + SEG_TRAILER_SIZE;
out:
	seg_lookup_cleanup(&lu);
	return rc;
}

int seg_reader_get_in_block(seg_reader *r, const struct seg_block_loc *loc, const void *bytes,
                            keys_slice nskey, uint64_t snapshot_seq, enum keys_kind *kind,
                            void **val, size_t *vlen)
{
	struct seg_lookup lu;
	struct seg_block blk = {0};
	struct seg_handle h = {loc->off, loc->size};
	*val = NULL;
	*vlen = 0;
	lu.buf = lu.stack;
	int rc = seg_lookup_init(r, &lu, nskey, snapshot_seq);
	if (rc)
		goto out;
	/* Verifies the checksum (and inflates a compressed block) in the
	 * caller's bytes, exactly as a get reading them itself would. */
	if ((rc = seg_load_miss(r, h, false, bytes, &blk)))
		goto out;
	rc = seg_block_search(r, h, &blk, lu.target, nskey, kind, val, vlen);
out:
	seg_block_release(r, &blk);
	seg_lookup_cleanup(&lu);
	return rc;
}

const void *seg_reader_mapped(const seg_reader *r, const struct seg_block_loc *loc)
{
	if (!r->map || loc->off > r->data_end || loc->len > r->data_end - loc->off)
		return NULL;
	return r->map + loc->off;
}

int seg_reader_fd(const seg_reader *r)
{
	return r->fd;
}

/* ================= iterator ================= */

struct seg_iter {
	iter base;
	seg_reader *r;
	struct seg_iter_opts o;
	struct block_iter index;
	struct block_iter data;
	struct seg_block blk;
	bool have_blk;
	uint64_t blk_off;
	uint8_t *ra; /* readahead: file bytes [ra_off, ra_off + ra_len) */
	size_t ra_len, ra_cap;
	uint64_t ra_off;
	struct seg_ra_read *next; /* with a ring: the window after ra's */
	/* Set by prepare_seek: the index is already positioned for a seek to
	 * these bytes. */
	uint8_t *prepared;
	size_t prepared_len, prepared_cap;
	bool lazy; /* at the first entry, not read yet (o.lazy) */
	int status;
	/* Version 2: the current entry's value as callers see it; values
	 * kept in the log are read into vbuf when the iterator lands. */
	keys_slice value;
	uint8_t *vbuf;
	size_t vcap;
};

static void seg_iter_fail(struct seg_iter *it, int rc)
{
	it->status = rc;
	if (it->have_blk)
		seg_block_release(it->r, &it->blk);
	it->have_blk = false;
}

/* One asynchronous readahead window on the iterator's ring. */
struct seg_ra_read {
	struct io_req req;
	struct io_ring *ring;
	int fd;
	uint8_t *buf;
	size_t cap;
	uint64_t off;
	size_t len, got;
	int res; /* 0 or -errno */
	bool busy, eof;
};

static void seg_ra_done(struct io_req *req, int res)
{
	struct seg_ra_read *rd = (struct seg_ra_read *)req;
	if (res > 0 && (size_t)res < rd->len - rd->got) {
		/* A short read before the end: ask for the rest. */
		rd->got += (size_t)res;
		io_ring_read(rd->ring, &rd->req, rd->fd, rd->buf + rd->got, rd->len - rd->got,
		             rd->off + rd->got);
		io_ring_submit(rd->ring);
		return;
	}
	if (res < 0)
		rd->res = res;
	else if (res == 0)
		rd->eof = true;
	else
		rd->got += (size_t)res;
	rd->busy = false;
}

/* Starts reading [off, off + len) into rd's buffer; rd must not be busy. */
static int seg_ra_start(struct seg_iter *it, struct seg_ra_read *rd, uint64_t off, size_t len)
{
	if (len > rd->cap) {
		uint8_t *nb = mem_alloc(len);
		if (!nb)
			return error_set(CESIUM_ENOMEM, "%s: out of memory for readahead",
			                 it->r->path);
		mem_free(rd->buf);
		rd->buf = nb;
		rd->cap = len;
	}
	memset(&rd->req, 0, sizeof(rd->req));
	rd->req.done = seg_ra_done;
	rd->ring = it->o.ring;
	rd->fd = it->r->fd;
	rd->off = off;
	rd->len = len;
	rd->got = 0;
	rd->res = 0;
	rd->eof = false;
	rd->busy = true;
	io_ring_read(rd->ring, &rd->req, rd->fd, rd->buf, len, off);
	io_ring_submit(rd->ring);
	if (it->o.ring_reads) /* read by tests while the compactor runs */
		atomic_fetch_add_explicit(it->o.ring_reads, 1, memory_order_relaxed);
	return 0;
}

/* Waits on the ring until rd's read has ended; its result. */
static int seg_ra_wait(const seg_reader *r, struct seg_ra_read *rd)
{
	while (rd->busy) {
		int rc = io_ring_poll(rd->ring, true);
		if (rc < 0)
			return rc; /* a broken ring; rd stays busy */
	}
	if (rd->res < 0)
		return error_set(error_from_errno(rd->res),
		                 "%s: read of %zu bytes at offset %llu: %s", r->path, rd->len,
		                 (ull)rd->off, strerror(-rd->res));
	if (rd->eof)
		return error_set(CESIUM_ECORRUPT,
		                 "%s: block at offset %llu: file truncated (%zu of %zu bytes)",
		                 r->path, (ull)rd->off, rd->got, rd->len);
	return 0;
}

/* Ring readahead: makes the window holding [h.off, h.off + need) current
 * (the prefetched one when it covers it, else a fresh read of want bytes),
 * then starts the read of the window after it, so the disk works while
 * the caller consumes this one. */
static const uint8_t *seg_iter_ring_readahead(struct seg_iter *it, struct seg_handle h,
                                              size_t need, size_t want, int *rc)
{
	seg_reader *r = it->r;
	struct seg_ra_read *nx = it->next;
	if (!nx) {
		nx = it->next = mem_zalloc(sizeof(*nx));
		if (!nx) {
			*rc = error_set(CESIUM_ENOMEM, "%s: out of memory for readahead", r->path);
			return NULL;
		}
	}
	bool covered = (nx->busy || nx->len) && h.off >= nx->off && h.off - nx->off <= nx->len &&
	               need <= nx->len - (h.off - nx->off);
	if (!covered) {
		/* A seek, or a block larger than the prefetch: the window in
		 * flight is of no use, but its buffer is the kernel's until it
		 * lands. */
		if (nx->busy && (*rc = seg_ra_wait(r, nx)) && nx->busy)
			return NULL;
		if ((*rc = seg_ra_start(it, nx, h.off, want)))
			return NULL;
	}
	*rc = seg_ra_wait(r, nx);
	if (*rc) {
		nx->len = 0;
		return NULL;
	}
	uint8_t *buf = it->ra;
	size_t cap = it->ra_cap;
	it->ra = nx->buf;
	it->ra_cap = nx->cap;
	it->ra_off = nx->off;
	it->ra_len = nx->len;
	nx->buf = buf;
	nx->cap = cap;
	nx->len = 0;
	uint64_t poff = it->ra_off + it->ra_len;
	if (poff < r->data_end) {
		size_t plen = it->o.readahead;
		if (plen > r->data_end - poff)
			plen = (size_t)(r->data_end - poff);
		/* Without the prefetch the scan still works: the next window
		 * is then read on demand. */
		if (seg_ra_start(it, nx, poff, plen))
			error_clear();
	}
	return it->ra + (h.off - it->ra_off);
}

/* Raw bytes of block h from the readahead buffer, refilled when needed. */
static const uint8_t *seg_iter_readahead(struct seg_iter *it, struct seg_handle h, int *rc)
{
	seg_reader *r = it->r;
	size_t need = (size_t)h.size + SEG_TRAILER_SIZE;
	if (it->ra && h.off >= it->ra_off && h.off - it->ra_off <= it->ra_len &&
	    need <= it->ra_len - (h.off - it->ra_off))
		return it->ra + (h.off - it->ra_off);
	size_t want = it->o.readahead > need ? it->o.readahead : need;
	if (want > r->data_end - h.off)
		want = (size_t)(r->data_end - h.off);
	if (want < need) {
		*rc = seg_corrupt(r, h.off, "block handle out of bounds");
		return NULL;
	}
	if (it->o.ring)
		return seg_iter_ring_readahead(it, h, need, want, rc);
	if (want > it->ra_cap) {
		uint8_t *nb = mem_alloc(want);
		if (!nb) {
			*rc = error_set(CESIUM_ENOMEM, "%s: out of memory for readahead", r->path);
			return NULL;
		}
		mem_free(it->ra);
		it->ra = nb;
		it->ra_cap = want;
	}
	it->ra_len = 0;
	if ((*rc = seg_pread(r, it->ra, want, h.off)))
		return NULL;
	it->ra_off = h.off;
	it->ra_len = want;
	return it->ra;
}

/* Loads the block the index iterator points at into the data iterator. */
static bool seg_iter_load(struct seg_iter *it)
{
	seg_reader *r = it->r;
	int rc = 0;
	if (it->have_blk)
		seg_block_release(r, &it->blk);
	it->have_blk = false;
	keys_slice v = iter_value(&it->index.base);
	struct seg_handle h = seg_get_handle(v.data); /* shape checked at open */
	cache_handle *ch = NULL;
	if (it->o.readahead == 0) {
		/* Point reads and short scans: the mapped path, as gets. */
		if ((rc = seg_load_block(r, h, it->o.fill_cache, &it->blk))) {
			seg_iter_fail(it, rc);
			return false;
		}
	} else if ((ch = r->cache ? cache_lookup(r->cache, r->id, h.off) : NULL)) {
		it->blk.h = ch;
		it->blk.data = cache_value(ch, &it->blk.len);
	} else {
		const uint8_t *raw = NULL;
		if (it->o.readahead > 0 && !(raw = seg_iter_readahead(it, h, &rc))) {
			seg_iter_fail(it, rc);
			return false;
		}
		if ((rc = seg_load_miss(r, h, it->o.fill_cache, raw, &it->blk))) {
			seg_iter_fail(it, rc);
			return false;
		}
	}
	it->have_blk = true;
	it->blk_off = h.off;
	block_iter_reset(&it->data, it->blk.data, it->blk.len);
	return true;
}

/* Loads the block the index stands on. Past the last block the iterator
 * ends; on a broken index it fails. False in both cases. */
static bool seg_iter_load_indexed(struct seg_iter *it)
{
	if (!iter_valid(&it->index.base)) {
		seg_iter_fail(it, iter_status(&it->index.base)
		                      ? seg_corrupt(it->r, it->r->data_end, "malformed index block")
		                      : 0);
		return false;
	}
	return seg_iter_load(it);
}

/* Version 2: sets it->value for the entry the iterator landed on, reading
 * it from the log when it is kept there. */
static void seg_iter_resolve(struct seg_iter *it)
{
	const seg_reader *r = it->r;
	keys_slice stored = iter_value(&it->data.base);
	struct seg_log_ref ref = {0};
	if (keys_ikey_kind(iter_key(&it->data.base)) != KEYS_KIND_VALUE) {
		it->value = keys_slice_of(NULL, 0);
		return;
	}
	int kept = seg_value_decode(r, it->blk_off, stored, &it->value, &ref);
	if (kept <= 0) {
		if (kept < 0)
			seg_iter_fail(it, kept);
		return;
	}
	if (ref.len > it->vcap) {
		uint8_t *p = mem_realloc(it->vbuf, ref.len);
		if (!p) {
			seg_iter_fail(it, error_set(CESIUM_ENOMEM,
			                            "%s: out of memory for a "
			                            "%u-byte value",
			                            r->path, ref.len));
			return;
		}
		it->vbuf = p;
		it->vcap = ref.len;
	}
	int rc = seg_read_log_value(r, &ref, it->vbuf);
	if (rc)
		seg_iter_fail(it, rc);
	else
		it->value = keys_slice_of(it->vbuf, ref.len);
}

/* Moves forward over exhausted (or empty) blocks. */
static void seg_iter_skip(struct seg_iter *it)
{
	while (!it->status) {
		if (it->have_blk && iter_valid(&it->data.base)) {
			if (it->r->props.value_log)
				seg_iter_resolve(it);
			return;
		}
		if (it->have_blk && iter_status(&it->data.base)) {
			seg_iter_fail(it, seg_corrupt(it->r, it->blk_off, "malformed data block"));
			return;
		}
		if (it->have_blk)
			iter_next(&it->index.base);
		if (!seg_iter_load_indexed(it))
			return;
		iter_seek_first(&it->data.base);
	}
}

static void seg_iter_seek_first(iter *base);

/* With o.lazy: whether a seek to target lands on the first entry. */
static bool seg_iter_answer_is_first(const struct seg_iter *it, keys_slice target)
{
	const struct seg_props *p = &it->r->props;
	return it->o.lazy && p->entries > 0 && keys_compare_ikey(target, p->smallest) <= 0;
}

static void seg_iter_load_lazy(iter *base)
{
	struct seg_iter *it = (struct seg_iter *)base;
	if (!it->lazy)
		return;
	it->lazy = false;
	it->o.lazy = false; /* this seek_first is the real one */
	seg_iter_seek_first(base);
	it->o.lazy = true;
}

/* Positions the index at the block of target and prefetches that block
 * (seg_prefetch_block). */
static void seg_iter_prepare_seek(iter *base, keys_slice target)
{
	struct seg_iter *it = (struct seg_iter *)base;
	it->prepared_len = 0;
	if (it->status || it->o.readahead != 0 || seg_iter_answer_is_first(it, target))
		return;
	if (target.len > it->prepared_cap) {
		uint8_t *p = mem_realloc(it->prepared, target.len);
		if (!p)
			return; /* the seek does it all */
		it->prepared = p;
		it->prepared_cap = target.len;
	}
	seg_index_seek(it->r, &it->index, target);
	if (!iter_valid(&it->index.base))
		return;
	memcpy(it->prepared, target.data, target.len);
	it->prepared_len = target.len;
	seg_prefetch_block(it->r, seg_get_handle(iter_value(&it->index.base).data));
}

static void seg_iter_seek(iter *base, keys_slice target)
{
	struct seg_iter *it = (struct seg_iter *)base;
	it->lazy = false;
	if (it->status)
		return;
	if (seg_iter_answer_is_first(it, target)) {
		it->prepared_len = 0;
		it->lazy = true;
		return;
	}
	bool prepared = it->prepared_len == target.len && target.len > 0 &&
	                memcmp(it->prepared, target.data, target.len) == 0;
	it->prepared_len = 0;
	if (!prepared)
		seg_index_seek(it->r, &it->index, target);
	if (!seg_iter_load_indexed(it))
		return;
	iter_seek(&it->data.base, target);
	seg_iter_skip(it);
}

static void seg_iter_seek_first(iter *base)
{
	struct seg_iter *it = (struct seg_iter *)base;
	it->prepared_len = 0; /* the index moves */
	it->lazy = false;
	if (it->status)
		return;
	if (it->o.lazy && it->r->props.entries > 0) {
		it->lazy = true;
		return;
	}
	iter_seek_first(&it->index.base);
	if (!seg_iter_load_indexed(it))
		return;
	iter_seek_first(&it->data.base);
	seg_iter_skip(it);
}

static bool seg_iter_valid(const iter *base)
{
	const struct seg_iter *it = (const struct seg_iter *)base;
	return !it->status && (it->lazy || (it->have_blk && iter_valid(&it->data.base)));
}

static void seg_iter_next(iter *base)
{
	struct seg_iter *it = (struct seg_iter *)base;
	it->prepared_len = 0; /* the index may move */
	seg_iter_load_lazy(base);
	if (!seg_iter_valid(base))
		return;
	iter_next(&it->data.base);
	seg_iter_skip(it);
}

static keys_slice seg_iter_key(const iter *base)
{
	const struct seg_iter *it = (const struct seg_iter *)base;
	return it->lazy ? it->r->props.smallest : iter_key(&it->data.base);
}

static keys_slice seg_iter_value(const iter *base)
{
	const struct seg_iter *it = (const struct seg_iter *)base;
	assert(!it->lazy); /* the caller loads first (iter.h) */
	return it->r->props.value_log ? it->value : iter_value(&it->data.base);
}

static int seg_iter_status(const iter *base)
{
	return ((const struct seg_iter *)base)->status;
}

static void seg_iter_destroy(iter *base)
{
	struct seg_iter *it = (struct seg_iter *)base;
	if (it->have_blk)
		seg_block_release(it->r, &it->blk);
	block_iter_cleanup(&it->index);
	block_iter_cleanup(&it->data);
	mem_free(it->ra);
	mem_free(it->prepared);
	mem_free(it->vbuf);
	if (it->next) {
		/* The kernel may still write into the prefetch buffer: wait
		 * for it; if the ring broke, leak it rather than free it. */
		if (it->next->busy)
			seg_ra_wait(it->r, it->next);
		if (!it->next->busy) {
			mem_free(it->next->buf);
			mem_free(it->next);
		}
	}
	seg_reader_unref(it->r);
	mem_free(it);
}

static const struct iter_ops seg_iter_ops = {
    .seek = seg_iter_seek,
    .seek_first = seg_iter_seek_first,
    .next = seg_iter_next,
    .valid = seg_iter_valid,
    .key = seg_iter_key,
    .value = seg_iter_value,
    .status = seg_iter_status,
    .destroy = seg_iter_destroy,
    .prepare_seek = seg_iter_prepare_seek,
    .load = seg_iter_load_lazy,
};

int seg_reader_iter_new(seg_reader *r, const struct seg_iter_opts *o, iter **out)
{
	struct seg_iter *it = mem_zalloc(sizeof(*it));
	if (!it)
		return error_set(CESIUM_ENOMEM, "%s: out of memory for an iterator", r->path);
	it->base.ops = &seg_iter_ops;
	it->r = r;
	seg_reader_ref(r);
	if (o)
		it->o = *o;
	else
		it->o.fill_cache = true;
	block_iter_init(&it->index, true);
	block_iter_reset(&it->index, r->index, r->index_len);
	block_iter_init(&it->data, true);
	*out = &it->base;
	return 0;
}
