/*
 * proto.h: the contract between services: message registry, versioned
 * msgpack envelope, and strict codecs that turn each message into a
 * fixed-size C struct and back.
 *
 * Wire format.  Every message is one msgpack map, the envelope:
 *
 *   {"v": PROTO_VERSION, "t": type id, "id": request id (str, <= 64),
 *    "dl": absolute wall-clock deadline in ms (0 = none), "b": body map}
 *
 * The body is a map with short string keys, described per message below
 * (key in quotes after each field).  Decoding is strict:
 *   - the whole input is capped at PROTO_MAX_MSG and walked once before
 *     msgpack-c sees it: nesting <= PROTO_MAX_DEPTH, at most
 *     PROTO_MAX_OBJS objects, and every declared length must fit in the
 *     bytes left, so msgpack-c's zone stays proportional to the input;
 *   - a value of the wrong msgpack type gives -ERR_TYPE (nil is a type:
 *     it is never read as "absent"), a string longer than its field, an
 *     array or map past its bound, or an integer outside its C type gives
 *     -ERR_TOOBIG (a negative value for an unsigned field is -ERR_TYPE);
 *   - a required key that is absent gives -ERR_MISSING; unknown keys are
 *     ignored, so adding an optional field is a compatible change;
 *   - a duplicate known key, a non-string key, a string holding a NUL
 *     byte, trailing bytes or a malformed encoding give -ERR_PROTO;
 *   - another envelope version gives -ERR_VERSION.
 * Every field is written by the encoder; fields marked (opt) may be
 * absent on input and then decode as 0 / "" / false.
 *
 * Ownership.  Decoded structs are self-contained fixed-size values that
 * need no freeing, with four exceptions: the blobs of struct
 * proto_replay_rep, struct proto_usage_sync_req, struct
 * proto_sched_bundle_req and struct proto_usage_batch_evt borrow
 * pointers into
 * the input buffer, which must outlive them.  The
 * codecs borrow every pointer they are given and keep none.  Some structs
 * are large (proto_metrics_snapshot_evt is about 100 KiB,
 * proto_sched_acquire_rep about 19 KiB, proto_sched_keyinfo_rep about
 * 18 KiB): allocate those on the heap in threads with small stacks.
 *
 * How to add a message.  (1) Append MSG(NAME, id, sname) to proto.def
 * with an unused id of its group.  (2) Declare struct proto_<sname> below
 * with bounded members and a comment giving each key.  (3) In the codec
 * file of its group (proto_sched.c, proto_events.c, proto_misc.c) write
 * its field table with the PROTO_F_* macros of proto_int.h and define
 * proto_desc_<sname>; the pack/unpack functions come from the X-macro.
 * (4) Add sample values to proto_sample.c (the round-trip, missing-key
 * and wrong-type tests then cover it automatically), add
 * proto/fuzz/<sname>_fuzz.c (two lines), rerun tests/fuzz/gen_corpus.c.
 * A change that old decoders would reject (new required key, changed
 * type or meaning) bumps PROTO_VERSION.
 */
#ifndef PROTO_H
#define PROTO_H

#include "buf.h"
#include "compat.h"

/* The envelope version; bump on any incompatible change. */
#define PROTO_VERSION 1

/* Bounds of the whole message and of its structure. */
#define PROTO_MAX_MSG   (1u << 20) /* bytes of one packed envelope */
#define PROTO_MAX_DEPTH 8          /* nesting of arrays and maps */
#define PROTO_MAX_OBJS  16384      /* msgpack objects in one message */
#define PROTO_MAX_KEYS  128        /* entries of one body map */

