/*
 * gw_anth_test.c: request parsing, body splicing (byte-identical
 * passthrough, model mapping, system injection, both metadata.user_id
 * forms), upstream headers and the anthropic-beta merge, and the model
 * rewrite of responses.  Fixtures follow CLIENTS.md.
 */
#include <jansson.h>
#include <strings.h>

#include "err.h"
#include "gw_anth.h"
#include "t.h"

#define DEV   "99842e90aa11bb22cc33dd44ee55ff6600112233445566778899aabbccdd3009"
#define SESS  "2789bc0c-853c-4744-b670-e929a2573975"
#define CLI   "0000000000000000000000000000000000000000000000000000000000c0ffee"
#define AUUID "11111111-2222-4333-8444-555555555555"
#define CC_BETA                                                            \
	"claude-code-20250219,context-1m-2025-08-07,interleaved-thinking-" \
	"2025-05-14,effort-2025-11-24"

/* Claude Code 2.1.197's shape (trimmed), with the JSON user_id form. */
static const char cc_body[] =
    "{\"model\":\"claude-opus-4-8\",\"messages\":[{\"role\":\"user\","
    "\"content\":[{\"type\":\"text\",\"text\":\"hello \\u00e9 {[\","
    "\"cache_control\":{\"type\":\"ephemeral\"}}]},{\"role\":\"system\","
    "\"content\":\"Available agent types\"}],\"system\":[{\"type\":\"text\","
    "\"text\":\"x-anthropic-billing-header: cc_version=2.1.197.fa0; "
    "cc_entrypoint=sdk-cli;\"},{\"type\":\"text\",\"text\":\"You are a "
    "Claude agent, built on Anthropic's Claude Agent SDK.\","
    "\"cache_control\":{\"type\":\"ephemeral\"}}],\"tools\":[{\"name\":"
    "\"Bash\",\"description\":\"run\",\"input_schema\":{\"type\":\"object\","
    "\"properties\":{\"command\":{\"type\":\"string\"}}}}],\"metadata\":"
    "{\"user_id\":\"{\\\"device_id\\\":\\\"" DEV "\\\",\\\"account_uuid\\\":"
    "\\\"\\\",\\\"session_id\\\":\\\"" SESS "\\\"}\"},\"max_tokens\":64000,"
    "\"thinking\":{\"type\":\"adaptive\"},\"context_management\":{\"edits\":"
    "[{\"type\":\"clear_thinking_20251015\",\"keep\":\"all\"}]},"
    "\"output_config\":{\"effort\":\"high\"},\"temperature\":0.7,"
    "\"stream\":true}";

/* The SDK's shape: no system, pretty-printed, legacy user_id. */
static const char sdk_body[] =
    "{\n  \"model\": \"claude-sonnet-4-5\",\n  \"max_tokens\": 64,\n"
    "  \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}],\n"
    "  \"metadata\": {\"user_id\": \"user_" DEV "_account__session_" SESS
    "\"},\n  \"temperature\": 1e-1\n}";

static const char *
lookup_cb(void *arg, const char *name)
{
	const char *const *kv = arg;

	for (; kv[0] != NULL; kv += 2) {
		if (strcasecmp(kv[0], name) == 0)
			return kv[1];
	}
	return NULL;
}

/* Claude Code's POST headers with API key auth (CLIENTS.md 2.1). */
static const char *const cc_headers[] = {"accept", "application/json",
    "content-type", "application/json", "user-agent",
    "claude-cli/2.1.197 (external, sdk-cli)", "x-claude-code-session-id", SESS,
    "x-stainless-arch", "x64", "x-stainless-lang", "js", "x-stainless-os",
    "Linux", "x-stainless-package-version", "0.94.0", "x-stainless-retry-count",
    "0", "x-stainless-runtime", "node", "x-stainless-runtime-version",
    "v26.3.0", "x-stainless-timeout", "600", "anthropic-beta", CC_BETA,
    "anthropic-dangerous-direct-browser-access", "true", "anthropic-version",
    "2023-06-01", "x-api-key", "sk-final", "x-app", "cli", "connection",
    "keep-alive", "accept-encoding", "gzip, deflate, br, zstd",
    "content-length", "76308", "cookie", "a=b", "host", "gw.local",
    "authorization", "Bearer leaked", "x-goog-api-key", "leak",
    "transfer-encoding", "chunked", NULL};

static json_t *
load(const char *s, size_t n)
{
	json_t *j = json_loadb(s, n, JSON_REJECT_DUPLICATES, NULL);

	T_ASSERT(j != NULL);
	return j;
}

