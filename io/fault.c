#include "fault.h"

#include <sched.h>
#include <stdatomic.h>

struct io_fault_hook {
	io_fault_fn fn;
	void *arg;
};

/* The hook pair is published as one pointer so that a reader never sees a
 * new function with an old argument; acquire pairs with the release in
 * io_fault_set. Hooks are installed by tests between phases, so the static
 * slots below are never rewritten while a reader may hold them. */
static struct io_fault_hook fault_slots[2];
_Atomic(struct io_fault_hook *) io_fault_current;
static unsigned fault_next_slot;

/* Calls inside a hook. A test frees its hook's state once io_fault_set
 * returns, so the setter waits for every call still in the old hook. */
static atomic_uint fault_users;

void io_fault_set(io_fault_fn fn, void *arg)
{
	struct io_fault_hook *h = NULL;
	if (fn) {
		h = &fault_slots[fault_next_slot++ & 1];
		h->fn = fn;
		h->arg = arg;
	}
	atomic_store(&io_fault_current, h); /* seq_cst: see io_fault_check */
	while (atomic_load(&fault_users))
		sched_yield();
}

int io_fault_check(enum io_op op, int fd, const char *path, size_t *len)
{
	struct io_fault_hook *h = atomic_load_explicit(&io_fault_current, memory_order_acquire);
	if (__builtin_expect(h == NULL, 1))
		return 0;
	/* Counted, then loaded again: a setter that saw no user after its
	 * store is certain every later call loads the new hook. */
	atomic_fetch_add(&fault_users, 1);
	h = atomic_load(&io_fault_current);
	int rc = 0;
	if (h) {
		size_t dummy = 0;
		rc = h->fn(h->arg, op, fd, path, len ? len : &dummy);
	}
	atomic_fetch_sub(&fault_users, 1);
	return rc;
}

const char *io_op_name(enum io_op op)
{
	static const char *const names[IO_OP_COUNT] = {
	    "read", "write", "fsync", "open", "rename", "unlink", "fallocate", "truncate",
	};
	return (unsigned)op < IO_OP_COUNT ? names[op] : "?";
}

struct fault_done_hook {
	io_fault_done_fn fn;
	void *arg;
};

/* Published like the check hook: one pointer, acquire/release. */
static struct fault_done_hook fault_done_slots[2];
static _Atomic(struct fault_done_hook *) fault_done_current;
static unsigned fault_done_next;

void io_fault_set_done(io_fault_done_fn fn, void *arg)
{
	if (!fn) {
		atomic_store_explicit(&fault_done_current, NULL, memory_order_release);
		return;
	}
	struct fault_done_hook *h = &fault_done_slots[fault_done_next++ & 1];
	h->fn = fn;
	h->arg = arg;
	atomic_store_explicit(&fault_done_current, h, memory_order_release);
}

void io_fault_done(enum io_op op, int fd, int res)
{
	struct fault_done_hook *h = atomic_load_explicit(&fault_done_current, memory_order_acquire);
	if (__builtin_expect(h != NULL, 0))
		h->fn(h->arg, op, fd, res);
}
