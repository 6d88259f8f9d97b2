#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <xxhash.h>

#include "error.h"
#include "keys.h"
#include "log.h"
#include "mem.h"
#include "test_util.h"

static const size_t sizes[] = {0, 1, 7, 255, 256, 257, 3000};
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

/* Builds a log of NSIZES records (payload i filled with byte i+1) followed
 * by pad zero bytes; offs[i] is where record i starts, offs[NSIZES] the end. */
static uint8_t *build_log(size_t pad, size_t *size, size_t offs[NSIZES + 1])
{
	size_t total = 0;
	for (size_t i = 0; i < NSIZES; i++)
		total += log_record_size(sizes[i]);
	uint8_t *buf = calloc(1, total + pad + 1);
	assert_non_null(buf);
	uint8_t payload[4096];
	size_t off = 0;
	for (size_t i = 0; i < NSIZES; i++) {
		memset(payload, (int)(i + 1), sizes[i]);
		offs[i] = off;
		log_encode(buf + off, payload, sizes[i]);
		off += log_record_size(sizes[i]);
	}
	offs[NSIZES] = off;
	*size = total + pad;
	return buf;
}

/* Reads every record; checks each against build_log's payloads; returns the
 * count, or the error code. */
static int read_all(const uint8_t *buf, size_t size, struct log_reader *r)
{
	log_reader_init(r, buf, size, "test.log");
	keys_slice p;
	int n = 0, rc;
	while ((rc = log_reader_next(r, &p)) == 1) {
		assert_true((size_t)n < NSIZES);
		assert_int_equal(p.len, sizes[n]);
		for (size_t k = 0; k < p.len; k++)
			assert_int_equal(p.data[k], n + 1);
		n++;
	}
	return rc < 0 ? rc : n;
}

/* Records of many sizes come back byte for byte, and the end is clean. */
static void test_log_round_trip(void **state)
{
	(void)state;
	size_t size, offs[NSIZES + 1];
	uint8_t *buf = build_log(0, &size, offs);
	struct log_reader r;
	assert_int_equal(read_all(buf, size, &r), NSIZES);
	assert_false(r.torn);
	assert_int_equal(r.valid_end, size);
	/* An empty payload still has a non-zero header, so it is never
	 * mistaken for the zero end marker. */
	uint8_t hdr[LOG_HEADER_SIZE] = {0};
	log_encode(hdr, NULL, 0);
	assert_int_not_equal(keys_get_u64le(hdr + LOG_CHECKSUM_OFFSET), 0);
	/* Further calls keep reporting the end. */
	keys_slice p;
	assert_int_equal(log_reader_next(&r, &p), 0);
	free(buf);
}

/* Zero bytes where a header would start end the log cleanly. */
static void test_log_zero_padding_ends_log(void **state)
{
	(void)state;
	for (size_t pad = 1; pad < 40; pad++) {
		size_t size, offs[NSIZES + 1];
		uint8_t *buf = build_log(pad, &size, offs);
		struct log_reader r;
		assert_int_equal(read_all(buf, size, &r), NSIZES);
		assert_false(r.torn);
		assert_int_equal(r.valid_end, offs[NSIZES]);
		free(buf);
	}
}

/* A zero header ends the log even if records follow it (documented: a
 * preallocated file has only zeros after its end). */
static void test_log_zero_header_stops_before_later_records(void **state)
{
	(void)state;
	size_t size, offs[NSIZES + 1];
	uint8_t *buf = build_log(0, &size, offs);
	memset(buf + offs[2], 0, LOG_HEADER_SIZE);
	struct log_reader r;
	assert_int_equal(read_all(buf, size, &r), 2);
	assert_false(r.torn);
	assert_int_equal(r.valid_end, offs[2]);
	free(buf);
}

/* Cutting the last record at any byte leaves a torn tail: the earlier
 * records are intact, the cut one is discarded, with or without zeros
 * (preallocation) after the cut. */
