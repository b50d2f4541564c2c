/*
 * bill_ledger.h: usage events to money, one PostgreSQL transaction per
 * batch.
 *
 * A batch of usage events (struct bill_ev) is applied in ONE transaction:
 *
 *  1. each event is checked and priced: bill_usage_normalize() (a refusal
 *     dead-letters the event with its reason), bill_prices_lookup() (an
 *     unknown model under the "zero" policy is dead-lettered, never
 *     priced at zero), bill_cost_compute() with the group's
 *     rate_multiplier (the schema has no per-user-per-group override; see
 *     bill_ledger.c);
 *  2. one multi-row INSERT INTO usage_logs ... ON CONFLICT (request_id) DO
 *     NOTHING RETURNING request_id: only the rows actually inserted are
 *     charged, so a duplicated or replayed event is a no-op;
 *  3. the inserted rows are summed per user (balance groups), per
 *     subscription (subscription groups) and per API key, and each sum is
 *     applied with one statement: the user's balance is debited by the
 *     sum of actual_cost (it may go below zero: the last request is never
 *     free) and one balance_ledger row per charged request is written
 *     with its exact balance_after (a chain ending at the new balance);
 *     the subscription's daily/weekly/monthly usage grows by actual_cost
 *     with the rolling windows of the original (activated at the start of
 *     the current UTC day on first use; a window at least 24 h / 7 d /
 *     30 d old restarts at the start of the current UTC day with zero
 *     usage); the key's quota_used_usd grows by actual_cost (both billing
 *     types);
 *  4. dead letters (billing_dead_letters, with the reason and the event's
 *     envelope bytes), once per (instance, seq);
 *  5. billing_cursors: per gateway instance, the highest contiguous seq
 *     committed, computed by the in-memory cursor tracker (bill_cursor.h)
 *     from what is committed so far plus this batch.
 *
 * In run_mode=simple the rows are recorded with their costs and nothing is
 * charged (no balance, subscription or quota change).
 *
 * A batch whose INSERT fails on a data error (an event naming a deleted
 * user, key, account or group) is rolled back and applied again one event
 * per transaction; an event that still fails is dead-lettered alone.
 * Other errors (connection lost, serialization) leave the batch to the
 * caller to retry: the whole path is idempotent thanks to the unique
 * request id.
 *
 * After each commit the Redis billing cache is written (best effort; see
 * bill_ledger.c for the keys): <prefix>billing:balance:<uid> and
 * <prefix>billing:sub:<uid>:<gid>.
 *
 * Threads: bill_ledger_apply() may run on several threads at once (the
 * writers), each on its own connection.  Concurrent batches stay exact:
 * every statement locks its users, subscriptions and keys in id order
 * (FOR NO KEY UPDATE, which foreign-key checks do not conflict with), so
 * a batch touching a row another holds waits for its commit and then
 * sees its balance; and the end of each transaction (dead letters,
 * cursors, COMMIT) is serialised, each batch staging its cursors from
 * every batch committed before it.  The queue functions may be called
 * from any thread.
 */
#ifndef BILL_LEDGER_H
#define BILL_LEDGER_H

#include <pthread.h>

#include "bill_cursor.h"
#include "bill_price.h"
#include "metrics.h"
#include "pg.h"
#include "proto.h"
#include "rds.h"

#define BILL_EV_PAYLOAD_MAX (64 * 1024) /* envelope bytes kept per event */
#define BILL_REASON_MAX     200

/* One received usage event and its envelope bytes (for dead letters). */
struct bill_ev {
	struct proto_usage_evt u;
	size_t                 payload_len;
	uint8_t               *payload; /* owned; may be NULL */
};

/* Decodes an envelope (borrowed) into a new event; NULL on a bad one. */
int bill_ev_decode(
    const void *data, size_t len, struct bill_ev **out) WARN_UNUSED;

/* A new event copying u (borrowed), with no payload.  For tests. */
struct bill_ev *bill_ev_new(const struct proto_usage_evt *u);
void            bill_ev_free(struct bill_ev *e);

/* Optional counters; any may be NULL. */
struct bill_ledger_metrics {
	struct met_counter *rows;         /* usage_logs rows inserted */
	struct met_counter *duplicates;   /* events whose row existed */
	struct met_counter *dead_letters; /* events dead-lettered */
	struct met_counter *batches;      /* transactions committed */
	struct met_counter *db_errors;    /* failed batch attempts */
	struct met_counter *cache_errors; /* Redis cache writes failed */
};

