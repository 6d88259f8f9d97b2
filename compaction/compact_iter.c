#include "compact_iter.h"

#include <assert.h>

#include "error.h"
#include "mem.h"

/* Owned, growable byte buffer. */
typedef struct {
	uint8_t *data;
	size_t len;
	size_t cap;
} compact_iter_buf;

/* A kept tombstone waiting for rule 2 to be decided. */
typedef struct {
	compact_iter_buf key;
	compact_iter_buf value;
} compact_iter_held;

enum compact_iter_out {
	COMPACT_ITER_OUT_NONE,  /* invalid */
	COMPACT_ITER_OUT_HELD,  /* yielding held[emit] */
	COMPACT_ITER_OUT_INPUT, /* yielding the input's current entry */
};

struct compact_iter {
	iter *in;
	uint64_t *snaps;
	size_t nsnap;
	bool bottommost;

	compact_iter_buf group; /* nskey whose versions are being walked */
	bool in_group;
	size_t last_stripe; /* stripe of the last kept version of the group */

	compact_iter_held *held; /* nsnap + 1 slots */
	size_t nheld;
	size_t emit;
	bool input_after_held; /* the input's current entry follows the held ones */

	enum compact_iter_out out;
	keys_slice key;
	keys_slice value;
	int status;
	compact_iter_stats stats;
};

