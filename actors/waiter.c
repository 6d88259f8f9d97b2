#include "waiter.h"

#include <string.h>

int waiter_init(struct waiter *w)
{
	w->woken = false;
	w->result = 0;
	w->msg[0] = '\0';
	if (pthread_mutex_init(&w->mu, NULL) != 0)
		return error_set(CESIUM_ENOMEM, "waiter: pthread_mutex_init failed");
	if (pthread_cond_init(&w->cv, NULL) != 0) {
		pthread_mutex_destroy(&w->mu);
		return error_set(CESIUM_ENOMEM, "waiter: pthread_cond_init failed");
	}
	return 0;
}

int waiter_wait(struct waiter *w)
{
	pthread_mutex_lock(&w->mu);
	while (!w->woken)
		pthread_cond_wait(&w->cv, &w->mu);
	int result = w->result;
	pthread_mutex_unlock(&w->mu);
	if (result < 0 && w->msg[0])
		error_set(result, "%s", w->msg);
	return result;
}

static void waiter_signal(struct waiter *w, int result, const char *msg)
{
	pthread_mutex_lock(&w->mu);
	w->result = result;
	if (msg) {
		strncpy(w->msg, msg, sizeof(w->msg) - 1);
		w->msg[sizeof(w->msg) - 1] = '\0';
	} else {
		w->msg[0] = '\0';
	}
	w->woken = true;
	/* Signalled under the lock: once we unlock, the caller may return and
	 * destroy the waiter, so nothing after the unlock may touch it. */
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

void waiter_wake(struct waiter *w, int result)
{
	waiter_signal(w, result, NULL);
}

void waiter_wake_err(struct waiter *w, int result)
{
	waiter_signal(w, result, cesium_errmsg());
}

void waiter_destroy(struct waiter *w)
{
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
}
