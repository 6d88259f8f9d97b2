#include "epoch.h"

#include <sched.h>
#include <string.h>

static _Atomic unsigned epoch_next_slot;
/* initial-exec: a direct %fs-relative access instead of a __tls_get_addr
 * call per use from the shared library (3-4 % of a key-ordered load's
 * time across this and the memtable's two); a few bytes of the static TLS
 * surplus that glibc keeps for libraries loaded later. */
static _Thread_local unsigned epoch_my_slot __attribute__((tls_model("initial-exec"))) = UINT32_MAX;

static unsigned epoch_slot_of_thread(void)
{
	if (epoch_my_slot == UINT32_MAX)
		epoch_my_slot =
		    atomic_fetch_add_explicit(&epoch_next_slot, 1, memory_order_relaxed) %
		    EPOCH_SLOTS;
	return epoch_my_slot;
}

void epoch_init(struct epoch *e)
{
	memset(e, 0, sizeof(*e));
}

epoch_guard epoch_enter(struct epoch *e)
{
	unsigned slot = epoch_slot_of_thread();
	for (;;) {
		unsigned cur = atomic_load_explicit(&e->current, memory_order_seq_cst);
		/* seq_cst: the increment must be ordered before the re-check of
		 * the epoch and the load of the protected pointer, against the
		 * installer's pointer store and flip (also seq_cst). */
		atomic_fetch_add_explicit(&e->slots[slot].readers[cur], 1, memory_order_seq_cst);
		if (atomic_load_explicit(&e->current, memory_order_seq_cst) == cur)
			return (epoch_guard){ cur, slot };
		/* The installer flipped meanwhile: it may not wait for this
		 * counter, so count ourselves in the new epoch instead. */
		atomic_fetch_sub_explicit(&e->slots[slot].readers[cur], 1, memory_order_release);
	}
}

void epoch_exit(struct epoch *e, epoch_guard g)
{
	/* release: everything the reader did with the pointer happens before
	 * the installer, which acquires this counter, frees it. */
	atomic_fetch_sub_explicit(&e->slots[g.slot].readers[g.epoch], 1, memory_order_release);
}

void epoch_synchronize(struct epoch *e)
{
	unsigned old = atomic_load_explicit(&e->current, memory_order_seq_cst);
	atomic_store_explicit(&e->current, old ^ 1u, memory_order_seq_cst);
	for (unsigned s = 0; s < EPOCH_SLOTS; s++) {
		unsigned spins = 0;
		while (atomic_load_explicit(&e->slots[s].readers[old], memory_order_acquire) != 0) {
			if (++spins > 64)
				sched_yield();
		}
	}
}
