/*
 * rds_test.c: the Redis pool against real redis-server processes that the
 * test starts itself (fork/exec of /usr/bin/redis-server or $REDIS_SERVER
 * on a free loopback port): ping, commands, scripts and NOSCRIPT
 * recovery, server killed and restarted, stalls, AUTH, URL parsing.
 * A missing redis-server fails the tests loudly; nothing is skipped.
 */
#include <sys/socket.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "err.h"
#include "rds.h"
#include "t.h"

struct rds_t_srv {
	pid_t pid;
	int   port;
	char  url[128];
};

static int
rds_t_free_port(void)
{
	struct sockaddr_in sa;
	socklen_t          len = sizeof(sa);
	int                fd, port;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
		abort();
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

static bool
rds_t_accepting(int port)
{
	struct sockaddr_in sa;
	int                fd, rv;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)port);
	rv = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	return rv == 0;
}

/* Starts redis-server on port (0: a free one); fails the case if not. */
static void
rds_t_start(struct rds_t_srv *s, int port, const char *pass)
{
	const char *bin = getenv("REDIS_SERVER");
	char        ports[16];
	int64_t     end;
	int         fd;

	if (bin == NULL)
		bin = "/usr/bin/redis-server";
	if (access(bin, X_OK) != 0)
		t_fail(__FILE__, __LINE__, "redis-server not found at %s", bin);
	s->port = port != 0 ? port : rds_t_free_port();
	snprintf(ports, sizeof(ports), "%d", s->port);
	snprintf(s->url, sizeof(s->url), "redis://127.0.0.1:%d", s->port);
	s->pid = fork();
	if (s->pid < 0)
		abort();
	if (s->pid == 0) {
		fd = open("/dev/null", O_WRONLY);
		dup2(fd, 1);
		dup2(fd, 2);
		if (pass != NULL)
			execl(bin, "redis-server", "--port", ports, "--bind",
			    "127.0.0.1", "--save", "", "--appendonly", "no",
			    "--daemonize", "no", "--requirepass", pass,
			    (char *)NULL);
		else
			execl(bin, "redis-server", "--port", ports, "--bind",
			    "127.0.0.1", "--save", "", "--appendonly", "no",
			    "--daemonize", "no", (char *)NULL);
		_exit(127);
	}
	end = now_mono_ms() + 5000;
	while (!rds_t_accepting(s->port) && now_mono_ms() < end)
		usleep(10000);
	if (!rds_t_accepting(s->port))
		t_fail(__FILE__, __LINE__, "redis-server did not start");
}

static void
rds_t_stop(struct rds_t_srv *s)
{
	if (s->pid > 0) {
		kill(s->pid, SIGKILL);
		waitpid(s->pid, NULL, 0);
		s->pid = 0;
	}
}

/* One server shared by the simple cases, stopped at exit. */
static struct rds_t_srv rds_t_main;

static void
rds_t_main_stop(void)
{
	rds_t_stop(&rds_t_main);
}

static const char *
rds_t_url(void)
{
	if (rds_t_main.pid == 0) {
		rds_t_start(&rds_t_main, 0, NULL);
		atexit(rds_t_main_stop);
	}
	return rds_t_main.url;
}

static void
test_rds_url_rejected(void)
{
	static const char *bad[] = {"http://127.0.0.1:6379", "redis://",
	    "redis://:6379", "redis://h:0", "redis://h:99999", "redis://h:abc",
	    "redis://h/x", "redis://h/99999", "redis://[::1", "redis://p@h",
	    "redis://[::1]x"};
	struct rds_pool   *p = NULL;
	size_t             i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		if (rds_pool_new(bad[i], 2, 100, &p) != -ERR_INVAL)
			t_fail(__FILE__, __LINE__, "accepted %s", bad[i]);
	}
	T_EQ_INT(rds_pool_new("redis://h", 0, 100, &p), -ERR_INVAL);
	T_EQ_INT(rds_pool_new("redis://h", 2, 0, &p), -ERR_INVAL);
	/* Good ones parse without connecting. */
	T_OK(rds_pool_new("redis://:p@ss@[::1]:7000/3", 1, 100, &p));
	rds_pool_free(p);
	T_OK(rds_pool_new("redis://u:pw@localhost", 1, 100, &p));
	rds_pool_free(p);
	rds_pool_free(NULL);
}

