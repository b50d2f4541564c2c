/*
 * ctl_group.c: "group add" and "group list".
 */
#include <libpq-fe.h>

#include "ctl.h"
#include "err.h"
#include "pg.h"

enum {
	G_NAME,
	G_PLATFORM,
	G_MULT,
	G_SUB,
	G_EXCL,
	G_FAILFAST,
	G_DESC,
	G_DAILY,
	G_WEEKLY,
	G_MONTHLY,
};

/* A limit of numeric(20,8): 12 integer and 8 fraction digits, or NULL. */
static int
ctl_group_limit(const struct ctl_opt *o, const char **out)
{
	if (!o->set) {
		*out = NULL;
		return 0;
	}
	if (!ctl_decimal_ok(o->val, 12, 8, false)) {
		ctl_err("bad --%s '%s': want a non-negative decimal", o->name,
		    o->val);
		return -ERR_INVAL;
	}
	*out = o->val;
	return 0;
}

int
ctl_cmd_group_add(struct ctl *c, int argc, char **argv)
{
	struct ctl_opt o[] = {
	    [G_NAME] = {"name", CTL_ARG, true},
	    [G_PLATFORM] = {"platform", CTL_ARG, false},
	    [G_MULT] = {"multiplier", CTL_ARG, false},
	    [G_SUB] = {"subscription", CTL_FLAG, false},
	    [G_EXCL] = {"exclusive", CTL_FLAG, false},
	    [G_FAILFAST] = {"fail-fast", CTL_FLAG, false},
	    [G_DESC] = {"description", CTL_ARG, false},
	    [G_DAILY] = {"daily-limit", CTL_ARG, false},
	    [G_WEEKLY] = {"weekly-limit", CTL_ARG, false},
	    [G_MONTHLY] = {"monthly-limit", CTL_ARG, false},
	};
	const char *p[10];
	PGresult   *res;
	int         rv;

	rv = ctl_parse(argc, argv, o, ARRAY_SIZE(o));
	if (rv != 0)
		return rv;
	if (!ctl_text_ok(o[G_NAME].val, 100)) {
		ctl_err(
		    "bad --name (1..100 characters, no control characters)");
		return -ERR_INVAL;
	}
	p[0] = o[G_NAME].val;
	p[1] = o[G_PLATFORM].set ? o[G_PLATFORM].val : "anthropic";
	if (!ctl_platform_ok(p[1])) {
		ctl_err("bad --platform '%s' (anthropic, openai, gemini, "
		        "antigravity)",
		    p[1]);
		return -ERR_INVAL;
	}
	p[2] = o[G_MULT].set ? o[G_MULT].val : "1.0";
	if (!ctl_decimal_ok(p[2], 6, 4, false)) {
		ctl_err("bad --multiplier '%s': want a non-negative decimal "
		        "with at most 4 fraction digits",
		    p[2]);
		return -ERR_INVAL;
	}
	p[3] = o[G_SUB].set ? "subscription" : "standard";
	p[4] = o[G_EXCL].set ? "true" : "false";
	p[5] = o[G_FAILFAST].set ? "true" : "false";
	if (o[G_DESC].set && strlen(o[G_DESC].val) > 2000) {
		ctl_err("--description is longer than 2000 bytes");
		return -ERR_INVAL;
	}
	p[6] = o[G_DESC].set ? o[G_DESC].val : "";
	if (ctl_group_limit(&o[G_DAILY], &p[7]) != 0 ||
	    ctl_group_limit(&o[G_WEEKLY], &p[8]) != 0 ||
	    ctl_group_limit(&o[G_MONTHLY], &p[9]) != 0)
		return -ERR_INVAL;
	rv = ctl_db(c);
	if (rv != 0)
		return rv;
	rv = pg_exec(c->conn,
	    "INSERT INTO groups (name, platform, rate_multiplier,"
	    " subscription_type, is_exclusive, fail_fast, description,"
	    " daily_limit_usd, weekly_limit_usd, monthly_limit_usd)"
	    " VALUES ($1, $2, $3::numeric, $4, $5::boolean, $6::boolean, $7,"
	    "  $8::numeric, $9::numeric, $10::numeric)"
	    " RETURNING id, name, platform, rate_multiplier, subscription_type,"
	    "  is_exclusive, fail_fast, status, daily_limit_usd,"
	    "  weekly_limit_usd, monthly_limit_usd, created_at",
	    10, p, &res);
	if (rv == -ERR_EXISTS) {
		ctl_err("a group named %s already exists", p[0]);
		return rv;
	}
	if (rv != 0)
		return ctl_db_fail(c, rv, "adding the group");
	ctl_emit_obj(c, ctl_row_json(res, 0));
	PQclear(res);
	return 0;
}

int
ctl_cmd_group_list(struct ctl *c, int argc, char **argv)
{
	return ctl_list(c, argc, argv,
	    "SELECT g.id, g.name, g.platform, g.rate_multiplier,"
	    " g.subscription_type, g.is_exclusive, g.fail_fast, g.status,"
	    " (SELECT count(*) FROM account_groups ag"
	    "  JOIN accounts a ON a.id = ag.account_id AND a.deleted_at IS NULL"
	    "  WHERE ag.group_id = g.id) AS accounts,"
	    " g.created_at"
	    " FROM groups g WHERE g.deleted_at IS NULL ORDER BY g.id",
	    "listing groups");
}
