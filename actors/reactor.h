/*
 * reactor — the actor runtime: a reactor is one thread owning one io_ring
 * and hosting several actors; an actor is a state machine with a bounded
 * mailbox that reacts to messages and I/O completions and never blocks.
 * See docs/actors.md for the design (wake-ups, backpressure, shutdown).
 *
 * Lifecycle (one controlling plain thread): reactor_new, reactor_add_actor
 * for each actor, reactor_start; later reactor_stop, reactor_free. The
 * struct actor and its messages are owned by the caller; the reactor owns
 * only the actors' mailbox storage (freed by reactor_free).
 *
 * Threads:
 *  - actor_send: any thread (plain or reactor).
 *  - handle/idle callbacks, reactor_ring, reactor_timer and every io_ring
 *    operation on it: only on the reactor's own thread.
 *  - reactor_stop and reactor_free: a plain thread (they block), never a
 *    reactor thread. Stop reactors in dependency order: a reactor must
 *    not be stopped while another may still send to it.
 *
 * Messages: the sender allocates a message (a struct embedding
 * struct actor_msg); once actor_send returns 0 it belongs to the receiving
 * actor, whose handle decides its fate (free, reuse, reply). On
 * CESIUM_EBUSY it still belongs to the sender. Messages from one sender to
 * one actor are handled in the order sent.
 */
#ifndef CESIUM_ACTORS_REACTOR_H
#define CESIUM_ACTORS_REACTOR_H

#include <stdbool.h>
#include <stdint.h>

#include "mailbox.h"
#include "ring.h"

struct actor;
struct reactor;

struct actor_msg {
	struct actor_msg *next; /* free for the message's current owner */
	int type;
	struct actor *from;
};

struct actor {
	const char *name;
	struct reactor *home; /* set by reactor_add_actor */
	void (*handle)(struct actor *self, struct actor_msg *msg);
	/* Optional: during shutdown, true once the actor has no more work
	 * of its own pending (NULL: always done). */
	bool (*idle)(struct actor *self);
	struct mailbox box;
	struct actor *next_in_reactor; /* internal */
};

/* Wake-up statistics, for tests and cesium_stats. */
struct reactor_stats {
	uint64_t delivered;      /* messages handled */
	uint64_t wakes_msg_ring; /* wake-ups of this reactor sent by MSG_RING */
	uint64_t wakes_eventfd;  /* wake-ups of this reactor through its eventfd */
};

/* name is copied (truncated to 15 bytes: it names the thread). */
int reactor_new(const char *name, struct reactor **out);
/* Before reactor_start. mailbox_capacity: a power of two >= 2. */
int reactor_add_actor(struct reactor *r, struct actor *a, size_t mailbox_capacity);
/* Spawns the thread, which creates the ring; returns the ring setup error
 * (CESIUM_ENOTSUP, ...) with its message if that fails. */
int reactor_start(struct reactor *r);
/* Ordered shutdown: queues a stop behind everything already sent, then
 * waits until the reactor has delivered every earlier message, all I/O on
 * its ring has completed and been delivered, and every actor's idle hook
 * agrees; joins the thread. 0 on a never-started reactor. */
int reactor_stop(struct reactor *r);
/* Stops the reactor if it runs, then frees it. NULL is fine. */
void reactor_free(struct reactor *r);

/* From any thread: 0, or CESIUM_EBUSY when the target mailbox is full (the
 * sender keeps msg and retries later; an actor retries from a timer or a
 * later event, never by spinning). */
int actor_send(struct actor *to, struct actor_msg *msg);

/* The reactor's ring: only from the reactor's thread. */
struct io_ring *reactor_ring(struct reactor *r);
/* The reactor running the calling thread, or NULL on a plain thread. */
struct reactor *reactor_current(void);
/* Completes req (res 0) after ns nanoseconds; reactor thread only. */
void reactor_timer(struct reactor *r, struct io_req *req, uint64_t ns);
/* Counters (approximate while the reactor runs). */
void reactor_get_stats(struct reactor *r, struct reactor_stats *out);

#endif
