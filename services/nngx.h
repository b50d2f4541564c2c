/*
 * nngx.h: the project's NNG helpers (nng 1.5.2).
 *
 * Four small objects cover every socket a service opens:
 *
 *   nngx_rep  a REP server: N worker actors (one nng context each) that
 *             receive a request, call a handler, send its reply.
 *   nngx_req  a REQ client dialing one or more replicas; synchronous and
 *             asynchronous calls with a deadline, one context per call.
 *   nngx_pub  one PUB socket dialing every collector (non-blocking).
 *   nngx_sub  a SUB socket that LISTENS (collectors listen, producers
 *             dial) and hands each message to a callback.
 *
 * Pub/sub framing: every published message is
 *
 *   topic bytes | '\0' | payload (msgpack, opaque here)
 *
 * Topics are short ASCII prefixes ("usage.", "error.", "hb.", "metrics.",
 * "cfg.") without NUL, at most NNGX_TOPIC_MAX bytes.  NNG subscriptions
 * match prefixes of the whole message, so subscribing to "usage." receives
 * "usage." and "usage.anything"; the subscriber splits at the first NUL.
 *
 * Threading: every callback given to this module runs on an nng worker
 * thread, never on the caller's thread.  Objects are thread-safe unless a
 * function says otherwise.  *_close() cancels everything and waits for
 * running callbacks, so it must not be called from one of this object's
 * own callbacks.  *_free() closes, then frees; *_free(NULL) is legal.
 *
 * Every close is bounded: nng 1.5.2 reaps the pipes of all the process's
 * sockets on one thread, which a wedged listener or a lost completion can
 * stop for good, and nng_close() then never returns.  Each socket closes
 * on a helper thread waited for NNGX_CLOSE_WAIT_MS (1 s) at most; past
 * that the close is abandoned ("nngx.close_stuck") and *_free() keeps the
 * object instead of freeing it, since nng may still call into it.
 *
 * ipc:// addresses: before listening, the parent directory is created and
 * a stale socket file (one nobody answers on, left by kill -9) is removed,
 * so a restarted service can listen again at once.
 */
#ifndef NNGX_H
#define NNGX_H

#include "buf.h"
#include "compat.h"

#define NNGX_TOPIC_MAX   64        /* bytes, excluding the NUL */
#define NNGX_MSG_MAX     (1 << 20) /* default max message: 1 MiB */
#define NNGX_RECONN_MIN  100       /* ms */
#define NNGX_RECONN_MAX  2000      /* ms */
#define NNGX_WORKERS_MAX 1024

/*
 * Maps an nng error to -ERR_x: NNG_ETIMEDOUT -> -ERR_TIMEDOUT, NNG_ECLOSED
 * -> -ERR_CLOSED, NNG_ECANCELED -> -ERR_CANCELED, NNG_EMSGSIZE ->
 * -ERR_TOOBIG, NNG_ENOMEM -> -ERR_NOMEM, NNG_EAGAIN -> -ERR_BUSY, anything
 * else -> -ERR_NNG (including NNG_ECONNRESET: a REQ whose replica vanished
 * after the request was sent; its outcome is unknown).  0 stays 0.
 */
int err_from_nng(int nng_rv);

/*
 * Prepares an ipc:// url for listening (no-op for other schemes): creates
 * the parent directory (mode 0755, recursively) and removes a socket file
 * that nobody accepts on.  -ERR_EXISTS when a live listener answers,
 * -ERR_INVAL when the path does not fit a sockaddr_un, -ERR_IO otherwise.
 */
int nngx_ipc_prepare(const char *url) WARN_UNUSED;

/* ---- REP server ------------------------------------------------------ */

/*
 * A request handler.  req (len bytes) is borrowed for the call.  The
 * handler appends its reply to reply (an empty buffer capped at max_msg);
 * whatever reply holds when it returns is sent, whatever it returns.
 *
 * The handler must always fill reply, errors included: the proto layer
 * turns its own failures into error replies.  A handler that returns
 * nonzero and leaves reply empty gets no reply sent (logged as
 * nngx.rep_noreply): the requester then waits for its deadline.  A handler
 * returning 0 with an empty reply sends an empty message.
 *
 * Runs on an nng worker thread, up to nworkers at once: it must be
 * thread-safe.  It may be slow (its context waits; the other workers go
 * on), but a slow handler also holds one of nng's task threads, so block
 * only briefly (a Redis round trip is fine; seconds are not).
 */
