/*
 * rds.c: the Redis connection pool and script helpers (see rds.h).
 *
 * The pool is a mutex-protected stack of idle contexts plus a count of
 * open ones.  Connecting and commands happen outside the lock; only the
 * hand-over of a context is locked, so one slow command never stalls the
 * others.  A context with c->err set is broken for good in hiredis, so it
 * is freed on return instead of going back on the stack.
 */
#include "rds.h"

#include <sys/time.h>

#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "err.h"
#include "log.h"

#define RDS_HOST_MAX 255
#define RDS_PASS_MAX 512
#define RDS_DB_MAX   9999

struct rds_pool {
	pthread_mutex_t mtx; /* guards idle, nidle, nopen */
	pthread_cond_t  cv;  /* a context came back or a slot freed */
	redisContext  **idle;
	int             nidle;
	int             nopen; /* idle + in use + being connected */
	int             size;
	int             timeout_ms;
	size_t          max_reply;
	char           *host;
	int             port;
	char           *user; /* NULL: AUTH with the password alone */
	char           *pass; /* NULL: no AUTH; never logged */
	int             db;
};

struct rds_script {
	char  sha[41];
	char *lua;
};

int
err_from_rds(const redisContext *c)
{
	if (c == NULL)
		return -ERR_NOMEM;
	switch (c->err) {
	case 0:
		return 0;
	case REDIS_ERR_OOM:
		return -ERR_NOMEM;
	case REDIS_ERR_IO:
		/* hiredis keeps only strerror() text of the failed call. */
		if (strstr(c->errstr, "temporarily unavailable") != NULL ||
		    strstr(c->errstr, "timed out") != NULL)
			return -ERR_TIMEDOUT;
		return -ERR_REDIS;
	default:
		return -ERR_REDIS;
	}
}

/* ---- URL ------------------------------------------------------------- */

static int
rds_parse_int(const char *s, size_t len, int lo, int hi, int *out)
{
	long   v = 0;
	size_t i;

	if (len == 0 || len > 6)
		return -ERR_INVAL;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -ERR_INVAL;
		v = v * 10 + (s[i] - '0');
	}
	if (v < lo || v > hi)
		return -ERR_INVAL;
	*out = (int)v;
	return 0;
}

static int
rds_parse_hostport(struct rds_pool *p, const char *s, size_t len)
{
	const char *port = NULL, *end = s + len, *h = s;
	size_t      hlen;

	if (len > 0 && s[0] == '[') {
		const char *rb = memchr(s, ']', len);

		if (rb == NULL)
			return -ERR_INVAL;
		h = s + 1;
		hlen = (size_t)(rb - h);
		if (rb + 1 < end) {
			if (rb[1] != ':')
				return -ERR_INVAL;
			port = rb + 2;
		}
	} else {
		const char *colon = memchr(s, ':', len);

		hlen = colon != NULL ? (size_t)(colon - s) : len;
		if (colon != NULL)
			port = colon + 1;
	}
	if (hlen == 0 || hlen > RDS_HOST_MAX)
		return -ERR_INVAL;
	p->port = 6379;
	if (port != NULL &&
	    rds_parse_int(port, (size_t)(end - port), 1, 65535, &p->port) != 0)
		return -ERR_INVAL;
	p->host = xstrndup(h, hlen);
	return 0;
}

static int
rds_parse_url(struct rds_pool *p, const char *url)
{
	const char *auth, *slash, *at, *colon;
	size_t      len;

	len = strnlen(url, RDS_URL_MAX + 1);
	if (len > RDS_URL_MAX || strncmp(url, "redis://", 8) != 0)
		return -ERR_INVAL;
	auth = url + 8;
	slash = strchr(auth, '/');
	if (slash == NULL)
		slash = url + len;
	else if (slash[1] != '\0' &&
	    rds_parse_int(slash + 1, strlen(slash + 1), 0, RDS_DB_MAX, &p->db))
		return -ERR_INVAL;
	/* The last '@' ends the userinfo: a password may contain '@'. */
	at = NULL;
	for (colon = auth; colon < slash; colon++)
		if (*colon == '@')
			at = colon;
	if (at != NULL) {
		colon = memchr(auth, ':', (size_t)(at - auth));
		if (colon == NULL || (size_t)(at - colon - 1) > RDS_PASS_MAX)
			return -ERR_INVAL;
		if (colon > auth)
			p->user = xstrndup(auth, (size_t)(colon - auth));
		if (at > colon + 1)
			p->pass = xstrndup(colon + 1, (size_t)(at - colon - 1));
		auth = at + 1;
	}
	return rds_parse_hostport(p, auth, (size_t)(slash - auth));
}

