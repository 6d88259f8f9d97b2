/* Database-level unit-test helpers; see test_db.h. */

#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_db.h"

uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Opens dir with name=value option pairs (NULL-terminated). */
cesium_db *open_db(const char *dir, ...)
{
	cesium_options *o = NULL;
	assert_int_equal(cesium_options_new(&o), 0);
	va_list ap;
	va_start(ap, dir);
	const char *name;
	while ((name = va_arg(ap, const char *)) != NULL) {
		const char *value = va_arg(ap, const char *);
		assert_int_equal(cesium_options_set(o, name, value), 0);
	}
	va_end(ap);
	cesium_db *db = NULL;
	int rc = cesium_open(dir, o, &db);
	if (rc)
		fprintf(stderr, "cesium_open: %s: %s\n", cesium_strerror(rc), cesium_errmsg());
	assert_int_equal(rc, 0);
	cesium_options_free(o);
	return db;
}

size_t key_of(char *buf, unsigned id)
{
	return (size_t)snprintf(buf, 32, "key%06u", id);
}

size_t value_of(char *buf, size_t cap, unsigned id, unsigned gen)
{
	/* Padded, so that segments have some bulk. */
	static const char pad[] =
	    "................................................................";
	int n = snprintf(buf, cap, "v%u-%06u-", gen, id);
	size_t len = (size_t)n;
	for (size_t i = 0; i + 1 < sizeof(pad) && len + 1 < cap; i++)
		buf[len++] = pad[i];
	buf[len] = '\0';
	return len;
}

void put_kv(cesium_db *db, unsigned id, unsigned gen)
{
	char k[32], v[128];
	size_t kl = key_of(k, id), vl = value_of(v, sizeof(v), id, gen);
	int rc = cesium_put(db, k, kl, v, vl);
	if (rc)
		fprintf(stderr, "put %u: %s\n", id, cesium_errmsg());
	assert_int_equal(rc, 0);
}

void model_init(struct model *m, unsigned n)
{
	m->n = n;
	m->gen = calloc(n, sizeof(unsigned));
	assert_non_null(m->gen);
}

void model_put(cesium_db *db, struct model *m, unsigned id, unsigned gen)
{
	put_kv(db, id, gen);
	m->gen[id] = gen;
}

void model_delete(cesium_db *db, struct model *m, unsigned id)
{
	char k[32];
	size_t kl = key_of(k, id);
	assert_int_equal(cesium_delete(db, k, kl), 0);
	m->gen[id] = 0;
}

/* From its first entry, it yields exactly the model's present keys. */
unsigned model_check_iter(cesium_iter *it, const struct model *m)
{
	unsigned id = 0, count = 0;
	for (cesium_iter_seek_first(it); cesium_iter_valid(it); cesium_iter_next(it)) {
		while (id < m->n && m->gen[id] == 0)
			id++;
		assert_true(id < m->n);
		char k[32], want[128];
		size_t kl = key_of(k, id), wl = value_of(want, sizeof(want), id, m->gen[id]);
		size_t gkl, gvl;
		const void *gk = cesium_iter_key(it, &gkl);
		const void *gv = cesium_iter_value(it, &gvl);
		if (gkl != kl || memcmp(gk, k, kl) != 0)
			fprintf(stderr, "iterator: want %.*s got %.*s\n", (int)kl, k, (int)gkl,
			        (const char *)gk);
		assert_int_equal(gkl, kl);
		assert_memory_equal(gk, k, kl);
		assert_int_equal(gvl, wl);
		assert_memory_equal(gv, want, wl);
		id++;
		count++;
	}
	assert_int_equal(cesium_iter_status(it), 0);
	while (id < m->n && m->gen[id] == 0)
		id++;
	assert_int_equal(id, m->n);
	return count;
}

/* Every key of the model reads back through get and through an iterator. */
void model_check(cesium_db *db, const struct model *m)
{
	for (unsigned id = 0; id < m->n; id++) {
		char k[32], want[128];
		size_t kl = key_of(k, id);
		void *val = NULL;
		size_t vlen = 0;
		int rc = cesium_get(db, k, kl, &val, &vlen);
		if (m->gen[id] == 0) {
			if (rc != CESIUM_ENOTFOUND)
				fprintf(stderr, "key %u: want absent, got %d\n", id, rc);
			assert_int_equal(rc, CESIUM_ENOTFOUND);
			continue;
		}
		if (rc)
			fprintf(stderr, "key %u: get %d %s\n", id, rc, cesium_errmsg());
		assert_int_equal(rc, 0);
		size_t wl = value_of(want, sizeof(want), id, m->gen[id]);
		assert_int_equal(vlen, wl);
		assert_memory_equal(val, want, wl);
		cesium_free(val);
	}
	cesium_iter *it = NULL;
	assert_int_equal(cesium_iter_new(db, 0, &it), 0);
	model_check_iter(it, m);
	cesium_iter_free(it);
}

void model_check_after_reopen(cesium_db *db, const char *dir, const struct model *m)
{
	assert_int_equal(cesium_close(db), 0);
	db = open_db(dir, NULL);
	model_check(db, m);
	assert_int_equal(cesium_close(db), 0);
}

int count_files(const char *dir, const char *suffix)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	int n = 0;
	size_t sl = strlen(suffix);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		size_t l = strlen(e->d_name);
		if (l >= sl && strcmp(e->d_name + l - sl, suffix) == 0)
			n++;
	}
	closedir(d);
	return n;
}

