/*
 * log — record framing for the WAL and the MANIFEST (see log_format.h and
 * docs/format-log.md): encoding one record, and reading the records of a
 * whole file image held in memory.
 *
 * Encoding is a pure function. A log_reader borrows the buffer and the path
 * it is given (both must outlive it) and belongs to one thread. Payload
 * slices returned by log_reader_next point into that buffer.
 *
 * A log file may open with a file header (the WAL writes one, the MANIFEST
 * does not): LOG_FILE_HEADER_SIZE bytes holding two copies of a slot that
 * records the synced watermark, the offset below which every record is
 * known durable. The reader recognizes it by a valid slot.
 *
 * Reading stops at the first place where no valid record starts:
 *  - LOG_HEADER_SIZE zero bytes (or a shorter all-zero remainder): the clean
 *    end of the log;
 *  - a record that is incomplete, has a length above LOG_MAX_PAYLOAD, or
 *    fails its checksum.
 * With a file header, such a stop at or past the watermark is a torn tail
 * (later records, never synced, are discarded so replay stays a prefix) and
 * one below it, zeros and end of file included, is corruption. Without one,
 * a bad record is a torn tail if no valid record starts at any later byte
 * offset, otherwise corruption. Corruption is CESIUM_ECORRUPT naming path
 * and offset, never skipped.
 */
#ifndef CESIUM_CORE_LOG_H
#define CESIUM_CORE_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keys.h"
#include "log_format.h"

/*
 * The file header (format version 2 of the WAL; version 1 had none).
 * Each slot, at LOG_FILE_SLOT_A and LOG_FILE_SLOT_B:
 *   +0  u32 LE  LOG_FILE_MAGIC: above LOG_MAX_PAYLOAD, so no headerless log
 *               can start with it (its first record's length is <= the cap)
 *   +4  u32 LE  LOG_FILE_VERSION
 *   +8  u64 LE  synced: every record below this file offset is durable
 *   +16 u64 LE  prev_number: the log replayed just before this one (0:
 *               none known); fixed at creation
 *   +24 u64 LE  prev_end: the offset that log's replay reached, or its
 *               size when it was sealed; fixed at creation
 *   +32 u64 LE  XXH3_64bits over bytes [+0, +32) of the slot
 * The slots are 512 bytes apart, in different sectors, and are written one
 * after the other: an interrupted write damages at most one. Records start
 * at LOG_FILE_HEADER_SIZE.
 */
#define LOG_FILE_HEADER_SIZE 4096
#define LOG_FILE_SLOT_A 0
#define LOG_FILE_SLOT_B 512
#define LOG_FILE_SLOT_SIZE 40
#define LOG_FILE_MAGIC 0xC5A1E5D2u
#define LOG_FILE_VERSION 2u
#define LOG_FILE_SYNCED_OFFSET 8
#define LOG_FILE_PREV_NUMBER_OFFSET 16
#define LOG_FILE_PREV_END_OFFSET 24
#define LOG_FILE_CHECKSUM_OFFSET 32

/* Encodes one header slot (LOG_FILE_SLOT_SIZE bytes) at dst. */
void log_file_slot_encode(uint8_t *dst, uint64_t synced, uint64_t prev_number, uint64_t prev_end);

/* Bytes a record with this payload takes on disk. */
size_t log_record_size(size_t payload_len);
/* Writes the framed record (log_record_size(len) bytes) at dst.
 * len must be <= LOG_MAX_PAYLOAD (asserted: callers check first). */
/* Writes the header of a record whose len payload bytes are already at
 * dst + LOG_HEADER_SIZE (so a caller can build the payload in place). */
void log_seal(uint8_t *dst, size_t len);
void log_encode(uint8_t *dst, const void *payload, size_t len);
/* The checksum stored in the header of the record that starts at rec. */
uint64_t log_stored_checksum(const uint8_t *rec);
/* The checksum of a record held in two pieces: its first head_len bytes
 * (>= LOG_HEADER_SIZE, the header included) and the rest_len after them.
 * It equals log_stored_checksum for an intact record. */
uint64_t log_record_checksum(const uint8_t *head, size_t head_len, const void *rest,
                             size_t rest_len);

struct log_reader {
	const uint8_t *buf;
	size_t size;
	const char *path;
	size_t off;             /* where the next record would start */
	uint64_t record_offset; /* file offset of the last record returned */
	uint64_t valid_end;     /* end of the last valid record */
	bool torn;              /* the log ended in a torn tail */
	uint64_t torn_offset;   /* where that torn record starts */
	bool has_header;        /* the file opens with a file header */
	uint64_t synced_end;    /* its watermark (with has_header) */
	uint64_t prev_number;   /* its link to the log before (0: none) */
	uint64_t prev_end;
	int state; /* 0 reading, 1 ended, <0 the error returned */
};

/* Recognizes a file header at the start of buf; a header whose both slots
 * are damaged while records follow makes the first log_reader_next return
 * CESIUM_ECORRUPT. */
void log_reader_init(struct log_reader *r, const uint8_t *buf, size_t size, const char *path);
/* 1: *payload is the next record. 0: end of the log (clean, or a torn tail,
 * see r->torn). CESIUM_ECORRUPT: a bad record followed by valid data; the
 * message names the path and offset. Once it returned 0 or an error, it
 * keeps returning the same. */
int log_reader_next(struct log_reader *r, keys_slice *payload);

/* Reads the whole file into a new buffer (free with mem_free; non-NULL even
 * for an empty file). CESIUM_E* with a message naming the path. */
int log_read_file(const char *path, uint8_t **buf, size_t *size);

#endif
