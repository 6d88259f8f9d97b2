/* backend_leveldb.c — LevelDB through its C API (leveldb/c.h). Settings
 * mirror cesium's: one memtable of memtable_size, an LRU block cache of
 * cache_size, a bloom filter of bloom_bits, no compression, WAL on. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <leveldb/c.h>

#include "backend.h"

struct bld_db {
	leveldb_t *db;
	leveldb_options_t *opts;
	leveldb_filterpolicy_t *filter;
	leveldb_cache_t *cache;
	leveldb_writeoptions_t *wo;
	leveldb_readoptions_t *ro;
};

struct bld_iter {
	leveldb_iterator_t *it;
};

static int bld_check(const char *what, char *err)
{
	if (!err)
		return 0;
	fprintf(stderr, "cesium-bench: rocksdb %s: %s\n", what, err);
	leveldb_free(err);
	return -1;
}

static int bld_close(void *p)
{
	struct bld_db *d = p;
	if (d->db)
		leveldb_close(d->db);
	if (d->wo)
		leveldb_writeoptions_destroy(d->wo);
	if (d->ro)
		leveldb_readoptions_destroy(d->ro);
	if (d->opts)
		leveldb_options_destroy(d->opts);
	if (d->filter)
		leveldb_filterpolicy_destroy(d->filter);
	if (d->cache)
		leveldb_cache_destroy(d->cache);
	free(d);
	return 0;
}

static int bld_open(const struct backend_cfg *cfg, void **out)
{
	struct backend_cfg c = *cfg;
	char *err = NULL;
	if (backend_common_opts(&c, "leveldb", true))
		return -1;
	struct bld_db *d = calloc(1, sizeof(*d));
	if (!d)
		return -1;
	d->opts = leveldb_options_create();
	d->cache = leveldb_cache_create_lru(c.cache_size);
	d->wo = leveldb_writeoptions_create();
	d->ro = leveldb_readoptions_create();
	leveldb_options_set_create_if_missing(d->opts, 1);
	leveldb_options_set_write_buffer_size(d->opts, c.memtable_size);
	/* LevelDB has snappy, not zstd: the nearest to "compression on". */
	leveldb_options_set_compression(d->opts, c.compression ? leveldb_snappy_compression
	                                                       : leveldb_no_compression);
	leveldb_options_set_cache(d->opts, d->cache);
	if (c.bloom_bits) {
		d->filter = leveldb_filterpolicy_create_bloom((int)c.bloom_bits);
		leveldb_options_set_filter_policy(d->opts, d->filter);
	}
	leveldb_writeoptions_set_sync(d->wo, c.sync);
	d->db = leveldb_open(d->opts, c.dir, &err);
	if (bld_check("open", err)) {
		d->db = NULL;
		bld_close(d);
		return -1;
	}
	*out = d;
	return 0;
}

static int bld_put(void *p, const void *k, size_t kl, const void *v, size_t vl)
{
	struct bld_db *d = p;
	char *err = NULL;
	leveldb_put(d->db, d->wo, k, kl, v, vl, &err);
	return bld_check("put", err);
}

static int bld_del(void *p, const void *k, size_t kl)
{
	struct bld_db *d = p;
	char *err = NULL;
	leveldb_delete(d->db, d->wo, k, kl, &err);
	return bld_check("delete", err);
}

static int bld_get(void *p, const void *k, size_t kl, void **v, size_t *vl)
{
	struct bld_db *d = p;
	char *err = NULL;
	char *r = leveldb_get(d->db, d->ro, k, kl, vl, &err);
	if (bld_check("get", err))
		return -1;
	if (!r)
		return 1;
	*v = r;
	return 0;
}

static void bld_vfree(void *v)
{
	leveldb_free(v);
}

static int bld_iter_new(void *p, void **out)
{
	struct bld_db *d = p;
	struct bld_iter *i = calloc(1, sizeof(*i));
	if (!i)
		return -1;
	i->it = leveldb_create_iterator(d->db, d->ro);
	*out = i;
	return 0;
}

static void bld_iter_seek(void *p, const void *k, size_t kl)
{
	struct bld_iter *i = p;
	if (kl)
		leveldb_iter_seek(i->it, k, kl);
	else
		leveldb_iter_seek_to_first(i->it);
}

static bool bld_iter_valid(void *p)
{
	return leveldb_iter_valid(((struct bld_iter *)p)->it) != 0;
}

static void bld_iter_next(void *p)
{
	leveldb_iter_next(((struct bld_iter *)p)->it);
}

static const void *bld_iter_key(void *p, size_t *kl)
{
	return leveldb_iter_key(((struct bld_iter *)p)->it, kl);
}

static const void *bld_iter_value(void *p, size_t *vl)
{
	return leveldb_iter_value(((struct bld_iter *)p)->it, vl);
}

static int bld_iter_free(void *p)
{
	struct bld_iter *i = p;
	char *err = NULL;
	leveldb_iter_get_error(i->it, &err);
	int rc = bld_check("iterate", err);
	leveldb_iter_destroy(i->it);
	free(i);
	return rc;
}

static void bld_stats(void *p, struct backend_stats *st)
{
	(void)p;
	/* LevelDB's C API has no counters for these. */
	st->write_amp = st->compaction_bytes = st->stall_sec = st->cache_hit_rate = -1;
}

const struct backend backend_leveldb = {
    .name = "leveldb",
    .open = bld_open,
    .close = bld_close,
    .put = bld_put,
    .del = bld_del,
    .get = bld_get,
    .vfree = bld_vfree,
    .iter_new = bld_iter_new,
    .iter_seek = bld_iter_seek,
    .iter_valid = bld_iter_valid,
    .iter_next = bld_iter_next,
    .iter_key = bld_iter_key,
    .iter_value = bld_iter_value,
    .iter_free = bld_iter_free,
    .stats = bld_stats,
};
