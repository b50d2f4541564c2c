/*
 * bill_sync_test.c: billing's usage sync listener over a real REP socket
 * (inproc): carried events reach the ingest callback as USAGE_EVT
 * envelopes, bad ones are skipped, the reply carries the committed seq,
 * failures become error replies; and the billing_cursors query against
 * the test PostgreSQL (SUB2API_TEST_DATABASE_URL; its own database
 * bill_sync_test_<pid>, dropped at the end).
 */
#include <stdio.h>
#include <unistd.h>

#include "bill.h"
#include "err.h"
#include "proto.h"
#include "t.h"

#define T_ADDR "inproc://bill_sync_test"

struct t_sink {
	int      calls;
	int      fail; /* ingest returns this */
	char     ids[8][PROTO_ID_MAX + 1];
	uint64_t committed;
	int      committed_rv;
	char     asked[PROTO_ID_MAX + 1];
	int      lost_calls;
	uint64_t lost_from, lost_to; /* the last range declared */
	int      lost_rv;
};

static int
t_ingest_cb(void *arg, const void *env, size_t len)
{
	struct t_sink         *k = arg;
	struct proto_env       e;
	struct proto_usage_evt u;

	if (proto_env_unpack(env, len, &e) != 0 ||
	    proto_usage_evt_unpack(&e, &u) != 0 ||
	    strcmp(e.id, u.request_id) != 0)
		return -ERR_INTERNAL; /* the test then sees an error reply */
	if (k->calls < 8)
		(void)str_copy(
		    k->ids[k->calls], sizeof(k->ids[0]), u.request_id);
	k->calls++;
	return k->fail;
}

static int
t_committed_cb(void *arg, const char *instance, uint64_t *seq)
{
	struct t_sink *k = arg;

	(void)str_copy(k->asked, sizeof(k->asked), instance);
	if (k->committed_rv != 0)
		return k->committed_rv;
	*seq = k->committed;
	return 0;
}

static int
t_lost_cb(void *arg, const char *instance, uint64_t from, uint64_t to)
{
	struct t_sink *k = arg;

	(void)str_copy(k->asked, sizeof(k->asked), instance);
	k->lost_calls++;
	k->lost_from = from;
	k->lost_to = to;
	return k->lost_rv;
}

static int64_t  t_lost[4]; /* ranges the next t_call() declares */
static uint32_t t_n_lost;

/* A packed usage body for instance inst, seq, request id "r<seq>". */
static void
t_event(struct buf *b, const char *inst, uint64_t seq)
{
	struct proto_usage_evt u;

	memset(&u, 0, sizeof(u));
	(void)str_copy(u.instance, sizeof(u.instance), inst);
	u.seq = seq;
	snprintf(u.request_id, sizeof(u.request_id), "r%llu",
	    (unsigned long long)seq);
	snprintf(u.model, sizeof(u.model), "claude-sonnet-4-5");
	snprintf(u.platform, sizeof(u.platform), "anthropic");
	u.status = 200;
	u.input_tokens = 10;
	buf_reset(b);
	T_OK(proto_body_pack(b, MSG_USAGE_EVT, &u));
}

/*
 * Sends a sync request for "gw-1" with the given blobs; returns the
 * reply's committed seq, or -code of an error reply.
 */
