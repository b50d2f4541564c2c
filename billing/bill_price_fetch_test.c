/*
 * bill_price_fetch_test.c: the downloaded price table: sha256 file
 * parsing, swap on change, no download while the sha256 is unchanged,
 * refusal of a body that does not match its sha256 or does not parse,
 * the stored copy after a restart, the mode without a sha256 URL, and
 * the tick thread picking up a change.
 *
 * The files are served by a libmicrohttpd server inside the test, on a
 * free loopback port; nothing leaves the machine.  Tests run with cwd =
 * the repository root (billing/prices.json).
 */
#include <sys/stat.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "bill_price_fetch.h"
#include "crypto.h"
#include "err.h"
#include "log.h"
#include "t.h"

#define BUNDLED  "billing/prices.json"
#define SRV_MAX  4
#define BODY_MAX 4096

/* The test server: a few paths with a body and a hit count each. */
struct srv_file {
	char     path[64];
	char     body[BODY_MAX];
	size_t   len;
	unsigned status;
	unsigned hits;
};

static struct {
	pthread_mutex_t    mu;
	struct MHD_Daemon *d;
	uint16_t           port;
	struct srv_file    files[SRV_MAX];
} srv = {.mu = PTHREAD_MUTEX_INITIALIZER};

static const char doc_a[] = "{\"model-a\": {\"input_cost_per_token\": 1e-06,"
                            " \"output_cost_per_token\": 2e-06}}";
static const char doc_b[] = "{\"model-a\": {\"input_cost_per_token\": 1e-06,"
                            " \"output_cost_per_token\": 2e-06},"
                            " \"model-b\": {\"input_cost_per_token\": 3e-06,"
                            " \"output_cost_per_token\": 4e-06}}";

static enum MHD_Result
srv_access_cb(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_len, void **ctx)
{
	struct MHD_Response *r;
	enum MHD_Result      ret;
	unsigned             status = 404;
	char                 body[BODY_MAX];
	size_t               len = 0, i;

	(void)cls;
	(void)method;
	(void)version;
	(void)upload;
	(void)upload_len;
	(void)ctx;
	pthread_mutex_lock(&srv.mu);
	for (i = 0; i < SRV_MAX; i++) {
		if (strcmp(srv.files[i].path, url) != 0)
			continue;
		srv.files[i].hits++;
		status = srv.files[i].status;
		len = srv.files[i].len;
		memcpy(body, srv.files[i].body, len);
		break;
	}
	pthread_mutex_unlock(&srv.mu);
	r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_COPY);
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static void
srv_start(void)
{
	struct sockaddr_in          sa;
	const union MHD_DaemonInfo *info;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	srv.d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL,
	    0, NULL, NULL, srv_access_cb, NULL, MHD_OPTION_SOCK_ADDR, &sa,
	    MHD_OPTION_END);
	T_ASSERT(srv.d != NULL);
	info = MHD_get_daemon_info(srv.d, MHD_DAEMON_INFO_BIND_PORT);
	T_ASSERT(info != NULL && info->port != 0);
	srv.port = info->port;
}

static void
srv_stop(void)
{
	if (srv.d != NULL)
		MHD_stop_daemon(srv.d);
	srv.d = NULL;
	memset(srv.files, 0, sizeof(srv.files));
}

/* Serves (p, len) at path with status 200. */
static void
srv_put(const char *path, const char *p, size_t len)
{
	size_t i;

	T_ASSERT(len <= BODY_MAX);
	pthread_mutex_lock(&srv.mu);
	for (i = 0; i < SRV_MAX; i++)
		if (srv.files[i].path[0] == '\0' ||
		    strcmp(srv.files[i].path, path) == 0)
			break;
	if (i < SRV_MAX) {
		snprintf(
		    srv.files[i].path, sizeof(srv.files[i].path), "%s", path);
		memcpy(srv.files[i].body, p, len);
		srv.files[i].len = len;
		srv.files[i].status = 200;
	}
	pthread_mutex_unlock(&srv.mu);
	T_ASSERT(i < SRV_MAX);
}

static unsigned
srv_hits(const char *path)
{
	unsigned n = 0;
	size_t   i;

	pthread_mutex_lock(&srv.mu);
	for (i = 0; i < SRV_MAX; i++)
		if (strcmp(srv.files[i].path, path) == 0)
			n = srv.files[i].hits;
	pthread_mutex_unlock(&srv.mu);
	return n;
}

