#include "compactor.h"

#include <stdio.h>
#include <string.h>

#include "compact_iter.h"
#include "db.h"
#include "error.h"
#include "file.h"
#include "mem.h"
#include "merge.h"
#include "options.h"
#include "output.h"

#define COMPACTOR_READAHEAD (2u << 20)
/* Wait before resending a result the scheduler's mailbox refused. */
#define COMPACTOR_RETRY_NS (1000u * 1000u)

/* Opens a merged, filtered view of the job's inputs. */
static int compactor_open_input(struct compactor *c, const struct compaction_job *job,
                                struct compaction_part *part, compact_iter **out)
{
	cesium_db *db = c->db;
	(void)part; /* every input, seeked to the part's start by the caller */
	iter **children = mem_calloc(job->ninputs ? job->ninputs : 1, sizeof(*children));
	uint64_t *snaps = NULL;
	size_t nsnaps = 0, n = 0;
	iter *merged = NULL;
	int rc = children ? 0 : error_set(CESIUM_ENOMEM, "out of memory");
	/* Inputs are read in large windows on this compactor's ring, the next
	 * window of every input in flight while the merge consumes the
	 * current ones. */
	struct seg_iter_opts so = {.fill_cache = false,
	                           .readahead = COMPACTOR_READAHEAD,
	                           .ring = reactor_ring(c->actor.home),
	                           .ring_reads = &c->ring_reads};
	for (size_t i = 0; i < job->ninputs && !rc; i++) {
		seg_reader *r;
		rc = db_file_reader(db, job->inputs[i], &r);
		if (!rc)
			rc = seg_reader_iter_new(r, &so, &children[n]);
		if (!rc)
			n++;
	}
	if (!rc)
		rc = db_snapshots(db, &snaps, &nsnaps);
	if (!rc) {
		rc = merge_iter_new(children, n, &merged);
		n = 0; /* taken over, even on failure */
	}
	if (!rc)
		rc = compact_iter_new(merged, snaps, nsnaps, job->bottommost, out);
	for (size_t i = 0; i < n; i++)
		iter_destroy(children[i]);
	mem_free(children);
	mem_free(snaps);
	return rc;
}

/* Ends the current output: durable, described in part->outputs. */
static int compactor_finish_output(const struct compaction_job *job, struct compaction_part *part,
                                   struct output *o)
{
	int rc = output_finish(o);
	struct file_desc d;
	memset(&d, 0, sizeof(d));
	if (!rc)
		rc = db_desc_from_props(seg_writer_props(o->writer), job->output_level, o->number,
		                        seg_writer_file_size(o->writer), &d);
	if (!rc)
		rc = edit_add_file(&part->outputs, &d);
	if (!rc)
		part->bytes_written += d.file_size;
	mem_free(d.smallest);
	mem_free(d.largest);
	output_close(o, rc == 0);
	return rc;
}

/* Whether the iterator has passed the part's end. */
static bool compactor_past_end(const struct compaction_part *p, keys_slice ikey)
{
	return p->hi &&
	       keys_compare_bytes(keys_ikey_nskey(ikey), keys_slice_of(p->hi, p->hi_len)) >= 0;
}

