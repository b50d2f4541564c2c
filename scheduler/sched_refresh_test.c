/*
 * sched_refresh_test.c: OAuth token refresh (sched_refresh.c) against the
 * real PostgreSQL and Redis of tests/run.sh (SUB2API_TEST_DATABASE_URL,
 * SUB2API_TEST_REDIS_URL; missing variables fail loudly) and the real
 * fake upstream, build/bin/sub2api-fakeup, started here on a free port
 * (SUB2API_FAKEUP_BIN overrides the path).  Failures are driven through
 * the fake's per-key controls (the refresh token is the key), and its
 * request counter tells how many attempts were made.
 */
#include <sys/wait.h>

#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "err.h"
#include "sched.h"
#include "sched_fixture.h"
#include "sched_refresh.h"
#include "t.h"

static const struct t_fixture T_FIXTURE = {
    .db_prefix = "sched_refresh_test",
    .redis_prefix = "s2arf",
    .instance = "sched-refresh-test",
    .key_tag = "rf",
    .base_url = NULL,
    .rds_conns = 4,
};

static pid_t T_FAKE_PID;
static char  T_FAKE_ADDR[64];

/* ---- the fake upstream ------------------------------------------------- */

/* Starts sub2api-fakeup and waits for its "listening" line. */
static void
t_fake_start(void)
{
	const char *bin = getenv("SUB2API_FAKEUP_BIN");
	char        line[128];
	FILE       *f;
	int         fds[2];

	if (bin == NULL || *bin == '\0')
		bin = "build/bin/sub2api-fakeup";
	T_OK(pipe(fds));
	T_FAKE_PID = fork();
	T_ASSERT(T_FAKE_PID >= 0);
	if (T_FAKE_PID == 0) {
		dup2(fds[1], STDOUT_FILENO);
		close(fds[0]);
		close(fds[1]);
		execl(bin, bin, "--listen", "127.0.0.1:0", "--log-level",
		    "warn", (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	f = fdopen(fds[0], "r");
	T_ASSERT(f != NULL);
	if (fgets(line, sizeof(line), f) == NULL ||
	    sscanf(line, "listening %63s", T_FAKE_ADDR) != 1)
		t_fail(__FILE__, __LINE__, "%s did not start (build it first)",
		    bin);
	fclose(f);
}

static void
t_fake_stop(void)
{
	if (T_FAKE_PID <= 0)
		return;
	kill(T_FAKE_PID, SIGTERM);
	waitpid(T_FAKE_PID, NULL, 0);
	T_FAKE_PID = 0;
}

static size_t
t_write_cb(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct buf *b = arg;

	if (buf_add(b, ptr, size * nmemb) != 0)
		return 0;
	return size * nmemb;
}

/* One control request to the fake; its JSON reply (owned). */
static json_t *
t_fake(const char *method, const char *path, const char *body)
{
	char       url[256];
	struct buf b;
	CURL      *c = curl_easy_init();
	long       status = 0;
	json_t    *j;

	T_ASSERT(c != NULL);
	buf_init(&b, 1 << 20);
	snprintf(url, sizeof(url), "http://%s%s", T_FAKE_ADDR, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, t_write_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
	if (body != NULL)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	T_EQ_INT(curl_easy_perform(c), CURLE_OK);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	T_EQ_INT(status, 200);
	j = json_loadb(buf_str(&b), b.len, 0, NULL);
	buf_release(&b);
	T_ASSERT(j != NULL);
	return j;
}

/* Requests the fake has served (control requests excepted). */
static int64_t
t_fake_total(void)
{
	json_t *j = t_fake("GET", "/_fake/stats", NULL);
	int64_t n = json_integer_value(json_object_get(j, "total"));

	json_decref(j);
	return n;
}

/* The next count requests with refresh token rt fail with mode. */
static void
t_fake_fail(const char *rt, const char *mode, int count)
{
	char path[256], body[128];

	snprintf(path, sizeof(path), "/_fake/keys/%s", rt);
	snprintf(
	    body, sizeof(body), "{\"mode\":\"%s\",\"count\":%d}", mode, count);
	json_decref(t_fake("POST", path, body));
}

static void
t_setup(void)
{
	char url[128];

	if (T_READY)
		return;
	T_OK(curl_global_init(CURL_GLOBAL_DEFAULT));
	t_fake_start();
	snprintf(url, sizeof(url), "http://%s/v1/oauth/token", T_FAKE_ADDR);
	setenv("SUB2API_SCHEDULER_ANTHROPIC_TOKEN_URL", url, 1);
	setenv("SUB2API_SCHEDULER_TOKEN_REFRESH_BACKOFF", "20ms", 1);
	setenv("SUB2API_SCHEDULER_TOKEN_REFRESH_RETRIES", "3", 1);
	setenv("SUB2API_SCHEDULER_TOKEN_REFRESH_BEFORE", "30m", 1);
	t_fixture_setup(&T_FIXTURE);
}

/* ---- accounts ---------------------------------------------------------- */

/* Seals creds for the existing account aid as a bytea text (owned). */
static char *
t_seal_for(int64_t aid, const char *creds)
{
	char     aad[96], *h;
	uint8_t *blob;
	size_t   blen;

	snprintf(aad, sizeof(aad), CRYPTO_AAD_ACCOUNT_FMT, (long long)aid);
	T_OK(crypto_seal(
	    &S.key, aad, strlen(aad), creds, strlen(creds), &blob, &blen));
	h = xmalloc(2 * blen + 3);
	memcpy(h, "\\x", 2);
	T_OK(crypto_hex_encode(blob, blen, h + 2, 2 * blen + 1));
	free(blob);
	return h;
}

/* An anthropic account of type with credentials creds (JSON text). */
static int64_t
t_account(const char *type, const char *creds)
{
	char        id[24], *hex;
	const char *p[3];
	int64_t     aid;

	aid = t_account_seal(creds, &hex);
	snprintf(id, sizeof(id), "%lld", (long long)aid);
	p[0] = id;
	p[1] = type;
	p[2] = hex;
	t_sql("INSERT INTO accounts (id, name, platform, type,"
	      " credentials_enc) VALUES ($1::bigint, 'rf-' || $1,"
	      " 'anthropic', $2, $3::bytea)",
	    3, p);
	free(hex);
	return aid;
}

/*
 * An oauth (or setup-token) account whose token expires in exp_s
 * seconds; its refresh token, unique per account, into rt.
 */
static int64_t
t_oauth(const char *type, int64_t exp_s, char *rt, size_t cap)
{
	char creds[512];

	snprintf(rt, cap, "rt-%d-%d", (int)getpid(), ++T_SEQ);
	snprintf(creds, sizeof(creds),
	    "{\"access_token\":\"at-old-%d\",\"refresh_token\":\"%s\","
	    "\"expires_at\":\"%lld\",\"expires_in\":\"3600\","
	    "\"keep_me\":\"yes\",\"model_mapping\":{\"a\":\"b\"}}",
	    T_SEQ, rt, (long long)(now_wall_ms() / 1000 + exp_s));
	return t_account(type, creds);
}

/* The credentials_enc of aid as bytea text (owned). */
static char *
t_hex(int64_t aid)
{
	char        id[24];
	const char *p[1] = {id};
	PGresult   *res;
	char       *h;

	snprintf(id, sizeof(id), "%lld", (long long)aid);
	T_OK(pg_exec(DB, "SELECT credentials_enc FROM accounts WHERE id = $1",
	    1, p, &res));
	T_EQ_INT(PQntuples(res), 1);
	h = xstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	return h;
}

/* The decrypted credentials of aid as stored now (owned). */
static json_t *
t_creds(int64_t aid)
{
	struct sched_cand c = {.id = aid};
	uint8_t          *pt;
	size_t            ptlen;
	json_t           *j;

	c.creds_enc_hex = t_hex(aid);
	T_OK(sched_acct_open(&S, &c, &pt, &ptlen));
	free(c.creds_enc_hex);
	j = json_loadb((const char *)pt, ptlen, 0, NULL);
	crypto_free_secret(pt, ptlen + 1);
	T_ASSERT(json_is_object(j));
	return j;
}

static const char *
t_str(json_t *j, const char *k)
{
	const char *s = json_string_value(json_object_get(j, k));

	return s != NULL ? s : "";
}

/* status and error_message of aid into the buffers. */
static void
t_state(int64_t aid, char *status, size_t scap, char *msg, size_t mcap)
{
	char        id[24];
	const char *p[1] = {id};
	PGresult   *res;

	snprintf(id, sizeof(id), "%lld", (long long)aid);
	T_OK(pg_exec(DB,
	    "SELECT status, error_message FROM accounts WHERE id = $1", 1, p,
	    &res));
	T_EQ_INT(PQntuples(res), 1);
	snprintf(status, scap, "%s", PQgetvalue(res, 0, 0));
	snprintf(msg, mcap, "%s", PQgetvalue(res, 0, 1));
	PQclear(res);
}

/* Checks that aid was refreshed from refresh token old_rt. */
static void
t_assert_refreshed(int64_t aid, const char *old_rt)
{
	json_t *j = t_creds(aid);
	int64_t exp = 0;

	T_ASSERT(
	    strncmp(t_str(j, "access_token"), "sk-ant-oat01-fake-", 18) == 0);
	T_ASSERT(
	    strncmp(t_str(j, "refresh_token"), "sk-ant-ort01-fake-", 18) == 0);
	T_ASSERT(strcmp(t_str(j, "refresh_token"), old_rt) != 0);
	T_OK(sched_refresh_expiry(j, &exp));
	T_ASSERT(exp > now_wall_ms() / 1000 + 3600);
	T_ASSERT(json_is_string(json_object_get(j, "expires_at")));
	T_EQ_STR(t_str(j, "expires_in"), "28800");
	T_EQ_STR(t_str(j, "keep_me"), "yes");
	T_EQ_STR(t_str(json_object_get(j, "model_mapping"), "a"), "b");
	json_decref(j);
}

/* Checks that aid still holds its original tokens. */
static void
t_assert_untouched(int64_t aid, const char *rt)
{
	json_t *j = t_creds(aid);

	T_EQ_STR(t_str(j, "refresh_token"), rt);
	T_ASSERT(strncmp(t_str(j, "access_token"), "at-old-", 7) == 0);
	json_decref(j);
}

/* ---- cases ------------------------------------------------------------- */

static const struct t_expiry_case {
	const char *json;
	int         rv;
	int64_t     want;
} t_expiry_cases[] = {
    {"{\"expires_at\":\"1700000000\"}", 0, 1700000000},
    {"{\"expires_at\":1700000000}", 0, 1700000000},
    {"{\"expires_at\":1700000000.5}", 0, 1700000000},
    {"{\"expires_at\":\"1700000000000\"}", 0, 1700000000},
    {"{\"expires_at\":\"2023-11-14T22:13:20Z\"}", 0, 1700000000},
    {"{\"expires_at\":\"2023-11-14T22:13:20.123Z\"}", 0, 1700000000},
    {"{\"expires_at\":\"2023-11-15T00:13:20+02:00\"}", 0, 1700000000},
    {"{\"expires_at\":\"2023-11-14T21:13:20-01:00\"}", 0, 1700000000},
    {"{\"expires_at\":\"2000-02-29T00:00:00Z\"}", 0, 951782400},
    {"{\"expires_at\":\"soon\"}", -ERR_INVAL, 0},
    {"{\"expires_at\":\"2023-11-14T22:13:20\"}", -ERR_INVAL, 0},
    {"{\"expires_at\":\"2023-13-14T22:13:20Z\"}", -ERR_INVAL, 0},
    {"{\"expires_at\":\"\"}", -ERR_INVAL, 0},
    {"{\"expires_at\":null}", -ERR_NOTFOUND, 0},
    {"{}", -ERR_NOTFOUND, 0},
};

static void
test_expiry_formats(void)
{
	const struct t_expiry_case *cases = t_expiry_cases;

	size_t  i;
	int64_t v;
	json_t *j;

	for (i = 0; i < ARRAY_SIZE(t_expiry_cases); i++) {
		j = json_loads(cases[i].json, 0, NULL);
		T_ASSERT(j != NULL);
		v = 0;
		T_EQ_INT(sched_refresh_expiry(j, &v), cases[i].rv);
		if (cases[i].rv == 0)
			T_EQ_INT(v, cases[i].want);
		json_decref(j);
	}
}

/*
 * The scan: the account expiring in 10 min is refreshed, the one in 2 h
 * (RFC 3339 expiry) and the setup-token one are left alone.
 */
static void
test_scan(void)
{
	char    rt_due[64], rt_far[64], rt_st[64], creds[512], id[24];
	char    ts[32];
	int64_t due, far, st, t;

	t_setup();
	due = t_oauth("oauth", 600, rt_due, sizeof(rt_due));
	st = t_oauth("setup-token", 600, rt_st, sizeof(rt_st));
	/* An RFC 3339 expiry 2 h ahead, made with PostgreSQL's clock. */
	snprintf(rt_far, sizeof(rt_far), "rt-far-%d", (int)getpid());
	t = now_wall_ms() / 1000 + 7200;
	snprintf(id, sizeof(id), "%lld", (long long)t);
	{
		const char *p[1] = {id};
		PGresult   *res;

		T_OK(pg_exec(DB,
		    "SELECT to_char(to_timestamp($1::bigint) AT TIME ZONE"
		    " 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
		    1, p, &res));
		snprintf(ts, sizeof(ts), "%s", PQgetvalue(res, 0, 0));
		PQclear(res);
	}
	snprintf(creds, sizeof(creds),
	    "{\"access_token\":\"at-old-far\",\"refresh_token\":\"%s\","
	    "\"expires_at\":\"%s\"}",
	    rt_far, ts);
	far = t_account("oauth", creds);

	T_EQ_INT(sched_refresh_scan(&S), 1);
	t_assert_refreshed(due, rt_due);
	t_assert_untouched(far, rt_far);
	t_assert_untouched(st, rt_st);
	/* Nothing is due any more. */
	T_EQ_INT(sched_refresh_scan(&S), 0);
	/* A setup-token account is not refreshed even when forced. */
	T_EQ_INT(sched_refresh_account(&S, st, true), -ERR_NOTFOUND);
	T_EQ_INT(sched_refresh_account(&S, far, false), -ERR_CANCELED);
	T_EQ_INT(sched_refresh_account(&S, 999999999, true), -ERR_NOTFOUND);
	t_assert_untouched(st, rt_st);
	t_assert_untouched(far, rt_far);
}

static void
test_force(void)
{
	char    rt[64], st[16], msg[256];
	int64_t aid, n;

	t_setup();
	aid = t_oauth("oauth", 7200, rt, sizeof(rt));
	T_EQ_INT(sched_refresh_account(&S, aid, false), -ERR_CANCELED);
	t_assert_untouched(aid, rt);
	/* A force refresh also heals an account a refresh failure broke. */
	t_sql1("UPDATE accounts SET status = 'error', error_message ="
	       " 'Token refresh failed: HTTP 500' WHERE id = $1::bigint",
	    aid);
	n = t_fake_total();
	T_OK(sched_refresh_account(&S, aid, true));
	T_EQ_INT(t_fake_total() - n, 1);
	t_assert_refreshed(aid, rt);
	t_state(aid, st, sizeof(st), msg, sizeof(msg));
	T_EQ_STR(st, "active");
	T_EQ_STR(msg, "");
}

/* A lock held by another replica makes this one skip. */
static void
test_lock_held(void)
{
	char        rt[64], key[128];
	redisReply *r;
	int64_t     aid, n;

	t_setup();
	aid = t_oauth("oauth", 600, rt, sizeof(rt));
	snprintf(
	    key, sizeof(key), "%srefresh_lock:%lld", T_PREFIX, (long long)aid);
	T_OK(rds_cmd(S.rds, &r, "SET %s other-replica PX 60000", key));
	freeReplyObject(r);
	n = t_fake_total();
	T_EQ_INT(sched_refresh_account(&S, aid, false), -ERR_BUSY);
	T_EQ_INT(sched_refresh_account(&S, aid, true), -ERR_BUSY);
	T_EQ_INT(t_fake_total() - n, 0);
	t_assert_untouched(aid, rt);
	/* The other replica's lock is not ours to drop. */
	T_OK(rds_cmd(S.rds, &r, "GET %s", key));
	T_ASSERT(r->type == REDIS_REPLY_STRING);
	T_EQ_STR(r->str, "other-replica");
	freeReplyObject(r);
	T_OK(rds_cmd(S.rds, &r, "DEL %s", key));
	freeReplyObject(r);
	/* Once it is gone, this replica refreshes and drops its own lock. */
	T_OK(sched_refresh_account(&S, aid, false));
	t_assert_refreshed(aid, rt);
	T_OK(rds_cmd(S.rds, &r, "EXISTS %s", key));
	T_EQ_INT(r->integer, 0);
	freeReplyObject(r);
}

/* invalid_grant is final: one request, the account in 'error'. */
static void
test_invalid_grant(void)
{
	char    rt[64], st[16], msg[256];
	int64_t aid, n;

	t_setup();
	aid = t_oauth("oauth", 600, rt, sizeof(rt));
	t_fake_fail(rt, "invalid-grant", 5);
	n = t_fake_total();
	T_EQ_INT(sched_refresh_account(&S, aid, false), -ERR_AUTH);
	T_EQ_INT(t_fake_total() - n, 1);
	t_assert_untouched(aid, rt);
	t_state(aid, st, sizeof(st), msg, sizeof(msg));
	T_EQ_STR(st, "error");
	T_EQ_STR(msg, "Token refresh failed: invalid_grant HTTP 400");
	T_ASSERT(strstr(msg, rt) == NULL);
	/* An account in 'error' is no longer scanned nor refreshed. */
	T_EQ_INT(sched_refresh_account(&S, aid, false), -ERR_NOTFOUND);
	T_EQ_INT(sched_refresh_scan(&S), 0);
	T_EQ_INT(t_fake_total() - n, 1);
}

/* 500 twice, then success on the third attempt. */
static void
test_500_then_ok(void)
{
	char    rt[64], st[16], msg[256];
	int64_t aid, n;

	t_setup();
	aid = t_oauth("oauth", 600, rt, sizeof(rt));
	t_fake_fail(rt, "500", 2);
	n = t_fake_total();
	T_OK(sched_refresh_account(&S, aid, false));
	T_EQ_INT(t_fake_total() - n, 3);
	t_assert_refreshed(aid, rt);
	t_state(aid, st, sizeof(st), msg, sizeof(msg));
	T_EQ_STR(st, "active");
}

/* 500 on every attempt: the account ends in 'error' after 3. */
static void
test_500_exhausted(void)
{
	char    rt[64], st[16], msg[256];
	int64_t aid, n;

	t_setup();
	aid = t_oauth("oauth", 600, rt, sizeof(rt));
	t_fake_fail(rt, "500", 10);
	n = t_fake_total();
	T_EQ_INT(sched_refresh_account(&S, aid, false), -ERR_UNAVAIL);
	T_EQ_INT(t_fake_total() - n, 3);
	t_assert_untouched(aid, rt);
	t_state(aid, st, sizeof(st), msg, sizeof(msg));
	T_EQ_STR(st, "error");
	T_EQ_STR(msg, "Token refresh failed: HTTP 500");
}

static int64_t T_CAS_AID;

/* Stands for an admin who replaces the credentials mid-refresh. */
static void
t_cas_hook(int64_t aid)
{
	char        id[24], *hex;
	const char *p[2] = {id, NULL};

	T_EQ_INT(aid, T_CAS_AID);
	hex = t_seal_for(aid,
	    "{\"access_token\":\"admin-set\",\"refresh_token\":\"admin-rt\"}");
	snprintf(id, sizeof(id), "%lld", (long long)aid);
	p[1] = hex;
	t_sql("UPDATE accounts SET credentials_enc = $2::bytea"
	      " WHERE id = $1::bigint",
	    2, p);
	free(hex);
}

/* The row changed between read and write: the stale write is refused. */
static void
test_cas_guard(void)
{
	char    rt[64], st[16], msg[256];
	json_t *j;
	int64_t aid;

	t_setup();
	aid = t_oauth("oauth", 600, rt, sizeof(rt));
	T_CAS_AID = aid;
	sched_refresh_store_hook = t_cas_hook;
	T_EQ_INT(sched_refresh_account(&S, aid, false), -ERR_CONFLICT);
	sched_refresh_store_hook = NULL;
	j = t_creds(aid);
	T_EQ_STR(t_str(j, "access_token"), "admin-set");
	T_EQ_STR(t_str(j, "refresh_token"), "admin-rt");
	json_decref(j);
	t_state(aid, st, sizeof(st), msg, sizeof(msg));
	T_EQ_STR(st, "active");
}

/* ---- proxies ----------------------------------------------------------- */

/*
 * A proxy row (http, 127.0.0.1:port, user "pu") for account aid, with a
 * password sealed for proxy row seal_for (0: its own row), status and,
 * when deleted, a deleted_at.
 */
static int64_t
t_proxy_for(
    int64_t aid, int port, const char *status, bool deleted, int64_t seal_for)
{
	char        id[24], a[24], po[16], aad[96], *h;
	const char *p[5] = {id, po, status, NULL, deleted ? "t" : "f"};
	uint8_t    *blob;
	size_t      blen;
	int64_t     pid;

	pid = t_sql(
	    "SELECT nextval(pg_get_serial_sequence('proxies', 'id'))", 0, NULL);
	snprintf(aad, sizeof(aad), CRYPTO_AAD_PROXY_FMT,
	    (long long)(seal_for != 0 ? seal_for : pid));
	T_OK(crypto_seal(
	    &S.key, aad, strlen(aad), "pw-secret", 9, &blob, &blen));
	h = xmalloc(2 * blen + 3);
	memcpy(h, "\\x", 2);
	T_OK(crypto_hex_encode(blob, blen, h + 2, 2 * blen + 1));
	free(blob);
	snprintf(id, sizeof(id), "%lld", (long long)pid);
	snprintf(po, sizeof(po), "%d", port);
	p[3] = h;
	t_sql("INSERT INTO proxies (id, name, protocol, host, port, username,"
	      " password_enc, status, deleted_at) VALUES ($1::bigint,"
	      " 'px-' || $1, 'http', '127.0.0.1', $2::integer, 'pu',"
	      " $4::bytea, $3, CASE WHEN $5::boolean THEN now() END)",
	    5, p);
	free(h);
	snprintf(a, sizeof(a), "%lld", (long long)aid);
	p[0] = id;
	p[1] = a;
	t_sql("UPDATE accounts SET proxy_id = $1::bigint WHERE id = $2::bigint",
	    2, p);
	return pid;
}

/*
 * An account whose proxy is disabled, deleted or has a password that
 * does not open is not refreshed at all (no direct connection), and not
 * marked either; the proxy's id is logged, never its password.
 */
static void
test_proxy_unusable(void)
{
	char        rt[64], st[16], msg[256];
	const char *status[3] = {"disabled", "active", "active"};
	bool        deleted[3] = {false, true, false};
	int64_t     aid, n;
	int         i;

	t_setup();
	for (i = 0; i < 3; i++) {
		aid = t_oauth("oauth", 600, rt, sizeof(rt));
		(void)t_proxy_for(
		    aid, 9, status[i], deleted[i], i == 2 ? 999999 : 0);
		n = t_fake_total();
		T_EQ_INT(sched_refresh_account(&S, aid, false), -ERR_FORBIDDEN);
		T_EQ_INT(sched_refresh_account(&S, aid, true), -ERR_FORBIDDEN);
		T_EQ_INT(t_fake_total() - n, 0);
		t_assert_untouched(aid, rt);
		t_state(aid, st, sizeof(st), msg, sizeof(msg));
		T_EQ_STR(st, "active");
		T_EQ_STR(msg, "");
	}
}

/*
 * An active proxy is used: one that refuses connections (nothing listens
 * on its port) makes every attempt fail, so the fake never sees the
 * refresh (a direct connection would have succeeded) and the account is
 * marked with the transport error.
 */
static void
test_proxy_used(void)
{
	char    rt[64], st[16], msg[256];
	int64_t aid, n;

	t_setup();
	aid = t_oauth("oauth", 600, rt, sizeof(rt));
	(void)t_proxy_for(aid, 9, "active", false, 0);
	n = t_fake_total();
	T_EQ_INT(sched_refresh_account(&S, aid, false), -ERR_CURL);
	T_EQ_INT(t_fake_total() - n, 0);
	t_assert_untouched(aid, rt);
	t_state(aid, st, sizeof(st), msg, sizeof(msg));
	T_EQ_STR(st, "error");
	T_ASSERT(strncmp(msg, "Token refresh failed: transport:", 32) == 0);
}

/* Without a proxy of its own, the environment's proxy is ignored. */
static void
test_proxy_env_ignored(void)
{
	char    rt[64];
	int64_t aid;

	t_setup();
	aid = t_oauth("oauth", 600, rt, sizeof(rt));
	setenv("http_proxy", "http://127.0.0.1:9", 1);
	setenv("HTTP_PROXY", "http://127.0.0.1:9", 1);
	T_OK(sched_refresh_account(&S, aid, false));
	unsetenv("http_proxy");
	unsetenv("HTTP_PROXY");
	t_assert_refreshed(aid, rt);
}

/* The job starts, runs its first scan at once, and stops. */
static void
test_job(void)
{
	struct sched_refresh *job = NULL;
	char                  rt[64];
	int64_t               aid, end;
	json_t               *j;
	bool                  done = false;

	t_setup();
	aid = t_oauth("oauth", 60, rt, sizeof(rt));
	T_OK(sched_refresh_start(&S, &job));
	for (end = now_mono_ms() + 5000; !done && now_mono_ms() < end;) {
		usleep(20000);
		j = t_creds(aid);
		done = strcmp(t_str(j, "refresh_token"), rt) != 0;
		json_decref(j);
	}
	sched_refresh_stop(job);
	T_ASSERT(done);
	t_assert_refreshed(aid, rt);
	sched_refresh_stop(NULL);
}

static void
test_zz_teardown(void)
{
	/* The fixture's t_key() is not marked UNUSED. */
	t_setup();
	t_redis_clean();
	t_fixture_teardown();
	t_fake_stop();
	curl_global_cleanup();
}

T_MAIN(T_CASE(test_expiry_formats), T_CASE(test_scan), T_CASE(test_force),
    T_CASE(test_lock_held), T_CASE(test_invalid_grant),
    T_CASE(test_500_then_ok), T_CASE(test_500_exhausted),
    T_CASE(test_cas_guard), T_CASE(test_proxy_unusable),
    T_CASE(test_proxy_used), T_CASE(test_proxy_env_ignored), T_CASE(test_job),
    T_CASE(test_zz_teardown))
