/*
 * gw_io.c: the I/O thread's loop (see gw_io.h).
 *
 * Each turn: take the posted messages, run the per-request clocks (first
 * byte, idle gap), renew leases when due, then wait in curl_multi_poll()
 * on the transfers plus the client sockets of suspended connections, and
 * let libcurl move data.  A client socket that reads as closed (a peek
 * returning 0 or an error) means the client went away: the transfer is
 * cancelled at once.
 */
#include "gw_io.h"

#include <sys/socket.h>

#include <errno.h>
#include <microhttpd.h>
#include <poll.h>

#include "err.h"
#include "gw.h"
#include "gw_relay.h"
#include "log.h"

#define GW_IO_POLL_MS   100 /* upper bound of one wait */
#define GW_IO_WATCH_MAX 8192

bool
gw_io_post(struct gw *gw, enum gw_msg_kind kind, struct gw_req *r, int rv,
    const void *data, size_t len)
{
	struct gw_io  *io = &gw->io;
	struct gw_msg *m = xmalloc(sizeof(*m) + len);

	m->next = NULL;
	m->kind = kind;
	m->req = r;
	m->rv = rv;
	m->len = len;
	if (len != 0)
		memcpy(m->data, data, len);
	pthread_mutex_lock(&io->mu);
	if (io->closed) {
		pthread_mutex_unlock(&io->mu);
		free(m);
		return false;
	}
	if (io->tail != NULL)
		io->tail->next = m;
	else
		io->head = m;
	io->tail = m;
	pthread_mutex_unlock(&io->mu);
	curl_multi_wakeup(io->multi);
	return true;
}

void
gw_io_resume(struct gw_req *r)
{
	pthread_mutex_lock(&r->mu);
	if (r->suspended) {
		r->suspended = false;
		MHD_resume_connection(r->conn);
	}
	pthread_mutex_unlock(&r->mu);
}

static void
gw_io_track(struct gw_io *io, struct gw_req *r)
{
	if (io->n_live == io->cap_live) {
		io->cap_live = io->cap_live ? io->cap_live * 2 : 64;
		io->live = xrealloc(io->live, io->cap_live * sizeof(*io->live));
	}
	io->live[io->n_live++] = r;
}

void
gw_io_finish(struct gw *gw, struct gw_req *r)
{
	struct gw_io *io = &gw->io;
	size_t        i;

	gw_relay_unqueue(gw, r);
	for (i = 0; i < io->n_live; i++) {
		if (io->live[i] == r) {
			io->live[i] = io->live[--io->n_live];
			break;
		}
	}
	pthread_mutex_lock(&r->mu);
	r->io_active = false;
	pthread_mutex_unlock(&r->mu);
	atomic_fetch_sub(&gw->inflight, 1);
	gw_req_unref(r);
}

static bool
gw_io_tracked(struct gw_io *io, struct gw_req *r)
{
	size_t i;

	for (i = 0; i < io->n_live; i++) {
		if (io->live[i] == r)
			return true;
	}
	return false;
}

static void
gw_io_dispatch(struct gw *gw, struct gw_msg *m)
{
	struct gw_req *r = m->req;

	switch (m->kind) {
	case GW_M_START:
		gw_io_track(&gw->io, r);
		atomic_fetch_add(&gw->inflight, 1);
		gw_relay_start(gw, r);
		break;
	case GW_M_ACQUIRED:
		if (gw_io_tracked(&gw->io, r))
			gw_relay_acquired(gw, r, m->rv, m->data, m->len);
		break;
	case GW_M_CANCEL:
		/* The message holds its own reference (gw_http_completed). */
		if (gw_io_tracked(&gw->io, r))
			gw_relay_cancel(gw, r, "client_closed");
		gw_req_unref(r);
		break;
	case GW_M_UNPAUSE:
		if (gw_io_tracked(&gw->io, r) && r->easy != NULL)
			curl_easy_pause(r->easy, CURLPAUSE_CONT);
		gw_req_unref(r);
		break;
	}
}

static bool
gw_io_drain(struct gw *gw)
{
	struct gw_io  *io = &gw->io;
	struct gw_msg *m, *next;
	bool           stop;

	pthread_mutex_lock(&io->mu);
	m = io->head;
	io->head = io->tail = NULL;
	stop = io->stop;
	pthread_mutex_unlock(&io->mu);
	for (; m != NULL; m = next) {
		next = m->next;
		gw_io_dispatch(gw, m);
		free(m);
	}
	return stop;
}

/* A suspended connection's socket that reads as EOF or error is gone. */
static bool
gw_io_client_gone(int fd)
{
	char    c;
	ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);

	if (n == 0)
		return true;
	return n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
	    errno != EINTR;
}

static void
gw_io_wait(struct gw *gw, int timeout_ms)
{
	struct gw_io             *io = &gw->io;
	static struct curl_waitfd fds[GW_IO_WATCH_MAX];
	struct gw_req            *who[GW_IO_WATCH_MAX];
	unsigned                  n = 0, i;
	int                       numfds = 0;
	size_t                    k;

	for (k = 0; k < io->n_live && n < GW_IO_WATCH_MAX; k++) {
		struct gw_req *r = io->live[k];
		bool           watch;

		pthread_mutex_lock(&r->mu);
		watch = r->suspended && r->fd >= 0 && !r->client_gone;
		pthread_mutex_unlock(&r->mu);
		if (!watch)
			continue;
		fds[n].fd = r->fd;
		fds[n].events = CURL_WAIT_POLLIN;
		fds[n].revents = 0;
		who[n++] = r;
	}
	curl_multi_poll(io->multi, fds, n, timeout_ms, &numfds);
	for (i = 0; i < n; i++) {
		if (fds[i].revents == 0 || !gw_io_client_gone(fds[i].fd))
			continue;
		pthread_mutex_lock(&who[i]->mu);
		who[i]->client_gone = true;
		pthread_mutex_unlock(&who[i]->mu);
		gw_relay_cancel(gw, who[i], "client_closed");
	}
}

