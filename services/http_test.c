/*
 * http_test.c: the health listener over real sockets: /healthz, /readyz
 * with a check that fails and recovers, draining, /metrics through
 * promtool, 404, 405 and an extra route with a body.
 */
#include <sys/wait.h>

#include <curl/curl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

#include "err.h"
#include "http.h"
#include "metrics.h"
#include "t.h"

struct tst_reply {
	long       status;
	char       ctype[128];
	struct buf body;
};

static size_t
tst_write_cb(char *p, size_t size, size_t n, void *arg)
{
	struct tst_reply *r = arg;

	if (buf_add(&r->body, p, size * n) != 0)
		return 0;
	return size * n;
}

/* One request to 127.0.0.1:port; body NULL for no request body. */
static void
tst_req(int port, const char *method, const char *path, const char *body,
    struct tst_reply *r)
{
	CURL *c = curl_easy_init();
	char  url[128];
	char *ct = NULL;

	T_ASSERT(c != NULL);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
	buf_init(&r->body, 1 << 20);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, tst_write_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
	if (body != NULL)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	T_EQ_INT(curl_easy_perform(c), CURLE_OK);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
	snprintf(r->ctype, sizeof(r->ctype), "%s", ct ? ct : "");
	curl_easy_cleanup(c);
}

static atomic_int tst_dep_up = 1;

static int
tst_check_cb(void *arg, int timeout_ms, struct buf *detail)
{
	(void)arg;
	T_ASSERT(timeout_ms == 200);
	if (atomic_load(&tst_dep_up))
		return 0;
	(void)!buf_addstr(detail, "connection \"refused\"");
	return -ERR_UNAVAIL;
}

static int
tst_echo_cb(void *arg, const struct http_req *req, struct http_resp *resp)
{
	const char *q = http_req_arg(req, "q");

	(void)arg;
	resp->status = 201;
	resp->ctype = "text/plain";
	return buf_addf(
	    &resp->body, "%s:%s:%s", req->method, q ? q : "", req->body);
}

/* Polls /readyz until it answers want (within 3 s); returns the status. */
static long
tst_wait_ready(int port, long want, struct tst_reply *r)
{
	int i;

	for (i = 0; i < 60; i++) {
		tst_req(port, "GET", "/readyz", NULL, r);
		if (r->status == want)
			return r->status;
		buf_release(&r->body);
		usleep(50 * 1000);
	}
	return r->status;
}

static struct http_srv *
tst_start(void)
{
	struct http_opts opts = {.check_period_ms = 50, .body_max = 1024};
	struct http_srv *s = NULL;

	T_OK(http_srv_new("testsvc", "127.0.0.1:0", &opts, &s));
	T_OK(http_add_check(s, "postgres", tst_check_cb, NULL, 200));
	T_OK(http_add_route(s, "POST", "/echo", tst_echo_cb, NULL));
	T_EQ_INT(http_add_route(s, "GET", "/metrics", tst_echo_cb, NULL),
	    -ERR_EXISTS);
	T_EQ_INT(http_srv_port(s), 0);
	T_OK(http_srv_start(s));
	T_ASSERT(http_srv_port(s) > 0);
	T_EQ_INT(http_add_check(s, "late", tst_check_cb, NULL, 1), -ERR_BUSY);
	return s;
}

static void
test_http_health_and_ready(void)
{
	struct http_srv *s = tst_start();
	struct tst_reply r;
	int              port = http_srv_port(s);

	tst_req(port, "GET", "/healthz", NULL, &r);
	T_EQ_INT(r.status, 200);
	T_EQ_STR(
	    buf_str(&r.body), "{\"status\":\"ok\",\"service\":\"testsvc\"}");
	T_EQ_STR(r.ctype, "application/json");
	buf_release(&r.body);

	T_EQ_INT(tst_wait_ready(port, 200, &r), 200);
	T_ASSERT(strstr(buf_str(&r.body),
	             "{\"status\":\"ready\",\"checks\":{"
	             "\"postgres\":{\"ok\":true,\"ms\":") == buf_str(&r.body));
	buf_release(&r.body);

	atomic_store(&tst_dep_up, 0);
	T_EQ_INT(tst_wait_ready(port, 503, &r), 503);
	T_ASSERT(strstr(buf_str(&r.body), "\"status\":\"not_ready\"") != NULL);
	T_ASSERT(strstr(buf_str(&r.body), "\"ok\":false") != NULL);
	T_ASSERT(strstr(buf_str(&r.body),
	             "\"detail\":\"connection \\\"refused\\\"\"") != NULL);
	buf_release(&r.body);

	atomic_store(&tst_dep_up, 1);
	T_EQ_INT(tst_wait_ready(port, 200, &r), 200);
	buf_release(&r.body);

	http_srv_set_draining(s, true);
	tst_req(port, "GET", "/healthz", NULL, &r);
	T_EQ_INT(r.status, 200);
	T_ASSERT(strstr(buf_str(&r.body), "\"draining\"") != NULL);
	buf_release(&r.body);
	tst_req(port, "GET", "/readyz", NULL, &r);
	T_EQ_INT(r.status, 503);
	T_ASSERT(strstr(buf_str(&r.body), "\"status\":\"draining\"") != NULL);
	buf_release(&r.body);
	http_srv_free(s);
}

