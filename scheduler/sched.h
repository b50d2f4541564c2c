/*
 * sched.h: the scheduler service (private to scheduler/).
 *
 * The scheduler answers the gateways' requests (REP): which account serves
 * a request, slots, sticky sessions, account state.  It is stateless; its
 * shared state lives in Redis and its configuration in PostgreSQL.  It
 * also listens (SUB) for config-changed events from webui.
 *
 * The first cut of the hot path:
 *
 *   SCHED_ACQUIRE_REQ  resolve the API key (sched_keys.c: an in-memory
 *                      cache with TTL, dropped on config-changed events),
 *                      check key, user, group, key quota, balance or
 *                      subscription and its windows (the money part of
 *                      the cache lives balance_cache_ttl only),
 *                      list the group's schedulable accounts that serve
 *                      the model (sched_acct.c), and hold one user, one
 *                      API-key and one account slot in a single Lua trip
 *                      (sched_slots.c); reply with the decrypted upstream
 *                      credential.
 *   SCHED_RENEW_REQ    extend leases; report the lost ones.
 *   SCHED_RELEASE_REQ  drop a lease (idempotent) and apply the upstream
 *                      outcome to the account (sched_state.c).
 *   SCHED_KEYINFO_REQ  what a key may see: its group's model list or its
 *                      balance/plan (sched_info.c); no balance check, no
 *                      slot.
 *
 * Sticky sessions and the load-aware choice live in the acquire script
 * (sched_slots.c): a request with a session hash goes back to the account
 * its session is bound to, and otherwise to the least loaded account of
 * the best priority.
 *
 * A full slot answers BUSY at once (wait_ms is ignored) and registers
 * the request as waiting (wait sets in Redis, bounded per user): the
 * gateway waits and asks again with the same request id, and cancels
 * when it gives up (a release flagged wait_cancel).  A session whose
 * bound account is full waits for it while few others do, else is
 * served elsewhere.  Also here: per-account proxies (sched_proxy.c), a slot
 * sweeper for leases of dead gateways (sched_sweep.c) and OAuth token
 * refresh (sched_refresh.c) and the admin settings that override
 * configuration defaults (sched_settings.c).
 */
#ifndef SCHED_H
#define SCHED_H

#include <jansson.h>
#include <pthread.h>

#include "cfg.h"
#include "crypto.h"
#include "metrics.h"
#include "nngx.h"
#include "pg.h"
#include "proto.h"
#include "rds.h"
#include "svc.h"
#include "tick.h"
#include "topics.h"

