/*
 * billbench.c: billing's sustained usage events per second into
 * PostgreSQL, measured against the real billing service.
 *
 *   billbench --addr URL --db CONNINFO [--n N] [--window W] [--seed S]
 *
 * Reads the population from the database billing writes to (every live
 * API key with its user and group, the subscription of its user in that
 * group when the group is a subscription one, every account), then
 * publishes N usage events (default 100000) on a PUB socket dialing URL
 * (billing's events_addr), exactly as a gateway does: one instance id of
 * its own, seqs 1..N, each event a random key of the population, one of
 * four models, random token counts, half streamed.
 *
 * PUB in nng 1.5.2 drops silently when a peer's queue is full, so at most
 * W events (default 4000, below billing's recv_queue) are in flight: the
 * tool publishes while published - committed < W and otherwise polls
 * billing_cursors for its instance every 5 ms.  It stops when the
 * cursor reaches N and prints one JSON line on stdout:
 *
 *   {"events": N, "seconds": S, "events_per_s": R, "latency_p50_ms": ..,
 *    "latency_p99_ms": .., "latency_max_ms": ..}
 *
 * The latency of an event is from its publication to the first poll that
 * sees the cursor cover it (publish -> queue -> batch commit, within the
 * poll period).  A cursor that does not move for 20 s means an event was
 * lost or refused: the tool says so and exits 1, with no figures.
 */
#include <getopt.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "nngx.h"
#include "proto.h"
#include "topics.h"

#define BB_EV_MAX   (16 * 1024) /* one packed event, bytes */
#define BB_STALL_MS 20000
#define BB_POLL_US  5000

struct bb_key {
	int64_t id, user_id, group_id, sub_id;
};

struct bb {
	PGconn        *db;
	struct bb_key *keys;
	size_t         nkeys;
	int64_t       *accounts;
	size_t         naccounts;
	char           instance[40];
	uint64_t       rng;
};

static const char *const bb_models[] = {
    "claude-sonnet-4-5",
    "claude-sonnet-4-5",
    "claude-haiku-4-5",
    "claude-opus-4-5",
};

static void
bb_usage(int status)
{
	fprintf(status == 0 ? stdout : stderr,
	    "usage: billbench --addr URL --db CONNINFO [--n N] [--window W]"
	    " [--seed S]\n");
	exit(status);
}

/* xorshift64*: reproducible, good enough for picking keys and tokens. */
static uint64_t
bb_rand(struct bb *b)
{
	b->rng ^= b->rng >> 12;
	b->rng ^= b->rng << 25;
	b->rng ^= b->rng >> 27;
	return b->rng * 2685821657736338717ULL;
}

static int64_t
bb_between(struct bb *b, int64_t lo, int64_t hi)
{
	return lo + (int64_t)(bb_rand(b) % (uint64_t)(hi - lo + 1));
}

static PGresult *
bb_query(struct bb *b, const char *sql, int n, const char *const *p)
{
	PGresult *r = PQexecParams(b->db, sql, n, NULL, p, NULL, NULL, 0);

	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		fatalx("bench.query_failed", LOG_MSG(PQerrorMessage(b->db)));
	return r;
}

static void
bb_load(struct bb *b)
{
	PGresult *r;
	size_t    i;

	r = bb_query(b,
	    "SELECT k.id, k.user_id, coalesce(k.group_id, 0),"
	    " coalesce(s.id, 0) FROM api_keys k"
	    " LEFT JOIN groups g ON g.id = k.group_id"
	    " LEFT JOIN user_subscriptions s ON s.user_id = k.user_id"
	    " AND s.group_id = k.group_id AND s.deleted_at IS NULL"
	    " AND g.subscription_type = 'subscription'"
	    " WHERE k.deleted_at IS NULL ORDER BY k.id",
	    0, NULL);
	b->nkeys = (size_t)PQntuples(r);
	b->keys = xcalloc(b->nkeys + 1, sizeof(*b->keys));
	for (i = 0; i < b->nkeys; i++) {
		b->keys[i].id = strtoll(PQgetvalue(r, (int)i, 0), NULL, 10);
		b->keys[i].user_id =
		    strtoll(PQgetvalue(r, (int)i, 1), NULL, 10);
		b->keys[i].group_id =
		    strtoll(PQgetvalue(r, (int)i, 2), NULL, 10);
		b->keys[i].sub_id = strtoll(PQgetvalue(r, (int)i, 3), NULL, 10);
	}
	PQclear(r);
	r = bb_query(b, "SELECT id FROM accounts ORDER BY id", 0, NULL);
	b->naccounts = (size_t)PQntuples(r);
	b->accounts = xcalloc(b->naccounts + 1, sizeof(*b->accounts));
	for (i = 0; i < b->naccounts; i++)
		b->accounts[i] = strtoll(PQgetvalue(r, (int)i, 0), NULL, 10);
	PQclear(r);
	if (b->nkeys == 0 || b->naccounts == 0)
		fatalx("bench.empty_population", LOG_U64("keys", b->nkeys),
		    LOG_U64("accounts", b->naccounts));
}

