/*
 * tick.h: a periodic job on its own thread.
 *
 * For the few background duties of a service that run on a clock
 * (heartbeats, readiness pings, metric snapshots): fn(arg) runs every
 * period_ms, measured from the start of the previous run, on a dedicated
 * thread.  tick_stop() wakes the thread at once (it never waits out a
 * period) and returns after the current run, if any, has finished.
 */
#ifndef TICK_H
#define TICK_H

#include <pthread.h>

#include "compat.h"

typedef void (*tick_fn)(void *arg);

struct tick {
	pthread_t       thr;
	pthread_mutex_t mu;
	pthread_cond_t  cv;
	tick_fn         fn;
	void           *arg;
	int64_t         period_ms;
	bool            stop;
	bool            running;
	const char     *name; /* static, for logs */
};

/*
 * Starts calling fn(arg) every period_ms (>= 1); the first call happens at
 * once.  t is owned by the caller and must stay put until tick_stop().
 * 0 or -ERR_NOMEM/-ERR_INVAL.
 */
int tick_start(struct tick *t, const char *name, int64_t period_ms, tick_fn fn,
    void *arg) WARN_UNUSED;

/* Stops and joins the thread; idempotent, legal on a zeroed struct. */
void tick_stop(struct tick *t);

#endif /* TICK_H */
