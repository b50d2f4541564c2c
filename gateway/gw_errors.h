/*
 * gw_errors.h: client-facing errors of the gateway's Anthropic path.
 *
 * Pure functions, no I/O.  They build Anthropic error envelopes (as a JSON
 * body and as an in-band SSE event), hold the one table that maps the
 * gateway's own failures and upstream outcomes to an HTTP status and an
 * Anthropic error type, classify an error for the ops error log (phase and
 * severity, as the reference's recordOpsError does), and extract the
 * caller's API key from the request headers and query.
 *
 * Every function here borrows its arguments; strings returned as const
 * char * are static and live forever.
 */
#ifndef GW_ERRORS_H
#define GW_ERRORS_H

#include "buf.h"
#include "compat.h"

/*
 * A lookup of one request header (or query argument) by name: returns the
 * value (borrowed, NUL-terminated, valid until the request completes) or
 * NULL when absent.  Header names are asked for in lower case; the
 * implementation must match them case-insensitively.
 */
typedef const char *gw_err_lookup_fn(void *arg, const char *name);

/*
 * Appends {"type":"error","error":{"type":TYPE,"message":MESSAGE}} to out,
 * both strings JSON-escaped.  type and message are borrowed; NULL is read
 * as "".  -ERR_TOOBIG (out released, see buf.h) past out's cap.
 */
int gw_err_anthropic(
    struct buf *out, const char *type, const char *message) WARN_UNUSED;

/*
 * Appends the same envelope as an in-band SSE event, for errors that happen
 * after the response headers (200, text/event-stream) went out:
 *   "event: error\ndata: {...}\n\n"
 */
int gw_err_sse_event(
    struct buf *out, const char *type, const char *message) WARN_UNUSED;

/*
 * The gateway's own errors and the upstream outcomes it reports, with the
 * HTTP status, Anthropic error type and the fixed message sent to the
 * client.  Upstream detail is never copied into these messages (the
 * reference hides it, except that an upstream 400 body is passed through
 * verbatim: see gw_err_map_upstream()).
 */
