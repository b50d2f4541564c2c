/*
 * sched_rep.c: the scheduler's request dispatcher.
 *
 * One switch over the envelope's type; every case is decode, handle,
 * reply.  A SCHED_BUNDLE_REQ (a gateway's pending releases riding on its
 * next acquire) runs each request it holds through the same switch.  Runs on
 * nng worker threads, one request per REP context, so the handlers share
 * nothing but the thread-safe pools and metrics.
 */
#include <stdio.h>

#include "err.h"
#include "log.h"
#include "proto.h"
#include "sched.h"

static void
sched_count(struct sched *s, int type, const char *result)
{
	const char *labels[2] = {proto_msg_name(type), result};

	if (s->requests == NULL)
		return;
	met_counter_inc(met_counter_get(s->requests, labels));
}

static void
sched_count_rv(struct sched *s, int type, int rv)
{
	sched_count(s, type, rv == 0 ? "ok" : err_name(rv));
}

static int
sched_on_ping(struct sched *s, const struct proto_env *env, struct buf *reply)
{
	struct proto_ping_req req;
	struct proto_ping_rep rep;
	int                   rv;

	rv = proto_ping_req_unpack(env, &req);
	if (rv != 0)
		return rv;
	memset(&rep, 0, sizeof(rep));
	snprintf(rep.service, sizeof(rep.service), "scheduler");
	snprintf(rep.instance, sizeof(rep.instance), "%s", s->svc.instance);
	rep.sent_at_ms = req.sent_at_ms;
	rep.now_ms = now_wall_ms();
	return proto_ping_rep_pack(reply, env->id, 0, &rep);
}

static int sched_dispatch(struct sched *s, const struct proto_env *env,
    struct buf *reply, bool in_bundle);

/* A release of a bundle, decoded; NULL and counted when it is refused. */
static struct proto_sched_release_req *
sched_bundle_release(struct sched *s, const struct proto_env *bundle,
    const struct proto_blob *b, uint32_t index, struct proto_env *in)
{
	struct proto_sched_release_req *r;
	int                             rv;

	rv = proto_env_unpack(b->ptr, b->len, in);
	if (rv == 0 && in->type != MSG_SCHED_RELEASE_REQ)
		rv = -ERR_PROTO;
	r = xmalloc(sizeof(*r));
	if (rv == 0)
		rv = proto_sched_release_req_unpack(in, r);
	if (rv == 0)
		return r;
	free(r);
	sched_count(s, MSG_SCHED_RELEASE_REQ, err_name(rv));
	log_warn("sched.bundle_refused", LOG_REQ(bundle->id),
	    LOG_I64("index", index), LOG_ERR(rv));
	return NULL;
}

/*
 * SCHED_BUNDLE_REQ: a gateway's held releases, then its next acquire (or
 * a last release).  Each release is handled as if it came alone (a
 * refused one is logged and counted, never fails the others); the ones
 * that return a lease ride in the acquire's Redis round trip, before its
 * script, so their slots are free for it.  The last request's reply is
 * the bundle's.
 */
