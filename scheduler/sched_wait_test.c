/*
 * sched_wait_test.c: per-API-key slots and the wait queues of the acquire
 * script, against the real PostgreSQL and Redis that tests/run.sh starts
 * (SUB2API_TEST_DATABASE_URL, SUB2API_TEST_REDIS_URL; missing variables
 * fail loudly).  Requests go through sched_rep_handle() as packed
 * envelopes; each case seeds its own users, groups, keys and accounts
 * (sched_fixture.h) and inspects the slot and wait sets directly.
 */
#include <stdio.h>
#include <unistd.h>

#include "err.h"
#include "sched.h"
#include "sched_fixture.h"
#include "sched_sweep.h"
#include "t.h"

static const struct t_fixture T_FIXTURE = {
    .db_prefix = "sched_wait",
    .redis_prefix = "s2aw",
    .instance = "sched-wait-test",
    .key_tag = "wait",
    .base_url = "http://127.0.0.1:9/fake-anthropic",
    .rds_conns = 4,
};

#define T_SESS "0123456789abcdef0123456789abcdef"

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

	snprintf(email, sizeof(email), "w%d-%d@test", (int)getpid(), ++T_SEQ);
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

	snprintf(name, sizeof(name), "wg%d-%d", (int)getpid(), ++T_SEQ);
	return t_sql("INSERT INTO groups (name, platform) VALUES ($1,"
	             " 'anthropic') RETURNING id",
	    1, p);
}

/* An apikey account of concurrency conc and priority prio in gid. */
static int64_t
t_account(int64_t gid, int conc, int prio)
{
	char        id[24], c[16], pr[16], g[24], *hex;
	const char *p[5];
	int64_t     aid;

	aid = t_account_seal("{\"api_key\":\"sk-up\"}", &hex);
	snprintf(id, sizeof(id), "%lld", (long long)aid);
	snprintf(c, sizeof(c), "%d", conc);
	snprintf(pr, sizeof(pr), "%d", prio);
	snprintf(g, sizeof(g), "%lld", (long long)gid);
	p[0] = id;
	p[1] = hex;
	p[2] = c;
	p[3] = pr;
	p[4] = g;
	t_sql("WITH a AS (INSERT INTO accounts (id, name, platform, type,"
	      " credentials_enc, concurrency, priority) VALUES ($1::bigint,"
	      " 'acct-' || $1, 'anthropic', 'apikey', $2::bytea,"
	      " $3::integer, $4::integer) RETURNING id)"
	      " INSERT INTO account_groups (account_id, group_id)"
	      " SELECT id, $5::bigint FROM a",
	    5, p);
	free(hex);
	return aid;
}

/* A key of uid in gid with concurrency conc; its hash into hash. */
static int64_t
t_key_conc(int64_t uid, int64_t gid, int conc, char *hash)
{
	int64_t     kid = t_key(uid, gid, hash);
	char        k[24], c[16];
	const char *p[2] = {k, c};

	snprintf(k, sizeof(k), "%lld", (long long)kid);
	snprintf(c, sizeof(c), "%d", conc);
	t_sql("UPDATE api_keys SET concurrency = $2::integer"
	      " WHERE id = $1::bigint",
	    2, p);
	return kid;
}

/* ---- requests --------------------------------------------------------- */

struct t_res {
	int     outcome;
	int64_t aid;
	char    lease[PROTO_ID_MAX + 1];
	char    msg[PROTO_TEXT_MAX + 1];
};

/* Packs an acquire of key hash as request rid, session sess (NULL:
 * none), into b (a fresh buffer). */
static void
t_pack_acq(struct buf *b, const char *hash, const char *rid, const char *sess)
{
	struct proto_sched_acquire_req req;

	memset(&req, 0, sizeof(req));
	snprintf(req.request_id, sizeof(req.request_id), "%s", rid);
	snprintf(req.key_hash, sizeof(req.key_hash), "%s", hash);
	snprintf(req.model, sizeof(req.model), "claude-test");
	snprintf(req.client_ip, sizeof(req.client_ip), "127.0.0.1");
	snprintf(req.session_hash, sizeof(req.session_hash), "%s",
	    sess != NULL ? sess : "");
	buf_init(b, PROTO_MAX_MSG);
	T_OK(proto_sched_acquire_req_pack(b, rid, 0, &req));
}

