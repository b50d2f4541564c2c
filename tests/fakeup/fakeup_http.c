/*
 * fakeup_http.c: the fake's HTTP face: MHD callbacks, routing, replies,
 * client liveness and the control API.
 *
 * A request is a struct fake_req, created on MHD's first access call
 * (headers read), fed its body on the next calls (capped at
 * FAKE_BODY_MAX; past it the reply is 413) and dispatched on the last.
 * The completed callback closes its record and frees it.
 *
 * Control API (JSON in and out; never recorded or counted):
 *   POST   /_fake/keys/<key>   {"mode":"<mode string>","count":N}
 *                              the next N requests of key use the mode
 *                              (-1, the default: until changed; 0: clear).
 *                              Mode "ok" forces a normal reply even when
 *                              the model names a failure.  Key "*" applies
 *                              to every key without a control of its own.
 *   GET    /_fake/keys/<key>   {"key","mode","count"}
 *   DELETE /_fake/keys/<key>   clears the control
 *   POST   /_fake/reset        forgets records, counters and controls
 *   GET    /_fake/requests?limit=N&key=K   the last N (default 100, at most
 *                              FAKE_RING_SIZE) records, oldest first
 *   GET    /_fake/stats        counters overall and per key
 */
#include <sys/socket.h>

#include <errno.h>
#include <poll.h>

#include "crypto.h"
#include "err.h"
#include "fakeup.h"
#include "log.h"

/*
 * A wait sleeps in poll() on the client socket, which returns at once on a
 * hang-up; the slice only bounds how late a wait notices fakeup stopping
 * (and a hang-up behind pipelined bytes).  Longer slices keep thousands of
 * held streams (the capacity bench) from waking 50 times a second each.
 */
#define FAKE_WAIT_SLICE_MS 250
#define FAKE_CTL_PREFIX    "/_fake/"

void
fake_new_id(const char *prefix, char out[FAKE_ID_LEN])
{
	char hex[25];

	if (crypto_random_hex(12, hex, sizeof(hex)) != 0)
		BUG("fakeup: no randomness");
	snprintf(out, FAKE_ID_LEN, "%s%s", prefix, hex);
}

/* Copies s into out (cap bytes), replacing non-printable ASCII by '?'. */
static void
fake_ascii(const char *s, char *out, size_t cap)
{
	size_t i;

	for (i = 0; s[i] != '\0' && i + 1 < cap; i++)
		out[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	out[i] = '\0';
}

/* A JSON string of s; bytes that are not UTF-8 become '?'. */
static json_t *
fake_json_str(const char *s)
{
	json_t *v = json_string(s);
	char   *tmp;

	if (v != NULL)
		return v;
	tmp = xmalloc(strlen(s) + 1);
	fake_ascii(s, tmp, strlen(s) + 1);
	v = json_string(tmp);
	free(tmp);
	return v;
}

/* True when the peer has hung up (FIN, RST) on fd. */
static bool
fake_peer_gone(int fd, int timeout_ms)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN | POLLRDHUP};
	char          c;
	ssize_t       n;

	if (fd < 0)
		return false;
	if (poll(&pfd, 1, timeout_ms) <= 0)
		return false;
	if (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL))
		return true;
	n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n == 0)
		return true;
	if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
		return true;
	/* Pipelined bytes: not a hang-up, but poll would spin on them. */
	if (timeout_ms > 0)
		(void)poll(NULL, 0, timeout_ms);
	return false;
}

int
fake_wait(struct fake_req *r, int64_t ms)
{
	int64_t end = now_mono_ms() + ms, left;

	do {
		if (fake_stopping())
			return -ERR_CANCELED;
		left = end - now_mono_ms();
		if (left > FAKE_WAIT_SLICE_MS)
			left = FAKE_WAIT_SLICE_MS;
		if (left < 0)
			left = 0;
		if (fake_peer_gone(r->fd, (int)left)) {
			if (!r->client_closed) {
				r->client_closed = true;
				r->closed_ms = now_wall_ms();
				log_debug("fakeup.client_closed",
				    LOG_STR("path", r->path));
			}
			return -ERR_CLOSED;
		}
	} while (now_mono_ms() < end);
	return 0;
}

