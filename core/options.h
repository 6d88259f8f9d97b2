/*
 * options — every tunable of a database as a typed field, its default, its
 * accepted range, and the text form used by cesium_options_set/get and by
 * the OPTIONS file in the database directory. One table (options.c) drives
 * parsing, formatting and the docs (docs/options.md).
 *
 * Ownership: a cesium_options belongs to its creator; cesium_open copies it
 * (options_copy), so the engine reads its own immutable copy from any
 * thread without locks. Setting options is for one thread at a time.
 * Lifetime: options_to_text returns a heap string the caller frees with
 * mem_free.
 */
#ifndef CESIUM_CORE_OPTIONS_H
#define CESIUM_CORE_OPTIONS_H

#include "cesium.h"

#include <stdbool.h>
#include <stdint.h>

enum options_compression {
	OPTIONS_COMPRESSION_NONE = 0,
	OPTIONS_COMPRESSION_ZSTD = 1,
};

struct cesium_options {
	bool create_if_missing;
	bool error_if_exists;
	uint64_t memtable_size;            /* bytes */
	uint32_t max_memtables;            /* sealed memtables before writers wait */
	uint64_t block_size;               /* bytes, uncompressed data block target */
	uint64_t block_cache_size;         /* bytes; 0 = no cache */
	uint32_t bloom_bits_per_key;       /* 0 = no filter */
	uint32_t compression;              /* enum options_compression */
	uint32_t zstd_level;
	uint32_t compaction_workers;
	uint32_t l0_compaction_trigger;    /* L0 runs that start a compaction */
	uint32_t l0_slowdown_trigger;      /* L0 runs that slow writers down */
	uint32_t l0_stop_trigger;          /* L0 runs that stop writers */
	bool sync_writes;
	bool checksum_every_read;          /* mapped blocks: verify each access */
	uint64_t target_file_size;         /* bytes, L0/L1 segments */
	uint32_t target_file_size_multiplier; /* per level below */
	uint32_t level_size_multiplier;
	uint64_t max_bytes_for_level_base; /* bytes */
	uint64_t wal_prealloc_size;        /* bytes; 0 = no preallocation */
	uint64_t log_value_min_size;       /* bytes; 0 = flushes copy every value */
};

/* Fills o with the defaults. */
void options_init_defaults(cesium_options *o);
/* Cross-option checks (l0_compaction_trigger <= l0_slowdown_trigger <=
 * l0_stop_trigger); CESIUM_EINVAL with a message. Called by cesium_open. */
int options_validate(const cesium_options *o);
/* A heap copy of src, or of the defaults when src is NULL. Free with
 * cesium_options_free. CESIUM_ENOMEM. */
int options_copy(const cesium_options *src, cesium_options **out);
/* "name=value\n" for every option, in table order; *out is NUL-terminated,
 * freed with mem_free. CESIUM_ENOMEM. */
int options_to_text(const cesium_options *o, char **out);
/* Applies "name=value" lines (as options_to_text writes them; blank lines
 * and lines starting with '#' are skipped). Stops at the first bad line with
 * CESIUM_EINVAL naming its line number; earlier lines stay applied. */
int options_from_text(cesium_options *o, const char *text, size_t len);

#endif