/* Packs a successful attempt's release of lease (account aid) into b. */
static void
t_pack_rel(struct buf *b, const char *lease, int64_t aid)
{
	struct proto_sched_release_req req;

	memset(&req, 0, sizeof(req));
	snprintf(req.lease_id, sizeof(req.lease_id), "%s", lease);
	req.account_id = aid;
	req.http_status = 200;
	buf_init(b, PROTO_MAX_MSG);
	T_OK(proto_sched_release_req_pack(b, "rel", 0, &req));
}

/* One acquire of key hash as request rid, session sess (NULL: none). */
static struct t_res
t_acq(const char *hash, const char *rid, const char *sess)
{
	struct proto_sched_acquire_rep *rep;
	struct proto_env                env;
	struct buf                      b, reply;
	struct t_res                    res;

	memset(&res, 0, sizeof(res));
	t_pack_acq(&b, hash, rid, sess);
	buf_init(&reply, PROTO_MAX_MSG);
	T_OK(sched_rep_handle(&S, b.data, b.len, &reply));
	buf_release(&b);
	T_OK(proto_env_unpack(reply.data, reply.len, &env));
	T_EQ_INT(env.type, MSG_SCHED_ACQUIRE_REP);
	rep = xcalloc(1, sizeof(*rep));
	T_OK(proto_sched_acquire_rep_unpack(&env, rep));
	buf_release(&reply);
	res.outcome = rep->outcome;
	res.aid = rep->account_id;
	snprintf(res.lease, sizeof(res.lease), "%s", rep->lease_id);
	snprintf(res.msg, sizeof(res.msg), "%s", rep->err_message);
	free(rep);
	return res;
}

/* A unique request id "<tag>-<n>" into out (PROTO_ID_MAX + 1). */
static const char *
t_rid(const char *tag, char *out)
{
	snprintf(out, PROTO_ID_MAX + 1, "%s-%d", tag, ++T_SEQ);
	return out;
}

/* SCHED_RELEASE_REQ of lease (account aid) through the dispatcher. */
static void
t_release(const char *lease, int64_t aid)
{
	struct proto_sched_release_rep rep;
	struct proto_env               env;
	struct buf                     b, reply;

	t_pack_rel(&b, lease, aid);
	buf_init(&reply, PROTO_MAX_MSG);
	T_OK(sched_rep_handle(&S, b.data, b.len, &reply));
	buf_release(&b);
	T_OK(proto_env_unpack(reply.data, reply.len, &env));
	T_EQ_INT(env.type, MSG_SCHED_RELEASE_REP);
	T_OK(proto_sched_release_rep_unpack(&env, &rep));
	buf_release(&reply);
	T_ASSERT(rep.released);
}

/* The gateway gives up waiting: a release flagged wait_cancel, no lease. */
static void
t_cancel(const char *rid)
{
	struct proto_sched_release_req req;
	struct proto_sched_release_rep rep;
	struct proto_env               env;
	struct buf                     b, reply;

	memset(&req, 0, sizeof(req));
	snprintf(req.request_id, sizeof(req.request_id), "%s", rid);
	req.wait_cancel = true;
	buf_init(&b, PROTO_MAX_MSG);
	T_OK(proto_sched_release_req_pack(&b, rid, 0, &req));
	buf_init(&reply, PROTO_MAX_MSG);
	T_OK(sched_rep_handle(&S, b.data, b.len, &reply));
	buf_release(&b);
	T_OK(proto_env_unpack(reply.data, reply.len, &env));
	T_EQ_INT(env.type, MSG_SCHED_RELEASE_REP);
	T_OK(proto_sched_release_rep_unpack(&env, &rep));
	buf_release(&reply);
	T_ASSERT(rep.released);
}

