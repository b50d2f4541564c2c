/*
 * ctl_util.c: option parsing, validators, database opening, id
 * resolution and output formatting shared by the sub2apictl commands.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "ctl.h"
#include "err.h"
#include "pg.h"

void
ctl_err(const char *fmt, ...)
{
	va_list ap;

	fputs("sub2apictl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int
ctl_exit_code(int rv)
{
	switch (rv) {
	case 0:
		return 0;
	case -ERR_INVAL:
	case -ERR_NOTFOUND:
	case -ERR_EXISTS:
	case -ERR_CONFIG:
	case -ERR_TOOBIG:
		return 2;
	default:
		return 1;
	}
}

static struct ctl_opt *
ctl_opt_find(struct ctl_opt *opts, size_t nopts, const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < nopts; i++) {
		if (strlen(opts[i].name) == len &&
		    strncmp(opts[i].name, name, len) == 0)
			return &opts[i];
	}
	return NULL;
}

int
ctl_parse(int argc, char **argv, struct ctl_opt *opts, size_t nopts)
{
	size_t i;
	int    a;

	for (a = 0; a < argc; a++) {
		const char     *arg = argv[a], *eq, *val = NULL;
		struct ctl_opt *o;
		size_t          len;

		if (strncmp(arg, "--", 2) != 0) {
			ctl_err("unexpected argument '%s'", arg);
			return -ERR_INVAL;
		}
		eq = strchr(arg + 2, '=');
		len = eq != NULL ? (size_t)(eq - arg - 2) : strlen(arg + 2);
		o = ctl_opt_find(opts, nopts, arg + 2, len);
		if (o == NULL) {
			ctl_err("unknown option '%.*s'", (int)len + 2, arg);
			return -ERR_INVAL;
		}
		if (o->kind == CTL_FLAG) {
			if (eq != NULL) {
				ctl_err("option --%s takes no value", o->name);
				return -ERR_INVAL;
			}
			o->set = true;
			continue;
		}
		if (eq != NULL) {
			val = eq + 1;
		} else if (a + 1 < argc) {
			val = argv[++a];
		} else {
			ctl_err("option --%s needs a value", o->name);
			return -ERR_INVAL;
		}
		if (o->kind == CTL_ARG && o->set) {
			ctl_err("option --%s given twice", o->name);
			return -ERR_INVAL;
		}
		if (o->kind == CTL_MULTI) {
			if (o->nvals >= CTL_MULTI_MAX) {
				ctl_err("option --%s given more than %d times",
				    o->name, CTL_MULTI_MAX);
				return -ERR_INVAL;
			}
			o->vals[o->nvals++] = val;
		}
		o->set = true;
		o->val = val;
	}
	for (i = 0; i < nopts; i++) {
		if (opts[i].required && !opts[i].set) {
			ctl_err("option --%s is required", opts[i].name);
			return -ERR_INVAL;
		}
	}
	return 0;
}

bool
ctl_decimal_ok(const char *s, int max_int, int max_frac, bool allow_neg)
{
	int nint = 0, nfrac = 0;

	if (*s == '-') {
		if (!allow_neg)
			return false;
		s++;
	}
	while (*s >= '0' && *s <= '9') {
		nint++;
		s++;
	}
	if (nint == 0 || nint > max_int)
		return false;
	if (*s == '.') {
		s++;
		while (*s >= '0' && *s <= '9') {
			nfrac++;
			s++;
		}
		if (nfrac == 0)
			return false;
	}
	return *s == '\0' && nfrac <= max_frac;
}

bool
ctl_decimal_is_neg(const char *s)
{
	if (*s != '-')
		return false;
	/* "-0" and "-0.000" are not negative. */
	for (s++; *s != '\0'; s++) {
		if (*s >= '1' && *s <= '9')
			return true;
	}
	return false;
}

int
ctl_parse_int(const char *s, long long min, long long max, long long *out)
{
	const char *p = s;
	long long   v = 0;
	bool        neg = false;

	if (*p == '-') {
		neg = true;
		p++;
	}
	if (*p == '\0' || strlen(p) > 12)
		return -ERR_INVAL;
	for (; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return -ERR_INVAL;
		v = v * 10 + (*p - '0');
	}
	if (neg)
		v = -v;
	if (v < min || v > max)
		return -ERR_INVAL;
	*out = v;
	return 0;
}

bool
ctl_text_ok(const char *s, size_t max)
{
	size_t len = strlen(s), i;

	if (len == 0 || len > max)
		return false;
	for (i = 0; i < len; i++) {
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	}
	return true;
}

bool
ctl_email_ok(const char *s)
{
	const char *at = strchr(s, '@');
	size_t      i;

	if (!ctl_text_ok(s, 255) || at == NULL || at == s ||
	    strchr(at + 1, '@') != NULL)
		return false;
	if (strchr(at + 1, '.') == NULL || at[1] == '.' ||
	    s[strlen(s) - 1] == '.')
		return false;
	for (i = 0; s[i] != '\0'; i++) {
		if (isspace((unsigned char)s[i]))
			return false;
	}
	return true;
}

