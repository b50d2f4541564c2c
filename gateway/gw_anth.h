/*
 * gw_anth.h: inspection and rewriting of Anthropic /v1/messages requests.
 *
 * Pure, I/O-free.  gw_anth_parse() reads a client body once (bounded size,
 * bounded nesting, duplicate keys rejected) and keeps what routing,
 * billing and rewriting need.  gw_anth_build_body() produces the upstream
 * body for one account, and gw_anth_build_headers() the upstream header
 * list.  Responses get the requested model name back with
 * gw_anth_rewrite_resp_model() (JSON body) and gw_anth_rewrite_sse_data()
 * (the message_start data line of a stream).
 *
 * Rewriting is by splicing: the changed values are replaced in the
 * original bytes and everything else is copied through byte for byte, so
 * numbers, key order, whitespace and escapes the client chose reach the
 * upstream untouched (re-serialising with jansson would, for one, turn
 * "temperature":0.7 into 0.69999999999999996).  When nothing needs to
 * change the body is forwarded unchanged.
 *
 * Not done (documented gaps): the reference's FilterThinkingBlocks
 * (dropping thinking blocks with invalid signatures from the history) and
 * the optional beta injection for API-key accounts; per-account
 * user-agent/X-Stainless fingerprints are the caller's (see
 * gw_anth_account.user_agent).
 */
#ifndef GW_ANTH_H
#define GW_ANTH_H

#include <jansson.h>

#include "buf.h"
#include "compat.h"
#include "gw_errors.h"

#define GW_ANTH_BODY_MAX    (100u << 20) /* client body cap: 100 MiB */
#define GW_ANTH_DEPTH_MAX   64           /* JSON nesting cap */
#define GW_ANTH_MODEL_MAX   256          /* longest model name */
#define GW_ANTH_USERID_MAX  1024         /* longest metadata.user_id */
#define GW_ANTH_ERRMSG_MAX  160
#define GW_ANTH_HDRS_MAX    40   /* headers in an upstream list */
#define GW_ANTH_HDR_VAL_MAX 8192 /* longest header value */

#define GW_ANTH_CC_SYSTEM \
	"You are Claude Code, Anthropic's official CLI for Claude."
#define GW_ANTH_BETA_OAUTH      "oauth-2025-04-20"
#define GW_ANTH_BETA_CLAUDECODE "claude-code-20250219"
#define GW_ANTH_BETA_DEFAULT                                                     \
	"claude-code-20250219,oauth-2025-04-20,interleaved-thinking-2025-05-14," \
	"fine-grained-tool-streaming-2025-05-14"
#define GW_ANTH_BETA_DEFAULT_HAIKU \
	"oauth-2025-04-20,interleaved-thinking-2025-05-14"
#define GW_ANTH_VERSION_DEFAULT "2023-06-01"

/* The forms of metadata.user_id (CLIENTS.md, reference 1.1.1). */
enum gw_anth_uid_form {
	GW_ANTH_UID_NONE,   /* no metadata.user_id string */
	GW_ANTH_UID_LEGACY, /* user_<64hex>_account_<uuid|>_session_<uuid> */
	GW_ANTH_UID_JSON,  /* {"device_id":..,"account_uuid":..,"session_id":..}
	                    */
	GW_ANTH_UID_OTHER, /* any other string: forwarded unchanged */
};

enum gw_anth_think {
	GW_ANTH_THINK_NONE,     /* no thinking object */
	GW_ANTH_THINK_DISABLED, /* thinking.type "disabled" */
	GW_ANTH_THINK_ENABLED,  /* thinking.type "enabled" */
	GW_ANTH_THINK_ADAPTIVE, /* thinking.type "adaptive" (Claude Code) */
	GW_ANTH_THINK_OTHER,    /* any other shape */
};

/*
 * A parsed request.  root is owned (released by gw_anth_req_release());
 * body is borrowed from the gw_anth_parse() caller, who keeps those bytes
 * alive and unchanged until the last gw_anth_build_body() call.
 */
struct gw_anth_req {
	json_t     *root;
	const char *body;
	size_t      len;

