/* Unit tests for io/ring: each asynchronous operation against real files,
 * the linked write->fdatasync chain, short-write resubmission and fault
 * injection through the fault seam. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "error.h"
#include "fault.h"
#include "ring.h"
#include "test_util.h"

struct rec {
	struct io_req req;
	int res;
	int order; /* 1-based position among completions; 0: not yet */
};

static int completions;

static void rec_done(struct io_req *req, int res)
{
	struct rec *r = (struct rec *)req;
	assert_int_equal(r->order, 0); /* exactly once */
	r->res = res;
	r->order = ++completions;
}

static struct io_req *rec_req(struct rec *r)
{
	memset(r, 0, sizeof(*r));
	r->req.done = rec_done;
	return &r->req;
}

/* Polls until every request on the ring has completed. */
static void drain(struct io_ring *ring)
{
	for (int i = 0; i < 10000 && io_ring_inflight(ring) > 0; i++)
		assert_true(io_ring_poll(ring, true) >= 0);
	assert_int_equal(io_ring_inflight(ring), 0);
}

struct fixture {
	struct io_ring ring;
	char *dir;
	char path[512];
	int fd;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_int_equal(io_ring_init(&f->ring, 8), 0);
	f->dir = test_tmpdir("ring");
	assert_non_null(f->dir);
	snprintf(f->path, sizeof(f->path), "%s/data", f->dir);
	f->fd = open(f->path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	assert_true(f->fd >= 0);
	completions = 0;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	io_fault_set(NULL, NULL);
	io_ring_exit(&f->ring);
	close(f->fd);
	test_rmtree(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

/* The fault hook: fails or shortens the next operations of one kind. */
struct fault {
	enum io_op op;
	int err;         /* negative errno, or 0 */
	size_t short_to; /* for writes: shorten to this many bytes */
	bool shorten;
	int hits;
};

static int fault_hook(void *arg, enum io_op op, int fd, const char *path, size_t *len)
{
	(void)fd;
	(void)path;
	struct fault *ft = arg;
	if (op != ft->op)
		return 0;
	ft->hits++;
	if (ft->shorten && *len > ft->short_to)
		*len = ft->short_to;
	return ft->err;
}

static void fill(char *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)((i * 31u + seed) & 0xff);
}

/* Probe: io_uring is usable here (the test binary was not skipped). */
static void test_probe_succeeds_where_io_uring_works(void **state)
{
	(void)state;
	assert_int_equal(io_ring_probe(), 0);
}

/* In a child, makes io_uring_setup fail with err (as a seccomp profile or
 * sysctl would) and checks the probe and init map it to want with a message
 * containing each of the needles. Returns the child's exit status. */
static int child_with_setup_errno(int err, int want, const char *needle1, const char *needle2)
{
	pid_t pid = fork();
	if (pid == 0) {
		struct sock_filter filter[] = {
		    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
		    BPF_STMT(BPF_RET | BPF_K,
		             SECCOMP_RET_ERRNO | ((unsigned)err & SECCOMP_RET_DATA)),
		    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		};
		struct sock_fprog prog = {.len = sizeof(filter) / sizeof(filter[0]),
		                          .filter = filter};
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
		    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
			_exit(77);
		if (io_ring_probe() != want)
			_exit(1);
		if (!strstr(cesium_errmsg(), needle1) || !strstr(cesium_errmsg(), needle2))
			_exit(2);
		struct io_ring ring;
		if (io_ring_init(&ring, 8) != want)
			_exit(3);
		if (!strstr(cesium_errmsg(), needle1))
			_exit(4);
		io_ring_exit(&ring); /* harmless on a ring that was never set up */
		_exit(0);
	}
	assert_true(pid > 0);
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

/* Where io_uring_setup is refused (seccomp, sysctl), too old, or short of
 * memory, probe and init return the mapped code and a message naming the
 * cause and the fix, without crashing. */
static void test_setup_errors_are_mapped_with_cause_and_fix(void **state)
{
	(void)state;
	int rc = child_with_setup_errno(EPERM, CESIUM_ENOTSUP, "seccomp", "io_uring_disabled=0");
	if (rc == 77)
		skip();
	assert_int_equal(rc, 0);
	assert_int_equal(child_with_setup_errno(EACCES, CESIUM_ENOTSUP, "seccomp", "fix"), 0);
	assert_int_equal(child_with_setup_errno(ENOSYS, CESIUM_ENOTSUP, "kernel too old", "5."), 0);
	assert_int_equal(child_with_setup_errno(ENOMEM, CESIUM_ENOMEM, "RLIMIT_MEMLOCK", "memory"),
	                 0);
	assert_int_equal(child_with_setup_errno(EINVAL, CESIUM_EIO, "io_uring_setup", "Invalid"),
	                 0);
}

/* A write then a read at an offset return the bytes written. */
static void test_write_then_read_round_trip(void **state)
{
	struct fixture *f = *state;
	char out[10000], in[10000];
	fill(out, sizeof(out), 7);
	struct rec w, rd;
	io_ring_write(&f->ring, rec_req(&w), f->fd, out, sizeof(out), 4096);
	assert_int_equal(io_ring_inflight(&f->ring), 1);
	drain(&f->ring);
	assert_int_equal(w.res, (int)sizeof(out));
	memset(in, 0, sizeof(in));
	io_ring_read(&f->ring, rec_req(&rd), f->fd, in, sizeof(in), 4096);
	drain(&f->ring);
	assert_int_equal(rd.res, (int)sizeof(in));
	assert_memory_equal(in, out, sizeof(out));
	/* Reading past the end is short, not an error. */
	io_ring_read(&f->ring, rec_req(&rd), f->fd, in, sizeof(in), 4096 + 9000);
	drain(&f->ring);
	assert_int_equal(rd.res, 1000);
}

/* fsync and fdatasync complete with 0 on a regular file, -EBADF on a bad fd. */
static void test_fsync_and_fdatasync_complete(void **state)
{
	struct fixture *f = *state;
	struct rec a, b, c;
	io_ring_fsync(&f->ring, rec_req(&a), f->fd);
	io_ring_fdatasync(&f->ring, rec_req(&b), f->fd);
	io_ring_fdatasync(&f->ring, rec_req(&c), 9999);
	drain(&f->ring);
	assert_int_equal(a.res, 0);
	assert_int_equal(b.res, 0);
	assert_int_equal(c.res, -EBADF);
}

/* The linked chain completes the write first, then the sync, both ok. */
static void test_write_then_fdatasync_chain_in_order(void **state)
{
	struct fixture *f = *state;
	char out[8192], in[8192];
	fill(out, sizeof(out), 3);
	struct rec w, s;
	io_ring_write_then_fdatasync(&f->ring, rec_req(&w), rec_req(&s), f->fd, out, sizeof(out),
	                             0);
	assert_int_equal(io_ring_inflight(&f->ring), 2);
	drain(&f->ring);
	assert_int_equal(w.res, (int)sizeof(out));
	assert_int_equal(s.res, 0);
	assert_true(w.order < s.order);
	assert_int_equal(pread(f->fd, in, sizeof(in), 0), (ssize_t)sizeof(in));
	assert_memory_equal(in, out, sizeof(out));
}

/* A failing write cancels its linked sync. */
static void test_chain_write_error_cancels_sync(void **state)
{
	struct fixture *f = *state;
	int rdonly = open(f->path, O_RDONLY | O_CLOEXEC);
	assert_true(rdonly >= 0);
	char out[512] = {1};
	struct rec w, s;
	io_ring_write_then_fdatasync(&f->ring, rec_req(&w), rec_req(&s), rdonly, out, sizeof(out),
	                             0);
	drain(&f->ring);
	close(rdonly);
	assert_int_equal(w.res, -EBADF);
	assert_int_equal(s.res, -ECANCELED);
	assert_true(w.order < s.order);
}

static struct rlimit saved_fsize;

/* Caps the file size so the kernel makes the next write short. */
static void limit_file_size(rlim_t bytes)
{
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved_fsize), 0);
	struct rlimit lim = saved_fsize;
	lim.rlim_cur = bytes;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
}

static void unlimit_file_size(void)
{
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved_fsize), 0);
}

