/*
 * sched_keys.c: API-key resolution for the acquire path.
 *
 * A key hash resolves, with one query, to the key, its user and its group
 * (the key's own group, or the live group named "default" when the key
 * has none) plus the user's active subscription to that group.  The
 * answer is cached in memory for key_cache_ttl, an unknown hash for
 * key_cache_neg_ttl, so a flood of bad keys costs one query per hash per
 * few seconds and not one per request.
 *
 * The cache is a fixed array of 4-way sets indexed by the hash's leading
 * hex digits (already uniform: it is a sha256), guarded by one mutex held
 * for a copy in or out only.  Its size is fixed at start, so memory is
 * bounded whatever the keys presented; a full set evicts its entry that
 * expires first.  Config-changed events drop entries by key, user or
 * group id (sched_keys_invalidate()), which is how a disabled key or user
 * stops working at once instead of after the TTL.
 *
 * The money part of an entry (balance > 0, key quota spent, subscription
 * valid and its windows spent: booleans PostgreSQL computes with exact
 * numeric comparisons) is trusted for balance_cache_ttl only, a much
 * shorter time than the rest: after it one query by primary keys reads
 * it again (sched_keys_money()) while the rest of the entry stays.
 * Billing's config-changed events (a balance reaching zero, a window or
 * quota spent) drop the entry at once; the short lifetime bounds what a
 * lost event costs (pub/sub may drop messages), so a user at or below
 * zero is refused within balance_cache_ttl even then.  The original
 * trusts its Redis balance cache for 5 minutes.
 *
 * An invalidation that arrives while a query is in flight must not be
 * undone by that query's (older) answer being stored afterwards: every
 * invalidation bumps a generation, and an answer read under an older
 * generation serves its own request but is not cached.
 */
#include <pthread.h>
#include <stdio.h>

#include "err.h"
#include "log.h"
#include "sched.h"

#define SCHED_KC_WAYS 4

struct sched_kc_ent {
	bool             used;
	char             hash[PROTO_HASH_MAX + 1];
	int64_t          until_ms;
	struct sched_key k;
};

struct sched_keycache {
	pthread_mutex_t      mu;
	uint64_t             gen; /* bumped by every invalidation */
	size_t               nsets;
	struct sched_kc_ent *ents; /* nsets * SCHED_KC_WAYS */
};

struct sched_keycache *
sched_keys_new(size_t size)
{
	struct sched_keycache *kc;

	kc = xcalloc(1, sizeof(*kc));
	kc->nsets = (size + SCHED_KC_WAYS - 1) / SCHED_KC_WAYS;
	if (kc->nsets == 0)
		kc->nsets = 1;
	kc->ents = xcalloc(kc->nsets * SCHED_KC_WAYS, sizeof(*kc->ents));
	pthread_mutex_init(&kc->mu, NULL);
	return kc;
}

void
sched_keys_free(struct sched_keycache *kc)
{
	if (kc == NULL)
		return;
	pthread_mutex_destroy(&kc->mu);
	free(kc->ents);
	free(kc);
}

/* The set of hash: its first 15 hex digits as a number. */
static struct sched_kc_ent *
sched_keys_set(struct sched_keycache *kc, const char *hash)
{
	uint64_t h = 0;
	size_t   i;
	char     c;

	for (i = 0; i < 15 && hash[i] != '\0'; i++) {
		c = hash[i];
		h = h * 16 + (uint64_t)(c >= 'a' ? c - 'a' + 10 : c - '0') % 16;
	}
	return &kc->ents[(h % kc->nsets) * SCHED_KC_WAYS];
}

bool
sched_keys_get(struct sched_keycache *kc, const char *hash, int64_t now_ms,
    struct sched_key *out)
{
	struct sched_kc_ent *set;
	bool                 hit = false;
	int                  i;

