#include "mailbox.h"

#include <stdint.h>

#include "error.h"
#include "mem.h"

/*
 * Each slot carries a sequence number that says whose turn it is (the
 * bounded-queue scheme with per-slot sequence numbers):
 *   seq == pos          the slot is free for the producer claiming pos;
 *   seq == pos + 1      it holds the message for position pos;
 *   seq == pos + cap    the consumer has emptied it for the next lap.
 * Positions grow without bound and are compared by difference, so their
 * wrap-around at SIZE_MAX is harmless.
 */
struct mailbox_slot {
	_Atomic size_t seq;
	void *msg;
};

int mailbox_init(struct mailbox *mb, size_t capacity)
{
	mb->slots = NULL;
	if (capacity < 2 || (capacity & (capacity - 1)) != 0)
		return error_set(CESIUM_EINVAL, "mailbox capacity %zu is not a power of two >= 2",
		                 capacity);
	mb->slots = mem_calloc(capacity, sizeof(*mb->slots));
	if (!mb->slots)
		return error_set(CESIUM_ENOMEM, "mailbox of %zu slots", capacity);
	mb->mask = capacity - 1;
	for (size_t i = 0; i < capacity; i++)
		/* Relaxed: no other thread can see the mailbox before init
		 * returns; publishing it to them is the caller's job. */
		atomic_store_explicit(&mb->slots[i].seq, i, memory_order_relaxed);
	atomic_store_explicit(&mb->head, 0, memory_order_relaxed);
	mb->tail = 0;
	return 0;
}

void mailbox_destroy(struct mailbox *mb)
{
	mem_free(mb->slots);
	mb->slots = NULL;
}

int mailbox_push(struct mailbox *mb, void *msg)
{
	/* Relaxed: head is only a hint of where to try; the slot's seq
	 * (acquire below) and the CAS decide who owns which slot. */
	size_t pos = atomic_load_explicit(&mb->head, memory_order_relaxed);
	struct mailbox_slot *slot;
	for (;;) {
		slot = &mb->slots[pos & mb->mask];
		/* Acquire: pairs with the consumer's release of this slot, so
		 * that its read of the previous lap's msg is done before we
		 * overwrite msg. */
		size_t seq = atomic_load_explicit(&slot->seq, memory_order_acquire);
		intptr_t dif = (intptr_t)seq - (intptr_t)pos;
		if (dif == 0) {
			/* Relaxed CAS: claiming the position orders nothing
			 * else; the slot's seq publishes the message. On
			 * failure pos is reloaded with the current head. */
			if (atomic_compare_exchange_weak_explicit(&mb->head, &pos, pos + 1,
			                                          memory_order_relaxed,
			                                          memory_order_relaxed))
				break;
		} else if (dif < 0) {
			/* The slot still holds the message of one lap ago:
			 * the mailbox is full. */
			return CESIUM_EBUSY;
		} else {
			/* Another producer took pos; catch up. */
			pos = atomic_load_explicit(&mb->head, memory_order_relaxed);
		}
	}
	slot->msg = msg;
	/* Release: the consumer that sees seq == pos + 1 (acquire) also sees
	 * msg and everything the producer wrote into the message before. */
	atomic_store_explicit(&slot->seq, pos + 1, memory_order_release);
	return 0;
}

void *mailbox_pop(struct mailbox *mb)
{
	size_t pos = mb->tail;
	struct mailbox_slot *slot = &mb->slots[pos & mb->mask];
	/* Acquire: pairs with the producer's release, making msg and the
	 * message's contents visible. */
	size_t seq = atomic_load_explicit(&slot->seq, memory_order_acquire);
	if (seq != pos + 1)
		return NULL;
	void *msg = slot->msg;
	mb->tail = pos + 1;
	/* Release: hands the slot to the producer of the next lap only after
	 * our read of msg is done. */
	atomic_store_explicit(&slot->seq, pos + mb->mask + 1, memory_order_release);
	return msg;
}

bool mailbox_empty(struct mailbox *mb)
{
	size_t pos = mb->tail;
	/* Acquire, as in pop: a true "not empty" must let pop succeed. */
	return atomic_load_explicit(&mb->slots[pos & mb->mask].seq, memory_order_acquire) !=
	       pos + 1;
}