static void
test_parse_claude_code(void)
{
	struct gw_anth_req r;

	T_OK(gw_anth_parse(cc_body, sizeof(cc_body) - 1, &r));
	T_EQ_STR(r.model, "claude-opus-4-8");
	T_ASSERT(r.stream);
	T_ASSERT(r.has_system);
	T_ASSERT(r.has_tools);
	T_EQ_INT(r.thinking, GW_ANTH_THINK_ADAPTIVE);
	T_EQ_INT(r.uid_form, GW_ANTH_UID_JSON);
	T_EQ_STR(r.session, SESS);
	T_ASSERT(r.body == cc_body && r.len == sizeof(cc_body) - 1);
	gw_anth_req_release(&r);
	gw_anth_req_release(&r); /* idempotent */
}

static void
test_parse_sdk_legacy(void)
{
	struct gw_anth_req r;
	const char *b = "{\"model\":\"m\",\"tools\":[],\"thinking\":{\"type\":"
	                "\"enabled\",\"budget_tokens\":1024},\"system\":null,"
	                "\"stream\":false}";

	T_OK(gw_anth_parse(sdk_body, sizeof(sdk_body) - 1, &r));
	T_EQ_STR(r.model, "claude-sonnet-4-5");
	T_ASSERT(!r.stream);
	T_ASSERT(!r.has_system);
	T_ASSERT(!r.has_tools);
	T_EQ_INT(r.thinking, GW_ANTH_THINK_NONE);
	T_EQ_INT(r.uid_form, GW_ANTH_UID_LEGACY);
	T_EQ_STR(r.session, SESS);
	gw_anth_req_release(&r);

	T_OK(gw_anth_parse(b, strlen(b), &r));
	T_ASSERT(!r.has_tools);  /* empty array */
	T_ASSERT(!r.has_system); /* null */
	T_EQ_INT(r.thinking, GW_ANTH_THINK_ENABLED);
	T_EQ_INT(r.uid_form, GW_ANTH_UID_NONE);
	T_EQ_STR(r.session, "");
	gw_anth_req_release(&r);
}

static void
test_parse_uid_forms(void)
{
	static const struct {
		const char           *uid;
		enum gw_anth_uid_form form;
		const char           *session;
	} c[] = {
	    {"user_" DEV "_account__session_" SESS, GW_ANTH_UID_LEGACY, SESS},
	    {"user_" DEV "_account_" AUUID "_session_" SESS, GW_ANTH_UID_LEGACY,
	        SESS},
	    {"user_" DEV "_account_x_session_" SESS, GW_ANTH_UID_OTHER, ""},
	    {"user_" DEV "_account__session_short", GW_ANTH_UID_OTHER, ""},
	    {"user_abc_account__session_" SESS, GW_ANTH_UID_OTHER, ""},
	    {"user-123", GW_ANTH_UID_OTHER, ""},
	    {"", GW_ANTH_UID_OTHER, ""},
	    {"{\"device_id\":\"d\",\"session_id\":\"s1\"}", GW_ANTH_UID_JSON,
	        "s1"},
	    {"{\"device_id\":\"d\"}", GW_ANTH_UID_JSON, ""},
	    {"{\"other\":1}", GW_ANTH_UID_OTHER, ""},
	    {"{not json", GW_ANTH_UID_OTHER, ""},
	};
	struct gw_anth_req r;
	struct buf         b;
	size_t             i;

	for (i = 0; i < ARRAY_SIZE(c); i++) {
		buf_init(&b, 4096);
		T_OK(buf_addstr(
		    &b, "{\"model\":\"m\",\"metadata\":{\"user_id\":\""));
		T_OK(buf_add_json_str(&b, c[i].uid, strlen(c[i].uid)));
		T_OK(buf_addstr(&b, "\"}}"));
		T_OK(gw_anth_parse(b.data, b.len, &r));
		T_EQ_INT(r.uid_form, c[i].form);
		T_EQ_STR(r.session, c[i].session);
		gw_anth_req_release(&r);
		buf_release(&b);
	}
}

static void
test_parse_errors(void)
{
	static const struct {
		const char *body;
		int         rv;
		const char *err;
	} c[] = {
	    {"", -ERR_PROTO, "invalid JSON"},
	    {"{\"model\":", -ERR_PROTO, "invalid JSON"},
	    {"not json", -ERR_PROTO, "invalid JSON"},
	    {"[1,2]", -ERR_PROTO, "invalid JSON"},
	    {"{\"model\":\"a\",\"model\":\"b\"}", -ERR_PROTO, "invalid JSON"},
	    {"{\"messages\":[]}", -ERR_MISSING, "model is required"},
	    {"{\"model\":42}", -ERR_MISSING, "model is required"},
	    {"{\"model\":null}", -ERR_MISSING, "model is required"},
	    {"{\"model\":\"\"}", -ERR_MISSING, "model is required"},
	    {"{\"model\":\"a\\u0000b\"}", -ERR_MISSING, "model is invalid"},
	    {"{\"model\":\"m\",\"stream\":\"yes\"}", -ERR_TYPE,
	        "stream must be a boolean"},
	};
	struct gw_anth_req r;
	size_t             i;

	for (i = 0; i < ARRAY_SIZE(c); i++) {
		T_EQ_INT(
		    gw_anth_parse(c[i].body, strlen(c[i].body), &r), c[i].rv);
		T_ASSERT(r.root == NULL);
		T_ASSERT(strncmp(r.err, c[i].err, strlen(c[i].err)) == 0);
		gw_anth_req_release(&r);
	}
	T_EQ_INT(gw_anth_parse("{}", GW_ANTH_BODY_MAX + 1, &r), -ERR_TOOBIG);
}

