/*
 * nngx.c: REP server, REQ client, PUB and SUB helpers on nng 1.5.2.
 *
 * Each asynchronous piece is an actor in the shape of nng's
 * demo/async/server.c: a struct, a state enum and one aio callback.  The
 * REP server runs nworkers such actors, each with its own context; the
 * REQ client keeps a free list of call actors (one context each) so that
 * a busy gateway reuses them instead of allocating per call; the SUB
 * socket runs one receive actor.
 *
 * Message ownership follows nng: a send that succeeds takes the message;
 * one that fails leaves it on the aio, where we reclaim it with
 * nng_aio_get_msg() and free it.  After a successful receive we take the
 * message off the aio at once, so an aio never holds a message we do not
 * own; close relies on that to free what a stopped aio still carries.
 *
 * Teardown: mark closing, close the socket (every pending operation then
 * completes with NNG_ECLOSED and the callbacks stop resubmitting), stop
 * each aio (which waits for a callback in progress), then free.  REP and
 * SUB sockets stop their aios before the close instead.  Every socket
 * closes with a bound (nngx_close_bounded()): nng 1.5.2 reaps every
 * socket's pipes on one thread, and once a wedged listener or a lost
 * completion stops it, any nng_close() with a pipe to reap (a dialer's
 * too) waits for ever.  Pipe notifications count connected peers for
 * readiness; nng_close() returns only after the last one has run, so an
 * object whose close was abandoned is kept, not freed.
 */
#include "nngx.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "nngx_guard.h"

#define NNGX_URLS_MAX 16

int
err_from_nng(int nng_rv)
{
	switch (nng_rv) {
	case 0:
		return 0;
	case NNG_ETIMEDOUT:
		return -ERR_TIMEDOUT;
	case NNG_ECLOSED:
		return -ERR_CLOSED;
	case NNG_ECANCELED:
		return -ERR_CANCELED;
	case NNG_EMSGSIZE:
		return -ERR_TOOBIG;
	case NNG_ENOMEM:
		return -ERR_NOMEM;
	case NNG_EAGAIN:
		return -ERR_BUSY;
	default:
		return -ERR_NNG;
	}
}

/* ---- shared helpers -------------------------------------------------- */

/*
 * Counts pipes from ADD_PRE to REM_POST: nng fires REM_POST exactly for
 * the pipes that saw ADD_PRE, so the pair never drifts (ADD_POST may be
 * skipped for a pipe rejected during setup).
 */
static void
nngx_pipe_cb(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
	atomic_int *n = arg;

	(void)pipe;
	if (ev == NNG_PIPE_EV_ADD_PRE)
		atomic_fetch_add(n, 1);
	else if (ev == NNG_PIPE_EV_REM_POST)
		atomic_fetch_sub(n, 1);
}

static int
nngx_pipes_watch(nng_socket sock, atomic_int *n)
{
	int rv;

	rv = nng_pipe_notify(sock, NNG_PIPE_EV_ADD_PRE, nngx_pipe_cb, n);
	if (rv == 0)
		rv = nng_pipe_notify(
		    sock, NNG_PIPE_EV_REM_POST, nngx_pipe_cb, n);
	return err_from_nng(rv);
}

/* Frees a message an aio still carries (a stopped aio's unsent reply). */
static void
nngx_aio_drop_msg(nng_aio *aio)
{
	nng_msg *msg;

	if (aio == NULL)
		return;
	msg = nng_aio_get_msg(aio);
	if (msg != NULL) {
		nng_aio_set_msg(aio, NULL);
		nng_msg_free(msg);
	}
}

static int
nngx_mkdirs(char *path)
{
	char *p;

	for (p = path + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0755) != 0 && errno != EEXIST) {
			*p = '/';
			return -ERR_IO;
		}
		*p = '/';
	}
	return 0;
}

int
nngx_ipc_prepare(const char *url)
{
	struct sockaddr_un sa;
	struct stat        st;
	const char        *path;
	char              *dir;
	int                fd, rv;

	if (strncmp(url, "ipc://", 6) != 0)
		return 0;
	path = url + 6;
	if (*path == '\0' || strlen(path) >= sizeof(sa.sun_path))
		return -ERR_INVAL;
	dir = xstrdup(path);
	rv = nngx_mkdirs(dir);
	free(dir);
	if (rv != 0)
		return rv;
	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : -ERR_IO;
	if (!S_ISSOCK(st.st_mode))
		return -ERR_EXISTS;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -ERR_IO;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		close(fd);
		return -ERR_EXISTS;
	}
	rv = errno == ECONNREFUSED ? 0 : -ERR_IO;
	close(fd);
	if (rv == 0 && unlink(path) != 0 && errno != ENOENT)
		rv = -ERR_IO;
	if (rv == 0)
		log_info("nngx.ipc_stale_removed", LOG_STR("path", path));
	return rv;
}

