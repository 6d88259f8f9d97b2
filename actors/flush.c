#include "flush.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <fcntl.h>
#include <xxhash.h>

#include "batch.h"
#include "db.h"
#include "error.h"
#include "file.h"
#include "log.h"
#include "mem.h"
#include "options.h"
#include "scheduler.h"
#include "wal.h"

/* Wait before resending a result the scheduler's mailbox refused. */
#define FLUSH_RETRY_NS (1000u * 1000u)

static void flush_next(struct flush_actor *f);

/* Records the job's first failure, with this thread's message for it. */
static void flush_fail(struct flush_actor *f, int rc)
{
	struct flush_job *j = &f->job;
	if (!rc || j->rc)
		return;
	j->rc = rc;
	snprintf(j->res->errmsg, sizeof(j->res->errmsg), "%s", cesium_errmsg());
}

static void flush_send(struct flush_actor *f, struct sched_flushed *res)
{
	int rc = actor_send(&f->sched->actor, &res->msg);
	if (rc == CESIUM_EBUSY) {
		/* Backpressure: try again later, never by spinning. */
		f->unsent = res;
		reactor_timer(f->actor.home, &f->retry, FLUSH_RETRY_NS);
	} else if (rc) {
		db_set_bg_error(f->db, rc);
		mem_free(res);
	}
}

static void flush_retry_done(struct io_req *req, int res)
{
	(void)res;
	struct flush_actor *f = req->ctx;
	struct sched_flushed *out = f->unsent;
	f->unsent = NULL;
	flush_send(f, out);
	flush_next(f);
}

/* Ends the job (nothing of it is in flight): describes the segment, keeps
 * or removes it, and sends the result. */
static void flush_complete(struct flush_actor *f)
{
	cesium_db *db = f->db;
	struct flush_job *j = &f->job;
	struct sched_flushed *out = j->res;
	if (!j->rc && j->opened) {
		flush_fail(f,
		           db_desc_from_props(seg_writer_props(j->o.writer), 0, j->req->file_number,
		                              seg_writer_file_size(j->o.writer), &out->file));
		if (!j->rc) {
			out->has_file = true;
			atomic_fetch_add_explicit(&db->stats.flushes, 1, memory_order_relaxed);
			atomic_fetch_add_explicit(&db->stats.flush_bytes, out->file.file_size,
			                          memory_order_relaxed);
		}
	}
	if (j->opened)
		output_close(&j->o, j->rc == 0);
	if (j->log_fd >= 0)
		io_close(j->log_fd);
	mem_free(j->log_path);
	iter_destroy(j->it);
	mem_free(j->path);
	out->result = j->rc;
	memtable_unref(j->req->mem);
	mem_free(j->req);
	memset(j, 0, sizeof(*j));
	f->busy = false;
	flush_send(f, out);
}

/* Ends the job if it can end now: failed with nothing in flight, or synced. */
static void flush_check(struct flush_actor *f)
{
	struct flush_job *j = &f->job;
	if (j->opened && !j->rc && j->o.error)
		flush_fail(f, j->o.error);
	if ((j->opened && output_inflight(&j->o) > 0) || j->log_syncing)
		return;
	if (j->rc || !j->opened || output_done(&j->o))
		flush_complete(f);
}

/*
 * The reference to a value the memtable holds in its log. A value alone in
 * its record is checked by the record's own checksum, which the writer
 * computed as it appended: the flush need not read and hash the value (a
 * tenth of a 4 KiB-value ingest, bench/RESULTS.md, 2026-11-27 18:29).
 * Otherwise its XXH3, from the log's mapping.
 */
static struct seg_log_ref flush_ref(const struct flush_job *j, keys_slice ikey, keys_slice v,
                                    enum memtable_held held)
{
	struct seg_log_ref ref = {wal_hold_offset(memtable_home(j->req->mem), v.data),
	                          (uint32_t)v.len, 0, 0};
	if (held == MEMTABLE_HELD_ALONE) {
		/* The record: its header, the batch's, then the one put. */
		struct batch_entry_ref e = {KEYS_KIND_VALUE,
		                            0,
		                            NULL,
		                            ikey.len - KEYS_TRAILER_SIZE - KEYS_NS_SIZE,
		                            NULL,
		                            v.len};
		ref.head =
		    (uint32_t)(LOG_HEADER_SIZE + BATCH_HEADER_SIZE + batch_entry_size(&e) - v.len);
		ref.checksum = log_stored_checksum(v.data - ref.head);
	} else {
		ref.checksum = XXH3_64bits(v.data, v.len);
	}
	return ref;
}

/* One step: adds entries until the write window is full or the memtable
 * is exhausted (then seals the segment). Bounded by OUTPUT_WINDOW chunks of
 * encoding; never waits. */
static void flush_pump(struct flush_actor *f)
{
	struct flush_job *j = &f->job;
	int rc = 0;
	while (!output_busy(&j->o) && iter_valid(j->it)) {
		keys_slice v = iter_value(j->it);
		enum memtable_held held = j->refs ? memtable_iter_held(j->it) : MEMTABLE_COPIED;
		if (held != MEMTABLE_COPIED) {
			struct seg_log_ref ref = flush_ref(j, iter_key(j->it), v, held);
			rc = output_add_ref(&j->o, iter_key(j->it), &ref);
		} else {
			rc = output_add(&j->o, iter_key(j->it), v);
		}
		if (rc)
			break;
		iter_next(j->it);
	}
	if (!rc && !iter_valid(j->it)) {
		rc = iter_status(j->it);
		if (!rc)
			rc = output_finish_start(&j->o);
	}
	flush_fail(f, rc);
	flush_check(f);
}