/* String capacities: the longest accepted value, in bytes (no NUL). */
#define PROTO_ID_MAX         64    /* request, instance, lease ids */
#define PROTO_NAME_MAX       64    /* service names, kinds, types */
#define PROTO_PLATFORM_MAX   32    /* "anthropic", "openai", ... */
#define PROTO_HASH_MAX       64    /* hex sha256 */
#define PROTO_MODEL_MAX      128   /* model names */
#define PROTO_URL_MAX        512   /* base and proxy urls */
#define PROTO_UA_MAX         512   /* user agents */
#define PROTO_IP_MAX         64    /* textual client addresses */
#define PROTO_PATH_MAX       256   /* request paths */
#define PROTO_STATE_MAX      16    /* short enum-like strings */
#define PROTO_ACCT_STATE_MAX 24    /* account states ("temp_unschedulable") */
#define PROTO_TEXT_MAX       1024  /* human-readable messages */
#define PROTO_CRED_MAX       16384 /* opaque credential bytes */
#define PROTO_HDR_NAME_MAX   64
#define PROTO_HDR_VAL_MAX    256
#define PROTO_METRIC_MAX     128 /* metric names */
#define PROTO_LABELS_MAX     256 /* rendered label sets */
#define PROTO_PLAN_MAX       400 /* groups.name: 100 characters of UTF-8 */
#define PROTO_DECIMAL_MAX    48  /* exact decimal text, e.g. "12.5000000000" */

/* Array bounds. */
#define PROTO_EXCLUDED_MAX 32  /* excluded account ids per acquire */
#define PROTO_LEASES_MAX   16  /* lease ids per renew */
#define PROTO_HEADERS_MAX  16  /* upstream headers per release */
#define PROTO_SAMPLES_MAX  256 /* samples per metrics snapshot */
#define PROTO_BLOBS_MAX    512 /* usage events per replay/sync */
#define PROTO_MODELS_MAX   128 /* model names per key-info reply */
#define PROTO_BUNDLE_MAX   32  /* requests per scheduler bundle */
#define PROTO_BATCH_MAX    64  /* usage events per batch event */

enum proto_type {
	MSG_NONE_ = 0,

#define MSG(name, id, sname) MSG_##name = id,
#include "proto.def"
#undef MSG
	MSG_MAX_ = 65535
};

/* ---- message bodies ------------------------------------------------ */

/* Liveness probe; any service answers PING_REQ with PING_REP. */
struct proto_ping_req {
	char    service[PROTO_NAME_MAX + 1]; /* "svc" (opt): the sender */
	int64_t sent_at_ms;                  /* "ts" (opt) */
};

struct proto_ping_rep {
	char    service[PROTO_NAME_MAX + 1]; /* "svc" */
	char    instance[PROTO_ID_MAX + 1];  /* "inst" */
	int64_t sent_at_ms;                  /* "ts" (opt): echoed */
	int64_t now_ms;                      /* "now" (opt) */
};

/* The generic error reply to any request; see proto_reply_error(). */
struct proto_error_rep {
	int32_t code;                        /* "code": ERR_x, positive */
	char    message[PROTO_TEXT_MAX + 1]; /* "msg" (opt) */
};

/* A packed body; on unpack ptr borrows from the input buffer. */
struct proto_blob {
	const uint8_t *ptr;
	size_t         len;
};

/* Gateway asks the scheduler for an account to serve one request. */
struct proto_sched_acquire_req {
	char     request_id[PROTO_ID_MAX + 1];     /* "rid" */
	char     key_hash[PROTO_HASH_MAX + 1];     /* "key": 64 hex digits */
	char     platform[PROTO_PLATFORM_MAX + 1]; /* "plat" (opt): hint */
	char     model[PROTO_MODEL_MAX + 1];       /* "model" */
	char     session_hash[PROTO_HASH_MAX + 1]; /* "sess" (opt) */
	bool     stream;                           /* "stream" */
	char     client_ip[PROTO_IP_MAX + 1];      /* "ip" */
	char     user_agent[PROTO_UA_MAX + 1];     /* "ua" (opt) */
	uint32_t n_excluded;                       /* entries in excluded */
	int64_t  excluded[PROTO_EXCLUDED_MAX];     /* "excl": account ids */
	uint32_t wait_ms;                          /* "wait": queue budget */
	bool     probe; /* "probe" (opt): choose an account but hold no slot,
	                   never wait (count_tokens); the reply's lease is "" */
};

