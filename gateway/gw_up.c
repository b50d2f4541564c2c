/*
 * gw_up.c: the libcurl side of one upstream attempt (I/O thread only).
 *
 * gw_up_start() turns the scheduler's decision and the client's request
 * into a transfer: URL, headers (gw_anth_build_headers()), body (the
 * client's bytes unchanged unless the account needs a rewrite), proxy and
 * timeouts.  The header callback records what the account state machine
 * and the client need; the write callback either keeps a failed attempt's
 * body (bounded) for the failover decision, or relays: a stream line by
 * line as it arrives (usage and first token read on the way), a plain
 * answer whole once complete (usage read, model name rewritten back).
 * When the client reads slower than the upstream writes, the transfer is
 * paused at stream_buffer bytes and resumed as the client drains.
 */
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <strings.h>

#include "err.h"
#include "gw.h"
#include "gw_io.h"
#include "gw_relay.h"
#include "gw_upinfo.h"
#include "log.h"

#define GW_UP_ERRBODY_MAX (64 * 1024)
#define GW_UP_CRED_MAX    8192
#define GW_UP_RECV_BUF    8192L /* bytes per upstream read */

struct gw_up_cred {
	char type[32];
	char secret[GW_UP_CRED_MAX];
};

/* The credential the scheduler sent: {"type":..,"api_key"|"access_token"}. */
static int
gw_up_cred(const struct proto_sched_acquire_rep *d, struct gw_up_cred *c)
{
	json_t     *j;
	const char *s;
	int         rv = -ERR_INVAL;

	j = json_loadb((const char *)d->credential, d->credential_len, 0, NULL);
	if (j == NULL)
		return rv;
	s = json_string_value(json_object_get(j, "api_key"));
	if (s == NULL)
		s = json_string_value(json_object_get(j, "access_token"));
	if (s != NULL && strlen(s) < sizeof(c->secret)) {
		snprintf(c->secret, sizeof(c->secret), "%s", s);
		rv = 0;
	}
	json_decref(j);
	return rv;
}

static const char *
gw_up_client_hdr(void *arg, const char *name)
{
	return gw_anth_hdrs_get(arg, name);
}

static size_t
gw_up_header_cb(char *p, size_t size, size_t n, void *arg)
{
	struct gw_req *r = arg;
	size_t         len = size * n, vlen;
	const char    *colon, *v;
	char           name[64];

	r->up_last_ms = now_mono_ms();
	if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
		/* A new header block (after 100 Continue or a redirect). */
		const char *sp = memchr(p, ' ', len);

		r->up_status = sp != NULL ? (int)strtol(sp + 1, NULL, 10) : 0;
		r->up_headers_done = false;
		r->n_rl_hdrs = 0;
		return len;
	}
	if (len <= 2) {
		if (r->up_status >= 200) {
			r->up_headers_done = true;
			r->failing = r->up_status >= 400;
		}
		return len;
	}
	colon = memchr(p, ':', len);
	if (colon == NULL || (size_t)(colon - p) >= sizeof(name))
		return len;
	memcpy(name, p, (size_t)(colon - p));
	name[colon - p] = '\0';
	v = colon + 1;
	while (v < p + len && (*v == ' ' || *v == '\t'))
		v++;
	vlen = (size_t)(p + len - v);
	while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n'))
		vlen--;
	if (strcasecmp(name, "content-type") == 0)
		snprintf(
		    r->up_ctype, sizeof(r->up_ctype), "%.*s", (int)vlen, v);
	else if (strcasecmp(name, "request-id") == 0)
		snprintf(r->up_request_id, sizeof(r->up_request_id), "%.*s",
		    (int)vlen, v);
	else if (strcasecmp(name, "anthropic-ratelimit-unified-reset") == 0)
		r->reset_unix = strtoll(v, NULL, 10);
	else if (strcasecmp(name, "retry-after") == 0)
		r->retry_after_s = strtoll(v, NULL, 10);
	if (gw_upinfo_header_add(r->rl_hdrs, &r->n_rl_hdrs, name, v, vlen) != 0)
		log_debug("gw.upstream_header_dropped", LOG_REQ(r->id),
		    LOG_STR("name", name));
	return len;
}

/* One complete SSE line of a relayed stream (without its newline). */
static int
gw_up_on_line(void *arg, const struct gw_sse_line *ln)
{
	struct gw_req *r = arg;
	struct buf     rw;
	unsigned       ev;
	int            rv;

	ev = (unsigned)gw_sse_anth_line(&r->anth, ln);
	if ((ev & GW_SSE_EV_FIRST_TOKEN) && r->first_token_us == 0)
		r->first_token_us = now_mono_us();
	buf_init(&rw, r->gw->cfg->sse_line_max + 256);
	if (ln->kind == GW_SSE_DATA && (ev & GW_SSE_EV_START) &&
	    r->dec->upstream_model[0] != '\0' &&
	    strcmp(r->dec->upstream_model, r->areq.model) != 0 &&
	    buf_add(&rw, "data: ", 6) == 0 &&
	    gw_anth_rewrite_sse_data(
	        ln->value, ln->value_len, r->areq.model, &rw) == 0) {
		pthread_mutex_lock(&r->mu);
		rv = buf_add(&r->out, rw.data, rw.len);
	} else {
		pthread_mutex_lock(&r->mu);
		rv = buf_add(&r->out, ln->line, ln->len);
	}
	if (rv == 0)
		rv = buf_addch(&r->out, '\n');
	pthread_mutex_unlock(&r->mu);
	buf_release(&rw);
	return rv;
}