#define SCHED_CFG(X)                                                           \
	SVC_CFG_BASE(X, "127.0.0.1:9102")                                      \
	SVC_CFG_PG(X, "8")                                                     \
	SVC_CFG_REDIS(X, "16")                                                 \
	SVC_CFG_DEPS(X)                                                        \
	X(sched_addr, CFG_NNG, ADDR_SCHED, 0, 0, NULL, 0,                      \
	    "REP address the gateways dial.")                                  \
	X(sched_cfg_addr, CFG_NNG, ADDR_SCHED_CFG, 0, 0, NULL, 0,              \
	    "SUB address webui dials to announce configuration changes.")      \
	X(workers, CFG_INT, "64", 1, 1024, NULL, 0,                            \
	    "Concurrent requests in service (REP contexts).")                  \
	X(secret_key, CFG_SECRET, "", 0, 0, NULL, CFG_F_SHARED,                \
	    "Account credential key (64 hex or base64 of 32 bytes). Unset: "   \
	    "the service runs but is not ready and acquires fail.")            \
	X(lease_ttl, CFG_DUR, "60s", 1000, 3600000, NULL, 0,                   \
	    "Lifetime of a concurrency lease unless renewed.")                 \
	X(sticky_ttl, CFG_DUR, "1h", 0, 604800000, NULL, 0,                    \
	    "Lifetime of a session's account binding, refreshed on each hit "  \
	    "(0: no sticky sessions). The default: the settings table's "      \
	    "sticky_session_ttl_seconds overrides it (sched_settings.c).")     \
	X(settings_reload_interval, CFG_DUR, "30s", 1000, 3600000, NULL, 0,    \
	    "Period of the settings table reload, the fallback for a change "  \
	    "no config-changed event announced.")                              \
	X(key_cache_ttl, CFG_DUR, "30s", 0, 3600000, NULL, 0,                  \
	    "How long a resolved API key is cached (0: no cache).")            \
	X(balance_cache_ttl, CFG_DUR, "2s", 0, 60000, NULL, 0,                 \
	    "How long the money part of a cached API key (balance > 0, key "   \
	    "quota, subscription windows) is trusted before one query by "     \
	    "primary keys reads it again (0: every acquire reads it). A "      \
	    "safety net under billing's config-changed events, which drop "    \
	    "the entry at once.")                                              \
	X(key_cache_neg_ttl, CFG_DUR, "5s", 0, 600000, NULL, 0,                \
	    "How long an unknown API key is remembered as unknown.")           \
	X(key_cache_size, CFG_INT, "16384", 4, 16777216, NULL, 0,              \
	    "API keys cached at most.")                                        \
	X(account_cache_ttl, CFG_DUR, "1s", 0, 60000, NULL, 0,                 \
	    "How long a group's candidate accounts are reused before one "     \
	    "query reads them again (0: every acquire reads them). Config-"    \
	    "changed events and this replica's own state changes drop them "   \
	    "at once.")                                                        \
	X(last_used_flush_interval, CFG_DUR, "1s", 100, 60000, NULL, 0,        \
	    "Period of the batched write of accounts.last_used_at.")           \
	X(redis_prefix, CFG_STR, "s2a:", 0, 64, NULL, 0,                       \
	    "Prefix of every Redis key the scheduler writes.")                 \
	X(rate_limit_cooldown, CFG_DUR, "5m", 1000, 86400000, NULL, 0,         \
	    "Account pause after an upstream 429 that names no reset time.")   \
	X(overload_cooldown, CFG_DUR, "10m", 1000, 86400000, NULL, 0,          \
	    "Account pause after an upstream 529.")                            \
	X(temp_unsched_threshold, CFG_INT, "3", 0, 1000, NULL, 0,              \
	    "Upstream 5xx answers or connection failures of one account "      \
	    "within temp_unsched_window that pause it (0: never).")            \
	X(temp_unsched_window, CFG_DUR, "60s", 1000, 86400000, NULL, 0,        \
	    "Sliding window in which failures are counted.")                   \
	X(temp_unsched_cooldown, CFG_DUR, "5m", 1000, 86400000, NULL, 0,       \
	    "How long an account is temporarily unschedulable after "          \
	    "temp_unsched_threshold failures.")                                \
	X(state_memo_ttl, CFG_DUR, "5s", 0, 60000, NULL, 0,                    \
	    "How long a success that changed nothing spares the next "         \
	    "identical success of the same account its database statement "    \
	    "(0: every success asks the database).")                           \
	X(anthropic_base_url, CFG_STR, "https://api.anthropic.com", 0, 512,    \
	    NULL, 0, "Upstream of anthropic accounts without a base_url.")     \
	X(openai_base_url, CFG_STR, "https://api.openai.com", 0, 512, NULL, 0, \
	    "Upstream of openai accounts without a base_url.")                 \
	X(gemini_base_url, CFG_STR,                                            \
	    "https://generativelanguage.googleapis.com", 0, 512, NULL, 0,      \
	    "Upstream of gemini accounts without a base_url.")                 \
	X(antigravity_base_url, CFG_STR,                                       \
	    "https://cloudcode-pa.googleapis.com", 0, 512, NULL, 0,            \
	    "Upstream of antigravity accounts without a base_url.")            \
	X(wait_ttl, CFG_DUR, "35s", 3000, 3600000, NULL, 0,                    \
	    "How long a waiting request stays counted in the wait sets after " \
	    "its last acquire unless it gets a slot or is cancelled: the "     \
	    "gateway's wait_timeout plus a margin (at least 3 s: longer than " \
	    "the gateway's 2 s retry back-off).")                              \
	X(wait_queue_extra, CFG_INT, "20", 0, 1000000, NULL, 0,                \
	    "Requests a user may have waiting beyond its concurrency (the "    \
	    "key's group not fail_fast); one more is refused at once with "    \
	    "429 'Too many pending requests'.")                                \
	X(sticky_max_waiting, CFG_INT, "3", 0, 1000, NULL, 0,                  \
	    "A session whose bound account is full waits for it while fewer "  \
	    "than this many requests wait for that account; otherwise "        \
	    "another account serves it (0: never wait for the binding).")      \
	X(slot_sweep_interval, CFG_DUR, "10s", 100, 3600000, NULL, 0,          \
	    "Period of the sweeper that drops expired leases from the slot "   \
	    "sets (sched_sweep.c).")                                           \
	X(token_refresh_interval, CFG_DUR, "5m", 1000, 86400000, NULL, 0,      \
	    "Period of the OAuth token refresh job (sched_refresh.c).")        \
	X(token_refresh_before, CFG_DUR, "30m", 0, 86400000, NULL, 0,          \
	    "Refresh an OAuth token once it expires within this time.")        \
	X(token_refresh_retries, CFG_INT, "3", 1, 10, NULL, 0,                 \
	    "Token refresh attempts in all (the first one included).")         \
	X(token_refresh_backoff, CFG_DUR, "2s", 0, 60000, NULL, 0,             \
	    "Wait before the second refresh attempt, doubled after each.")     \
	X(anthropic_token_url, CFG_STR,                                        \
	    "https://console.anthropic.com/v1/oauth/token", 0, 512, NULL, 0,   \
	    "OAuth token endpoint of Claude accounts.")                        \
	X(anthropic_oauth_client_id, CFG_STR,                                  \
	    "9d1c250a-e61b-44d9-88ed-5944d1962f5e", 0, 128, NULL, 0,           \
	    "OAuth client id sent with Claude token refreshes.")

