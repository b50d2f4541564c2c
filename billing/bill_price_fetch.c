/*
 * bill_price_fetch.c: the downloaded price table (see bill_price_fetch.h).
 *
 * Everything after bill_pfetch_start() runs on the tick thread with
 * blocking transfers; the only state shared with other threads is the
 * current sha256 (behind mu) and the stopping flag, which the transfer's
 * progress callback polls so that bill_pfetch_free() never waits out a
 * download.
 */
#include "bill_price_fetch.h"

#include <sys/stat.h>

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "crypto.h"
#include "err.h"
#include "log.h"
#include "svc.h"
#include "tick.h"

#define BILL_PF_REDIRS 3L

struct bill_pfetch {
	struct bill_prices *prices;
	char               *url, *sha_url, *dir;
	char               *path; /* dir/BILL_PF_FILE */
	size_t              file_max;
	int64_t             check_ms, update_ms, timeout_ms;
	struct met_counter *ok, *failed;
	struct met_gauge   *models;
	struct tick         tick;
	atomic_bool         stopping;
	bool                curl_inited;
	pthread_mutex_t     mu;
	char                sha[BILL_PF_HEX_LEN + 1]; /* copy in use; "" none */
};

/* A transfer's body, capped at max bytes. */
struct bill_pf_body {
	char  *p;
	size_t len, max;
	bool   toobig;
};

static bool
bill_pf_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
	    c == '\f';
}

int
bill_pfetch_sha_parse(
    const char *text, size_t len, char out[BILL_PF_HEX_LEN + 1])
{
	uint8_t bin[BILL_PF_HEX_LEN / 2];
	size_t  i = 0, j, n;

	if (len > BILL_PF_SHA_MAX)
		return -ERR_TOOBIG;
	while (i < len && bill_pf_space(text[i]))
		i++;
	/* The first word, exactly 64 hex digits; a file name may follow. */
	for (j = i; j < len && !bill_pf_space(text[j]); j++)
		;
	if (j - i != BILL_PF_HEX_LEN ||
	    crypto_hex_decode(text + i, j - i, bin, sizeof(bin), &n) != 0 ||
	    n != sizeof(bin))
		return -ERR_PROTO;
	/* Lowercase, as this module compares digests. */
	return crypto_hex_encode(bin, n, out, BILL_PF_HEX_LEN + 1);
}

struct bill_pfetch *
bill_pfetch_new(struct bill_prices *p, const struct bill_pfetch_cfg *cfg)
{
	struct bill_pfetch *f = xcalloc(1, sizeof(*f));
	size_t              n;

	f->prices = p;
	f->url = xstrdup(cfg->url);
	f->sha_url = xstrdup(cfg->sha_url != NULL ? cfg->sha_url : "");
	f->dir = xstrdup(cfg->dir);
	n = strlen(cfg->dir) + 1 + sizeof(BILL_PF_FILE);
	f->path = xmalloc(n);
	snprintf(f->path, n, "%s/%s", cfg->dir, BILL_PF_FILE);
	f->file_max = cfg->file_max;
	f->check_ms = cfg->check_ms;
	f->update_ms = cfg->update_ms;
	f->timeout_ms = cfg->timeout_ms;
	f->ok = cfg->ok;
	f->failed = cfg->failed;
	f->models = cfg->models;
	atomic_init(&f->stopping, false);
	pthread_mutex_init(&f->mu, NULL);
	f->curl_inited = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
	return f;
}

void
bill_pfetch_sha(struct bill_pfetch *f, char out[BILL_PF_HEX_LEN + 1])
{
	pthread_mutex_lock(&f->mu);
	memcpy(out, f->sha, sizeof(f->sha));
	pthread_mutex_unlock(&f->mu);
}

static void
bill_pf_set_sha(struct bill_pfetch *f, const char *sha)
{
	pthread_mutex_lock(&f->mu);
	memcpy(f->sha, sha, sizeof(f->sha));
	pthread_mutex_unlock(&f->mu);
}

