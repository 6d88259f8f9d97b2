/*
 * hist.h — log-bucket latency histogram for cesium-bench: 16 linear
 * sub-buckets per power of two (relative error under 6.25 %), exact count,
 * min, max, mean and standard deviation, interpolated percentiles.
 *
 * A struct hist is plain memory owned by its caller; one thread updates it
 * at a time (each worker has its own; merge after the workers joined).
 * Values are unitless (cesium-bench records nanoseconds).
 */
#ifndef BENCH_HIST_H
#define BENCH_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 4
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_BUCKETS ((64 - HIST_SUB_BITS + 1) * HIST_SUB)

struct hist {
	uint64_t count;
	uint64_t min; /* UINT64_MAX while empty */
	uint64_t max;
	double sum;
	double sumsq; /* for the standard deviation */
	uint64_t b[HIST_BUCKETS];
};

/* fio's clat percentile list, in percent. */
#define HIST_NPCT 17
extern const double hist_pct_list[HIST_NPCT];

void hist_init(struct hist *h);
void hist_add(struct hist *h, uint64_t v);
void hist_merge(struct hist *into, const struct hist *from);
double hist_mean(const struct hist *h);
double hist_stdev(const struct hist *h); /* population standard deviation */
/* The value below which a fraction p (0..1) of the samples lie,
 * interpolated inside its bucket and clamped to [min, max]; 0 when empty. */
double hist_percentile(const struct hist *h, double p);
/* Fraction of samples whose value is below v, counting whole buckets
 * (a bucket counts when its upper edge is <= v). */
double hist_fraction_below(const struct hist *h, uint64_t v);
/* Bucket index of v, and the bucket's [lo, lo + width) range. */
unsigned hist_index(uint64_t v);
void hist_bucket(unsigned i, double *lo, double *width);

#endif
