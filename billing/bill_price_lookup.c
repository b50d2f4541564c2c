/*
 * bill_price_lookup.c: from the model name a client sent to a price: the
 * fuzzy lookup of the original product, made deterministic, and the
 * holder of the current table with its unknown-model policy.
 *
 * The original walks Go maps for its Claude family step, so which entry
 * priced an unversioned "claude-opus" varied between runs.  Here each
 * family names its canonical keys in a fixed order.  See bill_price.h.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>

#include "bill_price.h"
#include "err.h"
#include "log.h"

#define BP_NAME_CAP (BILL_PRICE_NAME_MAX + 1)
#define BP_CANDS    3

/* Claude families: the kind and one version spelling -> keys to try. */
struct bp_family {
	const char *kind;   /* "opus", "sonnet", "haiku" */
	const char *ver[2]; /* either spelling, NULL: any version */
	const char *keys[3];
};

static const struct bp_family bp_families[] = {
    {"opus", {"4-6", "4.6"}, {"claude-opus-4-6", NULL, NULL}},
    {"opus", {"4-5", "4.5"}, {"claude-opus-4-5", NULL, NULL}},
    {"opus", {"4-1", "4.1"}, {"claude-opus-4-1", NULL, NULL}},
    {"opus", {"3-opus", "opus-3"}, {"claude-3-opus-20240229", NULL, NULL}},
    {"opus", {NULL, NULL},
        {"claude-opus-4-20250514", "claude-opus-4", "claude-opus-4-1"}},
    {"sonnet", {"4-5", "4.5"}, {"claude-sonnet-4-5", NULL, NULL}},
    {"sonnet", {"3-7", "3.7"}, {"claude-3-7-sonnet-20250219", NULL, NULL}},
    {"sonnet", {"3-5", "3.5"}, {"claude-3-5-sonnet-20241022", NULL, NULL}},
    {"sonnet", {NULL, NULL},
        {"claude-sonnet-4-20250514", "claude-sonnet-4", "claude-sonnet-4-5"}},
    {"haiku", {"4-5", "4.5"}, {"claude-haiku-4-5", NULL, NULL}},
    {"haiku", {"3-5", "3.5"}, {"claude-3-5-haiku-20241022", NULL, NULL}},
    {"haiku", {NULL, NULL}, {"claude-3-haiku-20240307", NULL, NULL}},
};

static int
bp_try(const struct bill_price_tab *t, const char *key, enum bill_match_how how,
    struct bill_price_match *out)
{
	const struct bill_price *p;

	if (key[0] == '\0')
		return -ERR_NOTFOUND;
	p = bill_price_tab_find(t, key);
	if (p == NULL)
		return -ERR_NOTFOUND;
	out->price = *p;
	out->how = how;
	str_copy(out->key, sizeof(out->key), key);
	return 0;
}

/* Drops prefix from the front of s if present (in place). */
static void
bp_strip_prefix(char *s, const char *prefix)
{
	size_t n = strlen(prefix);

	if (strncmp(s, prefix, n) == 0)
		memmove(s, s + n, strlen(s + n) + 1);
}

/* Keeps what follows the last occurrence of mid, if any. */
static void
bp_after_last(char *s, const char *mid)
{
	char  *hit = NULL, *p = s;
	size_t n = strlen(mid);

	while ((p = strstr(p, mid)) != NULL)
		hit = p++;
	if (hit != NULL)
		memmove(s, hit + n, strlen(hit + n) + 1);
}

static void
bp_strip_slashes(char *s)
{
	size_t n = strspn(s, "/");

	memmove(s, s + n, strlen(s + n) + 1);
}

/* The candidates: the name, its Gemini/Vertex-stripped form, last segment. */
static size_t
bp_candidates(const char *m, char c[BP_CANDS][BP_NAME_CAP])
{
	const char *seg = strrchr(m, '/');
	size_t      n = 0, i, k;
	char        tmp[BP_CANDS][BP_NAME_CAP];

	str_copy(tmp[0], BP_NAME_CAP, m);
	str_copy(tmp[1], BP_NAME_CAP, m);
	bp_strip_slashes(tmp[1]);
	bp_strip_prefix(tmp[1], "models/");
	bp_strip_prefix(tmp[1], "publishers/google/models/");
	bp_after_last(tmp[1], "/publishers/google/models/");
	bp_after_last(tmp[1], "/models/");
	bp_strip_slashes(tmp[1]);
	str_copy(tmp[2], BP_NAME_CAP, seg != NULL ? seg + 1 : m);
	for (i = 0; i < BP_CANDS; i++) {
		bool dup = tmp[i][0] == '\0';

		for (k = 0; k < n && !dup; k++)
			dup = strcmp(c[k], tmp[i]) == 0;
		if (!dup)
			memcpy(c[n++], tmp[i], BP_NAME_CAP);
	}
	return n;
}

