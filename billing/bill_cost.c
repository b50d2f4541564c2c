/*
 * bill_cost.c: exact integer cost arithmetic (see bill_cost.h for the
 * units and the rounding rule).
 */
#include "bill_cost.h"

#include <inttypes.h>
#include <stdio.h>

#include "err.h"

/* 10^(27 - 10): price units per cost unit. */
#define BC_DIV ((__int128)100000000000000000LL)

/* Rounds n / d half up for n >= 0, d > 0. */
static __int128
bc_div_half_up(__int128 n, __int128 d)
{
	return (n + d / 2) / d;
}

static int
bc_bucket(int64_t tokens, __int128 price, int64_t *out)
{
	__int128 prod, r;

	if (tokens < 0 || tokens > BILL_USAGE_MAX || price < 0)
		return -ERR_INVAL;
	if (__builtin_mul_overflow((__int128)tokens, price, &prod))
		return -ERR_TOOBIG;
	r = bc_div_half_up(prod, BC_DIV);
	if (r > INT64_MAX)
		return -ERR_TOOBIG;
	*out = (int64_t)r;
	return 0;
}

int
bill_cost_compute(const struct bill_price *p, const struct bill_usage *u,
    int64_t mult, struct bill_cost *out)
{
	const int64_t tokens[BILL_B_N_] = {
	    u->input, u->output, u->cache_5m, u->cache_1h, u->cache_read};
	int64_t          cost[BILL_B_N_];
	struct bill_cost c = {0};
	const __int128  *price;
	__int128         actual;
	size_t           i;
	int              rv;

	if (mult < 0 || mult > BILL_MULT_MAX)
		return -ERR_INVAL;
	for (i = 0; i < BILL_B_N_; i++)
		if (tokens[i] < 0 || tokens[i] > BILL_USAGE_MAX)
			return -ERR_INVAL;
	c.long_ctx = p->has_long && bill_usage_prompt(u) > BILL_LONG_THRESHOLD;
	price = p->p[c.long_ctx ? BILL_TIER_LONG : BILL_TIER_BASE];
	for (i = 0; i < BILL_B_N_; i++) {
		rv = bc_bucket(tokens[i], price[i], &cost[i]);
		if (rv != 0)
			return rv;
		if (__builtin_add_overflow(c.total, cost[i], &c.total))
			return -ERR_TOOBIG;
	}
	c.input = cost[BILL_B_INPUT];
	c.output = cost[BILL_B_OUTPUT];
	c.cache_5m = cost[BILL_B_CACHE_5M];
	c.cache_1h = cost[BILL_B_CACHE_1H];
	c.cache_read = cost[BILL_B_CACHE_READ];
	c.cache_creation = c.cache_5m + c.cache_1h; /* <= total: no overflow */
	actual = bc_div_half_up((__int128)c.total * mult, BILL_MULT_ONE);
	if (actual > INT64_MAX)
		return -ERR_TOOBIG;
	c.actual = (int64_t)actual;
	c.multiplier = mult;
	*out = c;
	return 0;
}

char *
bill_cost_fmt(int64_t units, char *buf, size_t cap)
{
	uint64_t v = units < 0 ? -(uint64_t)units : (uint64_t)units;

	ASSERT(cap >= BILL_COST_STR_MAX);
	snprintf(buf, cap, "%s%" PRIu64 ".%010" PRIu64, units < 0 ? "-" : "",
	    (uint64_t)(v / 10000000000ULL), (uint64_t)(v % 10000000000ULL));
	return buf;
}