/* Commits the response head for a relayed stream (first good byte). */
static void
gw_up_commit_stream(struct gw_req *r)
{
	pthread_mutex_lock(&r->mu);
	if (!r->committed) {
		r->committed = true;
		r->resp_status = r->up_status;
		r->resp_stream = true;
		snprintf(r->resp_ctype, sizeof(r->resp_ctype), "%s",
		    r->up_ctype[0] ? r->up_ctype : "text/event-stream");
	}
	pthread_mutex_unlock(&r->mu);
	r->relayed = true;
	r->state = GW_R_STREAMING;
}

static size_t
gw_up_write_cb(char *p, size_t size, size_t n, void *arg)
{
	struct gw_req *r = arg;
	struct gw     *gw = r->gw;
	size_t         len = size * n;
	bool           full, first;

	r->up_last_ms = now_mono_ms();
	if (r->failing) {
		/* Kept for the decision and a 400 passthrough; bounded. */
		if (r->err_body.len + len <= GW_UP_ERRBODY_MAX &&
		    buf_add(&r->err_body, p, len) != 0)
			buf_reset(&r->err_body);
		return len;
	}
	if (!r->areq.stream || r->route == GW_RT_COUNT_TOKENS) {
		/* A plain answer is delivered whole, after usage and rewrite.
		 */
		if (buf_add(&r->up_acc, p, len) != 0) {
			snprintf(r->err_class, sizeof(r->err_class), "too_big");
			return CURL_WRITEFUNC_ERROR;
		}
		return len;
	}
	pthread_mutex_lock(&r->mu);
	full = r->out.len >= (size_t)gw->cfg->stream_buffer;
	if (full)
		r->paused = true;
	pthread_mutex_unlock(&r->mu);
	if (full)
		return CURL_WRITEFUNC_PAUSE;
	first = !r->relayed;
	gw_up_commit_stream(r);
	if (gw_sse_feed(&r->sse, p, len, gw_up_on_line, r) != 0) {
		snprintf(
		    r->err_class, sizeof(r->err_class), "sse_line_too_long");
		return CURL_WRITEFUNC_ERROR;
	}
	/* The head and first events at once; later ones with others. */
	if (first)
		gw_io_resume(r);
	else
		gw_io_resume_soon(gw, r);
	return len;
}

int
gw_up_start(
    struct gw *gw, struct gw_req *r, const struct proto_sched_acquire_rep *d)
{
	struct gw_anth_account acct;
	struct gw_anth_hdrs    hdrs;
	struct gw_up_cred      cred;
	struct buf             url, line;
	size_t                 i;
	int                    rv;

	memset(&acct, 0, sizeof(acct));
	memset(&hdrs, 0, sizeof(hdrs));
	rv = gw_up_cred(d, &cred);
	if (rv != 0) {
		log_warn("gw.credential_invalid", LOG_REQ(r->id),
		    LOG_I64("account", d->account_id));
		return rv;
	}
	acct.type = strcmp(d->account_type, "apikey") == 0 ? GW_ANTH_APIKEY
	    : strcmp(d->account_type, "setup-token") == 0  ? GW_ANTH_SETUP_TOKEN
	                                                   : GW_ANTH_OAUTH;
	acct.id = d->account_id;
	acct.upstream_model = d->upstream_model;
	acct.client_id = "";
	acct.account_uuid = "";
	acct.credential = cred.secret;
	acct.user_agent = "";

	/* Per-attempt state. */
	r->up_status = 0;
	r->up_ctype[0] = '\0';
	r->up_headers_done = false;
	r->failing = false;
	r->reset_unix = 0;
	r->retry_after_s = 0;
	r->n_rl_hdrs = 0;
	r->err_class[0] = '\0';
	buf_reset(&r->err_body);
	buf_reset(&r->up_acc);
	buf_reset(&r->up_body);
	gw_sse_release(&r->sse);
	gw_sse_init(&r->sse, (size_t)gw->cfg->sse_line_max);
	memset(&r->anth, 0, sizeof(r->anth));
	r->first_token_us = 0;
	r->up_start_ms = r->up_last_ms = now_mono_ms();

