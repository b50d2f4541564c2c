/*
 * t.h: the project's unit-test harness.
 *
 * A test file defines static void functions and lists them at the bottom:
 *
 *   static void test_buf_cap(void) { T_EQ_INT(buf_add(...), -ERR_TOOBIG); }
 *   T_MAIN(T_CASE(test_buf_cap), T_CASE(test_other))
 *
 * Each case runs in order; a failed check reports file, line and values
 * and ends that case (not the binary).  The binary prints one line per
 * case and closes with "N passed, N failed"; tests/run.sh sums those
 * lines across binaries.  A case may call T_SKIP("why") to print a visible
 * skip line; skips are counted apart and never as passes.
 */
#ifndef T_H
#define T_H

#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include "compat.h"

struct t_case {
	const char *name;
	void (*fn)(void);
};

extern jmp_buf t_jmp;

NORETURN void t_fail(const char *file, int line, const char *fmt, ...)
    PRINTF_LIKE(3, 4);
NORETURN void t_skip(const char *why);
int t_run(const struct t_case *cases, size_t n, int argc, char **argv);

#define T_CASE(fn)      \
	{               \
#fn, fn \
	}
#define T_MAIN(...)                                                       \
	int main(int argc, char **argv)                                   \
	{                                                                 \
		static const struct t_case t_cases_[] = {__VA_ARGS__};    \
		return t_run(t_cases_, ARRAY_SIZE(t_cases_), argc, argv); \
	}

#define T_ASSERT(c)                                           \
	do {                                                  \
		if (!(c))                                     \
			t_fail(__FILE__, __LINE__, "%s", #c); \
	} while (0)

#define T_EQ_INT(a, b)                                                       \
	do {                                                                 \
		long long t_a_ = (long long)(a), t_b_ = (long long)(b);      \
		if (t_a_ != t_b_)                                            \
			t_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", \
			    #a, #b, t_a_, t_b_);                             \
	} while (0)

#define T_EQ_STR(a, b)                                                       \
	do {                                                                 \
		const char *t_a_ = (a), *t_b_ = (b);                         \
		if (t_a_ == NULL || t_b_ == NULL || strcmp(t_a_, t_b_) != 0) \
			t_fail(__FILE__, __LINE__,                           \
			    "%s == %s: \"%s\" != \"%s\"", #a, #b,            \
			    t_a_ ? t_a_ : "(null)", t_b_ ? t_b_ : "(null)"); \
	} while (0)

#define T_OK(expr)  T_EQ_INT((expr), 0)
#define T_SKIP(why) t_skip(why)

#endif /* T_H */