CFG_DECLARE(sched_cfg, SCHED_CFG)

struct sched_keycache;
struct sched_statememo;

struct sched {
	struct svc              svc;
	const struct sched_cfg *cfg;
	struct nngx_rep        *rep;
	struct nngx_sub        *cfg_sub;
	struct pg_pool         *pg;
	struct rds_pool        *rds;
	struct met_family      *requests; /* {type, result}; may be NULL */
	struct met_counter     *cfg_events;
	/* Set by sched_core_init(). */
	struct sched_keycache  *keys;
	struct sched_acache    *acache; /* sched_acache.c */
	struct crypto_key       key;
	bool                    key_ok; /* secret_key was set */
	struct rds_script      *lua_acquire;
	struct rds_script      *lua_renew;
	struct rds_script      *lua_release;
	struct rds_script      *lua_failure; /* sched_state.c */
	struct sched_statememo *memo;        /* sched_state.c */
	struct rds_script      *lua_unwait;
	struct met_counter     *m_queue_full; /* may be NULL */
	struct met_counter     *m_waits;      /* may be NULL */
	/* Admin settings (sched_settings.c); NULL: the config's values. */
	struct sched_settings *settings;
};

/* ---- sched_core.c: the hot path's shared state ----------------------- */

/*
 * Loads the secret key (an empty secret_key leaves key_ok false: acquires
 * answer INTERNAL and the readiness check "secret_key" fails; a malformed
 * one is -ERR_CONFIG), makes the key cache and the Lua scripts.  s->cfg
 * must be set; s->pg and s->rds are used later only.  On failure nothing
 * is left allocated.
 */
int sched_core_init(struct sched *s) WARN_UNUSED;

/* Frees what sched_core_init() made; safe on a zeroed struct. */
void sched_core_release(struct sched *s);

/* Readiness check: fails with a detail when no secret key is loaded. */
int sched_core_check_cb(void *arg, int timeout_ms, struct buf *detail);

/* ---- sched_settings.c: admin settings from the settings table ------ */

/*
 * The settings the scheduler obeys.  Each overrides a configuration key,
 * which stays the default while the row is absent or refused:
 *
 *   sticky_session_ttl_seconds  sticky_ttl, whole seconds 0..604800
 *                               (0: no sticky sessions)
 */
#define SCHED_SETTING_STICKY_TTL     "sticky_session_ttl_seconds"
#define SCHED_SETTING_STICKY_TTL_MAX 604800

struct sched_settings;

/*
 * A settings holder with the values of cfg (borrowed; must outlive it)
 * in force; no database access.  Owned: sched_settings_free(), which
 * also stops the reload job; NULL is fine there.
 */
struct sched_settings *sched_settings_new(const struct sched_cfg *cfg);
void                   sched_settings_free(struct sched_settings *st);

/*
 * The sticky binding TTL in force, in ms (0: no sticky sessions): the
 * setting when valid, else sticky_ttl.  Thread-safe and lock-free; with
 * s->settings NULL, sticky_ttl.
 */
int64_t sched_settings_sticky_ttl(const struct sched *s);

/*
 * Applies value (borrowed; NULL: no row, "": cleared) of the sticky TTL
 * setting to s->settings.  A value that is not whole seconds within
 * 0..SCHED_SETTING_STICKY_TTL_MAX is refused: -ERR_INVAL and the
 * configured default in force.  Each change is logged once
 * (sched.setting_applied, sched.setting_invalid); the same value again
 * returns the same result silently.
 */
int sched_settings_apply_sticky(struct sched *s, const char *value);

/*
 * Reads the settings table (s->pg) and applies what it holds.  0, or the
 * database error (logged; the values in force are kept).  Any thread.
 */
int sched_settings_load(struct sched *s);

/*
 * Starts reloading every settings_reload_interval on a tick thread, the
 * first load at once.  s->settings and the pools must be set.  0 or the
 * tick's error.
 */
int sched_settings_start(struct sched *s) WARN_UNUSED;

/* Whether config-changed kind (borrowed) concerns the settings. */
bool sched_settings_kind(const char *kind);

/* ---- sched_keys.c: API-key resolution -------------------------------- */

