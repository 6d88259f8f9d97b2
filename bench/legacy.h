/*
 * legacy.h — the db_bench-style mode (--benchmarks=...) and --demo of
 * cesium-bench, kept with their original options, output and exit status.
 * Called from main() on the main thread only; uses only the public API.
 */
#ifndef BENCH_LEGACY_H
#define BENCH_LEGACY_H

#include <stdbool.h>

/* Runs the old command line; returns the process exit status. */
int legacy_main(int argc, char **argv);

#endif
