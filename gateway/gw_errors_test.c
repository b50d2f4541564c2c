/*
 * gw_errors_test.c: error envelopes, the status table, upstream mapping,
 * ops classification and API-key extraction.
 */
#include <jansson.h>
#include <strings.h>

#include "err.h"
#include "gw_errors.h"
#include "proto.h"
#include "t.h"

/* A request's headers or query as name/value pairs, NULL-terminated. */
static const char *
lookup_cb(void *arg, const char *name)
{
	const char *const *kv = arg;

	for (; kv != NULL && kv[0] != NULL; kv += 2) {
		if (strcasecmp(kv[0], name) == 0)
			return kv[1];
	}
	return NULL;
}

static void
test_envelope_escaped(void)
{
	struct buf b;
	json_t    *j;

	buf_init(&b, 4096);
	T_OK(gw_err_anthropic(&b, "invalid_request_error", "bad \"x\"\n\\"));
	T_EQ_STR(buf_str(&b),
	    "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\","
	    "\"message\":\"bad \\\"x\\\"\\n\\\\\"}}");
	j = json_loads(buf_str(&b), 0, NULL);
	T_ASSERT(j != NULL);
	T_EQ_STR(json_string_value(
	             json_object_get(json_object_get(j, "error"), "message")),
	    "bad \"x\"\n\\");
	json_decref(j);
	buf_reset(&b);
	T_OK(gw_err_anthropic(&b, NULL, NULL));
	T_EQ_STR(buf_str(&b),
	    "{\"type\":\"error\",\"error\":{\"type\":\"\",\"message\":\"\"}}");
	buf_release(&b);
}

static void
test_envelope_cap(void)
{
	struct buf b;

	buf_init(&b, 32);
	T_EQ_INT(gw_err_anthropic(&b, "api_error", "a long message here"),
	    -ERR_TOOBIG);
	T_EQ_INT(b.len, 0);
	buf_release(&b);
}

static void
test_sse_event(void)
{
	struct buf b;

	buf_init(&b, 4096);
	T_OK(gw_err_sse_event(&b, "overloaded_error", "Overloaded"));
	T_EQ_STR(buf_str(&b),
	    "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":"
	    "\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n");
	buf_release(&b);
}

static void
test_table(void)
{
	const struct gw_err_info *e;
	int                       i;

	for (i = 0; i < GW_E_MAX_; i++) {
		e = gw_err_info((enum gw_err_code)i);
		T_ASSERT(e->status >= 400 && e->status <= 599);
		T_ASSERT(e->type[0] != '\0' && e->message[0] != '\0');
		T_ASSERT(e->name[0] != '\0');
	}
	e = gw_err_info(GW_E_NO_ACCOUNTS);
	T_EQ_INT(e->status, 503);
	T_EQ_STR(e->type, "api_error");
	T_EQ_STR(e->name, "NO_ACCOUNTS");
	T_EQ_INT(gw_err_info(GW_E_BODY_TOO_LARGE)->status, 413);
	T_EQ_STR(gw_err_info(GW_E_BODY_TOO_LARGE)->type, "request_too_large");
	T_EQ_INT(gw_err_info(GW_E_API_KEY_REQUIRED)->status, 401);
	T_EQ_INT(gw_err_info(GW_E_INSUFFICIENT_BALANCE)->status, 403);
	T_EQ_STR(gw_err_info(GW_E_INSUFFICIENT_BALANCE)->type, "billing_error");
	T_EQ_INT(gw_err_info(GW_E_UPSTREAM_OVERLOADED)->status, 529);
	/* Out of range falls back to INTERNAL. */
	T_EQ_STR(gw_err_info(GW_E_MAX_)->name, "INTERNAL");
	T_EQ_STR(gw_err_info((enum gw_err_code) - 1)->name, "INTERNAL");
}