/* Serves doc as /p.json and its sha256 (hex + "  p.json\n") as /p.sha. */
static void
srv_put_doc(const char *doc, const char *announced)
{
	char hex[CRYPTO_SHA256_HEX_LEN + 1], line[128];

	crypto_sha256_hex(doc, strlen(doc), hex);
	snprintf(line, sizeof(line), "%s  p.json\n",
	    announced != NULL ? announced : hex);
	srv_put("/p.json", doc, strlen(doc));
	srv_put("/p.sha", line, strlen(line));
}

/* One fetcher's world: a holder on the bundled file and a fetcher. */
struct fx {
	char                 dir[64];
	char                 url[96], sha_url[96];
	struct met_registry *reg;
	struct met_counter  *ok, *failed;
	struct met_gauge    *models;
	struct bill_prices  *prices;
	struct bill_pfetch  *f;
};

static void
fx_open(struct fx *x, const char *dir, bool with_sha)
{
	struct bill_prices_cfg pc = {
	    .bundled = BUNDLED, .file_max = BILL_PRICE_FILE_MAX};
	struct bill_pfetch_cfg fc = {0};

	memset(x, 0, sizeof(*x));
	snprintf(x->dir, sizeof(x->dir), "%s", dir);
	snprintf(x->url, sizeof(x->url), "http://127.0.0.1:%u/p.json",
	    (unsigned)srv.port);
	snprintf(x->sha_url, sizeof(x->sha_url), "http://127.0.0.1:%u/p.sha",
	    (unsigned)srv.port);
	x->reg = met_registry_new(0);
	x->ok = met_counter_new(x->reg, "t_ok_total", "ok");
	x->failed = met_counter_new(x->reg, "t_failed_total", "failed");
	x->models = met_gauge_new(x->reg, "t_models", "models");
	x->prices = bill_prices_new(&pc);
	T_OK(bill_prices_reload(x->prices, NULL));
	fc.url = x->url;
	fc.sha_url = with_sha ? x->sha_url : "";
	fc.dir = x->dir;
	fc.file_max = BILL_PRICE_FILE_MAX;
	fc.check_ms = 20;
	fc.update_ms = 3600 * 1000;
	fc.timeout_ms = 5000;
	fc.ok = x->ok;
	fc.failed = x->failed;
	fc.models = x->models;
	x->f = bill_pfetch_new(x->prices, &fc);
}

static void
fx_close(struct fx *x)
{
	bill_pfetch_free(x->f);
	bill_prices_free(x->prices);
	met_registry_free(x->reg);
	x->f = NULL;
	x->prices = NULL;
	x->reg = NULL;
}

static size_t
fx_count(struct fx *x)
{
	struct bill_price_tab *t = bill_prices_get(x->prices);
	size_t                 n = bill_price_tab_count(t);

	bill_price_tab_unref(t);
	return n;
}

/* The current table pointer, for identity checks (reference dropped). */
static const void *
fx_tab(struct fx *x)
{
	struct bill_price_tab *t = bill_prices_get(x->prices);

	bill_price_tab_unref(t);
	return t;
}

/* A fresh data directory (mkdtemp), removed by tmp_rm(). */
static void
tmp_dir(char *buf, size_t cap)
{
	snprintf(buf, cap, "/tmp/bpf_test_XXXXXX");
	T_ASSERT(mkdtemp(buf) != NULL);
}

static void
tmp_rm(const char *dir)
{
	char p[128];

	snprintf(p, sizeof(p), "%s/%s", dir, BILL_PF_FILE);
	(void)unlink(p);
	(void)rmdir(dir);
}

/* The stored copy's text, NUL-terminated, into buf. */
static void
copy_text(const char *dir, char *buf, size_t cap)
{
	char   p[128];
	FILE  *fp;
	size_t n;

	snprintf(p, sizeof(p), "%s/%s", dir, BILL_PF_FILE);
	fp = fopen(p, "r");
	T_ASSERT(fp != NULL);
	n = fread(buf, 1, cap - 1, fp);
	fclose(fp);
	buf[n] = '\0';
}