/* ---- connections ----------------------------------------------------- */

static struct timeval
rds_tv(int ms)
{
	struct timeval tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	return tv;
}

/* Sends AUTH or SELECT on a new context; -ERR_AUTH on a refused AUTH. */
static int
rds_setup_cmd(redisContext *c, int argc, const char **argv, int err_reply)
{
	redisReply *r;
	int         rv = 0;

	r = redisCommandArgv(c, argc, argv, NULL);
	if (r == NULL)
		return err_from_rds(c);
	if (r->type == REDIS_REPLY_ERROR)
		rv = err_reply;
	freeReplyObject(r);
	return rv;
}

static int
rds_connect(struct rds_pool *p, redisContext **out)
{
	redisContext *c;
	const char   *argv[3];
	char          db[16];
	int           rv;

	c = redisConnectWithTimeout(p->host, p->port, rds_tv(p->timeout_ms));
	rv = err_from_rds(c);
	if (rv == 0 && redisSetTimeout(c, rds_tv(p->timeout_ms)) != REDIS_OK)
		rv = err_from_rds(c) != 0 ? err_from_rds(c) : -ERR_REDIS;
	if (rv == 0)
		(void)redisEnableKeepAlive(c);
	if (rv == 0 && p->pass != NULL) {
		argv[0] = "AUTH";
		argv[1] = p->user != NULL ? p->user : p->pass;
		argv[2] = p->pass;
		rv = rds_setup_cmd(c, p->user != NULL ? 3 : 2, argv, -ERR_AUTH);
	}
	if (rv == 0 && p->db != 0) {
		snprintf(db, sizeof(db), "%d", p->db);
		argv[0] = "SELECT";
		argv[1] = db;
		rv = rds_setup_cmd(c, 2, argv, -ERR_REDIS);
	}
	if (rv != 0) {
		log_warn("rds.connect_failed", LOG_STR("host", p->host),
		    LOG_I64("port", p->port), LOG_ERR(rv),
		    LOG_STR("detail", c != NULL && c->err ? c->errstr : ""));
		if (c != NULL)
			redisFree(c);
		return rv;
	}
	*out = c;
	return 0;
}

static void
rds_deadline(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* Takes an idle context, opens one, or waits up to wait_ms for one. */
static int
rds_get(struct rds_pool *p, int wait_ms, redisContext **out)
{
	struct timespec ts;
	int             rv;

	rds_deadline(&ts, wait_ms);
	pthread_mutex_lock(&p->mtx);
	for (;;) {
		if (p->nidle > 0) {
			*out = p->idle[--p->nidle];
			pthread_mutex_unlock(&p->mtx);
			return 0;
		}
		if (p->nopen < p->size)
			break;
		if (pthread_cond_timedwait(&p->cv, &p->mtx, &ts) == ETIMEDOUT &&
		    p->nidle == 0 && p->nopen >= p->size) {
			pthread_mutex_unlock(&p->mtx);
			return -ERR_BUSY;
		}
	}
	p->nopen++;
	pthread_mutex_unlock(&p->mtx);
	rv = rds_connect(p, out);
	if (rv != 0) {
		pthread_mutex_lock(&p->mtx);
		p->nopen--;
		pthread_cond_signal(&p->cv);
		pthread_mutex_unlock(&p->mtx);
	}
	return rv;
}

/* Returns a context; a broken one is freed and its slot released. */
static void
rds_put(struct rds_pool *p, redisContext *c)
{
	bool broken = c->err != 0;

	pthread_mutex_lock(&p->mtx);
	if (broken)
		p->nopen--;
	else
		p->idle[p->nidle++] = c;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mtx);
	if (broken)
		redisFree(c);
}

