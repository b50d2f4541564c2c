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
 *                      check key, user, group, balance or subscription,
 *                      list the group's schedulable accounts that serve
 *                      the model (sched_acct.c), and hold one user slot
 *                      plus one account slot in a single Lua round trip
 *                      (sched_slots.c); reply with the decrypted upstream
 *                      credential.
 *   SCHED_RENEW_REQ    extend leases; report the lost ones.
 *   SCHED_RELEASE_REQ  drop a lease (idempotent) and apply the first
 *                      account-state rules (429, 529, 401/402/403).
 *   SCHED_KEYINFO_REQ  what a key may see: its group's model list or its
 *                      balance/plan (sched_info.c); no balance check, no
 *                      slot.
 *
 * Sticky sessions and the load-aware choice live in the acquire script
 * (sched_slots.c): a request with a session hash goes back to the account
 * its session is bound to, and otherwise to the least loaded account of
 * the best priority.
 *
 * A full slot answers BUSY at once (wait_ms is ignored): the gateway
 * waits and asks again (a session whose bound account is full is served
 * elsewhere).  Also here: per-account proxies (sched_proxy.c), a slot
 * sweeper for leases of dead gateways (sched_sweep.c), OAuth token
 * refresh (sched_refresh.c) and the admin settings that override
 * configuration defaults (sched_settings.c).
 */
#ifndef SCHED_H
#define SCHED_H

#include <pthread.h>

#include "cfg.h"
#include "crypto.h"
#include "metrics.h"
#include "nngx.h"
#include "pg.h"
#include "proto.h"
#include "rds.h"
#include "svc.h"
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
	X(key_cache_neg_ttl, CFG_DUR, "5s", 0, 600000, NULL, 0,                \
	    "How long an unknown API key is remembered as unknown.")           \
	X(key_cache_size, CFG_INT, "16384", 4, 16777216, NULL, 0,              \
	    "API keys cached at most.")                                        \
	X(redis_prefix, CFG_STR, "s2a:", 0, 64, NULL, 0,                       \
	    "Prefix of every Redis key the scheduler writes.")                 \
	X(rate_limit_cooldown, CFG_DUR, "5m", 1000, 86400000, NULL, 0,         \
	    "Account pause after an upstream 429 that names no reset time.")   \
	X(overload_cooldown, CFG_DUR, "10m", 1000, 86400000, NULL, 0,          \
	    "Account pause after an upstream 529.")                            \
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
	struct sched_keycache *keys;
	struct crypto_key      key;
	bool                   key_ok; /* secret_key was set */
	struct rds_script     *lua_acquire;
	struct rds_script     *lua_renew;
	struct rds_script     *lua_release;
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
	int64_t group_id;
	bool    group_found;
	bool    group_active;
	bool    group_subscription; /* subscription_type = 'subscription' */
	bool    group_fail_fast;    /* refuse at once instead of queueing */
	char    platform[PROTO_PLATFORM_MAX + 1];
	int64_t rate_micro;     /* rate_multiplier * 1e6, exact */
	int64_t sub_id;         /* active subscription, 0: none */
	int64_t sub_expires_ms; /* of sub_id */
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
 * A configuration change: kind "api_key"/"key", "user" or "group" with
 * entity id drops the entries naming that id (an api_key change also
 * drops the negative entries, since a new key may now exist); id 0 or any
 * other kind (account changes excepted: accounts are not cached) drops
 * everything.  Returns the number of entries dropped.
 */
size_t sched_keys_invalidate(
    struct sched_keycache *kc, const char *kind, int64_t id);

/*
 * Resolves hash through the cache, or with one query on conn (borrowed)
 * whose answer is then cached (positive key_cache_ttl, negative
 * key_cache_neg_ttl).  0 with *out filled (found may be false), or the
 * database error.
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

enum sched_slot_result {
	SCHED_SLOT_OK = 1,        /* index is the candidate that fit */
	SCHED_SLOT_USER_FULL = 0, /* the user's slots are all held */
	SCHED_SLOT_ACCT_FULL = -1 /* every candidate account is full */
};

