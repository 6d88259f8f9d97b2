#include "wal.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "error.h"
#include "file.h"
#include "log.h"
#include "mem.h"
#include "prefault.h"

/*
 * The log's mapping: an address range reserved at creation whose start maps
 * the file, each growth mapped in place behind it, so that a record never
 * moves. Memtables keep pointers to values in it (wal_hold), so it is
 * unmapped only once the log and every holder have let go.
 */
struct wal_map {
	_Atomic uint32_t refs;
	uint8_t *base;
	size_t reserved;
	/* The writer's `released`, for its prefault requests (which hold the
	 * mapping, so they may read it after the log is gone). */
	_Atomic uint64_t released;
};

/* Address space reserved per log: far more than a log reaches (its
 * memtable is sealed at memtable_size, at most 4 GiB, counting the values
 * it holds in the log), and free until mapped. */
#define WAL_ADDRESS_RESERVE (UINT64_C(16) << 30)
#define WAL_ADDRESS_RESERVE_MIN (UINT64_C(1) << 30)

struct wal {
	int fd;
	char *path;
	struct wal_map *m;
	uint8_t *map;    /* m->base */
	size_t map_size; /* bytes mapped == bytes reserved in the file */
	size_t chunk;    /* first reservation, least growth (the prealloc size) */
	/* Offset of the next record. Atomic because wal_size readers run on
	 * other threads; the writer publishes with release after the record
	 * bytes are in place, readers load with acquire. */
	_Atomic uint64_t used;
	uint64_t synced; /* offset known durable; syncers are serialized */
	/* The file header's slots, rewritten by each sync (syncers only). */
	uint8_t header[LOG_FILE_SLOT_B + LOG_FILE_SLOT_SIZE];
	bool slot_ok[2];                /* slot A, B holds a whole watermark (syncers only) */
	uint64_t prev_number, prev_end; /* the header's link, fixed */
	/* Writer only: below this offset the mapping's pages were released
	 * (wal_release_behind). */
	uint64_t released;
	/* Writer only: below this offset the mapping's pages were populated
	 * writable ahead of the appends (wal_populate_ahead); false once the
	 * kernel refused. */
	uint64_t populated;
	bool populate;
	/* Set: the step after the current one is populated by this actor
	 * while the writer appends (wal_set_prefaulter). */
	struct prefault_actor *prefaulter;
	struct prefault_req *pf;    /* allocated with the first prefaulter */
	struct prefault_req *unmap; /* the same, for wal_release_behind */
	/* An fdatasync failed; set by a syncing thread while the writer may
	 * be appending. */
	atomic_bool poisoned;
};

void *wal_hold(wal *w)
{
	atomic_fetch_add_explicit(&w->m->refs, 1, memory_order_relaxed);
	return w->m;
}

void wal_release(void *hold)
{
	struct wal_map *m = hold;
	if (m && atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1) {
		munmap(m->base, m->reserved);
		mem_free(m);
	}
}

uint64_t wal_hold_offset(const void *hold, const void *p)
{
	const struct wal_map *m = hold;
	assert((const uint8_t *)p >= m->base && (const uint8_t *)p < m->base + m->reserved);
	return (uint64_t)((const uint8_t *)p - m->base);
}

