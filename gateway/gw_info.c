/*
 * gw_info.c: the model list and the balance probe; see gw_info.h.
 *
 * The shapes are the reference's: the models list is Anthropic's
 * (GET /v1/models), each id doubling as its display name as the
 * reference does for mapped models, with a fixed creation date; the usage
 * answer is CC-Switch's balance probe plus the raw balance.
 */
#include "gw_info.h"

#include <stdio.h>

#include "err.h"
#include "gw_errors.h"
#include "log.h"
#include "proto.h"

#define GW_INFO_CREATED "2025-01-01T00:00:00Z"

int
gw_info_pack(struct buf *out, const char *req_id, int64_t deadline_ms,
    const char *key_hash, const char *what)
{
	struct proto_sched_keyinfo_req q;

	memset(&q, 0, sizeof(q));
	if (key_hash == NULL || what == NULL ||
	    strlen(key_hash) > PROTO_HASH_MAX || strlen(what) > PROTO_STATE_MAX)
		return -ERR_INVAL;
	if (req_id != NULL && strlen(req_id) > PROTO_ID_MAX)
		return -ERR_INVAL;
	snprintf(q.request_id, sizeof(q.request_id), "%s",
	    req_id != NULL ? req_id : "");
	snprintf(q.key_hash, sizeof(q.key_hash), "%s", key_hash);
	snprintf(q.what, sizeof(q.what), "%s", what);
	return proto_sched_keyinfo_req_pack(out, req_id, deadline_ms, &q);
}

/*
 * Appends the decimal text s as a JSON number, exactly: sign, integer
 * digits without leading zeros, fraction without trailing zeros ("-0"
 * becomes 0).  -ERR_INVAL for anything but [-]digits[.digits].
 */
static int
gw_info_number(struct buf *out, const char *s)
{
	const char *ip, *fp = NULL;
	size_t      ni = 0, nf = 0;
	bool        neg = false, zero;
	int         rv = 0;

	if (*s == '-') {
		neg = true;
		s++;
	}
	ip = s;
	while (*s >= '0' && *s <= '9')
		s++;
	ni = (size_t)(s - ip);
	if (ni == 0)
		return -ERR_INVAL;
	if (*s == '.') {
		fp = ++s;
		while (*s >= '0' && *s <= '9')
			s++;
		nf = (size_t)(s - fp);
		if (nf == 0)
			return -ERR_INVAL;
	}
	if (*s != '\0')
		return -ERR_INVAL;
	while (ni > 1 && *ip == '0') {
		ip++;
		ni--;
	}
	while (nf > 0 && fp[nf - 1] == '0')
		nf--;
	zero = ni == 1 && *ip == '0' && nf == 0;
	if (neg && !zero)
		rv = buf_addch(out, '-');
	if (rv == 0)
		rv = buf_add(out, ip, ni);
	if (rv == 0 && nf > 0)
		rv = buf_addch(out, '.');
	if (rv == 0 && nf > 0)
		rv = buf_add(out, fp, nf);
	return rv;
}

/* Appends "key":"value" (value JSON-escaped) with a leading separator. */
static int
gw_info_str(struct buf *out, const char *sep_key, const char *value)
{
	int rv;

	rv = buf_addstr(out, sep_key);
	if (rv == 0)
		rv = buf_addch(out, '"');
	if (rv == 0)
		rv = buf_add_json_str(out, value, strlen(value));
	if (rv == 0)
		rv = buf_addch(out, '"');
	return rv;
}

static int
gw_info_models(struct buf *out, const struct proto_sched_keyinfo_rep *d)
{
	uint32_t i;
	int      rv;

	rv = buf_addstr(out, "{\"data\":[");
	for (i = 0; rv == 0 && i < d->n_models; i++) {
		rv = gw_info_str(out,
		    i > 0 ? ",{\"type\":\"model\",\"id\":"
		          : "{\"type\":\"model\",\"id\":",
		    d->models[i]);
		if (rv == 0)
			rv = gw_info_str(
			    out, ",\"display_name\":", d->models[i]);
		if (rv == 0)
			rv = buf_addstr(
			    out, ",\"created_at\":\"" GW_INFO_CREATED "\"}");
	}
	if (rv == 0)
		rv = buf_addstr(out, "],\"has_more\":false");
	if (rv == 0 && d->n_models == 0)
		return buf_addstr(out, ",\"first_id\":null,\"last_id\":null}");
	if (rv == 0)
		rv = gw_info_str(out, ",\"first_id\":", d->models[0]);
	if (rv == 0)
		rv = gw_info_str(
		    out, ",\"last_id\":", d->models[d->n_models - 1]);
	if (rv == 0)
		rv = buf_addch(out, '}');
	return rv;
}

static int
gw_info_usage(struct buf *out, const struct proto_sched_keyinfo_rep *d)
{
	int rv;

	rv = gw_info_str(out, "{\"isValid\":true,\"planName\":", d->plan_name);
	if (rv == 0)
		rv = buf_addstr(out, ",\"remaining\":");
	if (rv == 0)
		rv = gw_info_number(out, d->remaining);
	if (rv == 0)
		rv = buf_addstr(out, ",\"unit\":\"USD\",\"balance\":");
	if (rv == 0)
		rv = gw_info_number(out, d->balance);
	if (rv == 0)
		rv = buf_addch(out, '}');
	return rv;
}

int
gw_info_answer(int rv, const void *rep, size_t len, const char *what,
    int *status, struct buf *body)
{
	struct proto_sched_keyinfo_rep *d;
	const struct gw_err_info       *e;
	struct proto_env                env;
	enum gw_err_code                code;
	size_t                          mark = body->len;
	bool                            models;

	if (what == NULL ||
	    (strcmp(what, "models") != 0 && strcmp(what, "usage") != 0))
		return -ERR_INVAL;
	models = strcmp(what, "models") == 0;
	d = xmalloc(sizeof(*d));
	if (rv == 0)
		rv = proto_env_unpack(rep, len, &env);
	if (rv == 0)
		rv = proto_sched_keyinfo_rep_unpack(&env, d);
	if (rv != 0) {
		log_warn(
		    "gw.keyinfo_failed", LOG_STR("what", what), LOG_ERR(rv));
		code = GW_E_NO_ACCOUNTS;
		goto refuse;
	}
	if (d->outcome != PROTO_ACQ_OK) {
		code = gw_err_from_refusal(d->outcome, d->err_message);
		goto refuse;
	}
	rv = models ? gw_info_models(body, d) : gw_info_usage(body, d);
	if (rv == -ERR_TOOBIG) {
		free(d);
		return rv;
	}
	if (rv != 0) {
		/* The codec checks the amounts; this is a second guard. */
		log_warn("gw.keyinfo_bad_amount", LOG_ERR(rv));
		buf_truncate(body, mark);
		code = GW_E_INTERNAL;
		goto refuse;
	}
	free(d);
	*status = 200;
	return 0;
refuse:
	free(d);
	e = gw_err_info(code);
	rv = gw_err_anthropic(body, e->type, e->message);
	if (rv == 0)
		*status = e->status;
	return rv;
}