static int
sched_on_bundle(struct sched *s, const struct proto_env *env, struct buf *reply)
{
	struct proto_sched_bundle_req   *req = xmalloc(sizeof(*req));
	struct proto_sched_release_req **rel = NULL;
	struct sched_prerel             *pre = NULL;
	char(*ids)[PROTO_ID_MAX + 1] = NULL;
	struct proto_env in, last;
	struct buf       scratch;
	bool             acq;
	size_t           n = 0, k;
	uint32_t         i;
	int              rv, lrv;

	rv = proto_sched_bundle_req_unpack(env, req);
	if (rv != 0) {
		free(req);
		return rv;
	}
	lrv = proto_env_unpack(req->msgs[req->n_msgs - 1].ptr,
	    req->msgs[req->n_msgs - 1].len, &last);
	if (lrv == 0 && last.type != MSG_SCHED_RELEASE_REQ &&
	    last.type != MSG_SCHED_ACQUIRE_REQ)
		lrv = -ERR_PROTO;
	acq = lrv == 0 && last.type == MSG_SCHED_ACQUIRE_REQ;
	buf_init(&scratch, reply->max);
	rel = xcalloc(req->n_msgs, sizeof(*rel));
	pre = xcalloc(req->n_msgs, sizeof(*pre));
	ids = xcalloc(req->n_msgs, sizeof(*ids));
	for (i = 0; i + 1 < req->n_msgs; i++) {
		struct proto_sched_release_req *r =
		    sched_bundle_release(s, env, &req->msgs[i], i, &in);

		if (r == NULL)
			continue;
		if (acq && r->lease_id[0] != '\0' && !r->wait_cancel) {
			rel[n] = r;
			pre[n].lease = r->lease_id;
			pre[n].aid = r->account_id;
			pre[n].reset_failures = sched_release_resets(s, r);
			memcpy(ids[n++], in.id, sizeof(in.id));
			continue;
		}
		buf_reset(&scratch);
		sched_count_rv(s, MSG_SCHED_RELEASE_REQ,
		    sched_release_run(s, in.id, r, NULL, &scratch));
		free(r);
	}
	if (acq) {
		rv = sched_on_acquire_pre(s, &last, reply, pre, n);
		sched_count_rv(s, MSG_SCHED_ACQUIRE_REQ, rv);
	} else if (lrv == 0) {
		rv = sched_dispatch(s, &last, reply, true);
	} else {
		rv = lrv;
	}
	/* The riders: what is left of each (or all of it, when the acquire's
	 * round trip did not run it). */
	for (k = 0; k < n; k++) {
		buf_reset(&scratch);
		sched_count_rv(s, MSG_SCHED_RELEASE_REQ,
		    sched_release_run(s, ids[k], rel[k],
		        pre[k].ran ? &pre[k].held : NULL, &scratch));
		free(rel[k]);
	}
	buf_release(&scratch);
	free(ids);
	free(pre);
	free(rel);
	free(req);
	return rv;
}

/* One request: decode, handle, count; the reply is filled on success. */
static int
sched_dispatch(struct sched *s, const struct proto_env *env, struct buf *reply,
    bool in_bundle)
{
	int rv;

	switch (env->type) {
	case MSG_PING_REQ:
		rv = sched_on_ping(s, env, reply);
		break;
	case MSG_SCHED_ACQUIRE_REQ:
		rv = sched_on_acquire(s, env, reply);
		break;
	case MSG_SCHED_RENEW_REQ:
		rv = sched_on_renew(s, env, reply);
		break;
	case MSG_SCHED_RELEASE_REQ:
		rv = sched_on_release(s, env, reply);
		break;
	case MSG_SCHED_KEYINFO_REQ:
		rv = sched_on_keyinfo(s, env, reply);
		break;
	case MSG_SCHED_BUNDLE_REQ:
		rv = in_bundle ? -ERR_PROTO : sched_on_bundle(s, env, reply);
		break;
	default:
		log_warn("proto.unexpected_type", LOG_REQ(env->id),
		    LOG_I64("type", env->type),
		    LOG_STR("name", proto_msg_name(env->type)));
		rv = -ERR_PROTO;
		break;
	}
	sched_count_rv(s, env->type, rv);
	return rv;
}

int
sched_rep_handle(void *arg, const void *req, size_t len, struct buf *reply)
{
	struct sched    *s = arg;
	struct proto_env env;
	int              rv;

	rv = proto_env_unpack(req, len, &env);
	if (rv != 0) {
		sched_count(s, 0, "malformed");
		log_debug("proto.bad_envelope", LOG_ERR(rv));
		return proto_reply_error(reply, NULL, rv, NULL);
	}
	rv = sched_dispatch(s, &env, reply, false);
	if (rv != 0) {
		buf_reset(reply);
		return proto_reply_error(reply, env.id, rv, NULL);
	}
	return 0;
}
