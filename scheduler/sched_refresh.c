/*
 * sched_refresh.c: OAuth token refresh of Claude oauth accounts (the
 * contract is in sched_refresh.h).
 *
 * The job runs on its own tick thread with blocking calls: one libcurl
 * easy handle per attempt (a refresh happens a few times a day per
 * account, so there is nothing to pool), a pooled PostgreSQL connection
 * held only for the reads and the guarded writes, never across the HTTP
 * exchange, and the Redis pool for the lock.
 *
 * The lock's lifetime covers the worst case of one refresh (every attempt
 * timing out plus every backoff, plus a margin): were it to lapse while
 * the holder still waits on the token endpoint, a second replica could
 * send the same refresh token, and with rotation one of the two would be
 * refused.  The compare-and-swap write keeps even that case from
 * overwriting newer credentials, and the failure mark is guarded the same
 * way, so a loser never puts a freshly refreshed account in 'error'.
 *
 * Secrets: the plaintext credentials and the request body are wiped after
 * use (jansson's internal copies are freed, not wiped: best effort).  Log
 * lines carry the account id, error names, HTTP statuses and the
 * endpoint's error code (sanitized), never a token or a body.
 */
#include "sched_refresh.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#include "err.h"
#include "log.h"
#include "tick.h"

#define SCHED_RF_TIMEOUT_MS     10000L
#define SCHED_RF_REPLY_MAX      (64 << 10)
#define SCHED_RF_SCAN_MAX       "1000"
#define SCHED_RF_REASON_MAX     128
#define SCHED_RF_CODE_MAX       48
#define SCHED_RF_MARGIN_MS      30000
#define SCHED_RF_EXPIRES_IN_MAX (10LL * 366 * 86400)
#define SCHED_RF_ERR_PREFIX     "Token refresh failed: "

struct sched_refresh {
	struct tick   tick;
	struct sched *s;
};

/* An account row as read for a refresh. */
struct sched_rf_row {
	char   *hex;   /* owned: credentials_enc as bytea text */
	json_t *creds; /* owned: the opened credentials */
	/* Read only when asked (see sched_rf_read): */
	bool proxy_off; /* names a proxy that is disabled/deleted/unusable */
	char proxy_url[PROTO_URL_MAX + 1]; /* "": none; a secret */
};

/* A reply body, capped at SCHED_RF_REPLY_MAX. */
struct sched_rf_body {
	char  *p;
	size_t len;
	bool   toobig;
};

void (*sched_refresh_store_hook)(int64_t account_id);

/* Set by sched_refresh_stop(): sleeps and transfers give up. */
static atomic_bool sched_rf_stopping;

static const char sched_rf_row_sql[] =
    "SELECT a.platform, a.type, a.status, a.credentials_enc,"
    " a.proxy_id IS NOT NULL, " SCHED_PROXY_COLS
    " FROM accounts a" SCHED_PROXY_JOIN
    " WHERE a.id = $1::bigint AND a.deleted_at IS NULL";

static const char sched_rf_scan_sql[] =
    "SELECT id, credentials_enc FROM accounts"
    " WHERE deleted_at IS NULL AND status = 'active'"
    " AND platform = 'anthropic' AND type = 'oauth'"
    " ORDER BY id LIMIT " SCHED_RF_SCAN_MAX;

/*
 * The guarded write.  Every SET expression sees the old row, so the
 * CASEs test the status the refresh found.
 */
static const char sched_rf_store_sql[] =
    "UPDATE accounts SET credentials_enc = $2::bytea,"
    " status = CASE WHEN status = 'error'"
    "  AND error_message LIKE 'Token refresh failed%' THEN 'active'"
    "  ELSE status END,"
    " error_message = CASE WHEN status = 'error'"
    "  AND error_message LIKE 'Token refresh failed%' THEN ''"
    "  ELSE error_message END"
    " WHERE id = $1::bigint AND credentials_enc = $3::bytea"
    " AND deleted_at IS NULL RETURNING id";

