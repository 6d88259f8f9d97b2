/*
 * park — a thread sleeps on a 32-bit word of its own (a futex) until
 * another thread changes it; and a batch of such wake-ups collected while
 * a mutex is held, issued after it is released.
 *
 * Why not a condition variable: a thread woken by pthread_cond_signal
 * under a mutex must take that mutex back before pthread_cond_wait
 * returns, so while the waker still holds it, the woken thread runs only
 * to block again. With many writers on few cores that second sleep cost as
 * much as the first. Here the waker changes the word under its mutex and
 * wakes after unlocking; the sleeper need not take the mutex at all.
 *
 * A word may be gone when its wake-up is issued: the sleeper saw the new
 * value without sleeping and returned. The kernel only hashes the address,
 * so such a wake-up finds nobody, or makes some later sleeper on the same
 * address return early; every park_wait caller re-checks its word in a
 * loop. Callers must not write to a word after they let its owner go.
 *
 * Threads: any. A park_batch belongs to the thread that fills it.
 */
#ifndef CESIUM_CORE_PARK_H
#define CESIUM_CORE_PARK_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef _Atomic uint32_t park_word;

/* Sleeps while *w == expected. Returns at once if it differs, and may
 * return early; the caller re-checks. */
void park_wait(park_word *w, uint32_t expected);
/* The same, returning no later than about timeout_ns from now. */
void park_wait_for(park_word *w, uint32_t expected, uint64_t timeout_ns);
/* Wakes every thread sleeping on w. */
void park_wake(park_word *w);
/* Wake-ups issued so far by this process (each one is a futex call):
 * tests check that a path that needs none makes none. */
uint64_t park_wakes_issued(void);

#define PARK_BATCH_MAX 32

struct park_batch {
	size_t n;
	park_word *words[PARK_BATCH_MAX];
};

/* Queues a wake-up of w; when the batch is full, w is woken at once
 * (correct, only slower if a mutex is held). */
void park_batch_add(struct park_batch *b, park_word *w);
/* Issues the queued wake-ups and empties the batch. */
void park_batch_wake(struct park_batch *b);

#endif
