#include "ring.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "fault.h"

enum ring_kind {
	RING_READ = 1,
	RING_WRITE,
	RING_SYNC,
	RING_OTHER, /* open, rename, unlink, fallocate: the result is final */
	RING_TIMEOUT,
};

/* io_req.flags */
#define REQ_FAULT_ENOSPC 0x01 /* a fault shortened this write: end with -ENOSPC */
#define REQ_CHAIN_WRITE 0x02  /* write half of a write->sync chain */
#define REQ_CHAIN_SYNC 0x04   /* sync half of a write->sync chain */
#define REQ_SYNC_WAIT 0x08    /* sync not in the kernel: issue it when the write ends */
#define REQ_WRITE_ENDED 0x10  /* sync: its write has finished, chain_res holds why */
#define REQ_LINK_BROKEN 0x20  /* sync: a short write will make the kernel cancel it */

static int ring_read_sysctl(void)
{
	int v = -1;
	FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "re");
	if (f) {
		if (fscanf(f, "%d", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

static int ring_setup_error(int neg_errno, const char *what)
{
	switch (neg_errno) {
	case -ENOSYS:
		return error_set(
		    CESIUM_ENOTSUP,
		    "%s: kernel too old for io_uring (needs Linux 5.x+): io_uring_setup "
		    "is not implemented",
		    what);
	case -EPERM:
	case -EACCES: {
		int sysctl = ring_read_sysctl();
		const char *why = sysctl > 0 ? "sysctl kernel.io_uring_disabled is set"
		                             : "most likely a seccomp profile (such as Docker's "
		                               "default) blocks io_uring_*";
		return error_set(
		    CESIUM_ENOTSUP,
		    "%s: io_uring_setup was refused (%s; kernel.io_uring_disabled=%d): "
		    "%s; fix: sysctl -w kernel.io_uring_disabled=0 (or add the user to "
		    "kernel.io_uring_group), and run with a seccomp profile that allows "
		    "io_uring_setup, io_uring_enter and io_uring_register",
		    what, strerror(-neg_errno), sysctl, why);
	}
	case -ENOMEM:
		return error_set(CESIUM_ENOMEM,
		                 "%s: out of memory creating an io_uring (kernels before 5.12 "
		                 "charge rings to RLIMIT_MEMLOCK; raise it with ulimit -l)",
		                 what);
	default:
		return error_set(CESIUM_EIO, "%s: io_uring_setup failed: %s", what,
		                 strerror(-neg_errno));
	}
}

int io_ring_probe(void)
{
	struct io_uring ring;
	int rc = io_uring_queue_init(2, &ring, 0);
	if (rc < 0)
		return ring_setup_error(rc, "io_uring probe");
	io_uring_queue_exit(&ring);
	return 0;
}

int io_ring_init(struct io_ring *r, unsigned entries)
{
	static const unsigned tries[] = {
	    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
	    IORING_SETUP_COOP_TASKRUN,
	    0,
	};
	memset(r, 0, sizeof(*r));
	int rc = -EINVAL;
	for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
		struct io_uring_params p;
		memset(&p, 0, sizeof(p));
		p.flags = tries[i];
		rc = io_uring_queue_init_params(entries, &r->uring, &p);
		if (rc == 0) {
			r->setup_flags = tries[i];
			return 0;
		}
		/* EINVAL means "unknown flag" on an older kernel: try fewer. */
		if (rc != -EINVAL)
			break;
	}
	memset(r, 0, sizeof(*r));
	return ring_setup_error(rc, "io_ring_init");
}

void io_ring_exit(struct io_ring *r)
{
	if (r->uring.ring_fd > 0)
		io_uring_queue_exit(&r->uring);
	memset(r, 0, sizeof(*r));
}

void io_ring_set_raw_handler(struct io_ring *r, void (*fn)(void *arg, uint64_t data, int res),
                             void *arg)
{
	r->raw_fn = fn;
	r->raw_arg = arg;
}

struct io_uring_sqe *io_ring_get_sqe(struct io_ring *r)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&r->uring);
	if (!sqe) {
		/* SQ full: hand what is queued to the kernel to make room. */
		io_uring_submit(&r->uring);
		sqe = io_uring_get_sqe(&r->uring);
	}
	return sqe;
}

