/*
 * file — synchronous file operations for caller threads: foreground block
 * reads, open-time recovery, locking. Each passes through the fault seam
 * (fault.h) and returns 0 / a byte count, or a negative errno, as liburing
 * does; callers turn errnos into CESIUM_E* codes with error_from_errno().
 *
 * Reactor threads never call these (they would block the ring); they use
 * the asynchronous operations in ring.h.
 */
#ifndef CESIUM_IO_FILE_H
#define CESIUM_IO_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* open(2) with O_CLOEXEC added; returns an fd or -errno. */
int io_open(const char *path, int flags, mode_t mode);
void io_close(int fd);
/* Reads up to len bytes at off, retrying short reads; returns the bytes
 * read (less than len only at end of file) or -errno. */
ssize_t io_pread_full(int fd, void *buf, size_t len, uint64_t off);
/* The same into the n pieces in turn, which it consumes (iov is modified
 * as the reads progress). */
struct iovec;
ssize_t io_preadv_full(int fd, struct iovec *iov, int n, uint64_t off);
/* Writes all len bytes at off, retrying short writes; 0 or -errno. */
int io_pwrite_full(int fd, const void *buf, size_t len, uint64_t off);
int io_fsync(int fd);
int io_fdatasync(int fd);
/* Opens the directory and fsyncs it, so that entries created or renamed in
 * it are durable. */
int io_fsync_dir(const char *dir);
int io_rename(const char *from, const char *to);
int io_unlink(const char *path);
/* Reserves disk blocks for [off, off+len) (mode 0: the size grows too). */
int io_fallocate(int fd, uint64_t off, uint64_t len);
int io_ftruncate(int fd, uint64_t len);
/* File size in bytes, or -errno. */
int64_t io_file_size(int fd);

#endif
