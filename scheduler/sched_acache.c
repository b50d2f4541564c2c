/*
 * sched_acache.c: the candidate accounts cache of the acquire path.
 *
 * Without it every acquire read its candidates from PostgreSQL and wrote
 * last_used_at back: two round trips, most of the scheduler's time per
 * request.  Now a group's accounts on a platform (a "list") are read
 * with one query and reused for account_cache_ttl; the time-bound states
 * (rate limit, overload, temporary pause) are loaded as times and
 * compared with the clock on each acquire, so an account comes back the
 * moment its pause ends, without a reload.  Each account's credentials
 * are opened once per load to check them and to keep its model_mapping
 * (model names only; no secret stays in the cache), so the model filter
 * costs no decryption and only the winner is decrypted per acquire.
 *
 * What makes a list stale before its TTL: every config-changed event
 * about accounts, groups or proxies, and every state change this replica
 * writes (sched_state.c), bump a generation; a list read under an older
 * generation is read again.  A change made by another replica (its
 * accounts' 429s) shows here within the TTL; the worst it costs is one
 * more upstream refusal, which this replica then records itself.
 *
 * last_used_at: an acquire records its pick in memory (the list's LRU
 * order sees it at once) and in a pending table that
 * sched_acache_flush() writes with one UPDATE every
 * last_used_flush_interval (the original batches it every 10 s).
 *
 * Concurrency: one mutex guards the table of lists, each list's used_ms
 * and the pending table; it is held for the filtering of one acquire (a
 * few dozen comparisons), never across a query.  A list is refcounted:
 * an acquire holds it while its shallow candidate copies are in use.
 * When a list's TTL runs out, the first acquire reads it again and the
 * others keep using the expired one meanwhile (never an invalidated
 * one).  Memory is bounded: SCHED_AC_LISTS lists of at most
 * SCHED_AC_ACCTS accounts, SCHED_AC_PENDING pending writes.
 */
#include <stdio.h>

#include "err.h"
#include "log.h"
#include "sched.h"

#define SCHED_AC_LISTS   1024 /* group x platform lists kept */
#define SCHED_AC_ACCTS   4096 /* accounts per list */
#define SCHED_AC_PENDING 4096 /* last_used_at writes pending */

struct sched_alist {
	int64_t            gid;
	char               platform[PROTO_NAME_MAX + 1];
	uint64_t           gen;      /* the cache's generation when read */
	int64_t            until_ms; /* monotonic expiry */
	bool               loading;  /* an acquire is reading it again */
	int                refs;     /* the table's, plus each view's */
	size_t             n;        /* usable accounts: c[0..n) */
	size_t             nrows;    /* c[n..nrows): unusable, kept to free */
	struct sched_cand *c;        /* priority then id */
	json_t           **maps;     /* c[i]'s model_mapping; NULL: any model */
};

struct sched_ac_pend {
	int64_t aid; /* 0: free */
	int64_t ms;
};

struct sched_acache {
	pthread_mutex_t      mu;
	int64_t              ttl_ms;
	uint64_t             gen;
	uint64_t             seq;   /* picks so far: ties within a ms */
	uint64_t             loads; /* lists read from the database */
	size_t               nlists;
	struct sched_alist  *lists[SCHED_AC_LISTS];
	size_t               npend;
	struct sched_ac_pend pend[SCHED_AC_PENDING];
};

struct sched_acache *
sched_acache_new(int64_t ttl_ms)
{
	struct sched_acache *ac = xcalloc(1, sizeof(*ac));

	pthread_mutex_init(&ac->mu, NULL);
	ac->ttl_ms = ttl_ms;
	return ac;
}

static void
sched_alist_free(struct sched_alist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		json_decref(l->maps[i]);
	free(l->maps);
	sched_cands_free(l->c, l->nrows);
	free(l);
}

/* Drops one reference; the caller holds ac->mu (or is alone). */
static void
sched_alist_unref(struct sched_alist *l)
{
	if (--l->refs == 0)
		sched_alist_free(l);
}

void
sched_acache_free(struct sched_acache *ac)
{
	size_t i;

	if (ac == NULL)
		return;
	for (i = 0; i < ac->nlists; i++)
		sched_alist_unref(ac->lists[i]);
	pthread_mutex_destroy(&ac->mu);
	free(ac);
}

