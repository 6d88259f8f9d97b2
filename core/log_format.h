/*
 * log_format — the on-disk framing of one log record, shared by the
 * write-ahead log (<n>.wal) and the MANIFEST. Byte-by-byte description and
 * the torn-tail rule: docs/format-log.md.
 *
 *   offset 0   u32 LE  payload length in bytes (0 ..= LOG_MAX_PAYLOAD)
 *   offset 4   u64 LE  XXH3_64bits over bytes [0, 4 + length): the four
 *                      length bytes followed by the payload
 *   offset 12  payload
 *
 * Records follow each other with no padding. LOG_HEADER_SIZE zero bytes
 * where a header would start mark the end of the log: files are
 * preallocated with zeros, and a valid header is never all zero because
 * the checksum of any length field is not zero (a record with a zero
 * checksum would fail verification anyway).
 */
#ifndef CESIUM_CORE_LOG_FORMAT_H
#define CESIUM_CORE_LOG_FORMAT_H

/* Offset of the u32 LE payload length. */
#define LOG_LENGTH_OFFSET 0
/* Offset of the u64 LE XXH3_64bits checksum over length bytes + payload. */
#define LOG_CHECKSUM_OFFSET 4
/* Bytes before the payload. */
#define LOG_HEADER_SIZE 12
/* Largest payload accepted: a length field above this is garbage, never a
 * record, so a flipped high bit cannot make the reader trust 4 GiB. */
#define LOG_MAX_PAYLOAD (1u << 30)

#endif
