/*
 * fakeup_anth.c: the Anthropic routes of the fake.
 *
 *   POST /v1/messages[?beta=true]    a Message (fakeup_gen.c builds it)
 *   POST /v1/messages/count_tokens   {"input_tokens": body bytes / 4 + 1}
 *   GET  /v1/models                  a fixed Anthropic-shaped model list
 *   POST /v1/oauth/token             refresh_token or authorization_code
 *                                    grants (JSON or form body)
 *
 * Each route requires a key (x-api-key, else authorization: Bearer; the
 * OAuth route uses the refresh token or code as its key), resolves the
 * request's mode (the model name's, with the key control merged over it),
 * serves the first-byte delay and answers status failures before doing
 * its own work.  Bodies are validated like Anthropic does (model,
 * messages, max_tokens), with invalid_request_error replies.
 */
#include "err.h"
#include "fakeup.h"
#include "log.h"

#define FAKE_MODEL_MAX 1024 /* longest model name accepted */

static bool
fake_fail_is_status(enum fake_fail f)
{
	return f >= FAKE_FAIL_401 && f <= FAKE_FAIL_INVALID_GRANT;
}

/*
 * The mode of r: the model's, with the key control merged over it.
 * -ERR_INVAL when the model names a malformed mode.
 */
static int
fake_anth_mode(
    struct fake_req *r, const char *key, const char *model, struct fake_mode *m)
{
	char ctl[FAKE_MODE_MAX + 1];

	if (model != NULL && fake_mode_from_model(model, m) != 0)
		return -ERR_INVAL;
	if (fake_log_take_ctl(key, ctl, sizeof(ctl))) {
		fake_log_set(r, "ctl_mode", json_string(ctl));
		if (fake_mode_parse(ctl, strlen(ctl), m) != 0)
			log_warn("fakeup.bad_control", LOG_STR("mode", ctl));
	}
	fake_log_set(r, "fail", json_string(fake_fail_name(m->fail)));
	return 0;
}

/* The request body as a JSON object, or NULL. */
static json_t *
fake_anth_body(struct fake_req *r)
{
	json_t *body = json_loadb(buf_str(&r->body), r->body.len, 0, NULL);

	if (!json_is_object(body)) {
		json_decref(body);
		return NULL;
	}
	return body;
}

/* Validates the Messages body; NULL (reply queued in *ret) on failure. */
static json_t *
fake_anth_check(struct fake_req *r, bool need_max, enum MHD_Result *ret)
{
	json_t     *body = fake_anth_body(r);
	const char *err = NULL;

	if (body == NULL)
		err = "The request body is not valid JSON.";
	else if (!json_is_string(json_object_get(body, "model")))
		err = "model: Field required";
	else if (json_string_length(json_object_get(body, "model")) >
	    FAKE_MODEL_MAX)
		err = "model: String should have at most 1024 characters";
	else if (!json_is_array(json_object_get(body, "messages")))
		err = "messages: Field required";
	else if (need_max &&
	    !json_is_integer(json_object_get(body, "max_tokens")))
		err = "max_tokens: Field required";
	if (err == NULL)
		return body;
	json_decref(body);
	*ret = fake_reply_error(r, 400, "invalid_request_error", err);
	return NULL;
}

/*
 * The common front of the API routes: key required, mode resolved, the
 * first-byte delay served and status failures answered.  Returns true
 * when the route should go on; otherwise *ret holds the result.
 */
static bool
fake_anth_front(struct fake_req *r, const char *key, const char *model,
    struct fake_mode *m, enum MHD_Result *ret)
{
	if (key[0] == '\0' && strcmp(r->path, "/v1/oauth/token") != 0) {
		*ret = fake_reply_error(r, 401, "authentication_error",
		    "x-api-key header is required");
		return false;
	}
	if (fake_anth_mode(r, key, model, m) != 0) {
		*ret = fake_reply_error(r, 400, "invalid_request_error",
		    "fake: malformed mode in the model name");
		return false;
	}
	if (m->first_byte_ms > 0 && fake_wait(r, m->first_byte_ms) != 0) {
		*ret = MHD_NO;
		return false;
	}
	if (fake_fail_is_status(m->fail)) {
		*ret = fake_reply_fail(r, m);
		return false;
	}
	return true;
}

enum MHD_Result
fake_anth_messages(struct fake_req *r)
{
	struct fake_mode     m = {0};
	struct MHD_Response *resp;
	enum MHD_Result      ret = MHD_NO;
	json_t              *body;
	bool                 stream;

	if (r->key[0] != '\0') {
		body = fake_anth_check(r, true, &ret);
		if (body == NULL)
			return ret;
	} else {
		body = NULL;
	}
	fake_log_set(r, "model",
	    json_string(json_string_value(json_object_get(body, "model"))));
	stream = json_is_true(json_object_get(body, "stream"));
	fake_log_set(r, "stream", json_boolean(stream));
	if (!fake_anth_front(r, r->key,
	        json_string_value(json_object_get(body, "model")), &m, &ret))
		goto out;
	if (!stream && m.fail == FAKE_FAIL_INBAND) {
		m.fail = FAKE_FAIL_529; /* no stream to carry it */
		ret = fake_reply_fail(r, &m);
		goto out;
	}
	r->gen = fake_gen_new(r, body, &m, stream);
	resp = fake_gen_response(r->gen);
	if (resp == NULL)
		goto out;
	r->status = 200;
	ret = MHD_queue_response(r->conn, 200, resp);
	MHD_destroy_response(resp);
out:
	json_decref(body);
	return ret;
}

