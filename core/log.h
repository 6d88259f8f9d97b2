/*
 * log — record framing for the WAL and the MANIFEST (see log_format.h and
 * docs/format-log.md): encoding one record, and reading the records of a
 * whole file image held in memory.
 *
 * Encoding is a pure function. A log_reader borrows the buffer and the path
 * it is given (both must outlive it) and belongs to one thread. Payload
 * slices returned by log_reader_next point into that buffer.
 *
 * Reading stops at the first place where no valid record starts:
 *  - LOG_HEADER_SIZE zero bytes (or a shorter all-zero remainder): the clean
 *    end of the log;
 *  - a record that is incomplete, has a length above LOG_MAX_PAYLOAD, or
 *    fails its checksum: a torn tail if no valid record starts at any later
 *    byte offset, otherwise corruption (CESIUM_ECORRUPT, never skipped).
 */
#ifndef CESIUM_CORE_LOG_H
#define CESIUM_CORE_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keys.h"
#include "log_format.h"

/* Bytes a record with this payload takes on disk. */
size_t log_record_size(size_t payload_len);
/* Writes the framed record (log_record_size(len) bytes) at dst.
 * len must be <= LOG_MAX_PAYLOAD (asserted: callers check first). */
/* Writes the header of a record whose len payload bytes are already at
 * dst + LOG_HEADER_SIZE (so a caller can build the payload in place). */
void log_seal(uint8_t *dst, size_t len);
void log_encode(uint8_t *dst, const void *payload, size_t len);

struct log_reader {
	const uint8_t *buf;
	size_t size;
	const char *path;
	size_t off;             /* where the next record would start */
	uint64_t record_offset; /* file offset of the last record returned */
	uint64_t valid_end;     /* end of the last valid record */
	bool torn;              /* the log ended in a torn tail */
	uint64_t torn_offset;   /* where that torn record starts */
	int state;              /* 0 reading, 1 ended, <0 the error returned */
};

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
