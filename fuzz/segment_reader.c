/* Fuzz target: the segment reader on an arbitrary file image — open
 * (footer, props, index, filter), point gets and a full iteration with
 * seeks, all of which must fail cleanly on corruption. The input lives in
 * a memfd, so no temporary file is left behind. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/mem.h"
#include "core/segment.h"
#include "io/file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_get(seg_reader *r, const uint8_t *key, size_t len)
{
	enum keys_kind kind;
	void *val = NULL;
	size_t vlen;
	(void)seg_reader_may_contain(r, keys_slice_of(key, len));
	if (seg_reader_get(r, keys_slice_of(key, len), KEYS_MAX_SEQ, &kind, &val, &vlen) == 0)
		mem_free(val);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz.seg", MFD_CLOEXEC);
	if (fd < 0)
		return 0;
	if (size && io_pwrite_full(fd, data, size, 0) != 0) {
		close(fd);
		return 0;
	}
	seg_reader *r = NULL;
	if (seg_reader_open(fd, "fuzz.seg", 1, NULL, &r) != 0)
		return 0;
	const struct seg_props *p = seg_reader_props(r);
	static const uint8_t probe[] = {0, 0, 0, 0, 0, 0, 0, 0, 'k'};
	fuzz_get(r, probe, sizeof(probe));
	if (p->smallest.len >= KEYS_TRAILER_SIZE)
		fuzz_get(r, p->smallest.data, p->smallest.len - KEYS_TRAILER_SIZE);
	if (p->largest.len >= KEYS_TRAILER_SIZE)
		fuzz_get(r, p->largest.data, p->largest.len - KEYS_TRAILER_SIZE);

	iter *it = NULL;
	if (seg_reader_iter_new(r, NULL, &it) == 0) {
		uint64_t sum = 0, n = 0;
		for (iter_seek_first(it); iter_valid(it) && n < 100000; iter_next(it), n++) {
			keys_slice k = iter_key(it), v = iter_value(it);
			sum += k.len + v.len + (k.len ? k.data[k.len - 1] : 0) +
			       (v.len ? v.data[v.len - 1] : 0);
			if (n < 4 && k.len >= KEYS_TRAILER_SIZE)
				fuzz_get(r, k.data, k.len - KEYS_TRAILER_SIZE);
		}
		(void)iter_status(it);
		if (p->largest.len)
			iter_seek(it, p->largest);
		iter_destroy(it);
		(void)sum;
	}
	seg_reader_unref(r);
	return 0;
}
