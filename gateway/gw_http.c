/*
 * gw_http.c: the client-facing HTTP listener (the MHD side of a request).
 *
 * libmicrohttpd runs in epoll mode on one internal thread with suspend and
 * resume, so a long stream holds no thread: a request waiting for the
 * scheduler or for upstream bytes is suspended, and the I/O thread resumes
 * it when there is something to send.  This side receives the body
 * (bounded by body_max: a larger declared Content-Length is refused with
 * 413 before reading it), answers the local routes, validates what it can
 * without the scheduler (API key present, JSON, model), then hands the
 * request to the I/O thread and copies bytes from req->out to the client.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <strings.h>

#include "crypto.h"
#include "err.h"
#include "gw.h"
#include "gw_errors.h"
#include "gw_io.h"
#include "gw_relay.h"
#include "log.h"

#define GW_HTTP_BLOCK 8192 /* bytes handed to MHD per reader call */

static const char gw_http_ok[] = "{\"status\":\"ok\"}";

/* Answers a complete body known now (copied by MHD). */
static enum MHD_Result
gw_http_send(struct MHD_Connection *c, unsigned status, const char *ctype,
    const char *body, size_t len)
{
	struct MHD_Response *resp;
	enum MHD_Result      rv;

	resp = MHD_create_response_from_buffer(
	    len, (void *)body, MHD_RESPMEM_MUST_COPY);
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", ctype);
	rv = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return rv;
}

static enum MHD_Result
gw_http_error(struct MHD_Connection *c, enum gw_err_code code)
{
	const struct gw_err_info *e = gw_err_info(code);
	struct buf                b;
	enum MHD_Result           rv;

	buf_init(&b, 4096);
	if (gw_err_anthropic(&b, e->type, e->message) != 0)
		return MHD_NO;
	rv = gw_http_send(
	    c, (unsigned)e->status, "application/json", b.data, b.len);
	buf_release(&b);
	return rv;
}

/*
 * MHD calls back into r's connection: a suspension of it, if any, is
 * over (MHD thread only, as are the suspensions).
 */
static void
gw_http_unpark(struct gw_req *r)
{
	if (r->parked) {
		r->parked = false;
		atomic_fetch_sub(&r->gw->parked, 1);
	}
}

/* Suspends r's connection; the caller holds r->mu (MHD thread). */
static void
gw_http_park(struct gw_req *r)
{
	r->suspended = true;
	gw_io_watch_locked(r);
	if (!r->parked) {
		r->parked = true;
		atomic_fetch_add(&r->gw->parked, 1);
	}
	MHD_suspend_connection(r->conn);
}

/* The content reader: copies from r->out; suspends when it is empty. */
static ssize_t
gw_http_reader(void *cls, uint64_t pos, char *out, size_t max)
{
	struct gw_req *r = cls;
	size_t         n;
	bool           unpause = false;

	(void)pos;
	gw_http_unpark(r);
	pthread_mutex_lock(&r->mu);
	if (r->out.len > 0) {
		n = r->out.len < max ? r->out.len : max;
		memcpy(out, r->out.data, n);
		memmove(r->out.data, r->out.data + n, r->out.len - n);
		buf_truncate(&r->out, r->out.len - n);
		unpause = r->paused &&
		    r->out.len < (size_t)r->gw->cfg->stream_buffer / 2;
		if (unpause) {
			r->paused = false;
			r->refs++; /* the message's reference */
		}
		pthread_mutex_unlock(&r->mu);
		if (unpause && !gw_io_post(r->gw, GW_M_UNPAUSE, r, 0, NULL, 0))
			gw_req_unref(r);
		return (ssize_t)n;
	}
	if (r->out_done || r->client_gone) {
		pthread_mutex_unlock(&r->mu);
		return r->client_gone ? MHD_CONTENT_READER_END_WITH_ERROR
		                      : MHD_CONTENT_READER_END_OF_STREAM;
	}
	gw_http_park(r);
	pthread_mutex_unlock(&r->mu);
	return 0;
}

