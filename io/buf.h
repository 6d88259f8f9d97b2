/*
 * buf — page-aligned buffers for I/O. Aligned to IO_BUF_ALIGN and sized in
 * whole multiples of it, so that a buffer can serve O_DIRECT and registered
 * buffers as well as buffered I/O.
 *
 * A struct io_buf is owned by whoever allocated it; any thread may allocate
 * or free one, but only one at a time may use it. data stays valid until
 * io_buf_free, and must outlive every ring request that points into it.
 */
#ifndef CESIUM_IO_BUF_H
#define CESIUM_IO_BUF_H

#include <stddef.h>

#define IO_BUF_ALIGN 4096u

struct io_buf {
	void *data;
	size_t size; /* usable bytes: the requested size rounded up to IO_BUF_ALIGN */
};

/* Allocates at least size bytes (size > 0); CESIUM_EINVAL or CESIUM_ENOMEM. */
int io_buf_alloc(struct io_buf *b, size_t size);
/* Frees b->data and zeroes b; safe on a zeroed or already freed buffer. */
void io_buf_free(struct io_buf *b);

#endif
