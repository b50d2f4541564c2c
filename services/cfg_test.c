/*
 * cfg_test.c: configuration contract: defaults, file, environment
 * precedence, shared keys, ${key} expansion, validation messages naming
 * key and source, secrets redacted, and the command line.
 */
#include <stdio.h>
#include <unistd.h>

#include "cfg.h"
#include "err.h"
#include "t.h"

#define TST_CFG(X)                                                           \
	X(health_addr, CFG_ADDR, "127.0.0.1:9101", 0, 0, NULL, 0,            \
	    "Health listener host:port")                                     \
	X(state_dir, CFG_STR, "/tmp/s2a", 0, 0, NULL, CFG_F_SHARED,          \
	    "State directory")                                               \
	X(sched_url, CFG_NNG, "ipc://${state_dir}/sched.ipc", 0, 0, NULL, 0, \
	    "Scheduler address")                                             \
	X(body_max, CFG_SIZE, "100M", 1024, 1 << 30, NULL, 0, "Body cap")    \
	X(timeout, CFG_DUR, "30s", 1, 600000, NULL, 0, "Upstream timeout")   \
	X(workers, CFG_INT, "4", 1, 64, NULL, 0, "Worker threads")           \
	X(tls, CFG_BOOL, "false", 0, 0, NULL, 0, "Use TLS")                  \
	X(log_level, CFG_ENUM, "info", 0, 0, "error|warn|info|debug",        \
	    CFG_F_SHARED, "Log level")                                       \
	X(secret_key, CFG_SECRET, "", 0, 0, NULL, CFG_F_SHARED,              \
	    "Encryption key")

CFG_DECLARE(tst_cfg, TST_CFG)
CFG_DEFINE(tst_cfg, "testsvc", "TST", TST_CFG)

static const char *const tst_env[] = {"SUB2API_TST_HEALTH_ADDR",
    "SUB2API_STATE_DIR", "SUB2API_TST_STATE_DIR", "SUB2API_TST_SCHED_URL",
    "SUB2API_TST_BODY_MAX", "SUB2API_TST_TIMEOUT", "SUB2API_TST_WORKERS",
    "SUB2API_TST_TLS", "SUB2API_LOG_LEVEL", "SUB2API_TST_LOG_LEVEL",
    "SUB2API_SECRET_KEY", "SUB2API_TST_SECRET_KEY", "SUB2API_TST_CONFIG",
    "SUB2API_CONFIG", "SUB2API_WORKERS"};

static void
tst_clear_env(void)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(tst_env); i++)
		unsetenv(tst_env[i]);
}

static const char *
tst_write(const char *text)
{
	static char path[64];
	FILE       *f;

	snprintf(path, sizeof(path), "/tmp/cfg_test.%d.json", (int)getpid());
	f = fopen(path, "w");
	T_ASSERT(f != NULL);
	fputs(text, f);
	fclose(f);
	return path;
}

static void
test_cfg_defaults(void)
{
	struct tst_cfg *c = NULL;

	tst_clear_env();
	T_OK(tst_cfg_load(NULL, &c, NULL));
	T_EQ_STR(c->health_addr, "127.0.0.1:9101");
	T_EQ_STR(c->sched_url, "ipc:///tmp/s2a/sched.ipc");
	T_EQ_INT(c->body_max, 100 * 1024 * 1024);
	T_EQ_INT(c->timeout, 30000);
	T_EQ_INT(c->workers, 4);
	T_EQ_INT(c->tls, false);
	T_EQ_STR(c->log_level, "info");
	T_EQ_STR(c->secret_key, "");
	T_EQ_INT(cfg_source(&tst_cfg_schema, c, "workers"), CFG_SRC_DEFAULT);
	T_EQ_INT(cfg_source(&tst_cfg_schema, c, "nope"), -ERR_NOTFOUND);
	tst_cfg_free(c);
	tst_cfg_free(NULL);
}