/* "claude-sonnet-4.5" -> "claude-sonnet-4-5": digit.digit to digit-digit. */
static bool
bp_dots_to_dashes(const char *in, char *out)
{
	size_t i;
	bool   changed = false;

	str_copy(out, BP_NAME_CAP, in);
	for (i = 1; out[i] != '\0'; i++) {
		if (out[i] == '.' && isdigit((unsigned char)out[i - 1]) &&
		    isdigit((unsigned char)out[i + 1])) {
			out[i] = '-';
			changed = true;
		}
	}
	return changed;
}

/* "x-4-5-y" or "x-4-5" -> "x-4.5...": single digits only. */
static bool
bp_dashes_to_dot(const char *in, char *out)
{
	size_t i;

	str_copy(out, BP_NAME_CAP, in);
	for (i = 0; out[i] != '\0' && out[i + 1] != '\0'; i++) {
		const char *q = out + i;

		if (q[0] == '-' && isdigit((unsigned char)q[1]) &&
		    q[2] == '-' && isdigit((unsigned char)q[3]) &&
		    (q[4] == '-' || q[4] == '\0')) {
			out[i + 2] = '.';
			return true;
		}
	}
	return false;
}

static bool
bp_all_digits(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return n > 0;
}

/*
 * The base name: drops dash-separated parts of 8 digits (dates), cuts a
 * part at ':' ("4-5:beta" -> "4-5") and drops it when only a version tag
 * remains (Bedrock's "v1:0"), and drops a trailing -YYYY-MM-DD (OpenAI).
 */
static bool
bp_base_name(const char *in, char *out)
{
	const char *p = in;
	size_t      w = 0, n, keep, len;

	while (*p != '\0') {
		const char *dash = strchr(p, '-'), *colon;

		n = dash != NULL ? (size_t)(dash - p) : strlen(p);
		colon = memchr(p, ':', n);
		keep = colon != NULL ? (size_t)(colon - p) : n;
		if (colon != NULL &&
		    (keep == 0 ||
		        (p[0] == 'v' && bp_all_digits(p + 1, keep - 1))))
			keep = 0;
		if (keep > 0 && !(keep == 8 && bp_all_digits(p, keep))) {
			if (w > 0)
				out[w++] = '-';
			memcpy(out + w, p, keep);
			w += keep;
		}
		p += n;
		if (*p == '-')
			p++;
	}
	out[w] = '\0';
	len = w;
	/* "-2025-04-16": '-' at len-11, len-6 and len-3. */
	if (len > 11 && out[len - 11] == '-' && out[len - 6] == '-' &&
	    out[len - 3] == '-' && bp_all_digits(out + len - 10, 4) &&
	    bp_all_digits(out + len - 5, 2) && bp_all_digits(out + len - 2, 2))
		out[len - 11] = '\0';
	return strcmp(out, in) != 0;
}

static int
bp_family(
    const struct bill_price_tab *t, const char *m, struct bill_price_match *out)
{
	size_t i, k;

	for (i = 0; i < ARRAY_SIZE(bp_families); i++) {
		const struct bp_family *f = &bp_families[i];

		if (strstr(m, f->kind) == NULL)
			continue;
		if (f->ver[0] != NULL && strstr(m, f->ver[0]) == NULL &&
		    strstr(m, f->ver[1]) == NULL)
			continue;
		for (k = 0; k < ARRAY_SIZE(f->keys) && f->keys[k] != NULL; k++)
			if (bp_try(t, f->keys[k], BILL_M_FAMILY, out) == 0)
				return 0;
	}
	return -ERR_NOTFOUND;
}

