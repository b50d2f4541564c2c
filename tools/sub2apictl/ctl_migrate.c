/*
 * ctl_migrate.c: "sub2apictl migrate": applies pending migrations and
 * reports how many; refuses (exit 1) when history and files disagree.
 */
#include <stdio.h>

#include "ctl.h"
#include "err.h"
#include "migrate.h"

int
ctl_cmd_migrate(struct ctl *c, int argc, char **argv)
{
	struct migrate_report rep;
	json_t               *o;
	int                   rv;

	rv = ctl_parse(argc, argv, NULL, 0);
	if (rv != 0)
		return rv;
	rv = ctl_db(c);
	if (rv != 0)
		return rv;
	rv = migrate_run(c->conn, c->migrations, &rep);
	if (rv != 0) {
		ctl_err("migrate refused: %s", rep.msg);
		if (c->json) {
			o = json_pack("{s:b, s:s, s:s, s:s, s:s, s:i}", "ok", 0,
			    "error", rep.msg, "file", rep.file, "recorded",
			    rep.recorded, "actual", rep.actual, "applied",
			    rep.applied);
			ctl_emit_obj(c, o);
		}
		return rv;
	}
	if (c->json) {
		o = json_pack("{s:b, s:i, s:i, s:s}", "ok", 1, "applied",
		    rep.applied, "total", rep.total, "status",
		    rep.applied > 0 ? "applied" : "up_to_date");
		ctl_emit_obj(c, o);
	} else if (rep.applied > 0) {
		printf("applied %d migration%s (%d total)\n", rep.applied,
		    rep.applied == 1 ? "" : "s", rep.total);
	} else {
		printf("up to date (%d migrations, 0 applied)\n", rep.total);
	}
	return 0;
}