static const struct {
	int         status;
	const char *type;
} type_for_status_cases[] = {
    {400, "invalid_request_error"},
    {401, "authentication_error"},
    {402, "billing_error"},
    {403, "permission_error"},
    {404, "not_found_error"},
    {413, "request_too_large"},
    {422, "invalid_request_error"},
    {429, "rate_limit_error"},
    {500, "api_error"},
    {502, "upstream_error"},
    {503, "api_error"},
    {504, "timeout_error"},
    {529, "overloaded_error"},
    {200, "api_error"},
};

static void
test_type_for_status(void)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(type_for_status_cases); i++)
		T_EQ_STR(
		    gw_err_type_for_status(type_for_status_cases[i].status),
		    type_for_status_cases[i].type);
}

static const struct {
	int              status;
	enum gw_err_code code;
} map_upstream_cases[] = {
    {401, GW_E_UPSTREAM_AUTH},
    {402, GW_E_UPSTREAM_FORBIDDEN},
    {403, GW_E_UPSTREAM_FORBIDDEN},
    {404, GW_E_NOT_FOUND},
    {413, GW_E_BODY_TOO_LARGE},
    {429, GW_E_UPSTREAM_RATE_LIMIT},
    {500, GW_E_UPSTREAM_UNAVAILABLE},
    {502, GW_E_UPSTREAM_UNAVAILABLE},
    {503, GW_E_UPSTREAM_UNAVAILABLE},
    {504, GW_E_UPSTREAM_TIMEOUT},
    {529, GW_E_UPSTREAM_OVERLOADED},
    {418, GW_E_UPSTREAM_FAILED},
    {599, GW_E_UPSTREAM_FAILED},
};

static void
test_map_upstream(void)
{
	enum gw_err_code code = GW_E_MAX_;
	size_t           i;

	T_ASSERT(gw_err_map_upstream(400, &code));
	T_EQ_INT(code, GW_E_MAX_); /* untouched on passthrough */
	for (i = 0; i < ARRAY_SIZE(map_upstream_cases); i++) {
		T_ASSERT(
		    !gw_err_map_upstream(map_upstream_cases[i].status, &code));
		T_EQ_INT(code, map_upstream_cases[i].code);
	}
	T_EQ_INT(gw_err_info(GW_E_UPSTREAM_RATE_LIMIT)->status, 429);
	T_EQ_STR(
	    gw_err_info(GW_E_UPSTREAM_OVERLOADED)->type, "overloaded_error");
	T_EQ_STR(
	    gw_err_info(GW_E_UPSTREAM_UNAVAILABLE)->type, "upstream_error");
}

static void
test_failover(void)
{
	T_ASSERT(gw_err_is_failover(401));
	T_ASSERT(gw_err_is_failover(403));
	T_ASSERT(gw_err_is_failover(429));
	T_ASSERT(gw_err_is_failover(529));
	T_ASSERT(gw_err_is_failover(500));
	T_ASSERT(gw_err_is_failover(503));
	T_ASSERT(!gw_err_is_failover(400));
	T_ASSERT(!gw_err_is_failover(404));
	T_ASSERT(!gw_err_is_failover(413));
	T_ASSERT(!gw_err_is_failover(200));
}

static const struct {
	int         status;
	const char *type, *msg, *phase, *sev;
} classify_cases[] = {
    {401, "authentication_error", "Invalid API key", "auth", "P3"},
    {403, "permission_error", "x", "auth", "P2"},
    {403, "billing_error", "Insufficient balance", "billing", "P3"},
    {403, "subscription_error", "none", "billing", "P3"},
    {429, "rate_limit_error", "Concurrency limit exceeded", "concurrency",
        "P1"},
    {429, "rate_limit_error", "too many PENDING requests", "concurrency", "P1"},
    {429, "rate_limit_error", "Upstream rate limit exceeded", "upstream", "P1"},
    {400, "invalid_request_error", "bad", "response", "P3"},
    {404, "not_found_error", "nope", "response", "P2"},
    {413, "request_too_large", "big", "response", "P2"},
    {502, "upstream_error", "failed", "upstream", "P1"},
    {529, "overloaded_error", "busy", "upstream", "P1"},
    {504, "timeout_error", "slow", "upstream", "P1"},
    {503, "api_error", "No available accounts", "scheduling", "P1"},
    {500, "api_error", "Internal server error", "internal", "P1"},
    {500, NULL, NULL, "internal", "P1"},
    {418, "weird_error", NULL, "internal", "P2"},
};

