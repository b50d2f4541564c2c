/*
 * ctl_test.c: the pure helpers of sub2apictl: decimal, integer, email,
 * id and URL validation, option parsing, exit-code mapping.
 */
#include "ctl.h"
#include "err.h"
#include "t.h"

static void
test_ctl_decimal(void)
{
	T_ASSERT(ctl_decimal_ok("0", 14, 10, false));
	T_ASSERT(ctl_decimal_ok("12.5", 14, 10, false));
	T_ASSERT(ctl_decimal_ok("0.0000000001", 14, 10, false));
	T_ASSERT(ctl_decimal_ok("99999999999999.9999999999", 14, 10, false));
	T_ASSERT(ctl_decimal_ok("-3.25", 14, 10, true));
	T_ASSERT(!ctl_decimal_ok("-3.25", 14, 10, false));
	T_ASSERT(!ctl_decimal_ok("", 14, 10, true));
	T_ASSERT(!ctl_decimal_ok("-", 14, 10, true));
	T_ASSERT(!ctl_decimal_ok(".5", 14, 10, true));
	T_ASSERT(!ctl_decimal_ok("5.", 14, 10, true));
	T_ASSERT(!ctl_decimal_ok("+5", 14, 10, true));
	T_ASSERT(!ctl_decimal_ok("1e3", 14, 10, true));
	T_ASSERT(!ctl_decimal_ok(" 1", 14, 10, true));
	T_ASSERT(!ctl_decimal_ok("1 ", 14, 10, true));
	T_ASSERT(!ctl_decimal_ok("1.2.3", 14, 10, true));
	T_ASSERT(!ctl_decimal_ok("NaN", 14, 10, true));
	T_ASSERT(!ctl_decimal_ok("0x10", 14, 10, true));
	T_ASSERT(!ctl_decimal_ok("1,5", 14, 10, true));
	T_ASSERT(!ctl_decimal_ok("0.00000000001", 14, 10, true));
	T_ASSERT(!ctl_decimal_ok("100000000000000", 14, 10, true));
	T_ASSERT(!ctl_decimal_ok("--1", 14, 10, true));
	T_ASSERT(ctl_decimal_is_neg("-1"));
	T_ASSERT(ctl_decimal_is_neg("-0.01"));
	T_ASSERT(!ctl_decimal_is_neg("-0.000"));
	T_ASSERT(!ctl_decimal_is_neg("5"));
}

static void
test_ctl_int(void)
{
	long long v = 7;

	T_OK(ctl_parse_int("42", 0, 100, &v));
	T_EQ_INT(v, 42);
	T_OK(ctl_parse_int("-5", -10, 10, &v));
	T_EQ_INT(v, -5);
	T_EQ_INT(ctl_parse_int("101", 0, 100, &v), -ERR_INVAL);
	T_EQ_INT(ctl_parse_int("", 0, 100, &v), -ERR_INVAL);
	T_EQ_INT(ctl_parse_int("4x", 0, 100, &v), -ERR_INVAL);
	T_EQ_INT(ctl_parse_int("99999999999999999999", 0, 100, &v), -ERR_INVAL);
	T_EQ_INT(v, -5);
}

