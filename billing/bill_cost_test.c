/*
 * bill_cost_test.c: the golden table of priced requests, worked out by
 * hand, then rounding, bounds and the decimal format.
 *
 * Every golden case goes the whole way: the model name through the fuzzy
 * lookup of the bundled billing/prices.json, the provider's raw usage
 * through bill_usage_normalize(), then bill_cost_compute().  Prices in
 * the comments are USD per token; a cost unit is 1e-10 USD, rounded half
 * up per bucket; total is the sum of the rounded buckets.
 */
#include <stdio.h>

#include "bill_cost.h"
#include "bill_price.h"
#include "bill_usage.h"
#include "err.h"
#include "t.h"

#define A  BILL_PROV_ANTHROPIC
#define O  BILL_PROV_OPENAI
#define G  BILL_PROV_GEMINI
#define X1 BILL_MULT_ONE

/* raw: input, output, reasoning, cache_creation, 5m, 1h, cache_read */
struct golden {
	const char           *model;
	enum bill_provider    prov;
	struct bill_usage_raw raw;
	int64_t               mult;
	const char           *in, *out, *cc, *cr, *total, *actual;
	bool                  long_ctx;
};

static const struct golden golden[] = {
    /* 1. in 1000 x 0.000003 = 0.003; out 500 x 0.000015 = 0.0075;
     *    total 0.0105 */
    {"claude-sonnet-4-5", A, {1000, 500, 0, 0, 0, 0, 0}, X1, "0.0030000000",
        "0.0075000000", "0.0000000000", "0.0000000000", "0.0105000000",
        "0.0105000000", false},
    /* 2. unsplit creation counts as 5m: 2000 x 0.00000375 = 0.0075;
     *    in 100 x 0.000003 = 0.0003; out 50 x 0.000015 = 0.00075;
     *    read 10000 x 0.0000003 = 0.003; total 0.01155 */
    {"claude-sonnet-4-5-20250929", A, {100, 50, 0, 2000, 0, 0, 10000}, X1,
        "0.0003000000", "0.0007500000", "0.0075000000", "0.0030000000",
        "0.0115500000", "0.0115500000", false},
    /* 3. 5m 1000 x 0.00000375 = 0.00375; 1h 1000 x 0.000006 = 0.006;
     *    cc 0.00975; in 10 x 0.000003 = 0.00003; out 20 x 0.000015 =
     *    0.0003; total 0.01008 */
    {"claude-sonnet-4-5", A, {10, 20, 0, 2000, 1000, 1000, 0}, X1,
        "0.0000300000", "0.0003000000", "0.0097500000", "0.0000000000",
        "0.0100800000", "0.0100800000", false},
    /* 4. prompt 150000 + 60000 = 210000 > 200k: long tier for all;
     *    in 150000 x 0.000006 = 0.9; read 60000 x 0.0000006 = 0.036;
     *    out 1000 x 0.0000225 = 0.0225; total 0.9585 */
    {"claude-sonnet-4-5", A, {150000, 1000, 0, 0, 0, 0, 60000}, X1,
        "0.9000000000", "0.0225000000", "0.0000000000", "0.0360000000",
        "0.9585000000", "0.9585000000", true},
    /* 5. prompt exactly 200000: base tier; in 200000 x 0.000003 = 0.6;
     *    out 100 x 0.000015 = 0.0015; total 0.6015 */
    {"claude-sonnet-4-5", A, {200000, 100, 0, 0, 0, 0, 0}, X1, "0.6000000000",
        "0.0015000000", "0.0000000000", "0.0000000000", "0.6015000000",
        "0.6015000000", false},
    /* 6. prompt 200001: long; in 200001 x 0.000006 = 1.200006;
     *    out 100 x 0.0000225 = 0.00225; total 1.202256 */
    {"claude-sonnet-4-5", A, {200001, 100, 0, 0, 0, 0, 0}, X1, "1.2000060000",
        "0.0022500000", "0.0000000000", "0.0000000000", "1.2022560000",
        "1.2022560000", true},
    /* 7. long 1h write: 250000 x 0.000012 = 3.0; in 1000 x 0.000006 =
     *    0.006; total 3.006 */
    {"claude-sonnet-4-5", A, {1000, 0, 0, 250000, 0, 250000, 0}, X1,
        "0.0060000000", "0.0000000000", "3.0000000000", "0.0000000000",
        "3.0060000000", "3.0060000000", true},
    /* 8. in 1000 x 0.000005 = 0.005; out 1000 x 0.000025 = 0.025;
     *    total 0.03; x1.5 = 0.045 */
    {"claude-opus-4-5", A, {1000, 1000, 0, 0, 0, 0, 0}, 1500000, "0.0050000000",
        "0.0250000000", "0.0000000000", "0.0000000000", "0.0300000000",
        "0.0450000000", false},
    /* 9. 1h 1000 x 0.00003 = 0.03; in 1 x 0.000015 = 0.000015;
     *    total 0.030015; x0.8 = 0.024012 */
    {"claude-opus-4-1", A, {1, 0, 0, 1000, 0, 1000, 0}, 800000, "0.0000150000",
        "0.0000000000", "0.0300000000", "0.0000000000", "0.0300150000",
        "0.0240120000", false},
    /* 10. in 1 x 0.000001; out 1 x 0.000005; total 0.000006; x0 = 0 */
    {"claude-haiku-4-5", A, {1, 1, 0, 0, 0, 0, 0}, 0, "0.0000010000",
        "0.0000050000", "0.0000000000", "0.0000000000", "0.0000060000",
        "0.0000000000", false},
    /* 11. in 12345 x 0.0000008 = 0.009876; out 678 x 0.000004 =
     *     0.002712; read 9999 x 0.00000008 = 0.00079992;
     *     total 0.01338792 */
    {"claude-3-5-haiku-20241022", A, {12345, 678, 0, 0, 0, 0, 9999}, X1,
        "0.0098760000", "0.0027120000", "0.0000000000", "0.0007999200",
        "0.0133879200", "0.0133879200", false},
    /* 12. in 7 x 0.00000025 = 0.00000175; out 3 x 0.00000125 =
     *     0.00000375; total 0.0000055 */
    {"claude-3-haiku-20240307", A, {7, 3, 0, 0, 0, 0, 0}, X1, "0.0000017500",
        "0.0000037500", "0.0000000000", "0.0000000000", "0.0000055000",
        "0.0000055000", false},
    /* 13. read 1 x 0.00000001875 = 187.5e-10 -> half up 188e-10 */
    {"gemini-2.0-flash-lite", G, {1, 0, 0, 0, 0, 0, 1}, X1, "0.0000000000",
        "0.0000000000", "0.0000000000", "0.0000000188", "0.0000000188",
        "0.0000000188", false},
    /* 14. prompt 3 incl. 1 cached: in 2 x 0.000000075 = 0.00000015;
     *     read 188e-10 (as 13); out 1 x 0.0000003 = 0.0000003;
     *     total 0.0000004688 */
    {"gemini-2.0-flash-lite", G, {3, 1, 0, 0, 0, 0, 1}, X1, "0.0000001500",
        "0.0000003000", "0.0000000000", "0.0000000188", "0.0000004688",
        "0.0000004688", false},
    /* 15. billed in 10000 - 4000 = 6000 x 0.00000125 = 0.0075;
     *     read 4000 x 0.000000125 = 0.0005; out 2000 x 0.00001 = 0.02;
     *     total 0.028 */
    {"gpt-5", O, {10000, 2000, 0, 0, 0, 0, 4000}, X1, "0.0075000000",
        "0.0200000000", "0.0000000000", "0.0005000000", "0.0280000000",
        "0.0280000000", false},
    /* 16. cached 150 > input 100: billed input 0 (never negative);
     *     read 150 x 0.000000125 = 0.00001875 */
    {"gpt-5-2025-08-07", O, {100, 0, 0, 0, 0, 0, 150}, X1, "0.0000000000",
        "0.0000000000", "0.0000000000", "0.0000187500", "0.0000187500",
        "0.0000187500", false},
    /* 17. in 1e6 x 0.00000025 = 0.25; out 1e6 x 0.000002 = 2;
     *     total 2.25; x2 = 4.5 */
    {"gpt-5-mini", O, {1000000, 1000000, 0, 0, 0, 0, 0}, 2000000,
        "0.2500000000", "2.0000000000", "0.0000000000", "0.0000000000",
        "2.2500000000", "4.5000000000", false},
    /* 18. in 123 - 23 = 100 x 0.00000005 = 0.000005; read 23 x
     *     0.000000005 = 0.000000115; out 456 x 0.0000004 = 0.0001824;
     *     total 0.000187515 */
    {"gpt-5-nano", O, {123, 456, 0, 0, 0, 0, 23}, X1, "0.0000050000",
        "0.0001824000", "0.0000000000", "0.0000001150", "0.0001875150",
        "0.0001875150", false},
    /* 19. in 50000 - 40000 = 10000 x 0.00000125 = 0.0125; read 40000 x
     *     0.000000125 = 0.005; out 3000 x 0.00001 = 0.03; total 0.0475 */
    {"gpt-5-codex", O, {50000, 3000, 0, 0, 0, 0, 40000}, X1, "0.0125000000",
        "0.0300000000", "0.0000000000", "0.0050000000", "0.0475000000",
        "0.0475000000", false},
    /* 20. in 500 x 0.00000175 = 0.000875; read 500 x 0.000000175 =
     *     0.0000875; out 1000 x 0.000014 = 0.014; total 0.0149625 */
    {"gpt-5.2", O, {1000, 1000, 0, 0, 0, 0, 500}, X1, "0.0008750000",
        "0.0140000000", "0.0000000000", "0.0000875000", "0.0149625000",
        "0.0149625000", false},
    /* 21. gpt-4.1 has no long tier: in 300000 x 0.000002 = 0.6;
     *     out 1000 x 0.000008 = 0.008; total 0.608 */
    {"gpt-4.1", O, {300000, 1000, 0, 0, 0, 0, 0}, X1, "0.6000000000",
        "0.0080000000", "0.0000000000", "0.0000000000", "0.6080000000",
        "0.6080000000", false},
    /* 22. all 1000 input tokens cached: in 0; read 1000 x 0.00000125 =
     *     0.00125 */
    {"gpt-4o", O, {1000, 0, 0, 0, 0, 0, 1000}, X1, "0.0000000000",
        "0.0000000000", "0.0000000000", "0.0012500000", "0.0012500000",
        "0.0012500000", false},
    /* 23. in 1e6 x 0.00000015 = 0.15; out 1e6 x 0.0000006 = 0.6;
     *     total 0.75; x1.25 = 0.9375 */
    {"gpt-4o-mini", O, {1000000, 1000000, 0, 0, 0, 0, 0}, 1250000,
        "0.1500000000", "0.6000000000", "0.0000000000", "0.0000000000",
        "0.7500000000", "0.9375000000", false},
    /* 24. in 1000 x 0.000002 = 0.002; read 1000 x 0.0000005 = 0.0005;
     *     out 5000 x 0.000008 = 0.04 (reasoning inside); total 0.0425 */
    {"o3", O, {2000, 5000, 4000, 0, 0, 0, 1000}, X1, "0.0020000000",
        "0.0400000000", "0.0000000000", "0.0005000000", "0.0425000000",
        "0.0425000000", false},
    /* 25. in 1 x 0.0000011; out 1 x 0.0000044; total 0.0000055 */
    {"o4-mini-2025-04-16", O, {1, 1, 0, 0, 0, 0, 0}, X1, "0.0000011000",
        "0.0000044000", "0.0000000000", "0.0000000000", "0.0000055000",
        "0.0000055000", false},
    /* 26. in 1000 x 0.00015 = 0.15; out 1000 x 0.0006 = 0.6;
     *     total 0.75 */
    {"o1-pro", O, {1000, 1000, 0, 0, 0, 0, 0}, X1, "0.1500000000",
        "0.6000000000", "0.0000000000", "0.0000000000", "0.7500000000",
        "0.7500000000", false},
    /* 27. prompt 100000 incl. 20000 cached: in 80000 x 0.00000125 = 0.1;
     *     read 20000 x 0.000000125 = 0.0025; out 5000 x 0.00001 = 0.05;
     *     total 0.1525 */
    {"models/gemini-2.5-pro", G, {100000, 5000, 0, 0, 0, 0, 20000}, X1,
        "0.1000000000", "0.0500000000", "0.0000000000", "0.0025000000",
        "0.1525000000", "0.1525000000", false},
    /* 28. prompt 250000 > 200k: long; in 200000 x 0.0000025 = 0.5;
     *     read 50000 x 0.00000025 = 0.0125; out 10000 + 2000 thoughts =
     *     12000 x 0.000015 = 0.18; total 0.6925 */
    {"gemini-2.5-pro", G, {250000, 10000, 2000, 0, 0, 0, 50000}, X1,
        "0.5000000000", "0.1800000000", "0.0000000000", "0.0125000000",
        "0.6925000000", "0.6925000000", true},
    /* 29. in 1000 x 0.0000003 = 0.0003; out 1000 + 500 thoughts = 1500
     *     x 0.0000025 = 0.00375; total 0.00405 */
    {"gemini-2.5-flash", G, {1000, 1000, 500, 0, 0, 0, 0}, X1, "0.0003000000",
        "0.0037500000", "0.0000000000", "0.0000000000", "0.0040500000",
        "0.0040500000", false},
    /* 30. long: in 300000 x 0.000004 = 1.2; out 1000 x 0.000018 =
     *     0.018; total 1.218 */
    {"publishers/google/models/gemini-3-pro-preview", G,
        {300000, 1000, 0, 0, 0, 0, 0}, X1, "1.2000000000", "0.0180000000",
        "0.0000000000", "0.0000000000", "1.2180000000", "1.2180000000", true},
    /* 31. read 1000 x 0.00000005 = 0.00005 = 500000e-10; x1.000001 =
     *     500000.5e-10 -> half up 500001e-10 */
    {"gemini-3-flash-preview", G, {1000, 0, 0, 0, 0, 0, 1000}, 1000001,
        "0.0000000000", "0.0000000000", "0.0000000000", "0.0000500000",
        "0.0000500000", "0.0000500001", false},
    /* 32. a 4.5 spelling priced as claude-sonnet-4-5: in 1 x 0.000003;
     *     out 1 x 0.000015; total 0.000018 */
    {"Claude-Sonnet-4.5", A, {1, 1, 0, 0, 0, 0, 0}, X1, "0.0000030000",
        "0.0000150000", "0.0000000000", "0.0000000000", "0.0000180000",
        "0.0000180000", false},
    /* 33. partial split: total 3000, 5m 1000, 1h 1000: the rest counts
     *     as 5m = 2000 x 0.00000625 = 0.0125; 1h 1000 x 0.00001 = 0.01;
     *     cc 0.0225 */
    {"claude-opus-4-5-20251101", A, {0, 0, 0, 3000, 1000, 1000, 0}, X1,
        "0.0000000000", "0.0000000000", "0.0225000000", "0.0000000000",
        "0.0225000000", "0.0225000000", false},
    /* 34. in 1 x 0.00000025 = 2500e-10; x0.33333 = 833.325e-10 -> 833 */
    {"claude-3-haiku-20240307", A, {1, 0, 0, 0, 0, 0, 0}, 333330,
        "0.0000002500", "0.0000000000", "0.0000000000", "0.0000000000",
        "0.0000002500", "0.0000000833", false},
    /* 35. the biggest bucket: out 1e8 x 0.000075 = 7500; x1000 =
     *     7500000 */
    {"claude-opus-4-1-20250805", A, {0, 100000000, 0, 0, 0, 0, 0},
        BILL_MULT_MAX, "0.0000000000", "7500.0000000000", "0.0000000000",
        "0.0000000000", "7500.0000000000", "7500000.0000000000", false},
    /* 36. Bedrock-style name, base lookup: in 1000 x 0.000015 = 0.015;
     *     out 100 x 0.000075 = 0.0075; total 0.0225; x1.1 = 0.02475 */
    {"claude-opus-4-1-20250805-v1:0", A, {1000, 100, 0, 0, 0, 0, 0}, 1100000,
        "0.0150000000", "0.0075000000", "0.0000000000", "0.0000000000",
        "0.0225000000", "0.0247500000", false},
};

