/*
 * log_test.c: log lines are valid, bounded JSON with the fixed fields.
 */
#include <jansson.h>

#include "err.h"
#include "log.h"
#include "t.h"

static json_t *
log_test_parse(const char *line, size_t n)
{
	json_error_t e;

	return json_loadb(line, n, 0, &e);
}

static void
test_log_fields(void)
{
	char    line[LOG_LINE_MAX];
	size_t  n;
	json_t *j;

	log_init("unit", LOG_INFO);
	n = log_format(line, sizeof(line), LOG_WARN, "t.thing_done",
	    (const struct log_kv[]){LOG_STR("route", "a\"b\n"),
	        LOG_I64("ms", -5), LOG_BOOL("ok", true), LOG_REQ("r1"),
	        LOG_END_});
	T_ASSERT(n > 0 && line[n - 1] == '\n');
	j = log_test_parse(line, n);
	T_ASSERT(j != NULL);
	T_EQ_STR(json_string_value(json_object_get(j, "lvl")), "warn");
	T_EQ_STR(json_string_value(json_object_get(j, "svc")), "unit");
	T_EQ_STR(json_string_value(json_object_get(j, "ev")), "t.thing_done");
	T_EQ_STR(json_string_value(json_object_get(j, "route")), "a\"b\n");
	T_EQ_INT(json_integer_value(json_object_get(j, "ms")), -5);
	T_ASSERT(json_is_true(json_object_get(j, "ok")));
	T_EQ_STR(json_string_value(json_object_get(j, "req")), "r1");
	json_decref(j);
}

static void
test_log_truncates_long_values(void)
{
	char    line[LOG_LINE_MAX];
	char   *big = xmalloc(20000);
	size_t  n;
	json_t *j;

	memset(big, 'x', 19999);
	big[19999] = '\0';
	n = log_format(line, sizeof(line), LOG_INFO, "t.big",
	    (const struct log_kv[]){LOG_STR("v", big), LOG_END_});
	free(big);
	T_ASSERT(n <= LOG_LINE_MAX);
	j = log_test_parse(line, n);
	T_ASSERT(j != NULL);
	T_ASSERT(json_is_true(json_object_get(j, "trunc")));
	json_decref(j);
}

static void
test_log_levels(void)
{
	enum log_level l;

	T_OK(log_level_parse("debug", &l));
	T_EQ_INT(l, LOG_DEBUG);
	T_EQ_INT(log_level_parse("loud", &l), -ERR_INVAL);
	log_set_level(LOG_WARN);
	T_ASSERT(!log_enabled(LOG_INFO));
	T_ASSERT(log_enabled(LOG_ERROR));
	log_set_level(LOG_INFO);
}

static void
test_log_thread_req(void)
{
	char    line[LOG_LINE_MAX];
	size_t  n;
	json_t *j;

	log_req_set("req-7");
	n = log_format(line, sizeof(line), LOG_INFO, "t.x",
	    (const struct log_kv[]){LOG_END_});
	log_req_set(NULL);
	j = log_test_parse(line, n);
	T_ASSERT(j != NULL);
	T_EQ_STR(json_string_value(json_object_get(j, "req")), "req-7");
	json_decref(j);
}

T_MAIN(T_CASE(test_log_fields), T_CASE(test_log_truncates_long_values),
    T_CASE(test_log_levels), T_CASE(test_log_thread_req))
