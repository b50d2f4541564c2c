/*
 * ctl_user.c: "user add", "user list" and "balance set|add".
 *
 * Every balance change writes its balance_ledger row (kind admin_adjust)
 * in the same statement as the update, so the ledger always sums to the
 * balance.  Amounts are validated as exact decimal strings and cast to
 * numeric by PostgreSQL.
 */
#include <libpq-fe.h>
#include <stdio.h>

#include "crypto.h"
#include "ctl.h"
#include "err.h"
#include "pg.h"

/* numeric(24,10): 14 integer digits, 10 fraction digits. */
#define CTL_BAL_INT  14
#define CTL_BAL_FRAC 10

enum { U_EMAIL, U_PASSWORD, U_ROLE, U_BALANCE, U_CONC, U_USERNAME };

int
ctl_cmd_user_add(struct ctl *c, int argc, char **argv)
{
	struct ctl_opt o[] = {
	    [U_EMAIL] = {"email", CTL_ARG, true},
	    [U_PASSWORD] = {"password", CTL_ARG, false},
	    [U_ROLE] = {"role", CTL_ARG, false},
	    [U_BALANCE] = {"balance", CTL_ARG, false},
	    [U_CONC] = {"concurrency", CTL_ARG, false},
	    [U_USERNAME] = {"username", CTL_ARG, false},
	};
	char        pwgen[33], hash[CRYPTO_PW_HASH_MAX];
	const char *pw, *role, *bal, *conc, *p[6];
	long long   n;
	PGresult   *res;
	json_t     *obj;
	int         rv;

	rv = ctl_parse(argc, argv, o, ARRAY_SIZE(o));
	if (rv != 0)
		return rv;
	if (!ctl_email_ok(o[U_EMAIL].val)) {
		ctl_err("bad --email '%s'", o[U_EMAIL].val);
		return -ERR_INVAL;
	}
	role = o[U_ROLE].set ? o[U_ROLE].val : "user";
	if (strcmp(role, "admin") != 0 && strcmp(role, "user") != 0) {
		ctl_err("--role must be admin or user");
		return -ERR_INVAL;
	}
	bal = o[U_BALANCE].set ? o[U_BALANCE].val : "0";
	if (!ctl_decimal_ok(bal, CTL_BAL_INT, CTL_BAL_FRAC, false)) {
		ctl_err("bad --balance '%s': want a non-negative decimal with "
		        "at most %d integer and %d fraction digits",
		    bal, CTL_BAL_INT, CTL_BAL_FRAC);
		return -ERR_INVAL;
	}
	conc = o[U_CONC].set ? o[U_CONC].val : "5";
	if (ctl_parse_int(conc, 0, 100000, &n) != 0) {
		ctl_err("bad --concurrency '%s' (0..100000)", conc);
		return -ERR_INVAL;
	}
	if (o[U_USERNAME].set && !ctl_text_ok(o[U_USERNAME].val, 100)) {
		ctl_err("bad --username (1..100 characters)");
		return -ERR_INVAL;
	}
	if (o[U_PASSWORD].set) {
		pw = o[U_PASSWORD].val;
		if (strlen(pw) < 8 || strlen(pw) > 128) {
			ctl_err("--password must be 8..128 characters");
			return -ERR_INVAL;
		}
	} else {
		rv = crypto_random_hex(12, pwgen, sizeof(pwgen));
		if (rv != 0)
			return rv;
		pw = pwgen;
	}
	rv = crypto_pw_hash(pw, hash, sizeof(hash));
	if (rv != 0) {
		ctl_err("password hashing failed");
		return rv;
	}
	rv = ctl_db(c);
	if (rv != 0)
		return rv;
	p[0] = o[U_EMAIL].val;
	p[1] = hash;
	p[2] = role;
	p[3] = bal;
	p[4] = conc;
	p[5] = o[U_USERNAME].set ? o[U_USERNAME].val : "";
	rv = pg_exec(c->conn,
	    "WITH u AS ("
	    " INSERT INTO users (email, password_hash, role, balance,"
	    "  concurrency, username)"
	    " VALUES ($1, $2, $3, $4::numeric, $5::integer, $6)"
	    " RETURNING id, email, role, status, balance, concurrency,"
	    "  username, created_at),"
	    "l AS ("
	    " INSERT INTO balance_ledger (user_id, delta, balance_after, kind,"
	    "  ref, note)"
	    " SELECT id, balance, balance, 'admin_adjust', 'sub2apictl',"
	    "  'initial balance' FROM u WHERE balance <> 0)"
	    "SELECT * FROM u",
	    6, p, &res);
	if (rv == -ERR_EXISTS) {
		ctl_err("a user with email %s already exists", o[U_EMAIL].val);
		return rv;
	}
	if (rv != 0)
		return ctl_db_fail(c, rv, "adding the user");
	obj = ctl_row_json(res, 0);
	PQclear(res);
	if (!o[U_PASSWORD].set)
		json_object_set_new(obj, "password", json_string(pwgen));
	ctl_emit_obj(c, obj);
	return 0;
}

