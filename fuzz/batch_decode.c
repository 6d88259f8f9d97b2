/* Fuzz target: write-batch decoding (batch_iterate) on arbitrary bytes. */
#include <stddef.h>
#include <stdint.h>

#include "core/batch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fuzz_entry(void *ctx, uint64_t seq, enum keys_kind kind, keys_slice nskey,
                      keys_slice value)
{
	uint64_t *sum = ctx;
	/* Touch every byte handed out so ASan sees any out-of-bounds slice. */
	for (size_t i = 0; i < nskey.len; i++)
		*sum += nskey.data[i];
	for (size_t i = 0; i < value.len; i++)
		*sum += value.data[i];
	*sum += seq + (uint64_t)kind;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t sum = 0;
	batch_iterate(data, size, fuzz_entry, &sum);
	return 0;
}