static void
test_parse_limits(void)
{
	struct gw_anth_req r;
	struct buf         b;
	int                i;

	/* 64 levels are fine, 65 are not; brackets in strings do not count. */
	buf_init(&b, 4096);
	T_OK(buf_addstr(&b, "{\"model\":\"m\",\"x\":\"[[[[{{{{\",\"d\":"));
	for (i = 0; i < 63; i++)
		T_OK(buf_addch(&b, '['));
	for (i = 0; i < 63; i++)
		T_OK(buf_addch(&b, ']'));
	T_OK(buf_addch(&b, '}'));
	T_OK(gw_anth_parse(b.data, b.len, &r));
	gw_anth_req_release(&r);
	buf_reset(&b);
	T_OK(buf_addstr(&b, "{\"model\":\"m\",\"d\":"));
	for (i = 0; i < 64; i++)
		T_OK(buf_addch(&b, '['));
	for (i = 0; i < 64; i++)
		T_OK(buf_addch(&b, ']'));
	T_OK(buf_addch(&b, '}'));
	T_EQ_INT(gw_anth_parse(b.data, b.len, &r), -ERR_TOOBIG);
	T_ASSERT(strstr(r.err, "nesting") != NULL);
	buf_reset(&b);

	T_OK(buf_addstr(&b, "{\"model\":\""));
	for (i = 0; i < GW_ANTH_MODEL_MAX + 1; i++)
		T_OK(buf_addch(&b, 'm'));
	T_OK(buf_addstr(&b, "\"}"));
	T_EQ_INT(gw_anth_parse(b.data, b.len, &r), -ERR_TOOBIG);
	buf_release(&b);

	T_ASSERT(gw_anth_depth_ok("\"\\\"[[[\"", 7, 1));
	T_ASSERT(!gw_anth_depth_ok("[[", 2, 1));
	T_ASSERT(gw_anth_depth_ok("[][][]", 6, 1));
	T_ASSERT(gw_anth_depth_ok("]]]]][", 6, 1)); /* jansson rejects it */
}

/* An API-key account without mapping: the very same bytes go out. */
static void
test_body_passthrough(void)
{
	struct gw_anth_account a = {.type = GW_ANTH_APIKEY,
	    .id = 7,
	    .client_id = CLI,
	    .credential = "sk-up"};
	struct gw_anth_req     r;
	struct buf             out;

	buf_init(&out, GW_ANTH_BODY_MAX + 1);
	T_OK(gw_anth_parse(cc_body, sizeof(cc_body) - 1, &r));
	T_ASSERT(!gw_anth_body_changes(&r, &a));
	T_OK(gw_anth_build_body(&r, &a, &out));
	T_EQ_INT(out.len, sizeof(cc_body) - 1);
	T_ASSERT(memcmp(out.data, cc_body, out.len) == 0);
	gw_anth_req_release(&r);
	buf_reset(&out);

	T_OK(gw_anth_parse(sdk_body, sizeof(sdk_body) - 1, &r));
	a.upstream_model = "claude-sonnet-4-5"; /* the same: no change */
	T_ASSERT(!gw_anth_body_changes(&r, &a));
	T_OK(gw_anth_build_body(&r, &a, &out));
	T_EQ_STR(buf_str(&out), sdk_body);
	gw_anth_req_release(&r);
	buf_release(&out);

	/* An OAuth account with system and no user_id: unchanged too. */
	a.type = GW_ANTH_OAUTH;
	a.upstream_model = NULL;
	buf_init(&out, 1 << 16);
	T_OK(gw_anth_parse("{\"system\":\"s\",\"model\":\"m\"}", 26, &r));
	T_ASSERT(!gw_anth_body_changes(&r, &a));
	T_OK(gw_anth_build_body(&r, &a, &out));
	T_EQ_STR(buf_str(&out), "{\"system\":\"s\",\"model\":\"m\"}");
	gw_anth_req_release(&r);
	buf_release(&out);
}

