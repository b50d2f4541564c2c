/*
 * ctl_setting.c: "setting set", "setting unset" and "setting list": the
 * rows of the settings table (key, value), e.g. the scheduler's
 * sticky_session_ttl_seconds.
 *
 * Nothing is published: the services that obey a setting reload the
 * table periodically (the scheduler every settings_reload_interval), and
 * announcing changes at once is webui's job.  Values are stored as given;
 * each service checks the keys it knows and refuses a bad value with a
 * log line, keeping its configured default.  Keys are 1..100 bytes of
 * [a-z0-9_.-] so they never need quoting anywhere.
 */
#include <libpq-fe.h>
#include <stdio.h>

#include "ctl.h"
#include "err.h"
#include "pg.h"

#define CTL_SETTING_KEY_MAX   100
#define CTL_SETTING_VALUE_MAX (64 * 1024)

enum { ST_KEY, ST_VALUE };

static bool
ctl_setting_key_ok(const char *k)
{
	size_t i;

	for (i = 0; k[i] != '\0'; i++)
		if (!((k[i] >= 'a' && k[i] <= 'z') ||
		        (k[i] >= '0' && k[i] <= '9') || k[i] == '_' ||
		        k[i] == '.' || k[i] == '-'))
			return false;
	return i > 0 && i <= CTL_SETTING_KEY_MAX;
}

int
ctl_cmd_setting_set(struct ctl *c, int argc, char **argv)
{
	struct ctl_opt o[] = {
	    [ST_KEY] = {"key", CTL_ARG, true},
	    [ST_VALUE] = {"value", CTL_ARG, true},
	};
	const char *p[2];
	char       *value = NULL;
	PGresult   *res;
	int         rv;

	rv = ctl_parse(argc, argv, o, ARRAY_SIZE(o));
	if (rv != 0)
		return rv;
	if (!ctl_setting_key_ok(o[ST_KEY].val)) {
		ctl_err(
		    "bad --key (1..%d of a-z 0-9 _ . -)", CTL_SETTING_KEY_MAX);
		return -ERR_INVAL;
	}
	/* "" is a value: it clears a setting whose service reads it so. */
	rv = ctl_read_value(o[ST_VALUE].val, CTL_SETTING_VALUE_MAX, &value);
	if (rv == -ERR_TOOBIG)
		ctl_err(
		    "--value is larger than %d bytes", CTL_SETTING_VALUE_MAX);
	if (rv == 0 && value[0] != '\0' &&
	    !ctl_text_ok(value, CTL_SETTING_VALUE_MAX)) {
		ctl_err("bad --value (no control characters)");
		rv = -ERR_INVAL;
	}
	if (rv == 0)
		rv = ctl_db(c);
	if (rv != 0) {
		free(value);
		return rv;
	}
	p[0] = o[ST_KEY].val;
	p[1] = value;
	rv = pg_exec(c->conn,
	    "INSERT INTO settings (key, value) VALUES ($1, $2)"
	    " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
	    " RETURNING key, value, updated_at",
	    2, p, &res);
	free(value);
	if (rv != 0)
		return ctl_db_fail(c, rv, "storing the setting");
	ctl_emit_obj(c, ctl_row_json(res, 0));
	PQclear(res);
	return 0;
}

int
ctl_cmd_setting_unset(struct ctl *c, int argc, char **argv)
{
	struct ctl_opt o[] = {
	    [ST_KEY] = {"key", CTL_ARG, true},
	};
	const char *p[1];
	PGresult   *res;
	int         rv;

	rv = ctl_parse(argc, argv, o, ARRAY_SIZE(o));
	if (rv != 0)
		return rv;
	if (!ctl_setting_key_ok(o[ST_KEY].val)) {
		ctl_err(
		    "bad --key (1..%d of a-z 0-9 _ . -)", CTL_SETTING_KEY_MAX);
		return -ERR_INVAL;
	}
	rv = ctl_db(c);
	if (rv != 0)
		return rv;
	p[0] = o[ST_KEY].val;
	rv = pg_exec(c->conn,
	    "DELETE FROM settings WHERE key = $1 RETURNING key", 1, p, &res);
	if (rv != 0)
		return ctl_db_fail(c, rv, "deleting the setting");
	if (PQntuples(res) != 1) {
		PQclear(res);
		ctl_err("no setting '%s'", o[ST_KEY].val);
		return -ERR_NOTFOUND;
	}
	ctl_emit_obj(c, ctl_row_json(res, 0));
	PQclear(res);
	return 0;
}

int
ctl_cmd_setting_list(struct ctl *c, int argc, char **argv)
{
	return ctl_list(c, argc, argv,
	    "SELECT key, value, updated_at FROM settings ORDER BY key",
	    "listing settings");
}
