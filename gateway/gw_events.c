/*
 * gw_events.c: usage and error events (I/O thread and MHD thread).
 *
 * Each gateway instance numbers its usage events from 1 (and its error
 * events apart; an adopted instance numbers on from its spool).  A usage
 * event is appended to the spool (gw_spool.h) before it is published, so
 * the sync with billing (gw_sync.c) can resend it if the publication is
 * lost.  Neither step blocks a request: a full or failing spool is
 * counted and logged and the event is still published; nngx_pub_send()
 * queues or drops, and a drop is counted.  Under load the events of a few
 * milliseconds (usage_linger) leave as one USAGE_BATCH_EVT (gw_bundle.h). Usage
 * events are numbered and spooled on the I/O thread only: the spool takes seqs
 * in increasing order.
 */
#include <stdatomic.h>
#include <stdio.h>

#include "err.h"
#include "gw.h"
#include "gw_relay.h"
#include "gw_spool.h"
#include "log.h"

#define GW_EV_MAX (16 * 1024)

static void
gw_events_ids(const struct gw_req *r, int64_t *uid, int64_t *kid, int64_t *gid,
    int64_t *aid)
{
	const struct gw_dec *d = r->dec;

	*uid = d ? d->user_id : 0;
	*kid = d ? d->api_key_id : 0;
	*gid = d ? d->group_id : 0;
	*aid = d && d->outcome == PROTO_ACQ_OK ? d->account_id : 0;
}

/* Spools the packed body of e; a refusal is counted, logged, survived. */
static void
gw_events_spool(struct gw *gw, const struct proto_usage_evt *e)
{
	static const char *const full[] = {"full"}, *const error[] = {"error"};
	struct met_counter *c;
	struct buf          body;
	uint64_t            n;
	int                 rv;

	if (gw->spool == NULL)
		return;
	buf_init(&body, GW_EV_MAX);
	rv = proto_body_pack(&body, MSG_USAGE_EVT, e);
	if (rv == 0)
		rv = gw_spool_append(gw->spool, e->seq, body.data, body.len);
	buf_release(&body);
	if (rv == 0) {
		met_counter_inc(gw->m_spooled);
		return;
	}
	/* Never resent: billing is told not to wait for it (gw_sync.c). */
	if (gw_spool_lost_add(gw->spool, e->seq) != 0)
		log_warn("gw.usage_lost_untracked", LOG_U64("seq", e->seq));
	c = met_counter_get(gw->m_unspooled, rv == -ERR_TOOBIG ? full : error);
	met_counter_inc(c);
	n = met_counter_value(c);
	/* 1, 2, 4, 8...: a full spool does not flood the log. */
	if ((n & (n - 1)) == 0)
		log_warn("gw.usage_unspooled", LOG_REQ(e->request_id),
		    LOG_U64("seq", e->seq), LOG_ERR(rv), LOG_U64("count", n));
}

void
gw_events_usage(struct gw *gw, struct gw_req *r, int status)
{
	struct proto_usage_evt e;
	struct buf             out;
	int                    rv;

	if (r->route != GW_RT_MESSAGES || r->dec == NULL)
		return;
	memset(&e, 0, sizeof(e));
	(void)str_copy(e.instance, sizeof(e.instance), gw->svc.instance);
	e.seq = atomic_fetch_add(&gw->usage_seq, 1) + 1;
	(void)str_copy(e.request_id, sizeof(e.request_id), r->id);
	gw_events_ids(r, &e.user_id, &e.api_key_id, &e.group_id, &e.account_id);
	e.subscription_id = r->dec->subscription_id;
	(void)str_copy(e.model, sizeof(e.model), r->areq.model);
	(void)str_copy(e.upstream_model, sizeof(e.upstream_model),
	    r->dec->upstream_model[0] ? r->dec->upstream_model : r->areq.model);
	(void)str_copy(e.platform, sizeof(e.platform), r->dec->platform);
	e.input_tokens = r->anth.usage.input;
	e.output_tokens = r->anth.usage.output;
	e.cache_creation_tokens = r->anth.usage.cache_creation;
	e.cache_read_tokens = r->anth.usage.cache_read;
	e.cache_creation_5m_tokens = r->anth.usage.cache_creation_5m;
	e.cache_creation_1h_tokens = r->anth.usage.cache_creation_1h;
	e.stream = r->areq.stream;
	e.duration_ms = (now_mono_us() - r->t0_us) / 1000;
	e.first_token_ms =
	    r->first_token_us ? (r->first_token_us - r->t0_us) / 1000 : 0;
	e.status = status;
	(void)str_copy(e.client_ip, sizeof(e.client_ip), r->client_ip);
	(void)str_copy(e.user_agent, sizeof(e.user_agent), r->user_agent);
	e.created_at_ms = now_wall_ms();
	gw_events_spool(gw, &e);
	buf_init(&out, GW_EV_MAX);
	rv = proto_usage_evt_pack(&out, r->id, 0, &e);
	if (rv == 0 && gw->cfg->usage_linger > 0) {
		if (!gw_pend_fits(&gw->io.usage, out.len))
			(void)gw_events_flush(gw, now_mono_ms(), true);
		gw_pend_add(
		    &gw->io.usage, out.data, out.len, gw->cfg->usage_linger);
		buf_release(&out);
		return;
	}
	if (rv == 0)
		rv = nngx_pub_send(gw->pub, TOPIC_USAGE, out.data, out.len);
	buf_release(&out);
	if (rv == 0)
		met_counter_inc(gw->m_usage_sent);
	else
		met_counter_inc(gw->m_usage_dropped);
}

