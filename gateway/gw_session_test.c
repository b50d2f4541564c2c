/*
 * gw_session_test.c: the sticky-session key on Claude Code's real body
 * shapes (CLIENTS.md): each source in priority order, its exact hash,
 * stability and separation, the per-source cap, and NOTFOUND.
 */
#include <stdio.h>
#include <string.h>

#include "crypto.h"
#include "err.h"
#include "gw_session.h"
#include "t.h"

#define DEV   "99842e90aa11bb22cc33dd44ee55ff6600112233445566778899aabbccdd3009"
#define SESS  "2789bc0c-853c-4744-b670-e929a2573975"
#define SESS2 "9f3e0a1b-0c2d-4e5f-8a9b-0c1d2e3f4a5b"
#define HDR   "e60dd088-c231-43ed-a895-bb56a6040431"

#define CC_SYSTEM                                                       \
	"[{\"type\":\"text\",\"text\":\"x-anthropic-billing-header: "   \
	"cc_version=2.1.197.fa0; cc_entrypoint=sdk-cli;\"},{\"type\":"  \
	"\"text\",\"text\":\"You are a Claude agent, built on "         \
	"Anthropic's Claude Agent SDK.\",\"cache_control\":{\"type\":"  \
	"\"ephemeral\"}},{\"type\":\"text\",\"text\":\"Long prompt.\"," \
	"\"cache_control\":{\"type\":\"ephemeral\"}}]"
#define CC_MESSAGES                                                       \
	"[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":"   \
	"\"<system-reminder>date</system-reminder>\"},{\"type\":"         \
	"\"text\",\"text\":\"hello\",\"cache_control\":{\"type\":"        \
	"\"ephemeral\"}}]},{\"role\":\"system\",\"content\":\"Available " \
	"agent types\"}]"
#define CC_UID_JSON(s)                                       \
	"{\"user_id\":\"{\\\"device_id\\\":\\\"" DEV "\\\"," \
	"\\\"account_uuid\\\":\\\"\\\",\\\"session_id\\\":\\\"" s "\\\"}\"}"
#define CC_UID_LEGACY(s) "{\"user_id\":\"user_" DEV "_account__session_" s "\"}"

/* Parses body into *req (released by the caller). */
static void
t_parse(const char *body, struct gw_anth_req *req)
{
	memset(req, 0, sizeof(*req));
	T_OK(gw_anth_parse(body, strlen(body), req));
}

/* The key of body with header hdr (may be NULL); NOTFOUND gives "". */
static void
t_key(const char *body, const char *hdr, char out[33])
{
	struct gw_anth_req req;
	int                rv;

	t_parse(body, &req);
	out[0] = '\0';
	rv = gw_session_hash(&req, hdr, out);
	T_ASSERT(rv == 0 || rv == -ERR_NOTFOUND);
	if (rv == -ERR_NOTFOUND)
		T_EQ_STR(out, "");
	gw_anth_req_release(&req);
}

/* What the key must be: SHA-256(src) cut to 128 bits, in hex. */
static void
t_want(const char *src, size_t len, char out[33])
{
	char full[CRYPTO_SHA256_HEX_LEN + 1];

	crypto_sha256_hex(src, len, full);
	snprintf(out, 33, "%.32s", full);
}

static void
test_json_uid(void)
{
	static const char body[] =
	    "{\"model\":\"claude-opus-4-8\","
	    "\"system\":" CC_SYSTEM ",\"messages\":" CC_MESSAGES
	    ",\"metadata\":" CC_UID_JSON(SESS) ",\"stream\":true}";
	static const char body2[] =
	    "{\"model\":\"claude-opus-4-8\","
	    "\"system\":" CC_SYSTEM ",\"messages\":" CC_MESSAGES
	    ",\"metadata\":" CC_UID_JSON(SESS2) ",\"stream\":true}";
	char k[33], k2[33], w[33];

	t_key(body, HDR, k);
	t_want("cc:" SESS, strlen("cc:" SESS), w);
	T_EQ_STR(k, w);
	/* Same inputs, same key; another session, another key. */
	t_key(body, HDR, k2);
	T_EQ_STR(k, k2);
	t_key(body2, HDR, k2);
	T_ASSERT(strcmp(k, k2) != 0);
	T_EQ_INT(strlen(k), 32);
	T_EQ_INT(strspn(k, "0123456789abcdef"), 32);
}

