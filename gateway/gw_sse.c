/*
 * gw_sse.c: the incremental SSE line parser and the Anthropic stream
 * observer (see gw_sse.h).
 *
 * The feed loop looks for the next LF with memchr and then for a CR
 * before it, so a chunk costs two scans of its bytes however the lines
 * end.  The observer dispatches on the event name (or a sniff of the
 * payload's "type") and parses only the three payloads that carry state.
 */
#include "gw_sse.h"

#include <jansson.h>
#include <stdio.h>

#include "err.h"

void
gw_sse_init(struct gw_sse *p, size_t max_line)
{
	memset(p, 0, sizeof(*p));
	p->max_line = max_line != 0 ? max_line : GW_SSE_LINE_MAX_DEFAULT;
	buf_init(&p->part, p->max_line + 1);
}

void
gw_sse_reset(struct gw_sse *p)
{
	size_t max_line = p->max_line;

	buf_release(&p->part);
	gw_sse_init(p, max_line);
}

void
gw_sse_release(struct gw_sse *p)
{
	buf_release(&p->part);
}

static bool
gw_sse_field_is(const char *s, size_t n, const char *name)
{
	return n == strlen(name) && memcmp(s, name, n) == 0;
}

/* Classifies one complete line and hands it to cb. */
static int
gw_sse_dispatch(
    struct gw_sse *p, const char *s, size_t n, gw_sse_line_fn *cb, void *arg)
{
	struct gw_sse_line ln;
	const char        *colon;
	size_t             fl;
	int                rv;

	memset(&ln, 0, sizeof(ln));
	ln.line = s;
	ln.len = n;
	ln.value = s + n;
	ln.event = p->event;
	p->lines++;
	if (n == 0) {
		ln.kind = GW_SSE_BLANK;
		rv = cb(arg, &ln);
		p->event[0] = '\0';
		return rv;
	}
	colon = memchr(s, ':', n);
	fl = colon != NULL ? (size_t)(colon - s) : n;
	if (colon != NULL) {
		ln.value = colon + 1;
		ln.value_len = n - fl - 1;
		if (ln.value_len > 0 && ln.value[0] == ' ') {
			ln.value++;
			ln.value_len--;
		}
	}
	if (fl == 0) {
		ln.kind = GW_SSE_COMMENT;
	} else if (gw_sse_field_is(s, fl, "data")) {
		ln.kind = GW_SSE_DATA;
	} else if (gw_sse_field_is(s, fl, "event")) {
		fl = ln.value_len < GW_SSE_EVENT_MAX ? ln.value_len
		                                     : GW_SSE_EVENT_MAX;
		memcpy(p->event, ln.value, fl);
		p->event[fl] = '\0';
		ln.kind = GW_SSE_EVENT;
	} else {
		ln.kind = GW_SSE_OTHER;
	}
	return cb(arg, &ln);
}

/* Delivers [s, s + n) as the end of the current line. */
static int
gw_sse_complete(
    struct gw_sse *p, const char *s, size_t n, gw_sse_line_fn *cb, void *arg)
{
	int rv;

	if (p->part.len == 0) {
		if (n > p->max_line)
			return -ERR_TOOBIG;
		return gw_sse_dispatch(p, s, n, cb, arg);
	}
	if (n > p->max_line - p->part.len)
		return -ERR_TOOBIG;
	rv = buf_add(&p->part, s, n);
	if (rv != 0)
		return rv;
	rv = gw_sse_dispatch(p, p->part.data, p->part.len, cb, arg);
	buf_reset(&p->part);
	return rv;
}

int
gw_sse_feed(struct gw_sse *p, const char *data, size_t len, gw_sse_line_fn *cb,
    void *arg)
{
	const char *lf, *cr;
	size_t      i = 0, lim;
	int         rv;

	if (p->err != 0)
		return p->err;
	if (len > 0 && p->cr) {
		p->cr = false;
		if (data[0] == '\n')
			i = 1;
	}
	while (i < len) {
		lf = memchr(data + i, '\n', len - i);
		lim = lf != NULL ? (size_t)(lf - (data + i)) : len - i;
		cr = memchr(data + i, '\r', lim);
		if (cr == NULL && lf == NULL) {
			if (len - i > p->max_line - p->part.len) {
				p->err = -ERR_TOOBIG;
				return p->err;
			}
			rv = buf_add(&p->part, data + i, len - i);
			if (rv != 0) {
				p->err = rv;
				return rv;
			}
			break;
		}
		if (cr != NULL)
			lim = (size_t)(cr - (data + i));
		rv = gw_sse_complete(p, data + i, lim, cb, arg);
		if (rv != 0) {
			p->err = rv;
			return rv;
		}
		i += lim + 1;
		if (cr != NULL) {
			if (i < len && data[i] == '\n')
				i++;
			else if (i == len)
				p->cr = true;
		}
	}
	return 0;
}