/*
 * What the eligibility checks need to know about one API key, copied out
 * of the cache.  found is false for an unknown (or deleted) key; the
 * user_/group_ fields are meaningful only when their *_found is set.
 */
struct sched_key {
	bool    found;
	int64_t key_id;
	bool    key_active;
	int64_t key_expires_ms; /* 0: never */
	int64_t user_id;
	bool    user_found;
	bool    user_active;
	bool    balance_positive;
	int32_t user_concurrency; /* 0: unlimited */
	int32_t key_concurrency;  /* api_keys.concurrency, 0: unlimited */
	int64_t group_id;
	bool    group_found;
	bool    group_active;
	bool    group_subscription; /* subscription_type = 'subscription' */
	bool    group_fail_fast;    /* refuse at once instead of queueing */
	char    platform[PROTO_PLATFORM_MAX + 1];
	int64_t rate_micro;     /* the user's multiplier in the group, else the
	                           group's (billing's rule), * 1e6, exact */
	int64_t sub_id;         /* active subscription, 0: none */
	int64_t sub_expires_ms; /* of sub_id */
	/*
	 * The money part, computed by PostgreSQL (exact numeric comparisons,
	 * never C floating point) and re-read every balance_cache_ttl by
	 * sched_keys_money().  A limit that is NULL or 0 is no limit (as in
	 * the original); a window whose start is NULL (not activated) or
	 * older than its period (24 h, 7 d, 30 d) counts as unused.
	 */
	int64_t sub_row_id;    /* the live subscription row, valid or not */
	bool    sub_invalid;   /* that row is expired, suspended or future */
	bool    quota_spent;   /* quota_usd > 0 AND quota_used >= quota */
	bool    daily_spent;   /* daily_usage_usd >= daily_limit_usd */
	bool    weekly_spent;  /* weekly_usage_usd >= weekly_limit_usd */
	bool    monthly_spent; /* monthly_usage_usd >= monthly_limit_usd */
	int64_t money_ms;      /* when the money part was read */
};

/*
 * A bounded, thread-safe cache of struct sched_key by key hash:
 * size entries at most (4-way set associative, so a full set evicts its
 * oldest entry).  sched_keys_free(NULL) is legal.
 */
struct sched_keycache *sched_keys_new(size_t size);
void                   sched_keys_free(struct sched_keycache *kc);

/* Copies the live entry for hash into *out; false when absent/expired. */
bool sched_keys_get(struct sched_keycache *kc, const char *hash, int64_t now_ms,
    struct sched_key *out);

/* Stores *k (borrowed) for hash until now_ms + ttl_ms (ttl 0: not kept). */
void sched_keys_put(struct sched_keycache *kc, const char *hash, int64_t now_ms,
    int64_t ttl_ms, const struct sched_key *k);

/*
 * A configuration change: kind "api_key"/"key", "user", "group" or
 * "subscription" with entity id drops the entries naming that id (an
 * api_key change also drops the negative entries, since a new key may now
 * exist); id 0 or any other kind (account changes excepted: accounts are
 * not cached) drops everything.  Billing announces a balance reaching
 * zero as "user", a spent window as "subscription" (or "user") and a
 * spent key quota as "api_key".  Any invalidation also bumps the cache's
 * generation, so an answer read from the database while it happened is
 * used once but never cached (sched_keys_resolve()): the next acquire
 * reads the database again.  Returns the number of entries dropped.
 */
size_t sched_keys_invalidate(
    struct sched_keycache *kc, const char *kind, int64_t id);

/* The generation: bumped by every sched_keys_invalidate(). */
uint64_t sched_keys_gen(struct sched_keycache *kc);

/*
 * sched_keys_put() unless the generation moved past gen (an invalidation
 * came while *k was being read): then nothing is stored.
 */
void sched_keys_put_gen(struct sched_keycache *kc, const char *hash,
    int64_t now_ms, int64_t ttl_ms, const struct sched_key *k, uint64_t gen);

/*
 * Replaces the money part (balance_positive, the subscription's id,
 * expiry and validity, the *_spent flags, money_ms) of hash's live entry with
 * k's, if it still holds key k->key_id and the generation is still gen; the
 * entry keeps its expiry.
 */
void sched_keys_put_money(struct sched_keycache *kc, const char *hash,
    const struct sched_key *k, uint64_t gen);

/*
 * Re-reads the money part of *k (found) with one query by primary keys
 * (user, key, subscription row) and stamps money_ms = now_ms.  0 or the
 * database error (*k untouched).
 */
int sched_keys_money(
    struct pg_conn *conn, struct sched_key *k, int64_t now_ms) WARN_UNUSED;

/*
 * Resolves hash through the cache, or with one query on conn (borrowed)
 * whose answer is then cached (positive key_cache_ttl, negative
 * key_cache_neg_ttl).  A cached positive entry whose money part is older
 * than balance_cache_ttl gets it re-read (sched_keys_money()) first.
 * 0 with *out filled (found may be false), or the database error.
 */