typedef int (*nngx_rep_fn)(
    void *arg, const void *req, size_t len, struct buf *reply);

struct nngx_rep;

/*
 * Listens on url with nworkers (1..NNGX_WORKERS_MAX) worker contexts.
 * Requests larger than max_msg bytes (0: NNGX_MSG_MAX) are refused by the
 * transport (NNG_OPT_RECVMAXSZ: the connection is dropped, the requester
 * times out).  handler and arg are borrowed for the server's life.  On
 * success *out is an owned server, released by nngx_rep_free().
 */
int nngx_rep_new(const char *url, int nworkers, nngx_rep_fn handler, void *arg,
    size_t max_msg, struct nngx_rep **out) WARN_UNUSED;

/*
 * Stops the server: no new requests are taken, every worker aio is
 * stopped (waiting for a handler in progress to return), the socket is
 * closed.  Idempotent; memory stays until nngx_rep_free().
 */
void nngx_rep_close(struct nngx_rep *s);

/* nngx_rep_close(), then frees.  NULL is fine. */
void nngx_rep_free(struct nngx_rep *s);

/*
 * The listener guard (ipc:// only; other schemes return 0).  nng 1.5.2
 * stops accepting for good once a peer hangs up during the SP header
 * exchange (nanomsg/nng#1518), e.g. a dialer that gave up while this
 * process was frozen.  This dials the listener like a peer and, when it
 * does not answer within timeout_ms, closes and reopens it (its pipes
 * drop; peers redial).  0 healthy, 1 reopened, -ERR_x when reopening
 * failed.  Blocks up to timeout_ms; call it from a timer, e.g. every few
 * seconds; not concurrently with *_close().
 */
int nngx_rep_guard(struct nngx_rep *s, int timeout_ms);

/* ---- REQ client ------------------------------------------------------ */

/*
 * Completion of an asynchronous call.  rv is 0 or -ERR_x (-ERR_TIMEDOUT
 * past the deadline, -ERR_CLOSED/-ERR_CANCELED when the client closes).
 * On success rep (len bytes) is the reply, borrowed for the callback only;
 * on failure rep is NULL and len 0.  Runs on an nng worker thread; it must
 * not block and must not call nngx_req_call() or nngx_req_close().  It may
 * start another nngx_req_call_async().
 */
typedef void (*nngx_req_fn)(void *arg, int rv, const void *rep, size_t len);

struct nngx_req;

/*
 * Dials every url (1..16 of them, borrowed) from one REQ socket; nng
 * spreads requests across the connected replicas.  Dials are
 * non-blocking, so an absent peer is fine: nng reconnects every
 * NNGX_RECONN_MIN..NNGX_RECONN_MAX ms.  Replies over NNGX_MSG_MAX are
 * refused.
 *
 * Resending is disabled (NNG_OPT_REQ_RESENDTIME = NNG_DURATION_INFINITE):
 * our requests are not idempotent (an acquire must not run twice), so a
 * request goes out once; if its replica disconnects before answering, the
 * call fails (-ERR_NNG, from NNG_ECONNRESET) and the caller decides.
 */
int nngx_req_new(
    const char *const *urls, size_t nurls, struct nngx_req **out) WARN_UNUSED;

/*
 * Sends req (len bytes, borrowed) and waits for the reply, at most
 * timeout_ms in all (sending included: with no replica connected the call
 * waits for one until the deadline).  On success the reply is appended to
 * reply (the caller's buffer and cap; -ERR_TOOBIG past it).  Thread-safe:
 * any number of threads may call at once, each call on its own context.
 * Blocks the calling thread: never call it from an nng callback.
 */
int nngx_req_call(struct nngx_req *c, const void *req, size_t len,
    int timeout_ms, struct buf *reply) WARN_UNUSED;

/*
 * The same, asynchronous.  req is copied before return.  Returns 0 when
 * the call started: cb(arg, ...) then runs exactly once.  Returns -ERR_x
 * (-ERR_CLOSED, -ERR_INVAL, -ERR_NOMEM) when it did not start: cb is never
 * called.  Call objects are recycled, so steady load allocates nothing.
 */