/* A new mapping holding the file's first `size` bytes. */
static int wal_map_new(wal *w, size_t size)
{
	struct wal_map *m = mem_zalloc(sizeof(*m));
	if (!m)
		return error_set(CESIUM_ENOMEM, "log %s: out of memory", w->path);
	/* Under an address-space limit (ulimit -v), a quarter at a time less,
	 * down to WAL_ADDRESS_RESERVE_MIN: enough for any log of the default
	 * memtable_size; a log that outgrows it fails its append, never
	 * moves. */
	void *base = MAP_FAILED;
	int e = 0;
	for (m->reserved = WAL_ADDRESS_RESERVE;; m->reserved /= 4) {
		base = mmap(NULL, m->reserved, PROT_NONE,
		            MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		e = errno;
		if (base != MAP_FAILED || e != ENOMEM ||
		    m->reserved / 4 < WAL_ADDRESS_RESERVE_MIN || m->reserved / 4 < size)
			break;
	}
	if (base == MAP_FAILED) {
		size_t tried = m->reserved;
		mem_free(m);
		return error_set(error_from_errno(-e),
		                 "log %s: cannot reserve %zu bytes of addresses: %s", w->path,
		                 tried, strerror(e));
	}
	m->base = base;
	atomic_init(&m->refs, 1);
	atomic_init(&m->released, 0);
	w->m = m;
	w->map = base;
	if (mmap(base, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, w->fd, 0) ==
	    MAP_FAILED)
		return error_set(error_from_errno(-errno), "log %s: mmap of %zu bytes failed: %s",
		                 w->path, size, strerror(errno));
	w->map_size = size;
	return 0;
}

static size_t wal_page_round(size_t n)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	return (n + page - 1) / page * page;
}

/* The directory holding path ("." for a bare name), in a new string. */
static char *wal_parent_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t n = slash ? (size_t)(slash - path) : 1;
	if (slash && n == 0)
		n = 1; /* "/name": the root */
	char *d = mem_alloc(n + 1);
	if (!d)
		return NULL;
	if (slash)
		memcpy(d, path, n);
	else
		d[0] = '.';
	d[n] = '\0';
	return d;
}

int wal_create(const char *path, size_t prealloc, wal **out)
{
	return wal_create_after(path, prealloc, 0, 0, out);
}

int wal_create_after(const char *path, size_t prealloc, uint64_t prev_number, uint64_t prev_end,
                     wal **out)
{
	int rc;
	char *dir = NULL;
	bool created = false;
	wal *w = mem_zalloc(sizeof(*w));
	if (!w)
		return error_set(CESIUM_ENOMEM, "log %s: out of memory", path);
	w->fd = -1;
	size_t plen = strlen(path);
	w->path = mem_alloc(plen + 1);
	dir = wal_parent_dir(path);
	if (!w->path || !dir) {
		rc = error_set(CESIUM_ENOMEM, "log %s: out of memory", path);
		goto out;
	}
	memcpy(w->path, path, plen + 1);
	w->prev_number = prev_number;
	w->prev_end = prev_end;
	w->chunk = wal_page_round(prealloc ? prealloc : WAL_DEFAULT_PREALLOC);

	w->fd = io_open(path, O_RDWR | O_CREAT | O_EXCL, 0644);
	if (w->fd < 0) {
		rc = error_set(error_from_errno(w->fd), "log %s: cannot create: %s", path,
		               strerror(-w->fd));
		goto out;
	}
	created = true;
	/* Real blocks, not a sparse hole: stores through the mapping could
	 * otherwise hit a full disk as SIGBUS. */
	int e = io_fallocate(w->fd, 0, w->chunk);
	if (e < 0) {
		rc = error_set(error_from_errno(e), "log %s: cannot reserve %zu bytes: %s", path,
		               w->chunk, strerror(-e));
		goto out;
	}
	if ((rc = wal_map_new(w, w->chunk)))
		goto out;
	/* The header must be durable before any record is: the reader takes
	 * a file whose both slots are damaged for an empty log only when no
	 * record follows. */
	atomic_store_explicit(&w->used, LOG_FILE_HEADER_SIZE, memory_order_relaxed);
	w->synced = LOG_FILE_HEADER_SIZE;
	w->released = LOG_FILE_HEADER_SIZE;
	w->populated = 0;
	w->populate = true;
	log_file_slot_encode(w->map + LOG_FILE_SLOT_A, w->synced, prev_number, prev_end);
	log_file_slot_encode(w->map + LOG_FILE_SLOT_B, w->synced, prev_number, prev_end);
	w->slot_ok[0] = w->slot_ok[1] = true;
	e = io_fsync(w->fd);
	if (e == 0)
		e = io_fsync_dir(dir);
	if (e < 0) {
		rc = error_set(error_from_errno(e), "log %s: cannot make the new file durable: %s",
		               path, strerror(-e));
		goto out;
	}
	*out = w;
	w = NULL;
	rc = 0;
out:
	if (w) {
		wal_release(w->m);
		io_close(w->fd);
		if (created)
			io_unlink(path);
		mem_free(w->path);
		mem_free(w);
	}
	mem_free(dir);
	return rc;
}

