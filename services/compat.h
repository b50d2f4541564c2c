/*
 * compat.h: the first project header every .c file includes.
 *
 * It pins the feature-test macros, brings in the few standard headers every
 * module uses, and defines the small vocabulary shared by all modules:
 * WARN_UNUSED for fallible functions, ARRAY_SIZE, the BUG()/ASSERT() checks
 * that stay compiled in, and the x*alloc() family that aborts on
 * out-of-memory (after logging) instead of returning NULL.
 */
#ifndef COMPAT_H
#define COMPAT_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define WARN_UNUSED       __attribute__((warn_unused_result))
#define NORETURN          __attribute__((noreturn))
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#define UNUSED            __attribute__((unused))
#define ARRAY_SIZE(a)     (sizeof(a) / sizeof((a)[0]))

/*
 * A broken invariant: log where and why, then abort.  Never used for bad
 * input, only for states the code itself must not reach.
 */
NORETURN void compat_bug(const char *file, int line, const char *fmt, ...)
    PRINTF_LIKE(3, 4);

#define BUG(...) compat_bug(__FILE__, __LINE__, __VA_ARGS__)
#define ASSERT(c)                                                 \
	do {                                                      \
		if (!(c))                                         \
			compat_bug(__FILE__, __LINE__, "%s", #c); \
	} while (0)

/*
 * Allocation that cannot fail: on exhaustion they log and abort, as git
 * and OpenSMTPD do.  Sizes are checked for multiplication overflow.
 * xstrndup copies at most n bytes and always terminates.
 */
void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
void *xmemdup(const void *p, size_t n);

/*
 * Copies the C string src into dst of cap bytes (cap > 0), cutting it if
 * needed; dst is always terminated.  Returns true when src was cut.
 */
bool str_copy(char *dst, size_t cap, const char *src);

/*
 * Monotonic and wall clocks in milliseconds / microseconds.
 */
int64_t now_mono_ms(void);
int64_t now_mono_us(void);
int64_t now_wall_ms(void);

#include "banned.h"

#endif /* COMPAT_H */
