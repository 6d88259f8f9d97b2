#include "scheduler.h"

#include <assert.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "compactor.h"
#include "db.h"
#include "error.h"
#include "file.h"
#include "filename.h"
#include "log.h"
#include "manifest.h"
#include "mem.h"
#include "options.h"
#include "waiter.h"

static void sched_after_change(struct scheduler *s);

static uint64_t sched_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Back-off after the nth consecutive failure (n >= 1): 100 ms doubling to
 * 10 s, so that a full or failing disk is not hammered. */
static uint64_t sched_backoff_ns(unsigned n)
{
	unsigned f = n > 0 ? n - 1 : 0;
	if (f > 7)
		f = 7;
	uint64_t wait = (100ull * 1000 * 1000) << f;
	return wait < 10ull * 1000 * 1000 * 1000 ? wait : 10ull * 1000 * 1000 * 1000;
}

/* Compactions failing in a row that turn a stop into failing writes: a
 * transient error or two is retried while writers wait. */
#define SCHED_STOP_FAILURES 3
/* The longest back-off while writers are stopped. */
#define SCHED_STOPPED_BACKOFF_NS (1000ull * 1000 * 1000)

/* Starts a new MANIFEST holding the installed version as one edit and
 * points CURRENT at it (manifest_create: write, fdatasync, then CURRENT by
 * write-temp, fsync, rename, fsync dir). Afterwards the old MANIFEST, and
 * whatever a failed append left in it, no longer counts. Synchronous
 * system calls on the scheduler's thread: this runs only after a failure.
 * On failure the old MANIFEST stays closed and manifest_stale set; the
 * partly written new one is left for the next open's sweep (CURRENT may
 * already name it if only the final directory fsync failed). */
static int sched_roll_manifest(struct scheduler *s)
{
	cesium_db *db = s->db;
	uint64_t number = atomic_fetch_add(&db->next_file_number, 1);
	char *path = filename_manifest(db->path, number);
	if (!path)
		return error_set(CESIUM_ENOMEM, "out of memory");
	int fd = -1;
	uint64_t size = 0;
	int rc = manifest_create(db->path, number, s->version, s->version->log_number,
	                         atomic_load(&db->next_file_number), s->version->last_seq, &fd,
	                         &size);
	if (rc) {
		mem_free(path);
		return rc;
	}
	io_close(s->manifest_fd);
	/* CURRENT no longer names the old MANIFEST (the rename and the
	 * directory are durable): it can go. */
	if (db->cleaner)
		cleanup_push(db->cleaner, s->manifest_path, 0);
	mem_free(s->manifest_path);
	s->manifest_path = path;
	s->manifest_fd = fd;
	s->manifest_size = size;
	s->manifest_stale = false;
	atomic_fetch_add_explicit(&s->stats.manifest_rolls, 1, memory_order_relaxed);
	return 0;
}

/* After a failed append (or install), which left the MANIFEST possibly
 * holding a record the installed version lacks: marks it stale and tries
 * to start a new one at once. Keeps the first failure as the error.
 * *maybe_logged stays true unless the new MANIFEST made the record moot. */
static int sched_after_manifest_failure(struct scheduler *s, int rc, bool *maybe_logged)
{
	char msg[ERROR_MSG_MAX];
	snprintf(msg, sizeof(msg), "%s", cesium_errmsg());
	s->manifest_stale = true;
	atomic_fetch_add_explicit(&s->stats.manifest_failures, 1, memory_order_relaxed);
	int roll = sched_roll_manifest(s);
	if (!roll) {
		*maybe_logged = false;
		return error_set(rc, "%s (a new MANIFEST replaced it)", msg);
	}
	return error_set(rc, "%s; starting a new MANIFEST failed too: %s", msg, cesium_errmsg());
}

/* WALs below log_number hold nothing unflushed any more; `kept` holds
 * values of the segment just installed, and goes with that segment. */
static void sched_retire_wals(struct scheduler *s, uint64_t from, uint64_t to, uint64_t kept)
{
	for (uint64_t n = from; n < to; n++) {
		char *path = NULL;
		if (n == kept)
			continue;
		if (db_file_path(s->db, n, "wal", &path) == 0) {
			if (access(path, F_OK) == 0)
				cleanup_push(s->db->cleaner, path, 0);
			mem_free(path);
		}
	}
}

static void sched_flushed_free(struct sched_flushed *f)
{
	mem_free(f->file.smallest);
	mem_free(f->file.largest);
	mem_free(f);
}

/* ---- the edit in flight ------------------------------------------------
 *
 * An edit runs as a continuation so that the reactor it shares with the
 * flush and cleanup actors keeps serving them while the disk syncs:
 * sched_apply builds the version the edit makes, encodes the record
 * and submits the directory fsync (for an edit adding files) or the
 * MANIFEST append; the completions chain on in sched_edit_io_done, which
 * installs the version and hands the outcome to the flush's or the job's
 * follow-up (sched_edit_end), then looks for the next queued edit. */

static void sched_job_done(struct scheduler *s, struct compaction_job *job, int rc);
static void sched_edit_io_done(struct io_req *req, int res);

/* The record written then fdatasynced, linked in the kernel. */
static void sched_edit_submit_append(struct scheduler *s)
{
	struct sched_edit *x = &s->edit;
	struct io_ring *ring = reactor_ring(s->actor.home);
	x->pending = 2;
	x->write_res = x->sync_res = 0;
	io_ring_write_then_fdatasync(ring, &x->write, &x->sync, s->manifest_fd, x->rec, x->rlen,
	                             s->manifest_size);
	io_ring_submit(ring);
}

/* Starts s->edit.e. 0 once its I/O is in flight; on failure nothing is in
 * flight, the installed version is unchanged and the record reached no
 * MANIFEST. A stale MANIFEST is replaced first, synchronously: that only
 * happens after a failure. */
