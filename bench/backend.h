/*
 * backend.h — the engine interface of cesium-bench: one table of functions
 * per key-value engine (backend_cesium.c, backend_rocksdb.c, ...), so that
 * adding an engine is one file plus one line in backend_find.
 *
 * Contract: open() returns a handle shared by every worker thread; put, get,
 * del and the iterator calls may run from several threads at once (an
 * iterator belongs to the thread that made it). Each call prints its own
 * error (engine, call, message) on stderr and returns -1; get returns 1 for
 * a missing key. A value from get is freed with vfree. Iterator key/value
 * pointers stay valid until the iterator moves or is freed.
 *
 * multi_get is NULL when the engine has no batched lookup (the caller then
 * loops over get). It looks up n keys at once: statuses[i] is 0 with
 * vals[i]/vlens[i] set (free with vfree), 1 when the key is missing, or -1
 * on an error (printed); it returns -1 if any key met an error, else 0.
 *
 * Equivalent settings: every engine gets the same budgets from struct
 * backend_cfg (memtable, block cache, bloom bits, no compression, WAL or
 * its equivalent on, sync per write when asked).
 */
#ifndef BENCH_BACKEND_H
#define BENCH_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct backend_cfg {
	const char *dir;
	bool sync;
	uint64_t memtable_size;
	uint64_t cache_size;
	unsigned bloom_bits;
	bool compression; /* zstd/snappy/lz4 when the engine has it */
	/* RocksDB: keep a statistics object (cache hits, compaction bytes,
	 * stalls). Off by default: it costs RocksDB ~5 % of its get rate. */
	bool statistics;
	/* Engine options passed through (--opt name=value); cesium takes any
	 * of its own names, peers only the common ones above. */
	const char (*opt_name)[64];
	const char (*opt_value)[128];
	unsigned nopts;
};

struct backend_stats {
	double write_amp;        /* < 0 when the engine does not tell */
	double compaction_bytes; /* read + written; < 0 when unknown */
	double stall_sec;        /* < 0 when unknown */
	double cache_hit_rate;   /* < 0 when unknown */
};

struct backend {
	const char *name;
	int (*open)(const struct backend_cfg *cfg, void **db);
	int (*close)(void *db);
	int (*put)(void *db, const void *k, size_t kl, const void *v, size_t vl);
	int (*del)(void *db, const void *k, size_t kl);
	int (*get)(void *db, const void *k, size_t kl, void **v, size_t *vl);
	int (*multi_get)(void *db, size_t n, const void *const *keys, const size_t *klens,
	                 void **vals, size_t *vlens, int *statuses);
	void (*vfree)(void *v);
	int (*iter_new)(void *db, void **it);
	void (*iter_seek)(void *it, const void *k, size_t kl); /* kl 0: first key */
	bool (*iter_valid)(void *it);
	void (*iter_next)(void *it);
	const void *(*iter_key)(void *it, size_t *kl);
	const void *(*iter_value)(void *it, size_t *vl);
	int (*iter_free)(void *it); /* -1 if the scan met an error */
	void (*stats)(void *db, struct backend_stats *st);
};

/* The engine called name, or NULL when it was not built in. */
const struct backend *backend_find(const char *name);
/* Comma-separated list of the engines built in. */
const char *backend_list(void);
/* Reads the common option names (memtable_size, block_cache_size,
 * bloom_bits_per_key, compression, statistics) from the pass-through list into cfg;
 * with peers_only, any other name is an error naming engine and option. */
int backend_common_opts(struct backend_cfg *cfg, const char *engine, bool peers_only);

extern const struct backend backend_cesium;
#ifdef BENCH_HAVE_ROCKSDB
extern const struct backend backend_rocksdb;
#endif
#ifdef BENCH_HAVE_LEVELDB
extern const struct backend backend_leveldb;
#endif
#ifdef BENCH_HAVE_LMDB
extern const struct backend backend_lmdb;
#endif

#endif
