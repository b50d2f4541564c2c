/*
 * gw_info_test.c: the key-info request and the two answers built from
 * its reply: the models list, the usage probe with exact amounts, the
 * refusals and the transport failures.  Replies are packed with proto,
 * as the scheduler packs them, and the JSON is compared byte for byte.
 */
#include <stdio.h>

#include "err.h"
#include "gw_info.h"
#include "proto.h"
#include "t.h"

#define T_HASH \
	"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* A fresh OK reply for the caller to fill. */
static struct proto_sched_keyinfo_rep *
t_rep(void)
{
	struct proto_sched_keyinfo_rep *d = xcalloc(1, sizeof(*d));

	d->outcome = PROTO_ACQ_OK;
	snprintf(d->platform, sizeof(d->platform), "anthropic");
	return d;
}

/* Packs d, runs gw_info_answer(); the body into out, the status back. */
static int
t_answer(struct proto_sched_keyinfo_rep *d, const char *what, struct buf *out)
{
	struct buf b;
	int        status = -1;

	buf_init(&b, PROTO_MAX_MSG);
	T_OK(proto_sched_keyinfo_rep_pack(&b, "req-1", 0, d));
	buf_init(out, 1 << 20);
	T_OK(gw_info_answer(0, b.data, b.len, what, &status, out));
	buf_release(&b);
	free(d);
	return status;
}

static void
test_pack(void)
{
	struct proto_sched_keyinfo_req q;
	struct proto_env               env;
	struct buf                     b;

	buf_init(&b, PROTO_MAX_MSG);
	T_OK(gw_info_pack(&b, "req-7", 1764160000000, T_HASH, "usage"));
	T_OK(proto_env_unpack(b.data, b.len, &env));
	T_EQ_INT(env.type, MSG_SCHED_KEYINFO_REQ);
	T_EQ_STR(env.id, "req-7");
	T_EQ_INT(env.deadline_ms, 1764160000000);
	T_OK(proto_sched_keyinfo_req_unpack(&env, &q));
	T_EQ_STR(q.request_id, "req-7");
	T_EQ_STR(q.key_hash, T_HASH);
	T_EQ_STR(q.what, "usage");
	buf_reset(&b);
	T_OK(gw_info_pack(&b, NULL, 0, T_HASH, "models"));
	T_EQ_INT(gw_info_pack(&b, "r", 0, T_HASH, "balance"), -ERR_INVAL);
	T_EQ_INT(gw_info_pack(&b, "r", 0, "ABC", "models"), -ERR_INVAL);
	T_EQ_INT(gw_info_pack(&b, "r", 0, T_HASH T_HASH, "models"), -ERR_INVAL);
	T_EQ_INT(gw_info_pack(&b, "r", 0, NULL, "models"), -ERR_INVAL);
	buf_release(&b);
}

static void
test_models(void)
{
	struct proto_sched_keyinfo_rep *d = t_rep();
	struct buf                      out;

	d->n_models = 2;
	snprintf(d->models[0], sizeof(d->models[0]), "claude-a");
	snprintf(d->models[1], sizeof(d->models[1]), "odd\"name\\");
	T_EQ_INT(t_answer(d, "models", &out), 200);
	T_EQ_STR(buf_str(&out),
	    "{\"data\":["
	    "{\"type\":\"model\",\"id\":\"claude-a\","
	    "\"display_name\":\"claude-a\","
	    "\"created_at\":\"2025-01-01T00:00:00Z\"},"
	    "{\"type\":\"model\",\"id\":\"odd\\\"name\\\\\","
	    "\"display_name\":\"odd\\\"name\\\\\","
	    "\"created_at\":\"2025-01-01T00:00:00Z\"}],"
	    "\"has_more\":false,\"first_id\":\"claude-a\","
	    "\"last_id\":\"odd\\\"name\\\\\"}");
	buf_release(&out);

	d = t_rep();
	T_EQ_INT(t_answer(d, "models", &out), 200);
	T_EQ_STR(buf_str(&out),
	    "{\"data\":[],\"has_more\":false,\"first_id\":null,"
	    "\"last_id\":null}");
	buf_release(&out);
}

/* The usage body for balance and remaining given as decimal text. */
static void
t_usage(const char *bal, const char *rem, const char *want_bal,
    const char *want_rem)
{
	struct proto_sched_keyinfo_rep *d = t_rep();
	struct buf                      out;
	char                            want[512];

	snprintf(d->plan_name, sizeof(d->plan_name), "Pro \"plan\"");
	snprintf(d->balance, sizeof(d->balance), "%s", bal);
	snprintf(d->remaining, sizeof(d->remaining), "%s", rem);
	d->billing_type = 1;
	T_EQ_INT(t_answer(d, "usage", &out), 200);
	snprintf(want, sizeof(want),
	    "{\"isValid\":true,\"planName\":\"Pro \\\"plan\\\"\","
	    "\"remaining\":%s,\"unit\":\"USD\",\"balance\":%s}",
	    want_rem, want_bal);
	T_EQ_STR(buf_str(&out), want);
	buf_release(&out);
}

