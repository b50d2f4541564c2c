/*
 * proto_events.c: field tables of the published events: usage, error,
 * metrics snapshots, configuration changes and service heartbeats.
 *
 * Events carry (instance, seq) so that a collector can tell a gap from a
 * repeat (DESIGN.md section 4); all their keys are required except where
 * marked, since a producer always knows them.
 */
#include "err.h"
#include "proto_int.h"

#define T struct proto_usage_evt
static const struct proto_field proto_usage_evt_fields[] = {
    PROTO_F_STR(T, "inst", instance, 0),
    PROTO_F_SCALAR(T, "seq", PROTO_K_U64, seq, 0),
    PROTO_F_STR(T, "rid", request_id, 0),
    PROTO_F_SCALAR(T, "uid", PROTO_K_I64, user_id, 0),
    PROTO_F_SCALAR(T, "kid", PROTO_K_I64, api_key_id, 0),
    PROTO_F_SCALAR(T, "gid", PROTO_K_I64, group_id, 0),
    PROTO_F_SCALAR(T, "aid", PROTO_K_I64, account_id, 0),
    PROTO_F_SCALAR(T, "sid", PROTO_K_I64, subscription_id, PROTO_OPT),
    PROTO_F_STR(T, "model", model, 0),
    PROTO_F_STR(T, "umodel", upstream_model, 0),
    PROTO_F_STR(T, "plat", platform, 0),
    PROTO_F_SCALAR(T, "in", PROTO_K_I64, input_tokens, 0),
    PROTO_F_SCALAR(T, "out", PROTO_K_I64, output_tokens, 0),
    PROTO_F_SCALAR(T, "cc", PROTO_K_I64, cache_creation_tokens, 0),
    PROTO_F_SCALAR(T, "cr", PROTO_K_I64, cache_read_tokens, 0),
    PROTO_F_SCALAR(T, "cc5m", PROTO_K_I64, cache_creation_5m_tokens, 0),
    PROTO_F_SCALAR(T, "cc1h", PROTO_K_I64, cache_creation_1h_tokens, 0),
    PROTO_F_SCALAR(T, "stream", PROTO_K_BOOL, stream, 0),
    PROTO_F_SCALAR(T, "dur", PROTO_K_I64, duration_ms, 0),
    PROTO_F_SCALAR(T, "ttft", PROTO_K_I64, first_token_ms, 0),
    PROTO_F_SCALAR(T, "status", PROTO_K_I32, status, 0),
    PROTO_F_STR(T, "ip", client_ip, 0),
    PROTO_F_STR(T, "ua", user_agent, PROTO_OPT),
    PROTO_F_SCALAR(T, "ts", PROTO_K_I64, created_at_ms, 0),
};
#undef T
PROTO_DESC(usage_evt, proto_usage_evt_fields, NULL);

static int
proto_events_check_usage_batch(const void *msg)
{
	const struct proto_usage_batch_evt *m = msg;

	return m->n_evts >= 1 ? 0 : -ERR_PROTO;
}

#define T struct proto_usage_batch_evt
static const struct proto_field proto_usage_batch_evt_fields[] = {
    PROTO_F_ARR(T, "evts", PROTO_K_BLOBS, evts, n_evts, 0),
};
#undef T
PROTO_DESC(usage_batch_evt, proto_usage_batch_evt_fields,
    proto_events_check_usage_batch);

int
proto_usage_each(const void *data, size_t                     len,
    void (*fn)(void *arg, const void *env, size_t len), void *arg)
{
	struct proto_usage_batch_evt *b;
	struct proto_env              env;
	uint32_t                      i;
	int                           rv;

	if (proto_env_unpack(data, len, &env) != 0 ||
	    env.type != MSG_USAGE_BATCH_EVT) {
		fn(arg, data, len);
		return 1;
	}
	b = xmalloc(sizeof(*b));
	rv = proto_usage_batch_evt_unpack(&env, b);
	if (rv == 0) {
		for (i = 0; i < b->n_evts; i++)
			fn(arg, b->evts[i].ptr, b->evts[i].len);
		rv = (int)b->n_evts;
	}
	free(b);
	return rv;
}

