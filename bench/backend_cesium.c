/* backend_cesium.c — cesium through its public API (include/cesium.h). */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "cesium.h"

static void bcs_error(const char *what, int rc)
{
	fprintf(stderr, "cesium-bench: cesium %s: %s: %s\n", what, cesium_strerror(rc),
	        cesium_errmsg());
}

static int bcs_set(cesium_options *o, const char *n, const char *v)
{
	int rc = cesium_options_set(o, n, v);
	if (rc)
		fprintf(stderr, "cesium-bench: cesium option %s=%s: %s: %s\n", n, v,
		        cesium_strerror(rc), cesium_errmsg());
	return rc;
}

static int bcs_open(const struct backend_cfg *cfg, void **out)
{
	cesium_options *o = NULL;
	cesium_db *db = NULL;
	char buf[32];
	int rc = cesium_options_new(&o);
	if (rc) {
		bcs_error("options_new", rc);
		return -1;
	}
	snprintf(buf, sizeof(buf), "%" PRIu64, cfg->memtable_size);
	if ((rc = bcs_set(o, "memtable_size", buf)))
		goto out;
	snprintf(buf, sizeof(buf), "%" PRIu64, cfg->cache_size);
	if ((rc = bcs_set(o, "block_cache_size", buf)))
		goto out;
	snprintf(buf, sizeof(buf), "%u", cfg->bloom_bits);
	if ((rc = bcs_set(o, "bloom_bits_per_key", buf)))
		goto out;
	if ((rc = bcs_set(o, "compression", cfg->compression ? "zstd" : "none")))
		goto out;
	if ((rc = bcs_set(o, "sync_writes", cfg->sync ? "true" : "false")))
		goto out;
	/* Pass-through options last, so that any cesium name wins. */
	for (unsigned i = 0; i < cfg->nopts; i++) {
		/* cesium always counts; the switch is for the peers. */
		if (strcmp(cfg->opt_name[i], "statistics") == 0)
			continue;
		if ((rc = bcs_set(o, cfg->opt_name[i], cfg->opt_value[i])))
			goto out;
	}
	rc = cesium_open(cfg->dir, o, &db);
	if (rc)
		bcs_error("open", rc);
out:
	cesium_options_free(o);
	if (rc)
		return -1;
	*out = db;
	return 0;
}

static int bcs_close(void *db)
{
	int rc = cesium_close(db);
	if (rc)
		bcs_error("close", rc);
	return rc ? -1 : 0;
}

static int bcs_put(void *db, const void *k, size_t kl, const void *v, size_t vl)
{
	int rc = cesium_put(db, k, kl, v, vl);
	if (rc)
		bcs_error("put", rc);
	return rc ? -1 : 0;
}

static int bcs_del(void *db, const void *k, size_t kl)
{
	int rc = cesium_delete(db, k, kl);
	if (rc)
		bcs_error("delete", rc);
	return rc ? -1 : 0;
}

static int bcs_get(void *db, const void *k, size_t kl, void **v, size_t *vl)
{
	int rc = cesium_get(db, k, kl, v, vl);
	if (rc == CESIUM_ENOTFOUND)
		return 1;
	if (rc)
		bcs_error("get", rc);
	return rc ? -1 : 0;
}

static int bcs_multi_get(void *db, size_t n, const void *const *keys, const size_t *klens,
                         void **vals, size_t *vlens, int *st)
{
	/* A status the call left untouched (it failed before that key) takes
	 * the call's error. */
	for (size_t i = 0; i < n; i++) {
		vals[i] = NULL;
		st[i] = INT_MIN;
	}
	int rc = cesium_multi_get(db, 0, n, keys, klens, vals, vlens, st);
	int out = 0;
	for (size_t i = 0; i < n; i++) {
		if (st[i] == INT_MIN)
			st[i] = rc ? rc : CESIUM_EIO;
		if (st[i] == 0)
			continue;
		if (st[i] == CESIUM_ENOTFOUND) {
			st[i] = 1;
			continue;
		}
		if (out == 0)
			bcs_error("multi_get", st[i]);
		if (vals[i])
			cesium_free(vals[i]);
		vals[i] = NULL;
		st[i] = -1;
		out = -1;
	}
	if (rc && out == 0) {
		bcs_error("multi_get", rc);
		out = -1;
	}
	return out;
}

static int bcs_iter_new(void *db, void **it)
{
	int rc = cesium_iter_new(db, 0, (cesium_iter **)it);
	if (rc)
		bcs_error("iter_new", rc);
	return rc ? -1 : 0;
}

static void bcs_iter_seek(void *it, const void *k, size_t kl)
{
	if (kl)
		cesium_iter_seek(it, k, kl);
	else
		cesium_iter_seek_first(it);
}

static bool bcs_iter_valid(void *it)
{
	return cesium_iter_valid(it);
}

static void bcs_iter_next(void *it)
{
	cesium_iter_next(it);
}

static const void *bcs_iter_key(void *it, size_t *kl)
{
	return cesium_iter_key(it, kl);
}

static const void *bcs_iter_value(void *it, size_t *vl)
{
	return cesium_iter_value(it, vl);
}

static int bcs_iter_free(void *it)
{
	int rc = cesium_iter_status(it);
	if (rc)
		bcs_error("iterate", rc);
	cesium_iter_free(it);
	return rc ? -1 : 0;
}

static double bcs_stat(const char *text, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, name, n) == 0 && p[n] == ' ')
			return strtod(p + n + 1, NULL);
	return -1;
}

static void bcs_stats(void *db, struct backend_stats *st)
{
	char *text = NULL;
	st->write_amp = st->compaction_bytes = st->stall_sec = st->cache_hit_rate = -1;
	if (cesium_stats(db, &text) != 0)
		return;
	double wa = bcs_stat(text, "write_amplification_milli");
	double cr = bcs_stat(text, "compaction_bytes_read");
	double cw = bcs_stat(text, "compaction_bytes_written");
	double s1 = bcs_stat(text, "slowdown_ns"), s2 = bcs_stat(text, "stop_ns");
	double s3 = bcs_stat(text, "memtable_wait_ns");
	double hits = bcs_stat(text, "block_cache_hits");
	double miss = bcs_stat(text, "block_cache_misses");
	if (wa >= 0)
		st->write_amp = wa / 1000.0;
	if (cr >= 0 && cw >= 0)
		st->compaction_bytes = cr + cw;
	if (s1 >= 0 && s2 >= 0)
		st->stall_sec = (s1 + s2 + (s3 > 0 ? s3 : 0)) / 1e9;
	/* Only when the engine counts them (not every version does). */
	if (hits >= 0 && miss >= 0 && hits + miss > 0)
		st->cache_hit_rate = hits / (hits + miss);
	cesium_free(text);
}

const struct backend backend_cesium = {
    .name = "cesium",
    .open = bcs_open,
    .close = bcs_close,
    .put = bcs_put,
    .del = bcs_del,
    .get = bcs_get,
    .multi_get = bcs_multi_get,
    .vfree = cesium_free,
    .iter_new = bcs_iter_new,
    .iter_seek = bcs_iter_seek,
    .iter_valid = bcs_iter_valid,
    .iter_next = bcs_iter_next,
    .iter_key = bcs_iter_key,
    .iter_value = bcs_iter_value,
    .iter_free = bcs_iter_free,
    .stats = bcs_stats,
};