static void ring_start(struct io_ring *r, struct io_req *req, enum ring_kind kind)
{
	req->ring = r;
	req->next = NULL;
	req->chain = NULL;
	req->kind = (uint8_t)kind;
	req->flags = 0;
	req->res = 0;
	r->inflight++;
}

/* Completes req without the kernel, at the next io_ring_poll; FIFO so that
 * deferred completions keep the order in which they were decided. */
static void ring_defer(struct io_req *req, int res)
{
	struct io_ring *r = req->ring;
	req->res = res;
	req->next = NULL;
	if (r->deferred_tail)
		r->deferred_tail->next = req;
	else
		r->deferred_head = req;
	r->deferred_tail = req;
}

static void ring_complete(struct io_req *req, int res)
{
	req->ring->inflight--;
	req->done(req, res);
}

static struct io_uring_sqe *ring_sqe_or_defer(struct io_req *req)
{
	struct io_uring_sqe *sqe = io_ring_get_sqe(req->ring);
	if (!sqe)
		ring_defer(req, -EBUSY);
	return sqe;
}

static void ring_queue_write(struct io_req *req, unsigned sqe_flags)
{
	struct io_uring_sqe *sqe = ring_sqe_or_defer(req);
	if (!sqe)
		return;
	io_uring_prep_write(sqe, req->fd, (const char *)req->buf + req->done_bytes,
	                    (unsigned)(req->len - req->done_bytes), req->off + req->done_bytes);
	sqe->flags |= (uint8_t)sqe_flags;
	io_uring_sqe_set_data(sqe, req);
}

static void ring_queue_sync(struct io_req *req, unsigned fsync_flags)
{
	struct io_uring_sqe *sqe = ring_sqe_or_defer(req);
	if (!sqe)
		return;
	io_uring_prep_fsync(sqe, req->fd, fsync_flags);
	io_uring_sqe_set_data(sqe, req);
}

void io_ring_read(struct io_ring *r, struct io_req *req, int fd, void *buf, size_t len,
                  uint64_t off)
{
	ring_start(r, req, RING_READ);
	if (len > INT_MAX) {
		ring_defer(req, -EINVAL);
		return;
	}
	int rc = io_fault_check(IO_OP_READ, fd, NULL, &len);
	if (rc < 0) {
		ring_defer(req, rc);
		return;
	}
	struct io_uring_sqe *sqe = ring_sqe_or_defer(req);
	if (!sqe)
		return;
	io_uring_prep_read(sqe, fd, buf, (unsigned)len, off);
	io_uring_sqe_set_data(sqe, req);
}

/* Sets up a write request and runs the fault check; returns 0 when it should
 * go to the kernel, or the injected error. */
static int ring_write_setup(struct io_ring *r, struct io_req *req, int fd, const void *buf,
                            size_t len, uint64_t off)
{
	ring_start(r, req, RING_WRITE);
	req->fd = fd;
	req->buf = buf;
	req->off = off;
	req->done_bytes = 0;
	if (len > INT_MAX)
		return -EINVAL;
	size_t allowed = len;
	int rc = io_fault_check(IO_OP_WRITE, fd, NULL, &allowed);
	if (rc < 0)
		return rc;
	if (allowed < len)
		req->flags |= REQ_FAULT_ENOSPC;
	req->len = allowed;
	return 0;
}

void io_ring_write(struct io_ring *r, struct io_req *req, int fd, const void *buf, size_t len,
                   uint64_t off)
{
	int rc = ring_write_setup(r, req, fd, buf, len, off);
	if (rc < 0) {
		ring_defer(req, rc);
		return;
	}
	if (req->len == 0) {
		ring_defer(req, (req->flags & REQ_FAULT_ENOSPC) ? -ENOSPC : 0);
		return;
	}
	ring_queue_write(req, 0);
}