	rv = gw_anth_build_headers(
	    &r->areq, &acct, gw_up_client_hdr, &r->client_hdrs, &hdrs);
	if (rv == 0 && gw_anth_body_changes(&r->areq, &acct))
		rv = gw_anth_build_body(&r->areq, &acct, &r->up_body);
	OPENSSL_cleanse(cred.secret, sizeof(cred.secret));
	if (rv != 0) {
		gw_anth_hdrs_release(&hdrs);
		return rv;
	}
	buf_init(&line, 2 * GW_ANTH_HDR_VAL_MAX);
	for (i = 0; i < hdrs.n; i++) {
		buf_reset(&line);
		if (buf_addf(
		        &line, "%s: %s", hdrs.v[i].name, hdrs.v[i].value) == 0)
			r->up_hdrs = curl_slist_append(r->up_hdrs, line.data);
	}
	/* libcurl adds these unless told not to. */
	r->up_hdrs = curl_slist_append(r->up_hdrs, "Expect:");
	OPENSSL_cleanse(line.data, line.cap);
	buf_release(&line);
	gw_anth_hdrs_release(&hdrs);

	buf_init(&url, PROTO_URL_MAX + 64);
	rv = buf_addf(&url, "%s%s%s", d->base_url,
	    r->route == GW_RT_COUNT_TOKENS ? "/v1/messages/count_tokens"
	                                   : "/v1/messages",
	    acct.type == GW_ANTH_APIKEY ? "" : "?beta=true");
	if (rv != 0)
		return rv;

	r->easy = curl_easy_init();
	if (r->easy == NULL) {
		buf_release(&url);
		return -ERR_NOMEM;
	}
	curl_easy_setopt(r->easy, CURLOPT_URL, url.data);
	curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
	curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->up_hdrs);
	curl_easy_setopt(r->easy, CURLOPT_POST, 1L);
	if (r->up_body.len > 0) {
		curl_easy_setopt(r->easy, CURLOPT_POSTFIELDS, r->up_body.data);
		curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)r->up_body.len);
	} else {
		curl_easy_setopt(
		    r->easy, CURLOPT_POSTFIELDS, buf_str(&r->body));
		curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)r->body.len);
	}
	curl_easy_setopt(r->easy, CURLOPT_HEADERFUNCTION, gw_up_header_cb);
	curl_easy_setopt(r->easy, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, gw_up_write_cb);
	curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(
	    r->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)gw->cfg->connect_timeout);
	curl_easy_setopt(r->easy, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(r->easy, CURLOPT_TCP_NODELAY, 1L);
	/* Per-stream memory: SSE events are small (curl's default is 16k). */
	curl_easy_setopt(r->easy, CURLOPT_BUFFERSIZE, GW_UP_RECV_BUF);
	curl_easy_setopt(r->easy, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
	/*
	 * The account's proxy or none; never the environment's (an empty
	 * CURLOPT_PROXY disables http_proxy, NOPROXY "" disables no_proxy).
	 */
	curl_easy_setopt(r->easy, CURLOPT_PROXY, d->proxy_url);
	curl_easy_setopt(r->easy, CURLOPT_NOPROXY, "");
	buf_release(&url);
	r->state = GW_R_UPSTREAM;
	if (curl_multi_add_handle(gw->io.multi, r->easy) != CURLM_OK) {
		gw_up_stop(gw, r);
		return -ERR_CURL;
	}
	return 0;
}

void
gw_up_stop(struct gw *gw, struct gw_req *r)
{
	if (r->easy != NULL) {
		curl_multi_remove_handle(gw->io.multi, r->easy);
		curl_easy_cleanup(r->easy);
		r->easy = NULL;
	}
	curl_slist_free_all(r->up_hdrs);
	r->up_hdrs = NULL;
}

void
gw_up_finish_body(struct gw *gw, struct gw_req *r)
{
	struct buf rw;

	if (r->resp_stream) {
		/* A last line without its newline still goes out. */
		if (gw_sse_finish(&r->sse, gw_up_on_line, r) != 0)
			log_debug("gw.sse_tail_dropped", LOG_REQ(r->id));
		gw_usage_check(&r->anth.usage);
		return;
	}
	if (r->failing)
		return;
	if (gw_usage_from_json(
	        buf_str(&r->up_acc), r->up_acc.len, &r->anth.usage) != 0)
		log_debug("gw.usage_missing", LOG_REQ(r->id));
	buf_init(&rw, (size_t)gw->cfg->body_max);
	if (r->route == GW_RT_MESSAGES && r->dec->upstream_model[0] != '\0' &&
	    strcmp(r->dec->upstream_model, r->areq.model) != 0 &&
	    gw_anth_rewrite_resp_model(
	        buf_str(&r->up_acc), r->up_acc.len, r->areq.model, &rw) == 0) {
		buf_release(&r->up_acc);
		r->up_acc = rw;
	} else {
		buf_release(&rw);
	}
	pthread_mutex_lock(&r->mu);
	buf_release(&r->out);
	r->out = r->up_acc;
	buf_init(&r->up_acc, (size_t)r->gw->cfg->body_max);
	r->resp_status = r->up_status;
	snprintf(r->resp_ctype, sizeof(r->resp_ctype), "%s",
	    r->up_ctype[0] ? r->up_ctype : "application/json");
	r->committed = true;
	pthread_mutex_unlock(&r->mu);
}
