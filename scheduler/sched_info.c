/*
 * sched_info.c: SCHED_KEYINFO_REQ, what an API key may see.
 *
 * The gateway answers GET /v1/models and GET /v1/usage with this.  The
 * key resolves through the same cache as an acquire and is refused with
 * the same AUTH and FORBIDDEN outcomes (a subscription group without a
 * live subscription is FORBIDDEN here, not BALANCE: the probe must work
 * for a user who has spent everything), but nothing is held: no balance
 * check, no slot, no account touched.
 *
 * "models" is the union of the model_mapping keys of the group's
 * schedulable accounts on the group's platform, sorted and without
 * duplicates; an account without a mapping serves any model and adds
 * nothing.  When no account names a model the reply carries the
 * platform's built-in list (the reference's claude.DefaultModels role),
 * in the table's order.
 *
 * "usage" reads the balance and the subscription counters live, never
 * from the cache, and hands them on as PostgreSQL's exact decimal text.
 * For a subscription, remaining is the least of (limit - usage) over the
 * daily, weekly and monthly limits that are set (above zero), a window
 * not yet activated or whose period has run out counting as unused; "0"
 * once any is exhausted, "-1" when none is set.
 */
#include <jansson.h>
#include <stdio.h>

#include "err.h"
#include "log.h"
#include "sched.h"

#define SCHED_INFO_ACCTS_MAX 256  /* accounts read for one model list */
#define SCHED_INFO_NAMES_MAX 4096 /* mapping keys collected before sorting */

/* The built-in model lists; platforms not named here use anthropic's. */
static const char *const sched_info_anthropic[] = {
    "claude-opus-4-8",
    "claude-sonnet-5",
    "claude-sonnet-4-5",
    "claude-haiku-4-5-20251001",
    "claude-opus-4-1",
    "claude-sonnet-4-20250514",
    "claude-3-5-haiku-20241022",
};

static const char *const sched_info_openai[] = {
    "gpt-5.5",
    "gpt-5.4",
    "gpt-5.2",
};

static void
sched_info_deny(struct proto_sched_keyinfo_rep *rep, int outcome,
    const char *etype, const char *msg)
{
	rep->outcome = outcome;
	snprintf(rep->err_type, sizeof(rep->err_type), "%s", etype);
	snprintf(rep->err_message, sizeof(rep->err_message), "%s", msg);
}

static void
sched_info_internal(struct proto_sched_keyinfo_rep *rep)
{
	sched_info_deny(rep, PROTO_ACQ_INTERNAL, "api_error",
	    "Internal error, please retry later");
}

/* The acquire's key, user and group checks, without the balance. */
static bool
sched_info_eligible(
    const struct sched_key *k, int64_t now, struct proto_sched_keyinfo_rep *rep)
{
	const char *auth = "authentication_error";

	if (!k->found)
		sched_info_deny(rep, PROTO_ACQ_AUTH, auth, "Invalid API key");
	else if (!k->key_active)
		sched_info_deny(rep, PROTO_ACQ_AUTH, auth, "API key disabled");
	else if (k->key_expires_ms != 0 && k->key_expires_ms <= now)
		sched_info_deny(rep, PROTO_ACQ_FORBIDDEN, "permission_error",
		    "API key has expired");
	else if (!k->user_found)
		sched_info_deny(rep, PROTO_ACQ_AUTH, auth, "User not found");
	else if (!k->user_active)
		sched_info_deny(
		    rep, PROTO_ACQ_AUTH, auth, "User account disabled");
	else if (!k->group_found)
		sched_info_deny(rep, PROTO_ACQ_FORBIDDEN, "permission_error",
		    "API key group not found");
	else if (!k->group_active)
		sched_info_deny(rep, PROTO_ACQ_FORBIDDEN, "permission_error",
		    "API key group disabled");
	else if (k->group_subscription &&
	    (k->sub_id == 0 || k->sub_expires_ms <= now))
		sched_info_deny(rep, PROTO_ACQ_FORBIDDEN, "subscription_error",
		    "No active subscription for this group");
	else
		return true;
	return false;
}

/* ---- models ----------------------------------------------------------- */

struct sched_info_names {
	char  *v[SCHED_INFO_NAMES_MAX];
	size_t n;
};

static int
sched_info_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds the mapping keys of account c to names (an unreadable one: none). */
static void
sched_info_collect(
    struct sched *s, const struct sched_cand *c, struct sched_info_names *names)
{
	json_error_t jerr;
	json_t      *j, *map, *v;
	const char  *key;
	uint8_t     *pt;
	size_t       ptlen;

