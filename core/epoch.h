/*
 * epoch — lets caller threads read a shared pointer (the db's current
 * read state) without a lock and without a shared reference count, while a
 * rare installer replaces it and learns when the old one can be freed.
 *
 * Readers bracket each access with epoch_enter/epoch_exit. They only touch
 * a per-slot counter on its own cache line (threads are spread over the
 * slots), so concurrent readers do not bounce one line between cores.
 * An installer publishes the new pointer, then calls epoch_synchronize(),
 * which flips the epoch and waits until every reader that could have seen
 * the old pointer has left. Installers must be serialized by the caller.
 * A reader must not call epoch_synchronize inside its own critical section.
 */
#ifndef CESIUM_CORE_EPOCH_H
#define CESIUM_CORE_EPOCH_H

#include <stdatomic.h>
#include <stdint.h>

#define EPOCH_SLOTS 32

struct epoch_slot {
	/* Readers currently inside in each of the two epochs. */
	_Atomic uint64_t readers[2];
} __attribute__((aligned(64)));

struct epoch {
	_Atomic unsigned current; /* 0 or 1 */
	struct epoch_slot slots[EPOCH_SLOTS];
};

/* What epoch_enter hands back to epoch_exit. */
typedef struct {
	unsigned epoch;
	unsigned slot;
} epoch_guard;

void epoch_init(struct epoch *e);
epoch_guard epoch_enter(struct epoch *e);
void epoch_exit(struct epoch *e, epoch_guard g);
/* Waits for every reader that entered before the call to leave. */
void epoch_synchronize(struct epoch *e);

#endif
