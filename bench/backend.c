/* backend.c — engine lookup and the option names all engines share. */
#include "backend.h"

#include <stdio.h>
#include <string.h>

#include "job.h"

static const struct backend *const backend_all[] = {
    &backend_cesium,
#ifdef BENCH_HAVE_ROCKSDB
    &backend_rocksdb,
#endif
#ifdef BENCH_HAVE_LEVELDB
    &backend_leveldb,
#endif
#ifdef BENCH_HAVE_LMDB
    &backend_lmdb,
#endif
};

const struct backend *backend_find(const char *name)
{
	for (size_t i = 0; i < sizeof(backend_all) / sizeof(backend_all[0]); i++)
		if (strcmp(backend_all[i]->name, name) == 0)
			return backend_all[i];
	return NULL;
}

const char *backend_list(void)
{
	return "cesium"
#ifdef BENCH_HAVE_ROCKSDB
	       ",rocksdb"
#endif
#ifdef BENCH_HAVE_LEVELDB
	       ",leveldb"
#endif
#ifdef BENCH_HAVE_LMDB
	       ",lmdb"
#endif
	    ;
}

int backend_common_opts(struct backend_cfg *cfg, const char *engine, bool peers_only)
{
	for (unsigned i = 0; i < cfg->nopts; i++) {
		const char *n = cfg->opt_name[i], *v = cfg->opt_value[i];
		uint64_t u = 0;
		bool ok = true;
		if (strcmp(n, "memtable_size") == 0 || strcmp(n, "write_buffer_size") == 0)
			ok = job_parse_size(v, &cfg->memtable_size);
		else if (strcmp(n, "block_cache_size") == 0 || strcmp(n, "cache_size") == 0)
			ok = job_parse_size(v, &cfg->cache_size);
		else if (strcmp(n, "bloom_bits_per_key") == 0 || strcmp(n, "bloom_bits") == 0) {
			ok = job_parse_size(v, &u) && u <= 64;
			cfg->bloom_bits = (unsigned)u;
		} else if (strcmp(n, "statistics") == 0) {
			ok = strcmp(v, "0") == 0 || strcmp(v, "1") == 0 ||
			     strcmp(v, "false") == 0 || strcmp(v, "true") == 0;
			cfg->statistics = strcmp(v, "1") == 0 || strcmp(v, "true") == 0;
		} else if (strcmp(n, "compression") == 0) {
			ok = strcmp(v, "none") == 0 || strcmp(v, "zstd") == 0;
			cfg->compression = strcmp(v, "none") != 0;
		} else if (peers_only) {
			fprintf(stderr, "cesium-bench: engine %s: unknown option '%s'\n", engine,
			        n);
			return -1;
		}
		if (!ok) {
			fprintf(stderr, "cesium-bench: engine %s: option '%s': bad value '%s'\n",
			        engine, n, v);
			return -1;
		}
	}
	return 0;
}
