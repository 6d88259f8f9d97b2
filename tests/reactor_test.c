/* Unit tests for actors/reactor: message ordering between reactors and from
 * caller threads, backpressure, wake-ups, and ordered shutdown with I/O in
 * flight. */
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "error.h"
#include "reactor.h"
#include "test_util.h"

enum { MSG_SEQ = 1, MSG_BURST, MSG_FLOOD, MSG_START_IO, MSG_PING, MSG_PONG, MSG_ASK };

struct seq_msg {
	struct actor_msg base;
	uint32_t sender;
	uint32_t seq;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- a sink that checks per-sender order ---- */

enum { MAX_SENDERS = 4 };

struct sink {
	struct actor a;
	uint32_t next[MAX_SENDERS];
	uint64_t total;
	uint64_t out_of_order;
	bool wrong_thread;
};

static void sink_handle(struct actor *self, struct actor_msg *msg)
{
	struct sink *s = (struct sink *)self;
	struct seq_msg *m = (struct seq_msg *)msg;
	if (reactor_current() != self->home)
		s->wrong_thread = true;
	if (m->sender >= MAX_SENDERS || m->seq != s->next[m->sender])
		s->out_of_order++;
	else
		s->next[m->sender]++;
	s->total++;
}

static void sink_init(struct sink *s, const char *name)
{
	memset(s, 0, sizeof(*s));
	s->a.name = name;
	s->a.handle = sink_handle;
}

/* ---- caller threads sending through the eventfd ---- */

enum { CALLER_MSGS = 20000 };

struct caller {
	struct actor *to;
	uint32_t id;
	struct seq_msg *msgs;
	long busy;
};

static void *caller_main(void *arg)
{
	struct caller *c = arg;
	for (uint32_t i = 0; i < CALLER_MSGS; i++) {
		struct seq_msg *m = &c->msgs[i];
		m->base.type = MSG_SEQ;
		m->sender = c->id;
		m->seq = i;
		int rc;
		/* Backpressure: a caller thread may wait, so it retries. */
		while ((rc = actor_send(c->to, &m->base)) == CESIUM_EBUSY) {
			c->busy++;
			sched_yield();
		}
		assert_int_equal(rc, 0);
	}
	return NULL;
}

/* A reactor starts and stops with no work; stopping twice, or stopping a
 * never-started reactor, is harmless. */
static void test_start_stop_idle_reactor(void **state)
{
	(void)state;
	struct reactor *r, *never;
	assert_int_equal(reactor_new("idle", &r), 0);
	assert_int_equal(reactor_new("never", &never), 0);
	struct sink s;
	sink_init(&s, "sink");
	assert_int_equal(reactor_add_actor(r, &s.a, 8), 0);
	assert_int_equal(reactor_start(r), 0);
	assert_int_equal(reactor_add_actor(r, &s.a, 8), CESIUM_EINVAL);
	assert_int_equal(reactor_stop(r), 0);
	assert_int_equal(reactor_stop(r), 0);
	assert_int_equal(reactor_stop(never), 0);
	reactor_free(r);
	reactor_free(never);
	reactor_free(NULL);
}

/* Several caller threads into a small mailbox: senders see EBUSY and retry,
 * and every message is delivered exactly once, in each sender's order, on
 * the reactor's thread. */
static void test_caller_threads_backpressure_and_order(void **state)
{
	(void)state;
	struct reactor *r;
	assert_int_equal(reactor_new("sink", &r), 0);
	struct sink s;
	sink_init(&s, "sink");
	assert_int_equal(reactor_add_actor(r, &s.a, 8), 0);
	assert_int_equal(reactor_start(r), 0);
	enum { N = 3 };
	struct caller cs[N];
	pthread_t th[N];
	for (uint32_t i = 0; i < N; i++) {
		cs[i] = (struct caller){.to = &s.a, .id = i};
		cs[i].msgs = calloc(CALLER_MSGS, sizeof(struct seq_msg));
		assert_non_null(cs[i].msgs);
		assert_int_equal(pthread_create(&th[i], NULL, caller_main, &cs[i]), 0);
	}
	long busy = 0;
	for (int i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		busy += cs[i].busy;
	}
	assert_int_equal(reactor_stop(r), 0);
	struct reactor_stats st;
	reactor_get_stats(r, &st);
	assert_int_equal(s.total, (uint64_t)N * CALLER_MSGS);
	assert_int_equal(s.out_of_order, 0);
	assert_false(s.wrong_thread);
	for (int i = 0; i < N; i++)
		assert_int_equal(s.next[i], CALLER_MSGS);
	assert_int_equal(st.delivered, (uint64_t)N * CALLER_MSGS);
	assert_true(busy > 0);             /* the mailbox did fill up */
	assert_true(st.wakes_eventfd > 0); /* caller threads wake by eventfd */
	reactor_free(r);
	for (int i = 0; i < N; i++)
		free(cs[i].msgs);
}

/* ---- reactor to reactor ---- */

enum { BURST = 50, BURSTS = 100, FLOOD = 5000 };

struct pump {
	struct actor a;
	struct actor *to;
	struct seq_msg *msgs;
	uint32_t sent;
	uint32_t limit;
	long busy;
	struct io_req timer;
	bool timer_armed;
};

static void pump_push(struct pump *p, uint32_t upto)
{
	while (p->sent < upto) {
		struct seq_msg *m = &p->msgs[p->sent];
		m->base.type = MSG_SEQ;
		m->base.from = &p->a;
		m->sender = 0;
		m->seq = p->sent;
		int rc = actor_send(p->to, &m->base);
		if (rc == CESIUM_EBUSY) {
			/* An actor never spins: retry from a timer. */
			p->busy++;
			if (!p->timer_armed) {
				p->timer_armed = true;
				reactor_timer(p->a.home, &p->timer, 20 * 1000);
			}
			return;
		}
		assert_int_equal(rc, 0);
		p->sent++;
	}
}

static void pump_timer_done(struct io_req *req, int res)
{
	struct pump *p = req->ctx;
	assert_int_equal(res, 0);
	p->timer_armed = false;
	pump_push(p, p->limit);
}

static void pump_handle(struct actor *self, struct actor_msg *msg)
{
	struct pump *p = (struct pump *)self;
	if (msg->type == MSG_BURST)
		p->limit += BURST;
	else if (msg->type == MSG_FLOOD)
		p->limit = FLOOD;
	pump_push(p, p->limit);
}

static bool pump_idle(struct actor *self)
{
	struct pump *p = (struct pump *)self;
	return p->sent == p->limit;
}

static void pump_init(struct pump *p, struct actor *to, uint32_t total)
{
	memset(p, 0, sizeof(*p));
	p->a.name = "pump";
	p->a.handle = pump_handle;
	p->a.idle = pump_idle;
	p->to = to;
	p->msgs = calloc(total, sizeof(struct seq_msg));
	assert_non_null(p->msgs);
	p->timer.done = pump_timer_done;
	p->timer.ctx = p;
}

/* Bursts from one reactor to another arrive in order, and the sleeping
 * receiver is woken ring to ring (MSG_RING). */
static void test_reactor_to_reactor_order_and_msg_ring_wakeups(void **state)
{
	(void)state;
	struct reactor *ra, *rb;
	assert_int_equal(reactor_new("ra", &ra), 0);
	assert_int_equal(reactor_new("rb", &rb), 0);
	struct sink s;
	sink_init(&s, "sink");
	struct pump p;
	pump_init(&p, &s.a, BURST * BURSTS);
	assert_int_equal(reactor_add_actor(rb, &s.a, 1024), 0);
	assert_int_equal(reactor_add_actor(ra, &p.a, 16), 0);
	assert_int_equal(reactor_start(rb), 0);
	assert_int_equal(reactor_start(ra), 0);
	static struct actor_msg go[BURSTS];
	for (int i = 0; i < BURSTS; i++) {
		go[i].type = MSG_BURST;
		/* Let the receiver fall asleep between bursts. A slow pump
		 * (TSan on a loaded machine) may still hold 16 bursts: its
		 * mailbox is full, and the caller retries, as actor_send
		 * asks. */
		struct timespec ts = {0, 200 * 1000};
		int rc;
		while ((rc = actor_send(&p.a, &go[i])) == CESIUM_EBUSY)
			nanosleep(&ts, NULL);
		assert_int_equal(rc, 0);
		nanosleep(&ts, NULL);
	}
	/* Senders first: ra finishes sending before rb drains and stops. */
	assert_int_equal(reactor_stop(ra), 0);
	assert_int_equal(reactor_stop(rb), 0);
	assert_int_equal(p.sent, BURST * BURSTS);
	assert_int_equal(s.total, BURST * BURSTS);
	assert_int_equal(s.out_of_order, 0);
	assert_false(s.wrong_thread);
	struct reactor_stats st;
	reactor_get_stats(rb, &st);
	assert_true(st.wakes_msg_ring > 0);
	reactor_free(ra);
	reactor_free(rb);
	free(p.msgs);
}

/* A reactor flooding a small mailbox on another reactor gets EBUSY, retries
 * from a timer, and nothing is dropped or reordered. */
static void test_reactor_to_reactor_backpressure_retries(void **state)
{
	(void)state;
	struct reactor *ra, *rb;
	assert_int_equal(reactor_new("ra", &ra), 0);
	assert_int_equal(reactor_new("rb", &rb), 0);
	struct sink s;
	sink_init(&s, "sink");
	struct pump p;
	pump_init(&p, &s.a, FLOOD);
	assert_int_equal(reactor_add_actor(rb, &s.a, 4), 0);
	assert_int_equal(reactor_add_actor(ra, &p.a, 4), 0);
	assert_int_equal(reactor_start(rb), 0);
	assert_int_equal(reactor_start(ra), 0);
	struct actor_msg flood = {.type = MSG_FLOOD};
	assert_int_equal(actor_send(&p.a, &flood), 0);
	assert_int_equal(reactor_stop(ra), 0); /* waits for pump_idle */
	assert_int_equal(reactor_stop(rb), 0);
	assert_int_equal(p.sent, FLOOD);
	assert_true(p.busy > 0);
	assert_int_equal(s.total, FLOOD);
	assert_int_equal(s.out_of_order, 0);
	reactor_free(ra);
	reactor_free(rb);
	free(p.msgs);
}

/* ---- shutdown with I/O in flight ---- */

enum { READS = 32 };

struct io_actor {
	struct actor a;
	int fd;
	char bufs[READS][4096];
	struct io_req reads[READS];
	struct io_req timer;
	int reads_done, reads_ok;
	int timer_done;
	uint64_t timer_fired_ns;
	uint64_t counted;
};

static void io_read_done(struct io_req *req, int res)
{
	struct io_actor *x = req->ctx;
	x->reads_done++;
	if (res == 4096)
		x->reads_ok++;
}

static void io_timer_done(struct io_req *req, int res)
{
	struct io_actor *x = req->ctx;
	if (res == 0)
		x->timer_done++;
	x->timer_fired_ns = now_ns();
}

static void io_handle(struct actor *self, struct actor_msg *msg)
{
	struct io_actor *x = (struct io_actor *)self;
	if (msg->type != MSG_START_IO) {
		x->counted++;
		return;
	}
	struct io_ring *ring = reactor_ring(self->home);
	for (int i = 0; i < READS; i++) {
		x->reads[i].done = io_read_done;
		x->reads[i].ctx = x;
		io_ring_read(ring, &x->reads[i], x->fd, x->bufs[i], 4096, (uint64_t)i * 4096);
	}
	x->timer.done = io_timer_done;
	x->timer.ctx = x;
	reactor_timer(self->home, &x->timer, 100 * 1000 * 1000);
}

/* reactor_stop returns only after every message sent before it was handled
 * and every read and timeout in flight completed and was delivered. */
static void test_stop_waits_for_messages_and_inflight_io(void **state)
{
	(void)state;
	char *dir = test_tmpdir("reactor");
	assert_non_null(dir);
	char path[512];
	snprintf(path, sizeof(path), "%s/f", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	static char block[4096];
	memset(block, 'q', sizeof(block));
	for (int i = 0; i < READS; i++)
		assert_int_equal(pwrite(fd, block, sizeof(block), i * 4096), 4096);

	struct reactor *r;
	assert_int_equal(reactor_new("io", &r), 0);
	struct io_actor *x = calloc(1, sizeof(*x));
	assert_non_null(x);
	x->a.name = "io";
	x->a.handle = io_handle;
	x->fd = fd;
	assert_int_equal(reactor_add_actor(r, &x->a, 256), 0);
	assert_int_equal(reactor_start(r), 0);
	struct actor_msg start = {.type = MSG_START_IO};
	static struct actor_msg counts[100];
	assert_int_equal(actor_send(&x->a, &start), 0);
	for (int i = 0; i < 100; i++) {
		counts[i].type = MSG_SEQ;
		assert_int_equal(actor_send(&x->a, &counts[i]), 0);
	}
	uint64_t t0 = now_ns();
	assert_int_equal(reactor_stop(r), 0);
	uint64_t t1 = now_ns();
	assert_int_equal(x->counted, 100);
	assert_int_equal(x->reads_done, READS);
	assert_int_equal(x->reads_ok, READS);
	assert_int_equal(x->timer_done, 1);
	assert_true(x->timer_fired_ns <= t1);
	assert_true(t1 - t0 >= 90 * 1000 * 1000); /* it did wait for the timeout */
	for (int i = 0; i < READS; i++)
		assert_memory_equal(x->bufs[i], block, sizeof(block));
	reactor_free(r);
	free(x);
	close(fd);
	test_rmtree(dir);
	free(dir);
}

/* ---- idle hook: waiting for a reply from another reactor ---- */

struct asker {
	struct actor a;
	struct actor *answerer;
	struct actor_msg ping;
	bool waiting;
	bool got_pong;
	int local_hops;
	struct actor_msg hop;
};

struct answerer {
	struct actor a;
	struct actor_msg *pending;
	struct actor_msg pong;
	struct io_req timer;
};

static void answerer_timer_done(struct io_req *req, int res)
{
	struct answerer *y = req->ctx;
	(void)res;
	assert_int_equal(actor_send(y->pending->from, &y->pong), 0);
}

static void answerer_handle(struct actor *self, struct actor_msg *msg)
{
	struct answerer *y = (struct answerer *)self;
	y->pending = msg;
	y->pong.type = MSG_PONG;
	y->pong.from = self;
	y->timer.done = answerer_timer_done;
	y->timer.ctx = y;
	/* Answer late, so that the asker's reactor is already stopping. */
	reactor_timer(self->home, &y->timer, 50 * 1000 * 1000);
}

static void asker_handle(struct actor *self, struct actor_msg *msg)
{
	struct asker *x = (struct asker *)self;
	if (msg->type == MSG_ASK) {
		/* A message to itself goes through the local mailbox. */
		x->hop.type = MSG_SEQ;
		assert_int_equal(actor_send(self, &x->hop), 0);
		x->ping.type = MSG_PING;
		x->ping.from = self;
		x->waiting = true;
		assert_int_equal(actor_send(x->answerer, &x->ping), 0);
	} else if (msg->type == MSG_SEQ) {
		x->local_hops++;
	} else if (msg->type == MSG_PONG) {
		x->waiting = false;
		x->got_pong = true;
	}
}

static bool asker_idle(struct actor *self)
{
	return !((struct asker *)self)->waiting;
}

/* Stop waits for an actor's idle hook: an actor awaiting a reply from
 * another reactor (with nothing in flight on its own ring) still gets it. */
static void test_stop_waits_for_idle_hook(void **state)
{
	(void)state;
	struct reactor *r1, *r2;
	assert_int_equal(reactor_new("r1", &r1), 0);
	assert_int_equal(reactor_new("r2", &r2), 0);
	struct asker x = {.a = {.name = "asker", .handle = asker_handle, .idle = asker_idle}};
	struct answerer y = {.a = {.name = "answerer", .handle = answerer_handle}};
	x.answerer = &y.a;
	assert_int_equal(reactor_add_actor(r1, &x.a, 8), 0);
	assert_int_equal(reactor_add_actor(r2, &y.a, 8), 0);
	assert_int_equal(reactor_start(r1), 0);
	assert_int_equal(reactor_start(r2), 0);
	struct actor_msg ask = {.type = MSG_ASK};
	assert_int_equal(actor_send(&x.a, &ask), 0);
	assert_int_equal(reactor_stop(r1), 0);
	assert_true(x.got_pong);
	assert_int_equal(x.local_hops, 1);
	assert_int_equal(reactor_stop(r2), 0);
	reactor_free(r1);
	reactor_free(r2);
}

/* Bad arguments are refused, not crashed on. */
static void test_bad_arguments_are_refused(void **state)
{
	(void)state;
	struct actor loose = {.name = "loose"};
	struct actor_msg m = {0};
	assert_int_equal(actor_send(NULL, &m), CESIUM_EINVAL);
	assert_int_equal(actor_send(&loose, &m), CESIUM_EINVAL); /* not hosted */
	struct reactor *r;
	assert_int_equal(reactor_new("bad", &r), 0);
	assert_int_equal(reactor_add_actor(r, &loose, 8), CESIUM_EINVAL); /* no handler */
	struct sink s;
	sink_init(&s, "sink");
	assert_int_equal(reactor_add_actor(r, &s.a, 3), CESIUM_EINVAL);
	assert_int_equal(reactor_stop(NULL), CESIUM_EINVAL);
	assert_null(reactor_current());
	reactor_free(r);
}

int main(void)
{
	test_require_io_uring();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_start_stop_idle_reactor),
	    cmocka_unit_test(test_caller_threads_backpressure_and_order),
	    cmocka_unit_test(test_reactor_to_reactor_order_and_msg_ring_wakeups),
	    cmocka_unit_test(test_reactor_to_reactor_backpressure_retries),
	    cmocka_unit_test(test_stop_waits_for_messages_and_inflight_io),
	    cmocka_unit_test(test_stop_waits_for_idle_hook),
	    cmocka_unit_test(test_bad_arguments_are_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
