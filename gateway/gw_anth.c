/*
 * gw_anth.c: parsing /v1/messages bodies and splicing the upstream body
 * (see gw_anth.h).
 *
 * jansson reads the body once, for the facts; the rewrite works on the
 * original bytes.  A small scanner finds the byte span of a member's value
 * inside an object ("model", "system", "metadata" then "user_id"), and the
 * output is the original with those spans replaced.  The scanner is
 * bounds-checked and iterative, so it is also safe on the upstream's
 * response bytes, which jansson has not validated.
 */
#include "gw_anth.h"

#include <stdio.h>

#include "crypto.h"
#include "err.h"

#define GW_ANTH_CC_SYSTEM_JSON                                    \
	"[{\"type\":\"text\",\"text\":\"" GW_ANTH_CC_SYSTEM "\"," \
	"\"cache_control\":{\"type\":\"ephemeral\"}}]"

/* A replacement of bytes [off, end) of the original by (s, n). */
struct gw_anth_edit {
	size_t      off;
	size_t      end;
	const char *s;
	size_t      n;
};

static bool
gw_anth_is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static size_t
gw_anth_ws(const char *p, size_t len, size_t i)
{
	while (i < len && gw_anth_is_ws(p[i]))
		i++;
	return i;
}

bool
gw_anth_depth_ok(const char *p, size_t len, int max)
{
	bool   in_str = false;
	int    depth = 0;
	size_t i;

	for (i = 0; i < len; i++) {
		char c = p[i];

		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = false;
			continue;
		}
		if (c == '"') {
			in_str = true;
		} else if (c == '{' || c == '[') {
			if (++depth > max)
				return false;
		} else if ((c == '}' || c == ']') && depth > 0) {
			depth--;
		}
	}
	return true;
}

/* Moves *i (at an opening quote) just past the closing one. */
static int
gw_anth_skip_str(const char *p, size_t len, size_t *i)
{
	size_t j = *i + 1;

	while (j < len) {
		if (p[j] == '\\') {
			j += 2;
			continue;
		}
		if (p[j] == '"') {
			*i = j + 1;
			return 0;
		}
		j++;
	}
	return -ERR_PROTO;
}

/* Moves *i (at the first byte of a value) just past the value. */
static int
gw_anth_skip_value(const char *p, size_t len, size_t *i)
{
	size_t j = *i;
	size_t depth = 0;

	if (j >= len)
		return -ERR_PROTO;
	if (p[j] == '"')
		return gw_anth_skip_str(p, len, i);
	if (p[j] != '{' && p[j] != '[') {
		while (j < len && !gw_anth_is_ws(p[j]) && p[j] != ',' &&
		    p[j] != '}' && p[j] != ']')
			j++;
		if (j == *i)
			return -ERR_PROTO;
		*i = j;
		return 0;
	}
	while (j < len) {
		if (p[j] == '"') {
			if (gw_anth_skip_str(p, len, &j) != 0)
				return -ERR_PROTO;
			continue;
		}
		if (p[j] == '{' || p[j] == '[') {
			depth++;
		} else if (p[j] == '}' || p[j] == ']') {
			if (--depth == 0) {
				*i = j + 1;
				return 0;
			}
		}
		j++;
	}
	return -ERR_PROTO;
}

