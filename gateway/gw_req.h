/*
 * gw_req.h: one client request through the gateway (private to gateway/).
 *
 * A request is shared by two threads, each owning one side:
 *  - the MHD thread (gw_http.c) receives the request, queues the response
 *    and copies bytes from req->out to the client in its content reader;
 *  - the I/O thread (gw_io.c, gw_up.c) asks the scheduler, runs the libcurl
 *    transfer, fills req->out, and is the only thread that resumes a
 *    suspended MHD connection.
 * Fields marked (mu) are read and written under req->mu by both; fields
 * marked (http) or (io) belong to that thread alone.  Two references keep
 * the request alive, one per side; the last gw_req_unref() frees it.
 *
 * States (io):
 *   GW_R_BODY -> GW_R_SCHED -> GW_R_UPSTREAM -> GW_R_STREAMING -> GW_R_DONE
 *                   ^               |
 *                   +---------------+  failover before the first byte
 */
#ifndef GW_REQ_H
#define GW_REQ_H

#include <curl/curl.h>
#include <pthread.h>

#include "buf.h"
#include "gw_anth.h"
#include "gw_sse.h"
#include "proto.h"

struct gw;
struct MHD_Connection;

enum gw_route {
	GW_RT_NONE,
	GW_RT_MESSAGES,
	GW_RT_COUNT_TOKENS,
	GW_RT_MODELS, /* GET /v1/models */
	GW_RT_USAGE,  /* GET /v1/usage */
};

enum gw_rstate {
	GW_R_BODY,
	GW_R_SCHED,
	GW_R_UPSTREAM,
	GW_R_STREAMING,
	GW_R_DONE,
};

/*
 * What a request keeps of the scheduler's decision for its whole life:
 * the ids, the lease and the model, about 300 bytes.  The full reply
 * (about 19 KiB, with the credential and proxy URL) lives only until the
 * upstream transfer is set up, so neither its size nor its secrets stay
 * with a long stream.
 */
struct gw_dec {
	int32_t outcome;
	int64_t user_id;
	int64_t api_key_id;
	int64_t group_id;
	int64_t account_id;
	int64_t subscription_id;
	char    platform[PROTO_PLATFORM_MAX + 1];
	char    upstream_model[PROTO_MODEL_MAX + 1];
	char    lease_id[PROTO_ID_MAX + 1];
};

struct gw_req {
	pthread_mutex_t        mu;
	int                    refs; /* (mu) */
	struct gw             *gw;
	struct MHD_Connection *conn;
	int                    fd; /* client socket, watched while suspended */
	char                   id[PROTO_ID_MAX + 1];
	enum gw_route          route;
	int64_t                t0_us;
	bool                   local_ok;  /* (http) a local route */
	bool                   submitted; /* (http) body complete, handled */
	bool                   answered;  /* (http) a response is queued */
	bool                   io_active; /* (mu) the io side holds it */

	/* The request as received (http until GW_R_SCHED, then io). */
	struct buf         body;
	bool               too_big;
	char               key_hash[65];
	char               session[33]; /* (io) sticky-session key, "" = none */
	char               client_ip[PROTO_IP_MAX + 1];
	char               user_agent[PROTO_UA_MAX + 1];
	char               query[256];
	struct gw_anth_req areq;
	struct gw_anth_hdrs client_hdrs; /* the forwardable ones */

	/* The scheduler's decision and the failover bookkeeping (io). */
	enum gw_rstate   state;
	struct gw_dec   *dec;
	int64_t          excluded[PROTO_EXCLUDED_MAX];
	uint32_t         n_excluded;
	int              switches;
	bool             acq_inflight;
	bool             waiting; /* for a free slot */
	int64_t          wait_end_ms;
	int64_t          retry_at_ms;
	int64_t          backoff_ms;
	int64_t          next_ping_ms;
	bool             pinged;      /* 200 + pings already sent */
	bool             relayed;     /* upstream bytes went out */
	bool             resume_held; /* in the io side's held resumes */
	bool             cancelled;   /* while acq_inflight */
	bool             queued;      /* a BUSY made it a waiter */
	enum gw_err_code last_err;    /* last failed attempt */

	/* The upstream transfer (io). */
	CURL               *easy;
	struct curl_slist  *up_hdrs;
	struct buf          up_body;
	int                 up_status;
	char                up_ctype[128];
	char                up_request_id[PROTO_ID_MAX + 1];
	int64_t             reset_unix;
	int64_t             retry_after_s;
	struct proto_header rl_hdrs[PROTO_HEADERS_MAX]; /* for the release */
	uint32_t            n_rl_hdrs;
	struct buf          err_body; /* a failed attempt's body, bounded */
	struct buf          up_acc;   /* a plain answer, until complete */
	bool                failing;  /* this attempt will fail over */
	int64_t             up_start_ms;
	int64_t             up_last_ms;
	bool                up_headers_done;
	struct gw_sse       sse;
	struct gw_sse_anth  anth; /* usage, first token, in-stream error */
	int64_t             first_token_us;
	char                err_class[PROTO_NAME_MAX + 1];

	/* What goes to the client (mu). */
	int        resp_status; /* 0 until decided */
	char       resp_ctype[128];
	bool       resp_stream;
	struct buf out;
	bool       out_done;
	bool       paused;    /* upstream paused: out is full */
	bool       suspended; /* MHD connection suspended */
	bool       watched;   /* fd in the I/O thread's epoll set */
	bool       parked;    /* counted in gw->parked (MHD thread only) */
	bool       client_gone;
	bool       committed; /* bytes went (or are going) to the client */
	bool       released;  /* (io) lease returned */
};

/* A new request with both references held; never fails (aborts on OOM). */
struct gw_req *gw_req_new(struct gw *gw, struct MHD_Connection *conn);

/* Drops one reference; frees on the last one. */
void gw_req_unref(struct gw_req *r);

/*
 * Sets a complete error answer (Anthropic JSON) as the response, unless
 * one is already committed; called by either side under r->mu.
 */
void gw_req_fail_locked(
    struct gw_req *r, int status, const char *type, const char *message);

#endif /* GW_REQ_H */
