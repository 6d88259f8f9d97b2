/* Unit tests for io/file.c: the synchronous helpers' read and write loops,
 * end-of-file behaviour, errno passing, and the fault seam in front of
 * each of them. */

#include <errno.h>
#include <fcntl.h>
#include <sys/uio.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "fault.h"
#include "file.h"
#include "test_db.h"
#include "test_util.h"

struct fx {
	char *dir;
	char path[512];
};

static int fx_setup(void **state)
{
	struct fx *x = calloc(1, sizeof(*x));
	if (!x)
		return -1;
	x->dir = test_tmpdir("file");
	if (!x->dir)
		return -1;
	snprintf(x->path, sizeof(x->path), "%s/f.dat", x->dir);
	*state = x;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *x = *state;
	io_fault_set(NULL, NULL);
	test_rmtree(x->dir);
	free(x->dir);
	free(x);
	return 0;
}

static uint8_t *pattern(size_t len, uint64_t seed)
{
	uint8_t *p = malloc(len);
	assert_non_null(p);
	uint64_t s = seed | 1;
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)test_rand(&s);
	return p;
}

/* A large write at an offset reads back byte for byte, and the size
 * covers it. */
static void test_write_then_read_round_trip(void **state)
{
	struct fx *x = *state;
	size_t len = 3u << 20;
	uint8_t *src = pattern(len, test_seed("file_round_trip"));
	uint8_t *dst = malloc(len);
	assert_non_null(dst);
	int fd = io_open(x->path, O_CREAT | O_RDWR, 0644);
	assert_true(fd >= 0);
	assert_int_equal(io_pwrite_full(fd, src, len, 12345), 0);
	assert_int_equal(io_file_size(fd), 12345 + (int64_t)len);
	assert_int_equal(io_pread_full(fd, dst, len, 12345), (ssize_t)len);
	assert_memory_equal(src, dst, len);
	/* The hole before the data reads as zeros. */
	uint8_t head[16];
	assert_int_equal(io_pread_full(fd, head, sizeof(head), 0), (ssize_t)sizeof(head));
	for (size_t i = 0; i < sizeof(head); i++)
		assert_int_equal(head[i], 0);
	io_close(fd);
	free(src);
	free(dst);
}

/* A gathered read fills its pieces in turn, an empty piece included, and
 * one that crosses the end of the file stops there. */
static void test_gathered_read(void **state)
{
	struct fx *x = *state;
	uint8_t *src = pattern(100, 9);
	uint8_t a[30], b[100];
	int fd = io_open(x->path, O_CREAT | O_RDWR, 0644);
	assert_true(fd >= 0);
	assert_int_equal(io_pwrite_full(fd, src, 100, 0), 0);
	struct iovec iov[3] = {{a, 30}, {b, 0}, {b, 40}};
	assert_int_equal(io_preadv_full(fd, iov, 3, 10), 70);
	assert_memory_equal(a, src + 10, 30);
	assert_memory_equal(b, src + 40, 40);
	struct iovec past[2] = {{a, 30}, {b, 100}};
	assert_int_equal(io_preadv_full(fd, past, 2, 50), 50);
	assert_memory_equal(a, src + 50, 30);
	assert_memory_equal(b, src + 80, 20);
	io_close(fd);
	free(src);
}

/* A read that crosses the end of the file returns what is there; one at or
 * past the end returns 0, not an error. */
static void test_short_read_at_end_of_file(void **state)
{
	struct fx *x = *state;
	uint8_t *src = pattern(100, 7);
	uint8_t buf[200];
	int fd = io_open(x->path, O_CREAT | O_RDWR, 0644);
	assert_true(fd >= 0);
	assert_int_equal(io_pwrite_full(fd, src, 100, 0), 0);
	assert_int_equal(io_pread_full(fd, buf, 200, 50), 50);
	assert_memory_equal(buf, src + 50, 50);
	assert_int_equal(io_pread_full(fd, buf, 10, 100), 0);
	assert_int_equal(io_pread_full(fd, buf, 10, 1000), 0);
	assert_int_equal(io_pread_full(fd, buf, 0, 0), 0);
	io_close(fd);
	free(src);
}

