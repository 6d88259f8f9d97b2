#include "edit.h"

#include <string.h>

#include "error.h"
#include "keys.h"
#include "mem.h"

void edit_init(struct edit *e)
{
	memset(e, 0, sizeof(*e));
}

void edit_free(struct edit *e)
{
	for (size_t i = 0; i < e->nadded; i++) {
		mem_free(e->added[i].smallest);
		mem_free(e->added[i].largest);
	}
	mem_free(e->added);
	mem_free(e->deleted);
	edit_init(e);
}

/* NULL when the file is acceptable, else why not. Shared by edit_add_file
 * and the decoder so that whatever can be encoded can be decoded. */
static const char *edit_check_file(const struct file_desc *f)
{
	if (f->level < 0 || f->level >= EDIT_LEVELS)
		return "level out of range";
	/* An internal key is at least one namespace byte plus the trailer;
	 * anything shorter would make the key helpers read before the key. */
	if (f->smallest_len <= KEYS_TRAILER_SIZE || f->largest_len <= KEYS_TRAILER_SIZE)
		return "smallest or largest key is empty or shorter than its trailer";
	if (f->smallest_len > EDIT_MAX_KEY || f->largest_len > EDIT_MAX_KEY)
		return "key longer than the limit";
	if (keys_compare_ikey(keys_slice_of(f->smallest, f->smallest_len),
	                      keys_slice_of(f->largest, f->largest_len)) > 0)
		return "smallest key is above largest key";
	if (f->min_seq > f->max_seq)
		return "min_seq is above max_seq";
	if (f->tombstones > f->entries)
		return "more tombstones than entries";
	return NULL;
}

static void *edit_grow(void *arr, size_t *cap, size_t n, size_t elem)
{
	if (n < *cap)
		return arr;
	size_t nc = *cap ? *cap * 2 : 8;
	void *p = mem_realloc(arr, nc * elem);
	if (p)
		*cap = nc;
	return p;
}

static uint8_t *edit_dup(const uint8_t *p, size_t n)
{
	uint8_t *d = mem_alloc(n ? n : 1);
	if (d && n)
		memcpy(d, p, n);
	return d;
}

int edit_add_file(struct edit *e, const struct file_desc *f)
{
	const char *why = edit_check_file(f);
	if (why)
		return error_set(CESIUM_EINVAL, "edit: file %llu: %s",
		                 (unsigned long long)f->number, why);
	struct file_desc *arr = edit_grow(e->added, &e->added_cap, e->nadded, sizeof(*arr));
	if (!arr)
		return error_set(CESIUM_ENOMEM, "edit: out of memory");
	e->added = arr;
	struct file_desc d = *f;
	d.smallest = edit_dup(f->smallest, f->smallest_len);
	d.largest = edit_dup(f->largest, f->largest_len);
	if (!d.smallest || !d.largest) {
		mem_free(d.smallest);
		mem_free(d.largest);
		return error_set(CESIUM_ENOMEM, "edit: out of memory");
	}
	e->added[e->nadded++] = d;
	return 0;
}

int edit_delete_file(struct edit *e, int level, uint64_t number)
{
	if (level < 0 || level >= EDIT_LEVELS)
		return error_set(CESIUM_EINVAL, "edit: delete of file %llu: level %d out of range",
		                 (unsigned long long)number, level);
	struct edit_deleted *arr =
	    edit_grow(e->deleted, &e->deleted_cap, e->ndeleted, sizeof(*arr));
	if (!arr)
		return error_set(CESIUM_ENOMEM, "edit: out of memory");
	e->deleted = arr;
	e->deleted[e->ndeleted++] = (struct edit_deleted){level, number};
	return 0;
}

/* ---- encoding ---- */

static size_t edit_put_bytes(uint8_t *p, const uint8_t *b, size_t n)
{
	size_t k = keys_put_varint(p, n);
	memcpy(p + k, b, n);
	return k + n;
}

