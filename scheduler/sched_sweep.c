/*
 * sched_sweep.c: the slot sweeper (see sched_sweep.h).
 *
 * A run pages through "<prefix>slots:*" with SCAN (COUNT
 * SCHED_SWEEP_SCAN_COUNT), keeps the names that are slot sets
 * ("<prefix>slots:user:", "<prefix>slots:acct:" and "<prefix>slots:key:";
 * anything else under
 * slots: is not ours to trim), and runs the sweep script once per set.
 * A run visits at most SCHED_SWEEP_KEYS_MAX sets in at most
 * SCHED_SWEEP_CALLS_MAX SCAN calls; the cursor is kept, so the next run
 * goes on where this one stopped and a large keyspace is still covered
 * in full, a slice per interval.  SCAN may return a key twice: the script
 * is idempotent, so that costs a round trip and nothing else.
 *
 * The script uses the Redis clock (TIME), like acquire and renew, and
 * the same comparison: a member whose expiry is <= now is dead.  Lease
 * records ("<prefix>lease:<id>") are left alone: they carry a TTL equal to
 * the lease's and expire by themselves.
 */
#include "sched_sweep.h"

#include <stdio.h>

#include "err.h"
#include "log.h"
#include "tick.h"

#define SCHED_SWEEP_KEY_MAX 256 /* longer names are not ours: skipped */

const char sched_lua_sweep[] =
    "if redis.call('TYPE', KEYS[1]).ok ~= 'zset' then return 0 end\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / "
    "1000)\n"
    "local n = redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)\n"
    "local left = redis.call('ZCARD', KEYS[1])\n"
    "if left == 0 then redis.call('DEL', KEYS[1]) end\n"
    "return {n, left}\n";

struct sched_sweep {
	struct sched       *s;
	struct rds_script  *lua;
	struct met_counter *swept;
	struct met_gauge   *waiting;  /* users' waiters, last full pass */
	uint64_t            wait_acc; /* users' waiters seen this pass */
	pthread_mutex_t     mu;       /* serialises runs; guards cursor */
	char                cursor[32];
	char                match[2 * 64 + 16];
	char                user[80];
	char                acct[80];
	char                key[80];
	char                wuser[80];
	char                wacct[80];
	struct tick         job;
};

/* Copies src into dst with the glob specials of MATCH escaped. */
static int
sched_sweep_glob_escape(char *dst, size_t cap, const char *src)
{
	size_t n = 0;

	for (; *src != '\0'; src++) {
		if (n + 3 > cap)
			return -ERR_TOOBIG;
		if (*src == '*' || *src == '?' || *src == '[' || *src == ']' ||
		    *src == '\\')
			dst[n++] = '\\';
		dst[n++] = *src;
	}
	dst[n] = '\0';
	return 0;
}

/* The kinds of set the sweeper trims, in the order of sched_sweep_ours. */
enum sched_sweep_kind {
	SCHED_SWEEP_NONE = -1,
	SCHED_SWEEP_USER,
	SCHED_SWEEP_ACCT,
	SCHED_SWEEP_KEY,
	SCHED_SWEEP_WAIT_USER,
	SCHED_SWEEP_WAIT_ACCT
};

/* Which set the SCAN result key names: a slot set, a wait set, or none. */
static enum sched_sweep_kind
sched_sweep_ours(const struct sched_sweep *w, const redisReply *k)
{
	const char *const pfx[] = {
	    w->user, w->acct, w->key, w->wuser, w->wacct};
	size_t i, n;

	if (k->type != REDIS_REPLY_STRING || k->len >= SCHED_SWEEP_KEY_MAX)
		return SCHED_SWEEP_NONE;
	for (i = 0; i < ARRAY_SIZE(pfx); i++) {
		n = strlen(pfx[i]);
		if ((size_t)k->len > n && memcmp(k->str, pfx[i], n) == 0)
			return (enum sched_sweep_kind)i;
	}
	return SCHED_SWEEP_NONE;
}

/*
 * Runs the script on one set; adds what it removed to *removed and, for
 * a user's wait set, what is left to the pass's waiter count.
 */
static int
sched_sweep_key(struct sched_sweep *w, const redisReply *k,
    enum sched_sweep_kind kind, uint64_t *removed)
{
	const char *argv[1];
	size_t      argvlen[1];
	redisReply *rep;
	int         rv;

	argv[0] = k->str;
	argvlen[0] = k->len;
	rv = rds_script_eval(w->s->rds, w->lua, &rep, 1, 0, argv, argvlen);
	if (rv != 0)
		return rv;
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
	    rep->element[0]->type != REDIS_REPLY_INTEGER ||
	    rep->element[1]->type != REDIS_REPLY_INTEGER ||
	    rep->element[0]->integer < 0 || rep->element[1]->integer < 0) {
		freeReplyObject(rep);
		return -ERR_REDIS;
	}
	*removed += (uint64_t)rep->element[0]->integer;
	if (kind == SCHED_SWEEP_WAIT_USER)
		w->wait_acc += (uint64_t)rep->element[1]->integer;
	freeReplyObject(rep);
	return 0;
}

/*
 * One SCAN page from w->cursor: sweeps the slot sets it names (at most
 * budget of them in all, counted in st) and advances the cursor.
 */