int sched_keys_resolve(struct sched *s, struct pg_conn *conn, const char *hash,
    struct sched_key *out) WARN_UNUSED;

/*
 * Parses a non-negative PostgreSQL numeric text ("1", "0.5", "1.2500")
 * into millionths without floating point; digits past the sixth decimal
 * are truncated.  -ERR_INVAL on anything else, -ERR_TOOBIG on overflow.
 */
int sched_rate_micro(const char *s, int64_t *out) WARN_UNUSED;

/* ---- sched_slots.c: concurrency leases in Redis ---------------------- */

/* Candidate accounts per acquire script call: all of them, in one call. */
#define SCHED_BATCH_MAX 64

/* The scripts' source; their contracts are described in sched_slots.c. */
extern const char sched_lua_acquire[];
extern const char sched_lua_renew[];
extern const char sched_lua_release[];
extern const char sched_lua_failure[]; /* sched_state.c */
extern const char sched_lua_unwait[];

enum sched_slot_result {
	SCHED_SLOT_OK = 1,         /* index is the candidate that fit */
	SCHED_SLOT_USER_FULL = 0,  /* the user's slots are all held */
	SCHED_SLOT_ACCT_FULL = -1, /* every candidate account is full */
	SCHED_SLOT_KEY_FULL = -2,  /* the API key's slots are all held */
	SCHED_SLOT_QUEUE_FULL = -3 /* busy, and the user's wait set is full */
};

/* What the acquire script did with the session binding. */
enum sched_sticky_result {
	SCHED_STICKY_NONE = 0,    /* no session, or sticky_ttl 0 */
	SCHED_STICKY_HIT = 1,     /* the bound account was taken, TTL renewed */
	SCHED_STICKY_BOUND = 2,   /* no binding: the chosen account was bound */
	SCHED_STICKY_REBOUND = 3, /* bound account not a candidate: rebound */
	SCHED_STICKY_KEPT = 4,    /* bound account full or excluded: another
	                             one serves, the binding stays */
	SCHED_STICKY_WAIT = 5     /* bound account full: the request waits
	                             for it (BUSY) */
};

/*
 * One acquire: user uid (limit ulimit, 0: unlimited), API key kid (limit
 * klimit, 0: unlimited) and the candidates
 * aids[0..n) (limits alimits, 0: unlimited; priorities prios, ascending
 * in candidate order; n <= SCHED_BATCH_MAX) in their SQL order.
 * sticky_key (NULL: no session) names the binding, kept sticky_ttl_ms;
 * excl[0..nexcl) are the request's excluded accounts, which a binding
 * never hands out.  Every pointer is borrowed.
 */
/*
 * A lease release that rides in an acquire's Redis round trip (the
 * releases of a SCHED_BUNDLE_REQ): sched_slots_acquire() sends each one
 * not yet ran before its own script, in the same pipeline.
 */
struct sched_prerel {
	const char *lease;
	int64_t     aid;
	bool        reset_failures;
	bool        ran;  /* out: the release script ran */
	bool        held; /* out: the lease was still held */
};

struct sched_slot_req {
	const char          *lease;
	int64_t              ttl_ms;
	int64_t              uid;
	int32_t              ulimit;
	int64_t              kid;
	int32_t              klimit;
	const int64_t       *aids;
	const int32_t       *alimits;
	const int32_t       *prios;
	size_t               n;
	const char          *sticky_key;
	int64_t              sticky_ttl_ms;
	const int64_t       *excl;
	size_t               nexcl;
	const char          *rid;          /* request id: the waiter's name */
	int64_t              wait_ttl_ms;  /* 0: a refusal never waits */
	int32_t              wait_cap;     /* user's waiters admitted at most */
	int32_t              sticky_max_w; /* sticky_max_waiting */
	struct sched_prerel *pre; /* releases to run first (may be NULL) */
	size_t               npre;
};

struct sched_slot_res {
	int    result; /* enum sched_slot_result */
	size_t index;  /* the candidate taken (OK) or waited for (ACCT_FULL) */
	int    sticky; /* enum sched_sticky_result */
};

/*
 * Holds one user slot, one key slot and one account slot under lease id
 * r->lease for r->ttl_ms (all or none), choosing the account in one
 * script call: the session's bound account when it is a candidate with
 * room, else among the candidates of the best priority with room the
 * lowest load ((held slots + waiting requests) / concurrency), ties to
 * the earlier (less recently used) candidate.
 *
 * A refusal (user, key or every account full; a full bound account with
 * fewer than sticky_max_w waiters) registers r->rid as waiting, for
 * r->wait_ttl_ms from now, in the user's wait set and in the wait set of
 * the account it waits for (the bound one, else the least loaded of the
 * best priority), unless wait_ttl_ms is 0; a request not yet waiting
 * whose user already has wait_cap waiters gets SCHED_SLOT_QUEUE_FULL
 * instead.  A success removes r->rid from the wait sets.
 * 0 with *out filled, or the Redis error.
 */
