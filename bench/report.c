/* report.c — see report.h. */
#include "report.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "cesium.h"

static const char *const report_dir_name[DIR_N] = {"read", "write", "trim"};

int report_merge(const struct run_result *res, struct job_result **out)
{
	struct job_result *m = calloc(res->njobs ? res->njobs : 1, sizeof(*m));
	int n = 0;
	if (!m)
		return -1;
	for (unsigned i = 0; i < res->njobs; i++) {
		const struct job_result *r = &res->jobs[i];
		struct job_result *t = NULL;
		if (r->job->group_reporting && n > 0 && m[n - 1].group == r->group &&
		    m[n - 1].job->group_reporting)
			t = &m[n - 1];
		if (!t) {
			t = &m[n++];
			*t = *r;
			t->secs = NULL;
			t->nsecs = 0;
			for (int d = 0; d < DIR_N; d++)
				hist_init(&t->d[d].lat);
			memset(t->d, 0, sizeof(t->d));
			for (int d = 0; d < DIR_N; d++)
				hist_init(&t->d[d].lat);
			t->errors = t->verify_errors = t->not_found = 0;
			t->runtime_sec = 0;
			t->clones = 0;
		}
		for (int d = 0; d < DIR_N; d++) {
			hist_merge(&t->d[d].lat, &r->d[d].lat);
			t->d[d].ios += r->d[d].ios;
			t->d[d].bytes += r->d[d].bytes;
		}
		t->clones += r->clones;
		t->errors += r->errors;
		t->verify_errors += r->verify_errors;
		t->not_found += r->not_found;
		if (r->runtime_sec > t->runtime_sec)
			t->runtime_sec = r->runtime_sec;
		if (r->nsecs > t->nsecs) {
			struct sec_sample *s = realloc(t->secs, r->nsecs * sizeof(*s));
			if (!s) {
				report_merged_free(m, n);
				return -1;
			}
			memset(s + t->nsecs, 0, (r->nsecs - t->nsecs) * sizeof(*s));
			t->secs = s;
			t->nsecs = r->nsecs;
		}
		for (unsigned s = 0; s < r->nsecs; s++)
			for (int d = 0; d < DIR_N; d++) {
				t->secs[s].ios[d] += r->secs[s].ios[d];
				t->secs[s].bytes[d] += r->secs[s].bytes[d];
				t->secs[s].lat_sum[d] += r->secs[s].lat_sum[d];
			}
	}
	*out = m;
	return n;
}

void report_merged_free(struct job_result *m, int n)
{
	for (int i = 0; m && i < n; i++)
		free(m[i].secs);
	free(m);
}

/* fio's unit choice: nsec below 10 us, usec below 10 ms, else msec. */
static void report_unit(double max_ns, const char **unit, double *div)
{
	if (max_ns < 10000) {
		*unit = "nsec";
		*div = 1;
	} else if (max_ns < 10000000) {
		*unit = "usec";
		*div = 1e3;
	} else {
		*unit = "msec";
		*div = 1e6;
	}
}

static void report_bw(char *buf, size_t len, double bytes_per_sec)
{
	double kib = bytes_per_sec / 1024;
	if (kib >= 1024 * 1024)
		snprintf(buf, len, "%.1fGiB/s", kib / 1024 / 1024);
	else if (kib >= 1024)
		snprintf(buf, len, "%.1fMiB/s", kib / 1024);
	else
		snprintf(buf, len, "%.1fKiB/s", kib);
}

static void report_size(char *buf, size_t len, double bytes)
{
	if (bytes >= 1024.0 * 1024 * 1024)
		snprintf(buf, len, "%.2f GiB", bytes / 1024 / 1024 / 1024);
	else if (bytes >= 1024.0 * 1024)
		snprintf(buf, len, "%.2f MiB", bytes / 1024 / 1024);
	else
		snprintf(buf, len, "%.0f KiB", bytes / 1024);
}

