/*
 * fakeproxy.c: a small forward proxy for tests (HTTP, CONNECT, SOCKS5).
 *
 *   fakeproxy --listen 127.0.0.1:0 [--user U --pass P]
 *
 * Once listening it prints exactly one line on stdout:
 *
 *   listening 127.0.0.1:<port>
 *
 * One listening socket speaks three protocols, told apart by the first
 * byte of a connection (0x05: SOCKS5, anything else: HTTP):
 *
 *   - HTTP forward proxying of absolute-URI requests ("GET http://h:p/x
 *     HTTP/1.1", what curl sends through an http:// proxy to an http://
 *     upstream): the request goes on in origin form with Proxy-* and
 *     Connection headers dropped and "Connection: close" added, and the
 *     answer is relayed until the upstream closes;
 *   - HTTP CONNECT host:port: "200 Connection established", then a tunnel;
 *   - SOCKS5 (RFC 1928) with no authentication or, when --user is given,
 *     username/password (RFC 1929) only; the CONNECT command; IPv4,
 *     domain and IPv6 address types.
 *
 * With --user/--pass, HTTP requests need "Proxy-Authorization: Basic" of
 * "U:P" (else 407) and SOCKS5 clients must authenticate (else the method
 * is refused or the sub-negotiation fails).  Each refusal counts as an
 * auth failure.  "GET /_proxy/stats" asked directly (origin form, not
 * proxied, no credentials needed) answers
 *
 *   {"connections":N,"auth_failures":N,
 *    "by_kind":{"http":N,"connect":N,"socks5":N}}
 *
 * where connections counts proxy connections (stats requests excluded).
 *
 * Safety and bounds: targets must resolve to loopback addresses (anything
 * else is refused: 403, or SOCKS reply 0x02), so the tool can never be an
 * open proxy; request headers are capped at FPROXY_HDR_MAX bytes, socket
 * reads and writes time out after FPROXY_IO_S seconds, an idle tunnel
 * after FPROXY_IDLE_S, and at most FPROXY_CONNS_MAX connections run at
 * once (one detached thread each; more are closed at once).  Credentials
 * are never logged.  SIGTERM or SIGINT stop it with status 0.
 */
#include <sys/socket.h>
#include <sys/time.h>

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "crypto.h"
#include "err.h"
#include "log.h"
#include "sig.h"

#define FPROXY_HDR_MAX   16384 /* request line plus headers */
#define FPROXY_IO_S      10
#define FPROXY_IDLE_S    60
#define FPROXY_CONNS_MAX 256
#define FPROXY_CRED_MAX  255

enum fproxy_kind { FPROXY_K_HTTP, FPROXY_K_CONNECT, FPROXY_K_SOCKS5 };

struct fproxy {
	const char *user, *pass; /* NULL: no authentication */
	char        basic[2 * (2 * FPROXY_CRED_MAX + 2)];
	int         lfd;
	atomic_long connections;
	atomic_long auth_failures;
	atomic_long by_kind[3];
	atomic_int  active;
};

static struct fproxy F;

static void
fproxy_usage(int status)
{
	fprintf(status == 0 ? stdout : stderr,
	    "usage: fakeproxy --listen HOST:PORT [--user U --pass P]\n");
	exit(status);
}

/* ---- socket helpers ---------------------------------------------------- */

