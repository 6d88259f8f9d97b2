/* job.c — see job.h. */
#include "job.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const job_rw_names[] = {
    [JOB_WRITE] = "write",       [JOB_RANDWRITE] = "randwrite", [JOB_READ] = "read",
    [JOB_RANDREAD] = "randread", [JOB_RANDRW] = "randrw",       [JOB_READWRITE] = "readwrite",
    [JOB_SCAN] = "scan",         [JOB_DELETE] = "delete",       [JOB_RMW] = "readmodifywrite",
};

const char *job_rw_name(enum job_rw rw)
{
	return job_rw_names[rw];
}

void job_defaults(struct job *j)
{
	memset(j, 0, sizeof(*j));
	snprintf(j->name, sizeof(j->name), "job");
	j->rw = JOB_WRITE;
	j->rwmixread = 50;
	j->numjobs = 1;
	j->iodepth = 1;
	j->nrkeys = 100000;
	j->key_size = 16;
	j->value_size = 100;
	j->dist = JOB_DIST_RANDOM;
	j->scan_length = 0;
	snprintf(j->engine, sizeof(j->engine), "cesium");
	j->seed = 301;
}

bool job_parse_size(const char *s, uint64_t *out)
{
	static const struct {
		const char *sfx;
		uint64_t mul;
	} units[] = {
	    {"", 1},
	    {"b", 1},
	    {"k", 1ull << 10},
	    {"kb", 1ull << 10},
	    {"kib", 1ull << 10},
	    {"m", 1ull << 20},
	    {"mb", 1ull << 20},
	    {"mib", 1ull << 20},
	    {"g", 1ull << 30},
	    {"gb", 1ull << 30},
	    {"gib", 1ull << 30},
	    {"t", 1ull << 40},
	    {"tib", 1ull << 40},
	};
	char *end = NULL;
	if (!*s || *s == '-' || !isdigit((unsigned char)*s))
		return false;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno)
		return false;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcasecmp(end, units[i].sfx) == 0) {
			if (v > UINT64_MAX / units[i].mul)
				return false;
			*out = v * units[i].mul;
			return true;
		}
	}
	return false;
}

bool job_parse_time(const char *s, double *out)
{
	char *end = NULL;
	if (!*s || *s == '-')
		return false;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || !isfinite(v) || v < 0)
		return false;
	double mul;
	if (!*end || strcmp(end, "s") == 0)
		mul = 1;
	else if (strcmp(end, "ms") == 0)
		mul = 1e-3;
	else if (strcmp(end, "us") == 0)
		mul = 1e-6;
	else if (strcmp(end, "m") == 0)
		mul = 60;
	else if (strcmp(end, "h") == 0)
		mul = 3600;
	else
		return false;
	*out = v * mul;
	return true;
}

static bool job_parse_bool(const char *s, bool *out)
{
	/* A bare option name ("time_based") means true, as in fio. */
	if (!s || !*s || strcmp(s, "1") == 0 || strcasecmp(s, "true") == 0 ||
	    strcasecmp(s, "yes") == 0 || strcasecmp(s, "on") == 0) {
		*out = true;
		return true;
	}
	if (strcmp(s, "0") == 0 || strcasecmp(s, "false") == 0 || strcasecmp(s, "no") == 0 ||
	    strcasecmp(s, "off") == 0) {
		*out = false;
		return true;
	}
	return false;
}

