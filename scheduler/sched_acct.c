/*
 * sched_acct.c: the accounts side of an acquire and of a release.
 *
 * Candidates come straight from PostgreSQL on each acquire (one indexed
 * query): account state changes with every upstream 429, so a cache
 * would need its own invalidation and is left for the full policy.  The
 * schedulable predicate is the original's: active, schedulable, and no
 * rate-limit, overload or temporary pause still running.
 *
 * Credentials are opened (AES-256-GCM, associated data naming the row)
 * only for the candidates looked at, and what the gateway needs is
 * written into the reply as a small JSON object:
 *
 *   {"type":"apikey","api_key":"..."}      type apikey
 *   {"type":"oauth","access_token":"..."}  types oauth and setup-token
 *
 * The plaintext is wiped as soon as it is parsed (jansson's own copies
 * of the strings are freed but not wiped: best effort).  Secrets are
 * never logged; failures name the account id only.
 *
 * last_used_at is set with one UPDATE by primary key on the connection
 * the acquire already holds, after the slot is taken; the original
 * batches it every 10 s, which can come later if it ever shows up in
 * profiles (the LRU order wants it current).
 */
#include <jansson.h>
#include <stdio.h>

#include "err.h"
#include "log.h"
#include "sched.h"

#define SCHED_RESET_MAX_S (7 * 86400)

static const char sched_acct_list_sql[] =
    "SELECT a.id, a.concurrency, a.type, a.credentials_enc"
    " FROM accounts a"
    " JOIN account_groups ag ON ag.account_id = a.id"
    " AND ag.group_id = $1::bigint"
    " WHERE a.deleted_at IS NULL AND a.status = 'active' AND a.schedulable"
    " AND a.platform = $2"
    " AND (a.rate_limit_reset_at IS NULL OR a.rate_limit_reset_at <= now())"
    " AND (a.overload_until IS NULL OR a.overload_until <= now())"
    " AND (a.temp_unschedulable_until IS NULL"
    "  OR a.temp_unschedulable_until <= now())"
    " AND NOT (a.id = ANY ($3::bigint[]))"
    " ORDER BY a.priority, a.last_used_at NULLS FIRST, a.id"
    " LIMIT $4::integer";

int
sched_acct_list(struct pg_conn *conn, int64_t gid, const char *platform,
    const int64_t *excl, size_t nexcl, size_t cap, struct sched_cand **out,
    size_t *n)
{
	char               g[24], lim[24];
	char               arr[2 + PROTO_EXCLUDED_MAX * 22];
	const char        *params[4];
	struct sched_cand *c;
	PGresult          *res;
	size_t             i, len = 0, rows;
	int                rv;

	ASSERT(nexcl <= PROTO_EXCLUDED_MAX);
	arr[len++] = '{';
	for (i = 0; i < nexcl; i++)
		len += (size_t)snprintf(arr + len, sizeof(arr) - len, "%s%lld",
		    i > 0 ? "," : "", (long long)excl[i]);
	snprintf(arr + len, sizeof(arr) - len, "}");
	snprintf(g, sizeof(g), "%lld", (long long)gid);
	snprintf(lim, sizeof(lim), "%zu", cap);
	params[0] = g;
	params[1] = platform;
	params[2] = arr;
	params[3] = lim;
	rv = pg_exec(conn, sched_acct_list_sql, 4, params, &res);
	if (rv != 0) {
		log_warn("sched.account_query_failed", LOG_ERR(rv),
		    LOG_STR("detail", pg_errmsg(conn)));
		return rv;
	}
	rows = (size_t)PQntuples(res);
	c = xcalloc(rows == 0 ? 1 : rows, sizeof(*c));
	for (i = 0; i < rows; i++) {
		c[i].id = strtoll(PQgetvalue(res, (int)i, 0), NULL, 10);
		c[i].concurrency =
		    (int32_t)strtol(PQgetvalue(res, (int)i, 1), NULL, 10);
		snprintf(c[i].type, sizeof(c[i].type), "%s",
		    PQgetvalue(res, (int)i, 2));
		c[i].creds_enc_hex = xstrdup(PQgetvalue(res, (int)i, 3));
	}
	PQclear(res);
	*out = c;
	*n = rows;
	return 0;
}

void
sched_cands_free(struct sched_cand *c, size_t n)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < n; i++)
		free(c[i].creds_enc_hex);
	free(c);
}