int
ctl_cmd_user_list(struct ctl *c, int argc, char **argv)
{
	return ctl_list(c, argc, argv,
	    "SELECT id, email, role, status, balance, concurrency, username,"
	    " token_version, created_at"
	    " FROM users WHERE deleted_at IS NULL ORDER BY id",
	    "listing users");
}

/*
 * One statement: lock the row, update the balance unless the result would
 * be negative, and insert the ledger row with the exact delta.
 */
static const char ctl_bal_set_sql[] =
    "WITH old AS ("
    " SELECT id, balance FROM users"
    " WHERE id = $1::bigint AND deleted_at IS NULL FOR UPDATE),"
    "upd AS ("
    " UPDATE users u SET balance = $2::numeric FROM old"
    " WHERE u.id = old.id AND $2::numeric >= 0"
    " RETURNING u.id, u.email, old.balance AS old_balance, u.balance),"
    "led AS ("
    " INSERT INTO balance_ledger (user_id, delta, balance_after, kind, ref,"
    "  note)"
    " SELECT id, balance - old_balance, balance, 'admin_adjust',"
    "  'sub2apictl', $3 FROM upd RETURNING id)"
    "SELECT upd.id AS user_id, upd.email, upd.old_balance,"
    " upd.balance - upd.old_balance AS delta, upd.balance,"
    " (SELECT id FROM led) AS ledger_id FROM upd";

static const char ctl_bal_add_sql[] =
    "WITH old AS ("
    " SELECT id, balance FROM users"
    " WHERE id = $1::bigint AND deleted_at IS NULL FOR UPDATE),"
    "upd AS ("
    " UPDATE users u SET balance = old.balance + $2::numeric FROM old"
    " WHERE u.id = old.id AND old.balance + $2::numeric >= 0"
    " RETURNING u.id, u.email, old.balance AS old_balance, u.balance),"
    "led AS ("
    " INSERT INTO balance_ledger (user_id, delta, balance_after, kind, ref,"
    "  note)"
    " SELECT id, balance - old_balance, balance, 'admin_adjust',"
    "  'sub2apictl', $3 FROM upd RETURNING id)"
    "SELECT upd.id AS user_id, upd.email, upd.old_balance,"
    " upd.balance - upd.old_balance AS delta, upd.balance,"
    " (SELECT id FROM led) AS ledger_id FROM upd";

enum { B_USER, B_AMOUNT, B_NOTE };

int
ctl_cmd_balance(struct ctl *c, bool set, int argc, char **argv)
{
	struct ctl_opt o[] = {
	    [B_USER] = {"user", CTL_ARG, true},
	    [B_AMOUNT] = {"amount", CTL_ARG, true},
	    [B_NOTE] = {"note", CTL_ARG, false},
	};
	const char *amt, *p[3];
	char        id[24];
	PGresult   *res;
	int         rv;

	rv = ctl_parse(argc, argv, o, ARRAY_SIZE(o));
	if (rv != 0)
		return rv;
	amt = o[B_AMOUNT].val;
	if (!ctl_decimal_ok(amt, CTL_BAL_INT, CTL_BAL_FRAC, !set)) {
		ctl_err("bad --amount '%s': want a %sdecimal like 12.5 with at "
		        "most %d integer and %d fraction digits",
		    amt, set ? "non-negative " : "", CTL_BAL_INT, CTL_BAL_FRAC);
		return -ERR_INVAL;
	}
	if (o[B_NOTE].set && strlen(o[B_NOTE].val) > 1000) {
		ctl_err("--note is longer than 1000 bytes");
		return -ERR_INVAL;
	}
	rv = ctl_resolve_user(c, o[B_USER].val, id);
	if (rv != 0)
		return rv;
	p[0] = id;
	p[1] = amt;
	p[2] = o[B_NOTE].set ? o[B_NOTE].val : "";
	rv = pg_exec(
	    c->conn, set ? ctl_bal_set_sql : ctl_bal_add_sql, 3, p, &res);
	if (rv == -ERR_INVAL) {
		ctl_err("amount out of range: %s", pg_errmsg(c->conn));
		return rv;
	}
	if (rv != 0)
		return ctl_db_fail(c, rv, "changing the balance");
	if (PQntuples(res) != 1) {
		PQclear(res);
		ctl_err("refused: the balance would become negative");
		return -ERR_INVAL;
	}
	ctl_emit_obj(c, ctl_row_json(res, 0));
	PQclear(res);
	return 0;
}