	pthread_mutex_lock(&kc->mu);
	set = sched_keys_set(kc, hash);
	for (i = 0; i < SCHED_KC_WAYS; i++) {
		if (!set[i].used || strcmp(set[i].hash, hash) != 0)
			continue;
		if (set[i].until_ms > now_ms) {
			*out = set[i].k;
			hit = true;
		} else {
			set[i].used = false;
		}
		break;
	}
	pthread_mutex_unlock(&kc->mu);
	return hit;
}

/* Stores *k for hash; kc->mu is held. */
static void
sched_keys_put_locked(struct sched_keycache *kc, const char *hash,
    int64_t now_ms, int64_t ttl_ms, const struct sched_key *k)
{
	struct sched_kc_ent *set, *e = NULL;
	int                  i;

	set = sched_keys_set(kc, hash);
	for (i = 0; i < SCHED_KC_WAYS && e == NULL; i++)
		if (set[i].used && strcmp(set[i].hash, hash) == 0)
			e = &set[i];
	for (i = 0; i < SCHED_KC_WAYS && e == NULL; i++)
		if (!set[i].used || set[i].until_ms <= now_ms)
			e = &set[i];
	if (e == NULL) {
		e = &set[0];
		for (i = 1; i < SCHED_KC_WAYS; i++)
			if (set[i].until_ms < e->until_ms)
				e = &set[i];
	}
	e->used = true;
	snprintf(e->hash, sizeof(e->hash), "%s", hash);
	e->until_ms = now_ms + ttl_ms;
	e->k = *k;
}

void
sched_keys_put(struct sched_keycache *kc, const char *hash, int64_t now_ms,
    int64_t ttl_ms, const struct sched_key *k)
{
	if (ttl_ms <= 0 || strlen(hash) > PROTO_HASH_MAX)
		return;
	pthread_mutex_lock(&kc->mu);
	sched_keys_put_locked(kc, hash, now_ms, ttl_ms, k);
	pthread_mutex_unlock(&kc->mu);
}

void
sched_keys_put_gen(struct sched_keycache *kc, const char *hash, int64_t now_ms,
    int64_t ttl_ms, const struct sched_key *k, uint64_t gen)
{
	if (ttl_ms <= 0 || strlen(hash) > PROTO_HASH_MAX)
		return;
	pthread_mutex_lock(&kc->mu);
	if (kc->gen == gen)
		sched_keys_put_locked(kc, hash, now_ms, ttl_ms, k);
	pthread_mutex_unlock(&kc->mu);
}

uint64_t
sched_keys_gen(struct sched_keycache *kc)
{
	uint64_t g;

	pthread_mutex_lock(&kc->mu);
	g = kc->gen;
	pthread_mutex_unlock(&kc->mu);
	return g;
}

/* Copies the money part of src into dst. */
static void
sched_keys_copy_money(struct sched_key *dst, const struct sched_key *src)
{
	dst->balance_positive = src->balance_positive;
	dst->sub_id = src->sub_id;
	dst->sub_expires_ms = src->sub_expires_ms;
	dst->sub_invalid = src->sub_invalid;
	dst->quota_spent = src->quota_spent;
	dst->daily_spent = src->daily_spent;
	dst->weekly_spent = src->weekly_spent;
	dst->monthly_spent = src->monthly_spent;
	dst->money_ms = src->money_ms;
}

void
sched_keys_put_money(struct sched_keycache *kc, const char *hash,
    const struct sched_key *k, uint64_t gen)
{
	struct sched_kc_ent *set;
	int                  i;

	pthread_mutex_lock(&kc->mu);
	set = sched_keys_set(kc, hash);
	for (i = 0; i < SCHED_KC_WAYS && kc->gen == gen; i++) {
		if (!set[i].used || strcmp(set[i].hash, hash) != 0)
			continue;
		if (set[i].k.found && set[i].k.key_id == k->key_id)
			sched_keys_copy_money(&set[i].k, k);
		break;
	}
	pthread_mutex_unlock(&kc->mu);
}

