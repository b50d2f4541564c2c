/*
 * gw_relay.c: the relay state machine (see gw_relay.h).
 *
 * Everything here runs on the I/O thread, except gw_relay_acq_cb() and
 * gw_relay_noop_cb(), which nng calls on its own threads and which only
 * post a message back.  The I/O side's reference to a request is dropped
 * by gw_io_finish() exactly once, when the request is over on this side:
 * answered and its lease returned.
 */
#include "gw_relay.h"

#include <openssl/crypto.h>
#include <stdio.h>

#include "err.h"
#include "gw.h"
#include "gw_info.h"
#include "gw_io.h"
#include "gw_session.h"
#include "gw_upinfo.h"
#include "log.h"

#define GW_RELAY_ENV_MAX (64 * 1024)

static const char *
gw_relay_info_what(const struct gw_req *r)
{
	return r->route == GW_RT_MODELS ? "models" : "usage";
}

/* ---- answering ---------------------------------------------------- */

void
gw_req_fail_locked(
    struct gw_req *r, int status, const char *type, const char *message)
{
	if (r->committed)
		return;
	buf_reset(&r->out);
	if (gw_err_anthropic(&r->out, type, message) != 0)
		buf_reset(&r->out);
	r->resp_status = status;
	snprintf(r->resp_ctype, sizeof(r->resp_ctype), "application/json");
	r->resp_stream = false;
	r->committed = true;
	r->out_done = true;
}

/*
 * Answers with a table error, counts it and publishes an error event.  A
 * stream that already answered 200 (pings while it waited) gets the error
 * in-band instead.
 */
static void
gw_relay_fail(struct gw *gw, struct gw_req *r, enum gw_err_code code)
{
	const struct gw_err_info *e = gw_err_info(code);

	pthread_mutex_lock(&r->mu);
	if (r->committed && r->resp_stream && !r->out_done) {
		if (gw_err_sse_event(&r->out, e->type, e->message) != 0)
			buf_reset(&r->out);
		r->out_done = true;
	} else {
		gw_req_fail_locked(r, e->status, e->type, e->message);
	}
	pthread_mutex_unlock(&r->mu);
	gw_relay_count_error(gw, r, code);
	gw_io_resume(r);
}

void
gw_relay_count_error(struct gw *gw, struct gw_req *r, enum gw_err_code code)
{
	const struct gw_err_info *e = gw_err_info(code);
	const char               *labels[1] = {e->name};

	met_counter_inc(met_counter_get(gw->m_errors, labels));
	gw_events_error(gw, r, e->status, e->type, e->message);
}

/* ---- scheduler calls ---------------------------------------------- */

static void
gw_relay_acq_cb(void *arg, int rv, const void *rep, size_t len)
{
	struct gw_req *r = arg;

	/* Refused only after shutdown, which then frees r itself. */
	(void)gw_io_post(r->gw, GW_M_ACQUIRED, r, rv, rep, len);
}

static void
gw_relay_noop_cb(void *arg, int rv, const void *rep, size_t len)
{
	struct gw *gw = arg;

	(void)rep;
	(void)len;
	if (rv != 0)
		met_counter_inc(gw->m_release_failed);
}

