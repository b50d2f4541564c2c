/*
 * gw_upinfo.c: the response headers and the error message the gateway
 * hands to the scheduler with a release (see gw_upinfo.h).
 */
#include "gw_upinfo.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <strings.h>

#include "err.h"

#define GW_UPINFO_RL_PREFIX "anthropic-ratelimit-unified-"

/* A word at least this long made of token characters is masked. */
#define GW_UPINFO_TOKEN_MIN 32

bool
gw_upinfo_header_wanted(const char *name)
{
	return strncasecmp(name, GW_UPINFO_RL_PREFIX,
	           sizeof(GW_UPINFO_RL_PREFIX) - 1) == 0 ||
	    strcasecmp(name, "retry-after") == 0;
}

int
gw_upinfo_header_add(struct proto_header *hdrs, uint32_t *n, const char *name,
    const char *value, size_t vlen)
{
	struct proto_header *h;
	size_t               i, nlen = strlen(name);

	if (!gw_upinfo_header_wanted(name))
		return 0;
	if (*n >= PROTO_HEADERS_MAX || nlen > PROTO_HDR_NAME_MAX ||
	    vlen > PROTO_HDR_VAL_MAX || memchr(value, '\0', vlen) != NULL)
		return -ERR_TOOBIG;
	h = &hdrs[*n];
	for (i = 0; i < nlen; i++)
		h->name[i] = (char)tolower((unsigned char)name[i]);
	h->name[nlen] = '\0';
	memcpy(h->value, value, vlen);
	h->value[vlen] = '\0';
	(*n)++;
	return 0;
}

static bool
gw_upinfo_token_char(unsigned char c)
{
	return isalnum(c) || c == '-' || c == '_' || c == '.' || c == '+' ||
	    c == '/' || c == '=';
}

/* Whether the word w[0..len) looks like a key or a token. */
static bool
gw_upinfo_secretish(const char *w, size_t len)
{
	size_t i;

	if (len >= 3 && strncasecmp(w, "sk-", 3) == 0)
		return true;
	if (len < GW_UPINFO_TOKEN_MIN)
		return false;
	for (i = 0; i < len; i++) {
		if (!gw_upinfo_token_char((unsigned char)w[i]))
			return false;
	}
	return true;
}

/* Appends s[0..len) to out at *o, bounded; false once out is full. */
static bool
gw_upinfo_put(char *out, size_t cap, size_t *o, const char *s, size_t len)
{
	size_t k = len;

	/* A word may be cut; a non-ASCII s is one character: all or none. */
	if (*o + k >= cap)
		k = cap - 1 - *o;
	if (k < len && (unsigned char)s[0] >= 0x80)
		k = 0;
	memcpy(out + *o, s, k);
	*o += k;
	return k == len;
}

/* Copies msg into out, masking credential-like words (see the header). */
static void
gw_upinfo_clean(const char *msg, char *out, size_t cap)
{
	const char *p = msg, *w;
	size_t      o = 0;

	while (*p != '\0') {
		if ((unsigned char)*p >= 0x80) {
			/* One whole UTF-8 sequence, or nothing of it. */
			for (w = p++; ((unsigned char)*p & 0xc0) == 0x80; p++)
				;
			if (!gw_upinfo_put(out, cap, &o, w, (size_t)(p - w)))
				break;
			continue;
		}
		if (!gw_upinfo_token_char((unsigned char)*p)) {
			char c =
			    (unsigned char)*p < 0x20 || *p == 0x7f ? ' ' : *p;

			if (!gw_upinfo_put(out, cap, &o, &c, 1))
				break;
			p++;
			continue;
		}
		for (w = p; gw_upinfo_token_char((unsigned char)*p); p++)
			;
		if (gw_upinfo_secretish(w, (size_t)(p - w))) {
			if (!gw_upinfo_put(out, cap, &o, "[redacted]", 10))
				break;
		} else if (!gw_upinfo_put(out, cap, &o, w, (size_t)(p - w))) {
			break;
		}
	}
	out[o] = '\0';
}

int
gw_upinfo_error_message(const char *body, size_t len, char *out, size_t cap)
{
	json_t     *j, *e;
	const char *msg = NULL;

	ASSERT(cap > 0);
	out[0] = '\0';
	j = json_loadb(body, len, 0, NULL);
	if (j == NULL)
		return -ERR_NOTFOUND;
	e = json_object_get(j, "error");
	if (json_is_object(e))
		msg = json_string_value(json_object_get(e, "message"));
	else if (json_is_string(e))
		msg = json_string_value(e);
	if (msg == NULL)
		msg = json_string_value(json_object_get(j, "message"));
	if (msg != NULL)
		gw_upinfo_clean(msg, out, cap);
	json_decref(j);
	return msg != NULL ? 0 : -ERR_NOTFOUND;
}