static void
test_header(void)
{
	static const char body[] = "{\"model\":\"m\",\"system\":" CC_SYSTEM
	                           ",\"messages\":" CC_MESSAGES "}";
	char k[33], w[33];

	/* No user_id: the header comes before any body text. */
	t_key(body, HDR, k);
	t_want("hdr:" HDR, strlen("hdr:" HDR), w);
	T_EQ_STR(k, w);
	/* An empty header counts as absent. */
	t_key(body, "", k);
	T_ASSERT(strcmp(k, w) != 0);
}

static void
test_legacy_uid(void)
{
	static const char body[] =
	    "{\n  \"model\": \"claude-sonnet-4-5\",\n"
	    "  \"messages\": [{\"role\": \"user\", "
	    "\"content\": \"hi\"}],\n  \"metadata\": " CC_UID_LEGACY(
	        SESS) "\n}";
	char k[33], w[33];

	t_key(body, NULL, k);
	t_want("legacy:" SESS, strlen("legacy:" SESS), w);
	T_EQ_STR(k, w);
	/* The header outranks the legacy form. */
	t_key(body, HDR, k);
	t_want("hdr:" HDR, strlen("hdr:" HDR), w);
	T_EQ_STR(k, w);
}

static void
test_ephemeral(void)
{
	static const char sys_eph[] = "{\"model\":\"m\",\"system\":" CC_SYSTEM
	                              ",\"messages\":" CC_MESSAGES "}";
	static const char msg_eph[] =
	    "{\"model\":\"m\",\"system\":\"plain\",\"messages\":" CC_MESSAGES
	    "}";
	/* Turn 2 of a tool round trip: the marked part is a tool_result. */
	static const char tool_eph[] =
	    "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
	    "\"do it\"},{\"role\":\"assistant\",\"content\":[{\"type\":"
	    "\"tool_use\",\"id\":\"t1\",\"name\":\"Bash\",\"input\":{}}]},"
	    "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\","
	    "\"tool_use_id\":\"t1\",\"content\":\"ok\",\"cache_control\":"
	    "{\"type\":\"ephemeral\"}},{\"type\":\"text\",\"text\":\"next\"}]}]}";
	static const char eph_sys[] =
	    "eph:You are a Claude agent, built on "
	    "Anthropic's Claude Agent SDK.Long prompt.";
	static const char eph_msg[] =
	    "eph:<system-reminder>date</system-reminder>hello";
	char k[33], w[33];

	t_key(sys_eph, NULL, k);
	t_want(eph_sys, strlen(eph_sys), w);
	T_EQ_STR(k, w);
	/* No marked system block: the first marked message's whole text. */
	t_key(msg_eph, NULL, k);
	t_want(eph_msg, strlen(eph_msg), w);
	T_EQ_STR(k, w);
	t_key(tool_eph, NULL, k);
	t_want("eph:next", 8, w);
	T_EQ_STR(k, w);
}

static void
test_system(void)
{
	static const char str[] = "{\"model\":\"m\",\"system\":\"Be brief.\","
	                          "\"messages\":[{\"role\":\"user\","
	                          "\"content\":\"hi\"}]}";
	static const char arr[] =
	    "{\"model\":\"m\",\"system\":[{\"type\":\"text\",\"text\":\"Be \"},"
	    "{\"type\":\"image\"},{\"type\":\"text\",\"text\":\"brief.\"}],"
	    "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
	char k[33], k2[33], w[33];

	t_key(str, NULL, k);
	t_want("sys:Be brief.", 13, w);
	T_EQ_STR(k, w);
	/* Text blocks joined: the same key as the string form. */
	t_key(arr, NULL, k2);
	T_EQ_STR(k2, w);
}