	char                  model[GW_ANTH_MODEL_MAX + 1];
	bool                  stream;
	bool                  has_system; /* "system" present and not null */
	bool                  has_tools;  /* "tools" is a non-empty array */
	enum gw_anth_think    thinking;
	enum gw_anth_uid_form uid_form;
	/*
	 * The session of metadata.user_id: the legacy form's session tail or
	 * the JSON form's session_id ("" when none).  Used as the sticky
	 * session key (reference 2.2) and as the seed of rewritten sessions.
	 */
	char session[GW_ANTH_USERID_MAX + 1];

	/* Set on failure only: why, for the client's error message. */
	char err[GW_ANTH_ERRMSG_MAX];
};

enum gw_anth_acct_type {
	GW_ANTH_APIKEY,
	GW_ANTH_OAUTH,
	GW_ANTH_SETUP_TOKEN,
};

/*
 * The account a request goes to; every pointer is borrowed and may be
 * NULL, read as "".
 */
struct gw_anth_account {
	enum gw_anth_acct_type type;
	int64_t                id;             /* seeds rewritten sessions */
	const char            *upstream_model; /* mapping target; "" = same */
	const char            *client_id;    /* 64 hex: the account's device */
	const char            *account_uuid; /* the account's uuid, or "" */
	const char            *credential;   /* API key or access token */
	const char            *user_agent;   /* override; "" = passthrough */
};

/*
 * Parses (body, len).  On success fills *out (out->root owned) and returns
 * 0; on failure nothing is owned, out->err holds a message for the client
 * and the return is:
 *   -ERR_TOOBIG   body over GW_ANTH_BODY_MAX, nesting over
 *                 GW_ANTH_DEPTH_MAX, or a model name over GW_ANTH_MODEL_MAX
 *   -ERR_PROTO    not JSON ("invalid JSON ..."), duplicate keys, or not an
 *                 object
 *   -ERR_MISSING  model missing, not a string or empty
 *   -ERR_TYPE     stream present but not a boolean
 * body is borrowed (see struct gw_anth_req).  Strings may hold \u0000;
 * a model or user_id that does is rejected or ignored respectively.
 */
int gw_anth_parse(
    const char *body, size_t len, struct gw_anth_req *out) WARN_UNUSED;

/* Frees what gw_anth_parse() left owned; a zeroed req is fine. */
void gw_anth_req_release(struct gw_anth_req *req);

/*
 * Whether gw_anth_build_body() would change the body for acct.  When
 * false, the I/O layer may send req->body as it is without copying.
 */
bool gw_anth_body_changes(
    const struct gw_anth_req *req, const struct gw_anth_account *acct);

/*
 * Appends the upstream body for acct to out.  The rules (reference
 * 1.1.1), each a splice into the original bytes:
 *   - model: when acct->upstream_model is set and differs, it replaces
 *     the top-level "model" value;
 *   - oauth / setup-token: when "system" is absent (or null), the Claude
 *     Code system block is added;
 *   - oauth / setup-token with a client_id: metadata.user_id is rewritten
 *     to the account's identity, in the form the client used.  Legacy:
 *     user_<client_id>_account_<account_uuid>_session_<S>; JSON form:
 *     device_id = client_id, account_uuid = account_uuid, session_id = S,
 *     other keys kept.  S is a UUID derived from SHA-256 of
 *     "<acct id>::<original session>", so one client session keeps one
 *     upstream session and different sessions never share one.
 *     Other user_id strings are forwarded unchanged.
 * Nothing else changes, and when nothing applies the body is appended
 * unchanged.  req and acct are borrowed.  -ERR_TOOBIG past out's cap.
 */
int gw_anth_build_body(const struct gw_anth_req *req,
    const struct gw_anth_account *acct, struct buf *out) WARN_UNUSED;

/*
 * The session UUID for a rewritten user_id (see above), written as 36
 * lowercase characters plus NUL into out.
 */
void gw_anth_derive_session(int64_t acct_id, const char *session, char out[37]);