/* Whether the JSON string token (p, n), quotes included, decodes to key. */
static bool
gw_anth_key_is(const char *p, size_t n, const char *key)
{
	json_t *s;
	bool    eq;

	if (memchr(p, '\\', n) == NULL)
		return n - 2 == strlen(key) && memcmp(p + 1, key, n - 2) == 0;
	s = json_loadb(p, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	eq = json_is_string(s) && json_string_length(s) == strlen(key) &&
	    memcmp(json_string_value(s), key, strlen(key)) == 0;
	json_decref(s);
	return eq;
}

/*
 * Finds member key of the object starting at or after obj (whitespace
 * skipped) in (p, len): 1 with the value's span in [*voff, *vend), 0 when
 * absent, -ERR_PROTO when the bytes are not an object.  The first match
 * wins (requests have no duplicate keys: gw_anth_parse() rejects them).
 */
static int
gw_anth_find_member(const char *p, size_t len, size_t obj, const char *key,
    size_t *voff, size_t *vend)
{
	size_t i = gw_anth_ws(p, len, obj);
	size_t ks, vs;

	if (i >= len || p[i] != '{')
		return -ERR_PROTO;
	i = gw_anth_ws(p, len, i + 1);
	if (i < len && p[i] == '}')
		return 0;
	for (;;) {
		if (i >= len || p[i] != '"')
			return -ERR_PROTO;
		ks = i;
		if (gw_anth_skip_str(p, len, &i) != 0)
			return -ERR_PROTO;
		if (!gw_anth_key_is(p + ks, i - ks, key))
			ks = SIZE_MAX;
		i = gw_anth_ws(p, len, i);
		if (i >= len || p[i] != ':')
			return -ERR_PROTO;
		vs = i = gw_anth_ws(p, len, i + 1);
		if (gw_anth_skip_value(p, len, &i) != 0)
			return -ERR_PROTO;
		if (ks != SIZE_MAX) {
			*voff = vs;
			*vend = i;
			return 1;
		}
		i = gw_anth_ws(p, len, i);
		if (i < len && p[i] == ',') {
			i = gw_anth_ws(p, len, i + 1);
			continue;
		}
		if (i < len && p[i] == '}')
			return 0;
		return -ERR_PROTO;
	}
}

/* Appends p with the edits (non-overlapping, any order) applied. */
static int
gw_anth_splice(const char *p, size_t len, struct gw_anth_edit *e, size_t ne,
    struct buf *out)
{
	struct gw_anth_edit t;
	size_t              i, j, at = 0;
	int                 rv;

	for (i = 1; i < ne; i++) {
		for (j = i; j > 0 && e[j - 1].off > e[j].off; j--) {
			t = e[j];
			e[j] = e[j - 1];
			e[j - 1] = t;
		}
	}
	for (i = 0; i < ne; i++) {
		ASSERT(
		    e[i].off >= at && e[i].end >= e[i].off && e[i].end <= len);
		rv = buf_add(out, p + at, e[i].off - at);
		if (rv == 0)
			rv = buf_add(out, e[i].s, e[i].n);
		if (rv != 0)
			return rv;
		at = e[i].end;
	}
	return buf_add(out, p + at, len - at);
}

/* Appends s as a quoted JSON string. */
static int
gw_anth_add_qstr(struct buf *b, const char *s, size_t n)
{
	int rv;

	rv = buf_addch(b, '"');
	if (rv == 0)
		rv = buf_add_json_str(b, s, n);
	if (rv == 0)
		rv = buf_addch(b, '"');
	return rv;
}

static const char *
gw_anth_str(const char *s)
{
	return s != NULL ? s : "";
}

static bool
gw_anth_is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	    (c >= 'A' && c <= 'F');
}

static bool
gw_anth_uuidish(const char *s, size_t n)
{
	size_t i;

	if (n != 36)
		return false;
	for (i = 0; i < n; i++) {
		if (s[i] != '-' && !gw_anth_is_hex(s[i]))
			return false;
	}
	return true;
}

/*
 * Recognises user_<64hex>_account_<uuid|>_session_<uuid>; on a match
 * *sess points at the session tail (36 bytes, at the end of s).
 */
static bool
gw_anth_uid_legacy(const char *s, size_t n, const char **sess)
{
	static const char acc[] = "_account_", ses[] = "_session_";
	size_t            i, a = 5 + 64 + sizeof(acc) - 1;

	if (n < a || memcmp(s, "user_", 5) != 0 ||
	    memcmp(s + 69, acc, sizeof(acc) - 1) != 0)
		return false;
	for (i = 5; i < 69; i++) {
		if (!gw_anth_is_hex(s[i]))
			return false;
	}
	if (n - a >= 36 && gw_anth_uuidish(s + a, 36))
		a += 36;
	if (n - a != sizeof(ses) - 1 + 36 ||
	    memcmp(s + a, ses, sizeof(ses) - 1) != 0 ||
	    !gw_anth_uuidish(s + n - 36, 36))
		return false;
	*sess = s + n - 36;
	return true;
}

static void
gw_anth_set_session(struct gw_anth_req *r, const char *s, size_t n)
{
	if (n > GW_ANTH_USERID_MAX || memchr(s, '\0', n) != NULL)
		return;
	memcpy(r->session, s, n);
	r->session[n] = '\0';
}

