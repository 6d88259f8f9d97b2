/*
 * error_test — core/error: error_set returns its code and records the
 * formatted message, error_clear empties it, messages are per thread, a
 * message longer than the buffer is cut (never overflowed), errno values
 * map to CESIUM_E* codes, and cesium_strerror names every code.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "error.h"
#include "test_util.h"

/* error_set hands back the code it was given, whatever the code, and the
 * printf-style message becomes cesium_errmsg(). */
static void test_error_set_returns_code_and_formats_message(void **state)
{
	(void)state;
	static const int codes[] = {
	    CESIUM_OK,     CESIUM_ENOTFOUND, CESIUM_EINVAL, CESIUM_ENOMEM,  CESIUM_EIO,
	    CESIUM_ENOSPC, CESIUM_ECORRUPT,  CESIUM_EBUSY,  CESIUM_ECLOSED, CESIUM_ENOTSUP};
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		int rc = error_set(codes[i], "%s: offset %llu: code %d", "000042.seg", 4096ULL,
		                   codes[i]);
		assert_int_equal(rc, codes[i]);
		char want[128];
		snprintf(want, sizeof(want), "000042.seg: offset 4096: code %d", codes[i]);
		assert_string_equal(cesium_errmsg(), want);
	}
	/* A later message replaces the earlier one entirely. */
	error_set(CESIUM_EIO, "a rather long first message");
	error_set(CESIUM_EIO, "short");
	assert_string_equal(cesium_errmsg(), "short");
}

/* error_clear leaves an empty string, not stale text. */
static void test_error_clear_empties_the_message(void **state)
{
	(void)state;
	error_set(CESIUM_EINVAL, "something went wrong");
	assert_true(cesium_errmsg()[0] != '\0');
	error_clear();
	assert_string_equal(cesium_errmsg(), "");
}

/* A message longer than ERROR_MSG_MAX is cut to ERROR_MSG_MAX - 1 bytes,
 * keeps its beginning and stays NUL-terminated; one that fits exactly is
 * kept whole. */
static void test_long_messages_are_truncated(void **state)
{
	(void)state;
	static char big[ERROR_MSG_MAX * 3];
	for (size_t i = 0; i < sizeof(big) - 1; i++)
		big[i] = (char)('a' + i % 26);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(error_set(CESIUM_ECORRUPT, "%s", big), CESIUM_ECORRUPT);
	const char *m = cesium_errmsg();
	assert_int_equal(strlen(m), ERROR_MSG_MAX - 1);
	assert_memory_equal(m, big, ERROR_MSG_MAX - 1);

	big[ERROR_MSG_MAX - 1] = '\0'; /* exactly the longest that fits */
	error_set(CESIUM_EIO, "%s", big);
	assert_int_equal(strlen(cesium_errmsg()), ERROR_MSG_MAX - 1);
	assert_string_equal(cesium_errmsg(), big);
}

struct thread_arg {
	const char *mine;
	char seen_at_start[64];
	char seen_at_end[64];
	pthread_barrier_t *barrier;
};

static void *thread_body(void *p)
{
	struct thread_arg *a = p;
	snprintf(a->seen_at_start, sizeof(a->seen_at_start), "%s", cesium_errmsg());
	error_set(CESIUM_EIO, "%s", a->mine);
	/* Both threads have set theirs before either reads it back. */
	pthread_barrier_wait(a->barrier);
	snprintf(a->seen_at_end, sizeof(a->seen_at_end), "%s", cesium_errmsg());
	return NULL;
}

/* Each thread has its own message: a new thread starts empty, messages set
 * concurrently on two threads do not mix, and neither reaches the main
 * thread's. */