static const char sched_rf_fail_sql[] =
    "UPDATE accounts SET status = 'error', error_message = $2"
    " WHERE id = $1::bigint AND credentials_enc = $3::bytea"
    " AND deleted_at IS NULL AND status <> 'disabled'";

static const char sched_rf_unlock_lua[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
    "  return redis.call('DEL', KEYS[1])\n"
    "end\n"
    "return 0\n";

/* ---- expiry ------------------------------------------------------------ */

/* Days from 1970-01-01 to the civil date y-m-d (proleptic Gregorian). */
static int64_t
sched_rf_days(int64_t y, int64_t m, int64_t d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* "YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)" into unix seconds. */
static int
sched_rf_rfc3339(const char *s, int64_t *out)
{
	int         y, mo, d, h, mi, sec, oh = 0, om = 0, n = 0;
	const char *p;
	int64_t     t;
	int         sign = 0;

	if (sscanf(s, "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi,
	        &sec, &n) != 6 ||
	    n == 0)
		return -ERR_INVAL;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
	    sec > 60 || h < 0 || mi < 0 || sec < 0)
		return -ERR_INVAL;
	p = s + n;
	if (*p == '.') {
		p++;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p == '-' ? -1 : 1;
		n = 0;
		if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &n) != 2 || n != 5 ||
		    oh > 23 || om > 59 || oh < 0 || om < 0)
			return -ERR_INVAL;
		p += 1 + n;
	} else {
		return -ERR_INVAL;
	}
	if (*p != '\0')
		return -ERR_INVAL;
	t = sched_rf_days(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
	t -= sign * (oh * 3600 + om * 60);
	*out = t;
	return 0;
}

/* Seconds, or milliseconds when the value can only be those. */
static int64_t
sched_rf_unix(int64_t v)
{
	return v > 100000000000LL ? v / 1000 : v;
}

int
sched_refresh_expiry(const json_t *j, int64_t *out)
{
	const json_t *v = json_object_get(j, "expires_at");
	const char   *s, *end;
	long long     n;

	if (v == NULL || json_is_null(v))
		return -ERR_NOTFOUND;
	if (json_is_integer(v)) {
		*out = sched_rf_unix((int64_t)json_integer_value(v));
		return 0;
	}
	if (json_is_real(v)) {
		*out = sched_rf_unix((int64_t)json_real_value(v));
		return 0;
	}
	s = json_string_value(v);
	if (s == NULL || *s == '\0')
		return -ERR_INVAL;
	if (*s >= '0' && *s <= '9') {
		errno = 0;
		n = strtoll(s, (char **)&end, 10);
		if (errno == 0 && *end == '.') {
			end++;
			while (*end >= '0' && *end <= '9')
				end++;
		}
		if (errno == 0 && *end == '\0') {
			*out = sched_rf_unix((int64_t)n);
			return 0;
		}
	}
	return sched_rf_rfc3339(s, out);
}

/* Whether credentials j are due: expiry within token_refresh_before. */
static bool
sched_rf_due(const struct sched *s, const json_t *j)
{
	int64_t exp;

	if (sched_refresh_expiry(j, &exp) != 0)
		return false;
	return exp - now_wall_ms() / 1000 <=
	    s->cfg->token_refresh_before / 1000;
}

/* ---- the row ----------------------------------------------------------- */

static void
sched_rf_row_release(struct sched_rf_row *row)
{
	free(row->hex);
	json_decref(row->creds);
	row->hex = NULL;
	row->creds = NULL;
	explicit_bzero(row->proxy_url, sizeof(row->proxy_url));
}