/* Returns how long the next wait may last, in ms. */
static int
gw_io_clocks(struct gw *gw)
{
	struct gw_io *io = &gw->io;
	int64_t       now = now_mono_ms();
	int64_t       due, wait;
	size_t        k;

	/* gw_relay_tick() may finish a request: walk a snapshot. */
	for (k = io->n_live; k > 0; k--) {
		if (k - 1 < io->n_live)
			gw_relay_tick(gw, io->live[k - 1], now);
	}
	if (now >= io->next_renew_ms) {
		gw_relay_renew(gw);
		io->next_renew_ms = now + gw->cfg->lease_renew_interval;
	}
	wait = GW_IO_POLL_MS;
	due = gw_bundle_flush(gw, now, false);
	if (due >= 0 && due < wait)
		wait = due;
	due = gw_events_flush(gw, now, false);
	if (due >= 0 && due < wait)
		wait = due;
	return (int)wait;
}

/*
 * Shutdown: cancel what is left so every lease is returned and every
 * suspended connection is resumed (MHD must not stop with one suspended).
 * A request whose acquire is still in flight stays until its reply comes,
 * at most the scheduler timeout.
 */
static void
gw_io_shutdown(struct gw *gw)
{
	struct gw_io *io = &gw->io;
	int64_t       end = now_mono_ms() + gw->cfg->sched_timeout + 500;
	size_t        k;
	int           numfds;

	while (io->n_live > 0 && now_mono_ms() < end) {
		for (k = io->n_live; k > 0; k--) {
			if (k - 1 < io->n_live)
				gw_relay_cancel(
				    gw, io->live[k - 1], "shutdown");
		}
		(void)gw_io_drain(gw);
		(void)gw_bundle_flush(gw, now_mono_ms(), true);
		(void)gw_events_flush(gw, now_mono_ms(), true);
		if (io->n_live > 0)
			curl_multi_poll(io->multi, NULL, 0, 50, &numfds);
	}
	for (k = 0; k < io->n_live; k++)
		gw_io_resume(io->live[k]);
	(void)gw_bundle_flush(gw, now_mono_ms(), true);
	(void)gw_events_flush(gw, now_mono_ms(), true);
}

static void *
gw_io_main(void *arg)
{
	struct gw *gw = arg;
	CURLMsg   *msg;
	int        running, left;

	for (;;) {
		if (gw_io_drain(gw))
			break;
		gw_io_wait(gw, gw_io_clocks(gw));
		curl_multi_perform(gw->io.multi, &running);
		while (
		    (msg = curl_multi_info_read(gw->io.multi, &left)) != NULL) {
			struct gw_req *r = NULL;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(
			    msg->easy_handle, CURLINFO_PRIVATE, &r);
			gw_relay_done(gw, r, msg->data.result);
		}
	}
	gw_io_shutdown(gw);
	return NULL;
}

int
gw_io_start(struct gw *gw)
{
	struct gw_io *io = &gw->io;

	pthread_mutex_init(&io->mu, NULL);
	io->multi = curl_multi_init();
	if (io->multi == NULL)
		return -ERR_NOMEM;
	curl_multi_setopt(io->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 0L);
	curl_multi_setopt(io->multi, CURLMOPT_MAXCONNECTS,
	    (long)gw->cfg->upstream_idle_conns);
	io->next_renew_ms = now_mono_ms() + gw->cfg->lease_renew_interval;
	gw_pend_init(&io->releases, PROTO_BUNDLE_MAX - 1);
	gw_pend_init(&io->usage, PROTO_BATCH_MAX);
	if (pthread_create(&io->thr, NULL, gw_io_main, gw) != 0) {
		curl_multi_cleanup(io->multi);
		io->multi = NULL;
		gw_pend_free(&io->releases);
		gw_pend_free(&io->usage);
		return -ERR_NOMEM;
	}
	io->running = true;
	return 0;
}

void
gw_io_stop(struct gw *gw)
{
	struct gw_io *io = &gw->io;

	if (!io->running)
		return;
	pthread_mutex_lock(&io->mu);
	io->stop = true;
	pthread_mutex_unlock(&io->mu);
	curl_multi_wakeup(io->multi);
	pthread_join(io->thr, NULL);
	io->running = false;
	pthread_mutex_lock(&io->mu);
	io->closed = true; /* later posts are refused */
	pthread_mutex_unlock(&io->mu);
}

void
gw_io_free(struct gw *gw)
{
	struct gw_io  *io = &gw->io;
	struct gw_msg *m, *next;

	if (io->multi == NULL)
		return;
	/* Messages that hold a reference of their own give it back. */
	for (m = io->head; m != NULL; m = next) {
		next = m->next;
		if (m->kind == GW_M_CANCEL || m->kind == GW_M_UNPAUSE)
			gw_req_unref(m->req);
		free(m);
	}
	/* Requests still waiting for the (now closed) scheduler socket. */
	while (io->n_live > 0)
		gw_io_finish(gw, io->live[io->n_live - 1]);
	io->head = io->tail = NULL;
	curl_multi_cleanup(io->multi);
	io->multi = NULL;
	gw_pend_free(&io->releases);
	gw_pend_free(&io->usage);
	free(io->live);
	io->live = NULL;
	pthread_mutex_destroy(&io->mu);
}
