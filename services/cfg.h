/*
 * cfg.h: per-service configuration, declared once as an X-macro table.
 *
 * A service lists its keys in one table.  Each row is
 *
 *   X(name, TYPE, "default", min, max, choices, flags, "documentation")
 *
 * name     the struct field, the JSON key in the config file, and (upper-
 *          cased) the environment suffix: SUB2API_<SVC>_<NAME>.
 * TYPE     CFG_STR, CFG_SECRET, CFG_ADDR ("host:port"), CFG_NNG (an NNG URL
 *          beginning tcp://, ipc:// or inproc://), CFG_ENUM (one of
 *          choices, "a|b|c"), CFG_INT (int64 in [min, max]), CFG_SIZE
 *          (bytes, suffix k/M/G, powers of 1024, in [min, max]), CFG_DUR
 *          (milliseconds, suffix ms/s/m/h, bare numbers are ms, in
 *          [min, max]), CFG_BOOL (true/false/1/0/yes/no/on/off).
 * default  always text, parsed and validated like any other source.
 * min/max  bounds for the numeric types; for the string types max is the
 *          longest accepted value (0 means CFG_STR_MAX).
 * choices  the "|"-separated list for CFG_ENUM, NULL otherwise.
 * flags    CFG_F_SHARED: the plain SUB2API_<NAME> variable is also read
 *          (after the service-specific one); CFG_F_REQUIRED: an empty
 *          final value is an error.
 *
 * Example, in the service's private header:
 *
 *   #define GW_CFG(X)                                                    \
 *     X(health_addr, CFG_ADDR, "127.0.0.1:9101", 0, 0, NULL, 0,          \
 *       "Health listener host:port")                                     \
 *     X(sched_url, CFG_NNG, "ipc://${state_dir}/sched.ipc", 0, 0, NULL,  \
 *       0, "Scheduler req/rep address")                                  \
 *     X(body_max, CFG_SIZE, "100M", 1024, 1 << 30, NULL, 0,              \
 *       "Largest accepted request body")                                 \
 *     X(log_level, CFG_ENUM, "info", 0, 0, "error|warn|info|debug",      \
 *       CFG_F_SHARED, "Log level")                                       \
 *     X(state_dir, CFG_STR, "/tmp/sub2api", 0, 0, NULL, CFG_F_SHARED,    \
 *       "Directory for ipc sockets and state")                           \
 *     X(secret_key, CFG_SECRET, "", 0, 0, NULL,                          \
 *       CFG_F_SHARED | CFG_F_REQUIRED, "Credential encryption key")
 *   CFG_DECLARE(gw_cfg, GW_CFG)
 *
 * and once in one of its .c files:  CFG_DEFINE(gw_cfg, "gateway", "GW", GW_CFG)
 *
 * This yields struct gw_cfg with one typed field per key (const char * for
 * the string types, int64_t for INT/SIZE/DUR, bool for BOOL), the schema
 * gw_cfg_schema, and typed wrappers gw_cfg_load() and gw_cfg_free().
 *
 * Loading order, later wins: defaults, the JSON file (a flat object of
 * this service's keys; an unknown key is an error naming it), then
 * SUB2API_<NAME> for shared keys, then SUB2API_<SVC>_<NAME>.  After that,
 * in every string value, "${key}" is replaced by the final value of the
 * string-typed key of that name (one level: the inserted text is not
 * expanded again), so defaults such as "ipc://${state_dir}/sched.ipc"
 * follow state_dir.  Then every value is validated.  All errors are
 * collected, one line each, naming the key and the source (default, file
 * or env VAR), so one run shows every mistake.
 *
 * Bounds: the file is at most CFG_FILE_MAX bytes, any value at most
 * CFG_STR_MAX bytes, also after expansion.
 *
 * The loaded struct is immutable after load; share it as const.
 */
#ifndef CFG_H
#define CFG_H

#include <stdio.h>

#include "buf.h"
#include "compat.h"

#define CFG_FILE_MAX (1 << 20)
#define CFG_STR_MAX  4096
#define CFG_ERR_MAX  (64 * 1024) /* the error report buffer */

enum cfg_type {
	CFG_STR,
	CFG_SECRET,
	CFG_ADDR,
	CFG_NNG,
	CFG_ENUM,
	CFG_INT,
	CFG_SIZE,
	CFG_DUR,
	CFG_BOOL,
};

enum cfg_flags {
	CFG_F_SHARED = 1 << 0,
	CFG_F_REQUIRED = 1 << 1,
};

/* Where a key's final value came from. */
enum cfg_src {
	CFG_SRC_DEFAULT = 0,
	CFG_SRC_FILE,
	CFG_SRC_ENV_SHARED,
	CFG_SRC_ENV,
};

struct cfg_key {
	const char   *name;
	enum cfg_type type;
	const char   *def;
	int64_t       min, max;
	const char   *choices;
	unsigned      flags;
	const char   *doc;
};

/* Fills p[i] with the address of key i's field in obj. */
typedef void (*cfg_ptrs_fn)(void *obj, void **p);

struct cfg_schema {
	const char           *svc; /* "gateway": messages and --help */
	const char           *env; /* "GW": SUB2API_GW_<NAME> */
	const struct cfg_key *keys;
	size_t                nkeys;
	size_t                size;    /* sizeof the generated struct */
	size_t                src_off; /* offsetof its cfg_src_ array */
	cfg_ptrs_fn           ptrs;
};

