#include "options.h"

#include "error.h"
#include "mem.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define KIB (UINT64_C(1) << 10)
#define MIB (UINT64_C(1) << 20)
#define GIB (UINT64_C(1) << 30)
#define TIB (UINT64_C(1) << 40)

enum options_type {
	OPTIONS_BOOL, /* bool field */
	OPTIONS_SIZE, /* uint64_t field, bytes with optional suffix */
	OPTIONS_UINT, /* uint32_t field, plain decimal */
	OPTIONS_ENUM, /* uint32_t field, one of options_compression_names */
};

struct options_def {
	const char *name;
	enum options_type type;
	size_t offset;
	uint64_t def; /* default (see options_init_defaults for exceptions) */
	uint64_t min, max;
	const char *help;
};

static const char *const options_compression_names[] = { "none", "zstd" };
#define OPTIONS_NCOMPRESSION (sizeof(options_compression_names) / sizeof(options_compression_names[0]))

#define OPT(field, type, def, min, max, help) \
	{ #field, type, offsetof(struct cesium_options, field), def, min, max, help }

/* The one list of options: parse, format, defaults and docs follow it.
 * compaction_workers' default of 0 stands for "online CPUs". */
/* clang-format off */
static const struct options_def options_table[] = {
	OPT(create_if_missing, OPTIONS_BOOL, 1, 0, 1, "create the database if it does not exist"),
	OPT(error_if_exists, OPTIONS_BOOL, 0, 0, 1, "fail to open an existing database"),
	OPT(memtable_size, OPTIONS_SIZE, 64 * MIB, 64 * KIB, 4 * GIB,
	    "memory of one memtable before it is sealed and flushed"),
	OPT(max_memtables, OPTIONS_UINT, 4, 1, 64, "sealed memtables allowed before writers wait"),
	OPT(block_size, OPTIONS_SIZE, 4 * KIB, 512, 1 * MIB, "target size of a segment data block"),
	OPT(block_cache_size, OPTIONS_SIZE, 64 * MIB, 0, 1 * TIB,
	    "bytes of uncompressed blocks cached; 0 disables the cache"),
	OPT(bloom_bits_per_key, OPTIONS_UINT, 10, 0, 32, "bloom filter bits per key; 0 disables"),
	OPT(compression, OPTIONS_ENUM, OPTIONS_COMPRESSION_NONE, 0, OPTIONS_NCOMPRESSION - 1,
	    "block compression"),
	OPT(zstd_level, OPTIONS_UINT, 3, 1, 19, "zstd compression level"),
	OPT(compaction_workers, OPTIONS_UINT, 0, 1, 64, "compactor actors running at once"),
	OPT(l0_compaction_trigger, OPTIONS_UINT, 4, 1, 1024, "L0 runs that start a compaction"),
	OPT(l0_slowdown_trigger, OPTIONS_UINT, 8, 1, 1024, "L0 runs at which writes slow down"),
	OPT(l0_stop_trigger, OPTIONS_UINT, 12, 1, 1024, "L0 runs at which writes stop"),
	OPT(sync_writes, OPTIONS_BOOL, 0, 0, 1, "every write behaves as CESIUM_WRITE_SYNC"),
	OPT(checksum_every_read, OPTIONS_BOOL, 0, 0, 1,
	    "verify a mapped block's checksum on every read, not once per open segment"),
	OPT(target_file_size, OPTIONS_SIZE, 64 * MIB, 64 * KIB, 4 * GIB,
	    "target segment size at L0 and L1"),
	OPT(target_file_size_multiplier, OPTIONS_UINT, 2, 1, 16,
	    "growth of the target segment size per level"),
	OPT(level_size_multiplier, OPTIONS_UINT, 10, 2, 100,
	    "growth of the level size per leveled level"),
	OPT(max_bytes_for_level_base, OPTIONS_SIZE, 256 * MIB, 1 * MIB, 1 * TIB,
	    "size of the first leveled level"),
	OPT(wal_prealloc_size, OPTIONS_SIZE, 4 * MIB, 64 * KIB, 1 * GIB,
	    "disk space first reserved per WAL file; growth doubles it"),
	OPT(log_value_min_size, OPTIONS_SIZE, 1 * KIB, 0, 64 * MIB,
	    "values this long stay in their WAL when flushed; 0 disables"),

};
/* clang-format on */

#define OPTIONS_COUNT (sizeof(options_table) / sizeof(options_table[0]))

static const struct options_def *options_find(const char *name)
{
	for (size_t i = 0; i < OPTIONS_COUNT; i++)
		if (strcmp(options_table[i].name, name) == 0)
			return &options_table[i];
	return NULL;
}

static uint64_t options_load(const cesium_options *o, const struct options_def *d)
{
	const char *p = (const char *)o + d->offset;
	switch (d->type) {
	case OPTIONS_BOOL: return *(const bool *)p;
	case OPTIONS_SIZE: return *(const uint64_t *)p;
	case OPTIONS_UINT:
	case OPTIONS_ENUM: return *(const uint32_t *)p;
	}
	return 0;
}

/* v is within d's range, so the narrowing casts below are exact. */
static void options_store(cesium_options *o, const struct options_def *d, uint64_t v)
{
	char *p = (char *)o + d->offset;
	switch (d->type) {
	case OPTIONS_BOOL: *(bool *)p = v != 0; break;
	case OPTIONS_SIZE: *(uint64_t *)p = v; break;
	case OPTIONS_UINT:
	case OPTIONS_ENUM: *(uint32_t *)p = (uint32_t)v; break;
	}
}

static long options_online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > 64 ? 64 : n;
}

