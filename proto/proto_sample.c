/*
 * proto_sample.c: sample values for every message; see proto_sample.h.
 */
#include "proto_sample.h"

#include <stdio.h>

/* Writes "<stem>-<seed>" into a char array member. */
#define PROTO_SAMPLE_STR(dst, stem, seed) \
	snprintf((dst), sizeof(dst), "%s-%u", (stem), (seed))

static const char proto_sample_utf8[] = "caf\xc3\xa9 \xe6\xbc\xa2\xe5\xad\x97";

static void
proto_sample_sched(int type, void *msg, unsigned s)
{
	struct proto_sched_acquire_req *aq = msg;
	struct proto_sched_acquire_rep *ap = msg;
	struct proto_sched_renew_req   *nq = msg;
	struct proto_sched_renew_rep   *np = msg;
	struct proto_sched_release_req *lq = msg;
	struct proto_sched_release_rep *lp = msg;
	struct proto_sched_keyinfo_req *kq = msg;
	struct proto_sched_keyinfo_rep *kp = msg;
	struct proto_sched_bundle_req  *bq = msg;
	static const char env_bytes[] = "\x84\xa1t\x0e opaque envelope bytes";
	unsigned          i;

	switch (type) {
	case MSG_SCHED_ACQUIRE_REQ:
		PROTO_SAMPLE_STR(aq->request_id, "req", s);
		for (i = 0; i < 64; i++)
			aq->key_hash[i] = "0123456789abcdef"[(i * 7 + s) % 16];
		PROTO_SAMPLE_STR(aq->platform, "anthropic", s);
		PROTO_SAMPLE_STR(aq->model, "claude-sonnet-4", s);
		PROTO_SAMPLE_STR(aq->session_hash, "sess", s);
		aq->stream = (s & 1) == 0;
		PROTO_SAMPLE_STR(aq->client_ip, "2001:db8::1", s);
		PROTO_SAMPLE_STR(aq->user_agent, proto_sample_utf8, s);
		aq->n_excluded = 3 + s % 20;
		for (i = 0; i < aq->n_excluded; i++)
			aq->excluded[i] = (int64_t)i * 1000003 - 5 + s;
		aq->wait_ms = 30000 + s;
		aq->probe = s % 3 == 0;
		break;
	case MSG_SCHED_ACQUIRE_REP:
		ap->outcome = (int32_t)(s % 7);
		PROTO_SAMPLE_STR(ap->err_type, "rate_limit_error", s);
		PROTO_SAMPLE_STR(ap->err_message, proto_sample_utf8, s);
		ap->user_id = 42 + s;
		ap->api_key_id = INT64_MAX - s;
		ap->group_id = -7;
		ap->account_id = (int64_t)1 << 40;
		PROTO_SAMPLE_STR(ap->platform, "openai", s);
		PROTO_SAMPLE_STR(ap->account_type, "oauth", s);
		PROTO_SAMPLE_STR(ap->base_url, "https://api.example.com", s);
		PROTO_SAMPLE_STR(ap->upstream_model, "gpt-5", s);
		ap->credential_len = 300 + s;
		for (i = 0; i < ap->credential_len; i++)
			ap->credential[i] = (uint8_t)(i * 31 + s);
		PROTO_SAMPLE_STR(ap->proxy_url, "socks5://127.0.0.1:1080", s);
		PROTO_SAMPLE_STR(ap->lease_id, "lease", s);
		ap->lease_ttl_ms = 60000;
		ap->rate_micro = 1500000 + s;
		ap->billing_type = 1;
		ap->subscription_id = 99 + s;
		ap->fail_fast = (s % 2) == 0;
		break;
	case MSG_SCHED_RENEW_REQ:
		nq->n_leases = 1 + s % PROTO_LEASES_MAX;
		for (i = 0; i < nq->n_leases; i++)
			PROTO_SAMPLE_STR(nq->leases[i], "lease", s + i);
		break;
	case MSG_SCHED_RENEW_REP:
		np->n_renewed = 2;
		PROTO_SAMPLE_STR(np->renewed[0], "lease", s);
		PROTO_SAMPLE_STR(np->renewed[1], "lease", s + 1);
		np->n_lost = 1;
		PROTO_SAMPLE_STR(np->lost[0], "gone", s);
		np->ttl_ms = 45000 + s;
		break;
	case MSG_SCHED_RELEASE_REQ:
		PROTO_SAMPLE_STR(lq->request_id, "req", s);
		PROTO_SAMPLE_STR(lq->lease_id, "lease", s);
		lq->account_id = 77 + s;
		lq->http_status = 429;
		PROTO_SAMPLE_STR(lq->err_class, "rate_limited", s);
		lq->duration_ms = 1234 + s;
		lq->reset_unix = 1790000000 + s;
		lq->retry_after_s = -1;
		lq->wait_cancel = (s & 1) == 1;
		lq->n_headers = 1 + s % PROTO_HEADERS_MAX;
		for (i = 0; i < lq->n_headers; i++) {
			PROTO_SAMPLE_STR(lq->headers[i].name, "x-ratelimit", i);
			PROTO_SAMPLE_STR(
			    lq->headers[i].value, "v", s * 100 + i);
		}
		PROTO_SAMPLE_STR(lq->err_message, proto_sample_utf8, s);
		break;
	case MSG_SCHED_RELEASE_REP:
		lp->released = (s & 1) == 0;
		PROTO_SAMPLE_STR(lp->state, "limited", s % 100);
		break;
	case MSG_SCHED_KEYINFO_REQ:
		PROTO_SAMPLE_STR(kq->request_id, "req", s);
		for (i = 0; i < 64; i++)
			kq->key_hash[i] = "0123456789abcdef"[(i * 5 + s) % 16];
		snprintf(kq->what, sizeof(kq->what), "%s",
		    (s & 1) == 0 ? "models" : "usage");
		break;
	case MSG_SCHED_BUNDLE_REQ:
		bq->n_msgs = 1 + s % PROTO_BUNDLE_MAX;
		for (i = 0; i < bq->n_msgs; i++) {
			bq->msgs[i].ptr = (const uint8_t *)env_bytes;
			bq->msgs[i].len =
			    1 + (i * 7 + s) % (sizeof(env_bytes) - 1);
		}
		break;
	case MSG_SCHED_KEYINFO_REP:
		kp->outcome = (int32_t)(s % 7);
		PROTO_SAMPLE_STR(kp->err_type, "permission_error", s);
		PROTO_SAMPLE_STR(kp->err_message, proto_sample_utf8, s);
		PROTO_SAMPLE_STR(kp->platform, "anthropic", s);
		kp->n_models = 1 + (s * 41) % PROTO_MODELS_MAX;
		for (i = 0; i < kp->n_models; i++)
			PROTO_SAMPLE_STR(kp->models[i], "claude-sonnet", s + i);
		PROTO_SAMPLE_STR(kp->plan_name, proto_sample_utf8, s);
		snprintf(kp->balance, sizeof(kp->balance), "%u.%010u", 12 + s,
		    s * 37);
		kp->billing_type = (int32_t)(s & 1);
		snprintf(kp->remaining, sizeof(kp->remaining), "%s",
		    s % 3 == 0       ? "-1"
		        : s % 3 == 1 ? "0"
		                     : "123456789012345.5000000001");
		break;
	}
}