static void
test_body_model_mapping(void)
{
	struct gw_anth_account a = {.type = GW_ANTH_APIKEY,
	    .upstream_model = "claude-sonnet-4-5-20250929"};
	struct gw_anth_req     r;
	struct buf             out;
	const char            *esc = "{ \"mod\\u0065l\" : \"x\" , \"n\":1.10}";

	buf_init(&out, 1 << 20);
	T_OK(gw_anth_parse(sdk_body, sizeof(sdk_body) - 1, &r));
	T_ASSERT(gw_anth_body_changes(&r, &a));
	T_OK(gw_anth_build_body(&r, &a, &out));
	T_EQ_STR(buf_str(&out),
	    "{\n  \"model\": \"claude-sonnet-4-5-20250929\",\n"
	    "  \"max_tokens\": 64,\n"
	    "  \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}],\n"
	    "  \"metadata\": {\"user_id\": \"user_" DEV
	    "_account__session_" SESS "\"},\n  \"temperature\": 1e-1\n}");
	gw_anth_req_release(&r);
	buf_reset(&out);

	/* An escaped key is still the model key; numbers stay as written. */
	T_OK(gw_anth_parse(esc, strlen(esc), &r));
	T_EQ_STR(r.model, "x");
	T_OK(gw_anth_build_body(&r, &a, &out));
	T_EQ_STR(buf_str(&out),
	    "{ \"mod\\u0065l\" : \"claude-sonnet-4-5-20250929\" , \"n\":1.10}");
	gw_anth_req_release(&r);
	buf_reset(&out);

	/* A mapping target that needs escaping comes out escaped. */
	a.upstream_model = "we\"ird";
	T_OK(gw_anth_parse("{\"model\":\"m\"}", 13, &r));
	T_OK(gw_anth_build_body(&r, &a, &out));
	T_EQ_STR(buf_str(&out), "{\"model\":\"we\\\"ird\"}");
	gw_anth_req_release(&r);
	buf_release(&out);
}

static void
test_body_system_injection(void)
{
	struct gw_anth_account a = {.type = GW_ANTH_OAUTH, .id = 3};
	struct gw_anth_req     r;
	struct buf             out;
	json_t                *j, *s;

	buf_init(&out, 1 << 20);
	T_OK(gw_anth_parse(sdk_body, sizeof(sdk_body) - 1, &r));
	T_ASSERT(gw_anth_body_changes(&r, &a));
	T_OK(gw_anth_build_body(&r, &a, &out));
	T_EQ_STR(buf_str(&out),
	    "{\"system\":[{\"type\":\"text\",\"text\":\"You are Claude Code, "
	    "Anthropic's official CLI for Claude.\",\"cache_control\":"
	    "{\"type\":\"ephemeral\"}}],\n  \"model\": \"claude-sonnet-4-5\","
	    "\n  \"max_tokens\": 64,\n"
	    "  \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}],\n"
	    "  \"metadata\": {\"user_id\": \"user_" DEV
	    "_account__session_" SESS "\"},\n  \"temperature\": 1e-1\n}");
	j = load(out.data, out.len);
	s = json_array_get(json_object_get(j, "system"), 0);
	T_EQ_STR(
	    json_string_value(json_object_get(s, "text")), GW_ANTH_CC_SYSTEM);
	json_decref(j);
	gw_anth_req_release(&r);
	buf_reset(&out);

	/* setup-token too; "system": null is replaced in place. */
	a.type = GW_ANTH_SETUP_TOKEN;
	T_OK(gw_anth_parse(" {\"model\":\"m\",\"system\":null}", 28, &r));
	T_OK(gw_anth_build_body(&r, &a, &out));
	T_EQ_STR(buf_str(&out),
	    " {\"model\":\"m\",\"system\":[{\"type\":\"text\",\"text\":\"You "
	    "are Claude Code, Anthropic's official CLI for Claude.\","
	    "\"cache_control\":{\"type\":\"ephemeral\"}}]}");
	gw_anth_req_release(&r);
	buf_release(&out);
}

static void
test_derive_session(void)
{
	char a[37], b[37], c[37], d[37];
	int  i;

	gw_anth_derive_session(1, SESS, a);
	gw_anth_derive_session(1, SESS, b);
	gw_anth_derive_session(2, SESS, c);
	gw_anth_derive_session(1, "2789bc0c-853c-4744-b670-e929a2573976", d);
	T_EQ_STR(a, b);
	T_ASSERT(strcmp(a, c) != 0);
	T_ASSERT(strcmp(a, d) != 0);
	T_ASSERT(strcmp(a, SESS) != 0);
	T_EQ_INT(strlen(a), 36);
	for (i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23)
			T_EQ_INT(a[i], '-');
		else
			T_ASSERT(strchr("0123456789abcdef", a[i]) != NULL);
	}
	T_EQ_INT(a[14], '4');                    /* version 4 */
	T_ASSERT(strchr("89ab", a[19]) != NULL); /* RFC 4122 variant */
}

