/*
 * gw_relay.h: the relay state machine, run by the I/O thread (private to
 * gateway/).
 *
 * For each request: ask the scheduler (SCHED_ACQUIRE_REQ), run the
 * upstream transfer, and either fail over (before the first byte reached
 * the client: report the outcome, exclude the account, ask again, up to
 * max_switches) or relay the answer; then return the lease with the
 * outcome (SCHED_RELEASE_REQ) and publish one usage event, or an error
 * event for a failure.  gw_up.c holds the libcurl side.
 */
#ifndef GW_RELAY_H
#define GW_RELAY_H

#include "gw_errors.h"
#include "gw_req.h"

void gw_relay_start(struct gw *gw, struct gw_req *r);
void gw_relay_acquired(
    struct gw *gw, struct gw_req *r, int rv, const void *rep, size_t len);
void gw_relay_done(struct gw *gw, struct gw_req *r, CURLcode rc);
void gw_relay_cancel(struct gw *gw, struct gw_req *r, const char *why);
void gw_relay_tick(struct gw *gw, struct gw_req *r, int64_t now_ms);
void gw_relay_renew(struct gw *gw);

/*
 * When an acquire of r answered BUSY (the scheduler registered r as
 * waiting) and no later acquire succeeded, tells the scheduler that r
 * waits no more (a release flagged wait_cancel, without a lease); fire
 * and forget: a lost cancel is reclaimed by the wait set's TTL.  Called
 * by gw_io_finish(), so every way a request ends is covered.
 */
void gw_relay_unqueue(struct gw *gw, struct gw_req *r);

/* Counts (and publishes an error event for) an error answered locally. */
void gw_relay_count_error(
    struct gw *gw, struct gw_req *r, enum gw_err_code code);

/* gw_up.c: the libcurl transfer of one attempt. */
int  gw_up_start(struct gw *gw, struct gw_req *r,
     const struct proto_sched_acquire_rep *d) WARN_UNUSED;
void gw_up_stop(struct gw *gw, struct gw_req *r);
/* A plain (non-stream) answer: usage, model rewrite, into r->out. */
void gw_up_finish_body(struct gw *gw, struct gw_req *r);

/* gw_events.c: usage and error events, numbered per instance. */
void gw_events_usage(struct gw *gw, struct gw_req *r, int status);
void gw_events_error(struct gw *gw, struct gw_req *r, int status,
    const char *type, const char *message);
/*
 * Publishes the held usage events when due at now_ms (all when force),
 * as one USAGE_BATCH_EVT; ms until the next are due, -1 when none held.
 */
int64_t gw_events_flush(struct gw *gw, int64_t now_ms, bool force);

#endif /* GW_RELAY_H */