static void
gw_relay_acquire(struct gw *gw, struct gw_req *r)
{
	struct proto_sched_acquire_req q;
	struct buf                     out;
	int64_t                        deadline;
	int                            rv;

	memset(&q, 0, sizeof(q));
	(void)str_copy(q.request_id, sizeof(q.request_id), r->id);
	(void)str_copy(q.key_hash, sizeof(q.key_hash), r->key_hash);
	snprintf(q.platform, sizeof(q.platform), "anthropic");
	(void)str_copy(q.model, sizeof(q.model), r->areq.model);
	(void)str_copy(q.session_hash, sizeof(q.session_hash), r->session);
	q.stream = r->areq.stream;
	(void)str_copy(q.client_ip, sizeof(q.client_ip), r->client_ip);
	(void)str_copy(q.user_agent, sizeof(q.user_agent), r->user_agent);
	q.n_excluded = r->n_excluded;
	memcpy(q.excluded, r->excluded, sizeof(q.excluded));
	/* count_tokens holds no slot: it never waits behind the user's own
	 * requests (nor for an account) and never takes room from them. */
	q.probe = r->route == GW_RT_COUNT_TOKENS;
	r->state = GW_R_SCHED;
	buf_init(&out, GW_RELAY_ENV_MAX);
	deadline = now_wall_ms() + gw->cfg->sched_timeout;
	rv = proto_sched_acquire_req_pack(&out, r->id, deadline, &q);
	if (rv == 0)
		rv = gw_bundle_call(
		    gw, out.data, out.len, r->id, deadline, gw_relay_acq_cb, r);
	buf_release(&out);
	if (rv != 0) {
		log_warn("gw.acquire_send_failed", LOG_REQ(r->id), LOG_ERR(rv));
		gw_relay_fail(gw, r, GW_E_INTERNAL);
		gw_io_finish(gw, r);
		return;
	}
	r->acq_inflight = true;
}

/*
 * Returns the lease with the attempt's outcome; fire and forget (a lost
 * release is reclaimed by the lease TTL).
 */
static void
gw_relay_release(
    struct gw *gw, struct gw_req *r, int status, const char *err_class)
{
	struct proto_sched_release_req q;
	struct buf                     out;

	if (r->dec == NULL || r->released)
		return;
	r->released = true;
	memset(&q, 0, sizeof(q));
	(void)str_copy(q.request_id, sizeof(q.request_id), r->id);
	(void)str_copy(q.lease_id, sizeof(q.lease_id), r->dec->lease_id);
	q.account_id = r->dec->account_id;
	q.http_status = status;
	(void)str_copy(
	    q.err_class, sizeof(q.err_class), err_class ? err_class : "");
	q.duration_ms = now_mono_ms() - r->up_start_ms;
	q.reset_unix = r->reset_unix;
	q.retry_after_s = r->retry_after_s;
	if (status > 0) {
		/* The headers belong to this attempt's answer only. */
		q.n_headers = r->n_rl_hdrs;
		memcpy(
		    q.headers, r->rl_hdrs, r->n_rl_hdrs * sizeof(q.headers[0]));
	}
	if (status >= 400 && r->err_body.len > 0 &&
	    gw_upinfo_error_message(buf_str(&r->err_body), r->err_body.len,
	        q.err_message, sizeof(q.err_message)) != 0)
		q.err_message[0] = '\0';
	buf_init(&out, GW_RELAY_ENV_MAX);
	if (proto_sched_release_req_pack(&out, r->id, 0, &q) == 0)
		gw_bundle_add(gw, out.data, out.len);
	else
		met_counter_inc(gw->m_release_failed);
	buf_release(&out);
}

void
gw_relay_unqueue(struct gw *gw, struct gw_req *r)
{
	struct proto_sched_release_req q;
	struct buf                     out;

	if (!r->queued)
		return;
	r->queued = false;
	memset(&q, 0, sizeof(q));
	(void)str_copy(q.request_id, sizeof(q.request_id), r->id);
	q.wait_cancel = true;
	buf_init(&out, GW_RELAY_ENV_MAX);
	if (proto_sched_release_req_pack(&out, r->id, 0, &q) == 0)
		gw_bundle_add(gw, out.data, out.len);
	else
		met_counter_inc(gw->m_release_failed);
	buf_release(&out);
}

