/*
 * sched_settings_test.c: the admin settings (sched_settings.c) against the
 * real PostgreSQL and Redis of tests/run.sh (SUB2API_TEST_DATABASE_URL,
 * SUB2API_TEST_REDIS_URL; missing variables fail loudly): the sticky TTL
 * override read from the settings table, refused values, 0 turning
 * sticky sessions off, the periodic reload, and the acquire path using
 * the value in force (the binding's PTTL in Redis).
 */
#include <stdio.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "sched.h"
#include "sched_fixture.h"
#include "t.h"

static const struct t_fixture T_FIXTURE = {
    .db_prefix = "sched_settings",
    .redis_prefix = "s2aset",
    .instance = "sched-settings-test",
    .key_tag = "set",
    .base_url = "http://127.0.0.1:9/fake-anthropic",
    .rds_conns = 4,
};

#define T_SESS     "0123456789abcdef0123456789abcdef"
#define T_DEFAULT  3600000 /* sticky_ttl's default, 1 h */
#define T_RELOAD_S "1s"

static void
t_setup(void)
{
	if (T_READY)
		return;
	setenv("SUB2API_SCHEDULER_SETTINGS_RELOAD_INTERVAL", T_RELOAD_S, 1);
	t_fixture_setup(&T_FIXTURE);
	S.settings = sched_settings_new(T_CFG);
}

/* Sets the sticky TTL row to value (NULL: deletes it). */
static void
t_setting(const char *value)
{
	const char *p[2] = {SCHED_SETTING_STICKY_TTL, value};

	if (value == NULL) {
		t_sql("DELETE FROM settings WHERE key = $1", 1, p);
		return;
	}
	t_sql("INSERT INTO settings (key, value) VALUES ($1, $2)"
	      " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
	    2, p);
}

/* ---- the log ------------------------------------------------------------ */

static FILE *T_LOG;

/* Sends the log to a fresh temporary file until t_log_end(). */
static void
t_log_begin(void)
{
	T_LOG = tmpfile();
	T_ASSERT(T_LOG != NULL);
	log_set_fd(fileno(T_LOG));
}

/* Stops capturing; how many captured lines hold needle. */
static int
t_log_end(const char *needle)
{
	char line[4096];
	int  n = 0;

	log_set_fd(2);
	rewind(T_LOG);
	while (fgets(line, sizeof(line), T_LOG) != NULL)
		if (strstr(line, needle) != NULL)
			n++;
	fclose(T_LOG);
	T_LOG = NULL;
	return n;
}

/* ---- an acquire with a session ------------------------------------------- */

/* A user, a group with one apikey account, a key: its hash into hash. */
static int64_t
t_seed(char *hash)
{
	char        email[64], name[64], id[24], g[24], *hex;
	const char *p[3];
	int64_t     uid, gid, aid;

	snprintf(email, sizeof(email), "set%d-%d@test", (int)getpid(), ++T_SEQ);
	p[0] = email;
	uid = t_sql("INSERT INTO users (email, balance) VALUES ($1, 10)"
	            " RETURNING id",
	    1, p);
	snprintf(name, sizeof(name), "setg%d-%d", (int)getpid(), ++T_SEQ);
	p[0] = name;
	gid = t_sql("INSERT INTO groups (name, platform) VALUES ($1,"
	            " 'anthropic') RETURNING id",
	    1, p);
	aid = t_account_seal("{\"api_key\":\"sk-up\"}", &hex);
	snprintf(id, sizeof(id), "%lld", (long long)aid);
	snprintf(g, sizeof(g), "%lld", (long long)gid);
	p[0] = id;
	p[1] = hex;
	p[2] = g;
	t_sql("WITH a AS (INSERT INTO accounts (id, name, platform, type,"
	      " credentials_enc) VALUES ($1::bigint, 'acct-' || $1,"
	      " 'anthropic', 'apikey', $2::bytea) RETURNING id)"
	      " INSERT INTO account_groups (account_id, group_id)"
	      " SELECT id, $3::bigint FROM a",
	    3, p);
	free(hex);
	t_key(uid, gid, hash);
	return gid;
}