/* A short write from the kernel is resubmitted for the rest and completes
 * with the full length. */
static void test_short_write_is_resubmitted(void **state)
{
	struct fixture *f = *state;
	char out[8192], in[8192];
	fill(out, sizeof(out), 11);
	struct rec w;
	limit_file_size(6000);
	io_ring_write(&f->ring, rec_req(&w), f->fd, out, sizeof(out), 0);
	/* The first CQE is the short write (6000 bytes); its remainder is only
	 * queued, so lift the limit before it reaches the kernel. */
	assert_true(io_ring_poll(&f->ring, true) >= 1);
	unlimit_file_size();
	assert_int_equal(w.order, 0);
	drain(&f->ring);
	assert_int_equal(w.res, (int)sizeof(out));
	assert_int_equal(pread(f->fd, in, sizeof(in), 0), (ssize_t)sizeof(in));
	assert_memory_equal(in, out, sizeof(out));
}

/* A short write whose remainder fails reports the error, not the short
 * count. */
static void test_short_write_then_error_reports_error(void **state)
{
	struct fixture *f = *state;
	char out[8192];
	fill(out, sizeof(out), 12);
	struct rec w;
	limit_file_size(6000);
	io_ring_write(&f->ring, rec_req(&w), f->fd, out, sizeof(out), 0);
	drain(&f->ring);
	unlimit_file_size();
	assert_int_equal(w.res, -EFBIG);
	struct stat st;
	assert_int_equal(fstat(f->fd, &st), 0);
	assert_int_equal(st.st_size, 6000);
}