size_t
sched_keys_invalidate(struct sched_keycache *kc, const char *kind, int64_t id)
{
	enum { ALL, KEY, USER, GROUP, SUB, NONE } what = ALL;
	struct sched_kc_ent *e;
	size_t               i, n = 0;
	bool                 drop;

	if (strcmp(kind, "account") == 0 || strcmp(kind, "accounts") == 0)
		what = NONE;
	else if (id == 0)
		what = ALL;
	else if (strcmp(kind, "api_key") == 0 || strcmp(kind, "key") == 0)
		what = KEY;
	else if (strcmp(kind, "user") == 0)
		what = USER;
	else if (strcmp(kind, "group") == 0)
		what = GROUP;
	else if (strcmp(kind, "subscription") == 0)
		what = SUB;
	if (what == NONE)
		return 0;
	pthread_mutex_lock(&kc->mu);
	kc->gen++;
	for (i = 0; i < kc->nsets * SCHED_KC_WAYS; i++) {
		e = &kc->ents[i];
		if (!e->used)
			continue;
		switch (what) {
		case KEY:
			drop = !e->k.found || e->k.key_id == id;
			break;
		case USER:
			drop = e->k.found && e->k.user_id == id;
			break;
		case GROUP:
			drop = e->k.found && e->k.group_id == id;
			break;
		case SUB:
			drop = e->k.found && e->k.sub_row_id == id;
			break;
		default:
			drop = true;
			break;
		}
		if (drop) {
			e->used = false;
			n++;
		}
	}
	pthread_mutex_unlock(&kc->mu);
	return n;
}

int
sched_rate_micro(const char *s, int64_t *out)
{
	int64_t v = 0;
	int     frac = -1; /* digits seen after the point, -1 before it */
	bool    any = false;

	for (; *s != '\0'; s++) {
		if (*s == '.' && frac < 0) {
			frac = 0;
			continue;
		}
		if (*s < '0' || *s > '9')
			return -ERR_INVAL;
		any = true;
		if (frac >= 6)
			continue; /* truncated */
		if (v > (INT64_MAX - 9) / 10)
			return -ERR_TOOBIG;
		v = v * 10 + (*s - '0');
		if (frac >= 0)
			frac++;
	}
	if (!any)
		return -ERR_INVAL;
	for (frac = frac < 0 ? 0 : frac; frac < 6; frac++) {
		if (v > INT64_MAX / 10)
			return -ERR_TOOBIG;
		v *= 10;
	}
	*out = v;
	return 0;
}

/*
 * Whether window W (daily, weekly, monthly) of subscription row s under
 * group g is spent: a limit above zero, a window started less than its
 * period ago (exact hours, whatever the session's time zone) and usage at
 * or over the limit.  A NULL limit or start gives false.
 */
#define SCHED_WIN_SPENT(w, hours)                                          \
	" coalesce(g." w "_limit_usd > 0 AND s." w "_window_start > now()" \
	" - interval '" hours " hours' AND s." w "_usage_usd >= g." w      \
	"_limit_usd, false)"

/* The subscription row's columns: id, expiry, valid, the three windows. */
#define SCHED_SUB_COLS                                                       \
	" s.id, coalesce((extract(epoch FROM s.expires_at) * 1000)::bigint," \
	"  0) AS exp_ms, s.status = 'active' AND s.starts_at <= now()"       \
	" AND s.expires_at > now() AS ok," SCHED_WIN_SPENT(                  \
	    "daily", "24") " AS d," SCHED_WIN_SPENT("weekly",                \
	    "168") " AS w," SCHED_WIN_SPENT("monthly", "720") " AS m"

/* The key quota: a quota above zero and used at or over it. */
#define SCHED_QUOTA_SPENT \
	" coalesce(k.quota_usd > 0 AND k.quota_used_usd >= k.quota_usd, false)"