/* Non-blocking dials with our reconnect backoff; urls are borrowed. */
static int
nngx_dial_all(nng_socket sock, const char *const *urls, size_t n)
{
	size_t i;
	int    rv;

	if (n == 0 || n > NNGX_URLS_MAX)
		return -ERR_INVAL;
	rv = nng_socket_set_ms(sock, NNG_OPT_RECONNMINT, NNGX_RECONN_MIN);
	if (rv == 0)
		rv = nng_socket_set_ms(
		    sock, NNG_OPT_RECONNMAXT, NNGX_RECONN_MAX);
	if (rv != 0)
		return err_from_nng(rv);
	for (i = 0; i < n; i++) {
		rv = err_from_nng(
		    nng_dial(sock, urls[i], NULL, NNG_FLAG_NONBLOCK));
		if (rv != 0) {
			log_error("nngx.dial_failed", LOG_STR("url", urls[i]),
			    LOG_ERR(rv));
			return rv;
		}
	}
	return 0;
}

/* ---- REP server ------------------------------------------------------ */

enum nngx_rep_state {
	NNGX_REP_ST_INIT,
	NNGX_REP_ST_RECV,
	NNGX_REP_ST_SEND,
};

struct nngx_rep_worker {
	enum nngx_rep_state state;
	nng_aio            *aio;
	nng_ctx             ctx;
	struct nngx_rep    *srv;
};

struct nngx_rep {
	nng_socket              sock;
	bool                    sock_open;
	bool                    abandoned; /* its close got stuck */
	atomic_bool             closing;
	nngx_rep_fn             fn;
	void                   *arg;
	size_t                  max_msg;
	int                     nworkers;
	struct nngx_rep_worker *w;
	struct nngx_guard       guard;
};

static void
nngx_rep_recv(struct nngx_rep_worker *w)
{
	w->state = NNGX_REP_ST_RECV;
	nng_ctx_recv(w->ctx, w->aio);
}

/* Runs the handler on a received request; takes msg. */
static void
nngx_rep_handle(struct nngx_rep_worker *w, nng_msg *msg)
{
	struct nngx_rep *s = w->srv;
	struct buf       reply;
	int              hrv, rv = 0;

	buf_init(&reply, s->max_msg + 1);
	hrv = s->fn(s->arg, nng_msg_body(msg), nng_msg_len(msg), &reply);
	if (hrv != 0 && reply.len == 0) {
		log_warn("nngx.rep_noreply", LOG_ERR(hrv));
		rv = hrv;
	} else {
		nng_msg_clear(msg);
		if (reply.len > 0)
			rv = err_from_nng(
			    nng_msg_append(msg, reply.data, reply.len));
	}
	buf_release(&reply);
	if (rv != 0) {
		nng_msg_free(msg);
		nngx_rep_recv(w);
		return;
	}
	nng_aio_set_msg(w->aio, msg);
	w->state = NNGX_REP_ST_SEND;
	nng_ctx_send(w->ctx, w->aio);
}

static void
nngx_rep_worker_cb(void *arg)
{
	struct nngx_rep_worker *w = arg;
	nng_msg                *msg;
	int                     rv;

	switch (w->state) {
	case NNGX_REP_ST_INIT:
		nngx_rep_recv(w);
		break;
	case NNGX_REP_ST_RECV:
		rv = nng_aio_result(w->aio);
		if (rv != 0) {
			if (atomic_load(&w->srv->closing) ||
			    rv == NNG_ECLOSED || rv == NNG_ECANCELED)
				return;
			log_warn(
			    "nngx.rep_recv_failed", LOG_ERR(err_from_nng(rv)));
			nngx_rep_recv(w);
			return;
		}
		msg = nng_aio_get_msg(w->aio);
		nng_aio_set_msg(w->aio, NULL);
		nngx_rep_handle(w, msg);
		break;
	case NNGX_REP_ST_SEND:
		rv = nng_aio_result(w->aio);
		if (rv != 0)
			nngx_aio_drop_msg(w->aio); /* failed send: still ours */
		else
			nng_aio_set_msg(w->aio, NULL); /* taken by nng */
		if (atomic_load(&w->srv->closing) || rv == NNG_ECLOSED ||
		    rv == NNG_ECANCELED)
			return;
		nngx_rep_recv(w);
		break;
	default:
		BUG("nngx_rep_worker_cb: bad state %d", (int)w->state);
	}
}