static void
test_cfg_file_then_env(void)
{
	struct tst_cfg *c = NULL;
	const char     *p;

	tst_clear_env();
	p = tst_write("{\"workers\": 8, \"tls\": true, \"state_dir\": \"/f\","
	              " \"timeout\": \"2m\", \"log_level\": \"debug\"}");
	setenv("SUB2API_STATE_DIR", "/shared", 1);
	setenv("SUB2API_TST_LOG_LEVEL", "warn", 1);
	setenv("SUB2API_LOG_LEVEL", "error", 1);
	setenv("SUB2API_WORKERS", "9", 1); /* workers is not shared */
	setenv("SUB2API_TST_BODY_MAX", "2k", 1);
	T_OK(tst_cfg_load(p, &c, NULL));
	T_EQ_INT(c->workers, 8);
	T_EQ_INT(c->tls, true);
	T_EQ_INT(c->timeout, 120000);
	T_EQ_STR(c->state_dir, "/shared");
	T_EQ_STR(c->sched_url, "ipc:///shared/sched.ipc");
	T_EQ_STR(c->log_level, "warn");
	T_EQ_INT(c->body_max, 2048);
	T_EQ_INT(cfg_source(&tst_cfg_schema, c, "workers"), CFG_SRC_FILE);
	T_EQ_INT(cfg_source(&tst_cfg_schema, c, "log_level"), CFG_SRC_ENV);
	tst_cfg_free(c);
	unlink(p);
	tst_clear_env();
}

static void
test_cfg_errors_name_key_and_source(void)
{
	struct tst_cfg *c = NULL;
	struct buf      e;
	const char     *p;

	tst_clear_env();
	buf_init(&e, CFG_ERR_MAX);
	p = tst_write("{\"workers\": 100, \"bogus\": 1, \"tls\": \"maybe\"}");
	setenv("SUB2API_TST_HEALTH_ADDR", "nohost", 1);
	setenv("SUB2API_TST_SCHED_URL", "http://x", 1);
	setenv("SUB2API_TST_LOG_LEVEL", "loud", 1);
	setenv("SUB2API_TST_BODY_MAX", "12", 1);
	T_EQ_INT(tst_cfg_load(p, &c, &e), -ERR_CONFIG);
	T_ASSERT(c == NULL);
	T_ASSERT(strstr(buf_str(&e), "unknown key \"bogus\"") != NULL);
	T_ASSERT(strstr(buf_str(&e), "key workers (file ") != NULL);
	T_ASSERT(strstr(buf_str(&e), "outside [1, 64]") != NULL);
	T_ASSERT(strstr(buf_str(&e), "key tls (file") != NULL);
	T_ASSERT(strstr(buf_str(&e),
	             "key health_addr (env SUB2API_TST_HEALTH_ADDR)") != NULL);
	T_ASSERT(strstr(buf_str(&e), "key sched_url (env") != NULL);
	T_ASSERT(
	    strstr(buf_str(&e), "not one of error|warn|info|debug") != NULL);
	T_ASSERT(strstr(buf_str(&e), "key body_max (env") != NULL);
	buf_release(&e);
	unlink(p);
	tst_clear_env();
}

static void
test_cfg_bad_files(void)
{
	struct tst_cfg *c = NULL;
	struct buf      e;
	const char     *p;
	FILE           *f;
	int             i;

	tst_clear_env();
	buf_init(&e, CFG_ERR_MAX);
	T_EQ_INT(tst_cfg_load("/nonexistent/x.json", &c, &e), -ERR_IO);
	p = tst_write("{\"workers\": 1,");
	T_EQ_INT(tst_cfg_load(p, &c, &e), -ERR_CONFIG);
	p = tst_write("[1]");
	T_EQ_INT(tst_cfg_load(p, &c, &e), -ERR_CONFIG);
	p = tst_write("{\"workers\": 1, \"workers\": 2}");
	T_EQ_INT(tst_cfg_load(p, &c, &e), -ERR_CONFIG);
	p = tst_write("{\"state_dir\": null}");
	T_EQ_INT(tst_cfg_load(p, &c, &e), -ERR_CONFIG);
	f = fopen(p, "w");
	T_ASSERT(f != NULL);
	for (i = 0; i < CFG_FILE_MAX / 8 + 1; i++)
		fputs("        ", f);
	fclose(f);
	T_EQ_INT(tst_cfg_load(p, &c, &e), -ERR_TOOBIG);
	T_ASSERT(c == NULL);
	buf_release(&e);
	unlink(p);
}

