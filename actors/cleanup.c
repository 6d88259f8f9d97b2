#include "cleanup.h"

#include <fcntl.h>
#include <string.h>

#include "error.h"
#include "mem.h"

struct cleanup_item {
	struct cleanup_item *next;
	struct io_req req;
	struct cleanup_actor *owner;
	uint64_t bytes;
	char path[];
};

static void cleanup_unlink_done(struct io_req *req, int res)
{
	struct cleanup_item *it = req->ctx;
	struct cleanup_actor *c = it->owner;
	c->inflight--;
	if (res == 0 || res == -2 /* ENOENT: already gone */) {
		atomic_fetch_add_explicit(&c->files_deleted, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&c->bytes_freed, it->bytes, memory_order_relaxed);
	} else {
		atomic_fetch_add_explicit(&c->failures, 1, memory_order_relaxed);
	}
	mem_free(it);
}

static void cleanup_handle(struct actor *self, struct actor_msg *msg)
{
	struct cleanup_actor *c = (struct cleanup_actor *)self;
	(void)msg;
	/* Clear the flag before taking the stack: a push after this point
	 * sends a new kick, so nothing pushed is ever left behind. */
	atomic_store_explicit(&c->kick_queued, false, memory_order_seq_cst);
	struct cleanup_item *it =
	    atomic_exchange_explicit(&c->pending, NULL, memory_order_acquire);
	struct io_ring *ring = reactor_ring(self->home);
	while (it) {
		struct cleanup_item *next = it->next;
		memset(&it->req, 0, sizeof(it->req));
		it->req.done = cleanup_unlink_done;
		it->req.ctx = it;
		c->inflight++;
		io_ring_unlinkat(ring, &it->req, AT_FDCWD, it->path, 0);
		it = next;
	}
	io_ring_submit(ring);
}

static bool cleanup_idle(struct actor *self)
{
	struct cleanup_actor *c = (struct cleanup_actor *)self;
	return c->inflight == 0 && atomic_load(&c->pending) == NULL;
}

uint64_t cleanup_pending(const struct cleanup_actor *c)
{
	uint64_t pushed = atomic_load_explicit(&c->files_pushed, memory_order_relaxed);
	uint64_t done = atomic_load_explicit(&c->files_deleted, memory_order_relaxed) +
	                atomic_load_explicit(&c->failures, memory_order_relaxed);
	return pushed > done ? pushed - done : 0;
}

void cleanup_init(struct cleanup_actor *c)
{
	memset(c, 0, sizeof(*c));
	c->actor.name = "cleanup";
	c->actor.handle = cleanup_handle;
	c->actor.idle = cleanup_idle;
}

int cleanup_push(struct cleanup_actor *c, const char *path, uint64_t bytes)
{
	size_t n = strlen(path) + 1;
	struct cleanup_item *it = mem_alloc(sizeof(*it) + n);
	if (!it)
		return error_set(CESIUM_ENOMEM, "out of memory");
	it->owner = c;
	it->bytes = bytes;
	atomic_fetch_add_explicit(&c->files_pushed, 1, memory_order_relaxed);
	memcpy(it->path, path, n);
	struct cleanup_item *head = atomic_load_explicit(&c->pending, memory_order_relaxed);
	do
		it->next = head;
	while (!atomic_compare_exchange_weak_explicit(&c->pending, &head, it,
	                                              memory_order_release, memory_order_relaxed));
	/* One kick in the mailbox at a time keeps the mailbox bounded however
	 * many files are pushed; seq_cst pairs with the clear in the handler. */
	if (!atomic_exchange_explicit(&c->kick_queued, true, memory_order_seq_cst)) {
		int rc = actor_send(&c->actor, &c->kick);
		if (rc)
			atomic_store(&c->kick_queued, false);
		return rc;
	}
	return 0;
}