int
nngx_rep_new(const char *url, int nworkers, nngx_rep_fn handler, void *arg,
    size_t max_msg, struct nngx_rep **out)
{
	struct nngx_rep *s;
	int              i, rv;

	if (url == NULL || handler == NULL || nworkers < 1 ||
	    nworkers > NNGX_WORKERS_MAX)
		return -ERR_INVAL;
	s = xcalloc(1, sizeof(*s));
	s->fn = handler;
	s->arg = arg;
	s->max_msg = max_msg == 0 ? NNGX_MSG_MAX : max_msg;
	s->w = xcalloc((size_t)nworkers, sizeof(*s->w));
	s->nworkers = nworkers;
	atomic_init(&s->closing, false);

	rv = err_from_nng(nng_rep0_open(&s->sock));
	if (rv != 0)
		goto fail;
	s->sock_open = true;
	rv = err_from_nng(
	    nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, s->max_msg));
	for (i = 0; rv == 0 && i < nworkers; i++) {
		s->w[i].srv = s;
		s->w[i].state = NNGX_REP_ST_INIT;
		rv = err_from_nng(
		    nng_aio_alloc(&s->w[i].aio, nngx_rep_worker_cb, &s->w[i]));
		if (rv == 0)
			rv = err_from_nng(nng_ctx_open(&s->w[i].ctx, s->sock));
	}
	if (rv == 0)
		rv = nngx_listen(&s->guard, s->sock, url, NNGX_PROTO_REQ0);
	if (rv != 0)
		goto fail;
	for (i = 0; i < nworkers; i++)
		nngx_rep_worker_cb(&s->w[i]);
	*out = s;
	return 0;
fail:
	nngx_rep_free(s);
	return rv;
}

void
nngx_rep_close(struct nngx_rep *s)
{
	int i;

	if (s == NULL || atomic_exchange(&s->closing, true))
		return;
	/* Workers first: no handler runs once the close may be abandoned. */
	for (i = 0; i < s->nworkers; i++) {
		nng_aio_stop(s->w[i].aio);
		nngx_aio_drop_msg(s->w[i].aio);
	}
	if (s->sock_open && !nngx_close_bounded(s->sock, "rep"))
		s->abandoned = true;
}

int
nngx_rep_guard(struct nngx_rep *s, int timeout_ms)
{
	if (atomic_load(&s->closing))
		return 0;
	return nngx_guard_check(&s->guard, timeout_ms);
}

void
nngx_rep_free(struct nngx_rep *s)
{
	int i;

	if (s == NULL)
		return;
	nngx_rep_close(s);
	if (s->abandoned)
		return; /* nng may still notify into s: kept for the exit */
	for (i = 0; i < s->nworkers; i++)
		nng_aio_free(s->w[i].aio);
	nngx_guard_release(&s->guard);
	free(s->w);
	free(s);
}

/* ---- REQ client ------------------------------------------------------ */

enum nngx_call_state {
	NNGX_CALL_ST_IDLE,
	NNGX_CALL_ST_SEND,
	NNGX_CALL_ST_RECV,
};

struct nngx_call {
	enum nngx_call_state state;
	nng_aio             *aio;
	nng_ctx              ctx;
	struct nngx_req     *c;
	nngx_req_fn          cb;
	void                *arg;
	int64_t              deadline; /* now_mono_ms() clock */
	struct nngx_call    *next_free;
	struct nngx_call    *next_all;
};

struct nngx_req {
	nng_socket        sock;
	bool              sock_open;
	bool              abandoned; /* its close got stuck */
	pthread_mutex_t   mtx;       /* guards closed and both lists */
	bool              closed;
	struct nngx_call *free_list;
	struct nngx_call *all;
	atomic_int        npipes;
};

/* Returns an idle call to the free list; it may be reused at once. */
static void
nngx_call_release(struct nngx_call *call)
{
	struct nngx_req *c = call->c;

	call->state = NNGX_CALL_ST_IDLE;
	call->cb = NULL;
	call->arg = NULL;
	pthread_mutex_lock(&c->mtx);
	call->next_free = c->free_list;
	c->free_list = call;
	pthread_mutex_unlock(&c->mtx);
}