/* Sets uid_form and session from metadata.user_id, if any. */
static void
gw_anth_parse_uid(struct gw_anth_req *r)
{
	json_t     *uid, *obj, *sid;
	const char *s, *sess;
	size_t      n;

	uid = json_object_get(json_object_get(r->root, "metadata"), "user_id");
	if (!json_is_string(uid))
		return;
	s = json_string_value(uid);
	n = json_string_length(uid);
	r->uid_form = GW_ANTH_UID_OTHER;
	if (n > GW_ANTH_USERID_MAX || memchr(s, '\0', n) != NULL)
		return;
	if (gw_anth_uid_legacy(s, n, &sess)) {
		r->uid_form = GW_ANTH_UID_LEGACY;
		gw_anth_set_session(r, sess, 36);
		return;
	}
	if (n == 0 || s[0] != '{')
		return;
	obj = json_loadb(s, n, JSON_REJECT_DUPLICATES, NULL);
	if (json_is_object(obj) &&
	    (json_is_string(json_object_get(obj, "device_id")) ||
	        json_is_string(json_object_get(obj, "session_id")))) {
		r->uid_form = GW_ANTH_UID_JSON;
		sid = json_object_get(obj, "session_id");
		if (json_is_string(sid))
			gw_anth_set_session(
			    r, json_string_value(sid), json_string_length(sid));
	}
	json_decref(obj);
}

static enum gw_anth_think
gw_anth_parse_thinking(json_t *root)
{
	json_t     *th = json_object_get(root, "thinking");
	const char *t;

	if (th == NULL || json_is_null(th))
		return GW_ANTH_THINK_NONE;
	t = json_string_value(json_object_get(th, "type"));
	if (t == NULL)
		return GW_ANTH_THINK_OTHER;
	if (strcmp(t, "enabled") == 0)
		return GW_ANTH_THINK_ENABLED;
	if (strcmp(t, "adaptive") == 0)
		return GW_ANTH_THINK_ADAPTIVE;
	if (strcmp(t, "disabled") == 0)
		return GW_ANTH_THINK_DISABLED;
	return GW_ANTH_THINK_OTHER;
}

static int
gw_anth_fail(struct gw_anth_req *r, int rv, const char *msg)
{
	json_decref(r->root);
	r->root = NULL;
	snprintf(r->err, sizeof(r->err), "%s", msg);
	return rv;
}

int
gw_anth_parse(const char *body, size_t len, struct gw_anth_req *out)
{
	json_error_t jerr;
	json_t      *model, *stream, *sys, *tools;
	size_t       n;

	memset(out, 0, sizeof(*out));
	if (len > GW_ANTH_BODY_MAX)
		return gw_anth_fail(out, -ERR_TOOBIG, "request body too large");
	if (!gw_anth_depth_ok(body, len, GW_ANTH_DEPTH_MAX))
		return gw_anth_fail(out, -ERR_TOOBIG,
		    "invalid JSON: nesting deeper than 64 levels");
	out->root = json_loadb(
	    body, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
	if (out->root == NULL) {
		snprintf(out->err, sizeof(out->err),
		    "invalid JSON: %.100s at line %d column %d", jerr.text,
		    jerr.line, jerr.column);
		return -ERR_PROTO;
	}
	if (!json_is_object(out->root))
		return gw_anth_fail(out, -ERR_PROTO,
		    "invalid JSON: the request body must be an object");
	model = json_object_get(out->root, "model");
	if (!json_is_string(model) || json_string_length(model) == 0)
		return gw_anth_fail(out, -ERR_MISSING, "model is required");
	n = json_string_length(model);
	if (n > GW_ANTH_MODEL_MAX)
		return gw_anth_fail(out, -ERR_TOOBIG, "model name too long");
	if (memchr(json_string_value(model), '\0', n) != NULL)
		return gw_anth_fail(out, -ERR_MISSING, "model is invalid");
	memcpy(out->model, json_string_value(model), n + 1);
	stream = json_object_get(out->root, "stream");
	if (stream != NULL && !json_is_boolean(stream) && !json_is_null(stream))
		return gw_anth_fail(out, -ERR_TYPE, "stream must be a boolean");
	out->stream = json_is_true(stream);
	sys = json_object_get(out->root, "system");
	out->has_system = sys != NULL && !json_is_null(sys);
	tools = json_object_get(out->root, "tools");
	out->has_tools = json_is_array(tools) && json_array_size(tools) > 0;
	out->thinking = gw_anth_parse_thinking(out->root);
	gw_anth_parse_uid(out);
	out->body = body;
	out->len = len;
	return 0;
}

void
gw_anth_req_release(struct gw_anth_req *req)
{
	json_decref(req->root);
	req->root = NULL;
}

void
gw_anth_derive_session(int64_t acct_id, const char *session, char out[37])
{
	uint8_t     h[CRYPTO_SHA256_LEN];
	struct buf  seed;
	const char *s = gw_anth_str(session);

	buf_init(&seed, GW_ANTH_USERID_MAX + 64);
	if (buf_addf(&seed, "%lld::%s", (long long)acct_id, s) != 0)
		BUG("gw_anth_derive_session: seed over cap");
	crypto_sha256(seed.data, seed.len, h);
	buf_release(&seed);
	h[6] = (uint8_t)((h[6] & 0x0f) | 0x40);
	h[8] = (uint8_t)((h[8] & 0x3f) | 0x80);
	snprintf(out, 37,
	    "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
	    "%02x%02x%02x%02x%02x%02x",
	    h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9], h[10],
	    h[11], h[12], h[13], h[14], h[15]);
}