static void
test_body_uid_legacy(void)
{
	struct gw_anth_account a = {.type = GW_ANTH_OAUTH,
	    .id = 42,
	    .client_id = CLI,
	    .account_uuid = AUUID};
	struct gw_anth_req     r;
	struct buf             out, want;
	char                   sess[37];
	const char            *p;

	buf_init(&out, 1 << 20);
	buf_init(&want, 1 << 20);
	gw_anth_derive_session(42, SESS, sess);
	T_OK(gw_anth_parse(sdk_body, sizeof(sdk_body) - 1, &r));
	T_OK(gw_anth_build_body(&r, &a, &out));
	T_OK(buf_addf(&want,
	    "{\"system\":[{\"type\":\"text\",\"text\":\"You are Claude Code, "
	    "Anthropic's official CLI for Claude.\",\"cache_control\":"
	    "{\"type\":\"ephemeral\"}}],\n  \"model\": \"claude-sonnet-4-5\","
	    "\n  \"max_tokens\": 64,\n"
	    "  \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}],\n"
	    "  \"metadata\": {\"user_id\": \"user_" CLI "_account_" AUUID
	    "_session_%s\"},\n  \"temperature\": 1e-1\n}",
	    sess));
	T_EQ_STR(buf_str(&out), buf_str(&want));
	p = strstr(buf_str(&out), DEV);
	T_ASSERT(p == NULL); /* the user's device id is gone */
	gw_anth_req_release(&r);
	buf_reset(&out);

	/* No client id: the user_id is left alone (only system is added). */
	a.client_id = "";
	T_OK(gw_anth_parse(sdk_body, sizeof(sdk_body) - 1, &r));
	T_OK(gw_anth_build_body(&r, &a, &out));
	T_ASSERT(strstr(buf_str(&out), "user_" DEV) != NULL);
	gw_anth_req_release(&r);
	buf_release(&out);
	buf_release(&want);
}

static void
test_body_uid_json(void)
{
	struct gw_anth_account a = {.type = GW_ANTH_OAUTH,
	    .id = 42,
	    .client_id = CLI,
	    .account_uuid = AUUID};
	struct gw_anth_req     r;
	struct buf             out;
	json_t                *j, *u;
	char                   sess[37];
	const char            *uid, *o, *in;
	char                   want[256];

	buf_init(&out, 1 << 20);
	gw_anth_derive_session(42, SESS, sess);
	T_OK(gw_anth_parse(cc_body, sizeof(cc_body) - 1, &r));
	T_ASSERT(gw_anth_body_changes(&r, &a));
	T_OK(gw_anth_build_body(&r, &a, &out));
	j = load(out.data, out.len);
	uid = json_string_value(
	    json_object_get(json_object_get(j, "metadata"), "user_id"));
	/* JSON.stringify's compact form, key order kept. */
	snprintf(want, sizeof(want),
	    "{\"device_id\":\"%s\",\"account_uuid\":\"%s\",\"session_id\":"
	    "\"%s\"}",
	    CLI, AUUID, sess);
	T_EQ_STR(uid, want);
	u = load(uid, strlen(uid));
	T_EQ_STR(json_string_value(json_object_get(u, "session_id")), sess);
	json_decref(u);
	json_decref(j);
	/* Everything but the user_id value is byte-identical. */
	o = buf_str(&out);
	in = cc_body;
	T_ASSERT(strstr(o, "\"temperature\":0.7,") != NULL);
	T_ASSERT(strstr(o, "hello \\u00e9 {[") != NULL);
	{
		const char *ui = strstr(in, "\"user_id\":") + 10;
		const char *uo = strstr(o, "\"user_id\":") + 10;
		size_t      head = (size_t)(ui - in);
		const char *ti = strstr(ui, "},\"max_tokens\"");
		const char *to = strstr(uo, "},\"max_tokens\"");

		T_ASSERT(memcmp(in, o, head) == 0);
		T_EQ_STR(to, ti);
	}
	gw_anth_req_release(&r);
	buf_reset(&out);

	/* An API-key account never rewrites identity. */
	a.type = GW_ANTH_APIKEY;
	T_OK(gw_anth_parse(cc_body, sizeof(cc_body) - 1, &r));
	T_ASSERT(!gw_anth_body_changes(&r, &a));
	gw_anth_req_release(&r);
	buf_release(&out);
}