/* Outcome codes of an acquire; anything but OK carries err_type/msg. */
enum proto_acquire_outcome {
	PROTO_ACQ_OK = 0,
	PROTO_ACQ_AUTH = 1,       /* unknown, disabled or expired key */
	PROTO_ACQ_FORBIDDEN = 2,  /* ip rule, group, model not allowed */
	PROTO_ACQ_BALANCE = 3,    /* balance <= 0, no valid subscription */
	PROTO_ACQ_NO_ACCOUNT = 4, /* no schedulable account */
	PROTO_ACQ_BUSY = 5,       /* concurrency full: wait and ask again */
	PROTO_ACQ_INTERNAL = 6,
	PROTO_ACQ_QUEUE_FULL = 7, /* too many requests already waiting */
	PROTO_ACQ_QUOTA = 8       /* a spending limit is used up: the key's
	                             quota or a subscription window (429; the
	                             message names the code, e.g.
	                             DAILY_LIMIT_EXCEEDED) */
};

/*
 * The decision.  outcome is a proto_acquire_outcome; rate is the group's
 * rate multiplier times 1e6; billing type 0 is balance, 1 subscription;
 * cred is the decrypted upstream credential: never log it.
 */
struct proto_sched_acquire_rep {
	int32_t  outcome;                             /* "out" */
	char     err_type[PROTO_NAME_MAX + 1];        /* "etype" (opt) */
	char     err_message[PROTO_TEXT_MAX + 1];     /* "emsg" (opt) */
	int64_t  user_id;                             /* "uid" */
	int64_t  api_key_id;                          /* "kid" */
	int64_t  group_id;                            /* "gid" */
	int64_t  account_id;                          /* "aid" */
	char     platform[PROTO_PLATFORM_MAX + 1];    /* "plat" */
	char     account_type[PROTO_NAME_MAX + 1];    /* "atype" */
	char     base_url[PROTO_URL_MAX + 1];         /* "url" */
	char     upstream_model[PROTO_MODEL_MAX + 1]; /* "umodel" */
	size_t   credential_len;                      /* bytes used */
	uint8_t  credential[PROTO_CRED_MAX];          /* "cred": bin */
	char     proxy_url[PROTO_URL_MAX + 1];        /* "proxy" (opt) */
	char     lease_id[PROTO_ID_MAX + 1];          /* "lease" */
	uint32_t lease_ttl_ms;                        /* "ttl" */
	int64_t  rate_micro;                          /* "rate" */
	int32_t  billing_type;                        /* "btype" */
	int64_t  subscription_id;                     /* "sid" (opt) */
	bool     fail_fast; /* "ff" (opt): the group refuses to queue */
};

/* Keeps leases alive while streams run. */
struct proto_sched_renew_req {
	uint32_t n_leases;
	char     leases[PROTO_LEASES_MAX][PROTO_ID_MAX + 1]; /* "leases" */
};

struct proto_sched_renew_rep {
	uint32_t n_renewed;
	char     renewed[PROTO_LEASES_MAX][PROTO_ID_MAX + 1]; /* "ok" */
	uint32_t n_lost;
	char     lost[PROTO_LEASES_MAX][PROTO_ID_MAX + 1]; /* "lost" */
	uint32_t ttl_ms;                                   /* "ttl" */
};

/*
 * Gateway asks what an API key may see, for GET /v1/models ("models")
 * and GET /v1/usage ("usage").  Resolves the key like an acquire but
 * checks no balance and holds no slot.
 */
struct proto_sched_keyinfo_req {
	char request_id[PROTO_ID_MAX + 1]; /* "rid" */
	char key_hash[PROTO_HASH_MAX + 1]; /* "key": 64 hex digits */
	char what[PROTO_STATE_MAX + 1];    /* "what": "models" or "usage" */
};