void
gw_relay_renew(struct gw *gw)
{
	struct gw_io                *io = &gw->io;
	struct proto_sched_renew_req q;
	struct buf                   out;
	size_t                       k;

	memset(&q, 0, sizeof(q));
	for (k = 0; k <= io->n_live; k++) {
		struct gw_req *r = k < io->n_live ? io->live[k] : NULL;

		if (r != NULL && r->dec != NULL && !r->released)
			snprintf(q.leases[q.n_leases++], sizeof(q.leases[0]),
			    "%s", r->dec->lease_id);
		if (q.n_leases == 0 ||
		    (q.n_leases < PROTO_LEASES_MAX && r != NULL))
			continue;
		buf_init(&out, GW_RELAY_ENV_MAX);
		if (proto_sched_renew_req_pack(&out, NULL, 0, &q) != 0 ||
		    nngx_req_call_async(gw->sched, out.data, out.len,
		        (int)gw->cfg->sched_timeout, gw_relay_noop_cb, gw) != 0)
			met_counter_inc(gw->m_release_failed);
		buf_release(&out);
		q.n_leases = 0;
	}
}

/* ---- the state machine -------------------------------------------- */

/* GET /v1/models and /v1/usage: one SCHED_KEYINFO round trip. */
static void
gw_relay_info(struct gw *gw, struct gw_req *r)
{
	struct buf out;
	int        rv;

	r->state = GW_R_SCHED;
	buf_init(&out, GW_RELAY_ENV_MAX);
	rv = gw_info_pack(&out, r->id, now_wall_ms() + gw->cfg->sched_timeout,
	    r->key_hash, gw_relay_info_what(r));
	if (rv == 0)
		rv = nngx_req_call_async(gw->sched, out.data, out.len,
		    (int)gw->cfg->sched_timeout, gw_relay_acq_cb, r);
	buf_release(&out);
	if (rv != 0) {
		gw_relay_fail(gw, r, GW_E_INTERNAL);
		gw_io_finish(gw, r);
		return;
	}
	r->acq_inflight = true;
}

static void
gw_relay_info_done(
    struct gw *gw, struct gw_req *r, int rv, const void *rep, size_t len)
{
	int status = 500;

	pthread_mutex_lock(&r->mu);
	buf_reset(&r->out);
	if (gw_info_answer(
	        rv, rep, len, gw_relay_info_what(r), &status, &r->out) != 0) {
		pthread_mutex_unlock(&r->mu);
		gw_relay_fail(gw, r, GW_E_INTERNAL);
		gw_io_finish(gw, r);
		return;
	}
	r->resp_status = status;
	(void)str_copy(
	    r->resp_ctype, sizeof(r->resp_ctype), "application/json");
	r->committed = true;
	r->out_done = true;
	pthread_mutex_unlock(&r->mu);
	if (status >= 400) {
		const char *labels[1] = {"keyinfo_refused"};

		met_counter_inc(met_counter_get(gw->m_errors, labels));
	}
	gw_io_resume(r);
	gw_io_finish(gw, r);
}

void
gw_relay_start(struct gw *gw, struct gw_req *r)
{
	if (r->route == GW_RT_MODELS || r->route == GW_RT_USAGE) {
		gw_relay_info(gw, r);
		return;
	}
	/* The sticky-session key, once; failover attempts keep it. */
	if (gw_session_hash(&r->areq,
	        gw_anth_hdrs_get(&r->client_hdrs, "x-claude-code-session-id"),
	        r->session) != 0)
		r->session[0] = '\0';
	gw_relay_acquire(gw, r);
}

/*
 * A full slot: wait and ask again, with back-off from 100 ms growing 1.5x
 * to 2 s, jittered by +-20 %, until wait_timeout.  Returns false when the
 * wait is over (or waiting is off): the caller then refuses with 429.
 */
