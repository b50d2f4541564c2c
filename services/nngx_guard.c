/*
 * nngx_guard.c: listeners, the guard against nng 1.5.2's stuck listener
 * (nanomsg/nng#1518), and the bounded close that survives one.  See
 * nngx_guard.h.
 */
#include "nngx_guard.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <nng/supplemental/util/platform.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "nngx.h"

static void
nngx_guard_pipe_cb(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
	struct nngx_guard *g = arg;

	(void)pipe;
	if (ev == NNG_PIPE_EV_ADD_POST)
		atomic_fetch_add(&g->adds, 1);
}

int
nngx_listen(
    struct nngx_guard *g, nng_socket sock, const char *url, uint16_t peer)
{
	int rv;

	pthread_mutex_init(&g->mu, NULL);
	g->sock = sock;
	g->url = xstrdup(url);
	g->peer = peer;
	atomic_init(&g->adds, 0);
	rv = err_from_nng(
	    nng_pipe_notify(sock, NNG_PIPE_EV_ADD_POST, nngx_guard_pipe_cb, g));
	if (rv == 0)
		rv = nngx_ipc_prepare(url);
	if (rv == 0)
		rv = err_from_nng(nng_listen(sock, url, &g->lis, 0));
	if (rv != 0)
		log_error(
		    "nngx.listen_failed", LOG_STR("url", url), LOG_ERR(rv));
	g->on = rv == 0;
	return rv;
}

void
nngx_guard_release(struct nngx_guard *g)
{
	if (g->url == NULL)
		return;
	free(g->url);
	g->url = NULL;
	pthread_mutex_destroy(&g->mu);
}

/*
 * Opens a connection to the ipc path and sends an SP header for peer;
 * the fd, or -1 when nobody accepts (refused, or the backlog full).
 */
