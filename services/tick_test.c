/*
 * tick_test.c: a job runs repeatedly at its period and stops promptly.
 */
#include "t.h"

#include <stdatomic.h>

#include "err.h"
#include "tick.h"

static atomic_int tick_test_n;

static void
tick_test_fn(void *arg)
{
	(void)arg;
	atomic_fetch_add(&tick_test_n, 1);
}

static void
test_tick_runs_and_stops(void)
{
	struct tick t;
	int64_t     start, waited;

	atomic_store(&tick_test_n, 0);
	T_OK(tick_start(&t, "test", 2, tick_test_fn, NULL));
	start = now_mono_ms();
	while (atomic_load(&tick_test_n) < 20 && now_mono_ms() - start < 5000)
		;
	T_ASSERT(atomic_load(&tick_test_n) >= 20);
	tick_stop(&t);
	tick_stop(&t);
	waited = atomic_load(&tick_test_n);
	T_EQ_INT(atomic_load(&tick_test_n), waited);
}

static void
test_tick_stop_is_prompt(void)
{
	struct tick t;
	int64_t     start;

	T_OK(tick_start(&t, "slow", 60000, tick_test_fn, NULL));
	start = now_mono_ms();
	tick_stop(&t);
	T_ASSERT(now_mono_ms() - start < 1000);
}

static void
test_tick_bad_args(void)
{
	struct tick t;

	T_EQ_INT(tick_start(&t, "x", 0, tick_test_fn, NULL), -ERR_INVAL);
	memset(&t, 0, sizeof(t));
	tick_stop(&t);
}

T_MAIN(T_CASE(test_tick_runs_and_stops), T_CASE(test_tick_stop_is_prompt),
    T_CASE(test_tick_bad_args))