static int compactor_run(struct compactor *c, struct compaction_part *part)
{
	cesium_db *db = c->db;
	const struct compaction_job *job = part->job;
	compact_iter *ci = NULL;
	struct output o;
	bool open = false;
	char *path = NULL;
	int rc = compactor_open_input(c, job, part, &ci);
	uint64_t target = job->target_file_size;
	struct seg_writer_opts wo = db_writer_opts(db, job->output_level);
	if (!rc && part->lo)
		compact_iter_seek(ci, part->lo, part->lo_len);
	/* A full output is cut only where the user key changes: every version
	 * of a key stays in one segment, so a leveled level never has two
	 * segments sharing a key (the policy moves one segment at a time). */
	uint8_t *last = NULL;
	size_t last_len = 0, last_cap = 0;
	bool full = false;
	for (; !rc && compact_iter_valid(ci); compact_iter_next(ci)) {
		keys_slice k = compact_iter_key(ci);
		if (compactor_past_end(part, k))
			break;
		keys_slice nk = keys_ikey_nskey(k);
		if (full && keys_compare_bytes(nk, keys_slice_of(last, last_len)) != 0) {
			full = false;
			open = false;
			rc = compactor_finish_output(job, part, &o);
			if (rc)
				break;
		}
		if (!open) {
			uint64_t number = atomic_fetch_add(&db->next_file_number, 1);
			rc = db_file_path(db, number, "seg", &path);
			if (!rc)
				rc =
				    output_open(&o, reactor_ring(c->actor.home), path, number, &wo);
			mem_free(path);
			path = NULL;
			if (rc)
				break;
			open = true;
		}
		rc = output_add(&o, k, compact_iter_value(ci));
		if (!rc && !full && seg_writer_file_size(o.writer) >= target)
			full = true;
		if (!rc && full) {
			if (nk.len > last_cap) {
				uint8_t *p = mem_realloc(last, nk.len);
				if (!p) {
					rc = error_set(CESIUM_ENOMEM, "out of memory");
					break;
				}
				last = p;
				last_cap = nk.len;
			}
			memcpy(last, nk.data, nk.len);
			last_len = nk.len;
		}
	}
	mem_free(last);
	if (!rc && ci)
		rc = compact_iter_status(ci);
	if (!rc && open) {
		open = false;
		rc = compactor_finish_output(job, part, &o);
	}
	if (open)
		output_close(&o, false);
	if (rc) {
		/* Leave the tree as it was: no output of a failed part stays. */
		db_remove_segments(db, &part->outputs, false);
		edit_free(&part->outputs);
	}
	compact_iter_free(ci);
	return rc;
}

/* Sends the waiting results in order; on a full scheduler mailbox, tries
 * again from a timer, never by spinning. */
static void compactor_flush_unsent(struct compactor *c)
{
	while (c->unsent_head) {
		struct compaction_part *part = (struct compaction_part *)c->unsent_head;
		struct actor_msg *next = part->msg.next;
		if (actor_send(&part->job->sched->actor, &part->msg) == CESIUM_EBUSY) {
			reactor_timer(c->actor.home, &c->retry, COMPACTOR_RETRY_NS);
			return;
		}
		c->unsent_head = next;
	}
	c->unsent_tail = NULL;
}

static void compactor_send(struct compactor *c, struct compaction_part *part)
{
	part->msg.next = NULL;
	bool waiting = c->unsent_head != NULL; /* a retry timer is armed */
	if (c->unsent_tail)
		c->unsent_tail->next = &part->msg;
	else
		c->unsent_head = &part->msg;
	c->unsent_tail = &part->msg;
	if (!waiting)
		compactor_flush_unsent(c);
}

static void compactor_retry_done(struct io_req *req, int res)
{
	(void)res;
	compactor_flush_unsent(req->ctx);
}

static void compactor_handle(struct actor *self, struct actor_msg *msg)
{
	struct compactor *c = (struct compactor *)self;
	struct compaction_part *part = (struct compaction_part *)msg;
	/* Input bytes are counted once per job, by its first part. */
	if (!part->lo)
		for (size_t i = 0; i < part->job->ninputs; i++)
			part->bytes_read += part->job->inputs[i]->file_size;
	part->result = compactor_run(c, part);
	if (part->result) {
		snprintf(part->errmsg, sizeof(part->errmsg), "%s", cesium_errmsg());
		c->jobs_failed++;
	} else {
		c->jobs_done++;
	}
	part->msg.type = SCHED_MSG_PART_DONE;
	part->msg.from = self;
	compactor_send(c, part);
}

static bool compactor_idle(struct actor *self)
{
	return ((struct compactor *)self)->unsent_head == NULL;
}

void compactor_init(struct compactor *c, cesium_db *db)
{
	memset(c, 0, sizeof(*c));
	c->actor.name = "compactor";
	c->actor.handle = compactor_handle;
	c->actor.idle = compactor_idle;
	c->retry.done = compactor_retry_done;
	c->retry.ctx = c;
	c->db = db;
}