/* ---- replies --------------------------------------------------------- */

static size_t
rds_reply_size(const redisReply *r, int depth)
{
	size_t n = sizeof(*r), i;

	if (depth > 16)
		return SIZE_MAX / 2; /* absurd nesting counts as too big */
	n += r->len;
	for (i = 0; i < r->elements; i++) {
		n += rds_reply_size(r->element[i], depth + 1);
		if (n >= SIZE_MAX / 2)
			break;
	}
	return n;
}

/*
 * Judges a reply (taken): error replies become -ERR_REDIS (logged with
 * their first word only), oversized ones -ERR_TOOBIG.
 */
static int
rds_finish(struct rds_pool *p, redisReply *r, redisReply **out)
{
	char word[32];
	int  n;

	if (r->type == REDIS_REPLY_ERROR) {
		n = 0;
		while (n < (int)sizeof(word) - 1 && (size_t)n < r->len &&
		    r->str[n] != ' ') {
			word[n] = r->str[n];
			n++;
		}
		word[n] = '\0';
		log_warn("rds.reply_error", LOG_STR("code", word));
		freeReplyObject(r);
		return -ERR_REDIS;
	}
	if (rds_reply_size(r, 0) > p->max_reply) {
		log_warn("rds.reply_too_big", LOG_U64("max", p->max_reply));
		freeReplyObject(r);
		return -ERR_TOOBIG;
	}
	if (out != NULL)
		*out = r;
	else
		freeReplyObject(r);
	return 0;
}

/* One command on c; NULL reply means c is broken (c->err set). */
static int
rds_argv_on(redisContext *c, int argc, const char *const *argv,
    const size_t *argvlen, redisReply **r)
{
	*r = redisCommandArgv(c, argc, (const char **)argv, argvlen);
	if (*r == NULL) {
		log_warn("rds.io_error", LOG_ERR(err_from_rds(c)),
		    LOG_STR("detail", c->errstr));
		return err_from_rds(c) != 0 ? err_from_rds(c) : -ERR_REDIS;
	}
	return 0;
}

/* ---- public ---------------------------------------------------------- */

int
rds_pool_new(const char *url, int size, int timeout_ms, struct rds_pool **out)
{
	struct rds_pool *p;

	if (url == NULL || size < 1 || size > RDS_POOL_MAX || timeout_ms <= 0)
		return -ERR_INVAL;
	p = xcalloc(1, sizeof(*p));
	pthread_mutex_init(&p->mtx, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->size = size;
	p->timeout_ms = timeout_ms;
	p->max_reply = RDS_REPLY_MAX;
	p->idle = xcalloc((size_t)size, sizeof(*p->idle));
	if (rds_parse_url(p, url) != 0) {
		log_error("rds.url_invalid"); /* the url may hold a password */
		rds_pool_free(p);
		return -ERR_INVAL;
	}
	*out = p;
	return 0;
}

void
rds_pool_free(struct rds_pool *p)
{
	int i;

	if (p == NULL)
		return;
	for (i = 0; i < p->nidle; i++)
		redisFree(p->idle[i]);
	free(p->idle);
	free(p->host);
	free(p->user);
	if (p->pass != NULL) {
		explicit_bzero(p->pass, strlen(p->pass));
		free(p->pass);
	}
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mtx);
	free(p);
}

void
rds_pool_set_max_reply(struct rds_pool *p, size_t max)
{
	if (max > 0)
		p->max_reply = max;
}

int
rds_cmdargv(struct rds_pool *p, redisReply **out, int argc,
    const char *const *argv, const size_t *argvlen)
{
	redisContext *c;
	redisReply   *r;
	int           rv;

	if (argc < 1 || argc > RDS_ARGV_MAX || argv == NULL)
		return -ERR_INVAL;
	rv = rds_get(p, p->timeout_ms, &c);
	if (rv != 0)
		return rv;
	rv = rds_argv_on(c, argc, argv, argvlen, &r);
	rds_put(p, c);
	if (rv != 0)
		return rv;
	return rds_finish(p, r, out);
}

