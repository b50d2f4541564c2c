/*
 * sched_slots.c: concurrency slots as leases in Redis.
 *
 * Keys (P is redis_prefix, "s2a:" by default):
 *
 *   P slots:user:<uid>   sorted set: member lease id, score its expiry in
 *   P slots:acct:<aid>   ms of the Redis clock (TIME), so every replica and
 *   P slots:key:<kid>    the scripts agree on "now"; the key set counts the
 *                        leases of one API key (api_keys.concurrency)
 *   P lease:<lease id>   hash {u: uid, a: aid, k: kid}: which sets hold the
 *                        lease (no k: written before key slots existed),
 *                        for renew (whose request names leases only); it
 *                        expires with the lease
 *
 *   P slots:wait:user:<uid>
 *   P slots:wait:acct:<aid>
 *                        sorted set: member request id, score its expiry
 *                        (now + wait ttl at its latest BUSY answer): the
 *                        requests waiting for a slot of that user, and
 *                        for that account; under slots: so the sweeper's
 *                        one SCAN trims them too
 *   P waiter:<request id>
 *                        hash {u: uid, a: aid or 0}: the sets naming the
 *                        waiter, for the cancel (whose request names the
 *                        request only); expires with the wait ttl
 *
 *   P sticky:<platform>:<gid>:<session hash>
 *                        string: the account id a session is bound to,
 *                        expiring sticky_ttl after its last hit; the
 *                        group and platform of the API key namespace it,
 *                        so users of different groups never share one
 *
 * Each operation is one script, so one round trip and atomic:
 *
 *   acquire  KEYS = user set, lease record, sticky key (any name when
 *                   there is no session), key set, user wait set, waiter
 *                   record
 *            ARGV = lease, ttl_ms, user limit, uid, prefix, sticky ttl_ms
 *                   (0: no session or sticky off), the candidates as one
 *                   string "aid limit priority ..." in SQL order (limit
 *                   0: unlimited), the excluded ids as " id id ... ", key
 *                   limit (0: unlimited), kid, request id, wait ttl_ms
 *                   (0: never wait), user wait cap, sticky max waiting
 *            drops expired members of each set it looks at; refuses when
 *            the user is full ({0, 0, 0}) or the key is full ({-2, 0,
 *            0}); then, with a binding: a bound account that is excluded
 *            is left bound but not taken; one that is no candidate
 *            (unschedulable, rate-limited, model unsupported, gone) loses
 *            its binding; one that is a candidate with room is taken and
 *            its binding's TTL renewed; one that is full is waited for
 *            ({-1, j, 5}) while fewer than sticky-max-waiting other
 *            requests wait for it, else keeps its binding while another
 *            candidate serves this request.  Otherwise the choice is the
 *            lowest load ((held + waiting) / limit, compared exactly;
 *            unlimited counts as limit 1e9; the request's own waiting
 *            entry does not count) among the candidates with room of the
 *            first priority that has any, ties to the earlier candidate
 *            (least recently used); a session without a (live) binding is
 *            then bound to it for the sticky ttl.  Holds the user, key
 *            and account slots (all or none), removes the request from
 *            the wait sets and returns {1, j, st} (candidate j, from 1),
 *            or {-1, j, st} when every candidate is full (j: the least
 *            loaded of the first priority, which it waits for), st an
 *            enum sched_sticky_result.  Every refusal registers the
 *            request as waiting (user set, the account's set when there
 *            is one, the record) unless the wait ttl is 0; a request not
 *            yet in the user's wait set when it already holds the cap
 *            gets {-3, 0, st} and is not registered.  Two first requests
 *            of one session cannot both bind: scripts run one at a time.
 *            Account set keys are built from the prefix inside the
 *            script, like renew's and release's.
 *   renew    KEYS = lease record per lease; ARGV = ttl_ms, prefix, lease
 *            per lease; returns 1 (extended in all its sets) or 0 (lost:
 *            the record, or a live member in any of its sets, is gone;
 *            what is left of it is removed) per lease
 *   release  KEYS = lease record; ARGV = lease, prefix, aid of the request
 *            (used when the record expired); removes the lease from its
 *            sets and the record; returns how many members it removed, so
 *            a repeated release is harmless and returns 0
 *   unwait   KEYS = waiter record; ARGV = request id, prefix; removes the
 *            request from the wait sets the record names and the record;
 *            returns how many members it removed (idempotent)
 *
 * A leaked lease (a gateway killed mid-stream) stops counting once its
 * score passes, because every acquire first removes the expired members
 * of the sets it checks; sets nobody checks are emptied by the sweeper
 * (sched_sweep.c), and a set nobody touches expires as a whole (PEXPIRE
 * at least one ttl past its newest member).  Waiters are no counters for
 * the same reason: a waiter whose gateway died (and never cancels)
 * expires with its score, wait ttl after its last retry.
 * The renew, release and unwait scripts build slot keys from the records,
 * which is fine on one Redis server but not on Redis Cluster.
 */