static void
test_first_message(void)
{
	static const char str[] =
	    "{\"model\":\"m\",\"messages\":[{\"role\":"
	    "\"user\",\"content\":\"hi there\"},"
	    "{\"role\":\"assistant\",\"content\":\"x\"}]}";
	static const char arr[] =
	    "{\"model\":\"m\",\"system\":[],\"messages\":[{\"role\":\"user\","
	    "\"content\":[{\"type\":\"text\",\"text\":\"hi \"},{\"type\":"
	    "\"text\",\"text\":\"there\"}]}]}";
	static const char other[] = "{\"model\":\"m\",\"messages\":[{\"role\":"
	                            "\"user\",\"content\":\"bye\"}]}";
	char              k[33], k2[33], w[33];

	t_key(str, NULL, k);
	t_want("msg:hi there", 12, w);
	T_EQ_STR(k, w);
	t_key(arr, NULL, k2);
	T_EQ_STR(k2, w);
	t_key(other, NULL, k2);
	T_ASSERT(strcmp(k, k2) != 0);
}

static void
test_nothing(void)
{
	static const char *const bodies[] = {
	    "{\"model\":\"m\"}",
	    "{\"model\":\"m\",\"messages\":[]}",
	    "{\"model\":\"m\",\"system\":\"\",\"messages\":[{\"role\":"
	    "\"user\",\"content\":[{\"type\":\"image\"}]}]}",
	    /* Another user_id form keys nothing by itself. */
	    "{\"model\":\"m\",\"metadata\":{\"user_id\":\"someone\"},"
	    "\"messages\":[{\"role\":\"user\",\"content\":\"\"}]}",
	};
	struct gw_anth_req req;
	char               k[33] = "untouched";
	size_t             i;

	for (i = 0; i < ARRAY_SIZE(bodies); i++) {
		t_parse(bodies[i], &req);
		T_EQ_INT(gw_session_hash(&req, NULL, k), -ERR_NOTFOUND);
		gw_anth_req_release(&req);
	}
	T_EQ_STR(k, "untouched");
}

static void
test_cap(void)
{
	struct gw_anth_req req;
	struct buf         a, b;
	char               ka[33], kb[33], w[33];
	char              *src;
	size_t             big = GW_SESSION_HASH_CAP + 1000;

	/* Two systems that differ only past the cap share a key. */
	buf_init(&a, 1 << 20);
	buf_init(&b, 1 << 20);
	T_OK(buf_addstr(&a, "{\"model\":\"m\",\"system\":\""));
	T_OK(buf_addstr(&b, "{\"model\":\"m\",\"system\":\""));
	src = xmalloc(big + 1);
	memset(src, 'a', big);
	src[big] = '\0';
	T_OK(buf_addstr(&a, src));
	src[big - 1] = 'b';
	T_OK(buf_addstr(&b, src));
	T_OK(buf_addstr(&a, "\"}"));
	T_OK(buf_addstr(&b, "\"}"));
	t_parse(buf_str(&a), &req);
	T_OK(gw_session_hash(&req, NULL, ka));
	gw_anth_req_release(&req);
	t_parse(buf_str(&b), &req);
	T_OK(gw_session_hash(&req, NULL, kb));
	gw_anth_req_release(&req);
	T_EQ_STR(ka, kb);
	memcpy(src, "sys:", 4);
	memset(src + 4, 'a', GW_SESSION_HASH_CAP);
	t_want(src, 4 + GW_SESSION_HASH_CAP, w);
	T_EQ_STR(ka, w);
	free(src);
	buf_release(&a);
	buf_release(&b);
}

T_MAIN(T_CASE(test_json_uid), T_CASE(test_header), T_CASE(test_legacy_uid),
    T_CASE(test_ephemeral), T_CASE(test_system), T_CASE(test_first_message),
    T_CASE(test_nothing), T_CASE(test_cap))