static void test_log_torn_tail_every_cut(void **state)
{
	(void)state;
	for (size_t pad = 0; pad <= 64; pad += 64) {
		size_t size, offs[NSIZES + 1];
		uint8_t *buf = build_log(0, &size, offs);
		size_t last = offs[NSIZES - 1];
		uint8_t *img = calloc(1, size + pad);
		assert_non_null(img);
		for (size_t cut = last; cut < size; cut++) {
			memset(img, 0, size + pad);
			memcpy(img, buf, cut);
			struct log_reader r;
			assert_int_equal(read_all(img, cut + pad, &r), NSIZES - 1);
			assert_int_equal(r.valid_end, last);
			/* Only a cut leaving nothing but zero bytes of the
			 * header reads as a clean end. */
			bool zeros = true;
			for (size_t k = last; k < cut; k++)
				zeros = zeros && buf[k] == 0;
			assert_int_equal(r.torn, !zeros);
			if (r.torn)
				assert_int_equal(r.torn_offset, last);
		}
		free(img);
		free(buf);
	}
}

/* A torn tail followed by garbage that parses as no record is still torn. */
static void test_log_torn_tail_then_garbage(void **state)
{
	(void)state;
	uint64_t seed = test_seed("log_torn_tail_then_garbage");
	size_t size, offs[NSIZES + 1];
	uint8_t *buf = build_log(0, &size, offs);
	size_t last = offs[NSIZES - 1];
	size_t cut = last + LOG_HEADER_SIZE + 10;
	for (int round = 0; round < 50; round++) {
		uint8_t *img = malloc(cut + 500);
		assert_non_null(img);
		memcpy(img, buf, cut);
		for (size_t i = cut; i < cut + 500; i++)
			img[i] = (uint8_t)test_rand(&seed);
		struct log_reader r;
		assert_int_equal(read_all(img, cut + 500, &r), NSIZES - 1);
		assert_true(r.torn);
		assert_int_equal(r.torn_offset, last);
		free(img);
	}
	free(buf);
}

/* Any flipped bit in a middle record is corruption, reported with the
 * record's offset, never skipped. */
static void test_log_flipped_bit_in_middle_is_corrupt(void **state)
{
	(void)state;
	size_t size, offs[NSIZES + 1];
	uint8_t *buf = build_log(128, &size, offs);
	size_t bad = 3;
	char want[64];
	snprintf(want, sizeof(want), "offset %zu:", offs[bad]);
	for (size_t byte = offs[bad]; byte < offs[bad + 1]; byte++) {
		for (int bit = 0; bit < 8; bit++) {
			buf[byte] ^= (uint8_t)(1u << bit);
			struct log_reader r;
			int rc = read_all(buf, size, &r);
			assert_int_equal(rc, CESIUM_ECORRUPT);
			assert_non_null(strstr(cesium_errmsg(), want));
			assert_non_null(strstr(cesium_errmsg(), "test.log"));
			keys_slice p;
			assert_int_equal(log_reader_next(&r, &p), CESIUM_ECORRUPT);
			buf[byte] ^= (uint8_t)(1u << bit);
		}
	}
	free(buf);
}

/* A length above the cap or past the end of the file is a torn tail at the
 * end and corruption before a valid record. */
static void test_log_garbage_lengths(void **state)
{
	(void)state;
	const uint32_t lens[] = {0xffffffffu, LOG_MAX_PAYLOAD + 1, 1u << 20, 5000};
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		size_t size, offs[NSIZES + 1];
		uint8_t *buf = build_log(0, &size, offs);
		size_t last = offs[NSIZES - 1];
		memcpy(buf + last, &lens[i], 4);
		struct log_reader r;
		assert_int_equal(read_all(buf, size, &r), NSIZES - 1);
		assert_true(r.torn);
		assert_int_equal(r.torn_offset, last);
		memcpy(buf + offs[1], &lens[i], 4);
		assert_int_equal(read_all(buf, size, &r), CESIUM_ECORRUPT);
		free(buf);
	}
}

/* Random bytes and random mutations of a valid log never make the reader
 * read out of bounds (run under ASan) and every record it returns lies
 * inside the buffer. */