/* Queues the response the I/O side decided (status, type, r->out). */
static enum MHD_Result
gw_http_respond(struct gw_req *r)
{
	struct MHD_Response *resp;
	enum MHD_Result      rv;
	unsigned             status;
	bool                 stream;

	pthread_mutex_lock(&r->mu);
	status = (unsigned)r->resp_status;
	stream = r->resp_stream;
	if (r->out_done && !stream) {
		/* Complete already: send it with a Content-Length. */
		resp = MHD_create_response_from_buffer(r->out.len,
		    r->out.data ? r->out.data : (void *)"",
		    MHD_RESPMEM_MUST_COPY);
		buf_reset(&r->out);
	} else {
		resp = MHD_create_response_from_callback(
		    MHD_SIZE_UNKNOWN, GW_HTTP_BLOCK, gw_http_reader, r, NULL);
	}
	if (resp == NULL) {
		pthread_mutex_unlock(&r->mu);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", r->resp_ctype);
	MHD_add_response_header(resp, "x-request-id", r->id);
	if (r->up_request_id[0] != '\0')
		MHD_add_response_header(resp, "request-id", r->up_request_id);
	pthread_mutex_unlock(&r->mu);
	if (stream) {
		MHD_add_response_header(resp, "Cache-Control", "no-cache");
		MHD_add_response_header(resp, "X-Accel-Buffering", "no");
	}
	rv = MHD_queue_response(r->conn, status, resp);
	MHD_destroy_response(resp);
	return rv;
}

static const char *
gw_http_hdr_cb(void *arg, const char *name)
{
	return MHD_lookup_connection_value(arg, MHD_HEADER_KIND, name);
}

static const char *
gw_http_query_cb(void *arg, const char *name)
{
	return MHD_lookup_connection_value(arg, MHD_GET_ARGUMENT_KIND, name);
}

/*
 * Client headers the upstream request may carry (gw_anth_build_headers()
 * applies the exact whitelist), plus the Claude Code session header that
 * keys sticky sessions; keeping only these bounds the copy.
 */
static bool
gw_http_forwardable(const char *name)
{
	static const char *const prefixes[] = {"accept", "anthropic-",
	    "x-stainless-", "x-app", "user-agent", "content-type",
	    "sec-fetch-mode"};
	size_t                   i;

	for (i = 0; i < ARRAY_SIZE(prefixes); i++) {
		if (strncasecmp(name, prefixes[i], strlen(prefixes[i])) == 0)
			return true;
	}
	return false;
}

static enum MHD_Result
gw_http_collect_hdr(
    void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct gw_req *r = cls;

	(void)kind;
	if (value != NULL && gw_http_forwardable(key) &&
	    gw_anth_hdrs_add(&r->client_hdrs, key, value) != 0)
		log_debug("gw.header_dropped", LOG_STR("name", key));
	return MHD_YES;
}

static void
gw_http_peer(struct gw_req *r)
{
	const union MHD_ConnectionInfo *ci;
	const char                     *ua;

	ci = MHD_get_connection_info(
	    r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci != NULL && ci->client_addr != NULL) {
		const struct sockaddr *sa = ci->client_addr;

		if (sa->sa_family == AF_INET)
			inet_ntop(AF_INET,
			    &((const struct sockaddr_in *)(const void *)sa)
			         ->sin_addr,
			    r->client_ip, sizeof(r->client_ip));
		else if (sa->sa_family == AF_INET6)
			inet_ntop(AF_INET6,
			    &((const struct sockaddr_in6 *)(const void *)sa)
			         ->sin6_addr,
			    r->client_ip, sizeof(r->client_ip));
	}
	ci =
	    MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	r->fd = ci != NULL ? ci->connect_fd : -1;
	ua =
	    MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "user-agent");
	if (ua != NULL)
		snprintf(r->user_agent, sizeof(r->user_agent), "%s", ua);
}

/*
 * The body is complete: check what needs no scheduler, then suspend and
 * hand over to the I/O thread.  Returns an error code to answer with, or
 * GW_E_MAX_ when the request went to the I/O thread.
 */