/* Runs cmd (a format taking the key "<prefix><name>") on one key. */
static int64_t
t_int(const char *cmd, const char *name, const char *member)
{
	redisReply *r;
	char        key[200];
	int64_t     v = 0;

	snprintf(key, sizeof(key), "%s%s", T_PREFIX, name);
	if (member != NULL)
		T_OK(rds_cmd(S.rds, &r, "%s %s %s", cmd, key, member));
	else
		T_OK(rds_cmd(S.rds, &r, "%s %s", cmd, key));
	if (r->type == REDIS_REPLY_INTEGER)
		v = r->integer;
	else if (r->type == REDIS_REPLY_STRING)
		v = strtoll(r->str, NULL, 10);
	freeReplyObject(r);
	return v;
}

/* ZADD "<prefix><name>" score member. */
static void
t_zadd(const char *name, int64_t score, const char *member)
{
	redisReply *r;
	char        key[200];

	snprintf(key, sizeof(key), "%s%s", T_PREFIX, name);
	T_OK(rds_cmd(
	    S.rds, &r, "ZADD %s %lld %s", key, (long long)score, member));
	T_ASSERT(r->type == REDIS_REPLY_INTEGER);
	freeReplyObject(r);
}

/* ZCARD of "<prefix>slots:<kind>:<id>" (kind user, acct, key, ...). */
static int64_t
t_zcard(const char *kind, int64_t id)
{
	char name[120];

	snprintf(name, sizeof(name), "slots:%s:%lld", kind, (long long)id);
	return t_int("ZCARD", name, NULL);
}

static int64_t
t_zscore(const char *kind, int64_t id, const char *member)
{
	char name[120];

	snprintf(name, sizeof(name), "slots:%s:%lld", kind, (long long)id);
	return t_int("ZSCORE", name, member);
}

/* The Redis clock in ms. */
static int64_t
t_now(void)
{
	redisReply *r;
	int64_t     v;

	T_OK(rds_cmd(S.rds, &r, "TIME"));
	v = strtoll(r->element[0]->str, NULL, 10) * 1000 +
	    strtoll(r->element[1]->str, NULL, 10) / 1000;
	freeReplyObject(r);
	return v;
}

/* The session T_SESS of group gid is bound to account aid. */
static void
t_bkey_check(int64_t gid, int64_t aid)
{
	char name[200];

	snprintf(name, sizeof(name), "sticky:anthropic:%lld:%s", (long long)gid,
	    T_SESS);
	T_EQ_INT(t_int("GET", name, NULL), aid);
}

/* ---- per-key slots ---------------------------------------------------- */

static void
test_key_limit(void)
{
	struct t_res r1, r2, r3;
	char         h[65], h2[65], rid[64];
	int64_t      uid, gid, kid, aid;

	t_setup();
	uid = t_user(0);
	gid = t_group();
	aid = t_account(gid, 10, 1);
	kid = t_key_conc(uid, gid, 2, h);
	t_key_conc(uid, gid, 0, h2);
	r1 = t_acq(h, t_rid("k", rid), NULL);
	r2 = t_acq(h, t_rid("k", rid), NULL);
	r3 = t_acq(h, t_rid("k", rid), NULL);
	T_EQ_INT(r1.outcome, PROTO_ACQ_OK);
	T_EQ_INT(r2.outcome, PROTO_ACQ_OK);
	T_EQ_INT(r3.outcome, PROTO_ACQ_BUSY);
	T_ASSERT(strstr(r3.msg, "for API key") != NULL);
	T_EQ_INT(t_zcard("key", kid), 2);
	/* The refused acquire held no user or account slot. */
	T_EQ_INT(t_zcard("user", uid), 2);
	T_EQ_INT(t_zcard("acct", aid), 2);
	/* Another key of the same user (no own limit) is not held back. */
	T_EQ_INT(t_acq(h2, t_rid("k", rid), NULL).outcome, PROTO_ACQ_OK);
	/* A release frees the key slot. */
	t_release(r1.lease, r1.aid);
	T_EQ_INT(t_zcard("key", kid), 1);
	T_EQ_INT(t_zscore("key", kid, r1.lease), 0);
	T_EQ_INT(t_acq(h, t_rid("k", rid), NULL).outcome, PROTO_ACQ_OK);
	T_EQ_INT(t_acq(h, t_rid("k", rid), NULL).outcome, PROTO_ACQ_BUSY);
}