static const char sched_keys_sql[] =
    "SELECT k.id, k.status = 'active',"
    " coalesce((extract(epoch FROM k.expires_at) * 1000)::bigint, 0),"
    " k.user_id, u.id IS NOT NULL, coalesce(u.status = 'active', false),"
    " coalesce(u.balance > 0, false), coalesce(u.concurrency, 0),"
    " g.id, coalesce(g.status = 'active', false),"
    " coalesce(g.subscription_type = 'subscription', false),"
    " coalesce(g.platform, ''),"
    " coalesce(o.rate_multiplier::text, g.rate_multiplier::text, '1'),"
    " sub.id, coalesce(sub.exp_ms, 0), coalesce(g.fail_fast, false),"
    " k.concurrency," SCHED_QUOTA_SPENT ","
    " coalesce(sub.ok, false), coalesce(sub.d, false),"
    " coalesce(sub.w, false), coalesce(sub.m, false)"
    " FROM api_keys k"
    " LEFT JOIN users u ON u.id = k.user_id AND u.deleted_at IS NULL"
    " LEFT JOIN groups g ON g.deleted_at IS NULL AND g.id = coalesce("
    "  k.group_id, (SELECT d.id FROM groups d WHERE d.name = 'default'"
    "  AND d.deleted_at IS NULL))"
    " LEFT JOIN user_group_rate_multipliers o"
    "  ON o.user_id = k.user_id AND o.group_id = g.id"
    " LEFT JOIN LATERAL (SELECT" SCHED_SUB_COLS "  FROM user_subscriptions s"
    "  WHERE s.user_id = k.user_id AND s.group_id = g.id"
    "  AND s.deleted_at IS NULL"
    "  ORDER BY 3 DESC, s.expires_at DESC LIMIT 1) sub ON true"
    " WHERE k.key_hash = $1 AND k.deleted_at IS NULL";

/*
 * The money part again, by primary keys: $1 user, $2 key, $3 the
 * subscription row (0: none).  Four index lookups, one round trip.
 */
static const char sched_keys_money_sql[] =
    "SELECT coalesce((SELECT u.balance > 0 FROM users u"
    "  WHERE u.id = $1::bigint AND u.deleted_at IS NULL), false),"
    " coalesce((SELECT" SCHED_QUOTA_SPENT " FROM api_keys k"
    "  WHERE k.id = $2::bigint), false),"
    " sub.id, coalesce(sub.exp_ms, 0), coalesce(sub.ok, false),"
    " coalesce(sub.d, false), coalesce(sub.w, false), coalesce(sub.m, false)"
    " FROM (SELECT 1) one LEFT JOIN LATERAL (SELECT" SCHED_SUB_COLS
    "  FROM user_subscriptions s JOIN groups g ON g.id = s.group_id"
    "  WHERE s.id = $3::bigint AND s.deleted_at IS NULL) sub ON true";

static bool
sched_keys_bool(const PGresult *res, int col)
{
	return PQgetvalue(res, 0, col)[0] == 't';
}

static int64_t
sched_keys_i64(const PGresult *res, int col)
{
	return strtoll(PQgetvalue(res, 0, col), NULL, 10);
}

/* Fills *k from the single row of res. */
static int
sched_keys_row(const PGresult *res, struct sched_key *k)
{
	int rv;

	k->found = true;
	k->key_id = sched_keys_i64(res, 0);
	k->key_active = sched_keys_bool(res, 1);
	k->key_expires_ms = sched_keys_i64(res, 2);
	k->user_id = sched_keys_i64(res, 3);
	k->user_found = sched_keys_bool(res, 4);
	k->user_active = sched_keys_bool(res, 5);
	k->balance_positive = sched_keys_bool(res, 6);
	k->user_concurrency = (int32_t)sched_keys_i64(res, 7);
	k->group_found = !PQgetisnull(res, 0, 8);
	k->group_id = k->group_found ? sched_keys_i64(res, 8) : 0;
	k->group_active = sched_keys_bool(res, 9);
	k->group_subscription = sched_keys_bool(res, 10);
	snprintf(
	    k->platform, sizeof(k->platform), "%s", PQgetvalue(res, 0, 11));
	rv = sched_rate_micro(PQgetvalue(res, 0, 12), &k->rate_micro);
	if (rv != 0)
		return rv;
	k->sub_row_id = PQgetisnull(res, 0, 13) ? 0 : sched_keys_i64(res, 13);
	k->sub_expires_ms = sched_keys_i64(res, 14);
	k->group_fail_fast = sched_keys_bool(res, 15);
	k->key_concurrency = (int32_t)sched_keys_i64(res, 16);
	k->quota_spent = sched_keys_bool(res, 17);
	k->sub_invalid = k->sub_row_id != 0 && !sched_keys_bool(res, 18);
	k->sub_id = k->sub_invalid ? 0 : k->sub_row_id;
	k->daily_spent = sched_keys_bool(res, 19);
	k->weekly_spent = sched_keys_bool(res, 20);
	k->monthly_spent = sched_keys_bool(res, 21);
	return 0;
}

