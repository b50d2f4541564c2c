/*
 * sched_rep.c: the scheduler's request dispatcher.
 *
 * One switch over the envelope's type; every case is decode, handle,
 * reply.  Runs on nng worker threads, one request per REP context, so the
 * handlers share nothing but the thread-safe pools and metrics.
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
	switch (env.type) {
	case MSG_PING_REQ:
		rv = sched_on_ping(s, &env, reply);
		break;
	case MSG_SCHED_ACQUIRE_REQ:
		rv = sched_on_acquire(s, &env, reply);
		break;
	case MSG_SCHED_RENEW_REQ:
		rv = sched_on_renew(s, &env, reply);
		break;
	case MSG_SCHED_RELEASE_REQ:
		rv = sched_on_release(s, &env, reply);
		break;
	case MSG_SCHED_KEYINFO_REQ:
		rv = sched_on_keyinfo(s, &env, reply);
		break;
	default:
		log_warn("proto.unexpected_type", LOG_REQ(env.id),
		    LOG_I64("type", env.type),
		    LOG_STR("name", proto_msg_name(env.type)));
		rv = -ERR_PROTO;
		break;
	}
	sched_count(s, env.type, rv == 0 ? "ok" : err_name(rv));
	if (rv != 0) {
		buf_reset(reply);
		return proto_reply_error(reply, env.id, rv, NULL);
	}
	return 0;
}
