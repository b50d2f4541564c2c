/*
 * gw_errors.c: Anthropic error envelopes, the status table, the ops
 * classification and API-key extraction (see gw_errors.h).
 *
 * Everything is table- or switch-driven and allocation-free except for
 * appends to the caller's bounded buffer.
 */
#include "gw_errors.h"

#include <strings.h>

#include "err.h"
#include "proto.h"

static const struct gw_err_info gw_err_table[] = {
#define GW_ERR_ROW_(name, status, type, msg) {#name, status, type, msg},
    GW_ERR_MAP(GW_ERR_ROW_)
#undef GW_ERR_ROW_
};

static int
gw_err_add_envelope(struct buf *out, const char *type, const char *message)
{
	int rv;

	if (type == NULL)
		type = "";
	if (message == NULL)
		message = "";
	rv = buf_addstr(out, "{\"type\":\"error\",\"error\":{\"type\":\"");
	if (rv == 0)
		rv = buf_add_json_str(out, type, strlen(type));
	if (rv == 0)
		rv = buf_addstr(out, "\",\"message\":\"");
	if (rv == 0)
		rv = buf_add_json_str(out, message, strlen(message));
	if (rv == 0)
		rv = buf_addstr(out, "\"}}");
	return rv;
}

int
gw_err_anthropic(struct buf *out, const char *type, const char *message)
{
	return gw_err_add_envelope(out, type, message);
}

int
gw_err_sse_event(struct buf *out, const char *type, const char *message)
{
	int rv;

	rv = buf_addstr(out, "event: error\ndata: ");
	if (rv == 0)
		rv = gw_err_add_envelope(out, type, message);
	if (rv == 0)
		rv = buf_addstr(out, "\n\n");
	return rv;
}

const struct gw_err_info *
gw_err_info(enum gw_err_code code)
{
	if ((int)code < 0 || code >= GW_E_MAX_)
		code = GW_E_INTERNAL;
	return &gw_err_table[code];
}

const char *
gw_err_type_for_status(int status)
{
	switch (status) {
	case 400:
		return "invalid_request_error";
	case 401:
		return "authentication_error";
	case 402:
		return "billing_error";
	case 403:
		return "permission_error";
	case 404:
		return "not_found_error";
	case 413:
		return "request_too_large";
	case 429:
		return "rate_limit_error";
	case 502:
		return "upstream_error";
	case 504:
		return "timeout_error";
	case 529:
		return "overloaded_error";
	default:
		if (status >= 400 && status < 500)
			return "invalid_request_error";
		return "api_error";
	}
}

bool
gw_err_map_upstream(int upstream_status, enum gw_err_code *code)
{
	enum gw_err_code c;

	switch (upstream_status) {
	case 400:
		return true;
	case 401:
		c = GW_E_UPSTREAM_AUTH;
		break;
	case 402:
	case 403:
		c = GW_E_UPSTREAM_FORBIDDEN;
		break;
	case 404:
		c = GW_E_NOT_FOUND;
		break;
	case 413:
		c = GW_E_BODY_TOO_LARGE;
		break;
	case 429:
		c = GW_E_UPSTREAM_RATE_LIMIT;
		break;
	case 529:
		c = GW_E_UPSTREAM_OVERLOADED;
		break;
	case 500:
	case 502:
	case 503:
		c = GW_E_UPSTREAM_UNAVAILABLE;
		break;
	case 504:
		c = GW_E_UPSTREAM_TIMEOUT;
		break;
	default:
		c = GW_E_UPSTREAM_FAILED;
		break;
	}
	*code = c;
	return false;
}

bool
gw_err_is_failover(int upstream_status)
{
	switch (upstream_status) {
	case 401:
	case 403:
	case 407: /* the account's proxy refused us: try another account */
	case 429:
	case 529:
		return true;
	default:
		return upstream_status >= 500;
	}
}

static bool
gw_err_eq(const char *a, const char *b)
{
	return a != NULL && strcmp(a, b) == 0;
}