static void ring_sync(struct io_ring *r, struct io_req *req, int fd, unsigned fsync_flags)
{
	ring_start(r, req, RING_SYNC);
	req->fd = fd;
	int rc = io_fault_check(IO_OP_FSYNC, fd, NULL, NULL);
	if (rc < 0) {
		ring_defer(req, rc);
		return;
	}
	ring_queue_sync(req, fsync_flags);
}

void io_ring_fsync(struct io_ring *r, struct io_req *req, int fd)
{
	ring_sync(r, req, fd, 0);
}

void io_ring_fdatasync(struct io_ring *r, struct io_req *req, int fd)
{
	ring_sync(r, req, fd, IORING_FSYNC_DATASYNC);
}

void io_ring_write_then_fdatasync(struct io_ring *r, struct io_req *wreq, struct io_req *sreq,
                                  int fd, const void *buf, size_t len, uint64_t off)
{
	int wrc = ring_write_setup(r, wreq, fd, buf, len, off);
	ring_start(r, sreq, RING_SYNC);
	sreq->fd = fd;
	sreq->chain_res = 0;
	sreq->chain_fault = io_fault_check(IO_OP_FSYNC, fd, NULL, NULL);
	if (wrc < 0) {
		ring_defer(wreq, wrc);
		ring_defer(sreq, -ECANCELED);
		return;
	}
	wreq->chain = sreq;
	sreq->chain = wreq;
	wreq->flags |= REQ_CHAIN_WRITE;
	sreq->flags |= REQ_CHAIN_SYNC;
	if (wreq->len == 0) {
		/* Nothing to write (empty, or a fault cut it to nothing): the
		 * write ends now and the sync follows it through the same path
		 * a finished write takes. */
		sreq->flags |= REQ_SYNC_WAIT;
		ring_defer(wreq, (wreq->flags & REQ_FAULT_ENOSPC) ? -ENOSPC : 0);
		return;
	}
	/* Link only when the kernel's view of the write is the whole story: a
	 * write shortened by a fault must end in -ENOSPC, which the kernel
	 * would not know, and an injected sync error must not reach it. */
	if ((wreq->flags & REQ_FAULT_ENOSPC) || sreq->chain_fault < 0) {
		sreq->flags |= REQ_SYNC_WAIT;
		ring_queue_write(wreq, 0);
		return;
	}
	/* Both SQEs must land in the SQ together for the link to hold. */
	if (io_uring_sq_space_left(&r->uring) < 2)
		io_uring_submit(&r->uring);
	ring_queue_write(wreq, IOSQE_IO_LINK);
	ring_queue_sync(sreq, IORING_FSYNC_DATASYNC);
}

/* The write of a chain has ended with res: release or settle its sync. */
static void ring_chain_write_ended(struct io_req *sreq, int res)
{
	sreq->chain = NULL;
	sreq->chain_res = res;
	sreq->flags |= REQ_WRITE_ENDED;
	if (!(sreq->flags & REQ_SYNC_WAIT))
		return; /* still in the kernel; its CQE decides */
	sreq->flags &= (uint8_t)~REQ_SYNC_WAIT;
	if (res < 0)
		ring_defer(sreq, -ECANCELED);
	else if (sreq->chain_fault < 0)
		ring_defer(sreq, sreq->chain_fault);
	else
		ring_queue_sync(sreq, IORING_FSYNC_DATASYNC);
}

static void ring_finish_write(struct io_req *req, int res)
{
	if (res >= 0 && (req->flags & REQ_FAULT_ENOSPC))
		res = -ENOSPC;
	struct io_req *sreq = (req->flags & REQ_CHAIN_WRITE) ? req->chain : NULL;
	if (sreq)
		ring_chain_write_ended(sreq, res);
	ring_complete(req, res);
}

