#include "block.h"

#include "cesium.h"
#include "error.h"
#include "mem.h"

/* ---- builder ---- */

void block_builder_init(block_builder *b, int restart_interval)
{
	memset(b, 0, sizeof(*b));
	b->restart_interval = restart_interval > 0 ? restart_interval : 1;
}

static int block_reserve(uint8_t **buf, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	size_t ncap = *cap ? *cap : 256;
	while (ncap < need)
		ncap *= 2;
	uint8_t *nb = mem_realloc(*buf, ncap);
	if (!nb)
		return CESIUM_ENOMEM;
	*buf = nb;
	*cap = ncap;
	return 0;
}

int block_builder_add(block_builder *b, keys_slice key, keys_slice value)
{
	if (key.len > UINT32_MAX || value.len > UINT32_MAX)
		return CESIUM_EINVAL;
	size_t shared = 0;
	if (b->counter >= b->restart_interval || b->entries == 0) {
		if (b->nrestarts == b->rcap) {
			size_t ncap = b->rcap ? b->rcap * 2 : 16;
			uint32_t *nr = mem_realloc(b->restarts, ncap * sizeof(*nr));
			if (!nr)
				return CESIUM_ENOMEM;
			b->restarts = nr;
			b->rcap = ncap;
		}
		if (b->len > UINT32_MAX)
			return CESIUM_EINVAL;
		b->restarts[b->nrestarts++] = (uint32_t)b->len;
		b->counter = 0;
	} else {
		size_t n = b->last_len < key.len ? b->last_len : key.len;
		while (shared < n && b->last_key[shared] == key.data[shared])
			shared++;
	}
	size_t non_shared = key.len - shared;
	if (block_reserve(&b->buf, &b->cap, b->len + 15 + non_shared + value.len) ||
	    block_reserve(&b->last_key, &b->last_cap, key.len ? key.len : 1))
		return CESIUM_ENOMEM;
	uint8_t *p = b->buf + b->len;
	p += keys_put_varint(p, (uint32_t)shared);
	p += keys_put_varint(p, (uint32_t)non_shared);
	p += keys_put_varint(p, (uint32_t)value.len);
	if (non_shared)
		memcpy(p, key.data + shared, non_shared);
	p += non_shared;
	if (value.len)
		memcpy(p, value.data, value.len);
	p += value.len;
	b->len = (size_t)(p - b->buf);
	if (non_shared)
		memcpy(b->last_key + shared, key.data + shared, non_shared);
	b->last_len = key.len;
	b->entries++;
	b->counter++;
	return 0;
}

size_t block_builder_estimate(const block_builder *b)
{
	return b->len + 4 * b->nrestarts + 4;
}

bool block_builder_empty(const block_builder *b)
{
	return b->entries == 0;
}

keys_slice block_builder_last_key(const block_builder *b)
{
	return keys_slice_of(b->last_key, b->last_len);
}

int block_builder_finish(block_builder *b, keys_slice *out)
{
	size_t total = block_builder_estimate(b);
	if (block_reserve(&b->buf, &b->cap, total))
		return CESIUM_ENOMEM;
	uint8_t *p = b->buf + b->len;
	for (size_t i = 0; i < b->nrestarts; i++, p += 4)
		keys_put_u32le(p, b->restarts[i]);
	keys_put_u32le(p, (uint32_t)b->nrestarts);
	*out = keys_slice_of(b->buf, total);
	return 0;
}

void block_builder_reset(block_builder *b)
{
	b->len = 0;
	b->nrestarts = 0;
	b->last_len = 0;
	b->entries = 0;
	b->counter = 0;
}

void block_builder_destroy(block_builder *b)
{
	mem_free(b->buf);
	mem_free(b->restarts);
	mem_free(b->last_key);
	memset(b, 0, sizeof(*b));
}

/* ---- iterator ---- */

static const struct iter_ops block_iter_ops;

static void block_corrupt(struct block_iter *it, const char *why, size_t off)
{
	it->status = error_set(CESIUM_ECORRUPT, "block: %s at entry offset %zu", why, off);
	it->cur = it->restarts_off;
}

static bool block_key_reserve(struct block_iter *it, size_t need)
{
	if (need <= it->key_cap)
		return true;
	size_t ncap = it->key_cap * 2;
	if (ncap < need)
		ncap = need;
	uint8_t *nk = mem_alloc(ncap);
	if (!nk)
		return false;
	memcpy(nk, it->key, it->key_len);
	if (it->key != it->inline_key)
		mem_free(it->key);
	it->key = nk;
	it->key_cap = ncap;
	return true;
}

