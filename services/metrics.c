/*
 * metrics.c: the Prometheus registry and its text renderer.
 *
 * One mutex per registry guards the family table and child creation; the
 * values themselves are atomics written without the lock.  Doubles live in
 * 64-bit atomics as their bit patterns, updated with a compare-and-swap
 * loop, because C11 has no portable atomic add for floating point.
 * Children are allocated one by one, so a handle stays valid while the
 * child table grows.  A child lookup hashes the label values into an
 * open-addressed index of twice MET_CHILDREN_MAX slots.
 */
#include "metrics.h"

#include <sys/resource.h>

#include <dirent.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

#include "err.h"
#include "log.h"

#define MET_INDEX_SIZE (2 * MET_CHILDREN_MAX)

struct met_counter {
	_Atomic uint64_t v;
};

struct met_gauge {
	_Atomic uint64_t bits;
};

struct met_histogram {
	const struct met_family *fam;
	_Atomic uint64_t         sum_bits;
	_Atomic uint64_t b[]; /* per bucket, not cumulative; +Inf last */
};

union met_value {
	struct met_counter c;
	struct met_gauge   g;
};

struct met_child {
	char                **values;
	struct met_histogram *h; /* histograms only */
	union met_value       u; /* counters and gauges */
};

struct met_family {
	struct met_registry *reg;
	enum met_kind        kind;
	char                *name, *help;
	char               **labels;
	size_t               nlabels;
	double              *bounds;
	size_t               nbounds;
	struct met_child   **children;
	size_t               nchildren;
	uint16_t            *index; /* child number + 1; 0 is empty */
	struct met_child    *overflow;
	_Atomic uint64_t     dropped;
};

struct met_registry {
	pthread_mutex_t    mu;
	unsigned           flags;
	size_t             nfams;
	struct met_family *fams[MET_FAMILIES_MAX];
};

static struct met_registry *met_default_reg;
static pthread_once_t       met_default_once = PTHREAD_ONCE_INIT;

static uint64_t
met_d2u(double d)
{
	uint64_t u;

	memcpy(&u, &d, sizeof(u));
	return u;
}

static double
met_u2d(uint64_t u)
{
	double d;

	memcpy(&d, &u, sizeof(d));
	return d;
}

static void
met_atomic_fadd(_Atomic uint64_t *a, double d)
{
	uint64_t old = atomic_load_explicit(a, memory_order_relaxed);

	while (!atomic_compare_exchange_weak_explicit(a, &old,
	    met_d2u(met_u2d(old) + d), memory_order_relaxed,
	    memory_order_relaxed))
		;
}

void
met_counter_add(struct met_counter *c, uint64_t n)
{
	atomic_fetch_add_explicit(&c->v, n, memory_order_relaxed);
}

void
met_counter_inc(struct met_counter *c)
{
	atomic_fetch_add_explicit(&c->v, 1, memory_order_relaxed);
}

uint64_t
met_counter_value(const struct met_counter *c)
{
	return atomic_load_explicit(&c->v, memory_order_relaxed);
}

void
met_gauge_set(struct met_gauge *g, double v)
{
	atomic_store_explicit(&g->bits, met_d2u(v), memory_order_relaxed);
}

void
met_gauge_add(struct met_gauge *g, double d)
{
	met_atomic_fadd(&g->bits, d);
}

void
met_gauge_inc(struct met_gauge *g)
{
	met_atomic_fadd(&g->bits, 1.0);
}

void
met_gauge_dec(struct met_gauge *g)
{
	met_atomic_fadd(&g->bits, -1.0);
}

double
met_gauge_value(const struct met_gauge *g)
{
	return met_u2d(atomic_load_explicit(&g->bits, memory_order_relaxed));
}

void
met_histogram_observe(struct met_histogram *h, double v)
{
	const struct met_family *f = h->fam;
	size_t                   i = 0;

	while (i < f->nbounds && !(v <= f->bounds[i]))
		i++;
	atomic_fetch_add_explicit(&h->b[i], 1, memory_order_relaxed);
	met_atomic_fadd(&h->sum_bits, v);
}

struct met_registry *
met_registry_new(unsigned flags)
{
	struct met_registry *r = xcalloc(1, sizeof(*r));

	pthread_mutex_init(&r->mu, NULL);
	r->flags = flags;
	return r;
}

static void
met_child_free(const struct met_family *f, struct met_child *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; c->values != NULL && i < f->nlabels; i++)
		free(c->values[i]);
	free(c->values);
	free(c->h);
	free(c);
}

