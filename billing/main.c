/*
 * main.c: the billing process: configuration, pools, the event
 * subscription, then wait and drain.
 */
#include <string.h>

#include "bill.h"
#include "err.h"
#include "http.h"
#include "log.h"
#include "proto.h"
#include "sig.h"
#include "svc_deps.h"

CFG_DEFINE(bill_cfg, "billing", "BILLING", BILL_CFG)

/*
 * A usage event envelope, from the SUB path or the gateways' sync: onto
 * the writer's queue.  A full queue refuses (counted): a SUB delivery is
 * then lost here but stays in the gateway's spool, and a sync request
 * fails as a whole, so the gateway resends it later.
 */
static int
bill_usage_cb(void *arg, const void *payload, size_t len)
{
	struct bill    *b = arg;
	struct bill_ev *e;
	int             rv;

	met_counter_inc(b->usage_events);
	rv = bill_ev_decode(payload, len, &e);
	if (rv != 0) {
		met_counter_inc(b->bad_events);
		log_warn("bill.bad_usage_event", LOG_U64("bytes", len));
		return 0; /* never valid: resending would not help */
	}
	rv = bill_writer_push(b->writer, e);
	if (rv != 0)
		bill_ev_free(e);
	return rv;
}

/* One event of a SUB delivery (alone or from a batch). */
static void
bill_usage_one(void *arg, const void *env, size_t len)
{
	(void)bill_usage_cb(arg, env, len);
}

/* Seqs a gateway declares lost: to the writer, ahead of its queue. */
static int
bill_lost_cb(void *arg, const char *instance, uint64_t from, uint64_t to)
{
	struct bill *b = arg;

	return bill_writer_lost(b->writer, instance, from, to);
}

/* One switch over topics; runs on the subscriber's nng thread. */
static void
bill_event_cb(void *arg, const char *topic, const void *payload, size_t len)
{
	struct bill *b = arg;

	if (strcmp(topic, TOPIC_HEARTBEAT) == 0) {
		(void)hb_rx_feed(&b->hb, payload, len);
	} else if (strcmp(topic, TOPIC_USAGE) == 0) {
		if (proto_usage_each(payload, len, bill_usage_one, b) < 0) {
			met_counter_inc(b->bad_events);
			log_warn("bill.bad_usage_batch", LOG_U64("bytes", len));
		}
	} else {
		met_counter_inc(b->other_events);
	}
}

/* /readyz: the last batch attempt committed. */
static int
bill_ledger_check(void *arg, int timeout_ms, struct buf *detail)
{
	struct bill *b = arg;
	int          rv = bill_writer_last(b->writer);

	(void)timeout_ms;
	if (rv != 0 && buf_addf(detail, "last batch: %s", err_name(rv)) != 0)
		buf_truncate(detail, 0);
	return rv;
}

static bool
bill_http_url(const char *u)
{
	return strncmp(u, "http://", 7) == 0 || strncmp(u, "https://", 8) == 0;
}

/*
 * The downloaded table (bill_price_fetch.h), when price_url is set: its
 * stored copy replaces the file table at once, then the thread checks.
 */
static void
bill_pfetch_begin(struct bill *b, size_t models)
{
	const struct bill_cfg *c = b->cfg;
	struct bill_pfetch_cfg fc = {.url = c->price_url,
	    .sha_url = c->price_sha256_url,
	    .dir = c->price_data_dir,
	    .file_max = (size_t)c->price_file_max,
	    .check_ms = c->price_check_interval,
	    .update_ms = c->price_update_interval,
	    .timeout_ms = c->price_fetch_timeout};
	int                    rv;

	fc.models = svc_gauge("sub2api_billing_price_models",
	    "Models in the price table in use.");
	met_gauge_set(fc.models, (double)models);
	if (c->price_url[0] == '\0')
		return;
	if (!bill_http_url(c->price_url) ||
	    (c->price_sha256_url[0] != '\0' &&
	        !bill_http_url(c->price_sha256_url)))
		fatalx("bill.price_url_invalid",
		    LOG_MSG("price_url and price_sha256_url: http(s) only"));
	fc.ok = svc_counter("sub2api_billing_price_reloads_total",
	    "Downloaded price tables swapped in.");
	fc.failed = svc_counter("sub2api_billing_price_reload_failures_total",
	    "Price table checks that failed or were refused.");
	b->pfetch = bill_pfetch_new(b->prices, &fc);
	rv = bill_pfetch_load_local(b->pfetch, NULL);
	if (rv != 0 && rv != -ERR_NOTFOUND)
		log_warn("bill.price_copy_ignored",
		    LOG_STR("dir", c->price_data_dir), LOG_ERR(rv));
	rv = bill_pfetch_start(b->pfetch);
	if (rv != 0)
		fatalx("bill.price_fetch_start_failed", LOG_ERR(rv));
}