/* What the acquire script did with the session binding. */
enum sched_sticky_result {
	SCHED_STICKY_NONE = 0,    /* no session, or sticky_ttl 0 */
	SCHED_STICKY_HIT = 1,     /* the bound account was taken, TTL renewed */
	SCHED_STICKY_BOUND = 2,   /* no binding: the chosen account was bound */
	SCHED_STICKY_REBOUND = 3, /* bound account not a candidate: rebound */
	SCHED_STICKY_KEPT = 4     /* bound account full or excluded: another
	                             one serves, the binding stays */
};

/*
 * One acquire: user uid (limit ulimit, 0: unlimited) and the candidates
 * aids[0..n) (limits alimits, 0: unlimited; priorities prios, ascending
 * in candidate order; n <= SCHED_BATCH_MAX) in their SQL order.
 * sticky_key (NULL: no session) names the binding, kept sticky_ttl_ms;
 * excl[0..nexcl) are the request's excluded accounts, which a binding
 * never hands out.  Every pointer is borrowed.
 */
struct sched_slot_req {
	const char    *lease;
	int64_t        ttl_ms;
	int64_t        uid;
	int32_t        ulimit;
	const int64_t *aids;
	const int32_t *alimits;
	const int32_t *prios;
	size_t         n;
	const char    *sticky_key;
	int64_t        sticky_ttl_ms;
	const int64_t *excl;
	size_t         nexcl;
};

struct sched_slot_res {
	int    result; /* enum sched_slot_result */
	size_t index;  /* the candidate taken, when SCHED_SLOT_OK */
	int    sticky; /* enum sched_sticky_result */
};

/*
 * Holds one user slot and one account slot under lease id r->lease for
 * r->ttl_ms, choosing the account in one script call: the session's
 * bound account when it is a candidate with room, else among the
 * candidates of the best priority with room the lowest load (held slots
 * / concurrency), ties to the earlier (less recently used) candidate.
 * 0 with *out filled, or the Redis error.
 */
int sched_slots_acquire(struct sched *s, const struct sched_slot_req *r,
    struct sched_slot_res *out) WARN_UNUSED;

/*
 * Extends leases[0..n) (n <= PROTO_LEASES_MAX) to now + ttl_ms in both of
 * their sets; alive[i] says whether lease i was still held (a lost lease
 * is removed from whatever still names it).  0 or the Redis error.
 */
int sched_slots_renew(struct sched *s, const char (*leases)[PROTO_ID_MAX + 1],
    size_t n, int64_t ttl_ms, bool *alive) WARN_UNUSED;

/*
 * Removes lease from its user and account sets (account aid is used
 * when the lease record has already expired).  Idempotent: *held says
 * whether the lease was still held.  0 or the Redis error.
 */
int sched_slots_release(
    struct sched *s, const char *lease, int64_t aid, bool *held) WARN_UNUSED;

/* ---- sched_acct.c: accounts ------------------------------------------ */

/* One schedulable candidate of an acquire. */
struct sched_cand {
	int64_t id;
	int32_t concurrency;
	int32_t priority; /* accounts.priority: lower is preferred */
	char    type[PROTO_NAME_MAX + 1];
	char   *creds_enc_hex; /* owned: bytea text "\x..." */
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

/* Sets last_used_at = now() of account aid. */
int sched_acct_touch(struct pg_conn *conn, int64_t aid) WARN_UNUSED;

/*
 * Applies an upstream outcome to account aid: 429 rate-limits it until
 * reset_unix (or now + retry_after_s, or now + rate_limit_cooldown), 529
 * overloads it for overload_cooldown, 401/402/403 put it in 'error'.
 * *state (PROTO_STATE_MAX + 1 bytes) names the resulting state: "ok",
 * "rate_limited", "overloaded" or "error".
 */
int sched_acct_outcome(struct sched *s, struct pg_conn *conn, int64_t aid,
    int32_t status, int64_t reset_unix, int64_t retry_after_s,
    char *state) WARN_UNUSED;

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

/* ---- sched_info.c: what a key may see (GET /v1/models, /v1/usage) ----- */

int sched_on_keyinfo(struct sched *s, const struct proto_env *env,
    struct buf *reply) WARN_UNUSED;

/* sched_rep.c: the request dispatcher. */
int sched_rep_handle(void *arg, const void *req, size_t len, struct buf *reply);

#endif /* SCHED_H */
