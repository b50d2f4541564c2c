/*
 * sched_sticky_test.c: sticky sessions and the load-aware choice, against
 * the real PostgreSQL and Redis that tests/run.sh starts
 * (SUB2API_TEST_DATABASE_URL, SUB2API_TEST_REDIS_URL; missing variables
 * fail loudly).  Requests go through sched_rep_handle() as packed
 * envelopes; each case seeds its own users, groups, keys and accounts
 * (sched_fixture.h) and inspects the binding keys
 * <prefix>sticky:<platform>:<gid>:<hash> directly.
 */
#include <stdio.h>
#include <unistd.h>

#include "err.h"
#include "sched.h"
#include "sched_fixture.h"
#include "t.h"

static const struct t_fixture T_FIXTURE = {
    .db_prefix = "sched_sticky",
    .redis_prefix = "s2as",
    .instance = "sched-sticky-test",
    .key_tag = "sticky",
    .base_url = "http://127.0.0.1:9/fake-anthropic",
    .rds_conns = 4,
};

#define T_SESS  "0123456789abcdef0123456789abcdef"
#define T_SESS2 "fedcba9876543210fedcba9876543210"

static void
t_setup(void)
{
	t_fixture_setup(&T_FIXTURE);
}

/* ---- seeding ---------------------------------------------------------- */

static int64_t
t_user(int conc)
{
	char        email[64], c[16];
	const char *p[2] = {email, c};

	snprintf(email, sizeof(email), "s%d-%d@test", (int)getpid(), ++T_SEQ);
	snprintf(c, sizeof(c), "%d", conc);
	return t_sql("INSERT INTO users (email, balance, concurrency)"
	             " VALUES ($1, 10, $2::integer) RETURNING id",
	    2, p);
}

static int64_t
t_group(void)
{
	char        name[64];
	const char *p[1] = {name};

	snprintf(name, sizeof(name), "sg%d-%d", (int)getpid(), ++T_SEQ);
	return t_sql("INSERT INTO groups (name, platform) VALUES ($1,"
	             " 'anthropic') RETURNING id",
	    1, p);
}

/* An apikey account of concurrency conc and priority 10 in group gid. */
static int64_t
t_account(int64_t gid, int conc)
{
	char        id[24], c[16], g[24], *hex;
	const char *p[4];
	int64_t     aid;

	aid = t_account_seal("{\"api_key\":\"sk-up\"}", &hex);
	snprintf(id, sizeof(id), "%lld", (long long)aid);
	snprintf(c, sizeof(c), "%d", conc);
	snprintf(g, sizeof(g), "%lld", (long long)gid);
	p[0] = id;
	p[1] = hex;
	p[2] = c;
	p[3] = g;
	t_sql("WITH a AS (INSERT INTO accounts (id, name, platform, type,"
	      " credentials_enc, concurrency, priority) VALUES ($1::bigint,"
	      " 'acct-' || $1, 'anthropic', 'apikey', $2::bytea,"
	      " $3::integer, 10) RETURNING id)"
	      " INSERT INTO account_groups (account_id, group_id)"
	      " SELECT id, $4::bigint FROM a",
	    4, p);
	free(hex);
	return aid;
}

/* Adds account aid to group gid too. */
static void
t_join(int64_t aid, int64_t gid)
{
	char        a[24], g[24];
	const char *p[2] = {a, g};

	snprintf(a, sizeof(a), "%lld", (long long)aid);
	snprintf(g, sizeof(g), "%lld", (long long)gid);
	t_sql("INSERT INTO account_groups (account_id, group_id)"
	      " VALUES ($1::bigint, $2::bigint)",
	    2, p);
}

/* ---- requests --------------------------------------------------------- */

struct t_lease {
	char    id[PROTO_ID_MAX + 1];
	int64_t aid; /* 0: refused */
};

