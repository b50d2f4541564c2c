/*
 * gw_bundle.h: releases that ride on the next acquire (private to
 * gateway/).
 *
 * A finished request's SCHED_RELEASE_REQ (or a waiter's cancel) is not
 * sent alone at once: it waits in the I/O thread's pending list for at
 * most release_linger, and the next acquire sent meanwhile carries it in a
 * SCHED_BUNDLE_REQ.  Under load a request then costs one scheduler round
 * trip instead of two, and a client that sends its next request as soon
 * as the last one ended finds its slot already free, because the
 * scheduler applies the release before the acquire it rides with.  When
 * no acquire comes within the linger (a quiet gateway), or the list is
 * full, the pending releases go out on their own, in one message.
 * release_linger 0 sends every release at once, alone.
 *
 * Releases stay fire and forget: one that is lost (no scheduler, past the
 * deadline) is counted in m_release_failed and its lease ends with its
 * TTL.  An acquire that carries releases keeps its own deadline and
 * callback; its reply is the acquire's.
 *
 * Threads: every function runs on the I/O thread only.
 */
#ifndef GW_BUNDLE_H
#define GW_BUNDLE_H

#include "buf.h"
#include "nngx.h"
#include "proto.h"

struct gw;

#define GW_BUNDLE_BYTES (256 * 1024) /* pending envelope bytes at most */

struct gw_bundle {
	struct buf data;                       /* envelopes, back to back */
	size_t     ends[PROTO_BUNDLE_MAX - 1]; /* end offset of each */
	uint32_t   n;                          /* pending releases */
	int64_t    due_ms;                     /* send them by then */
};

/* An empty list; gw_bundle_free() releases its memory. */
void gw_bundle_init(struct gw_bundle *b);
void gw_bundle_free(struct gw_bundle *b);

/*
 * Queues one packed SCHED_RELEASE_REQ envelope (borrowed, copied).  Sends
 * at once instead when release_linger is 0; sends the pending ones first
 * when this one would not fit.
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
