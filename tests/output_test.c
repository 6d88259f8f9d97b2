/* Unit tests for compaction/output: segments built with asynchronous
 * writes on a ring read back whole, and a failed write (EIO, ENOSPC, a
 * short write) or fdatasync makes add/finish fail and close remove the file. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "error.h"
#include "fault.h"
#include "file.h"
#include "mem.h"
#include "output.h"
#include "ring.h"
#include "segment.h"
#include "test_util.h"

struct fixture {
	struct io_ring ring;
	char *dir;
	char path[512];
};

static int setup(void **state)
{
	test_require_io_uring();
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f || io_ring_init(&f->ring, 64) != 0)
		return -1;
	f->dir = test_tmpdir("output");
	if (!f->dir)
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/000007.seg", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	io_fault_set(NULL, NULL);
	io_ring_exit(&f->ring);
	test_rmtree(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static size_t mk_nskey(uint8_t *out, unsigned n)
{
	char user[16];
	int ul = snprintf(user, sizeof(user), "key%08u", n);
	keys_make_nskey(out, 0, user, (size_t)ul);
	return KEYS_NS_SIZE + (size_t)ul;
}

static size_t mk_value(uint8_t *out, unsigned n, size_t vlen)
{
	for (size_t i = 0; i < vlen; i++)
		out[i] = (uint8_t)(n * 31u + i * 7u);
	return vlen;
}

#define VLEN 100

/* Adds n entries; returns the first error. */
static int add_entries(struct output *o, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		uint8_t ik[48], v[VLEN];
		size_t kl = mk_nskey(ik, i);
		keys_put_u64le(ik + kl, keys_trailer(1000 + i, KEYS_KIND_VALUE));
		mk_value(v, i, VLEN);
		int rc = output_add(o, keys_slice_of(ik, kl + KEYS_TRAILER_SIZE),
		                    keys_slice_of(v, VLEN));
		if (rc)
			return rc;
	}
	return 0;
}

static const struct seg_writer_opts wopts = {.block_size = 4096, .bloom_bits_per_key = 10};

static void build_and_read_back(struct fixture *f, unsigned n)
{
	struct output o;
	assert_int_equal(output_open(&o, &f->ring, f->path, 7, &wopts), 0);
	assert_int_equal(add_entries(&o, n), 0);
	assert_int_equal(output_finish(&o), 0);
	uint64_t size = seg_writer_file_size(o.writer);
	assert_int_equal(o.bytes_written, size);
	output_close(&o, true);

	int fd = io_open(f->path, O_RDONLY, 0);
	assert_true(fd >= 0);
	assert_int_equal(io_file_size(fd), (int64_t)size);
	seg_reader *r = NULL;
	assert_int_equal(seg_reader_open(fd, f->path, 7, NULL, &r), 0);
	assert_int_equal(seg_reader_props(r)->entries, n);
	for (unsigned i = 0; i < n; i++) {
		uint8_t nk[32], want[VLEN];
		size_t kl = mk_nskey(nk, i);
		mk_value(want, i, VLEN);
		enum keys_kind kind;
		void *val = NULL;
		size_t vlen = 0;
		assert_int_equal(
		    seg_reader_get(r, keys_slice_of(nk, kl), KEYS_MAX_SEQ, &kind, &val, &vlen), 0);
		assert_int_equal(kind, KEYS_KIND_VALUE);
		assert_int_equal(vlen, VLEN);
		assert_memory_equal(val, want, VLEN);
		mem_free(val);
	}
	iter *it = NULL;
	assert_int_equal(seg_reader_iter_new(r, NULL, &it), 0);
	unsigned count = 0;
	for (iter_seek_first(it); iter_valid(it); iter_next(it))
		count++;
	assert_int_equal(iter_status(it), 0);
	assert_int_equal(count, n);
	iter_destroy(it);
	seg_reader_unref(r);
	assert_int_equal(unlink(f->path), 0);
}

/* A small segment (one write at finish) reads back every key. */
static void test_small_segment_reads_back(void **state)
{
	build_and_read_back(*state, 100);
}