static void report_dir_text(FILE *f, const struct job_result *r, int d)
{
	const struct dir_stats *s = &r->d[d];
	const struct hist *h = &s->lat;
	double secs = r->runtime_sec > 0 ? r->runtime_sec : 1e-9;
	char bw[32];
	const char *unit;
	double div;
	report_bw(bw, sizeof(bw), (double)s->bytes / secs);
	fprintf(f, "  %5s: IOPS=%.0f, BW=%s (%.1fMB/s)(%" PRIu64 " ops, %.3fs)\n",
	        report_dir_name[d], (double)s->ios / secs, bw, (double)s->bytes / secs / 1e6,
	        s->ios, r->runtime_sec);
	report_unit((double)h->max, &unit, &div);
	fprintf(f, "    clat (%s): min=%.2f, max=%.2f, avg=%.2f, stdev=%.2f\n", unit,
	        (double)h->min / div, (double)h->max / div, hist_mean(h) / div,
	        hist_stdev(h) / div);
	report_unit(hist_percentile(h, 0.9999), &unit, &div);
	fprintf(f, "    clat percentiles (%s):\n", unit);
	for (int i = 0; i < HIST_NPCT; i++) {
		if (i % 4 == 0)
			fprintf(f, "     |");
		fprintf(f, " %6.2fth=[%9.2f]%s", hist_pct_list[i],
		        hist_percentile(h, hist_pct_list[i] / 100) / div,
		        i % 4 == 3 || i == HIST_NPCT - 1 ? "\n" : ",");
	}
	/* fio's "lat (usec)" distribution lines: share of ops per range. */
	static const uint64_t edges[] = {
	    250,    500,    750,    1000,    2000,    4000,     10000,     20000,      50000,
	    100000, 250000, 500000, 1000000, 2000000, 10000000, 100000000, 1000000000, UINT64_MAX};
	double prev = 0;
	fprintf(f, "    lat distribution:");
	int shown = 0;
	for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++) {
		double cum = edges[i] == UINT64_MAX ? 1.0 : hist_fraction_below(h, edges[i]);
		double share = cum - prev;
		prev = cum;
		if (share < 0.0001)
			continue;
		if (shown && shown % 6 == 0)
			fprintf(f, "\n                     ");
		if (edges[i] == UINT64_MAX)
			fprintf(f, "%s >=1s=%.2f%%", shown++ ? "," : "", share * 100);
		else if (edges[i] < 1000)
			fprintf(f, "%s <%" PRIu64 "ns=%.2f%%", shown++ ? "," : "", edges[i],
			        share * 100);
		else if (edges[i] < 1000000)
			fprintf(f, "%s <%" PRIu64 "us=%.2f%%", shown++ ? "," : "", edges[i] / 1000,
			        share * 100);
		else
			fprintf(f, "%s <%" PRIu64 "ms=%.2f%%", shown++ ? "," : "",
			        edges[i] / 1000000, share * 100);
	}
	fprintf(f, "\n");
}

void report_normal(FILE *f, const struct run_result *res)
{
	struct job_result *m = NULL;
	int n = report_merge(res, &m);
	if (n < 0) {
		fprintf(stderr, "cesium-bench: out of memory\n");
		return;
	}
	for (int i = 0; i < n; i++) {
		const struct job_result *r = &m[i];
		const struct job *j = r->job;
		fprintf(f,
		        "%s: (groupid=%u, jobs=%u): engine=%s, rw=%s, keys=%" PRIu64
		        ", key=%zuB, value=%zuB, err=%" PRIu64,
		        r->name, r->group, r->clones, res->engine, job_rw_name(j->rw), j->nrkeys,
		        j->key_size, j->value_size, r->errors + r->verify_errors);
		if (j->rw == JOB_RANDREAD && j->iodepth > 1)
			fprintf(f, ", iodepth=%u", j->iodepth);
		fprintf(f, "\n");
		for (int d = 0; d < DIR_N; d++)
			if (r->d[d].ios)
				report_dir_text(f, r, d);
		if (r->d[DIR_READ].ios && r->not_found)
			fprintf(f, "  gets not found: %" PRIu64 "\n", r->not_found);
		if (j->verify)
			fprintf(f, "  verify: %" PRIu64 " wrong values\n", r->verify_errors);
	}
	fprintf(f, "\nRun status group summary (engine %s):\n", res->engine);
	for (int g = 0; n > 0 && g <= (int)m[n - 1].group; g++) {
		for (int d = 0; d < DIR_N; d++) {
			uint64_t ios = 0, bytes = 0;
			double secs = 0;
			for (int i = 0; i < n; i++)
				if ((int)m[i].group == g) {
					ios += m[i].d[d].ios;
					bytes += m[i].d[d].bytes;
					if (m[i].runtime_sec > secs)
						secs = m[i].runtime_sec;
				}
			if (!ios)
				continue;
			char bw[32];
			report_bw(bw, sizeof(bw), (double)bytes / (secs > 0 ? secs : 1e-9));
			fprintf(f, "  group %d %5s: IOPS=%.0f, bw=%s, ops=%" PRIu64 ", run=%.3fs\n",
			        g, report_dir_name[d], (double)ios / (secs > 0 ? secs : 1e-9), bw,
			        ios, secs);
		}
	}
	char du[32];
	report_size(du, sizeof(du), (double)res->disk_bytes);
	fprintf(f,
	        "\nEngine %s:\n  disk usage=%s, peak RSS=%.1f MiB (anonymous %.1f MiB), "
	        "wall=%.2fs\n",
	        res->engine, du, (double)res->peak_rss_kb / 1024, (double)res->peak_anon_kb / 1024,
	        res->total_sec);
	fprintf(f, "  write amp=");
	if (res->est.write_amp >= 0)
		fprintf(f, "%.2f", res->est.write_amp);
	else
		fprintf(f, "n/a");
	fprintf(f, ", compaction bytes=");
	if (res->est.compaction_bytes >= 0) {
		report_size(du, sizeof(du), res->est.compaction_bytes);
		fprintf(f, "%s", du);
	} else {
		fprintf(f, "n/a");
	}
	fprintf(f, ", stall time=");
	if (res->est.stall_sec >= 0)
		fprintf(f, "%.3fs", res->est.stall_sec);
	else
		fprintf(f, "n/a");
	fprintf(f, ", cache hit rate=");
	if (res->est.cache_hit_rate >= 0)
		fprintf(f, "%.1f%%\n", res->est.cache_hit_rate * 100);
	else
		fprintf(f, "n/a\n");
	report_merged_free(m, n);
}