static void
test_rds_ping_set_get(void)
{
	struct rds_pool *p = NULL;
	redisReply      *r = NULL;
	const char      *argv[] = {"SET", "rds_t:bin", "a\0b"};
	const size_t     lens[] = {3, 9, 3};

	T_OK(rds_pool_new(rds_t_url(), 2, 1000, &p));
	T_OK(rds_ping(p, 1000));
	T_OK(rds_cmd(p, NULL, "SET %s %s", "rds_t:k", "v1"));
	T_OK(rds_cmd(p, &r, "GET %s", "rds_t:k"));
	T_EQ_INT(r->type, REDIS_REPLY_STRING);
	T_EQ_STR(r->str, "v1");
	freeReplyObject(r);
	T_OK(rds_cmdargv(p, NULL, 3, argv, lens));
	T_OK(rds_cmd(p, &r, "GET %b", "rds_t:bin", (size_t)9));
	T_EQ_INT(r->len, 3);
	T_ASSERT(memcmp(r->str, "a\0b", 3) == 0);
	freeReplyObject(r);
	/* A server error reply is -ERR_REDIS and hands nothing out. */
	r = NULL;
	T_EQ_INT(rds_cmd(p, &r, "INCR %s", "rds_t:k"), -ERR_REDIS);
	T_ASSERT(r == NULL);
	/* The connection survived the error reply. */
	T_OK(rds_ping(p, 1000));
	T_EQ_INT(rds_cmdargv(p, NULL, 0, argv, NULL), -ERR_INVAL);
	rds_pool_free(p);
}

static void
test_rds_reply_cap(void)
{
	struct rds_pool *p = NULL;
	redisReply      *r = NULL;
	char             big[2000];

	memset(big, 'x', sizeof(big));
	T_OK(rds_pool_new(rds_t_url(), 1, 1000, &p));
	rds_pool_set_max_reply(p, 1000);
	T_OK(rds_cmd(p, NULL, "SET rds_t:big %b", big, sizeof(big)));
	T_EQ_INT(rds_cmd(p, &r, "GET rds_t:big"), -ERR_TOOBIG);
	T_ASSERT(r == NULL);
	T_OK(rds_ping(p, 1000));
	rds_pool_free(p);
}

static void
test_rds_script(void)
{
	static const char *lua =
	    "return redis.call('INCRBY', KEYS[1], ARGV[1])";
	struct rds_pool   *p = NULL;
	struct rds_script *s = NULL;
	redisReply        *r = NULL;
	const char        *argv[] = {"rds_t:ctr", "5"};

	T_OK(rds_pool_new(rds_t_url(), 2, 1000, &p));
	T_OK(rds_script_new(lua, &s));
	T_EQ_INT(strlen(rds_script_sha(s)), 40);
	T_OK(rds_cmd(p, NULL, "DEL rds_t:ctr"));
	/* First call: NOSCRIPT, loaded, retried. */
	T_OK(rds_cmd(p, NULL, "SCRIPT FLUSH"));
	T_OK(rds_script_eval(p, s, &r, 1, 1, argv, NULL));
	T_EQ_INT(r->type, REDIS_REPLY_INTEGER);
	T_EQ_INT(r->integer, 5);
	freeReplyObject(r);
	/* Our SHA is the server's. */
	T_OK(rds_cmd(p, &r, "SCRIPT LOAD %s", lua));
	T_EQ_STR(r->str, rds_script_sha(s));
	freeReplyObject(r);
	T_OK(rds_script_eval(p, s, &r, 1, 1, argv, NULL));
	T_EQ_INT(r->integer, 10);
	freeReplyObject(r);
	/* Flushed again: recovered again. */
	T_OK(rds_cmd(p, NULL, "SCRIPT FLUSH"));
	T_OK(rds_script_eval(p, s, &r, 1, 1, argv, NULL));
	T_EQ_INT(r->integer, 15);
	freeReplyObject(r);
	T_EQ_INT(rds_script_eval(p, s, &r, -1, 0, argv, NULL), -ERR_INVAL);
	rds_script_free(s);

	/* A script error is -ERR_REDIS. */
	T_OK(rds_script_new("return redis.call('NOPE')", &s));
	T_EQ_INT(rds_script_eval(p, s, &r, 0, 0, NULL, NULL), -ERR_REDIS);
	rds_script_free(s);
	rds_pool_free(p);
}

