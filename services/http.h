/*
 * http.h: the per-service health listener (libmicrohttpd).
 *
 * Every service runs one small HTTP server, apart from any public front:
 *
 *   GET /healthz  200 {"status":"ok","service":"<svc>"} while the process
 *                 lives.  While draining it stays 200 with status
 *                 "draining": liveness must not fail during a graceful
 *                 drain, or an orchestrator would kill the process before
 *                 its streams finish.  Readiness is what turns traffic away.
 *   GET /readyz   200 {"status":"ready","checks":{"postgres":{"ok":true,
 *                 "ms":1}, ...}} or 503 with "not_ready" (a check failed,
 *                 none has run yet, or the results are stale) or
 *                 "draining".  A failed check adds "detail":"...".
 *   GET /metrics  the registry rendered, text/plain; version=0.0.4.
 *   other paths   404 {"error":"not found"}; a known path with another
 *                 method 405 {"error":"method not allowed"} with Allow.
 *                 HEAD is accepted wherever GET is.
 *
 * Readiness checks run in one background thread every check_period_ms
 * (default 1000) and /readyz serves the last results, so a probe storm
 * never reaches the dependencies.  Each check gets its budget (timeout_ms,
 * passed to the callback so it can bound its own I/O); a check that
 * returns 0 but took longer than its budget counts as failed.  Results
 * older than 5 periods (at least 5 s: a hung check) count as failed too.
 * So an outage shows as 503 within period + budget and recovery as 200
 * within the same bound: about 2 s with the defaults.
 *
 * Threads: MHD runs an internal polling thread with a small pool
 * (opts.threads, default 2); handlers and check callbacks run on those
 * and on the check thread, never on the caller's.
 */
#ifndef HTTP_H
#define HTTP_H

#include "buf.h"
#include "compat.h"

#define HTTP_CHECKS_MAX 16
#define HTTP_ROUTES_MAX 32
#define HTTP_DETAIL_MAX 200 /* bytes of a check's detail kept */

struct http_srv;
struct met_registry;

struct http_opts {
	int                  threads;         /* MHD pool size; 0: 2 */
	int                  conn_limit;      /* 0: 64 */
	int                  conn_timeout_s;  /* idle connection; 0: 10 */
	int                  check_period_ms; /* 0: 1000 */
	size_t               body_max;        /* request bodies; 0: 64 KiB */
	size_t               resp_max;        /* response bodies; 0: 16 MiB */
	struct met_registry *metrics;         /* NULL: metrics_default() */
};

/*
 * A readiness check.  Writes at most HTTP_DETAIL_MAX bytes of why it
 * failed into detail (borrowed, may stay empty) and returns 0 or -ERR_x.
 * It should give up after timeout_ms.  Runs on the check thread.
 */
typedef int (*http_check_fn)(void *arg, int timeout_ms, struct buf *detail);

struct http_req {
	const char *method;
	const char *path;
	const char *body; /* NUL-terminated; "" when none */
	size_t      body_len;
	void       *conn_; /* the MHD connection, for http_req_* */
};

struct http_resp {
	int         status; /* preset 200 */
	const char *ctype;  /* static string; preset "application/json" */
	struct buf  body;   /* initialised with resp_max; fill it */
};

/*
 * An extra route's handler.  req and resp are borrowed for the call.
 * Returns 0, or -ERR_x to answer 500 {"error":"<err_name>"} and drop
 * whatever is in resp.  Runs on an MHD thread; may block only briefly.
 */
typedef int (*http_handler_fn)(
    void *arg, const struct http_req *req, struct http_resp *resp);

/*
 * Creates a stopped server for service svc listening on addr ("host:port",
 * port 0 picks a free one).  svc and addr are copied; opts is copied and
 * may be NULL.  -ERR_INVAL for a bad address.
 */
int http_srv_new(const char *svc, const char *addr,
    const struct http_opts *opts, struct http_srv **out) WARN_UNUSED;

/*
 * Registers a readiness check named name (copied) with its budget; before
 * http_srv_start only (-ERR_BUSY after), -ERR_TOOBIG past
 * HTTP_CHECKS_MAX.  arg is borrowed until http_srv_free.
 */
int http_add_check(struct http_srv *srv, const char *name, http_check_fn fn,
    void *arg, int timeout_ms) WARN_UNUSED;

/*
 * Registers method (e.g. "GET", "POST") + exact path (copied) -> fn, before
 * start only.  Built-in paths cannot be overridden (-ERR_EXISTS).
 */
int http_add_route(struct http_srv *srv, const char *method, const char *path,
    http_handler_fn fn, void *arg) WARN_UNUSED;

/*
 * Binds and starts serving, and starts the check thread.  -ERR_IO when
 * the address cannot be bound (callers fatalx()).
 */
int http_srv_start(struct http_srv *srv) WARN_UNUSED;

/* The bound port after start (useful with port 0); 0 before. */
int http_srv_port(const struct http_srv *srv);

/* Starts or ends draining; safe from any thread. */
void http_srv_set_draining(struct http_srv *srv, bool draining);

/* A request header or query argument (borrowed from MHD), or NULL. */
const char *http_req_header(const struct http_req *req, const char *name);
const char *http_req_arg(const struct http_req *req, const char *name);

/* Stops MHD and the check thread, then frees.  NULL is legal. */
void http_srv_free(struct http_srv *srv);

#endif /* HTTP_H */