static void
proto_sample_events(int type, void *msg, unsigned s)
{
	struct proto_usage_evt            *u = msg;
	struct proto_error_evt            *e = msg;
	struct proto_metrics_snapshot_evt *m = msg;
	struct proto_config_changed_evt   *c = msg;
	struct proto_status_heartbeat_evt *h = msg;
	unsigned                           i;

	switch (type) {
	case MSG_USAGE_BATCH_EVT: {
		struct proto_usage_batch_evt *ub = msg;
		static const char             ev_bytes[] =
		    "\x84\xa1t\x14 usage event envelope";

		ub->n_evts = 1 + s % PROTO_BATCH_MAX;
		for (i = 0; i < ub->n_evts; i++) {
			ub->evts[i].ptr = (const uint8_t *)ev_bytes;
			ub->evts[i].len =
			    1 + (i * 5 + s) % (sizeof(ev_bytes) - 1);
		}
		break;
	}
	case MSG_USAGE_EVT:
		PROTO_SAMPLE_STR(u->instance, "gw-a", s);
		u->seq = UINT64_MAX - s;
		PROTO_SAMPLE_STR(u->request_id, "req", s);
		u->user_id = 1 + s;
		u->api_key_id = 2 + s;
		u->group_id = 3 + s;
		u->account_id = 4 + s;
		u->subscription_id = -1;
		PROTO_SAMPLE_STR(u->model, "claude-opus-4", s);
		PROTO_SAMPLE_STR(u->upstream_model, "claude-opus-4-1", s);
		PROTO_SAMPLE_STR(u->platform, "anthropic", s);
		u->input_tokens = 123456 + s;
		u->output_tokens = 789 + s;
		u->cache_creation_tokens = 1000;
		u->cache_read_tokens = 2000;
		u->cache_creation_5m_tokens = 600;
		u->cache_creation_1h_tokens = 400;
		u->stream = (s & 1) == 1;
		u->duration_ms = 4567;
		u->first_token_ms = 321;
		u->status = 200;
		PROTO_SAMPLE_STR(u->client_ip, "203.0.113.9", s);
		PROTO_SAMPLE_STR(u->user_agent, proto_sample_utf8, s);
		u->created_at_ms = 1764160000000 + s;
		break;
	case MSG_ERROR_EVT:
		PROTO_SAMPLE_STR(e->instance, "gw-b", s);
		e->seq = (uint64_t)1 << 63;
		PROTO_SAMPLE_STR(e->request_id, "req", s);
		e->user_id = 10 + s;
		e->api_key_id = 20;
		e->group_id = 30;
		e->account_id = -40;
		PROTO_SAMPLE_STR(e->platform, "gemini", s);
		PROTO_SAMPLE_STR(e->model, "gemini-2.5-pro", s);
		PROTO_SAMPLE_STR(e->path, "/v1/messages", s);
		e->status = 502;
		PROTO_SAMPLE_STR(e->phase, "upstream", s);
		PROTO_SAMPLE_STR(e->type, "upstream_error", s);
		PROTO_SAMPLE_STR(e->severity, "P1", s % 10);
		PROTO_SAMPLE_STR(e->message, proto_sample_utf8, s);
		e->stream = true;
		e->duration_ms = 30001;
		e->created_at_ms = 1764160000123 + s;
		break;
	case MSG_METRICS_SNAPSHOT_EVT:
		PROTO_SAMPLE_STR(m->source, "opsmon", s);
		PROTO_SAMPLE_STR(m->instance, "ops-1", s);
		m->window_s = 60;
		m->ts_ms = 1764160000999 + s;
		m->n_samples = 1 + (s * 37) % PROTO_SAMPLES_MAX;
		for (i = 0; i < m->n_samples; i++) {
			PROTO_SAMPLE_STR(m->samples[i].name, "req_total", i);
			PROTO_SAMPLE_STR(m->samples[i].labels,
			    "platform=\"openai\",n", s + i);
			m->samples[i].value = (double)i * 0.25 - 3.5 + s;
		}
		break;
	case MSG_CONFIG_CHANGED_EVT:
		PROTO_SAMPLE_STR(c->kind, "account", s);
		c->entity_id = 5000 + s;
		c->version = (uint64_t)1 << 33;
		break;
	case MSG_STATUS_HEARTBEAT_EVT:
		PROTO_SAMPLE_STR(h->service, "scheduler", s);
		PROTO_SAMPLE_STR(h->instance, "sched-2", s);
		h->seq = 88 + s;
		h->started_at_ms = 1764150000000;
		h->sent_at_ms = 1764160000000 + s;
		snprintf(h->state, sizeof(h->state), "%s",
		    s % 3 == 0       ? "starting"
		        : s % 3 == 1 ? "serving"
		                     : "draining");
		h->inflight = UINT32_MAX - s;
		break;
	}
}

