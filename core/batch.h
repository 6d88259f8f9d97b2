/*
 * batch — the write batch: an encoded list of puts and deletes applied
 * atomically. The encoding is also the payload of a WAL record:
 *
 *   header  [seq: u64 LE][count: u32 LE]           (BATCH_HEADER_SIZE)
 *   entry   [kind: u8]                              KEYS_KIND_VALUE or _DELETE
 *           [nskey length: varint32][nskey]         ns (8 bytes BE) ++ user key
 *           [value length: varint32][value]         only for KEYS_KIND_VALUE
 *
 * Entry i gets sequence number seq + i. varint32: 7 bits per byte, low
 * group first, high bit set on every byte but the last; at most 5 bytes.
 *
 * Ownership: a batch owns its buffer. Pointers from batch_data stay valid
 * until the batch is next modified or freed.
 * Threads: a batch belongs to one thread at a time; batch_iterate and the
 * header accessors are pure and work on any buffer.
 */
#ifndef CESIUM_CORE_BATCH_H
#define CESIUM_CORE_BATCH_H

#include "cesium.h"
#include "keys.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BATCH_HEADER_SIZE 12 /* seq u64 + count u32 */
#define BATCH_INLINE_SIZE 256 /* bytes held without a heap buffer */

struct cesium_batch {
	uint8_t *rep;  /* inline_buf or a heap buffer */
	size_t len;    /* bytes used, header included */
	size_t cap;    /* bytes available at rep */
	uint8_t inline_buf[BATCH_INLINE_SIZE];
};

/* Encoded bytes of the batch (header included) and their length. */
const uint8_t *batch_data(const cesium_batch *b);
size_t batch_size(const cesium_batch *b);
uint32_t batch_count(const cesium_batch *b);
/* Reads or writes the header's sequence number in an encoded batch of at
 * least BATCH_HEADER_SIZE bytes. */
void batch_set_seq(uint8_t *rep, uint64_t seq);
uint64_t batch_get_seq(const uint8_t *rep);

/* Appends src's entries to dst (group commit); the counts add. CESIUM_EINVAL
 * when the count would overflow, CESIUM_ENOMEM. */
int batch_append(cesium_batch *dst, const cesium_batch *src);

/*
 * One entry, not yet encoded: a single put or delete travels to the write
 * group's leader this way, and the leader encodes it straight into the log
 * record, so that its value is copied once on the way to the log, not
 * twice (db.c).
 */
struct batch_entry_ref {
	enum keys_kind kind;
	uint64_t ns;
	const void *key;
	size_t klen;
	const void *val; /* ignored for KEYS_KIND_DELETE */
	size_t vlen;
};
/* The exact bytes batch_encode_entry writes for e. */
size_t batch_entry_size(const struct batch_entry_ref *e);
/* Encodes e at p, as one entry of a batch; returns its size. e must pass
 * the checks of cesium_batch_put/delete (db.c checks key and value). */
size_t batch_encode_entry(uint8_t *p, const struct batch_entry_ref *e);

/* Called for each entry; a non-zero return stops the walk and is returned. */
typedef int (*batch_entry_fn)(void *ctx, uint64_t seq, enum keys_kind kind, keys_slice nskey,
                              keys_slice value);

/*
 * Validates the whole encoding first (header, every entry, lengths within
 * the limits, count, no trailing bytes, sequence range), then calls fn for
 * each entry in order, so a corrupt batch applies nothing. CESIUM_ECORRUPT
 * with a message giving the offset; never reads outside [rep, rep+len).
 */
int batch_iterate(const uint8_t *rep, size_t len, batch_entry_fn fn, void *ctx);

#endif
