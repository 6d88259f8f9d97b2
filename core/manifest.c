#include "manifest.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edit.h"
#include "error.h"
#include "filename.h"
#include "file.h"
#include "log.h"
#include "mem.h"

static int manifest_snapshot_edit(const struct version *v, uint64_t log_number,
                                  uint64_t next_file_number, uint64_t last_seq, struct edit *e)
{
	edit_set_log_number(e, log_number);
	edit_set_next_file_number(e, next_file_number);
	edit_set_last_seq(e, last_seq);
	for (int l = 0; l < VERSION_LEVELS; l++) {
		for (size_t i = 0; i < v->nfiles[l]; i++) {
			const struct file_meta *f = v->files[l][i];
			struct file_desc d = file_meta_desc(f, l, f->run);
			int rc = edit_add_file(e, &d);
			if (rc)
				return rc;
		}
	}
	return 0;
}

static int manifest_set_current(const char *dir, uint64_t number)
{
	char *tmp = NULL, *cur = NULL;
	char line[64];
	int fd = -1, rc;
	int n = snprintf(line, sizeof(line), "MANIFEST-%06llu\n", (unsigned long long)number);
	if (!(tmp = mem_printf("%s/CURRENT.tmp", dir)) || !(cur = mem_printf("%s/CURRENT", dir))) {
		rc = error_set(CESIUM_ENOMEM, "out of memory");
		goto out;
	}
	fd = io_open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	rc = fd < 0 ? fd : io_pwrite_full(fd, line, (size_t)n, 0);
	if (!rc)
		rc = io_fsync(fd);
	if (!rc)
		rc = io_rename(tmp, cur);
	if (!rc)
		rc = io_fsync_dir(dir);
	if (rc)
		rc = error_set(error_from_errno(rc), "%s: cannot update CURRENT: %s", dir, strerror(-rc));
out:
	io_close(fd);
	mem_free(tmp);
	mem_free(cur);
	return rc;
}

int manifest_create(const char *dir, uint64_t number, const struct version *v, uint64_t log_number,
                    uint64_t next_file_number, uint64_t last_seq, int *fd_out, uint64_t *size_out)
{
	struct edit e;
	uint8_t *payload = NULL, *rec = NULL;
	size_t plen = 0, rlen = 0;
	char *path = NULL;
	int fd = -1;
	edit_init(&e);
	int rc = manifest_snapshot_edit(v, log_number, next_file_number, last_seq, &e);
	if (!rc)
		rc = edit_encode(&e, &payload, &plen);
	if (rc)
		goto out;
	rlen = log_record_size(plen);
	if (!(rec = mem_alloc(rlen)) || !(path = filename_manifest(dir, number))) {
		path = NULL;
		rc = error_set(CESIUM_ENOMEM, "out of memory");
		goto out;
	}
	log_encode(rec, payload, plen);
	fd = io_open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	rc = fd < 0 ? fd : io_pwrite_full(fd, rec, rlen, 0);
	if (!rc)
		rc = io_fdatasync(fd);
	if (rc) {
		rc = error_set(error_from_errno(rc), "%s: cannot write: %s", path, strerror(-rc));
		goto out;
	}
	rc = manifest_set_current(dir, number);
	if (rc)
		goto out;
	*fd_out = fd;
	*size_out = rlen;
	fd = -1;
out:
	io_close(fd);
	edit_free(&e);
	mem_free(payload);
	mem_free(rec);
	mem_free(path);
	return rc;
}

int manifest_read_current(const char *dir, char **manifest_path)
{
	char *cur = NULL;
	char buf[128];
	int fd = -1, rc = 0;
	if (!(cur = mem_printf("%s/CURRENT", dir)))
		return error_set(CESIUM_ENOMEM, "out of memory");
	fd = io_open(cur, O_RDONLY, 0);
	ssize_t n = fd < 0 ? fd : io_pread_full(fd, buf, sizeof(buf) - 1, 0);
	if (n < 0) {
		rc = error_set(error_from_errno((int)n), "%s: cannot read: %s", cur, strerror((int)-n));
		goto out;
	}
	buf[n] = '\0';
	char *end = NULL;
	unsigned long long number = 0;
	if (n > 9 && strncmp(buf, "MANIFEST-", 9) == 0 && buf[9] >= '0' && buf[9] <= '9')
		number = strtoull(buf + 9, &end, 10);
	if (!end || *end != '\n' || end[1] != '\0') {
		rc = error_set(CESIUM_ECORRUPT, "%s: offset 0: does not name a MANIFEST", cur);
		goto out;
	}
	if (!(*manifest_path = filename_manifest(dir, number)))
		rc = error_set(CESIUM_ENOMEM, "out of memory");
out:
	io_close(fd);
	mem_free(cur);
	return rc;
}
