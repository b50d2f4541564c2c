/*
 * loadgen.c: an HTTP/1.1 load generator for the benchmark suite, cheap
 * enough to share two cores with the system it measures.
 *
 *   loadgen --url http://HOST:PORT/PATH [--method M] [--body S |
 *           --body-file F] [-H 'Name: value']... --mode open|closed|hold
 *           [--rate R] [--conns C] [--duration S] [--warmup S] [--stream]
 *           [--streams N] [--ramp R] [--timeout S] [--json]
 *
 * Three modes:
 *  - open: request i is due at t0 + i/R.  It goes to an idle keep-alive
 *    connection, else to a new one (at most --conns), else waits in a FIFO
 *    queue.  Latency runs from the due time to the last byte, so a server
 *    (or this tool) falling behind shows up in the figures instead of
 *    silently slowing the schedule (coordinated omission).
 *  - closed: --conns connections each send the next request as soon as
 *    the previous answer is complete; latency runs from the send.
 *  - hold: --streams streaming requests, each on its own connection,
 *    opened at --ramp per second and kept open.  "READY n" goes to stderr
 *    once every stream has its headers and one SSE event, or is known
 *    never to get them, or --timeout seconds after the ramp ended; the
 *    streams are then held --duration seconds more and closed.
 *
 * Requests due (open) or sent (closed) during the first --warmup seconds
 * are not recorded; hold records everything.  In the result:
 *  - requests: recorded requests issued; completed: whole responses, any
 *    status; rps: completed / --duration (0 in hold);
 *  - errors: non-2xx response heads, also counted per code in "status";
 *    conn_errors: refused, reset or closed connections and malformed or
 *    oversized responses; timeouts: not answered within --timeout (hold:
 *    streams still open but not ready at READY).  In open and closed
 *    mode requests = completed + conn_errors + timeouts;
 *  - lat_us, ttfb_us, events_*, event_gap_us: 2xx responses only.  Hold
 *    reports the time to the first event as lat_us, and events_min/max
 *    over the streams that became ready.
 * A keep-alive socket the server closed before answering (idle timeout
 * racing the send) is retried once on a fresh one, keeping the start time.
 * Exit status: 0 with a result, even when every request failed; 1 when
 * the host does not resolve; 2 on bad options.
 *
 * One thread, one epoll set (edge-triggered), woken with a nanosecond
 * timeout at the next instant anything is due (epoll_pwait2, or a timerfd
 * on old kernels), so the schedule does not drift and the tool never
 * spins.  Every connection is a fixed slot allocated at start; the
 * response parser keeps only a short line buffer per connection and reads
 * into one shared buffer, so nothing is allocated per request.
 * The whole tool is one file because the Makefile builds one binary per
 * tests/bench/<x>.c.
 */
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "compat.h"

#define LG_NS         1000000000LL
#define LG_HEAD_MAX   (64 * 1024)        /* response status line + headers */
#define LG_LINE_MAX   256                /* kept prefix of one head line */
#define LG_CHUNK_LINE 4096               /* one chunk-size line */
#define LG_BODY_MAX   (16 * 1024 * 1024) /* request body */
#define LG_HDRS_MAX   64                 /* -H options */
#define LG_HDR_LEN    8192               /* one -H option */
#define LG_RBUF       (64 * 1024)
#define LG_EVENTS     256
#define LG_BACKOFF_NS (10 * 1000000LL) /* closed mode, after a failure */
#define LG_CONNS_MAX  1000000
#define LG_STATUS_N   600

/*
 * Log-linear histogram in microseconds: exact below 1024 us, then 128
 * buckets per power of two (relative error under 0.8%, reported at the
 * bucket middle), up to 2^26 us (67 s); larger values land in the top.
 */
#define LG_HIST_LIN  1024
#define LG_HIST_SUB  128
#define LG_HIST_TOP  26
#define LG_HIST_N    (LG_HIST_LIN + (LG_HIST_TOP - 10) * LG_HIST_SUB)
#define LG_SLOT_TIMR UINT32_MAX /* epoll tag of the timerfd */

struct lg_hist {
	uint64_t n, sum, max;
	uint64_t b[LG_HIST_N];
};

enum lg_mode { LG_OPEN, LG_CLOSED, LG_HOLD };

struct lg_opt {
	enum lg_mode mode;
	const char  *url, *method, *body, *body_file;
	const char  *hdrs[LG_HDRS_MAX];
	size_t       nhdrs;
	double       rate, duration, warmup, ramp, timeout;
	long         conns, streams;
	bool         stream, json;
};

enum lg_cs {
	LG_CS_FREE,       /* no socket */
	LG_CS_CONNECTING, /* connect in progress, request pending */
	LG_CS_SENDING,    /* writing the request */
	LG_CS_READING,    /* request written, reading the answer */
	LG_CS_IDLE,       /* keep-alive, nothing in flight (open mode) */
	LG_CS_BACKOFF,    /* closed mode: waits before reconnecting */
	LG_CS_DEAD,       /* failed synchronously; failed at the next tick */
};

enum lg_ps {
	LG_PS_STATUS,
	LG_PS_HEAD,
	LG_PS_BODY_LEN,
	LG_PS_BODY_EOF,
	LG_PS_CHUNK_SIZE,
	LG_PS_CHUNK_DATA,
	LG_PS_CHUNK_END,
	LG_PS_TRAILER,
};

enum lg_fail { LG_F_CONN, LG_F_TIMEOUT };

enum lg_rel { LG_R_REUSE, LG_R_CLOSE, LG_R_FAILED };

struct lg_list;

/* One connection slot; the request in flight lives in it too. */
struct lg_conn {
	int             fd;
	uint32_t        slot, gen; /* gen tells stale epoll events apart */
	enum lg_cs      state;
	enum lg_ps      ps;
	struct lg_list *list; /* the list c is on, or NULL */
	struct lg_conn *prev, *next;
	int64_t         deadline;  /* timeout, backoff end or now (DEAD) */
	int64_t         t_start;   /* due time (open) or send time */
	int64_t         t_first;   /* first body byte, 0 before */
	int64_t         t_last_ev; /* last SSE event seen */
	uint64_t        events;
	uint64_t        remain; /* bytes left in the body or chunk */
	size_t          sent;   /* request bytes written */
	uint32_t        head_len, aux_len, uses;
	int             status;
	uint16_t        line_len;
	bool            line_cut, chunked, has_len, close_after, http10;
	bool            recorded, sse_nl, ready;
	char            line[LG_LINE_MAX];
};

struct lg_list {
	struct lg_conn *head, *tail;
	size_t          n;
};

