/*
 * gw_io.h: the gateway's I/O thread (private to gateway/).
 *
 * One thread owns the libcurl multi handle and every request's upstream
 * side.  Other threads talk to it only by posting messages, which wake it
 * through an eventfd; it is the only thread that resumes suspended MHD
 * connections.  While a connection is suspended MHD does not notice a
 * client that goes away, so the I/O thread also watches those sockets
 * (for a hang-up only) and cancels the upstream transfer at once.
 *
 * The thread waits in one epoll set holding libcurl's sockets (libcurl's
 * socket API: CURLMOPT_SOCKETFUNCTION and TIMERFUNCTION), the eventfd and
 * the suspended clients' sockets, so each turn costs what happened in it,
 * not what is held: thousands of quiet streams cost nothing while quiet.
 */
#ifndef GW_IO_H
#define GW_IO_H

#include "gw_bundle.h"
#include "gw_req.h"

enum gw_msg_kind {
	GW_M_START,    /* body complete: ask the scheduler */
	GW_M_ACQUIRED, /* the scheduler answered (data: reply bytes) */
	GW_M_CANCEL,   /* the client side ended before the upstream did */
	GW_M_UNPAUSE,  /* the client drained: resume a paused transfer */
};

struct gw_msg {
	struct gw_msg   *next;
	enum gw_msg_kind kind;
	struct gw_req   *req; /* borrowed: the io side holds its reference */
	int              rv;  /* GW_M_ACQUIRED: the call's status */
	size_t           len;
	uint8_t          data[]; /* GW_M_ACQUIRED: the reply */
};

struct gw_io {
	pthread_t       thr;
	CURLM          *multi;
	pthread_mutex_t mu;
	struct gw_msg  *head;   /* (mu) */
	struct gw_msg  *tail;   /* (mu) */
	bool            stop;   /* (mu) */
	bool            closed; /* (mu) the thread is gone: refuse posts */
	bool            running;

	int epfd;   /* the epoll set (see above) */
	int wakefd; /* eventfd: gw_io_post() */

	/* io thread only */
	int64_t         curl_due_ms;  /* libcurl's timer (monotonic), -1 none */
	int64_t         next_tick_ms; /* per-request clocks */
	struct gw_req **live;         /* requests the io side holds */
	size_t          n_live;
	size_t          cap_live;
	int64_t         next_renew_ms;
	struct gw_pend  releases; /* waiting for a ride (gw_bundle.h) */
	struct gw_pend  usage;    /* events to publish as one batch */
	struct gw_req **held;     /* resumes held (gw_io_resume_soon()) */
	size_t          n_held;
	size_t          cap_held;
	int64_t         held_due_ms; /* when they go, -1: none */
};

/*
 * Start, stop (joins the thread after cancelling every request), free.
 * Between stop and free the caller closes the scheduler REQ socket, whose
 * completion callbacks may still post messages.
 */
int  gw_io_start(struct gw *gw) WARN_UNUSED;
void gw_io_stop(struct gw *gw);
void gw_io_free(struct gw *gw);

/*
 * Posts a message (any thread); data is copied.  False once the thread
 * has stopped: the caller then keeps whatever the message would have
 * carried (a reference, the duty to answer).
 */
bool gw_io_post(struct gw *gw, enum gw_msg_kind kind, struct gw_req *r, int rv,
    const void *data, size_t len);

/* io thread: resumes r's connection if it is suspended (takes r->mu). */
void gw_io_resume(struct gw_req *r);

/*
 * io thread: resumes r's connection within stream_linger, with every
 * other one held meanwhile.  MHD 0.9.75 walks its whole list of suspended
 * connections on each pass that resumes any, so resuming each relayed
 * event at once costs O(held streams) per event; one pass for many
 * events costs it once.  For the events after a stream's first.
 */
void gw_io_resume_soon(struct gw *gw, struct gw_req *r);

/*
 * MHD thread, under r->mu, as it suspends r's connection: the I/O thread
 * watches the client's socket for a hang-up until gw_io_resume().
 */
void gw_io_watch_locked(struct gw_req *r);

/* io thread: the request is finished on the io side; drops its ref. */
void gw_io_finish(struct gw *gw, struct gw_req *r);

#endif /* GW_IO_H */
