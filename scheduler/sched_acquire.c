/*
 * sched_acquire.c: SCHED_ACQUIRE_REQ, the hot path.
 *
 * decode -> key (cache or one query) -> eligibility -> candidates serving
 * the model (the account cache, sched_acache.c: no query in the steady
 * state) -> one Lua call that honours the session binding, picks the
 * least loaded account of the best priority and holds a user, a key and
 * an account slot -> the winner's credential (the one decryption) ->
 * last_used_at noted in memory -> reply.  In the steady state: no
 * PostgreSQL round trip and one Redis round trip.
 *
 * Every refusal is an ACQUIRE_REP with an outcome, an error type of the
 * Anthropic error vocabulary and a message for the client; an ERROR_REP
 * answers only a malformed request.  wait_ms is ignored: a full slot
 * answers BUSY at once and registers the request as waiting (its id in
 * the wait sets, sched_slots.c); the gateway waits and asks again with
 * the same request id, and cancels with a release flagged wait_cancel
 * when it gives up.  A user with too many waiters already gets
 * QUEUE_FULL (429 "Too many pending requests") at once.
 *
 * A probe (count_tokens) passes the same checks but stops at the
 * candidates: the first one serves it, with no Redis call, no slot, no
 * wait and no session binding (sched_probe()).
 */
#include <openssl/crypto.h>
#include <stdio.h>

#include "err.h"
#include "log.h"
#include "sched.h"

static void
sched_deny(struct proto_sched_acquire_rep *rep, int outcome, const char *etype,
    const char *msg)
{
	rep->outcome = outcome;
	snprintf(rep->err_type, sizeof(rep->err_type), "%s", etype);
	snprintf(rep->err_message, sizeof(rep->err_message), "%s", msg);
}

static void
sched_internal(struct proto_sched_acquire_rep *rep)
{
	sched_deny(rep, PROTO_ACQ_INTERNAL, "api_error",
	    "Internal error, please retry later");
}

/* No candidate; n_all > 0 when some were left out for the model only. */
static void
sched_no_account(struct proto_sched_acquire_rep *rep, size_t n_all)
{
	sched_deny(rep, PROTO_ACQ_NO_ACCOUNT, "api_error",
	    n_all > 0 ? "No available accounts: no account supports the "
	                "requested model"
	              : "No available accounts");
}

/*
 * Key, user, group and money checks; true when the request may go on.
 * The order and the outcomes (the gateway turns them into the protocol's
 * errors, gw_err_from_refusal()):
 *
 *   unknown, disabled key; missing, disabled user   AUTH        401
 *   expired key                                      FORBIDDEN   403
 *   missing, disabled group                          FORBIDDEN   403
 *   key quota spent                                  QUOTA       429
 *   subscription group: no subscription              BALANCE     403
 *                       expired, suspended one       BALANCE     403
 *                       a window spent               QUOTA       429
 *   standard group: balance <= 0                     BALANCE     403
 *
 * A QUOTA message carries its code (DAILY_LIMIT_EXCEEDED...), which is
 * how the gateway tells them apart.  The request that crosses a limit is
 * served (the check is usage >= limit before it), then charged in full.
 */
