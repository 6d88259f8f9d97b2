#include "scheduler.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "compactor.h"
#include "db.h"
#include "error.h"
#include "file.h"
#include "log.h"
#include "mem.h"
#include "waiter.h"

/* One manifest append: the edit's record written then fdatasynced. */
struct sched_io {
	struct io_req write, sync;
	int write_res, sync_res;
	unsigned pending;
};

static void sched_io_done(struct io_req *req, int res)
{
	struct sched_io *io = req->ctx;
	if (req == &io->write)
		io->write_res = res;
	else
		io->sync_res = res;
	io->pending--;
}

/* Appends e to the MANIFEST and waits until it is durable. After a failure
 * the MANIFEST may hold a partial record, so it is not written again:
 * every later edit fails too (the next open replays up to the last good
 * record and starts a new MANIFEST). */
static int sched_log_edit(struct scheduler *s, const struct edit *e)
{
	uint8_t *payload = NULL, *rec = NULL;
	size_t plen = 0;
	int rc;
	if (s->manifest_fd < 0)
		return error_set(CESIUM_EIO, "%s: an earlier MANIFEST write failed; reopen the database",
		                 s->manifest_path);
	rc = edit_encode(e, &payload, &plen);
	if (rc)
		goto out;
	size_t rlen = log_record_size(plen);
	rec = mem_alloc(rlen);
	if (!rec) {
		rc = error_set(CESIUM_ENOMEM, "out of memory");
		goto out;
	}
	log_encode(rec, payload, plen);
	struct sched_io io = { .pending = 2 };
	io.write.done = io.sync.done = sched_io_done;
	io.write.ctx = io.sync.ctx = &io;
	struct io_ring *ring = reactor_ring(s->actor.home);
	if (e->nadded > 0) {
		/* New segments' directory entries must be durable before the
		 * edit that names them: POSIX does not promise it otherwise. */
		struct sched_io dio = { .pending = 1 };
		dio.sync.done = sched_io_done;
		dio.sync.ctx = &dio;
		io_ring_fsync(ring, &dio.sync, s->dir_fd);
		io_ring_submit(ring);
		while (dio.pending)
			io_ring_poll(ring, true);
		if (dio.sync_res < 0) {
			rc = error_set(error_from_errno(dio.sync_res), "%s: fsync of the directory failed",
			               s->manifest_path);
			goto out;
		}
	}
	io_ring_write_then_fdatasync(ring, &io.write, &io.sync, s->manifest_fd, rec, rlen,
	                             s->manifest_size);
	io_ring_submit(ring);
	while (io.pending)
		io_ring_poll(ring, true);
	if (io.write_res < 0 || io.sync_res < 0) {
		int err = io.write_res < 0 ? io.write_res : io.sync_res;
		rc = error_set(error_from_errno(err), "%s: offset %llu: MANIFEST %s failed",
		               s->manifest_path, (unsigned long long)s->manifest_size,
		               io.write_res < 0 ? "write" : "fdatasync");
		io_close(s->manifest_fd);
		s->manifest_fd = -1;
		goto out;
	}
	s->manifest_size += rlen;
out:
	mem_free(payload);
	mem_free(rec);
	return rc;
}

/* Logs e, builds and installs the version it makes. `flushed` memtables
 * leave the read state with it. */
static int sched_apply(struct scheduler *s, struct edit *e, size_t flushed, bool *maybe_logged)
{
	*maybe_logged = false;
	struct version *nv = NULL;
	edit_set_next_file_number(e, atomic_load(&s->db->next_file_number));
	if (!e->has_last_seq)
		edit_set_last_seq(e, s->version->last_seq);
	if (!e->has_log_number)
		edit_set_log_number(e, s->version->log_number);
	int rc = version_apply(s->version, e, NULL, NULL, &nv);
	if (rc)
		return rc;
	rc = sched_log_edit(s, e);
	if (!rc)
		rc = db_install_version(s->db, nv, flushed);
	if (rc) {
		/* The record may have reached the disk (a write that landed
		 * before a failed fdatasync): the in-memory shape and the
		 * MANIFEST may disagree now, which only a reopen resolves. */
		*maybe_logged = true;
		db_set_bg_error(s->db, rc);
		version_unref(nv);
		return rc;
	}
	struct version *old = s->version;
	s->version = nv;
	/* Only now, with the edit durable and installed, may deleted files
	 * go once their last reader lets go of them. */
	version_mark_deleted(old, e);
	version_unref(old);
	return 0;
}

