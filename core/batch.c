#include "batch.h"

#include "error.h"
#include "mem.h"

#include <inttypes.h>
#include <string.h>

#define BATCH_MAX_NSKEY (KEYS_NS_SIZE + CESIUM_MAX_KEY_SIZE)

static void batch_reset(cesium_batch *b)
{
	memset(b->rep, 0, BATCH_HEADER_SIZE);
	b->len = BATCH_HEADER_SIZE;
}

static void batch_init_inline(cesium_batch *b)
{
	b->rep = b->inline_buf;
	b->cap = sizeof(b->inline_buf);
	batch_reset(b);
}

static void batch_set_count(uint8_t *rep, uint32_t n)
{
	keys_put_u32le(rep + 8, n);
}

const uint8_t *batch_data(const cesium_batch *b)
{
	return b->rep;
}

size_t batch_size(const cesium_batch *b)
{
	return b->len;
}

uint32_t batch_count(const cesium_batch *b)
{
	return keys_get_u32le(b->rep + 8);
}

void batch_set_seq(uint8_t *rep, uint64_t seq)
{
	keys_put_u64le(rep, seq);
}

uint64_t batch_get_seq(const uint8_t *rep)
{
	return keys_get_u64le(rep);
}

/* Makes room for `more` bytes; doubles so that appends are amortised O(1). */
static int batch_reserve(cesium_batch *b, size_t more)
{
	if (more > SIZE_MAX / 2 - b->len)
		return error_set(CESIUM_ENOMEM, "batch: size overflow");
	size_t need = b->len + more;
	if (need <= b->cap)
		return 0;
	size_t cap = b->cap * 2;
	while (cap < need)
		cap *= 2;
	uint8_t *p;
	if (b->rep == b->inline_buf) {
		p = mem_alloc(cap);
		if (p)
			memcpy(p, b->rep, b->len);
	} else {
		p = mem_realloc(b->rep, cap);
	}
	if (!p)
		return error_set(CESIUM_ENOMEM, "batch: out of memory growing to %zu bytes", cap);
	b->rep = p;
	b->cap = cap;
	return 0;
}

static int batch_check(const char *what, const void *key, size_t klen, const void *val,
                       size_t vlen, enum keys_kind kind)
{
	if (!key)
		return error_set(CESIUM_EINVAL, "%s: NULL key", what);
	if (klen == 0 || klen > CESIUM_MAX_KEY_SIZE)
		return error_set(CESIUM_EINVAL, "%s: key length %zu outside 1..%u", what, klen,
		                 CESIUM_MAX_KEY_SIZE);
	if (kind == KEYS_KIND_VALUE) {
		if (vlen > CESIUM_MAX_VALUE_SIZE)
			return error_set(CESIUM_EINVAL, "%s: value length %zu above %u", what, vlen,
			                 CESIUM_MAX_VALUE_SIZE);
		if (!val && vlen)
			return error_set(CESIUM_EINVAL, "%s: NULL value with length %zu", what,
			                 vlen);
	}
	return 0;
}

size_t batch_entry_size(const struct batch_entry_ref *e)
{
	size_t nsk = KEYS_NS_SIZE + e->klen;
	size_t n = 1 + keys_varint_size(nsk) + nsk;
	if (e->kind == KEYS_KIND_VALUE)
		n += keys_varint_size(e->vlen) + e->vlen;
	return n;
}

size_t batch_encode_entry(uint8_t *p, const struct batch_entry_ref *e)
{
	uint8_t *start = p;
	size_t nsk = KEYS_NS_SIZE + e->klen;
	*p++ = (uint8_t)e->kind;
	p += keys_put_varint(p, (uint32_t)nsk);
	keys_make_nskey(p, e->ns, e->key, e->klen);
	p += nsk;
	if (e->kind == KEYS_KIND_VALUE) {
		p += keys_put_varint(p, (uint32_t)e->vlen);
		if (e->vlen)
			memcpy(p, e->val, e->vlen);
		p += e->vlen;
	}
	return (size_t)(p - start);
}