int
gw_sse_finish(struct gw_sse *p, gw_sse_line_fn *cb, void *arg)
{
	int rv;

	if (p->err != 0)
		return p->err;
	if (p->part.len == 0)
		return 0;
	rv = gw_sse_dispatch(p, p->part.data, p->part.len, cb, arg);
	buf_reset(&p->part);
	if (rv != 0)
		p->err = rv;
	return rv;
}

unsigned
gw_usage_check(struct gw_usage *u)
{
	u->flags &= ~(unsigned)GW_USAGE_F_BAD_SPLIT;
	if ((u->flags & GW_USAGE_F_SPLIT) &&
	    (u->cache_creation_1h > u->cache_creation ||
	        u->cache_creation_5m >
	            u->cache_creation - u->cache_creation_1h))
		u->flags |= GW_USAGE_F_BAD_SPLIT;
	return u->flags;
}

/*
 * Takes the count o[k] into *dst: always when !only_if_zero, else only
 * while *dst is 0.  Returns true when *dst changed.
 */
static bool
gw_sse_take(
    json_t *o, const char *k, int64_t *dst, bool only_if_zero, unsigned *flags)
{
	json_t *v = json_object_get(o, k);
	int64_t n;

	if (v == NULL || json_is_null(v))
		return false;
	if (!json_is_integer(v) || json_integer_value(v) < 0) {
		*flags |= GW_USAGE_F_BAD_VALUE;
		return false;
	}
	n = json_integer_value(v);
	if (only_if_zero && (*dst != 0 || n == 0))
		return false;
	if (*dst == n)
		return false;
	*dst = n;
	return true;
}

/* Applies a usage object; delta selects message_delta's merge rule. */
static bool
gw_sse_apply_usage(struct gw_usage *u, json_t *usage, bool delta)
{
	json_t *cc;
	bool    ch = false;

	if (!json_is_object(usage))
		return false;
	ch |= gw_sse_take(usage, "input_tokens", &u->input, delta, &u->flags);
	ch |= gw_sse_take(usage, "output_tokens", &u->output, false, &u->flags);
	ch |= gw_sse_take(usage, "cache_creation_input_tokens",
	    &u->cache_creation, delta, &u->flags);
	ch |= gw_sse_take(
	    usage, "cache_read_input_tokens", &u->cache_read, delta, &u->flags);
	cc = json_object_get(usage, "cache_creation");
	if (json_is_object(cc)) {
		if (json_object_get(cc, "ephemeral_5m_input_tokens") != NULL ||
		    json_object_get(cc, "ephemeral_1h_input_tokens") != NULL)
			u->flags |= GW_USAGE_F_SPLIT;
		ch |= gw_sse_take(cc, "ephemeral_5m_input_tokens",
		    &u->cache_creation_5m, delta, &u->flags);
		ch |= gw_sse_take(cc, "ephemeral_1h_input_tokens",
		    &u->cache_creation_1h, delta, &u->flags);
	}
	gw_usage_check(u);
	return ch;
}

int
gw_usage_from_json(const char *body, size_t len, struct gw_usage *u)
{
	struct gw_usage tmp;
	json_t         *root;
	int             rv = 0;

	root = json_loadb(body, len, 0, NULL);
	if (!json_is_object(root)) {
		json_decref(root);
		return -ERR_PROTO;
	}
	memset(&tmp, 0, sizeof(tmp));
	if (!json_is_object(json_object_get(root, "usage")))
		rv = -ERR_MISSING;
	else
		gw_sse_apply_usage(&tmp, json_object_get(root, "usage"), false);
	json_decref(root);
	if (rv == 0)
		*u = tmp;
	return rv;
}

enum gw_sse_type {
	GW_SSE_T_OTHER,
	GW_SSE_T_START,
	GW_SSE_T_DELTA,
	GW_SSE_T_CBDELTA,
	GW_SSE_T_STOP,
	GW_SSE_T_ERROR,
};

