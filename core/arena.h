/*
 * arena — bump allocator behind a memtable: many small allocations, freed
 * all at once when the memtable dies.
 *
 * Ownership: the arena owns every block it hands out; arena_free releases
 * them all. Pointers returned by arena_alloc stay valid until arena_free.
 * Threads: arena_alloc may be called by several writer threads at once
 * (an atomic bump pointer inside the current block; a short mutex, taken by
 * writers only, when a new block is needed). arena_memory_usage may be read
 * from any thread. arena_free must not race with anything.
 */
#ifndef CESIUM_CORE_ARENA_H
#define CESIUM_CORE_ARENA_H

#include <stddef.h>

typedef struct arena arena;

/* block_size: bytes per ordinary block (at least 256). CESIUM_EINVAL,
 * CESIUM_ENOMEM. */
int arena_new(size_t block_size, arena **out);
/* size bytes aligned to align (a power of two, 1 allowed); NULL when out of
 * memory or on a bad alignment. Requests larger than block_size/4 get a
 * block of their own so they do not waste the tail of the current one. */
void *arena_alloc(arena *a, size_t size, size_t align);
/* Bytes reserved from the system (blocks, headers included). */
size_t arena_memory_usage(const arena *a);
/* Releases every block; a may be NULL. */
void arena_free(arena *a);

#endif
