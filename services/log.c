/*
 * log.c: JSON-line logger (contract in log.h).
 *
 * The line is formatted into a stack buffer by a tiny bounded writer, so
 * logging never allocates and never blocks on a lock; the single write(2)
 * is atomic for pipes up to PIPE_BUF and in practice for files opened with
 * O_APPEND, which is how the local stack opens its log files.
 */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static const char               *log_svc = "-";
static atomic_int                log_level_cur = LOG_INFO;
static atomic_int                log_fd = STDERR_FILENO;
static _Thread_local const char *log_req_cur;

static const char *const log_level_names[] = {"error", "warn", "info", "debug"};

struct log_w {
	char  *p;
	size_t len;
	size_t cap; /* usable bytes, keeps room for "}\n" and the trunc flag */
	bool   trunc;
};

void
log_init(const char *svc, enum log_level lvl)
{
	log_svc = svc;
	log_set_level(lvl);
}

void
log_set_level(enum log_level lvl)
{
	atomic_store(&log_level_cur, (int)lvl);
}

enum log_level
log_get_level(void)
{
	return (enum log_level)atomic_load(&log_level_cur);
}

bool
log_enabled(enum log_level lvl)
{
	return (int)lvl <= atomic_load(&log_level_cur);
}

int
log_level_parse(const char *s, enum log_level *out)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(log_level_names); i++) {
		if (strcmp(s, log_level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -2; /* -ERR_INVAL; err.h is above this module */
}

void
log_req_set(const char *req)
{
	log_req_cur = req;
}

void
log_set_fd(int fd)
{
	atomic_store(&log_fd, fd);
}

static void
log_w_raw(struct log_w *w, const char *s, size_t n)
{
	if (w->len + n > w->cap) {
		n = w->cap - w->len;
		w->trunc = true;
	}
	memcpy(w->p + w->len, s, n);
	w->len += n;
}

static void
log_w_str(struct log_w *w, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	char              esc[6];

	if (s == NULL) {
		log_w_raw(w, "null", 4);
		return;
	}
	log_w_raw(w, "\"", 1);
	for (; *s != '\0' && w->len + 8 < w->cap; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			log_w_raw(w, esc, 2);
		} else if (c < 0x20 || c == 0x7f) {
			esc[0] = '\\';
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 0xf];
			log_w_raw(w, esc, 6);
		} else {
			log_w_raw(w, (const char *)&c, 1);
		}
	}
	if (*s != '\0')
		w->trunc = true;
	log_w_raw(w, "\"", 1);
}

static void
log_w_key(struct log_w *w, const char *k)
{
	log_w_raw(w, ",", 1);
	log_w_str(w, k);
	log_w_raw(w, ":", 1);
}

static void log_w_num(struct log_w *w, const char *fmt, ...) PRINTF_LIKE(2, 3);

static void
log_w_num(struct log_w *w, const char *fmt, ...)
{
	char    tmp[48];
	va_list ap;
	int     n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		log_w_raw(w, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : 0);
}

size_t
log_format(char *out, size_t cap, enum log_level lvl, const char *ev,
    const struct log_kv *kv)
{
	struct log_w    w = {.p = out, .len = 0, .cap = cap - 16};
	struct timespec ts;
	struct tm       tm;
	char            tsbuf[96];
	bool            have_req = false;

	ASSERT(cap > 64);
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(tsbuf, sizeof(tsbuf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	    tm.tm_sec, (int)(ts.tv_nsec / 1000000));

	log_w_raw(&w, "{\"ts\":", 6);
	log_w_str(&w, tsbuf);
	log_w_key(&w, "lvl");
	log_w_str(&w, log_level_names[lvl]);
	log_w_key(&w, "svc");
	log_w_str(&w, log_svc);
	log_w_key(&w, "ev");
	log_w_str(&w, ev);
	for (; kv != NULL && kv->type != LOG_T_END; kv++) {
		if (strcmp(kv->key, "req") == 0)
			have_req = true;
		log_w_key(&w, kv->key);
		switch (kv->type) {
		case LOG_T_STR:
			log_w_str(&w, kv->v.s);
			break;
		case LOG_T_I64:
			log_w_num(&w, "%lld", (long long)kv->v.i);
			break;
		case LOG_T_U64:
			log_w_num(&w, "%llu", (unsigned long long)kv->v.u);
			break;
		case LOG_T_F64:
			log_w_num(&w, "%.6g", kv->v.d);
			break;
		case LOG_T_BOOL:
			log_w_raw(
			    &w, kv->v.b ? "true" : "false", kv->v.b ? 4 : 5);
			break;
		default:
			log_w_str(&w, "?");
			break;
		}
	}
	if (!have_req && log_req_cur != NULL) {
		log_w_key(&w, "req");
		log_w_str(&w, log_req_cur);
	}
	/* The reserved 16 bytes always fit the closing part. */
	w.cap = cap;
	if (w.trunc)
		log_w_raw(&w, ",\"trunc\":true", 13);
	log_w_raw(&w, "}\n", 2);
	return w.len;
}

void
log_emit(enum log_level lvl, const char *ev, const struct log_kv *kv)
{
	char    line[LOG_LINE_MAX];
	size_t  n;
	ssize_t w;

	n = log_format(line, sizeof(line), lvl, ev, kv);
	w = write(atomic_load(&log_fd), line, n);
	(void)w;
}

void
log_exit_fatal(void)
{
	exit(1);
}