/*
 * The answer.  outcome is a proto_acquire_outcome (OK, AUTH, FORBIDDEN,
 * INTERNAL); a refusal carries err_type/err_message and leaves the rest
 * empty.  For "models", models[0..n_models) sorted, or the platform's
 * default list.  For "usage", plan_name is the group's name, balance the
 * user's balance and remaining what is left to spend (the balance, or for
 * a subscription the least remaining of its limits, "-1" when none is
 * set), both exact decimal text ("12.5000000000", "-1"): no floating
 * point on the money path.  The codec refuses any other text there
 * except "".  billing_type is 0 balance, 1 subscription.
 */
struct proto_sched_keyinfo_rep {
	int32_t  outcome;                          /* "out" */
	char     err_type[PROTO_NAME_MAX + 1];     /* "etype" (opt) */
	char     err_message[PROTO_TEXT_MAX + 1];  /* "emsg" (opt) */
	char     platform[PROTO_PLATFORM_MAX + 1]; /* "plat" */
	uint32_t n_models;
	char     models[PROTO_MODELS_MAX][PROTO_MODEL_MAX + 1]; /* "models" */
	char     plan_name[PROTO_PLAN_MAX + 1];                 /* "plan" */
	char     balance[PROTO_DECIMAL_MAX + 1];                /* "bal" */
	int32_t  billing_type;                                  /* "btype" */
	char     remaining[PROTO_DECIMAL_MAX + 1];              /* "rem" */
};

/* One upstream response header the scheduler's state machine reads. */
struct proto_header {
	char name[PROTO_HDR_NAME_MAX + 1];
	char value[PROTO_HDR_VAL_MAX + 1];
};

/*
 * Gateway returns a lease and reports how the upstream answered: HTTP
 * status (0 when no response came), error class, the few response
 * headers (rate-limit resets, retry-after, the anthropic-ratelimit-unified-*
 * family) the account state machine reads, and for a 4xx/5xx a short
 * excerpt of the upstream's error message (e.g. to tell a banned
 * organisation from a plain 403).  Never credentials.
 * With wait_cancel set it (also) stops request_id's waiting: the gateway
 * gave up on a request that an acquire answered BUSY; lease_id is then
 * "" when no lease is held.  Old senders omit the flag.
 */
struct proto_sched_release_req {
	char                request_id[PROTO_ID_MAX + 1];  /* "rid" (opt) */
	char                lease_id[PROTO_ID_MAX + 1];    /* "lease" */
	int64_t             account_id;                    /* "aid" */
	int32_t             http_status;                   /* "status" */
	char                err_class[PROTO_NAME_MAX + 1]; /* "eclass" (opt) */
	int64_t             duration_ms;                   /* "dur" */
	int64_t             reset_unix;                    /* "reset" (opt) */
	int64_t             retry_after_s;                 /* "retry" (opt) */
	uint32_t            n_headers;
	struct proto_header headers[PROTO_HEADERS_MAX]; /* "hdrs": map */
	char err_message[PROTO_HDR_VAL_MAX + 1];        /* "emsg" (opt) */
	bool wait_cancel;                               /* "wc" (opt) */
};

struct proto_sched_release_rep {
	bool released;                        /* "ok" */
	char state[PROTO_ACCT_STATE_MAX + 1]; /* "state" (opt): account state */
};

/*
 * Several scheduler requests in one message, so a gateway under load
 * pays one round trip for its releases and its next acquire: "msgs", 1 to
 * PROTO_BUNDLE_MAX packed envelopes (bin each), handled in order.  Every
 * one but the last must be a SCHED_RELEASE_REQ (fire and forget: their
 * replies are dropped); the last is a SCHED_RELEASE_REQ or
 * SCHED_ACQUIRE_REQ, and its reply is the bundle's reply.  A bundle never
 * holds a bundle.  On unpack the blobs borrow from the input buffer.
 */
