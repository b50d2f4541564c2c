/*
 * log.h: structured JSON-line logging.
 *
 * Each event is one JSON object on one line of stderr, written with a
 * single write(2) of at most LOG_LINE_MAX bytes, so lines from many threads
 * and processes never interleave:
 *
 *   {"ts":"2026-11-26T13:00:00.123Z","lvl":"warn","svc":"gateway",
 *    "ev":"gw.upstream_timeout","req":"9f2c...","ms":30000}
 *
 * Usage:  log_warn("gw.upstream_timeout", LOG_STR("route", r),
 *                  LOG_I64("ms", ms));
 * The macro appends the terminator.  Event names are "svc.noun_verb"; free
 * text goes only in a "msg" field.  A value that would push the line past
 * the limit is cut and the line gains "trunc":true.
 *
 * The request id comes from LOG_REQ(id) or, when absent, from the calling
 * thread's current id (log_req_set()).
 *
 * Never log secrets: API keys, tokens, authorization headers, passwords or
 * bodies.  There is deliberately no helper for dumping a body.
 */
#ifndef LOG_H
#define LOG_H

#include "compat.h"
#include "err.h"

#define LOG_LINE_MAX 4096

enum log_level {
	LOG_ERROR = 0,
	LOG_WARN = 1,
	LOG_INFO = 2,
	LOG_DEBUG = 3,
};

enum log_type {
	LOG_T_END = 0,
	LOG_T_STR,
	LOG_T_I64,
	LOG_T_U64,
	LOG_T_F64,
	LOG_T_BOOL,
};

union log_val {
	const char *s;
	int64_t     i;
	uint64_t    u;
	double      d;
	bool        b;
};

struct log_kv {
	const char   *key;
	enum log_type type;
	union log_val v;
};

#define LOG_STR(k, x) \
	((struct log_kv){.key = (k), .type = LOG_T_STR, .v.s = (x)})
#define LOG_I64(k, x) \
	((struct log_kv){.key = (k), .type = LOG_T_I64, .v.i = (int64_t)(x)})
#define LOG_U64(k, x) \
	((struct log_kv){.key = (k), .type = LOG_T_U64, .v.u = (uint64_t)(x)})
#define LOG_F64(k, x) \
	((struct log_kv){.key = (k), .type = LOG_T_F64, .v.d = (double)(x)})
#define LOG_BOOL(k, x) \
	((struct log_kv){.key = (k), .type = LOG_T_BOOL, .v.b = (x)})
#define LOG_ERR(rv)   LOG_STR("err", err_name(rv))
#define LOG_REQ(id)   LOG_STR("req", (id))
#define LOG_MSG(text) LOG_STR("msg", (text))
#define LOG_END_      ((struct log_kv){.key = NULL, .type = LOG_T_END})

#define LOG_EMIT_(lvl, ev, ...)                                    \
	do {                                                       \
		if (log_enabled(lvl))                              \
			log_emit((lvl), (ev),                      \
			    (const struct log_kv[]){__VA_ARGS__}); \
	} while (0)

#define log_error(...) LOG_EMIT_(LOG_ERROR, __VA_ARGS__, LOG_END_)
#define log_warn(...)  LOG_EMIT_(LOG_WARN, __VA_ARGS__, LOG_END_)
#define log_info(...)  LOG_EMIT_(LOG_INFO, __VA_ARGS__, LOG_END_)
#define log_debug(...) LOG_EMIT_(LOG_DEBUG, __VA_ARGS__, LOG_END_)

/*
 * A startup failure: logs at error level and exits with status 1.  Only for
 * config, bind and dependency failures before serving.
 */
#define LOG_FATAL_(ev, ...) \
	log_emit(LOG_ERROR, (ev), (const struct log_kv[]){__VA_ARGS__})
#define fatalx(...)                                \
	do {                                       \
		LOG_FATAL_(__VA_ARGS__, LOG_END_); \
		log_exit_fatal();                  \
	} while (0)

/* Sets the "svc" field of every line; svc is borrowed for the process life. */
void log_init(const char *svc, enum log_level lvl);

/* Runtime level change; safe from any thread. */
void           log_set_level(enum log_level lvl);
enum log_level log_get_level(void);
bool           log_enabled(enum log_level lvl);

/* Parses "error", "warn", "info", "debug"; -ERR_INVAL otherwise. */
int log_level_parse(const char *s, enum log_level *out) WARN_UNUSED;

/*
 * Sets the calling thread's current request id (borrowed: the caller keeps
 * the string alive until it clears it with log_req_set(NULL)).
 */
void log_req_set(const char *req);

/*
 * Redirects output to fd (default 2).  For tests that read their own log.
 */
void log_set_fd(int fd);

/* Formats one line into out (at most cap bytes); returns its length. */
size_t log_format(char *out, size_t cap, enum log_level lvl, const char *ev,
    const struct log_kv *kv);

void log_emit(enum log_level lvl, const char *ev, const struct log_kv *kv);
NORETURN void log_exit_fatal(void);

#endif /* LOG_H */
