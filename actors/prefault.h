/*
 * prefault — the actor that makes pages of a mapping present and writable
 * before a writer stores into them (IORING_OP_MADVISE with
 * MADV_POPULATE_WRITE, run by the kernel's io_uring worker), so that the
 * writing thread does not take the page faults itself, and unmaps them
 * behind it (MADV_DONTNEED). The write-ahead log asks it for the next MiB
 * of its mapping while it appends to this one, and to release the MiB
 * before.
 *
 * A request (struct prefault_req) belongs to its requester, which has at
 * most one in flight, and never waits for it: it hands the request and its
 * hold on the mapping over with prefault_req_release, and the actor frees
 * the one and lets go of the other once the kernel is done with the range
 * (the log's mapping never moves, so nothing else needs the request done).
 *
 * Threads: prefault_now, prefault_req_new, prefault_send, prefault_busy
 * and prefault_req_release from any plain thread (one
 * requester per request); the actor runs on its reactor, and its counters
 * are read with relaxed atomics by cesium_stats.
 */
#ifndef CESIUM_ACTORS_PREFAULT_H
#define CESIUM_ACTORS_PREFAULT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "reactor.h"

struct prefault_actor {
	struct actor actor;
	unsigned inflight; /* madvise calls on the ring (reactor thread only) */
	_Atomic uint64_t requests, bytes, failures;
	_Atomic uint64_t skipped; /* requests that ran after the requester was done */
};

struct prefault_req;

void prefault_init(struct prefault_actor *p);
/* Populates [addr, addr + len) writable on the calling thread: 0, or
 * -errno (-EINVAL on kernels before 5.14, which lack the advice). */
int prefault_now(void *addr, size_t len);
/* A request, idle; NULL when out of memory. */
struct prefault_req *prefault_req_new(void);
/* Asks p to populate [addr, addr + len) writable. req must not be busy.
 * 0, or CESIUM_EBUSY when p's mailbox is full (req stays idle, and the
 * caller may do the work itself). */
int prefault_send(struct prefault_actor *p, struct prefault_req *req, void *addr, size_t len);
/* Asks p to unmap [addr, addr + len) (MADV_DONTNEED: a shared file
 * mapping's pages stay in the page cache), so that the writer need not
 * spend its own time on it. As prefault_send otherwise; never skipped. */
int prefault_send_release(struct prefault_actor *p, struct prefault_req *req, void *addr,
                          size_t len);
bool prefault_busy(const struct prefault_req *req);
/* From now on the actor skips a request of req's whose range lies wholly
 * below base + *done when its turn comes (the requester is done with
 * those pages). *done must outlive req; it is read with relaxed loads.
 * Requester thread, while req is idle. */
void prefault_req_follow(struct prefault_req *req, const uint8_t *base,
                         const _Atomic uint64_t *done);
/* Gives req up (NULL: nothing), with the caller's hold on the mapping it
 * may be working in: release(arg) runs now if req is idle, or on the
 * actor's reactor once the kernel is done with the range. Never waits. */
void prefault_req_release(struct prefault_req *req, void (*release)(void *), void *arg);

#endif