int
sched_acct_open(
    struct sched *s, const struct sched_cand *c, uint8_t **pt, size_t *ptlen)
{
	const char *hex = c->creds_enc_hex;
	char        aad[96];
	uint8_t    *blob;
	size_t      hlen, blen;
	int         rv;

	if (strncmp(hex, "\\x", 2) != 0)
		return -ERR_INVAL;
	hex += 2;
	hlen = strlen(hex);
	blob = xmalloc(hlen / 2 + 1);
	rv = crypto_hex_decode(hex, hlen, blob, hlen / 2 + 1, &blen);
	if (rv == 0) {
		snprintf(
		    aad, sizeof(aad), CRYPTO_AAD_ACCOUNT_FMT, (long long)c->id);
		rv = crypto_open(
		    &s->key, aad, strlen(aad), blob, blen, pt, ptlen);
	}
	free(blob);
	return rv;
}

/* Appends a JSON string body to the reply's credential, bounded. */
static int
sched_cred_add(struct proto_sched_acquire_rep *rep, const char *s, bool esc)
{
	static const char hexd[] = "0123456789abcdef";
	unsigned char     ch;

	for (; *s != '\0'; s++) {
		ch = (unsigned char)*s;
		if (rep->credential_len + 6 >= sizeof(rep->credential))
			return -ERR_TOOBIG;
		if (esc && (ch == '"' || ch == '\\')) {
			rep->credential[rep->credential_len++] = '\\';
			rep->credential[rep->credential_len++] = ch;
		} else if (esc && ch < 0x20) {
			memcpy(
			    rep->credential + rep->credential_len, "\\u00", 4);
			rep->credential_len += 4;
			rep->credential[rep->credential_len++] =
			    (uint8_t)hexd[ch >> 4];
			rep->credential[rep->credential_len++] =
			    (uint8_t)hexd[ch & 15];
		} else {
			rep->credential[rep->credential_len++] = ch;
		}
	}
	return 0;
}

/* The configured upstream of platform, for accounts without base_url. */
static const char *
sched_acct_default_url(const struct sched *s, const char *platform)
{
	if (strcmp(platform, "openai") == 0)
		return s->cfg->openai_base_url;
	if (strcmp(platform, "gemini") == 0)
		return s->cfg->gemini_base_url;
	if (strcmp(platform, "antigravity") == 0)
		return s->cfg->antigravity_base_url;
	return s->cfg->anthropic_base_url;
}

/* Fills rep from the parsed credentials j; see sched_acct_prepare(). */
static int
sched_acct_fill(struct sched *s, const struct sched_cand *c, json_t *j,
    const char *platform, const char *model,
    struct proto_sched_acquire_rep *rep)
{
	json_t     *map, *v;
	const char *umodel = model, *secret, *url;
	bool        apikey = strcmp(c->type, "apikey") == 0;
	int         rv;

	map = json_object_get(j, "model_mapping");
	if (json_is_object(map) && json_object_size(map) > 0) {
		v = json_object_get(map, model);
		if (v == NULL)
			return -ERR_NOTFOUND;
		if (json_is_string(v) && json_string_length(v) > 0)
			umodel = json_string_value(v);
	}
	if (strlen(umodel) > PROTO_MODEL_MAX)
		return -ERR_INVAL;
	v = json_object_get(j, apikey ? "api_key" : "access_token");
	secret = json_string_value(v);
	if (secret == NULL || *secret == '\0')
		return -ERR_INVAL;
	v = json_object_get(j, "base_url");
	url = json_string_value(v);
	if (url == NULL || *url == '\0')
		url = sched_acct_default_url(s, platform);
	if (strlen(url) > PROTO_URL_MAX)
		return -ERR_INVAL;

	rep->credential_len = 0;
	rv = sched_cred_add(rep,
	    apikey ? "{\"type\":\"apikey\",\"api_key\":\""
	           : "{\"type\":\"oauth\",\"access_token\":\"",
	    false);
	if (rv == 0)
		rv = sched_cred_add(rep, secret, true);
	if (rv == 0)
		rv = sched_cred_add(rep, "\"}", false);
	if (rv != 0) {
		memset(rep->credential, 0, sizeof(rep->credential));
		rep->credential_len = 0;
		return -ERR_INVAL;
	}
	snprintf(
	    rep->upstream_model, sizeof(rep->upstream_model), "%s", umodel);
	snprintf(rep->base_url, sizeof(rep->base_url), "%s", url);
	snprintf(rep->account_type, sizeof(rep->account_type), "%s", c->type);
	rep->account_id = c->id;
	return 0;
}

