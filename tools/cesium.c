/*
 * cesium — the command-line tool: read and write a database (get, put,
 * delete, scan), decode its files (dump), verify it (check), and show or
 * change its shape (stats, compact).
 *
 * The data commands go through the public API. dump and check read the
 * files directly through the internal modules (log, batch, edit, version,
 * manifest, segment, block), so that they work on a database that does not
 * open, and so that check can name the file and offset of every problem.
 *
 * Exit codes: 0 ok; 1 not found (get) or problems found (check); 2 usage
 * error; 3 engine error (cesium_strerror and cesium_errmsg are printed).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>
#include <zstd.h>

#include "cesium.h"
#include "core/batch.h"
#include "core/block.h"
#include "core/edit.h"
#include "core/filename.h"
#include "core/keys.h"
#include "core/log.h"
#include "core/manifest.h"
#include "core/mem.h"
#include "core/segment.h"
#include "core/segment_format.h"
#include "core/version.h"
#include "io/file.h"

#define EXIT_OK 0
#define EXIT_NOTFOUND 1
#define EXIT_PROBLEMS 1
#define EXIT_USAGE 2
#define EXIT_ENGINE 3

typedef unsigned long long ull;

/* Options every command may take. */
struct cli {
	const char *cmd;
	uint64_t ns;
	bool hex;
	bool help;
	const char *from, *to;
	bool has_from, has_to;
	uint64_t limit; /* 0: no limit */
	const char *args[4];
	int nargs;
};

/* ---- usage ---------------------------------------------------------- */

struct command {
	const char *name;
	const char *synopsis;
	const char *help;
	int nargs; /* positional arguments after the command */
	int (*run)(struct cli *c);
};

static void usage_all(FILE *f)
{
	fprintf(
	    f,
	    "usage: cesium <command> DBPATH [args] [options]\n"
	    "\n"
	    "commands:\n"
	    "  get DBPATH KEY           print the value of KEY (exit 1 if absent)\n"
	    "  put DBPATH KEY VALUE     store VALUE under KEY (creates the database)\n"
	    "  delete DBPATH KEY        delete KEY\n"
	    "  scan DBPATH              print key<TAB>value for each key in order\n"
	    "  dump FILE                decode a .wal, .seg or MANIFEST-* file\n"
	    "  check DBPATH             verify every checksum and invariant (exit 1 on problems)\n"
	    "  stats DBPATH             print engine statistics\n"
	    "  compact DBPATH           compact the whole tree\n"
	    "  help [COMMAND]           this text, or a command's\n"
	    "\n"
	    "common options: --ns=N (namespace, default 0), --hex (keys and values in hex)\n"
	    "exit codes: 0 ok, 1 not found / problems found, 2 usage error, 3 engine error\n"
	    "`cesium <command> --help` describes one command.\n");
}

static int usage_error(const char *fmt, const char *arg)
{
	fputs("cesium: ", stderr);
	fprintf(stderr, fmt, arg);
	fputs("\n(try `cesium help`)\n", stderr);
	return EXIT_USAGE;
}

static int engine_error(const char *what, int rc)
{
	const char *msg = cesium_errmsg();
	fprintf(stderr, "cesium: %s: %s%s%s\n", what, cesium_strerror(rc), *msg ? ": " : "", msg);
	return EXIT_ENGINE;
}

/* ---- bytes in and out ----------------------------------------------- */

static int hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* The bytes an argument stands for: itself, or decoded hex. *out is
 * mem_alloc'd. false on malformed hex. */
static bool arg_bytes(const struct cli *c, const char *s, uint8_t **out, size_t *len)
{
	size_t n = strlen(s);
	uint8_t *p = mem_alloc(n + 1);
	if (!p)
		return false;
	if (!c->hex) {
		memcpy(p, s, n);
		*out = p;
		*len = n;
		return true;
	}
	if (n % 2) {
		mem_free(p);
		return false;
	}
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hexval((unsigned char)s[2 * i]), lo = hexval((unsigned char)s[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			mem_free(p);
			return false;
		}
		p[i] = (uint8_t)(hi << 4 | lo);
	}
	*out = p;
	*len = n / 2;
	return true;
}

static void print_hex(FILE *f, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%02x", p[i]);
}

/* Printable ASCII as is; backslash and everything else escaped. */
static void print_text(FILE *f, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\\')
			fputs("\\\\", f);
		else if (p[i] >= 0x20 && p[i] < 0x7f)
			fputc(p[i], f);
		else
			fprintf(f, "\\x%02x", p[i]);
	}
}

static void print_bytes(FILE *f, bool hex, const uint8_t *p, size_t n)
{
	if (hex)
		print_hex(f, p, n);
	else
		print_text(f, p, n);
}

/* At most max bytes, then "..." */
static void print_preview(FILE *f, const uint8_t *p, size_t n, size_t max)
{
	fputc('"', f);
	print_text(f, p, n < max ? n : max);
	fputc('"', f);
	if (n > max)
		fputs("...", f);
}

/* An nskey as ns=N key="..." */
static void print_nskey(FILE *f, keys_slice k)
{
	if (k.len < KEYS_NS_SIZE) {
		fputs("ns=? key=", f);
		print_preview(f, k.data, k.len, 128);
		return;
	}
	fprintf(f, "ns=%llu key=", (ull)keys_get_u64be(k.data));
	print_preview(f, k.data + KEYS_NS_SIZE, k.len - KEYS_NS_SIZE, 128);
}

static void print_ikey(FILE *f, keys_slice k)
{
	if (k.len < KEYS_TRAILER_SIZE) {
		fputs("(short internal key) ", f);
		print_preview(f, k.data, k.len, 128);
		return;
	}
	print_nskey(f, keys_ikey_nskey(k));
	fprintf(f, " seq=%llu kind=%s", (ull)keys_ikey_seq(k),
	        keys_ikey_kind(k) == KEYS_KIND_VALUE    ? "put"
	        : keys_ikey_kind(k) == KEYS_KIND_DELETE ? "del"
	                                                : "?");
}

static bool parse_u64(const char *s, uint64_t *out)
{
	char *end;
	if (!*s || *s == '-')
		return false;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || *end)
		return false;
	*out = v;
	return true;
}

/* ---- database commands ---------------------------------------------- */

static int db_open_cli(const char *path, bool create, cesium_db **db)
{
	cesium_options *o = NULL;
	int rc = cesium_options_new(&o);
	if (rc == 0)
		rc = cesium_options_set(o, "create_if_missing", create ? "true" : "false");
	if (rc == 0)
		rc = cesium_open(path, o, db);
	cesium_options_free(o);
	return rc;
}