int edit_encode(const struct edit *e, uint8_t **out, size_t *len)
{
	/* Upper bound: every varint at its longest. */
	size_t cap = 3 * (1 + KEYS_MAX_VARINT) + 1;
	cap += e->ndeleted * (1 + 1 + KEYS_MAX_VARINT);
	for (size_t i = 0; i < e->nadded; i++) {
		const struct file_desc *f = &e->added[i];
		if (edit_check_file(f))
			return error_set(CESIUM_EINVAL, "edit: file %llu: %s",
			                 (unsigned long long)f->number, edit_check_file(f));
		cap += 1 + 1 + 9 * KEYS_MAX_VARINT + f->smallest_len + f->largest_len;
		cap += 2 * KEYS_MAX_VARINT; /* EDIT_TAG_VALUE_LOG */
	}
	uint8_t *buf = mem_alloc(cap);
	if (!buf)
		return error_set(CESIUM_ENOMEM, "edit: out of memory encoding %zu bytes", cap);
	size_t n = 0;
	if (e->has_log_number) {
		n += keys_put_varint(buf + n, EDIT_TAG_LOG_NUMBER);
		n += keys_put_varint(buf + n, e->log_number);
	}
	if (e->has_next_file_number) {
		n += keys_put_varint(buf + n, EDIT_TAG_NEXT_FILE);
		n += keys_put_varint(buf + n, e->next_file_number);
	}
	if (e->has_last_seq) {
		n += keys_put_varint(buf + n, EDIT_TAG_LAST_SEQ);
		n += keys_put_varint(buf + n, e->last_seq);
	}
	for (size_t i = 0; i < e->ndeleted; i++) {
		n += keys_put_varint(buf + n, EDIT_TAG_DELETED);
		buf[n++] = (uint8_t)e->deleted[i].level;
		n += keys_put_varint(buf + n, e->deleted[i].number);
	}
	for (size_t i = 0; i < e->nadded; i++) {
		const struct file_desc *f = &e->added[i];
		n += keys_put_varint(buf + n, EDIT_TAG_ADDED);
		buf[n++] = (uint8_t)f->level;
		n += keys_put_varint(buf + n, f->number);
		n += keys_put_varint(buf + n, f->file_size);
		n += edit_put_bytes(buf + n, f->smallest, f->smallest_len);
		n += edit_put_bytes(buf + n, f->largest, f->largest_len);
		n += keys_put_varint(buf + n, f->min_seq);
		n += keys_put_varint(buf + n, f->max_seq);
		n += keys_put_varint(buf + n, f->entries);
		n += keys_put_varint(buf + n, f->tombstones);
		n += keys_put_varint(buf + n, f->run);
		if (f->value_log) {
			n += keys_put_varint(buf + n, EDIT_TAG_VALUE_LOG);
			n += keys_put_varint(buf + n, f->value_log);
		}
	}
	n += keys_put_varint(buf + n, EDIT_TAG_END);
	*out = buf;
	*len = n;
	return 0;
}

/* ---- decoding ---- */

struct edit_in {
	const uint8_t *p;
	size_t len;
	size_t pos;
	const char *path;
	uint64_t base; /* file offset of p[0] */
};

static int edit_bad(const struct edit_in *in, size_t at, const char *what)
{
	return error_set(CESIUM_ECORRUPT, "%s: offset %llu: version edit: %s", in->path,
	                 (unsigned long long)(in->base + at), what);
}

static int edit_get_varint(struct edit_in *in, uint64_t *v, const char *what)
{
	size_t start = in->pos;
	uint64_t r = 0;
	for (unsigned shift = 0; shift < 64; shift += 7) {
		if (in->pos >= in->len)
			return edit_bad(in, start, what);
		uint8_t b = in->p[in->pos++];
		/* The tenth byte may carry only the top bit of a u64. */
		if (shift == 63 && b > 1)
			return edit_bad(in, start, "varint overflows 64 bits");
		r |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = r;
			return 0;
		}
	}
	return edit_bad(in, start, "varint overflows 64 bits");
}

static int edit_get_level(struct edit_in *in, int *level)
{
	if (in->pos >= in->len)
		return edit_bad(in, in->pos, "truncated before a level");
	uint8_t b = in->p[in->pos];
	if (b >= EDIT_LEVELS)
		return edit_bad(in, in->pos, "level out of range");
	in->pos++;
	*level = b;
	return 0;
}

static int edit_get_key(struct edit_in *in, uint8_t **key, size_t *klen)
{
	uint64_t n = 0;
	size_t start = in->pos;
	int rc = edit_get_varint(in, &n, "truncated key length");
	if (rc < 0)
		return rc;
	if (n == 0)
		return edit_bad(in, start, "empty key");
	if (n > EDIT_MAX_KEY)
		return edit_bad(in, start, "key longer than the limit");
	if (n > in->len - in->pos)
		return edit_bad(in, start, "key runs past the end of the record");
	*key = edit_dup(in->p + in->pos, (size_t)n);
	if (!*key)
		return error_set(CESIUM_ENOMEM, "%s: out of memory decoding an edit", in->path);
	*klen = (size_t)n;
	in->pos += (size_t)n;
	return 0;
}

