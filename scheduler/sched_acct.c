/*
 * sched_acct.c: the accounts side of an acquire and of a release.
 *
 * The schedulable predicate is the original's: active, schedulable, and
 * no rate-limit, overload or temporary pause still running.
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
 * Proxies.  The candidate query LEFT JOINs the account's proxy when it
 * is live (not soft-deleted) and active; an account whose proxy_id names
 * a disabled or deleted proxy is not a candidate at all: its traffic
 * never goes around the proxy it was configured with (connecting
 * directly could reveal the server's address to the upstream, or break
 * an allow-list).  The proxy row travels with the candidate (see struct
 * sched_acct_row below) and sched_acct_prepare() turns it into the
 * reply's proxy_url (sched_proxy.h: http://, https:// or socks5h://,
 * percent-encoded userinfo).  A password that does not decrypt, or a URL
 * that does not fit PROTO_URL_MAX, makes the account unusable for this
 * request: prepare fails, so the account is skipped like one whose
 * credentials do not open and the next candidate serves
 * (sched.account_proxy_unusable names the account and proxy ids, never
 * the secret).
 *
 * The acquire path reads its candidates through the account cache
 * (sched_acache.c), which uses sched_acct_load() and sched_acct_inspect()
 * here and batches last_used_at; sched_acct_list() serves the model list.
 */
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>

#include "err.h"
#include "log.h"
#include "sched.h"
#include "sched_proxy.h"

/*
 * The proxy of a candidate.  struct sched_cand (sched.h) has no room for
 * it, so each candidate's creds_enc_hex points into the hex[] tail of one
 * of these, and sched_cands_free() frees the whole row.  Every candidate
 * comes from sched_acct_list(), so the container is always there.
 */
struct sched_acct_px {
	int64_t id; /* 0: no proxy */
	char    protocol[8];
	char    host[SCHED_PROXY_HOST_MAX + 1];
	long    port;
	char    username[256];
	char   *password_enc_hex; /* owned: bytea text, NULL: no password */
};

struct sched_acct_row {
	struct sched_acct_px px;
	char                 hex[]; /* the candidate's creds_enc_hex */
};

static struct sched_acct_row *
sched_acct_row_of(const struct sched_cand *c)
{
	return (struct sched_acct_row *)(void *)(c->creds_enc_hex -
	    offsetof(struct sched_acct_row, hex));
}

static const char sched_acct_list_sql[] =
    "SELECT a.id, a.concurrency, a.type, a.credentials_enc,"
    " p.id, p.protocol, p.host, p.port, p.username, p.password_enc,"
    " a.priority"
    " FROM accounts a"
    " JOIN account_groups ag ON ag.account_id = a.id"
    " AND ag.group_id = $1::bigint"
    " LEFT JOIN proxies p ON p.id = a.proxy_id AND p.deleted_at IS NULL"
    " AND p.status = 'active'"
    " WHERE a.deleted_at IS NULL AND a.status = 'active' AND a.schedulable"
    " AND (a.proxy_id IS NULL OR p.id IS NOT NULL)"
    " AND a.platform = $2"
    " AND (a.rate_limit_reset_at IS NULL OR a.rate_limit_reset_at <= now())"
    " AND (a.overload_until IS NULL OR a.overload_until <= now())"
    " AND (a.temp_unschedulable_until IS NULL"
    "  OR a.temp_unschedulable_until <= now())"
    " AND NOT (a.id = ANY ($3::bigint[]))"
    " ORDER BY a.priority, a.last_used_at NULLS FIRST, a.id"
    " LIMIT $4::integer";