static void
check_str(int64_t units, const char *want, size_t i, const char *what)
{
	char got[BILL_COST_STR_MAX];

	bill_cost_fmt(units, got, sizeof(got));
	if (strcmp(got, want) != 0)
		printf(
		    "  case %zu %s: got %s want %s\n", i + 1, what, got, want);
	T_EQ_STR(got, want);
}

static void
test_golden(void)
{
	struct bill_price_tab *t = NULL;
	size_t                 i;

	T_OK(bill_price_tab_load(
	    "billing/prices.json", BILL_PRICE_FILE_MAX, &t, NULL));
	T_ASSERT(ARRAY_SIZE(golden) >= 30);
	for (i = 0; i < ARRAY_SIZE(golden); i++) {
		const struct golden    *g = &golden[i];
		struct bill_price_match m;
		struct bill_usage       u;
		struct bill_cost        c;
		const char             *why = NULL;

		T_OK(bill_price_tab_match(t, g->model, &m));
		T_OK(bill_usage_normalize(g->prov, &g->raw, &u, &why));
		T_OK(bill_cost_compute(&m.price, &u, g->mult, &c));
		check_str(c.input, g->in, i, "input");
		check_str(c.output, g->out, i, "output");
		check_str(c.cache_creation, g->cc, i, "cache_creation");
		check_str(c.cache_read, g->cr, i, "cache_read");
		check_str(c.total, g->total, i, "total");
		check_str(c.actual, g->actual, i, "actual");
		T_EQ_INT(c.long_ctx, g->long_ctx);
		/* The row adds up exactly. */
		T_EQ_INT(c.total,
		    c.input + c.output + c.cache_creation + c.cache_read);
		T_EQ_INT(c.cache_creation, c.cache_5m + c.cache_1h);
		T_EQ_INT(c.multiplier, g->mult);
	}
	bill_price_tab_unref(t);
}