static void
test_key_renew_sweep(void)
{
	struct sched_sweep      *w;
	struct sched_sweep_stats st;
	struct t_res             r1;
	char                     h[65], rid[64], lease[1][PROTO_ID_MAX + 1];
	char                     name[120];
	bool                     alive[1];
	int64_t                  uid, gid, kid, aid, s1, s2;

	t_setup();
	uid = t_user(0);
	gid = t_group();
	aid = t_account(gid, 10, 1);
	kid = t_key_conc(uid, gid, 1, h);
	r1 = t_acq(h, t_rid("kr", rid), NULL);
	T_EQ_INT(r1.outcome, PROTO_ACQ_OK);
	s1 = t_zscore("key", kid, r1.lease);
	T_ASSERT(s1 > 0);
	T_EQ_INT(t_zscore("acct", aid, r1.lease), s1);
	usleep(20000); /* the Redis clock must move for the score to */
	memcpy(lease[0], r1.lease, sizeof(r1.lease));
	T_OK(sched_slots_renew(&S, (const char(*)[PROTO_ID_MAX + 1]) lease, 1,
	    T_CFG->lease_ttl, alive));
	T_ASSERT(alive[0]);
	s2 = t_zscore("key", kid, r1.lease);
	T_ASSERT(s2 >= s1 + 20);
	T_EQ_INT(t_zscore("user", uid, r1.lease), s2);

	/* A lease lost from the key set alone is lost as a whole. */
	snprintf(name, sizeof(name), "slots:key:%lld", (long long)kid);
	T_EQ_INT(t_int("ZREM", name, r1.lease), 1);
	T_OK(sched_slots_renew(&S, (const char(*)[PROTO_ID_MAX + 1]) lease, 1,
	    T_CFG->lease_ttl, alive));
	T_ASSERT(!alive[0]);
	T_EQ_INT(t_zscore("user", uid, r1.lease), 0);
	T_EQ_INT(t_zscore("acct", aid, r1.lease), 0);

	/* A dead gateway's key lease: the sweeper drops it. */
	t_zadd(name, 1000, "dead-lease");
	T_OK(sched_sweep_new(&S, &w));
	T_OK(sched_sweep_run(w, &st));
	sched_sweep_free(w);
	T_ASSERT(st.removed >= 1);
	T_EQ_INT(t_int("EXISTS", name, NULL), 0);
}

/* ---- wait queues ------------------------------------------------------ */

static void
test_admission_cap(void)
{
	struct t_res r;
	char         h[65], rid[64], first[64];
	int64_t      uid, gid, i;

	t_setup();
	T_EQ_INT(T_CFG->wait_queue_extra, 20);
	uid = t_user(1);
	gid = t_group();
	t_account(gid, 10, 1);
	t_key_conc(uid, gid, 0, h);
	T_EQ_INT(t_acq(h, t_rid("cap", rid), NULL).outcome, PROTO_ACQ_OK);
	/* concurrency 1 + 20 requests may wait ... */
	for (i = 0; i < 1 + 20; i++) {
		r = t_acq(h, t_rid("cap", rid), NULL);
		T_EQ_INT(r.outcome, PROTO_ACQ_BUSY);
		T_ASSERT(strstr(r.msg, "for user") != NULL);
		if (i == 0)
			snprintf(first, sizeof(first), "%s", rid);
	}
	T_EQ_INT(t_zcard("wait:user", uid), 21);
	/* ... one more is refused at once ... */
	r = t_acq(h, t_rid("cap", rid), NULL);
	T_EQ_INT(r.outcome, PROTO_ACQ_QUEUE_FULL);
	T_EQ_STR(r.msg, "Too many pending requests, please retry later");
	T_EQ_INT(t_zscore("wait:user", uid, rid), 0);
	T_EQ_INT(t_zcard("wait:user", uid), 21);
	/* ... while one already waiting may ask again. */
	T_EQ_INT(t_acq(h, first, NULL).outcome, PROTO_ACQ_BUSY);
	T_EQ_INT(t_zcard("wait:user", uid), 21);
	/* A cancelled waiter makes room for exactly one more. */
	t_cancel(first);
	T_EQ_INT(t_zcard("wait:user", uid), 20);
	T_EQ_INT(t_acq(h, t_rid("cap", rid), NULL).outcome, PROTO_ACQ_BUSY);
	T_EQ_INT(
	    t_acq(h, t_rid("cap", rid), NULL).outcome, PROTO_ACQ_QUEUE_FULL);
}

