/*
 * gw_sync.c: the usage spool's life in the gateway, and the sync with
 * billing that makes usage delivery lossless (DESIGN section 4).
 *
 * The gateway drives the recovery, so billing never needs to know where
 * gateways are: every spool_sync_interval (and at once after start) a
 * tick thread sends billing a USAGE_SYNC_REQ over a REQ socket, carrying
 * up to spool_sync_batch spooled events that billing has not confirmed
 * and that were last sent at least spool_resend_after ago (none: a plain
 * poll).  Billing ingests them (idempotent by request id) and answers its
 * committed seq for this instance; everything at or below it is trimmed
 * from the spool.  When billing is away the call fails, is counted, and
 * the next tick tries again: nothing is dropped.  A tick whose batch
 * came back full sends the next one at once, for up to half an interval,
 * so a backlog drains as fast as billing takes it.  The request also
 * declares the seqs the spool could not take (full or failing; see
 * gw_spool_lost_add()), so billing's cursor passes them instead of
 * stopping there for good, which would keep the spool from ever trimming.
 *
 * The REQ socket is replaced when billing has answered no sync for
 * GW_SYNC_RESET_UNANSWERED rounds in a row (at most every
 * GW_SYNC_RESET_MS): with nng 1.5.2 a socket can stay unusable after
 * billing is back.  Its one pipe may be held by a billing listener nng
 * wedged (nanomsg/nng#1518): negotiated, never read, so a large request
 * never finishes sending and the dialer, whose pipe looks alive, never
 * redials; or the process's pipe reaper may be stuck (see nngx.h), so a
 * closed pipe is never replaced.  A new socket dials afresh; when billing
 * is simply away this costs a socket now and then.
 *
 * With spool_fsync=interval a second tick makes the spool durable every
 * spool_fsync_interval, off the request path.
 */
#include <stdio.h>

#include "err.h"
#include "gw.h"
#include "gw_spool.h"
#include "log.h"
#include "proto.h"

#define GW_SYNC_BYTES_MAX        (PROTO_MAX_MSG - 64 * 1024) /* events per req */
#define GW_SYNC_RESET_UNANSWERED 3 /* rounds in a row */
#define GW_SYNC_RESET_MS         10000

static enum gw_spool_fsync
gw_sync_policy(const char *s)
{
	if (strcmp(s, "always") == 0)
		return GW_SPOOL_FSYNC_ALWAYS;
	if (strcmp(s, "never") == 0)
		return GW_SPOOL_FSYNC_NEVER;
	return GW_SPOOL_FSYNC_INTERVAL;
}

static void
gw_sync_metrics_init(struct gw *gw)
{
	static const char *const reason[] = {"reason"};

	gw->m_spooled = svc_counter("sub2api_gateway_usage_spooled_total",
	    "Usage events written to the local spool.");
	gw->m_unspooled =
	    svc_family(MET_COUNTER, "sub2api_gateway_usage_unspooled_total",
	        "Usage events published without being spooled, by reason.",
	        reason, 1, NULL, 0);
	gw->m_resent = svc_counter("sub2api_gateway_usage_resent_total",
	    "Spooled usage events sent again to billing over the sync.");
	gw->m_trimmed = svc_counter("sub2api_gateway_usage_trimmed_total",
	    "Spooled usage events dropped once billing confirmed them.");
	gw->m_sync_ok = svc_counter("sub2api_gateway_billing_syncs_total",
	    "Sync requests billing answered.");
	gw->m_sync_failed =
	    svc_counter("sub2api_gateway_billing_sync_failures_total",
	        "Sync requests to billing that failed or timed out.");
	gw->m_sync_resets = svc_counter(
	    "sub2api_gateway_billing_sync_resets_total",
	    "Sync sockets replaced after billing answered none for a while.");
	gw->m_spool_records = svc_gauge("sub2api_gateway_spool_pending_records",
	    "Spooled usage events billing has not confirmed.");
	gw->m_spool_bytes = svc_gauge("sub2api_gateway_spool_bytes",
	    "Bytes of the spool's segment files.");
	gw->m_spool_committed = svc_gauge("sub2api_gateway_spool_committed_seq",
	    "Highest usage seq billing confirmed for this instance.");
}