/* "gpt-5.2-codex" -> "gpt-5.2"; not "gpt-4o" (a letter after the digits). */
static int
bp_gpt_base(
    const struct bill_price_tab *t, const char *m, struct bill_price_match *out)
{
	char   base[BP_NAME_CAP];
	size_t i = 4;

	if (strncmp(m, "gpt-", 4) != 0 || !isdigit((unsigned char)m[4]))
		return -ERR_NOTFOUND;
	while (isdigit((unsigned char)m[i]))
		i++;
	if (m[i] == '.' && isdigit((unsigned char)m[i + 1])) {
		i++;
		while (isdigit((unsigned char)m[i]))
			i++;
	}
	if (m[i] != '-' && m[i] != '\0')
		return -ERR_NOTFOUND;
	memcpy(base, m, i);
	base[i] = '\0';
	return bp_try(t, base, BILL_M_GPT_BASE, out);
}

int
bill_price_tab_match(const struct bill_price_tab *t, const char *model,
    struct bill_price_match *out)
{
	char   m[BP_NAME_CAP], c[BP_CANDS][BP_NAME_CAP], v[BP_NAME_CAP];
	char   b[BP_NAME_CAP];
	size_t len, n, i, lead;

	lead = strspn(model, " \t");
	len = strlen(model + lead);
	while (len > 0 && isspace((unsigned char)model[lead + len - 1]))
		len--;
	if (len > BILL_PRICE_NAME_MAX)
		return -ERR_TOOBIG;
	for (i = 0; i < len; i++)
		m[i] = (char)tolower((unsigned char)model[lead + i]);
	m[len] = '\0';
	n = bp_candidates(m, c);
	if (n == 0)
		return -ERR_NOTFOUND;
	for (i = 0; i < n; i++)
		if (bp_try(t, c[i], BILL_M_EXACT, out) == 0)
			return 0;
	for (i = 0; i < n; i++) {
		if (bp_dashes_to_dot(c[i], v) &&
		    bp_try(t, v, BILL_M_NORMAL, out) == 0)
			return 0;
		if (bp_dots_to_dashes(c[i], v) &&
		    bp_try(t, v, BILL_M_NORMAL, out) == 0)
			return 0;
	}
	for (i = 0; i < n; i++) {
		if (!bp_base_name(c[i], b))
			continue;
		if (bp_try(t, b, BILL_M_BASE, out) == 0)
			return 0;
		if (bp_dots_to_dashes(b, v) &&
		    bp_try(t, v, BILL_M_BASE, out) == 0)
			return 0;
	}
	/* The families and gpt bases look at the last segment, dates gone. */
	bp_base_name(c[n - 1], b);
	if (strstr(b, "claude") != NULL && bp_family(t, b, out) == 0)
		return 0;
	if (bp_gpt_base(t, b, out) == 0)
		return 0;
	return -ERR_NOTFOUND;
}

/* ---- The holder ---- */

struct bp_unknown {
	char    *name;
	uint64_t count;
};

struct bill_prices {
	pthread_mutex_t          mu;
	struct bill_price_tab   *tab;
	char                    *path, *bundled, *fallback;
	size_t                   file_max;
	enum bill_unknown_policy policy;
	struct bp_unknown        unk[BILL_UNKNOWN_MAX];
	size_t                   n_unk;
	uint64_t                 unk_total;
	bool                     unk_full_logged;
};

static char *
bp_dup_opt(const char *s)
{
	return s != NULL && s[0] != '\0' ? xstrdup(s) : NULL;
}

struct bill_prices *
bill_prices_new(const struct bill_prices_cfg *cfg)
{
	struct bill_prices *p = xcalloc(1, sizeof(*p));

	pthread_mutex_init(&p->mu, NULL);
	p->path = bp_dup_opt(cfg->path);
	p->bundled = bp_dup_opt(cfg->bundled);
	p->fallback = bp_dup_opt(cfg->fallback_model);
	p->file_max = cfg->file_max != 0 ? cfg->file_max : BILL_PRICE_FILE_MAX;
	p->policy = cfg->unknown;
	return p;
}

