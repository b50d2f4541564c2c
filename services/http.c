/*
 * http.c: the health listener: /healthz, /readyz, /metrics and extra
 * routes on libmicrohttpd, plus the background thread that runs the
 * readiness checks.
 *
 * Each request gets a small context on MHD's first call; bodies (for
 * extra routes) accumulate there up to body_max and the request is
 * answered on the final call, when MHD reports no more upload data.  The
 * check thread owns running the checks; the results live under srv->mu,
 * which handlers hold only to copy them into the response.
 */
#include "http.h"

#include <sys/socket.h>
#include <sys/types.h>

#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#include "cfg.h"
#include "err.h"
#include "log.h"
#include "metrics.h"

struct http_check {
	char         *name;
	http_check_fn fn;
	void         *arg;
	int           timeout_ms;
	bool          ok; /* last result, under srv->mu */
	int64_t       ms;
	char          detail[HTTP_DETAIL_MAX + 1];
};

struct http_route {
	char           *method, *path;
	http_handler_fn fn;
	void           *arg;
};

struct http_srv {
	char              *svc, *host, *port;
	struct http_opts   opts;
	struct MHD_Daemon *mhd;
	int                bound_port;
	atomic_bool        draining;
	pthread_mutex_t    mu;
	pthread_cond_t     cv;
	pthread_t          thr;
	bool               thr_running, stop;
	int64_t            last_run_ms; /* mono; 0 = never, under mu */
	struct http_check  checks[HTTP_CHECKS_MAX];
	size_t             nchecks;
	struct http_route  routes[HTTP_ROUTES_MAX];
	size_t             nroutes;
};

/* Per request, from MHD's first call to its completion notice. */
struct http_ctx {
	struct buf body;
	bool       toobig;
};

static const char *const http_builtin[] = {"/healthz", "/readyz", "/metrics"};

int
http_srv_new(const char *svc, const char *addr, const struct http_opts *opts,
    struct http_srv **out)
{
	struct http_srv   *s;
	const char        *colon;
	pthread_condattr_t ca;

	if (addr == NULL || cfg_check_addr(addr) != 0)
		return -ERR_INVAL;
	s = xcalloc(1, sizeof(*s));
	s->svc = xstrdup(svc);
	colon = strrchr(addr, ':');
	if (addr[0] == '[')
		s->host = xstrndup(addr + 1, (size_t)(colon - addr - 2));
	else
		s->host = xstrndup(addr, (size_t)(colon - addr));
	s->port = xstrdup(colon + 1);
	if (opts != NULL)
		s->opts = *opts;
	if (s->opts.threads <= 0)
		s->opts.threads = 2;
	if (s->opts.conn_limit <= 0)
		s->opts.conn_limit = 64;
	if (s->opts.conn_timeout_s <= 0)
		s->opts.conn_timeout_s = 10;
	if (s->opts.check_period_ms <= 0)
		s->opts.check_period_ms = 1000;
	if (s->opts.body_max == 0)
		s->opts.body_max = 64 * 1024;
	if (s->opts.resp_max == 0)
		s->opts.resp_max = 16 * 1024 * 1024;
	if (s->opts.metrics == NULL)
		s->opts.metrics = metrics_default();
	pthread_mutex_init(&s->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cv, &ca);
	pthread_condattr_destroy(&ca);
	*out = s;
	return 0;
}

int
http_add_check(struct http_srv *s, const char *name, http_check_fn fn,
    void *arg, int timeout_ms)
{
	struct http_check *c;

	if (s->mhd != NULL)
		return -ERR_BUSY;
	if (s->nchecks == HTTP_CHECKS_MAX)
		return -ERR_TOOBIG;
	c = &s->checks[s->nchecks++];
	c->name = xstrdup(name);
	c->fn = fn;
	c->arg = arg;
	c->timeout_ms = timeout_ms > 0 ? timeout_ms : 1000;
	return 0;
}

int
http_add_route(struct http_srv *s, const char *method, const char *path,
    http_handler_fn fn, void *arg)
{
	struct http_route *r;
	size_t             i;

	if (s->mhd != NULL)
		return -ERR_BUSY;
	for (i = 0; i < ARRAY_SIZE(http_builtin); i++)
		if (strcmp(path, http_builtin[i]) == 0)
			return -ERR_EXISTS;
	for (i = 0; i < s->nroutes; i++)
		if (strcmp(s->routes[i].path, path) == 0 &&
		    strcmp(s->routes[i].method, method) == 0)
			return -ERR_EXISTS;
	if (s->nroutes == HTTP_ROUTES_MAX)
		return -ERR_TOOBIG;
	r = &s->routes[s->nroutes++];
	r->method = xstrdup(method);
	r->path = xstrdup(path);
	r->fn = fn;
	r->arg = arg;
	return 0;
}