static void
test_sha_parse(void)
{
	static const char hex[] = "0123456789abcdef0123456789abcdef"
	                          "0123456789abcdef0123456789abcdef";
	char              out[BILL_PF_HEX_LEN + 1], in[256], *big;

	T_OK(bill_pfetch_sha_parse(hex, strlen(hex), out));
	T_EQ_STR(out, hex);
	memset(out, 0, sizeof(out));
	T_OK(bill_pfetch_sha_parse(
	    "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF\n",
	    65, out));
	T_EQ_STR(out, hex);
	snprintf(in, sizeof(in), "  %s  model_prices.json\n", hex);
	T_OK(bill_pfetch_sha_parse(in, strlen(in), out));
	T_EQ_STR(out, hex);
	snprintf(in, sizeof(in), "%s\tx", hex);
	T_OK(bill_pfetch_sha_parse(in, strlen(in), out));
	/* Garbage, short, long, empty, a non-hex digit, glued name. */
	T_EQ_INT(
	    bill_pfetch_sha_parse("<html>404</html>", 16, out), -ERR_PROTO);
	T_EQ_INT(bill_pfetch_sha_parse(hex, 63, out), -ERR_PROTO);
	snprintf(in, sizeof(in), "%s0", hex);
	T_EQ_INT(bill_pfetch_sha_parse(in, strlen(in), out), -ERR_PROTO);
	T_EQ_INT(bill_pfetch_sha_parse("", 0, out), -ERR_PROTO);
	T_EQ_INT(bill_pfetch_sha_parse(" \n", 2, out), -ERR_PROTO);
	snprintf(in, sizeof(in), "%s", hex);
	in[10] = 'g';
	T_EQ_INT(bill_pfetch_sha_parse(in, strlen(in), out), -ERR_PROTO);
	snprintf(in, sizeof(in), "%s.json", hex);
	T_EQ_INT(bill_pfetch_sha_parse(in, strlen(in), out), -ERR_PROTO);
	/* Bounded: the text is refused before it is read. */
	big = malloc(BILL_PF_SHA_MAX + 1);
	T_ASSERT(big != NULL);
	memset(big, ' ', BILL_PF_SHA_MAX + 1);
	memcpy(big, hex, 64);
	T_EQ_INT(
	    bill_pfetch_sha_parse(big, BILL_PF_SHA_MAX + 1, out), -ERR_TOOBIG);
	T_OK(bill_pfetch_sha_parse(big, BILL_PF_SHA_MAX, out));
	free(big);
	/* A failed parse leaves out alone. */
	T_EQ_STR(out, hex);
}

/* First check downloads and swaps; a changed file swaps again. */
static void
test_swap_on_change(void)
{
	struct fx x;
	char      dir[64], sha[BILL_PF_HEX_LEN + 1], want[65], text[512];
	size_t    bundled;

	tmp_dir(dir, sizeof(dir));
	srv_start();
	srv_put_doc(doc_a, NULL);
	fx_open(&x, dir, true);
	bundled = fx_count(&x);
	T_ASSERT(bundled > 2);
	bill_pfetch_sha(x.f, sha);
	T_EQ_STR(sha, "");

	T_EQ_INT(bill_pfetch_check(x.f), 1);
	T_EQ_INT(fx_count(&x), 1);
	crypto_sha256_hex(doc_a, strlen(doc_a), want);
	bill_pfetch_sha(x.f, sha);
	T_EQ_STR(sha, want);
	copy_text(dir, text, sizeof(text));
	T_EQ_STR(text, doc_a);
	T_EQ_INT(met_counter_value(x.ok), 1);
	T_EQ_INT(met_gauge_value(x.models), 1);

	srv_put_doc(doc_b, NULL);
	T_EQ_INT(bill_pfetch_check(x.f), 1);
	T_EQ_INT(fx_count(&x), 2);
	crypto_sha256_hex(doc_b, strlen(doc_b), want);
	bill_pfetch_sha(x.f, sha);
	T_EQ_STR(sha, want);
	copy_text(dir, text, sizeof(text));
	T_EQ_STR(text, doc_b);
	T_EQ_INT(met_counter_value(x.ok), 2);
	T_EQ_INT(met_gauge_value(x.models), 2);
	T_EQ_INT(met_counter_value(x.failed), 0);
	fx_close(&x);
	srv_stop();
	tmp_rm(dir);
}

