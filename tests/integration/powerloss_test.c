/*
 * powerloss_test — a simulated power loss, in the spirit of the ALICE study
 * of LevelDB: a child process writes from POWERLOSS_THREADS threads (some
 * writes synced, so group commits overlap) while a hook on every completed
 * fsync/fdatasync (io_fault_set_done) records what that sync made durable:
 * a regular file's whole content, keyed by inode, or a directory's list of
 * names. The child is killed at a random moment, or from inside its k-th
 * sync (before or after that sync counts as done; k steps across rounds, so
 * kills land at WAL, segment, MANIFEST and directory syncs). The parent
 * rebuilds the directory as a power loss would leave it: only the names of
 * the last directory sync, each with its inode's last synced content, over
 * which a random subset of the pages written since (read from the killed
 * child's files) is laid: pages of the page cache reach the disk in any
 * order. It opens that directory and checks the durability contract: the
 * database opens; every write acknowledged before an acknowledged sync
 * began is there; what is there is a prefix of each thread's writes and
 * respects their order across threads; batches are whole; nothing is
 * invented. Everything random comes from test_seed, so a failure replays.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
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
#define POWERLOSS_THREADS 2
#define PAGE 4096

static const char *shadow_dir;
static pthread_mutex_t shadow_mu = PTHREAD_MUTEX_INITIALIZER;
/* The child's sync events of kind kill_kind so far, and the one to die in
 * (0: none): before the sync is recorded (lost mid-sync), or with
 * kill_after once it is. */
static const char *const sync_kinds[] = {".wal", ".seg", "MANIFEST", "CURRENT", "(dir)"};
#define NKINDS (sizeof(sync_kinds) / sizeof(sync_kinds[0]))
static atomic_uint_fast64_t sync_events;
static uint64_t kill_at;
static bool kill_after;
static unsigned kill_kind;

/* Whether fd (st) is a file of kind kill_kind. */
static bool sync_is_kind(int fd, const struct stat *st)
{
	const char *want = sync_kinds[kill_kind];
	if (S_ISDIR(st->st_mode))
		return strcmp(want, "(dir)") == 0;
	char proc[64], name[512];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(proc, name, sizeof(name) - 1);
	name[n > 0 ? n : 0] = '\0';
	return strstr(name, want) != NULL;
}

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

static void die_in_sync(int fd, uint64_t k)
{
	char proc[64], name[512];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(proc, name, sizeof(name) - 1);
	name[n > 0 ? n : 0] = '\0';
	const char *base = strrchr(name, '/');
	fprintf(stderr, "child: killed %s sync event %llu: %s\n", kill_after ? "after" : "during",
	        (unsigned long long)k, base ? base + 1 : name);
	raise(SIGKILL);
}

/* Records what a successful sync of fd made durable. */
static void on_sync_done(void *arg, enum io_op op, int fd, int res)
{
	(void)arg;
	struct stat st;
	if (op != IO_OP_FSYNC || res < 0 || fstat(fd, &st) != 0)
		return;
	uint64_t k = kill_at && sync_is_kind(fd, &st) ? atomic_fetch_add(&sync_events, 1) + 1 : 0;
	if (kill_at && k == kill_at && !kill_after)
		die_in_sync(fd, k);
	pthread_mutex_lock(&shadow_mu);
	char path[512];
	if (S_ISREG(st.st_mode)) {
		snprintf(path, sizeof(path), "%s/ino-%llu", shadow_dir,
		         (unsigned long long)st.st_ino);
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
					fprintf(f, "%llu %s\n", (unsigned long long)e->d_ino,
					        e->d_name);
			if (f)
				fclose(f);
			closedir(d);
			char final[512];
			snprintf(final, sizeof(final), "%s/dirlist", shadow_dir);
			rename(path, final);
		}
	}
	if (kill_at && k == kill_at)
		die_in_sync(fd, k); /* still holding shadow_mu: nothing runs after */
	pthread_mutex_unlock(&shadow_mu);
}

static void key_of(char *k, size_t cap, unsigned t, uint64_t i)
{
	snprintf(k, cap, "t%u-k%09llu", t, (unsigned long long)i);
}

/* Every fourth value is 1,200 bytes long, so that the memtable holds it in
 * its log (DB_HELD_VALUE_MIN) rather than copying it. */
#define VALUE_CAP 1280
static void value_of(char *v, size_t cap, unsigned t, uint64_t i)
{
	int width = i % 4 == 0 ? 1170 : 60;
	snprintf(v, cap, "value-%u-%llu-%0*llu", t, (unsigned long long)i, width,
	         (unsigned long long)i);
}