/* Reports the outcome (rep borrowed), then recycles the call. */
static void
nngx_call_done(struct nngx_call *call, int rv, const void *rep, size_t len)
{
	call->cb(call->arg, rv, rep, len);
	nngx_call_release(call);
}

static void
nngx_call_cb(void *arg)
{
	struct nngx_call *call = arg;
	nng_msg          *msg;
	int64_t           left;
	int               rv;

	rv = nng_aio_result(call->aio);
	switch (call->state) {
	case NNGX_CALL_ST_SEND:
		if (rv != 0) {
			nngx_aio_drop_msg(call->aio); /* failed send: ours */
			nngx_call_done(call, err_from_nng(rv), NULL, 0);
			return;
		}
		nng_aio_set_msg(call->aio, NULL); /* taken by nng */
		left = call->deadline - now_mono_ms();
		if (left <= 0) {
			nngx_call_done(call, -ERR_TIMEDOUT, NULL, 0);
			return;
		}
		call->state = NNGX_CALL_ST_RECV;
		nng_aio_set_timeout(call->aio, (nng_duration)left);
		nng_ctx_recv(call->ctx, call->aio);
		break;
	case NNGX_CALL_ST_RECV:
		if (rv != 0) {
			nngx_call_done(call, err_from_nng(rv), NULL, 0);
			return;
		}
		msg = nng_aio_get_msg(call->aio);
		nng_aio_set_msg(call->aio, NULL);
		call->cb(call->arg, 0, nng_msg_body(msg), nng_msg_len(msg));
		nng_msg_free(msg);
		nngx_call_release(call);
		break;
	default:
		BUG("nngx_call_cb: bad state %d", (int)call->state);
	}
}

/* A recycled or new call actor; -ERR_CLOSED once the client closed. */
static int
nngx_call_get(struct nngx_req *c, struct nngx_call **out)
{
	struct nngx_call *call;
	int               rv;

	pthread_mutex_lock(&c->mtx);
	if (c->closed) {
		pthread_mutex_unlock(&c->mtx);
		return -ERR_CLOSED;
	}
	call = c->free_list;
	if (call != NULL)
		c->free_list = call->next_free;
	pthread_mutex_unlock(&c->mtx);
	if (call != NULL) {
		*out = call;
		return 0;
	}

	call = xcalloc(1, sizeof(*call));
	call->c = c;
	rv = err_from_nng(nng_aio_alloc(&call->aio, nngx_call_cb, call));
	if (rv == 0)
		rv = err_from_nng(nng_ctx_open(&call->ctx, c->sock));
	if (rv != 0) {
		nng_aio_free(call->aio);
		free(call);
		return rv;
	}
	pthread_mutex_lock(&c->mtx);
	if (c->closed) {
		/* Close is walking the list: this call must not join it. */
		pthread_mutex_unlock(&c->mtx);
		nng_ctx_close(call->ctx);
		nng_aio_free(call->aio);
		free(call);
		return -ERR_CLOSED;
	}
	call->next_all = c->all;
	c->all = call;
	pthread_mutex_unlock(&c->mtx);
	*out = call;
	return 0;
}

int
nngx_req_call_async(struct nngx_req *c, const void *req, size_t len,
    int timeout_ms, nngx_req_fn cb, void *arg)
{
	struct nngx_call *call;
	nng_msg          *msg;
	int               rv;

	if (c == NULL || cb == NULL || timeout_ms <= 0 ||
	    (req == NULL && len != 0))
		return -ERR_INVAL;
	if (len > NNGX_MSG_MAX)
		return -ERR_TOOBIG;
	rv = nngx_call_get(c, &call);
	if (rv != 0)
		return rv;
	rv = err_from_nng(nng_msg_alloc(&msg, 0));
	if (rv == 0 && len > 0) {
		rv = err_from_nng(nng_msg_append(msg, req, len));
		if (rv != 0)
			nng_msg_free(msg);
	}
	if (rv != 0) {
		nngx_call_release(call);
		return rv;
	}
	call->cb = cb;
	call->arg = arg;
	call->deadline = now_mono_ms() + timeout_ms;
	call->state = NNGX_CALL_ST_SEND;
	nng_aio_set_timeout(call->aio, (nng_duration)timeout_ms);
	nng_aio_set_msg(call->aio, msg);
	nng_ctx_send(call->ctx, call->aio);
	return 0;
}

