#include "reactor.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "error.h"
#include "mem.h"
#include "waiter.h"

#define REACTOR_RING_ENTRIES 256
/* Messages handled per actor per round, so that one busy actor cannot
 * starve the others on its reactor or its own I/O completions. */
#define REACTOR_BATCH 32
#define REACTOR_CTL_CAPACITY 4

/* Raw CQE kinds (ring.h routes CQEs tagged IO_RING_RAW_TAG to us with the
 * tag cleared); bits 1-2 hold the kind, the rest a reactor pointer. */
#define RAW_WAKE 0x0ull     /* a MSG_RING from another reactor arrived */
#define RAW_EVENTFD 0x2ull  /* our eventfd read completed */
#define RAW_MSG_SENT 0x4ull /* a MSG_RING we sent completed; pointer: target */
#define RAW_KIND_MASK 0x6ull

struct reactor {
	char name[16];
	pthread_t thread;
	bool running; /* thread started and not yet joined (controller only) */
	struct io_ring ring;
	/* Written once by the reactor thread before it can sleep; read by
	 * senders on other reactors. Release/acquire so that a sender that
	 * found the reactor asleep also sees the fd. */
	_Atomic int ring_fd;
	int efd;
	uint64_t efd_val; /* target of the armed eventfd read */
	bool efd_armed;
	/* True while the reactor is about to sleep or sleeping in the kernel.
	 * A sender that swaps it from true to false owns the duty to wake the
	 * reactor; see reactor_wake for the ordering. */
	_Atomic bool sleeping;
	struct actor *actors, *last_actor;
	struct mailbox ctl; /* control messages: only stop today */
	struct actor_msg stop_msg;
	bool stopping;             /* reactor thread only */
	unsigned msgs_outstanding; /* MSG_RINGs we sent, not yet completed */
	struct waiter started;
	/* Relaxed counters: statistics only, no ordering needed. */
	_Atomic uint64_t delivered, wakes_msg_ring, wakes_eventfd;
};

static _Thread_local struct reactor *reactor_self;
/* Cleared once a MSG_RING comes back -EINVAL/-EOPNOTSUPP (a kernel without
 * it): from then on every wake-up takes the eventfd. Relaxed: a stale true
 * costs only one more failed MSG_RING, which falls back anyway. */
static _Atomic bool reactor_msg_ring_ok = true;

struct reactor *reactor_current(void)
{
	return reactor_self;
}

struct io_ring *reactor_ring(struct reactor *r)
{
	return &r->ring;
}

void reactor_timer(struct reactor *r, struct io_req *req, uint64_t ns)
{
	io_ring_timeout(&r->ring, req, ns);
}

void reactor_get_stats(struct reactor *r, struct reactor_stats *out)
{
	out->delivered = atomic_load_explicit(&r->delivered, memory_order_relaxed);
	out->wakes_msg_ring = atomic_load_explicit(&r->wakes_msg_ring, memory_order_relaxed);
	out->wakes_eventfd = atomic_load_explicit(&r->wakes_eventfd, memory_order_relaxed);
}

int reactor_new(const char *name, struct reactor **out)
{
	*out = NULL;
	struct reactor *r = mem_zalloc(sizeof(*r));
	if (!r)
		return error_set(CESIUM_ENOMEM, "reactor_new: %zu bytes", sizeof(*r));
	int rc = 0;
	snprintf(r->name, sizeof(r->name), "%s", name ? name : "reactor");
	r->efd = -1;
	rc = mailbox_init(&r->ctl, REACTOR_CTL_CAPACITY);
	if (rc < 0)
		goto out;
	r->efd = eventfd(0, EFD_CLOEXEC);
	if (r->efd < 0) {
		rc = error_set(errno == ENOMEM ? CESIUM_ENOMEM : CESIUM_EIO,
		               "reactor %s: eventfd: %s", r->name, strerror(errno));
		goto out;
	}
	atomic_init(&r->sleeping, false);
	*out = r;
out:
	if (rc < 0) {
		mailbox_destroy(&r->ctl);
		mem_free(r);
	}
	return rc;
}

int reactor_add_actor(struct reactor *r, struct actor *a, size_t mailbox_capacity)
{
	if (!r || !a || !a->handle)
		return error_set(CESIUM_EINVAL,
		                 "reactor_add_actor: NULL reactor, actor or handler");
	if (r->running)
		return error_set(CESIUM_EINVAL, "reactor %s: actors are added before start",
		                 r->name);
	int rc = mailbox_init(&a->box, mailbox_capacity);
	if (rc < 0)
		return rc;
	a->home = r;
	a->next_in_reactor = NULL;
	if (r->last_actor)
		r->last_actor->next_in_reactor = a;
	else
		r->actors = a;
	r->last_actor = a;
	return 0;
}

