/*
 * edit — the version edit: one MANIFEST record describing a change to the
 * LSM shape (files added and deleted, counters advanced), with its binary
 * encoding (docs/format-log.md, "Version edit").
 *
 * An edit owns everything in it (the key bytes of added files included) and
 * belongs to one thread at a time. edit_decode validates every field and
 * never reads outside [p, p+len), whatever the bytes.
 */
#ifndef CESIUM_CORE_EDIT_H
#define CESIUM_CORE_EDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Field tags (a varint each, followed by the field). An encoding ends with
 * EDIT_TAG_END as its last byte, so that any truncation is detected. */
enum edit_tag {
	EDIT_TAG_END = 0,        /* no field: the end of the edit */
	EDIT_TAG_LOG_NUMBER = 1, /* varint: WAL files numbered below it are flushed */
	EDIT_TAG_NEXT_FILE = 2,  /* varint: next unused file number */
	EDIT_TAG_LAST_SEQ = 3,   /* varint: last sequence number used */
	EDIT_TAG_DELETED = 4,    /* u8 level, varint file number */
	EDIT_TAG_ADDED = 5,      /* see struct file_desc and docs/format-log.md */
	/* varint log number: the file added by the EDIT_TAG_ADDED field just
	 * before keeps values in that log (file_desc.value_log). */
	EDIT_TAG_VALUE_LOG = 6,
};

#define EDIT_LEVELS 8
/* Longest internal key accepted in an edit: user key + namespace + trailer. */
#define EDIT_MAX_KEY (16u * 1024u + 16u)

/* A segment file as the MANIFEST records it. */
struct file_desc {
	int level;
	uint64_t number;
	uint64_t file_size;
	uint8_t *smallest; /* internal keys (owned by the edit) */
	size_t smallest_len;
	uint8_t *largest;
	size_t largest_len;
	uint64_t min_seq, max_seq;
	uint64_t entries, tombstones;
	/* The sorted run the file belongs to: the segments one job wrote into
	 * a tiered level share it (the job's first output number); 0 is read
	 * as "its own number". */
	uint64_t run;
	/* A flush's segment may keep its large values in the log they were
	 * written to (segment format version 2): that log's number, kept as
	 * long as the file lives. 0: none. */
	uint64_t value_log;
};

struct edit_deleted {
	int level;
	uint64_t number;
};

struct edit {
	bool has_log_number, has_next_file_number, has_last_seq;
	uint64_t log_number, next_file_number, last_seq;
	struct edit_deleted *deleted;
	size_t ndeleted, deleted_cap;
	struct file_desc *added;
	size_t nadded, added_cap;
};

void edit_init(struct edit *e);
void edit_free(struct edit *e); /* leaves e empty (as edit_init) */
static inline void edit_set_log_number(struct edit *e, uint64_t v)
{
	e->has_log_number = true;
	e->log_number = v;
}
static inline void edit_set_next_file_number(struct edit *e, uint64_t v)
{
	e->has_next_file_number = true;
	e->next_file_number = v;
}
static inline void edit_set_last_seq(struct edit *e, uint64_t v)
{
	e->has_last_seq = true;
	e->last_seq = v;
}
/* Copies *f and its keys. CESIUM_EINVAL for a bad level or empty key. */
int edit_add_file(struct edit *e, const struct file_desc *f);
int edit_delete_file(struct edit *e, int level, uint64_t number);

/* Encodes into a new buffer (free with mem_free). */
int edit_encode(const struct edit *e, uint8_t **out, size_t *len);
/* Decodes into *out (initialised here; edit_free it even on error).
 * CESIUM_ECORRUPT with "path: offset N: ..." for anything malformed;
 * file_offset is the position of p[0] in the file, for the message. */
int edit_decode(const uint8_t *p, size_t len, struct edit *out, const char *path,
                uint64_t file_offset);

#endif
