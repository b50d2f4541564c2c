/*
 * rds.h: a small thread-safe pool of synchronous Redis connections
 * (hiredis 0.14, no SSL) and Lua scripts called by SHA.
 *
 * Each redisContext is used by one thread at a time: a call takes an idle
 * connection from the pool (or opens one, up to the pool size, or waits
 * for one to come back), runs its command(s), and returns it.  A
 * connection that saw an I/O or protocol error is dropped, and a later
 * call opens a fresh one, so the pool recovers by itself once the server
 * is back.  No command is retried automatically after an I/O error: the
 * server may or may not have run it, and most of ours (INCRBY, slot
 * leases) are not idempotent, so the caller gets -ERR_REDIS (or
 * -ERR_TIMEDOUT) and decides.  The one retry this module makes is
 * EVALSHA after NOSCRIPT, which is safe: the script did not run.
 *
 * URL: redis://[[user]:password@]host[:port][/db]  (port 6379, db 0 by
 * default; host may be [ipv6]).  The password is sent with AUTH on each
 * new connection and never logged; db is applied with SELECT.  No
 * percent-decoding.
 *
 * Timeouts: timeout_ms bounds connecting, each command (redisSetTimeout)
 * and the wait for a free connection.  Replies are bounded too: a reply
 * whose strings and elements add up to more than the pool's max reply
 * size (RDS_REPLY_MAX unless changed) is refused with -ERR_TOOBIG.
 * hiredis 0.14 cannot cap a reply while reading it, so this is a check
 * after the fact; commands whose reply size depends on input (GET of a
 * user-written key, LRANGE) should also bound what they ask for.
 *
 * Reply ownership: a successful call hands *out to the caller, who frees
 * it with freeReplyObject(); out may be NULL to discard the reply.  Server
 * error replies are not handed out: they return -ERR_REDIS and are logged
 * (rds.reply_error, with the error's first word only).
 */
#ifndef RDS_H
#define RDS_H

#include <hiredis.h>

#include "compat.h"

#define RDS_URL_MAX   1024
#define RDS_ARGV_MAX  64
#define RDS_REPLY_MAX (16 << 20) /* bytes, default per reply */
#define RDS_POOL_MAX  256

struct rds_pool;
struct rds_script;

/*
 * Maps the error state of a context: a timeout (connect or command) is
 * -ERR_TIMEDOUT, out of memory (or c == NULL) -ERR_NOMEM, anything else
 * -ERR_REDIS.  0 when c has no error.
 */
int err_from_rds(const redisContext *c);

/*
 * Parses url (borrowed) and makes a pool of at most size (1..RDS_POOL_MAX)
 * connections with timeout_ms (> 0) for connect, commands and waiting.
 * Connects lazily: an unreachable server is not an error here (see
 * rds_ping()).  -ERR_INVAL for a bad url or bounds.  *out is owned by the
 * caller, released by rds_pool_free().
 */
int rds_pool_new(const char *url, int size, int timeout_ms,
    struct rds_pool **out) WARN_UNUSED;

/*
 * Closes every connection and frees the pool.  All calls must have
 * returned.  NULL is fine.
 */
void rds_pool_free(struct rds_pool *p);

/* Changes the reply cap (bytes, > 0).  Call before sharing the pool. */
void rds_pool_set_max_reply(struct rds_pool *p, size_t max);

/*
 * PING for readiness: 0 when the server answers PONG.  timeout_ms bounds
 * the wait for a pooled connection; connect and command use the pool's
 * timeout.  -ERR_AUTH when the server refuses our password.
 */
int rds_ping(struct rds_pool *p, int timeout_ms) WARN_UNUSED;

/*
 * Runs one command given in hiredis format (redisCommand: %s strings, %b
 * binary with length, %d ints).  Returns 0 and the reply, or -ERR_REDIS
 * (I/O, protocol or server error reply), -ERR_TIMEDOUT, -ERR_BUSY (no
 * connection free within the timeout), -ERR_AUTH, -ERR_TOOBIG.
 */
int rds_cmd(
    struct rds_pool *p, redisReply **out, const char *fmt, ...) WARN_UNUSED;

/*
 * The same with argc (1..RDS_ARGV_MAX) arguments, argv and argvlen
 * borrowed; argvlen may be NULL for NUL-terminated strings.
 */
int rds_cmdargv(struct rds_pool *p, redisReply **out, int argc,
    const char *const *argv, const size_t *argvlen) WARN_UNUSED;

/*
 * A Lua script, its SHA1 computed locally (so the first call can use
 * EVALSHA without asking the server).  lua is copied.  Scripts are
 * immutable and may be shared by any number of threads and pools.
 */
int  rds_script_new(const char *lua, struct rds_script **out) WARN_UNUSED;
void rds_script_free(struct rds_script *s);

/* The 40 lowercase hex digits of the script's SHA1. */
const char *rds_script_sha(const struct rds_script *s);

/*
 * EVALSHA with nkeys keys then nargs arguments, taken in that order from
 * argv (argvlen as in rds_cmdargv; nkeys + nargs <= RDS_ARGV_MAX - 3).
 * On NOSCRIPT (server restarted, SCRIPT FLUSH) it loads the script on the
 * same connection and retries once.  A script error is -ERR_REDIS.
 */
int rds_script_eval(struct rds_pool *p, const struct rds_script *s,
    redisReply **out, int nkeys, int nargs, const char *const *argv,
    const size_t *argvlen) WARN_UNUSED;

/* One script call of a pipeline (rds_script_evalv()). */
struct rds_call {
	const struct rds_script *s;
	int                      nkeys, nargs;
	const char *const       *argv;  /* borrowed; strings (no argvlen) */
	int                      rv;    /* out: as rds_script_eval() */
	redisReply              *reply; /* out: owned by the caller, or NULL */
};

/*
 * Runs n (1..RDS_PIPE_MAX) script calls in one round trip on one
 * connection: Redis runs them one after the other, in order, and nothing
 * else runs between... except other clients' commands, which may.  Each
 * call's outcome is in calls[i].rv and .reply, as rds_script_eval() would
 * give it; the function returns 0 when every call ran, else the first
 * failure.  A call answered NOSCRIPT is retried alone after loading its
 * script, after the others (so order holds except after a script flush).
 * A connection failure fails the calls not yet answered.
 */
#define RDS_PIPE_MAX 64
int rds_script_evalv(
    struct rds_pool *p, struct rds_call *calls, size_t n) WARN_UNUSED;

#endif /* RDS_H */
