/* Unit tests for core/options: defaults, parsing of every option, size
 * suffixes, get round trip, text form and cross-option validation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cesium.h"
#include "mem.h"
#include "options.h"

#define KIB (UINT64_C(1) << 10)
#define MIB (UINT64_C(1) << 20)
#define GIB (UINT64_C(1) << 30)

static void assert_get(const cesium_options *o, const char *name, const char *want)
{
	char buf[64];
	assert_int_equal(cesium_options_get(o, name, buf, sizeof(buf)), 0);
	assert_string_equal(buf, want);
}

/* Defaults are the documented ones and pass validation. */
static void defaults_match_documentation(void **state)
{
	(void)state;
	cesium_options *o;
	assert_int_equal(cesium_options_new(&o), 0);
	assert_true(o->create_if_missing);
	assert_false(o->error_if_exists);
	assert_int_equal(o->memtable_size, 64 * MIB);
	assert_int_equal(o->max_memtables, 4);
	assert_int_equal(o->block_size, 4 * KIB);
	assert_int_equal(o->block_cache_size, 64 * MIB);
	assert_int_equal(o->bloom_bits_per_key, 10);
	assert_int_equal(o->compression, OPTIONS_COMPRESSION_NONE);
	assert_int_equal(o->zstd_level, 3);
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	assert_int_equal(o->compaction_workers, cpus < 1 ? 1 : cpus > 64 ? 64 : cpus);
	assert_int_equal(o->l0_compaction_trigger, 4);
	assert_int_equal(o->l0_slowdown_trigger, 8);
	assert_int_equal(o->l0_stop_trigger, 12);
	assert_false(o->sync_writes);
	assert_int_equal(o->target_file_size, 64 * MIB);
	assert_int_equal(o->target_file_size_multiplier, 2);
	assert_int_equal(o->level_size_multiplier, 10);
	assert_int_equal(o->max_bytes_for_level_base, 256 * MIB);
	assert_int_equal(o->wal_prealloc_size, 4 * MIB);
	assert_int_equal(options_validate(o), 0);
	assert_get(o, "memtable_size", "64MiB");
	assert_get(o, "compression", "none");
	assert_get(o, "create_if_missing", "true");
	cesium_options_free(o);
}

struct good {
	const char *name, *value, *formatted;
};

/* A good value for every option is stored and formats back canonically. */
static void every_option_accepts_good_values(void **state)
{
	(void)state;
	static const struct good goods[] = {
		{ "create_if_missing", "false", "false" },
		{ "create_if_missing", "ON", "true" },
		{ "error_if_exists", "yes", "true" },
		{ "error_if_exists", "0", "false" },
		{ "memtable_size", "65536", "64KiB" },
		{ "memtable_size", "4GiB", "4GiB" },
		{ "memtable_size", "100000", "100000" },
		{ "max_memtables", "1", "1" },
		{ "max_memtables", "64", "64" },
		{ "block_size", "512", "512" },
		{ "block_size", "1m", "1MiB" },
		{ "block_cache_size", "0", "0" },
		{ "block_cache_size", "2G", "2GiB" },
		{ "bloom_bits_per_key", "0", "0" },
		{ "bloom_bits_per_key", "32", "32" },
		{ "compression", "zstd", "zstd" },
		{ "compression", "NONE", "none" },
		{ "zstd_level", "19", "19" },
		{ "compaction_workers", "64", "64" },
		{ "l0_compaction_trigger", "2", "2" },
		{ "l0_slowdown_trigger", "20", "20" },
		{ "l0_stop_trigger", "36", "36" },
		{ "sync_writes", "True", "true" },
		{ "sync_writes", "off", "false" },
		{ "target_file_size", "2MiB", "2MiB" },
		{ "target_file_size_multiplier", "16", "16" },
		{ "level_size_multiplier", "2", "2" },
		{ "max_bytes_for_level_base", "1gib", "1GiB" },
		{ "wal_prealloc_size", "64k", "64KiB" },
		{ "wal_prealloc_size", "3m", "3MiB" },
	};
	cesium_options *o;
	assert_int_equal(cesium_options_new(&o), 0);
	for (size_t i = 0; i < sizeof(goods) / sizeof(goods[0]); i++) {
		int rc = cesium_options_set(o, goods[i].name, goods[i].value);
		if (rc)
			fail_msg("%s=%s: %s", goods[i].name, goods[i].value, cesium_errmsg());
		assert_get(o, goods[i].name, goods[i].formatted);
	}
	assert_int_equal(o->memtable_size, 100000);
	assert_int_equal(o->block_cache_size, 2 * GIB);
	assert_int_equal(o->wal_prealloc_size, 3 * MIB);
	assert_int_equal(o->compression, OPTIONS_COMPRESSION_NONE);
	cesium_options_free(o);
}

/* Malformed or out-of-range values are CESIUM_EINVAL, name the option, and
 * leave every option unchanged. */