static int cmd_get(struct cli *c)
{
	uint8_t *k = NULL;
	size_t klen;
	void *v = NULL;
	size_t vlen;
	cesium_db *db = NULL;
	int ret = EXIT_OK, rc;
	if (!arg_bytes(c, c->args[1], &k, &klen))
		return usage_error("malformed hex key: %s", c->args[1]);
	if ((rc = db_open_cli(c->args[0], false, &db))) {
		ret = engine_error("open", rc);
		goto out;
	}
	rc = cesium_get_ns(db, c->ns, k, klen, &v, &vlen);
	if (rc == CESIUM_ENOTFOUND) {
		fprintf(stderr, "cesium: not found\n");
		ret = EXIT_NOTFOUND;
	} else if (rc) {
		ret = engine_error("get", rc);
	} else {
		print_bytes(stdout, c->hex, v, vlen);
		fputc('\n', stdout);
	}
out:
	cesium_free(v);
	if (db && (rc = cesium_close(db)) && ret == EXIT_OK)
		ret = engine_error("close", rc);
	mem_free(k);
	return ret;
}

static int cmd_put_delete(struct cli *c, bool put)
{
	uint8_t *k = NULL, *v = NULL;
	size_t klen, vlen = 0;
	cesium_db *db = NULL;
	int ret = EXIT_OK, rc;
	if (!arg_bytes(c, c->args[1], &k, &klen)) {
		ret = usage_error("malformed hex key: %s", c->args[1]);
		goto out;
	}
	if (put && !arg_bytes(c, c->args[2], &v, &vlen)) {
		ret = usage_error("malformed hex value: %s", c->args[2]);
		goto out;
	}
	if ((rc = db_open_cli(c->args[0], put, &db))) {
		ret = engine_error("open", rc);
		goto out;
	}
	rc =
	    put ? cesium_put_ns(db, c->ns, k, klen, v, vlen) : cesium_delete_ns(db, c->ns, k, klen);
	if (rc)
		ret = engine_error(put ? "put" : "delete", rc);
out:
	/* close makes the write durable */
	if (db && (rc = cesium_close(db)) && ret == EXIT_OK)
		ret = engine_error("close", rc);
	mem_free(k);
	mem_free(v);
	return ret;
}

static int cmd_put(struct cli *c)
{
	return cmd_put_delete(c, true);
}

static int cmd_delete(struct cli *c)
{
	return cmd_put_delete(c, false);
}

static int cmd_scan(struct cli *c)
{
	uint8_t *from = NULL, *to = NULL;
	size_t flen = 0, tlen = 0;
	cesium_db *db = NULL;
	cesium_iter *it = NULL;
	int ret = EXIT_OK, rc;
	if (c->has_from && !arg_bytes(c, c->from, &from, &flen)) {
		ret = usage_error("malformed hex --from: %s", c->from);
		goto out;
	}
	if (c->has_to && !arg_bytes(c, c->to, &to, &tlen)) {
		ret = usage_error("malformed hex --to: %s", c->to);
		goto out;
	}
	if ((rc = db_open_cli(c->args[0], false, &db))) {
		ret = engine_error("open", rc);
		goto out;
	}
	if ((rc = cesium_iter_new(db, c->ns, &it))) {
		ret = engine_error("scan", rc);
		goto out;
	}
	if (tlen && (rc = cesium_iter_set_upper_bound(it, to, tlen))) {
		ret = engine_error("scan", rc);
		goto out;
	}
	if (flen)
		cesium_iter_seek(it, from, flen);
	else
		cesium_iter_seek_first(it);
	uint64_t n = 0;
	for (; cesium_iter_valid(it) && (!c->limit || n < c->limit); cesium_iter_next(it), n++) {
		size_t kl, vl;
		const uint8_t *k = cesium_iter_key(it, &kl);
		const uint8_t *v = cesium_iter_value(it, &vl);
		print_bytes(stdout, c->hex, k, kl);
		fputc('\t', stdout);
		print_bytes(stdout, c->hex, v, vl);
		fputc('\n', stdout);
	}
	if ((rc = cesium_iter_status(it)))
		ret = engine_error("scan", rc);
out:
	cesium_iter_free(it);
	if (db && (rc = cesium_close(db)) && ret == EXIT_OK)
		ret = engine_error("close", rc);
	mem_free(from);
	mem_free(to);
	return ret;
}

static int cmd_stats(struct cli *c)
{
	cesium_db *db = NULL;
	char *text = NULL;
	int ret = EXIT_OK, rc;
	if ((rc = db_open_cli(c->args[0], false, &db)))
		return engine_error("open", rc);
	if ((rc = cesium_stats(db, &text)))
		ret = engine_error("stats", rc);
	else
		fputs(text, stdout);
	cesium_free(text);
	if ((rc = cesium_close(db)) && ret == EXIT_OK)
		ret = engine_error("close", rc);
	return ret;
}

static int cmd_compact(struct cli *c)
{
	cesium_db *db = NULL;
	int ret = EXIT_OK, rc;
	if ((rc = db_open_cli(c->args[0], false, &db)))
		return engine_error("open", rc);
	if ((rc = cesium_compact(db)))
		ret = engine_error("compact", rc);
	if ((rc = cesium_close(db)) && ret == EXIT_OK)
		ret = engine_error("close", rc);
	return ret;
}

/* ---- segment files, parsed by hand so every problem has an offset ---- */

struct segfile {
	const char *path;
	uint8_t *buf;
	size_t size;
	uint64_t foff; /* footer offset */
	uint64_t filter_off, filter_size, props_off, props_size, index_off, index_size;
	uint32_t version;
	uint64_t magic;
	struct seg_props props; /* props.value_log != 0: version 2, values tagged */
	const uint8_t *props_raw;
	/* check only (segfile_open_log): the log that keeps values for a
	 * version 2 segment, so the walk can verify every reference; -1 for
	 * dump, which decodes one file. */
	int log_fd;
	char *log_path;
	uint64_t log_size;
	uint8_t *vbuf; /* a referred value, read back */
	size_t vcap;
};

/* Problem reporting: check prints and counts, dump prints. */
static uint64_t problems;

__attribute__((format(printf, 3, 4))) static void problem(const char *path, uint64_t off,
                                                          const char *fmt, ...)
{
	va_list ap;
	fprintf(stdout, "PROBLEM %s: offset %llu: ", path, (ull)off);
	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	problems++;
}

/* Reports an engine message that already names file and offset. */
static void problem_msg(const char *path, int rc)
{
	const char *m = cesium_errmsg();
	if (strstr(m, path))
		fprintf(stdout, "PROBLEM %s (%s)\n", m, cesium_strerror(rc));
	else
		fprintf(stdout, "PROBLEM %s: %s: %s\n", path, cesium_strerror(rc), m);
	problems++;
}

static bool seg_block_in(uint64_t off, uint64_t size, uint64_t limit)
{
	return off <= limit && size + SEG_TRAILER_SIZE <= limit - off;
}

