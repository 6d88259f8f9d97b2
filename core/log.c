#include "log.h"

#include <assert.h>
#include <fcntl.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "error.h"
#include "file.h"
#include "mem.h"

/* Payloads up to this size are hashed from a stack copy in one shot; the
 * streaming state costs more than the copy for small WAL records. */
#define LOG_SMALL_HASH 256

size_t log_record_size(size_t payload_len)
{
	return LOG_HEADER_SIZE + payload_len;
}

static uint64_t log_checksum(const uint8_t len_bytes[4], const uint8_t *payload, size_t len)
{
	if (len <= LOG_SMALL_HASH) {
		uint8_t tmp[4 + LOG_SMALL_HASH];
		memcpy(tmp, len_bytes, 4);
		if (len)
			memcpy(tmp + 4, payload, len);
		return XXH3_64bits(tmp, 4 + len);
	}
	XXH3_state_t st;
	XXH3_64bits_reset(&st);
	XXH3_64bits_update(&st, len_bytes, 4);
	XXH3_64bits_update(&st, payload, len);
	return XXH3_64bits_digest(&st);
}

void log_seal(uint8_t *dst, size_t len)
{
	assert(len <= LOG_MAX_PAYLOAD);
	uint8_t *body = dst + LOG_HEADER_SIZE;
	keys_put_u32le(dst + LOG_LENGTH_OFFSET, (uint32_t)len);
	keys_put_u64le(dst + LOG_CHECKSUM_OFFSET, log_checksum(dst + LOG_LENGTH_OFFSET, body, len));
}

uint64_t log_stored_checksum(const uint8_t *rec)
{
	return keys_get_u64le(rec + LOG_CHECKSUM_OFFSET);
}

uint64_t log_record_checksum(const uint8_t *head, size_t head_len, const void *rest,
                             size_t rest_len)
{
	assert(head_len >= LOG_HEADER_SIZE);
	/* XXH3's streaming digest equals its one-shot digest of the
	 * concatenation, which is what log_checksum computes. */
	XXH3_state_t st;
	XXH3_64bits_reset(&st);
	XXH3_64bits_update(&st, head + LOG_LENGTH_OFFSET, 4);
	XXH3_64bits_update(&st, head + LOG_HEADER_SIZE, head_len - LOG_HEADER_SIZE);
	XXH3_64bits_update(&st, rest, rest_len);
	return XXH3_64bits_digest(&st);
}

void log_encode(uint8_t *dst, const void *payload, size_t len)
{
	if (len)
		memcpy(dst + LOG_HEADER_SIZE, payload, len);
	log_seal(dst, len);
}

void log_file_slot_encode(uint8_t *dst, uint64_t synced, uint64_t prev_number, uint64_t prev_end)
{
	keys_put_u64le(dst + LOG_FILE_PREV_NUMBER_OFFSET, prev_number);
	keys_put_u64le(dst + LOG_FILE_PREV_END_OFFSET, prev_end);
	keys_put_u32le(dst, LOG_FILE_MAGIC);
	keys_put_u32le(dst + 4, LOG_FILE_VERSION);
	keys_put_u64le(dst + LOG_FILE_SYNCED_OFFSET, synced);
	keys_put_u64le(dst + LOG_FILE_CHECKSUM_OFFSET, XXH3_64bits(dst, LOG_FILE_CHECKSUM_OFFSET));
}

enum log_slot {
	LOG_SLOT_NONE,    /* no magic: not a header */
	LOG_SLOT_DAMAGED, /* magic, but the checksum fails */
	LOG_SLOT_VALID,
};

static enum log_slot log_slot_at(const uint8_t *buf, size_t size, size_t off, uint32_t *version,
                                 uint64_t *synced, uint64_t prev[2])
{
	if (size < off + LOG_FILE_SLOT_SIZE)
		return LOG_SLOT_NONE;
	const uint8_t *s = buf + off;
	if (keys_get_u32le(s) != LOG_FILE_MAGIC)
		return LOG_SLOT_NONE;
	if (XXH3_64bits(s, LOG_FILE_CHECKSUM_OFFSET) !=
	    keys_get_u64le(s + LOG_FILE_CHECKSUM_OFFSET))
		return LOG_SLOT_DAMAGED;
	*version = keys_get_u32le(s + 4);
	*synced = keys_get_u64le(s + LOG_FILE_SYNCED_OFFSET);
	prev[0] = keys_get_u64le(s + LOG_FILE_PREV_NUMBER_OFFSET);
	prev[1] = keys_get_u64le(s + LOG_FILE_PREV_END_OFFSET);
	return LOG_SLOT_VALID;
}

