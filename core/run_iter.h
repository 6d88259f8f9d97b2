/*
 * run_iter — an internal iterator over one sorted run: segment files with
 * disjoint key ranges, in key order (a leveled level, or one run of a
 * tiered level). It holds one segment iterator at a time, so a seek costs
 * one index search and one block however many files the run has, where a
 * merge over the files themselves would seek every one of them.
 *
 * The file array and its file_meta are borrowed: the caller keeps the
 * version that owns them alive for the iterator's lifetime (a db iterator
 * holds its read state). Readers are opened through db_file_reader. One
 * thread at a time, as every iterator.
 */
#ifndef CESIUM_CORE_RUN_ITER_H
#define CESIUM_CORE_RUN_ITER_H

#include <stddef.h>

#include "iter.h"

struct cesium_db;
struct file_meta;

/* files[0..n) in ascending key order, n >= 1. */
int run_iter_new(struct cesium_db *db, struct file_meta *const *files, size_t n, iter **out);

#endif