/* Runs every check once, outside the lock, then publishes the results. */
static void
http_run_checks(struct http_srv *s)
{
	bool       ok[HTTP_CHECKS_MAX];
	int64_t    ms[HTTP_CHECKS_MAX], t0;
	struct buf det[HTTP_CHECKS_MAX];
	size_t     i;
	int        rv;

	for (i = 0; i < s->nchecks; i++) {
		struct http_check *c = &s->checks[i];

		buf_init(&det[i], HTTP_DETAIL_MAX + 1);
		t0 = now_mono_ms();
		rv = c->fn(c->arg, c->timeout_ms, &det[i]);
		ms[i] = now_mono_ms() - t0;
		ok[i] = rv == 0 && ms[i] <= c->timeout_ms;
		if (rv == 0 && !ok[i] && det[i].len == 0)
			(void)!buf_addstr(&det[i], "over budget");
		if (rv != 0 && det[i].len == 0)
			(void)!buf_addstr(&det[i], err_str(rv));
	}
	pthread_mutex_lock(&s->mu);
	for (i = 0; i < s->nchecks; i++) {
		s->checks[i].ok = ok[i];
		s->checks[i].ms = ms[i];
		snprintf(s->checks[i].detail, sizeof(s->checks[i].detail), "%s",
		    ok[i] ? "" : buf_str(&det[i]));
		buf_release(&det[i]);
	}
	s->last_run_ms = now_mono_ms();
	pthread_mutex_unlock(&s->mu);
}