/* One acquire of key hash with session sess (NULL: none). */
static struct t_lease
t_acquire(const char *hash, const char *sess, const int64_t *excl, size_t nexcl)
{
	struct proto_sched_acquire_req  req;
	struct proto_sched_acquire_rep *rep;
	struct proto_env                env;
	struct buf                      b, reply;
	struct t_lease                  l = {{0}, 0};
	size_t                          i;

	memset(&req, 0, sizeof(req));
	snprintf(req.request_id, sizeof(req.request_id), "st-%d", ++T_SEQ);
	snprintf(req.key_hash, sizeof(req.key_hash), "%s", hash);
	snprintf(req.model, sizeof(req.model), "claude-test");
	snprintf(req.session_hash, sizeof(req.session_hash), "%s",
	    sess != NULL ? sess : "");
	for (i = 0; i < nexcl; i++)
		req.excluded[i] = excl[i];
	req.n_excluded = (uint32_t)nexcl;
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
	if (rep->outcome == PROTO_ACQ_OK) {
		snprintf(l.id, sizeof(l.id), "%s", rep->lease_id);
		l.aid = rep->account_id;
	}
	free(rep);
	return l;
}

static void
t_release(const struct t_lease *l)
{
	bool held;

	T_OK(sched_slots_release(&S, l->id, l->aid, &held));
	T_ASSERT(held);
}

/* Acquires and releases at once; returns the account. */
static int64_t
t_once(const char *hash, const char *sess, const int64_t *excl, size_t nexcl)
{
	struct t_lease l = t_acquire(hash, sess, excl, nexcl);

	T_ASSERT(l.aid != 0);
	t_release(&l);
	return l.aid;
}

/* a as decimal text, in one of 4 rotating buffers. */
static const char *
t_i64(int64_t a)
{
	static char b[4][24];
	static int  k;

	k = (k + 1) % 4;
	snprintf(b[k], sizeof(b[k]), "%lld", (long long)a);
	return b[k];
}

static void
t_bkey(int64_t gid, const char *sess, char *out, size_t cap)
{
	snprintf(out, cap, "%ssticky:anthropic:%lld:%s", T_PREFIX,
	    (long long)gid, sess);
}

/* The account session sess of group gid is bound to, 0 when none. */
static int64_t
t_bound(int64_t gid, const char *sess)
{
	redisReply *r;
	char        key[256];
	int64_t     v = 0;

	t_bkey(gid, sess, key, sizeof(key));
	T_OK(rds_cmd(S.rds, &r, "GET %s", key));
	if (r->type == REDIS_REPLY_STRING)
		v = strtoll(r->str, NULL, 10);
	freeReplyObject(r);
	return v;
}

static int64_t
t_pttl(int64_t gid, const char *sess)
{
	redisReply *r;
	char        key[256];
	int64_t     v;

	t_bkey(gid, sess, key, sizeof(key));
	T_OK(rds_cmd(S.rds, &r, "PTTL %s", key));
	v = r->integer;
	freeReplyObject(r);
	return v;
}

/* ---- cases ------------------------------------------------------------ */

static void
test_same_session_one_account(void)
{
	char    h[65];
	int64_t uid, gid, first;
	int     i;

	t_setup();
	uid = t_user(0);
	gid = t_group();
	for (i = 0; i < 4; i++)
		t_account(gid, 10);
	t_key(uid, gid, h);
	first = t_once(h, T_SESS, NULL, 0);
	T_EQ_INT(t_bound(gid, T_SESS), first);
	for (i = 1; i < 50; i++)
		T_EQ_INT(t_once(h, T_SESS, NULL, 0), first);
	/* Without a session the LRU order moves on. */
	T_ASSERT(t_once(h, NULL, NULL, 0) != first);
}

