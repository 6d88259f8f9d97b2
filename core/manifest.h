/*
 * manifest — the MANIFEST file and CURRENT: writing a fresh MANIFEST that
 * holds the whole version as one edit (done at every open), switching
 * CURRENT to it atomically (write a temporary file, fsync, rename, fsync
 * the directory), and reading CURRENT back.
 *
 * manifest_create is called by the caller thread inside cesium_open, and
 * by the scheduler actor to start afresh after an append to the old file
 * failed; the scheduler appends every other edit on its own ring.
 */
#ifndef CESIUM_CORE_MANIFEST_H
#define CESIUM_CORE_MANIFEST_H

#include <stdint.h>

#include "version.h"

/* Writes MANIFEST-<number> in dir holding v (with the given log number,
 * next file number and last sequence), makes it durable and points CURRENT
 * at it. On success *fd is open for appending at *size. */
int manifest_create(const char *dir, uint64_t number, const struct version *v, uint64_t log_number,
                    uint64_t next_file_number, uint64_t last_seq, int *fd, uint64_t *size);
/* The MANIFEST path CURRENT names (allocated; free with mem_free).
 * CESIUM_ECORRUPT when CURRENT is malformed. */
int manifest_read_current(const char *dir, char **manifest_path);

#endif
