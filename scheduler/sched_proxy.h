/*
 * sched_proxy.h: the outbound proxy URL of an account (pure functions).
 *
 * An account may name a row of proxies (protocol http|https|socks5, host,
 * port, username, sealed password).  The scheduler turns the row into the
 * URL the gateway hands to libcurl's CURLOPT_PROXY:
 *
 *   http://[user[:pass]@]host:port
 *   https://[user[:pass]@]host:port
 *   socks5h://[user[:pass]@]host:port
 *
 * socks5 becomes socks5h so that the proxy resolves the upstream's name:
 * no DNS query for the upstream leaves this host, and the proxy sees the
 * same name it would see for an HTTP proxy.  The user name and password
 * are percent-encoded as RFC 3986 userinfo (every byte but the unreserved
 * ALPHA / DIGIT / "-" / "." / "_" / "~"), which libcurl decodes.  An IPv6
 * literal host is written in brackets.
 *
 * The URL holds the proxy password in plaintext: callers keep it out of
 * logs and wipe it when done.
 */
#ifndef SCHED_PROXY_H
#define SCHED_PROXY_H

#include "compat.h"

#define SCHED_PROXY_HOST_MAX 255

/*
 * Whether host (borrowed) is acceptable: 1..SCHED_PROXY_HOST_MAX bytes of
 * a name or IPv4 address (ALPHA, DIGIT, "-", ".", "_"), or an IPv6
 * literal (hex digits, ":", "." with at least one ":"), bare or in
 * brackets.  Nothing that could change the URL's meaning (spaces, "/",
 * "@", "?", "#", "%", ...) passes.
 */
bool sched_proxy_host_ok(const char *host);

/*
 * Writes the proxy URL of (protocol, host, port, user, pass) into out
 * (cap bytes, NUL included).  user and pass are borrowed and may be NULL
 * or "" (no userinfo when both are empty).  -ERR_INVAL for an unknown
 * protocol, a bad host or a port outside 1..65535; -ERR_TOOBIG when the
 * URL does not fit.  On failure out is zeroed (it may have held part of
 * the password), so nothing partial is ever left behind.
 */
int sched_proxy_url(const char *protocol, const char *host, long port,
    const char *user, const char *pass, char *out, size_t cap) WARN_UNUSED;

#endif /* SCHED_PROXY_H */