static bool
gw_err_mentions(const char *msg, const char *word)
{
	return msg != NULL && strcasestr(msg, word) != NULL;
}

static const char *
gw_err_phase(const char *type, const char *message)
{
	if (gw_err_eq(type, "authentication_error") ||
	    gw_err_eq(type, "permission_error"))
		return "auth";
	if (gw_err_eq(type, "billing_error") ||
	    gw_err_eq(type, "subscription_error"))
		return "billing";
	if (gw_err_eq(type, "rate_limit_error")) {
		if (gw_err_mentions(message, "concurrency") ||
		    gw_err_mentions(message, "pending"))
			return "concurrency";
		return "upstream";
	}
	if (gw_err_eq(type, "invalid_request_error") ||
	    gw_err_eq(type, "not_found_error") ||
	    gw_err_eq(type, "request_too_large"))
		return "response";
	if (gw_err_eq(type, "upstream_error") ||
	    gw_err_eq(type, "overloaded_error") ||
	    gw_err_eq(type, "timeout_error"))
		return "upstream";
	if (gw_err_eq(type, "api_error") &&
	    gw_err_mentions(message, "no available accounts"))
		return "scheduling";
	return "internal";
}

static const char *
gw_err_severity(int status, const char *type)
{
	if (gw_err_eq(type, "invalid_request_error") ||
	    gw_err_eq(type, "authentication_error") ||
	    gw_err_eq(type, "billing_error") ||
	    gw_err_eq(type, "subscription_error"))
		return "P3";
	if (status >= 500 || status == 429)
		return "P1";
	if (status >= 400)
		return "P2";
	return "P3";
}

void
gw_err_classify(int status, const char *type, const char *message,
    const char **phase, const char **severity)
{
	*phase = gw_err_phase(type, message);
	*severity = gw_err_severity(status, type);
}

void
gw_err_classify_auth(int status, const char **phase, const char **severity)
{
	switch (status) {
	case 401:
		*phase = "auth";
		*severity = "P3";
		break;
	case 403:
		*phase = "billing";
		*severity = "P3";
		break;
	case 429:
		*phase = "billing";
		*severity = "P2";
		break;
	default:
		*phase = "internal";
		*severity = "P1";
		break;
	}
}

/*
 * Trims spaces and tabs around (s, *len) and returns the new start; the
 * trimmed length goes back through len.
 */
static const char *
gw_err_trim(const char *s, size_t *len)
{
	size_t n = *len;

	while (n > 0 && (*s == ' ' || *s == '\t')) {
		s++;
		n--;
	}
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	*len = n;
	return s;
}

/*
 * One candidate source: 1 when it holds no key (try the next), 0 with the
 * key copied, or a negative error for a key that is present but unusable.
 */
static int
gw_err_take_key(const char *v, size_t vlen, char *out, size_t cap)
{
	size_t i;

	v = gw_err_trim(v, &vlen);
	if (vlen == 0)
		return 1;
	if (vlen > GW_ERR_KEY_MAX || vlen >= cap)
		return -ERR_TOOBIG;
	for (i = 0; i < vlen; i++) {
		if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
			return -ERR_INVAL;
	}
	memcpy(out, v, vlen);
	out[vlen] = '\0';
	return 0;
}

static int
gw_err_key_from_bearer(const char *auth, char *out, size_t cap)
{
	size_t len;

	if (auth == NULL)
		return 1;
	len = strlen(auth);
	auth = gw_err_trim(auth, &len);
	if (len < 7 || strncasecmp(auth, "bearer", 6) != 0 ||
	    (auth[6] != ' ' && auth[6] != '\t'))
		return 1;
	return gw_err_take_key(auth + 7, len - 7, out, cap);
}

static const struct gw_err_key_src_row {
	bool            is_query;
	const char     *name;
	enum gw_key_src src;
} gw_err_key_order[] = {
    {false, "x-api-key", GW_KEY_X_API_KEY},
    {false, "x-goog-api-key", GW_KEY_X_GOOG_API_KEY},
    {true, "key", GW_KEY_QUERY_KEY},
    {true, "api_key", GW_KEY_QUERY_API_KEY},
};