struct lg {
	struct lg_opt           o;
	struct sockaddr_storage addr;
	socklen_t               addrlen;
	char                   *req;
	size_t                  req_len;
	bool                    head_req;
	int                     ep, tfd;
	int64_t                 armed;
	struct lg_conn         *conns;
	size_t                  nconns;
	struct lg_list          timers, idle, free;
	int64_t                 t0, t_warm, t_end;
	uint64_t                next_i, n_warm, n_total, q_first, q_len;
	double                  ns_per_req;
	/* figures */
	uint64_t       requests, completed, errors, conn_errors, timeouts;
	uint64_t       status[LG_STATUS_N];
	struct lg_hist lat, ttfb, gap;
	uint64_t       ev_min, ev_max, ev_resp;
	/* hold */
	uint64_t streams, ready, unready_dead, events, alive_end;
	int64_t  t_ready_dl, t_hold_end;
	bool     ready_printed;
	char     rbuf[LG_RBUF];
};

static int64_t
lg_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * LG_NS + ts.tv_nsec;
}

/* --- histogram ------------------------------------------------------- */

static size_t
lg_hist_idx(uint64_t v)
{
	unsigned e;

	if (v < LG_HIST_LIN)
		return (size_t)v;
	if (v >= (1ULL << LG_HIST_TOP))
		v = (1ULL << LG_HIST_TOP) - 1;
	e = 63u - (unsigned)__builtin_clzll(v);
	return LG_HIST_LIN + (e - 10) * LG_HIST_SUB +
	    ((v >> (e - 7)) & (LG_HIST_SUB - 1));
}

/* The value reported for bucket i: its middle. */
static uint64_t
lg_hist_val(size_t i)
{
	size_t   k;
	unsigned e;

	if (i < LG_HIST_LIN)
		return i;
	k = i - LG_HIST_LIN;
	e = 10 + (unsigned)(k / LG_HIST_SUB);
	return ((LG_HIST_SUB + (k % LG_HIST_SUB)) << (e - 7)) +
	    (1ULL << (e - 8));
}

static void
lg_hist_add_ns(struct lg_hist *h, int64_t ns)
{
	uint64_t us = ns > 0 ? (uint64_t)ns / 1000 : 0;

	h->b[lg_hist_idx(us)]++;
	h->n++;
	h->sum += us;
	if (us > h->max)
		h->max = us;
}

/* The p-th percentile (0 < p <= 100) in us; 0 when empty. */
static uint64_t
lg_hist_pct(const struct lg_hist *h, double p)
{
	uint64_t rank, acc = 0, v;
	size_t   i;

	if (h->n == 0)
		return 0;
	rank = (uint64_t)ceil(p / 100.0 * (double)h->n);
	if (rank < 1)
		rank = 1;
	for (i = 0; i < LG_HIST_N; i++) {
		acc += h->b[i];
		if (acc >= rank) {
			v = lg_hist_val(i);
			return v < h->max ? v : h->max;
		}
	}
	return h->max;
}

/* --- lists ----------------------------------------------------------- */

static void
lg_list_del(struct lg_conn *c)
{
	struct lg_list *l = c->list;

	if (l == NULL)
		return;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		l->head = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	else
		l->tail = c->prev;
	c->prev = c->next = NULL;
	c->list = NULL;
	l->n--;
}

static void
lg_list_link(struct lg_list *l, struct lg_conn *after, struct lg_conn *c)
{
	c->list = l;
	c->prev = after;
	c->next = after != NULL ? after->next : l->head;
	if (c->next != NULL)
		c->next->prev = c;
	else
		l->tail = c;
	if (after != NULL)
		after->next = c;
	else
		l->head = c;
	l->n++;
}

static void
lg_list_push(struct lg_list *l, struct lg_conn *c)
{
	lg_list_del(c);
	lg_list_link(l, NULL, c);
}

static struct lg_conn *
lg_list_pop(struct lg_list *l)
{
	struct lg_conn *c = l->head;

	if (c != NULL)
		lg_list_del(c);
	return c;
}

/*
 * Inserts c by deadline.  Deadlines mostly arrive in order (same timeout,
 * increasing start), so the walk from the tail is short; "now" entries
 * go straight to the head.
 */
static void
lg_timer_add(struct lg *g, struct lg_conn *c)
{
	struct lg_conn *p = g->timers.tail;

	lg_list_del(c);
	if (g->timers.head != NULL && c->deadline < g->timers.head->deadline) {
		lg_list_link(&g->timers, NULL, c);
		return;
	}
	while (p != NULL && p->deadline > c->deadline)
		p = p->prev;
	lg_list_link(&g->timers, p, c);
}

/* --- connections ----------------------------------------------------- */

static void
lg_close_fd(struct lg_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->gen++;
	c->uses = 0;
}