/* A price of d units of 1e-27 USD per token in every slot. */
static void
flat_price(struct bill_price *p, __int128 v)
{
	size_t i, k;

	memset(p, 0, sizeof(*p));
	for (i = 0; i < BILL_TIER_N_; i++)
		for (k = 0; k < BILL_B_N_; k++)
			p->p[i][k] = v;
}

static void
test_rounding(void)
{
	struct bill_price p;
	struct bill_usage u = {.input = 1};
	struct bill_cost  c;

	/* 0.5e-10 per token: exactly half a unit rounds up. */
	flat_price(&p, (__int128)50000000000000000LL);
	T_OK(bill_cost_compute(&p, &u, BILL_MULT_ONE, &c));
	T_EQ_INT(c.input, 1);
	/* Just under half rounds down. */
	flat_price(&p, (__int128)49999999999999999LL);
	T_OK(bill_cost_compute(&p, &u, BILL_MULT_ONE, &c));
	T_EQ_INT(c.input, 0);
	/* Rounding is per bucket: 5 buckets of 0.5 each give 5, not 2.5. */
	flat_price(&p, (__int128)50000000000000000LL);
	u = (struct bill_usage){1, 1, 1, 1, 1};
	T_OK(bill_cost_compute(&p, &u, BILL_MULT_ONE, &c));
	T_EQ_INT(c.total, 5);
	/* The multiplier rounds half up too: 5 x 0.1 = 0.5 -> 1. */
	T_OK(bill_cost_compute(&p, &u, 100000, &c));
	T_EQ_INT(c.actual, 1);
	T_OK(bill_cost_compute(&p, &u, 99999, &c));
	T_EQ_INT(c.actual, 0);
}