#include <stdio.h>

#include "err.h"
#include "log.h"
#include "sched.h"

#define SCHED_LUA_NOW                                                         \
	"local t = redis.call('TIME')\n"                                      \
	"local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / "    \
	"1000)\n"                                                             \
	"local ttl = tonumber(ARGV[TTLARG])\n"                                \
	"local exp = now + ttl\n"                                             \
	"local function keep(key)\n"                                          \
	"  if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, " \
	"ttl) end\n"                                                          \
	"end\n"

const char sched_lua_acquire[] =
    "local TTLARG = 2\n" SCHED_LUA_NOW "local function load(key)\n"
    "  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)\n"
    "  return redis.call('ZCARD', key)\n"
    "end\n"
    "local P = ARGV[5]\n"
    "local rid = ARGV[11]\n"
    "local wttl = tonumber(ARGV[12])\n"
    "local function wload(key)\n"
    "  local n = load(key)\n"
    "  if redis.call('ZSCORE', key, rid) then n = n - 1 end\n"
    "  return n\n"
    "end\n"
    "local function unwait()\n"
    "  local a = redis.call('HGET', KEYS[6], 'a')\n"
    "  redis.call('ZREM', KEYS[5], rid)\n"
    "  if a then redis.call('ZREM', P .. 'slots:wait:acct:' .. a, rid) end\n"
    "  redis.call('DEL', KEYS[6])\n"
    "end\n"
    "local function wkeep(key)\n"
    "  if redis.call('PTTL', key) < wttl then\n"
    "    redis.call('PEXPIRE', key, wttl)\n"
    "  end\n"
    "end\n"
    "local c = {}\n"
    "for a, l, p in string.gmatch(ARGV[7], '(%d+) (%-?%d+) (%-?%d+)') do\n"
    "  c[#c + 1] = {a = a, l = tonumber(l), p = tonumber(p),\n"
    "    k = P .. 'slots:acct:' .. a, wk = P .. 'slots:wait:acct:' .. a}\n"
    "end\n"
    "local function busy(code, j, st)\n"
    "  if wttl <= 0 then return {code, 0, st} end\n"
    "  local n = load(KEYS[5])\n"
    "  if not redis.call('ZSCORE', KEYS[5], rid) and\n"
    "      n >= tonumber(ARGV[13]) then\n"
    "    return {-3, 0, st}\n"
    "  end\n"
    "  local wexp = now + wttl\n"
    "  redis.call('ZADD', KEYS[5], wexp, rid)\n"
    "  wkeep(KEYS[5])\n"
    "  local old = redis.call('HGET', KEYS[6], 'a')\n"
    "  local a = '0'\n"
    "  if j > 0 then a = c[j].a end\n"
    "  if old and old ~= a then\n"
    "    redis.call('ZREM', P .. 'slots:wait:acct:' .. old, rid)\n"
    "  end\n"
    "  if j > 0 then\n"
    "    redis.call('ZADD', c[j].wk, wexp, rid)\n"
    "    wkeep(c[j].wk)\n"
    "  end\n"
    "  redis.call('HSET', KEYS[6], 'u', ARGV[4], 'a', a)\n"
    "  redis.call('PEXPIRE', KEYS[6], wttl)\n"
    "  return {code, j, st}\n"
    "end\n"
    "local ulim = tonumber(ARGV[3])\n"
    "if ulim > 0 and load(KEYS[1]) >= ulim then return busy(0, 0, 0) end\n"
    "local klim = tonumber(ARGV[9])\n"
    "if klim > 0 and load(KEYS[4]) >= klim then return busy(-2, 0, 0) end\n"
    "local function fits(x)\n"
    "  if x.n == nil then x.n = load(x.k) end\n"
    "  return x.l <= 0 or x.n < x.l\n"
    "end\n"
    "local function waiting(x)\n"
    "  if x.w == nil then x.w = wload(x.wk) end\n"
    "  return x.w\n"
    "end\n"
    "local function lim(x)\n"
    "  if x.l <= 0 then return 1e9 end\n"
    "  return x.l\n"
    "end\n"
    "local function less(x, y)\n"
    "  return (x.n + waiting(x)) * lim(y) < (y.n + waiting(y)) * lim(x)\n"
    "end\n"
    "local function take(j, st)\n"
    "  local x = c[j]\n"
    "  unwait()\n"
    "  redis.call('ZADD', KEYS[1], exp, ARGV[1])\n"
    "  redis.call('ZADD', KEYS[4], exp, ARGV[1])\n"
    "  redis.call('ZADD', x.k, exp, ARGV[1])\n"
    "  keep(KEYS[1])\n"
    "  keep(KEYS[4])\n"
    "  keep(x.k)\n"
    "  redis.call('HSET', KEYS[2], 'u', ARGV[4], 'a', x.a, 'k', ARGV[10])\n"
    "  redis.call('PEXPIRE', KEYS[2], ttl)\n"
    "  return {1, j, st}\n"
    "end\n"
    "local sttl = tonumber(ARGV[6])\n"
    "local st = 0\n"
    "if sttl > 0 then\n"
    "  local b = redis.call('GET', KEYS[3])\n"
    "  st = 2\n"
    "  if b and string.find(ARGV[8], ' ' .. b .. ' ', 1, true) then\n"
    "    st = 4\n"
    "  elseif b then\n"
    "    local bj = nil\n"
    "    for j = 1, #c do\n"
    "      if c[j].a == b then bj = j break end\n"
    "    end\n"
    "    if bj == nil then\n"
    "      redis.call('DEL', KEYS[3])\n"
    "      st = 3\n"
    "    elseif fits(c[bj]) then\n"
    "      redis.call('PEXPIRE', KEYS[3], sttl)\n"
    "      return take(bj, 1)\n"
    "    elseif wttl > 0 and waiting(c[bj]) < tonumber(ARGV[14]) then\n"
    "      return busy(-1, bj, 5)\n"
    "    else\n"
    "      st = 4\n"
    "    end\n"
    "  end\n"
    "end\n"
    "local best = nil\n"
    "local j = 1\n"
    "while j <= #c and best == nil do\n"
    "  local e = j\n"
    "  while e <= #c and c[e].p == c[j].p do\n"
    "    if fits(c[e]) and (best == nil or less(c[e], c[best])) then\n"
    "      best = e\n"
    "    end\n"
    "    e = e + 1\n"
    "  end\n"
    "  j = e\n"
    "end\n"
    "if best == nil then\n"
    "  best = 1\n"
    "  for e = 2, #c do\n"
    "    if c[e].p ~= c[1].p then break end\n"
    "    if less(c[e], c[best]) then best = e end\n"
    "  end\n"
    "  return busy(-1, best, st)\n"
    "end\n"
    "if st == 2 or st == 3 then\n"
    "  redis.call('SET', KEYS[3], c[best].a, 'PX', sttl)\n"
    "end\n"
    "return take(best, st)\n";