#define BILL_GUARD_WAIT_MS 2000

/*
 * nng 1.5.2 leaves a listener stuck for good after a peer hung up during
 * the SP header exchange (e.g. a gateway that dialed while billing was
 * frozen for over 10 s): usage events and syncs would never arrive again
 * while /readyz stays green.  Both listeners are checked and reopened.
 */
static void
bill_guard_cb(void *arg)
{
	struct bill *b = arg;

	if (nngx_sub_guard(b->sub, BILL_GUARD_WAIT_MS) == 1)
		met_counter_inc(b->m_reopened);
	if (bill_sync_guard(b->sync, BILL_GUARD_WAIT_MS) == 1)
		met_counter_inc(b->m_reopened);
}

static void
bill_prices_start(struct bill *b)
{
	struct bill_prices_cfg  pc = {.path = b->cfg->price_file,
	     .bundled = b->cfg->price_bundled,
	     .file_max = (size_t)b->cfg->price_file_max,
	     .unknown = strcmp(b->cfg->price_unknown, "fallback") == 0
	         ? BILL_UNKNOWN_FALLBACK
	         : BILL_UNKNOWN_ZERO,
	     .fallback_model = b->cfg->price_fallback_model};
	struct bill_price_stats st;
	int                     rv;

	b->prices = bill_prices_new(&pc);
	rv = bill_prices_reload(b->prices, &st);
	if (rv != 0)
		fatalx("bill.prices_failed", LOG_STR("file", pc.path),
		    LOG_STR("bundled", pc.bundled), LOG_ERR(rv));
	log_info("bill.prices_loaded", LOG_U64("models", st.loaded),
	    LOG_U64("refused", st.refused));
	bill_pfetch_begin(b, st.loaded);
}

