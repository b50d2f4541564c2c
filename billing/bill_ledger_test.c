/*
 * bill_ledger_test.c: the ledger against the real test PostgreSQL and
 * Redis (the fixture, bill_fixture.h, makes a database of its own).
 * Expected costs are worked out
 * by hand from billing/prices.json (claude-sonnet-4-5: input 3e-06,
 * output 1.5e-05, cache write 5m 3.75e-06, 1h 6e-06, read 3e-07 USD per
 * token).  Tests run with cwd = the repository root.
 */
#include "bill_cursor.h"
#include "bill_fixture.h"

/* ---- cases ---------------------------------------------------------- */

/* One event: one row, costs exact, balance, ledger and key quota. */
static void
test_one_event(void)
{
	struct bill_ledger_result r;
	struct bill_ledger       *l;
	struct bill_ev           *e;
	int64_t                   uid, gid, kid, aid;
	const char               *rid;
	char                     *redis_key;
	redisReply               *rep;

	t_setup();
	uid = t_user("10");
	gid = t_group("1.5", false);
	kid = t_key(uid, gid);
	aid = t_account();
	l = t_ledger(false);
	e = t_ev(uid, kid, gid, aid, "inst-one", 1);
	rid = e->u.request_id;
	T_OK(bill_ledger_apply(l, &e, 1, &r));
	T_EQ_INT(r.inserted, 1);
	T_EQ_INT(r.duplicates, 0);
	T_EQ_INT(r.dead, 0);
	/* 1000 x 3e-6, 500 x 1.5e-5, 200 x 3.75e-6, 300 x 3e-7 */
	T_EQ_STR(t_q("SELECT input_cost::text || ' ' || output_cost::text"
	             " || ' ' || cache_creation_cost::text || ' ' ||"
	             " cache_read_cost::text || ' ' || total_cost::text ||"
	             " ' ' || actual_cost::text || ' ' ||"
	             " rate_multiplier::text || ' ' || billing_type::text"
	             " FROM usage_logs WHERE request_id = $1",
	             1, &rid),
	    "0.0030000000 0.0075000000 0.0007500000 0.0000900000 "
	    "0.0113400000 0.0170100000 1.5000 0");
	T_EQ_STR(t_q("SELECT input_tokens || ',' || output_tokens || ',' ||"
	             " cache_creation_tokens || ',' || cache_read_tokens ||"
	             " ',' || cache_creation_5m_tokens || ',' ||"
	             " cache_creation_1h_tokens || ',' || stream || ',' ||"
	             " duration_ms || ',' || first_token_ms || ',' ||"
	             " instance_id || ',' || seq"
	             " FROM usage_logs WHERE request_id = $1",
	             1, &rid),
	    "1000,500,200,300,200,0,true,1234,56,inst-one,1");
	T_EQ_STR(
	    t_q1("SELECT balance::text FROM users WHERE id = $1::bigint", uid),
	    "9.9829900000");
	T_EQ_STR(t_q1("SELECT delta::text || ' ' || balance_after::text ||"
	              " ' ' || kind FROM balance_ledger"
	              " WHERE user_id = $1::bigint",
	             uid),
	    "-0.0170100000 9.9829900000 usage");
	T_EQ_STR(t_q1("SELECT quota_used_usd::text FROM api_keys"
	              " WHERE id = $1::bigint",
	             kid),
	    "0.0170100000");
	/* The Redis balance cache holds the committed balance. */
	T_ASSERT(asprintf(&redis_key, "%sbilling:balance:%lld", T_PREFIX,
	             (long long)uid) > 0);
	T_OK(rds_cmd(RDS, &rep, "GET %s", redis_key));
	T_ASSERT(rep->type == REDIS_REPLY_STRING);
	T_EQ_STR(rep->str, "9.9829900000");
	freeReplyObject(rep);
	T_OK(rds_cmd(RDS, &rep, "DEL %s", redis_key));
	freeReplyObject(rep);
	free(redis_key);
	T_EQ_INT(bill_ledger_committed(l, "inst-one"), 1);
	bill_ledger_free(l);
	bill_ev_free(e);
}

/*
 * A user's own multiplier in a group replaces the group's, for that user
 * and that group only; 0 makes the user's requests free there.
 */
