/*
 * bill_price_test.c: the price table: exact price recovery, refusals,
 * malformed files, the fuzzy lookup, the unknown-model policy, reloads,
 * and LiteLLM's own file loaded whole and priced exactly.
 *
 * Tests run with cwd = the repository root (billing/prices.json).
 */
#include <ctype.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

#include "bill_cost.h"
#include "bill_price.h"
#include "err.h"
#include "log.h"
#include "t.h"

#define BUNDLED "billing/prices.json"

static struct bill_price_tab *
load_doc(const char *doc, struct bill_price_stats *st)
{
	struct bill_price_tab *t = NULL;

	T_OK(bill_price_tab_parse(
	    doc, strlen(doc), BILL_PRICE_FILE_MAX, &t, st));
	return t;
}

static void
price_str(const struct bill_price_tab *t, const char *key, enum bill_tier tier,
    enum bill_bucket b, char *buf)
{
	const struct bill_price *p = bill_price_tab_find(t, key);

	T_ASSERT(p != NULL);
	bill_price_fmt(p->p[tier][b], buf, 64);
}

/* Independent count: members that are objects with both prices. */
static size_t
count_priced(json_t *root)
{
	const char *key;
	json_t     *v;
	size_t      n = 0;

	json_object_foreach(root, key, v)
	{
		if (strcmp(key, "sample_spec") == 0 || !json_is_object(v))
			continue;
		if (json_is_number(
		        json_object_get(v, "input_cost_per_token")) &&
		    json_is_number(json_object_get(v, "output_cost_per_token")))
			n++;
	}
	return n;
}

static void
test_bundled_table(void)
{
	struct bill_price_tab  *t = NULL;
	struct bill_price_stats st;
	json_error_t            jerr;
	json_t                 *root = json_load_file(BUNDLED, 0, &jerr);
	char                    b[64];

	T_ASSERT(root != NULL);
	T_OK(bill_price_tab_load(BUNDLED, BILL_PRICE_FILE_MAX, &t, &st));
	T_EQ_INT(st.loaded, count_priced(root));
	T_ASSERT(st.loaded >= 70);
	T_EQ_INT(st.refused, 0);
	T_EQ_INT(st.dups, 0);
	T_EQ_INT(bill_price_tab_count(t), st.loaded);
	/* Spot checks against the list prices the file was written from. */
	price_str(t, "claude-opus-4-5", BILL_TIER_BASE, BILL_B_INPUT, b);
	T_EQ_STR(b, "0.000005");
	price_str(t, "claude-opus-4-5", BILL_TIER_BASE, BILL_B_CACHE_1H, b);
	T_EQ_STR(b, "0.00001");
	price_str(t, "claude-sonnet-4-5", BILL_TIER_LONG, BILL_B_OUTPUT, b);
	T_EQ_STR(b, "0.0000225");
	price_str(t, "gpt-5", BILL_TIER_BASE, BILL_B_CACHE_READ, b);
	T_EQ_STR(b, "0.000000125");
	/* gpt-5 has no cache write price: it falls back to the input price. */
	price_str(t, "gpt-5", BILL_TIER_BASE, BILL_B_CACHE_5M, b);
	T_EQ_STR(b, "0.00000125");
	price_str(
	    t, "gemini-2.0-flash-lite", BILL_TIER_BASE, BILL_B_CACHE_READ, b);
	T_EQ_STR(b, "0.00000001875");
	T_ASSERT(!bill_price_tab_find(t, "gpt-5")->has_long);
	T_ASSERT(bill_price_tab_find(t, "gemini-2.5-pro")->has_long);
	json_decref(root);
	bill_price_tab_unref(t);
}