enum MHD_Result
fake_anth_count_tokens(struct fake_req *r)
{
	struct fake_mode m = {0};
	enum MHD_Result  ret = MHD_NO;
	json_t          *body = NULL;
	int64_t          n;

	if (r->key[0] != '\0') {
		body = fake_anth_check(r, false, &ret);
		if (body == NULL)
			return ret;
	}
	if (fake_anth_front(r, r->key,
	        json_string_value(json_object_get(body, "model")), &m, &ret)) {
		n = m.has_usage ? m.usage[0] : (int64_t)(r->body.len / 4 + 1);
		ret = fake_reply_json(r, 200,
		    json_pack("{s:I}", "input_tokens", (json_int_t)n), NULL);
	}
	json_decref(body);
	return ret;
}

enum MHD_Result
fake_anth_models(struct fake_req *r)
{
	static const char *const models[][3] = {
	    {"claude-opus-4-1-20250805", "Claude Opus 4.1",
	        "2025-08-05T00:00:00Z"},
	    {"claude-sonnet-4-5-20250929", "Claude Sonnet 4.5",
	        "2025-09-29T00:00:00Z"},
	    {"claude-haiku-4-5-20251001", "Claude Haiku 4.5",
	        "2025-10-01T00:00:00Z"},
	    {"claude-sonnet-4-20250514", "Claude Sonnet 4",
	        "2025-05-14T00:00:00Z"},
	};
	struct fake_mode m = {0};
	enum MHD_Result  ret;
	json_t          *data;
	size_t           i;

	if (!fake_anth_front(r, r->key, NULL, &m, &ret))
		return ret;
	data = json_array();
	for (i = 0; i < ARRAY_SIZE(models); i++)
		json_array_append_new(data,
		    json_pack("{s:s, s:s, s:s, s:s}", "type", "model", "id",
		        models[i][0], "display_name", models[i][1],
		        "created_at", models[i][2]));
	return fake_reply_json(r, 200,
	    json_pack("{s:o, s:b, s:s, s:s}", "data", data, "has_more", false,
	        "first_id", models[0][0], "last_id",
	        models[ARRAY_SIZE(models) - 1][0]),
	    NULL);
}

/* The value of name in a JSON or form body, copied into out; "" if none. */
static void
fake_anth_param(json_t *body, const struct buf *raw, const char *name,
    char *out, size_t cap)
{
	const char *s = buf_str(raw), *p, *end;
	size_t      nlen = strlen(name), n;

	out[0] = '\0';
	if (body != NULL) {
		p = json_string_value(json_object_get(body, name));
		snprintf(out, cap, "%s", p != NULL ? p : "");
		return;
	}
	for (p = s; p != NULL && *p != '\0'; p = strchr(p, '&')) {
		if (*p == '&')
			p++;
		if (strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
			p += nlen + 1;
			end = strchr(p, '&');
			n = end != NULL ? (size_t)(end - p) : strlen(p);
			snprintf(
			    out, cap, "%.*s", (int)(n < cap ? n : cap - 1), p);
			return;
		}
	}
}

enum MHD_Result
fake_anth_oauth(struct fake_req *r)
{
	struct fake_mode m = {0};
	enum MHD_Result  ret;
	json_t          *body = fake_anth_body(r);
	char             grant[64], tok[FAKE_KEY_MAX + 1];
	char             access[FAKE_ID_LEN], refresh[FAKE_ID_LEN];

	fake_anth_param(body, &r->body, "grant_type", grant, sizeof(grant));
	fake_anth_param(body, &r->body,
	    strcmp(grant, "authorization_code") == 0 ? "code" : "refresh_token",
	    tok, sizeof(tok));
	json_decref(body);
	fake_log_set(r, "grant_type", json_string(grant));
	if (strcmp(grant, "refresh_token") != 0 &&
	    strcmp(grant, "authorization_code") != 0)
		return fake_reply_json(r, 400,
		    json_pack("{s:s, s:s}", "error", "unsupported_grant_type",
		        "error_description", "grant_type not supported"),
		    NULL);
	if (tok[0] == '\0')
		return fake_reply_json(r, 400,
		    json_pack("{s:s, s:s}", "error", "invalid_request",
		        "error_description", "missing refresh_token or code"),
		    NULL);
	/* The refresh token (or code) is the key its controls hang on. */
	if (!fake_anth_front(r, tok, NULL, &m, &ret))
		return ret;
	fake_new_id("sk-ant-oat01-fake-", access);
	fake_new_id("sk-ant-ort01-fake-", refresh);
	return fake_reply_json(r, 200,
	    json_pack("{s:s, s:s, s:i, s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s}}",
	        "token_type", "Bearer", "access_token", access, "expires_in",
	        28800, "refresh_token", refresh, "scope",
	        "user:inference user:profile", "organization", "uuid",
	        "00000000-0000-4000-8000-00000000f001", "name", "Fake Org",
	        "account", "uuid", "00000000-0000-4000-8000-00000000a001",
	        "email_address", "fake@example.com"),
	    NULL);
}