/* Opens the sealed bytea text hex of account aid into *out (owned). */
static int
sched_rf_open(struct sched *s, int64_t aid, char *hex, json_t **out)
{
	struct sched_cand c = {.id = aid, .creds_enc_hex = hex};
	uint8_t          *pt;
	size_t            ptlen;
	json_t           *j;
	int               rv;

	rv = sched_acct_open(s, &c, &pt, &ptlen);
	if (rv != 0)
		return rv;
	j = json_loadb((const char *)pt, ptlen, 0, NULL);
	crypto_free_secret(pt, ptlen + 1);
	if (!json_is_object(j)) {
		json_decref(j);
		return -ERR_INVAL;
	}
	*out = j;
	return 0;
}

/*
 * Reads account aid when it is a refreshable anthropic oauth account
 * (active, or in 'error' when force) and opens its credentials; with
 * proxy, also its proxy URL, or proxy_off when it names a proxy it must
 * not go without (disabled, deleted, or no URL can be made of it).
 */
static int
sched_rf_read(struct sched *s, int64_t aid, bool force, bool proxy,
    struct sched_rf_row *row)
{
	struct pg_conn *conn;
	PGresult       *res;
	char            id[24];
	const char     *params[1] = {id};
	const char     *status;
	int             rv;

	snprintf(id, sizeof(id), "%lld", (long long)aid);
	rv = pg_acquire(s->pg, (int)s->cfg->dep_timeout, &conn);
	if (rv != 0)
		return rv;
	rv = pg_exec(conn, sched_rf_row_sql, 1, params, &res);
	if (rv != 0) {
		log_warn("sched.token_refresh_query_failed",
		    LOG_I64("account", aid), LOG_ERR(rv),
		    LOG_STR("detail", pg_errmsg(conn)));
		pg_release(conn);
		return rv;
	}
	pg_release(conn);
	if (PQntuples(res) != 1) {
		PQclear(res);
		return -ERR_NOTFOUND;
	}
	status = PQgetvalue(res, 0, 2);
	if (strcmp(PQgetvalue(res, 0, 0), "anthropic") != 0 ||
	    strcmp(PQgetvalue(res, 0, 1), "oauth") != 0 ||
	    !(strcmp(status, "active") == 0 ||
	        (force && strcmp(status, "error") == 0))) {
		PQclear(res);
		return -ERR_NOTFOUND;
	}
	row->hex = xstrdup(PQgetvalue(res, 0, 3));
	if (proxy && strcmp(PQgetvalue(res, 0, 4), "t") == 0)
		row->proxy_off = PQgetisnull(res, 0, 5) ||
		    sched_acct_proxy_url(s, aid, res, 0, 5, row->proxy_url,
		        sizeof(row->proxy_url)) != 0;
	PQclear(res);
	rv = sched_rf_open(s, aid, row->hex, &row->creds);
	if (rv != 0) {
		log_warn("sched.token_refresh_unreadable",
		    LOG_I64("account", aid), LOG_ERR(rv));
		sched_rf_row_release(row);
	}
	return rv;
}

/* ---- the token endpoint ------------------------------------------------ */

static size_t
sched_rf_write_cb(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct sched_rf_body *b = arg;
	size_t                n = size * nmemb;

	if (b->len + n > SCHED_RF_REPLY_MAX) {
		b->toobig = true;
		return 0;
	}
	b->p = xrealloc(b->p, b->len + n + 1);
	memcpy(b->p + b->len, ptr, n);
	b->len += n;
	b->p[b->len] = '\0';
	return n;
}

static int
sched_rf_progress_cb(
    void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	(void)arg;
	(void)dt;
	(void)dn;
	(void)ut;
	(void)un;
	return atomic_load(&sched_rf_stopping) ? 1 : 0;
}

/* Copies the endpoint's "error" code, keeping [A-Za-z0-9_.-] only. */
static void
sched_rf_error_code(const struct sched_rf_body *b, char *out, size_t cap)
{
	json_t     *j = NULL;
	const char *e = NULL;
	size_t      n = 0;

	out[0] = '\0';
	if (b->p != NULL)
		j = json_loadb(b->p, b->len, 0, NULL);
	if (json_is_object(j)) {
		e = json_string_value(json_object_get(j, "error"));
		if (e == NULL)
			e = json_string_value(json_object_get(
			    json_object_get(j, "error"), "type"));
	}
	for (; e != NULL && *e != '\0' && n + 1 < cap; e++)
		if ((*e >= 'a' && *e <= 'z') || (*e >= 'A' && *e <= 'Z') ||
		    (*e >= '0' && *e <= '9') || *e == '_' || *e == '.' ||
		    *e == '-')
			out[n++] = *e;
	out[n] = '\0';
	json_decref(j);
}