/* A pipeline: in order, one reply each, NOSCRIPT and errors per call. */
static void
test_rds_script_pipeline(void)
{
	struct rds_pool   *p = NULL;
	struct rds_script *inc = NULL, *get = NULL, *bad = NULL;
	const char     *a5[] = {"rds_t:pipe", "5"}, *a7[] = {"rds_t:pipe", "7"};
	const char     *k[] = {"rds_t:pipe"};
	struct rds_call c[4];
	size_t          i;

	T_OK(rds_pool_new(rds_t_url(), 1, 1000, &p));
	T_OK(rds_script_new(
	    "return redis.call('INCRBY', KEYS[1], ARGV[1])", &inc));
	T_OK(rds_script_new(
	    "return tonumber(redis.call('GET', KEYS[1])) * 10", &get));
	T_OK(rds_script_new("return redis.call('NOPE')", &bad));
	T_OK(rds_cmd(p, NULL, "DEL rds_t:pipe"));
	T_OK(rds_cmd(p, NULL, "SCRIPT FLUSH"));
	memset(c, 0, sizeof(c));
	c[0] = (struct rds_call){.s = inc, .nkeys = 1, .nargs = 1, .argv = a5};
	c[1] = (struct rds_call){.s = inc, .nkeys = 1, .nargs = 1, .argv = a7};
	c[2] = (struct rds_call){.s = bad};
	c[3] = (struct rds_call){.s = get, .nkeys = 1, .argv = k};
	/* Every script unknown to the server: each loaded and run. */
	T_EQ_INT(rds_script_evalv(p, c, 4), -ERR_REDIS);
	T_EQ_INT(c[0].rv, 0);
	T_EQ_INT(c[1].rv, 0);
	T_EQ_INT(c[2].rv, -ERR_REDIS);
	T_ASSERT(c[2].reply == NULL);
	T_EQ_INT(c[3].rv, 0);
	T_EQ_INT(c[0].reply->integer + c[1].reply->integer, 5 + 12);
	T_EQ_INT(c[3].reply->integer, 120);
	for (i = 0; i < 4; i++)
		if (c[i].reply != NULL)
			freeReplyObject(c[i].reply);
	/* Loaded now: one round trip, in order (the GET sees both INCRBYs). */
	T_OK(rds_cmd(p, NULL, "DEL rds_t:pipe"));
	{
		struct rds_call d[3] = {c[0], c[1], c[3]};

		T_OK(rds_script_evalv(p, d, 3));
		T_EQ_INT(d[0].reply->integer, 5);
		T_EQ_INT(d[1].reply->integer, 12);
		T_EQ_INT(d[2].reply->integer, 120);
		for (i = 0; i < 3; i++)
			freeReplyObject(d[i].reply);
	}
	T_EQ_INT(rds_script_evalv(p, c, 0), -ERR_INVAL);
	rds_script_free(inc);
	rds_script_free(get);
	rds_script_free(bad);
	rds_pool_free(p);
}

struct rds_t_worker {
	struct rds_pool *p;
	int              ok;
};

static void *
rds_t_worker_fn(void *arg)
{
	struct rds_t_worker *w = arg;
	int                  i;

	for (i = 0; i < 200; i++)
		if (rds_cmd(w->p, NULL, "INCR rds_t:conc") == 0)
			w->ok++;
	return NULL;
}

static void
test_rds_pool_concurrent(void)
{
	struct rds_pool    *p = NULL;
	struct rds_t_worker w[8];
	pthread_t           th[8];
	redisReply         *r = NULL;
	int                 i;

	T_OK(rds_pool_new(rds_t_url(), 3, 2000, &p));
	T_OK(rds_cmd(p, NULL, "DEL rds_t:conc"));
	for (i = 0; i < 8; i++) {
		w[i].p = p;
		w[i].ok = 0;
		T_OK(pthread_create(&th[i], NULL, rds_t_worker_fn, &w[i]));
	}
	for (i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		T_EQ_INT(w[i].ok, 200);
	}
	T_OK(rds_cmd(p, &r, "GET rds_t:conc"));
	T_EQ_STR(r->str, "1600");
	freeReplyObject(r);
	rds_pool_free(p);
}

static void
test_rds_server_killed_restarted(void)
{
	struct rds_t_srv s;
	struct rds_pool *p = NULL;
	int64_t          t0, dt;
	int              rv;

	rds_t_start(&s, 0, NULL);
	T_OK(rds_pool_new(s.url, 2, 300, &p));
	T_OK(rds_ping(p, 300));
	rds_t_stop(&s);
	t0 = now_mono_ms();
	rv = rds_cmd(p, NULL, "SET rds_t:x 1"); /* on the pooled conn */
	T_ASSERT(rv == -ERR_REDIS || rv == -ERR_TIMEDOUT);
	rv = rds_ping(p, 300); /* a fresh connect is refused */
	T_ASSERT(rv == -ERR_REDIS || rv == -ERR_TIMEDOUT);
	dt = now_mono_ms() - t0;
	T_ASSERT(dt < 1500);
	/* Back on the same port: the pool reconnects by itself. */
	rds_t_start(&s, s.port, NULL);
	T_OK(rds_ping(p, 300));
	T_OK(rds_cmd(p, NULL, "SET rds_t:x 1"));
	rds_pool_free(p);
	rds_t_stop(&s);
}