static void report_json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void report_json_lat(FILE *f, const char *name, const struct hist *h, bool pct, bool bins)
{
	fprintf(f,
	        "        \"%s\": {\"min\": %" PRIu64 ", \"max\": %" PRIu64 ", \"mean\": %.3f, "
	        "\"stddev\": %.3f, \"N\": %" PRIu64,
	        name, h->count ? h->min : 0, h->max, hist_mean(h), hist_stdev(h), h->count);
	if (pct) {
		fprintf(f, ",\n          \"percentile\": {");
		for (int i = 0; i < HIST_NPCT; i++)
			fprintf(f, "%s\"%.6f\": %.0f", i ? ", " : "", hist_pct_list[i],
			        hist_percentile(h, hist_pct_list[i] / 100));
		fprintf(f, "}");
	}
	if (bins) {
		/* fio's json+ keys each bin by a latency inside it, in ns. */
		fprintf(f, ",\n          \"bins\": {");
		int k = 0;
		for (unsigned i = 0; i < HIST_BUCKETS; i++) {
			if (!h->b[i])
				continue;
			double lo, w;
			hist_bucket(i, &lo, &w);
			fprintf(f, "%s\"%.0f\": %" PRIu64, k++ ? ", " : "", lo, h->b[i]);
		}
		fprintf(f, "}");
	}
	fprintf(f, "}");
}