/* The committed seq of our instance (0 before the first commit). */
static uint64_t
bb_committed(struct bb *b)
{
	const char *p[1] = {b->instance};
	PGresult   *r;
	uint64_t    v = 0;

	r = bb_query(b,
	    "SELECT committed_seq FROM billing_cursors"
	    " WHERE instance_id = $1",
	    1, p);
	if (PQntuples(r) == 1)
		v = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return v;
}

static void
bb_event(struct bb *b, uint64_t seq, struct proto_usage_evt *e)
{
	const struct bb_key *k = &b->keys[bb_rand(b) % b->nkeys];
	int64_t              cc;

	memset(e, 0, sizeof(*e));
	snprintf(e->instance, sizeof(e->instance), "%s", b->instance);
	e->seq = seq;
	snprintf(e->request_id, sizeof(e->request_id), "%s-%llu", b->instance,
	    (unsigned long long)seq);
	e->user_id = k->user_id;
	e->api_key_id = k->id;
	e->group_id = k->group_id;
	e->subscription_id = k->sub_id;
	e->account_id = b->accounts[bb_rand(b) % b->naccounts];
	snprintf(e->model, sizeof(e->model), "%s",
	    bb_models[bb_rand(b) % ARRAY_SIZE(bb_models)]);
	snprintf(e->upstream_model, sizeof(e->upstream_model), "%s", e->model);
	snprintf(e->platform, sizeof(e->platform), "anthropic");
	e->input_tokens = bb_between(b, 10, 20000);
	e->output_tokens = bb_between(b, 1, 4000);
	cc = bb_rand(b) % 3 == 0 ? bb_between(b, 0, 8000) : 0;
	e->cache_creation_5m_tokens = cc / 2;
	e->cache_creation_1h_tokens = cc - cc / 2;
	e->cache_creation_tokens = cc;
	e->cache_read_tokens = bb_rand(b) % 2 ? bb_between(b, 0, 50000) : 0;
	e->stream = (seq & 1) == 0;
	e->duration_ms = bb_between(b, 200, 60000);
	e->first_token_ms = e->stream ? bb_between(b, 50, 2000) : 0;
	e->status = 200;
	snprintf(e->client_ip, sizeof(e->client_ip), "10.0.%d.%d",
	    (int)(bb_rand(b) % 256), (int)(bb_rand(b) % 256));
	snprintf(e->user_agent, sizeof(e->user_agent), "claude-cli/2.0.%d",
	    (int)(seq % 50));
	e->created_at_ms = now_wall_ms();
}

