/* Fuzz target: MANIFEST replay — log framing over arbitrary bytes, each
 * record decoded as a version edit and applied to the running version, as
 * version_recover does. */
#include <stddef.h>
#include <stdint.h>

#include "core/edit.h"
#include "core/log.h"
#include "core/version.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct log_reader r;
	keys_slice payload;
	struct version *v = NULL;
	if (version_new_empty(NULL, &v) != 0)
		return 0;
	log_reader_init(&r, data, size, "MANIFEST-fuzz");
	while (log_reader_next(&r, &payload) == 1) {
		struct edit e;
		int rc =
		    edit_decode(payload.data, payload.len, &e, "MANIFEST-fuzz", r.record_offset);
		struct version *nv = NULL;
		if (rc == 0)
			rc = version_apply(v, &e, NULL, NULL, &nv);
		edit_free(&e);
		if (rc != 0)
			break;
		version_unref(v);
		v = nv;
	}
	for (int l = 0; l < VERSION_LEVELS; l++)
		if (l >= VERSION_TIERED_LEVELS)
			(void)version_level_is_sorted_run(v, l);
	version_unref(v);
	return 0;
}
