/*
 * powerloss_test — a simulated power loss, in the spirit of the ALICE study
 * of LevelDB: a child process writes (some writes synced) while a hook on
 * every completed fsync/fdatasync (io_fault_set_done) records what that
 * sync made durable: a regular file's whole content, keyed by inode, or a
 * directory's list of names. The child is killed at a random moment; the
 * parent rebuilds the directory as a power loss would leave it (only the
 * names of the last directory sync, each with the content of its inode's
 * last sync, or empty), opens it, and checks the durability contract:
 * the database opens; every write acknowledged before the last
 * acknowledged sync is there; what is there is a prefix of the writes, in
 * order; batches are whole; nothing is invented.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cesium.h"
#include "fault.h"
#include "test_util.h"

#define BATCH_KEYS 3

static const char *shadow_dir;
static pthread_mutex_t shadow_mu = PTHREAD_MUTEX_INITIALIZER;

static int copy_fd_to(int fd, const char *dst)
{
	char tmp[512];
	snprintf(tmp, sizeof(tmp), "%s.tmp", dst);
	int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (out < 0)
		return -1;
	char buf[65536];
	off_t off = 0;
	ssize_t n;
	while ((n = pread(fd, buf, sizeof(buf), off)) > 0) {
		if (write(out, buf, (size_t)n) != n) {
			close(out);
			return -1;
		}
		off += n;
	}
	close(out);
	return rename(tmp, dst);
}

/* Records what a successful sync of fd made durable. */
static void on_sync_done(void *arg, enum io_op op, int fd, int res)
{
	(void)arg;
	struct stat st;
	if (op != IO_OP_FSYNC || res < 0 || fstat(fd, &st) != 0)
		return;
	pthread_mutex_lock(&shadow_mu);
	char path[512];
	if (S_ISREG(st.st_mode)) {
		snprintf(path, sizeof(path), "%s/ino-%llu", shadow_dir, (unsigned long long)st.st_ino);
		/* The synced fd may be write-only: read through a new one. */
		char proc[64];
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
		int rfd = open(proc, O_RDONLY);
		if (rfd >= 0) {
			copy_fd_to(rfd, path);
			close(rfd);
		}
	} else if (S_ISDIR(st.st_mode)) {
		int dfd = dup(fd);
		DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
		if (d) {
			rewinddir(d);
			snprintf(path, sizeof(path), "%s/dirlist.tmp", shadow_dir);
			FILE *f = fopen(path, "w");
			struct dirent *e;
			while (f && (e = readdir(d)) != NULL)
				if (e->d_name[0] != '.')
					fprintf(f, "%llu %s\n", (unsigned long long)e->d_ino, e->d_name);
			if (f)
				fclose(f);
			closedir(d);
			char final[512];
			snprintf(final, sizeof(final), "%s/dirlist", shadow_dir);
			rename(path, final);
		}
	}
	pthread_mutex_unlock(&shadow_mu);
}

static void key_of(char *k, size_t cap, uint64_t i)
{
	snprintf(k, cap, "k%09llu", (unsigned long long)i);
}

static void value_of(char *v, size_t cap, uint64_t i)
{
	snprintf(v, cap, "value-%llu-%0*llu", (unsigned long long)i, 60, (unsigned long long)i);
}

/* The child's next decision (0..99): < 15 a synced single put, 15..34 a
 * batch of BATCH_KEYS, else a plain put; 99 also flushes. The parent
 * replays the same sequence to know where each write starts. */
static uint64_t plan_next(uint64_t *rng)
{
	return test_rand(rng) % 100;
}

/* Whether a prefix of n keys ends on a write boundary (no batch cut). */
static bool plan_is_boundary(uint64_t seed, uint64_t n)
{
	uint64_t rng = seed;
	for (uint64_t i = 0; i < n;) {
		uint64_t r = plan_next(&rng);
		i += (r >= 15 && r < 35) ? BATCH_KEYS : 1;
		if (i == n)
			return true;
	}
	return n == 0;
}

/* An acknowledgement sent to the parent: the last index of a write, and
 * whether it was synced. */