int sched_slots_acquire(struct sched *s, const struct sched_slot_req *r,
    struct sched_slot_res *out) WARN_UNUSED;

/*
 * Extends leases[0..n) (n <= PROTO_LEASES_MAX) to now + ttl_ms in all of
 * their sets (user, key, account); alive[i] says whether lease i was still held
 * (a lost lease is removed from whatever still names it).  0 or the Redis
 * error.
 */
int sched_slots_renew(struct sched *s, const char (*leases)[PROTO_ID_MAX + 1],
    size_t n, int64_t ttl_ms, bool *alive) WARN_UNUSED;

/*
 * Removes lease from its user, key and account sets (account aid is used
 * when the lease record has already expired).  Idempotent: *held says
 * whether the lease was still held.  0 or the Redis error.
 */
int sched_slots_release(
    struct sched *s, const char *lease, int64_t aid, bool *held) WARN_UNUSED;

/*
 * sched_slots_release() that, with reset_failures, also drops account
 * aid's failure count (sched_state.c) in the same round trip: what a
 * successful attempt's release does.
 */
int sched_slots_release_ex(struct sched *s, const char *lease, int64_t aid,
    bool reset_failures, bool *held) WARN_UNUSED;

/*
 * Removes request rid from the wait sets it is registered in (the
 * gateway stopped waiting: client gone, wait timeout).  Idempotent:
 * *removed says how many set members went.  0 or the Redis error.
 */
int sched_slots_unwait(
    struct sched *s, const char *rid, int *removed) WARN_UNUSED;

/* ---- sched_acct.c: accounts ------------------------------------------ */

/* One schedulable candidate of an acquire. */
struct sched_cand {
	int64_t id;
	int32_t concurrency;
	int32_t priority; /* accounts.priority: lower is preferred */
	char    type[PROTO_NAME_MAX + 1];
	char   *creds_enc_hex; /* owned: bytea text "\x..." */
	/* Filled by sched_acct_load() only (wall ms; 0: none, NULL). */
	int64_t  rate_until_ms;     /* rate_limit_reset_at */
	int64_t  overload_until_ms; /* overload_until */
	int64_t  pause_until_ms;    /* temp_unschedulable_until */
	int64_t  used_ms;           /* last_used_at */
	uint64_t used_seq;          /* this replica's pick order within a ms */
};

/*
 * Lists the accounts of group gid on platform that are schedulable now,
 * not in excl[0..nexcl), ordered by priority then least recently used,
 * at most cap of them.  *out (owned: sched_cands_free) and *n on success.
 */
int sched_acct_list(struct pg_conn *conn, int64_t gid, const char *platform,
    const int64_t *excl, size_t nexcl, size_t cap, struct sched_cand **out,
    size_t *n) WARN_UNUSED;

void sched_cands_free(struct sched_cand *c, size_t n);

/*
 * Lists every active, schedulable account of group gid on platform whose
 * proxy (if any) is live, whatever its rate-limit, overload or pause
 * state, with those times and last_used_at (the account cache filters
 * them by time itself), at most cap, ordered by priority then id.
 * *out (owned: sched_cands_free) and *n on success.
 */
int sched_acct_load(struct pg_conn *conn, int64_t gid, const char *platform,
    size_t cap, struct sched_cand **out, size_t *n) WARN_UNUSED;

/*
 * Checks that candidate c could serve a request at all (its credentials
 * open and carry a secret, its base URL and proxy URL can be made) and
 * copies its model_mapping into *mapping (owned: json_decref; NULL when
 * the mapping is empty: every model is served).  No secret is kept: the
 * mapping holds model names only.  Errors as sched_acct_prepare().
 */
int sched_acct_inspect(struct sched *s, const struct sched_cand *c,
    const char *platform, json_t **mapping) WARN_UNUSED;

/*
 * Opens the sealed credentials of c into *pt (owned: free it with
 * crypto_free_secret(*pt, *ptlen + 1); never log it) and *ptlen.
 * -ERR_INVAL (or the hex decoder's error) for a malformed bytea text,
 * -ERR_CRYPTO when the blob does not open with the secret key.
 */
int sched_acct_open(struct sched *s, const struct sched_cand *c, uint8_t **pt,
    size_t *ptlen) WARN_UNUSED;

/*
 * How a query other than the candidate list reads an account's proxy:
 * select SCHED_PROXY_COLS (in this order, as the candidate query does)
 * from "accounts a" joined with SCHED_PROXY_JOIN, so that a disabled or
 * deleted proxy reads as NULL columns while a.proxy_id is still set:
 * such an account must not connect at all, never directly.
 */
