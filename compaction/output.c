#include "output.h"

#include <fcntl.h>
#include <string.h>

#include "error.h"
#include "file.h"
#include "mem.h"

struct output_write {
	struct io_req req;
	struct output *out;
	void *data;
};

static int output_fail(struct output *o, int rc)
{
	if (rc && o->error == 0)
		o->error = rc;
	return rc;
}

static int output_sync_start(struct output *o);

/* After each completion in completion-driven mode: issues the sync once the
 * last write of a sealed segment has landed, then tells the owner. Last
 * thing done with o: the owner may close it. */
static void output_completed(struct output *o)
{
	if (!o->notify)
		return;
	if (o->sealed && !o->syncing && o->inflight == 0 && o->error == 0)
		output_sync_start(o);
	o->notify(o, o->notify_arg);
}

static void output_write_done(struct io_req *req, int res)
{
	struct output_write *w = (struct output_write *)req;
	struct output *o = w->out;
	o->inflight--;
	if (res < 0 && o->error == 0)
		o->error = error_set(error_from_errno(res), "%s: write failed: %s", o->path,
		                     res == -28 ? "disk full" : "I/O error");
	mem_free(w->data);
	mem_free(w);
	output_completed(o);
}

static void output_sync_done(struct io_req *req, int res)
{
	struct output_write *w = (struct output_write *)req;
	struct output *o = w->out;
	o->inflight--;
	if (res < 0 && o->error == 0)
		o->error = error_set(error_from_errno(res), "%s: fdatasync failed", o->path);
	if (res >= 0)
		o->synced = true;
	mem_free(w);
	output_completed(o);
}

/* The sync goes out only after every write completed: unlinked requests
 * on a ring may run in any order. */
static int output_sync_start(struct output *o)
{
	struct output_write *w = mem_zalloc(sizeof(*w));
	if (!w)
		return output_fail(o, error_set(CESIUM_ENOMEM, "%s: out of memory", o->path));
	w->req.done = output_sync_done;
	w->out = o;
	o->syncing = true;
	o->inflight++;
	io_ring_fdatasync(o->ring, &w->req, o->fd);
	io_ring_submit(o->ring);
	return 0;
}

static int output_wait(struct output *o, unsigned max_inflight)
{
	while (o->inflight > max_inflight) {
		int rc = io_ring_poll(o->ring, true);
		if (rc < 0 && rc != -4 /* EINTR */)
			return output_fail(o, error_set(CESIUM_EIO,
			                                "%s: waiting for writes: ring error %d",
			                                o->path, rc));
	}
	return o->error;
}

static int output_submit(struct output *o, size_t min_bytes)
{
	struct seg_out chunk;
	while (seg_writer_take(o->writer, min_bytes, &chunk)) {
		struct output_write *w = mem_alloc(sizeof(*w));
		if (!w) {
			mem_free(chunk.data);
			return output_fail(o,
			                   error_set(CESIUM_ENOMEM, "%s: out of memory", o->path));
		}
		memset(&w->req, 0, sizeof(w->req));
		w->req.done = output_write_done;
		w->out = o;
		w->data = chunk.data;
		o->inflight++;
		o->bytes_written += chunk.len;
		io_ring_write(o->ring, &w->req, o->fd, chunk.data, chunk.len, chunk.off);
		io_ring_submit(o->ring);
		if (!o->notify) {
			int rc = output_wait(o, OUTPUT_WINDOW);
			if (rc)
				return rc;
		}
	}
	return o->error;
}

int output_open(struct output *o, struct io_ring *ring, const char *path, uint64_t number,
                const struct seg_writer_opts *wo)
{
	memset(o, 0, sizeof(*o));
	o->ring = ring;
	o->number = number;
	o->fd = -1;
	o->path = mem_alloc(strlen(path) + 1);
	if (!o->path)
		return error_set(CESIUM_ENOMEM, "out of memory");
	strcpy(o->path, path);
	int rc = seg_writer_new(wo, &o->writer);
	if (rc)
		goto fail;
	o->fd = io_open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
	if (o->fd < 0) {
		rc = error_set(error_from_errno(o->fd), "%s: cannot create segment", path);
		goto fail;
	}
	return 0;
fail:
	seg_writer_free(o->writer);
	mem_free(o->path);
	memset(o, 0, sizeof(*o));
	o->fd = -1;
	return rc;
}

void output_set_notify(struct output *o, output_notify_fn fn, void *arg)
{
	o->notify = fn;
	o->notify_arg = arg;
}

/* After an add that returned rc: submits every full chunk. */
static int output_added(struct output *o, int rc)
{
	if (rc)
		return output_fail(o, rc);
	return output_submit(o, OUTPUT_CHUNK);
}

int output_add(struct output *o, keys_slice ikey, keys_slice value)
{
	if (o->error)
		return o->error;
	return output_added(o, seg_writer_add(o->writer, ikey, value));
}

int output_add_ref(struct output *o, keys_slice ikey, const struct seg_log_ref *ref)
{
	if (o->error)
		return o->error;
	return output_added(o, seg_writer_add_ref(o->writer, ikey, ref));
}

/* Ends the segment and submits what is left of it, footer included. */
static int output_seal(struct output *o)
{
	int rc = o->error;
	if (!rc)
		rc = output_fail(o, seg_writer_finish(o->writer));
	o->sealed = true;
	if (!rc)
		rc = output_submit(o, 0);
	return rc;
}

int output_finish_start(struct output *o)
{
	int rc = output_seal(o);
	/* Normally the footer's write is still in flight and its completion
	 * issues the sync; if everything already landed, issue it here. */
	if (!rc && o->inflight == 0 && !o->syncing)
		rc = output_sync_start(o);
	return rc;
}

int output_finish(struct output *o)
{
	int rc = output_seal(o);
	if (!rc)
		rc = output_wait(o, 0);
	if (!rc)
		rc = output_sync_start(o);
	if (!rc)
		rc = output_wait(o, 0);
	return rc;
}

void output_close(struct output *o, bool keep)
{
	if (o->inflight)
		output_wait(o, 0);
	seg_writer_free(o->writer);
	o->writer = NULL;
	if (o->fd >= 0)
		io_close(o->fd);
	o->fd = -1;
	if (!keep && o->path)
		io_unlink(o->path);
	mem_free(o->path);
	o->path = NULL;
}
