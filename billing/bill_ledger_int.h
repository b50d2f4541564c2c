/*
 * bill_ledger_int.h: what bill_ledger.c (events, pricing, the public
 * face) and bill_ledger_tx.c (the statements of one transaction) share.
 * Private to those two files.
 */
#ifndef BILL_LEDGER_INT_H
#define BILL_LEDGER_INT_H

#include <jansson.h>

#include "bill_cost.h"
#include "bill_ledger.h"
#include "bill_usage.h"

#define BILL_MODEL_CHARS 100 /* usage_logs.model varchar(100) */
#define BILL_IP_CHARS    45  /* usage_logs.ip_address varchar(45) */
#define BILL_ID_CHARS    64

struct bill_ledger {
	struct bill_ledger_cfg cfg;
	char                   prefix[128];
	/*
	 * mu guards cur and loaded, and serialises the end of every batch's
	 * transaction over the writers: dead letters, cursors, COMMIT and
	 * the copy of the staged cursors (see bill_tx_run()).
	 */
	pthread_mutex_t    mu;
	struct bill_cursor cur;
	bool               loaded;  /* cur holds billing_cursors */
	struct rds_script *lua_set; /* the cache writes (bill_ledger_tx.c) */
	struct rds_script *lua_sub;
};

enum bill_kind {
	BILL_K_ROW = 0, /* priced: goes to usage_logs */
	BILL_K_DEAD,    /* dead letter */
	BILL_K_SKIP,    /* same request id earlier in the batch */
};

/* One event of a batch, prepared once, applied by one or more tries. */
struct bill_item {
	struct bill_ev   *ev;
	size_t            idx; /* position in the batch, for stable sorts */
	enum bill_kind    kind;
	char              reason[BILL_REASON_MAX];
	struct bill_usage use;
	struct bill_cost  cost;
	int64_t           gid; /* 0: none (group gone or not given) */
	int               billing_type;
	bool              inserted;
};

/* A (user, group) pair of a batch: its group, and its multiplier (the
 * user's own in that group, else the group's; millionths). */
struct bill_group {
	int64_t uid;
	int64_t id;
	int64_t mult;
	bool    subscription;
};

/*
 * Copies src into dst (cap bytes) as valid UTF-8 of at most chars
 * characters; an invalid byte becomes '?'.
 */
void bill_utf8_copy(char *dst, size_t cap, const char *src, size_t chars);

/* Text as a JSON string of valid UTF-8, at most chars characters. */
json_t *bill_jstr(const char *s, size_t chars);

/* A cost in 1e-10 USD as a JSON string "0.0123456789". */
json_t *bill_jcost(int64_t units);

/* pg_exec() that logs a failure under the statement's name what. */
int bill_exec(struct pg_conn *c, const char *what, const char *sql, int n,
    const char *const *p, PGresult **res) WARN_UNUSED;

/* The same with one jsonb parameter made from j (taken). */
int bill_exec_json(struct pg_conn *c, const char *what, const char *sql,
    json_t *j, PGresult **res) WARN_UNUSED;

/* The Lua scripts of the Redis cache writes (bill_ledger_tx.c). */
extern const char bill_lua_set[];
extern const char bill_lua_sub[];

/* qsort() order of struct bill_item pointers: request id, then idx. */
int bill_cmp_rid(const void *a, const void *b);

/* A data error (constraint, bad value): worth a per-event retry. */
bool bill_data_error(int rv);

/*
 * One transaction over it[0..n) (prepared items): rows, charges, dead
 * letters, cursors; then the Redis cache.  Adds to *res on commit.
 * -ERR_x after a rollback.
 */
int bill_tx_run(struct bill_ledger *l, struct pg_conn *c, struct bill_item **it,
    size_t n, struct bill_ledger_result *res) WARN_UNUSED;

/*
 * One transaction writing the cursor of instance with from..to counted
 * done (bill_cursor_skip()); copied to memory on commit.  -ERR_INVAL for
 * a bad range; -ERR_x after a rollback.
 */
int bill_tx_skip(struct bill_ledger *l, struct pg_conn *c, const char *instance,
    uint64_t from, uint64_t to) WARN_UNUSED;

#endif /* BILL_LEDGER_INT_H */
