/*
 * ctl_rate.c: "rate set", "rate unset" and "rate list": a user's own rate
 * multiplier in a group (user_group_rate_multipliers), which replaces the
 * group's multiplier for that user.
 *
 * Nothing is published: billing reads the rows with each batch, so a new
 * multiplier prices the next usage event; the scheduler's key cache
 * reports the old value in its decisions until its entry is dropped (a
 * config-changed event from webui, or key_cache_ttl).
 */
#include <libpq-fe.h>

#include "ctl.h"
#include "err.h"
#include "pg.h"

enum { R_USER, R_GROUP, R_MULT };

/* Resolves --user and --group into ids (each reports its own failure). */
static int
ctl_rate_ids(struct ctl *c, struct ctl_opt *o, char uid[24], char gid[24])
{
	int rv = ctl_db(c);

	if (rv == 0)
		rv = ctl_resolve_user(c, o[R_USER].val, uid);
	if (rv == 0)
		rv = ctl_resolve_group(c, o[R_GROUP].val, gid);
	return rv;
}

int
ctl_cmd_rate_set(struct ctl *c, int argc, char **argv)
{
	struct ctl_opt o[] = {
	    [R_USER] = {"user", CTL_ARG, true},
	    [R_GROUP] = {"group", CTL_ARG, true},
	    [R_MULT] = {"multiplier", CTL_ARG, true},
	};
	char        uid[24], gid[24];
	const char *p[3];
	PGresult   *res;
	int         rv;

	rv = ctl_parse(argc, argv, o, ARRAY_SIZE(o));
	if (rv != 0)
		return rv;
	if (!ctl_decimal_ok(o[R_MULT].val, 6, 4, false)) {
		ctl_err("bad --multiplier '%s': want a non-negative decimal "
		        "with at most 4 fraction digits",
		    o[R_MULT].val);
		return -ERR_INVAL;
	}
	rv = ctl_rate_ids(c, o, uid, gid);
	if (rv != 0)
		return rv;
	p[0] = uid;
	p[1] = gid;
	p[2] = o[R_MULT].val;
	rv = pg_exec(c->conn,
	    "INSERT INTO user_group_rate_multipliers"
	    " (user_id, group_id, rate_multiplier)"
	    " VALUES ($1::bigint, $2::bigint, $3::numeric)"
	    " ON CONFLICT (user_id, group_id)"
	    " DO UPDATE SET rate_multiplier = EXCLUDED.rate_multiplier"
	    " RETURNING user_id, group_id, rate_multiplier, updated_at",
	    3, p, &res);
	if (rv != 0)
		return ctl_db_fail(c, rv, "storing the multiplier");
	ctl_emit_obj(c, ctl_row_json(res, 0));
	PQclear(res);
	return 0;
}

int
ctl_cmd_rate_unset(struct ctl *c, int argc, char **argv)
{
	struct ctl_opt o[] = {
	    [R_USER] = {"user", CTL_ARG, true},
	    [R_GROUP] = {"group", CTL_ARG, true},
	};
	char        uid[24], gid[24];
	const char *p[2];
	PGresult   *res;
	int         rv;

	rv = ctl_parse(argc, argv, o, ARRAY_SIZE(o));
	if (rv == 0)
		rv = ctl_rate_ids(c, o, uid, gid);
	if (rv != 0)
		return rv;
	p[0] = uid;
	p[1] = gid;
	rv = pg_exec(c->conn,
	    "DELETE FROM user_group_rate_multipliers"
	    " WHERE user_id = $1::bigint AND group_id = $2::bigint"
	    " RETURNING user_id, group_id, rate_multiplier",
	    2, p, &res);
	if (rv != 0)
		return ctl_db_fail(c, rv, "deleting the multiplier");
	if (PQntuples(res) != 1) {
		PQclear(res);
		ctl_err("user %s has no multiplier of its own in group %s",
		    o[R_USER].val, o[R_GROUP].val);
		return -ERR_NOTFOUND;
	}
	ctl_emit_obj(c, ctl_row_json(res, 0));
	PQclear(res);
	return 0;
}

int
ctl_cmd_rate_list(struct ctl *c, int argc, char **argv)
{
	return ctl_list(c, argc, argv,
	    "SELECT r.user_id, u.email, r.group_id, g.name AS group_name,"
	    " g.rate_multiplier AS group_multiplier, r.rate_multiplier,"
	    " r.updated_at"
	    " FROM user_group_rate_multipliers r"
	    " JOIN users u ON u.id = r.user_id"
	    " JOIN groups g ON g.id = r.group_id"
	    " ORDER BY r.user_id, r.group_id",
	    "listing multipliers");
}