enum log_check {
	LOG_OK,
	LOG_INCOMPLETE_HEADER,
	LOG_BAD_LENGTH,
	LOG_INCOMPLETE_PAYLOAD,
	LOG_BAD_CHECKSUM,
};

/* Whether a valid record starts at off; never reads outside [0, size). */
static enum log_check log_check_at(const uint8_t *buf, size_t size, size_t off, uint32_t *len_out)
{
	if (off > size || size - off < LOG_HEADER_SIZE)
		return LOG_INCOMPLETE_HEADER;
	const uint8_t *h = buf + off;
	uint32_t len = keys_get_u32le(h + LOG_LENGTH_OFFSET);
	*len_out = len;
	if (len > LOG_MAX_PAYLOAD)
		return LOG_BAD_LENGTH;
	if (size - off - LOG_HEADER_SIZE < len)
		return LOG_INCOMPLETE_PAYLOAD;
	uint64_t want = keys_get_u64le(h + LOG_CHECKSUM_OFFSET);
	if (log_checksum(h + LOG_LENGTH_OFFSET, h + LOG_HEADER_SIZE, len) != want)
		return LOG_BAD_CHECKSUM;
	return LOG_OK;
}

static bool log_all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static const char *log_check_name(enum log_check c)
{
	switch (c) {
	case LOG_INCOMPLETE_HEADER:
		return "incomplete record header";
	case LOG_BAD_LENGTH:
		return "record length above the 1 GiB limit";
	case LOG_INCOMPLETE_PAYLOAD:
		return "record runs past the end of the file";
	case LOG_BAD_CHECKSUM:
		return "record checksum mismatch";
	default:
		return "valid record";
	}
}

void log_reader_init(struct log_reader *r, const uint8_t *buf, size_t size, const char *path)
{
	memset(r, 0, sizeof(*r));
	r->buf = buf;
	r->size = size;
	r->path = path ? path : "(log)";

	uint32_t va = 0, vb = 0, len;
	uint64_t sa = 0, sb = 0, pa[2] = {0, 0}, pb[2] = {0, 0};
	enum log_slot a = log_slot_at(buf, size, LOG_FILE_SLOT_A, &va, &sa, pa);
	enum log_slot b = log_slot_at(buf, size, LOG_FILE_SLOT_B, &vb, &sb, pb);
	/* Slot B alone counts only where no record starts at 0: inside a
	 * headerless log, offset 512 is some record's bytes. */
	bool record_at_0 = log_check_at(buf, size, 0, &len) == LOG_OK;
	if (a == LOG_SLOT_NONE && (b == LOG_SLOT_NONE || record_at_0))
		return; /* a headerless log (MANIFEST, or a version 1 WAL) */
	if (a != LOG_SLOT_VALID && b != LOG_SLOT_VALID) {
		/* Both copies damaged. The header was durable before the
		 * first record was appended, so with no record after it this
		 * is a creation cut short: an empty log. */
		size_t start = size < LOG_FILE_HEADER_SIZE ? size : LOG_FILE_HEADER_SIZE;
		if (log_all_zero(buf + start, size - start)) {
			r->off = start;
			r->state = 1;
		} else {
			r->state = error_set(CESIUM_ECORRUPT,
			                     "%s: offset 0: both copies of the log header are "
			                     "damaged",
			                     r->path);
		}
		return;
	}
	/* Every value ever stored was already durable when stored, so the
	 * larger of two valid copies is still a safe watermark. */
	uint32_t version = a == LOG_SLOT_VALID ? va : vb;
	uint64_t synced = 0;
	if (a == LOG_SLOT_VALID)
		synced = sa;
	if (b == LOG_SLOT_VALID && sb > synced) {
		synced = sb;
		version = vb;
	}
	if (version != LOG_FILE_VERSION) {
		r->state =
		    error_set(CESIUM_ENOTSUP, "%s: offset 4: log format version %u, expected %u",
		              r->path, version, LOG_FILE_VERSION);
		return;
	}
	r->has_header = true;
	r->synced_end = synced;
	/* Both copies carry the same link, set once at creation. */
	r->prev_number = a == LOG_SLOT_VALID ? pa[0] : pb[0];
	r->prev_end = a == LOG_SLOT_VALID ? pa[1] : pb[1];
	r->off = LOG_FILE_HEADER_SIZE;
	if (r->off > size)
		r->off = size;
	r->valid_end = r->off;
}

