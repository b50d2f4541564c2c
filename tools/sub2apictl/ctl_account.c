/*
 * ctl_account.c: "account add" (optionally naming a live proxy with
 * --proxy NAME|ID; an unknown one is refused) and "account list".
 *
 * Credentials (a JSON object) are sealed with AES-256-GCM under the key of
 * SUB2API_SECRET_KEY before they reach the database, with associated data
 * naming the row (CRYPTO_AAD_ACCOUNT_FMT), so the id is drawn from the
 * sequence first.  Without a key the command refuses.  Listing never
 * touches the credentials.
 */
#include <libpq-fe.h>
#include <stdio.h>

#include "crypto.h"
#include "ctl.h"
#include "err.h"
#include "pg.h"

enum {
	A_NAME,
	A_PLATFORM,
	A_TYPE,
	A_CREDS,
	A_BASEURL,
	A_CONC,
	A_PRIO,
	A_GROUP,
	A_PROXY,
};

/* Parses, checks and re-serializes the credentials; owned result. */
static int
ctl_account_creds(const char *arg, const char *base_url, char **out)
{
	json_error_t jerr;
	json_t      *j;
	char        *raw = NULL, *s;
	int          rv;

	rv = ctl_read_value(arg, CTL_FILE_MAX, &raw);
	if (rv != 0) {
		if (rv == -ERR_TOOBIG)
			ctl_err("--credentials is larger than %d bytes",
			    CTL_FILE_MAX);
		return rv;
	}
	j = json_loads(raw, JSON_REJECT_DUPLICATES, &jerr);
	crypto_free_secret(raw, strlen(raw) + 1);
	if (j == NULL || !json_is_object(j)) {
		/* jerr.text may quote the secret; report the position only. */
		if (j == NULL)
			ctl_err("--credentials is not valid JSON (line %d, "
			        "column %d)",
			    jerr.line, jerr.column);
		else
			ctl_err("--credentials must be a JSON object");
		json_decref(j);
		return -ERR_INVAL;
	}
	if (base_url != NULL)
		json_object_set_new(j, "base_url", json_string(base_url));
	s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (s == NULL)
		return -ERR_NOMEM;
	*out = s;
	return 0;
}

/* Draws the id, seals, inserts the account and its group links. */
static int
ctl_account_insert(struct ctl *c, const struct crypto_key *key,
    const char *creds, const char **p, char gids[][24], int ngroups,
    PGresult **out)
{
	char        aad[96], *hex = NULL, id[24];
	const char *lp[2];
	int         rv, i;

	rv = pg_begin(c->conn);
	if (rv != 0)
		return ctl_db_fail(c, rv, "starting the transaction");
	rv = ctl_next_id(c, "accounts", id);
	if (rv != 0)
		return rv;
	snprintf(
	    aad, sizeof(aad), CRYPTO_AAD_ACCOUNT_FMT, strtoll(id, NULL, 10));
	rv = ctl_seal_hex(key, aad, creds, &hex);
	if (rv != 0)
		return rv;
	p[0] = id;
	p[4] = hex;
	rv = pg_exec(c->conn,
	    "INSERT INTO accounts (id, name, platform, type, credentials_enc,"
	    " concurrency, priority, proxy_id)"
	    " VALUES ($1::bigint, $2, $3, $4, $5::bytea, $6::integer,"
	    "  $7::integer, $8::bigint)",
	    8, p, NULL);
	free(hex);
	if (rv != 0)
		return ctl_db_fail(c, rv, "adding the account");
	for (i = 0; i < ngroups; i++) {
		lp[0] = id;
		lp[1] = gids[i];
		rv = pg_exec(c->conn,
		    "INSERT INTO account_groups (account_id, group_id)"
		    " VALUES ($1::bigint, $2::bigint) ON CONFLICT DO NOTHING",
		    2, lp, NULL);
		if (rv != 0)
			return ctl_db_fail(
			    c, rv, "linking the account to a group");
	}
	return ctl_read_back_commit(c,
	    "SELECT a.id, a.name, a.platform, a.type, a.status, a.concurrency,"
	    " a.priority, a.schedulable, a.proxy_id,"
	    " coalesce((SELECT json_agg(g.name ORDER BY g.name)"
	    "  FROM account_groups ag JOIN groups g ON g.id = ag.group_id"
	    "  WHERE ag.account_id = a.id), '[]'::json)::text AS groups,"
	    " a.created_at FROM accounts a WHERE a.id = $1::bigint",
	    id, "reading the account back", out);
}