void
sched_acache_invalidate(struct sched_acache *ac)
{
	pthread_mutex_lock(&ac->mu);
	ac->gen++;
	pthread_mutex_unlock(&ac->mu);
}

static size_t
sched_alist_find(struct sched_acache *ac, int64_t gid, const char *platform)
{
	size_t i;

	for (i = 0; i < ac->nlists; i++)
		if (ac->lists[i]->gid == gid &&
		    strcmp(ac->lists[i]->platform, platform) == 0)
			return i;
	return SIZE_MAX;
}

/*
 * Reads group gid's list on platform: one query, then each account's
 * credentials checked once.  An account that cannot serve at all is left
 * out (logged by sched_acct_inspect()).
 */
static int
sched_alist_read(struct sched *s, struct pg_conn *conn, int64_t gid,
    const char *platform, struct sched_alist **out)
{
	struct sched_alist *l;
	struct sched_cand  *c = NULL;
	size_t              i, n = 0, k = 0;
	int                 rv;

	rv = sched_acct_load(conn, gid, platform, SCHED_AC_ACCTS, &c, &n);
	if (rv != 0)
		return rv;
	if (n == SCHED_AC_ACCTS)
		log_warn("sched.account_list_truncated", LOG_I64("group", gid),
		    LOG_I64("accounts", SCHED_AC_ACCTS));
	l = xcalloc(1, sizeof(*l));
	l->gid = gid;
	snprintf(l->platform, sizeof(l->platform), "%s", platform);
	l->c = c;
	l->nrows = n;
	l->maps = xcalloc(n == 0 ? 1 : n, sizeof(*l->maps));
	/* Usable accounts to the front, in order; the rest stay behind. */
	for (i = 0; i < n; i++) {
		json_t *map = NULL;

		if (sched_acct_inspect(s, &c[i], platform, &map) != 0)
			continue;
		if (k != i) {
			struct sched_cand t = c[k];

			c[k] = c[i];
			c[i] = t;
		}
		l->maps[k++] = map;
	}
	l->n = k;
	l->refs = 1;
	*out = l;
	return 0;
}

/* Puts l in the table in place of slot i (SIZE_MAX: a new slot). */
static void
sched_alist_install(struct sched_acache *ac, size_t i, struct sched_alist *l)
{
	size_t j, old = 0;

	l->refs++; /* the table's */
	if (i == SIZE_MAX && ac->nlists < SCHED_AC_LISTS) {
		ac->lists[ac->nlists++] = l;
		return;
	}
	if (i == SIZE_MAX) { /* full: replace the one expiring first */
		for (j = 1; j < ac->nlists; j++)
			if (ac->lists[j]->until_ms < ac->lists[old]->until_ms)
				old = j;
		i = old;
	}
	sched_alist_unref(ac->lists[i]);
	ac->lists[i] = l;
}

static bool
sched_excluded(int64_t id, const int64_t *excl, size_t nexcl)
{
	size_t i;

	for (i = 0; i < nexcl; i++)
		if (excl[i] == id)
			return true;
	return false;
}

/* a before b: priority, then least recently used (never first), id. */
static bool
sched_cand_before(const struct sched_cand *a, const struct sched_cand *b)
{
	if (a->priority != b->priority)
		return a->priority < b->priority;
	if (a->used_ms != b->used_ms)
		return a->used_ms < b->used_ms;
	if (a->used_seq != b->used_seq)
		return a->used_seq < b->used_seq;
	return a->id < b->id;
}

/* Fills v from l; the caller holds ac->mu. */
static void
sched_alist_pick(struct sched_alist *l, const char *model, const int64_t *excl,
    size_t nexcl, int64_t now_ms, struct sched_acache_view *v)
{
	size_t i, j;

	v->n = v->n_all = 0;
	for (i = 0; i < l->n; i++) {
		const struct sched_cand *c = &l->c[i];

		if (c->rate_until_ms > now_ms ||
		    c->overload_until_ms > now_ms ||
		    c->pause_until_ms > now_ms ||
		    sched_excluded(c->id, excl, nexcl))
			continue;
		v->n_all++;
		if (l->maps[i] != NULL &&
		    json_object_get(l->maps[i], model) == NULL)
			continue;
		/* Insertion into the sorted, bounded view. */
		if (v->n == SCHED_BATCH_MAX &&
		    !sched_cand_before(c, &v->c[v->n - 1]))
			continue;
		j = v->n < SCHED_BATCH_MAX ? v->n++ : v->n - 1;
		while (j > 0 && sched_cand_before(c, &v->c[j - 1])) {
			v->c[j] = v->c[j - 1];
			j--;
		}
		v->c[j] = *c;
	}
}

