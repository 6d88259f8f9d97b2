/*
 * cesium.h — the public interface of cesium, a persistent embeddable
 * key-value store (an LSM-tree on io_uring).
 *
 * Conventions
 *  - Handles are opaque. Constructors return the object through an
 *    out-parameter; every fallible call returns 0 or a negative CESIUM_E*
 *    code. cesium_strerror() names a code; cesium_errmsg() gives the detail
 *    of the last failure on the calling thread (file, offset, expectation).
 *  - Keys and values are (pointer, length) pairs of arbitrary bytes. An empty
 *    value is a value, not a delete. Keys are 1..CESIUM_MAX_KEY_SIZE bytes,
 *    values 0..CESIUM_MAX_VALUE_SIZE bytes; larger gets CESIUM_EINVAL.
 *  - Memory returned by cesium_get is owned by the caller and freed with
 *    cesium_free. Pointers returned by cesium_iter_key/value stay valid until
 *    the next call that moves or frees the iterator.
 *  - Thread safety: a cesium_db may be used from any number of threads at
 *    once. A cesium_iter, cesium_batch or cesium_options belongs to one
 *    thread at a time.
 *  - Namespaces: every key lives in a 64-bit namespace; the calls without
 *    _ns use namespace 0. Keys of different namespaces never meet.
 *
 * Durability
 *  - A write that returned 0 survives a crash of the process.
 *  - A write with CESIUM_WRITE_SYNC (or with sync_writes=true), or any write
 *    before a cesium_sync that returned 0, survives a power loss.
 *  - After any crash the database holds a prefix of the acknowledged writes,
 *    in order; a batch is applied whole or not at all.
 *
 * Caveats
 *  - One process at a time: a second open of the same directory, in this
 *    process or another, fails with CESIUM_EBUSY.
 *  - Needs io_uring. Where the kernel refuses it (too old, sysctl
 *    kernel.io_uring_disabled, a seccomp filter such as Docker's default),
 *    cesium_open fails with CESIUM_ENOTSUP and cesium_errmsg() says why.
 *  - An iterator sees the database as it was when the iterator was created.
 *    Between seeks it pins the memtables and files it reads; each seek
 *    moves it onto the newest ones (same snapshot), so a long-lived
 *    iterator holds disk space only until its next seek.
 *  - Segment files are read through read-only memory mappings: do not
 *    truncate or rewrite files inside an open database (the process would
 *    get SIGBUS). Deleting or moving a database directory is safe once
 *    cesium_close returned.
 *  - Allocator: libcesium allocates with mimalloc, whose shared library also
 *    defines malloc, free and C++ operator new/delete. Depending on link
 *    order, the dynamic linker may bind some of those to mimalloc for the
 *    whole process and others to libc; code that mixes them (for example
 *    malloc_usable_size on memory from operator new) then breaks. Link
 *    mimalloc first (-lmimalloc before other libraries) or not at all
 *    besides libcesium. Memory cesium returns is freed with cesium_free.
 */
#ifndef CESIUM_H
#define CESIUM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CESIUM_VERSION_MAJOR 0
#define CESIUM_VERSION_MINOR 1
#define CESIUM_VERSION_PATCH 0

#define CESIUM_MAX_KEY_SIZE   (16u * 1024u)          /* bytes */
#define CESIUM_MAX_VALUE_SIZE (64u * 1024u * 1024u)  /* bytes */

/* Error codes: 0 is success; every failure is one of these. */
#define CESIUM_OK         0
#define CESIUM_ENOTFOUND (-1)  /* get: no such key (not a failure) */
#define CESIUM_EINVAL    (-2)  /* bad argument, option name or value */
#define CESIUM_ENOMEM    (-3)  /* out of memory */
#define CESIUM_EIO       (-4)  /* the kernel reported an I/O error */
#define CESIUM_ENOSPC    (-5)  /* the disk is full */
#define CESIUM_ECORRUPT  (-6)  /* a checksum or format check failed */
#define CESIUM_EBUSY     (-7)  /* database locked by another handle/process */
#define CESIUM_ECLOSED   (-8)  /* the database is closing or was closed */
#define CESIUM_ENOTSUP   (-9)  /* the kernel lacks something cesium needs */

/* Write flag: durable (fdatasync'ed) before the call returns. */
#define CESIUM_WRITE_SYNC 1u

typedef struct cesium_options cesium_options;
typedef struct cesium_db cesium_db;
typedef struct cesium_batch cesium_batch;
typedef struct cesium_iter cesium_iter;