static void
fproxy_timeouts(int fd)
{
	struct timeval tv = {FPROXY_IO_S, 0};
	int            one = 1;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static int
fproxy_write_all(int fd, const void *p, size_t len)
{
	const char *b = p;
	ssize_t     n;

	while (len > 0) {
		n = send(fd, b, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -ERR_IO;
		b += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
fproxy_read_full(int fd, void *p, size_t len)
{
	char   *b = p;
	ssize_t n;

	while (len > 0) {
		n = recv(fd, b, len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -ERR_IO;
		b += n;
		len -= (size_t)n;
	}
	return 0;
}

static bool
fproxy_loopback(const struct sockaddr *sa)
{
	const struct sockaddr_in  *v4 = (const struct sockaddr_in *)sa;
	const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)sa;
	const uint8_t             *b;

	if (sa->sa_family == AF_INET)
		return (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
	if (sa->sa_family != AF_INET6)
		return false;
	if (IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr))
		return true;
	b = v6->sin6_addr.s6_addr;
	return IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr) && b[12] == 127;
}

/*
 * Connects to host:port.  -ERR_FORBIDDEN when it does not resolve to
 * loopback only, -ERR_NOTFOUND when it does not resolve, -ERR_UNAVAIL
 * when the connection is refused.
 */
static int
fproxy_dial(const char *host, const char *port, int *out)
{
	struct addrinfo hints = {0}, *res, *ai;
	int             fd = -1, rv;

	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, port, &hints, &res) != 0)
		return -ERR_NOTFOUND;
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if (!fproxy_loopback(ai->ai_addr)) {
			freeaddrinfo(res);
			return -ERR_FORBIDDEN;
		}
	}
	rv = -ERR_UNAVAIL;
	for (ai = res; ai != NULL && rv != 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		fproxy_timeouts(fd);
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			rv = 0;
			break;
		}
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (rv == 0)
		*out = fd;
	return rv;
}

/*
 * Relays bytes between the client c and the upstream u until both sides
 * are done, or the tunnel idles FPROXY_IDLE_S.  In forward mode (a
 * proxied HTTP request) the upstream closing ends everything.
 */
static void
fproxy_relay(int c, int u, bool forward)
{
	struct pollfd pf[2];
	char          buf[16384];
	bool          open_[2] = {true, true};
	int           fds[2] = {c, u}, i, n;
	ssize_t       got;

	while (open_[0] || open_[1]) {
		n = 0;
		for (i = 0; i < 2; i++) {
			pf[i].fd = open_[i] ? fds[i] : -1;
			pf[i].events = POLLIN;
			pf[i].revents = 0;
		}
		n = poll(pf, 2, FPROXY_IDLE_S * 1000);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		for (i = 0; i < 2; i++) {
			if (!open_[i] || pf[i].revents == 0)
				continue;
			got = recv(fds[i], buf, sizeof(buf), 0);
			if (got < 0 && errno == EINTR)
				continue;
			if (got <= 0) {
				open_[i] = false;
				if (forward && i == 1)
					return;
				shutdown(fds[1 - i], SHUT_WR);
				continue;
			}
			if (fproxy_write_all(fds[1 - i], buf, (size_t)got) != 0)
				return;
		}
	}
}

/* ---- HTTP -------------------------------------------------------------- */

static void
fproxy_http_reply(int fd, const char *status, const char *extra,
    const char *ctype, const char *body)
{
	char head[512];
	int  n;

	n = snprintf(head, sizeof(head),
	    "HTTP/1.1 %s\r\n%sContent-Type: %s\r\nContent-Length: %zu\r\n"
	    "Connection: close\r\n\r\n",
	    status, extra, ctype, strlen(body));
	if (n > 0 && (size_t)n < sizeof(head) &&
	    fproxy_write_all(fd, head, (size_t)n) == 0)
		(void)fproxy_write_all(fd, body, strlen(body));
}

static void
fproxy_stats(int fd)
{
	char body[256];

	snprintf(body, sizeof(body),
	    "{\"connections\":%ld,\"auth_failures\":%ld,\"by_kind\":"
	    "{\"http\":%ld,\"connect\":%ld,\"socks5\":%ld}}",
	    atomic_load(&F.connections), atomic_load(&F.auth_failures),
	    atomic_load(&F.by_kind[FPROXY_K_HTTP]),
	    atomic_load(&F.by_kind[FPROXY_K_CONNECT]),
	    atomic_load(&F.by_kind[FPROXY_K_SOCKS5]));
	fproxy_http_reply(fd, "200 OK", "", "application/json", body);
}

/*
 * Reads the request head into buf (cap bytes); *hlen is its length up to
 * and including the blank line, *len what was read in all (body bytes
 * may follow the head).
 */