static void
test_spread(void)
{
	struct t_lease l[100];
	char           h[65], sess[40];
	int64_t        uid, gid, a[4];
	int            i, j, count[4] = {0};

	t_setup();
	uid = t_user(0);
	gid = t_group();
	for (j = 0; j < 4; j++)
		a[j] = t_account(gid, 1000);
	t_key(uid, gid, h);
	/* Held, so the load rate steers; released, the LRU order would. */
	for (i = 0; i < 100; i++) {
		snprintf(sess, sizeof(sess), "spread%04d", i);
		l[i] = t_acquire(h, sess, NULL, 0);
		T_ASSERT(l[i].aid != 0);
		T_EQ_INT(t_bound(gid, sess), l[i].aid);
		for (j = 0; j < 4; j++)
			count[j] += l[i].aid == a[j];
	}
	for (j = 0; j < 4; j++)
		T_ASSERT(count[j] <= 35);
	for (i = 0; i < 100; i++)
		t_release(&l[i]);
	/* Released one at a time, the LRU order spreads them too. */
	memset(count, 0, sizeof(count));
	for (i = 0; i < 100; i++) {
		int64_t aid;

		snprintf(sess, sizeof(sess), "lru%04d", i);
		aid = t_once(h, sess, NULL, 0);
		for (j = 0; j < 4; j++)
			count[j] += aid == a[j];
	}
	for (j = 0; j < 4; j++)
		T_ASSERT(count[j] <= 35);
}

static void
test_group_namespace(void)
{
	struct t_lease l1, l2;
	char           h1[65], h2[65];
	int64_t        u1, u2, g1, g2, a, b;

	t_setup();
	u1 = t_user(0);
	u2 = t_user(0);
	g1 = t_group();
	g2 = t_group();
	a = t_account(g1, 3);
	b = t_account(g1, 3);
	t_join(a, g2);
	t_join(b, g2);
	t_key(u1, g1, h1);
	t_key(u2, g2, h2);
	l1 = t_acquire(h1, T_SESS, NULL, 0);
	T_EQ_INT(l1.aid, a);
	/* Same hash, other group: its own choice (a is busier), own key. */
	l2 = t_acquire(h2, T_SESS, NULL, 0);
	T_EQ_INT(l2.aid, b);
	T_EQ_INT(t_bound(g1, T_SESS), a);
	T_EQ_INT(t_bound(g2, T_SESS), b);
	t_release(&l1);
	t_release(&l2);
	T_EQ_INT(t_once(h1, T_SESS, NULL, 0), a);
	T_EQ_INT(t_once(h2, T_SESS, NULL, 0), b);
}

static void
test_unschedulable_rebinds(void)
{
	char    h[65];
	int64_t uid, gid, a, b, got;

	t_setup();
	uid = t_user(0);
	gid = t_group();
	a = t_account(gid, 3);
	b = t_account(gid, 3);
	t_key(uid, gid, h);
	T_EQ_INT(t_once(h, T_SESS, NULL, 0), a);
	T_EQ_INT(t_bound(gid, T_SESS), a);
	t_sql1(
	    "UPDATE accounts SET schedulable = false WHERE id = $1::bigint", a);
	T_EQ_INT(t_once(h, T_SESS, NULL, 0), b);
	T_EQ_INT(t_bound(gid, T_SESS), b);
	/* Rate-limited in the database: the same. */
	t_sql1(
	    "UPDATE accounts SET schedulable = true WHERE id = $1::bigint", a);
	t_sql1("UPDATE accounts SET rate_limit_reset_at = now() + interval"
	       " '1 hour' WHERE id = $1::bigint",
	    b);
	got = t_once(h, T_SESS, NULL, 0);
	T_EQ_INT(got, a);
	T_EQ_INT(t_bound(gid, T_SESS), a);
	T_EQ_INT(t_once(h, T_SESS, NULL, 0), a);
}