static void *
http_check_main(void *arg)
{
	struct http_srv *s = arg;
	struct timespec  ts;
	int64_t          due;

	pthread_mutex_lock(&s->mu);
	while (!s->stop) {
		pthread_mutex_unlock(&s->mu);
		http_run_checks(s);
		due = now_mono_ms() + s->opts.check_period_ms;
		ts.tv_sec = (time_t)(due / 1000);
		ts.tv_nsec = (long)(due % 1000) * 1000000L;
		pthread_mutex_lock(&s->mu);
		while (!s->stop && now_mono_ms() < due)
			pthread_cond_timedwait(&s->cv, &s->mu, &ts);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

static int
http_healthz(struct http_srv *s, struct http_resp *r)
{
	int rv;

	rv = buf_addf(&r->body, "{\"status\":\"%s\",\"service\":\"",
	    atomic_load(&s->draining) ? "draining" : "ok");
	if (rv == 0)
		rv = buf_add_json_str(&r->body, s->svc, strlen(s->svc));
	return rv == 0 ? buf_addstr(&r->body, "\"}") : rv;
}

static int
http_readyz(struct http_srv *s, struct http_resp *r)
{
	const char *status = "ready";
	int64_t     stale = 5 * (int64_t)s->opts.check_period_ms;
	size_t      i;
	int         rv;

	if (stale < 5000)
		stale = 5000;
	buf_reset(&r->body);
	pthread_mutex_lock(&s->mu);
	if (s->nchecks > 0 &&
	    (s->last_run_ms == 0 || now_mono_ms() - s->last_run_ms > stale))
		status = "not_ready";
	for (i = 0; i < s->nchecks; i++)
		if (!s->checks[i].ok)
			status = "not_ready";
	if (atomic_load(&s->draining))
		status = "draining";
	rv = buf_addf(&r->body, "{\"status\":\"%s\",\"checks\":{", status);
	for (i = 0; i < s->nchecks && rv == 0 && s->last_run_ms != 0; i++) {
		struct http_check *c = &s->checks[i];

		rv = buf_addf(&r->body, "%s\"", i ? "," : "");
		if (rv == 0)
			rv = buf_add_json_str(
			    &r->body, c->name, strlen(c->name));
		if (rv == 0)
			rv = buf_addf(&r->body, "\":{\"ok\":%s,\"ms\":%lld",
			    c->ok ? "true" : "false", (long long)c->ms);
		if (rv == 0 && !c->ok) {
			rv = buf_addstr(&r->body, ",\"detail\":\"");
			if (rv == 0)
				rv = buf_add_json_str(
				    &r->body, c->detail, strlen(c->detail));
			if (rv == 0)
				rv = buf_addch(&r->body, '"');
		}
		if (rv == 0)
			rv = buf_addch(&r->body, '}');
	}
	pthread_mutex_unlock(&s->mu);
	if (rv == 0)
		rv = buf_addstr(&r->body, "}}");
	r->status = strcmp(status, "ready") == 0 ? 200 : 503;
	return rv;
}

static enum MHD_Result
http_send(struct MHD_Connection *conn, int status, const char *ctype,
    struct buf *body, const char *allow)
{
	struct MHD_Response *resp;
	enum MHD_Result      ret;
	size_t               len;
	char                *p = buf_detach(body, &len);

	resp = MHD_create_response_from_buffer(len, p, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(p);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	MHD_add_response_header(
	    resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (allow != NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
	ret = MHD_queue_response(conn, (unsigned)status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result
http_error(
    struct MHD_Connection *conn, int status, const char *msg, const char *allow)
{
	struct buf b;

	buf_init(&b, 256);
	if (buf_addf(&b, "{\"error\":\"%s\"}", msg) != 0)
		return MHD_NO;
	return http_send(conn, status, "application/json", &b, allow);
}

static bool
http_is_get(const char *method)
{
	return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
}

/* Built-in paths; returns MHD_NO + *handled=false when path is not one. */
static enum MHD_Result
http_dispatch_builtin(struct http_srv *s, struct MHD_Connection *conn,
    const char *path, const char *method, bool *handled)
{
	struct http_resp r = {.status = 200, .ctype = "application/json"};
	int              rv;

	*handled = true;
	if (strcmp(path, "/healthz") != 0 && strcmp(path, "/readyz") != 0 &&
	    strcmp(path, "/metrics") != 0) {
		*handled = false;
		return MHD_NO;
	}
	if (!http_is_get(method))
		return http_error(conn, 405, "method not allowed", "GET, HEAD");
	buf_init(&r.body, s->opts.resp_max);
	if (strcmp(path, "/healthz") == 0) {
		rv = http_healthz(s, &r);
	} else if (strcmp(path, "/readyz") == 0) {
		rv = http_readyz(s, &r);
	} else {
		r.ctype = "text/plain; version=0.0.4; charset=utf-8";
		rv = met_render(s->opts.metrics, &r.body);
	}
	if (rv != 0) {
		buf_release(&r.body);
		log_warn(
		    "http.render_failed", LOG_STR("path", path), LOG_ERR(rv));
		return http_error(conn, 500, err_name(rv), NULL);
	}
	return http_send(conn, r.status, r.ctype, &r.body, NULL);
}

static enum MHD_Result
http_dispatch(struct http_srv *s, struct MHD_Connection *conn, const char *path,
    const char *method, struct http_ctx *ctx)
{
	struct http_resp r = {.status = 200, .ctype = "application/json"};
	struct http_req  q = {.method = method, .path = path, .conn_ = conn};
	struct buf       allow;
	enum MHD_Result  ret;
	bool             handled;
	size_t           i;
	int              rv;

	ret = http_dispatch_builtin(s, conn, path, method, &handled);
	if (handled)
		return ret;
	if (ctx->toobig)
		return http_error(conn, 413, "body too large", NULL);
	buf_init(&allow, 256);
	for (i = 0; i < s->nroutes; i++) {
		struct http_route *rt = &s->routes[i];

		if (strcmp(rt->path, path) != 0)
			continue;
		if (strcmp(rt->method, method) != 0) {
			(void)!buf_addf(
			    &allow, "%s%s", allow.len ? ", " : "", rt->method);
			continue;
		}
		buf_release(&allow);
		q.body = buf_str(&ctx->body);
		q.body_len = ctx->body.len;
		buf_init(&r.body, s->opts.resp_max);
		rv = rt->fn(rt->arg, &q, &r);
		if (rv != 0) {
			buf_release(&r.body);
			return http_error(conn, 500, err_name(rv), NULL);
		}
		return http_send(conn, r.status, r.ctype, &r.body, NULL);
	}
	if (allow.len > 0) {
		ret = http_error(
		    conn, 405, "method not allowed", buf_str(&allow));
		buf_release(&allow);
		return ret;
	}
	buf_release(&allow);
	return http_error(conn, 404, "not found", NULL);
}

static enum MHD_Result
http_access_cb(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_len, void **con_cls)
{
	struct http_srv *s = cls;
	struct http_ctx *ctx = *con_cls;

	(void)version;
	if (ctx == NULL) {
		ctx = xcalloc(1, sizeof(*ctx));
		buf_init(&ctx->body, s->opts.body_max + 1);
		*con_cls = ctx;
		return MHD_YES;
	}
	if (*upload_len > 0) {
		if (!ctx->toobig &&
		    buf_add(&ctx->body, upload, *upload_len) != 0)
			ctx->toobig = true; /* buf_add released it */
		*upload_len = 0;
		return MHD_YES;
	}
	return http_dispatch(s, conn, url, method, ctx);
}

static void
http_completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct http_ctx *ctx = *con_cls;

	(void)cls;
	(void)conn;
	(void)toe;
	if (ctx == NULL)
		return;
	buf_release(&ctx->body);
	free(ctx);
	*con_cls = NULL;
}

static void http_mhd_log_cb(void *cls, const char *fmt, va_list ap)
    PRINTF_LIKE(2, 0);

static void
http_mhd_log_cb(void *cls, const char *fmt, va_list ap)
{
	char   msg[256];
	size_t n;

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && msg[n - 1] == '\n')
		msg[--n] = '\0';
	log_warn("http.mhd", LOG_MSG(msg));
}

int
http_srv_start(struct http_srv *s)
{
	struct addrinfo             hints = {.ai_socktype = SOCK_STREAM,
	                .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	const union MHD_DaemonInfo *info;
	struct addrinfo            *ai = NULL;
	unsigned                    flags;

	if (s->mhd != NULL)
		return -ERR_BUSY;
	if (getaddrinfo(s->host, s->port, &hints, &ai) != 0 || ai == NULL) {
		log_error("http.resolve_failed", LOG_STR("host", s->host));
		return -ERR_IO;
	}
	flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	s->mhd = MHD_start_daemon(flags, 0, NULL, NULL, http_access_cb, s,
	    MHD_OPTION_EXTERNAL_LOGGER, http_mhd_log_cb, s,
	    MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_THREAD_POOL_SIZE,
	    (unsigned)s->opts.threads, MHD_OPTION_CONNECTION_LIMIT,
	    (unsigned)s->opts.conn_limit, MHD_OPTION_CONNECTION_TIMEOUT,
	    (unsigned)s->opts.conn_timeout_s, MHD_OPTION_NOTIFY_COMPLETED,
	    http_completed_cb, s, MHD_OPTION_END);
	freeaddrinfo(ai);
	if (s->mhd == NULL) {
		log_error("http.bind_failed", LOG_STR("host", s->host),
		    LOG_STR("port", s->port));
		return -ERR_IO;
	}
	info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
	s->bound_port = info != NULL ? info->port : 0;
	if (pthread_create(&s->thr, NULL, http_check_main, s) != 0)
		BUG("http: cannot start the check thread");
	s->thr_running = true;
	log_info("http.listening", LOG_STR("service", s->svc),
	    LOG_STR("host", s->host), LOG_I64("port", s->bound_port));
	return 0;
}

int
http_srv_port(const struct http_srv *s)
{
	return s->bound_port;
}

void
http_srv_set_draining(struct http_srv *s, bool draining)
{
	atomic_store(&s->draining, draining);
}

const char *
http_req_header(const struct http_req *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn_, MHD_HEADER_KIND, name);
}

const char *
http_req_arg(const struct http_req *req, const char *name)
{
	return MHD_lookup_connection_value(
	    req->conn_, MHD_GET_ARGUMENT_KIND, name);
}

void
http_srv_free(struct http_srv *s)
{
	size_t i;

	if (s == NULL)
		return;
	if (s->mhd != NULL)
		MHD_stop_daemon(s->mhd);
	if (s->thr_running) {
		pthread_mutex_lock(&s->mu);
		s->stop = true;
		pthread_cond_signal(&s->cv);
		pthread_mutex_unlock(&s->mu);
		pthread_join(s->thr, NULL);
	}
	for (i = 0; i < s->nchecks; i++)
		free(s->checks[i].name);
	for (i = 0; i < s->nroutes; i++) {
		free(s->routes[i].method);
		free(s->routes[i].path);
	}
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s->svc);
	free(s->host);
	free(s->port);
	free(s);
}