/* The request body (owned; wipe with crypto_free_secret). */
static char *
sched_rf_request(const struct sched *s, const char *rt)
{
	json_t *j;
	char   *body;

	j = json_pack("{s:s, s:s, s:s}", "grant_type", "refresh_token",
	    "refresh_token", rt, "client_id",
	    s->cfg->anthropic_oauth_client_id);
	if (j == NULL)
		return NULL;
	body = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return body;
}

/*
 * One POST to the token endpoint with refresh token rt, through proxy
 * URL proxy ("": none).  0 with *reply (owned) on a 2xx JSON object;
 * otherwise the error, a short reason and *retry, true when another
 * attempt may help (transport, 429, 5xx).
 */
static int
sched_rf_post(struct sched *s, const char *rt, const char *proxy,
    json_t **reply, char *reason, size_t cap, bool *retry)
{
	struct sched_rf_body b = {0};
	struct curl_slist   *hdrs = NULL;
	char                 code[SCHED_RF_CODE_MAX];
	char                *body;
	CURL                *c;
	CURLcode             cc;
	long                 status = 0;
	json_t              *j;
	int                  rv;

	*retry = false;
	body = sched_rf_request(s, rt);
	c = curl_easy_init();
	if (body == NULL || c == NULL) {
		snprintf(reason, cap, "out of memory");
		rv = -ERR_NOMEM;
		goto out;
	}
	hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	curl_easy_setopt(c, CURLOPT_URL, s->cfg->anthropic_token_url);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "sub2api-scheduler");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sched_rf_write_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, SCHED_RF_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, SCHED_RF_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, sched_rf_progress_cb);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	/*
	 * The account's proxy or none, as the gateway does: never the
	 * environment's (an empty CURLOPT_PROXY disables http_proxy, an
	 * empty NOPROXY disables no_proxy).
	 */
	curl_easy_setopt(c, CURLOPT_PROXY, proxy);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "");
	cc = curl_easy_perform(c);
	if (cc == CURLE_ABORTED_BY_CALLBACK && !b.toobig) {
		snprintf(reason, cap, "canceled");
		rv = -ERR_CANCELED;
		goto out;
	}
	if (b.toobig) {
		snprintf(reason, cap, "token reply too large");
		rv = -ERR_TOOBIG;
		goto out;
	}
	if (cc != CURLE_OK) {
		snprintf(reason, cap, "transport: %s", curl_easy_strerror(cc));
		*retry = true;
		rv = -ERR_CURL;
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (status == 429 || status >= 500) {
		snprintf(reason, cap, "HTTP %ld", status);
		*retry = true;
		rv = -ERR_UNAVAIL;
		goto out;
	}
	if (status < 200 || status > 299) {
		sched_rf_error_code(&b, code, sizeof(code));
		snprintf(reason, cap, "%s%sHTTP %ld", code,
		    code[0] != '\0' ? " " : "", status);
		rv = -ERR_AUTH;
		goto out;
	}
	j = b.p != NULL ? json_loadb(b.p, b.len, 0, NULL) : NULL;
	if (!json_is_object(j)) {
		json_decref(j);
		snprintf(reason, cap, "malformed token reply");
		rv = -ERR_INVAL;
		goto out;
	}
	*reply = j;
	rv = 0;
out:
	if (b.p != NULL)
		crypto_free_secret(b.p, b.len + 1);
	if (body != NULL)
		crypto_free_secret(body, strlen(body) + 1);
	curl_slist_free_all(hdrs);
	if (c != NULL)
		curl_easy_cleanup(c);
	return rv;
}

