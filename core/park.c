#include "park.h"

#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static void park_futex_wait(park_word *w, uint32_t expected, const struct timespec *timeout)
{
	/* EAGAIN (the word changed), EINTR and ETIMEDOUT all mean "re-check",
	 * which the caller does, so the result is not needed. */
	(void)syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT_PRIVATE, expected, timeout, NULL, 0);
}

void park_wait(park_word *w, uint32_t expected)
{
	park_futex_wait(w, expected, NULL);
}

void park_wait_for(park_word *w, uint32_t expected, uint64_t timeout_ns)
{
	struct timespec ts = { .tv_sec = (time_t)(timeout_ns / 1000000000u),
	                       .tv_nsec = (long)(timeout_ns % 1000000000u) };
	park_futex_wait(w, expected, &ts);
}

static _Atomic uint64_t park_wakes;

uint64_t park_wakes_issued(void)
{
	return atomic_load_explicit(&park_wakes, memory_order_relaxed);
}

void park_wake(park_word *w)
{
	atomic_fetch_add_explicit(&park_wakes, 1, memory_order_relaxed);
	(void)syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

void park_batch_add(struct park_batch *b, park_word *w)
{
	if (b->n == PARK_BATCH_MAX)
		park_wake(w);
	else
		b->words[b->n++] = w;
}

void park_batch_wake(struct park_batch *b)
{
	for (size_t i = 0; i < b->n; i++)
		park_wake(b->words[i]);
	b->n = 0;
}