#define GW_ERR_MAP(X)                                                           \
	X(BAD_REQUEST, 400, "invalid_request_error", "Invalid request")         \
	X(INVALID_JSON, 400, "invalid_request_error",                           \
	    "Failed to parse request body")                                     \
	X(MODEL_REQUIRED, 400, "invalid_request_error", "model is required")    \
	X(BODY_TOO_LARGE, 413, "request_too_large", "Request body too large")   \
	X(API_KEY_REQUIRED, 401, "authentication_error",                        \
	    "API key is required")                                              \
	X(INVALID_API_KEY, 401, "authentication_error", "Invalid API key")      \
	X(API_KEY_DISABLED, 401, "authentication_error",                        \
	    "API key is disabled")                                              \
	X(API_KEY_EXPIRED, 403, "permission_error", "API key has expired")      \
	X(API_KEY_QUOTA_EXHAUSTED, 429, "rate_limit_error",                     \
	    "API key quota exhausted (API_KEY_QUOTA_EXHAUSTED)")                \
	X(USER_NOT_FOUND, 401, "authentication_error", "User not found")        \
	X(USER_INACTIVE, 401, "authentication_error", "User is not active")     \
	X(SUBSCRIPTION_NOT_FOUND, 403, "subscription_error",                    \
	    "No active subscription for this group")                            \
	X(SUBSCRIPTION_INVALID, 403, "subscription_error",                      \
	    "Subscription is invalid or expired")                               \
	X(INSUFFICIENT_BALANCE, 403, "billing_error",                           \
	    "Insufficient account balance")                                     \
	X(USAGE_LIMIT_EXCEEDED, 429, "rate_limit_error",                        \
	    "Usage limit exceeded")                                             \
	X(DAILY_LIMIT_EXCEEDED, 429, "rate_limit_error",                        \
	    "Daily usage limit exceeded (DAILY_LIMIT_EXCEEDED)")                \
	X(WEEKLY_LIMIT_EXCEEDED, 429, "rate_limit_error",                       \
	    "Weekly usage limit exceeded (WEEKLY_LIMIT_EXCEEDED)")              \
	X(MONTHLY_LIMIT_EXCEEDED, 429, "rate_limit_error",                      \
	    "Monthly usage limit exceeded (MONTHLY_LIMIT_EXCEEDED)")            \
	X(CONCURRENCY_LIMIT, 429, "rate_limit_error",                           \
	    "Concurrency limit exceeded, please retry later")                   \
	X(CONCURRENCY_USER, 429, "rate_limit_error",                            \
	    "Concurrency limit exceeded for user, please retry later")          \
	X(CONCURRENCY_KEY, 429, "rate_limit_error",                             \
	    "Concurrency limit exceeded for API key, please retry later")       \
	X(QUEUE_FULL, 429, "rate_limit_error",                                  \
	    "Too many pending requests, please retry later")                    \
	X(NOT_FOUND, 404, "not_found_error", "Not found")                       \
	X(NO_ACCOUNTS, 503, "api_error", "No available accounts")               \
	X(UPSTREAM_AUTH, 502, "upstream_error",                                 \
	    "Upstream authentication failed, please contact the administrator") \
	X(UPSTREAM_FORBIDDEN, 502, "upstream_error",                            \
	    "Upstream access forbidden, please contact the administrator")      \
	X(UPSTREAM_RATE_LIMIT, 429, "rate_limit_error",                         \
	    "Upstream rate limit exceeded, please retry later")                 \
	X(UPSTREAM_OVERLOADED, 529, "overloaded_error",                         \
	    "Upstream service overloaded, please retry later")                  \
	X(UPSTREAM_UNAVAILABLE, 502, "upstream_error",                          \
	    "Upstream service temporarily unavailable")                         \
	X(UPSTREAM_TIMEOUT, 504, "timeout_error",                               \
	    "Upstream request timed out")                                       \
	X(UPSTREAM_FAILED, 502, "upstream_error", "Upstream request failed")    \
	X(STREAM_ERROR, 502, "upstream_error", "Upstream stream failed")        \
	X(INTERNAL, 500, "api_error", "Internal server error")

enum gw_err_code {

#define GW_ERR_ENUM_(name, status, type, msg) GW_E_##name,
	GW_ERR_MAP(GW_ERR_ENUM_)
#undef GW_ERR_ENUM_
	    GW_E_MAX_
};

struct gw_err_info {
	const char *name;    /* "NO_ACCOUNTS", for logs and metrics labels */
	int         status;  /* HTTP status sent to the client */
	const char *type;    /* Anthropic error.type */
	const char *message; /* error.message */
};

/* The table row of code; an out-of-range code gives GW_E_INTERNAL's. */
const struct gw_err_info *gw_err_info(enum gw_err_code code);

/*
 * The Anthropic error type for an HTTP status the gateway sends:
 * 400 invalid_request_error, 401 authentication_error, 402 billing_error,
 * 403 permission_error, 404 not_found_error, 413 request_too_large,
 * 429 rate_limit_error, 502 upstream_error, 503 api_error,
 * 504 timeout_error, 529 overloaded_error, other 4xx
 * invalid_request_error, anything else api_error.
 */
const char *gw_err_type_for_status(int status);

/*
 * What the client sees when the upstream answered with an error status
 * that is not (or no longer) retried or failed over: the reference's
 * policy.  Returns true when the upstream body should be passed through
 * verbatim with the upstream status (400: the client's own mistake, e.g. a
 * bad parameter), false when *code names the generic reply to send:
 *   401 -> UPSTREAM_AUTH, 402/403 -> UPSTREAM_FORBIDDEN,
 *   404 -> NOT_FOUND (Claude Code reacts to 404 by retrying without
 *   stream), 413 -> BODY_TOO_LARGE, 429 -> UPSTREAM_RATE_LIMIT,
 *   529 -> UPSTREAM_OVERLOADED (clients retry it themselves),
 *   500/502/503 -> UPSTREAM_UNAVAILABLE, 504 -> UPSTREAM_TIMEOUT,
 *   anything else -> UPSTREAM_FAILED.
 * *code is written only when false is returned.
 */