static int
bb_cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static void
bb_sleep_us(long us)
{
	struct timespec ts = {.tv_sec = 0, .tv_nsec = us * 1000L};

	(void)nanosleep(&ts, NULL);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"addr", required_argument, NULL, 'a'},
	    {"db", required_argument, NULL, 'd'},
	    {"n", required_argument, NULL, 'n'},
	    {"window", required_argument, NULL, 'w'},
	    {"seed", required_argument, NULL, 's'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char            *addr = NULL, *conninfo = NULL;
	uint64_t               n = 100000, window = 4000, sent = 0, done = 0;
	uint64_t               c, i;
	struct bb              b;
	struct nngx_pub       *pub;
	struct proto_usage_evt e;
	struct buf             out;
	int64_t               *t_pub, *lat, t0, t_last, now;
	int                    o, rv;

	log_init("billbench", LOG_WARN);
	memset(&b, 0, sizeof(b));
	b.rng = 0x5eed5eed5eedULL;
	while ((o = getopt_long(argc, argv, "a:d:n:w:s:h", opts, NULL)) != -1) {
		switch (o) {
		case 'a':
			addr = optarg;
			break;
		case 'd':
			conninfo = optarg;
			break;
		case 'n':
			n = strtoull(optarg, NULL, 10);
			break;
		case 'w':
			window = strtoull(optarg, NULL, 10);
			break;
		case 's':
			b.rng = strtoull(optarg, NULL, 10) | 1;
			break;
		case 'h':
			bb_usage(0);
			break;
		default:
			bb_usage(2);
		}
	}
	if (optind != argc || addr == NULL || conninfo == NULL || n == 0 ||
	    n > 100000000 || window == 0)
		bb_usage(2);

	b.db = PQconnectdb(conninfo);
	if (PQstatus(b.db) != CONNECTION_OK)
		fatalx("bench.db_failed", LOG_MSG(PQerrorMessage(b.db)));
	bb_load(&b);
	snprintf(b.instance, sizeof(b.instance), "billbench-%ld-%lld",
	    (long)getpid(), (long long)now_wall_ms());

	rv = nngx_pub_new(&addr, 1, &pub);
	if (rv == 0)
		rv = nngx_pub_set_sendbuf(pub, 8192);
	if (rv != 0)
		fatalx("bench.pub_failed", LOG_STR("addr", addr), LOG_ERR(rv));
	t0 = now_mono_ms();
	while (nngx_pub_npipes(pub) == 0) {
		if (now_mono_ms() - t0 > 10000)
			fatalx("bench.no_billing", LOG_STR("addr", addr));
		bb_sleep_us(10000);
	}

	t_pub = xcalloc(n + 1, sizeof(*t_pub));
	lat = xcalloc(n + 1, sizeof(*lat));
	buf_init(&out, BB_EV_MAX);
	t0 = now_mono_us();
	t_last = t0;
	while (done < n) {
		while (sent < n && sent - done < window) {
			sent++;
			bb_event(&b, sent, &e);
			buf_truncate(&out, 0);
			rv = proto_usage_evt_pack(&out, e.request_id, 0, &e);
			if (rv == 0) {
				t_pub[sent] = now_mono_us();
				rv = nngx_pub_send(
				    pub, TOPIC_USAGE, out.data, out.len);
			}
			if (rv != 0)
				fatalx("bench.send_failed", LOG_ERR(rv));
		}
		bb_sleep_us(BB_POLL_US);
		c = bb_committed(&b);
		now = now_mono_us();
		if (c > sent)
			fatalx("bench.cursor_ahead", LOG_U64("cursor", c));
		for (i = done + 1; i <= c; i++)
			lat[i - 1] = now - t_pub[i];
		if (c > done) {
			done = c;
			t_last = now;
		} else if (now - t_last > BB_STALL_MS * 1000LL) {
			fprintf(stderr,
			    "billbench: the cursor stopped at %llu of %llu"
			    " (published %llu): an event was lost or refused\n",
			    (unsigned long long)done, (unsigned long long)n,
			    (unsigned long long)sent);
			return 1;
		}
	}
	now = now_mono_us();
	qsort(lat, n, sizeof(*lat), bb_cmp_i64);
	printf("{\"events\": %llu, \"seconds\": %.3f, \"events_per_s\": %.0f,"
	       " \"latency_p50_ms\": %.1f, \"latency_p99_ms\": %.1f,"
	       " \"latency_max_ms\": %.1f, \"keys\": %zu, \"window\": %llu}\n",
	    (unsigned long long)n, (double)(now - t0) / 1e6,
	    (double)n * 1e6 / (double)(now - t0), (double)lat[n / 2] / 1000.0,
	    (double)lat[(n * 99) / 100] / 1000.0, (double)lat[n - 1] / 1000.0,
	    b.nkeys, (unsigned long long)window);
	buf_release(&out);
	free(t_pub);
	free(lat);
	nngx_pub_free(pub);
	free(b.keys);
	free(b.accounts);
	PQfinish(b.db);
	return 0;
}
