/*
 * bill_price.c: the LiteLLM-format price table: exact price recovery from
 * jansson's doubles, the immutable sorted table, the fuzzy model lookup
 * and the holder that swaps tables and counts unknown models.
 *
 * See bill_price.h for the contract and the choice of the price unit.
 */
#include "bill_price.h"

#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

#include "err.h"
#include "log.h"

#define BP_LOG_REFUSED_MAX 8 /* refused entries logged per load */

struct bill_price_ent {
	char             *name;
	size_t            order; /* position in the file, keeps the first dup */
	struct bill_price price;
};

struct bill_price_tab {
	atomic_int             refs;
	size_t                 n;
	struct bill_price_ent *ents;
};

/* The JSON fields, in the order of bp_fields[]. */
enum bp_field {
	BP_F_IN = 0,
	BP_F_OUT,
	BP_F_C5M,
	BP_F_C1H,
	BP_F_CREAD,
	BP_F_IN_L,
	BP_F_OUT_L,
	BP_F_C5M_L,
	BP_F_C1H_L,
	BP_F_CREAD_L,
	BP_F_N_
};

static const char *const bp_fields[BP_F_N_] = {
    "input_cost_per_token",
    "output_cost_per_token",
    "cache_creation_input_token_cost",
    "cache_creation_input_token_cost_above_1hr",
    "cache_read_input_token_cost",
    "input_cost_per_token_above_200k_tokens",
    "output_cost_per_token_above_200k_tokens",
    "cache_creation_input_token_cost_above_200k_tokens",
    "cache_creation_input_token_cost_above_1hr_above_200k_tokens",
    "cache_read_input_token_cost_above_200k_tokens",
};

/* 10^n for 0 <= n <= 38, exactly. */
static __int128
bp_pow10(int n)
{
	__int128 v = 1;

	ASSERT(n >= 0 && n <= 38);
	while (n-- > 0)
		v *= 10;
	return v;
}

/*
 * The shortest decimal that round-trips to d, as "D.DDDDe[+-]X" in buf.
 * Recovering the written text of a JSON number, not doing arithmetic.
 */
static void
bp_shortest(double d, char *buf, size_t cap)
{
	int prec;

	for (prec = 1; prec <= 17; prec++) {
		snprintf(buf, cap, "%.*e", prec - 1, d);
		if (strtod(buf, NULL) == d)
			return;
	}
}

/*
 * Scales the decimal text "D[.DDD]e[+-]X" (as bp_shortest writes it) to
 * 1e-27 units.  -ERR_INVAL if it does not scale exactly or is too large.
 */
static int
bp_scale_text(const char *s, __int128 *out)
{
	__int128 mant = 0, v;
	int      nfrac = 0, exp10, shift, seen_dot = 0, ndig = 0;
	char    *end;
	long     e;

	for (; *s != '\0' && *s != 'e'; s++) {
		if (*s == '.') {
			seen_dot = 1;
			continue;
		}
		if (!isdigit((unsigned char)*s) || ++ndig > 30)
			return -ERR_INVAL;
		mant = mant * 10 + (*s - '0');
		nfrac += seen_dot;
	}
	if (*s != 'e' || ndig == 0)
		return -ERR_INVAL;
	errno = 0;
	e = strtol(s + 1, &end, 10);
	if (errno != 0 || *end != '\0' || e < -400 || e > 400)
		return -ERR_INVAL;
	exp10 = (int)e - nfrac; /* value = mant * 10^exp10 */
	while (mant != 0 && mant % 10 == 0) {
		mant /= 10;
		exp10++;
	}
	if (mant == 0) {
		*out = 0;
		return 0;
	}
	shift = exp10 + BILL_PRICE_SCALE;
	if (shift < 0 || shift > 38)
		return -ERR_INVAL;
	if (__builtin_mul_overflow(mant, bp_pow10(shift), &v))
		return -ERR_INVAL;
	if (v > (__int128)BILL_PRICE_MAX_USD * bp_pow10(BILL_PRICE_SCALE))
		return -ERR_INVAL;
	*out = v;
	return 0;
}

/* A JSON number as an exact price; -ERR_TYPE or -ERR_INVAL. */
static int
bp_from_json(const json_t *j, __int128 *out)
{
	char   buf[64];
	double d;

	if (json_is_integer(j)) {
		json_int_t i = json_integer_value(j);

		if (i < 0 || i > BILL_PRICE_MAX_USD)
			return -ERR_INVAL;
		*out = (__int128)i * bp_pow10(BILL_PRICE_SCALE);
		return 0;
	}
	if (!json_is_real(j))
		return -ERR_TYPE;
	d = json_real_value(j);
	if (!(d >= 0.0) || d > (double)BILL_PRICE_MAX_USD)
		return -ERR_INVAL;
	bp_shortest(d, buf, sizeof(buf));
	return bp_scale_text(buf, out);
}

