/*
 * keys — the internal key format shared by every structure of the engine.
 *
 * A user key lives in a namespace. Internally the pair is one byte string,
 * the "nskey": the namespace as 8 bytes big-endian followed by the user key,
 * so that plain memcmp orders by namespace, then key.
 * An internal key is the nskey followed by an 8-byte little-endian trailer
 * (seq << 8 | kind). Internal keys sort by nskey ascending, then trailer
 * descending: the newest version of a key comes first.
 *
 * Pure functions; any thread.
 */
#ifndef CESIUM_CORE_KEYS_H
#define CESIUM_CORE_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define KEYS_NS_SIZE      8
#define KEYS_TRAILER_SIZE 8
#define KEYS_MAX_SEQ      ((UINT64_C(1) << 56) - 1)

enum keys_kind {
	KEYS_KIND_DELETE = 0, /* tombstone: hides older versions */
	KEYS_KIND_VALUE = 1,
};

/* A borrowed byte string. */
typedef struct {
	const uint8_t *data;
	size_t len;
} keys_slice;

static inline keys_slice keys_slice_of(const void *data, size_t len)
{
	return (keys_slice){ (const uint8_t *)data, len };
}

static inline void keys_put_u64be(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static inline uint64_t keys_get_u64be(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static inline void keys_put_u64le(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8); /* x86-64 and arm64 Linux are little-endian */
}

static inline uint64_t keys_get_u64le(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

static inline void keys_put_u32le(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static inline uint32_t keys_get_u32le(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

/* Varints (7 bits a byte, low bits first, the top bit set on every byte
 * but the last), as the batch, block and MANIFEST encodings use them.
 * Writes v at p (at most KEYS_MAX_VARINT bytes) and returns the length. */
#define KEYS_MAX_VARINT 10
static inline size_t keys_put_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

/* The bytes keys_put_varint writes for v. */
static inline size_t keys_varint_size(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

/* Decodes a varint of at most 32 bits from [p, end) into *v and sets
 * *after past it; false if it is truncated or longer than 32 bits. */
static inline bool keys_get_varint32(const uint8_t *p, const uint8_t *end, const uint8_t **after,
                                     uint32_t *v)
{
	/* Lengths under 128 fit one byte: decode those without the loop. */
	if (p < end && *p < 0x80) {
		*v = *p;
		*after = p + 1;
		return true;
	}
	uint32_t r = 0;
	for (int shift = 0; shift <= 28 && p < end; shift += 7) {
		uint32_t byte = *p++;
		if (shift == 28 && byte > 0x0f)
			return false;
		r |= (byte & 0x7f) << shift;
		if (!(byte & 0x80)) {
			*v = r;
			*after = p;
			return true;
		}
	}
	return false;
}

static inline uint64_t keys_trailer(uint64_t seq, enum keys_kind kind)
{
	return seq << 8 | (uint64_t)kind;
}

/* Writes ns ++ key into out (KEYS_NS_SIZE + klen bytes). */
static inline void keys_make_nskey(uint8_t *out, uint64_t ns, const void *key, size_t klen)
{
	keys_put_u64be(out, ns);
	if (klen)
		memcpy(out + KEYS_NS_SIZE, key, klen);
}

/* Writes nskey ++ trailer into out (nskey_len + 8 bytes). */
static inline void keys_make_ikey(uint8_t *out, const uint8_t *nskey, size_t nskey_len,
                                  uint64_t seq, enum keys_kind kind)
{
	memcpy(out, nskey, nskey_len);
	keys_put_u64le(out + nskey_len, keys_trailer(seq, kind));
}

/* The nskey part of an internal key. */
static inline keys_slice keys_ikey_nskey(keys_slice ikey)
{
	return (keys_slice){ ikey.data, ikey.len - KEYS_TRAILER_SIZE };
}

static inline uint64_t keys_ikey_seq(keys_slice ikey)
{
	return keys_get_u64le(ikey.data + ikey.len - KEYS_TRAILER_SIZE) >> 8;
}

static inline enum keys_kind keys_ikey_kind(keys_slice ikey)
{
	return (enum keys_kind)(ikey.data[ikey.len - KEYS_TRAILER_SIZE] & 0xff);
}

/* Byte-wise comparison, shorter first on a common prefix. */
static inline int keys_compare_bytes(keys_slice a, keys_slice b)
{
	size_t n = a.len < b.len ? a.len : b.len;
	int c = n ? memcmp(a.data, b.data, n) : 0;
	if (c != 0)
		return c;
	return a.len < b.len ? -1 : a.len > b.len ? 1 : 0;
}

/* Internal-key order: nskey ascending, then trailer (seq) descending. */
static inline int keys_compare_ikey(keys_slice a, keys_slice b)
{
	int c = keys_compare_bytes(keys_ikey_nskey(a), keys_ikey_nskey(b));
	if (c != 0)
		return c;
	uint64_t ta = keys_get_u64le(a.data + a.len - KEYS_TRAILER_SIZE);
	uint64_t tb = keys_get_u64le(b.data + b.len - KEYS_TRAILER_SIZE);
	return ta > tb ? -1 : ta < tb ? 1 : 0;
}

#endif