static int wal_poisoned_error(const wal *w)
{
	return error_set(CESIUM_EIO,
	                 "log %s: an earlier fdatasync failed; data may not be durable, "
	                 "reopen the database",
	                 w->path);
}

#define WAL_MAX_GROWTH (1u << 30)

/* Makes room for need more bytes after used: reserve disk first, then
 * widen the mapping, so the mapping never covers unreserved blocks. */
static int wal_grow(wal *w, size_t need)
{
	/* Each growth at least doubles the file, so a log reaches any size in
	 * a few steps. */
	size_t step = w->chunk > w->map_size ? w->chunk : w->map_size;
	if (step > WAL_MAX_GROWTH)
		step = WAL_MAX_GROWTH;
	if (need > step)
		step = wal_page_round(need);
	if (step > w->m->reserved - w->map_size)
		return error_set(CESIUM_ENOMEM,
		                 "log %s: would grow past its %zu bytes of addresses", w->path,
		                 w->m->reserved);
	size_t new_size = w->map_size + step;
	int e = io_fallocate(w->fd, w->map_size, step);
	if (e < 0)
		return error_set(error_from_errno(e), "log %s: cannot grow to %zu bytes: %s",
		                 w->path, new_size, strerror(-e));
	/* In place, behind what is mapped: records never move. */
	if (mmap(w->map + w->map_size, step, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, w->fd,
	         (off_t)w->map_size) == MAP_FAILED)
		return error_set(error_from_errno(-errno), "log %s: mmap to %zu bytes failed: %s",
		                 w->path, new_size, strerror(errno));
	w->map_size = new_size;
	return 0;
}

/* Pages populated per step ahead of the appends. */
#define WAL_POPULATE_STEP (1u << 20)

/*
 * Makes the mapping's pages present and writable ahead of the appends, a
 * WAL_POPULATE_STEP at a time: otherwise every fresh page of the log costs
 * the appender a page fault that reads the page in and then a second one
 * that makes it writable (ext4's page_mkwrite), 40 % of a writer's time
 * with 4 KiB values. The step holding `end` is populated here if nobody
 * has asked for it yet; with a prefaulter, the step after it is asked of
 * the actor, so that the kernel's worker takes those faults on another
 * CPU. Advisory: on failure (an older kernel, or memory short) the stores
 * fault the pages in as before.
 */
static void wal_populate_ahead(wal *w, uint64_t end)
{
	if (!w->populate)
		return;
	if (end > w->populated) {
		uint64_t from = w->populated;
		uint64_t to = (end + WAL_POPULATE_STEP - 1) / WAL_POPULATE_STEP * WAL_POPULATE_STEP;
		if (to > w->map_size)
			to = w->map_size;
		if (to > from && prefault_now(w->map + from, (size_t)(to - from)) == -EINVAL) {
			w->populate = false;
			return;
		}
		w->populated = to;
	}
	if (w->prefaulter && !prefault_busy(w->pf) && w->populated - end < WAL_POPULATE_STEP) {
		/* At the end of the mapping, grow it now rather than when an
		 * append needs it, so that the prefaulter goes on ahead. If
		 * this fails, the append that needs the room grows, and
		 * reports the failure. */
		if (w->populated == w->map_size && wal_grow(w, WAL_POPULATE_STEP) != 0)
			return;
		uint64_t to = w->populated + WAL_POPULATE_STEP;
		if (to > w->map_size)
			to = w->map_size;
		if (prefault_send(w->prefaulter, w->pf, w->map + w->populated,
		                  (size_t)(to - w->populated)) == 0)
			w->populated = to;
	}
}

void wal_set_prefaulter(wal *w, struct prefault_actor *p)
{
	if (p && !w->pf && (w->pf = prefault_req_new())) {
		prefault_req_follow(w->pf, w->m->base, &w->m->released);
		if (!(w->unmap = prefault_req_new())) {
			prefault_req_release(w->pf, NULL, NULL);
			w->pf = NULL;
		}
	}
	w->prefaulter = w->pf ? p : NULL; /* without memory, no prefaulting */
}

