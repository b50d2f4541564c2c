/*
 * compat.c: abort-on-OOM allocators, the BUG() reporter and clocks.
 *
 * These sit below the logger, so they write their last words with a single
 * write(2) of a JSON line of their own rather than calling log_*.
 */
#include "compat.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

NORETURN static void
compat_die(const char *ev, const char *file, int line, const char *msg)
{
	char buf[1024];
	int  n;

	n = snprintf(buf, sizeof(buf),
	    "{\"lvl\":\"error\",\"ev\":\"%s\",\"file\":\"%s\",\"line\":%d,"
	    "\"msg\":\"%s\"}\n",
	    ev, file, line, msg);
	if (n > 0) {
		size_t len =
		    (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1;
		ssize_t w = write(STDERR_FILENO, buf, len);
		(void)w;
	}
	abort();
}

void
compat_bug(const char *file, int line, const char *fmt, ...)
{
	char    msg[512];
	va_list ap;
	size_t  i;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* Keep the line valid JSON: the message is code text, not input. */
	for (i = 0; msg[i] != '\0'; i++) {
		if (msg[i] == '"' || msg[i] == '\\' ||
		    (unsigned char)msg[i] < 0x20)
			msg[i] = '\'';
	}
	compat_die("bug", file, line, msg);
}

NORETURN static void
compat_oom(size_t n)
{
	char msg[64];

	snprintf(msg, sizeof(msg), "out of memory allocating %zu bytes", n);
	compat_die("oom", __FILE__, __LINE__, msg);
}

void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		compat_oom(n);
	return p;
}

void *
xcalloc(size_t nmemb, size_t size)
{
	void *p;

	if (size != 0 && nmemb > SIZE_MAX / size)
		compat_oom(SIZE_MAX);
	p = calloc(nmemb ? nmemb : 1, size ? size : 1);
	if (p == NULL)
		compat_oom(nmemb * size);
	return p;
}

void *
xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (q == NULL)
		compat_oom(n);
	return q;
}

char *
xstrdup(const char *s)
{
	return xmemdup(s, strlen(s) + 1);
}

char *
xstrndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char  *p = xmalloc(len + 1);

	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

void *
xmemdup(const void *p, size_t n)
{
	void *q = xmalloc(n);

	if (n != 0)
		memcpy(q, p, n);
	return q;
}

bool
str_copy(char *dst, size_t cap, const char *src)
{
	size_t n = strnlen(src, cap);
	bool   cut = n == cap;

	if (cut)
		n = cap - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
	return cut;
}

int64_t
now_mono_ms(void)
{
	return now_mono_us() / 1000;
}

int64_t
now_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
now_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
