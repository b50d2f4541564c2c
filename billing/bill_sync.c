/*
 * bill_sync.c: billing's side of the usage sync (DESIGN section 4).
 *
 * Gateways drive delivery: each one dials this REP listener every few
 * seconds with a USAGE_SYNC_REQ carrying the usage events it spooled and
 * billing has not confirmed.  Each event is handed, as a USAGE_EVT
 * envelope, to the same ingest function the SUB path uses (request ids
 * make a second delivery a no-op), then the reply gives the instance's
 * committed seq, so the gateway trims its spool.  An event that does not
 * decode, or names another instance, is counted and skipped: one bad
 * spool entry never blocks the rest.  The request may also declare seq
 * ranges the gateway numbered but could not spool (its spool full or
 * failing): nothing will ever resend them, so they go to the lost
 * callback, which lets the cursor pass them instead of waiting forever.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "bill.h"
#include "err.h"
#include "log.h"
#include "proto.h"

#define BILL_SYNC_WORKERS 4
#define BILL_SYNC_EV_MAX  (64 * 1024)

struct bill_sync {
	struct nngx_rep       *rep;
	bill_sync_ingest_fn    ingest;
	void                  *ingest_arg;
	bill_sync_committed_fn committed;
	void                  *committed_arg;
	bill_sync_lost_fn      lost;
	void                  *lost_arg;
	struct met_counter    *m_lost;
	struct met_counter    *m_requests;
	struct met_counter    *m_events;
	struct met_counter    *m_bad;
	struct met_counter    *m_failed;
};

/* Ingests one carried event; 0, or the ingest error. */
static int
bill_sync_event(struct bill_sync *s, const char *inst,
    const struct proto_blob *bl, struct proto_usage_evt *e, struct buf *env)
{
	int rv;

	rv = proto_body_unpack(MSG_USAGE_EVT, bl->ptr, bl->len, e);
	if (rv == 0 && strcmp(e->instance, inst) != 0)
		rv = -ERR_PROTO;
	if (rv == 0) {
		buf_reset(env);
		rv = proto_usage_evt_pack(env, e->request_id, 0, e);
	}
	if (rv != 0) {
		met_counter_inc(s->m_bad);
		log_warn(
		    "bill.sync_bad_event", LOG_STR("inst", inst), LOG_ERR(rv));
		return 0;
	}
	met_counter_inc(s->m_events);
	log_debug("bill.sync_event", LOG_STR("inst", inst),
	    LOG_U64("seq", e->seq), LOG_REQ(e->request_id));
	return s->ingest(s->ingest_arg, env->data, env->len);
}

static int
bill_sync_handle(
    struct bill_sync *s, const struct proto_env *in, struct buf *reply)
{
	struct proto_usage_sync_req *q = xcalloc(1, sizeof(*q));
	struct proto_usage_evt      *e = xcalloc(1, sizeof(*e));
	struct proto_usage_sync_rep  p;
	struct buf                   env;
	uint32_t                     i;
	int                          rv;

	buf_init(&env, BILL_SYNC_EV_MAX);
	rv = proto_usage_sync_req_unpack(in, q);
	for (i = 0; rv == 0 && s->lost != NULL && i < q->n_lost; i += 2) {
		int lrv = s->lost(s->lost_arg, q->instance,
		    (uint64_t)q->lost[i], (uint64_t)q->lost[i + 1]);

		met_counter_inc(s->m_lost);
		if (lrv != 0)
			log_warn("bill.sync_lost_refused",
			    LOG_STR("inst", q->instance),
			    LOG_I64("from", q->lost[i]),
			    LOG_I64("to", q->lost[i + 1]), LOG_ERR(lrv));
	}
	for (i = 0; rv == 0 && i < q->n_blobs; i++)
		rv = bill_sync_event(s, q->instance, &q->blobs[i], e, &env);
	memset(&p, 0, sizeof(p));
	if (rv == 0)
		rv = s->committed(
		    s->committed_arg, q->instance, &p.committed_seq);
	if (rv == 0) {
		(void)str_copy(p.instance, sizeof(p.instance), q->instance);
		rv = proto_usage_sync_rep_pack(reply, in->id, 0, &p);
	}
	if (rv != 0) {
		met_counter_inc(s->m_failed);
		log_warn("bill.sync_failed", LOG_STR("inst", q->instance),
		    LOG_ERR(rv));
	}
	buf_release(&env);
	free(q);
	free(e);
	return rv;
}