/* In a chain, a short write is finished and the sync the kernel cancelled
 * is issued after it: both succeed, write first. */
static void test_chain_short_write_reissues_sync(void **state)
{
	struct fixture *f = *state;
	char out[8192], in[8192];
	fill(out, sizeof(out), 13);
	struct rec w, s;
	limit_file_size(6000);
	io_ring_write_then_fdatasync(&f->ring, rec_req(&w), rec_req(&s), f->fd, out, sizeof(out),
	                             0);
	assert_true(io_ring_poll(&f->ring, true) >= 1);
	unlimit_file_size();
	drain(&f->ring);
	assert_int_equal(w.res, (int)sizeof(out));
	assert_int_equal(s.res, 0);
	assert_true(w.order < s.order);
	assert_int_equal(pread(f->fd, in, sizeof(in), 0), (ssize_t)sizeof(in));
	assert_memory_equal(in, out, sizeof(out));
}

/* Injected EIO fails read, write and fdatasync without touching the file. */
static void test_injected_eio_fails_without_kernel(void **state)
{
	struct fixture *f = *state;
	char buf[4096];
	fill(buf, sizeof(buf), 1);
	struct fault ft = {.op = IO_OP_WRITE, .err = -EIO};
	io_fault_set(fault_hook, &ft);
	struct rec w;
	io_ring_write(&f->ring, rec_req(&w), f->fd, buf, sizeof(buf), 0);
	assert_int_equal(w.order, 0); /* never synchronous */
	drain(&f->ring);
	assert_int_equal(w.res, -EIO);
	assert_int_equal(ft.hits, 1);
	struct stat st;
	assert_int_equal(fstat(f->fd, &st), 0);
	assert_int_equal(st.st_size, 0);

	struct fault fr = {.op = IO_OP_READ, .err = -EIO};
	io_fault_set(fault_hook, &fr);
	struct rec rd;
	io_ring_read(&f->ring, rec_req(&rd), f->fd, buf, sizeof(buf), 0);
	drain(&f->ring);
	assert_int_equal(rd.res, -EIO);

	struct fault fs = {.op = IO_OP_FSYNC, .err = -EIO};
	io_fault_set(fault_hook, &fs);
	struct rec s;
	io_ring_fdatasync(&f->ring, rec_req(&s), f->fd);
	drain(&f->ring);
	assert_int_equal(s.res, -EIO);
	io_fault_set(NULL, NULL);
}

/* Injected ENOSPC on a chain's write cancels the sync; on its sync, the write
 * succeeds and the sync reports ENOSPC. */
static void test_injected_errors_in_chain(void **state)
{
	struct fixture *f = *state;
	char buf[4096];
	fill(buf, sizeof(buf), 2);
	struct fault ft = {.op = IO_OP_WRITE, .err = -ENOSPC};
	io_fault_set(fault_hook, &ft);
	struct rec w, s;
	io_ring_write_then_fdatasync(&f->ring, rec_req(&w), rec_req(&s), f->fd, buf, sizeof(buf),
	                             0);
	drain(&f->ring);
	assert_int_equal(w.res, -ENOSPC);
	assert_int_equal(s.res, -ECANCELED);
	assert_true(w.order < s.order);

	struct fault fs = {.op = IO_OP_FSYNC, .err = -EIO};
	io_fault_set(fault_hook, &fs);
	io_ring_write_then_fdatasync(&f->ring, rec_req(&w), rec_req(&s), f->fd, buf, sizeof(buf),
	                             0);
	drain(&f->ring);
	assert_int_equal(w.res, (int)sizeof(buf));
	assert_int_equal(s.res, -EIO);
	assert_true(w.order < s.order);
	io_fault_set(NULL, NULL);
}

