/* Writes the seed corpus of every fuzz target into <dir>/<target>/ from the
 * engine's own encoders, so the seeds are valid by construction:
 *   gen_corpus fuzz/corpus */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cesium.h"
#include "core/batch.h"
#include "core/edit.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/segment.h"

static const char *root;

static void put_file(const char *target, const char *name, const void *p, size_t n)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", root, target);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/%s", root, target, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(p, 1, n, f) != n) {
		fprintf(stderr, "gen_corpus: cannot write %s\n", path);
		exit(1);
	}
	fclose(f);
}

static void make_ikey(uint8_t *out, size_t *len, uint64_t ns, const char *key, uint64_t seq,
                      enum keys_kind kind)
{
	uint8_t nskey[64];
	size_t kl = strlen(key);
	keys_make_nskey(nskey, ns, key, kl);
	keys_make_ikey(out, nskey, KEYS_NS_SIZE + kl, seq, kind);
	*len = KEYS_NS_SIZE + kl + KEYS_TRAILER_SIZE;
}

static void gen_segment(const char *name, int nkeys, size_t block_size, int bloom,
                        enum seg_compression comp)
{
	struct seg_writer_opts o = {block_size, bloom, comp, 0};
	seg_writer *w;
	if (seg_writer_new(&o, &w))
		exit(1);
	/* Keys must be increasing: ns 0 first, then ns 1. */
	for (int ns = 0; ns < 2; ns++)
		for (int i = 0; i < nkeys; i++) {
			char key[32], val[64];
			uint8_t ik[64];
			size_t il;
			snprintf(key, sizeof(key), "key%04d", i);
			snprintf(val, sizeof(val), "value-%d-abcabcabc", i);
			enum keys_kind kind = i % 5 == 4 ? KEYS_KIND_DELETE : KEYS_KIND_VALUE;
			make_ikey(ik, &il, (uint64_t)ns, key, (uint64_t)(10 + i), kind);
			keys_slice v = kind == KEYS_KIND_VALUE ? keys_slice_of(val, strlen(val))
			                                       : keys_slice_of("", 0);
			if (seg_writer_add(w, keys_slice_of(ik, il), v))
				exit(1);
		}
	if (seg_writer_finish(w))
		exit(1);
	size_t total = (size_t)seg_writer_file_size(w);
	uint8_t *file = calloc(1, total);
	struct seg_out out;
	while (seg_writer_take(w, 0, &out)) {
		memcpy(file + out.off, out.data, out.len);
		mem_free(out.data);
	}
	put_file("segment_reader", name, file, total);
	free(file);
	seg_writer_free(w);
}

static size_t append_record(uint8_t *dst, const void *p, size_t n)
{
	log_encode(dst, p, n);
	return log_record_size(n);
}

static void gen_batches(void)
{
	uint8_t wal[8192];
	size_t wlen = 0;
	uint64_t seq = 1;
	for (int r = 0; r < 4; r++) {
		cesium_batch *b;
		if (cesium_batch_new(&b))
			exit(1);
		for (int i = 0; i <= r; i++) {
			char key[16];
			snprintf(key, sizeof(key), "k%d", i);
			if (i == 2)
				cesium_batch_delete(b, 7, key, strlen(key));
			else
				cesium_batch_put(b, (uint64_t)r, key, strlen(key), "val",
				                 (size_t)r);
		}
		batch_set_seq(b->rep, seq);
		seq += batch_count(b);
		char name[32];
		snprintf(name, sizeof(name), "batch-%d", r);
		put_file("batch_decode", name, batch_data(b), batch_size(b));
		wlen += append_record(wal + wlen, batch_data(b), batch_size(b));
		cesium_batch_free(b);
	}
	put_file("wal_replay", "four-records", wal, wlen);
	memset(wal + wlen, 0, 64); /* preallocated zero tail */
	put_file("wal_replay", "zero-tail", wal, wlen + 64);
	put_file("wal_replay", "torn-tail", wal, wlen - 5);
}

static void gen_manifest(void)
{
	uint8_t buf[4096];
	size_t len = 0;
	struct edit e;
	edit_init(&e);
	edit_set_log_number(&e, 5);
	edit_set_next_file_number(&e, 9);
	edit_set_last_seq(&e, 100);
	for (int i = 0; i < 3; i++) {
		uint8_t s[64], l[64];
		size_t sl, ll;
		char k1[16], k2[16];
		snprintf(k1, sizeof(k1), "a%d", i);
		snprintf(k2, sizeof(k2), "b%d", i);
		make_ikey(s, &sl, 0, k1, 10, KEYS_KIND_VALUE);
		make_ikey(l, &ll, 0, k2, 11, KEYS_KIND_VALUE);
		struct file_desc f = {.level = i == 0 ? 0 : 3 + i,
		                      .number = (uint64_t)(6 + i),
		                      .file_size = 4096,
		                      .smallest = s,
		                      .smallest_len = sl,
		                      .largest = l,
		                      .largest_len = ll,
		                      .min_seq = 10,
		                      .max_seq = 11,
		                      .entries = 2,
		                      .tombstones = 0,
		                      .run = 0};
		if (edit_add_file(&e, &f))
			exit(1);
	}
	uint8_t *p;
	size_t n;
	if (edit_encode(&e, &p, &n))
		exit(1);
	len += append_record(buf + len, p, n);
	mem_free(p);
	edit_free(&e);
	edit_init(&e);
	edit_delete_file(&e, 0, 6);
	edit_set_last_seq(&e, 120);
	if (edit_encode(&e, &p, &n))
		exit(1);
	len += append_record(buf + len, p, n);
	mem_free(p);
	edit_free(&e);
	put_file("manifest_replay", "two-edits", buf, len);
}

static void gen_options(void)
{
	static const char *seeds[][2] = {
	    {"memtable-size", "memtable_size=64MiB"},
	    {"block-size", "block_size=4096"},
	    {"compression", "compression=zstd"},
	    {"sync", "sync_writes=true"},
	    {"text",
	     "# options\nmemtable_size=1MiB\nbloom_bits_per_key=10\n\nl0_stop_trigger=12\n"},
	};
	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++)
		put_file("options_parse", seeds[i][0], seeds[i][1], strlen(seeds[i][1]));
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: gen_corpus DIR\n");
		return 2;
	}
	root = argv[1];
	mkdir(root, 0755);
	gen_segment("small", 6, 0, 10, SEG_COMPRESSION_NONE);
	gen_segment("multi-block", 60, 256, 10, SEG_COMPRESSION_NONE);
	gen_segment("zstd", 40, 512, 0, SEG_COMPRESSION_ZSTD);
	gen_segment("empty", 0, 0, 0, SEG_COMPRESSION_NONE);
	gen_batches();
	gen_manifest();
	gen_options();
	return 0;
}