static void
proto_sample_misc(int type, void *msg, unsigned s)
{
	static const char            blob_a[] = "\x81\xa3seq\x01";
	static const char            blob_b[] = "opaque spool entry";
	struct proto_ping_req       *pq = msg;
	struct proto_ping_rep       *pp = msg;
	struct proto_error_rep      *er = msg;
	struct proto_replay_req     *rq = msg;
	struct proto_replay_rep     *rp = msg;
	struct proto_usage_sync_req *sq = msg;
	struct proto_usage_sync_rep *sp = msg;
	unsigned                     i;

	switch (type) {
	case MSG_PING_REQ:
		PROTO_SAMPLE_STR(pq->service, "gateway", s);
		pq->sent_at_ms = 1764160000000 + s;
		break;
	case MSG_PING_REP:
		PROTO_SAMPLE_STR(pp->service, "billing", s);
		PROTO_SAMPLE_STR(pp->instance, "bill-1", s);
		pp->sent_at_ms = 1764160000000 + s;
		pp->now_ms = 1764160000005 + s;
		break;
	case MSG_ERROR_REP:
		er->code = 4 + (int32_t)(s % 20);
		PROTO_SAMPLE_STR(er->message, proto_sample_utf8, s);
		break;
	case MSG_REPLAY_REQ:
		PROTO_SAMPLE_STR(rq->instance, "gw-a", s);
		rq->from_seq = 1000 + s;
		rq->to_seq = 5000 + s;
		rq->max_count = PROTO_BLOBS_MAX;
		break;
	case MSG_REPLAY_REP:
		PROTO_SAMPLE_STR(rp->instance, "gw-a", s);
		rp->n_blobs = 1 + s % 40;
		for (i = 0; i < rp->n_blobs; i++) {
			const char *b = (i & 1) ? blob_b : blob_a;

			rp->blobs[i].ptr = (const uint8_t *)b;
			rp->blobs[i].len = (i & 1) ? sizeof(blob_b) - 1 - i % 5
			                           : sizeof(blob_a) - 1;
		}
		rp->high_seq = 9999 + s;
		rp->complete = (s & 1) == 0;
		break;
	case MSG_USAGE_SYNC_REQ:
		PROTO_SAMPLE_STR(sq->instance, "gateway-h-42-0a0b0c0d", s);
		/* Seed 0 is a plain poll: no events. */
		sq->n_blobs = s % 7;
		sq->n_lost = 2 * (s % 3);
		for (i = 0; i < sq->n_lost; i += 2) {
			sq->lost[i] = 1000 * (int64_t)(i + 1) + s;
			sq->lost[i + 1] = sq->lost[i] + (int64_t)(s % 5);
		}
		for (i = 0; i < sq->n_blobs; i++) {
			const char *b = (i & 1) ? blob_b : blob_a;

			sq->blobs[i].ptr = (const uint8_t *)b;
			sq->blobs[i].len = (i & 1) ? sizeof(blob_b) - 1 - i % 5
			                           : sizeof(blob_a) - 1;
		}
		break;
	case MSG_USAGE_SYNC_REP:
		PROTO_SAMPLE_STR(sp->instance, "gateway-h-42-0a0b0c0d", s);
		sp->committed_seq = s == 0 ? 0 : UINT64_MAX - s;
		break;
	}
}