/* Reads the copy (at most file_max bytes) into *out (owned) and *len. */
static int
bill_pf_read(struct bill_pfetch *f, char **out, size_t *len)
{
	struct stat sb;
	char       *text = NULL;
	size_t      got = 0;
	ssize_t     n = 0;
	int         fd, rv;

	fd = open(f->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ERR_NOTFOUND : -ERR_IO;
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		rv = -ERR_IO;
		goto out;
	}
	if ((uint64_t)sb.st_size > f->file_max) {
		rv = -ERR_TOOBIG;
		goto out;
	}
	text = xmalloc((size_t)sb.st_size + 1);
	while (got <= (size_t)sb.st_size) {
		n = read(fd, text + got, (size_t)sb.st_size + 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (n < 0 || got > (size_t)sb.st_size) {
		rv = -ERR_IO;
		goto out;
	}
	*out = text;
	*len = got;
	text = NULL;
	rv = 0;
out:
	free(text);
	close(fd);
	return rv;
}

static void
bill_pf_swapped(struct bill_pfetch *f, struct bill_price_tab *t,
    const char *sha, const char *ev)
{
	size_t n = bill_price_tab_count(t);

	bill_prices_swap(f->prices, t);
	bill_pf_set_sha(f, sha);
	if (f->models != NULL)
		met_gauge_set(f->models, (double)n);
	log_info(ev, LOG_STR("sha256", sha), LOG_U64("models", n),
	    LOG_STR("file", f->path));
}

int
bill_pfetch_load_local(struct bill_pfetch *f, struct bill_price_stats *st)
{
	struct bill_price_tab *t = NULL;
	char                   sha[BILL_PF_HEX_LEN + 1];
	char                  *text = NULL;
	size_t                 len = 0;
	int                    rv;

	rv = bill_pf_read(f, &text, &len);
	if (rv != 0)
		return rv;
	crypto_sha256_hex(text, len, sha);
	rv = bill_price_tab_parse(text, len, f->file_max, &t, st);
	free(text);
	if (rv != 0)
		return rv;
	bill_pf_swapped(f, t, sha, "bill.prices_local_loaded");
	return 0;
}

static size_t
bill_pf_write_cb(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct bill_pf_body *b = arg;
	size_t               n = size * nmemb;

	if (n > b->max - b->len) {
		b->toobig = true;
		return 0;
	}
	b->p = xrealloc(b->p, b->len + n + 1);
	memcpy(b->p + b->len, ptr, n);
	b->len += n;
	b->p[b->len] = '\0';
	return n;
}

static int
bill_pf_progress_cb(
    void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	struct bill_pfetch *f = arg;

	(void)dt;
	(void)dn;
	(void)ut;
	(void)un;
	return atomic_load(&f->stopping) ? 1 : 0;
}

/*
 * GETs url into *b (at most max bytes; b->p owned by the caller).  Logs
 * name what ("sha256" or "table"), never the URL, which may carry a
 * token in its query or user part.
 */
static int
bill_pf_get(struct bill_pfetch *f, const char *url, const char *what,
    size_t max, struct bill_pf_body *b)
{
	CURL    *c;
	CURLcode cc;
	long     status = 0;
	int      rv;

	memset(b, 0, sizeof(*b));
	b->max = max;
	c = curl_easy_init();
	if (c == NULL)
		return -ERR_NOMEM;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "sub2api-billing");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, bill_pf_write_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)f->timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)f->timeout_ms);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, bill_pf_progress_cb);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, f);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, BILL_PF_REDIRS);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	/* A declared size above the cap fails before the body arrives. */
	curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max);
	cc = curl_easy_perform(c);
	if (b->toobig || cc == CURLE_FILESIZE_EXCEEDED)
		rv = -ERR_TOOBIG;
	else if (cc == CURLE_ABORTED_BY_CALLBACK)
		rv = -ERR_CANCELED;
	else if (cc == CURLE_OPERATION_TIMEDOUT)
		rv = -ERR_TIMEDOUT;
	else if (cc != CURLE_OK)
		rv = -ERR_CURL;
	else
		rv = 0;
	if (rv == 0) {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		if (status != 200)
			rv = -ERR_UNAVAIL;
	}
	if (rv != 0)
		log_warn("bill.price_fetch_failed", LOG_STR("what", what),
		    LOG_ERR(rv), LOG_I64("status", status),
		    LOG_STR(
		        "msg", cc != CURLE_OK ? curl_easy_strerror(cc) : ""));
	curl_easy_cleanup(c);
	return rv;
}