/* Verifies a block's trailer and returns its contents (decompressed into
 * *owned when needed). false after reporting the problem. */
static bool seg_block(const struct segfile *s, uint64_t off, uint64_t size, uint64_t limit,
                      const char *what, const uint8_t **data, size_t *len, uint8_t **owned)
{
	*owned = NULL;
	if (!seg_block_in(off, size, limit) || size > SEG_MAX_BLOCK_SIZE) {
		problem(s->path, off, "%s block handle (size %llu) out of bounds", what, (ull)size);
		return false;
	}
	const uint8_t *p = s->buf + off;
	uint64_t want = keys_get_u64le(p + size + SEG_TRAILER_CHECKSUM);
	if (XXH3_64bits(p, (size_t)size + 1) != want) {
		problem(s->path, off, "%s block checksum mismatch", what);
		return false;
	}
	uint8_t type = p[size + SEG_TRAILER_TYPE];
	if (type == SEG_COMPRESS_NONE) {
		*data = p;
		*len = (size_t)size;
		return true;
	}
	if (type != SEG_COMPRESS_ZSTD) {
		problem(s->path, off, "%s block has unknown compression type %u", what, type);
		return false;
	}
	unsigned long long n = ZSTD_getFrameContentSize(p, (size_t)size);
	if (n == ZSTD_CONTENTSIZE_ERROR || n == ZSTD_CONTENTSIZE_UNKNOWN ||
	    n > SEG_MAX_BLOCK_SIZE) {
		problem(s->path, off, "%s block: bad zstd frame header", what);
		return false;
	}
	uint8_t *d = mem_alloc(n ? (size_t)n : 1);
	if (!d) {
		problem(s->path, off, "%s block: out of memory", what);
		return false;
	}
	size_t got = ZSTD_decompress(d, (size_t)n, p, (size_t)size);
	if (ZSTD_isError(got) || got != n) {
		mem_free(d);
		problem(s->path, off, "%s block: zstd decompression failed", what);
		return false;
	}
	*owned = d;
	*data = d;
	*len = (size_t)n;
	return true;
}

static void segfile_free(struct segfile *s)
{
	if (s->log_fd >= 0)
		io_close(s->log_fd);
	mem_free(s->log_path);
	mem_free(s->vbuf);
	mem_free(s->buf);
	memset(s, 0, sizeof(*s));
	s->log_fd = -1;
}

/* The props after the fixed part: smallest and largest keys, and for
 * version 2 the value log (never 0 there). Bounds as seg_parse_props's. */
static bool segfile_props_keys(struct segfile *s, const uint8_t *d, size_t n)
{
	struct seg_props *p = &s->props;
	size_t sl = keys_get_u32le(d + SEG_PROPS_SMALLEST_LEN);
	if (sl > n - SEG_PROPS_FIXED_SIZE || n - SEG_PROPS_FIXED_SIZE - sl < 4) {
		problem(s->path, s->props_off, "props smallest key out of bounds");
		return false;
	}
	const uint8_t *q = d + SEG_PROPS_FIXED_SIZE + sl;
	size_t ll = keys_get_u32le(q);
	size_t rest = n - SEG_PROPS_FIXED_SIZE - sl - 4;
	size_t tail = s->version != SEG_FORMAT_VERSION ? SEG_PROPS_VALUE_LOG_SIZE : 0;
	if (rest < tail || ll != rest - tail) {
		problem(s->path, s->props_off, "props largest key out of bounds");
		return false;
	}
	if (tail && (p->value_log = keys_get_u64le(q + 4 + ll)) == 0) {
		problem(s->path, s->props_off + (uint64_t)(q + 4 + ll - d),
		        "props name no value log in a version 2 segment");
		return false;
	}
	p->smallest = keys_slice_of(d + SEG_PROPS_FIXED_SIZE, sl);
	p->largest = keys_slice_of(q + 4, ll);
	return true;
}

/* Loads the file and checks footer and props. false after reporting. */
static bool segfile_load(struct segfile *s, const char *path)
{
	memset(s, 0, sizeof(*s));
	s->path = path;
	s->log_fd = -1;
	int rc = log_read_file(path, &s->buf, &s->size);
	if (rc) {
		problem_msg(path, rc);
		return false;
	}
	if (s->size < SEG_FOOTER_SIZE) {
		problem(path, 0, "file of %zu bytes is shorter than a footer", s->size);
		return false;
	}
	s->foff = s->size - SEG_FOOTER_SIZE;
	const uint8_t *f = s->buf + s->foff;
	if (XXH3_64bits(f, SEG_FOOTER_CHECKSUM) != keys_get_u64le(f + SEG_FOOTER_CHECKSUM)) {
		problem(path, s->foff, "footer checksum mismatch");
		return false;
	}
	s->magic = keys_get_u64le(f + SEG_FOOTER_MAGIC);
	s->version = keys_get_u32le(f + SEG_FOOTER_VERSION);
	if (s->magic != SEG_MAGIC) {
		problem(path, s->foff + SEG_FOOTER_MAGIC, "bad magic %016llx", (ull)s->magic);
		return false;
	}
	if (s->version != SEG_FORMAT_VERSION && s->version != SEG_FORMAT_VERSION_LOG_VALUES &&
	    s->version != SEG_FORMAT_VERSION_LOG_RECORDS) {
		problem(path, s->foff + SEG_FOOTER_VERSION, "format version %u, expected %u to %u",
		        s->version, SEG_FORMAT_VERSION, SEG_FORMAT_VERSION_LOG_RECORDS);
		return false;
	}
	s->filter_off = keys_get_u64le(f + SEG_FOOTER_FILTER);
	s->filter_size = keys_get_u32le(f + SEG_FOOTER_FILTER + SEG_HANDLE_SIZE_AT);
	s->props_off = keys_get_u64le(f + SEG_FOOTER_PROPS);
	s->props_size = keys_get_u32le(f + SEG_FOOTER_PROPS + SEG_HANDLE_SIZE_AT);
	s->index_off = keys_get_u64le(f + SEG_FOOTER_INDEX);
	s->index_size = keys_get_u32le(f + SEG_FOOTER_INDEX + SEG_HANDLE_SIZE_AT);
	const uint8_t *d;
	size_t n;
	uint8_t *owned;
	if (!seg_block(s, s->filter_off, s->filter_size, s->foff, "filter", &d, &n, &owned))
		return false;
	mem_free(owned);
	if (!seg_block(s, s->props_off, s->props_size, s->foff, "props", &d, &n, &owned))
		return false;
	if (owned) {
		mem_free(owned);
		problem(path, s->props_off, "props block is compressed");
		return false;
	}
	if (n < SEG_PROPS_FIXED_SIZE) {
		problem(path, s->props_off, "props block too short (%zu bytes)", n);
		return false;
	}
	struct seg_props *p = &s->props;
	p->entries = keys_get_u64le(d + SEG_PROPS_ENTRIES);
	p->tombstones = keys_get_u64le(d + SEG_PROPS_TOMBSTONES);
	p->min_seq = keys_get_u64le(d + SEG_PROPS_MIN_SEQ);
	p->max_seq = keys_get_u64le(d + SEG_PROPS_MAX_SEQ);
	p->raw_key_bytes = keys_get_u64le(d + SEG_PROPS_RAW_KEYS);
	p->raw_value_bytes = keys_get_u64le(d + SEG_PROPS_RAW_VALUES);
	p->data_blocks = keys_get_u64le(d + SEG_PROPS_DATA_BLOCKS);
	p->compression = keys_get_u32le(d + SEG_PROPS_COMPRESSION);
	p->file_size = s->size;
	return segfile_props_keys(s, d, n);
}