/* notify of the job's output: a write or the sync completed. */
static void flush_on_io(struct output *o, void *arg)
{
	struct flush_actor *f = arg;
	struct flush_job *j = &f->job;
	(void)o;
	if (!j->rc && !j->o.error && !j->o.sealed) {
		if (output_busy(&j->o))
			return;
		f->resumed++;
		flush_pump(f);
	} else {
		flush_check(f);
	}
	if (!f->busy)
		flush_next(f);
}

static void flush_log_synced(struct io_req *req, int res)
{
	struct flush_actor *f = req->ctx;
	struct flush_job *j = &f->job;
	j->log_syncing = false;
	if (res < 0)
		flush_fail(f, error_set(error_from_errno(res),
		                        "%s: fdatasync of the log keeping flushed values: %s",
		                        j->log_path, strerror(-res)));
	else
		flush_fail(f, db_check_kept_log(f->db, j->req->log_number));
	flush_check(f);
	if (!f->busy)
		flush_next(f);
}

/* With values to leave in req's log: opens it and starts its fdatasync. */
static int flush_keep_log(struct flush_actor *f, struct flush_request *req)
{
	struct flush_job *j = &f->job;
	int rc = db_file_path(f->db, req->log_number, "wal", &j->log_path);
	if (rc)
		return rc;
	int fd = io_open(j->log_path, O_RDONLY, 0);
	if (fd < 0)
		return error_set(error_from_errno(fd), "%s: cannot open the log to keep: %s",
		                 j->log_path, strerror(-fd));
	j->log_fd = fd;
	j->refs = true;
	j->log_sync.done = flush_log_synced;
	j->log_sync.ctx = f;
	j->log_syncing = true;
	io_ring_fdatasync(reactor_ring(f->actor.home), &j->log_sync, fd);
	return 0;
}

/* Starts a flush of req; it may also end here (an empty memtable, a
 * failure before any write). */
static void flush_start(struct flush_actor *f, struct flush_request *req)
{
	cesium_db *db = f->db;
	struct flush_job *j = &f->job;
	struct sched_flushed *out = mem_zalloc(sizeof(*out));
	if (!out) {
		/* Nothing can carry the result: the db learns of it as a
		 * background error and the memtable stays sealed (its WAL
		 * keeps the data). */
		db_set_bg_error(db, CESIUM_ENOMEM);
		memtable_unref(req->mem);
		mem_free(req);
		return;
	}
	memset(j, 0, sizeof(*j));
	j->log_fd = -1;
	out->msg.type = SCHED_MSG_FLUSHED;
	out->msg.from = &f->actor;
	out->next_log_number = req->next_log_number;
	out->last_seq = req->last_seq;
	j->req = req;
	j->res = out;
	f->busy = true;
	int rc = db_file_path(db, req->file_number, "seg", &j->path);
	if (!rc)
		rc = memtable_iter_new(req->mem, &j->it);
	if (!rc) {
		iter_seek_first(j->it);
		/* An empty memtable retires its WAL without a file. */
		if (!iter_valid(j->it)) {
			flush_fail(f, iter_status(j->it));
			flush_complete(f);
			return;
		}
	}
	struct seg_writer_opts wo = db_writer_opts(db, 0);
	if (!rc && req->log_number && memtable_held_bytes(req->mem) > 0) {
		wo.value_log = req->log_number;
		rc = flush_keep_log(f, req);
	}
	if (!rc)
		rc =
		    output_open(&j->o, reactor_ring(f->actor.home), j->path, req->file_number, &wo);
	if (rc) {
		flush_fail(f, rc);
		flush_check(f); /* ends the job, or its log sync will */
		return;
	}
	j->opened = true;
	output_set_notify(&j->o, flush_on_io, f);
	flush_pump(f);
}

/* Starts queued requests, one at a time, in order. */
static void flush_next(struct flush_actor *f)
{
	while (!f->busy && !f->unsent && f->queue_head) {
		struct actor_msg *m = f->queue_head;
		f->queue_head = m->next;
		if (!f->queue_head)
			f->queue_tail = NULL;
		m->next = NULL;
		flush_start(f, (struct flush_request *)m);
	}
}

static void flush_handle(struct actor *self, struct actor_msg *msg)
{
	struct flush_actor *f = (struct flush_actor *)self;
	msg->next = NULL;
	if (f->queue_tail)
		f->queue_tail->next = msg;
	else
		f->queue_head = msg;
	f->queue_tail = msg;
	flush_next(f);
}

static bool flush_idle(struct actor *self)
{
	struct flush_actor *f = (struct flush_actor *)self;
	return !f->busy && !f->unsent && !f->queue_head;
}

void flush_init(struct flush_actor *f, cesium_db *db, struct scheduler *sched)
{
	memset(f, 0, sizeof(*f));
	f->actor.name = "flush";
	f->actor.handle = flush_handle;
	f->actor.idle = flush_idle;
	f->retry.done = flush_retry_done;
	f->retry.ctx = f;
	f->db = db;
	f->sched = sched;
}