/* WALs below log_number hold nothing unflushed any more. */
static void sched_retire_wals(struct scheduler *s, uint64_t from, uint64_t to)
{
	for (uint64_t n = from; n < to; n++) {
		char *path = NULL;
		if (db_file_path(s->db, n, "wal", &path) == 0) {
			if (access(path, F_OK) == 0)
				cleanup_push(s->db->cleaner, path, 0);
			mem_free(path);
		}
	}
}

static void sched_on_flushed(struct scheduler *s, struct sched_flushed *f)
{
	struct edit e;
	edit_init(&e);
	int rc = f->result;
	if (rc) {
		error_set(rc, "%s", f->errmsg);
		goto out;
	}
	uint64_t old_log = s->version->log_number;
	edit_set_log_number(&e, f->next_log_number);
	edit_set_last_seq(&e, f->last_seq > s->version->last_seq ? f->last_seq
	                                                          : s->version->last_seq);
	if (f->has_file)
		rc = edit_add_file(&e, &f->file);
	bool logged;
	if (!rc)
		rc = sched_apply(s, &e, 1, &logged);
	if (!rc)
		sched_retire_wals(s, old_log, f->next_log_number);
out:
	if (rc)
		db_set_bg_error(s->db, rc);
	edit_free(&e);
	mem_free(f->file.smallest);
	mem_free(f->file.largest);
	mem_free(f);
}

static void sched_start_compact(struct scheduler *s, struct sched_compact *c)
{
	struct version *v = s->version;
	size_t n = 0;
	for (int l = 0; l < VERSION_LEVELS; l++)
		n += v->nfiles[l];
	bool done = n == 0 || (n == 1 && v->nfiles[VERSION_LEVELS - 1] == 1 &&
	                       v->files[VERSION_LEVELS - 1][0]->tombstones == 0);
	if (done) {
		waiter_wake(c->waiter, 0);
		mem_free(c);
		return;
	}
	struct compaction_job *job = mem_zalloc(sizeof(*job));
	struct file_meta **inputs = mem_calloc(n, sizeof(*inputs));
	if (!job || !inputs) {
		mem_free(job);
		mem_free(inputs);
		error_set(CESIUM_ENOMEM, "out of memory for a compaction job");
		waiter_wake_err(c->waiter, CESIUM_ENOMEM);
		mem_free(c);
		return;
	}
	size_t k = 0;
	for (int l = 0; l < VERSION_LEVELS; l++)
		for (size_t i = 0; i < v->nfiles[l]; i++)
			inputs[k++] = file_meta_ref(v->files[l][i]);
	job->msg.type = COMPACTOR_MSG_JOB;
	job->msg.from = &s->actor;
	job->sched = s;
	job->inputs = inputs;
	job->ninputs = n;
	job->output_level = VERSION_LEVELS - 1;
	job->bottommost = true;
	edit_init(&job->outputs);
	s->running = job;
	s->waiting = c;
	/* The compactor's mailbox holds every job the scheduler can have in
	 * flight, so this send cannot be refused. */
	actor_send(&s->compactor->actor, &job->msg);
}