/* Opens a non-blocking socket and starts connecting; -errno on failure. */
static int
lg_open(struct lg *g, struct lg_conn *c)
{
	struct epoll_event ev = {0};
	int                one = 1, rv;

	c->fd = socket(
	    g->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -errno;
	c->gen++;
	(void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
	ev.data.u64 = ((uint64_t)c->slot << 32) | c->gen;
	if (epoll_ctl(g->ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
		rv = -errno;
		lg_close_fd(c);
		return rv;
	}
	rv = connect(c->fd, (struct sockaddr *)&g->addr, g->addrlen);
	if (rv != 0 && errno != EINPROGRESS) {
		rv = -errno;
		lg_close_fd(c);
		return rv;
	}
	c->state = rv == 0 ? LG_CS_SENDING : LG_CS_CONNECTING;
	return 0;
}

/* Writes what the socket takes; 0 (done or would block) or -1. */
static int
lg_send(struct lg *g, struct lg_conn *c)
{
	ssize_t n;

	while (c->sent < g->req_len) {
		n = send(c->fd, g->req + c->sent, g->req_len - c->sent,
		    MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -1;
		}
		c->sent += (size_t)n;
	}
	if (c->state == LG_CS_SENDING)
		c->state = LG_CS_READING;
	return 0;
}

static void lg_release(
    struct lg *g, struct lg_conn *c, enum lg_rel how, int64_t now);

/*
 * Starts a request on c: on its keep-alive socket, or a new one.  Never
 * fails synchronously: a socket that cannot be opened or written marks c
 * DEAD, and the next tick fails it, so failures cannot recurse.
 */
static void
lg_start(struct lg *g, struct lg_conn *c, int64_t t_start, bool recorded,
    int64_t now)
{
	int rv = 0;

	c->t_start = t_start;
	c->recorded = recorded;
	c->ps = LG_PS_STATUS;
	c->t_first = c->t_last_ev = 0;
	c->events = c->remain = 0;
	c->sent = 0;
	c->head_len = c->aux_len = 0;
	c->status = 0;
	c->line_len = 0;
	c->line_cut = c->chunked = c->has_len = false;
	c->close_after = c->http10 = c->sse_nl = c->ready = false;
	if (c->fd < 0)
		rv = lg_open(g, c);
	else
		c->state = LG_CS_SENDING;
	if (rv == 0) {
		c->uses++;
		if (c->state == LG_CS_SENDING)
			rv = lg_send(g, c);
	}
	if (g->o.mode != LG_HOLD) {
		c->deadline = t_start + (int64_t)(g->o.timeout * (double)LG_NS);
		lg_timer_add(g, c);
	}
	if (rv != 0) {
		c->state = LG_CS_DEAD;
		c->deadline = now;
		lg_timer_add(g, c);
	}
}

/* --- figures --------------------------------------------------------- */

/* The response head is complete. */
static void
lg_on_head(struct lg *g, struct lg_conn *c)
{
	if (!c->recorded)
		return;
	g->status[c->status]++;
	if (c->status < 200 || c->status > 299)
		g->errors++;
}

static bool
lg_ok(const struct lg_conn *c)
{
	return c->status >= 200 && c->status <= 299;
}

static void
lg_on_event(struct lg *g, struct lg_conn *c, int64_t now)
{
	c->events++;
	c->t_last_ev = now;
	g->events++;
	if (g->o.mode == LG_HOLD && !c->ready && lg_ok(c)) {
		c->ready = true;
		g->ready++;
		lg_hist_add_ns(&g->lat, now - c->t_start);
	}
}

/*
 * Body bytes: the first one stamps TTFB; with --stream (always in hold)
 * event boundaries are counted.  An event ends at an empty line; '\r' is
 * skipped so "\n\n" and "\r\n\r\n" both count, split anywhere.
 */
static void
lg_body(struct lg *g, struct lg_conn *c, const char *p, size_t n, int64_t now)
{
	const char *end = p + n, *q;

	if (n == 0)
		return;
	if (c->t_first == 0) {
		c->t_first = now;
		if (c->recorded && lg_ok(c) &&
		    (g->o.stream || g->o.mode == LG_HOLD))
			lg_hist_add_ns(&g->ttfb, now - c->t_start);
	}
	if (!g->o.stream && g->o.mode != LG_HOLD)
		return;
	while (p < end) {
		if (c->sse_nl) {
			while (p < end && *p == '\r')
				p++;
			if (p == end)
				break;
			c->sse_nl = false;
			if (*p == '\n') {
				lg_on_event(g, c, now);
				p++;
				continue;
			}
		}
		q = memchr(p, '\n', (size_t)(end - p));
		if (q == NULL)
			break;
		c->sse_nl = true;
		p = q + 1;
	}
}

/* A whole response is in: latency, SSE figures. */
static void
lg_record(struct lg *g, struct lg_conn *c, int64_t now)
{
	if (!c->recorded)
		return;
	g->completed++;
	if (!lg_ok(c) || g->o.mode == LG_HOLD)
		return;
	lg_hist_add_ns(&g->lat, now - c->t_start);
	if (!g->o.stream)
		return;
	if (g->ev_resp == 0 || c->events < g->ev_min)
		g->ev_min = c->events;
	if (c->events > g->ev_max)
		g->ev_max = c->events;
	g->ev_resp++;
	if (c->events >= 2)
		lg_hist_add_ns(&g->gap,
		    (c->t_last_ev - c->t_first) / (int64_t)(c->events - 1));
}

/* --- response parser ------------------------------------------------- */

/* s (NUL-terminated, trimmed) holds "chunked" as its last coding. */
static bool
lg_is_chunked(const char *s, size_t len)
{
	return len >= 7 && strcasecmp(s + len - 7, "chunked") == 0 &&
	    (len == 7 || s[len - 8] == ' ' || s[len - 8] == ',' ||
	        s[len - 8] == '\t');
}

/* One header line (NUL-terminated, CRLF stripped); 0 or -1. */
static int
lg_header(struct lg_conn *c)
{
	char    *name = c->line, *v, *colon, *end;
	size_t   nlen, vlen;
	uint64_t n = 0;

	colon = memchr(c->line, ':', c->line_len);
	if (colon == NULL)
		return c->line_cut ? 0 : -1; /* a cut line: a long name */
	nlen = (size_t)(colon - name);
	while (nlen > 0 && (name[nlen - 1] == ' ' || name[nlen - 1] == '\t'))
		nlen--;
	v = colon + 1;
	while (*v == ' ' || *v == '\t')
		v++;
	vlen = strlen(v);
	while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
		v[--vlen] = '\0';
#define LG_NAME_IS(s) (nlen == strlen(s) && strncasecmp(name, s, nlen) == 0)
	if (LG_NAME_IS("content-length")) {
		if (c->line_cut || vlen == 0 || vlen > 15)
			return -1;
		for (end = v; *end != '\0'; end++) {
			if (*end < '0' || *end > '9')
				return -1;
			n = n * 10 + (uint64_t)(*end - '0');
		}
		if (c->has_len && c->remain != n)
			return -1;
		c->has_len = true;
		c->remain = n;
	} else if (LG_NAME_IS("transfer-encoding")) {
		if (c->line_cut)
			return -1;
		c->chunked = lg_is_chunked(v, vlen);
		if (!c->chunked)
			return -1; /* gzip alone and the like: not supported */
	} else if (LG_NAME_IS("connection")) {
		if (c->line_cut)
			return -1;
		if (strcasestr(v, "close") != NULL)
			c->close_after = true;
		else if (c->http10 && strcasestr(v, "keep-alive") != NULL)
			c->close_after = false;
	}
#undef LG_NAME_IS
	return 0;
}

/* "HTTP/1.x NNN ..."; 0 or -1. */
static int
lg_status_line(struct lg_conn *c)
{
	const char *s = c->line;

	if (c->line_len < 12 || strncmp(s, "HTTP/1.", 7) != 0 ||
	    (s[7] != '0' && s[7] != '1') || s[8] != ' ' || s[9] < '1' ||
	    s[9] > '5' || s[10] < '0' || s[10] > '9' || s[11] < '0' ||
	    s[11] > '9' || (c->line_len > 12 && s[12] != ' '))
		return -1;
	c->status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
	c->http10 = s[7] == '0';
	c->close_after = c->http10;
	c->chunked = c->has_len = false;
	c->remain = 0;
	return 0;
}

/* The blank line after the headers: picks the body framing. 0, 1 or -1. */
static int
lg_head_end(struct lg *g, struct lg_conn *c)
{
	if (c->status >= 100 && c->status <= 199) {
		if (c->status == 101)
			return -1;    /* no upgrades here */
		c->ps = LG_PS_STATUS; /* an interim answer; the real one next */
		return 0;
	}
	lg_on_head(g, c);
	if (g->head_req || c->status == 204 || c->status == 304)
		return 1;
	if (c->chunked) {
		c->ps = LG_PS_CHUNK_SIZE;
		c->aux_len = 0;
		return 0;
	}
	if (c->has_len) {
		c->ps = LG_PS_BODY_LEN;
		return c->remain == 0 ? 1 : 0;
	}
	c->ps = LG_PS_BODY_EOF;
	c->close_after = true;
	return 0;
}

/* A chunk-size line: hex digits, then an optional extension. */
static int
lg_chunk_size(struct lg_conn *c)
{
	uint64_t n = 0;
	size_t   i;
	int      d;

	for (i = 0; i < c->line_len; i++) {
		char ch = c->line[i];

		if (ch >= '0' && ch <= '9')
			d = ch - '0';
		else if (ch >= 'a' && ch <= 'f')
			d = ch - 'a' + 10;
		else if (ch >= 'A' && ch <= 'F')
			d = ch - 'A' + 10;
		else
			break;
		if (i >= 12)
			return -1; /* over 2^48 bytes: nonsense */
		n = n * 16 + (uint64_t)d;
	}
	if (i == 0 ||
	    (i < c->line_len && c->line[i] != ';' && c->line[i] != ' ' &&
	        c->line[i] != '\t'))
		return -1;
	c->remain = n;
	c->ps = n == 0 ? LG_PS_TRAILER : LG_PS_CHUNK_DATA;
	return 0;
}

/* A complete line in c->line for the current state; 0, 1 (done) or -1. */
static int
lg_line(struct lg *g, struct lg_conn *c)
{
	if (c->line_len > 0 && c->line[c->line_len - 1] == '\r' && !c->line_cut)
		c->line_len--;
	c->line[c->line_len] = '\0';
	switch (c->ps) {
	case LG_PS_STATUS:
		if (lg_status_line(c) != 0)
			return -1;
		c->ps = LG_PS_HEAD;
		return 0;
	case LG_PS_HEAD:
		if (c->line_len == 0 && !c->line_cut)
			return lg_head_end(g, c);
		return lg_header(c);
	case LG_PS_CHUNK_SIZE:
		return lg_chunk_size(c);
	case LG_PS_CHUNK_END:
		if (c->line_len != 0 || c->line_cut)
			return -1;
		c->ps = LG_PS_CHUNK_SIZE;
		c->aux_len = 0;
		return 0;
	case LG_PS_TRAILER:
		return c->line_len == 0 && !c->line_cut ? 1 : 0;
	default:
		BUG("lg_line: state %d", (int)c->ps);
	}
}

/*
 * Feeds n bytes.  Returns 0 (more wanted), 1 (response complete; *used
 * bytes consumed) or -1 (malformed or over a bound).
 */
static int
lg_parse(struct lg *g, struct lg_conn *c, const char *p, size_t n, int64_t now,
    size_t *used)
{
	const char *start = p, *end = p + n, *q;
	size_t      take, room;
	int         rv;

	while (p < end) {
		switch (c->ps) {
		case LG_PS_BODY_LEN:
		case LG_PS_CHUNK_DATA:
			take = (size_t)(end - p);
			if (take > c->remain)
				take = (size_t)c->remain;
			lg_body(g, c, p, take, now);
			c->remain -= take;
			p += take;
			if (c->remain > 0)
				break;
			if (c->ps == LG_PS_BODY_LEN) {
				*used = (size_t)(p - start);
				return 1;
			}
			c->ps = LG_PS_CHUNK_END;
			break;
		case LG_PS_BODY_EOF:
			lg_body(g, c, p, (size_t)(end - p), now);
			p = end;
			break;
		default:
			/* the line states */
			q = memchr(p, '\n', (size_t)(end - p));
			take = (size_t)((q != NULL ? q : end) - p);
			if (c->ps == LG_PS_STATUS || c->ps == LG_PS_HEAD ||
			    c->ps == LG_PS_TRAILER) {
				c->head_len += (uint32_t)(take + (q != NULL));
				if (c->head_len > LG_HEAD_MAX)
					return -1;
			} else {
				c->aux_len += (uint32_t)(take + (q != NULL));
				if (c->aux_len > LG_CHUNK_LINE)
					return -1;
			}
			room = LG_LINE_MAX - 1 - c->line_len;
			if (take > room) {
				c->line_cut = true;
				take = room;
			}
			memcpy(c->line + c->line_len, p, take);
			c->line_len += (uint16_t)take;
			if (q == NULL) {
				p = end;
				break;
			}
			p = q + 1;
			rv = lg_line(g, c);
			c->line_len = 0;
			c->line_cut = false;
			if (rv < 0)
				return -1;
			if (rv > 0) {
				*used = (size_t)(p - start);
				return 1;
			}
			break;
		}
	}
	*used = n;
	return 0;
}

/* --- request lifecycle ----------------------------------------------- */

static void
lg_done(struct lg *g, struct lg_conn *c, bool force_close, int64_t now)
{
	lg_list_del(c);
	lg_record(g, c, now);
	if (!c->ready && g->o.mode == LG_HOLD)
		g->unready_dead++;
	lg_release(g, c,
	    force_close || c->close_after || c->sent < g->req_len ? LG_R_CLOSE
	                                                          : LG_R_REUSE,
	    now);
}

/*
 * The request on c failed.  A keep-alive socket that the server closed
 * before a single response byte (an idle timeout racing our send) gets
 * one retry on a fresh socket, keeping the original start time.
 */
static void
lg_fail(struct lg *g, struct lg_conn *c, enum lg_fail why, int64_t now)
{
	bool retry = why == LG_F_CONN && c->uses > 1 && c->head_len == 0 &&
	    g->o.mode != LG_HOLD;

	lg_close_fd(c);
	lg_list_del(c);
	if (retry) {
		lg_start(g, c, c->t_start, c->recorded, now);
		return;
	}
	if (c->recorded) {
		if (why == LG_F_TIMEOUT)
			g->timeouts++;
		else
			g->conn_errors++;
	}
	if (!c->ready && g->o.mode == LG_HOLD)
		g->unready_dead++;
	lg_release(g, c, LG_R_FAILED, now);
}

static void
lg_eof(struct lg *g, struct lg_conn *c, int64_t now)
{
	if (c->ps == LG_PS_BODY_EOF)
		lg_done(g, c, true, now);
	else
		lg_fail(g, c, LG_F_CONN, now);
}

/* Reads until the socket is drained or the response is complete. */
static void
lg_read(struct lg *g, struct lg_conn *c, uint32_t ev, int64_t now)
{
	bool    hup = (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;
	ssize_t n;
	size_t  used;
	int     rv;

	for (;;) {
		n = read(c->fd, g->rbuf, sizeof(g->rbuf));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			lg_fail(g, c, LG_F_CONN, now);
			return;
		}
		if (n == 0) {
			lg_eof(g, c, now);
			return;
		}
		rv = lg_parse(g, c, g->rbuf, (size_t)n, now, &used);
		if (rv < 0) {
			lg_fail(g, c, LG_F_CONN, now);
			return;
		}
		if (rv > 0) {
			/* bytes past the answer: the socket is not reusable */
			lg_done(g, c, hup || used < (size_t)n, now);
			return;
		}
		/*
		 * A short read drained the socket; with edge triggering the
		 * next byte raises a new event.  After a hang-up no event
		 * follows, so read on to EOF.
		 */
		if ((size_t)n < sizeof(g->rbuf) && !hup)
			return;
	}
}

static void
lg_conn_event(struct lg *g, struct lg_conn *c, uint32_t ev, int64_t now)
{
	int       err = 0;
	socklen_t len = sizeof(err);

	if (c->state == LG_CS_IDLE) {
		/*
		 * The server closed (or spoke on) an idle socket.  A lone
		 * EPOLLOUT is only a late edge of the last exchange.
		 */
		if ((ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) == 0)
			return;
		lg_close_fd(c);
		lg_release(g, c, LG_R_CLOSE, now);
		return;
	}
	if (c->state == LG_CS_CONNECTING) {
		if ((ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0)
			return;
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 ||
		    err != 0) {
			lg_fail(g, c, LG_F_CONN, now);
			return;
		}
		c->state = LG_CS_SENDING;
	}
	if (c->state == LG_CS_SENDING && lg_send(g, c) != 0) {
		lg_fail(g, c, LG_F_CONN, now);
		return;
	}
	/* an answer may come before the whole request is written */
	if ((c->state == LG_CS_SENDING || c->state == LG_CS_READING) &&
	    (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0)
		lg_read(g, c, ev, now);
}

/* --- modes ----------------------------------------------------------- */

static int64_t
lg_due(const struct lg *g, uint64_t i)
{
	return g->t0 + (int64_t)((double)i * g->ns_per_req);
}

/* Open mode: queued requests go to idle sockets, then to new ones. */
static void
lg_open_pump(struct lg *g, int64_t now)
{
	struct lg_conn *c;

	while (g->q_len > 0) {
		c = lg_list_pop(&g->idle);
		if (c == NULL)
			c = lg_list_pop(&g->free);
		if (c == NULL)
			return;
		g->q_len--;
		g->q_first++;
		lg_start(g, c, lg_due(g, g->q_first - 1),
		    g->q_first - 1 >= g->n_warm, now);
	}
}

/*
 * The request on c is over (c is on no list): reuse the socket, close
 * it, or (closed mode, after a failure) back off before reconnecting.
 */
static void
lg_release(struct lg *g, struct lg_conn *c, enum lg_rel how, int64_t now)
{
	if (how != LG_R_REUSE)
		lg_close_fd(c);
	switch (g->o.mode) {
	case LG_OPEN:
		if (c->fd >= 0) {
			c->state = LG_CS_IDLE;
			lg_list_push(&g->idle, c);
		} else {
			c->state = LG_CS_FREE;
			lg_list_push(&g->free, c);
		}
		lg_open_pump(g, now);
		return;
	case LG_CLOSED:
		if (now >= g->t_end) {
			lg_close_fd(c);
			c->state = LG_CS_FREE;
			return;
		}
		if (how == LG_R_FAILED) {
			c->state = LG_CS_BACKOFF;
			c->deadline = now + LG_BACKOFF_NS;
			lg_timer_add(g, c);
			return;
		}
		g->requests += now >= g->t_warm;
		lg_start(g, c, now, now >= g->t_warm, now);
		return;
	case LG_HOLD:
		lg_close_fd(c);
		c->state = LG_CS_FREE;
		return;
	}
}

/* Fails what timed out, restarts what backed off. */
static void
lg_expire(struct lg *g, int64_t now)
{
	struct lg_conn *c;

	while (g->timers.head != NULL && g->timers.head->deadline <= now) {
		c = lg_list_pop(&g->timers);
		if (c->state == LG_CS_BACKOFF) {
			if (now >= g->t_end) {
				c->state = LG_CS_FREE;
				continue;
			}
			g->requests += now >= g->t_warm;
			lg_start(g, c, now, now >= g->t_warm, now);
		} else {
			lg_fail(g, c,
			    c->state == LG_CS_DEAD ? LG_F_CONN : LG_F_TIMEOUT,
			    now);
		}
	}
}

/* Open mode: sends what is due; true when the run is over. */
static bool
lg_open_tick(struct lg *g, int64_t now, int64_t *wake)
{
	struct lg_conn *c;
	int64_t         to = (int64_t)(g->o.timeout * (double)LG_NS);
	uint64_t        i;

	while (g->next_i < g->n_total && lg_due(g, g->next_i) <= now) {
		i = g->next_i++;
		g->requests += i >= g->n_warm;
		if (g->q_len == 0) {
			c = lg_list_pop(&g->idle);
			if (c == NULL)
				c = lg_list_pop(&g->free);
			if (c != NULL) {
				lg_start(
				    g, c, lg_due(g, i), i >= g->n_warm, now);
				continue;
			}
			g->q_first = i;
		}
		g->q_len++;
	}
	/* queued requests time out like sent ones */
	while (g->q_len > 0 && lg_due(g, g->q_first) + to <= now) {
		g->timeouts += g->q_first >= g->n_warm;
		g->q_first++;
		g->q_len--;
	}
	if (g->next_i < g->n_total && lg_due(g, g->next_i) < *wake)
		*wake = lg_due(g, g->next_i);
	if (g->q_len > 0 && lg_due(g, g->q_first) + to < *wake)
		*wake = lg_due(g, g->q_first) + to;
	return g->next_i == g->n_total && g->q_len == 0 && g->timers.n == 0;
}

static bool
lg_closed_tick(struct lg *g, int64_t now)
{
	size_t i;

	if (g->next_i == 0) {
		g->next_i = 1;
		for (i = 0; i < g->nconns; i++) {
			g->requests += now >= g->t_warm;
			lg_start(g, &g->conns[i], now, now >= g->t_warm, now);
		}
	}
	return now >= g->t_end && g->timers.n == 0;
}

static void
lg_hold_ready(struct lg *g, int64_t now)
{
	struct lg_conn *c;
	size_t          i;

	for (i = 0; i < g->nconns; i++) {
		c = &g->conns[i];
		if (c->fd >= 0 && !c->ready)
			g->timeouts++; /* not ready in time, still open */
	}
	fprintf(stderr, "READY %" PRIu64 "\n", g->ready);
	fflush(stderr);
	g->ready_printed = true;
	g->t_hold_end = now + (int64_t)(g->o.duration * (double)LG_NS);
}

static bool
lg_hold_tick(struct lg *g, int64_t now, int64_t *wake)
{
	struct lg_conn *c;
	size_t          i;

	while (g->next_i < g->nconns && lg_due(g, g->next_i) <= now) {
		c = &g->conns[g->next_i++];
		g->streams++;
		g->requests++;
		lg_start(g, c, now, true, now);
	}
	if (!g->ready_printed &&
	    ((g->next_i == g->nconns &&
	         g->ready + g->unready_dead >= g->nconns) ||
	        now >= g->t_ready_dl))
		lg_hold_ready(g, now);
	if (!g->ready_printed) {
		if (g->next_i < g->nconns && lg_due(g, g->next_i) < *wake)
			*wake = lg_due(g, g->next_i);
		if (g->t_ready_dl < *wake)
			*wake = g->t_ready_dl;
		return false;
	}
	if (now < g->t_hold_end) {
		if (g->t_hold_end < *wake)
			*wake = g->t_hold_end;
		return false;
	}
	for (i = 0; i < g->nconns; i++) {
		c = &g->conns[i];
		if (c->fd >= 0 && c->state == LG_CS_READING && lg_ok(c))
			g->alive_end++;
		if (c->ready) {
			if (g->ev_resp == 0 || c->events < g->ev_min)
				g->ev_min = c->events;
			if (c->events > g->ev_max)
				g->ev_max = c->events;
			g->ev_resp++;
		}
		lg_close_fd(c);
	}
	return true;
}

/* Arms the timerfd at the absolute instant t (INT64_MAX: disarm). */
static void
lg_arm(struct lg *g, int64_t t)
{
	struct itimerspec its = {0};

	if (t == g->armed)
		return;
	if (t != INT64_MAX) {
		if (t <= 0)
			t = 1;
		its.it_value.tv_sec = t / LG_NS;
		its.it_value.tv_nsec = t % LG_NS;
	}
	if (timerfd_settime(g->tfd, TFD_TIMER_ABSTIME, &its, NULL) != 0)
		BUG("timerfd_settime: %s", strerror(errno));
	g->armed = t;
}

static void
lg_timerfd_init(struct lg *g)
{
	struct epoll_event ev = {0};

	g->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	ev.events = EPOLLIN;
	ev.data.u64 = (uint64_t)LG_SLOT_TIMR << 32;
	if (g->tfd < 0 || epoll_ctl(g->ep, EPOLL_CTL_ADD, g->tfd, &ev) != 0)
		BUG("timerfd: %s", strerror(errno));
	g->armed = -1;
}

/*
 * Waits for events until the absolute instant wake.  epoll_pwait2 takes
 * a nanosecond timeout, one system call per wake-up; kernels before 5.11
 * lack it, and then a timerfd carries the deadline instead.
 */
static int
lg_wait(struct lg *g, struct epoll_event *evs, int64_t wake, int64_t now)
{
	struct timespec ts;
	int64_t         d;
	int             n;

	if (g->tfd < 0) {
		d = wake > now ? wake - now : 0;
		ts.tv_sec = d / LG_NS;
		ts.tv_nsec = d % LG_NS;
		n = epoll_pwait2(g->ep, evs, LG_EVENTS,
		    wake == INT64_MAX ? NULL : &ts, NULL);
		if (n >= 0 || errno != ENOSYS)
			return n;
		lg_timerfd_init(g);
	}
	lg_arm(g, wake);
	return epoll_wait(g->ep, evs, LG_EVENTS, -1);
}

static void
lg_loop(struct lg *g)
{
	struct epoll_event evs[LG_EVENTS];
	int64_t            now, wake;
	uint64_t           slot;
	bool               over;
	int                n, i;

	for (;;) {
		now = lg_now();
		lg_expire(g, now);
		wake = g->timers.head != NULL ? g->timers.head->deadline
		                              : INT64_MAX;
		switch (g->o.mode) {
		case LG_OPEN:
			over = lg_open_tick(g, now, &wake);
			break;
		case LG_CLOSED:
			over = lg_closed_tick(g, now);
			if (!over && now < g->t_end && g->t_end < wake)
				wake = g->t_end;
			break;
		default:
			over = lg_hold_tick(g, now, &wake);
			break;
		}
		/* a failure at start is DEAD "now": go round again */
		if (g->timers.head != NULL && g->timers.head->deadline <= now)
			continue;
		if (over)
			return;
		n = lg_wait(g, evs, wake, now);
		if (n < 0 && errno != EINTR)
			BUG("epoll_wait: %s", strerror(errno));
		now = lg_now();
		for (i = 0; i < n; i++) {
			slot = evs[i].data.u64 >> 32;
			if (slot == LG_SLOT_TIMR) {
				/* no read: the next lg_arm() clears it */
				g->armed = -1;
				continue;
			}
			if (slot >= g->nconns ||
			    g->conns[slot].gen != (uint32_t)evs[i].data.u64)
				continue; /* an event of a closed socket */
			lg_conn_event(g, &g->conns[slot], evs[i].events, now);
		}
	}
}

/* --- setup ----------------------------------------------------------- */

static void
lg_usage(int status)
{
	fprintf(status == 0 ? stdout : stderr,
	    "usage: loadgen --url http://HOST:PORT/PATH [--method M]\n"
	    "    [--body STR | --body-file F] [-H 'Name: value']...\n"
	    "    --mode open|closed|hold [--rate R] [--conns C]\n"
	    "    [--duration S] [--warmup S] [--stream] [--streams N]\n"
	    "    [--ramp R] [--timeout S] [--json]\n");
	exit(status);
}

static double
lg_num(const char *opt, const char *s, double lo, double hi)
{
	char  *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !(v >= lo && v <= hi)) {
		fprintf(stderr, "loadgen: --%s wants a number in [%g, %g]\n",
		    opt, lo, hi);
		exit(2);
	}
	return v;
}

static void
lg_opts(int argc, char **argv, struct lg_opt *o)
{
	static const struct option opts[] = {
	    {"url", required_argument, NULL, 'u'},
	    {"method", required_argument, NULL, 'X'},
	    {"body", required_argument, NULL, 'b'},
	    {"body-file", required_argument, NULL, 'B'},
	    {"header", required_argument, NULL, 'H'},
	    {"mode", required_argument, NULL, 'm'},
	    {"rate", required_argument, NULL, 'r'},
	    {"conns", required_argument, NULL, 'c'},
	    {"duration", required_argument, NULL, 'd'},
	    {"warmup", required_argument, NULL, 'w'},
	    {"stream", no_argument, NULL, 's'},
	    {"streams", required_argument, NULL, 'n'},
	    {"ramp", required_argument, NULL, 'R'},
	    {"timeout", required_argument, NULL, 't'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *mode = NULL;
	int         ch;

	o->duration = 10;
	o->warmup = 1;
	o->ramp = 1000;
	o->timeout = 30;
	o->conns = -1;
	while ((ch = getopt_long(argc, argv, "H:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'u':
			o->url = optarg;
			break;
		case 'X':
			o->method = optarg;
			break;
		case 'b':
			o->body = optarg;
			break;
		case 'B':
			o->body_file = optarg;
			break;
		case 'm':
			mode = optarg;
			break;
		case 's':
			o->stream = true;
			break;
		case 'j':
			o->json = true;
			break;
		case 'h':
			lg_usage(0);
			break;
		case 'H':
			if (o->nhdrs == LG_HDRS_MAX ||
			    strlen(optarg) > LG_HDR_LEN ||
			    strchr(optarg, ':') == NULL ||
			    strpbrk(optarg, "\r\n") != NULL) {
				fprintf(
				    stderr, "loadgen: bad -H %.40s\n", optarg);
				exit(2);
			}
			o->hdrs[o->nhdrs++] = optarg;
			break;
		case 'r':
			o->rate = lg_num("rate", optarg, 0.001, 1e6);
			break;
		case 'c':
			o->conns =
			    (long)lg_num("conns", optarg, 1, LG_CONNS_MAX);
			break;
		case 'd':
			o->duration = lg_num("duration", optarg, 0.001, 86400);
			break;
		case 'w':
			o->warmup = lg_num("warmup", optarg, 0, 3600);
			break;
		case 'n':
			o->streams =
			    (long)lg_num("streams", optarg, 1, LG_CONNS_MAX);
			break;
		case 'R':
			o->ramp = lg_num("ramp", optarg, 0.001, 1e6);
			break;
		case 't':
			o->timeout = lg_num("timeout", optarg, 0.001, 3600);
			break;
		default:
			lg_usage(2);
		}
	}
	if (optind != argc || o->url == NULL || mode == NULL ||
	    (o->body != NULL && o->body_file != NULL))
		lg_usage(2);
	if (strcmp(mode, "open") == 0)
		o->mode = LG_OPEN;
	else if (strcmp(mode, "closed") == 0)
		o->mode = LG_CLOSED;
	else if (strcmp(mode, "hold") == 0)
		o->mode = LG_HOLD;
	else
		lg_usage(2);
	if ((o->mode == LG_OPEN && o->rate <= 0) ||
	    (o->mode == LG_HOLD && o->streams <= 0)) {
		fprintf(stderr, "loadgen: open wants --rate, hold --streams\n");
		exit(2);
	}
	if (o->conns < 0)
		o->conns = o->mode == LG_OPEN ? 256 : 32;
	if (o->mode == LG_HOLD)
		o->conns = o->streams;
}

static char *
lg_read_file(const char *path, size_t *len)
{
	struct stat st;
	char       *s;
	int         fd;
	ssize_t     n;
	size_t      got = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0 || st.st_size > LG_BODY_MAX) {
		fprintf(stderr, "loadgen: cannot read %s (or over %d bytes)\n",
		    path, LG_BODY_MAX);
		exit(2);
	}
	s = xmalloc((size_t)st.st_size + 1);
	while (got < (size_t)st.st_size) {
		n = read(fd, s + got, (size_t)st.st_size - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	*len = got;
	return s;
}

static bool
lg_has_hdr(const struct lg_opt *o, const char *name)
{
	size_t i, n = strlen(name);

	for (i = 0; i < o->nhdrs; i++) {
		if (strncasecmp(o->hdrs[i], name, n) == 0 &&
		    o->hdrs[i][n] == ':')
			return true;
	}
	return false;
}

/*
 * Splits the URL, resolves the host once, and builds the one request
 * every connection sends.
 */
static void
lg_setup_req(struct lg *g)
{
	const struct lg_opt *o = &g->o;
	struct addrinfo      hints = {0}, *ai = NULL;
	char                 host[256], port[8] = "80", *body = NULL;
	const char          *h, *hend, *path, *pcolon, *method;
	size_t               blen = 0, cap, i;
	int                  rv, len = 0;

	if (strncmp(o->url, "http://", 7) != 0)
		goto bad;
	h = o->url + 7;
	path = strchr(h, '/');
	if (path == NULL)
		path = h + strlen(h);
	if (*h == '[') {
		hend = memchr(h, ']', (size_t)(path - h));
		if (hend == NULL)
			goto bad;
		pcolon = hend + 1 < path && hend[1] == ':' ? hend + 1 : NULL;
		h++;
	} else {
		pcolon = memchr(h, ':', (size_t)(path - h));
		hend = pcolon != NULL ? pcolon : path;
	}
	if (hend == h || (size_t)(hend - h) >= sizeof(host))
		goto bad;
	memcpy(host, h, (size_t)(hend - h));
	host[hend - h] = '\0';
	if (pcolon != NULL) {
		if (path - pcolon - 1 < 1 || path - pcolon - 1 > 5)
			goto bad;
		memcpy(port, pcolon + 1, (size_t)(path - pcolon - 1));
		port[path - pcolon - 1] = '\0';
	}
	if (*path == '\0')
		path = "/";
	if (strpbrk(path, " \r\n") != NULL || strlen(path) > 8192)
		goto bad;

	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	rv = getaddrinfo(host, port, &hints, &ai);
	if (rv != 0) {
		fprintf(stderr, "loadgen: %s: %s\n", host, gai_strerror(rv));
		exit(1);
	}
	memcpy(&g->addr, ai->ai_addr, ai->ai_addrlen);
	g->addrlen = ai->ai_addrlen;
	freeaddrinfo(ai);

	if (o->body_file != NULL)
		body = lg_read_file(o->body_file, &blen);
	else if (o->body != NULL) {
		blen = strlen(o->body);
		if (blen > LG_BODY_MAX)
			goto bad;
		body = xstrdup(o->body);
	}
	method = o->method != NULL ? o->method : body != NULL ? "POST" : "GET";
	if (strlen(method) > 32 || strpbrk(method, " \r\n") != NULL)
		goto bad;
	g->head_req = strcmp(method, "HEAD") == 0;

	cap = 512 + strlen(path) + blen;
	for (i = 0; i < o->nhdrs; i++)
		cap += strlen(o->hdrs[i]) + 2;
	g->req = xmalloc(cap);
	len = snprintf(g->req, cap, "%s %s HTTP/1.1\r\n", method, path);
	if (!lg_has_hdr(o, "host"))
		len += snprintf(g->req + len, cap - (size_t)len,
		    "Host: %s%s%s:%s\r\n", strchr(host, ':') ? "[" : "", host,
		    strchr(host, ':') ? "]" : "", port);
	for (i = 0; i < o->nhdrs; i++)
		len += snprintf(
		    g->req + len, cap - (size_t)len, "%s\r\n", o->hdrs[i]);
	if (body != NULL) {
		if (!lg_has_hdr(o, "content-type"))
			len += snprintf(g->req + len, cap - (size_t)len,
			    "Content-Type: application/json\r\n");
		len += snprintf(g->req + len, cap - (size_t)len,
		    "Content-Length: %zu\r\n", blen);
	}
	len += snprintf(g->req + len, cap - (size_t)len, "\r\n");
	ASSERT((size_t)len + blen < cap);
	if (blen > 0)
		memcpy(g->req + len, body, blen);
	g->req_len = (size_t)len + blen;
	free(body);
	return;
bad:
	fprintf(stderr,
	    "loadgen: bad --url or --method (want http://HOST[:PORT][/PATH])\n");
	exit(2);
}

static void
lg_setup(struct lg *g)
{
	struct rlimit rl;
	size_t        i;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    (rlim_t)g->o.conns + 16 > rl.rlim_cur)
		fprintf(stderr, "loadgen: warning: %ld connections, %lu fds\n",
		    g->o.conns, (unsigned long)rl.rlim_cur);
	signal(SIGPIPE, SIG_IGN);
	/*
	 * The default 50 us timer slack would delay each due send by up to
	 * that much, and open mode counts the delay as latency.
	 */
	(void)prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
	g->ep = epoll_create1(EPOLL_CLOEXEC);
	g->tfd = -1;
	if (g->ep < 0) {
		perror("loadgen: epoll_create1");
		exit(1);
	}
	g->nconns = (size_t)g->o.conns;
	g->conns = xcalloc(g->nconns, sizeof(*g->conns));
	for (i = 0; i < g->nconns; i++) {
		g->conns[i].fd = -1;
		g->conns[i].slot = (uint32_t)i;
		if (g->o.mode == LG_OPEN)
			lg_list_link(&g->free, g->free.tail, &g->conns[i]);
	}

	g->t0 = lg_now();
	switch (g->o.mode) {
	case LG_OPEN:
		g->ns_per_req = (double)LG_NS / g->o.rate;
		g->n_warm = (uint64_t)ceil(g->o.warmup * g->o.rate - 1e-9);
		g->n_total = (uint64_t)ceil(
		    (g->o.warmup + g->o.duration) * g->o.rate - 1e-9);
		g->t_warm = lg_due(g, g->n_warm);
		break;
	case LG_CLOSED:
		g->t_warm = g->t0 + (int64_t)(g->o.warmup * (double)LG_NS);
		break;
	case LG_HOLD:
		g->ns_per_req = (double)LG_NS / g->o.ramp;
		g->t_ready_dl = lg_due(g, g->nconns) +
		    (int64_t)(g->o.timeout * (double)LG_NS);
		break;
	}
	g->t_end = g->t_warm + (int64_t)(g->o.duration * (double)LG_NS);
}

/* --- report ---------------------------------------------------------- */

static void
lg_json_hist(const char *key, const struct lg_hist *h)
{
	printf(",\"%s\":{\"p50\":%" PRIu64 ",\"p90\":%" PRIu64
	       ",\"p99\":%" PRIu64 ",\"p999\":%" PRIu64 ",\"max\":%" PRIu64
	       ",\"mean\":%" PRIu64 "}",
	    key, lg_hist_pct(h, 50), lg_hist_pct(h, 90), lg_hist_pct(h, 99),
	    lg_hist_pct(h, 99.9), h->max, h->n ? h->sum / h->n : 0);
}

static void
lg_report_json(const struct lg *g, double rps)
{
	static const char *const modes[] = {"open", "closed", "hold"};
	const char              *sep = "";
	size_t                   i;

	printf("{\"mode\":\"%s\",\"rate_target\":%.1f,\"duration_s\":%.3f,"
	       "\"requests\":%" PRIu64 ",\"completed\":%" PRIu64
	       ",\"errors\":%" PRIu64 ",\"status\":{",
	    modes[g->o.mode], g->o.mode == LG_OPEN ? g->o.rate : 0.0,
	    g->o.duration, g->requests, g->completed, g->errors);
	for (i = 0; i < LG_STATUS_N; i++) {
		if (g->status[i] == 0)
			continue;
		printf("%s\"%zu\":%" PRIu64, sep, i, g->status[i]);
		sep = ",";
	}
	printf("},\"conn_errors\":%" PRIu64 ",\"timeouts\":%" PRIu64
	       ",\"rps\":%.1f",
	    g->conn_errors, g->timeouts, rps);
	lg_json_hist("lat_us", &g->lat);
	if (g->o.stream || g->o.mode == LG_HOLD) {
		lg_json_hist("ttfb_us", &g->ttfb);
		printf(",\"events_min\":%" PRIu64 ",\"events_max\":%" PRIu64
		       ",\"event_gap_us\":{\"p50\":%" PRIu64 ",\"p99\":%" PRIu64
		       "}",
		    g->ev_min, g->ev_max, lg_hist_pct(&g->gap, 50),
		    lg_hist_pct(&g->gap, 99));
	}
	if (g->o.mode == LG_HOLD)
		printf(",\"streams\":%" PRIu64 ",\"ready\":%" PRIu64
		       ",\"ok_200\":%" PRIu64 ",\"alive_end\":%" PRIu64
		       ",\"events\":%" PRIu64,
		    g->streams, g->ready, g->status[200], g->alive_end,
		    g->events);
	printf("}\n");
}

static void
lg_report_row(const char *name, const struct lg_hist *h)
{
	printf("%-8s %9" PRIu64 " %9" PRIu64 " %9" PRIu64 " %9" PRIu64
	       " %9" PRIu64 " %9" PRIu64 "\n",
	    name, lg_hist_pct(h, 50), lg_hist_pct(h, 90), lg_hist_pct(h, 99),
	    lg_hist_pct(h, 99.9), h->max, h->n ? h->sum / h->n : 0);
}

static void
lg_report(const struct lg *g)
{
	double rps = (double)g->completed / g->o.duration;
	size_t i;

	if (g->o.mode == LG_HOLD)
		rps = 0;
	if (g->o.json) {
		lg_report_json(g, rps);
		return;
	}
	printf("requests %" PRIu64 "  completed %" PRIu64 "  rps %.1f\n"
	       "errors %" PRIu64 " (non-2xx)  conn_errors %" PRIu64
	       "  timeouts %" PRIu64 "\nstatus",
	    g->requests, g->completed, rps, g->errors, g->conn_errors,
	    g->timeouts);
	for (i = 0; i < LG_STATUS_N; i++) {
		if (g->status[i] != 0)
			printf(" %zu:%" PRIu64, i, g->status[i]);
	}
	printf("\n%-8s %9s %9s %9s %9s %9s %9s\n", "us", "p50", "p90", "p99",
	    "p99.9", "max", "mean");
	lg_report_row("latency", &g->lat);
	if (g->o.stream || g->o.mode == LG_HOLD) {
		lg_report_row("ttfb", &g->ttfb);
		printf("events per response %" PRIu64 "..%" PRIu64
		       "  event gap p50 %" PRIu64 " us  p99 %" PRIu64 " us\n",
		    g->ev_min, g->ev_max, lg_hist_pct(&g->gap, 50),
		    lg_hist_pct(&g->gap, 99));
	}
	if (g->o.mode == LG_HOLD)
		printf("streams %" PRIu64 "  ready %" PRIu64 "  ok_200 %" PRIu64
		       "  alive_end %" PRIu64 "  events %" PRIu64 "\n",
		    g->streams, g->ready, g->status[200], g->alive_end,
		    g->events);
}

int
main(int argc, char **argv)
{
	struct lg *g = xcalloc(1, sizeof(*g));

	lg_opts(argc, argv, &g->o);
	lg_setup_req(g);
	lg_setup(g);
	lg_loop(g);
	lg_report(g);
	free(g->conns);
	free(g->req);
	close(g->ep);
	if (g->tfd >= 0)
		close(g->tfd);
	free(g);
	return 0;
}
