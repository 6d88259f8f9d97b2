/* Unit tests for actors/waiter: a caller thread blocking for a reply. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "error.h"
#include "waiter.h"

struct waker {
	struct waiter *w;
	int result;
	bool with_msg;
	long delay_ms;
};

static void *wake_later(void *arg)
{
	struct waker *k = arg;
	struct timespec ts = {.tv_sec = 0, .tv_nsec = k->delay_ms * 1000000L};
	nanosleep(&ts, NULL);
	if (k->with_msg) {
		error_set(k->result, "segment 12.seg: bad block at offset 4096");
		waiter_wake_err(k->w, k->result);
	} else {
		waiter_wake(k->w, k->result);
	}
	return NULL;
}

/* wait blocks until another thread wakes it, and returns its result. */
static void test_wait_returns_result_from_other_thread(void **state)
{
	(void)state;
	struct waiter w;
	assert_int_equal(waiter_init(&w), 0);
	struct waker k = {.w = &w, .result = 42, .delay_ms = 30};
	pthread_t th;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(pthread_create(&th, NULL, wake_later, &k), 0);
	assert_int_equal(waiter_wait(&w), 42);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	assert_true(ms >= 25);
	pthread_join(th, NULL);
	waiter_destroy(&w);
}

/* A wake that happens before the wait is not lost. */
static void test_wake_before_wait_is_not_lost(void **state)
{
	(void)state;
	struct waiter w;
	assert_int_equal(waiter_init(&w), 0);
	waiter_wake(&w, CESIUM_ENOSPC);
	assert_int_equal(waiter_wait(&w), CESIUM_ENOSPC);
	waiter_destroy(&w);
}

/* An error message set on the waking thread reaches the waiting thread. */
static void test_error_message_travels_to_caller(void **state)
{
	(void)state;
	struct waiter w;
	assert_int_equal(waiter_init(&w), 0);
	error_clear();
	struct waker k = {.w = &w, .result = CESIUM_ECORRUPT, .with_msg = true, .delay_ms = 1};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, wake_later, &k), 0);
	assert_int_equal(waiter_wait(&w), CESIUM_ECORRUPT);
	pthread_join(th, NULL);
	assert_non_null(strstr(cesium_errmsg(), "12.seg"));
	assert_non_null(strstr(cesium_errmsg(), "4096"));
	waiter_destroy(&w);
}

/* Many short-lived waiters on the stack, destroyed right after waking:
 * the waker never touches one after waking it. */
static void test_waiter_on_stack_destroyed_right_after_wake(void **state)
{
	(void)state;
	for (int i = 0; i < 500; i++) {
		struct waiter w;
		assert_int_equal(waiter_init(&w), 0);
		struct waker k = {.w = &w, .result = i, .delay_ms = 0};
		pthread_t th;
		assert_int_equal(pthread_create(&th, NULL, wake_later, &k), 0);
		assert_int_equal(waiter_wait(&w), i);
		waiter_destroy(&w);
		memset(&w, 0x5a, sizeof(w));
		pthread_join(th, NULL);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_wait_returns_result_from_other_thread),
	    cmocka_unit_test(test_wake_before_wait_is_not_lost),
	    cmocka_unit_test(test_error_message_travels_to_caller),
	    cmocka_unit_test(test_waiter_on_stack_destroyed_right_after_wake),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