static void
test_waiter_removed(void)
{
	struct t_res r1, r2;
	char         h[65], rid[64], ra[64], rb[64], name[120];
	int64_t      uid, gid, aid, now;

	t_setup();
	uid = t_user(1);
	gid = t_group();
	aid = t_account(gid, 1, 1);
	t_key_conc(uid, gid, 0, h);
	r1 = t_acq(h, t_rid("rm", rid), NULL);
	T_EQ_INT(r1.outcome, PROTO_ACQ_OK);
	/* The user is full: ra waits (user set; no account to wait for). */
	now = t_now();
	T_EQ_INT(t_acq(h, t_rid("rm", ra), NULL).outcome, PROTO_ACQ_BUSY);
	T_ASSERT(t_zscore("wait:user", uid, ra) >= now + 35000 - 1000);
	T_ASSERT(t_zscore("wait:user", uid, ra) <= t_now() + 35000);
	T_EQ_INT(t_zcard("wait:acct", aid), 0);
	snprintf(name, sizeof(name), "waiter:%s", ra);
	T_EQ_INT(t_int("EXISTS", name, NULL), 1);
	/* A success removes the waiter and its record. */
	t_release(r1.lease, r1.aid);
	r2 = t_acq(h, ra, NULL);
	T_EQ_INT(r2.outcome, PROTO_ACQ_OK);
	T_EQ_INT(t_zscore("wait:user", uid, ra), 0);
	T_EQ_INT(t_int("EXISTS", name, NULL), 0);
	t_release(r2.lease, r2.aid);

	/* Account full (user has room): waits on the account too. */
	t_sql1("UPDATE users SET concurrency = 0 WHERE id = $1::bigint", uid);
	sched_keys_invalidate(S.keys, "user", uid);
	r1 = t_acq(h, t_rid("rm", rid), NULL);
	T_EQ_INT(r1.outcome, PROTO_ACQ_OK);
	r2 = t_acq(h, t_rid("rm", rb), NULL);
	T_EQ_INT(r2.outcome, PROTO_ACQ_BUSY);
	T_ASSERT(strstr(r2.msg, "for account") != NULL);
	T_ASSERT(t_zscore("wait:user", uid, rb) > 0);
	T_ASSERT(t_zscore("wait:acct", aid, rb) > 0);
	/* The gateway gives up: both sets forget it at once, twice is ok. */
	t_cancel(rb);
	T_EQ_INT(t_zscore("wait:user", uid, rb), 0);
	T_EQ_INT(t_zscore("wait:acct", aid, rb), 0);
	t_cancel(rb);
	T_EQ_INT(t_zcard("wait:acct", aid), 0);
	/* The cancel touched no lease. */
	T_EQ_INT(t_zcard("acct", aid), 1);

	/* A fail_fast group never queues. */
	t_sql1("UPDATE groups SET fail_fast = true WHERE id = $1::bigint", gid);
	sched_keys_invalidate(S.keys, "group", gid);
	T_EQ_INT(t_acq(h, t_rid("rm", rb), NULL).outcome, PROTO_ACQ_BUSY);
	T_EQ_INT(t_zscore("wait:user", uid, rb), 0);
	T_EQ_INT(t_zcard("wait:acct", aid), 0);
}