/* Each thread's plan seed, derived from the child's. */
static uint64_t thread_seed(uint64_t seed, unsigned t)
{
	uint64_t s = seed ^ (0x9e3779b97f4a7c15ull * (t + 1));
	return s ? s : 1;
}

/* A thread's next decision (0..99): < sync_pct a synced single put,
 * 15..34 a batch of BATCH_KEYS, else a plain put; 99 also flushes. The parent
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

/* An acknowledgement sent to the parent (one pipe write, atomic): the
 * thread, the last index of its write, whether it was synced, and how many
 * writes of each thread had been acknowledged when this one was issued
 * (all of them precede it). */
struct ack {
	uint32_t thread;
	uint32_t synced;
	uint64_t last;
	uint64_t floor[POWERLOSS_THREADS];
};

/* 15, or 0 in rounds that leave long unsynced stretches of log. */
static uint64_t sync_pct = 15;

struct writer {
	cesium_db *db;
	unsigned t;
	uint64_t seed;
	int pipefd;
};

/* Writes acknowledged per thread (count of indexes), read by the others
 * when they issue a write; seq_cst keeps it simple. */
static _Atomic uint64_t acked_next[POWERLOSS_THREADS];

static void *writer_main(void *arg)
{
	struct writer *wr = arg;
	uint64_t rng = wr->seed;
	char k[32], v[VALUE_CAP];
	for (uint64_t i = 0;;) {
		uint64_t r = plan_next(&rng);
		bool sync = r < sync_pct;
		int rc;
		uint64_t last;
		struct ack a = {.thread = wr->t, .synced = sync};
		for (unsigned t = 0; t < POWERLOSS_THREADS; t++)
			a.floor[t] = atomic_load(&acked_next[t]);
		if (r >= 15 && r < 35) { /* a batch of consecutive indexes */
			cesium_batch *b = NULL;
			rc = cesium_batch_new(&b);
			for (int j = 0; j < BATCH_KEYS && !rc; j++) {
				key_of(k, sizeof(k), wr->t, i + (uint64_t)j);
				value_of(v, sizeof(v), wr->t, i + (uint64_t)j);
				rc = cesium_batch_put(b, 0, k, strlen(k), v, strlen(v));
			}
			if (!rc)
				rc = cesium_write(wr->db, b, 0);
			cesium_batch_free(b);
			last = i + BATCH_KEYS - 1;
		} else {
			key_of(k, sizeof(k), wr->t, i);
			value_of(v, sizeof(v), wr->t, i);
			if (sync) {
				cesium_batch *b = NULL;
				rc = cesium_batch_new(&b);
				if (!rc)
					rc = cesium_batch_put(b, 0, k, strlen(k), v, strlen(v));
				if (!rc)
					rc = cesium_write(wr->db, b, CESIUM_WRITE_SYNC);
				cesium_batch_free(b);
			} else {
				rc = cesium_put(wr->db, k, strlen(k), v, strlen(v));
			}
			last = i;
		}
		if (rc) {
			fprintf(stderr, "child: write: %s\n", cesium_errmsg());
			_exit(4);
		}
		atomic_store(&acked_next[wr->t], last + 1);
		a.last = last;
		if (write(wr->pipefd, &a, sizeof(a)) != (ssize_t)sizeof(a))
			_exit(5);
		i = last + 1;
		if (r == 99 && wr->t == 0 && cesium_flush(wr->db) != 0)
			_exit(6);
	}
	return NULL;
}

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
	    /* Every value (about 70 bytes) stays in its log when flushed:
	     * a power loss must not lose the values a segment refers to. */
	    cesium_options_set(o, "log_value_min_size", "64") || cesium_open(dir, o, &db)) {
		fprintf(stderr, "child: open: %s\n", cesium_errmsg());
		_exit(3);
	}
	pthread_t th[POWERLOSS_THREADS];
	struct writer wr[POWERLOSS_THREADS];
	for (unsigned t = 0; t < POWERLOSS_THREADS; t++) {
		wr[t] = (struct writer){db, t, thread_seed(seed, t), pipefd};
		if (pthread_create(&th[t], NULL, writer_main, &wr[t]) != 0)
			_exit(7);
	}
	for (;;)
		pause();
}

static uint8_t *slurp(const char *path, size_t *len)
{
	*len = 0;
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return NULL;
	struct stat st;
	uint8_t *b = NULL;
	if (fstat(fd, &st) == 0 && (b = calloc(1, (size_t)st.st_size + 1)) != NULL) {
		ssize_t n = pread(fd, b, (size_t)st.st_size, 0);
		*len = n > 0 ? (size_t)n : 0;
	}
	close(fd);
	return b;
}

/* The killed child's file with inode ino (what its page cache held), if a
 * name still leads to it. */