struct proto_sched_bundle_req {
	uint32_t          n_msgs;
	struct proto_blob msgs[PROTO_BUNDLE_MAX]; /* "msgs": bin each */
};

/* One completed request, for billing and opsmon (DESIGN.md section 4). */
struct proto_usage_evt {
	char     instance[PROTO_ID_MAX + 1];          /* "inst" */
	uint64_t seq;                                 /* "seq" */
	char     request_id[PROTO_ID_MAX + 1];        /* "rid" */
	int64_t  user_id;                             /* "uid" */
	int64_t  api_key_id;                          /* "kid" */
	int64_t  group_id;                            /* "gid" */
	int64_t  account_id;                          /* "aid" */
	int64_t  subscription_id;                     /* "sid" */
	char     model[PROTO_MODEL_MAX + 1];          /* "model": requested */
	char     upstream_model[PROTO_MODEL_MAX + 1]; /* "umodel" */
	char     platform[PROTO_PLATFORM_MAX + 1];    /* "plat" */
	int64_t  input_tokens;                        /* "in" */
	int64_t  output_tokens;                       /* "out" */
	int64_t  cache_creation_tokens;               /* "cc" */
	int64_t  cache_read_tokens;                   /* "cr" */
	int64_t  cache_creation_5m_tokens;            /* "cc5m" */
	int64_t  cache_creation_1h_tokens;            /* "cc1h" */
	bool     stream;                              /* "stream" */
	int64_t  duration_ms;                         /* "dur" */
	int64_t  first_token_ms;                      /* "ttft" */
	int32_t  status;                              /* "status" */
	char     client_ip[PROTO_IP_MAX + 1];         /* "ip" */
	char     user_agent[PROTO_UA_MAX + 1];        /* "ua" */
	int64_t  created_at_ms;                       /* "ts" */
};

/*
 * Several usage events in one publication, on the same topic ("usage."):
 * "evts", 1 to PROTO_BATCH_MAX packed USAGE_EVT envelopes (bin each), in
 * seq order.  A gateway under load publishes one batch per few
 * milliseconds instead of one message per request; subscribers take each
 * entry as if it had come alone (proto_usage_each()).  On unpack the
 * blobs borrow from the input buffer.
 */
struct proto_usage_batch_evt {
	uint32_t          n_evts;
	struct proto_blob evts[PROTO_BATCH_MAX]; /* "evts": bin each */
};

/* One failed request, for opsmon's error log. */
struct proto_error_evt {
	char     instance[PROTO_ID_MAX + 1];       /* "inst" */
	uint64_t seq;                              /* "seq" */
	char     request_id[PROTO_ID_MAX + 1];     /* "rid" */
	int64_t  user_id;                          /* "uid" */
	int64_t  api_key_id;                       /* "kid" */
	int64_t  group_id;                         /* "gid" */
	int64_t  account_id;                       /* "aid" */
	char     platform[PROTO_PLATFORM_MAX + 1]; /* "plat" */
	char     model[PROTO_MODEL_MAX + 1];       /* "model" */
	char     path[PROTO_PATH_MAX + 1];         /* "path" */
	int32_t  status;                           /* "status" */
	char     phase[PROTO_NAME_MAX + 1];     /* "phase": auth, upstream.. */
	char     type[PROTO_NAME_MAX + 1];      /* "type" */
	char     severity[PROTO_STATE_MAX + 1]; /* "sev" */
	char     message[PROTO_TEXT_MAX + 1];   /* "msg" */
	bool     stream;                        /* "stream" */
	int64_t  duration_ms;                   /* "dur" */
	int64_t  created_at_ms;                 /* "ts" */
};

/* One metric sample; packed as the array [name, labels, value]. */
struct proto_sample {
	char   name[PROTO_METRIC_MAX + 1];
	char   labels[PROTO_LABELS_MAX + 1]; /* e.g. platform="openai" */
	double value;
};

