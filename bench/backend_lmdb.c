/* backend_lmdb.c — LMDB (lmdb.h): a copy-on-write B+tree in one memory map.
 * It has no memtable, cache or bloom filter (the page cache is its cache),
 * so those budgets do not apply. Each put or delete is its own write
 * transaction, the counterpart of a WAL append; without sync the commit is
 * written but not flushed (MDB_NOSYNC), as the LSM engines' WAL is. Each
 * get is its own read transaction. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lmdb.h>

#include "backend.h"

/* Address space reserved for the map; the file grows only as used. */
#define BLM_MAP_SIZE (256ull << 30)

struct blm_db {
	MDB_env *env;
	MDB_dbi dbi;
};

struct blm_iter {
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	bool valid;
	int err;
};

static int blm_check(const char *what, int rc)
{
	if (rc == 0)
		return 0;
	fprintf(stderr, "cesium-bench: lmdb %s: %s\n", what, mdb_strerror(rc));
	return -1;
}

static int blm_close(void *p)
{
	struct blm_db *d = p;
	mdb_env_close(d->env);
	free(d);
	return 0;
}

static int blm_open(const struct backend_cfg *cfg, void **out)
{
	struct backend_cfg c = *cfg;
	MDB_txn *txn = NULL;
	if (backend_common_opts(&c, "lmdb", true))
		return -1;
	struct blm_db *d = calloc(1, sizeof(*d));
	if (!d)
		return -1;
	int rc = mdb_env_create(&d->env);
	if (blm_check("env_create", rc)) {
		free(d);
		return -1;
	}
	unsigned flags = MDB_NOTLS | MDB_NORDAHEAD | (c.sync ? 0u : MDB_NOSYNC);
	if (blm_check("set_mapsize", mdb_env_set_mapsize(d->env, BLM_MAP_SIZE)) ||
	    blm_check("set_maxreaders", mdb_env_set_maxreaders(d->env, 4096)) ||
	    blm_check("env_open", mdb_env_open(d->env, c.dir, flags, 0644)) ||
	    blm_check("txn_begin", mdb_txn_begin(d->env, NULL, 0, &txn)))
		goto fail;
	rc = mdb_dbi_open(txn, NULL, 0, &d->dbi);
	if (blm_check("dbi_open", rc)) {
		mdb_txn_abort(txn);
		goto fail;
	}
	if (blm_check("commit", mdb_txn_commit(txn)))
		goto fail;
	*out = d;
	return 0;
fail:
	blm_close(d);
	return -1;
}

static int blm_write(struct blm_db *d, const void *k, size_t kl, const void *v, size_t vl, bool del)
{
	MDB_txn *txn = NULL;
	MDB_val key = {.mv_size = kl, .mv_data = (void *)k};
	MDB_val val = {.mv_size = vl, .mv_data = (void *)v};
	if (blm_check("txn_begin", mdb_txn_begin(d->env, NULL, 0, &txn)))
		return -1;
	int rc = del ? mdb_del(txn, d->dbi, &key, NULL) : mdb_put(txn, d->dbi, &key, &val, 0);
	if (rc && !(del && rc == MDB_NOTFOUND)) {
		mdb_txn_abort(txn);
		return blm_check(del ? "del" : "put", rc);
	}
	return blm_check("commit", mdb_txn_commit(txn));
}

static int blm_put(void *p, const void *k, size_t kl, const void *v, size_t vl)
{
	return blm_write(p, k, kl, v, vl, false);
}

static int blm_del(void *p, const void *k, size_t kl)
{
	return blm_write(p, k, kl, NULL, 0, true);
}

static int blm_get(void *p, const void *k, size_t kl, void **v, size_t *vl)
{
	struct blm_db *d = p;
	MDB_txn *txn = NULL;
	MDB_val key = {.mv_size = kl, .mv_data = (void *)k}, val;
	if (blm_check("txn_begin", mdb_txn_begin(d->env, NULL, MDB_RDONLY, &txn)))
		return -1;
	int rc = mdb_get(txn, d->dbi, &key, &val);
	int ret = 1;
	if (rc == 0) {
		/* The other engines hand out a copy too. */
		void *copy = malloc(val.mv_size ? val.mv_size : 1);
		ret = -1;
		if (copy) {
			memcpy(copy, val.mv_data, val.mv_size);
			*v = copy;
			*vl = val.mv_size;
			ret = 0;
		}
	} else if (rc != MDB_NOTFOUND) {
		ret = blm_check("get", rc);
	}
	mdb_txn_abort(txn);
	return ret;
}

static int blm_iter_new(void *p, void **out)
{
	struct blm_db *d = p;
	struct blm_iter *i = calloc(1, sizeof(*i));
	if (!i)
		return -1;
	if (blm_check("txn_begin", mdb_txn_begin(d->env, NULL, MDB_RDONLY, &i->txn))) {
		free(i);
		return -1;
	}
	if (blm_check("cursor_open", mdb_cursor_open(i->txn, d->dbi, &i->cur))) {
		mdb_txn_abort(i->txn);
		free(i);
		return -1;
	}
	*out = i;
	return 0;
}

static void blm_iter_step(struct blm_iter *i, MDB_cursor_op op)
{
	int rc = mdb_cursor_get(i->cur, &i->k, &i->v, op);
	i->valid = rc == 0;
	if (rc && rc != MDB_NOTFOUND)
		i->err = rc;
}

static void blm_iter_seek(void *p, const void *k, size_t kl)
{
	struct blm_iter *i = p;
	if (kl) {
		i->k.mv_size = kl;
		i->k.mv_data = (void *)k;
		blm_iter_step(i, MDB_SET_RANGE);
	} else {
		blm_iter_step(i, MDB_FIRST);
	}
}

static bool blm_iter_valid(void *p)
{
	return ((struct blm_iter *)p)->valid;
}

static void blm_iter_next(void *p)
{
	blm_iter_step(p, MDB_NEXT);
}

static const void *blm_iter_key(void *p, size_t *kl)
{
	struct blm_iter *i = p;
	*kl = i->k.mv_size;
	return i->k.mv_data;
}

static const void *blm_iter_value(void *p, size_t *vl)
{
	struct blm_iter *i = p;
	*vl = i->v.mv_size;
	return i->v.mv_data;
}

static int blm_iter_free(void *p)
{
	struct blm_iter *i = p;
	int rc = blm_check("iterate", i->err);
	mdb_cursor_close(i->cur);
	mdb_txn_abort(i->txn);
	free(i);
	return rc;
}

static void blm_stats(void *p, struct backend_stats *st)
{
	(void)p;
	st->write_amp = st->compaction_bytes = st->stall_sec = st->cache_hit_rate = -1;
}

const struct backend backend_lmdb = {
    .name = "lmdb",
    .open = blm_open,
    .close = blm_close,
    .put = blm_put,
    .del = blm_del,
    .get = blm_get,
    .vfree = free,
    .iter_new = blm_iter_new,
    .iter_seek = blm_iter_seek,
    .iter_valid = blm_iter_valid,
    .iter_next = blm_iter_next,
    .iter_key = blm_iter_key,
    .iter_value = blm_iter_value,
    .iter_free = blm_iter_free,
    .stats = blm_stats,
};