int
rds_cmd(struct rds_pool *p, redisReply **out, const char *fmt, ...)
{
	redisContext *c;
	redisReply   *r;
	va_list       ap;
	int           rv;

	rv = rds_get(p, p->timeout_ms, &c);
	if (rv != 0)
		return rv;
	va_start(ap, fmt);
	r = redisvCommand(c, fmt, ap);
	va_end(ap);
	if (r == NULL) {
		rv = err_from_rds(c) != 0 ? err_from_rds(c) : -ERR_REDIS;
		log_warn(
		    "rds.io_error", LOG_ERR(rv), LOG_STR("detail", c->errstr));
	}
	rds_put(p, c);
	if (rv != 0)
		return rv;
	return rds_finish(p, r, out);
}

int
rds_ping(struct rds_pool *p, int timeout_ms)
{
	const char   *argv[] = {"PING"};
	redisContext *c;
	redisReply   *r;
	int           rv;

	rv = rds_get(p, timeout_ms > 0 ? timeout_ms : p->timeout_ms, &c);
	if (rv != 0)
		return rv;
	rv = rds_argv_on(c, 1, argv, NULL, &r);
	rds_put(p, c);
	if (rv != 0)
		return rv;
	if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOAUTH", 6) == 0)
		rv = -ERR_AUTH;
	else if (r->type != REDIS_REPLY_STATUS || strcmp(r->str, "PONG") != 0)
		rv = -ERR_REDIS;
	freeReplyObject(r);
	return rv;
}

int
rds_script_new(const char *lua, struct rds_script **out)
{
	struct rds_script *s;
	unsigned char      md[EVP_MAX_MD_SIZE];
	unsigned int       mdlen = 0, i;

	if (lua == NULL)
		return -ERR_INVAL;
	if (EVP_Digest(lua, strlen(lua), md, &mdlen, EVP_sha1(), NULL) != 1 ||
	    mdlen != 20)
		return -ERR_CRYPTO;
	s = xcalloc(1, sizeof(*s));
	for (i = 0; i < mdlen; i++)
		snprintf(s->sha + 2 * i, 3, "%02x", md[i]);
	s->lua = xstrdup(lua);
	*out = s;
	return 0;
}

void
rds_script_free(struct rds_script *s)
{
	if (s == NULL)
		return;
	free(s->lua);
	free(s);
}

const char *
rds_script_sha(const struct rds_script *s)
{
	return s->sha;
}

/* SCRIPT LOAD on c; the server must agree on the SHA. */
static int
rds_script_load(redisContext *c, const struct rds_script *s)
{
	const char *argv[] = {"SCRIPT", "LOAD", s->lua};
	redisReply *r;
	int         rv;

	rv = rds_argv_on(c, 3, argv, NULL, &r);
	if (rv != 0)
		return rv;
	if (r->type != REDIS_REPLY_STRING || strcmp(r->str, s->sha) != 0) {
		log_warn("rds.script_load_failed");
		rv = -ERR_REDIS;
	}
	freeReplyObject(r);
	return rv;
}

int
rds_script_eval(struct rds_pool *p, const struct rds_script *s,
    redisReply **out, int nkeys, int nargs, const char *const *argv,
    const size_t *argvlen)
{
	const char   *av[RDS_ARGV_MAX];
	size_t        al[RDS_ARGV_MAX];
	char          nk[16];
	redisContext *c;
	redisReply   *r = NULL;
	int           i, n, rv;

	if (nkeys < 0 || nargs < 0 || nkeys + nargs > RDS_ARGV_MAX - 3 ||
	    (argv == NULL && nkeys + nargs > 0))
		return -ERR_INVAL;
	snprintf(nk, sizeof(nk), "%d", nkeys);
	av[0] = "EVALSHA";
	av[1] = s->sha;
	av[2] = nk;
	n = 3;
	for (i = 0; i < nkeys + nargs; i++, n++) {
		av[n] = argv[i];
		al[n] = argvlen != NULL ? argvlen[i] : strlen(argv[i]);
	}
	for (i = 0; i < 3; i++)
		al[i] = strlen(av[i]);

	rv = rds_get(p, p->timeout_ms, &c);
	if (rv != 0)
		return rv;
	rv = rds_argv_on(c, n, av, al, &r);
	if (rv == 0 && r->type == REDIS_REPLY_ERROR &&
	    strncmp(r->str, "NOSCRIPT", 8) == 0) {
		/* The script did not run: loading and retrying is safe. */
		freeReplyObject(r);
		r = NULL;
		rv = rds_script_load(c, s);
		if (rv == 0)
			rv = rds_argv_on(c, n, av, al, &r);
	}
	rds_put(p, c);
	if (rv != 0)
		return rv;
	return rds_finish(p, r, out);
}

