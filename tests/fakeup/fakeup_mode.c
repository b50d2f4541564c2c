/*
 * fakeup_mode.c: mode strings, the one syntax that picks a failure.
 *
 * A mode string is a list of options separated by ':':
 *
 *   mode   := opt (':' opt)*
 *   opt    := "ok"                      back to normal (clears everything)
 *           | "401" | "403" | "403-banned" | "429" | "529" | "500"
 *           | "invalid-grant"           OAuth token endpoint: 400
 *           | "drop"                    cut the connection mid-reply
 *           | "inband-error"            SSE error event mid-stream
 *           | "stall"                   message_start, then silence
 *           | "notools"                 text reply even when tools are sent
 *           | "slow-first-byte=" MS     delay before the status line
 *           | "drip=" MS                delay between SSE events
 *           | "deltas=" N               text deltas (1..100000; default 5)
 *           | "reset=" S                429: reset in S seconds (default 60)
 *           | "5h=" STATUS[,S]          a success carries
 *                                       anthropic-ratelimit-unified-5h-status
 *                                       STATUS (allowed, allowed_warning or
 *                                       rejected) and 5h-reset now + S s
 *           | "usage=" IN,OUT[,CC[,CR[,CC5M[,CC1H]]]]   exact usage numbers
 *
 * The same string is used in two places: after "@fake:" in a model name
 * ("claude-sonnet-4-5@fake:429:reset=5"; the shorthand
 * "claude-fake-<mode>" also works, e.g. "claude-fake-429") and as the
 * "mode" of a key control (POST /_fake/keys/<key>).  Options merge left to
 * right; a key control is merged over the model's mode.
 */
#include <errno.h>
#include <stdio.h>

#include "err.h"
#include "fakeup.h"

#define FAKE_MODEL_SUFFIX "@fake:"
#define FAKE_MODEL_PREFIX "claude-fake-"

static const struct {
	const char    *name;
	enum fake_fail fail;
} fake_fails[] = {
    {"401", FAKE_FAIL_401},
    {"403", FAKE_FAIL_403},
    {"403-banned", FAKE_FAIL_403_BANNED},
    {"429", FAKE_FAIL_429},
    {"529", FAKE_FAIL_529},
    {"500", FAKE_FAIL_500},
    {"invalid-grant", FAKE_FAIL_INVALID_GRANT},
    {"drop", FAKE_FAIL_DROP},
    {"inband-error", FAKE_FAIL_INBAND},
    {"stall", FAKE_FAIL_STALL},
};

const char *
fake_fail_name(enum fake_fail f)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(fake_fails); i++) {
		if (fake_fails[i].fail == f)
			return fake_fails[i].name;
	}
	return "";
}

/* Parses a decimal in [lo, hi] from (s, len); 0 or -ERR_INVAL. */
static int
fake_mode_num(const char *s, size_t len, int64_t lo, int64_t hi, int64_t *out)
{
	char      tmp[24];
	char     *end;
	long long v;

	if (len == 0 || len >= sizeof(tmp))
		return -ERR_INVAL;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	if (tmp[0] < '0' || tmp[0] > '9')
		return -ERR_INVAL;
	errno = 0;
	v = strtoll(tmp, &end, 10);
	if (errno != 0 || *end != '\0' || v < lo || v > hi)
		return -ERR_INVAL;
	*out = v;
	return 0;
}

/* "IN,OUT[,CC[,CR[,CC5M[,CC1H]]]]" into m->usage. */
static int
fake_mode_usage(const char *s, size_t len, struct fake_mode *m)
{
	int64_t     u[6] = {0};
	const char *p = s, *end = s + len, *comma;
	size_t      n = 0;

	while (p <= end) {
		comma = memchr(p, ',', (size_t)(end - p));
		if (comma == NULL)
			comma = end;
		if (n == ARRAY_SIZE(u))
			return -ERR_INVAL;
		if (fake_mode_num(
		        p, (size_t)(comma - p), 0, INT32_MAX, &u[n]) != 0)
			return -ERR_INVAL;
		n++;
		p = comma + 1;
	}
	if (n < 2)
		return -ERR_INVAL;
	memcpy(m->usage, u, sizeof(u));
	m->has_usage = true;
	return 0;
}