#define T struct proto_error_evt
static const struct proto_field proto_error_evt_fields[] = {
    PROTO_F_STR(T, "inst", instance, 0),
    PROTO_F_SCALAR(T, "seq", PROTO_K_U64, seq, 0),
    PROTO_F_STR(T, "rid", request_id, 0),
    PROTO_F_SCALAR(T, "uid", PROTO_K_I64, user_id, 0),
    PROTO_F_SCALAR(T, "kid", PROTO_K_I64, api_key_id, 0),
    PROTO_F_SCALAR(T, "gid", PROTO_K_I64, group_id, 0),
    PROTO_F_SCALAR(T, "aid", PROTO_K_I64, account_id, 0),
    PROTO_F_STR(T, "plat", platform, 0),
    PROTO_F_STR(T, "model", model, 0),
    PROTO_F_STR(T, "path", path, 0),
    PROTO_F_SCALAR(T, "status", PROTO_K_I32, status, 0),
    PROTO_F_STR(T, "phase", phase, 0),
    PROTO_F_STR(T, "type", type, 0),
    PROTO_F_STR(T, "sev", severity, 0),
    PROTO_F_STR(T, "msg", message, 0),
    PROTO_F_SCALAR(T, "stream", PROTO_K_BOOL, stream, 0),
    PROTO_F_SCALAR(T, "dur", PROTO_K_I64, duration_ms, 0),
    PROTO_F_SCALAR(T, "ts", PROTO_K_I64, created_at_ms, 0),
};
#undef T
PROTO_DESC(error_evt, proto_error_evt_fields, NULL);

#define T struct proto_metrics_snapshot_evt
static const struct proto_field proto_metrics_snapshot_evt_fields[] = {
    PROTO_F_STR(T, "src", source, 0),
    PROTO_F_STR(T, "inst", instance, 0),
    PROTO_F_SCALAR(T, "win", PROTO_K_U32, window_s, 0),
    PROTO_F_SCALAR(T, "ts", PROTO_K_I64, ts_ms, 0),
    PROTO_F_ARR(T, "s", PROTO_K_SAMPLES, samples, n_samples, 0),
};
#undef T
PROTO_DESC(metrics_snapshot_evt, proto_metrics_snapshot_evt_fields, NULL);

#define T struct proto_config_changed_evt
static const struct proto_field proto_config_changed_evt_fields[] = {
    PROTO_F_STR(T, "kind", kind, 0),
    PROTO_F_SCALAR(T, "eid", PROTO_K_I64, entity_id, 0),
    PROTO_F_SCALAR(T, "ver", PROTO_K_U64, version, 0),
};
#undef T
PROTO_DESC(config_changed_evt, proto_config_changed_evt_fields, NULL);

/* The lifecycle states a heartbeat may report. */
static int
proto_events_check_heartbeat(const void *msg)
{
	const struct proto_status_heartbeat_evt *m = msg;

	if (strcmp(m->state, "starting") != 0 &&
	    strcmp(m->state, "serving") != 0 &&
	    strcmp(m->state, "draining") != 0)
		return -ERR_PROTO;
	return 0;
}

#define T struct proto_status_heartbeat_evt
static const struct proto_field proto_status_heartbeat_evt_fields[] = {
    PROTO_F_STR(T, "svc", service, 0),
    PROTO_F_STR(T, "inst", instance, 0),
    PROTO_F_SCALAR(T, "seq", PROTO_K_U64, seq, 0),
    PROTO_F_SCALAR(T, "start", PROTO_K_I64, started_at_ms, 0),
    PROTO_F_SCALAR(T, "ts", PROTO_K_I64, sent_at_ms, 0),
    PROTO_F_STR(T, "state", state, 0),
    PROTO_F_SCALAR(T, "infl", PROTO_K_U32, inflight, 0),
};
#undef T
PROTO_DESC(status_heartbeat_evt, proto_status_heartbeat_evt_fields,
    proto_events_check_heartbeat);