int
sched_acct_prepare(struct sched *s, const struct sched_cand *c,
    const char *platform, const char *model,
    struct proto_sched_acquire_rep *rep)
{
	json_error_t jerr;
	json_t      *j;
	uint8_t     *pt;
	size_t       ptlen;
	int          rv;

	rv = sched_acct_open(s, c, &pt, &ptlen);
	if (rv != 0) {
		log_warn("sched.account_credentials_unreadable",
		    LOG_I64("account", c->id), LOG_ERR(rv));
		return -ERR_CRYPTO;
	}
	j = json_loadb((const char *)pt, ptlen, JSON_REJECT_DUPLICATES, &jerr);
	crypto_free_secret(pt, ptlen + 1);
	if (!json_is_object(j)) {
		/* jerr may quote the plaintext: never log it. */
		json_decref(j);
		log_warn(
		    "sched.account_credentials_bad", LOG_I64("account", c->id));
		return -ERR_INVAL;
	}
	rv = sched_acct_fill(s, c, j, platform, model, rep);
	json_decref(j);
	if (rv == -ERR_INVAL)
		log_warn(
		    "sched.account_credentials_bad", LOG_I64("account", c->id));
	return rv;
}

int
sched_acct_touch(struct pg_conn *conn, int64_t aid)
{
	char        id[24];
	const char *params[1] = {id};

	snprintf(id, sizeof(id), "%lld", (long long)aid);
	return pg_exec(conn,
	    "UPDATE accounts SET last_used_at = now() WHERE id = $1::bigint", 1,
	    params, NULL);
}

int
sched_acct_outcome(struct sched *s, struct pg_conn *conn, int64_t aid,
    int32_t status, int64_t reset_unix, int64_t retry_after_s, char *state)
{
	char        id[24], ms[24], msg[64];
	const char *params[2] = {id, ms};
	int64_t     now = now_wall_ms(), until_ms;
	int         rv;

	snprintf(id, sizeof(id), "%lld", (long long)aid);
	switch (status) {
	case 429:
		/* A reset from the upstream is trusted up to a week away. */
		if (reset_unix > 0 &&
		    reset_unix < now / 1000 + SCHED_RESET_MAX_S)
			until_ms = reset_unix * 1000;
		else if (retry_after_s > 0 && retry_after_s < SCHED_RESET_MAX_S)
			until_ms = now + retry_after_s * 1000;
		else
			until_ms = now + s->cfg->rate_limit_cooldown;
		snprintf(ms, sizeof(ms), "%lld", (long long)until_ms);
		rv = pg_exec(conn,
		    "UPDATE accounts SET rate_limited_at = now(),"
		    " rate_limit_reset_at = to_timestamp($2::bigint / 1000.0)"
		    " WHERE id = $1::bigint AND deleted_at IS NULL",
		    2, params, NULL);
		snprintf(state, PROTO_STATE_MAX + 1, "rate_limited");
		break;
	case 529:
		snprintf(ms, sizeof(ms), "%lld",
		    (long long)(now + s->cfg->overload_cooldown));
		rv = pg_exec(conn,
		    "UPDATE accounts SET"
		    " overload_until = to_timestamp($2::bigint / 1000.0)"
		    " WHERE id = $1::bigint AND deleted_at IS NULL",
		    2, params, NULL);
		snprintf(state, PROTO_STATE_MAX + 1, "overloaded");
		break;
	case 401:
	case 402:
	case 403:
		snprintf(msg, sizeof(msg), "%s (%d)",
		    status == 401       ? "Authentication failed"
		        : status == 402 ? "Payment required"
		                        : "Access forbidden",
		    (int)status);
		params[1] = msg;
		rv = pg_exec(conn,
		    "UPDATE accounts SET status = 'error', error_message = $2"
		    " WHERE id = $1::bigint AND deleted_at IS NULL",
		    2, params, NULL);
		snprintf(state, PROTO_STATE_MAX + 1, "error");
		break;
	default:
		snprintf(state, PROTO_STATE_MAX + 1, "ok");
		return 0;
	}
	if (rv != 0)
		log_warn("sched.account_state_failed", LOG_I64("account", aid),
		    LOG_I64("status", status), LOG_ERR(rv),
		    LOG_STR("detail", pg_errmsg(conn)));
	else
		log_info("sched.account_state", LOG_I64("account", aid),
		    LOG_I64("status", status), LOG_STR("state", state));
	return rv;
}