static void
test_waiters_expire(void)
{
	struct sched_sweep      *w;
	struct sched_sweep_stats st;
	char                     h[65], rid[64], name[120];
	int64_t                  uid, gid, aid, i;

	t_setup();
	uid = t_user(1);
	gid = t_group();
	aid = t_account(gid, 5, 1);
	t_key_conc(uid, gid, 0, h);
	/* 21 waiters of a dead gateway (expired scores) fill no queue. */
	snprintf(name, sizeof(name), "slots:wait:user:%lld", (long long)uid);
	for (i = 0; i < 21; i++) {
		snprintf(rid, sizeof(rid), "dead-%d", (int)i);
		t_zadd(name, 1000, rid);
	}
	T_EQ_INT(t_acq(h, t_rid("ex", rid), NULL).outcome, PROTO_ACQ_OK);
	T_EQ_INT(t_acq(h, t_rid("ex", rid), NULL).outcome, PROTO_ACQ_BUSY);
	T_EQ_INT(t_zcard("wait:user", uid), 1);
	T_EQ_INT(t_zscore("wait:user", uid, "dead-0"), 0);
	/* Sets nobody acquires for are trimmed by the sweeper. */
	snprintf(name, sizeof(name), "slots:wait:acct:%lld", (long long)aid);
	t_zadd(name, 1000, "dead-x");
	T_OK(sched_sweep_new(&S, &w));
	T_OK(sched_sweep_run(w, &st));
	while (!st.done)
		T_OK(sched_sweep_run(w, &st));
	sched_sweep_free(w);
	T_EQ_INT(t_int("EXISTS", name, NULL), 0);
	/* The gauge counts live waiters: at least the one above. */
	T_ASSERT(st.waiting >= 1);
}

static void
test_load_counts_waiters(void)
{
	struct t_res r;
	char         h[65], rid[64], name[120];
	int64_t      uid, gid, a, b;

	t_setup();
	uid = t_user(0);
	gid = t_group();
	a = t_account(gid, 2, 1);
	b = t_account(gid, 2, 1);
	t_key_conc(uid, gid, 0, h);
	/* Equal load: the least recently used first (a, then b, then a). */
	r = t_acq(h, t_rid("ld", rid), NULL);
	T_EQ_INT(r.aid, a);
	t_release(r.lease, r.aid);
	r = t_acq(h, t_rid("ld", rid), NULL);
	T_EQ_INT(r.aid, b);
	t_release(r.lease, r.aid);
	/* Two requests wait for a: load (0 + 2) / 2 loses to b's 0 / 2. */
	snprintf(name, sizeof(name), "slots:wait:acct:%lld", (long long)a);
	t_zadd(name, t_now() + 60000, "w1");
	t_zadd(name, t_now() + 60000, "w2");
	r = t_acq(h, t_rid("ld", rid), NULL);
	T_EQ_INT(r.aid, b);
	t_release(r.lease, r.aid);
	/* Without them a (least recently used) is chosen again. */
	T_EQ_INT(t_int("DEL", name, NULL), 1);
	r = t_acq(h, t_rid("ld", rid), NULL);
	T_EQ_INT(r.aid, a);
	t_release(r.lease, r.aid);
}