/* Sleeps ms in short slices; -ERR_CANCELED once the job is stopping. */
static int
sched_rf_sleep(int64_t ms)
{
	struct timespec ts;
	int64_t         end = now_mono_ms() + ms, left;

	for (left = ms; left > 0; left = end - now_mono_ms()) {
		if (atomic_load(&sched_rf_stopping))
			return -ERR_CANCELED;
		left = left > 50 ? 50 : left;
		ts.tv_sec = 0;
		ts.tv_nsec = (long)left * 1000000L;
		nanosleep(&ts, NULL);
	}
	return atomic_load(&sched_rf_stopping) ? -ERR_CANCELED : 0;
}

/* The attempts with backoff; see sched_rf_post(). */
static int
sched_rf_exchange(struct sched *s, int64_t aid, const char *rt,
    const char *proxy, json_t **reply, char *reason, size_t cap)
{
	int64_t delay = s->cfg->token_refresh_backoff;
	int64_t attempt;
	bool    retry;
	int     rv = -ERR_INVAL;

	for (attempt = 1; attempt <= s->cfg->token_refresh_retries; attempt++) {
		rv = sched_rf_post(s, rt, proxy, reply, reason, cap, &retry);
		if (rv == 0 || !retry ||
		    attempt == s->cfg->token_refresh_retries)
			return rv;
		log_warn("sched.token_refresh_retry", LOG_I64("account", aid),
		    LOG_I64("attempt", attempt), LOG_ERR(rv),
		    LOG_STR("reason", reason), LOG_I64("delay_ms", delay));
		if (sched_rf_sleep(delay) != 0) {
			snprintf(reason, cap, "canceled");
			return -ERR_CANCELED;
		}
		delay *= 2;
	}
	return rv;
}

/*
 * Merges the token reply into creds: access_token, refresh_token (kept
 * when the reply has none), expires_in and expires_at as unix-seconds
 * strings, token_type and scope when given.  -ERR_INVAL when the reply
 * lacks an access token or a sane expires_in.
 */
static int
sched_rf_merge(json_t *creds, const json_t *reply)
{
	const char   *access, *refresh, *s;
	const json_t *v;
	long long     ein = 0;
	char          num[24];

	access = json_string_value(json_object_get(reply, "access_token"));
	refresh = json_string_value(json_object_get(reply, "refresh_token"));
	v = json_object_get(reply, "expires_in");
	if (json_is_integer(v))
		ein = (long long)json_integer_value(v);
	else if (json_is_string(v))
		ein = strtoll(json_string_value(v), NULL, 10);
	if (access == NULL || *access == '\0' || ein <= 0 ||
	    ein > SCHED_RF_EXPIRES_IN_MAX)
		return -ERR_INVAL;
	json_object_set_new(creds, "access_token", json_string(access));
	if (refresh != NULL && *refresh != '\0')
		json_object_set_new(
		    creds, "refresh_token", json_string(refresh));
	snprintf(num, sizeof(num), "%lld", ein);
	json_object_set_new(creds, "expires_in", json_string(num));
	snprintf(
	    num, sizeof(num), "%lld", (long long)(now_wall_ms() / 1000 + ein));
	json_object_set_new(creds, "expires_at", json_string(num));
	s = json_string_value(json_object_get(reply, "token_type"));
	if (s != NULL)
		json_object_set_new(creds, "token_type", json_string(s));
	s = json_string_value(json_object_get(reply, "scope"));
	if (s != NULL)
		json_object_set_new(creds, "scope", json_string(s));
	return 0;
}

/* ---- the guarded writes ------------------------------------------------ */