static void
test_user_rate(void)
{
	struct bill_ledger_result r;
	struct bill_ledger       *l;
	struct bill_ev           *v[5];
	int64_t                   ua, ub, uc, g, g2, ka, ka2, kb, kc, aid;
	char                      q[256];
	const char               *rid;
	size_t                    i;
	static const char *const  want[] = {"0.5000 0.0056700000",
	     "1.5000 0.0170100000", "0.0000 0.0000000000", "2.0000 0.0226800000",
	     "0.5000 0.0056700000"};

	t_setup();
	ua = t_user("10");
	ub = t_user("10");
	uc = t_user("10");
	g = t_group("1.5", false);
	g2 = t_group("2", false);
	ka = t_key(ua, g);
	ka2 = t_key(ua, g2);
	kb = t_key(ub, g);
	kc = t_key(uc, g);
	aid = t_account();
	snprintf(q, sizeof(q),
	    "INSERT INTO user_group_rate_multipliers (user_id, group_id,"
	    " rate_multiplier) VALUES (%lld, %lld, 0.5), (%lld, %lld, 0)",
	    (long long)ua, (long long)g, (long long)uc, (long long)g);
	(void)t_q(q, 0, NULL);
	l = t_ledger(false);
	v[0] = t_ev(ua, ka, g, aid, "inst-rate", 1);
	v[1] = t_ev(ub, kb, g, aid, "inst-rate", 2);
	v[2] = t_ev(uc, kc, g, aid, "inst-rate", 3);
	v[3] = t_ev(ua, ka2, g2, aid, "inst-rate", 4);
	v[4] = t_ev(ua, ka, g, aid, "inst-rate", 5);
	T_OK(bill_ledger_apply(l, v, ARRAY_SIZE(v), &r));
	T_EQ_INT(r.inserted, 5);
	/* total 0.01134 each: x0.5, x1.5 (the group's), x0, x2 (g2's) */
	for (i = 0; i < ARRAY_SIZE(v); i++) {
		rid = v[i]->u.request_id;
		T_EQ_STR(t_q("SELECT rate_multiplier::text || ' ' ||"
		             " actual_cost::text FROM usage_logs"
		             " WHERE request_id = $1",
		             1, &rid),
		    want[i]);
	}
	T_EQ_STR(
	    t_q1("SELECT balance::text FROM users WHERE id = $1::bigint", ua),
	    "9.9659800000"); /* 10 - (0.00567 + 0.02268 + 0.00567) */
	T_EQ_STR(
	    t_q1("SELECT balance::text FROM users WHERE id = $1::bigint", uc),
	    "10.0000000000");
	bill_ledger_free(l);
	t_free(v, ARRAY_SIZE(v));
}

/* The same request id again, alone or twice in a batch: no charge. */
static void
test_duplicate(void)
{
	struct bill_ledger_result r;
	struct bill_ledger       *l;
	struct bill_ev           *v[3];
	int64_t                   uid, gid, kid, aid;
	const char               *rid;

	t_setup();
	uid = t_user("5");
	gid = t_group("1", false);
	kid = t_key(uid, gid);
	aid = t_account();
	l = t_ledger(false);
	v[0] = t_ev(uid, kid, gid, aid, "inst-dup", 1);
	v[1] = bill_ev_new(&v[0]->u);
	v[1]->u.seq = 2;
	v[2] = bill_ev_new(&v[0]->u);
	v[2]->u.seq = 3;
	rid = v[0]->u.request_id;
	T_OK(bill_ledger_apply(l, v, 2, &r));
	T_EQ_INT(r.inserted, 1);
	T_EQ_INT(r.duplicates, 1);
	T_OK(bill_ledger_apply(l, &v[2], 1, &r));
	T_EQ_INT(r.inserted, 0);
	T_EQ_INT(r.duplicates, 1);
	T_EQ_STR(t_q("SELECT count(*) FROM usage_logs WHERE request_id = $1", 1,
	             &rid),
	    "1");
	/* 0.01134 once */
	T_EQ_STR(
	    t_q1("SELECT balance::text FROM users WHERE id = $1::bigint", uid),
	    "4.9886600000");
	T_EQ_STR(t_q1("SELECT count(*) FROM balance_ledger"
	              " WHERE user_id = $1::bigint",
	             uid),
	    "1");
	T_EQ_INT(bill_ledger_committed(l, "inst-dup"), 3);
	bill_ledger_free(l);
	t_free(v, 3);
}