static void
test_excluded_keeps_binding(void)
{
	char    h[65];
	int64_t uid, gid, a, b, excl[1];

	t_setup();
	uid = t_user(0);
	gid = t_group();
	a = t_account(gid, 3);
	b = t_account(gid, 3);
	t_key(uid, gid, h);
	T_EQ_INT(t_once(h, T_SESS, NULL, 0), a);
	excl[0] = a;
	T_EQ_INT(t_once(h, T_SESS, excl, 1), b);
	T_EQ_INT(t_bound(gid, T_SESS), a);
	/* The next request without the failover goes back. */
	T_EQ_INT(t_once(h, T_SESS, NULL, 0), a);
}

static void
test_full_keeps_binding(void)
{
	struct t_lease l1, l2;
	char           h[65];
	int64_t        uid, gid, a, b;

	t_setup();
	uid = t_user(0);
	gid = t_group();
	a = t_account(gid, 1);
	b = t_account(gid, 1);
	t_key(uid, gid, h);
	l1 = t_acquire(h, T_SESS, NULL, 0);
	T_EQ_INT(l1.aid, a);
	/*
	 * The bound account is full: the session waits for it (BUSY) while
	 * fewer than sticky_max_waiting (3) requests wait for it ...
	 */
	T_EQ_INT(T_CFG->sticky_max_waiting, 3);
	T_EQ_INT(t_acquire(h, T_SESS, NULL, 0).aid, 0);
	T_EQ_INT(t_acquire(h, T_SESS, NULL, 0).aid, 0);
	T_EQ_INT(t_acquire(h, T_SESS, NULL, 0).aid, 0);
	/* ... then another account serves it and the binding stays. */
	l2 = t_acquire(h, T_SESS, NULL, 0);
	T_EQ_INT(l2.aid, b);
	T_EQ_INT(t_bound(gid, T_SESS), a);
	/* Both full: BUSY, and the binding stays. */
	T_EQ_INT(t_acquire(h, T_SESS, NULL, 0).aid, 0);
	T_EQ_INT(t_bound(gid, T_SESS), a);
	t_release(&l1);
	t_release(&l2);
	T_EQ_INT(t_once(h, T_SESS, NULL, 0), a);
}

static void
test_ttl_refreshed(void)
{
	redisReply *r;
	char        h[65], key[256];
	int64_t     uid, gid, a, pttl;

	t_setup();
	uid = t_user(0);
	gid = t_group();
	a = t_account(gid, 3);
	t_key(uid, gid, h);
	T_EQ_INT(t_once(h, T_SESS, NULL, 0), a);
	pttl = t_pttl(gid, T_SESS);
	T_ASSERT(pttl > T_CFG->sticky_ttl - 5000 && pttl <= T_CFG->sticky_ttl);
	t_bkey(gid, T_SESS, key, sizeof(key));
	T_OK(rds_cmd(S.rds, &r, "PEXPIRE %s 2000", key));
	freeReplyObject(r);
	T_ASSERT(t_pttl(gid, T_SESS) <= 2000);
	T_EQ_INT(t_once(h, T_SESS, NULL, 0), a);
	pttl = t_pttl(gid, T_SESS);
	T_ASSERT(pttl > T_CFG->sticky_ttl - 5000 && pttl <= T_CFG->sticky_ttl);
	T_EQ_INT(T_CFG->sticky_ttl, 3600000);
}

static void
test_sticky_off(void)
{
	char    h[65];
	int64_t uid, gid, a, b, saved;

	t_setup();
	uid = t_user(0);
	gid = t_group();
	a = t_account(gid, 3);
	b = t_account(gid, 3);
	t_key(uid, gid, h);
	saved = T_CFG->sticky_ttl;
	T_CFG->sticky_ttl = 0;
	T_EQ_INT(t_once(h, T_SESS2, NULL, 0), a);
	T_EQ_INT(t_pttl(gid, T_SESS2), -2); /* no key */
	T_EQ_INT(t_once(h, T_SESS2, NULL, 0), b);
	T_CFG->sticky_ttl = saved;
	/* A malformed session hash is ignored, not an error. */
	T_ASSERT(t_once(h, "bad hash!", NULL, 0) != 0);
}