/* "STATUS[,S]" into m->rl5h and m->rl5h_reset_s. */
static int
fake_mode_5h(const char *s, size_t len, struct fake_mode *m)
{
	static const char *const st[] = {
	    "allowed", "allowed_warning", "rejected"};
	const char *comma = memchr(s, ',', len);
	size_t      slen = comma != NULL ? (size_t)(comma - s) : len, i;
	int64_t     n = 0;

	if (comma != NULL &&
	    fake_mode_num(comma + 1, len - slen - 1, 0, 86400 * 30, &n) != 0)
		return -ERR_INVAL;
	for (i = 0; i < ARRAY_SIZE(st); i++) {
		if (slen == strlen(st[i]) && memcmp(s, st[i], slen) == 0) {
			snprintf(m->rl5h, sizeof(m->rl5h), "%s", st[i]);
			m->rl5h_reset_s = (int)n;
			return 0;
		}
	}
	return -ERR_INVAL;
}

/* One option (s, len) merged into m. */
static int
fake_mode_opt(const char *s, size_t len, struct fake_mode *m)
{
	const char *eq = memchr(s, '=', len);
	size_t      klen = eq != NULL ? (size_t)(eq - s) : len;
	const char *v = eq != NULL ? eq + 1 : NULL;
	size_t      vlen = eq != NULL ? len - klen - 1 : 0;
	int64_t     n;
	size_t      i;

#define FAKE_KEY_IS(k) (klen == strlen(k) && memcmp(s, (k), klen) == 0)
	if (v == NULL) {
		if (FAKE_KEY_IS("ok")) {
			memset(m, 0, sizeof(*m));
			return 0;
		}
		if (FAKE_KEY_IS("notools")) {
			m->no_tools = true;
			return 0;
		}
		for (i = 0; i < ARRAY_SIZE(fake_fails); i++) {
			if (FAKE_KEY_IS(fake_fails[i].name)) {
				m->fail = fake_fails[i].fail;
				return 0;
			}
		}
		return -ERR_INVAL;
	}
	if (FAKE_KEY_IS("usage"))
		return fake_mode_usage(v, vlen, m);
	if (FAKE_KEY_IS("slow-first-byte")) {
		if (fake_mode_num(v, vlen, 0, FAKE_WAIT_MAX_MS, &n) != 0)
			return -ERR_INVAL;
		m->first_byte_ms = n;
		return 0;
	}
	if (FAKE_KEY_IS("drip")) {
		if (fake_mode_num(v, vlen, 0, FAKE_WAIT_MAX_MS, &n) != 0)
			return -ERR_INVAL;
		m->drip_ms = n;
		return 0;
	}
	if (FAKE_KEY_IS("deltas")) {
		if (fake_mode_num(v, vlen, 1, FAKE_DELTAS_MAX, &n) != 0)
			return -ERR_INVAL;
		m->deltas = (int)n;
		return 0;
	}
	if (FAKE_KEY_IS("reset")) {
		if (fake_mode_num(v, vlen, 0, 86400 * 30, &n) != 0)
			return -ERR_INVAL;
		m->reset_s = (int)n;
		return 0;
	}
	if (FAKE_KEY_IS("5h"))
		return fake_mode_5h(v, vlen, m);
#undef FAKE_KEY_IS
	return -ERR_INVAL;
}

int
fake_mode_parse(const char *s, size_t len, struct fake_mode *m)
{
	struct fake_mode tmp = *m;
	const char      *p = s, *end = s + len, *colon;

	if (len == 0 || len > FAKE_MODE_MAX)
		return -ERR_INVAL;
	while (p <= end) {
		colon = memchr(p, ':', (size_t)(end - p));
		if (colon == NULL)
			colon = end;
		if (fake_mode_opt(p, (size_t)(colon - p), &tmp) != 0)
			return -ERR_INVAL;
		p = colon + 1;
	}
	*m = tmp;
	return 0;
}

int
fake_mode_from_model(const char *model, struct fake_mode *m)
{
	const char *tail;

	tail = strstr(model, FAKE_MODEL_SUFFIX);
	if (tail != NULL) {
		tail += strlen(FAKE_MODEL_SUFFIX);
		return fake_mode_parse(tail, strlen(tail), m);
	}
	if (strncmp(model, FAKE_MODEL_PREFIX, strlen(FAKE_MODEL_PREFIX)) == 0) {
		tail = model + strlen(FAKE_MODEL_PREFIX);
		return fake_mode_parse(tail, strlen(tail), m);
	}
	return 0;
}