/* Two users in one batch: each balance moves by minus its rows' sum. */
static void
test_two_users(void)
{
	struct bill_ledger_result r;
	struct bill_ledger       *l;
	struct bill_ev           *v[10];
	int64_t                   ua, ub, g, ka, kb, aid, u;
	size_t                    i;

	t_setup();
	ua = t_user("1");
	ub = t_user("0.02");
	g = t_group("2", false);
	ka = t_key(ua, g);
	kb = t_key(ub, g);
	aid = t_account();
	l = t_ledger(false);
	for (i = 0; i < ARRAY_SIZE(v); i++) {
		v[i] = t_ev(i % 2 ? ub : ua, i % 2 ? kb : ka, g, aid,
		    "inst-two", i + 1);
		v[i]->u.output_tokens = 100 * (int64_t)i;
	}
	T_OK(bill_ledger_apply(l, v, ARRAY_SIZE(v), &r));
	T_EQ_INT(r.inserted, 10);
	T_EQ_INT(r.transactions, 1);
	T_EQ_STR(t_q1("SELECT (1 - balance = (SELECT sum(actual_cost) FROM"
	              " usage_logs WHERE user_id = $1::bigint))::text"
	              " FROM users WHERE id = $1::bigint",
	             ua),
	    "true");
	/* The poorer user goes below zero: the last request is charged. */
	T_EQ_STR(t_q1("SELECT (0.02 - balance = (SELECT sum(actual_cost) FROM"
	              " usage_logs WHERE user_id = $1::bigint) AND balance"
	              " < 0)::text FROM users WHERE id = $1::bigint",
	             ub),
	    "true");
	for (i = 0; i < 2; i++) {
		u = i == 0 ? ua : ub;
		/* ledger sum == movement; one ledger row per usage row */
		T_EQ_STR(t_q1("SELECT (sum(l.delta) = -(SELECT sum(actual_cost)"
		              " FROM usage_logs WHERE user_id = $1::bigint)"
		              " AND count(*) = 5)::text FROM balance_ledger l"
		              " WHERE l.user_id = $1::bigint",
		             u),
		    "true");
		/* the chain: each balance_after is the previous plus delta,
		 * the last is the balance */
		T_EQ_STR(t_q1("SELECT bool_and(ok)::text FROM (SELECT"
		              " balance_after = coalesce(lag(balance_after)"
		              " OVER (ORDER BY id), (SELECT balance +"
		              " (SELECT -sum(delta) FROM balance_ledger WHERE"
		              " user_id = $1::bigint) FROM users WHERE id ="
		              " $1::bigint)) + delta AS ok FROM balance_ledger"
		              " WHERE user_id = $1::bigint) s",
		             u),
		    "true");
		T_EQ_STR(t_q1("SELECT (balance_after = (SELECT balance FROM"
		              " users WHERE id = $1::bigint))::text FROM"
		              " balance_ledger WHERE user_id = $1::bigint"
		              " ORDER BY id DESC LIMIT 1",
		             u),
		    "true");
	}
	T_EQ_INT(bill_ledger_committed(l, "inst-two"), 10);
	bill_ledger_free(l);
	t_free(v, ARRAY_SIZE(v));
}

