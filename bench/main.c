/*
 * cesium-bench — a fio-style benchmark for cesium and its peers.
 *
 *   cesium-bench [--output-format=normal|json|json+] [--output=FILE]
 *                [--compare=cesium,rocksdb,leveldb,lmdb] [--option=value ...]
 *                [--name=JOB --option=value ...] [jobfile ...]
 *
 * Options use fio's names (see job.h and bench/README in RESULTS.md).
 * Options before the first --name apply to every job, overriding the job
 * files; --name starts a job on the command line. A command line made only
 * of the old db_bench-style options (--benchmarks=, --num=, --db=, --demo,
 * ...; none at all included) runs the original mode (legacy.c), unchanged.
 */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend.h"
#include "job.h"
#include "legacy.h"
#include "report.h"
#include "run.h"

#define MAIN_MAX_SUMMARY 32

/* What a compare child sends its parent: the figures of the ratio table. */
struct main_summary {
	int njobs;
	int status;
	char name[MAIN_MAX_SUMMARY][JOB_NAME_MAX];
	double iops[MAIN_MAX_SUMMARY][DIR_N];
	double p99[MAIN_MAX_SUMMARY][DIR_N];
	double mean[MAIN_MAX_SUMMARY][DIR_N];
	double disk_bytes;
	double rss_kb, anon_kb;
};

struct main_args {
	enum report_format format;
	const char *output;
	const char *compare;
	const char *files[64];
	unsigned nfiles;
};

static void main_usage(FILE *f)
{
	fprintf(f,
	        "usage: cesium-bench [--output-format=normal|json|json+] [--output=FILE]\n"
	        "                    [--compare=ENGINE,ENGINE...] [--OPTION=VALUE ...]\n"
	        "                    [--name=JOB --OPTION=VALUE ...] [JOBFILE ...]\n"
	        "   or: cesium-bench --benchmarks=LIST [--db=DIR] [--num=N] ... (db_bench mode)\n"
	        "   or: cesium-bench --demo [--db=DIR]\n"
	        "job options: rw=write|randwrite|read|randread|randrw|readwrite|scan|delete|\n"
	        "  readmodifywrite, rwmixread, numjobs, iodepth, runtime, time_based,\n"
	        "  ramp_time, size, nrkeys, number_ios, key_size, value_size (bs), sync,\n"
	        "  random_distribution=random|zipf:T|latest[:T]|pareto:H|normal:S,\n"
	        "  scan_length, scan_length_distribution=fixed|uniform, insert, invalidate,\n"
	        "  directory, group_reporting, stonewall, verify, engine, randseed,\n"
	        "  write_bw_log, write_lat_log, opt=NAME=VALUE (engine option)\n"
	        "engines built in: %s\n",
	        backend_list());
}

/* A command line the old db_bench-style tool accepted keeps its meaning:
 * it goes to legacy.c when every argument is one of the old options. */
static bool main_is_legacy(int argc, char **argv)
{
	static const char *const old[] = {
	    "--db=",   "--num=", "--value_size=", "--key_size=", "--benchmarks=", "--threads=",
	    "--seed=", "--opt=", "--opt",         "--sync",      "--demo",        "-h"};
	for (int i = 1; i < argc; i++) {
		bool known = false;
		for (size_t k = 0; k < sizeof(old) / sizeof(old[0]) && !known; k++) {
			size_t n = strlen(old[k]);
			known = old[k][n - 1] == '=' ? strncmp(argv[i], old[k], n) == 0
			                             : strcmp(argv[i], old[k]) == 0;
			/* "--opt name=value" takes the next argument. */
			if (known && strcmp(old[k], "--opt") == 0 && i + 1 < argc)
				i++;
		}
		if (!known)
			return false;
	}
	return true;
}

static int main_rmtree_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(p);
	return 0;
}

static int main_summarize(const struct run_result *res, struct main_summary *s)
{
	struct job_result *m = NULL;
	int n = report_merge(res, &m);
	memset(s, 0, sizeof(*s));
	if (n < 0)
		return -1;
	s->njobs = n < MAIN_MAX_SUMMARY ? n : MAIN_MAX_SUMMARY;
	s->status = res->status;
	for (int i = 0; i < s->njobs; i++) {
		snprintf(s->name[i], sizeof(s->name[i]), "%s", m[i].name);
		double secs = m[i].runtime_sec > 0 ? m[i].runtime_sec : 1e-9;
		for (int d = 0; d < DIR_N; d++) {
			s->iops[i][d] = (double)m[i].d[d].ios / secs;
			s->p99[i][d] = hist_percentile(&m[i].d[d].lat, 0.99);
			s->mean[i][d] = hist_mean(&m[i].d[d].lat);
		}
	}
	s->disk_bytes = (double)res->disk_bytes;
	s->rss_kb = (double)res->peak_rss_kb;
	s->anon_kb = (double)res->peak_anon_kb;
	report_merged_free(m, n);
	return 0;
}