static enum gw_err_code
gw_http_submit(struct gw *gw, struct gw_req *r)
{
	char key[GW_ERR_KEY_MAX + 1];
	int  rv;

	if (r->too_big)
		return GW_E_BODY_TOO_LARGE;
	rv = gw_err_extract_key(gw_http_hdr_cb, r->conn, gw_http_query_cb,
	    r->conn, key, sizeof(key), NULL);
	if (rv == -ERR_MISSING)
		return GW_E_API_KEY_REQUIRED;
	if (rv != 0)
		return GW_E_INVALID_API_KEY;
	crypto_sha256_hex(key, strlen(key), r->key_hash);
	OPENSSL_cleanse(key, sizeof(key));
	if (r->route == GW_RT_MESSAGES || r->route == GW_RT_COUNT_TOKENS) {
		rv = gw_anth_parse(r->body.data, r->body.len, &r->areq);
		if (rv == -ERR_MISSING)
			return GW_E_MODEL_REQUIRED;
		if (rv != 0)
			return GW_E_INVALID_JSON;
	}
	MHD_get_connection_values(
	    r->conn, MHD_HEADER_KIND, gw_http_collect_hdr, r);
	gw_http_peer(r);

	/*
	 * Post, then suspend, all under r->mu: every resume takes r->mu, so
	 * none can come before the suspend.
	 */
	pthread_mutex_lock(&r->mu);
	r->refs++; /* the I/O side's reference */
	r->io_active = true;
	if (!gw_io_post(gw, GW_M_START, r, 0, NULL, 0)) {
		r->refs--;
		r->io_active = false;
		pthread_mutex_unlock(&r->mu);
		return GW_E_NO_ACCOUNTS; /* shutting down */
	}
	gw_http_park(r);
	pthread_mutex_unlock(&r->mu);
	return GW_E_MAX_;
}

static enum gw_route
gw_http_route(const char *url, const char *method, bool *local_ok)
{
	*local_ok = false;
	if (strcmp(method, "POST") == 0) {
		if (strcmp(url, "/v1/messages") == 0)
			return GW_RT_MESSAGES;
		if (strcmp(url, "/v1/messages/count_tokens") == 0)
			return GW_RT_COUNT_TOKENS;
		if (strcmp(url, "/api/event_logging/batch") == 0)
			*local_ok = true;
		return GW_RT_NONE;
	}
	if (strcmp(method, "GET") == 0 && strcmp(url, "/v1/models") == 0)
		return GW_RT_MODELS;
	if (strcmp(method, "GET") == 0 && strcmp(url, "/v1/usage") == 0)
		return GW_RT_USAGE;
	if ((strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) &&
	    (strcmp(url, "/") == 0 || strcmp(url, "/health") == 0))
		*local_ok = true;
	return GW_RT_NONE;
}

static enum MHD_Result
gw_http_begin(struct gw *gw, struct MHD_Connection *c, const char *url,
    const char *method, void **con_cls)
{
	struct gw_req *r;
	const char    *cl;
	bool           local_ok;

	r = gw_req_new(gw, c);
	r->route = gw_http_route(url, method, &local_ok);
	r->local_ok = local_ok;
	*con_cls = r;
	met_counter_inc(gw->m_requests);
	cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "content-length");
	if (cl != NULL && r->route != GW_RT_NONE) {
		char              *end;
		unsigned long long n = strtoull(cl, &end, 10);

		if (*end != '\0' || n > (unsigned long long)gw->cfg->body_max) {
			r->answered = true;
			return gw_http_error(c, GW_E_BODY_TOO_LARGE);
		}
	}
	return MHD_YES;
}