static int sched_apply(struct scheduler *s)
{
	struct sched_edit *x = &s->edit;
	struct edit *e = &x->e;
	uint8_t *payload = NULL;
	size_t plen = 0;
	edit_set_next_file_number(e, atomic_load(&s->db->next_file_number));
	if (!e->has_last_seq)
		edit_set_last_seq(e, s->version->last_seq);
	if (!e->has_log_number)
		edit_set_log_number(e, s->version->log_number);
	int rc = version_apply(s->version, e, NULL, NULL, &x->nv);
	if (rc)
		goto out;
	if (s->manifest_stale && (rc = sched_roll_manifest(s)) != 0)
		goto out;
	rc = edit_encode(e, &payload, &plen);
	if (rc)
		goto out;
	x->rlen = log_record_size(plen);
	x->rec = mem_alloc(x->rlen);
	if (!x->rec) {
		rc = error_set(CESIUM_ENOMEM, "out of memory");
		goto out;
	}
	log_encode(x->rec, payload, plen);
	x->dir_sync.done = x->write.done = x->sync.done = sched_edit_io_done;
	x->dir_sync.ctx = x->write.ctx = x->sync.ctx = s;
	x->active = true;
	if (e->nadded > 0) {
		/* New segments' directory entries must be durable before the
		 * edit that names them: POSIX does not promise it otherwise. */
		struct io_ring *ring = reactor_ring(s->actor.home);
		io_ring_fsync(ring, &x->dir_sync, s->dir_fd);
		io_ring_submit(ring);
	} else {
		sched_edit_submit_append(s);
	}
out:
	mem_free(payload);
	if (rc) {
		if (x->nv)
			version_unref(x->nv);
		x->nv = NULL;
		mem_free(x->rec);
		x->rec = NULL;
	}
	return rc;
}

/* A flush install ended: on failure the result stays queued (its memtable
 * sealed, its WAL kept, its segment on disk) and is tried again at once,
 * then after a back-off on the tick; only after SCHED_FLUSH_TRIES failures
 * in a row do writers learn of it as a background error (the retries go
 * on). */
#define SCHED_FLUSH_TRIES 8
static void sched_flush_installed(struct scheduler *s, struct sched_flushed *f, int rc,
                                  uint64_t old_log)
{
	assert(f == s->flush_head);
	if (rc) {
		s->flush_failures++;
		s->flush_retry_ns = sched_now_ns() + sched_backoff_ns(s->flush_failures - 1);
		if (s->flush_failures >= SCHED_FLUSH_TRIES)
			db_set_bg_error(s->db, rc);
		return;
	}
	uint64_t kept = f->has_file ? f->file.value_log : 0;
	db_retire_wals(s->db, f->next_log_number, kept);
	sched_retire_wals(s, old_log, f->next_log_number, kept);
	s->flush_failures = 0;
	s->flush_head = f->next;
	if (!s->flush_head)
		s->flush_tail = NULL;
	sched_flushed_free(f);
}

/* Ends the edit: installs nothing more, but on success makes its version
 * the scheduler's, then runs the flush's or the job's follow-up. maybe_logged:
 * on failure, whether the MANIFEST that CURRENT names may hold the edit
 * all the same (only when starting a new MANIFEST failed too; the next
 * edit retries that first). */
static void sched_edit_end(struct scheduler *s, int rc, bool maybe_logged)
{
	struct sched_edit *x = &s->edit;
	if (!rc) {
		struct version *old = s->version;
		s->version = x->nv;
		/* Only now, with the edit durable and installed, may deleted
		 * files go once their last reader lets go of them. */
		version_mark_deleted(old, &x->e);
		version_unref(old);
	} else if (x->nv) {
		version_unref(x->nv);
	}
	x->nv = NULL;
	mem_free(x->rec);
	x->rec = NULL;
	edit_free(&x->e);
	x->active = false;
	struct sched_flushed *f = x->flush;
	struct compaction_job *job = x->job;
	x->flush = NULL;
	x->job = NULL;
	if (f) {
		sched_flush_installed(s, f, rc, x->old_log);
	} else if (job) {
		if (rc && !maybe_logged) {
			/* The outputs never reached a version: remove them.
			 * (If the edit may be in the MANIFEST they stay; the
			 * next open's sweep removes whatever the MANIFEST does
			 * not name.) */
			db_remove_segments(s->db, &job->outputs, true);
		}
		sched_job_done(s, job, rc);
	}
}

static void sched_edit_io_done(struct io_req *req, int res)
{
	struct scheduler *s = req->ctx;
	struct sched_edit *x = &s->edit;
	int rc = 0;
	bool maybe_logged = false;
	if (req == &x->dir_sync) {
		if (res >= 0) {
			sched_edit_submit_append(s);
			return;
		}
		rc = error_set(error_from_errno(res), "%s: fsync of the directory failed",
		               s->manifest_path);
		goto end;
	}
	if (req == &x->write)
		x->write_res = res;
	else
		x->sync_res = res;
	if (--x->pending > 0)
		return;
	if (x->write_res < 0 || x->sync_res < 0) {
		int err = x->write_res < 0 ? x->write_res : x->sync_res;
		rc = error_set(error_from_errno(err), "%s: offset %llu: MANIFEST %s failed",
		               s->manifest_path, (unsigned long long)s->manifest_size,
		               x->write_res < 0 ? "write" : "fdatasync");
		/* Part of the record (or all of it, before a failed fdatasync)
		 * may be in the file: never append after it. */
		maybe_logged = true;
		rc = sched_after_manifest_failure(s, rc, &maybe_logged);
		goto end;
	}
	s->manifest_size += x->rlen;
	/* A flush's memtable leaves the read state with its version. */
	rc = db_install_version(s->db, x->nv, x->flush ? 1 : 0);
	if (rc) {
		/* Durable but not installed: undo it on disk by starting a
		 * MANIFEST from the installed version. */
		maybe_logged = true;
		rc = sched_after_manifest_failure(s, rc, &maybe_logged);
	}
end:
	sched_edit_end(s, rc, maybe_logged);
	sched_after_change(s);
}