static void
test_body_cap(void)
{
	struct gw_anth_account a = {.type = GW_ANTH_OAUTH};
	struct gw_anth_req     r;
	struct buf             out;

	buf_init(&out, 32);
	T_OK(gw_anth_parse(sdk_body, sizeof(sdk_body) - 1, &r));
	T_EQ_INT(gw_anth_build_body(&r, &a, &out), -ERR_TOOBIG);
	T_EQ_INT(out.len, 0);
	gw_anth_req_release(&r);
	buf_release(&out);
}

static void
test_hdrs_list(void)
{
	struct gw_anth_hdrs h;
	char                big[GW_ANTH_HDR_VAL_MAX + 2];
	int                 i;

	memset(&h, 0, sizeof(h));
	T_OK(gw_anth_hdrs_add(&h, "X-Stainless-OS", "Linux"));
	T_EQ_STR(h.v[0].name, "x-stainless-os");
	T_EQ_STR(gw_anth_hdrs_get(&h, "x-stainless-os"), "Linux");
	T_ASSERT(gw_anth_hdrs_get(&h, "X-Stainless-OS") == NULL);
	T_OK(gw_anth_hdrs_add(&h, "x-tab", "a\tb"));
	T_EQ_INT(gw_anth_hdrs_add(&h, "x-evil", "a\r\nhost: x"), -ERR_INVAL);
	T_EQ_INT(gw_anth_hdrs_add(&h, "x-evil\r\nb", "v"), -ERR_INVAL);
	T_EQ_INT(gw_anth_hdrs_add(&h, "x evil", "v"), -ERR_INVAL);
	T_EQ_INT(gw_anth_hdrs_add(&h, "", "v"), -ERR_INVAL);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	T_EQ_INT(gw_anth_hdrs_add(&h, "x-big", big), -ERR_TOOBIG);
	T_EQ_INT(h.n, 2);
	for (i = 2; i < GW_ANTH_HDRS_MAX; i++)
		T_OK(gw_anth_hdrs_add(&h, "x-n", "v"));
	T_EQ_INT(gw_anth_hdrs_add(&h, "x-n", "v"), -ERR_TOOBIG);
	gw_anth_hdrs_release(&h);
	T_EQ_INT(h.n, 0);
	gw_anth_hdrs_release(&h);
}

static void
test_headers_apikey(void)
{
	static const char *const want[] = {"accept", "application/json",
	    "x-stainless-retry-count", "0", "x-stainless-timeout", "600",
	    "x-stainless-lang", "js", "x-stainless-package-version", "0.94.0",
	    "x-stainless-os", "Linux", "x-stainless-arch", "x64",
	    "x-stainless-runtime", "node", "x-stainless-runtime-version",
	    "v26.3.0", "anthropic-dangerous-direct-browser-access", "true",
	    "anthropic-version", "2023-06-01", "x-app", "cli", "anthropic-beta",
	    CC_BETA, "user-agent", "claude-cli/2.1.197 (external, sdk-cli)",
	    "content-type", "application/json", "x-api-key", "sk-upstream",
	    "accept-encoding", "identity"};
	struct gw_anth_account   a = {
	      .type = GW_ANTH_APIKEY, .credential = "sk-upstream"};
	struct gw_anth_req  r;
	struct gw_anth_hdrs h;
	size_t              i;

	memset(&h, 0, sizeof(h));
	T_OK(gw_anth_parse(cc_body, sizeof(cc_body) - 1, &r));
	T_OK(gw_anth_build_headers(&r, &a, lookup_cb, (void *)cc_headers, &h));
	T_EQ_INT(h.n, ARRAY_SIZE(want) / 2);
	for (i = 0; i < h.n; i++) {
		T_EQ_STR(h.v[i].name, want[2 * i]);
		T_EQ_STR(h.v[i].value, want[2 * i + 1]);
	}
	T_ASSERT(gw_anth_hdrs_get(&h, "authorization") == NULL);
	T_ASSERT(gw_anth_hdrs_get(&h, "cookie") == NULL);
	T_ASSERT(gw_anth_hdrs_get(&h, "host") == NULL);
	T_ASSERT(gw_anth_hdrs_get(&h, "x-claude-code-session-id") == NULL);
	gw_anth_hdrs_release(&h);
	gw_anth_req_release(&r);
}

