/* Unit tests for core/epoch: lock-free readers never see an object the
 * installer has freed, synchronize waits for readers inside and only for
 * them, and returns at once when nobody reads. */
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "epoch.h"
#include "test_util.h"

#define CANARY_LIVE 0x115e5a11u
#define CANARY_POISON 0xdeadbeefu

/* The shared object: plain malloc/free so that ASan sees a use after free. */
struct shared_obj {
	volatile uint32_t canary;
	uint64_t generation;
	uint32_t payload[16];
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct race {
	struct epoch ep;
	_Atomic(struct shared_obj *) current;
	atomic_bool stop;
	_Atomic uint64_t bad_reads, reads;
	atomic_uint running; /* readers past their first 1000 reads */
	uint64_t seed;
};

static struct shared_obj *obj_new(uint64_t gen)
{
	struct shared_obj *o = malloc(sizeof(*o));
	if (!o)
		return NULL;
	o->canary = CANARY_LIVE;
	o->generation = gen;
	for (int i = 0; i < 16; i++)
		o->payload[i] = (uint32_t)gen + (uint32_t)i;
	return o;
}

static void *reader_main(void *arg)
{
	struct race *r = arg;
	uint64_t n = 0, bad = 0;
	while (!atomic_load_explicit(&r->stop, memory_order_relaxed)) {
		epoch_guard g = epoch_enter(&r->ep);
		struct shared_obj *o = atomic_load_explicit(&r->current, memory_order_acquire);
		/* Touch the object over a few instructions, so that a free by
		 * the installer while we are inside would be caught. */
		if (o->canary != CANARY_LIVE)
			bad++;
		for (int i = 0; i < 16; i++)
			if (o->payload[i] != (uint32_t)o->generation + (uint32_t)i)
				bad++;
		if (o->canary != CANARY_LIVE)
			bad++;
		epoch_exit(&r->ep, g);
		if (++n == 1000)
			atomic_fetch_add(&r->running, 1);
	}
	atomic_fetch_add(&r->reads, n);
	atomic_fetch_add(&r->bad_reads, bad);
	return NULL;
}

/* Readers in 3 threads never see a replaced object that was poisoned and freed. */
static void test_readers_never_see_freed_object(void **state)
{
	(void)state;
	struct race *r = calloc(1, sizeof(*r));
	assert_non_null(r);
	epoch_init(&r->ep);
	r->seed = test_seed("epoch_race");
	atomic_store(&r->current, obj_new(0));
	pthread_t th[3];
	for (int i = 0; i < 3; i++)
		assert_int_equal(pthread_create(&th[i], NULL, reader_main, r), 0);
	/* A fixed number of installs, not a time window: on a loaded 2-core
	 * machine a synchronize waits for preempted readers to run again, so
	 * its pace says nothing about correctness. */
	uint64_t installs = 0;
	uint64_t deadline = now_ns() + 60ull * 1000000000ull;
	/* At least 200 installs, and on until every reader has run (threads
	 * may not be scheduled at all while a fast writer does its 200). */
	while ((installs < 200 || atomic_load(&r->running) < 3) && now_ns() < deadline) {
		struct shared_obj *nw = obj_new(installs + 1);
		assert_non_null(nw);
		struct shared_obj *old =
		    atomic_exchange_explicit(&r->current, nw, memory_order_seq_cst);
		epoch_synchronize(&r->ep);
		old->canary = CANARY_POISON;
		for (int i = 0; i < 16; i++)
			old->payload[i] = 0xffffffffu;
		free(old);
		installs++;
		/* Vary the pace so that flips land at every point of a read. */
		if (test_rand(&r->seed) % 4 == 0)
			sched_yield();
	}
	atomic_store(&r->stop, true);
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	fprintf(stderr, "installs %llu reads %llu\n", (unsigned long long)installs,
	        (unsigned long long)atomic_load(&r->reads));
	assert_true(installs >= 200);
	assert_true(atomic_load(&r->reads) > 1000);
	assert_int_equal(atomic_load(&r->bad_reads), 0);
	free(atomic_load(&r->current));
	free(r);
}

/* With no reader inside, synchronize returns promptly (no sleeping, no waiting). */
static void test_synchronize_prompt_without_readers(void **state)
{
	(void)state;
	static struct epoch ep;
	epoch_init(&ep);
	/* Readers that came and went leave nothing to wait for. */
	for (int i = 0; i < 100; i++) {
		epoch_guard g = epoch_enter(&ep);
		epoch_exit(&ep, g);
	}
	uint64_t t0 = now_ns();
	for (int i = 0; i < 10000; i++)
		epoch_synchronize(&ep);
	uint64_t dt = now_ns() - t0;
	fprintf(stderr, "10000 idle synchronizes: %llu us\n", (unsigned long long)(dt / 1000));
	assert_true(dt < 500000000ull); /* 50 us each at the very worst */
}

struct holder {
	struct epoch *ep;
	atomic_bool inside, release;
};

static void *holder_main(void *arg)
{
	struct holder *h = arg;
	epoch_guard g = epoch_enter(h->ep);
	atomic_store(&h->inside, true);
	while (!atomic_load(&h->release))
		usleep(1000);
	epoch_exit(h->ep, g);
	return NULL;
}

struct syncer {
	struct epoch *ep;
	atomic_bool done;
};

static void *syncer_main(void *arg)
{
	struct syncer *s = arg;
	epoch_synchronize(s->ep);
	atomic_store(&s->done, true);
	return NULL;
}

/* synchronize blocks while a reader that entered before it is still inside. */
static void test_synchronize_waits_for_reader_inside(void **state)
{
	(void)state;
	static struct epoch ep;
	epoch_init(&ep);
	struct holder h = {.ep = &ep};
	struct syncer s = {.ep = &ep};
	pthread_t ht, st;
	assert_int_equal(pthread_create(&ht, NULL, holder_main, &h), 0);
	while (!atomic_load(&h.inside))
		usleep(100);
	assert_int_equal(pthread_create(&st, NULL, syncer_main, &s), 0);
	usleep(100000);
	assert_false(atomic_load(&s.done));
	atomic_store(&h.release, true);
	pthread_join(ht, NULL);
	pthread_join(st, NULL);
	assert_true(atomic_load(&s.done));
}

/* A reader that enters after synchronize flipped the epoch does not hold
 * that synchronize up: it waits only for readers that came before it. */
static void test_synchronize_ignores_later_readers(void **state)
{
	(void)state;
	static struct epoch ep;
	epoch_init(&ep);
	struct holder early = {.ep = &ep}, late = {.ep = &ep};
	struct syncer s = {.ep = &ep};
	pthread_t et, lt, st;
	assert_int_equal(pthread_create(&et, NULL, holder_main, &early), 0);
	while (!atomic_load(&early.inside))
		usleep(100);
	unsigned before = atomic_load(&ep.current);
	assert_int_equal(pthread_create(&st, NULL, syncer_main, &s), 0);
	while (atomic_load(&ep.current) == before)
		usleep(100);
	/* The flip happened: this reader counts in the new epoch. */
	assert_int_equal(pthread_create(&lt, NULL, holder_main, &late), 0);
	while (!atomic_load(&late.inside))
		usleep(100);
	assert_false(atomic_load(&s.done));
	atomic_store(&early.release, true);
	pthread_join(et, NULL);
	uint64_t deadline = now_ns() + 2000000000ull;
	while (!atomic_load(&s.done) && now_ns() < deadline)
		usleep(1000);
	bool done = atomic_load(&s.done);
	atomic_store(&late.release, true);
	pthread_join(lt, NULL);
	pthread_join(st, NULL);
	assert_true(done);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_readers_never_see_freed_object),
	    cmocka_unit_test(test_synchronize_prompt_without_readers),
	    cmocka_unit_test(test_synchronize_waits_for_reader_inside),
	    cmocka_unit_test(test_synchronize_ignores_later_readers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
