/*
 * ctl_key.c: "key add" and "key list".
 *
 * A key is "sk-" + 64 hex (32 random bytes).  It is printed once; the
 * database keeps only its sha256 hex and its first CTL_KEY_PREFIX_LEN
 * characters for display.
 */
#include <libpq-fe.h>
#include <stdio.h>

#include "crypto.h"
#include "ctl.h"
#include "err.h"
#include "pg.h"

#define CTL_KEY_PREFIX     "sk-"
#define CTL_KEY_BYTES      32
#define CTL_KEY_PREFIX_LEN 10

enum { K_USER, K_GROUP, K_NAME };

int
ctl_cmd_key_add(struct ctl *c, int argc, char **argv)
{
	struct ctl_opt o[] = {
	    [K_USER] = {"user", CTL_ARG, true},
	    [K_GROUP] = {"group", CTL_ARG, false},
	    [K_NAME] = {"name", CTL_ARG, false},
	};
	char        key[80], hash[CRYPTO_SHA256_HEX_LEN + 1];
	char        prefix[CTL_KEY_PREFIX_LEN + 1], uid[24], gid[24];
	const char *p[5];
	PGresult   *res;
	json_t     *obj;
	int         rv;

	rv = ctl_parse(argc, argv, o, ARRAY_SIZE(o));
	if (rv != 0)
		return rv;
	if (o[K_NAME].set && !ctl_text_ok(o[K_NAME].val, 100)) {
		ctl_err("bad --name (1..100 characters)");
		return -ERR_INVAL;
	}
	rv = ctl_resolve_user(c, o[K_USER].val, uid);
	if (rv == 0 && o[K_GROUP].set)
		rv = ctl_resolve_group(c, o[K_GROUP].val, gid);
	if (rv != 0)
		return rv;
	rv = crypto_token(CTL_KEY_PREFIX, CTL_KEY_BYTES, key, sizeof(key));
	if (rv != 0)
		return rv;
	crypto_sha256_hex(key, strlen(key), hash);
	memcpy(prefix, key, CTL_KEY_PREFIX_LEN); /* the key is longer */
	prefix[CTL_KEY_PREFIX_LEN] = '\0';
	p[0] = uid;
	p[1] = hash;
	p[2] = prefix;
	p[3] = o[K_NAME].set ? o[K_NAME].val : "";
	p[4] = o[K_GROUP].set ? gid : NULL;
	rv = pg_exec(c->conn,
	    "INSERT INTO api_keys (user_id, key_hash, key_prefix, name,"
	    " group_id) VALUES ($1::bigint, $2, $3, $4, $5::bigint)"
	    " RETURNING id, user_id, name, key_prefix, group_id, status,"
	    "  created_at",
	    5, p, &res);
	if (rv != 0)
		return ctl_db_fail(c, rv, "adding the key");
	obj = ctl_row_json(res, 0);
	PQclear(res);
	json_object_set_new(obj, "key", json_string(key));
	ctl_emit_obj(c, obj);
	if (!c->json)
		fputs("sub2apictl: store this key now; it cannot be shown "
		      "again\n",
		    stderr);
	explicit_bzero(key, sizeof(key));
	return 0;
}

int
ctl_cmd_key_list(struct ctl *c, int argc, char **argv)
{
	return ctl_list(c, argc, argv,
	    "SELECT k.id, u.email AS \"user\", k.name, k.key_prefix,"
	    " g.name AS \"group\", k.status, k.last_used_at, k.created_at"
	    " FROM api_keys k JOIN users u ON u.id = k.user_id"
	    " LEFT JOIN groups g ON g.id = k.group_id"
	    " WHERE k.deleted_at IS NULL ORDER BY k.id",
	    "listing keys");
}