bool gw_err_map_upstream(int upstream_status, enum gw_err_code *code);

/*
 * Whether an upstream status makes the gateway try another account
 * (reference 2.5: 401, 403, 429, 529 and every 5xx; also 407, the
 * account's own proxy refusing us).  A 400 never fails
 * over here; the optional failover_on_400 rule is the caller's.
 */
bool gw_err_is_failover(int upstream_status);

/*
 * Ops classification of an error the gateway emitted (reference 4.1).
 * *phase gets one of "auth", "billing", "concurrency", "upstream",
 * "response", "scheduling", "internal"; *severity "P1", "P2" or "P3".
 *   authentication_error, permission_error        -> auth
 *   billing_error, subscription_error             -> billing
 *   rate_limit_error -> concurrency when the message mentions concurrency
 *                       or pending, else upstream
 *   invalid_request_error, not_found_error,
 *   request_too_large                             -> response
 *   upstream_error, overloaded_error, timeout_error -> upstream
 *   api_error -> scheduling when the message says "no available
 *                accounts", else internal
 *   anything else (or NULL type)                  -> internal
 * Severity: invalid_request / authentication / billing / subscription
 * errors are P3; otherwise status >= 500 or 429 is P1, other >= 400 P2,
 * and below 400 P3.  message may be NULL.
 */
void gw_err_classify(int status, const char *type, const char *message,
    const char **phase, const char **severity);

/*
 * Ops classification for errors of the API-key middleware, which the
 * reference classifies by status alone: 401 P3/auth, 403 P3/billing,
 * 429 P2/billing, anything else P1/internal.
 */
void gw_err_classify_auth(
    int status, const char **phase, const char **severity);

/*
 * The client error for a scheduler refusal: outcome is an enum
 * proto_acquire_outcome, message the scheduler's err_message (which tells
 * the authentication cases apart, and for QUOTA carries the code:
 * DAILY_/WEEKLY_/MONTHLY_LIMIT_EXCEEDED, API_KEY_QUOTA_EXHAUSTED).  An
 * expired key is 403 whether it comes as AUTH (older schedulers) or
 * FORBIDDEN.  NO_ACCOUNT gives NO_ACCOUNTS; a caller that failed over may
 * prefer its last upstream error.
 */
enum gw_err_code gw_err_from_refusal(int outcome, const char *message);

/* Longest API key accepted, in bytes (keys are "sk-" + 64 hex). */
#define GW_ERR_KEY_MAX 256

enum gw_key_src {
	GW_KEY_BEARER,
	GW_KEY_X_API_KEY,
	GW_KEY_X_GOOG_API_KEY,
	GW_KEY_QUERY_KEY,
	GW_KEY_QUERY_API_KEY,
};

/*
 * Finds the caller's API key, in the reference's order: "authorization:
 * Bearer <k>" (scheme matched case-insensitively; another scheme is
 * skipped), "x-api-key", "x-goog-api-key", query "key", query "api_key".
 * Spaces and tabs around the key are trimmed and an empty value counts as
 * absent.  hdr and query are borrowed lookups (query may be NULL).
 *
 * On success copies the key, NUL-terminated, into out (cap bytes) and sets
 * *src (may be NULL).  Errors: -ERR_MISSING when no source has a key,
 * -ERR_TOOBIG when the first key found is longer than GW_ERR_KEY_MAX or
 * does not fit in cap, -ERR_INVAL when it holds control bytes.
 */
int gw_err_extract_key(gw_err_lookup_fn *hdr, void *hdr_arg,
    gw_err_lookup_fn *query, void *query_arg, char *out, size_t cap,
    enum gw_key_src *src) WARN_UNUSED;

#endif /* GW_ERRORS_H */