void options_init_defaults(cesium_options *o)
{
	memset(o, 0, sizeof(*o));
	for (size_t i = 0; i < OPTIONS_COUNT; i++)
		options_store(o, &options_table[i], options_table[i].def);
	o->compaction_workers = (uint32_t)options_online_cpus();
}

/* Plain decimal digits into *v; false on empty, sign, junk or overflow.
 * *end is set to the first non-digit. */
static bool options_parse_digits(const char *s, uint64_t *v, const char **end)
{
	uint64_t n = 0;
	const char *p = s;
	if (*p < '0' || *p > '9')
		return false;
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');
		if (n > (UINT64_MAX - d) / 10)
			return false;
		n = n * 10 + d;
	}
	*v = n;
	*end = p;
	return true;
}

static bool options_parse_size(const char *s, uint64_t *v)
{
	static const struct {
		const char *suffix;
		uint64_t mult;
	} units[] = {
		{ "", 1 },      { "k", KIB }, { "kib", KIB }, { "m", MIB },
		{ "mib", MIB }, { "g", GIB }, { "gib", GIB }, { "t", TIB }, { "tib", TIB },
	};
	uint64_t n;
	const char *end;
	if (!options_parse_digits(s, &n, &end))
		return false;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcasecmp(end, units[i].suffix) != 0)
			continue;
		if (n > UINT64_MAX / units[i].mult)
			return false;
		*v = n * units[i].mult;
		return true;
	}
	return false;
}

static bool options_parse_bool(const char *s, uint64_t *v)
{
	static const char *const yes[] = { "true", "1", "yes", "on" };
	static const char *const no[] = { "false", "0", "no", "off" };
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*v = 1;
			return true;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*v = 0;
			return true;
		}
	}
	return false;
}

/* Exact, shortest text that parses back to v: "64MiB", "4097". */
static void options_format_size(uint64_t v, char *buf, size_t len)
{
	static const struct {
		const char *suffix;
		uint64_t mult;
	} units[] = { { "TiB", TIB }, { "GiB", GIB }, { "MiB", MIB }, { "KiB", KIB } };
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (v != 0 && v % units[i].mult == 0) {
			snprintf(buf, len, "%" PRIu64 "%s", v / units[i].mult, units[i].suffix);
			return;
		}
	}
	snprintf(buf, len, "%" PRIu64, v);
}

