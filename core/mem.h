/*
 * mem — the allocator every module uses (mimalloc), in one place so that
 * memory can be accounted and the allocator swapped. Any thread.
 * Every call may return NULL; callers check and return CESIUM_ENOMEM.
 */
#ifndef CESIUM_CORE_MEM_H
#define CESIUM_CORE_MEM_H

#ifdef CESIUM_LIBC_MALLOC
/* Sanitizer builds: libc's allocator, so that ASan and LSan see every block. */
#include <stdlib.h>
#include <string.h>
static inline void *mem_alloc(size_t n) { return malloc(n); }
static inline void *mem_zalloc(size_t n) { return calloc(1, n); }
static inline void *mem_calloc(size_t count, size_t n) { return calloc(count, n); }
static inline void *mem_realloc(void *p, size_t n) { return realloc(p, n); }
static inline void *mem_aligned_alloc(size_t align, size_t n)
{
	void *p = NULL;
	return posix_memalign(&p, align, (n + align - 1) / align * align) == 0 ? p : NULL;
}
static inline void mem_free(void *p) { free(p); }
#else
#include <mimalloc.h>
static inline void *mem_alloc(size_t n) { return mi_malloc(n); }
static inline void *mem_zalloc(size_t n) { return mi_zalloc(n); }
static inline void *mem_calloc(size_t count, size_t n) { return mi_calloc(count, n); }
static inline void *mem_realloc(void *p, size_t n) { return mi_realloc(p, n); }
static inline void *mem_aligned_alloc(size_t align, size_t n) { return mi_malloc_aligned(n, align); }
static inline void mem_free(void *p) { mi_free(p); }
#endif

#include <stdarg.h>
#include <stdio.h>

/* printf into a new buffer from mem_alloc; NULL on failure. */
static inline __attribute__((format(printf, 1, 2))) char *mem_printf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return NULL;
	char *p = mem_alloc((size_t)n + 1);
	if (!p)
		return NULL;
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}

#endif