const char sched_lua_unwait[] =
    "local r = redis.call('HMGET', KEYS[1], 'u', 'a')\n"
    "local n = 0\n"
    "if r[1] then\n"
    "  n = n + redis.call('ZREM', ARGV[2] .. 'slots:wait:user:' .. r[1], "
    "ARGV[1])\n"
    "end\n"
    "if r[2] then\n"
    "  n = n + redis.call('ZREM', ARGV[2] .. 'slots:wait:acct:' .. r[2], "
    "ARGV[1])\n"
    "end\n"
    "redis.call('DEL', KEYS[1])\n"
    "return n\n";

/*
 * The sets a lease record names, as "local sets = {...}" of the record
 * r = HMGET(record, 'u', 'a', 'k'); a record written before key slots
 * existed has no 'k'.
 */
#define SCHED_LUA_SETS(AID)                                                  \
	"local sets = {}\n"                                                  \
	"if r[1] then sets[#sets + 1] = ARGV[2] .. 'slots:user:' .. r[1] "   \
	"end\n"                                                              \
	"if " AID " then sets[#sets + 1] = ARGV[2] .. 'slots:acct:' .. " AID \
	" end\n"                                                             \
	"if r[3] then sets[#sets + 1] = ARGV[2] .. 'slots:key:' .. r[3] end\n"