struct bill_ledger_cfg {
	struct pg_pool            *pg;           /* borrowed */
	struct rds_pool           *rds;          /* borrowed; NULL: no cache */
	struct bill_prices        *prices;       /* borrowed */
	const char                *redis_prefix; /* copied */
	bool                       simple; /* run_mode=simple: charge nothing */
	int                        db_timeout_ms; /* waiting for a connection */
	int                        cache_ttl_s;   /* Redis cache entries' TTL */
	struct bill_ledger_metrics met;
	/*
	 * Called after a commit, on the writer's thread, for each entity
	 * whose money verdict the batch turned: kind "user" (balance <= 0),
	 * "subscription" (a window spent) or "api_key" (quota spent), with
	 * its id.  Must not block.  NULL: nobody is told.
	 */
	void (*notify)(void *arg, const char *kind, int64_t id);
	void *notify_arg;
};

struct bill_ledger;

/*
 * A ledger using cfg (copied; the pools and prices are borrowed and must
 * outlive it), into *out (owned; bill_ledger_free()).  The committed
 * cursors are read from billing_cursors before the first batch (the 1024
 * most recent), and before each batch for an instance not held.
 */
void bill_ledger_new(
    const struct bill_ledger_cfg *cfg, struct bill_ledger **out);
void bill_ledger_free(struct bill_ledger *l);

/* What one bill_ledger_apply() did. */
struct bill_ledger_result {
	size_t inserted;     /* new usage_logs rows */
	size_t duplicates;   /* events whose request id was already there */
	size_t dead;         /* events dead-lettered */
	size_t transactions; /* committed (1, or n after a fallback) */
};

/*
 * Applies evs[0..n) (borrowed; n >= 1) as described at the top.  0 when
 * everything is committed; otherwise -ERR_x and nothing of this call that
 * failed is committed (after a fallback, events already committed stay
 * committed: applying them again is a no-op).  res may be NULL.
 */
int bill_ledger_apply(struct bill_ledger *l, struct bill_ev *const *evs,
    size_t n, struct bill_ledger_result *res) WARN_UNUSED;

/*
 * The gateway says seqs from..to of instance were never spooled (its
 * spool was full or failing): nothing will resend them, so they count as
 * done and the cursor may pass them (one transaction on billing_cursors;
 * see bill_cursor_skip()).  An event among them that does arrive is
 * still billed.  0, -ERR_INVAL for a bad range, or a database error.
 * Same thread rule as bill_ledger_apply().
 */
int bill_ledger_skip(struct bill_ledger *l, const char *instance, uint64_t from,
    uint64_t to) WARN_UNUSED;

/* The committed contiguous seq of instance (0 when unknown). */
uint64_t bill_ledger_committed(struct bill_ledger *l, const char *instance);

/* ---- the queue and its writer thread (bill_writer.c) ---------------- */

struct bill_writer_cfg {
	size_t writers;       /* threads applying batches (>= 1) */
	size_t queue_max;     /* events held at most; beyond, push refuses */
	size_t batch_max;     /* events per transaction at most */
	int    batch_wait_ms; /* how long a partial batch waits for more */
	int    retry_min_ms;  /* back-off after a failed batch */
	int    retry_max_ms;
	struct met_counter *dropped; /* may be NULL */
	struct met_gauge   *depth;   /* may be NULL */
};

struct bill_writer;

/* Starts the writer threads over l (borrowed).  Aborts on thread failure. */
struct bill_writer *bill_writer_start(
    struct bill_ledger *l, const struct bill_writer_cfg *cfg);

/*
 * Queues e (taken on success).  -ERR_BUSY when the queue is full (e stays
 * the caller's): the event is lost here and comes back through replay.
 */
int bill_writer_push(struct bill_writer *w, struct bill_ev *e) WARN_UNUSED;

/*
 * Queues a lost range for bill_ledger_skip() on the writer's thread,
 * ahead of the events (instance copied).  0 (also when the same range is
 * already pending), -ERR_INVAL for a bad one, -ERR_BUSY when
 * BILL_WRITER_LOST_MAX ranges wait or the writer stops (the gateway
 * declares them again).
 */
#define BILL_WRITER_LOST_MAX 64
int bill_writer_lost(struct bill_writer *w, const char *instance, uint64_t from,
    uint64_t to) WARN_UNUSED;

/*
 * Applies what is queued (retrying failures until deadline_ms of
 * now_mono_ms()), stops the thread and frees w.  Events still queued
 * after the deadline are dropped (replay brings them back).  NULL ok.
 */
void bill_writer_stop(struct bill_writer *w, int64_t deadline_ms);

/* Events applied so far (committed), for tests. */
uint64_t bill_writer_applied(struct bill_writer *w);

/* The result of the last batch attempt (0 before any), for /readyz. */
int bill_writer_last(struct bill_writer *w);

#endif /* BILL_LEDGER_H */
