/*
 * err.h: the project's error codes.
 *
 * Every fallible function returns int: 0 on success, -ERR_x on failure.
 * The codes come from one X-macro table, which also yields err_str() and
 * err_name().  Library errors are converted once, at the boundary, by the
 * err_from_*() helpers of the module that wraps the library (nngx.h for
 * nng, pg.h for libpq, rds.h for hiredis).  The numeric values are part of
 * the wire contract (proto error replies carry them), so new codes go at
 * the end of the table.
 */
#ifndef ERR_H
#define ERR_H

#include "compat.h"

#define ERR_MAP(X)                                     \
	X(NOMEM, 1, "out of memory")                   \
	X(INVAL, 2, "invalid argument")                \
	X(PROTO, 3, "malformed or unexpected message") \
	X(TOOBIG, 4, "size limit exceeded")            \
	X(TYPE, 5, "field has the wrong type")         \
	X(MISSING, 6, "required field missing")        \
	X(VERSION, 7, "unsupported protocol version")  \
	X(TIMEDOUT, 8, "timed out")                    \
	X(CLOSED, 9, "closed")                         \
	X(IO, 10, "input/output error")                \
	X(NOTFOUND, 11, "not found")                   \
	X(EXISTS, 12, "already exists")                \
	X(CONFIG, 13, "invalid configuration")         \
	X(DB, 14, "database error")                    \
	X(REDIS, 15, "redis error")                    \
	X(NNG, 16, "messaging error")                  \
	X(CURL, 17, "upstream transfer error")         \
	X(CRYPTO, 18, "cryptographic failure")         \
	X(BUSY, 19, "busy, try again")                 \
	X(UNAVAIL, 20, "service unavailable")          \
	X(AUTH, 21, "authentication failed")           \
	X(FORBIDDEN, 22, "forbidden")                  \
	X(CONFLICT, 23, "conflicting state")           \
	X(CANCELED, 24, "canceled")                    \
	X(INTERNAL, 25, "internal error")

enum err_code {
	ERR_NONE = 0,

#define ERR_ENUM_(name, num, text) ERR_##name = num,
	ERR_MAP(ERR_ENUM_)
#undef ERR_ENUM_
	    ERR_MAX_
};

/*
 * err_str() returns a static, human-readable text for a code given either
 * as ERR_x or -ERR_x; unknown codes give "unknown error".  err_name()
 * returns the bare symbol ("TOOBIG") for logs and metrics labels.
 */
const char *err_str(int code);
const char *err_name(int code);

#endif /* ERR_H */