static int
sched_sweep_page(
    struct sched_sweep *w, uint64_t budget, struct sched_sweep_stats *st)
{
	redisReply           *rep, *keys;
	enum sched_sweep_kind kind;
	size_t                i;
	int                   rv;

	rv = rds_cmd(w->s->rds, &rep, "SCAN %s MATCH %s COUNT %d", w->cursor,
	    w->match, SCHED_SWEEP_SCAN_COUNT);
	if (rv != 0)
		return rv;
	st->calls++;
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
	    rep->element[0]->type != REDIS_REPLY_STRING ||
	    rep->element[0]->len >= sizeof(w->cursor) ||
	    rep->element[1]->type != REDIS_REPLY_ARRAY) {
		freeReplyObject(rep);
		return -ERR_REDIS;
	}
	keys = rep->element[1];
	for (i = 0; i < keys->elements && rv == 0; i++) {
		if (st->keys >= budget)
			break;
		kind = sched_sweep_ours(w, keys->element[i]);
		if (kind == SCHED_SWEEP_NONE)
			continue;
		st->keys++;
		rv = sched_sweep_key(w, keys->element[i], kind, &st->removed);
	}
	/*
	 * Keys of this page past the budget are left for a later pass of
	 * the SCAN; an expired lease in them is also dropped by the next
	 * acquire that looks at its set, or by the set's own expiry.
	 */
	if (rv == 0) {
		memcpy(w->cursor, rep->element[0]->str, rep->element[0]->len);
		w->cursor[rep->element[0]->len] = '\0';
		st->done = strcmp(w->cursor, "0") == 0;
	}
	if (rv == 0 && st->done) {
		met_gauge_set(w->waiting, (double)w->wait_acc);
		st->waiting = w->wait_acc;
	}
	freeReplyObject(rep);
	return rv;
}

int
sched_sweep_run(struct sched_sweep *w, struct sched_sweep_stats *st)
{
	int64_t t0 = now_mono_ms();
	int     rv = 0;

	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&w->mu);
	while (rv == 0 && !st->done && st->keys < SCHED_SWEEP_KEYS_MAX &&
	    st->calls < SCHED_SWEEP_CALLS_MAX)
		rv = sched_sweep_page(w, SCHED_SWEEP_KEYS_MAX, st);
	if (rv != 0 || st->done) {
		snprintf(w->cursor, sizeof(w->cursor), "0");
		w->wait_acc = 0;
	}
	pthread_mutex_unlock(&w->mu);
	met_counter_add(w->swept, st->removed);
	if (rv != 0)
		log_warn("sched.sweep_failed", LOG_ERR(rv),
		    LOG_U64("keys", st->keys), LOG_U64("removed", st->removed));
	else
		log_debug("sched.sweep_done", LOG_U64("keys", st->keys),
		    LOG_U64("removed", st->removed),
		    LOG_U64("scans", st->calls), LOG_BOOL("complete", st->done),
		    LOG_I64("ms", now_mono_ms() - t0));
	return rv;
}

static void
sched_sweep_tick_cb(void *arg)
{
	struct sched_sweep_stats st;
	int                      rv;

	/* A failure is logged by the run; the next tick starts over. */
	rv = sched_sweep_run(arg, &st);
	if (rv != 0)
		return;
}

int
sched_sweep_new(struct sched *s, struct sched_sweep **out)
{
	struct sched_sweep *w = xcalloc(1, sizeof(*w));
	char                pfx[2 * 64 + 2];
	int                 rv;

	w->s = s;
	pthread_mutex_init(&w->mu, NULL);
	snprintf(w->cursor, sizeof(w->cursor), "0");
	snprintf(
	    w->user, sizeof(w->user), "%sslots:user:", s->cfg->redis_prefix);
	snprintf(
	    w->acct, sizeof(w->acct), "%sslots:acct:", s->cfg->redis_prefix);
	snprintf(w->key, sizeof(w->key), "%sslots:key:", s->cfg->redis_prefix);
	snprintf(w->wuser, sizeof(w->wuser),
	    "%sslots:wait:user:", s->cfg->redis_prefix);
	snprintf(w->wacct, sizeof(w->wacct),
	    "%sslots:wait:acct:", s->cfg->redis_prefix);
	rv = sched_sweep_glob_escape(pfx, sizeof(pfx), s->cfg->redis_prefix);
	if (rv == 0)
		snprintf(w->match, sizeof(w->match), "%sslots:*", pfx);
	if (rv == 0)
		rv = rds_script_new(sched_lua_sweep, &w->lua);
	if (rv == 0) {
		w->swept = svc_counter("sub2api_sched_slots_swept_total",
		    "Expired slot leases and waiters removed by the sweeper.");
		w->waiting = svc_gauge("sub2api_sched_waiting_requests",
		    "Requests waiting for a slot (members of the users' wait "
		    "sets) as of the sweeper's last complete pass.");
		rv = tick_start(&w->job, "slot_sweep",
		    s->cfg->slot_sweep_interval, sched_sweep_tick_cb, w);
	}
	if (rv != 0) {
		sched_sweep_free(w);
		return rv;
	}
	*out = w;
	return 0;
}

void
sched_sweep_free(struct sched_sweep *w)
{
	if (w == NULL)
		return;
	tick_stop(&w->job);
	rds_script_free(w->lua);
	pthread_mutex_destroy(&w->mu);
	free(w);
}