static void
test_rds_server_stalled_timeout(void)
{
	struct rds_t_srv s;
	struct rds_pool *p = NULL;
	int64_t          t0, dt;

	rds_t_start(&s, 0, NULL);
	T_OK(rds_pool_new(s.url, 1, 200, &p));
	T_OK(rds_ping(p, 200));
	kill(s.pid, SIGSTOP);
	t0 = now_mono_ms();
	T_EQ_INT(rds_cmd(p, NULL, "SET rds_t:y 1"), -ERR_TIMEDOUT);
	dt = now_mono_ms() - t0;
	T_ASSERT(dt >= 150 && dt < 1000);
	kill(s.pid, SIGCONT);
	T_OK(rds_ping(p, 1000));
	rds_pool_free(p);
	rds_t_stop(&s);
}

static void *
rds_t_stalled_fn(void *arg)
{
	int rv = rds_cmd(arg, NULL, "SET rds_t:z 1");

	return (void *)(intptr_t)rv;
}

static void
test_rds_pool_busy(void)
{
	struct rds_t_srv s;
	struct rds_pool *p = NULL;
	pthread_t        th;
	void            *res;

	/* The only connection is stuck in a stalled command: others wait
	 * for it no longer than they were told to. */
	rds_t_start(&s, 0, NULL);
	T_OK(rds_pool_new(s.url, 1, 400, &p));
	T_OK(rds_ping(p, 400));
	kill(s.pid, SIGSTOP);
	T_OK(pthread_create(&th, NULL, rds_t_stalled_fn, p));
	usleep(50000);
	T_EQ_INT(rds_ping(p, 50), -ERR_BUSY);
	pthread_join(th, &res);
	T_EQ_INT((intptr_t)res, -ERR_TIMEDOUT);
	kill(s.pid, SIGCONT);
	T_OK(rds_ping(p, 400));
	rds_pool_free(p);
	rds_t_stop(&s);
}

static void
test_rds_auth(void)
{
	struct rds_t_srv s;
	struct rds_pool *p = NULL;
	char             url[160];

	rds_t_start(&s, 0, "s3cr@t");
	snprintf(url, sizeof(url), "redis://:s3cr@t@127.0.0.1:%d/2", s.port);
	T_OK(rds_pool_new(url, 1, 500, &p));
	T_OK(rds_ping(p, 500));
	T_OK(rds_cmd(p, NULL, "SET rds_t:a 1"));
	rds_pool_free(p);

	snprintf(url, sizeof(url), "redis://:wrong@127.0.0.1:%d", s.port);
	T_OK(rds_pool_new(url, 1, 500, &p));
	T_EQ_INT(rds_ping(p, 500), -ERR_AUTH);
	rds_pool_free(p);

	T_OK(rds_pool_new(s.url, 1, 500, &p)); /* no password */
	T_EQ_INT(rds_ping(p, 500), -ERR_AUTH);
	rds_pool_free(p);
	rds_t_stop(&s);
}

static void
test_rds_err_map(void)
{
	redisContext c;

	memset(&c, 0, sizeof(c));
	T_EQ_INT(err_from_rds(NULL), -ERR_NOMEM);
	T_EQ_INT(err_from_rds(&c), 0);
	c.err = REDIS_ERR_IO;
	snprintf(
	    c.errstr, sizeof(c.errstr), "Resource temporarily unavailable");
	T_EQ_INT(err_from_rds(&c), -ERR_TIMEDOUT);
	snprintf(c.errstr, sizeof(c.errstr), "Connection refused");
	T_EQ_INT(err_from_rds(&c), -ERR_REDIS);
	c.err = REDIS_ERR_EOF;
	T_EQ_INT(err_from_rds(&c), -ERR_REDIS);
	c.err = REDIS_ERR_OOM;
	T_EQ_INT(err_from_rds(&c), -ERR_NOMEM);
}

T_MAIN(T_CASE(test_rds_err_map), T_CASE(test_rds_url_rejected),
    T_CASE(test_rds_ping_set_get), T_CASE(test_rds_reply_cap),
    T_CASE(test_rds_script), T_CASE(test_rds_script_pipeline),
    T_CASE(test_rds_pool_concurrent), T_CASE(test_rds_server_killed_restarted),
    T_CASE(test_rds_server_stalled_timeout), T_CASE(test_rds_pool_busy),
    T_CASE(test_rds_auth))