static int batch_add(cesium_batch *b, enum keys_kind kind, uint64_t ns, const void *key,
                     size_t klen, const void *val, size_t vlen)
{
	uint32_t count = batch_count(b);
	if (count == UINT32_MAX)
		return error_set(CESIUM_EINVAL, "batch: more than %" PRIu32 " entries", count);
	struct batch_entry_ref e = {kind, ns, key, klen, val, vlen};
	int rc = batch_reserve(b, batch_entry_size(&e));
	if (rc)
		return rc;
	b->len += batch_encode_entry(b->rep + b->len, &e);
	batch_set_count(b->rep, count + 1);
	return 0;
}

int cesium_batch_new(cesium_batch **out)
{
	if (!out)
		return error_set(CESIUM_EINVAL, "cesium_batch_new: NULL out");
	*out = NULL;
	cesium_batch *b = mem_alloc(sizeof(*b));
	if (!b)
		return error_set(CESIUM_ENOMEM, "cesium_batch_new: out of memory");
	batch_init_inline(b);
	*out = b;
	return 0;
}

int cesium_batch_put(cesium_batch *b, uint64_t ns, const void *key, size_t klen, const void *val,
                     size_t vlen)
{
	if (!b)
		return error_set(CESIUM_EINVAL, "cesium_batch_put: NULL batch");
	int rc = batch_check("cesium_batch_put", key, klen, val, vlen, KEYS_KIND_VALUE);
	if (rc)
		return rc;
	return batch_add(b, KEYS_KIND_VALUE, ns, key, klen, val, vlen);
}

int cesium_batch_delete(cesium_batch *b, uint64_t ns, const void *key, size_t klen)
{
	if (!b)
		return error_set(CESIUM_EINVAL, "cesium_batch_delete: NULL batch");
	int rc = batch_check("cesium_batch_delete", key, klen, NULL, 0, KEYS_KIND_DELETE);
	if (rc)
		return rc;
	return batch_add(b, KEYS_KIND_DELETE, ns, key, klen, NULL, 0);
}

void cesium_batch_clear(cesium_batch *b)
{
	if (!b)
		return;
	/* Keeps a grown buffer: a batch reused in a loop stops allocating. */
	batch_reset(b);
}

void cesium_batch_free(cesium_batch *b)
{
	if (!b)
		return;
	if (b->rep != b->inline_buf)
		mem_free(b->rep);
	mem_free(b);
}

int batch_append(cesium_batch *dst, const cesium_batch *src)
{
	if (!dst || !src)
		return error_set(CESIUM_EINVAL, "batch_append: NULL batch");
	uint32_t dc = batch_count(dst), sc = batch_count(src);
	if (sc > UINT32_MAX - dc)
		return error_set(CESIUM_EINVAL, "batch_append: more than %" PRIu32 " entries",
		                 UINT32_MAX);
	size_t n = src->len - BATCH_HEADER_SIZE;
	int rc = batch_reserve(dst, n);
	if (rc)
		return rc;
	/* memmove: dst == src is allowed and doubles the batch. */
	memmove(dst->rep + dst->len, src->rep + BATCH_HEADER_SIZE, n);
	dst->len += n;
	batch_set_count(dst->rep, dc + sc);
	return 0;
}

/* Decodes a varint32 from [*pos, len); false when truncated or too long. */
static bool batch_get_varint32(const uint8_t *rep, size_t len, size_t *pos, uint32_t *out)
{
	const uint8_t *after;
	if (!keys_get_varint32(rep + *pos, rep + len, &after, out))
		return false;
	*pos = (size_t)(after - rep);
	return true;
}

struct batch_entry {
	enum keys_kind kind;
	keys_slice nskey;
	keys_slice value;
};