/* One upstream header: owned, NUL-terminated, name in lower case. */
struct gw_anth_hdr {
	char *name;
	char *value;
};

/* A bounded list of headers; zero-initialise, then gw_anth_hdrs_add(). */
struct gw_anth_hdrs {
	struct gw_anth_hdr v[GW_ANTH_HDRS_MAX];
	size_t             n;
};

/*
 * Appends a copy of (name, value); name is lower-cased.  -ERR_TOOBIG past
 * GW_ANTH_HDRS_MAX headers or a value over GW_ANTH_HDR_VAL_MAX, -ERR_INVAL
 * for an empty name or control bytes (CR, LF, ...) in either: no header
 * injection.  Tabs are allowed in values.
 */
int gw_anth_hdrs_add(
    struct gw_anth_hdrs *h, const char *name, const char *value) WARN_UNUSED;

/* The value of name (lower case), or NULL. Borrowed from h. */
const char *gw_anth_hdrs_get(const struct gw_anth_hdrs *h, const char *name);

/* Frees every header and empties the list. */
void gw_anth_hdrs_release(struct gw_anth_hdrs *h);

/*
 * Builds the upstream headers for req sent to acct from the client's
 * headers (looked up through get/arg, borrowed):
 *   - passthrough whitelist: accept, x-stainless-{retry-count, timeout,
 *     lang, package-version, os, arch, runtime, runtime-version,
 *     helper-method}, anthropic-dangerous-direct-browser-access,
 *     anthropic-version, x-app, anthropic-beta, accept-language,
 *     sec-fetch-mode, user-agent (unless acct->user_agent overrides it),
 *     content-type; nothing else of the client's (never its credentials,
 *     cookie, host, content-length, connection, transfer-encoding or
 *     x-claude-code-session-id);
 *   - defaults content-type: application/json, anthropic-version:
 *     2023-06-01;
 *   - auth: apikey x-api-key, oauth / setup-token authorization: Bearer;
 *   - oauth / setup-token: anthropic-beta via gw_anth_merge_beta();
 *   - always accept-encoding: identity (the body is relayed as is).
 * On success *out (zeroed by the caller) owns the list; on failure it is
 * released and empty.  Errors as gw_anth_hdrs_add().
 */
int gw_anth_build_headers(const struct gw_anth_req *req,
    const struct gw_anth_account *acct, gw_err_lookup_fn *get, void *arg,
    struct gw_anth_hdrs *out) WARN_UNUSED;

/*
 * The anthropic-beta value for an OAuth account: client (borrowed, may be
 * NULL) with oauth-2025-04-20 added right after claude-code-20250219 when
 * present, else first; unchanged when already there.  An empty or absent
 * client value gives GW_ANTH_BETA_DEFAULT, or GW_ANTH_BETA_DEFAULT_HAIKU
 * when haiku.  Tokens are comma separated and trimmed; empty ones are
 * dropped.  Appends to out; -ERR_TOOBIG past its cap.
 */
int gw_anth_merge_beta(
    const char *client, bool haiku, struct buf *out) WARN_UNUSED;

/*
 * Appends a non-stream response body with its top-level "model" value
 * replaced by model (borrowed).  A body that is not a JSON object or has
 * no "model" is appended unchanged.  -ERR_TOOBIG past out's cap.
 */
int gw_anth_rewrite_resp_model(const char *body, size_t len, const char *model,
    struct buf *out) WARN_UNUSED;

/*
 * Appends one SSE data line, either whole ("data: {...}", as the feed
 * callback gives it) or just its payload, with message.model replaced by
 * model when the payload is a message_start event; any other line or
 * payload is appended unchanged.  -ERR_TOOBIG past out's cap.
 */
int gw_anth_rewrite_sse_data(const char *data, size_t len, const char *model,
    struct buf *out) WARN_UNUSED;

/*
 * The nesting depth check gw_anth_parse() runs before jansson: true when
 * no array/object nests deeper than max in (p, len), strings and escapes
 * taken into account.  Linear, allocation-free.
 */
bool gw_anth_depth_ok(const char *p, size_t len, int max);

#endif /* GW_ANTH_H */