/* An injected short write writes only the shortened length, then reports
 * ENOSPC (and a chained sync is cancelled). */
static void test_injected_short_write_writes_prefix_then_enospc(void **state)
{
	struct fixture *f = *state;
	char out[8192], in[8192];
	fill(out, sizeof(out), 5);
	struct fault ft = {.op = IO_OP_WRITE, .shorten = true, .short_to = 1000};
	io_fault_set(fault_hook, &ft);
	struct rec w, s;
	io_ring_write(&f->ring, rec_req(&w), f->fd, out, sizeof(out), 0);
	drain(&f->ring);
	assert_int_equal(w.res, -ENOSPC);
	struct stat st;
	assert_int_equal(fstat(f->fd, &st), 0);
	assert_int_equal(st.st_size, 1000);
	assert_int_equal(pread(f->fd, in, 1000, 0), 1000);
	assert_memory_equal(in, out, 1000);

	io_ring_write_then_fdatasync(&f->ring, rec_req(&w), rec_req(&s), f->fd, out, sizeof(out),
	                             20000);
	drain(&f->ring);
	assert_int_equal(w.res, -ENOSPC);
	assert_int_equal(s.res, -ECANCELED);
	assert_int_equal(fstat(f->fd, &st), 0);
	assert_int_equal(st.st_size, 21000);
	io_fault_set(NULL, NULL);
}

/* openat creates a file, renameat moves it, unlinkat removes it. */
static void test_openat_renameat_unlinkat(void **state)
{
	struct fixture *f = *state;
	char a[600], b[600];
	snprintf(a, sizeof(a), "%s/a", f->dir);
	snprintf(b, sizeof(b), "%s/b", f->dir);
	struct rec o;
	io_ring_openat(&f->ring, rec_req(&o), AT_FDCWD, a, O_RDWR | O_CREAT | O_EXCL, 0600);
	drain(&f->ring);
	assert_true(o.res >= 0);
	int fd = o.res;
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	assert_int_equal(write(fd, "hello", 5), 5);
	close(fd);
	io_ring_openat(&f->ring, rec_req(&o), AT_FDCWD, a, O_RDWR | O_CREAT | O_EXCL, 0600);
	drain(&f->ring);
	assert_int_equal(o.res, -EEXIST);

	struct rec rn;
	io_ring_renameat(&f->ring, rec_req(&rn), AT_FDCWD, a, AT_FDCWD, b);
	drain(&f->ring);
	assert_int_equal(rn.res, 0);
	assert_int_equal(access(a, F_OK), -1);
	assert_int_equal(access(b, F_OK), 0);

	struct rec u;
	io_ring_unlinkat(&f->ring, rec_req(&u), AT_FDCWD, b, 0);
	drain(&f->ring);
	assert_int_equal(u.res, 0);
	assert_int_equal(access(b, F_OK), -1);
	io_ring_unlinkat(&f->ring, rec_req(&u), AT_FDCWD, b, 0);
	drain(&f->ring);
	assert_int_equal(u.res, -ENOENT);
}

/* Injected faults on open, rename and unlink never reach the kernel. */
static void test_injected_faults_on_namespace_ops(void **state)
{
	struct fixture *f = *state;
	char a[600];
	snprintf(a, sizeof(a), "%s/x", f->dir);
	struct fault fo = {.op = IO_OP_OPEN, .err = -EACCES};
	io_fault_set(fault_hook, &fo);
	struct rec o;
	io_ring_openat(&f->ring, rec_req(&o), AT_FDCWD, a, O_RDWR | O_CREAT, 0600);
	drain(&f->ring);
	assert_int_equal(o.res, -EACCES);
	assert_int_equal(access(a, F_OK), -1);

	struct fault fr = {.op = IO_OP_RENAME, .err = -EIO};
	io_fault_set(fault_hook, &fr);
	struct rec rn;
	io_ring_renameat(&f->ring, rec_req(&rn), AT_FDCWD, f->path, AT_FDCWD, a);
	drain(&f->ring);
	assert_int_equal(rn.res, -EIO);
	assert_int_equal(access(f->path, F_OK), 0);

	struct fault fu = {.op = IO_OP_UNLINK, .err = -EIO};
	io_fault_set(fault_hook, &fu);
	struct rec u;
	io_ring_unlinkat(&f->ring, rec_req(&u), AT_FDCWD, f->path, 0);
	drain(&f->ring);
	assert_int_equal(u.res, -EIO);
	assert_int_equal(access(f->path, F_OK), 0);
	io_fault_set(NULL, NULL);
}