static void
test_bounds(void)
{
	struct bill_price p;
	struct bill_usage u = {.output = BILL_USAGE_MAX};
	struct bill_cost  c = {.total = 77};

	/* The largest accepted price, 1000 USD per token. */
	flat_price(&p,
	    (__int128)BILL_PRICE_MAX_USD * 1000000000000000000LL * 1000000000);
	/* 1e8 x 1000 USD = 1e11 USD = 1e21 units: beyond int64. */
	T_EQ_INT(bill_cost_compute(&p, &u, BILL_MULT_ONE, &c), -ERR_TOOBIG);
	T_EQ_INT(c.total, 77); /* untouched on failure */
	/* 1e5 tokens x 1000 USD = 1e8 USD = 1e18 units fits; x1000 does
	 * not. */
	u.output = 100000;
	T_OK(bill_cost_compute(&p, &u, BILL_MULT_ONE, &c));
	T_EQ_INT(c.output, 1000000000000000000LL);
	T_EQ_INT(bill_cost_compute(&p, &u, BILL_MULT_MAX, &c), -ERR_TOOBIG);
	u.output = -1;
	T_EQ_INT(bill_cost_compute(&p, &u, BILL_MULT_ONE, &c), -ERR_INVAL);
	u.output = BILL_USAGE_MAX + 1;
	T_EQ_INT(bill_cost_compute(&p, &u, BILL_MULT_ONE, &c), -ERR_INVAL);
	u.output = 1;
	T_EQ_INT(bill_cost_compute(&p, &u, -1, &c), -ERR_INVAL);
	T_EQ_INT(bill_cost_compute(&p, &u, BILL_MULT_MAX + 1, &c), -ERR_INVAL);
}

static void
test_fmt(void)
{
	char b[BILL_COST_STR_MAX];

	T_EQ_STR(bill_cost_fmt(0, b, sizeof(b)), "0.0000000000");
	T_EQ_STR(bill_cost_fmt(1, b, sizeof(b)), "0.0000000001");
	T_EQ_STR(bill_cost_fmt(10000000000LL, b, sizeof(b)), "1.0000000000");
	T_EQ_STR(bill_cost_fmt(-1, b, sizeof(b)), "-0.0000000001");
	T_EQ_STR(
	    bill_cost_fmt(INT64_MAX, b, sizeof(b)), "922337203.6854775807");
	T_EQ_STR(
	    bill_cost_fmt(INT64_MIN, b, sizeof(b)), "-922337203.6854775808");
}

T_MAIN(T_CASE(test_golden), T_CASE(test_rounding), T_CASE(test_bounds),
    T_CASE(test_fmt))