enum MHD_Result
fake_reply_json(
    struct fake_req *r, int status, json_t *body, const char *const *hdrs)
{
	struct MHD_Response *resp;
	enum MHD_Result      ret;
	char                *text = NULL;
	size_t               i;

	if (body != NULL) {
		text = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
		json_decref(body);
		if (text == NULL)
			BUG("fakeup: cannot serialise a reply");
	}
	resp = MHD_create_response_from_buffer(
	    text != NULL ? strlen(text) : 0, text, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(text);
		return MHD_NO;
	}
	if (text != NULL)
		MHD_add_response_header(
		    resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	MHD_add_response_header(resp, "request-id", r->req_id);
	for (i = 0; hdrs != NULL && hdrs[i] != NULL; i += 2)
		MHD_add_response_header(resp, hdrs[i], hdrs[i + 1]);
	r->status = status;
	ret = MHD_queue_response(r->conn, (unsigned)status, resp);
	MHD_destroy_response(resp);
	return ret;
}

enum MHD_Result
fake_reply_error(
    struct fake_req *r, int status, const char *type, const char *msg)
{
	json_t *body;

	body = json_pack("{s:s, s:{s:s, s:s}}", "type", "error", "error",
	    "type", type, "message", msg);
	if (body == NULL)
		BUG("fakeup: cannot build an error");
	return fake_reply_json(r, status, body, NULL);
}

enum MHD_Result
fake_reply_fail(struct fake_req *r, const struct fake_mode *m)
{
	char        reset[24], after[24];
	int         secs = m->reset_s > 0 ? m->reset_s : 60;
	const char *hdrs[] = {"anthropic-ratelimit-unified-status", "rejected",
	    "anthropic-ratelimit-unified-reset", reset, "retry-after", after,
	    NULL};

	switch (m->fail) {
	case FAKE_FAIL_401:
		return fake_reply_error(
		    r, 401, "authentication_error", "invalid x-api-key");
	case FAKE_FAIL_403:
		return fake_reply_error(r, 403, "permission_error",
		    "Your API key does not have permission to use the specified resource.");
	case FAKE_FAIL_403_BANNED:
		return fake_reply_error(r, 403, "permission_error",
		    "This organization has been disabled.");
	case FAKE_FAIL_429:
		snprintf(reset, sizeof(reset), "%lld",
		    (long long)(now_wall_ms() / 1000 + secs));
		snprintf(after, sizeof(after), "%d", secs);
		/* Tests compare the account's rest with what was sent. */
		fake_log_set(
		    r, "reset", json_integer(strtoll(reset, NULL, 10)));
		return fake_reply_json(r, 429,
		    json_pack("{s:s, s:{s:s, s:s}}", "type", "error", "error",
		        "type", "rate_limit_error", "message",
		        "This request would exceed your account's rate limit. Please try again later."),
		    hdrs);
	case FAKE_FAIL_529:
		return fake_reply_error(
		    r, 529, "overloaded_error", "Overloaded");
	case FAKE_FAIL_500:
		return fake_reply_error(
		    r, 500, "api_error", "Internal server error");
	case FAKE_FAIL_INVALID_GRANT:
		return fake_reply_json(r, 400,
		    json_pack("{s:s, s:s}", "error", "invalid_grant",
		        "error_description",
		        "Refresh token not found or invalid"),
		    NULL);
	default:
		BUG("fake_reply_fail: mode %d is not a status", (int)m->fail);
	}
}

/* POST/GET/DELETE /_fake/keys/<key>. */
static enum MHD_Result
fake_ctl_key(struct fake_req *r, const char *key)
{
	struct fake_mode m = {0};
	json_t          *in, *jm, *jc;
	json_error_t     jerr;
	const char      *mode = "ok";
	int64_t          count = -1;

	if (key[0] == '\0' || strlen(key) > FAKE_KEY_MAX)
		return fake_reply_error(
		    r, 400, "invalid_request_error", "bad key");
	if (strcmp(r->method, "GET") == 0)
		return fake_reply_json(r, 200, fake_log_ctl_json(key), NULL);
	if (strcmp(r->method, "DELETE") == 0) {
		fake_log_set_ctl(key, "ok", 0);
		return fake_reply_json(r, 200, fake_log_ctl_json(key), NULL);
	}
	if (strcmp(r->method, "POST") != 0)
		return fake_reply_error(
		    r, 405, "invalid_request_error", "method not allowed");
	in = json_loadb(buf_str(&r->body), r->body.len, 0, &jerr);
	jm = json_object_get(in, "mode");
	jc = json_object_get(in, "count");
	if (!json_is_string(jm) || (jc != NULL && !json_is_integer(jc))) {
		json_decref(in);
		return fake_reply_error(r, 400, "invalid_request_error",
		    "want {\"mode\":\"...\",\"count\":N}");
	}
	mode = json_string_value(jm);
	if (jc != NULL)
		count = json_integer_value(jc);
	if (fake_mode_parse(mode, strlen(mode), &m) != 0 || count < -1) {
		json_decref(in);
		return fake_reply_error(
		    r, 400, "invalid_request_error", "bad mode or count");
	}
	fake_log_set_ctl(key, mode, count);
	log_info("fakeup.key_control", LOG_STR("mode", mode),
	    LOG_I64("count", count));
	json_decref(in); /* mode pointed into it */
	return fake_reply_json(r, 200, fake_log_ctl_json(key), NULL);
}

static enum MHD_Result
fake_ctl(struct fake_req *r)
{
	const char *what = r->path + strlen(FAKE_CTL_PREFIX);
	const char *arg;
	int64_t     limit = 100;

	if (strncmp(what, "keys/", 5) == 0)
		return fake_ctl_key(r, what + 5);
	if (strcmp(what, "reset") == 0 && strcmp(r->method, "POST") == 0) {
		fake_log_reset();
		return fake_reply_json(
		    r, 200, json_pack("{s:b}", "ok", true), NULL);
	}
	if (strcmp(what, "stats") == 0 && strcmp(r->method, "GET") == 0)
		return fake_reply_json(r, 200, fake_log_stats_json(), NULL);
	if (strcmp(what, "requests") == 0 && strcmp(r->method, "GET") == 0) {
		arg = MHD_lookup_connection_value(
		    r->conn, MHD_GET_ARGUMENT_KIND, "limit");
		if (arg != NULL)
			limit = strtoll(arg, NULL, 10);
		if (limit <= 0 || limit > FAKE_RING_SIZE)
			limit = FAKE_RING_SIZE;
		arg = MHD_lookup_connection_value(
		    r->conn, MHD_GET_ARGUMENT_KIND, "key");
		return fake_reply_json(
		    r, 200, fake_log_requests_json(limit, arg), NULL);
	}
	return fake_reply_error(r, 404, "not_found_error", "no such control");
}

static enum MHD_Result
fake_dispatch(struct fake_req *r)
{
	bool post = strcmp(r->method, "POST") == 0;

	if (strncmp(r->path, FAKE_CTL_PREFIX, strlen(FAKE_CTL_PREFIX)) == 0)
		return fake_ctl(r);
	fake_log_begin(r);
	if (r->toobig)
		return fake_reply_error(r, 413, "request_too_large",
		    "Request exceeds the maximum allowed number of bytes.");
	if (post && strcmp(r->path, "/v1/messages") == 0)
		return fake_anth_messages(r);
	if (post && strcmp(r->path, "/v1/messages/count_tokens") == 0)
		return fake_anth_count_tokens(r);
	if (post && strcmp(r->path, "/v1/oauth/token") == 0)
		return fake_anth_oauth(r);
	if (strcmp(r->method, "GET") == 0 && strcmp(r->path, "/v1/models") == 0)
		return fake_anth_models(r);
	if (strcmp(r->method, "HEAD") == 0)
		return fake_reply_json(r, 404, NULL, NULL);
	return fake_reply_error(r, 404, "not_found_error", "Not found");
}

static enum MHD_Result
fake_hdr_cb(
    void *cls, enum MHD_ValueKind kind, const char *name, const char *value)
{
	struct fake_req *r = cls;
	char             lname[256];
	json_t          *old;
	size_t           i;

	(void)kind;
	if (value == NULL)
		value = "";
	for (i = 0; name[i] != '\0' && i + 1 < sizeof(lname); i++)
		lname[i] = (char)(name[i] >= 'A' && name[i] <= 'Z'
		        ? name[i] + ('a' - 'A')
		        : name[i]);
	lname[i] = '\0';
	json_array_append_new(r->hlist,
	    json_pack("[o, o]", fake_json_str(name), fake_json_str(value)));
	old = json_object_get(r->hdrs, lname);
	if (old != NULL) {
		char *joined =
		    xmalloc(strlen(json_string_value(old)) + strlen(value) + 3);

		snprintf(joined,
		    strlen(json_string_value(old)) + strlen(value) + 3,
		    "%s, %s", json_string_value(old), value);
		json_object_set_new(r->hdrs, lname, fake_json_str(joined));
		free(joined);
	} else {
		json_object_set_new(r->hdrs, lname, fake_json_str(value));
	}
	return MHD_YES;
}

static enum MHD_Result
fake_arg_cb(
    void *cls, enum MHD_ValueKind kind, const char *name, const char *value)
{
	struct buf *q = cls;

	(void)kind;
	if (q->len > 0 && buf_addch(q, '&') != 0)
		return MHD_NO;
	if (buf_addstr(q, name) != 0)
		return MHD_NO;
	if (value != NULL &&
	    (buf_addch(q, '=') != 0 || buf_addstr(q, value) != 0))
		return MHD_NO;
	return MHD_YES;
}

/* Picks the key: x-api-key first, then authorization: Bearer. */
static void
fake_req_auth(struct fake_req *r)
{
	const char *v;

	r->auth = "none";
	v = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "x-api-key");
	if (v != NULL && v[0] != '\0') {
		r->auth = "x-api-key";
		fake_ascii(v, r->key, sizeof(r->key));
		return;
	}
	v = MHD_lookup_connection_value(
	    r->conn, MHD_HEADER_KIND, "authorization");
	if (v != NULL && strncasecmp(v, "Bearer ", 7) == 0 && v[7] != '\0') {
		r->auth = "bearer";
		fake_ascii(v + 7, r->key, sizeof(r->key));
	}
}