static void options_format(const struct options_def *d, uint64_t v, char *buf, size_t len)
{
	switch (d->type) {
	case OPTIONS_BOOL: snprintf(buf, len, "%s", v ? "true" : "false"); break;
	case OPTIONS_SIZE: options_format_size(v, buf, len); break;
	case OPTIONS_UINT: snprintf(buf, len, "%" PRIu64, v); break;
	case OPTIONS_ENUM:
		snprintf(buf, len, "%s",
		         v < OPTIONS_NCOMPRESSION ? options_compression_names[v] : "?");
		break;
	}
}

/* "a size in bytes with optional K/KiB/M/MiB/G/GiB suffix, 64KiB..4GiB" */
static void options_describe(const struct options_def *d, char *buf, size_t len)
{
	char lo[32], hi[32];
	options_format(d, d->min, lo, sizeof(lo));
	options_format(d, d->max, hi, sizeof(hi));
	switch (d->type) {
	case OPTIONS_BOOL: snprintf(buf, len, "true/false, 1/0, yes/no or on/off"); break;
	case OPTIONS_SIZE:
		snprintf(buf, len,
		         "a byte count, optionally with a K/KiB, M/MiB, G/GiB or T/TiB suffix, "
		         "in %s..%s",
		         lo, hi);
		break;
	case OPTIONS_UINT: snprintf(buf, len, "a decimal integer in %s..%s", lo, hi); break;
	case OPTIONS_ENUM: snprintf(buf, len, "none or zstd"); break;
	}
}

static int options_parse(const struct options_def *d, const char *value, uint64_t *v)
{
	bool ok = false;
	switch (d->type) {
	case OPTIONS_BOOL: ok = options_parse_bool(value, v); break;
	case OPTIONS_SIZE: ok = options_parse_size(value, v); break;
	case OPTIONS_UINT: {
		const char *end;
		ok = options_parse_digits(value, v, &end) && *end == '\0';
		break;
	}
	case OPTIONS_ENUM:
		for (uint64_t i = 0; i < OPTIONS_NCOMPRESSION; i++) {
			if (strcasecmp(value, options_compression_names[i]) == 0) {
				*v = i;
				ok = true;
			}
		}
		break;
	}
	if (ok && (*v < d->min || *v > d->max))
		ok = false;
	if (!ok) {
		char want[160];
		options_describe(d, want, sizeof(want));
		return error_set(CESIUM_EINVAL, "option %s: bad value \"%.64s\"; expected %s",
		                 d->name, value, want);
	}
	return 0;
}

int cesium_options_new(cesium_options **out)
{
	return options_copy(NULL, out);
}

int cesium_options_set(cesium_options *o, const char *name, const char *value)
{
	if (!o || !name || !value)
		return error_set(CESIUM_EINVAL, "cesium_options_set: NULL argument");
	const struct options_def *d = options_find(name);
	if (!d)
		return error_set(CESIUM_EINVAL,
		                 "unknown option \"%.64s\"; see docs/options.md for the names", name);
	uint64_t v = 0;
	int rc = options_parse(d, value, &v);
	if (rc)
		return rc;
	options_store(o, d, v);
	return 0;
}

int cesium_options_get(const cesium_options *o, const char *name, char *buf, size_t buflen)
{
	if (!o || !name || !buf)
		return error_set(CESIUM_EINVAL, "cesium_options_get: NULL argument");
	const struct options_def *d = options_find(name);
	if (!d)
		return error_set(CESIUM_EINVAL,
		                 "unknown option \"%.64s\"; see docs/options.md for the names", name);
	char tmp[64];
	options_format(d, options_load(o, d), tmp, sizeof(tmp));
	size_t n = strlen(tmp);
	if (n >= buflen)
		return error_set(CESIUM_EINVAL, "cesium_options_get: %s needs a %zu-byte buffer",
		                 name, n + 1);
	memcpy(buf, tmp, n + 1);
	return 0;
}

void cesium_options_free(cesium_options *o)
{
	mem_free(o);
}