/* What one walk over a segment's entries found. */
struct segwalk {
	uint64_t entries, tombstones, min_seq, max_seq, raw_keys, raw_values, blocks;
	uint64_t bad_blocks; /* unreadable: the counts below are partial */
	uint8_t *first, *last;
	size_t first_len, last_len;
};

static bool keep_copy(uint8_t **dst, size_t *dlen, keys_slice k)
{
	uint8_t *p = mem_realloc(*dst, k.len ? k.len : 1);
	if (!p)
		return false;
	memcpy(p, k.data, k.len);
	*dst = p;
	*dlen = k.len;
	return true;
}

/* Version 2 or 3: a value as stored, split by its tag into *inl (the
 * value is here) or *ref (it is in the log: *kept). NULL, or what is
 * malformed (*inl is then the stored bytes). */
static const char *seg_value_split(const struct segfile *s, keys_slice k, keys_slice stored,
                                   keys_slice *inl, struct seg_log_ref *ref, bool *kept)
{
	bool tombstone = k.len >= KEYS_TRAILER_SIZE && keys_ikey_kind(k) == KEYS_KIND_DELETE;
	*kept = false;
	*inl = stored;
	if (stored.len == 0)
		return "value without a tag";
	if (stored.data[0] == SEG_VALUE_INLINE) {
		/* A tombstone has no value to keep: the tag alone. */
		if (tombstone && stored.len != 1)
			return "tombstone carries a value";
		*inl = keys_slice_of(stored.data + 1, stored.len - 1);
		return NULL;
	}
	const char *bad = seg_ref_decode(stored, s->version, ref);
	if (bad)
		return bad;
	if (tombstone)
		return "tombstone refers to the log";
	*kept = true;
	return NULL;
}

/* v: the value's bytes, or ref when the log keeps them. */
static void print_entry(keys_slice k, keys_slice v, const struct seg_log_ref *ref)
{
	printf("  entry: ");
	print_ikey(stdout, k);
	if (ref) {
		printf(" log_value offset=%llu len=%u checksum=%016llx", (ull)ref->offset, ref->len,
		       (ull)ref->checksum);
		if (ref->head)
			printf(" of_record_from=%llu", (ull)(ref->offset - ref->head));
	} else {
		printf(" vlen=%zu value=", v.len);
		print_preview(stdout, v.data, v.len, 64);
	}
	fputc('\n', stdout);
}

/* check: reads the value ref points at back from the segment's log and
 * compares its checksum, as a get would. Problems name the log, the
 * offset and the segment. */
static void segfile_check_ref(struct segfile *s, const struct seg_log_ref *ref)
{
	if (ref->offset > s->log_size || ref->len > s->log_size - ref->offset) {
		problem(s->log_path, ref->offset,
		        "value of %u bytes kept for %s lies past the end of the log (%llu bytes)",
		        ref->len, s->path, (ull)s->log_size);
		return;
	}
	if (!s->vbuf || ref->len > s->vcap) {
		uint8_t *b = mem_realloc(s->vbuf, ref->len ? ref->len : 1);
		if (!b) {
			problem(s->log_path, ref->offset, "out of memory for a %u-byte value",
			        ref->len);
			return;
		}
		s->vbuf = b;
		s->vcap = ref->len;
	}
	if (seg_ref_read(s->log_fd, s->log_path, s->path, ref, s->vbuf))
		problem(s->log_path, ref->offset, "%s", cesium_errmsg());
}

/* One entry of a data block at boff: its value's tag (version 2), the
 * value it refers to (when the log is open), and its line when print. */
static void segfile_entry(struct segfile *s, uint64_t boff, uint64_t entry, keys_slice k,
                          keys_slice v, bool print)
{
	keys_slice inl = v;
	struct seg_log_ref ref = {0};
	bool kept = false;
	const char *bad = s->props.value_log ? seg_value_split(s, k, v, &inl, &ref, &kept) : NULL;
	if (print)
		print_entry(k, inl, kept ? &ref : NULL);
	if (bad && !v.len)
		problem(s->path, boff, "entry %llu: %s", (ull)entry, bad);
	else if (bad)
		problem(s->path, boff, "entry %llu: %s (tag %u, %zu bytes stored)", (ull)entry, bad,
		        v.data[0], v.len);
	else if (kept && s->log_fd >= 0)
		segfile_check_ref(s, &ref);
}

/* Walks index and every data block, checking checksums and key order;
 * prints each entry when print. Reports problems; returns false if the walk
 * could not finish. */