static enum gw_sse_type
gw_sse_type_of(const char *s, size_t n)
{
	if (gw_sse_field_is(s, n, "content_block_delta"))
		return GW_SSE_T_CBDELTA;
	if (gw_sse_field_is(s, n, "message_start"))
		return GW_SSE_T_START;
	if (gw_sse_field_is(s, n, "message_delta"))
		return GW_SSE_T_DELTA;
	if (gw_sse_field_is(s, n, "message_stop"))
		return GW_SSE_T_STOP;
	if (gw_sse_field_is(s, n, "error"))
		return GW_SSE_T_ERROR;
	return GW_SSE_T_OTHER;
}

/*
 * The type of a data payload sent without an event line: the value of the
 * first "type" key, which Anthropic writes first.  A cheap sniff; the
 * payloads that matter are then parsed and checked properly.
 */
static enum gw_sse_type
gw_sse_sniff(const char *p, size_t n)
{
	const char *k = memmem(p, n, "\"type\"", 6);
	size_t      i, s;

	if (k == NULL)
		return GW_SSE_T_OTHER;
	i = (size_t)(k - p) + 6;
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	if (i >= n || p[i++] != ':')
		return GW_SSE_T_OTHER;
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	if (i >= n || p[i++] != '"')
		return GW_SSE_T_OTHER;
	s = i;
	while (i < n && p[i] != '"')
		i++;
	if (i >= n)
		return GW_SSE_T_OTHER;
	return gw_sse_type_of(p + s, i - s);
}

static void
gw_sse_copy(char *dst, size_t cap, json_t *s, const char *dflt)
{
	const char *v = json_string_value(s);

	snprintf(dst, cap, "%s", v != NULL && v[0] != '\0' ? v : dflt);
}

static int
gw_sse_anth_error(struct gw_sse_anth *st, json_t *root)
{
	json_t *e = json_object_get(root, "error");

	gw_sse_copy(st->err_type, sizeof(st->err_type),
	    json_object_get(e, "type"), "api_error");
	gw_sse_copy(st->err_msg, sizeof(st->err_msg),
	    json_object_get(e, "message"), "upstream stream error");
	st->error = true;
	st->in_error = false;
	return GW_SSE_EV_ERROR;
}

static int
gw_sse_anth_parse(
    struct gw_sse_anth *st, enum gw_sse_type t, const struct gw_sse_line *ln)
{
	struct gw_usage *u = &st->usage;
	json_t          *root, *v;
	int              ev = 0;

	root = json_loadb(ln->value, ln->value_len, 0, NULL);
	if (t == GW_SSE_T_ERROR) {
		ev = gw_sse_anth_error(st, root);
	} else if (!json_is_object(root)) {
		ev = 0;
	} else if (t == GW_SSE_T_START) {
		v = json_object_get(root, "message");
		st->started = true;
		ev = GW_SSE_EV_START;
		if (gw_sse_apply_usage(u, json_object_get(v, "usage"), false))
			ev |= GW_SSE_EV_USAGE;
	} else {
		if (gw_sse_apply_usage(u, json_object_get(root, "usage"), true))
			ev |= GW_SSE_EV_USAGE;
		v = json_object_get(
		    json_object_get(root, "delta"), "stop_reason");
		if (json_is_string(v))
			gw_sse_copy(
			    st->stop_reason, sizeof(st->stop_reason), v, "");
	}
	json_decref(root);
	return ev;
}

int
gw_sse_anth_line(struct gw_sse_anth *st, const struct gw_sse_line *ln)
{
	enum gw_sse_type t;

	switch (ln->kind) {
	case GW_SSE_EVENT:
		if (gw_sse_field_is(ln->value, ln->value_len, "error"))
			st->in_error = true;
		return 0;
	case GW_SSE_BLANK:
		if (st->in_error)
			return gw_sse_anth_error(st, NULL);
		return 0;
	case GW_SSE_DATA:
		break;
	default:
		return 0;
	}
	if (ln->event != NULL && ln->event[0] != '\0')
		t = gw_sse_type_of(ln->event, strlen(ln->event));
	else
		t = gw_sse_sniff(ln->value, ln->value_len);
	switch (t) {
	case GW_SSE_T_CBDELTA:
		if (st->first_token)
			return 0;
		st->first_token = true;
		return GW_SSE_EV_FIRST_TOKEN;
	case GW_SSE_T_STOP:
		st->stopped = true;
		return GW_SSE_EV_STOP;
	case GW_SSE_T_START:
	case GW_SSE_T_DELTA:
	case GW_SSE_T_ERROR:
		return gw_sse_anth_parse(st, t, ln);
	default:
		return 0;
	}
}