/* Errors come back as negative errnos, never as -1 with errno set. */
static void test_errors_are_negative_errnos(void **state)
{
	struct fx *x = *state;
	uint8_t buf[8] = {0};
	assert_int_equal(io_open(x->path, O_RDONLY, 0), -ENOENT);
	int fd = io_open(x->path, O_CREAT | O_EXCL | O_RDWR, 0644);
	assert_true(fd >= 0);
	assert_int_equal(io_open(x->path, O_CREAT | O_EXCL | O_RDWR, 0644), -EEXIST);
	/* O_CLOEXEC is always added. */
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	io_close(fd);
	int ro = io_open(x->path, O_RDONLY, 0);
	assert_true(ro >= 0);
	assert_int_equal(io_pwrite_full(ro, buf, sizeof(buf), 0), -EBADF);
	io_close(ro);
	assert_int_equal(io_pread_full(-1, buf, sizeof(buf), 0), -EBADF);
	assert_int_equal(io_fsync(-1), -EBADF);
	assert_int_equal(io_fdatasync(-1), -EBADF);
	assert_int_equal(io_ftruncate(-1, 0), -EBADF);
	assert_int_equal(io_fallocate(-1, 0, 10), -EBADF);
	assert_int_equal(io_file_size(-1), -EBADF);
	char missing[600];
	snprintf(missing, sizeof(missing), "%s/none", x->dir);
	assert_int_equal(io_unlink(missing), -ENOENT);
	assert_int_equal(io_rename(missing, x->path), -ENOENT);
	assert_int_equal(io_fsync_dir(missing), -ENOENT);
	/* A directory read as a file. */
	int dfd = io_open(x->dir, O_RDONLY | O_DIRECTORY, 0);
	assert_true(dfd >= 0);
	assert_int_equal(io_pread_full(dfd, buf, sizeof(buf), 0), -EISDIR);
	io_close(dfd);
	io_close(-1); /* harmless */
}

/* rename, unlink, fallocate, truncate and the syncs do their job. */
static void test_metadata_operations(void **state)
{
	struct fx *x = *state;
	char to[600];
	snprintf(to, sizeof(to), "%s/g.dat", x->dir);
	int fd = io_open(x->path, O_CREAT | O_RDWR, 0644);
	assert_true(fd >= 0);
	assert_int_equal(io_fallocate(fd, 0, 65536), 0);
	assert_int_equal(io_file_size(fd), 65536);
	assert_int_equal(io_ftruncate(fd, 100), 0);
	assert_int_equal(io_file_size(fd), 100);
	assert_int_equal(io_fsync(fd), 0);
	assert_int_equal(io_fdatasync(fd), 0);
	io_close(fd);
	assert_int_equal(io_rename(x->path, to), 0);
	assert_int_equal(access(x->path, F_OK), -1);
	assert_int_equal(access(to, F_OK), 0);
	assert_int_equal(io_fsync_dir(x->dir), 0);
	assert_int_equal(io_unlink(to), 0);
	assert_int_equal(access(to, F_OK), -1);
}

/* An injected short write puts the first part on disk and reports ENOSPC,
 * as a disk filling up mid-write does. */
static void test_injected_short_write_is_enospc(void **state)
{
	struct fx *x = *state;
	uint8_t *src = pattern(4096, 3);
	uint8_t back[4096];
	int fd = io_open(x->path, O_CREAT | O_RDWR, 0644);
	assert_true(fd >= 0);
	struct file_fault f;
	file_fault_arm(&f, IO_OP_WRITE, "f.dat", 0, 1);
	int rc = io_pwrite_full(fd, src, 4096, 0);
	file_fault_disarm(&f);
	assert_int_equal(rc, -ENOSPC);
	assert_int_equal(io_file_size(fd), 2048);
	assert_int_equal(io_pread_full(fd, back, 4096, 0), 2048);
	assert_memory_equal(back, src, 2048);
	io_close(fd);
	free(src);
}

/* An injected short read returns fewer bytes, as a read at end of file
 * does, and the caller sees the count. */
static void test_injected_short_read_returns_fewer_bytes(void **state)
{
	struct fx *x = *state;
	uint8_t *src = pattern(1000, 4);
	uint8_t back[1000];
	int fd = io_open(x->path, O_CREAT | O_RDWR, 0644);
	assert_true(fd >= 0);
	assert_int_equal(io_pwrite_full(fd, src, 1000, 0), 0);
	struct file_fault f;
	file_fault_arm(&f, IO_OP_READ, "f.dat", 0, 1);
	ssize_t n = io_pread_full(fd, back, 1000, 0);
	file_fault_disarm(&f);
	assert_int_equal(n, 500);
	assert_memory_equal(back, src, 500);
	io_close(fd);
	free(src);
}

/* An injected error fails the call before the kernel sees it: nothing
 * changes on disk. */
