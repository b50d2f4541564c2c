/*
 * bill_price.h: the price table (LiteLLM format), its loader and the
 * model-name lookup.
 *
 * The table is the JSON object of LiteLLM's
 * model_prices_and_context_window.json: one member per model name, whose
 * object holds prices in USD per token.  Only these fields are read:
 *
 *   input_cost_per_token, output_cost_per_token         (both required)
 *   cache_creation_input_token_cost                     (5-minute write)
 *   cache_creation_input_token_cost_above_1hr           (1-hour write)
 *   cache_read_input_token_cost
 *   input_cost_per_token_above_200k_tokens              (long-context tier)
 *   output_cost_per_token_above_200k_tokens
 *   cache_creation_input_token_cost_above_200k_tokens
 *   cache_creation_input_token_cost_above_1hr_above_200k_tokens
 *   cache_read_input_token_cost_above_200k_tokens
 *
 * An entry without both required prices is skipped (image, audio and
 * per-second models), as is "sample_spec".  A missing optional price is
 * filled at load time, so pricing never meets a hole:
 *   cache 5m write  <- input price      (a write costs at least an input)
 *   cache 1h write  <- cache 5m write
 *   cache read      <- input price      (no caching discount known)
 *   each long-tier price <- the same bucket's base price; the tier exists
 *   only when input_cost_per_token_above_200k_tokens is present.
 *
 * Money is never held in binary floating point.  A price is an exact
 * integer count of BILL_PRICE_UNIT (1e-27 USD) per token, in an __int128.
 * jansson hands JSON numbers over as doubles, so the loader recovers the
 * decimal text: it takes the shortest decimal (1 to 17 significant digits)
 * that converts back to the very same double.  That is the text Python's
 * json module (which writes LiteLLM's file) emits, so the value held is
 * the decimal written in the file, float artefacts such as
 * 2.9999900000000002e-06 included.  That decimal is then scaled to 1e-27
 * exactly; an entry with a price that does not scale exactly (more than
 * 27 fraction digits), a negative price or one above BILL_PRICE_MAX_USD
 * per token is refused as a whole, counted and logged.  A number written
 * with more than 17 significant digits cannot be told apart from its
 * nearest double; no price list needs that many.
 *
 * Names: keys are stored lower-cased; they are at most BILL_PRICE_NAME_MAX
 * bytes (longer keys are refused).  Two keys equal once lower-cased keep
 * the first; the second counts as a duplicate.
 *
 * Reload: struct bill_prices holds the current table behind a mutex.  A
 * load builds a new immutable table and swaps the pointer; lookups take a
 * reference, so a reload never disturbs a lookup in flight.
 */
#ifndef BILL_PRICE_H
#define BILL_PRICE_H

#include "compat.h"

#define BILL_PRICE_SCALE    27   /* a price unit is 1e-27 USD */
#define BILL_PRICE_MAX_USD  1000 /* per token; larger prices are refused */
#define BILL_PRICE_NAME_MAX 128  /* bytes of a model name, without NUL */
#define BILL_PRICE_FILE_MAX (16 * 1024 * 1024) /* default file cap */
#define BILL_LONG_THRESHOLD 200000 /* prompt tokens of the long tier */
#define BILL_UNKNOWN_MAX    256    /* distinct unknown names remembered */

/* The five disjoint token buckets that carry a price. */
enum bill_bucket {
	BILL_B_INPUT = 0,
	BILL_B_OUTPUT,
	BILL_B_CACHE_5M,
	BILL_B_CACHE_1H,
	BILL_B_CACHE_READ,
	BILL_B_N_
};

enum bill_tier {
	BILL_TIER_BASE = 0,
	BILL_TIER_LONG, /* prompt above BILL_LONG_THRESHOLD tokens */
	BILL_TIER_N_
};

/* One model's prices, in 1e-27 USD per token; every slot is filled. */
struct bill_price {
	__int128 p[BILL_TIER_N_][BILL_B_N_];
	bool     has_long; /* the long tier differs from the base one */
};

/* How a lookup found its prices. */
enum bill_match_how {
	BILL_M_EXACT = 0, /* the name, lower-cased, or a prefix-stripped form */
	BILL_M_NORMAL,    /* after -4-5- / 4.5 spelling normalisation */
	BILL_M_BASE,      /* after dropping 8-digit dates and :suffixes */
	BILL_M_FAMILY,    /* a Claude family's canonical model */
	BILL_M_GPT_BASE,  /* gpt-X[.Y] base version of an OpenAI model */
	BILL_M_FALLBACK,  /* unknown: priced as the policy's fallback model */
	BILL_M_UNKNOWN,   /* unknown: zero prices; the caller dead-letters */
};

struct bill_price_match {
	struct bill_price   price;
	enum bill_match_how how;
	char                key[BILL_PRICE_NAME_MAX + 1]; /* "" if unknown */
};

/* Counts of one load, for logs and tests. */
struct bill_price_stats {
	size_t members; /* members of the top-level object */
	size_t loaded;  /* entries priced and kept */
	size_t skipped; /* no input+output price, or sample_spec */
	size_t refused; /* bad price, bad shape or name too long */
	size_t dups;    /* equal to an earlier key once lower-cased */
};