/* Runs the jobs on one engine in dir and prints the report. */
static int main_run_engine(const struct main_args *a, const struct backend *be, const char *dir,
                           const struct job *jobs, unsigned njobs, FILE *out,
                           struct main_summary *sum)
{
	struct run_result res;
	struct run_params p = {
	    .be = be,
	    .dir = dir,
	    .progress = a->format == REPORT_NORMAL && isatty(STDOUT_FILENO) && out == stdout,
	};
	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "cesium-bench: %s: %s\n", dir, strerror(errno));
		return 1;
	}
	int rc = run_jobs(&p, jobs, njobs, &res);
	if (rc == 0) {
		if (a->format == REPORT_NORMAL)
			report_normal(out, &res);
		else
			report_json(out, &res, a->format == REPORT_JSON_PLUS);
		fflush(out);
		if (report_logs(&res))
			res.status = 1;
		if (sum && main_summarize(&res, sum))
			res.status = 1;
	}
	int status = res.status;
	run_result_free(&res);
	return status;
}

static void main_ratio(FILE *f, double c, double peer)
{
	if (c > 0 && peer > 0)
		fprintf(f, " %7.2fx", c / peer);
	else
		fprintf(f, " %8s", "-");
}

static void main_compare_table(FILE *f, char names[][16], struct main_summary *s, int ne)
{
	static const char *const dn[DIR_N] = {"read", "write", "delete"};
	fprintf(f,
	        "\nComparison: ratio = cesium / peer (IOPS: >1 cesium faster; latency and "
	        "sizes: <1 cesium lower)\n%-16s %-18s",
	        "job", "figure");
	for (int e = 0; e < ne; e++)
		fprintf(f, " %12s%s", names[e], e ? "    ratio" : "");
	fprintf(f, "\n");
	for (int i = 0; i < s[0].njobs; i++)
		for (int d = 0; d < DIR_N; d++) {
			if (s[0].iops[i][d] <= 0)
				continue;
			for (int k = 0; k < 3; k++) {
				static const char *const what[] = {"IOPS", "mean lat us",
				                                   "p99 lat us"};
				char fig[32];
				snprintf(fig, sizeof(fig), "%s %s", dn[d], what[k]);
				fprintf(f, "%-16s %-18s", s[0].name[i], fig);
				double c = 0;
				for (int e = 0; e < ne; e++) {
					double v = i >= s[e].njobs ? 0
					           : k == 0        ? s[e].iops[i][d]
					           : k == 1        ? s[e].mean[i][d] / 1e3
					                           : s[e].p99[i][d] / 1e3;
					if (e == 0)
						c = v;
					fprintf(f, " %12.2f", v);
					if (e)
						main_ratio(f, c, v);
				}
				fprintf(f, "\n");
			}
		}
	fprintf(f, "%-16s %-18s", "(all)", "disk usage MiB");
	for (int e = 0; e < ne; e++) {
		fprintf(f, " %12.1f", s[e].disk_bytes / 1048576);
		if (e)
			main_ratio(f, s[0].disk_bytes, s[e].disk_bytes);
	}
	fprintf(f, "\n%-16s %-18s", "(all)", "peak RSS MiB");
	for (int e = 0; e < ne; e++) {
		fprintf(f, " %12.1f", s[e].rss_kb / 1024);
		if (e)
			main_ratio(f, s[0].rss_kb, s[e].rss_kb);
	}
	fprintf(f, "\n%-16s %-18s", "(all)", "peak anon RSS MiB");
	for (int e = 0; e < ne; e++) {
		fprintf(f, " %12.1f", s[e].anon_kb / 1024);
		if (e)
			main_ratio(f, s[0].anon_kb, s[e].anon_kb);
	}
	fprintf(f, "\n");
}

/* Each engine runs in its own child process, so peak RSS and leftovers of
 * one engine do not reach the next. */
