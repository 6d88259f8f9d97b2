#include "bloom.h"

#include "cesium.h"
#include "mem.h"

#include <xxhash.h>

/* Golden-ratio multiplier: remixes the low hash half between probes so
 * that successive probes are independent enough within a line. */
#define BLOOM_REMIX UINT32_C(0x9e3779b9)

uint64_t bloom_hash(keys_slice nskey)
{
	return XXH3_64bits(nskey.data, nskey.len);
}

int bloom_probes(int bits_per_key)
{
	/* round(bits * ln 2) in integers: no libm dependency */
	int k = (int)(((long)bits_per_key * 69315 + 50000) / 100000);
	if (k < 1)
		k = 1;
	if (k > BLOOM_MAX_PROBES)
		k = BLOOM_MAX_PROBES;
	return k;
}

void bloom_builder_init(bloom_builder *b, int bits_per_key)
{
	b->hashes = NULL;
	b->n = 0;
	b->cap = 0;
	b->bits_per_key = bits_per_key;
}

int bloom_builder_add(bloom_builder *b, uint64_t hash)
{
	if (b->bits_per_key <= 0)
		return 0;
	if (b->n > 0 && b->hashes[b->n - 1] == hash)
		return 0;
	if (b->n == b->cap) {
		size_t ncap = b->cap ? b->cap * 2 : 1024;
		uint64_t *nh = mem_realloc(b->hashes, ncap * sizeof(*nh));
		if (!nh)
			return CESIUM_ENOMEM;
		b->hashes = nh;
		b->cap = ncap;
	}
	b->hashes[b->n++] = hash;
	return 0;
}

static size_t bloom_lines(const bloom_builder *b)
{
	uint64_t bits = (uint64_t)b->n * (uint64_t)b->bits_per_key;
	size_t lines = (size_t)((bits + BLOOM_LINE_BITS - 1) / BLOOM_LINE_BITS);
	return lines ? lines : 1;
}

size_t bloom_builder_size(const bloom_builder *b)
{
	if (b->bits_per_key <= 0)
		return 0;
	return bloom_lines(b) * BLOOM_LINE_BYTES + 1;
}

/* Maps the top 32 bits onto [0, nlines) without a division. */
static inline size_t bloom_line_of(uint64_t hash, size_t nlines)
{
	return (size_t)(((hash >> 32) * (uint64_t)nlines) >> 32);
}

void bloom_builder_emit(const bloom_builder *b, uint8_t *dst)
{
	if (b->bits_per_key <= 0)
		return;
	size_t nlines = bloom_lines(b);
	int k = bloom_probes(b->bits_per_key);
	memset(dst, 0, nlines * BLOOM_LINE_BYTES);
	for (size_t i = 0; i < b->n; i++) {
		uint64_t h = b->hashes[i];
		uint8_t *line = dst + bloom_line_of(h, nlines) * BLOOM_LINE_BYTES;
		uint32_t h2 = (uint32_t)h;
		for (int j = 0; j < k; j++) {
			uint32_t bit = h2 >> 23; /* 9 bits: 0..511 */
			line[bit >> 3] |= (uint8_t)(1u << (bit & 7));
			h2 *= BLOOM_REMIX;
		}
	}
	dst[nlines * BLOOM_LINE_BYTES] = (uint8_t)k;
}

void bloom_builder_reset(bloom_builder *b)
{
	b->n = 0;
}

void bloom_builder_destroy(bloom_builder *b)
{
	mem_free(b->hashes);
	b->hashes = NULL;
	b->n = b->cap = 0;
}

void bloom_prefetch(const uint8_t *filter, size_t len, uint64_t hash)
{
	if (filter && len >= BLOOM_LINE_BYTES + 1 && (len - 1) % BLOOM_LINE_BYTES == 0)
		__builtin_prefetch(filter + bloom_line_of(hash, (len - 1) / BLOOM_LINE_BYTES) *
		                                BLOOM_LINE_BYTES);
}

bool bloom_may_contain(const uint8_t *filter, size_t len, uint64_t hash)
{
	if (!filter || len < BLOOM_LINE_BYTES + 1 || (len - 1) % BLOOM_LINE_BYTES != 0)
		return true;
	int k = filter[len - 1];
	if (k < 1 || k > BLOOM_MAX_PROBES)
		return true;
	size_t nlines = (len - 1) / BLOOM_LINE_BYTES;
	const uint8_t *line = filter + bloom_line_of(hash, nlines) * BLOOM_LINE_BYTES;
	uint32_t h2 = (uint32_t)hash;
	for (int j = 0; j < k; j++) {
		uint32_t bit = h2 >> 23;
		if (!(line[bit >> 3] & (1u << (bit & 7))))
			return false;
		h2 *= BLOOM_REMIX;
	}
	return true;
}