int options_validate(const cesium_options *o)
{
	if (!o)
		return error_set(CESIUM_EINVAL, "options: NULL");
	/* The struct is public to the engine, so a field may have been set
	 * without going through the parser. */
	for (size_t i = 0; i < OPTIONS_COUNT; i++) {
		const struct options_def *d = &options_table[i];
		uint64_t v = options_load(o, d);
		if (v < d->min || v > d->max) {
			char got[32], want[160];
			options_format(d, v, got, sizeof(got));
			options_describe(d, want, sizeof(want));
			return error_set(CESIUM_EINVAL, "option %s: %s out of range; expected %s",
			                 d->name, got, want);
		}
	}
	if (o->l0_slowdown_trigger > o->l0_stop_trigger)
		return error_set(CESIUM_EINVAL,
		                 "options: l0_slowdown_trigger (%" PRIu32
		                 ") must not exceed l0_stop_trigger (%" PRIu32 ")",
		                 o->l0_slowdown_trigger, o->l0_stop_trigger);
	if (o->l0_compaction_trigger > o->l0_slowdown_trigger)
		return error_set(CESIUM_EINVAL,
		                 "options: l0_compaction_trigger (%" PRIu32
		                 ") must not exceed l0_slowdown_trigger (%" PRIu32 ")",
		                 o->l0_compaction_trigger, o->l0_slowdown_trigger);
	return 0;
}

int options_copy(const cesium_options *src, cesium_options **out)
{
	if (!out)
		return error_set(CESIUM_EINVAL, "options_copy: NULL out");
	*out = NULL;
	cesium_options *o = mem_alloc(sizeof(*o));
	if (!o)
		return error_set(CESIUM_ENOMEM, "options: out of memory");
	if (src)
		memcpy(o, src, sizeof(*o));
	else
		options_init_defaults(o);
	*out = o;
	return 0;
}

int options_to_text(const cesium_options *o, char **out)
{
	if (!o || !out)
		return error_set(CESIUM_EINVAL, "options_to_text: NULL argument");
	*out = NULL;
	/* name (< 32) + '=' + value (< 64) + '\n' per line. */
	size_t cap = OPTIONS_COUNT * 100 + 1, len = 0;
	char *s = mem_alloc(cap);
	if (!s)
		return error_set(CESIUM_ENOMEM, "options: out of memory");
	for (size_t i = 0; i < OPTIONS_COUNT; i++) {
		char v[64];
		options_format(&options_table[i], options_load(o, &options_table[i]), v, sizeof(v));
		int n = snprintf(s + len, cap - len, "%s=%s\n", options_table[i].name, v);
		if (n < 0 || (size_t)n >= cap - len) {
			mem_free(s);
			return error_set(CESIUM_ENOMEM, "options_to_text: buffer too small");
		}
		len += (size_t)n;
	}
	*out = s;
	return 0;
}

int options_from_text(cesium_options *o, const char *text, size_t len)
{
	if (!o || (!text && len))
		return error_set(CESIUM_EINVAL, "options_from_text: NULL argument");
	size_t pos = 0;
	unsigned line = 0;
	while (pos < len) {
		line++;
		const char *start = text + pos;
		const char *nl = memchr(start, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - start) : len - pos;
		pos += n + (nl ? 1 : 0);
		if (n == 0 || start[0] == '#')
			continue;
		char buf[160];
		if (n >= sizeof(buf))
			return error_set(CESIUM_EINVAL, "options: line %u too long", line);
		memcpy(buf, start, n);
		buf[n] = '\0';
		char *eq = strchr(buf, '=');
		if (!eq)
			return error_set(CESIUM_EINVAL, "options: line %u has no '='", line);
		*eq = '\0';
		int rc = cesium_options_set(o, buf, eq + 1);
		if (rc) {
			char msg[ERROR_MSG_MAX];
			snprintf(msg, sizeof(msg), "%s", cesium_errmsg());
			return error_set(rc, "options: line %u: %s", line, msg);
		}
	}
	return 0;
}
