/*
 * gw_info.h: GET /v1/models and GET /v1/usage, the two answers the
 * gateway builds from one scheduler question (SCHED_KEYINFO_REQ) instead
 * of an upstream call.
 *
 * Pure functions, no I/O: the caller sends the packed request on its
 * scheduler socket and hands the reply bytes back; nothing here blocks,
 * allocates beyond the call, or keeps a pointer.  Every body is JSON
 * (Content-Type: application/json).
 *
 * Money is never a float here: the scheduler sends PostgreSQL's exact
 * decimal text and it is written into the JSON as a number, digit for
 * digit (trailing fractional zeros dropped: "12.5000000000" -> 12.5).
 */
#ifndef GW_INFO_H
#define GW_INFO_H

#include "buf.h"
#include "compat.h"

/*
 * Packs a SCHED_KEYINFO_REQ for key_hash (64 lowercase hex digits; what:
 * "models"|"usage") into out, with req_id (may be NULL) as both the
 * envelope id and the request id and deadline_ms (absolute wall ms, 0 =
 * none).  Borrows everything.  Returns 0, -ERR_INVAL for a bad key hash,
 * what or req_id, or -ERR_TOOBIG past out's cap (see proto_pack()).
 */
int gw_info_pack(struct buf *out, const char *req_id, int64_t deadline_ms,
    const char *key_hash, const char *what) WARN_UNUSED;

/*
 * Turns the scheduler's reply rep[0..len) (borrowed; rv is the transport
 * status, 0 when rep holds a reply) into the client answer for what:
 * sets *status and appends the JSON body to body.
 *
 *   models  200 {"data":[{"type":"model","id":ID,"display_name":ID,
 *           "created_at":"2025-01-01T00:00:00Z"},...],"has_more":false,
 *           "first_id":ID|null,"last_id":ID|null}
 *   usage   200 {"isValid":true,"planName":NAME,"remaining":N,
 *           "unit":"USD","balance":N}
 *
 * A refusal is an Anthropic error envelope (gw_err_anthropic()) with the
 * status of its gw_err_info() row: AUTH -> API_KEY_DISABLED when the
 * message says "disabled", USER_INACTIVE when it names the "User",
 * INVALID_API_KEY otherwise (as the relay does for an acquire);
 * FORBIDDEN -> SUBSCRIPTION_INVALID; BALANCE -> INSUFFICIENT_BALANCE;
 * BUSY -> CONCURRENCY_LIMIT; NO_ACCOUNT -> NO_ACCOUNTS; anything else,
 * or an OK reply whose amounts are not decimal text, -> INTERNAL.  A
 * transport error, an undecodable reply or an ERROR_REP -> NO_ACCOUNTS
 * (503), as for an acquire.
 *
 * Returns 0 whenever an answer was produced (refusals included);
 * -ERR_INVAL for another what (nothing written); -ERR_TOOBIG when body's
 * cap was hit (body released, see buf.h).
 */
int gw_info_answer(int rv, const void *rep, size_t len, const char *what,
    int *status, struct buf *body) WARN_UNUSED;

#endif /* GW_INFO_H */
