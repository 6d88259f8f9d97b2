/*
 * mailbox — a bounded, lock-free, multi-producer single-consumer queue of
 * message pointers: the inbox of one actor.
 *
 * Threads: any thread may push; only the mailbox's consumer (the reactor
 * thread hosting the actor) may pop or ask whether it is empty. init and
 * destroy run while no other thread touches the mailbox.
 *
 * Backpressure: capacity is fixed at init (a power of two). A push into a
 * full mailbox fails with CESIUM_EBUSY and queues nothing; the sender keeps
 * ownership of the message and retries later. Nothing is ever dropped.
 *
 * Messages are pointers the mailbox never dereferences; ownership passes to
 * the consumer when pop returns them. Pushes from one producer are popped in
 * the order they were pushed.
 */
#ifndef CESIUM_ACTORS_MAILBOX_H
#define CESIUM_ACTORS_MAILBOX_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

struct mailbox_slot;

struct mailbox {
	struct mailbox_slot *slots;
	size_t mask; /* capacity - 1 */
	/* Producers and the consumer write different ends: keep them 64
	 * bytes apart so that they never share a cache line. Padding, not
	 * _Alignas, so that a struct embedding a mailbox can still be
	 * allocated with plain malloc. */
	char pad0[64];
	_Atomic size_t head; /* next position a producer claims */
	char pad1[64];
	size_t tail; /* next position the consumer reads */
};

/* capacity: a power of two >= 2; CESIUM_EINVAL or CESIUM_ENOMEM. */
int mailbox_init(struct mailbox *mb, size_t capacity);
void mailbox_destroy(struct mailbox *mb);
/* Any thread. 0, or CESIUM_EBUSY when full (msg not queued). msg != NULL. */
int mailbox_push(struct mailbox *mb, void *msg);
/* Consumer only. The oldest message, or NULL when empty (a push still in
 * progress counts as not yet there). */
void *mailbox_pop(struct mailbox *mb);
/* Consumer only. True when pop would return NULL. */
bool mailbox_empty(struct mailbox *mb);
static inline size_t mailbox_capacity(const struct mailbox *mb)
{
	return mb->mask + 1;
}

#endif