static long long
t_call(struct nngx_req *c, const struct buf *blobs, uint32_t n)
{
	struct proto_usage_sync_req *q = xcalloc(1, sizeof(*q));
	struct proto_usage_sync_rep  p;
	struct proto_error_rep       er;
	struct proto_env             env;
	struct buf                   out, in;
	uint32_t                     i;
	long long                    res = 0;

	buf_init(&out, PROTO_MAX_MSG);
	buf_init(&in, PROTO_MAX_MSG);
	snprintf(q->instance, sizeof(q->instance), "gw-1");
	q->n_blobs = n;
	q->n_lost = t_n_lost;
	memcpy(q->lost, t_lost, sizeof(t_lost));
	for (i = 0; i < n; i++) {
		q->blobs[i].ptr = (const uint8_t *)blobs[i].data;
		q->blobs[i].len = blobs[i].len;
	}
	T_OK(proto_usage_sync_req_pack(&out, "sync-1", 0, q));
	T_OK(nngx_req_call(c, out.data, out.len, 5000, &in));
	T_OK(proto_env_unpack(in.data, in.len, &env));
	T_EQ_STR(env.id, "sync-1");
	if (env.type == MSG_ERROR_REP) {
		T_OK(proto_error_rep_unpack(&env, &er));
		res = -er.code;
	} else {
		T_EQ_INT(env.type, MSG_USAGE_SYNC_REP);
		T_OK(proto_usage_sync_rep_unpack(&env, &p));
		T_EQ_STR(p.instance, "gw-1");
		res = (long long)p.committed_seq;
	}
	buf_release(&out);
	buf_release(&in);
	free(q);
	return res;
}

static void
test_sync_listener(void)
{
	const char            *addr[1] = {T_ADDR};
	struct t_sink          k;
	struct bill_sync      *s = NULL;
	struct nngx_req       *c = NULL;
	struct buf             b[5], out, in;
	struct proto_env       env;
	struct proto_error_rep er;
	struct proto_ping_req  ping;
	int                    i;

	memset(&k, 0, sizeof(k));
	k.committed = 41;
	for (i = 0; i < 5; i++)
		buf_init(&b[i], 64 * 1024);
	T_OK(bill_sync_new(
	    T_ADDR, t_ingest_cb, &k, t_committed_cb, &k, t_lost_cb, &k, &s));
	T_OK(nngx_req_new(addr, 1, &c));

	/* A plain poll: no event, the committed seq. */
	T_EQ_INT(t_call(c, b, 0), 41);
	T_EQ_INT(k.calls, 0);
	T_EQ_STR(k.asked, "gw-1");

	/* Three events; one of another instance and one garbage skipped. */
	t_event(&b[0], "gw-1", 7);
	t_event(&b[1], "gw-other", 8);
	t_event(&b[2], "gw-1", 9);
	buf_reset(&b[3]);
	T_OK(buf_add(&b[3], "\x81\xa1x", 3));
	t_event(&b[4], "gw-1", 10);
	k.committed = 9;
	T_EQ_INT(t_call(c, b, 5), 9);
	T_EQ_INT(k.calls, 3);
	T_EQ_STR(k.ids[0], "r7");
	T_EQ_STR(k.ids[1], "r9");
	T_EQ_STR(k.ids[2], "r10");

	/* The ledger failing: an error reply, so the gateway resends. */
	k.fail = -ERR_UNAVAIL;
	T_EQ_INT(t_call(c, b, 1), -ERR_UNAVAIL);
	k.fail = 0;
	k.committed_rv = -ERR_DB;
	T_EQ_INT(t_call(c, b, 0), -ERR_DB);
	k.committed_rv = 0;

	/*
	 * Declared lost ranges reach the lost callback, each once, and the
	 * reply still carries the committed seq; a refusal there is only
	 * logged (the gateway declares the range again).
	 */
	t_lost[0] = 12;
	t_lost[1] = 15;
	t_lost[2] = 20;
	t_lost[3] = 20;
	t_n_lost = 4;
	T_EQ_INT(t_call(c, b, 0), 9);
	T_EQ_INT(k.lost_calls, 2);
	T_EQ_INT(k.lost_from * 100 + k.lost_to, 2020);
	k.lost_rv = -ERR_BUSY;
	t_n_lost = 2;
	T_EQ_INT(t_call(c, b, 1), 9);
	T_EQ_INT(k.lost_calls, 3);
	T_EQ_INT(k.lost_from * 100 + k.lost_to, 1215);
	T_EQ_INT(k.calls, 5);
	t_n_lost = 0;

	/* Another message type gets ERR_PROTO. */
	memset(&ping, 0, sizeof(ping));
	buf_init(&out, 4096);
	buf_init(&in, 4096);
	T_OK(proto_ping_req_pack(&out, "p", 0, &ping));
	T_OK(nngx_req_call(c, out.data, out.len, 5000, &in));
	T_OK(proto_env_unpack(in.data, in.len, &env));
	T_EQ_INT(env.type, MSG_ERROR_REP);
	T_OK(proto_error_rep_unpack(&env, &er));
	T_EQ_INT(er.code, ERR_PROTO);
	buf_release(&out);
	buf_release(&in);

	nngx_req_free(c);
	bill_sync_free(s);
	for (i = 0; i < 5; i++)
		buf_release(&b[i]);
}