/* An entry's header: how much of the key before it the key shares, the
 * unshared bytes that follow at p, then the value's. */
struct block_entry {
	const uint8_t *p;
	uint32_t shared, non_shared, vlen;
};

/* Decodes and checks the header of the entry at off, which may share at
 * most max_shared bytes; false (with the iterator failed) on corruption. */
static inline bool block_entry_at(struct block_iter *it, size_t off, size_t max_shared,
                                  struct block_entry *e)
{
	const uint8_t *end = it->data + it->restarts_off;
	const uint8_t *p = it->data + off;
	if (!keys_get_varint32(p, end, &p, &e->shared) ||
	    !keys_get_varint32(p, end, &p, &e->non_shared) ||
	    !keys_get_varint32(p, end, &p, &e->vlen)) {
		block_corrupt(it, "truncated entry header", off);
		return false;
	}
	size_t avail = (size_t)(end - p);
	if (e->shared > max_shared || e->non_shared > avail || e->vlen > avail - e->non_shared) {
		block_corrupt(it, "entry out of bounds", off);
		return false;
	}
	if (it->ikeys && (size_t)e->shared + e->non_shared < KEYS_TRAILER_SIZE) {
		block_corrupt(it, "internal key shorter than its trailer", off);
		return false;
	}
	e->p = p;
	return true;
}

/* Decodes the entry at off on top of the current key (key_len bytes of
 * which the entry may share). */
static bool block_parse_at(struct block_iter *it, size_t off)
{
	struct block_entry e;
	if (!block_entry_at(it, off, it->key_len, &e))
		return false;
	size_t klen = (size_t)e.shared + e.non_shared;
	if (!block_key_reserve(it, klen)) {
		it->status =
		    error_set(CESIUM_ENOMEM, "block: out of memory for a %zu-byte key", klen);
		it->cur = it->restarts_off;
		return false;
	}
	memcpy(it->key + e.shared, e.p, e.non_shared);
	it->key_len = klen;
	it->value = keys_slice_of(e.p + e.non_shared, e.vlen);
	it->cur = off;
	it->next_off = (size_t)(e.p + e.non_shared + e.vlen - it->data);
	return true;
}

/* keys_compare_bytes without the memcmp call: seeks compare short keys
 * many times, and 8-byte big-endian words give the same order cheaper. */
static inline int block_compare_bytes(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	size_t n = alen < blen ? alen : blen;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t x = __builtin_bswap64(keys_get_u64le(a + i));
		uint64_t y = __builtin_bswap64(keys_get_u64le(b + i));
		if (x != y)
			return x < y ? -1 : 1;
	}
	for (; i < n; i++) {
		if (a[i] != b[i])
			return a[i] < b[i] ? -1 : 1;
	}
	return alen < blen ? -1 : alen > blen ? 1 : 0;
}

static int block_cmp(const struct block_iter *it, keys_slice a, keys_slice b)
{
	if (it->ikeys && a.len >= KEYS_TRAILER_SIZE && b.len >= KEYS_TRAILER_SIZE) {
		int c = block_compare_bytes(a.data, a.len - KEYS_TRAILER_SIZE, b.data,
		                            b.len - KEYS_TRAILER_SIZE);
		if (c != 0)
			return c;
		uint64_t ta = keys_get_u64le(a.data + a.len - KEYS_TRAILER_SIZE);
		uint64_t tb = keys_get_u64le(b.data + b.len - KEYS_TRAILER_SIZE);
		return ta > tb ? -1 : ta < tb ? 1 : 0;
	}
	return block_compare_bytes(a.data, a.len, b.data, b.len);
}

/* The key of restart entry i, read in place: a restart entry shares
 * nothing, so the binary search of a seek needs no copy. False (with the
 * iterator failed) on corruption. */
bool block_iter_restart_key(struct block_iter *it, uint32_t i, keys_slice *key)
{
	uint32_t off = keys_get_u32le(it->data + it->restarts_off + 4 * (size_t)i);
	if (off >= it->restarts_off) {
		block_corrupt(it, "restart offset out of bounds", off);
		return false;
	}
	struct block_entry e;
	if (!block_entry_at(it, off, 0, &e))
		return false;
	*key = keys_slice_of(e.p, e.non_shared);
	return true;
}

static bool block_restart_entry(struct block_iter *it, uint32_t i)
{
	uint32_t off = keys_get_u32le(it->data + it->restarts_off + 4 * (size_t)i);
	if (off >= it->restarts_off) {
		block_corrupt(it, "restart offset out of bounds", off);
		return false;
	}
	it->key_len = 0; /* a restart entry shares nothing */
	return block_parse_at(it, off);
}

