/*
 * segment_format — the on-disk constants of a segment (SST) file; the
 * byte-by-byte spec is docs/format-segment.md.
 *
 *   [data block + trailer]...      sorted internal keys, ~block_size each
 *   [filter block + trailer]       bloom over nskeys (bloom.h); may be empty
 *   [props block + trailer]        struct seg_props, fixed layout below
 *   [index block + trailer]        per data block: last ikey → handle
 *   [footer]                       SEG_FOOTER_SIZE bytes
 *
 * All integers little-endian.
 */
#ifndef CESIUM_CORE_SEGMENT_FORMAT_H
#define CESIUM_CORE_SEGMENT_FORMAT_H

/* Block handle: where a block lives, trailer excluded. */
#define SEG_HANDLE_OFFSET 0  /* u64: file offset of the block's first byte */
#define SEG_HANDLE_SIZE_AT 8 /* u32: block bytes as stored (before the trailer) */
#define SEG_HANDLE_SIZE 12

/* Block trailer, right after every block. */
#define SEG_TRAILER_TYPE 0     /* u8: SEG_COMPRESS_* of the stored bytes */
#define SEG_TRAILER_CHECKSUM 1 /* u64: XXH3_64 of the stored bytes + the type byte */
#define SEG_TRAILER_SIZE 9

#define SEG_COMPRESS_NONE 0
#define SEG_COMPRESS_ZSTD 1 /* a single zstd frame with its content size */

/* Footer, the last SEG_FOOTER_SIZE bytes of the file. */
#define SEG_FOOTER_FILTER 0    /* handle: filter block */
#define SEG_FOOTER_PROPS 12    /* handle: props block */
#define SEG_FOOTER_INDEX 24    /* handle: index block */
#define SEG_FOOTER_VERSION 36  /* u32: SEG_FORMAT_VERSION */
#define SEG_FOOTER_MAGIC 40    /* u64: SEG_MAGIC */
#define SEG_FOOTER_CHECKSUM 48 /* u64: XXH3_64 of footer bytes [0, 48) */
#define SEG_FOOTER_SIZE 56

#define SEG_FORMAT_VERSION 1u
/* Version 2: a flush's segment that keeps large values in its log (see
 * "Values kept in the log" below). Everything else is as in version 1. */
#define SEG_FORMAT_VERSION_LOG_VALUES 2u
/* Version 3: as version 2, and a reference may name its log record's own
 * checksum (SEG_VALUE_IN_LOG_RECORD). What every writer writes where it
 * used to write version 2. */
#define SEG_FORMAT_VERSION_LOG_RECORDS 3u
#define SEG_MAGIC UINT64_C(0x314745534d555343) /* "CSUMSEG1" read as LE bytes */

/* Props block (uncompressed). */
#define SEG_PROPS_ENTRIES 0       /* u64: entries (versions and tombstones) */
#define SEG_PROPS_TOMBSTONES 8    /* u64: entries of kind KEYS_KIND_DELETE */
#define SEG_PROPS_MIN_SEQ 16      /* u64: smallest seq of any entry */
#define SEG_PROPS_MAX_SEQ 24      /* u64: largest seq of any entry */
#define SEG_PROPS_RAW_KEYS 32     /* u64: sum of internal key lengths */
#define SEG_PROPS_RAW_VALUES 40   /* u64: sum of value lengths */
#define SEG_PROPS_DATA_BLOCKS 48  /* u64: number of data blocks */
#define SEG_PROPS_COMPRESSION 56  /* u32: SEG_COMPRESS_* the writer was asked for */
#define SEG_PROPS_SMALLEST_LEN 60 /* u32: n, then n bytes of the smallest ikey */
#define SEG_PROPS_FIXED_SIZE 64   /* then smallest, u32 largest length, largest */
/* Version 2 only, after the largest key: u64 number of the log (<n>.wal)
 * that holds the values the segment refers to. */
#define SEG_PROPS_VALUE_LOG_SIZE 8

/*
 * Values kept in the log (versions 2 and 3): every value stored in a data block
 * starts with a tag byte. SEG_VALUE_INLINE: the value's bytes follow.
 * SEG_VALUE_IN_LOG: a reference follows, the value being in the segment's
 * log at a file offset; the reader checks the value against its checksum.
 */
#define SEG_VALUE_INLINE 0
#define SEG_VALUE_IN_LOG 1
#define SEG_REF_OFFSET 1    /* u64: file offset of the value's first byte */
#define SEG_REF_LENGTH 9    /* u32: value bytes */
#define SEG_REF_CHECKSUM 13 /* u64: XXH3_64 of the value */
#define SEG_REF_SIZE 21     /* tag included */
/* SEG_VALUE_IN_LOG_RECORD (version 3): the value is the last field of the
 * only entry of its log record. The same fields, the checksum being the
 * record's own (its header's, format-log.md), then SEG_REF_HEAD. */
#define SEG_VALUE_IN_LOG_RECORD 2
#define SEG_REF_HEAD 21        /* u32: bytes from the record's start to the value */
#define SEG_REF_RECORD_SIZE 25 /* tag included */

/* Index block entry value: a data block handle. Index blocks restart at
 * every entry so that a get finds its block by binary search alone. */
#define SEG_INDEX_RESTART_INTERVAL 1

/* A block larger than this is corruption (bounds decompression). */
#define SEG_MAX_BLOCK_SIZE (256u * 1024u * 1024u)

#endif
