/*
 * sched_settings.c: the admin settings the scheduler obeys, read from the
 * settings table (the contract is in sched.h).
 *
 * Today one key: sticky_session_ttl_seconds overrides the sticky_ttl of
 * the configuration, which stays the default.  The table is read at
 * start, again on a config-changed event of kind "setting"/"settings"
 * (webui publishes it after a write), and every settings_reload_interval
 * as a fallback, so a write that no event announced (sub2apictl, a lost
 * PUB message) still takes effect within that period.
 *
 * The value in force is one atomic integer, read on every acquire
 * without a lock.  What was last read is remembered under a mutex, so a
 * change is logged once, not at every reload: an accepted value at info,
 * a refused one (not an integer of seconds within
 * 0..SCHED_SETTING_STICKY_TTL_MAX) at warn, and a refused value puts the
 * configured default back in force rather than a stale override.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#include "err.h"
#include "log.h"
#include "sched.h"
#include "tick.h"

/* Longest value parsed; a longer one is refused. */
#define SCHED_SET_VALUE_MAX 32

struct sched_settings {
	_Atomic int64_t sticky_ttl_ms;
	int64_t         sticky_default_ms;
	pthread_mutex_t mu;
	bool            seen;    /* a value (or its absence) was applied */
	bool            present; /* the row existed */
	char            digest[CRYPTO_SHA256_HEX_LEN + 1]; /* of the value */
	int             rv; /* what applying raw gave */
	struct tick     tick;
	bool            started;
};

static const char sched_set_sql[] = "SELECT value FROM settings WHERE key = $1";

struct sched_settings *
sched_settings_new(const struct sched_cfg *cfg)
{
	struct sched_settings *st = xcalloc(1, sizeof(*st));

	st->sticky_default_ms = cfg->sticky_ttl;
	atomic_store(&st->sticky_ttl_ms, cfg->sticky_ttl);
	pthread_mutex_init(&st->mu, NULL);
	return st;
}

void
sched_settings_free(struct sched_settings *st)
{
	if (st == NULL)
		return;
	if (st->started)
		tick_stop(&st->tick);
	pthread_mutex_destroy(&st->mu);
	free(st);
}

int64_t
sched_settings_sticky_ttl(const struct sched *s)
{
	if (s->settings == NULL)
		return s->cfg->sticky_ttl;
	return atomic_load(&s->settings->sticky_ttl_ms);
}

/* Whole seconds "0".."SCHED_SETTING_STICKY_TTL_MAX": digits only. */
static int
sched_set_parse_secs(const char *v, int64_t *out)
{
	int64_t n = 0;
	size_t  i;

	if (v[0] == '\0')
		return -ERR_INVAL;
	for (i = 0; v[i] != '\0'; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -ERR_INVAL;
		n = n * 10 + (v[i] - '0');
		if (n > SCHED_SETTING_STICKY_TTL_MAX)
			return -ERR_INVAL;
	}
	*out = n;
	return 0;
}

int
sched_settings_apply_sticky(struct sched *s, const char *value)
{
	struct sched_settings *st = s->settings;
	int64_t                secs = 0, ttl;
	char                   digest[CRYPTO_SHA256_HEX_LEN + 1] = "";
	int                    rv = 0;

	if (st == NULL)
		return -ERR_INVAL;
	/* A digest: values of any length compare, none is kept. */
	if (value != NULL)
		crypto_sha256_hex(value, strlen(value), digest);
	pthread_mutex_lock(&st->mu);
	if (st->seen && st->present == (value != NULL) &&
	    strcmp(st->digest, digest) == 0) {
		rv = st->rv; /* unchanged since the last read: nothing to say */
		pthread_mutex_unlock(&st->mu);
		return rv;
	}
	/* An empty value is how an admin clears the override. */
	if (value == NULL || value[0] == '\0') {
		ttl = st->sticky_default_ms;
		log_info("sched.setting_applied",
		    LOG_STR("key", SCHED_SETTING_STICKY_TTL),
		    LOG_MSG("not set: the configured sticky_ttl applies"),
		    LOG_I64("sticky_ttl_ms", ttl));
	} else if (strlen(value) > SCHED_SET_VALUE_MAX ||
	    sched_set_parse_secs(value, &secs) != 0) {
		ttl = st->sticky_default_ms;
		rv = -ERR_INVAL;
		log_warn("sched.setting_invalid",
		    LOG_STR("key", SCHED_SETTING_STICKY_TTL),
		    LOG_MSG("want whole seconds 0..604800: refused, the "
		            "configured sticky_ttl applies"),
		    LOG_I64("sticky_ttl_ms", ttl));
	} else {
		ttl = secs * 1000;
		log_info("sched.setting_applied",
		    LOG_STR("key", SCHED_SETTING_STICKY_TTL),
		    LOG_I64("sticky_ttl_ms", ttl));
	}
	atomic_store(&st->sticky_ttl_ms, ttl);
	st->seen = true;
	st->present = value != NULL;
	st->rv = rv;
	memcpy(st->digest, digest, sizeof(digest));
	pthread_mutex_unlock(&st->mu);
	return rv;
}

int
sched_settings_load(struct sched *s)
{
	struct pg_conn *conn;
	PGresult       *res;
	const char     *params[1] = {SCHED_SETTING_STICKY_TTL};
	int             rv;

	if (s->settings == NULL)
		return -ERR_INVAL;
	rv = pg_acquire(s->pg, (int)s->cfg->dep_timeout, &conn);
	if (rv != 0) {
		log_warn("sched.settings_load_failed", LOG_ERR(rv));
		return rv;
	}
	rv = pg_exec(conn, sched_set_sql, 1, params, &res);
	if (rv != 0) {
		log_warn("sched.settings_load_failed", LOG_ERR(rv),
		    LOG_STR("detail", pg_errmsg(conn)));
		pg_release(conn);
		return rv;
	}
	pg_release(conn);
	/* A refused value is logged and replaced: the load itself is fine. */
	(void)sched_settings_apply_sticky(
	    s, PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : NULL);
	PQclear(res);
	return 0;
}

bool
sched_settings_kind(const char *kind)
{
	return strcmp(kind, "setting") == 0 || strcmp(kind, "settings") == 0;
}

static void
sched_set_tick_cb(void *arg)
{
	(void)sched_settings_load(arg); /* failures are logged */
}

int
sched_settings_start(struct sched *s)
{
	int rv;

	if (s->settings == NULL || s->settings->started)
		return -ERR_INVAL;
	rv = tick_start(&s->settings->tick, "settings",
	    s->cfg->settings_reload_interval, sched_set_tick_cb, s);
	if (rv == 0)
		s->settings->started = true;
	return rv;
}
