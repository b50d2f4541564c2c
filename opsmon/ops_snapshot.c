/*
 * ops_snapshot.c: the periodic METRICS_SNAPSHOT_EVT to the alerter.
 *
 * The snapshot carries counters by name; the alerter's rules refer to
 * those names.  The ops issue adds the windowed rates and percentiles.
 */
#include <stdio.h>

#include "err.h"
#include "log.h"
#include "ops.h"
#include "proto.h"

static void
ops_sample(struct proto_metrics_snapshot_evt *m, const char *name, double value)
{
	struct proto_sample *s;

	if (m->n_samples >= PROTO_SAMPLES_MAX)
		return;
	s = &m->samples[m->n_samples++];
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->value = value;
}

void
ops_snapshot_cb(void *arg)
{
	struct ops                        *o = arg;
	struct proto_metrics_snapshot_evt *m;
	uint64_t                           rec, missed;
	struct buf                         out;
	int                                rv;

	m = xcalloc(1, sizeof(*m));
	snprintf(m->source, sizeof(m->source), "opsmon");
	snprintf(m->instance, sizeof(m->instance), "%s", o->svc.instance);
	m->window_s = (uint32_t)(o->cfg->snapshot_interval / 1000);
	m->ts_ms = now_wall_ms();
	seqtrack_totals(&o->hb.track, &rec, &missed, NULL);
	ops_sample(m, "heartbeats_received", (double)rec);
	ops_sample(m, "heartbeats_missed", (double)missed);
	ops_sample(
	    m, "usage_events", (double)met_counter_value(o->usage_events));
	ops_sample(
	    m, "error_events", (double)met_counter_value(o->error_events));
	buf_init(&out, PROTO_MAX_MSG);
	rv = proto_metrics_snapshot_evt_pack(&out, NULL, 0, m);
	if (rv == 0)
		rv = nngx_pub_send(o->pub, TOPIC_METRICS, out.data, out.len);
	if (rv == 0)
		met_counter_inc(o->snapshots_sent);
	else
		met_counter_inc(o->snapshots_dropped);
	buf_release(&out);
	free(m);
}
