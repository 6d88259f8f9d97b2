/* hist.c — see hist.h. */
#include "hist.h"

#include <math.h>
#include <string.h>

const double hist_pct_list[HIST_NPCT] = {1,  5,  10, 20, 30,   40,   50,    60,   70,
                                         80, 90, 95, 99, 99.5, 99.9, 99.95, 99.99};

void hist_init(struct hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

unsigned hist_index(uint64_t v)
{
	if (v < HIST_SUB)
		return (unsigned)v;
	unsigned e = 63u - (unsigned)__builtin_clzll(v);
	unsigned sub = (unsigned)(v >> (e - HIST_SUB_BITS)) & (HIST_SUB - 1);
	return (e - HIST_SUB_BITS + 1) * HIST_SUB + sub;
}

void hist_bucket(unsigned i, double *lo, double *width)
{
	if (i < HIST_SUB) {
		*lo = i;
		*width = 1;
		return;
	}
	unsigned e = i / HIST_SUB + HIST_SUB_BITS - 1;
	unsigned sub = i % HIST_SUB;
	double unit = ldexp(1.0, (int)(e - HIST_SUB_BITS));
	*lo = (double)(HIST_SUB + sub) * unit;
	*width = unit;
}

void hist_add(struct hist *h, uint64_t v)
{
	h->b[hist_index(v)]++;
	h->count++;
	h->sum += (double)v;
	h->sumsq += (double)v * (double)v;
	if (v > h->max)
		h->max = v;
	if (v < h->min)
		h->min = v;
}

void hist_merge(struct hist *into, const struct hist *from)
{
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		into->b[i] += from->b[i];
	into->count += from->count;
	into->sum += from->sum;
	into->sumsq += from->sumsq;
	if (from->max > into->max)
		into->max = from->max;
	if (from->min < into->min)
		into->min = from->min;
}

double hist_mean(const struct hist *h)
{
	return h->count ? h->sum / (double)h->count : 0.0;
}

double hist_stdev(const struct hist *h)
{
	if (h->count < 2)
		return 0.0;
	double m = hist_mean(h);
	double var = h->sumsq / (double)h->count - m * m;
	return var > 0 ? sqrt(var) : 0.0;
}

double hist_percentile(const struct hist *h, double p)
{
	if (h->count == 0)
		return 0;
	double target = p * (double)h->count;
	double seen = 0;
	double v = (double)h->max;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		if (!h->b[i])
			continue;
		if (seen + (double)h->b[i] >= target) {
			double lo, width;
			hist_bucket(i, &lo, &width);
			v = lo + width * (target - seen) / (double)h->b[i];
			break;
		}
		seen += (double)h->b[i];
	}
	if (v > (double)h->max)
		v = (double)h->max;
	if (v < (double)h->min)
		v = (double)h->min;
	return v;
}

double hist_fraction_below(const struct hist *h, uint64_t v)
{
	if (h->count == 0)
		return 0;
	uint64_t n = 0;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		double lo, width;
		hist_bucket(i, &lo, &width);
		if (lo + width > (double)v)
			break;
		n += h->b[i];
	}
	return (double)n / (double)h->count;
}
