/*
 * buf.h: bounded growable byte buffers.
 *
 * A struct buf owns a heap block that grows as bytes are appended, up to a
 * hard maximum fixed at buf_init() (curl's dynbuf).  Every buffer that
 * holds bytes derived from input has a cap, so an append that would pass it
 * fails with -ERR_TOOBIG and leaves the buffer freed and empty: the caller
 * never continues with a truncated value.
 *
 * Invariants: len < cap whenever data != NULL, and data[len] == '\0', so
 * the contents can always be read as a C string (binary content may hold
 * NULs of its own).  A zeroed struct buf is not usable: call buf_init().
 *
 * Ownership: the buffer owns data until buf_detach() hands it out.
 */
#ifndef BUF_H
#define BUF_H

#include <stdarg.h>

#include "compat.h"

struct buf {
	char  *data; /* NULL until the first append */
	size_t len;  /* bytes held, excluding the terminator */
	size_t cap;  /* allocated bytes */
	size_t max;  /* hard cap on len + 1 */
#ifndef NDEBUG
	int init; /* integrity check, as dynbuf does */
#endif
};

/* Prepares an empty buffer that may hold at most max - 1 bytes. */
void buf_init(struct buf *b, size_t max);

/* Frees the contents; the buffer can be reused after buf_init(). */
void buf_release(struct buf *b);

/* Drops the contents but keeps the allocation and the cap. */
void buf_reset(struct buf *b);

/*
 * Appends; 0 on success, -ERR_TOOBIG (buffer released) past the cap.
 * buf_add borrows p.
 */
int buf_add(struct buf *b, const void *p, size_t len) WARN_UNUSED;
int buf_addstr(struct buf *b, const char *s) WARN_UNUSED;
int buf_addch(struct buf *b, char c) WARN_UNUSED;
int buf_addf(struct buf *b, const char *fmt, ...) PRINTF_LIKE(2, 3) WARN_UNUSED;
int buf_vaddf(struct buf *b, const char *fmt, va_list ap)
    PRINTF_LIKE(2, 0) WARN_UNUSED;

/*
 * Appends s (len bytes) as the body of a JSON string, escaping quotes,
 * backslashes and control bytes; no surrounding quotes are added.
 */
int buf_add_json_str(struct buf *b, const char *s, size_t len) WARN_UNUSED;

/* Drops the last n bytes (n <= len). */
void buf_truncate(struct buf *b, size_t len);

/* The contents as a C string; "" for an empty buffer, never NULL. */
const char *buf_str(const struct buf *b);

/*
 * Hands the allocation to the caller (who frees it with free()) and leaves
 * the buffer empty; *lenp receives the length when not NULL.  Returns a
 * freshly allocated "" when the buffer is empty.
 */
char *buf_detach(struct buf *b, size_t *lenp);

#endif /* BUF_H */