static void
met_family_free(struct met_family *f)
{
	size_t i;

	for (i = 0; i < f->nchildren; i++)
		met_child_free(f, f->children[i]);
	met_child_free(f, f->overflow);
	for (i = 0; i < f->nlabels; i++)
		free(f->labels[i]);
	free(f->labels);
	free(f->children);
	free(f->index);
	free(f->bounds);
	free(f->name);
	free(f->help);
	free(f);
}

void
met_registry_free(struct met_registry *r)
{
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < r->nfams; i++)
		met_family_free(r->fams[i]);
	pthread_mutex_destroy(&r->mu);
	free(r);
}

static void
met_default_init(void)
{
	met_default_reg = met_registry_new(MET_F_PROCESS);
}

struct met_registry *
metrics_default(void)
{
	pthread_once(&met_default_once, met_default_init);
	return met_default_reg;
}

static bool
met_name_ok(const char *s, bool colon)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++) {
		char c = s[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    c == '_' || (colon && c == ':') ||
		    (i > 0 && c >= '0' && c <= '9'))
			continue;
		return false;
	}
	return i > 0;
}

static int
met_check(enum met_kind kind, const char *name, const char *const *labels,
    size_t nlabels, const double *bounds, size_t nbounds)
{
	size_t i, n = strlen(name);

	if (!met_name_ok(name, true) ||
	    (kind == MET_HISTOGRAM) != (nbounds > 0))
		return -ERR_INVAL;
	if (kind == MET_COUNTER && (n < 6 || strcmp(name + n - 6, "_total")))
		return -ERR_INVAL;
	if (nlabels > MET_LABELS_MAX || nbounds > MET_BUCKETS_MAX)
		return -ERR_TOOBIG;
	for (i = 0; i < nlabels; i++)
		if (!met_name_ok(labels[i], false) ||
		    strncmp(labels[i], "__", 2) == 0 ||
		    (kind == MET_HISTOGRAM && strcmp(labels[i], "le") == 0))
			return -ERR_INVAL;
	for (i = 0; i < nbounds; i++)
		if (!isfinite(bounds[i]) ||
		    (i > 0 && bounds[i] <= bounds[i - 1]))
			return -ERR_INVAL;
	return 0;
}

static bool
met_same_shape(const struct met_family *f, enum met_kind kind,
    const char *const *labels, size_t nlabels, const double *bounds,
    size_t nbounds)
{
	size_t i;

	if (f->kind != kind || f->nlabels != nlabels || f->nbounds != nbounds)
		return false;
	for (i = 0; i < nlabels; i++)
		if (strcmp(f->labels[i], labels[i]) != 0)
			return false;
	return nbounds == 0 ||
	    memcmp(f->bounds, bounds, nbounds * sizeof(double)) == 0;
}

int
met_family_new(struct met_registry *r, enum met_kind kind, const char *name,
    const char *help, const char *const *labels, size_t nlabels,
    const double *bounds, size_t nbounds, struct met_family **out)
{
	struct met_family *f;
	size_t             i;
	int                rv;

	rv = met_check(kind, name, labels, nlabels, bounds, nbounds);
	if (rv != 0)
		return rv;
	pthread_mutex_lock(&r->mu);
	for (i = 0; i < r->nfams; i++) {
		f = r->fams[i];
		if (strcmp(f->name, name) != 0)
			continue;
		pthread_mutex_unlock(&r->mu);
		if (!met_same_shape(f, kind, labels, nlabels, bounds, nbounds))
			return -ERR_EXISTS;
		*out = f;
		return 0;
	}
	if (r->nfams == MET_FAMILIES_MAX) {
		pthread_mutex_unlock(&r->mu);
		return -ERR_TOOBIG;
	}
	f = xcalloc(1, sizeof(*f));
	f->reg = r;
	f->kind = kind;
	f->name = xstrdup(name);
	f->help = xstrdup(help ? help : "");
	f->nlabels = nlabels;
	f->labels = xcalloc(nlabels + 1, sizeof(char *));
	for (i = 0; i < nlabels; i++)
		f->labels[i] = xstrdup(labels[i]);
	f->nbounds = nbounds;
	f->bounds = xcalloc(nbounds + 1, sizeof(double));
	if (nbounds > 0)
		memcpy(f->bounds, bounds, nbounds * sizeof(double));
	r->fams[r->nfams++] = f;
	pthread_mutex_unlock(&r->mu);
	*out = f;
	return 0;
}

/* The length a label value keeps: MET_VALUE_MAX bytes at a UTF-8 boundary. */
static size_t
met_value_len(const char *v)
{
	size_t n = strnlen(v, MET_VALUE_MAX + 1);

	if (n > MET_VALUE_MAX) {
		n = MET_VALUE_MAX;
		while (n > 0 && ((unsigned char)v[n] & 0xC0) == 0x80)
			n--;
	}
	return n;
}