/* A synchronous call waits on one of these. */
struct nngx_waiter {
	pthread_mutex_t mtx;
	pthread_cond_t  cv;
	bool            done;
	int             rv;
	struct buf     *reply;
};

static void
nngx_waiter_cb(void *arg, int rv, const void *rep, size_t len)
{
	struct nngx_waiter *w = arg;

	pthread_mutex_lock(&w->mtx);
	if (rv == 0 && len > 0)
		rv = buf_add(w->reply, rep, len);
	w->rv = rv;
	w->done = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mtx);
}

int
nngx_req_call(struct nngx_req *c, const void *req, size_t len, int timeout_ms,
    struct buf *reply)
{
	struct nngx_waiter w;
	int                rv;

	memset(&w, 0, sizeof(w));
	pthread_mutex_init(&w.mtx, NULL);
	pthread_cond_init(&w.cv, NULL);
	w.reply = reply;
	rv = nngx_req_call_async(c, req, len, timeout_ms, nngx_waiter_cb, &w);
	if (rv == 0) {
		pthread_mutex_lock(&w.mtx);
		while (!w.done)
			pthread_cond_wait(&w.cv, &w.mtx);
		rv = w.rv;
		pthread_mutex_unlock(&w.mtx);
	}
	pthread_cond_destroy(&w.cv);
	pthread_mutex_destroy(&w.mtx);
	return rv;
}

int
nngx_req_new(const char *const *urls, size_t nurls, struct nngx_req **out)
{
	struct nngx_req *c;
	int              rv;

	if (urls == NULL)
		return -ERR_INVAL;
	c = xcalloc(1, sizeof(*c));
	pthread_mutex_init(&c->mtx, NULL);
	atomic_init(&c->npipes, 0);
	rv = err_from_nng(nng_req0_open(&c->sock));
	if (rv != 0)
		goto fail;
	c->sock_open = true;
	rv = err_from_nng(nng_socket_set_ms(
	    c->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE));
	if (rv == 0)
		rv = err_from_nng(nng_socket_set_size(
		    c->sock, NNG_OPT_RECVMAXSZ, NNGX_MSG_MAX));
	if (rv == 0)
		rv = nngx_pipes_watch(c->sock, &c->npipes);
	if (rv == 0)
		rv = nngx_dial_all(c->sock, urls, nurls);
	if (rv != 0)
		goto fail;
	*out = c;
	return 0;
fail:
	nngx_req_free(c);
	return rv;
}

int
nngx_req_npipes(struct nngx_req *c)
{
	return atomic_load(&c->npipes);
}

void
nngx_req_close(struct nngx_req *c)
{
	struct nngx_call *call, *all;

	if (c == NULL)
		return;
	pthread_mutex_lock(&c->mtx);
	if (c->closed) {
		pthread_mutex_unlock(&c->mtx);
		return;
	}
	c->closed = true;
	all = c->all;
	pthread_mutex_unlock(&c->mtx);
	/* The socket first: its calls end (NNG_ECLOSED) before nng waits
	 * for the pipes, where a stuck close stops. */
	if (c->sock_open && !nngx_close_bounded(c->sock, "req"))
		c->abandoned = true;
	/* No new call joins the list once closed is set. */
	for (call = all; call != NULL; call = call->next_all) {
		nng_aio_stop(call->aio);
		nngx_aio_drop_msg(call->aio);
	}
}

void
nngx_req_free(struct nngx_req *c)
{
	struct nngx_call *call, *next;

	if (c == NULL)
		return;
	nngx_req_close(c);
	if (c->abandoned)
		return; /* nng may still notify into c: kept for the exit */
	for (call = c->all; call != NULL; call = next) {
		next = call->next_all;
		nng_aio_free(call->aio);
		free(call);
	}
	pthread_mutex_destroy(&c->mtx);
	free(c);
}

/* ---- PUB ------------------------------------------------------------- */

struct nngx_pub {
	nng_socket            sock;
	bool                  sock_open;
	bool                  abandoned; /* its close got stuck */
	atomic_bool           closed;
	atomic_int            npipes;
	atomic_uint_least64_t dropped;
	atomic_uint_least64_t nopeer;
};

