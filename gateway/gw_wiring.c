/*
 * gw_wiring.c: the gateway's links to the other services.
 *
 * Two periodic jobs prove and watch the wiring:
 *  - ping: a PING_REQ over the REQ socket to the scheduler; a good reply
 *    records the time, which /readyz compares against three intervals;
 *  - heartbeat: a numbered STATUS_HEARTBEAT_EVT published to every
 *    collector; a full queue drops the message, and the drop is counted
 *    (the collectors then see the gap in the numbering).
 */
#include <stdio.h>

#include "err.h"
#include "gw.h"
#include "hb.h"
#include "log.h"
#include "proto.h"

#define GW_ENV_MAX (64 * 1024)

static const double gw_ping_bounds[] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1};

static void
gw_ping_cb(void *arg)
{
	struct gw            *gw = arg;
	struct proto_ping_req req;
	struct proto_ping_rep rep;
	struct proto_env      env;
	struct buf            out, in;
	int64_t               t0 = now_mono_us();
	int                   rv;

	memset(&req, 0, sizeof(req));
	snprintf(req.service, sizeof(req.service), "gateway");
	req.sent_at_ms = now_wall_ms();
	buf_init(&out, GW_ENV_MAX);
	buf_init(&in, GW_ENV_MAX);
	rv = proto_ping_req_pack(
	    &out, NULL, now_wall_ms() + gw->cfg->sched_timeout, &req);
	if (rv == 0)
		rv = nngx_req_call(gw->sched, out.data, out.len,
		    (int)gw->cfg->sched_timeout, &in);
	if (rv == 0)
		rv = proto_env_unpack(in.data, in.len, &env);
	if (rv == 0)
		rv = proto_ping_rep_unpack(&env, &rep);
	if (rv == 0) {
		atomic_store(&gw->ping_ok_ms, now_mono_ms());
		met_counter_inc(gw->ping_ok);
		met_histogram_observe(
		    gw->ping_seconds, (double)(now_mono_us() - t0) / 1e6);
	} else {
		met_counter_inc(gw->ping_fail);
		log_debug("gw.sched_ping_failed", LOG_ERR(rv));
	}
	buf_release(&out);
	buf_release(&in);
}

static void
gw_hb_cb(void *arg)
{
	static const char *const states[] = {"starting", "serving", "draining"};
	struct gw               *gw = arg;
	struct buf               out;
	int                      rv;

	buf_init(&out, GW_ENV_MAX);
	gw->hb_seq++;
	rv = hb_pack(&out, "gateway", gw->run_instance, gw->hb_seq,
	    gw->svc.started_ms, states[atomic_load(&gw->state)], 0);
	if (rv == 0)
		rv = nngx_pub_send(gw->pub, TOPIC_HEARTBEAT, out.data, out.len);
	if (rv == 0)
		met_counter_inc(gw->hb_sent);
	else
		met_counter_inc(gw->hb_dropped);
	met_gauge_set(gw->pub_peers, nngx_pub_npipes(gw->pub));
	buf_release(&out);
}

/* Ready while the last good ping is younger than three intervals. */
static int
gw_check_sched(void *arg, int timeout_ms, struct buf *detail)
{
	struct gw *gw = arg;
	long long  last = atomic_load(&gw->ping_ok_ms);
	int64_t    age = now_mono_ms() - last;

	(void)timeout_ms;
	if (last == 0 || age > 3 * gw->cfg->sched_ping_interval + 1000) {
		if (buf_addf(detail, "no scheduler reply for %lld ms",
		        last == 0 ? -1LL : (long long)age) != 0)
			buf_reset(detail);
		return -ERR_UNAVAIL;
	}
	return 0;
}