static bool
sched_eligible(
    const struct sched_key *k, int64_t now, struct proto_sched_acquire_rep *rep)
{
	const char *auth = "authentication_error";
	const char *rate = "rate_limit_error";

	if (!k->found)
		sched_deny(rep, PROTO_ACQ_AUTH, auth, "Invalid API key");
	else if (!k->key_active)
		sched_deny(rep, PROTO_ACQ_AUTH, auth, "API key disabled");
	else if (k->key_expires_ms != 0 && k->key_expires_ms <= now)
		sched_deny(rep, PROTO_ACQ_FORBIDDEN, "permission_error",
		    "API key has expired");
	else if (!k->user_found)
		sched_deny(rep, PROTO_ACQ_AUTH, auth, "User not found");
	else if (!k->user_active)
		sched_deny(rep, PROTO_ACQ_AUTH, auth, "User account disabled");
	else if (!k->group_found)
		sched_deny(rep, PROTO_ACQ_FORBIDDEN, "permission_error",
		    "API key group not found");
	else if (!k->group_active)
		sched_deny(rep, PROTO_ACQ_FORBIDDEN, "permission_error",
		    "API key group disabled");
	else if (k->quota_spent)
		sched_deny(rep, PROTO_ACQ_QUOTA, rate,
		    "API key quota exhausted (API_KEY_QUOTA_EXHAUSTED)");
	else if (k->group_subscription && k->sub_id == 0 && !k->sub_invalid)
		sched_deny(rep, PROTO_ACQ_BALANCE, "subscription_error",
		    "No active subscription for this group");
	else if (k->group_subscription &&
	    (k->sub_invalid || k->sub_expires_ms <= now))
		sched_deny(rep, PROTO_ACQ_BALANCE, "subscription_error",
		    "Subscription is invalid or expired (SUBSCRIPTION_INVALID)");
	else if (k->group_subscription && k->daily_spent)
		sched_deny(rep, PROTO_ACQ_QUOTA, rate,
		    "Daily usage limit exceeded (DAILY_LIMIT_EXCEEDED)");
	else if (k->group_subscription && k->weekly_spent)
		sched_deny(rep, PROTO_ACQ_QUOTA, rate,
		    "Weekly usage limit exceeded (WEEKLY_LIMIT_EXCEEDED)");
	else if (k->group_subscription && k->monthly_spent)
		sched_deny(rep, PROTO_ACQ_QUOTA, rate,
		    "Monthly usage limit exceeded (MONTHLY_LIMIT_EXCEEDED)");
	else if (!k->group_subscription && !k->balance_positive)
		sched_deny(rep, PROTO_ACQ_BALANCE, "billing_error",
		    "Insufficient account balance");
	else
		return true;
	return false;
}

/* "<request id, cut to fit>-<16 hex>" into out (PROTO_ID_MAX + 1). */
static int
sched_lease_id(const char *rid, char *out)
{
	char rnd[17];
	int  rv;

	rv = crypto_random_hex(8, rnd, sizeof(rnd));
	if (rv != 0)
		return rv;
	snprintf(out, PROTO_ID_MAX + 1, "%.*s-%s",
	    (int)(PROTO_ID_MAX - sizeof(rnd)), rid, rnd);
	return 0;
}

/* Logs what the script did with the session binding (debug). */
static void
sched_sticky_log(const struct proto_sched_acquire_req *req,
    const struct sched_slot_res *res, int64_t aid)
{
	static const char *const names[] = {
	    [SCHED_STICKY_NONE] = "none",
	    [SCHED_STICKY_HIT] = "hit",
	    [SCHED_STICKY_BOUND] = "bound",
	    [SCHED_STICKY_REBOUND] = "rebound",
	    [SCHED_STICKY_KEPT] = "kept",
	};

	if (res->sticky <= SCHED_STICKY_NONE ||
	    (size_t)res->sticky >= ARRAY_SIZE(names))
		return;
	log_debug("sched.sticky", LOG_REQ(req->request_id),
	    LOG_STR("sticky", names[res->sticky]), LOG_I64("account", aid));
}

/*
 * A probe (count_tokens): the first candidate in the cache's order (best
 * priority, then least recently used), and no slot, wait or session
 * binding, so it never waits behind the user's own requests, nor takes
 * room from them.  The lease is "": there is nothing to release.
 */
static void
sched_probe(struct sched *s, const struct proto_sched_acquire_req *req,
    const struct sched_key *k, struct sched_cand *c, size_t n, size_t n_all,
    struct proto_sched_acquire_rep *rep)
{
	if (n == 0) {
		sched_no_account(rep, n_all);
		return;
	}
	if (sched_acct_prepare(s, &c[0], k->platform, req->model, rep) != 0) {
		sched_internal(rep);
		return;
	}
	rep->outcome = PROTO_ACQ_OK;
	rep->lease_id[0] = '\0';
	rep->lease_ttl_ms = 0;
}

/*
 * Offers every candidate serving the model to one script call, which
 * honours the session binding and picks the least loaded account of the
 * best priority; fills rep for the winner or sets the refusal.
 */