/* A subscription group: windows grow by actual cost; balance untouched. */
static void
test_subscription(void)
{
	struct bill_ledger *l;
	struct bill_ev     *v[2];
	int64_t             uid, gid, kid, aid, sid;
	char               *redis_key;
	redisReply         *rep;

	t_setup();
	uid = t_user("3");
	gid = t_group("2", true);
	kid = t_key(uid, gid);
	aid = t_account();
	sid = t_sub(uid, gid);
	l = t_ledger(false);
	v[0] = t_ev(uid, kid, gid, aid, "inst-sub", 1);
	v[0]->u.subscription_id = sid;
	v[1] = t_ev(uid, kid, gid, aid, "inst-sub", 2);
	v[1]->u.subscription_id = sid;
	T_OK(bill_ledger_apply(l, v, 1, NULL));
	/* 0.01134 x 2 */
	T_EQ_STR(t_q1("SELECT daily_usage_usd || ' ' || weekly_usage_usd ||"
	              " ' ' || monthly_usage_usd || ' ' ||"
	              " (daily_window_start = date_trunc('day', now(), 'UTC'))"
	              " FROM user_subscriptions WHERE id = $1::bigint",
	             sid),
	    "0.0226800000 0.0226800000 0.0226800000 true");
	T_EQ_STR(
	    t_q1("SELECT balance::text FROM users WHERE id = $1::bigint", uid),
	    "3.0000000000");
	/* The Redis subscription cache holds the committed windows. */
	T_ASSERT(asprintf(&redis_key, "%sbilling:sub:%lld:%lld", T_PREFIX,
	             (long long)uid, (long long)gid) > 0);
	T_OK(rds_cmd(RDS, &rep, "HGET %s weekly_usage", redis_key));
	T_ASSERT(rep->type == REDIS_REPLY_STRING);
	T_EQ_STR(rep->str, "0.0226800000");
	freeReplyObject(rep);
	T_OK(rds_cmd(RDS, &rep, "DEL %s", redis_key));
	freeReplyObject(rep);
	free(redis_key);
	T_EQ_STR(t_q1("SELECT count(*) FROM balance_ledger"
	              " WHERE user_id = $1::bigint",
	             uid),
	    "0");
	T_EQ_STR(t_q1("SELECT billing_type || ' ' || subscription_id FROM"
	              " usage_logs WHERE user_id = $1::bigint",
	             uid),
	    t_q1("SELECT '1 ' || $1::bigint", sid));
	T_EQ_STR(t_q1("SELECT quota_used_usd::text FROM api_keys"
	              " WHERE id = $1::bigint",
	             kid),
	    "0.0226800000");
	/* A day later the daily window restarts; the others go on. */
	t_q1("UPDATE user_subscriptions SET daily_window_start = now() -"
	     " interval '25 hours' WHERE id = $1::bigint",
	    sid);
	T_OK(bill_ledger_apply(l, &v[1], 1, NULL));
	T_EQ_STR(t_q1("SELECT daily_usage_usd || ' ' || weekly_usage_usd ||"
	              " ' ' || monthly_usage_usd"
	              " FROM user_subscriptions WHERE id = $1::bigint",
	             sid),
	    "0.0226800000 0.0453600000 0.0453600000");
	bill_ledger_free(l);
	t_free(v, 2);
}

/* Invariant breakers and unknown models: dead letters, no charge. */
static void
test_dead_letter(void)
{
	struct bill_ledger_result r;
	struct bill_ledger       *l;
	struct bill_ev           *v[3];
	int64_t                   uid, gid, kid, aid;
	const char               *p[1];

	t_setup();
	uid = t_user("2");
	gid = t_group("1", false);
	kid = t_key(uid, gid);
	aid = t_account();
	l = t_ledger(false);
	T_ASSERT(bill_ev_decode("x", 1, &v[0]) != 0); /* not an envelope */
	v[0] = t_ev(uid, kid, gid, aid, "inst-dead", 1);
	v[0]->u.cache_creation_5m_tokens = 500; /* split above its total */
	v[1] = t_ev(uid, kid, gid, aid, "inst-dead", 2);
	snprintf(v[1]->u.model, sizeof(v[1]->u.model), "no-such-model-x");
	v[2] = t_ev(uid, kid, gid, aid, "inst-dead", 3);
	v[2]->u.output_tokens = -1;
	T_OK(bill_ledger_apply(l, v, 3, &r));
	T_EQ_INT(r.dead, 3);
	T_EQ_INT(r.inserted, 0);
	p[0] = v[0]->u.request_id;
	T_ASSERT(strncmp(t_q("SELECT reason FROM billing_dead_letters"
	                     " WHERE request_id = $1",
	                     1, p),
	             "usage refused: ", 15) == 0);
	p[0] = v[1]->u.request_id;
	T_EQ_STR(t_q("SELECT reason FROM billing_dead_letters"
	             " WHERE request_id = $1",
	             1, p),
	    "unknown model");
	T_EQ_STR(t_q1("SELECT count(*) FROM usage_logs"
	              " WHERE user_id = $1::bigint",
	             uid),
	    "0");
	T_EQ_STR(
	    t_q1("SELECT balance::text FROM users WHERE id = $1::bigint", uid),
	    "2.0000000000");
	/* Applying them again writes no second dead letter. */
	T_OK(bill_ledger_apply(l, v, 3, &r));
	T_EQ_STR(t_q("SELECT count(*) FROM billing_dead_letters"
	             " WHERE instance_id = 'inst-dead'",
	             0, NULL),
	    "3");
	/* The cursor moves past dead letters. */
	T_EQ_INT(bill_ledger_committed(l, "inst-dead"), 3);
	bill_ledger_free(l);
	t_free(v, 3);
}

