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

#include "cfg.h"
#include "compat.h"
#include "http.h"
#include "metrics.h"

#define SVC_INSTANCE_MAX 65 /* fits proto's 64-byte instance ids */
/*
 * glibc malloc arenas per service (svc_init(); MALLOC_ARENA_MAX in the
 * environment overrides).  glibc's default, 8 per core, gives busy
 * threads arenas of their own; our threads allocate little on their hot
 * paths, so two keep the footprint small (in the bench's soak: billing 20
 * MiB instead of 25.5, the gateway 15.5 instead of 17 at the start) with
 * no change in CPU per request that the bench can see.
 */
#define SVC_MALLOC_ARENAS   2
#define SVC_STUCK_MARGIN_MS 5000
#define SVC_EXIT_STUCK      70 /* EX_SOFTWARE */

/*
 * Config keys every service has, for its X-macro table (see cfg.h):
 * SVC_CFG_BASE first, then SVC_CFG_PG / SVC_CFG_REDIS / SVC_CFG_DEPS for
 * a service that uses the databases, then its own keys.
 */
#define SVC_CFG_BASE(X, health_default)                                 \
	X(log_level, CFG_ENUM, "info", 0, 0, "error|warn|info|debug",   \
	    CFG_F_SHARED, "Log level: error, warn, info or debug.")     \
	X(state_dir, CFG_STR, "var/run", 0, 0, NULL, CFG_F_SHARED,      \
	    "Directory for ipc:// sockets and local state.")            \
	X(health_addr, CFG_ADDR, health_default, 0, 0, NULL, 0,         \
	    "Health listener (/healthz, /readyz, /metrics) host:port.") \
	X(drain_timeout, CFG_DUR, "3s", 0, 60000, NULL, 0,              \
	    "Budget for in-flight work after SIGTERM.")

#define SVC_CFG_PG(X, pool_default)                                      \
	X(database_url, CFG_SECRET,                                      \
	    "postgresql://postgres@127.0.0.1:54329/sub2api", 0, 0, NULL, \
	    CFG_F_SHARED, "PostgreSQL connection URL.")                  \
	X(db_pool, CFG_INT, pool_default, 1, 256, NULL, 0,               \
	    "PostgreSQL connections at most.")

#define SVC_CFG_REDIS(X, pool_default)                                     \
	X(redis_url, CFG_SECRET, "redis://127.0.0.1:63799", 0, 0, NULL,    \
	    CFG_F_SHARED, "Redis URL redis://[:password@]host:port[/db].") \
	X(redis_pool, CFG_INT, pool_default, 1, 1024, NULL, 0,             \
	    "Redis connections at most.")

#define SVC_CFG_DEPS(X)                                   \
	X(dep_timeout, CFG_DUR, "1s", 50, 30000, NULL, 0, \
	    "Budget of one readiness probe of a database.")

/* The svc_opts of a config struct made with SVC_CFG_BASE. */
#define SVC_OPTS(c)                                     \
	((struct svc_opts){.log_level = (c)->log_level, \
	    .health_addr = (c)->health_addr,            \
	    .state_dir = (c)->state_dir,                \
	    .drain_ms = (c)->drain_timeout})

struct svc_opts {
	const char *log_level;   /* "error|warn|info|debug" */
	const char *health_addr; /* "host:port" of the health listener */
	const char
	       *state_dir; /* created when missing (ipc sockets live here) */
	int64_t drain_ms;  /* budget for in-flight work after a signal */
	int64_t stuck_ms;  /* watchdog margin past it; 0: SVC_STUCK_MARGIN_MS */
};

struct svc {
	const char      *name; /* static */
	char             instance[SVC_INSTANCE_MAX];
	struct http_srv *health;
	int64_t          started_ms; /* wall clock */
	int64_t          drain_ms;
	int64_t          stuck_ms;
	int64_t          stuck_at_ms; /* monotonic; set by svc_serve() */
	int              signo;       /* what stopped svc_serve() */
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
 *
 * It also arms the shutdown watchdog: a process still alive stuck_ms
 * (SVC_STUCK_MARGIN_MS by default) after its drain budget ran out logs
 * "svc.shutdown_stuck" and ends with exit status SVC_EXIT_STUCK, so a
 * wedged close (a library bug) never keeps a replica hanging until an
 * orchestrator's SIGKILL.  Work not finished by then is what the drain
 * budget allows to be lost: each service recovers it on restart.
 */
int svc_serve(struct svc *s);

/*
 * Replaces the instance id svc_init() generated, for a service that
 * resumes an earlier instance (the gateway adopting its spool); call it
 * before the id is used.  id is borrowed; -ERR_TOOBIG when it does not
 * fit SVC_INSTANCE_MAX.
 */
int svc_set_instance(struct svc *s, const char *id) WARN_UNUSED;

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
