/*
 * filename — the names cesium gives the files of a database directory, in
 * one place: <n>.seg (a segment), <n>.wal (a log), MANIFEST-<n>, and
 * LOCK, CURRENT and OPTIONS with their temporaries. Numbers are printed
 * with at least six digits and read back with any number of them.
 *
 * Paths are allocated (free with mem_free); NULL means out of memory.
 * Pure functions; any thread.
 */
#ifndef CESIUM_CORE_FILENAME_H
#define CESIUM_CORE_FILENAME_H

#include <stdbool.h>
#include <stdint.h>

/* "<dir>/<number>.<ext>", ext being "seg" or "wal". */
char *filename_numbered(const char *dir, uint64_t number, const char *ext);
/* "<dir>/MANIFEST-<number>". */
char *filename_manifest(const char *dir, uint64_t number);
/* The number of a file named "<digits>.<ext>" (ext of at most 6 bytes);
 * 0 for any other name, or a number that does not fit 64 bits. */
uint64_t filename_number(const char *name, const char *ext);
/* The same for "MANIFEST-<digits>". */
uint64_t filename_manifest_number(const char *name);
/* Whether the engine may have created a file of this name (".." and "."
 * included, so that a directory listing can be checked as it comes). */
bool filename_is_engine_file(const char *name);

#endif
