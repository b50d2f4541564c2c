/*
 * gw_bundle.h: messages held briefly so that several travel as one
 * (private to gateway/).
 *
 * Two streams of small messages leave the I/O thread with every request:
 * the lease release to the scheduler and the usage event to the
 * collectors.  Sent one by one, each costs nng several thread hand-offs
 * on both sides.  Both are held in a pending list (struct gw_pend) for a
 * few milliseconds at most and leave together:
 *
 *  - Releases ride on the next acquire.  A finished request's
 *    SCHED_RELEASE_REQ (or a waiter's cancel) waits up to release_linger;
 *    the next acquire sent meanwhile carries it in a SCHED_BUNDLE_REQ.
 *    Under load a request then costs one scheduler round trip instead of
 *    two, and a client that sends its next request as soon as the last
 *    one ended finds its slot already free, because the scheduler applies
 *    the releases before the acquire they ride with.  When no acquire
 *    comes within the linger, or the list is full, the releases go out on
 *    their own, in one message.  Releases stay fire and forget: a lost one
 *    is counted in m_release_failed and its lease ends with its TTL.
 *  - Usage events are published in a USAGE_BATCH_EVT (gw_events.c) once
 *    the first has waited usage_linger, or the batch is full.  The spool
 *    already holds each event, so a lost batch is resent by the sync.
 *
 * A linger of 0 sends each message alone, at once.  A list of one message
 * sends it as it is, unwrapped.
 *
 * Threads: every function runs on the I/O thread only.
 */
#ifndef GW_BUNDLE_H
#define GW_BUNDLE_H

#include "buf.h"
#include "nngx.h"
#include "proto.h"

struct gw;

#define GW_PEND_BYTES (256 * 1024) /* envelope bytes held at most */

/* Envelopes waiting to leave together. */
struct gw_pend {
	struct buf data;                  /* envelopes, back to back */
	size_t     ends[PROTO_BATCH_MAX]; /* end offset of each */
	uint32_t   n;
	uint32_t   max;    /* entries at most (<= PROTO_BATCH_MAX) */
	int64_t    due_ms; /* monotonic: the first one's linger ends */
};

/* An empty list of max entries; gw_pend_free() releases its memory. */
void gw_pend_init(struct gw_pend *p, uint32_t max);
void gw_pend_free(struct gw_pend *p);

/* Whether one more envelope of len bytes fits. */
bool gw_pend_fits(const struct gw_pend *p, size_t len);

/*
 * Appends env (len bytes, copied; the caller checked gw_pend_fits());
 * the first one sets due_ms to now + linger_ms.
 */
void gw_pend_add(
    struct gw_pend *p, const void *env, size_t len, int64_t linger_ms);

/* Points out[0..n) at the held envelopes (borrowed until the next change). */
void gw_pend_blobs(const struct gw_pend *p, struct proto_blob *out);

/* Ms until due at now_ms (0: due), or -1 when empty. */
int64_t gw_pend_due(const struct gw_pend *p, int64_t now_ms);

void gw_pend_clear(struct gw_pend *p);

/*
 * Releases: queues one packed SCHED_RELEASE_REQ envelope (borrowed,
 * copied).  Sends at once instead when release_linger is 0; sends the
 * pending ones first when this one would not fit.
 */
void gw_bundle_add(struct gw *gw, const void *env, size_t len);

/*
 * Sends call (a packed SCHED_ACQUIRE_REQ envelope whose request id is id
 * and deadline deadline_ms, borrowed) with the pending releases, in one
 * SCHED_BUNDLE_REQ when there are any.  Same contract as
 * nngx_req_call_async(): 0 when cb will run exactly once.  When the call
 * cannot start, the pending releases have been sent (or counted lost)
 * anyway.
 */
int gw_bundle_call(struct gw *gw, const void *call, size_t len, const char *id,
    int64_t deadline_ms, nngx_req_fn cb, void *arg) WARN_UNUSED;

/*
 * Sends the pending releases when they are due at now_ms (all of them
 * when force).  Returns the ms until the next are due, or -1 when none
 * is pending.
 */
int64_t gw_bundle_flush(struct gw *gw, int64_t now_ms, bool force);

#endif /* GW_BUNDLE_H */
