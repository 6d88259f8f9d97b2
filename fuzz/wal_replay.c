/* Fuzz target: WAL replay — log framing (log_reader) over arbitrary bytes,
 * then batch decoding of every record's payload, as recovery does. */
#include <stddef.h>
#include <stdint.h>

#include "core/batch.h"
#include "core/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fuzz_entry(void *ctx, uint64_t seq, enum keys_kind kind, keys_slice nskey,
                      keys_slice value)
{
	uint64_t *sum = ctx;
	for (size_t i = 0; i < nskey.len; i++)
		*sum += nskey.data[i];
	for (size_t i = 0; i < value.len; i++)
		*sum += value.data[i];
	*sum += seq + (uint64_t)kind;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct log_reader r;
	keys_slice payload;
	uint64_t sum = 0;
	log_reader_init(&r, data, size, "fuzz.wal");
	while (log_reader_next(&r, &payload) == 1)
		if (batch_iterate(payload.data, payload.len, fuzz_entry, &sum) != 0)
			break;
	return 0;
}
