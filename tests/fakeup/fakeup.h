/*
 * fakeup.h: private header of sub2api-fakeup, the fake upstream AI provider
 * every gateway test talks to (there is no internet here).
 *
 * It speaks the Anthropic Messages API byte for byte (JSON and SSE), plus
 * count_tokens, the model list and an OAuth token endpoint, and it fails on
 * demand.  A failure mode is chosen per request by the model name
 * (the gateway forwards bodies unchanged) or per upstream key through the
 * control API under /_fake/.  Every request is kept in a bounded ring and
 * counted per key, so a test can assert what the gateway really sent and
 * when it hung up.
 *
 * Modules: fakeup.c (main, CLI, daemon), fakeup_http.c (MHD callbacks,
 * routing, replies, control API), fakeup_mode.c (mode strings),
 * fakeup_anth.c (Anthropic routes), fakeup_gen.c (the Message and SSE
 * reply state machine), fakeup_log.c (request ring, per-key stats and key
 * controls).
 *
 * Threads: MHD runs one thread per connection; a request lives on its
 * connection's thread from the first access call to the completed
 * callback.  Shared state (ring, stats, controls) sits behind one mutex in
 * fakeup_log.c.
 *
 * Mode strings (see fakeup_mode.c for the grammar) are "opt(:opt)*", e.g.
 * "429:reset=5" or "drip=50:deltas=200:usage=10,20,3,4,1,2".
 */
#ifndef FAKEUP_H
#define FAKEUP_H

#include <jansson.h>
#include <microhttpd.h>

#include "buf.h"
#include "compat.h"

#define FAKE_BODY_MAX     ((size_t)100 << 20) /* request body cap */
#define FAKE_REC_BODY_MAX ((size_t)64 << 10)  /* body bytes kept per record */
#define FAKE_RING_SIZE    2000                /* requests remembered */
#define FAKE_KEY_MAX      512                 /* bytes of a key kept */
#define FAKE_KEYS_MAX     4096                /* distinct keys tracked */
#define FAKE_MODE_MAX     512                 /* bytes of a mode string */
#define FAKE_DELTAS_MAX   100000              /* text deltas per reply */
#define FAKE_WAIT_MAX_MS  600000              /* any single delay */
#define FAKE_STALL_MS     300000              /* stall gives up after */
#define FAKE_ID_LEN       64                  /* prefix + 24 hex + NUL */

enum fake_fail {
	FAKE_FAIL_NONE = 0,
	FAKE_FAIL_401,
	FAKE_FAIL_403,
	FAKE_FAIL_403_BANNED,
	FAKE_FAIL_429,
	FAKE_FAIL_529,
	FAKE_FAIL_500,
	FAKE_FAIL_INVALID_GRANT, /* OAuth: 400 invalid_grant */
	FAKE_FAIL_DROP,          /* cut the connection mid-reply */
	FAKE_FAIL_INBAND,        /* SSE "event: error" mid-stream */
	FAKE_FAIL_STALL,         /* message_start, then silence */
};

/* A parsed mode: what one request should do.  Zeroed means "normal". */
struct fake_mode {
	enum fake_fail fail;
	int64_t        first_byte_ms; /* delay before the status line */
	int64_t        drip_ms;       /* delay between SSE events */
	int            deltas;        /* text deltas; 0: 5 */
	int            reset_s;       /* 429 reset and retry-after; 0: 60 */
	char           rl5h[16];      /* success: 5h-status header; "": none */
	int            rl5h_reset_s;  /* success: 5h-reset in S s; 0: none */
	bool           no_tools;      /* answer text even with tools */
	bool           has_usage;
	int64_t        usage[6]; /* in, out, cc, cr, cc5m, cc1h */
};

/* One request, owned by its MHD connection (con_cls) until completed. */
struct fake_req {
	struct MHD_Connection *conn;
	char                  *method;
	char                  *path;
	char                  *query;  /* decoded args joined with '&' */
	json_t                *hdrs;   /* {lower-case name: value} */
	json_t                *hlist;  /* [[name, value], ...] as received */
	struct buf             body;   /* capped at FAKE_BODY_MAX */
	bool                   toobig; /* body passed the cap */
	char                   key[FAKE_KEY_MAX + 1];
	const char            *auth; /* "x-api-key", "bearer" or "none" */
	char                   req_id[FAKE_ID_LEN];
	int                    fd;     /* the client socket, for liveness */
	uint64_t               seq;    /* ring record; 0: not recorded */
	int                    status; /* queued status */
	bool                   client_closed;
	int64_t                closed_ms;
	struct fake_gen       *gen; /* response generator, owned */
};

/* fakeup.c */

/* True once shutdown began: every wait gives up. */
bool fake_stopping(void);

/* fakeup_mode.c */