/* ---- billing_cursors ---------------------------------------------------- */

static char t_dsn[1024];
static char t_db[64];

static void
t_admin(const char *sql)
{
	const char     *url = getenv("SUB2API_TEST_DATABASE_URL");
	struct pg_pool *p = NULL;
	struct pg_conn *c = NULL;

	T_ASSERT(url != NULL && url[0] != '\0');
	T_OK(pg_pool_new(url, 1, &p));
	T_OK(pg_acquire(p, 5000, &c));
	T_OK(pg_exec(c, sql, 0, NULL, NULL));
	pg_release(c);
	pg_pool_free(p);
}

static void
t_exec(struct pg_pool *p, const char *sql)
{
	struct pg_conn *c = NULL;

	T_OK(pg_acquire(p, 5000, &c));
	T_OK(pg_exec(c, sql, 0, NULL, NULL));
	pg_release(c);
}

static void
test_committed_from_billing_cursors(void)
{
	const char     *url = getenv("SUB2API_TEST_DATABASE_URL");
	const char     *slash;
	char            sql[256];
	struct pg_pool *p = NULL;
	uint64_t        seq = 99;

	T_ASSERT(url != NULL && url[0] != '\0');
	slash = strrchr(url, '/');
	T_ASSERT(slash != NULL);
	snprintf(t_db, sizeof(t_db), "bill_sync_test_%ld", (long)getpid());
	snprintf(
	    t_dsn, sizeof(t_dsn), "%.*s/%s", (int)(slash - url), url, t_db);
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s", t_db);
	t_admin(sql);
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", t_db);
	t_admin(sql);
	T_OK(pg_pool_new(t_dsn, 2, &p));
	/* The table as migrations/0002_usage.sql makes it. */
	t_exec(p,
	    "CREATE TABLE billing_cursors (instance_id text PRIMARY KEY,"
	    " committed_seq bigint NOT NULL DEFAULT 0"
	    " CHECK (committed_seq >= 0),"
	    " updated_at timestamptz NOT NULL DEFAULT now())");
	T_OK(bill_sync_committed_pg(p, "gw-1", &seq));
	T_EQ_INT(seq, 0);
	t_exec(p,
	    "INSERT INTO billing_cursors (instance_id, committed_seq)"
	    " VALUES ('gw-1', 9007199254740993), ('gw-2', 5)");
	T_OK(bill_sync_committed_pg(p, "gw-1", &seq));
	T_EQ_INT(seq, 9007199254740993ULL);
	T_OK(bill_sync_committed_pg(p, "gw-2", &seq));
	T_EQ_INT(seq, 5);
	/* A missing table is an error, not a zero. */
	t_exec(p, "DROP TABLE billing_cursors");
	T_ASSERT(bill_sync_committed_pg(p, "gw-1", &seq) != 0);
	pg_pool_free(p);
	snprintf(sql, sizeof(sql), "DROP DATABASE %s", t_db);
	t_admin(sql);
}

T_MAIN(T_CASE(test_sync_listener), T_CASE(test_committed_from_billing_cursors))