int wal_reserve(wal *w, size_t len, uint8_t **payload)
{
	if (w->poisoned)
		return wal_poisoned_error(w);
	if (len > LOG_MAX_PAYLOAD)
		return error_set(CESIUM_EINVAL, "log %s: record of %zu bytes exceeds the %u limit",
		                 w->path, len, LOG_MAX_PAYLOAD);
	uint64_t used = atomic_load_explicit(&w->used, memory_order_relaxed);
	size_t need = log_record_size(len);
	if (w->map_size - used < need) {
		int rc = wal_grow(w, need);
		if (rc < 0)
			return rc;
	}
	wal_populate_ahead(w, used + need);
	*payload = w->map + used + LOG_HEADER_SIZE;
	return 0;
}

/*
 * Unmaps the pages of records already written (the data stays in the page
 * cache, dirty until writeback or a sync): without this every byte of the
 * log would stay in the process's RSS until the log is closed, up to
 * memtable_size × (1 + max_memtables) of it. And a page still mapped when
 * writeback cleans it costs a TLB shootdown to write-protect it: ingest4k
 * ran at 110k ops/s releasing nothing, 165–198k every 4 MiB and 210–222k
 * every MiB (256 KiB: more calls, no gain, a worse p99). Once per
 * WAL_RELEASE_STEP.
 */
#define WAL_RELEASE_STEP (1u << 20)

static void wal_release_behind(wal *w, uint64_t used)
{
	uint64_t end = used / WAL_RELEASE_STEP * WAL_RELEASE_STEP;
	if (end <= w->released)
		return;
	/* On the prefaulter's worker when it is free (unmapping a MiB was
	 * a twentieth of a 4 KiB-value writer's time), else here. Advisory:
	 * if it fails, the pages merely stay mapped. */
	void *from = w->map + w->released;
	size_t len = (size_t)(end - w->released);
	if (!w->prefaulter || prefault_busy(w->unmap) ||
	    prefault_send_release(w->prefaulter, w->unmap, from, len) != 0)
		(void)madvise(from, len, MADV_DONTNEED);
	w->released = end;
	atomic_store_explicit(&w->m->released, end, memory_order_relaxed);
}

void wal_seal(wal *w)
{
	/* The whole mapping, not only what wal_release_behind left: a
	 * prefault request that ran late may have populated pages behind the
	 * writer again. Advisory, as there. */
	(void)madvise(w->map, w->map_size, MADV_DONTNEED);
	w->released = w->map_size;
	atomic_store_explicit(&w->m->released, w->released, memory_order_relaxed);
}

void wal_commit(wal *w, size_t len)
{
	uint64_t used = atomic_load_explicit(&w->used, memory_order_relaxed);
	/* The header goes last: until it is written the record reads as the
	 * zeroed end of the log, so a crash mid-copy leaves nothing torn. */
	log_seal(w->map + used, len);
	used += log_record_size(len);
	atomic_store_explicit(&w->used, used, memory_order_release);
	if (used - w->released >= 2 * WAL_RELEASE_STEP)
		wal_release_behind(w, used - WAL_RELEASE_STEP);
}

int wal_append(wal *w, const void *payload, size_t len)
{
	uint8_t *p;
	int rc = wal_reserve(w, len, &p);
	if (rc)
		return rc;
	if (len)
		memcpy(p, payload, len);
	wal_commit(w, len);
	return 0;
}

/*
 * Records in the file header that everything below `synced` is durable.
 * Called only after the fdatasync covering it returned, so every value the
 * header ever holds, on disk or in the page cache, is a lower bound of what
 * is durable; the next fdatasync (or writeback) carries it to disk.
 * Written with pwrite, not through the mapping: the writer may be moving
 * the mapping (mremap) while a syncer runs. One slot at a time, and only
 * while the other is whole, so that neither an interrupted write nor two
 * failed ones can damage both.
 */