/* The same accounts whatever their time-bound state (the cache's load). */
static const char sched_acct_load_sql[] =
    "SELECT a.id, a.concurrency, a.type, a.credentials_enc,"
    " p.id, p.protocol, p.host, p.port, p.username, p.password_enc,"
    " a.priority,"
    " COALESCE((extract(epoch FROM a.rate_limit_reset_at) * 1000)::bigint,"
    "  0),"
    " COALESCE((extract(epoch FROM a.overload_until) * 1000)::bigint, 0),"
    " COALESCE((extract(epoch FROM a.temp_unschedulable_until) * 1000)"
    "  ::bigint, 0),"
    " COALESCE((extract(epoch FROM a.last_used_at) * 1000)::bigint, 0)"
    " FROM accounts a"
    " JOIN account_groups ag ON ag.account_id = a.id"
    " AND ag.group_id = $1::bigint"
    " LEFT JOIN proxies p ON p.id = a.proxy_id AND p.deleted_at IS NULL"
    " AND p.status = 'active'"
    " WHERE a.deleted_at IS NULL AND a.status = 'active' AND a.schedulable"
    " AND (a.proxy_id IS NULL OR p.id IS NOT NULL)"
    " AND a.platform = $2"
    " ORDER BY a.priority, a.id"
    " LIMIT $3::integer";

/*
 * The proxy columns SCHED_PROXY_COLS of row r of res, from column col on,
 * into *px (zeroed by the caller; id stays 0 when the join found none).
 */
static void
sched_acct_px_fill(
    struct sched_acct_px *px, const PGresult *res, int r, int col)
{
	if (PQgetisnull(res, r, col))
		return;
	px->id = strtoll(PQgetvalue(res, r, col), NULL, 10);
	snprintf(px->protocol, sizeof(px->protocol), "%s",
	    PQgetvalue(res, r, col + 1));
	snprintf(px->host, sizeof(px->host), "%s", PQgetvalue(res, r, col + 2));
	px->port = strtol(PQgetvalue(res, r, col + 3), NULL, 10);
	snprintf(px->username, sizeof(px->username), "%s",
	    PQgetvalue(res, r, col + 4));
	if (!PQgetisnull(res, r, col + 5))
		px->password_enc_hex = xstrdup(PQgetvalue(res, r, col + 5));
}

/* The row of candidate r of res: its proxy, and the credentials' hex. */
static char *
sched_acct_row_new(const PGresult *res, int r)
{
	struct sched_acct_row *row;
	struct sched_acct_px  *px;
	const char            *hex = PQgetvalue(res, r, 3);
	size_t                 len = strlen(hex);

	row = xcalloc(1, sizeof(*row) + len + 1);
	memcpy(row->hex, hex, len + 1);
	px = &row->px;
	sched_acct_px_fill(px, res, r, 4);
	return row->hex;
}

/*
 * Runs a candidate query (sched_acct_list_sql or sched_acct_load_sql:
 * the same first eleven columns; the load query adds the four times)
 * and makes its rows into candidates.
 */
static int
sched_acct_query(struct pg_conn *conn, const char *sql, int nparams,
    const char *const *params, struct sched_cand **out, size_t *n)
{
	struct sched_cand *c;
	PGresult          *res;
	size_t             i, rows;
	bool               times;
	int                rv;

	rv = pg_exec(conn, sql, nparams, params, &res);
	if (rv != 0) {
		log_warn("sched.account_query_failed", LOG_ERR(rv),
		    LOG_STR("detail", pg_errmsg(conn)));
		return rv;
	}
	rows = (size_t)PQntuples(res);
	times = PQnfields(res) >= 15;
	c = xcalloc(rows == 0 ? 1 : rows, sizeof(*c));
	for (i = 0; i < rows; i++) {
		int r = (int)i;

		c[i].id = strtoll(PQgetvalue(res, r, 0), NULL, 10);
		c[i].concurrency =
		    (int32_t)strtol(PQgetvalue(res, r, 1), NULL, 10);
		snprintf(
		    c[i].type, sizeof(c[i].type), "%s", PQgetvalue(res, r, 2));
		c[i].priority =
		    (int32_t)strtol(PQgetvalue(res, r, 10), NULL, 10);
		if (times) {
			c[i].rate_until_ms =
			    strtoll(PQgetvalue(res, r, 11), NULL, 10);
			c[i].overload_until_ms =
			    strtoll(PQgetvalue(res, r, 12), NULL, 10);
			c[i].pause_until_ms =
			    strtoll(PQgetvalue(res, r, 13), NULL, 10);
			c[i].used_ms =
			    strtoll(PQgetvalue(res, r, 14), NULL, 10);
		}
		c[i].creds_enc_hex = sched_acct_row_new(res, r);
	}
	PQclear(res);
	*out = c;
	*n = rows;
	return 0;
}

