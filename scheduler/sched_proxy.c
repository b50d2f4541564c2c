/*
 * sched_proxy.c: builds an account's proxy URL; see sched_proxy.h.
 *
 * A small bounded writer appends to the caller's buffer and remembers
 * overflow, so the builder reads as a list of appends and checks once.
 */
#include "sched_proxy.h"

#include <ctype.h>
#include <stdio.h>

#include "err.h"

struct sched_proxy_w {
	char  *p;
	size_t cap, len;
	bool   full;
};

static void
sched_proxy_put(struct sched_proxy_w *w, const char *s, size_t n)
{
	if (w->full || n >= w->cap - w->len) {
		w->full = true;
		return;
	}
	memcpy(w->p + w->len, s, n);
	w->len += n;
	w->p[w->len] = '\0';
}

static void
sched_proxy_puts(struct sched_proxy_w *w, const char *s)
{
	sched_proxy_put(w, s, strlen(s));
}

static bool
sched_proxy_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	    c == '~';
}

/* Appends s percent-encoded as RFC 3986 userinfo. */
static void
sched_proxy_put_enc(struct sched_proxy_w *w, const char *s)
{
	static const char hexd[] = "0123456789ABCDEF";
	char              e[3];
	unsigned char     c;

	for (; *s != '\0' && !w->full; s++) {
		c = (unsigned char)*s;
		if (sched_proxy_unreserved(c)) {
			sched_proxy_put(w, (const char *)&c, 1);
			continue;
		}
		e[0] = '%';
		e[1] = hexd[c >> 4];
		e[2] = hexd[c & 15];
		sched_proxy_put(w, e, 3);
	}
}

static bool
sched_proxy_v6_ok(const char *s, size_t len)
{
	size_t i, colons = 0;

	if (len < 2)
		return false;
	for (i = 0; i < len; i++) {
		if (s[i] == ':')
			colons++;
		else if (!isxdigit((unsigned char)s[i]) && s[i] != '.')
			return false;
	}
	return colons >= 2;
}

bool
sched_proxy_host_ok(const char *host)
{
	size_t len = strlen(host), i;

	if (len == 0 || len > SCHED_PROXY_HOST_MAX)
		return false;
	if (host[0] == '[')
		return len > 2 && host[len - 1] == ']' &&
		    sched_proxy_v6_ok(host + 1, len - 2);
	if (strchr(host, ':') != NULL)
		return sched_proxy_v6_ok(host, len);
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)host[i];

		if (!isalnum(c) && c != '-' && c != '.' && c != '_')
			return false;
	}
	return true;
}

int
sched_proxy_url(const char *protocol, const char *host, long port,
    const char *user, const char *pass, char *out, size_t cap)
{
	struct sched_proxy_w w = {out, cap, 0, false};
	const char          *scheme;
	char                 num[16];
	bool                 v6;

	if (strcmp(protocol, "http") == 0)
		scheme = "http://";
	else if (strcmp(protocol, "https") == 0)
		scheme = "https://";
	else if (strcmp(protocol, "socks5") == 0)
		scheme = "socks5h://";
	else
		return -ERR_INVAL;
	if (!sched_proxy_host_ok(host) || port < 1 || port > 65535)
		return -ERR_INVAL;
	if (cap == 0)
		return -ERR_TOOBIG;
	user = user != NULL ? user : "";
	pass = pass != NULL ? pass : "";
	v6 = host[0] != '[' && strchr(host, ':') != NULL;

	out[0] = '\0';
	sched_proxy_puts(&w, scheme);
	if (*user != '\0' || *pass != '\0') {
		sched_proxy_put_enc(&w, user);
		if (*pass != '\0') {
			sched_proxy_puts(&w, ":");
			sched_proxy_put_enc(&w, pass);
		}
		sched_proxy_puts(&w, "@");
	}
	sched_proxy_puts(&w, v6 ? "[" : "");
	sched_proxy_puts(&w, host);
	sched_proxy_puts(&w, v6 ? "]" : "");
	snprintf(num, sizeof(num), ":%ld", port);
	sched_proxy_puts(&w, num);
	if (w.full) {
		memset(out, 0, cap);
		return -ERR_TOOBIG;
	}
	return 0;
}