bool
ctl_is_id(const char *s)
{
	size_t len = strlen(s), i;

	if (len == 0 || len > 18 || s[0] == '0')
		return false;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
	}
	return true;
}

bool
ctl_platform_ok(const char *s)
{
	return strcmp(s, "anthropic") == 0 || strcmp(s, "openai") == 0 ||
	    strcmp(s, "gemini") == 0 || strcmp(s, "antigravity") == 0;
}

bool
ctl_url_ok(const char *s)
{
	size_t i;

	if (!ctl_text_ok(s, 2048))
		return false;
	if (strncmp(s, "https://", 8) != 0 && strncmp(s, "http://", 7) != 0)
		return false;
	for (i = 0; s[i] != '\0'; i++) {
		if (isspace((unsigned char)s[i]))
			return false;
	}
	return strlen(s) > (s[4] == 's' ? 8u : 7u);
}

int
ctl_read_value(const char *arg, size_t max, char **out)
{
	struct stat st;
	char       *p;
	size_t      got = 0;
	ssize_t     n;
	int         fd;

	if (arg[0] != '@') {
		if (strlen(arg) > max)
			return -ERR_TOOBIG;
		*out = xstrdup(arg);
		return 0;
	}
	fd = open(arg + 1, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0) {
		ctl_err("cannot read %s: %s", arg + 1, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -ERR_INVAL;
	}
	if (st.st_size < 0 || (size_t)st.st_size > max) {
		ctl_err("%s is larger than %zu bytes", arg + 1, max);
		close(fd);
		return -ERR_TOOBIG;
	}
	p = xmalloc((size_t)st.st_size + 1);
	while (got < (size_t)st.st_size) {
		n = read(fd, p + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	p[got] = '\0';
	*out = p;
	return 0;
}

int
ctl_db(struct ctl *c)
{
	char red[512];
	int  rv;

	if (c->conn != NULL)
		return 0;
	if (c->dsn == NULL || *c->dsn == '\0') {
		ctl_err(
		    "no database: pass --db DSN or set SUB2API_DATABASE_URL");
		return -ERR_CONFIG;
	}
	rv = pg_pool_new(c->dsn, 1, &c->pool);
	if (rv != 0) {
		ctl_err("cannot parse the database DSN");
		return rv;
	}
	rv = pg_acquire(c->pool, CTL_DB_TIMEOUTMS, &c->conn);
	if (rv != 0) {
		if (pg_dsn_redact(c->dsn, red, sizeof(red)) != 0)
			snprintf(red, sizeof(red), "(DSN too long)");
		ctl_err("cannot connect to %s: %s", red, err_str(rv));
		c->conn = NULL;
		return -ERR_UNAVAIL;
	}
	return 0;
}

void
ctl_db_close(struct ctl *c)
{
	pg_release(c->conn);
	c->conn = NULL;
	pg_pool_free(c->pool);
	c->pool = NULL;
}

int
ctl_db_fail(struct ctl *c, int rv, const char *what)
{
	ctl_err("%s: %s", what, pg_errmsg(c->conn));
	return rv;
}

static int
ctl_resolve(struct ctl *c, const char *arg, const char *by_id,
    const char *by_name, const char *what, char id[24])
{
	const char *p[1] = {arg};
	PGresult   *res;
	int         rv;

	rv = ctl_db(c);
	if (rv != 0)
		return rv;
	rv = pg_exec(c->conn, ctl_is_id(arg) ? by_id : by_name, 1, p, &res);
	if (rv != 0)
		return ctl_db_fail(c, rv, what);
	if (PQntuples(res) != 1) {
		PQclear(res);
		ctl_err("no such %s: %s", what, arg);
		return -ERR_NOTFOUND;
	}
	snprintf(id, 24, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return 0;
}

int
ctl_resolve_named(struct ctl *c, const char *arg, const char *by_id,
    const char *by_name, const char *what, char id[24])
{
	return ctl_resolve(c, arg, by_id, by_name, what, id);
}

int
ctl_resolve_user(struct ctl *c, const char *arg, char id[24])
{
	if (!ctl_text_ok(arg, 255)) {
		ctl_err("bad user reference");
		return -ERR_INVAL;
	}
	return ctl_resolve(c, arg,
	    "SELECT id FROM users WHERE id = $1::bigint AND deleted_at IS NULL",
	    "SELECT id FROM users WHERE lower(email) = lower($1) "
	    "AND deleted_at IS NULL",
	    "user", id);
}

int
ctl_resolve_group(struct ctl *c, const char *arg, char id[24])
{
	if (!ctl_text_ok(arg, 100)) {
		ctl_err("bad group reference");
		return -ERR_INVAL;
	}
	return ctl_resolve(c, arg,
	    "SELECT id FROM groups WHERE id = $1::bigint AND deleted_at IS NULL",
	    "SELECT id FROM groups WHERE name = $1 AND deleted_at IS NULL",
	    "group", id);
}

/* PostgreSQL type oids of the columns typed in JSON. */
enum {
	CTL_OID_BOOL = 16,
	CTL_OID_INT8 = 20,
	CTL_OID_INT2 = 21,
	CTL_OID_INT4 = 23,
};

json_t *
ctl_row_json(const void *r, int row)
{
	const PGresult *res = r;
	json_t         *o = json_object();
	int             i;

	for (i = 0; i < PQnfields(res); i++) {
		const char *v = PQgetvalue(res, row, i);
		json_t     *j;

		if (PQgetisnull(res, row, i)) {
			j = json_null();
		} else {
			switch (PQftype(res, i)) {
			case CTL_OID_BOOL:
				j = json_boolean(v[0] == 't');
				break;
			case CTL_OID_INT2:
			case CTL_OID_INT4:
			case CTL_OID_INT8:
				j = json_integer(strtoll(v, NULL, 10));
				break;
			default:
				j = json_string(v);
				if (j == NULL) /* not UTF-8 */
					j = json_null();
			}
		}
		json_object_set_new(o, PQfname(res, i), j);
	}
	return o;
}

static void
ctl_print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);

	if (s != NULL) {
		puts(s);
		free(s);
	}
}

void
ctl_emit_obj(const struct ctl *c, json_t *obj)
{
	const char *k;
	json_t     *v;

	if (c->json) {
		ctl_print_json(obj);
	} else {
		json_object_foreach(obj, k, v)
		{
			if (json_is_string(v)) {
				printf("%s: %s\n", k, json_string_value(v));
			} else {
				char *s = json_dumps(v, JSON_ENCODE_ANY);

				printf("%s: %s\n", k, s != NULL ? s : "?");
				free(s);
			}
		}
	}
	json_decref(obj);
}

void
ctl_emit_rows(const struct ctl *c, const void *r)
{
	const PGresult *res = r;
	json_t         *arr;
	int             i, j;

	if (c->json) {
		arr = json_array();
		for (i = 0; i < PQntuples(res); i++)
			json_array_append_new(arr, ctl_row_json(res, i));
		ctl_print_json(arr);
		json_decref(arr);
		return;
	}
	for (j = 0; j < PQnfields(res); j++)
		printf("%s%s", j ? "\t" : "", PQfname(res, j));
	putchar('\n');
	for (i = 0; i < PQntuples(res); i++) {
		for (j = 0; j < PQnfields(res); j++)
			printf("%s%s", j ? "\t" : "",
			    PQgetisnull(res, i, j) ? "-"
			                           : PQgetvalue(res, i, j));
		putchar('\n');
	}
}

int
ctl_list(
    struct ctl *c, int argc, char **argv, const char *sql, const char *what)
{
	PGresult *res;
	int       rv;

	rv = ctl_parse(argc, argv, NULL, 0);
	if (rv == 0)
		rv = ctl_db(c);
	if (rv != 0)
		return rv;
	rv = pg_exec(c->conn, sql, 0, NULL, &res);
	if (rv != 0)
		return ctl_db_fail(c, rv, what);
	ctl_emit_rows(c, res);
	PQclear(res);
	return 0;
}

int
ctl_next_id(struct ctl *c, const char *table, char id[24])
{
	const char *p[1] = {table};
	PGresult   *res;
	int         rv;

	rv = pg_exec(c->conn,
	    "SELECT nextval(pg_get_serial_sequence($1, 'id'))", 1, p, &res);
	if (rv != 0)
		return ctl_db_fail(c, rv, "drawing the id");
	snprintf(id, 24, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return 0;
}

int
ctl_seal_hex(
    const struct crypto_key *key, const char *aad, const char *pt, char **hex)
{
	uint8_t *blob = NULL;
	size_t   bloblen;
	char    *h;
	int      rv;

	rv =
	    crypto_seal(key, aad, strlen(aad), pt, strlen(pt), &blob, &bloblen);
	if (rv != 0) {
		ctl_err("encrypting the secret failed");
		return rv;
	}
	/* bytea in text form: "\x" followed by hex. */
	h = xmalloc(2 * bloblen + 3);
	memcpy(h, "\\x", 2);
	if (crypto_hex_encode(blob, bloblen, h + 2, 2 * bloblen + 1) != 0)
		BUG("hex buffer too small");
	free(blob);
	*hex = h;
	return 0;
}

int
ctl_read_back_commit(struct ctl *c, const char *sql, const char *id,
    const char *what, PGresult **out)
{
	const char *p[1] = {id};
	PGresult   *res;
	int         rv;

	rv = pg_exec(c->conn, sql, 1, p, &res);
	if (rv != 0)
		return ctl_db_fail(c, rv, what);
	rv = pg_commit(c->conn);
	if (rv != 0) {
		PQclear(res);
		return ctl_db_fail(c, rv, "committing");
	}
	*out = res;
	return 0;
}