static struct fake_req *
fake_req_new(struct MHD_Connection *conn, const char *url, const char *method)
{
	struct fake_req                *r = xcalloc(1, sizeof(*r));
	const union MHD_ConnectionInfo *ci;
	struct buf                      q;

	r->conn = conn;
	r->method = xstrdup(method);
	r->path = xstrdup(url);
	fake_ascii(url, r->path, strlen(url) + 1);
	buf_init(&q, 64 << 10);
	(void)MHD_get_connection_values(
	    conn, MHD_GET_ARGUMENT_KIND, fake_arg_cb, &q);
	r->query = xstrdup(buf_str(&q));
	fake_ascii(r->query, r->query, strlen(r->query) + 1);
	buf_release(&q);
	r->hdrs = json_object();
	r->hlist = json_array();
	(void)MHD_get_connection_values(conn, MHD_HEADER_KIND, fake_hdr_cb, r);
	buf_init(&r->body, FAKE_BODY_MAX + 1);
	fake_req_auth(r);
	fake_new_id("req_", r->req_id);
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	r->fd = ci != NULL ? ci->connect_fd : -1;
	return r;
}

static void
fake_req_free(struct fake_req *r)
{
	if (r == NULL)
		return;
	fake_gen_free(r->gen);
	free(r->method);
	free(r->path);
	free(r->query);
	json_decref(r->hdrs);
	json_decref(r->hlist);
	buf_release(&r->body);
	free(r);
}

enum MHD_Result
fake_http_access_cb(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_len, void **con_cls)
{
	struct fake_req *r = *con_cls;

	(void)cls;
	(void)version;
	if (r == NULL) {
		*con_cls = fake_req_new(conn, url, method);
		return MHD_YES;
	}
	if (*upload_len > 0) {
		if (!r->toobig && buf_add(&r->body, upload, *upload_len) != 0)
			r->toobig = true; /* buf_add released the body */
		*upload_len = 0;
		return MHD_YES;
	}
	if (r->status != 0)
		return MHD_YES; /* already answered */
	return fake_dispatch(r);
}

void
fake_http_completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct fake_req *r = *con_cls;

	(void)cls;
	(void)conn;
	if (r == NULL)
		return;
	if (r->seq != 0)
		fake_log_end(r, toe);
	fake_req_free(r);
	*con_cls = NULL;
}