int nngx_req_call_async(struct nngx_req *c, const void *req, size_t len,
    int timeout_ms, nngx_req_fn cb, void *arg) WARN_UNUSED;

/* Connected replicas right now (for readiness). */
int nngx_req_npipes(struct nngx_req *c);

/*
 * Closes the socket (bounded, see above): calls in flight complete with
 * -ERR_CLOSED or -ERR_CANCELED (their callbacks run before this returns),
 * new calls fail with -ERR_CLOSED.  Stop issuing calls before closing: a
 * call racing with close may be dropped.  Idempotent.
 */
void nngx_req_close(struct nngx_req *c);

/* nngx_req_close(), then frees.  NULL is fine. */
void nngx_req_free(struct nngx_req *c);

/* ---- PUB ------------------------------------------------------------- */

struct nngx_pub;

/*
 * One PUB socket dialing every url (1..16, borrowed), non-blocking, with
 * reconnects every NNGX_RECONN_MIN..NNGX_RECONN_MAX ms.
 */
int nngx_pub_new(
    const char *const *urls, size_t n, struct nngx_pub **out) WARN_UNUSED;

/*
 * Sets the per-peer send queue, in messages (1..8192; nng's default is
 * 16).  Applies to connected and future peers.
 */
int nngx_pub_set_sendbuf(struct nngx_pub *p, int nmsgs) WARN_UNUSED;

/*
 * Publishes topic '\0' data (data borrowed; len <= NNGX_MSG_MAX).  Never
 * blocks.  Returns -ERR_INVAL for a bad topic, -ERR_TOOBIG, -ERR_CLOSED,
 * or -ERR_BUSY/-ERR_NNG when nng refuses the message; every refusal
 * counts in nngx_pub_dropped().
 *
 * Note on nng 1.5.2: PUB never reports a full queue.  A peer whose queue
 * is full silently loses its OLDEST queued message, and a message sent
 * while no peer is connected goes nowhere; the latter counts in
 * nngx_pub_nopeer().  Reliable delivery is not this layer's job (see the
 * usage spool in DESIGN.md section 4).
 */
int nngx_pub_send(struct nngx_pub *p, const char *topic, const void *data,
    size_t len) WARN_UNUSED;

/* Counters, readable from any thread. */
uint64_t nngx_pub_dropped(const struct nngx_pub *p);
uint64_t nngx_pub_nopeer(const struct nngx_pub *p);
int      nngx_pub_npipes(const struct nngx_pub *p);

/*
 * Closes the socket (bounded, see above; queued messages may be lost).
 * Idempotent.
 */
void nngx_pub_close(struct nngx_pub *p);
void nngx_pub_free(struct nngx_pub *p);

/* ---- SUB ------------------------------------------------------------- */

/*
 * Delivery of one message.  topic is NUL-terminated, payload is len bytes;
 * both are borrowed for the callback only.  Runs on an nng worker thread,
 * one message at a time (never concurrently with itself), in arrival
 * order.  While it runs, further messages wait in the receive queue; when
 * that is full nng drops the oldest.  Forward the work, do not block.
 */
typedef void (*nngx_sub_fn)(
    void *arg, const char *topic, const void *payload, size_t len);

struct nngx_sub;

/*
 * Listens on url and subscribes to n topics (borrowed; "" means all).
 * recv_queue is the receive queue in messages (1..8192; 0: nng's 128).
 * Messages over NNGX_MSG_MAX are refused by the transport, which also
 * drops the sending connection (the publisher reconnects).  Messages
 * without a NUL-terminated topic are dropped and counted.
 */
int nngx_sub_new(const char *url, const char *const *topics, size_t n,
    size_t recv_queue, nngx_sub_fn cb, void *arg,
    struct nngx_sub **out) WARN_UNUSED;

/* Connected publishers right now (for readiness). */
int nngx_sub_npipes(const struct nngx_sub *s);

/* The listener guard of the subscriber: see nngx_rep_guard(). */
int nngx_sub_guard(struct nngx_sub *s, int timeout_ms);

/* Messages dropped as malformed (no topic terminator). */
uint64_t nngx_sub_malformed(const struct nngx_sub *s);

/*
 * Stops receiving (waits for a callback in progress) and closes the
 * socket.  Idempotent.
 */
void nngx_sub_close(struct nngx_sub *s);
void nngx_sub_free(struct nngx_sub *s);

#endif /* NNGX_H */