static void
test_ctl_email_id_url(void)
{
	T_ASSERT(ctl_email_ok("a@b.co"));
	T_ASSERT(ctl_email_ok("first.last+tag@example.org"));
	T_ASSERT(!ctl_email_ok("ab.co"));
	T_ASSERT(!ctl_email_ok("@b.co"));
	T_ASSERT(!ctl_email_ok("a@b"));
	T_ASSERT(!ctl_email_ok("a@@b.co"));
	T_ASSERT(!ctl_email_ok("a b@c.co"));
	T_ASSERT(!ctl_email_ok("a@b.co."));
	T_ASSERT(!ctl_email_ok("a@b.co\n"));
	T_ASSERT(ctl_is_id("1"));
	T_ASSERT(ctl_is_id("123456789012345678"));
	T_ASSERT(!ctl_is_id("0"));
	T_ASSERT(!ctl_is_id("01"));
	T_ASSERT(!ctl_is_id("1234567890123456789"));
	T_ASSERT(!ctl_is_id("a@b.co"));
	T_ASSERT(ctl_platform_ok("gemini"));
	T_ASSERT(!ctl_platform_ok("Gemini"));
	T_ASSERT(ctl_url_ok("https://api.example.com/v1"));
	T_ASSERT(!ctl_url_ok("https://"));
	T_ASSERT(!ctl_url_ok("ftp://x"));
	T_ASSERT(!ctl_url_ok("http://a b"));
	T_ASSERT(!ctl_text_ok("", 10));
	T_ASSERT(!ctl_text_ok("abc\tdef", 10));
	T_ASSERT(!ctl_text_ok("01234567890", 10));
}

static void
test_ctl_parse_opts(void)
{
	struct ctl_opt o[] = {
	    {"user", CTL_ARG, true},
	    {"flag", CTL_FLAG, false},
	    {"group", CTL_MULTI, false},
	};
	const char *ok[] = {
	    "--user", "a@b.co", "--flag", "--group=g1", "--group", "g2"};
	const char *missing[] = {"--flag"};
	const char *unknown[] = {"--user", "x", "--nope"};
	const char *novalue[] = {"--user"};
	const char *twice[] = {"--user", "a", "--user", "b"};
	const char *stray[] = {"--user", "a", "extra"};

	T_OK(ctl_parse(6, (char **)ok, o, ARRAY_SIZE(o)));
	T_EQ_STR(o[0].val, "a@b.co");
	T_ASSERT(o[1].set);
	T_EQ_INT(o[2].nvals, 2);
	T_EQ_STR(o[2].vals[0], "g1");
	T_EQ_STR(o[2].vals[1], "g2");
	memset(&o[0].set, 0, sizeof(o[0]) - offsetof(struct ctl_opt, set));
	memset(&o[1].set, 0, sizeof(o[1]) - offsetof(struct ctl_opt, set));
	memset(&o[2].set, 0, sizeof(o[2]) - offsetof(struct ctl_opt, set));
	T_EQ_INT(ctl_parse(1, (char **)missing, o, ARRAY_SIZE(o)), -ERR_INVAL);
	o[1].set = false;
	T_EQ_INT(ctl_parse(3, (char **)unknown, o, ARRAY_SIZE(o)), -ERR_INVAL);
	o[0].set = false;
	T_EQ_INT(ctl_parse(1, (char **)novalue, o, ARRAY_SIZE(o)), -ERR_INVAL);
	T_EQ_INT(ctl_parse(4, (char **)twice, o, ARRAY_SIZE(o)), -ERR_INVAL);
	o[0].set = false;
	T_EQ_INT(ctl_parse(3, (char **)stray, o, ARRAY_SIZE(o)), -ERR_INVAL);
}

static void
test_ctl_exit_codes(void)
{
	T_EQ_INT(ctl_exit_code(0), 0);
	T_EQ_INT(ctl_exit_code(-ERR_INVAL), 2);
	T_EQ_INT(ctl_exit_code(-ERR_NOTFOUND), 2);
	T_EQ_INT(ctl_exit_code(-ERR_CONFIG), 2);
	T_EQ_INT(ctl_exit_code(-ERR_DB), 1);
	T_EQ_INT(ctl_exit_code(-ERR_CONFLICT), 1);
	T_EQ_INT(ctl_exit_code(-ERR_UNAVAIL), 1);
}

T_MAIN(T_CASE(test_ctl_decimal), T_CASE(test_ctl_int),
    T_CASE(test_ctl_email_id_url), T_CASE(test_ctl_parse_opts),
    T_CASE(test_ctl_exit_codes))
