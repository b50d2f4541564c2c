/*
 * svc.c: the shared service life cycle (see svc.h).
 */
#include "svc.h"

#include <sys/stat.h>

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "seqtrack.h"
#include "sig.h"

int
svc_mkdirs(const char *path)
{
	char   tmp[4096];
	size_t i, n = strlen(path);

	if (n == 0 || n >= sizeof(tmp))
		return -ERR_INVAL;
	memcpy(tmp, path, n + 1);
	for (i = 1; i <= n; i++) {
		if (tmp[i] != '/' && tmp[i] != '\0')
			continue;
		tmp[i] = '\0';
		if (mkdir(tmp, 0750) != 0 && errno != EEXIST)
			return -ERR_IO;
		if (i < n)
			tmp[i] = '/';
	}
	return 0;
}

void
svc_init(struct svc *s, const char *name, const struct svc_opts *opts)
{
	enum log_level lvl = LOG_INFO;
	int            rv;

	memset(s, 0, sizeof(*s));
	/* Unless the operator chose (glibc reads MALLOC_ARENA_MAX itself). */
	if (getenv("MALLOC_ARENA_MAX") == NULL)
		(void)mallopt(M_ARENA_MAX, SVC_MALLOC_ARENAS);
	s->name = name;
	s->started_ms = now_wall_ms();
	s->drain_ms = opts->drain_ms;
	s->stuck_ms = opts->stuck_ms > 0 ? opts->stuck_ms : SVC_STUCK_MARGIN_MS;
	if (opts->log_level != NULL && log_level_parse(opts->log_level, &lvl))
		lvl = LOG_INFO;
	log_init(name, lvl);
	seqtrack_instance_id(name, s->instance, sizeof(s->instance));
	if (opts->state_dir != NULL && opts->state_dir[0] != '\0') {
		rv = svc_mkdirs(opts->state_dir);
		if (rv != 0)
			fatalx("svc.state_dir_failed",
			    LOG_STR("dir", opts->state_dir), LOG_ERR(rv));
	}
	rv = http_srv_new(name, opts->health_addr, NULL, &s->health);
	if (rv != 0)
		fatalx("svc.health_addr_invalid",
		    LOG_STR("addr", opts->health_addr), LOG_ERR(rv));
}

/*
 * Sleeps until the deadline (CLOCK_MONOTONIC ms), then ends the process:
 * its shutdown is stuck.  arg is the struct svc, read before sleeping
 * only: main() may have returned by the time the deadline comes.
 */
static void *
svc_watchdog(void *arg)
{
	const struct svc *s = arg;
	int64_t           deadline = s->stuck_at_ms, margin = s->stuck_ms;
	struct timespec   ts = {.tv_sec = (time_t)(deadline / 1000),
	      .tv_nsec = (long)(deadline % 1000) * 1000000L};

	while (
	    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
	log_error("svc.shutdown_stuck", LOG_I64("past_budget_ms", margin));
	_exit(SVC_EXIT_STUCK);
	return NULL;
}

static void
svc_watchdog_arm(struct svc *s)
{
	pthread_attr_t attr;
	pthread_t      t;

	s->stuck_at_ms = now_mono_ms() + s->drain_ms + s->stuck_ms;
	if (pthread_attr_init(&attr) != 0)
		return;
	(void)pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, svc_watchdog, s) != 0)
		log_warn("svc.watchdog_failed");
	(void)pthread_attr_destroy(&attr);
}

int
svc_serve(struct svc *s)
{
	int rv, signo = 0;

	rv = http_srv_start(s->health);
	if (rv != 0)
		fatalx("svc.health_bind_failed", LOG_ERR(rv));
	log_info("svc.started", LOG_STR("instance", s->instance),
	    LOG_I64("health_port", http_srv_port(s->health)));
	rv = sig_wait(&signo);
	if (rv != 0)
		log_warn("svc.signal_wait_failed", LOG_ERR(rv));
	s->signo = signo;
	http_srv_set_draining(s->health, true);
	log_info("svc.draining", LOG_I64("signal", signo),
	    LOG_I64("budget_ms", s->drain_ms));
	svc_watchdog_arm(s);
	return signo;
}

int
svc_set_instance(struct svc *s, const char *id)
{
	if (strlen(id) >= sizeof(s->instance))
		return -ERR_TOOBIG;
	(void)str_copy(s->instance, sizeof(s->instance), id);
	return 0;
}

void
svc_release(struct svc *s)
{
	http_srv_free(s->health);
	s->health = NULL;
	log_info(
	    "svc.stopped", LOG_I64("uptime_ms", now_wall_ms() - s->started_ms));
}

static void
svc_metric_bug(const char *name, int rv)
{
	BUG("metric %s: %s", name, err_name(rv));
}

struct met_family *
svc_family(enum met_kind kind, const char *name, const char *help,
    const char *const *labels, size_t nlabels, const double *bounds,
    size_t nbounds)
{
	struct met_family *f = NULL;
	int                rv;

	rv = met_family_new(metrics_default(), kind, name, help, labels,
	    nlabels, bounds, nbounds, &f);
	if (rv != 0)
		svc_metric_bug(name, rv);
	return f;
}

struct met_counter *
svc_counter(const char *name, const char *help)
{
	struct met_counter *c = met_counter_new(metrics_default(), name, help);

	if (c == NULL)
		svc_metric_bug(name, -ERR_INVAL);
	return c;
}

struct met_gauge *
svc_gauge(const char *name, const char *help)
{
	struct met_gauge *g = met_gauge_new(metrics_default(), name, help);

	if (g == NULL)
		svc_metric_bug(name, -ERR_INVAL);
	return g;
}
