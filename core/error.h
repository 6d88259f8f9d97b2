/*
 * error — error codes and the per-thread error message behind
 * cesium_strerror() and cesium_errmsg().
 *
 * Any thread may call anything here. The message buffer is thread-local, so
 * a message set on a reactor thread is not seen by the caller: code that
 * fails on a reactor carries its message back in the reply and the caller
 * re-sets it with error_set().
 */
#ifndef CESIUM_CORE_ERROR_H
#define CESIUM_CORE_ERROR_H

#include "cesium.h"

#define ERROR_MSG_MAX 512

/* Records a printf-style detail for the calling thread; returns code, so
 * that `return error_set(CESIUM_EINVAL, "...")` reads naturally. */
int error_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Clears this thread's message. */
void error_clear(void);
/* Maps a negative errno (as io_uring returns it) to a CESIUM_E* code. */
int error_from_errno(int neg_errno);

#endif
