/* backend_rocksdb.c — RocksDB through its C API (rocksdb/c.h). Settings
 * mirror cesium's: one memtable of memtable_size, an LRU block cache of
 * cache_size, a bloom filter of bloom_bits, no compression, WAL on. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rocksdb/c.h>

#include "backend.h"

struct brk_db {
	rocksdb_t *db;
	rocksdb_options_t *opts;
	rocksdb_block_based_table_options_t *table;
	rocksdb_cache_t *cache;
	rocksdb_writeoptions_t *wo;
	rocksdb_readoptions_t *ro;
	bool statistics;
};

struct brk_iter {
	rocksdb_iterator_t *it;
};

static int brk_check(const char *what, char *err)
{
	if (!err)
		return 0;
	fprintf(stderr, "cesium-bench: rocksdb %s: %s\n", what, err);
	rocksdb_free(err);
	return -1;
}

static int brk_close(void *p)
{
	struct brk_db *d = p;
	if (d->db)
		rocksdb_close(d->db);
	if (d->wo)
		rocksdb_writeoptions_destroy(d->wo);
	if (d->ro)
		rocksdb_readoptions_destroy(d->ro);
	if (d->opts)
		rocksdb_options_destroy(d->opts);
	if (d->table)
		rocksdb_block_based_options_destroy(d->table);
	if (d->cache)
		rocksdb_cache_destroy(d->cache);
	free(d);
	return 0;
}

static int brk_open(const struct backend_cfg *cfg, void **out)
{
	struct backend_cfg c = *cfg;
	char *err = NULL;
	if (backend_common_opts(&c, "rocksdb", true))
		return -1;
	struct brk_db *d = calloc(1, sizeof(*d));
	if (!d)
		return -1;
	d->opts = rocksdb_options_create();
	d->table = rocksdb_block_based_options_create();
	d->cache = rocksdb_cache_create_lru(c.cache_size);
	d->wo = rocksdb_writeoptions_create();
	d->ro = rocksdb_readoptions_create();
	rocksdb_options_set_create_if_missing(d->opts, 1);
	/* Only on request: the statistics object costs ~5 % of the get rate
	 * (measured on readrandom), which would tilt the comparison. */
	d->statistics = c.statistics;
	if (c.statistics)
		rocksdb_options_enable_statistics(d->opts);
	rocksdb_options_set_write_buffer_size(d->opts, c.memtable_size);
	rocksdb_options_set_compression(d->opts, c.compression ? rocksdb_zstd_compression
	                                                       : rocksdb_no_compression);
	rocksdb_block_based_options_set_block_cache(d->table, d->cache);
	if (c.bloom_bits)
		rocksdb_block_based_options_set_filter_policy(
		    d->table, rocksdb_filterpolicy_create_bloom((double)c.bloom_bits));
	rocksdb_options_set_block_based_table_factory(d->opts, d->table);
	rocksdb_writeoptions_set_sync(d->wo, c.sync);
	d->db = rocksdb_open(d->opts, c.dir, &err);
	if (brk_check("open", err)) {
		d->db = NULL;
		brk_close(d);
		return -1;
	}
	*out = d;
	return 0;
}

static int brk_put(void *p, const void *k, size_t kl, const void *v, size_t vl)
{
	struct brk_db *d = p;
	char *err = NULL;
	rocksdb_put(d->db, d->wo, k, kl, v, vl, &err);
	return brk_check("put", err);
}

static int brk_del(void *p, const void *k, size_t kl)
{
	struct brk_db *d = p;
	char *err = NULL;
	rocksdb_delete(d->db, d->wo, k, kl, &err);
	return brk_check("delete", err);
}

static int brk_get(void *p, const void *k, size_t kl, void **v, size_t *vl)
{
	struct brk_db *d = p;
	char *err = NULL;
	char *r = rocksdb_get(d->db, d->ro, k, kl, vl, &err);
	if (brk_check("get", err))
		return -1;
	if (!r)
		return 1;
	*v = r;
	return 0;
}

