/*
 * bill_usage.h: token counts as each provider reports them, turned into
 * the five disjoint buckets billing prices (pure functions, no state).
 *
 * Providers count differently:
 *  - Anthropic: input_tokens excludes the cache buckets; cache creation is
 *    a total with an optional ephemeral 5m/1h split; cache reads apart.
 *  - OpenAI (Responses and Chat Completions): input includes the cached
 *    tokens (input_tokens_details.cached_tokens / prompt_tokens_details);
 *    reasoning tokens are already inside the output count.
 *  - Gemini: promptTokenCount includes cachedContentTokenCount;
 *    thoughtsTokenCount is billed as output but is not inside
 *    candidatesTokenCount, so it is added.
 *
 * Invariants of the result: every bucket is in [0, BILL_USAGE_MAX];
 * input never counts a cached token twice (billed input = input - cached,
 * never below zero); cache_5m + cache_1h equals the creation total, where
 * an unsplit total (both parts 0) counts as 5m and an unassigned rest of
 * a partial split also counts as 5m.  Input that breaks a rule is
 * refused with a reason string (static text) and the caller dead-letters
 * the event.
 */
#ifndef BILL_USAGE_H
#define BILL_USAGE_H

#include "compat.h"

#define BILL_USAGE_MAX 100000000 /* 100M tokens in one bucket is absurd */

enum bill_provider {
	BILL_PROV_ANTHROPIC = 0,
	BILL_PROV_OPENAI,
	BILL_PROV_GEMINI,
};

/* As reported; fields a provider does not have stay 0. */
struct bill_usage_raw {
	int64_t input;          /* input_tokens / prompt_tokens / prompt... */
	int64_t output;         /* output_tokens / completion / candidates */
	int64_t reasoning;      /* Gemini thoughtsTokenCount (added to output);
	                           OpenAI reasoning_tokens (inside output, only
	                           checked); ignored for Anthropic */
	int64_t cache_creation; /* Anthropic cache_creation_input_tokens */
	int64_t cache_5m;       /* Anthropic cache_creation.ephemeral_5m */
	int64_t cache_1h;       /* Anthropic cache_creation.ephemeral_1h */
	int64_t cache_read;     /* Anthropic cache_read_input_tokens, OpenAI
	                           cached_tokens, Gemini cachedContent... */
};

/* The billed buckets, disjoint. */
struct bill_usage {
	int64_t input;
	int64_t output;
	int64_t cache_5m;
	int64_t cache_1h;
	int64_t cache_read;
};

/*
 * Normalises raw (borrowed) for provider prov into *out.  Returns 0, or
 * -ERR_INVAL with *reason set to a static sentence naming the rule, and
 * *out untouched.
 */
int bill_usage_normalize(enum bill_provider prov,
    const struct bill_usage_raw *raw, struct bill_usage *out,
    const char **reason) WARN_UNUSED;

/* Prompt tokens of u (input and every cache bucket), for the long tier. */
int64_t bill_usage_prompt(const struct bill_usage *u);

/* "anthropic", "openai", "gemini" to the enum; -ERR_INVAL otherwise. */
int bill_provider_parse(const char *s, enum bill_provider *out) WARN_UNUSED;

#endif /* BILL_USAGE_H */