void report_json(FILE *f, const struct run_result *res, bool plus)
{
	struct job_result *m = NULL;
	int n = report_merge(res, &m);
	struct utsname un;
	if (n < 0) {
		fprintf(stderr, "cesium-bench: out of memory\n");
		return;
	}
	if (uname(&un) != 0)
		snprintf(un.nodename, sizeof(un.nodename), "unknown");
	fprintf(f, "{\n  \"fio version\": \"cesium-bench-%d.%d.%d\",\n", CESIUM_VERSION_MAJOR,
	        CESIUM_VERSION_MINOR, CESIUM_VERSION_PATCH);
	fprintf(f, "  \"hostname\": ");
	report_json_string(f, un.nodename);
	fprintf(f, ",\n  \"engine\": ");
	report_json_string(f, res->engine);
	fprintf(f, ",\n  \"jobs\": [\n");
	for (int i = 0; i < n; i++) {
		const struct job_result *r = &m[i];
		const struct job *j = r->job;
		double secs = r->runtime_sec > 0 ? r->runtime_sec : 1e-9;
		fprintf(f, "    {\n      \"jobname\": ");
		report_json_string(f, r->name);
		fprintf(f,
		        ",\n      \"groupid\": %u,\n      \"error\": %" PRIu64 ",\n"
		        "      \"verify_errors\": %" PRIu64 ",\n      \"not_found\": %" PRIu64
		        ",\n      \"job_runtime\": %.0f,\n",
		        r->group, r->errors, r->verify_errors, r->not_found, r->runtime_sec * 1e3);
		fprintf(
		    f,
		    "      \"job options\": {\"rw\": \"%s\", \"numjobs\": \"%u\", "
		    "\"nrkeys\": \"%" PRIu64 "\", \"key_size\": \"%zu\", \"value_size\": \"%zu\", "
		    "\"sync\": \"%d\"},\n",
		    job_rw_name(j->rw), j->numjobs, j->nrkeys, j->key_size, j->value_size, j->sync);
		for (int d = 0; d < DIR_N; d++) {
			const struct dir_stats *s = &r->d[d];
			fprintf(f,
			        "      \"%s\": {\n        \"io_bytes\": %" PRIu64
			        ", \"bw_bytes\": %.0f, \"bw\": %.0f, \"iops\": %.3f, "
			        "\"runtime\": %.0f, \"total_ios\": %" PRIu64 ",\n",
			        report_dir_name[d], s->bytes, (double)s->bytes / secs,
			        (double)s->bytes / secs / 1024, (double)s->ios / secs,
			        r->runtime_sec * 1e3, s->ios);
			report_json_lat(f, "clat_ns", &s->lat, true, plus);
			fprintf(f, ",\n");
			report_json_lat(f, "lat_ns", &s->lat, false, false);
			fprintf(f, "\n      },\n");
		}
		fprintf(f, "      \"latency_ns\": {");
		static const uint64_t e[] = {2, 4, 10, 20, 50, 100, 250, 500, 750, 1000};
		double prev = 0;
		for (size_t k = 0; k < sizeof(e) / sizeof(e[0]); k++) {
			struct hist all;
			hist_init(&all);
			for (int d = 0; d < DIR_N; d++)
				hist_merge(&all, &r->d[d].lat);
			double cum = hist_fraction_below(&all, e[k]);
			fprintf(f, "%s\"%" PRIu64 "\": %.4f", k ? ", " : "", e[k],
			        (cum - prev) * 100);
			prev = cum;
		}
		fprintf(f, "}\n    }%s\n", i + 1 < n ? "," : "");
	}
	fprintf(f,
	        "  ],\n  \"engine_stats\": {\"disk_usage_bytes\": %" PRIu64
	        ", \"peak_rss_kb\": %ld, \"peak_anon_rss_kb\": %ld, \"write_amp\": %.3f, "
	        "\"compaction_bytes\": %.0f, "
	        "\"stall_sec\": %.3f, \"cache_hit_rate\": %.4f, \"wall_sec\": %.3f}\n}\n",
	        res->disk_bytes, res->peak_rss_kb, res->peak_anon_kb, res->est.write_amp,
	        res->est.compaction_bytes,
	        res->est.stall_sec, res->est.cache_hit_rate, res->total_sec);
	report_merged_free(m, n);
}

static int report_log(const char *prefix, const char *kind, int n, const struct job_result *r)
{
	char path[JOB_PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s_%s.%d.log", prefix, kind, n);
	FILE *f = fopen(path, "w");
	if (!f) {
		perror(path);
		return -1;
	}
	bool bw = strcmp(kind, "bw") == 0;
	for (unsigned s = 0; s < r->nsecs; s++)
		for (int d = 0; d < DIR_N; d++) {
			const struct sec_sample *x = &r->secs[s];
			/* A last, partial second would read as a collapse. */
			if (s > 0 && (double)(s + 1) > r->runtime_sec + 1e-3)
				continue;
			if (!x->ios[d])
				continue;
			double v =
			    bw ? (double)x->bytes[d] / 1024 : x->lat_sum[d] / (double)x->ios[d];
			fprintf(f, "%u, %.0f, %d, 0, 0\n", (s + 1) * 1000, v, d);
		}
	int rc = fclose(f) ? -1 : 0;
	if (rc)
		perror(path);
	return rc;
}

int report_logs(const struct run_result *res)
{
	struct job_result *m = NULL;
	int n = report_merge(res, &m);
	int rc = 0;
	if (n < 0)
		return -1;
	for (int i = 0; i < n; i++) {
		if (m[i].job->bw_log[0] && report_log(m[i].job->bw_log, "bw", i + 1, &m[i]))
			rc = -1;
		if (m[i].job->lat_log[0] && report_log(m[i].job->lat_log, "lat", i + 1, &m[i]))
			rc = -1;
	}
	report_merged_free(m, n);
	return rc;
}