/*
 * Parses a mode string (s, len) and merges what it names into *m (fields
 * it does not mention keep their value).  0 or -ERR_INVAL (m untouched).
 */
int fake_mode_parse(const char *s, size_t len, struct fake_mode *m) WARN_UNUSED;

/*
 * Finds the mode a model name carries ("<model>@fake:<mode>" or
 * "claude-fake-<mode>") and merges it into *m.  0 when there is none or it
 * parsed, -ERR_INVAL when it is malformed.
 */
int fake_mode_from_model(const char *model, struct fake_mode *m) WARN_UNUSED;

/* The canonical name of a failure ("429", "drop", ...; "" for none). */
const char *fake_fail_name(enum fake_fail f);

/* fakeup_log.c */

void fake_log_init(void);
void fake_log_release(void);

/* Forgets every record, counter and key control. */
void fake_log_reset(void);

/*
 * Records a request (not a /_fake/ one) at dispatch: adds a ring record,
 * counts it in flight for its key, stores the record's seq in r->seq.
 * Borrows r.
 */
void fake_log_begin(struct fake_req *r);

/* Sets a field of r's ring record; v is taken (decref'd when gone). */
void fake_log_set(const struct fake_req *r, const char *field, json_t *v);

/* Completes r's record and counters; toe from MHD, r borrowed. */
void fake_log_end(struct fake_req *r, enum MHD_RequestTerminationCode toe);

/*
 * Sets the control of key: mode (borrowed, already validated) for count
 * requests (-1: until changed, 0: clears).
 */
void fake_log_set_ctl(const char *key, const char *mode, int64_t count);

/*
 * Takes one use of the control that applies to key (its own, else the
 * "*" one): copies its mode string into out (cap bytes) and returns true,
 * or returns false when none is active.
 */
bool fake_log_take_ctl(const char *key, char *out, size_t cap);

/* New references to the JSON documents served by the control API. */
json_t *fake_log_requests_json(int64_t limit, const char *key);
json_t *fake_log_stats_json(void);
json_t *fake_log_ctl_json(const char *key);

/* fakeup_http.c */

/* The MHD callbacks, installed by fakeup.c. */
enum MHD_Result fake_http_access_cb(void *cls, struct MHD_Connection *conn,
    const char *url, const char *method, const char *version,
    const char *upload, size_t *upload_len, void **con_cls);
void            fake_http_completed_cb(void *cls, struct MHD_Connection *conn,
               void **con_cls, enum MHD_RequestTerminationCode toe);

/*
 * Queues a reply: body (taken; NULL for none) serialised compactly, with
 * the request-id header and extra headers hdrs (name, value, ..., NULL;
 * borrowed, may be NULL).
 */
enum MHD_Result fake_reply_json(
    struct fake_req *r, int status, json_t *body, const char *const *hdrs);

/* Queues {"type":"error","error":{"type":type,"message":msg}}. */
enum MHD_Result fake_reply_error(
    struct fake_req *r, int status, const char *type, const char *msg);

/*
 * Queues the error reply of a status failure mode (401, 403, 403-banned,
 * 429, 529, 500, invalid-grant), with its headers.  BUG()s on others.
 */
enum MHD_Result fake_reply_fail(struct fake_req *r, const struct fake_mode *m);

/*
 * Waits ms milliseconds unless the client hangs up or shutdown starts.
 * 0 when the time passed; -ERR_CLOSED (r marked closed early) or
 * -ERR_CANCELED otherwise.  ms <= 0 only checks the peer.
 */
int fake_wait(struct fake_req *r, int64_t ms) WARN_UNUSED;

/* Fresh "<prefix><24 hex>" into out (FAKE_ID_LEN bytes). */
void fake_new_id(const char *prefix, char out[FAKE_ID_LEN]);

/* fakeup_anth.c: the route handlers; each borrows r. */
enum MHD_Result fake_anth_messages(struct fake_req *r);
enum MHD_Result fake_anth_count_tokens(struct fake_req *r);
enum MHD_Result fake_anth_models(struct fake_req *r);
enum MHD_Result fake_anth_oauth(struct fake_req *r);

/* fakeup_gen.c: the reply generator of /v1/messages. */

/*
 * A generator for the reply to body (borrowed; a validated Messages
 * request) under mode m, as SSE when stream is set.  r is borrowed and
 * must outlive the generator (r->gen owns it).
 */
struct fake_gen *fake_gen_new(
    struct fake_req *r, json_t *body, const struct fake_mode *m, bool stream);

/* An MHD response reading from g (borrowed), with its headers; or NULL. */
struct MHD_Response *fake_gen_response(struct fake_gen *g);

/* Frees a generator (NULL is fine). */
void fake_gen_free(struct fake_gen *g);

#endif /* FAKEUP_H */