static uint8_t *live_content(const char *live, unsigned long long ino, size_t *len)
{
	*len = 0;
	DIR *d = opendir(live);
	if (!d)
		return NULL;
	struct dirent *e;
	uint8_t *b = NULL;
	while (!b && (e = readdir(d)) != NULL) {
		if (e->d_ino != ino)
			continue;
		char p[768];
		snprintf(p, sizeof(p), "%s/%s", live, e->d_name);
		b = slurp(p, len);
	}
	closedir(d);
	return b;
}

/* Rebuilds `crash` as a power loss leaves it: the names of the last
 * directory sync, each with its inode's last synced content, over which
 * each page written since (differing in the live file) is kept or lost at
 * random. Returns the number of files; *mixed counts pages kept. */
static int rebuild(const char *shadow, const char *live, const char *crash, uint64_t *rng,
                   uint64_t *kept, uint64_t *lost)
{
	char path[768], src[768], dst[768];
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
		size_t ns, nl;
		uint8_t *sb = slurp(src, &ns);
		uint8_t *lb = live_content(live, ino, &nl);
		size_t cap = ns > nl ? ns : nl;
		uint8_t *out = calloc(1, cap + 1);
		assert_non_null(out);
		if (sb)
			memcpy(out, sb, ns);
		size_t len = ns;
		for (size_t p = 0; lb && p < nl; p += PAGE) {
			size_t n = nl - p < PAGE ? nl - p : PAGE;
			bool same = p + n <= ns && memcmp(sb + p, lb + p, n) == 0;
			if (same)
				continue;
			if (test_rand(rng) & 1) {
				memcpy(out + p, lb + p, n);
				if (p + n > len)
					len = p + n;
				(*kept)++;
			} else {
				(*lost)++;
			}
		}
		if (lb && nl < ns && (test_rand(rng) & 1))
			len = nl; /* an unsynced truncation reached the disk */
		int fd = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, out, len), (ssize_t)len);
		close(fd);
		free(out);
		free(sb);
		free(lb);
		files++;
	}
	fclose(f);
	return files;
}

struct acks {
	struct ack *a;
	size_t n, cap;
};

/* Every round: write from several threads, lose power (at a random moment
 * or inside the k-th sync), recover, check. */