int
nngx_pub_new(const char *const *urls, size_t n, struct nngx_pub **out)
{
	struct nngx_pub *p;
	int              rv;

	if (urls == NULL)
		return -ERR_INVAL;
	p = xcalloc(1, sizeof(*p));
	atomic_init(&p->closed, false);
	atomic_init(&p->npipes, 0);
	atomic_init(&p->dropped, 0);
	atomic_init(&p->nopeer, 0);
	rv = err_from_nng(nng_pub0_open(&p->sock));
	if (rv != 0)
		goto fail;
	p->sock_open = true;
	rv = nngx_pipes_watch(p->sock, &p->npipes);
	if (rv == 0)
		rv = nngx_dial_all(p->sock, urls, n);
	if (rv != 0)
		goto fail;
	*out = p;
	return 0;
fail:
	nngx_pub_free(p);
	return rv;
}

int
nngx_pub_set_sendbuf(struct nngx_pub *p, int nmsgs)
{
	if (nmsgs < 1 || nmsgs > 8192)
		return -ERR_INVAL;
	return err_from_nng(
	    nng_socket_set_int(p->sock, NNG_OPT_SENDBUF, nmsgs));
}

int
nngx_pub_send(
    struct nngx_pub *p, const char *topic, const void *data, size_t len)
{
	nng_msg *msg = NULL;
	size_t   tlen;
	int      rv;

	if (topic == NULL || (data == NULL && len != 0))
		return -ERR_INVAL;
	tlen = strnlen(topic, NNGX_TOPIC_MAX + 1);
	if (tlen > NNGX_TOPIC_MAX)
		return -ERR_INVAL;
	if (len > NNGX_MSG_MAX - tlen - 1)
		return -ERR_TOOBIG;
	if (atomic_load(&p->closed))
		return -ERR_CLOSED;
	rv = err_from_nng(nng_msg_alloc(&msg, 0));
	if (rv == 0)
		rv = err_from_nng(nng_msg_append(msg, topic, tlen + 1));
	if (rv == 0 && len > 0)
		rv = err_from_nng(nng_msg_append(msg, data, len));
	if (rv == 0) {
		if (atomic_load(&p->npipes) == 0)
			atomic_fetch_add(&p->nopeer, 1);
		rv = err_from_nng(nng_sendmsg(p->sock, msg, NNG_FLAG_NONBLOCK));
		if (rv != 0)
			nng_msg_free(msg); /* failed send: still ours */
	} else if (msg != NULL) {
		nng_msg_free(msg);
	}
	if (rv != 0)
		atomic_fetch_add(&p->dropped, 1);
	return rv;
}

uint64_t
nngx_pub_dropped(const struct nngx_pub *p)
{
	return atomic_load(&p->dropped);
}

uint64_t
nngx_pub_nopeer(const struct nngx_pub *p)
{
	return atomic_load(&p->nopeer);
}

int
nngx_pub_npipes(const struct nngx_pub *p)
{
	return atomic_load(&p->npipes);
}

void
nngx_pub_close(struct nngx_pub *p)
{
	if (p == NULL || atomic_exchange(&p->closed, true))
		return;
	if (p->sock_open && !nngx_close_bounded(p->sock, "pub"))
		p->abandoned = true;
}

void
nngx_pub_free(struct nngx_pub *p)
{
	if (p == NULL)
		return;
	nngx_pub_close(p);
	if (p->abandoned)
		return; /* nng may still notify into p: kept for the exit */
	free(p);
}

/* ---- SUB ------------------------------------------------------------- */

enum nngx_sub_state {
	NNGX_SUB_ST_INIT,
	NNGX_SUB_ST_RECV,
};

struct nngx_sub {
	enum nngx_sub_state   state;
	nng_socket            sock;
	bool                  sock_open;
	bool                  abandoned; /* its close got stuck */
	nng_aio              *aio;
	nngx_sub_fn           cb;
	void                 *arg;
	atomic_bool           closing;
	atomic_int            npipes;
	atomic_uint_least64_t malformed;
	struct nngx_guard     guard;
};

/* Splits topic '\0' payload and delivers it; borrows msg. */
static void
nngx_sub_deliver(struct nngx_sub *s, nng_msg *msg)
{
	const char *body = nng_msg_body(msg);
	size_t      len = nng_msg_len(msg);
	const char *nul;

	nul = memchr(
	    body, '\0', len < NNGX_TOPIC_MAX + 1 ? len : NNGX_TOPIC_MAX + 1);
	if (nul == NULL) {
		atomic_fetch_add(&s->malformed, 1);
		return;
	}
	s->cb(s->arg, body, nul + 1, len - (size_t)(nul + 1 - body));
}

