/*
 * buf_test.c: bounded buffer contract: growth, cap, JSON escaping, detach.
 */
#include "buf.h"
#include "err.h"
#include "t.h"

static void
test_buf_grow_and_terminate(void)
{
	struct buf b;
	int        i;

	buf_init(&b, 1 << 20);
	T_EQ_STR(buf_str(&b), "");
	for (i = 0; i < 1000; i++)
		T_OK(buf_addstr(&b, "abc"));
	T_EQ_INT(b.len, 3000);
	T_EQ_INT(b.data[b.len], '\0');
	T_OK(buf_addf(&b, "%d-%s", 42, "x"));
	T_EQ_STR(buf_str(&b) + 3000, "42-x");
	buf_release(&b);
}

static void
test_buf_cap_frees(void)
{
	struct buf b;

	buf_init(&b, 8);
	T_OK(buf_add(&b, "1234567", 7));
	T_EQ_INT(buf_addch(&b, 'x'), -ERR_TOOBIG);
	T_EQ_INT(b.len, 0);
	T_ASSERT(b.data == NULL);
	T_EQ_INT(buf_addf(&b, "%s", "123456789"), -ERR_TOOBIG);
	T_EQ_INT(buf_add(&b, "x", SIZE_MAX), -ERR_TOOBIG);
	buf_release(&b);
}

static void
test_buf_json_escape(void)
{
	struct buf b;

	buf_init(&b, 256);
	T_OK(buf_add_json_str(&b, "a\"b\\c\n\x01z", 8));
	T_EQ_STR(buf_str(&b), "a\\\"b\\\\c\\n\\u0001z");
	buf_release(&b);
}

static void
test_buf_detach_truncate(void)
{
	struct buf b;
	char      *p;
	size_t     n;

	buf_init(&b, 64);
	T_OK(buf_addstr(&b, "hello world"));
	buf_truncate(&b, 5);
	T_EQ_STR(buf_str(&b), "hello");
	p = buf_detach(&b, &n);
	T_EQ_INT(n, 5);
	T_EQ_STR(p, "hello");
	free(p);
	T_EQ_INT(b.len, 0);
	p = buf_detach(&b, NULL);
	T_EQ_STR(p, "");
	free(p);
}

T_MAIN(T_CASE(test_buf_grow_and_terminate), T_CASE(test_buf_cap_frees),
    T_CASE(test_buf_json_escape), T_CASE(test_buf_detach_truncate))