bool
proto_sample_fill(int type, void *msg, unsigned seed)
{
	if (!proto_msg_known(type))
		return false;
	memset(msg, 0, proto_msg_size(type));
	proto_sample_sched(type, msg, seed);
	proto_sample_events(type, msg, seed);
	proto_sample_misc(type, msg, seed);
	return true;
}

struct proto_blob *
proto_sample_blobs(int type, void *msg, uint32_t *n)
{
	switch (type) {
	case MSG_REPLAY_REP:
		*n = ((struct proto_replay_rep *)msg)->n_blobs;
		return ((struct proto_replay_rep *)msg)->blobs;
	case MSG_USAGE_SYNC_REQ:
		*n = ((struct proto_usage_sync_req *)msg)->n_blobs;
		return ((struct proto_usage_sync_req *)msg)->blobs;
	case MSG_SCHED_BUNDLE_REQ:
		*n = ((struct proto_sched_bundle_req *)msg)->n_msgs;
		return ((struct proto_sched_bundle_req *)msg)->msgs;
	case MSG_USAGE_BATCH_EVT:
		*n = ((struct proto_usage_batch_evt *)msg)->n_evts;
		return ((struct proto_usage_batch_evt *)msg)->evts;
	default:
		*n = 0;
		return NULL;
	}
}

bool
proto_sample_same(int type, const void *a, const void *b)
{
	size_t             size = proto_msg_size(type);
	char              *x = xmemdup(a, size), *y = xmemdup(b, size);
	struct proto_blob *xb, *yb;
	uint32_t           nx, ny, i;
	bool               same;

	xb = proto_sample_blobs(type, x, &nx);
	yb = proto_sample_blobs(type, y, &ny);
	same = nx == ny;
	for (i = 0; same && i < nx; i++) {
		same = xb[i].len == yb[i].len &&
		    (xb[i].len == 0 ||
		        memcmp(xb[i].ptr, yb[i].ptr, xb[i].len) == 0);
		xb[i].ptr = yb[i].ptr = NULL;
	}
	same = same && memcmp(x, y, size) == 0;
	free(x);
	free(y);
	return same;
}