static bool
gw_anth_want_model(
    const struct gw_anth_req *req, const struct gw_anth_account *acct)
{
	const char *m = gw_anth_str(acct->upstream_model);

	return m[0] != '\0' && strcmp(m, req->model) != 0;
}

static bool
gw_anth_want_system(
    const struct gw_anth_req *req, const struct gw_anth_account *acct)
{
	return acct->type != GW_ANTH_APIKEY && !req->has_system;
}

static bool
gw_anth_want_uid(
    const struct gw_anth_req *req, const struct gw_anth_account *acct)
{
	return acct->type != GW_ANTH_APIKEY &&
	    gw_anth_str(acct->client_id)[0] != '\0' &&
	    (req->uid_form == GW_ANTH_UID_LEGACY ||
	        req->uid_form == GW_ANTH_UID_JSON);
}

bool
gw_anth_body_changes(
    const struct gw_anth_req *req, const struct gw_anth_account *acct)
{
	return gw_anth_want_model(req, acct) ||
	    gw_anth_want_system(req, acct) || gw_anth_want_uid(req, acct);
}

/* The new user_id string (unquoted) for the account, appended to b. */
static int
gw_anth_new_uid(const struct gw_anth_req *req,
    const struct gw_anth_account *acct, struct buf *b)
{
	char    sess[37];
	json_t *uid, *obj;
	char   *s;
	int     rv;

	gw_anth_derive_session(acct->id, req->session, sess);
	if (req->uid_form == GW_ANTH_UID_LEGACY)
		return buf_addf(b, "user_%s_account_%s_session_%s",
		    gw_anth_str(acct->client_id),
		    gw_anth_str(acct->account_uuid), sess);
	uid =
	    json_object_get(json_object_get(req->root, "metadata"), "user_id");
	obj = json_loadb(
	    json_string_value(uid), json_string_length(uid), 0, NULL);
	if (!json_is_object(obj))
		BUG("gw_anth_new_uid: user_id form changed");
	json_object_set_new(
	    obj, "device_id", json_string(gw_anth_str(acct->client_id)));
	json_object_set_new(
	    obj, "account_uuid", json_string(gw_anth_str(acct->account_uuid)));
	json_object_set_new(obj, "session_id", json_string(sess));
	s = json_dumps(obj, JSON_COMPACT);
	json_decref(obj);
	if (s == NULL)
		BUG("gw_anth_new_uid: json_dumps failed");
	rv = buf_addstr(b, s);
	free(s);
	return rv;
}

/* The edit that replaces the value of metadata.user_id. */
static int
gw_anth_uid_edit(const struct gw_anth_req *req,
    const struct gw_anth_account *acct, struct buf *repl,
    struct gw_anth_edit *e)
{
	struct buf raw;
	size_t     mo, me, uo, ue;
	int        rv;

	if (gw_anth_find_member(req->body, req->len, 0, "metadata", &mo, &me) !=
	        1 ||
	    gw_anth_find_member(req->body, me, mo, "user_id", &uo, &ue) != 1)
		BUG("gw_anth_uid_edit: metadata.user_id not found");
	buf_init(&raw, GW_ANTH_USERID_MAX + 512);
	rv = gw_anth_new_uid(req, acct, &raw);
	if (rv == 0)
		rv = gw_anth_add_qstr(repl, raw.data, raw.len);
	buf_release(&raw);
	if (rv != 0)
		return rv;
	e->off = uo;
	e->end = ue;
	return 0;
}