static struct met_child *
met_child_new(const struct met_family *f, const char *const *values)
{
	struct met_child *c = xcalloc(1, sizeof(*c));
	size_t            i;

	c->values = xcalloc(f->nlabels + 1, sizeof(char *));
	for (i = 0; i < f->nlabels; i++)
		c->values[i] = xstrndup(values[i], met_value_len(values[i]));
	if (f->kind == MET_HISTOGRAM) {
		c->h = xcalloc(1,
		    sizeof(*c->h) +
		        (f->nbounds + 1) * sizeof(_Atomic uint64_t));
		c->h->fam = f;
	}
	return c;
}

static uint32_t
met_hash(const struct met_family *f, const char *const *values)
{
	uint32_t h = 2166136261u;
	size_t   i, j, n;

	for (i = 0; i < f->nlabels; i++) {
		n = met_value_len(values[i]);
		for (j = 0; j < n; j++)
			h = (h ^ (unsigned char)values[i][j]) * 16777619u;
		h = (h ^ 0xFFu) * 16777619u;
	}
	return h;
}

static bool
met_child_match(const struct met_family *f, const struct met_child *c,
    const char *const *values)
{
	size_t i, n;

	for (i = 0; i < f->nlabels; i++) {
		n = met_value_len(values[i]);
		if (strlen(c->values[i]) != n ||
		    memcmp(c->values[i], values[i], n) != 0)
			return false;
	}
	return true;
}

/* Finds or creates a child; the registry lock is held. */
static struct met_child *
met_lookup_locked(struct met_family *f, const char *const *values)
{
	struct met_child *c;
	uint32_t          slot;

	slot = met_hash(f, values) % MET_INDEX_SIZE;
	if (f->index == NULL)
		f->index = xcalloc(MET_INDEX_SIZE, sizeof(uint16_t));
	while (f->index[slot] != 0) {
		c = f->children[f->index[slot] - 1];
		if (met_child_match(f, c, values))
			return c;
		slot = (slot + 1) % MET_INDEX_SIZE;
	}
	if (f->nchildren == MET_CHILDREN_MAX) {
		if (atomic_fetch_add(&f->dropped, 1) == 0)
			log_warn("met.children_overflow",
			    LOG_STR("family", f->name),
			    LOG_I64("max", MET_CHILDREN_MAX));
		if (f->overflow == NULL)
			f->overflow = met_child_new(f, values);
		return f->overflow;
	}
	if (f->children == NULL)
		f->children = xcalloc(MET_CHILDREN_MAX, sizeof(*f->children));
	c = met_child_new(f, values);
	f->children[f->nchildren++] = c;
	f->index[slot] = (uint16_t)f->nchildren;
	return c;
}

static struct met_child *
met_lookup(struct met_family *f, enum met_kind kind, const char *const *values)
{
	struct met_child *c;

	if (f->kind != kind)
		BUG("metrics: %s is not of kind %d", f->name, (int)kind);
	if (f->nlabels > 0 && values == NULL)
		BUG("metrics: %s needs label values", f->name);
	pthread_mutex_lock(&f->reg->mu);
	c = met_lookup_locked(f, values);
	pthread_mutex_unlock(&f->reg->mu);
	return c;
}

struct met_counter *
met_counter_get(struct met_family *f, const char *const *values)
{
	return &met_lookup(f, MET_COUNTER, values)->u.c;
}

struct met_gauge *
met_gauge_get(struct met_family *f, const char *const *values)
{
	return &met_lookup(f, MET_GAUGE, values)->u.g;
}

struct met_histogram *
met_histogram_get(struct met_family *f, const char *const *values)
{
	return met_lookup(f, MET_HISTOGRAM, values)->h;
}

static struct met_family *
met_simple(struct met_registry *r, enum met_kind kind, const char *name,
    const char *help, const double *bounds, size_t nbounds)
{
	struct met_family *f;
	int                rv;

	rv = met_family_new(r, kind, name, help, NULL, 0, bounds, nbounds, &f);
	if (rv != 0) {
		log_error("met.register_failed", LOG_STR("family", name),
		    LOG_ERR(rv));
		return NULL;
	}
	return f;
}

struct met_counter *
met_counter_new(struct met_registry *r, const char *name, const char *help)
{
	struct met_family *f = met_simple(r, MET_COUNTER, name, help, NULL, 0);

	return f ? met_counter_get(f, NULL) : NULL;
}