const char sched_lua_renew[] =
    "local TTLARG = 1\n" SCHED_LUA_NOW "local out = {}\n"
    "for i = 1, #KEYS do\n"
    "  local id = ARGV[2 + i]\n"
    "  local r = redis.call('HMGET', KEYS[i], 'u', 'a', 'k')\n"
    "  out[i] = 0\n"
    "  if r[1] and r[2] then\n" SCHED_LUA_SETS(
        "r[2]") "    local live = true\n"
                "    for _, k in ipairs(sets) do\n"
                "      local sc = redis.call('ZSCORE', k, id)\n"
                "      if not sc or tonumber(sc) <= now then live = false end\n"
                "    end\n"
                "    for _, k in ipairs(sets) do\n"
                "      if live then\n"
                "        redis.call('ZADD', k, 'XX', exp, id)\n"
                "        keep(k)\n"
                "      else\n"
                "        redis.call('ZREM', k, id)\n"
                "      end\n"
                "    end\n"
                "    if live then\n"
                "      redis.call('PEXPIRE', KEYS[i], ttl)\n"
                "      out[i] = 1\n"
                "    else\n"
                "      redis.call('DEL', KEYS[i])\n"
                "    end\n"
                "  end\n"
                "end\n"
                "return out\n";

const char sched_lua_release[] =
    "local r = redis.call('HMGET', KEYS[1], 'u', 'a', 'k')\n"
    "local n = 0\n" SCHED_LUA_SETS(
        "(r[2] or ARGV[3])") "for _, k in ipairs(sets) do\n"
                             "  n = n + redis.call('ZREM', k, ARGV[1])\n"
                             "end\n"
                             "redis.call('DEL', KEYS[1])\n"
                             "if ARGV[4] == '1' then\n"
                             "  redis.call('DEL', ARGV[2] .. 'fail:' .. ARGV[3])\n"
                             "end\n"
                             "return n\n";

#define SCHED_KEY_MAX 192

/* Appends " <v>" to the bounded text (out, cap) at *len. */
static int
sched_slots_addnum(char *out, size_t cap, size_t *len, long long v)
{
	int n = snprintf(out + *len, cap - *len, "%lld ", v);

	if (n < 0 || (size_t)n >= cap - *len)
		return -ERR_TOOBIG;
	*len += (size_t)n;
	return 0;
}

/* The candidate and excluded ARGV strings of an acquire. */
static int
sched_slots_args(const struct sched_slot_req *r, char *cands, size_t ccap,
    char *excl, size_t ecap)
{
	size_t i, cl = 0, el = 1;
	int    rv = 0;

	cands[0] = '\0';
	excl[0] = ' ';
	excl[1] = '\0';
	for (i = 0; i < r->n && rv == 0; i++) {
		rv =
		    sched_slots_addnum(cands, ccap, &cl, (long long)r->aids[i]);
		if (rv == 0)
			rv = sched_slots_addnum(
			    cands, ccap, &cl, (long long)r->alimits[i]);
		if (rv == 0)
			rv = sched_slots_addnum(cands, ccap, &cl,
			    r->prios != NULL ? (long long)r->prios[i] : 0);
	}
	for (i = 0; i < r->nexcl && rv == 0; i++)
		rv = sched_slots_addnum(excl, ecap, &el, (long long)r->excl[i]);
	return rv;
}

/* The release script's arguments for one lease (argv points inside). */
struct sched_relargs {
	char        key[SCHED_KEY_MAX];
	char        aid[24];
	const char *argv[5];
};

static void
sched_slots_relargs(struct sched *s, const char *lease, int64_t aid,
    bool reset_failures, struct sched_relargs *ra)
{
	snprintf(ra->key, sizeof(ra->key), "%slease:%s", s->cfg->redis_prefix,
	    lease);
	snprintf(ra->aid, sizeof(ra->aid), "%lld", (long long)aid);
	ra->argv[0] = ra->key;
	ra->argv[1] = lease;
	ra->argv[2] = s->cfg->redis_prefix;
	ra->argv[3] = ra->aid;
	ra->argv[4] = reset_failures ? "1" : "0";
}

/*
 * The acquire script, after the releases of r->pre not yet ran, in one
 * round trip; marks the releases that ran.  0 or the acquire's error.
 */
