/*
 * bill_usage_test.c: per-provider usage normalisation and its refusals.
 */
#include "bill_usage.h"
#include "err.h"
#include "t.h"

/* raw: input, output, reasoning, cache_creation, 5m, 1h, cache_read */
struct uc {
	enum bill_provider    prov;
	struct bill_usage_raw raw;
	struct bill_usage     want; /* input, output, 5m, 1h, read */
};

static const struct uc ok_cases[] = {
    /* Anthropic: three disjoint buckets, nothing subtracted. */
    {BILL_PROV_ANTHROPIC, {100, 50, 0, 0, 0, 0, 900}, {100, 50, 0, 0, 900}},
    /* An unsplit creation total counts as 5m. */
    {BILL_PROV_ANTHROPIC, {1, 2, 0, 300, 0, 0, 0}, {1, 2, 300, 0, 0}},
    /* A full split. */
    {BILL_PROV_ANTHROPIC, {1, 2, 0, 300, 100, 200, 0}, {1, 2, 100, 200, 0}},
    /* A partial split: the unassigned rest is 5m. */
    {BILL_PROV_ANTHROPIC, {1, 2, 0, 300, 0, 200, 0}, {1, 2, 100, 200, 0}},
    {BILL_PROV_ANTHROPIC, {1, 2, 0, 300, 50, 200, 0}, {1, 2, 100, 200, 0}},
    /* Only the split reported: it is the total. */
    {BILL_PROV_ANTHROPIC, {1, 2, 0, 0, 40, 60, 0}, {1, 2, 40, 60, 0}},
    /* Anthropic reasoning is informational (inside output). */
    {BILL_PROV_ANTHROPIC, {1, 20, 999, 0, 0, 0, 0}, {1, 20, 0, 0, 0}},
    /* OpenAI: cached tokens leave the input. */
    {BILL_PROV_OPENAI, {1000, 10, 0, 0, 0, 0, 400}, {600, 10, 0, 0, 400}},
    /* More cached than input: billed input 0, never negative. */
    {BILL_PROV_OPENAI, {100, 0, 0, 0, 0, 0, 150}, {0, 0, 0, 0, 150}},
    {BILL_PROV_OPENAI, {100, 0, 0, 0, 0, 0, 100}, {0, 0, 0, 0, 100}},
    /* Reasoning is inside output: unchanged. */
    {BILL_PROV_OPENAI, {10, 500, 300, 0, 0, 0, 0}, {10, 500, 0, 0, 0}},
    /* Gemini: cached content leaves the prompt; thoughts join output. */
    {BILL_PROV_GEMINI, {5000, 100, 250, 0, 0, 0, 4000},
        {1000, 350, 0, 0, 4000}},
    {BILL_PROV_GEMINI, {0, 0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0}},
    /* The bound itself is fine. */
    {BILL_PROV_ANTHROPIC, {BILL_USAGE_MAX, BILL_USAGE_MAX, 0, 0, 0, 0, 0},
        {BILL_USAGE_MAX, BILL_USAGE_MAX, 0, 0, 0}},
};

struct bad {
	enum bill_provider    prov;
	struct bill_usage_raw raw;
	const char           *reason;
};

static const struct bad bad_cases[] = {
    {BILL_PROV_ANTHROPIC, {-1, 0, 0, 0, 0, 0, 0}, "negative input tokens"},
    {BILL_PROV_OPENAI, {0, -5, 0, 0, 0, 0, 0}, "negative output tokens"},
    {BILL_PROV_GEMINI, {0, 0, -1, 0, 0, 0, 0}, "negative reasoning tokens"},
    {BILL_PROV_ANTHROPIC, {0, 0, 0, 0, 0, 0, -3}, "negative cache_read tokens"},
    {BILL_PROV_ANTHROPIC, {0, 0, 0, 0, 0, -1, 0}, "negative cache_1h tokens"},
    {BILL_PROV_ANTHROPIC, {BILL_USAGE_MAX + 1, 0, 0, 0, 0, 0, 0},
        "absurd input tokens (>100M)"},
    {BILL_PROV_OPENAI, {0, 0, 0, 0, 0, 0, INT64_MAX},
        "absurd cache_read tokens (>100M)"},
    {BILL_PROV_ANTHROPIC, {0, 0, 0, 100, 80, 30, 0},
        "cache 5m + 1h tokens exceed the cache creation total"},
    /* Only a split, each part fine, but together above the bound. */
    {BILL_PROV_ANTHROPIC, {0, 0, 0, 0, BILL_USAGE_MAX, 1, 0},
        "absurd cache_creation tokens (>100M)"},
    /* Gemini thoughts push the output past the bound. */
    {BILL_PROV_GEMINI, {0, BILL_USAGE_MAX, 1, 0, 0, 0, 0},
        "absurd output tokens (>100M)"},
    {BILL_PROV_OPENAI, {10, 5, 6, 0, 0, 0, 0},
        "reasoning tokens exceed OpenAI output tokens"},
    {(enum bill_provider)7, {0, 0, 0, 0, 0, 0, 0}, "unknown provider"},
};

static void
test_normalize(void)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(ok_cases); i++) {
		const struct uc  *c = &ok_cases[i];
		struct bill_usage u;
		const char       *why = NULL;

		T_OK(bill_usage_normalize(c->prov, &c->raw, &u, &why));
		T_ASSERT(why == NULL);
		T_EQ_INT(u.input, c->want.input);
		T_EQ_INT(u.output, c->want.output);
		T_EQ_INT(u.cache_5m, c->want.cache_5m);
		T_EQ_INT(u.cache_1h, c->want.cache_1h);
		T_EQ_INT(u.cache_read, c->want.cache_read);
		/* The invariants, whatever the case. */
		T_ASSERT(u.input >= 0 && u.input <= BILL_USAGE_MAX);
		T_ASSERT(u.cache_5m + u.cache_1h >= c->raw.cache_creation);
	}
}

static void
test_refusals(void)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(bad_cases); i++) {
		const struct bad *c = &bad_cases[i];
		struct bill_usage u = {.input = 42};
		const char       *why = NULL;

		T_EQ_INT(bill_usage_normalize(c->prov, &c->raw, &u, &why),
		    -ERR_INVAL);
		T_EQ_STR(why, c->reason);
		T_EQ_INT(u.input, 42); /* untouched */
	}
}

static void
test_prompt_and_parse(void)
{
	struct bill_usage  u = {1, 1000, 2, 3, 4};
	enum bill_provider p = BILL_PROV_ANTHROPIC;

	T_EQ_INT(bill_usage_prompt(&u), 10); /* output is not prompt */
	T_OK(bill_provider_parse("openai", &p));
	T_EQ_INT(p, BILL_PROV_OPENAI);
	T_OK(bill_provider_parse("gemini", &p));
	T_EQ_INT(p, BILL_PROV_GEMINI);
	T_OK(bill_provider_parse("anthropic", &p));
	T_EQ_INT(p, BILL_PROV_ANTHROPIC);
	T_EQ_INT(bill_provider_parse("Anthropic", &p), -ERR_INVAL);
	T_EQ_INT(bill_provider_parse("", &p), -ERR_INVAL);
}

T_MAIN(T_CASE(test_normalize), T_CASE(test_refusals),
    T_CASE(test_prompt_and_parse))