#define SCHED_PROXY_COLS \
	"p.id, p.protocol, p.host, p.port, p.username, p.password_enc"
#define SCHED_PROXY_JOIN                                                     \
	" LEFT JOIN proxies p ON p.id = a.proxy_id AND p.deleted_at IS NULL" \
	" AND p.status = 'active'"

/*
 * Writes the proxy URL of account aid, whose SCHED_PROXY_COLS start at
 * column col of row of res (borrowed), into out (cap bytes): "" when
 * those columns are NULL, else as sched_proxy_url() makes it with the
 * decrypted password.  -ERR_CRYPTO when the password does not open,
 * -ERR_INVAL or -ERR_TOOBIG when no URL can be made (logged with the
 * account and proxy ids); out is then zeroed.  out holds a secret: keep
 * it out of logs and wipe it after use.
 */
int sched_acct_proxy_url(struct sched *s, int64_t aid, const PGresult *res,
    int row, int col, char *out, size_t cap) WARN_UNUSED;

/*
 * Decrypts candidate c's credentials and, when the account serves model,
 * fills rep's credential ({"type":"apikey","api_key":...} or
 * {"type":"oauth","access_token":...}), base_url, upstream_model and
 * account_type.  -ERR_NOTFOUND when the model is not served, -ERR_CRYPTO
 * when the blob does not open, -ERR_INVAL for unusable credentials.
 * Secrets are wiped before returning and never logged.
 */
int sched_acct_prepare(struct sched *s, const struct sched_cand *c,
    const char *platform, const char *model,
    struct proto_sched_acquire_rep *rep) WARN_UNUSED;

/* ---- sched_acache.c: the candidate accounts cache ------------------- */

/*
 * An acquire's candidates, read from the cache: shallow copies whose
 * creds_enc_hex point into the cached list, which ref keeps alive until
 * sched_acache_put().  n_all counts the schedulable accounts before the
 * model filter (to tell "no account" from "none serves the model").
 */
struct sched_acache_view {
	struct sched_alist *ref;
	size_t              n, n_all;
	struct sched_cand   c[SCHED_BATCH_MAX];
};

/* A cache whose lists live ttl_ms (0: read on every acquire). */
struct sched_acache *sched_acache_new(int64_t ttl_ms);
void                 sched_acache_free(struct sched_acache *ac);

/*
 * The candidates of group gid on platform that serve model, are not in
 * excl[0..nexcl) and are schedulable at now_ms (wall), ordered by
 * priority, then least recently used (this replica's own picks count at
 * once), then id; at most SCHED_BATCH_MAX.  Reads the list with one query
 * (on conn) when it is missing, stale or invalidated.  0 with *v filled
 * (release it with sched_acache_put()), or the database error.
 */
int sched_acache_get(struct sched *s, struct pg_conn *conn, int64_t gid,
    const char *platform, const char *model, const int64_t *excl, size_t nexcl,
    int64_t now_ms, struct sched_acache_view *v) WARN_UNUSED;

void sched_acache_put(struct sched_acache *ac, struct sched_acache_view *v);

/* Every list is read again on its next use (a config or state change). */
void sched_acache_invalidate(struct sched_acache *ac);

/* Whether a config-changed event of this kind can change candidates. */
bool sched_acache_kind(const char *kind);

/*
 * The batched last_used_at writer: sched_acache_flush() every
 * last_used_flush_interval on a tick thread of its own, and once more at
 * sched_acache_stop() (after the REP socket closed).
 */
int  sched_acache_start(struct sched *s, struct tick *t) WARN_UNUSED;
void sched_acache_stop(struct sched *s, struct tick *t);

/* Account aid was picked at now_ms: LRU order now, last_used_at later. */
void sched_acache_touch(struct sched_acache *ac, int64_t aid, int64_t now_ms);

/*
 * Writes the pending last_used_at values with one UPDATE on conn; 0, or
 * the database error (the values are then kept for the next flush).
 */
int sched_acache_flush(struct sched_acache *ac, struct pg_conn *conn);

/* Pending last_used_at values, and lists read so far (tests, metrics). */
size_t   sched_acache_pending(struct sched_acache *ac);
uint64_t sched_acache_loads(struct sched_acache *ac);

/* ---- sched_state.c: the account state machine ------------------------ */

/*
 * What a release reports about one upstream attempt; every pointer is
 * borrowed from the decoded message.
 */