static void
test_cfg_string_caps_and_refs(void)
{
	struct tst_cfg *c = NULL;
	struct buf      e;
	char           *big = xmalloc(CFG_STR_MAX + 10);

	tst_clear_env();
	buf_init(&e, CFG_ERR_MAX);
	memset(big, 'a', CFG_STR_MAX - 5);
	big[CFG_STR_MAX - 5] = '\0';
	setenv("SUB2API_STATE_DIR", big, 1); /* fits, the expansion does not */
	T_EQ_INT(tst_cfg_load(NULL, &c, &e), -ERR_CONFIG);
	T_ASSERT(
	    strstr(buf_str(&e), "key sched_url (default): longer") != NULL);
	tst_clear_env();
	setenv("SUB2API_TST_SCHED_URL", "ipc://${secret_key}", 1);
	T_EQ_INT(tst_cfg_load(NULL, &c, &e), -ERR_CONFIG);
	setenv("SUB2API_TST_SCHED_URL", "ipc://${nope", 1);
	T_EQ_INT(tst_cfg_load(NULL, &c, &e), -ERR_CONFIG);
	buf_release(&e);
	free(big);
	tst_clear_env();
}

static void
test_cfg_parsers(void)
{
	int64_t n = 0;
	bool    b = false;

	T_OK(cfg_parse_size("1G", &n));
	T_EQ_INT(n, 1 << 30);
	T_EQ_INT(cfg_parse_size("1T", &n), -ERR_INVAL);
	T_EQ_INT(cfg_parse_size("-1", &n), -ERR_INVAL);
	T_EQ_INT(cfg_parse_size("99999999999999999999", &n), -ERR_INVAL);
	T_EQ_INT(cfg_parse_size("9000000000000G", &n), -ERR_INVAL);
	T_OK(cfg_parse_dur("250ms", &n));
	T_EQ_INT(n, 250);
	T_OK(cfg_parse_dur("2h", &n));
	T_EQ_INT(n, 7200000);
	T_EQ_INT(cfg_parse_dur("3d", &n), -ERR_INVAL);
	T_EQ_INT(cfg_parse_int(" 1", &n), -ERR_INVAL);
	T_EQ_INT(cfg_parse_int("1x", &n), -ERR_INVAL);
	T_OK(cfg_parse_int("-5", &n));
	T_EQ_INT(n, -5);
	T_OK(cfg_parse_bool("On", &b));
	T_EQ_INT(b, true);
	T_EQ_INT(cfg_parse_bool("y", &b), -ERR_INVAL);
	T_OK(cfg_check_addr("0.0.0.0:0"));
	T_OK(cfg_check_addr("[::1]:8080"));
	T_OK(cfg_check_addr("db.local:5432"));
	T_EQ_INT(cfg_check_addr(":80"), -ERR_INVAL);
	T_EQ_INT(cfg_check_addr("h:65536"), -ERR_INVAL);
	T_EQ_INT(cfg_check_addr("h:"), -ERR_INVAL);
	T_EQ_INT(cfg_check_addr("a b:1"), -ERR_INVAL);
	T_OK(cfg_check_nng("tcp://127.0.0.1:5555"));
	T_OK(cfg_check_nng("tcp://*:5555"));
	T_OK(cfg_check_nng("inproc://x"));
	T_EQ_INT(cfg_check_nng("ipc://"), -ERR_INVAL);
	T_EQ_INT(cfg_check_nng("udp://h:1"), -ERR_INVAL);
}