static void test_injected_errors_leave_files_untouched(void **state)
{
	struct fx *x = *state;
	char to[600];
	snprintf(to, sizeof(to), "%s/g.dat", x->dir);
	struct file_fault f;
	file_fault_arm(&f, IO_OP_OPEN, "f.dat", -EIO, 1);
	int rc = io_open(x->path, O_CREAT | O_RDWR, 0644);
	file_fault_disarm(&f);
	assert_int_equal(rc, -EIO);
	assert_int_equal(access(x->path, F_OK), -1);

	int fd = io_open(x->path, O_CREAT | O_RDWR, 0644);
	assert_true(fd >= 0);
	uint8_t b[64];
	memset(b, 'x', sizeof(b));
	assert_int_equal(io_pwrite_full(fd, b, sizeof(b), 0), 0);

	file_fault_arm(&f, IO_OP_WRITE, "f.dat", -ENOSPC, 1);
	rc = io_pwrite_full(fd, b, sizeof(b), 64);
	file_fault_disarm(&f);
	assert_int_equal(rc, -ENOSPC);
	assert_int_equal(io_file_size(fd), 64);

	file_fault_arm(&f, IO_OP_READ, "f.dat", -EIO, 1);
	assert_int_equal(io_pread_full(fd, b, sizeof(b), 0), -EIO);
	file_fault_disarm(&f);

	file_fault_arm(&f, IO_OP_FALLOCATE, "f.dat", -ENOSPC, 1);
	assert_int_equal(io_fallocate(fd, 0, 1 << 20), -ENOSPC);
	file_fault_disarm(&f);
	assert_int_equal(io_file_size(fd), 64);

	file_fault_arm(&f, IO_OP_TRUNCATE, "f.dat", -EIO, 1);
	assert_int_equal(io_ftruncate(fd, 0), -EIO);
	file_fault_disarm(&f);
	assert_int_equal(io_file_size(fd), 64);

	file_fault_arm(&f, IO_OP_FSYNC, "f.dat", -EIO, 1);
	f.every = true;
	assert_int_equal(io_fsync(fd), -EIO);
	assert_int_equal(io_fdatasync(fd), -EIO);
	file_fault_disarm(&f);
	io_close(fd);

	file_fault_arm(&f, IO_OP_RENAME, "f.dat", -EIO, 1);
	assert_int_equal(io_rename(x->path, to), -EIO);
	file_fault_disarm(&f);
	assert_int_equal(access(x->path, F_OK), 0);
	assert_int_equal(access(to, F_OK), -1);

	file_fault_arm(&f, IO_OP_UNLINK, "f.dat", -EIO, 1);
	assert_int_equal(io_unlink(x->path), -EIO);
	file_fault_disarm(&f);
	assert_int_equal(access(x->path, F_OK), 0);

	/* A directory sync fails when its open or its fsync does. */
	file_fault_arm(&f, IO_OP_FSYNC, NULL, -EIO, 1);
	assert_int_equal(io_fsync_dir(x->dir), -EIO);
	file_fault_disarm(&f);
	assert_int_equal(io_fsync_dir(x->dir), 0);
}

static int fsync_done_calls, fsync_done_res;

static void count_done(void *arg, enum io_op op, int fd, int res)
{
	(void)arg;
	(void)fd;
	if (op == IO_OP_FSYNC) {
		fsync_done_calls++;
		fsync_done_res = res;
	}
}

/* A completed sync is reported to the completion hook with its result; an
 * injected failure never reached the kernel, so it is not. */
static void test_sync_completion_reported(void **state)
{
	struct fx *x = *state;
	int fd = io_open(x->path, O_CREAT | O_RDWR, 0644);
	assert_true(fd >= 0);
	fsync_done_calls = 0;
	io_fault_set_done(count_done, NULL);
	assert_int_equal(io_fsync(fd), 0);
	assert_int_equal(io_fdatasync(fd), 0);
	struct file_fault f;
	file_fault_arm(&f, IO_OP_FSYNC, "f.dat", -EIO, 1);
	assert_int_equal(io_fdatasync(fd), -EIO);
	file_fault_disarm(&f);
	assert_int_equal(io_fsync(-1), -EBADF);
	io_fault_set_done(NULL, NULL);
	assert_int_equal(fsync_done_calls, 3);
	assert_int_equal(fsync_done_res, -EBADF);
	io_close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_write_then_read_round_trip, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_short_read_at_end_of_file, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_gathered_read, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_errors_are_negative_errnos, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_metadata_operations, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_injected_short_write_is_enospc, fx_setup,
	                                    fx_teardown),
	    cmocka_unit_test_setup_teardown(test_injected_short_read_returns_fewer_bytes, fx_setup,
	                                    fx_teardown),
	    cmocka_unit_test_setup_teardown(test_injected_errors_leave_files_untouched, fx_setup,
	                                    fx_teardown),
	    cmocka_unit_test_setup_teardown(test_sync_completion_reported, fx_setup, fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
