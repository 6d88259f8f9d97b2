#include "arena.h"

#include "error.h"
#include "mem.h"

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>

struct arena_block {
	struct arena_block *next; /* list of every block, for arena_free */
	size_t size;              /* usable bytes in data[] */
	/* Bytes of data[] handed out. Atomic because writers bump it
	 * concurrently; relaxed suffices since the block itself was published
	 * through the acquire load of arena.cur. */
	_Atomic size_t used;
	alignas(16) unsigned char data[];
};

struct arena {
	size_t block_size;
	/* Block that ordinary allocations bump into. Release-stored after the
	 * block is initialised, acquire-loaded by writers. */
	_Atomic(struct arena_block *) cur;
	/* Guards `blocks` and replacing `cur`; only writers that need a new
	 * block take it, readers of the memtable never do. */
	pthread_mutex_t grow;
	struct arena_block *blocks;
	/* Statistic read by other threads without the lock: relaxed. */
	_Atomic size_t usage;
};

static struct arena_block *arena_block_new(arena *a, size_t size)
{
	struct arena_block *b = mem_alloc(sizeof(*b) + size);
	if (!b)
		return NULL;
	b->size = size;
	atomic_init(&b->used, 0);
	b->next = a->blocks;
	a->blocks = b;
	atomic_fetch_add_explicit(&a->usage, sizeof(*b) + size, memory_order_relaxed);
	return b;
}

int arena_new(size_t block_size, arena **out)
{
	if (!out || block_size < 256 || block_size > ((size_t)1 << 40))
		return error_set(CESIUM_EINVAL, "arena: block size %zu out of range", block_size);
	*out = NULL;
	arena *a = mem_zalloc(sizeof(*a));
	if (!a)
		return error_set(CESIUM_ENOMEM, "arena: out of memory");
	a->block_size = block_size;
	atomic_init(&a->usage, 0);
	if (pthread_mutex_init(&a->grow, NULL) != 0) {
		mem_free(a);
		return error_set(CESIUM_ENOMEM, "arena: cannot create mutex");
	}
	struct arena_block *b = arena_block_new(a, block_size);
	if (!b) {
		pthread_mutex_destroy(&a->grow);
		mem_free(a);
		return error_set(CESIUM_ENOMEM, "arena: out of memory");
	}
	atomic_init(&a->cur, b);
	*out = a;
	return 0;
}

/* Tries to carve [size, align] out of b; NULL when it does not fit. */
static void *arena_block_take(struct arena_block *b, size_t size, size_t align)
{
	size_t used = atomic_load_explicit(&b->used, memory_order_relaxed);
	uintptr_t base = (uintptr_t)b->data;
	for (;;) {
		uintptr_t start = (base + used + (align - 1)) & ~(uintptr_t)(align - 1);
		size_t off = (size_t)(start - base);
		if (off > b->size || b->size - off < size)
			return NULL;
		if (atomic_compare_exchange_weak_explicit(&b->used, &used, off + size,
		                                          memory_order_relaxed,
		                                          memory_order_relaxed))
			return (void *)start;
	}
}

void *arena_alloc(arena *a, size_t size, size_t align)
{
	void *p = NULL;
	if (!a || align == 0 || (align & (align - 1)) != 0 || align > 4096)
		return NULL;
	if (size > SIZE_MAX / 2)
		return NULL;

	if (size + align - 1 > a->block_size / 4) {
		pthread_mutex_lock(&a->grow);
		struct arena_block *b = arena_block_new(a, size + align - 1);
		if (b)
			p = arena_block_take(b, size, align);
		pthread_mutex_unlock(&a->grow);
		return p;
	}

	for (;;) {
		struct arena_block *b = atomic_load_explicit(&a->cur, memory_order_acquire);
		p = arena_block_take(b, size, align);
		if (p)
			return p;
		pthread_mutex_lock(&a->grow);
		/* Another writer may have replaced the block while we waited. */
		if (atomic_load_explicit(&a->cur, memory_order_relaxed) == b) {
			struct arena_block *nb = arena_block_new(a, a->block_size);
			if (!nb) {
				pthread_mutex_unlock(&a->grow);
				return NULL;
			}
			atomic_store_explicit(&a->cur, nb, memory_order_release);
		}
		pthread_mutex_unlock(&a->grow);
	}
}

size_t arena_memory_usage(const arena *a)
{
	if (!a)
		return 0;
	return atomic_load_explicit(&((arena *)a)->usage, memory_order_relaxed);
}

void arena_free(arena *a)
{
	if (!a)
		return;
	struct arena_block *b = a->blocks;
	while (b) {
		struct arena_block *next = b->next;
		mem_free(b);
		b = next;
	}
	pthread_mutex_destroy(&a->grow);
	mem_free(a);
}
