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
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "error.h"
#include "fault.h"
#include "log.h"
#include "mem.h"
#include "prefault.h"
#include "reactor.h"
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

/* The file offset just past record n-1: the header, then the records. */
static uint64_t bytes_of(uint64_t n)
{
	uint64_t b = LOG_FILE_HEADER_SIZE;
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

static long minor_faults(void)
{
	struct rusage ru;
	assert_int_equal(getrusage(RUSAGE_THREAD, &ru), 0);
	return ru.ru_minflt;
}

/* The appender finds the pages ahead of it already mapped and writable:
 * filling most of the log's first MiB, after one small record, takes
 * (almost) no page faults, where touching each fresh page would fault. */
static void test_wal_pages_ahead_are_populated(void **state)
{
	(void)state;
	char *dir = test_tmpdir("wal");
	char *path = mkpath(dir, "3.wal");
	wal *w;
	assert_int_equal(wal_create(path, 4u << 20, &w), 0);
	uint8_t *p;
	assert_int_equal(wal_reserve(w, 16, &p), 0);
	memset(p, 1, 16);
	wal_commit(w, 16);
	long before = minor_faults();
	unsigned records = 0;
	while (wal_size(w) + 5000 < (1u << 20) - 4096) {
		assert_int_equal(wal_reserve(w, 4000, &p), 0);
		memset(p, (int)records, 4000);
		wal_commit(w, 4000);
		records++;
	}
	long faults = minor_faults() - before;
	fprintf(stderr, "%u records of 4000 bytes: %ld page faults\n", records, faults);
	assert_true(records > 200);
#ifndef __SANITIZE_THREAD__                      /* its shadow memory faults on every page */
	assert_true(faults < (long)records / 4); /* ASan shadow: 1 in 8 */
#endif
	assert_int_equal(wal_close(w, false), 0);
	free(path);
	test_rmtree(dir);
	free(dir);
}

/* wal_seal releases the mapping's pages (a read through it faults them in
 * again) and nothing else: the records read back through a hold, byte for
 * byte, and replay whole. */
static void test_wal_seal_releases_pages_and_keeps_records(void **state)
{
	(void)state;
	char *dir = test_tmpdir("wal");
	char *path = mkpath(dir, "4.wal");
	wal *w;
	assert_int_equal(wal_create(path, 4u << 20, &w), 0);
	void *hold = wal_hold(w);
	enum { N = 100, LEN = 4000 };
	uint8_t *rec[N];
	for (unsigned i = 0; i < N; i++) {
		assert_int_equal(wal_reserve(w, LEN, &rec[i]), 0);
		memset(rec[i], (int)i, LEN);
		wal_commit(w, LEN);
	}
	uint64_t size = wal_size(w);
	wal_seal(w);
	assert_int_equal(wal_size(w), size);
	long before = minor_faults();
	for (unsigned i = 0; i < N; i++)
		for (unsigned j = 0; j < LEN; j += 997)
			assert_int_equal(rec[i][j], (uint8_t)i);
	assert_true(minor_faults() - before > 0);
	assert_int_equal(wal_close(w, true), 0);
	for (unsigned i = 0; i < N; i++) /* the hold outlives the close */
		assert_int_equal(rec[i][LEN - 1], (uint8_t)i);
	wal_release(hold);
	uint64_t n = 0;
	struct wal_replay_stats st;
	assert_int_equal(wal_replay(path, count_record, &n, &st), 0);
	assert_int_equal(n, N);
	assert_int_equal(st.valid_end, size);
	free(path);
	test_rmtree(dir);
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

static off_t file_size_of(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

/* Appends records from, from + 1, ... until the log holds size bytes;
 * returns the number of the next record. */
static uint64_t append_until(wal *w, uint64_t from, uint64_t size)
{
	uint64_t n = from;
	for (; wal_size(w) < size; n++)
		append_n(w, n, n + 1);
	return n;
}

/* Each growth doubles the file: the reservation is a power-of-two
 * multiple of the first chunk and stays under twice what the log holds
 * (fixed 64 KiB steps would make it 17 chunks, 1,088 KiB, here). */
static void test_wal_growth_doubles(void **state)
{
	(void)state;
	char *dir = test_tmpdir("wal");
	char *path = mkpath(dir, "3.wal");
	wal *w;
	const size_t chunk = 64 * 1024;
	assert_int_equal(wal_create(path, chunk, &w), 0);
	uint64_t n = append_until(w, 0, 1024 * 1024);
	uint64_t used = wal_size(w);
	off_t size = file_size_of(path);
	assert_true((uint64_t)size >= used);
	assert_true((uint64_t)size < 2 * used + chunk);
	assert_int_equal(size % (off_t)chunk, 0);
	uint64_t chunks = (uint64_t)size / chunk;
	assert_int_equal(chunks & (chunks - 1), 0);
	assert_int_equal(wal_close(w, false), 0);
	struct collect c = {.fail_at = -1};
	struct wal_replay_stats st;
	assert_int_equal(wal_replay(path, check_record, &c, &st), 0);
	assert_int_equal(c.n, n);
	test_rmtree(dir);
	free(path);
	free(dir);
}

/* A record stays where it was written while the log grows (memtables
 * point at values in it), and a hold keeps the mapping after wal_close. */
static void test_wal_records_stay_put_and_outlive_close_while_held(void **state)
{
	(void)state;
	char *dir = test_tmpdir("wal");
	char *path = mkpath(dir, "4.wal");
	wal *w;
	assert_int_equal(wal_create(path, 64 * 1024, &w), 0);
	uint8_t *first;
	assert_int_equal(wal_reserve(w, 16, &first), 0);
	memcpy(first, "the first record", 16);
	wal_commit(w, 16);
	uint64_t size0 = (uint64_t)file_size_of(path);
	append_until(w, 0, 4 * 1024 * 1024); /* several growths */
	assert_true((uint64_t)file_size_of(path) >= 8 * size0);
	assert_memory_equal(first, "the first record", 16);
	void *hold = wal_hold(w);
	assert_int_equal(wal_close(w, false), 0);
	assert_memory_equal(first, "the first record", 16);
	wal_release(hold);
	test_rmtree(dir);
	free(path);
	free(dir);
}

/* Under an address-space limit too small for the 16 GiB reservation, the
 * log reserves less and works: in a child limited to 3 GiB more than it
 * maps, a log is created, grows past 8 MiB and replays. (Not under the
 * sanitizers, whose shadow memory needs the address space.) */
static void test_wal_reserves_less_under_an_address_limit(void **state)
{
	(void)state;
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	skip();
#else
	char *dir = test_tmpdir("wal");
	char *path = mkpath(dir, "5.wal");
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		unsigned long pages = 0;
		FILE *f = fopen("/proc/self/statm", "r");
		if (!f || fscanf(f, "%lu", &pages) != 1)
			_exit(2);
		fclose(f);
		struct rlimit lim;
		lim.rlim_cur = lim.rlim_max =
		    (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + ((rlim_t)3 << 30);
		if (setrlimit(RLIMIT_AS, &lim) != 0)
			_exit(3);
		wal *w;
		if (wal_create(path, 64 * 1024, &w) != 0)
			_exit(4);
		uint64_t n = append_until(w, 0, 8 * 1024 * 1024);
		if (wal_close(w, false) != 0)
			_exit(5);
		struct collect c = {.fail_at = -1};
		if (wal_replay(path, check_record, &c, NULL) != 0 || c.n != n)
			_exit(6);
		_exit(0);
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	test_rmtree(dir);
	free(path);
	free(dir);
#endif
}

/* With a prefaulter, the log grows when the populated range reaches the
 * end of the mapping, not when an append needs the room, so that the
 * pages after it are populated ahead too. The first append populates the
 * first MiB itself and the file is already 2 MiB long; appends across
 * later growths (the mapping may move while the actor works) replay. */
static void test_wal_grows_ahead_of_the_prefaulter(void **state)
{
	(void)state;
	test_require_io_uring();
	char *dir = test_tmpdir("wal");
	char *path = mkpath(dir, "4.wal");
	struct prefault_actor *p = calloc(1, sizeof(*p));
	assert_non_null(p);
	prefault_init(p);
	struct reactor *r;
	assert_int_equal(reactor_new("wal-test", &r), 0);
	assert_int_equal(reactor_add_actor(r, &p->actor, 4), 0);
	assert_int_equal(reactor_start(r), 0);
	wal *w;
	const size_t mib = 1024 * 1024;
	assert_int_equal(wal_create(path, mib, &w), 0);
	wal_set_prefaulter(w, p);
	append_n(w, 0, 1);
	assert_true(wal_size(w) < mib / 2);
	assert_int_equal(file_size_of(path), (off_t)(2 * mib));
	uint64_t n = append_until(w, 1, 5 * mib);
	assert_int_equal(wal_close(w, false), 0);
	assert_int_equal(reactor_stop(r), 0);
	reactor_free(r);
	free(p);
	struct collect c = {.fail_at = -1};
	struct wal_replay_stats st;
	assert_int_equal(wal_replay(path, check_record, &c, &st), 0);
	assert_int_equal(c.n, n);
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
	/* Never synced: the watermark stays at the header, so every cut is
	 * in the part a power loss may tear. */
	assert_int_equal(wal_close(w, false), 0);
	uint8_t *buf;
	size_t size;
	assert_int_equal(log_read_file(path, &buf, &size), 0);
	size = (size_t)bytes_of(300);
	for (int round = 0; round < 60; round++) {
		/* Cuts inside the header (creation cut short) are not
		 * this test's subject. */
		size_t cut = LOG_FILE_HEADER_SIZE +
		             (size_t)(test_rand(&seed) % (size - LOG_FILE_HEADER_SIZE + 1));
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

/* XORs mask into the byte at off of the file at path. */
static void flip_byte(const char *path, uint64_t off, uint8_t mask)
{
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	uint8_t b;
	assert_int_equal(pread(fd, &b, 1, (off_t)off), 1);
	b ^= mask;
	assert_int_equal(pwrite(fd, &b, 1, (off_t)off), 1);
	close(fd);
}

static void zero_range(const char *path, uint64_t off, size_t len)
{
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	uint8_t *z = calloc(1, len);
	assert_non_null(z);
	assert_int_equal(pwrite(fd, z, len, (off_t)off), (ssize_t)len);
	free(z);
	close(fd);
}

/* A log of 200 records whose first 100 were synced, left as a crash
 * leaves it (not truncated). */
static void make_half_synced(const char *path)
{
	wal *w;
	assert_int_equal(wal_create(path, 1 << 16, &w), 0);
	append_n(w, 0, 100);
	assert_int_equal(wal_sync(w), 0);
	append_n(w, 100, 200);
	assert_int_equal(wal_close(w, false), 0);
}

/* Damage at or past the synced watermark (a flipped bit, or a page that
 * never reached the disk, with valid records after it) is a torn tail:
 * replay stops there and drops the later records. */
static void test_wal_damage_past_watermark_is_torn_tail(void **state)
{
	(void)state;
	char *dir = test_tmpdir("wal");
	char *path = mkpath(dir, "9.wal");
	make_half_synced(path);
	struct collect c = {0, -1};
	struct wal_replay_stats st;
	assert_int_equal(wal_replay(path, check_record, &c, &st), 0);
	assert_int_equal(c.n, 200);
	assert_int_equal(st.synced_end, bytes_of(100));

	flip_byte(path, bytes_of(150) + LOG_HEADER_SIZE, 0x10);
	c = (struct collect){0, -1};
	assert_int_equal(wal_replay(path, check_record, &c, &st), 0);
	assert_int_equal(c.n, 150);
	assert_true(st.torn);
	assert_int_equal(st.torn_offset, bytes_of(150));

	/* The first unsynced record lost to zeros, later ones intact. */
	zero_range(path, bytes_of(100), LOG_HEADER_SIZE);
	c = (struct collect){0, -1};
	assert_int_equal(wal_replay(path, check_record, &c, &st), 0);
	assert_int_equal(c.n, 100);
	assert_int_equal(st.valid_end, bytes_of(100));
	test_rmtree(dir);
	free(path);
	free(dir);
}

/* Damage below the watermark is corruption naming the file and offset:
 * a flipped bit, zeros, or a file cut short before it. */
static void test_wal_damage_below_watermark_is_corrupt(void **state)
{
	(void)state;
	char *dir = test_tmpdir("wal");
	char *path = mkpath(dir, "10.wal");
	char want[64];
	make_half_synced(path);
	flip_byte(path, bytes_of(40) + LOG_HEADER_SIZE + 1, 0x01);
	assert_int_equal(wal_replay(path, count_record, &(uint64_t){0}, NULL), CESIUM_ECORRUPT);
	assert_non_null(strstr(cesium_errmsg(), path));
	snprintf(want, sizeof(want), "offset %llu:", (unsigned long long)bytes_of(40));
	assert_non_null(strstr(cesium_errmsg(), want));
	flip_byte(path, bytes_of(40) + LOG_HEADER_SIZE + 1, 0x01);

	zero_range(path, bytes_of(99), LOG_HEADER_SIZE);
	assert_int_equal(wal_replay(path, count_record, &(uint64_t){0}, NULL), CESIUM_ECORRUPT);
	snprintf(want, sizeof(want), "offset %llu:", (unsigned long long)bytes_of(99));
	assert_non_null(strstr(cesium_errmsg(), want));

	/* A file shorter than its watermark lost synced records. */
	char *p2 = mkpath(dir, "11.wal");
	wal *w;
	assert_int_equal(wal_create(p2, 1 << 16, &w), 0);
	append_n(w, 0, 30);
	assert_int_equal(wal_sync(w), 0);
	assert_int_equal(wal_close(w, true), 0);
	struct wal_replay_stats st;
	assert_int_equal(wal_replay(p2, count_record, &(uint64_t){0}, &st), 0);
	assert_int_equal(st.synced_end, bytes_of(30));
	assert_int_equal(truncate(p2, (off_t)bytes_of(29)), 0);
	assert_int_equal(wal_replay(p2, count_record, &(uint64_t){0}, NULL), CESIUM_ECORRUPT);
	assert_non_null(strstr(cesium_errmsg(), "synced"));
	test_rmtree(dir);
	free(p2);
	free(path);
	free(dir);
}

/* A log never synced keeps the creation watermark (the header's end), so
 * damage anywhere in it is a torn tail, even with valid records after. */
static void test_wal_header_never_updated(void **state)
{
	(void)state;
	char *dir = test_tmpdir("wal");
	char *path = mkpath(dir, "12.wal");
	wal *w;
	assert_int_equal(wal_create(path, 1 << 16, &w), 0);
	append_n(w, 0, 50);
	assert_int_equal(wal_close(w, false), 0);
	flip_byte(path, bytes_of(0) + 2, 0x80); /* the very first record */
	struct collect c = {0, -1};
	struct wal_replay_stats st;
	assert_int_equal(wal_replay(path, check_record, &c, &st), 0);
	assert_int_equal(c.n, 0);
	assert_true(st.torn);
	assert_int_equal(st.synced_end, LOG_FILE_HEADER_SIZE);
	assert_int_equal(st.torn_offset, LOG_FILE_HEADER_SIZE);
	test_rmtree(dir);
	free(path);
	free(dir);
}

/* One damaged header slot is survived through the other; both damaged is
 * corruption when records follow, an empty log when none do. */
static void test_wal_header_slots(void **state)
{
	(void)state;
	char *dir = test_tmpdir("wal");
	char *path = mkpath(dir, "13.wal");
	make_half_synced(path);
	flip_byte(path, LOG_FILE_SLOT_A + LOG_FILE_SYNCED_OFFSET, 0x04);
	struct wal_replay_stats st;
	uint64_t n = 0;
	assert_int_equal(wal_replay(path, count_record, &n, &st), 0);
	assert_int_equal(n, 200);
	assert_int_equal(st.synced_end, bytes_of(100));
	flip_byte(path, LOG_FILE_SLOT_B, 0x04); /* B's magic: no copy left */
	flip_byte(path, LOG_FILE_SLOT_A, 0x00);
	assert_int_equal(wal_replay(path, count_record, &(uint64_t){0}, NULL), CESIUM_ECORRUPT);
	assert_non_null(strstr(cesium_errmsg(), "offset 0"));

	char *p2 = mkpath(dir, "14.wal");
	wal *w;
	assert_int_equal(wal_create(p2, 1 << 16, &w), 0);
	assert_int_equal(wal_close(w, false), 0);
	flip_byte(p2, LOG_FILE_SLOT_A + 9, 0x40);
	flip_byte(p2, LOG_FILE_SLOT_B + 9, 0x40);
	n = 0;
	assert_int_equal(wal_replay(p2, count_record, &n, &st), 0);
	assert_int_equal(n, 0);
	test_rmtree(dir);
	free(p2);
	free(path);
	free(dir);
}

/* A chain of logs replays as one sequence; once a log lost unsynced
 * records, the logs linked past that point are skipped, and a log linked
 * to what replay really reached (as recovery links its new log) is
 * replayed. */
static void test_wal_chain_skips_logs_after_a_lost_tail(void **state)
{
	(void)state;
	char *dir = test_tmpdir("wal");
	char *p[4];
	for (int i = 0; i < 4; i++) {
		char name[16];
		snprintf(name, sizeof(name), "%d.wal", i + 1);
		p[i] = mkpath(dir, name);
	}
	const uint64_t nums[4] = {1, 2, 3, 4};
	wal *w;
	assert_int_equal(wal_create(p[0], 1 << 16, &w), 0);
	append_n(w, 0, 10);
	uint64_t end1 = wal_size(w);
	assert_int_equal(wal_close(w, false), 0);
	assert_int_equal(wal_create_after(p[1], 1 << 16, 1, end1, &w), 0);
	append_n(w, 0, 5);
	uint64_t end2 = wal_size(w);
	assert_int_equal(wal_close(w, false), 0);
	assert_int_equal(wal_create_after(p[2], 1 << 16, 2, end2, &w), 0);
	append_n(w, 0, 3);
	assert_int_equal(wal_close(w, false), 0);
	uint64_t n = 0;
	struct wal_chain_stats st;
	assert_int_equal(wal_replay_chain((const char *const *)p, nums, 3, count_record, &n, &st),
	                 0);
	assert_int_equal(n, 18);
	assert_int_equal(st.replayed, 3);
	assert_int_equal(st.last_number, 3);

	/* Log 1's last record never reached the disk. */
	zero_range(p[0], bytes_of(9), LOG_HEADER_SIZE);
	n = 0;
	assert_int_equal(wal_replay_chain((const char *const *)p, nums, 3, count_record, &n, &st),
	                 0);
	assert_int_equal(n, 9);
	assert_int_equal(st.skipped, 2);
	assert_int_equal(st.last_number, 1);
	assert_int_equal(st.last_end, bytes_of(9));

	/* Recovery's new log links to what it replayed. */
	assert_int_equal(wal_create_after(p[3], 1 << 16, st.last_number, st.last_end, &w), 0);
	append_n(w, 0, 4);
	assert_int_equal(wal_close(w, false), 0);
	n = 0;
	assert_int_equal(wal_replay_chain((const char *const *)p, nums, 4, count_record, &n, &st),
	                 0);
	assert_int_equal(n, 13);
	assert_int_equal(st.skipped, 2);
	assert_int_equal(st.last_number, 4);
	test_rmtree(dir);
	for (int i = 0; i < 4; i++)
		free(p[i]);
	free(dir);
}

/* A seal whose new log failed after creating the file (its fsync, say) and
 * whose cleanup unlink failed too leaves an empty log linked to the current
 * one; the seal that succeeds next links its log to the same predecessor.
 * The empty orphan between them holds nothing and must not make replay
 * skip the real successor: those records were acknowledged. */
static void test_wal_chain_passes_an_empty_orphan(void **state)
{
	(void)state;
	char *dir = test_tmpdir("wal");
	char *p[5];
	for (int i = 0; i < 5; i++) {
		char name[16];
		snprintf(name, sizeof(name), "%d.wal", i + 1);
		p[i] = mkpath(dir, name);
	}
	const uint64_t nums[5] = {1, 2, 3, 4, 5};
	wal *w;
	assert_int_equal(wal_create(p[0], 1 << 16, &w), 0);
	append_n(w, 0, 10);
	uint64_t end1 = wal_size(w);
	assert_int_equal(wal_close(w, false), 0);
	/* Two orphans, both linked to log 1, then the real successor. */
	assert_int_equal(wal_create_after(p[1], 1 << 16, 1, end1, &w), 0);
	assert_int_equal(wal_close(w, false), 0);
	assert_int_equal(wal_create_after(p[2], 1 << 16, 1, end1, &w), 0);
	assert_int_equal(wal_close(w, false), 0);
	assert_int_equal(wal_create_after(p[3], 1 << 16, 1, end1, &w), 0);
	append_n(w, 0, 5);
	uint64_t end4 = wal_size(w);
	assert_int_equal(wal_close(w, false), 0);
	uint64_t n = 0;
	struct wal_chain_stats st;
	assert_int_equal(wal_replay_chain((const char *const *)p, nums, 4, count_record, &n, &st),
	                 0);
	assert_int_equal(n, 15);
	assert_int_equal(st.skipped, 0);
	assert_int_equal(st.last_number, 4);
	assert_int_equal(st.last_end, end4);
	/* A log linked to an empty one (recovery links to the last log it
	 * replayed, which may be empty) replays too. */
	assert_int_equal(wal_create_after(p[4], 1 << 16, 3, LOG_FILE_HEADER_SIZE, &w), 0);
	append_n(w, 0, 2);
	assert_int_equal(wal_close(w, false), 0);
	n = 0;
	const char *q[4] = {p[0], p[1], p[2], p[4]};
	const uint64_t qn[4] = {1, 2, 3, 5};
	assert_int_equal(wal_replay_chain(q, qn, 4, count_record, &n, &st), 0);
	assert_int_equal(n, 12);
	assert_int_equal(st.skipped, 0);
	/* Still, a log linked past what its predecessor holds is skipped. */
	zero_range(p[0], bytes_of(9), LOG_HEADER_SIZE);
	n = 0;
	assert_int_equal(wal_replay_chain((const char *const *)p, nums, 4, count_record, &n, &st),
	                 0);
	assert_int_equal(n, 9);
	assert_int_equal(st.skipped, 3);
	test_rmtree(dir);
	for (int i = 0; i < 5; i++)
		free(p[i]);
	free(dir);
}

/* Shortens the first `left` writes to a .wal file: each reaches the file
 * half done, then fails, as a full disk would leave it. */
static int short_wal_writes(void *arg, enum io_op op, int fd, const char *path, size_t *len)
{
	int *left = arg;
	(void)fd;
	(void)path;
	if (op != IO_OP_WRITE || *left <= 0 || !len)
		return 0;
	(*left)--;
	*len /= 2;
	return 0;
}

/* The watermark's two header slots are rewritten after each sync. Two
 * failed writes in one update (slot A torn, then slot B torn) used to leave
 * no valid header, and the next open refused the log as corrupt: a slot is
 * now rewritten only while the other one is valid, so one failure leaves
 * the older watermark, and a later sync repairs the torn slot. */
static void test_wal_watermark_failures_keep_one_slot(void **state)
{
	(void)state;
	char *dir = test_tmpdir("wal");
	char *path = mkpath(dir, "1.wal");
	wal *w;
	assert_int_equal(wal_create(path, 1 << 16, &w), 0);
	append_n(w, 0, 10);
	int left = 2;
	io_fault_set(short_wal_writes, &left);
	assert_int_equal(wal_sync(w), 0); /* the data is durable; the slot is not */
	io_fault_set(NULL, NULL);
	append_n(w, 10, 15);
	assert_int_equal(wal_close(w, false), 0);
	uint64_t n = 0;
	struct wal_replay_stats st;
	assert_int_equal(wal_replay(path, count_record, &n, &st), 0);
	assert_int_equal(n, 15);
	/* A later sync rewrites the torn slot first, then the other. */
	char *p2 = mkpath(dir, "2.wal");
	assert_int_equal(wal_create(p2, 1 << 16, &w), 0);
	append_n(w, 0, 3);
	left = 1;
	io_fault_set(short_wal_writes, &left);
	assert_int_equal(wal_sync(w), 0);
	io_fault_set(NULL, NULL);
	append_n(w, 3, 6);
	assert_int_equal(wal_sync(w), 0);
	left = 1;
	io_fault_set(short_wal_writes, &left);
	append_n(w, 6, 9);
	assert_int_equal(wal_sync(w), 0);
	io_fault_set(NULL, NULL);
	assert_int_equal(wal_close(w, false), 0);
	n = 0;
	assert_int_equal(wal_replay(p2, count_record, &n, &st), 0);
	assert_int_equal(n, 9);
	/* The second sync's watermark survived the third's failure. */
	assert_int_equal(st.synced_end, bytes_of(6));
	test_rmtree(dir);
	free(p2);
	free(path);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_wal_append_then_replay),
	    cmocka_unit_test(test_wal_grows_past_prealloc),
	    cmocka_unit_test(test_wal_growth_doubles),
	    cmocka_unit_test(test_wal_records_stay_put_and_outlive_close_while_held),
	    cmocka_unit_test(test_wal_reserves_less_under_an_address_limit),
	    cmocka_unit_test(test_wal_grows_ahead_of_the_prefaulter),
	    cmocka_unit_test(test_wal_sync_and_read_while_open),
	    cmocka_unit_test(test_wal_poisoned_after_failed_sync),
	    cmocka_unit_test(test_wal_enospc_on_fallocate),
	    cmocka_unit_test(test_wal_create_existing_and_replay_errors),
	    cmocka_unit_test(test_wal_replay_cut_at_random_points),
	    cmocka_unit_test(test_wal_survives_process_kill),
	    cmocka_unit_test(test_wal_damage_past_watermark_is_torn_tail),
	    cmocka_unit_test(test_wal_damage_below_watermark_is_corrupt),
	    cmocka_unit_test(test_wal_header_never_updated),
	    cmocka_unit_test(test_wal_header_slots),
	    cmocka_unit_test(test_wal_chain_skips_logs_after_a_lost_tail),
	    cmocka_unit_test(test_wal_chain_passes_an_empty_orphan),
	    cmocka_unit_test(test_wal_watermark_failures_keep_one_slot),
	    cmocka_unit_test(test_wal_pages_ahead_are_populated),
	    cmocka_unit_test(test_wal_seal_releases_pages_and_keeps_records),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