static void test_messages_are_thread_local(void **state)
{
	(void)state;
	pthread_barrier_t barrier;
	assert_int_equal(pthread_barrier_init(&barrier, NULL, 2), 0);
	error_set(CESIUM_EINVAL, "main thread's message");
	struct thread_arg a = {.mine = "from thread A", .barrier = &barrier};
	struct thread_arg b = {.mine = "from thread B", .barrier = &barrier};
	pthread_t ta, tb;
	assert_int_equal(pthread_create(&ta, NULL, thread_body, &a), 0);
	assert_int_equal(pthread_create(&tb, NULL, thread_body, &b), 0);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	pthread_barrier_destroy(&barrier);
	assert_string_equal(a.seen_at_start, "");
	assert_string_equal(b.seen_at_start, "");
	assert_string_equal(a.seen_at_end, "from thread A");
	assert_string_equal(b.seen_at_end, "from thread B");
	assert_string_equal(cesium_errmsg(), "main thread's message");
}

/* Negative errno values, as io_uring returns them, map to the codes the
 * API documents; unknown ones become CESIUM_EIO. */
static void test_errno_maps_to_codes(void **state)
{
	(void)state;
	assert_int_equal(error_from_errno(0), CESIUM_OK);
	assert_int_equal(error_from_errno(-ENOSPC), CESIUM_ENOSPC);
	assert_int_equal(error_from_errno(-EDQUOT), CESIUM_ENOSPC);
	assert_int_equal(error_from_errno(-ENOMEM), CESIUM_ENOMEM);
	assert_int_equal(error_from_errno(-ENOENT), CESIUM_EINVAL);
	assert_int_equal(error_from_errno(-ENOTDIR), CESIUM_EINVAL);
	assert_int_equal(error_from_errno(-EEXIST), CESIUM_EINVAL);
	assert_int_equal(error_from_errno(-EWOULDBLOCK), CESIUM_EBUSY);
	assert_int_equal(error_from_errno(-ENOSYS), CESIUM_ENOTSUP);
	assert_int_equal(error_from_errno(-EPERM), CESIUM_ENOTSUP);
	assert_int_equal(error_from_errno(-EIO), CESIUM_EIO);
	assert_int_equal(error_from_errno(-EBADF), CESIUM_EIO);
	assert_int_equal(error_from_errno(-12345), CESIUM_EIO);
}

/* cesium_strerror gives each code a distinct name that starts with the
 * code's own identifier, and says so for an unknown code. */
static void test_strerror_names_each_code(void **state)
{
	(void)state;
	static const struct {
		int code;
		const char *name;
	} codes[] = {
	    {CESIUM_OK, "CESIUM_OK"},
	    {CESIUM_ENOTFOUND, "CESIUM_ENOTFOUND"},
	    {CESIUM_EINVAL, "CESIUM_EINVAL"},
	    {CESIUM_ENOMEM, "CESIUM_ENOMEM"},
	    {CESIUM_EIO, "CESIUM_EIO"},
	    {CESIUM_ENOSPC, "CESIUM_ENOSPC"},
	    {CESIUM_ECORRUPT, "CESIUM_ECORRUPT"},
	    {CESIUM_EBUSY, "CESIUM_EBUSY"},
	    {CESIUM_ECLOSED, "CESIUM_ECLOSED"},
	    {CESIUM_ENOTSUP, "CESIUM_ENOTSUP"},
	};
	size_t n = sizeof(codes) / sizeof(codes[0]);
	for (size_t i = 0; i < n; i++) {
		const char *s = cesium_strerror(codes[i].code);
		assert_non_null(s);
		size_t l = strlen(codes[i].name);
		assert_memory_equal(s, codes[i].name, l);
		assert_int_equal(s[l], ':'); /* not a longer name sharing the prefix */
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(s, cesium_strerror(codes[j].code));
	}
	const char *unknown = cesium_strerror(-9999);
	assert_non_null(unknown);
	assert_non_null(strstr(unknown, "unknown"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_error_set_returns_code_and_formats_message),
	    cmocka_unit_test(test_error_clear_empties_the_message),
	    cmocka_unit_test(test_long_messages_are_truncated),
	    cmocka_unit_test(test_messages_are_thread_local),
	    cmocka_unit_test(test_errno_maps_to_codes),
	    cmocka_unit_test(test_strerror_names_each_code),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