/* Fills the holes of a price from the present fields (see the header). */
static void
bp_fill(struct bill_price *p, const __int128 *v, const bool *has)
{
	__int128 *b = p->p[BILL_TIER_BASE], *l = p->p[BILL_TIER_LONG];

	b[BILL_B_INPUT] = v[BP_F_IN];
	b[BILL_B_OUTPUT] = v[BP_F_OUT];
	b[BILL_B_CACHE_5M] = has[BP_F_C5M] ? v[BP_F_C5M] : v[BP_F_IN];
	b[BILL_B_CACHE_1H] = has[BP_F_C1H] ? v[BP_F_C1H] : b[BILL_B_CACHE_5M];
	b[BILL_B_CACHE_READ] = has[BP_F_CREAD] ? v[BP_F_CREAD] : v[BP_F_IN];
	p->has_long = has[BP_F_IN_L];
	if (!p->has_long) {
		memcpy(l, b, sizeof(p->p[0]));
		return;
	}
	l[BILL_B_INPUT] = v[BP_F_IN_L];
	l[BILL_B_OUTPUT] = has[BP_F_OUT_L] ? v[BP_F_OUT_L] : b[BILL_B_OUTPUT];
	l[BILL_B_CACHE_5M] =
	    has[BP_F_C5M_L] ? v[BP_F_C5M_L] : b[BILL_B_CACHE_5M];
	l[BILL_B_CACHE_1H] =
	    has[BP_F_C1H_L] ? v[BP_F_C1H_L] : b[BILL_B_CACHE_1H];
	l[BILL_B_CACHE_READ] =
	    has[BP_F_CREAD_L] ? v[BP_F_CREAD_L] : b[BILL_B_CACHE_READ];
}

/*
 * One member of the table: 1 kept (in *p), 0 skipped, or -ERR_x refused
 * with the offending field in *why.
 */
static int
bp_entry(const json_t *obj, struct bill_price *p, const char **why)
{
	__int128 v[BP_F_N_] = {0};
	bool     has[BP_F_N_] = {false};
	size_t   i;
	int      rv;

	*why = "shape";
	if (!json_is_object(obj))
		return -ERR_TYPE;
	if (json_object_get(obj, bp_fields[BP_F_IN]) == NULL ||
	    json_object_get(obj, bp_fields[BP_F_OUT]) == NULL)
		return 0;
	for (i = 0; i < BP_F_N_; i++) {
		const json_t *f = json_object_get(obj, bp_fields[i]);

		if (f == NULL)
			continue;
		rv = bp_from_json(f, &v[i]);
		if (rv != 0) {
			*why = bp_fields[i];
			return rv;
		}
		has[i] = true;
	}
	memset(p, 0, sizeof(*p));
	bp_fill(p, v, has);
	return 1;
}

static int
bp_ent_cmp(const void *a, const void *b)
{
	const struct bill_price_ent *x = a, *y = b;
	int                          c = strcmp(x->name, y->name);

	if (c != 0)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

static void
bp_lower(char *dst, const char *src, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		dst[i] = (char)tolower((unsigned char)src[i]);
	dst[len] = '\0';
}

static void
bp_tab_free(struct bill_price_tab *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->n; i++)
		free(t->ents[i].name);
	free(t->ents);
	free(t);
}

/* Sorts, drops later duplicates; returns the number dropped. */
static size_t
bp_tab_sort(struct bill_price_tab *t)
{
	size_t i, w = 0, dups = 0;

	if (t->n == 0)
		return 0;
	qsort(t->ents, t->n, sizeof(t->ents[0]), bp_ent_cmp);
	for (i = 0; i < t->n; i++) {
		if (w > 0 &&
		    strcmp(t->ents[w - 1].name, t->ents[i].name) == 0) {
			free(t->ents[i].name);
			dups++;
			continue;
		}
		t->ents[w++] = t->ents[i];
	}
	t->n = w;
	return dups;
}

static void
bp_refuse(struct bill_price_stats *st, const char *key, const char *why, int rv)
{
	char name[BILL_PRICE_NAME_MAX + 1];

	if (++st->refused > BP_LOG_REFUSED_MAX)
		return;
	str_copy(name, sizeof(name), key); /* a long key is cut for the log */
	log_warn("bill.price_refused", LOG_STR("model", name),
	    LOG_STR("field", why), LOG_ERR(rv));
}

int
bill_price_tab_parse(const char *text, size_t len, size_t file_max,
    struct bill_price_tab **out, struct bill_price_stats *st)
{
	struct bill_price_stats s = {0};
	struct bill_price_tab  *t;
	json_error_t            jerr;
	json_t                 *root, *val;
	const char             *key;

