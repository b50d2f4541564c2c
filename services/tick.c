/*
 * tick.c: periodic jobs (see tick.h).  The wait uses CLOCK_MONOTONIC so a
 * wall-clock jump neither stalls nor floods a job.
 */
#include "tick.h"

#include <errno.h>
#include <time.h>

#include "err.h"
#include "log.h"

static void *
tick_main(void *arg)
{
	struct tick    *t = arg;
	struct timespec ts;
	int64_t         next;

	pthread_mutex_lock(&t->mu);
	while (!t->stop) {
		pthread_mutex_unlock(&t->mu);
		next = now_mono_ms() + t->period_ms;
		t->fn(t->arg);
		pthread_mutex_lock(&t->mu);
		ts.tv_sec = next / 1000;
		ts.tv_nsec = (next % 1000) * 1000000;
		while (!t->stop && now_mono_ms() < next) {
			if (pthread_cond_timedwait(&t->cv, &t->mu, &ts) ==
			    ETIMEDOUT)
				break;
		}
	}
	pthread_mutex_unlock(&t->mu);
	return NULL;
}

int
tick_start(
    struct tick *t, const char *name, int64_t period_ms, tick_fn fn, void *arg)
{
	pthread_condattr_t ca;

	if (period_ms < 1 || fn == NULL)
		return -ERR_INVAL;
	memset(t, 0, sizeof(*t));
	t->fn = fn;
	t->arg = arg;
	t->period_ms = period_ms;
	t->name = name;
	pthread_mutex_init(&t->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&t->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&t->thr, NULL, tick_main, t) != 0) {
		pthread_cond_destroy(&t->cv);
		pthread_mutex_destroy(&t->mu);
		return -ERR_NOMEM;
	}
	t->running = true;
	return 0;
}

void
tick_stop(struct tick *t)
{
	if (!t->running)
		return;
	pthread_mutex_lock(&t->mu);
	t->stop = true;
	pthread_cond_signal(&t->cv);
	pthread_mutex_unlock(&t->mu);
	pthread_join(t->thr, NULL);
	pthread_cond_destroy(&t->cv);
	pthread_mutex_destroy(&t->mu);
	t->running = false;
	log_debug("tick.stopped", LOG_STR("job", t->name));
}