static void
test_usage(void)
{
	t_usage("12.5000000000", "12.5000000000", "12.5", "12.5");
	t_usage("3.0000000000", "-1", "3", "-1");
	t_usage("0.0000000000", "0", "0", "0");
	t_usage("-0.000", "007.0100", "0", "7.01");
	t_usage("-2.50", "0.0000000001", "-2.5", "0.0000000001");
	/* Past what a double holds exactly: still digit for digit. */
	t_usage("123456789012345678901234567890.123456789",
	    "9007199254740993.0000000001",
	    "123456789012345678901234567890.123456789",
	    "9007199254740993.0000000001");
}

/* An outcome refused with message: the status and body sent. */
static void
t_refused(int outcome, const char *msg, int want_status, const char *want)
{
	struct proto_sched_keyinfo_rep *d = xcalloc(1, sizeof(*d));
	struct buf                      out;

	d->outcome = outcome;
	snprintf(d->err_type, sizeof(d->err_type), "authentication_error");
	snprintf(d->err_message, sizeof(d->err_message), "%s", msg);
	T_EQ_INT(t_answer(d, "models", &out), want_status);
	T_EQ_STR(buf_str(&out), want);
	buf_release(&out);
}

#define T_ERR(type, msg)                                  \
	"{\"type\":\"error\",\"error\":{\"type\":\"" type \
	"\",\"message\":\"" msg "\"}}"

static void
test_refusals(void)
{
	t_refused(PROTO_ACQ_AUTH, "Invalid API key", 401,
	    T_ERR("authentication_error", "Invalid API key"));
	t_refused(PROTO_ACQ_AUTH, "API key disabled", 401,
	    T_ERR("authentication_error", "API key is disabled"));
	t_refused(PROTO_ACQ_AUTH, "User not found", 401,
	    T_ERR("authentication_error", "User not found"));
	t_refused(PROTO_ACQ_AUTH, "User account disabled", 401,
	    T_ERR("authentication_error", "User is not active"));
	t_refused(PROTO_ACQ_FORBIDDEN, "No active subscription for this group",
	    403,
	    T_ERR("subscription_error", "Subscription is invalid or expired"));
	t_refused(PROTO_ACQ_BALANCE, "x", 403,
	    T_ERR("billing_error", "Insufficient account balance"));
	t_refused(PROTO_ACQ_INTERNAL, "Internal error", 500,
	    T_ERR("api_error", "Internal server error"));
	t_refused(99, "?", 500, T_ERR("api_error", "Internal server error"));
}

static void
test_transport_errors(void)
{
	static const char garbage[] = "not msgpack";
	struct buf        out, b;
	int               status = -1;

	/* No reply at all. */
	buf_init(&out, 4096);
	T_OK(gw_info_answer(-ERR_TIMEDOUT, NULL, 0, "usage", &status, &out));
	T_EQ_INT(status, 503);
	T_EQ_STR(buf_str(&out), T_ERR("api_error", "No available accounts"));

	/* Bytes that do not decode, appended after what body held. */
	buf_reset(&out);
	T_OK(buf_addstr(&out, "x"));
	status = -1;
	T_OK(gw_info_answer(
	    0, garbage, sizeof(garbage) - 1, "models", &status, &out));
	T_EQ_INT(status, 503);
	T_EQ_STR(
	    buf_str(&out), "x" T_ERR("api_error", "No available accounts"));

	/* The scheduler's ERROR_REP (a request it could not read). */
	buf_init(&b, 4096);
	T_OK(proto_reply_error(&b, "req-1", -ERR_PROTO, NULL));
	buf_reset(&out);
	status = -1;
	T_OK(gw_info_answer(0, b.data, b.len, "usage", &status, &out));
	T_EQ_INT(status, 503);
	T_EQ_STR(buf_str(&out), T_ERR("api_error", "No available accounts"));
	buf_release(&b);

	/* Another what writes nothing. */
	buf_reset(&out);
	T_EQ_INT(
	    gw_info_answer(0, NULL, 0, "balance", &status, &out), -ERR_INVAL);
	T_EQ_INT(out.len, 0);
	buf_release(&out);
}

static void
test_body_cap(void)
{
	struct proto_sched_keyinfo_rep *d = t_rep();
	struct buf                      b, out;
	uint32_t                        i;
	int                             status = -1;

	d->n_models = PROTO_MODELS_MAX;
	for (i = 0; i < d->n_models; i++)
		snprintf(d->models[i], sizeof(d->models[i]), "model-%u", i);
	buf_init(&b, PROTO_MAX_MSG);
	T_OK(proto_sched_keyinfo_rep_pack(&b, "r", 0, d));
	buf_init(&out, 256);
	T_EQ_INT(gw_info_answer(0, b.data, b.len, "models", &status, &out),
	    -ERR_TOOBIG);
	T_EQ_INT(status, -1);
	buf_release(&out);
	buf_release(&b);
	free(d);
}

T_MAIN(T_CASE(test_pack), T_CASE(test_models), T_CASE(test_usage),
    T_CASE(test_refusals), T_CASE(test_transport_errors), T_CASE(test_body_cap))
