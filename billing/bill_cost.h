/*
 * bill_cost.h: exact cost of one request from its prices and buckets.
 *
 * No floating point touches money.  Prices are integers of 1e-27 USD per
 * token (bill_price.h); a bucket's exact cost, tokens x price, is formed
 * in 128 bits (at most 1e8 tokens x 1e30 units < 2^127) and rounded once
 * to the cost unit, 1e-10 USD, which is the scale of usage_logs'
 * numeric(20,10) columns.
 *
 * The rounding rule, written down once:
 *  - each of the five buckets is rounded half up (half away from zero;
 *    costs are never negative) to 1e-10 USD;
 *  - cache_creation (the usage_logs column) = cache_5m + cache_1h, and
 *    total = the sum of the five rounded buckets, so a row adds up
 *    exactly;
 *  - actual = total x multiplier, rounded half up to 1e-10 USD, with the
 *    multiplier an exact integer of millionths (1.5 -> 1500000).
 * A multiplier of 0 is legal (free groups) and gives actual 0.
 *
 * The long-context tier applies to the whole request when the model has
 * one and its prompt (input + cache writes + cache reads) is above
 * BILL_LONG_THRESHOLD tokens, as Anthropic and Google bill it.
 */
#ifndef BILL_COST_H
#define BILL_COST_H

#include "bill_price.h"
#include "bill_usage.h"
#include "compat.h"

#define BILL_COST_SCALE   10      /* a cost unit is 1e-10 USD */
#define BILL_MULT_ONE     1000000 /* multiplier 1.0 in millionths */
#define BILL_MULT_MAX     (1000LL * BILL_MULT_ONE)
#define BILL_COST_STR_MAX 32 /* bill_cost_fmt() output with its NUL */

/* Costs in 1e-10 USD. */
struct bill_cost {
	int64_t input;
	int64_t output;
	int64_t cache_5m;
	int64_t cache_1h;
	int64_t cache_read;
	int64_t cache_creation; /* cache_5m + cache_1h */
	int64_t total;          /* the five buckets */
	int64_t actual;         /* total x multiplier */
	int64_t multiplier;     /* millionths, as given */
	bool    long_ctx;       /* the long tier was used */
};

/*
 * Prices u (borrowed) with p (borrowed) and the multiplier mult (in
 * millionths, 0..BILL_MULT_MAX) into *out.  -ERR_INVAL for a bucket
 * outside [0, BILL_USAGE_MAX] or a bad multiplier, -ERR_TOOBIG if a cost
 * would not fit int64 (not reachable with prices bill_price accepts).
 */
int bill_cost_compute(const struct bill_price *p, const struct bill_usage *u,
    int64_t mult, struct bill_cost *out) WARN_UNUSED;

/*
 * Writes units (1e-10 USD) as an exact decimal with 10 fraction digits,
 * "12.3456789012", "-0.0000000001", into buf of cap bytes (at least
 * BILL_COST_STR_MAX).  Returns buf.
 */
char *bill_cost_fmt(int64_t units, char *buf, size_t cap);

#endif /* BILL_COST_H */
