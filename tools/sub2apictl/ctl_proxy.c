/*
 * ctl_proxy.c: "proxy add", "proxy list" and the proxy reference of
 * accounts ("account add --proxy", "account set-proxy").
 *
 * A proxy password is sealed like account credentials: AES-256-GCM under
 * SUB2API_SECRET_KEY with associated data naming the row
 * (CRYPTO_AAD_PROXY_FMT), so the id is drawn from the sequence first.
 * The plaintext is wiped after sealing and is never printed: the read-back
 * and the listing show only whether a password is set.  A password may be
 * given as @file (one trailing newline dropped) to keep it out of ps.
 *
 * Proxy names are unique among live proxies (checked here; the schema
 * does not), so a name is as good a reference as an id.
 */
#include <ctype.h>
#include <libpq-fe.h>
#include <stdio.h>

#include "crypto.h"
#include "ctl.h"
#include "err.h"
#include "pg.h"

#define CTL_PROXY_PW_MAX 255

enum { P_NAME, P_PROTO, P_HOST, P_PORT, P_USER, P_PASS };

static bool
ctl_proxy_v6_ok(const char *s, size_t len)
{
	size_t i, colons = 0;

	for (i = 0; i < len; i++) {
		if (s[i] == ':')
			colons++;
		else if (!isxdigit((unsigned char)s[i]) && s[i] != '.')
			return false;
	}
	return len >= 2 && colons >= 2;
}

bool
ctl_proxy_host_ok(const char *h)
{
	size_t len = strlen(h), i;

	if (len == 0 || len > 255)
		return false;
	if (h[0] == '[')
		return len > 2 && h[len - 1] == ']' &&
		    ctl_proxy_v6_ok(h + 1, len - 2);
	if (strchr(h, ':') != NULL)
		return ctl_proxy_v6_ok(h, len);
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)h[i];

		if (!isalnum(c) && c != '-' && c != '.' && c != '_')
			return false;
	}
	return true;
}

bool
ctl_proxy_protocol_ok(const char *s)
{
	return strcmp(s, "http") == 0 || strcmp(s, "https") == 0 ||
	    strcmp(s, "socks5") == 0;
}

/* Reads --password (value or @file) into an owned, checked string. */
static int
ctl_proxy_password(const char *arg, char **out)
{
	char  *pw;
	size_t len;
	int    rv;

	rv = ctl_read_value(arg, CTL_PROXY_PW_MAX + 2, &pw);
	if (rv != 0) {
		ctl_err("--password is longer than %d bytes", CTL_PROXY_PW_MAX);
		return rv == -ERR_TOOBIG ? -ERR_INVAL : rv;
	}
	len = strlen(pw);
	if (arg[0] == '@' && len > 0 && pw[len - 1] == '\n')
		pw[--len] = '\0';
	if (arg[0] == '@' && len > 0 && pw[len - 1] == '\r')
		pw[--len] = '\0';
	if (!ctl_text_ok(pw, CTL_PROXY_PW_MAX)) {
		crypto_free_secret(pw, len + 1);
		ctl_err("bad --password (1..%d bytes, no control characters)",
		    CTL_PROXY_PW_MAX);
		return -ERR_INVAL;
	}
	*out = pw;
	return 0;
}