static void wal_store_watermark(wal *w, uint64_t synced)
{
	/* A failed write leaves the older, still true, watermark: it only
	 * narrows what recovery can call corruption, so it is not an error
	 * of the sync, whose data is durable. But a failed or short write may
	 * leave its slot torn, so a slot is rewritten only while the other
	 * one is whole, the torn one first: two failures in a row can never
	 * leave the log without a valid header. */
	static const size_t off[2] = {LOG_FILE_SLOT_A, LOG_FILE_SLOT_B};
	int first = w->slot_ok[0] ? (w->slot_ok[1] ? 0 : 1) : 0;
	for (int k = 0; k < 2; k++) {
		int s = k == 0 ? first : 1 - first;
		if (!w->slot_ok[1 - s])
			break;
		log_file_slot_encode(w->header + off[s], synced, w->prev_number, w->prev_end);
		w->slot_ok[s] =
		    io_pwrite_full(w->fd, w->header + off[s], LOG_FILE_SLOT_SIZE, off[s]) == 0;
		if (!w->slot_ok[s])
			break;
	}
}

int wal_sync(wal *w)
{
	if (w->poisoned)
		return wal_poisoned_error(w);
	uint64_t used = atomic_load_explicit(&w->used, memory_order_relaxed);
	if (used == w->synced)
		return 0;
	/* fdatasync alone suffices: pages dirtied through a MAP_SHARED mapping
	 * are the file's page-cache pages, and Linux writeback (which
	 * fdatasync waits for) finds them through the mapping's dirty bits.
	 * msync(MS_ASYNC) is a no-op on Linux and msync(MS_SYNC) does the
	 * same fsync of the range, so neither is called. */
	int e = io_fdatasync(w->fd);
	if (e < 0) {
		w->poisoned = true;
		return error_set(error_from_errno(e),
		                 "log %s: fdatasync failed: %s; the log is now unusable, "
		                 "reopen the database",
		                 w->path, strerror(-e));
	}
	w->synced = used;
	wal_store_watermark(w, used);
	return 0;
}

int wal_close(wal *w, bool truncate)
{
	if (!w)
		return 0;
	int rc = 0;
	uint64_t used = atomic_load_explicit(&w->used, memory_order_relaxed);
	/* The log's hold on the mapping goes with the prefault requests: at
	 * once, or when the kernel's worker is done with the range (this may
	 * run on the reactor that would report that, so it must not wait).
	 * Memtables holding values in it keep it mapped after that. */
	prefault_req_release(w->unmap, wal_release, wal_hold(w)); /* a hold of its own */
	prefault_req_release(w->pf, wal_release, w->m);
	if (truncate) {
		if (w->poisoned) {
			rc = wal_poisoned_error(w);
		} else {
			/* The watermark stays where the last sync put it: a
			 * closed log cut short past it still reads as a torn
			 * tail, as it did before the watermark existed. */
			int e = io_ftruncate(w->fd, used);
			if (e == 0)
				e = io_fsync(w->fd);
			if (e < 0)
				rc = error_set(error_from_errno(e),
				               "log %s: cannot truncate to %llu bytes and sync: %s",
				               w->path, (unsigned long long)used, strerror(-e));
		}
	}
	io_close(w->fd);
	mem_free(w->path);
	mem_free(w);
	return rc;
}

int wal_check_durable(const wal *w)
{
	return atomic_load(&w->poisoned) ? wal_poisoned_error(w) : 0;
}

uint64_t wal_size(const wal *w)
{
	return atomic_load_explicit(&w->used, memory_order_acquire);
}

const char *wal_path(const wal *w)
{
	return w->path;
}

