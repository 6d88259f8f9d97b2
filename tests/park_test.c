/* Unit tests for core/park: a sleeper returns when its word changes and it
 * is woken, not before; a wait on a word that already differs returns at
 * once; a timed wait ends by itself; a batch defers its wake-ups until it is
 * issued, and wakes at once what does not fit. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "park.h"

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct sleeper {
	park_word word;
	atomic_bool returned;
	pthread_t thread;
};

/* Sleeps until the word leaves 0, re-checking after every return, as the
 * callers in core/db.c do. */
static void *sleeper_main(void *arg)
{
	struct sleeper *s = arg;
	while (atomic_load(&s->word) == 0)
		park_wait(&s->word, 0);
	atomic_store(&s->returned, true);
	return NULL;
}

static void sleeper_start(struct sleeper *s)
{
	atomic_init(&s->word, 0);
	atomic_init(&s->returned, false);
	assert_int_equal(pthread_create(&s->thread, NULL, sleeper_main, s), 0);
}

/* Waits up to 10 s for s to return. */
static bool sleeper_returns(struct sleeper *s)
{
	for (uint64_t t0 = now_ns(); now_ns() - t0 < 10000000000ull; usleep(1000))
		if (atomic_load(&s->returned)) {
			pthread_join(s->thread, NULL);
			return true;
		}
	return false;
}

static void test_wait_returns_at_once_when_word_differs(void **state)
{
	(void)state;
	park_word w = 7;
	uint64_t t0 = now_ns();
	park_wait_for(&w, 6, 5000000000ull);
	park_wait(&w, 6);
	assert_true(now_ns() - t0 < 1000000000ull);
}

static void test_timed_wait_ends_by_itself(void **state)
{
	(void)state;
	park_word w = 0;
	uint64_t t0 = now_ns();
	park_wait_for(&w, 0, 20000000ull);
	uint64_t took = now_ns() - t0;
	assert_true(took >= 15000000ull);
	assert_true(took < 5000000000ull);
}

static void test_wake_releases_the_sleeper(void **state)
{
	(void)state;
	struct sleeper s;
	sleeper_start(&s);
	usleep(20000); /* let it fall asleep */
	assert_false(atomic_load(&s.returned));
	atomic_store(&s.word, 1);
	park_wake(&s.word);
	assert_true(sleeper_returns(&s));
}

/* A batch of more than PARK_BATCH_MAX words: the overflow is woken when it
 * is added, the rest when the batch is issued, which empties it. */
static void test_batch_wakes_every_sleeper(void **state)
{
	(void)state;
	enum { N = PARK_BATCH_MAX + 8 };
	static struct sleeper s[N];
	for (size_t i = 0; i < N; i++)
		sleeper_start(&s[i]);
	usleep(20000);
	struct park_batch b = { 0 };
	for (size_t i = 0; i < N; i++) {
		atomic_store(&s[i].word, 1);
		park_batch_add(&b, &s[i].word);
	}
	assert_int_equal(b.n, PARK_BATCH_MAX);
	for (size_t i = PARK_BATCH_MAX; i < N; i++)
		assert_true(sleeper_returns(&s[i]));
	park_batch_wake(&b);
	assert_int_equal(b.n, 0);
	for (size_t i = 0; i < PARK_BATCH_MAX; i++)
		assert_true(sleeper_returns(&s[i]));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wait_returns_at_once_when_word_differs),
		cmocka_unit_test(test_timed_wait_ends_by_itself),
		cmocka_unit_test(test_wake_releases_the_sleeper),
		cmocka_unit_test(test_batch_wakes_every_sleeper),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