static int
sched_slots_eval_acquire(struct sched *s, const struct sched_slot_req *r,
    const char *const *argv, redisReply **rep)
{
	struct sched_relargs *ra;
	struct rds_call      *calls;
	size_t                i, n = 0;
	int                   rv;

	for (i = 0; i < r->npre; i++)
		n += !r->pre[i].ran;
	if (n == 0)
		return rds_script_eval(
		    s->rds, s->lua_acquire, rep, 6, 14, argv, NULL);
	ra = xcalloc(n, sizeof(*ra));
	calls = xcalloc(n + 1, sizeof(*calls));
	for (i = 0, n = 0; i < r->npre; i++) {
		if (r->pre[i].ran)
			continue;
		sched_slots_relargs(s, r->pre[i].lease, r->pre[i].aid,
		    r->pre[i].reset_failures, &ra[n]);
		calls[n] = (struct rds_call){.s = s->lua_release,
		    .nkeys = 1,
		    .nargs = 4,
		    .argv = ra[n].argv};
		n++;
	}
	calls[n] = (struct rds_call){
	    .s = s->lua_acquire, .nkeys = 6, .nargs = 14, .argv = argv};
	/* Each call's outcome is in calls[], the releases' and its own. */
	rv = rds_script_evalv(s->rds, calls, n + 1);
	for (i = 0, n = 0; i < r->npre; i++) {
		struct rds_call *c;

		if (r->pre[i].ran)
			continue;
		c = &calls[n++];
		if (c->rv == 0 && c->reply->type == REDIS_REPLY_INTEGER) {
			r->pre[i].ran = true;
			r->pre[i].held = c->reply->integer > 0;
		}
		if (c->reply != NULL)
			freeReplyObject(c->reply);
	}
	rv = calls[n].rv;
	*rep = calls[n].reply;
	free(calls);
	free(ra);
	return rv;
}

int
sched_slots_acquire(
    struct sched *s, const struct sched_slot_req *r, struct sched_slot_res *out)
{
	char        keys[5][SCHED_KEY_MAX];
	char        nums[9][24];
	char        cands[SCHED_BATCH_MAX * 3 * 22 + 1];
	char        excl[PROTO_EXCLUDED_MAX * 22 + 2];
	const char *argv[20];
	const char *pfx = s->cfg->redis_prefix;
	bool        sticky = r->sticky_key != NULL && r->sticky_ttl_ms > 0;
	redisReply *rep;
	int         rv;

	ASSERT(r->n >= 1 && r->n <= SCHED_BATCH_MAX);
	ASSERT(r->nexcl <= PROTO_EXCLUDED_MAX);
	snprintf(keys[0], SCHED_KEY_MAX, "%sslots:user:%lld", pfx,
	    (long long)r->uid);
	snprintf(keys[1], SCHED_KEY_MAX, "%slease:%s", pfx, r->lease);
	snprintf(
	    keys[2], SCHED_KEY_MAX, "%sslots:key:%lld", pfx, (long long)r->kid);
	snprintf(keys[3], SCHED_KEY_MAX, "%sslots:wait:user:%lld", pfx,
	    (long long)r->uid);
	snprintf(keys[4], SCHED_KEY_MAX, "%swaiter:%s", pfx,
	    r->rid != NULL ? r->rid : r->lease);
	rv = sched_slots_args(r, cands, sizeof(cands), excl, sizeof(excl));
	if (rv != 0)
		return rv;
	snprintf(nums[0], sizeof(nums[0]), "%lld", (long long)r->ttl_ms);
	snprintf(nums[1], sizeof(nums[1]), "%d", (int)r->ulimit);
	snprintf(nums[2], sizeof(nums[2]), "%lld", (long long)r->uid);
	snprintf(nums[3], sizeof(nums[3]), "%lld",
	    sticky ? (long long)r->sticky_ttl_ms : 0LL);
	snprintf(nums[4], sizeof(nums[4]), "%d", (int)r->klimit);
	snprintf(nums[5], sizeof(nums[5]), "%lld", (long long)r->kid);
	snprintf(nums[6], sizeof(nums[6]), "%lld",
	    r->rid != NULL ? (long long)r->wait_ttl_ms : 0LL);
	snprintf(nums[7], sizeof(nums[7]), "%d", (int)r->wait_cap);
	snprintf(nums[8], sizeof(nums[8]), "%d", (int)r->sticky_max_w);
	argv[0] = keys[0];
	argv[1] = keys[1];
	argv[2] = sticky ? r->sticky_key : "-";
	argv[3] = keys[2];
	argv[4] = keys[3];
	argv[5] = keys[4];
	argv[6] = r->lease;
	argv[7] = nums[0];
	argv[8] = nums[1];
	argv[9] = nums[2];
	argv[10] = pfx;
	argv[11] = nums[3];
	argv[12] = cands;
	argv[13] = excl;
	argv[14] = nums[4];
	argv[15] = nums[5];
	argv[16] = r->rid != NULL ? r->rid : r->lease;
	argv[17] = nums[6];
	argv[18] = nums[7];
	argv[19] = nums[8];
	rv = sched_slots_eval_acquire(s, r, argv, &rep);
	if (rv != 0)
		return rv;
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 3 ||
	    rep->element[0]->type != REDIS_REPLY_INTEGER ||
	    rep->element[1]->type != REDIS_REPLY_INTEGER ||
	    rep->element[2]->type != REDIS_REPLY_INTEGER ||
	    rep->element[1]->integer < 0 ||
	    rep->element[1]->integer > (long long)r->n) {
		freeReplyObject(rep);
		return -ERR_REDIS;
	}
	out->result = (int)rep->element[0]->integer;
	out->index = rep->element[1]->integer > 0
	    ? (size_t)rep->element[1]->integer - 1
	    : 0;
	out->sticky = (int)rep->element[2]->integer;
	freeReplyObject(rep);
	return 0;
}