struct ack {
	uint64_t last;
	uint64_t synced;
};

static void child_main(const char *dir, const char *shadow, int pipefd, uint64_t seed)
{
	shadow_dir = shadow;
	io_fault_set_done(on_sync_done, NULL);
	cesium_options *o = NULL;
	cesium_db *db = NULL;
	if (cesium_options_new(&o) || cesium_options_set(o, "memtable_size", "128KiB") ||
	    cesium_options_set(o, "wal_prealloc_size", "256KiB") ||
	    cesium_options_set(o, "target_file_size", "64KiB") ||
	    cesium_options_set(o, "max_bytes_for_level_base", "1MiB") ||
	    cesium_open(dir, o, &db)) {
		fprintf(stderr, "child: open: %s\n", cesium_errmsg());
		_exit(3);
	}
	uint64_t rng = seed;
	char k[32], v[96];
	for (uint64_t i = 0;;) {
		uint64_t r = plan_next(&rng);
		bool sync = r < 15;
		int rc;
		uint64_t last;
		if (r >= 15 && r < 35) { /* a batch of consecutive indexes */
			cesium_batch *b = NULL;
			rc = cesium_batch_new(&b);
			for (int j = 0; j < BATCH_KEYS && !rc; j++) {
				key_of(k, sizeof(k), i + (uint64_t)j);
				value_of(v, sizeof(v), i + (uint64_t)j);
				rc = cesium_batch_put(b, 0, k, strlen(k), v, strlen(v));
			}
			if (!rc)
				rc = cesium_write(db, b, 0);
			cesium_batch_free(b);
			last = i + BATCH_KEYS - 1;
		} else {
			key_of(k, sizeof(k), i);
			value_of(v, sizeof(v), i);
			if (sync) {
				cesium_batch *b = NULL;
				rc = cesium_batch_new(&b);
				if (!rc)
					rc = cesium_batch_put(b, 0, k, strlen(k), v, strlen(v));
				if (!rc)
					rc = cesium_write(db, b, CESIUM_WRITE_SYNC);
				cesium_batch_free(b);
			} else {
				rc = cesium_put(db, k, strlen(k), v, strlen(v));
			}
			last = i;
		}
		if (rc) {
			fprintf(stderr, "child: write: %s\n", cesium_errmsg());
			_exit(4);
		}
		struct ack a = { last, sync };
		if (write(pipefd, &a, sizeof(a)) != (ssize_t)sizeof(a))
			_exit(5);
		i = last + 1;
		if (r == 99 && cesium_flush(db) != 0)
			_exit(6);
	}
}

/* Rebuilds `crash` from the shadow: the names of the last directory sync,
 * each with its inode's last synced content (empty if never synced). */
static int rebuild(const char *shadow, const char *crash)
{
	char path[512], src[512], dst[512];
	mkdir(crash, 0755);
	snprintf(path, sizeof(path), "%s/dirlist", shadow);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0; /* never synced: an empty directory */
	unsigned long long ino;
	char name[256];
	int files = 0;
	while (fscanf(f, "%llu %255s", &ino, name) == 2) {
		snprintf(src, sizeof(src), "%s/ino-%llu", shadow, ino);
		snprintf(dst, sizeof(dst), "%s/%s", crash, name);
		int in = open(src, O_RDONLY);
		int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (in >= 0 && out >= 0) {
			char buf[65536];
			ssize_t n;
			while ((n = read(in, buf, sizeof(buf))) > 0)
				if (write(out, buf, (size_t)n) != n)
					break;
		}
		if (in >= 0)
			close(in);
		if (out >= 0)
			close(out);
		files++;
	}
	fclose(f);
	return files;
}