void
bill_prices_free(struct bill_prices *p)
{
	size_t i;

	if (p == NULL)
		return;
	bill_price_tab_unref(p->tab);
	for (i = 0; i < p->n_unk; i++)
		free(p->unk[i].name);
	free(p->path);
	free(p->bundled);
	free(p->fallback);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

void
bill_prices_swap(struct bill_prices *p, struct bill_price_tab *t)
{
	struct bill_price_tab *old;

	pthread_mutex_lock(&p->mu);
	old = p->tab;
	p->tab = t;
	pthread_mutex_unlock(&p->mu);
	bill_price_tab_unref(old);
}

struct bill_price_tab *
bill_prices_get(struct bill_prices *p)
{
	struct bill_price_tab *t;

	pthread_mutex_lock(&p->mu);
	t = bill_price_tab_ref(p->tab);
	pthread_mutex_unlock(&p->mu);
	return t;
}

int
bill_prices_reload(struct bill_prices *p, struct bill_price_stats *st)
{
	const char *const       paths[2] = {p->path, p->bundled};
	struct bill_price_tab  *t;
	struct bill_price_stats s;
	size_t                  i;
	int                     rv = -ERR_NOTFOUND;

	for (i = 0; i < ARRAY_SIZE(paths); i++) {
		if (paths[i] == NULL)
			continue;
		rv = bill_price_tab_load(paths[i], p->file_max, &t, &s);
		if (rv == 0) {
			log_info("bill.price_loaded", LOG_STR("path", paths[i]),
			    LOG_U64("models", s.loaded),
			    LOG_U64("refused", s.refused));
			bill_prices_swap(p, t);
			if (st != NULL)
				*st = s;
			return 0;
		}
		log_warn("bill.price_load_failed", LOG_STR("path", paths[i]),
		    LOG_ERR(rv));
	}
	return rv;
}

/* Counts an unknown name; true when this is its first sighting. */
static bool
bp_note_unknown(struct bill_prices *p, const char *name)
{
	size_t i;
	bool   first = false;

	pthread_mutex_lock(&p->mu);
	p->unk_total++;
	for (i = 0; i < p->n_unk; i++)
		if (strcmp(p->unk[i].name, name) == 0)
			break;
	if (i < p->n_unk) {
		p->unk[i].count++;
	} else if (p->n_unk < BILL_UNKNOWN_MAX) {
		p->unk[p->n_unk].name = xstrdup(name);
		p->unk[p->n_unk++].count = 1;
		first = true;
	} else if (!p->unk_full_logged) {
		/* Past the bound only the total counts; say so once. */
		p->unk_full_logged = true;
		log_warn("bill.price_unknown_overflow",
		    LOG_U64("max", BILL_UNKNOWN_MAX));
	}
	pthread_mutex_unlock(&p->mu);
	return first;
}

int
bill_prices_lookup(
    struct bill_prices *p, const char *model, struct bill_price_match *out)
{
	struct bill_price_tab *t = bill_prices_get(p);
	int                    rv;

	if (t == NULL)
		return -ERR_UNAVAIL;
	rv = bill_price_tab_match(t, model, out);
	if (rv != -ERR_NOTFOUND)
		goto out;
	rv = 0;
	if (bp_note_unknown(p, model))
		log_warn("bill.price_unknown", LOG_STR("model", model),
		    LOG_STR("policy",
		        p->policy == BILL_UNKNOWN_FALLBACK ? "fallback"
		                                           : "zero"));
	if (p->policy == BILL_UNKNOWN_FALLBACK && p->fallback != NULL &&
	    bill_price_tab_match(t, p->fallback, out) == 0) {
		out->how = BILL_M_FALLBACK;
		goto out;
	}
	memset(out, 0, sizeof(*out));
	out->how = BILL_M_UNKNOWN;
out:
	bill_price_tab_unref(t);
	return rv;
}

uint64_t
bill_prices_unknown_total(struct bill_prices *p)
{
	uint64_t n;

	pthread_mutex_lock(&p->mu);
	n = p->unk_total;
	pthread_mutex_unlock(&p->mu);
	return n;
}

uint64_t
bill_prices_unknown_count(struct bill_prices *p, const char *model)
{
	uint64_t n = 0;
	size_t   i;

	pthread_mutex_lock(&p->mu);
	for (i = 0; i < p->n_unk; i++)
		if (strcmp(p->unk[i].name, model) == 0)
			n = p->unk[i].count;
	pthread_mutex_unlock(&p->mu);
	return n;
}