static bool segfile_walk(struct segfile *s, bool print, struct segwalk *w)
{
	const uint8_t *idx;
	size_t ilen;
	uint8_t *iowned = NULL;
	iter *ii = NULL;
	bool ok = false;
	memset(w, 0, sizeof(*w));
	w->min_seq = UINT64_MAX;
	if (!seg_block(s, s->index_off, s->index_size, s->foff, "index", &idx, &ilen, &iowned))
		return false;
	if (block_iter_new(idx, ilen, true, &ii)) {
		problem(s->path, s->index_off, "out of memory");
		goto out;
	}
	uint64_t prev_end = 0;
	for (iter_seek_first(ii); iter_valid(ii); iter_next(ii)) {
		keys_slice ik = iter_key(ii), iv = iter_value(ii);
		if (iv.len != SEG_HANDLE_SIZE) {
			problem(s->path, s->index_off, "index entry %llu is not a block handle",
			        (ull)w->blocks);
			goto out;
		}
		uint64_t boff = keys_get_u64le(iv.data + SEG_HANDLE_OFFSET);
		uint64_t bsize = keys_get_u32le(iv.data + SEG_HANDLE_SIZE_AT);
		if (print) {
			printf("index %llu: block offset=%llu size=%llu last=", (ull)w->blocks,
			       (ull)boff, (ull)bsize);
			print_ikey(stdout, ik);
			fputc('\n', stdout);
		}
		w->blocks++;
		if (boff != prev_end)
			problem(s->path, boff,
			        "data block does not follow the previous one (at %llu)",
			        (ull)prev_end);
		prev_end = boff + bsize + SEG_TRAILER_SIZE;
		const uint8_t *d;
		size_t dlen;
		uint8_t *owned;
		if (!seg_block(s, boff, bsize, s->filter_off, "data", &d, &dlen, &owned)) {
			w->bad_blocks++;
			continue;
		} /* reported; go on with the next block */
		iter *bi = NULL;
		if (block_iter_new(d, dlen, true, &bi)) {
			mem_free(owned);
			problem(s->path, boff, "out of memory");
			goto out;
		}
		keys_slice last = {NULL, 0};
		for (iter_seek_first(bi); iter_valid(bi); iter_next(bi)) {
			keys_slice k = iter_key(bi), v = iter_value(bi);
			segfile_entry(s, boff, w->entries, k, v, print);
			if (w->last &&
			    keys_compare_ikey(keys_slice_of(w->last, w->last_len), k) >= 0)
				problem(s->path, boff, "keys out of order at entry %llu",
				        (ull)w->entries);
			if (!w->first && !keep_copy(&w->first, &w->first_len, k))
				goto oom;
			if (!keep_copy(&w->last, &w->last_len, k))
				goto oom;
			last = keys_slice_of(w->last, w->last_len);
			w->entries++;
			if (keys_ikey_kind(k) == KEYS_KIND_DELETE)
				w->tombstones++;
			else if (keys_ikey_kind(k) != KEYS_KIND_VALUE)
				problem(s->path, boff, "entry %llu has unknown kind %u",
				        (ull)w->entries - 1, keys_ikey_kind(k));
			uint64_t seq = keys_ikey_seq(k);
			w->min_seq = seq < w->min_seq ? seq : w->min_seq;
			w->max_seq = seq > w->max_seq ? seq : w->max_seq;
			w->raw_keys += k.len;
			w->raw_values += v.len; /* as stored: tag and reference included */
		}
		if (iter_status(bi))
			problem(s->path, boff, "malformed data block");
		else if (!last.data)
			problem(s->path, boff, "empty data block");
		else if (keys_compare_ikey(last, ik) != 0)
			problem(s->path, s->index_off,
			        "index key of block %llu differs from its last key",
			        (ull)w->blocks - 1);
		iter_destroy(bi);
		mem_free(owned);
		continue;
	oom:
		iter_destroy(bi);
		mem_free(owned);
		problem(s->path, boff, "out of memory");
		goto out;
	}
	if (iter_status(ii)) {
		problem(s->path, s->index_off, "malformed index block");
		goto out;
	}
	if (prev_end != s->filter_off)
		problem(s->path, prev_end, "data blocks end at %llu, the filter starts at %llu",
		        (ull)prev_end, (ull)s->filter_off);
	ok = true;
out:
	iter_destroy(ii);
	mem_free(iowned);
	return ok;
}

static void segwalk_free(struct segwalk *w)
{
	mem_free(w->first);
	mem_free(w->last);
}

/* Props against what the walk counted. */
static void segfile_check_props(const struct segfile *s, const struct segwalk *w)
{
	const struct seg_props *p = &s->props;
	uint64_t o = s->props_off;
	if (w->bad_blocks)
		return; /* counts are partial; the bad blocks are already reported */
	if (p->entries != w->entries)
		problem(s->path, o, "props say %llu entries, blocks hold %llu", (ull)p->entries,
		        (ull)w->entries);
	if (p->tombstones != w->tombstones)
		problem(s->path, o, "props say %llu tombstones, blocks hold %llu",
		        (ull)p->tombstones, (ull)w->tombstones);
	if (p->data_blocks != w->blocks)
		problem(s->path, o, "props say %llu data blocks, index lists %llu",
		        (ull)p->data_blocks, (ull)w->blocks);
	if (p->raw_key_bytes != w->raw_keys || p->raw_value_bytes != w->raw_values)
		problem(s->path, o, "props raw key/value bytes disagree with the blocks");
	if (w->entries && (p->min_seq != w->min_seq || p->max_seq != w->max_seq))
		problem(s->path, o, "props seq range [%llu, %llu], blocks [%llu, %llu]",
		        (ull)p->min_seq, (ull)p->max_seq, (ull)w->min_seq, (ull)w->max_seq);
	if (w->entries &&
	    (keys_compare_bytes(p->smallest, keys_slice_of(w->first, w->first_len)) != 0 ||
	     keys_compare_bytes(p->largest, keys_slice_of(w->last, w->last_len)) != 0))
		problem(s->path, o, "props smallest/largest keys differ from the first/last entry");
}

/* ---- dump ----------------------------------------------------------- */

static int dump_batch_entry(void *ctx, uint64_t seq, enum keys_kind kind, keys_slice nskey,
                            keys_slice value)
{
	(void)ctx;
	printf("  seq=%llu kind=%s ", (ull)seq, kind == KEYS_KIND_VALUE ? "put" : "del");
	print_nskey(stdout, nskey);
	if (kind == KEYS_KIND_VALUE)
		printf(" vsize=%zu", value.len);
	fputc('\n', stdout);
	return 0;
}

static void print_edit(const struct edit *e)
{
	if (e->has_log_number)
		printf("  log_number=%llu\n", (ull)e->log_number);
	if (e->has_next_file_number)
		printf("  next_file_number=%llu\n", (ull)e->next_file_number);
	if (e->has_last_seq)
		printf("  last_seq=%llu\n", (ull)e->last_seq);
	for (size_t i = 0; i < e->ndeleted; i++)
		printf("  deleted L%d %06llu.seg\n", e->deleted[i].level,
		       (ull)e->deleted[i].number);
	for (size_t i = 0; i < e->nadded; i++) {
		const struct file_desc *f = &e->added[i];
		printf("  added L%d %06llu.seg size=%llu entries=%llu tombstones=%llu seq=[%llu, "
		       "%llu] run=%llu",
		       f->level, (ull)f->number, (ull)f->file_size, (ull)f->entries,
		       (ull)f->tombstones, (ull)f->min_seq, (ull)f->max_seq, (ull)f->run);
		if (f->value_log)
			printf(" value_log=%llu", (ull)f->value_log);
		printf("\n    smallest: ");
		print_ikey(stdout, keys_slice_of(f->smallest, f->smallest_len));
		printf("\n    largest:  ");
		print_ikey(stdout, keys_slice_of(f->largest, f->largest_len));
		fputc('\n', stdout);
	}
}

