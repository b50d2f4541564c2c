/*
 * svc.h: the life cycle every service binary shares.
 *
 * main() of a service is, in order:
 *
 *   sig_init();                                    block signals first
 *   cfg = cfg_main(&x_cfg_schema, argc, argv);     config, or exit
 *   svc_init(&s, "billing", &opts);                log, state dir, listener
 *   ... open pools and sockets, http_add_check(s.health, ...) ...
 *   svc_serve(&s);                                 listen; wait for a signal
 *   ... close inbound sockets, drain within s.drain_ms ...
 *   svc_release(&s);                               stop listener and checks
 *   ... free what the readiness checks used (pools, sockets) ...
 *
 * svc_serve() returns when SIGTERM or SIGINT arrives (or svc_stop() is
 * called from inside); the listener then reports draining (readyz 503)
 * until svc_release().  The struct is embedded in the service's own state.
 */
#ifndef SVC_H
#define SVC_H

#include "compat.h"
#include "http.h"
#include "metrics.h"

#define SVC_INSTANCE_MAX 65 /* fits proto's 64-byte instance ids */

struct svc_opts {
	const char *log_level;   /* "error|warn|info|debug" */
	const char *health_addr; /* "host:port" of the health listener */
	const char
	       *state_dir; /* created when missing (ipc sockets live here) */
	int64_t drain_ms;  /* budget for in-flight work after a signal */
};

struct svc {
	const char      *name; /* static */
	char             instance[SVC_INSTANCE_MAX];
	struct http_srv *health;
	int64_t          started_ms; /* wall clock */
	int64_t          drain_ms;
	int              signo; /* what stopped svc_serve() */
};

/*
 * Sets up logging, makes state_dir, and creates (but does not start) the
 * health listener so that readiness checks can be registered on
 * s->health.  A failure here is a startup failure: it calls fatalx().
 * opts is borrowed for the call.
 */
void svc_init(struct svc *s, const char *name, const struct svc_opts *opts);

/*
 * Starts the health listener (fatalx() when it cannot bind), logs
 * "svc.started", waits for SIGTERM/SIGINT and marks the listener draining.
 * Returns the signal number.
 */
int svc_serve(struct svc *s);

/* Stops the listener and frees what svc_init() made; logs "svc.stopped". */
void svc_release(struct svc *s);

/*
 * Makes the directory path and its parents (mode 0750); 0 or -ERR_IO.
 */
int svc_mkdirs(const char *path) WARN_UNUSED;

/*
 * Registers a counter/gauge with the default registry, aborting on a
 * programming error (bad name, clash): a service's metric names are
 * constants, so failure is a bug, not input.
 */
struct met_counter *svc_counter(const char *name, const char *help);
struct met_gauge   *svc_gauge(const char *name, const char *help);
struct met_family  *svc_family(enum met_kind kind, const char *name,
     const char *help, const char *const *labels, size_t nlabels,
     const double *bounds, size_t nbounds);

#endif /* SVC_H */