int
sched_acct_list(struct pg_conn *conn, int64_t gid, const char *platform,
    const int64_t *excl, size_t nexcl, size_t cap, struct sched_cand **out,
    size_t *n)
{
	char        g[24], lim[24];
	char        arr[2 + PROTO_EXCLUDED_MAX * 22];
	const char *params[4];
	size_t      i, len = 0;

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
	return sched_acct_query(conn, sched_acct_list_sql, 4, params, out, n);
}

int
sched_acct_load(struct pg_conn *conn, int64_t gid, const char *platform,
    size_t cap, struct sched_cand **out, size_t *n)
{
	char        g[24], lim[24];
	const char *params[3] = {g, platform, lim};

	snprintf(g, sizeof(g), "%lld", (long long)gid);
	snprintf(lim, sizeof(lim), "%zu", cap);
	return sched_acct_query(conn, sched_acct_load_sql, 3, params, out, n);
}

void
sched_cands_free(struct sched_cand *c, size_t n)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < n; i++) {
		struct sched_acct_row *row;

		if (c[i].creds_enc_hex == NULL)
			continue;
		row = sched_acct_row_of(&c[i]);
		free(row->px.password_enc_hex);
		free(row);
	}
	free(c);
}

/* Opens a sealed bytea text ("\x...") under aad; see sched_acct_open. */
static int
sched_acct_unseal(struct sched *s, const char *hex, const char *aad,
    uint8_t **pt, size_t *ptlen)
{
	uint8_t *blob;
	size_t   hlen, blen;
	int      rv;

	if (strncmp(hex, "\\x", 2) != 0)
		return -ERR_INVAL;
	hex += 2;
	hlen = strlen(hex);
	blob = xmalloc(hlen / 2 + 1);
	rv = crypto_hex_decode(hex, hlen, blob, hlen / 2 + 1, &blen);
	if (rv == 0)
		rv = crypto_open(
		    &s->key, aad, strlen(aad), blob, blen, pt, ptlen);
	free(blob);
	return rv;
}

int
sched_acct_open(
    struct sched *s, const struct sched_cand *c, uint8_t **pt, size_t *ptlen)
{
	char aad[96];

	snprintf(aad, sizeof(aad), CRYPTO_AAD_ACCOUNT_FMT, (long long)c->id);
	return sched_acct_unseal(s, c->creds_enc_hex, aad, pt, ptlen);
}

/*
 * Writes the URL of proxy px of account aid into out (cap bytes; "" when
 * px->id is 0).  -ERR_CRYPTO when the password does not open, -ERR_INVAL
 * or -ERR_TOOBIG when no URL can be made; out is then empty.
 */
static int
sched_acct_px_url(struct sched *s, int64_t aid, const struct sched_acct_px *px,
    char *out, size_t cap)
{
	char     aad[96];
	uint8_t *pw = NULL;
	size_t   pwlen = 0;
	int      rv = 0;

	memset(out, 0, cap);
	if (px->id == 0)
		return 0;
	if (px->password_enc_hex != NULL) {
		snprintf(
		    aad, sizeof(aad), CRYPTO_AAD_PROXY_FMT, (long long)px->id);
		rv = sched_acct_unseal(
		    s, px->password_enc_hex, aad, &pw, &pwlen);
		if (rv != 0)
			rv = -ERR_CRYPTO;
		else if (strlen((const char *)pw) != pwlen)
			rv = -ERR_INVAL; /* an embedded NUL */
	}
	if (rv == 0)
		rv = sched_proxy_url(px->protocol, px->host, px->port,
		    px->username, (const char *)pw, out, cap);
	if (pw != NULL)
		crypto_free_secret(pw, pwlen + 1);
	if (rv != 0)
		log_warn("sched.account_proxy_unusable",
		    LOG_I64("account", aid), LOG_I64("proxy", px->id),
		    LOG_ERR(rv));
	return rv;
}

/*
 * Writes candidate c's proxy URL into rep->proxy_url ("" without a
 * proxy).  -ERR_CRYPTO when the password does not open, -ERR_INVAL or
 * -ERR_TOOBIG when no URL can be made; rep->proxy_url is then empty.
 */