static int brk_multi_get(void *p, size_t n, const void *const *keys, const size_t *klens,
                         void **vals, size_t *vlens, int *st)
{
	struct brk_db *d = p;
	/* The C API fills char * arrays; small batches use the stack. */
	char *vbuf[64], *ebuf[64];
	char **v = n <= 64 ? vbuf : malloc(n * sizeof(*v));
	char **e = n <= 64 ? ebuf : calloc(n, sizeof(*e));
	int out = 0;
	if (!v || !e) {
		fprintf(stderr, "cesium-bench: rocksdb multi_get: out of memory\n");
		for (size_t i = 0; i < n; i++) {
			vals[i] = NULL;
			st[i] = -1;
		}
		out = -1;
		goto done;
	}
	for (size_t i = 0; i < n; i++)
		e[i] = NULL;
	rocksdb_multi_get(d->db, d->ro, n, (const char *const *)keys, klens, v, vlens, e);
	for (size_t i = 0; i < n; i++) {
		vals[i] = NULL;
		if (e[i]) {
			if (out == 0)
				fprintf(stderr, "cesium-bench: rocksdb multi_get: %s\n", e[i]);
			rocksdb_free(e[i]);
			if (v[i])
				rocksdb_free(v[i]);
			st[i] = -1;
			out = -1;
		} else if (v[i]) {
			vals[i] = v[i];
			st[i] = 0;
		} else {
			st[i] = 1;
		}
	}
done:
	if (v != vbuf)
		free(v);
	if (e != ebuf)
		free(e);
	return out;
}

static void brk_vfree(void *v)
{
	rocksdb_free(v);
}

static int brk_iter_new(void *p, void **out)
{
	struct brk_db *d = p;
	struct brk_iter *i = calloc(1, sizeof(*i));
	if (!i)
		return -1;
	i->it = rocksdb_create_iterator(d->db, d->ro);
	*out = i;
	return 0;
}

static void brk_iter_seek(void *p, const void *k, size_t kl)
{
	struct brk_iter *i = p;
	if (kl)
		rocksdb_iter_seek(i->it, k, kl);
	else
		rocksdb_iter_seek_to_first(i->it);
}

static bool brk_iter_valid(void *p)
{
	return rocksdb_iter_valid(((struct brk_iter *)p)->it) != 0;
}

static void brk_iter_next(void *p)
{
	rocksdb_iter_next(((struct brk_iter *)p)->it);
}

static const void *brk_iter_key(void *p, size_t *kl)
{
	return rocksdb_iter_key(((struct brk_iter *)p)->it, kl);
}

static const void *brk_iter_value(void *p, size_t *vl)
{
	return rocksdb_iter_value(((struct brk_iter *)p)->it, vl);
}

static int brk_iter_free(void *p)
{
	struct brk_iter *i = p;
	char *err = NULL;
	rocksdb_iter_get_error(i->it, &err);
	int rc = brk_check("iterate", err);
	rocksdb_iter_destroy(i->it);
	free(i);
	return rc;
}

/* The COUNT of ticker name in RocksDB's statistics dump ("name COUNT :
 * 123" lines), or -1 when it is not there. */
static double brk_ticker(const char *text, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, name, n) == 0 && strncmp(p + n, " COUNT : ", 9) == 0)
			return strtod(p + n + 9, NULL);
	return -1;
}

static void brk_stats(void *p, struct backend_stats *st)
{
	struct brk_db *d = p;
	st->write_amp = st->compaction_bytes = st->stall_sec = st->cache_hit_rate = -1;
	if (!d->statistics)
		return;
	char *text = rocksdb_options_statistics_get_string(d->opts);
	if (!text)
		return;
	double hit = brk_ticker(text, "rocksdb.block.cache.hit");
	double miss = brk_ticker(text, "rocksdb.block.cache.miss");
	double flushed = brk_ticker(text, "rocksdb.flush.write.bytes");
	double cr = brk_ticker(text, "rocksdb.compact.read.bytes");
	double cw = brk_ticker(text, "rocksdb.compact.write.bytes");
	double stall = brk_ticker(text, "rocksdb.stall.micros");
	if (hit >= 0 && miss >= 0 && hit + miss > 0)
		st->cache_hit_rate = hit / (hit + miss);
	/* cesium's definition: segment bytes written per segment byte flushed. */
	if (flushed > 0 && cw >= 0)
		st->write_amp = (flushed + cw) / flushed;
	if (cr >= 0 && cw >= 0)
		st->compaction_bytes = cr + cw;
	if (stall >= 0)
		st->stall_sec = stall / 1e6;
	rocksdb_free(text);
}

const struct backend backend_rocksdb = {
    .name = "rocksdb",
    .open = brk_open,
    .close = brk_close,
    .put = brk_put,
    .del = brk_del,
    .get = brk_get,
    .multi_get = brk_multi_get,
    .vfree = brk_vfree,
    .iter_new = brk_iter_new,
    .iter_seek = brk_iter_seek,
    .iter_valid = brk_iter_valid,
    .iter_next = brk_iter_next,
    .iter_key = brk_iter_key,
    .iter_value = brk_iter_value,
    .iter_free = brk_iter_free,
    .stats = brk_stats,
};