static void
test_headers_oauth(void)
{
	/* Anthropic SDK 1.14: Bearer auth, its own version, no beta. */
	static const char *const sdk[] = {"accept", "application/json",
	    "user-agent", "Anthropic/JS 1.14.0", "anthropic-version",
	    "2026-10-21", "authorization", "Bearer sk-ant-test-key",
	    "accept-encoding", "gzip, deflate", NULL};
	static const char *const bare[] = {NULL};
	struct gw_anth_account   a = {.type = GW_ANTH_OAUTH,
	      .credential = "tok-1",
	      .user_agent = "claude-cli/2.0.62 (external, cli)"};
	struct gw_anth_req       r;
	struct gw_anth_hdrs      h;

	memset(&h, 0, sizeof(h));
	T_OK(gw_anth_parse(cc_body, sizeof(cc_body) - 1, &r));
	T_OK(gw_anth_build_headers(&r, &a, lookup_cb, (void *)cc_headers, &h));
	T_EQ_STR(gw_anth_hdrs_get(&h, "authorization"), "Bearer tok-1");
	T_ASSERT(gw_anth_hdrs_get(&h, "x-api-key") == NULL);
	T_EQ_STR(gw_anth_hdrs_get(&h, "anthropic-beta"),
	    "claude-code-20250219,oauth-2025-04-20,context-1m-2025-08-07,"
	    "interleaved-thinking-2025-05-14,effort-2025-11-24");
	T_EQ_STR(gw_anth_hdrs_get(&h, "user-agent"),
	    "claude-cli/2.0.62 (external, cli)");
	T_EQ_STR(gw_anth_hdrs_get(&h, "accept-encoding"), "identity");
	gw_anth_hdrs_release(&h);

	T_OK(gw_anth_build_headers(&r, &a, lookup_cb, (void *)sdk, &h));
	T_EQ_STR(gw_anth_hdrs_get(&h, "anthropic-version"), "2026-10-21");
	T_EQ_STR(gw_anth_hdrs_get(&h, "anthropic-beta"), GW_ANTH_BETA_DEFAULT);
	T_EQ_STR(gw_anth_hdrs_get(&h, "authorization"), "Bearer tok-1");
	T_EQ_STR(gw_anth_hdrs_get(&h, "content-type"), "application/json");
	gw_anth_hdrs_release(&h);
	gw_anth_req_release(&r);

	/* Nothing from the client: defaults, and the haiku beta list. */
	T_OK(
	    gw_anth_parse("{\"model\":\"claude-haiku-4-5-20251001\"}", 37, &r));
	a.user_agent = NULL;
	T_OK(gw_anth_build_headers(&r, &a, lookup_cb, (void *)bare, &h));
	T_EQ_INT(h.n, 5);
	T_EQ_STR(gw_anth_hdrs_get(&h, "content-type"), "application/json");
	T_EQ_STR(gw_anth_hdrs_get(&h, "anthropic-version"), "2023-06-01");
	T_EQ_STR(
	    gw_anth_hdrs_get(&h, "anthropic-beta"), GW_ANTH_BETA_DEFAULT_HAIKU);
	gw_anth_hdrs_release(&h);
	gw_anth_req_release(&r);
}

static void
test_headers_reject(void)
{
	static const char *const bad[] = {
	    "accept", "a\r\nx-api-key: stolen", NULL};
	struct gw_anth_account a = {.type = GW_ANTH_APIKEY, .credential = "k"};
	struct gw_anth_req     r;
	struct gw_anth_hdrs    h;

	memset(&h, 0, sizeof(h));
	T_OK(gw_anth_parse("{\"model\":\"m\"}", 13, &r));
	T_EQ_INT(gw_anth_build_headers(&r, &a, lookup_cb, (void *)bad, &h),
	    -ERR_INVAL);
	T_EQ_INT(h.n, 0);
	a.credential = "bad\nkey";
	T_EQ_INT(
	    gw_anth_build_headers(&r, &a, lookup_cb, (void *)(bad + 2), &h),
	    -ERR_INVAL);
	T_EQ_INT(h.n, 0);
	gw_anth_req_release(&r);
}

static void
test_beta_merge(void)
{
	static const struct {
		const char *in;
		bool        haiku;
		const char *out;
	} c[] = {
	    {NULL, false, GW_ANTH_BETA_DEFAULT},
	    {NULL, true, GW_ANTH_BETA_DEFAULT_HAIKU},
	    {"", false, GW_ANTH_BETA_DEFAULT},
	    {" , ,", true, GW_ANTH_BETA_DEFAULT_HAIKU},
	    {"interleaved-thinking-2025-05-14", false,
	        "oauth-2025-04-20,interleaved-thinking-2025-05-14"},
	    {"claude-code-20250219", false,
	        "claude-code-20250219,oauth-2025-04-20"},
	    {"a-1, claude-code-20250219 ,b-2", false,
	        "a-1,claude-code-20250219,oauth-2025-04-20,b-2"},
	    {"a-1,oauth-2025-04-20,claude-code-20250219", false,
	        "a-1,oauth-2025-04-20,claude-code-20250219"},
	    {"oauth-2025-04-20", true, "oauth-2025-04-20"},
	    {"x,,y", false, "oauth-2025-04-20,x,y"},
	    {"claude-code-20250219x", false,
	        "oauth-2025-04-20,claude-code-20250219x"},
	};
	struct buf b;
	size_t     i;

	buf_init(&b, 4096);
	for (i = 0; i < ARRAY_SIZE(c); i++) {
		buf_reset(&b);
		T_OK(gw_anth_merge_beta(c[i].in, c[i].haiku, &b));
		T_EQ_STR(buf_str(&b), c[i].out);
	}
	buf_release(&b);
	buf_init(&b, 8);
	T_EQ_INT(gw_anth_merge_beta(NULL, false, &b), -ERR_TOOBIG);
	buf_release(&b);
}