/* Runs cfg_cli with output captured into out/err (each up to 8 KiB). */
static int
tst_cli(int argc, char **argv, char *out, char *err, int *status)
{
	FILE *fo = fmemopen(out, 8192, "w"), *fe = fmemopen(err, 8192, "w");
	void *cfg = NULL;
	int   rv;

	T_ASSERT(fo != NULL && fe != NULL);
	memset(out, 0, 8192);
	memset(err, 0, 8192);
	*status = -1;
	rv = cfg_cli(&tst_cfg_schema, argc, argv, fo, fe, &cfg, status);
	fclose(fo);
	fclose(fe);
	cfg_free(&tst_cfg_schema, cfg);
	return rv;
}

static void
test_cfg_cli(void)
{
	static char out[8192], err[8192];
	static char a0[] = "x", a_help[] = "--help-config";
	static char a_check[] = "--check-config", a_bad[] = "--frob";
	char       *v_help[] = {a0, a_help, NULL};
	char       *v_check[] = {a0, a_check, NULL};
	char       *v_bad[] = {a0, a_bad, NULL};
	char       *v_run[] = {a0, NULL};
	int         st;

	tst_clear_env();
	T_EQ_INT(tst_cli(2, v_help, out, err, &st), -ERR_CANCELED);
	T_EQ_INT(st, 0);
	T_ASSERT(strstr(out, "body_max (size, 1024..1073741824)") != NULL);
	T_ASSERT(strstr(out,
	             "env: SUB2API_TST_LOG_LEVEL, then "
	             "SUB2API_LOG_LEVEL") != NULL);
	T_EQ_INT(tst_cli(2, v_check, out, err, &st), -ERR_CANCELED);
	T_EQ_INT(st, 0);
	T_EQ_STR(out, "config ok\n");
	setenv("SUB2API_TST_WORKERS", "0", 1);
	T_EQ_INT(tst_cli(2, v_check, out, err, &st), -ERR_CANCELED);
	T_EQ_INT(st, 2);
	T_ASSERT(strstr(err, "key workers (env SUB2API_TST_WORKERS)") != NULL);
	unsetenv("SUB2API_TST_WORKERS");
	setenv("SUB2API_TST_CONFIG", "/nonexistent.json", 1);
	T_EQ_INT(tst_cli(1, v_run, out, err, &st), -ERR_CANCELED);
	T_EQ_INT(st, 2);
	unsetenv("SUB2API_TST_CONFIG");
	T_EQ_INT(tst_cli(2, v_bad, out, err, &st), -ERR_CANCELED);
	T_EQ_INT(st, 2);
	T_OK(tst_cli(1, v_run, out, err, &st));
}

static void
test_cfg_dump_redacts(void)
{
	struct tst_cfg *c = NULL;
	struct buf      b;

	tst_clear_env();
	setenv("SUB2API_SECRET_KEY", "hunter2", 1);
	T_OK(tst_cfg_load(NULL, &c, NULL));
	T_EQ_STR(c->secret_key, "hunter2");
	buf_init(&b, 8192);
	T_OK(cfg_dump(&tst_cfg_schema, c, &b));
	T_ASSERT(strstr(buf_str(&b), "hunter2") == NULL);
	T_ASSERT(strstr(buf_str(&b), "secret_key = (set) (env)") != NULL);
	T_ASSERT(strstr(buf_str(&b), "workers = 4 (default)") != NULL);
	T_ASSERT(strstr(buf_str(&b), "tls = false (default)") != NULL);
	buf_release(&b);
	tst_cfg_free(c);
	tst_clear_env();
}

T_MAIN(T_CASE(test_cfg_defaults), T_CASE(test_cfg_file_then_env),
    T_CASE(test_cfg_errors_name_key_and_source), T_CASE(test_cfg_bad_files),
    T_CASE(test_cfg_string_caps_and_refs), T_CASE(test_cfg_parsers),
    T_CASE(test_cfg_cli), T_CASE(test_cfg_dump_redacts))