static void
test_classify(void)
{
	const char *phase, *sev;
	size_t      i;

	for (i = 0; i < ARRAY_SIZE(classify_cases); i++) {
		gw_err_classify(classify_cases[i].status,
		    classify_cases[i].type, classify_cases[i].msg, &phase,
		    &sev);
		T_EQ_STR(phase, classify_cases[i].phase);
		T_EQ_STR(sev, classify_cases[i].sev);
	}
	/* Every table row classifies to a known phase. */
	for (i = 0; i < GW_E_MAX_; i++) {
		const struct gw_err_info *e = gw_err_info((enum gw_err_code)i);

		gw_err_classify(e->status, e->type, e->message, &phase, &sev);
		T_ASSERT(strcmp(phase, "internal") != 0 || i == GW_E_INTERNAL);
	}
	gw_err_classify_auth(401, &phase, &sev);
	T_EQ_STR(phase, "auth");
	T_EQ_STR(sev, "P3");
	gw_err_classify_auth(403, &phase, &sev);
	T_EQ_STR(phase, "billing");
	T_EQ_STR(sev, "P3");
	gw_err_classify_auth(429, &phase, &sev);
	T_EQ_STR(phase, "billing");
	T_EQ_STR(sev, "P2");
	gw_err_classify_auth(500, &phase, &sev);
	T_EQ_STR(phase, "internal");
	T_EQ_STR(sev, "P1");
}

static void
test_key_order(void)
{
	const char *all[] = {"Authorization", "Bearer sk-bearer", "x-api-key",
	    "sk-xapi", "x-goog-api-key", "sk-goog", NULL};
	const char *q[] = {"key", "sk-qkey", "api_key", "sk-qapi", NULL};
	const char *q2[] = {"api_key", "sk-qapi", NULL};
	const char *xapi[] = {
	    "x-api-key", "sk-final", "x-goog-api-key", "sk-goog", NULL};
	const char     *goog[] = {"x-goog-api-key", "gem-key-123", NULL};
	const char     *none[] = {NULL};
	char            k[GW_ERR_KEY_MAX + 1];
	enum gw_key_src src;

	T_OK(gw_err_extract_key(
	    lookup_cb, all, lookup_cb, q, k, sizeof(k), &src));
	T_EQ_STR(k, "sk-bearer");
	T_EQ_INT(src, GW_KEY_BEARER);
	T_OK(gw_err_extract_key(
	    lookup_cb, xapi, lookup_cb, q, k, sizeof(k), &src));
	T_EQ_STR(k, "sk-final");
	T_EQ_INT(src, GW_KEY_X_API_KEY);
	T_OK(gw_err_extract_key(
	    lookup_cb, goog, lookup_cb, q, k, sizeof(k), &src));
	T_EQ_STR(k, "gem-key-123");
	T_EQ_INT(src, GW_KEY_X_GOOG_API_KEY);
	T_OK(gw_err_extract_key(
	    lookup_cb, none, lookup_cb, q, k, sizeof(k), &src));
	T_EQ_STR(k, "sk-qkey");
	T_EQ_INT(src, GW_KEY_QUERY_KEY);
	T_OK(gw_err_extract_key(
	    lookup_cb, none, lookup_cb, q2, k, sizeof(k), &src));
	T_EQ_STR(k, "sk-qapi");
	T_EQ_INT(src, GW_KEY_QUERY_API_KEY);
	T_EQ_INT(gw_err_extract_key(
	             lookup_cb, none, lookup_cb, none, k, sizeof(k), &src),
	    -ERR_MISSING);
	T_EQ_INT(
	    gw_err_extract_key(lookup_cb, none, NULL, NULL, k, sizeof(k), NULL),
	    -ERR_MISSING);
}