static int
sched_acct_proxy(struct sched *s, const struct sched_cand *c,
    struct proto_sched_acquire_rep *rep)
{
	return sched_acct_px_url(s, c->id, &sched_acct_row_of(c)->px,
	    rep->proxy_url, sizeof(rep->proxy_url));
}

int
sched_acct_proxy_url(struct sched *s, int64_t aid, const PGresult *res, int row,
    int col, char *out, size_t cap)
{
	struct sched_acct_px px = {0};
	int                  rv;

	sched_acct_px_fill(&px, res, row, col);
	rv = sched_acct_px_url(s, aid, &px, out, cap);
	free(px.password_enc_hex);
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

/*
 * Opens candidate c's credentials and parses them into *j (owned:
 * json_decref); the plaintext is wiped at once.  -ERR_CRYPTO when they do
 * not open, -ERR_INVAL when they are not a JSON object (both logged with
 * the account id only: the parser's message may quote the plaintext).
 */
static int
sched_acct_parse(struct sched *s, const struct sched_cand *c, json_t **j)
{
	json_error_t jerr;
	uint8_t     *pt;
	size_t       ptlen;
	int          rv;

	rv = sched_acct_open(s, c, &pt, &ptlen);
	if (rv != 0) {
		log_warn("sched.account_credentials_unreadable",
		    LOG_I64("account", c->id), LOG_ERR(rv));
		return -ERR_CRYPTO;
	}
	*j = json_loadb((const char *)pt, ptlen, JSON_REJECT_DUPLICATES, &jerr);
	crypto_free_secret(pt, ptlen + 1);
	if (!json_is_object(*j)) {
		json_decref(*j);
		*j = NULL;
		log_warn(
		    "sched.account_credentials_bad", LOG_I64("account", c->id));
		return -ERR_INVAL;
	}
	return 0;
}

int
sched_acct_prepare(struct sched *s, const struct sched_cand *c,
    const char *platform, const char *model,
    struct proto_sched_acquire_rep *rep)
{
	json_t *j;
	int     rv;

	/* Never leave the previous candidate's proxy (and password) behind. */
	memset(rep->proxy_url, 0, sizeof(rep->proxy_url));
	rv = sched_acct_parse(s, c, &j);
	if (rv != 0)
		return rv;
	rv = sched_acct_fill(s, c, j, platform, model, rep);
	json_decref(j);
	if (rv == -ERR_INVAL)
		log_warn(
		    "sched.account_credentials_bad", LOG_I64("account", c->id));
	if (rv != 0)
		return rv;
	rv = sched_acct_proxy(s, c, rep);
	if (rv != 0) {
		/* Unusable for this request: the caller skips the account. */
		memset(rep->credential, 0, sizeof(rep->credential));
		rep->credential_len = 0;
		return rv == -ERR_CRYPTO ? -ERR_CRYPTO : -ERR_INVAL;
	}
	return 0;
}

int
sched_acct_inspect(struct sched *s, const struct sched_cand *c,
    const char *platform, json_t **mapping)
{
	struct proto_sched_acquire_rep *rep;
	json_t                         *j, *map;
	int                             rv;

	*mapping = NULL;
	rv = sched_acct_parse(s, c, &j);
	if (rv != 0)
		return rv;
	/*
	 * The same checks as a real acquire, with the model the mapping
	 * lists first (or any name when it is empty): the filled reply is
	 * wiped at once.
	 */
	map = json_object_get(j, "model_mapping");
	if (!json_is_object(map) || json_object_size(map) == 0)
		map = NULL;
	rep = xcalloc(1, sizeof(*rep));
	rv = sched_acct_fill(s, c, j, platform,
	    map != NULL ? json_object_iter_key(json_object_iter(map)) : "-",
	    rep);
	if (rv == 0)
		rv = sched_acct_proxy(s, c, rep);
	OPENSSL_cleanse(rep, sizeof(*rep));
	free(rep);
	if (rv == 0 && map != NULL)
		*mapping = json_deep_copy(map);
	json_decref(j);
	if (rv == -ERR_INVAL)
		log_warn(
		    "sched.account_credentials_bad", LOG_I64("account", c->id));
	return rv;
}
