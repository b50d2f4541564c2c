/*
 * hb.h: status heartbeats, both ends.
 *
 * Every service may publish STATUS_HEARTBEAT_EVT on TOPIC_HEARTBEAT,
 * numbered from 1 per instance; collectors feed what they receive to an
 * hb_rx, which checks the numbering with a seqtrack and keeps the
 * counters that /metrics shows:
 *   sub2api_heartbeats_received_total   every heartbeat decoded
 *   sub2api_heartbeats_missed_total     numbers skipped (dropped on the way)
 *   sub2api_heartbeats_repeated_total   numbers seen twice
 *   sub2api_heartbeats_malformed_total  payloads that did not decode
 *   sub2api_heartbeat_sources           instances heard from
 */
#ifndef HB_H
#define HB_H

#include "buf.h"
#include "metrics.h"
#include "seqtrack.h"

/*
 * Appends one heartbeat envelope to out.  Strings are borrowed; state is
 * "starting", "serving" or "draining".  Returns as proto_pack().
 */
int hb_pack(struct buf *out, const char *svc, const char *instance,
    uint64_t seq, int64_t started_ms, const char *state,
    uint32_t inflight) WARN_UNUSED;

struct hb_rx {
	struct seqtrack     track;
	struct met_counter *received;
	struct met_counter *missed;
	struct met_counter *repeated;
	struct met_counter *malformed;
	struct met_gauge   *sources;
};

/* Registers the counters in reg (metrics_default() when NULL). */
void hb_rx_init(struct hb_rx *rx, struct met_registry *reg);
void hb_rx_release(struct hb_rx *rx);

/*
 * Decodes one published envelope (borrowed) and records it.  Returns 0,
 * or the decoder's -ERR_x (counted as malformed).  Thread-safe.
 */
int hb_rx_feed(struct hb_rx *rx, const void *data, size_t len);

#endif /* HB_H */