/* Walks a log file's records; each payload goes to fn (which reports). */
static bool log_walk(const char *path, bool manifest, bool print, uint64_t *records,
                     uint64_t *prev_seq_end)
{
	uint8_t *buf = NULL;
	size_t size;
	int rc = log_read_file(path, &buf, &size);
	if (rc) {
		problem_msg(path, rc);
		return false;
	}
	struct log_reader r;
	keys_slice pl;
	log_reader_init(&r, buf, size, path);
	*records = 0;
	while ((rc = log_reader_next(&r, &pl)) == 1) {
		(*records)++;
		if (manifest) {
			struct edit e;
			if (print)
				printf("record %llu at offset %llu: %zu bytes\n", (ull)*records - 1,
				       (ull)r.record_offset, pl.len);
			rc = edit_decode(pl.data, pl.len, &e, path,
			                 r.record_offset + LOG_HEADER_SIZE);
			if (rc)
				problem_msg(path, rc);
			else if (print)
				print_edit(&e);
			edit_free(&e);
			continue;
		}
		if (pl.len < BATCH_HEADER_SIZE) {
			problem(path, r.record_offset,
			        "record of %zu bytes is shorter than a batch header", pl.len);
			continue;
		}
		uint64_t seq = batch_get_seq(pl.data);
		uint32_t count = keys_get_u32le(pl.data + 8);
		if (print)
			printf("record %llu at offset %llu: %zu bytes, seq=%llu count=%u\n",
			       (ull)*records - 1, (ull)r.record_offset, pl.len, (ull)seq, count);
		if ((rc = batch_iterate(pl.data, pl.len, print ? dump_batch_entry : NULL, NULL)))
			problem(path, r.record_offset, "bad batch: %s", cesium_errmsg());
		else if (prev_seq_end && *prev_seq_end && seq < *prev_seq_end)
			problem(path, r.record_offset,
			        "batch seq %llu below the previous batch's end %llu", (ull)seq,
			        (ull)*prev_seq_end);
		if (prev_seq_end && !rc)
			*prev_seq_end = seq + count;
	}
	if (rc < 0)
		problem_msg(path, rc);
	else if (r.torn)
		printf("note: %s: torn tail at offset %llu discarded (valid end %llu)\n", path,
		       (ull)r.torn_offset, (ull)r.valid_end);
	else if (print)
		printf("end of log at offset %llu (file size %zu)\n", (ull)r.valid_end, size);
	mem_free(buf);
	return rc >= 0;
}

static bool has_suffix(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);
	return a >= b && strcmp(s + a - b, suf) == 0;
}

/* A file of another name is taken for a segment when its footer's magic
 * is in place. */
static bool seg_magic_at_end(const char *path)
{
	uint8_t m[8];
	bool yes = false;
	int fd = io_open(path, O_RDONLY, 0);
	if (fd < 0)
		return false;
	int64_t size = io_file_size(fd);
	if (size >= SEG_FOOTER_SIZE &&
	    io_pread_full(fd, m, 8, (uint64_t)size - SEG_FOOTER_SIZE + SEG_FOOTER_MAGIC) == 8)
		yes = keys_get_u64le(m) == SEG_MAGIC;
	io_close(fd);
	return yes;
}

static int dump_seg(const char *path)
{
	struct segfile s;
	struct segwalk w = {0};
	if (segfile_load(&s, path)) {
		printf("segment %s: %zu bytes\n", path, s.size);
		printf("footer at offset %llu: version=%u magic=%016llx\n", (ull)s.foff, s.version,
		       (ull)s.magic);
		printf("  filter offset=%llu size=%llu\n  props  offset=%llu size=%llu\n"
		       "  index  offset=%llu size=%llu\n",
		       (ull)s.filter_off, (ull)s.filter_size, (ull)s.props_off, (ull)s.props_size,
		       (ull)s.index_off, (ull)s.index_size);
		const struct seg_props *p = &s.props;
		printf("props: entries=%llu tombstones=%llu seq=[%llu, %llu] raw_key_bytes=%llu "
		       "raw_value_bytes=%llu data_blocks=%llu compression=%u",
		       (ull)p->entries, (ull)p->tombstones, (ull)p->min_seq, (ull)p->max_seq,
		       (ull)p->raw_key_bytes, (ull)p->raw_value_bytes, (ull)p->data_blocks,
		       p->compression);
		if (p->value_log)
			printf(" value_log=%llu", (ull)p->value_log);
		printf("\n  smallest: ");
		if (p->smallest.len)
			print_ikey(stdout, p->smallest);
		printf("\n  largest:  ");
		if (p->largest.len)
			print_ikey(stdout, p->largest);
		fputc('\n', stdout);
		if (segfile_walk(&s, true, &w))
			segfile_check_props(&s, &w);
	}
	segwalk_free(&w);
	segfile_free(&s);
	return problems ? EXIT_PROBLEMS : EXIT_OK;
}

static int cmd_dump(struct cli *c)
{
	const char *path = c->args[0];
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	uint64_t records, seq_end = 0;
	struct stat st;
	if (stat(path, &st) != 0) {
		fprintf(stderr, "cesium: %s: %s\n", path, strerror(errno));
		return EXIT_ENGINE;
	}
	if (has_suffix(base, ".seg") || seg_magic_at_end(path))
		return dump_seg(path);
	if (has_suffix(base, ".wal")) {
		printf("log %s\n", path);
		log_walk(path, false, true, &records, &seq_end);
		printf("%llu records\n", (ull)records);
	} else if (strncmp(base, "MANIFEST-", 9) == 0) {
		printf("manifest %s\n", path);
		log_walk(path, true, true, &records, NULL);
		printf("%llu records\n", (ull)records);
	} else {
		return usage_error("dump: cannot tell the kind of %s (expected *.wal, *.seg or "
		                   "MANIFEST-*)",
		                   path);
	}
	return problems ? EXIT_PROBLEMS : EXIT_OK;
}

/* ---- check ---------------------------------------------------------- */

static const struct file_meta *version_find(const struct version *v, uint64_t number)
{
	for (int l = 0; l < VERSION_LEVELS; l++)
		for (size_t i = 0; i < v->nfiles[l]; i++)
			if (v->files[l][i]->number == number)
				return v->files[l][i];
	return NULL;
}

/* The file that keeps values in log number n, if any. */
static const struct file_meta *version_log_keeper(const struct version *v, uint64_t n)
{
	for (int l = 0; l < VERSION_LEVELS; l++)
		for (size_t i = 0; i < v->nfiles[l]; i++)
			if (v->files[l][i]->value_log == n)
				return v->files[l][i];
	return NULL;
}

/* Opens the log a version 2 segment keeps values in, named as the engine
 * names it, so that the walk reads back every value it refers to. A
 * missing log is one problem, not one per reference. */
static void segfile_open_log(struct segfile *s, const char *dir)
{
	if (!s->props.value_log)
		return;
	s->log_path = filename_numbered(dir, s->props.value_log, "wal");
	if (!s->log_path) {
		problem(s->path, s->props_off, "out of memory");
		return;
	}
	int fd = io_open(s->log_path, O_RDONLY, 0);
	if (fd < 0) {
		problem(s->log_path, 0, "cannot be opened (%s), yet %s keeps values in it",
		        strerror(-fd), s->path);
		return;
	}
	int64_t size = io_file_size(fd);
	if (size < 0) {
		problem(s->log_path, 0, "cannot take its size (%s); %s keeps values in it",
		        strerror((int)-size), s->path);
		io_close(fd);
		return;
	}
	s->log_fd = fd;
	s->log_size = (uint64_t)size;
}