static const char exact_doc[] =
    "{\"a\": {\"input_cost_per_token\": 3e-06,"
    "         \"output_cost_per_token\": 1.5e-05},"
    " \"b\": {\"input_cost_per_token\": 1.25e-07,"
    "         \"output_cost_per_token\": 3.75e-09,"
    "         \"cache_read_input_token_cost\": 2.9999900000000002e-06},"
    " \"c\": {\"input_cost_per_token\": 0,"
    "         \"output_cost_per_token\": 1,"
    "         \"cache_creation_input_token_cost\": 0.000003750,"
    "         \"cache_creation_input_token_cost_above_1hr\": 6E-6},"
    " \"d\": {\"input_cost_per_token\": 1.2345678901234568e-10,"
    "         \"output_cost_per_token\": 0.000240625,"
    "         \"input_cost_per_token_above_200k_tokens\": 6e-06,"
    "         \"cache_read_input_token_cost_above_200k_tokens\": 6e-07}}";

static void
test_exact_prices(void)
{
	struct bill_price_stats st;
	struct bill_price_tab  *t = load_doc(exact_doc, &st);
	char                    b[64];

	T_EQ_INT(st.loaded, 4);
	T_EQ_INT(bill_price_tab_find(t, "a")->p[0][BILL_B_INPUT] /
	        (__int128)1000000000000000LL,
	    3000000); /* 3e-06 USD = 3e21 units of 1e-27 */
	price_str(t, "a", BILL_TIER_BASE, BILL_B_OUTPUT, b);
	T_EQ_STR(b, "0.000015");
	price_str(t, "b", BILL_TIER_BASE, BILL_B_INPUT, b);
	T_EQ_STR(b, "0.000000125");
	price_str(t, "b", BILL_TIER_BASE, BILL_B_OUTPUT, b);
	T_EQ_STR(b, "0.00000000375");
	/* A float artefact of LiteLLM's file is kept digit for digit. */
	price_str(t, "b", BILL_TIER_BASE, BILL_B_CACHE_READ, b);
	T_EQ_STR(b, "0.0000029999900000000002");
	price_str(t, "c", BILL_TIER_BASE, BILL_B_INPUT, b);
	T_EQ_STR(b, "0");
	price_str(t, "c", BILL_TIER_BASE, BILL_B_OUTPUT, b);
	T_EQ_STR(b, "1");
	price_str(t, "c", BILL_TIER_BASE, BILL_B_CACHE_5M, b);
	T_EQ_STR(b, "0.00000375");
	price_str(t, "c", BILL_TIER_BASE, BILL_B_CACHE_1H, b);
	T_EQ_STR(b, "0.000006");
	/* 17 significant digits at e-10: the full 27 fraction digits. */
	price_str(t, "d", BILL_TIER_BASE, BILL_B_INPUT, b);
	T_EQ_STR(b, "0.00000000012345678901234568");
	price_str(t, "d", BILL_TIER_LONG, BILL_B_INPUT, b);
	T_EQ_STR(b, "0.000006");
	/* Long-tier holes: output from the base tier, read from its field. */
	price_str(t, "d", BILL_TIER_LONG, BILL_B_OUTPUT, b);
	T_EQ_STR(b, "0.000240625");
	price_str(t, "d", BILL_TIER_LONG, BILL_B_CACHE_READ, b);
	T_EQ_STR(b, "0.0000006");
	/* The holes of "a": cache writes and reads at the input price. */
	price_str(t, "a", BILL_TIER_LONG, BILL_B_CACHE_1H, b);
	T_EQ_STR(b, "0.000003");
	T_ASSERT(!bill_price_tab_find(t, "a")->has_long);
	bill_price_tab_unref(t);
}