/* The same sha256: only the sha256 file is fetched, the table stays. */
static void
test_no_swap_unchanged(void)
{
	struct fx   x;
	char        dir[64];
	const void *tab;

	tmp_dir(dir, sizeof(dir));
	srv_start();
	srv_put_doc(doc_b, NULL);
	fx_open(&x, dir, true);
	T_EQ_INT(bill_pfetch_check(x.f), 1);
	T_EQ_INT(srv_hits("/p.json"), 1);
	tab = fx_tab(&x);

	T_EQ_INT(bill_pfetch_check(x.f), 0);
	T_EQ_INT(bill_pfetch_check(x.f), 0);
	T_EQ_INT(srv_hits("/p.sha"), 3);
	T_EQ_INT(srv_hits("/p.json"), 1);
	T_ASSERT(fx_tab(&x) == tab);
	T_EQ_INT(met_counter_value(x.ok), 1);
	T_EQ_INT(met_counter_value(x.failed), 0);
	fx_close(&x);
	srv_stop();
	tmp_rm(dir);
}

/* A body whose sha256 is not the announced one is refused. */
static void
test_sha_mismatch_refused(void)
{
	struct fx   x;
	char        dir[64], other[65], text[512];
	const void *tab;

	tmp_dir(dir, sizeof(dir));
	srv_start();
	srv_put_doc(doc_a, NULL);
	fx_open(&x, dir, true);
	T_EQ_INT(bill_pfetch_check(x.f), 1);
	tab = fx_tab(&x);

	/* doc_b served under another announced sha256: a tampered body. */
	crypto_sha256_hex("something else", 14, other);
	srv_put_doc(doc_b, other);
	T_EQ_INT(bill_pfetch_check(x.f), -ERR_CRYPTO);
	T_ASSERT(fx_tab(&x) == tab);
	T_EQ_INT(fx_count(&x), 1);
	copy_text(dir, text, sizeof(text));
	T_EQ_STR(text, doc_a);
	T_EQ_INT(met_counter_value(x.failed), 1);
	T_EQ_INT(met_counter_value(x.ok), 1);

	/* A garbage sha256 file is refused before any download. */
	srv_put("/p.sha", "<html>oops</html>", 17);
	T_EQ_INT(bill_pfetch_check(x.f), -ERR_PROTO);
	T_EQ_INT(srv_hits("/p.json"), 2);
	T_EQ_INT(met_counter_value(x.failed), 2);
	T_ASSERT(fx_tab(&x) == tab);
	fx_close(&x);
	srv_stop();
	tmp_rm(dir);
}

/* Bodies that do not parse or price nothing: the old table stays. */
static void
test_bad_body_refused(void)
{
	struct fx   x;
	char        dir[64], text[512];
	const void *tab;

	tmp_dir(dir, sizeof(dir));
	srv_start();
	srv_put_doc(doc_a, NULL);
	fx_open(&x, dir, true);
	T_EQ_INT(bill_pfetch_check(x.f), 1);
	tab = fx_tab(&x);

	srv_put_doc("{\"model-a\": {\"input_cost_per_token\": 1e-06,", NULL);
	T_EQ_INT(bill_pfetch_check(x.f), -ERR_PROTO);
	T_ASSERT(fx_tab(&x) == tab);
	srv_put_doc("{\"img\": {\"output_cost_per_image\": 0.04}}", NULL);
	T_EQ_INT(bill_pfetch_check(x.f), -ERR_NOTFOUND);
	T_ASSERT(fx_tab(&x) == tab);
	T_EQ_INT(fx_count(&x), 1);
	copy_text(dir, text, sizeof(text));
	T_EQ_STR(text, doc_a);
	T_EQ_INT(met_counter_value(x.failed), 2);
	T_EQ_INT(met_counter_value(x.ok), 1);
	T_EQ_INT(met_gauge_value(x.models), 1);

	/* A 404 is a failed check too. */
	srv_stop();
	srv_start();
	fx_close(&x);
	fx_open(&x, dir, true);
	T_EQ_INT(bill_pfetch_check(x.f), -ERR_UNAVAIL);
	T_EQ_INT(met_counter_value(x.failed), 1);
	fx_close(&x);
	srv_stop();
	tmp_rm(dir);
}

