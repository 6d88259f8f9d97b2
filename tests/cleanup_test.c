/* Unit tests for actors/cleanup: files pushed from several threads are all
 * unlinked by the actor on its reactor before reactor_stop returns, and the
 * counters match what was pushed. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
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

#include "cleanup.h"
#include "error.h"
#include "fault.h"
#include "reactor.h"
#include "test_util.h"

enum { PUSHERS = 3, FILES_PER_PUSHER = 400 };

struct pusher {
	struct cleanup_actor *c;
	const char *dir;
	int id;
	uint64_t bytes;
	int errors;
};

static void file_name(char *out, size_t n, const char *dir, int id, int i)
{
	snprintf(out, n, "%s/p%d-%05d.tmp", dir, id, i);
}

static void *pusher_main(void *arg)
{
	struct pusher *p = arg;
	char path[512];
	for (int i = 0; i < FILES_PER_PUSHER; i++) {
		file_name(path, sizeof(path), p->dir, p->id, i);
		uint64_t bytes = (uint64_t)(p->id * 1000 + i);
		if (cleanup_push(p->c, path, bytes) != 0)
			p->errors++;
		else
			p->bytes += bytes;
		if (i % 50 == 0)
			usleep(100); /* let some kicks be handled while others push */
	}
	return NULL;
}

static void create_files(const char *dir)
{
	char path[512];
	for (int id = 0; id < PUSHERS; id++)
		for (int i = 0; i < FILES_PER_PUSHER; i++) {
			file_name(path, sizeof(path), dir, id, i);
			int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
			assert_true(fd >= 0);
			close(fd);
		}
}

/* Files pushed from 3 threads are all gone after reactor_stop, and
 * files_deleted / bytes_freed count exactly them. */
static void test_pushed_files_all_deleted(void **state)
{
	(void)state;
	test_require_io_uring();
	char *dir = test_tmpdir("cleanup");
	assert_non_null(dir);
	create_files(dir);
	struct cleanup_actor *c = calloc(1, sizeof(*c));
	assert_non_null(c);
	cleanup_init(c);
	struct reactor *r = NULL;
	assert_int_equal(reactor_new("cleanup-test", &r), 0);
	/* A small mailbox: only one kick is ever queued, whatever the load. */
	assert_int_equal(reactor_add_actor(r, &c->actor, 2), 0);
	assert_int_equal(reactor_start(r), 0);

	struct pusher p[PUSHERS];
	pthread_t th[PUSHERS];
	uint64_t want_bytes = 0;
	for (int i = 0; i < PUSHERS; i++) {
		p[i] = (struct pusher){.c = c, .dir = dir, .id = i};
		assert_int_equal(pthread_create(&th[i], NULL, pusher_main, &p[i]), 0);
	}
	for (int i = 0; i < PUSHERS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(p[i].errors, 0);
		want_bytes += p[i].bytes;
	}
	assert_int_equal(reactor_stop(r), 0);

	char path[512];
	int left = 0;
	for (int id = 0; id < PUSHERS; id++)
		for (int i = 0; i < FILES_PER_PUSHER; i++) {
			file_name(path, sizeof(path), dir, id, i);
			if (access(path, F_OK) == 0)
				left++;
		}
	assert_int_equal(left, 0);
	assert_int_equal(atomic_load(&c->files_deleted), PUSHERS * FILES_PER_PUSHER);
	assert_int_equal(atomic_load(&c->bytes_freed), want_bytes);
	assert_int_equal(atomic_load(&c->failures), 0);
	reactor_free(r);
	free(c);
	test_rmtree(dir);
	free(dir);
}

static int unlink_eacces(void *arg, enum io_op op, int fd, const char *path, size_t *len)
{
	(void)arg;
	(void)fd;
	(void)len;
	if (op == IO_OP_UNLINK && path && strstr(path, "keep"))
		return -EACCES;
	return 0;
}

/* A file already gone counts as deleted; a failed unlink counts as a
 * failure, frees no bytes and leaves the file. */
static void test_missing_and_failed_unlinks_counted(void **state)
{
	(void)state;
	test_require_io_uring();
	char *dir = test_tmpdir("cleanup");
	char gone[512], keep[512], real[512];
	snprintf(gone, sizeof(gone), "%s/never-existed", dir);
	snprintf(keep, sizeof(keep), "%s/keep-me", dir);
	snprintf(real, sizeof(real), "%s/real", dir);
	int fd = open(keep, O_WRONLY | O_CREAT, 0644);
	close(fd);
	fd = open(real, O_WRONLY | O_CREAT, 0644);
	close(fd);
	struct cleanup_actor *c = calloc(1, sizeof(*c));
	cleanup_init(c);
	struct reactor *r = NULL;
	assert_int_equal(reactor_new("cleanup-test", &r), 0);
	assert_int_equal(reactor_add_actor(r, &c->actor, 4), 0);
	assert_int_equal(reactor_start(r), 0);
	io_fault_set(unlink_eacces, NULL);
	assert_int_equal(cleanup_push(c, gone, 10), 0);
	assert_int_equal(cleanup_push(c, keep, 100), 0);
	assert_int_equal(cleanup_push(c, real, 1000), 0);
	assert_int_equal(reactor_stop(r), 0);
	io_fault_set(NULL, NULL);
	assert_int_equal(atomic_load(&c->files_deleted), 2);
	assert_int_equal(atomic_load(&c->bytes_freed), 1010);
	assert_int_equal(atomic_load(&c->failures), 1);
	assert_int_equal(access(keep, F_OK), 0);
	assert_int_equal(access(real, F_OK), -1);
	reactor_free(r);
	free(c);
	test_rmtree(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pushed_files_all_deleted),
	    cmocka_unit_test(test_missing_and_failed_unlinks_counted),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