static void
test_sticky_wait(void)
{
	struct t_res l1, r;
	char         h[65], rid[64], w1[64], name[120];
	int64_t      uid, gid, a, b, i;

	t_setup();
	T_EQ_INT(T_CFG->sticky_max_waiting, 3);
	uid = t_user(0);
	gid = t_group();
	a = t_account(gid, 1, 1);
	b = t_account(gid, 1, 1);
	t_key_conc(uid, gid, 0, h);
	l1 = t_acq(h, t_rid("sw", rid), T_SESS);
	T_EQ_INT(l1.aid, a);
	/* a is full and b is free: three requests wait for a anyway ... */
	for (i = 0; i < 3; i++) {
		r = t_acq(h, t_rid("sw", rid), T_SESS);
		T_EQ_INT(r.outcome, PROTO_ACQ_BUSY);
		T_ASSERT(t_zscore("wait:acct", a, rid) > 0);
		if (i == 0)
			snprintf(w1, sizeof(w1), "%s", rid);
	}
	T_EQ_INT(t_zcard("wait:acct", a), 3);
	T_EQ_INT(t_zcard("acct", b), 0);
	/* ... a waiter asking again still waits (it does not count) ... */
	T_EQ_INT(t_acq(h, w1, T_SESS).outcome, PROTO_ACQ_BUSY);
	/* ... the fourth goes to b, and the binding stays on a. */
	r = t_acq(h, t_rid("sw", rid), T_SESS);
	T_EQ_INT(r.outcome, PROTO_ACQ_OK);
	T_EQ_INT(r.aid, b);
	t_bkey_check(gid, a);
	t_release(r.lease, r.aid);
	/* a frees up: the first waiter gets it and leaves the wait sets. */
	t_release(l1.lease, l1.aid);
	r = t_acq(h, w1, T_SESS);
	T_EQ_INT(r.aid, a);
	T_EQ_INT(t_zscore("wait:acct", a, w1), 0);
	T_EQ_INT(t_zscore("wait:user", uid, w1), 0);
	T_EQ_INT(t_zcard("wait:acct", a), 2);
	snprintf(name, sizeof(name), "waiter:%s", w1);
	T_EQ_INT(t_int("EXISTS", name, NULL), 0);
}

/* ---- bundles ---------------------------------------------------------- */

/*
 * Sends the n packed envelopes of v as one SCHED_BUNDLE_REQ (releasing
 * them); the reply's type into *type and, for an acquire reply, its
 * outcome and lease into *res (outcome -1 for another reply).
 */
static void
t_bundle(struct buf *v, uint32_t n, int *type, struct t_res *res)
{
	struct proto_sched_bundle_req   q;
	struct proto_sched_acquire_rep *rep;
	struct proto_env                env;
	struct buf                      b, reply;
	uint32_t                        i;

	memset(&q, 0, sizeof(q));
	for (i = 0; i < n; i++) {
		q.msgs[i].ptr = (const uint8_t *)v[i].data;
		q.msgs[i].len = v[i].len;
	}
	q.n_msgs = n;
	buf_init(&b, PROTO_MAX_MSG);
	T_OK(proto_sched_bundle_req_pack(&b, "bundle", 0, &q));
	buf_init(&reply, PROTO_MAX_MSG);
	T_OK(sched_rep_handle(&S, b.data, b.len, &reply));
	T_OK(proto_env_unpack(reply.data, reply.len, &env));
	*type = env.type;
	memset(res, 0, sizeof(*res));
	res->outcome = -1;
	if (env.type == MSG_SCHED_ACQUIRE_REP) {
		rep = xcalloc(1, sizeof(*rep));
		T_OK(proto_sched_acquire_rep_unpack(&env, rep));
		res->outcome = rep->outcome;
		snprintf(res->lease, sizeof(res->lease), "%s", rep->lease_id);
		free(rep);
	}
	buf_release(&reply);
	buf_release(&b);
	for (i = 0; i < n; i++)
		buf_release(&v[i]);
}