static enum MHD_Result
gw_http_cb(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct gw       *gw = cls;
	struct gw_req   *r = *con_cls;
	enum gw_err_code code;

	(void)version;
	if (r == NULL)
		return gw_http_begin(gw, c, url, method, con_cls);
	gw_http_unpark(r);
	if (*upload_data_size != 0) {
		if (r->route != GW_RT_NONE && !r->too_big &&
		    buf_add(&r->body, upload_data, *upload_data_size) != 0)
			r->too_big = true;
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (r->answered)
		return MHD_YES;
	if (r->submitted) {
		/* Resumed by the I/O thread: the response is decided. */
		r->answered = true;
		return gw_http_respond(r);
	}
	r->submitted = true;
	if (r->route == GW_RT_NONE) {
		r->answered = true;
		if (r->local_ok)
			return gw_http_send(c, MHD_HTTP_OK, "application/json",
			    gw_http_ok, sizeof(gw_http_ok) - 1);
		return gw_http_error(c, GW_E_NOT_FOUND);
	}
	code = gw_http_submit(gw, r);
	if (code == GW_E_MAX_)
		return MHD_YES;
	r->answered = true;
	gw_relay_count_error(gw, r, code);
	return gw_http_error(c, code);
}

static void
gw_http_completed(void *cls, struct MHD_Connection *c, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct gw     *gw = cls;
	struct gw_req *r = *con_cls;
	bool           cancel;

	(void)c;
	if (r == NULL)
		return;
	*con_cls = NULL;
	gw_http_unpark(r);
	pthread_mutex_lock(&r->mu);
	if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
		r->client_gone = true;
	cancel = r->io_active && !r->out_done;
	if (cancel)
		r->refs++; /* the message's reference */
	pthread_mutex_unlock(&r->mu);
	if (cancel && !gw_io_post(gw, GW_M_CANCEL, r, 0, NULL, 0))
		gw_req_unref(r);
	gw_req_unref(r);
}

static int
gw_http_parse_addr(const char *addr, struct sockaddr_in *sa)
{
	char        host[64];
	const char *colon = strrchr(addr, ':');
	long        port;
	char       *end;

	if (colon == NULL || (size_t)(colon - addr) >= sizeof(host))
		return -ERR_INVAL;
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = '\0';
	port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || port < 0 || port > 65535)
		return -ERR_INVAL;
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
		return -ERR_INVAL;
	return 0;
}

int
gw_http_start(struct gw *gw)
{
	struct sockaddr_in sa;

	if (gw_http_parse_addr(gw->cfg->listen_addr, &sa) != 0)
		fatalx("gw.listen_addr_invalid",
		    LOG_STR("addr", gw->cfg->listen_addr),
		    LOG_MSG("an IPv4 host:port is required"));
	gw->front = MHD_start_daemon(MHD_USE_EPOLL_INTERNAL_THREAD |
	        MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO,
	    0, NULL, NULL, gw_http_cb, gw, MHD_OPTION_SOCK_ADDR, &sa,
	    MHD_OPTION_NOTIFY_COMPLETED, gw_http_completed, gw,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)gw->cfg->conn_limit,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)gw->cfg->client_timeout,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)gw->cfg->header_max,
	    MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, MHD_OPTION_END);
	if (gw->front == NULL)
		fatalx(
		    "gw.listen_failed", LOG_STR("addr", gw->cfg->listen_addr));
	log_info("gw.listening", LOG_STR("addr", gw->cfg->listen_addr));
	return 0;
}

void
gw_http_quiesce(struct gw *gw)
{
	if (gw->front != NULL)
		MHD_quiesce_daemon(gw->front);
}

void
gw_http_stop(struct gw *gw)
{
	struct timespec ts = {0, 5 * 1000 * 1000};
	int64_t         end = now_mono_ms() + GW_HTTP_UNPARK_WAIT_MS;

	if (gw->front == NULL)
		return;
	/*
	 * Every connection was resumed (gw_io_stop()); MHD takes them off
	 * its suspended list on its own thread, which must have happened
	 * before MHD_stop_daemon(), or MHD aborts the process.
	 */
	while (atomic_load(&gw->parked) > 0 && now_mono_ms() < end)
		nanosleep(&ts, NULL);
	if (atomic_load(&gw->parked) > 0) {
		/* Exiting anyway: leave MHD running rather than abort. */
		log_error("gw.front_stop_skipped",
		    LOG_I64("suspended", atomic_load(&gw->parked)));
		gw->front = NULL;
		return;
	}
	MHD_stop_daemon(gw->front);
	gw->front = NULL;
}