static void reactor_wake_eventfd(struct reactor *t)
{
	uint64_t one = 1;
	atomic_fetch_add_explicit(&t->wakes_eventfd, 1, memory_order_relaxed);
	/* Can only fail if the counter would overflow, which means wake-ups
	 * are already pending: nothing is lost. */
	ssize_t n = write(t->efd, &one, sizeof(one));
	(void)n;
}

/*
 * Wakes reactor t after a push into one of its mailboxes. The lost-wake-up
 * argument is a store/load pair on each side, each separated by a seq_cst
 * fence:
 *   sender:  push (release on the slot); fence; load t->sleeping
 *   reactor: store sleeping = true; fence; check every mailbox
 * Whatever the interleaving, the reactor sees the message or the sender
 * sees sleeping == true. The exchange then picks one sender to wake it.
 */
static void reactor_wake(struct reactor *t)
{
	struct reactor *self = reactor_self;
	if (self == t)
		return; /* the loop drains again before it sleeps */
	atomic_thread_fence(memory_order_seq_cst);
	if (!atomic_load_explicit(&t->sleeping, memory_order_relaxed))
		return;
	/* Relaxed: the fences above carry the ordering; the exchange only
	 * elects the one sender that delivers the wake-up. */
	if (!atomic_exchange_explicit(&t->sleeping, false, memory_order_relaxed))
		return;
	if (self && atomic_load_explicit(&reactor_msg_ring_ok, memory_order_relaxed)) {
		struct io_uring_sqe *sqe = io_ring_get_sqe(&self->ring);
		if (sqe) {
			/* The target's CQE carries a raw RAW_WAKE tag; ours
			 * names the target so a failure can fall back. */
			int fd = atomic_load_explicit(&t->ring_fd, memory_order_acquire);
			io_uring_prep_msg_ring(sqe, fd, 0, IO_RING_RAW_TAG | RAW_WAKE, 0);
			sqe->user_data = (uint64_t)(uintptr_t)t | RAW_MSG_SENT | IO_RING_RAW_TAG;
			self->msgs_outstanding++;
			atomic_fetch_add_explicit(&t->wakes_msg_ring, 1, memory_order_relaxed);
			return;
		}
	}
	reactor_wake_eventfd(t);
}

int actor_send(struct actor *to, struct actor_msg *msg)
{
	if (!to || !msg || !to->home)
		return error_set(CESIUM_EINVAL, "actor_send: NULL or unhosted actor or message");
	int rc = mailbox_push(&to->box, msg);
	if (rc < 0)
		return rc;
	reactor_wake(to->home);
	return 0;
}

static void reactor_arm_eventfd(struct reactor *r)
{
	struct io_uring_sqe *sqe = io_ring_get_sqe(&r->ring);
	if (!sqe)
		return; /* retried after the next completion pass */
	io_uring_prep_read(sqe, r->efd, &r->efd_val, sizeof(r->efd_val), 0);
	sqe->user_data = (uint64_t)(uintptr_t)r | RAW_EVENTFD | IO_RING_RAW_TAG;
	r->efd_armed = true;
}

static void reactor_on_raw(void *arg, uint64_t data, int res)
{
	struct reactor *r = arg;
	switch (data & RAW_KIND_MASK) {
	case RAW_WAKE:
		break; /* its whole job was to end the wait */
	case RAW_EVENTFD:
		r->efd_armed = false;
		/* Re-arm unless the eventfd is broken, which would spin. */
		if (res >= 0 || res == -EINTR || res == -EAGAIN)
			reactor_arm_eventfd(r);
		break;
	case RAW_MSG_SENT: {
		r->msgs_outstanding--;
		if (res >= 0)
			break;
		if (res == -EINVAL || res == -EOPNOTSUPP)
			atomic_store_explicit(&reactor_msg_ring_ok, false, memory_order_relaxed);
		/* We took the target's duty to wake it: finish the job. */
		reactor_wake_eventfd((struct reactor *)(uintptr_t)(data & ~RAW_KIND_MASK));
		break;
	}
	default:
		break;
	}
}

static bool reactor_drain(struct reactor *r)
{
	bool any = false;
	struct actor_msg *m;
	while ((m = mailbox_pop(&r->ctl)) != NULL) {
		/* Stop only raises the flag: the loop keeps draining every
		 * mailbox until empty, so everything sent before the stop
		 * message is still delivered. */
		if (m == &r->stop_msg)
			r->stopping = true;
		any = true;
	}
	for (struct actor *a = r->actors; a; a = a->next_in_reactor) {
		for (int i = 0; i < REACTOR_BATCH; i++) {
			m = mailbox_pop(&a->box);
			if (!m)
				break;
			a->handle(a, m);
			atomic_fetch_add_explicit(&r->delivered, 1, memory_order_relaxed);
			any = true;
		}
	}
	return any;
}

