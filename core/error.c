#include "error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

static _Thread_local char error_msg[ERROR_MSG_MAX];

int error_set(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(error_msg, sizeof(error_msg), fmt, ap);
	va_end(ap);
	return code;
}

void error_clear(void)
{
	error_msg[0] = '\0';
}

int error_from_errno(int neg_errno)
{
	switch (-neg_errno) {
	case 0: return CESIUM_OK;
	case ENOSPC:
	case EDQUOT: return CESIUM_ENOSPC;
	case ENOMEM: return CESIUM_ENOMEM;
	case EINVAL:
	case ENAMETOOLONG:
	case ENOTDIR:
	case EISDIR:
	case ENOENT:
	case EEXIST: return CESIUM_EINVAL;
	case EWOULDBLOCK: return CESIUM_EBUSY;
	case ENOSYS:
	case EOPNOTSUPP:
	case EPERM: return CESIUM_ENOTSUP;
	default: return CESIUM_EIO;
	}
}

const char *cesium_strerror(int code)
{
	switch (code) {
	case CESIUM_OK: return "CESIUM_OK: success";
	case CESIUM_ENOTFOUND: return "CESIUM_ENOTFOUND: key not found";
	case CESIUM_EINVAL: return "CESIUM_EINVAL: invalid argument";
	case CESIUM_ENOMEM: return "CESIUM_ENOMEM: out of memory";
	case CESIUM_EIO: return "CESIUM_EIO: I/O error";
	case CESIUM_ENOSPC: return "CESIUM_ENOSPC: no space left on device";
	case CESIUM_ECORRUPT: return "CESIUM_ECORRUPT: data corruption detected";
	case CESIUM_EBUSY: return "CESIUM_EBUSY: database is locked by another handle";
	case CESIUM_ECLOSED: return "CESIUM_ECLOSED: database is closed";
	case CESIUM_ENOTSUP: return "CESIUM_ENOTSUP: not supported by this kernel";
	default: return "CESIUM_E?: unknown error code";
	}
}

const char *cesium_errmsg(void)
{
	return error_msg;
}