int
gw_anth_build_body(const struct gw_anth_req *req,
    const struct gw_anth_account *acct, struct buf *out)
{
	struct gw_anth_edit e[3];
	struct buf          model, uid;
	size_t              ne = 0, vo, ve;
	int                 rv = 0;

	ASSERT(req->root != NULL);
	if (!gw_anth_body_changes(req, acct))
		return buf_add(out, req->body, req->len);
	buf_init(&model, GW_ANTH_MODEL_MAX * 6 + 3);
	buf_init(&uid, GW_ANTH_USERID_MAX * 6 + 512);
	if (gw_anth_want_model(req, acct)) {
		if (gw_anth_find_member(
		        req->body, req->len, 0, "model", &vo, &ve) != 1)
			BUG("gw_anth_build_body: model not found");
		rv = gw_anth_add_qstr(
		    &model, acct->upstream_model, strlen(acct->upstream_model));
		e[ne++] = (struct gw_anth_edit){vo, ve, model.data, model.len};
	}
	if (rv == 0 && gw_anth_want_system(req, acct)) {
		static const char sys[] = GW_ANTH_CC_SYSTEM_JSON;

		if (gw_anth_find_member(
		        req->body, req->len, 0, "system", &vo, &ve) == 1) {
			/* "system": null */
			e[ne++] =
			    (struct gw_anth_edit){vo, ve, sys, sizeof(sys) - 1};
		} else {
			static const char ins[] =
			    "\"system\":" GW_ANTH_CC_SYSTEM_JSON ",";

			vo = gw_anth_ws(req->body, req->len, 0) + 1;
			e[ne++] =
			    (struct gw_anth_edit){vo, vo, ins, sizeof(ins) - 1};
		}
	}
	if (rv == 0 && gw_anth_want_uid(req, acct)) {
		rv = gw_anth_uid_edit(req, acct, &uid, &e[ne]);
		if (rv == 0) {
			e[ne].s = uid.data;
			e[ne].n = uid.len;
			ne++;
		}
	}
	if (rv == 0)
		rv = gw_anth_splice(req->body, req->len, e, ne, out);
	buf_release(&model);
	buf_release(&uid);
	return rv;
}

int
gw_anth_rewrite_resp_model(
    const char *body, size_t len, const char *model, struct buf *out)
{
	struct gw_anth_edit e;
	struct buf          q;
	size_t              vo, ve;
	int                 rv;

	if (gw_anth_find_member(body, len, 0, "model", &vo, &ve) != 1 ||
	    body[vo] != '"')
		return buf_add(out, body, len);
	buf_init(&q, GW_ANTH_MODEL_MAX * 6 + 3);
	rv = gw_anth_add_qstr(&q, model, strlen(model));
	if (rv == 0) {
		e = (struct gw_anth_edit){vo, ve, q.data, q.len};
		rv = gw_anth_splice(body, len, &e, 1, out);
	}
	buf_release(&q);
	return rv;
}

int
gw_anth_rewrite_sse_data(
    const char *data, size_t len, const char *model, struct buf *out)
{
	static const char   ms[] = "\"message_start\"";
	struct gw_anth_edit e;
	struct buf          q;
	size_t              at = 0, to, te, mo, me, vo, ve;
	int                 rv;

	if (len >= 5 && memcmp(data, "data:", 5) == 0)
		at = len > 5 && data[5] == ' ' ? 6 : 5;
	if (gw_anth_find_member(data, len, at, "type", &to, &te) != 1 ||
	    te - to != sizeof(ms) - 1 || memcmp(data + to, ms, te - to) != 0 ||
	    gw_anth_find_member(data, len, at, "message", &mo, &me) != 1 ||
	    gw_anth_find_member(data, me, mo, "model", &vo, &ve) != 1 ||
	    data[vo] != '"')
		return buf_add(out, data, len);
	buf_init(&q, GW_ANTH_MODEL_MAX * 6 + 3);
	rv = gw_anth_add_qstr(&q, model, strlen(model));
	if (rv == 0) {
		e = (struct gw_anth_edit){vo, ve, q.data, q.len};
		rv = gw_anth_splice(data, len, &e, 1, out);
	}
	buf_release(&q);
	return rv;
}