int
sched_acache_get(struct sched *s, struct pg_conn *conn, int64_t gid,
    const char *platform, const char *model, const int64_t *excl, size_t nexcl,
    int64_t now_ms, struct sched_acache_view *v)
{
	struct sched_acache *ac = s->acache;
	struct sched_alist  *l = NULL, *fresh = NULL;
	int64_t              mono = now_mono_ms();
	uint64_t             gen;
	size_t               i;
	int                  rv;

	memset(v, 0, sizeof(*v));
	pthread_mutex_lock(&ac->mu);
	i = sched_alist_find(ac, gid, platform);
	if (i != SIZE_MAX && ac->lists[i]->gen == ac->gen) {
		l = ac->lists[i];
		if (mono >= l->until_ms && (!l->loading || ac->ttl_ms == 0)) {
			l->loading = true; /* this acquire reads it again */
			l = NULL;
		}
	}
	if (l != NULL) {
		l->refs++;
		sched_alist_pick(l, model, excl, nexcl, now_ms, v);
		v->ref = l;
		pthread_mutex_unlock(&ac->mu);
		return 0;
	}
	gen = ac->gen;
	pthread_mutex_unlock(&ac->mu);

	rv = sched_alist_read(s, conn, gid, platform, &fresh);

	pthread_mutex_lock(&ac->mu);
	ac->loads++;
	i = sched_alist_find(ac, gid, platform);
	if (i != SIZE_MAX)
		ac->lists[i]->loading = false;
	if (rv != 0) {
		pthread_mutex_unlock(&ac->mu);
		return rv;
	}
	fresh->gen = gen;
	fresh->until_ms = mono + ac->ttl_ms;
	/* What this replica picked meanwhile stays in the LRU order. */
	if (i != SIZE_MAX) {
		struct sched_alist *old = ac->lists[i];
		size_t              a, b;

		for (a = 0; a < fresh->n; a++)
			for (b = 0; b < old->n; b++)
				if (old->c[b].id == fresh->c[a].id &&
				    old->c[b].used_ms >= fresh->c[a].used_ms) {
					fresh->c[a].used_ms = old->c[b].used_ms;
					fresh->c[a].used_seq =
					    old->c[b].used_seq;
				}
	}
	/* An answer read under an older generation serves only this one. */
	if (gen == ac->gen && ac->ttl_ms > 0)
		sched_alist_install(ac, i, fresh);
	sched_alist_pick(fresh, model, excl, nexcl, now_ms, v);
	v->ref = fresh; /* the creator's reference */
	pthread_mutex_unlock(&ac->mu);
	return 0;
}

void
sched_acache_put(struct sched_acache *ac, struct sched_acache_view *v)
{
	if (v->ref == NULL)
		return;
	pthread_mutex_lock(&ac->mu);
	sched_alist_unref(v->ref);
	pthread_mutex_unlock(&ac->mu);
	v->ref = NULL;
	v->n = 0;
}

void
sched_acache_touch(struct sched_acache *ac, int64_t aid, int64_t now_ms)
{
	size_t i, j, h;

	pthread_mutex_lock(&ac->mu);
	ac->seq++;
	for (i = 0; i < ac->nlists; i++)
		for (j = 0; j < ac->lists[i]->n; j++)
			if (ac->lists[i]->c[j].id == aid) {
				ac->lists[i]->c[j].used_ms = now_ms;
				ac->lists[i]->c[j].used_seq = ac->seq;
			}
	/* Open addressing by id; a full table drops the write (LRU only). */
	h = (size_t)((uint64_t)aid * 0x9E3779B97F4A7C15ull) % SCHED_AC_PENDING;
	for (i = 0; i < SCHED_AC_PENDING; i++) {
		struct sched_ac_pend *p = &ac->pend[(h + i) % SCHED_AC_PENDING];

		if (p->aid == aid) {
			p->ms = now_ms;
			break;
		}
		if (p->aid == 0) {
			if (ac->npend + 1 >= SCHED_AC_PENDING)
				break;
			p->aid = aid;
			p->ms = now_ms;
			ac->npend++;
			break;
		}
	}
	pthread_mutex_unlock(&ac->mu);
}

