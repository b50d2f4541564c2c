/*
 * metrics.h: a Prometheus registry any module registers into.
 *
 * A family has a name, help text, a kind (counter, gauge, histogram) and a
 * fixed list of label names given at registration.  Its children are the
 * time series, one per tuple of label values, created on first lookup and
 * never freed before the registry.  Lookups take the registry lock; the
 * returned handles are plain pointers to atomics, so the hot path
 * (met_counter_add, met_gauge_set, met_histogram_observe) is one or a few
 * relaxed atomic operations and never locks.  Look a child up once and keep
 * the handle wherever the label values are fixed.
 *
 * Bounds: at most MET_FAMILIES_MAX families per registry, MET_LABELS_MAX
 * labels and MET_BUCKETS_MAX bucket bounds per family, MET_CHILDREN_MAX
 * children per family, label values of at most MET_VALUE_MAX bytes (longer
 * ones are cut at a UTF-8 boundary).  Past MET_CHILDREN_MAX a lookup
 * returns the family's overflow child: writes to it are accepted but never
 * rendered, the first overflow is logged (met.children_overflow), and the
 * count is exported as sub2api_metrics_children_dropped_total{family=...}.
 *
 * met_render() writes the text exposition format 0.0.4.  Registries made
 * with MET_F_PROCESS (the default registry is) also export, read from
 * /proc/self at render time: process_cpu_seconds_total,
 * process_resident_memory_bytes, process_virtual_memory_bytes,
 * process_start_time_seconds, process_open_fds and process_max_fds.
 *
 * All functions are thread-safe.  Registration errors are programming
 * errors, but are returned, not fatal, so tests can check them.
 */
#ifndef METRICS_H
#define METRICS_H

#include "buf.h"
#include "compat.h"

#define MET_FAMILIES_MAX 512
#define MET_LABELS_MAX   8
#define MET_BUCKETS_MAX  32
#define MET_CHILDREN_MAX 1024
#define MET_VALUE_MAX    128

enum met_kind {
	MET_COUNTER,
	MET_GAUGE,
	MET_HISTOGRAM,
};

enum met_flags {
	MET_F_PROCESS = 1 << 0,
};

struct met_registry;
struct met_family;
struct met_counter;
struct met_gauge;
struct met_histogram;

/* A new empty registry (owned; free with met_registry_free). */
struct met_registry *met_registry_new(unsigned flags);

/*
 * Frees the registry and every family and child: all handles die with it.
 * NULL is legal.  Never free the default registry.
 */
void met_registry_free(struct met_registry *r);

/*
 * The process-wide registry, with process metrics, created on first use.
 * It lives until exit.
 */
struct met_registry *metrics_default(void);

/*
 * Registers a family and returns it in *out (owned by the registry).
 * name must match [a-zA-Z_:][a-zA-Z0-9_:]*, a counter's must end in
 * "_total"; label names must match [a-zA-Z_][a-zA-Z0-9_]*, must not begin
 * with "__" and, for histograms, must not be "le".  Histogram bounds must
 * be finite and strictly increasing (+Inf is implicit); other kinds pass
 * NULL, 0.  name, help, labels and bounds are borrowed (copied).
 *
 * Registering an existing name with the same kind, labels and bounds
 * returns the existing family (modules may register on each init).
 * Errors: -ERR_INVAL (bad name, label or bounds), -ERR_EXISTS (same name,
 * other shape), -ERR_TOOBIG (too many families, labels or bounds).
 */
int met_family_new(struct met_registry *r, enum met_kind kind, const char *name,
    const char *help, const char *const *labels, size_t nlabels,
    const double *bounds, size_t nbounds, struct met_family **out) WARN_UNUSED;

/*
 * The child for one tuple of label values (values[nlabels], borrowed;
 * NULL when the family has no labels).  Creates it on first use.  Never
 * returns NULL; the kind must match the family's (BUG otherwise).
 */
struct met_counter *met_counter_get(
    struct met_family *f, const char *const *values);
struct met_gauge *met_gauge_get(
    struct met_family *f, const char *const *values);
struct met_histogram *met_histogram_get(
    struct met_family *f, const char *const *values);

/*
 * Unlabelled shortcuts: register (or find) the family and return its only
 * child.  NULL on a registration error, which is logged.
 */
struct met_counter *met_counter_new(
    struct met_registry *r, const char *name, const char *help);
struct met_gauge *met_gauge_new(
    struct met_registry *r, const char *name, const char *help);
struct met_histogram *met_histogram_new(struct met_registry *r,
    const char *name, const char *help, const double *bounds, size_t nbounds);

/* The hot path: lock-free, callable from any thread. */
void     met_counter_add(struct met_counter *c, uint64_t n);
void     met_counter_inc(struct met_counter *c);
uint64_t met_counter_value(const struct met_counter *c);
void     met_gauge_set(struct met_gauge *g, double v);
void     met_gauge_add(struct met_gauge *g, double d);
void     met_gauge_inc(struct met_gauge *g);
void     met_gauge_dec(struct met_gauge *g);
double   met_gauge_value(const struct met_gauge *g);
void     met_histogram_observe(struct met_histogram *h, double v);

/*
 * Appends the exposition text of every family (and the process metrics
 * when enabled) to out (borrowed).  0, or -ERR_TOOBIG from the buffer.
 */
int met_render(struct met_registry *r, struct buf *out) WARN_UNUSED;

/* met_render() of the default registry. */
int metrics_render(struct buf *out) WARN_UNUSED;

#endif /* METRICS_H */