/* The stored copy is the table after a restart, network or not. */
static void
test_restart_uses_copy(void)
{
	struct fx               x;
	struct bill_price_stats st;
	char                    dir[64], sha[65], want[65];
	size_t                  bundled;

	tmp_dir(dir, sizeof(dir));
	srv_start();
	srv_put_doc(doc_b, NULL);
	fx_open(&x, dir, true);
	T_EQ_INT(bill_pfetch_load_local(x.f, NULL), -ERR_NOTFOUND);
	T_EQ_INT(bill_pfetch_check(x.f), 1);
	fx_close(&x);
	srv_stop();

	/* The server is gone: a new holder still gets the copy. */
	fx_open(&x, dir, true);
	bundled = fx_count(&x);
	T_ASSERT(bundled != 2);
	T_OK(bill_pfetch_load_local(x.f, &st));
	T_EQ_INT(st.loaded, 2);
	T_EQ_INT(fx_count(&x), 2);
	crypto_sha256_hex(doc_b, strlen(doc_b), want);
	bill_pfetch_sha(x.f, sha);
	T_EQ_STR(sha, want);
	T_EQ_INT(met_gauge_value(x.models), 2);
	T_EQ_INT(bill_pfetch_check(x.f), -ERR_CURL);
	T_EQ_INT(fx_count(&x), 2);
	fx_close(&x);
	tmp_rm(dir);
}

/* Without a sha256 URL the body's own sha256 is compared. */
static void
test_no_sha_url(void)
{
	struct fx   x;
	char        dir[64];
	const void *tab;

	tmp_dir(dir, sizeof(dir));
	srv_start();
	srv_put_doc(doc_a, NULL);
	fx_open(&x, dir, false);
	T_EQ_INT(bill_pfetch_check(x.f), 1);
	tab = fx_tab(&x);
	T_EQ_INT(bill_pfetch_check(x.f), 0);
	T_EQ_INT(srv_hits("/p.json"), 2);
	T_EQ_INT(srv_hits("/p.sha"), 0);
	T_ASSERT(fx_tab(&x) == tab);
	srv_put_doc(doc_b, NULL);
	T_EQ_INT(bill_pfetch_check(x.f), 1);
	T_EQ_INT(fx_count(&x), 2);
	fx_close(&x);
	srv_stop();
	tmp_rm(dir);
}

/*
 * A copy older than update_ms is downloaded again even though the sha256
 * file did not change; an identical body swaps nothing and renews the
 * copy's mtime.
 */
static void
test_stale_copy(void)
{
	struct fx              x;
	struct bill_pfetch_cfg fc = {0};
	struct bill_pfetch    *f;
	struct stat            sb;
	struct timespec old[2] = {{.tv_sec = 1000000}, {.tv_sec = 1000000}};
	char            dir[64], path[128];
	const void     *tab;

	tmp_dir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/%s", dir, BILL_PF_FILE);
	srv_start();
	srv_put_doc(doc_a, NULL);
	fx_open(&x, dir, true);
	T_EQ_INT(bill_pfetch_check(x.f), 1);
	tab = fx_tab(&x);
	T_EQ_INT(bill_pfetch_check(x.f), 0);
	T_EQ_INT(srv_hits("/p.json"), 1);

	/* Age the copy past update_ms (an hour): the body comes again. */
	T_OK(utimensat(AT_FDCWD, path, old, 0));
	T_EQ_INT(bill_pfetch_check(x.f), 0);
	T_EQ_INT(srv_hits("/p.json"), 2);
	T_ASSERT(fx_tab(&x) == tab);
	T_OK(stat(path, &sb));
	T_ASSERT(sb.st_mtim.tv_sec > 1000000);
	/* Young again: back to the sha256 file alone. */
	T_EQ_INT(bill_pfetch_check(x.f), 0);
	T_EQ_INT(srv_hits("/p.json"), 2);

	/* A fresh fetcher with no copy loaded downloads at once. */
	fc.url = x.url;
	fc.sha_url = x.sha_url;
	fc.dir = dir;
	fc.file_max = BILL_PRICE_FILE_MAX;
	fc.check_ms = 1000;
	fc.update_ms = 3600 * 1000;
	fc.timeout_ms = 5000;
	f = bill_pfetch_new(x.prices, &fc);
	T_EQ_INT(bill_pfetch_check(f), 1);
	T_EQ_INT(srv_hits("/p.json"), 3);
	bill_pfetch_free(f);
	fx_close(&x);
	srv_stop();
	tmp_rm(dir);
}

