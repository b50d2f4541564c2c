/*
 * gw_anth_hdr.c: the upstream header list of an Anthropic request (see
 * gw_anth.h): whitelist passthrough, defaults, account auth and the
 * anthropic-beta merge for OAuth accounts.
 *
 * The client's headers are only ever looked up by name, from a fixed
 * whitelist, so nothing outside it (credentials, cookies, hop-by-hop
 * headers, Claude Code's session header) can leak upstream however the
 * client spells it.
 */
#include <strings.h>

#include "err.h"
#include "gw_anth.h"

#define GW_ANTH_NAME_MAX 64

static const char *const gw_anth_passthrough[] = {
    "accept",
    "x-stainless-retry-count",
    "x-stainless-timeout",
    "x-stainless-lang",
    "x-stainless-package-version",
    "x-stainless-os",
    "x-stainless-arch",
    "x-stainless-runtime",
    "x-stainless-runtime-version",
    "x-stainless-helper-method",
    "anthropic-dangerous-direct-browser-access",
    "anthropic-version",
    "x-app",
    "anthropic-beta",
    "accept-language",
    "sec-fetch-mode",
    "user-agent",
    "content-type",
};

static bool
gw_anth_hdr_ok(const char *s, size_t n, bool is_name)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c < 0x20 && !(c == '\t' && !is_name)) || c == 0x7f)
			return false;
		if (is_name && (c == ' ' || c == ':' || c == '\t'))
			return false;
	}
	return true;
}

int
gw_anth_hdrs_add(struct gw_anth_hdrs *h, const char *name, const char *value)
{
	size_t nl = strlen(name), vl = strlen(value), i;
	char  *n;

	if (h->n >= GW_ANTH_HDRS_MAX || nl > GW_ANTH_NAME_MAX ||
	    vl > GW_ANTH_HDR_VAL_MAX)
		return -ERR_TOOBIG;
	if (nl == 0 || !gw_anth_hdr_ok(name, nl, true) ||
	    !gw_anth_hdr_ok(value, vl, false))
		return -ERR_INVAL;
	n = xstrdup(name);
	for (i = 0; i < nl; i++) {
		if (n[i] >= 'A' && n[i] <= 'Z')
			n[i] = (char)(n[i] - 'A' + 'a');
	}
	h->v[h->n].name = n;
	h->v[h->n].value = xstrdup(value);
	h->n++;
	return 0;
}

const char *
gw_anth_hdrs_get(const struct gw_anth_hdrs *h, const char *name)
{
	size_t i;

	for (i = 0; i < h->n; i++) {
		if (strcmp(h->v[i].name, name) == 0)
			return h->v[i].value;
	}
	return NULL;
}

void
gw_anth_hdrs_release(struct gw_anth_hdrs *h)
{
	size_t i;

	for (i = 0; i < h->n; i++) {
		free(h->v[i].name);
		free(h->v[i].value);
	}
	memset(h, 0, sizeof(*h));
}

/* The next comma-separated token of *s, trimmed; false at the end. */
static bool
gw_anth_next_token(const char **s, const char **tok, size_t *n)
{
	const char *p = *s, *e;

	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			return false;
		e = p;
		while (*e != '\0' && *e != ',')
			e++;
		*s = *e == ',' ? e + 1 : e;
		*n = (size_t)(e - p);
		while (*n > 0 && (p[*n - 1] == ' ' || p[*n - 1] == '\t'))
			(*n)--;
		if (*n > 0) {
			*tok = p;
			return true;
		}
		p = *s;
	}
}

static bool
gw_anth_has_token(const char *list, const char *want)
{
	const char *tok;
	size_t      n;

	while (gw_anth_next_token(&list, &tok, &n)) {
		if (n == strlen(want) && memcmp(tok, want, n) == 0)
			return true;
	}
	return false;
}

static int
gw_anth_add_token(struct buf *out, bool *first, const char *tok, size_t n)
{
	int rv = 0;

	if (!*first)
		rv = buf_addch(out, ',');
	*first = false;
	if (rv == 0)
		rv = buf_add(out, tok, n);
	return rv;
}

