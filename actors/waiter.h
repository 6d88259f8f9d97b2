/*
 * waiter — how a caller thread blocks until an actor answers: the caller
 * puts a struct waiter (usually on its stack) into the message it sends,
 * the actor finishes the work on its reactor and calls waiter_wake, and
 * waiter_wait returns the result.
 *
 * Threads: init, wait and destroy on the caller thread; wake (once per
 * init) from any thread, typically a reactor. Caller threads may block here;
 * reactors never call waiter_wait. After waiter_wake returns, the waker must
 * not touch the waiter again: the caller may already have destroyed it.
 *
 * Error messages are thread-local (core/error.h), so a failure detail set on
 * the reactor travels in msg and waiter_wait re-sets it on the caller.
 */
#ifndef CESIUM_ACTORS_WAITER_H
#define CESIUM_ACTORS_WAITER_H

#include <pthread.h>
#include <stdbool.h>

#include "error.h"

struct waiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool woken;
	int result;
	char msg[ERROR_MSG_MAX];
};

/* 0 or CESIUM_ENOMEM (the pthread objects could not be created). */
int waiter_init(struct waiter *w);
/* Blocks until woken; returns the result. A negative result with a message
 * is re-set as this thread's error message. */
int waiter_wait(struct waiter *w);
/* Wakes the caller with result and no message. */
void waiter_wake(struct waiter *w, int result);
/* Wakes the caller with result and the waker thread's current error
 * message (cesium_errmsg()), for failures found on a reactor. */
void waiter_wake_err(struct waiter *w, int result);
void waiter_destroy(struct waiter *w);

#endif