struct met_gauge *
met_gauge_new(struct met_registry *r, const char *name, const char *help)
{
	struct met_family *f = met_simple(r, MET_GAUGE, name, help, NULL, 0);

	return f ? met_gauge_get(f, NULL) : NULL;
}

struct met_histogram *
met_histogram_new(struct met_registry *r, const char *name, const char *help,
    const double *bounds, size_t nbounds)
{
	struct met_family *f;

	f = met_simple(r, MET_HISTOGRAM, name, help, bounds, nbounds);
	return f ? met_histogram_get(f, NULL) : NULL;
}

/* Shortest text that reads back as v; NaN and the infinities by name. */
static void
met_fmt(char *out, size_t cap, double v)
{
	if (isnan(v))
		snprintf(out, cap, "NaN");
	else if (isinf(v))
		snprintf(out, cap, v > 0 ? "+Inf" : "-Inf");
	else {
		snprintf(out, cap, "%.15g", v);
		if (strtod(out, NULL) != v)
			snprintf(out, cap, "%.17g", v);
	}
}

/* Escapes \ and newline (and " inside label values). */
static int
met_add_escaped(struct buf *b, const char *s, bool quote)
{
	int rv = 0;

	for (; *s != '\0' && rv == 0; s++) {
		if (*s == '\\')
			rv = buf_addstr(b, "\\\\");
		else if (*s == '\n')
			rv = buf_addstr(b, "\\n");
		else if (*s == '"' && quote)
			rv = buf_addstr(b, "\\\"");
		else
			rv = buf_addch(b, *s);
	}
	return rv;
}

/* name{labels[,le="x"]} value */
static int
met_add_sample(struct buf *b, const struct met_family *f, const char *suffix,
    const struct met_child *c, const char *le, const char *value)
{
	size_t i;
	int    rv;

	rv = buf_addf(b, "%s%s", f->name, suffix);
	for (i = 0; i < f->nlabels && rv == 0; i++) {
		rv = buf_addf(b, "%s%s=\"", i ? "," : "{", f->labels[i]);
		if (rv == 0)
			rv = met_add_escaped(b, c->values[i], true);
		if (rv == 0)
			rv = buf_addch(b, '"');
	}
	if (rv == 0 && le != NULL)
		rv = buf_addf(b, "%sle=\"%s\"", f->nlabels ? "," : "{", le);
	if (rv == 0 && (le != NULL || f->nlabels > 0))
		rv = buf_addch(b, '}');
	if (rv == 0)
		rv = buf_addf(b, " %s\n", value);
	return rv;
}

static int
met_render_hist(
    struct buf *b, const struct met_family *f, const struct met_child *c)
{
	char     le[40], val[40];
	uint64_t cum = 0;
	size_t   i;
	int      rv = 0;

	for (i = 0; i <= f->nbounds && rv == 0; i++) {
		cum += atomic_load_explicit(&c->h->b[i], memory_order_relaxed);
		if (i < f->nbounds)
			met_fmt(le, sizeof(le), f->bounds[i]);
		else
			snprintf(le, sizeof(le), "+Inf");
		snprintf(val, sizeof(val), "%" PRIu64, cum);
		rv = met_add_sample(b, f, "_bucket", c, le, val);
	}
	met_fmt(val, sizeof(val),
	    met_u2d(
	        atomic_load_explicit(&c->h->sum_bits, memory_order_relaxed)));
	if (rv == 0)
		rv = met_add_sample(b, f, "_sum", c, NULL, val);
	snprintf(val, sizeof(val), "%" PRIu64, cum);
	if (rv == 0)
		rv = met_add_sample(b, f, "_count", c, NULL, val);
	return rv;
}

static int
met_render_family(struct buf *b, const struct met_family *f)
{
	static const char *const kinds[] = {"counter", "gauge", "histogram"};
	const struct met_child  *c;
	char                     val[40];
	size_t                   i;
	int                      rv;

	rv = buf_addf(b, "# HELP %s ", f->name);
	if (rv == 0)
		rv = met_add_escaped(b, f->help, false);
	if (rv == 0)
		rv = buf_addf(b, "\n# TYPE %s %s\n", f->name, kinds[f->kind]);
	for (i = 0; i < f->nchildren && rv == 0; i++) {
		c = f->children[i];
		if (f->kind == MET_HISTOGRAM) {
			rv = met_render_hist(b, f, c);
			continue;
		}
		if (f->kind == MET_COUNTER)
			snprintf(val, sizeof(val), "%" PRIu64,
			    met_counter_value(&c->u.c));
		else
			met_fmt(val, sizeof(val), met_gauge_value(&c->u.g));
		rv = met_add_sample(b, f, "", c, NULL, val);
	}
	return rv;
}