static void check_segment(const char *dir, const struct file_meta *f)
{
	char *path = filename_numbered(dir, f->number, "seg");
	struct segfile s;
	struct segwalk w = {0};
	if (!path) {
		problem(dir, 0, "out of memory");
		return;
	}
	/* Our own walk first: it names the block of each problem. */
	uint64_t before = problems;
	if (segfile_load(&s, path)) {
		segfile_open_log(&s, dir);
		if (segfile_walk(&s, false, &w))
			segfile_check_props(&s, &w);
		const struct seg_props *p = &s.props;
		if (f->file_size != s.size)
			problem(path, 0, "MANIFEST says %llu bytes, file has %zu",
			        (ull)f->file_size, s.size);
		if (f->entries != p->entries || f->tombstones != p->tombstones)
			problem(path, s.props_off,
			        "MANIFEST says %llu entries / %llu tombstones, props %llu / %llu",
			        (ull)f->entries, (ull)f->tombstones, (ull)p->entries,
			        (ull)p->tombstones);
		if (f->min_seq != p->min_seq || f->max_seq != p->max_seq)
			problem(path, s.props_off, "MANIFEST seq range differs from props");
		if (keys_compare_bytes(keys_slice_of(f->smallest, f->smallest_len), p->smallest) ||
		    keys_compare_bytes(keys_slice_of(f->largest, f->largest_len), p->largest))
			problem(path, s.props_off, "MANIFEST key range differs from props");
		/* The engine refuses to read a segment whose log the two name
		 * differently: one of them would lose its values. */
		if (f->value_log != p->value_log)
			problem(path, s.props_off, "MANIFEST says value log %llu, props %llu",
			        (ull)f->value_log, (ull)p->value_log);
	}
	/* Then: does the engine's reader accept it? Only asked when our walk
	 * found nothing, so that one fault is not reported twice (the reader
	 * stops at the first problem our walk has already named). */
	if (problems != before)
		goto out;
	int fd = io_open(path, O_RDONLY, 0);
	if (fd < 0) {
		problem(path, 0, "listed in the MANIFEST (L%d) but cannot be opened: %s", f->level,
		        strerror(-fd));
		goto out;
	}
	seg_reader *r = NULL;
	int rc = seg_reader_open(fd, path, f->number, NULL, &r);
	if (rc) {
		problem_msg(path, rc);
	} else {
		/* The reader takes the log over: without it, reading a value
		 * kept there fails. */
		if (seg_reader_props(r)->value_log && s.log_fd >= 0) {
			seg_reader_attach_log(r, s.log_fd, s.log_path);
			s.log_fd = -1;
		}
		/* and can it iterate every entry (every block checksum)? */
		iter *it = NULL;
		uint64_t n = 0;
		struct seg_iter_opts io = {.fill_cache = false, .readahead = 1 << 20};
		if ((rc = seg_reader_iter_new(r, &io, &it)) == 0) {
			for (iter_seek_first(it); iter_valid(it); iter_next(it))
				n++;
			if ((rc = iter_status(it)))
				problem_msg(path, rc);
			else if (n != seg_reader_props(r)->entries)
				problem(path, 0, "reader iterated %llu entries, props say %llu",
				        (ull)n, (ull)seg_reader_props(r)->entries);
			iter_destroy(it);
		} else {
			problem_msg(path, rc);
		}
		seg_reader_unref(r);
	}
out:
	segwalk_free(&w);
	segfile_free(&s);
	mem_free(path);
}

static int cmd_check(struct cli *c)
{
	const char *dir = c->args[0];
	char *mpath = NULL, *lock = NULL;
	struct version *v = NULL;
	struct version_env env = {0};
	uint64_t valid_end = 0, records;
	int lock_fd = -1, rc;
	struct stat st;

	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "cesium: %s: not a directory\n", dir);
		return EXIT_ENGINE;
	}
	/* A shared lock keeps a writer from opening it mid-check; if one holds
	 * it, the check reads a moving target: say so, go on. */
	if ((lock = mem_printf("%s/LOCK", dir)) && (lock_fd = io_open(lock, O_RDONLY, 0)) >= 0 &&
	    flock(lock_fd, LOCK_SH | LOCK_NB) != 0)
		printf("warning: %s is open in another process; results may be inconsistent\n",
		       dir);

	rc = manifest_read_current(dir, &mpath);
	if (rc) {
		problem_msg(dir, rc);
		goto out;
	}
	printf("checking %s (manifest %s)\n", dir, mpath);
	uint64_t before = problems;
	log_walk(mpath, true, false, &records, NULL);
	rc = version_recover(mpath, &env, NULL, NULL, &v, &valid_end);
	if (rc) {
		/* Recovery stops at the first bad record, which our walk has
		 * already named when it found one. */
		if (problems == before)
			problem_msg(mpath, rc);
		goto out;
	}
	uint64_t nseg = 0;
	for (int l = 0; l < VERSION_LEVELS; l++) {
		for (size_t i = 0; i < v->nfiles[l]; i++, nseg++)
			check_segment(dir, v->files[l][i]);
		if (l >= VERSION_TIERED_LEVELS && !version_level_is_sorted_run(v, l))
			problem(mpath, 0, "level L%d is not one sorted run", l);
	}
	printf("%llu manifest records, %llu segments checked\n", (ull)records, (ull)nseg);

	DIR *d = opendir(dir);
	if (!d) {
		problem(dir, 0, "cannot list: %s", strerror(errno));
		goto out;
	}
	const char *mbase = strrchr(mpath, '/');
	mbase = mbase ? mbase + 1 : mpath;
	uint64_t seq_end = 0, nwal = 0, nkept = 0;
	/* WALs in number order, so batch sequences can be checked across them. */
	struct dirent **ents = NULL;
	int ne = scandir(dir, &ents, NULL, alphasort);
	closedir(d);
	for (int i = 0; i < ne; i++) {
		const char *name = ents[i]->d_name;
		uint64_t n;
		char *p = mem_printf("%s/%s", dir, name);
		if (!p) {
			problem(dir, 0, "out of memory");
		} else if ((n = filename_number(name, "seg")) != 0) {
			if (!version_find(v, n))
				problem(p, 0, "orphan segment: not in the MANIFEST");
		} else if ((n = filename_number(name, "wal")) != 0) {
			if (n < v->log_number && version_log_keeper(v, n)) {
				/* Its batches are in segments, and what is still
				 * read from it, the values a segment refers to,
				 * check_segment has verified one by one. */
				nkept++;
			} else if (n < v->log_number) {
				problem(p, 0, "orphan log: below the MANIFEST's log number %llu",
				        (ull)v->log_number);
			} else {
				log_walk(p, false, false, &records, &seq_end);
				nwal++;
			}
		} else if (strncmp(name, "MANIFEST-", 9) == 0) {
			if (strcmp(name, mbase) != 0)
				problem(p, 0, "orphan MANIFEST: CURRENT names %s", mbase);
		} else if (strcmp(name, "CURRENT.tmp") == 0 || strcmp(name, "OPTIONS.tmp") == 0) {
			problem(p, 0, "leftover temporary file");
		}
		mem_free(p);
		free(ents[i]);
	}
	free(ents);
	printf("%llu logs checked", (ull)nwal);
	if (nkept)
		printf(", %llu kept for the values of segments", (ull)nkept);
	fputc('\n', stdout);
