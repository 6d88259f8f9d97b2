#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fault.h"

int io_open(const char *path, int flags, mode_t mode)
{
	int rc = io_fault_check(IO_OP_OPEN, -1, path, NULL);
	if (rc < 0)
		return rc;
	int fd;
	do
		fd = open(path, flags | O_CLOEXEC, mode);
	while (fd < 0 && errno == EINTR);
	return fd < 0 ? -errno : fd;
}

void io_close(int fd)
{
	if (fd >= 0)
		close(fd);
}

/* Steps past the first done bytes of the n pieces; returns how many
 * remain, *iov moved to the first of them. */
static int io_iov_advance(struct iovec **iov, int n, size_t done)
{
	while (n && done >= (*iov)->iov_len) {
		done -= (*iov)->iov_len;
		(*iov)++;
		n--;
	}
	if (n) {
		(*iov)->iov_base = (char *)(*iov)->iov_base + done;
		(*iov)->iov_len -= done;
	}
	return n;
}

ssize_t io_preadv_full(int fd, struct iovec *iov, int n, uint64_t off)
{
	size_t len = 0;
	for (int i = 0; i < n; i++)
		len += iov[i].iov_len;
	int rc = io_fault_check(IO_OP_READ, fd, NULL, &len);
	if (rc < 0)
		return rc;
	/* An injected short read: only the first len bytes are asked for. */
	size_t done = 0, want = len;
	for (int i = 0; i < n; i++) {
		if (iov[i].iov_len > want)
			iov[i].iov_len = want;
		want -= iov[i].iov_len;
	}
	while (done < len) {
		ssize_t got = preadv(fd, iov, n, (off_t)(off + done));
		if (got < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (got == 0)
			break;
		done += (size_t)got;
		n = io_iov_advance(&iov, n, (size_t)got);
	}
	return (ssize_t)done;
}

ssize_t io_pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	struct iovec iov = {buf, len};
	return io_preadv_full(fd, &iov, 1, off);
}

int io_pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
	size_t want = len;
	int rc = io_fault_check(IO_OP_WRITE, fd, NULL, &len);
	if (rc < 0)
		return rc;
	size_t done = 0;
	while (done < len) {
		ssize_t n = pwrite(fd, (const char *)buf + done, len - done, (off_t)(off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO; /* no progress and no reason: never spin */
		done += (size_t)n;
	}
	/* An injected short write: part of the data reached the file, then the
	 * disk filled up, which is what a real short write means. */
	return len < want ? -ENOSPC : 0;
}

int io_fsync(int fd)
{
	int rc = io_fault_check(IO_OP_FSYNC, fd, NULL, NULL);
	if (rc < 0)
		return rc;
	rc = fsync(fd) < 0 ? -errno : 0;
	io_fault_done(IO_OP_FSYNC, fd, rc);
	return rc;
}

int io_fdatasync(int fd)
{
	int rc = io_fault_check(IO_OP_FSYNC, fd, NULL, NULL);
	if (rc < 0)
		return rc;
	rc = fdatasync(fd) < 0 ? -errno : 0;
	io_fault_done(IO_OP_FSYNC, fd, rc);
	return rc;
}

int io_fsync_dir(const char *dir)
{
	int fd = io_open(dir, O_RDONLY | O_DIRECTORY, 0);
	if (fd < 0)
		return fd;
	int rc = io_fsync(fd);
	close(fd);
	return rc;
}

int io_rename(const char *from, const char *to)
{
	int rc = io_fault_check(IO_OP_RENAME, -1, from, NULL);
	if (rc < 0)
		return rc;
	return rename(from, to) < 0 ? -errno : 0;
}

int io_unlink(const char *path)
{
	int rc = io_fault_check(IO_OP_UNLINK, -1, path, NULL);
	if (rc < 0)
		return rc;
	return unlink(path) < 0 ? -errno : 0;
}

int io_fallocate(int fd, uint64_t off, uint64_t len)
{
	int rc = io_fault_check(IO_OP_FALLOCATE, fd, NULL, NULL);
	if (rc < 0)
		return rc;
	rc = posix_fallocate(fd, (off_t)off, (off_t)len);
	return -rc; /* posix_fallocate returns the errno itself */
}

int io_ftruncate(int fd, uint64_t len)
{
	int rc = io_fault_check(IO_OP_TRUNCATE, fd, NULL, NULL);
	if (rc < 0)
		return rc;
	return ftruncate(fd, (off_t)len) < 0 ? -errno : 0;
}

int64_t io_file_size(int fd)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	return (int64_t)st.st_size;
}