static void
test_http_errors_and_routes(void)
{
	struct http_srv *s = tst_start();
	struct tst_reply r;
	int              port = http_srv_port(s);
	char             big[2048];

	tst_req(port, "GET", "/nope", NULL, &r);
	T_EQ_INT(r.status, 404);
	T_EQ_STR(buf_str(&r.body), "{\"error\":\"not found\"}");
	buf_release(&r.body);
	tst_req(port, "POST", "/healthz", "x", &r);
	T_EQ_INT(r.status, 405);
	buf_release(&r.body);
	tst_req(port, "DELETE", "/metrics", NULL, &r);
	T_EQ_INT(r.status, 405);
	buf_release(&r.body);
	tst_req(port, "GET", "/echo", NULL, &r);
	T_EQ_INT(r.status, 405);
	buf_release(&r.body);
	tst_req(port, "POST", "/echo?q=1", "hello", &r);
	T_EQ_INT(r.status, 201);
	T_EQ_STR(buf_str(&r.body), "POST:1:hello");
	T_EQ_STR(r.ctype, "text/plain");
	buf_release(&r.body);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	tst_req(port, "POST", "/echo", big, &r);
	T_EQ_INT(r.status, 413);
	buf_release(&r.body);
	http_srv_free(s);
}

static void
test_http_metrics_promtool(void)
{
	struct http_srv *s = tst_start();
	struct tst_reply r;
	char             path[64], line[256];
	FILE            *f;
	int              st;

	met_counter_inc(met_counter_new(
	    metrics_default(), "sub2api_http_test_total", "Test counter."));
	tst_req(http_srv_port(s), "GET", "/metrics", NULL, &r);
	http_srv_free(s);
	T_EQ_INT(r.status, 200);
	T_ASSERT(strncmp(r.ctype, "text/plain; version=0.0.4", 25) == 0);
	T_ASSERT(
	    strstr(buf_str(&r.body), "sub2api_http_test_total 1\n") != NULL);
	T_ASSERT(strstr(buf_str(&r.body), "process_open_fds ") != NULL);
	if (access("/usr/bin/promtool", X_OK) != 0) {
		buf_release(&r.body);
		T_SKIP("/usr/bin/promtool not installed");
	}
	snprintf(path, sizeof(path), "/tmp/http_test.%d.txt", (int)getpid());
	f = fopen(path, "w");
	T_ASSERT(f != NULL);
	fputs(buf_str(&r.body), f);
	fclose(f);
	buf_release(&r.body);
	snprintf(line, sizeof(line),
	    "/usr/bin/promtool check metrics < %s 2>&1", path);
	f = popen(line, "r");
	T_ASSERT(f != NULL);
	while (fgets(line, sizeof(line), f) != NULL)
		printf("  promtool: %s", line);
	st = pclose(f);
	unlink(path);
	T_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void
test_http_bad_addr(void)
{
	struct http_srv *s = NULL, *t = NULL;
	char             addr[32];

	T_EQ_INT(http_srv_new("x", "nohost", NULL, &s), -ERR_INVAL);
	T_EQ_INT(http_srv_new("x", "1.2.3.4:99999", NULL, &s), -ERR_INVAL);
	T_OK(http_srv_new("x", "127.0.0.1:0", NULL, &s));
	T_OK(http_srv_start(s));
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", http_srv_port(s));
	T_OK(http_srv_new("y", addr, NULL, &t));
	T_EQ_INT(http_srv_start(t), -ERR_IO);
	http_srv_free(t);
	http_srv_free(s);
	http_srv_free(NULL);
}

T_MAIN(T_CASE(test_http_health_and_ready), T_CASE(test_http_errors_and_routes),
    T_CASE(test_http_metrics_promtool), T_CASE(test_http_bad_addr))