int
ctl_cmd_account_add(struct ctl *c, int argc, char **argv)
{
	struct ctl_opt o[] = {
	    [A_NAME] = {"name", CTL_ARG, true},
	    [A_PLATFORM] = {"platform", CTL_ARG, true},
	    [A_TYPE] = {"type", CTL_ARG, true},
	    [A_CREDS] = {"credentials", CTL_ARG, true},
	    [A_BASEURL] = {"base-url", CTL_ARG, false},
	    [A_CONC] = {"concurrency", CTL_ARG, false},
	    [A_PRIO] = {"priority", CTL_ARG, false},
	    [A_GROUP] = {"group", CTL_MULTI, false},
	    [A_PROXY] = {"proxy", CTL_ARG, false},
	};
	struct crypto_key key;
	const char       *p[8], *type;
	char              gids[CTL_MULTI_MAX][24], pid[24], *creds = NULL;
	long long         n;
	PGresult         *res = NULL;
	json_t           *obj, *groups;
	int               rv, i;

	rv = ctl_parse(argc, argv, o, ARRAY_SIZE(o));
	if (rv != 0)
		return rv;
	if (!ctl_text_ok(o[A_NAME].val, 100)) {
		ctl_err("bad --name (1..100 characters)");
		return -ERR_INVAL;
	}
	if (!ctl_platform_ok(o[A_PLATFORM].val)) {
		ctl_err("bad --platform '%s' (anthropic, openai, gemini, "
		        "antigravity)",
		    o[A_PLATFORM].val);
		return -ERR_INVAL;
	}
	type = o[A_TYPE].val;
	if (strcmp(type, "oauth") != 0 && strcmp(type, "setup-token") != 0 &&
	    strcmp(type, "apikey") != 0) {
		ctl_err("bad --type '%s' (oauth, setup-token, apikey)", type);
		return -ERR_INVAL;
	}
	if (o[A_BASEURL].set && !ctl_url_ok(o[A_BASEURL].val)) {
		ctl_err("bad --base-url: want http(s)://host[...]");
		return -ERR_INVAL;
	}
	p[5] = o[A_CONC].set ? o[A_CONC].val : "3";
	if (ctl_parse_int(p[5], 0, 10000, &n) != 0) {
		ctl_err("bad --concurrency '%s' (0..10000)", p[5]);
		return -ERR_INVAL;
	}
	p[6] = o[A_PRIO].set ? o[A_PRIO].val : "50";
	if (ctl_parse_int(p[6], -1000000, 1000000, &n) != 0) {
		ctl_err("bad --priority '%s'", p[6]);
		return -ERR_INVAL;
	}
	rv = crypto_key_from_env(CRYPTO_KEY_ENV, &key);
	if (rv != 0) {
		ctl_err("refusing to store credentials: %s must hold the "
		        "encryption key (64 hex characters or base64 of 32 "
		        "bytes)",
		    CRYPTO_KEY_ENV);
		return -ERR_CONFIG;
	}
	rv = ctl_account_creds(
	    o[A_CREDS].val, o[A_BASEURL].set ? o[A_BASEURL].val : NULL, &creds);
	for (i = 0; rv == 0 && i < o[A_GROUP].nvals; i++)
		rv = ctl_resolve_group(c, o[A_GROUP].vals[i], gids[i]);
	p[7] = NULL;
	if (rv == 0 && o[A_PROXY].set) {
		rv = ctl_resolve_proxy(c, o[A_PROXY].val, pid);
		p[7] = pid;
	}
	if (rv == 0)
		rv = ctl_db(c);
	if (rv == 0) {
		p[1] = o[A_NAME].val;
		p[2] = o[A_PLATFORM].val;
		p[3] = type;
		rv = ctl_account_insert(
		    c, &key, creds, p, gids, o[A_GROUP].nvals, &res);
	}
	crypto_key_wipe(&key);
	if (creds != NULL)
		crypto_free_secret(creds, strlen(creds) + 1);
	if (rv != 0)
		return rv;
	obj = ctl_row_json(res, 0);
	PQclear(res);
	/* groups came back as JSON text; embed it as an array. */
	groups = json_loads(
	    json_string_value(json_object_get(obj, "groups")), 0, NULL);
	json_object_set_new(obj, "groups", groups ? groups : json_array());
	ctl_emit_obj(c, obj);
	return 0;
}

int
ctl_cmd_account_list(struct ctl *c, int argc, char **argv)
{
	return ctl_list(c, argc, argv,
	    "SELECT a.id, a.name, a.platform, a.type, a.status, a.schedulable,"
	    " a.concurrency, a.priority,"
	    " coalesce(string_agg(g.name, ',' ORDER BY g.name), '') AS groups,"
	    " a.created_at"
	    " FROM accounts a"
	    " LEFT JOIN account_groups ag ON ag.account_id = a.id"
	    " LEFT JOIN groups g ON g.id = ag.group_id AND g.deleted_at IS NULL"
	    " WHERE a.deleted_at IS NULL GROUP BY a.id ORDER BY a.id",
	    "listing accounts");
}