/* The REP handler: one switch over the request's type. */
static int
bill_sync_rep_cb(void *arg, const void *req, size_t len, struct buf *reply)
{
	struct bill_sync *s = arg;
	struct proto_env  in;
	int               rv;

	met_counter_inc(s->m_requests);
	rv = proto_env_unpack(req, len, &in);
	if (rv != 0)
		return proto_reply_error(reply, NULL, rv, NULL);
	switch (in.type) {
	case MSG_USAGE_SYNC_REQ:
		rv = bill_sync_handle(s, &in, reply);
		break;
	default:
		log_warn("proto.unexpected_type", LOG_I64("type", in.type));
		rv = -ERR_PROTO;
	}
	if (rv != 0) {
		buf_reset(reply);
		if (proto_reply_error(reply, in.id, rv, NULL) != 0)
			log_warn("bill.sync_reply_failed", LOG_ERR(rv));
	}
	return rv;
}

int
bill_sync_new(const char *addr, bill_sync_ingest_fn ingest, void *ingest_arg,
    bill_sync_committed_fn committed, void *committed_arg,
    bill_sync_lost_fn lost, void *lost_arg, struct bill_sync **out)
{
	struct bill_sync *s;
	int               rv;

	if (ingest == NULL || committed == NULL)
		return -ERR_INVAL;
	s = xcalloc(1, sizeof(*s));
	s->ingest = ingest;
	s->ingest_arg = ingest_arg;
	s->committed = committed;
	s->committed_arg = committed_arg;
	s->lost = lost;
	s->lost_arg = lost_arg;
	s->m_requests = svc_counter("sub2api_billing_sync_requests_total",
	    "Usage sync requests received from gateways.");
	s->m_events = svc_counter("sub2api_billing_sync_events_total",
	    "Usage events received over the sync (resent by gateways).");
	s->m_bad = svc_counter("sub2api_billing_sync_bad_events_total",
	    "Synced usage events that did not decode, skipped.");
	s->m_lost = svc_counter("sub2api_billing_sync_lost_ranges_total",
	    "Seq ranges gateways declared lost (never spooled).");
	s->m_failed = svc_counter("sub2api_billing_sync_failures_total",
	    "Sync requests answered with an error.");
	rv = nngx_rep_new(
	    addr, BILL_SYNC_WORKERS, bill_sync_rep_cb, s, 0, &s->rep);
	if (rv != 0) {
		free(s);
		return rv;
	}
	*out = s;
	return 0;
}

void
bill_sync_free(struct bill_sync *s)
{
	if (s == NULL)
		return;
	nngx_rep_free(s->rep);
	free(s);
}

int
bill_sync_guard(struct bill_sync *s, int timeout_ms)
{
	return nngx_rep_guard(s->rep, timeout_ms);
}

int
bill_sync_committed_pg(void *arg, const char *instance, uint64_t *seq)
{
	struct pg_pool *pool = arg;
	struct pg_conn *c = NULL;
	PGresult       *res = NULL;
	const char     *params[1] = {instance};
	uint64_t        v = 0;
	int             rv;

	rv = pg_acquire(pool, 2000, &c);
	if (rv != 0)
		return rv;
	rv = pg_exec(c,
	    "SELECT committed_seq FROM billing_cursors WHERE instance_id = $1",
	    1, params, &res);
	if (rv == 0 && PQntuples(res) == 1 &&
	    sscanf(PQgetvalue(res, 0, 0), "%" SCNu64, &v) != 1)
		rv = -ERR_DB;
	if (res != NULL)
		PQclear(res);
	pg_release(c);
	if (rv == 0)
		*seq = v;
	return rv;
}
