/*
 * hb.c: heartbeat packing and receiving (see hb.h).
 */
#include "hb.h"

#include <stdio.h>

#include "err.h"
#include "log.h"
#include "proto.h"

int
hb_pack(struct buf *out, const char *svc, const char *instance, uint64_t seq,
    int64_t started_ms, const char *state, uint32_t inflight)
{
	struct proto_status_heartbeat_evt hb;

	memset(&hb, 0, sizeof(hb));
	snprintf(hb.service, sizeof(hb.service), "%s", svc);
	snprintf(hb.instance, sizeof(hb.instance), "%s", instance);
	snprintf(hb.state, sizeof(hb.state), "%s", state);
	hb.seq = seq;
	hb.started_at_ms = started_ms;
	hb.sent_at_ms = now_wall_ms();
	hb.inflight = inflight;
	return proto_status_heartbeat_evt_pack(out, NULL, 0, &hb);
}

void
hb_rx_init(struct hb_rx *rx, struct met_registry *reg)
{
	if (reg == NULL)
		reg = metrics_default();
	seqtrack_init(&rx->track);
	rx->received = met_counter_new(reg, "sub2api_heartbeats_received_total",
	    "Status heartbeats received and decoded.");
	rx->missed = met_counter_new(reg, "sub2api_heartbeats_missed_total",
	    "Heartbeat sequence numbers skipped: heartbeats lost on the way.");
	rx->repeated = met_counter_new(reg, "sub2api_heartbeats_repeated_total",
	    "Heartbeat sequence numbers received more than once.");
	rx->malformed =
	    met_counter_new(reg, "sub2api_heartbeats_malformed_total",
	        "Heartbeat payloads that failed to decode.");
	rx->sources = met_gauge_new(reg, "sub2api_heartbeat_sources",
	    "Distinct service instances heard from.");
	ASSERT(rx->received != NULL && rx->missed != NULL &&
	    rx->repeated != NULL && rx->malformed != NULL &&
	    rx->sources != NULL);
}

void
hb_rx_release(struct hb_rx *rx)
{
	seqtrack_release(&rx->track);
}

int
hb_rx_feed(struct hb_rx *rx, const void *data, size_t len)
{
	struct proto_status_heartbeat_evt hb;
	struct proto_env                  env;
	enum seqtrack_result              r;
	uint64_t                          gap = 0;
	int                               rv;

	rv = proto_env_unpack(data, len, &env);
	if (rv == 0)
		rv = proto_status_heartbeat_evt_unpack(&env, &hb);
	if (rv != 0) {
		met_counter_inc(rx->malformed);
		log_debug("hb.malformed", LOG_ERR(rv));
		return rv;
	}
	met_counter_inc(rx->received);
	r = seqtrack_see(&rx->track, hb.instance, hb.seq, &gap);
	switch (r) {
	case SEQTRACK_FIRST:
		log_info("hb.source_seen", LOG_STR("from", hb.service),
		    LOG_STR("instance", hb.instance), LOG_U64("seq", hb.seq));
		met_gauge_set(rx->sources, (double)rx->track.n);
		break;
	case SEQTRACK_GAP:
		met_counter_add(rx->missed, gap);
		log_warn("hb.gap", LOG_STR("instance", hb.instance),
		    LOG_U64("seq", hb.seq), LOG_U64("missed", gap));
		break;
	case SEQTRACK_REPEAT:
		met_counter_inc(rx->repeated);
		break;
	case SEQTRACK_NEXT:
		break;
	}
	return 0;
}