static bool
gw_relay_wait(struct gw *gw, struct gw_req *r)
{
	int64_t  now = now_mono_ms(), jitter;
	uint64_t x;

	if (gw->cfg->wait_timeout == 0)
		return false;
	if (r->wait_end_ms == 0) {
		r->wait_end_ms = now + gw->cfg->wait_timeout;
		r->backoff_ms = 100;
		r->next_ping_ms = now + gw->cfg->wait_ping_interval;
		met_counter_inc(gw->m_waits);
	}
	if (now >= r->wait_end_ms)
		return false;
	x = (uint64_t)now_mono_us() ^ (uint64_t)(uintptr_t)r;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	jitter = r->backoff_ms / 5;
	r->retry_at_ms = now + r->backoff_ms - jitter +
	    (int64_t)(x % (uint64_t)(2 * jitter + 1));
	if (r->retry_at_ms > r->wait_end_ms)
		r->retry_at_ms = r->wait_end_ms;
	r->backoff_ms = r->backoff_ms * 3 / 2;
	if (r->backoff_ms > 2000)
		r->backoff_ms = 2000;
	r->waiting = true;
	return true;
}

/*
 * A waiting stream request gets SSE pings, as Anthropic sends them, so
 * clients and proxies keep the connection; the first one commits 200.
 */
static void
gw_relay_ping(struct gw *gw, struct gw_req *r, int64_t now_ms)
{
	static const char ping[] =
	    "event: ping\ndata: {\"type\": \"ping\"}\n\n";

	if (!r->areq.stream || now_ms < r->next_ping_ms)
		return;
	r->next_ping_ms = now_ms + gw->cfg->wait_ping_interval;
	pthread_mutex_lock(&r->mu);
	if (!r->committed) {
		r->committed = true;
		r->resp_status = 200;
		r->resp_stream = true;
		(void)str_copy(
		    r->resp_ctype, sizeof(r->resp_ctype), "text/event-stream");
	}
	r->pinged = true;
	if (buf_add(&r->out, ping, sizeof(ping) - 1) != 0)
		buf_reset(&r->out);
	pthread_mutex_unlock(&r->mu);
	gw_io_resume(r);
}

/* The client-facing error for a refused acquire. */
static enum gw_err_code
gw_relay_refusal(
    const struct gw_req *r, const struct proto_sched_acquire_rep *d)
{
	/* After failovers the last upstream failure says more. */
	if (d->outcome == PROTO_ACQ_NO_ACCOUNT && r->switches > 0)
		return r->last_err;
	return gw_err_from_refusal(d->outcome, d->err_message);
}

/* Copies what the request keeps of decision d into k. */
static void
gw_relay_keep(struct gw_dec *k, const struct proto_sched_acquire_rep *d)
{
	memset(k, 0, sizeof(*k));
	k->outcome = d->outcome;
	k->user_id = d->user_id;
	k->api_key_id = d->api_key_id;
	k->group_id = d->group_id;
	k->account_id = d->account_id;
	k->subscription_id = d->subscription_id;
	(void)str_copy(k->platform, sizeof(k->platform), d->platform);
	(void)str_copy(
	    k->upstream_model, sizeof(k->upstream_model), d->upstream_model);
	(void)str_copy(k->lease_id, sizeof(k->lease_id), d->lease_id);
}

void
gw_relay_acquired(
    struct gw *gw, struct gw_req *r, int rv, const void *rep, size_t len)
{
	struct proto_sched_acquire_rep *d;
	struct proto_env                env;

