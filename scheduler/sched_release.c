/*
 * sched_release.c: SCHED_RENEW_REQ and SCHED_RELEASE_REQ.
 *
 * Renew extends every named lease by lease_ttl and names the ones that
 * are gone (expired, released, or never ours), so the gateway can stop a
 * stream that no longer holds its slot.  Release removes the lease from
 * both of its sets (idempotent: releasing twice answers ok twice) and
 * then applies the upstream outcome to the account (sched_state.c: rate
 * limits, overloads, errors and bans, temporary pauses after repeated
 * failures, the 5h session window, custom error codes).  A release
 * flagged wait_cancel removes its request from the wait sets (the
 * gateway gave up waiting); its lease may be "", then no slot is touched
 * and no outcome applied.
 */
#include <stdio.h>

#include "err.h"
#include "log.h"
#include "sched.h"

int
sched_on_renew(struct sched *s, const struct proto_env *env, struct buf *reply)
{
	struct proto_sched_renew_req req;
	struct proto_sched_renew_rep rep;
	bool                         alive[PROTO_LEASES_MAX];
	uint32_t                     i;
	int                          rv;

	rv = proto_sched_renew_req_unpack(env, &req);
	if (rv != 0)
		return rv;
	rv = sched_slots_renew(
	    s, req.leases, req.n_leases, s->cfg->lease_ttl, alive);
	if (rv != 0) {
		log_warn("sched.renew_failed", LOG_REQ(env->id), LOG_ERR(rv));
		return rv;
	}
	memset(&rep, 0, sizeof(rep));
	for (i = 0; i < req.n_leases; i++) {
		if (alive[i])
			memcpy(rep.renewed[rep.n_renewed++], req.leases[i],
			    sizeof(req.leases[i]));
		else
			memcpy(rep.lost[rep.n_lost++], req.leases[i],
			    sizeof(req.leases[i]));
	}
	rep.ttl_ms = (uint32_t)s->cfg->lease_ttl;
	return proto_sched_renew_rep_pack(reply, env->id, 0, &rep);
}

bool
sched_release_resets(
    const struct sched *s, const struct proto_sched_release_req *req)
{
	return sched_state_kind(req->http_status, req->err_class) ==
	    SCHED_ST_SUCCESS &&
	    s->cfg->temp_unsched_threshold > 0;
}

int
sched_release_run(struct sched *s, const char *id,
    const struct proto_sched_release_req *req, const bool *pre_held,
    struct buf *reply)
{
	struct proto_sched_release_rep rep;
	struct sched_outcome           oc;
	bool                           held = false;
	int                            unwaited = 0;
	int                            rv, rrv;

	memset(&rep, 0, sizeof(rep));
	snprintf(rep.state, sizeof(rep.state), "ok");
	rrv = 0;
	if (req->wait_cancel && req->request_id[0] != '\0') {
		rrv = sched_slots_unwait(s, req->request_id, &unwaited);
		if (rrv != 0)
			log_warn(
			    "sched.unwait_failed", LOG_REQ(id), LOG_ERR(rrv));
	}
	/* A pure cancel holds no lease and reports no attempt. */
	if (req->lease_id[0] != '\0') {
		/* A success resets the account's failure count in the same
		 * trip. */
		if (pre_held != NULL) {
			held = *pre_held;
			rv = 0;
		} else {
			rv = sched_slots_release_ex(s, req->lease_id,
			    req->account_id, sched_release_resets(s, req),
			    &held);
		}
		if (rv != 0)
			log_warn(
			    "sched.release_failed", LOG_REQ(id), LOG_ERR(rv));
		if (rrv == 0)
			rrv = rv;
		oc.account_id = req->account_id;
		oc.status = req->http_status;
		oc.err_class = req->err_class;
		oc.lease = req->lease_id;
		oc.duration_ms = req->duration_ms;
		oc.reset_unix = req->reset_unix;
		oc.retry_after_s = req->retry_after_s;
		oc.hdrs = req->headers;
		oc.n_hdrs = req->n_headers;
		oc.err_message = req->err_message;
		rv = sched_state_apply(s, &oc, rep.state);
		if (rv != 0) {
			/* The lease is back all the same; the outcome is
			 * lost. */
			log_warn("sched.release_state_failed", LOG_REQ(id),
			    LOG_I64("account", req->account_id),
			    LOG_I64("status", req->http_status), LOG_ERR(rv));
			rep.state[0] = '\0';
		}
	}
	if (rrv != 0)
		return rrv;
	log_debug("sched.release", LOG_REQ(id), LOG_STR("lease", req->lease_id),
	    LOG_BOOL("held", held), LOG_I64("unwaited", unwaited),
	    LOG_I64("status", req->http_status));
	rep.released = true;
	return proto_sched_release_rep_pack(reply, id, 0, &rep);
}

int
sched_on_release(
    struct sched *s, const struct proto_env *env, struct buf *reply)
{
	struct proto_sched_release_req *req = xmalloc(sizeof(*req));
	int                             rv;

	rv = proto_sched_release_req_unpack(env, req);
	if (rv == 0)
		rv = sched_release_run(s, env->id, req, NULL, reply);
	free(req);
	return rv;
}