void
gw_spool_start(struct gw *gw)
{
	struct gw_spool_opts o;
	int                  rv;

	gw_sync_metrics_init(gw);
	(void)str_copy(
	    gw->run_instance, sizeof(gw->run_instance), gw->svc.instance);
	memset(&o, 0, sizeof(o));
	o.dir = gw->cfg->spool_dir;
	o.instance = gw->svc.instance;
	o.fsync = gw_sync_policy(gw->cfg->spool_fsync);
	o.max_bytes = gw->cfg->spool_max;
	o.segment_bytes = gw->cfg->spool_segment;
	rv = gw_spool_open(&o, &gw->spool);
	if (rv != 0)
		fatalx(
		    "gw.spool_open_failed", LOG_STR("dir", o.dir), LOG_ERR(rv));
	rv = svc_set_instance(&gw->svc, gw_spool_instance(gw->spool));
	if (rv != 0)
		fatalx("gw.spool_instance_failed", LOG_ERR(rv));
	atomic_store(&gw->usage_seq, gw_spool_last_seq(gw->spool));
}

static void
gw_sync_gauges(struct gw *gw)
{
	struct gw_spool_stats st;

	gw_spool_stats(gw->spool, &st);
	met_gauge_set(gw->m_spool_records, (double)st.pending_records);
	met_gauge_set(gw->m_spool_bytes, (double)st.pending_bytes);
	met_gauge_set(gw->m_spool_committed, (double)st.committed);
	if (st.trimmed > gw->trimmed_seen) {
		met_counter_add(gw->m_trimmed, st.trimmed - gw->trimmed_seen);
		gw->trimmed_seen = st.trimmed;
	}
}

/* One exchange: the request holds b's events; 0 or -ERR_x. */
static int
gw_sync_call(struct gw *gw, const struct gw_spool_batch *b, struct buf *out,
    struct buf *in, uint64_t *committed)
{
	struct proto_usage_sync_req *q = xcalloc(1, sizeof(*q));
	struct proto_usage_sync_rep  p;
	struct proto_error_rep       e;
	struct proto_env             env;
	size_t                       off = 0;
	uint32_t                     i;
	struct gw_spool_range        lost[PROTO_SYNC_LOST_MAX];
	size_t                       nl, j;
	int                          rv;

	(void)str_copy(q->instance, sizeof(q->instance), gw->svc.instance);
	nl = gw_spool_lost(gw->spool, lost, ARRAY_SIZE(lost));
	for (j = 0; j < nl; j++) {
		q->lost[2 * j] = (int64_t)(lost[j].from & INT64_MAX);
		q->lost[2 * j + 1] = (int64_t)(lost[j].to & INT64_MAX);
	}
	q->n_lost = (uint32_t)(2 * nl);
	q->n_blobs = b->n;
	for (i = 0; i < b->n; i++) {
		q->blobs[i].ptr = (const uint8_t *)b->data.data + off;
		q->blobs[i].len = b->len[i];
		off += b->len[i];
	}
	rv = proto_usage_sync_req_pack(
	    out, NULL, now_wall_ms() + gw->cfg->spool_sync_timeout, q);
	free(q);
	if (rv == 0) {
		rv = nngx_req_call(gw->bsync, out->data, out->len,
		    (int)gw->cfg->spool_sync_timeout, in);
		gw->sync_unanswered = rv == 0 ? 0 : gw->sync_unanswered + 1;
	}
	if (rv == 0)
		rv = proto_env_unpack(in->data, in->len, &env);
	if (rv == 0 && env.type == MSG_ERROR_REP) {
		rv = proto_error_rep_unpack(&env, &e);
		return rv != 0 ? rv : -e.code;
	}
	if (rv == 0)
		rv = proto_usage_sync_rep_unpack(&env, &p);
	if (rv == 0 && strcmp(p.instance, gw->svc.instance) != 0)
		rv = -ERR_PROTO;
	if (rv == 0)
		*committed = p.committed_seq;
	return rv;
}

/*
 * One sync round: takes a batch, sends it, trims.  0 and *full set when
 * the batch was full (more may be waiting), or the failure.
 */
