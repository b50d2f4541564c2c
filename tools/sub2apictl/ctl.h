/*
 * ctl.h: private interface of sub2apictl, the admin command-line tool.
 *
 * main.c parses the global options and dispatches to one ctl_cmd_* per
 * command; each command parses its own options with ctl_parse(), checks
 * every value with the strict validators below before any database work,
 * and talks to PostgreSQL only through parameterized statements (values
 * travel as text parameters; amounts are cast to numeric in SQL, never
 * through a double).
 *
 * Commands return 0 or -ERR_x after printing a message with ctl_err();
 * ctl_exit_code() turns that into the exit status: 2 for bad input
 * (-ERR_INVAL, -ERR_NOTFOUND, -ERR_EXISTS, -ERR_CONFIG, -ERR_TOOBIG), 1 for
 * anything else (database, I/O, conflicts).
 */
#ifndef CTL_H
#define CTL_H

#include <jansson.h>
#include <libpq-fe.h>

#include "compat.h"
#include "crypto.h"

struct pg_conn;
struct pg_pool;

#define CTL_MULTI_MAX    16
#define CTL_FILE_MAX     (64 * 1024) /* --credentials @file */
#define CTL_DB_TIMEOUTMS 10000

struct ctl {
	const char     *dsn;        /* borrowed from argv/env */
	const char     *migrations; /* borrowed or owned by main */
	bool            json;
	struct pg_pool *pool; /* opened by ctl_db() */
	struct pg_conn *conn;
};

enum ctl_opt_kind {
	CTL_FLAG,  /* --name */
	CTL_ARG,   /* --name value or --name=value */
	CTL_MULTI, /* repeatable --name value */
};

struct ctl_opt {
	const char       *name; /* without the leading "--" */
	enum ctl_opt_kind kind;
	bool              required;
	/* Filled by ctl_parse(); values are borrowed from argv. */
	bool        set;
	const char *val;
	const char *vals[CTL_MULTI_MAX];
	int         nvals;
};

/*
 * Parses argv[0..argc) against opts; everything must be an option.
 * Unknown options, missing values, repeated single options and missing
 * required ones print a message and return -ERR_INVAL.
 */
int ctl_parse(
    int argc, char **argv, struct ctl_opt *opts, size_t nopts) WARN_UNUSED;

/* Prints "sub2apictl: <message>" on stderr. */
void ctl_err(const char *fmt, ...) PRINTF_LIKE(1, 2);
int  ctl_exit_code(int rv);

/*
 * Strict validators (pure, unit-tested).  ctl_decimal_ok accepts
 * [-]digits[.digits] with 1..max_int integer digits and 0..max_frac
 * fraction digits; nothing else (no exponent, no spaces, no "+", no ".5").
 */
bool ctl_decimal_ok(const char *s, int max_int, int max_frac, bool allow_neg);
bool ctl_decimal_is_neg(const char *s);
int  ctl_parse_int(
     const char *s, long long min, long long max, long long *out) WARN_UNUSED;
bool ctl_email_ok(const char *s);
bool ctl_text_ok(const char *s, size_t max); /* 1..max bytes, no controls */
bool ctl_is_id(const char *s);               /* 1..18 digits, not 0 */
bool ctl_platform_ok(const char *s);
bool ctl_url_ok(const char *s);

/*
 * Reads an option value that may be "@path" (file, at most max bytes)
 * into an owned NUL-terminated string.
 */
int ctl_read_value(const char *arg, size_t max, char **out) WARN_UNUSED;

/* Opens the database (pool of one) on first use. */
int  ctl_db(struct ctl *c) WARN_UNUSED;
void ctl_db_close(struct ctl *c);

/* Resolves "ID|email" / "ID|name" of a live row to its id (decimal). */
int ctl_resolve_user(struct ctl *c, const char *arg, char id[24]) WARN_UNUSED;
int ctl_resolve_group(struct ctl *c, const char *arg, char id[24]) WARN_UNUSED;