int
gw_anth_merge_beta(const char *client, bool haiku, struct buf *out)
{
	const char *p = client, *tok;
	bool        first = true, need;
	size_t      n;
	int         rv = 0;

	if (client == NULL || !gw_anth_next_token(&p, &tok, &n))
		return buf_addstr(out,
		    haiku ? GW_ANTH_BETA_DEFAULT_HAIKU : GW_ANTH_BETA_DEFAULT);
	need = !gw_anth_has_token(client, GW_ANTH_BETA_OAUTH);
	if (need && !gw_anth_has_token(client, GW_ANTH_BETA_CLAUDECODE)) {
		rv = gw_anth_add_token(out, &first, GW_ANTH_BETA_OAUTH,
		    strlen(GW_ANTH_BETA_OAUTH));
		need = false;
	}
	p = client;
	while (rv == 0 && gw_anth_next_token(&p, &tok, &n)) {
		rv = gw_anth_add_token(out, &first, tok, n);
		if (rv == 0 && need && n == strlen(GW_ANTH_BETA_CLAUDECODE) &&
		    memcmp(tok, GW_ANTH_BETA_CLAUDECODE, n) == 0) {
			rv = gw_anth_add_token(out, &first, GW_ANTH_BETA_OAUTH,
			    strlen(GW_ANTH_BETA_OAUTH));
			need = false;
		}
	}
	return rv;
}

/* The whitelisted client headers, with the overrides an account needs. */
static int
gw_anth_hdrs_passthrough(const struct gw_anth_account *acct,
    gw_err_lookup_fn *get, void *arg, struct gw_anth_hdrs *out)
{
	const char *name, *v;
	size_t      i;
	int         rv;

	for (i = 0; i < ARRAY_SIZE(gw_anth_passthrough); i++) {
		name = gw_anth_passthrough[i];
		if (acct->type != GW_ANTH_APIKEY &&
		    strcmp(name, "anthropic-beta") == 0)
			continue;
		if (strcmp(name, "user-agent") == 0 &&
		    acct->user_agent != NULL && acct->user_agent[0] != '\0')
			v = acct->user_agent;
		else
			v = get(arg, name);
		if (v == NULL || v[0] == '\0')
			continue;
		rv = gw_anth_hdrs_add(out, name, v);
		if (rv != 0)
			return rv;
	}
	if (gw_anth_hdrs_get(out, "user-agent") == NULL &&
	    acct->user_agent != NULL && acct->user_agent[0] != '\0')
		return gw_anth_hdrs_add(out, "user-agent", acct->user_agent);
	return 0;
}

static int
gw_anth_hdrs_auth(const struct gw_anth_req *req,
    const struct gw_anth_account *acct, gw_err_lookup_fn *get, void *arg,
    struct gw_anth_hdrs *out)
{
	const char *cred = acct->credential != NULL ? acct->credential : "";
	const char *model = req->model;
	struct buf  b;
	int         rv;

	if (acct->type == GW_ANTH_APIKEY)
		return gw_anth_hdrs_add(out, "x-api-key", cred);
	buf_init(&b, GW_ANTH_HDR_VAL_MAX + 1);
	rv = buf_addf(&b, "Bearer %s", cred);
	if (rv == 0)
		rv = gw_anth_hdrs_add(out, "authorization", buf_str(&b));
	buf_reset(&b);
	if (acct->upstream_model != NULL && acct->upstream_model[0] != '\0')
		model = acct->upstream_model;
	if (rv == 0)
		rv = gw_anth_merge_beta(get(arg, "anthropic-beta"),
		    strcasestr(model, "haiku") != NULL, &b);
	if (rv == 0)
		rv = gw_anth_hdrs_add(out, "anthropic-beta", buf_str(&b));
	buf_release(&b);
	return rv;
}

int
gw_anth_build_headers(const struct gw_anth_req *req,
    const struct gw_anth_account *acct, gw_err_lookup_fn *get, void *arg,
    struct gw_anth_hdrs *out)
{
	int rv;

	rv = gw_anth_hdrs_passthrough(acct, get, arg, out);
	if (rv == 0 && gw_anth_hdrs_get(out, "content-type") == NULL)
		rv = gw_anth_hdrs_add(out, "content-type", "application/json");
	if (rv == 0 && gw_anth_hdrs_get(out, "anthropic-version") == NULL)
		rv = gw_anth_hdrs_add(
		    out, "anthropic-version", GW_ANTH_VERSION_DEFAULT);
	if (rv == 0)
		rv = gw_anth_hdrs_auth(req, acct, get, arg, out);
	if (rv == 0)
		rv = gw_anth_hdrs_add(out, "accept-encoding", "identity");
	if (rv != 0)
		gw_anth_hdrs_release(out);
	return rv;
}
