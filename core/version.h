/*
 * version — an immutable, reference-counted snapshot of the LSM shape: the
 * segment files of each level, plus the counters the MANIFEST carries; and
 * recovery of the current version from a MANIFEST.
 *
 * Ownership: the scheduler actor is the only one that builds versions
 * (version_apply) and installs them; any thread may pin one (version_ref)
 * and read it without a lock, then drop it (version_unref). A version is
 * never changed after version_apply returns it.
 *
 * A file_meta is shared by every version that contains the file (and can be
 * pinned on its own). When its last reference drops, env->file_release is
 * called once, on whichever thread dropped it; the db closes the reader
 * there and, if f->unlink is set (the file's last meta, and the file
 * obsolete), hands the file to the cleanup actor.
 * The meta (keys included) is freed by this module right after.
 */
#ifndef CESIUM_CORE_VERSION_H
#define CESIUM_CORE_VERSION_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edit.h"
#include "keys.h"

#define VERSION_LEVELS 8
/* L0..L2 hold several sorted runs: L0 newest file first, L1 and L2 newest
 * run first and key order within a run. L3..L7 are one sorted run each. */
#define VERSION_TIERED_LEVELS 3

/* The life of one segment file, shared by every file_meta of it: a trivial
 * move re-adds a file at another level with a new meta, while older
 * versions, pinned by readers, keep the old one. */
struct file_life {
	atomic_uint metas; /* file_metas of the file still alive */
	/* Set (release) by the owner once the edit deleting this file is
	 * durable in the MANIFEST. Never set by version_apply: the edit may
	 * still fail to reach the MANIFEST. */
	atomic_bool obsolete;
};

struct file_meta {
	/* Atomic because versions on different threads share the meta; the
	 * final decrement is acq_rel so the releasing thread sees every
	 * write made through other references. */
	atomic_uint refs;
	struct file_life *life;
	/* Set just before file_release: this was the file's last meta and
	 * the file is obsolete, so it may be unlinked. */
	bool unlink;
	uint64_t number;
	int level;
	uint64_t file_size;
	uint8_t *smallest; /* internal keys, owned */
	size_t smallest_len;
	uint8_t *largest;
	size_t largest_len;
	uint64_t min_seq, max_seq;
	uint64_t entries, tombstones;
	uint64_t run; /* sorted run id (edit.h); never 0 here */
	uint64_t value_log; /* the log keeping some of its values (edit.h); 0: none */
	void *reader; /* opaque open segment reader, set by the db */
};

struct version_env {
	void (*file_release)(void *ctx, struct file_meta *f);
	void *ctx;
};

struct version {
	/* Readers pin with one relaxed increment; the final decrement is
	 * acq_rel (see version_unref). */
	atomic_uint refs;
	struct file_meta **files[VERSION_LEVELS];
	size_t nfiles[VERSION_LEVELS];
	uint64_t log_number, next_file_number, last_seq;
	struct version_env *env; /* borrowed; must outlive every version */
};

/* Builds a file_meta (1 reference, keys copied, reader NULL). */
struct file_meta *file_meta_new(const struct file_desc *d);
/* f described for an edit at `level` in sorted run `run`; its keys point
 * into f (edit_add_file copies them). */
struct file_desc file_meta_desc(const struct file_meta *f, int level, uint64_t run);
static inline struct file_meta *file_meta_ref(struct file_meta *f)
{
	atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
	return f;
}
/* Drops one reference; at zero calls env->file_release (env may be NULL)
 * and frees f. */
void file_meta_unref(struct file_meta *f, const struct version_env *env);

/* make_meta: the db's hook to build a meta for an added file (it sets
 * reader). It must return a meta made by file_meta_new (this module frees
 * it), or NULL after error_set: version_apply then fails with CESIUM_EIO
 * and keeps the hook's message. */
typedef struct file_meta *(*version_make_meta_fn)(void *ctx, const struct file_desc *d);

int version_new_empty(struct version_env *env, struct version **out);
/* A new version: base with e applied (base is not changed). Unchanged files
 * are shared. CESIUM_ECORRUPT when e deletes a file base lacks or adds a
 * file number already present. L0 is ordered newest first (max_seq, then
 * number, descending); L1..L7 by smallest key (then number). make_meta may
 * be NULL. */
int version_apply(const struct version *base, const struct edit *e, version_make_meta_fn make_meta,
                  void *ctx, struct version **out);
static inline struct version *version_ref(struct version *v)
{
	atomic_fetch_add_explicit(&v->refs, 1, memory_order_relaxed);
	return v;
}
void version_unref(struct version *v);

/* Marks obsolete every file of base that e deletes (call once e is durable
 * in the MANIFEST and the version built from it is installed). */
void version_mark_deleted(const struct version *base, const struct edit *e);

/* Whether the files of level form one sorted run: each file's largest
 * internal key is below the next file's smallest. */
bool version_level_is_sorted_run(const struct version *v, int level);
/* For a sorted-run level: index of the first file whose largest nskey is
 * >= nskey (the only file that may hold it; check its smallest too), or
 * nfiles[level] if none. */
size_t version_find_file(const struct version *v, int level, keys_slice nskey);
/* For the sorted run of `level` that starts at file index `first` (L0: that
 * one file; L1, L2: the files sharing its run id; L3 and below: the whole
 * level): sets *end to the index past the run and returns the index of the
 * only file of the run whose range may hold nskey, or *end if none may.
 * A binary search, so a get pays for runs, not for files. */
size_t version_run_candidate(const struct version *v, int level, size_t first, keys_slice nskey,
                             size_t *end);
uint64_t version_level_bytes(const struct version *v, int level);
/* A human-readable description (free with mem_free). */
int version_dump(const struct version *v, char **text);

/* Replays the MANIFEST at manifest_path from an empty version. A torn tail
 * is discarded: *valid_end is where the file should be truncated before
 * appending. Corruption elsewhere (a bad record or an edit that does not
 * decode or apply) is CESIUM_ECORRUPT naming the file and offset. */
int version_recover(const char *manifest_path, struct version_env *env,
                    version_make_meta_fn make_meta, void *ctx, struct version **out,
                    uint64_t *valid_end);

#endif