static int edit_decode_added(struct edit_in *in, struct edit *e, size_t start)
{
	struct file_desc f = {0};
	int rc = edit_get_level(in, &f.level);
	if (rc == 0)
		rc = edit_get_varint(in, &f.number, "truncated file number");
	if (rc == 0)
		rc = edit_get_varint(in, &f.file_size, "truncated file size");
	if (rc == 0)
		rc = edit_get_key(in, &f.smallest, &f.smallest_len);
	if (rc == 0)
		rc = edit_get_key(in, &f.largest, &f.largest_len);
	if (rc == 0)
		rc = edit_get_varint(in, &f.min_seq, "truncated min_seq");
	if (rc == 0)
		rc = edit_get_varint(in, &f.max_seq, "truncated max_seq");
	if (rc == 0)
		rc = edit_get_varint(in, &f.entries, "truncated entry count");
	if (rc == 0)
		rc = edit_get_varint(in, &f.tombstones, "truncated tombstone count");
	if (rc == 0)
		rc = edit_get_varint(in, &f.run, "truncated run id");
	if (rc == 0) {
		const char *why = edit_check_file(&f);
		if (why)
			rc = edit_bad(in, start, why);
	}
	if (rc == 0) {
		struct file_desc *arr = edit_grow(e->added, &e->added_cap, e->nadded, sizeof(*arr));
		if (!arr) {
			rc = error_set(CESIUM_ENOMEM, "%s: out of memory decoding an edit",
			               in->path);
		} else {
			e->added = arr;
			e->added[e->nadded++] = f;
			return 0;
		}
	}
	mem_free(f.smallest);
	mem_free(f.largest);
	return rc;
}

/* The value log of the file the field before added. */
static int edit_decode_value_log(struct edit_in *in, struct edit *e, size_t start,
                                 uint64_t prev_tag)
{
	uint64_t log = 0;
	int rc = edit_get_varint(in, &log, "truncated value log number");
	if (rc)
		return rc;
	if (prev_tag != EDIT_TAG_ADDED)
		return edit_bad(in, start, "value log not after an added file");
	if (log == 0)
		return edit_bad(in, start, "value log number 0");
	e->added[e->nadded - 1].value_log = log;
	return 0;
}

static int edit_decode_scalar(struct edit_in *in, bool *has, uint64_t *v, size_t start,
                              const char *what)
{
	if (*has)
		return edit_bad(in, start, "field appears twice");
	int rc = edit_get_varint(in, v, what);
	if (rc == 0)
		*has = true;
	return rc;
}

int edit_decode(const uint8_t *p, size_t len, struct edit *out, const char *path,
                uint64_t file_offset)
{
	struct edit_in in = {p, len, 0, path ? path : "(manifest)", file_offset};
	edit_init(out);
	int rc = 0;
	bool ended = false;
	uint64_t tag = EDIT_TAG_END, prev_tag;
	while (rc == 0 && !ended) {
		size_t start = in.pos;
		prev_tag = tag;
		rc = edit_get_varint(&in, &tag, "truncated: no end tag");
		if (rc < 0)
			break;
		switch (tag) {
		case EDIT_TAG_END:
			ended = true;
			if (in.pos != in.len)
				rc = edit_bad(&in, in.pos, "bytes after the end tag");
			break;
		case EDIT_TAG_LOG_NUMBER:
			rc = edit_decode_scalar(&in, &out->has_log_number, &out->log_number, start,
			                        "truncated log number");
			break;
		case EDIT_TAG_NEXT_FILE:
			rc = edit_decode_scalar(&in, &out->has_next_file_number,
			                        &out->next_file_number, start,
			                        "truncated next file number");
			break;
		case EDIT_TAG_LAST_SEQ:
			rc = edit_decode_scalar(&in, &out->has_last_seq, &out->last_seq, start,
			                        "truncated last sequence number");
			break;
		case EDIT_TAG_DELETED: {
			int level = 0;
			uint64_t number = 0;
			rc = edit_get_level(&in, &level);
			if (rc == 0)
				rc = edit_get_varint(&in, &number, "truncated deleted file number");
			if (rc == 0) {
				rc = edit_delete_file(out, level, number);
				if (rc == CESIUM_ENOMEM)
					error_set(rc, "%s: out of memory decoding an edit",
					          in.path);
			}
			break;
		}
		case EDIT_TAG_ADDED:
			rc = edit_decode_added(&in, out, start);
			break;
		case EDIT_TAG_VALUE_LOG:
			rc = edit_decode_value_log(&in, out, start, prev_tag);
			break;
		default:
			rc = edit_bad(&in, start, "unknown field tag");
			break;
		}
	}
	return rc;
}