int
sched_slots_renew(struct sched *s, const char (*leases)[PROTO_ID_MAX + 1],
    size_t n, int64_t ttl_ms, bool *alive)
{
	char        keys[PROTO_LEASES_MAX][SCHED_KEY_MAX];
	char        ttl[24];
	const char *argv[RDS_ARGV_MAX];
	redisReply *rep;
	size_t      i;
	int         rv;

	ASSERT(n <= PROTO_LEASES_MAX);
	if (n == 0)
		return 0;
	for (i = 0; i < n; i++) {
		snprintf(keys[i], SCHED_KEY_MAX, "%slease:%s",
		    s->cfg->redis_prefix, leases[i]);
		argv[i] = keys[i];
		argv[n + 2 + i] = leases[i];
	}
	snprintf(ttl, sizeof(ttl), "%lld", (long long)ttl_ms);
	argv[n] = ttl;
	argv[n + 1] = s->cfg->redis_prefix;
	rv = rds_script_eval(
	    s->rds, s->lua_renew, &rep, (int)n, (int)n + 2, argv, NULL);
	if (rv != 0)
		return rv;
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != n) {
		freeReplyObject(rep);
		return -ERR_REDIS;
	}
	for (i = 0; i < n; i++)
		alive[i] = rep->element[i]->type == REDIS_REPLY_INTEGER &&
		    rep->element[i]->integer == 1;
	freeReplyObject(rep);
	return 0;
}

int
sched_slots_release(struct sched *s, const char *lease, int64_t aid, bool *held)
{
	return sched_slots_release_ex(s, lease, aid, false, held);
}

int
sched_slots_release_ex(struct sched *s, const char *lease, int64_t aid,
    bool reset_failures, bool *held)
{
	struct sched_relargs ra;
	redisReply          *rep;
	int                  rv;

	sched_slots_relargs(s, lease, aid, reset_failures, &ra);
	rv = rds_script_eval(s->rds, s->lua_release, &rep, 1, 4, ra.argv, NULL);
	if (rv != 0)
		return rv;
	if (rep->type != REDIS_REPLY_INTEGER) {
		freeReplyObject(rep);
		return -ERR_REDIS;
	}
	*held = rep->integer > 0;
	freeReplyObject(rep);
	return 0;
}

int
sched_slots_unwait(struct sched *s, const char *rid, int *removed)
{
	char        key[SCHED_KEY_MAX];
	const char *argv[3];
	redisReply *rep;
	int         rv;

	snprintf(key, sizeof(key), "%swaiter:%s", s->cfg->redis_prefix, rid);
	argv[0] = key;
	argv[1] = rid;
	argv[2] = s->cfg->redis_prefix;
	rv = rds_script_eval(s->rds, s->lua_unwait, &rep, 1, 2, argv, NULL);
	if (rv != 0)
		return rv;
	if (rep->type != REDIS_REPLY_INTEGER) {
		freeReplyObject(rep);
		return -ERR_REDIS;
	}
	*removed = (int)rep->integer;
	freeReplyObject(rep);
	return 0;
}
