/*
 * gw_session.h: the sticky-session key of an Anthropic /v1/messages
 * request (reference 2.2, issue "session key").
 *
 * A session key says "these requests belong to one conversation", so the
 * scheduler can keep sending them to one account (whose prompt cache then
 * hits).  It is the first 128 bits of SHA-256, as 32 lowercase hex, of a
 * source string chosen by the first rule that applies:
 *
 *   1. "cc:"     + metadata.user_id's session_id (Claude Code's JSON form)
 *   2. "hdr:"    + the x-claude-code-session-id header
 *   3. "legacy:" + the <uuid> of user_..._session_<uuid> (the legacy form)
 *   4. "eph:"    + the text of the system blocks whose cache_control.type
 *                  is "ephemeral", concatenated; when there are none, the
 *                  text of the first message holding such a content part
 *   5. "sys:"    + the system text (a string, or its text blocks joined)
 *   6. "msg:"    + the first message's text (a string, or its text parts)
 *
 * The prefix keeps sources apart: a session id never hashes like a system
 * prompt with the same characters.  At most GW_SESSION_HASH_CAP bytes of
 * the chosen source are hashed (streamed, never copied), so the work per
 * request is bounded whatever the body size.
 *
 * The key is not namespaced here: the scheduler stores it under the
 * group and platform of the API key (sched_slots.c), so users of
 * different groups never share a binding.
 */
#ifndef GW_SESSION_H
#define GW_SESSION_H

#include "compat.h"
#include "gw_anth.h"

#define GW_SESSION_HASH_LEN 32          /* hex characters of a key */
#define GW_SESSION_HASH_CAP (64u << 10) /* bytes of one source hashed */

/*
 * Writes the session key of req (borrowed, parsed by gw_anth_parse(); its
 * JSON is read, never changed) into out (32 hex + NUL) and returns 0, or
 * returns -ERR_NOTFOUND, leaving out untouched, when nothing in the
 * request can key a session.  cc_session_header is the value of the
 * x-claude-code-session-id header (borrowed; NULL or "" when absent).
 */
int gw_session_hash(const struct gw_anth_req *req,
    const char                               *cc_session_header,
    char out[GW_SESSION_HASH_LEN + 1]) WARN_UNUSED;

#endif /* GW_SESSION_H */