static int compact_iter_reserve(compact_iter_buf *b, size_t n)
{
	if (n == 0)
		n = 1; /* keep data non-NULL */
	if (n <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 32;
	while (cap < n)
		cap *= 2;
	uint8_t *p = mem_realloc(b->data, cap);
	if (!p)
		return error_set(CESIUM_ENOMEM, "compact_iter: cannot allocate %zu bytes", n);
	b->data = p;
	b->cap = cap;
	return 0;
}

static int compact_iter_copy(compact_iter_buf *b, keys_slice s)
{
	int rc = compact_iter_reserve(b, s.len);
	if (rc != 0)
		return rc;
	if (s.len)
		memcpy(b->data, s.data, s.len);
	b->len = s.len;
	return 0;
}

/* Index of the smallest snapshot >= seq, or nsnap. */
static size_t compact_iter_stripe(const compact_iter *ci, uint64_t seq)
{
	size_t lo = 0, hi = ci->nsnap;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (ci->snaps[mid] < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Rule 2: the held tombstones of a finished key hide nothing that survives. */
static void compact_iter_drop_held(compact_iter *ci)
{
	ci->stats.dropped_tombstones += ci->nheld;
	ci->nheld = 0;
}

static void compact_iter_fail(compact_iter *ci, int code)
{
	ci->status = code;
	ci->out = COMPACT_ITER_OUT_NONE;
	ci->nheld = 0;
}

static void compact_iter_emit_held(compact_iter *ci)
{
	compact_iter_held *h = &ci->held[ci->emit];
	ci->out = COMPACT_ITER_OUT_HELD;
	ci->key = keys_slice_of(h->key.data, h->key.len);
	ci->value = keys_slice_of(h->value.data, h->value.len);
	ci->stats.entries_out++;
}

/* Reads input entries from the current position until one output is ready
 * or the input ends. */
static void compact_iter_scan(compact_iter *ci)
{
	int rc;
	while (iter_valid(ci->in)) {
		keys_slice ik = iter_key(ci->in);
		ci->stats.entries_in++;
		if (ik.len < KEYS_TRAILER_SIZE) {
			compact_iter_fail(ci, error_set(CESIUM_ECORRUPT,
			                                "compact_iter: internal key of %zu bytes "
			                                "has no trailer",
			                                ik.len));
			return;
		}
		keys_slice nsk = keys_ikey_nskey(ik);
		size_t stripe = compact_iter_stripe(ci, keys_ikey_seq(ik));
		if (ci->in_group &&
		    keys_compare_bytes(nsk, keys_slice_of(ci->group.data, ci->group.len)) == 0) {
			if (stripe == ci->last_stripe) {
				ci->stats.dropped_shadowed++;
				iter_next(ci->in);
				continue;
			}
		} else {
			compact_iter_drop_held(ci);
			rc = compact_iter_copy(&ci->group, nsk);
			if (rc != 0) {
				compact_iter_fail(ci, rc);
				return;
			}
			ci->in_group = true;
		}
		ci->last_stripe = stripe;

		if (ci->bottommost && keys_ikey_kind(ik) == KEYS_KIND_DELETE) {
			assert(ci->nheld <= ci->nsnap);
			compact_iter_held *h = &ci->held[ci->nheld];
			rc = compact_iter_copy(&h->key, ik);
			if (rc == 0)
				rc = compact_iter_copy(&h->value, iter_value(ci->in));
			if (rc != 0) {
				compact_iter_fail(ci, rc);
				return;
			}
			ci->nheld++;
			iter_next(ci->in);
			continue;
		}
		if (ci->nheld > 0) {
			/* A kept value lies beneath the held tombstones: they stay. */
			ci->emit = 0;
			ci->input_after_held = true;
			compact_iter_emit_held(ci);
			return;
		}
		ci->out = COMPACT_ITER_OUT_INPUT;
		ci->key = ik;
		ci->value = iter_value(ci->in);
		ci->stats.entries_out++;
		return;
	}
	compact_iter_drop_held(ci);
	ci->out = COMPACT_ITER_OUT_NONE;
	ci->status = iter_status(ci->in);
}

void compact_iter_next(compact_iter *ci)
{
	assert(ci->out != COMPACT_ITER_OUT_NONE);
	if (ci->out == COMPACT_ITER_OUT_HELD) {
		if (++ci->emit < ci->nheld) {
			compact_iter_emit_held(ci);
			return;
		}
		ci->nheld = 0;
		assert(ci->input_after_held);
		ci->input_after_held = false;
		ci->out = COMPACT_ITER_OUT_INPUT;
		ci->key = iter_key(ci->in);
		ci->value = iter_value(ci->in);
		ci->stats.entries_out++;
		return;
	}
	iter_next(ci->in);
	compact_iter_scan(ci);
}

static void compact_iter_reset(compact_iter *ci)
{
	ci->in_group = false;
	ci->nheld = 0;
	ci->input_after_held = false;
	ci->status = 0;
	ci->out = COMPACT_ITER_OUT_NONE;
}

void compact_iter_seek(compact_iter *ci, const void *nskey, size_t len)
{
	size_t n = len + KEYS_TRAILER_SIZE;
	compact_iter_reset(ci);
	/* The group buffer is free while no group is open: build the seek key
	 * there. */
	int rc = compact_iter_reserve(&ci->group, n);
	if (rc != 0) {
		compact_iter_fail(ci, rc);
		return;
	}
	if (len)
		memcpy(ci->group.data, nskey, len);
	/* The largest trailer: the newest version of nskey comes first. */
	keys_put_u64le(ci->group.data + len, UINT64_MAX);
	iter_seek(ci->in, keys_slice_of(ci->group.data, n));
	compact_iter_scan(ci);
}

bool compact_iter_valid(const compact_iter *ci)
{
	return ci->out != COMPACT_ITER_OUT_NONE;
}

keys_slice compact_iter_key(const compact_iter *ci)
{
	assert(ci->out != COMPACT_ITER_OUT_NONE);
	return ci->key;
}

keys_slice compact_iter_value(const compact_iter *ci)
{
	assert(ci->out != COMPACT_ITER_OUT_NONE);
	return ci->value;
}

int compact_iter_status(const compact_iter *ci)
{
	return ci->status;
}

compact_iter_stats compact_iter_get_stats(const compact_iter *ci)
{
	return ci->stats;
}

void compact_iter_free(compact_iter *ci)
{
	if (!ci)
		return;
	iter_destroy(ci->in);
	if (ci->held) {
		for (size_t i = 0; i <= ci->nsnap; i++) {
			mem_free(ci->held[i].key.data);
			mem_free(ci->held[i].value.data);
		}
	}
	mem_free(ci->held);
	mem_free(ci->snaps);
	mem_free(ci->group.data);
	mem_free(ci);
}

int compact_iter_new(iter *input, const uint64_t *snapshots, size_t nsnap, bool bottommost,
                     compact_iter **out)
{
	int rc = 0;
	compact_iter *ci = NULL;

	*out = NULL;
	for (size_t i = 1; i < nsnap; i++) {
		if (snapshots[i] < snapshots[i - 1]) {
			rc = error_set(
			    CESIUM_EINVAL,
			    "compact_iter: snapshot %zu (%llu) is below snapshot %zu (%llu)", i,
			    (unsigned long long)snapshots[i], i - 1,
			    (unsigned long long)snapshots[i - 1]);
			goto fail;
		}
	}
	ci = mem_zalloc(sizeof(*ci));
	if (!ci)
		goto nomem;
	ci->in = input;
	ci->nsnap = nsnap;
	ci->bottommost = bottommost;
	ci->held = mem_calloc(nsnap + 1, sizeof(*ci->held));
	if (!ci->held)
		goto nomem;
	if (nsnap) {
		ci->snaps = mem_calloc(nsnap, sizeof(*ci->snaps));
		if (!ci->snaps)
			goto nomem;
		memcpy(ci->snaps, snapshots, nsnap * sizeof(*ci->snaps));
	}
	compact_iter_reset(ci);
	iter_seek_first(ci->in);
	compact_iter_scan(ci);
	*out = ci;
	goto out;
nomem:
	rc = error_set(CESIUM_ENOMEM, "compact_iter: cannot allocate a filter for %zu snapshots",
	               nsnap);
fail:
	if (ci)
		compact_iter_free(ci); /* destroys the input */
	else
		iter_destroy(input);
out:
	return rc;
}
