/*
 * err_test.c: every code has a name and a text, both signs resolve.
 */
#include "err.h"
#include "t.h"

static void
test_err_names(void)
{
	T_EQ_STR(err_name(-ERR_TOOBIG), "TOOBIG");
	T_EQ_STR(err_name(ERR_TOOBIG), "TOOBIG");
	T_EQ_STR(err_str(-ERR_PROTO), "malformed or unexpected message");
	T_EQ_STR(err_name(0), "NONE");
	T_EQ_STR(err_name(-9999), "UNKNOWN");
	T_EQ_STR(err_str(ERR_MAX_), "unknown error");
}

static void
test_err_table_complete(void)
{
	int i;

	for (i = 1; i < ERR_MAX_; i++) {
		T_ASSERT(strcmp(err_name(i), "UNKNOWN") != 0);
		T_ASSERT(strlen(err_str(-i)) > 0);
	}
}

T_MAIN(T_CASE(test_err_names), T_CASE(test_err_table_complete))