static int
nngx_guard_connect(const char *path, uint16_t peer)
{
	const uint8_t hdr[8] = {
	    0, 'S', 'P', 0, (uint8_t)(peer >> 8), (uint8_t)peer, 0, 0};
	struct sockaddr_un sa;
	int                fd;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    write(fd, hdr, sizeof(hdr)) != (ssize_t)sizeof(hdr)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Whether fd receives the 8-byte SP header within timeout_ms. */
static bool
nngx_guard_answered(int fd, int timeout_ms)
{
	uint8_t       hdr[8];
	size_t        got = 0;
	ssize_t       n;
	int64_t       end = now_mono_ms() + timeout_ms;
	struct pollfd pf = {.fd = fd, .events = POLLIN};

	while (got < sizeof(hdr)) {
		int64_t left = end - now_mono_ms();

		if (left <= 0 || poll(&pf, 1, (int)left) <= 0)
			return false;
		n = read(fd, hdr + got, sizeof(hdr) - got);
		if (n <= 0)
			return false;
		got += (size_t)n;
	}
	return hdr[1] == 'S' && hdr[2] == 'P';
}

/* Whether the socket takes a new pipe (adds passes a0) within ms. */
static bool
nngx_guard_added(struct nngx_guard *g, uint64_t a0, int timeout_ms)
{
	int64_t end = now_mono_ms() + timeout_ms;

	while (atomic_load(&g->adds) == a0) {
		if (now_mono_ms() >= end)
			return false;
		nng_msleep(5);
	}
	return true;
}

/*
 * nng 1.5.2 stops a listener's accept loop for good when a peer
 * disconnects while the SP headers are exchanged (nanomsg/nng#1518,
 * fixed in 1.6.0): e.g. a dialer that connected while this process was
 * frozen gives up after its 10 s negotiation timeout.  The transport
 * still accepts and answers the headers, but no pipe reaches the socket
 * again.  The guard dials the ipc listener like a peer would: healthy
 * when it answers with its header and the socket then takes a pipe (any
 * pipe: a stuck listener takes none) within timeout_ms; otherwise it is
 * closed and opened again (its pipes drop; peers redial).  The probe
 * stays connected until then: hanging up mid-negotiation is the very
 * trigger.  After an answer our header is already in the listener's
 * buffer, so closing is harmless.  0 healthy (or not ipc), 1 reopened,
 * -ERR_x when reopening failed.
 */
int
nngx_guard_check(struct nngx_guard *g, int timeout_ms)
{
	uint64_t a0;
	int      fd, rv = 0;

	if (g->url == NULL || strncmp(g->url, "ipc://", 6) != 0)
		return 0;
	pthread_mutex_lock(&g->mu);
	a0 = atomic_load(&g->adds);
	fd = nngx_guard_connect(g->url + 6, g->peer);
	if (fd >= 0 && nngx_guard_answered(fd, timeout_ms) &&
	    nngx_guard_added(g, a0, timeout_ms)) {
		close(fd);
		pthread_mutex_unlock(&g->mu);
		return 0;
	}
	log_warn("nngx.listener_stuck", LOG_STR("url", g->url),
	    LOG_BOOL("connected", fd >= 0));
	if (g->on)
		(void)nng_listener_close(g->lis);
	g->on = false;
	rv = nngx_ipc_prepare(g->url);
	if (rv == 0)
		rv = err_from_nng(nng_listen(g->sock, g->url, &g->lis, 0));
	g->on = rv == 0;
	if (fd >= 0)
		close(fd);
	if (rv == 0)
		log_warn("nngx.listener_reopened", LOG_STR("url", g->url));
	else
		log_error("nngx.listener_reopen_failed", LOG_STR("url", g->url),
		    LOG_ERR(rv));
	pthread_mutex_unlock(&g->mu);
	return rv == 0 ? 1 : rv;
}

/* ---- bounded close (see nngx_close_bounded() in nngx_guard.h) ------- */

struct nngx_closer {
	nng_socket      sock;
	pthread_mutex_t mtx;
	pthread_cond_t  cv;
	bool            done;
	atomic_int      refs; /* the waiter and the thread */
};

static void
nngx_closer_put(struct nngx_closer *c)
{
	if (atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mtx);
	free(c);
}

static void *
nngx_closer_run(void *arg)
{
	struct nngx_closer *c = arg;

	nng_close(c->sock);
	pthread_mutex_lock(&c->mtx);
	c->done = true;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mtx);
	nngx_closer_put(c);
	return NULL;
}

bool
nngx_close_bounded(nng_socket sock, const char *what)
{
	struct nngx_closer *c = xcalloc(1, sizeof(*c));
	struct timespec     ts;
	pthread_attr_t      attr;
	pthread_t           t;
	bool                done;
	int                 rv = 0;

	c->sock = sock;
	pthread_mutex_init(&c->mtx, NULL);
	pthread_cond_init(&c->cv, NULL);
	atomic_init(&c->refs, 2);
	if (pthread_attr_init(&attr) != 0) {
		rv = -1;
	} else {
		if (pthread_attr_setdetachstate(
		        &attr, PTHREAD_CREATE_DETACHED) != 0 ||
		    pthread_create(&t, &attr, nngx_closer_run, c) != 0)
			rv = -1;
		(void)pthread_attr_destroy(&attr);
	}
	if (rv != 0) {
		nng_close(sock); /* no thread: close in place */
		pthread_cond_destroy(&c->cv);
		pthread_mutex_destroy(&c->mtx);
		free(c);
		return true;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += NNGX_CLOSE_WAIT_MS / 1000;
	ts.tv_nsec += (long)(NNGX_CLOSE_WAIT_MS % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&c->mtx);
	while (!c->done && rv != ETIMEDOUT)
		rv = pthread_cond_timedwait(&c->cv, &c->mtx, &ts);
	done = c->done;
	pthread_mutex_unlock(&c->mtx);
	nngx_closer_put(c);
	if (!done)
		log_error("nngx.close_stuck", LOG_STR("socket", what),
		    LOG_I64("waited_ms", NNGX_CLOSE_WAIT_MS));
	return done;
}