/* A flush result may be installed now: the first retry after a failure
 * is at once, later ones wait for the back-off. */
static bool sched_flush_ready(const struct scheduler *s)
{
	return s->flush_head && !(s->flush_failures > 1 && sched_now_ns() < s->flush_retry_ns);
}

/* Starts the oldest queued edit when none is in flight: flush installs in
 * order, job commits in order, the two interleaved by arrival (a flush
 * backing off lets the jobs behind it go). An edit that fails before its
 * I/O is submitted ends at once and the next is tried. */
static void sched_pump(struct scheduler *s)
{
	while (!s->edit.active) {
		struct sched_flushed *f = sched_flush_ready(s) ? s->flush_head : NULL;
		struct compaction_job *job = s->commit_head;
		if (job && f && f->seq < job->commit_seq)
			job = NULL;
		if (!job && !f)
			return;
		struct sched_edit *x = &s->edit;
		edit_init(&x->e);
		int rc = 0;
		if (job) {
			s->commit_head = job->commit_next;
			if (!s->commit_head)
				s->commit_tail = NULL;
			x->job = job;
			for (size_t i = 0; i < job->ninputs && !rc; i++)
				rc = edit_delete_file(&x->e, job->inputs[i]->level,
				                      job->inputs[i]->number);
			for (size_t i = 0; i < job->outputs.nadded && !rc; i++)
				rc = edit_add_file(&x->e, &job->outputs.added[i]);
		} else {
			if (s->flush_failures > 0)
				atomic_fetch_add_explicit(&s->stats.flush_retries, 1,
				                          memory_order_relaxed);
			x->flush = f;
			x->old_log = s->version->log_number;
			edit_set_log_number(&x->e, f->next_log_number);
			edit_set_last_seq(&x->e, f->last_seq > s->version->last_seq
			                             ? f->last_seq
			                             : s->version->last_seq);
			if (f->has_file)
				rc = edit_add_file(&x->e, &f->file);
		}
		if (!rc)
			rc = sched_apply(s);
		if (rc)
			sched_edit_end(s, rc, false);
	}
}

static void sched_on_flushed(struct scheduler *s, struct sched_flushed *f)
{
	if (f->result) {
		/* The segment was not written: the memtable stays sealed and
		 * its WAL keeps the data; writers learn of it. */
		error_set(f->result, "%s", f->errmsg);
		db_set_bg_error(s->db, f->result);
		s->flush_broken = true;
		sched_flushed_free(f);
	} else if (s->flush_broken) {
		/* A newer memtable's segment, behind a failed flush. */
		char *path = NULL;
		if (f->has_file && db_file_path(s->db, f->file.number, "seg", &path) == 0) {
			cleanup_push(s->db->cleaner, path, 0);
			mem_free(path);
		}
		sched_flushed_free(f);
	} else {
		f->next = NULL;
		f->seq = ++s->edit_seq;
		if (s->flush_tail)
			s->flush_tail->next = f;
		else
			s->flush_head = f;
		s->flush_tail = f;
	}
	sched_after_change(s);
}

/* ---- statistics, workload, stalls ------------------------------------ */

const char *sched_workload_name(int w)
{
	static const char *const names[] = { "idle", "read-heavy", "write-heavy", "scan-heavy",
		                             "mixed" };
	return w >= 0 && w <= SCHED_WORKLOAD_MIXED ? names[w] : "?";
}

/* Classifies the operations since the last tick. */
static void sched_sample_workload(struct scheduler *s)
{
	struct db_stats *st = &s->db->stats;
	uint64_t gets = atomic_load_explicit(&st->gets, memory_order_relaxed);
	uint64_t puts = atomic_load_explicit(&st->puts, memory_order_relaxed) +
	                atomic_load_explicit(&st->deletes, memory_order_relaxed);
	/* Seeks, not iterators created: one iterator may serve a whole
	 * phase of seeks, moving to the newest state at each. */
	uint64_t seeks = atomic_load_explicit(&st->seeks, memory_order_relaxed);
	uint64_t g = gets - s->last_gets, p = puts - s->last_puts, sk = seeks - s->last_seeks;
	s->last_gets = gets;
	s->last_puts = puts;
	s->last_seeks = seeks;
	s->quiet_ticks = p ? 0 : s->quiet_ticks + (s->quiet_ticks < UINT32_MAX);
	uint64_t total = g + p + sk * 16; /* a scan reads many keys: weigh it */
	int w = SCHED_WORKLOAD_MIXED;
	if (total < 100)
		w = SCHED_WORKLOAD_IDLE;
	else if (p * 10 >= total * 7)
		w = SCHED_WORKLOAD_WRITE_HEAVY;
	else if (g * 10 >= total * 7)
		w = SCHED_WORKLOAD_READ_HEAVY;
	else if (sk * 16 * 10 >= total * 5)
		w = SCHED_WORKLOAD_SCAN_HEAVY;
	atomic_store_explicit(&s->stats.workload, w, memory_order_relaxed);
}

/* The policy's knobs, adapted to the workload: write-heavy lets L0 and the
 * tiered levels hold more runs (fewer, larger merges: less write
 * amplification); read- and scan-heavy merge runs sooner (fewer places for
 * a read to look). */