static int main_compare(const struct main_args *a, const char *dir, const struct job *jobs,
                        unsigned njobs, FILE *out)
{
	char names[8][16];
	struct main_summary sums[8];
	int ne = 0, status = 0;
	char *list = strdup(a->compare);
	if (!list)
		return 1;
	for (char *sv = NULL, *e = strtok_r(list, ",", &sv); e; e = strtok_r(NULL, ",", &sv)) {
		if (ne == 8 || !backend_find(e) || strlen(e) >= sizeof(names[0])) {
			fprintf(stderr,
			        "cesium-bench: --compare: engine '%s' is not built in "
			        "(built: %s)\n",
			        e, backend_list());
			free(list);
			return 2;
		}
		snprintf(names[ne++], sizeof(names[0]), "%s", e);
	}
	free(list);
	for (int e = 0; e < ne; e++) {
		char sub[JOB_PATH_MAX + 32];
		int fds[2];
		snprintf(sub, sizeof(sub), "%s/%s", dir, names[e]);
		memset(&sums[e], 0, sizeof(sums[e]));
		/* JSON output: one array of the engines' documents. */
		if (a->format != REPORT_NORMAL)
			fprintf(out, "%s", e ? ",\n" : "[\n");
		fflush(out);
		if (pipe(fds) != 0) {
			perror("pipe");
			return 1;
		}
		pid_t pid = fork();
		if (pid < 0) {
			perror("fork");
			return 1;
		}
		if (pid == 0) {
			struct main_summary s;
			close(fds[0]);
			if (a->format == REPORT_NORMAL)
				fprintf(out, "==> engine %s\n", names[e]);
			int st =
			    main_run_engine(a, backend_find(names[e]), sub, jobs, njobs, out, &s);
			fflush(out);
			if (write(fds[1], &s, sizeof(s)) != (ssize_t)sizeof(s))
				st = 1;
			_exit(st);
		}
		close(fds[1]);
		ssize_t got = read(fds[0], &sums[e], sizeof(sums[e]));
		close(fds[0]);
		int ws = 0;
		waitpid(pid, &ws, 0);
		if (got != (ssize_t)sizeof(sums[e]) || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
			fprintf(stderr, "cesium-bench: engine %s failed\n", names[e]);
			status = 1;
		}
		if (a->format == REPORT_NORMAL)
			fprintf(out, "\n");
	}
	if (a->format != REPORT_NORMAL)
		fprintf(out, "]\n");
	/* The table is text: beside JSON it goes to stderr. */
	main_compare_table(a->format == REPORT_NORMAL ? out : stderr, names, sums, ne);
	return status;
}