int log_reader_next(struct log_reader *r, keys_slice *payload)
{
	if (r->state != 0)
		return r->state < 0 ? r->state : 0;

	size_t off = r->off;
	size_t left = r->size - off;
	size_t hdr = left < LOG_HEADER_SIZE ? left : LOG_HEADER_SIZE;
	uint32_t len = 0;
	bool zero = log_all_zero(r->buf + off, hdr);
	enum log_check c = zero ? LOG_OK : log_check_at(r->buf, r->size, off, &len);
	if (r->has_header && c != LOG_OK)
		goto bad_with_header;
	if (zero) {
		if (r->has_header && off < r->synced_end) {
			r->state = error_set(
			    CESIUM_ECORRUPT,
			    "%s: offset %llu: %s inside the synced part of the log "
			    "(synced up to offset %llu)",
			    r->path, (unsigned long long)off, hdr ? "zeros" : "end of file",
			    (unsigned long long)r->synced_end);
			return r->state;
		}
		/* Clean end: nothing written here yet (or exactly at EOF). */
		r->valid_end = off;
		r->state = 1;
		return 0;
	}
	if (c == LOG_OK) {
		*payload = keys_slice_of(r->buf + off + LOG_HEADER_SIZE, len);
		r->record_offset = off;
		r->off = off + LOG_HEADER_SIZE + len;
		r->valid_end = r->off;
		return 1;
	}

	/* Headerless: a bad record is a torn tail only if nothing valid follows it. The
	 * search starts one byte on, not after the claimed length, because
	 * the length itself may be what was damaged. */
	for (size_t o = off + 1; o + LOG_HEADER_SIZE <= r->size; o++) {
		/* Preallocated zeros are the common tail: an all-zero
		 * header is never valid (the checksum of a zero length is
		 * not zero), so skip it without hashing. */
		if (log_all_zero(r->buf + o, LOG_HEADER_SIZE))
			continue;
		uint32_t l2;
		if (log_check_at(r->buf, r->size, o, &l2) == LOG_OK) {
			r->state = error_set(CESIUM_ECORRUPT,
			                     "%s: offset %llu: %s, but a valid record follows at "
			                     "offset %llu: the log is corrupt in the middle",
			                     r->path, (unsigned long long)off, log_check_name(c),
			                     (unsigned long long)o);
			return r->state;
		}
	}
	goto torn;

bad_with_header:
	/* Below the watermark the bytes were durable: damage there is real.
	 * At or past it they may be a power loss's out-of-order pages, and
	 * whatever valid records follow were never synced: dropping them
	 * keeps replay a prefix. */
	if (off < r->synced_end) {
		r->state = error_set(CESIUM_ECORRUPT,
		                     "%s: offset %llu: %s inside the synced part of the log "
		                     "(synced up to offset %llu)",
		                     r->path, (unsigned long long)off, log_check_name(c),
		                     (unsigned long long)r->synced_end);
		return r->state;
	}
torn:
	r->torn = true;
	r->torn_offset = off;
	r->valid_end = off;
	r->state = 1;
	return 0;
}

int log_read_file(const char *path, uint8_t **buf, size_t *size)
{
	uint8_t *b = NULL;
	int rc;
	int fd = io_open(path, O_RDONLY, 0);
	if (fd < 0) {
		rc = error_set(error_from_errno(fd), "%s: cannot open: %s", path, strerror(-fd));
		goto out;
	}
	int64_t fsize = io_file_size(fd);
	if (fsize < 0) {
		rc = error_set(error_from_errno((int)fsize), "%s: cannot stat: %s", path,
		               strerror((int)-fsize));
		goto out;
	}
	if ((uint64_t)fsize > SIZE_MAX - 1) {
		rc = error_set(CESIUM_ENOMEM, "%s: file of %lld bytes is too large to read", path,
		               (long long)fsize);
		goto out;
	}
	b = mem_alloc((size_t)fsize + 1);
	if (!b) {
		rc = error_set(CESIUM_ENOMEM, "%s: no memory for %lld bytes", path,
		               (long long)fsize);
		goto out;
	}
	ssize_t n = io_pread_full(fd, b, (size_t)fsize, 0);
	if (n < 0) {
		rc = error_set(error_from_errno((int)n), "%s: read failed: %s", path,
		               strerror((int)-n));
		goto out;
	}
	/* A file that shrank under us is read as what is there now. */
	*buf = b;
	*size = (size_t)n;
	b = NULL;
	rc = 0;
out:
	mem_free(b);
	io_close(fd);
	return rc;
}