static void every_option_rejects_bad_values(void **state)
{
	(void)state;
	static const struct {
		const char *name, *value;
	} bads[] = {
		{ "create_if_missing", "" },     { "create_if_missing", "maybe" },
		{ "create_if_missing", "2" },    { "error_if_exists", "truee" },
		{ "memtable_size", "" },         { "memtable_size", "-1" },
		{ "memtable_size", "+5MiB" },    { "memtable_size", "64KiBx" },
		{ "memtable_size", "1" },        { "memtable_size", "5GiB" },
		{ "memtable_size", " 64MiB" },   { "memtable_size", "64 MiB" },
		{ "memtable_size", "MiB" },      { "memtable_size", "64KB" },
		{ "memtable_size", "99999999999999999999999" },
		{ "memtable_size", "18446744073709551615G" },
		{ "max_memtables", "0" },        { "max_memtables", "65" },
		{ "max_memtables", "4K" },       { "max_memtables", "4294967300" },
		{ "block_size", "511" },         { "block_size", "2MiB" },
		{ "block_cache_size", "2TiB" },  { "block_cache_size", "-0" },
		{ "bloom_bits_per_key", "33" },  { "bloom_bits_per_key", "1.5" },
		{ "compression", "lz4" },        { "compression", "" },
		{ "zstd_level", "0" },           { "zstd_level", "20" },
		{ "compaction_workers", "0" },   { "compaction_workers", "65" },
		{ "l0_compaction_trigger", "0" }, { "l0_slowdown_trigger", "0" },
		{ "l0_stop_trigger", "100000" }, { "sync_writes", "y" },
		{ "target_file_size", "1KiB" },  { "target_file_size_multiplier", "0" },
		{ "target_file_size_multiplier", "17" }, { "level_size_multiplier", "1" },
		{ "level_size_multiplier", "101" }, { "max_bytes_for_level_base", "1KiB" },
		{ "wal_prealloc_size", "2GiB" }, { "wal_prealloc_size", "0" },
	};
	cesium_options *o, *ref;
	assert_int_equal(cesium_options_new(&o), 0);
	assert_int_equal(cesium_options_new(&ref), 0);
	for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		int rc = cesium_options_set(o, bads[i].name, bads[i].value);
		if (rc != CESIUM_EINVAL)
			fail_msg("%s=\"%s\" accepted", bads[i].name, bads[i].value);
		assert_non_null(strstr(cesium_errmsg(), bads[i].name));
		assert_non_null(strstr(cesium_errmsg(), "expected"));
		assert_memory_equal(o, ref, sizeof(*o));
	}
	cesium_options_free(o);
	cesium_options_free(ref);
}

/* Unknown names and NULL arguments are CESIUM_EINVAL, never a crash. */
static void unknown_names_and_nulls_rejected(void **state)
{
	(void)state;
	cesium_options *o;
	char buf[64];
	assert_int_equal(cesium_options_new(&o), 0);
	assert_int_equal(cesium_options_set(o, "no_such_option", "1"), CESIUM_EINVAL);
	assert_non_null(strstr(cesium_errmsg(), "no_such_option"));
	assert_int_equal(cesium_options_set(o, "", "1"), CESIUM_EINVAL);
	assert_int_equal(cesium_options_set(o, "Memtable_Size", "1MiB"), CESIUM_EINVAL);
	assert_int_equal(cesium_options_set(NULL, "memtable_size", "1MiB"), CESIUM_EINVAL);
	assert_int_equal(cesium_options_set(o, NULL, "1MiB"), CESIUM_EINVAL);
	assert_int_equal(cesium_options_set(o, "memtable_size", NULL), CESIUM_EINVAL);
	assert_int_equal(cesium_options_get(o, "nope", buf, sizeof(buf)), CESIUM_EINVAL);
	assert_int_equal(cesium_options_get(NULL, "memtable_size", buf, sizeof(buf)),
	                 CESIUM_EINVAL);
	assert_int_equal(cesium_options_get(o, "memtable_size", NULL, 10), CESIUM_EINVAL);
	/* Too small a buffer is an error, not a truncation. */
	assert_int_equal(cesium_options_get(o, "memtable_size", buf, 5), CESIUM_EINVAL);
	assert_int_equal(cesium_options_get(o, "memtable_size", buf, 6), 0);
	assert_string_equal(buf, "64MiB");
	assert_int_equal(cesium_options_new(NULL), CESIUM_EINVAL);
	cesium_options_free(o);
	cesium_options_free(NULL);
}

/* Every suffix spelling multiplies as documented. */
static void size_suffixes_multiply(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		uint64_t bytes;
	} sizes[] = {
		{ "1048576", MIB },  { "1024K", MIB },   { "1024k", MIB }, { "1024KiB", MIB },
		{ "1024kib", MIB },  { "1M", MIB },      { "1m", MIB },    { "1MiB", MIB },
		{ "1MIB", MIB },     { "1G", GIB },      { "1GiB", GIB },  { "3gib", 3 * GIB },
		{ "0001MiB", MIB },  { "1536K", 1536 * KIB },
	};
	cesium_options *o;
	assert_int_equal(cesium_options_new(&o), 0);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		assert_int_equal(cesium_options_set(o, "max_bytes_for_level_base", sizes[i].text),
		                 0);
		assert_int_equal(o->max_bytes_for_level_base, sizes[i].bytes);
	}
	cesium_options_free(o);
}