	r->acq_inflight = false;
	if (r->route == GW_RT_MODELS || r->route == GW_RT_USAGE) {
		if (r->cancelled)
			gw_io_finish(gw, r);
		else
			gw_relay_info_done(gw, r, rv, rep, len);
		return;
	}
	d = xmalloc(sizeof(*d));
	if (rv == 0)
		rv = proto_env_unpack(rep, len, &env);
	if (rv == 0)
		rv = proto_sched_acquire_rep_unpack(&env, d);
	if (rv != 0) {
		free(d);
		log_warn("gw.acquire_failed", LOG_REQ(r->id), LOG_ERR(rv));
		if (!r->cancelled)
			gw_relay_fail(gw, r, GW_E_NO_ACCOUNTS);
		gw_io_finish(gw, r);
		return;
	}
	if (r->dec == NULL)
		r->dec = xmalloc(sizeof(*r->dec));
	gw_relay_keep(r->dec, d);
	/* No lease to return: a refusal, or a probe (count_tokens). */
	r->released = d->outcome != PROTO_ACQ_OK || d->lease_id[0] == '\0';
	/* BUSY registered r as waiting; a success took it out again. */
	if (d->outcome == PROTO_ACQ_BUSY)
		r->queued = true;
	else if (d->outcome == PROTO_ACQ_OK)
		r->queued = false;
	if (r->cancelled) {
		gw_relay_release(gw, r, 0, "client_closed");
		gw_io_finish(gw, r);
	} else if (d->outcome == PROTO_ACQ_BUSY && !d->fail_fast &&
	    gw_relay_wait(gw, r)) {
		/* asks again when its back-off ends */
	} else if (d->outcome != PROTO_ACQ_OK) {
		gw_relay_fail(gw, r, gw_relay_refusal(r, d));
		gw_io_finish(gw, r);
	} else if (gw_up_start(gw, r, d) != 0) {
		gw_relay_release(gw, r, 0, "gateway_error");
		gw_relay_fail(gw, r, GW_E_INTERNAL);
		gw_io_finish(gw, r);
	}
	OPENSSL_cleanse(d, sizeof(*d)); /* the credential and proxy URL */
	free(d);
}

/* Whether another account may be tried for this failed attempt. */
static bool
gw_relay_can_switch(struct gw *gw, struct gw_req *r)
{
	return r->switches < gw->cfg->max_switches &&
	    r->n_excluded < PROTO_EXCLUDED_MAX;
}

/* The client-facing error for a failed attempt that is not retried. */
static enum gw_err_code
gw_relay_attempt_error(struct gw_req *r, CURLcode rc)
{
	enum gw_err_code code;

	if (rc == CURLE_OPERATION_TIMEDOUT)
		return GW_E_UPSTREAM_TIMEOUT;
	if (r->up_status == 0)
		return GW_E_UPSTREAM_UNAVAILABLE;
	if (gw_err_map_upstream(r->up_status, &code))
		return GW_E_MAX_; /* pass the upstream body through */
	return code;
}

