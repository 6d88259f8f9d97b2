/*
 * ring — one io_uring instance and the asynchronous file operations cesium
 * submits on it: read, write (short writes finished transparently), fsync,
 * fdatasync, a linked write->fdatasync chain, openat, renameat, unlinkat,
 * fallocate, and a timeout.
 *
 * Ownership and threads: a struct io_ring belongs to exactly one thread, the
 * one that called io_ring_init (the ring is created with
 * IORING_SETUP_SINGLE_ISSUER where the kernel has it, so only that thread may
 * submit). Every function below except io_ring_probe must be called on that
 * thread. In cesium that thread is a reactor (actors/reactor.h).
 *
 * Requests: callers embed a struct io_req in their own state, set done (and
 * ctx if they like) and pass it to one operation. done is called exactly
 * once, from io_ring_poll on the ring's thread, with the result: bytes
 * transferred, 0, an fd (openat) or a negative errno. The io_req and every
 * buffer and path it refers to must stay valid until done runs; the req may
 * be reused or freed from inside done. Operations never call done
 * synchronously: even an error found before the kernel is reached (an
 * injected fault, a full SQ that cannot be flushed) is delivered by the next
 * io_ring_poll, so callers see one completion path.
 *
 * Every operation passes through the fault seam (io_fault_check in fault.h)
 * before it reaches the kernel; timeouts are not file I/O and do not.
 */
#ifndef CESIUM_IO_RING_H
#define CESIUM_IO_RING_H

#include <liburing.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct io_ring;

struct io_req {
	void (*done)(struct io_req *req, int res);
	void *ctx;

	/* Internal to ring.c. */
	struct io_ring *ring;
	struct io_req *next;  /* deferred-completion list */
	struct io_req *chain; /* the partner in a write->fdatasync chain */
	const void *buf;
	size_t len; /* bytes the write must reach (after a fault shortened it) */
	size_t done_bytes;
	uint64_t off;
	int fd;
	int res;         /* result of a deferred completion */
	int chain_res;   /* write->sync: the write's final result */
	int chain_fault; /* write->sync: an injected error for the sync */
	uint8_t kind;
	uint8_t flags;
	struct __kernel_timespec ts;
};

struct io_ring {
	struct io_uring uring;
	unsigned inflight;    /* requests started whose done has not yet run */
	unsigned setup_flags; /* IORING_SETUP_* the ring was created with */
	struct io_req *deferred_head, *deferred_tail;
	/* CQEs whose user_data has bit 0 set are not io_reqs: they go here
	 * (the reactor's wake-ups and MSG_RINGs), with bit 0 cleared. */
	void (*raw_fn)(void *arg, uint64_t data, int res);
	void *raw_arg;
};

/* Tag for user_data of SQEs that are not io_reqs (io_req pointers are at
 * least 8-aligned, so bit 0 is free). */
#define IO_RING_RAW_TAG 1ull

/* A quick check that io_uring can be used in this process: 0, or
 * CESIUM_ENOTSUP with a message naming the cause and the fix. Safe where
 * io_uring is disabled by sysctl or blocked by seccomp (it only sees an
 * error). Any thread. */
int io_ring_probe(void);

/* Creates the ring on the calling thread, which becomes its only submitter.
 * Tries SINGLE_ISSUER|DEFER_TASKRUN, then COOP_TASKRUN, then no flags.
 * Returns 0, CESIUM_ENOTSUP (kernel too old, disabled, seccomp),
 * CESIUM_ENOMEM (locked-memory limit) or CESIUM_EIO, with a message. */
int io_ring_init(struct io_ring *r, unsigned entries);
/* Destroys the ring; requests still in flight are cancelled by the kernel
 * and their done callbacks never run. Safe on a zeroed, never-initialized
 * ring. */
void io_ring_exit(struct io_ring *r);

/* The raw ring, for the reactor's MSG_RING and eventfd reads. */
static inline struct io_uring *io_ring_uring(struct io_ring *r)
{
	return &r->uring;
}
/* An SQE, submitting first when the SQ is full; NULL only if the kernel
 * refuses the submit. Its user_data must be an io_req or carry
 * IO_RING_RAW_TAG. */
struct io_uring_sqe *io_ring_get_sqe(struct io_ring *r);
/* Routes CQEs tagged IO_RING_RAW_TAG to fn. */
void io_ring_set_raw_handler(struct io_ring *r, void (*fn)(void *arg, uint64_t data, int res),
                             void *arg);

/* Requests started and not yet completed (done not yet called). */
static inline unsigned io_ring_inflight(const struct io_ring *r)
{
	return r->inflight;
}

/* Reads up to len bytes at off (res: bytes read, short only at EOF). */
void io_ring_read(struct io_ring *r, struct io_req *req, int fd, void *buf, size_t len,
                  uint64_t off);
/* Writes all len bytes at off; a short write is resubmitted for the rest.
 * res: len, or a negative errno (bytes before the error may be written). */
void io_ring_write(struct io_ring *r, struct io_req *req, int fd, const void *buf, size_t len,
                   uint64_t off);
void io_ring_fsync(struct io_ring *r, struct io_req *req, int fd);
void io_ring_fdatasync(struct io_ring *r, struct io_req *req, int fd);
/* Writes then fdatasyncs, linked in the kernel (IOSQE_IO_LINK): wreq
 * completes first, then sreq. If the write fails, sreq gets -ECANCELED; a
 * short write is finished and the sync issued after it. */
void io_ring_write_then_fdatasync(struct io_ring *r, struct io_req *wreq, struct io_req *sreq,
                                  int fd, const void *buf, size_t len, uint64_t off);
/* res: the new fd (O_CLOEXEC is added) or -errno. */
void io_ring_openat(struct io_ring *r, struct io_req *req, int dirfd, const char *path, int flags,
                    mode_t mode);
void io_ring_renameat(struct io_ring *r, struct io_req *req, int olddirfd, const char *oldpath,
                      int newdirfd, const char *newpath);
/* flags: 0 or AT_REMOVEDIR. */
void io_ring_unlinkat(struct io_ring *r, struct io_req *req, int dirfd, const char *path,
                      int flags);
void io_ring_fallocate(struct io_ring *r, struct io_req *req, int fd, int mode, uint64_t off,
                       uint64_t len);
/* madvise(addr, len, advice) in the kernel's worker (len <= 4 GiB): for
 * work on this process's memory that should not run on the caller's
 * thread. Not a file operation: no fault check. */
void io_ring_madvise(struct io_ring *r, struct io_req *req, void *addr, size_t len, int advice);
/* Completes with 0 after ns nanoseconds. Not a file operation: no fault
 * check. */
void io_ring_timeout(struct io_ring *r, struct io_req *req, uint64_t ns);

/* Submits queued SQEs; returns how many, or a CESIUM_E* code. */
/* Cancels a pending io_ring_timeout: `timer` then completes with
 * -ECANCELED (or 0/-ETIME if it already fired); req completes with 0 or
 * -ENOENT. */
void io_ring_cancel_timeout(struct io_ring *r, struct io_req *req, struct io_req *timer);
int io_ring_submit(struct io_ring *r);
/* Submits, waits for at least one completion if wait (and none is already
 * deferred), then calls done for every available completion, deferred ones
 * included. Returns the number of completions dispatched (raw ones counted)
 * or a CESIUM_E* code. */
int io_ring_poll(struct io_ring *r, bool wait);

#endif
