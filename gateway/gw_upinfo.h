/*
 * gw_upinfo.h: what the gateway tells the scheduler about an upstream
 * answer, besides its status.
 *
 * The account state machine (scheduler/sched_state.c) reads a few
 * response headers, the anthropic-ratelimit-unified-* family (status,
 * reset, 5h-status, 5h-reset, 5h-utilization, 7d-*) and retry-after, on
 * success and on failure; and, for a 4xx/5xx, the upstream's own error
 * message (a 403 that says the organization is disabled is a ban, not a
 * plain permission error).  Both travel in SCHED_RELEASE_REQ, bounded by
 * PROTO_HEADERS_MAX, PROTO_HDR_NAME_MAX and PROTO_HDR_VAL_MAX.  Nothing
 * here ever copies a request header, so no credential can leave this way;
 * the error message has credential-looking words masked as well, since
 * some upstreams quote the key they refused.
 */
#ifndef GW_UPINFO_H
#define GW_UPINFO_H

#include "compat.h"
#include "proto.h"

/* True when the state machine reads response header name (any case). */
bool gw_upinfo_header_wanted(const char *name);

/*
 * Appends (name, value[0..vlen)) to hdrs[0..*n) (PROTO_HEADERS_MAX
 * entries) when the header is wanted, with the name lowercased.  A
 * header whose name or value exceeds the message bounds, or that finds
 * the array full, is dropped: -ERR_TOOBIG, *n unchanged.  0 otherwise
 * (unwanted headers are ignored).  Every pointer is borrowed.
 */
int gw_upinfo_header_add(struct proto_header *hdrs, uint32_t *n,
    const char *name, const char *value, size_t vlen) WARN_UNUSED;

/*
 * The human-readable message of an upstream error body (body, len):
 * error.message (Anthropic, OpenAI), else a top-level string "message"
 * or "error".  Written to out (cap bytes, NUL-terminated), truncated on
 * a UTF-8 boundary, control bytes turned into spaces, and every word
 * that looks like a credential ("sk-..." or a long token) replaced by
 * "[redacted]".  -ERR_NOTFOUND when the body holds no such string (out
 * is then "").
 */
int gw_upinfo_error_message(
    const char *body, size_t len, char *out, size_t cap) WARN_UNUSED;

#endif /* GW_UPINFO_H */
