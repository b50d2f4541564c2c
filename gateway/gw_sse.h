/*
 * gw_sse.h: incremental server-sent-events parsing and Anthropic usage
 * extraction for upstream streams.
 *
 * Pure, I/O-free.  A struct gw_sse takes the upstream body in whatever
 * chunks the transfer delivers and calls back once per complete line, so
 * the gateway can relay each line verbatim while observing it.  Lines end
 * in LF, CRLF or a lone CR (also when the CR and LF arrive in different
 * chunks); the callback never sees the terminator.  A line longer than the
 * cap is an error, never truncated.  "event:" and "data:" lines are paired
 * per event: each line carries the event name in effect, and a blank line
 * ends the event.  Lines wholly inside one chunk reach the callback
 * straight from the caller's memory; only a line split across chunks is
 * copied, into a buffer capped at the line limit.
 *
 * struct gw_sse_anth follows an Anthropic Messages stream line by line:
 * usage (reference 3.1, plus the 5m/1h cache-creation split), the first
 * token, an in-stream error, the stop reason and the final message_stop.
 * Only message_start, message_delta and error payloads are parsed with
 * jansson; every other line costs a few byte comparisons.
 */
#ifndef GW_SSE_H
#define GW_SSE_H

#include "buf.h"
#include "compat.h"

#define GW_SSE_LINE_MAX_DEFAULT (1u << 20) /* 1 MiB, as the reference */
#define GW_SSE_EVENT_MAX        64         /* longer names are cut */

enum gw_sse_kind {
	GW_SSE_BLANK,   /* empty line: ends the current event */
	GW_SSE_EVENT,   /* "event:" */
	GW_SSE_DATA,    /* "data:" */
	GW_SSE_COMMENT, /* ":" ... */
	GW_SSE_OTHER,   /* id:, retry:, unknown fields */
};

/* One line, all pointers borrowed and valid during the callback only. */
struct gw_sse_line {
	enum gw_sse_kind kind;
	const char      *line; /* the whole line, no terminator */
	size_t           len;
	const char      *value; /* after "field:" and one optional space */
	size_t           value_len;
	const char      *event; /* event name in effect ("" if none) */
};

/*
 * Called per complete line; a nonzero return stops gw_sse_feed(), which
 * returns it, and the parser stays failed.
 */
typedef int gw_sse_line_fn(void *arg, const struct gw_sse_line *ln);

struct gw_sse {
	struct buf part;     /* a line split across chunks */
	size_t     max_line; /* longest line accepted, terminator excluded */
	bool       cr;       /* the last byte was a CR: skip one LF */
	int        err;      /* sticky failure, 0 while healthy */
	char       event[GW_SSE_EVENT_MAX + 1];
	uint64_t   lines; /* complete lines delivered */
};

/* Prepares p; max_line 0 means GW_SSE_LINE_MAX_DEFAULT. */
void gw_sse_init(struct gw_sse *p, size_t max_line);

/* Back to the state of gw_sse_init() (same cap), for a new attempt. */
void gw_sse_reset(struct gw_sse *p);

/* Frees what p holds; p may be re-initialised. */
void gw_sse_release(struct gw_sse *p);

/*
 * Feeds len bytes (borrowed) and calls cb(arg, line) for each line they
 * complete, in order.  Returns 0, -ERR_TOOBIG when a line passes the cap,
 * or the callback's nonzero return.  After a failure every later call
 * returns the same value without calling back.
 */
int gw_sse_feed(struct gw_sse *p, const char *data, size_t len,
    gw_sse_line_fn *cb, void *arg) WARN_UNUSED;

/*
 * End of stream: delivers a last line that had no terminator, if any.
 * Returns as gw_sse_feed().
 */
int gw_sse_finish(struct gw_sse *p, gw_sse_line_fn *cb, void *arg) WARN_UNUSED;

/*
 * Token counts of one Anthropic response.  Anthropic's buckets are
 * disjoint: input excludes cache_creation and cache_read.  cache_creation
 * is the total; cache_creation_5m / _1h are its split by TTL when the
 * upstream reports one (flags has GW_USAGE_F_SPLIT).
 */
struct gw_usage {
	int64_t  input;
	int64_t  output;
	int64_t  cache_creation;
	int64_t  cache_read;
	int64_t  cache_creation_5m;
	int64_t  cache_creation_1h;
	unsigned flags;
};

enum gw_usage_flags {
	GW_USAGE_F_SPLIT = 1 << 0,     /* 5m/1h split reported */
	GW_USAGE_F_BAD_SPLIT = 1 << 1, /* 5m + 1h > cache_creation */
	GW_USAGE_F_BAD_VALUE = 1 << 2, /* a negative or non-integer count */
};

/*
 * Re-checks the invariants of u and updates its BAD_SPLIT flag; returns
 * the flags.  Violations are reported, never "fixed": billing decides.
 */
unsigned gw_usage_check(struct gw_usage *u);

/*
 * Usage from a non-stream response body's top-level "usage" object into
 * *u (written only on success).  -ERR_PROTO when the body is not a JSON
 * object, -ERR_MISSING when it has no usage object.
 */
int gw_usage_from_json(
    const char *body, size_t len, struct gw_usage *u) WARN_UNUSED;

#define GW_SSE_STOP_MAX    32
#define GW_SSE_ERRTYPE_MAX 64
#define GW_SSE_ERRMSG_MAX  512

/* What gw_sse_anth_line() saw on one line. */
enum gw_sse_anth_ev {
	GW_SSE_EV_START = 1 << 0,       /* message_start */
	GW_SSE_EV_FIRST_TOKEN = 1 << 1, /* the first content_block_delta */
	GW_SSE_EV_USAGE = 1 << 2,       /* usage was updated */
	GW_SSE_EV_ERROR = 1 << 3,       /* an in-stream error event */
	GW_SSE_EV_STOP = 1 << 4,        /* message_stop */
};

/*
 * The state of one Anthropic stream; zero-initialise it (again for each
 * attempt).
 *
 * First token: the first data line of a content_block_delta event, i.e.
 * the first generated text, thinking or tool-input bytes.  The reference
 * takes the first non-empty data line, which is message_start and arrives
 * before any generation, so it measures little more than header latency.
 *
 * Usage (reference 3.1): message_start.message.usage sets every field; in
 * message_delta output_tokens always overwrites, and the input and cache
 * fields (and the 5m/1h split, which newer servers repeat there) are
 * taken only while still 0, so cumulative repeats are never added twice.
 */
struct gw_sse_anth {
	struct gw_usage usage;
	bool            started;     /* message_start seen */
	bool            first_token; /* a content_block_delta seen */
	bool            stopped;     /* message_stop seen: a normal end */
	bool            error;       /* an error event seen */
	bool            in_error;    /* inside an "event: error", unreported */
	char            stop_reason[GW_SSE_STOP_MAX + 1];
	char            err_type[GW_SSE_ERRTYPE_MAX + 1];
	char            err_msg[GW_SSE_ERRMSG_MAX + 1];
};

/*
 * Observes one line of the stream and returns the GW_SSE_EV_* bits of what
 * it saw (0 for most lines).  An "event: error" is reported once, on its
 * data line (or on the blank line ending it when it has none), with
 * err_type / err_msg filled in ("api_error" and a generic text when the
 * payload does not say).  Data without an event line is recognised by its
 * "type" field.  Only message_start, message_delta and error payloads are
 * parsed.  ln is borrowed.
 */
int gw_sse_anth_line(struct gw_sse_anth *st, const struct gw_sse_line *ln);

#endif /* GW_SSE_H */
