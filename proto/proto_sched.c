/*
 * proto_sched.c: field tables of the gateway <-> scheduler messages
 * (acquire, renew, release, key info).  The codec itself is in proto_codec.c;
 * this file says which keys each message has, how each is typed and bounded,
 * and which are optional, plus the semantic checks the types cannot say.
 */
#include "err.h"
#include "proto_int.h"

/* The api key hash is a lowercase hex sha256: exactly 64 digits. */
static int
proto_sched_check_key_hash(const char *key_hash)
{
	size_t i;

	if (strlen(key_hash) != 64)
		return -ERR_PROTO;
	for (i = 0; i < 64; i++) {
		char c = key_hash[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return -ERR_PROTO;
	}
	return 0;
}

static int
proto_sched_check_acquire_req(const void *msg)
{
	const struct proto_sched_acquire_req *m = msg;

	return proto_sched_check_key_hash(m->key_hash);
}

static int
proto_sched_check_keyinfo_req(const void *msg)
{
	const struct proto_sched_keyinfo_req *m = msg;

	if (strcmp(m->what, "models") != 0 && strcmp(m->what, "usage") != 0)
		return -ERR_PROTO;
	return proto_sched_check_key_hash(m->key_hash);
}

/*
 * Money travels as exact decimal text, which the gateway writes into JSON
 * as a number: "" (no value), or an optional '-', digits, and an optional
 * '.' followed by digits.  Anything else could not be written verbatim.
 */
static bool
proto_sched_decimal_ok(const char *s)
{
	size_t n;

	if (*s == '\0')
		return true;
	if (*s == '-')
		s++;
	for (n = 0; *s >= '0' && *s <= '9'; s++)
		n++;
	if (n == 0)
		return false;
	if (*s == '.') {
		s++;
		for (n = 0; *s >= '0' && *s <= '9'; s++)
			n++;
		if (n == 0)
			return false;
	}
	return *s == '\0';
}

static int
proto_sched_check_keyinfo_rep(const void *msg)
{
	const struct proto_sched_keyinfo_rep *m = msg;

	if (!proto_sched_decimal_ok(m->balance) ||
	    !proto_sched_decimal_ok(m->remaining))
		return -ERR_PROTO;
	return 0;
}

#define T struct proto_sched_acquire_req
static const struct proto_field proto_sched_acquire_req_fields[] = {
    PROTO_F_STR(T, "rid", request_id, 0),
    PROTO_F_STR(T, "key", key_hash, 0),
    PROTO_F_STR(T, "plat", platform, PROTO_OPT),
    PROTO_F_STR(T, "model", model, 0),
    PROTO_F_STR(T, "sess", session_hash, PROTO_OPT),
    PROTO_F_SCALAR(T, "stream", PROTO_K_BOOL, stream, 0),
    PROTO_F_STR(T, "ip", client_ip, 0),
    PROTO_F_STR(T, "ua", user_agent, PROTO_OPT),
    PROTO_F_ARR(T, "excl", PROTO_K_I64_ARR, excluded, n_excluded, 0),
    PROTO_F_SCALAR(T, "wait", PROTO_K_U32, wait_ms, 0),
    PROTO_F_SCALAR(T, "probe", PROTO_K_BOOL, probe, PROTO_OPT),
};
#undef T
PROTO_DESC(sched_acquire_req, proto_sched_acquire_req_fields,
    proto_sched_check_acquire_req);

#define T struct proto_sched_acquire_rep
static const struct proto_field proto_sched_acquire_rep_fields[] = {
    PROTO_F_SCALAR(T, "out", PROTO_K_I32, outcome, 0),
    PROTO_F_STR(T, "etype", err_type, PROTO_OPT),
    PROTO_F_STR(T, "emsg", err_message, PROTO_OPT),
    PROTO_F_SCALAR(T, "uid", PROTO_K_I64, user_id, 0),
    PROTO_F_SCALAR(T, "kid", PROTO_K_I64, api_key_id, 0),
    PROTO_F_SCALAR(T, "gid", PROTO_K_I64, group_id, 0),
    PROTO_F_SCALAR(T, "aid", PROTO_K_I64, account_id, 0),
    PROTO_F_STR(T, "plat", platform, 0),
    PROTO_F_STR(T, "atype", account_type, 0),
    PROTO_F_STR(T, "url", base_url, 0),
    PROTO_F_STR(T, "umodel", upstream_model, 0),
    PROTO_F_BIN(T, "cred", credential, credential_len, 0),
    PROTO_F_STR(T, "proxy", proxy_url, PROTO_OPT),
    PROTO_F_STR(T, "lease", lease_id, 0),
    PROTO_F_SCALAR(T, "ttl", PROTO_K_U32, lease_ttl_ms, 0),
    PROTO_F_SCALAR(T, "rate", PROTO_K_I64, rate_micro, 0),
    PROTO_F_SCALAR(T, "btype", PROTO_K_I32, billing_type, 0),
    PROTO_F_SCALAR(T, "sid", PROTO_K_I64, subscription_id, PROTO_OPT),
    PROTO_F_SCALAR(T, "ff", PROTO_K_BOOL, fail_fast, PROTO_OPT),
};
#undef T
PROTO_DESC(sched_acquire_rep, proto_sched_acquire_rep_fields, NULL);

#define T struct proto_sched_renew_req
static const struct proto_field proto_sched_renew_req_fields[] = {
    PROTO_F_ARR(T, "leases", PROTO_K_STR_ARR, leases, n_leases, 0),
};
#undef T
PROTO_DESC(sched_renew_req, proto_sched_renew_req_fields, NULL);

#define T struct proto_sched_renew_rep
static const struct proto_field proto_sched_renew_rep_fields[] = {
    PROTO_F_ARR(T, "ok", PROTO_K_STR_ARR, renewed, n_renewed, 0),
    PROTO_F_ARR(T, "lost", PROTO_K_STR_ARR, lost, n_lost, 0),
    PROTO_F_SCALAR(T, "ttl", PROTO_K_U32, ttl_ms, 0),
};
#undef T
PROTO_DESC(sched_renew_rep, proto_sched_renew_rep_fields, NULL);

#define T struct proto_sched_release_req
static const struct proto_field proto_sched_release_req_fields[] = {
    PROTO_F_STR(T, "rid", request_id, PROTO_OPT),
    PROTO_F_STR(T, "lease", lease_id, 0),
    PROTO_F_SCALAR(T, "aid", PROTO_K_I64, account_id, 0),
    PROTO_F_SCALAR(T, "status", PROTO_K_I32, http_status, 0),
    PROTO_F_STR(T, "eclass", err_class, PROTO_OPT),
    PROTO_F_SCALAR(T, "dur", PROTO_K_I64, duration_ms, 0),
    PROTO_F_SCALAR(T, "reset", PROTO_K_I64, reset_unix, PROTO_OPT),
    PROTO_F_SCALAR(T, "retry", PROTO_K_I64, retry_after_s, PROTO_OPT),
    PROTO_F_ARR(T, "hdrs", PROTO_K_HEADERS, headers, n_headers, 0),
    PROTO_F_STR(T, "emsg", err_message, PROTO_OPT),
    PROTO_F_SCALAR(T, "wc", PROTO_K_BOOL, wait_cancel, PROTO_OPT),
};
#undef T
PROTO_DESC(sched_release_req, proto_sched_release_req_fields, NULL);

#define T struct proto_sched_release_rep
static const struct proto_field proto_sched_release_rep_fields[] = {
    PROTO_F_SCALAR(T, "ok", PROTO_K_BOOL, released, 0),
    PROTO_F_STR(T, "state", state, PROTO_OPT),
};
#undef T
PROTO_DESC(sched_release_rep, proto_sched_release_rep_fields, NULL);

static int
proto_sched_check_bundle_req(const void *msg)
{
	const struct proto_sched_bundle_req *m = msg;

	return m->n_msgs >= 1 ? 0 : -ERR_PROTO;
}

#define T struct proto_sched_bundle_req
static const struct proto_field proto_sched_bundle_req_fields[] = {
    PROTO_F_ARR(T, "msgs", PROTO_K_BLOBS, msgs, n_msgs, 0),
};
#undef T
PROTO_DESC(sched_bundle_req, proto_sched_bundle_req_fields,
    proto_sched_check_bundle_req);

#define T struct proto_sched_keyinfo_req
static const struct proto_field proto_sched_keyinfo_req_fields[] = {
    PROTO_F_STR(T, "rid", request_id, 0),
    PROTO_F_STR(T, "key", key_hash, 0),
    PROTO_F_STR(T, "what", what, 0),
};
#undef T
PROTO_DESC(sched_keyinfo_req, proto_sched_keyinfo_req_fields,
    proto_sched_check_keyinfo_req);

#define T struct proto_sched_keyinfo_rep
static const struct proto_field proto_sched_keyinfo_rep_fields[] = {
    PROTO_F_SCALAR(T, "out", PROTO_K_I32, outcome, 0),
    PROTO_F_STR(T, "etype", err_type, PROTO_OPT),
    PROTO_F_STR(T, "emsg", err_message, PROTO_OPT),
    PROTO_F_STR(T, "plat", platform, 0),
    PROTO_F_ARR(T, "models", PROTO_K_STR_ARR, models, n_models, 0),
    PROTO_F_STR(T, "plan", plan_name, 0),
    PROTO_F_STR(T, "bal", balance, 0),
    PROTO_F_SCALAR(T, "btype", PROTO_K_I32, billing_type, 0),
    PROTO_F_STR(T, "rem", remaining, 0),
};
#undef T
PROTO_DESC(sched_keyinfo_rep, proto_sched_keyinfo_rep_fields,
    proto_sched_check_keyinfo_rep);
