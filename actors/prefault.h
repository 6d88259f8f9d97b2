/*
 * prefault — the actor that makes pages of a mapping present and writable
 * before a writer stores into them (IORING_OP_MADVISE with
 * MADV_POPULATE_WRITE, run by the kernel's io_uring worker), so that the
 * writing thread does not take the page faults itself. The write-ahead log
 * asks it for the next MiB of its mapping while it appends to this one.
 *
 * A request (struct prefault_req) belongs to its requester, which has at
 * most one in flight. The requester never waits for the actor while
 * holding anything the actor's reactor may need: it either waits with
 * prefault_wait holding nothing (before remapping the range), or hands
 * the request and its mapping over with prefault_req_release, and the
 * actor unmaps and frees them once the kernel is done with the range.
 *
 * Threads: prefault_now, prefault_req_new, prefault_send, prefault_busy,
 * prefault_wait and prefault_req_release from any plain thread (one
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
bool prefault_busy(const struct prefault_req *req);
/* Returns once req is not in flight. Only where the actor's reactor can
 * run meanwhile: never on that reactor, never holding a lock it takes. */
void prefault_wait(struct prefault_req *req);
/* Gives req up (NULL: nothing), with the mapping [map, map + size) it may
 * be working in (map NULL: none). If req is idle, both go now; if it is in
 * flight, the actor unmaps and frees them when the kernel is done. Never
 * waits. */
void prefault_req_release(struct prefault_req *req, void *map, size_t size);

#endif
