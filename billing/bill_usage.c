/*
 * bill_usage.c: provider usage to billed buckets (see bill_usage.h).
 */
#include "bill_usage.h"

#include "err.h"

struct bu_field {
	const char *neg, *big;
	size_t      off;
};

#define BU_FIELD(f)                                                       \
	{                                                                 \
		"negative " #f " tokens", "absurd " #f " tokens (>100M)", \
		    offsetof(struct bill_usage_raw, f)                    \
	}

static const struct bu_field bu_fields[] = {
    BU_FIELD(input),
    BU_FIELD(output),
    BU_FIELD(reasoning),
    BU_FIELD(cache_creation),
    BU_FIELD(cache_5m),
    BU_FIELD(cache_1h),
    BU_FIELD(cache_read),
};

static int
bu_bounds(const struct bill_usage_raw *raw, const char **reason)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(bu_fields); i++) {
		int64_t v;

		memcpy(&v, (const char *)raw + bu_fields[i].off, sizeof(v));
		if (v < 0) {
			*reason = bu_fields[i].neg;
			return -ERR_INVAL;
		}
		if (v > BILL_USAGE_MAX) {
			*reason = bu_fields[i].big;
			return -ERR_INVAL;
		}
	}
	return 0;
}

/* The 5m/1h split of a creation total; see the header. */
static int
bu_split(
    const struct bill_usage_raw *raw, struct bill_usage *u, const char **reason)
{
	int64_t total = raw->cache_creation;

	/* Some upstreams send only the split: the split is then the total. */
	if (total == 0)
		total = raw->cache_5m + raw->cache_1h;
	if (total > BILL_USAGE_MAX) {
		*reason = "absurd cache_creation tokens (>100M)";
		return -ERR_INVAL;
	}
	if (raw->cache_5m + raw->cache_1h > total) {
		*reason =
		    "cache 5m + 1h tokens exceed the cache creation total";
		return -ERR_INVAL;
	}
	u->cache_1h = raw->cache_1h;
	u->cache_5m = total - raw->cache_1h;
	return 0;
}

int
bill_usage_normalize(enum bill_provider prov, const struct bill_usage_raw *raw,
    struct bill_usage *out, const char **reason)
{
	struct bill_usage u = {0};
	int               rv;

	rv = bu_bounds(raw, reason);
	if (rv != 0)
		return rv;
	rv = bu_split(raw, &u, reason);
	if (rv != 0)
		return rv;
	u.cache_read = raw->cache_read;
	u.output = raw->output;
	switch (prov) {
	case BILL_PROV_ANTHROPIC:
		/* Thinking is inside output_tokens; reasoning is ignored. */
		u.input = raw->input;
		break;
	case BILL_PROV_OPENAI:
	case BILL_PROV_GEMINI:
		/* Cached tokens are part of the reported input. */
		u.input = raw->input > raw->cache_read
		    ? raw->input - raw->cache_read
		    : 0;
		if (prov == BILL_PROV_GEMINI)
			u.output += raw->reasoning;
		else if (raw->reasoning > raw->output) {
			/* OpenAI's reasoning_tokens are part of the output. */
			*reason =
			    "reasoning tokens exceed OpenAI output tokens";
			return -ERR_INVAL;
		}
		if (u.output > BILL_USAGE_MAX) {
			*reason = "absurd output tokens (>100M)";
			return -ERR_INVAL;
		}
		break;
	default:
		*reason = "unknown provider";
		return -ERR_INVAL;
	}
	*out = u;
	return 0;
}

int64_t
bill_usage_prompt(const struct bill_usage *u)
{
	return u->input + u->cache_5m + u->cache_1h + u->cache_read;
}

int
bill_provider_parse(const char *s, enum bill_provider *out)
{
	if (strcmp(s, "anthropic") == 0)
		*out = BILL_PROV_ANTHROPIC;
	else if (strcmp(s, "openai") == 0)
		*out = BILL_PROV_OPENAI;
	else if (strcmp(s, "gemini") == 0)
		*out = BILL_PROV_GEMINI;
	else
		return -ERR_INVAL;
	return 0;
}
