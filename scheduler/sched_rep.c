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

/*
 * SCHED_BUNDLE_REQ: the releases first, each as if sent alone (a failing
 * one is logged and counted, never fails the others), then the last
 * request, whose reply is the bundle's.
 */
static int
sched_on_bundle(struct sched *s, const struct proto_env *env, struct buf *reply)
{
	struct proto_sched_bundle_req *req = xmalloc(sizeof(*req));
	struct proto_env               in;
	struct buf                     scratch;
	uint32_t                       i;
	int                            rv;

	rv = proto_sched_bundle_req_unpack(env, req);
	buf_init(&scratch, reply->max);
	for (i = 0; rv == 0 && i < req->n_msgs; i++) {
		bool last = i + 1 == req->n_msgs;

		rv = proto_env_unpack(req->msgs[i].ptr, req->msgs[i].len, &in);
		if (rv == 0 && in.type != MSG_SCHED_RELEASE_REQ &&
		    !(last && in.type == MSG_SCHED_ACQUIRE_REQ))
			rv = -ERR_PROTO;
		if (rv != 0 && !last) {
			/* Refused alone; the rest still counts. */
			sched_count(s, MSG_SCHED_RELEASE_REQ, err_name(rv));
			log_warn("sched.bundle_refused", LOG_REQ(env->id),
			    LOG_I64("index", i), LOG_ERR(rv));
			rv = 0;
			continue;
		}
		if (rv != 0)
			break;
		buf_reset(&scratch);
		rv = sched_dispatch(s, &in, last ? reply : &scratch, true);
		if (!last)
			rv = 0;
	}
	buf_release(&scratch);
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
	sched_count(s, env->type, rv == 0 ? "ok" : err_name(rv));
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