/*
 * The account cache: a list is read once and reused; the LRU order sees
 * this replica's picks at once; a change nobody announced shows only
 * after the TTL, an announced one (or a state change) at once; a pause
 * ends by the clock; last_used_at is written in one batch.
 */
static void
test_account_cache(void)
{
	char     h[65];
	int64_t  uid, gid, a, b, got[4];
	uint64_t loads;
	int      i;

	t_setup();
	uid = t_user(0);
	gid = t_group();
	a = t_account(gid, 3);
	b = t_account(gid, 3);
	t_key(uid, gid, h);
	loads = sched_acache_loads(S.acache);
	for (i = 0; i < 4; i++)
		got[i] = t_once(h, NULL, NULL, 0);
	T_EQ_INT(sched_acache_loads(S.acache), loads + 1);
	/* Never used: id order; then least recently used first. */
	T_EQ_INT(got[0], a);
	T_EQ_INT(got[1], b);
	T_EQ_INT(got[2], a);
	T_EQ_INT(got[3], b);
	/* Unannounced: the cached list still offers a (b is older now). */
	t_sql_quiet("UPDATE accounts SET schedulable = false WHERE id = "
	            "$1::bigint",
	    1, (const char *const[]){t_i64(a)});
	T_EQ_INT(t_once(h, NULL, NULL, 0), a);
	T_EQ_INT(sched_acache_loads(S.acache), loads + 1);
	/* Announced (config-changed): read again, a is gone. */
	sched_acache_invalidate(S.acache);
	for (i = 0; i < 3; i++)
		T_EQ_INT(t_once(h, NULL, NULL, 0), b);
	T_EQ_INT(sched_acache_loads(S.acache), loads + 2);
	/* A pause ends by the clock, with no read. */
	t_sql1("UPDATE accounts SET schedulable = true,"
	       " temp_unschedulable_until = now() + interval '300 ms'"
	       " WHERE id = $1::bigint",
	    a);
	T_EQ_INT(t_once(h, NULL, NULL, 0), b);
	loads = sched_acache_loads(S.acache);
	for (i = 0; i < 400 && t_once(h, NULL, NULL, 0) != a; i++)
		usleep(5000);
	T_ASSERT(i < 400);
	T_EQ_INT(sched_acache_loads(S.acache), loads);
	/* last_used_at: pending in memory, then one UPDATE for both. */
	T_ASSERT(sched_acache_pending(S.acache) >= 2);
	T_EQ_INT(t_sql1("SELECT count(*) FROM accounts WHERE last_used_at IS"
	                " NOT NULL AND id IN ($1::bigint, $1::bigint + 1)",
	             a),
	    0);
	T_OK(sched_acache_flush(S.acache, DB));
	T_EQ_INT(sched_acache_pending(S.acache), 0);
	T_EQ_INT(t_sql1("SELECT count(*) FROM accounts WHERE last_used_at IS"
	                " NOT NULL AND id IN ($1::bigint, $1::bigint + 1)",
	             a),
	    2);
	T_ASSERT(sched_acache_kind("account") && sched_acache_kind("proxy") &&
	    sched_acache_kind("group") && !sched_acache_kind("user") &&
	    !sched_acache_kind("api_key"));
}

static void
test_zz_teardown(void)
{
	t_setup();
	t_redis_clean();
	t_fixture_teardown();
}

T_MAIN(T_CASE(test_same_session_one_account), T_CASE(test_spread),
    T_CASE(test_group_namespace), T_CASE(test_unschedulable_rebinds),
    T_CASE(test_excluded_keeps_binding), T_CASE(test_full_keeps_binding),
    T_CASE(test_ttl_refreshed), T_CASE(test_sticky_off),
    T_CASE(test_account_cache), T_CASE(test_zz_teardown))