	if (sched_acct_open(s, c, &pt, &ptlen) != 0) {
		log_warn("sched.account_credentials_unreadable",
		    LOG_I64("account", c->id));
		return;
	}
	j = json_loadb((const char *)pt, ptlen, JSON_REJECT_DUPLICATES, &jerr);
	crypto_free_secret(pt, ptlen + 1);
	map = json_object_get(j, "model_mapping");
	if (json_is_object(map)) {
		json_object_foreach(map, key, v)
		{
			size_t len = strlen(key);

			(void)v;
			if (len == 0 || len > PROTO_MODEL_MAX ||
			    names->n == SCHED_INFO_NAMES_MAX)
				continue;
			names->v[names->n++] = xstrdup(key);
		}
	}
	json_decref(j);
}

static void
sched_info_models(struct sched *s, const struct sched_cand *c, size_t n,
    const char *platform, struct proto_sched_keyinfo_rep *rep)
{
	struct sched_info_names *names = xcalloc(1, sizeof(*names));
	const char *const       *def = sched_info_anthropic;
	size_t                   i, ndef = ARRAY_SIZE(sched_info_anthropic);

	for (i = 0; i < n; i++)
		sched_info_collect(s, &c[i], names);
	qsort(names->v, names->n, sizeof(names->v[0]), sched_info_cmp);
	for (i = 0; i < names->n; i++) {
		if (rep->n_models > 0 &&
		    strcmp(rep->models[rep->n_models - 1], names->v[i]) == 0)
			continue;
		if (rep->n_models == PROTO_MODELS_MAX)
			break;
		snprintf(rep->models[rep->n_models++], PROTO_MODEL_MAX + 1,
		    "%s", names->v[i]);
	}
	for (i = 0; i < names->n; i++)
		free(names->v[i]);
	free(names);
	if (rep->n_models > 0)
		return;
	if (strcmp(platform, "openai") == 0) {
		def = sched_info_openai;
		ndef = ARRAY_SIZE(sched_info_openai);
	}
	for (i = 0; i < ndef; i++)
		snprintf(rep->models[i], PROTO_MODEL_MAX + 1, "%s", def[i]);
	rep->n_models = (uint32_t)ndef;
}

/* ---- usage ------------------------------------------------------------ */

/*
 * What is left of window w: NULL without a limit (NULL or 0, as the
 * acquire's gate reads it), the whole limit when the window is not
 * activated (NULL start) or its period (exact hours) has run out.
 */
#define SCHED_INFO_LEFT(w, hours)                                       \
	"CASE WHEN g." w "_limit_usd > 0 THEN g." w "_limit_usd - CASE" \
	" WHEN s." w "_window_start IS NULL OR s." w "_window_start"    \
	" <= now() - interval '" hours " hours' THEN 0"                 \
	" ELSE s." w "_usage_usd END END"

/*
 * $1 group, $2 user, $3 subscription (0: none).  Columns: group name,
 * balance, and the subscription's remaining (NULL without a live row).
 */
static const char sched_info_usage_sql[] =
    "SELECT g.name, u.balance::text,"
    " CASE WHEN s.id IS NULL THEN NULL ELSE coalesce(("
    "  SELECT min(greatest(r, 0))::text FROM (VALUES"
    "  (" SCHED_INFO_LEFT("daily",
        "24") "),"
              "  (" SCHED_INFO_LEFT("weekly",
                  "168") "),"
                         "  (" SCHED_INFO_LEFT("monthly",
                             "720") ")"
                                    "  ) v(r) WHERE r IS NOT NULL), '-1') END"
                                    " FROM groups g JOIN users u ON u.id = $2::bigint"
                                    " LEFT JOIN user_subscriptions s ON s.id = $3::bigint"
                                    "  AND s.deleted_at IS NULL AND s.status = 'active'"
                                    " WHERE g.id = $1::bigint";

static void
sched_info_usage(struct pg_conn *conn, const struct sched_key *k,
    struct proto_sched_keyinfo_rep *rep)
{
	char        g[24], u[24], sid[24];
	const char *params[3] = {g, u, sid};
	const char *rem;
	PGresult   *res;
	int         rv;

