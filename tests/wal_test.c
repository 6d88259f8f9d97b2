#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "error.h"
#include "fault.h"
#include "log.h"
#include "mem.h"
#include "test_util.h"
#include "wal.h"

/* Payload i: length len_of(i), bytes derived from i. */
static size_t len_of(uint64_t i)
{
	return (size_t)((i * 7919) % 600);
}

static void fill(uint8_t *p, uint64_t i)
{
	for (size_t k = 0; k < len_of(i); k++)
		p[k] = (uint8_t)(i * 31 + k);
}

struct collect {
	uint64_t n;
	int fail_at; /* return -100 at this record, or -1 */
};

static int check_record(void *ctx, keys_slice p)
{
	struct collect *c = ctx;
	if (c->fail_at >= 0 && c->n == (uint64_t)c->fail_at)
		return -100;
	uint8_t want[600];
	fill(want, c->n);
	assert_int_equal(p.len, len_of(c->n));
	assert_memory_equal(p.data, want, p.len);
	c->n++;
	return 0;
}

static char *mkpath(const char *dir, const char *name)
{
	char *p = NULL;
	assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
	return p;
}

static void append_n(wal *w, uint64_t from, uint64_t to)
{
	uint8_t buf[600];
	for (uint64_t i = from; i < to; i++) {
		fill(buf, i);
		assert_int_equal(wal_append(w, buf, len_of(i)), 0);
	}
}

static uint64_t bytes_of(uint64_t n)
{
	uint64_t b = 0;
	for (uint64_t i = 0; i < n; i++)
		b += log_record_size(len_of(i));
	return b;
}

static int count_record(void *ctx, keys_slice p)
{
	(void)p;
	(*(uint64_t *)ctx)++;
	return 0;
}

/* Appended records replay in order, byte for byte; wal_size counts them. */
static void test_wal_append_then_replay(void **state)
{
	(void)state;
	char *dir = test_tmpdir("wal");
	char *path = mkpath(dir, "1.wal");
	wal *w;
	assert_int_equal(wal_create(path, 1 << 20, &w), 0);
	append_n(w, 0, 1000);
	assert_int_equal(wal_size(w), bytes_of(1000));
	assert_int_equal(wal_close(w, true), 0);
	struct collect c = {0, -1};
	struct wal_replay_stats st;
	assert_int_equal(wal_replay(path, check_record, &c, &st), 0);
	assert_int_equal(c.n, 1000);
	assert_int_equal(st.records, 1000);
	assert_false(st.torn);
	assert_int_equal(st.valid_end, bytes_of(1000));
	assert_int_equal(st.file_size, bytes_of(1000)); /* truncated on close */
	test_rmtree(dir);
	free(path);
	free(dir);
}

/* The log grows past its preallocation, by chunks and for a record larger
 * than a chunk, and the zero tail of the last chunk ends the replay. */
static void test_wal_grows_past_prealloc(void **state)
{
	(void)state;
	char *dir = test_tmpdir("wal");
	char *path = mkpath(dir, "2.wal");
	wal *w;
	assert_int_equal(wal_create(path, 4096, &w), 0);
	append_n(w, 0, 500);
	size_t big_len = 50000;
	uint8_t *big = malloc(big_len);
	assert_non_null(big);
	memset(big, 0xab, big_len);
	assert_int_equal(wal_append(w, big, big_len), 0);
	assert_int_equal(wal_size(w), bytes_of(500) + log_record_size(big_len));
	assert_int_equal(wal_close(w, false), 0);

	uint8_t *buf;
	size_t size;
	assert_int_equal(log_read_file(path, &buf, &size), 0);
	assert_true(size > bytes_of(500) + big_len);
	struct log_reader r;
	log_reader_init(&r, buf, size, path);
	keys_slice p;
	for (int i = 0; i < 500; i++)
		assert_int_equal(log_reader_next(&r, &p), 1);
	assert_int_equal(log_reader_next(&r, &p), 1);
	assert_int_equal(p.len, big_len);
	assert_memory_equal(p.data, big, big_len);
	assert_int_equal(log_reader_next(&r, &p), 0);
	assert_false(r.torn);
	mem_free(buf);
	free(big);
	test_rmtree(dir);
	free(path);
	free(dir);
}

static int fault_op = -1;
static int fault_errno;
static int fault_calls;