/* A row the database refuses (unknown account) does not sink its batch. */
static void
test_fk_fallback(void)
{
	struct bill_ledger_result r;
	struct bill_ledger       *l;
	struct bill_ev           *v[3];
	int64_t                   uid, gid, kid, aid;
	const char               *p[1];

	t_setup();
	uid = t_user("2");
	gid = t_group("1", false);
	kid = t_key(uid, gid);
	aid = t_account();
	l = t_ledger(false);
	v[0] = t_ev(uid, kid, gid, aid, "inst-fk", 1);
	v[1] = t_ev(uid, kid, gid, aid + 100000, "inst-fk", 2);
	v[2] = t_ev(uid, kid, gid, aid, "inst-fk", 3);
	T_OK(bill_ledger_apply(l, v, 3, &r));
	T_EQ_INT(r.inserted, 2);
	T_EQ_INT(r.dead, 1);
	p[0] = v[1]->u.request_id;
	T_ASSERT(strncmp(t_q("SELECT reason FROM billing_dead_letters"
	                     " WHERE request_id = $1",
	                     1, p),
	             "rejected by the database: 23503", 31) == 0);
	T_EQ_STR(t_q1("SELECT (2 - balance = (SELECT sum(actual_cost) FROM"
	              " usage_logs WHERE user_id = $1::bigint))::text"
	              " FROM users WHERE id = $1::bigint",
	             uid),
	    "true");
	T_EQ_INT(bill_ledger_committed(l, "inst-fk"), 3);
	bill_ledger_free(l);
	t_free(v, 3);
}

/* Out-of-order seqs: the cursor is the contiguous prefix committed. */
static void
test_cursor(void)
{
	struct bill_ledger *l, *l2;
	struct bill_ev     *v[5];
	int64_t             uid, gid, kid, aid;
	uint64_t            order[] = {1, 2, 4, 3, 6};
	size_t              i;

	t_setup();
	uid = t_user("2");
	gid = t_group("1", false);
	kid = t_key(uid, gid);
	aid = t_account();
	l = t_ledger(false);
	for (i = 0; i < ARRAY_SIZE(v); i++)
		v[i] = t_ev(uid, kid, gid, aid, "inst-cur", order[i]);
	T_OK(bill_ledger_apply(l, v, 2, NULL));
	T_EQ_INT(bill_ledger_committed(l, "inst-cur"), 2);
	T_OK(bill_ledger_apply(l, &v[2], 1, NULL));
	T_EQ_INT(bill_ledger_committed(l, "inst-cur"), 2);
	T_EQ_STR(t_q("SELECT committed_seq FROM billing_cursors"
	             " WHERE instance_id = 'inst-cur'",
	             0, NULL),
	    "2");
	T_OK(bill_ledger_apply(l, &v[3], 2, NULL)); /* 3 and 6 */
	T_EQ_INT(bill_ledger_committed(l, "inst-cur"), 4);
	T_EQ_STR(t_q("SELECT committed_seq FROM billing_cursors"
	             " WHERE instance_id = 'inst-cur'",
	             0, NULL),
	    "4");
	/* A new ledger (a restart) starts from the stored cursor. */
	l2 = t_ledger(false);
	T_OK(bill_ledger_apply(l2, &v[0], 1, NULL)); /* loads, no-op */
	T_EQ_INT(bill_ledger_committed(l2, "inst-cur"), 4);
	bill_ledger_free(l2);
	bill_ledger_free(l);
	t_free(v, ARRAY_SIZE(v));
}

