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
 * The balance is cached as a flag (positive or not) for the same TTL: a
 * user whose balance reaches zero may still be admitted for up to
 * key_cache_ttl unless billing announces the change.  The original does
 * the same with its Redis billing cache.
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

void
sched_keys_put(struct sched_keycache *kc, const char *hash, int64_t now_ms,
    int64_t ttl_ms, const struct sched_key *k)
{
	struct sched_kc_ent *set, *e = NULL;
	int                  i;

	if (ttl_ms <= 0 || strlen(hash) > PROTO_HASH_MAX)
		return;
	pthread_mutex_lock(&kc->mu);
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
	pthread_mutex_unlock(&kc->mu);
}

size_t
sched_keys_invalidate(struct sched_keycache *kc, const char *kind, int64_t id)
{
	enum { ALL, KEY, USER, GROUP, NONE } what = ALL;
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
	if (what == NONE)
		return 0;
	pthread_mutex_lock(&kc->mu);
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

static const char sched_keys_sql[] =
    "SELECT k.id, k.status = 'active',"
    " coalesce((extract(epoch FROM k.expires_at) * 1000)::bigint, 0),"
    " k.user_id, u.id IS NOT NULL, coalesce(u.status = 'active', false),"
    " coalesce(u.balance > 0, false), coalesce(u.concurrency, 0),"
    " g.id, coalesce(g.status = 'active', false),"
    " coalesce(g.subscription_type = 'subscription', false),"
    " coalesce(g.platform, ''), coalesce(g.rate_multiplier::text, '1'),"
    " sub.id, coalesce((extract(epoch FROM sub.expires_at) * 1000)::bigint,"
    "  0), coalesce(g.fail_fast, false), k.concurrency"
    " FROM api_keys k"
    " LEFT JOIN users u ON u.id = k.user_id AND u.deleted_at IS NULL"
    " LEFT JOIN groups g ON g.deleted_at IS NULL AND g.id = coalesce("
    "  k.group_id, (SELECT d.id FROM groups d WHERE d.name = 'default'"
    "  AND d.deleted_at IS NULL))"
    " LEFT JOIN LATERAL (SELECT s.id, s.expires_at FROM user_subscriptions s"
    "  WHERE s.user_id = k.user_id AND s.group_id = g.id"
    "  AND s.deleted_at IS NULL AND s.status = 'active'"
    "  AND s.starts_at <= now() AND s.expires_at > now()"
    "  ORDER BY s.expires_at DESC LIMIT 1) sub ON true"
    " WHERE k.key_hash = $1 AND k.deleted_at IS NULL";

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
	k->sub_id = PQgetisnull(res, 0, 13) ? 0 : sched_keys_i64(res, 13);
	k->sub_expires_ms = sched_keys_i64(res, 14);
	k->group_fail_fast = sched_keys_bool(res, 15);
	k->key_concurrency = (int32_t)sched_keys_i64(res, 16);
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
	int              rv;

	if (sched_keys_get(s->keys, hash, now, out))
		return 0;
	rv = pg_exec(conn, sched_keys_sql, 1, params, &res);
	if (rv != 0) {
		log_warn("sched.key_query_failed", LOG_ERR(rv),
		    LOG_STR("detail", pg_errmsg(conn)));
		return rv;
	}
	memset(&k, 0, sizeof(k));
	if (PQntuples(res) == 1)
		rv = sched_keys_row(res, &k);
	PQclear(res);
	if (rv != 0) {
		log_warn("sched.key_row_bad", LOG_ERR(rv));
		return rv;
	}
	sched_keys_put(s->keys, hash, now,
	    k.found ? s->cfg->key_cache_ttl : s->cfg->key_cache_neg_ttl, &k);
	*out = k;
	return 0;
}