static void test_log_random_input_never_crashes(void **state)
{
	(void)state;
	uint64_t seed = test_seed("log_random_input");
	size_t size, offs[NSIZES + 1];
	uint8_t *valid = build_log(0, &size, offs);
	for (int round = 0; round < 3000; round++) {
		size_t n = (size_t)(test_rand(&seed) % (size + 16));
		uint8_t *img = malloc(n ? n : 1);
		assert_non_null(img);
		bool mutate = round & 1;
		for (size_t i = 0; i < n; i++)
			img[i] = mutate && i < size ? valid[i] : (uint8_t)test_rand(&seed);
		if (mutate && n)
			for (int k = 0; k < 3; k++)
				img[test_rand(&seed) % n] ^=
				    (uint8_t)(1u << (test_rand(&seed) % 8));
		struct log_reader r;
		log_reader_init(&r, img, n, "fuzz.log");
		keys_slice p;
		int rc;
		while ((rc = log_reader_next(&r, &p)) == 1) {
			assert_true(p.data >= img && p.data + p.len <= img + n);
		}
		assert_true(rc == 0 || rc == CESIUM_ECORRUPT);
		assert_true(r.valid_end <= n);
		free(img);
	}
	free(valid);
}

/* log_read_file returns the file's bytes, and names the path when the file
 * is missing. */
static void test_log_read_file(void **state)
{
	(void)state;
	char *dir = test_tmpdir("log");
	assert_non_null(dir);
	char path[512];
	snprintf(path, sizeof(path), "%s/x.log", dir);
	uint8_t *buf;
	size_t size;
	assert_int_equal(log_read_file(path, &buf, &size), CESIUM_EINVAL);
	assert_non_null(strstr(cesium_errmsg(), path));
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("hello", f);
	fclose(f);
	assert_int_equal(log_read_file(path, &buf, &size), 0);
	assert_int_equal(size, 5);
	assert_memory_equal(buf, "hello", 5);
	mem_free(buf);
	test_rmtree(dir);
	free(dir);
}

/* Counts the records of a log; the count, or the error code. */
static int count_all(const uint8_t *buf, size_t size, struct log_reader *r)
{
	log_reader_init(r, buf, size, "test.log");
	keys_slice p;
	int n = 0, rc;
	while ((rc = log_reader_next(r, &p)) == 1)
		n++;
	return rc < 0 ? rc : n;
}

/* With a file header, a bad record at or past the synced watermark is a
 * torn tail even when valid records follow; below it, corruption naming
 * the offset. A slot-B-only header is found; a headerless log whose bytes
 * at 512 look like a slot is still read as headerless. */
static void test_log_header_watermark_splits_torn_from_corrupt(void **state)
{
	(void)state;
	size_t off[7];
	size_t size = LOG_FILE_HEADER_SIZE;
	for (int i = 0; i < 6; i++) {
		off[i] = size;
		size += log_record_size(100);
	}
	off[6] = size;
	uint8_t *buf = calloc(1, size);
	assert_non_null(buf);
	uint8_t pl[100];
	for (int i = 0; i < 6; i++) {
		memset(pl, 'a' + i, sizeof(pl));
		log_encode(buf + off[i], pl, sizeof(pl));
	}
	log_file_slot_encode(buf + LOG_FILE_SLOT_A, off[3], 0, 0);
	log_file_slot_encode(buf + LOG_FILE_SLOT_B, off[3], 0, 0);
	struct log_reader r;
	assert_int_equal(count_all(buf, size, &r), 6);

	buf[off[4] + 20] ^= 1;
	assert_int_equal(count_all(buf, size, &r), 4);
	assert_true(r.torn);
	assert_int_equal(r.torn_offset, off[4]);
	buf[off[4] + 20] ^= 1;

	buf[off[3] + 20] ^= 1; /* exactly at the watermark: torn */
	assert_int_equal(count_all(buf, size, &r), 3);
	assert_true(r.torn);
	buf[off[3] + 20] ^= 1;

	buf[off[1] + 20] ^= 1;
	assert_int_equal(count_all(buf, size, &r), CESIUM_ECORRUPT);
	char want[48];
	snprintf(want, sizeof(want), "offset %zu:", off[1]);
	assert_non_null(strstr(cesium_errmsg(), want));
	buf[off[1] + 20] ^= 1;

	memset(buf + LOG_FILE_SLOT_A, 0, LOG_FILE_SLOT_SIZE); /* only B left */
	buf[off[2] + 20] ^= 1;
	assert_int_equal(count_all(buf, size, &r), CESIUM_ECORRUPT);
	free(buf);

	/* Headerless: a slot image inside a record's payload at 512. */
	uint8_t big[1000] = {0};
	log_file_slot_encode(big + LOG_FILE_SLOT_B - LOG_HEADER_SIZE, 1u << 20, 0, 0);
	uint8_t img[2000] = {0};
	log_encode(img, big, sizeof(big));
	assert_int_equal(count_all(img, sizeof(img), &r), 1);
	assert_false(r.has_header);
}