int
gw_wiring_start(struct gw *gw)
{
	const char *sched[1] = {gw->cfg->sched_addr};
	const char *collectors[2] = {
	    gw->cfg->billing_events_addr, gw->cfg->opsmon_events_addr};
	int rv;

	gw->ping_ok = svc_counter("sub2api_gateway_sched_pings_ok_total",
	    "Scheduler pings answered.");
	gw->ping_fail = svc_counter("sub2api_gateway_sched_pings_failed_total",
	    "Scheduler pings that failed or timed out.");
	gw->ping_seconds = met_histogram_new(metrics_default(),
	    "sub2api_gateway_sched_ping_seconds",
	    "Scheduler ping round trip in seconds.", gw_ping_bounds,
	    ARRAY_SIZE(gw_ping_bounds));
	gw->hb_sent = svc_counter(
	    "sub2api_heartbeats_sent_total", "Status heartbeats published.");
	gw->hb_dropped = svc_counter("sub2api_heartbeats_dropped_total",
	    "Status heartbeats not published (queue full or no collector).");
	gw->pub_peers = svc_gauge("sub2api_gateway_collectors_connected",
	    "Collectors connected to the PUB socket.");
	ASSERT(gw->ping_seconds != NULL);

	rv = nngx_req_new(sched, 1, &gw->sched);
	if (rv != 0)
		fatalx("gw.sched_dial_failed", LOG_STR("addr", sched[0]),
		    LOG_ERR(rv));
	rv = nngx_pub_new(collectors, 2, &gw->pub);
	if (rv != 0)
		fatalx("gw.pub_dial_failed", LOG_ERR(rv));
	rv = nngx_pub_set_sendbuf(gw->pub, (int)gw->cfg->pub_queue);
	if (rv != 0)
		fatalx("gw.pub_sendbuf_failed", LOG_ERR(rv));
	rv = http_add_check(gw->svc.health, "scheduler", gw_check_sched, gw,
	    (int)gw->cfg->sched_timeout);
	if (rv != 0)
		return rv;
	rv = tick_start(&gw->ping_tick, "sched_ping",
	    gw->cfg->sched_ping_interval, gw_ping_cb, gw);
	if (rv != 0)
		return rv;
	return tick_start(&gw->hb_tick, "heartbeat",
	    gw->cfg->heartbeat_interval, gw_hb_cb, gw);
}

void
gw_wiring_stop(struct gw *gw)
{
	tick_stop(&gw->hb_tick);
	tick_stop(&gw->ping_tick);
	if (gw->pub != NULL) {
		nngx_pub_close(gw->pub);
		nngx_pub_free(gw->pub);
		gw->pub = NULL;
	}
	if (gw->sched != NULL) {
		nngx_req_close(gw->sched);
		nngx_req_free(gw->sched);
		gw->sched = NULL;
	}
}

void
gw_metrics_init(struct gw *gw)
{
	static const char *const code[] = {"code"};

	gw->m_requests = svc_counter(
	    "sub2api_gateway_requests_total", "Client requests received.");
	gw->m_errors = svc_family(MET_COUNTER, "sub2api_gateway_errors_total",
	    "Requests answered with an error, by error code.", code, 1, NULL,
	    0);
	gw->m_failovers = svc_counter("sub2api_gateway_failed_attempts_total",
	    "Upstream attempts that failed before output started.");
	gw->m_waits = svc_counter("sub2api_gateway_slot_waits_total",
	    "Requests that waited for a free concurrency slot.");
	gw->m_cancelled = svc_counter("sub2api_gateway_cancelled_total",
	    "Requests whose client went away before the upstream finished.");
	gw->m_stream_errors = svc_counter("sub2api_gateway_stream_errors_total",
	    "Streams cut by the upstream after output started.");
	gw->m_release_failed =
	    svc_counter("sub2api_gateway_sched_calls_failed_total",
	        "Release or renew calls to the scheduler that failed to send.");
	gw->m_usage_sent = svc_counter(
	    "sub2api_gateway_usage_events_total", "Usage events published.");
	gw->m_usage_dropped =
	    svc_counter("sub2api_gateway_events_dropped_total",
	        "Usage or error events that could not be published.");
	gw->m_usage_batches = svc_counter("sub2api_gateway_usage_batches_total",
	    "Usage publications that carried several events.");
	gw->m_bundles = svc_counter("sub2api_gateway_release_bundles_total",
	    "Scheduler messages that carried held releases.");
}
