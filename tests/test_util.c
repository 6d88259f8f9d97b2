
#include "test_util.h"

#include <dirent.h>
#include <execinfo.h>
#include <ftw.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cesium.h"

char *test_tmpdir(const char *tag)
{
	const char *base = getenv("TMPDIR");
	char *path = NULL;
	if (asprintf(&path, "%s/cesium-%s-XXXXXX", base ? base : "/tmp", tag) < 0)
		return NULL;
	if (!mkdtemp(path)) {
		free(path);
		return NULL;
	}
	return path;
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(p);
	return 0;
}

void test_rmtree(const char *path)
{
	if (path)
		nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

uint64_t test_seed(const char *tag)
{
	const char *env = getenv("CESIUM_SEED");
	uint64_t seed;
	if (env) {
		seed = strtoull(env, NULL, 0);
	} else {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid();
	}
	if (seed == 0)
		seed = 1;
	fprintf(stderr, "%s: seed %llu (replay with CESIUM_SEED=%llu)\n", tag,
	        (unsigned long long)seed, (unsigned long long)seed);
	return seed;
}

uint64_t test_rand(uint64_t *state)
{
	uint64_t x = *state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545F4914F6CDD1DULL;
}

void test_require_io_uring(void)
{
	struct io_uring ring;
	if (io_uring_queue_init(4, &ring, 0) < 0) {
		fprintf(stderr, "io_uring unavailable here: skipping\n");
		exit(77);
	}
	io_uring_queue_exit(&ring);
}

int test_fx_setup(void **state, const char *tag)
{
	struct test_fx *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	f->dir = test_tmpdir(tag);
	if (!f->dir) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

int test_fx_teardown(void **state)
{
	struct test_fx *f = *state;
	if (f->db)
		cesium_close(f->db);
	test_rmtree(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

uint64_t stat_of(cesium_db *db, const char *name)
{
	char *text = NULL;
	assert_int_equal(cesium_stats(db, &text), 0);
	size_t n = strlen(name);
	uint64_t v = UINT64_MAX;
	for (char *line = text; line && *line;) {
		if (strncmp(line, name, n) == 0 && line[n] == ' ') {
			v = strtoull(line + n + 1, NULL, 10);
			break;
		}
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	cesium_free(text);
	if (v == UINT64_MAX)
		fprintf(stderr, "no statistic %s\n", name);
	assert_true(v != UINT64_MAX);
	return v;
}

uint64_t total_segments(cesium_db *db)
{
	uint64_t n = 0;
	for (int l = 0; l < 8; l++) {
		char name[32];
		snprintf(name, sizeof(name), "level%d_segments", l);
		n += stat_of(db, name);
	}
	return n;
}

/* Set by the thread being dumped when its stack is written. */
static atomic_int dump_done;

static void dump_own_stack(int sig)
{
	(void)sig;
	void *frames[64];
	char head[64];
	int n = backtrace(frames, 64);
	int len = snprintf(head, sizeof(head), "--- thread %ld:\n", (long)syscall(SYS_gettid));
	if (write(2, head, (size_t)len) < 0)
		return;
	backtrace_symbols_fd(frames, n, 2);
	atomic_store(&dump_done, 1);
}

void test_dump_threads_init(void)
{
	/* backtrace loads libgcc on first use, which must not happen inside
	 * a signal handler. */
	void *frame[1];
	(void)backtrace(frame, 1);
	struct sigaction sa = {.sa_handler = dump_own_stack};
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR2, &sa, NULL);
}

void test_dump_threads(void)
{
	pid_t pid = getpid();
	DIR *d = opendir("/proc/self/task");
	if (d != NULL) {
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			long tid = atol(e->d_name);
			if (tid <= 0)
				continue;
			atomic_store(&dump_done, 0);
			if (syscall(SYS_tgkill, pid, tid, SIGUSR2) != 0)
				continue;
			/* A thread blocked with the signal masked never answers. */
			for (int i = 0; i < 200 && !atomic_load(&dump_done); i++)
				usleep(5000);
		}
		closedir(d);
	}
}