uint64_t
sched_acache_loads(struct sched_acache *ac)
{
	uint64_t n;

	pthread_mutex_lock(&ac->mu);
	n = ac->loads;
	pthread_mutex_unlock(&ac->mu);
	return n;
}

size_t
sched_acache_pending(struct sched_acache *ac)
{
	size_t n;

	pthread_mutex_lock(&ac->mu);
	n = ac->npend;
	pthread_mutex_unlock(&ac->mu);
	return n;
}

static const char sched_flush_sql[] =
    "UPDATE accounts a SET last_used_at = to_timestamp(v.ms / 1000.0)"
    " FROM unnest($1::bigint[], $2::bigint[]) AS v(id, ms)"
    " WHERE a.id = v.id AND (a.last_used_at IS NULL"
    " OR a.last_used_at < to_timestamp(v.ms / 1000.0))";

/* Appends "{a,b,...}" of the n values to b. */
static int
sched_int_array(struct buf *b, const struct sched_ac_pend *p, size_t n, bool ms)
{
	size_t i;
	int    rv = buf_add(b, "{", 1);

	for (i = 0; rv == 0 && i < n; i++)
		rv = buf_addf(b, "%s%lld", i > 0 ? "," : "",
		    (long long)(ms ? p[i].ms : p[i].aid));
	if (rv == 0)
		rv = buf_addch(b, '}');
	return rv;
}

int
sched_acache_flush(struct sched_acache *ac, struct pg_conn *conn)
{
	struct sched_ac_pend *batch;
	struct buf            ids, mss;
	const char           *params[2];
	size_t                i, n = 0;
	int                   rv;

	batch = xcalloc(SCHED_AC_PENDING, sizeof(*batch));
	pthread_mutex_lock(&ac->mu);
	for (i = 0; i < SCHED_AC_PENDING; i++)
		if (ac->pend[i].aid != 0)
			batch[n++] = ac->pend[i];
	memset(ac->pend, 0, sizeof(ac->pend));
	ac->npend = 0;
	pthread_mutex_unlock(&ac->mu);
	if (n == 0) {
		free(batch);
		return 0;
	}
	buf_init(&ids, (size_t)n * 24 + 4);
	buf_init(&mss, (size_t)n * 24 + 4);
	rv = sched_int_array(&ids, batch, n, false);
	if (rv == 0)
		rv = sched_int_array(&mss, batch, n, true);
	if (rv == 0) {
		params[0] = buf_str(&ids);
		params[1] = buf_str(&mss);
		rv = pg_exec(conn, sched_flush_sql, 2, params, NULL);
	}
	if (rv != 0) {
		log_warn("sched.last_used_flush_failed", LOG_ERR(rv),
		    LOG_I64("accounts", (int64_t)n));
		for (i = 0; i < n; i++) /* kept for the next flush */
			sched_acache_touch(ac, batch[i].aid, batch[i].ms);
	}
	buf_release(&ids);
	buf_release(&mss);
	free(batch);
	return rv;
}

bool
sched_acache_kind(const char *kind)
{
	static const char *const kinds[] = {"", "all", "account", "accounts",
	    "group", "groups", "proxy", "proxies", "account_group"};
	size_t                   i;

	for (i = 0; i < ARRAY_SIZE(kinds); i++)
		if (strcmp(kind, kinds[i]) == 0)
			return true;
	return false;
}

static void
sched_acache_tick(void *arg)
{
	struct sched   *s = arg;
	struct pg_conn *conn;

	if (sched_acache_pending(s->acache) == 0)
		return;
	if (pg_acquire(s->pg, (int)s->cfg->dep_timeout, &conn) != 0)
		return;                            /* kept for the next tick */
	(void)sched_acache_flush(s->acache, conn); /* failures are logged */
	pg_release(conn);
}

int
sched_acache_start(struct sched *s, struct tick *t)
{
	return tick_start(t, "last_used", s->cfg->last_used_flush_interval,
	    sched_acache_tick, s);
}

void
sched_acache_stop(struct sched *s, struct tick *t)
{
	tick_stop(t);
	sched_acache_tick(s);
}
