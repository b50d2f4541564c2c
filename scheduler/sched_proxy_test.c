/*
 * sched_proxy_test.c: the proxy URL builder (pure): each protocol,
 * percent-encoded userinfo, IPv6 hosts, bad input and the size cap.
 */
#include "err.h"
#include "sched_proxy.h"
#include "t.h"

static char U[600];

static void
test_protocols(void)
{
	T_OK(sched_proxy_url(
	    "http", "127.0.0.1", 8080, NULL, NULL, U, sizeof(U)));
	T_EQ_STR(U, "http://127.0.0.1:8080");
	T_OK(sched_proxy_url(
	    "https", "proxy.example.com", 443, "", "", U, sizeof(U)));
	T_EQ_STR(U, "https://proxy.example.com:443");
	T_OK(sched_proxy_url(
	    "socks5", "localhost", 1080, NULL, NULL, U, sizeof(U)));
	T_EQ_STR(U, "socks5h://localhost:1080");
	T_EQ_INT(sched_proxy_url("socks4", "h", 1, NULL, NULL, U, sizeof(U)),
	    -ERR_INVAL);
	T_EQ_INT(sched_proxy_url("HTTP", "h", 1, NULL, NULL, U, sizeof(U)),
	    -ERR_INVAL);
}

static void
test_userinfo(void)
{
	T_OK(sched_proxy_url(
	    "http", "10.0.0.1", 3128, "alice", "s3cret", U, sizeof(U)));
	T_EQ_STR(U, "http://alice:s3cret@10.0.0.1:3128");
	/* Every reserved or non-ASCII byte is encoded; unreserved are not. */
	T_OK(sched_proxy_url(
	    "socks5", "h", 1, "a@b:c", "p@ss:w/rd%?#[] +~._-", U, sizeof(U)));
	T_EQ_STR(U,
	    "socks5h://a%40b%3Ac:p%40ss%3Aw%2Frd%25%3F%23%5B%5D%20%2B"
	    "~._-@h:1");
	T_OK(sched_proxy_url("http", "h", 1, "\xc3\xa9", "\x01", U, sizeof(U)));
	T_EQ_STR(U, "http://%C3%A9:%01@h:1");
	/* A user without a password, and a password without a user. */
	T_OK(sched_proxy_url("http", "h", 2, "bob", NULL, U, sizeof(U)));
	T_EQ_STR(U, "http://bob@h:2");
	T_OK(sched_proxy_url("http", "h", 2, "", "pw", U, sizeof(U)));
	T_EQ_STR(U, "http://:pw@h:2");
}

static void
test_ipv6(void)
{
	T_OK(sched_proxy_url("http", "::1", 8080, NULL, NULL, U, sizeof(U)));
	T_EQ_STR(U, "http://[::1]:8080");
	T_OK(sched_proxy_url(
	    "socks5", "2001:db8::1", 1080, "u", "p", U, sizeof(U)));
	T_EQ_STR(U, "socks5h://u:p@[2001:db8::1]:1080");
	T_OK(
	    sched_proxy_url("https", "[fe80::2]", 1, NULL, NULL, U, sizeof(U)));
	T_EQ_STR(U, "https://[fe80::2]:1");
	T_OK(sched_proxy_url(
	    "http", "::ffff:127.0.0.1", 9, NULL, NULL, U, sizeof(U)));
	T_EQ_STR(U, "http://[::ffff:127.0.0.1]:9");
}

static void
test_bad_host_port(void)
{
	static const char *bad[] = {"", "a b", "a/b", "u@h", "h?x", "h#x",
	    "h%25", "[::1", "::1]", "[]", "h:80", "[h]", "a\tb"};
	char               big[300];
	size_t             i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		T_ASSERT(!sched_proxy_host_ok(bad[i]));
		T_EQ_INT(sched_proxy_url(
		             "http", bad[i], 80, NULL, NULL, U, sizeof(U)),
		    -ERR_INVAL);
	}
	memset(big, 'a', 256);
	big[256] = '\0';
	T_ASSERT(!sched_proxy_host_ok(big));
	big[255] = '\0';
	T_ASSERT(sched_proxy_host_ok(big));
	T_ASSERT(sched_proxy_host_ok("my-proxy_1.example.com"));
	T_EQ_INT(sched_proxy_url("http", "h", 0, NULL, NULL, U, sizeof(U)),
	    -ERR_INVAL);
	T_EQ_INT(sched_proxy_url("http", "h", 65536, NULL, NULL, U, sizeof(U)),
	    -ERR_INVAL);
	T_OK(sched_proxy_url("http", "h", 65535, NULL, NULL, U, sizeof(U)));
}

static void
test_cap(void)
{
	char small[24], pw[200];

	/* "http://h:1" is 10 bytes: fits in 11, not in 10. */
	T_OK(sched_proxy_url("http", "h", 1, NULL, NULL, small, 11));
	T_EQ_STR(small, "http://h:1");
	T_EQ_INT(sched_proxy_url("http", "h", 1, NULL, NULL, small, 10),
	    -ERR_TOOBIG);
	/* A failure leaves no part of the password behind. */
	memset(small, 'x', sizeof(small));
	T_EQ_INT(sched_proxy_url(
	             "http", "h", 1, "u", "secret", small, sizeof(small) - 6),
	    -ERR_TOOBIG);
	T_EQ_INT(small[0], 0);
	T_EQ_INT(memchr(small, 's', sizeof(small) - 6) != NULL, 0);
	/* Encoding triples the size: 200 '@' need 600 bytes. */
	memset(pw, '@', sizeof(pw) - 1);
	pw[sizeof(pw) - 1] = '\0';
	T_EQ_INT(sched_proxy_url("http", "h", 1, "u", pw, U, 513), -ERR_TOOBIG);
	T_EQ_INT(
	    sched_proxy_url("http", "h", 1, NULL, NULL, U, 0), -ERR_TOOBIG);
}

T_MAIN(T_CASE(test_protocols), T_CASE(test_userinfo), T_CASE(test_ipv6),
    T_CASE(test_bad_host_port), T_CASE(test_cap))