/* One acquire of key hash with session T_SESS, released at once. */
static void
t_acquire_release(const char *hash)
{
	struct proto_sched_acquire_req  req;
	struct proto_sched_acquire_rep *rep;
	struct proto_env                env;
	struct buf                      b, reply;
	bool                            held = false;

	memset(&req, 0, sizeof(req));
	snprintf(req.request_id, sizeof(req.request_id), "set-%d", ++T_SEQ);
	snprintf(req.key_hash, sizeof(req.key_hash), "%s", hash);
	snprintf(req.model, sizeof(req.model), "claude-test");
	snprintf(req.session_hash, sizeof(req.session_hash), "%s", T_SESS);
	buf_init(&b, PROTO_MAX_MSG);
	T_OK(proto_sched_acquire_req_pack(&b, req.request_id, 0, &req));
	buf_init(&reply, PROTO_MAX_MSG);
	T_OK(sched_rep_handle(&S, b.data, b.len, &reply));
	buf_release(&b);
	T_OK(proto_env_unpack(reply.data, reply.len, &env));
	T_EQ_INT(env.type, MSG_SCHED_ACQUIRE_REP);
	rep = xcalloc(1, sizeof(*rep));
	T_OK(proto_sched_acquire_rep_unpack(&env, rep));
	buf_release(&reply);
	T_EQ_INT(rep->outcome, PROTO_ACQ_OK);
	T_OK(sched_slots_release(&S, rep->lease_id, rep->account_id, &held));
	T_ASSERT(held);
	free(rep);
}

/* PTTL of group gid's T_SESS binding: -2 when there is none. */
static int64_t
t_pttl(int64_t gid)
{
	redisReply *r;
	char        key[256];
	int64_t     v;

	snprintf(key, sizeof(key), "%ssticky:anthropic:%lld:%s", T_PREFIX,
	    (long long)gid, T_SESS);
	T_OK(rds_cmd(S.rds, &r, "PTTL %s", key));
	T_ASSERT(r->type == REDIS_REPLY_INTEGER);
	v = r->integer;
	freeReplyObject(r);
	return v;
}

/* ---- cases ----------------------------------------------------------------
 */

/* Without a row (or without the holder) the configuration applies. */
static void
test_default(void)
{
	struct sched_settings *keep;

	t_setup();
	keep = S.settings;
	S.settings = NULL;
	T_EQ_INT(sched_settings_sticky_ttl(&S), T_DEFAULT);
	T_EQ_INT(sched_settings_load(&S), -ERR_INVAL);
	S.settings = keep;
	t_setting(NULL);
	T_OK(sched_settings_load(&S));
	T_EQ_INT(sched_settings_sticky_ttl(&S), T_DEFAULT);
}

/* The override applies, and the acquire binds for that long. */
static void
test_override_applies(void)
{
	char    h[65];
	int64_t gid, ttl;

	t_setup();
	t_setting("120");
	t_log_begin();
	T_OK(sched_settings_load(&S));
	T_OK(sched_settings_load(&S)); /* the same value: logged once */
	T_EQ_INT(t_log_end("\"ev\":\"sched.setting_applied\""), 1);
	T_EQ_INT(sched_settings_sticky_ttl(&S), 120000);
	gid = t_seed(h);
	t_acquire_release(h);
	ttl = t_pttl(gid);
	T_ASSERT(ttl > 110000 && ttl <= 120000);
}

static const char *const t_bad_values[] = {
    "abc",
    "-5",
    "604801",
    "1e3",
    " 60",
    "60s",
    "12.5",
    "999999999999999999999999999999999999999999999999",
};