struct proto_metrics_snapshot_evt {
	char                source[PROTO_NAME_MAX + 1]; /* "src": service */
	char                instance[PROTO_ID_MAX + 1]; /* "inst" */
	uint32_t            window_s;                   /* "win" */
	int64_t             ts_ms;                      /* "ts" */
	uint32_t            n_samples;
	struct proto_sample samples[PROTO_SAMPLES_MAX]; /* "s" */
};

/* webui announces a configuration write; scheduler drops its cache. */
struct proto_config_changed_evt {
	char     kind[PROTO_NAME_MAX + 1]; /* "kind": account, group, key.. */
	int64_t  entity_id;                /* "eid": 0 = all of kind */
	uint64_t version;                  /* "ver" */
};

/* Every service, every few seconds; state is starting|serving|draining. */
struct proto_status_heartbeat_evt {
	char     service[PROTO_NAME_MAX + 1]; /* "svc" */
	char     instance[PROTO_ID_MAX + 1];  /* "inst" */
	uint64_t seq;                         /* "seq" */
	int64_t  started_at_ms;               /* "start" */
	int64_t  sent_at_ms;                  /* "ts" */
	char     state[PROTO_STATE_MAX + 1];  /* "state": checked */
	uint32_t inflight;                    /* "infl" */
};

/* Billing asks a gateway for spooled usage events it missed. */
struct proto_replay_req {
	char     instance[PROTO_ID_MAX + 1]; /* "inst" */
	uint64_t from_seq;                   /* "from": inclusive */
	uint64_t to_seq;                     /* "to": inclusive, >= from */
	uint32_t max_count;                  /* "max": <= PROTO_BLOBS_MAX */
};

/*
 * Each blob is a packed USAGE_EVT body (no envelope), as made by
 * proto_body_pack(); read one with proto_body_unpack(MSG_USAGE_EVT...).
 */
struct proto_replay_rep {
	char              instance[PROTO_ID_MAX + 1]; /* "inst" */
	uint32_t          n_blobs;
	struct proto_blob blobs[PROTO_BLOBS_MAX]; /* "evts": bin each */
	uint64_t          high_seq;               /* "high": highest held */
	bool              complete;               /* "done": range all sent */
};

/*
 * The gateway's delivery sync with billing (DESIGN section 4): every few
 * seconds a gateway sends the usage events it has spooled and billing has
 * not confirmed (oldest first; none on a plain poll), and billing answers
 * the highest contiguous seq it has committed for that instance.  Each
 * blob is a packed USAGE_EVT body, as in proto_replay_rep; billing
 * ingests it like a published event (request ids make it idempotent).
 */
#define PROTO_SYNC_LOST_MAX 32 /* lost seq ranges per sync request */

struct proto_usage_sync_req {
	char              instance[PROTO_ID_MAX + 1]; /* "inst" */
	uint32_t          n_blobs;
	struct proto_blob blobs[PROTO_BLOBS_MAX]; /* "evts": bin each */
	/*
	 * "lost" (optional, absent in older gateways' requests): seq ranges
	 * the gateway numbered but could not spool (full or failing), so it
	 * will never resend them, as pairs from, to (1 <= from <= to).
	 */
	uint32_t n_lost; /* entries: twice the ranges */
	int64_t  lost[2 * PROTO_SYNC_LOST_MAX];
};

struct proto_usage_sync_rep {
	char     instance[PROTO_ID_MAX + 1]; /* "inst": echoed */
	uint64_t committed_seq;              /* "seq": 0 = nothing yet */
};

/* ---- envelope ------------------------------------------------------ */

/*
 * A decoded envelope.  body borrows from the buffer given to
 * proto_env_unpack(), which must stay alive and unchanged while the
 * envelope or anything decoded from it is used.
 */
struct proto_env {
	uint32_t       version;              /* always PROTO_VERSION */
	uint16_t       type;                 /* may be unknown to us */
	char           id[PROTO_ID_MAX + 1]; /* request id, "" if none */
	int64_t        deadline_ms;          /* absolute wall ms, 0 = none */
	const uint8_t *body;                 /* the body map's bytes */
	size_t         body_len;
};

