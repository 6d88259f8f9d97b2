#include "prefault.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "error.h"
#include "mem.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

/* Message type of a request. */
#define PREFAULT_MSG 1

enum prefault_state {
	PREFAULT_IDLE,
	PREFAULT_BUSY,     /* sent, the requester still owns it */
	PREFAULT_RELEASED, /* sent, given up: the actor cleans up when done */
};

struct prefault_req {
	struct actor_msg msg;
	struct io_req io;
	struct prefault_actor *actor;
	void *addr;
	size_t len;
	int advice; /* MADV_POPULATE_WRITE, or MADV_DONTNEED for a release */
	/* prefault_req_follow: the requester's done offset from base. */
	const uint8_t *base;
	const _Atomic uint64_t *done;
	/* Set before the release, run by done after it. */
	void (*release)(void *);
	void *release_arg;
	_Atomic int state;
};

static void prefault_free(struct prefault_req *req)
{
	if (req->release)
		req->release(req->release_arg);
	mem_free(req);
}

/* The request is done with: idle again, or freed if it was released. */
static void prefault_finish(struct prefault_req *req)
{
	req->actor->inflight--;
	/* Last: once idle, the requester may remap the range or free req. */
	int busy = PREFAULT_BUSY;
	if (!atomic_compare_exchange_strong_explicit(&req->state, &busy, PREFAULT_IDLE,
	                                             memory_order_acq_rel, memory_order_acquire))
		prefault_free(req); /* released while in flight */
}

static void prefault_done(struct io_req *io, int res)
{
	struct prefault_req *req = io->ctx;
	struct prefault_actor *p = req->actor;
	if (res < 0)
		atomic_fetch_add_explicit(&p->failures, 1, memory_order_relaxed);
	else if (req->advice == MADV_POPULATE_WRITE)
		atomic_fetch_add_explicit(&p->bytes, req->len, memory_order_relaxed);
	prefault_finish(req);
}

static void prefault_handle(struct actor *self, struct actor_msg *msg)
{
	struct prefault_actor *p = (struct prefault_actor *)self;
	struct prefault_req *req = (struct prefault_req *)msg;
	struct io_ring *ring = reactor_ring(self->home);
	memset(&req->io, 0, sizeof(req->io));
	req->io.done = prefault_done;
	req->io.ctx = req;
	p->inflight++;
	/* Ran late: the requester is done with the range, and populating it
	 * would only map its pages again (a TLB shootdown each when
	 * writeback cleans them). */
	if (req->advice == MADV_POPULATE_WRITE && req->done &&
	    req->base + atomic_load_explicit(req->done, memory_order_relaxed) >=
	        (const uint8_t *)req->addr + req->len) {
		atomic_fetch_add_explicit(&p->skipped, 1, memory_order_relaxed);
		prefault_finish(req);
		return;
	}
	io_ring_madvise(ring, &req->io, req->addr, req->len, req->advice);
	io_ring_submit(ring);
}

static bool prefault_idle(struct actor *self)
{
	return ((struct prefault_actor *)self)->inflight == 0;
}

void prefault_init(struct prefault_actor *p)
{
	memset(p, 0, sizeof(*p));
	p->actor.name = "prefault";
	p->actor.handle = prefault_handle;
	p->actor.idle = prefault_idle;
}

int prefault_now(void *addr, size_t len)
{
	return madvise(addr, len, MADV_POPULATE_WRITE) == 0 ? 0 : -errno;
}

struct prefault_req *prefault_req_new(void)
{
	return mem_zalloc(sizeof(struct prefault_req));
}

static int prefault_submit(struct prefault_actor *p, struct prefault_req *req, void *addr,
                           size_t len, int advice)
{
	req->msg.type = PREFAULT_MSG;
	req->actor = p;
	req->addr = addr;
	req->len = len;
	req->advice = advice;
	atomic_store_explicit(&req->state, PREFAULT_BUSY, memory_order_relaxed);
	int rc = actor_send(&p->actor, &req->msg);
	if (rc) {
		atomic_store_explicit(&req->state, PREFAULT_IDLE, memory_order_relaxed);
		return rc;
	}
	atomic_fetch_add_explicit(&p->requests, 1, memory_order_relaxed);
	return 0;
}

int prefault_send(struct prefault_actor *p, struct prefault_req *req, void *addr, size_t len)
{
	return prefault_submit(p, req, addr, len, MADV_POPULATE_WRITE);
}

int prefault_send_release(struct prefault_actor *p, struct prefault_req *req, void *addr,
                          size_t len)
{
	return prefault_submit(p, req, addr, len, MADV_DONTNEED);
}

void prefault_req_follow(struct prefault_req *req, const uint8_t *base,
                         const _Atomic uint64_t *done)
{
	req->base = base;
	req->done = done;
}

bool prefault_busy(const struct prefault_req *req)
{
	return atomic_load_explicit(&req->state, memory_order_acquire) != PREFAULT_IDLE;
}

void prefault_req_release(struct prefault_req *req, void (*release)(void *), void *arg)
{
	if (!req) {
		if (release)
			release(arg);
		return;
	}
	req->release = release;
	req->release_arg = arg;
	int busy = PREFAULT_BUSY;
	if (!atomic_compare_exchange_strong_explicit(&req->state, &busy, PREFAULT_RELEASED,
	                                             memory_order_acq_rel, memory_order_acquire))
		prefault_free(req); /* idle: nobody else holds it */
}