/* Writes all of (p, len) to fd. */
static int
bill_pf_write_all(int fd, const char *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -ERR_IO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The copy, replaced atomically: temp file, fsync, rename, fsync dir. */
static int
bill_pf_store(struct bill_pfetch *f, const char *p, size_t len)
{
	size_t n = strlen(f->dir) + sizeof("/." BILL_PF_FILE ".XXXXXX");
	char  *tmp = xmalloc(n);
	int    fd, dfd, rv;

	snprintf(tmp, n, "%s/.%s.XXXXXX", f->dir, BILL_PF_FILE);
	rv = svc_mkdirs(f->dir);
	if (rv != 0)
		goto out;
	fd = mkstemp(tmp);
	if (fd < 0) {
		rv = -ERR_IO;
		goto out;
	}
	rv = bill_pf_write_all(fd, p, len);
	if (rv == 0 && (fchmod(fd, 0640) != 0 || fsync(fd) != 0))
		rv = -ERR_IO;
	if (close(fd) != 0 && rv == 0)
		rv = -ERR_IO;
	if (rv == 0 && rename(tmp, f->path) != 0)
		rv = -ERR_IO;
	if (rv != 0) {
		(void)unlink(tmp);
		goto out;
	}
	dfd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
out:
	if (rv != 0)
		log_warn("bill.price_store_failed", LOG_STR("file", f->path),
		    LOG_ERR(rv), LOG_STR("msg", strerror(errno)));
	free(tmp);
	return rv;
}

/* True when the copy is missing or older than update_ms. */
static bool
bill_pf_stale(struct bill_pfetch *f)
{
	struct stat sb;
	int64_t     mtime_ms;

	if (stat(f->path, &sb) != 0)
		return true;
	mtime_ms =
	    (int64_t)sb.st_mtim.tv_sec * 1000 + sb.st_mtim.tv_nsec / 1000000;
	return now_wall_ms() - mtime_ms >= f->update_ms;
}

/* Validates, stores and swaps in a body whose sha256 is sha. */
static int
bill_pf_install(
    struct bill_pfetch *f, const char *p, size_t len, const char *sha)
{
	struct bill_price_tab  *t = NULL;
	struct bill_price_stats st = {0};
	int                     rv;

	rv = bill_price_tab_parse(p, len, f->file_max, &t, &st);
	if (rv != 0) {
		log_warn("bill.price_fetch_refused", LOG_STR("sha256", sha),
		    LOG_ERR(rv), LOG_U64("loaded", st.loaded),
		    LOG_U64("refused", st.refused));
		return rv;
	}
	rv = bill_pf_store(f, p, len);
	if (rv != 0) {
		bill_price_tab_unref(t);
		return rv;
	}
	bill_pf_swapped(f, t, sha, "bill.prices_fetched");
	return 1;
}

static int
bill_pf_check(struct bill_pfetch *f)
{
	struct bill_pf_body b = {0};
	char                want[BILL_PF_HEX_LEN + 1] = "";
	char                cur[BILL_PF_HEX_LEN + 1];
	char                got[BILL_PF_HEX_LEN + 1];
	bool                stale = bill_pf_stale(f);
	int                 rv;

	bill_pfetch_sha(f, cur);
	if (f->sha_url[0] != '\0') {
		rv = bill_pf_get(f, f->sha_url, "sha256", BILL_PF_SHA_MAX, &b);
		if (rv == 0)
			rv = bill_pfetch_sha_parse(
			    b.p != NULL ? b.p : "", b.len, want);
		free(b.p);
		if (rv != 0)
			return rv;
		if (!stale && strcmp(want, cur) == 0)
			return 0;
	}
	rv = bill_pf_get(f, f->url, "table", f->file_max, &b);
	if (rv != 0)
		goto out;
	crypto_sha256_hex(b.p != NULL ? b.p : "", b.len, got);
	if (want[0] != '\0' && strcmp(want, got) != 0) {
		log_warn("bill.price_sha_mismatch", LOG_STR("announced", want),
		    LOG_STR("sha256", got));
		rv = -ERR_CRYPTO;
		goto out;
	}
	if (strcmp(got, cur) == 0) {
		/* Unchanged: only the copy's age is renewed. */
		if (stale && utimensat(AT_FDCWD, f->path, NULL, 0) != 0)
			log_warn("bill.price_touch_failed",
			    LOG_STR("file", f->path));
		rv = 0;
		goto out;
	}
	rv = bill_pf_install(f, b.p != NULL ? b.p : "", b.len, got);
out:
	free(b.p);
	return rv;
}

int
bill_pfetch_check(struct bill_pfetch *f)
{
	int rv = bill_pf_check(f);

	if (rv == 1 && f->ok != NULL)
		met_counter_inc(f->ok);
	if (rv < 0 && rv != -ERR_CANCELED && f->failed != NULL)
		met_counter_inc(f->failed);
	return rv;
}

static void
bill_pf_tick_cb(void *arg)
{
	struct bill_pfetch *f = arg;
	int                 rv;

	/* Failures are logged where they happen; this is their summary. */
	rv = bill_pfetch_check(f);
	if (rv < 0)
		log_debug("bill.price_check_failed", LOG_ERR(rv));
}

int
bill_pfetch_start(struct bill_pfetch *f)
{
	return tick_start(
	    &f->tick, "price_fetch", f->check_ms, bill_pf_tick_cb, f);
}

void
bill_pfetch_free(struct bill_pfetch *f)
{
	if (f == NULL)
		return;
	atomic_store(&f->stopping, true);
	tick_stop(&f->tick);
	if (f->curl_inited)
		curl_global_cleanup();
	pthread_mutex_destroy(&f->mu);
	free(f->url);
	free(f->sha_url);
	free(f->dir);
	free(f->path);
	free(f);
}