/* The link in the header of the log at path (0, 0 for none). */
static int wal_read_link(const char *path, uint64_t *prev_number, uint64_t *prev_end)
{
	uint8_t head[LOG_FILE_SLOT_B + LOG_FILE_SLOT_SIZE];
	*prev_number = *prev_end = 0;
	int fd = io_open(path, O_RDONLY, 0);
	if (fd < 0)
		return error_set(error_from_errno(fd), "%s: cannot open: %s", path, strerror(-fd));
	ssize_t n = io_pread_full(fd, head, sizeof(head), 0);
	io_close(fd);
	if (n < 0)
		return error_set(error_from_errno((int)n), "%s: read failed: %s", path,
		                 strerror((int)-n));
	struct log_reader r;
	log_reader_init(&r, head, (size_t)n, path);
	if (r.state < 0)
		return r.state;
	*prev_number = r.prev_number;
	*prev_end = r.prev_end;
	return 0;
}

/* The logs a later log may link to: the last one replayed that held
 * records, and every empty log replayed after it. An empty log holds
 * nothing a successor could have lost: a seal whose new log failed after
 * creating the file, and whose cleanup unlink failed too, leaves such an
 * orphan linked to the current log, and the next seal links its own log
 * to that same current log. */
#define WAL_CHAIN_TIPS 16

struct wal_tip {
	uint64_t number, end;
};

static bool wal_chain_links(const struct wal_tip *tips, size_t n, uint64_t pn, uint64_t pe)
{
	for (size_t i = 0; i < n; i++)
		if (tips[i].number == pn && pe <= tips[i].end)
			return true;
	return false;
}

int wal_replay_chain(const char *const *paths, const uint64_t *numbers, size_t n,
                     int (*fn)(void *ctx, keys_slice payload), void *ctx,
                     struct wal_chain_stats *st)
{
	struct wal_chain_stats local = {0};
	int rc = 0;
	struct wal_tip tips[WAL_CHAIN_TIPS];
	size_t ntips = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t pn, pe;
		rc = wal_read_link(paths[i], &pn, &pe);
		if (rc)
			goto out;
		/* A log linked to another than the last one replayed (empty
		 * logs aside), or to more of it than replay found, follows
		 * records that were lost; it was therefore never synced (a
		 * sync covers the older logs first), and replaying it would
		 * break the prefix. An unlinked log (version 1, or a first
		 * log) is replayed. */
		if (ntips > 0 && pn != 0 && !wal_chain_links(tips, ntips, pn, pe)) {
			local.skipped++;
			continue;
		}
		struct wal_replay_stats ws;
		rc = wal_replay(paths[i], fn, ctx, &ws);
		if (rc < 0 && !strstr(cesium_errmsg(), paths[i])) {
			/* fn's own error does not know which log it was in. */
			char msg[ERROR_MSG_MAX];
			snprintf(msg, sizeof(msg), "%s", cesium_errmsg());
			rc = error_set(rc, "%s: %s", paths[i], msg);
		}
		if (rc)
			goto out;
		local.replayed++;
		local.records += ws.records;
		local.last_number = numbers[i];
		local.last_end = ws.valid_end;
		struct wal_tip tip = {numbers[i], ws.valid_end};
		if (ws.records > 0)
			ntips = 0;
		if (ntips == WAL_CHAIN_TIPS)
			ntips--; /* many empty logs in a row: keep the latest */
		tips[ntips++] = tip;
	}
out:
	if (st)
		*st = local;
	return rc;
}

int wal_replay(const char *path, int (*fn)(void *ctx, keys_slice payload), void *ctx,
               struct wal_replay_stats *st)
{
	uint8_t *buf = NULL;
	size_t size = 0;
	struct wal_replay_stats local = {0};
	int rc = log_read_file(path, &buf, &size);
	if (rc < 0)
		goto out;
	local.file_size = size;
	struct log_reader r;
	log_reader_init(&r, buf, size, path);
	keys_slice p;
	while ((rc = log_reader_next(&r, &p)) == 1) {
		rc = fn(ctx, p);
		if (rc != 0)
			goto out;
		local.records++;
	}
	if (rc < 0)
		goto out;
	local.valid_end = r.valid_end;
	local.torn = r.torn;
	local.torn_offset = r.torn_offset;
	local.synced_end = r.has_header ? r.synced_end : 0;
	local.prev_number = r.prev_number;
	local.prev_end = r.prev_end;
out:
	if (st)
		*st = local;
	mem_free(buf);
	return rc;
}