static void
test_refused_entries(void)
{
	static const char doc[] =
	    "{\"sample_spec\": {\"input_cost_per_token\": 0,"
	    "                   \"output_cost_per_token\": 0},"
	    " \"ok\": {\"input_cost_per_token\": 1e-06,"
	    "          \"output_cost_per_token\": 2e-06},"
	    " \"Ok-Upper\": {\"input_cost_per_token\": 1e-06,"
	    "          \"output_cost_per_token\": 2e-06},"
	    " \"OK\": {\"input_cost_per_token\": 9e-06,"
	    "          \"output_cost_per_token\": 9e-06},"
	    " \"image\": {\"input_cost_per_image\": 0.04},"
	    " \"only-in\": {\"input_cost_per_token\": 1e-06},"
	    " \"neg\": {\"input_cost_per_token\": -1e-06,"
	    "           \"output_cost_per_token\": 2e-06},"
	    " \"str\": {\"input_cost_per_token\": \"1e-06\","
	    "           \"output_cost_per_token\": 2e-06},"
	    " \"null\": {\"input_cost_per_token\": null,"
	    "           \"output_cost_per_token\": 2e-06},"
	    " \"huge\": {\"input_cost_per_token\": 1e-06,"
	    "            \"output_cost_per_token\": 1001},"
	    " \"tiny\": {\"input_cost_per_token\": 1e-30,"
	    "            \"output_cost_per_token\": 2e-06},"
	    " \"badcache\": {\"input_cost_per_token\": 1e-06,"
	    "            \"output_cost_per_token\": 2e-06,"
	    "            \"cache_read_input_token_cost\": true},"
	    " \"notobj\": 5,"
	    " \"\": {\"input_cost_per_token\": 1e-06,"
	    "        \"output_cost_per_token\": 2e-06}}";
	struct bill_price_stats st;
	struct bill_price_tab  *t = load_doc(doc, &st);
	char                    b[64];

	T_EQ_INT(st.members, 14);
	T_EQ_INT(st.skipped, 3); /* sample_spec, image, only-in */
	T_EQ_INT(st.refused, 8); /* neg str null huge tiny badcache notobj "" */
	T_EQ_INT(st.dups, 1);    /* "OK" after "ok" */
	T_EQ_INT(st.loaded, 2);  /* ok, ok-upper */
	price_str(t, "ok", BILL_TIER_BASE, BILL_B_INPUT, b);
	T_EQ_STR(b, "0.000001"); /* the first of "ok"/"OK" is kept */
	T_ASSERT(bill_price_tab_find(t, "ok-upper") != NULL);
	T_ASSERT(bill_price_tab_find(t, "neg") == NULL);
	bill_price_tab_unref(t);
}