static void ring_on_write_cqe(struct io_req *req, int res)
{
	if (res < 0) {
		ring_finish_write(req, res);
		return;
	}
	if (res == 0) {
		/* The kernel made no progress on a non-empty write; retrying
		 * could spin forever. */
		ring_finish_write(req, -EIO);
		return;
	}
	req->done_bytes += (size_t)res;
	if (req->done_bytes >= req->len) {
		ring_finish_write(req, (int)req->done_bytes);
		return;
	}
	/* Short write: the kernel fails a link on a short result, so a linked
	 * sync will come back -ECANCELED and must be reissued afterwards. */
	if (req->flags & REQ_CHAIN_WRITE)
		req->chain->flags |= REQ_LINK_BROKEN;
	ring_queue_write(req, 0);
}

static void ring_on_sync_cqe(struct io_req *req, int res)
{
	if ((req->flags & REQ_CHAIN_SYNC) && res == -ECANCELED && (req->flags & REQ_LINK_BROKEN)) {
		req->flags &= (uint8_t)~REQ_LINK_BROKEN;
		if (req->flags & REQ_WRITE_ENDED) {
			if (req->chain_res < 0)
				ring_complete(req, -ECANCELED);
			else
				ring_queue_sync(req, IORING_FSYNC_DATASYNC);
		} else {
			req->flags |= REQ_SYNC_WAIT;
		}
		return;
	}
	io_fault_done(IO_OP_FSYNC, req->fd, res);
	ring_complete(req, res);
}

static void ring_dispatch(struct io_ring *r, uint64_t data, int res)
{
	if (data & IO_RING_RAW_TAG) {
		if (r->raw_fn)
			r->raw_fn(r->raw_arg, data & ~IO_RING_RAW_TAG, res);
		return;
	}
	struct io_req *req = (struct io_req *)(uintptr_t)data;
	switch (req->kind) {
	case RING_WRITE:
		ring_on_write_cqe(req, res);
		break;
	case RING_SYNC:
		ring_on_sync_cqe(req, res);
		break;
	case RING_TIMEOUT:
		ring_complete(req, res == -ETIME ? 0 : res);
		break;
	default:
		ring_complete(req, res);
		break;
	}
}

/* The start every path/fd operation shares: account the request, pass the
 * fault seam (an injected error completes it at the next poll), take an
 * SQE. NULL means the request is already on its way to completion. */
static struct io_uring_sqe *ring_begin_other(struct io_ring *r, struct io_req *req, enum io_op op,
                                             int fd, const char *path)
{
	ring_start(r, req, RING_OTHER);
	int rc = io_fault_check(op, fd, path, NULL);
	if (rc < 0) {
		ring_defer(req, rc);
		return NULL;
	}
	return ring_sqe_or_defer(req);
}

void io_ring_openat(struct io_ring *r, struct io_req *req, int dirfd, const char *path, int flags,
                    mode_t mode)
{
	struct io_uring_sqe *sqe = ring_begin_other(r, req, IO_OP_OPEN, -1, path);
	if (!sqe)
		return;
	io_uring_prep_openat(sqe, dirfd, path, flags | O_CLOEXEC, mode);
	io_uring_sqe_set_data(sqe, req);
}

void io_ring_renameat(struct io_ring *r, struct io_req *req, int olddirfd, const char *oldpath,
                      int newdirfd, const char *newpath)
{
	struct io_uring_sqe *sqe = ring_begin_other(r, req, IO_OP_RENAME, -1, oldpath);
	if (!sqe)
		return;
	io_uring_prep_renameat(sqe, olddirfd, oldpath, newdirfd, newpath, 0);
	io_uring_sqe_set_data(sqe, req);
}

void io_ring_unlinkat(struct io_ring *r, struct io_req *req, int dirfd, const char *path, int flags)
{
	struct io_uring_sqe *sqe = ring_begin_other(r, req, IO_OP_UNLINK, -1, path);
	if (!sqe)
		return;
	io_uring_prep_unlinkat(sqe, dirfd, path, flags);
	io_uring_sqe_set_data(sqe, req);
}