/* A token in the URLs never reaches the log, whatever fails. */
static void
test_url_not_logged(void)
{
	struct fx              x;
	struct bill_pfetch_cfg fc = {0};
	struct bill_pfetch    *f;
	char                   dir[64], url[128], sha_url[128], other[65];
	char                   logbuf[8192];
	FILE                  *fp;
	size_t                 n;

	tmp_dir(dir, sizeof(dir));
	srv_start();
	fx_open(&x, dir, true);
	snprintf(url, sizeof(url), "%s?token=hunter2", x.url);
	snprintf(sha_url, sizeof(sha_url), "%s?token=hunter2", x.sha_url);
	fc.url = url;
	fc.sha_url = sha_url;
	fc.dir = dir;
	fc.file_max = BILL_PRICE_FILE_MAX;
	fc.check_ms = 1000;
	fc.update_ms = 3600 * 1000;
	fc.timeout_ms = 5000;
	f = bill_pfetch_new(x.prices, &fc);
	fp = tmpfile();
	T_ASSERT(fp != NULL);
	log_set_fd(fileno(fp));
	/* 404, a tampered body, a body that does not parse, no server. */
	T_EQ_INT(bill_pfetch_check(f), -ERR_UNAVAIL);
	crypto_sha256_hex("x", 1, other);
	srv_put_doc(doc_a, other);
	T_EQ_INT(bill_pfetch_check(f), -ERR_CRYPTO);
	srv_put_doc("[1", NULL);
	T_EQ_INT(bill_pfetch_check(f), -ERR_PROTO);
	srv_stop();
	T_EQ_INT(bill_pfetch_check(f), -ERR_CURL);
	log_set_fd(2);
	rewind(fp);
	n = fread(logbuf, 1, sizeof(logbuf) - 1, fp);
	logbuf[n] = '\0';
	fclose(fp);
	T_ASSERT(strstr(logbuf, "bill.price_fetch_failed") != NULL);
	T_ASSERT(strstr(logbuf, "bill.price_sha_mismatch") != NULL);
	T_ASSERT(strstr(logbuf, "bill.price_fetch_refused") != NULL);
	T_ASSERT(strstr(logbuf, "hunter2") == NULL);
	T_ASSERT(strstr(logbuf, "127.0.0.1") == NULL);
	bill_pfetch_free(f);
	fx_close(&x);
	tmp_rm(dir);
}

/* A body above file_max is refused, bounded. */
static void
test_too_big(void)
{
	struct fx              x;
	struct bill_pfetch_cfg fc = {0};
	struct bill_pfetch    *f;
	char                   dir[64];

	tmp_dir(dir, sizeof(dir));
	srv_start();
	srv_put_doc(doc_b, NULL);
	fx_open(&x, dir, true);
	fc.url = x.url;
	fc.sha_url = x.sha_url;
	fc.dir = dir;
	fc.file_max = strlen(doc_b) - 1;
	fc.check_ms = 1000;
	fc.update_ms = 1000;
	fc.timeout_ms = 5000;
	f = bill_pfetch_new(x.prices, &fc);
	T_EQ_INT(bill_pfetch_check(f), -ERR_TOOBIG);
	T_ASSERT(fx_count(&x) > 2);
	bill_pfetch_free(f);
	fx_close(&x);
	srv_stop();
	tmp_rm(dir);
}

/* Polls the ok counter until it reaches n or 10 s pass. */
static bool
wait_ok(struct fx *x, uint64_t n)
{
	int64_t deadline = now_mono_ms() + 10000;

	while (met_counter_value(x->ok) < n) {
		if (now_mono_ms() > deadline)
			return false;
		usleep(5000);
	}
	return true;
}

/* The tick thread notices a change without being asked. */
static void
test_thread_picks_change(void)
{
	struct fx x;
	char      dir[64];

	tmp_dir(dir, sizeof(dir));
	srv_start();
	srv_put_doc(doc_a, NULL);
	fx_open(&x, dir, true);
	T_OK(bill_pfetch_start(x.f));
	T_ASSERT(wait_ok(&x, 1));
	T_EQ_INT(fx_count(&x), 1);
	srv_put_doc(doc_b, NULL);
	T_ASSERT(wait_ok(&x, 2));
	T_EQ_INT(fx_count(&x), 2);
	T_EQ_INT(met_gauge_value(x.models), 2);
	T_EQ_INT(met_counter_value(x.failed), 0);
	fx_close(&x);
	srv_stop();
	tmp_rm(dir);
}

T_MAIN(T_CASE(test_sha_parse), T_CASE(test_swap_on_change),
    T_CASE(test_no_swap_unchanged), T_CASE(test_sha_mismatch_refused),
    T_CASE(test_bad_body_refused), T_CASE(test_restart_uses_copy),
    T_CASE(test_no_sha_url), T_CASE(test_stale_copy),
    T_CASE(test_url_not_logged), T_CASE(test_too_big),
    T_CASE(test_thread_picks_change))