/*
 * The same for any table: by_id (when arg looks like an id) or by_name,
 * each a one-parameter query of a live row's id; what names the kind in
 * messages.  -ERR_NOTFOUND unless exactly one row matches.
 */
int ctl_resolve_named(struct ctl *c, const char *arg, const char *by_id,
    const char *by_name, const char *what, char id[24]) WARN_UNUSED;
int ctl_resolve_proxy(struct ctl *c, const char *arg, char id[24]) WARN_UNUSED;

/* Proxy validators: protocol http|https|socks5; host as ctl_proxy.c. */
bool ctl_proxy_protocol_ok(const char *s);
bool ctl_proxy_host_ok(const char *s);

/* Reports a failed statement: what was being done plus the DB message. */
int ctl_db_fail(struct ctl *c, int rv, const char *what);

/*
 * Result rows as JSON: integers and booleans typed, NULL as null, all
 * else (numeric, text, timestamps) as strings, so amounts stay exact.
 * Returns a new reference.
 */
json_t *ctl_row_json(const void *res, int row);

/*
 * Prints one object (takes the reference): JSON on one line, or
 * "key: value" lines.  ctl_emit_rows prints every row of res (borrowed):
 * a JSON array, or a tab-separated table with a header.
 */
void ctl_emit_obj(const struct ctl *c, json_t *obj);
void ctl_emit_rows(const struct ctl *c, const void *res);

/*
 * A "list" command: takes no options, runs the fixed query sql (no
 * parameters) and prints its rows; what names the step in a DB error.
 */
/*
 * Pieces of the "add" commands that store a secret: draws the next id of
 * table's serial into id (within the caller's transaction); seals pt with
 * key under aad into *hex, the bytea text form "\x..." (owned: free());
 * reads the new row back with sql ($1 = id) and commits, handing the
 * result to *out.  Each reports its own failure (what names the row).
 */
int ctl_next_id(struct ctl *c, const char *table, char id[24]) WARN_UNUSED;
int ctl_seal_hex(const struct crypto_key *key, const char *aad, const char *pt,
    char **hex) WARN_UNUSED;
int ctl_read_back_commit(struct ctl *c, const char *sql, const char *id,
    const char *what, PGresult **out) WARN_UNUSED;

int ctl_list(
    struct ctl *c, int argc, char **argv, const char *sql, const char *what);

/* The commands; argv starts after the command words. */
int ctl_cmd_migrate(struct ctl *c, int argc, char **argv);
int ctl_cmd_user_add(struct ctl *c, int argc, char **argv);
int ctl_cmd_user_list(struct ctl *c, int argc, char **argv);
int ctl_cmd_group_add(struct ctl *c, int argc, char **argv);
int ctl_cmd_group_list(struct ctl *c, int argc, char **argv);
int ctl_cmd_key_add(struct ctl *c, int argc, char **argv);
int ctl_cmd_key_list(struct ctl *c, int argc, char **argv);
int ctl_cmd_account_add(struct ctl *c, int argc, char **argv);
int ctl_cmd_account_list(struct ctl *c, int argc, char **argv);
int ctl_cmd_account_set_proxy(struct ctl *c, int argc, char **argv);
int ctl_cmd_proxy_add(struct ctl *c, int argc, char **argv);
int ctl_cmd_proxy_list(struct ctl *c, int argc, char **argv);
int ctl_cmd_balance(struct ctl *c, bool set, int argc, char **argv);
int ctl_cmd_setting_set(struct ctl *c, int argc, char **argv);
int ctl_cmd_setting_unset(struct ctl *c, int argc, char **argv);
int ctl_cmd_setting_list(struct ctl *c, int argc, char **argv);
int ctl_cmd_rate_set(struct ctl *c, int argc, char **argv);
int ctl_cmd_rate_unset(struct ctl *c, int argc, char **argv);
int ctl_cmd_rate_list(struct ctl *c, int argc, char **argv);

#endif /* CTL_H */