/*
 * An instance the first load did not bring (more instances than the
 * tracker holds, or evicted) is read from billing_cursors when it shows
 * up, so its cursor goes on from the stored seq, not from zero.
 */
static void
test_cursor_late_instance(void)
{
	struct bill_ledger *l;
	struct bill_ev     *v[2];
	int64_t             uid, gid, kid, aid;

	t_setup();
	uid = t_user("2");
	gid = t_group("1", false);
	kid = t_key(uid, gid);
	aid = t_account();
	l = t_ledger(false);
	v[0] = t_ev(uid, kid, gid, aid, "inst-early", 1);
	v[1] = t_ev(uid, kid, gid, aid, "inst-late", 50001);
	T_OK(bill_ledger_apply(l, v, 1, NULL)); /* the first load is done */
	t_q("INSERT INTO billing_cursors (instance_id, committed_seq)"
	    " VALUES ('inst-late', 50000)",
	    0, NULL);
	T_OK(bill_ledger_apply(l, &v[1], 1, NULL));
	T_EQ_INT(bill_ledger_committed(l, "inst-late"), 50001);
	T_EQ_STR(t_q("SELECT committed_seq FROM billing_cursors"
	             " WHERE instance_id = 'inst-late'",
	             0, NULL),
	    "50001");
	/* The same for a declared lost range. */
	t_q("INSERT INTO billing_cursors (instance_id, committed_seq)"
	    " VALUES ('inst-late-2', 70000)",
	    0, NULL);
	T_OK(bill_ledger_skip(l, "inst-late-2", 70001, 70003));
	T_EQ_INT(bill_ledger_committed(l, "inst-late-2"), 70003);
	bill_ledger_free(l);
	t_free(v, 2);
}

/* The ledger and the writer write a skipped range to billing_cursors. */
static void
test_skip_lost(void)
{
	struct bill_ledger    *l;
	struct bill_writer    *w;
	struct bill_writer_cfg wc = {.queue_max = 16,
	    .batch_max = 8,
	    .batch_wait_ms = 1,
	    .retry_min_ms = 10,
	    .retry_max_ms = 10};
	struct bill_ev        *v[1];
	int64_t                uid, gid, kid, aid;

	t_setup();
	uid = t_user("2");
	gid = t_group("1", false);
	kid = t_key(uid, gid);
	aid = t_account();
	l = t_ledger(false);
	v[0] = t_ev(uid, kid, gid, aid, "inst-lost", 1);
	T_OK(bill_ledger_apply(l, v, 1, NULL));
	T_OK(bill_ledger_skip(l, "inst-lost", 2, 5));
	T_EQ_INT(bill_ledger_committed(l, "inst-lost"), 5);
	T_EQ_STR(t_q("SELECT committed_seq FROM billing_cursors"
	             " WHERE instance_id = 'inst-lost'",
	             0, NULL),
	    "5");
	T_EQ_INT(bill_ledger_skip(l, "inst-lost", 9, 8), -ERR_INVAL);
	/* Through the writer's thread. */
	w = bill_writer_start(l, &wc);
	T_OK(bill_writer_lost(w, "inst-lost", 6, 7));
	T_OK(bill_writer_lost(w, "inst-lost", 6, 7));
	T_EQ_INT(bill_writer_lost(w, "inst-lost", 0, 7), -ERR_INVAL);
	/* Stopping applies the ranges still pending. */
	bill_writer_stop(w, now_mono_ms() + 1000);
	T_EQ_INT(bill_ledger_committed(l, "inst-lost"), 7);
	T_EQ_STR(t_q("SELECT committed_seq FROM billing_cursors"
	             " WHERE instance_id = 'inst-lost'",
	             0, NULL),
	    "7");
	bill_ledger_free(l);
	t_free(v, 1);
}

