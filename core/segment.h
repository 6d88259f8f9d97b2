/*
 * segment — the writer and reader of segment (SST) files, the sorted
 * immutable files flushes and compactions produce (format:
 * segment_format.h, docs/format-segment.md).
 *
 * Writer: owned by one actor (flush or compactor). It does no I/O: encoded
 * bytes accumulate in an output buffer that the owner takes with
 * seg_writer_take and writes asynchronously at the given file offset.
 *
 * Reader: opened once, shared by every thread (gets, iterators,
 * compactors) through a reference count; all its state is immutable after
 * open, and blocks are read with pread (io/file.h) through the block cache.
 * Index, filter and props stay pinned in memory for the reader's lifetime.
 * A segment iterator belongs to one thread and holds a reader reference.
 */
#ifndef CESIUM_CORE_SEGMENT_H
#define CESIUM_CORE_SEGMENT_H

#include "iter.h"
#include "keys.h"

struct cache;

enum seg_compression {
	SEG_COMPRESSION_NONE = 0,
	SEG_COMPRESSION_ZSTD = 1,
};

struct seg_writer_opts {
	size_t block_size;      /* target uncompressed data block size; 0: 4096 */
	int bloom_bits_per_key; /* 0: no filter */
	enum seg_compression compression;
	int zstd_level; /* 0: zstd's default */
};

struct seg_props {
	uint64_t entries;
	uint64_t tombstones;
	keys_slice smallest; /* internal keys; owned by the writer/reader */
	keys_slice largest;
	uint64_t min_seq, max_seq;
	uint64_t raw_key_bytes, raw_value_bytes;
	uint64_t data_blocks;
	uint32_t compression;
	uint64_t file_size;
};

/* Output handed over by seg_writer_take; free data with mem_free. */
struct seg_out {
	void *data;
	size_t len;
	uint64_t off; /* file offset of data[0] */
};

typedef struct seg_writer seg_writer;

int seg_writer_new(const struct seg_writer_opts *o, seg_writer **out);
/* Appends an entry. Keys must be strictly increasing in internal-key order
 * (CESIUM_EINVAL otherwise, and for a key shorter than its trailer). */
int seg_writer_add(seg_writer *w, keys_slice ikey, keys_slice value);
/* When at least min_bytes (0: any, but at least 1) are pending, hands them
 * over and returns true. */
bool seg_writer_take(seg_writer *w, size_t min_bytes, struct seg_out *out);
/* Flushes the last data block and appends filter, props, index and footer
 * to the pending output. No add after it. */
int seg_writer_finish(seg_writer *w);
/* Bytes produced so far (taken and pending); the file size after finish. */
uint64_t seg_writer_file_size(const seg_writer *w);
/* Valid until seg_writer_free; complete after finish. */
const struct seg_props *seg_writer_props(const seg_writer *w);
void seg_writer_free(seg_writer *w);

typedef struct seg_reader seg_reader;

/* Takes over fd (closed on failure too). path is copied for messages; id
 * keys this segment's blocks in cache (which may be NULL). */
int seg_reader_open(int fd, const char *path, uint64_t id, struct cache *block_cache,
                    seg_reader **out);
void seg_reader_ref(seg_reader *r);
void seg_reader_unref(seg_reader *r);
/*
 * The newest version of nskey with seq <= snapshot_seq: 0 with *kind, and
 * for a value *val (mem_alloc'd, never NULL, even for vlen 0) and *vlen;
 * for a tombstone *val is NULL. CESIUM_ENOTFOUND when no version is here.
 */
int seg_reader_get(seg_reader *r, keys_slice nskey, uint64_t snapshot_seq, enum keys_kind *kind,
                   void **val, size_t *vlen);
bool seg_reader_may_contain(seg_reader *r, keys_slice nskey);

struct seg_iter_opts {
	bool fill_cache;  /* insert blocks read into the cache */
	size_t readahead; /* >0: read this many bytes per pread on sequential scans */
};

/* o may be NULL (fill the cache, no readahead). */
int seg_reader_iter_new(seg_reader *r, const struct seg_iter_opts *o, iter **out);
const struct seg_props *seg_reader_props(const seg_reader *r);
/* Bytes of index, filter and props held for the reader's lifetime. */
size_t seg_reader_pinned_bytes(const seg_reader *r);
const char *seg_reader_path(const seg_reader *r);
uint64_t seg_reader_id(const seg_reader *r);

#endif