static struct policy_config sched_config(const struct scheduler *s)
{
	const cesium_options *o = s->db->opts;
	struct policy_config c = {
		.l0_trigger = o->l0_compaction_trigger,
		.tier_run_trigger = 4,
		.level_base = o->max_bytes_for_level_base,
		.level_multiplier = o->level_size_multiplier,
		.target_file_size = o->target_file_size,
		.target_file_multiplier = o->target_file_size_multiplier,
	};
	int w = atomic_load_explicit(&s->stats.workload, memory_order_relaxed);
	if (w == SCHED_WORKLOAD_WRITE_HEAVY) {
		/* Larger L0 merges, but the trigger stays halfway below the
		 * slowdown, so compaction starts before writers are slowed. */
		uint32_t l0 = c.l0_trigger * 2;
		uint32_t cap = (c.l0_trigger + o->l0_slowdown_trigger) / 2;
		c.l0_trigger = l0 < cap ? l0 : (cap > c.l0_trigger ? cap : c.l0_trigger);
		c.tier_run_trigger = 6;
	} else if (w == SCHED_WORKLOAD_READ_HEAVY || w == SCHED_WORKLOAD_SCAN_HEAVY) {
		c.l0_trigger = c.l0_trigger > 2 ? c.l0_trigger / 2 : c.l0_trigger;
		c.tier_run_trigger = 2;
	}
	/* Once writes stop (after a load), the flushes they left in L0 are
	 * folded into a small L1 rather than kept as runs of their own that
	 * every read, and every seek above all, would have to look in. Each
	 * fold rewrites L1, so L1's size bounds it. */
	if (s->quiet_ticks > 0)
		c.l0_fold_bytes = o->max_bytes_for_level_base;
	return c;
}

/* Publishes scores and the stall the writers must obey. */
static void sched_publish(struct scheduler *s)
{
	struct policy_config c = sched_config(s);
	double scores[VERSION_LEVELS];
	policy_scores(s->version, &c, &s->inflight, scores);
	for (int l = 0; l < VERSION_LEVELS; l++)
		atomic_store_explicit(&s->stats.score_milli[l], (uint64_t)(scores[l] * 1000.0),
		                      memory_order_relaxed);
	/* Jobs that could start now but wait for a slot or a back-off:
	 * what policy_pick would hand out with unlimited slots (cursors
	 * untouched), plus a cesium_compact waiting for the running jobs. */
	struct policy_job jobs[POLICY_MAX_JOBS];
	size_t njobs = 0;
	uint64_t queued = 0;
	if (s->manual) {
		queued = 1;
		for (struct compaction_job *j = s->running; j; j = j->next)
			if (j->manual)
				queued = 0;
	}
	if (policy_pick(s->version, &c, &s->inflight, s->l0_running, POLICY_MAX_JOBS, jobs, &njobs,
	                NULL) == 0) {
		queued += njobs;
		for (size_t i = 0; i < njobs; i++)
			policy_job_free(&jobs[i]);
	}
	atomic_store_explicit(&s->stats.jobs_queued, queued, memory_order_relaxed);
	atomic_store_explicit(&s->stats.inflight_files, s->inflight.count, memory_order_relaxed);
	/* After the in-flight set: whoever sees a job gone from jobs_running
	 * sees its inputs released too. */
	uint64_t running = 0;
	for (const struct compaction_job *j = s->running; j; j = j->next)
		running++;
	atomic_store_explicit(&s->stats.jobs_running, running, memory_order_release);
	const cesium_options *o = s->db->opts;
	size_t l0 = s->version->nfiles[0];
	int stall = l0 >= o->l0_stop_trigger       ? DB_STALL_STOP
	            : l0 >= o->l0_slowdown_trigger ? DB_STALL_SLOWDOWN
	                                           : DB_STALL_NONE;
	int err = 0;
	if (stall == DB_STALL_STOP && s->consecutive_failures >= SCHED_STOP_FAILURES) {
		/* Waiting would be waiting for the disk to mend: tell writers. */
		stall = DB_STALL_FAILING;
		err = s->last_failure;
		error_set(err, "%u compactions in a row failed, the last with: %s",
		          s->consecutive_failures, s->last_failure_msg);
	}
	db_set_stall(s->db, stall, err);
}

/* ---- jobs --------------------------------------------------------------- */

static struct compactor *sched_idle_compactor(struct scheduler *s, size_t *index)
{
	for (size_t i = 0; i < s->ncompactors; i++) {
		if (!s->compactor_busy[i]) {
			*index = i;
			return s->compactors[i];
		}
	}
	return NULL;
}

static size_t sched_free_slots(const struct scheduler *s)
{
	size_t n = 0;
	for (size_t i = 0; i < s->ncompactors; i++)
		n += !s->compactor_busy[i];
	return n;
}

static int sched_cmp_slices(const void *a, const void *b)
{
	return keys_compare_bytes(*(const keys_slice *)a, *(const keys_slice *)b);
}

/* Split points for a job's parts: the smallest nskeys of its inputs,
 * spread evenly. Fills up to max-1 points; returns how many. */
static size_t sched_split_points(const struct compaction_job *job, size_t max, keys_slice *pts)
{
	keys_slice *all = mem_calloc(job->ninputs ? job->ninputs : 1, sizeof(*all));
	if (!all)
		return 0;
	size_t n = 0;
	for (size_t i = 0; i < job->ninputs; i++)
		all[n++] = keys_ikey_nskey(
		    keys_slice_of(job->inputs[i]->smallest, job->inputs[i]->smallest_len));
	qsort(all, n, sizeof(*all), sched_cmp_slices);
	size_t u = 0; /* unique, and never the very first key (nothing below it) */
	for (size_t i = 1; i < n; i++)
		if (keys_compare_bytes(all[i], all[0]) > 0 &&
		    (u == 0 || keys_compare_bytes(all[i], all[u]) != 0))
			all[++u] = all[i];
	size_t k = 0;
	for (size_t p = 1; p < max && u > 0; p++) {
		size_t idx = 1 + (p * u) / max;
		if (idx > u)
			break;
		if (k > 0 && keys_compare_bytes(all[idx], pts[k - 1]) == 0)
			continue;
		pts[k++] = all[idx];
	}
	/* The points borrow the inputs' key memory, which outlives the job. */
	mem_free(all);
	return k;
}