void block_iter_init(struct block_iter *it, bool ikeys)
{
	memset(it, 0, offsetof(struct block_iter, inline_key));
	it->base.ops = &block_iter_ops;
	it->key = it->inline_key;
	it->key_cap = sizeof(it->inline_key);
	it->ikeys = ikeys;
}

void block_iter_reset(struct block_iter *it, const uint8_t *data, size_t len)
{
	it->data = data;
	it->status = 0;
	it->key_len = 0;
	it->value = keys_slice_of(NULL, 0);
	it->restarts_off = 0;
	it->nrestarts = 0;
	it->cur = 0;
	if (!data || len < 4) {
		block_corrupt(it, "block shorter than its restart count", 0);
		return;
	}
	uint32_t n = keys_get_u32le(data + len - 4);
	if (n > (len - 4) / 4) {
		block_corrupt(it, "restart count out of bounds", len - 4);
		return;
	}
	it->nrestarts = n;
	it->restarts_off = len - 4 - 4 * (size_t)n;
	if (n == 0 && it->restarts_off != 0) {
		it->restarts_off = 0;
		block_corrupt(it, "entries without restart points", 0);
		return;
	}
	it->cur = it->restarts_off; /* unpositioned */
}

void block_iter_cleanup(struct block_iter *it)
{
	if (it->key && it->key != it->inline_key)
		mem_free(it->key);
	it->key = it->inline_key;
	it->key_cap = sizeof(it->inline_key);
	it->key_len = 0;
}

static bool block_valid(const iter *base)
{
	const struct block_iter *it = (const struct block_iter *)base;
	return it->status == 0 && it->cur < it->restarts_off;
}

static void block_seek_first(iter *base)
{
	struct block_iter *it = (struct block_iter *)base;
	if (it->status)
		return;
	if (it->nrestarts == 0) {
		it->cur = it->restarts_off;
		return;
	}
	block_restart_entry(it, 0);
}

static void block_next(iter *base)
{
	struct block_iter *it = (struct block_iter *)base;
	if (!block_valid(base))
		return;
	if (it->next_off >= it->restarts_off) {
		it->cur = it->restarts_off;
		return;
	}
	block_parse_at(it, it->next_off);
}

static void block_seek(iter *base, keys_slice target)
{
	struct block_iter *it = (struct block_iter *)base;
	if (it->status)
		return;
	if (it->nrestarts == 0) {
		it->cur = it->restarts_off;
		return;
	}
	/* The last restart whose key is below target: the answer lies between
	 * it and the next restart (or is the next restart's first entry). */
	uint32_t lo = 0, hi = it->nrestarts - 1;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo + 1) / 2;
		keys_slice k;
		if (!block_iter_restart_key(it, mid, &k))
			return;
		if (block_cmp(it, k, target) < 0)
			lo = mid;
		else
			hi = mid - 1;
	}
	block_iter_seek_from(it, lo, target);
}

void block_iter_seek_from(struct block_iter *it, uint32_t i, keys_slice target)
{
	if (it->status)
		return;
	if (i >= it->nrestarts) {
		it->cur = it->restarts_off;
		return;
	}
	if (!block_restart_entry(it, i))
		return;
	while (block_valid(&it->base) &&
	       block_cmp(it, keys_slice_of(it->key, it->key_len), target) < 0)
		block_next(&it->base);
}

static keys_slice block_key(const iter *base)
{
	const struct block_iter *it = (const struct block_iter *)base;
	return keys_slice_of(it->key, it->key_len);
}

static keys_slice block_value(const iter *base)
{
	return ((const struct block_iter *)base)->value;
}

static int block_status(const iter *base)
{
	return ((const struct block_iter *)base)->status;
}

static void block_destroy(iter *base)
{
	struct block_iter *it = (struct block_iter *)base;
	block_iter_cleanup(it);
	if (it->heap)
		mem_free(it);
}

static const struct iter_ops block_iter_ops = {
    .seek = block_seek,
    .seek_first = block_seek_first,
    .next = block_next,
    .valid = block_valid,
    .key = block_key,
    .value = block_value,
    .status = block_status,
    .destroy = block_destroy,
};

int block_iter_new(const uint8_t *data, size_t len, bool ikeys, iter **out)
{
	struct block_iter *it = mem_alloc(sizeof(*it));
	if (!it)
		return error_set(CESIUM_ENOMEM, "block: out of memory for an iterator");
	block_iter_init(it, ikeys);
	it->heap = true;
	block_iter_reset(it, data, len);
	*out = &it->base;
	return 0;
}