static void sched_on_job_done(struct scheduler *s, struct compaction_job *job)
{
	struct sched_compact *c = s->waiting;
	struct edit e;
	edit_init(&e);
	int rc = job->result;
	cesium_db *db = s->db;
	atomic_fetch_add_explicit(&db->stats.compaction_bytes_read, job->bytes_read,
	                          memory_order_relaxed);
	atomic_fetch_add_explicit(&db->stats.compaction_bytes_written, job->bytes_written,
	                          memory_order_relaxed);
	if (rc) {
		error_set(rc, "%s", job->errmsg);
		goto out;
	}
	for (size_t i = 0; i < job->ninputs && !rc; i++)
		rc = edit_delete_file(&e, job->inputs[i]->level, job->inputs[i]->number);
	for (size_t i = 0; i < job->outputs.nadded && !rc; i++)
		rc = edit_add_file(&e, &job->outputs.added[i]);
	bool logged = false;
	if (!rc)
		rc = sched_apply(s, &e, 0, &logged);
	if (rc && !logged) {
		/* The outputs never reached a version: remove them. (If the
		 * edit may be in the MANIFEST they stay; the next open's sweep
		 * removes whatever the MANIFEST does not name.) */
		for (size_t i = 0; i < job->outputs.nadded; i++) {
			char *path = NULL;
			if (db_file_path(db, job->outputs.added[i].number, "seg", &path) == 0) {
				cleanup_push(db->cleaner, path, job->outputs.added[i].file_size);
				mem_free(path);
			}
		}
	}
out:
	if (rc)
		atomic_fetch_add_explicit(&db->stats.compaction_failures, 1, memory_order_relaxed);
	else
		atomic_fetch_add_explicit(&db->stats.compactions, 1, memory_order_relaxed);
	for (size_t i = 0; i < job->ninputs; i++)
		file_meta_unref(job->inputs[i], s->env);
	mem_free(job->inputs);
	edit_free(&job->outputs);
	mem_free(job);
	edit_free(&e);
	s->running = NULL;
	s->waiting = NULL;
	if (c) {
		if (rc)
			waiter_wake_err(c->waiter, rc);
		else
			waiter_wake(c->waiter, 0);
		mem_free(c);
	}
}

static void sched_handle(struct actor *self, struct actor_msg *msg)
{
	struct scheduler *s = (struct scheduler *)self;
	switch (msg->type) {
	case SCHED_MSG_FLUSHED:
		sched_on_flushed(s, (struct sched_flushed *)msg);
		break;
	case SCHED_MSG_COMPACT: {
		struct sched_compact *c = (struct sched_compact *)msg;
		if (s->running) {
			/* cesium_compact callers are serialized by the db, so at
			 * most one waits; refuse rather than queue without bound. */
			error_set(CESIUM_EBUSY, "a full compaction is already running");
			waiter_wake_err(c->waiter, CESIUM_EBUSY);
			mem_free(c);
		} else {
			sched_start_compact(s, c);
		}
		break;
	}
	case SCHED_MSG_JOB_DONE:
		sched_on_job_done(s, (struct compaction_job *)msg);
		break;
	default:
		break;
	}
}

static bool sched_idle(struct actor *self)
{
	struct scheduler *s = (struct scheduler *)self;
	return s->running == NULL;
}

int scheduler_init(struct scheduler *s, cesium_db *db, struct version *v, int manifest_fd,
                   const char *manifest_path, uint64_t manifest_size)
{
	memset(s, 0, sizeof(*s));
	s->dir_fd = -1;
	s->manifest_fd = -1;
	s->manifest_path = mem_alloc(strlen(manifest_path) + 1);
	if (!s->manifest_path) {
		io_close(manifest_fd);
		return error_set(CESIUM_ENOMEM, "out of memory");
	}
	strcpy(s->manifest_path, manifest_path);
	s->actor.name = "scheduler";
	s->actor.handle = sched_handle;
	s->actor.idle = sched_idle;
	s->db = db;
	s->env = v->env;
	s->version = version_ref(v);
	s->manifest_fd = manifest_fd;
	s->manifest_size = manifest_size;
	s->dir_fd = io_open(db->path, O_RDONLY | O_DIRECTORY, 0);
	if (s->dir_fd < 0)
		return error_set(error_from_errno(s->dir_fd), "%s: cannot open the directory",
		                 db->path);
	return 0;
}

void scheduler_fini(struct scheduler *s)
{
	if (s->version)
		version_unref(s->version);
	s->version = NULL;
	io_close(s->manifest_fd);
	s->manifest_fd = -1;
	io_close(s->dir_fd);
	s->dir_fd = -1;
	mem_free(s->manifest_path);
	s->manifest_path = NULL;
}
