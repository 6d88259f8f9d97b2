#include "flush.h"

#include <stdio.h>
#include <string.h>

#include "db.h"
#include "error.h"
#include "mem.h"
#include "options.h"
#include "output.h"
#include "scheduler.h"

/* Writes mem into segment `number`; fills the file description. */
static int flush_write(struct flush_actor *f, struct flush_request *req, struct sched_flushed *out)
{
	cesium_db *db = f->db;
	char *path = NULL;
	iter *it = NULL;
	struct output o;
	bool opened = false;
	int rc = db_file_path(db, req->file_number, "seg", &path);
	if (rc)
		goto out;
	rc = memtable_iter_new(req->mem, &it);
	if (rc)
		goto out;
	iter_seek_first(it);
	if (!iter_valid(it)) {
		rc = iter_status(it);
		goto out; /* an empty memtable retires its WAL without a file */
	}
	struct seg_writer_opts wo = db_writer_opts(db, 0);
	rc = output_open(&o, reactor_ring(f->actor.home), path, req->file_number, &wo);
	if (rc)
		goto out;
	opened = true;
	for (; iter_valid(it) && rc == 0; iter_next(it))
		rc = output_add(&o, iter_key(it), iter_value(it));
	if (!rc)
		rc = iter_status(it);
	if (!rc)
		rc = output_finish(&o);
	if (!rc)
		rc = db_desc_from_props(seg_writer_props(o.writer), 0, req->file_number,
		                        seg_writer_file_size(o.writer), &out->file);
	if (!rc) {
		out->has_file = true;
		atomic_fetch_add_explicit(&db->stats.flushes, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&db->stats.flush_bytes, out->file.file_size,
		                          memory_order_relaxed);
	}
out:
	if (opened)
		output_close(&o, rc == 0);
	iter_destroy(it);
	mem_free(path);
	return rc;
}

static void flush_handle(struct actor *self, struct actor_msg *msg)
{
	struct flush_actor *f = (struct flush_actor *)self;
	struct flush_request *req = (struct flush_request *)msg;
	struct sched_flushed *out = mem_zalloc(sizeof(*out));
	if (!out) {
		/* Nothing can carry the result: the db learns of it as a
		 * background error and the memtable stays sealed (its WAL
		 * keeps the data). */
		db_set_bg_error(f->db, CESIUM_ENOMEM);
		goto done;
	}
	out->msg.type = SCHED_MSG_FLUSHED;
	out->msg.from = self;
	out->next_log_number = req->next_log_number;
	out->last_seq = req->last_seq;
	out->result = flush_write(f, req, out);
	if (out->result)
		snprintf(out->errmsg, sizeof(out->errmsg), "%s", cesium_errmsg());
	while (actor_send(&f->sched->actor, &out->msg) == CESIUM_EBUSY)
		io_ring_poll(reactor_ring(self->home), false);
done:
	memtable_unref(req->mem);
	mem_free(req);
}

void flush_init(struct flush_actor *f, cesium_db *db, struct scheduler *sched)
{
	memset(f, 0, sizeof(*f));
	f->actor.name = "flush";
	f->actor.handle = flush_handle;
	f->db = db;
	f->sched = sched;
}