/* A segment of several OUTPUT_CHUNKs (pipelined writes) reads back every key. */
static void test_multi_chunk_segment_reads_back(void **state)
{
	/* ~130 bytes an entry: about 5 chunks. */
	build_and_read_back(*state, 40000);
}

/* output_open refuses an existing file (O_EXCL) and leaves it alone. */
static void test_open_refuses_existing_file(void **state)
{
	struct fixture *f = *state;
	FILE *fp = fopen(f->path, "w");
	assert_non_null(fp);
	fputs("precious", fp);
	fclose(fp);
	struct output o;
	assert_int_not_equal(output_open(&o, &f->ring, f->path, 7, &wopts), 0);
	assert_int_equal(access(f->path, F_OK), 0);
	unlink(f->path);
}

struct fault {
	enum io_op op;
	int err;      /* 0: shorten the write instead */
	unsigned nth; /* fail the nth matching operation (1-based) */
	atomic_uint seen;
};

static int fault_hook(void *arg, enum io_op op, int fd, const char *path, size_t *len)
{
	struct fault *ft = arg;
	(void)fd;
	(void)path;
	if (op != ft->op)
		return 0;
	if (atomic_fetch_add(&ft->seen, 1) + 1 != ft->nth)
		return 0;
	if (ft->err)
		return ft->err;
	*len /= 2;
	return 0;
}

/* Builds n entries with the fault installed; the error must surface from
 * add or finish, and close(false) must remove the file. */
static void check_fault(struct fixture *f, enum io_op op, int err, unsigned nth, unsigned n,
                        int want)
{
	struct fault ft = {.op = op, .err = err, .nth = nth};
	struct output o;
	assert_int_equal(output_open(&o, &f->ring, f->path, 7, &wopts), 0);
	io_fault_set(fault_hook, &ft);
	int rc = add_entries(&o, n);
	if (!rc)
		rc = output_finish(&o);
	io_fault_set(NULL, NULL);
	assert_true(atomic_load(&ft.seen) >= nth);
	assert_int_equal(rc, want);
	assert_non_null(strstr(cesium_errmsg(), f->path));
	assert_int_equal(access(f->path, F_OK), 0);
	output_close(&o, false);
	assert_int_equal(io_ring_inflight(&f->ring), 0);
	assert_int_equal(access(f->path, F_OK), -1);
	assert_int_equal(errno, ENOENT);
}

/* EIO on the only write fails output_finish. */
static void test_write_eio_fails_finish(void **state)
{
	check_fault(*state, IO_OP_WRITE, -EIO, 1, 100, CESIUM_EIO);
}

/* ENOSPC on a write fails output_finish with CESIUM_ENOSPC. */
static void test_write_enospc_fails_finish(void **state)
{
	check_fault(*state, IO_OP_WRITE, -ENOSPC, 1, 100, CESIUM_ENOSPC);
}

/* A short write (half the bytes reached the file) is a full disk. */
static void test_short_write_fails_finish(void **state)
{
	check_fault(*state, IO_OP_WRITE, 0, 1, 100, CESIUM_ENOSPC);
}

/* A failed fdatasync fails output_finish: the data may not be durable. */
static void test_fsync_failure_fails_finish(void **state)
{
	check_fault(*state, IO_OP_FSYNC, -EIO, 1, 100, CESIUM_EIO);
}

/* A failure of one chunk among several in flight surfaces too. */
static void test_failure_among_pipelined_writes(void **state)
{
	check_fault(*state, IO_OP_WRITE, -EIO, 2, 40000, CESIUM_EIO);
	check_fault(*state, IO_OP_WRITE, 0, 3, 40000, CESIUM_ENOSPC);
}

/* After a failed output, a new one at the same path works (nothing left). */
static void test_output_usable_after_failure(void **state)
{
	struct fixture *f = *state;
	check_fault(f, IO_OP_WRITE, -EIO, 1, 100, CESIUM_EIO);
	build_and_read_back(f, 500);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_small_segment_reads_back, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_multi_chunk_segment_reads_back, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_open_refuses_existing_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_write_eio_fails_finish, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_write_enospc_fails_finish, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_short_write_fails_finish, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fsync_failure_fails_finish, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_failure_among_pipelined_writes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_output_usable_after_failure, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