void io_ring_fallocate(struct io_ring *r, struct io_req *req, int fd, int mode, uint64_t off,
                       uint64_t len)
{
	ring_start(r, req, RING_OTHER);
	int rc = io_fault_check(IO_OP_FALLOCATE, fd, NULL, NULL);
	if (rc < 0) {
		ring_defer(req, rc);
		return;
	}
	if (off > INT64_MAX || len > INT64_MAX) {
		ring_defer(req, -EINVAL);
		return;
	}
	struct io_uring_sqe *sqe = ring_sqe_or_defer(req);
	if (!sqe)
		return;
	io_uring_prep_fallocate(sqe, fd, mode, (off_t)off, (off_t)len);
	io_uring_sqe_set_data(sqe, req);
}

void io_ring_madvise(struct io_ring *r, struct io_req *req, void *addr, size_t len, int advice)
{
	ring_start(r, req, RING_OTHER);
	if (len > UINT32_MAX) {
		ring_defer(req, -EINVAL);
		return;
	}
	struct io_uring_sqe *sqe = ring_sqe_or_defer(req);
	if (!sqe)
		return;
	io_uring_prep_madvise(sqe, addr, (off_t)len, advice);
	io_uring_sqe_set_data(sqe, req);
}

void io_ring_timeout(struct io_ring *r, struct io_req *req, uint64_t ns)
{
	ring_start(r, req, RING_TIMEOUT);
	req->ts.tv_sec = (long long)(ns / 1000000000u);
	req->ts.tv_nsec = (long long)(ns % 1000000000u);
	struct io_uring_sqe *sqe = ring_sqe_or_defer(req);
	if (!sqe)
		return;
	io_uring_prep_timeout(sqe, &req->ts, 0, 0);
	io_uring_sqe_set_data(sqe, req);
}

void io_ring_cancel_timeout(struct io_ring *r, struct io_req *req, struct io_req *timer)
{
	ring_start(r, req, RING_TIMEOUT);
	struct io_uring_sqe *sqe = ring_sqe_or_defer(req);
	if (!sqe)
		return;
	io_uring_prep_timeout_remove(sqe, (uint64_t)(uintptr_t)timer, 0);
	io_uring_sqe_set_data(sqe, req);
}

int io_ring_submit(struct io_ring *r)
{
	int rc = io_uring_submit(&r->uring);
	if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
		return error_set(error_from_errno(rc), "io_uring_submit: %s", strerror(-rc));
	return rc < 0 ? 0 : rc;
}

int io_ring_poll(struct io_ring *r, bool wait)
{
	int rc;
	/* With DEFER_TASKRUN, completions are only posted when this thread
	 * enters the kernel asking for events, so even the non-waiting path
	 * must enter it. */
	if (wait && !r->deferred_head)
		rc = io_uring_submit_and_wait(&r->uring, 1);
	else
		rc = io_uring_submit_and_get_events(&r->uring);
	/* EINTR: a signal; EAGAIN/EBUSY: the CQ is backed up, which reaping
	 * below resolves. Anything else is a broken ring. */
	if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY && rc != -ETIME)
		return error_set(error_from_errno(rc), "io_uring_enter: %s", strerror(-rc));

	int n = 0;
	for (;;) {
		struct io_uring_cqe *cqe;
		/* One CQE at a time, marked seen before dispatch: a done
		 * callback may queue and submit more work on this ring. */
		while (io_uring_peek_cqe(&r->uring, &cqe) == 0) {
			uint64_t data = cqe->user_data;
			int res = cqe->res;
			io_uring_cqe_seen(&r->uring, cqe);
			ring_dispatch(r, data, res);
			n++;
		}
		if (!r->deferred_head)
			break;
		struct io_req *list = r->deferred_head;
		r->deferred_head = r->deferred_tail = NULL;
		while (list) {
			struct io_req *req = list;
			list = req->next;
			req->next = NULL;
			if (req->kind == RING_WRITE)
				ring_finish_write(req, req->res);
			else
				ring_complete(req, req->res);
			n++;
		}
	}
	return n;
}
