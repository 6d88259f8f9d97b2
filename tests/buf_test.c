/* Unit tests for io/buf: aligned I/O buffers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "error.h"

/* Buffers are 4096-aligned and their size is rounded up to whole pages. */
static void test_alloc_is_aligned_and_rounded(void **state)
{
	(void)state;
	static const size_t sizes[] = {1, 4095, 4096, 4097, 100000, 1 << 20};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct io_buf b;
		assert_int_equal(io_buf_alloc(&b, sizes[i]), 0);
		assert_non_null(b.data);
		assert_int_equal((uintptr_t)b.data % IO_BUF_ALIGN, 0);
		assert_true(b.size >= sizes[i]);
		assert_int_equal(b.size % IO_BUF_ALIGN, 0);
		assert_true(b.size < sizes[i] + IO_BUF_ALIGN);
		memset(b.data, 0xab, b.size); /* the whole size is usable */
		io_buf_free(&b);
		assert_null(b.data);
		assert_int_equal(b.size, 0);
	}
}

/* A zero or absurd size is refused with EINVAL, leaving the buffer empty. */
static void test_alloc_rejects_bad_sizes(void **state)
{
	(void)state;
	struct io_buf b;
	assert_int_equal(io_buf_alloc(&b, 0), CESIUM_EINVAL);
	assert_null(b.data);
	assert_int_equal(io_buf_alloc(&b, SIZE_MAX), CESIUM_EINVAL);
	assert_null(b.data);
}

/* Freeing twice, or freeing a zeroed buffer, is harmless. */
static void test_free_is_idempotent(void **state)
{
	(void)state;
	struct io_buf b = {0};
	io_buf_free(&b);
	assert_int_equal(io_buf_alloc(&b, 10), 0);
	io_buf_free(&b);
	io_buf_free(&b);
	assert_null(b.data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_alloc_is_aligned_and_rounded),
	    cmocka_unit_test(test_alloc_rejects_bad_sizes),
	    cmocka_unit_test(test_free_is_idempotent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