out:
	if (v)
		version_unref(v);
	if (lock_fd >= 0)
		io_close(lock_fd);
	mem_free(lock);
	mem_free(mpath);
	if (problems) {
		printf("%llu problem%s found\n", (ull)problems, problems == 1 ? "" : "s");
		return EXIT_PROBLEMS;
	}
	printf("ok\n");
	return EXIT_OK;
}

/* ---- dispatch ------------------------------------------------------- */

static int cmd_help(struct cli *c);

static const struct command command_table[] = {
    {"get", "get DBPATH KEY [--ns=N] [--hex]",
     "Prints the value stored under KEY, escaped (\\xNN for non-printable bytes) or in\n"
     "hex with --hex. Exit 1 if KEY is absent.",
     2, cmd_get},
    {"put", "put DBPATH KEY VALUE [--ns=N] [--hex]",
     "Stores VALUE under KEY, creating the database if missing. Durable on exit.", 3, cmd_put},
    {"delete", "delete DBPATH KEY [--ns=N] [--hex]",
     "Deletes KEY (a key that is absent is not an error).", 2, cmd_delete},
    {"scan", "scan DBPATH [--from=K] [--to=K] [--limit=N] [--ns=N] [--hex]",
     "Prints key<TAB>value for every key of the namespace in order, from the first\n"
     "key >= --from up to (excluding) --to, at most --limit keys (default all).",
     1, cmd_scan},
    {"dump", "dump FILE",
     "Decodes one file: a .wal (each record's batch entries with seq, kind, ns, key\n"
     "and value size), a .seg (footer, props, index entries and every entry) or a\n"
     "MANIFEST-* (each version edit). Exit 1 if the file has problems.",
     1, cmd_dump},
    {"check", "check DBPATH",
     "Verifies the database without opening it for writing: CURRENT and the MANIFEST,\n"
     "every segment it names (the reader opens it, every block checksum, key order,\n"
     "props against the blocks and against the MANIFEST, every value a version 2\n"
     "segment keeps in a WAL read back against its checksum), no orphan files, every\n"
     "live WAL record and batch. Each problem is printed as\n"
     "`PROBLEM <file>: offset N: ...`. Exit 1 if any problem is found.",
     1, cmd_check},
    {"stats", "stats DBPATH", "Opens the database and prints its statistics.", 1, cmd_stats},
    {"compact", "compact DBPATH",
     "Opens the database and compacts the whole tree into one sorted run.", 1, cmd_compact},
    {"help", "help [COMMAND]", "Describes every command, or one.", -1, cmd_help},
};

static const struct command *commands_find(const char *name)
{
	for (size_t i = 0; i < sizeof(command_table) / sizeof(command_table[0]); i++)
		if (strcmp(command_table[i].name, name) == 0)
			return &command_table[i];
	return NULL;
}

static void usage_cmd(FILE *f, const struct command *cmd)
{
	fprintf(f, "usage: cesium %s\n\n%s\n", cmd->synopsis, cmd->help);
}

static int cmd_help(struct cli *c)
{
	if (c->nargs == 0) {
		usage_all(stdout);
		return EXIT_OK;
	}
	const struct command *cmd = commands_find(c->args[0]);
	if (!cmd)
		return usage_error("unknown command: %s", c->args[0]);
	usage_cmd(stdout, cmd);
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	struct cli c = {0};
	if (argc < 2)
		return usage_all(stderr), EXIT_USAGE;
	c.cmd = argv[1];
	if (strcmp(c.cmd, "--help") == 0 || strcmp(c.cmd, "-h") == 0) {
		usage_all(stdout);
		return EXIT_OK;
	}
	const struct command *cmd = commands_find(c.cmd);
	if (!cmd)
		return usage_error("unknown command: %s", c.cmd);
	bool opts_done = false;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		if (!opts_done && strcmp(a, "--") == 0) {
			opts_done = true;
		} else if (!opts_done && (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)) {
			c.help = true;
		} else if (!opts_done && strcmp(a, "--hex") == 0) {
			c.hex = true;
		} else if (!opts_done && strncmp(a, "--ns=", 5) == 0) {
			if (!parse_u64(a + 5, &c.ns))
				return usage_error("bad namespace: %s", a);
		} else if (!opts_done && strncmp(a, "--from=", 7) == 0) {
			c.from = a + 7;
			c.has_from = true;
		} else if (!opts_done && strncmp(a, "--to=", 5) == 0) {
			c.to = a + 5;
			c.has_to = true;
		} else if (!opts_done && strncmp(a, "--limit=", 8) == 0) {
			if (!parse_u64(a + 8, &c.limit))
				return usage_error("bad limit: %s", a);
		} else if (!opts_done && a[0] == '-' && a[1] == '-') {
			return usage_error("unknown option: %s", a);
		} else {
			if (c.nargs == 4)
				return usage_error("too many arguments for %s", cmd->name);
			c.args[c.nargs++] = a;
		}
	}
	if (c.help) {
		usage_cmd(stdout, cmd);
		return EXIT_OK;
	}
	if (cmd->nargs >= 0 && c.nargs != cmd->nargs) {
		fprintf(stderr, "cesium: %s takes %d argument%s\n", cmd->name, cmd->nargs,
		        cmd->nargs == 1 ? "" : "s");
		usage_cmd(stderr, cmd);
		return EXIT_USAGE;
	}
	if (cmd->nargs < 0 && c.nargs > 1)
		return usage_error("too many arguments for %s", cmd->name);
	if (c.hex && strcmp(cmd->name, "put") && strcmp(cmd->name, "get") &&
	    strcmp(cmd->name, "delete") && strcmp(cmd->name, "scan"))
		return usage_error("--hex does not apply to %s", cmd->name);
	if ((c.has_from || c.has_to || c.limit) && strcmp(cmd->name, "scan"))
		return usage_error("--from/--to/--limit apply to scan only, not %s", cmd->name);
	return cmd->run(&c);
}
