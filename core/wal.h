/*
 * wal — the write-ahead log appender and its replay.
 *
 * Records are framed by log.h and written into a MAP_SHARED mapping of the
 * preallocated log file, so a non-sync append is a memcpy into the page
 * cache (it survives a crash of the process) and wal_sync makes everything
 * appended so far survive a power loss. The mapping sits at the start of
 * an address range reserved for it, so a record never moves as the log
 * grows, and memtables may point at the values in it (wal_hold). The
 * mapping is populated a MiB at a time ahead of the appends, so that the
 * stores do not fault: by the writer, and with a prefaulter
 * (actors/prefault.h) one MiB further on by the kernel's io_uring worker,
 * which also unmaps the pages a MiB behind the writer (they stay in the
 * page cache). wal_seal unmaps the rest, so that no sync of a sealed log
 * has mapped pages to write-protect.
 *
 * The file opens with a header (log.h, LOG_FILE_HEADER_SIZE bytes) whose
 * synced watermark each completed sync advances to what it covered, so
 * that replay after a power loss can tell damage to never-synced pages (a
 * torn tail, discarded with every record after it) from damage to synced
 * ones (corruption). Format and argument: docs/format-log.md.
 *
 * Threads: one writer at a time appends (the write group leader, which
 * holds the write queue). One syncer at a time calls wal_sync (db.c
 * serializes them under its wal_mu), concurrently with the writer's
 * appends: a sync covers at least what was appended when it began.
 * wal_close runs when neither is active. wal_size may be called from any
 * thread. wal_replay is a pure function of the file and may run on any
 * thread.
 *
 * Failed syncs poison the log (fsyncgate): the kernel may have dropped the
 * dirty pages it could not write, so nothing appended can be trusted to be
 * durable; every later append and sync fails with CESIUM_EIO and the
 * database must be reopened (recovery replays what is really on disk).
 */
#ifndef CESIUM_CORE_WAL_H
#define CESIUM_CORE_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keys.h"

typedef struct wal wal;
struct prefault_actor;

/* Creates path (it must not exist), reserves prealloc bytes of disk (rounded
 * up to a page; 0 picks WAL_DEFAULT_PREALLOC), maps it and makes the file's
 * existence durable. A full disk is CESIUM_ENOSPC here, not a SIGBUS later.
 * On failure nothing is left behind. */
#define WAL_DEFAULT_PREALLOC (64u * 1024u * 1024u)
int wal_create(const char *path, size_t prealloc, wal **out);
/* Appends from now on ask p to populate the mapping ahead of them (NULL:
 * no more requests). Nothing waits for a request in flight: growth maps
 * new pages behind the old ones, and the mapping outlives wal_close until
 * the request is done. Writer thread. */
void wal_set_prefaulter(wal *w, struct prefault_actor *p);
/* The same, linking the new log to the one replayed before it: the log
 * numbered prev_number, whose replay must reach prev_end (its wal_size when
 * sealed, or the valid_end recovery reached). wal_create is
 * wal_create_after(..., 0, 0, ...): no link. */
int wal_create_after(const char *path, size_t prealloc, uint64_t prev_number, uint64_t prev_end,
                     wal **out);
/* Appends one record (len <= LOG_MAX_PAYLOAD, else CESIUM_EINVAL); grows the
 * file by its own size (at least the prealloc chunk, at most 1 GiB) when
 * full (CESIUM_ENOSPC if the disk is full: the log is unchanged and the
 * append may be retried). */
/* Two-step append, for a payload built in place: wal_reserve returns where
 * len payload bytes go (valid until wal_commit); wal_commit seals the
 * record. Same caller rules as wal_append; nothing in between may append. */
int wal_reserve(wal *w, size_t len, uint8_t **payload);
void wal_commit(wal *w, size_t len);
int wal_append(wal *w, const void *payload, size_t len);
/* The mapping's records stay where they are as the log grows, and stay
 * mapped while held: wal_hold returns a hold (for a memtable that points
 * at values in the log's records), wal_release gives it up; the mapping is
 * unmapped once wal_close and every wal_release have run. Any thread. */
void *wal_hold(wal *w);
void wal_release(void *hold);
/* The file offset of p, which lies in the held mapping's records. */
uint64_t wal_hold_offset(const void *hold, const void *p);
/* The writer is done with w: the mapping's pages are released (they stay
 * in the page cache), so that writeback need not write-protect each one,
 * a TLB shootdown per page. Appending after it is a bug. Writer thread. */
void wal_seal(wal *w);
/* Everything appended before the call is durable on return. */
int wal_sync(wal *w);
/* 0, or CESIUM_EIO when a sync of w failed (the poison rule below): an
 * fdatasync of the file that succeeds afterwards proves nothing. Under the
 * lock that serializes wal_sync, so that a failing sync is not missed. */
int wal_check_durable(const wal *w);
/* With truncate, cuts the preallocated tail off and fsyncs; then unmaps and
 * closes. w is freed even on error. */
int wal_close(wal *w, bool truncate);
/* The file offset of the next record (LOG_FILE_HEADER_SIZE plus the bytes
 * of the records appended). */
uint64_t wal_size(const wal *w);
const char *wal_path(const wal *w);

struct wal_replay_stats {
	uint64_t records;     /* records delivered to fn */
	uint64_t valid_end;   /* offset just past the last valid record */
	uint64_t file_size;   /* bytes in the file, preallocated zeros included */
	bool torn;            /* the log ended in a torn record (discarded) */
	uint64_t torn_offset; /* where that record starts */
	uint64_t synced_end;  /* the header's watermark (0: a headerless log) */
	uint64_t prev_number; /* the header's link (wal_create_after) */
	uint64_t prev_end;
};

/* Delivers each record of the log at path, in order, to fn; the payload
 * slice is valid only during the call. Stops at the end or a torn tail
 * (bad data at or past the synced watermark: what follows is discarded);
 * CESIUM_ECORRUPT for damage below the watermark (or, in a headerless
 * version 1 log, for a bad record followed by a valid one), the message
 * naming path and offset; CESIUM_ENOTSUP for an unknown format version;
 * fn's value if it returns non-zero. st may be NULL. */
int wal_replay(const char *path, int (*fn)(void *ctx, keys_slice payload), void *ctx,
               struct wal_replay_stats *st);

struct wal_chain_stats {
	uint64_t replayed, skipped, records;
	uint64_t last_number; /* the last log replayed: link the next log to it */
	uint64_t last_end;    /* and to the valid_end its replay reached */
};

/* Replays the logs paths[0..n) (numbers ascending, numbers[i] naming
 * paths[i]) as one sequence: a log whose link names another log than the
 * last one replayed, or more of it than replay found, is skipped (its
 * predecessor lost unsynced records, so it holds only unsynced writes that
 * would follow a gap). Empty logs are no gap: a log may link past them to
 * the last log that held records. Errors as wal_replay. st may be NULL. */
int wal_replay_chain(const char *const *paths, const uint64_t *numbers, size_t n,
                     int (*fn)(void *ctx, keys_slice payload), void *ctx,
                     struct wal_chain_stats *st);

#endif