static void test_power_loss_keeps_synced_writes_and_a_prefix(void **state)
{
	(void)state;
	uint64_t seed = test_seed("powerloss");
	const char *env = getenv("CESIUM_POWERLOSS_ROUNDS");
	unsigned rounds = env ? (unsigned)strtoul(env, NULL, 0) : 12;
	uint64_t total_checked = 0, kept = 0, lost = 0;
	unsigned sync_kills = 0;
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
		/* Room for every ack of a round: a full pipe would stall the
		 * writers (best effort; the default is 64 KiB). */
		(void)fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
		uint64_t child_seed = test_rand(&seed);
		/* Odd rounds die in the k-th sync of one kind of file, the
		 * kinds taken in turn (WAL, segment, MANIFEST, CURRENT,
		 * directory); k grows across rounds, from the syncs of open
		 * to those under load. */
		unsigned j = round / 2;
		kill_kind = j % NKINDS;
		static const unsigned spread[NKINDS] = {60, 4, 4, 1, 4}; /* CURRENT: once */
		kill_at = (round & 1) ? 1 + test_rand(&seed) % spread[kill_kind] : 0;
		if (kill_at && kill_kind != 3)
			kill_at += (j / NKINDS) * 3;
		kill_after = test_rand(&seed) & 1;
		/* Every other pair of rounds syncs rarely: many pages of log
		 * are then unsynced, and sealed logs keep unsynced tails. */
		sync_pct = (round / 2) % 2 ? 0 : 15;
		atomic_store(&sync_events, 0);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(p[0]);
			child_main(dir, shadow, p[1], child_seed);
			_exit(0);
		}
		close(p[1]);
		int status = 0;
		if (kill_at) {
			/* It dies by itself at its k-th sync; if it never gets
			 * there, a plain kill after 1.5 s. */
			int waited = 0;
			while (waitpid(pid, &status, WNOHANG) == 0) {
				if (++waited > 150) {
					kill(pid, SIGKILL);
					waitpid(pid, &status, 0);
					break;
				}
				nanosleep(&(struct timespec){0, 10000000L}, NULL);
			}
			sync_kills++;
		} else {
			struct timespec ts = {0, (long)(50 + test_rand(&seed) % 400) * 1000000L};
			nanosleep(&ts, NULL);
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
		}
		struct acks ak[POWERLOSS_THREADS] = {0};
		uint64_t nacks = 0;
		struct ack a;
		while (read(p[0], &a, sizeof(a)) == (ssize_t)sizeof(a)) {
			assert_true(a.thread < POWERLOSS_THREADS);
			struct acks *x = &ak[a.thread];
			if (x->n == x->cap) {
				x->cap = x->cap ? 2 * x->cap : 256;
				x->a = realloc(x->a, x->cap * sizeof(*x->a));
				assert_non_null(x->a);
			}
			x->a[x->n++] = a;
			nacks++;
		}
		close(p[0]);
		assert_true(WIFSIGNALED(status)); /* killed, not failed */

		int files = rebuild(shadow, dir, crash, &seed, &kept, &lost);
		cesium_db *db = NULL;
		int rc = cesium_open(crash, NULL, &db);
		if (rc)
			fail_msg("round %u: open after power loss (%d files): %s: %s", round, files,
			         cesium_strerror(rc), cesium_errmsg());
		/* Per thread, the present keys must be 0..n-1 for some n. */
		uint64_t n[POWERLOSS_THREADS] = {0}, sum = 0;
		char k[32], v[VALUE_CAP];
		for (unsigned t = 0; t < POWERLOSS_THREADS; t++) {
			for (;; n[t]++) {
				key_of(k, sizeof(k), t, n[t]);
				void *val = NULL;
				size_t vlen = 0;
				rc = cesium_get(db, k, strlen(k), &val, &vlen);
				if (rc == CESIUM_ENOTFOUND)
					break;
				assert_int_equal(rc, 0);
				value_of(v, sizeof(v), t, n[t]);
				assert_int_equal(vlen, strlen(v));
				assert_memory_equal(val, v, vlen);
				cesium_free(val);
			}
			sum += n[t];
			if (!plan_is_boundary(thread_seed(child_seed, t), n[t]))
				fail_msg("round %u: thread %u: a batch was cut: %llu keys present",
				         round, t, (unsigned long long)n[t]);
			uint64_t acked = ak[t].n ? ak[t].a[ak[t].n - 1].last + 1 : 0;
			if (n[t] > acked + BATCH_KEYS)
				fail_msg(
				    "round %u: thread %u: %llu present but only %llu acknowledged",
				    round, t, (unsigned long long)n[t], (unsigned long long)acked);
		}
		/* Durability and order: a synced write, and everything
		 * acknowledged before it was issued, is present; a present
		 * write brings everything acknowledged before it. */
		for (unsigned t = 0; t < POWERLOSS_THREADS; t++) {
			for (size_t i = 0; i < ak[t].n; i++) {
				const struct ack *x = &ak[t].a[i];
				bool present = x->last < n[t];
				if (x->synced && !present)
					fail_msg(
					    "round %u: thread %u: synced write %llu lost (%llu "
					    "present)",
					    round, t, (unsigned long long)x->last,
					    (unsigned long long)n[t]);
				if (!present)
					continue;
				for (unsigned u = 0; u < POWERLOSS_THREADS; u++)
					if (n[u] < x->floor[u])
						fail_msg(
						    "round %u: thread %u write %llu present but "
						    "thread %u's earlier write %llu lost",
						    round, t, (unsigned long long)x->last, u,
						    (unsigned long long)x->floor[u] - 1);
			}
		}
		/* Nothing else: no key after a gap, nothing invented. */
		uint64_t all = 0;
		cesium_iter *it = NULL;
		assert_int_equal(cesium_iter_new(db, 0, &it), 0);
		for (cesium_iter_seek_first(it); cesium_iter_valid(it); cesium_iter_next(it))
			all++;
		assert_int_equal(cesium_iter_status(it), 0);
		cesium_iter_free(it);
		if (all != sum)
			fail_msg("round %u: %llu keys present but the prefixes hold %llu", round,
			         (unsigned long long)all, (unsigned long long)sum);
		assert_int_equal(cesium_close(db), 0);
		total_checked += sum;
		fprintf(stderr,
		        "round %u (%s): %llu acks, %llu+%llu recovered (%d files, k=%llu"
		        ")\n",
		        round, kill_at ? sync_kinds[kill_kind] : "timed kill",
		        (unsigned long long)nacks, (unsigned long long)n[0],
		        (unsigned long long)n[1], files, (unsigned long long)kill_at);
		for (unsigned t = 0; t < POWERLOSS_THREADS; t++)
			free(ak[t].a);
		test_rmtree(base);
		free(base);
	}
	fprintf(stderr,
	        "powerloss: %u simulated power losses (%u inside a sync), %llu writes verified, "
	        "%llu unsynced pages kept, %llu lost\n",
	        rounds, sync_kills, (unsigned long long)total_checked, (unsigned long long)kept,
	        (unsigned long long)lost);
}

int main(void)
{
	test_require_io_uring();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_power_loss_keeps_synced_writes_and_a_prefix),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
