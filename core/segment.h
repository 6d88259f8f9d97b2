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
 * compactors) through a reference count; its state is immutable after open
 * except the relaxed-atomic marks of blocks already verified. Uncompressed
 * blocks are read in place from a read-only mapping (checksum verified on
 * the reader's first read of each block), compressed ones with pread
 * (io/file.h) through the block cache.
 * Index, filter and props stay pinned in memory for the reader's lifetime.
 * A segment iterator belongs to one thread and holds a reader reference.
 */
#ifndef CESIUM_CORE_SEGMENT_H
#define CESIUM_CORE_SEGMENT_H

#include <stdatomic.h>

#include "iter.h"
#include "keys.h"

struct cache;
struct io_ring;

enum seg_compression {
	SEG_COMPRESSION_NONE = 0,
	SEG_COMPRESSION_ZSTD = 1,
};

struct seg_writer_opts {
	size_t block_size;      /* target uncompressed data block size; 0: 4096 */
	int bloom_bits_per_key; /* 0: no filter */
	enum seg_compression compression;
	int zstd_level; /* 0: zstd's default */
	/* Non-zero: the segment may refer to values kept in the log of this
	 * number (seg_writer_add_ref; format version 2). 0: version 1, every
	 * value in the segment. */
	uint64_t value_log;
};

/* Where a value kept in the segment's log lies, and its checksum: with
 * head 0, the XXH3_64 of the value; otherwise the checksum of the log
 * record that starts head bytes before the value and ends with it
 * (log_record_checksum). */
struct seg_log_ref {
	uint64_t offset;
	uint32_t len;
	uint64_t checksum;
	uint32_t head;
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
	uint64_t value_log; /* the log holding referred values; 0: none */
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
/* Appends a value entry whose value stays in the log (o.value_log must be
 * set, else CESIUM_EINVAL); same ordering rule. */
int seg_writer_add_ref(seg_writer *w, keys_slice ikey, const struct seg_log_ref *ref);
/* For a version 2 or 3 segment: decodes a stored value whose tag is not
 * SEG_VALUE_INLINE into *ref. NULL, or what is malformed. */
const char *seg_ref_decode(keys_slice stored, uint32_t version, struct seg_log_ref *ref);
/* Reads the value ref points at from the log open as log_fd into buf
 * (ref->len bytes) and checks its checksum: CESIUM_ECORRUPT for a short
 * read or a mismatch, naming log, the offset and seg; an I/O error. */
int seg_ref_read(int log_fd, const char *log, const char *seg, const struct seg_log_ref *ref,
                 void *buf);
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
/* Verify a mapped block's checksum on every read of it, not only on this
 * reader's first (checksum_every_read). Call before sharing r. */
void seg_reader_verify_every_read(seg_reader *r);
/* For a segment whose props name a value_log: takes over fd, open on that
 * log (path copied, for messages). Until then, reading a value kept there
 * fails with CESIUM_EIO. Call before sharing r. */
void seg_reader_attach_log(seg_reader *r, int fd, const char *path);
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
/* Asks for the filter's cache line of nskey ahead of a seg_reader_get, so
 * that several segments' filter misses overlap. Any thread. */
void seg_reader_prefetch_filter(const seg_reader *r, keys_slice nskey);

/*
 * Split lookups, for callers that read data blocks themselves (multiget
 * batches the reads of many keys on its own ring): seg_reader_locate
 * finds the one block that may hold nskey, the caller brings its loc->len
 * bytes (block and trailer) from seg_reader_fd at loc->off, and
 * seg_reader_get_in_block verifies and searches them. Together they give
 * exactly seg_reader_get's results, minus its block cache.
 */
struct seg_block_loc {
	uint64_t off;  /* file offset of the block */
	uint32_t size; /* stored bytes before the trailer */
	size_t len;    /* bytes to read: size plus the trailer */
};
/* 0 with *loc; CESIUM_ENOTFOUND when the filter or the index rules nskey
 * out; CESIUM_ECORRUPT (malformed index) or CESIUM_ENOMEM. No file I/O. */
int seg_reader_locate(seg_reader *r, keys_slice nskey, uint64_t snapshot_seq,
                      struct seg_block_loc *loc);
/* bytes: loc->len bytes read from the file at loc->off (only read here,
 * not kept). Results as seg_reader_get; CESIUM_ECORRUPT names the file and
 * offset on a checksum mismatch or a malformed block. */
int seg_reader_get_in_block(seg_reader *r, const struct seg_block_loc *loc, const void *bytes,
                            keys_slice nskey, uint64_t snapshot_seq, enum keys_kind *kind,
                            void **val, size_t *vlen);
/* The block's bytes in the reader's read-only mapping of the data region,
 * or NULL when it is not mapped. Touching them may fault pages in. Valid
 * while the caller holds the reader. */
const void *seg_reader_mapped(const seg_reader *r, const struct seg_block_loc *loc);
/* The reader's file descriptor, for reads of located blocks; owned by the
 * reader, valid while the caller holds it. */
int seg_reader_fd(const seg_reader *r);

struct seg_iter_opts {
	bool fill_cache;  /* insert blocks read into the cache */
	size_t readahead; /* >0: read this many bytes per read on sequential scans */
	/* Optional, with readahead: the caller's ring (io/ring.h). Windows are
	 * then read with asynchronous reads on it, the next one kept in
	 * flight while the current one is consumed; the iterator waits on
	 * the ring (io_ring_poll) only when the window it needs has not yet
	 * arrived. The iterator must then be used and destroyed on the
	 * ring's thread only, and the ring must outlive it. NULL: pread. */
	struct io_ring *ring;
	_Atomic uint64_t *ring_reads; /* optional: counts reads submitted on ring (relaxed) */
	/* A seek whose answer is the segment's first entry (the target at or
	 * below its smallest key, or seek_first) positions lazily: the key is
	 * the smallest from the props, the block is read on iter_load
	 * (iter.h). For a merge, which loads the child it returns. */
	bool lazy;
};

/* o may be NULL (fill the cache, no readahead). */
int seg_reader_iter_new(seg_reader *r, const struct seg_iter_opts *o, iter **out);
const struct seg_props *seg_reader_props(const seg_reader *r);
/* Bytes of index, filter and props held for the reader's lifetime. */
size_t seg_reader_pinned_bytes(const seg_reader *r);
/* Bytes of the data region mapped for in-place reads (0 when unmapped). */
size_t seg_reader_mapped_bytes(const seg_reader *r);
const char *seg_reader_path(const seg_reader *r);
uint64_t seg_reader_id(const seg_reader *r);

#endif