static void
bill_ledger_start(struct bill *b)
{
	struct bill_ledger_cfg lc = {.pg = b->pg,
	    .rds = b->rds,
	    .prices = b->prices,
	    .redis_prefix = b->cfg->redis_prefix,
	    .simple = strcmp(b->cfg->run_mode, "simple") == 0,
	    .db_timeout_ms = (int)b->cfg->db_wait,
	    .cache_ttl_s = (int)(b->cfg->cache_ttl / 1000)};
	struct bill_writer_cfg wc = {.writers = (size_t)b->cfg->writers,
	    .queue_max = (size_t)b->cfg->queue_max,
	    .batch_max = (size_t)b->cfg->batch_max,
	    .batch_wait_ms = (int)b->cfg->batch_wait,
	    .retry_min_ms = (int)b->cfg->retry_min,
	    .retry_max_ms = (int)b->cfg->retry_max};
	struct bill_notify_cfg nc;

	/* Each writer holds a connection; /readyz needs one more. */
	if (b->cfg->writers >= b->cfg->db_pool)
		fatalx("bill.writers_over_pool",
		    LOG_I64("writers", b->cfg->writers),
		    LOG_I64("db_pool", b->cfg->db_pool));
	lc.met.rows = svc_counter(
	    "sub2api_billing_rows_total", "usage_logs rows inserted.");
	lc.met.duplicates = svc_counter("sub2api_billing_duplicates_total",
	    "Usage events whose request id was already recorded.");
	lc.met.dead_letters = svc_counter("sub2api_billing_dead_letters_total",
	    "Usage events written to billing_dead_letters.");
	lc.met.batches = svc_counter(
	    "sub2api_billing_batches_total", "Transactions committed.");
	lc.met.db_errors = svc_counter("sub2api_billing_batch_errors_total",
	    "Batch attempts that failed (retried).");
	lc.met.cache_errors = svc_counter("sub2api_billing_cache_errors_total",
	    "Redis billing cache writes that failed.");
	wc.dropped = svc_counter("sub2api_billing_queue_dropped_total",
	    "Usage events dropped because the queue was full.");
	wc.depth =
	    svc_gauge("sub2api_billing_queue_depth", "Usage events waiting.");
	nc.addr = b->cfg->sched_cfg_addr;
	nc.sent = svc_counter("sub2api_billing_sched_notified_total",
	    "Money verdicts (balance at zero, spent window or key quota) "
	    "announced to the scheduler.");
	nc.failed = svc_counter("sub2api_billing_sched_notify_failed_total",
	    "Money verdicts that could not be announced.");
	nc.held = svc_gauge("sub2api_billing_sched_notify_held",
	    "Money verdicts waiting for the scheduler to connect.");
	nc.peers = svc_gauge("sub2api_billing_sched_peers",
	    "Scheduler subscribers connected for the announcements.");
	if (bill_notify_new(&nc, &b->notify) != 0)
		fatalx("bill.sched_pub_failed",
		    LOG_STR("addr", b->cfg->sched_cfg_addr));
	lc.notify = bill_notify_send;
	lc.notify_arg = b->notify;
	bill_ledger_new(&lc, &b->ledger);
	b->writer = bill_writer_start(b->ledger, &wc);
	if (http_add_check(b->svc.health, "ledger", bill_ledger_check, b,
	        (int)b->cfg->dep_timeout) != 0)
		fatalx("bill.check_failed", LOG_STR("check", "ledger"));
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
	b->bad_events = svc_counter("sub2api_billing_bad_events_total",
	    "Usage events that did not decode.");
	svc_deps_open(&b->svc, b->cfg->database_url, (int)b->cfg->db_pool,
	    &b->pg, b->cfg->redis_url, (int)b->cfg->redis_pool, &b->rds,
	    (int)b->cfg->dep_timeout);
	bill_prices_start(b);
	bill_ledger_start(b);
	rv = nngx_sub_new(b->cfg->events_addr, topics, ARRAY_SIZE(topics),
	    (size_t)b->cfg->recv_queue, bill_event_cb, b, &b->sub);
	if (rv != 0)
		fatalx("bill.listen_failed",
		    LOG_STR("addr", b->cfg->events_addr), LOG_ERR(rv));
	rv = bill_sync_new(b->cfg->sync_addr, bill_usage_cb, b,
	    bill_sync_committed_pg, b->pg, bill_lost_cb, b, &b->sync);
	if (rv != 0)
		fatalx("bill.sync_listen_failed",
		    LOG_STR("addr", b->cfg->sync_addr), LOG_ERR(rv));
	b->m_reopened = svc_counter("sub2api_billing_listener_reopened_total",
	    "Listeners found stuck (nng#1518) and reopened.");
	if (b->cfg->listener_guard > 0 &&
	    tick_start(&b->guard_tick, "listener_guard", b->cfg->listener_guard,
	        bill_guard_cb, b) != 0)
		fatalx("bill.guard_start_failed");
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

	tick_stop(&b.guard_tick);
	bill_sync_free(b.sync);
	nngx_sub_close(b.sub);
	nngx_sub_free(b.sub);
	/*
	 * The health listener's checks read the writer and use the pools:
	 * stop it before either is freed (the ledger check once read a
	 * freed writer here).
	 */
	svc_release(&b.svc);
	/* Queued events are applied within the drain budget. */
	bill_writer_stop(b.writer, now_mono_ms() + b.cfg->drain_timeout);
	bill_pfetch_free(b.pfetch);
	bill_ledger_free(b.ledger);
	bill_notify_free(b.notify);
	svc_deps_close(b.pg, b.rds);
	hb_rx_release(&b.hb);
	bill_prices_free(b.prices);
	bill_cfg_free((struct bill_cfg *)b.cfg);
	return 0;
}