static int main_parse(int argc, char **argv, struct main_args *a, struct job_list *l)
{
	/* Command-line options before --name apply to all jobs, after the
	 * files are read; record them to apply later. */
	const char *gname[256], *gval[256];
	unsigned ng = 0;
	int first_job_arg = argc;
	char err[512];
	for (int i = 1; i < argc; i++) {
		const char *s = argv[i];
		if (strncmp(s, "--", 2) != 0) {
			if (a->nfiles == 64) {
				fprintf(stderr, "cesium-bench: too many job files\n");
				return -1;
			}
			a->files[a->nfiles++] = s;
			continue;
		}
		if (strncmp(s, "--name=", 7) == 0) {
			first_job_arg = i;
			break;
		}
		if (strncmp(s, "--output-format=", 16) == 0) {
			const char *v = s + 16;
			if (strcmp(v, "normal") == 0)
				a->format = REPORT_NORMAL;
			else if (strcmp(v, "json") == 0)
				a->format = REPORT_JSON;
			else if (strcmp(v, "json+") == 0)
				a->format = REPORT_JSON_PLUS;
			else {
				fprintf(stderr,
				        "cesium-bench: --output-format: bad value '%s' "
				        "(expected normal|json|json+)\n",
				        v);
				return -1;
			}
		} else if (strncmp(s, "--output=", 9) == 0) {
			a->output = s + 9;
		} else if (strncmp(s, "--compare=", 10) == 0) {
			a->compare = s + 10;
		} else if (strcmp(s, "--help") == 0) {
			main_usage(stdout);
			exit(0);
		} else if (ng < 256) {
			if (strcmp(s, "--opt") == 0 && i + 1 < argc) {
				gname[ng] = "opt";
				gval[ng++] = argv[++i];
				continue;
			}
			static char names[256][64];
			const char *eq = strchr(s + 2, '=');
			size_t nl = eq ? (size_t)(eq - s - 2) : strlen(s + 2);
			if (nl >= 64) {
				fprintf(stderr, "cesium-bench: bad argument '%s'\n", s);
				return -1;
			}
			memcpy(names[ng], s + 2, nl);
			names[ng][nl] = '\0';
			gname[ng] = names[ng];
			gval[ng++] = eq ? eq + 1 : NULL;
		}
	}
	for (unsigned f = 0; f < a->nfiles; f++)
		if (job_parse_file(a->files[f], l, err, sizeof(err))) {
			fprintf(stderr, "cesium-bench: %s\n", err);
			return -1;
		}
	for (unsigned g = 0; g < ng; g++) {
		if (job_set(&l->global, gname[g], gval[g], err, sizeof(err))) {
			fprintf(stderr, "cesium-bench: command line: %s\n", err);
			return -1;
		}
		for (unsigned j = 0; j < l->njobs; j++)
			(void)job_set(&l->jobs[j], gname[g], gval[g], err, sizeof(err));
	}
	struct job *cur = NULL;
	for (int i = first_job_arg; i < argc; i++) {
		const char *s = argv[i];
		if (strncmp(s, "--", 2) != 0) {
			fprintf(stderr,
			        "cesium-bench: job files go before the first --name: '%s'\n", s);
			return -1;
		}
		if (strncmp(s, "--name=", 7) == 0) {
			if (!(cur = job_list_add(l, s + 7)) || !s[7]) {
				fprintf(stderr, "cesium-bench: --name: needs a name\n");
				return -1;
			}
			continue;
		}
		char name[64];
		const char *eq = strchr(s + 2, '=');
		size_t nl = eq ? (size_t)(eq - s - 2) : strlen(s + 2);
		const char *v = eq ? eq + 1 : NULL;
		if (nl >= sizeof(name)) {
			fprintf(stderr, "cesium-bench: bad argument '%s'\n", s);
			return -1;
		}
		memcpy(name, s + 2, nl);
		name[nl] = '\0';
		if (strcmp(name, "opt") == 0 && !v && i + 1 < argc)
			v = argv[++i];
		if (job_set(cur, name, v, err, sizeof(err))) {
			fprintf(stderr, "cesium-bench: job %s: %s\n", cur->name, err);
			return -1;
		}
	}
	if (l->njobs == 0 && !job_list_add(l, l->global.name)) {
		fprintf(stderr, "cesium-bench: out of memory\n");
		return -1;
	}
	for (unsigned j = 0; j < l->njobs; j++) {
		if (job_finalize(&l->jobs[j], err, sizeof(err))) {
			fprintf(stderr, "cesium-bench: %s\n", err);
			return -1;
		}
		/* One database per run: the jobs must agree on where and what. */
		if (strcmp(l->jobs[j].directory, l->jobs[0].directory) ||
		    (!a->compare && strcmp(l->jobs[j].engine, l->jobs[0].engine)) ||
		    l->jobs[j].sync != l->jobs[0].sync || l->jobs[j].nopts != l->jobs[0].nopts) {
			fprintf(stderr,
			        "cesium-bench: job %s: directory, engine, sync and engine "
			        "options must be the same for every job of a run\n",
			        l->jobs[j].name);
			return -1;
		}
		/* Only gets batch; engines without a multi-get say so when
		 * they run (run.c). */
		if (l->jobs[j].iodepth > 1 && l->jobs[j].rw != JOB_RANDREAD)
			fprintf(stderr,
			        "cesium-bench: note: job %s: iodepth %u applies to randread "
			        "only; rw=%s runs at 1 (use numjobs for concurrency)\n",
			        l->jobs[j].name, l->jobs[j].iodepth, job_rw_name(l->jobs[j].rw));
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct main_args a = {.format = REPORT_NORMAL};
	struct job_list l;
	FILE *out = stdout;
	int status = 2;
	bool tmp = false;
	static char dir[JOB_PATH_MAX];
	if (main_is_legacy(argc, argv))
		return legacy_main(argc, argv);
	job_list_init(&l);
	if (main_parse(argc, argv, &a, &l))
		goto out;
	const struct job *j0 = &l.jobs[0];
	const struct backend *be = backend_find(j0->engine);
	if (!a.compare && !be) {
		fprintf(stderr, "cesium-bench: engine %s is not built in (built: %s)\n", j0->engine,
		        backend_list());
		goto out;
	}
	if (j0->directory[0]) {
		snprintf(dir, sizeof(dir), "%s", j0->directory);
	} else {
		const char *base = getenv("TMPDIR");
		snprintf(dir, sizeof(dir), "%s/cesium-bench-XXXXXX", base ? base : "/tmp");
		if (!mkdtemp(dir)) {
			fprintf(stderr, "cesium-bench: cannot create a temporary directory: %s\n",
			        strerror(errno));
			status = 1;
			goto out;
		}
		tmp = true;
	}
	if (a.output && !(out = fopen(a.output, "w"))) {
		fprintf(stderr, "cesium-bench: --output=%s: %s\n", a.output, strerror(errno));
		status = 1;
		goto out;
	}
	if (a.compare) {
		if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
			fprintf(stderr, "cesium-bench: %s: %s\n", dir, strerror(errno));
			status = 1;
			goto out;
		}
		status = main_compare(&a, dir, l.jobs, l.njobs, out);
	} else {
		status = main_run_engine(&a, be, dir, l.jobs, l.njobs, out, NULL);
	}
out:
	if (tmp)
		nftw(dir, main_rmtree_entry, 16, FTW_DEPTH | FTW_PHYS);
	if (out && out != stdout && fclose(out) != 0)
		status = 1;
	job_list_free(&l);
	return status;
}