static int
fproxy_read_head(int fd, char *buf, size_t cap, size_t *hlen, size_t *len)
{
	char   *end;
	size_t  have = 0;
	ssize_t n;

	while (have < cap - 1) {
		n = recv(fd, buf + have, cap - 1 - have, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -ERR_IO;
		have += (size_t)n;
		buf[have] = '\0';
		end = memmem(buf, have, "\r\n\r\n", 4);
		if (end != NULL) {
			*hlen = (size_t)(end - buf) + 4;
			*len = have;
			return 0;
		}
	}
	return -ERR_TOOBIG;
}

/* Whether header line (name: value) has the given name. */
static bool
fproxy_hdr_is(const char *line, size_t len, const char *name)
{
	size_t n = strlen(name);

	return len > n && line[n] == ':' && strncasecmp(line, name, n) == 0;
}

/* Whether the head's Proxy-Authorization matches --user/--pass. */
static bool
fproxy_http_authed(const char *head)
{
	const char *line = head, *eol, *v;
	size_t      len, vlen;
	char        tok[sizeof(F.basic)];

	if (F.user == NULL)
		return true;
	for (; (eol = strstr(line, "\r\n")) != NULL && eol != line;
	     line = eol + 2) {
		len = (size_t)(eol - line);
		if (!fproxy_hdr_is(line, len, "proxy-authorization"))
			continue;
		v = line + strlen("proxy-authorization:");
		while (*v == ' ' || *v == '\t')
			v++;
		if (strncasecmp(v, "basic ", 6) != 0)
			return false;
		v += 6;
		vlen = (size_t)(eol - v);
		if (vlen >= sizeof(tok))
			return false;
		memcpy(tok, v, vlen);
		tok[vlen] = '\0';
		return crypto_ct_streq(tok, F.basic);
	}
	return false;
}

/* Splits "host:port" or "[v6]:port" (dport when absent) in place. */
static int
fproxy_split_authority(char *a, const char *dport, char **host, char **port)
{
	char *c;

	if (strchr(a, '@') != NULL || *a == '\0')
		return -ERR_INVAL;
	if (*a == '[') {
		c = strchr(a, ']');
		if (c == NULL)
			return -ERR_INVAL;
		*c++ = '\0';
		*host = a + 1;
		if (*c == '\0') {
			*port = (char *)dport;
			return 0;
		}
		if (*c != ':')
			return -ERR_INVAL;
		*port = c + 1;
		return **port != '\0' ? 0 : -ERR_INVAL;
	}
	c = strrchr(a, ':');
	*host = a;
	if (c == NULL) {
		*port = (char *)dport;
		return 0;
	}
	*c = '\0';
	*port = c + 1;
	return **port != '\0' ? 0 : -ERR_INVAL;
}

static void
fproxy_count(enum fproxy_kind k)
{
	atomic_fetch_add(&F.connections, 1);
	atomic_fetch_add(&F.by_kind[k], 1);
}

static void
fproxy_deny_407(int fd)
{
	atomic_fetch_add(&F.auth_failures, 1);
	log_info("fproxy.auth_failed");
	fproxy_http_reply(fd, "407 Proxy Authentication Required",
	    "Proxy-Authenticate: Basic realm=\"fakeproxy\"\r\n", "text/plain",
	    "proxy authentication required\n");
}

static void
fproxy_dial_failed(int fd, int rv)
{
	fproxy_http_reply(fd,
	    rv == -ERR_FORBIDDEN ? "403 Forbidden" : "502 Bad Gateway", "",
	    "text/plain",
	    rv == -ERR_FORBIDDEN ? "only loopback targets\n"
	                         : "upstream unreachable\n");
}

static void
fproxy_connect(int fd, char *target)
{
	static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
	char             *host, *port;
	int               u, rv;

	rv = fproxy_split_authority(target, "443", &host, &port);
	if (rv == 0)
		rv = fproxy_dial(host, port, &u);
	if (rv != 0) {
		fproxy_dial_failed(fd, rv);
		return;
	}
	if (fproxy_write_all(fd, ok, sizeof(ok) - 1) == 0)
		fproxy_relay(fd, u, false);
	close(u);
}

/*
 * Forwards an absolute-URI request: method, the target's path, then the
 * head's headers but the hop-by-hop ones, and whatever body bytes came
 * with the head (the rest flows through the relay).
 */
static void
fproxy_forward(int fd, const char *method, char *target, const char *head,
    size_t hlen, const char *rest, size_t restlen)
{
	const char *line, *eol;
	char       *auth, *slash, *path, *host, *port, *out;
	size_t      n = 0, len, cap = hlen + 256;
	int         u, rv;

	auth = target + strlen("http://");
	slash = strchr(auth, '/');
	path = xstrdup(slash != NULL ? slash : "/");
	if (slash != NULL)
		*slash = '\0';
	rv = fproxy_split_authority(auth, "80", &host, &port);
	if (rv == 0)
		rv = fproxy_dial(host, port, &u);
	if (rv != 0) {
		free(path);
		fproxy_dial_failed(fd, rv);
		return;
	}
	out = xmalloc(cap);
	n = (size_t)snprintf(out, cap, "%s %s HTTP/1.1\r\n", method, path);
	free(path);
	line = strstr(head, "\r\n") + 2;
	for (; (eol = strstr(line, "\r\n")) != NULL && eol != line;
	     line = eol + 2) {
		len = (size_t)(eol - line);
		if (fproxy_hdr_is(line, len, "proxy-authorization") ||
		    fproxy_hdr_is(line, len, "proxy-connection") ||
		    fproxy_hdr_is(line, len, "connection") ||
		    fproxy_hdr_is(line, len, "keep-alive"))
			continue;
		if (n + len + 2 >= cap)
			break; /* cannot happen: out is larger than the head */
		memcpy(out + n, line, len + 2);
		n += len + 2;
	}
	n += (size_t)snprintf(out + n, cap - n, "Connection: close\r\n\r\n");
	rv = fproxy_write_all(u, out, n);
	if (rv == 0 && restlen > 0)
		rv = fproxy_write_all(u, rest, restlen);
	free(out);
	if (rv == 0)
		fproxy_relay(fd, u, true);
	close(u);
}

static void
fproxy_http(int fd)
{
	char  *buf = xmalloc(FPROXY_HDR_MAX + 1);
	char   method[17], *target, *sp1, *sp2, *eol;
	size_t hlen, len, mlen;
	bool   connect_;

	if (fproxy_read_head(fd, buf, FPROXY_HDR_MAX + 1, &hlen, &len) != 0) {
		fproxy_http_reply(fd, "431 Request Header Fields Too Large", "",
		    "text/plain", "bad or oversized request head\n");
		goto out;
	}
	eol = strstr(buf, "\r\n");
	*eol = '\0';
	sp1 = strchr(buf, ' ');
	sp2 = sp1 != NULL ? strchr(sp1 + 1, ' ') : NULL;
	mlen = sp1 != NULL ? (size_t)(sp1 - buf) : 0;
	if (sp2 == NULL || mlen == 0 || mlen >= sizeof(method) ||
	    strncmp(sp2 + 1, "HTTP/1.", 7) != 0) {
		fproxy_http_reply(
		    fd, "400 Bad Request", "", "text/plain", "bad request\n");
		goto out;
	}
	memcpy(method, buf, mlen);
	method[mlen] = '\0';
	*sp2 = '\0';
	target = xstrdup(sp1 + 1);
	/* The head stays whole for the header scans below. */
	*sp2 = ' ';
	*eol = '\r';
	if (target[0] == '/') {
		if (strcmp(method, "GET") == 0 &&
		    strcmp(target, "/_proxy/stats") == 0)
			fproxy_stats(fd);
		else
			fproxy_http_reply(fd, "404 Not Found", "", "text/plain",
			    "not found\n");
		free(target);
		goto out;
	}
	connect_ = strcmp(method, "CONNECT") == 0;
	if (!connect_ && strncasecmp(target, "http://", 7) != 0) {
		fproxy_count(FPROXY_K_HTTP);
		fproxy_http_reply(fd, "400 Bad Request", "", "text/plain",
		    "only http:// absolute URIs and CONNECT\n");
		free(target);
		goto out;
	}
	fproxy_count(connect_ ? FPROXY_K_CONNECT : FPROXY_K_HTTP);
	if (!fproxy_http_authed(buf)) {
		fproxy_deny_407(fd);
	} else if (connect_) {
		log_info("fproxy.connect");
		fproxy_connect(fd, target);
	} else {
		log_info("fproxy.forward");
		fproxy_forward(
		    fd, method, target, buf, hlen, buf + hlen, len - hlen);
	}
	free(target);
out:
	free(buf);
}

/* ---- SOCKS5 ------------------------------------------------------------ */

static void
fproxy_socks_reply(int fd, uint8_t code)
{
	uint8_t r[10] = {5, code, 0, 1, 0, 0, 0, 0, 0, 0};

	(void)fproxy_write_all(fd, r, sizeof(r));
}

/* The method negotiation and RFC 1929 sub-negotiation; 0 when through. */
static int
fproxy_socks_auth(int fd)
{
	uint8_t h[2], m[255], ulen, plen;
	char    u[256], p[256];
	bool    has_none = false, has_pw = false, ok;
	int     i;

	if (fproxy_read_full(fd, h, 2) != 0 || h[0] != 5 || h[1] == 0 ||
	    fproxy_read_full(fd, m, h[1]) != 0)
		return -ERR_PROTO;
	for (i = 0; i < h[1]; i++) {
		has_none = has_none || m[i] == 0;
		has_pw = has_pw || m[i] == 2;
	}
	if (F.user == NULL) {
		if (!has_none) {
			(void)fproxy_write_all(fd, "\x05\xff", 2);
			return -ERR_AUTH;
		}
		return fproxy_write_all(fd, "\x05\x00", 2);
	}
	if (!has_pw) {
		atomic_fetch_add(&F.auth_failures, 1);
		log_info("fproxy.auth_failed");
		(void)fproxy_write_all(fd, "\x05\xff", 2);
		return -ERR_AUTH;
	}
	if (fproxy_write_all(fd, "\x05\x02", 2) != 0 ||
	    fproxy_read_full(fd, h, 2) != 0 || h[0] != 1)
		return -ERR_PROTO;
	ulen = h[1];
	if (fproxy_read_full(fd, u, ulen) != 0 ||
	    fproxy_read_full(fd, &plen, 1) != 0 ||
	    fproxy_read_full(fd, p, plen) != 0)
		return -ERR_PROTO;
	u[ulen] = '\0';
	p[plen] = '\0';
	/* Both compared, so the time does not tell which one was wrong. */
	ok = crypto_ct_streq(u, F.user);
	ok = crypto_ct_streq(p, F.pass) && ok;
	explicit_bzero(p, sizeof(p));
	if (!ok) {
		atomic_fetch_add(&F.auth_failures, 1);
		log_info("fproxy.auth_failed");
		(void)fproxy_write_all(fd, "\x01\x01", 2);
		return -ERR_AUTH;
	}
	return fproxy_write_all(fd, "\x01\x00", 2);
}

static void
fproxy_socks(int fd)
{
	uint8_t h[4], a[256], pb[2], n;
	char    host[INET6_ADDRSTRLEN > 256 ? INET6_ADDRSTRLEN : 256];
	char    port[8];
	int     u, rv;

	fproxy_count(FPROXY_K_SOCKS5);
	if (fproxy_socks_auth(fd) != 0)
		return;
	if (fproxy_read_full(fd, h, 4) != 0 || h[0] != 5)
		return;
	switch (h[3]) {
	case 1:
		if (fproxy_read_full(fd, a, 4) != 0)
			return;
		inet_ntop(AF_INET, a, host, sizeof(host));
		break;
	case 3:
		if (fproxy_read_full(fd, &n, 1) != 0 || n == 0 ||
		    fproxy_read_full(fd, host, n) != 0)
			return;
		host[n] = '\0';
		break;
	case 4:
		if (fproxy_read_full(fd, a, 16) != 0)
			return;
		inet_ntop(AF_INET6, a, host, sizeof(host));
		break;
	default:
		fproxy_socks_reply(fd, 8);
		return;
	}
	if (fproxy_read_full(fd, pb, 2) != 0)
		return;
	if (h[1] != 1) {
		fproxy_socks_reply(fd, 7);
		return;
	}
	snprintf(port, sizeof(port), "%u", (unsigned)(pb[0] << 8 | pb[1]));
	rv = fproxy_dial(host, port, &u);
	if (rv != 0) {
		fproxy_socks_reply(fd,
		    rv == -ERR_FORBIDDEN      ? 2
		        : rv == -ERR_NOTFOUND ? 4
		                              : 5);
		return;
	}
	log_info("fproxy.socks_connect");
	fproxy_socks_reply(fd, 0);
	fproxy_relay(fd, u, false);
	close(u);
}

/* ---- connections ------------------------------------------------------- */

static void *
fproxy_conn_main(void *arg)
{
	int     fd = (int)(intptr_t)arg;
	uint8_t first;
	ssize_t n;

	fproxy_timeouts(fd);
	do
		n = recv(fd, &first, 1, MSG_PEEK);
	while (n < 0 && errno == EINTR);
	if (n == 1 && first == 5)
		fproxy_socks(fd);
	else if (n == 1)
		fproxy_http(fd);
	close(fd);
	atomic_fetch_sub(&F.active, 1);
	return NULL;
}

static void *
fproxy_accept_main(void *arg)
{
	pthread_attr_t attr;
	pthread_t      t;
	int            fd;

	(void)arg;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	for (;;) {
		fd = accept4(F.lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE) {
				poll(NULL, 0, 10); /* out of descriptors */
				continue;
			}
			break; /* the listener was shut down */
		}
		if (atomic_fetch_add(&F.active, 1) >= FPROXY_CONNS_MAX ||
		    pthread_create(&t, &attr, fproxy_conn_main,
		        (void *)(intptr_t)fd) != 0) {
			atomic_fetch_sub(&F.active, 1);
			close(fd);
		}
	}
	pthread_attr_destroy(&attr);
	return NULL;
}

