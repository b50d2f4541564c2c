/*
 * err.c: names and texts of the error codes of err.h.
 */
#include "err.h"

struct err_entry {
	const char *name;
	const char *text;
};

static const struct err_entry err_table[ERR_MAX_] = {
    [ERR_NONE] = {"NONE", "success"},
#define ERR_ROW_(name, num, text) [num] = {#name, text},
    ERR_MAP(ERR_ROW_)
#undef ERR_ROW_
};

static const struct err_entry *
err_lookup(int code)
{
	if (code < 0)
		code = -code;
	if (code >= ERR_MAX_ || err_table[code].name == NULL)
		return NULL;
	return &err_table[code];
}

const char *
err_str(int code)
{
	const struct err_entry *e = err_lookup(code);

	return e != NULL ? e->text : "unknown error";
}

const char *
err_name(int code)
{
	const struct err_entry *e = err_lookup(code);

	return e != NULL ? e->name : "UNKNOWN";
}