	snprintf(g, sizeof(g), "%lld", (long long)k->group_id);
	snprintf(u, sizeof(u), "%lld", (long long)k->user_id);
	snprintf(sid, sizeof(sid), "%lld", (long long)k->sub_id);
	rv = pg_exec(conn, sched_info_usage_sql, 3, params, &res);
	if (rv != 0) {
		log_warn("sched.usage_query_failed", LOG_ERR(rv),
		    LOG_STR("detail", pg_errmsg(conn)));
		sched_info_internal(rep);
		return;
	}
	if (PQntuples(res) != 1) {
		PQclear(res);
		sched_info_deny(rep, PROTO_ACQ_FORBIDDEN, "permission_error",
		    "API key group not found");
		return;
	}
	if (k->group_subscription && PQgetisnull(res, 0, 2)) {
		PQclear(res);
		sched_info_deny(rep, PROTO_ACQ_FORBIDDEN, "subscription_error",
		    "No active subscription for this group");
		return;
	}
	rem = k->group_subscription ? PQgetvalue(res, 0, 2)
	                            : PQgetvalue(res, 0, 1);
	if (strlen(PQgetvalue(res, 0, 1)) > PROTO_DECIMAL_MAX ||
	    strlen(rem) > PROTO_DECIMAL_MAX) {
		PQclear(res);
		log_warn("sched.usage_row_bad");
		sched_info_internal(rep);
		return;
	}
	/* A name longer than the field is cut: it is only a label. */
	snprintf(rep->plan_name, sizeof(rep->plan_name), "%s",
	    PQgetvalue(res, 0, 0));
	snprintf(
	    rep->balance, sizeof(rep->balance), "%s", PQgetvalue(res, 0, 1));
	snprintf(rep->remaining, sizeof(rep->remaining), "%s", rem);
	rep->billing_type = k->group_subscription ? 1 : 0;
	PQclear(res);
}

/* ---- the handler ------------------------------------------------------ */

static void
sched_info(struct sched *s, const struct proto_sched_keyinfo_req *req,
    struct proto_sched_keyinfo_rep *rep)
{
	struct sched_key   k;
	struct sched_cand *c = NULL;
	struct pg_conn    *conn;
	size_t             n = 0;
	bool               models = strcmp(req->what, "models") == 0;
	int                rv;

	if (models && !s->key_ok) {
		log_error("sched.secret_key_missing", LOG_REQ(req->request_id));
		sched_info_internal(rep);
		return;
	}
	rv = pg_acquire(s->pg, (int)s->cfg->dep_timeout, &conn);
	if (rv != 0) {
		log_warn("sched.db_unavailable", LOG_ERR(rv));
		sched_info_internal(rep);
		return;
	}
	rv = sched_keys_resolve(s, conn, req->key_hash, &k);
	if (rv != 0) {
		sched_info_internal(rep);
		goto out;
	}
	if (!sched_info_eligible(&k, now_wall_ms(), rep))
		goto out;
	rep->outcome = PROTO_ACQ_OK;
	snprintf(rep->platform, sizeof(rep->platform), "%s", k.platform);
	if (!models) {
		sched_info_usage(conn, &k, rep);
		goto out;
	}
	rv = sched_acct_list(conn, k.group_id, k.platform, NULL, 0,
	    SCHED_INFO_ACCTS_MAX, &c, &n);
	if (rv != 0) {
		sched_info_internal(rep);
		goto out;
	}
	sched_info_models(s, c, n, k.platform, rep);
out:
	sched_cands_free(c, n);
	pg_release(conn);
}

int
sched_on_keyinfo(
    struct sched *s, const struct proto_env *env, struct buf *reply)
{
	struct proto_sched_keyinfo_req  req;
	struct proto_sched_keyinfo_rep *rep;
	int                             rv;

	rv = proto_sched_keyinfo_req_unpack(env, &req);
	if (rv != 0)
		return rv;
	rep = xcalloc(1, sizeof(*rep));
	sched_info(s, &req, rep);
	if (rep->outcome != PROTO_ACQ_OK) {
		/* A refusal carries nothing of a half-made answer. */
		struct proto_sched_keyinfo_rep *deny =
		    xcalloc(1, sizeof(*deny));

		deny->outcome = rep->outcome;
		memcpy(deny->err_type, rep->err_type, sizeof(deny->err_type));
		memcpy(deny->err_message, rep->err_message,
		    sizeof(deny->err_message));
		free(rep);
		rep = deny;
	}
	log_debug("sched.keyinfo", LOG_REQ(req.request_id),
	    LOG_STR("what", req.what), LOG_I64("outcome", rep->outcome),
	    LOG_I64("models", rep->n_models));
	rv = proto_sched_keyinfo_rep_pack(reply, env->id, 0, rep);
	free(rep);
	return rv;
}
