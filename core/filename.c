#include "filename.h"

#include <string.h>

#include "mem.h"

char *filename_numbered(const char *dir, uint64_t number, const char *ext)
{
	return mem_printf("%s/%06llu.%s", dir, (unsigned long long)number, ext);
}

char *filename_manifest(const char *dir, uint64_t number)
{
	return mem_printf("%s/MANIFEST-%06llu", dir, (unsigned long long)number);
}

/* Whether name is "<prefix><digits><suffix>" with at least one digit and a
 * value that fits 64 bits; if so, *number is that value. Stricter than
 * strtoull on purpose: no sign, no blanks, no trailing text, no overflow,
 * so that no other file is ever taken for one of ours (and removed). */
static bool filename_parse(const char *name, const char *prefix, const char *suffix,
                           uint64_t *number)
{
	size_t pl = strlen(prefix), sl = strlen(suffix), nl = strlen(name);
	if (nl <= pl + sl || strncmp(name, prefix, pl) != 0 || strcmp(name + nl - sl, suffix) != 0)
		return false;
	uint64_t n = 0;
	for (size_t i = pl; i < nl - sl; i++) {
		if (name[i] < '0' || name[i] > '9')
			return false;
		uint64_t digit = (uint64_t)(name[i] - '0');
		if (n > (UINT64_MAX - digit) / 10)
			return false;
		n = n * 10 + digit;
	}
	*number = n;
	return true;
}

uint64_t filename_number(const char *name, const char *ext)
{
	char suffix[8];
	uint64_t n = 0;
	size_t el = strlen(ext);
	if (el + 2 > sizeof(suffix))
		return 0;
	suffix[0] = '.';
	memcpy(suffix + 1, ext, el + 1);
	return filename_parse(name, "", suffix, &n) ? n : 0;
}

uint64_t filename_manifest_number(const char *name)
{
	uint64_t n = 0;
	return filename_parse(name, "MANIFEST-", "", &n) ? n : 0;
}

bool filename_is_engine_file(const char *name)
{
	static const char *const fixed[] = {".",           "..",      "LOCK",       "CURRENT",
	                                    "CURRENT.tmp", "OPTIONS", "OPTIONS.tmp"};
	uint64_t n;
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		if (strcmp(name, fixed[i]) == 0)
			return true;
	return filename_parse(name, "MANIFEST-", "", &n) || filename_parse(name, "", ".wal", &n) ||
	       filename_parse(name, "", ".seg", &n);
}
