/*
 * sched_slots.c: concurrency slots as leases in Redis.
 *
 * Keys (P is redis_prefix, "s2a:" by default):
 *
 *   P slots:user:<uid>   sorted set: member lease id, score its expiry in
 *   P slots:acct:<aid>   ms of the Redis clock (TIME), so every replica and
 *                        the scripts agree on "now"
 *   P lease:<lease id>   hash {u: uid, a: aid}: which sets hold the lease,
 *                        for renew (whose request names leases only); it
 *                        expires with the lease
 *
 * Each operation is one script, so one round trip and atomic:
 *
 *   acquire  KEYS = user set, lease record, account set 1..n
 *            ARGV = lease, ttl_ms, user limit, uid, then (aid, limit) per
 *                   candidate, in the order to try (limit 0: unlimited)
 *            drops expired members of each set it looks at, then holds
 *            the user slot and the first candidate's slot with room (both
 *            or neither); returns {1, j} (candidate j, from 1), {0, 0}
 *            (user full) or {-1, 0} (every candidate full)
 *   renew    KEYS = lease record per lease; ARGV = ttl_ms, prefix, lease
 *            per lease; returns 1 (extended in both sets) or 0 (lost: the
 *            record, or a live member in either set, is gone; what is left
 *            of it is removed) per lease
 *   release  KEYS = lease record; ARGV = lease, prefix, aid of the request
 *            (used when the record expired); removes the lease from both
 *            sets and the record; returns how many members it removed, so
 *            a repeated release is harmless and returns 0
 *
 * No sweeper is needed: a leaked lease (a gateway killed mid-stream) stops
 * counting once its score passes, because every acquire first removes
 * the expired members of the sets it checks, and a set nobody touches
 * expires as a whole (PEXPIRE at least one ttl past its newest member).
 * The renew and release scripts build slot keys from the lease record,
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
    "local TTLARG = 2\n" SCHED_LUA_NOW "local function room(key, limit)\n"
    "  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)\n"
    "  if limit <= 0 then return true end\n"
    "  return redis.call('ZCARD', key) < limit\n"
    "end\n"
    "if not room(KEYS[1], tonumber(ARGV[3])) then return {0, 0} end\n"
    "for j = 1, #KEYS - 2 do\n"
    "  local k = KEYS[2 + j]\n"
    "  if room(k, tonumber(ARGV[4 + 2 * j])) then\n"
    "    redis.call('ZADD', KEYS[1], exp, ARGV[1])\n"
    "    redis.call('ZADD', k, exp, ARGV[1])\n"
    "    keep(KEYS[1])\n"
    "    keep(k)\n"
    "    redis.call('HSET', KEYS[2], 'u', ARGV[4], 'a', ARGV[3 + 2 * j])\n"
    "    redis.call('PEXPIRE', KEYS[2], ttl)\n"
    "    return {1, j}\n"
    "  end\n"
    "end\n"
    "return {-1, 0}\n";

const char sched_lua_renew[] =
    "local TTLARG = 1\n" SCHED_LUA_NOW "local out = {}\n"
    "for i = 1, #KEYS do\n"
    "  local id = ARGV[2 + i]\n"
    "  local r = redis.call('HMGET', KEYS[i], 'u', 'a')\n"
    "  out[i] = 0\n"
    "  if r[1] and r[2] then\n"
    "    local uk = ARGV[2] .. 'slots:user:' .. r[1]\n"
    "    local ak = ARGV[2] .. 'slots:acct:' .. r[2]\n"
    "    local us = redis.call('ZSCORE', uk, id)\n"
    "    local as = redis.call('ZSCORE', ak, id)\n"
    "    if us and as and tonumber(us) > now and tonumber(as) > now then\n"
    "      redis.call('ZADD', uk, 'XX', exp, id)\n"
    "      redis.call('ZADD', ak, 'XX', exp, id)\n"
    "      keep(uk)\n"
    "      keep(ak)\n"
    "      redis.call('PEXPIRE', KEYS[i], ttl)\n"
    "      out[i] = 1\n"
    "    else\n"
    "      redis.call('ZREM', uk, id)\n"
    "      redis.call('ZREM', ak, id)\n"
    "      redis.call('DEL', KEYS[i])\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return out\n";

const char sched_lua_release[] =
    "local r = redis.call('HMGET', KEYS[1], 'u', 'a')\n"
    "local n = 0\n"
    "if r[1] then\n"
    "  n = n + redis.call('ZREM', ARGV[2] .. 'slots:user:' .. r[1], "
    "ARGV[1])\n"
    "end\n"
    "local a = r[2] or ARGV[3]\n"
    "n = n + redis.call('ZREM', ARGV[2] .. 'slots:acct:' .. a, ARGV[1])\n"
    "redis.call('DEL', KEYS[1])\n"
    "return n\n";

#define SCHED_KEY_MAX 192

int
sched_slots_acquire(struct sched *s, const char *lease, int64_t ttl_ms,
    int64_t uid, int32_t ulimit, const int64_t *aids, const int32_t *alimits,
    size_t n, int *result, size_t *index)
{
	char        keys[2 + SCHED_BATCH_MAX][SCHED_KEY_MAX];
	char        nums[3 + 2 * SCHED_BATCH_MAX][24];
	const char *argv[RDS_ARGV_MAX];
	const char *pfx = s->cfg->redis_prefix;
	redisReply *rep;
	size_t      i, nk, na;
	int         rv;

	ASSERT(n >= 1 && n <= SCHED_BATCH_MAX);
	snprintf(
	    keys[0], SCHED_KEY_MAX, "%sslots:user:%lld", pfx, (long long)uid);
	snprintf(keys[1], SCHED_KEY_MAX, "%slease:%s", pfx, lease);
	for (i = 0; i < n; i++)
		snprintf(keys[2 + i], SCHED_KEY_MAX, "%sslots:acct:%lld", pfx,
		    (long long)aids[i]);
	nk = 2 + n;
	for (i = 0; i < nk; i++)
		argv[i] = keys[i];
	snprintf(nums[0], sizeof(nums[0]), "%lld", (long long)ttl_ms);
	snprintf(nums[1], sizeof(nums[1]), "%d", (int)ulimit);
	snprintf(nums[2], sizeof(nums[2]), "%lld", (long long)uid);
	argv[nk] = lease;
	argv[nk + 1] = nums[0];
	argv[nk + 2] = nums[1];
	argv[nk + 3] = nums[2];
	na = 4;
	for (i = 0; i < n; i++) {
		snprintf(nums[3 + 2 * i], sizeof(nums[0]), "%lld",
		    (long long)aids[i]);
		snprintf(
		    nums[4 + 2 * i], sizeof(nums[0]), "%d", (int)alimits[i]);
		argv[nk + na++] = nums[3 + 2 * i];
		argv[nk + na++] = nums[4 + 2 * i];
	}
	rv = rds_script_eval(
	    s->rds, s->lua_acquire, &rep, (int)nk, (int)na, argv, NULL);
	if (rv != 0)
		return rv;
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
	    rep->element[0]->type != REDIS_REPLY_INTEGER ||
	    rep->element[1]->type != REDIS_REPLY_INTEGER ||
	    rep->element[1]->integer < 0 ||
	    rep->element[1]->integer > (long long)n) {
		freeReplyObject(rep);
		return -ERR_REDIS;
	}
	*result = (int)rep->element[0]->integer;
	*index = rep->element[1]->integer > 0
	    ? (size_t)rep->element[1]->integer - 1
	    : 0;
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
	char        key[SCHED_KEY_MAX], a[24];
	const char *argv[4];
	redisReply *rep;
	int         rv;

	snprintf(key, sizeof(key), "%slease:%s", s->cfg->redis_prefix, lease);
	snprintf(a, sizeof(a), "%lld", (long long)aid);
	argv[0] = key;
	argv[1] = lease;
	argv[2] = s->cfg->redis_prefix;
	argv[3] = a;
	rv = rds_script_eval(s->rds, s->lua_release, &rep, 1, 3, argv, NULL);
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