int64_t
gw_events_flush(struct gw *gw, int64_t now_ms, bool force)
{
	struct gw_pend               *p = &gw->io.usage;
	struct proto_usage_batch_evt *b;
	struct buf                    out;
	int64_t                       due = gw_pend_due(p, now_ms);
	int                           rv;

	if (due < 0 || (due > 0 && !force))
		return due;
	if (p->n == 1) {
		rv = nngx_pub_send(
		    gw->pub, TOPIC_USAGE, p->data.data, p->data.len);
	} else {
		b = xmalloc(sizeof(*b));
		gw_pend_blobs(p, b->evts);
		b->n_evts = p->n;
		buf_init(&out, PROTO_MAX_MSG);
		rv = proto_usage_batch_evt_pack(&out, NULL, 0, b);
		if (rv == 0)
			rv = nngx_pub_send(
			    gw->pub, TOPIC_USAGE, out.data, out.len);
		buf_release(&out);
		free(b);
	}
	met_counter_add(rv == 0 ? gw->m_usage_sent : gw->m_usage_dropped, p->n);
	if (rv == 0 && p->n > 1)
		met_counter_inc(gw->m_usage_batches);
	gw_pend_clear(p);
	return -1;
}

void
gw_events_error(struct gw *gw, struct gw_req *r, int status, const char *type,
    const char *message)
{
	struct proto_error_evt e;
	struct buf             out;
	const char            *phase, *sev;
	int                    rv;

	memset(&e, 0, sizeof(e));
	(void)str_copy(e.instance, sizeof(e.instance), gw->run_instance);
	e.seq = atomic_fetch_add(&gw->error_seq, 1) + 1;
	(void)str_copy(e.request_id, sizeof(e.request_id), r->id);
	gw_events_ids(r, &e.user_id, &e.api_key_id, &e.group_id, &e.account_id);
	snprintf(e.platform, sizeof(e.platform), "anthropic");
	(void)str_copy(e.model, sizeof(e.model), r->areq.model);
	(void)str_copy(e.path, sizeof(e.path),
	    r->route == GW_RT_COUNT_TOKENS   ? "/v1/messages/count_tokens"
	        : r->route == GW_RT_MESSAGES ? "/v1/messages"
	                                     : "-");
	e.status = status;
	gw_err_classify(status, type, message, &phase, &sev);
	(void)str_copy(e.phase, sizeof(e.phase), phase);
	(void)str_copy(e.type, sizeof(e.type), type ? type : "");
	(void)str_copy(e.severity, sizeof(e.severity), sev);
	(void)str_copy(e.message, sizeof(e.message), message ? message : "");
	e.stream = r->areq.stream;
	e.duration_ms = (now_mono_us() - r->t0_us) / 1000;
	e.created_at_ms = now_wall_ms();
	buf_init(&out, GW_EV_MAX);
	rv = proto_error_evt_pack(&out, r->id, 0, &e);
	if (rv == 0)
		rv = nngx_pub_send(gw->pub, TOPIC_ERROR, out.data, out.len);
	buf_release(&out);
	if (rv != 0)
		met_counter_inc(gw->m_usage_dropped);
}