/* Seals creds for account aid as a bytea text "\x..." (owned). */
static int
sched_rf_seal(struct sched *s, int64_t aid, const json_t *creds, char **out)
{
	char     aad[96], *pt, *hex;
	uint8_t *blob;
	size_t   blen, ptlen;
	int      rv;

	pt = json_dumps(creds, JSON_COMPACT);
	if (pt == NULL)
		return -ERR_NOMEM;
	ptlen = strlen(pt);
	snprintf(aad, sizeof(aad), CRYPTO_AAD_ACCOUNT_FMT, (long long)aid);
	rv = crypto_seal(&s->key, aad, strlen(aad), pt, ptlen, &blob, &blen);
	crypto_free_secret(pt, ptlen + 1);
	if (rv != 0)
		return rv;
	hex = xmalloc(2 * blen + 3);
	memcpy(hex, "\\x", 2);
	rv = crypto_hex_encode(blob, blen, hex + 2, 2 * blen + 1);
	free(blob);
	if (rv != 0) {
		free(hex);
		return rv;
	}
	*out = hex;
	return 0;
}

/*
 * Runs one guarded UPDATE (sql with $1 id, $2 value, $3 old ciphertext);
 * *rows gets the rows it changed.
 */
static int
sched_rf_update(struct sched *s, const char *sql, int64_t aid,
    const char *value, const char *old_hex, int *rows)
{
	struct pg_conn *conn;
	PGresult       *res;
	char            id[24];
	const char     *params[3] = {id, value, old_hex};
	int             rv;

	snprintf(id, sizeof(id), "%lld", (long long)aid);
	rv = pg_acquire(s->pg, (int)s->cfg->dep_timeout, &conn);
	if (rv != 0)
		return rv;
	rv = pg_exec(conn, sql, 3, params, &res);
	if (rv != 0) {
		log_error("sched.token_refresh_write_failed",
		    LOG_I64("account", aid), LOG_ERR(rv),
		    LOG_STR("detail", pg_errmsg(conn)));
		pg_release(conn);
		return rv;
	}
	pg_release(conn);
	*rows = PQresultStatus(res) == PGRES_TUPLES_OK
	    ? PQntuples(res)
	    : (int)strtol(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	return 0;
}

/* Stores the refreshed creds of row; -ERR_CONFLICT when the row moved. */
static int
sched_rf_store(struct sched *s, int64_t aid, const struct sched_rf_row *row)
{
	char *hex;
	int   rows = 0, rv;

	rv = sched_rf_seal(s, aid, row->creds, &hex);
	if (rv != 0)
		return rv;
	rv = sched_rf_update(s, sched_rf_store_sql, aid, hex, row->hex, &rows);
	free(hex);
	if (rv == 0 && rows != 1)
		rv = -ERR_CONFLICT;
	return rv;
}

/* Puts the account in 'error' with reason, unless its row moved. */
static void
sched_rf_mark_failed(struct sched *s, int64_t aid,
    const struct sched_rf_row *row, const char *reason)
{
	char msg[sizeof(SCHED_RF_ERR_PREFIX) + SCHED_RF_REASON_MAX];
	int  rows = 0, rv;

	snprintf(msg, sizeof(msg), SCHED_RF_ERR_PREFIX "%s", reason);
	rv = sched_rf_update(s, sched_rf_fail_sql, aid, msg, row->hex, &rows);
	if (rv == 0 && rows == 0)
		log_warn("sched.token_refresh_mark_skipped",
		    LOG_I64("account", aid),
		    LOG_MSG("the row changed meanwhile: not marked"));
}

/* ---- the lock ---------------------------------------------------------- */

/* The lock's lifetime: every attempt timing out, every backoff, margin. */
static int64_t
sched_rf_lock_ttl(const struct sched *s)
{
	int64_t n = s->cfg->token_refresh_retries;

	return n * SCHED_RF_TIMEOUT_MS +
	    (s->cfg->token_refresh_backoff << (n - 1)) + SCHED_RF_MARGIN_MS;
}

/* Takes the account's lock with a fresh value; -ERR_BUSY when held. */
static int
sched_rf_lock(struct sched *s, int64_t aid, char *key, size_t kcap, char *val,
    size_t vcap)
{
	redisReply *r;
	char        ttl[24];
	int         rv;

	snprintf(key, kcap, "%srefresh_lock:%lld", s->cfg->redis_prefix,
	    (long long)aid);
	rv = crypto_random_hex(16, val, vcap);
	if (rv != 0)
		return rv;
	snprintf(ttl, sizeof(ttl), "%lld", (long long)sched_rf_lock_ttl(s));
	rv = rds_cmd(s->rds, &r, "SET %s %s NX PX %s", key, val, ttl);
	if (rv != 0) {
		log_warn("sched.token_refresh_lock_failed",
		    LOG_I64("account", aid), LOG_ERR(rv));
		return rv;
	}
	rv = r->type == REDIS_REPLY_STATUS ? 0 : -ERR_BUSY;
	freeReplyObject(r);
	return rv;
}

/* Drops the lock when it is still ours (compare-and-delete). */
static void
sched_rf_unlock(struct sched *s, int64_t aid, const char *key, const char *val)
{
	struct rds_script *sc;
	const char        *argv[2] = {key, val};
	int                rv;

	rv = rds_script_new(sched_rf_unlock_lua, &sc);
	if (rv == 0) {
		rv = rds_script_eval(s->rds, sc, NULL, 1, 1, argv, NULL);
		rds_script_free(sc);
	}
	if (rv != 0)
		log_warn("sched.token_refresh_unlock_failed",
		    LOG_I64("account", aid), LOG_ERR(rv));
}

/* ---- one account ------------------------------------------------------- */

/* The refresh proper, with the lock held. */
static int
sched_rf_locked(struct sched *s, int64_t aid, bool force)
{
	struct sched_rf_row row = {0};
	json_t             *reply = NULL;
	const char         *rt;
	char                reason[SCHED_RF_REASON_MAX];
	int                 rv;

	rv = sched_rf_read(s, aid, force, true, &row);
	if (rv != 0)
		return rv;
	if (row.proxy_off) {
		/* Going direct could reveal this host or break an allow-list.
		 */
		log_warn("sched.token_refresh_proxy_unusable",
		    LOG_I64("account", aid),
		    LOG_MSG("its proxy is disabled, deleted or unusable: "
		            "not refreshed, not connecting directly"));
		sched_rf_row_release(&row);
		return -ERR_FORBIDDEN;
	}
	if (!force && !sched_rf_due(s, row.creds)) {
		log_info("sched.token_refresh_skipped", LOG_I64("account", aid),
		    LOG_MSG("no longer due: refreshed elsewhere"));
		sched_rf_row_release(&row);
		return -ERR_CANCELED;
	}
	rt = json_string_value(json_object_get(row.creds, "refresh_token"));
	if (rt == NULL || *rt == '\0') {
		snprintf(reason, sizeof(reason), "no refresh token");
		rv = -ERR_INVAL;
	} else {
		rv = sched_rf_exchange(
		    s, aid, rt, row.proxy_url, &reply, reason, sizeof(reason));
	}
	if (rv == 0) {
		rv = sched_rf_merge(row.creds, reply);
		if (rv != 0)
			snprintf(
			    reason, sizeof(reason), "malformed token reply");
	}
	if (rv == 0) {
		if (sched_refresh_store_hook != NULL)
			sched_refresh_store_hook(aid);
		rv = sched_rf_store(s, aid, &row);
		if (rv == -ERR_CONFLICT)
			log_error("sched.token_refresh_conflict",
			    LOG_I64("account", aid),
			    LOG_MSG("credentials changed during the refresh: "
			            "the new tokens were not stored"));
		else if (rv == 0)
			log_info("sched.token_refreshed",
			    LOG_I64("account", aid), LOG_BOOL("force", force));
	} else if (rv != -ERR_CANCELED) {
		log_warn("sched.token_refresh_failed", LOG_I64("account", aid),
		    LOG_ERR(rv), LOG_STR("reason", reason));
		sched_rf_mark_failed(s, aid, &row, reason);
	}
	json_decref(reply);
	sched_rf_row_release(&row);
	return rv;
}

int
sched_refresh_account(struct sched *s, int64_t account_id, bool force)
{
	struct sched_rf_row row = {0};
	char                key[128], val[40];
	bool                due;
	int                 rv;

	if (!s->key_ok)
		return -ERR_CONFIG;
	/* A first look outside the lock, so fresh accounts cost no lock. */
	rv = sched_rf_read(s, account_id, force, false, &row);
	if (rv != 0)
		return rv;
	due = force || sched_rf_due(s, row.creds);
	sched_rf_row_release(&row);
	if (!due)
		return -ERR_CANCELED;
	rv = sched_rf_lock(s, account_id, key, sizeof(key), val, sizeof(val));
	if (rv == -ERR_BUSY)
		log_info("sched.token_refresh_locked",
		    LOG_I64("account", account_id),
		    LOG_MSG("another replica is refreshing it"));
	if (rv != 0)
		return rv;
	rv = sched_rf_locked(s, account_id, force);
	sched_rf_unlock(s, account_id, key, val);
	return rv;
}

/* ---- the scan and the job ---------------------------------------------- */

int
sched_refresh_scan(struct sched *s)
{
	struct pg_conn *conn;
	PGresult       *res;
	json_t         *j;
	int64_t        *due, aid;
	int             i, rows, ndue = 0, done = 0, rv;

	if (!s->key_ok)
		return -ERR_CONFIG;
	rv = pg_acquire(s->pg, (int)s->cfg->dep_timeout, &conn);
	if (rv != 0)
		return rv;
	rv = pg_exec(conn, sched_rf_scan_sql, 0, NULL, &res);
	if (rv != 0) {
		log_warn("sched.token_refresh_query_failed", LOG_ERR(rv),
		    LOG_STR("detail", pg_errmsg(conn)));
		pg_release(conn);
		return rv;
	}
	pg_release(conn);
	rows = PQntuples(res);
	due = xcalloc(rows > 0 ? (size_t)rows : 1, sizeof(*due));
	for (i = 0; i < rows; i++) {
		aid = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		if (sched_rf_open(s, aid, PQgetvalue(res, i, 1), &j) != 0) {
			log_warn("sched.token_refresh_unreadable",
			    LOG_I64("account", aid));
			continue;
		}
		if (sched_rf_due(s, j))
			due[ndue++] = aid;
		json_decref(j);
	}
	PQclear(res);
	for (i = 0; i < ndue && !atomic_load(&sched_rf_stopping); i++)
		if (sched_refresh_account(s, due[i], false) == 0)
			done++;
	free(due);
	if (ndue > 0)
		log_info("sched.token_refresh_scan", LOG_I64("checked", rows),
		    LOG_I64("due", ndue), LOG_I64("refreshed", done));
	return done;
}

static void
sched_rf_tick_cb(void *arg)
{
	struct sched_refresh *r = arg;
	int                   rv;

	rv = sched_refresh_scan(r->s);
	if (rv < 0)
		log_warn("sched.token_refresh_scan_failed", LOG_ERR(rv));
}

int
sched_refresh_start(struct sched *s, struct sched_refresh **out)
{
	struct sched_refresh *r;
	int                   rv;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return -ERR_NOMEM;
	atomic_store(&sched_rf_stopping, false);
	r = xcalloc(1, sizeof(*r));
	r->s = s;
	rv = tick_start(&r->tick, "token_refresh",
	    s->cfg->token_refresh_interval, sched_rf_tick_cb, r);
	if (rv != 0) {
		free(r);
		return rv;
	}
	*out = r;
	return 0;
}

void
sched_refresh_stop(struct sched_refresh *r)
{
	if (r == NULL)
		return;
	atomic_store(&sched_rf_stopping, true);
	tick_stop(&r->tick);
	free(r);
}
