/* Fuzz target: option parsing. The input is split at the first '=' into a
 * name and a value (each cut at its first NUL) for cesium_options_set, and
 * the whole input is also parsed as an OPTIONS text. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cesium.h"
#include "core/options.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cesium_options *o = NULL;
	char *buf = malloc(size + 1);
	char out[256];
	if (!buf || cesium_options_new(&o) != 0)
		goto out;
	memcpy(buf, data, size);
	buf[size] = '\0';
	char *eq = memchr(buf, '=', size);
	if (eq) {
		*eq = '\0';
		if (cesium_options_set(o, buf, eq + 1) == 0)
			cesium_options_get(o, buf, out, sizeof(out));
	}
	cesium_options_free(o);
	o = NULL;
	if (cesium_options_new(&o) != 0)
		goto out;
	options_from_text(o, (const char *)data, size);
	char *text = NULL;
	if (options_validate(o) == 0 && options_to_text(o, &text) == 0)
		free(text);
out:
	cesium_options_free(o);
	free(buf);
	return 0;
}