/* run_mode=simple: recorded with costs, nothing charged. */
static void
test_simple(void)
{
	struct bill_ledger_result r;
	struct bill_ledger       *l;
	struct bill_ev           *e;
	int64_t                   uid, gid, kid, aid;

	t_setup();
	uid = t_user("1");
	gid = t_group("1", false);
	kid = t_key(uid, gid);
	aid = t_account();
	l = t_ledger(true);
	e = t_ev(uid, kid, gid, aid, "inst-simple", 1);
	T_OK(bill_ledger_apply(l, &e, 1, &r));
	T_EQ_INT(r.inserted, 1);
	T_EQ_STR(t_q1("SELECT actual_cost::text FROM usage_logs"
	              " WHERE user_id = $1::bigint",
	             uid),
	    "0.0113400000");
	T_EQ_STR(
	    t_q1("SELECT balance::text FROM users WHERE id = $1::bigint", uid),
	    "1.0000000000");
	T_EQ_STR(t_q1("SELECT count(*) FROM balance_ledger"
	              " WHERE user_id = $1::bigint",
	             uid),
	    "0");
	T_EQ_STR(t_q1("SELECT quota_used_usd::text FROM api_keys"
	              " WHERE id = $1::bigint",
	             kid),
	    "0.0000000000");
	bill_ledger_free(l);
	bill_ev_free(e);
}

/*
 * One batch over 70 balance users and 20 subscriptions, interleaved:
 * the cache is written in chunks (30 balances, 15 subscriptions per
 * script call), and every key, first and last chunk alike, holds the
 * committed value.
 */
static void
test_cache_chunks(void)
{
	struct bill_ledger *l;
	struct bill_ev     *v[90];
	int64_t             uid[90], gstd, gsub, aid, kid, sid;
	char                key[160];
	redisReply         *rep;
	int                 i, ok_bal = 0, ok_sub = 0;

	t_setup();
	gstd = t_group("1", false);
	gsub = t_group("1", true);
	aid = t_account();
	for (i = 0; i < 90; i++) {
		bool sub = i % 9 == 4 || i % 9 == 7; /* 20 of 90 */

		uid[i] = t_user("10");
		kid = t_key(uid[i], sub ? gsub : gstd);
		v[i] = t_ev(uid[i], kid, sub ? gsub : gstd, aid, "inst-cache",
		    (uint64_t)i + 1);
		if (sub) {
			sid = t_sub(uid[i], gsub);
			v[i]->u.subscription_id = sid;
		}
	}
	l = t_ledger(false);
	T_OK(bill_ledger_apply(l, v, 90, NULL));
	for (i = 0; i < 90; i++) {
		bool sub = v[i]->u.subscription_id > 0;

		if (sub)
			snprintf(key, sizeof(key), "%sbilling:sub:%lld:%lld",
			    T_PREFIX, (long long)uid[i], (long long)gsub);
		else
			snprintf(key, sizeof(key), "%sbilling:balance:%lld",
			    T_PREFIX, (long long)uid[i]);
		T_OK(rds_cmd(
		    RDS, &rep, sub ? "HGET %s monthly_usage" : "GET %s", key));
		if (rep->type == REDIS_REPLY_STRING &&
		    strcmp(rep->str, sub ? "0.0113400000" : "9.9886600000") ==
		        0)
			*(sub ? &ok_sub : &ok_bal) += 1;
		freeReplyObject(rep);
		T_OK(rds_cmd(RDS, &rep, "TTL %s", key));
		T_ASSERT(rep->type == REDIS_REPLY_INTEGER && rep->integer > 0 &&
		    rep->integer <= 60);
		freeReplyObject(rep);
		T_OK(rds_cmd(RDS, &rep, "DEL %s", key));
		freeReplyObject(rep);
	}
	T_EQ_INT(ok_bal, 70);
	T_EQ_INT(ok_sub, 20);
	bill_ledger_free(l);
	t_free(v, 90);
}

/* What the ledger announced (bill_ledger_cfg.notify). */
struct t_notes {
	char    kinds[16][16];
	int64_t ids[16];
	size_t  n;
};

static void
t_note_cb(void *arg, const char *kind, int64_t id)
{
	struct t_notes *t = arg;

	if (t->n < ARRAY_SIZE(t->ids)) {
		snprintf(t->kinds[t->n], sizeof(t->kinds[0]), "%s", kind);
		t->ids[t->n++] = id;
	}
}

/* Applies one event and says what was announced: "" or "kind:id ...". */
static const char *
t_apply_note(struct bill_ledger *l, struct t_notes *t, struct bill_ev *e,
    int64_t *ids_out)
{
	static char out[256];
	size_t      i, len = 0;

	t->n = 0;
	T_OK(bill_ledger_apply(l, &e, 1, NULL));
	out[0] = '\0';
	for (i = 0; i < t->n; i++)
		len += (size_t)snprintf(out + len, sizeof(out) - len, "%s%s",
		    i ? " " : "", t->kinds[i]);
	if (t->n > 0 && ids_out != NULL)
		*ids_out = t->ids[0];
	return out;
}