/* ---- main -------------------------------------------------------------- */

static int
fproxy_listen(const char *addr, char *shown, size_t cap)
{
	struct sockaddr_in sa = {0};
	socklen_t          sl = sizeof(sa);
	char               host[64];
	const char        *colon = strrchr(addr, ':');
	long long          port;
	int                fd, one = 1;

	if (colon == NULL || (size_t)(colon - addr) >= sizeof(host))
		return -ERR_INVAL;
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = '\0';
	port = strtoll(colon + 1, NULL, 10);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	if (port < 0 || port > 65535 ||
	    inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return -ERR_INVAL;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -ERR_IO;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(fd, 128) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) {
		close(fd);
		return -ERR_IO;
	}
	snprintf(shown, cap, "%s:%u", host, (unsigned)ntohs(sa.sin_port));
	F.lfd = fd;
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"listen", required_argument, NULL, 'l'},
	    {"user", required_argument, NULL, 'u'},
	    {"pass", required_argument, NULL, 'p'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *listen_ = NULL;
	char        shown[96], cred[2 * FPROXY_CRED_MAX + 2];
	pthread_t   acc;
	int         c, signo;

	sig_init();
	log_init("fakeproxy", LOG_INFO);
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			listen_ = optarg;
			break;
		case 'u':
			F.user = optarg;
			break;
		case 'p':
			F.pass = optarg;
			break;
		case 'h':
			fproxy_usage(0);
			break;
		default:
			fproxy_usage(2);
		}
	}
	if (listen_ == NULL || optind != argc ||
	    (F.user == NULL) != (F.pass == NULL))
		fproxy_usage(2);
	if (F.user != NULL) {
		if (strlen(F.user) > FPROXY_CRED_MAX ||
		    strlen(F.pass) > FPROXY_CRED_MAX ||
		    strchr(F.user, ':') != NULL) {
			fprintf(stderr, "fakeproxy: bad --user/--pass\n");
			return 2;
		}
		snprintf(cred, sizeof(cred), "%s:%s", F.user, F.pass);
		if (crypto_b64_encode(
		        cred, strlen(cred), F.basic, sizeof(F.basic)) != 0)
			BUG("basic buffer too small");
		explicit_bzero(cred, sizeof(cred));
	}
	if (fproxy_listen(listen_, shown, sizeof(shown)) != 0) {
		fprintf(stderr, "fakeproxy: cannot listen on %s\n", listen_);
		return 1;
	}
	if (pthread_create(&acc, NULL, fproxy_accept_main, NULL) != 0) {
		fprintf(stderr, "fakeproxy: cannot start\n");
		return 1;
	}
	printf("listening %s\n", shown);
	fflush(stdout);
	if (sig_wait(&signo) != 0)
		return 1;
	shutdown(F.lfd, SHUT_RDWR);
	pthread_join(acc, NULL);
	close(F.lfd);
	log_info("fproxy.stopped",
	    LOG_I64("connections", atomic_load(&F.connections)),
	    LOG_I64("auth_failures", atomic_load(&F.auth_failures)));
	return 0;
}