/* Decodes the entry at *pos; CESIUM_ECORRUPT naming the offset. */
static int batch_decode(const uint8_t *rep, size_t len, size_t *pos, struct batch_entry *e)
{
	size_t start = *pos;
	uint8_t kind = rep[(*pos)++];
	if (kind != KEYS_KIND_VALUE && kind != KEYS_KIND_DELETE)
		return error_set(CESIUM_ECORRUPT, "batch: bad entry kind %u at offset %zu", kind,
		                 start);
	e->kind = (enum keys_kind)kind;
	uint32_t n;
	size_t at = *pos;
	if (!batch_get_varint32(rep, len, pos, &n))
		return error_set(CESIUM_ECORRUPT, "batch: bad key length varint at offset %zu", at);
	if (n <= KEYS_NS_SIZE || n > BATCH_MAX_NSKEY)
		return error_set(CESIUM_ECORRUPT,
		                 "batch: key length %" PRIu32 " at offset %zu outside %u..%u", n, at,
		                 KEYS_NS_SIZE + 1, BATCH_MAX_NSKEY);
	if (len - *pos < n)
		return error_set(CESIUM_ECORRUPT,
		                 "batch: key of %" PRIu32 " bytes at offset %zu truncated at %zu", n,
		                 *pos, len);
	e->nskey = keys_slice_of(rep + *pos, n);
	*pos += n;
	e->value = keys_slice_of(NULL, 0);
	if (e->kind == KEYS_KIND_VALUE) {
		at = *pos;
		if (!batch_get_varint32(rep, len, pos, &n))
			return error_set(CESIUM_ECORRUPT,
			                 "batch: bad value length varint at offset %zu", at);
		if (n > CESIUM_MAX_VALUE_SIZE)
			return error_set(CESIUM_ECORRUPT,
			                 "batch: value length %" PRIu32 " at offset %zu above %u", n,
			                 at, CESIUM_MAX_VALUE_SIZE);
		if (len - *pos < n)
			return error_set(CESIUM_ECORRUPT,
			                 "batch: value of %" PRIu32
			                 " bytes at offset %zu truncated at %zu",
			                 n, *pos, len);
		e->value = keys_slice_of(rep + *pos, n);
		*pos += n;
	}
	return 0;
}

int batch_iterate(const uint8_t *rep, size_t len, batch_entry_fn fn, void *ctx)
{
	if (!rep && len)
		return error_set(CESIUM_EINVAL, "batch_iterate: NULL buffer");
	if (len < BATCH_HEADER_SIZE)
		return error_set(CESIUM_ECORRUPT, "batch: %zu bytes, shorter than the %d-byte header",
		                 len, BATCH_HEADER_SIZE);
	uint64_t seq = batch_get_seq(rep);
	uint32_t count = keys_get_u32le(rep + 8);
	if (seq > KEYS_MAX_SEQ || (count && count - 1 > KEYS_MAX_SEQ - seq))
		return error_set(CESIUM_ECORRUPT,
		                 "batch: sequence %" PRIu64 " + %" PRIu32 " entries out of range at offset 0",
		                 seq, count);

	struct batch_entry e = { 0 };
	size_t pos = BATCH_HEADER_SIZE;
	uint32_t i;
	for (i = 0; i < count; i++) {
		if (pos >= len)
			return error_set(CESIUM_ECORRUPT,
			                 "batch: %" PRIu32 " entries in header, %" PRIu32
			                 " found before the end at offset %zu",
			                 count, i, pos);
		int rc = batch_decode(rep, len, &pos, &e);
		if (rc)
			return rc;
	}
	if (pos != len)
		return error_set(CESIUM_ECORRUPT,
		                 "batch: %zu trailing bytes at offset %zu after %" PRIu32 " entries",
		                 len - pos, pos, count);
	if (!fn)
		return 0;
	pos = BATCH_HEADER_SIZE;
	for (i = 0; i < count; i++) {
		/* Cannot fail: the first pass decoded the same bytes. */
		int rc = batch_decode(rep, len, &pos, &e);
		if (rc == 0)
			rc = fn(ctx, seq + i, e.kind, e.nskey, e.value);
		if (rc)
			return rc;
	}
	return 0;
}