static uint8_t *sched_dup(keys_slice k)
{
	uint8_t *p = mem_alloc(k.len ? k.len : 1);
	if (p && k.len)
		memcpy(p, k.data, k.len);
	return p;
}

static void sched_part_free(struct compaction_part *p)
{
	edit_free(&p->outputs);
	mem_free(p->lo);
	mem_free(p->hi);
	mem_free(p);
}

/* Sends the job's parts to idle compactors. 0 or CESIUM_ENOMEM (nothing
 * sent then). */
static int sched_dispatch(struct scheduler *s, struct compaction_job *job, size_t nparts)
{
	keys_slice pts[SCHED_MAX_COMPACTORS];
	size_t npts = nparts > 1 ? sched_split_points(job, nparts, pts) : 0;
	struct compaction_part *parts[SCHED_MAX_COMPACTORS] = { 0 };
	nparts = npts + 1;
	for (size_t i = 0; i < nparts; i++) {
		struct compaction_part *p = mem_zalloc(sizeof(*p));
		if (!p)
			goto nomem;
		parts[i] = p;
		p->msg.type = COMPACTOR_MSG_PART;
		p->msg.from = &s->actor;
		p->job = job;
		edit_init(&p->outputs);
		if (i > 0 && !(p->lo = sched_dup(pts[i - 1])))
			goto nomem;
		p->lo_len = i > 0 ? pts[i - 1].len : 0;
		if (i < npts && !(p->hi = sched_dup(pts[i])))
			goto nomem;
		p->hi_len = i < npts ? pts[i].len : 0;
	}
	job->nparts = nparts;
	for (size_t i = 0; i < nparts; i++) {
		size_t idx = 0;
		struct compactor *c = sched_idle_compactor(s, &idx);
		assert(c); /* the caller counted free slots */
		s->compactor_busy[idx] = true;
		parts[i]->compactor = c;
		parts[i]->start_ns = sched_now_ns();
		/* A compactor's mailbox holds more parts than it can ever
		 * be given (one at a time), so this send is never refused. */
		actor_send(&c->actor, &parts[i]->msg);
	}
	if (nparts > 1)
		atomic_fetch_add_explicit(&s->stats.subcompactions, nparts, memory_order_relaxed);
	return 0;
nomem:
	for (size_t i = 0; i < nparts; i++)
		if (parts[i])
			sched_part_free(parts[i]);
	return error_set(CESIUM_ENOMEM, "out of memory splitting a compaction");
}

static void sched_job_free(struct scheduler *s, struct compaction_job *job)
{
	for (size_t i = 0; i < job->ninputs; i++) {
		policy_inflight_remove(&s->inflight, job->inputs[i]->number);
		file_meta_unref(job->inputs[i], s->env);
	}
	mem_free(job->inputs);
	edit_free(&job->outputs);
	mem_free(job);
}

/* A trivial move's outputs: its inputs, unchanged, at the output level as
 * one new run (they share no key, so they form a sorted run). */
static int sched_move_outputs(struct compaction_job *job)
{
	int rc = 0;
	for (size_t i = 0; i < job->ninputs && !rc; i++) {
		struct file_desc d = file_meta_desc(job->inputs[i], job->output_level, job->run);
		rc = edit_add_file(&job->outputs, &d);
	}
	return rc;
}

static void sched_finish_job(struct scheduler *s, struct compaction_job *job);

/* Starts a job over `inputs` (borrowed from the version; referenced here)
 * with up to `slots` parts; a move (policy_is_move) runs no part: its edit
 * is queued at once. */
static int sched_start_job(struct scheduler *s, struct file_meta **inputs, size_t n, int level,
                           int output_level, bool bottommost, uint64_t target, bool manual,
                           size_t slots, bool move)
{
	struct compaction_job *job = mem_zalloc(sizeof(*job));
	struct file_meta **in = mem_calloc(n ? n : 1, sizeof(*in));
	if (!job || !in) {
		mem_free(job);
		mem_free(in);
		return error_set(CESIUM_ENOMEM, "out of memory for a compaction job");
	}
	job->sched = s;
	job->inputs = in;
	job->level = level;
	job->output_level = output_level;
	job->bottommost = bottommost;
	job->manual = manual;
	job->target_file_size = target;
	job->run = atomic_fetch_add(&s->db->next_file_number, 1);
	job->start_ns = sched_now_ns();
	edit_init(&job->outputs);
	uint64_t bytes = 0;
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		in[i] = file_meta_ref(inputs[i]);
		job->ninputs++;
		bytes += inputs[i]->file_size;
		if (!rc)
			rc = policy_inflight_add(&s->inflight, inputs[i]->number);
	}
	/* Split when the job is large enough for each part to write at least
	 * a couple of output segments. */
	size_t parts = (size_t)(bytes / (2 * (target ? target : 1)));
	if (parts > slots)
		parts = slots;
	if (parts < 1)
		parts = 1;
	if (!rc)
		rc = move ? sched_move_outputs(job) : sched_dispatch(s, job, parts);
	if (rc) {
		sched_job_free(s, job);
		return rc;
	}
	if (level == 0 && !manual) {
		s->l0_running = true;
		atomic_fetch_add_explicit(&s->stats.l0_jobs, 1, memory_order_relaxed);
	}
	job->next = s->running;
	s->running = job;
	if (move) {
		job->move = true;
		atomic_fetch_add_explicit(&s->stats.trivial_moves, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&s->stats.moved_bytes, bytes, memory_order_relaxed);
		sched_finish_job(s, job);
	}
	return 0;
}

/* Starts one job over every segment into level `out`, split across the
 * free compactors; bottommost, since nothing is left below it. */