struct sched_outcome {
	int64_t     account_id;
	int32_t     status;      /* HTTP status, 0: no response */
	const char *err_class;   /* "network", "client_closed"... */
	const char *lease;       /* names the failure in Redis */
	int64_t     duration_ms; /* of the attempt */
	int64_t     reset_unix;  /* legacy field, 0: none */
	int64_t     retry_after_s;
	const struct proto_header *hdrs;
	size_t                     n_hdrs;
	const char                *err_message; /* upstream's, may be "" */
};

/* What an outcome does to an account, before custom codes and counting. */
enum sched_st_kind {
	SCHED_ST_NONE = 0, /* the client's or the gateway's doing: nothing */
	SCHED_ST_SUCCESS,  /* 2xx: 5h window, clears a recorded rate limit */
	SCHED_ST_RATE,     /* 429 */
	SCHED_ST_OVERLOAD, /* 529 */
	SCHED_ST_ERROR,    /* 401, 402, 403 */
	SCHED_ST_FAILURE   /* other 5xx, connection failures: counted */
};

enum sched_st_kind sched_state_kind(int32_t status, const char *err_class);

/* The value of response header name in o (any case), NULL if absent. */
const char *sched_state_header(const struct sched_outcome *o, const char *name);

/* True when a 403's message says the organization is disabled/banned. */
bool sched_state_banned(const char *msg);

/*
 * When a 429 rests the account, in wall-clock milliseconds: the
 * anthropic-ratelimit-unified-reset header (unix seconds; milliseconds
 * are recognised), else the legacy reset field, when after now_ms and
 * less than 7 days away; else retry-after seconds (same bound); else
 * now_ms + rate_limit_cooldown.  *why names the source.
 */
int64_t sched_state_rate_until(const struct sched *s,
    const struct sched_outcome *o, int64_t now_ms, const char **why);

/*
 * Applies outcome o to its account and writes the resulting state into
 * state (PROTO_ACCT_STATE_MAX + 1 bytes): "ok", "rate_limited", "overloaded",
 * "error" or "temp_unschedulable".  See sched_state.c for the rules.
 * Takes its own PostgreSQL connection only when the outcome can change
 * something; a transition and its account_state_log row are one
 * statement.  0 or the database's error.
 */
int sched_state_apply(
    struct sched *s, const struct sched_outcome *o, char *state) WARN_UNUSED;

/*
 * The success memo: per account (direct-mapped, bounded), the 5h headers
 * of the last success whose statement found nothing left to do (no rate
 * limit recorded), for state_memo_ttl.  An identical success within that
 * time skips the database; any transition of the account drops its
 * entry.  Thread-safe.  sched_state_memo_free(NULL) is legal.
 */
struct sched_statememo *sched_state_memo_new(void);
void                    sched_state_memo_free(struct sched_statememo *m);

/* ---- sched_sticky.c: session bindings ------------------------------- */

/*
 * The binding key of a session: "<prefix>sticky:<platform>:<gid>:<hash>"
 * into out (cap bytes).  -ERR_INVAL for an empty hash or one with bytes
 * outside [0-9A-Za-z_-], -ERR_TOOBIG when it does not fit.
 */
int sched_sticky_key(struct sched *s, const char *platform, int64_t gid,
    const char *hash, char *out, size_t cap) WARN_UNUSED;

/* ---- sched_acquire.c / sched_release.c: the handlers ------------------ */

int sched_on_acquire(struct sched *s, const struct proto_env *env,
    struct buf *reply) WARN_UNUSED;
int sched_on_renew(struct sched *s, const struct proto_env *env,
    struct buf *reply) WARN_UNUSED;
int sched_on_release(struct sched *s, const struct proto_env *env,
    struct buf *reply) WARN_UNUSED;

/*
 * An acquire whose Redis script runs after the npre releases of pre, in
 * one round trip (pre[i].ran says which ran; a refusal before the script
 * runs none).
 */
int sched_on_acquire_pre(struct sched *s, const struct proto_env *env,
    struct buf *reply, struct sched_prerel *pre, size_t npre) WARN_UNUSED;

/*
 * A decoded release request (id names it in logs): the slot release
 * (skipped when pre_held is given: it ran in an acquire's round trip and
 * *pre_held is its result), then the upstream outcome; the reply into
 * reply.
 */
int sched_release_run(struct sched *s, const char *id,
    const struct proto_sched_release_req *req, const bool *pre_held,
    struct buf *reply) WARN_UNUSED;

/* Whether req's release also resets its account's failure count. */
bool sched_release_resets(
    const struct sched *s, const struct proto_sched_release_req *req);

/* ---- sched_info.c: what a key may see (GET /v1/models, /v1/usage) ----- */

int sched_on_keyinfo(struct sched *s, const struct proto_env *env,
    struct buf *reply) WARN_UNUSED;

/* sched_rep.c: the request dispatcher. */
int sched_rep_handle(void *arg, const void *req, size_t len, struct buf *reply);

#endif /* SCHED_H */