static void
test_key_bearer_forms(void)
{
	const char *lower[] = {"authorization", "  bearer \t sk-x  ", NULL};
	const char *basic[] = {"authorization", "Basic dXNlcjpwYXNz",
	    "x-api-key", "sk-fallback", NULL};
	const char *empty[] = {
	    "authorization", "Bearer   ", "x-api-key", " sk-trim ", NULL};
	const char *noarg[] = {"authorization", "Bearer", NULL};
	const char *ctl[] = {"x-api-key", "sk-\x01", NULL};
	char        k[GW_ERR_KEY_MAX + 1];
	char        small[4];

	T_OK(gw_err_extract_key(
	    lookup_cb, lower, NULL, NULL, k, sizeof(k), NULL));
	T_EQ_STR(k, "sk-x");
	T_OK(gw_err_extract_key(
	    lookup_cb, basic, NULL, NULL, k, sizeof(k), NULL));
	T_EQ_STR(k, "sk-fallback");
	T_OK(gw_err_extract_key(
	    lookup_cb, empty, NULL, NULL, k, sizeof(k), NULL));
	T_EQ_STR(k, "sk-trim");
	T_EQ_INT(gw_err_extract_key(
	             lookup_cb, noarg, NULL, NULL, k, sizeof(k), NULL),
	    -ERR_MISSING);
	T_EQ_INT(
	    gw_err_extract_key(lookup_cb, ctl, NULL, NULL, k, sizeof(k), NULL),
	    -ERR_INVAL);
	T_EQ_INT(gw_err_extract_key(
	             lookup_cb, lower, NULL, NULL, small, sizeof(small), NULL),
	    -ERR_TOOBIG);
}

static void
test_key_too_long(void)
{
	char        big[GW_ERR_KEY_MAX + 2];
	const char *h[] = {"x-api-key", big, NULL};
	char        k[GW_ERR_KEY_MAX + 8];

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	k[0] = 'Z';
	T_EQ_INT(
	    gw_err_extract_key(lookup_cb, h, NULL, NULL, k, sizeof(k), NULL),
	    -ERR_TOOBIG);
	T_EQ_INT(k[0], 'Z'); /* nothing written on failure */
	big[GW_ERR_KEY_MAX] = '\0';
	T_OK(gw_err_extract_key(lookup_cb, h, NULL, NULL, k, sizeof(k), NULL));
	T_EQ_INT(strlen(k), GW_ERR_KEY_MAX);
}

/* Scheduler refusals: BUSY says which limit was hit; QUEUE_FULL at once. */
static void
test_refusal(void)
{
	const struct gw_err_info *e;

	T_EQ_INT(gw_err_from_refusal(PROTO_ACQ_BUSY,
	             "Concurrency limit exceeded for API key, please retry "
	             "later"),
	    GW_E_CONCURRENCY_KEY);
	T_EQ_INT(gw_err_from_refusal(PROTO_ACQ_BUSY,
	             "Concurrency limit exceeded for user, please retry later"),
	    GW_E_CONCURRENCY_USER);
	T_EQ_INT(gw_err_from_refusal(PROTO_ACQ_BUSY, "for account"),
	    GW_E_CONCURRENCY_LIMIT);
	T_EQ_INT(
	    gw_err_from_refusal(PROTO_ACQ_BUSY, NULL), GW_E_CONCURRENCY_LIMIT);
	T_EQ_INT(
	    gw_err_from_refusal(PROTO_ACQ_QUEUE_FULL, "x"), GW_E_QUEUE_FULL);
	e = gw_err_info(GW_E_QUEUE_FULL);
	T_EQ_INT(e->status, 429);
	T_EQ_STR(e->type, "rate_limit_error");
	T_EQ_STR(e->message, "Too many pending requests, please retry later");
	e = gw_err_info(GW_E_CONCURRENCY_KEY);
	T_EQ_INT(e->status, 429);
	T_ASSERT(strstr(e->message, "for API key") != NULL);
}

