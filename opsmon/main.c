/*
 * main.c: the opsmon process: configuration, the event subscription, the
 * snapshot publisher, then wait and drain.
 */
#include <string.h>

#include "err.h"
#include "log.h"
#include "ops.h"
#include "proto.h"
#include "sig.h"

CFG_DEFINE(ops_cfg, "opsmon", "OPSMON", OPS_CFG)

/* One usage event (alone or from a batch). */
static void
ops_usage_one(void *arg, const void *env, size_t len)
{
	struct ops *o = arg;

	(void)env;
	(void)len;
	met_counter_inc(o->usage_events);
}

static void
ops_event_cb(void *arg, const char *topic, const void *payload, size_t len)
{
	struct ops *o = arg;

	if (strcmp(topic, TOPIC_HEARTBEAT) == 0)
		(void)hb_rx_feed(&o->hb, payload, len);
	else if (strcmp(topic, TOPIC_USAGE) == 0)
		(void)proto_usage_each(payload, len, ops_usage_one, o);
	else if (strcmp(topic, TOPIC_ERROR) == 0)
		met_counter_inc(o->error_events);
}

static int
ops_check_alerter(void *arg, int timeout_ms, struct buf *detail)
{
	struct ops *o = arg;

	(void)timeout_ms;
	if (nngx_pub_npipes(o->pub) > 0)
		return 0;
	if (buf_addstr(detail, "alerter not connected") != 0)
		buf_reset(detail);
	return -ERR_UNAVAIL;
}

static void
ops_start(struct ops *o)
{
	const char *const topics[] = {
	    TOPIC_USAGE, TOPIC_ERROR, TOPIC_HEARTBEAT};
	const char *alerter[1] = {o->cfg->alerter_metrics_addr};
	int         rv;

	hb_rx_init(&o->hb, NULL);
	o->usage_events = svc_counter(
	    "sub2api_opsmon_usage_events_total", "Usage events received.");
	o->error_events = svc_counter(
	    "sub2api_opsmon_error_events_total", "Error events received.");
	o->snapshots_sent = svc_counter("sub2api_opsmon_snapshots_sent_total",
	    "Metric snapshots published to the alerter.");
	o->snapshots_dropped =
	    svc_counter("sub2api_opsmon_snapshots_dropped_total",
	        "Metric snapshots not published (no alerter or queue full).");
	rv = nngx_sub_new(o->cfg->events_addr, topics, ARRAY_SIZE(topics),
	    (size_t)o->cfg->recv_queue, ops_event_cb, o, &o->sub);
	if (rv != 0)
		fatalx("ops.listen_failed",
		    LOG_STR("addr", o->cfg->events_addr), LOG_ERR(rv));
	rv = nngx_pub_new(alerter, 1, &o->pub);
	if (rv != 0)
		fatalx("ops.pub_dial_failed", LOG_ERR(rv));
	rv =
	    http_add_check(o->svc.health, "alerter", ops_check_alerter, o, 100);
	if (rv != 0)
		fatalx("ops.check_failed", LOG_ERR(rv));
	rv = tick_start(&o->snap_tick, "snapshot", o->cfg->snapshot_interval,
	    ops_snapshot_cb, o);
	if (rv != 0)
		fatalx("ops.tick_failed", LOG_ERR(rv));
}

int
main(int argc, char **argv)
{
	struct ops o;

	sig_init();
	memset(&o, 0, sizeof(o));
	o.cfg = cfg_main(&ops_cfg_schema, argc, argv);
	svc_init(&o.svc, "opsmon", &SVC_OPTS(o.cfg));
	ops_start(&o);

	svc_serve(&o.svc);

	tick_stop(&o.snap_tick);
	nngx_sub_close(o.sub);
	nngx_sub_free(o.sub);
	/* The alerter check reads the PUB socket: stop the listener first. */
	svc_release(&o.svc);
	nngx_pub_close(o.pub);
	nngx_pub_free(o.pub);
	hb_rx_release(&o.hb);
	ops_cfg_free((struct ops_cfg *)o.cfg);
	return 0;
}
