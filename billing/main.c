/*
 * main.c: the billing process: configuration, pools, the event
 * subscription, then wait and drain.
 */
#include <string.h>

#include "bill.h"
#include "err.h"
#include "log.h"
#include "proto.h"
#include "sig.h"
#include "svc_deps.h"

CFG_DEFINE(bill_cfg, "billing", "BILLING", BILL_CFG)

/* A usage event envelope, from the SUB path or the gateways' sync. */
static int
bill_usage_cb(void *arg, const void *payload, size_t len)
{
	struct bill *b = arg;

	(void)payload;
	(void)len;
	met_counter_inc(b->usage_events);
	return 0;
}

/* One switch over topics; runs on the subscriber's nng thread. */
static void
bill_event_cb(void *arg, const char *topic, const void *payload, size_t len)
{
	struct bill *b = arg;

	if (strcmp(topic, TOPIC_HEARTBEAT) == 0)
		(void)hb_rx_feed(&b->hb, payload, len);
	else if (strcmp(topic, TOPIC_USAGE) == 0)
		(void)bill_usage_cb(b, payload, len);
	else
		met_counter_inc(b->other_events);
}

static void
bill_start(struct bill *b)
{
	const char *const topics[] = {TOPIC_USAGE, TOPIC_HEARTBEAT};
	int               rv;

	hb_rx_init(&b->hb, NULL);
	b->usage_events = svc_counter(
	    "sub2api_billing_usage_events_total", "Usage events received.");
	b->other_events = svc_counter("sub2api_billing_other_events_total",
	    "Events on topics billing does not handle.");
	svc_deps_open(&b->svc, b->cfg->database_url, (int)b->cfg->db_pool,
	    &b->pg, b->cfg->redis_url, (int)b->cfg->redis_pool, &b->rds,
	    (int)b->cfg->dep_timeout);
	rv = nngx_sub_new(b->cfg->events_addr, topics, ARRAY_SIZE(topics),
	    (size_t)b->cfg->recv_queue, bill_event_cb, b, &b->sub);
	if (rv != 0)
		fatalx("bill.listen_failed",
		    LOG_STR("addr", b->cfg->events_addr), LOG_ERR(rv));
	rv = bill_sync_new(b->cfg->sync_addr, bill_usage_cb, b,
	    bill_sync_committed_pg, b->pg, &b->sync);
	if (rv != 0)
		fatalx("bill.sync_listen_failed",
		    LOG_STR("addr", b->cfg->sync_addr), LOG_ERR(rv));
}

int
main(int argc, char **argv)
{
	struct bill b;

	sig_init();
	memset(&b, 0, sizeof(b));
	b.cfg = cfg_main(&bill_cfg_schema, argc, argv);
	svc_init(&b.svc, "billing", &SVC_OPTS(b.cfg));
	bill_start(&b);

	svc_serve(&b.svc);

	bill_sync_free(b.sync);
	nngx_sub_close(b.sub);
	nngx_sub_free(b.sub);
	/* The health listener's checks use the pools: stop it first. */
	svc_release(&b.svc);
	svc_deps_close(b.pg, b.rds);
	hb_rx_release(&b.hb);
	bill_cfg_free((struct bill_cfg *)b.cfg);
	return 0;
}