/* The name of an error code ("CESIUM_EIO: I/O error"); never NULL. */
const char *cesium_strerror(int code);
/* Detail of the last failure on this thread; "" when there is none. */
const char *cesium_errmsg(void);

/* Options. Names and defaults are listed in README.md. Sizes accept a plain
 * byte count or a KiB/MiB/GiB suffix; booleans accept true/false/1/0.
 * cesium_options_set returns CESIUM_EINVAL for an unknown name or a
 * malformed or out-of-range value, and leaves the options unchanged. */
int cesium_options_new(cesium_options **out);
int cesium_options_set(cesium_options *o, const char *name, const char *value);
/* Writes the current value of option `name` into buf (NUL-terminated). */
int cesium_options_get(const cesium_options *o, const char *name, char *buf, size_t buflen);
void cesium_options_free(cesium_options *o);

/* Opens (and with create_if_missing, creates) the database at `path`.
 * o may be NULL for defaults; it is copied, the caller keeps ownership. */
int cesium_open(const char *path, const cesium_options *o, cesium_db **out);
/* Flushes nothing to segments but makes every earlier write durable, stops
 * background work in order and frees db. db is freed even on error. */
int cesium_close(cesium_db *db);

int cesium_put(cesium_db *db, const void *key, size_t klen, const void *val, size_t vlen);
/* CESIUM_ENOTFOUND when absent. *val is allocated (free with cesium_free),
 * and is non-NULL even for an empty value. */
int cesium_get(cesium_db *db, const void *key, size_t klen, void **val, size_t *vlen);
int cesium_delete(cesium_db *db, const void *key, size_t klen);
int cesium_put_ns(cesium_db *db, uint64_t ns, const void *key, size_t klen, const void *val,
                  size_t vlen);
int cesium_get_ns(cesium_db *db, uint64_t ns, const void *key, size_t klen, void **val,
                  size_t *vlen);
int cesium_delete_ns(cesium_db *db, uint64_t ns, const void *key, size_t klen);
/*
 * Looks up n keys of namespace ns at one snapshot, issuing the block reads
 * they need in parallel. For each i, statuses[i] is 0 with vals[i] and
 * vlens[i] set (free vals[i] with cesium_free), CESIUM_ENOTFOUND with
 * vals[i] NULL, or an error code. Returns 0 when every lookup completed,
 * found or not; otherwise the first error (the others still hold theirs).
 */
int cesium_multi_get(cesium_db *db, uint64_t ns, size_t n, const void *const *keys,
                     const size_t *klens, void **vals, size_t *vlens, int *statuses);
void cesium_free(void *p);

/* Batches: applied atomically by cesium_write. */
int cesium_batch_new(cesium_batch **out);
int cesium_batch_put(cesium_batch *b, uint64_t ns, const void *key, size_t klen, const void *val,
                     size_t vlen);
int cesium_batch_delete(cesium_batch *b, uint64_t ns, const void *key, size_t klen);
void cesium_batch_clear(cesium_batch *b);
void cesium_batch_free(cesium_batch *b);
/* Applies b atomically. flags: 0 or CESIUM_WRITE_SYNC. */
int cesium_write(cesium_db *db, const cesium_batch *b, unsigned flags);

/* Every earlier write is durable on return. */
int cesium_sync(cesium_db *db);
/* Every memtable is written to an L0 segment on return. */
int cesium_flush(cesium_db *db);
/* The tree is compacted into one sorted run at the bottom on return. */
int cesium_compact(cesium_db *db);

/* Iterators over one namespace, in key order, from a consistent snapshot. */
int cesium_iter_new(cesium_db *db, uint64_t ns, cesium_iter **out);
/* Exclusive upper bound: the iterator becomes invalid at the first key
 * >= bound. The bound is copied. klen 0 removes the bound. */
int cesium_iter_set_upper_bound(cesium_iter *it, const void *key, size_t klen);
void cesium_iter_seek(cesium_iter *it, const void *key, size_t klen); /* first key >= key */
void cesium_iter_seek_first(cesium_iter *it);
bool cesium_iter_valid(const cesium_iter *it);
void cesium_iter_next(cesium_iter *it);
const void *cesium_iter_key(const cesium_iter *it, size_t *klen);
const void *cesium_iter_value(const cesium_iter *it, size_t *vlen);
/* 0, or the error that made the iterator invalid (e.g. CESIUM_ECORRUPT). */
int cesium_iter_status(const cesium_iter *it);
void cesium_iter_free(cesium_iter *it);

/* Statistics as text, one "name value" per line. Free with cesium_free. */
int cesium_stats(cesium_db *db, char **out);

#ifdef __cplusplus
}
#endif
#endif /* CESIUM_H */