static bool job_parse_uint(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	uint64_t v;
	if (!job_parse_size(s, &v) || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

static bool job_parse_dist(const char *s, struct job *j)
{
	const char *colon = strchr(s, ':');
	size_t n = colon ? (size_t)(colon - s) : strlen(s);
	double p = 0;
	if (colon) {
		char *end = NULL;
		errno = 0;
		p = strtod(colon + 1, &end);
		if (errno || end == colon + 1 || *end || !isfinite(p))
			return false;
	}
	if (n == 6 && strncmp(s, "random", n) == 0 && !colon) {
		j->dist = JOB_DIST_RANDOM;
	} else if (n == 4 && strncmp(s, "zipf", n) == 0) {
		/* The YCSB generator used is defined for 0 < theta < 1. */
		if (!colon)
			p = 0.99;
		if (p <= 0 || p >= 1)
			return false;
		j->dist = JOB_DIST_ZIPF;
	} else if (n == 6 && strncmp(s, "latest", n) == 0) {
		if (!colon)
			p = 0.99;
		if (p <= 0 || p >= 1)
			return false;
		j->dist = JOB_DIST_LATEST;
	} else if (n == 6 && strncmp(s, "pareto", n) == 0) {
		if (!colon)
			p = 0.2;
		if (p <= 0 || p >= 1)
			return false;
		j->dist = JOB_DIST_PARETO;
	} else if (n == 6 && strncmp(s, "normal", n) == 0) {
		if (!colon)
			p = 5;
		if (p <= 0 || p > 100)
			return false;
		j->dist = JOB_DIST_NORMAL;
	} else {
		return false;
	}
	j->dist_param = p;
	return true;
}

static int job_copy(char *dst, size_t cap, const char *v)
{
	size_t n = strlen(v);
	if (n >= cap)
		return -1;
	memcpy(dst, v, n + 1);
	return 0;
}

int job_set(struct job *j, const char *name, const char *value, char *err, size_t errlen)
{
	uint64_t u = 0;
	double d = 0;
	bool b = false;
	const char *expect = NULL;
	const char *v = value ? value : "";
#define IS(s) (strcmp(name, s) == 0)
	if (IS("name")) {
		if (!*v || job_copy(j->name, sizeof(j->name), v))
			expect = "a name of 1..63 characters";
	} else if (IS("rw") || IS("readwrite")) {
		expect = "write|randwrite|read|randread|randrw|readwrite|scan|delete|"
		         "readmodifywrite";
		for (unsigned i = 0; i < sizeof(job_rw_names) / sizeof(job_rw_names[0]); i++) {
			if (strcmp(v, job_rw_names[i]) == 0) {
				j->rw = (enum job_rw)i;
				expect = NULL;
			}
		}
		if (expect && strcmp(v, "rw") == 0) {
			j->rw = JOB_READWRITE;
			expect = NULL;
		}
	} else if (IS("rwmixread")) {
		if (job_parse_uint(v, 0, 100, &u))
			j->rwmixread = (unsigned)u;
		else
			expect = "a percentage 0..100";
	} else if (IS("rwmixwrite")) {
		if (job_parse_uint(v, 0, 100, &u))
			j->rwmixread = 100 - (unsigned)u;
		else
			expect = "a percentage 0..100";
	} else if (IS("numjobs")) {
		if (job_parse_uint(v, 1, 1024, &u))
			j->numjobs = (unsigned)u;
		else
			expect = "1..1024";
	} else if (IS("iodepth")) {
		if (job_parse_uint(v, 1, 65536, &u))
			j->iodepth = (unsigned)u;
		else
			expect = "1..65536";
	} else if (IS("runtime")) {
		if (!job_parse_time(v, &j->runtime))
			expect = "a time (30, 30s, 500ms, 2m)";
	} else if (IS("ramp_time")) {
		if (!job_parse_time(v, &j->ramp_time))
			expect = "a time (30, 30s, 500ms, 2m)";
	} else if (IS("time_based")) {
		if (!job_parse_bool(value, &j->time_based))
			expect = "a boolean";
	} else if (IS("nrkeys") || IS("num")) {
		if (job_parse_uint(v, 1, UINT64_MAX, &u)) {
			j->nrkeys = u;
			j->size = 0;
		} else {
			expect = "a count >= 1 (suffixes k, m, g allowed)";
		}
	} else if (IS("size")) {
		if (job_parse_uint(v, 1, UINT64_MAX, &u))
			j->size = u;
		else
			expect = "a size in bytes (4k, 1g)";
	} else if (IS("number_ios")) {
		if (job_parse_uint(v, 0, UINT64_MAX, &u))
			j->number_ios = u;
		else
			expect = "a count";
	} else if (IS("key_size")) {
		if (job_parse_uint(v, 8, 64, &u))
			j->key_size = (size_t)u;
		else
			expect = "8..64 bytes";
	} else if (IS("value_size") || IS("bs")) {
		if (job_parse_uint(v, 0, 16ull << 20, &u))
			j->value_size = (size_t)u;
		else
			expect = "0..16MiB";
	} else if (IS("sync")) {
		if (!job_parse_bool(value, &j->sync))
			expect = "a boolean";
	} else if (IS("random_distribution")) {
		if (!job_parse_dist(v, j))
			expect = "random, zipf:theta (0<theta<1), latest[:theta], pareto:h "
			         "(0<h<1) or normal:stddev% (0<s<=100)";
	} else if (IS("scan_length")) {
		if (job_parse_uint(v, 0, 1000000, &u))
			j->scan_length = (unsigned)u;
		else
			expect = "0..1000000";
	} else if (IS("scan_length_distribution")) {
		if (strcmp(v, "fixed") == 0)
			j->scan_uniform = false;
		else if (strcmp(v, "uniform") == 0)
			j->scan_uniform = true;
		else
			expect = "fixed|uniform";
	} else if (IS("insert")) {
		if (!job_parse_bool(value, &j->insert))
			expect = "a boolean";
	} else if (IS("invalidate")) {
		if (!job_parse_bool(value, &j->invalidate))
			expect = "a boolean";
	} else if (IS("directory")) {
		if (!*v || job_copy(j->directory, sizeof(j->directory), v))
			expect = "a path";
	} else if (IS("group_reporting")) {
		if (!job_parse_bool(value, &j->group_reporting))
			expect = "a boolean";
	} else if (IS("stonewall") || IS("wait_for_previous")) {
		if (!job_parse_bool(value, &j->stonewall))
			expect = "a boolean";
	} else if (IS("verify")) {
		/* fio's verify takes a method; any method means "check values". */
		if (!job_parse_bool(value, &b))
			b = strcmp(v, "crc32c") == 0 || strcmp(v, "md5") == 0 ||
			    strcmp(v, "pattern") == 0;
		if (!b && strcmp(v, "0") != 0 && strcasecmp(v, "false") != 0 &&
		    strcmp(v, "off") != 0 && strcmp(v, "no") != 0 && strcmp(v, "null") != 0 && *v)
			expect = "a boolean";
		j->verify = b;
	} else if (IS("engine") || IS("ioengine")) {
		if (strcmp(v, "cesium") && strcmp(v, "rocksdb") && strcmp(v, "leveldb") &&
		    strcmp(v, "lmdb"))
			expect = "cesium|rocksdb|leveldb|lmdb";
		else
			job_copy(j->engine, sizeof(j->engine), v);
	} else if (IS("write_bw_log")) {
		if (!*v || job_copy(j->bw_log, sizeof(j->bw_log), v))
			expect = "a file name prefix";
	} else if (IS("write_lat_log")) {
		if (!*v || job_copy(j->lat_log, sizeof(j->lat_log), v))
			expect = "a file name prefix";
	} else if (IS("randseed") || IS("seed")) {
		if (job_parse_uint(v, 0, UINT64_MAX, &u))
			j->seed = u;
		else
			expect = "an integer";
	} else if (IS("opt")) {
		const char *eq = strchr(v, '=');
		size_t nl = eq ? (size_t)(eq - v) : 0;
		if (!eq || nl == 0 || nl >= sizeof(j->opt_name[0]) ||
		    strlen(eq + 1) >= sizeof(j->opt_value[0])) {
			expect = "engine_option=value";
		} else {
			/* A later setting of the same engine option replaces it. */
			unsigned i;
			for (i = 0; i < j->nopts; i++)
				if (strlen(j->opt_name[i]) == nl && !strncmp(j->opt_name[i], v, nl))
					break;
			if (i == JOB_MAX_OPTS) {
				expect = "at most 32 engine options";
			} else {
				memcpy(j->opt_name[i], v, nl);
				j->opt_name[i][nl] = '\0';
				snprintf(j->opt_value[i], sizeof(j->opt_value[i]), "%s", eq + 1);
				if (i == j->nopts)
					j->nopts++;
			}
		}
	} else {
		snprintf(err, errlen, "unknown option '%s'", name);
		return -1;
	}
#undef IS
	(void)d;
	if (expect) {
		snprintf(err, errlen, "option '%s': bad value '%s' (expected %s)", name, v, expect);
		return -1;
	}
	return 0;
}

int job_finalize(struct job *j, char *err, size_t errlen)
{
	if (j->size) {
		j->nrkeys = j->size / (j->key_size + j->value_size);
		if (j->nrkeys == 0) {
			snprintf(err, errlen, "job '%s': size %llu holds no key of %zu+%zu bytes",
			         j->name, (unsigned long long)j->size, j->key_size, j->value_size);
			return -1;
		}
	}
	if (j->time_based && j->runtime <= 0) {
		snprintf(err, errlen, "job '%s': time_based needs runtime", j->name);
		return -1;
	}
	if (j->rw == JOB_SCAN && j->scan_length == 0)
		j->scan_length = 100;
	return 0;
}

void job_list_init(struct job_list *l)
{
	memset(l, 0, sizeof(*l));
	job_defaults(&l->global);
}

void job_list_free(struct job_list *l)
{
	free(l->jobs);
	l->jobs = NULL;
	l->njobs = l->cap = 0;
}

struct job *job_list_add(struct job_list *l, const char *name)
{
	if (l->njobs == l->cap) {
		unsigned cap = l->cap ? l->cap * 2 : 8;
		struct job *n = realloc(l->jobs, cap * sizeof(*n));
		if (!n)
			return NULL;
		l->jobs = n;
		l->cap = cap;
	}
	struct job *j = &l->jobs[l->njobs++];
	*j = l->global;
	j->stonewall = false; /* fio: stonewall is never inherited from [global] */
	snprintf(j->name, sizeof(j->name), "%s", name);
	return j;
}

static char *job_trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

int job_parse_file(const char *path, struct job_list *l, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	char line[2048];
	char msg[512];
	unsigned lineno = 0;
	struct job *cur = NULL;
	bool in_global = false;
	int rc = -1;
	if (!f) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		if (!strchr(line, '\n') && !feof(f)) {
			snprintf(err, errlen, "%s:%u: line longer than %zu bytes", path, lineno,
			         sizeof(line) - 2);
			goto out;
		}
		char *s = job_trim(line);
		if (!*s || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			char *close = strchr(s, ']');
			if (!close || *job_trim(close + 1)) {
				snprintf(err, errlen, "%s:%u: section header without ']'", path,
				         lineno);
				goto out;
			}
			*close = '\0';
			char *name = job_trim(s + 1);
			if (!*name || strlen(name) >= JOB_NAME_MAX) {
				snprintf(err, errlen,
				         "%s:%u: section name must be 1..63 characters", path,
				         lineno);
				goto out;
			}
			in_global = strcmp(name, "global") == 0;
			cur = NULL;
			if (!in_global && !(cur = job_list_add(l, name))) {
				snprintf(err, errlen, "%s:%u: out of memory", path, lineno);
				goto out;
			}
			continue;
		}
		if (!cur && !in_global) {
			snprintf(err, errlen, "%s:%u: option outside a section ([global] or [job])",
			         path, lineno);
			goto out;
		}
		char *eq = strchr(s, '=');
		char *value = NULL;
		if (eq) {
			*eq = '\0';
			value = job_trim(eq + 1);
		}
		char *name = job_trim(s);
		if (job_set(cur ? cur : &l->global, name, value, msg, sizeof(msg))) {
			snprintf(err, errlen, "%s:%u: %s", path, lineno, msg);
			goto out;
		}
	}
	if (ferror(f)) {
		snprintf(err, errlen, "%s: read error", path);
		goto out;
	}
	rc = 0;
out:
	fclose(f);
	return rc;
}