/* get then set of each option's value restores it exactly, via the text
 * file form too. */
static void get_set_round_trip(void **state)
{
	(void)state;
	cesium_options *a, *b;
	assert_int_equal(cesium_options_new(&a), 0);
	assert_int_equal(cesium_options_set(a, "memtable_size", "100001"), 0);
	assert_int_equal(cesium_options_set(a, "block_cache_size", "3KiB"), 0);
	assert_int_equal(cesium_options_set(a, "compression", "zstd"), 0);
	assert_int_equal(cesium_options_set(a, "sync_writes", "1"), 0);
	assert_int_equal(cesium_options_set(a, "create_if_missing", "0"), 0);
	assert_int_equal(cesium_options_set(a, "zstd_level", "7"), 0);

	char *text;
	assert_int_equal(options_to_text(a, &text), 0);
	assert_non_null(strstr(text, "memtable_size=100001\n"));
	assert_non_null(strstr(text, "compression=zstd\n"));
	assert_non_null(strstr(text, "block_cache_size=3KiB\n"));

	assert_int_equal(options_copy(NULL, &b), 0);
	assert_int_equal(options_from_text(b, text, strlen(text)), 0);
	assert_memory_equal(a, b, sizeof(*a));
	mem_free(text);

	/* Per option: set(get(x)) is the identity. */
	cesium_options_free(b);
	assert_int_equal(options_copy(NULL, &b), 0);
	assert_int_equal(options_to_text(a, &text), 0);
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		char *eq = strchr(line, '=');
		assert_non_null(eq);
		*eq = '\0';
		char buf[64];
		assert_int_equal(cesium_options_get(a, line, buf, sizeof(buf)), 0);
		assert_string_equal(buf, eq + 1);
		assert_int_equal(cesium_options_set(b, line, buf), 0);
	}
	assert_memory_equal(a, b, sizeof(*a));
	mem_free(text);

	/* options_copy copies. */
	cesium_options *c;
	assert_int_equal(options_copy(a, &c), 0);
	assert_memory_equal(a, c, sizeof(*a));
	cesium_options_free(a);
	cesium_options_free(b);
	cesium_options_free(c);
}

/* The text parser reports the line of a bad entry. */
static void from_text_reports_bad_line(void **state)
{
	(void)state;
	cesium_options *o;
	assert_int_equal(cesium_options_new(&o), 0);
	const char *t = "# comment\n\nmax_memtables=8\nbogus\n";
	assert_int_equal(options_from_text(o, t, strlen(t)), CESIUM_EINVAL);
	assert_non_null(strstr(cesium_errmsg(), "line 4"));
	assert_int_equal(o->max_memtables, 8);
	t = "zstd_level=99";
	assert_int_equal(options_from_text(o, t, strlen(t)), CESIUM_EINVAL);
	assert_non_null(strstr(cesium_errmsg(), "zstd_level"));
	cesium_options_free(o);
}

/* validate catches trigger orderings that set cannot see, and fields set
 * directly out of range. */
static void validate_checks_relationships(void **state)
{
	(void)state;
	cesium_options *o;
	assert_int_equal(cesium_options_new(&o), 0);
	assert_int_equal(cesium_options_set(o, "l0_stop_trigger", "4"), 0);
	assert_int_equal(options_validate(o), CESIUM_EINVAL);
	assert_non_null(strstr(cesium_errmsg(), "l0_stop_trigger"));
	assert_int_equal(cesium_options_set(o, "l0_slowdown_trigger", "4"), 0);
	assert_int_equal(options_validate(o), 0);
	assert_int_equal(cesium_options_set(o, "l0_compaction_trigger", "5"), 0);
	assert_int_equal(options_validate(o), CESIUM_EINVAL);
	assert_non_null(strstr(cesium_errmsg(), "l0_compaction_trigger"));
	assert_int_equal(cesium_options_set(o, "l0_compaction_trigger", "4"), 0);
	assert_int_equal(options_validate(o), 0);
	o->block_size = 100;
	assert_int_equal(options_validate(o), CESIUM_EINVAL);
	assert_non_null(strstr(cesium_errmsg(), "block_size"));
	assert_int_equal(options_validate(NULL), CESIUM_EINVAL);
	cesium_options_free(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(defaults_match_documentation),
		cmocka_unit_test(every_option_accepts_good_values),
		cmocka_unit_test(every_option_rejects_bad_values),
		cmocka_unit_test(unknown_names_and_nulls_rejected),
		cmocka_unit_test(size_suffixes_multiply),
		cmocka_unit_test(get_set_round_trip),
		cmocka_unit_test(from_text_reports_bad_line),
		cmocka_unit_test(validate_checks_relationships),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
