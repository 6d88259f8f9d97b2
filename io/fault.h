/*
 * fault — the one seam through which tests inject I/O faults into any file
 * operation cesium performs, synchronous or on a ring.
 *
 * Every operation in io/ calls io_fault_check() before it reaches the
 * kernel, and so does the one read that bypasses io/: a segment block read
 * in place from its file mapping (core/segment.c), which tests
 * io_fault_armed() first so that production pays one predictable branch.
 * With no hook installed (production) a check is one atomic load.
 * Tests install a hook with io_fault_set(); it may fail the operation with
 * a negative errno (EIO, ENOSPC, ...) or, for writes, shorten the length
 * to simulate a short write. The hook is process-wide and must be
 * thread-safe: it runs on caller threads and reactor threads alike.
 */
#ifndef CESIUM_IO_FAULT_H
#define CESIUM_IO_FAULT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

enum io_op {
	IO_OP_READ,
	IO_OP_WRITE,
	IO_OP_FSYNC, /* fsync and fdatasync */
	IO_OP_OPEN,
	IO_OP_RENAME,
	IO_OP_UNLINK,
	IO_OP_FALLOCATE,
	IO_OP_TRUNCATE,
	IO_OP_COUNT
};

/* Returns 0 to let the operation proceed (a write may have *len reduced to
 * simulate a short write), or a negative errno to fail it. `path` is the
 * file name where the operation has one, else NULL; fd is -1 where it has
 * none. */
typedef int (*io_fault_fn)(void *arg, enum io_op op, int fd, const char *path, size_t *len);

/* Installs (or with fn NULL removes) the process-wide hook. */
void io_fault_set(io_fault_fn fn, void *arg);
/* The installed hook, NULL when none; only for io_fault_armed. */
struct io_fault_hook;
extern _Atomic(struct io_fault_hook *) io_fault_current;

/* Whether a hook may be installed: a hint for hot paths outside io/ that
 * call io_fault_check only when it is true. Relaxed: a hook installed
 * concurrently may be missed by one operation, as with any check. */
static inline bool io_fault_armed(void)
{
	return __builtin_expect(
	    atomic_load_explicit(&io_fault_current, memory_order_relaxed) != NULL, 0);
}

/* Called by io/ before each operation; see io_fault_fn. */
int io_fault_check(enum io_op op, int fd, const char *path, size_t *len);
const char *io_op_name(enum io_op op);

/* A second, optional hook called after an operation completed, with its
 * result (0 or -errno), on the thread that learns of the completion and
 * before the caller does. Today only IO_OP_FSYNC reports: a simulated
 * power loss (tests/integration/powerloss_test.c) records what each
 * successful sync made durable. */
typedef void (*io_fault_done_fn)(void *arg, enum io_op op, int fd, int res);
void io_fault_set_done(io_fault_done_fn fn, void *arg);
void io_fault_done(enum io_op op, int fd, int res);

#endif