static int sched_start_full(struct scheduler *s, int out, bool manual)
{
	struct version *v = s->version;
	size_t n = 0;
	for (int l = 0; l < VERSION_LEVELS; l++)
		n += v->nfiles[l];
	struct file_meta **all = mem_calloc(n ? n : 1, sizeof(*all));
	if (!all)
		return error_set(CESIUM_ENOMEM, "out of memory");
	size_t k = 0;
	for (int l = 0; l < VERSION_LEVELS; l++)
		for (size_t i = 0; i < v->nfiles[l]; i++)
			all[k++] = v->files[l][i];
	struct policy_config cfg = sched_config(s);
	int rc = sched_start_job(s, all, n, -1, out, true, policy_target_file_size(&cfg, out),
	                         manual, sched_free_slots(s), false);
	mem_free(all);
	return rc;
}

/* The full compaction of cesium_compact: everything into one sorted run at
 * the last non-empty level (at least L3, the first leveled one). */
static void sched_start_manual(struct scheduler *s)
{
	struct sched_compact *c = s->manual;
	struct version *v = s->version;
	size_t n = 0;
	int deepest = -1;
	for (int l = 0; l < VERSION_LEVELS; l++) {
		n += v->nfiles[l];
		if (v->nfiles[l])
			deepest = l;
	}
	int out = deepest < VERSION_TIERED_LEVELS ? VERSION_TIERED_LEVELS : deepest;
	bool done = n == 0 || (n == v->nfiles[out] && v->files[out][0]->tombstones == 0 && n == 1);
	if (!done) {
		int rc = sched_start_full(s, out, true);
		if (!rc)
			return; /* the waiter is woken when the job ends */
		waiter_wake_err(c->waiter, rc);
	} else {
		waiter_wake(c->waiter, 0);
	}
	s->manual = NULL;
	mem_free(c);
}

/*
 * Settling: once writes stop, a tree of several runs (a load leaves L0
 * segments, several L1 runs and the memtable's last flush) is merged into
 * one run, by one job over everything, because every run costs each seek
 * about the same however small it is. Runs count only if their key range
 * meets another's. Only for trees of at most the second leveled level's
 * target (the rewrite is the whole tree), only when a tenth or more of it
 * lies in such runs outside the largest, or there are SCHED_SETTLE_RUNS of
 * them (one small flush on a large run is L0 folding's business), and
 * never while writers are slowed by L0.
 * The output level is the deepest non-empty one, at least L2, and deeper
 * if a leveled level's target would be exceeded.
 */
struct sched_run {
	keys_slice lo, hi; /* nskeys */
	uint64_t bytes;
};

static bool sched_runs_overlap(const struct sched_run *a, const struct sched_run *b)
{
	return keys_compare_bytes(a->lo, b->hi) <= 0 && keys_compare_bytes(b->lo, a->hi) <= 0;
}

static int sched_settle_level(const struct scheduler *s)
{
	const struct version *v = s->version;
	const cesium_options *o = s->db->opts;
	if (s->quiet_ticks == 0 || v->nfiles[0] >= o->l0_slowdown_trigger)
		return -1;
	size_t nfiles = 0;
	for (int l = 0; l < VERSION_LEVELS; l++)
		nfiles += v->nfiles[l];
	struct sched_run *run = nfiles > 1 ? mem_alloc(nfiles * sizeof(*run)) : NULL;
	if (!run)
		return -1;
	uint64_t total = 0;
	size_t n = 0;
	int deepest = 0;
	for (int l = 0; l < VERSION_LEVELS; l++) {
		for (size_t i = 0; i < v->nfiles[l]; i++) {
			const struct file_meta *f = v->files[l][i];
			keys_slice lo =
			    keys_ikey_nskey(keys_slice_of(f->smallest, f->smallest_len));
			keys_slice hi = keys_ikey_nskey(keys_slice_of(f->largest, f->largest_len));
			bool same = i > 0 && (l >= VERSION_TIERED_LEVELS ||
			                      (l > 0 && f->run == v->files[l][i - 1]->run));
			if (!same)
				run[n++] = (struct sched_run){lo, hi, 0};
			struct sched_run *r = &run[n - 1];
			if (keys_compare_bytes(lo, r->lo) < 0)
				r->lo = lo;
			if (keys_compare_bytes(hi, r->hi) > 0)
				r->hi = hi;
			r->bytes += f->file_size;
			total += f->file_size;
			deepest = l;
		}
	}
	/* Only runs that share keys with another cost a read: the disjoint
	 * runs of a key-ordered load are not worth a rewrite. */
	size_t runs = 0;
	uint64_t bytes = 0, largest = 0;
	for (size_t a = 0; a < n; a++) {
		bool overlaps = false;
		for (size_t b = 0; b < n && !overlaps; b++)
			overlaps = b != a && sched_runs_overlap(&run[a], &run[b]);
		if (!overlaps)
			continue;
		runs++;
		bytes += run[a].bytes;
		if (run[a].bytes > largest)
			largest = run[a].bytes;
	}
	mem_free(run);
	struct policy_config cfg = sched_config(s);
	uint64_t cap = policy_level_target(&cfg, VERSION_TIERED_LEVELS + 1);
	if (runs < 2 || total > cap || ((bytes - largest) * 10 < total && runs < SCHED_SETTLE_RUNS))
		return -1;
	int out = deepest < 2 ? 2 : deepest;
	while (out >= VERSION_TIERED_LEVELS && out < VERSION_LEVELS - 1 &&
	       policy_level_target(&cfg, out) < total)
		out++;
	return out;
}

/* Whether the memtables are empty: the last writes have been flushed. */
static bool sched_memtables_empty(struct scheduler *s)
{
	struct db_state *st = db_state_acquire(s->db);
	bool empty = st->nsealed == 0 && memtable_entries(st->active) == 0;
	db_state_unref(st);
	return empty;
}