static void
sched_take(struct sched *s, const struct proto_sched_acquire_req *req,
    const struct sched_key *k, struct sched_cand *c, size_t n, size_t n_all,
    struct sched_prerel *pre, size_t npre, struct proto_sched_acquire_rep *rep)
{
	int64_t               aids[SCHED_BATCH_MAX];
	int32_t               lims[SCHED_BATCH_MAX], prios[SCHED_BATCH_MAX];
	size_t                idx[SCHED_BATCH_MAX];
	char                  skey[256];
	struct sched_slot_req sr = {0};
	struct sched_slot_res res;
	size_t                i, nb = 0;
	int                   rv;

	ASSERT(n <= SCHED_BATCH_MAX);
	if (sched_lease_id(req->request_id, rep->lease_id) != 0) {
		sched_internal(rep);
		return;
	}
	/* The cache checked their credentials and the model already. */
	for (i = 0; i < n; i++) {
		aids[nb] = c[i].id;
		lims[nb] = c[i].concurrency;
		prios[nb] = c[i].priority;
		idx[nb++] = i;
	}
	if (nb == 0) {
		sched_no_account(rep, n_all);
		return;
	}
	sr.lease = rep->lease_id;
	sr.ttl_ms = s->cfg->lease_ttl;
	sr.uid = k->user_id;
	sr.ulimit = k->user_concurrency;
	sr.kid = k->key_id;
	sr.klimit = k->key_concurrency;
	sr.aids = aids;
	sr.alimits = lims;
	sr.prios = prios;
	sr.n = nb;
	sr.excl = req->excluded;
	sr.nexcl = req->n_excluded;
	sr.sticky_ttl_ms = sched_settings_sticky_ttl(s);
	sr.rid = req->request_id;
	/* A fail_fast group refuses at once: its requests never wait. */
	sr.wait_ttl_ms = k->group_fail_fast ? 0 : s->cfg->wait_ttl;
	sr.wait_cap = (k->user_concurrency > 0 ? k->user_concurrency : 0) +
	    (int32_t)s->cfg->wait_queue_extra;
	sr.sticky_max_w = (int32_t)s->cfg->sticky_max_waiting;
	sr.pre = pre;
	sr.npre = npre;
	if (req->session_hash[0] != '\0' && sr.sticky_ttl_ms > 0) {
		rv = sched_sticky_key(s, k->platform, k->group_id,
		    req->session_hash, skey, sizeof(skey));
		if (rv == 0)
			sr.sticky_key = skey;
		else
			log_debug("sched.session_hash_ignored",
			    LOG_REQ(req->request_id), LOG_ERR(rv));
	}
	rv = sched_slots_acquire(s, &sr, &res);
	if (rv != 0) {
		log_warn("sched.slots_failed", LOG_ERR(rv));
		sched_internal(rep);
		return;
	}
	if (res.result == SCHED_SLOT_QUEUE_FULL) {
		met_counter_inc(s->m_queue_full);
		sched_deny(rep, PROTO_ACQ_QUEUE_FULL, "rate_limit_error",
		    "Too many pending requests, please retry later");
		return;
	}
	if (res.result != SCHED_SLOT_OK && sr.wait_ttl_ms > 0)
		met_counter_inc(s->m_waits);
	if (res.result == SCHED_SLOT_USER_FULL) {
		sched_deny(rep, PROTO_ACQ_BUSY, "rate_limit_error",
		    "Concurrency limit exceeded for user, please retry later");
		return;
	}
	if (res.result == SCHED_SLOT_KEY_FULL) {
		sched_deny(rep, PROTO_ACQ_BUSY, "rate_limit_error",
		    "Concurrency limit exceeded for API key, please retry "
		    "later");
		return;
	}
	if (res.result != SCHED_SLOT_OK) {
		sched_deny(rep, PROTO_ACQ_BUSY, "rate_limit_error",
		    "Concurrency limit exceeded for account, please retry "
		    "later");
		return;
	}
	sched_sticky_log(req, &res, aids[res.index]);
	rv = sched_acct_prepare(
	    s, &c[idx[res.index]], k->platform, req->model, rep);
	if (rv != 0) {
		bool held;

		/* Changed under us: give the slots back. */
		if (sched_slots_release(
		        s, rep->lease_id, aids[res.index], &held) != 0)
			log_warn("sched.slots_release_failed");
		sched_internal(rep);
		return;
	}
	rep->outcome = PROTO_ACQ_OK;
	rep->lease_ttl_ms = (uint32_t)s->cfg->lease_ttl;
}