enum bill_unknown_policy {
	BILL_UNKNOWN_ZERO = 0, /* zero prices, BILL_M_UNKNOWN */
	BILL_UNKNOWN_FALLBACK, /* the fallback model's prices */
};

/* An immutable loaded table.  Reference counted; see bill_prices_get(). */
struct bill_price_tab;

/*
 * Parses a LiteLLM-format document of len bytes (borrowed) into a new
 * table with one reference, stored in *out (owned by the caller, release
 * with bill_price_tab_unref()).  st (may be NULL) receives the counts.
 * -ERR_TOOBIG above file_max bytes, -ERR_PROTO for text that is not a
 * JSON object, -ERR_NOTFOUND when no entry could be priced.
 */
int bill_price_tab_parse(const char *text, size_t len, size_t file_max,
    struct bill_price_tab **out, struct bill_price_stats *st) WARN_UNUSED;

/*
 * Reads path (at most file_max bytes) and parses it as above; -ERR_IO
 * when the file cannot be read.
 */
int bill_price_tab_load(const char *path, size_t file_max,
    struct bill_price_tab **out, struct bill_price_stats *st) WARN_UNUSED;

/* Takes one more reference and returns t.  NULL is fine. */
struct bill_price_tab *bill_price_tab_ref(struct bill_price_tab *t);

/* Drops one reference; the last one frees.  NULL is fine. */
void bill_price_tab_unref(struct bill_price_tab *t);

/* Number of names in the table. */
size_t bill_price_tab_count(const struct bill_price_tab *t);

/*
 * Exact-name lookup of a lower-case key (borrowed); NULL when absent.
 * The result lives as long as the caller's reference on t.
 */
const struct bill_price *bill_price_tab_find(
    const struct bill_price_tab *t, const char *key);

/*
 * The fuzzy lookup of the original product, without the unknown policy:
 * lower-case; try the name, the name without "models/",
 * "publishers/google/models/" (also after a path) and its last path
 * segment; exact, then -4-5-/4.5 spellings, then without 8-digit dates
 * and :suffix parts, then the Claude family rules, then gpt-X[.Y].
 * Fills *out and returns 0, or -ERR_NOTFOUND.  A name longer than
 * BILL_PRICE_NAME_MAX is -ERR_TOOBIG.
 */
int bill_price_tab_match(const struct bill_price_tab *t, const char *model,
    struct bill_price_match *out) WARN_UNUSED;

/* ---- The holder: current table, reload, unknown-model policy ---- */

struct bill_prices_cfg {
	const char              *path;    /* primary file; NULL or "" none */
	const char              *bundled; /* fallback file; NULL or "" none */
	size_t                   file_max;
	enum bill_unknown_policy unknown;
	const char              *fallback_model; /* for BILL_UNKNOWN_FALLBACK */
};

struct bill_prices;

/*
 * A holder with no table yet.  The strings of cfg are copied.
 * Free with bill_prices_free().
 */
struct bill_prices *bill_prices_new(const struct bill_prices_cfg *cfg);
void                bill_prices_free(struct bill_prices *p);

/*
 * Loads cfg->path, or when that fails cfg->bundled, and swaps it in.
 * On failure of both the current table (if any) stays and the error of
 * the last attempt is returned.  st (may be NULL) gets the counts of the
 * table swapped in.  Safe against concurrent lookups.
 */
int bill_prices_reload(
    struct bill_prices *p, struct bill_price_stats *st) WARN_UNUSED;

/*
 * Swaps in t, taking the caller's reference (ownership moves to p).
 * The old table is released once its last reader is done.
 */
void bill_prices_swap(struct bill_prices *p, struct bill_price_tab *t);

/* A new reference on the current table (NULL when none is loaded). */
struct bill_price_tab *bill_prices_get(struct bill_prices *p);

/*
 * Prices a model name: bill_price_tab_match() on the current table, then
 * the unknown policy.  An unknown name is counted on every call and
 * logged once per name (bill.price_unknown); with BILL_UNKNOWN_FALLBACK
 * it gets the fallback model's prices (BILL_M_FALLBACK), otherwise zero
 * prices (BILL_M_UNKNOWN) so the caller can dead-letter the event.
 * Returns 0 with *out filled, or -ERR_UNAVAIL when no table is loaded,
 * -ERR_TOOBIG for an over-long name.
 */
int bill_prices_lookup(struct bill_prices *p, const char *model,
    struct bill_price_match *out) WARN_UNUSED;

/* Lookups of unknown names so far, in total and for one name. */
uint64_t bill_prices_unknown_total(struct bill_prices *p);
uint64_t bill_prices_unknown_count(struct bill_prices *p, const char *model);

/*
 * Writes the price of one token, in USD, as an exact decimal ("0.000003")
 * into buf of cap bytes (at least 48).  For logs and tests.
 */
void bill_price_fmt(__int128 units, char *buf, size_t cap);

#endif /* BILL_PRICE_H */