static bool reactor_has_mail(struct reactor *r)
{
	if (!mailbox_empty(&r->ctl))
		return true;
	for (struct actor *a = r->actors; a; a = a->next_in_reactor)
		if (!mailbox_empty(&a->box))
			return true;
	return false;
}

static bool reactor_done(struct reactor *r)
{
	if (reactor_has_mail(r) || r->msgs_outstanding != 0)
		return false;
	/* Every hook is asked before in-flight I/O is looked at: an actor may
	 * end I/O of its own (cancel a timer) when it learns of the stop. */
	bool idle = true;
	for (struct actor *a = r->actors; a; a = a->next_in_reactor)
		if (a->idle && !a->idle(a))
			idle = false;
	return idle && io_ring_inflight(&r->ring) == 0;
}

static void reactor_loop(struct reactor *r)
{
	for (;;) {
		bool busy = reactor_drain(r);
		if (!r->efd_armed)
			reactor_arm_eventfd(r);
		if (io_ring_poll(&r->ring, false) > 0)
			busy = true;
		if (busy)
			continue;
		if (r->stopping && reactor_done(r))
			break;
		/* See reactor_wake: announce the sleep, fence, then look at
		 * the mailboxes one last time. */
		atomic_store_explicit(&r->sleeping, true, memory_order_relaxed);
		atomic_thread_fence(memory_order_seq_cst);
		if (!reactor_has_mail(r))
			io_ring_poll(&r->ring, true);
		atomic_store_explicit(&r->sleeping, false, memory_order_relaxed);
	}
}

static void *reactor_main(void *arg)
{
	struct reactor *r = arg;
	reactor_self = r;
	/* Created here, on the thread that will be its only submitter
	 * (IORING_SETUP_SINGLE_ISSUER). */
	int rc = io_ring_init(&r->ring, REACTOR_RING_ENTRIES);
	if (rc < 0) {
		waiter_wake_err(&r->started, rc);
		return NULL;
	}
	io_ring_set_raw_handler(&r->ring, reactor_on_raw, r);
	atomic_store_explicit(&r->ring_fd, r->ring.uring.ring_fd, memory_order_release);
	reactor_arm_eventfd(r);
	waiter_wake(&r->started, 0);
	reactor_loop(r);
	io_ring_exit(&r->ring);
	reactor_self = NULL;
	return NULL;
}

int reactor_start(struct reactor *r)
{
	if (!r)
		return error_set(CESIUM_EINVAL, "reactor_start: NULL reactor");
	if (r->running)
		return error_set(CESIUM_EINVAL, "reactor %s already started", r->name);
	int rc = waiter_init(&r->started);
	if (rc < 0)
		return rc;
	r->stopping = false;
	int prc = pthread_create(&r->thread, NULL, reactor_main, r);
	if (prc != 0) {
		rc = error_set(prc == EAGAIN ? CESIUM_ENOMEM : CESIUM_EIO,
		               "reactor %s: pthread_create: %s", r->name, strerror(prc));
		goto out;
	}
	pthread_setname_np(r->thread, r->name);
	rc = waiter_wait(&r->started);
	if (rc < 0) {
		pthread_join(r->thread, NULL);
		goto out;
	}
	r->running = true;
out:
	waiter_destroy(&r->started);
	return rc;
}

int reactor_stop(struct reactor *r)
{
	if (!r)
		return error_set(CESIUM_EINVAL, "reactor_stop: NULL reactor");
	if (reactor_self)
		return error_set(CESIUM_EINVAL,
		                 "reactor_stop(%s) from reactor %s would deadlock: call it from a "
		                 "plain thread",
		                 r->name, reactor_self->name);
	if (!r->running)
		return 0;
	/* The ctl mailbox only ever holds stop messages from the one
	 * controlling thread, so it is never full for long. */
	while (mailbox_push(&r->ctl, &r->stop_msg) == CESIUM_EBUSY)
		sched_yield();
	reactor_wake(r);
	pthread_join(r->thread, NULL);
	r->running = false;
	return 0;
}

void reactor_free(struct reactor *r)
{
	if (!r)
		return;
	if (r->running)
		reactor_stop(r);
	for (struct actor *a = r->actors; a; a = a->next_in_reactor)
		mailbox_destroy(&a->box);
	mailbox_destroy(&r->ctl);
	if (r->efd >= 0)
		close(r->efd);
	mem_free(r);
}
