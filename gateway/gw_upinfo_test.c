/*
 * gw_upinfo_test.c: the headers and error message a release carries.
 */
#include <stdio.h>

#include "err.h"
#include "gw_upinfo.h"
#include "t.h"

static void
test_header_wanted(void)
{
	T_ASSERT(gw_upinfo_header_wanted("anthropic-ratelimit-unified-reset"));
	T_ASSERT(
	    gw_upinfo_header_wanted("Anthropic-RateLimit-Unified-5h-Status"));
	T_ASSERT(gw_upinfo_header_wanted("Retry-After"));
	T_ASSERT(!gw_upinfo_header_wanted("x-api-key"));
	T_ASSERT(!gw_upinfo_header_wanted("authorization"));
	T_ASSERT(
	    !gw_upinfo_header_wanted("anthropic-ratelimit-requests-limit"));
}

static void
test_header_add_bounded(void)
{
	struct proto_header h[PROTO_HEADERS_MAX];
	char                big[PROTO_HDR_VAL_MAX + 2];
	uint32_t            n = 0, i;

	T_OK(gw_upinfo_header_add(h, &n, "Set-Cookie", "a=b", 3));
	T_EQ_INT(n, 0);
	T_OK(gw_upinfo_header_add(
	    h, &n, "Anthropic-Ratelimit-Unified-5h-Reset", "1790000000x", 10));
	T_EQ_INT(n, 1);
	T_EQ_STR(h[0].name, "anthropic-ratelimit-unified-5h-reset");
	T_EQ_STR(h[0].value, "1790000000");
	memset(big, 'v', sizeof(big));
	T_EQ_INT(gw_upinfo_header_add(
	             h, &n, "retry-after", big, PROTO_HDR_VAL_MAX + 1),
	    -ERR_TOOBIG);
	T_OK(
	    gw_upinfo_header_add(h, &n, "retry-after", big, PROTO_HDR_VAL_MAX));
	T_EQ_INT(strlen(h[1].value), PROTO_HDR_VAL_MAX);
	for (i = n; i < PROTO_HEADERS_MAX; i++)
		T_OK(gw_upinfo_header_add(h, &n, "retry-after", "1", 1));
	T_EQ_INT(n, PROTO_HEADERS_MAX);
	T_EQ_INT(
	    gw_upinfo_header_add(h, &n, "retry-after", "1", 1), -ERR_TOOBIG);
	T_EQ_INT(n, PROTO_HEADERS_MAX);
}

static void
test_error_message(void)
{
	static const char anth[] =
	    "{\"type\":\"error\",\"error\":{\"type\":\"permission_error\","
	    "\"message\":\"This organization has been disabled.\"}}";
	static const char leak[] =
	    "{\"error\":{\"message\":\"Incorrect API key provided: "
	    "sk-ant-api03-abcdef. Token eyJhbGciOiJIUzI1NiJ9abcdefghijklmnop"
	    "qrstuv\\nrejected\"}}";
	static const char utf[] = "{\"error\":\"cafe\xc3\xa9\xc3\xa9\"}";
	char              out[PROTO_HDR_VAL_MAX + 1], small[8];

	T_OK(gw_upinfo_error_message(anth, strlen(anth), out, sizeof(out)));
	T_EQ_STR(out, "This organization has been disabled.");
	T_OK(gw_upinfo_error_message(leak, strlen(leak), out, sizeof(out)));
	T_EQ_STR(out,
	    "Incorrect API key provided: [redacted] Token [redacted] rejected");
	T_ASSERT(strstr(out, "sk-") == NULL);
	T_OK(gw_upinfo_error_message(utf, strlen(utf), small, sizeof(small)));
	T_EQ_STR(small, "cafe\xc3\xa9"); /* never half a character */
	T_OK(gw_upinfo_error_message(
	    "{\"message\":\"plain\"}", 19, out, sizeof(out)));
	T_EQ_STR(out, "plain");
	T_EQ_INT(gw_upinfo_error_message("not json", 8, out, sizeof(out)),
	    -ERR_NOTFOUND);
	T_EQ_STR(out, "");
	T_EQ_INT(gw_upinfo_error_message(
	             "{\"error\":{\"type\":\"x\"}}", 22, out, sizeof(out)),
	    -ERR_NOTFOUND);
}

T_MAIN(T_CASE(test_header_wanted), T_CASE(test_header_add_bounded),
    T_CASE(test_error_message))