/* A log written by a newer format (its header valid, its version not
 * ours) is CESIUM_ENOTSUP naming the file and both versions: not
 * corruption, and not read as a headerless log. */
static void test_log_newer_format_version_is_enotsup(void **state)
{
	(void)state;
	size_t size = LOG_FILE_HEADER_SIZE + log_record_size(10);
	uint8_t *buf = calloc(1, size);
	assert_non_null(buf);
	uint8_t pl[10] = {0};
	log_encode(buf + LOG_FILE_HEADER_SIZE, pl, sizeof(pl));
	for (int only_b = 0; only_b < 2; only_b++) {
		const size_t slots[2] = {LOG_FILE_SLOT_A, LOG_FILE_SLOT_B};
		for (int s = 0; s < 2; s++) {
			uint8_t *slot = buf + slots[s];
			log_file_slot_encode(slot, LOG_FILE_HEADER_SIZE, 0, 0);
			keys_put_u32le(slot + 4, LOG_FILE_VERSION + 1);
			keys_put_u64le(slot + LOG_FILE_CHECKSUM_OFFSET,
			               XXH3_64bits(slot, LOG_FILE_CHECKSUM_OFFSET));
		}
		if (only_b)
			memset(buf + LOG_FILE_SLOT_A, 0, LOG_FILE_SLOT_SIZE);
		struct log_reader r;
		assert_int_equal(count_all(buf, size, &r), CESIUM_ENOTSUP);
		char want[64];
		snprintf(want, sizeof(want), "log format version %u, expected %u",
		         LOG_FILE_VERSION + 1, LOG_FILE_VERSION);
		assert_non_null(strstr(cesium_errmsg(), want));
		assert_non_null(strstr(cesium_errmsg(), "test.log"));
	}
	/* Our own version, same bytes otherwise: the record reads. */
	log_file_slot_encode(buf + LOG_FILE_SLOT_A, LOG_FILE_HEADER_SIZE, 0, 0);
	log_file_slot_encode(buf + LOG_FILE_SLOT_B, LOG_FILE_HEADER_SIZE, 0, 0);
	struct log_reader r;
	assert_int_equal(count_all(buf, size, &r), 1);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_log_round_trip),
	    cmocka_unit_test(test_log_zero_padding_ends_log),
	    cmocka_unit_test(test_log_zero_header_stops_before_later_records),
	    cmocka_unit_test(test_log_torn_tail_every_cut),
	    cmocka_unit_test(test_log_torn_tail_then_garbage),
	    cmocka_unit_test(test_log_flipped_bit_in_middle_is_corrupt),
	    cmocka_unit_test(test_log_garbage_lengths),
	    cmocka_unit_test(test_log_random_input_never_crashes),
	    cmocka_unit_test(test_log_read_file),
	    cmocka_unit_test(test_log_header_watermark_splits_torn_from_corrupt),
	    cmocka_unit_test(test_log_newer_format_version_is_enotsup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