/* ---- registry ------------------------------------------------------ */

/* "SCHED_ACQUIRE_REQ" for a known type, "UNKNOWN" otherwise. */
const char *proto_msg_name(int type);

/* Whether type is in proto.def. */
bool proto_msg_known(int type);

/* sizeof the struct of a known type, 0 otherwise. */
size_t proto_msg_size(int type);

/* ---- generic codec ------------------------------------------------- */

/*
 * Appends one envelope holding msg (which must point at the struct of
 * type) to out.  req_id may be NULL (sent as "") and must fit
 * PROTO_ID_MAX; deadline_ms >= 0.  Borrows everything.
 * Returns 0; -ERR_INVAL for an unknown type or a message the decoder
 * would refuse (unterminated string, count past its bound, bad state);
 * -ERR_TOOBIG past PROTO_MAX_MSG or the cap of out.  On failure out is
 * back at its length on entry, or released if its cap was hit.
 */
int proto_pack(struct buf *out, int type, const char *req_id,
    int64_t deadline_ms, const void *msg) WARN_UNUSED;

/* As proto_pack() without the envelope: appends only the body map. */
int proto_body_pack(struct buf *out, int type, const void *msg) WARN_UNUSED;

/*
 * Decodes and checks the envelope in data[0..len) (borrowed; see struct
 * proto_env) into *env.  The body is validated structurally but not
 * decoded; the type is not required to be known.  Returns 0, or -ERR_x
 * as described at the top of this file; *env is written only on success.
 */
int proto_env_unpack(
    const void *data, size_t len, struct proto_env *env) WARN_UNUSED;

/*
 * Decodes a body map of the given type from data[0..len) into out, which
 * must point at the struct of that type.  Returns 0 or -ERR_x (-ERR_PROTO
 * for an unknown type).  out is zeroed first, and left zeroed on failure.
 */
int proto_body_unpack(
    int type, const void *data, size_t len, void *out) WARN_UNUSED;

/* Decodes env's body; -ERR_PROTO when env->type differs from type. */
int proto_unpack(const struct proto_env *env, int type, void *out) WARN_UNUSED;

/*
 * Typed wrappers, one pair per message of proto.def, e.g.
 *   int proto_usage_evt_pack(struct buf *out, const char *req_id,
 *       int64_t deadline_ms, const struct proto_usage_evt *msg);
 *   int proto_usage_evt_unpack(const struct proto_env *env,
 *       struct proto_usage_evt *out);
 * with the contracts of proto_pack() and proto_unpack().
 */
#define MSG(name, id, sname)                                          \
	int proto_##sname##_pack(struct buf *, const char *, int64_t, \
	    const struct proto_##sname *) WARN_UNUSED;                \
	int proto_##sname##_unpack(                                   \
	    const struct proto_env *, struct proto_##sname *) WARN_UNUSED;
#include "proto.def"
#undef MSG

/*
 * What a usage subscriber received, one envelope at a time: calls
 * fn(arg, env bytes, len) once for a USAGE_EVT envelope or any other
 * single message (fn decodes and judges it), or once per entry of a
 * USAGE_BATCH_EVT, in order (entries borrowed from data).  Returns the
 * number of calls, or -ERR_x for a batch that does not decode (fn is then
 * not called).  fn's return value is ignored.
 */
int proto_usage_each(const void *data, size_t                 len,
    void (*fn)(void *arg, const void *env, size_t len), void *arg);

/*
 * Appends an ERROR_REP envelope answering req_id: code may be given as
 * ERR_x or -ERR_x; message (may be NULL: err_str(code) is used) is
 * truncated to PROTO_TEXT_MAX bytes on a UTF-8 boundary.  Returns as
 * proto_pack().
 */
int proto_reply_error(struct buf *out, const char *req_id, int code,
    const char *message) WARN_UNUSED;

#endif /* PROTO_H */