	if (len > file_max)
		return -ERR_TOOBIG;
	root = json_loadb(text, len, 0, &jerr);
	if (root == NULL || !json_is_object(root)) {
		log_warn("bill.price_parse_failed", LOG_I64("line", jerr.line),
		    LOG_MSG(root == NULL ? jerr.text : "not a JSON object"));
		json_decref(root);
		return -ERR_PROTO;
	}
	t = xcalloc(1, sizeof(*t));
	atomic_init(&t->refs, 1);
	t->ents = xcalloc(json_object_size(root) + 1, sizeof(t->ents[0]));
	json_object_foreach(root, key, val)
	{
		struct bill_price_ent *e = &t->ents[t->n];
		size_t                 klen = strlen(key);
		const char            *why;
		int                    rv;

		s.members++;
		if (strcmp(key, "sample_spec") == 0) {
			s.skipped++;
			continue;
		}
		if (klen == 0 || klen > BILL_PRICE_NAME_MAX) {
			bp_refuse(&s, key, "name", -ERR_TOOBIG);
			continue;
		}
		rv = bp_entry(val, &e->price, &why);
		if (rv < 0) {
			bp_refuse(&s, key, why, rv);
			continue;
		}
		if (rv == 0) {
			s.skipped++;
			continue;
		}
		e->name = xmalloc(klen + 1);
		bp_lower(e->name, key, klen);
		e->order = t->n++;
	}
	json_decref(root);
	s.dups = bp_tab_sort(t);
	s.loaded = t->n;
	if (s.refused > BP_LOG_REFUSED_MAX)
		log_warn("bill.price_refused_total", LOG_U64("n", s.refused));
	if (st != NULL)
		*st = s;
	if (t->n == 0) {
		bp_tab_free(t);
		return -ERR_NOTFOUND;
	}
	*out = t;
	return 0;
}

int
bill_price_tab_load(const char *path, size_t file_max,
    struct bill_price_tab **out, struct bill_price_stats *st)
{
	struct stat sb;
	char       *text = NULL;
	size_t      got = 0;
	ssize_t     n;
	int         fd, rv;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -ERR_IO;
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		rv = -ERR_IO;
		goto out;
	}
	if ((uint64_t)sb.st_size > file_max) {
		rv = -ERR_TOOBIG;
		goto out;
	}
	/* Read one byte more than the size to notice a file that grew. */
	text = xmalloc((size_t)sb.st_size + 1);
	while (got <= (size_t)sb.st_size) {
		n = read(fd, text + got, (size_t)sb.st_size + 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rv = -ERR_IO;
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (got > (size_t)sb.st_size) {
		rv = -ERR_IO;
		goto out;
	}
	rv = bill_price_tab_parse(text, got, file_max, out, st);
out:
	free(text);
	close(fd);
	return rv;
}

struct bill_price_tab *
bill_price_tab_ref(struct bill_price_tab *t)
{
	if (t != NULL)
		atomic_fetch_add(&t->refs, 1);
	return t;
}

void
bill_price_tab_unref(struct bill_price_tab *t)
{
	if (t == NULL)
		return;
	if (atomic_fetch_sub(&t->refs, 1) == 1)
		bp_tab_free(t);
}

size_t
bill_price_tab_count(const struct bill_price_tab *t)
{
	return t->n;
}

static int
bp_key_cmp(const void *key, const void *ent)
{
	return strcmp(key, ((const struct bill_price_ent *)ent)->name);
}

static const struct bill_price_ent *
bp_find_ent(const struct bill_price_tab *t, const char *key)
{
	return bsearch(key, t->ents, t->n, sizeof(t->ents[0]), bp_key_cmp);
}

const struct bill_price *
bill_price_tab_find(const struct bill_price_tab *t, const char *key)
{
	const struct bill_price_ent *e = bp_find_ent(t, key);

	return e != NULL ? &e->price : NULL;
}

void
bill_price_fmt(__int128 units, char *buf, size_t cap)
{
	char     digits[64];
	__int128 v = units < 0 ? -units : units;
	size_t   n = 0, i, w = 0, intlen, end;

	ASSERT(cap >= 48);
	do {
		digits[n++] = (char)('0' + (int)(v % 10));
		v /= 10;
	} while (v != 0);
	while (n <= BILL_PRICE_SCALE)
		digits[n++] = '0';
	if (units < 0)
		buf[w++] = '-';
	intlen = n - BILL_PRICE_SCALE;
	for (i = 0; i < intlen; i++)
		buf[w++] = digits[n - 1 - i];
	/* Fraction digits without trailing zeros. */
	for (end = 0; end < BILL_PRICE_SCALE && digits[end] == '0'; end++)
		;
	if (end < BILL_PRICE_SCALE) {
		buf[w++] = '.';
		for (i = BILL_PRICE_SCALE; i > end; i--)
			buf[w++] = digits[i - 1];
	}
	buf[w] = '\0';
}