/* One refusal of the money gate: its code, status, type and message. */
static void
t_money(int outcome, const char *msg, enum gw_err_code want, int status,
    const char *type, const char *text)
{
	const struct gw_err_info *e;

	T_EQ_INT(gw_err_from_refusal(outcome, msg), want);
	e = gw_err_info(want);
	T_EQ_INT(e->status, status);
	T_EQ_STR(e->type, type);
	T_ASSERT(strstr(e->message, text) != NULL);
}

/* The money gate's refusals (sched_acquire.c's messages). */
static void
test_refusal_money(void)
{
	t_money(PROTO_ACQ_FORBIDDEN, "API key has expired",
	    GW_E_API_KEY_EXPIRED, 403, "permission_error",
	    "API key has expired");
	/* An older scheduler said it as AUTH: now 403 as well. */
	t_money(PROTO_ACQ_AUTH, "API key expired", GW_E_API_KEY_EXPIRED, 403,
	    "permission_error", "expired");
	t_money(PROTO_ACQ_AUTH, "API key disabled", GW_E_API_KEY_DISABLED, 401,
	    "authentication_error", "disabled");
	t_money(PROTO_ACQ_AUTH, "User account disabled", GW_E_USER_INACTIVE,
	    401, "authentication_error", "not active");
	t_money(PROTO_ACQ_FORBIDDEN, "API key group disabled",
	    GW_E_SUBSCRIPTION_INVALID, 403, "subscription_error", "invalid");
	t_money(PROTO_ACQ_QUOTA,
	    "API key quota exhausted (API_KEY_QUOTA_EXHAUSTED)",
	    GW_E_API_KEY_QUOTA_EXHAUSTED, 429, "rate_limit_error",
	    "API_KEY_QUOTA_EXHAUSTED");
	t_money(PROTO_ACQ_QUOTA,
	    "Daily usage limit exceeded (DAILY_LIMIT_EXCEEDED)",
	    GW_E_DAILY_LIMIT_EXCEEDED, 429, "rate_limit_error",
	    "DAILY_LIMIT_EXCEEDED");
	t_money(PROTO_ACQ_QUOTA,
	    "Weekly usage limit exceeded (WEEKLY_LIMIT_EXCEEDED)",
	    GW_E_WEEKLY_LIMIT_EXCEEDED, 429, "rate_limit_error",
	    "WEEKLY_LIMIT_EXCEEDED");
	t_money(PROTO_ACQ_QUOTA,
	    "Monthly usage limit exceeded (MONTHLY_LIMIT_EXCEEDED)",
	    GW_E_MONTHLY_LIMIT_EXCEEDED, 429, "rate_limit_error",
	    "MONTHLY_LIMIT_EXCEEDED");
	t_money(PROTO_ACQ_QUOTA, NULL, GW_E_USAGE_LIMIT_EXCEEDED, 429,
	    "rate_limit_error", "Usage limit exceeded");
	t_money(PROTO_ACQ_BALANCE, "Insufficient account balance",
	    GW_E_INSUFFICIENT_BALANCE, 403, "billing_error",
	    "Insufficient account balance");
	t_money(PROTO_ACQ_BALANCE, "No active subscription for this group",
	    GW_E_SUBSCRIPTION_NOT_FOUND, 403, "subscription_error",
	    "No active subscription");
	t_money(PROTO_ACQ_BALANCE,
	    "Subscription is invalid or expired (SUBSCRIPTION_INVALID)",
	    GW_E_SUBSCRIPTION_INVALID, 403, "subscription_error",
	    "invalid or expired");
}

T_MAIN(T_CASE(test_envelope_escaped), T_CASE(test_envelope_cap),
    T_CASE(test_sse_event), T_CASE(test_table), T_CASE(test_type_for_status),
    T_CASE(test_map_upstream), T_CASE(test_failover), T_CASE(test_classify),
    T_CASE(test_key_order), T_CASE(test_key_bearer_forms),
    T_CASE(test_key_too_long), T_CASE(test_refusal), T_CASE(test_refusal_money))
