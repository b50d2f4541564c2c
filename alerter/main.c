/*
 * main.c: the alerter process: configuration, the snapshot subscription,
 * then wait and drain.
 */
#include <stdlib.h>

#include "alrt.h"
#include "err.h"
#include "log.h"
#include "proto.h"
#include "sig.h"

CFG_DEFINE(alrt_cfg, "alerter", "ALERTER", ALRT_CFG)

static void
alrt_snapshot_cb(void *arg, const char *topic, const void *payload, size_t len)
{
	struct alrt                       *a = arg;
	struct proto_metrics_snapshot_evt *m;
	struct proto_env                   env;
	uint32_t                           i;
	int                                rv;

	(void)topic;
	m = xmalloc(sizeof(*m));
	rv = proto_env_unpack(payload, len, &env);
	if (rv == 0)
		rv = proto_metrics_snapshot_evt_unpack(&env, m);
	if (rv != 0) {
		met_counter_inc(a->malformed);
		log_warn("alrt.snapshot_malformed", LOG_ERR(rv));
		free(m);
		return;
	}
	met_counter_inc(a->snapshots);
	for (i = 0; i < m->n_samples; i++) {
		const char *label[1] = {m->samples[i].name};

		met_gauge_set(
		    met_gauge_get(a->last_value, label), m->samples[i].value);
	}
	free(m);
}

int
main(int argc, char **argv)
{
	static const char *const labels[] = {"name"};
	const char *const        topics[] = {TOPIC_METRICS};
	struct alrt              a;
	int                      rv;

	sig_init();
	memset(&a, 0, sizeof(a));
	a.cfg = cfg_main(&alrt_cfg_schema, argc, argv);
	svc_init(&a.svc, "alerter", &SVC_OPTS(a.cfg));
	a.snapshots = svc_counter(
	    "sub2api_alerter_snapshots_total", "Metric snapshots received.");
	a.malformed = svc_counter("sub2api_alerter_snapshots_malformed_total",
	    "Metric snapshots that failed to decode.");
	a.last_value = svc_family(MET_GAUGE, "sub2api_alerter_snapshot_value",
	    "Newest value of each metric in the snapshots.", labels, 1, NULL,
	    0);
	rv = nngx_sub_new(
	    a.cfg->metrics_addr, topics, 1, 256, alrt_snapshot_cb, &a, &a.sub);
	if (rv != 0)
		fatalx("alrt.listen_failed",
		    LOG_STR("addr", a.cfg->metrics_addr), LOG_ERR(rv));

	svc_serve(&a.svc);

	nngx_sub_close(a.sub);
	nngx_sub_free(a.sub);
	svc_release(&a.svc);
	alrt_cfg_free((struct alrt_cfg *)a.cfg);
	return 0;
}