int
sched_keys_money(struct pg_conn *conn, struct sched_key *k, int64_t now_ms)
{
	char             u[24], kid[24], sid[24];
	const char      *params[3] = {u, kid, sid};
	struct sched_key m;
	PGresult        *res;
	int              rv;

	snprintf(u, sizeof(u), "%lld", (long long)k->user_id);
	snprintf(kid, sizeof(kid), "%lld", (long long)k->key_id);
	snprintf(sid, sizeof(sid), "%lld", (long long)k->sub_row_id);
	rv = pg_exec(conn, sched_keys_money_sql, 3, params, &res);
	if (rv != 0) {
		log_warn("sched.money_query_failed", LOG_ERR(rv),
		    LOG_STR("detail", pg_errmsg(conn)));
		return rv;
	}
	if (PQntuples(res) != 1) {
		PQclear(res);
		return -ERR_PROTO;
	}
	memset(&m, 0, sizeof(m));
	m.balance_positive = sched_keys_bool(res, 0);
	m.quota_spent = sched_keys_bool(res, 1);
	/* A row gone (deleted) reads as no subscription at all. */
	m.sub_invalid = !PQgetisnull(res, 0, 2) && !sched_keys_bool(res, 4);
	m.sub_id = PQgetisnull(res, 0, 2) || m.sub_invalid
	    ? 0
	    : sched_keys_i64(res, 2);
	m.sub_expires_ms = sched_keys_i64(res, 3);
	m.daily_spent = sched_keys_bool(res, 5);
	m.weekly_spent = sched_keys_bool(res, 6);
	m.monthly_spent = sched_keys_bool(res, 7);
	m.money_ms = now_ms;
	PQclear(res);
	sched_keys_copy_money(k, &m);
	if (m.sub_id == 0 && !m.sub_invalid)
		k->sub_row_id = 0;
	return 0;
}

int
sched_keys_resolve(struct sched *s, struct pg_conn *conn, const char *hash,
    struct sched_key *out)
{
	const char      *params[1] = {hash};
	struct sched_key k;
	PGresult        *res;
	int64_t          now = now_wall_ms();
	uint64_t         gen;
	int              rv;

	gen = sched_keys_gen(s->keys);
	if (sched_keys_get(s->keys, hash, now, out)) {
		if (!out->found ||
		    now - out->money_ms < s->cfg->balance_cache_ttl)
			return 0;
		rv = sched_keys_money(conn, out, now);
		if (rv != 0)
			return rv;
		sched_keys_put_money(s->keys, hash, out, gen);
		return 0;
	}
	rv = pg_exec(conn, sched_keys_sql, 1, params, &res);
	if (rv != 0) {
		log_warn("sched.key_query_failed", LOG_ERR(rv),
		    LOG_STR("detail", pg_errmsg(conn)));
		return rv;
	}
	memset(&k, 0, sizeof(k));
	k.money_ms = now;
	if (PQntuples(res) == 1)
		rv = sched_keys_row(res, &k);
	PQclear(res);
	if (rv != 0) {
		log_warn("sched.key_row_bad", LOG_ERR(rv));
		return rv;
	}
	sched_keys_put_gen(s->keys, hash, now,
	    k.found ? s->cfg->key_cache_ttl : s->cfg->key_cache_neg_ttl, &k,
	    gen);
	*out = k;
	return 0;
}