/* EVALSHA argv of one call into av/al (RDS_ARGV_MAX each); the count. */
static int
rds_call_argv(const struct rds_call *k, char *nk, size_t nksz, const char **av,
    size_t *al)
{
	int i, n = 3;

	snprintf(nk, nksz, "%d", k->nkeys);
	av[0] = "EVALSHA";
	av[1] = k->s->sha;
	av[2] = nk;
	for (i = 0; i < k->nkeys + k->nargs; i++, n++)
		av[n] = k->argv[i];
	for (i = 0; i < n; i++)
		al[i] = strlen(av[i]);
	return n;
}

int
rds_script_evalv(struct rds_pool *p, struct rds_call *calls, size_t n)
{
	const char   *av[RDS_ARGV_MAX];
	size_t        al[RDS_ARGV_MAX], i;
	char          nk[16];
	redisContext *c;
	redisReply   *r;
	int           argc, rv, first = 0;
	void         *vr;

	if (n == 0 || n > RDS_PIPE_MAX)
		return -ERR_INVAL;
	for (i = 0; i < n; i++) {
		calls[i].reply = NULL;
		calls[i].rv = -ERR_INVAL;
		if (calls[i].nkeys < 0 || calls[i].nargs < 0 ||
		    calls[i].nkeys + calls[i].nargs > RDS_ARGV_MAX - 3)
			return -ERR_INVAL;
	}
	rv = rds_get(p, p->timeout_ms, &c);
	if (rv != 0) {
		for (i = 0; i < n; i++)
			calls[i].rv = rv;
		return rv;
	}
	for (i = 0; i < n; i++) {
		argc = rds_call_argv(&calls[i], nk, sizeof(nk), av, al);
		if (redisAppendCommandArgv(c, argc, av, al) != REDIS_OK)
			break;
	}
	for (i = 0; i < n; i++) {
		vr = NULL;
		if (c->err == 0 && redisGetReply(c, &vr) != REDIS_OK)
			vr = NULL;
		r = vr;
		if (r == NULL) {
			calls[i].rv =
			    c->err != 0 ? err_from_rds(c) : -ERR_REDIS;
			if (calls[i].rv == 0)
				calls[i].rv = -ERR_REDIS;
			continue;
		}
		if (r->type == REDIS_REPLY_ERROR &&
		    strncmp(r->str, "NOSCRIPT", 8) == 0) {
			/* Did not run: retried below, alone. */
			freeReplyObject(r);
			calls[i].rv = 1;
			continue;
		}
		calls[i].rv = rds_finish(p, r, &calls[i].reply);
	}
	for (i = 0; i < n && c->err == 0; i++) {
		if (calls[i].rv != 1)
			continue;
		rv = rds_script_load(c, calls[i].s);
		if (rv == 0) {
			argc = rds_call_argv(&calls[i], nk, sizeof(nk), av, al);
			rv = rds_argv_on(c, argc, av, al, &r);
		}
		calls[i].rv = rv == 0 ? rds_finish(p, r, &calls[i].reply) : rv;
	}
	if (c->err != 0)
		log_warn("rds.io_error", LOG_ERR(err_from_rds(c)),
		    LOG_STR("detail", c->errstr));
	rds_put(p, c);
	for (i = 0; i < n; i++) {
		if (calls[i].rv == 1) /* the connection broke first */
			calls[i].rv = -ERR_REDIS;
		if (calls[i].rv != 0 && first == 0)
			first = calls[i].rv;
	}
	return first;
}