#define CFG_CT_CFG_STR    const char *
#define CFG_CT_CFG_SECRET const char *
#define CFG_CT_CFG_ADDR   const char *
#define CFG_CT_CFG_NNG    const char *
#define CFG_CT_CFG_ENUM   const char *
#define CFG_CT_CFG_INT    int64_t
#define CFG_CT_CFG_SIZE   int64_t
#define CFG_CT_CFG_DUR    int64_t
#define CFG_CT_CFG_BOOL   bool

#define CFG_FIELD_(name, type, def, min, max, ch, fl, doc) CFG_CT_##type name;
#define CFG_PLUS1_(name, type, def, min, max, ch, fl, doc) +1
#define CFG_KEY_(name, type, def, min, max, ch, fl, doc) \
	{#name, type, def, (int64_t)(min), (int64_t)(max), ch, fl, doc},
#define CFG_PTR_(name, type, def, min, max, ch, fl, doc) p[i++] = &c->name;

#define CFG_DECLARE(sname, TABLE)                               \
	struct sname {                                          \
		TABLE(CFG_FIELD_)                               \
		unsigned char cfg_src_[0 TABLE(CFG_PLUS1_)];    \
	};                                                      \
	extern const struct cfg_schema sname##_schema;          \
	int  sname##_load(const char *path, struct sname **out, \
	     struct buf *errs) WARN_UNUSED;                     \
	void sname##_free(struct sname *c);

#define CFG_DEFINE(sname, svc, envsvc, TABLE)                                           \
	static const struct cfg_key sname##_keys_[] = {TABLE(CFG_KEY_)};                \
	static void                 sname##_ptrs_(void *obj, void **p)                  \
	{                                                                               \
		struct sname *c = obj;                                                  \
		size_t        i = 0;                                                    \
		TABLE(CFG_PTR_)                                                         \
	}                                                                               \
	const struct cfg_schema sname##_schema = {svc, envsvc, sname##_keys_,           \
	    ARRAY_SIZE(sname##_keys_), sizeof(struct sname),                            \
	    offsetof(struct sname, cfg_src_), sname##_ptrs_};                           \
	int                     sname##_load(                                           \
	                        const char *path, struct sname **out, struct buf *errs) \
	{                                                                               \
		return cfg_load(&sname##_schema, path, (void **)out, errs);             \
	}                                                                               \
	void sname##_free(struct sname *c)                                              \
	{                                                                               \
		cfg_free(&sname##_schema, c);                                           \
	}

/*
 * Builds a configuration: defaults, then the JSON file at path (borrowed;
 * NULL for none), then the environment, then validation.  On success
 * *out receives an owned struct (free with cfg_free) and 0 is returned.
 * On failure returns -ERR_CONFIG (or -ERR_IO for an unreadable file,
 * -ERR_TOOBIG for an oversized one) and, when errs is not NULL, appends
 * one line per problem to errs (borrowed, already initialised).
 */
int cfg_load(const struct cfg_schema *s, const char *path, void **out,
    struct buf *errs) WARN_UNUSED;

/* Frees a loaded struct and its strings; cfg_free(s, NULL) is legal. */
void cfg_free(const struct cfg_schema *s, void *cfg);

/* Where key name's value came from; -ERR_NOTFOUND for an unknown key. */
int cfg_source(
    const struct cfg_schema *s, const void *cfg, const char *name) WARN_UNUSED;

/*
 * Prints every key with type, default, bounds or choices, environment
 * variables and documentation (--help-config).  Secret defaults are
 * never printed.
 */
void cfg_help(const struct cfg_schema *s, FILE *f);

/*
 * Appends "name = value (source)" lines to out (borrowed); secrets appear
 * as "(set)" or "(unset)".  Returns 0 or -ERR_TOOBIG from the buffer.
 */
int cfg_dump(
    const struct cfg_schema *s, const void *cfg, struct buf *out) WARN_UNUSED;

/* Name of a source: "default", "file", "env". */
const char *cfg_src_name(enum cfg_src src);

/*
 * The common command line of the service binaries:
 *
 *   --config FILE   (or --config=FILE; else SUB2API_<SVC>_CONFIG, then
 *                   SUB2API_CONFIG)
 *   --check-config  (or -n) validate, print "config ok", exit 0 or 2
 *   --help-config   print cfg_help and exit 0
 *   --help          print usage and exit 0
 *
 * cfg_cli() returns 0 with *out set to the loaded config (owned) when the
 * service should serve.  Otherwise it returns -ERR_CANCELED and sets
 * *exit_status: 0 after help or a good check, 2 after a usage error or
 * invalid configuration (the errors were printed on errf).  Output for the
 * user goes to outf.  Nothing is exited here, so it can be tested.
 */
int cfg_cli(const struct cfg_schema *s, int argc, char **argv, FILE *outf,
    FILE *errf, void **out, int *exit_status) WARN_UNUSED;

/*
 * cfg_cli() for main(): exits with the status when the service should not
 * serve, and otherwise returns the owned config.
 */
void *cfg_main(const struct cfg_schema *s, int argc, char **argv);

/*
 * Parsers used by the loader, exported for other modules' input.  Each
 * writes *out only on success and returns 0 or -ERR_INVAL.
 */
int cfg_parse_int(const char *s, int64_t *out) WARN_UNUSED;
int cfg_parse_size(const char *s, int64_t *out) WARN_UNUSED;
int cfg_parse_dur(const char *s, int64_t *out) WARN_UNUSED;
int cfg_parse_bool(const char *s, bool *out) WARN_UNUSED;

/* Syntax checks: "host:port" (host may be [v6]) and an NNG URL. */
int cfg_check_addr(const char *s) WARN_UNUSED;
int cfg_check_nng(const char *s) WARN_UNUSED;

#endif /* CFG_H */