/* Fills free compactor slots with the most urgent non-conflicting jobs. */
static void sched_pick(struct scheduler *s)
{
	if (s->stopping)
		return;
	if (s->manual) {
		/* A full compaction takes every segment: it waits for the
		 * running jobs, and nothing new starts meanwhile. */
		if (!s->running)
			sched_start_manual(s);
		return;
	}
	if (sched_now_ns() < s->backoff_until_ns)
		return;
	int settle = sched_settle_level(s);
	if (settle >= 0) {
		/* Regular merges wait (a few ticks at most) for the running
		 * jobs and the flush of the last writes, which readers ask for
		 * a second after them, so that one merge takes everything. */
		if (!s->running && sched_memtables_empty(s) &&
		    sched_start_full(s, settle, false) == 0)
			return;
		if (s->quiet_ticks <= SCHED_SETTLE_WAIT_TICKS)
			return;
	}
	size_t free = sched_free_slots(s);
	if (free == 0)
		return;
	struct policy_config cfg = sched_config(s);
	struct policy_job jobs[POLICY_MAX_JOBS];
	size_t njobs = 0;
	size_t max = free < POLICY_MAX_JOBS ? free : POLICY_MAX_JOBS;
	if (policy_pick(s->version, &cfg, &s->inflight, s->l0_running, max, jobs, &njobs,
	                s->cursors) != 0)
		return;
	bool moved = false;
	for (size_t i = 0; i < njobs; i++) {
		struct policy_job *j = &jobs[i];
		/* The spare slots go to the first jobs as subcompactions. */
		size_t slots = sched_free_slots(s) - (njobs - i - 1);
		bool move = policy_is_move(j);
		if (move || sched_free_slots(s) > 0) {
			int rc = sched_start_job(
			    s, j->inputs, j->ninputs, j->level, j->output_level, j->bottommost,
			    j->target_file_size, false, slots ? slots : 1, move);
			moved |= move && rc == 0;
		}
		policy_job_free(j);
	}
	if (moved)
		sched_pump(s); /* the moves' edits are queued */
}

/* After any change of shape: new stall decision, new jobs. */
static void sched_after_change(struct scheduler *s)
{
	sched_pump(s);
	sched_pick(s);
	sched_publish(s);
}

/* The job is over (rc: how it ended; its edit, if any, has ended): counts
 * it, releases its inputs and slot in the running set, wakes a
 * cesium_compact waiting for it. The count comes before the stall
 * decision it feeds (a writer refused for failing compactions sees them
 * counted), so a watcher of the count must not take the decision as made:
 * the next sched_publish makes it, with jobs_running and the in-flight
 * set. */
static void sched_job_done(struct scheduler *s, struct compaction_job *job, int rc)
{
	cesium_db *db = s->db;
	atomic_fetch_add_explicit(&db->stats.compaction_bytes_read, job->bytes_read,
	                          memory_order_relaxed);
	atomic_fetch_add_explicit(&db->stats.compaction_bytes_written, job->bytes_written,
	                          memory_order_relaxed);
	if (rc) {
		atomic_fetch_add_explicit(&db->stats.compaction_failures, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&s->stats.jobs_failed, 1, memory_order_relaxed);
		/* The tick retries after the back-off. */
		s->consecutive_failures++;
		s->last_failure = rc;
		snprintf(s->last_failure_msg, sizeof(s->last_failure_msg), "%s", cesium_errmsg());
		uint64_t wait = sched_backoff_ns(s->consecutive_failures);
		/* Stopped writers wait for compaction alone: retry at least
		 * every second, so that they resume soon after the disk does. */
		if (s->version->nfiles[0] >= db->opts->l0_stop_trigger &&
		    wait > SCHED_STOPPED_BACKOFF_NS)
			wait = SCHED_STOPPED_BACKOFF_NS;
		s->backoff_until_ns = sched_now_ns() + wait;
	} else {
		atomic_fetch_add_explicit(&db->stats.compactions, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&s->stats.jobs_completed, 1, memory_order_relaxed);
		s->consecutive_failures = 0;
	}
	for (struct compaction_job **pp = &s->running; *pp; pp = &(*pp)->next) {
		if (*pp == job) {
			*pp = job->next;
			break;
		}
	}
	if (job->level == 0 && !job->manual)
		s->l0_running = false;
	struct sched_compact *manual = NULL;
	if (job->manual && s->manual) {
		manual = s->manual;
		s->manual = NULL;
	}
	sched_job_free(s, job);
	if (manual) {
		/* The caller reads the figures as soon as it wakes: publish
		 * the tree without this job (in-flight set included) first. */
		sched_publish(s);
		if (rc)
			waiter_wake_err(manual->waiter, rc);
		else
			waiter_wake(manual->waiter, 0);
		mem_free(manual);
	}
}

/* Every part of the job has ended: a failed job ends now; a successful
 * one queues its edit, and stays running (its inputs in flight) until the
 * edit is installed. */
static void sched_finish_job(struct scheduler *s, struct compaction_job *job)
{
	if (job->result) {
		error_set(job->result, "%s", job->errmsg);
		sched_job_done(s, job, job->result);
		return;
	}
	job->commit_next = NULL;
	job->commit_seq = ++s->edit_seq;
	if (s->commit_tail)
		s->commit_tail->commit_next = job;
	else
		s->commit_head = job;
	s->commit_tail = job;
}