static void
test_resp_model(void)
{
	const char *body =
	    "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":"
	    "\"assistant\",\"model\":\"claude-sonnet-4-5-20250929\","
	    "\"content\":[{\"type\":\"text\",\"text\":\"\\\"model\\\":\"}],"
	    "\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}";
	struct buf b;

	buf_init(&b, 1 << 16);
	T_OK(gw_anth_rewrite_resp_model(body, strlen(body), "sonnet", &b));
	T_EQ_STR(buf_str(&b),
	    "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\","
	    "\"model\":\"sonnet\",\"content\":[{\"type\":\"text\",\"text\":"
	    "\"\\\"model\\\":\"}],\"usage\":{\"input_tokens\":3,"
	    "\"output_tokens\":1}}");
	buf_reset(&b);
	/* Not an object, truncated, no model, non-string model: unchanged. */
	T_OK(gw_anth_rewrite_resp_model("[1]", 3, "x", &b));
	T_EQ_STR(buf_str(&b), "[1]");
	buf_reset(&b);
	T_OK(gw_anth_rewrite_resp_model("{\"a\":\"", 6, "x", &b));
	T_EQ_STR(buf_str(&b), "{\"a\":\"");
	buf_reset(&b);
	T_OK(gw_anth_rewrite_resp_model(
	    "{\"a\":{\"model\":\"m\"}}", 19, "x", &b));
	T_EQ_STR(buf_str(&b), "{\"a\":{\"model\":\"m\"}}");
	buf_reset(&b);
	T_OK(gw_anth_rewrite_resp_model("{\"model\":null}", 14, "x", &b));
	T_EQ_STR(buf_str(&b), "{\"model\":null}");
	buf_release(&b);
}

static void
test_sse_model(void)
{
	const char *start =
	    "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":"
	    "\"message\",\"role\":\"assistant\",\"model\":\"claude-x-2\","
	    "\"content\":[],\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}";
	const char *want =
	    "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":"
	    "\"message\",\"role\":\"assistant\",\"model\":\"claude-x\","
	    "\"content\":[],\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}";
	const char *delta =
	    "{\"type\":\"content_block_delta\",\"index\":0,"
	    "\"delta\":{\"type\":\"text_delta\",\"model\":\"m\"}}";
	struct buf b, line;

	buf_init(&b, 1 << 16);
	buf_init(&line, 1 << 16);
	T_OK(gw_anth_rewrite_sse_data(start, strlen(start), "claude-x", &b));
	T_EQ_STR(buf_str(&b), want);
	buf_reset(&b);
	/* A whole line, with its "data: " prefix, works the same. */
	T_OK(buf_addf(&line, "data: %s", start));
	T_OK(gw_anth_rewrite_sse_data(line.data, line.len, "claude-x", &b));
	T_ASSERT(strncmp(buf_str(&b), "data: ", 6) == 0);
	T_EQ_STR(buf_str(&b) + 6, want);
	buf_reset(&b);
	T_OK(gw_anth_rewrite_sse_data(delta, strlen(delta), "claude-x", &b));
	T_EQ_STR(buf_str(&b), delta);
	buf_reset(&b);
	T_OK(gw_anth_rewrite_sse_data("event: ping", 11, "claude-x", &b));
	T_EQ_STR(buf_str(&b), "event: ping");
	buf_release(&b);
	buf_release(&line);
}

T_MAIN(T_CASE(test_parse_claude_code), T_CASE(test_parse_sdk_legacy),
    T_CASE(test_parse_uid_forms), T_CASE(test_parse_errors),
    T_CASE(test_parse_limits), T_CASE(test_body_passthrough),
    T_CASE(test_body_model_mapping), T_CASE(test_body_system_injection),
    T_CASE(test_derive_session), T_CASE(test_body_uid_legacy),
    T_CASE(test_body_uid_json), T_CASE(test_body_cap), T_CASE(test_hdrs_list),
    T_CASE(test_headers_apikey), T_CASE(test_headers_oauth),
    T_CASE(test_headers_reject), T_CASE(test_beta_merge),
    T_CASE(test_resp_model), T_CASE(test_sse_model))