/* Draws the id, seals the password (if any), inserts, reads back. */
static int
ctl_proxy_insert(struct ctl *c, const struct crypto_key *key, const char *pw,
    const char **p, PGresult **out)
{
	char      aad[96], *hex = NULL, id[24];
	PGresult *res;
	int       rv;

	rv = pg_begin(c->conn);
	if (rv != 0)
		return ctl_db_fail(c, rv, "starting the transaction");
	/* Serializes concurrent adds of one name. */
	rv = pg_exec(c->conn,
	    "SELECT pg_advisory_xact_lock(hashtext('sub2api:proxy:' || $1))", 1,
	    p + 1, NULL);
	if (rv == 0)
		rv = pg_exec(c->conn,
		    "SELECT 1 FROM proxies WHERE name = $1 AND deleted_at IS NULL",
		    1, p + 1, &res);
	if (rv != 0)
		return ctl_db_fail(c, rv, "checking the proxy name");
	if (PQntuples(res) > 0) {
		PQclear(res);
		ctl_err("a proxy named '%s' already exists", p[1]);
		return -ERR_EXISTS;
	}
	PQclear(res);
	rv = ctl_next_id(c, "proxies", id);
	if (rv != 0)
		return rv;
	if (pw != NULL) {
		snprintf(aad, sizeof(aad), CRYPTO_AAD_PROXY_FMT,
		    strtoll(id, NULL, 10));
		rv = ctl_seal_hex(key, aad, pw, &hex);
		if (rv != 0)
			return rv;
	}
	p[0] = id;
	p[6] = hex;
	rv = pg_exec(c->conn,
	    "INSERT INTO proxies (id, name, protocol, host, port, username,"
	    " password_enc)"
	    " VALUES ($1::bigint, $2, $3, $4, $5::integer, $6, $7::bytea)",
	    7, p, NULL);
	free(hex);
	if (rv != 0)
		return ctl_db_fail(c, rv, "adding the proxy");
	return ctl_read_back_commit(c,
	    "SELECT id, name, protocol, host, port, username,"
	    " password_enc IS NOT NULL AS has_password, status, created_at"
	    " FROM proxies WHERE id = $1::bigint",
	    id, "reading the proxy back", out);
}

int
ctl_cmd_proxy_add(struct ctl *c, int argc, char **argv)
{
	struct ctl_opt o[] = {
	    [P_NAME] = {"name", CTL_ARG, true},
	    [P_PROTO] = {"protocol", CTL_ARG, true},
	    [P_HOST] = {"host", CTL_ARG, true},
	    [P_PORT] = {"port", CTL_ARG, true},
	    [P_USER] = {"username", CTL_ARG, false},
	    [P_PASS] = {"password", CTL_ARG, false},
	};
	struct crypto_key key;
	const char       *p[7];
	char             *pw = NULL;
	long long         port;
	PGresult         *res = NULL;
	int               rv;

	rv = ctl_parse(argc, argv, o, ARRAY_SIZE(o));
	if (rv != 0)
		return rv;
	if (!ctl_text_ok(o[P_NAME].val, 100)) {
		ctl_err("bad --name (1..100 characters)");
		return -ERR_INVAL;
	}
	if (!ctl_proxy_protocol_ok(o[P_PROTO].val)) {
		ctl_err("bad --protocol '%s' (http, https, socks5)",
		    o[P_PROTO].val);
		return -ERR_INVAL;
	}
	if (!ctl_proxy_host_ok(o[P_HOST].val)) {
		ctl_err("bad --host: a name, IPv4 or IPv6 address (no "
		        "spaces, '/', '@', ':' outside IPv6)");
		return -ERR_INVAL;
	}
	if (ctl_parse_int(o[P_PORT].val, 1, 65535, &port) != 0) {
		ctl_err("bad --port '%s' (1..65535)", o[P_PORT].val);
		return -ERR_INVAL;
	}
	if (o[P_USER].set && !ctl_text_ok(o[P_USER].val, 255)) {
		ctl_err("bad --username (1..255 characters)");
		return -ERR_INVAL;
	}
	if (o[P_PASS].set && !o[P_USER].set) {
		ctl_err("--password needs --username");
		return -ERR_INVAL;
	}
	if (o[P_PASS].set) {
		rv = crypto_key_from_env(CRYPTO_KEY_ENV, &key);
		if (rv != 0) {
			ctl_err("refusing to store a proxy password: %s must "
			        "hold the encryption key (64 hex characters or "
			        "base64 of 32 bytes)",
			    CRYPTO_KEY_ENV);
			return -ERR_CONFIG;
		}
		rv = ctl_proxy_password(o[P_PASS].val, &pw);
	} else {
		memset(&key, 0, sizeof(key));
	}
	if (rv == 0)
		rv = ctl_db(c);
	if (rv == 0) {
		p[1] = o[P_NAME].val;
		p[2] = o[P_PROTO].val;
		p[3] = o[P_HOST].val;
		p[4] = o[P_PORT].val;
		p[5] = o[P_USER].set ? o[P_USER].val : "";
		rv = ctl_proxy_insert(c, &key, pw, p, &res);
	}
	crypto_key_wipe(&key);
	if (pw != NULL)
		crypto_free_secret(pw, strlen(pw) + 1);
	if (rv != 0)
		return rv;
	ctl_emit_obj(c, ctl_row_json(res, 0));
	PQclear(res);
	return 0;
}