/* fallocate grows the file; an injected fault fails it. */
static void test_fallocate_reserves_and_faults(void **state)
{
	struct fixture *f = *state;
	struct rec a;
	io_ring_fallocate(&f->ring, rec_req(&a), f->fd, 0, 0, 1 << 20);
	drain(&f->ring);
	if (a.res == -EOPNOTSUPP)
		skip();
	assert_int_equal(a.res, 0);
	struct stat st;
	assert_int_equal(fstat(f->fd, &st), 0);
	assert_int_equal(st.st_size, 1 << 20);
	struct fault ff = {.op = IO_OP_FALLOCATE, .err = -ENOSPC};
	io_fault_set(fault_hook, &ff);
	io_ring_fallocate(&f->ring, rec_req(&a), f->fd, 0, 0, 2 << 20);
	drain(&f->ring);
	assert_int_equal(a.res, -ENOSPC);
	io_fault_set(NULL, NULL);
}

/* A timeout completes with 0 after roughly its delay. */
static void test_timeout_fires(void **state)
{
	struct fixture *f = *state;
	struct rec t;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	io_ring_timeout(&f->ring, rec_req(&t), 20 * 1000 * 1000);
	drain(&f->ring);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_int_equal(t.res, 0);
	int64_t ns = (t1.tv_sec - t0.tv_sec) * 1000000000ll + (t1.tv_nsec - t0.tv_nsec);
	assert_true(ns >= 15 * 1000 * 1000);
}

/* More requests than SQ entries: the full SQ is flushed and every request
 * completes once, with inflight counting them all. */
static void test_full_sq_submits_and_retries(void **state)
{
	struct fixture *f = *state;
	enum { N = 100 };
	static char bufs[N][512];
	static struct rec recs[N];
	for (int i = 0; i < N; i++) {
		fill(bufs[i], sizeof(bufs[i]), (unsigned)i);
		io_ring_write(&f->ring, rec_req(&recs[i]), f->fd, bufs[i], sizeof(bufs[i]),
		              (uint64_t)i * 512);
	}
	assert_int_equal(io_ring_inflight(&f->ring), N);
	drain(&f->ring);
	char in[512];
	for (int i = 0; i < N; i++) {
		assert_int_equal(recs[i].res, 512);
		assert_int_equal(pread(f->fd, in, sizeof(in), i * 512), 512);
		assert_memory_equal(in, bufs[i], sizeof(in));
	}
	assert_int_equal(completions, N);
}

/* A done callback may start the next operation on the same ring. */
struct relay {
	struct io_req req;
	struct io_ring *ring;
	int fd;
	int left;
	char buf[64];
};

static void relay_done(struct io_req *req, int res)
{
	struct relay *r = (struct relay *)req;
	assert_int_equal(res, (int)sizeof(r->buf));
	if (--r->left > 0)
		io_ring_write(r->ring, &r->req, r->fd, r->buf, sizeof(r->buf),
		              (uint64_t)r->left * sizeof(r->buf));
}

static void test_done_callback_can_resubmit(void **state)
{
	struct fixture *f = *state;
	struct relay r = {.ring = &f->ring, .fd = f->fd, .left = 10};
	memset(r.buf, 'z', sizeof(r.buf));
	r.req.done = relay_done;
	io_ring_write(&f->ring, &r.req, f->fd, r.buf, sizeof(r.buf), 10 * sizeof(r.buf));
	drain(&f->ring);
	assert_int_equal(r.left, 0);
	struct stat st;
	assert_int_equal(fstat(f->fd, &st), 0);
	assert_int_equal(st.st_size, 11 * 64);
}

int main(void)
{
	test_require_io_uring();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_probe_succeeds_where_io_uring_works, setup,
	                                    teardown),
	    cmocka_unit_test(test_setup_errors_are_mapped_with_cause_and_fix),
	    cmocka_unit_test_setup_teardown(test_write_then_read_round_trip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fsync_and_fdatasync_complete, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_write_then_fdatasync_chain_in_order, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_chain_write_error_cancels_sync, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_short_write_is_resubmitted, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_short_write_then_error_reports_error, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_chain_short_write_reissues_sync, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_injected_eio_fails_without_kernel, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_injected_errors_in_chain, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_injected_short_write_writes_prefix_then_enospc,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_openat_renameat_unlinkat, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_injected_faults_on_namespace_ops, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fallocate_reserves_and_faults, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_timeout_fires, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_full_sq_submits_and_retries, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_done_callback_can_resubmit, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