static void
test_long_name_refused(void)
{
	char                    doc[512], name[BILL_PRICE_NAME_MAX + 2];
	struct bill_price_stats st;
	struct bill_price_tab  *t = NULL;

	memset(name, 'x', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	snprintf(doc, sizeof(doc),
	    "{\"%s\": {\"input_cost_per_token\": 1e-06, "
	    "\"output_cost_per_token\": 1e-06}}",
	    name);
	T_EQ_INT(bill_price_tab_parse(
	             doc, strlen(doc), BILL_PRICE_FILE_MAX, &t, &st),
	    -ERR_NOTFOUND);
	T_EQ_INT(st.refused, 1);
	T_ASSERT(t == NULL);
	name[BILL_PRICE_NAME_MAX] = '\0'; /* exactly the maximum: kept */
	snprintf(doc, sizeof(doc),
	    "{\"%s\": {\"input_cost_per_token\": 1e-06, "
	    "\"output_cost_per_token\": 1e-06}}",
	    name);
	t = load_doc(doc, &st);
	T_EQ_INT(st.loaded, 1);
	bill_price_tab_unref(t);
}

static const char *const broken_docs[] = {
    "",
    "{",
    "[]",
    "null",
    "42",
    "\"str\"",
    "{\"a\": {\"input_cost_per_token\": 1e-06, \"output_cost_per_token\": ",
    "{\"a\": {\"input_cost_per_token\": 1e-06,,}}",
    "{\"a\": {\"input_cost_per_token\": 1e999, \"output_cost_per_token\": 1}}",
    "{\"a\": {\"input_cost_per_token\": NaN, \"output_cost_per_token\": 1}}",
    "{\"a\" 1}",
    "\xff\xfe{\x00}",
    "{}",
    "{\"a\": 1, \"b\": [], \"c\": null}",
};

static void
test_broken_inputs(void)
{
	struct bill_price_tab *t = NULL;
	char                  *deep;
	size_t                 i, n = 100000;

	log_set_level(LOG_ERROR); /* each refusal is logged: keep it quiet */

	for (i = 0; i < ARRAY_SIZE(broken_docs); i++) {
		int rv = bill_price_tab_parse(broken_docs[i],
		    strlen(broken_docs[i]), BILL_PRICE_FILE_MAX, &t, NULL);

		T_ASSERT(rv == -ERR_PROTO || rv == -ERR_NOTFOUND);
		T_ASSERT(t == NULL);
	}
	/* Embedded NUL: the length counts, not the terminator. */
	T_EQ_INT(bill_price_tab_parse(
	             "{\"a\":{}}\0junk", 12, BILL_PRICE_FILE_MAX, &t, NULL),
	    -ERR_PROTO);
	/* Deep nesting inside an entry and at the top. */
	deep = xmalloc(2 * n + 16);
	memset(deep, '[', n);
	memset(deep + n, ']', n);
	deep[2 * n] = '\0';
	T_EQ_INT(
	    bill_price_tab_parse(deep, 2 * n, 4 * n, &t, NULL), -ERR_PROTO);
	free(deep);
	/* The size cap comes before parsing. */
	T_EQ_INT(
	    bill_price_tab_parse(exact_doc, strlen(exact_doc), 10, &t, NULL),
	    -ERR_TOOBIG);
	T_EQ_INT(bill_price_tab_load("billing/no-such-file.json",
	             BILL_PRICE_FILE_MAX, &t, NULL),
	    -ERR_IO);
	T_EQ_INT(bill_price_tab_load("billing", BILL_PRICE_FILE_MAX, &t, NULL),
	    -ERR_IO);
	T_EQ_INT(bill_price_tab_load(BUNDLED, 1000, &t, NULL), -ERR_TOOBIG);
	T_ASSERT(t == NULL);
	log_set_level(LOG_INFO);
}

/* Random byte edits of the bundled file never crash nor leak. */
static void
test_mutated_files(void)
{
	FILE                  *f = fopen(BUNDLED, "rb");
	char                  *orig, *buf;
	size_t                 len, i, k, ok = 0;
	unsigned int           seed = 12345;
	static const char      junk[] = "{}[]\",:0-.e9 \\x\xff";
	struct bill_price_tab *t;

	T_ASSERT(f != NULL);
	log_set_level(LOG_ERROR);
	orig = xmalloc(1 << 20);
	len = fread(orig, 1, 1 << 20, f);
	fclose(f);
	T_ASSERT(len > 1000);
	buf = xmalloc(len);
	for (i = 0; i < 300; i++) {
		int rv;

		memcpy(buf, orig, len);
		for (k = 0; k < 1 + i % 8; k++) {
			seed = seed * 1103515245u + 12345u;
			buf[(seed >> 8) % len] =
			    junk[(seed >> 4) % (sizeof(junk) - 1)];
		}
		t = NULL;
		rv = bill_price_tab_parse(buf, len - (i % 3) * (seed % 64),
		    BILL_PRICE_FILE_MAX, &t, NULL);
		T_ASSERT(rv == 0 || rv == -ERR_PROTO || rv == -ERR_NOTFOUND);
		T_ASSERT((rv == 0) == (t != NULL));
		if (rv == 0) {
			ok++;
			T_ASSERT(bill_price_tab_count(t) <= 100);
		}
		bill_price_tab_unref(t);
	}
	T_ASSERT(ok > 0); /* some edits land in harmless places */
	free(buf);
	free(orig);
	log_set_level(LOG_INFO);
}

struct lk_case {
	const char         *model;
	int                 rv;
	const char         *key;
	enum bill_match_how how;
};

static const struct lk_case lk_cases[] = {
    {"claude-sonnet-4-5-20250929", 0, "claude-sonnet-4-5-20250929",
        BILL_M_EXACT},
    {"  Claude-Sonnet-4-5 ", 0, "claude-sonnet-4-5", BILL_M_EXACT},
    {"models/gemini-2.5-pro", 0, "gemini-2.5-pro", BILL_M_EXACT},
    {"publishers/google/models/gemini-2.5-flash", 0, "gemini-2.5-flash",
        BILL_M_EXACT},
    {"projects/p1/locations/us-central1/publishers/google/models/"
     "gemini-3-pro-preview",
        0, "gemini-3-pro-preview", BILL_M_EXACT},
    {"openai/gpt-5", 0, "gpt-5", BILL_M_EXACT},
    {"claude-sonnet-4.5", 0, "claude-sonnet-4-5", BILL_M_NORMAL},
    {"claude-haiku-4.5", 0, "claude-haiku-4-5", BILL_M_NORMAL},
    {"gemini-2-5-pro", 0, "gemini-2.5-pro", BILL_M_NORMAL},
    {"claude-haiku-4-5-20991231", 0, "claude-haiku-4-5", BILL_M_BASE},
    {"claude-opus-4-1-20250805-v1:0", 0, "claude-opus-4-1", BILL_M_BASE},
    {"claude-sonnet-4-5:beta", 0, "claude-sonnet-4-5", BILL_M_BASE},
    {"gpt-4o-2099-01-01", 0, "gpt-4o", BILL_M_BASE},
    {"o3-2099-01-01", 0, "o3", BILL_M_BASE},
    {"claude-opus-4.5-20251101", 0, "claude-opus-4-5-20251101", BILL_M_NORMAL},
    {"claude-opus-4.5-20991231", 0, "claude-opus-4-5", BILL_M_BASE},
    {"anthropic.claude-opus-4-1-20250805-v1:0", 0, "claude-opus-4-1",
        BILL_M_FAMILY},
    {"claude-opus-4-5-thinking", 0, "claude-opus-4-5", BILL_M_FAMILY},
    {"claude-3-opus", 0, "claude-3-opus-20240229", BILL_M_FAMILY},
    {"claude-opus", 0, "claude-opus-4-20250514", BILL_M_FAMILY},
    {"claude-sonnet", 0, "claude-sonnet-4-20250514", BILL_M_FAMILY},
    {"claude-3.7-sonnet-thinking", 0, "claude-3-7-sonnet-20250219",
        BILL_M_FAMILY},
    {"claude-3-5-sonnet-v2", 0, "claude-3-5-sonnet-20241022", BILL_M_FAMILY},
    {"claude-3-5-haiku", 0, "claude-3-5-haiku-20241022", BILL_M_FAMILY},
    {"claude-haiku", 0, "claude-3-haiku-20240307", BILL_M_FAMILY},
    {"gpt-5.1-codex-high", 0, "gpt-5.1", BILL_M_GPT_BASE},
    {"gpt-5-codex-mini-2099-01-01", 0, "gpt-5", BILL_M_GPT_BASE},
    {"gpt-4o-foo", -ERR_NOTFOUND, NULL, 0},
    {"gpt-9", -ERR_NOTFOUND, NULL, 0},
    {"llama-3-70b", -ERR_NOTFOUND, NULL, 0},
    {"", -ERR_NOTFOUND, NULL, 0},
    {"///", -ERR_NOTFOUND, NULL, 0},
    {"models/", -ERR_NOTFOUND, NULL, 0},
};

static void
test_lookup(void)
{
	struct bill_price_tab  *t = NULL;
	struct bill_price_match m;
	char                    longname[BILL_PRICE_NAME_MAX + 2];
	size_t                  i;

	T_OK(bill_price_tab_load(BUNDLED, BILL_PRICE_FILE_MAX, &t, NULL));
	for (i = 0; i < ARRAY_SIZE(lk_cases); i++) {
		const struct lk_case *c = &lk_cases[i];
		int rv = bill_price_tab_match(t, c->model, &m);

		if (rv != c->rv ||
		    (rv == 0 &&
		        (strcmp(m.key, c->key) != 0 || m.how != c->how)))
			printf("  case %zu \"%s\": rv %d key %s how %d\n", i,
			    c->model, rv, rv == 0 ? m.key : "-", (int)m.how);
		T_EQ_INT(rv, c->rv);
		if (rv == 0) {
			T_EQ_STR(m.key, c->key);
			T_EQ_INT(m.how, c->how);
		}
	}
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	T_EQ_INT(bill_price_tab_match(t, longname, &m), -ERR_TOOBIG);
	bill_price_tab_unref(t);
}

/* Lines of the log file at path that contain needle. */
static int
log_count(const char *path, const char *needle)
{
	FILE *f = fopen(path, "r");
	char  line[LOG_LINE_MAX + 2];
	int   n = 0;

	T_ASSERT(f != NULL);
	while (fgets(line, sizeof(line), f) != NULL)
		n += strstr(line, needle) != NULL;
	fclose(f);
	return n;
}

static void
test_unknown_policy(void)
{
	struct bill_prices_cfg  cfg = {.bundled = BUNDLED};
	struct bill_prices     *p;
	struct bill_price_match m;
	char                    path[] = "/tmp/bill_price_test_XXXXXX";
	int                     fd = mkstemp(path), i;

	T_ASSERT(fd >= 0);
	log_init("billing", LOG_INFO);
	log_set_fd(fd);
	p = bill_prices_new(&cfg);
	T_EQ_INT(bill_prices_lookup(p, "gpt-5", &m), -ERR_UNAVAIL);
	T_OK(bill_prices_reload(p, NULL));
	for (i = 0; i < 3; i++) {
		T_OK(bill_prices_lookup(p, "mystery-model-1", &m));
		T_EQ_INT(m.how, BILL_M_UNKNOWN);
		T_ASSERT(m.price.p[0][BILL_B_OUTPUT] == 0);
		T_EQ_STR(m.key, "");
	}
	T_OK(bill_prices_lookup(p, "mystery-model-2", &m));
	T_OK(bill_prices_lookup(p, "gpt-5", &m)); /* known: not counted */
	T_EQ_INT(m.how, BILL_M_EXACT);
	T_EQ_INT(bill_prices_unknown_count(p, "mystery-model-1"), 3);
	T_EQ_INT(bill_prices_unknown_count(p, "mystery-model-2"), 1);
	T_EQ_INT(bill_prices_unknown_total(p), 4);
	bill_prices_free(p);

	cfg.unknown = BILL_UNKNOWN_FALLBACK;
	cfg.fallback_model = "claude-sonnet-4-5";
	p = bill_prices_new(&cfg);
	T_OK(bill_prices_reload(p, NULL));
	T_OK(bill_prices_lookup(p, "mystery-model-1", &m));
	T_EQ_INT(m.how, BILL_M_FALLBACK);
	T_EQ_STR(m.key, "claude-sonnet-4-5");
	T_ASSERT(m.price.p[0][BILL_B_INPUT] ==
	    (__int128)3000000 * 1000000000000000LL);
	T_OK(bill_prices_lookup(p, "mystery-model-1", &m));
	T_EQ_INT(bill_prices_unknown_total(p), 2);
	bill_prices_free(p);

	log_set_fd(2);
	close(fd);
	/* Logged once per name and holder: 1, 2, then 1 again. */
	T_EQ_INT(log_count(path, "\"mystery-model-1\""), 2);
	T_EQ_INT(log_count(path, "\"mystery-model-2\""), 1);
	T_EQ_INT(log_count(path, "bill.price_unknown"), 3);
	unlink(path);
}

static void
test_reload_swap(void)
{
	struct bill_prices_cfg cfg = {
	    .path = "billing/missing.json", .bundled = BUNDLED};
	struct bill_prices     *p = bill_prices_new(&cfg);
	struct bill_price_stats st;
	struct bill_price_tab  *old, *next;
	struct bill_price_match m;

	T_OK(bill_prices_reload(p, &st)); /* the bundled file */
	T_ASSERT(st.loaded >= 70);
	old = bill_prices_get(p);
	T_ASSERT(old != NULL);
	next = load_doc(exact_doc, NULL);
	bill_prices_swap(p, next);
	/* The reader's table survives the swap. */
	T_ASSERT(bill_price_tab_find(old, "gpt-5") != NULL);
	T_ASSERT(bill_price_tab_find(old, "a") == NULL);
	bill_price_tab_unref(old);
	T_OK(bill_prices_lookup(p, "A", &m));
	T_EQ_STR(m.key, "a");
	T_OK(bill_prices_lookup(p, "gpt-5", &m));
	T_EQ_INT(m.how, BILL_M_UNKNOWN);
	bill_prices_free(p);

	/* Both files bad: the error, and the current table stays. */
	cfg.bundled = "billing/missing-too.json";
	p = bill_prices_new(&cfg);
	bill_prices_swap(p, load_doc(exact_doc, NULL));
	T_EQ_INT(bill_prices_reload(p, NULL), -ERR_IO);
	T_OK(bill_prices_lookup(p, "b", &m));
	T_EQ_INT(m.how, BILL_M_EXACT);
	bill_prices_free(p);
}

/* Readers look up while the main thread swaps tables under them. */
struct swap_reader {
	struct bill_prices *p;
	int                 bad;
};

static void *
swap_reader_main(void *arg)
{
	struct swap_reader     *r = arg;
	struct bill_price_match m;
	__int128                one = (__int128)1000000000000000000LL * 1000;
	int                     i;

	for (i = 0; i < 20000; i++) {
		__int128 v;

		if (bill_prices_lookup(r->p, "x", &m) != 0) {
			r->bad++;
			continue;
		}
		v = m.price.p[0][BILL_B_INPUT];
		/* 1e-06 or 2e-06 USD: always one whole table's price. */
		if (v != one && v != 2 * one)
			r->bad++;
	}
	return NULL;
}

static void
test_concurrent_swap(void)
{
	static const char      d1[] = "{\"x\": {\"input_cost_per_token\": "
	                              "1e-06, \"output_cost_per_token\": 1}}";
	static const char      d2[] = "{\"x\": {\"input_cost_per_token\": "
	                              "2e-06, \"output_cost_per_token\": 1}}";
	struct bill_prices_cfg cfg = {0};
	struct bill_prices    *p = bill_prices_new(&cfg);
	struct swap_reader     r[2] = {{p, 0}, {p, 0}};
	pthread_t              th[2];
	int                    i;

	bill_prices_swap(p, load_doc(d1, NULL));
	for (i = 0; i < 2; i++)
		T_OK(pthread_create(&th[i], NULL, swap_reader_main, &r[i]));
	for (i = 0; i < 2000; i++)
		bill_prices_swap(p, load_doc(i % 2 ? d1 : d2, NULL));
	for (i = 0; i < 2; i++)
		T_OK(pthread_join(th[i], NULL));
	T_EQ_INT(r[0].bad + r[1].bad, 0);
	bill_prices_free(p);
}

/* ---- LiteLLM's own table ---- */

/*
 * The raw text of field in the entry key of the pretty-printed file, or
 * false.  Found by text search, independent of jansson and the loader.
 */
static bool
raw_field(
    const char *text, const char *key, const char *field, char *out, size_t cap)
{
	char        pat[300];
	const char *e, *end, *f;
	size_t      n;

	snprintf(pat, sizeof(pat), "\n    \"%s\": {", key);
	e = strstr(text, pat);
	if (e == NULL)
		return false;
	end = strstr(e + 1, "\n    }");
	snprintf(pat, sizeof(pat), "\n        \"%s\": ", field);
	f = strstr(e, pat);
	if (f == NULL || end == NULL || f > end)
		return false;
	f += strlen(pat);
	n = strcspn(f, ",\n}");
	if (n == 0 || n >= cap)
		return false;
	memcpy(out, f, n);
	out[n] = '\0';
	return true;
}

/*
 * tokens x the decimal text s, in 1e-10 USD, rounded half up: digit
 * string arithmetic on the text, not the loader's code path.
 */
static int64_t
text_cost(const char *s, int64_t tokens)
{
	__int128 mant = 0, v;
	int      exp10 = 0, frac = 0, in_frac = 0;

	for (; *s != '\0' && *s != 'e' && *s != 'E'; s++) {
		if (*s == '.') {
			in_frac = 1;
			continue;
		}
		mant = mant * 10 + (*s - '0');
		frac += in_frac;
	}
	if (*s != '\0')
		exp10 = (int)strtol(s + 1, NULL, 10);
	exp10 -= frac;
	/* cost = tokens * mant * 10^(exp10 + 10) */
	v = mant * tokens;
	exp10 += 10;
	for (; exp10 > 0; exp10--)
		v *= 10;
	if (exp10 < 0) {
		__int128 d = 1;

		for (; exp10 < 0; exp10++)
			d *= 10;
		v = (v + d / 2) / d;
	}
	return (int64_t)v;
}

static void
test_litellm_file(void)
{
	const char             *env = getenv("SUB2API_TEST_PRICE_TABLE");
	const char             *path = env != NULL && env[0] != '\0'
	                ? env
	                : "../shared/data/litellm_model_prices.json";
	struct bill_price_tab  *t = NULL;
	struct bill_price_stats st;
	json_error_t            jerr;
	json_t                 *root, *v;
	const char             *key;
	char                    why[512], *text;
	FILE                   *f;
	size_t                  len, idx = 0, checked = 0, artefacts = 0;

	f = fopen(path, "rb");
	if (f == NULL) {
		snprintf(why, sizeof(why),
		    "litellm price table test: %s not found", path);
		T_SKIP(why);
	}
	text = xmalloc(BILL_PRICE_FILE_MAX + 1);
	len = fread(text, 1, BILL_PRICE_FILE_MAX, f);
	text[len] = '\0';
	fclose(f);
	root = json_loads(text, 0, &jerr);
	T_ASSERT(root != NULL);
	T_OK(bill_price_tab_load(path, BILL_PRICE_FILE_MAX, &t, &st));
	printf("  litellm: %zu members, %zu loaded, %zu skipped, %zu "
	       "refused, %zu case duplicates\n",
	    st.members, st.loaded, st.skipped, st.refused, st.dups);
	/* Every entry with input+output prices is loaded. */
	T_EQ_INT(st.loaded + st.dups, count_priced(root));
	T_EQ_INT(st.refused, 0);
	T_EQ_INT(st.members, json_object_size(root));
	/* Prices a sample exactly: every 40th priced entry, every artefact. */
	json_object_foreach(root, key, v)
	{
		char                     in[64], out[64], cr[64], lower[256];
		const struct bill_price *p;
		struct bill_usage u = {.input = 1234567, .output = 98765};
		struct bill_cost  c;
		size_t            i, klen = strlen(key);
		bool              artefact, has_cr;

		if (strcmp(key, "sample_spec") == 0 || klen >= sizeof(lower) ||
		    !raw_field(
		        text, key, "input_cost_per_token", in, sizeof(in)) ||
		    !raw_field(
		        text, key, "output_cost_per_token", out, sizeof(out)))
			continue;
		idx++;
		artefact = strlen(in) > 16 || strlen(out) > 16;
		if (idx % 40 != 0 && !artefact)
			continue;
		for (i = 0; i <= klen; i++)
			lower[i] = (char)tolower((unsigned char)key[i]);
		if (strcmp(lower, key) != 0 &&
		    json_object_get(root, lower) != NULL)
			continue; /* a case duplicate: the other one is kept */
		p = bill_price_tab_find(t, lower);
		T_ASSERT(p != NULL);
		has_cr = raw_field(
		    text, key, "cache_read_input_token_cost", cr, sizeof(cr));
		u.cache_read = has_cr ? 54321 : 0;
		T_OK(bill_cost_compute(p, &u, BILL_MULT_ONE, &c));
		T_EQ_INT(c.input, text_cost(in, u.input));
		T_EQ_INT(c.output, text_cost(out, u.output));
		if (has_cr)
			T_EQ_INT(c.cache_read, text_cost(cr, u.cache_read));
		T_EQ_INT(c.total, c.input + c.output + c.cache_read);
		checked++;
		artefacts += artefact;
	}
	printf("  litellm: %zu entries priced exactly, %zu of them float "
	       "artefacts\n",
	    checked, artefacts);
	T_ASSERT(checked >= 40);
	T_ASSERT(artefacts >= 5);
	json_decref(root);
	free(text);
	bill_price_tab_unref(t);
}

T_MAIN(T_CASE(test_bundled_table), T_CASE(test_exact_prices),
    T_CASE(test_refused_entries), T_CASE(test_long_name_refused),
    T_CASE(test_broken_inputs), T_CASE(test_mutated_files), T_CASE(test_lookup),
    T_CASE(test_unknown_policy), T_CASE(test_reload_swap),
    T_CASE(test_concurrent_swap), T_CASE(test_litellm_file))