static int
met_render_dropped(struct buf *b, struct met_registry *r)
{
	bool   head = false;
	size_t i;
	int    rv = 0;

	for (i = 0; i < r->nfams && rv == 0; i++) {
		uint64_t n = atomic_load(&r->fams[i]->dropped);

		if (n == 0)
			continue;
		if (!head)
			rv = buf_addstr(b,
			    "# HELP sub2api_metrics_children_dropped_total "
			    "Lookups past the per-family child limit.\n"
			    "# TYPE sub2api_metrics_children_dropped_total "
			    "counter\n");
		head = true;
		if (rv == 0)
			rv = buf_addf(b,
			    "sub2api_metrics_children_dropped_total"
			    "{family=\"%s\"} %" PRIu64 "\n",
			    r->fams[i]->name, n);
	}
	return rv;
}

/* Fields of /proc/self/stat after the command name, 1-based from state. */
static int
met_proc_stat(double *cpu, double *start, double *vsize, double *rss)
{
	unsigned long long v[22] = {0}, btime = 0;
	char               line[1024], *p;
	double             tck = (double)sysconf(_SC_CLK_TCK);
	FILE              *f;
	size_t             i, n;
	int                ok = 0;

	f = fopen("/proc/self/stat", "r");
	if (f == NULL)
		return -ERR_IO;
	n = fread(line, 1, sizeof(line) - 1, f);
	fclose(f);
	line[n] = '\0';
	p = strrchr(line, ')');
	if (p == NULL || p[1] == '\0' || p[2] == '\0')
		return -ERR_IO;
	p += 4; /* ") S " */
	for (i = 1; i < ARRAY_SIZE(v) && *p != '\0'; i++)
		v[i] = strtoull(p, &p, 10);
	f = fopen("/proc/stat", "r");
	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "btime %llu", &btime) == 1)
			ok = 1;
	if (f != NULL)
		fclose(f);
	/* utime, stime, starttime, vsize, rss are fields 14, 15, 22-24 */
	*cpu = (double)(v[11] + v[12]) / tck;
	*start = ok ? (double)btime + (double)v[19] / tck : 0;
	*vsize = (double)v[20];
	*rss = (double)v[21] * (double)sysconf(_SC_PAGESIZE);
	return 0;
}

static int
met_render_process(struct buf *b)
{
	static const char *const help[] = {
	    "process_cpu_seconds_total counter Total user and system CPU time in seconds.",
	    "process_start_time_seconds gauge Start time of the process since the Unix epoch in seconds.",
	    "process_virtual_memory_bytes gauge Virtual memory size in bytes.",
	    "process_resident_memory_bytes gauge Resident memory size in bytes.",
	    "process_open_fds gauge Number of open file descriptors.",
	    "process_max_fds gauge Maximum number of open file descriptors."};
	double         v[6] = {0};
	struct rlimit  rl;
	struct dirent *de;
	DIR           *d;
	char           name[64], num[40];
	size_t         i, n;
	int            rv = 0;

	if (met_proc_stat(&v[0], &v[1], &v[2], &v[3]) != 0)
		return 0; /* not Linux: export nothing rather than lies */
	d = opendir("/proc/self/fd");
	while (d != NULL && (de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			v[4]++;
	if (d != NULL) {
		closedir(d);
		v[4]--; /* the directory's own descriptor */
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		v[5] = (double)rl.rlim_cur;
	for (i = 0; i < ARRAY_SIZE(help) && rv == 0; i++) {
		n = strcspn(help[i], " ");
		snprintf(name, sizeof(name), "%.*s", (int)n, help[i]);
		met_fmt(num, sizeof(num), v[i]);
		rv = buf_addf(b, "# HELP %s %s\n# TYPE %s %.*s\n%s %s\n", name,
		    strchr(help[i] + n + 1, ' ') + 1, name,
		    (int)strcspn(help[i] + n + 1, " "), help[i] + n + 1, name,
		    num);
	}
	return rv;
}

int
met_render(struct met_registry *r, struct buf *out)
{
	size_t i;
	int    rv = 0;

	pthread_mutex_lock(&r->mu);
	for (i = 0; i < r->nfams && rv == 0; i++)
		rv = met_render_family(out, r->fams[i]);
	if (rv == 0)
		rv = met_render_dropped(out, r);
	pthread_mutex_unlock(&r->mu);
	if (rv == 0 && (r->flags & MET_F_PROCESS))
		rv = met_render_process(out);
	return rv;
}

int
metrics_render(struct buf *out)
{
	return met_render(metrics_default(), out);
}