void
gw_relay_done(struct gw *gw, struct gw_req *r, CURLcode rc)
{
	bool             committed, stream;
	enum gw_err_code code;
	const char      *eclass;

	gw_up_stop(gw, r);
	pthread_mutex_lock(&r->mu);
	committed = r->committed;
	stream = r->resp_stream;
	pthread_mutex_unlock(&r->mu);

	/* Pings while waiting committed a 200 but sent no upstream byte. */
	if ((!committed || !r->relayed) && (r->failing || rc != CURLE_OK)) {
		/* This attempt failed before any byte went to the client. */
		code = gw_relay_attempt_error(r, rc);
		eclass = r->err_class[0] ? r->err_class
		    : rc != CURLE_OK     ? "network"
		                         : "http";
		gw_relay_release(gw, r, r->up_status, eclass);
		met_counter_inc(gw->m_failovers);
		if (code != GW_E_MAX_ && gw_relay_can_switch(gw, r) &&
		    (rc != CURLE_OK || gw_err_is_failover(r->up_status))) {
			r->excluded[r->n_excluded++] = r->dec->account_id;
			r->switches++;
			r->last_err = code;
			log_info("gw.failover", LOG_REQ(r->id),
			    LOG_I64("account", r->dec->account_id),
			    LOG_I64("status", r->up_status),
			    LOG_STR("class", eclass));
			gw_relay_acquire(gw, r);
			return;
		}
		if (code == GW_E_MAX_ && r->pinged) {
			gw_relay_fail(gw, r, GW_E_BAD_REQUEST);
		} else if (code == GW_E_MAX_) {
			/* 400 and the like: the client's own mistake, verbatim.
			 */
			pthread_mutex_lock(&r->mu);
			buf_reset(&r->out);
			if (buf_add(&r->out, buf_str(&r->err_body),
			        r->err_body.len) != 0)
				buf_reset(&r->out);
			r->resp_status = r->up_status;
			(void)str_copy(r->resp_ctype, sizeof(r->resp_ctype),
			    r->up_ctype[0] ? r->up_ctype : "application/json");
			r->committed = true;
			r->out_done = true;
			pthread_mutex_unlock(&r->mu);
			gw_events_error(gw, r, r->up_status,
			    gw_err_type_for_status(r->up_status),
			    "upstream rejected the request");
			gw_io_resume(r);
		} else {
			gw_relay_fail(gw, r, code);
		}
		gw_io_finish(gw, r);
		return;
	}

	/* The answer reached (or is reaching) the client. */
	if (rc != CURLE_OK && stream) {
		pthread_mutex_lock(&r->mu);
		if (gw_err_sse_event(&r->out, "api_error",
		        "Upstream stream ended unexpectedly") != 0)
			buf_reset(&r->out);
		pthread_mutex_unlock(&r->mu);
		met_counter_inc(gw->m_stream_errors);
	}
	gw_up_finish_body(gw, r);
	/*
	 * Spool the usage event before the client can see the end of the
	 * answer: a gateway killed after that still owes billing the event.
	 */
	gw_events_usage(gw, r, rc == CURLE_OK ? r->up_status : 502);
	pthread_mutex_lock(&r->mu);
	r->out_done = true;
	pthread_mutex_unlock(&r->mu);
	/* The client first: the release is off the answer's critical path. */
	gw_io_resume(r);
	gw_relay_release(
	    gw, r, r->up_status, rc == CURLE_OK ? "" : "stream_error");
	gw_io_finish(gw, r);
}

void
gw_relay_cancel(struct gw *gw, struct gw_req *r, const char *why)
{
	bool had_upstream = r->easy != NULL;

	if (r->acq_inflight) {
		r->cancelled = true; /* finished when the reply comes */
		return;
	}
	gw_up_stop(gw, r);
	gw_relay_release(gw, r, 499, why);
	if (had_upstream && r->dec != NULL)
		gw_events_usage(gw, r, 499);
	pthread_mutex_lock(&r->mu);
	r->client_gone = true;
	r->out_done = true;
	if (!r->committed)
		gw_req_fail_locked(r, 499, "api_error", "Request cancelled");
	pthread_mutex_unlock(&r->mu);
	met_counter_inc(gw->m_cancelled);
	gw_io_resume(r);
	gw_io_finish(gw, r);
}

void
gw_relay_tick(struct gw *gw, struct gw_req *r, int64_t now_ms)
{
	bool paused;

	if (r->waiting) {
		gw_relay_ping(gw, r, now_ms);
		if (now_ms >= r->retry_at_ms) {
			r->waiting = false;
			gw_relay_acquire(gw, r);
		}
		return;
	}
	if (r->easy == NULL)
		return;
	if (!r->up_headers_done &&
	    now_ms - r->up_start_ms > gw->cfg->first_byte_timeout) {
		snprintf(
		    r->err_class, sizeof(r->err_class), "first_byte_timeout");
		gw_relay_done(gw, r, CURLE_OPERATION_TIMEDOUT);
		return;
	}
	/* Runs for every held stream each tick: the lock only when idle. */
	if (!r->up_headers_done ||
	    now_ms - r->up_last_ms <= gw->cfg->idle_timeout)
		return;
	pthread_mutex_lock(&r->mu);
	paused = r->paused;
	pthread_mutex_unlock(&r->mu);
	if (!paused) {
		snprintf(r->err_class, sizeof(r->err_class), "idle_timeout");
		gw_relay_done(gw, r, CURLE_OPERATION_TIMEDOUT);
	}
}
