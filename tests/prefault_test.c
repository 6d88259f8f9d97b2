/* Unit tests for actors/prefault: a range the actor populated takes no page
 * faults when the test thread then writes it (the kernel's worker took
 * them), while an unrequested range of the same mapping faults on every
 * page; a request released in flight keeps its mapping until the kernel is
 * done and then unmaps it; a request for a range its requester is already
 * done with is skipped; a release request unmaps a range and keeps its
 * data; a request for a range that is no longer mapped
 * fails cleanly and is counted. */
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
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmocka.h>
#include <time.h>

#include "prefault.h"
#include "reactor.h"
#include "test_util.h"

#define MIB (1u << 20)

struct fixture {
	struct prefault_actor *p;
	struct reactor *r;
	char *dir;
};

static void start(struct fixture *f)
{
	test_require_io_uring();
	f->dir = test_tmpdir("prefault");
	f->p = calloc(1, sizeof(*f->p));
	assert_non_null(f->p);
	prefault_init(f->p);
	assert_int_equal(reactor_new("prefault-test", &f->r), 0);
	assert_int_equal(reactor_add_actor(f->r, &f->p->actor, 4), 0);
	assert_int_equal(reactor_start(f->r), 0);
}

static void stop(struct fixture *f)
{
	assert_int_equal(reactor_stop(f->r), 0);
	reactor_free(f->r);
	free(f->p);
	test_rmtree(f->dir);
	free(f->dir);
}

/* A shared mapping of a fresh file of len bytes, as the log has. */
/* A hold on a mapping, given up by unmapping it (prefault_req_release). */
struct unmap_hold {
	void *map;
	size_t size;
};

static void unmap_release(void *arg)
{
	struct unmap_hold *h = arg;
	munmap(h->map, h->size);
}

/* Returns once req is idle. */
static void wait_idle(struct prefault_req *req)
{
	const struct timespec step = {.tv_sec = 0, .tv_nsec = 50000};
	while (prefault_busy(req))
		nanosleep(&step, NULL);
}

static uint8_t *map_file(const char *dir, size_t len)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/mapped", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0644);
	assert_true(fd >= 0);
	assert_int_equal(posix_fallocate(fd, 0, (off_t)len), 0);
	void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(m != MAP_FAILED);
	close(fd);
	return m;
}

/* start, then a mapped file of len bytes (*m) and an idle request. */
static struct prefault_req *start_mapped(struct fixture *f, size_t len, uint8_t **m)
{
	start(f);
	*m = map_file(f->dir, len);
	struct prefault_req *req = prefault_req_new();
	assert_non_null(req);
	return req;
}

static long minor_faults(void)
{
	struct rusage ru;
	assert_int_equal(getrusage(RUSAGE_THREAD, &ru), 0);
	return ru.ru_minflt;
}

/* Writes one byte per page of [p, p + len); returns the faults taken. */
static long touch(uint8_t *p, size_t len)
{
	long page = sysconf(_SC_PAGESIZE), before = minor_faults();
	for (size_t off = 0; off < len; off += (size_t)page)
		p[off] = (uint8_t)off;
	return minor_faults() - before;
}

static void test_populated_range_takes_no_faults(void **state)
{
	(void)state;
	struct fixture f;
	uint8_t *m;
	struct prefault_req *req = start_mapped(&f, 2 * MIB, &m);
	assert_false(prefault_busy(req));
	assert_int_equal(prefault_send(f.p, req, m, MIB), 0);
	wait_idle(req);
	assert_false(prefault_busy(req));
	long pages = (long)(MIB / (size_t)sysconf(_SC_PAGESIZE));
	long populated = touch(m, MIB), cold = touch(m + MIB, MIB);
	fprintf(stderr, "%ld pages: %ld faults after the request, %ld without\n", pages,
	        populated, cold);
	assert_true(cold > pages / 2);
#ifndef __SANITIZE_THREAD__ /* its shadow memory faults on every page */
	/* (ASan adds a fault per page of shadow memory: 1 in 8.) */
	assert_true(populated < pages / 4);
#endif
	assert_int_equal(atomic_load(&f.p->requests), 1);
	assert_int_equal(atomic_load(&f.p->bytes), MIB);
	assert_int_equal(atomic_load(&f.p->failures), 0);
	struct unmap_hold h = {m, 2 * MIB};
	prefault_req_release(req, unmap_release, &h);
	assert_int_not_equal(msync(m, MIB, MS_ASYNC), 0); /* idle: unmapped at once */
	stop(&f);
}

/* A request that follows its requester's done offset is skipped when its
 * range lies wholly below it by the time the actor takes it: its pages
 * stay unmapped (writing them faults) and it counts as skipped, not as
 * bytes; a range that reaches past the offset is populated as usual. */