static int fault_hook(void *arg, enum io_op op, int fd, const char *path, size_t *len)
{
	(void)arg;
	(void)fd;
	(void)path;
	(void)len;
	if ((int)op == fault_op) {
		fault_calls++;
		return -fault_errno;
	}
	return 0;
}

static void fault_on(enum io_op op, int err)
{
	fault_op = (int)op;
	fault_errno = err;
	fault_calls = 0;
	io_fault_set(fault_hook, NULL);
}

static void fault_off(void)
{
	io_fault_set(NULL, NULL);
	fault_op = -1;
}

/* wal_sync succeeds, and records appended before it and after it are all
 * readable while the log is still open. */
static void test_wal_sync_and_read_while_open(void **state)
{
	(void)state;
	char *dir = test_tmpdir("wal");
	char *path = mkpath(dir, "3.wal");
	wal *w;
	assert_int_equal(wal_create(path, 0, &w), 0);
	append_n(w, 0, 100);
	assert_int_equal(wal_sync(w), 0);
	assert_int_equal(wal_sync(w), 0); /* nothing new: no-op */
	append_n(w, 100, 200);
	assert_int_equal(wal_sync(w), 0);
	struct collect c = {0, -1};
	struct wal_replay_stats st;
	assert_int_equal(wal_replay(path, check_record, &c, &st), 0);
	assert_int_equal(c.n, 200);
	assert_int_equal(st.file_size, WAL_DEFAULT_PREALLOC);
	assert_int_equal(wal_close(w, true), 0);
	test_rmtree(dir);
	free(path);
	free(dir);
}

/* After a failed fdatasync the log is poisoned: every later append and
 * sync fails with CESIUM_EIO, even once the fault is gone. */
static void test_wal_poisoned_after_failed_sync(void **state)
{
	(void)state;
	char *dir = test_tmpdir("wal");
	char *path = mkpath(dir, "4.wal");
	wal *w;
	assert_int_equal(wal_create(path, 4096, &w), 0);
	append_n(w, 0, 10);
	fault_on(IO_OP_FSYNC, EIO);
	assert_int_equal(wal_sync(w), CESIUM_EIO);
	assert_int_equal(fault_calls, 1);
	fault_off();
	uint8_t x = 1;
	assert_int_equal(wal_append(w, &x, 1), CESIUM_EIO);
	assert_non_null(strstr(cesium_errmsg(), "an earlier fdatasync failed"));
	assert_non_null(strstr(cesium_errmsg(), path));
	assert_int_equal(wal_sync(w), CESIUM_EIO);
	assert_int_equal(wal_size(w), bytes_of(10));
	assert_int_equal(wal_close(w, true), CESIUM_EIO);
	test_rmtree(dir);
	free(path);
	free(dir);
}

/* A full disk at creation is CESIUM_ENOSPC and leaves no file behind; at
 * growth it is CESIUM_ENOSPC, the log is unchanged and the append can be
 * retried once space is back. */
static void test_wal_enospc_on_fallocate(void **state)
{
	(void)state;
	char *dir = test_tmpdir("wal");
	char *path = mkpath(dir, "5.wal");
	wal *w;
	fault_on(IO_OP_FALLOCATE, ENOSPC);
	assert_int_equal(wal_create(path, 4096, &w), CESIUM_ENOSPC);
	fault_off();
	struct stat sb;
	assert_int_equal(stat(path, &sb), -1);

	assert_int_equal(wal_create(path, 4096, &w), 0);
	append_n(w, 0, 5);
	uint64_t before = wal_size(w);
	uint8_t big[8192];
	memset(big, 7, sizeof(big));
	fault_on(IO_OP_FALLOCATE, ENOSPC);
	assert_int_equal(wal_append(w, big, sizeof(big)), CESIUM_ENOSPC);
	fault_off();
	assert_int_equal(wal_size(w), before);
	assert_int_equal(wal_append(w, big, sizeof(big)), 0);
	assert_int_equal(wal_close(w, true), 0);
	uint64_t n = 0;
	struct wal_replay_stats st;
	assert_int_equal(wal_replay(path, count_record, &n, &st), 0);
	assert_int_equal(n, 6);
	assert_int_equal(st.valid_end, before + log_record_size(sizeof(big)));
	test_rmtree(dir);
	free(path);
	free(dir);
}

/* Creating over an existing file fails; replay passes fn's error through
 * and reports a missing file. */