static void
nngx_sub_cb(void *arg)
{
	struct nngx_sub *s = arg;
	nng_msg         *msg;
	int              rv;

	switch (s->state) {
	case NNGX_SUB_ST_INIT:
		break;
	case NNGX_SUB_ST_RECV:
		rv = nng_aio_result(s->aio);
		if (rv != 0) {
			if (atomic_load(&s->closing) || rv == NNG_ECLOSED ||
			    rv == NNG_ECANCELED)
				return;
			log_warn(
			    "nngx.sub_recv_failed", LOG_ERR(err_from_nng(rv)));
			break;
		}
		msg = nng_aio_get_msg(s->aio);
		nng_aio_set_msg(s->aio, NULL);
		nngx_sub_deliver(s, msg);
		nng_msg_free(msg);
		break;
	default:
		BUG("nngx_sub_cb: bad state %d", (int)s->state);
	}
	s->state = NNGX_SUB_ST_RECV;
	nng_recv_aio(s->sock, s->aio);
}

int
nngx_sub_new(const char *url, const char *const *topics, size_t n,
    size_t recv_queue, nngx_sub_fn cb, void *arg, struct nngx_sub **out)
{
	struct nngx_sub *s;
	size_t           i;
	int              rv;

	if (url == NULL || cb == NULL || (topics == NULL && n != 0) ||
	    recv_queue > 8192)
		return -ERR_INVAL;
	for (i = 0; i < n; i++)
		if (strnlen(topics[i], NNGX_TOPIC_MAX + 1) > NNGX_TOPIC_MAX)
			return -ERR_INVAL;
	s = xcalloc(1, sizeof(*s));
	s->cb = cb;
	s->arg = arg;
	s->state = NNGX_SUB_ST_INIT;
	atomic_init(&s->closing, false);
	atomic_init(&s->npipes, 0);
	atomic_init(&s->malformed, 0);
	rv = err_from_nng(nng_sub0_open(&s->sock));
	if (rv != 0)
		goto fail;
	s->sock_open = true;
	rv = err_from_nng(
	    nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, NNGX_MSG_MAX));
	if (rv == 0 && recv_queue > 0)
		rv = err_from_nng(nng_socket_set_int(
		    s->sock, NNG_OPT_RECVBUF, (int)recv_queue));
	for (i = 0; rv == 0 && i < n; i++)
		rv = err_from_nng(nng_socket_set(s->sock, NNG_OPT_SUB_SUBSCRIBE,
		    topics[i], strlen(topics[i])));
	if (rv == 0)
		rv = nngx_pipes_watch(s->sock, &s->npipes);
	if (rv == 0)
		rv = err_from_nng(nng_aio_alloc(&s->aio, nngx_sub_cb, s));
	if (rv == 0)
		rv = nngx_listen(&s->guard, s->sock, url, NNGX_PROTO_PUB0);
	if (rv != 0)
		goto fail;
	nngx_sub_cb(s);
	*out = s;
	return 0;
fail:
	nngx_sub_free(s);
	return rv;
}

int
nngx_sub_guard(struct nngx_sub *s, int timeout_ms)
{
	if (atomic_load(&s->closing))
		return 0;
	return nngx_guard_check(&s->guard, timeout_ms);
}

int
nngx_sub_npipes(const struct nngx_sub *s)
{
	return atomic_load(&s->npipes);
}

uint64_t
nngx_sub_malformed(const struct nngx_sub *s)
{
	return atomic_load(&s->malformed);
}

void
nngx_sub_close(struct nngx_sub *s)
{
	if (s == NULL || atomic_exchange(&s->closing, true))
		return;
	/* The receiver first: no callback runs once the close may hang. */
	nng_aio_stop(s->aio);
	nngx_aio_drop_msg(s->aio);
	if (s->sock_open && !nngx_close_bounded(s->sock, "sub"))
		s->abandoned = true;
}

void
nngx_sub_free(struct nngx_sub *s)
{
	if (s == NULL)
		return;
	nngx_sub_close(s);
	if (s->abandoned)
		return; /* nng may still notify into s: kept for the exit */
	nng_aio_free(s->aio);
	nngx_guard_release(&s->guard);
	free(s);
}
