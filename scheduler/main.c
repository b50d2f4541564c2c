/*
 * main.c: the scheduler process: configuration, pools, the REP endpoint
 * and the config-changed subscription, then wait and drain.
 */
#include "err.h"
#include "log.h"
#include "proto.h"
#include "sched.h"
#include "sched_refresh.h"
#include "sched_sweep.h"
#include "sig.h"
#include "svc_deps.h"

/*
 * A configuration write announced by webui: drop the cached API keys it
 * concerns (accounts are read fresh on every acquire); a settings change
 * reloads the settings.
 */
static void
sched_cfg_event_cb(
    void *arg, const char *topic, const void *payload, size_t len)
{
	struct sched                   *s = arg;
	struct proto_env                env;
	struct proto_config_changed_evt evt;
	size_t                          n;
	int                             rv;

	(void)topic;
	rv = proto_env_unpack(payload, len, &env);
	if (rv == 0)
		rv = proto_config_changed_evt_unpack(&env, &evt);
	if (rv != 0) {
		log_warn("sched.cfg_event_malformed", LOG_ERR(rv));
		return;
	}
	met_counter_inc(s->cfg_events);
	/* One small query: as brief as the REP handlers' own. */
	if (sched_settings_kind(evt.kind))
		(void)sched_settings_load(s); /* failures are logged */
	n = sched_keys_invalidate(s->keys, evt.kind, evt.entity_id);
	if (sched_acache_kind(evt.kind))
		sched_acache_invalidate(s->acache);
	log_info("sched.cfg_changed", LOG_STR("kind", evt.kind),
	    LOG_I64("id", evt.entity_id), LOG_U64("version", evt.version),
	    LOG_U64("dropped", n));
}

static void
sched_start(struct sched *s)
{
	static const char *const labels[] = {"type", "result"};
	const char *const        topics[] = {TOPIC_CONFIG};
	int                      rv;

	s->requests = svc_family(MET_COUNTER, "sub2api_sched_requests_total",
	    "Requests served, by message type and result.", labels, 2, NULL, 0);
	s->cfg_events = svc_counter("sub2api_sched_config_events_total",
	    "Configuration-changed events received.");
	svc_deps_open(&s->svc, s->cfg->database_url, (int)s->cfg->db_pool,
	    &s->pg, s->cfg->redis_url, (int)s->cfg->redis_pool, &s->rds,
	    (int)s->cfg->dep_timeout);
	rv = sched_core_init(s);
	if (rv != 0)
		fatalx("sched.init_failed", LOG_ERR(rv),
		    LOG_MSG("secret_key does not parse, or out of memory"));
	rv = http_add_check(
	    s->svc.health, "secret_key", sched_core_check_cb, s, 100);
	if (rv != 0)
		fatalx("sched.init_failed", LOG_ERR(rv));
	rv = nngx_rep_new(s->cfg->sched_addr, (int)s->cfg->workers,
	    sched_rep_handle, s, PROTO_MAX_MSG, &s->rep);
	if (rv != 0)
		fatalx("sched.listen_failed",
		    LOG_STR("addr", s->cfg->sched_addr), LOG_ERR(rv));
	rv = nngx_sub_new(s->cfg->sched_cfg_addr, topics, 1, 256,
	    sched_cfg_event_cb, s, &s->cfg_sub);
	if (rv != 0)
		fatalx("sched.listen_failed",
		    LOG_STR("addr", s->cfg->sched_cfg_addr), LOG_ERR(rv));
}

int
main(int argc, char **argv)
{
	struct sched          s;
	struct sched_sweep   *sweep = NULL;
	struct sched_refresh *refresh = NULL;
	struct tick           flush;
	int                   rv;

	sig_init();
	memset(&s, 0, sizeof(s));
	s.cfg = cfg_main(&sched_cfg_schema, argc, argv);
	svc_init(&s.svc, "scheduler", &SVC_OPTS(s.cfg));
	/* Before any handler runs: they read it. */
	s.settings = sched_settings_new(s.cfg);
	sched_start(&s);
	rv = sched_settings_start(&s);
	if (rv != 0)
		fatalx("sched.init_failed", LOG_ERR(rv),
		    LOG_MSG("cannot start the settings reload"));
	memset(&flush, 0, sizeof(flush));
	rv = sched_acache_start(&s, &flush);
	if (rv != 0)
		fatalx("sched.init_failed", LOG_ERR(rv),
		    LOG_MSG("cannot start the last_used_at writer"));
	rv = sched_sweep_new(&s, &sweep);
	if (rv != 0)
		fatalx("sched.init_failed", LOG_ERR(rv),
		    LOG_MSG("cannot start the slot sweeper"));
	rv = sched_refresh_start(&s, &refresh);
	if (rv != 0)
		fatalx("sched.init_failed", LOG_ERR(rv),
		    LOG_MSG("cannot start the token refresh job"));

	svc_serve(&s.svc);

	/* The sweeper uses the Redis pool: stop it before the pools go. */
	sched_sweep_free(sweep);
	/* The token refresh job uses both pools: stop it before they go. */
	sched_refresh_stop(refresh);

	/* Closing the REP socket lets in-flight handlers finish first. */
	nngx_rep_close(s.rep);
	nngx_sub_close(s.cfg_sub);
	nngx_rep_free(s.rep);
	nngx_sub_free(s.cfg_sub);
	/* No acquire runs any more: write the last picks out. */
	sched_acache_stop(&s, &flush);
	/*
	 * No handler or event reads the settings any more; the reload job
	 * uses the pool, which is still open.
	 */
	sched_settings_free(s.settings);
	/* The health listener's checks use the pools: stop it first. */
	svc_release(&s.svc);
	svc_deps_close(s.pg, s.rds);
	sched_core_release(&s);
	sched_cfg_free((struct sched_cfg *)s.cfg);
	return 0;
}