int
gw_err_extract_key(gw_err_lookup_fn *hdr, void *hdr_arg,
    gw_err_lookup_fn *query, void *query_arg, char *out, size_t cap,
    enum gw_key_src *src)
{
	const char *v;
	size_t      i;
	int         rv;

	if (cap == 0)
		return -ERR_TOOBIG;
	rv = gw_err_key_from_bearer(hdr(hdr_arg, "authorization"), out, cap);
	if (rv <= 0) {
		if (rv == 0 && src != NULL)
			*src = GW_KEY_BEARER;
		return rv;
	}
	for (i = 0; i < ARRAY_SIZE(gw_err_key_order); i++) {
		if (gw_err_key_order[i].is_query && query == NULL)
			continue;
		if (gw_err_key_order[i].is_query)
			v = query(query_arg, gw_err_key_order[i].name);
		else
			v = hdr(hdr_arg, gw_err_key_order[i].name);
		if (v == NULL)
			continue;
		rv = gw_err_take_key(v, strlen(v), out, cap);
		if (rv > 0)
			continue;
		if (rv == 0 && src != NULL)
			*src = gw_err_key_order[i].src;
		return rv;
	}
	return -ERR_MISSING;
}

/* The code a QUOTA refusal's message names. */
static enum gw_err_code
gw_err_quota(const char *m)
{
	if (strstr(m, "DAILY_LIMIT_EXCEEDED") != NULL)
		return GW_E_DAILY_LIMIT_EXCEEDED;
	if (strstr(m, "WEEKLY_LIMIT_EXCEEDED") != NULL)
		return GW_E_WEEKLY_LIMIT_EXCEEDED;
	if (strstr(m, "MONTHLY_LIMIT_EXCEEDED") != NULL)
		return GW_E_MONTHLY_LIMIT_EXCEEDED;
	if (strstr(m, "API_KEY_QUOTA_EXHAUSTED") != NULL)
		return GW_E_API_KEY_QUOTA_EXHAUSTED;
	return GW_E_USAGE_LIMIT_EXCEEDED;
}

enum gw_err_code
gw_err_from_refusal(int outcome, const char *message)
{
	const char *m = message != NULL ? message : "";
	bool        key_expired;

	key_expired = strncmp(m, "API key", 7) == 0 && strstr(m, "expired");
	switch (outcome) {
	case PROTO_ACQ_AUTH:
		if (strstr(m, "User not found") != NULL)
			return GW_E_USER_NOT_FOUND;
		if (strncmp(m, "User", 4) == 0)
			return GW_E_USER_INACTIVE;
		if (key_expired)
			return GW_E_API_KEY_EXPIRED;
		if (strstr(m, "disabled") != NULL)
			return GW_E_API_KEY_DISABLED;
		return GW_E_INVALID_API_KEY;
	case PROTO_ACQ_FORBIDDEN:
		if (key_expired)
			return GW_E_API_KEY_EXPIRED;
		return GW_E_SUBSCRIPTION_INVALID;
	case PROTO_ACQ_BALANCE:
		if (strstr(m, "SUBSCRIPTION_INVALID") != NULL)
			return GW_E_SUBSCRIPTION_INVALID;
		return strstr(m, "subscription") != NULL
		    ? GW_E_SUBSCRIPTION_NOT_FOUND
		    : GW_E_INSUFFICIENT_BALANCE;
	case PROTO_ACQ_QUOTA:
		return gw_err_quota(m);
	case PROTO_ACQ_BUSY:
		if (strstr(m, "for API key") != NULL)
			return GW_E_CONCURRENCY_KEY;
		if (strstr(m, "for user") != NULL)
			return GW_E_CONCURRENCY_USER;
		return GW_E_CONCURRENCY_LIMIT;
	case PROTO_ACQ_QUEUE_FULL:
		return GW_E_QUEUE_FULL;
	case PROTO_ACQ_NO_ACCOUNT:
		return GW_E_NO_ACCOUNTS;
	default:
		return GW_E_INTERNAL;
	}
}
