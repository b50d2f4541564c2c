/*
 * buf.c: bounded growable buffers (see buf.h for the contract).
 *
 * Growth doubles the allocation, starting at 64 bytes, clamped to the cap,
 * so appends are amortised O(1) and the cap check happens before any
 * allocation.
 */
#include "buf.h"

#include <stdio.h>

#include "err.h"

#define BUF_INIT_MAGIC 0x5bf1
#define BUF_MIN_ALLOC  64

static void
buf_check(const struct buf *b)
{
#ifndef NDEBUG
	ASSERT(b->init == BUF_INIT_MAGIC);
#endif
	ASSERT((b->data == NULL && b->len == 0 && b->cap == 0) ||
	    (b->data != NULL && b->len < b->cap));
}

void
buf_init(struct buf *b, size_t max)
{
	ASSERT(max > 0);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
#ifndef NDEBUG
	b->init = BUF_INIT_MAGIC;
#endif
}

void
buf_release(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void
buf_reset(struct buf *b)
{
	buf_check(b);
	b->len = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

/* Makes room for len more bytes plus the terminator. */
static int
buf_grow(struct buf *b, size_t len)
{
	size_t need, ncap;

	if (len >= b->max || b->len >= b->max - len) {
		buf_release(b);
		return -ERR_TOOBIG;
	}
	need = b->len + len + 1;
	if (need <= b->cap)
		return 0;
	ncap = b->cap != 0 ? b->cap : BUF_MIN_ALLOC;
	while (ncap < need)
		ncap = ncap > SIZE_MAX / 2 ? SIZE_MAX : ncap * 2;
	if (ncap > b->max)
		ncap = b->max;
	b->data = xrealloc(b->data, ncap);
	b->cap = ncap;
	return 0;
}

int
buf_add(struct buf *b, const void *p, size_t len)
{
	int rv;

	buf_check(b);
	rv = buf_grow(b, len);
	if (rv != 0)
		return rv;
	if (len != 0)
		memcpy(b->data + b->len, p, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int
buf_addstr(struct buf *b, const char *s)
{
	return buf_add(b, s, strlen(s));
}

int
buf_addch(struct buf *b, char c)
{
	return buf_add(b, &c, 1);
}

int
buf_vaddf(struct buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	int     n, rv;

	buf_check(b);
	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return -ERR_INVAL;
	rv = buf_grow(b, (size_t)n);
	if (rv != 0)
		return rv;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int
buf_addf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int     rv;

	va_start(ap, fmt);
	rv = buf_vaddf(b, fmt, ap);
	va_end(ap);
	return rv;
}

int
buf_add_json_str(struct buf *b, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t            i, run;
	int               rv;

	for (i = 0; i < len; i = run) {
		unsigned char c;
		char          esc[6];

		/* Copy the longest run that needs no escaping in one go. */
		for (run = i; run < len; run++) {
			c = (unsigned char)s[run];
			if (c < 0x20 || c == '"' || c == '\\')
				break;
		}
		if (run > i) {
			rv = buf_add(b, s + i, run - i);
			if (rv != 0)
				return rv;
		}
		if (run == len)
			break;
		c = (unsigned char)s[run++];
		esc[0] = '\\';
		switch (c) {
		case '"':
		case '\\':
			esc[1] = (char)c;
			rv = buf_add(b, esc, 2);
			break;
		case '\n':
			rv = buf_add(b, "\\n", 2);
			break;
		case '\r':
			rv = buf_add(b, "\\r", 2);
			break;
		case '\t':
			rv = buf_add(b, "\\t", 2);
			break;
		default:
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 0xf];
			rv = buf_add(b, esc, 6);
			break;
		}
		if (rv != 0)
			return rv;
	}
	return 0;
}

void
buf_truncate(struct buf *b, size_t len)
{
	buf_check(b);
	ASSERT(len <= b->len);
	if (b->data == NULL)
		return;
	b->len = len;
	b->data[len] = '\0';
}

const char *
buf_str(const struct buf *b)
{
	return b->data != NULL ? b->data : "";
}

char *
buf_detach(struct buf *b, size_t *lenp)
{
	char *p = b->data;

	if (lenp != NULL)
		*lenp = b->len;
	if (p == NULL)
		p = xstrdup("");
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	return p;
}
