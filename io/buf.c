#include "buf.h"

#include <stdint.h>

#include "error.h"
#include "mem.h"

int io_buf_alloc(struct io_buf *b, size_t size)
{
	b->data = NULL;
	b->size = 0;
	if (size == 0 || size > SIZE_MAX - IO_BUF_ALIGN)
		return error_set(CESIUM_EINVAL, "io_buf_alloc: bad size %zu", size);
	size_t rounded = (size + IO_BUF_ALIGN - 1) / IO_BUF_ALIGN * IO_BUF_ALIGN;
	void *p = mem_aligned_alloc(IO_BUF_ALIGN, rounded);
	if (!p)
		return error_set(CESIUM_ENOMEM, "io_buf_alloc: %zu bytes", rounded);
	b->data = p;
	b->size = rounded;
	return 0;
}

void io_buf_free(struct io_buf *b)
{
	if (b->data)
		mem_free(b->data);
	b->data = NULL;
	b->size = 0;
}
