/*
 * sched_core.c: the configuration table and the state the hot path
 * shares: the credential key, the API-key cache and the Lua scripts.
 *
 * The configuration is defined here rather than in main.c so that the
 * tests, which link every scheduler object but main.o, can load it.
 *
 * A missing secret key does not stop the process: the scheduler starts,
 * /readyz reports "secret_key" failing with a clear detail, and every
 * acquire answers PROTO_ACQ_INTERNAL.  Renew and release keep working, so
 * a key rotated by a restart never strands leases.  A malformed key is a
 * configuration error and the caller fatalx()es.
 */
#include <stdio.h>

#include "err.h"
#include "log.h"
#include "sched.h"

CFG_DEFINE(sched_cfg, "scheduler", "SCHEDULER", SCHED_CFG)

int
sched_core_init(struct sched *s)
{
	int rv;

	s->key_ok = false;
	if (s->cfg->secret_key != NULL && *s->cfg->secret_key != '\0') {
		rv = crypto_key_load(s->cfg->secret_key, &s->key);
		if (rv != 0)
			return rv;
		s->key_ok = true;
	} else {
		log_error("sched.secret_key_missing",
		    LOG_MSG("SUB2API_SECRET_KEY is not set: acquires fail"));
	}
	s->keys = sched_keys_new((size_t)s->cfg->key_cache_size);
	s->acache = sched_acache_new(s->cfg->account_cache_ttl);
	s->memo = sched_state_memo_new();
	rv = rds_script_new(sched_lua_acquire, &s->lua_acquire);
	if (rv == 0)
		rv = rds_script_new(sched_lua_renew, &s->lua_renew);
	if (rv == 0)
		rv = rds_script_new(sched_lua_release, &s->lua_release);
	if (rv == 0)
		rv = rds_script_new(sched_lua_failure, &s->lua_failure);
	if (rv == 0)
		rv = rds_script_new(sched_lua_unwait, &s->lua_unwait);
	if (rv == 0) {
		s->m_queue_full = svc_counter("sub2api_sched_queue_full_total",
		    "Acquires refused at once because the user already had "
		    "too many requests waiting.");
		s->m_waits = svc_counter("sub2api_sched_wait_busy_total",
		    "Acquires answered BUSY with the request registered as "
		    "waiting.");
	}
	if (rv != 0) {
		sched_core_release(s);
		return rv;
	}
	return 0;
}

void
sched_core_release(struct sched *s)
{
	sched_keys_free(s->keys);
	sched_acache_free(s->acache);
	s->acache = NULL;
	s->keys = NULL;
	sched_state_memo_free(s->memo);
	s->memo = NULL;
	rds_script_free(s->lua_acquire);
	rds_script_free(s->lua_renew);
	rds_script_free(s->lua_release);
	rds_script_free(s->lua_failure);
	rds_script_free(s->lua_unwait);
	s->lua_acquire = s->lua_renew = s->lua_release = NULL;
	s->lua_failure = NULL;
	s->lua_unwait = NULL;
	crypto_key_wipe(&s->key);
	s->key_ok = false;
}

int
sched_core_check_cb(void *arg, int timeout_ms, struct buf *detail)
{
	struct sched *s = arg;

	(void)timeout_ms;
	if (s->key_ok)
		return 0;
	if (buf_addstr(detail, "secret key not set (SUB2API_SECRET_KEY)") != 0)
		buf_reset(detail);
	return -ERR_CONFIG;
}
