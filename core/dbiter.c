#include "dbiter.h"

#include <assert.h>

#include "error.h"
#include "mem.h"

/* Owned, growable byte buffer. */
typedef struct {
	uint8_t *data;
	size_t len;
	size_t cap;
} dbiter_buf;

struct dbiter {
	iter *in;
	uint64_t ns;
	uint8_t ns_be[KEYS_NS_SIZE]; /* the namespace prefix every nskey starts with */
	uint64_t snapshot;
	dbiter_buf key;   /* current user key */
	dbiter_buf upper; /* exclusive upper bound on user keys */
	bool has_upper;
	dbiter_buf seekbuf; /* internal key built by seek */
	keys_slice value;
	bool valid;
	int status;
};

static int dbiter_reserve(dbiter_buf *b, size_t n)
{
	if (n == 0)
		n = 1; /* keep data non-NULL, even for an empty key */
	if (n <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 32;
	while (cap < n)
		cap *= 2;
	uint8_t *p = mem_realloc(b->data, cap);
	if (!p)
		return CESIUM_ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

int dbiter_new(iter *internal, uint64_t ns, uint64_t snapshot_seq, dbiter **out)
{
	int rc = 0;
	dbiter *d = mem_zalloc(sizeof(*d));
	*out = NULL;
	if (!d) {
		rc = error_set(CESIUM_ENOMEM, "dbiter: cannot allocate an iterator");
		iter_destroy(internal);
		goto out;
	}
	d->in = internal;
	d->ns = ns;
	keys_put_u64be(d->ns_be, ns);
	d->snapshot = snapshot_seq > KEYS_MAX_SEQ ? KEYS_MAX_SEQ : snapshot_seq;
	*out = d;
out:
	return rc;
}

int dbiter_set_upper_bound(dbiter *d, const void *key, size_t klen)
{
	int rc = 0;
	if (klen == 0) {
		d->has_upper = false;
		goto out;
	}
	rc = dbiter_reserve(&d->upper, klen);
	if (rc != 0) {
		rc = error_set(rc, "dbiter: cannot copy a %zu-byte upper bound", klen);
		goto out;
	}
	memcpy(d->upper.data, key, klen);
	d->upper.len = klen;
	d->has_upper = true;
out:
	return rc;
}

static void dbiter_fail(dbiter *d, int code)
{
	d->valid = false;
	d->status = code;
}

/*
 * Scans forward from the internal iterator's position to the newest visible
 * version of the next user key. When `skip` is set, entries whose user key
 * equals d->key are passed over (the key just returned, or hidden by a
 * tombstone). A loop, not recursion: runs of versions and tombstones of any
 * length cost no stack.
 */
static void dbiter_find(dbiter *d, bool skip)
{
	d->valid = false;
	while (iter_valid(d->in)) {
		keys_slice ik = iter_key(d->in);
		if (ik.len < KEYS_NS_SIZE + KEYS_TRAILER_SIZE) {
			dbiter_fail(d, error_set(CESIUM_ECORRUPT,
			                         "dbiter: internal key of %zu bytes is shorter "
			                         "than namespace and trailer",
			                         ik.len));
			return;
		}
		if (memcmp(ik.data, d->ns_be, KEYS_NS_SIZE) != 0)
			return; /* past the end of the namespace */
		keys_slice ukey = {ik.data + KEYS_NS_SIZE,
		                   ik.len - KEYS_NS_SIZE - KEYS_TRAILER_SIZE};
		if (skip && keys_compare_bytes(ukey, keys_slice_of(d->key.data, d->key.len)) == 0) {
			iter_next(d->in);
			continue;
		}
		if (d->has_upper &&
		    keys_compare_bytes(ukey, keys_slice_of(d->upper.data, d->upper.len)) >= 0)
			return;
		if (keys_ikey_seq(ik) > d->snapshot) {
			iter_next(d->in);
			continue;
		}
		/* The first visible entry of a new user key is its newest one. */
		int rc = dbiter_reserve(&d->key, ukey.len);
		if (rc != 0) {
			dbiter_fail(d,
			            error_set(rc, "dbiter: cannot copy a %zu-byte key", ukey.len));
			return;
		}
		memcpy(d->key.data, ukey.data, ukey.len);
		d->key.len = ukey.len;
		if (keys_ikey_kind(ik) == KEYS_KIND_DELETE) {
			skip = true;
			iter_next(d->in);
			continue;
		}
		d->value = iter_value(d->in);
		d->valid = true;
		return;
	}
	d->status = iter_status(d->in);
}

void dbiter_seek(dbiter *d, const void *key, size_t klen)
{
	size_t n = KEYS_NS_SIZE + klen + KEYS_TRAILER_SIZE;
	d->status = 0;
	int rc = dbiter_reserve(&d->seekbuf, n);
	if (rc != 0) {
		dbiter_fail(d, error_set(rc, "dbiter: cannot build a %zu-byte seek key", n));
		return;
	}
	memcpy(d->seekbuf.data, d->ns_be, KEYS_NS_SIZE);
	if (klen)
		memcpy(d->seekbuf.data + KEYS_NS_SIZE, key, klen);
	/* The largest trailer this snapshot can see: versions newer than the
	 * snapshot sort before it and are skipped by the seek itself. */
	keys_put_u64le(d->seekbuf.data + KEYS_NS_SIZE + klen,
	               keys_trailer(d->snapshot, KEYS_KIND_VALUE));
	iter_seek(d->in, keys_slice_of(d->seekbuf.data, n));
	dbiter_find(d, false);
}

void dbiter_seek_first(dbiter *d)
{
	dbiter_seek(d, "", 0);
}

void dbiter_next(dbiter *d)
{
	assert(d->valid);
	iter_next(d->in);
	dbiter_find(d, true);
}

bool dbiter_valid(const dbiter *d)
{
	return d->valid;
}

const void *dbiter_key(const dbiter *d, size_t *klen)
{
	assert(d->valid);
	*klen = d->key.len;
	return d->key.data;
}

const void *dbiter_value(const dbiter *d, size_t *vlen)
{
	assert(d->valid);
	*vlen = d->value.len;
	return d->value.data;
}

int dbiter_status(const dbiter *d)
{
	return d->status;
}

void dbiter_free(dbiter *d)
{
	if (!d)
		return;
	iter_destroy(d->in);
	mem_free(d->key.data);
	mem_free(d->upper.data);
	mem_free(d->seekbuf.data);
	mem_free(d);
}