/* Waits (cleanup is asynchronous) until dir holds want files ending in suffix. */
int wait_files(const char *dir, const char *suffix, int want)
{
	uint64_t deadline = now_ns() + 5000000000ull;
	int n;
	while ((n = count_files(dir, suffix)) != want && now_ns() < deadline)
		usleep(2000);
	return n;
}

bool fd_path(int fd, char *out, size_t cap)
{
	if (fd < 0)
		return false;
	char link[64];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, out, cap - 1);
	if (n <= 0)
		return false;
	out[n] = '\0';
	return true;
}

/* splitmix64's finalizer: consecutive operation numbers give unrelated
 * decisions. */
static uint64_t fault_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* An error the operation could really return; 0 asks for a short write. */
static int fault_pick(enum io_op op, uint64_t r, size_t len)
{
	switch (op) {
	case IO_OP_READ:
	case IO_OP_FSYNC:
		return -EIO;
	case IO_OP_WRITE:
		if (r % 3 == 2 && len >= 2)
			return 0;
		return r % 3 == 1 ? -ENOSPC : -EIO;
	case IO_OP_FALLOCATE:
		return -ENOSPC;
	default:
		return r % 2 ? -ENOSPC : -EIO;
	}
}

int file_fault_hook(void *arg, enum io_op op, int fd, const char *path, size_t *len)
{
	struct file_fault *f = arg;
	char target[512] = "";
	if ((unsigned)op >= IO_OP_COUNT || !(f->ops & FILE_FAULT_OP(op)) || !atomic_load(&f->armed))
		return 0;
	bool any = !f->suffix || !f->suffix[0];
	if (path)
		snprintf(target, sizeof(target), "%s", path);
	else if (!any && !fd_path(fd, target, sizeof(target)))
		return 0;
	if (!any && !strstr(target, f->suffix))
		return 0;
	unsigned k = atomic_fetch_add(&f->seen, 1) + 1;
	uint64_t h = fault_mix(f->seed ^ fault_mix(k));
	if (f->per_million) {
		if (h % 1000000 >= f->per_million)
			return 0;
	} else if (k < f->nth || (k > f->nth && !f->every)) {
		return 0;
	}
	int err = f->err == FILE_FAULT_MIXED ? fault_pick(op, h >> 32, *len) : f->err;
	atomic_fetch_add(&f->failed_op[op], 1);
	if (atomic_fetch_add(&f->failed, 1) == 0) {
		if (!target[0] && !fd_path(fd, target, sizeof(target)))
			snprintf(target, sizeof(target), "(no file)");
		pthread_mutex_lock(&f->mu);
		snprintf(f->path, sizeof(f->path), "%s", target);
		pthread_mutex_unlock(&f->mu);
	}
	if (!target[0] && !fd_path(fd, target, sizeof(target)))
		snprintf(target, sizeof(target), "(no file)");
	const char *base = strrchr(target, '/');
	pthread_mutex_lock(&f->mu);
	snprintf(f->recent[f->nrecent++ % FILE_FAULT_RECENT], sizeof(f->recent[0]),
	         "fault %u: %s %.96s: %s", k, io_op_name(op), base ? base + 1 : target,
	         err ? strerror(-err) : "short write");
	pthread_mutex_unlock(&f->mu);
	if (f->trace)
		fprintf(stderr, "fault %u: %s %s: %s\n", k, io_op_name(op), target,
		        err ? strerror(-err) : "short write");
	if (err)
		return err;
	atomic_fetch_add(&f->shortened, 1);
	*len /= 2;
	return 0;
}

void file_fault_print_recent(struct file_fault *f)
{
	pthread_mutex_lock(&f->mu);
	unsigned n = f->nrecent < FILE_FAULT_RECENT ? f->nrecent : FILE_FAULT_RECENT;
	fprintf(stderr, "the last %u of %u faults injected:\n", n, f->nrecent);
	for (unsigned i = f->nrecent - n; i < f->nrecent; i++)
		fprintf(stderr, "  %s\n", f->recent[i % FILE_FAULT_RECENT]);
	pthread_mutex_unlock(&f->mu);
}

static void file_fault_init(struct file_fault *f, unsigned ops, const char *suffix, int err)
{
	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->mu, NULL);
	f->ops = ops;
	f->suffix = suffix;
	f->err = err;
}

void file_fault_arm(struct file_fault *f, enum io_op op, const char *suffix, int err, unsigned nth)
{
	file_fault_init(f, FILE_FAULT_OP(op), suffix, err);
	f->nth = nth;
	io_fault_set(file_fault_hook, f);
	atomic_store(&f->armed, true);
}

void file_fault_arm_random(struct file_fault *f, unsigned ops, const char *suffix, int err,
                           uint32_t per_million, uint64_t seed)
{
	file_fault_init(f, ops, suffix, err);
	f->per_million = per_million;
	f->seed = seed;
	io_fault_set(file_fault_hook, f);
	atomic_store(&f->armed, true);
}

void file_fault_pause(struct file_fault *f)
{
	atomic_store(&f->armed, false);
}

void file_fault_resume(struct file_fault *f)
{
	atomic_store(&f->armed, true);
}

void file_fault_disarm(struct file_fault *f)
{
	atomic_store(&f->armed, false);
	io_fault_set(NULL, NULL);
	pthread_mutex_destroy(&f->mu);
}