static void
test_bundle(void)
{
	struct t_res r1, r2, rb;
	struct buf   v[3];
	char         h[65], rid[64];
	int64_t      uid, gid, aid;
	int          type;

	t_setup();
	uid = t_user(1);
	gid = t_group();
	aid = t_account(gid, 10, 1);
	t_key_conc(uid, gid, 0, h);
	r1 = t_acq(h, t_rid("b", rid), NULL);
	T_EQ_INT(r1.outcome, PROTO_ACQ_OK);
	T_EQ_INT(t_acq(h, t_rid("b", rid), NULL).outcome, PROTO_ACQ_BUSY);

	/* The release rides first: the user's one slot is free for the
	 * acquire it rides with. */
	t_pack_rel(&v[0], r1.lease, aid);
	t_pack_acq(&v[1], h, t_rid("b", rid), NULL);
	t_bundle(v, 2, &type, &rb);
	T_EQ_INT(type, MSG_SCHED_ACQUIRE_REP);
	T_EQ_INT(rb.outcome, PROTO_ACQ_OK);
	T_EQ_INT(t_zcard("user", uid), 1);
	T_EQ_INT(t_zscore("user", uid, r1.lease), 0);

	/* A malformed entry and a misplaced acquire are refused alone: the
	 * rest of the bundle still runs, and the misplaced acquire took no
	 * slot. */
	r2 = t_acq(h, t_rid("b", rid), NULL);
	T_EQ_INT(r2.outcome, PROTO_ACQ_BUSY);
	buf_init(&v[0], 64);
	T_OK(buf_add(&v[0], "\x93junk", 5));
	t_pack_acq(&v[1], h, t_rid("b", rid), NULL);
	t_pack_acq(&v[2], h, t_rid("b", rid), NULL);
	t_bundle(v, 3, &type, &r2);
	T_EQ_INT(type, MSG_SCHED_ACQUIRE_REP);
	T_EQ_INT(r2.outcome, PROTO_ACQ_BUSY);
	T_EQ_INT(t_zcard("user", uid), 1);

	/* Releases alone: the reply is the last release's. */
	r2 = t_acq(h, t_rid("b", rid), NULL);
	T_EQ_INT(r2.outcome, PROTO_ACQ_BUSY);
	T_EQ_INT(t_zcard("user", uid), 1);
	t_pack_rel(&v[0], "no-such-lease", aid);
	t_pack_rel(&v[1], rb.lease, aid);
	t_bundle(v, 2, &type, &r2);
	T_EQ_INT(type, MSG_SCHED_RELEASE_REP);
	T_EQ_INT(t_zcard("user", uid), 0);

	/* An acquire refused before its script runs (an unknown key) still
	 * lets the releases riding on it go. */
	r1 = t_acq(h, t_rid("b", rid), NULL);
	T_EQ_INT(r1.outcome, PROTO_ACQ_OK);
	T_EQ_INT(t_zcard("user", uid), 1);
	t_pack_rel(&v[0], r1.lease, aid);
	t_pack_acq(&v[1],
	    "00000000000000000000000000000000000000000000000000000000000000ff",
	    t_rid("b", rid), NULL);
	t_bundle(v, 2, &type, &r2);
	T_EQ_INT(type, MSG_SCHED_ACQUIRE_REP);
	T_ASSERT(r2.outcome != PROTO_ACQ_OK);
	T_EQ_INT(t_zcard("user", uid), 0);

	/* A bundle inside a bundle is refused with an error reply. */
	{
		struct proto_sched_bundle_req inner;

		memset(&inner, 0, sizeof(inner));
		t_pack_rel(&v[1], "x", aid);
		inner.n_msgs = 1;
		inner.msgs[0].ptr = (const uint8_t *)v[1].data;
		inner.msgs[0].len = v[1].len;
		buf_init(&v[0], PROTO_MAX_MSG);
		T_OK(proto_sched_bundle_req_pack(&v[0], "in", 0, &inner));
		buf_release(&v[1]);
	}
	t_bundle(v, 1, &type, &r2);
	T_EQ_INT(type, MSG_ERROR_REP);
}

static void
test_zz_teardown(void)
{
	t_setup();
	t_redis_clean();
	t_fixture_teardown();
}

T_MAIN(T_CASE(test_key_limit), T_CASE(test_key_renew_sweep),
    T_CASE(test_admission_cap), T_CASE(test_waiter_removed),
    T_CASE(test_waiters_expire), T_CASE(test_load_counts_waiters),
    T_CASE(test_sticky_wait), T_CASE(test_bundle), T_CASE(test_zz_teardown))