/* The decision for req, written into rep (zeroed by the caller). */
static void
sched_acquire(struct sched *s, const struct proto_sched_acquire_req *req,
    struct sched_prerel *pre, size_t npre, struct proto_sched_acquire_rep *rep)
{
	struct sched_key          k;
	struct sched_acache_view *v = NULL;
	struct pg_conn           *conn;
	int64_t                   now = now_wall_ms();
	int                       rv;

	if (!s->key_ok) {
		log_error("sched.secret_key_missing", LOG_REQ(req->request_id));
		sched_internal(rep);
		return;
	}
	rv = pg_acquire(s->pg, (int)s->cfg->dep_timeout, &conn);
	if (rv != 0) {
		log_warn("sched.db_unavailable", LOG_ERR(rv));
		sched_internal(rep);
		return;
	}
	rv = sched_keys_resolve(s, conn, req->key_hash, &k);
	if (rv != 0) {
		sched_internal(rep);
		goto out;
	}
	if (!sched_eligible(&k, now, rep))
		goto out;
	rep->user_id = k.user_id;
	rep->api_key_id = k.key_id;
	rep->group_id = k.group_id;
	rep->rate_micro = k.rate_micro;
	rep->fail_fast = k.group_fail_fast;
	snprintf(rep->platform, sizeof(rep->platform), "%s", k.platform);
	if (k.group_subscription) {
		rep->billing_type = 1;
		rep->subscription_id = k.sub_id;
	}
	v = xmalloc(sizeof(*v));
	rv = sched_acache_get(s, conn, k.group_id, k.platform, req->model,
	    req->excluded, req->n_excluded, now, v);
	if (rv != 0) {
		free(v);
		v = NULL;
		sched_internal(rep);
		goto out;
	}
	if (req->probe) {
		sched_probe(s, req, &k, v->c, v->n, v->n_all, rep);
		goto out; /* not counted as a use of the account */
	}
	sched_take(s, req, &k, v->c, v->n, v->n_all, pre, npre, rep);
	if (rep->outcome == PROTO_ACQ_OK)
		sched_acache_touch(s->acache, rep->account_id, now);
out:
	if (v != NULL) {
		sched_acache_put(s->acache, v);
		free(v);
	}
	pg_release(conn);
}

int
sched_on_acquire(
    struct sched *s, const struct proto_env *env, struct buf *reply)
{
	return sched_on_acquire_pre(s, env, reply, NULL, 0);
}

int
sched_on_acquire_pre(struct sched *s, const struct proto_env *env,
    struct buf *reply, struct sched_prerel *pre, size_t npre)
{
	struct proto_sched_acquire_req  req;
	struct proto_sched_acquire_rep *rep;
	int                             rv;

	rv = proto_sched_acquire_req_unpack(env, &req);
	if (rv != 0)
		return rv;
	rep = xcalloc(1, sizeof(*rep));
	sched_acquire(s, &req, pre, npre, rep);
	if (rep->outcome != PROTO_ACQ_OK) {
		/*
		 * A refusal carries no ids, lease or secret (credential,
		 * proxy URL with its password) of a half-made decision.
		 */
		memset(rep->lease_id, 0, sizeof(rep->lease_id));
		rep->account_id = 0;
		memset(rep->credential, 0, sizeof(rep->credential));
		rep->credential_len = 0;
		memset(rep->proxy_url, 0, sizeof(rep->proxy_url));
	}
	log_debug("sched.acquire", LOG_REQ(req.request_id),
	    LOG_I64("outcome", rep->outcome), LOG_I64("user", rep->user_id),
	    LOG_I64("account", rep->account_id));
	rv = proto_sched_acquire_rep_pack(reply, env->id, 0, rep);
	OPENSSL_cleanse(rep, sizeof(*rep));
	free(rep);
	return rv;
}