int
ctl_cmd_proxy_list(struct ctl *c, int argc, char **argv)
{
	return ctl_list(c, argc, argv,
	    "SELECT p.id, p.name, p.protocol, p.host, p.port, p.username,"
	    " p.password_enc IS NOT NULL AS has_password, p.status,"
	    " (SELECT count(*) FROM accounts a WHERE a.proxy_id = p.id"
	    "  AND a.deleted_at IS NULL) AS accounts, p.created_at"
	    " FROM proxies p WHERE p.deleted_at IS NULL ORDER BY p.id",
	    "listing proxies");
}

int
ctl_resolve_proxy(struct ctl *c, const char *arg, char id[24])
{
	if (!ctl_text_ok(arg, 100)) {
		ctl_err("bad proxy reference");
		return -ERR_INVAL;
	}
	return ctl_resolve_named(c, arg,
	    "SELECT id FROM proxies WHERE id = $1::bigint AND deleted_at IS "
	    "NULL",
	    "SELECT id FROM proxies WHERE name = $1 AND deleted_at IS NULL",
	    "proxy", id);
}

enum { S_ACCOUNT, S_PROXY, S_NONE };

int
ctl_cmd_account_set_proxy(struct ctl *c, int argc, char **argv)
{
	struct ctl_opt o[] = {
	    [S_ACCOUNT] = {"account", CTL_ARG, true},
	    [S_PROXY] = {"proxy", CTL_ARG, false},
	    [S_NONE] = {"none", CTL_FLAG, false},
	};
	char        aid[24], pid[24];
	const char *p[2] = {aid, NULL};
	PGresult   *res;
	int         rv;

	rv = ctl_parse(argc, argv, o, ARRAY_SIZE(o));
	if (rv != 0)
		return rv;
	if (o[S_PROXY].set == o[S_NONE].set) {
		ctl_err("give exactly one of --proxy NAME|ID and --none");
		return -ERR_INVAL;
	}
	if (!ctl_text_ok(o[S_ACCOUNT].val, 100)) {
		ctl_err("bad account reference");
		return -ERR_INVAL;
	}
	rv = ctl_resolve_named(c, o[S_ACCOUNT].val,
	    "SELECT id FROM accounts WHERE id = $1::bigint AND deleted_at IS "
	    "NULL",
	    "SELECT id FROM accounts WHERE name = $1 AND deleted_at IS NULL",
	    "account", aid);
	if (rv == 0 && o[S_PROXY].set) {
		rv = ctl_resolve_proxy(c, o[S_PROXY].val, pid);
		p[1] = pid;
	}
	if (rv != 0)
		return rv;
	rv = pg_exec(c->conn,
	    "UPDATE accounts SET proxy_id = $2::bigint WHERE id = $1::bigint"
	    " RETURNING id, name, proxy_id",
	    2, p, &res);
	if (rv != 0)
		return ctl_db_fail(c, rv, "setting the account's proxy");
	ctl_emit_obj(c, ctl_row_json(res, 0));
	PQclear(res);
	return 0;
}