static void test_request_behind_the_requester_is_skipped(void **state)
{
	(void)state;
	struct fixture f;
	uint8_t *m;
	struct prefault_req *req = start_mapped(&f, 2 * MIB, &m);
	_Atomic uint64_t done = MIB;
	prefault_req_follow(req, m, &done);
	assert_int_equal(prefault_send(f.p, req, m, MIB), 0);
	wait_idle(req);
	assert_int_equal(atomic_load(&f.p->skipped), 1);
	assert_int_equal(atomic_load(&f.p->bytes), 0);
	long pages = (long)(MIB / (size_t)sysconf(_SC_PAGESIZE));
	assert_true(touch(m, MIB) > pages / 2);
	assert_int_equal(prefault_send(f.p, req, m + MIB / 2, MIB), 0);
	wait_idle(req);
	assert_int_equal(atomic_load(&f.p->skipped), 1);
	assert_int_equal(atomic_load(&f.p->bytes), MIB);
	assert_int_equal(atomic_load(&f.p->requests), 2);
	struct unmap_hold h = {m, 2 * MIB};
	prefault_req_release(req, unmap_release, &h);
	stop(&f);
}

/* A release request unmaps the range (touching it faults again) without
 * losing what was written there (a shared file mapping's pages stay in
 * the page cache), is never skipped, and counts no populated bytes. */
static void test_release_request_unmaps_and_keeps_the_data(void **state)
{
	(void)state;
	struct fixture f;
	uint8_t *m;
	struct prefault_req *req = start_mapped(&f, MIB, &m);
	_Atomic uint64_t done = MIB;
	prefault_req_follow(req, m, &done);
	long pages = (long)(MIB / (size_t)sysconf(_SC_PAGESIZE));
	touch(m, MIB);
	assert_true(touch(m, MIB) < pages / 4); /* mapped now */
	assert_int_equal(prefault_send_release(f.p, req, m, MIB), 0);
	wait_idle(req);
	assert_int_equal(atomic_load(&f.p->skipped), 0);
	assert_int_equal(atomic_load(&f.p->bytes), 0);
	assert_int_equal(atomic_load(&f.p->failures), 0);
	long page = sysconf(_SC_PAGESIZE), before = minor_faults();
	for (size_t off = 0; off < MIB; off += (size_t)page)
		assert_int_equal(m[off], (uint8_t)off);
	assert_true(minor_faults() - before > 0);
	struct unmap_hold h = {m, MIB};
	prefault_req_release(req, unmap_release, &h);
	stop(&f);
}

/* Released while in flight: the mapping stays until the kernel is done
 * (the request then counts its bytes), and is gone after that. */
static void test_release_in_flight_unmaps_when_done(void **state)
{
	(void)state;
	struct fixture f;
	uint8_t *m;
	struct prefault_req *req = start_mapped(&f, 8 * MIB, &m);
	assert_int_equal(prefault_send(f.p, req, m, 8 * MIB), 0);
	struct unmap_hold h = {m, 8 * MIB};
	prefault_req_release(req, unmap_release, &h);
	/* reactor_stop returns once every request has completed. */
	assert_int_equal(reactor_stop(f.r), 0);
	assert_int_equal(atomic_load(&f.p->bytes), 8 * MIB);
	assert_int_equal(atomic_load(&f.p->failures), 0);
	errno = 0;
	assert_int_not_equal(msync(m, MIB, MS_ASYNC), 0);
	assert_int_equal(errno, ENOMEM);
	reactor_free(f.r);
	free(f.p);
	test_rmtree(f.dir);
	free(f.dir);
}

static void test_unmapped_range_fails_cleanly(void **state)
{
	(void)state;
	struct fixture f;
	start(&f);
	uint8_t *m = map_file(f.dir, MIB);
	assert_int_equal(munmap(m, MIB), 0);
	struct prefault_req *req = prefault_req_new();
	assert_non_null(req);
	assert_int_equal(prefault_send(f.p, req, m, MIB), 0);
	wait_idle(req);
	assert_int_equal(atomic_load(&f.p->failures), 1);
	assert_int_equal(atomic_load(&f.p->bytes), 0);
	prefault_req_release(req, NULL, NULL);
	stop(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_populated_range_takes_no_faults),
	    cmocka_unit_test(test_release_in_flight_unmaps_when_done),
	    cmocka_unit_test(test_request_behind_the_requester_is_skipped),
	    cmocka_unit_test(test_release_request_unmaps_and_keeps_the_data),
	    cmocka_unit_test(test_unmapped_range_fails_cleanly),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
