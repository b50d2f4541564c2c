/*
 * bill_writer_test.c: the queue and its writer threads against the real
 * test PostgreSQL (bill_fixture.h): everything pushed is applied, several
 * writers over shared users stay exact, a failing batch is retried.
 */
#include "bill_fixture.h"

/* ---- cases ---------------------------------------------------------- */

/* The queue and writer: everything pushed is applied by stop. */
static void
test_writer(void)
{
	struct bill_writer_cfg wc = {.queue_max = 64,
	    .batch_max = 7,
	    .batch_wait_ms = 5,
	    .retry_min_ms = 10,
	    .retry_max_ms = 100};
	struct bill_ledger    *l;
	struct bill_writer    *w;
	struct bill_ev        *e;
	int64_t                uid, gid, kid, aid;
	int                    i;

	t_setup();
	uid = t_user("100");
	gid = t_group("1", false);
	kid = t_key(uid, gid);
	aid = t_account();
	l = t_ledger(false);
	w = bill_writer_start(l, &wc);
	for (i = 1; i <= 50; i++) {
		e = t_ev(uid, kid, gid, aid, "inst-writer", (uint64_t)i);
		T_OK(bill_writer_push(w, e));
	}
	bill_writer_stop(w, now_mono_ms() + 10000);
	T_EQ_STR(t_q1("SELECT count(*) FROM usage_logs"
	              " WHERE user_id = $1::bigint",
	             uid),
	    "50");
	T_EQ_STR(t_q1("SELECT (100 - balance = 50 * 0.01134)::text"
	              " FROM users WHERE id = $1::bigint",
	             uid),
	    "true");
	T_EQ_INT(bill_ledger_committed(l, "inst-writer"), 50);
	bill_ledger_free(l);
}

/*
 * Three writers at once over three users sharing every batch (so their
 * transactions queue on the same rows): everything commits exactly once,
 * each user's ledger chains to its balance, each key's quota is the sum
 * of its rows, and the cursor, in memory and in billing_cursors, covers
 * every seq.
 */
static void
test_writers_concurrent(void)
{
	struct bill_writer_cfg wc = {.writers = 3,
	    .queue_max = 1024,
	    .batch_max = 9,
	    .batch_wait_ms = 1,
	    .retry_min_ms = 5,
	    .retry_max_ms = 50};
	struct bill_ledger    *l;
	struct bill_writer    *w;
	int64_t                uid[3], kid[6], gid, aid;
	int                    i;

	t_setup();
	gid = t_group("1", false);
	aid = t_account();
	for (i = 0; i < 3; i++) {
		uid[i] = t_user("100");
		kid[2 * i] = t_key(uid[i], gid);
		kid[2 * i + 1] = t_key(uid[i], gid);
	}
	l = t_ledger(false);
	w = bill_writer_start(l, &wc);
	for (i = 1; i <= 600; i++)
		T_OK(bill_writer_push(w,
		    t_ev(uid[i % 3], kid[i % 6], gid, aid, "inst-conc",
		        (uint64_t)i)));
	bill_writer_stop(w, now_mono_ms() + 30000);
	for (i = 0; i < 3; i++) {
		T_EQ_STR(t_q1("SELECT count(*) || ' ' || (100 - (SELECT"
		              " balance FROM users WHERE id = $1::bigint))"
		              " FROM usage_logs WHERE user_id = $1::bigint",
		             uid[i]),
		    "200 2.2680000000");
		T_EQ_STR(
		    t_q1("WITH l AS (SELECT balance_after, sum(delta)"
		         " OVER (ORDER BY id) AS run FROM balance_ledger"
		         " WHERE user_id = $1::bigint)"
		         " SELECT count(*) || ' ' || bool_and(balance_after"
		         " = 100 + run) FROM l",
		        uid[i]),
		    "200 true");
	}
	for (i = 0; i < 6; i++)
		T_EQ_STR(t_q1("SELECT quota_used_usd::text FROM api_keys"
		              " WHERE id = $1::bigint",
		             kid[i]),
		    "1.1340000000");
	T_EQ_INT(bill_ledger_committed(l, "inst-conc"), 600);
	T_EQ_STR(t_q("SELECT committed_seq FROM billing_cursors"
	             " WHERE instance_id = 'inst-conc'",
	             0, NULL),
	    "600");
	bill_ledger_free(l);
}

/*
 * A database error (here the table is renamed away) leaves the batch
 * queued: the writer retries until it commits, then the row is there
 * once and the balance moved once.
 */
static void
test_writer_retry(void)
{
	struct bill_writer_cfg wc = {.queue_max = 16,
	    .batch_max = 4,
	    .batch_wait_ms = 1,
	    .retry_min_ms = 5,
	    .retry_max_ms = 20};
	struct bill_ledger    *l;
	struct bill_writer    *w;
	int64_t                uid, gid, kid, aid, until;

	t_setup();
	uid = t_user("7");
	gid = t_group("1", false);
	kid = t_key(uid, gid);
	aid = t_account();
	l = t_ledger(false);
	t_q("ALTER TABLE usage_logs RENAME TO usage_logs_away", 0, NULL);
	w = bill_writer_start(l, &wc);
	T_OK(bill_writer_push(w, t_ev(uid, kid, gid, aid, "inst-retry", 1)));
	/* Await the failure the writer reports (no fixed sleep). */
	until = now_mono_ms() + 10000;
	while (bill_writer_last(w) == 0 && now_mono_ms() < until)
		usleep(2000);
	T_ASSERT(bill_writer_last(w) != 0);
	T_EQ_INT(bill_writer_applied(w), 0);
	t_q("ALTER TABLE usage_logs_away RENAME TO usage_logs", 0, NULL);
	until = now_mono_ms() + 10000;
	while (bill_writer_applied(w) == 0 && now_mono_ms() < until)
		usleep(2000);
	T_EQ_INT(bill_writer_applied(w), 1);
	T_EQ_INT(bill_writer_last(w), 0);
	bill_writer_stop(w, now_mono_ms() + 5000);
	T_EQ_STR(t_q1("SELECT count(*) || ' ' || (7 - (SELECT balance FROM"
	              " users WHERE id = $1::bigint))::text FROM usage_logs"
	              " WHERE user_id = $1::bigint",
	             uid),
	    "1 0.0113400000");
	T_EQ_INT(bill_ledger_committed(l, "inst-retry"), 1);
	bill_ledger_free(l);
}

T_MAIN(T_CASE(test_writer), T_CASE(test_writers_concurrent),
    T_CASE(test_writer_retry), T_CASE(test_teardown))