/* A bad value is refused with a log line; the default is kept. */
static void
test_bad_value_refused(void)
{
	size_t i;

	t_setup();
	for (i = 0; i < ARRAY_SIZE(t_bad_values); i++) {
		t_setting("120");
		T_OK(sched_settings_load(&S));
		T_EQ_INT(sched_settings_sticky_ttl(&S), 120000);
		t_setting(t_bad_values[i]);
		t_log_begin();
		T_OK(sched_settings_load(&S));
		T_OK(sched_settings_load(&S));
		T_EQ_INT(t_log_end("\"ev\":\"sched.setting_invalid\""), 1);
		T_EQ_INT(sched_settings_sticky_ttl(&S), T_DEFAULT);
		T_EQ_INT(sched_settings_apply_sticky(&S, t_bad_values[i]),
		    -ERR_INVAL);
	}
	/* The largest valid value is not refused. */
	T_OK(sched_settings_apply_sticky(&S, "604800"));
	T_EQ_INT(sched_settings_sticky_ttl(&S), 604800000LL);
}

/* 0 turns sticky sessions off: the acquire serves, binds nothing. */
static void
test_zero_disables(void)
{
	char    h[65];
	int64_t gid;

	t_setup();
	t_setting("0");
	T_OK(sched_settings_load(&S));
	T_EQ_INT(sched_settings_sticky_ttl(&S), 0);
	gid = t_seed(h);
	t_acquire_release(h);
	T_EQ_INT(t_pttl(gid), -2);
	/* And back on: the same session binds again. */
	t_setting("300");
	T_OK(sched_settings_load(&S));
	t_acquire_release(h);
	T_ASSERT(t_pttl(gid) > 290000);
}

/* Removing or emptying the row brings the configured default back. */
static void
test_cleared(void)
{
	t_setup();
	t_setting("42");
	T_OK(sched_settings_load(&S));
	T_EQ_INT(sched_settings_sticky_ttl(&S), 42000);
	t_setting("");
	T_OK(sched_settings_load(&S));
	T_EQ_INT(sched_settings_sticky_ttl(&S), T_DEFAULT);
	t_setting("42");
	T_OK(sched_settings_load(&S));
	t_setting(NULL);
	T_OK(sched_settings_load(&S));
	T_EQ_INT(sched_settings_sticky_ttl(&S), T_DEFAULT);
}

/* The job loads at once and again every period (1 s here). */
static void
test_reload_job(void)
{
	int64_t end;

	t_setup();
	t_setting("77");
	T_OK(sched_settings_start(&S));
	T_EQ_INT(sched_settings_start(&S), -ERR_INVAL);
	for (end = now_mono_ms() + 5000;
	     sched_settings_sticky_ttl(&S) != 77000 && now_mono_ms() < end;)
		usleep(20000);
	T_EQ_INT(sched_settings_sticky_ttl(&S), 77000);
	t_setting("78");
	for (end = now_mono_ms() + 5000;
	     sched_settings_sticky_ttl(&S) != 78000 && now_mono_ms() < end;)
		usleep(20000);
	T_EQ_INT(sched_settings_sticky_ttl(&S), 78000);
}

static void
test_kind(void)
{
	T_ASSERT(sched_settings_kind("setting"));
	T_ASSERT(sched_settings_kind("settings"));
	T_ASSERT(!sched_settings_kind("group"));
	T_ASSERT(!sched_settings_kind(""));
}

static void
test_zz_teardown(void)
{
	t_setup();
	sched_settings_free(S.settings);
	S.settings = NULL;
	sched_settings_free(NULL);
	t_redis_clean();
	t_fixture_teardown();
}

T_MAIN(T_CASE(test_default), T_CASE(test_override_applies),
    T_CASE(test_bad_value_refused), T_CASE(test_zero_disables),
    T_CASE(test_cleared), T_CASE(test_reload_job), T_CASE(test_kind),
    T_CASE(test_zz_teardown))