static void test_wal_create_existing_and_replay_errors(void **state)
{
	(void)state;
	char *dir = test_tmpdir("wal");
	char *path = mkpath(dir, "6.wal");
	wal *w;
	assert_int_equal(wal_replay(path, count_record, &(uint64_t){0}, NULL), CESIUM_EINVAL);
	assert_int_equal(wal_create(path, 4096, &w), 0);
	append_n(w, 0, 20);
	assert_int_equal(wal_close(w, false), 0);
	wal *w2;
	assert_int_not_equal(wal_create(path, 4096, &w2), 0);
	struct collect c = {0, 7};
	assert_int_equal(wal_replay(path, check_record, &c, NULL), -100);
	assert_int_equal(c.n, 7);
	test_rmtree(dir);
	free(path);
	free(dir);
}

/* A log cut at random points replays exactly the records wholly before
 * the cut, and reports a torn tail when the cut falls inside one. */
static void test_wal_replay_cut_at_random_points(void **state)
{
	(void)state;
	uint64_t seed = test_seed("wal_replay_cut");
	char *dir = test_tmpdir("wal");
	char *path = mkpath(dir, "7.wal");
	char *cut_path = mkpath(dir, "cut.wal");
	wal *w;
	assert_int_equal(wal_create(path, 1 << 16, &w), 0);
	append_n(w, 0, 300);
	assert_int_equal(wal_close(w, true), 0);
	uint8_t *buf;
	size_t size;
	assert_int_equal(log_read_file(path, &buf, &size), 0);
	for (int round = 0; round < 60; round++) {
		size_t cut = (size_t)(test_rand(&seed) % (size + 1));
		size_t pad = round & 1 ? 4096 : 0;
		uint8_t *img = calloc(1, cut + pad + 1);
		assert_non_null(img);
		memcpy(img, buf, cut);
		int fd = open(cut_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, img, cut + pad), (ssize_t)(cut + pad));
		close(fd);
		uint64_t whole = 0;
		while (whole < 300 && bytes_of(whole + 1) <= cut)
			whole++;
		struct collect c = {0, -1};
		struct wal_replay_stats st;
		assert_int_equal(wal_replay(cut_path, check_record, &c, &st), 0);
		assert_int_equal(c.n, whole);
		assert_int_equal(st.valid_end, bytes_of(whole));
		if (st.torn)
			assert_int_equal(st.torn_offset, bytes_of(whole));
		if (cut > bytes_of(whole) + LOG_HEADER_SIZE)
			assert_true(st.torn);
		free(img);
	}
	mem_free(buf);
	test_rmtree(dir);
	free(path);
	free(cut_path);
	free(dir);
}

/* Records appended without sync survive a real crash of the process
 * (SIGKILL): they are in the page cache through the shared mapping. */
static void test_wal_survives_process_kill(void **state)
{
	(void)state;
	char *dir = test_tmpdir("wal");
	char *path = mkpath(dir, "8.wal");
	int pipefd[2];
	assert_int_equal(pipe(pipefd), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		wal *w;
		if (wal_create(path, 1 << 16, &w) != 0)
			_exit(1);
		uint8_t b[600];
		for (uint64_t i = 0; i < 400; i++) {
			fill(b, i);
			if (wal_append(w, b, len_of(i)) != 0)
				_exit(1);
		}
		char ok = 'k';
		if (write(pipefd[1], &ok, 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(pipefd[1]);
	char ok = 0;
	assert_int_equal(read(pipefd[0], &ok, 1), 1);
	close(pipefd[0]);
	kill(pid, SIGKILL);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	struct collect c = {0, -1};
	struct wal_replay_stats st;
	assert_int_equal(wal_replay(path, check_record, &c, &st), 0);
	assert_int_equal(c.n, 400);
	assert_false(st.torn);
	test_rmtree(dir);
	free(path);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_wal_append_then_replay),
	    cmocka_unit_test(test_wal_grows_past_prealloc),
	    cmocka_unit_test(test_wal_sync_and_read_while_open),
	    cmocka_unit_test(test_wal_poisoned_after_failed_sync),
	    cmocka_unit_test(test_wal_enospc_on_fallocate),
	    cmocka_unit_test(test_wal_create_existing_and_replay_errors),
	    cmocka_unit_test(test_wal_replay_cut_at_random_points),
	    cmocka_unit_test(test_wal_survives_process_kill),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