static void sched_on_part_done(struct scheduler *s, struct compaction_part *p)
{
	struct compaction_job *job = p->job;
	/* Per part, so that parallel subcompactions count once each. */
	atomic_fetch_add_explicit(&s->stats.busy_ns, sched_now_ns() - p->start_ns,
	                          memory_order_relaxed);
	for (size_t i = 0; i < s->ncompactors; i++)
		if (s->compactors[i] == p->compactor)
			s->compactor_busy[i] = false;
	job->bytes_read += p->bytes_read;
	job->bytes_written += p->bytes_written;
	if (p->result && !job->result) {
		job->result = p->result;
		snprintf(job->errmsg, sizeof(job->errmsg), "%s", p->errmsg);
	}
	for (size_t i = 0; i < p->outputs.nadded && !job->result; i++) {
		struct file_desc d = p->outputs.added[i];
		d.level = job->output_level;
		d.run = job->run;
		int rc = edit_add_file(&job->outputs, &d);
		if (rc) {
			job->result = rc;
			snprintf(job->errmsg, sizeof(job->errmsg), "%s", cesium_errmsg());
		}
	}
	if (job->result) {
		/* This part's outputs are not going into any version. */
		db_remove_segments(s->db, &p->outputs, false);
	}
	sched_part_free(p);
	if (++job->parts_done == job->nparts) {
		if (job->result) {
			/* Parts that succeeded before another failed: their
			 * outputs went into job->outputs; remove them. */
			db_remove_segments(s->db, &job->outputs, false);
			edit_free(&job->outputs);
		}
		sched_finish_job(s, job);
	}
	sched_after_change(s);
}

/* ---- the actor ------------------------------------------------------- */

static void sched_tick_done(struct io_req *req, int res)
{
	struct scheduler *s = req->ctx;
	(void)res;
	s->tick_armed = false;
	if (s->stopping)
		return;
	sched_sample_workload(s);
	sched_after_change(s);
	s->tick_armed = true;
	reactor_timer(s->actor.home, &s->tick, SCHED_TICK_NS);
}

static void sched_cancel_done(struct io_req *req, int res)
{
	(void)res;
	mem_free(req);
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
		if (s->manual) {
			/* cesium_compact callers are serialized by the db, so at
			 * most one waits; refuse rather than queue without bound. */
			error_set(CESIUM_EBUSY, "a full compaction is already waiting");
			waiter_wake_err(c->waiter, CESIUM_EBUSY);
			mem_free(c);
			break;
		}
		s->manual = c;
		sched_after_change(s);
		break;
	}
	case SCHED_MSG_PART_DONE:
		sched_on_part_done(s, (struct compaction_part *)msg);
		break;
	case SCHED_MSG_START:
		s->tick.done = sched_tick_done;
		s->tick.ctx = s;
		s->tick_armed = true;
		reactor_timer(self->home, &s->tick, SCHED_TICK_NS);
		sched_after_change(s);
		break;
	default:
		break;
	}
}

/* Called during shutdown: done once no job runs; cancels the tick. */
static bool sched_idle(struct actor *self)
{
	struct scheduler *s = (struct scheduler *)self;
	if (!s->stopping) {
		s->stopping = true;
		if (s->tick_armed) {
			struct io_req *cancel = mem_zalloc(sizeof(*cancel));
			if (cancel) {
				cancel->done = sched_cancel_done;
				io_ring_cancel_timeout(reactor_ring(self->home), cancel, &s->tick);
				io_ring_submit(reactor_ring(self->home));
			}
		}
	}
	/* Queued job commits keep their jobs on the running list; an edit in
	 * flight (a flush's, say) must end before the reactor may stop. */
	return s->running == NULL && !s->tick_armed && !s->edit.active;
}

int scheduler_set_compactors(struct scheduler *s, struct compactor **c, size_t n)
{
	if (n > SCHED_MAX_COMPACTORS)
		n = SCHED_MAX_COMPACTORS;
	s->compactor_busy = mem_calloc(n ? n : 1, sizeof(bool));
	if (!s->compactor_busy)
		return error_set(CESIUM_ENOMEM, "out of memory");
	s->compactors = c;
	s->ncompactors = n;
	return 0;
}

int scheduler_start(struct scheduler *s)
{
	s->start_msg.type = SCHED_MSG_START;
	return actor_send(&s->actor, &s->start_msg);
}

int scheduler_init(struct scheduler *s, cesium_db *db, struct version *v, int manifest_fd,
                   const char *manifest_path, uint64_t manifest_size)
{
	memset(s, 0, sizeof(*s));
	s->dir_fd = -1;
	s->manifest_fd = -1;
	int rc = policy_inflight_init(&s->inflight);
	if (rc) {
		io_close(manifest_fd);
		return rc;
	}
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
	atomic_store(&s->stats.start_ns, sched_now_ns());
	s->dir_fd = io_open(db->path, O_RDONLY | O_DIRECTORY, 0);
	if (s->dir_fd < 0)
		return error_set(error_from_errno(s->dir_fd), "%s: cannot open the directory",
		                 db->path);
	return 0;
}

void scheduler_fini(struct scheduler *s)
{
	/* Flush results never installed: their WALs still hold the data,
	 * which the next open replays. */
	while (s->flush_head) {
		struct sched_flushed *f = s->flush_head;
		s->flush_head = f->next;
		sched_flushed_free(f);
	}
	s->flush_tail = NULL;
	/* Never in flight once the reactor stopped; the queued job commits
	 * are on the running list, freed with it. */
	if (s->edit.nv)
		version_unref(s->edit.nv);
	s->edit.nv = NULL;
	mem_free(s->edit.rec);
	s->edit.rec = NULL;
	edit_free(&s->edit.e);
	s->commit_head = s->commit_tail = NULL;
	while (s->running) {
		struct compaction_job *j = s->running;
		s->running = j->next;
		sched_job_free(s, j);
	}
	if (s->version)
		version_unref(s->version);
	s->version = NULL;
	io_close(s->manifest_fd);
	s->manifest_fd = -1;
	io_close(s->dir_fd);
	s->dir_fd = -1;
	mem_free(s->manifest_path);
	s->manifest_path = NULL;
	mem_free(s->compactor_busy);
	s->compactor_busy = NULL;
	policy_inflight_free(&s->inflight);
	policy_cursor_free(s->cursors);
}