static int
gw_sync_round(struct gw *gw, bool *full)
{
	struct gw_spool_batch *b = xcalloc(1, sizeof(*b));
	struct buf             out, in;
	uint64_t               committed = 0;
	int                    rv, ret;

	*full = false;
	buf_init(&b->data, GW_SYNC_BYTES_MAX);
	buf_init(&out, PROTO_MAX_MSG);
	buf_init(&in, 64 * 1024);
	rv =
	    gw_spool_take(gw->spool, now_mono_ms(), gw->cfg->spool_resend_after,
	        (uint32_t)gw->cfg->spool_sync_batch, GW_SYNC_BYTES_MAX, b);
	if (rv != 0)
		log_warn("gw.spool_read_failed", LOG_ERR(rv));
	rv = gw_sync_call(gw, b, &out, &in, &committed);
	ret = rv;
	if (rv == 0) {
		*full = b->n > 0 &&
		    (b->n >= (uint32_t)gw->cfg->spool_sync_batch ||
		        b->data.len * 2 >= GW_SYNC_BYTES_MAX);
		met_counter_inc(gw->m_sync_ok);
		met_counter_add(gw->m_resent, b->n);
		if (b->n > 0)
			log_info("gw.usage_resent", LOG_I64("events", b->n),
			    LOG_U64("first_seq", b->seq[0]),
			    LOG_U64("committed", committed));
		rv = gw_spool_trim(gw->spool, committed);
		if (rv != 0)
			log_warn("gw.spool_trim_failed", LOG_ERR(rv));
	} else {
		/* The events taken come back after spool_resend_after. */
		met_counter_inc(gw->m_sync_failed);
		log_debug("gw.billing_sync_failed", LOG_ERR(rv),
		    LOG_I64("events", b->n));
	}
	buf_release(&out);
	buf_release(&in);
	buf_release(&b->data);
	free(b);
	return ret;
}

/*
 * Replaces the REQ socket that billing has not answered on for a while
 * (see the top of this file).  Runs on the sync tick, the socket's only
 * user; the old socket's close is bounded.
 */
static void
gw_sync_reset(struct gw *gw)
{
	const char      *addr[1] = {gw->cfg->billing_sync_addr};
	struct nngx_req *c = NULL;
	int              rv;

	gw->sync_reset_at_ms = now_mono_ms();
	rv = nngx_req_new(addr, 1, &c);
	if (rv != 0) {
		log_warn("gw.billing_sync_reset_failed", LOG_ERR(rv));
		return;
	}
	log_warn("gw.billing_sync_reset",
	    LOG_I64("unanswered", gw->sync_unanswered),
	    LOG_I64("pipes", nngx_req_npipes(gw->bsync)));
	nngx_req_free(gw->bsync);
	gw->bsync = c;
	gw->sync_unanswered = 0;
	met_counter_inc(gw->m_sync_resets);
}

/*
 * The tick: rounds back to back while they come back full, within half
 * a sync interval, so a backlog (billing away for a while) drains at the
 * speed billing takes it rather than one batch per interval.
 */
static void
gw_sync_cb(void *arg)
{
	struct gw *gw = arg;
	int64_t    until = now_mono_ms() + gw->cfg->spool_sync_interval / 2;
	bool       full = false;

	while (gw_sync_round(gw, &full) == 0 && full && now_mono_ms() < until)
		;
	if (gw->sync_unanswered >= GW_SYNC_RESET_UNANSWERED &&
	    now_mono_ms() - gw->sync_reset_at_ms >= GW_SYNC_RESET_MS)
		gw_sync_reset(gw);
	gw_sync_gauges(gw);
}

static void
gw_flush_cb(void *arg)
{
	struct gw *gw = arg;
	int        rv = gw_spool_flush(gw->spool);

	if (rv != 0)
		log_warn("gw.spool_fsync_failed", LOG_ERR(rv));
}

int
gw_sync_start(struct gw *gw)
{
	const char *addr[1] = {gw->cfg->billing_sync_addr};
	int         rv;

	rv = nngx_req_new(addr, 1, &gw->bsync);
	if (rv != 0)
		fatalx("gw.billing_sync_dial_failed", LOG_STR("addr", addr[0]),
		    LOG_ERR(rv));
	if (gw_sync_policy(gw->cfg->spool_fsync) == GW_SPOOL_FSYNC_INTERVAL) {
		rv = tick_start(&gw->flush_tick, "spool_fsync",
		    gw->cfg->spool_fsync_interval, gw_flush_cb, gw);
		if (rv != 0)
			return rv;
	}
	return tick_start(&gw->sync_tick, "billing_sync",
	    gw->cfg->spool_sync_interval, gw_sync_cb, gw);
}

void
gw_sync_stop(struct gw *gw)
{
	tick_stop(&gw->sync_tick);
	tick_stop(&gw->flush_tick);
	if (gw->bsync != NULL) {
		nngx_req_close(gw->bsync);
		nngx_req_free(gw->bsync);
		gw->bsync = NULL;
	}
	gw_spool_free(gw->spool); /* syncs what is pending */
	gw->spool = NULL;
}