/*
 * The money verdicts: a balance reaching zero, a key quota or a
 * subscription window spent are announced after the commit (the
 * scheduler drops its cache entry); nothing else is.  One event costs
 * 0.01134 at multiplier 1.
 */
static void
test_notify(void)
{
	struct bill_ledger    *l;
	struct bill_ledger_cfg c = {0};
	struct t_notes         t;
	struct bill_ev        *v[7];
	int64_t                rich, poor, g, gs, kr, kp, kq, ks, aid, sid;
	int64_t                id = 0;
	size_t                 i;

	t_setup();
	memset(&t, 0, sizeof(t));
	rich = t_user("5");
	poor = t_user("0.015");
	g = t_group("1", false);
	gs = t_group("1", true);
	kr = t_key(rich, g);
	kp = t_key(poor, g);
	kq = t_key(rich, g);
	ks = t_key(rich, gs);
	aid = t_account();
	sid = t_sub(rich, gs);
	t_q1("UPDATE api_keys SET quota_usd = 0.02 WHERE id = $1::bigint", kq);
	t_q1("UPDATE groups SET daily_limit_usd = 0.015 WHERE id = $1::bigint",
	    gs);
	c.pg = POOL;
	c.rds = RDS;
	c.prices = PRICES;
	c.redis_prefix = T_PREFIX;
	c.db_timeout_ms = 5000;
	c.cache_ttl_s = 60;
	c.notify = t_note_cb;
	c.notify_arg = &t;
	bill_ledger_new(&c, &l);
	v[0] = t_ev(rich, kr, g, aid, "inst-note", 1);
	v[1] = t_ev(poor, kp, g, aid, "inst-note", 2);
	v[2] = t_ev(poor, kp, g, aid, "inst-note", 3);
	v[3] = t_ev(rich, kq, g, aid, "inst-note", 4);
	v[4] = t_ev(rich, kq, g, aid, "inst-note", 5);
	v[5] = t_ev(rich, ks, gs, aid, "inst-note", 6);
	v[6] = t_ev(rich, ks, gs, aid, "inst-note", 7);
	v[5]->u.subscription_id = sid;
	v[6]->u.subscription_id = sid;
	/* A plain charge: nothing to announce. */
	T_EQ_STR(t_apply_note(l, &t, v[0], NULL), "");
	/* 0.015 - 0.01134 > 0; then below zero: the user is announced. */
	T_EQ_STR(t_apply_note(l, &t, v[1], NULL), "");
	T_EQ_STR(t_apply_note(l, &t, v[2], &id), "user");
	T_EQ_INT(id, poor);
	/* Quota 0.02: 0.01134 is under it, 0.02268 spends it. */
	T_EQ_STR(t_apply_note(l, &t, v[3], NULL), "");
	T_EQ_STR(t_apply_note(l, &t, v[4], &id), "api_key");
	T_EQ_INT(id, kq);
	/* Daily limit 0.015: the second event spends the window. */
	T_EQ_STR(t_apply_note(l, &t, v[5], NULL), "");
	T_EQ_STR(t_apply_note(l, &t, v[6], &id), "subscription");
	T_EQ_INT(id, sid);
	/* A duplicate charges nothing and announces nothing. */
	T_EQ_STR(t_apply_note(l, &t, v[2], NULL), "");
	bill_ledger_free(l);
	for (i = 0; i < ARRAY_SIZE(v); i++)
		bill_ev_free(v[i]);
}

T_MAIN(T_CASE(test_one_event), T_CASE(test_user_rate), T_CASE(test_duplicate),
    T_CASE(test_two_users), T_CASE(test_subscription), T_CASE(test_dead_letter),
    T_CASE(test_fk_fallback), T_CASE(test_cursor),
    T_CASE(test_cursor_late_instance), T_CASE(test_skip_lost),
    T_CASE(test_simple), T_CASE(test_cache_chunks), T_CASE(test_notify),
    T_CASE(test_teardown))
