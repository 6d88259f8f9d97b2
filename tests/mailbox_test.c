/* Unit tests for actors/mailbox: the bounded lock-free MPSC queue. */
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "error.h"
#include "mailbox.h"
#include "test_util.h"

static void *tok(uintptr_t v)
{
	return (void *)(v + 1);
}
static uintptr_t untok(void *p)
{
	return (uintptr_t)p - 1;
}

/* One producer, one consumer thread: messages come out in push order. */
static void test_single_thread_fifo_order(void **state)
{
	(void)state;
	struct mailbox mb;
	assert_int_equal(mailbox_init(&mb, 8), 0);
	assert_true(mailbox_empty(&mb));
	assert_null(mailbox_pop(&mb));
	/* Several laps around the ring. */
	uintptr_t next_in = 0, next_out = 0;
	for (int round = 0; round < 50; round++) {
		for (int i = 0; i < 5; i++)
			assert_int_equal(mailbox_push(&mb, tok(next_in++)), 0);
		assert_false(mailbox_empty(&mb));
		for (int i = 0; i < 5; i++)
			assert_int_equal(untok(mailbox_pop(&mb)), next_out++);
		assert_true(mailbox_empty(&mb));
	}
	mailbox_destroy(&mb);
}

/* Capacities that are not powers of two >= 2 are refused. */
static void test_init_rejects_bad_capacity(void **state)
{
	(void)state;
	struct mailbox mb;
	assert_int_equal(mailbox_init(&mb, 0), CESIUM_EINVAL);
	assert_int_equal(mailbox_init(&mb, 1), CESIUM_EINVAL);
	assert_int_equal(mailbox_init(&mb, 6), CESIUM_EINVAL);
	assert_int_equal(mailbox_init(&mb, 2), 0);
	assert_int_equal(mailbox_capacity(&mb), 2);
	mailbox_destroy(&mb);
}

/* A full mailbox refuses with EBUSY and loses nothing: every accepted
 * message is delivered exactly once, in order, and refused ones can be
 * pushed again after the consumer makes room. */
static void test_full_mailbox_returns_ebusy_and_keeps_everything(void **state)
{
	(void)state;
	enum { CAP = 16, TOTAL = 1000 };
	struct mailbox mb;
	assert_int_equal(mailbox_init(&mb, CAP), 0);
	for (uintptr_t i = 0; i < CAP; i++)
		assert_int_equal(mailbox_push(&mb, tok(i)), 0);
	assert_int_equal(mailbox_push(&mb, tok(CAP)), CESIUM_EBUSY);
	assert_int_equal(mailbox_push(&mb, tok(CAP)), CESIUM_EBUSY);

	uintptr_t sent = CAP, got = 0;
	int busy = 0;
	uint64_t seed = test_seed("mailbox_backpressure");
	while (got < TOTAL) {
		/* Random bursts on each side so the queue swings between full
		 * and empty. */
		unsigned pushes = (unsigned)(test_rand(&seed) % (2 * CAP));
		for (unsigned i = 0; i < pushes && sent < TOTAL; i++) {
			int rc = mailbox_push(&mb, tok(sent));
			if (rc == CESIUM_EBUSY) {
				busy++;
				break;
			}
			assert_int_equal(rc, 0);
			sent++;
		}
		unsigned pops = (unsigned)(test_rand(&seed) % (2 * CAP));
		for (unsigned i = 0; i < pops; i++) {
			void *m = mailbox_pop(&mb);
			if (!m)
				break;
			assert_int_equal(untok(m), got);
			got++;
		}
	}
	assert_true(busy > 0);
	assert_null(mailbox_pop(&mb));
	mailbox_destroy(&mb);
}

enum { PRODUCERS = 4, PER_PRODUCER = 200000 };

struct producer {
	struct mailbox *mb;
	uintptr_t id;
	atomic_int *go;
	long busy;
};

static void *produce(void *arg)
{
	struct producer *p = arg;
	while (!atomic_load(p->go))
		;
	for (uintptr_t i = 0; i < PER_PRODUCER; i++) {
		void *m = tok(p->id << 32 | i);
		while (mailbox_push(p->mb, m) == CESIUM_EBUSY) {
			p->busy++;
			sched_yield();
		}
	}
	return NULL;
}

static void run_stress(size_t capacity)
{
	struct mailbox mb;
	assert_int_equal(mailbox_init(&mb, capacity), 0);
	pthread_t th[PRODUCERS];
	struct producer ps[PRODUCERS];
	atomic_int go = 0;
	for (uintptr_t i = 0; i < PRODUCERS; i++) {
		ps[i] = (struct producer){.mb = &mb, .id = i, .go = &go};
		assert_int_equal(pthread_create(&th[i], NULL, produce, &ps[i]), 0);
	}
	atomic_store(&go, 1);
	uintptr_t next[PRODUCERS] = {0};
	long total = 0;
	while (total < (long)PRODUCERS * PER_PRODUCER) {
		void *m = mailbox_pop(&mb);
		if (!m)
			continue;
		uintptr_t v = untok(m);
		uintptr_t id = v >> 32, seq = v & 0xffffffffu;
		assert_true(id < PRODUCERS);
		assert_int_equal(seq, next[id]); /* per-producer order, no loss, no dup */
		next[id]++;
		total++;
	}
	for (int i = 0; i < PRODUCERS; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	for (int i = 0; i < PRODUCERS; i++)
		assert_int_equal(next[i], PER_PRODUCER);
	assert_null(mailbox_pop(&mb));
	mailbox_destroy(&mb);
}

/* Four producers racing into a roomy mailbox: each producer's messages are
 * delivered exactly once and in its order. */
static void test_multi_producer_stress_keeps_per_producer_order(void **state)
{
	(void)state;
	run_stress(1024);
}

/* The same through a tiny mailbox, so producers hit backpressure constantly. */
static void test_multi_producer_stress_under_backpressure(void **state)
{
	(void)state;
	run_stress(4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_single_thread_fifo_order),
	    cmocka_unit_test(test_init_rejects_bad_capacity),
	    cmocka_unit_test(test_full_mailbox_returns_ebusy_and_keeps_everything),
	    cmocka_unit_test(test_multi_producer_stress_keeps_per_producer_order),
	    cmocka_unit_test(test_multi_producer_stress_under_backpressure),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