/* Every round: write, lose power at a random moment, recover, check. */
static void test_power_loss_keeps_synced_writes_and_a_prefix(void **state)
{
	(void)state;
	uint64_t seed = test_seed("powerloss");
	const char *env = getenv("CESIUM_POWERLOSS_ROUNDS");
	unsigned rounds = env ? (unsigned)strtoul(env, NULL, 0) : 12;
	uint64_t total_checked = 0;
	for (unsigned round = 0; round < rounds; round++) {
		char *base = test_tmpdir("powerloss");
		assert_non_null(base);
		char dir[512], shadow[512], crash[512];
		snprintf(dir, sizeof(dir), "%s/db", base);
		snprintf(shadow, sizeof(shadow), "%s/shadow", base);
		snprintf(crash, sizeof(crash), "%s/crash", base);
		assert_int_equal(mkdir(shadow, 0755), 0);
		int p[2];
		assert_int_equal(pipe(p), 0);
		uint64_t child_seed = test_rand(&seed);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(p[0]);
			child_main(dir, shadow, p[1], child_seed);
			_exit(0);
		}
		close(p[1]);
		struct timespec ts = { 0, (long)(50 + test_rand(&seed) % 400) * 1000000L };
		nanosleep(&ts, NULL);
		kill(pid, SIGKILL);
		int status;
		waitpid(pid, &status, 0);
		uint64_t acked = 0, synced = 0, nacks = 0;
		bool any = false, any_sync = false;
		struct ack a;
		while (read(p[0], &a, sizeof(a)) == (ssize_t)sizeof(a)) {
			any = true;
			acked = a.last;
			if (a.synced) {
				synced = a.last;
				any_sync = true;
			}
			nacks++;
		}
		close(p[0]);
		assert_true(WIFSIGNALED(status)); /* killed, not failed */

		int files = rebuild(shadow, crash);
		cesium_db *db = NULL;
		int rc = cesium_open(crash, NULL, &db);
		if (rc)
			fail_msg("round %u: open after power loss (%d files): %s: %s", round, files,
			         cesium_strerror(rc), cesium_errmsg());
		/* The present keys must be 0..n-1 for some n (a prefix), n past
		 * every synced write, and nothing beyond what was issued. */
		uint64_t n = 0;
		char k[32], v[96];
		for (;; n++) {
			key_of(k, sizeof(k), n);
			void *val = NULL;
			size_t vlen = 0;
			rc = cesium_get(db, k, strlen(k), &val, &vlen);
			if (rc == CESIUM_ENOTFOUND)
				break;
			assert_int_equal(rc, 0);
			value_of(v, sizeof(v), n);
			assert_int_equal(vlen, strlen(v));
			assert_memory_equal(val, v, vlen);
			cesium_free(val);
		}
		if (any_sync && n <= synced)
			fail_msg("round %u: synced write %llu lost (only %llu present)", round,
			         (unsigned long long)synced, (unsigned long long)n);
		if (any && n > acked + 1 + BATCH_KEYS)
			fail_msg("round %u: %llu present but only %llu acknowledged", round,
			         (unsigned long long)n, (unsigned long long)acked + 1);
		if (!plan_is_boundary(child_seed, n))
			fail_msg("round %u: a batch was cut: %llu keys present", round,
			         (unsigned long long)n);
		/* A prefix: nothing after the first gap. */
		uint64_t after = 0;
		cesium_iter *it = NULL;
		assert_int_equal(cesium_iter_new(db, 0, &it), 0);
		for (cesium_iter_seek_first(it); cesium_iter_valid(it); cesium_iter_next(it))
			after++;
		assert_int_equal(cesium_iter_status(it), 0);
		cesium_iter_free(it);
		if (after != n)
			fail_msg("round %u: %llu keys present but the prefix is %llu long", round,
			         (unsigned long long)after, (unsigned long long)n);
		assert_int_equal(cesium_close(db), 0);
		total_checked += n;
		fprintf(stderr,
		        "round %u: %llu acks, synced up to %llu, acked up to %llu, %llu recovered "
		        "(%d files)\n",
		        round, (unsigned long long)nacks, (unsigned long long)synced,
		        (unsigned long long)acked, (unsigned long long)n, files);
		test_rmtree(base);
		free(base);
	}
	fprintf(stderr, "powerloss: %u simulated power losses, %llu writes verified\n", rounds,
	        (unsigned long long)total_checked);
}

int main(void)
{
	test_require_io_uring();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_power_loss_keeps_synced_writes_and_a_prefix),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
